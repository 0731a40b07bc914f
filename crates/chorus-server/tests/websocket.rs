//! The WebSocket listener over real sockets: async-nats over `ws://`, and a raw WebSocket
//! client for what a library hides (HTTP refusals, close frames, masking, compression, frame
//! sizes, cookies, timeouts, a 64 MB frame).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use chorus_conf::{Options, UserOptions, WebsocketAuth, WebsocketOptions};
use chorus_proto::websocket::{self as ws, FrameDecoder, WsEvent};
use chorus_server::Server;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);
const KEY: [u8; 4] = [1, 2, 3, 4];

fn ws_opts(w: WebsocketOptions) -> Options {
    Options {
        host: "127.0.0.1".into(),
        port: 0,
        websocket: Some(WebsocketOptions {
            host: "127.0.0.1".into(),
            port: Some(0),
            no_tls: true,
            ..w
        }),
        ..Options::default()
    }
}

async fn start(o: Options) -> Server {
    Server::start(o).await.expect("server starts")
}

/// A real round trip through the server: every SUB this client sent before is in place.
/// (`Client::flush` only empties the client's socket buffer.)
async fn barrier(nc: &async_nats::Client) -> Result<()> {
    let subject = nc.new_inbox();
    let mut sub = nc.subscribe(subject.clone()).await?;
    nc.publish(subject, "".into()).await?;
    tokio::time::timeout(T, sub.next()).await?;
    Ok(())
}

fn ws_addr(s: &Server) -> SocketAddr {
    s.websocket_addr().expect("websocket listener")
}

/// What came back from the server: whole data messages and control frames.
#[derive(Debug, PartialEq)]
enum Msg {
    Data(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    /// The server closed the TCP connection.
    Eof,
}

/// A minimal WebSocket client: masks what it sends, reassembles what it receives.
struct RawWs {
    tcp: TcpStream,
    buf: BytesMut,
    dec: FrameDecoder,
    cur: Vec<u8>,
    compressed: bool,
    inflate: Decompress,
    /// Size of each complete data message received (for frame-size checks).
    sizes: Vec<usize>,
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Sends `request` and reads the HTTP response head; returns it and the connection.
async fn http(addr: SocketAddr, request: &str) -> Result<(String, TcpStream, BytesMut)> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i + 4]).into_owned();
            let _ = buf.split_to(i + 4);
            return Ok((head, tcp, buf));
        }
        let n = tokio::time::timeout(T, tcp.read_buf(&mut buf)).await??;
        if n == 0 {
            return Ok((String::from_utf8_lossy(&buf).into_owned(), tcp, BytesMut::new()));
        }
    }
}

impl RawWs {
    async fn connect(addr: SocketAddr, extra: &str) -> Result<(RawWs, String)> {
        let req = format!(
            "GET /any/path HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{UPGRADE}{extra}\r\n",
            addr.port()
        );
        let (head, tcp, buf) = http(addr, &req).await?;
        if !head.starts_with("HTTP/1.1 101 ") {
            bail!("upgrade refused: {head}");
        }
        let compressed = head.contains("permessage-deflate");
        let mut c = RawWs {
            tcp,
            buf,
            dec: FrameDecoder::new(false, compressed),
            cur: Vec::new(),
            compressed: false,
            inflate: Decompress::new(false),
            sizes: Vec::new(),
        };
        c.compressed = false;
        Ok((c, head))
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let mut b = BytesMut::new();
        ws::encode_frame(&mut b, opcode, payload, Some(KEY));
        self.tcp.write_all(&b).await?;
        Ok(())
    }

    async fn send(&mut self, text: &str) -> Result<()> {
        self.send_frame(ws::OP_BINARY, text.as_bytes()).await
    }

