//! Raft logs: the [`RaftLog`] trait the raft layer stores its groups' entries and votes
//! through, [`MemRaftLog`] (memory streams' groups, tests) and the RocksDB one on [`Store`]
//! (column family `raft`, the same database and WAL as the streams, so one fsync covers every
//! group's appends and the streams' writes: group commit across groups).
//!
//! The trait is deliberately small and synchronous: writes are visible at once and become
//! durable at the next [`RaftLog::sync`], which the raft layer calls once for many appends
//! before it tells raft they are saved. Every value carries a CRC32 over its key and bytes; a
//! value that fails it is reported as [`StoreError::Corrupt`], never returned.
//!
//! RocksDB key layout in `raft` (integers big-endian, so a group's entries sort by index):
//!
//! ```text
//! [group len u8][group]["E"][index u64]   -> entry bytes + crc
//! [group len u8][group]["M"][key]         -> meta bytes + crc   (vote, purged, ...)
//! ```
//!
//! [`Store`]: crate::Store

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::{Result, StoreError};

/// Storage for the logs of many raft groups, keyed by group name.
pub trait RaftLog: Send + Sync + std::fmt::Debug {
    /// Writes entries `(index, bytes)` of `group`: readable at once, durable after the next
    /// [`RaftLog::sync`]. Indexes are consecutive and follow what is stored.
    fn append(&self, group: &str, entries: &[(u64, Vec<u8>)]) -> Result<()>;

    /// Entries with `start <= index < end`, in order, stopping early once `max_bytes` are
    /// taken (always at least one entry when the range holds any).
    fn entries(
        &self,
        group: &str,
        start: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>>;

    /// The entry with the highest index.
    fn last(&self, group: &str) -> Result<Option<(u64, Vec<u8>)>>;

    /// Deletes entries from `index` on (a conflicting suffix).
    fn truncate(&self, group: &str, index: u64) -> Result<()>;

    /// Deletes entries up to and including `index` (compaction).
    fn purge(&self, group: &str, index: u64) -> Result<()>;

    /// Writes a small value of `group` (its vote, its purge point), durable after the next sync.
    fn put_meta(&self, group: &str, key: &str, value: &[u8]) -> Result<()>;

    fn meta(&self, group: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// Removes everything of `group` (a replica that left it).
    fn remove_group(&self, group: &str) -> Result<()>;

    /// Makes everything written so far durable (one fsync for all groups).
    fn sync(&self) -> Result<()>;

    /// Whether what this log holds survives a restart (memory: no).
    fn durable(&self) -> bool;
}

/// An in-memory raft log: memory-storage streams and tests.
#[derive(Debug, Default)]
pub struct MemRaftLog {
    groups: Mutex<BTreeMap<String, MemGroup>>,
}

#[derive(Debug, Default)]
struct MemGroup {
    entries: BTreeMap<u64, Vec<u8>>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl MemRaftLog {
    pub fn new() -> MemRaftLog {
        MemRaftLog::default()
    }

    fn with<T>(&self, group: &str, f: impl FnOnce(&mut MemGroup) -> T) -> T {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        f(g.entry(group.to_string()).or_default())
    }
}

impl RaftLog for MemRaftLog {
    fn append(&self, group: &str, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        self.with(group, |g| {
            for (i, e) in entries {
                g.entries.insert(*i, e.clone());
            }
        });
        Ok(())
    }

    fn entries(
        &self,
        group: &str,
        start: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        Ok(self.with(group, |g| {
            let mut out = Vec::new();
            let mut bytes = 0;
            for (i, e) in g.entries.range(start..end) {
                if !out.is_empty() && bytes + e.len() > max_bytes {
                    break;
                }
                bytes += e.len();
                out.push((*i, e.clone()));
            }
            out
        }))
    }

    fn last(&self, group: &str) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.with(group, |g| g.entries.last_key_value().map(|(i, e)| (*i, e.clone()))))
    }

    fn truncate(&self, group: &str, index: u64) -> Result<()> {
        self.with(group, |g| {
            g.entries.split_off(&index);
        });
        Ok(())
    }

    fn purge(&self, group: &str, index: u64) -> Result<()> {
        self.with(group, |g| {
            g.entries = g.entries.split_off(&(index.saturating_add(1)));
        });
        Ok(())
    }

    fn put_meta(&self, group: &str, key: &str, value: &[u8]) -> Result<()> {
        self.with(group, |g| g.meta.insert(key.to_string(), value.to_vec()));
        Ok(())
    }

    fn meta(&self, group: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.with(group, |g| g.meta.get(key).cloned()))
    }

    fn remove_group(&self, group: &str) -> Result<()> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).remove(group);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}

