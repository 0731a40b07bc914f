//! The server: listeners, the client registry, server-wide state and the lifecycle
//! (start, reload, lame duck, shutdown).
//!
//! Task ownership: [`Server::start`] spawns the client accept loop, the WebSocket accept loop
//! and the monitor listener; each accepted connection gets a reader task which spawns its
//! writer (TLS and WebSocket connections first go through `tls`/`websocket`, which hand a
//! stream to the same client code). Every task holds a
//! child of the server's shutdown token, so one `cancel` reaches all of them, and
//! [`Server::shutdown`] waits until every client has unregistered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use chorus_conf::Options;
use rustc_hash::FxHashMap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account::{self, Account, GLOBAL_ACCOUNT, SYSTEM_ACCOUNT};
use crate::auth::{Auth, AuthConfigError};
use crate::client;
use crate::conn::{CloseReason, Stats, Transport};
use crate::info::{self, Info};
use crate::listener::tls::{TlsConfigError, TlsSetup};
use crate::listener::{self, ConnCtx};
use crate::monitor;
use crate::route::Routes;
use crate::sub::ClientShared;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    JetStream(#[from] crate::jetstream::StartError),
}

/// A connection that has ended, kept for /connz?state=closed.
#[derive(Debug, Clone)]
pub struct ClosedConn {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub stop: SystemTime,
    pub reason: &'static str,
    pub name: String,
    pub lang: String,
    pub version: String,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub num_subs: u64,
    pub user: Option<String>,
    pub rtt: Option<Duration>,
    pub last_activity: SystemTime,
}

/// How many closed connections /connz remembers (nats-server: `max_closed_clients`, 10000).
const MAX_CLOSED: usize = 10_000;

/// State shared by every task of one server.
#[derive(Debug)]
pub struct ServerInner {
    opts: RwLock<Arc<Options>>,
    auth: RwLock<Arc<Auth>>,
    pub id: String,
    pub xkey: String,
    /// The secret key of the per-connection nonces (see [`ServerInner::nonce_for`]).
    nonce_key: std::collections::hash_map::RandomState,
    /// Configured accounts by name (`accounts {}`); `$G` is [`ServerInner::gacc`].
    accounts: RwLock<FxHashMap<String, Arc<Account>>>,
    pub name: String,
    pub gacc: Arc<Account>,
    pub clients: Mutex<FxHashMap<u64, Arc<ClientShared>>>,
    pub closed: Mutex<std::collections::VecDeque<ClosedConn>>,
    pub next_cid: AtomicU64,
    pub stats: Arc<Stats>,
    /// The routes to the other servers of the cluster.
    pub routes: Routes,
    /// The JetStream runtime while it runs (monitoring asks it for /jsz).
    pub(crate) jetstream: Mutex<Option<crate::jetstream::Handle>>,
    pub shutdown: CancellationToken,
    /// Stops the accept loop (lame duck) without touching existing clients.
    pub accept_stop: CancellationToken,
    pub ldm: AtomicBool,
    pub start_time: SystemTime,
    pub client_addr: Mutex<Option<SocketAddr>>,
    pub monitor_addr: Mutex<Option<SocketAddr>>,
    /// The WebSocket listener's address, and whether it is wss.
    pub websocket_addr: Mutex<Option<(SocketAddr, bool)>>,
    pub config_load_time: Mutex<SystemTime>,
    /// Sequence of the server's own `$SYS` messages (the `seq` of their `server` block).
    pub(crate) sys_seq: AtomicU64,
    /// The route listener's address, once bound.
    pub cluster_addr: Mutex<Option<SocketAddr>>,
    /// The cluster's name, and whether it was generated (no `name` configured): a generated
    /// name gives way to a peer's configured (or greater) one, as in nats-server.
    cluster: RwLock<(String, bool)>,
    /// Generation of the peers' client URLs last pushed to clients.
    urls_pushed: AtomicU64,
    /// The raft hub of a clustered JetStream (set once at start, before any route): every
    /// raft group of this server talks to its peers through it.
    pub(crate) raft: std::sync::OnceLock<Arc<chorus_raft::Hub>>,
}

impl ServerInner {
    pub fn opts(&self) -> Arc<Options> {
        self.opts.read().unwrap().clone()
    }

    pub fn auth(&self) -> Arc<Auth> {
        self.auth.read().unwrap().clone()
    }

    pub(crate) fn alloc_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A connection that ended before it became a client (a failed TLS handshake), kept for
    /// /connz?state=closed as nats-server does.
    pub(crate) fn record_failed_connection(
        &self,
        cid: u64,
        addr: SocketAddr,
        reason: &'static str,
    ) {
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut closed = self.closed.lock().unwrap();
        if closed.len() >= MAX_CLOSED {
            closed.pop_front();
        }
        closed.push_back(ClosedConn {
            cid,
            addr,
            start: now,
            stop: now,
            reason,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
            num_subs: 0,
            user: None,
            rtt: None,
            last_activity: now,
        });
    }

