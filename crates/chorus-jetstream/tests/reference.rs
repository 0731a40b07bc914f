//! Differential test against nats-server v2.15.2.
//!
//! `tests/fixtures/reference.json` holds requests and publishes sent to the reference (raw,
//! and from the `nats` CLI v0.5.0 through a logging proxy) with the reference's replies,
//! recorded by `tools/capture_reference.py`. This test replays every record through
//! chorus-jetstream, keeping a small in-memory model of the account's streams so that later
//! records see the effects of earlier ones, and compares our answer with the reference's:
//! byte for byte where the answer is determined (errors, configs, PubAcks, names, message
//! gets), and for timestamps and usage figures (which we cannot predict) by taking the
//! reference's values and checking that everything around them matches.

use std::collections::BTreeMap;

use bytes::Bytes;
use chorus_jetstream::api::account::{AccountInfoResponse, AccountLimits, untiered};
use chorus_jetstream::api::errors::{ApiError, ErrorId};
use chorus_jetstream::api::msg::{
    BatchPosition, DirectStatus, MsgDeleteResponse, MsgGetResponse, MsgLookup, StoredMsg,
    check_direct_get_by_subject, check_direct_get_request, check_msg_delete_request,
    check_msg_get_request, direct_get_header,
};
use chorus_jetstream::api::stream::{
    StreamCreateResponse, StreamDeleteResponse, StreamInfo, StreamInfoRequest, StreamInfoResponse,
    StreamListRequest, StreamListResponse, StreamPurgeResponse, StreamSourceInfo, StreamState,
    StreamUpdateResponse, check_delete_request, check_purge_request, names_page,
    parse_optional_request,
};
use chorus_jetstream::api::subjects::{self, ApiEndpoint};
use chorus_jetstream::go::{Timestamp, to_json_string, to_json_vec};
use chorus_jetstream::stream::check::{
    CheckContext, CreateOutcome, ServerLimits, StreamLookup, check_create, check_update,
};
use chorus_jetstream::stream::config::{StorageType, StreamConfig, StreamConfigRequest};
use chorus_jetstream::stream::headers;
use chorus_jetstream::stream::metadata::{API_LEVEL, with_dynamic};
use chorus_jetstream::stream::publish::{
    DedupeWindow, Inbound, PubAck, PubAckResponse, PublishContext, PublishOutcome, Rollup,
    StoredView, StreamView, check_publish, stored_size,
};
use chorus_proto::subject::subjects_overlap;
use serde::Deserialize;

const FIXTURE: &str = include_str!("fixtures/reference.json");
const REFERENCE_VERSION: &str = "2.15.2";

#[derive(Debug, Deserialize)]
struct Record {
    group: String,
    note: String,
    source: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    headers: Option<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    replies: Vec<Reply>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stderr: String,
}

#[derive(Debug, Deserialize)]
struct Reply {
    headers: Option<String>,
    body: String,
}

fn records() -> Vec<Record> {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

#[derive(Debug, Clone)]
struct Msg {
    seq: u64,
    subject: String,
    hdr: Vec<u8>,
    data: Vec<u8>,
}

/// One stream of the model: config plus messages.
struct Stream {
    cfg: StreamConfig,
    msgs: Vec<Msg>,
    last_seq: u64,
    last_id: String,
    dedupe: DedupeWindow,
}

impl StreamView for Stream {
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
        self.msgs.iter().map(|m| stored_size(self.cfg.storage, &m.subject, &m.hdr, &m.data)).sum()
    }
    fn last_for_subject(&self, subject: &str) -> Option<StoredView> {
        self.msgs.iter().rev().find(|m| matches(subject, &m.subject)).map(view)
    }
    fn subject_msgs(&self, subject: &str) -> u64 {
        self.msgs.iter().filter(|m| m.subject == subject).count() as u64
    }
    fn first_size_for_subject(&self, subject: &str) -> Option<u64> {
        let m = self.msgs.iter().find(|m| m.subject == subject)?;
        Some(stored_size(self.cfg.storage, &m.subject, &m.hdr, &m.data))
    }
}

fn view(m: &Msg) -> StoredView {
    StoredView {
        seq: m.seq,
        header: Bytes::from(m.hdr.clone()),
        payload: Bytes::from(m.data.clone()),
    }
}

/// Whether filter (possibly with wildcards) matches the literal subject.
fn matches(filter: &str, subject: &str) -> bool {
    subjects_overlap(filter.as_bytes(), subject.as_bytes())
}

