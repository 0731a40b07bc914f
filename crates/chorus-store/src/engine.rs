//! The logic both backends share: the in-memory summary of a stream (counts, first/last,
//! per-subject state, interior deletes, TTL schedule) and every rule of nats-server's stores
//! (limits, purge, compact, filtered reads). A [`Backend`] only keeps message records and a
//! per-subject index; it never decides anything.
//!
//! Each mutation runs against the backend's pending batch and ends with one
//! [`Backend::commit`]; if it fails half-way the mutation is dropped and the handle refuses
//! further work ([`StoreError::Broken`]), since the summary may have moved ahead of the disk.
//! A backend may buffer committed mutations (FileStore groups them into one database write
//! per [`Backend::flush`]); reads always see them.

use crate::error::{Result, StoreError};
use crate::filter::SubjectFilter;
use crate::types::{
    Appended, Discard, LimitExceeded, Limits, NewMessage, PurgeRequest, RemoveMode, Removed,
    StorageKind, StoredMsg, StreamState, SubjectState, SubjectTotals,
};
use std::collections::{BTreeMap, BTreeSet};

/// Longest subject a record can carry (its length is stored in 16 bits).
pub(crate) const MAX_SUBJECT_LEN: usize = u16::MAX as usize;

/// Header fields of a stored message: enough to account for removing it.
#[derive(Debug, Clone)]
pub(crate) struct MsgMeta {
    pub subject: String,
    pub size: u64,
    pub ts: i64,
    pub expires: i64,
    pub ttl_never: bool,
}

/// One entry of the per-subject index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub seq: u64,
    pub size: u64,
    pub expires: i64,
}

/// The sequence watermarks that cannot be derived from the records alone (after a purge the
/// stream is empty but `first_seq`/`last_seq` must survive a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SeqState {
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_ts: i64,
}

/// Where message records live. Reads see the writes of the current (uncommitted) operation.
pub(crate) trait Backend: Send {
    fn kind(&self) -> StorageKind;
    fn stream_name(&self) -> &str;
    fn msg_size(&self, subject_len: usize, headers_len: usize, payload_len: usize) -> u64;
    /// Store-wide health (poisoned store).
    fn check(&self) -> Result<()>;
    fn load(&self, seq: u64) -> Result<Option<StoredMsg>>;
    fn meta(&self, seq: u64) -> Result<Option<MsgMeta>>;
    /// First sequence `>= from` on `subject`.
    fn subject_first(&self, subject: &str, from: u64) -> Result<Option<u64>>;
    /// Last sequence `<= upto` on `subject`.
    fn subject_last(&self, subject: &str, upto: u64) -> Result<Option<u64>>;
    /// Index entries of `subject` in `[from, upto]`, ascending, until `f` returns false.
    fn subject_entries(
        &self,
        subject: &str,
        from: u64,
        upto: u64,
        f: &mut dyn FnMut(IndexEntry) -> bool,
    ) -> Result<()>;
    /// Messages in `[from, upto]`, ascending, until `f` returns false.
    fn scan(&self, from: u64, upto: u64, f: &mut dyn FnMut(StoredMsg) -> bool) -> Result<()>;
    fn put(&mut self, seq: u64, msg: &NewMessage<'_>, size: u64, expires: i64) -> Result<()>;
    fn remove(&mut self, seq: u64, subject: &str, erase: bool) -> Result<()>;
    /// Removes every message.
    fn clear(&mut self) -> Result<()>;
    /// Makes the pending operation visible (one atomic write for FileStore).
    fn commit(&mut self, seqs: &SeqState) -> Result<()>;
    /// Drops the pending operation.
    fn abort(&mut self);
    /// Hands committed writes to the storage (the operating system), without waiting for
    /// stable storage.
    fn flush(&mut self) -> Result<()>;
    /// Flushes, then waits until everything written is on stable storage.
    fn sync(&mut self) -> Result<()>;
    /// Deletes all of the stream's data and metadata.
    fn destroy(&mut self) -> Result<()>;
    /// Sequences whose records failed verification on read.
    fn corrupt_seen(&self) -> Vec<u64>;
}

/// In-memory summary of a stream. Invariant: when `msgs > 0`, every sequence in
/// `[first_seq, last_seq]` either has a record or is in `deleted`; when `msgs == 0`,
/// `deleted` is empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    pub deleted: BTreeSet<u64>,
    /// Ordered so a wildcard filter with a literal prefix scans only its range.
    pub subjects: BTreeMap<String, SubjectState>,
    /// (expires_at, seq) of messages with a TTL.
    pub ttl: BTreeSet<(i64, u64)>,
}

