//! Authentication, accounts and subject permissions through async-nats and raw sockets:
//! the ChoirOS tenancy rule (a user never reads or writes another user's events) end to end.

use std::time::Duration;

use anyhow::Result;
use async_nats::ConnectOptions;
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CONF: &str = r#"
accounts {
  TENANTS {
    users: [
      { user: alice, password: apw, permissions: {
          publish: { allow: ["choiros.user.alice.>"] }
          subscribe: { allow: ["choiros.user.alice.>", "_INBOX.>"], deny: ["choiros.user.alice.private"] }
      } }
      { user: bob, password: bpw, permissions: {
          publish: ["choiros.user.bob.>"]
          subscribe: ["choiros.user.bob.>", "_INBOX.>"]
      } }
      { user: svc, password: spw, permissions: {
          subscribe: ["svc.>"]
          allow_responses: true
      } }
      { user: watcher, password: wpw }
    ]
  }
  OTHER {
    users: [ { user: carol, password: cpw } ]
  }
}
"#;

async fn start_with(conf: &str) -> Server {
    let dir =
        std::env::temp_dir().join(format!("chorus-auth-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("auth.conf");
    std::fs::write(&path, conf).unwrap();
    let (mut o, _warnings) = Options::from_file(&path).expect("config parses");
    o.host = "127.0.0.1".into();
    o.port = 0;
    Server::start(o).await.expect("server starts")
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

async fn user(s: &Server, name: &str, pass: &str) -> async_nats::Client {
    ConnectOptions::with_user_and_password(name.into(), pass.into())
        .connect(s.client_url())
        .await
        .unwrap_or_else(|e| panic!("{name} connects: {e}"))
}

/// A raw connection that logs in and returns everything the server says after `script`.
async fn raw_after(s: &Server, user: &str, pass: &str, script: &str) -> Vec<String> {
    let (r, mut w) = TcpStream::connect(s.client_addr()).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let connect =
        format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n");
    w.write_all(connect.as_bytes()).await.unwrap();
    w.write_all(script.as_bytes()).await.unwrap();
    w.write_all(b"PING\r\n").await.unwrap();
    let mut out = Vec::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        if n == 0 || line == "PONG\r\n" {
            break;
        }
        out.push(line.trim_end().to_string());
    }
    out
}

#[tokio::test]
async fn permission_errors_match_nats_server_and_keep_the_connection() -> Result<()> {
    let s = start_with(CONF).await;
    let out = raw_after(
        &s,
        "alice",
        "apw",
        "PUB choiros.user.bob.action.COMMAND 1\r\nx\r\nSUB choiros.user.bob.> 1\r\nSUB choiros.> q 2\r\nSUB choiros.user.alice.> 3\r\n",
    )
    .await;
    assert_eq!(
        out,
        vec![
            "-ERR 'Permissions Violation for Publish to \"choiros.user.bob.action.COMMAND\"'",
            "-ERR 'Permissions Violation for Subscription to \"choiros.user.bob.>\"'",
            "-ERR 'Permissions Violation for Subscription to \"choiros.>\" using queue \"q\"'",
        ]
    );
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tenants_never_see_each_other() -> Result<()> {
    let s = start_with(CONF).await;
    let alice = user(&s, "alice", "apw").await;
    let bob = user(&s, "bob", "bpw").await;
    let watcher = user(&s, "watcher", "wpw").await;
    let carol = user(&s, "carol", "cpw").await;
    let mut alice_sub = alice.subscribe("choiros.user.alice.>").await?;
    let mut watch_all = watcher.subscribe("choiros.>").await?;
    let mut carol_all = carol.subscribe(">").await?;
    for c in [&alice, &watcher, &carol] {
        c.flush().await?;
    }
    alice.publish("choiros.user.alice.action.COMMAND", "a1".into()).await?;
    alice.publish("choiros.user.alice.private", "secret".into()).await?;
    bob.publish("choiros.user.bob.action.COMMAND", "b1".into()).await?;
    // Bob trying to write into Alice's space is refused by the server.
    bob.publish("choiros.user.alice.action.COMMAND", "forged".into()).await?;
    alice.flush().await?;
    bob.flush().await?;

    let m = tokio::time::timeout(Duration::from_secs(5), alice_sub.next()).await?.unwrap();
    assert_eq!(m.payload, "a1");
    // The wide subscription was allowed, but the denied subject is filtered at delivery,
    // and Bob's forgery never arrives.
    assert!(tokio::time::timeout(Duration::from_millis(300), alice_sub.next()).await.is_err());

    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), watch_all.next()).await
    {
        seen.push(String::from_utf8(m.payload.to_vec())?);
    }
    seen.sort();
    assert_eq!(seen, vec!["a1", "b1", "secret"], "same account, no permissions: sees all of it");
    // Another account sees nothing at all, even subscribed to `>`.
    assert!(tokio::time::timeout(Duration::from_millis(200), carol_all.next()).await.is_err());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn allow_responses_lets_a_service_reply_only() -> Result<()> {
    let s = start_with(CONF).await;
    let svc = user(&s, "svc", "spw").await;
    let alice = user(&s, "alice", "apw").await;
    let mut reqs = svc.subscribe("svc.echo").await?;
    svc.flush().await?;
    let responder = svc.clone();
    tokio::spawn(async move {
        while let Some(m) = reqs.next().await {
            let reply = m.reply.unwrap();
            responder.publish(reply.clone(), m.payload).await.unwrap();
            // A second reply exceeds max (1) and must be refused.
            responder.publish(reply, "again".into()).await.unwrap();
            responder.flush().await.unwrap();
        }
    });
    // Alice may not publish to svc.echo (her publish allow list), so use the watcher's
    // account peer: alice's inbox is allowed for her subscriptions.
    let watcher = user(&s, "watcher", "wpw").await;
    let resp = watcher.request("svc.echo", "hello".into()).await?;
    assert_eq!(resp.payload, "hello");
    // The service cannot publish anywhere else.
    let out = raw_after(&s, "svc", "spw", "PUB choiros.user.alice.x 1\r\nx\r\n").await;
    assert_eq!(out, vec!["-ERR 'Permissions Violation for Publish to \"choiros.user.alice.x\"'"]);
    drop(alice);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn nkey_and_bcrypt_users() -> Result<()> {
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed()?;
    let hash = bcrypt::hash("hunter2", 4)?;
    let conf = format!(
        "authorization {{\n  users: [ {{ user: agent, password: \"{hash}\" }}, {{ nkey: {} }} ]\n}}\n",
        kp.public_key()
    );
    let s = start_with(&conf).await;
    let nc = ConnectOptions::with_nkey(seed.clone()).connect(s.client_url()).await?;
    nc.flush().await?;
    let other = nkeys::KeyPair::new_user().seed()?;
    assert!(ConnectOptions::with_nkey(other).connect(s.client_url()).await.is_err());
    let nc2 = ConnectOptions::with_user_and_password("agent".into(), "hunter2".into())
        .connect(s.client_url())
        .await?;
    nc2.flush().await?;
    assert!(
        ConnectOptions::with_user_and_password("agent".into(), hash.clone())
            .connect(s.client_url())
            .await
            .is_err(),
        "the hash itself is not the password"
    );
    s.shutdown().await;
    Ok(())
}
