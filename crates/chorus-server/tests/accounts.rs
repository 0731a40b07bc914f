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
async fn reload_rebuilds_stream_imports_of_existing_subscriptions() -> Result<()> {
    let s = start(CONF).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut old = b.subscribe("fromA.events.>").await?;
    let mut new = b.subscribe("newA.events.>").await?;
    b.flush().await?;
    let changed = CONF.replace(r#"prefix: "fromA""#, r#"prefix: "newA""#);
    s.reload(options(&changed))?;
    a.publish("events.x", "1".into()).await?;
    a.flush().await?;
    let m = next(&mut new, LONG).await.expect("the existing subscription gets the new import");
    assert_eq!(m.subject.as_str(), "newA.events.x");
    assert!(next(&mut old, SHORT).await.is_none(), "the old import is gone");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_queue_group_spans_exporter_and_importer() -> Result<()> {
    // As nats-server keeps import shadows in the exporter's list, A's and B's members of
    // queue group "workers" form one group: each message reaches exactly one of them.
    let s = start(CONF).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut qa = a.queue_subscribe("events.job", "workers".into()).await?;
    let mut qb = b.queue_subscribe("fromA.events.job", "workers".into()).await?;
    let mut plain = b.subscribe("fromA.events.job").await?;
    a.flush().await?;
    b.flush().await?;
    const N: usize = 200;
    for i in 0..N {
        a.publish("events.job", i.to_string().into()).await?;
    }
    a.flush().await?;
    for _ in 0..N {
        next(&mut plain, LONG).await.expect("the plain importer subscription gets every job");
    }
    let (mut got_a, mut got_b) = (0, 0);
    while got_a + got_b < N {
        tokio::select! {
            Some(_) = qa.next() => got_a += 1,
            Some(_) = qb.next() => got_b += 1,
            _ = tokio::time::sleep(LONG) => panic!("only {got_a} + {got_b} of {N} jobs arrived"),
        }
    }
    assert!(next(&mut qa, SHORT).await.is_none() && next(&mut qb, SHORT).await.is_none());
    assert!(got_a > 0 && got_b > 0, "both accounts' members take work: {got_a} / {got_b}");
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

// ---------------------------------------------------------------------------------------
// Operator mode: the full directory resolver, account JWT updates over $SYS, user expiry.

mod jwt {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use nkeys::KeyPair;
    use serde_json::{Value, json};

    pub fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    /// Signs `claims` as `signer`, as github.com/nats-io/jwt v2 encodes.
    pub fn encode(mut claims: Value, signer: &KeyPair) -> String {
        claims["iss"] = json!(signer.public_key());
        if claims.get("jti").is_none() {
            claims["jti"] = json!(format!("j{}", rand_u64()));
        }
        if claims.get("iat").is_none() {
            claims["iat"] = json!(now() - 10);
        }
        let h = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let input = format!("{h}.{c}");
        let sig = URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).unwrap());
        format!("{input}.{sig}")
    }

    fn rand_u64() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(1);
        N.fetch_add(1, Ordering::Relaxed)
    }

    pub fn operator(op: &KeyPair, system: &KeyPair) -> String {
        encode(
            json!({"sub": op.public_key(), "name": "OP",
                   "nats": {"type": "operator", "version": 2,
                            "system_account": system.public_key()}}),
            op,
        )
    }

    pub fn account(acc: &KeyPair, name: &str, op: &KeyPair, extra: Value, nats: Value) -> String {
        let mut n = json!({"type": "account", "version": 2, "limits": {"conn": -1}});
        n.as_object_mut().unwrap().extend(nats.as_object().unwrap().clone());
        let mut c = json!({"sub": acc.public_key(), "name": name, "nats": n});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        encode(c, op)
    }

    pub fn user(user: &KeyPair, acc: &KeyPair, extra: Value) -> String {
        let mut c = json!({"sub": user.public_key(), "name": "u",
                           "nats": {"type": "user", "version": 2}});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        encode(c, acc)
    }

    pub fn creds(jwt: &str, user: &KeyPair) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        )
    }

    pub fn sign_nonce(user: &KeyPair, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(user.sign(nonce.as_bytes()).unwrap())
    }
}

use nkeys::KeyPair;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

