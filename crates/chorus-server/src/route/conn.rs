//! One route connection: the handshake, then the peer's operations, until it closes; and
//! the dialing of configured and gossiped routes, with reconnects.
//!
//! ```text
//!  acceptor                                   dialer
//!   ── INFO (at once) ─────────────────────►  ── CONNECT (at once) ─────────────────►
//!   ◄─ CONNECT: port, cluster name, auth          ◄─ INFO: self? cluster? pool?
//!   ◄─ INFO: self? name? pool slot             register (first free slot)
//!   register (the slot the dialer named)      ── INFO {route_pool_idx} + interest ──►
//!   ── interest snapshot ──────────────────►  ── PING; on PONG dial the next slot ──►
//!                    then both: RS+/RS-, RMSG/HMSG, PING/PONG, INFO (gossip, lame duck)
//! ```
//!
//! A connection's reader task owns the route subscriptions it learned: they sit in the
//! accounts' sublists with this connection's [`ClientShared`] as owner, so the routing
//! engine reaches them like any subscriber; they all go when it closes. The writer task is
//! a client's (`sub::write_loop`): a peer that stops reading is cut past `max_pending`.
//!
//! Errors: nats-server closes a route on any `-ERR` it receives, so one is sent only when
//! closing. Unknown accounts and invalid subjects in `RS+` are logged and ignored, as
//! nats-server does with a static account configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use chorus_proto::{ProtoError, RouteDecoder, RouteOp, encode, subject};
use rustc_hash::FxHashMap;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::info::{ROUTE_PROTO, RouteConnect, RouteInfo};
use super::{Join, Link, Refused};
use crate::account::Account;
use crate::conn::{CloseReason, Kind, Transport};
use crate::deliver::{Delivery, Lookup, MatchCache, Origin};
use crate::server::ServerInner;
use crate::sub::{ClientShared, Msg, SubRef, Subscription};

/// How long the handshake may take (nats-server bounds it by the auth timeout only when
/// routes need credentials; an idle half-open connection is not worth keeping either).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First PING after the handshake, then every `min(ping_interval, 30 s)` (nats-server's
/// `routeMaxPingInterval`).
const FIRST_PING: Duration = Duration::from_secs(1);
const MAX_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Wait between attempts to (re)connect an explicit route (nats-server: 1 s + jitter).
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Dial timeout (nats-server's `DEFAULT_ROUTE_DIAL`).
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Route control lines may be this many times `max_control_line` (nats-server: 16).
const CONTROL_LINE_FACTOR: usize = 16;
const READ_MIN: usize = 4096;
const READ_MAX: usize = 256 * 1024;

/// How this server came to dial a route.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    /// `host:port` to dial, and credentials from the URL.
    pub addr: String,
    pub user: Option<(String, String)>,
    /// The URL as configured or gossiped (shown in /routez).
    pub url: String,
    /// From `routes: [...]`: redialed forever when lost.
    pub configured: bool,
    /// A pinned account's dedicated connection.
    pub account: Option<String>,
    /// What the INFO that made us dial asked of gossip (see `route`).
    pub gossip_mode: u8,
}

/// What became of a connection, for the dialer's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Never registered: a duplicate, a route to ourselves, a refusal. Do not redial.
    Refused,
    /// Could not get through the handshake (or connect): try again later.
    Failed,
    /// Registered, then lost: redial if configured.
    Lost,
}

/// Parses a route URL (`nats://[user:pass@]host:port`, `nats-route://...`, or `host:port`).
pub(crate) fn parse_url(url: &str) -> Option<(String, Option<(String, String)>)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let (creds, hostport) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let user = creds.map(|c| match c.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (c.to_string(), String::new()),
    });
    if hostport.is_empty() {
        return None;
    }
    let hostport = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_string()
    } else {
        format!("{hostport}:6222")
    };
    Some((hostport, user))
}

