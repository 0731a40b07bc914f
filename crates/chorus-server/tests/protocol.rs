//! The client protocol on raw sockets: exact bytes, -ERR texts, and whether the server closes
//! the connection afterwards (behaviour taken from nats-server v2.15.2; proto-conformance/
//! checks the same transcripts against the reference side by side).

use std::time::Duration;

use anyhow::Result;
use chorus_conf::Options;
use chorus_server::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const T: Duration = Duration::from_secs(5);

fn opts() -> Options {
    Options { host: "127.0.0.1".into(), port: 0, ..Options::default() }
}

struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    info: serde_json::Value,
}

impl Conn {
    async fn open(s: &Server) -> Result<Conn> {
        let (r, w) = TcpStream::connect(s.client_addr()).await?.into_split();
        let mut c = Conn { r: BufReader::new(r), w, info: serde_json::Value::Null };
        let line = c.line().await;
        let json = line.strip_prefix("INFO ").expect("INFO first").trim_end();
        c.info = serde_json::from_str(json)?;
        Ok(c)
    }

    async fn send(&mut self, b: &[u8]) {
        self.w.write_all(b).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(T, self.r.read_line(&mut line)).await.expect("line in time").unwrap();
        line
    }

    /// Reads until the peer closes; fails if it stays open.
    async fn closed(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(T, self.r.read_to_end(&mut rest))
            .await
            .expect("server closes the connection")
            .unwrap();
        rest
    }

    /// A PING/PONG round trip proves the connection is open and everything before was
    /// processed.
    async fn still_open(&mut self) {
        self.send(b"PING\r\n").await;
        assert_eq!(self.line().await, "PONG\r\n");
    }
}