    async fn next(&mut self) -> Result<Msg> {
        loop {
            while let Some(ev) = self.dec.decode(&mut self.buf)? {
                match ev {
                    WsEvent::Data { payload, compressed, end } => {
                        self.compressed = compressed;
                        self.cur.extend_from_slice(&payload);
                        if end {
                            let mut m = std::mem::take(&mut self.cur);
                            self.sizes.push(m.len());
                            if self.compressed {
                                m.extend_from_slice(&[0, 0, 0xff, 0xff]);
                                let mut out = vec![0u8; 8 << 20];
                                self.inflate.reset(false);
                                self.inflate.decompress(&m, &mut out, FlushDecompress::Sync)?;
                                out.truncate(self.inflate.total_out() as usize);
                                m = out;
                            }
                            return Ok(Msg::Data(m));
                        }
                    }
                    WsEvent::Ping(p) => return Ok(Msg::Ping(p.to_vec())),
                    WsEvent::Pong(p) => return Ok(Msg::Pong(p.to_vec())),
                    WsEvent::Close { status, reason } => return Ok(Msg::Close(status, reason)),
                }
            }
            let n = tokio::time::timeout(T, self.tcp.read_buf(&mut self.buf))
                .await
                .context("timed out waiting for the server")??;
            if n == 0 {
                return Ok(Msg::Eof);
            }
        }
    }

    /// The protocol text of the next data message.
    async fn text(&mut self) -> Result<String> {
        match self.next().await? {
            Msg::Data(d) => Ok(String::from_utf8_lossy(&d).into_owned()),
            other => bail!("expected data, got {other:?}"),
        }
    }

    /// Protocol text until it contains `want` (several messages may hold it).
    async fn until(&mut self, want: &str) -> Result<String> {
        let mut all = String::new();
        while !all.contains(want) {
            all.push_str(&self.text().await?);
        }
        Ok(all)
    }

    /// After INFO: CONNECT and a PING, up to the PONG.
    async fn handshake_nats(&mut self, connect: &str) -> Result<String> {
        let info = self.text().await?;
        assert!(info.starts_with("INFO {"), "{info}");
        self.send(&format!("CONNECT {connect}\r\nPING\r\n")).await?;
        self.until("PONG\r\n").await?;
        Ok(info)
    }

    /// The close frame and then the end of the connection.
    async fn expect_close(&mut self) -> Result<(Option<u16>, String)> {
        loop {
            match self.next().await? {
                Msg::Close(s, r) => return Ok((s, r)),
                Msg::Eof => bail!("connection ended without a close frame"),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn async_nats_over_ws_pub_sub_request_and_big_payload() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let url = s.websocket_url().unwrap();
    assert!(url.starts_with("ws://127.0.0.1:"));
    let nc = async_nats::connect(&url).await?;
    let tcp = async_nats::connect(s.client_url()).await?;
    // WebSocket and TCP clients share one subject space.
    let mut sub = nc.subscribe("greet.*").await?;
    barrier(&nc).await?;
    tcp.publish("greet.joe", "hello".into()).await?;
    tcp.flush().await?;
    let m = tokio::time::timeout(T, sub.next()).await?.unwrap();
    assert_eq!((m.subject.as_str(), &m.payload[..]), ("greet.joe", &b"hello"[..]));

    let mut svc = tcp.subscribe("svc.echo").await?;
    barrier(&tcp).await?;
    let tcp2 = tcp.clone();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let mut body = b"echo:".to_vec();
            body.extend_from_slice(&m.payload);
            let _ = tcp2.publish(m.reply.unwrap(), body.into()).await;
        }
    });
    tcp.flush().await?;
    let r = tokio::time::timeout(T, nc.request("svc.echo", "ping".into())).await??;
    assert_eq!(&r.payload[..], b"echo:ping");

