//! One stream as the runtime holds it: its config, its store, the duplicate window and the
//! internal subscriptions that feed it; the publish path and the numbers `STREAM.INFO` reports.

use std::sync::Arc;

use chorus_jetstream::ApiError;
use chorus_jetstream::ErrorId;
use chorus_jetstream::api::stream::{StreamInfo, StreamSourceInfo, StreamState as ApiState};
use chorus_jetstream::go::Timestamp;
use chorus_jetstream::stream::config::{DiscardPolicy, RetentionPolicy, StorageType, StreamConfig};
use chorus_jetstream::stream::headers;
use chorus_jetstream::stream::publish::{
    DedupeWindow, Inbound, PubAck, PublishContext, PublishOutcome, Rollup, StoredView, StreamView,
    check_publish, hdr,
};
use chorus_store::{
    Discard, Limits, MsgTtl, NewMessage, PurgeRequest, RemoveMode, StorageKind, StoreError,
    StoredMsg, StreamStore, SubjectFilter, file_msg_size, mem_msg_size,
};
use serde::{Deserialize, Serialize};

use crate::sub::Subscription;

/// What the file store keeps per stream besides its messages (the store's opaque config blob).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Definition {
    pub config: StreamConfig,
    pub created: Timestamp,
}

impl Definition {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("stream definitions serialise")
    }

    pub(crate) fn decode(blob: &[u8]) -> Result<Definition, serde_json::Error> {
        serde_json::from_slice(blob)
    }
}

/// The store-side limits of a config (`None` = unlimited).
pub(crate) fn limits_of(cfg: &StreamConfig) -> Limits {
    let pos = |v: i64| (v > 0).then_some(v as u64);
    Limits {
        max_msgs: pos(cfg.max_msgs),
        max_bytes: pos(cfg.max_bytes),
        max_age_nanos: (cfg.max_age > 0).then_some(cfg.max_age),
        max_msgs_per_subject: pos(cfg.max_msgs_per_subject),
        discard: match cfg.discard {
            DiscardPolicy::Old => Discard::Old,
            DiscardPolicy::New => Discard::New,
        },
        discard_new_per_subject: cfg.discard_new_per_subject,
    }
}

/// The features the crate validates but this runtime does not carry out yet. A stream asking
/// for one is refused rather than accepted and silently not served.
pub(crate) fn unsupported_feature(cfg: &StreamConfig) -> Option<&'static str> {
    if cfg.mirror.is_some() {
        Some("mirrors")
    } else if !cfg.sources.is_empty() {
        Some("sources")
    } else if cfg.subject_transform.is_some() {
        Some("subject transforms")
    } else if cfg.republish.is_some() {
        Some("republish")
    } else if cfg.allow_msg_schedules {
        Some("message schedules")
    } else if cfg.allow_atomic_publish || cfg.allow_batch_publish {
        Some("batch publishing")
    } else if cfg.subject_delete_marker_ttl > 0 {
        Some("subject delete markers")
    } else {
        None
    }
}

/// Unix nanoseconds now.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn ts(nanos: i64) -> Timestamp {
    if nanos == 0 { Timestamp::ZERO } else { Timestamp::from_unix_nanos(nanos) }
}

/// A stream being served.
pub(crate) struct Stream {
    /// Runtime id (never reused within a process): subscriptions carry it, so messages queued
    /// for a deleted stream cannot reach a new one of the same name.
    pub id: u64,
    /// The stream's name, shared with the replies of its batches (it never changes).
    pub name: Arc<str>,
    pub cfg: StreamConfig,
    pub created: Timestamp,
    pub store: Box<dyn StreamStore>,
    pub dedupe: DedupeWindow,
    /// `Nats-Msg-Id` of the last stored message (for `Nats-Expected-Last-Msg-Id`).
    pub last_msg_id: String,
    /// Subject and direct-get subscriptions, to remove on delete or subject change.
    pub subs: Vec<Arc<Subscription>>,
    pub direct_subs: Vec<Arc<Subscription>>,
    /// When `expire` should run next (unix nanos).
    pub next_expiry: Option<i64>,
    /// When the duplicate window next drops an entry.
    pub dedupe_next: Option<i64>,
    /// The raft group of a clustered stream (replica.rs): its changes come from the log.
    pub group: Option<Arc<str>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).field("name", &self.cfg.name).finish()
    }
}