struct Op {
    op: KeyPair,
    sys: KeyPair,
    app: KeyPair,
    app2: KeyPair,
    dir: std::path::PathBuf,
}

impl Op {
    fn new() -> Op {
        let dir = write_conf("").parent().unwrap().join("jwt");
        Op {
            op: KeyPair::new_operator(),
            sys: KeyPair::new_account(),
            app: KeyPair::new_account(),
            app2: KeyPair::new_account(),
            dir,
        }
    }

    fn app_jwt(&self, extra: serde_json::Value, nats: serde_json::Value) -> String {
        jwt::account(&self.app, "APP", &self.op, extra, nats)
    }

    /// APP exports `updates.>`, APP2 imports it; SYS is the system account. SYS and APP2 come
    /// from files in the resolver directory, APP from resolver_preload.
    async fn start(&self) -> Server {
        self.start_with(false).await
    }

    async fn start_with(&self, allow_delete: bool) -> Server {
        std::fs::create_dir_all(&self.dir).unwrap();
        let sys = jwt::account(&self.sys, "SYS", &self.op, json!({}), json!({}));
        // An activation token from APP lets APP2 import the token-required service.
        let activation = jwt::encode(
            json!({"sub": self.app2.public_key(),
                   "nats": {"type": "activation", "version": 2, "subject": "priv.svc",
                            "kind": "service"}}),
            &self.app,
        );
        let app2 = jwt::account(
            &self.app2,
            "APP2",
            &self.op,
            json!({}),
            json!({"imports": [
                {"type": "stream", "subject": "updates.>", "account": self.app.public_key(),
                 "local_subject": "app.>"},
                {"type": "stream", "subject": "secret.>", "account": self.app.public_key()},
                {"type": "service", "subject": "priv.svc", "account": self.app.public_key(),
                 "token": activation}
            ]}),
        );
        for (k, j) in [(&self.sys, sys), (&self.app2, app2)] {
            std::fs::write(self.dir.join(format!("{}.jwt", k.public_key())), j).unwrap();
        }
        let app = self.app_jwt(
            json!({}),
            json!({"mappings": {"legacy.*": [{"subject": "updates.$1"}]},
                   "exports": [
                {"type": "stream", "subject": "updates.>"},
                {"type": "stream", "subject": "secret.>", "token_req": true},
                {"type": "service", "subject": "priv.svc", "token_req": true}
            ]}),
        );
        let mut o = Options {
            operator: vec![jwt::operator(&self.op, &self.sys)],
            resolver: Some(chorus_conf::ResolverOptions::Dir(chorus_conf::DirResolverOptions {
                kind: chorus_conf::DirResolverKind::Full,
                dir: self.dir.clone(),
                allow_delete,
                hard_delete: false,
                limit: 0,
                ttl: None,
                interval: None,
                timeout: None,
            })),
            resolver_preload: vec![(self.app.public_key(), app)],
            ..Options::default()
        };
        o.host = "127.0.0.1".into();
        o.port = 0;
        Server::start(o).await.expect("operator-mode server starts")
    }

    async fn client(&self, s: &Server, acc: &KeyPair) -> (async_nats::Client, KeyPair) {
        let u = KeyPair::new_user();
        let j = jwt::user(&u, acc, json!({}));
        let c = ConnectOptions::with_credentials(&jwt::creds(&j, &u))
            .unwrap()
            .connect(s.client_url())
            .await
            .expect("JWT user connects");
        (c, u)
    }
}

/// A raw JWT client: CONNECT with the user JWT and the signed nonce, then PING/PONG.
async fn raw_jwt(s: &Server, user_jwt: &str, user: &KeyPair) -> BufReader<tokio::net::TcpStream> {
    let sock = tokio::net::TcpStream::connect(s.client_addr()).await.unwrap();
    let mut r = BufReader::new(sock);
    let mut info = String::new();
    r.read_line(&mut info).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
    let sig = jwt::sign_nonce(user, v["nonce"].as_str().expect("nonce"));
    let connect = json!({"verbose": false, "jwt": user_jwt, "sig": sig});
    r.get_mut().write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes()).await.unwrap();
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert_eq!(line, "PONG\r\n", "JWT user is accepted");
    r
}