impl Stream {
    fn new(cfg: StreamConfig) -> Self {
        let last_seq = cfg.first_seq.saturating_sub(1);
        let dedupe = DedupeWindow::new(cfg.duplicate_window);
        Stream { cfg, msgs: vec![], last_seq, last_id: String::new(), dedupe }
    }

    fn state_check(&self, state: &StreamState) -> Result<(), String> {
        let n = self.msgs.len() as u64;
        let want = (state.messages, state.last_seq);
        if want != (n, self.last_seq) {
            return Err(format!("state (msgs, last_seq) {want:?}, model ({n}, {})", self.last_seq));
        }
        if let Some(first) = self.msgs.first() {
            if state.first_seq != first.seq {
                return Err(format!("first_seq {} vs model {}", state.first_seq, first.seq));
            }
            let deleted = self.last_seq - first.seq + 1 - n;
            if state.num_deleted != deleted {
                return Err(format!("num_deleted {} vs model {deleted}", state.num_deleted));
            }
            let mut subjects: Vec<&str> = self.msgs.iter().map(|m| m.subject.as_str()).collect();
            subjects.sort();
            subjects.dedup();
            if state.num_subjects != subjects.len() as u64 {
                return Err(format!("num_subjects {} vs {}", state.num_subjects, subjects.len()));
            }
        } else if self.last_seq > 0 && state.first_seq != self.last_seq + 1 {
            return Err(format!(
                "empty stream first_seq {} vs {}",
                state.first_seq,
                self.last_seq + 1
            ));
        }
        Ok(())
    }
}

struct Configs<'a>(&'a BTreeMap<String, Stream>);

impl StreamLookup for Configs<'_> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        self.0.get(name).map(|s| &s.cfg)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.0.values().map(|s| &s.cfg))
    }
}

/// An account on a single server, as the fixtures' groups set it up.
struct Model {
    server: ServerLimits,
    limits: BTreeMap<String, AccountLimits>,
    streams: BTreeMap<String, Stream>,
    clock: i64,
}

