//! The WebSocket listener: nats.ws in a browser (and any WebSocket NATS client) speaks the
//! ordinary client protocol inside WebSocket frames, as nats-server's `websocket.go` serves it.
//!
//! ```text
//!  socket ─► HTTP upgrade (any path) ─► read pump: frames ─► unmask/inflate ─┐
//!                                                                           duplex pipe ─► handoff
//!  socket ◄─ write pump: binary frames (deflate, 4 KB for browsers) ◄───────┘   (the same client
//!                       + pong / close control frames                           code as TCP)
//! ```
//!
//! Why a pipe: the client task stays exactly the TCP one (limits, permissions, slow consumers,
//! write deadline) and knows nothing of frames; the two pump tasks own the framing, and the
//! write pump can answer a ping at once even while the client has nothing to send. The pipe
//! is small, so backpressure goes all the way through: a browser that stops reading stalls the
//! write pump, then the client's writer, which ends as a slow consumer like any TCP client.
//!
//! The handshake follows nats-server: GET, `Host`, `Upgrade: websocket`, `Connection:
//! Upgrade`, a 16-byte base64 `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`; failures get
//! the same HTTP status (400, 403 for an origin, 405 for a method) and the same log line
//! (`websocket handshake error: ...`). Origins are checked only when `same_origin` or
//! `allowed_origins` is set and the request carries an `Origin`. permessage-deflate (no
//! context takeover) is used when `compression` is on and the client offers it. Cookies named
//! by `jwt_cookie`/`user_cookie`/`pass_cookie`/`token_cookie` fill in what CONNECT lacks;
//! `X-Forwarded-For` shows in the log prefix. Unlike nats-server (no limit unless
//! `handshake_timeout` is set), the handshake is always bounded: 10 s by default.
//!
//! Frames: data is streamed to the client as it arrives (a 64 MB frame is never buffered;
//! the NATS parser behind the pipe rejects what exceeds `max_payload`). Compressed messages
//! must be inflated whole, so their compressed size is bounded like nats-server's
//! (8 x max_payload, at most 64 MB) and so is what they inflate to.
//!
//! How connections end, compared with nats-server (checked side by side): the same close
//! status and reason for every NATS-level end (1008 "Authentication Failure" after `-ERR
//! 'Authorization Violation'`, 1009 after a max payload violation, 1001 "Server Shutdown", the
//! echo of a client's close). Two deliberate differences: a broken frame (unmasked, RSV2/3,
//! bad close status...) gets a 1002 close frame naming the problem where nats-server just
//! drops the socket, and a parse error gets `-ERR` and 1002 "Parse Error" as on TCP where
//! nats-server's WebSocket read path drops it silently; a too-big compressed message gets
//! 1009. A browser sees a reason instead of an abnormal closure (1006).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use chorus_conf::Options;
use chorus_conf::WebsocketOptions;
use chorus_proto::websocket::{self as ws, FrameDecoder, WsEvent, status};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{
    ConnCtx, Handoff,
    tls::{self, TlsSetup},
};
use crate::auth::AuthError;
use crate::conn::{CloseReason, Transport};
use crate::info::ConnectOpts;
use crate::server::ServerInner;
use crate::sub::ClientShared;
use chorus_auth::ct_eq;

/// Default bound on the upgrade (TLS included) when `handshake_timeout` is not set.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upgrade request (Go's `http.DefaultMaxHeaderBytes` is 1 MB; cookies with JWTs
/// are a few KB).
const MAX_REQUEST: usize = 64 * 1024;
/// Frames sent to browsers are at most this big (nats-server found they cope better).
const BROWSER_FRAME: usize = 4096;
/// Outbound batches this small are not worth compressing.
const COMPRESS_THRESHOLD: usize = 64;
/// The pipe between the pumps and the client task, each direction.
const PIPE: usize = 64 * 1024;
/// First size of the pumps' buffers.
const READ_START: usize = 4096;
/// The empty stored block that ends a flushed deflate stream, as sent without its last four
/// bytes (RFC 7692 7.2.1), plus a final empty block so the inflater sees the end.
const DEFLATE_TAIL: [u8; 9] = [0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff];
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Credentials a browser sent as cookies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies {
    pub jwt: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
}

impl Cookies {
    /// Fills in what CONNECT left out, as nats-server does.
    pub(crate) fn apply(&self, c: &mut ConnectOpts) {
        fn fill(field: &mut Option<String>, cookie: &Option<String>) {
            if field.as_deref().is_none_or(str::is_empty) && cookie.is_some() {
                field.clone_from(cookie);
            }
        }
        fill(&mut c.jwt, &self.jwt);
        fill(&mut c.user, &self.user);
        fill(&mut c.pass, &self.pass);
        fill(&mut c.auth_token, &self.token);
    }
}