/// Everything the server sends until it closes the connection.
async fn until_closed(r: &mut BufReader<tokio::net::TcpStream>) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn jwt_accounts_from_the_directory_with_imports() -> Result<()> {
    let op = Op::new();
    let s = op.start().await;
    let (app, _) = op.client(&s, &op.app).await;
    let (app2, _) = op.client(&s, &op.app2).await;
    let mut sub = app2.subscribe("app.>").await?;
    let mut secret = app2.subscribe("secret.>").await?;
    app2.flush().await?;
    app.publish("updates.x", "1".into()).await?;
    app.publish("private.x", "2".into()).await?;
    app.publish("secret.x", "3".into()).await?;
    app.publish("legacy.y", "4".into()).await?;
    app.flush().await?;
    let m = next(&mut sub, LONG).await.expect("APP2 imports APP's stream from its JWT");
    assert_eq!(m.subject.as_str(), "app.x");
    let m = next(&mut sub, LONG).await.expect("APP's JWT mapping feeds the export");
    assert_eq!(m.subject.as_str(), "app.y");
    assert!(next(&mut sub, SHORT).await.is_none());
    assert!(next(&mut secret, SHORT).await.is_none(), "token_req export without a token");
    // The token-required service, imported with an activation token.
    let mut svc = app.subscribe("priv.svc").await?;
    app.flush().await?;
    let responder = tokio::spawn(async move {
        let m = svc.next().await.unwrap();
        app.publish(m.reply.unwrap(), "pong".into()).await.unwrap();
        app.flush().await.unwrap();
    });
    let r = tokio::time::timeout(LONG, app2.request("priv.svc", "ping".into())).await??;
    assert_eq!(&r.payload[..], b"pong");
    responder.await?;
    // The preloaded account was written to the directory, as nats-server's full resolver does.
    assert!(op.dir.join(format!("{}.jwt", op.app.public_key())).exists());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn claims_update_revokes_a_connected_user() -> Result<()> {
    let op = Op::new();
    let s = op.start().await;
    let alice = KeyPair::new_user();
    let alice_jwt = jwt::user(&alice, &op.app, json!({}));
    let mut alice_conn = raw_jwt(&s, &alice_jwt, &alice).await;
    let bob = KeyPair::new_user();
    let bob_jwt = jwt::user(&bob, &op.app, json!({}));
    let mut bob_conn = raw_jwt(&s, &bob_jwt, &bob).await;
    let (sys, _) = op.client(&s, &op.sys).await;

    // An update signed by a key the operator does not trust is refused.
    let rogue = KeyPair::new_operator();
    let bad = jwt::account(&op.app, "APP", &rogue, json!({}), json!({}));
    let subj = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", op.app.public_key());
    let r = sys.request(subj.clone(), bad.into()).await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert_eq!(v["error"]["code"], 500, "{v}");
    assert_eq!(v["error"]["account"], op.app.public_key());

    // The operator revokes alice.
    let revoked = op.app_jwt(
        json!({"iat": jwt::now()}),
        json!({"revocations": {alice.public_key(): jwt::now()},
               "exports": [{"type": "stream", "subject": "updates.>"}]}),
    );
    let r = sys.request(subj, revoked.clone().into()).await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert_eq!(v["data"]["code"], 200, "{v}");
    assert_eq!(v["data"]["message"], "jwt updated");
    assert_eq!(v["data"]["account"], op.app.public_key());
    assert!(v["server"]["id"].as_str().is_some_and(|id| id == s.id()));

    let said = until_closed(&mut alice_conn).await;
    assert!(said.contains("-ERR 'User Authentication Revoked'"), "alice got: {said:?}");
    // Bob is untouched.
    bob_conn.get_mut().write_all(b"PING\r\n").await?;
    let mut line = String::new();
    bob_conn.read_line(&mut line).await?;
    assert_eq!(line, "PONG\r\n");
    // Lookups answer with the stored JWT, empty for unknown accounts.
    let subj = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", op.app.public_key());
    let r = sys.request(subj, "".into()).await?;
    assert_eq!(String::from_utf8_lossy(&r.payload), revoked);
    let unknown = KeyPair::new_account().public_key();
    let r = sys.request(format!("$SYS.REQ.ACCOUNT.{unknown}.CLAIMS.LOOKUP"), "".into()).await?;
    assert!(r.payload.is_empty());
    // Stored for restarts, and alice cannot come back.
    let stored = std::fs::read_to_string(op.dir.join(format!("{}.jwt", op.app.public_key())))?;
    assert_eq!(stored, revoked);
    let again = ConnectOptions::with_credentials(&jwt::creds(&alice_jwt, &alice))?
        .connect(s.client_url())
        .await;
    assert!(again.is_err(), "a revoked user cannot reconnect");

    // $SYS.REQ.CLAIMS.UPDATE (full resolver) takes a JWT for a new account.
    let fresh = KeyPair::new_account();
    let fresh_jwt = jwt::account(&fresh, "NEW", &op.op, json!({}), json!({}));
    let r = sys.request("$SYS.REQ.CLAIMS.UPDATE", fresh_jwt.into()).await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert_eq!(v["data"]["account"], fresh.public_key(), "{v}");
    let (newc, _) = op.client(&s, &fresh).await;
    newc.flush().await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lowered_connection_limit_disconnects_newest_clients() -> Result<()> {
    let op = Op::new();
    let s = op.start().await;
    let u1 = KeyPair::new_user();
    let mut c1 = raw_jwt(&s, &jwt::user(&u1, &op.app, json!({})), &u1).await;
    let u2 = KeyPair::new_user();
    let mut c2 = raw_jwt(&s, &jwt::user(&u2, &op.app, json!({})), &u2).await;
    let (sys, _) = op.client(&s, &op.sys).await;
    let limited = op.app_jwt(json!({"iat": jwt::now()}), json!({"limits": {"conn": 1}}));
    let subj = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", op.app.public_key());
    let r = sys.request(subj, limited.into()).await?;
    assert!(String::from_utf8_lossy(&r.payload).contains("jwt updated"));
    let said = until_closed(&mut c2).await;
    assert!(said.contains("-ERR 'maximum account active connections exceeded'"), "{said:?}");
    c1.get_mut().write_all(b"PING\r\n").await?;
    let mut line = String::new();
    c1.read_line(&mut line).await?;
    assert_eq!(line, "PONG\r\n", "the oldest client stays");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn user_jwt_expiry_disconnects_the_client() -> Result<()> {
    let op = Op::new();
    let s = op.start().await;
    let u = KeyPair::new_user();
    let j = jwt::user(&u, &op.app, json!({"exp": jwt::now() + 2}));
    let mut c = raw_jwt(&s, &j, &u).await;
    let said = until_closed(&mut c).await;
    assert!(said.contains("-ERR 'User Authentication Expired'"), "{said:?}");
    // An account that expires before its user: nats-server's account wording.
    let (sys, _) = op.client(&s, &op.sys).await;
    let short = KeyPair::new_account();
    let short_jwt =
        jwt::account(&short, "SHORT", &op.op, json!({"exp": jwt::now() + 2}), json!({}));
    let r = sys.request("$SYS.REQ.CLAIMS.UPDATE", short_jwt.into()).await?;
    assert!(String::from_utf8_lossy(&r.payload).contains("jwt updated"));
    let u = KeyPair::new_user();
    let j = jwt::user(&u, &short, json!({"exp": jwt::now() + 3600}));
    let mut c = raw_jwt(&s, &j, &u).await;
    let said = until_closed(&mut c).await;
    assert!(said.contains("-ERR 'Account Authentication Expired'"), "{said:?}");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deleted_account_disconnects_its_users() -> Result<()> {
    let op = Op::new();
    let s = op.start_with(true).await;
    let u = KeyPair::new_user();
    let j = jwt::user(&u, &op.app, json!({}));
    let mut c = raw_jwt(&s, &j, &u).await;
    let (sys, _) = op.client(&s, &op.sys).await;
    let del = |accs: Vec<String>, signer: &KeyPair| {
        jwt::encode(
            json!({"sub": signer.public_key(), "nats": {"type": "generic", "accounts": accs}}),
            signer,
        )
    };
    // The system account cannot be deleted; an account key cannot sign a delete.
    let r = sys
        .request("$SYS.REQ.CLAIMS.DELETE", del(vec![op.sys.public_key()], &op.op).into())
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert!(
        v["error"]["description"]
            .as_str()
            .unwrap()
            .ends_with("not allowed to delete system account"),
        "{v}"
    );
    let r = sys
        .request("$SYS.REQ.CLAIMS.DELETE", del(vec![op.app.public_key()], &op.app).into())
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert!(v["error"]["description"].as_str().unwrap().ends_with("not trusted"), "{v}");

    let r = sys
        .request("$SYS.REQ.CLAIMS.DELETE", del(vec![op.app.public_key()], &op.op).into())
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&r.payload)?;
    assert_eq!(v["data"]["message"], "deleted 1 accounts", "{v}");
    let said = until_closed(&mut c).await;
    assert!(said.contains("-ERR 'Account Authentication Expired'"), "{said:?}");
    let path = op.dir.join(format!("{}.jwt", op.app.public_key()));
    assert!(!path.exists());
    assert!(op.dir.join(format!("{}.jwt.deleted", op.app.public_key())).exists());
    let again =
        ConnectOptions::with_credentials(&jwt::creds(&j, &u))?.connect(s.client_url()).await;
    assert!(again.is_err(), "users of a deleted account cannot connect");
    s.shutdown().await;
    Ok(())
}

/// Operator mode: an account JWT with JetStream storage limits has JetStream with those
/// limits; one without has none (10039), as nats-server decides from the claims.
#[tokio::test]
async fn jetstream_for_jwt_accounts_with_storage_limits() -> Result<()> {
    let (op, sys) = (KeyPair::new_operator(), KeyPair::new_account());
    let (js_acc, plain) = (KeyPair::new_account(), KeyPair::new_account());
    let store = tempfile::tempdir()?;
    let limits = json!({"limits": {"conn": -1, "mem_storage": -1, "disk_storage": 1_000_000,
                                   "streams": 1, "consumer": -1, "max_ack_pending": -1,
                                   "mem_max_stream_bytes": 0, "disk_max_stream_bytes": 0}});
    let mut o = Options {
        operator: vec![jwt::operator(&op, &sys)],
        resolver: Some(chorus_conf::ResolverOptions::Memory),
        resolver_preload: vec![
            (sys.public_key(), jwt::account(&sys, "SYS", &op, json!({}), json!({}))),
            (js_acc.public_key(), jwt::account(&js_acc, "JS", &op, json!({}), limits)),
            (plain.public_key(), jwt::account(&plain, "PLAIN", &op, json!({}), json!({}))),
        ],
        ..Options::default()
    };
    o.host = "127.0.0.1".into();
    o.port = 0;
    o.jetstream.enabled = true;
    o.jetstream.store_dir = Some(store.path().to_path_buf());
    let s = Server::start(o).await?;
    let connect = |acc: &KeyPair| {
        let u = KeyPair::new_user();
        let creds = jwt::creds(&jwt::user(&u, acc, json!({})), &u);
        let url = s.client_url();
        async move { ConnectOptions::with_credentials(&creds).unwrap().connect(url).await }
    };
    let (a, p) = (connect(&js_acc).await?, connect(&plain).await?);
    let req = |c: &async_nats::Client, subj: &'static str, body: &'static str| {
        let c = c.clone();
        async move {
            let m = tokio::time::timeout(LONG, c.request(subj, body.into())).await??;
            anyhow::Ok(serde_json::from_slice::<serde_json::Value>(&m.payload)?)
        }
    };
    let v = req(&a, "$JS.API.INFO", "").await?;
    assert_eq!(v["limits"]["max_storage"], 1_000_000, "{v}");
    assert_eq!(
        (v["limits"]["max_streams"].as_i64(), v["limits"]["memory_max_stream_bytes"].as_i64()),
        (Some(1), Some(-1))
    );
    let v = req(&a, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s"]}"#).await?;
    assert!(v.get("error").is_none(), "{v}");
    let v = req(&a, "$JS.API.STREAM.CREATE.T", r#"{"name":"T","subjects":["t"]}"#).await?;
    assert_eq!(v["error"]["err_code"], 10027, "{v}");
    let v = req(&p, "$JS.API.INFO", "").await?;
    assert_eq!(v["error"]["err_code"], 10039, "{v}");
    s.shutdown().await;
    Ok(())
}
