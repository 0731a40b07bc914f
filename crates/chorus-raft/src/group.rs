//! One raft group: a [`Raft`] over a [`LogStore`], a [`Machine`] and the server's [`Hub`], with
//! the few operations the application needs (propose, membership, leadership, metrics).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chorus_store::RaftLog;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use tokio::sync::Mutex;

use crate::log::{Flusher, LogStore};
use crate::machine::{Machine, StateMachine};
use crate::net::{Hub, Network};
use crate::types::{Cmd, Metrics, NodeId, PeerNode, Raft, Resp};

/// The timeouts of every group (openraft's defaults, 50 ms heartbeats and 150-300 ms
/// elections with an AppendEntries deadline of one heartbeat including the follower's fsync,
/// are for fast disks and idle machines; these are for 2-vCPU machines with slower disks).
///
/// - `heartbeat`: 100 ms (openraft ticks at 1.5x, so a follower hears from its leader every
///   150 ms); an AppendEntries and the follower's fsync must fit in it.
/// - `election`: 400-800 ms, drawn once per node. A follower that heard nothing for its lease
///   (the maximum) plus its draw stands for election: failover takes about 0.9-1.75 s after a
///   leader dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// One snapshot chunk, including the follower installing the last one.
    pub snapshot_chunk: Duration,
    /// Build a snapshot (and purge the log behind it) after this many entries; 0: only when
    /// the application asks, and the log is purged only as far as it asks.
    pub snapshot_every: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_millis(100),
            election_min: Duration::from_millis(400),
            election_max: Duration::from_millis(800),
            snapshot_chunk: Duration::from_secs(10),
            snapshot_every: 10_000,
        }
    }
}

impl Timing {
    fn config(&self, group: &str) -> Result<Config, GroupError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Config {
            cluster_name: group.to_string(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_min),
            election_timeout_max: ms(self.election_max),
            install_snapshot_timeout: ms(self.snapshot_chunk),
            max_payload_entries: 1024,
            snapshot_policy: match self.snapshot_every {
                0 => SnapshotPolicy::Never,
                n => SnapshotPolicy::LogsSinceLast(n),
            },
            // Without a snapshot policy the application purges the log itself
            // (`trigger().purge_log`), when it knows no member needs the entries any more;
            // openraft's own purge after a snapshot would not know that.
            max_in_snapshot_log_to_keep: if self.snapshot_every == 0 { u64::MAX } else { 1024 },
            purge_batch_size: 256,
            ..Config::default()
        }
        .validate()
        .map_err(|e| GroupError::Config(e.to_string()))
    }
}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum GroupError {
    #[error("invalid raft configuration: {0}")]
    Config(String),
    /// This member is not the leader; the leader, if known.
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// A membership change is already under way (they are done one at a time).
    #[error("a membership change is in progress")]
    InProgress,
    /// The group stopped (storage failure, shutdown): nothing it answers can be trusted.
    #[error("raft group stopped: {0}")]
    Stopped(String),
    /// No answer in time: the command may or may not be committed.
    #[error("no answer from the group in time")]
    Timeout,
}

/// A running group on this server.
#[derive(Clone)]
pub struct Group {
    name: Arc<str>,
    raft: Raft,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("name", &self.name).finish()
    }
}