/// Whether the websocket block has its own authorization (user, token or `no_auth_user`),
/// which then applies to WebSocket clients instead of the server's.
pub(crate) fn auth_override(w: &WebsocketOptions) -> bool {
    let a = w.authorization.as_ref();
    a.and_then(|a| a.user.as_deref()).is_some_and(|s| !s.is_empty())
        || a.and_then(|a| a.token.as_deref()).is_some_and(|s| !s.is_empty())
        || w.no_auth_user.as_deref().is_some_and(|s| !s.is_empty())
}

/// The websocket block's own authorization, as nats-server applies it to WebSocket clients:
/// `no_auth_user` names the user of a CONNECT without credentials; a block `token` or
/// `user`/`password` replaces the server's. `Some(Ok(name))`: authenticated (the caller looks
/// up the user's account and permissions); `None`: the server's authorization decides.
pub(crate) fn authenticate(
    o: &Options,
    c: &ConnectOpts,
) -> Option<Result<Option<String>, AuthError>> {
    let w = o.websocket.as_ref()?;
    if !auth_override(w) {
        return None;
    }
    let empty = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    if let Some(n) = w.no_auth_user.as_deref().filter(|n| !n.is_empty())
        && empty(&c.user)
        && empty(&c.pass)
        && empty(&c.auth_token)
        && empty(&c.nkey)
    {
        return Some(Ok(Some(n.to_string())));
    }
    let a = w.authorization.as_ref();
    if let Some(t) = a.and_then(|a| a.token.as_deref()).filter(|t| !t.is_empty()) {
        let ok = c.auth_token.as_deref().is_some_and(|given| ct_eq(given, t));
        return Some(if ok { Ok(None) } else { Err(AuthError::Violation) });
    }
    if let Some(u) = a.and_then(|a| a.user.as_deref()).filter(|u| !u.is_empty()) {
        let p = a.and_then(|a| a.password.as_deref()).unwrap_or("");
        let ok = c.user.as_deref() == Some(u) && ct_eq(c.pass.as_deref().unwrap_or(""), p);
        return Some(if ok { Ok(Some(u.to_string())) } else { Err(AuthError::Violation) });
    }
    None
}

// ---- listener -------------------------------------------------------------------------------

