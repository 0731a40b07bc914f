//! JetStream storage for Chorus: the [`StreamStore`] trait, [`MemStore`] for `storage: memory`
//! streams, [`FileStore`] on RocksDB for `storage: file`, and [`testing`], the behaviour suite
//! both backends pass (as nats-server runs its store tests against each of its stores).
//!
//! The behavioural reference is nats-server's `server/store.go`, `memstore.go` and
//! `filestore.go`: sequence numbering, purge/compact semantics, limits and their order,
//! message sizes ([`mem_msg_size`], [`file_msg_size`]) so `max_bytes` behaves the same.
//!
//! # Layout
//!
//! ```text
//! types.rs    NewMessage, StoredMsg, Limits, StreamState, ... (the trait's vocabulary)
//! filter.rs   SubjectFilter: all / literals / wildcard patterns
//! stream.rs   the StreamStore trait
//! engine.rs   the shared logic: summary (counts, first/last, per-subject state, interior
//!             deletes, TTL schedule) + nats-server's rules, over a small Backend trait
//! mem.rs      MemStore: BTreeMap<seq, msg> + per-subject sequence sets
//! file/       Store (one RocksDB per server), FileStore (one stream), codec (keys, records)
//! raftlog.rs  RaftLog: raft groups' logs (MemRaftLog; RocksDB on Store, column family raft)
//! testing.rs  the shared suite, one pub fn per behaviour, taking a store factory
//! ```
//!
//! # FileStore: key layout
//!
//! One database per server, four column families. Integers in keys are big-endian so keys
//! sort by (stream, sequence); a stream id is allocated once and never reused, so a deleted
//! stream's range tombstones cannot hide a new stream's keys.
//!
//! ```text
//! messages  [stream_id u64][seq u64]                        -> record (below)
//! subjects  [stream_id u64][len u16][subject][seq u64]      -> [size u64][expires i64][crc u32]
//! meta      "V"                                             -> format version (u32)
//!           "N"                                             -> next stream id        + crc
//!           "S" name                                        -> [stream_id][config]   + crc
//!           "Q" [stream_id]                                 -> [first][last][last_ts] + crc
//!           "C" [stream_id] consumer                        -> consumer state blob   + crc
//! raft      [len u8][group]["E"][index u64] -> entry, ["M"][key] -> vote etc. (raftlog.rs)
//!
//! record:  ver u8 | flags u8 | ts i64 | ttl i64 | subj_len u16 | hdr_len u32 | meta_crc u32
//!          | subject | headers | payload | body_crc u32
//!          meta_crc = crc32(key, first 24 bytes, subject)   body_crc = crc32(key, hdrs, payload)
//! ```
//!
//! The subject index answers last-by-subject (`seek_for_prev`), next-by-subject (`seek`),
//! per-subject limits (oldest entries of one subject) and filtered counts, and carries each
//! message's size and TTL expiry so removals by subject never read the message records.
//!
//! # FileStore: write path
//!
//! ```text
//! append / append_batch / remove / purge / compact / expire / set_limits
//!   -> engine updates the in-memory summary and stages puts/deletes in ONE WriteBatch
//!      (an overlay of the staged keys lets limit enforcement read its own writes)
//!   -> + "Q" watermarks (first/last seq, last_ts) in the same batch
//!   -> DB::write (WAL, no fsync)                   visible to readers
//! sync()
//!   -> DB::flush_wal(true)  = one fsync of the WAL  durable; the runtime acks the batch now
//! ```
//!
//! A failed write or fsync **poisons** the store: every later operation on every stream of
//! that database fails with [`StoreError::Poisoned`]; nothing retries. Restarting the process
//! replays the WAL, which knows what actually reached the disk. An operation that fails
//! half-way for another reason (a corrupt record met while removing) discards its batch and
//! puts the stream handle out of service ([`StoreError::Broken`]); reopening rebuilds it.
//!
//! # Startup
//!
//! [`Store::open_stream`] scans only the stream's subject-index entries (20-byte values, no
//! payloads) to rebuild message and byte counts, per-subject first/last/count, the TTL
//! schedule and the interior deletes, then reads the first record for `first_ts`.
//!
//! # Corruption policy
//!
//! Every record and index entry is checked against its CRC when read. A mismatch is returned
//! as [`StoreError::Corrupt`] naming the stream and sequence, the sequence is listed in
//! [`StreamState::corrupt`], and the record stays on disk: nothing is dropped silently.
//! Loads of other messages keep working. A mutation that must read the bad record fails; if
//! it had already changed the summary (e.g. limit enforcement after an append), its batch is
//! dropped and the handle is broken. A damaged index entry, or a damaged header of the first
//! record, makes `open_stream` fail. The only repair is explicit: [`Store::repair_stream`]
//! deletes the records that fail verification, rebuilds the index from the good ones and
//! reports the removed sequences (the caller decides what to tell the operator).
//!
//! # Which RocksDB
//!
//! RocksDB 7.9.2, the source bundled with librocksdb-sys 0.10 (`rocksdb = "=0.20.1"`), compiled
//! once per machine by `scripts/build-rocksdb` (release, `NDEBUG`, hardware CRC32C, snappy)
//! into a static archive that every build kind links (`.cargo/config.toml`). Letting the crate
//! compile it costs ~7 minutes of 2 cores per build kind (dev, release, check/clippy); Debian's
//! `librocksdb-dev` (7.8.3), used before, is built with assertions on, which took about a
//! third of the JetStream storing thread's CPU (skiplist neighbour checks on every memtable
//! insert). Snappy is the only codec, as with the Debian library's default, so stores
//! written before still open.

mod engine;
mod error;
pub mod file;
mod filter;
mod mem;
pub mod raftlog;
mod stream;
pub mod testing;
mod types;

pub use engine::Expired;
pub use error::{Result, StoreError};
pub use file::{Fault, FileStore, RepairReport, Store};
pub use filter::SubjectFilter;
pub use mem::MemStore;
pub use raftlog::{MemRaftLog, RaftLog};
pub use stream::StreamStore;
pub use types::{
    Appended, Discard, LimitExceeded, Limits, MsgTtl, NewMessage, PurgeRequest, RemoveMode,
    Removed, StorageKind, StoredMsg, StreamState, SubjectState, SubjectTotals, file_msg_size,
    mem_msg_size,
};
