//! Core NATS behaviour through the official Rust client, async-nats, against an embedded
//! server on a free loopback port.

use std::time::Duration;

use anyhow::Result;
use async_nats::{ConnectOptions, HeaderMap};
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn opts() -> Options {
    Options { host: "127.0.0.1".into(), port: 0, ..Options::default() }
}

async fn start(o: Options) -> Server {
    Server::start(o).await.expect("server starts")
}

const T: Duration = Duration::from_secs(5);

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(T, sub.next()).await.expect("message in time").expect("subscription open")
}

#[tokio::test]
async fn pub_sub_and_wildcards() -> Result<()> {
    let s = start(opts()).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut exact = nc.subscribe("orders.eu.new").await?;
    let mut star = nc.subscribe("orders.*.new").await?;
    let mut gt = nc.subscribe("orders.>").await?;
    let mut other = nc.subscribe("orders.*.old").await?;
    nc.flush().await?;
    nc.publish("orders.eu.new", "one".into()).await?;
    nc.publish("orders.us.new", "two".into()).await?;
    nc.publish("orders.x", "three".into()).await?;
    nc.flush().await?;
    assert_eq!(next(&mut exact).await.payload, "one");
    assert_eq!(next(&mut star).await.payload, "one");
    assert_eq!(next(&mut star).await.payload, "two");
    for want in ["one", "two", "three"] {
        assert_eq!(next(&mut gt).await.payload, want);
    }
    // Nothing for the non-matching subscription, and nothing extra for the exact one.
    nc.publish("sentinel.done", "".into()).await?;
    nc.flush().await?;
    assert!(tokio::time::timeout(Duration::from_millis(200), other.next()).await.is_err());
    assert!(tokio::time::timeout(Duration::from_millis(50), exact.next()).await.is_err());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() -> Result<()> {
    let s = start(opts()).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(nc.queue_subscribe("work", "pool".into()).await?);
    }
    let mut plain = nc.subscribe("work").await?;
    nc.flush().await?;
    let n = 300;
    for i in 0..n {
        nc.publish("work", format!("{i}").into()).await?;
    }
    nc.flush().await?;
    let mut seen = Vec::new();
    let mut per_member = Vec::new();
    for m in members.iter_mut() {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), m.next()).await {
            seen.push(String::from_utf8(msg.payload.to_vec())?);
            count += 1;
        }
        per_member.push(count);
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap());
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(seen, want, "each message exactly once across the group");
    assert!(per_member.iter().all(|&c| c > 0), "all members get work: {per_member:?}");
    for _ in 0..n {
        next(&mut plain).await;
    }
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn request_reply_headers_and_no_responders() -> Result<()> {
    let s = start(opts()).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut svc = nc.subscribe("svc.echo").await?;
    let responder = nc.clone();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let mut h = HeaderMap::new();
            h.insert(
                "X-Seen",
                m.headers.as_ref().and_then(|h| h.get("X-In")).map_or("none", |v| v.as_str()),
            );
            responder.publish_with_headers(m.reply.unwrap(), h, m.payload).await.unwrap();
        }
    });
    nc.flush().await?;
    let mut h = HeaderMap::new();
    h.insert("X-In", "abc");
    let resp = nc.request_with_headers("svc.echo", h, "ping".into()).await?;
    assert_eq!(resp.payload, "ping");
    assert_eq!(resp.headers.unwrap().get("X-Seen").unwrap().as_str(), "abc");

    let err = nc.request("nobody.home", "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn echo_off_skips_own_messages() -> Result<()> {
    let s = start(opts()).await;
    let quiet = ConnectOptions::new().no_echo().connect(s.client_url()).await?;
    let other = async_nats::connect(s.client_url()).await?;
    let mut own = quiet.subscribe("chat").await?;
    quiet.flush().await?;
    quiet.publish("chat", "mine".into()).await?;
    quiet.flush().await?;
    other.publish("chat", "theirs".into()).await?;
    other.flush().await?;
    assert_eq!(next(&mut own).await.payload, "theirs");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn auto_unsubscribe_stops_after_max() -> Result<()> {
    let s = start(opts()).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut sub = nc.subscribe("tick").await?;
    sub.unsubscribe_after(3).await?;
    nc.flush().await?;
    for i in 0..10 {
        nc.publish("tick", format!("{i}").into()).await?;
    }
    nc.flush().await?;
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        got.push(m.payload);
    }
    assert_eq!(got, vec!["0", "1", "2"]);
    assert_eq!(s.num_subscriptions(), 0, "the subscription left the sublist");
    s.shutdown().await;
    Ok(())
}

async fn raw(
    s: &Server,
) -> Result<(BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf)> {
    let (r, w) = TcpStream::connect(s.client_addr()).await?.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    assert!(line.starts_with("INFO {"), "{line}");
    Ok((r, w))
}

async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> String {
    let mut line = String::new();
    tokio::time::timeout(T, r.read_line(&mut line)).await.expect("line in time").unwrap();
    line
}

