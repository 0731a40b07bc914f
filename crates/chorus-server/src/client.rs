//! One client connection: a reader task that parses and routes, a writer task that drains the
//! outbound buffer.
//!
//! ```text
//!   socket ──read──► reader task ──decode──► ClientOp ──route──► subscribers' Outbound
//!                     │  (owns subs, match cache,                    │ append under a short
//!                     │   dirty set of touched writers)              │ lock; no I/O, no await
//!                     └─ end of read batch: wake each dirty writer once
//!   socket ◄──write── writer task ◄── swap(Outbound.buf, spare) ◄── Notify
//! ```
//!
//! Why this shape:
//! - Publishers never wait on a subscriber's socket. Delivery appends to the subscriber's
//!   buffer; only its own writer task writes. A subscriber that stops reading grows its buffer
//!   up to `max_pending` and is then disconnected as a slow consumer; everyone else is served
//!   meanwhile. (nats-server makes the publisher flush inline and can stall it up to
//!   `write_deadline`.)
//! - A publisher whose receiver is merely behind (over 3/4 of `max_pending`) pauses for at most
//!   [`STALL_MAX`] after its read batch, so a fast producer does not needlessly push a healthy
//!   consumer over the limit.
//! - Waking writers once per read batch (deferred flush) turns N small writes into one.
//! - Accounts with mappings, imports or exports in use go through `route_account` /
//!   `route_in` (see `account` for the model); the others pay one atomic load of the
//!   account's flags per publish and keep the plain path.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use chorus_proto::{ClientOp, Decoder, ProtoError, encode, headers, subject};
use chorus_sublist::SublistResult;
use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::account::{self, Account, Shadow, ShadowRef};
use crate::auth::{AuthError, Permissions};
use crate::info::ConnectOpts;
use crate::server::ServerInner;

/// Longest pause imposed on a publisher whose receiver is close to `max_pending`.
const STALL_MAX: Duration = Duration::from_millis(5);
/// Per-client match cache size before it is pruned (nats-server: 512 results, prune 256).
const CACHE_MAX: usize = 1024;
const CACHE_PRUNE: usize = 256;
/// Read buffer bounds: start small so 10k idle connections cost little, grow under load.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// Why a connection ended, worded as nats-server's `ClosedState` (shown in /connz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    AuthenticationTimeout,
    AuthenticationViolation,
    AuthenticationExpired,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    ProtocolViolation,
    StaleConnection,
    MaxPayloadExceeded,
    MaxConnectionsExceeded,
    MaxControlLineExceeded,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    ServerShutdown,
    MaxAccountConnectionsExceeded,
    Revocation,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::Revocation => "Credentials Revoked",
        }
    }
}

#[derive(Debug, Default)]
struct Outbound {
    buf: BytesMut,
    /// Set once the connection is closing: nothing more is appended.
    closing: bool,
    reason: Option<CloseReason>,
    msgs: u64,
    bytes: u64,
}

/// Metadata shown by /connz, written on CONNECT.
#[derive(Debug, Clone, Default)]
pub struct ConnMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: Option<String>,
    pub rtt: Option<Duration>,
}

/// The part of a client that other tasks touch: its outbound buffer and its lifecycle.
#[derive(Debug)]
pub struct ClientShared {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    out: Mutex<Outbound>,
    wake: Notify,
    drained: Notify,
    /// Cancels the reader and writer at once.
    pub kill: CancellationToken,
    pub meta: Mutex<ConnMeta>,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub num_subs: AtomicU64,
    pub last_activity: Mutex<SystemTime>,
    /// Whether this client announced header support; others get messages without headers,
    /// as nats-server strips them.
    headers: AtomicBool,
    max_pending: usize,
    stall_at: usize,
    /// Set for the server's internal subscribers (JetStream): deliveries go to this sink
    /// instead of an outbound buffer; there is no socket and no writer.
    pub(crate) internal: Option<crate::jetstream::InternalSink>,
    /// The permissions the client authenticated with, for checks made by other clients'
    /// readers at delivery time (the deny filter of wide subscriptions, reply permissions).
    perms: OnceLock<Arc<Permissions>>,
    /// `allow_responses`: reply subjects this client may publish to, with the number of
    /// replies left and the deadline (filled when a request is delivered to it).
    replies: Mutex<FxHashMap<Bytes, (usize, Instant)>>,
    /// The account this client is bound to (weak: accounts hold subscriptions, which hold
    /// clients).
    account: Mutex<Weak<Account>>,
    /// Stream-import shadows of this client's subscriptions, by subscription address, so any
    /// reader that removes a subscription (auto-unsubscribe) removes its shadows too.
    shadows: Mutex<FxHashMap<usize, Vec<Arc<Shadow>>>>,
    /// JWT users: the user key, issuer and issue time, re-checked on account updates.
    pub(crate) jwt_user: Mutex<Option<chorus_auth::JwtUser>>,
}