/// A successful store of one message.
pub(crate) struct Stored {
    pub ack: PubAck,
    /// Whether the store changed (false for a duplicate).
    pub wrote: bool,
}

impl Stream {
    pub(crate) fn new(
        id: u64,
        cfg: StreamConfig,
        created: Timestamp,
        store: Box<dyn StreamStore>,
    ) -> Stream {
        let dedupe = DedupeWindow::new(cfg.duplicate_window);
        Stream {
            id,
            name: Arc::from(cfg.name.as_str()),
            cfg,
            created,
            store,
            dedupe,
            last_msg_id: String::new(),
            subs: Vec::new(),
            direct_subs: Vec::new(),
            next_expiry: None,
            dedupe_next: None,
            group: None,
        }
    }

    pub(crate) fn is_file(&self) -> bool {
        self.store.kind() == StorageKind::File
    }

    /// After opening a stored stream: the last message id, the duplicate window (rebuilt from
    /// the messages inside it, as nats-server's `rebuildDedupe` does) and a first expiry run.
    pub(crate) fn recover(&mut self, now: i64) -> Result<(), StoreError> {
        if let Some(last) = self.store.load_last(&SubjectFilter::all())? {
            self.last_msg_id = msg_id(&last).unwrap_or_default();
        }
        let window = self.dedupe.window();
        if window > 0 {
            let mut seq = seq_for_time(&*self.store, now.saturating_sub(window));
            while let Some(m) = self.store.load_next(&SubjectFilter::all(), seq)? {
                if let Some(id) = msg_id(&m) {
                    self.dedupe.record(&id, m.seq, m.timestamp);
                }
                seq = m.seq + 1;
            }
            self.dedupe_next = self.dedupe.purge(now);
        }
        if self.cfg.max_age > 0 || self.cfg.allow_msg_ttl {
            self.next_expiry = Some(now);
        }
        Ok(())
    }