#[tokio::test]
async fn max_payload_violation_closes_the_connection() -> Result<()> {
    let mut o = opts();
    o.max_payload = 1024;
    let s = start(o).await;
    let (mut r, mut w) = raw(&s).await?;
    w.write_all(b"CONNECT {\"verbose\":false}\r\nPUB foo 2048\r\n").await?;
    assert_eq!(read_line(&mut r).await, "-ERR 'Maximum Payload Violation'\r\n");
    let mut rest = Vec::new();
    tokio::time::timeout(T, r.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty(), "closed after the error");
    // The client library refuses too, before sending.
    let nc = async_nats::connect(s.client_url()).await?;
    assert!(nc.publish("foo", vec![0u8; 2048].into()).await.is_err());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn slow_consumer_is_cut_and_others_keep_receiving() -> Result<()> {
    let mut o = opts();
    o.max_pending = 256 * 1024;
    let s = start(o).await;
    // A subscriber that never reads its socket.
    let (_stuck_r, mut stuck_w) = raw(&s).await?;
    stuck_w.write_all(b"CONNECT {\"verbose\":false}\r\nSUB firehose 1\r\nPING\r\n").await?;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut healthy = nc.subscribe("firehose").await?;
    let publisher = async_nats::connect(s.client_url()).await?;
    nc.flush().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let payload = bytes::Bytes::from(vec![b'x'; 8 * 1024]);
    let n = 2000; // 16 MB: far beyond the stuck client's socket buffers and max_pending
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(T, healthy.next()).await {
                Ok(Some(_)) => got += 1,
                _ => break,
            }
        }
        got
    });
    for _ in 0..n {
        publisher.publish("firehose", payload.clone()).await?;
    }
    publisher.flush().await?;
    assert_eq!(reader.await?, n, "the healthy subscriber got everything");
    assert!(s.inner().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn reconnects_after_server_restart() -> Result<()> {
    let s = start(opts()).await;
    let addr = s.client_addr();
    let nc = ConnectOptions::new().retry_on_initial_connect().connect(s.client_url()).await?;
    let mut sub = nc.subscribe("after.restart").await?;
    nc.flush().await?;
    s.shutdown().await;
    let mut o = opts();
    o.port = addr.port();
    let s2 = start(o).await;
    // The client resubscribes on reconnect; publish until the message comes through.
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let _ = nc.publish("after.restart", "hi".into()).await;
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {
                return m;
            }
        }
    })
    .await?;
    assert_eq!(got.payload, "hi");
    s2.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lame_duck_announces_and_closes_clients() -> Result<()> {
    let mut o = opts();
    o.lame_duck_duration = Duration::from_millis(600);
    o.lame_duck_grace_period = Duration::from_millis(200);
    let s = start(o).await;
    let (mut r, mut w) = raw(&s).await?;
    w.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await?;
    assert_eq!(read_line(&mut r).await, "PONG\r\n");
    let addr = s.client_addr();
    let ldm = tokio::spawn(s.lame_duck());
    let line = read_line(&mut r).await;
    assert!(line.starts_with("INFO ") && line.contains("\"ldm\":true"), "{line}");
    // No new connections are accepted once in lame duck mode.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
    let mut rest = Vec::new();
    tokio::time::timeout(T, r.read_to_end(&mut rest)).await??;
    tokio::time::timeout(T, ldm).await??;
    Ok(())
}

#[tokio::test]
async fn token_auth() -> Result<()> {
    let mut o = opts();
    o.authorization.token = Some("s3cret".into());
    let s = start(o).await;
    assert!(
        ConnectOptions::with_token("wrong".into()).connect(s.client_url()).await.is_err(),
        "bad token refused"
    );
    let nc = ConnectOptions::with_token("s3cret".into()).connect(s.client_url()).await?;
    nc.flush().await?;
    let (mut r, mut w) = raw(&s).await?;
    w.write_all(b"PING\r\n").await?;
    assert_eq!(read_line(&mut r).await, "-ERR 'Authorization Violation'\r\n");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn reload_applies_reloadable_options_and_refuses_the_rest() -> Result<()> {
    let mut o = opts();
    o.authorization.token = Some("old".into());
    let s = start(o.clone()).await;
    let mut new = o.clone();
    new.authorization.token = Some("new".into());
    new.max_payload = 2048;
    let changed = s.reload(new)?;
    assert!(!changed.is_empty());
    assert!(ConnectOptions::with_token("old".into()).connect(s.client_url()).await.is_err());
    let nc = ConnectOptions::with_token("new".into()).connect(s.client_url()).await?;
    assert_eq!(nc.server_info().max_payload, 2048, "new clients see the reloaded limit");
    // A listen port cannot change on reload (nats-server refuses it too); nothing applies.
    let mut bad = o.clone();
    bad.authorization.token = Some("other".into());
    bad.port = 1;
    assert!(s.reload(bad).is_err());
    ConnectOptions::with_token("new".into()).connect(s.client_url()).await?.flush().await?;
    s.shutdown().await;
    Ok(())
}