impl ClientShared {
    /// An internal client: the owner of internal subscriptions (see `jetstream`).
    pub(crate) fn new_internal(sink: crate::jetstream::InternalSink) -> ClientShared {
        ClientShared {
            cid: 0,
            addr: ([0, 0, 0, 0], 0).into(),
            start: SystemTime::now(),
            out: Mutex::new(Outbound::default()),
            wake: Notify::new(),
            drained: Notify::new(),
            kill: CancellationToken::new(),
            meta: Mutex::new(ConnMeta::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
            last_activity: Mutex::new(SystemTime::now()),
            headers: AtomicBool::new(true),
            max_pending: usize::MAX,
            stall_at: usize::MAX,
            internal: Some(sink),
            perms: OnceLock::new(),
            replies: Mutex::new(FxHashMap::default()),
            account: Mutex::new(Weak::new()),
            shadows: Mutex::new(FxHashMap::default()),
            jwt_user: Mutex::new(None),
        }
    }

    /// Queues a message from the server itself (JetStream replies), outside any read batch.
    /// Headers are dropped for clients without header support, as in delivery. Returns `None`
    /// if the connection is closing, else whether the writer needs a wake-up
    /// ([`ClientShared::wake_writer`]) and whether the client is now past `max_pending`.
    pub(crate) fn enqueue_msg(
        &self,
        sid: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
    ) -> Option<(bool, bool)> {
        let hdr = hdr.filter(|_| self.headers.load(Ordering::Relaxed));
        let size = payload.len() + hdr.map_or(0, <[u8]>::len);
        let (was_empty, pending) = self.append(size, |out| match hdr {
            Some(h) => encode::hmsg(out, subject, sid, reply, h, payload),
            None => encode::msg(out, subject, sid, reply, payload),
        })?;
        Some((was_empty, pending > self.max_pending))
    }

    pub(crate) fn wake_writer(&self) {
        self.wake.notify_one();
    }

    /// Appends to the outbound buffer under the lock. Returns `None` if the connection is
    /// closing, else whether the buffer was empty before (the writer then needs a wake-up)
    /// and the new pending size.
    /// `size` is the message's payload plus headers, what nats-server counts as bytes out.
    fn append(&self, size: usize, f: impl FnOnce(&mut BytesMut)) -> Option<(bool, usize)> {
        let mut o = self.out.lock().unwrap();
        if o.closing {
            return None;
        }
        let was_empty = o.buf.is_empty();
        f(&mut o.buf);
        o.msgs += 1;
        o.bytes += size as u64;
        Some((was_empty, o.buf.len()))
    }

    fn append_proto(&self, bytes: &[u8]) -> Option<bool> {
        let mut o = self.out.lock().unwrap();
        if o.closing {
            return None;
        }
        let was_empty = o.buf.is_empty();
        o.buf.extend_from_slice(bytes);
        Some(was_empty)
    }

    pub fn out_counts(&self) -> (u64, u64, usize) {
        let o = self.out.lock().unwrap();
        (o.msgs, o.bytes, o.buf.len())
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.out.lock().unwrap().reason
    }

    /// Starts closing the connection. With `flush`, what is already queued (say an `-ERR`)
    /// is written first; without it the connection is dropped now.
    pub fn close(&self, reason: CloseReason, flush: bool) {
        {
            let mut o = self.out.lock().unwrap();
            if o.closing {
                return;
            }
            o.closing = true;
            o.reason = Some(reason);
            if !flush {
                o.buf = BytesMut::new();
            }
        }
        if flush {
            self.wake.notify_one();
        } else {
            self.kill.cancel();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.out.lock().unwrap().closing
    }

    /// The account the client is bound to, while it exists.
    pub fn account(&self) -> Option<Arc<Account>> {
        self.account.lock().unwrap().upgrade()
    }

    /// Sends `-ERR 'text'` and closes after flushing it (used from outside the reader:
    /// account updates, expiry).
    pub fn err_and_close(&self, text: &str, reason: CloseReason) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        encode::err(&mut b, text);
        self.send_now(&b);
        self.close(reason, true);
    }

    /// Queues a protocol line and wakes the writer at once (used outside a read batch:
    /// lame-duck INFO, shutdown notices).
    pub fn send_now(&self, bytes: &[u8]) {
        if self.append_proto(bytes).is_some() {
            self.wake.notify_one();
        }
    }
}

/// A subscription, shared between its owner's map, the account sublist and match results.
#[derive(Debug)]
pub struct Subscription {
    pub client: Arc<ClientShared>,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    pub sid: Bytes,
    /// Auto-unsubscribe limit; 0 = none.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
    /// Set when removed from the sublist (e.g. by reaching `max`).
    pub removed: AtomicBool,
}

/// Handle stored in the sublist: identity is the allocation, not the contents.
#[derive(Debug, Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The reader side of a connection: owns everything only this client's ops change.
struct Client {
    srv: Arc<ServerInner>,
    shared: Arc<ClientShared>,
    acc: Arc<Account>,
    /// Subject permissions of the authenticated user (`None` = everything allowed).
    perms: Option<Arc<Permissions>>,
    /// Publish decisions per subject, so a permitted publisher pays one hash lookup.
    pub_allowed: FxHashMap<Bytes, bool>,
    opts: ConnectOpts,
    connected: bool,
    auth_required: bool,
    decoder: Decoder,
    subs: FxHashMap<Bytes, Arc<Subscription>>,
    cache: FxHashMap<Bytes, Arc<SublistResult<SubRef>>>,
    cache_gen: u64,
    dirty: Vec<Arc<ClientShared>>,
    stall: Option<Arc<ClientShared>>,
    pings_out: u32,
    first_pong_sent: bool,
    last_in: Instant,
    rng: u64,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    /// Set when a read batch carried messages or subscription changes (nats-server's
    /// `last activity`).
    active: bool,
    max_subs: usize,
    max_pending: usize,
    ctx: ConnCtx,
    /// The account whose connection count includes this client.
    counted: Option<Arc<Account>>,
    /// When the user's credentials (JWT) expire, and what the client is told then.
    expires: Option<tokio::time::Instant>,
    expiry_text: &'static str,
}

/// The listener a connection came in on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnKind {
    #[default]
    Tcp,
    Websocket,
}

/// What the listener learned before the client protocol started (see `tls` and `websocket`).
#[derive(Debug, Default)]
pub(crate) struct ConnCtx {
    pub kind: ConnKind,
    /// TLS was negotiated (client port, or wss).
    pub tls: bool,
    /// The client port's TLS handshake came before INFO (`handshake_first`).
    pub tls_first: bool,
    /// A client id given by the listener (the TLS upgrade sends INFO before the handshake).
    pub cid: Option<u64>,
    /// The listener already sent INFO.
    pub info_sent: bool,
    /// WebSocket: `X-Forwarded-For`, shown in the log prefix as nats-server does.
    pub forwarded_ip: Option<IpAddr>,
    /// WebSocket: credentials from cookies, for what CONNECT lacks.
    pub cookies: crate::websocket::Cookies,
    /// `verify_and_map`: the verified client certificate's identities.
    pub cert: Option<crate::tls::CertIdentity>,
    /// Receives the shared half once it exists (the WebSocket pumps read the close reason).
    pub shared: Option<Arc<OnceLock<Arc<ClientShared>>>>,
}

/// Serves one accepted connection until it closes.
pub(crate) async fn run<S>(srv: Arc<ServerInner>, stream: S, addr: SocketAddr, ctx: ConnCtx)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let opts = srv.opts();
    let cid = ctx.cid.unwrap_or_else(|| srv.alloc_cid());
    let max_pending = opts.max_pending.max(1);
    let shared = Arc::new(ClientShared {
        cid,
        addr,
        start: SystemTime::now(),
        out: Mutex::new(Outbound::default()),
        wake: Notify::new(),
        drained: Notify::new(),
        kill: srv.shutdown.child_token(),
        meta: Mutex::new(ConnMeta::default()),
        in_msgs: AtomicU64::new(0),
        in_bytes: AtomicU64::new(0),
        num_subs: AtomicU64::new(0),
        last_activity: Mutex::new(SystemTime::now()),
        max_pending,
        stall_at: max_pending / 4 * 3,
        headers: AtomicBool::new(false),
        internal: None,
        perms: OnceLock::new(),
        replies: Mutex::new(FxHashMap::default()),
        account: Mutex::new(Arc::downgrade(&srv.gacc)),
        shadows: Mutex::new(FxHashMap::default()),
        jwt_user: Mutex::new(None),
    });
    if let Some(slot) = &ctx.shared {
        let _ = slot.set(shared.clone());
    }
    let (rd, wr) = tokio::io::split(stream);
    let writer = tokio::spawn(write_loop(shared.clone(), wr, opts.write_deadline, srv.clone()));

    let auth = srv.auth();
    let ws_override = ctx.kind == ConnKind::Websocket
        && opts.websocket.as_ref().is_some_and(crate::websocket::auth_override);
    let info = (!ctx.info_sent).then(|| srv.client_info_json(cid, addr, &auth, &ctx));
    let mut client = Client {
        acc: srv.gacc.clone(),
        perms: None,
        pub_allowed: FxHashMap::default(),
        shared: shared.clone(),
        opts: ConnectOpts::default(),
        connected: false,
        auth_required: auth.required() || ws_override,
        decoder: Decoder::new(opts.max_control_line, opts.max_payload),
        subs: FxHashMap::default(),
        cache: FxHashMap::default(),
        cache_gen: 0,
        dirty: Vec::new(),
        stall: None,
        pings_out: 0,
        first_pong_sent: false,
        last_in: Instant::now(),
        rng: cid.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        in_msgs: 0,
        in_bytes: 0,
        out_msgs: 0,
        out_bytes: 0,
        active: false,
        max_subs: opts.max_subscriptions,
        max_pending,
        srv: srv.clone(),
        ctx,
        counted: None,
        expires: None,
        expiry_text: "User Authentication Expired",
    };

    let registered = srv.register_client(shared.clone());
    // INFO goes first, even to a client we are about to refuse, as nats-server does.
    if let Some(info) = info {
        let mut line = BytesMut::new();
        encode::info(&mut line, &info);
        shared.send_now(&line);
    }
    if !registered {
        tracing::warn!("{} - maximum connections exceeded", client.prefix());
        client.send_err("maximum connections exceeded");
        shared.close(CloseReason::MaxConnectionsExceeded, true);
    } else {
        tracing::debug!("{} - Client connection created", client.prefix());
        client.read_loop(rd, &opts).await;
    }
    client.cleanup();
    let _ = writer.await;
    if registered {
        srv.unregister_client(&shared);
    }
}

