//! What nats-server decides about a message published to a stream before storing it, and the
//! PubAck it answers with.
//!
//! [`check_publish`] is a pure function of the stream's config, a read-only view of its state
//! ([`StreamView`]), the duplicate window ([`DedupeWindow`]) and the message. It returns either
//! a [`PublishOutcome`] (store with these attributes, or "duplicate of seq N") or the exact
//! [`ApiError`] of the error PubAck, checking in nats-server's order (`processJetStreamMsg`
//! plus the discard-new checks its stores make). The runtime then stores, applies the
//! roll-up, records the message id with [`DedupeWindow::record`], and acks with [`PubAck`].
//!
//! Not decided here: interest-retention streams skipping messages nobody is interested in,
//! account storage limits, republishing, batch publishing, and the validity of
//! `Nats-Schedule` patterns (other schedule headers are checked).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use chorus_proto::subject::{is_valid_publish_subject, subjects_overlap};
use serde::{Deserialize, Serialize};

use super::config::{DiscardPolicy, StorageType, StreamConfig};
use super::headers;
use crate::api::errors::{ApiError, ErrorId};
use crate::go::{parse_duration, parse_int64, to_json_vec};

/// Header names that affect publishing.
pub mod hdr {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
    pub const EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
    pub const EXPECTED_LAST_SUBJ_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
    pub const EXPECTED_LAST_SUBJ_SEQ_SUBJ: &str = "Nats-Expected-Last-Subject-Sequence-Subject";
    pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
    pub const ROLLUP: &str = "Nats-Rollup";
    pub const TTL: &str = "Nats-TTL";
    pub const INCR: &str = "Nats-Incr";
    pub const COUNTER_SOURCES: &str = "Nats-Counter-Sources";
    pub const STREAM_SOURCE: &str = "Nats-Stream-Source";
    pub const SCHEDULE: &str = "Nats-Schedule";
    pub const SCHEDULE_TTL: &str = "Nats-Schedule-TTL";
    pub const SCHEDULE_ROLLUP: &str = "Nats-Schedule-Rollup";
    pub const SCHEDULE_TARGET: &str = "Nats-Schedule-Target";
    pub const SCHEDULE_SOURCE: &str = "Nats-Schedule-Source";
    pub const SCHEDULE_NEXT: &str = "Nats-Schedule-Next";
    pub const SCHEDULER: &str = "Nats-Scheduler";
    pub const REQUEST_INFO: &str = "Nats-Request-Info";
    pub const REQUIRED_API_LEVEL: &str = "Nats-Required-Api-Level";
}

/// Rollup header values.
pub const ROLLUP_SUBJECT: &str = "sub";
pub const ROLLUP_ALL: &str = "all";
/// Largest header block the stream takes.
pub const MAX_HEADER_LEN: usize = 65_535;
/// Largest record the file store can hold.
const FILE_STORE_MAX_RECORD: u64 = 32 * 1024 * 1024;

/// A stored message as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView {
    pub seq: u64,
    pub header: Bytes,
    pub payload: Bytes,
}

/// Read-only view of a stream's state.
pub trait StreamView {
    /// Sequence of the last message stored (0 for none).
    fn last_seq(&self) -> u64;
    /// The `Nats-Msg-Id` of the last message stored (empty if it had none).
    fn last_msg_id(&self) -> &str;
    /// Messages currently in the stream.
    fn msgs(&self) -> u64;
    /// Bytes currently in the stream, as the store counts them ([`stored_size`]).
    fn bytes(&self) -> u64;
    /// The last message on `subject` (which may contain wildcards).
    fn last_for_subject(&self, subject: &str) -> Option<StoredView>;
    /// How many messages `subject` (a literal) has.
    fn subject_msgs(&self, subject: &str) -> u64;
    /// Stored size of the oldest message on `subject` (a literal).
    fn first_size_for_subject(&self, subject: &str) -> Option<u64>;
}

/// The bytes a message counts for in the stream's `bytes`, per storage type (nats-server's
/// `fileStoreMsgSize` / `memStoreMsgSize`).
pub fn stored_size(storage: StorageType, subject: &str, header: &[u8], payload: &[u8]) -> u64 {
    let (s, h, m) = (subject.len() as u64, header.len() as u64, payload.len() as u64);
    match storage {
        StorageType::File if h == 0 => 22 + s + m + 8,
        StorageType::File => 22 + s + 4 + h + m + 8,
        StorageType::Memory => s + h + m + 16,
    }
}

/// The duplicate window: message ids seen within `window` nanoseconds and their sequences.
#[derive(Debug, Clone, Default)]
pub struct DedupeWindow {
    window: i64,
    ids: HashMap<String, (u64, i64)>,
    order: VecDeque<(i64, String)>,
}

impl DedupeWindow {
    /// A window of `window` nanoseconds (the stream's `duplicate_window`); 0 disables it.
    pub fn new(window: i64) -> Self {
        DedupeWindow { window, ..Default::default() }
    }

    pub fn window(&self) -> i64 {
        self.window
    }

    /// Changes the window (stream update); entries are kept and expire under the new one.
    pub fn set_window(&mut self, window: i64) {
        self.window = window;
    }

    /// The sequence `id` was stored at, if still inside the window at `now`.
    pub fn check(&self, id: &str, now: i64) -> Option<u64> {
        self.ids.get(id).filter(|(_, ts)| now.saturating_sub(*ts) < self.window).map(|(s, _)| *s)
    }

    /// Remembers that `id` was stored at `seq` with timestamp `ts` (nanoseconds).
    pub fn record(&mut self, id: &str, seq: u64, ts: i64) {
        if self.window <= 0 || id.is_empty() {
            return;
        }
        self.ids.insert(id.to_string(), (seq, ts));
        self.order.push_back((ts, id.to_string()));
    }