    /// Adds a client unless that would pass `max_connections`.
    pub(crate) fn register_client(&self, c: Arc<ClientShared>) -> bool {
        let max = self.opts().max_connections;
        let mut clients = self.clients.lock().unwrap();
        if max > 0 && clients.len() >= max {
            return false;
        }
        clients.insert(c.cid, c);
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn unregister_client(&self, c: &Arc<ClientShared>) {
        self.clients.lock().unwrap().remove(&c.cid);
        let (out_msgs, out_bytes, _) = c.out_counts();
        let meta = c.meta.lock().unwrap().clone();
        let mut closed = self.closed.lock().unwrap();
        if closed.len() >= MAX_CLOSED {
            closed.pop_front();
        }
        closed.push_back(ClosedConn {
            cid: c.cid,
            addr: c.addr,
            start: c.start,
            stop: SystemTime::now(),
            reason: c.close_reason().unwrap_or(CloseReason::ClientClosed).as_str(),
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
            in_msgs: c.in_msgs.load(Ordering::Relaxed),
            in_bytes: c.in_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            num_subs: c.num_subs.load(Ordering::Relaxed),
            user: meta.user,
            rtt: meta.rtt,
            last_activity: *c.last_activity.lock().unwrap(),
        });
    }

    /// The cluster's name ("" without a cluster).
    pub(crate) fn cluster_name(&self) -> String {
        self.cluster.read().unwrap().0.clone()
    }

    /// Whether the cluster name was generated rather than configured.
    pub(crate) fn cluster_dynamic(&self) -> bool {
        self.cluster.read().unwrap().1
    }

    /// A peer names another cluster: a generated name of ours gives way to a configured
    /// one, or to a greater generated one (nats-server's rule). Returns whether we now
    /// agree.
    pub(crate) fn adopt_cluster_name(&self, theirs: &str, theirs_dynamic: bool) -> bool {
        let mut c = self.cluster.write().unwrap();
        if c.0 == theirs {
            return true;
        }
        if theirs.is_empty() || theirs == "_" || !c.1 || (theirs_dynamic && c.0.as_str() >= theirs)
        {
            return false;
        }
        tracing::info!("Cluster name updated to {theirs}");
        *c = (theirs.to_string(), theirs_dynamic);
        true
    }

    /// Whether this server is part of a cluster (it has a route listener or routes).
    pub(crate) fn clustered(&self) -> bool {
        self.opts().cluster.as_ref().is_some_and(|c| c.port.is_some() || !c.routes.is_empty())
    }

    /// This server's client URLs as peers and clients should dial them (`host:port`):
    /// `client_advertise`, else the listener's address, every global unicast address of
    /// the machine for a wildcard host (nats-server's `getClientConnectURLs`).
    pub(crate) fn own_client_urls(&self) -> Vec<String> {
        let opts = self.opts();
        let port = self.client_addr.lock().unwrap().map_or(opts.port, |a| a.port());
        connect_urls(opts.client_advertise.as_deref(), &opts.host, port)
    }

    /// The WebSocket listener's URLs, as [`ServerInner::own_client_urls`].
    pub(crate) fn own_ws_urls(&self) -> Vec<String> {
        let opts = self.opts();
        let Some(w) = &opts.websocket else { return Vec::new() };
        let Some((addr, _)) = *self.websocket_addr.lock().unwrap() else { return Vec::new() };
        connect_urls(w.advertise.as_deref(), &ws_host(&opts), addr.port())
    }

    /// Sends an async INFO with the current `connect_urls` to every client that takes them,
    /// when the peers' URLs changed since the last push (a peer joined, left, lame duck).
    pub(crate) fn push_client_info(&self) {
        let generation = self.routes.urls_generation();
        if self.urls_pushed.swap(generation, Ordering::AcqRel) == generation {
            return;
        }
        if self.opts().cluster.as_ref().is_some_and(|c| c.no_advertise) {
            return;
        }
        let clients: Vec<_> = self.clients.lock().unwrap().values().cloned().collect();
        // One INFO per transport, then each client's own id and address (nats-server's
        // async INFO carries them).
        let mut infos: [Option<Info>; 2] = [None, None];
        for c in clients.iter().filter(|c| c.async_info.load(Ordering::Acquire)) {
            let ws = c.transport == Transport::Websocket;
            let mut i = infos[usize::from(ws)]
                .get_or_insert_with(|| {
                    let mut i = self.base_info();
                    let ctx = ConnCtx { transport: c.transport, ..ConnCtx::default() };
                    self.transport_info(&mut i, &ctx);
                    i
                })
                .clone();
            i.client_id = c.cid;
            i.client_ip = c.addr.ip().to_string();
            let mut line = BytesMut::new();
            chorus_proto::encode::info(&mut line, &serde_json::to_vec(&i).expect("INFO"));
            c.send_now(&line);
        }
    }

    /// The client (`ws`: WebSocket) URLs a client of this server is told: this server's own
    /// (unless it is in lame duck mode) and every peer's, when clustered and advertising.
    pub(crate) fn client_connect_urls(&self, ws: bool) -> Vec<String> {
        let opts = self.opts();
        if !self.clustered() || opts.cluster.as_ref().is_some_and(|c| c.no_advertise) {
            return Vec::new();
        }
        let mut urls = Vec::new();
        if !self.ldm.load(Ordering::Relaxed) {
            urls = if ws { self.own_ws_urls() } else { self.own_client_urls() };
        }
        for u in self.routes.peer_client_urls(ws) {
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
        urls
    }

    fn base_info(&self) -> Info {
        let opts = self.opts();
        let addr = self.client_addr.lock().unwrap().unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
        let clustered = self.clustered();
        // A server in lame duck mode points its clients at the others only.
        let (urls, ws_urls) = (self.client_connect_urls(false), self.client_connect_urls(true));
        Info {
            server_id: self.id.clone(),
            server_name: self.name.clone(),
            version: info::COMPAT_VERSION.to_string(),
            proto: info::PROTO,
            go: "rust".to_string(),
            host: opts.host.clone(),
            port: addr.port(),
            headers: !opts.no_header_support,
            max_payload: opts.max_payload,
            ldm: self.ldm.load(Ordering::Relaxed),
            api_lvl: info::API_LEVEL,
            xkey: self.xkey.clone(),
            chorus: info::CHORUS_VERSION.to_string(),
            jetstream: opts.jetstream.enabled,
            domain: opts.jetstream.domain.clone().filter(|_| opts.jetstream.enabled),
            cluster: clustered.then(|| self.cluster_name()),
            connect_urls: urls,
            ws_connect_urls: ws_urls,
            ..Info::default()
        }
    }

    /// What INFO says about the transport (nats-server's `generateClientInfoJSON`): TLS on
    /// the client port, or the WebSocket listener's host, port and scheme.
    fn transport_info(&self, i: &mut Info, ctx: &ConnCtx) {
        let opts = self.opts();
        if let Some(t) = &opts.tls {
            i.tls_required = ctx.tls_first || !opts.allow_non_tls;
            i.tls_available = !i.tls_required;
            i.tls_verify = t.verify || t.verify_and_map;
        }
        if ctx.transport == Transport::Websocket
            && let Some((addr, wss)) = *self.websocket_addr.lock().unwrap()
        {
            i.tls_required = wss;
            i.tls_available = wss;
            i.host = ws_host(&opts);
            i.port = addr.port();
            // WebSocket clients reconnect to WebSocket URLs: those go in connect_urls.
            i.connect_urls = std::mem::take(&mut i.ws_connect_urls);
        }
        i.ws_connect_urls.clear();
    }

    /// The INFO line a new client receives.
    pub(crate) fn client_info_json(
        &self,
        cid: u64,
        addr: SocketAddr,
        auth: &Auth,
        ctx: &ConnCtx,
    ) -> Vec<u8> {
        let mut i = self.base_info();
        i.client_id = cid;
        i.client_ip = addr.ip().to_string();
        // nats-server announces no auth to plain clients when `no_auth_user` would take a
        // CONNECT without credentials (a CONNECT is still required); WebSocket INFO keeps it.
        let anonymous_ok = ctx.transport != Transport::Websocket && auth.no_auth_user().is_some();
        i.auth_required = (auth.required() && !anonymous_ok)
            || (ctx.transport == Transport::Websocket
                && self.opts().websocket.as_ref().is_some_and(listener::websocket::auth_override));
        if auth.needs_nonce() {
            i.nonce = self.nonce_for(cid);
        }
        self.transport_info(&mut i, ctx);
        serde_json::to_vec(&i).expect("INFO serialises")
    }

    /// The NKey challenge of connection `cid`: 11 bytes of a keyed hash (SipHash, with a
    /// random key per server) of the cid, base64url like nats-server's 11 random bytes.
    /// Unique per connection and unpredictable without the key, and every code path that
    /// writes this client's INFO (plain, TLS upgrade, WebSocket) derives the same value
    /// without storing it. (An ed25519 signature did the same at ~100x the cost per connect.)
    pub(crate) fn nonce_for(&self, cid: u64) -> String {
        use base64::Engine as _;
        use std::hash::BuildHasher as _;
        let mut raw = [0u8; 16];
        for (i, half) in raw.chunks_mut(8).enumerate() {
            let h = self.nonce_key.hash_one((cid, i as u8));
            half.copy_from_slice(&h.to_le_bytes());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..11])
    }

    /// The account a user is bound to: `None` or `$G` is the global account.
    pub fn account(&self, name: Option<&str>) -> Option<Arc<Account>> {
        match name {
            None | Some(GLOBAL_ACCOUNT) => Some(self.gacc.clone()),
            Some(n) => self.accounts.read().unwrap().get(n).cloned(),
        }
    }

    /// The account named `name`, created if it does not exist yet (an account JWT pushed to
    /// the full resolver).
    pub(crate) fn account_or_create(&self, name: &str) -> Arc<Account> {
        if let Some(a) = self.account(Some(name)) {
            return a;
        }
        let cache = !self.opts().disable_sublist_cache;
        self.accounts
            .write()
            .unwrap()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Account::new(name, cache)))
            .clone()
    }

    /// Every account but `$G`, by name.
    pub(crate) fn accounts(&self) -> FxHashMap<String, Arc<Account>> {
        self.accounts.read().unwrap().clone()
    }

    /// The global account and every configured one (monitoring walks their sublists).
    pub(crate) fn all_accounts(&self) -> Vec<Arc<Account>> {
        let mut v = vec![self.gacc.clone()];
        v.extend(self.accounts.read().unwrap().values().cloned());
        v
    }

    /// The async INFO sent after the first PONG, naming the bound account.
    pub(crate) fn connect_info_json(
        &self,
        cid: u64,
        addr: SocketAddr,
        acc: &Account,
        ctx: &ConnCtx,
    ) -> Vec<u8> {
        let mut i = self.base_info();
        i.client_id = cid;
        i.client_ip = addr.ip().to_string();
        i.auth_required = self.auth().required();
        i.connect_info = true;
        i.remote_account = acc.name.clone();
        self.transport_info(&mut i, ctx);
        serde_json::to_vec(&i).expect("INFO serialises")
    }
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    inner: Arc<ServerInner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds the listeners and starts serving. Port 0 (client or monitor) picks a free port.
    pub async fn start(opts: Options) -> Result<Server, ServerError> {
        let auth = Auth::from_options(&opts)?;
        let keys = info::ServerKeys::generate();
        let id = keys.id;
        let name = if opts.server_name.is_empty() { id.clone() } else { opts.server_name.clone() };
        // A named system account must exist (nats-server checks this at start, not under -t).
        if auth.trust().is_none()
            && let Some(n) = &opts.system_account
            && !opts.accounts.iter().any(|a| &a.name == n)
        {
            return Err(ServerError::Config(
                "error resolving system account: account missing".into(),
            ));
        }
        check_cluster(&opts)?;
        let gacc = Arc::new(Account::new(GLOBAL_ACCOUNT, !opts.disable_sublist_cache));
        let accounts = build_accounts(&opts, &auth, None);
        configure_accounts(None, &opts, &auth, &accounts, &gacc)?;
        let system = system_account_name(&opts, &auth);
        let inner = Arc::new(ServerInner {
            auth: RwLock::new(Arc::new(auth)),
            id,
            xkey: keys.xkey,
            nonce_key: std::collections::hash_map::RandomState::new(),
            accounts: RwLock::new(accounts),
            name,
            gacc,
            clients: Mutex::new(FxHashMap::default()),
            closed: Mutex::new(Default::default()),
            next_cid: AtomicU64::new(0),
            stats: Arc::new(Stats::default()),
            routes: Routes::new(),
            jetstream: Mutex::new(None),
            shutdown: CancellationToken::new(),
            accept_stop: CancellationToken::new(),
            ldm: AtomicBool::new(false),
            start_time: SystemTime::now(),
            client_addr: Mutex::new(None),
            monitor_addr: Mutex::new(None),
            websocket_addr: Mutex::new(None),
            config_load_time: Mutex::new(SystemTime::now()),
            sys_seq: AtomicU64::new(0),
            cluster_addr: Mutex::new(None),
            cluster: RwLock::new(cluster_identity(&opts)),
            urls_pushed: AtomicU64::new(0),
            raft: std::sync::OnceLock::new(),
            opts: RwLock::new(Arc::new(opts.clone())),
        });

        // TLS files are read before anything listens, so a bad block fails the start.
        let client_tls = opts.tls.as_ref().map(TlsSetup::from_options).transpose()?.map(Arc::new);
        let ws = opts.websocket.as_ref().filter(|w| w.port.is_some());
        let ws_tls = match ws.and_then(|w| w.tls.as_ref()) {
            Some(t) => Some(Arc::new(TlsSetup::from_options(t)?)),
            None => None,
        };

        // JetStream before any listener: its internal subscriptions exist before a client can
        // publish. Until the start succeeds, a failure cancels the shutdown token, which stops
        // the JetStream thread (and closes its store) and every task spawned so far.
        let start_guard = inner.shutdown.clone().drop_guard();
        let js_task =
            if opts.jetstream.enabled { Some(crate::jetstream::start(&inner)?) } else { None };

        let addr = format!("{}:{}", opts.host, opts.port);
        let client_listener = listener::bind(&addr)
            .await
            .map_err(|source| ServerError::Listen { addr: addr.clone(), source })?;
        let local =
            client_listener.local_addr().map_err(|source| ServerError::Listen { addr, source })?;
        *inner.client_addr.lock().unwrap() = Some(local);

        let mut tasks = Vec::new();
        if let Some(port) = opts.http_port {
            let maddr = format!("{}:{}", opts.http_host, port);
            let ml = TcpListener::bind(&maddr)
                .await
                .map_err(|source| ServerError::Listen { addr: maddr.clone(), source })?;
            let mlocal =
                ml.local_addr().map_err(|source| ServerError::Listen { addr: maddr, source })?;
            *inner.monitor_addr.lock().unwrap() = Some(mlocal);
            tracing::info!("Starting http monitor on {}:{}", opts.http_host, mlocal.port());
            tasks.push(tokio::spawn(monitor::serve(inner.clone(), ml)));
        }
        if let Some(w) = ws {
            let whost = ws_host(&opts);
            let waddr = format!("{whost}:{}", w.port.unwrap_or(0));
            let wl = listener::bind(&waddr)
                .await
                .map_err(|source| ServerError::Listen { addr: waddr.clone(), source })?;
            let wlocal =
                wl.local_addr().map_err(|source| ServerError::Listen { addr: waddr, source })?;
            let scheme = if ws_tls.is_some() { "wss" } else { "ws" };
            *inner.websocket_addr.lock().unwrap() = Some((wlocal, ws_tls.is_some()));
            tracing::info!(
                "Listening for websocket clients on {scheme}://{whost}:{}",
                wlocal.port()
            );
            if ws_tls.is_none() {
                tracing::warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
            }
            tasks.push(tokio::spawn(listener::websocket::accept_loop(
                inner.clone(),
                wl,
                ws_tls,
                client::handoff,
            )));
        }
        tracing::info!("Listening for client connections on {}:{}", opts.host, local.port());
        if let Some(t) = &client_tls {
            tracing::info!("TLS required for client connections");
            if t.handshake_first {
                tracing::info!(
                    "Clients that are not using \"TLS Handshake First\" option will fail"
                );
            }
        }
        if let Some(c) = &opts.cluster {
            // The system account gets its own connections whenever routes are pooled, as
            // nats-server pins it.
            let mut pinned = c.accounts.clone();
            if let Some(sys) = system.clone().filter(|s| !pinned.contains(s)) {
                pinned.push(sys);
            }
            inner.routes.configure(c.pool_size, pinned);
            crate::interest::advertise_system(&inner);
            crate::route::conn::start(&inner, &mut tasks).await?;
        }
        tracing::info!("Server is ready");
        tasks.push(tokio::spawn(listener::accept_loop(
            inner.clone(),
            client_listener,
            client_tls,
            client::handoff,
        )));
        tasks.extend(js_task);
        start_guard.disarm();
        Ok(Server { inner, tasks })
    }

    pub fn inner(&self) -> &Arc<ServerInner> {
        &self.inner
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.inner.client_addr.lock().unwrap().expect("bound in start")
    }

    /// `nats://host:port` for the client listener (with 127.0.0.1 for a wildcard host).
    pub fn client_url(&self) -> String {
        let a = self.client_addr();
        let ip = if a.ip().is_unspecified() { "127.0.0.1".to_string() } else { a.ip().to_string() };
        format!("nats://{ip}:{}", a.port())
    }

    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        *self.inner.monitor_addr.lock().unwrap()
    }

    /// The WebSocket listener's address, if one is configured.
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        self.inner.websocket_addr.lock().unwrap().map(|(a, _)| a)
    }

    /// `ws://host:port` or `wss://host:port` of the WebSocket listener (127.0.0.1 for a
    /// wildcard host).
    pub fn websocket_url(&self) -> Option<String> {
        let (a, wss) = (*self.inner.websocket_addr.lock().unwrap())?;
        let ip = if a.ip().is_unspecified() { "127.0.0.1".to_string() } else { a.ip().to_string() };
        Some(format!("{}://{ip}:{}", if wss { "wss" } else { "ws" }, a.port()))
    }

    /// The route listener's address, if the server is in a cluster.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        *self.inner.cluster_addr.lock().unwrap()
    }

    /// `nats-route://host:port` of the route listener (127.0.0.1 for a wildcard host).
    pub fn route_url(&self) -> Option<String> {
        let a = self.cluster_addr()?;
        let ip = if a.ip().is_unspecified() { "127.0.0.1".to_string() } else { a.ip().to_string() };
        Some(format!("nats-route://{ip}:{}", a.port()))
    }

    /// Route connections up (/varz `routes`), and distinct peers (/varz `remotes`).
    pub fn num_routes(&self) -> (usize, usize) {
        (self.inner.routes.links().len(), self.inner.routes.num_remotes())
    }

    /// Whether anyone, here or on a peer, is interested in `subject` of the global account.
    pub fn has_interest(&self, subject: &str) -> bool {
        self.inner.gacc.sublist.has_interest(subject.as_bytes())
    }

    /// The JetStream runtime's counters, while it runs.
    pub fn jetstream_stats(&self) -> Option<Arc<crate::jetstream::JetStreamStats>> {
        self.inner.jetstream.lock().unwrap().as_ref().map(|h| h.stats())
    }

    pub fn num_clients(&self) -> usize {
        self.inner.clients.lock().unwrap().len()
    }

    pub fn num_subscriptions(&self) -> usize {
        self.inner.gacc.sublist.count()
    }

    /// Applies new options the way nats-server's reload does: only reloadable options may
    /// change; anything else is refused and nothing is applied.
    pub fn reload(&self, new: Options) -> Result<Vec<&'static str>, ServerError> {
        let old = self.inner.opts();
        let changed = old.reload_diff(&new).map_err(|e| ServerError::Config(e.to_string()))?;
        if old.cluster != new.cluster {
            // nats-server applies route changes on reload; Chorus does not yet, so it refuses
            // them rather than pretend (docs/missing.md).
            return Err(ServerError::Config(
                "config reload: changes to the cluster block are not supported yet; restart \
                 the server to apply them"
                    .into(),
            ));
        }
        let auth = Auth::from_options(&new)?;
        let accounts = build_accounts(&new, &auth, Some(&self.inner.accounts.read().unwrap()));
        configure_accounts(Some(&self.inner), &new, &auth, &accounts, &self.inner.gacc)?;
        *self.inner.auth.write().unwrap() = Arc::new(auth);
        *self.inner.accounts.write().unwrap() = accounts;
        *self.inner.opts.write().unwrap() = Arc::new(new);
        *self.inner.config_load_time.lock().unwrap() = SystemTime::now();
        for c in &changed {
            tracing::info!("Reloaded: {c}");
        }
        tracing::info!("Reloaded server configuration");
        Ok(changed)
    }

    /// Lame-duck mode: stop accepting, tell clients (`ldm` in INFO) so they move elsewhere,
    /// wait the grace period, then close the remaining clients spread over the rest of
    /// `lame_duck_duration`, and shut down.
    pub async fn lame_duck(self) {
        let inner = &self.inner;
        if inner.ldm.swap(true, Ordering::SeqCst) {
            return;
        }
        let opts = inner.opts();
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        inner.accept_stop.cancel();
        crate::route::conn::send_lame_duck(inner);
        let clients: Vec<_> = inner.clients.lock().unwrap().values().cloned().collect();
        let mut info = inner.base_info();
        info.ldm = true;
        let mut line = BytesMut::new();
        chorus_proto::encode::info(&mut line, &serde_json::to_vec(&info).expect("INFO"));
        for c in &clients {
            c.send_now(&line);
        }
        // Nobody to move: done (nats-server shuts down at once too).
        if clients.is_empty() {
            self.shutdown().await;
            return;
        }
        let grace = opts.lame_duck_grace_period;
        tracing::info!("Waiting {:?} grace period before closing clients", grace);
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = inner.shutdown.cancelled() => {}
        }
        tracing::info!("Closing existing clients");
        let clients: Vec<_> = inner.clients.lock().unwrap().values().cloned().collect();
        // Spread the closes over what is left of the duration, at most 1 s apart, with some
        // jitter (at least half the interval) so reconnects do not arrive in lockstep.
        let spread = opts.lame_duck_duration.saturating_sub(grace).max(Duration::from_secs(1));
        let step = (spread / clients.len().max(1) as u32).min(Duration::from_secs(1));
        let last = clients.len().saturating_sub(1);
        for (i, c) in clients.into_iter().enumerate() {
            if inner.shutdown.is_cancelled() {
                break;
            }
            c.close(CloseReason::ServerShutdown, true);
            if i < last && !step.is_zero() {
                let jitter = rand::random_range(step / 2..=step);
                tokio::time::sleep(jitter).await;
            }
        }
        self.shutdown().await;
    }

    /// Graceful shutdown: stop accepting, let each client flush what is queued (bounded),
    /// then end every task.
    pub async fn shutdown(self) {
        let inner = self.inner.clone();
        tracing::info!("Initiating Shutdown...");
        inner.accept_stop.cancel();
        let clients: Vec<_> = inner.clients.lock().unwrap().values().cloned().collect();
        for c in &clients {
            c.close(CloseReason::ServerShutdown, true);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !inner.clients.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        inner.routes.close_all();
        inner.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        while !inner.clients.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::info!("Server Exiting..");
    }
}