#[derive(Default)]
struct Tally {
    compared: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Model {
    fn for_group(group: &str) -> Model {
        let mut m = Model {
            server: ServerLimits::default(),
            limits: untiered(AccountLimits::UNLIMITED),
            streams: BTreeMap::new(),
            clock: 1_700_000_000_000_000_000,
        };
        if group == "limits" {
            // tools/capture_reference.py's LIMITS_CONF.
            m.server.max_memory = 64 << 20;
            m.server.max_store = 256 << 20;
            m.server.max_duplicate_window = 60_000_000_000;
            m.limits = untiered(AccountLimits {
                max_memory: 1 << 20,
                max_storage: 10 << 20,
                max_streams: 5,
                max_consumers: 5,
                max_bytes_required: true,
                storage_max_stream_bytes: 8 << 20,
                ..AccountLimits::UNLIMITED
            });
        }
        m
    }

    fn reserved(&self, storage: StorageType) -> i64 {
        self.streams
            .values()
            .filter(|s| s.cfg.storage == storage && s.cfg.max_bytes > 0)
            .map(|s| s.cfg.max_bytes)
            .sum()
    }

    fn with_ctx<R>(&self, f: impl FnOnce(&CheckContext<'_>) -> R) -> R {
        let server = ServerLimits {
            memory_reserved: self.reserved(StorageType::Memory),
            store_reserved: self.reserved(StorageType::File),
            ..self.server
        };
        let configs = Configs(&self.streams);
        let ctx = CheckContext {
            clustered: false,
            server: &server,
            account: &self.limits,
            streams: &configs,
        };
        f(&ctx)
    }
}

fn same_bytes(what: &str, ours: &[u8], theirs: &[u8]) -> Result<(), String> {
    if ours == theirs {
        Ok(())
    } else {
        Err(format!(
            "{what} differs\n  ours:   {}\n  theirs: {}",
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(theirs)
        ))
    }
}

fn same_error(ours: &ApiError, theirs: &ApiError) -> Result<(), String> {
    // Our JSON parse errors carry serde's words, not Go's: compare the codes only.
    if ours.err_code == ErrorId::InvalidJSON.err_code() {
        return if theirs.err_code == ours.err_code && theirs.code == ours.code {
            Ok(())
        } else {
            Err(format!("ours {ours:?} vs theirs {theirs:?}"))
        };
    }
    if ours == theirs { Ok(()) } else { Err(format!("ours {ours:?} vs theirs {theirs:?}")) }
}

fn one_reply(r: &Record) -> Result<&Reply, String> {
    match r.replies.as_slice() {
        [one] => Ok(one),
        other => Err(format!("expected one reply, got {}", other.len())),
    }
}

/// The reference's config for a stream as stored: its response config without the
/// response-only metadata.
fn check_config(ours: &StreamConfig, theirs: &StreamConfig) -> Result<(), String> {
    let ours_dyn = with_dynamic(ours, REFERENCE_VERSION, API_LEVEL);
    if &ours_dyn == theirs {
        return Ok(());
    }
    Err(format!(
        "config differs\n  ours:   {}\n  theirs: {}",
        to_json_string(&ours_dyn),
        to_json_string(theirs)
    ))
}

fn replay_create(m: &mut Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let theirs: StreamCreateResponse =
        serde_json::from_str(&reply.body).map_err(|e| format!("reference reply: {e}"))?;
    let req: StreamConfigRequest = match serde_json::from_str(&r.body) {
        Ok(req) => req,
        Err(e) => {
            let ours = ErrorId::InvalidJSON.with_err(e);
            *t.compared.entry("create: invalid JSON").or_default() += 1;
            return same_error(&ours, theirs.error.as_ref().ok_or("reference accepted it")?);
        }
    };
    let decision = m.with_ctx(|ctx| check_create(name, &req, ctx));
    match decision {
        Err(e) => {
            *t.compared.entry("create: error").or_default() += 1;
            same_error(
                &e,
                theirs
                    .error
                    .as_ref()
                    .ok_or_else(|| format!("reference accepted; we said {e:?}"))?,
            )?;
            same_bytes(
                "create error response",
                &to_json_vec(&StreamCreateResponse::err(e)),
                reply.body.as_bytes(),
            )
        }
        Ok(outcome) => {
            *t.compared.entry("create: ok").or_default() += 1;
            let info = theirs
                .info
                .as_ref()
                .ok_or_else(|| format!("reference refused: {:?}", theirs.error))?;
            check_config(outcome.config(), &info.config)?;
            let cfg = outcome.config();
            let state = match &outcome {
                CreateOutcome::Create(_) => StreamState::empty(cfg),
                CreateOutcome::Exists(_) => info.state.clone(),
            };
            let ours = StreamCreateResponse::ok(StreamInfo {
                config: with_dynamic(cfg, REFERENCE_VERSION, API_LEVEL),
                created: info.created,
                state,
                mirror: cfg.mirror.as_ref().map(StreamSourceInfo::inactive),
                sources: cfg.sources.iter().map(StreamSourceInfo::inactive).collect(),
                timestamp: info.timestamp,
                ..Default::default()
            });
            same_bytes("create response", &to_json_vec(&ours), reply.body.as_bytes())?;
            if let CreateOutcome::Create(cfg) = outcome {
                m.streams.insert(cfg.name.clone(), Stream::new(cfg));
            }
            Ok(())
        }
    }
}

fn replay_update(m: &mut Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let theirs: StreamUpdateResponse =
        serde_json::from_str(&reply.body).map_err(|e| format!("reference reply: {e}"))?;
    let req: StreamConfigRequest = serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
    match m.with_ctx(|ctx| check_update(name, &req, ctx, &[])) {
        Err(e) => {
            *t.compared.entry("update: error").or_default() += 1;
            same_error(
                &e,
                theirs
                    .error
                    .as_ref()
                    .ok_or_else(|| format!("reference accepted; we said {e:?}"))?,
            )?;
            same_bytes(
                "update error response",
                &to_json_vec(&StreamUpdateResponse::err(e)),
                reply.body.as_bytes(),
            )
        }
        Ok(cfg) => {
            *t.compared.entry("update: ok").or_default() += 1;
            let info = theirs
                .info
                .as_ref()
                .ok_or_else(|| format!("reference refused: {:?}", theirs.error))?;
            check_config(&cfg, &info.config)?;
            let ours = StreamUpdateResponse::ok(StreamInfo {
                config: with_dynamic(&cfg, REFERENCE_VERSION, API_LEVEL),
                created: info.created,
                state: info.state.clone(),
                timestamp: info.timestamp,
                ..Default::default()
            });
            same_bytes("update response", &to_json_vec(&ours), reply.body.as_bytes())?;
            let s = m.streams.get_mut(name).expect("updated stream exists");
            s.dedupe.set_window(cfg.duplicate_window);
            s.cfg = cfg;
            Ok(())
        }
    }
}

fn replay_publish(m: &mut Model, r: &Record, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    m.clock += 1_000_000;
    let now = m.clock;
    let Some(stream) =
        m.streams.values_mut().find(|s| s.cfg.subjects.iter().any(|f| matches(f, &r.subject)))
    else {
        return Err(format!("no stream for {}", r.subject));
    };
    let hdr = r.headers.clone().unwrap_or_default();
    let msg = Inbound {
        subject: &r.subject,
        header: hdr.as_bytes(),
        payload: r.body.as_bytes(),
        sourced: false,
    };
    let ctx = PublishContext { now, max_payload: 1 << 20 };
    let outcome = check_publish(&stream.cfg, stream, &stream.dedupe, &msg, &ctx);
    let ours = match outcome {
        Err(e) => {
            *t.compared.entry("publish: error").or_default() += 1;
            PubAckResponse::error(&stream.cfg.name, e).to_wire()
        }
        Ok(PublishOutcome::Duplicate { seq }) => {
            *t.compared.entry("publish: duplicate").or_default() += 1;
            PubAck { stream: stream.cfg.name.clone(), seq, duplicate: true, ..Default::default() }
                .to_wire()
        }
        Ok(PublishOutcome::Store(d)) => {
            *t.compared.entry("publish: stored").or_default() += 1;
            stream.last_seq += 1;
            let seq = stream.last_seq;
            stream.msgs.push(Msg {
                seq,
                subject: r.subject.clone(),
                hdr: d.header.clone().unwrap_or_else(|| hdr.as_bytes().to_vec()),
                data: d.payload.clone().unwrap_or_else(|| r.body.as_bytes().to_vec()),
            });
            stream.last_id = d.msg_id.clone().unwrap_or_default();
            if let Some(id) = &d.msg_id {
                stream.dedupe.record(id, seq, now);
            }
            match d.rollup {
                Some(Rollup::Subject) => {
                    stream.msgs.retain(|x| x.subject != r.subject || x.seq == seq)
                }
                Some(Rollup::All) => stream.msgs.retain(|x| x.seq == seq),
                None => {}
            }
            PubAck {
                stream: stream.cfg.name.clone(),
                seq,
                value: d.counter_value.unwrap_or_default(),
                ..Default::default()
            }
            .to_wire()
        }
    };
    same_bytes("PubAck", &ours, reply.body.as_bytes())
}

fn find_msg<'a>(s: &'a Stream, lookup: &MsgLookup) -> Option<&'a Msg> {
    match lookup {
        MsgLookup::Seq(seq) => s.msgs.iter().find(|x| x.seq == *seq),
        MsgLookup::Next { subject, from } => {
            s.msgs.iter().find(|x| x.seq >= *from && matches(subject, &x.subject))
        }
        MsgLookup::Last(subject) => s.msgs.iter().rev().find(|x| matches(subject, &x.subject)),
    }
}

