//! Routes: three embedded servers on free loopback ports form one cluster, and the official
//! Rust client (async-nats) sees one NATS across them. Raw sockets on the cluster port check
//! what a misbehaving peer gets.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use chorus_conf::{ClusterOptions, Options};
use chorus_server::Server;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

fn node(name: &str, routes: Vec<String>) -> Options {
    Options {
        host: "127.0.0.1".into(),
        port: 0,
        server_name: name.into(),
        cluster: Some(ClusterOptions {
            name: Some("c1".into()),
            host: "127.0.0.1".into(),
            port: Some(0),
            routes,
            ..ClusterOptions::default()
        }),
        ..Options::default()
    }
}

/// Polls `f` until it holds, for at most 5 s.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Three servers: the second and third list only the first, so the full mesh needs gossip.
async fn cluster() -> Vec<Server> {
    let a = Server::start(node("a", vec![])).await.expect("a starts");
    let url = a.route_url().expect("a has a route listener");
    let b = Server::start(node("b", vec![url.clone()])).await.expect("b starts");
    let c = Server::start(node("c", vec![url])).await.expect("c starts");
    let servers = vec![a, b, c];
    // Default pool: 3 connections per pair plus the system account's pinned one.
    let deadline = tokio::time::Instant::now() + T;
    while !servers.iter().all(|s| s.num_routes() == (8, 2)) {
        let now: Vec<_> = servers.iter().map(Server::num_routes).collect();
        assert!(tokio::time::Instant::now() < deadline, "no full mesh of pooled routes: {now:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    servers
}

async fn shutdown(servers: Vec<Server>) {
    for s in servers {
        s.shutdown().await;
    }
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(T, sub.next()).await.expect("message in time").expect("subscription open")
}

#[tokio::test]
async fn gossip_makes_a_full_mesh_and_messages_cross_it() -> Result<()> {
    let s = cluster().await;
    let pubc = async_nats::connect(s[1].client_url()).await?;
    let subc = async_nats::connect(s[2].client_url()).await?;
    let mut sub = subc.subscribe("orders.>").await?;
    subc.flush().await?;
    // b learns c's interest over the route b-c, which only gossip created.
    until("c's interest on b", || s[1].has_interest("orders.new")).await;
    pubc.publish("orders.new", "one".into()).await?;
    let mut h = async_nats::HeaderMap::new();
    h.insert("X-Trace", "7");
    pubc.publish_with_headers("orders.old", h, "two".into()).await?;
    pubc.flush().await?;
    let m = next(&mut sub).await;
    assert_eq!((m.subject.as_str(), &m.payload[..]), ("orders.new", &b"one"[..]));
    let m = next(&mut sub).await;
    assert_eq!(m.payload, "two");
    assert_eq!(m.headers.unwrap().get("X-Trace").map(|v| v.as_str()), Some("7"));
    // Each message once, though the subscription matched on every pool connection.
    assert!(tokio::time::timeout(Duration::from_millis(200), sub.next()).await.is_err());
    shutdown(s).await;
    Ok(())
}

#[tokio::test]
async fn unsubscribe_reaches_the_peers() -> Result<()> {
    let s = cluster().await;
    let subc = async_nats::connect(s[2].client_url()).await?;
    let mut first = subc.subscribe("svc").await?;
    let second = subc.subscribe("svc").await?;
    subc.flush().await?;
    until("interest on a", || s[0].has_interest("svc")).await;
    // One of two subscriptions gone: the interest stays.
    drop(second);
    subc.flush().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s[0].has_interest("svc"));
    first.unsubscribe().await?;
    subc.flush().await?;
    until("the interest to leave a", || !s[0].has_interest("svc")).await;
    // A request from a now finds no responder anywhere.
    let req = async_nats::connect(s[0].client_url()).await?;
    let err = req.request("svc", "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    shutdown(s).await;
    Ok(())
}

#[tokio::test]
async fn queue_groups_span_servers_and_deliver_each_message_once() -> Result<()> {
    let s = cluster().await;
    let mut members = Vec::new();
    let mut conns = Vec::new();
    for srv in &s {
        let nc = async_nats::connect(srv.client_url()).await?;
        for _ in 0..2 {
            members.push(nc.queue_subscribe("work", "pool".into()).await?);
        }
        nc.flush().await?;
        conns.push(nc);
    }
    until("the group's interest everywhere", || s.iter().all(|x| x.has_interest("work"))).await;
    // Wait for the full weights too: each peer announces its 2 members.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n = 600;
    let p = async_nats::connect(s[0].client_url()).await?;
    for i in 0..n {
        p.publish("work", format!("{i}").into()).await?;
    }
    p.flush().await?;
    let mut seen = HashSet::new();
    let mut per_member = Vec::new();
    for m in members.iter_mut() {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), m.next()).await {
            assert!(seen.insert(msg.payload.clone()), "delivered twice: {:?}", msg.payload);
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(seen.len(), n, "every message once: {per_member:?}");
    // Spread over the cluster (weighted like nats-server): every server's members got some.
    for (i, pair) in per_member.chunks(2).enumerate() {
        assert!(pair.iter().sum::<usize>() > n / 10, "server {i} got too few: {per_member:?}");
    }
    shutdown(s).await;
    Ok(())
}

#[tokio::test]
async fn request_reply_and_no_responders_across_servers() -> Result<()> {
    let s = cluster().await;
    let svc = async_nats::connect(s[1].client_url()).await?;
    let mut reqs = svc.subscribe("time.now").await?;
    svc.flush().await?;
    let responder = tokio::spawn({
        let svc = svc.clone();
        async move {
            while let Some(m) = reqs.next().await {
                if let Some(r) = m.reply {
                    svc.publish(r, "noon".into()).await.unwrap();
                }
            }
        }
    });
    until("the service's interest", || {
        s[0].has_interest("time.now") && s[2].has_interest("time.now")
    })
    .await;
    for srv in [&s[0], &s[2]] {
        let nc = async_nats::connect(srv.client_url()).await?;
        let m = tokio::time::timeout(T, nc.request("time.now", "?".into())).await??;
        assert_eq!(m.payload, "noon");
        let err = nc.request("nobody.home", "?".into()).await.unwrap_err();
        assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    }
    responder.abort();
    shutdown(s).await;
    Ok(())
}

/// Reads what the server sends until `pred` holds on it (or 5 s pass).
async fn read_until(sock: &mut TcpStream, pred: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + T;
    while !pred(&String::from_utf8_lossy(&out)) {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn clients_learn_every_servers_url_and_follow_changes() -> Result<()> {
    let a = Server::start(node("a", vec![])).await?;
    let mut sock = TcpStream::connect(a.client_addr()).await?;
    let info = read_until(&mut sock, |s| s.contains("\r\n")).await;
    assert!(info.contains(r#""cluster":"c1""#), "{info}");
    sock.write_all(b"CONNECT {\"protocol\":1,\"verbose\":false}\r\nPING\r\n").await?;
    read_until(&mut sock, |s| s.contains("PONG")).await;
    let b = Server::start(node("b", vec![a.route_url().unwrap()])).await?;
    // b joins: an async INFO names both client URLs.
    let want = format!("127.0.0.1:{}", b.client_addr().port());
    let pushed = read_until(&mut sock, |s| s.contains(&want)).await;
    assert!(pushed.contains(&format!("127.0.0.1:{}", a.client_addr().port())), "{pushed}");
    // b leaves: another INFO without it.
    b.shutdown().await;
    let mut rest = String::new();
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        rest.push_str(&read_until(&mut sock, |s| s.contains("INFO")).await);
        if let Some(last) = rest.lines().rev().find(|l| l.starts_with("INFO"))
            && !last.contains(&want)
        {
            break;
        }
    }
    let last = rest.lines().rev().find(|l| l.starts_with("INFO")).unwrap_or("");
    assert!(!last.contains(&want), "b's URL still advertised: {last}");
    a.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn accounts_stay_apart_across_servers() -> Result<()> {
    let conf = r#"
        accounts {
            A { users: [ { user: a, password: a } ] }
            B { users: [ { user: b, password: b } ] }
        }
    "#;
    let with_accounts = |name: &str, routes: Vec<String>| -> Result<Options> {
        let map = chorus_conf::parse_str(conf, None)?;
        let (mut o, _warnings) = Options::from_map(&map)?;
        let n = node(name, routes);
        (o.host, o.port, o.server_name, o.cluster) = (n.host, n.port, n.server_name, n.cluster);
        Ok(o)
    };
    let x = Server::start(with_accounts("x", vec![])?).await?;
    let y = Server::start(with_accounts("y", vec![x.route_url().unwrap()])?).await?;
    until("the mesh", || x.num_routes().1 == 1 && y.num_routes().1 == 1).await;
    let sub_a = async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into())
        .connect(y.client_url())
        .await?;
    let mut sub = sub_a.subscribe("news").await?;
    sub_a.flush().await?;
    let pub_a = async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into())
        .connect(x.client_url())
        .await?;
    let pub_b = async_nats::ConnectOptions::with_user_and_password("b".into(), "b".into())
        .connect(x.client_url())
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    pub_b.publish("news", "from B".into()).await?;
    pub_b.flush().await?;
    pub_a.publish("news", "from A".into()).await?;
    pub_a.flush().await?;
    assert_eq!(next(&mut sub).await.payload, "from A");
    assert!(tokio::time::timeout(Duration::from_millis(200), sub.next()).await.is_err());
    x.shutdown().await;
    y.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_route_port_refuses_strangers_with_nats_servers_words() -> Result<()> {
    let mut o = node("a", vec![]);
    if let Some(c) = o.cluster.as_mut() {
        c.user = Some("ruser".into());
        c.password = Some("rpass".into());
    }
    let a = Server::start(o).await?;
    let addr = a.cluster_addr().unwrap();
    let cases: [(&[u8], &str); 5] = [
        (b"PING\r\n", "-ERR 'Authorization Violation'"),
        (b"garbage\r\n", "-ERR 'Authorization Violation'"),
        (
            br#"CONNECT {"verbose":false,"lang":"go","version":"1.0"}"#,
            "-ERR 'attempted to connect to route port'",
        ),
        (
            br#"CONNECT {"name":"NX","cluster":"other","user":"ruser","pass":"rpass"}"#,
            r#"-ERR 'Rejecting connection, cluster name "other" does not match "c1"'"#,
        ),
        (
            br#"CONNECT {"name":"NX","cluster":"c1","user":"ruser","pass":"wrong"}"#,
            "-ERR 'Authorization Violation'",
        ),
    ];
    for (send, want) in cases {
        let mut sock = TcpStream::connect(addr).await?;
        read_until(&mut sock, |s| s.contains("\r\n")).await;
        sock.write_all(send).await?;
        if !send.ends_with(b"\r\n") {
            sock.write_all(b"\r\n").await?;
        }
        let got = read_until(&mut sock, |s| s.contains(want)).await;
        assert!(got.contains(want), "sent {:?}: got {got:?}", String::from_utf8_lossy(send));
    }
    // The right credentials pass, and a client on the client port is not disturbed meanwhile.
    let nc = async_nats::connect(a.client_url()).await?;
    let mut sock = TcpStream::connect(addr).await?;
    read_until(&mut sock, |s| s.contains("\r\n")).await;
    sock.write_all(
        br#"CONNECT {"name":"NFAKE","cluster":"c1","user":"ruser","pass":"rpass","headers":true}"#,
    )
    .await?;
    sock.write_all(b"\r\nINFO {\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"cluster\":\"c1\",\"port\":1,\"route_pool_size\":3}\r\nPING\r\n").await?;
    let got = read_until(&mut sock, |s| s.contains("PONG")).await;
    assert!(got.contains("PONG"), "{got}");
    nc.flush().await?;
    a.shutdown().await;
    Ok(())
}

/// A peer that is a raw socket: it registers on pool slot 2 (where `$G` lives with the
/// default pool of 3) and speaks the route protocol by hand.
async fn fake_peer(addr: std::net::SocketAddr, id: &str) -> Result<TcpStream> {
    let mut sock = TcpStream::connect(addr).await?;
    read_until(&mut sock, |s| s.contains("\r\n")).await;
    let hello = format!(
        "CONNECT {{\"name\":\"{id}\",\"cluster\":\"c1\",\"headers\":true}}\r\n\
         INFO {{\"server_id\":\"{id}\",\"server_name\":\"{id}\",\"cluster\":\"c1\",\"port\":1,\
         \"headers\":true,\"route_pool_size\":3,\"route_pool_idx\":2}}\r\nPING\r\n"
    );
    sock.write_all(hello.as_bytes()).await?;
    read_until(&mut sock, |s| s.contains("PONG")).await;
    Ok(sock)
}

#[tokio::test]
async fn a_big_message_from_a_route_is_delivered_and_bad_args_cut_only_that_route() -> Result<()> {
    let a = Server::start(node("a", vec![])).await?;
    let addr = a.cluster_addr().unwrap();
    let nc = async_nats::connect(a.client_url()).await?;
    let mut sub = nc.subscribe("big").await?;
    nc.flush().await?;
    let mut peer = fake_peer(addr, "NPEER1").await?;
    // nats-server does not hold routes to max_payload: a 10 MB message gets through.
    let body = vec![b'x'; 10 * 1024 * 1024];
    peer.write_all(format!("RMSG $G big {}\r\n", body.len()).as_bytes()).await?;
    peer.write_all(&body).await?;
    peer.write_all(b"\r\n").await?;
    let m = tokio::time::timeout(Duration::from_secs(10), sub.next()).await?.unwrap();
    assert_eq!(m.payload.len(), body.len());
    // Malformed arguments close that route, and nothing else.
    let mut bad = fake_peer(addr, "NPEER2").await?;
    bad.write_all(b"RMSG $G big x q 1\r\n").await?;
    let got = read_until(&mut bad, |_| false).await;
    assert!(!got.contains("-ERR"), "closed without -ERR: {got:?}");
    peer.write_all(b"RMSG $G big 2\r\nok\r\n").await?;
    assert_eq!(next(&mut sub).await.payload, "ok");
    a.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_cut_without_stalling_the_others() -> Result<()> {
    let mut o = node("a", vec![]);
    o.max_pending = 2 * 1024 * 1024;
    let a = Server::start(o).await?;
    let addr = a.cluster_addr().unwrap();
    let stuck = fake_peer(addr, "NSTUCK").await?;
    let mut stuck = Some(stuck);
    if let Some(s) = stuck.as_mut() {
        s.write_all(b"RS+ $G flood\r\n").await?;
    }
    let nc = async_nats::connect(a.client_url()).await?;
    let mut local = nc.subscribe("flood").await?;
    nc.flush().await?;
    until("the stuck peer's interest", || a.has_interest("flood")).await;
    let chunk = vec![b'y'; 64 * 1024];
    // The stuck peer never reads: once the kernel's socket buffers are full, its pending
    // bytes pass max_pending and its route is cut as a slow consumer.
    let n = 600;
    for _ in 0..n {
        nc.publish("flood", chunk.clone().into()).await?;
    }
    nc.flush().await?;
    let mut got = 0;
    while got < n {
        next(&mut local).await;
        got += 1;
    }
    until("the stuck route to be cut", || a.num_routes().0 == 0).await;
    let slow = a.inner().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(slow, 1, "cut as a slow consumer, and nobody else");
    drop(stuck.take());
    a.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn route_options_that_are_not_supported_are_refused() {
    // Route TLS and permissions are not there yet: refused, not silently left out.
    let mut o = node("a", vec![]);
    if let Some(c) = o.cluster.as_mut() {
        c.tls = Some(chorus_conf::TlsOptions::default());
    }
    let err = Server::start(o).await.unwrap_err().to_string();
    assert!(err.contains("cluster.tls"), "{err}");
}

#[tokio::test]
async fn a_slow_client_behind_a_route_is_cut_and_the_route_stays() -> Result<()> {
    let small = |name: &str, routes: Vec<String>| {
        let mut o = node(name, routes);
        o.max_pending = 2 * 1024 * 1024;
        o
    };
    let a = Server::start(small("a", vec![])).await?;
    let b = Server::start(small("b", vec![a.route_url().unwrap()])).await?;
    until("the mesh", || a.num_routes() == (4, 1) && b.num_routes() == (4, 1)).await;
    // A subscriber on b that never reads.
    let mut stuck = TcpStream::connect(b.client_addr()).await?;
    read_until(&mut stuck, |s| s.contains("\r\n")).await;
    stuck.write_all(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n").await?;
    read_until(&mut stuck, |s| s.contains("PONG")).await;
    until("the stuck subscriber's interest on a", || a.has_interest("flood")).await;
    let nc = async_nats::connect(a.client_url()).await?;
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..600 {
        nc.publish("flood", chunk.clone().into()).await?;
    }
    nc.flush().await?;
    let slow =
        |s: &Server| s.inner().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + T;
    while slow(&b) != 1 {
        let st = (slow(&a), slow(&b), a.num_routes(), b.num_routes());
        assert!(tokio::time::Instant::now() < deadline, "b did not cut its slow client: {st:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The route took the whole flood: a cut nothing, and the cluster is still whole.
    assert_eq!(slow(&a), 0);
    assert_eq!((a.num_routes(), b.num_routes()), ((4, 1), (4, 1)));
    drop(stuck);
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
