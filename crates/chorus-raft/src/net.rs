//! Raft RPCs between servers, multiplexed: every group of a server talks to a peer through
//! one [`Transport`] (in the server, the route to that peer), each frame naming its group.
//!
//! ```text
//!  group G on A: append_entries(to B) ─► Hub::call ─► frame {Request id, G, rpc} ─► Transport
//!                                                                                    │
//!  B: Transport ─► Hub::receive ─► group G's Raft::append_entries ─► frame {Response id} ─┘
//!  A: Hub::receive ─► the waiting call completes (or its deadline passes: Timeout)
//! ```
//!
//! A peer that does not host the group (yet), a frame that cannot be sent, a remote failure:
//! all are `Unreachable` to openraft, which backs off and retries. The pending-call table is
//! bounded by the calls in flight: a call that times out takes its entry with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, PeerNode, Raft, TypeConfig, decode, encode};

/// How frames reach another server.
pub trait Transport: Send + Sync + 'static {
    /// Hands `frame` to node `to` without waiting; false when there is no way there now.
    fn send(&self, to: NodeId, frame: Vec<u8>) -> bool;
}

#[derive(Debug, Serialize, Deserialize)]
enum Frame {
    Request { id: u64, group: String, rpc: Rpc },
    Response { id: u64, reply: Reply },
}