fn replay_msg_get(m: &Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let ours = match check_msg_get_request(r.body.as_bytes()) {
        Err(e) => MsgGetResponse::err(e),
        Ok(req) => {
            let s = m.streams.get(name).ok_or("no such stream in model")?;
            match find_msg(s, &req.lookup(|_| unreachable!("no start_time in fixtures"))) {
                None => MsgGetResponse::not_found(),
                Some(msg) => {
                    let theirs: MsgGetResponse =
                        serde_json::from_str(&reply.body).map_err(|e| e.to_string())?;
                    let time = theirs.message.ok_or("reference found nothing")?.time;
                    let stored = StoredMsg {
                        subject: msg.subject.clone(),
                        seq: msg.seq,
                        header: Bytes::from(msg.hdr.clone()),
                        data: Bytes::from(msg.data.clone()),
                        time,
                    };
                    MsgGetResponse::ok(stored, &req)
                }
            }
        }
    };
    *t.compared.entry("msg get").or_default() += 1;
    same_bytes("MSG.GET response", &to_json_vec(&ours), reply.body.as_bytes())
}

fn replay_msg_delete(m: &mut Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let cfg = m.streams.get(name).map(|s| s.cfg.clone());
    let ours = match check_msg_delete_request(r.body.as_bytes(), cfg.as_ref()) {
        Err(e) => MsgDeleteResponse::err(e),
        Ok(req) => {
            let s = m.streams.get_mut(name).expect("checked");
            let before = s.msgs.len();
            s.msgs.retain(|x| x.seq != req.seq);
            if s.msgs.len() < before {
                MsgDeleteResponse::ok()
            } else {
                MsgDeleteResponse::store_error("no message found")
            }
        }
    };
    *t.compared.entry("msg delete").or_default() += 1;
    same_bytes("MSG.DELETE response", &to_json_vec(&ours), reply.body.as_bytes())
}

