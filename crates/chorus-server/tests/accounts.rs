//! Accounts across the wire (async-nats and raw sockets): stream and service exports/imports,
//! mappings, account limits, the system account and JWT account updates.

use std::time::Duration;

use anyhow::Result;
use async_nats::ConnectOptions;
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;

const CONF: &str = r#"
accounts {
  A {
    users: [ { user: a, password: a } ]
    exports: [
      { stream: "events.>" }
      { stream: "private.>", accounts: [B] }
      { service: "svc.echo" }
      { service: "svc.stream", response_type: stream }
    ]
    mappings: { "old.subject": "new.subject", "orders.*.*": "o.$2.{{wildcard(1)}}" }
  }
  B {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "events.>" }, prefix: "fromA" }
      { stream: { account: A, subject: "private.>" } }
      { service: { account: A, subject: "svc.echo" }, to: "echo" }
      { service: { account: A, subject: "svc.stream" } }
    ]
  }
  C {
    users: [ { user: c, password: c } ]
    imports: [ { stream: { account: A, subject: "events.>" } } ]
    limits: { max_connections: 1 }
  }
}
"#;

fn write_conf(conf: &str) -> std::path::PathBuf {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("chorus-acc-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("accounts.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn options(conf: &str) -> Options {
    let (mut o, _warnings) = Options::from_file(&write_conf(conf)).expect("config parses");
    o.host = "127.0.0.1".into();
    o.port = 0;
    o
}

async fn start(conf: &str) -> Server {
    Server::start(options(conf)).await.expect("server starts")
}

async fn user(s: &Server, name: &str) -> async_nats::Client {
    ConnectOptions::with_user_and_password(name.into(), name.into())
        .connect(s.client_url())
        .await
        .unwrap_or_else(|e| panic!("{name} connects: {e}"))
}

/// The next message within a generous bound, or None (the bound only decides how long a
/// test waits for something that must not come).
async fn next(sub: &mut async_nats::Subscriber, wait: Duration) -> Option<async_nats::Message> {
    tokio::time::timeout(wait, sub.next()).await.ok().flatten()
}

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn stream_import_with_prefix_delivers_mapped_subjects() -> Result<()> {
    let s = start(CONF).await;
    let (a, b, c) = (user(&s, "a").await, user(&s, "b").await, user(&s, "c").await);
    let mut bsub = b.subscribe("fromA.events.>").await?;
    let mut bwide = b.subscribe(">").await?;
    let mut csub = c.subscribe("events.*").await?;
    b.flush().await?;
    c.flush().await?;
    a.publish("events.login", "alice".into()).await?;
    a.flush().await?;
    let m = next(&mut bsub, LONG).await.expect("B gets the import");
    assert_eq!(m.subject.as_str(), "fromA.events.login");
    assert_eq!(&m.payload[..], b"alice");
    let m = next(&mut bwide, LONG).await.expect("B's '>' gets the import too");
    assert_eq!(m.subject.as_str(), "fromA.events.login");
    let m = next(&mut csub, LONG).await.expect("C imports without prefix");
    assert_eq!(m.subject.as_str(), "events.login");
    // Publishing the imported subject in B stays in B: A's subscribers never see it.
    let mut asub = a.subscribe(">").await?;
    a.flush().await?;
    b.publish("events.login", "from-b".into()).await?;
    b.publish("fromA.events.login", "from-b".into()).await?;
    b.flush().await?;
    assert!(next(&mut asub, SHORT).await.is_none(), "nothing flows back from B to A");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn non_exported_subjects_never_cross() -> Result<()> {
    let s = start(CONF).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut bsub = b.subscribe(">").await?;
    b.flush().await?;
    for subj in ["secret", "svc.internal", "events", "evt.x"] {
        a.publish(subj, "x".into()).await?;
    }
    a.publish("private.one", "ok".into()).await?;
    a.flush().await?;
    let m = next(&mut bsub, LONG).await.expect("the exported private stream reaches B");
    assert_eq!(m.subject.as_str(), "private.one", "nothing else arrived first");
    assert!(next(&mut bsub, SHORT).await.is_none());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn restricted_export_refused_for_a_third_account() -> Result<()> {
    // C may not import A's private stream: the configuration is refused as nats-server does.
    let conf = CONF.replace(
        r#"imports: [ { stream: { account: A, subject: "events.>" } } ]"#,
        r#"imports: [ { stream: { account: A, subject: "private.>" } } ]"#,
    );
    let err = Server::start(options(&conf)).await.expect_err("C's import is not authorized");
    assert!(
        err.to_string()
            .contains(r#"Error adding stream import "private.>": stream import not authorized"#),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn service_import_request_reply_across_accounts() -> Result<()> {
    let s = start(CONF).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut svc = a.subscribe("svc.echo").await?;
    a.flush().await?;
    let responder = tokio::spawn(async move {
        let m = svc.next().await.expect("request reaches A");
        let reply = m.reply.clone().expect("request has a reply");
        assert!(reply.as_str().starts_with("_R_."), "reply is mapped: {reply}");
        let info =
            m.headers.as_ref().and_then(|h| h.get("Nats-Request-Info")).map(|v| v.to_string());
        let info = info.expect("requester info header");
        assert!(info.contains(r#""acc":"B""#), "{info}");
        a.publish(reply, format!("echo:{}", String::from_utf8_lossy(&m.payload)).into())
            .await
            .unwrap();
        a.flush().await.unwrap();
        // The mapped reply is single-use for a singleton export: a second response is dropped.
        let reply2 = m.reply.clone().unwrap();
        a.publish(reply2, "late".into()).await.unwrap();
        a.flush().await.unwrap();
        a
    });
    let resp = tokio::time::timeout(LONG, b.request("echo", "hi".into())).await??;
    assert_eq!(&resp.payload[..], b"echo:hi");
    let _a = responder.await?;
    // Not imported under its own name in B: no responders.
    let err = tokio::time::timeout(LONG, b.request("svc.echo", "hi".into())).await?;
    assert!(err.is_err(), "svc.echo is not a subject of B");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn streamed_service_responses_and_no_leaks() -> Result<()> {
    let s = start(CONF).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut svc = a.subscribe("svc.stream").await?;
    a.flush().await?;
    let inbox = b.new_inbox();
    let mut replies = b.subscribe(inbox.clone()).await?;
    let mut bother = b.subscribe("leak.>").await?;
    b.flush().await?;
    b.publish_with_reply("svc.stream", inbox.clone(), "go".into()).await?;
    b.flush().await?;
    let m = next(&mut svc, LONG).await.expect("request reaches A");
    let reply = m.reply.expect("reply");
    for i in 0..3 {
        a.publish(reply.clone(), format!("part{i}").into()).await?;
    }
    // A responder cannot reach other subjects of B.
    a.publish("leak.x", "no".into()).await?;
    a.flush().await?;
    for i in 0..3 {
        let r = next(&mut replies, LONG).await.expect("streamed part");
        assert_eq!(r.payload, format!("part{i}").as_bytes());
    }
    assert!(next(&mut bother, SHORT).await.is_none());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn account_mappings_rewrite_published_subjects() -> Result<()> {
    let s = start(CONF).await;
    let a = user(&s, "a").await;
    let mut plain = a.subscribe("new.subject").await?;
    let mut wild = a.subscribe("o.>").await?;
    let mut old = a.subscribe("old.subject").await?;
    a.flush().await?;
    a.publish("old.subject", "1".into()).await?;
    a.publish("orders.eu.42", "2".into()).await?;
    a.flush().await?;
    assert_eq!(next(&mut plain, LONG).await.expect("mapped").payload, "1".as_bytes());
    assert_eq!(next(&mut wild, LONG).await.expect("mapped").subject.as_str(), "o.42.eu");
    assert!(next(&mut old, SHORT).await.is_none(), "the original subject is not delivered");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn account_max_connections() -> Result<()> {
    let s = start(CONF).await;
    let _c1 = user(&s, "c").await;
    let text = raw_connect(&s, "c").await;
    assert!(
        text.contains("-ERR 'maximum account active connections exceeded'"),
        "server said: {text}"
    );
    s.shutdown().await;
    Ok(())
}

/// CONNECT as `user` on a raw socket and return what the server sends until it closes.
async fn raw_connect(s: &Server, user: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(s.client_addr()).await.unwrap();
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\nPING\r\n"
    );
    sock.write_all(connect.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LONG, sock.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