#[derive(Debug, Serialize, Deserialize)]
enum Rpc {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command for the group, from a member that does not lead it (see
    /// [`crate::Group::propose_anywhere`]).
    Propose(Vec<u8>),
    /// An application request for the server's handler (`group` names the topic).
    App(Vec<u8>),
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Append(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    Snapshot(InstallSnapshotResponse<NodeId>),
    /// The receiving server hosts no such group.
    NoGroup,
    /// The group failed the call (it is stopping, or its storage failed).
    Failed(String),
    /// What the group's leader answered a forwarded proposal.
    Proposed(Result<Vec<u8>, crate::GroupError>),
    /// What the application handler answered.
    App(Vec<u8>),
}

/// The server's handler of application requests: `(from, topic, body) -> answer`. It runs on
/// a task of its own per request.
pub type AppHandler = Arc<
    dyn Fn(
            NodeId,
            String,
            Vec<u8>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>
        + Send
        + Sync,
>;

/// Why a call got no answer.
#[derive(Debug)]
enum CallError {
    Unreachable(String),
    Timeout,
}

/// A server's end of the raft traffic: the groups it hosts, and its calls in flight.
pub struct Hub {
    me: NodeId,
    transport: Arc<dyn Transport>,
    groups: RwLock<FxHashMap<String, Raft>>,
    app: RwLock<Option<AppHandler>>,
    pending: Mutex<FxHashMap<u64, tokio::sync::oneshot::Sender<Reply>>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("me", &self.me).finish()
    }
}

impl Hub {
    pub fn new(me: NodeId, transport: Arc<dyn Transport>) -> Arc<Hub> {
        Arc::new(Hub {
            me,
            transport,
            groups: RwLock::default(),
            app: RwLock::default(),
            pending: Mutex::default(),
            next: AtomicU64::new(1),
        })
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Routes incoming RPCs for `group` to `raft`.
    pub fn register(&self, group: &str, raft: Raft) {
        self.groups.write().unwrap_or_else(|e| e.into_inner()).insert(group.to_string(), raft);
    }

    pub fn unregister(&self, group: &str) {
        self.groups.write().unwrap_or_else(|e| e.into_inner()).remove(group);
    }

    /// Sets the handler of application requests ([`Hub::request`] from other servers).
    pub fn set_app_handler(&self, h: AppHandler) {
        *self.app.write().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Sends an application request to node `to` and waits at most `ttl` for its answer.
    pub async fn request(
        &self,
        to: NodeId,
        topic: &str,
        body: Vec<u8>,
        ttl: Duration,
    ) -> Option<Vec<u8>> {
        match self.call(to, topic, Rpc::App(body), ttl).await {
            Ok(Reply::App(b)) => Some(b),
            _ => None,
        }
    }

    /// Forwards a proposal to node `to`, the group's leader as far as we know.
    pub(crate) async fn forward(
        &self,
        to: NodeId,
        group: &str,
        cmd: Vec<u8>,
        ttl: Duration,
    ) -> Result<Vec<u8>, crate::GroupError> {
        match self.call(to, group, Rpc::Propose(cmd), ttl).await {
            Ok(Reply::Proposed(r)) => r,
            Ok(Reply::NoGroup) => Err(crate::GroupError::NotLeader(None)),
            Ok(_) | Err(CallError::Unreachable(_)) => Err(crate::GroupError::NotLeader(None)),
            Err(CallError::Timeout) => Err(crate::GroupError::Timeout),
        }
    }

    fn group(&self, name: &str) -> Option<Raft> {
        self.groups.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// A frame from node `from`: a request is served on its own task; a response completes
    /// the call waiting for it. Undecodable frames are dropped (and logged): the caller's
    /// deadline covers them.
    pub fn receive(self: &Arc<Self>, from: NodeId, frame: &[u8]) {
        let frame: Frame = match decode(frame) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("raft: undecodable frame from node {from}: {e}");
                return;
            }
        };
        match frame {
            Frame::Response { id, reply } => {
                let waiter = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(reply);
                }
            }
            Frame::Request { id, group, rpc } => {
                let hub = self.clone();
                tokio::spawn(async move {
                    let reply = match rpc {
                        Rpc::App(body) => {
                            let h = hub.app.read().unwrap_or_else(|e| e.into_inner()).clone();
                            match h {
                                Some(h) => Reply::App(h(from, group, body).await),
                                None => Reply::NoGroup,
                            }
                        }
                        rpc => match hub.group(&group) {
                            None => Reply::NoGroup,
                            Some(raft) => serve(&raft, rpc).await,
                        },
                    };
                    hub.transport.send(from, encode(&Frame::Response { id, reply }));
                });
            }
        }
    }

    async fn call(
        &self,
        to: NodeId,
        group: &str,
        rpc: Rpc,
        ttl: Duration,
    ) -> Result<Reply, CallError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let frame = encode(&Frame::Request { id, group: group.to_string(), rpc });
        if !self.transport.send(to, frame) {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(CallError::Unreachable(format!("no route to node {to}")));
        }
        let r = tokio::time::timeout(ttl, rx).await;
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match r {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(CallError::Unreachable("call dropped".into())),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Calls in flight (monitoring, and tests that nothing leaks).
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

async fn serve(raft: &Raft, rpc: Rpc) -> Reply {
    match rpc {
        Rpc::Append(r) => match raft.append_entries(r).await {
            Ok(x) => Reply::Append(x),
            Err(e) => Reply::Failed(e.to_string()),
        },
        Rpc::Vote(r) => match raft.vote(r).await {
            Ok(x) => Reply::Vote(x),
            Err(e) => Reply::Failed(e.to_string()),
        },
        Rpc::Snapshot(r) => match raft.install_snapshot(r).await {
            Ok(x) => Reply::Snapshot(x),
            Err(e) => Reply::Failed(e.to_string()),
        },
        // Only a leader proposes; a member that lost the lead says so and the caller retries.
        Rpc::Propose(cmd) => match raft.client_write(crate::types::Cmd(cmd)).await {
            Ok(r) => Reply::Proposed(Ok(r.data.0)),
            Err(e) => Reply::Proposed(Err(crate::group::write_error(e))),
        },
        Rpc::App(_) => Reply::NoGroup,
    }
}

/// openraft's network factory for one group.
#[derive(Debug, Clone)]
pub struct Network {
    hub: Arc<Hub>,
    group: Arc<str>,
}

impl Network {
    pub fn new(hub: Arc<Hub>, group: &str) -> Network {
        Network { hub, group: Arc::from(group) }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Client;

    async fn new_client(&mut self, target: NodeId, _node: &PeerNode) -> Client {
        Client { hub: self.hub.clone(), group: self.group.clone(), target }
    }
}

/// One group's calls to one member (a cheap handle: the connection is the hub's).
#[derive(Debug)]
pub struct Client {
    hub: Arc<Hub>,
    group: Arc<str>,
    target: NodeId,
}

impl Client {
    fn fail<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        e: CallError,
    ) -> RPCError<NodeId, PeerNode, E> {
        match e {
            CallError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.hub.me,
                target: self.target,
                timeout: ttl,
            }),
            CallError::Unreachable(why) => RPCError::Unreachable(Unreachable::new(&Why(why))),
        }
    }
}

/// A reason as an error value.
#[derive(Debug)]
struct Why(String);

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Why {}

fn unexpected<E: std::error::Error>(r: Reply) -> RPCError<NodeId, PeerNode, E> {
    match r {
        Reply::NoGroup => {
            RPCError::Unreachable(Unreachable::new(&Why("group not hosted there".into())))
        }
        Reply::Failed(e) => RPCError::Unreachable(Unreachable::new(&Why(e))),
        other => RPCError::Network(NetworkError::new(&Why(format!("unexpected reply {other:?}")))),
    }
}

impl RaftNetwork<TypeConfig> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        match self.hub.call(self.target, &self.group, Rpc::Append(rpc), ttl).await {
            Ok(Reply::Append(r)) => Ok(r),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(self.fail(RPCTypes::AppendEntries, ttl, e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, PeerNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let ttl = option.hard_ttl();
        match self.hub.call(self.target, &self.group, Rpc::Snapshot(rpc), ttl).await {
            Ok(Reply::Snapshot(r)) => Ok(r),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(self.fail(RPCTypes::InstallSnapshot, ttl, e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        match self.hub.call(self.target, &self.group, Rpc::Vote(rpc), ttl).await {
            Ok(Reply::Vote(r)) => Ok(r),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(self.fail(RPCTypes::Vote, ttl, e)),
        }
    }
}