#[tokio::test]
async fn info_carries_what_clients_gate_on() -> Result<()> {
    let s = Server::start(opts()).await?;
    let c = Conn::open(&s).await?;
    let i = &c.info;
    assert_eq!(i["proto"], 1);
    assert_eq!(i["headers"], true);
    assert_eq!(i["max_payload"], 1024 * 1024);
    assert_eq!(i["port"], s.client_addr().port());
    assert!(i["client_id"].as_u64().unwrap() > 0);
    assert_eq!(i["client_ip"], "127.0.0.1");
    let v = i["version"].as_str().unwrap();
    let minor: u32 = v.split('.').nth(1).unwrap().parse()?;
    assert!(v.starts_with("2.") && minor >= 11, "nats-compatible version, got {v}");
    assert!(i["chorus"].is_string());
    assert_eq!(i["server_id"].as_str().unwrap().len(), 56);
    assert!(i.get("auth_required").is_none());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn verbose_is_the_default_and_acks_each_op() -> Result<()> {
    let s = Server::start(opts()).await?;
    let mut c = Conn::open(&s).await?;
    // No CONNECT at all: nats-server's defaults are verbose and pedantic.
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    assert_eq!(c.line().await, "+OK\r\n");
    assert_eq!(c.line().await, "MSG foo 1 2\r\n");
    assert_eq!(c.line().await, "hi\r\n");
    assert_eq!(c.line().await, "+OK\r\n");
    c.send(b"CONNECT {\"verbose\":true}\r\n").await;
    assert_eq!(c.line().await, "+OK\r\n");
    c.send(b"CONNECT {\"verbose\":false}\r\n").await;
    c.still_open().await;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn errors_that_keep_the_connection_open() -> Result<()> {
    let s = Server::start(opts()).await?;
    let mut c = Conn::open(&s).await?;
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":true}\r\n").await;
    c.send(b"SUB foo..bar 1\r\n").await;
    assert_eq!(c.line().await, "-ERR 'Invalid Subject'\r\n");
    c.send(b"SUB bar q.x 2\r\n").await;
    c.send(b"PUB foo.* 0\r\n\r\n").await;
    assert_eq!(c.line().await, "-ERR 'Invalid Publish Subject'\r\n");
    c.still_open().await;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn errors_that_close_the_connection() -> Result<()> {
    let s = Server::start(opts()).await?;
    for (input, err) in [
        (&b"FOO\r\n"[..], Some("-ERR 'Unknown Protocol Operation'\r\n")),
        (b"PUB foo 3\r\nabcd\r\n", Some("-ERR 'Unknown Protocol Operation'\r\n")),
        (b"MSG foo 1 0\r\n\r\n", Some("-ERR 'Unknown Protocol Operation'\r\n")),
        (b"PUB foo\r\n", None),
        (b"SUB foo\r\n", None),
        (b"CONNECT {bad json\r\n", None),
        (b"CONNECT\r\n", None),
        (
            b"CONNECT {\"no_responders\":true}\r\n",
            Some("-ERR 'no responders requires headers support'\r\n"),
        ),
        (b"CONNECT {\"protocol\":5}\r\n", Some("-ERR 'invalid client protocol'\r\n")),
        (b"-ERR 'oops'\r\n", None),
    ] {
        let mut c = Conn::open(&s).await?;
        c.send(b"CONNECT {\"verbose\":false}\r\n").await;
        c.send(input).await;
        let rest = c.closed().await;
        let want = err.unwrap_or("");
        assert_eq!(
            String::from_utf8_lossy(&rest),
            want,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_split_of_a_pipeline_behaves_the_same() -> Result<()> {
    let s = Server::start(opts()).await?;
    let script = b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB a.* 1\r\nSUB a.b q 2\r\n\
PUB a.b 5\r\nhello\r\nHPUB a.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 1\r\nPUB a.d 1\r\nx\r\nPING\r\n";
    let want = "MSG a.b 1 5\r\nhello\r\nMSG a.b 2 5\r\nhello\r\nHMSG a.c 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n";
    for step in [1usize, 2, 3, 7, 13, script.len()] {
        let mut c = Conn::open(&s).await?;
        for chunk in script.chunks(step) {
            c.send(chunk).await;
            c.w.flush().await?;
            if step < 4 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        let mut got = String::new();
        while !got.ends_with("PONG\r\n") {
            got.push_str(&c.line().await);
        }
        assert_eq!(got, want, "chunks of {step}");
    }
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn no_responders_status_message() -> Result<()> {
    let s = Server::start(opts()).await?;
    let mut c = Conn::open(&s).await?;
    c.send(b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\n").await;
    c.send(b"SUB _INBOX.abc 9\r\nPUB svc.none _INBOX.abc 2\r\nhi\r\n").await;
    assert_eq!(c.line().await, "HMSG _INBOX.abc 9 40 40\r\n");
    let mut block = vec![0u8; 42];
    c.r.read_exact(&mut block).await?;
    assert_eq!(&block[..], &b"NATS/1.0 503\r\nNats-Subject: svc.none\r\n\r\n\r\n"[..]);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn stale_connection_after_unanswered_pings() -> Result<()> {
    let mut o = opts();
    o.ping_interval = Duration::from_millis(100);
    o.ping_max = 2;
    let s = Server::start(o).await?;
    let mut c = Conn::open(&s).await?;
    c.send(b"CONNECT {\"verbose\":false}\r\n").await;
    assert_eq!(c.line().await, "PING\r\n");
    assert_eq!(c.line().await, "PING\r\n");
    assert_eq!(c.line().await, "-ERR 'Stale Connection'\r\n");
    assert!(c.closed().await.is_empty());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn authentication_timeout() -> Result<()> {
    let mut o = opts();
    o.authorization.token = Some("t".into());
    o.authorization.timeout = Duration::from_millis(200);
    let s = Server::start(o).await?;
    let mut c = Conn::open(&s).await?;
    assert_eq!(c.info["auth_required"], true);
    assert_eq!(c.line().await, "-ERR 'Authentication Timeout'\r\n");
    assert!(c.closed().await.is_empty());
    // Another client, authenticated, was never disturbed.
    let mut ok = Conn::open(&s).await?;
    ok.send(b"CONNECT {\"verbose\":false,\"auth_token\":\"t\"}\r\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ok.still_open().await;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn max_connections_and_max_subscriptions() -> Result<()> {
    let mut o = opts();
    o.max_connections = 1;
    o.max_subscriptions = 2;
    let s = Server::start(o).await?;
    let mut first = Conn::open(&s).await?;
    first.send(b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\n").await;
    assert_eq!(first.line().await, "-ERR 'maximum subscriptions exceeded'\r\n");
    first.still_open().await;
    let mut second = Conn::open(&s).await?;
    assert_eq!(second.line().await, "-ERR 'maximum connections exceeded'\r\n");
    assert!(second.closed().await.is_empty());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn garbage_never_disturbs_other_clients() -> Result<()> {
    let s = Server::start(opts()).await?;
    let mut good = Conn::open(&s).await?;
    good.send(b"CONNECT {\"verbose\":false}\r\nSUB x 1\r\n").await;
    good.still_open().await;
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..50 {
        let mut c = Conn::open(&s).await?;
        let mut junk = vec![0u8; 300];
        for b in junk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        c.send(&junk).await;
        let _ = c.closed().await;
    }
    let mut p = Conn::open(&s).await?;
    p.send(b"CONNECT {\"verbose\":false}\r\nPUB x 2\r\nok\r\n").await;
    assert_eq!(good.line().await, "MSG x 1 2\r\n");
    s.shutdown().await;
    Ok(())
}
