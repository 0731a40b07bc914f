//! The application's side of a group: a [`Machine`] applies committed commands in order and
//! keeps what it applied (its position and the group's membership) with its own state, so a
//! restart resumes from there; openraft replays the log after it.
//!
//! [`StateMachine`] adapts a `Machine` to openraft's `RaftStateMachine`. Snapshots are the
//! machine's state as bytes at its applied position; the latest one is kept for replicas that
//! fell behind the purged log.

use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder,
    StorageIOError,
};
use tokio::sync::Mutex;

use crate::types::{
    Entry, LogId, Resp, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// A committed entry, as the machine sees it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub log_id: LogId,
    pub payload: Payload,
}

#[derive(Debug, Clone)]
pub enum Payload {
    /// A new leader's first entry: nothing to apply.
    Blank,
    /// An application command.
    Command(Vec<u8>),
    /// The group's members changed: keep this with the state.
    Membership(StoredMembership),
}

/// Where a machine's state stands.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub log_id: Option<LogId>,
    pub membership: StoredMembership,
}

/// What a group replicates into (the application implements it).
pub trait Machine: Send + Sync + 'static {
    /// The position and membership the state was last persisted at.
    fn applied(&mut self) -> impl Future<Output = Result<Applied, String>> + Send;

    /// Applies committed entries in order; one response per entry (blank and membership
    /// entries included). An error stops the group: the state can no longer be trusted.
    fn apply(
        &mut self,
        entries: Vec<Committed>,
    ) -> impl Future<Output = Result<Vec<Resp>, String>> + Send;

    /// The whole state as bytes, with the position it is at.
    fn snapshot(&mut self) -> impl Future<Output = Result<(Applied, Vec<u8>), String>> + Send;

    /// Replaces the state with a snapshot's (a replica catching up).
    fn install(
        &mut self,
        at: Applied,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The latest snapshot built or installed, with its bytes.
type Kept = Arc<Mutex<Option<(SnapshotMeta, Vec<u8>)>>>;

/// openraft's state machine over a [`Machine`].
pub struct StateMachine<M: Machine> {
    machine: Arc<Mutex<M>>,
    /// The latest snapshot built or installed.
    current: Kept,
    group: Arc<str>,
}

impl<M: Machine> std::fmt::Debug for StateMachine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").field("group", &self.group).finish()
    }
}

impl<M: Machine> StateMachine<M> {
    pub fn new(group: &str, machine: Arc<Mutex<M>>) -> StateMachine<M> {
        StateMachine { machine, current: Arc::default(), group: Arc::from(group) }
    }
}

fn sm_err(verb: ErrorVerb, e: String) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::error(e)).into()
}

impl<M: Machine> RaftStateMachine<TypeConfig> for StateMachine<M> {
    type SnapshotBuilder = Builder<M>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a =
            self.machine.lock().await.applied().await.map_err(|e| sm_err(ErrorVerb::Read, e))?;
        Ok((a.log_id, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Resp>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let batch: Vec<Committed> = entries
            .into_iter()
            .map(|e| Committed {
                log_id: e.log_id,
                payload: match e.payload {
                    EntryPayload::Blank => Payload::Blank,
                    EntryPayload::Normal(c) => Payload::Command(c.0),
                    EntryPayload::Membership(m) => {
                        Payload::Membership(StoredMembership::new(Some(e.log_id), m))
                    }
                },
            })
            .collect();
        let n = batch.len();
        let out = self
            .machine
            .lock()
            .await
            .apply(batch)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        if out.len() != n {
            // openraft needs exactly one answer per entry.
            return Err(sm_err(
                ErrorVerb::Write,
                format!("group {}: {} answers for {n} entries", self.group, out.len()),
            ));
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Builder { machine: self.machine.clone(), current: self.current.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let at = Applied { log_id: meta.last_log_id, membership: meta.last_membership.clone() };
        self.machine
            .lock()
            .await
            .install(at, data.clone())
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        *self.current.lock().await = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self
            .current
            .lock()
            .await
            .clone()
            .map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// Builds snapshots (openraft runs it beside `apply`; the machine's lock orders them).
pub struct Builder<M: Machine> {
    machine: Arc<Mutex<M>>,
    current: Kept,
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for Builder<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (at, data) =
            self.machine.lock().await.snapshot().await.map_err(|e| sm_err(ErrorVerb::Read, e))?;
        let id = match at.log_id {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: at.log_id,
            last_membership: at.membership,
            snapshot_id: id,
        };
        *self.current.lock().await = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