    /// Forgets entries older than the window at `now`; returns when the next one expires.
    pub fn purge(&mut self, now: i64) -> Option<i64> {
        while let Some((ts, id)) = self.order.front() {
            if now.saturating_sub(*ts) < self.window {
                return Some(ts + self.window);
            }
            // An id re-recorded later has a newer entry further back; keep that one.
            if self.ids.get(id).is_some_and(|(_, t)| t == ts) {
                self.ids.remove(id);
            }
            self.order.pop_front();
        }
        None
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A message arriving for the stream.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The subject after the stream's `subject_transform`.
    pub subject: &'a str,
    pub header: &'a [u8],
    pub payload: &'a [u8],
    /// Arrived through sourcing (some checks are the origin's business).
    pub sourced: bool,
}

/// Settings from outside the stream.
#[derive(Debug, Clone, Copy)]
pub struct PublishContext {
    /// Now, in nanoseconds since the Unix epoch (for the duplicate window).
    pub now: i64,
    /// The server's `max_payload`, which counter results must fit.
    pub max_payload: i64,
}

/// What a roll-up purges after the message is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// All older messages on the same subject.
    Subject,
    /// All older messages in the stream.
    All,
}

/// What to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDirective {
    /// The header block to store when it differs from the inbound one (request info
    /// stripped, TTL raised to the delete-marker TTL, counter headers rewritten).
    pub header: Option<Vec<u8>>,
    /// The payload to store when it differs (a counter's new value).
    pub payload: Option<Vec<u8>>,
    /// `Nats-Msg-Id`, to record in the duplicate window once stored.
    pub msg_id: Option<String>,
    /// Per-message TTL in seconds: 0 none, -1 never expires.
    pub ttl: i64,
    pub rollup: Option<Rollup>,
    /// A counter's new value, reported in the PubAck as `val`.
    pub counter_value: Option<String>,
}

/// The decision about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Store it.
    Store(StoreDirective),
    /// Its `Nats-Msg-Id` was stored at this sequence within the window: ack as a duplicate.
    Duplicate { seq: u64 },
}

fn rollup_failed(msg: &str) -> ApiError {
    ErrorId::StreamRollupFailed.with_err(msg)
}

fn store_failed(msg: &str) -> ApiError {
    ErrorId::StreamStoreFailed.with_err(msg)
}

/// nats-server's `parseMessageTTL`: `never` is -1; a Go duration must be at least a second
/// and counts whole seconds; otherwise digits are seconds.
pub fn parse_ttl(value: &str) -> Result<i64, ApiError> {
    if value.eq_ignore_ascii_case("never") {
        return Ok(-1);
    }
    if let Ok(d) = parse_duration(value) {
        if d < 1_000_000_000 {
            return Err(ErrorId::MessageTTLInvalid.error());
        }
        return Ok(d / 1_000_000_000);
    }
    let t = parse_int64(value.as_bytes());
    if t < 0 {
        return Err(ErrorId::MessageTTLInvalid.error());
    }
    Ok(t)
}

/// The `Nats-TTL` of a header block: 0 when absent, -1 for never.
fn header_ttl(h: &[u8]) -> Result<i64, ApiError> {
    match headers::get_non_empty(h, hdr::TTL) {
        None => Ok(0),
        Some(v) => parse_ttl(&String::from_utf8_lossy(v)),
    }
}

fn get_seq(h: &[u8], key: &str) -> Option<u64> {
    headers::get_non_empty(h, key).map(|v| parse_int64(v) as u64)
}