fn replay_purge(m: &mut Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let cfg = m.streams.get(name).map(|s| s.cfg.clone());
    let ours = match check_purge_request(r.body.as_bytes(), cfg.as_ref()) {
        Err(e) => StreamPurgeResponse::err(e),
        Ok(req) => {
            let s = m.streams.get_mut(name).expect("checked");
            let filter = if req.filter.is_empty() { ">" } else { req.filter.as_str() };
            let matching: Vec<u64> =
                s.msgs.iter().filter(|x| matches(filter, &x.subject)).map(|x| x.seq).collect();
            let doomed: Vec<u64> = if req.seq > 0 {
                matching.into_iter().filter(|q| *q < req.seq).collect()
            } else {
                let keep = req.keep as usize;
                let n = matching.len().saturating_sub(keep);
                matching.into_iter().take(n).collect()
            };
            s.msgs.retain(|x| !doomed.contains(&x.seq));
            StreamPurgeResponse::ok(doomed.len() as u64)
        }
    };
    *t.compared.entry("purge").or_default() += 1;
    same_bytes("PURGE response", &to_json_vec(&ours), reply.body.as_bytes())
}

fn replay_info(m: &Model, r: &Record, name: &str, t: &mut Tally) -> Result<(), String> {
    let reply = one_reply(r)?;
    let Some(s) = m.streams.get(name) else {
        *t.compared.entry("info: missing").or_default() += 1;
        let ours = StreamInfoResponse::err(ErrorId::StreamNotFound.error());
        return same_bytes("INFO error", &to_json_vec(&ours), reply.body.as_bytes());
    };
    *t.compared.entry("info").or_default() += 1;
    let theirs: StreamInfoResponse =
        serde_json::from_str(&reply.body).map_err(|e| e.to_string())?;
    let info = theirs.info.clone().ok_or("reference has no info")?;
    check_config(&s.cfg, &info.config)?;
    s.state_check(&info.state)?;
    let req: StreamInfoRequest =
        parse_optional_request(r.body.as_bytes()).map_err(|e| e.to_string())?;
    if req.deleted_details {
        let first = s.msgs.first().map_or(0, |x| x.seq);
        let deleted: Vec<u64> =
            (first..=s.last_seq).filter(|q| !s.msgs.iter().any(|x| x.seq == *q)).collect();
        if info.state.deleted != deleted {
            return Err(format!("deleted {:?} vs model {deleted:?}", info.state.deleted));
        }
    }
    // Rebuild the response around the reference's volatile parts and compare bytes.
    let mut base = info.clone();
    base.state.subjects = BTreeMap::new();
    let ours = if req.subjects_filter.is_empty() {
        StreamInfoResponse::ok(base)
    } else {
        let mut counts = BTreeMap::new();
        for x in s.msgs.iter().filter(|x| matches(&req.subjects_filter, &x.subject)) {
            *counts.entry(x.subject.clone()).or_insert(0u64) += 1;
        }
        StreamInfoResponse::with_subjects(base, counts, req.offset)
    };
    same_bytes("INFO response", &to_json_vec(&ours), reply.body.as_bytes())
}

