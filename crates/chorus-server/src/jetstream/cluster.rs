//! Clustered JetStream, the tokio side: this server's raft node, the meta group and the
//! stream groups it is a member of (nats-server's `jetstream_cluster.go`).
//!
//! ```text
//!   routes ◄──► Hub (route::raft) ◄──► meta group "_meta_" ──► MetaMachine ─┐
//!                                 ◄──► stream group S-R3F-x ─► StreamMachine┤ apply: Call to
//!                                                                          ▼ the runtime thread
//!   runtime thread (mod.rs): owns streams, consumers, the applied meta state (meta.rs) and
//!   the replicas' state (replica.rs); proposes through the groups here, never blocks on them
//! ```
//!
//! - Node id: a random non-zero u64 kept in the store (raft meta `_server_/node_id`). A
//!   wiped store gets a new one, so a server that lost its log joins as a new member and can
//!   never vote twice in a term it forgot (openraft #2002).
//! - The meta group is bootstrapped once: when this server has the lowest node id among the
//!   peers it sees and sees every configured route's server (at least one), it initializes
//!   the group with them. Servers that come later are added by the meta leader, one at a
//!   time. A server never starts acking alone: until the meta group has a leader, the API
//!   answers "JetStream system temporarily unavailable" and no stream exists.
//! - A stream group is started on each of its peers when the meta log assigns it; every
//!   peer initializes it with the same members (openraft takes the same first membership
//!   from several members).
//! - Role changes reach the runtime thread only after the new leader applied everything
//!   committed before its term (a barrier entry), so a new leader never serves stale state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chorus_raft::{
    Applied, Committed, Flusher, Group, GroupError, Hub, Machine, NodeId, PeerNode, Resp,
    ServerState, Timing,
};
use chorus_store::RaftLog;
use rustc_hash::FxHashMap;

use super::Runtime;
use super::internal::InternalSink;
use crate::server::ServerInner;

/// The meta group's name (nats-server's `_meta_`).
pub(crate) const META_GROUP: &str = "_meta_";
/// Where the node id is kept in the raft log's metadata.
const SERVER_GROUP: &str = "_server_";
/// How long a proposal waits for its commit before the proposer gives up on an answer.
pub(crate) const PROPOSE_TTL: Duration = Duration::from_secs(5);

/// This store's node id, made on first use.
pub(crate) fn node_id(log: &dyn RaftLog) -> Result<NodeId, chorus_store::StoreError> {
    if let Some(b) = log.meta(SERVER_GROUP, "node_id")?
        && let Ok(a) = <[u8; 8]>::try_from(b.as_slice())
    {
        let id = u64::from_le_bytes(a);
        if id != 0 {
            return Ok(id);
        }
    }
    let id = loop {
        let id: u64 = rand::random();
        if id != 0 {
            break id;
        }
    };
    log.put_meta(SERVER_GROUP, "node_id", &id.to_le_bytes())?;
    log.sync()?;
    Ok(id)
}

/// A short stable name of a node for `peer` fields (nats-server shows 8-character hashes).
pub(crate) fn peer_id(node: NodeId) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = node;
    (0..8)
        .map(|_| {
            let d = DIGITS[(n % 62) as usize] as char;
            n /= 62;
            d
        })
        .collect()
}

/// The application request a stepping-down leader sends the member it hands the lead to.
const CAMPAIGN: &str = "campaign";

/// The tokio side of clustered JetStream, shared by the runtime thread and the tasks.
pub(crate) struct Cluster {
    pub node: NodeId,
    pub hub: Arc<Hub>,
    log: Arc<dyn RaftLog>,
    flusher: Arc<Flusher>,
    timing: Timing,
    meta: OnceLock<Group>,
    groups: Mutex<FxHashMap<String, Group>>,
    pub rt: tokio::runtime::Handle,
    sink: InternalSink,
    srv: Weak<ServerInner>,
    /// Peers this server must see before it may bootstrap the meta group.
    expected_peers: usize,
    /// The queue of [`submit_in_order`], started with the first proposal.
    submitter: OnceLock<tokio::sync::mpsc::UnboundedSender<Proposal>>,
}

