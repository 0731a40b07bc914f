//! [`Store`] (one RocksDB database per server) and [`FileStore`] (one stream in it).

pub mod codec;

use crate::engine::{Backend, Engine, IndexEntry, MsgMeta, SeqState, Summary};
use crate::error::{Result, StoreError};
use crate::types::{NewMessage, StorageKind, StoredMsg, SubjectState, file_msg_size};
use bytes::Bytes;
use codec::{
    CF_MESSAGES, CF_META, CF_RAFT, CF_SUBJECTS, FORMAT_VERSION, META_NEXT_ID, META_VERSION,
};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBRawIterator, Options, ReadOptions, WriteBatch,
    WriteOptions,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A failure to inject, for tests of the poisoning rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next database write fails (as a full disk would).
    FailNextWrite,
    /// The next `sync` fails (as a failed fsync would).
    FailNextSync,
}

/// State every handle of one database shares.
struct Shared {
    db: DB,
    path: PathBuf,
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<String>>,
    fault: Mutex<Option<Fault>>,
    /// Ids of streams with a live [`FileStore`].
    open: Mutex<HashSet<u64>>,
    /// Serialises stream creation, deletion and the id counter.
    meta_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = lock(&self.poison_reason).clone().unwrap_or_default();
            return Err(StoreError::Poisoned(reason));
        }
        Ok(())
    }

    fn poison(&self, reason: String) {
        let mut r = lock(&self.poison_reason);
        if r.is_none() {
            *r = Some(reason);
        }
        self.poisoned.store(true, Ordering::Release);
    }

    fn take_fault(&self, which: Fault) -> bool {
        let mut f = lock(&self.fault);
        if *f == Some(which) {
            *f = None;
            true
        } else {
            false
        }
    }

    /// Writes a batch atomically. Any failure poisons the store: the WAL may hold part of
    /// what we meant, and only a restart (WAL replay) tells what.
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.check()?;
        if self.take_fault(Fault::FailNextWrite) {
            self.poison("write failed: injected fault".into());
            return Err(StoreError::Injected("write"));
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts).map_err(|e| {
            self.poison(format!("write failed: {e}"));
            StoreError::Db(e)
        })
    }

    /// fsyncs the WAL: everything written before is durable once this returns.
    fn sync(&self) -> Result<()> {
        self.check()?;
        if self.take_fault(Fault::FailNextSync) {
            self.poison("sync failed: injected fault".into());
            return Err(StoreError::Injected("sync"));
        }
        self.db.flush_wal(true).map_err(|e| {
            self.poison(format!("sync failed: {e}"));
            StoreError::Db(e)
        })
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check()?;
        match self.db.get_pinned_cf(self.cf(CF_META), key)? {
            None => Ok(None),
            Some(v) => match codec::unseal(key, &v) {
                Some(body) => Ok(Some(body.to_vec())),
                None => Err(StoreError::Corrupt {
                    stream: String::from_utf8_lossy(key).into_owned(),
                    seq: 0,
                    detail: "metadata checksum mismatch".into(),
                }),
            },
        }
    }

    /// A raw iterator over `cf` restricted to `[lo, hi)`.
    fn iter(&self, cf: &str, lo: &[u8], hi: Option<Vec<u8>>) -> DBRawIterator<'_> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lo.to_vec());
        if let Some(hi) = hi {
            ro.set_iterate_upper_bound(hi);
        }
        self.db.raw_iterator_cf_opt(self.cf(cf), ro)
    }
}

/// The stream definition stored under `S<name>`.
fn decode_stream_record(name: &str, body: &[u8]) -> Result<(u64, Vec<u8>)> {
    if body.len() < 8 {
        return Err(StoreError::Corrupt {
            stream: name.to_owned(),
            seq: 0,
            detail: "stream record too short".into(),
        });
    }
    let id = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    Ok((id, body[8..].to_vec()))
}

/// What [`Store::repair_stream`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Sequences whose records failed verification and were deleted.
    pub removed: Vec<u64>,
    /// Records that verified and were kept (the subject index is rebuilt from them).
    pub kept: u64,
}