async fn write_loop<W: AsyncWrite + Send>(
    c: Arc<ClientShared>,
    wr: W,
    deadline: Duration,
    srv: Arc<ServerInner>,
) {
    tokio::pin!(wr);
    let mut spare = BytesMut::new();
    loop {
        let closing = {
            let mut o = c.out.lock().unwrap();
            std::mem::swap(&mut o.buf, &mut spare);
            o.closing
        };
        if spare.is_empty() {
            if closing {
                break;
            }
            tokio::select! {
                _ = c.wake.notified() => continue,
                _ = c.kill.cancelled() => break,
            }
        }
        c.drained.notify_waiters();
        let n = spare.len();
        let res = tokio::select! {
            r = tokio::time::timeout(deadline, wr.write_all(&spare)) => r,
            _ = c.kill.cancelled() => break,
        };
        match res {
            Ok(Ok(())) => {
                srv.stats.out_bytes_flushed.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(Err(_)) => {
                c.close(CloseReason::WriteError, false);
                break;
            }
            Err(_) => {
                srv.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "{}:{} - cid:{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                    c.addr.ip(),
                    c.addr.port(),
                    c.cid,
                    deadline
                );
                c.close(CloseReason::SlowConsumerWriteDeadline, false);
                break;
            }
        }
        // Keep the spare buffer for reuse, unless a burst left it huge.
        if spare.capacity() > 4 * READ_MAX {
            spare = BytesMut::new();
        } else {
            spare.clear();
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    c.kill.cancel();
}

impl Client {
    fn prefix(&self) -> String {
        let (a, c) = (self.shared.addr, &self.ctx);
        let label = if c.kind == ConnKind::Websocket { "wid" } else { "cid" };
        match c.forwarded_ip {
            Some(ip) => format!("{ip}/{}:{} - {label}:{}", a.ip(), a.port(), self.shared.cid),
            None => format!("{}:{} - {label}:{}", a.ip(), a.port(), self.shared.cid),
        }
    }

    async fn read_loop<R: AsyncRead + Send>(&mut self, rd: R, opts: &chorus_conf::Options) {
        tokio::pin!(rd);
        let mut buf = BytesMut::with_capacity(READ_MIN);
        let mut target = READ_MIN;
        let ping_interval = opts.ping_interval.max(Duration::from_millis(10));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let auth_deadline = tokio::time::Instant::now() + opts.authorization.timeout;
        let kill = self.shared.kill.clone();
        loop {
            if buf.capacity() - buf.len() < target / 2 {
                buf.reserve(target);
            }
            let awaiting_auth = self.auth_required && !self.connected;
            let n = tokio::select! {
                biased;
                _ = kill.cancelled() => return,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => {
                        self.shared.close(CloseReason::ClientClosed, false);
                        return;
                    }
                    Ok(n) => n,
                    Err(_) => {
                        self.shared.close(CloseReason::ReadError, false);
                        return;
                    }
                },
                _ = ping.tick() => {
                    self.ping_timer(ping_interval, opts.ping_max);
                    self.flush_dirty();
                    continue;
                }
                _ = sleep_until_opt(self.expires) => {
                    tracing::debug!("{} - {}", self.prefix(), self.expiry_text);
                    self.send_err(self.expiry_text);
                    self.flush_dirty();
                    self.shared.close(CloseReason::AuthenticationExpired, true);
                    return;
                }
                _ = tokio::time::sleep_until(auth_deadline), if awaiting_auth => {
                    tracing::debug!("{} - Authentication Timeout", self.prefix());
                    self.send_err("Authentication Timeout");
                    self.flush_dirty();
                    self.shared.close(CloseReason::AuthenticationTimeout, true);
                    return;
                }
            };
            if n >= target && target < READ_MAX {
                target *= 2;
            } else if n < target / 4 && target > READ_MIN {
                target /= 2;
            }
            self.last_in = Instant::now();
            let res = self.process_buffer(&mut buf);
            self.flush_counters();
            self.flush_dirty();
            if let Err(reason) = res {
                self.shared.close(reason, true);
                return;
            }
            if buf.is_empty() && buf.capacity() > 4 * READ_MAX {
                buf = BytesMut::with_capacity(READ_MIN);
            }
            if let Some(c) = self.stall.take() {
                let drained = c.drained.notified();
                if c.out_counts().2 > c.stall_at && !c.is_closing() {
                    let _ = tokio::time::timeout(STALL_MAX, drained).await;
                }
            }
        }
    }

    fn process_buffer(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        loop {
            let op = match self.decoder.decode(buf) {
                Ok(Some(op)) => op,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.protocol_error(e)),
            };
            if tracing::enabled!(tracing::Level::TRACE) {
                self.trace_in(&op);
            }
            if self.auth_required && !self.connected && !matches!(op, ClientOp::Connect(_)) {
                self.auth_violation();
                return Err(CloseReason::AuthenticationViolation);
            }
            match op {
                ClientOp::Pub { subject, reply, payload } => {
                    self.process_pub(subject, reply, None, payload)
                }
                ClientOp::HPub { subject, reply, headers, payload } => {
                    // nats-server closes (without -ERR) a client that sends HPUB without
                    // having announced header support in CONNECT.
                    if !self.opts.headers {
                        tracing::error!("{} - message headers not supported", self.prefix());
                        return Err(CloseReason::ProtocolViolation);
                    }
                    self.process_pub(subject, reply, Some(headers), payload)
                }
                ClientOp::Sub { subject, queue, sid } => self.process_sub(subject, queue, sid),
                ClientOp::Unsub { sid, max } => self.process_unsub(sid, max),
                ClientOp::Ping => self.process_ping(),
                ClientOp::Pong => {
                    self.pings_out = 0;
                }
                ClientOp::Connect(json) => self.process_connect(&json)?,
                ClientOp::Info(_) | ClientOp::Ok => {}
                ClientOp::Err(text) => {
                    tracing::error!(
                        "{} - Client Error {}",
                        self.prefix(),
                        String::from_utf8_lossy(&text)
                    );
                    return Err(CloseReason::ParseError);
                }
            }
        }
    }

    /// `-V`: inbound operations as nats-server traces them (`<<- [PUB foo 5]`), with
    /// passwords and tokens in CONNECT masked.
    fn trace_in(&self, op: &ClientOp) {
        let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let line = match op {
            ClientOp::Connect(j) => format!("CONNECT {}", mask_secrets(&s(j))),
            ClientOp::Pub { subject, reply, payload } => match reply {
                Some(r) => format!("PUB {} {} {}", s(subject), s(r), payload.len()),
                None => format!("PUB {} {}", s(subject), payload.len()),
            },
            ClientOp::HPub { subject, reply, headers, payload } => {
                let total = headers.len() + payload.len();
                match reply {
                    Some(r) => format!("HPUB {} {} {} {total}", s(subject), s(r), headers.len()),
                    None => format!("HPUB {} {} {total}", s(subject), headers.len()),
                }
            }
            ClientOp::Sub { subject, queue: Some(q), sid } => {
                format!("SUB {} {} {}", s(subject), s(q), s(sid))
            }
            ClientOp::Sub { subject, queue: None, sid } => format!("SUB {} {}", s(subject), s(sid)),
            ClientOp::Unsub { sid, max: Some(m) } => format!("UNSUB {} {m}", s(sid)),
            ClientOp::Unsub { sid, max: None } => format!("UNSUB {}", s(sid)),
            ClientOp::Ping => "PING".into(),
            ClientOp::Pong => "PONG".into(),
            ClientOp::Info(j) => format!("INFO {}", s(j)),
            ClientOp::Ok => "+OK".into(),
            ClientOp::Err(t) => format!("-ERR {}", s(t)),
        };
        tracing::trace!("{} - <<- [{line}]", self.prefix());
        if let ClientOp::Pub { payload, .. } | ClientOp::HPub { payload, .. } = op {
            tracing::trace!("{} - <<- MSG_PAYLOAD: [{:?}]", self.prefix(), s(payload));
        }
    }

    fn protocol_error(&mut self, e: ProtoError) -> CloseReason {
        if let Some(text) = e.client_message() {
            self.send_err(text);
        }
        match e {
            ProtoError::MaxPayload { size, max } => {
                tracing::error!("{} - maximum payload exceeded: {size} vs {max}", self.prefix());
                CloseReason::MaxPayloadExceeded
            }
            ProtoError::MaxControlLine => {
                tracing::error!("{} - maximum control line exceeded", self.prefix());
                CloseReason::MaxControlLineExceeded
            }
            ProtoError::UnknownOp => {
                tracing::error!("{} - Client parser ERROR", self.prefix());
                CloseReason::ParseError
            }
            ProtoError::BadArgs { .. } => {
                tracing::error!("{} - {e}", self.prefix());
                CloseReason::ProtocolViolation
            }
        }
    }

    fn auth_violation(&mut self) {
        tracing::error!("{} - authentication error", self.prefix());
        self.send_err("Authorization Violation");
    }

    fn process_connect(&mut self, json: &[u8]) -> Result<(), CloseReason> {
        let mut opts: ConnectOpts = match serde_json::from_slice(json) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("{} - CONNECT parse error: {e}", self.prefix());
                return Err(CloseReason::ProtocolViolation);
            }
        };
        if self.ctx.kind == ConnKind::Websocket {
            self.ctx.cookies.apply(&mut opts);
        }
        if self.auth_required {
            let nonce = self.srv.nonce_for(self.shared.cid);
            match authenticate(&self.srv, &self.ctx, &mut opts, &nonce) {
                Ok(id) => self.bind_identity(id)?,
                Err(AuthError::Violation) => {
                    self.auth_violation();
                    return Err(CloseReason::AuthenticationViolation);
                }
            }
        }
        if opts.protocol < 0 || opts.protocol > crate::info::PROTO {
            self.send_err("invalid client protocol");
            return Err(CloseReason::BadClientProtocolVersion);
        }
        if opts.no_responders && !opts.headers {
            self.send_err("no responders requires headers support");
            return Err(CloseReason::NoRespondersRequiresHeaders);
        }
        {
            let mut m = self.shared.meta.lock().unwrap();
            // nats-server's first RTT estimate: from accept to CONNECT.
            m.rtt = Some(self.shared.start.elapsed().unwrap_or_default());
            m.name = opts.name.clone();
            m.lang = opts.lang.clone();
            m.version = opts.version.clone();
        }
        self.shared.headers.store(opts.headers, Ordering::Relaxed);
        self.opts = opts;
        self.connected = true;
        self.active = true;
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
        Ok(())
    }

    /// Binds the authenticated user's account and permissions to this connection.
    fn bind_identity(&mut self, id: crate::auth::Identity) -> Result<(), CloseReason> {
        let Some(acc) = self.srv.account(id.account.as_deref()) else {
            tracing::error!(
                "{} - account {:?} of user {:?} does not exist",
                self.prefix(),
                id.account,
                id.name
            );
            self.send_err("Failed Account Registration");
            return Err(CloseReason::AuthenticationViolation);
        };
        if let Some(prev) = self.counted.take() {
            prev.remove_conn();
        }
        if !acc.add_conn() {
            tracing::error!("{} - maximum account active connections exceeded", self.prefix());
            self.send_err("maximum account active connections exceeded");
            return Err(CloseReason::MaxAccountConnectionsExceeded);
        }
        self.counted = Some(acc.clone());
        *self.shared.account.lock().unwrap() = Arc::downgrade(&acc);
        let limits = acc.limits();
        if let Some(m) = pick_min(limits.max_subscriptions, id.max_subs) {
            self.max_subs = if self.max_subs == 0 { m } else { self.max_subs.min(m) };
        }
        if let Some(m) = pick_min(limits.max_payload, id.max_payload) {
            let mc = self.srv.opts().max_control_line;
            self.decoder.set_limits(mc, self.decoder.max_payload().min(m));
        }
        // The earlier of the user's and the account's expiry, with nats-server's wording.
        let user_first = match (id.expires, id.account_expires) {
            (Some(u), Some(a)) => u <= a,
            (u, _) => u.is_some(),
        };
        if let Some(exp) = if user_first { id.expires } else { id.account_expires } {
            let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let left = Duration::from_secs(u64::try_from(exp).unwrap_or(0)).saturating_sub(now);
            self.expires = Some(tokio::time::Instant::now() + left);
            self.expiry_text = if user_first {
                "User Authentication Expired"
            } else {
                "Account Authentication Expired"
            };
        }
        *self.shared.jwt_user.lock().unwrap() = id.jwt_user.clone();
        let old = std::mem::replace(&mut self.acc, acc.clone());
        if !Arc::ptr_eq(&acc, &old) && !self.subs.is_empty() {
            // Subscriptions made before CONNECT live in the old account: move them.
            let subs: Vec<_> = self.subs.values().cloned().collect();
            for sub in subs {
                remove_sub(&old, &sub);
                sub.removed.store(false, Ordering::Relaxed);
                let _ = acc.sublist.insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()));
                if acc.has_stream_imports() {
                    self.add_shadows(&sub);
                }
            }
        }
        self.cache.clear();
        self.pub_allowed.clear();
        if let Some(p) = &id.permissions {
            let _ = self.shared.perms.set(p.clone());
        }
        self.perms = id.permissions;
        self.shared.meta.lock().unwrap().user = id.name;
        Ok(())
    }

    /// Publish permission, with reply permissions (`allow_responses`) for subjects this
    /// client received as a request's reply subject.
    fn can_publish(&mut self, subject: &Bytes) -> bool {
        let Some(p) = &self.perms else { return true };
        if let Some(&ok) = self.pub_allowed.get(subject) {
            if ok {
                return true;
            }
        } else {
            let ok = p.can_publish(subject);
            if self.pub_allowed.len() >= CACHE_MAX {
                self.pub_allowed.clear();
            }
            self.pub_allowed.insert(Bytes::copy_from_slice(subject), ok);
            if ok {
                return true;
            }
        }
        if p.responses().is_none() || p.publish_denied(subject) {
            return false;
        }
        let mut replies = self.shared.replies.lock().unwrap();
        let now = Instant::now();
        replies.retain(|_, (_, deadline)| *deadline > now);
        match replies.get_mut(&subject[..]) {
            Some((left, _)) => {
                *left -= 1;
                if *left == 0 {
                    replies.remove(&subject[..]);
                }
                true
            }
            None => false,
        }
    }

    fn process_ping(&mut self) {
        self.send_proto(encode::PONG);
        // The first PING after CONNECT gets the async INFO with connect_info, as nats-server
        // sends to clients that speak protocol 1.
        if self.connected && self.opts.protocol >= 1 && !self.first_pong_sent() {
            let info =
                self.srv.connect_info_json(self.shared.cid, self.shared.addr, &self.acc, &self.ctx);
            let mut line = BytesMut::new();
            encode::info(&mut line, &info);
            self.send_proto(&line);
        }
    }

    fn first_pong_sent(&mut self) -> bool {
        std::mem::replace(&mut self.first_pong_sent, true)
    }

    fn ping_timer(&mut self, interval: Duration, ping_max: u32) {
        if self.last_in.elapsed() < interval && self.pings_out == 0 {
            return;
        }
        if self.pings_out + 1 > ping_max {
            tracing::debug!("{} - Stale Client Connection - Closing", self.prefix());
            self.send_err("Stale Connection");
            self.flush_dirty();
            self.shared.close(CloseReason::StaleConnection, true);
            return;
        }
        self.pings_out += 1;
        self.send_proto(encode::PING);
    }

    fn send_proto(&mut self, bytes: &[u8]) {
        if let Some(true) = self.shared.append_proto(bytes) {
            self.dirty.push(self.shared.clone());
        }
    }

    fn send_err(&mut self, text: &str) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        encode::err(&mut b, text);
        self.send_proto(&b);
    }

    fn flush_dirty(&mut self) {
        for c in self.dirty.drain(..) {
            c.wake.notify_one();
        }
    }

    /// Publishes this batch's counters to the shared figures: atomics once per read batch,
    /// not once per message.
    fn flush_counters(&mut self) {
        if self.in_msgs > 0 {
            self.shared.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            self.shared.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.srv.stats.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            self.srv.stats.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.in_msgs = 0;
            self.in_bytes = 0;
        }
        if self.out_msgs > 0 {
            self.srv.stats.out_msgs.fetch_add(self.out_msgs, Ordering::Relaxed);
            self.srv.stats.out_bytes.fetch_add(self.out_bytes, Ordering::Relaxed);
            self.out_msgs = 0;
            self.out_bytes = 0;
        }
        if std::mem::take(&mut self.active) {
            *self.shared.last_activity.lock().unwrap() = SystemTime::now();
        }
    }

    fn process_pub(
        &mut self,
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) {
        self.in_msgs += 1;
        self.in_bytes += (payload.len() + headers.as_ref().map_or(0, |h| h.len())) as u64;
        self.active = true;
        if self.opts.pedantic && !subject::is_valid_literal_subject(&subject) {
            self.send_err("Invalid Publish Subject");
        }
        if !self.can_publish(&subject) {
            let subj = String::from_utf8_lossy(&subject).into_owned();
            tracing::error!("{} - Publish Violation - Subject {subj:?}", self.prefix());
            self.send_err(&format!("Permissions Violation for Publish to {subj:?}"));
            return;
        }
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
        let flags = self.acc.flags();
        let delivered = if flags == 0 {
            self.route(&subject, reply.as_deref(), headers.as_deref(), &payload, None)
        } else {
            self.route_account(flags, &subject, reply.as_deref(), headers.as_deref(), &payload)
        };
        if !delivered
            && self.opts.no_responders
            && let Some(reply) = reply
        {
            self.no_responders(&subject, &reply);
        }
    }

    /// Delivers a message to every matching subscription of the account (this client's, or
    /// `other`); true if anyone got it.
    fn route(
        &mut self,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
        other: Option<&Arc<Account>>,
    ) -> bool {
        let r = match other {
            None => self.lookup(subject),
            Some(a) => a.sublist.match_subject(subject),
        };
        let mut delivered = false;
        for s in &r.psubs {
            if !self.opts.echo && Arc::ptr_eq(&s.0.client, &self.shared) {
                continue;
            }
            delivered |= self.deliver(&s.0, subject, reply, hdr, payload, other);
        }
        for group in &r.qsubs {
            if group.is_empty() {
                continue;
            }
            // Random start, then the next member that takes it (skips closing members).
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let start = (self.rng % group.len() as u64) as usize;
            for i in 0..group.len() {
                let s = &group[(start + i) % group.len()].0;
                if !self.opts.echo && Arc::ptr_eq(&s.client, &self.shared) {
                    continue;
                }
                if self.deliver(s, subject, reply, hdr, payload, other) {
                    delivered = true;
                    break;
                }
            }
        }
        delivered
    }

    /// Routing for an account with mappings, imports or exports in use: the mapped subject,
    /// then [`Client::route_in`] from this client's account.
    fn route_account(
        &mut self,
        flags: u8,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        let mapped =
            if flags & account::F_MAPPINGS != 0 { self.acc.map_subject(subject) } else { None };
        let subject = mapped.as_ref().unwrap_or(subject);
        let acc = self.acc.clone();
        let mut chain = Vec::new();
        self.route_in(&acc, true, subject, reply, hdr, payload, false, &mut chain)
    }

    /// Delivers a message published in `acc`: its subscribers, the stream-import shadows of
    /// other accounts' subscribers (unless the message came through a service import, as in
    /// nats-server), its service imports, and its response subjects.
    /// `chain` holds the service exports already crossed, so import cycles stop.
    #[allow(clippy::too_many_arguments)]
    fn route_in(
        &mut self,
        acc: &Arc<Account>,
        own: bool,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
        from_service: bool,
        chain: &mut Vec<usize>,
    ) -> bool {
        let flags = acc.flags();
        let mut delivered = if flags & account::F_SHADOWS != 0 && !from_service {
            self.route_with_shadows(acc, own, subject, reply, hdr, payload)
        } else {
            self.route(subject, reply, hdr, payload, if own { None } else { Some(acc) })
        };
        if flags & account::F_SYSTEM != 0
            && subject.starts_with(b"$SYS.")
            && let Some(resp) = account::system::handle(&self.srv, subject, payload)
        {
            delivered = true;
            if let Some(r) = reply {
                let r = Bytes::copy_from_slice(r);
                self.route_in(acc, false, &r, None, None, &resp, true, chain);
            }
        }
        if flags & account::F_SERVICE_IMPORTS != 0 {
            let routing = acc.routing();
            for si in &routing.service_imports {
                if subject::subject_is_subset_of(subject, si.from.as_bytes()) {
                    delivered |= self.service_import(acc, si, subject, reply, hdr, payload, chain);
                }
            }
        }
        if flags & account::F_RESPONSES != 0
            && let Some(resp) = acc.response_for(subject)
        {
            if chain.len() >= MAX_IMPORT_HOPS {
                return delivered;
            }
            chain.push(0);
            let to = resp.to.clone();
            let d = self.route_in(&resp.dest, false, &to, None, hdr, payload, true, chain);
            chain.pop();
            let eof = payload.is_empty() && hdr.is_none();
            if !d || eof || resp.kind == chorus_conf::ResponseType::Singleton {
                acc.remove_response(subject);
            }
            delivered |= d;
        }
        delivered
    }

    /// [`Client::route`] for an account whose subjects other accounts import: its own
    /// subscribers and the stream-import shadows of other accounts' subscribers, each of those
    /// getting the subject mapped to its own account. A queue group is one group across both,
    /// as nats-server keeps shadows in the exporter's list: one member of the union gets it.
    fn route_with_shadows(
        &mut self,
        acc: &Arc<Account>,
        own: bool,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        let other = if own { None } else { Some(acc) };
        let r = if own { self.lookup(subject) } else { acc.sublist.match_subject(subject) };
        let rs = acc.shadows.match_subject(subject);
        let mut delivered = false;
        for s in &r.psubs {
            if !self.opts.echo && Arc::ptr_eq(&s.0.client, &self.shared) {
                continue;
            }
            delivered |= self.deliver(&s.0, subject, reply, hdr, payload, other);
        }
        for sh in &rs.psubs {
            delivered |= self.deliver_shadow(&sh.0, subject, reply, hdr, payload);
        }
        let mut merged = vec![false; rs.qsubs.len()];
        for (i, group) in r.qsubs.iter().enumerate() {
            let name = r.queue_name(i);
            let shadows: &[ShadowRef] = match rs.queue_groups().position(|(n, _)| n == name) {
                Some(j) => {
                    merged[j] = true;
                    &rs.qsubs[j]
                }
                None => &[],
            };
            let total = group.len() + shadows.len();
            if total == 0 {
                continue;
            }
            let start = (self.next_rand() % total as u64) as usize;
            for k in 0..total {
                let idx = (start + k) % total;
                let got = if idx < group.len() {
                    let s = &group[idx].0;
                    if !self.opts.echo && Arc::ptr_eq(&s.client, &self.shared) {
                        continue;
                    }
                    self.deliver(s, subject, reply, hdr, payload, other)
                } else {
                    self.deliver_shadow(&shadows[idx - group.len()].0, subject, reply, hdr, payload)
                };
                if got {
                    delivered = true;
                    break;
                }
            }
        }
        for (j, group) in rs.qsubs.iter().enumerate() {
            if merged[j] || group.is_empty() {
                continue;
            }
            let start = (self.next_rand() % group.len() as u64) as usize;
            for k in 0..group.len() {
                let sh = &group[(start + k) % group.len()].0;
                if self.deliver_shadow(sh, subject, reply, hdr, payload) {
                    delivered = true;
                    break;
                }
            }
        }
        delivered
    }

    /// Delivers to the subscription behind a stream-import shadow, on its account's subject.
    fn deliver_shadow(
        &mut self,
        sh: &Shadow,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        let dsubj = sh.import.deliver_subject(subject);
        let home = sh.root.client.account();
        self.deliver(
            &sh.root,
            dsubj.as_ref().unwrap_or(subject),
            reply,
            hdr,
            payload,
            home.as_ref(),
        )
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A request through a service import (nats-server's processServiceImport): re-published
    /// in the exporting account on the exported subject, with a `_R_` reply that maps back to
    /// the requester, and the requester's account in a `Nats-Request-Info` header.
    #[allow(clippy::too_many_arguments)]
    fn service_import(
        &mut self,
        acc: &Arc<Account>,
        si: &Arc<account::ServiceImport>,
        subject: &Bytes,
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
        chain: &mut Vec<usize>,
    ) -> bool {
        let key = Arc::as_ptr(&si.export) as usize;
        if chain.contains(&key) || chain.len() >= MAX_IMPORT_HOPS {
            return false;
        }
        let exporter = si.acc.clone();
        let mut to = si.target(subject);
        if exporter.flags() & account::F_MAPPINGS != 0
            && let Some(m) = exporter.map_subject(&to)
        {
            to = m;
        }
        let nrr = reply.map(|r| exporter.new_response(acc.clone(), r, &si.export));
        let hdr = self.request_info_header(hdr, &acc.name, si.share);
        chain.push(key);
        let d =
            self.route_in(&exporter, false, &to, nrr.as_deref(), Some(&hdr), payload, true, chain);
        chain.pop();
        if !d && let Some(n) = &nrr {
            exporter.remove_response(n);
        }
        d
    }

    fn lookup(&mut self, subject: &Bytes) -> Arc<SublistResult<SubRef>> {
        let generation = self.acc.sublist.generation();
        if generation != self.cache_gen {
            self.cache.clear();
            self.cache_gen = generation;
        } else if let Some(r) = self.cache.get(subject) {
            return r.clone();
        }
        let r = self.acc.sublist.match_subject(subject);
        if self.cache.len() >= CACHE_MAX {
            let victims: Vec<Bytes> = self.cache.keys().take(CACHE_PRUNE).cloned().collect();
            for k in victims {
                self.cache.remove(&k);
            }
        }
        // Copy the key out of the read buffer so the cache does not pin it.
        self.cache.insert(Bytes::copy_from_slice(subject), r.clone());
        r
    }

    fn deliver(
        &mut self,
        sub: &Arc<Subscription>,
        subject: &[u8],
        reply: Option<&[u8]>,
        hdr: Option<&[u8]>,
        payload: &[u8],
        other: Option<&Arc<Account>>,
    ) -> bool {
        if let Some(p) = sub.client.perms.get() {
            // A subscription wider than a denied subject: filter here (nats-server's
            // deliver-time deny check).
            if p.has_sub_deny() && p.deny_delivery(subject, sub.queue.as_deref()) {
                return false;
            }
            if let (Some(r), Some(rp)) = (reply, p.responses()) {
                let mut replies = sub.client.replies.lock().unwrap();
                if replies.len() < CACHE_MAX * 16 {
                    // `expires` may be "never" (Duration::MAX): saturate instead of overflowing.
                    let now = Instant::now();
                    let deadline = now
                        .checked_add(rp.expires)
                        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
                    replies.insert(Bytes::copy_from_slice(r), (rp.max, deadline));
                }
            }
        }
        let max = sub.max.load(Ordering::Relaxed);
        if max > 0 {
            let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
            if n > max {
                return false;
            }
            if n == max {
                match sub.client.account() {
                    Some(home) => remove_sub(&home, sub),
                    None => self.remove_from_sublist(sub),
                }
            }
        } else {
            sub.delivered.fetch_add(1, Ordering::Relaxed);
        }
        let c = &sub.client;
        if let Some(sink) = &c.internal {
            let account = other.unwrap_or(&self.acc);
            // The API audit advisory names the requester; built only when someone listens.
            let requester = (crate::jetstream::is_api_sid(&sub.sid)
                && account.sublist.has_interest(crate::jetstream::API_AUDIT_SUBJECT.as_bytes()))
            .then(|| self.request_info_json(&self.acc.name, true));
            return sink.deliver(account, &sub.sid, subject, reply, hdr, payload, requester);
        }
        let hdr = hdr.filter(|_| c.headers.load(Ordering::Relaxed));
        let size = payload.len() + hdr.map_or(0, <[u8]>::len);
        let appended = c.append(size, |out| match hdr {
            Some(h) => encode::hmsg(out, subject, &sub.sid, reply, h, payload),
            None => encode::msg(out, subject, &sub.sid, reply, payload),
        });
        let Some((was_empty, pending)) = appended else {
            return false;
        };
        self.out_msgs += 1;
        self.out_bytes += size as u64;
        if pending > self.max_pending.max(c.max_pending) {
            self.slow_consumer(c);
            return true;
        }
        if was_empty {
            self.dirty.push(c.clone());
        }
        if pending > c.stall_at {
            self.stall = Some(c.clone());
        }
        true
    }

    fn slow_consumer(&mut self, c: &Arc<ClientShared>) {
        if c.is_closing() {
            return;
        }
        self.srv.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "{}:{} - cid:{} - Slow Consumer Detected: MaxPending of {} Exceeded",
            c.addr.ip(),
            c.addr.port(),
            c.cid,
            c.max_pending
        );
        c.close(CloseReason::SlowConsumerPendingBytes, false);
    }

    fn no_responders(&mut self, subject: &[u8], reply: &[u8]) {
        if !subject::is_valid_literal_subject(reply) {
            return;
        }
        let r = self.acc.sublist.match_subject(reply);
        let Some(sub) = r.psubs.iter().find(|s| Arc::ptr_eq(&s.0.client, &self.shared)) else {
            return;
        };
        let h = headers::no_responders(subject);
        let sid = sub.0.sid.clone();
        if let Some((true, _)) =
            self.shared.append(h.len(), |out| encode::hmsg(out, reply, &sid, None, &h, b""))
        {
            self.dirty.push(self.shared.clone());
        }
    }

    fn process_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        self.active = true;
        if let Some(p) = &self.perms
            && !p.can_subscribe(&subject, queue.as_deref())
        {
            let subj = String::from_utf8_lossy(&subject).into_owned();
            let sid_s = String::from_utf8_lossy(&sid).into_owned();
            let (err, log) = match &queue {
                Some(q) => {
                    let q = String::from_utf8_lossy(q).into_owned();
                    (
                        format!(
                            "Permissions Violation for Subscription to {subj:?} using queue {q:?}"
                        ),
                        format!(
                            "Subscription Violation - Subject {subj:?}, Queue: {q:?}, SID {sid_s}"
                        ),
                    )
                }
                None => (
                    format!("Permissions Violation for Subscription to {subj:?}"),
                    format!("Subscription Violation - Subject {subj:?}, SID {sid_s}"),
                ),
            };
            tracing::error!("{} - {log}", self.prefix());
            self.send_err(&err);
            return;
        }
        if self.subs.contains_key(&sid) {
            // nats-server keeps the existing subscription for a reused sid.
            if self.opts.verbose {
                self.send_proto(encode::OK);
            }
            return;
        }
        if self.max_subs > 0 && self.subs.len() >= self.max_subs {
            self.prune_removed_subs();
            if self.subs.len() >= self.max_subs {
                tracing::error!("{} - maximum subscriptions exceeded", self.prefix());
                self.send_err("maximum subscriptions exceeded");
                return;
            }
        }
        let valid = subject::is_valid_subject(&subject)
            && queue.as_ref().is_none_or(|q| subject::is_valid_queue_name(q));
        if !valid {
            self.send_err("Invalid Subject");
            return;
        }
        // Copy out of the read buffer: a long-lived subscription must not pin it.
        let subject = Bytes::copy_from_slice(&subject);
        let queue = queue.map(|q| Bytes::copy_from_slice(&q));
        let sid = Bytes::copy_from_slice(&sid);
        let sub = Arc::new(Subscription {
            client: self.shared.clone(),
            subject,
            queue,
            sid: sid.clone(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        });
        if self.acc.sublist.insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone())).is_err()
        {
            self.send_err("Invalid Subject");
            return;
        }
        if self.acc.has_stream_imports() {
            self.add_shadows(&sub);
        }
        self.subs.insert(sid, sub);
        self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
    }

    fn process_unsub(&mut self, sid: Bytes, max: Option<u64>) {
        self.active = true;
        if let Some(sub) = self.subs.get(&sid).cloned() {
            let delivered = sub.delivered.load(Ordering::Relaxed);
            match max {
                Some(m) if m > 0 && m > delivered => sub.max.store(m, Ordering::Relaxed),
                _ => {
                    self.remove_from_sublist(&sub);
                    self.subs.remove(&sid);
                    self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
                }
            }
        }
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
    }

    fn remove_from_sublist(&self, sub: &Arc<Subscription>) {
        remove_sub(&self.acc, sub);
    }

    /// Shadows of a new subscription in the accounts this account imports streams from.
    fn add_shadows(&mut self, sub: &Arc<Subscription>) {
        add_shadows(&self.acc, sub);
    }

    /// Drops map entries of subscriptions that auto-unsubscribed.
    fn prune_removed_subs(&mut self) {
        self.subs.retain(|_, s| !s.removed.load(Ordering::Relaxed));
        self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
    }

    fn cleanup(&mut self) {
        let subs: Vec<_> = self
            .subs
            .drain()
            .map(|(_, s)| s)
            .filter(|s| !s.removed.swap(true, Ordering::AcqRel))
            .collect();
        self.acc.sublist.remove_batch(
            subs.iter().map(|s| (s.subject.clone(), s.queue.clone(), SubRef(s.clone()))),
        );
        let shadows = std::mem::take(&mut *self.shared.shadows.lock().unwrap());
        for sh in shadows.into_values().flatten() {
            sh.import.acc.remove_shadow(&sh);
        }
        if let Some(acc) = self.counted.take() {
            acc.remove_conn();
        }
        self.cache.clear();
        self.flush_counters();
        let reason = self.shared.close_reason().unwrap_or(CloseReason::ClientClosed);
        tracing::debug!("{} - Client connection closed: {}", self.prefix(), reason.as_str());
    }
}

