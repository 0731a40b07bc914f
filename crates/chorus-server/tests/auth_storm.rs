//! Brute force and slow authentication: hundreds of failed logins in parallel (wrong plain
//! and bcrypt passwords, forged NKey signatures, unknown users) and clients that never finish a
//! CONNECT, while two authenticated clients keep a message stream flowing. Every attacker gets
//! nats-server's error and is disconnected (`Authorization Violation` at once,
//! `Authentication Timeout` after `authorization { timeout }`), and every message of the
//! stream is delivered in order. What is asserted is delivery and outcomes, never timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::ConnectOptions;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use nkeys::KeyPair;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Generous bound for one attacker's whole exchange; only a hung server reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start_with(conf: &str) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("storm.conf");
    std::fs::write(&path, conf).unwrap();
    let (mut o, _warnings) = Options::from_file(&path).expect("config parses");
    o.host = "127.0.0.1".into();
    o.port = 0;
    Server::start(o).await.expect("server starts")
}

/// What an attacker does after reading INFO.
#[derive(Clone, Copy, Debug)]
enum Attack {
    WrongPassword,
    WrongBcryptPassword,
    UnknownUser,
    /// Signs the nonce with a key other than the one it claims.
    ForgedNkeySignature,
    /// Never sends anything.
    Silent,
    /// Sends half a CONNECT line and stops.
    HalfConnect,
}

/// Runs one attack on a fresh connection; returns every line the server sent, up to its close.
async fn attack(addr: std::net::SocketAddr, kind: Attack, i: usize, nkey: &str) -> Vec<String> {
    let conn = tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await;
    let Ok(conn) = conn else { return vec!["<connect hung>".into()] };
    let (r, mut w) = conn.unwrap().into_split();
    let mut r = BufReader::new(r);
    let mut info = String::new();
    if tokio::time::timeout(PATIENCE, r.read_line(&mut info)).await.is_err() {
        return vec!["<no INFO>".into()];
    }
    let connect = match kind {
        Attack::WrongPassword => {
            Some(format!(r#"CONNECT {{"verbose":false,"user":"good","pass":"guess-{i}"}}"#))
        }
        Attack::WrongBcryptPassword => {
            Some(format!(r#"CONNECT {{"verbose":false,"user":"hashed","pass":"guess-{i}"}}"#))
        }
        Attack::UnknownUser => {
            Some(format!(r#"CONNECT {{"verbose":false,"user":"nobody-{i}","pass":"g"}}"#))
        }
        Attack::ForgedNkeySignature => {
            let v: serde_json::Value = serde_json::from_str(&info[5..]).unwrap();
            let nonce = v["nonce"].as_str().expect("INFO has a nonce");
            let forger = KeyPair::new_user();
            let sig = URL_SAFE_NO_PAD.encode(forger.sign(nonce.as_bytes()).unwrap());
            Some(format!(r#"CONNECT {{"verbose":false,"nkey":"{nkey}","sig":"{sig}"}}"#))
        }
        Attack::Silent => None,
        Attack::HalfConnect => {
            w.write_all(br#"CONNECT {"verbose":false,"user":"go"#).await.unwrap();
            None
        }
    };
    if let Some(c) = connect {
        w.write_all(format!("{c}\r\nPING\r\n").as_bytes()).await.unwrap();
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match tokio::time::timeout(PATIENCE, r.read_line(&mut line)).await {
            Err(_) => {
                lines.push("<still open>".into());
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => lines.push(line.trim_end().to_string()),
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_silent_clients_are_cut_off_while_traffic_flows() {
    let agent = KeyPair::new_user();
    let hash = bcrypt::hash("correct horse", 6).unwrap();
    let conf = format!(
        "authorization {{\n  timeout: 1\n  users: [\n    {{ user: good, password: g }}\n    \
         {{ user: hashed, password: \"{hash}\" }}\n    {{ nkey: {} }}\n  ]\n}}\n",
        agent.public_key()
    );
    let s = start_with(&conf).await;
    let url = s.client_url();
    let addr = s.client_addr();

    // The authenticated stream: an NKey publisher and a password subscriber.
    let seed = agent.seed().unwrap();
    let publisher = ConnectOptions::with_nkey(seed).connect(&url).await.unwrap();
    let subscriber = ConnectOptions::with_user_and_password("good".into(), "g".into())
        .connect(&url)
        .await
        .unwrap();
    let mut stream = subscriber.subscribe("traffic").await.unwrap();
    let mut ready = subscriber.subscribe("ready").await.unwrap();
    subscriber.flush().await.unwrap();
    // The subscription is in once a message published after it arrives.
    loop {
        publisher.publish("ready", "?".into()).await.unwrap();
        publisher.flush().await.unwrap();
        tokio::select! {
            _ = ready.next() => break,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let storm_over = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (publisher, storm_over) = (publisher.clone(), storm_over.clone());
        tokio::spawn(async move {
            // Publish at least 500 messages, and keep going until the storm is over.
            let mut n = 0u64;
            while n < 500 || !storm_over.load(Ordering::Relaxed) {
                publisher.publish("traffic", n.to_string().into()).await.unwrap();
                n += 1;
                if n.is_multiple_of(20) {
                    // A steady stream, not a flood: the point is that it keeps flowing.
                    publisher.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            publisher.publish("traffic", "end".into()).await.unwrap();
            publisher.flush().await.unwrap();
            n
        })
    };
    let received = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(m) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
            if m.payload == "end" {
                break;
            }
            assert_eq!(m.payload, n.to_string(), "the stream arrives complete and in order");
            n += 1;
        }
        n
    });

    let kinds = [
        (Attack::WrongPassword, 120),
        (Attack::WrongBcryptPassword, 40),
        (Attack::UnknownUser, 60),
        (Attack::ForgedNkeySignature, 80),
        (Attack::Silent, 80),
        (Attack::HalfConnect, 40),
    ];
    let mut attackers = Vec::new();
    for (kind, count) in kinds {
        for i in 0..count {
            let nkey = agent.public_key();
            attackers.push(tokio::spawn(async move { (kind, attack(addr, kind, i, &nkey).await) }));
        }
    }
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for a in attackers {
        let (kind, lines) = a.await.unwrap();
        let want = match kind {
            Attack::Silent | Attack::HalfConnect => "-ERR 'Authentication Timeout'",
            _ => "-ERR 'Authorization Violation'",
        };
        assert_eq!(lines, vec![want.to_string()], "{kind:?}: the error, then the close");
        *outcomes.entry(format!("{kind:?}")).or_default() += 1;
    }
    assert_eq!(outcomes.values().sum::<usize>(), 420);

    storm_over.store(true, Ordering::Relaxed);
    let sent = traffic.await.unwrap();
    let got = received.await.unwrap();
    assert_eq!(got, sent, "every message of the authenticated stream was delivered");

    // The server is still serving logins, and only the two good clients are left.
    let late = ConnectOptions::with_user_and_password("hashed".into(), "correct horse".into())
        .connect(&url)
        .await
        .unwrap();
    late.flush().await.unwrap();
    assert_eq!(s.num_clients(), 3);
    s.shutdown().await;
}
