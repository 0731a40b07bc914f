//! A group's log on a [`RaftLog`], and the [`Flusher`] that makes appends durable for many
//! groups with one fsync.
//!
//! ```text
//!  group A append ─┐                          ┌─► A: log_io_completed   (raft may now count
//!  group B append ─┼─► RaftLog::append ──► Flusher: one RaftLog::sync ─┤     the entries as
//!  group C append ─┘   (visible, not durable)  (the WAL's fsync)      └─► C: ...   saved)
//! ```
//!
//! openraft waits for each group's flush before the group does anything else, so the
//! flusher's batching across groups is where the throughput of many groups comes from.
//! Raft is told an entry is saved only after the sync that covers it returned (openraft's own
//! 0.9 RocksDB example tells it before any fsync; that loses acknowledged entries on a power
//! cut). A vote is synced before `save_vote` returns. A failed sync completes every waiting
//! flush with the error: the groups stop (openraft treats storage errors as fatal), and the
//! store is poisoned for everything else too.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use chorus_store::{RaftLog, StoreError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote, decode, encode};

/// The most bytes of entries one AppendEntries carries (openraft limits only their count):
/// with the follower's fsync it must fit in a heartbeat interval.
pub const MAX_APPEND_BYTES: usize = 4 * 1024 * 1024;

enum Job {
    Flushed(LogFlushed<TypeConfig>),
    Sync(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// Makes appends durable: one sync of the shared log for every flush waiting (see the
/// module docs).
#[derive(Debug)]
pub struct Flusher {
    log: Arc<dyn RaftLog>,
    /// `None`: sync and complete inline (memory logs, and the simulator, whose clock must not
    /// see work leave the runtime).
    tx: Option<std::sync::Mutex<Sender<Job>>>,
}

impl Flusher {
    /// A flusher with its own thread (a durable log), or inline for a memory one.
    pub fn start(log: Arc<dyn RaftLog>) -> std::io::Result<Arc<Flusher>> {
        if !log.durable() {
            return Ok(Flusher::inline(log));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_log = log.clone();
        std::thread::Builder::new()
            .name("chorus-raft-sync".into())
            .spawn(move || run(thread_log, rx))?;
        Ok(Arc::new(Flusher { log, tx: Some(std::sync::Mutex::new(tx)) }))
    }

    /// Syncs inside the caller (the simulator's logs sync instantly).
    pub fn inline(log: Arc<dyn RaftLog>) -> Arc<Flusher> {
        Arc::new(Flusher { log, tx: None })
    }

    fn submit(&self, job: Job) {
        match &self.tx {
            Some(tx) => {
                let tx = tx.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(std::sync::mpsc::SendError(job)) = tx.send(job) {
                    complete(job, Err("the raft sync thread is gone".into()));
                }
            }
            None => {
                let r = self.log.sync().map_err(|e| e.to_string());
                complete(job, r);
            }
        }
    }

    /// Completes `cb` once what was appended so far is durable.
    fn flushed(&self, cb: LogFlushed<TypeConfig>) {
        self.submit(Job::Flushed(cb));
    }

    /// Returns once everything written so far is durable.
    async fn sync_now(&self) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Sync(tx));
        rx.await.map_err(|_| "the raft sync thread is gone".to_string())?
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Flushed(_) => "Flushed",
            Job::Sync(_) => "Sync",
        })
    }
}

fn complete(job: Job, r: Result<(), String>) {
    match job {
        Job::Flushed(cb) => cb.log_io_completed(r.map_err(std::io::Error::other)),
        Job::Sync(tx) => {
            let _ = tx.send(r);
        }
    }
}

fn run(log: Arc<dyn RaftLog>, rx: Receiver<Job>) {
    let mut jobs = Vec::new();
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let r = log.sync().map_err(|e| e.to_string());
        if let Err(e) = &r {
            tracing::error!("raft log sync failed, the groups waiting on it stop: {e}");
        }
        for j in jobs.drain(..) {
            complete(j, r.clone());
        }
    }
}

