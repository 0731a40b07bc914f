//! The monitoring endpoints of an embedded server, read over a minimal HTTP/1.1 client after
//! real client traffic: /varz figures, /connz paging, sorting and closed connections, /subsz,
//! /routez, /healthz (also in lame duck mode), /metrics, the index, error answers and 404s.
//!
//! The JSON key sets are compared with what nats-server v2.15.2 returned for the same
//! situation (one subscriber with `SUB foo 1` and `SUB bar q 2`, one publisher named `pub1`
//! that sent two messages and closed). Those keys were recorded from the real binary
//! (`nats-server -c` with `listen`/`http` on loopback) and are constants below, with the keys
//! Chorus deliberately leaves out and why; running these tests needs no Go binary.

use std::net::SocketAddr;
use std::time::Duration;

use chorus_conf::Options;
use chorus_server::Server;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

/// /varz keys nats-server v2.15.2 returned (no auth, no TLS, no cluster).
const NATS_VARZ_KEYS: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "proto",
    "go",
    "host",
    "port",
    "max_connections",
    "ping_interval",
    "ping_max",
    "http_host",
    "http_port",
    "http_base_path",
    "https_port",
    "auth_timeout",
    "max_control_line",
    "max_payload",
    "max_pending",
    "cluster",
    "gateway",
    "leaf",
    "mqtt",
    "websocket",
    "jetstream",
    "tls_timeout",
    "write_deadline",
    "start",
    "now",
    "uptime",
    "mem",
    "cores",
    "gomaxprocs",
    "cpu",
    "connections",
    "total_connections",
    "routes",
    "remotes",
    "leafnodes",
    "in_msgs",
    "in_bytes",
    "in_client_msgs",
    "in_client_bytes",
    "out_msgs",
    "out_bytes",
    "out_client_msgs",
    "out_client_bytes",
    "slow_consumers",
    "stale_connections",
    "stalled_clients",
    "subscriptions",
    "http_req_stats",
    "config_load_time",
    "config_digest",
    "feature_flags",
    "system_account",
    "slow_consumer_stats",
    "stale_connection_stats",
    "disk_io_wait_stats",
];

/// nats-server /varz keys Chorus leaves out rather than fill with invented values.
const OMITTED_VARZ_KEYS: &[(&str, &str)] = &[
    ("gomaxprocs", "a Go runtime setting; Chorus has no GOMAXPROCS"),
    ("stale_connections", "not counted yet: the server keeps no stale-connection counter"),
    ("stale_connection_stats", "same: no stale-connection counters per connection kind"),
    ("stalled_clients", "Chorus pauses fast publishers differently and does not count it"),
    ("config_digest", "no digest of the configuration is computed"),
    ("feature_flags", "nats-server's JetStream feature flags; none exist in Chorus"),
    ("disk_io_wait_stats", "nats-server's JetStream disk I/O semaphore; Chorus has none"),
];

/// Keys Chorus adds to /varz.
const CHORUS_VARZ_KEYS: &[&str] = &["chorus"];

const NATS_CONNZ_KEYS: &[&str] =
    &["server_id", "now", "num_connections", "total", "offset", "limit", "connections"];

/// An open connection that sent CONNECT with name, lang and version, listed with `subs=1`.
const NATS_OPEN_CONN_KEYS: &[&str] = &[
    "cid",
    "kind",
    "type",
    "ip",
    "port",
    "start",
    "last_activity",
    "rtt",
    "uptime",
    "idle",
    "pending_bytes",
    "in_msgs",
    "out_msgs",
    "in_bytes",
    "out_bytes",
    "subscriptions",
    "name",
    "lang",
    "version",
    "subscriptions_list",
];

const OMITTED_OPEN_CONN_KEYS: &[(&str, &str)] = &[];

/// A closed connection whose CONNECT named it only.
const NATS_CLOSED_CONN_KEYS: &[&str] = &[
    "cid",
    "kind",
    "type",
    "ip",
    "port",
    "start",
    "last_activity",
    "stop",
    "reason",
    "rtt",
    "uptime",
    "idle",
    "pending_bytes",
    "in_msgs",
    "out_msgs",
    "in_bytes",
    "out_bytes",
    "subscriptions",
    "name",
];

const OMITTED_CLOSED_CONN_KEYS: &[(&str, &str)] = &[];