/// Accepts WebSocket connections until shutdown or lame duck.
pub(crate) async fn accept_loop(
    srv: Arc<ServerInner>,
    listener: TcpListener,
    tls: Option<Arc<TlsSetup>>,
    handoff: Handoff,
) {
    loop {
        let (tcp, addr) = tokio::select! {
            _ = srv.shutdown.cancelled() => return,
            _ = srv.accept_stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("Error accepting websocket connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve(srv.clone(), tcp, addr, tls.clone(), handoff));
    }
}

async fn serve(
    srv: Arc<ServerInner>,
    tcp: TcpStream,
    addr: SocketAddr,
    tls: Option<Arc<TlsSetup>>,
    handoff: Handoff,
) {
    let opts = srv.opts();
    let Some(w) = opts.websocket.clone() else { return };
    let limit = w.handshake_timeout.filter(|d| !d.is_zero()).unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    let deadline = tokio::time::Instant::now() + limit;
    match tls {
        None => upgrade_and_run(srv, tcp, addr, &w, false, None, deadline, handoff).await,
        Some(setup) => {
            let hs = tokio::select! {
                r = tokio::time::timeout_at(deadline, setup.handshake(tcp)) => r,
                _ = srv.shutdown.cancelled() => return,
            };
            match hs {
                Ok(Ok((stream, ident))) => {
                    upgrade_and_run(srv, stream, addr, &w, true, ident, deadline, handoff).await
                }
                // Worded as nats-server's HTTP server logs it.
                Ok(Err(e)) if !e.is_probe() => tracing::error!(
                    "websocket: TLS handshake error from {}:{}: {e}",
                    addr.ip(),
                    addr.port()
                ),
                Ok(Err(e)) => tracing::debug!(
                    "websocket: TLS handshake error from {}:{}: {e}",
                    addr.ip(),
                    addr.port()
                ),
                Err(_) => tracing::debug!(
                    "websocket: TLS handshake error from {}:{}: timeout",
                    addr.ip(),
                    addr.port()
                ),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upgrade_and_run<S>(
    srv: Arc<ServerInner>,
    mut stream: S,
    addr: SocketAddr,
    w: &WebsocketOptions,
    is_tls: bool,
    cert: Option<tls::CertIdentity>,
    deadline: tokio::time::Instant,
    handoff: Handoff,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let up = tokio::select! {
        r = tokio::time::timeout_at(deadline, handshake(&mut stream, w, is_tls)) => r,
        _ = srv.shutdown.cancelled() => return,
    };
    let up = match up {
        Ok(Ok(up)) => up,
        Ok(Err(HandshakeFailure { status, reason, quiet })) => {
            if quiet {
                tracing::debug!("{}:{} - websocket handshake: {reason}", addr.ip(), addr.port());
            } else {
                tracing::error!(
                    "{}:{} - websocket handshake error: {reason}",
                    addr.ip(),
                    addr.port()
                );
            }
            if let Some(resp) = status {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(&resp).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            }
            return;
        }
        Err(_) => {
            // Go's HTTP server drops such a connection without a word; a debug line here.
            tracing::debug!(
                "{}:{} - websocket handshake: timeout after {limit:?}",
                addr.ip(),
                addr.port(),
                limit = w.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
            );
            return;
        }
    };
    if srv.accept_stop.is_cancelled() {
        return;
    }
    run_pumps(srv, stream, addr, up, is_tls, cert, handoff).await;
}

// ---- handshake ------------------------------------------------------------------------------

/// What the upgrade request asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Upgrade {
    pub compress: bool,
    /// Client frames must be masked (unless it sent `Nats-No-Masking: true`).
    pub mask: bool,
    /// A browser (User-Agent `Mozilla/...`): frames of at most 4 KB.
    pub browser: bool,
    /// Safari cannot take fragmented compressed messages.
    pub no_comp_frag: bool,
    pub cookies: Cookies,
    pub forwarded_ip: Option<IpAddr>,
}

/// A refused upgrade: the HTTP response to send (if any) and the reason for the log.
#[derive(Debug)]
pub(crate) struct HandshakeFailure {
    pub status: Option<Vec<u8>>,
    pub reason: String,
    /// Not worth an error line (the peer hung up or sent no HTTP at all).
    pub quiet: bool,
}

struct Request {
    method: String,
    minor: u8,
    headers: Vec<(String, String)>,
}

impl Request {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    /// Whether a comma-separated header has `token` (case-insensitive), as `wsHeaderContains`.
    fn contains(&self, name: &str, token: &str) -> bool {
        self.values(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// The reply `http.Error` writes (status line, its headers, the status text as the body).
fn http_error(minor: u8, code: u16, text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.{minor} {code} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{text}\n",
        http_date(SystemTime::now()),
        text.len() + 1
    )
    .into_bytes()
}

fn refuse(minor: u8, code: u16, reason: impl Into<String>) -> HandshakeFailure {
    let text = match code {
        403 => "Forbidden",
        405 => "Method Not Allowed",
        _ => "Bad Request",
    };
    HandshakeFailure {
        status: Some(http_error(minor, code, text)),
        reason: reason.into(),
        quiet: false,
    }
}

/// Go's reply to a request its HTTP server cannot even parse.
fn malformed(reason: impl Into<String>, detail: &str) -> HandshakeFailure {
    let text = if detail.is_empty() {
        "400 Bad Request".to_string()
    } else {
        format!("400 Bad Request: {detail}")
    };
    HandshakeFailure {
        status: Some(
            format!(
                "HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{text}"
            )
            .into_bytes(),
        ),
        reason: reason.into(),
        quiet: true,
    }
}

/// Reads the upgrade request, checks it and answers `101 Switching Protocols`.
pub(crate) async fn handshake<S>(
    stream: &mut S,
    w: &WebsocketOptions,
    is_tls: bool,
) -> Result<Upgrade, HandshakeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    let end = loop {
        let from = buf.len().saturating_sub(3);
        match stream.read_buf(&mut buf).await {
            Ok(0) => {
                let reason = "connection closed".into();
                return Err(HandshakeFailure { status: None, reason, quiet: true });
            }
            Ok(_) => {}
            Err(e) => {
                return Err(HandshakeFailure { status: None, reason: e.to_string(), quiet: true });
            }
        }
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return Err(malformed("request header too large", ""));
        }
    };
    let req = parse_request(&buf[..end]).ok_or_else(|| malformed("malformed request", ""))?;
    let up = check_request(&req, w, is_tls)?;
    if buf.len() > end {
        // A client must wait for 101 before sending frames (nats-server closes silently).
        return Err(HandshakeFailure {
            status: None,
            reason: "client sent data before handshake is complete".into(),
            quiet: false,
        });
    }
    let key = req.get("Sec-Websocket-Key").unwrap_or_default();
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if up.compress {
        resp.push_str(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n",
        );
    }
    if !up.mask {
        resp.push_str("Nats-No-Masking: true\r\n");
    }
    for (k, v) in &w.headers {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    stream.write_all(resp.as_bytes()).await.map_err(|e| HandshakeFailure {
        status: None,
        reason: e.to_string(),
        quiet: true,
    })?;
    Ok(up)
}

fn parse_request(raw: &[u8]) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut r = httparse::Request::new(&mut headers);
    match r.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    Some(Request {
        method: r.method?.to_string(),
        minor: r.version?,
        headers: r
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
            .collect(),
    })
}

/// RFC 6455 4.2.1 in nats-server's order, then the options.
fn check_request(
    req: &Request,
    w: &WebsocketOptions,
    is_tls: bool,
) -> Result<Upgrade, HandshakeFailure> {
    let m = req.minor;
    let host = req.get("Host").unwrap_or_default();
    if host.is_empty() && m >= 1 {
        return Err(malformed("'Host' missing in request", "missing required Host header"));
    }
    if req.method != "GET" {
        return Err(refuse(m, 405, "request method must be GET"));
    }
    if host.is_empty() {
        return Err(refuse(m, 400, "'Host' missing in request"));
    }
    if !req.contains("Upgrade", "websocket") {
        return Err(refuse(m, 400, "invalid value for header 'Upgrade'"));
    }
    if !req.contains("Connection", "Upgrade") {
        return Err(refuse(m, 400, "invalid value for header 'Connection'"));
    }
    let key = req.get("Sec-Websocket-Key").unwrap_or_default();
    if key.is_empty() {
        return Err(refuse(m, 400, "key missing"));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if decoded.map(|d| d.len()) != Ok(16) {
        return Err(refuse(m, 400, "invalid websocket key"));
    }
    if !req.contains("Sec-Websocket-Version", "13") {
        return Err(refuse(m, 400, "invalid version"));
    }
    if let Err(e) = check_origin(w, req, is_tls) {
        return Err(refuse(m, 403, format!("origin not allowed: {e}")));
    }
    let compress = w.compression
        && req
            .values("Sec-Websocket-Extensions")
            .flat_map(|v| v.split(','))
            .flat_map(|e| e.split(';'))
            .any(|p| p.trim().eq_ignore_ascii_case("permessage-deflate"));
    let ua = req.get("User-Agent").unwrap_or_default();
    let browser = ua.starts_with("Mozilla/");
    Ok(Upgrade {
        compress,
        mask: req.get("Nats-No-Masking") != Some("true"),
        browser,
        no_comp_frag: browser && compress && ua.contains("Version/") && ua.contains("Safari/"),
        cookies: cookies(req, w),
        forwarded_ip: req.get("X-Forwarded-For").and_then(|v| v.trim().parse().ok()),
    })
}

fn cookies(req: &Request, w: &WebsocketOptions) -> Cookies {
    let mut c = Cookies::default();
    for pair in req.values("Cookie").flat_map(|v| v.split(';')) {
        let Some((name, value)) = pair.trim().split_once('=') else { continue };
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        let name = Some(name.trim());
        let slot = if name == w.jwt_cookie.as_deref() {
            &mut c.jwt
        } else if name == w.user_cookie.as_deref() {
            &mut c.user
        } else if name == w.pass_cookie.as_deref() {
            &mut c.pass
        } else if name == w.token_cookie.as_deref() {
            &mut c.token
        } else {
            continue;
        };
        *slot = Some(value.to_string());
    }
    c
}

/// `host` lower-cased and the port, the scheme's default when absent (`wsGetHostAndPort`).
fn host_port(tls: bool, hostport: &str) -> Result<(String, String), String> {
    let default = if tls { "443" } else { "80" };
    let (h, p) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {hostport}: missing ']' in address"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, p),
            None if after.is_empty() => (h, default),
            None => return Err(format!("address {hostport}: unexpected characters after ']'")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("address {hostport}: too many colons in address"));
            }
            Some((h, p)) => (h, p),
            None => (hostport, default),
        }
    };
    Ok((h.to_ascii_lowercase(), p.to_string()))
}

/// `scheme://host[:port]...` of an Origin or allowed origin.
fn split_origin(o: &str) -> Result<(String, String), String> {
    let (scheme, rest) =
        o.split_once("://").ok_or_else(|| format!("parse {o:?}: invalid URI for request"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    Ok((scheme.to_string(), host.to_string()))
}

/// nats-server's `checkOrigin`.
fn check_origin(w: &WebsocketOptions, req: &Request, is_tls: bool) -> Result<(), String> {
    if !w.same_origin && w.allowed_origins.is_empty() {
        return Ok(());
    }
    let origin = req
        .get("Origin")
        .filter(|o| !o.is_empty())
        .or_else(|| req.get("Sec-Websocket-Origin"))
        .unwrap_or_default();
    if origin.is_empty() {
        return Ok(());
    }
    let (scheme, ohost) = split_origin(origin)?;
    let (oh, op) = host_port(scheme == "https", &ohost)?;
    if w.same_origin {
        let (rh, rp) = host_port(is_tls, req.get("Host").unwrap_or_default())?;
        let rs = if is_tls { "https" } else { "http" };
        if oh != rh || op != rp || !scheme.eq_ignore_ascii_case(rs) {
            return Err("not same origin".into());
        }
    }
    if !w.allowed_origins.is_empty() {
        let allowed = w.allowed_origins.iter().any(|a| {
            let Ok((s, h)) = split_origin(a) else { return false };
            let Ok((ah, ap)) = host_port(s == "https", &h) else { return false };
            ah == oh && s == scheme && ap == op
        });
        if !allowed {
            return Err("not in the allowed list".into());
        }
    }
    Ok(())
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// An RFC 7231 date (`Fri, 27 Nov 2026 08:47:20 GMT`).
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        MON[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ---- frames out -----------------------------------------------------------------------------

/// Turns what the client task writes into binary frames.
pub(crate) struct Framer {
    browser: bool,
    no_comp_frag: bool,
    deflate: Option<Compress>,
    scratch: Vec<u8>,
}

impl Framer {
    pub(crate) fn new(up: &Upgrade) -> Framer {
        Framer {
            browser: up.browser,
            no_comp_frag: up.no_comp_frag,
            deflate: up.compress.then(|| Compress::new(Compression::fast(), false)),
            scratch: Vec::new(),
        }
    }

    /// Appends `data` as one binary message (several for browsers: frames of at most 4 KB).
    pub(crate) fn frame(&mut self, data: &[u8], out: &mut BytesMut) -> io::Result<()> {
        let max = if self.browser { BROWSER_FRAME } else { usize::MAX };
        if let Some(c) = self.deflate.as_mut().filter(|_| data.len() > COMPRESS_THRESHOLD) {
            deflate(c, data, &mut self.scratch)?;
            let p = &self.scratch[..];
            let max = if self.no_comp_frag { usize::MAX } else { max };
            // One compressed message, fragmented if needed: RSV1 on the first frame only.
            let mut first = true;
            let mut rest = p;
            loop {
                let n = rest.len().min(max);
                let fin = n == rest.len();
                ws::encode_header(out, ws::OP_BINARY, first, fin, first, n, None);
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                first = false;
                if fin {
                    return Ok(());
                }
            }
        }
        for chunk in data.chunks(max.min(data.len().max(1))) {
            ws::encode_header(out, ws::OP_BINARY, true, true, false, chunk.len(), None);
            out.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// Raw deflate of one message with a fresh context (no context takeover), without the
/// trailing `00 00 ff ff` of the sync flush.
fn deflate(c: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    c.reset();
    out.clear();
    out.reserve(data.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        c.compress_vec(&data[consumed..], out, FlushCompress::Sync)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    Ok(())
}

/// Inflates one compressed message, handing the output to `sink` in pieces; fails past
/// `limit` output bytes.
fn inflate(
    d: &mut Decompress,
    input: &[u8],
    limit: usize,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), String> {
    d.reset(false);
    let mut out = vec![0u8; 32 * 1024];
    let mut input = input;
    let mut total = 0usize;
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let st = d
            .decompress(input, &mut out, FlushDecompress::None)
            .map_err(|e| format!("inflate: {e}"))?;
        let used = (d.total_in() - in0) as usize;
        let made = (d.total_out() - out0) as usize;
        input = &input[used..];
        total += made;
        if total > limit {
            return Err("maximum payload exceeded".into());
        }
        if made > 0 {
            sink(&out[..made]);
        }
        if st == Status::StreamEnd || (used == 0 && made == 0) {
            return Ok(());
        }
    }
}

/// nats-server's `wsMaxMessageSize`: what a compressed message may take, before and after
/// inflating.
fn max_message_size(max_payload: usize) -> usize {
    (max_payload.max(1) * 8).min(64 * 1024 * 1024)
}

/// The close status nats-server sends for each way a connection ends.
fn close_status(r: CloseReason) -> u16 {
    match r {
        CloseReason::ClientClosed => status::NORMAL,
        CloseReason::AuthenticationTimeout
        | CloseReason::AuthenticationViolation
        | CloseReason::SlowConsumerPendingBytes
        | CloseReason::SlowConsumerWriteDeadline
        | CloseReason::MaxConnectionsExceeded
        | CloseReason::MaxControlLineExceeded => status::POLICY_VIOLATION,
        CloseReason::ParseError
        | CloseReason::ProtocolViolation
        | CloseReason::BadClientProtocolVersion => status::PROTOCOL_ERROR,
        CloseReason::MaxPayloadExceeded => status::MESSAGE_TOO_BIG,
        CloseReason::WriteError
        | CloseReason::ReadError
        | CloseReason::StaleConnection
        | CloseReason::ServerShutdown => status::GOING_AWAY,
        #[allow(unreachable_patterns)]
        _ => status::INTERNAL_ERROR,
    }
}

// ---- the pumps ------------------------------------------------------------------------------

/// Control frames the read pump asks the write pump to send.
enum Control {
    Pong(Bytes),
    /// The close frame's payload; sent after what is queued, and last.
    Close(Vec<u8>),
}

fn log_prefix(addr: SocketAddr, fwd: Option<IpAddr>, slot: &OnceLock<Arc<ClientShared>>) -> String {
    let cid = slot.get().map_or(0, |s| s.cid);
    match fwd {
        Some(ip) => format!("{ip}/{}:{} - wid:{cid}", addr.ip(), addr.port()),
        None => format!("{}:{} - wid:{cid}", addr.ip(), addr.port()),
    }
}

async fn run_pumps<S>(
    srv: Arc<ServerInner>,
    stream: S,
    addr: SocketAddr,
    up: Upgrade,
    is_tls: bool,
    cert: Option<tls::CertIdentity>,
    handoff: Handoff,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let opts = srv.opts();
    let slot: Arc<OnceLock<Arc<ClientShared>>> = Arc::new(OnceLock::new());
    let (pump_side, client_side) = tokio::io::duplex(PIPE);
    let ctx = ConnCtx {
        transport: Transport::Websocket,
        tls: is_tls,
        forwarded_ip: up.forwarded_ip,
        cookies: up.cookies.clone(),
        cert,
        shared: Some(slot.clone()),
        ..ConnCtx::default()
    };
    let client = tokio::spawn(handoff(srv.clone(), Box::new(client_side), addr, ctx));
    let (sock_rd, sock_wr) = tokio::io::split(stream);
    let (pipe_rd, pipe_wr) = tokio::io::split(pump_side);
    let (ctl_tx, ctl_rx) = mpsc::channel(64);
    let reader = ReadPump {
        dec: FrameDecoder::new(up.mask, up.compress),
        inflater: up.compress.then(|| Decompress::new(false)),
        pending: Vec::new(),
        limit: max_message_size(opts.max_payload),
        addr,
        fwd: up.forwarded_ip,
        slot: slot.clone(),
    };
    let reader = tokio::spawn(reader.run(sock_rd, pipe_wr, ctl_tx));
    write_pump(
        sock_wr,
        pipe_rd,
        ctl_rx,
        Framer::new(&up),
        &slot,
        opts.write_deadline,
        addr,
        up.forwarded_ip,
    )
    .await;
    reader.abort();
    let _ = client.await;
}

struct ReadPump {
    dec: FrameDecoder,
    inflater: Option<Decompress>,
    /// The compressed message being received.
    pending: Vec<u8>,
    limit: usize,
    addr: SocketAddr,
    fwd: Option<IpAddr>,
    slot: Arc<OnceLock<Arc<ClientShared>>>,
}

impl ReadPump {
    async fn run<R, W>(mut self, sock: R, mut pipe: W, ctl: mpsc::Sender<Control>)
    where
        R: AsyncRead + Send,
        W: AsyncWrite + Unpin + Send,
    {
        tokio::pin!(sock);
        let mut buf = BytesMut::with_capacity(READ_START);
        let mut want = READ_START;
        'read: loop {
            if buf.capacity() - buf.len() < want / 2 {
                buf.reserve(want);
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if n >= want && want < PIPE => want *= 2,
                Ok(_) => {}
            }
            loop {
                let ev = match self.dec.decode(&mut buf) {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => {
                        self.fail(&ctl, status::PROTOCOL_ERROR, &e.to_string()).await;
                        break 'read;
                    }
                };
                match ev {
                    WsEvent::Data { payload, compressed: false, .. } => {
                        if !payload.is_empty() && pipe.write_all(&payload).await.is_err() {
                            break 'read;
                        }
                    }
                    WsEvent::Data { payload, compressed: true, end } => {
                        if self.pending.len() + payload.len() > self.limit {
                            self.fail(&ctl, status::MESSAGE_TOO_BIG, "maximum payload exceeded")
                                .await;
                            break 'read;
                        }
                        self.pending.extend_from_slice(&payload);
                        if end && !self.inflate_into(&mut pipe, &ctl).await {
                            break 'read;
                        }
                    }
                    WsEvent::Ping(p) => {
                        if ctl.send(Control::Pong(p)).await.is_err() {
                            break 'read;
                        }
                    }
                    WsEvent::Pong(_) => {}
                    WsEvent::Close { status, reason } => {
                        let echo =
                            status.map(|s| ws::close_payload(s, &reason)).unwrap_or_default();
                        let _ = ctl.send(Control::Close(echo)).await;
                        break 'read;
                    }
                }
            }
        }
        // End of input for the client: it sees EOF after what it was given.
        let _ = pipe.shutdown().await;
    }

    async fn fail(&self, ctl: &mpsc::Sender<Control>, code: u16, msg: &str) {
        tracing::error!("{} - read error: {msg}", log_prefix(self.addr, self.fwd, &self.slot));
        let _ = ctl.send(Control::Close(ws::close_payload(code, msg))).await;
    }

    async fn inflate_into<W: AsyncWrite + Unpin>(
        &mut self,
        pipe: &mut W,
        ctl: &mpsc::Sender<Control>,
    ) -> bool {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(&DEFLATE_TAIL);
        let mut out = Vec::new();
        let d = self.inflater.as_mut().expect("compression negotiated");
        let r = inflate(d, &input, self.limit, |b| out.extend_from_slice(b));
        input.clear();
        self.pending = input;
        if let Err(e) = r {
            let code = if e.contains("maximum") {
                status::MESSAGE_TOO_BIG
            } else {
                status::PROTOCOL_ERROR
            };
            self.fail(ctl, code, &e).await;
            return false;
        }
        pipe.write_all(&out).await.is_ok()
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_pump<W, R>(
    sock: W,
    pipe: R,
    mut ctl: mpsc::Receiver<Control>,
    mut framer: Framer,
    slot: &OnceLock<Arc<ClientShared>>,
    deadline: Duration,
    addr: SocketAddr,
    fwd: Option<IpAddr>,
) where
    W: AsyncWrite + Send,
    R: AsyncRead + Send,
{
    tokio::pin!(sock);
    tokio::pin!(pipe);
    // Small while idle (10k idle connections must stay cheap), grown under load.
    let mut data = BytesMut::with_capacity(READ_START);
    let mut out = BytesMut::with_capacity(READ_START);
    let mut close: Option<Vec<u8>> = None;
    let mut ctl_open = true;
    let mut write_failed = false;
    loop {
        out.clear();
        tokio::select! {
            biased;
            c = ctl.recv(), if ctl_open => match c {
                Some(Control::Pong(p)) => ws::encode_frame(&mut out, ws::OP_PONG, &p, None),
                Some(Control::Close(p)) => {
                    close.get_or_insert(p);
                    continue;
                }
                None => {
                    ctl_open = false;
                    continue;
                }
            },
            r = pipe.read_buf(&mut data) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Err(e) = framer.frame(&data, &mut out) {
                        tracing::error!("{} - Error during compression: {e}", log_prefix(addr, fwd, slot));
                        write_failed = true;
                        break;
                    }
                    if data.len() == data.capacity() && data.capacity() < PIPE {
                        data.reserve(data.capacity());
                    }
                    data.clear();
                }
            },
        }
        match tokio::time::timeout(deadline, sock.write_all(&out)).await {
            Ok(Ok(())) => {}
            _ => {
                write_failed = true;
                break;
            }
        }
    }
    if write_failed {
        if let Some(s) = slot.get() {
            s.close(CloseReason::WriteError, false);
        }
        return;
    }
    // A close frame the read pump asked for (an echo, or a protocol error) wins; else the
    // client's close reason, as nats-server words it.
    while let Ok(c) = ctl.try_recv() {
        if let Control::Close(p) = c {
            close.get_or_insert(p);
        }
    }
    let payload = close.unwrap_or_else(|| {
        let reason = slot.get().and_then(|s| s.close_reason()).unwrap_or(CloseReason::ClientClosed);
        ws::close_payload(close_status(reason), reason.as_str())
    });
    out.clear();
    ws::encode_frame(&mut out, ws::OP_CLOSE, &payload, None);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = sock.write_all(&out).await;
        let _ = sock.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(lines: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            minor: 1,
            headers: lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn accept_key_of_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_769_240);
        assert_eq!(http_date(t), "Fri, 27 Nov 2026 08:47:20 GMT");
        assert_eq!(http_date(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn origins() {
        let w = WebsocketOptions {
            allowed_origins: vec!["http://good.example:8000".into(), "https://sec.example".into()],
            ..WebsocketOptions::default()
        };
        let r = |o: &str| req(&[("Host", "x"), ("Origin", o)]);
        assert!(check_origin(&w, &r("http://good.example:8000"), false).is_ok());
        assert!(check_origin(&w, &r("http://GOOD.example:8000/path"), false).is_ok());
        assert!(check_origin(&w, &r("https://sec.example:443"), false).is_ok());
        assert_eq!(
            check_origin(&w, &r("http://good.example"), false),
            Err("not in the allowed list".into())
        );
        assert_eq!(
            check_origin(&w, &r("https://good.example:8000"), false),
            Err("not in the allowed list".into())
        );
        assert!(check_origin(&w, &req(&[("Host", "x")]), false).is_ok(), "no Origin: accepted");
        let same = WebsocketOptions { same_origin: true, ..WebsocketOptions::default() };
        let r = req(&[("Host", "127.0.0.1:8080"), ("Origin", "http://127.0.0.1:8080")]);
        assert!(check_origin(&same, &r, false).is_ok());
        assert_eq!(check_origin(&same, &r, true), Err("not same origin".into()));
        let r = req(&[("Host", "localhost:8080"), ("Origin", "http://127.0.0.1:8080")]);
        assert_eq!(check_origin(&same, &r, false), Err("not same origin".into()));
        assert_eq!(host_port(true, "[::1]").unwrap(), ("::1".into(), "443".into()));
        assert!(host_port(false, "a:b:c").is_err());
    }

    #[test]
    fn request_checks() {
        let w = WebsocketOptions { compression: true, ..WebsocketOptions::default() };
        let good = [
            ("Host", "x"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("User-Agent", "Mozilla/5.0 (X11) Chrome/156"),
            ("X-Forwarded-For", "10.1.2.3"),
        ];
        let up = check_request(&req(&good), &w, false).unwrap();
        assert!(up.compress && up.browser && up.mask && !up.no_comp_frag);
        assert_eq!(up.forwarded_ip, Some("10.1.2.3".parse().unwrap()));
        let without = |name: &str| {
            let h: Vec<_> = good.iter().copied().filter(|(k, _)| *k != name).collect();
            check_request(&req(&h), &w, false).unwrap_err().reason
        };
        assert_eq!(without("Upgrade"), "invalid value for header 'Upgrade'");
        assert_eq!(without("Connection"), "invalid value for header 'Connection'");
        assert_eq!(without("Sec-WebSocket-Key"), "key missing");
        assert_eq!(without("Sec-WebSocket-Version"), "invalid version");
        assert_eq!(without("Host"), "'Host' missing in request");
        let mut bad_key = good;
        bad_key[3].1 = "c2hvcnQ=";
        assert_eq!(
            check_request(&req(&bad_key), &w, false).unwrap_err().reason,
            "invalid websocket key"
        );
        let no_comp = WebsocketOptions::default();
        assert!(!check_request(&req(&good), &no_comp, false).unwrap().compress);
    }

    #[test]
    fn cookies_fill_what_connect_lacks() {
        let w = WebsocketOptions {
            user_cookie: Some("u".into()),
            pass_cookie: Some("p".into()),
            token_cookie: Some("t".into()),
            ..WebsocketOptions::default()
        };
        let r = req(&[("Cookie", "u=alice; other=1; p=\"s3cret\""), ("Cookie", "t=tok")]);
        let c = cookies(&r, &w);
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.pass.as_deref(), Some("s3cret"));
        assert_eq!(c.token.as_deref(), Some("tok"));
        let mut opts = ConnectOpts { user: Some("bob".into()), ..ConnectOpts::default() };
        c.apply(&mut opts);
        assert_eq!(opts.user.as_deref(), Some("bob"), "CONNECT wins");
        assert_eq!(opts.pass.as_deref(), Some("s3cret"));
        assert_eq!(opts.auth_token.as_deref(), Some("tok"));
    }

    #[test]
    fn framing_and_compression() {
        let up = Upgrade { browser: true, ..Upgrade::default() };
        let mut f = Framer::new(&up);
        let data = vec![b'x'; 10_000];
        let mut out = BytesMut::new();
        f.frame(&data, &mut out).unwrap();
        // 4096 + 4096 + 1808, each its own final binary frame.
        let mut d = FrameDecoder::new(false, false);
        let mut sizes = Vec::new();
        while let Some(WsEvent::Data { payload, end, .. }) = d.decode(&mut out).unwrap() {
            assert!(end);
            sizes.push(payload.len());
        }
        assert_eq!(sizes, vec![4096, 4096, 1808]);

        let up = Upgrade { compress: true, browser: true, ..Upgrade::default() };
        let mut f = Framer::new(&up);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let mut out = BytesMut::new();
        f.frame(&data, &mut out).unwrap();
        let mut d = FrameDecoder::new(false, true);
        let mut comp = Vec::new();
        let mut frames = 0;
        loop {
            match d.decode(&mut out).unwrap() {
                Some(WsEvent::Data { payload, compressed, end }) => {
                    assert!(compressed);
                    assert!(payload.len() <= BROWSER_FRAME);
                    comp.extend_from_slice(&payload);
                    frames += 1;
                    if end {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(frames > 1);
        comp.extend_from_slice(&DEFLATE_TAIL);
        let mut back = Vec::new();
        inflate(&mut Decompress::new(false), &comp, usize::MAX, |b| back.extend_from_slice(b))
            .unwrap();
        assert_eq!(back, data);
        // A second message from the same framer inflates on its own (no context takeover).
        let mut out = BytesMut::new();
        f.frame(&data[..5000], &mut out).unwrap();
        let mut d = FrameDecoder::new(false, true);
        let mut comp = Vec::new();
        while let Some(WsEvent::Data { payload, .. }) = d.decode(&mut out).unwrap() {
            comp.extend_from_slice(&payload);
        }
        comp.extend_from_slice(&DEFLATE_TAIL);
        let mut back = Vec::new();
        inflate(&mut Decompress::new(false), &comp, usize::MAX, |b| back.extend_from_slice(b))
            .unwrap();
        assert_eq!(back, &data[..5000]);
        // Inflating past the limit fails.
        assert!(inflate(&mut Decompress::new(false), &comp, 100, |_| {}).is_err());
        // Small batches go uncompressed.
        let mut out = BytesMut::new();
        f.frame(b"PONG\r\n", &mut out).unwrap();
        assert_eq!(&out[..], b"\x82\x06PONG\r\n");
    }

    #[test]
    fn limits_and_statuses() {
        assert_eq!(max_message_size(1 << 20), 8 << 20);
        assert_eq!(max_message_size(64 << 20), 64 << 20);
        assert_eq!(close_status(CloseReason::AuthenticationViolation), 1008);
        assert_eq!(close_status(CloseReason::MaxPayloadExceeded), 1009);
        assert_eq!(close_status(CloseReason::ServerShutdown), 1001);
        assert_eq!(close_status(CloseReason::ClientClosed), 1000);
    }
}
