//! TLS on the client port and on the WebSocket port, over real sockets, with the test PKI in
//! `tests/certs/` (see `gen.sh` there): async-nats as the client, and raw sockets for what a
//! client library hides (the plaintext INFO, a stalled handshake).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::ConnectOptions;
use chorus_conf::{Options, TlsOptions, UserOptions, WebsocketOptions};
use chorus_server::Server;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

fn cert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs").join(name)
}

fn tls() -> TlsOptions {
    TlsOptions {
        cert_file: Some(cert("server.pem")),
        key_file: Some(cert("server-key.pem")),
        ..TlsOptions::default()
    }
}

fn opts(t: TlsOptions) -> Options {
    Options { host: "127.0.0.1".into(), port: 0, tls: Some(t), ..Options::default() }
}

async fn start(o: Options) -> Server {
    Server::start(o).await.expect("server starts")
}

fn tls_url(s: &Server) -> String {
    format!("tls://127.0.0.1:{}", s.client_addr().port())
}

fn client() -> ConnectOptions {
    ConnectOptions::new().add_root_certificates(cert("ca.pem")).require_tls(true)
}

async fn connect(url: &str, o: ConnectOptions) -> Result<async_nats::Client> {
    Ok(tokio::time::timeout(T, o.connect(url)).await??)
}

async fn round_trip(nc: &async_nats::Client) -> Result<()> {
    let mut sub = nc.subscribe("tls.check").await?;
    nc.flush().await?;
    // A round trip (flush only empties the client's buffer): the SUB is in place after it.
    let _ = nc.request("tls.no-one-here", "".into()).await;
    nc.publish("tls.check", "secret".into()).await?;
    let m = tokio::time::timeout(T, sub.next()).await?.expect("message");
    assert_eq!(&m.payload[..], b"secret");
    Ok(())
}

/// The INFO line a plain TCP connection receives, and the connection.
async fn plain_info(s: &Server) -> Result<(serde_json::Value, BufReader<TcpStream>)> {
    let tcp = TcpStream::connect(s.client_addr()).await?;
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    tokio::time::timeout(T, r.read_line(&mut line)).await??;
    let json = line.strip_prefix("INFO ").expect("INFO first").trim_end();
    Ok((serde_json::from_str(json)?, r))
}

fn closed_reasons(s: &Server) -> Vec<&'static str> {
    s.inner().closed.lock().unwrap().iter().map(|c| c.reason).collect()
}

