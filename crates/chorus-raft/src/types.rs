//! The openraft type configuration every Chorus raft group shares, and the async runtime it
//! runs on: tokio, with the one random draw openraft makes (each node's election timeout)
//! taken from a seedable thread-local generator, so a simulation replays from its seed.

use std::cell::RefCell;
use std::future::Future;
use std::io::Cursor;
use std::time::Duration;

use openraft::OptionalSend;
use openraft::async_runtime::{AsyncRuntime, TokioOneShotSender};
use rand08::SeedableRng;
use serde::{Deserialize, Serialize};

/// A node of a group: one incarnation of a server's store (never reused after a wipe).
pub type NodeId = u64;

/// What a group knows about a member besides its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// The server's name (`server_name`), for logs and monitoring.
    pub server: String,
}

/// A command as the log carries it: bytes the application encodes (a batch of publishes, a
/// purge, a consumer's state...). The group never looks inside.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd(pub Vec<u8>);

/// What applying a command answered (application bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resp(pub Vec<u8>);

openraft::declare_raft_types!(
    /// The type configuration of every Chorus group.
    pub TypeConfig:
        D = Cmd,
        R = Resp,
        NodeId = NodeId,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = Runtime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Membership = openraft::Membership<NodeId, PeerNode>;
pub type StoredMembership = openraft::StoredMembership<NodeId, PeerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, PeerNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Metrics = openraft::RaftMetrics<NodeId, PeerNode>;

thread_local! {
    static RNG: RefCell<Option<rand08::rngs::StdRng>> = const { RefCell::new(None) };
}

/// Seeds this thread's generator: every group created on this thread afterwards draws its
/// election timeout from it, so a simulation run on one thread replays from its seed.
pub fn seed_thread(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Some(rand08::rngs::StdRng::seed_from_u64(seed)));
}

/// tokio, with a seedable generator (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Runtime;

impl AsyncRuntime for Runtime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = tokio::time::Instant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = rand08::rngs::StdRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(d: Duration) -> Self::Sleep {
        tokio::time::sleep(d)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(d: Duration, f: F) -> Self::Timeout<R, F> {
        tokio::time::timeout(d, f)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        f: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout_at(deadline, f)
    }

    fn is_panic(e: &Self::JoinError) -> bool {
        e.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RNG.with(|r| match r.borrow_mut().as_mut() {
            Some(seeded) => rand08::rngs::StdRng::from_rng(seeded).expect("StdRng from StdRng"),
            None => rand08::rngs::StdRng::from_entropy(),
        })
    }

    fn oneshot<T: OptionalSend>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}

/// Encodes a value for the log or the wire (postcard: compact, no schema on the wire).
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("raft types serialise")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}