/// The WebSocket listener's interface: its own `host`, else the client listener's.
fn ws_host(opts: &Options) -> String {
    match opts.websocket.as_ref().map(|w| w.host.as_str()) {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => opts.host.clone(),
    }
}

/// Accounts from `accounts {}`. On reload, accounts that still exist keep their object (and
/// so their subscriptions); new ones are created.
fn build_accounts(
    opts: &Options,
    auth: &Auth,
    old: Option<&FxHashMap<String, Arc<Account>>>,
) -> FxHashMap<String, Arc<Account>> {
    // In operator mode the accounts are the resolver's account JWTs, named by public key
    // (their signatures are checked by chorus-auth before the server starts).
    let jwt_accounts = auth.trust().map(|t| t.account_keys()).unwrap_or_default();
    let system = system_account_name(opts, auth);
    opts.accounts
        .iter()
        .map(|a| &a.name)
        .chain(jwt_accounts.iter())
        .chain(system.as_ref())
        .filter(|name| name.as_str() != GLOBAL_ACCOUNT)
        .map(|name| {
            let acc = old
                .and_then(|o| o.get(name).cloned())
                .unwrap_or_else(|| Arc::new(Account::new(name, !opts.disable_sublist_cache)));
            (name.clone(), acc)
        })
        .collect()
}