/// The smaller of two optional limits.
fn pick_min(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// How many service-import hops one message may take (nats-server detects cycles by export;
/// this also bounds chains).
const MAX_IMPORT_HOPS: usize = 16;

/// Removes a subscription from its account's list, and its stream-import shadows from the
/// exporters' shadow lists. Any reader may call it (auto-unsubscribe by delivery count).
fn remove_sub(home: &Account, sub: &Arc<Subscription>) {
    if !sub.removed.swap(true, Ordering::AcqRel) {
        let _ = home.sublist.remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()));
    }
    remove_shadows(sub);
}

fn remove_shadows(sub: &Arc<Subscription>) {
    let key = Arc::as_ptr(sub) as usize;
    let shadows = {
        let mut m = sub.client.shadows.lock().unwrap();
        if m.is_empty() {
            return;
        }
        m.remove(&key)
    };
    for sh in shadows.into_iter().flatten() {
        sh.import.acc.remove_shadow(&sh);
    }
}

/// Shadows of a subscription of `acc` in the accounts `acc` imports streams from.
fn add_shadows(acc: &Account, sub: &Arc<Subscription>) {
    let Ok(subj) = std::str::from_utf8(&sub.subject) else { return };
    let targets = acc.shadow_targets(subj);
    if targets.is_empty() {
        return;
    }
    let mut made = Vec::with_capacity(targets.len());
    for (import, subject) in targets {
        let sh = Arc::new(Shadow { root: sub.clone(), import, subject: Bytes::from(subject) });
        if sh.import.acc.insert_shadow(&sh) {
            tracing::debug!(
                "cid:{} - Creating import subscription on {:?} from account {:?}",
                sub.client.cid,
                String::from_utf8_lossy(&sh.subject),
                sh.import.acc.name
            );
            made.push(sh);
        }
    }
    let replaced = sub.client.shadows.lock().unwrap().insert(Arc::as_ptr(sub) as usize, made);
    for sh in replaced.into_iter().flatten() {
        sh.import.acc.remove_shadow(&sh);
    }
    // Unsubscribed meanwhile by its owner: do not leave the new shadows behind.
    if sub.removed.load(Ordering::Acquire) {
        remove_shadows(sub);
    }
}

