//! Values that cross the [`StreamStore`](crate::StreamStore) boundary.

use bytes::Bytes;
use std::collections::BTreeMap;

/// Which backend holds a stream (`storage: file|memory` in the stream config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// [`crate::FileStore`]: RocksDB, survives restarts.
    File,
    /// [`crate::MemStore`]: lost on restart, as nats-server's memory streams.
    Memory,
}

/// Per-message time to live, as carried by the `Nats-TTL` header (ADR-43). nats-server keeps
/// TTLs in whole seconds; so do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MsgTtl {
    /// No per-message TTL: the stream's `max_age` alone applies.
    #[default]
    None,
    /// `Nats-TTL: never`: the message is exempt from `max_age`.
    Never,
    /// Expires this many seconds after its timestamp.
    Seconds(u64),
}

impl MsgTtl {
    /// The on-disk form: 0 none, -1 never, n > 0 seconds (nats-server's `ttl int64`).
    pub fn to_raw(self) -> i64 {
        match self {
            MsgTtl::None => 0,
            MsgTtl::Never => -1,
            MsgTtl::Seconds(s) => i64::try_from(s).unwrap_or(i64::MAX),
        }
    }

    /// Inverse of [`MsgTtl::to_raw`]; any negative value means never.
    pub fn from_raw(raw: i64) -> Self {
        match raw {
            0 => MsgTtl::None,
            r if r < 0 => MsgTtl::Never,
            r => MsgTtl::Seconds(r as u64),
        }
    }

    /// Absolute expiry in unix nanos for a message stored at `ts`, if it expires by TTL.
    pub fn expires_at(self, ts: i64) -> Option<i64> {
        match self {
            MsgTtl::Seconds(s) if s > 0 => {
                Some(ts.saturating_add((s as i64).saturating_mul(1_000_000_000)))
            }
            _ => None,
        }
    }
}

/// A message to append. Sequence numbers are not an input: the store assigns `last_seq + 1`,
/// which is deterministic given the same history, so raft replicas agree.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Literal subject the message was published on.
    pub subject: &'a str,
    /// Raw header block (`NATS/1.0\r\n...`), if the publish carried one.
    pub headers: Option<&'a [u8]>,
    /// Message body.
    pub payload: &'a [u8],
    /// Publish time in unix nanoseconds, chosen by the leader.
    pub timestamp: i64,
    /// Per-message TTL.
    pub ttl: MsgTtl,
}

impl<'a> NewMessage<'a> {
    /// A message without headers or TTL.
    pub fn new(subject: &'a str, payload: &'a [u8], timestamp: i64) -> Self {
        NewMessage { subject, headers: None, payload, timestamp, ttl: MsgTtl::None }
    }

    /// Sets the header block.
    pub fn with_headers(mut self, headers: &'a [u8]) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sets the per-message TTL.
    pub fn with_ttl(mut self, ttl: MsgTtl) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A stored message as loaded back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Stream sequence.
    pub seq: u64,
    /// Unix nanoseconds given at append.
    pub timestamp: i64,
    /// Subject.
    pub subject: String,
    /// Header block, if any.
    pub headers: Option<Bytes>,
    /// Body.
    pub payload: Bytes,
    /// Per-message TTL given at append.
    pub ttl: MsgTtl,
}

/// Byte size of a message as nats-server's memory store counts it (`memStoreMsgSize`):
/// subject + headers + payload + 16 (sequence and timestamp).
pub fn mem_msg_size(subject_len: usize, headers_len: usize, payload_len: usize) -> u64 {
    (subject_len + headers_len + payload_len + 16) as u64
}

/// Byte size of a message as nats-server's file store counts it (`fileStoreMsgSize`): the
/// record framing (length 4, seq 8, ts 8, subject length 2, hash 8) plus 4 for the header
/// length when there are headers. `max_bytes` and `STREAM.INFO` bytes use this for file streams.
pub fn file_msg_size(subject_len: usize, headers_len: usize, payload_len: usize) -> u64 {
    if headers_len == 0 {
        (22 + subject_len + payload_len + 8) as u64
    } else {
        (22 + subject_len + 4 + headers_len + payload_len + 8) as u64
    }
}

/// What happens when a limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discard {
    /// Remove the oldest messages (nats-server `discard: old`, the default).
    #[default]
    Old,
    /// Refuse new messages; see [`crate::StreamStore::check_discard_new`].
    New,
}