    // 900 KiB through the frames both ways.
    let big: Vec<u8> = (0..900 * 1024).map(|i| (i % 253) as u8).collect();
    let mut bsub = tcp.subscribe("big").await?;
    barrier(&tcp).await?;
    nc.publish("big", big.clone().into()).await?;
    nc.flush().await?;
    let m = tokio::time::timeout(T, bsub.next()).await?.unwrap();
    assert_eq!(m.payload.len(), big.len());
    assert!(m.payload[..] == big[..]);
    let mut wsub = nc.subscribe("big2").await?;
    barrier(&nc).await?;
    tcp.publish("big2", big.clone().into()).await?;
    tcp.flush().await?;
    let m = tokio::time::timeout(T, wsub.next()).await?.unwrap();
    assert!(m.payload[..] == big[..]);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn info_names_the_websocket_listener() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let (mut c, head) = RawWs::connect(ws_addr(&s), "").await?;
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
    assert!(!head.contains("permessage-deflate"), "compression is off by default");
    let info = c.text().await?;
    let json: serde_json::Value =
        serde_json::from_str(info.strip_prefix("INFO ").unwrap().trim_end())?;
    assert_eq!(json["port"], ws_addr(&s).port());
    assert_eq!(json["host"], "127.0.0.1");
    assert!(json.get("tls_required").is_none());
    assert!(json.get("connect_urls").is_none() && json.get("ws_connect_urls").is_none());
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn protocol_split_and_joined_across_frames() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats(r#"{"verbose":false}"#).await?;
    // One op split over three frames, then two ops in one text frame.
    c.send("SUB a.b 1\r\nPU").await?;
    c.send("B a.b 5\r\nhel").await?;
    c.send_frame(ws::OP_TEXT, b"lo\r\nPUB a.b 2\r\nhi\r\nPING\r\n").await?;
    let got = c.until("PONG\r\n").await?;
    assert_eq!(got, "MSG a.b 1 5\r\nhello\r\nMSG a.b 1 2\r\nhi\r\nPONG\r\n");
    // A fragmented message with a ping between its fragments.
    let mut b = BytesMut::new();
    ws::encode_header(&mut b, ws::OP_BINARY, true, false, false, 4, Some(KEY));
    let mut p = b"PING".to_vec();
    ws::apply_mask(&mut p, KEY, 0);
    b.extend_from_slice(&p);
    ws::encode_frame(&mut b, ws::OP_PING, b"are you there", Some(KEY));
    ws::encode_header(&mut b, ws::OP_BINARY, false, true, false, 2, Some(KEY));
    let mut p = b"\r\n".to_vec();
    ws::apply_mask(&mut p, KEY, 0);
    b.extend_from_slice(&p);
    c.tcp.write_all(&b).await?;
    assert_eq!(c.next().await?, Msg::Pong(b"are you there".to_vec()));
    assert_eq!(c.text().await?, "PONG\r\n");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http_refusals_match_nats_server() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions {
        allowed_origins: vec!["http://good.example:8000".into()],
        ..WebsocketOptions::default()
    }))
    .await;
    let a = ws_addr(&s);
    let status = |head: &str| head.lines().next().unwrap_or_default().to_string();
    let (h, ..) = http(a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert_eq!(status(&h), "HTTP/1.1 400 Bad Request");
    assert!(h.contains("Sec-Websocket-Version: 13\r\n"), "{h}");
    let (h, ..) = http(a, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await?;
    assert_eq!(status(&h), "HTTP/1.1 405 Method Not Allowed");
    let (h, ..) = http(
        a,
        &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}Origin: http://bad.example\r\n\r\n"),
    )
    .await?;
    assert_eq!(status(&h), "HTTP/1.1 403 Forbidden");
    // The allowed origin, and no Origin at all (not a browser), are accepted.
    let (h, _keep1, _) = http(
        a,
        &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}Origin: http://good.example:8000\r\n\r\n"),
    )
    .await?;
    assert_eq!(status(&h), "HTTP/1.1 101 Switching Protocols");
    let (h, _keep2, _) = http(a, &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n")).await?;
    assert_eq!(status(&h), "HTTP/1.1 101 Switching Protocols");
    for bad in [
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    ] {
        let (h, ..) = http(a, bad).await?;
        assert_eq!(status(&h), "HTTP/1.1 400 Bad Request", "{bad}");
    }
    let (h, ..) = http(a, "garbage\r\n\r\n").await?;
    assert!(h.starts_with("HTTP/1.1 400 Bad Request"), "{h}");
    // Data sent before the 101: closed without an answer.
    let (h, ..) = http(a, &format!("GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\nXX")).await?;
    assert_eq!(h, "");
    // Only the two upgrades made clients.
    tokio::time::timeout(T, async {
        while s.num_clients() != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unfinished_handshake_is_cut_at_handshake_timeout() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions {
        handshake_timeout: Some(Duration::from_millis(300)),
        ..WebsocketOptions::default()
    }))
    .await;
    let mut tcp = TcpStream::connect(ws_addr(&s)).await?;
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?; // never finished
    let t0 = std::time::Instant::now();
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(T, tcp.read(&mut b)).await??;
    assert_eq!(n, 0, "closed without a response");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn control_frames_and_close_handshake() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats("{}").await?;
    c.send_frame(ws::OP_PING, b"x").await?;
    assert_eq!(c.next().await?, Msg::Pong(b"x".to_vec()));
    c.send_frame(ws::OP_PONG, b"ignored").await?;
    // The client closes: the server echoes the status and ends the connection.
    c.send_frame(ws::OP_CLOSE, &ws::close_payload(1000, "bye")).await?;
    assert_eq!(c.expect_close().await?, (Some(1000), "bye".into()));
    assert_eq!(c.next().await?, Msg::Eof);
    tokio::time::timeout(T, async {
        while s.num_clients() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;

    // An unmasked client frame is a protocol error: 1002 with nats-server's reason.
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.text().await?;
    c.tcp.write_all(b"\x82\x06PING\r\n").await?;
    assert_eq!(c.expect_close().await?, (Some(1002), "mask bit missing".into()));
    assert_eq!(c.next().await?, Msg::Eof);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn nats_errors_end_with_the_mapped_close_status() -> Result<()> {
    let mut o = ws_opts(WebsocketOptions::default());
    o.authorization.token = Some("s3cret".into());
    let s = start(o).await;
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    let info = c.text().await?;
    assert!(info.contains("\"auth_required\":true"), "{info}");
    c.send("CONNECT {\"auth_token\":\"wrong\"}\r\n").await?;
    assert_eq!(c.text().await?, "-ERR 'Authorization Violation'\r\n");
    assert_eq!(c.expect_close().await?, (Some(1008), "Authentication Failure".into()));

    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats(r#"{"auth_token":"s3cret","verbose":false}"#).await?;
    c.send("PUB foo 2000000\r\n").await?;
    assert_eq!(c.text().await?, "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(c.expect_close().await?, (Some(1009), "Maximum Message Payload Exceeded".into()));

    // Server shutdown: 1001.
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats(r#"{"auth_token":"s3cret"}"#).await?;
    let shut = tokio::spawn(s.shutdown());
    assert_eq!(c.expect_close().await?, (Some(1001), "Server Shutdown".into()));
    shut.await?;
    Ok(())
}

#[tokio::test]
async fn a_64mb_frame_is_refused_without_buffering_and_others_carry_on() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let nc = async_nats::connect(s.websocket_url().unwrap()).await?;
    let mut sub = nc.subscribe("still.alive").await?;
    barrier(&nc).await?;

    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats(r#"{"verbose":false}"#).await?;
    // A frame announcing 64 MiB whose first bytes are a PUB bigger than max_payload: the
    // server answers as soon as the control line is in, long before 64 MiB could arrive.
    let mut b = BytesMut::new();
    ws::encode_header(&mut b, ws::OP_BINARY, true, true, false, 64 << 20, Some(KEY));
    let mut p = b"PUB big 67108000\r\n".to_vec();
    p.resize(64 * 1024, b'x');
    ws::apply_mask(&mut p, KEY, 0);
    b.extend_from_slice(&p);
    c.tcp.write_all(&b).await?;
    assert_eq!(c.text().await?, "-ERR 'Maximum Payload Violation'\r\n");
    assert_eq!(c.expect_close().await?.0, Some(1009));

    // A 64 MiB frame of many small, valid PUBs is fine: it is streamed, not held.
    let (mut c2, _) = RawWs::connect(ws_addr(&s), "").await?;
    c2.handshake_nats(r#"{"verbose":false}"#).await?;
    let op = b"PUB noise 10\r\n0123456789\r\n";
    let total = (64 << 20) / op.len() * op.len();
    let mut b = BytesMut::new();
    ws::encode_header(&mut b, ws::OP_BINARY, true, true, false, total, Some(KEY));
    c2.tcp.write_all(&b).await?;
    let mut chunk = op.repeat((1 << 20) / op.len());
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let mut piece = chunk[..n].to_vec();
        ws::apply_mask(&mut piece, KEY, sent);
        c2.tcp.write_all(&piece).await?;
        sent += n;
    }
    chunk.clear();
    c2.send("PING\r\n").await?;
    assert_eq!(c2.until("PONG\r\n").await?, "PONG\r\n");

    // The other client never noticed.
    let tcp = async_nats::connect(s.client_url()).await?;
    tcp.publish("still.alive", "yes".into()).await?;
    tcp.flush().await?;
    let m = tokio::time::timeout(T, sub.next()).await?.unwrap();
    assert_eq!(&m.payload[..], b"yes");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn browsers_get_frames_of_at_most_4k() -> Result<()> {
    let s = start(ws_opts(WebsocketOptions::default())).await;
    let (mut c, _) =
        RawWs::connect(ws_addr(&s), "User-Agent: Mozilla/5.0 (X11; Linux) Chrome/156\r\n").await?;
    c.handshake_nats(r#"{"verbose":false}"#).await?;
    c.send("SUB big 1\r\nPING\r\n").await?;
    c.until("PONG\r\n").await?;
    let nc = async_nats::connect(s.client_url()).await?;
    nc.publish("big", vec![b'z'; 100_000].into()).await?;
    nc.flush().await?;
    let mut all = String::new();
    while all.len() < "MSG big 1 100000\r\n".len() + 100_002 {
        all.push_str(&c.text().await?);
    }
    assert!(all.starts_with("MSG big 1 100000\r\nzzz"));
    assert!(c.sizes.iter().all(|&n| n <= 4096), "{:?}", c.sizes);
    assert!(c.sizes.len() > 20);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn permessage_deflate_both_ways() -> Result<()> {
    let s =
        start(ws_opts(WebsocketOptions { compression: true, ..WebsocketOptions::default() })).await;
    let (mut c, head) = RawWs::connect(
        ws_addr(&s),
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )
    .await?;
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
        "{head}"
    );
    c.text().await?;
    // A compressed message from the client: CONNECT, SUB, a 50 KB PUB and a PING.
    let payload = "abcdefghij".repeat(5000);
    let text = format!(
        "CONNECT {{\"verbose\":false}}\r\nSUB z 1\r\nPUB z {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    );
    let mut comp = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(text.len() + 64);
    comp.compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)?;
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    let mut b = BytesMut::new();
    ws::encode_header(&mut b, ws::OP_BINARY, true, true, true, out.len(), Some(KEY));
    let start = b.len();
    b.extend_from_slice(&out);
    ws::apply_mask(&mut b[start..], KEY, 0);
    c.tcp.write_all(&b).await?;
    let got = c.until("PONG\r\n").await?;
    assert_eq!(got, format!("MSG z 1 {}\r\n{payload}\r\nPONG\r\n", payload.len()));
    assert!(
        c.compressed || c.sizes.iter().any(|&n| n < 2000),
        "the big MSG came compressed: {:?}",
        c.sizes
    );

    // Not offered by the client: not used.
    let (_, head) = RawWs::connect(ws_addr(&s), "").await?;
    assert!(!head.contains("permessage-deflate"));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cookies_and_no_auth_user() -> Result<()> {
    let mut o = ws_opts(WebsocketOptions {
        user_cookie: Some("nuser".into()),
        pass_cookie: Some("npass".into()),
        ..WebsocketOptions::default()
    });
    o.authorization.users = vec![
        UserOptions { user: "browser".into(), password: "pw".into(), ..Default::default() },
        UserOptions { user: "guest".into(), password: "gpw".into(), ..Default::default() },
    ];
    let s = start(o.clone()).await;
    // Credentials from cookies, CONNECT without any.
    let (mut c, _) = RawWs::connect(ws_addr(&s), "Cookie: nuser=browser; npass=pw\r\n").await?;
    c.handshake_nats(r#"{"verbose":false}"#).await?;
    // Wrong cookie: refused.
    let (mut c, _) = RawWs::connect(ws_addr(&s), "Cookie: nuser=browser; npass=nope\r\n").await?;
    c.text().await?;
    c.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await?;
    assert_eq!(c.text().await?, "-ERR 'Authorization Violation'\r\n");
    // CONNECT's own credentials win over cookies.
    let (mut c, _) = RawWs::connect(ws_addr(&s), "Cookie: nuser=browser; npass=nope\r\n").await?;
    c.handshake_nats(r#"{"verbose":false,"user":"browser","pass":"pw"}"#).await?;
    s.shutdown().await;

    // no_auth_user for WebSocket clients only.
    o.websocket.as_mut().unwrap().no_auth_user = Some("guest".into());
    let s = start(o.clone()).await;
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    c.handshake_nats(r#"{"verbose":false}"#).await?;
    let (mut r, mut w) = TcpStream::connect(s.client_addr()).await?.into_split();
    w.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await?;
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    while !got.contains("-ERR") {
        let n = tokio::time::timeout(T, r.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        got.contains("-ERR 'Authorization Violation'"),
        "TCP clients still need credentials: {got}"
    );
    s.shutdown().await;

    // The websocket block's own token.
    let mut o = ws_opts(WebsocketOptions {
        authorization: Some(WebsocketAuth { token: Some("wstok".into()), ..Default::default() }),
        ..WebsocketOptions::default()
    });
    o.authorization.users.clear();
    let s = start(o).await;
    let (mut c, _) = RawWs::connect(ws_addr(&s), "").await?;
    let info = c.text().await?;
    assert!(info.contains("\"auth_required\":true"), "{info}");
    c.send("CONNECT {\"verbose\":false,\"auth_token\":\"wstok\"}\r\nPING\r\n").await?;
    c.until("PONG\r\n").await?;
    let plain = async_nats::connect(s.client_url()).await;
    assert!(plain.is_ok(), "the TCP port has no auth");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_ws_client_that_stops_reading_is_a_slow_consumer() -> Result<()> {
    let mut o = ws_opts(WebsocketOptions::default());
    o.max_pending = 256 * 1024;
    o.max_payload = 64 * 1024;
    o.write_deadline = Duration::from_millis(500);
    let s = start(o).await;
    let (mut stuck, _) = RawWs::connect(ws_addr(&s), "").await?;
    stuck.handshake_nats(r#"{"verbose":false}"#).await?;
    stuck.send("SUB flood 1\r\nPING\r\n").await?;
    stuck.until("PONG\r\n").await?;
    let healthy = async_nats::connect(s.websocket_url().unwrap()).await?;
    let mut hsub = healthy.subscribe("flood").await?;
    barrier(&healthy).await?;
    let nc = async_nats::connect(s.client_url()).await?;
    let body = bytes::Bytes::from(vec![b'f'; 32 * 1024]);
    let mut received = 0;
    for _ in 0..2000 {
        nc.publish("flood", body.clone()).await?;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_micros(10), hsub.next()).await {
            received += 1;
        }
        if s.inner().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            break;
        }
    }
    nc.flush().await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        while s.inner().stats.slow_consumers.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("no slow consumer detected")?;
    // The healthy WebSocket client still gets messages.
    nc.publish("flood", "after".into()).await?;
    nc.flush().await?;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let m = tokio::time::timeout_at(deadline, hsub.next()).await?.unwrap();
        received += 1;
        if &m.payload[..] == b"after" {
            break;
        }
    }
    assert!(received > 1);
    s.shutdown().await;
    Ok(())
}