fn replay_direct(m: &Model, r: &Record, ep: &ApiEndpoint, t: &mut Tally) -> Result<(), String> {
    let (name, req) = match ep {
        ApiEndpoint::DirectGet { stream } => (stream, check_direct_get_request(r.body.as_bytes())),
        ApiEndpoint::DirectGetLastBySubject { stream, .. } => {
            (stream, check_direct_get_by_subject(&r.subject, r.body.as_bytes()))
        }
        _ => unreachable!(),
    };
    let s = m.streams.get(name).ok_or("no stream")?;
    let status = |st: DirectStatus, reply: &Reply| {
        same_bytes("direct status", &st.header(), reply.headers.as_deref().unwrap_or("").as_bytes())
    };
    let req = match req {
        Err(st) => {
            *t.compared.entry("direct: status").or_default() += 1;
            return status(st, one_reply(r)?);
        }
        Ok(req) => req,
    };
    // (message, batch position) in the order they are sent.
    let mut sent: Vec<(&Msg, Option<BatchPosition>)> = vec![];
    let mut eob = None;
    if !req.multi_last.is_empty() {
        let up_to = s.last_seq;
        let mut lasts: BTreeMap<&str, &Msg> = BTreeMap::new();
        for x in s
            .msgs
            .iter()
            .filter(|x| x.seq <= up_to && req.multi_last.iter().any(|f| matches(f, &x.subject)))
        {
            lasts.insert(&x.subject, x);
        }
        let mut msgs: Vec<&Msg> = lasts.into_values().collect();
        msgs.sort_by_key(|x| x.seq);
        let mut last_seq = 0;
        let n = msgs.len() as u64;
        for (i, x) in msgs.into_iter().enumerate() {
            sent.push((x, Some(BatchPosition { num_pending: n - 1 - i as u64, last_seq })));
            last_seq = x.seq;
        }
        eob = Some(DirectStatus::EndOfBatch { num_pending: 0, last_seq, up_to_seq: Some(up_to) });
    } else if req.batch > 0 {
        let filter = if req.next_by_subject.is_empty() {
            ">".to_string()
        } else {
            req.next_by_subject.clone()
        };
        let candidates: Vec<&Msg> =
            s.msgs.iter().filter(|x| x.seq >= req.seq && matches(&filter, &x.subject)).collect();
        let mut np = candidates.len() as u64;
        let mut last_seq = 0;
        for x in candidates.into_iter().take(req.batch as usize) {
            np = np.saturating_sub(1);
            sent.push((x, Some(BatchPosition { num_pending: np, last_seq })));
            last_seq = x.seq;
        }
        eob = Some(DirectStatus::EndOfBatch { num_pending: np, last_seq, up_to_seq: None });
    } else if let Some(x) = find_msg(s, &req.lookup(|_| unreachable!())) {
        sent.push((x, None));
    } else {
        *t.compared.entry("direct: status").or_default() += 1;
        return status(DirectStatus::NotFound, one_reply(r)?);
    }
    let expected = sent.len() + eob.is_some() as usize;
    if r.replies.len() != expected {
        return Err(format!("{} replies, expected {expected}", r.replies.len()));
    }
    for ((x, pos), reply) in sent.iter().zip(&r.replies) {
        *t.compared.entry("direct: message").or_default() += 1;
        same_bytes("direct payload", &x.data, reply.body.as_bytes())?;
        if req.no_headers {
            if reply.headers.is_some() {
                return Err("headers despite no_hdr".into());
            }
            continue;
        }
        let theirs = reply.headers.as_deref().ok_or("no headers")?;
        let ts = headers::get_str(theirs.as_bytes(), "Nats-Time-Stamp").ok_or("no timestamp")?;
        let ts = Timestamp::parse(&ts).map_err(|e| e.to_string())?;
        let ours = direct_get_header(name, &x.subject, x.seq, ts, &x.hdr, *pos);
        same_bytes("direct header", &ours, theirs.as_bytes())?;
    }
    if let Some(st) = eob {
        status(st, r.replies.last().expect("counted"))?;
    }
    Ok(())
}