/// The system account's name: `system_account` (or in operator mode the operator JWT's
/// `system_account`), else `$SYS`, created by default as nats-server does unless
/// `no_system_account`.
pub(crate) fn system_account_name(opts: &Options, auth: &Auth) -> Option<String> {
    let named = opts
        .system_account
        .clone()
        .or_else(|| auth.trust().and_then(|t| t.system_account()).map(String::from));
    match named {
        Some(n) => Some(n),
        None if opts.no_system_account => None,
        None => Some(SYSTEM_ACCOUNT.to_string()),
    }
}

/// Checks what only wiring the accounts reveals (imports that are not authorized or form a
/// cycle, bad mappings), without starting anything: `-t` runs this after parsing.
pub fn check_accounts(opts: &Options) -> Result<(), ServerError> {
    check_cluster(opts)?;
    let auth = Auth::from_options(opts)?;
    let gacc = Arc::new(Account::new(GLOBAL_ACCOUNT, false));
    let accounts = build_accounts(opts, &auth, None);
    configure_accounts(None, opts, &auth, &accounts, &gacc)
}

/// Applies `accounts {}` exports, imports, mappings and limits (and the top-level `mappings`
/// of `$G`), with nats-server's errors for imports that are not authorized.
/// `srv`: the running server (a reload); `None` before it exists, when no account has
/// subscriptions yet.
fn configure_accounts(
    srv: Option<&ServerInner>,
    opts: &Options,
    auth: &Auth,
    accounts: &FxHashMap<String, Arc<Account>>,
    gacc: &Arc<Account>,
) -> Result<(), ServerError> {
    let get = |n: &str| {
        if n == GLOBAL_ACCOUNT { Some(gacc.clone()) } else { accounts.get(n).cloned() }
    };
    if let Some(sys) = system_account_name(opts, auth).and_then(|n| get(&n)) {
        sys.set_system(true);
    }
    if let Some(trust) = auth.trust() {
        account::system::configure_jwt_accounts(srv, trust, accounts);
    }
    let cfg = |e: account::ImportError| ServerError::Config(e.to_string());
    // Exports first: imports check them.
    for a in &opts.accounts {
        let Some(acc) = get(&a.name) else { continue };
        let (streams, services) = account::exports_from_options(a);
        account::set_exports(&acc, streams, services);
        let lim = |v: Option<i64>| v.and_then(|n| usize::try_from(n).ok());
        acc.set_limits(account::Limits {
            max_connections: lim(a.limits.max_connections),
            max_subscriptions: lim(a.limits.max_subscriptions),
            max_payload: lim(a.limits.max_payload),
        });
    }
    for a in &opts.accounts {
        let Some(acc) = get(&a.name) else { continue };
        let current = acc.routing();
        let mut b = account::RoutingBuilder {
            stream_exports: current.stream_exports.clone(),
            service_exports: current.service_exports.clone(),
            ..Default::default()
        };
        for im in &a.imports {
            let Some(exp) = get(&im.account) else {
                return Err(ServerError::Config(format!(
                    "{:?} account not defined for import",
                    im.account
                )));
            };
            match im.kind {
                chorus_conf::ExportKind::Stream => {
                    let si = account::stream_import(
                        &a.name,
                        &exp,
                        &im.subject,
                        im.to.as_deref(),
                        im.prefix.as_deref(),
                        false,
                    )
                    .map_err(cfg)?;
                    b.stream_imports.push(Arc::new(si));
                }
                chorus_conf::ExportKind::Service => {
                    let si = account::service_import(
                        &a.name,
                        &exp,
                        &im.subject,
                        im.to.as_deref(),
                        im.share,
                        false,
                    )
                    .map_err(cfg)?;
                    b.service_imports.push(Arc::new(si));
                }
            }
        }
        b.mappings = account::mappings_from_options(&a.mappings).map_err(cfg)?;
        let changed = account::system::imports_differ(&current, &b);
        acc.set_routing(b.build());
        if changed && let Some(srv) = srv {
            crate::interest::refresh_shadows(srv, &acc);
        }
    }
    if !opts.mappings.is_empty() {
        let current = gacc.routing();
        gacc.set_routing(
            account::RoutingBuilder {
                stream_exports: current.stream_exports.clone(),
                service_exports: current.service_exports.clone(),
                mappings: account::mappings_from_options(&opts.mappings).map_err(cfg)?,
                ..Default::default()
            }
            .build(),
        );
    }
    Ok(())
}