type ProposeDone = Box<dyn FnOnce(&mut Runtime, Result<Vec<u8>, GroupError>) + Send>;

/// One [`Cluster::propose`] call.
struct Proposal {
    group: Group,
    cmd: Vec<u8>,
    done: ProposeDone,
}

/// Hands proposals to their groups one after another, each in the leader's queue before the
/// next is taken; their commits are awaited concurrently. Never forwarded: a server that no
/// longer leads (it was frozen, or cut off, while another took over) gets `NotLeader` for
/// what it received as leader, and its publishers get no PubAck; forwarding would append,
/// after what the new leader stored since, messages sent before it, out of their order.
async fn submit_in_order(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Proposal>,
    sink: InternalSink,
) {
    while let Some(Proposal { group, cmd, done }) = rx.recv().await {
        let sink = sink.clone();
        let finish = move |r: Result<Vec<u8>, GroupError>| {
            let _ = sink.call(Box::new(move |rt: &mut Runtime| done(rt, r)));
        };
        match group.submit(cmd).await {
            Ok(answer) => {
                tokio::spawn(async move {
                    let r = match tokio::time::timeout(PROPOSE_TTL, answer).await {
                        Ok(r) => r.map(|r| r.0),
                        Err(_) => Err(GroupError::Timeout),
                    };
                    finish(r);
                });
            }
            Err(e) => finish(Err(e)),
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

impl Cluster {
    /// Sets up this server's raft node (the hub goes into the server before any route
    /// starts, so the route INFO carries the node id).
    pub(crate) fn new(
        srv: &Arc<ServerInner>,
        log: Arc<dyn RaftLog>,
        sink: InternalSink,
    ) -> Result<Arc<Cluster>, String> {
        let node = node_id(&*log).map_err(|e| format!("reading the raft node id: {e}"))?;
        let transport = Arc::new(crate::route::raft::RouteTransport::new(srv));
        let hub = Hub::new(node, transport);
        if srv.raft.set(hub.clone()).is_err() {
            return Err("a raft node is running already".into());
        }
        let flusher = Flusher::start(log.clone()).map_err(|e| format!("raft flusher: {e}"))?;
        let c = Arc::new(Cluster {
            node,
            hub,
            log,
            flusher,
            timing: Timing::default(),
            meta: OnceLock::new(),
            groups: Mutex::default(),
            rt: tokio::runtime::Handle::current(),
            sink,
            srv: Arc::downgrade(srv),
            expected_peers: expected_peers(srv),
            submitter: OnceLock::new(),
        });
        let hub_app = Arc::downgrade(&c);
        c.hub.set_app_handler(Arc::new(move |from, topic, body| {
            let c = hub_app.clone();
            Box::pin(async move {
                match c.upgrade() {
                    Some(c) => c.app_request(from, &topic, body).await,
                    None => Vec::new(),
                }
            })
        }));
        Ok(c)
    }

    /// Starts the meta group, its bootstrap and its watcher.
    pub(crate) fn start(self: &Arc<Self>) {
        let c = self.clone();
        self.rt.spawn(async move {
            let machine = Arc::new(tokio::sync::Mutex::new(RuntimeMachine::meta(c.sink.clone())));
            let g = match Group::start(
                META_GROUP,
                &c.timing,
                c.log.clone(),
                c.flusher.clone(),
                machine,
                c.hub.clone(),
            )
            .await
            {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("JetStream cluster: the meta group did not start: {e}");
                    return;
                }
            };
            let _ = c.meta.set(g.clone());
            tokio::spawn(watch(c.clone(), g.clone(), None));
            c.clone().bootstrap(g).await;
        });
    }

    pub(crate) fn log_meta(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, chorus_store::StoreError> {
        self.log.meta(group, key)
    }

    pub(crate) fn put_log_meta(
        &self,
        group: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), chorus_store::StoreError> {
        self.log.put_meta(group, key, value)
    }

    pub(crate) fn meta(&self) -> Option<&Group> {
        self.meta.get()
    }

    pub(crate) fn group(&self, name: &str) -> Option<Group> {
        self.groups.lock().unwrap().get(name).cloned()
    }

    /// Bootstraps the meta group when it has no members yet, then keeps adding servers that
    /// join later while this server leads it.
    async fn bootstrap(self: Arc<Self>, g: Group) {
        let Some(srv) = self.srv.upgrade() else { return };
        let shutdown = srv.shutdown.clone();
        drop(srv);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(srv) = self.srv.upgrade() else { return };
            let peers = srv.routes.raft_peers();
            let m = g.metrics();
            let members: Vec<NodeId> =
                m.membership_config.membership().nodes().map(|(id, _)| *id).collect();
            if members.is_empty() {
                let lowest = peers.iter().all(|(id, _)| *id > self.node);
                if peers.len() >= self.expected_peers && lowest {
                    let mut all: BTreeMap<NodeId, PeerNode> = peers
                        .iter()
                        .map(|(id, name)| (*id, PeerNode { server: name.clone() }))
                        .collect();
                    all.insert(self.node, PeerNode { server: srv.name.clone() });
                    tracing::info!(
                        "JetStream cluster: bootstrapping the meta group with {} servers",
                        all.len()
                    );
                    if let Err(e) = g.initialize(all).await {
                        tracing::warn!("JetStream cluster: meta bootstrap failed: {e}");
                    }
                }
                continue;
            }
            if m.state != ServerState::Leader {
                continue;
            }
            // A server seen on the routes but not in the group joins it (one change at a
            // time; the next tick takes the next one).
            if let Some((id, name)) = peers.iter().find(|(id, _)| !members.contains(id)) {
                tracing::info!("JetStream cluster: adding {name} to the meta group");
                match g.add_voter(*id, PeerNode { server: name.clone() }).await {
                    Ok(()) => {}
                    Err(GroupError::InProgress) => {}
                    Err(e) => tracing::warn!("JetStream cluster: adding {name} failed: {e}"),
                }
            }
        }
    }

    /// Starts this server's member of a stream group (from the meta log, or at recovery).
    pub(crate) fn start_stream_group(
        self: &Arc<Self>,
        name: String,
        members: BTreeMap<NodeId, PeerNode>,
    ) {
        if self.groups.lock().unwrap().contains_key(&name) {
            return;
        }
        let c = self.clone();
        self.rt.spawn(async move {
            let machine =
                Arc::new(tokio::sync::Mutex::new(RuntimeMachine::stream(c.sink.clone(), &name)));
            // No snapshot policy: a file stream's log is compacted when its leader says every
            // member has matched it (replica.rs, `Compact`); a memory stream's is kept whole.
            let timing = Timing { snapshot_every: 0, ..c.timing };
            let g = match Group::start(
                &name,
                &timing,
                c.log.clone(),
                c.flusher.clone(),
                machine,
                c.hub.clone(),
            )
            .await
            {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("JetStream cluster: stream group {name} did not start: {e}");
                    return;
                }
            };
            {
                let mut groups = c.groups.lock().unwrap();
                if groups.contains_key(&name) {
                    return;
                }
                groups.insert(name.clone(), g.clone());
            }
            if g.metrics().membership_config.membership().nodes().next().is_none()
                && let Err(e) = g.initialize(members).await
            {
                tracing::warn!("JetStream cluster: initializing {name}: {e}");
            }
            tokio::spawn(watch(c.clone(), g, Some(name)));
        });
    }

    /// Stops this server's member of a stream group and forgets its log (stream deleted).
    pub(crate) fn remove_stream_group(self: &Arc<Self>, name: &str) {
        let g = self.groups.lock().unwrap().remove(name);
        let log = self.log.clone();
        let name = name.to_string();
        self.rt.spawn(async move {
            if let Some(g) = g {
                g.shutdown().await;
            }
            if let Err(e) = log.remove_group(&name) {
                tracing::error!("JetStream cluster: removing the log of {name}: {e}");
            }
        });
    }

    /// Proposes `cmd` to a group this server leads; `done` runs on the runtime thread with
    /// the outcome (the command's effects were applied there already when it succeeded).
    /// Proposals reach the log in the order of the calls (one publisher's messages are
    /// stored in the order it sent them): they go through one submitting task.
    pub(crate) fn propose(
        self: &Arc<Self>,
        group: &str,
        cmd: Vec<u8>,
        done: impl FnOnce(&mut Runtime, Result<Vec<u8>, GroupError>) + Send + 'static,
    ) {
        let g = if group == META_GROUP { self.meta.get().cloned() } else { self.group(group) };
        let Some(g) = g else {
            let _ = self
                .sink
                .call(Box::new(move |rt: &mut Runtime| done(rt, Err(GroupError::NotLeader(None)))));
            return;
        };
        let submitter = self.submitter.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            self.rt.spawn(submit_in_order(rx, self.sink.clone()));
            tx
        });
        if let Err(e) = submitter.send(Proposal { group: g, cmd, done: Box::new(done) }) {
            // The submitter ended: the runtime is shutting down.
            let p = e.0;
            let _ = self.sink.call(Box::new(move |rt: &mut Runtime| {
                (p.done)(rt, Err(GroupError::Stopped("shutting down".into())))
            }));
        }
    }

    /// Asks `to` an application question (stream info from a stream's leader); `done` runs
    /// on the runtime thread with the answer (`None`: no answer in time).
    pub(crate) fn ask(
        self: &Arc<Self>,
        to: Vec<NodeId>,
        topic: &'static str,
        body: Vec<u8>,
        done: impl FnOnce(&mut Runtime, Option<Vec<u8>>) + Send + 'static,
    ) {
        let hub = self.hub.clone();
        let sink = self.sink.clone();
        let me = self.node;
        self.rt.spawn(async move {
            let asks = to.into_iter().map(|n| {
                let (hub, body) = (hub.clone(), body.clone());
                async move {
                    if n == me {
                        return None;
                    }
                    hub.request(n, topic, body, Duration::from_secs(2))
                        .await
                        .filter(|b| !b.is_empty())
                }
            });
            let answers = futures_join_all(asks).await;
            let first = answers.into_iter().flatten().next();
            sink.call(Box::new(move |rt: &mut Runtime| done(rt, first)));
        });
    }

    /// A question from another server, answered on the runtime thread.
    async fn app_request(self: &Arc<Self>, from: NodeId, topic: &str, body: Vec<u8>) -> Vec<u8> {
        if topic == CAMPAIGN {
            self.campaign(&String::from_utf8_lossy(&body));
            return Vec::new();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let topic = topic.to_string();
        let queued = self.sink.call(Box::new(move |rt: &mut Runtime| {
            let _ = tx.send(rt.answer_peer(from, &topic, &body));
        }));
        if !queued {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Steps down from leading `group` (openraft 0.9 cannot hand the lead over): this
    /// member stops its heartbeats and does not stand for election, and `target` (when
    /// given) is asked to stand as soon as the followers' leases on this leader ran out, so
    /// it wins before any follower's own election timeout fires; without a target, or if
    /// the target cannot win, the first follower to time out is elected. Then this member
    /// comes back on. Followers keep their lease while heartbeats arrive, so asking the
    /// target to stand at once would be refused.
    pub(crate) fn step_down(self: &Arc<Self>, group: &str, target: Option<NodeId>) {
        let g = if group == META_GROUP { self.meta.get().cloned() } else { self.group(group) };
        let Some(g) = g else { return };
        let me = self.node;
        let hub = self.hub.clone();
        let name = group.to_string();
        self.rt.spawn(async move {
            let cfg = g.raft().runtime_config();
            cfg.heartbeat(false);
            cfg.elect(false);
            if let Some(t) = target.filter(|t| *t != me) {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let _ =
                        hub.request(t, CAMPAIGN, name.into_bytes(), Duration::from_secs(1)).await;
                });
            }
            let mut rx = g.watch();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if rx.borrow_and_update().current_leader.is_some_and(|l| l != me) {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            cfg.heartbeat(true);
            cfg.elect(true);
        });
    }

    /// This member was chosen by a stepping-down leader of `group`: once the other
    /// members' leases on that leader have run out (one election timeout maximum after its
    /// last heartbeat, which was before it asked), stand for election, a few times if a
    /// vote arrives early.
    fn campaign(self: &Arc<Self>, group: &str) {
        let g = if group == META_GROUP { self.meta.get().cloned() } else { self.group(group) };
        let Some(g) = g else { return };
        let lease = self.timing.election_max;
        let old = g.leader();
        let name = group.to_string();
        self.rt.spawn(async move {
            tokio::time::sleep(lease + Duration::from_millis(50)).await;
            for attempt in 0..6 {
                if g.is_leader() || g.leader().is_some_and(|l| Some(l) != old) {
                    return;
                }
                tracing::debug!(
                    "JetStream cluster: standing for election of {name} (attempt {attempt})"
                );
                let _ = g.raft().trigger().elect().await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
    }

    /// The lowest log index every member of `group` (this leader included) has matched;
    /// `None` when a member's progress is unknown.
    pub(crate) fn matched_by_all(&self, group: &str, peers: &[NodeId]) -> Option<u64> {
        let m = self.group(group)?.metrics();
        let progress = m.replication.as_ref()?;
        let mut low = m.last_applied.as_ref()?.index;
        for p in peers.iter().filter(|p| **p != self.node) {
            low = low.min(progress.get(p)?.as_ref()?.index);
        }
        Some(low)
    }

    /// Purges `group`'s log up to `upto` (inclusive) behind a snapshot of the replica (see
    /// `replica_snapshot`). Run by every member when it applies the leader's `Compact`.
    pub(crate) fn compact(self: &Arc<Self>, group: &str, upto: u64) {
        let Some(g) = self.group(group) else { return };
        let name = group.to_string();
        self.rt.spawn(async move {
            let covered = |m: &chorus_raft::types::Metrics| {
                m.snapshot.as_ref().is_some_and(|s| s.index >= upto)
            };
            if !covered(&g.metrics()) {
                if let Err(e) = g.raft().trigger().snapshot().await {
                    tracing::warn!("JetStream cluster: snapshot of {name}: {e}");
                    return;
                }
                let mut rx = g.watch();
                let built = tokio::time::timeout(Duration::from_secs(30), async {
                    loop {
                        if covered(&rx.borrow_and_update()) {
                            return true;
                        }
                        if rx.changed().await.is_err() {
                            return false;
                        }
                    }
                })
                .await;
                if !matches!(built, Ok(true)) {
                    tracing::warn!("JetStream cluster: no snapshot of {name} to compact behind");
                    return;
                }
            }
            match g.raft().trigger().purge_log(upto).await {
                Ok(()) => {
                    tracing::info!("JetStream cluster: raft log of {name} compacted up to {upto}")
                }
                Err(e) => tracing::warn!("JetStream cluster: compacting {name}: {e}"),
            }
        });
    }

    /// Stops every group (shutdown).
    pub(crate) async fn shutdown(&self) {
        let groups: Vec<Group> = self.groups.lock().unwrap().drain().map(|(_, g)| g).collect();
        for g in groups {
            g.shutdown().await;
        }
        if let Some(m) = self.meta.get() {
            m.shutdown().await;
        }
    }
}

/// Waits for all of `futs`, run concurrently (a small join_all).
async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// The peers a server must see before bootstrapping: the configured routes that are not
/// itself (at least one).
fn expected_peers(srv: &ServerInner) -> usize {
    let opts = srv.opts();
    let Some(c) = &opts.cluster else { return 1 };
    let own_port = srv.cluster_addr.lock().unwrap().map(|a| a.port()).or(c.port);
    let mut others: Vec<String> = Vec::new();
    for url in &c.routes {
        let Some((addr, _)) = crate::route::conn::parse_url(url) else { continue };
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()),
            None => (addr.clone(), None),
        };
        let local = matches!(host.as_str(), "127.0.0.1" | "localhost" | "0.0.0.0" | "::1")
            || host == c.host;
        if local && port.is_some() && port == own_port {
            continue;
        }
        if !others.contains(&addr) {
            others.push(addr);
        }
    }
    others.len().max(1)
}

/// Follows a group's metrics and tells the runtime thread about role changes; a new leader
/// first commits a barrier so it has applied everything before its term.
async fn watch(c: Arc<Cluster>, g: Group, stream_group: Option<String>) {
    let mut rx = g.watch();
    let mut last: (bool, Option<NodeId>, u64) = (false, None, 0);
    loop {
        let (leading, leader, term) = {
            let m = rx.borrow_and_update();
            (m.state == ServerState::Leader, m.current_leader, m.current_term)
        };
        if (leading, leader, term) != last {
            last = (leading, leader, term);
            if leading {
                // Applied up to the barrier: everything committed before this term too.
                let barrier = super::replica::barrier_cmd(stream_group.is_none());
                if g.propose(barrier).await.is_err() {
                    // Lost the lead again already; the next change says so.
                    if rx.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
            }
            let name = stream_group.clone();
            let queued = c.sink.call(Box::new(move |rt: &mut Runtime| match name {
                None => rt.meta_role(leading, leader),
                Some(n) => rt.replica_role(&n, leading, leader),
            }));
            if !queued {
                return;
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A [`Machine`] whose state lives on the runtime thread: every call is run there.
pub(crate) struct RuntimeMachine {
    sink: InternalSink,
    /// `None` for the meta group.
    group: Option<String>,
}

impl RuntimeMachine {
    fn meta(sink: InternalSink) -> RuntimeMachine {
        RuntimeMachine { sink, group: None }
    }

    fn stream(sink: InternalSink, group: &str) -> RuntimeMachine {
        RuntimeMachine { sink, group: Some(group.to_string()) }
    }

    async fn on_runtime<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Runtime, Option<&str>) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let group = self.group.clone();
        let queued = self.sink.call(Box::new(move |rt: &mut Runtime| {
            let _ = tx.send(f(rt, group.as_deref()));
        }));
        if !queued {
            return Err("the JetStream runtime stopped".into());
        }
        rx.await.map_err(|_| "the JetStream runtime stopped".to_string())
    }
}

impl Machine for RuntimeMachine {
    async fn applied(&mut self) -> Result<Applied, String> {
        self.on_runtime(|rt, g| match g {
            None => Ok(rt.meta_applied()),
            Some(g) => rt.replica_applied(g),
        })
        .await?
    }

    async fn apply(&mut self, entries: Vec<Committed>) -> Result<Vec<Resp>, String> {
        self.on_runtime(move |rt, g| match g {
            None => rt.apply_meta(entries),
            Some(g) => rt.apply_stream(g, entries),
        })
        .await?
    }

    async fn snapshot(&mut self) -> Result<(Applied, Vec<u8>), String> {
        self.on_runtime(|rt, g| match g {
            None => rt.meta_snapshot(),
            Some(g) => rt.replica_snapshot(g),
        })
        .await?
    }

    async fn install(&mut self, at: Applied, data: Vec<u8>) -> Result<(), String> {
        self.on_runtime(move |rt, g| match g {
            None => rt.meta_install(at, &data),
            Some(g) => rt.replica_install(g, at, &data),
        })
        .await?
    }
}
