//! The JetStream runtime: streams served from `chorus-store`, with the rules of
//! `chorus-jetstream` (ARCHITECTURE.md, "JetStream: state machine first").
//!
//! # Layout
//!
//! ```text
//! mod.rs       start/stop, the runtime thread: batching, group commit, timers
//! internal.rs  InternalSink (internal subscriptions -> bounded queue), Outbox (the server's
//!              own publishes into an account)
//! stream.rs    one stream: config, store, duplicate window, publish path, info numbers
//! api.rs       $JS.API.* requests and direct gets
//! consumer.rs  consumers: their API, pull requests, acks, timers, snapshots
//! jsz.rs       the `/jsz` monitoring report, built on this thread
//! push.rs      push consumers: deliver-subject interest, flow control answers, pacing
//! ```
//!
//! # How a message travels
//!
//! ```text
//! client reader task ── route ── Client::deliver ── sub.client.internal? ── InternalSink
//!        (no waiting: copy into Bytes, push on a bounded queue, or refuse: internal.rs)
//!                                                                      │
//! runtime thread: take everything queued (up to a batch) ──────────────┘
//!   for each: $JS.API request -> api.rs; stream subject -> check_publish -> store.append
//!     (appends are buffered in the stream's store: reads see them at once)
//!   timers (max_age / TTL expiry, duplicate window)
//!   write: ONE database write per changed stream, then the consumers' snapshots
//!   hand the batch (its replies) to the sync thread ─────────┐   and take the next batch
//!                                                            ▼
//! sync thread: take every batch handed over so far, ONE fsync for all of them  <- durable
//!   then their replies in order: PubAcks, API responses, deliveries -> subscribers' buffers
//!   wake each touched writer once
//! ```
//!
//! The two threads form a pipeline: while the sync thread waits on the disk, the runtime
//! thread stores and writes the next batches (RocksDB appends to its log while a sync of it
//! runs), so when one fsync ends, everything stored meanwhile is written and the next fsync
//! covers all of it at once. At most [`MAX_FLIGHTS`] batches and [`MAX_FLIGHT_BYTES`] of
//! replies wait for the sync thread (then the runtime thread waits), so memory stays bounded. Replies leave in batch order, and nothing
//! stored is shown to anyone (ack, delivery, direct get) before the fsync that covers it.
//!
//! An internal subscription is an ordinary [`Subscription`] in the account sublist whose
//! client is an internal [`ClientShared`] carrying the sink; its sid names the target
//! (`api`, `s<id>` for a stream's subjects, `d<id>` for its direct-get subjects, `next` and
//! `ack` for the account's consumers' pull requests and acks). A subject no
//! stream captures has no such subscription, so a publisher asking for an ack gets
//! no-responders from the ordinary routing path.
//!
//! # Durability
//!
//! By default a PubAck is sent only after the batch that stored the message was synced
//! (`DB::flush_wal(true)`: one fsync per batch or fewer, however many messages and streams
//! it holds).
//! `sync_interval: always` is the same. An explicitly configured `sync_interval` other than
//! nats-server's default of 2 minutes gives nats-server's weaker behaviour instead: acks go
//! out once the write reached the operating system, and the store is synced at that
//! interval. (The options cannot tell a written `sync_interval: "2m"` from the default, so
//! that one value also means "sync every batch".) Memory streams are never synced.
//!
//! What waits for a sync is what a reply promises: stored messages (PubAcks, and deliveries
//! of messages stored in the same batch) and API changes. Consumer states, messages removed
//! by acks (workqueue, interest) and by expiry are written with their batch but synced with
//! the next batch that syncs anyway, or within [`LAZY_SYNC`]: a crash can only bring back an
//! acked message for redelivery (at-least-once, as nats-server, which syncs consumer state
//! on an interval too), never lose an acknowledged one.
//!
//! # Why a thread
//!
//! RocksDB calls block (an fsync takes milliseconds). The runtime runs on its own OS thread so
//! no tokio worker ever waits on the disk; the thread blocks on its queue between batches.
//! It owns the store and every stream, so there are no locks around them. Shutdown: the
//! server's shutdown token wakes it; it syncs, drops the database and is joined before
//! [`crate::Server::shutdown`] returns (a restart on the same store directory then opens
//! cleanly).
//!
//! # Store layout
//!
//! One RocksDB database per server in `<store_dir>/jetstream/chorus-rocksdb` (the default
//! store dir is nats-server's: `$TMPDIR/nats`). Streams are named `<account>/<stream>` in it
//! (stream names cannot contain `/`). Memory streams keep only their definition there, so
//! they come back empty after a restart, as in nats-server.
//!
//! # Accounts
//!
//! As in nats-server: without configured accounts the global account has JetStream, without
//! limits; with accounts, each one whose `jetstream` is enabled has it, with its limits
//! (streams, consumers, memory and storage, checked at create and at publish), and every
//! other account (the global one included) gets 10039 "JetStream not enabled for account"
//! from the whole API. In operator mode, an account JWT whose limits give it storage has
//! JetStream with those limits (decided at start; claims updates do not change it yet).

mod api;
mod cluster;
mod consumer;
mod internal;
mod jsz;
mod meta;
mod push;
mod replica;
mod stream;

pub use jsz::{JsInfo, JszOptions};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_conf::{DEFAULT_SYNC_INTERVAL, Options, SyncInterval};
use chorus_jetstream::ApiError;
use chorus_jetstream::api::account::AccountLimits;
use chorus_store::{MemStore, StorageKind, Store, StreamStore};
use rustc_hash::FxHashMap;
use tokio::task::JoinHandle;

use crate::account::Account;
use crate::server::ServerInner;
use crate::sub::{ClientShared, SubRef, Subscription};

use crate::internal::Outbox;
pub(crate) use internal::{API_AUDIT_SUBJECT, InternalSink};
use internal::{InternalMsg, QueueLimits, Target, Work};
use stream::{Definition, Stream, limits_of, now_nanos, storage_kind};