/// One RocksDB database holding every file-backed stream of a server, their definitions and
/// their consumers' state. Cheap to clone; the database closes when the last clone and the
/// last [`FileStore`] are dropped.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.shared.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.increase_parallelism(2);
        let cfs = [CF_MESSAGES, CF_SUBJECTS, CF_META, CF_RAFT]
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, &path, cfs)?;
        let shared = Arc::new(Shared {
            db,
            path,
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(None),
            fault: Mutex::new(None),
            open: Mutex::new(HashSet::new()),
            meta_lock: Mutex::new(()),
        });
        let meta = shared.cf(CF_META);
        match shared.db.get_cf(meta, META_VERSION)? {
            Some(v) => {
                let v = u32::from_le_bytes(v.as_slice().try_into().map_err(|_| {
                    StoreError::Corrupt {
                        stream: String::new(),
                        seq: 0,
                        detail: "format version record".into(),
                    }
                })?);
                if v != FORMAT_VERSION {
                    return Err(StoreError::Version(v));
                }
            }
            None => {
                let mut b = WriteBatch::default();
                b.put_cf(meta, META_VERSION, FORMAT_VERSION.to_le_bytes());
                shared.write(b, true)?;
            }
        }
        Ok(Store { shared })
    }

    /// Directory of the database.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Injects a failure into the next write or sync (tests of the poisoning rule).
    pub fn inject_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = Some(fault);
    }

    /// Why the store is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            lock(&self.shared.poison_reason).clone()
        } else {
            None
        }
    }

    /// Durability barrier for everything written through this database (all streams and
    /// consumer states).
    pub fn sync(&self) -> Result<()> {
        self.shared.sync()
    }

    /// Names of the stored streams, sorted.
    pub fn stream_names(&self) -> Result<Vec<String>> {
        self.shared.check()?;
        let prefix = codec::stream_meta_prefix();
        let mut it = self.shared.iter(CF_META, &prefix, codec::prefix_end(&prefix));
        it.seek(prefix);
        let mut out = Vec::new();
        while let Some(k) = it.key() {
            out.push(String::from_utf8_lossy(&k[1..]).into_owned());
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    fn stream_record(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>> {
        match self.shared.get_meta(&codec::stream_meta_key(name))? {
            Some(body) => decode_stream_record(name, &body).map(Some),
            None => Ok(None),
        }
    }

    fn stream_id(&self, name: &str) -> Result<u64> {
        self.stream_record(name)?
            .map(|(id, _)| id)
            .ok_or_else(|| StoreError::StreamNotFound(name.to_owned()))
    }

    /// Creates a stream with its (opaque) config blob and opens it. The definition is
    /// synced before this returns.
    pub fn create_stream(&self, name: &str, config: &[u8]) -> Result<FileStore> {
        let _g = lock(&self.shared.meta_lock);
        if self.stream_record(name)?.is_some() {
            return Err(StoreError::StreamExists(name.to_owned()));
        }
        let next = match self.shared.get_meta(META_NEXT_ID)? {
            Some(v) if v.len() == 8 => u64::from_le_bytes(v.as_slice().try_into().expect("8")),
            Some(_) => {
                return Err(StoreError::Corrupt {
                    stream: name.to_owned(),
                    seq: 0,
                    detail: "stream id counter".into(),
                });
            }
            None => 1,
        };
        let meta = self.shared.cf(CF_META);
        let mut b = WriteBatch::default();
        b.put_cf(meta, META_NEXT_ID, codec::seal(META_NEXT_ID, &(next + 1).to_le_bytes()));
        let key = codec::stream_meta_key(name);
        let mut body = next.to_le_bytes().to_vec();
        body.extend_from_slice(config);
        b.put_cf(meta, &key, codec::seal(&key, &body));
        let skey = codec::seqs_key(next);
        b.put_cf(meta, skey, codec::seal(&skey, &codec::encode_seqs(&SeqState::default())));
        self.shared.write(b, true)?;
        self.open_id(name, next)
    }

    /// Opens a stored stream, rebuilding its summary from the subject index.
    pub fn open_stream(&self, name: &str) -> Result<FileStore> {
        let id = self.stream_id(name)?;
        self.open_id(name, id)
    }

    fn open_id(&self, name: &str, id: u64) -> Result<FileStore> {
        if !lock(&self.shared.open).insert(id) {
            return Err(StoreError::StreamOpen(name.to_owned()));
        }
        let backend = FileBackend {
            shared: self.shared.clone(),
            id,
            name: name.to_owned(),
            ops: Vec::new(),
            mark: 0,
            op_bytes: 0,
            sealed_seqs: None,
            dirty: false,
            pending_puts: BTreeMap::new(),
            pending_dels: HashSet::new(),
            cleared: false,
            erase: Vec::new(),
            erase_mark: 0,
            corrupt: Mutex::new(BTreeSet::new()),
            cache: Mutex::new(ReadCache::default()),
        };
        // On error the backend drops here and unregisters itself.
        let summary = backend.recover()?;
        Ok(FileStore { engine: Engine::new(backend, summary) })
    }

    /// The config blob given at creation or by the last [`Store::set_stream_config`].
    pub fn stream_config(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.stream_record(name)?.map(|(_, cfg)| cfg))
    }

    /// Replaces a stream's config blob (synced).
    pub fn set_stream_config(&self, name: &str, config: &[u8]) -> Result<()> {
        let _g = lock(&self.shared.meta_lock);
        let id = self.stream_id(name)?;
        let key = codec::stream_meta_key(name);
        let mut body = id.to_le_bytes().to_vec();
        body.extend_from_slice(config);
        let mut b = WriteBatch::default();
        b.put_cf(self.shared.cf(CF_META), &key, codec::seal(&key, &body));
        self.shared.write(b, true)
    }

    /// Deletes a stream that is not open: messages, index, definition, consumers (synced).
    /// Returns whether it existed.
    pub fn delete_stream(&self, name: &str) -> Result<bool> {
        let _g = lock(&self.shared.meta_lock);
        let Some((id, _)) = self.stream_record(name)? else { return Ok(false) };
        if lock(&self.shared.open).contains(&id) {
            return Err(StoreError::StreamOpen(name.to_owned()));
        }
        let mut b = WriteBatch::default();
        destroy_into(&self.shared, &mut b, id, name);
        self.shared.write(b, true)?;
        Ok(true)
    }

    /// Stores a consumer's state blob. Durable after the next sync.
    pub fn put_consumer_state(&self, stream: &str, consumer: &str, state: &[u8]) -> Result<()> {
        let id = self.stream_id(stream)?;
        let key = codec::consumer_key(id, consumer);
        let mut b = WriteBatch::default();
        b.put_cf(self.shared.cf(CF_META), &key, codec::seal(&key, state));
        self.shared.write(b, false)
    }

    /// A consumer's state blob.
    pub fn consumer_state(&self, stream: &str, consumer: &str) -> Result<Option<Vec<u8>>> {
        let id = self.stream_id(stream)?;
        self.shared.get_meta(&codec::consumer_key(id, consumer))
    }

    /// Every consumer of a stream with its state blob, by name.
    pub fn consumer_states(&self, stream: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let id = self.stream_id(stream)?;
        let prefix = codec::consumer_prefix(id);
        let mut it = self.shared.iter(CF_META, &prefix, codec::prefix_end(&prefix));
        it.seek(prefix);
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let body = codec::unseal(k, v).ok_or_else(|| StoreError::Corrupt {
                stream: stream.to_owned(),
                seq: 0,
                detail: format!("consumer {name:?} state checksum mismatch"),
            })?;
            out.push((name, body.to_vec()));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Deletes a consumer's state; returns whether there was one.
    pub fn delete_consumer_state(&self, stream: &str, consumer: &str) -> Result<bool> {
        let id = self.stream_id(stream)?;
        let key = codec::consumer_key(id, consumer);
        if self.shared.get_meta(&key)?.is_none() {
            return Ok(false);
        }
        let mut b = WriteBatch::default();
        b.delete_cf(self.shared.cf(CF_META), &key);
        self.shared.write(b, false)?;
        Ok(true)
    }

    /// Verifies every record of a stream that is not open, deletes the ones that fail and
    /// rebuilds the subject index from the rest, in one synced write. This is the explicit
    /// recovery step after [`StoreError::Corrupt`]; nothing calls it implicitly.
    pub fn repair_stream(&self, name: &str) -> Result<RepairReport> {
        let _g = lock(&self.shared.meta_lock);
        let id = self.stream_id(name)?;
        if lock(&self.shared.open).contains(&id) {
            return Err(StoreError::StreamOpen(name.to_owned()));
        }
        let sh = &self.shared;
        let (lo, hi) = codec::stream_range(id);
        let mut b = WriteBatch::default();
        b.delete_range_cf(sh.cf(CF_SUBJECTS), lo, hi);
        let mut report = RepairReport::default();
        let mut max_seq = 0;
        let mut it = sh.iter(CF_MESSAGES, &lo, Some(hi.to_vec()));
        it.seek(lo);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let seq = codec::message_key_seq(k);
            match seq.map(|s| (s, codec::decode_message(k, s, v))) {
                Some((seq, Ok(m))) => {
                    let size = file_msg_size(
                        m.subject.len(),
                        m.headers.as_ref().map_or(0, |h| h.len()),
                        m.payload.len(),
                    );
                    let expires = m.ttl.expires_at(m.timestamp).unwrap_or(0);
                    let ik = codec::subject_key(id, &m.subject, seq);
                    b.put_cf(sh.cf(CF_SUBJECTS), &ik, codec::encode_index(&ik, size, expires));
                    report.kept += 1;
                    max_seq = max_seq.max(seq);
                }
                other => {
                    report.removed.push(other.map_or(0, |(s, _)| s));
                    b.delete_cf(sh.cf(CF_MESSAGES), k);
                }
            }
            it.next();
        }
        it.status()?;
        drop(it);
        // Keep the watermarks; rebuild them if they are damaged too.
        let skey = codec::seqs_key(id);
        let seqs = match sh.get_meta(&skey) {
            Ok(Some(v)) => codec::decode_seqs(&v),
            _ => None,
        };
        let mut seqs = seqs.unwrap_or_default();
        seqs.last_seq = seqs.last_seq.max(max_seq);
        b.put_cf(sh.cf(CF_META), skey, codec::seal(&skey, &codec::encode_seqs(&seqs)));
        sh.write(b, true)?;
        Ok(report)
    }
}

/// Adds the deletion of every key of stream `id` to `b`.
fn destroy_into(sh: &Shared, b: &mut WriteBatch, id: u64, name: &str) {
    let (lo, hi) = codec::stream_range(id);
    b.delete_range_cf(sh.cf(CF_MESSAGES), lo, hi);
    b.delete_range_cf(sh.cf(CF_SUBJECTS), lo, hi);
    let meta = sh.cf(CF_META);
    b.delete_cf(meta, codec::stream_meta_key(name));
    b.delete_cf(meta, codec::seqs_key(id));
    let cp = codec::consumer_prefix(id);
    if let Some(end) = codec::prefix_end(&cp) {
        b.delete_range_cf(meta, cp.as_slice(), end.as_slice());
    }
}

#[derive(Debug, Clone)]
struct PendingMeta {
    size: u64,
    ts: i64,
    expires: i64,
    ttl_never: bool,
    /// The encoded record, shared with its buffered put (the subject is read from it).
    record: Bytes,
}

impl PendingMeta {
    fn subject(&self) -> &[u8] {
        codec::record_subject(&self.record)
    }
}

/// One buffered database operation. Ops are kept as values (not in a `WriteBatch`) so a failed
/// mutation can be cut off the group by truncating the vector.
enum Op {
    Put(&'static str, Key, Value),
    Delete(&'static str, Key),
    DeleteRange(&'static str, [u8; 8], [u8; 8]),
}

/// A buffered key: message keys and most subject index keys (every stored message has one of
/// each) inline, longer ones on the heap.
enum Key {
    Message([u8; 16]),
    Short([u8; SHORT_KEY], u8),
    Other(Vec<u8>),
}

/// Longest key kept inline: index keys of subjects up to 46 bytes.
const SHORT_KEY: usize = 64;

impl Key {
    /// The subject index key of `seq` (see [`codec::subject_key`]).
    fn subject(stream_id: u64, subject: &str, seq: u64) -> Key {
        let len = 18 + subject.len();
        if len > SHORT_KEY {
            return Key::Other(codec::subject_key(stream_id, subject, seq));
        }
        let mut k = [0u8; SHORT_KEY];
        k[..8].copy_from_slice(&stream_id.to_be_bytes());
        k[8..10].copy_from_slice(&(subject.len() as u16).to_be_bytes());
        k[10..10 + subject.len()].copy_from_slice(subject.as_bytes());
        k[10 + subject.len()..len].copy_from_slice(&seq.to_be_bytes());
        Key::Short(k, len as u8)
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        match self {
            Key::Message(k) => k,
            Key::Short(k, len) => &k[..*len as usize],
            Key::Other(k) => k,
        }
    }
}

/// A buffered value: records shared with the overlay, index entries inline.
enum Value {
    Record(Bytes),
    Index([u8; 20]),
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        match self {
            Value::Record(v) => v,
            Value::Index(v) => v,
        }
    }
}

/// Most buffered operations before a commit writes the group on its own, so a caller that
/// never flushes still has bounded memory.
const GROUP_MAX_OPS: usize = 64 * 1024;
/// Buffered-op capacity a stream keeps between groups.
const GROUP_KEEP_OPS: usize = 4096;
/// Most buffered value bytes before a commit writes the group on its own.
const GROUP_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Backend of [`FileStore`].
///
/// Group commit: committed mutations are not written one by one. Their operations accumulate
/// in `ops` (the group) and reach RocksDB as one `WriteBatch` — one WAL append, one memtable
/// pass — on [`Backend::flush`] (the runtime flushes once per batch of publishes, then syncs
/// once). Until then an overlay of the group's puts and deletes answers reads, so the engine
/// and every reader see their writes at once. `mark` separates the committed part of the
/// group from the mutation in progress: an abort cuts the group back to it.
pub(crate) struct FileBackend {
    shared: Arc<Shared>,
    id: u64,
    name: String,
    ops: Vec<Op>,
    /// `ops[..mark]` belongs to committed mutations.
    mark: usize,
    /// Value bytes in `ops`.
    op_bytes: usize,
    /// The watermarks of the last committed mutation, written with the group.
    sealed_seqs: Option<SeqState>,
    /// The mutation in progress changed something.
    dirty: bool,
    /// Messages put in the group (always newer than any message in the database).
    pending_puts: BTreeMap<u64, PendingMeta>,
    /// Messages in the database deleted in the group.
    pending_dels: HashSet<u64>,
    /// The group contains a range delete of the whole stream: nothing in the database counts.
    cleared: bool,
    /// Sequences to compact away after the group is written (erase).
    erase: Vec<u64>,
    /// `erase[..erase_mark]` belongs to committed mutations.
    erase_mark: usize,
    corrupt: Mutex<BTreeSet<u64>>,
    /// Read-ahead for sequential readers (a `Mutex` because reads take `&self`; only the
    /// owning thread ever locks it).
    cache: Mutex<ReadCache>,
}

/// Records read ahead, by sequence (see [`FileBackend::read_ahead`]).
#[derive(Default)]
struct ReadCache {
    records: BTreeMap<u64, Bytes>,
    bytes: usize,
    /// The sequence of the previous load.
    last: Option<u64>,
}

/// Records one read-ahead pass fetches.
const READ_AHEAD_MSGS: usize = 256;
/// Bytes of records the read-ahead cache holds per stream.
const READ_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl Drop for FileBackend {
    fn drop(&mut self) {
        // Committed writes are not dropped with the handle; a failure poisons the store, which
        // is all that can be done from here.
        let _ = self.flush_group();
        lock(&self.shared.open).remove(&self.id);
    }
}

impl FileBackend {
    fn corrupt_err(&self, seq: u64, detail: String) -> StoreError {
        lock(&self.corrupt).insert(seq);
        StoreError::Corrupt { stream: self.name.clone(), seq, detail }
    }

    fn committed_visible(&self, seq: u64) -> bool {
        !self.cleared && !self.pending_dels.contains(&seq)
    }

    /// Sequential reads (a consumer walking the stream) are served from a small cache that a
    /// miss fills with one iterator pass over the next [`READ_AHEAD_MSGS`] records: a point
    /// lookup in RocksDB costs a memtable/SST search per message, an iterator step almost
    /// nothing. A read that does not follow the previous one (a KV get) skips the cache, so
    /// random reads pay no read-ahead.
    fn read_ahead(&self, seq: u64) -> Result<Option<Bytes>> {
        let mut c = lock(&self.cache);
        let sequential = c.last.is_some_and(|l| seq == l + 1);
        c.last = Some(seq);
        if let Some(r) = c.records.get(&seq) {
            return Ok(Some(r.clone()));
        }
        if !sequential {
            return Ok(None);
        }
        // The reader has moved past everything below `seq`.
        let keep = c.records.split_off(&seq);
        c.records = keep;
        c.bytes = c.records.values().map(Bytes::len).sum();
        let lo = codec::message_key(self.id, seq);
        let hi = codec::stream_range(self.id).1;
        let mut it = self.shared.iter(CF_MESSAGES, &lo, Some(hi.to_vec()));
        it.seek(lo);
        let mut n = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(s) = codec::message_key_seq(k) else { break };
            if n >= READ_AHEAD_MSGS {
                break;
            }
            // Records deleted in the unwritten group are not served.
            if !self.pending_dels.contains(&s) {
                c.bytes += v.len();
                c.records.insert(s, Bytes::copy_from_slice(v));
            }
            n += 1;
            it.next();
        }
        it.status()?;
        // Past the budget, the highest sequences go first: they are read last.
        while c.bytes > READ_CACHE_BYTES && c.records.len() > 1 {
            let Some((_, r)) = c.records.pop_last() else { break };
            c.bytes -= r.len();
        }
        Ok(c.records.get(&seq).cloned())
    }

    fn uncache(&mut self, seq: u64) {
        let c = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = c.records.remove(&seq) {
            c.bytes -= r.len();
        }
    }

    fn push(&mut self, op: Op) {
        if let Op::Put(_, _, v) = &op {
            self.op_bytes += v.as_ref().len();
        }
        self.ops.push(op);
        self.dirty = true;
    }

    /// Writes the committed part of the group as one batch and forgets the overlay.
    fn flush_group(&mut self) -> Result<()> {
        debug_assert_eq!(self.mark, self.ops.len(), "flush inside a mutation");
        let Some(seqs) = self.sealed_seqs.take() else {
            return Ok(());
        };
        let sh = self.shared.clone();
        let mut batch = WriteBatch::default();
        for op in self.ops.drain(..) {
            match op {
                Op::Put(cf, k, v) => batch.put_cf(sh.cf(cf), k, v),
                Op::Delete(cf, k) => batch.delete_cf(sh.cf(cf), k),
                Op::DeleteRange(cf, lo, hi) => batch.delete_range_cf(sh.cf(cf), lo, hi),
            }
        }
        // The watermarks ride in every batch, so they are exactly as durable as the records.
        let skey = codec::seqs_key(self.id);
        batch.put_cf(sh.cf(CF_META), skey, codec::seal(&skey, &codec::encode_seqs(&seqs)));
        let erase = std::mem::take(&mut self.erase);
        self.mark = 0;
        self.erase_mark = 0;
        self.op_bytes = 0;
        self.pending_puts.clear();
        self.pending_dels.clear();
        self.cleared = false;
        // A burst's worth of buffered ops is not kept for the stream's lifetime.
        if self.ops.capacity() > GROUP_KEEP_OPS {
            self.ops.shrink_to(GROUP_KEEP_OPS);
        }
        sh.write(batch, false)?;
        let cf = sh.cf(CF_MESSAGES);
        for seq in erase {
            // Rewrites the SST files holding older versions of the record; the WAL keeps its
            // copy until it is recycled.
            let lo = codec::message_key(self.id, seq);
            let hi = codec::message_key(self.id, seq + 1);
            sh.db.compact_range_cf(cf, Some(lo), Some(hi));
        }
        Ok(())
    }

    /// Rebuilds the summary from the subject index and the sequence watermarks.
    fn recover(&self) -> Result<Summary> {
        let sh = &self.shared;
        sh.check()?;
        let skey = codec::seqs_key(self.id);
        let seqs = match sh.get_meta(&skey) {
            Ok(Some(v)) => codec::decode_seqs(&v)
                .ok_or_else(|| self.corrupt_err(0, "sequence watermarks record".into()))?,
            Ok(None) => SeqState::default(),
            Err(StoreError::Corrupt { .. }) => {
                return Err(self.corrupt_err(0, "sequence watermarks checksum".into()));
            }
            Err(e) => return Err(e),
        };
        let mut s = Summary::default();
        let mut present: Vec<u64> = Vec::new();
        let (lo, hi) = codec::stream_range(self.id);
        let mut it = sh.iter(CF_SUBJECTS, &lo, Some(hi.to_vec()));
        it.seek(lo);
        // Entries come grouped by subject, each group in sequence order.
        let mut cur: Option<(Vec<u8>, SubjectState)> = None;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (subject, seq) = codec::parse_subject_key(k)
                .ok_or_else(|| self.corrupt_err(0, "malformed subject index key".into()))?;
            let e = codec::decode_index(k, seq, v)
                .map_err(|d| self.corrupt_err(seq, format!("subject index: {d}")))?;
            match &mut cur {
                Some((name, ss)) if name.as_slice() == subject => {
                    ss.msgs += 1;
                    ss.last = seq;
                }
                _ => {
                    if let Some((name, ss)) = cur.take() {
                        s.subjects.insert(self.subject_string(name)?, ss);
                    }
                    cur = Some((subject.to_vec(), SubjectState { msgs: 1, first: seq, last: seq }));
                }
            }
            s.msgs += 1;
            s.bytes += e.size;
            if e.expires != 0 {
                s.ttl.insert((e.expires, seq));
            }
            present.push(seq);
            it.next();
        }
        it.status()?;
        drop(it);
        if let Some((name, ss)) = cur {
            s.subjects.insert(self.subject_string(name)?, ss);
        }
        s.last_seq = seqs.last_seq;
        s.last_ts = seqs.last_ts;
        if present.is_empty() {
            s.first_seq = seqs.first_seq;
            return Ok(s);
        }
        present.sort_unstable();
        let max = *present.last().expect("non-empty");
        if max > seqs.last_seq {
            return Err(self.corrupt_err(max, "record beyond the last sequence".into()));
        }
        s.first_seq = present[0];
        for w in present.windows(2) {
            s.deleted.extend(w[0] + 1..w[1]);
        }
        s.deleted.extend(max + 1..=s.last_seq);
        let first = self
            .meta(s.first_seq)?
            .ok_or_else(|| self.corrupt_err(s.first_seq, "indexed record missing".into()))?;
        s.first_ts = first.ts;
        Ok(s)
    }

    fn subject_string(&self, raw: Vec<u8>) -> Result<String> {
        String::from_utf8(raw).map_err(|_| self.corrupt_err(0, "subject is not UTF-8".into()))
    }

    fn index_iter(&self, subject: &str) -> (DBRawIterator<'_>, Vec<u8>) {
        let prefix = codec::subject_prefix(self.id, subject);
        let it = self.shared.iter(CF_SUBJECTS, &prefix, codec::prefix_end(&prefix));
        (it, prefix)
    }
}

impl Backend for FileBackend {
    fn kind(&self) -> StorageKind {
        StorageKind::File
    }

    fn stream_name(&self) -> &str {
        &self.name
    }

    fn msg_size(&self, subject_len: usize, headers_len: usize, payload_len: usize) -> u64 {
        file_msg_size(subject_len, headers_len, payload_len)
    }

    fn check(&self) -> Result<()> {
        self.shared.check()
    }

    fn load(&self, seq: u64) -> Result<Option<StoredMsg>> {
        let key = codec::message_key(self.id, seq);
        if let Some(p) = self.pending_puts.get(&seq) {
            return codec::decode_message(&key, seq, &p.record)
                .map(Some)
                .map_err(|d| self.corrupt_err(seq, d));
        }
        if !self.committed_visible(seq) {
            return Ok(None);
        }
        if let Some(record) = self.read_ahead(seq)? {
            return codec::decode_message(&key, seq, &record)
                .map(Some)
                .map_err(|d| self.corrupt_err(seq, d));
        }
        match self.shared.db.get_pinned_cf(self.shared.cf(CF_MESSAGES), key)? {
            None => Ok(None),
            Some(v) => {
                codec::decode_message(&key, seq, &v).map(Some).map_err(|d| self.corrupt_err(seq, d))
            }
        }
    }

    fn meta(&self, seq: u64) -> Result<Option<MsgMeta>> {
        if let Some(p) = self.pending_puts.get(&seq) {
            return Ok(Some(MsgMeta {
                subject: String::from_utf8_lossy(p.subject()).into_owned(),
                size: p.size,
                ts: p.ts,
                expires: p.expires,
                ttl_never: p.ttl_never,
            }));
        }
        if !self.committed_visible(seq) {
            return Ok(None);
        }
        let key = codec::message_key(self.id, seq);
        match self.shared.db.get_pinned_cf(self.shared.cf(CF_MESSAGES), key)? {
            None => Ok(None),
            Some(v) => codec::decode_meta(&key, &v).map(Some).map_err(|d| self.corrupt_err(seq, d)),
        }
    }

    fn subject_first(&self, subject: &str, from: u64) -> Result<Option<u64>> {
        if !self.cleared {
            let (mut it, prefix) = self.index_iter(subject);
            let mut start = prefix.clone();
            start.extend_from_slice(&from.to_be_bytes());
            it.seek(&start);
            while let Some(k) = it.key() {
                let seq = u64::from_be_bytes(k[prefix.len()..].try_into().expect("8 bytes"));
                if !self.pending_dels.contains(&seq) {
                    return Ok(Some(seq));
                }
                it.next();
            }
            it.status()?;
        }
        Ok(self
            .pending_puts
            .range(from..)
            .find(|(_, p)| p.subject() == subject.as_bytes())
            .map(|(s, _)| *s))
    }

    fn subject_last(&self, subject: &str, upto: u64) -> Result<Option<u64>> {
        if let Some((s, _)) =
            self.pending_puts.range(..=upto).rev().find(|(_, p)| p.subject() == subject.as_bytes())
        {
            return Ok(Some(*s));
        }
        if self.cleared {
            return Ok(None);
        }
        let (mut it, prefix) = self.index_iter(subject);
        let mut start = prefix.clone();
        start.extend_from_slice(&upto.to_be_bytes());
        it.seek_for_prev(&start);
        while let Some(k) = it.key() {
            let seq = u64::from_be_bytes(k[prefix.len()..].try_into().expect("8 bytes"));
            if !self.pending_dels.contains(&seq) {
                return Ok(Some(seq));
            }
            it.prev();
        }
        it.status()?;
        Ok(None)
    }

    fn subject_entries(
        &self,
        subject: &str,
        from: u64,
        upto: u64,
        f: &mut dyn FnMut(IndexEntry) -> bool,
    ) -> Result<()> {
        if from > upto {
            return Ok(());
        }
        if !self.cleared {
            let (mut it, prefix) = self.index_iter(subject);
            let mut start = prefix.clone();
            start.extend_from_slice(&from.to_be_bytes());
            it.seek(&start);
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let seq = u64::from_be_bytes(k[prefix.len()..].try_into().expect("8 bytes"));
                if seq > upto {
                    return Ok(());
                }
                if !self.pending_dels.contains(&seq) {
                    let e = codec::decode_index(k, seq, v)
                        .map_err(|d| self.corrupt_err(seq, format!("subject index: {d}")))?;
                    if !f(e) {
                        return Ok(());
                    }
                }
                it.next();
            }
            it.status()?;
        }
        for (&seq, p) in self.pending_puts.range(from..=upto) {
            if p.subject() == subject.as_bytes()
                && !f(IndexEntry { seq, size: p.size, expires: p.expires })
            {
                break;
            }
        }
        Ok(())
    }

    fn scan(&self, from: u64, upto: u64, f: &mut dyn FnMut(StoredMsg) -> bool) -> Result<()> {
        if from > upto {
            return Ok(());
        }
        let lo = codec::message_key(self.id, from);
        let hi = match upto.checked_add(1) {
            Some(end) => codec::message_key(self.id, end).to_vec(),
            None => codec::stream_range(self.id).1.to_vec(),
        };
        if !self.cleared {
            let mut it = self.shared.iter(CF_MESSAGES, &lo, Some(hi));
            it.seek(lo);
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let seq = codec::message_key_seq(k).unwrap_or(0);
                if !self.pending_dels.contains(&seq) {
                    let m =
                        codec::decode_message(k, seq, v).map_err(|d| self.corrupt_err(seq, d))?;
                    if !f(m) {
                        return Ok(());
                    }
                }
                it.next();
            }
            it.status()?;
        }
        // Buffered messages are newer than everything in the database.
        for (&seq, p) in self.pending_puts.range(from..=upto) {
            let key = codec::message_key(self.id, seq);
            let m = codec::decode_message(&key, seq, &p.record)
                .map_err(|d| self.corrupt_err(seq, d))?;
            if !f(m) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn put(&mut self, seq: u64, msg: &NewMessage<'_>, size: u64, expires: i64) -> Result<()> {
        let key = codec::message_key(self.id, seq);
        let value = codec::encode_message(
            &key,
            msg.subject,
            msg.headers,
            msg.payload,
            msg.timestamp,
            msg.ttl,
        );
        let value = Bytes::from(value);
        self.push(Op::Put(CF_MESSAGES, Key::Message(key), Value::Record(value.clone())));
        let ik = Key::subject(self.id, msg.subject, seq);
        let iv = codec::encode_index(ik.as_ref(), size, expires);
        self.push(Op::Put(CF_SUBJECTS, ik, Value::Index(iv)));
        self.pending_puts.insert(
            seq,
            PendingMeta {
                size,
                ts: msg.timestamp,
                expires,
                ttl_never: msg.ttl == crate::types::MsgTtl::Never,
                record: value,
            },
        );
        Ok(())
    }

    fn remove(&mut self, seq: u64, subject: &str, erase: bool) -> Result<()> {
        self.uncache(seq);
        self.push(Op::Delete(CF_MESSAGES, Key::Message(codec::message_key(self.id, seq))));
        self.push(Op::Delete(CF_SUBJECTS, Key::subject(self.id, subject, seq)));
        if self.pending_puts.remove(&seq).is_none() {
            self.pending_dels.insert(seq);
        }
        if erase {
            self.erase.push(seq);
        }
        lock(&self.corrupt).remove(&seq);
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        let (lo, hi) = codec::stream_range(self.id);
        self.push(Op::DeleteRange(CF_MESSAGES, lo, hi));
        self.push(Op::DeleteRange(CF_SUBJECTS, lo, hi));
        *self.cache.get_mut().unwrap_or_else(|e| e.into_inner()) = ReadCache::default();
        self.pending_puts.clear();
        self.pending_dels.clear();
        self.cleared = true;
        Ok(())
    }

    fn commit(&mut self, seqs: &SeqState) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.mark = self.ops.len();
        self.erase_mark = self.erase.len();
        self.sealed_seqs = Some(*seqs);
        {
            let mut c = lock(&self.corrupt);
            if seqs.first_seq > 0 {
                *c = c.split_off(&seqs.first_seq);
            }
        }
        if self.ops.len() >= GROUP_MAX_OPS || self.op_bytes >= GROUP_MAX_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        // The engine takes the handle out of service after an abort, so the overlay (which
        // may hold part of the failed mutation) is never read again; the committed part of
        // the group stays, to be written by the next flush.
        self.ops.truncate(self.mark);
        self.erase.truncate(self.erase_mark);
        self.dirty = false;
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_group()
    }

    fn sync(&mut self) -> Result<()> {
        self.flush_group()?;
        self.shared.sync()
    }

    fn destroy(&mut self) -> Result<()> {
        self.ops.clear();
        self.mark = 0;
        self.op_bytes = 0;
        self.sealed_seqs = None;
        self.erase.clear();
        self.erase_mark = 0;
        self.pending_puts.clear();
        self.pending_dels.clear();
        self.cleared = false;
        self.dirty = false;
        let _g = lock(&self.shared.meta_lock);
        let mut b = WriteBatch::default();
        destroy_into(&self.shared, &mut b, self.id, &self.name);
        self.shared.write(b, true)
    }

    fn corrupt_seen(&self) -> Vec<u64> {
        lock(&self.corrupt).iter().copied().collect()
    }
}