/// One group's log (openraft's `RaftLogStorage`). Cheap to clone: the log reader is a clone.
#[derive(Debug, Clone)]
pub struct LogStore {
    group: Arc<str>,
    log: Arc<dyn RaftLog>,
    flusher: Arc<Flusher>,
}

impl LogStore {
    pub fn new(group: &str, log: Arc<dyn RaftLog>, flusher: Arc<Flusher>) -> LogStore {
        LogStore { group: Arc::from(group), log, flusher }
    }

    fn err(&self, verb: ErrorVerb, e: &StoreError) -> StorageError {
        StorageIOError::new(ErrorSubject::Logs, verb, AnyError::new(e)).into()
    }

    fn decode_entries(&self, raw: Vec<(u64, Vec<u8>)>) -> Result<Vec<Entry>, StorageError> {
        raw.into_iter()
            .map(|(i, b)| {
                decode::<Entry>(&b).map_err(|e| {
                    let e = StoreError::Corrupt {
                        stream: format!("raft group {}", self.group),
                        seq: i,
                        detail: format!("undecodable entry: {e}"),
                    };
                    self.err(ErrorVerb::Read, &e)
                })
            })
            .collect()
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.log.meta(&self.group, key) {
            Ok(None) => Ok(None),
            Ok(Some(b)) => decode(&b).map(Some).map_err(|e| {
                let e = StoreError::Corrupt {
                    stream: format!("raft group {}", self.group),
                    seq: 0,
                    detail: format!("undecodable {key}: {e}"),
                };
                self.err(ErrorVerb::Read, &e)
            }),
            Err(e) => Err(self.err(ErrorVerb::Read, &e)),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &str, v: &T) -> Result<(), StorageError> {
        self.log.put_meta(&self.group, key, &encode(v)).map_err(|e| self.err(ErrorVerb::Write, &e))
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    use std::ops::Bound::*;
    let start = match range.start_bound() {
        Included(s) => *s,
        Excluded(s) => s.saturating_add(1),
        Unbounded => 0,
    };
    let end = match range.end_bound() {
        Included(e) => e.saturating_add(1),
        Excluded(e) => *e,
        Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        let raw = self
            .log
            .entries(&self.group, start, end, usize::MAX)
            .map_err(|e| self.err(ErrorVerb::Read, &e))?;
        self.decode_entries(raw)
    }

    /// Replication reads through this: a byte budget per AppendEntries (see
    /// [`MAX_APPEND_BYTES`]), never empty for a range that holds entries.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let raw = self
            .log
            .entries(&self.group, start, end, MAX_APPEND_BYTES)
            .map_err(|e| self.err(ErrorVerb::Read, &e))?;
        self.decode_entries(raw)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged: Option<LogId> = self.meta("purged")?;
        let last = match self.log.last(&self.group).map_err(|e| self.err(ErrorVerb::Read, &e))? {
            Some(raw) => self.decode_entries(vec![raw])?.pop().map(|e| e.log_id),
            None => None,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last.or(purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta("vote", vote)?;
        // A vote must be on disk before it is cast: a restarted node must not vote twice in
        // a term.
        self.flusher.sync_now().await.map_err(|e| {
            StorageIOError::new(ErrorSubject::Vote, ErrorVerb::Write, AnyError::error(e)).into()
        })
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.meta("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta("committed", &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>("committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let raw: Vec<(u64, Vec<u8>)> =
            entries.into_iter().map(|e| (e.log_id.index, encode(&e))).collect();
        self.log.append(&self.group, &raw).map_err(|e| self.err(ErrorVerb::Write, &e))?;
        self.flusher.flushed(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.log.truncate(&self.group, log_id.index).map_err(|e| self.err(ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge point first: a crash between the two leaves entries already purged on
        // paper, never a hole at the front of the log.
        self.put_meta("purged", &log_id)?;
        self.log.purge(&self.group, log_id.index).map_err(|e| self.err(ErrorVerb::Delete, &e))
    }
}