/// Rebuilds the stream-import shadows of every subscription in `acc` after its imports
/// changed (reload, account JWT update), as nats-server re-processes subscriptions.
pub(crate) fn refresh_shadows(acc: &Account) {
    for s in acc.sublist.all() {
        let sub = s.0;
        if sub.client.internal.is_some() {
            continue;
        }
        remove_shadows(&sub);
        if acc.has_stream_imports() && !sub.removed.load(Ordering::Acquire) {
            add_shadows(acc, &sub);
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// nats-server's `ClientInfo` as a service sees it in `Nats-Request-Info` (field order and
/// omissions as its JSON): the account and RTT always, the rest when the import shares.
#[derive(serde::Serialize, Default)]
struct RequestInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    acc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ver: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    rtt: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_type: Option<&'static str>,
}

fn is_zero(n: &u128) -> bool {
    *n == 0
}

impl Client {
    /// The message's header block with `Nats-Request-Info` added (what nats-server tells a
    /// service about the requester; an existing one is kept, as a chained import carries the
    /// first requester's).
    fn request_info_header(&self, hdr: Option<&[u8]>, acc: &str, share: bool) -> Vec<u8> {
        if let Some(h) = hdr
            && headers::get(h, "Nats-Request-Info").is_some()
        {
            return h.to_vec();
        }
        let json = self.request_info_json(acc, share);
        let mut out = Vec::with_capacity(hdr.map_or(12, <[u8]>::len) + json.len() + 24);
        match hdr {
            Some(h) if h.ends_with(b"\r\n\r\n") => out.extend_from_slice(&h[..h.len() - 2]),
            _ => out.extend_from_slice(b"NATS/1.0\r\n"),
        }
        out.extend_from_slice(b"Nats-Request-Info: ");
        out.extend_from_slice(json.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out
    }

    /// nats-server's `ClientInfo` of this client as JSON: the account and RTT, and with
    /// `share` who it is (what a sharing service import and the JetStream API audit show).
    fn request_info_json(&self, acc: &str, share: bool) -> String {
        let meta = self.shared.meta.lock().unwrap().clone();
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        let mut ci = RequestInfo {
            acc,
            rtt: meta.rtt.unwrap_or_default().as_nanos(),
            ..RequestInfo::default()
        };
        if share {
            ci.start = Some(crate::monitor::rfc3339(self.shared.start));
            ci.host = Some(self.shared.addr.ip().to_string());
            ci.id = Some(self.shared.cid);
            ci.user = meta.user.and_then(nonempty);
            ci.name = nonempty(meta.name);
            ci.lang = nonempty(meta.lang);
            ci.ver = nonempty(meta.version);
            ci.server = Some(self.srv.name.clone());
            ci.kind = Some("Client");
            ci.client_type =
                Some(if self.ctx.kind == ConnKind::Websocket { "websocket" } else { "nats" });
        }
        serde_json::to_string(&ci).expect("json")
    }
}

/// The CONNECT credentials check, with what the transport adds: the websocket block's own
/// authorization (or its `no_auth_user`) for WebSocket clients, and the user a verified client
/// certificate names under `verify_and_map`.
fn authenticate(
    srv: &ServerInner,
    ctx: &ConnCtx,
    c: &mut ConnectOpts,
    nonce: &str,
) -> Result<crate::auth::Identity, AuthError> {
    let o = srv.opts();
    let auth = srv.auth();
    // A user named by the transport gets that user's account and permissions.
    let named = |name: Option<String>| match name.as_deref().and_then(|n| auth.user_identity(n)) {
        Some(id) => id,
        None => crate::auth::Identity { name, ..Default::default() },
    };
    if ctx.kind == ConnKind::Websocket
        && let Some(r) = crate::websocket::authenticate(&o, c)
    {
        return r.map(named);
    }
    if let Some(id) = &ctx.cert {
        let users: Vec<&str> = o.authorization.users.iter().map(|u| u.user.as_str()).collect();
        return match id.map_user(&users) {
            Some(u) => Ok(named(Some(u.to_string()))),
            None => Err(AuthError::Violation),
        };
    }
    auth.identify(c, Some(nonce))
}

impl From<AuthError> for CloseReason {
    fn from(_: AuthError) -> Self {
        CloseReason::AuthenticationViolation
    }
}

/// Masks the values of `pass`, `auth_token`, `sig` and `jwt` in a CONNECT JSON for logs.
fn mask_secrets(json: &str) -> String {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return "[unparsable]".to_string();
    };
    for k in ["pass", "auth_token", "sig", "jwt"] {
        if let Some(v) = m.get_mut(k) {
            *v = serde_json::Value::String("[REDACTED]".into());
        }
    }
    serde_json::Value::Object(m).to_string()
}