/// One file-backed stream, opened through [`Store::create_stream`] or [`Store::open_stream`].
/// Sizes follow nats-server's file store accounting ([`file_msg_size`]).
pub struct FileStore {
    pub(crate) engine: Engine<FileBackend>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.engine.backend();
        f.debug_struct("FileStore").field("stream", &b.name).field("id", &b.id).finish()
    }
}

impl FileStore {
    /// The stream's numeric id: the first 8 bytes (big-endian) of its keys.
    pub fn stream_id(&self) -> u64 {
        self.engine.backend().id
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.engine.backend().name
    }

    /// Value bytes buffered by group commit and not yet written.
    pub fn buffered_bytes(&self) -> usize {
        self.engine.backend().op_bytes
    }
}

// ---- raft logs -------------------------------------------------------------------------------

impl crate::raftlog::RaftLog for Store {
    fn append(&self, group: &str, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        let cf = self.shared.cf(CF_RAFT);
        let mut b = WriteBatch::default();
        for (i, e) in entries {
            let k = crate::raftlog::entry_key(group, *i);
            b.put_cf(cf, &k, codec::seal(&k, e));
        }
        self.shared.write(b, false)
    }

    fn entries(
        &self,
        group: &str,
        start: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        self.shared.check()?;
        let (lo, hi) =
            (crate::raftlog::entry_key(group, start), crate::raftlog::entry_key(group, end));
        let mut it = self.shared.iter(CF_RAFT, &lo, Some(hi));
        it.seek(&lo);
        let mut out = Vec::new();
        let mut bytes = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let index = crate::raftlog::index_of(k).unwrap_or(0);
            let body = codec::unseal(k, v)
                .ok_or_else(|| crate::raftlog::corrupt(group, index, "entry checksum mismatch"))?;
            if !out.is_empty() && bytes + body.len() > max_bytes {
                break;
            }
            bytes += body.len();
            out.push((index, body.to_vec()));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    fn last(&self, group: &str) -> Result<Option<(u64, Vec<u8>)>> {
        self.shared.check()?;
        let prefix = crate::raftlog::group_prefix(group, b'E');
        let mut it = self.shared.iter(CF_RAFT, &prefix, codec::prefix_end(&prefix));
        it.seek_to_last();
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) => {
                let index = crate::raftlog::index_of(k).unwrap_or(0);
                let body = codec::unseal(k, v).ok_or_else(|| {
                    crate::raftlog::corrupt(group, index, "entry checksum mismatch")
                })?;
                Some((index, body.to_vec()))
            }
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    fn truncate(&self, group: &str, index: u64) -> Result<()> {
        let cf = self.shared.cf(CF_RAFT);
        let prefix = crate::raftlog::group_prefix(group, b'E');
        let end = codec::prefix_end(&prefix).unwrap_or_else(|| vec![u8::MAX; 16]);
        let mut b = WriteBatch::default();
        b.delete_range_cf(cf, crate::raftlog::entry_key(group, index), end);
        self.shared.write(b, false)
    }

    fn purge(&self, group: &str, index: u64) -> Result<()> {
        let cf = self.shared.cf(CF_RAFT);
        let mut b = WriteBatch::default();
        b.delete_range_cf(
            cf,
            crate::raftlog::group_prefix(group, b'E'),
            crate::raftlog::entry_key(group, index.saturating_add(1)),
        );
        self.shared.write(b, false)
    }

    fn put_meta(&self, group: &str, key: &str, value: &[u8]) -> Result<()> {
        let k = crate::raftlog::meta_key(group, key);
        let mut b = WriteBatch::default();
        b.put_cf(self.shared.cf(CF_RAFT), &k, codec::seal(&k, value));
        self.shared.write(b, false)
    }

    fn meta(&self, group: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.shared.check()?;
        let k = crate::raftlog::meta_key(group, key);
        match self.shared.db.get_pinned_cf(self.shared.cf(CF_RAFT), &k)? {
            None => Ok(None),
            Some(v) => codec::unseal(&k, &v)
                .map(|b| Some(b.to_vec()))
                .ok_or_else(|| crate::raftlog::corrupt(group, 0, "meta checksum mismatch")),
        }
    }

    fn remove_group(&self, group: &str) -> Result<()> {
        let cf = self.shared.cf(CF_RAFT);
        let mut b = WriteBatch::default();
        for kind in [b'E', b'M'] {
            let p = crate::raftlog::group_prefix(group, kind);
            let end = codec::prefix_end(&p).unwrap_or_else(|| vec![u8::MAX; 16]);
            b.delete_range_cf(cf, p, end);
        }
        self.shared.write(b, false)
    }

    fn sync(&self) -> Result<()> {
        self.shared.sync()
    }

    fn durable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_raft_entry_is_reported_never_returned() {
        use crate::raftlog::RaftLog;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("db")).unwrap();
        s.append("g", &[(1, b"one".to_vec()), (2, b"two".to_vec())]).unwrap();
        // Flip a bit of entry 2's stored value behind the log's back.
        let k = crate::raftlog::entry_key("g", 2);
        let cf = s.shared.cf(CF_RAFT);
        let mut v = s.shared.db.get_cf(cf, &k).unwrap().unwrap();
        v[0] ^= 0x40;
        s.shared.db.put_cf(cf, &k, v).unwrap();
        assert!(matches!(s.last("g"), Err(StoreError::Corrupt { seq: 2, .. })));
        assert!(matches!(s.entries("g", 1, 3, usize::MAX), Err(StoreError::Corrupt { .. })));
        assert_eq!(s.entries("g", 1, 2, usize::MAX).unwrap(), vec![(1, b"one".to_vec())]);
    }

    #[test]
    fn inline_subject_keys_match_the_codec() {
        for subject in ["a", "bench.js-async-file-16b", &"x".repeat(46), &"y".repeat(47), ""] {
            for seq in [1, 255, u64::MAX] {
                let k = Key::subject(7, subject, seq);
                assert_eq!(k.as_ref(), codec::subject_key(7, subject, seq).as_slice());
                assert_eq!(matches!(k, Key::Short(..)), 18 + subject.len() <= SHORT_KEY);
            }
        }
    }

    #[test]
    fn pending_records_give_back_their_subject() {
        for subject in ["a", "orders.eu.new", &"s".repeat(300)] {
            let key = codec::message_key(1, 9);
            let record = codec::encode_message(
                &key,
                subject,
                Some(b"NATS/1.0\r\n\r\n"),
                b"hi",
                5,
                crate::types::MsgTtl::Never,
            );
            let p = PendingMeta {
                size: 1,
                ts: 5,
                expires: 0,
                ttl_never: true,
                record: Bytes::from(record),
            };
            assert_eq!(p.subject(), subject.as_bytes());
        }
    }
}