fn replay(m: &mut Model, r: &Record, t: &mut Tally) -> Result<(), String> {
    let Some(ep) = subjects::parse(&r.subject) else {
        return replay_publish(m, r, t);
    };
    match &ep {
        ApiEndpoint::AccountInfo => {
            let reply = one_reply(r)?;
            let theirs: AccountInfoResponse =
                serde_json::from_str(&reply.body).map_err(|e| e.to_string())?;
            same_bytes("INFO round trip", &to_json_vec(&theirs), reply.body.as_bytes())?;
            let info = theirs.info.ok_or("no account info")?;
            let want = (
                m.streams.len() as u64,
                m.reserved(StorageType::File) as u64,
                m.reserved(StorageType::Memory) as u64,
            );
            let got =
                (info.totals.streams, info.totals.reserved_storage, info.totals.reserved_memory);
            if want != got {
                return Err(format!(
                    "account (streams, reserved file, reserved mem) ours {want:?} theirs {got:?}"
                ));
            }
            if Some(&info.totals.limits) != m.limits.get("") {
                return Err(format!("limits {:?}", info.totals.limits));
            }
            *t.compared.entry("account info").or_default() += 1;
            Ok(())
        }
        ApiEndpoint::StreamCreate { stream } => replay_create(m, r, stream, t),
        ApiEndpoint::StreamUpdate { stream } => replay_update(m, r, stream, t),
        ApiEndpoint::StreamDelete { stream } => {
            let reply = one_reply(r)?;
            let ours = match check_delete_request(r.body.as_bytes()) {
                Err(e) => StreamDeleteResponse::err(e),
                Ok(()) => match m.streams.remove(stream) {
                    Some(_) => StreamDeleteResponse::ok(),
                    None => StreamDeleteResponse::err(ErrorId::StreamNotFound.error()),
                },
            };
            *t.compared.entry("delete").or_default() += 1;
            same_bytes("DELETE response", &to_json_vec(&ours), reply.body.as_bytes())
        }
        ApiEndpoint::StreamNames => {
            let reply = one_reply(r)?;
            let req: StreamListRequest =
                parse_optional_request(r.body.as_bytes()).map_err(|e| e.to_string())?;
            let ours = names_page(m.streams.values().map(|s| &s.cfg), &req);
            *t.compared.entry("names").or_default() += 1;
            same_bytes("NAMES response", &to_json_vec(&ours), reply.body.as_bytes())
        }
        ApiEndpoint::StreamList => {
            let reply = one_reply(r)?;
            let theirs: StreamListResponse =
                serde_json::from_str(&reply.body).map_err(|e| e.to_string())?;
            same_bytes("LIST round trip", &to_json_vec(&theirs), reply.body.as_bytes())?;
            let names: Vec<&str> =
                theirs.streams.iter().flatten().map(|i| i.config.name.as_str()).collect();
            let ours: Vec<&str> = m.streams.keys().map(String::as_str).collect();
            if names != ours {
                return Err(format!("list {names:?} vs {ours:?}"));
            }
            for info in theirs.streams.iter().flatten() {
                // LIST reports configs without the response-only metadata.
                if info.config != m.streams[&info.config.name].cfg {
                    return Err(format!("list config of {}", info.config.name));
                }
            }
            *t.compared.entry("list").or_default() += 1;
            Ok(())
        }
        ApiEndpoint::StreamInfo { stream } => replay_info(m, r, stream, t),
        ApiEndpoint::StreamPurge { stream } => replay_purge(m, r, stream, t),
        ApiEndpoint::StreamMsgGet { stream } => replay_msg_get(m, r, stream, t),
        ApiEndpoint::StreamMsgDelete { stream } => replay_msg_delete(m, r, stream, t),
        ApiEndpoint::DirectGet { .. } | ApiEndpoint::DirectGetLastBySubject { .. } => {
            replay_direct(m, r, &ep, t)
        }
        other => Err(format!("no replay for {other:?}")),
    }
}

#[test]
fn replay_reference_fixtures() {
    let mut t = Tally::default();
    let mut group = String::new();
    let mut model = Model::for_group("");
    for r in records() {
        if r.group != group {
            group = r.group.clone();
            model = Model::for_group(&group);
        }
        if r.source == "nats-cli-exit" {
            continue;
        }
        if let Err(e) = replay(&mut model, &r, &mut t) {
            t.failures.push(format!("[{} / {}] {} {}: {e}", r.group, r.source, r.note, r.subject));
        }
    }
    assert!(t.failures.is_empty(), "{} mismatches:\n{}", t.failures.len(), t.failures.join("\n\n"));
    // Guard against a replay that silently stops comparing things.
    let n = |k: &str| t.compared.get(k).copied().unwrap_or(0);
    assert!(n("create: ok") >= 45, "{:?}", t.compared);
    assert!(n("create: error") >= 70, "{:?}", t.compared);
    assert!(n("update: error") >= 15 && n("update: ok") >= 5, "{:?}", t.compared);
    assert!(n("publish: stored") >= 25 && n("publish: error") >= 25, "{:?}", t.compared);
    assert!(n("publish: duplicate") >= 2 && n("direct: message") >= 10, "{:?}", t.compared);
    for k in ["msg get", "msg delete", "purge", "info", "names", "list", "account info", "delete"] {
        assert!(n(k) >= 1, "{k}: {:?}", t.compared);
    }
}

