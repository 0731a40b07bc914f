//! The monitoring HTTP listener (nats-server's `http_port`).
//!
//! Same paths, query parameters, JSON field names and units as nats-server v2.15.2's
//! `server/monitor.go`, so dashboards, `prometheus-nats-exporter` and scripts written against
//! nats-server read Chorus unchanged:
//!
//! | path | what |
//! |------|------|
//! | `/` | a small HTML index of the endpoints below |
//! | `/varz` | server identity, limits, counters, process figures |
//! | `/connz` | connections: paging, sorting, `state=open\|closed\|all`, `subs`, `cid`, `auth` |
//! | `/subsz`, `/subscriptionsz` | sublist statistics; `subs=1` lists subscriptions |
//! | `/routez` | route connections to the other servers (`subs=1`, `subs=detail`) |
//! | `/healthz` | `{"status":"ok"}`, or 500 once the client listener is closed |
//! | `/metrics` | Chorus's own addition: the `/varz` figures in Prometheus text format |
//!
//! Layout: `serve` runs the accept loop and one hyper HTTP/1 task per connection, all ended
//! by the server's shutdown token. `Monitor::handle` maps a path to one function per
//! endpoint; each builds a serde struct whose field order and omission rules follow
//! monitor.go. At the bottom are the Go formats the JSON must reproduce: RFC 3339 times with
//! nanoseconds, `myUptime` strings (`1d2h3m4s`), `time.Duration` strings for `rtt`, floats
//! without a trailing `.0`, and strconv's error texts for malformed query values.
//!
//! Where nats-server reports something Chorus does not track, the field is left out rather than
//! filled with a made-up value (`gomaxprocs`, `config_digest`, `stale_connections`, ...; the
//! list with reasons is `OMITTED_VARZ_KEYS` in `tests/monitor.rs`). nats-server v2.15 has no
//! JSONP: a `callback=` parameter is ignored there, and so it is here.
//!
//! Work per request is bounded by what the server holds: `/connz` and `/subsz` pages default
//! to 1024 entries (nats-server caps neither `limit`; the lists are bounded by
//! `max_connections`, the closed-connection ring and the subscription count), and
//! subscription lists are built for the returned page only.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};
use tokio::net::TcpListener;

use crate::account::GLOBAL_ACCOUNT;
use crate::info;
use crate::server::{ClosedConn, ServerInner};
use crate::sub::{ClientShared, Subscription};
use chorus_jetstream::go::rfc3339;

/// Default page size of `/connz` and `/subsz` (nats-server `DefaultConnListSize`,
/// `DefaultSubListSize`).
pub const DEFAULT_LIST_SIZE: i64 = 1024;

/// nats-server's `ReadHeaderTimeout` for the monitor: a client that never finishes its request
/// headers does not hold a task forever.
const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// nats-server's default `tls_timeout` (seconds), reported when TLS is not configured, as
/// nats-server does.
const DEFAULT_TLS_TIMEOUT: f64 = 2.0;

/// The paths nats-server serves that Chorus serves too, as counted in `http_req_stats`.
const ROOT_PATH: &str = "/";
const VARZ_PATH: &str = "/varz";
const CONNZ_PATH: &str = "/connz";
const ROUTEZ_PATH: &str = "/routez";
/// nats-server's default route authentication timeout, in seconds (shown in /varz).
const DEFAULT_ROUTE_AUTH_TIMEOUT: f64 = 2.0;
const SUBSZ_PATH: &str = "/subsz";
const SUBSZ_ALIAS: &str = "/subscriptionsz";
const HEALTHZ_PATH: &str = "/healthz";
const METRICS_PATH: &str = "/metrics";
const JSZ_PATH: &str = "/jsz";

