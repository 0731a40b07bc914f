//! The [`StreamStore`] trait and its two implementations' glue.

use crate::engine::Expired;
use crate::error::Result;
use crate::filter::SubjectFilter;
use crate::types::{
    Appended, LimitExceeded, Limits, NewMessage, PurgeRequest, RemoveMode, Removed, StorageKind,
    StoredMsg, StreamState, SubjectState, SubjectTotals,
};
use std::collections::BTreeMap;

/// The messages of one stream, whatever holds them (nats-server's `StreamStore`).
///
/// Every mutation is deterministic in its inputs: sequences are assigned as `last_seq + 1`,
/// timestamps and `now` come from the caller, limits are state set through
/// [`StreamStore::set_limits`]. Two replicas fed the same calls end in the same state, which
/// is what a raft layer applying a log needs. Mutations are visible at once; they are durable
/// only after [`StreamStore::sync`] returns (the runtime appends a batch, syncs once, then
/// acks the whole batch).
pub trait StreamStore: Send {
    /// Which backend this is.
    fn kind(&self) -> StorageKind;

    /// Appends one message as `last_seq + 1`, then enforces the discard-old limits
    /// (`max_msgs_per_subject` always; `max_msgs`/`max_bytes` under discard old).
    fn append(&mut self, msg: &NewMessage<'_>) -> Result<Appended>;

    /// Appends messages in order as one atomic write (group commit), then enforces limits once.
    /// An empty batch changes nothing and returns `seq = last_seq + 1 > last_seq`.
    fn append_batch(&mut self, msgs: &[NewMessage<'_>]) -> Result<Appended>;

    /// Hands everything written so far to the storage (for the file store: the operating
    /// system) without waiting for stable storage. Writes are buffered until then so that a
    /// whole batch of publishes costs one database write; they are visible to reads at once.
    /// A store never buffers without bound: it writes on its own past a size limit.
    fn flush(&mut self) -> Result<()>;

    /// Durability barrier: flushes, then returns once everything written so far is on stable
    /// storage.
    fn sync(&mut self) -> Result<()>;

    /// The message at `seq`, or `None` if it never existed or was removed.
    fn load(&self, seq: u64) -> Result<Option<StoredMsg>>;

    /// The newest message matching `filter`.
    fn load_last(&self, filter: &SubjectFilter) -> Result<Option<StoredMsg>>;

    /// The first message at or after `start` matching `filter`; `None` past the end.
    fn load_next(&self, filter: &SubjectFilter, start: u64) -> Result<Option<StoredMsg>>;

    /// Removes one message; `false` if there was none at `seq`.
    fn remove(&mut self, seq: u64, mode: RemoveMode) -> Result<bool>;

    /// `STREAM.PURGE` (nats-server `PurgeEx`); returns how many messages went.
    fn purge(&mut self, req: &PurgeRequest) -> Result<u64>;

    /// Removes every message below `seq`; past the end, empties the stream so the next
    /// message gets `seq`. `0` purges everything. Returns how many messages went.
    fn compact(&mut self, seq: u64) -> Result<u64>;

    /// `STREAM.INFO` numbers; the deleted sequences only when `with_deleted`.
    fn state(&self, with_deleted: bool) -> StreamState;

    /// State of each subject matching `filter`.
    fn subjects_state(&self, filter: &SubjectFilter) -> BTreeMap<String, SubjectState>;

    /// Message count of each subject matching `filter` (`subjects_filter` in `STREAM.INFO`).
    fn subjects_totals(&self, filter: &SubjectFilter) -> SubjectTotals;

    /// Messages at or after `start` matching `filter` (a consumer's `num_pending`); with
    /// `last_per_subject`, the number of matching subjects whose last message is at or after
    /// `start`.
    fn num_pending(
        &self,
        start: u64,
        filter: &SubjectFilter,
        last_per_subject: bool,
    ) -> Result<u64>;

    /// Replaces the limits and enforces them at once (all subjects for the per-subject limit;
    /// max_age waits for [`StreamStore::expire`]). Returns what was removed.
    fn set_limits(&mut self, limits: Limits) -> Result<Removed>;

    /// The limits in force.
    fn limits(&self) -> &Limits;

    /// Under [`crate::Discard::New`], whether `msg` must be refused, as nats-server decides
    /// before storing. `is_rollup` lets a `Nats-Rollup` message past the per-subject check.
    fn check_discard_new(
        &self,
        msg: &NewMessage<'_>,
        is_rollup: bool,
    ) -> Result<Option<LimitExceeded>>;

    /// Removes messages older than `max_age` at `now` (unix nanos) and those whose TTL has
    /// passed; says when to call again.
    fn expire(&mut self, now: i64) -> Result<Expired>;

    /// Deletes every message and the stream's persistent data; the handle is closed after.
    fn delete(&mut self) -> Result<()>;
}

macro_rules! delegate_stream_store {
    ($ty:ty) => {
        impl $crate::StreamStore for $ty {
            fn kind(&self) -> StorageKind {
                self.engine.kind()
            }
            fn append(&mut self, msg: &NewMessage<'_>) -> Result<Appended> {
                self.engine.append(msg)
            }
            fn append_batch(&mut self, msgs: &[NewMessage<'_>]) -> Result<Appended> {
                self.engine.append_batch(msgs)
            }
            fn flush(&mut self) -> Result<()> {
                self.engine.flush()
            }
            fn sync(&mut self) -> Result<()> {
                self.engine.sync()
            }
            fn load(&self, seq: u64) -> Result<Option<StoredMsg>> {
                self.engine.load(seq)
            }
            fn load_last(&self, filter: &SubjectFilter) -> Result<Option<StoredMsg>> {
                self.engine.load_last(filter)
            }
            fn load_next(&self, filter: &SubjectFilter, start: u64) -> Result<Option<StoredMsg>> {
                self.engine.load_next(filter, start)
            }
            fn remove(&mut self, seq: u64, mode: RemoveMode) -> Result<bool> {
                self.engine.remove(seq, mode)
            }
            fn purge(&mut self, req: &PurgeRequest) -> Result<u64> {
                self.engine.purge(req)
            }
            fn compact(&mut self, seq: u64) -> Result<u64> {
                self.engine.compact(seq)
            }
            fn state(&self, with_deleted: bool) -> StreamState {
                self.engine.state(with_deleted)
            }
            fn subjects_state(&self, filter: &SubjectFilter) -> BTreeMap<String, SubjectState> {
                self.engine.subjects_state(filter)
            }
            fn subjects_totals(&self, filter: &SubjectFilter) -> SubjectTotals {
                self.engine.subjects_totals(filter)
            }
            fn num_pending(
                &self,
                start: u64,
                filter: &SubjectFilter,
                last_per_subject: bool,
            ) -> Result<u64> {
                self.engine.num_pending(start, filter, last_per_subject)
            }
            fn set_limits(&mut self, limits: Limits) -> Result<Removed> {
                self.engine.set_limits(limits)
            }
            fn limits(&self) -> &Limits {
                self.engine.limits()
            }
            fn check_discard_new(
                &self,
                msg: &NewMessage<'_>,
                is_rollup: bool,
            ) -> Result<Option<LimitExceeded>> {
                self.engine.check_discard_new(msg, is_rollup)
            }
            fn expire(&mut self, now: i64) -> Result<Expired> {
                self.engine.expire(now)
            }
            fn delete(&mut self) -> Result<()> {
                self.engine.delete()
            }
        }
    };
}

delegate_stream_store!(crate::mem::MemStore);
delegate_stream_store!(crate::file::FileStore);

/// Boxed stores are stores (the runtime holds `Box<dyn StreamStore>`).
impl<S: StreamStore + ?Sized> StreamStore for Box<S> {
    fn kind(&self) -> StorageKind {
        (**self).kind()
    }
    fn append(&mut self, msg: &NewMessage<'_>) -> Result<Appended> {
        (**self).append(msg)
    }
    fn append_batch(&mut self, msgs: &[NewMessage<'_>]) -> Result<Appended> {
        (**self).append_batch(msgs)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn sync(&mut self) -> Result<()> {
        (**self).sync()
    }
    fn load(&self, seq: u64) -> Result<Option<StoredMsg>> {
        (**self).load(seq)
    }
    fn load_last(&self, filter: &SubjectFilter) -> Result<Option<StoredMsg>> {
        (**self).load_last(filter)
    }
    fn load_next(&self, filter: &SubjectFilter, start: u64) -> Result<Option<StoredMsg>> {
        (**self).load_next(filter, start)
    }
    fn remove(&mut self, seq: u64, mode: RemoveMode) -> Result<bool> {
        (**self).remove(seq, mode)
    }
    fn purge(&mut self, req: &PurgeRequest) -> Result<u64> {
        (**self).purge(req)
    }
    fn compact(&mut self, seq: u64) -> Result<u64> {
        (**self).compact(seq)
    }
    fn state(&self, with_deleted: bool) -> StreamState {
        (**self).state(with_deleted)
    }
    fn subjects_state(&self, filter: &SubjectFilter) -> BTreeMap<String, SubjectState> {
        (**self).subjects_state(filter)
    }
    fn subjects_totals(&self, filter: &SubjectFilter) -> SubjectTotals {
        (**self).subjects_totals(filter)
    }
    fn num_pending(
        &self,
        start: u64,
        filter: &SubjectFilter,
        last_per_subject: bool,
    ) -> Result<u64> {
        (**self).num_pending(start, filter, last_per_subject)
    }
    fn set_limits(&mut self, limits: Limits) -> Result<Removed> {
        (**self).set_limits(limits)
    }
    fn limits(&self) -> &Limits {
        (**self).limits()
    }
    fn check_discard_new(
        &self,
        msg: &NewMessage<'_>,
        is_rollup: bool,
    ) -> Result<Option<LimitExceeded>> {
        (**self).check_discard_new(msg, is_rollup)
    }
    fn expire(&mut self, now: i64) -> Result<Expired> {
        (**self).expire(now)
    }
    fn delete(&mut self) -> Result<()> {
        (**self).delete()
    }
}