/// Starts the route listener and dials the configured routes. Returns the listener's
/// address.
pub(crate) async fn start(
    srv: &Arc<ServerInner>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Option<SocketAddr>, crate::ServerError> {
    let opts = srv.opts();
    let Some(c) = &opts.cluster else { return Ok(None) };
    let mut local = None;
    if let Some(port) = c.port {
        let addr = format!("{}:{}", c.host, port);
        let l = crate::listener::bind(&addr)
            .await
            .map_err(|source| crate::ServerError::Listen { addr: addr.clone(), source })?;
        let a = l.local_addr().map_err(|source| crate::ServerError::Listen { addr, source })?;
        tracing::info!("Cluster name is {}", srv.cluster_name());
        tracing::info!("Listening for route connections on {}:{}", c.host, a.port());
        *srv.cluster_addr.lock().unwrap() = Some(a);
        local = Some(a);
        tasks.push(tokio::spawn(accept_loop(srv.clone(), l)));
    }
    for url in &c.routes {
        let Some((addr, user)) = parse_url(url) else {
            tracing::error!("Error parsing route URL {url:?}");
            continue;
        };
        let user =
            user.or_else(|| c.user.clone().map(|u| (u, c.password.clone().unwrap_or_default())));
        let d =
            Dial { addr, user, url: url.clone(), configured: true, account: None, gossip_mode: 0 };
        tokio::spawn(solicit(srv.clone(), d));
    }
    Ok(local)
}

async fn accept_loop(srv: Arc<ServerInner>, listener: TcpListener) {
    loop {
        let (tcp, addr) = tokio::select! {
            _ = srv.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("Error accepting route connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let srv = srv.clone();
        tokio::spawn(async move {
            let _ = run(srv, tcp, addr, None).await;
        });
    }
}

/// Dials a route, and keeps it up: a configured route is redialed whenever it is lost (or
/// cannot be reached), every second with some jitter; a gossiped one gets `connect_retries`
/// more attempts at first, and when lost at least one (nats-server's implicit routes: two
/// servers that dialed each other may each have closed the other's connection as a
/// duplicate, and then both need another go).
pub(crate) async fn solicit(srv: Arc<ServerInner>, d: Dial) {
    let retries = srv.opts().cluster.as_ref().map_or(0, |c| c.connect_retries);
    let mut allowed = retries;
    let mut failures = 0u32;
    loop {
        if srv.shutdown.is_cancelled() || srv.routes.is_closed() {
            return;
        }
        tracing::debug!("Trying to connect to route on {}", d.addr);
        let outcome = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&d.addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                let addr = tcp.peer_addr().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
                run(srv.clone(), tcp, addr, Some(d.clone())).await
            }
            Ok(Err(e)) => {
                tracing::debug!("Error trying to connect to route ({}): {e}", d.addr);
                Outcome::Failed
            }
            Err(_) => Outcome::Failed,
        };
        match outcome {
            Outcome::Refused => return,
            Outcome::Lost => {
                failures = 0;
                allowed = retries.max(1);
            }
            Outcome::Failed => failures += 1,
        }
        if !d.configured && failures > allowed {
            return;
        }
        let jitter = Duration::from_millis(rand::random_range(0..100));
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_DELAY + jitter) => {}
            _ = srv.shutdown.cancelled() => return,
        }
    }
}

/// This server's route INFO. `slot`: the dialer's pool slot; `account`: a pinned
/// connection's account.
fn our_info(srv: &ServerInner, slot: usize, account: Option<&str>, gossip_mode: u8) -> RouteInfo {
    let opts = srv.opts();
    let c = opts.cluster.clone().unwrap_or_default();
    let listen = srv.cluster_addr.lock().unwrap().map_or(0, |a| a.port());
    let (mut host, mut port) = (c.host.clone(), listen);
    let mut ip = String::new();
    if let Some(adv) = &c.advertise {
        let (h, p) = match adv.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(listen)),
            None => (adv.clone(), listen),
        };
        (host, port) = (h, p);
        ip = format!("nats-route://{host}:{port}/");
    }
    let pool = srv.routes.pool_size();
    RouteInfo {
        server_id: srv.id.clone(),
        server_name: srv.name.clone(),
        version: crate::info::COMPAT_VERSION.to_string(),
        proto: ROUTE_PROTO,
        go: "rust".to_string(),
        host,
        port,
        headers: true,
        auth_required: c.user.is_some(),
        max_payload: opts.max_payload as i64,
        ip,
        cluster: srv.cluster_name(),
        cluster_dynamic: srv.cluster_dynamic(),
        connect_urls: if c.no_advertise { Vec::new() } else { srv.own_client_urls() },
        ws_connect_urls: if c.no_advertise { Vec::new() } else { srv.own_ws_urls() },
        ldm: srv.ldm.load(Ordering::Relaxed),
        compression: "off".to_string(),
        lnoc: true,
        lnocu: true,
        ln: true,
        route_pool_size: i32::try_from(pool).unwrap_or(0),
        route_pool_idx: i32::try_from(slot).unwrap_or(0),
        route_account: account.unwrap_or_default().to_string(),
        gossip_mode,
        chorus_node: srv.raft.get().map_or(0, |h| h.me()),
        ..RouteInfo::default()
    }
}

/// Lame duck mode: one INFO with `ldm` to each peer (on its first connection), so they stop
/// sending their clients here.
pub(crate) fn send_lame_duck(srv: &ServerInner) {
    for link in srv.routes.first_links() {
        let mut info = our_info(srv, 0, None, 0);
        info.ldm = true;
        info.route_pool_idx = 0;
        link.shared.send_now(&info_line(&info));
    }
}

fn info_line(info: &RouteInfo) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode::info(&mut b, &serde_json::to_vec(info).expect("INFO serialises"));
    b.to_vec()
}

fn err_line(text: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode::err(&mut b, text);
    b.to_vec()
}