    /// Checks and stores one published message (nats-server's `processJetStreamMsg` on a
    /// single server). The caller acks after the batch's sync. `interest`: whether a
    /// consumer wants the message (interest retention drops it at once otherwise).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &mut self,
        subject: &str,
        header: &[u8],
        payload: &[u8],
        now: i64,
        ctx: &PublishContext,
        domain: &str,
        interest: bool,
    ) -> Result<Stored, ApiError> {
        let header = strip_status(header);
        let inbound = Inbound { subject, header: &header, payload, sourced: false };
        let view = View { store: &*self.store, last_msg_id: &self.last_msg_id };
        let outcome = check_publish(&self.cfg, &view, &self.dedupe, &inbound, ctx)?;
        let d = match outcome {
            PublishOutcome::Duplicate { seq } => {
                let ack = PubAck {
                    stream: self.cfg.name.clone(),
                    seq,
                    domain: domain.to_string(),
                    duplicate: true,
                    ..Default::default()
                };
                return Ok(Stored { ack, wrote: false });
            }
            PublishOutcome::Store(d) => d,
        };
        let h: &[u8] = d.header.as_deref().unwrap_or(&header);
        let p: &[u8] = d.payload.as_deref().unwrap_or(payload);
        // Timestamps never go backwards within a stream (a stepped clock), so time lookups
        // can bisect by sequence.
        let ts = now.max(self.store.state(false).last_ts);
        let mut msg = NewMessage::new(subject, p, ts).with_ttl(MsgTtl::from_raw(d.ttl));
        if !h.is_empty() {
            msg = msg.with_headers(h);
        }
        let store_err = |e: StoreError| ErrorId::StreamStoreFailed.with_err(e);
        let appended = self.store.append(&msg).map_err(store_err)?;
        let seq = appended.seq;
        if let Some(id) = &d.msg_id {
            self.dedupe.record(id, seq, ts);
            if self.dedupe_next.is_none() {
                self.dedupe_next = Some(ts.saturating_add(self.dedupe.window()));
            }
        }
        self.last_msg_id = d.msg_id.clone().unwrap_or_default();
        match d.rollup {
            Some(Rollup::Subject) => {
                let req = PurgeRequest { subject: Some(subject.to_string()), seq: 0, keep: 1 };
                self.store.purge(&req).map_err(store_err)?;
            }
            Some(Rollup::All) => {
                self.store
                    .purge(&PurgeRequest { subject: None, seq: 0, keep: 1 })
                    .map_err(store_err)?;
            }
            None => {}
        }
        if self.cfg.retention == RetentionPolicy::Interest && !interest {
            // No consumer is interested: nats-server skips the message, keeping its
            // sequence. Store then remove gives the same state.
            self.store.remove(seq, RemoveMode::Remove).map_err(store_err)?;
        }
        let mut due = MsgTtl::from_raw(d.ttl).expires_at(ts);
        if self.cfg.max_age > 0 {
            let age_due = ts.saturating_add(self.cfg.max_age);
            due = Some(due.map_or(age_due, |d| d.min(age_due)));
        }
        if let Some(due) = due {
            self.next_expiry = Some(self.next_expiry.map_or(due, |n| n.min(due)));
        }
        let ack = PubAck {
            stream: self.cfg.name.clone(),
            seq,
            domain: domain.to_string(),
            value: d.counter_value.unwrap_or_default(),
            ..Default::default()
        };
        Ok(Stored { ack, wrote: true })
    }

    /// Runs the timers that are due: age/TTL expiry and the duplicate window. Returns whether
    /// the store changed.
    pub(crate) fn tick(&mut self, now: i64) -> Result<bool, StoreError> {
        let mut wrote = false;
        if self.next_expiry.is_some_and(|t| t <= now) {
            let e = self.store.expire(now)?;
            wrote = !e.removed.is_empty();
            self.next_expiry = e.next;
        }
        if self.dedupe_next.is_some_and(|t| t <= now) {
            self.dedupe_next = self.dedupe.purge(now);
        }
        Ok(wrote)
    }

    /// The earliest timer of this stream.
    pub(crate) fn next_timer(&self) -> Option<i64> {
        match (self.next_expiry, self.dedupe_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies an updated config: limits (enforced at once), duplicate window.
    pub(crate) fn reconfigure(&mut self, cfg: StreamConfig, now: i64) -> Result<(), StoreError> {
        self.store.set_limits(limits_of(&cfg))?;
        self.dedupe.set_window(cfg.duplicate_window);
        self.dedupe_next = self.dedupe.purge(now);
        if cfg.max_age > 0 || cfg.allow_msg_ttl {
            self.next_expiry = Some(now);
        }
        self.cfg = cfg;
        Ok(())
    }

    /// `STREAM.INFO` state.
    pub(crate) fn state(&self, details: bool) -> ApiState {
        let s = self.store.state(details);
        let lost = (!s.corrupt.is_empty()).then(|| chorus_jetstream::api::stream::LostStreamData {
            msgs: s.corrupt.clone(),
            bytes: 0,
        });
        ApiState {
            messages: s.msgs,
            bytes: s.bytes,
            first_seq: s.first_seq,
            first_time: ts(if s.msgs == 0 { 0 } else { s.first_ts }),
            last_seq: s.last_seq,
            last_time: ts(s.last_ts),
            num_subjects: s.num_subjects,
            subjects: Default::default(),
            num_deleted: s.num_deleted,
            deleted: s.deleted.unwrap_or_default(),
            lost,
            consumers: 0,
        }
    }

    /// The `StreamInfo` every API answer builds on; callers add cluster, domain, metadata.
    pub(crate) fn info(&self, config: StreamConfig, details: bool) -> StreamInfo {
        StreamInfo {
            config,
            created: self.created,
            state: self.state(details),
            mirror: self.cfg.mirror.as_ref().map(StreamSourceInfo::inactive),
            sources: self.cfg.sources.iter().map(StreamSourceInfo::inactive).collect(),
            timestamp: Timestamp::from_unix_nanos(now_nanos()),
            ..Default::default()
        }
    }
}

/// `Nats-Msg-Id` of a stored message.
fn msg_id(m: &StoredMsg) -> Option<String> {
    m.headers.as_deref().and_then(|h| headers::get_str(h, hdr::MSG_ID))
}

/// nats-server drops a status line (`NATS/1.0 503`) from an inbound header block before
/// storing (`removeHeaderStatusIfPresent`): keep the headers, lose the status.
fn strip_status(h: &[u8]) -> Vec<u8> {
    let Some(rest) = h.strip_prefix(b"NATS/1.0") else { return h.to_vec() };
    if rest.starts_with(b"\r\n") {
        return h.to_vec();
    }
    match memchr_crlf(rest) {
        Some(i) => {
            let mut out = b"NATS/1.0".to_vec();
            out.extend_from_slice(&rest[i..]);
            out
        }
        None => h.to_vec(),
    }
}

fn memchr_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The first sequence whose message is at or after `t` (unix nanos), `last_seq + 1` if none
/// (nats-server's `GetSeqFromTime`). Timestamps grow with sequences, so this bisects.
pub(crate) fn seq_for_time(store: &dyn StreamStore, t: i64) -> u64 {
    let st = store.state(false);
    if st.msgs == 0 {
        return st.last_seq + 1;
    }
    let all = SubjectFilter::all();
    let (mut lo, mut hi) = (st.first_seq, st.last_seq + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match store.load_next(&all, mid) {
            Ok(Some(m)) if m.timestamp < t => lo = m.seq + 1,
            _ => hi = mid,
        }
    }
    // `lo` may be a deleted sequence; the answer is the message that follows it.
    match store.load_next(&all, lo) {
        Ok(Some(m)) => m.seq,
        _ => st.last_seq + 1,
    }
}

/// [`StreamView`] over a store, for the publish checks.
struct View<'a> {
    store: &'a dyn StreamStore,
    last_msg_id: &'a str,
}