/// A message chosen for removal.
#[derive(Debug, Clone)]
struct Victim {
    seq: u64,
    subject: String,
    size: u64,
    expires: i64,
}

/// Above this many subjects a wildcard `load_next` walks messages instead of asking each
/// matching subject (nats-server's `linearScanMaxFSS`).
const LINEAR_SCAN_MAX_SUBJECTS: usize = 256;

/// What [`crate::StreamStore::expire`] did, and when to call it next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Messages removed by `max_age` or their TTL.
    pub removed: Removed,
    /// Unix nanos of the next possible expiry (oldest age-limited message + max_age, or the
    /// earliest TTL), `None` when nothing can expire until more messages arrive.
    pub next: Option<i64>,
}

pub(crate) struct Engine<B: Backend> {
    b: B,
    s: Summary,
    limits: Limits,
    broken: Option<String>,
    closed: bool,
}

enum Walk {
    Take,
    Skip,
    Stop,
}

impl<B: Backend> Engine<B> {
    pub(crate) fn new(backend: B, summary: Summary) -> Self {
        Engine { b: backend, s: summary, limits: Limits::default(), broken: None, closed: false }
    }

    pub(crate) fn backend(&self) -> &B {
        &self.b
    }

    fn name(&self) -> &str {
        self.b.stream_name()
    }

    fn ready(&self) -> Result<()> {
        if self.closed {
            return Err(StoreError::Closed(self.name().to_owned()));
        }
        if let Some(reason) = &self.broken {
            return Err(StoreError::Broken {
                stream: self.name().to_owned(),
                reason: reason.clone(),
            });
        }
        self.b.check()
    }

    fn seq_state(&self) -> SeqState {
        SeqState { first_seq: self.s.first_seq, last_seq: self.s.last_seq, last_ts: self.s.last_ts }
    }