/// Most messages taken off the queue for one batch (one sync).
const MAX_BATCH_MSGS: usize = 8192;
/// Most batches handed to the sync thread and not answered yet.
const MAX_FLIGHTS: usize = 64;
/// Most reply bytes (payloads, subjects, bookkeeping) handed to the sync thread and not
/// answered yet; past it the runtime thread waits (a slow disk holds back publishers through
/// the bounded queue in front of that thread instead of growing memory).
const MAX_FLIGHT_BYTES: usize = 64 * 1024 * 1024;
/// Most bytes taken off the queue for one batch.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Longest a lazy change (see [`Runtime::lazy`]) stays unsynced while batches go by.
const LAZY_SYNC: Duration = Duration::from_secs(1);
/// Longest sleep of the runtime thread without work (it rechecks the shutdown flag).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// The directory nats-server would use for JetStream data: `<store_dir>/jetstream`, or
/// `$TMPDIR/nats/jetstream` when no store directory is configured.
pub fn store_dir(opts: &Options) -> PathBuf {
    match &opts.jetstream.store_dir {
        Some(d) => d.join("jetstream"),
        None => std::env::temp_dir().join("nats").join("jetstream"),
    }
}

/// Where the RocksDB database lives inside [`store_dir`].
pub fn database_dir(opts: &Options) -> PathBuf {
    store_dir(opts).join("chorus-rocksdb")
}

/// Why JetStream could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not create storage directory {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("could not open the store in {dir}: {source}")]
    Store { dir: PathBuf, source: chorus_store::StoreError },
    #[error("could not start the JetStream thread: {0}")]
    Thread(std::io::Error),
    #[error("could not start clustered JetStream: {0}")]
    Cluster(String),
}

/// Whether JetStream runs clustered: a cluster block with a port or routes.
pub(crate) fn clustered(opts: &Options) -> bool {
    opts.cluster.as_ref().is_some_and(|c| c.port.is_some() || !c.routes.is_empty())
}

/// Figures the monitor and tests read while the runtime runs.
#[derive(Debug, Default)]
pub struct JetStreamStats {
    /// Batches committed (each at most one sync).
    pub batches: AtomicU64,
    /// Store syncs.
    pub syncs: AtomicU64,
    /// Messages stored.
    pub stored: AtomicU64,
    /// Messages refused because the runtime's queue was full.
    pub refused: AtomicU64,
}