impl View<'_> {
    fn size(&self, m: &StoredMsg) -> u64 {
        let h = m.headers.as_ref().map_or(0, |h| h.len());
        match self.store.kind() {
            StorageKind::File => file_msg_size(m.subject.len(), h, m.payload.len()),
            StorageKind::Memory => mem_msg_size(m.subject.len(), h, m.payload.len()),
        }
    }
}

impl StreamView for View<'_> {
    fn last_seq(&self) -> u64 {
        self.store.state(false).last_seq
    }
    fn last_msg_id(&self) -> &str {
        self.last_msg_id
    }
    fn msgs(&self) -> u64 {
        self.store.state(false).msgs
    }
    fn bytes(&self) -> u64 {
        self.store.state(false).bytes
    }
    fn last_for_subject(&self, subject: &str) -> Option<StoredView> {
        let m = self.store.load_last(&SubjectFilter::subject(subject)).ok().flatten()?;
        Some(StoredView { seq: m.seq, header: m.headers.unwrap_or_default(), payload: m.payload })
    }
    fn subject_msgs(&self, subject: &str) -> u64 {
        self.store
            .subjects_state(&SubjectFilter::subject(subject))
            .get(subject)
            .map_or(0, |s| s.msgs)
    }
    fn first_size_for_subject(&self, subject: &str) -> Option<u64> {
        let m = self.store.load_next(&SubjectFilter::subject(subject), 0).ok().flatten()?;
        Some(self.size(&m))
    }
}