    /// Runs one mutation: all of it reaches the backend in one commit, or none of it and the
    /// handle is out of service.
    fn mutate<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.ready()?;
        let out = f(self).and_then(|v| {
            let seqs = self.seq_state();
            self.b.commit(&seqs).map(|()| v)
        });
        if let Err(e) = &out {
            self.b.abort();
            self.broken = Some(e.to_string());
        }
        out
    }

    fn inconsistent(&self, seq: u64, what: &str) -> StoreError {
        StoreError::Corrupt {
            stream: self.name().to_owned(),
            seq,
            detail: format!("summary and records disagree: {what}"),
        }
    }

    fn exists(&self, seq: u64) -> bool {
        self.s.msgs > 0
            && seq >= self.s.first_seq
            && seq <= self.s.last_seq
            && !self.s.deleted.contains(&seq)
    }

    fn validate(msg: &NewMessage<'_>) -> Result<()> {
        if msg.subject.len() > MAX_SUBJECT_LEN {
            return Err(StoreError::InvalidMessage("subject longer than 65535 bytes"));
        }
        if msg.headers.is_some_and(|h| h.len() > u32::MAX as usize) {
            return Err(StoreError::InvalidMessage("headers larger than 4 GiB"));
        }
        Ok(())
    }

    // ----- mutations -------------------------------------------------------------------------

    pub(crate) fn append(&mut self, msg: &NewMessage<'_>) -> Result<Appended> {
        Self::validate(msg)?;
        self.mutate(|e| {
            let seq = e.put_one(msg)?;
            let removed = e.enforce_after_append(&[msg.subject])?;
            Ok(Appended { seq, last_seq: seq, removed })
        })
    }

    pub(crate) fn append_batch(&mut self, msgs: &[NewMessage<'_>]) -> Result<Appended> {
        for m in msgs {
            Self::validate(m)?;
        }
        if msgs.is_empty() {
            self.ready()?;
            let next = self.s.last_seq + 1;
            return Ok(Appended {
                seq: next,
                last_seq: self.s.last_seq,
                removed: Removed::default(),
            });
        }
        self.mutate(|e| {
            let mut first = 0;
            let mut last = 0;
            for m in msgs {
                last = e.put_one(m)?;
                if first == 0 {
                    first = last;
                }
            }
            let subjects: Vec<&str> = msgs.iter().map(|m| m.subject).collect();
            // Enforcing once after the batch leaves the same messages as enforcing after each
            // append: every rule drops oldest-first, so the survivors are the same suffix.
            let removed = e.enforce_after_append(&subjects)?;
            Ok(Appended { seq: first, last_seq: last, removed })
        })
    }

    fn put_one(&mut self, msg: &NewMessage<'_>) -> Result<u64> {
        let seq = self.s.last_seq + 1;
        let size = self.b.msg_size(
            msg.subject.len(),
            msg.headers.map_or(0, <[u8]>::len),
            msg.payload.len(),
        );
        let expires = msg.ttl.expires_at(msg.timestamp).unwrap_or(0);
        self.b.put(seq, msg, size, expires)?;
        let s = &mut self.s;
        if s.msgs == 0 {
            s.first_seq = seq;
            s.first_ts = msg.timestamp;
        }
        s.msgs += 1;
        s.bytes += size;
        s.last_seq = seq;
        s.last_ts = msg.timestamp;
        match s.subjects.get_mut(msg.subject) {
            Some(ss) => {
                ss.msgs += 1;
                ss.last = seq;
            }
            None => {
                s.subjects.insert(
                    msg.subject.to_owned(),
                    SubjectState { msgs: 1, first: seq, last: seq },
                );
            }
        }
        if expires != 0 {
            s.ttl.insert((expires, seq));
        }
        Ok(seq)
    }

    fn enforce_after_append(&mut self, subjects: &[&str]) -> Result<Removed> {
        let mut removed = Removed::default();
        if let Some(max) = self.limits.max_msgs_per_subject {
            let mut seen: Vec<&str> = Vec::new();
            for s in subjects {
                if !seen.contains(s) {
                    seen.push(s);
                    self.enforce_subject(s, max, &mut removed)?;
                }
            }
        }
        self.enforce_totals(&mut removed)?;
        removed.seqs.sort_unstable();
        Ok(removed)
    }

    fn enforce_subject(&mut self, subject: &str, max: u64, out: &mut Removed) -> Result<()> {
        let Some(ss) = self.s.subjects.get(subject) else { return Ok(()) };
        if ss.msgs <= max {
            return Ok(());
        }
        let mut excess = ss.msgs - max;
        let mut victims = Vec::new();
        self.b.subject_entries(subject, ss.first, u64::MAX, &mut |e| {
            victims.push(Victim {
                seq: e.seq,
                subject: subject.to_owned(),
                size: e.size,
                expires: e.expires,
            });
            excess -= 1;
            excess > 0
        })?;
        self.remove_victims(victims, false, out)
    }

    /// max_msgs and max_bytes, only under discard old (as nats-server's `enforceMsgLimit`).
    fn enforce_totals(&mut self, out: &mut Removed) -> Result<()> {
        if self.limits.discard != Discard::Old {
            return Ok(());
        }
        if let Some(max) = self.limits.max_msgs
            && self.s.msgs > max
        {
            let mut excess = self.s.msgs - max;
            let victims = self.walk_oldest(|_| {
                if excess == 0 {
                    return Walk::Stop;
                }
                excess -= 1;
                Walk::Take
            })?;
            self.remove_victims(victims, false, out)?;
        }
        if let Some(max) = self.limits.max_bytes
            && self.s.bytes > max
        {
            let mut over = self.s.bytes - max;
            let victims = self.walk_oldest(|m| {
                if over == 0 {
                    return Walk::Stop;
                }
                over = over.saturating_sub(m.size);
                Walk::Take
            })?;
            self.remove_victims(victims, false, out)?;
        }
        Ok(())
    }

    /// Visits existing messages from the oldest, collecting those `f` takes, until it stops.
    fn walk_oldest(&self, mut f: impl FnMut(&MsgMeta) -> Walk) -> Result<Vec<Victim>> {
        let mut out = Vec::new();
        if self.s.msgs == 0 {
            return Ok(out);
        }
        let mut seq = self.s.first_seq;
        while seq <= self.s.last_seq {
            if self.s.deleted.contains(&seq) {
                seq += 1;
                continue;
            }
            let m = self.b.meta(seq)?.ok_or_else(|| self.inconsistent(seq, "missing record"))?;
            match f(&m) {
                Walk::Stop => break,
                Walk::Skip => {}
                Walk::Take => {
                    out.push(Victim { seq, subject: m.subject, size: m.size, expires: m.expires })
                }
            }
            seq += 1;
        }
        Ok(out)
    }

    /// Removes existing messages (ascending, distinct) and brings the summary up to date.
    fn remove_victims(
        &mut self,
        victims: Vec<Victim>,
        erase: bool,
        out: &mut Removed,
    ) -> Result<()> {
        if victims.is_empty() {
            return Ok(());
        }
        let mut touched: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for v in &victims {
            self.b.remove(v.seq, &v.subject, erase)?;
            let s = &mut self.s;
            s.msgs -= 1;
            s.bytes = s.bytes.saturating_sub(v.size);
            if v.expires != 0 {
                s.ttl.remove(&(v.expires, v.seq));
            }
            s.deleted.insert(v.seq);
            let ss = s.subjects.get_mut(&v.subject).ok_or_else(|| StoreError::Corrupt {
                stream: self.b.stream_name().to_owned(),
                seq: v.seq,
                detail: "summary and records disagree: unknown subject".into(),
            })?;
            ss.msgs -= 1;
            if ss.msgs == 0 {
                s.subjects.remove(&v.subject);
                touched.remove(&v.subject);
            } else {
                touched.insert(v.subject.clone(), (ss.first, ss.last));
            }
            out.seqs.push(v.seq);
            out.bytes += v.size;
        }
        for (subject, (first, last)) in touched {
            let new_first = self.b.subject_first(&subject, first)?;
            let new_last = self.b.subject_last(&subject, last)?;
            let (Some(f), Some(l)) = (new_first, new_last) else {
                return Err(self.inconsistent(first, "subject index lost entries"));
            };
            if let Some(ss) = self.s.subjects.get_mut(&subject) {
                ss.first = f;
                ss.last = l;
            }
        }
        self.normalize_first()
    }

    /// Moves `first_seq` past deleted sequences and refreshes `first_ts`.
    fn normalize_first(&mut self) -> Result<()> {
        let s = &mut self.s;
        if s.msgs == 0 {
            s.first_seq = s.last_seq + 1;
            s.first_ts = 0;
            s.deleted.clear();
            return Ok(());
        }
        let old = s.first_seq;
        while s.deleted.remove(&s.first_seq) {
            s.first_seq += 1;
        }
        if s.first_seq != old {
            let seq = s.first_seq;
            let m = self.b.meta(seq)?.ok_or_else(|| self.inconsistent(seq, "missing first"))?;
            self.s.first_ts = m.ts;
        }
        Ok(())
    }

    pub(crate) fn remove(&mut self, seq: u64, mode: RemoveMode) -> Result<bool> {
        self.ready()?;
        if !self.exists(seq) {
            return Ok(false);
        }
        // Read before mutating: a corrupt record fails the call without breaking the stream.
        let m = self.b.meta(seq)?.ok_or_else(|| self.inconsistent(seq, "missing record"))?;
        self.mutate(|e| {
            let victim = Victim { seq, subject: m.subject, size: m.size, expires: m.expires };
            e.remove_victims(vec![victim], mode == RemoveMode::Erase, &mut Removed::default())?;
            Ok(true)
        })
    }

    pub(crate) fn purge(&mut self, req: &PurgeRequest) -> Result<u64> {
        self.ready()?;
        // "Up to but not including 1" purges nothing.
        if req.seq == 1 {
            return Ok(0);
        }
        let filter = req.subject.as_deref().map_or_else(SubjectFilter::all, SubjectFilter::subject);
        if filter.is_all() {
            if req.keep == 0 && req.seq == 0 {
                return self.mutate(|e| e.purge_all());
            }
            if req.seq > 1 {
                return self.compact(req.seq);
            }
        }
        let matching = self.matching_subjects(&filter);
        let total: u64 = matching.iter().map(|(_, ss)| ss.msgs).sum();
        if total == 0 {
            return Ok(0);
        }
        let max_purge = if req.keep > 0 {
            if req.keep >= total {
                return Ok(0);
            }
            total - req.keep
        } else {
            u64::MAX
        };
        let upto = if req.seq > 1 { req.seq - 1 } else { u64::MAX };
        let mut victims = self.gather(&matching, upto)?;
        victims.truncate(usize::try_from(max_purge).unwrap_or(usize::MAX));
        self.mutate(|e| {
            let mut out = Removed::default();
            e.remove_victims(victims, false, &mut out)?;
            Ok(out.seqs.len() as u64)
        })
    }

    /// Index entries of the given subjects up to `upto`, in sequence order.
    fn gather(&self, subjects: &[(String, SubjectState)], upto: u64) -> Result<Vec<Victim>> {
        let mut victims = Vec::new();
        for (subject, ss) in subjects {
            if ss.first > upto {
                continue;
            }
            self.b.subject_entries(subject, ss.first, upto, &mut |e| {
                victims.push(Victim {
                    seq: e.seq,
                    subject: subject.clone(),
                    size: e.size,
                    expires: e.expires,
                });
                true
            })?;
        }
        victims.sort_unstable_by_key(|v| v.seq);
        Ok(victims)
    }

    fn purge_all(&mut self) -> Result<u64> {
        let purged = self.s.msgs;
        self.b.clear()?;
        let s = &mut self.s;
        s.msgs = 0;
        s.bytes = 0;
        s.first_seq = s.last_seq + 1;
        s.first_ts = 0;
        s.deleted.clear();
        s.subjects.clear();
        s.ttl.clear();
        Ok(purged)
    }

    pub(crate) fn compact(&mut self, seq: u64) -> Result<u64> {
        self.ready()?;
        if seq == 0 {
            return self.mutate(|e| e.purge_all());
        }
        if self.s.first_seq > seq {
            return Ok(0);
        }
        if seq <= self.s.last_seq {
            let below: Vec<(String, SubjectState)> = self
                .s
                .subjects
                .iter()
                .filter(|(_, ss)| ss.first < seq)
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let victims = self.gather(&below, seq - 1)?;
            // Removing every record below `seq` lets `normalize_first` walk over the older
            // gaps too, so `first_seq` lands on the first record at or above `seq`.
            return self.mutate(|e| {
                let mut out = Removed::default();
                e.remove_victims(victims, false, &mut out)?;
                Ok(out.seqs.len() as u64)
            });
        }
        // Past the end: empty the stream and make `seq` the next sequence.
        self.mutate(|e| {
            let purged = e.purge_all()?;
            e.s.first_seq = seq;
            e.s.last_seq = seq - 1;
            Ok(purged)
        })
    }

    pub(crate) fn set_limits(&mut self, limits: Limits) -> Result<Removed> {
        self.ready()?;
        self.limits = limits;
        self.mutate(|e| {
            let mut out = Removed::default();
            if let Some(max) = e.limits.max_msgs_per_subject {
                let over: Vec<String> =
                    e.s.subjects
                        .iter()
                        .filter(|(_, ss)| ss.msgs > max)
                        .map(|(k, _)| k.clone())
                        .collect();
                for subject in over {
                    e.enforce_subject(&subject, max, &mut out)?;
                }
            }
            e.enforce_totals(&mut out)?;
            out.seqs.sort_unstable();
            Ok(out)
        })
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn expire(&mut self, now: i64) -> Result<Expired> {
        self.ready()?;
        let mut next_age = None;
        let mut victims = Vec::new();
        if let Some(age) = self.limits.max_age_nanos.filter(|a| *a > 0) {
            let cutoff = now.saturating_sub(age);
            victims = self.walk_oldest(|m| {
                if m.ttl_never {
                    // `Nats-TTL: never` exempts the message from max_age.
                    Walk::Skip
                } else if m.ts <= cutoff {
                    Walk::Take
                } else {
                    next_age = Some(m.ts.saturating_add(age));
                    Walk::Stop
                }
            })?;
        }
        let aged: BTreeSet<u64> = victims.iter().map(|v| v.seq).collect();
        let due: Vec<u64> = self
            .s
            .ttl
            .range(..=(now, u64::MAX))
            .map(|&(_, seq)| seq)
            .filter(|seq| !aged.contains(seq))
            .collect();
        for seq in due {
            let m = self.b.meta(seq)?.ok_or_else(|| self.inconsistent(seq, "missing record"))?;
            victims.push(Victim { seq, subject: m.subject, size: m.size, expires: m.expires });
        }
        victims.sort_unstable_by_key(|v| v.seq);
        let removed = if victims.is_empty() {
            Removed::default()
        } else {
            self.mutate(|e| {
                let mut out = Removed::default();
                e.remove_victims(victims, false, &mut out)?;
                Ok(out)
            })?
        };
        let next_ttl = self.s.ttl.first().map(|&(at, _)| at);
        let next = match (next_age, next_ttl) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        };
        Ok(Expired { removed, next })
    }

    pub(crate) fn check_discard_new(
        &self,
        msg: &NewMessage<'_>,
        is_rollup: bool,
    ) -> Result<Option<LimitExceeded>> {
        self.ready()?;
        let l = &self.limits;
        if l.discard != Discard::New {
            return Ok(None);
        }
        let ss = self.s.subjects.get(msg.subject);
        // At the per-subject limit, the new message replaces the subject's oldest.
        let at_subject_limit = match (l.max_msgs_per_subject, ss) {
            (Some(max), Some(ss)) => ss.msgs >= max,
            _ => false,
        };
        if at_subject_limit && l.discard_new_per_subject && !is_rollup {
            return Ok(Some(LimitExceeded::MaxMsgsPerSubject));
        }
        if let Some(max) = l.max_msgs
            && self.s.msgs >= max
            && !at_subject_limit
        {
            return Ok(Some(LimitExceeded::MaxMsgs));
        }
        if let Some(max) = l.max_bytes {
            let size = self.b.msg_size(
                msg.subject.len(),
                msg.headers.map_or(0, <[u8]>::len),
                msg.payload.len(),
            );
            if self.s.bytes + size > max {
                let Some(ss) = ss.filter(|_| at_subject_limit) else {
                    return Ok(Some(LimitExceeded::MaxBytes));
                };
                let first = self.b.meta(ss.first)?;
                if first.is_none_or(|m| m.size < size) {
                    return Ok(Some(LimitExceeded::MaxBytes));
                }
            }
        }
        Ok(None)
    }

    pub(crate) fn sync(&mut self) -> Result<()> {
        self.ready()?;
        self.b.sync()
    }

    /// Writes what committed mutations buffered. Also on a broken handle: the mutations
    /// committed before the failure are consistent and were reported as done.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.b.flush()
    }

    pub(crate) fn delete(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.b.check()?;
        self.b.destroy()?;
        self.s = Summary::default();
        self.closed = true;
        Ok(())
    }

    // ----- reads -----------------------------------------------------------------------------

    pub(crate) fn load(&self, seq: u64) -> Result<Option<StoredMsg>> {
        self.ready()?;
        if !self.exists(seq) {
            return Ok(None);
        }
        self.b.load(seq)
    }

    pub(crate) fn load_last(&self, filter: &SubjectFilter) -> Result<Option<StoredMsg>> {
        self.ready()?;
        if self.s.msgs == 0 {
            return Ok(None);
        }
        let seq = if filter.is_all() {
            let mut seq = self.s.last_seq;
            while self.s.deleted.contains(&seq) {
                seq -= 1;
            }
            Some(seq)
        } else {
            self.matching_subjects(filter).iter().map(|(_, ss)| ss.last).max()
        };
        match seq {
            Some(seq) => self.b.load(seq),
            None => Ok(None),
        }
    }

    pub(crate) fn load_next(
        &self,
        filter: &SubjectFilter,
        start: u64,
    ) -> Result<Option<StoredMsg>> {
        self.ready()?;
        let s = &self.s;
        let start = start.max(s.first_seq);
        if s.msgs == 0 || start > s.last_seq {
            return Ok(None);
        }
        if filter.is_all() {
            let mut seq = start;
            while s.deleted.contains(&seq) {
                seq += 1;
            }
            return if seq <= s.last_seq { self.b.load(seq) } else { Ok(None) };
        }
        let linear = filter.literals().is_none()
            && (s.subjects.len() > LINEAR_SCAN_MAX_SUBJECTS
                || 2 * (s.last_seq - start) < s.subjects.len() as u64);
        if linear {
            let mut found = None;
            self.b.scan(start, s.last_seq, &mut |m| {
                if filter.matches(&m.subject) {
                    found = Some(m);
                    false
                } else {
                    true
                }
            })?;
            return Ok(found);
        }
        let mut best: Option<u64> = None;
        for (subject, ss) in self.matching_subjects(filter) {
            if ss.last < start || best.is_some_and(|b| ss.first >= b) {
                continue;
            }
            let cand = if ss.first >= start {
                Some(ss.first)
            } else {
                self.b.subject_first(&subject, start)?
            };
            if let Some(c) = cand {
                best = Some(best.map_or(c, |b| b.min(c)));
            }
        }
        match best {
            Some(seq) => self.b.load(seq),
            None => Ok(None),
        }
    }

    /// Subjects the filter matches, with their state.
    fn matching_subjects(&self, filter: &SubjectFilter) -> Vec<(String, SubjectState)> {
        let subjects = &self.s.subjects;
        if filter.is_all() {
            return subjects.iter().map(|(k, v)| (k.clone(), *v)).collect();
        }
        if let Some(lits) = filter.literals() {
            return lits
                .iter()
                .filter_map(|l| subjects.get(l).map(|ss| (l.clone(), *ss)))
                .collect();
        }
        let prefix = filter.common_prefix();
        subjects
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| filter.matches(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub(crate) fn num_pending(
        &self,
        start: u64,
        filter: &SubjectFilter,
        last_per_subject: bool,
    ) -> Result<u64> {
        self.ready()?;
        let s = &self.s;
        let start = start.max(s.first_seq);
        if s.msgs == 0 || start > s.last_seq {
            return Ok(0);
        }
        if filter.is_all() && !last_per_subject {
            let gaps_below = s.deleted.range(s.first_seq..start).count() as u64;
            let existing_below = (start - s.first_seq) - gaps_below;
            return Ok(s.msgs - existing_below);
        }
        let mut total = 0;
        for (subject, ss) in self.matching_subjects(filter) {
            if ss.last < start {
                continue;
            }
            if last_per_subject {
                total += 1;
            } else if ss.first >= start {
                total += ss.msgs;
            } else {
                let mut n = 0;
                self.b.subject_entries(&subject, start, u64::MAX, &mut |_| {
                    n += 1;
                    true
                })?;
                total += n;
            }
        }
        Ok(total)
    }

    pub(crate) fn subjects_state(&self, filter: &SubjectFilter) -> BTreeMap<String, SubjectState> {
        self.matching_subjects(filter).into_iter().collect()
    }

    pub(crate) fn subjects_totals(&self, filter: &SubjectFilter) -> SubjectTotals {
        self.matching_subjects(filter).into_iter().map(|(k, ss)| (k, ss.msgs)).collect()
    }

    pub(crate) fn state(&self, with_deleted: bool) -> StreamState {
        let s = &self.s;
        StreamState {
            msgs: s.msgs,
            bytes: s.bytes,
            first_seq: s.first_seq,
            first_ts: s.first_ts,
            last_seq: s.last_seq,
            last_ts: s.last_ts,
            num_deleted: s.deleted.len() as u64,
            deleted: with_deleted.then(|| s.deleted.iter().copied().collect()),
            num_subjects: s.subjects.len() as u64,
            corrupt: self.b.corrupt_seen(),
        }
    }

    pub(crate) fn kind(&self) -> StorageKind {
        self.b.kind()
    }
}