const NATS_SUBSZ_KEYS: &[&str] = &[
    "server_id",
    "now",
    "num_subscriptions",
    "num_cache",
    "num_inserts",
    "num_removes",
    "num_matches",
    "cache_hit_rate",
    "max_fanout",
    "avg_fanout",
    "total",
    "offset",
    "limit",
    "subscriptions_list",
];

/// A queue subscription in /subsz?subs=1.
const NATS_SUB_DETAIL_KEYS: &[&str] =
    &["account", "account_tag", "subject", "qgroup", "sid", "msgs", "cid"];

const NATS_ROUTEZ_KEYS: &[&str] = &["server_id", "server_name", "now", "num_routes", "routes"];

fn opts() -> Options {
    Options {
        host: "127.0.0.1".into(),
        port: 0,
        http_host: "127.0.0.1".into(),
        http_port: Some(0),
        ..Options::default()
    }
}

async fn start(o: Options) -> (Server, SocketAddr) {
    let s = Server::start(o).await.expect("server starts");
    let m = s.monitor_addr().expect("monitor listening");
    (s, m)
}

struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One GET over a fresh connection: HTTP/1.1, `Connection: close`, body read to the end.
async fn get(addr: SocketAddr, path: &str) -> Http {
    let mut s = TcpStream::connect(addr).await.expect("monitor connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw)).await.expect("response in time").unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Http { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "GET {path}");
    r.json()
}

/// Polls `path` until `done` holds for its JSON.
async fn wait_json(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = get_json(addr, path).await;
        if done(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "GET {path} never satisfied: {v:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client speaking the protocol by hand, so names, sids and counts are exact.
struct Raw {
    s: TcpStream,
    seen: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr, connect_json: &str) -> Raw {
        let s = TcpStream::connect(addr).await.expect("client connect");
        let mut r = Raw { s, seen: Vec::new() };
        r.send(format!("CONNECT {connect_json}\r\n").as_bytes()).await;
        r.sync().await;
        r
    }

    async fn named(addr: SocketAddr, name: &str) -> Raw {
        let json = format!(
            r#"{{"verbose":false,"pedantic":false,"name":"{name}","lang":"raw","version":"1"}}"#
        );
        Raw::connect(addr, &json).await
    }

    fn port(&self) -> u16 {
        self.s.local_addr().unwrap().port()
    }

    async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.unwrap();
    }

    /// PING and wait for the PONG: everything sent before is processed, counters included.
    async fn sync(&mut self) {
        let from = self.seen.len();
        self.send(b"PING\r\n").await;
        let deadline = tokio::time::Instant::now() + T;
        while !self.seen[from..].windows(6).any(|w| w == b"PONG\r\n") {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.s.read(&mut buf))
                .await
                .expect("PONG in time")
                .unwrap();
            assert!(n > 0, "server closed the connection");
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    fn count(&self, pat: &[u8]) -> usize {
        self.seen.windows(pat.len()).filter(|w| *w == pat).count()
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("a JSON object").keys().cloned().collect();
    k.sort();
    k
}

/// `ours` has exactly nats-server's keys, less the recorded omissions, plus our additions.
fn assert_key_set(
    what: &str,
    ours: &Value,
    nats: &[&str],
    omitted: &[(&str, &str)],
    extra: &[&str],
) {
    let mut want: Vec<String> = nats
        .iter()
        .filter(|k| !omitted.iter().any(|(o, _)| o == *k))
        .chain(extra.iter())
        .map(|k| k.to_string())
        .collect();
    want.sort();
    assert_eq!(keys(ours), want, "{what} key set");
    for (o, why) in omitted {
        assert!(nats.contains(o), "{what}: omitted key {o} ({why}) is not a nats-server key");
    }
}

fn conns(v: &Value) -> &Vec<Value> {
    v["connections"].as_array().expect("connections array")
}

fn cids(v: &Value) -> Vec<u64> {
    conns(v).iter().map(|c| c["cid"].as_u64().unwrap()).collect()
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && s.ends_with('Z')
}

/// One subscriber (`foo`, queue `bar`/`q`) and one publisher that sent 5+3 payload bytes to
/// `foo`; both synced, so the server has processed everything.
async fn traffic(addr: SocketAddr) -> (Raw, Raw) {
    let mut sub = Raw::named(addr, "sub1").await;
    sub.send(b"SUB foo 1\r\nSUB bar q 2\r\n").await;
    sub.sync().await;
    let mut publ = Raw::connect(addr, r#"{"verbose":false,"pedantic":false,"name":"pub1"}"#).await;
    publ.send(b"PUB foo 5\r\nhello\r\nPUB foo 3\r\nabc\r\n").await;
    publ.sync().await;
    sub.sync().await;
    assert_eq!(sub.count(b"MSG foo 1 "), 2, "subscriber got both messages");
    (sub, publ)
}

#[tokio::test]
async fn varz_reports_traffic_limits_and_units() {
    let o = opts();
    let (s, m) = start(o.clone()).await;
    let (_sub, publ) = traffic(s.client_addr()).await;
    let v = get_json(m, "/varz").await;

    assert_eq!(v["server_id"], s.id());
    assert_eq!(v["server_name"], s.id(), "the name defaults to the id");
    assert_eq!(v["version"], chorus_server::info::COMPAT_VERSION);
    assert_eq!(v["chorus"], chorus_server::info::CHORUS_VERSION);
    assert_eq!(v["go"], "rust");
    assert_eq!(v["proto"], 1);
    assert_eq!(v["host"], "127.0.0.1");
    assert_eq!(v["port"], s.client_addr().port());
    assert_eq!(v["http_host"], "127.0.0.1");
    assert_eq!(v["http_port"], m.port());
    // Durations in nanoseconds, timeouts in seconds written as Go writes a whole float64.
    assert_eq!(v["ping_interval"].as_u64(), Some(o.ping_interval.as_nanos() as u64));
    assert_eq!(v["write_deadline"].as_u64(), Some(o.write_deadline.as_nanos() as u64));
    assert_eq!(v["auth_timeout"].to_string(), o.authorization.timeout.as_secs().to_string());
    assert_eq!(v["tls_timeout"].to_string(), "2");
    assert_eq!(v["max_payload"].as_u64(), Some(o.max_payload as u64));
    assert_eq!(v["max_connections"].as_u64(), Some(o.max_connections as u64));
    assert_eq!(v["max_control_line"].as_u64(), Some(o.max_control_line as u64));
    assert_eq!(v["max_pending"].as_u64(), Some(o.max_pending as u64));
    assert_eq!(v["ping_max"].as_u64(), Some(u64::from(o.ping_max)));

    assert_eq!(v["connections"], 2);
    assert_eq!(v["total_connections"], 2);
    assert_eq!(v["subscriptions"], 2);
    assert_eq!(v["in_msgs"], 2);
    assert_eq!(v["in_bytes"], 8, "payload bytes only");
    assert_eq!(v["in_client_msgs"], 2);
    assert_eq!(v["in_client_bytes"], 8);
    assert_eq!(v["slow_consumers"], 0);
    assert_eq!(v["slow_consumer_stats"]["clients"], 0);
    for zero in ["routes", "remotes", "leafnodes"] {
        assert_eq!(v[zero], 0, "{zero}");
    }
    for block in ["cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream"] {
        assert_eq!(v[block], serde_json::json!({}), "{block}");
    }
    assert_eq!(v["http_req_stats"], serde_json::json!({"/varz": 1}), "this request counted");

    assert!(is_rfc3339_utc(v["start"].as_str().unwrap()), "{}", v["start"]);
    assert!(is_rfc3339_utc(v["now"].as_str().unwrap()));
    assert!(is_rfc3339_utc(v["config_load_time"].as_str().unwrap()));
    assert!(v["now"].as_str().unwrap() >= v["start"].as_str().unwrap());
    let up = v["uptime"].as_str().unwrap();
    assert!(up.ends_with('s') && up[..up.len() - 1].parse::<u64>().is_ok(), "uptime {up}");
    assert!(v["mem"].as_u64().unwrap() > 1024 * 1024, "resident memory in bytes");
    assert!(v["cores"].as_u64().unwrap() >= 1);
    assert!(v["cpu"].as_f64().unwrap() >= 0.0);

    // A second request: counted, and the connection count follows a disconnect.
    drop(publ);
    let v = wait_json(m, "/varz", |v| v["connections"] == 1).await;
    assert!(v["http_req_stats"]["/varz"].as_u64().unwrap() >= 2);
    assert_eq!(v["total_connections"], 2);
    s.shutdown().await;
}

#[tokio::test]
async fn varz_out_counters_follow_deliveries() {
    let (s, m) = start(opts()).await;
    let (_sub, _publ) = traffic(s.client_addr()).await;
    let v = get_json(m, "/varz").await;
    assert_eq!(v["out_msgs"], 2);
    assert_eq!(v["out_bytes"], 8, "payload bytes only, as nats-server counts");
    assert_eq!(v["out_client_msgs"], 2);
    let c = get_json(m, "/connz").await;
    assert_eq!(conns(&c)[0]["out_bytes"], 8, "per connection too");
    s.shutdown().await;
}

#[tokio::test]
async fn connz_lists_sorts_and_pages_open_connections() {
    let (s, m) = start(opts()).await;
    let (sub, publ) = traffic(s.client_addr()).await;
    let c = get_json(m, "/connz").await;
    assert_eq!(c["server_id"], s.id());
    assert_eq!((c["num_connections"].as_u64(), c["total"].as_u64()), (Some(2), Some(2)));
    assert_eq!((c["offset"].as_u64(), c["limit"].as_u64()), (Some(0), Some(1024)));
    let ids = cids(&c);
    assert!(ids[0] < ids[1], "cid order by default");
    let (sc, pc) = (&conns(&c)[0], &conns(&c)[1]);
    assert_eq!(sc["name"], "sub1");
    assert_eq!(sc["lang"], "raw");
    assert_eq!(sc["version"], "1");
    assert_eq!(sc["kind"], "Client");
    assert_eq!(sc["type"], "nats");
    assert_eq!(sc["ip"], "127.0.0.1");
    assert_eq!(sc["port"], sub.port());
    assert_eq!(sc["subscriptions"], 2);
    assert_eq!(sc["out_msgs"], 2);
    assert_eq!(sc["in_msgs"], 0);
    assert_eq!(sc["pending_bytes"], 0);
    assert!(sc.get("subscriptions_list").is_none(), "only with subs=1");
    assert_eq!(pc["name"], "pub1");
    assert!(pc.get("lang").is_none(), "empty strings are left out, as nats-server does");
    assert_eq!(pc["port"], publ.port());
    assert_eq!((pc["in_msgs"].as_u64(), pc["in_bytes"].as_u64()), (Some(2), Some(8)));
    assert_eq!(pc["subscriptions"], 0);
    for f in ["start", "last_activity"] {
        assert!(is_rfc3339_utc(sc[f].as_str().unwrap()), "{f}");
    }
    for f in ["uptime", "idle"] {
        assert!(sc[f].as_str().unwrap().ends_with('s'), "{f}");
    }
    let (sub_cid, pub_cid) = (ids[0], ids[1]);

    // Subscription lists, in sid order.
    let c = get_json(m, "/connz?subs=1").await;
    assert_eq!(conns(&c)[0]["subscriptions_list"], serde_json::json!(["foo", "bar"]));
    assert!(conns(&c)[1].get("subscriptions_list").is_none(), "no subscriptions, no list");
    let c = get_json(m, "/connz?subs=detail").await;
    assert_eq!(
        conns(&c)[0]["subscriptions_list_detail"],
        serde_json::json!([
            {"subject": "foo", "sid": "1", "msgs": 2, "cid": sub_cid},
            {"subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "cid": sub_cid},
        ])
    );

    // Sorting: descending by the figure, except cid/start.
    for (sort, first) in [
        ("cid", sub_cid),
        ("start", sub_cid),
        ("subs", sub_cid),
        ("msgs_to", sub_cid),
        ("bytes_to", sub_cid),
        ("msgs_from", pub_cid),
        ("bytes_from", pub_cid),
    ] {
        let c = get_json(m, &format!("/connz?sort={sort}")).await;
        assert_eq!(cids(&c)[0], first, "sort={sort}");
        assert_eq!(c["total"], 2);
    }
    // Uptime ascends: the younger connection (the publisher) first.
    assert_eq!(cids(&get_json(m, "/connz?sort=uptime").await), vec![pub_cid, sub_cid]);

    // Paging.
    let c = get_json(m, "/connz?limit=1").await;
    assert_eq!(
        (cids(&c), c["total"].as_u64(), c["limit"].as_u64()),
        (vec![sub_cid], Some(2), Some(1))
    );
    let c = get_json(m, "/connz?limit=1&offset=1").await;
    assert_eq!((cids(&c), c["num_connections"].as_u64()), (vec![pub_cid], Some(1)));
    let c = get_json(m, "/connz?offset=5").await;
    assert_eq!(
        (cids(&c), c["num_connections"].as_u64(), c["total"].as_u64()),
        (vec![], Some(0), Some(2))
    );
    let c = get_json(m, "/connz?limit=0&offset=-3").await;
    assert_eq!(
        (c["limit"].as_u64(), c["offset"].as_u64(), cids(&c).len()),
        (Some(1024), Some(0), 2)
    );

    // One connection by cid; an unknown one gives an empty list.
    let c = get_json(m, &format!("/connz?cid={pub_cid}")).await;
    assert_eq!((cids(&c), c["limit"].as_u64()), (vec![pub_cid], Some(1)));
    assert_eq!(cids(&get_json(m, "/connz?cid=999").await), Vec::<u64>::new());

    // An account that does not exist: nats-server's bare envelope.
    let c = get_json(m, "/connz?acc=nope").await;
    assert_eq!((c["connections"].clone(), c["server_id"].clone()), (Value::Null, "".into()));
    assert_eq!(cids(&get_json(m, "/connz?acc=$G").await).len(), 2);

    // Bad parameters: 400 with nats-server's texts.
    for (q, text) in [
        ("sort=bogus", "invalid sorting option: bogus"),
        ("sort=stop", "sort by stop only valid on closed connections"),
        ("sort=reason&state=all", "sort by reason only valid on closed connections"),
        ("limit=x", "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"),
        (
            "cid=-1",
            "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"-1\": invalid syntax",
        ),
        (
            "subs=maybe",
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        ("state=x", "Error decoding state for x"),
    ] {
        let r = get(m, &format!("/connz?{q}")).await;
        assert_eq!((r.status, r.text()), (400, text.to_string()), "{q}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn connz_keeps_closed_connections_with_reason() {
    let (s, m) = start(opts()).await;
    let (_sub, publ) = traffic(s.client_addr()).await;
    let c = get_json(m, "/connz?state=all").await;
    let pub_cid = cids(&c)[1];
    let publ_port = publ.port();
    drop(publ);
    let c = wait_json(m, "/connz?state=closed", |v| v["total"] == 1).await;
    let cc = &conns(&c)[0];
    assert_eq!(cc["cid"], pub_cid);
    assert_eq!(cc["reason"], "Client Closed");
    assert_eq!(cc["name"], "pub1");
    assert_eq!(cc["port"], publ_port);
    assert_eq!((cc["in_msgs"].as_u64(), cc["in_bytes"].as_u64()), (Some(2), Some(8)));
    let (start, stop) = (cc["start"].as_str().unwrap(), cc["stop"].as_str().unwrap());
    assert!(is_rfc3339_utc(stop) && stop >= start);

    // A second closed connection, with another reason: a protocol error.
    let mut bad = TcpStream::connect(s.client_addr()).await.unwrap();
    bad.write_all(b"CONNECT {\"verbose\":false}\r\nBOGUS\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(T, bad.read_to_end(&mut sink)).await;
    let c = wait_json(m, "/connz?state=closed", |v| v["total"] == 2).await;
    let bad_cid = *cids(&c).iter().max().unwrap();
    assert!(bad_cid > pub_cid);

    // Most recent stop first; reasons ascending ("Client Closed" < "Parse Error").
    assert_eq!(cids(&get_json(m, "/connz?state=closed&sort=stop").await), vec![bad_cid, pub_cid]);
    let c = get_json(m, "/connz?state=closed&sort=reason").await;
    let reasons: Vec<&str> = conns(&c).iter().map(|c| c["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["Client Closed", "Parse Error"]);

    // state=all: open and closed together, in cid order; cid= finds a closed one.
    let c = get_json(m, "/connz?state=all").await;
    assert_eq!(c["total"], 3);
    assert_eq!(conns(&c).iter().filter(|c| c.get("stop").is_some()).count(), 2);
    let ids = cids(&c);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let c = get_json(m, &format!("/connz?state=closed&cid={pub_cid}")).await;
    assert_eq!(cids(&c), vec![pub_cid]);
    assert_eq!(
        cids(&get_json(m, &format!("/connz?cid={pub_cid}")).await),
        Vec::<u64>::new(),
        "not open"
    );
    // The open list no longer has them.
    assert_eq!(get_json(m, "/connz").await["total"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn connz_shows_official_client_metadata_and_auth_user() {
    let mut o = opts();
    o.authorization.user = Some("alice".into());
    o.authorization.password = Some("s3cret".into());
    let (s, m) = start(o).await;
    let nc = async_nats::ConnectOptions::with_user_and_password("alice".into(), "s3cret".into())
        .name("official")
        .connect(s.client_url())
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let c = get_json(m, "/connz").await;
    let ci = &conns(&c)[0];
    assert_eq!(ci["name"], "official");
    assert_eq!(ci["lang"], "rust");
    assert!(!ci["version"].as_str().unwrap().is_empty());
    assert!(ci.get("authorized_user").is_none(), "only with auth=1");
    let c = get_json(m, "/connz?auth=1").await;
    assert_eq!(conns(&c)[0]["authorized_user"], "alice");
    assert_eq!(cids(&get_json(m, "/connz?user=alice").await).len(), 1);
    assert_eq!(cids(&get_json(m, "/connz?user=bob").await).len(), 0);
    assert_eq!(get_json(m, "/varz").await["auth_required"], true);
    drop(nc);
    s.shutdown().await;
}

#[tokio::test]
async fn subsz_counts_and_lists_subscriptions() {
    let (s, m) = start(opts()).await;
    let (_sub, _publ) = traffic(s.client_addr()).await;
    let sub_cid = cids(&get_json(m, "/connz").await)[0];

    let z = get_json(m, "/subsz").await;
    assert_eq!(z["server_id"], s.id());
    assert_eq!(z["num_subscriptions"], 2);
    assert_eq!(z["num_inserts"], 2);
    assert_eq!(z["num_removes"], 0);
    assert!(z["num_matches"].as_u64().unwrap() >= 1, "the publishes were matched");
    assert_eq!(z["total"], 0, "no list asked for");
    assert!(z.get("subscriptions_list").is_none());
    assert_eq!((z["offset"].as_u64(), z["limit"].as_u64()), (Some(0), Some(1024)));

    let z = get_json(m, "/subsz?subs=1").await;
    assert_eq!(z["total"], 2);
    assert_eq!(
        z["subscriptions_list"],
        serde_json::json!([
            {"account": "$G", "account_tag": "$G", "subject": "foo", "sid": "1", "msgs": 2, "cid": sub_cid},
            {"account": "$G", "account_tag": "$G", "subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "cid": sub_cid},
        ])
    );
    // The alias answers the same and counts as /subsz.
    let z = get_json(m, "/subscriptionsz?subs=1&limit=1&offset=1").await;
    assert_eq!(
        (z["total"].as_u64(), z["subscriptions_list"][0]["subject"].as_str()),
        (Some(2), Some("bar"))
    );
    // `test` keeps the subscriptions a publish to that subject would reach.
    let z = get_json(m, "/subsz?subs=1&test=bar").await;
    assert_eq!(
        (z["total"].as_u64(), z["subscriptions_list"][0]["qgroup"].as_str()),
        (Some(1), Some("q"))
    );
    assert_eq!(get_json(m, "/subsz?subs=1&test=baz").await["total"], 0);
    let r = get(m, "/subsz?subs=1&test=foo.*").await;
    assert_eq!(
        (r.status, r.text()),
        (400, "invalid test subject, must be valid publish subject: foo.*".to_string())
    );
    assert_eq!(get_json(m, "/subsz?acc=OTHER").await["num_subscriptions"], 0);

    // A wildcard subscription matched by a literal test subject.
    let mut w = Raw::named(s.client_addr(), "wild").await;
    w.send(b"SUB foo.> 7\r\n").await;
    w.sync().await;
    let z = get_json(m, "/subsz?subs=1&test=foo.x.y").await;
    assert_eq!(
        (z["total"].as_u64(), z["subscriptions_list"][0]["subject"].as_str()),
        (Some(1), Some("foo.>"))
    );
    let v = get_json(m, "/varz").await;
    assert_eq!(v["subscriptions"], 3);
    assert_eq!(v["http_req_stats"]["/subsz"], 8, "both paths, the 400 included");
    s.shutdown().await;
}

#[tokio::test]
async fn routez_healthz_index_metrics_and_unknown_paths() {
    let (s, m) = start(opts()).await;
    let (_sub, _publ) = traffic(s.client_addr()).await;

    let r = get_json(m, "/routez").await;
    assert_eq!((r["num_routes"].as_u64(), r["routes"].clone()), (Some(0), serde_json::json!([])));
    assert_eq!(r["server_name"], s.id());

    let h = get(m, "/healthz").await;
    assert_eq!((h.status, h.text()), (200, r#"{"status":"ok"}"#.to_string()));
    assert_eq!(h.header("access-control-allow-origin"), Some("*"));
    let h = get(m, "/healthz?stream=S").await;
    assert_eq!(h.status, 400);
    assert_eq!(h.json()["error"], "\"account\" must not be empty when checking stream health");
    assert_eq!(get(m, "/healthz?details=x").await.status, 400);

    let idx = get(m, "/").await;
    assert_eq!(idx.status, 200);
    assert!(idx.header("content-type").unwrap().starts_with("text/html"));
    for link in ["./varz", "./connz", "./subsz", "./routez", "./jsz", "./healthz", "./metrics"] {
        assert!(idx.text().contains(&format!("href=\"{link}\"")), "index links {link}");
    }

    for path in ["/nope", "/varz/", "/jsz/", "/connz/x"] {
        let r = get(m, path).await;
        assert_eq!((r.status, r.text()), (404, "404 page not found\n".to_string()), "{path}");
    }

    // nats-server v2.15 has no JSONP: `callback` is ignored.
    let r = get(m, "/varz?callback=cb").await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with('{'), "plain JSON");

    let p = get(m, "/metrics").await;
    assert_eq!(p.status, 200);
    assert!(p.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = p.text();
    for line in [
        "# TYPE chorus_in_msgs_total counter",
        "chorus_in_msgs_total 2",
        "chorus_in_bytes_total 8",
        "# TYPE chorus_connections gauge",
        "chorus_connections 2",
        "chorus_connections_accepted_total 2",
        "chorus_subscriptions 2",
        "chorus_slow_consumers_total 0",
        "chorus_routes 0",
        "chorus_http_requests_total{path=\"/metrics\"} 1",
        "chorus_http_requests_total{path=\"/healthz\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains(&format!("chorus_info{{server_id=\"{}\"", s.id())));
    // Every sample has HELP and TYPE lines before it.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "HELP for {name}");
        assert!(text.contains(&format!("# TYPE {name} ")), "TYPE for {name}");
    }

    let v = get_json(m, "/varz").await;
    let stats = &v["http_req_stats"];
    assert_eq!(
        (stats["/"].as_u64(), stats["/routez"].as_u64(), stats["/varz"].as_u64()),
        (Some(1), Some(1), Some(2))
    );
    assert!(stats.get("/nope").is_none(), "404s are not counted");
    s.shutdown().await;
}

#[tokio::test]
async fn endpoints_move_under_http_base_path() {
    let mut o = opts();
    o.http_base_path = "mon/".into();
    let (s, m) = start(o).await;
    assert_eq!(get_json(m, "/mon/varz").await["http_base_path"], "mon/");
    assert_eq!(get(m, "/mon").await.status, 200, "the index");
    assert!(get(m, "/mon").await.text().contains("href=\"/mon/connz\""));
    assert_eq!(get(m, "/varz").await.status, 404);
    assert_eq!(get(m, "/").await.status, 404);
    assert_eq!(get(m, "/mon/").await.status, 404, "as Go's mux: no pattern for /mon/");
    s.shutdown().await;
}

#[tokio::test]
async fn healthz_fails_once_lame_duck_mode_closes_the_listener() {
    let mut o = opts();
    o.lame_duck_grace_period = Duration::from_secs(1);
    o.lame_duck_duration = Duration::from_secs(2);
    let (s, m) = start(o).await;
    let _c = Raw::named(s.client_addr(), "stays").await;
    assert_eq!(get(m, "/healthz").await.status, 200);
    let ldm = tokio::spawn(s.lame_duck());
    let deadline = tokio::time::Instant::now() + T;
    let h = loop {
        let h = get(m, "/healthz").await;
        if h.status != 200 {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "healthz stayed ok in lame duck mode");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(h.status, 500);
    assert_eq!(
        h.json(),
        serde_json::json!({"status": "error", "error": "failed to be ready for connections after 1ms: server"})
    );
    let d = get(m, "/healthz?details=true").await;
    assert_eq!(d.status, 500);
    assert_eq!(d.json()["errors"][0]["type"], "CONNECTION");
    tokio::time::timeout(Duration::from_secs(10), ldm).await.expect("lame duck ends").unwrap();
}

#[tokio::test]
async fn key_sets_match_nats_server_except_recorded_omissions() {
    let (s, m) = start(opts()).await;
    let (_sub, publ) = traffic(s.client_addr()).await;
    drop(publ);
    wait_json(m, "/connz?state=closed", |v| v["total"] == 1).await;

    let v = get_json(m, "/varz").await;
    assert_key_set("/varz", &v, NATS_VARZ_KEYS, OMITTED_VARZ_KEYS, CHORUS_VARZ_KEYS);
    assert_eq!(keys(&v["slow_consumer_stats"]), ["clients", "gateways", "leafs", "routes"]);

    let c = get_json(m, "/connz?subs=1").await;
    assert_key_set("/connz", &c, NATS_CONNZ_KEYS, &[], &[]);
    assert_key_set(
        "/connz open connection",
        &conns(&c)[0],
        NATS_OPEN_CONN_KEYS,
        OMITTED_OPEN_CONN_KEYS,
        &[],
    );
    let c = get_json(m, "/connz?state=closed").await;
    assert_key_set(
        "/connz closed connection",
        &conns(&c)[0],
        NATS_CLOSED_CONN_KEYS,
        OMITTED_CLOSED_CONN_KEYS,
        &[],
    );

    let z = get_json(m, "/subsz?subs=1").await;
    assert_key_set("/subsz", &z, NATS_SUBSZ_KEYS, &[], &[]);
    let queue =
        z["subscriptions_list"].as_array().unwrap().iter().find(|d| d["subject"] == "bar").unwrap();
    assert_key_set("/subsz subscription", queue, NATS_SUB_DETAIL_KEYS, &[], &[]);
    assert_key_set("/routez", &get_json(m, "/routez").await, NATS_ROUTEZ_KEYS, &[], &[]);
    s.shutdown().await;
}

/// The top-level keys of nats-server v2.15.2's `/jsz` with JetStream on.
const NATS_JSZ_KEYS: &[&str] = &[
    "memory",
    "storage",
    "reserved_memory",
    "reserved_storage",
    "accounts",
    "ha_assets",
    "api",
    "server_id",
    "now",
    "config",
    "limits",
    "streams",
    "consumers",
    "messages",
    "bytes",
    "total",
];

#[tokio::test]
async fn jsz_counts_streams_consumers_and_details() {
    let (plain, m) = start(opts()).await;
    // Without JetStream: nats-server's zero report with `disabled`.
    let v = get_json(m, "/jsz").await;
    assert_eq!(v["disabled"], true);
    assert_eq!(v["server_id"], plain.id());
    plain.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.jetstream.enabled = true;
    o.jetstream.store_dir = Some(dir.path().to_path_buf());
    let (s, m) = start(o).await;
    let nc = async_nats::connect(s.client_url()).await.unwrap();
    let js = async_nats::jetstream::new(nc.clone());
    for (name, n) in [("S1", 3u64), ("S2", 2)] {
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.into(),
            subjects: vec![format!("{}.>", name.to_lowercase())],
            ..Default::default()
        })
        .await
        .unwrap();
        for i in 0..n {
            js.publish(format!("{}.x", name.to_lowercase()), format!("{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    let st = js.get_stream("S1").await.unwrap();
    st.create_consumer(async_nats::jetstream::consumer::pull::Config {
        durable_name: Some("C1".into()),
        ..Default::default()
    })
    .await
    .unwrap();

    let v = get_json(m, "/jsz").await;
    for k in NATS_JSZ_KEYS {
        assert!(v.get(*k).is_some(), "/jsz lacks {k}: {v}");
    }
    assert_eq!((v["streams"].as_u64(), v["consumers"].as_u64()), (Some(2), Some(1)));
    assert_eq!(v["messages"], 5);
    assert!(v["storage"].as_u64().unwrap() > 0 && v["memory"] == 0);
    assert!(v["api"]["total"].as_u64().unwrap() >= 3);
    assert!(v.get("account_details").is_none(), "details only when asked");

    let v = get_json(m, "/jsz?consumers=true").await;
    let acc = &v["account_details"][0];
    assert_eq!(acc["name"], "$G");
    let streams = acc["stream_detail"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["name"], "S1");
    assert_eq!(streams[0]["state"]["messages"], 3);
    assert_eq!(streams[0]["state"]["consumer_count"], 1);
    assert!(streams[0].get("config").is_none(), "config only with config=true");
    let c = &streams[0]["consumer_detail"][0];
    assert_eq!((c["name"].as_str(), c["num_pending"].as_u64()), (Some("C1"), Some(3)));
    assert!(c.get("config").is_none());

    let v = get_json(m, "/jsz?streams=true&config=true&acc=$G").await;
    let s1 = &v["account_details"][0]["stream_detail"][0];
    assert_eq!(s1["config"]["subjects"][0], "s1.>");
    assert!(s1.get("consumer_detail").is_none());
    // Paging over accounts, and bad booleans refused as nats-server does.
    let v = get_json(m, "/jsz?accounts=true&offset=1").await;
    assert!(v.get("account_details").is_none());
    assert_eq!(v["total"], 1);
    let r = get(m, "/jsz?accounts=maybe").await;
    assert_eq!(r.status, 400);
    s.shutdown().await;
}