/// Cluster options an operator relies on for safety are refused, never ignored.
fn check_cluster(opts: &Options) -> Result<(), ServerError> {
    let clustered = opts.cluster.as_ref().is_some_and(|c| c.port.is_some() || !c.routes.is_empty());
    if let Some(c) = opts.cluster.as_ref().filter(|_| clustered) {
        // Options an operator relies on for safety are refused, never ignored.
        if c.tls.is_some() {
            return Err(ServerError::Config(
                "cluster.tls: TLS on routes is not supported yet (see docs/missing.md); routes \
                 would run unencrypted"
                    .into(),
            ));
        }
        if c.permissions.is_some() {
            return Err(ServerError::Config(
                "cluster.permissions: route import/export permissions are not supported yet \
                 (see docs/missing.md)"
                    .into(),
            ));
        }
        if c.compression.mode.starts_with("s2") {
            tracing::warn!(
                "cluster.compression {:?}: Chorus does not compress routes; they run \
                 uncompressed",
                c.compression.mode
            );
        }
    }
    Ok(())
}

/// The cluster name a server starts with: the configured one, else a generated one (as
/// nats-server's `nuid`) marked dynamic.
fn cluster_identity(opts: &Options) -> (String, bool) {
    match opts.cluster.as_ref() {
        Some(c) if c.name.is_some() => (c.name.clone().unwrap_or_default(), false),
        Some(c) if c.port.is_some() || !c.routes.is_empty() => {
            let id = info::new_nonce().replace(['-', '_'], "");
            (format!("{id}{}", rand::random_range(100_000..999_999)), true)
        }
        _ => (String::new(), false),
    }
}