/// Opens the store, recovers every stream, subscribes them and starts the runtime thread.
/// Returns the task that stops it on the server's shutdown token and waits for it.
pub(crate) fn start(srv: &Arc<ServerInner>) -> Result<JoinHandle<()>, StartError> {
    let opts = srv.opts();
    let dir = store_dir(&opts);
    std::fs::create_dir_all(&dir).map_err(|source| StartError::Dir { dir: dir.clone(), source })?;
    let db = database_dir(&opts);
    let store = Store::open(&db).map_err(|source| StartError::Store { dir: db.clone(), source })?;
    tracing::info!("Starting JetStream");
    if opts.jetstream.store_dir.is_none() {
        tracing::warn!("Temporary storage directory used, data could be lost on system reboot");
    }
    tracing::info!("  Store Directory: \"{}\"", dir.display());
    if let Some(d) = &opts.jetstream.domain {
        tracing::info!("  Domain:          {d}");
    }

    let (tx, rx) = std::sync::mpsc::channel();
    let js = &opts.jetstream;
    let limit = |v: Option<i64>, default: usize| {
        v.filter(|n| *n > 0).map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let defaults = QueueLimits::default();
    let limits = QueueLimits {
        msgs: limit(js.max_buffered_msgs, defaults.msgs),
        bytes: limit(js.max_buffered_size, defaults.bytes),
        api_requests: limit(js.request_queue_limit, defaults.api_requests),
    };
    let stats = Arc::new(JetStreamStats::default());
    let sink = InternalSink::new(tx, limits, srv, stats.clone());
    let sync = match js.sync_interval {
        SyncInterval::Always => SyncPolicy::EachBatch,
        SyncInterval::Every(d) if d == DEFAULT_SYNC_INTERVAL => SyncPolicy::EachBatch,
        SyncInterval::Every(d) => SyncPolicy::Every(d),
    };
    let mut rt = Runtime {
        srv: srv.clone(),
        store,
        sink: sink.clone(),
        accounts: BTreeMap::new(),
        disabled: BTreeMap::new(),
        next_id: 0,
        out: Vec::new(),
        dirty: false,
        lazy: false,
        sync,
        last_sync: Instant::now(),
        stats,
        consumers_dirty: Default::default(),
        flights: None,
        syncer: None,
        in_flight: Arc::new(InFlight::default()),
        push: Default::default(),
        cluster: None,
    };
    if clustered(&opts) {
        let log: Arc<dyn chorus_store::RaftLog> = Arc::new(rt.store.clone());
        let ctl = cluster::Cluster::new(srv, log, sink.clone()).map_err(StartError::Cluster)?;
        tracing::info!("  Raft node:       {}", cluster::peer_id(ctl.node));
        rt.cluster = Some(meta::ClusterRt::new(ctl));
    }
    *srv.jetstream.lock().unwrap() =
        Some(Handle { stats: rt.stats.clone(), sink: rt.sink.clone() });
    let (enabled, disabled) = jetstream_accounts(srv, &opts);
    for (account, limits) in enabled {
        rt.enable_account(&account, limits);
    }
    for account in disabled {
        rt.disable_account(&account);
    }
    let n: usize = rt.accounts.values().map(|a| a.streams.len()).sum();
    if n > 0 {
        tracing::info!("  Recovered {n} stream(s)");
    }
    // A recovered replica rejoins its group; the meta log then replays what changed.
    let ctl = rt.cluster.as_ref().map(|c| c.ctl.clone());
    if let Some(c) = &rt.cluster {
        let mine: Vec<meta::StreamAssignment> =
            c.meta.streams.values().filter(|a| a.peers.contains(&c.ctl.node)).cloned().collect();
        for sa in mine {
            rt.open_replica(&sa);
        }
    }
    if let Some(c) = &ctl {
        c.start();
    }
    tracing::info!("JetStream ready");

    let (ftx, frx) = std::sync::mpsc::sync_channel(MAX_FLIGHTS);
    let syncer = Syncer {
        store: rt.store.clone(),
        srv: srv.clone(),
        stats: rt.stats.clone(),
        in_flight: rt.in_flight.clone(),
    };
    rt.syncer = Some(
        std::thread::Builder::new()
            .name("chorus-js-sync".into())
            .spawn(move || syncer.run(frx))
            .map_err(StartError::Thread)?,
    );
    rt.flights = Some(ftx);

    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let handle = std::thread::Builder::new()
        .name("chorus-jetstream".into())
        .spawn(move || rt.run(rx, &thread_stop))
        .map_err(StartError::Thread)?;
    let shutdown = srv.shutdown.clone();
    Ok(tokio::spawn(async move {
        shutdown.cancelled().await;
        // The groups stop first: nothing applies into a runtime that is going away.
        if let Some(c) = ctl {
            c.shutdown().await;
        }
        stop.store(true, Ordering::Release);
        sink.wake();
        let handle = Mutex::new(Some(handle));
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = handle.lock().unwrap().take()
                && h.join().is_err()
            {
                tracing::error!("JetStream runtime thread panicked");
            }
        })
        .await;
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncPolicy {
    /// One sync per batch, before its acks (the default).
    EachBatch,
    /// Sync at this interval; acks do not wait.
    Every(Duration),
}

/// A reply produced by a batch, sent after the batch's sync.
struct Reply {
    account: Arc<Account>,
    subject: Bytes,
    /// Deliveries carry their ack subject here.
    reply: Option<Bytes>,
    /// Deliveries: the message's own subject (`subject` is then the inbox routed to).
    shown_as: Option<Bytes>,
    headers: Option<Vec<u8>>,
    payload: Bytes,
    /// For a PubAck of a file stream: the stream name, so a failed sync turns it into an error.
    file_ack: Option<Arc<str>>,
}

impl Reply {
    /// Memory it holds, roughly: what bounds the replies waiting for a sync.
    fn size(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        std::mem::size_of::<Reply>()
            + self.subject.len()
            + self.payload.len()
            + opt(&self.reply)
            + opt(&self.shown_as)
            + self.headers.as_ref().map_or(0, Vec::len)
    }
}

/// Which accounts get JetStream, as nats-server decides: with no accounts configured, the
/// global account (unlimited); otherwise each configured account whose `jetstream` is
/// enabled, with its limits. Every other account answers JetStream API requests with
/// 10039 "JetStream not enabled for account".
fn jetstream_accounts(
    srv: &ServerInner,
    opts: &Options,
) -> (Vec<EnabledAccount>, Vec<Arc<Account>>) {
    let system = crate::server::system_account_name(opts, &srv.auth());
    let configured: Vec<_> =
        opts.accounts.iter().filter(|a| system.as_deref() != Some(a.name.as_str())).collect();
    if configured.is_empty() && opts.operator.is_empty() {
        return (vec![(srv.gacc.clone(), AccountLimits::UNLIMITED)], Vec::new());
    }
    let mut enabled = Vec::new();
    let mut disabled = vec![srv.gacc.clone()];
    // Operator mode: an account JWT with JetStream limits (memory or disk storage not 0, or
    // tiers) has JetStream, as nats-server decides.
    if let Some(trust) = srv.auth().trust() {
        for key in trust.account_keys() {
            let (Some(claims), Some(account)) = (trust.account(&key), srv.account(Some(&key)))
            else {
                continue;
            };
            match jwt_account_limits(&claims.nats.limits) {
                Some(l) => enabled.push((account, l)),
                None => disabled.push(account),
            }
        }
    }
    for a in configured {
        let Some(account) = srv.account(Some(&a.name)) else { continue };
        match &a.jetstream {
            Some(l) => {
                disabled.retain(|d| !Arc::ptr_eq(d, &account));
                enabled.push((account, account_limits(l)));
            }
            None => disabled.push(account),
        }
    }
    (enabled, disabled)
}

type EnabledAccount = (Arc<Account>, AccountLimits);

/// The JetStream limits of an account JWT's `limits` claim (jwt v2 `JetStreamLimits`,
/// flattened into the operator limits; the `R1` tier when only tiers are given), or `None`
/// when the account has no JetStream.
fn jwt_account_limits(limits: &serde_json::Value) -> Option<AccountLimits> {
    let tier = limits
        .get("tiered_limits")
        .and_then(|t| t.as_object())
        .filter(|t| !t.is_empty())
        .map(|t| t.get("R1").or_else(|| t.values().next()).unwrap_or(limits));
    let l = tier.unwrap_or(limits);
    let int =
        |k: &str, default: i64| l.get(k).and_then(serde_json::Value::as_i64).unwrap_or(default);
    let (mem, disk) = (int("mem_storage", 0), int("disk_storage", 0));
    if tier.is_none() && mem == 0 && disk == 0 {
        return None;
    }
    // In the JWT, 0 stream bytes means no per-stream maximum.
    let per_stream = |k: &str| Some(int(k, 0)).filter(|v| *v > 0).unwrap_or(-1);
    Some(AccountLimits {
        max_memory: mem,
        max_storage: disk,
        max_streams: int("streams", -1),
        max_consumers: int("consumer", -1),
        max_ack_pending: int("max_ack_pending", -1),
        memory_max_stream_bytes: per_stream("mem_max_stream_bytes"),
        storage_max_stream_bytes: per_stream("disk_max_stream_bytes"),
        max_bytes_required: l.get("max_bytes_required").and_then(|v| v.as_bool()).unwrap_or(false),
    })
}

/// `accounts { A { jetstream { max_mem, max_file, ... } } }` as API limits (-1: none).
fn account_limits(l: &chorus_conf::AccountJetStreamLimits) -> AccountLimits {
    let v = |o: Option<i64>| o.unwrap_or(-1);
    AccountLimits {
        max_memory: v(l.max_memory),
        max_storage: v(l.max_store),
        max_streams: v(l.max_streams),
        max_consumers: v(l.max_consumers),
        max_ack_pending: v(l.max_ack_pending),
        memory_max_stream_bytes: v(l.memory_max_stream_bytes),
        storage_max_stream_bytes: v(l.store_max_stream_bytes),
        max_bytes_required: l.max_bytes_required,
    }
}

/// Whether storing `m` in stream `name` would take the account past its memory or storage
/// limit (nats-server's `wouldExceedLimits`, untiered): 10002 for the publisher.
fn account_would_exceed(acc: &AccountJs, name: &str, m: &InternalMsg) -> bool {
    let memory =
        acc.streams[name].cfg.storage == chorus_jetstream::stream::config::StorageType::Memory;
    let limit = if memory { acc.limits.max_memory } else { acc.limits.max_storage };
    if limit < 0 {
        return false;
    }
    let (subject, headers) = (m.subject.len(), m.headers.as_ref().map_or(0, |h| h.len()));
    let size = if memory {
        chorus_store::mem_msg_size(subject, headers, m.payload.len())
    } else {
        chorus_store::file_msg_size(subject, headers, m.payload.len())
    };
    let used: u64 = acc
        .streams
        .values()
        .filter(|s| {
            (s.cfg.storage == chorus_jetstream::stream::config::StorageType::Memory) == memory
        })
        .map(|s| s.store.state(false).bytes)
        .sum();
    used.saturating_add(size) > limit as u64
}

/// An account without JetStream: its `$JS.API.>` subscription only says so.
pub(crate) struct DisabledAccount {
    pub account: Arc<Account>,
    pub subs: Vec<Arc<Subscription>>,
}

/// The JetStream state of one account.
pub(crate) struct AccountJs {
    pub account: Arc<Account>,
    /// The account's JetStream limits (untiered; -1 = none).
    pub limits: AccountLimits,
    /// The internal client all of this account's internal subscriptions belong to.
    pub client: Arc<ClientShared>,
    pub streams: BTreeMap<String, Stream>,
    /// Stream name by runtime id.
    pub by_id: FxHashMap<u64, String>,
    pub api_subs: Vec<Arc<Subscription>>,
    /// Consumers by stream name, then consumer name.
    pub consumers: BTreeMap<String, BTreeMap<String, chorus_jetstream::consumer::Consumer>>,
    /// Pull request and ack subscriptions.
    pub consumer_subs: Vec<Arc<Subscription>>,
    pub api_total: u64,
    pub api_errors: u64,
}

/// Everything the runtime thread owns.
pub(crate) struct Runtime {
    srv: Arc<ServerInner>,
    store: Store,
    sink: InternalSink,
    accounts: BTreeMap<String, AccountJs>,
    /// Accounts without JetStream, by name.
    disabled: BTreeMap<String, DisabledAccount>,
    next_id: u64,
    out: Vec<Reply>,
    /// A file stream changed since the last sync in a way a reply depends on (a stored
    /// message, an API change): the batch's replies wait for the next sync.
    dirty: bool,
    /// Changes since the last sync whose loss in a crash only means redelivery or a second
    /// expiry (consumer states, acked and expired messages removed): synced with the next
    /// batch that needs a sync anyway, or after [`LAZY_SYNC`]; replies do not wait for them.
    lazy: bool,
    sync: SyncPolicy,
    last_sync: Instant,
    stats: Arc<JetStreamStats>,
    /// Durable consumers whose state changed since the last commit: (account, stream, name).
    consumers_dirty: std::collections::BTreeSet<(String, String, String)>,
    /// Batches on their way out, to the syncer thread.
    flights: Option<SyncSender<Flight>>,
    syncer: Option<std::thread::JoinHandle<()>>,
    /// Batches handed to the sync thread and not answered yet.
    in_flight: Arc<InFlight>,
    /// Paced push deliveries waiting for their time.
    push: push::PushState,
    /// Clustered JetStream: the meta state and this server's replicas (`None`: a single
    /// server).
    cluster: Option<meta::ClusterRt>,
}

impl Runtime {
    /// Serves JetStream for `account`: its `$JS.API.>` subscription (and the domain's) and its
    /// stored streams.
    pub(crate) fn enable_account(&mut self, account: &Arc<Account>, limits: AccountLimits) {
        if self.accounts.contains_key(&account.name) {
            return;
        }
        let client = self.internal_client();
        let mut api_subs = Vec::new();
        let mut prefixes = vec!["$JS.API.>".to_string()];
        if let Some(d) = &self.srv.opts().jetstream.domain {
            prefixes.push(format!("$JS.{d}.API.>"));
        }
        for (i, p) in prefixes.iter().enumerate() {
            let target = if i == 0 { Target::Api } else { Target::DomainApi };
            api_subs.push(subscribe(account, &client, p, target));
        }
        let mut acc = AccountJs {
            account: account.clone(),
            limits,
            client,
            streams: BTreeMap::new(),
            by_id: FxHashMap::default(),
            api_subs,
            consumers: BTreeMap::new(),
            consumer_subs: Vec::new(),
            api_total: 0,
            api_errors: 0,
        };
        let prefix = format!("{}/", account.name);
        let names = match self.store.stream_names() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("JetStream: listing stored streams failed: {e}");
                Vec::new()
            }
        };
        let now = now_nanos();
        for key in names.iter().filter(|k| k.starts_with(&prefix)) {
            match self.recover_stream(key) {
                Ok((def, store)) => {
                    let id = self.alloc_id();
                    let mut s = Stream::new(id, def.config, def.created, store);
                    if let Err(e) = s.recover(now) {
                        tracing::error!("JetStream: recovering stream {key:?} failed: {e}");
                        continue;
                    }
                    let st = s.store.state(false);
                    tracing::info!(
                        "  Restored {} messages for stream '{} > {}'",
                        st.msgs,
                        account.name,
                        s.cfg.name
                    );
                    let name = s.cfg.name.clone();
                    self.install(&mut acc, s);
                    self.restore_consumers(&mut acc, &name);
                }
                Err(e) => tracing::error!("JetStream: stream {key:?} not restored: {e}"),
            }
        }
        for (subject, target) in [
            ("$JS.API.CONSUMER.MSG.NEXT.>", Target::Next),
            ("$JS.ACK.>", Target::Ack),
            ("$JS.FC.>", Target::FlowControl),
            ("$JS.API.CONSUMER.RESET.>", Target::Reset),
        ] {
            acc.consumer_subs.push(subscribe(account, &acc.client, subject, target));
        }
        self.watch_account(account);
        self.accounts.insert(account.name.clone(), acc);
    }

    /// Answers `$JS.API.>` in `account` with "JetStream not enabled for account".
    pub(crate) fn disable_account(&mut self, account: &Arc<Account>) {
        if self.accounts.contains_key(&account.name) || self.disabled.contains_key(&account.name) {
            return;
        }
        let client = self.internal_client();
        let mut subs = vec![subscribe(account, &client, "$JS.API.>", Target::Api)];
        if let Some(d) = &self.srv.opts().jetstream.domain {
            subs.push(subscribe(account, &client, &format!("$JS.{d}.API.>"), Target::DomainApi));
        }
        self.disabled
            .insert(account.name.clone(), DisabledAccount { account: account.clone(), subs });
    }

    /// The internal client an account's subscriptions belong to; in a cluster the routes
    /// hear of them.
    fn internal_client(&self) -> Arc<ClientShared> {
        let client = Arc::new(ClientShared::new_internal(Arc::new(self.sink.clone())));
        if self.cluster.is_some() {
            let _ = client.advertise.set(Arc::downgrade(&self.srv));
        }
        client
    }

    fn recover_stream(&self, key: &str) -> Result<(Definition, Box<dyn StreamStore>), String> {
        let blob = self
            .store
            .stream_config(key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no definition".to_string())?;
        let def = Definition::decode(&blob).map_err(|e| format!("bad definition: {e}"))?;
        let mut store: Box<dyn StreamStore> = match storage_kind(&def.config) {
            StorageKind::File => Box::new(self.store.open_stream(key).map_err(|e| e.to_string())?),
            StorageKind::Memory => Box::new(MemStore::new(&def.config.name)),
        };
        store.set_limits(limits_of(&def.config)).map_err(|e| e.to_string())?;
        if store.state(false).last_seq == 0 && def.config.first_seq > 1 {
            store.compact(def.config.first_seq).map_err(|e| e.to_string())?;
        }
        Ok((def, store))
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Subscribes a stream's subjects (and direct gets) and adds it to the account. A replica
    /// subscribes only while it leads (replica.rs).
    fn install(&self, acc: &mut AccountJs, mut s: Stream) {
        if s.group.is_none() {
            subscribe_stream((&acc.account, &acc.client), &mut s);
        }
        self.sink.set_stream_name(s.id, Some(&s.cfg.name));
        acc.by_id.insert(s.id, s.cfg.name.clone());
        acc.streams.insert(s.cfg.name.clone(), s);
    }

    /// Removes a stream's subscriptions and forgets it (the store is the caller's business).
    fn uninstall(&self, acc: &mut AccountJs, name: &str) -> Option<Stream> {
        let mut s = acc.streams.remove(name)?;
        unsubscribe_all(&acc.account, &mut s.subs);
        unsubscribe_all(&acc.account, &mut s.direct_subs);
        acc.by_id.remove(&s.id);
        self.sink.set_stream_name(s.id, None);
        Some(s)
    }

    fn run(mut self, rx: Receiver<Work>, stop: &AtomicBool) {
        let mut batch: Vec<InternalMsg> = Vec::new();
        let mut calls: Vec<internal::Call> = Vec::new();
        loop {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let timeout = self.next_wake();
            match rx.recv_timeout(timeout) {
                Ok(Work::Msg(m)) => batch.push(m),
                Ok(Work::Call(f)) => calls.push(f),
                Ok(Work::Interest(a, s)) => self.deliver_interest_changed(&a, &s),
                Ok(Work::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let mut bytes = 0;
            while batch.len() < MAX_BATCH_MSGS && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(Work::Msg(m)) => {
                        bytes += m.payload.len();
                        batch.push(m);
                    }
                    Ok(Work::Call(f)) => calls.push(f),
                    Ok(Work::Interest(a, s)) => self.deliver_interest_changed(&a, &s),
                    Ok(Work::Wake) => {}
                    Err(_) => break,
                }
            }
            let opts = self.srv.opts();
            for m in batch.drain(..) {
                self.sink.dequeued(InternalSink::accounting(&m));
                self.handle(m, &opts);
            }
            self.timers();
            self.propose_outgoing();
            self.commit(false);
            let called = !calls.is_empty();
            for f in calls.drain(..) {
                f(&mut self);
            }
            if called {
                // Applied entries and answers from the cluster: their replies go now.
                self.propose_outgoing();
                self.commit(false);
            }
        }
        self.commit(true);
        // The syncer drains what is in the air, syncs, sends the last replies and ends.
        self.flights = None;
        if let Some(h) = self.syncer.take()
            && h.join().is_err()
        {
            tracing::error!("JetStream sync thread panicked");
        }
        // Nothing answers any more: publishers get no-responders instead of a queue nobody
        // drains.
        for d in self.disabled.values_mut() {
            unsubscribe_all(&d.account, &mut d.subs);
        }
        for acc in self.accounts.values_mut() {
            unsubscribe_all(&acc.account, &mut acc.api_subs);
            unsubscribe_all(&acc.account, &mut acc.consumer_subs);
            for s in acc.streams.values_mut() {
                unsubscribe_all(&acc.account, &mut s.subs);
                unsubscribe_all(&acc.account, &mut s.direct_subs);
            }
        }
        *self.srv.jetstream.lock().unwrap() = None;
        tracing::debug!(
            "JetStream runtime stopped: {} stored, {} syncs, {} reply batches",
            self.stats.stored.load(Ordering::Relaxed),
            self.stats.syncs.load(Ordering::Relaxed),
            self.stats.batches.load(Ordering::Relaxed)
        );
    }

    /// How long the thread may sleep: until the earliest timer or a periodic sync.
    fn next_wake(&self) -> Duration {
        let now = now_nanos();
        let mut wake = IDLE_WAKE;

        for acc in self.accounts.values() {
            for s in acc.streams.values() {
                if s.group.as_deref().is_some_and(|g| !self.leads_replica(g)) {
                    continue;
                }
                if let Some(t) = s.next_timer() {
                    let d = Duration::from_nanos(t.saturating_sub(now).max(0) as u64);
                    wake = wake.min(d);
                }
            }
            for c in acc.consumers.values().flat_map(|m| m.values()) {
                if let Some(t) = c.next_deadline() {
                    let d = Duration::from_nanos(t.saturating_sub(now).max(0) as u64);
                    wake = wake.min(d);
                }
            }
        }
        if let Some(t) = self.push.next_due() {
            wake = wake.min(Duration::from_nanos(t.saturating_sub(now).max(0) as u64));
        }
        if let (SyncPolicy::Every(d), true) = (self.sync, self.dirty) {
            wake = wake.min(d.saturating_sub(self.last_sync.elapsed()));
        }
        if self.lazy {
            // Not below a millisecond, so a late wake-up does not turn into a spin.
            let left = LAZY_SYNC.saturating_sub(self.last_sync.elapsed());
            wake = wake.min(left.max(Duration::from_millis(1)));
        }
        wake
    }

    fn handle(&mut self, m: InternalMsg, opts: &Options) {
        match m.target {
            Target::Api | Target::DomainApi => self.handle_api(m, opts),
            Target::Stream(id) => self.handle_publish(m, id, opts),
            Target::Direct(id) => self.handle_direct(m, id, opts),
            Target::Next => self.handle_next(m),
            Target::Ack => self.handle_ack(m),
            Target::FlowControl => self.handle_flow_control(m),
            Target::Reset => self.handle_reset(m),
        }
    }

    fn handle_publish(&mut self, m: InternalMsg, id: u64, opts: &Options) {
        let Some(acc) = self.accounts.get_mut(&m.account.name) else { return };
        // A message queued for a stream deleted meanwhile has nowhere to go.
        let Some(name) = acc.by_id.get(&id).cloned() else { return };
        let keep = acc.consumers.get(name.as_str()).is_some_and(|c| !c.is_empty())
            && std::str::from_utf8(&m.subject)
                .is_ok_and(|subject| consumer::any_interest(acc, &name, subject));
        let over_limit = account_would_exceed(acc, &name, &m);
        let s = acc.streams.get(name.as_str()).expect("by_id and streams agree");
        let (sname, is_file) = (s.name.clone(), s.is_file());
        if let Some(g) = s.group.clone() {
            // The leader decides what depends on this server and proposes the rest.
            self.replicated_publish(&g, m, keep, over_limit, &sname);
            return;
        }
        let reply = m.reply.clone().filter(|r| !r.is_empty());
        let body = match std::str::from_utf8(&m.subject) {
            Ok(_) if over_limit => chorus_jetstream::stream::publish::PubAckResponse::error(
                &sname,
                chorus_jetstream::ErrorId::AccountResourcesExceeded.error(),
            )
            .to_wire(),
            Ok(subject) => {
                let h = m.headers.as_deref().unwrap_or(b"");
                let account = m.account.name.clone();
                self.store_message(&account, &name, subject, h, &m.payload, now_nanos(), keep, opts)
                    .0
            }
            Err(_) => chorus_jetstream::stream::publish::PubAckResponse::error(
                &sname,
                chorus_jetstream::ErrorId::StreamStoreFailed.with_err("subject is not valid UTF-8"),
            )
            .to_wire(),
        };
        if let Some(reply) = reply {
            self.out.push(Reply {
                account: m.account.clone(),
                subject: reply,
                headers: None,
                payload: Bytes::from(body),
                reply: None,
                shown_as: None,
                file_ack: is_file.then(|| sname.clone()),
            });
        }
    }

    /// Checks and stores one message at `now` (a single server's publish, or a replica
    /// applying an entry: the same code); tells the consumers. Returns the PubAck body and
    /// the sequence it was stored at.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store_message(
        &mut self,
        account: &str,
        stream: &str,
        subject: &str,
        header: &[u8],
        payload: &[u8],
        now: i64,
        keep: bool,
        opts: &Options,
    ) -> (Vec<u8>, Option<u64>) {
        let Some(s) = self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(stream)) else {
            return (Vec::new(), None);
        };
        // A replica's writes are replayed from its raft log: nothing waits for their sync.
        let syncs = s.is_file() && s.group.is_none();
        let ctx = chorus_jetstream::stream::publish::PublishContext {
            now,
            max_payload: opts.max_payload as i64,
        };
        let domain = opts.jetstream.domain.as_deref().unwrap_or("");
        let mut appended = None;
        let body = match s.publish(subject, header, payload, now, &ctx, domain, keep) {
            Ok(stored) => {
                if stored.wrote {
                    appended = Some(stored.ack.seq);
                    self.dirty |= syncs;
                    self.stats.stored.fetch_add(1, Ordering::Relaxed);
                }
                stored.ack.to_wire()
            }
            Err(e) => {
                if e.is(chorus_jetstream::ErrorId::StreamStoreFailed) {
                    self.dirty |= syncs;
                }
                chorus_jetstream::stream::publish::PubAckResponse::error(&s.name, e).to_wire()
            }
        };
        if let Some(seq) = appended {
            self.stream_appended(account, stream, seq, subject);
        }
        (body, appended)
    }

    /// Runs every stream timer that is due.
    fn timers(&mut self) {
        let now = now_nanos();
        let mut dirty = false;
        let mut ticks = Vec::new();
        for acc in self.accounts.values_mut() {
            for s in acc.streams.values_mut() {
                if s.next_timer().is_none_or(|t| t > now) {
                    continue;
                }
                if let Some(g) = &s.group {
                    // A replica's expiry is the leader's proposal (followers have no timers
                    // due: they are cleared as entries apply).
                    ticks.push(g.clone());
                    s.next_expiry = None;
                    s.dedupe_next = None;
                    continue;
                }
                match s.tick(now) {
                    Ok(wrote) => dirty |= wrote && s.is_file(),
                    Err(e) => {
                        tracing::error!(
                            "JetStream: expiring messages of '{} > {}' failed: {e}",
                            acc.account.name,
                            s.cfg.name
                        );
                        // Retry later rather than spinning on a failing store.
                        s.next_expiry = Some(now + 1_000_000_000);
                    }
                }
            }
        }
        for g in ticks {
            self.replica_tick(&g, now);
        }
        self.lazy |= dirty;
        self.release_held(now);
        self.consumer_timers(now);
    }

    /// Ends a batch: writes it, then hands its replies to the sync thread (or sends them
    /// from here when they wait for nothing).
    fn commit(&mut self, last: bool) {
        let due = match self.sync {
            SyncPolicy::EachBatch => true,
            SyncPolicy::Every(d) => last || self.last_sync.elapsed() >= d,
        };
        // Every batch is written at once (one database write per stream that changed),
        // whatever the sync policy: even the weaker policy acks only what reached the
        // operating system. Writing does not wait for the sync thread: RocksDB appends to the
        // WAL while a sync of it is under way, so when the sync thread finishes one fsync,
        // everything stored meanwhile is already written and the next fsync starts at once.
        // (Memory streams and streams without buffered writes return at once.)
        let mut failed = None;
        for s in self.accounts.values_mut().flat_map(|a| a.streams.values_mut()) {
            if let Err(e) = s.store.flush() {
                tracing::error!("JetStream: writing stream {:?} failed: {e}", s.cfg.name);
                failed.get_or_insert(e);
            }
        }
        // After the streams: a consumer's state never gets ahead of the messages it names.
        self.lazy |= self.write_consumer_states();
        let lazy_due = self.lazy && (last || self.last_sync.elapsed() >= LAZY_SYNC);
        let sync = (self.dirty || lazy_due) && due && failed.is_none();
        if sync || failed.is_some() {
            self.dirty = false;
            self.lazy = false;
            self.last_sync = Instant::now();
        }
        if self.out.is_empty() && !sync {
            return;
        }
        if !sync && self.in_flight.batches.load(Ordering::Acquire) == 0 {
            // Nothing to wait for and nothing ahead in the pipeline: answer from here and
            // spare the replies a thread hop (direct gets, KV gets, deliveries of synced
            // messages).
            let err = failed.map(|e| chorus_jetstream::ErrorId::StreamStoreFailed.with_err(&e));
            let mut outbox = Outbox::new(&self.srv);
            let replies = std::mem::take(&mut self.out);
            send_replies(&self.stats, &mut outbox, replies, err.as_ref());
            outbox.flush();
            return;
        }
        let replies = std::mem::take(&mut self.out);
        let bytes = replies.iter().map(Reply::size).sum();
        self.in_flight.batches.fetch_add(1, Ordering::AcqRel);
        self.in_flight.bytes.fetch_add(bytes, Ordering::AcqRel);
        let failed = failed.map(|e| chorus_jetstream::ErrorId::StreamStoreFailed.with_err(&e));
        let flight = Flight { sync, failed, replies, bytes };
        // A full queue (MAX_FLIGHTS batches, or MAX_FLIGHT_BYTES) makes this thread wait for
        // the sync thread: that bounds the replies waiting for the disk, and the internal
        // queue in front of this thread bounds the rest.
        let Some(tx) = &self.flights else { return };
        if tx.send(flight).is_err() {
            tracing::error!("JetStream: the sync thread is gone; a batch's replies are dropped");
            return;
        }
        self.in_flight.wait_below(MAX_FLIGHT_BYTES);
    }
}

/// What the runtime thread handed to the sync thread and is not answered yet.
#[derive(Default)]
struct InFlight {
    batches: AtomicUsize,
    /// [`Reply::size`] of their replies.
    bytes: AtomicUsize,
    lock: Mutex<()>,
    answered: std::sync::Condvar,
}

impl InFlight {
    /// Waits until at most `limit` bytes are in flight.
    fn wait_below(&self, limit: usize) {
        if self.bytes.load(Ordering::Acquire) <= limit {
            return;
        }
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.bytes.load(Ordering::Acquire) > limit {
            g = self.answered.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// `batches` batches of `bytes` were answered.
    fn done(&self, batches: usize, bytes: usize) {
        self.batches.fetch_sub(batches, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        // Under the lock, so a waiter between its check and its wait cannot miss this.
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.answered.notify_all();
    }
}

/// One batch on its way out: written to the store, to be synced, then answered.
struct Flight {
    /// [`Reply::size`] of `replies`.
    bytes: usize,
    sync: bool,
    /// Writing the batch failed: its file acks become this error.
    failed: Option<ApiError>,
    replies: Vec<Reply>,
}

/// The second stage of group commit, on its own thread: while it waits on an fsync, the
/// runtime thread already stores and writes the next batches. Batches that queued up during
/// an fsync share the next one; then their replies leave in order (PubAcks, API responses,
/// deliveries into the subscribers' buffers) and each touched writer is woken once.
struct Syncer {
    store: Store,
    srv: Arc<ServerInner>,
    stats: Arc<JetStreamStats>,
    /// Counted down once a batch is answered.
    in_flight: Arc<InFlight>,
}

impl Syncer {
    fn run(self, rx: Receiver<Flight>) {
        let mut outbox = Outbox::new(&self.srv);
        let mut group = Vec::new();
        while let Ok(first) = rx.recv() {
            group.push(first);
            while let Ok(f) = rx.try_recv() {
                group.push(f);
            }
            let mut sync_err = None;
            if group.iter().any(|f| f.sync) {
                self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.store.sync() {
                    tracing::error!("JetStream: store sync failed, acks of this batch fail: {e}");
                    sync_err = Some(chorus_jetstream::ErrorId::StreamStoreFailed.with_err(&e));
                }
            }
            let (n, mut bytes) = (group.len(), 0);
            for f in group.drain(..) {
                let err = f.failed.as_ref().or(sync_err.as_ref());
                bytes += f.bytes;
                send_replies(&self.stats, &mut outbox, f.replies, err);
            }
            outbox.flush();
            self.in_flight.done(n, bytes);
        }
    }
}

/// Publishes a batch's replies in order; with `err`, its file PubAcks become that error.
fn send_replies(
    stats: &JetStreamStats,
    outbox: &mut Outbox,
    replies: Vec<Reply>,
    err: Option<&ApiError>,
) {
    if !replies.is_empty() {
        stats.batches.fetch_add(1, Ordering::Relaxed);
    }
    for mut r in replies {
        if let (Some(err), Some(name)) = (err, &r.file_ack) {
            r.payload = Bytes::from(
                chorus_jetstream::stream::publish::PubAckResponse::error(name, err.clone())
                    .to_wire(),
            );
        }
        // Responses (PubAcks, API and direct-get answers) go to reply inboxes that rarely
        // repeat; deliveries (with their ack subject) go to deliver subjects that do.
        let transient = r.reply.is_none();
        outbox.publish_via(
            &r.account,
            &r.subject,
            r.shown_as.as_deref().unwrap_or(&r.subject),
            r.reply.as_deref(),
            r.headers.as_deref(),
            &r.payload,
            transient,
        );
    }
}

/// A running runtime, as the rest of the server reaches it (kept in
/// `ServerInner::jetstream` while the runtime runs).
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    stats: Arc<JetStreamStats>,
    sink: InternalSink,
}

impl Handle {
    /// The runtime's counters.
    pub(crate) fn stats(&self) -> Arc<JetStreamStats> {
        self.stats.clone()
    }

    /// The `/jsz` report, built on the runtime thread; `None` if the runtime has stopped.
    pub(crate) async fn jsz(&self, o: JszOptions) -> Option<JsInfo> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = self.sink.call(Box::new(move |rt: &mut Runtime| {
            let _ = tx.send(rt.jsz(&o));
        }));
        if !queued {
            return None;
        }
        rx.await.ok()
    }
}

/// Adds an internal subscription to `account`.
fn subscribe(
    account: &Account,
    client: &Arc<ClientShared>,
    subject: &str,
    target: Target,
) -> Arc<Subscription> {
    let sub = Arc::new(Subscription::new(
        client.clone(),
        Bytes::copy_from_slice(subject.as_bytes()),
        None,
        target.sid(),
    ));
    if let Err(e) = account.sublist.insert(&sub.subject, None, SubRef(sub.clone())) {
        // Stream subjects are validated before a stream exists; this cannot happen for them.
        tracing::error!("JetStream: cannot subscribe {subject:?}: {e:?}");
        sub.removed.store(true, Ordering::Release);
    } else if let Some(srv) = client.advertise.get().and_then(std::sync::Weak::upgrade) {
        crate::interest::add_interest(&srv, account, &sub.subject, None);
    }
    sub
}

fn unsubscribe_all(account: &Account, subs: &mut Vec<Arc<Subscription>>) {
    for s in subs.drain(..) {
        if !s.removed.swap(true, Ordering::AcqRel) {
            let _ = account.sublist.remove(&s.subject, None, &SubRef(s.clone()));
            if let Some(srv) = s.client.advertise.get().and_then(std::sync::Weak::upgrade) {
                crate::interest::remove_interest(&srv, account, &s.subject, None);
            }
        }
    }
}

/// (Re)subscribes a stream's subjects and, with `allow_direct`, its direct-get subjects.
fn subscribe_stream((account, client): (&Arc<Account>, &Arc<ClientShared>), s: &mut Stream) {
    unsubscribe_all(account, &mut s.subs);
    unsubscribe_all(account, &mut s.direct_subs);
    for subj in &s.cfg.subjects {
        s.subs.push(subscribe(account, client, subj, Target::Stream(s.id)));
    }
    if s.cfg.allow_direct {
        for subj in [
            format!("$JS.API.DIRECT.GET.{}", s.cfg.name),
            format!("$JS.API.DIRECT.GET.{}.>", s.cfg.name),
        ] {
            s.direct_subs.push(subscribe(account, client, &subj, Target::Direct(s.id)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_waits_while_too_many_reply_bytes_are_in_flight() {
        let f = Arc::new(InFlight::default());
        f.wait_below(0); // nothing in flight: no wait
        f.batches.fetch_add(2, Ordering::AcqRel);
        f.bytes.fetch_add(300, Ordering::AcqRel);
        let waiter = f.clone();
        let t = std::thread::spawn(move || waiter.wait_below(100));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "300 bytes in flight, limit 100");
        f.done(1, 150);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "still 150 bytes in flight");
        f.done(1, 150);
        t.join().unwrap();
        assert_eq!(f.batches.load(Ordering::Acquire), 0);
        assert_eq!(f.bytes.load(Ordering::Acquire), 0);
    }
}