#[tokio::test]
async fn async_nats_over_tls() -> Result<()> {
    let s = start(opts(tls())).await;
    let nc = connect(&tls_url(&s), client()).await?;
    assert!(nc.server_info().tls_required);
    round_trip(&nc).await?;
    // A TLS client and the INFO it saw first, in plaintext.
    let (info, _) = plain_info(&s).await?;
    assert_eq!(info["tls_required"], true);
    assert!(info.get("tls_available").is_none() && info.get("tls_verify").is_none());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_plain_client_cannot_skip_tls() -> Result<()> {
    let s = start(opts(tls())).await;
    let (_, mut r) = plain_info(&s).await?;
    r.get_mut().write_all(b"CONNECT {}\r\nPING\r\n").await?;
    let mut rest = Vec::new();
    tokio::time::timeout(T, r.read_to_end(&mut rest)).await??;
    assert!(!String::from_utf8_lossy(&rest).contains("PONG"), "no protocol without TLS");
    assert_eq!(s.num_clients(), 0);
    assert_eq!(closed_reasons(&s), vec!["TLS Handshake Failure"]);
    // async-nats without TLS is refused too (it sees tls_required and cannot comply).
    let plain = tokio::time::timeout(T, async_nats::connect(s.client_url())).await;
    assert!(!matches!(plain, Ok(Ok(_))));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_at_the_tls_timeout() -> Result<()> {
    let s = start(opts(TlsOptions { timeout: Duration::from_millis(300), ..tls() })).await;
    let (_, mut r) = plain_info(&s).await?;
    let t0 = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(T, r.read_to_end(&mut rest)).await??; // never sends a ClientHello
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(closed_reasons(&s), vec!["TLS Handshake Failure"]);
    // Others are served meanwhile and after.
    round_trip(&connect(&tls_url(&s), client()).await?).await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn handshake_first() -> Result<()> {
    let s = start(opts(TlsOptions { handshake_first: true, ..tls() })).await;
    // No plaintext INFO: the server waits for a ClientHello.
    let mut tcp = TcpStream::connect(s.client_addr()).await?;
    let mut b = [0u8; 16];
    assert!(tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut b)).await.is_err());
    drop(tcp);
    let nc = connect(&tls_url(&s), client().tls_first()).await?;
    assert!(nc.server_info().tls_required);
    round_trip(&nc).await?;
    s.shutdown().await;

    // With a fallback delay, a client that says nothing gets the INFO after it.
    let s = start(opts(TlsOptions {
        handshake_first: true,
        handshake_first_fallback: Some(Duration::from_millis(50)),
        ..tls()
    }))
    .await;
    let t0 = Instant::now();
    let (info, _) = plain_info(&s).await?;
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert_eq!(info["tls_required"], true);
    round_trip(&connect(&tls_url(&s), client().tls_first()).await?).await?;
    round_trip(&connect(&tls_url(&s), client()).await?).await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn allow_non_tls_serves_both() -> Result<()> {
    let mut o = opts(tls());
    o.allow_non_tls = true;
    let s = start(o).await;
    let (info, _) = plain_info(&s).await?;
    assert_eq!(info["tls_available"], true);
    assert!(info.get("tls_required").is_none());
    round_trip(&async_nats::connect(s.client_url()).await?).await?;
    round_trip(&connect(&tls_url(&s), client()).await?).await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn verify_requires_a_client_certificate_from_the_ca() -> Result<()> {
    let s = start(opts(TlsOptions { verify: true, ca_file: Some(cert("ca.pem")), ..tls() })).await;
    let (info, _) = plain_info(&s).await?;
    assert_eq!(info["tls_verify"], true);
    let with = |name: &str| {
        client()
            .add_client_certificate(cert(&format!("{name}.pem")), cert(&format!("{name}-key.pem")))
    };
    round_trip(&connect(&tls_url(&s), with("alice")).await?).await?;
    assert!(connect(&tls_url(&s), client()).await.is_err(), "no client certificate");
    assert!(connect(&tls_url(&s), with("mallory")).await.is_err(), "another CA");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pinned_certs_admit_only_the_pinned_key() -> Result<()> {
    let alice = std::fs::read_to_string(cert("alice.spki-sha256"))?.trim().to_string();
    let s = start(opts(TlsOptions {
        verify: true,
        ca_file: Some(cert("ca.pem")),
        pinned_certs: vec![alice],
        ..tls()
    }))
    .await;
    let with = |name: &str| {
        client()
            .add_client_certificate(cert(&format!("{name}.pem")), cert(&format!("{name}-key.pem")))
    };
    round_trip(&connect(&tls_url(&s), with("alice")).await?).await?;
    assert!(connect(&tls_url(&s), with("bob")).await.is_err(), "valid, but not pinned");
    assert!(closed_reasons(&s).contains(&"TLS Handshake Failure"));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn verify_and_map_names_the_user() -> Result<()> {
    let mut o = opts(TlsOptions {
        verify: true,
        verify_and_map: true,
        ca_file: Some(cert("ca.pem")),
        ..tls()
    });
    let user = |u: &str| UserOptions { user: u.into(), ..UserOptions::default() };
    // alice is known by her e-mail SAN, bob (no SAN) by his subject, RDNs in another order.
    o.authorization.users =
        vec![user("alice@example.com"), user("O=Chorus Test,CN=bob,OU=dev,C=US")];
    let s = start(o.clone()).await;
    let with = |name: &str| {
        client()
            .add_client_certificate(cert(&format!("{name}.pem")), cert(&format!("{name}-key.pem")))
    };
    let alice = connect(&tls_url(&s), with("alice")).await?;
    round_trip(&alice).await?;
    let bob = connect(&tls_url(&s), with("bob")).await?;
    round_trip(&bob).await?;
    let mut users: Vec<Option<String>> = s
        .inner()
        .clients
        .lock()
        .unwrap()
        .values()
        .map(|c| c.meta.lock().unwrap().user.clone())
        .collect();
    users.sort();
    assert_eq!(
        users,
        vec![
            Some("O=Chorus Test,CN=bob,OU=dev,C=US".to_string()),
            Some("alice@example.com".to_string())
        ]
    );
    s.shutdown().await;

    // Go's subject string matches too; a certificate that names no user is refused.
    o.authorization.users = vec![user("CN=bob,OU=dev,O=Chorus Test,C=US")];
    let s = start(o).await;
    round_trip(&connect(&tls_url(&s), with("bob")).await?).await?;
    assert!(connect(&tls_url(&s), with("alice")).await.is_err());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wss_with_async_nats() -> Result<()> {
    let o = Options {
        host: "127.0.0.1".into(),
        port: 0,
        websocket: Some(WebsocketOptions {
            host: "127.0.0.1".into(),
            port: Some(0),
            tls: Some(tls()),
            ..WebsocketOptions::default()
        }),
        ..Options::default()
    };
    let s = start(o).await;
    let url = s.websocket_url().unwrap();
    assert!(url.starts_with("wss://"), "{url}");
    let nc = connect(&url, ConnectOptions::new().add_root_certificates(cert("ca.pem"))).await?;
    assert!(nc.server_info().tls_required, "INFO over wss says tls_required");
    round_trip(&nc).await?;
    // The TCP port stays plain.
    round_trip(&async_nats::connect(s.client_url()).await?).await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unusable_tls_blocks_fail_the_start() {
    let missing = opts(TlsOptions { cert_file: Some(cert("nope.pem")), ..tls() });
    let e = Server::start(missing).await.unwrap_err().to_string();
    assert!(e.contains("nope.pem"), "{e}");
    let verify_no_ca = opts(TlsOptions { verify: true, ..tls() });
    assert!(Server::start(verify_no_ca).await.is_err());
    let no_key = opts(TlsOptions { key_file: None, ..tls() });
    assert!(Server::start(no_key).await.is_err());
    // Cipher suites rustls lacks are skipped; known ones are used.
    let suites = opts(TlsOptions {
        cipher_suites: vec![
            "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        ],
        curve_preferences: vec!["CurveP521".into(), "X25519".into()],
        min_version: Some("1.3".into()),
        ..tls()
    });
    let s = Server::start(suites).await.expect("starts with the usable subset");
    round_trip(&connect(&tls_url(&s), client()).await.unwrap()).await.unwrap();
    s.shutdown().await;
}