/// Decides about `msg`. See the module docs for what is and is not covered.
pub fn check_publish(
    cfg: &StreamConfig,
    view: &dyn StreamView,
    dedupe: &DedupeWindow,
    msg: &Inbound<'_>,
    ctx: &PublishContext,
) -> Result<PublishOutcome, ApiError> {
    let subject = msg.subject;
    let mut payload: Option<Vec<u8>> = None;
    let allow_rollup_purge = cfg.allow_rollup && !cfg.deny_purge;

    let file_size = stored_size(StorageType::File, subject, msg.header, msg.payload);
    if cfg.storage == StorageType::File && file_size > FILE_STORE_MAX_RECORD {
        return Err(store_failed("message too large"));
    }
    if cfg.sealed {
        return Err(ErrorId::StreamSealed.error());
    }

    // Request info from a cross-account import is not stored.
    let mut header: Option<Vec<u8>> = None;
    if !msg.header.is_empty() && headers::get(msg.header, hdr::REQUEST_INFO).is_some() {
        header = Some(headers::remove(msg.header, hdr::REQUEST_INFO));
    }
    let cur = |header: &Option<Vec<u8>>| -> Vec<u8> {
        header.clone().unwrap_or_else(|| msg.header.to_vec())
    };
    let h0 = cur(&header);
    let h: &[u8] = &h0;

    let too_big = |h: &[u8], p: &[u8]| {
        cfg.max_msg_size >= 0
            && (h.len() > cfg.max_msg_size as usize
                || p.len() > (cfg.max_msg_size as usize).saturating_sub(h.len()))
    };
    if too_big(h, msg.payload) {
        return Err(ErrorId::StreamMessageExceedsMaximum.error());
    }
    if h.len() > MAX_HEADER_LEN {
        return Err(ErrorId::StreamHeaderExceedsMaximum.error());
    }

    let mut incr: Option<BigInt> = None;
    let mut msg_id: Option<String> = None;
    let mut rollup = None;
    let mut extra_header: Option<Vec<u8>> = None;

    if !h.is_empty() {
        match headers::get_non_empty(h, hdr::INCR) {
            None => {}
            Some(v) => match BigInt::parse(v) {
                None => return Err(ErrorId::MessageIncrInvalid.error()),
                Some(n) => incr = Some(n),
            },
        }
        if incr.is_some() && !msg.sourced {
            if !cfg.allow_msg_counter {
                return Err(ErrorId::MessageIncrDisabled.error());
            }
            if !msg.payload.is_empty() {
                return Err(ErrorId::MessageIncrPayload.error());
            }
            let incompatible = [
                hdr::ROLLUP,
                hdr::EXPECTED_STREAM,
                hdr::EXPECTED_LAST_MSG_ID,
                hdr::EXPECTED_LAST_SUBJ_SEQ_SUBJ,
                hdr::EXPECTED_LAST_SEQ,
                hdr::EXPECTED_LAST_SUBJ_SEQ,
            ];
            if incompatible.iter().any(|k| headers::get_non_empty(h, k).is_some()) {
                return Err(ErrorId::MessageIncrInvalid.error());
            }
        }

        if let Some(name) = headers::get_non_empty(h, hdr::EXPECTED_STREAM)
            && name != cfg.name.as_bytes()
        {
            return Err(ErrorId::StreamNotMatch.error());
        }

        // A TTL that does not parse counts as none here and fails later, as in nats-server.
        if !msg.sourced && header_ttl(h).unwrap_or(0) != 0 && !cfg.allow_msg_ttl {
            return Err(ErrorId::MessageTTLDisabled.error());
        }

        let subj_override = headers::get_str(h, hdr::EXPECTED_LAST_SUBJ_SEQ_SUBJ);
        if let Some(want) = get_seq(h, hdr::EXPECTED_LAST_SUBJ_SEQ) {
            let on = subj_override.as_deref().unwrap_or(subject);
            let have = view.last_for_subject(on).map_or(0, |m| m.seq);
            if have != want {
                return Err(ErrorId::StreamWrongLastSequence.with(&[("seq", &have)]));
            }
        } else if subj_override.is_some() {
            return Err(ErrorId::StreamExpectedLastSeqPerSubjectInvalid.error());
        }

        if let Some(want) = get_seq(h, hdr::EXPECTED_LAST_SEQ)
            && want != view.last_seq()
        {
            return Err(ErrorId::StreamWrongLastSequence.with(&[("seq", &view.last_seq())]));
        }

        if !msg.sourced
            && let Some(extra) = check_schedule_headers(cfg, view, subject, h)?
        {
            extra_header = Some(extra);
        }

        if !msg.sourced && headers::get_non_empty(h, hdr::STREAM_SOURCE).is_some() {
            return Err(ErrorId::MessageSourceHdrNotAllowed.error());
        }

        if let Some(id) = headers::get_str(h, hdr::MSG_ID) {
            if cfg.mirror.is_none()
                && let Some(seq) = dedupe.check(&id, ctx.now)
            {
                return Ok(PublishOutcome::Duplicate { seq });
            }
            msg_id = Some(id);
        }

        if let Some(want) = headers::get_str(h, hdr::EXPECTED_LAST_MSG_ID)
            && want != view.last_msg_id()
        {
            return Err(ErrorId::StreamWrongLastMsgID.with(&[("id", &view.last_msg_id())]));
        }

        if let Some(v) = headers::get_non_empty(h, hdr::ROLLUP) {
            if !allow_rollup_purge && !msg.sourced {
                return Err(rollup_failed("rollup not permitted"));
            }
            let v = String::from_utf8_lossy(v).to_lowercase();
            rollup = match v.as_str() {
                ROLLUP_SUBJECT => Some(Rollup::Subject),
                ROLLUP_ALL => Some(Rollup::All),
                _ => return Err(rollup_failed(&format!("rollup value invalid: {v:?}"))),
            };
        }
    }
    if let Some(extra) = extra_header {
        header = Some(extra);
        rollup = rollup.or(Some(Rollup::Subject));
    }

    if incr.is_none() && cfg.allow_msg_counter {
        return Err(ErrorId::MessageIncrMissing.error());
    }

    let mut counter_value = None;
    if let (Some(incr), true) = (incr, cfg.allow_msg_counter) {
        let (hdr_out, value) = apply_counter(view, subject, &cur(&header), msg.payload, incr)?;
        let body = format!("{{\"val\":{}}}", crate::go::quote(&value));
        if hdr_out.len() as i64 > ctx.max_payload
            || body.len() as i64 > ctx.max_payload - hdr_out.len() as i64
        {
            return Err(ErrorId::StreamMessageExceedsMaximum.error());
        }
        header = Some(hdr_out);
        payload = Some(body.into_bytes());
        counter_value = Some(value);
    }

    let h_final = cur(&header);
    let p_final: &[u8] = payload.as_deref().unwrap_or(msg.payload);
    if too_big(&h_final, p_final) {
        return Err(ErrorId::StreamMessageExceedsMaximum.error());
    }
    if h_final.len() > MAX_HEADER_LEN {
        return Err(ErrorId::StreamHeaderExceedsMaximum.error());
    }

    let mut ttl = header_ttl(&h_final)?;
    if ttl > 0 && cfg.subject_delete_marker_ttl > 0 && cfg.max_msgs_per_subject != 1 {
        // Shorter TTLs could expire a subject while its delete marker still stands.
        let min = cfg.subject_delete_marker_ttl / 1_000_000_000;
        if ttl < min {
            ttl = min;
            let h = headers::remove(&h_final, hdr::TTL);
            header = Some(headers::append(&h, hdr::TTL, &ttl.to_string()));
        }
    }

    let h_store = cur(&header);
    check_discard_new(cfg, view, subject, &h_store, p_final)?;

    Ok(PublishOutcome::Store(StoreDirective {
        header,
        payload,
        msg_id,
        ttl,
        // Roll-ups happen only where purging is allowed, also for sourced messages.
        rollup: if allow_rollup_purge { rollup } else { None },
        counter_value,
    }))
}

