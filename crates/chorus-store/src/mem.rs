//! [`MemStore`]: messages in a `BTreeMap`, a per-subject sequence set beside it.

use crate::engine::{Backend, Engine, IndexEntry, MsgMeta, SeqState, Summary};
use crate::error::Result;
use crate::types::{MsgTtl, NewMessage, StorageKind, StoredMsg, mem_msg_size};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug)]
struct MemMsg {
    subject: String,
    headers: Option<Bytes>,
    payload: Bytes,
    ts: i64,
    ttl: MsgTtl,
    size: u64,
    expires: i64,
}

/// Backend of [`MemStore`]. Mutations apply at once: nothing can fail half-way.
#[derive(Debug)]
pub(crate) struct MemBackend {
    name: String,
    msgs: BTreeMap<u64, MemMsg>,
    by_subject: HashMap<String, BTreeSet<u64>>,
}

impl MemBackend {
    fn to_stored(seq: u64, m: &MemMsg) -> StoredMsg {
        StoredMsg {
            seq,
            timestamp: m.ts,
            subject: m.subject.clone(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
            ttl: m.ttl,
        }
    }
}

/// Overwrites a buffer no reader holds any more; a shared one is left to its readers.
fn scrub(b: Bytes) {
    if let Ok(mut m) = b.try_into_mut() {
        m.fill(0);
    }
}

impl Backend for MemBackend {
    fn kind(&self) -> StorageKind {
        StorageKind::Memory
    }

    fn stream_name(&self) -> &str {
        &self.name
    }

    fn msg_size(&self, subject_len: usize, headers_len: usize, payload_len: usize) -> u64 {
        mem_msg_size(subject_len, headers_len, payload_len)
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn load(&self, seq: u64) -> Result<Option<StoredMsg>> {
        Ok(self.msgs.get(&seq).map(|m| Self::to_stored(seq, m)))
    }

    fn meta(&self, seq: u64) -> Result<Option<MsgMeta>> {
        Ok(self.msgs.get(&seq).map(|m| MsgMeta {
            subject: m.subject.clone(),
            size: m.size,
            ts: m.ts,
            expires: m.expires,
            ttl_never: m.ttl == MsgTtl::Never,
        }))
    }

    fn subject_first(&self, subject: &str, from: u64) -> Result<Option<u64>> {
        Ok(self.by_subject.get(subject).and_then(|s| s.range(from..).next().copied()))
    }

    fn subject_last(&self, subject: &str, upto: u64) -> Result<Option<u64>> {
        Ok(self.by_subject.get(subject).and_then(|s| s.range(..=upto).next_back().copied()))
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
        if let Some(seqs) = self.by_subject.get(subject) {
            for &seq in seqs.range(from..=upto) {
                let m = &self.msgs[&seq];
                if !f(IndexEntry { seq, size: m.size, expires: m.expires }) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn scan(&self, from: u64, upto: u64, f: &mut dyn FnMut(StoredMsg) -> bool) -> Result<()> {
        if from > upto {
            return Ok(());
        }
        for (&seq, m) in self.msgs.range(from..=upto) {
            if !f(Self::to_stored(seq, m)) {
                break;
            }
        }
        Ok(())
    }

    fn put(&mut self, seq: u64, msg: &NewMessage<'_>, size: u64, expires: i64) -> Result<()> {
        self.msgs.insert(
            seq,
            MemMsg {
                subject: msg.subject.to_owned(),
                headers: msg.headers.map(Bytes::copy_from_slice),
                payload: Bytes::copy_from_slice(msg.payload),
                ts: msg.timestamp,
                ttl: msg.ttl,
                size,
                expires,
            },
        );
        self.by_subject.entry(msg.subject.to_owned()).or_default().insert(seq);
        Ok(())
    }

    fn remove(&mut self, seq: u64, subject: &str, erase: bool) -> Result<()> {
        if let Some(m) = self.msgs.remove(&seq)
            && erase
        {
            scrub(m.payload);
            if let Some(h) = m.headers {
                scrub(h);
            }
        }
        if let Some(set) = self.by_subject.get_mut(subject) {
            set.remove(&seq);
            if set.is_empty() {
                self.by_subject.remove(subject);
            }
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        self.msgs.clear();
        self.by_subject.clear();
        Ok(())
    }

    fn commit(&mut self, _seqs: &SeqState) -> Result<()> {
        Ok(())
    }

    fn abort(&mut self) {}

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn destroy(&mut self) -> Result<()> {
        self.clear()
    }

    fn corrupt_seen(&self) -> Vec<u64> {
        Vec::new()
    }
}

/// A stream held in memory (`storage: memory`). Its contents die with the process, as with
/// nats-server; sizes follow nats-server's memory store accounting ([`mem_msg_size`]).
pub struct MemStore {
    pub(crate) engine: Engine<MemBackend>,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore").field("stream", &self.engine.backend().name).finish()
    }
}

impl MemStore {
    /// An empty stream called `name` (the name only appears in errors).
    pub fn new(name: &str) -> Self {
        let backend =
            MemBackend { name: name.to_owned(), msgs: BTreeMap::new(), by_subject: HashMap::new() };
        MemStore { engine: Engine::new(backend, Summary::default()) }
    }
}