/// The storage kind of a config, in the store's terms.
pub(crate) fn storage_kind(cfg: &StreamConfig) -> StorageKind {
    match cfg.storage {
        StorageType::File => StorageKind::File,
        StorageType::Memory => StorageKind::Memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_store::MemStore;

    /// A config as `check_stream_config` defaults it (-1 = unlimited).
    fn cfg(name: &str) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            subjects: vec![format!("{}.>", name.to_lowercase())],
            max_consumers: -1,
            max_msgs: -1,
            max_bytes: -1,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            num_replicas: 1,
            ..Default::default()
        }
    }

    fn stream(cfg: StreamConfig) -> Stream {
        let mut store = MemStore::new(&cfg.name);
        store.set_limits(limits_of(&cfg)).unwrap();
        Stream::new(1, cfg, Timestamp::ZERO, Box::new(store))
    }

    fn ctx(now: i64) -> PublishContext {
        PublishContext { now, max_payload: 1 << 20 }
    }

    #[test]
    fn bisects_time_over_gaps() {
        let mut s = stream(cfg("T"));
        for (i, t) in [10, 20, 20, 30, 40].iter().enumerate() {
            s.store.append(&NewMessage::new("a", b"x", *t)).unwrap();
            assert_eq!(s.store.state(false).last_seq, i as u64 + 1);
        }
        s.store.remove(3, RemoveMode::Remove).unwrap();
        assert_eq!(seq_for_time(&*s.store, 0), 1);
        assert_eq!(seq_for_time(&*s.store, 20), 2);
        assert_eq!(seq_for_time(&*s.store, 21), 4);
        assert_eq!(seq_for_time(&*s.store, 41), 6);
    }

    #[test]
    fn publish_dedupes_and_keeps_timestamps_monotonic() {
        let mut s = stream(StreamConfig { duplicate_window: 60_000_000_000, ..cfg("D") });
        let h = b"NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n";
        let first = s.publish("d.x", h, b"1", 100, &ctx(100), "", false).unwrap();
        assert!(first.wrote && first.ack.seq == 1);
        let dup = s.publish("d.y", h, b"2", 50, &ctx(50), "", false).unwrap();
        assert!(!dup.wrote && dup.ack.duplicate && dup.ack.seq == 1);
        // A clock that stepped back does not store an older timestamp.
        let later = s.publish("d.z", b"", b"3", 40, &ctx(40), "hub", false).unwrap();
        assert_eq!(later.ack.domain, "hub");
        assert_eq!(s.store.load(2).unwrap().unwrap().timestamp, 100);
        assert_eq!(s.last_msg_id, "");
    }

    #[test]
    fn status_lines_are_not_stored() {
        assert_eq!(strip_status(b"NATS/1.0 503\r\nA: b\r\n\r\n"), b"NATS/1.0\r\nA: b\r\n\r\n");
        assert_eq!(strip_status(b"NATS/1.0\r\nA: b\r\n\r\n"), b"NATS/1.0\r\nA: b\r\n\r\n");
        assert_eq!(strip_status(b""), b"");
    }

    #[test]
    fn interest_streams_without_consumers_keep_the_sequence_only() {
        let mut s = stream(StreamConfig { retention: RetentionPolicy::Interest, ..cfg("I") });
        let a = s.publish("i", b"", b"1", 1, &ctx(1), "", false).unwrap();
        let b = s.publish("i", b"", b"2", 2, &ctx(2), "", false).unwrap();
        assert_eq!((a.ack.seq, b.ack.seq), (1, 2));
        let st = s.state(false);
        assert_eq!((st.messages, st.last_seq), (0, 2));
    }
}