/// Key of entry `index` of `group` (see the module docs).
pub(crate) fn entry_key(group: &str, index: u64) -> Vec<u8> {
    let mut k = group_prefix(group, b'E');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Key of meta value `key` of `group`.
pub(crate) fn meta_key(group: &str, key: &str) -> Vec<u8> {
    let mut k = group_prefix(group, b'M');
    k.extend_from_slice(key.as_bytes());
    k
}

/// `[len][group][kind]`: every key of one kind of one group starts with it.
pub(crate) fn group_prefix(group: &str, kind: u8) -> Vec<u8> {
    // Group names are short (nats-server's are 12 characters); longer ones are cut to the
    // length byte, and the name itself still follows in full.
    let len = u8::try_from(group.len()).unwrap_or(u8::MAX);
    let mut k = Vec::with_capacity(group.len() + 10);
    k.push(len);
    k.extend_from_slice(group.as_bytes());
    k.push(kind);
    k
}

/// The index of an entry key.
pub(crate) fn index_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

pub(crate) fn corrupt(group: &str, index: u64, what: &str) -> StoreError {
    StoreError::Corrupt { stream: format!("raft group {group}"), seq: index, detail: what.into() }
}

/// The behaviour every [`RaftLog`] must show (the raft layer relies on each point); run by
/// `tests/raft_log.rs` on both backends.
pub mod suite {
    use super::RaftLog;

    fn e(i: u64) -> (u64, Vec<u8>) {
        (i, format!("entry-{i}").into_bytes())
    }

    /// Appends are read back in order, by range, with a byte budget that never returns
    /// nothing for a non-empty range.
    pub fn append_and_read(log: &dyn RaftLog) {
        assert_eq!(log.last("g").unwrap(), None);
        log.append("g", &(1..=5).map(e).collect::<Vec<_>>()).unwrap();
        log.append("h", &[e(1)]).unwrap();
        assert_eq!(log.entries("g", 1, 6, usize::MAX).unwrap(), (1..=5).map(e).collect::<Vec<_>>());
        assert_eq!(log.entries("g", 2, 4, usize::MAX).unwrap(), vec![e(2), e(3)]);
        // "entry-N" is 7 bytes: a budget of 10 takes one, of 14 two, of 0 still one.
        assert_eq!(log.entries("g", 1, 6, 10).unwrap().len(), 1);
        assert_eq!(log.entries("g", 1, 6, 14).unwrap().len(), 2);
        assert_eq!(log.entries("g", 1, 6, 0).unwrap().len(), 1);
        assert_eq!(log.last("g").unwrap(), Some(e(5)));
        assert_eq!(log.last("h").unwrap(), Some(e(1)));
        assert!(log.entries("nope", 0, 100, usize::MAX).unwrap().is_empty());
    }

    /// A conflicting suffix goes; the prefix and other groups stay.
    pub fn truncate_and_purge(log: &dyn RaftLog) {
        log.append("g", &(1..=10).map(e).collect::<Vec<_>>()).unwrap();
        log.append("gg", &(1..=3).map(e).collect::<Vec<_>>()).unwrap();
        log.truncate("g", 8).unwrap();
        assert_eq!(log.last("g").unwrap(), Some(e(7)));
        log.append("g", &[(8, b"new".to_vec())]).unwrap();
        assert_eq!(log.last("g").unwrap(), Some((8, b"new".to_vec())));
        log.purge("g", 3).unwrap();
        let rest = log.entries("g", 0, 100, usize::MAX).unwrap();
        assert_eq!(rest.first().map(|x| x.0), Some(4));
        assert_eq!(rest.len(), 5);
        // A group whose name extends another's is untouched.
        assert_eq!(log.entries("gg", 0, 100, usize::MAX).unwrap().len(), 3);
    }

    /// Meta values per group; removing a group removes entries and meta, nothing else.
    pub fn meta_and_remove(log: &dyn RaftLog) {
        log.put_meta("g", "vote", b"v1").unwrap();
        log.put_meta("g", "vote", b"v2").unwrap();
        log.put_meta("h", "vote", b"h1").unwrap();
        log.append("g", &[e(1)]).unwrap();
        log.sync().unwrap();
        assert_eq!(log.meta("g", "vote").unwrap(), Some(b"v2".to_vec()));
        assert_eq!(log.meta("g", "other").unwrap(), None);
        log.remove_group("g").unwrap();
        assert_eq!(log.meta("g", "vote").unwrap(), None);
        assert_eq!(log.last("g").unwrap(), None);
        assert_eq!(log.meta("h", "vote").unwrap(), Some(b"h1".to_vec()));
    }
}