/// The retention limits of a stream, as far as the store enforces them. `None` = unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max_msgs`.
    pub max_msgs: Option<u64>,
    /// `max_bytes`, counted with the backend's message size.
    pub max_bytes: Option<u64>,
    /// `max_age` in nanoseconds; applied by [`crate::StreamStore::expire`] given `now`.
    pub max_age_nanos: Option<i64>,
    /// `max_msgs_per_subject`; enforced whatever the discard policy, as nats-server does.
    pub max_msgs_per_subject: Option<u64>,
    /// `discard`.
    pub discard: Discard,
    /// `discard_new_per_subject`: with [`Discard::New`], refuse a message whose subject is at
    /// its per-subject limit.
    pub discard_new_per_subject: bool,
}

/// Which limit a [`Discard::New`] check tripped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// nats-server `ErrMaxMsgs`.
    #[error("maximum messages exceeded")]
    MaxMsgs,
    /// nats-server `ErrMaxBytes`.
    #[error("maximum bytes exceeded")]
    MaxBytes,
    /// nats-server `ErrMaxMsgsPerSubject`.
    #[error("maximum messages per subject exceeded")]
    MaxMsgsPerSubject,
}

/// Messages a mutation removed (limits, TTLs, max_age): the stream layer tells consumers and
/// emits subject delete markers from this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Removed sequences, ascending.
    pub seqs: Vec<u64>,
    /// Sum of their sizes.
    pub bytes: u64,
}

impl Removed {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// Result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Sequence of the (first) appended message.
    pub seq: u64,
    /// Sequence of the last appended message (equal to `seq` for a single append).
    pub last_seq: u64,
    /// What discard-old limits removed to make room.
    pub removed: Removed,
}

/// How [`crate::StreamStore::remove`] gets rid of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveMode {
    /// Delete the record (nats-server `RemoveMsg`).
    Remove,
    /// Delete and make the content unrecoverable as far as the backend can (`EraseMsg`,
    /// `STREAM.MSG.DELETE` with `no_erase: false`). MemStore overwrites the buffers; FileStore
    /// deletes the record and compacts the key range so older SST versions are rewritten.
    Erase,
}

/// A `STREAM.PURGE` request, with nats-server's `PurgeEx` semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeRequest {
    /// Subject filter (may contain wildcards); `None` or `>` = all subjects.
    pub subject: Option<String>,
    /// Purge sequences strictly below this one (0 = no bound).
    pub seq: u64,
    /// Keep this many of the newest matching messages (0 = keep none).
    pub keep: u64,
}

/// Counts for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubjectState {
    /// Messages on the subject.
    pub msgs: u64,
    /// First sequence of the subject.
    pub first: u64,
    /// Last sequence of the subject.
    pub last: u64,
}

/// `STREAM.INFO` state numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Messages stored.
    pub msgs: u64,
    /// Bytes stored (backend's size accounting).
    pub bytes: u64,
    /// First sequence (`last_seq + 1` when empty after a purge; 0 for a new stream).
    pub first_seq: u64,
    /// Timestamp of the first message, unix nanos; 0 when empty.
    pub first_ts: i64,
    /// Last sequence ever assigned (removing the last message does not lower it).
    pub last_seq: u64,
    /// Timestamp of the last appended message; 0 if none ever.
    pub last_ts: i64,
    /// Interior deletes: `last_seq - first_seq + 1 - msgs` when non-empty.
    pub num_deleted: u64,
    /// The deleted sequences, only when asked for.
    pub deleted: Option<Vec<u64>>,
    /// Distinct subjects.
    pub num_subjects: u64,
    /// Sequences whose records failed their checksum on read (FileStore). Non-empty means the
    /// stream needs [`crate::Store::repair_stream`].
    pub corrupt: Vec<u64>,
}

/// Per-subject totals, ordered by subject (`subjects_filter` of `STREAM.INFO`).
pub type SubjectTotals = BTreeMap<String, u64>;