/// The stores' discard-new checks: per-subject (when `discard_new_per_subject`), message
/// count and bytes. A message on a subject at its per-subject limit replaces that subject's
/// oldest, so it passes the stream-wide checks if the replacement makes room.
fn check_discard_new(
    cfg: &StreamConfig,
    view: &dyn StreamView,
    subject: &str,
    header: &[u8],
    payload: &[u8],
) -> Result<(), ApiError> {
    if cfg.discard != DiscardPolicy::New {
        return Ok(());
    }
    let at_subject_limit = cfg.max_msgs_per_subject > 0
        && !subject.is_empty()
        && view.subject_msgs(subject) >= cfg.max_msgs_per_subject as u64;
    if at_subject_limit
        && cfg.discard_new_per_subject
        && headers::get_non_empty(header, hdr::ROLLUP).is_none()
    {
        return Err(store_failed("maximum messages per subject exceeded"));
    }
    if cfg.max_msgs > 0 && view.msgs() >= cfg.max_msgs as u64 && !at_subject_limit {
        return Err(store_failed("maximum messages exceeded"));
    }
    let size = stored_size(cfg.storage, subject, header, payload);
    if cfg.max_bytes > 0 && view.bytes() + size > cfg.max_bytes as u64 {
        let replaced = view.first_size_for_subject(subject).unwrap_or(0);
        if !at_subject_limit || replaced < size {
            return Err(store_failed("maximum bytes exceeded"));
        }
    }
    Ok(())
}