/// Accepts monitor connections until the server shuts down.
pub(crate) async fn serve(inner: Arc<ServerInner>, listener: TcpListener) {
    let monitor = Arc::new(Monitor::new(inner));
    loop {
        let (stream, _) = tokio::select! {
            _ = monitor.inner.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("Error accepting monitor connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let m = monitor.clone();
        tokio::spawn(async move {
            let stop = m.inner.shutdown.clone();
            let svc = hyper::service::service_fn(move |req| {
                let m = m.clone();
                async move { Ok::<_, Infallible>(m.handle(&req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

type Resp = Response<Full<Bytes>>;

/// `/jsz` of a server without JetStream: nats-server's zero `JSInfo`.
#[derive(Serialize)]
struct JszDisabled {
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JszDisabledApi,
    server_id: String,
    now: String,
    disabled: bool,
    config: JszDisabledConfig,
    streams: u64,
    consumers: u64,
    messages: u64,
    bytes: u64,
    total: u64,
}

#[derive(Serialize, Default)]
struct JszDisabledApi {
    level: u64,
    total: u64,
    errors: u64,
}

#[derive(Serialize, Default)]
struct JszDisabledConfig {
    max_memory: u64,
    max_storage: u64,
}

/// The monitor's own state: the request counters shown in `/varz` and the CPU sampler.
struct Monitor {
    inner: Arc<ServerInner>,
    req_stats: Mutex<BTreeMap<&'static str, u64>>,
}

impl Monitor {
    fn new(inner: Arc<ServerInner>) -> Self {
        Monitor { inner, req_stats: Mutex::new(BTreeMap::new()) }
    }

    fn count(&self, path: &'static str) {
        *self.req_stats.lock().unwrap().entry(path).or_insert(0) += 1;
    }

    async fn handle<B>(&self, req: &Request<B>) -> Resp {
        let q = Query::parse(req.uri().query().unwrap_or(""));
        let base = normalize_base_path(&self.inner.opts().http_base_path);
        let path = req.uri().path();
        // nats-server registers every endpoint under `http_base_path` with Go's ServeMux; the
        // index answers its exact path only.
        if path == base {
            return self.root(&base);
        }
        let Some(rel) = strip_base(path, &base) else {
            return not_found();
        };
        match rel {
            VARZ_PATH => self.varz(),
            CONNZ_PATH => self.connz(&q),
            ROUTEZ_PATH => self.routez(&q),
            SUBSZ_PATH | SUBSZ_ALIAS => self.subsz(&q),
            HEALTHZ_PATH => self.healthz(&q),
            METRICS_PATH => self.metrics(),
            JSZ_PATH => self.jsz(&q).await,
            _ => not_found(),
        }
    }

    fn root(&self, base: &str) -> Resp {
        self.count(ROOT_PATH);
        let mut links = String::new();
        for (label, p) in [
            ("General", VARZ_PATH),
            ("Connections", CONNZ_PATH),
            ("Subscriptions", SUBSZ_PATH),
            ("Routes", ROUTEZ_PATH),
            ("JetStream", JSZ_PATH),
            ("Health Probe", HEALTHZ_PATH),
            ("Metrics", METRICS_PATH),
        ] {
            // Relative links, as nats-server's index uses, so a proxy prefix keeps working.
            let href = if base == "/" { format!(".{p}") } else { format!("{base}{p}") };
            let _ = writeln!(
                links,
                "    <a href=\"{href}\">{label}<span class=\"endpoint\"> {p}</span></a>"
            );
        }
        let body = format!(
            "<html lang=\"en\">\n  <head>\n    <title>Chorus monitoring</title>\n    \
             <style type=\"text/css\">\n      body {{ font-family: sans-serif; margin-left: 32px }}\n      \
             a {{ display: block; padding-bottom: 6px; text-decoration: none }}\n      \
             .endpoint {{ font-size: 12px; color: #999; font-family: monospace }}\n    \
             </style>\n  </head>\n  <body>\n    <h2>Chorus v{} (nats-server {} compatible)</h2>\n\
             {links}    <a href=\"https://docs.nats.io/running-a-nats-service/nats_admin/monitoring\">\
             Help</a>\n  </body>\n</html>\n",
            info::CHORUS_VERSION,
            info::COMPAT_VERSION,
        );
        respond(StatusCode::OK, "text/html; charset=utf-8", body.into_bytes(), false)
    }

    // ---------------------------------------------------------------------------------------
    // /jsz

    async fn jsz(&self, q: &Query) -> Resp {
        let flag = |k: &str| q.bool(k);
        let parsed = (|| {
            Ok::<_, String>(crate::jetstream::JszOptions {
                account: Some(q.get("acc").to_string()).filter(|a| !a.is_empty()),
                accounts: flag("accounts")?,
                streams: flag("streams")?,
                consumers: flag("consumers")?,
                config: flag("config")?,
                offset: usize::try_from(q.int("offset")?.max(0)).unwrap_or(0),
                limit: usize::try_from(q.int("limit")?.max(0)).unwrap_or(0),
            })
        })()
        .and_then(|o| {
            // Accepted for compatibility; a single server leads everything it has.
            ["direct-consumers", "leader-only", "raft", "stream-leader-only"]
                .into_iter()
                .try_for_each(|k| flag(k).map(drop))
                .map(|()| o)
        });
        let o = match parsed {
            Ok(o) => o,
            Err(e) => return bad_request(e),
        };
        self.count(JSZ_PATH);
        let js = self.inner.jetstream.lock().unwrap().clone();
        let info = match js {
            Some(h) => h.jsz(o).await,
            None => None,
        };
        match info {
            Some(info) => json_ok(&info),
            None => json_ok(&JszDisabled {
                memory: 0,
                storage: 0,
                reserved_memory: 0,
                reserved_storage: 0,
                accounts: 0,
                ha_assets: 0,
                api: JszDisabledApi::default(),
                server_id: self.inner.id.clone(),
                now: rfc3339(SystemTime::now()),
                disabled: true,
                config: JszDisabledConfig::default(),
                streams: 0,
                consumers: 0,
                messages: 0,
                bytes: 0,
                total: 0,
            }),
        }
    }

    // ---------------------------------------------------------------------------------------
    // /varz

    fn varz(&self) -> Resp {
        self.count(VARZ_PATH);
        let v = self.build_varz();
        json_ok(&v)
    }

    fn cluster_varz(&self, opts: &chorus_conf::Options) -> ClusterVarz {
        let Some(c) = opts.cluster.as_ref() else { return ClusterVarz::default() };
        let port = self.inner.cluster_addr.lock().unwrap().map_or(0, |a| a.port());
        ClusterVarz {
            name: self.inner.cluster_name(),
            host: c.host.clone(),
            cluster_port: port,
            auth_timeout: c.auth_timeout.map_or(DEFAULT_ROUTE_AUTH_TIMEOUT, |d| d.as_secs_f64()),
            urls: c
                .routes
                .iter()
                .filter_map(|u| crate::route::conn::parse_url(u).map(|(a, _)| a))
                .collect(),
            tls_timeout: c.tls.as_ref().map_or(DEFAULT_TLS_TIMEOUT, |t| t.timeout.as_secs_f64()),
            pool_size: c.pool_size,
            write_deadline: c.write_deadline.map_or(0, nanos),
        }
    }

    fn build_varz(&self) -> Varz {
        let inner = &self.inner;
        let opts = inner.opts();
        let now = SystemTime::now();
        let st = &inner.stats;
        let client_port = inner.client_addr.lock().unwrap().map_or(opts.port, |a| a.port());
        let http_port = inner
            .monitor_addr
            .lock()
            .unwrap()
            .map_or_else(|| opts.http_port.unwrap_or(0), |a| a.port());
        let in_msgs = st.in_msgs.load(Ordering::Relaxed);
        let in_bytes = st.in_bytes.load(Ordering::Relaxed);
        let out_msgs = st.out_msgs.load(Ordering::Relaxed);
        let out_bytes = st.out_bytes.load(Ordering::Relaxed);
        let slow = st.slow_consumers.load(Ordering::Relaxed);
        Varz {
            server_id: inner.id.clone(),
            server_name: inner.name.clone(),
            version: info::COMPAT_VERSION,
            proto: info::PROTO,
            go: "rust",
            host: opts.host.clone(),
            port: client_port,
            auth_required: inner.auth().required(),
            connect_urls: inner.client_connect_urls(false),
            ws_connect_urls: inner.client_connect_urls(true),
            max_connections: opts.max_connections,
            max_subscriptions: opts.max_subscriptions,
            ping_interval: nanos(opts.ping_interval),
            ping_max: opts.ping_max,
            http_host: opts.http_host.clone(),
            http_port,
            http_base_path: opts.http_base_path.clone(),
            // Chorus serves no HTTPS monitor; 0 is what nats-server shows without one.
            https_port: 0,
            auth_timeout: opts.authorization.timeout.as_secs_f64(),
            max_control_line: opts.max_control_line,
            max_payload: opts.max_payload,
            max_pending: opts.max_pending,
            cluster: self.cluster_varz(&opts),
            gateway: Empty {},
            leaf: Empty {},
            mqtt: Empty {},
            websocket: Empty {},
            jetstream: Empty {},
            tls_timeout: opts.tls.as_ref().map_or(DEFAULT_TLS_TIMEOUT, |t| t.timeout.as_secs_f64()),
            write_deadline: nanos(opts.write_deadline),
            start: rfc3339(inner.start_time),
            now: rfc3339(now),
            uptime: my_uptime(since(inner.start_time, now)),
            mem: resident_memory(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_percent(),
            connections: inner.clients.lock().unwrap().len(),
            total_connections: st.total_connections.load(Ordering::Relaxed),
            routes: inner.routes.links().len() as u32,
            remotes: inner.routes.num_remotes() as u32,
            leafnodes: 0,
            in_msgs,
            in_bytes,
            in_client_msgs: in_msgs - st.in_route_msgs.load(Ordering::Relaxed),
            in_client_bytes: in_bytes - st.in_route_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            out_client_msgs: out_msgs - st.out_route_msgs.load(Ordering::Relaxed),
            out_client_bytes: out_bytes - st.out_route_bytes.load(Ordering::Relaxed),
            slow_consumers: slow,
            subscriptions: inner.gacc.sublist.count(),
            http_req_stats: self.req_stats.lock().unwrap().clone(),
            config_load_time: rfc3339(*inner.config_load_time.lock().unwrap()),
            system_account: crate::server::system_account_name(&opts, &inner.auth()),
            slow_consumer_stats: SlowConsumersStats {
                clients: slow,
                routes: 0,
                gateways: 0,
                leafs: 0,
            },
            chorus: info::CHORUS_VERSION,
        }
    }

    // ---------------------------------------------------------------------------------------
    // /connz

    fn connz(&self, q: &Query) -> Resp {
        let o = match ConnzOptions::from_query(q) {
            Ok(o) => o,
            Err(e) => return bad_request(e),
        };
        self.count(CONNZ_PATH);
        self.build_connz(&o).map_or_else(bad_request, |c| json_ok(&c))
    }

    fn build_connz(&self, o: &ConnzOptions) -> Result<Connz, String> {
        let sort =
            SortBy::parse(&o.sort).ok_or_else(|| format!("invalid sorting option: {}", o.sort))?;
        if sort == SortBy::Stop && o.state != ConnState::Closed {
            return Err("sort by stop only valid on closed connections".into());
        }
        if sort == SortBy::Reason && o.state != ConnState::Closed {
            return Err("sort by reason only valid on closed connections".into());
        }
        let offset = o.offset.max(0);
        let mut limit = if o.limit <= 0 { DEFAULT_LIST_SIZE } else { o.limit };
        if o.cid > 0 {
            limit = 1;
        }
        let now = SystemTime::now();
        let mut c = Connz {
            server_id: String::new(),
            now: rfc3339(now),
            num_connections: 0,
            total: 0,
            offset,
            limit,
            connections: None,
        };
        // Every client is in the global account until accounts arrive; nats-server answers an
        // unknown account with this bare envelope (no server id, `connections: null`).
        if !o.acc.is_empty() && o.acc != GLOBAL_ACCOUNT {
            return Ok(c);
        }
        let open: Vec<Arc<ClientShared>> =
            self.inner.clients.lock().unwrap().values().cloned().collect();
        c.server_id = self.inner.id.clone();
        let want_open = matches!(o.state, ConnState::Open | ConnState::All);
        let want_closed = matches!(o.state, ConnState::Closed | ConnState::All);
        let mut closed: Vec<ClosedConn> = if want_closed {
            self.inner.closed.lock().unwrap().iter().cloned().collect()
        } else {
            Vec::new()
        };
        c.total = if want_open { open.len() } else { 0 } + closed.len();
        // nats-server records the account of a closed connection only when it is not the
        // global one, so filtering by `acc=$G` leaves no closed connection.
        if !o.acc.is_empty() {
            c.total -= closed.len();
            closed.clear();
        }

        let mut selected: Vec<Arc<ClientShared>> = Vec::new();
        if o.cid > 0 {
            if want_open && let Some(cl) = open.iter().find(|cl| cl.cid == o.cid) {
                let user = cl.meta.lock().unwrap().user.clone().unwrap_or_default();
                if (o.user.is_empty() || user == o.user) && o.mqtt_client.is_empty() {
                    selected.push(cl.clone());
                    closed.clear();
                }
            }
            if selected.is_empty() && want_closed {
                closed.retain(|cc| cc.cid == o.cid);
                closed.truncate(1);
            } else {
                closed.clear();
            }
        } else if want_open {
            for cl in &open {
                let user = cl.meta.lock().unwrap().user.clone().unwrap_or_default();
                if !o.user.is_empty() && user != o.user {
                    continue;
                }
                // Chorus has no MQTT clients, so an MQTT client id matches nothing.
                if !o.mqtt_client.is_empty() {
                    continue;
                }
                selected.push(cl.clone());
            }
        }
        // Closed connections remember no user name yet, so a user filter drops them all, as
        // it would in nats-server for connections without one.
        if !o.user.is_empty() || !o.mqtt_client.is_empty() {
            closed.clear();
        }
        if selected.is_empty() && closed.is_empty() {
            c.connections = Some(Vec::new());
            return Ok(c);
        }

        let mut infos: Vec<ConnInfo> = Vec::with_capacity(selected.len() + closed.len());
        for cl in &selected {
            infos.push(open_info(cl, now, o.auth));
        }
        for cc in &closed {
            infos.push(closed_info(cc));
        }
        sort_infos(&mut infos, sort, now);

        let n = infos.len() as i64;
        let lo = offset.min(n);
        let hi = lo + limit.min(n - lo);
        let mut page: Vec<ConnInfo> =
            infos.into_iter().skip(lo as usize).take((hi - lo) as usize).collect();
        if o.subs || o.subs_detail {
            self.fill_subs(&mut page, o.subs_detail);
        }
        c.num_connections = page.len();
        c.connections = Some(page);
        Ok(c)
    }

    /// Adds subscription lists to the open connections of one page: a single walk of the
    /// account's sublist, keeping only the subscriptions of those connections.
    fn fill_subs(&self, page: &mut [ConnInfo], detail: bool) {
        let mut by_cid: FxHashMap<u64, Vec<Arc<Subscription>>> =
            page.iter().filter(|ci| ci.stop.is_none()).map(|ci| (ci.cid, Vec::new())).collect();
        if by_cid.is_empty() {
            return;
        }
        // Clients of every account, not only the global one (operator mode, `accounts {}`).
        for acc in self.inner.all_accounts() {
            for s in acc.sublist.all() {
                if let Some(v) = by_cid.get_mut(&s.0.client.cid)
                    && !s.0.removed.load(Ordering::Relaxed)
                {
                    v.push(s.0);
                }
            }
        }
        for ci in page.iter_mut() {
            let Some(mut subs) = by_cid.remove(&ci.cid) else {
                continue;
            };
            subs.sort_by(|a, b| sid_order(&a.sid, &b.sid));
            if detail {
                ci.subscriptions_list_detail = subs.iter().map(|s| sub_detail(s, "")).collect();
            } else {
                ci.subscriptions_list =
                    subs.iter().map(|s| String::from_utf8_lossy(&s.subject).into_owned()).collect();
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // /routez

    fn routez(&self, q: &Query) -> Resp {
        let (subs, detail) = match q.subs() {
            Ok(x) => x,
            Err(e) => return bad_request(e),
        };
        self.count(ROUTEZ_PATH);
        let now = SystemTime::now();
        let links = self.inner.routes.links();
        // Route subscriptions live in the accounts' sublists, owned by their link.
        let mut by_rid: FxHashMap<u64, Vec<(String, Arc<Subscription>)>> = FxHashMap::default();
        if subs || detail {
            for acc in self.inner.all_accounts() {
                for s in acc.sublist.all() {
                    if s.0.client.kind == crate::conn::Kind::Router {
                        by_rid.entry(s.0.client.cid).or_default().push((acc.name.clone(), s.0));
                    }
                }
            }
        }
        let mut routes: Vec<RouteRow> = links
            .iter()
            .map(|l| {
                let v = l.view();
                let mut mine = by_rid.remove(&v.rid).unwrap_or_default();
                mine.sort_by(|a, b| a.1.subject.cmp(&b.1.subject));
                RouteRow {
                    rid: v.rid,
                    remote_id: v.remote_id,
                    remote_name: v.remote_name,
                    did_solicit: v.did_solicit,
                    is_configured: v.is_configured,
                    ip: v.addr.ip().to_string(),
                    port: v.addr.port(),
                    start: rfc3339(v.start),
                    last_activity: rfc3339(v.last_activity),
                    // nats-server shows "0s" until a PING was answered.
                    rtt: go_rtt(v.rtt.unwrap_or_default()),
                    uptime: my_uptime(since(v.start, now)),
                    idle: my_uptime(since(v.last_activity, now)),
                    pending_size: v.pending,
                    in_msgs: v.in_msgs,
                    out_msgs: v.out_msgs,
                    in_bytes: v.in_bytes,
                    out_bytes: v.out_bytes,
                    subscriptions: v.subscriptions,
                    subscriptions_list: if subs {
                        mine.iter()
                            .map(|(_, s)| String::from_utf8_lossy(&s.subject).into_owned())
                            .collect()
                    } else {
                        Vec::new()
                    },
                    subscriptions_list_detail: if detail {
                        mine.iter()
                            .map(|(acc, s)| SubDetail {
                                account: String::new(),
                                account_tag: String::new(),
                                ..sub_detail(s, acc)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    account: v.account.unwrap_or_default(),
                    compression: "off",
                }
            })
            .collect();
        routes.sort_by_key(|r| r.rid);
        let r = Routez {
            server_id: self.inner.id.clone(),
            server_name: self.inner.name.clone(),
            now: rfc3339(now),
            num_routes: routes.len(),
            routes,
        };
        json_ok(&r)
    }

    // ---------------------------------------------------------------------------------------
    // /subsz

    fn subsz(&self, q: &Query) -> Resp {
        // nats-server counts /subsz before decoding its parameters (and /connz after).
        self.count(SUBSZ_PATH);
        let built = (|| {
            let (subs, offset, limit) = (q.bool("subs")?, q.int("offset")?, q.int("limit")?);
            self.build_subsz(subs, offset, limit, q.get("test"), q.get("acc"))
        })();
        built.map_or_else(bad_request, |s| json_ok(&s))
    }

    fn build_subsz(
        &self,
        detail: bool,
        offset: i64,
        limit: i64,
        test: &str,
        acc: &str,
    ) -> Result<Subsz, String> {
        let offset = offset.max(0);
        let limit = if limit <= 0 { DEFAULT_LIST_SIZE } else { limit };
        if !test.is_empty() && !chorus_proto::subject::is_valid_literal_subject(test.as_bytes()) {
            return Err(format!("invalid test subject, must be valid publish subject: {test}"));
        }
        let gacc = &self.inner.gacc;
        let included = acc.is_empty() || acc == gacc.name;
        let st = if included { gacc.sublist.stats() } else { Default::default() };
        let mut sz = Subsz {
            server_id: self.inner.id.clone(),
            now: rfc3339(SystemTime::now()),
            num_subscriptions: st.num_subs,
            num_cache: st.num_cache,
            num_inserts: st.num_inserts,
            num_removes: st.num_removes,
            num_matches: st.num_matches,
            cache_hit_rate: st.cache_hit_rate,
            max_fanout: st.max_fanout,
            avg_fanout: st.avg_fanout,
            total: 0,
            offset,
            limit,
            subscriptions_list: Vec::new(),
        };
        if detail && included {
            let mut subs: Vec<Arc<Subscription>> = gacc
                .sublist
                .all()
                .into_iter()
                .map(|s| s.0)
                // Route interest counts in num_subscriptions but is listed in /routez only.
                .filter(|s| s.client.kind != crate::conn::Kind::Router)
                .filter(|s| {
                    test.is_empty()
                        || chorus_proto::subject::subject_is_subset_of(test.as_bytes(), &s.subject)
                })
                .collect();
            // A stable order, so that paging through the list sees every subscription once.
            subs.sort_by(|a, b| {
                a.client.cid.cmp(&b.client.cid).then_with(|| sid_order(&a.sid, &b.sid))
            });
            let n = subs.len() as i64;
            let lo = offset.min(n);
            let hi = lo + limit.min(n - lo);
            sz.total = subs.len();
            sz.subscriptions_list =
                subs[lo as usize..hi as usize].iter().map(|s| sub_detail(s, &gacc.name)).collect();
        }
        Ok(sz)
    }

    // ---------------------------------------------------------------------------------------
    // /healthz

    fn healthz(&self, q: &Query) -> Resp {
        self.count(HEALTHZ_PATH);
        // The JetStream switches are decoded only to refuse malformed values: without
        // JetStream there is nothing more for them to check.
        let decoded = ["js-enabled", "js-enabled-only", "js-server-only", "js-meta-only"]
            .into_iter()
            .try_for_each(|p| q.bool(p).map(drop))
            .and_then(|()| q.bool("details"));
        let details = match decoded {
            Ok(d) => d,
            Err(e) => return bad_request(e),
        };
        let (code, h) = self.health(details, q.get("account"), q.get("stream"), q.get("consumer"));
        let body = serde_json::to_vec(&h).expect("health status serialises");
        respond(code, "application/json", body, true)
    }

    /// nats-server's `healthz()` for a server without JetStream: parameter checks, then whether
    /// the client listener still accepts (it is closed in lame duck mode and on shutdown).
    fn health(
        &self,
        details: bool,
        account: &str,
        stream: &str,
        consumer: &str,
    ) -> (StatusCode, HealthStatus) {
        let fail = |code: StatusCode, kind: &'static str, err: String| {
            let h = if details {
                HealthStatus {
                    status: "error",
                    error: String::new(),
                    errors: vec![HealthzError { kind, error: err }],
                }
            } else {
                HealthStatus { status: "error", error: err, errors: Vec::new() }
            };
            (code, h)
        };
        if account.is_empty() && !stream.is_empty() {
            return fail(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "\"account\" must not be empty when checking stream health".into(),
            );
        }
        if stream.is_empty() && !consumer.is_empty() {
            return fail(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "\"stream\" must not be empty when checking consumer health".into(),
            );
        }
        let inner = &self.inner;
        let listening = !inner.accept_stop.is_cancelled()
            && !inner.shutdown.is_cancelled()
            && !inner.ldm.load(Ordering::Relaxed);
        if !listening {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CONNECTION",
                "failed to be ready for connections after 1ms: server".into(),
            );
        }
        (StatusCode::OK, HealthStatus { status: "ok", error: String::new(), errors: Vec::new() })
    }

    // ---------------------------------------------------------------------------------------
    // /metrics

    fn metrics(&self) -> Resp {
        self.count(METRICS_PATH);
        let v = self.build_varz();
        let sl = self.inner.gacc.sublist.stats();
        let mut m = Metrics::default();
        m.info(&v);
        m.gauge(
            "chorus_start_time_seconds",
            "Start time, seconds since the epoch (/varz start).",
            unix_secs(self.inner.start_time),
        );
        m.gauge(
            "chorus_uptime_seconds",
            "Seconds since start (/varz uptime).",
            since(self.inner.start_time, SystemTime::now()).as_secs_f64(),
        );
        m.gauge(
            "chorus_config_load_time_seconds",
            "Last configuration (re)load, seconds since the epoch (/varz config_load_time).",
            unix_secs(*self.inner.config_load_time.lock().unwrap()),
        );
        m.gauge("chorus_mem_bytes", "Resident set size in bytes (/varz mem).", v.mem as f64);
        m.gauge(
            "chorus_cpu_percent",
            "Process CPU usage in percent of one core (/varz cpu).",
            v.cpu,
        );
        m.gauge("chorus_cores", "CPUs available to the process (/varz cores).", v.cores as f64);
        m.gauge(
            "chorus_max_connections",
            "Configured max_connections (/varz max_connections).",
            v.max_connections as f64,
        );
        m.gauge(
            "chorus_max_payload_bytes",
            "Configured max_payload (/varz max_payload).",
            v.max_payload as f64,
        );
        m.gauge(
            "chorus_max_pending_bytes",
            "Configured max_pending (/varz max_pending).",
            v.max_pending as f64,
        );
        m.gauge(
            "chorus_connections",
            "Open client connections (/varz connections).",
            v.connections as f64,
        );
        m.counter(
            "chorus_connections_accepted_total",
            "Client connections accepted since start (/varz total_connections).",
            v.total_connections,
        );
        m.gauge("chorus_routes", "Connected routes (/varz routes).", f64::from(v.routes));
        m.gauge(
            "chorus_remotes",
            "Configured route remotes (/varz remotes).",
            f64::from(v.remotes),
        );
        m.gauge(
            "chorus_leafnodes",
            "Connected leaf nodes (/varz leafnodes).",
            f64::from(v.leafnodes),
        );
        m.counter("chorus_in_msgs_total", "Messages received (/varz in_msgs).", v.in_msgs);
        m.counter("chorus_in_bytes_total", "Payload bytes received (/varz in_bytes).", v.in_bytes);
        m.counter("chorus_out_msgs_total", "Messages sent (/varz out_msgs).", v.out_msgs);
        m.counter("chorus_out_bytes_total", "Payload bytes sent (/varz out_bytes).", v.out_bytes);
        m.counter(
            "chorus_slow_consumers_total",
            "Clients disconnected as slow consumers (/varz slow_consumers).",
            v.slow_consumers,
        );
        m.gauge(
            "chorus_subscriptions",
            "Active subscriptions (/varz subscriptions).",
            v.subscriptions as f64,
        );
        m.gauge(
            "chorus_sublist_cache_entries",
            "Cached match results (/subsz num_cache).",
            f64::from(sl.num_cache),
        );
        m.counter(
            "chorus_sublist_inserts_total",
            "Subscriptions inserted (/subsz num_inserts).",
            sl.num_inserts,
        );
        m.counter(
            "chorus_sublist_removes_total",
            "Subscriptions removed (/subsz num_removes).",
            sl.num_removes,
        );
        m.counter(
            "chorus_sublist_matches_total",
            "Subject matches, cache hits included (/subsz num_matches).",
            sl.num_matches,
        );
        m.gauge(
            "chorus_sublist_cache_hit_ratio",
            "Cache hits over matches (/subsz cache_hit_rate).",
            sl.cache_hit_rate,
        );
        m.gauge(
            "chorus_sublist_max_fanout",
            "Largest fan-out among cached results (/subsz max_fanout).",
            f64::from(sl.max_fanout),
        );
        m.gauge(
            "chorus_sublist_avg_fanout",
            "Mean fan-out of cached results (/subsz avg_fanout).",
            sl.avg_fanout,
        );
        m.labelled_counter(
            "chorus_http_requests_total",
            "Monitoring requests per endpoint (/varz http_req_stats).",
            "path",
            v.http_req_stats.iter().map(|(k, n)| (*k, *n)),
        );
        respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            m.out.into_bytes(),
            false,
        )
    }
}

// -------------------------------------------------------------------------------------------
// Response bodies, field for field as monitor.go declares them.

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A nested nats-server block Chorus does not run (cluster, gateway, ...): `{}`, exactly
/// what nats-server shows when the block is not configured.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct SlowConsumersStats {
    clients: u64,
    routes: u64,
    gateways: u64,
    leafs: u64,
}

#[derive(Serialize)]
struct Varz {
    server_id: String,
    server_name: String,
    version: &'static str,
    proto: i32,
    go: &'static str,
    host: String,
    port: u16,
    #[serde(skip_serializing_if = "is_false")]
    auth_required: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ws_connect_urls: Vec<String>,
    max_connections: usize,
    #[serde(skip_serializing_if = "is_zero_usize")]
    max_subscriptions: usize,
    /// Nanoseconds (Go `time.Duration`).
    ping_interval: u64,
    ping_max: u32,
    http_host: String,
    http_port: u16,
    http_base_path: String,
    https_port: u16,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    auth_timeout: f64,
    max_control_line: usize,
    max_payload: usize,
    max_pending: usize,
    cluster: ClusterVarz,
    gateway: Empty,
    leaf: Empty,
    mqtt: Empty,
    websocket: Empty,
    jetstream: Empty,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    tls_timeout: f64,
    /// Nanoseconds.
    write_deadline: u64,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: usize,
    #[serde(serialize_with = "go_float")]
    cpu: f64,
    connections: usize,
    total_connections: u64,
    routes: u32,
    remotes: u32,
    leafnodes: u32,
    in_msgs: u64,
    in_bytes: u64,
    in_client_msgs: u64,
    in_client_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    out_client_msgs: u64,
    out_client_bytes: u64,
    slow_consumers: u64,
    subscriptions: usize,
    http_req_stats: BTreeMap<&'static str, u64>,
    config_load_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<String>,
    slow_consumer_stats: SlowConsumersStats,
    /// Chorus's own version (`version` is the nats-server version it is compatible with).
    chorus: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Open,
    Closed,
    All,
}

struct ConnzOptions {
    sort: String,
    auth: bool,
    subs: bool,
    subs_detail: bool,
    offset: i64,
    limit: i64,
    cid: u64,
    state: ConnState,
    user: String,
    acc: String,
    mqtt_client: String,
}

impl ConnzOptions {
    /// The parameters in nats-server's decoding order, so the first bad one is reported.
    fn from_query(q: &Query) -> Result<ConnzOptions, String> {
        let sort = q.get("sort").to_string();
        let auth = q.bool("auth")?;
        let (subs, subs_detail) = q.subs()?;
        Ok(ConnzOptions {
            sort,
            auth,
            subs,
            subs_detail,
            offset: q.int("offset")?,
            limit: q.int("limit")?,
            cid: q.uint("cid")?,
            state: q.state()?,
            user: q.get("user").to_string(),
            acc: q.get("acc").to_string(),
            mqtt_client: q.get("mqtt_client").to_string(),
        })
    }
}

#[derive(Serialize)]
struct Connz {
    server_id: String,
    now: String,
    num_connections: usize,
    total: usize,
    offset: i64,
    limit: i64,
    connections: Option<Vec<ConnInfo>>,
}

#[derive(Serialize)]
struct ConnInfo {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    conn_type: &'static str,
    ip: String,
    port: u16,
    start: String,
    /// Closed connections do not record their last activity yet, so they leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_activity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    /// Left out until the round trip is measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt: Option<String>,
    uptime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle: Option<String>,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    authorized_user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail>,
    #[serde(skip)]
    keys: SortKeys,
}

/// The raw values the sort options compare (the JSON holds them as strings).
#[derive(Default)]
struct SortKeys {
    start: Option<SystemTime>,
    last: Option<SystemTime>,
    stop: Option<SystemTime>,
    rtt: Duration,
}

#[derive(Serialize)]
struct SubDetail {
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    account_tag: String,
    subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    qgroup: String,
    sid: String,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    max: u64,
    cid: u64,
}

#[derive(Serialize)]
struct Routez {
    server_id: String,
    server_name: String,
    now: String,
    num_routes: usize,
    routes: Vec<RouteRow>,
}

/// One route connection in /routez (nats-server's `RouteInfo`).
#[derive(Serialize)]
struct RouteRow {
    rid: u64,
    remote_id: String,
    remote_name: String,
    did_solicit: bool,
    is_configured: bool,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_size: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    account: String,
    compression: &'static str,
}

/// /varz `cluster` (nats-server's `ClusterOptsVarz`): empty without a cluster.
#[derive(Serialize, Default)]
struct ClusterVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(rename = "addr", skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero_u16")]
    cluster_port: u16,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    auth_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<String>,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    tls_timeout: f64,
    #[serde(skip_serializing_if = "is_zero_i32")]
    pool_size: i32,
    #[serde(skip_serializing_if = "is_zero_u64")]
    write_deadline: u64,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

#[derive(Serialize)]
struct Subsz {
    server_id: String,
    now: String,
    num_subscriptions: u32,
    num_cache: u32,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    #[serde(serialize_with = "go_float")]
    cache_hit_rate: f64,
    max_fanout: u32,
    #[serde(serialize_with = "go_float")]
    avg_fanout: f64,
    total: usize,
    offset: i64,
    limit: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<SubDetail>,
}

#[derive(Serialize)]
struct HealthStatus {
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<HealthzError>,
}

#[derive(Serialize)]
struct HealthzError {
    #[serde(rename = "type")]
    kind: &'static str,
    error: String,
}

fn open_info(cl: &ClientShared, now: SystemTime, auth: bool) -> ConnInfo {
    let meta = cl.meta.lock().unwrap().clone();
    let last = *cl.last_activity.lock().unwrap();
    let (out_msgs, out_bytes, pending) = cl.out_counts();
    ConnInfo {
        cid: cl.cid,
        kind: "Client",
        conn_type: "nats",
        ip: cl.addr.ip().to_string(),
        port: cl.addr.port(),
        start: rfc3339(cl.start),
        last_activity: Some(rfc3339(last)),
        stop: None,
        reason: "",
        rtt: meta.rtt.map(go_rtt),
        uptime: my_uptime(since(cl.start, now)),
        idle: Some(my_uptime(since(last, now))),
        pending_bytes: pending,
        in_msgs: cl.in_msgs.load(Ordering::Relaxed),
        out_msgs,
        in_bytes: cl.in_bytes.load(Ordering::Relaxed),
        out_bytes,
        subscriptions: cl.num_subs.load(Ordering::Relaxed),
        name: meta.name,
        lang: meta.lang,
        version: meta.version,
        authorized_user: if auth { meta.user.unwrap_or_default() } else { String::new() },
        // Every client is in the global account, which nats-server does not name here.
        account: String::new(),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
        keys: SortKeys {
            start: Some(cl.start),
            last: Some(last),
            stop: None,
            rtt: meta.rtt.unwrap_or_default(),
        },
    }
}

fn closed_info(cc: &ClosedConn) -> ConnInfo {
    ConnInfo {
        cid: cc.cid,
        kind: "Client",
        conn_type: "nats",
        ip: cc.addr.ip().to_string(),
        port: cc.addr.port(),
        start: rfc3339(cc.start),
        last_activity: Some(rfc3339(cc.last_activity)),
        stop: Some(rfc3339(cc.stop)),
        reason: cc.reason,
        rtt: cc.rtt.map(go_rtt),
        // nats-server fills a closed connection's figures at the moment it closed.
        uptime: my_uptime(since(cc.start, cc.stop)),
        idle: Some(my_uptime(since(cc.last_activity, cc.stop))),
        pending_bytes: 0,
        in_msgs: cc.in_msgs,
        out_msgs: cc.out_msgs,
        in_bytes: cc.in_bytes,
        out_bytes: cc.out_bytes,
        subscriptions: cc.num_subs,
        name: cc.name.clone(),
        lang: cc.lang.clone(),
        version: cc.version.clone(),
        authorized_user: cc.user.clone().unwrap_or_default(),
        account: String::new(),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
        keys: SortKeys {
            start: Some(cc.start),
            last: Some(cc.last_activity),
            stop: Some(cc.stop),
            rtt: cc.rtt.unwrap_or_default(),
        },
    }
}

fn sub_detail(s: &Subscription, account: &str) -> SubDetail {
    let max = s.max.load(Ordering::Relaxed);
    let mut msgs = s.delivered.load(Ordering::Relaxed);
    // `delivered` also counts the attempts past an auto-unsubscribe limit that were dropped.
    if max > 0 {
        msgs = msgs.min(max);
    }
    SubDetail {
        account: account.to_string(),
        // nats-server's tag is the account's JWT name, else the account name.
        account_tag: account.to_string(),
        subject: String::from_utf8_lossy(&s.subject).into_owned(),
        qgroup: s
            .queue
            .as_deref()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .unwrap_or_default(),
        sid: String::from_utf8_lossy(&s.sid).into_owned(),
        msgs,
        max,
        cid: s.client.cid,
    }
}

/// Numeric sids ("2" before "10") as clients allocate them, then bytewise.
fn sid_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

// -------------------------------------------------------------------------------------------
// /connz sorting (monitor_sort_opts.go): only `cid`/`start`, `uptime` and `reason` ascend.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Cid,
    Subs,
    Pending,
    OutMsgs,
    InMsgs,
    OutBytes,
    InBytes,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
    Rtt,
}

impl SortBy {
    fn parse(s: &str) -> Option<SortBy> {
        Some(match s {
            "" | "cid" | "start" => SortBy::Cid,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::OutMsgs,
            "msgs_from" => SortBy::InMsgs,
            "bytes_to" => SortBy::OutBytes,
            "bytes_from" => SortBy::InBytes,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "stop" => SortBy::Stop,
            "reason" => SortBy::Reason,
            "rtt" => SortBy::Rtt,
            _ => return None,
        })
    }
}

fn sort_infos(infos: &mut [ConnInfo], by: SortBy, now: SystemTime) {
    // Cid order first, then a stable sort, so ties come out in cid order on every request
    // (nats-server's unstable sort leaves them arbitrary).
    infos.sort_by_key(|c| c.cid);
    let epoch = |t: Option<SystemTime>| {
        t.map_or(0, |t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()))
    };
    let uptime = |c: &ConnInfo| {
        let start = c.keys.start.unwrap_or(now);
        since(start, c.keys.stop.unwrap_or(now))
    };
    match by {
        SortBy::Cid => {}
        SortBy::Subs => infos.sort_by_key(|c| Reverse(c.subscriptions)),
        SortBy::Pending => infos.sort_by_key(|c| Reverse(c.pending_bytes)),
        SortBy::OutMsgs => infos.sort_by_key(|c| Reverse(c.out_msgs)),
        SortBy::InMsgs => infos.sort_by_key(|c| Reverse(c.in_msgs)),
        SortBy::OutBytes => infos.sort_by_key(|c| Reverse(c.out_bytes)),
        SortBy::InBytes => infos.sort_by_key(|c| Reverse(c.in_bytes)),
        // Most recent activity first; the most idle (oldest activity) first.
        SortBy::Last => infos.sort_by_key(|c| Reverse(epoch(c.keys.last))),
        SortBy::Idle => infos.sort_by_key(|c| epoch(c.keys.last)),
        SortBy::Uptime => infos.sort_by_key(uptime),
        SortBy::Stop => infos.sort_by_key(|c| Reverse(epoch(c.keys.stop))),
        SortBy::Reason => infos.sort_by_key(|c| c.reason),
        SortBy::Rtt => infos.sort_by_key(|c| Reverse(c.keys.rtt)),
    }
}

// -------------------------------------------------------------------------------------------
// Prometheus text exposition (format 0.0.4).

#[derive(Default)]
struct Metrics {
    out: String,
}

impl Metrics {
    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.head(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {}", prom_float(v));
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.head(name, help, "counter");
        let _ = writeln!(self.out, "{name} {v}");
    }

    fn labelled_counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl Iterator<Item = (&'a str, u64)>,
    ) {
        self.head(name, help, "counter");
        for (l, v) in values {
            let _ = writeln!(self.out, "{name}{{{label}=\"{}\"}} {v}", prom_label(l));
        }
    }

    fn info(&mut self, v: &Varz) {
        self.head("chorus_info", "Server identity; the value is always 1.", "gauge");
        let _ = writeln!(
            self.out,
            "chorus_info{{server_id=\"{}\",server_name=\"{}\",version=\"{}\",chorus=\"{}\"}} 1",
            prom_label(&v.server_id),
            prom_label(&v.server_name),
            prom_label(v.version),
            prom_label(v.chorus),
        );
    }
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn prom_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

// -------------------------------------------------------------------------------------------
// HTTP plumbing.

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>, cors: bool) -> Resp {
    let mut b = Response::builder().status(status).header("Content-Type", content_type);
    if cors {
        b = b.header("Access-Control-Allow-Origin", "*");
    }
    b.body(Full::new(Bytes::from(body))).expect("static response parts")
}

/// nats-server's `ResponseHandler`: indented JSON, open to any origin.
fn json_ok<T: Serialize>(v: &T) -> Resp {
    let body = serde_json::to_vec_pretty(v).expect("monitor structs serialise");
    respond(StatusCode::OK, "application/json", body, true)
}

/// A 400 as nats-server writes it: the bare error text, sniffed by Go as plain text.
fn bad_request(msg: String) -> Resp {
    respond(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", msg.into_bytes(), false)
}

/// Go's `http.NotFound`.
fn not_found() -> Resp {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(Full::new(Bytes::from_static(b"404 page not found\n")))
        .expect("static response parts")
}

/// nats-server's `normalizeBasePath`: a leading `/`, cleaned, `/` when empty.
fn normalize_base_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The endpoint part of `path` under `base`, when `path` is under it.
fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base == "/" {
        return Some(path);
    }
    path.strip_prefix(base).filter(|rest| rest.starts_with('/'))
}

/// A decoded query string, read the way Go's `url.Values.Get` reads it: the first value of
/// a key, `""` when absent.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        let mut pairs = Vec::new();
        for part in raw.split('&') {
            // Go's ParseQuery rejects (skips) pairs with a semicolon and bad escapes.
            if part.is_empty() || part.contains(';') {
                continue;
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if let (Some(k), Some(v)) = (unescape(k), unescape(v)) {
                pairs.push((k, v));
            }
        }
        Query(pairs)
    }

    fn get(&self, key: &str) -> &str {
        self.0.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        let s = self.get(key);
        if s.is_empty() {
            return Ok(false);
        }
        parse_go_bool(s).ok_or_else(|| {
            format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing {}: invalid syntax",
                chorus_jetstream::go::quote(s)
            )
        })
    }

    fn int(&self, key: &str) -> Result<i64, String> {
        let s = self.get(key);
        if s.is_empty() {
            return Ok(0);
        }
        parse_go_int(s).map_err(|why| {
            format!(
                "Error decoding int for '{key}': strconv.Atoi: parsing {}: {why}",
                chorus_jetstream::go::quote(s)
            )
        })
    }

    fn uint(&self, key: &str) -> Result<u64, String> {
        let s = self.get(key);
        if s.is_empty() {
            return Ok(0);
        }
        parse_go_uint(s).map_err(|why| {
            format!(
                "Error decoding uint64 for '{key}': strconv.ParseUint: parsing {}: {why}",
                chorus_jetstream::go::quote(s)
            )
        })
    }

    /// `subs=detail`, else `subs` as a boolean.
    fn subs(&self) -> Result<(bool, bool), String> {
        if self.get("subs").eq_ignore_ascii_case("detail") {
            return Ok((false, true));
        }
        Ok((self.bool("subs")?, false))
    }

    fn state(&self) -> Result<ConnState, String> {
        let s = self.get("state");
        match s.to_ascii_lowercase().as_str() {
            "" | "open" => Ok(ConnState::Open),
            "closed" => Ok(ConnState::Closed),
            "any" | "all" => Ok(ConnState::All),
            _ => Err(format!("Error decoding state for {s}")),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform; the error is strconv's wording.
fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    let mag: u128 = digits.parse().map_err(|_| "value out of range")?;
    let v = if neg { -(mag as i128) } else { mag as i128 };
    i64::try_from(v).map_err(|_| "value out of range")
}

/// Go's `strconv.ParseUint(s, 10, 64)`.
fn parse_go_uint(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse().map_err(|_| "value out of range")
}

// -------------------------------------------------------------------------------------------
// Go's formats.

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn since(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Go's JSON encoding of a float64: integral values without a fraction (`2`, not `2.0`).
fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// nats-server's `myUptime`: whole seconds as `[Ny][Nd][Nh][Nm]Ns`.
pub(crate) fn my_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h, days) = (s / 60, s / 3600, s / 86_400);
    let years = days / 365;
    if years > 0 {
        format!("{years}y{}d{}h{}m{}s", days % 365, h % 24, m % 60, s % 60)
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", h % 24, m % 60, s % 60)
    } else if h > 0 {
        format!("{h}h{}m{}s", m % 60, s % 60)
    } else if m > 0 {
        format!("{m}m{}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// An rtt as nats-server shows it: truncated to microseconds between 1µs and 1ms, then Go's
/// `time.Duration.String()`.
fn go_rtt(d: Duration) -> String {
    let d = if d > Duration::from_micros(1) && d < Duration::from_millis(1) {
        Duration::from_micros(d.as_micros() as u64)
    } else {
        d
    };
    go_duration(d)
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `2.25ms`, `1h2m3.5s`.
pub(crate) fn go_duration(d: Duration) -> String {
    chorus_jetstream::go::duration_string(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

// -------------------------------------------------------------------------------------------
// Process figures from /proc (Linux); 0 elsewhere.

/// Resident set size in bytes: `VmRSS` of /proc/self/status, which is in kB whatever the
/// page size (statm counts pages, and the page size is not known without libc).
fn resident_memory() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// User plus system CPU time of this process in clock ticks (`utime`, `stime` of
/// /proc/self/stat).
fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses; the fields follow its last `)`.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // After the name: state is field 3, utime 14, stime 15.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Linux reports CPU times in USER_HZ, which is 100 on every architecture (nats-server
/// assumes the same).
const TICKS_PER_SEC: f64 = 100.0;

/// The last CPU sample: when, the tick count then, and the percentage computed from it.
static CPU_SAMPLE: Mutex<Option<(Instant, u64, f64)>> = Mutex::new(None);

/// Process CPU in percent of one core over the time since the previous sample, one decimal,
/// like nats-server's `pcpu`. Samples less than a second apart reuse the last figure, so
/// that frequent polling does not report the noise of a few ticks; the first call reports 0.
fn cpu_percent() -> f64 {
    let Some(ticks) = cpu_ticks() else {
        return 0.0;
    };
    let now = Instant::now();
    let mut last = CPU_SAMPLE.lock().unwrap();
    match *last {
        None => {
            *last = Some((now, ticks, 0.0));
            0.0
        }
        Some((at, _, pct)) if now.duration_since(at) < Duration::from_secs(1) => pct,
        Some((at, prev, _)) => {
            let secs = now.duration_since(at).as_secs_f64();
            let used = ticks.saturating_sub(prev) as f64 / TICKS_PER_SEC;
            let pct = (used / secs * 1000.0).round() / 10.0;
            *last = Some((now, ticks, pct));
            pct
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_strings_match_my_uptime() {
        assert_eq!(my_uptime(Duration::from_millis(999)), "0s");
        assert_eq!(my_uptime(Duration::from_secs(59)), "59s");
        assert_eq!(my_uptime(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(my_uptime(Duration::from_secs(86_400 + 3 * 3600 + 4 * 60 + 5)), "1d3h4m5s");
        assert_eq!(my_uptime(Duration::from_secs(366 * 86_400)), "1y1d0h0m0s");
    }

    #[test]
    fn durations_match_go_string() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_micros(376)), "376µs");
        assert_eq!(go_duration(Duration::from_nanos(2_250_000)), "2.25ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_rtt(Duration::from_nanos(376_999)), "376µs");
        assert_eq!(go_rtt(Duration::from_nanos(1_234_567)), "1.234567ms");
    }

    #[test]
    fn queries_decode_like_go() {
        let q = Query::parse("subs=detail&limit=%32&name=a+b&bad=%zz&x=1;y=2&limit=9");
        assert_eq!(q.get("limit"), "2", "first value wins, escapes decoded");
        assert_eq!(q.get("name"), "a b");
        assert_eq!(q.get("bad"), "", "a bad escape drops the pair");
        assert_eq!(q.get("x"), "", "a pair with a semicolon is dropped");
        assert_eq!(q.subs().ok(), Some((false, true)));
        assert_eq!(parse_go_int("-7"), Ok(-7));
        assert_eq!(parse_go_int("1.0"), Err("invalid syntax"));
        assert_eq!(parse_go_int("99999999999999999999"), Err("value out of range"));
        assert_eq!(parse_go_uint("-1"), Err("invalid syntax"));
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(chorus_jetstream::go::quote("a\"b\u{1}"), "\"a\\\"b\\x01\"");
    }

    #[test]
    fn base_paths_normalise_like_nats() {
        assert_eq!(normalize_base_path(""), "/");
        assert_eq!(normalize_base_path("mon/"), "/mon");
        assert_eq!(normalize_base_path("/a/./b/../c"), "/a/c");
        assert_eq!(strip_base("/mon/varz", "/mon"), Some("/varz"));
        assert_eq!(strip_base("/monvarz", "/mon"), None);
        assert_eq!(strip_base("/varz", "/"), Some("/varz"));
    }

    #[test]
    fn floats_serialise_like_go() {
        #[derive(Serialize)]
        struct F {
            #[serde(serialize_with = "go_float")]
            a: f64,
            #[serde(serialize_with = "go_float")]
            b: f64,
        }
        let s = serde_json::to_string(&F { a: 2.0, b: 0.2727272727272727 }).unwrap();
        assert_eq!(s, r#"{"a":2,"b":0.2727272727272727}"#);
        assert_eq!(prom_float(3.0), "3");
        assert_eq!(prom_float(0.5), "0.5");
    }

    #[test]
    fn sort_names_are_nats_names() {
        for ok in [
            "",
            "cid",
            "start",
            "subs",
            "pending",
            "msgs_to",
            "msgs_from",
            "bytes_to",
            "bytes_from",
            "last",
            "idle",
            "uptime",
            "stop",
            "reason",
            "rtt",
        ] {
            assert!(SortBy::parse(ok).is_some(), "{ok}");
        }
        assert!(SortBy::parse("CID").is_none());
        assert_eq!(sid_order(b"2", b"10"), std::cmp::Ordering::Less);
    }

    #[test]
    fn process_figures_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory() > 1024 * 1024, "a test process has over 1 MiB resident");
            assert!(cpu_ticks().is_some());
        }
        let p = cpu_percent();
        assert!((0.0..=100.0 * 1024.0).contains(&p));
    }
}