impl Group {
    /// Starts (or restarts, from what `log` and `machine` hold) this server's member of
    /// `name` and registers it with the hub.
    pub async fn start<M: Machine>(
        name: &str,
        timing: &Timing,
        log: Arc<dyn RaftLog>,
        flusher: Arc<Flusher>,
        machine: Arc<Mutex<M>>,
        hub: Arc<Hub>,
    ) -> Result<Group, GroupError> {
        let config = Arc::new(timing.config(name)?);
        let store = LogStore::new(name, log, flusher);
        let sm = StateMachine::new(name, machine);
        let net = Network::new(hub.clone(), name);
        let raft = Raft::new(hub.me(), config, net, store, sm)
            .await
            .map_err(|e| GroupError::Stopped(e.to_string()))?;
        hub.register(name, raft.clone());
        Ok(Group { name: Arc::from(name), raft, hub })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes a new group of these members (call on one of them; a group that has a log
    /// already ignores it).
    pub async fn initialize(&self, members: BTreeMap<NodeId, PeerNode>) -> Result<(), GroupError> {
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(GroupError::Stopped(e.to_string())),
        }
    }

    /// Appends a command; returns what the leader's machine answered once it is committed
    /// (on a quorum's disks) and applied.
    pub async fn propose(&self, cmd: Vec<u8>) -> Result<Resp, GroupError> {
        match self.raft.client_write(Cmd(cmd)).await {
            Ok(r) => Ok(r.data),
            Err(e) => Err(write_error(e)),
        }
    }

    /// Appends a command without waiting for it: when this returns, the command is in the
    /// leader's queue behind every command submitted before it, so one task submitting in
    /// sequence keeps its commands' order in the log (concurrent [`Group::propose`] calls
    /// have no order). The returned future resolves as [`Group::propose`] does; a member
    /// that does not lead answers `NotLeader` through it.
    pub async fn submit(
        &self,
        cmd: Vec<u8>,
    ) -> Result<impl Future<Output = Result<Resp, GroupError>> + Send + 'static, GroupError> {
        let rx = self
            .raft
            .client_write_ff(Cmd(cmd))
            .await
            .map_err(|f| GroupError::Stopped(f.to_string()))?;
        Ok(async move {
            match rx.await {
                Ok(Ok(r)) => Ok(r.data),
                Ok(Err(e)) => Err(write_error(RaftError::APIError(e))),
                Err(_) => Err(GroupError::Stopped("the group stopped before answering".into())),
            }
        })
    }

    /// [`Group::propose`] from any member: the leader proposes it (forwarded to it when this
    /// member does not lead). Waits at most `ttl`; after `Timeout` or `NotLeader` the command
    /// may still commit (a leader that steps down answers "not the leader" for what it had
    /// appended), so commands must be safe to see twice, or carry what detects it.
    /// Forwarded commands have no order relative to the new leader's own: JetStream does not
    /// forward (its entries must keep each publisher's order), it uses [`Group::submit`].
    pub async fn propose_anywhere(&self, cmd: Vec<u8>, ttl: Duration) -> Result<Resp, GroupError> {
        if self.is_leader() {
            return match tokio::time::timeout(ttl, self.propose(cmd)).await {
                Ok(r) => r,
                Err(_) => Err(GroupError::Timeout),
            };
        }
        match self.leader() {
            Some(l) if l != self.hub.me() => {
                self.hub.forward(l, &self.name, cmd, ttl).await.map(Resp)
            }
            _ => Err(GroupError::NotLeader(None)),
        }
    }

    /// Adds `id` as a voter (as a learner first, so it catches up before it counts).
    pub async fn add_voter(&self, id: NodeId, node: PeerNode) -> Result<(), GroupError> {
        let add = ChangeMembers::AddNodes(BTreeMap::from([(id, node)]));
        self.raft.change_membership(add, true).await.map_err(write_error)?;
        let voters = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft.change_membership(voters, false).await.map_err(write_error)?;
        Ok(())
    }

    /// Removes `id` from the group (voter and node); reported done only once committed.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), GroupError> {
        let rm = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
        self.raft.change_membership(rm, false).await.map_err(write_error)?;
        Ok(())
    }

    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow().clone()
    }

    /// Metrics as they change.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Metrics> {
        self.raft.metrics()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Stops this member (its log and machine stay as they are).
    pub async fn shutdown(&self) {
        self.hub.unregister(&self.name);
        let _ = self.raft.shutdown().await;
    }

    /// The underlying openraft handle (triggers, metrics waits).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }
}

pub(crate) fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>) -> GroupError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            GroupError::NotLeader(f.leader_id)
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            use openraft::error::ChangeMembershipError::*;
            match c {
                InProgress(_) => GroupError::InProgress,
                other => GroupError::Stopped(other.to_string()),
            }
        }
        RaftError::Fatal(f) => GroupError::Stopped(f.to_string()),
    }
}