/// The reader side of a route connection.
struct Route {
    srv: Arc<ServerInner>,
    shared: Arc<ClientShared>,
    dial: Option<Dial>,
    decoder: RouteDecoder,
    /// Registered in the routes table, once the handshake is done.
    link: Option<Arc<Link>>,
    /// The peer's CONNECT was accepted (acceptor side).
    connected: bool,
    /// Route subscriptions by (account, subject, queue).
    subs: FxHashMap<(Bytes, Bytes, Option<Bytes>), Arc<Subscription>>,
    accounts: FxHashMap<Bytes, Option<Arc<Account>>>,
    delivery: Delivery,
    cache: MatchCache,
    pings_out: u32,
    ping_sent: Option<Instant>,
    /// A dialer with free pool slots: the next connection is dialed on the next PONG.
    dial_next: bool,
    outcome: Outcome,
    in_msgs: u64,
    in_bytes: u64,
    /// The account raft frames are addressed to (`route::raft`).
    raft_account: String,
}

async fn run(
    srv: Arc<ServerInner>,
    tcp: TcpStream,
    addr: SocketAddr,
    dial: Option<Dial>,
) -> Outcome {
    let opts = srv.opts();
    let rid = srv.alloc_cid();
    let shared = Arc::new(ClientShared::new(
        rid,
        addr,
        Kind::Router,
        Transport::Tcp,
        opts.max_pending,
        srv.shutdown.child_token(),
        std::sync::Weak::new(),
    ));
    let (rd, wr) = tcp.into_split();
    let deadline =
        opts.cluster.as_ref().and_then(|c| c.write_deadline).unwrap_or(opts.write_deadline);
    let writer =
        tokio::spawn(crate::sub::write_loop(shared.clone(), wr, deadline, srv.stats.clone()));
    let mut r = Route {
        decoder: RouteDecoder::new(
            opts.max_control_line.saturating_mul(CONTROL_LINE_FACTOR),
            // nats-server takes any size from a route (only clients are held to
            // max_payload); the receivers' max_pending bounds what can be delivered.
            opts.max_pending.max(opts.max_payload),
        ),
        srv: srv.clone(),
        shared: shared.clone(),
        dial,
        link: None,
        connected: false,
        subs: FxHashMap::default(),
        accounts: FxHashMap::default(),
        delivery: Delivery::seeded(rid),
        cache: MatchCache::default(),
        pings_out: 0,
        ping_sent: None,
        dial_next: false,
        outcome: Outcome::Failed,
        in_msgs: 0,
        in_bytes: 0,
        raft_account: super::raft::raft_account(&srv),
    };
    match &r.dial {
        Some(d) => {
            let (user, pass) = d.user.clone().unwrap_or_default();
            let connect = RouteConnect {
                echo: true,
                verbose: false,
                pedantic: false,
                user,
                pass,
                tls_required: false,
                headers: true,
                name: srv.id.clone(),
                cluster: srv.cluster_name(),
                dynamic: srv.cluster_dynamic(),
                lnoc: true,
                ln: true,
                ..RouteConnect::default()
            };
            let mut b = BytesMut::new();
            b.extend_from_slice(b"CONNECT ");
            b.extend_from_slice(&serde_json::to_vec(&connect).expect("CONNECT serialises"));
            b.extend_from_slice(b"\r\n");
            shared.send_now(&b);
        }
        None => {
            // Only the first INFO carries a nonce (routes do not sign it; nats-server sends
            // one all the same).
            let info = RouteInfo { nonce: crate::info::new_nonce(), ..our_info(&srv, 0, None, 0) };
            shared.send_now(&info_line(&info));
        }
    }
    tracing::debug!("{} - Route connection created", r.prefix());
    r.read_loop(rd).await;
    r.cleanup();
    let _ = writer.await;
    r.outcome
}

impl Route {
    fn prefix(&self) -> String {
        let a = self.shared.addr;
        format!("{}:{} - rid:{}", a.ip(), a.port(), self.shared.cid)
    }

    fn close(&mut self, reason: CloseReason, err: Option<&str>) {
        if let Some(e) = err {
            self.shared.send_now(&err_line(e));
        }
        self.shared.close(reason, err.is_some());
    }