/// The ChoirOS streams from the seed: what the reference said to each `nats stream add`.
#[test]
fn choiros_streams_as_the_reference_answered() {
    let recs = records();
    let create_reply = |group: &str, name: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r.group == group && r.subject == format!("$JS.API.STREAM.CREATE.{name}"))
            .map(|r| r.replies[0].body.clone())
            .collect()
    };
    let err_code = |body: &str| {
        serde_json::from_str::<StreamCreateResponse>(body).unwrap().error.map(|e| e.err_code)
    };
    // As written (R3) on a single server: 10074; then R1.
    let ue = create_reply("choiros", "USER_EVENTS");
    assert_eq!(ue.iter().map(|b| err_code(b)).collect::<Vec<_>>(), [Some(10074), None]);
    assert_eq!(
        create_reply("choiros", "AGENT_EVENTS").iter().map(|b| err_code(b)).collect::<Vec<_>>(),
        [None]
    );
    assert_eq!(
        create_reply("choiros", "CITATIONS").iter().map(|b| err_code(b)).collect::<Vec<_>>(),
        [None]
    );
    // AGENT_INBOX (`choiros.agent.*.inbox`) overlaps AGENT_EVENTS (`choiros.agent.>`): 10065
    // in either order; explicit event subjects for AGENT_EVENTS resolve it.
    assert_eq!(
        create_reply("choiros", "AGENT_INBOX").iter().map(|b| err_code(b)).collect::<Vec<_>>(),
        [Some(10065)]
    );
    assert_eq!(
        create_reply("choiros", "ORCHESTRATOR").iter().map(|b| err_code(b)).collect::<Vec<_>>(),
        [None]
    );
    assert_eq!(
        create_reply("choiros-reverse", "AGENT_INBOX")
            .iter()
            .map(|b| err_code(b))
            .collect::<Vec<_>>(),
        [None]
    );
    assert_eq!(
        create_reply("choiros-reverse", "AGENT_EVENTS")
            .iter()
            .map(|b| err_code(b))
            .collect::<Vec<_>>(),
        [Some(10065), None]
    );
    // The seed's `--retention workqueue` never reaches the server: nats CLI v0.5.0 only takes
    // limits, interest, workq or work.
    let cli = recs
        .iter()
        .find(|r| r.source == "nats-cli-exit" && r.note == "AGENT_INBOX as written")
        .unwrap();
    assert!(cli.args.iter().any(|a| a == "workqueue"));
    assert!(
        cli.stderr.contains("enum value must be one of limits,interest,workq,work"),
        "{}",
        cli.stderr
    );
}

/// Every KV and object store config the clients sent parses with our strict parser and
/// checks to the config the reference stored (the replay covers this too; this test names
/// them and what ADR-8/ADR-20 expect of them).
#[test]
fn kv_and_object_store_configs_from_clients() {
    let recs = records();
    let mut seen = vec![];
    for r in recs.iter().filter(|r| r.subject.starts_with("$JS.API.STREAM.CREATE.")) {
        let name = r.subject.rsplit('.').next().unwrap();
        if !(name.starts_with("KV_") || name.starts_with("OBJ_")) {
            continue;
        }
        let req: StreamConfigRequest = serde_json::from_str(&r.body).unwrap();
        let theirs: StreamCreateResponse = serde_json::from_str(&r.replies[0].body).unwrap();
        let streams: Vec<StreamConfig> = vec![];
        let server = ServerLimits::default();
        let limits = untiered(AccountLimits::UNLIMITED);
        let ctx =
            CheckContext { clustered: false, server: &server, account: &limits, streams: &streams };
        let ours = check_create(name, &req, &ctx).unwrap();
        let cfg = ours.config();
        assert_eq!(
            with_dynamic(cfg, REFERENCE_VERSION, API_LEVEL),
            theirs.info.unwrap().config,
            "{name}"
        );
        if let Some(bucket) = name.strip_prefix("KV_") {
            // ADR-8: one subject tree per bucket, history as max per subject, discard new,
            // roll-ups, direct get. The CLI also denies deletes; nats.js v3 does not ask to.
            assert_eq!(cfg.subjects, [format!("$KV.{bucket}.>")]);
            assert!(cfg.allow_rollup && cfg.allow_direct, "{name}");
            assert_eq!(cfg.deny_delete, r.source == "nats-cli", "{name} from {}", r.source);
            assert_eq!(cfg.discard, chorus_jetstream::stream::config::DiscardPolicy::New);
            assert!(cfg.max_msgs_per_subject >= 1);
        } else {
            // ADR-20: chunks and metadata subjects; the CLI sends zeros the server defaults.
            assert_eq!(cfg.subjects, ["$O.FILES.C.>", "$O.FILES.M.>"]);
            assert_eq!((cfg.max_msgs, cfg.max_consumers, cfg.max_msgs_per_subject), (-1, -1, -1));
            assert!(cfg.placement.is_none(), "an empty placement is dropped");
        }
        seen.push(format!("{} {name}", r.source));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "nats-cli KV_CONFIG",
            "nats-cli KV_MARKERS",
            "nats-cli KV_SESSIONS",
            "nats-cli OBJ_FILES",
            "nats.js KV_JSKV",
            "nats.js KV_JSKV_TTL"
        ]
    );
}