/// The checks on scheduling headers nats-server makes before storing. Returns a header block
/// with `Nats-Rollup: sub` added when a schedule message lacks one.
fn check_schedule_headers(
    cfg: &StreamConfig,
    view: &dyn StreamView,
    subject: &str,
    h: &[u8],
) -> Result<Option<Vec<u8>>, ApiError> {
    let mut out = None;
    if headers::get_non_empty(h, hdr::SCHEDULE).is_some() {
        if !cfg.allow_msg_schedules {
            return Err(ErrorId::MessageSchedulesDisabled.error());
        }
        if let Some(t) = headers::get_str(h, hdr::SCHEDULE_TTL)
            && parse_ttl(&t).is_err()
        {
            return Err(ErrorId::MessageSchedulesTTLInvalid.error());
        }
        let srollup = headers::get_str(h, hdr::SCHEDULE_ROLLUP);
        if srollup.as_deref().is_some_and(|r| r != ROLLUP_SUBJECT) {
            return Err(ErrorId::MessageSchedulesRollupInvalid.error());
        }
        if headers::get_non_empty(h, hdr::SCHEDULE_TTL).is_some() && !cfg.allow_msg_ttl {
            return Err(ErrorId::MessageTTLDisabled.error());
        }
        let target = headers::get_str(h, hdr::SCHEDULE_TARGET).unwrap_or_default();
        if target.is_empty() || !is_valid_publish_subject(target.as_bytes()) || target == subject {
            return Err(ErrorId::MessageSchedulesTargetInvalid.error());
        }
        let source = headers::get_str(h, hdr::SCHEDULE_SOURCE);
        if let Some(s) = &source
            && (*s == target || s == subject || !is_valid_publish_subject(s.as_bytes()))
        {
            return Err(ErrorId::MessageSchedulesSourceInvalid.error());
        }
        let captured =
            |s: &str| cfg.subjects.iter().any(|x| subjects_overlap(x.as_bytes(), s.as_bytes()));
        if !captured(&target) {
            return Err(ErrorId::MessageSchedulesTargetInvalid.error());
        }
        if source.as_deref().is_some_and(|s| !captured(s)) {
            return Err(ErrorId::MessageSchedulesSourceInvalid.error());
        }
        match headers::get_non_empty(h, hdr::ROLLUP) {
            None => out = Some(headers::append(h, hdr::ROLLUP, ROLLUP_SUBJECT)),
            Some(r) if String::from_utf8_lossy(r).to_lowercase() == ROLLUP_SUBJECT => {}
            Some(_) => return Err(ErrorId::MessageSchedulesRollupInvalid.error()),
        }
    }
    if let Some(next) = headers::get_non_empty(h, hdr::SCHEDULE_NEXT) {
        // Clients may only use it to purge a schedule, naming the schedule's subject.
        if next != b"purge" {
            return Err(ErrorId::MessageSchedulesSchedulerInvalid.error());
        }
        let scheduler = headers::get_str(h, hdr::SCHEDULER).unwrap_or_default();
        if scheduler.is_empty()
            || scheduler == subject
            || !is_valid_publish_subject(scheduler.as_bytes())
        {
            return Err(ErrorId::MessageSchedulesSchedulerInvalid.error());
        }
        if !cfg.allow_msg_schedules {
            return Err(ErrorId::MessageSchedulesDisabled.error());
        }
        if let Some(last) = view.last_for_subject(&scheduler)
            && headers::get_non_empty(&last.header, hdr::SCHEDULE).is_none()
        {
            return Err(ErrorId::MessageSchedulesSchedulerInvalid.error());
        }
    } else if headers::get_non_empty(h, hdr::SCHEDULER).is_some() {
        return Err(ErrorId::MessageSchedulesSchedulerInvalid.error());
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CounterValue {
    val: String,
}

/// Adds `incr` to the subject's counter. For a sourced message the increment is instead the
/// change of that source's value since we last saw it, tracked in `Nats-Counter-Sources`.
fn apply_counter(
    view: &dyn StreamView,
    subject: &str,
    header: &[u8],
    payload: &[u8],
    mut incr: BigInt,
) -> Result<(Vec<u8>, String), ApiError> {
    let broken = || ErrorId::MessageCounterBroken.error();
    let mut total = BigInt::zero();
    let mut sources: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if let Some(last) = view.last_for_subject(subject) {
        let v: CounterValue = serde_json::from_slice(&last.payload).map_err(|_| broken())?;
        if let Some(ncs) = headers::get_non_empty(&last.header, hdr::COUNTER_SOURCES) {
            sources = serde_json::from_slice(ncs).map_err(|_| broken())?;
        }
        total = BigInt::parse(v.val.as_bytes()).unwrap_or_else(BigInt::zero);
    }
    let mut header = header.to_vec();
    if let Some(src) = headers::get_non_empty(&header, hdr::STREAM_SOURCE) {
        let src = String::from_utf8_lossy(src).into_owned();
        let fields: Vec<&str> = src.split(' ').collect();
        let origin_stream = fields[0].to_string();
        let origin_subject = fields.get(4).map_or(subject.to_string(), |s| s.to_string());
        let v: CounterValue = serde_json::from_slice(payload).map_err(|_| broken())?;
        let sourced = BigInt::parse(v.val.as_bytes()).unwrap_or_else(BigInt::zero);
        let per = sources.entry(origin_stream).or_default();
        let previous = per
            .insert(origin_subject, sourced.to_string())
            .and_then(|p| BigInt::parse(p.as_bytes()))
            .unwrap_or_else(BigInt::zero);
        incr = sourced.add(&previous.neg());
        header = headers::set(&header, hdr::INCR, &incr.to_string());
    }
    total = total.add(&incr);
    if !sources.is_empty() {
        let json = String::from_utf8(to_json_vec(&sources)).map_err(|_| broken())?;
        header = headers::set(&header, hdr::COUNTER_SOURCES, &json);
    }
    Ok((header, total.to_string()))
}

/// A signed decimal integer of any size (counter values are Go `big.Int`s).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BigInt {
    neg: bool,
    /// Little-endian base-10 digits, no trailing zeros (empty for zero).
    digits: Vec<u8>,
}

impl BigInt {
    fn zero() -> BigInt {
        BigInt { neg: false, digits: vec![] }
    }

    /// Go's `SetString(s, 10)`: optional sign, then at least one digit.
    fn parse(s: &[u8]) -> Option<BigInt> {
        let (neg, d) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits: Vec<u8> = d.iter().rev().map(|c| c - b'0').collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let neg = neg && !digits.is_empty();
        Some(BigInt { neg, digits })
    }

    fn neg(&self) -> BigInt {
        BigInt { neg: !self.neg && !self.digits.is_empty(), digits: self.digits.clone() }
    }

    fn cmp_mag(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.len().cmp(&b.len()).then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn add(&self, other: &BigInt) -> BigInt {
        let (a, b) = (&self.digits, &other.digits);
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let neg;
        if self.neg == other.neg {
            let mut carry = 0;
            for i in 0..a.len().max(b.len()) {
                let s = a.get(i).unwrap_or(&0) + b.get(i).unwrap_or(&0) + carry;
                out.push(s % 10);
                carry = s / 10;
            }
            if carry > 0 {
                out.push(carry);
            }
            neg = self.neg;
        } else {
            let (big, small, big_neg) =
                if Self::cmp_mag(a, b).is_ge() { (a, b, self.neg) } else { (b, a, other.neg) };
            let mut borrow = 0i8;
            for (i, &digit) in big.iter().enumerate() {
                let mut d = digit as i8 - *small.get(i).unwrap_or(&0) as i8 - borrow;
                borrow = 0;
                if d < 0 {
                    d += 10;
                    borrow = 1;
                }
                out.push(d as u8);
            }
            neg = big_neg;
        }
        while out.last() == Some(&0) {
            out.pop();
        }
        let neg = neg && !out.is_empty();
        BigInt { neg, digits: out }
    }
}

impl std::fmt::Display for BigInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        if self.neg {
            f.write_str("-")?;
        }
        for d in self.digits.iter().rev() {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A successful PubAck.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAck {
    pub stream: String,
    #[serde(rename = "seq")]
    pub seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// A counter's value after the increment.
    #[serde(default, rename = "val", skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, rename = "batch", skip_serializing_if = "String::is_empty")]
    pub batch_id: String,
    #[serde(default, rename = "count", skip_serializing_if = "is_zero")]
    pub batch_size: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl PubAck {
    /// The bytes nats-server sends: its hand-built template
    /// `{"stream":"S"[,"domain":"D"],"seq":N...}`, with `,"duplicate": true` (note the space)
    /// for duplicates and `,"val":"V"` for counters.
    pub fn to_wire(&self) -> Vec<u8> {
        // Built by hand: this runs once per stored message, on the thread that stores them.
        let mut s = String::with_capacity(32 + self.stream.len() + self.domain.len());
        s.push_str("{\"stream\":");
        crate::go::quote_into(&mut s, &self.stream);
        if !self.domain.is_empty() {
            s.push_str(",\"domain\":");
            crate::go::quote_into(&mut s, &self.domain);
        }
        s.push_str(",\"seq\":");
        push_u64(&mut s, self.seq);
        if self.duplicate {
            s.push_str(",\"duplicate\": true");
        } else if !self.batch_id.is_empty() {
            s.push_str(",\"batch\":");
            crate::go::quote_into(&mut s, &self.batch_id);
            s.push_str(",\"count\":");
            push_u64(&mut s, self.batch_size);
        } else if !self.value.is_empty() {
            s.push_str(",\"val\":");
            crate::go::quote_into(&mut s, &self.value);
        }
        s.push('}');
        s.into_bytes()
    }
}

/// Appends `n` in decimal.
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// A PubAck response as clients parse it: either the ack or `{"error":..,"stream":..,"seq":0}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAckResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(flatten)]
    pub ack: PubAck,
}

impl PubAckResponse {
    /// The error PubAck nats-server sends for a rejected publish.
    pub fn error(stream: &str, error: ApiError) -> Self {
        PubAckResponse {
            error: Some(error),
            ack: PubAck { stream: stream.into(), ..Default::default() },
        }
    }

    /// Wire bytes: the template for acks, Go JSON for errors.
    pub fn to_wire(&self) -> Vec<u8> {
        match &self.error {
            None => self.ack.to_wire(),
            Some(_) => to_json_vec(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream's messages in memory, enough to answer [`StreamView`].
    #[derive(Default)]
    struct Model {
        storage: StorageType,
        msgs: Vec<(u64, String, Vec<u8>, Vec<u8>)>,
        last_seq: u64,
        last_id: String,
    }

    impl Model {
        fn store(&mut self, subject: &str, h: &[u8], p: &[u8], d: &StoreDirective) -> u64 {
            self.last_seq += 1;
            let h = d.header.clone().unwrap_or(h.to_vec());
            let p = d.payload.clone().unwrap_or(p.to_vec());
            self.msgs.push((self.last_seq, subject.into(), h, p));
            self.last_id = d.msg_id.clone().unwrap_or_default();
            match d.rollup {
                Some(Rollup::Subject) => {
                    let keep = self.last_seq;
                    self.msgs.retain(|m| m.1 != subject || m.0 == keep);
                }
                Some(Rollup::All) => self.msgs.retain(|m| m.0 == self.last_seq),
                None => {}
            }
            self.last_seq
        }
    }

    impl StreamView for Model {
        fn last_seq(&self) -> u64 {
            self.last_seq
        }
        fn last_msg_id(&self) -> &str {
            &self.last_id
        }
        fn msgs(&self) -> u64 {
            self.msgs.len() as u64
        }
        fn bytes(&self) -> u64 {
            self.msgs.iter().map(|m| stored_size(self.storage, &m.1, &m.2, &m.3)).sum()
        }
        fn last_for_subject(&self, subject: &str) -> Option<StoredView> {
            self.msgs
                .iter()
                .rev()
                .find(|m| subjects_overlap(m.1.as_bytes(), subject.as_bytes()))
                .map(|m| StoredView {
                    seq: m.0,
                    header: Bytes::from(m.2.clone()),
                    payload: Bytes::from(m.3.clone()),
                })
        }
        fn subject_msgs(&self, subject: &str) -> u64 {
            self.msgs.iter().filter(|m| m.1 == subject).count() as u64
        }
        fn first_size_for_subject(&self, subject: &str) -> Option<u64> {
            self.msgs
                .iter()
                .find(|m| m.1 == subject)
                .map(|m| stored_size(self.storage, &m.1, &m.2, &m.3))
        }
    }

    fn cfg() -> StreamConfig {
        StreamConfig {
            name: "P".into(),
            subjects: vec!["p.>".into()],
            max_msgs: -1,
            max_bytes: -1,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            duplicate_window: 120_000_000_000,
            ..Default::default()
        }
    }

    const CTX: PublishContext = PublishContext { now: 1_000_000_000_000, max_payload: 1 << 20 };

    fn publish(
        cfg: &StreamConfig,
        m: &mut Model,
        dd: &mut DedupeWindow,
        subject: &str,
        h: &str,
        p: &str,
    ) -> Result<PublishOutcome, ApiError> {
        let msg = Inbound { subject, header: h.as_bytes(), payload: p.as_bytes(), sourced: false };
        let out = check_publish(cfg, m, dd, &msg, &CTX)?;
        if let PublishOutcome::Store(d) = &out {
            let seq = m.store(subject, h.as_bytes(), p.as_bytes(), d);
            if let Some(id) = &d.msg_id {
                dd.record(id, seq, CTX.now);
            }
        }
        Ok(out)
    }

    fn h(pairs: &[(&str, &str)]) -> String {
        let mut s = String::from("NATS/1.0\r\n");
        for (k, v) in pairs {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s + "\r\n"
    }

    fn err_of(r: Result<PublishOutcome, ApiError>) -> (u16, String) {
        let e = r.expect_err("expected rejection");
        (e.err_code, e.description)
    }

    #[test]
    fn expectations() {
        let c = cfg();
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        publish(&c, &mut m, &mut dd, "p.a", "", "one").unwrap();
        let id = h(&[("Nats-Msg-Id", "m1")]);
        publish(&c, &mut m, &mut dd, "p.a", &id, "two").unwrap();
        assert_eq!(
            publish(&c, &mut m, &mut dd, "p.z", &id, "two").unwrap(),
            PublishOutcome::Duplicate { seq: 2 }
        );
        let r = publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Expected-Stream", "Q")]), "x");
        assert_eq!(err_of(r), (10060, "expected stream does not match".into()));
        // Lower-case header names are not preconditions.
        assert!(
            publish(&c, &mut m, &mut dd, "p.a", &h(&[("nats-expected-stream", "Q")]), "y").is_ok()
        );
        let r =
            publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Expected-Last-Sequence", "1")]), "x");
        assert_eq!(err_of(r), (10071, "wrong last sequence: 3".into()));
        // Junk parses as -1, i.e. never equal.
        let r =
            publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Expected-Last-Sequence", "abc")]), "x");
        assert_eq!(err_of(r).0, 10071);
        assert!(
            publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Expected-Last-Sequence", "3")]), "x")
                .is_ok()
        );
        let subj0 = h(&[("Nats-Expected-Last-Subject-Sequence", "0")]);
        assert!(publish(&c, &mut m, &mut dd, "p.new", &subj0, "x").is_ok());
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.new", &subj0, "x")).1,
            "wrong last sequence: 5"
        );
        let other = h(&[
            ("Nats-Expected-Last-Subject-Sequence", "5"),
            ("Nats-Expected-Last-Subject-Sequence-Subject", "p.new"),
        ]);
        assert!(publish(&c, &mut m, &mut dd, "p.other", &other, "x").is_ok());
        let alone = h(&[("Nats-Expected-Last-Subject-Sequence-Subject", "p.new")]);
        assert_eq!(err_of(publish(&c, &mut m, &mut dd, "p.other", &alone, "x")).0, 10193);
        let lid = h(&[("Nats-Expected-Last-Msg-Id", "zzz")]);
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.a", &lid, "x")),
            (10070, "wrong last msg ID: ".into())
        );
        publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Msg-Id", "m2")]), "x").unwrap();
        assert!(
            publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Expected-Last-Msg-Id", "m2")]), "x")
                .is_ok()
        );
    }

    #[test]
    fn disabled_features() {
        let c = cfg();
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        let cases = [
            (("Nats-Rollup", "sub"), 10111, "rollup not permitted"),
            (("Nats-TTL", "5s"), 10166, "per-message TTL is disabled"),
            (("Nats-TTL", "never"), 10166, "per-message TTL is disabled"),
            (("Nats-Incr", "1"), 10168, "message counters is disabled"),
            (("Nats-Stream-Source", "X 1"), 10227, "message stream source header is not allowed"),
            (("Nats-Schedule", "@at 2030-01-01T00:00:00Z"), 10188, "message schedules is disabled"),
            (("Nats-Scheduler", "p.s"), 10212, "message schedules invalid scheduler"),
        ];
        for ((k, v), code, desc) in cases {
            let body = if k == "Nats-Incr" { "" } else { "x" };
            let r = publish(&c, &mut m, &mut dd, "p.a", &h(&[(k, v)]), body);
            assert_eq!(err_of(r), (code, desc.to_string()), "{k}");
        }
        // A TTL that does not parse passes the "disabled" check and fails as invalid.
        let r = publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-TTL", "abc")]), "x");
        assert_eq!(err_of(r).0, 10165);
    }

    #[test]
    fn rollups_and_ttls() {
        let c = StreamConfig { allow_rollup: true, allow_msg_ttl: true, ..cfg() };
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        let stored = |r: Result<PublishOutcome, ApiError>| match r.unwrap() {
            PublishOutcome::Store(d) => d,
            other => panic!("{other:?}"),
        };
        let d = stored(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Rollup", "SUB")]), "x"));
        assert_eq!(d.rollup, Some(Rollup::Subject));
        let d = stored(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Rollup", "all")]), "x"));
        assert_eq!(d.rollup, Some(Rollup::All));
        let r = publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Rollup", "bogus")]), "x");
        assert_eq!(err_of(r), (10111, r#"rollup value invalid: "bogus""#.into()));
        for (v, secs) in [("5s", 5), ("never", -1), ("10", 10), ("1h30m", 5400)] {
            let d = stored(publish(&c, &mut m, &mut dd, "p.t", &h(&[("Nats-TTL", v)]), "x"));
            assert_eq!(d.ttl, secs, "{v}");
        }
        for v in ["500ms", "abc", "0", "-5s"] {
            let r = publish(&c, &mut m, &mut dd, "p.t", &h(&[("Nats-TTL", v)]), "x");
            assert_eq!(err_of(r), (10165, "invalid per-message TTL".into()), "{v}");
        }
        // Delete markers raise shorter TTLs to theirs, rewriting the header.
        let c = StreamConfig { subject_delete_marker_ttl: 60_000_000_000, ..c };
        let d = stored(publish(
            &c,
            &mut m,
            &mut dd,
            "p.t",
            &h(&[("Foo", "x"), ("Nats-TTL", "5s")]),
            "x",
        ));
        assert_eq!(d.ttl, 60);
        assert_eq!(d.header.unwrap(), b"NATS/1.0\r\nFoo: x\r\nNats-TTL: 60\r\n\r\n");
    }

    #[test]
    fn sizes_and_discard_new() {
        let c =
            StreamConfig { max_msg_size: 10, max_msgs: 2, discard: DiscardPolicy::New, ..cfg() };
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        let too_big = (10054, "message size exceeds maximum allowed".to_string());
        assert_eq!(err_of(publish(&c, &mut m, &mut dd, "p.a", "", "01234567890")), too_big);
        assert_eq!(err_of(publish(&c, &mut m, &mut dd, "p.a", &h(&[("X", "y")]), "0123")), too_big);
        publish(&c, &mut m, &mut dd, "p.a", "", "0123456789").unwrap();
        publish(&c, &mut m, &mut dd, "p.b", "", "1").unwrap();
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.c", "", "2")),
            (10077, "maximum messages exceeded".into())
        );
        let c = StreamConfig { max_bytes: 100, discard: DiscardPolicy::New, ..cfg() };
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        publish(&c, &mut m, &mut dd, "p.a", "", &"x".repeat(40)).unwrap();
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.a", "", &"x".repeat(40))).1,
            "maximum bytes exceeded"
        );
        let c = StreamConfig {
            max_msgs_per_subject: 1,
            discard: DiscardPolicy::New,
            discard_new_per_subject: true,
            allow_rollup: true,
            ..cfg()
        };
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        publish(&c, &mut m, &mut dd, "p.a", "", "1").unwrap();
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.a", "", "2")).1,
            "maximum messages per subject exceeded"
        );
        assert!(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Rollup", "sub")]), "3").is_ok());
        assert!(publish(&c, &mut m, &mut dd, "p.b", "", "4").is_ok());
        let sealed = StreamConfig { sealed: true, ..cfg() };
        assert_eq!(err_of(publish(&sealed, &mut m, &mut dd, "p.a", "", "x")).0, 10109);
    }

    #[test]
    fn counters() {
        let c = StreamConfig { allow_msg_counter: true, ..cfg() };
        let (mut m, mut dd) = (Model::default(), DedupeWindow::new(c.duplicate_window));
        let value = |r: Result<PublishOutcome, ApiError>| match r.unwrap() {
            PublishOutcome::Store(d) => (d.counter_value.unwrap(), d.payload.unwrap()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            value(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Incr", "5")]), "")).0,
            "5"
        );
        let (v, body) = value(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Incr", "-7")]), ""));
        assert_eq!((v.as_str(), body.as_slice()), ("-2", &br#"{"val":"-2"}"#[..]));
        let big = "123456789012345678901234567890";
        assert_eq!(
            value(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Incr", big)]), "")).0,
            "123456789012345678901234567888"
        );
        assert_eq!(err_of(publish(&c, &mut m, &mut dd, "p.a", "", "x")).0, 10169);
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Incr", "1")]), "x")).0,
            10170
        );
        assert_eq!(
            err_of(publish(&c, &mut m, &mut dd, "p.a", &h(&[("Nats-Incr", "one")]), "")).0,
            10171
        );
        let with_expect = h(&[("Nats-Incr", "1"), ("Nats-Expected-Last-Sequence", "2")]);
        assert_eq!(err_of(publish(&c, &mut m, &mut dd, "p.a", &with_expect, "")).0, 10171);
    }

    #[test]
    fn big_ints() {
        let p = |s: &str| BigInt::parse(s.as_bytes()).unwrap();
        assert_eq!(p("-0").to_string(), "0");
        assert_eq!(p("+007").to_string(), "7");
        assert_eq!(p("999").add(&p("1")).to_string(), "1000");
        assert_eq!(p("1000").add(&p("-1")).to_string(), "999");
        assert_eq!(p("-5").add(&p("3")).to_string(), "-2");
        assert_eq!(p("5").add(&p("-5")).to_string(), "0");
        assert!(
            BigInt::parse(b"").is_none()
                && BigInt::parse(b"-").is_none()
                && BigInt::parse(b"1_0").is_none()
        );
    }

    #[test]
    fn dedupe_window_expires() {
        let mut dd = DedupeWindow::new(10);
        dd.record("a", 1, 100);
        dd.record("b", 2, 105);
        assert_eq!(dd.check("a", 109), Some(1));
        assert_eq!(dd.check("a", 110), None, "expired entries no longer count");
        assert_eq!(dd.purge(110), Some(115));
        assert_eq!(dd.len(), 1);
        dd.record("b", 3, 112);
        assert_eq!(dd.purge(116), Some(122), "the re-recorded id survives its old entry");
        assert_eq!(dd.check("b", 116), Some(3));
        let mut off = DedupeWindow::new(0);
        off.record("a", 1, 0);
        assert!(off.is_empty());
    }

    #[test]
    fn pub_ack_bytes() {
        let ack = PubAck { stream: "P".into(), seq: 1, ..Default::default() };
        assert_eq!(ack.to_wire(), br#"{"stream":"P","seq":1}"#);
        let dup = PubAck { duplicate: true, seq: 2, ..ack.clone() };
        assert_eq!(dup.to_wire(), br#"{"stream":"P","seq":2,"duplicate": true}"#);
        let dom = PubAck { domain: "hub".into(), ..ack.clone() };
        assert_eq!(dom.to_wire(), br#"{"stream":"P","domain":"hub","seq":1}"#);
        let ctr = PubAck { stream: "PC".into(), seq: 2, value: "3".into(), ..Default::default() };
        assert_eq!(ctr.to_wire(), br#"{"stream":"PC","seq":2,"val":"3"}"#);
        let e = PubAckResponse::error("P", ErrorId::StreamWrongLastSequence.with(&[("seq", &3)]));
        assert_eq!(
            e.to_wire(),
            br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"P","seq":0}"#
        );
        let back: PubAckResponse = serde_json::from_slice(&dup.to_wire()).unwrap();
        assert!(back.error.is_none() && back.ack.duplicate && back.ack.seq == 2);
        // Sequences are written by hand: every digit count, both ends.
        for seq in [0, 9, 10, 99, 100, 12_345_678_901, u64::MAX] {
            let a = PubAck { stream: "S".into(), seq, ..Default::default() };
            assert_eq!(a.to_wire(), format!(r#"{{"stream":"S","seq":{seq}}}"#).into_bytes());
        }
        let batch = PubAck { batch_id: "b1".into(), batch_size: 10, ..ack.clone() };
        assert_eq!(batch.to_wire(), br#"{"stream":"P","seq":1,"batch":"b1","count":10}"#);
        // Names are quoted as Go's %q does.
        let odd = PubAck { stream: "a\"b\\c\td".into(), seq: 1, ..Default::default() };
        assert_eq!(odd.to_wire(), br#"{"stream":"a\"b\\c\td","seq":1}"#);
    }
}