    async fn read_loop(&mut self, rd: tokio::net::tcp::OwnedReadHalf) {
        tokio::pin!(rd);
        let opts = self.srv.opts();
        let cluster = opts.cluster.clone().unwrap_or_default();
        let interval = cluster.ping_interval.unwrap_or(opts.ping_interval).min(MAX_PING_INTERVAL);
        let ping_max = cluster.ping_max.unwrap_or(opts.ping_max).max(1);
        let handshake = tokio::time::Instant::now()
            + cluster.auth_timeout.filter(|_| cluster.user.is_some()).unwrap_or(HANDSHAKE_TIMEOUT);
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + FIRST_PING, interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = BytesMut::with_capacity(READ_MIN);
        let kill = self.shared.kill.clone();
        loop {
            if buf.capacity() - buf.len() < READ_MIN / 2 {
                buf.reserve(if buf.capacity() < READ_MAX {
                    buf.capacity().max(READ_MIN)
                } else {
                    READ_MIN
                });
            }
            let registered = self.link.is_some();
            tokio::select! {
                biased;
                _ = kill.cancelled() => return,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => {
                        self.shared.close(CloseReason::ClientClosed, false);
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        self.shared.close(CloseReason::ReadError, false);
                        return;
                    }
                },
                _ = ping.tick(), if registered => {
                    if self.pings_out >= ping_max {
                        tracing::debug!("{} - Stale Route Connection - Closing", self.prefix());
                        self.close(CloseReason::StaleConnection, Some("Stale Connection"));
                        return;
                    }
                    self.pings_out += 1;
                    self.send_ping();
                    continue;
                }
                _ = tokio::time::sleep_until(handshake), if !registered => {
                    tracing::debug!("{} - Route handshake timed out", self.prefix());
                    self.close(CloseReason::AuthenticationTimeout, Some("Authentication Timeout"));
                    return;
                }
            }
            let res = self.process(&mut buf);
            self.flush_counters();
            self.delivery.flush();
            if let Err(reason) = res {
                if !self.shared.is_closing() {
                    self.shared.close(reason, true);
                }
                return;
            }
            if buf.is_empty() && buf.capacity() > 4 * READ_MAX {
                buf = BytesMut::with_capacity(READ_MIN);
            }
            // A route never waits for a slow local receiver (a client's publisher does): the
            // backlog would move upstream onto the peer's route, which would then cut the
            // whole route instead of the one slow client (nats-server stalls clients only).
            let _ = self.delivery.take_stall();
        }
    }

    fn send_ping(&mut self) {
        self.ping_sent = Some(Instant::now());
        self.shared.send_now(encode::PING);
    }

    fn flush_counters(&mut self) {
        if self.in_msgs > 0 {
            self.shared.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            self.shared.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            let st = &self.srv.stats;
            st.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            st.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            st.in_route_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            st.in_route_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.in_msgs = 0;
            self.in_bytes = 0;
            *self.shared.last_activity.lock().unwrap() = SystemTime::now();
        }
        self.delivery.add_counts(&self.srv.stats);
    }

    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        loop {
            // A connection being closed (a duplicate, a refusal) reads no further.
            if self.shared.is_closing() {
                return Ok(());
            }
            let op = match self.decoder.decode(buf) {
                Ok(Some(op)) => op,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.protocol_error(e)),
            };
            // An accepted route must start with CONNECT (nats-server's auth check).
            if self.dial.is_none() && !self.connected && !matches!(op, RouteOp::Connect(_)) {
                tracing::error!("{} - Route expected CONNECT first", self.prefix());
                self.close(CloseReason::AuthenticationViolation, Some("Authorization Violation"));
                return Ok(());
            }
            match op {
                RouteOp::Connect(json) => self.process_connect(&json),
                RouteOp::Info(json) => self.process_info(&json),
                RouteOp::Ping => self.shared.send_now(encode::PONG),
                RouteOp::Pong => self.process_pong(),
                RouteOp::Ok => {}
                RouteOp::Err(text) => {
                    tracing::error!(
                        "{} - Route Error {}",
                        self.prefix(),
                        String::from_utf8_lossy(&text)
                    );
                    self.shared.close(CloseReason::ParseError, false);
                    return Ok(());
                }
                _ if self.link.is_none() => {
                    // Interest or messages before the handshake completed.
                    tracing::error!("{} - Route sent protocol before INFO", self.prefix());
                    return Err(CloseReason::ProtocolViolation);
                }
                RouteOp::Sub { account, subject, queue, weight } => {
                    self.remote_sub(account, subject, queue, weight)
                }
                RouteOp::Unsub { account, subject, queue } => {
                    self.remote_unsub(account, subject, queue)
                }
                RouteOp::Msg { account, subject, reply, queues, headers, payload } => {
                    self.routed_msg(account, &subject, reply.as_deref(), &queues, headers, &payload)
                }
            }
        }
    }

    fn protocol_error(&mut self, e: ProtoError) -> CloseReason {
        if self.dial.is_none() && !self.connected {
            // Anything but CONNECT first, even unparsable, is an auth failure (nats-server).
            tracing::error!("{} - Route expected CONNECT first", self.prefix());
            self.shared.send_now(&err_line("Authorization Violation"));
            return CloseReason::AuthenticationViolation;
        }
        match e {
            ProtoError::MaxControlLine => {
                self.shared.send_now(&err_line("maximum control line exceeded"));
                CloseReason::MaxControlLineExceeded
            }
            ProtoError::MaxPayload { size, max } => {
                tracing::error!("{} - route payload too big: {size} vs {max}", self.prefix());
                self.shared.send_now(&err_line("Maximum Payload Violation"));
                CloseReason::MaxPayloadExceeded
            }
            ProtoError::UnknownOp => {
                tracing::error!("{} - Route parser ERROR", self.prefix());
                self.shared.send_now(&err_line("Unknown Protocol Operation"));
                CloseReason::ProtocolViolation
            }
            ProtoError::BadArgs { .. } => {
                tracing::error!("{} - {e}", self.prefix());
                CloseReason::ProtocolViolation
            }
        }
    }

    /// The dialer's CONNECT (acceptor side): port, cluster name and credentials.
    fn process_connect(&mut self, json: &[u8]) {
        if self.dial.is_some() || self.connected {
            return;
        }
        let c: RouteConnect = match serde_json::from_slice(json) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{} - Route CONNECT parse error: {e}", self.prefix());
                self.close(CloseReason::ProtocolViolation, None);
                return;
            }
        };
        if c.lang.is_some() {
            tracing::error!("{} - Client attempted to connect to route port", self.prefix());
            self.close(CloseReason::WrongPort, Some("attempted to connect to route port"));
            return;
        }
        if !c.gateway.is_empty() {
            let e = format!("Rejecting connection from gateway {:?} on the Route port", c.gateway);
            tracing::error!("{} - {e}", self.prefix());
            self.close(CloseReason::ProtocolViolation, Some(&e));
            return;
        }
        let ours = self.srv.cluster_name();
        if c.cluster == "_" {
            let e = "Rejecting connection, cluster name \"_\" is reserved".to_string();
            self.close(CloseReason::ClusterNameConflict, Some(&e));
            return;
        }
        if c.cluster != ours && !self.srv.adopt_cluster_name(&c.cluster, c.dynamic) {
            let e = format!(
                "Rejecting connection, cluster name {:?} does not match {:?}",
                c.cluster, ours
            );
            tracing::error!("{} - {e}", self.prefix());
            self.close(CloseReason::ClusterNameConflict, Some(&e));
            return;
        }
        let opts = self.srv.opts();
        if let Some(cl) = &opts.cluster
            && let Some(user) = &cl.user
        {
            let pass = cl.password.as_deref().unwrap_or("");
            let ok = chorus_auth::ct_eq(&c.user, user) & chorus_auth::ct_eq(&c.pass, pass);
            if !ok {
                tracing::error!("{} - Route authorization failed", self.prefix());
                self.close(CloseReason::AuthenticationViolation, Some("Authorization Violation"));
                return;
            }
        }
        self.connected = true;
    }

    /// An INFO: the first one completes the handshake; later ones are gossip about other
    /// servers, or the peer's lame duck mode.
    fn process_info(&mut self, json: &[u8]) {
        let info: RouteInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("{} - Route INFO parse error: {e}", self.prefix());
                self.close(CloseReason::ProtocolViolation, None);
                return;
            }
        };
        if !info.gateway.is_empty() {
            return;
        }
        match &self.link {
            None => self.handshake(info),
            Some(link) => {
                let link = link.clone();
                self.async_info(&link, info);
            }
        }
    }

    fn handshake(&mut self, info: RouteInfo) {
        let srv = self.srv.clone();
        if info.server_id == srv.id {
            tracing::debug!("{} - Detected route to self, ignoring", self.prefix());
            self.outcome = Outcome::Refused;
            self.shared.close(CloseReason::DuplicateRoute, false);
            return;
        }
        let ours = srv.cluster_name();
        let conflict = !info.cluster.is_empty()
            && info.cluster != ours
            && !srv.adopt_cluster_name(&info.cluster, info.cluster_dynamic);
        if info.cluster == "_" || conflict {
            tracing::error!(
                "{} - Rejecting route: cluster name {:?} does not match {:?}",
                self.prefix(),
                info.cluster,
                ours
            );
            self.outcome = Outcome::Refused;
            self.shared.close(CloseReason::ClusterNameConflict, false);
            return;
        }
        if self.dial.is_none() && info.server_name == srv.name {
            tracing::error!(
                "{} - Remote server has a duplicate name: {:?}",
                self.prefix(),
                info.server_name
            );
            self.shared.close(CloseReason::DuplicateServerName, false);
            return;
        }
        match info.compression.as_str() {
            "" | "off" | "accept" | "not supported" | "s2_uncompressed" | "s2_fast"
            | "s2_better" | "s2_best" | "s2_auto" => {}
            other => {
                let e = format!("unsupported route compression mode {other:?}");
                self.close(CloseReason::ProtocolViolation, Some(&e));
                return;
            }
        }
        let did_solicit = self.dial.is_some();
        let account = self.dial.as_ref().and_then(|d| d.account.clone());
        let gossip_mode = self.dial.as_ref().map_or(0, |d| d.gossip_mode);
        let mut info = info;
        if did_solicit {
            // The acceptor never names an account: the one we dialed for is this link's.
            info.route_account = account.clone().unwrap_or_default();
        }
        if info.ip.is_empty() {
            info.ip = format!("nats-route://{}:{}/", self.shared.addr.ip(), info.port);
        }
        let join = Join {
            shared: &self.shared,
            info: &info,
            did_solicit,
            configured: self.dial.as_ref().is_some_and(|d| d.configured),
            url: self.dial.as_ref().map(|d| d.url.clone()),
        };
        let hello = |slot: Option<usize>| {
            did_solicit.then(|| {
                let mine = our_info(&srv, slot.unwrap_or(0), account.as_deref(), gossip_mode);
                info_line(&RouteInfo { nonce: crate::info::new_nonce(), ..mine })
            })
        };
        let reg = match srv.routes.register(join, hello) {
            Ok(r) => r,
            Err(Refused::Duplicate) => {
                tracing::debug!(
                    "{} - Detected duplicate remote route {:?}",
                    self.prefix(),
                    info.server_id
                );
                self.outcome = Outcome::Refused;
                self.shared.close(CloseReason::DuplicateRoute, false);
                return;
            }
            Err(Refused::Invalid(e)) => {
                tracing::error!("{} - {e}", self.prefix());
                self.outcome = Outcome::Refused;
                let reason = if e.starts_with("No route") {
                    CloseReason::MissingAccount
                } else {
                    CloseReason::ProtocolViolation
                };
                self.close(reason, Some(&e));
                return;
            }
        };
        if reg.link.account.is_some() {
            self.decoder.set_pinned(true);
        }
        // A peer without header support gets messages without them (nats-server strips).
        self.shared.headers.store(info.headers, Ordering::Relaxed);
        self.outcome = Outcome::Lost;
        self.shared.meta.lock().unwrap().name = info.server_name.clone();
        tracing::info!(
            "{} - Route connection created: {:?} ({}){}",
            self.prefix(),
            info.server_name,
            info.server_id,
            reg.link.account.as_ref().map(|a| format!(" for account {a:?}")).unwrap_or_default()
        );
        self.link = Some(reg.link.clone());
        self.send_snapshot(&reg.link);
        if reg.first {
            srv.push_client_info();
            // Pinned accounts get their own connections from the dialer.
            if did_solicit && !reg.link.no_pool && account.is_none() {
                for a in srv.routes.pinned_accounts() {
                    if let Some(d) = &self.dial {
                        let d = Dial { account: Some(a), ..d.clone() };
                        tokio::spawn(solicit(srv.clone(), d));
                    }
                }
            }
        }
        for g in &reg.gossip {
            self.gossip(g, did_solicit, gossip_mode);
        }
        if reg.more {
            self.dial_next = true;
            self.send_ping();
        }
    }

    /// This server's interest in every account the new link carries.
    fn send_snapshot(&mut self, link: &Arc<Link>) {
        let mut lines = BytesMut::new();
        for acc in self.srv.all_accounts() {
            if !self.srv.routes.carries(link, &acc.name) {
                continue;
            }
            let token = link.account.is_none().then_some(acc.name.as_bytes());
            let map = acc.interest.lock().unwrap();
            for ((subject, queue), n) in map.iter() {
                encode::route_sub(&mut lines, token, subject, queue.as_deref(), *n);
            }
            // Appended under the account's interest lock: a change made meanwhile comes after.
            if !lines.is_empty() {
                let _ = self.shared.append_proto(&lines);
                lines.clear();
            }
        }
        self.shared.wake_writer();
    }

    /// Forwards a new peer's INFO to the other peers, which then dial it (nats-server's
    /// `forwardNewRouteInfoToKnownServers`, with its gossip modes).
    fn gossip(&self, info: &RouteInfo, did_solicit: bool, our_mode: u8) {
        let implicit = self.dial.as_ref().is_some_and(|d| !d.configured);
        if (did_solicit && implicit && our_mode != 2) || info.gossip_mode == 1 {
            return;
        }
        let explicit = self.dial.as_ref().is_some_and(|d| d.configured);
        for (link, configured) in self.srv.routes.gossip_targets(&info.server_id) {
            let mut fwd = info.clone();
            fwd.nonce.clear();
            fwd.gossip_mode = if (!did_solicit && configured) || explicit {
                2
            } else if !did_solicit {
                1
            } else {
                0
            };
            link.shared.send_now(&info_line(&fwd));
        }
    }

    /// An INFO after the handshake: the peer's lame duck mode, or gossip about another server.
    fn async_info(&mut self, link: &Arc<Link>, info: RouteInfo) {
        if !info.route_acc_add_reqid.is_empty() {
            // A peer's reload pinned an account: confirm (we keep sending its interest where
            // our own pool puts it).
            let mut reply = our_info(&self.srv, 0, None, 0);
            reply.route_acc_add_reqid = info.route_acc_add_reqid;
            self.shared.send_now(&info_line(&reply));
            return;
        }
        if info.server_id.is_empty() || info.server_id == link.remote_id {
            if self.srv.routes.set_ldm(&link.remote_id, info.ldm) {
                if info.ldm {
                    tracing::info!("Peer {:?} entered lame duck mode", link.remote_name);
                }
                self.srv.push_client_info();
            }
            return;
        }
        if info.server_id == self.srv.id {
            return;
        }
        let account = (!info.route_account.is_empty()).then_some(info.route_account.as_str());
        if account.is_some_and(|a| !self.srv.routes.is_pinned(a)) {
            return;
        }
        if self.srv.routes.has_peer(&info.server_id, account) {
            return;
        }
        let url = if info.ip.is_empty() {
            format!("nats-route://{}:{}/", info.host, info.port)
        } else {
            info.ip.clone()
        };
        let Some((addr, _)) = parse_url(&url) else { return };
        let opts = self.srv.opts();
        let cluster = opts.cluster.clone().unwrap_or_default();
        if cluster.routes.iter().any(|r| parse_url(r).is_some_and(|(a, _)| a == addr)) {
            return;
        }
        tracing::debug!("Implicit route to {:?} at {addr}", info.server_name);
        let user = cluster
            .user
            .clone()
            .filter(|_| info.auth_required)
            .map(|u| (u, cluster.password.clone().unwrap_or_default()));
        let d = Dial {
            addr,
            user,
            url,
            configured: false,
            account: account.map(str::to_string),
            gossip_mode: info.gossip_mode,
        };
        tokio::spawn(solicit(self.srv.clone(), d));
    }

    fn process_pong(&mut self) {
        self.pings_out = 0;
        if let (Some(t), Some(link)) = (self.ping_sent.take(), &self.link) {
            *link.rtt.lock().unwrap() = Some(t.elapsed());
        }
        if std::mem::take(&mut self.dial_next)
            && let Some(d) = &self.dial
        {
            tokio::spawn(solicit(self.srv.clone(), d.clone()));
        }
    }

    fn account(&mut self, name: Option<Bytes>) -> Option<(Bytes, Arc<Account>)> {
        let name = match name {
            Some(n) => n,
            None => Bytes::from(self.link.as_ref()?.account.clone()?),
        };
        if let Some(a) = self.accounts.get(&name) {
            return a.clone().map(|a| (name, a));
        }
        let acc = std::str::from_utf8(&name).ok().and_then(|n| self.srv.account(Some(n)));
        if self.accounts.len() < 4096 {
            self.accounts.insert(name.clone(), acc.clone());
        }
        acc.map(|a| (name, a))
    }

    /// Whether a message on the raft subject is addressed to the raft account (explicitly, or
    /// as the account this link is pinned to): a raft frame, never a client message.
    fn raft_frame(&self, account: Option<&[u8]>) -> bool {
        let name = match account {
            Some(a) => a,
            None => match self.link.as_ref().and_then(|l| l.account.as_deref()) {
                Some(a) => a.as_bytes(),
                None => return false,
            },
        };
        name == self.raft_account.as_bytes()
    }

    /// `RS+`: the peer has (`weight` members of) interest in a subject.
    fn remote_sub(
        &mut self,
        account: Option<Bytes>,
        subject: Bytes,
        queue: Option<Bytes>,
        weight: u32,
    ) {
        let Some((name, acc)) = self.account(account.clone()) else {
            tracing::debug!(
                "{} - Unknown account {:?} for remote subject {:?}",
                self.prefix(),
                account.as_deref().map(String::from_utf8_lossy),
                String::from_utf8_lossy(&subject)
            );
            return;
        };
        let valid = subject::is_valid_subject(&subject)
            && queue.as_ref().is_none_or(|q| subject::is_valid_queue_name(q));
        if !valid {
            tracing::debug!(
                "{} - Invalid remote subject {:?}",
                self.prefix(),
                String::from_utf8_lossy(&subject)
            );
            return;
        }
        let subject = Bytes::copy_from_slice(&subject);
        let queue = queue.map(|q| Bytes::copy_from_slice(&q));
        let key = (name.clone(), subject.clone(), queue.clone());
        if let Some(s) = self.subs.get(&key) {
            // A queue group's new member count; a repeated plain RS+ changes nothing.
            s.weight.store(weight.max(1), Ordering::Relaxed);
            return;
        }
        // nats-server's key of a route subscription, shown as its sid in /routez.
        let mut sid = String::from("R ");
        if self.link.as_ref().is_some_and(|l| l.account.is_none()) {
            sid.push_str(&String::from_utf8_lossy(&name));
            sid.push(' ');
        }
        sid.push_str(&String::from_utf8_lossy(&subject));
        if let Some(q) = &queue {
            sid.push(' ');
            sid.push_str(&String::from_utf8_lossy(q));
        }
        let sid = Bytes::from(sid);
        let sub = Arc::new(Subscription::new(self.shared.clone(), subject, queue, sid));
        sub.weight.store(weight.max(1), Ordering::Relaxed);
        if acc.sublist.insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone())).is_err() {
            return;
        }
        self.subs.insert(key, sub);
        if let Some(l) = &self.link {
            l.subs.store(self.subs.len(), Ordering::Relaxed);
        }
    }

    /// `RS-`: the peer's interest in a subject is gone.
    fn remote_unsub(&mut self, account: Option<Bytes>, subject: Bytes, queue: Option<Bytes>) {
        let Some((name, acc)) = self.account(account) else { return };
        let key = (name, subject, queue);
        if let Some(sub) = self.subs.remove(&key)
            && !sub.removed.swap(true, Ordering::AcqRel)
        {
            let _ = acc.sublist.remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()));
        }
        if let Some(l) = &self.link {
            l.subs.store(self.subs.len(), Ordering::Relaxed);
        }
    }

    /// `RMSG`/`HMSG`: a message published on the peer, for this server's subscribers.
    fn routed_msg(
        &mut self,
        account: Option<Bytes>,
        subject: &Bytes,
        reply: Option<&[u8]>,
        queues: &[Bytes],
        headers: Option<Bytes>,
        payload: &Bytes,
    ) {
        self.in_msgs += 1;
        self.in_bytes += (payload.len() + headers.as_ref().map_or(0, |h| h.len())) as u64;
        if subject.as_ref() == super::raft::RAFT_SUBJECT && self.raft_frame(account.as_deref()) {
            if let (Some(hub), Some(link)) = (self.srv.raft.get(), &self.link)
                && link.remote_node != 0
            {
                hub.receive(link.remote_node, payload);
            }
            return;
        }
        let Some((_, acc)) = self.account(account) else { return };
        let from = Origin::route(&self.shared, queues);
        // A JetStream delivery: routed by its subject (an inbox), shown with the one after
        // the `@` of its ack reply (see `deliver::js_ack_deliver_idx`).
        if let Some(i) = reply.and_then(crate::deliver::js_ack_deliver_idx) {
            let r = reply.expect("found in it");
            let (ack, shown) = (&r[..i], &r[i + 1..]);
            let msg = Msg { subject, reply: Some(ack), hdr: headers.as_deref(), payload };
            self.delivery.publish_shown(
                &self.srv,
                &from,
                &acc,
                msg,
                Some(shown),
                Lookup::Transient,
            );
            return;
        }
        let msg = Msg { subject, reply, hdr: headers.as_deref(), payload };
        self.delivery.publish(&self.srv, &from, &acc, msg, Lookup::Cached(&mut self.cache));
    }

    fn cleanup(&mut self) {
        let mut by_account: FxHashMap<Bytes, Vec<Arc<Subscription>>> = FxHashMap::default();
        for ((acc, _, _), sub) in self.subs.drain() {
            by_account.entry(acc).or_default().push(sub);
        }
        for (name, subs) in by_account {
            if let Some(Some(acc)) = self.accounts.get(&name) {
                let subs: Vec<_> =
                    subs.into_iter().filter(|s| !s.removed.swap(true, Ordering::AcqRel)).collect();
                acc.sublist.remove_batch(
                    subs.iter().map(|s| (s.subject.clone(), s.queue.clone(), SubRef(s.clone()))),
                );
            }
        }
        self.flush_counters();
        let reason = self.shared.close_reason().unwrap_or(CloseReason::ClientClosed);
        if let Some(link) = self.link.take() {
            let last = self.srv.routes.unregister(&link);
            tracing::info!(
                "{} - Router connection closed: {}{}",
                self.prefix(),
                reason.as_str(),
                link.account.as_ref().map(|a| format!(" (account {a:?})")).unwrap_or_default()
            );
            if last {
                self.srv.push_client_info();
            }
            // A connection this server did not dial but now stands for a dialed one (its
            // twin was a duplicate) is redialed with that one's URL.
            if self.dial.is_none()
                && link.did_solicit.load(Ordering::Relaxed)
                && !self.srv.shutdown.is_cancelled()
                && let Some(url) = link.url.lock().unwrap().clone()
                && let Some((addr, user)) = parse_url(&url)
            {
                let d = Dial {
                    addr,
                    user,
                    url,
                    configured: link.configured.load(Ordering::Relaxed),
                    account: link.account.clone(),
                    gossip_mode: 0,
                };
                tokio::spawn(solicit(self.srv.clone(), d));
            }
        } else {
            tracing::debug!("{} - Route connection closed: {}", self.prefix(), reason.as_str());
        }
        self.shared.close(reason, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_urls() {
        assert_eq!(
            parse_url("nats://nats-2.internal:6222"),
            Some(("nats-2.internal:6222".into(), None))
        );
        assert_eq!(
            parse_url("nats://ruser:pw@10.0.0.1:7244/"),
            Some(("10.0.0.1:7244".into(), Some(("ruser".into(), "pw".into()))))
        );
        assert_eq!(parse_url("nats-route://h:1/"), Some(("h:1".into(), None)));
        assert_eq!(parse_url("h"), Some(("h:6222".into(), None)));
        assert_eq!(parse_url("nats://"), None);
    }
}