/// `host:port` URLs for a listener: the advertised address, or the host, or for a wildcard
/// host every global unicast address of the machine (loopback when there is none).
fn connect_urls(advertise: Option<&str>, host: &str, port: u16) -> Vec<String> {
    if let Some(a) = advertise.filter(|a| !a.is_empty()) {
        return vec![if a.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            a.to_string()
        } else {
            format!("{a}:{port}")
        }];
    }
    let join = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            let ips = global_unicast_addresses();
            if ips.is_empty() {
                vec![format!("127.0.0.1:{port}")]
            } else {
                ips.into_iter().map(join).collect()
            }
        }
        Ok(ip) => vec![join(ip)],
        Err(_) => vec![format!("{host}:{port}")],
    }
}

/// The machine's global unicast addresses (not loopback, link-local or multicast).
fn global_unicast_addresses() -> Vec<std::net::IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let ip: std::net::IpAddr = if let Some(v4) = sa.as_sockaddr_in() {
            std::net::IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            std::net::IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let global = match ip {
            std::net::IpAddr::V4(v) => {
                !(v.is_loopback()
                    || v.is_link_local()
                    || v.is_multicast()
                    || v.is_broadcast()
                    || v.is_unspecified())
            }
            std::net::IpAddr::V6(v) => {
                !(v.is_loopback()
                    || v.is_unicast_link_local()
                    || v.is_multicast()
                    || v.is_unspecified())
            }
        };
        if global && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}
