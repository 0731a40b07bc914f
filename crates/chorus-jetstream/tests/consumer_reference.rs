//! Differential test of the consumer code against nats-server v2.15.2.
//!
//! `tests/fixtures/consumers.json` holds what the reference answered to consumer API
//! requests, pull requests, acks and publishes (raw, and from the `nats` CLI v0.5.0 through a
//! logging proxy), recorded by `tools/capture_consumers.py`, each with the time it happened.
//! This test replays every group through chorus-jetstream on a virtual clock that follows the
//! recording (so request timeouts, heartbeats and nak delays fall between the same records)
//! and compares:
//!
//! - API responses byte for byte, taking from the reference only what we cannot predict
//!   (creation and gathering timestamps, `last_active`, `pause_remaining`, generated names)
//!   and the text of Go's JSON decoder errors;
//! - every message each inbox, deliver subject and ack reply got (deliveries with their ack
//!   reply subjects, status headers, empty ack replies);
//! - the advisories (all fields but the event id and time).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use chorus_jetstream::api::account::untiered;
use chorus_jetstream::api::errors::ErrorId;
use chorus_jetstream::consumer::api::{
    ConsumerCreateResponse, ConsumerDeleteResponse, ConsumerEndpoint, ConsumerInfo,
    ConsumerInfoResponse, ConsumerListResponse, ConsumerNamesResponse, ConsumerPauseRequest,
    ConsumerPauseResponse, ConsumersRequest, check_empty_body, list_page, names_page,
    parse_endpoint,
};
use chorus_jetstream::consumer::check::{
    ConsumerCheckContext, CreateEnv, CreateOutcome, ServerConsumerLimits, check_create,
    parse_create_subject,
};
use chorus_jetstream::consumer::{
    Action, Advisory, Consumer, ConsumerConfig, ConsumerContext, DeliveryInterest, Event, VecStream,
};
use chorus_jetstream::go::{Timestamp, to_json_string};
use chorus_jetstream::stream::config::{RetentionPolicy, StreamConfig};
use serde::Deserialize;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/consumers.json");
const VERSION: &str = "2.15.2";
const API_LEVEL: u32 = 5;
const T0: i64 = 1_800_000_000_000_000_000;
const MS: i64 = 1_000_000;

#[derive(Debug, Clone, Deserialize)]
struct Msg {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    headers: Option<String>,
    #[serde(default)]
    body: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Record {
    group: String,
    note: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    msgs: Vec<Msg>,
    #[serde(default)]
    replies: Vec<Msg>,
    #[serde(default)]
    at_ms: i64,
    #[serde(default)]
    elapsed_ms: Option<i64>,
    #[serde(default)]
    seconds: Option<f64>,
}

impl Record {
    fn answers(&self) -> &[Msg] {
        if self.op == "cli" { &self.replies } else { &self.msgs }
    }
}

fn records() -> Vec<Record> {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

/// What we sent somewhere, in the reference's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    at: i64,
    subject: String,
    reply: Option<String>,
    headers: Option<String>,
    body: String,
}

/// Inboxes that exist, each for a span of virtual time.
#[derive(Default)]
struct Listeners {
    now: Cell<i64>,
    spans: Vec<(String, i64, i64)>,
}

impl DeliveryInterest for Listeners {
    fn has_interest(&self, subject: &str) -> bool {
        let now = self.now.get();
        self.spans.iter().any(|(s, from, to)| s == subject && *from <= now && now <= *to)
    }
}

struct StreamModel {
    cfg: StreamConfig,
    data: VecStream,
    consumers: BTreeMap<String, Consumer>,
}

struct Harness {
    streams: BTreeMap<String, StreamModel>,
    outs: BTreeMap<String, Vec<Out>>,
    advisories: Vec<(i64, Advisory)>,
    listeners: Listeners,
    /// Stream timestamps of messages, read from the reference's ack subjects.
    ts: HashMap<(String, u64), i64>,
    server: ServerConsumerLimits,
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn ts_of(v: &Value, path: &[&str]) -> Option<Timestamp> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    Timestamp::parse(v.as_str()?).ok()
}

/// Our info with the reference's unpredictable values, after checking they are there when
/// ours are.
fn align_info(ours: &mut ConsumerInfo, theirs: &Value, note: &str) {
    if let Some(t) = ts_of(theirs, &["created"]) {
        ours.created = t;
    }
    if let Some(t) = ts_of(theirs, &["ts"]) {
        ours.timestamp = t;
    }
    for (field, seq) in [("delivered", &mut ours.delivered), ("ack_floor", &mut ours.ack_floor)] {
        let theirs_last = ts_of(theirs, &[field, "last_active"]);
        assert_eq!(seq.last.is_some(), theirs_last.is_some(), "{note}: {field}.last_active");
        seq.last = theirs_last;
    }
    if let Some(r) = theirs.get("pause_remaining").and_then(Value::as_i64) {
        assert!(ours.pause_remaining > 0, "{note}: pause_remaining");
        ours.pause_remaining = r;
    }
}

impl Harness {
    fn new(recs: &[Record]) -> Harness {
        let mut ts = HashMap::new();
        for r in recs {
            for m in r.answers() {
                if let Some(reply) = &m.reply
                    && let Some(p) = chorus_jetstream::consumer::ack::parse_ack_subject(reply)
                {
                    ts.insert((p.stream.to_string(), p.info.stream_seq), p.info.timestamp);
                }
            }
        }
        Harness {
            streams: BTreeMap::new(),
            outs: BTreeMap::new(),
            advisories: vec![],
            listeners: Listeners::default(),
            ts,
            server: ServerConsumerLimits::default(),
        }
    }

    fn collect(&mut self, at: i64, stream: &str, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Deliver(d) => {
                    let headers = d.header.map(|h| String::from_utf8(h.to_vec()).unwrap());
                    self.outs.entry(d.to).or_default().push(Out {
                        at,
                        subject: d.subject,
                        reply: Some(d.reply),
                        headers,
                        body: String::from_utf8(d.payload.to_vec()).unwrap(),
                    });
                }
                Action::Status(s) => {
                    let headers = Some(String::from_utf8(s.header_bytes()).unwrap());
                    self.outs.entry(s.to.clone()).or_default().push(Out {
                        at,
                        subject: s.to,
                        reply: s.reply,
                        headers,
                        body: String::new(),
                    });
                }
                Action::AckReply { to } => {
                    self.outs.entry(to.clone()).or_default().push(Out {
                        at,
                        subject: to,
                        reply: None,
                        headers: None,
                        body: String::new(),
                    });
                }
                Action::Advisory(adv) => self.advisories.push((at, adv)),
                Action::AckedForRetention { seq } => {
                    let s = self.streams.get_mut(stream).unwrap();
                    if s.cfg.retention == RetentionPolicy::WorkQueue {
                        s.data.remove(seq);
                    }
                }
                Action::Delete => {}
            }
        }
    }

    /// Runs every consumer's timers up to `target`, in time order.
    fn advance(&mut self, target: i64) {
        loop {
            let mut next: Option<(i64, String, String)> = None;
            for (sname, s) in &self.streams {
                for (cname, c) in &s.consumers {
                    if let Some(d) = c.next_deadline()
                        && d <= target
                        && next.as_ref().is_none_or(|(n, _, _)| d < *n)
                    {
                        next = Some((d, sname.clone(), cname.clone()));
                    }
                }
            }
            let Some((at, sname, cname)) = next else { return };
            self.listeners.now.set(at);
            let s = self.streams.get_mut(&sname).unwrap();
            let c = s.consumers.get_mut(&cname).unwrap();
            let actions = c.handle(at, Event::Tick, &s.data, &self.listeners);
            if c.is_closed() {
                s.consumers.remove(&cname);
            }
            self.collect(at, &sname, actions);
        }
    }

    /// Answers a consumer API request; `None` for subjects we leave to others.
    fn api(
        &mut self,
        now: i64,
        subject: &str,
        body: &str,
        reference: &Value,
        note: &str,
    ) -> Option<String> {
        let limits = untiered(Default::default());
        let ctx = ConsumerCheckContext { clustered: false, server: &self.server, account: &limits };
        match parse_endpoint(subject)? {
            ConsumerEndpoint::Create => {
                let sub = match parse_create_subject(subject)? {
                    Ok(s) => s,
                    Err(e) => return Some(to_json_string(&ConsumerCreateResponse::err(e))),
                };
                let sm = self.streams.get(&sub.stream);
                let cfgs: Vec<ConsumerConfig> = sm
                    .map(|s| s.consumers.values().map(|c| c.config().clone()).collect())
                    .unwrap_or_default();
                let env = CreateEnv {
                    generated_name: reference
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    deliver_subject_has_interest: false,
                };
                let out =
                    check_create(&sub, body.as_bytes(), sm.map(|s| &s.cfg), &cfgs, &env, &ctx);
                let outcome = match out {
                    Ok(o) => o,
                    Err(e) => return Some(to_json_string(&ConsumerCreateResponse::err(e))),
                };
                let s = self.streams.get_mut(&sub.stream).unwrap();
                let (name, actions) = match outcome {
                    CreateOutcome::Create { name, config } => {
                        let created = ts_of(reference, &["created"]).unwrap_or_default();
                        let ctx = ConsumerContext::for_stream(&s.cfg, 1024 * 1024);
                        let mut c = Consumer::create(&name, config, created, ctx, now, &s.data);
                        let deliver = c.config().deliver_subject.clone();
                        if !deliver.is_empty() {
                            c.set_initial_interest(now, self.listeners.has_interest(&deliver));
                        }
                        s.consumers.insert(name.clone(), c);
                        (name, vec![])
                    }
                    CreateOutcome::Update { name, config } => {
                        let c = s.consumers.get_mut(&name).unwrap();
                        let actions = c.handle(
                            now,
                            Event::ConfigUpdate(Box::new(config)),
                            &s.data,
                            &self.listeners,
                        );
                        (name, actions)
                    }
                };
                let c = s.consumers.get_mut(&name).unwrap();
                // nats-server answers with the info it took when the consumer started, before
                // a push consumer learns about its subscriber and delivers.
                let (mut info, more) =
                    c.info_for_response(now, &s.data, &self.listeners, VERSION, API_LEVEL);
                let mut actions = actions;
                actions.extend(more);
                // Then the delivery loop starts.
                actions.extend(c.handle(now, Event::Tick, &s.data, &self.listeners));
                align_info(&mut info, reference, note);
                let stream = sub.stream.clone();
                self.collect(now, &stream, actions);
                Some(to_json_string(&ConsumerCreateResponse::ok(info)))
            }
            ConsumerEndpoint::Names { stream } => {
                let req: ConsumersRequest =
                    chorus_jetstream::api::stream::parse_optional_request(body.as_bytes()).ok()?;
                Some(match self.streams.get(&stream) {
                    None => {
                        to_json_string(&ConsumerNamesResponse::err(ErrorId::StreamNotFound.error()))
                    }
                    Some(s) => {
                        to_json_string(&names_page(s.consumers.keys().map(String::as_str), &req))
                    }
                })
            }
            ConsumerEndpoint::List { stream } => {
                let req: ConsumersRequest =
                    chorus_jetstream::api::stream::parse_optional_request(body.as_bytes()).ok()?;
                let Some(s) = self.streams.get_mut(&stream) else {
                    return Some(to_json_string(&ConsumerListResponse::err(
                        ErrorId::StreamNotFound.error(),
                    )));
                };
                let mut infos = vec![];
                let theirs = reference
                    .get("consumers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (i, c) in s.consumers.values_mut().enumerate() {
                    let (mut info, _) = c.info(now, &s.data, &self.listeners);
                    if let Some(t) = theirs.get(i) {
                        align_info(&mut info, t, note);
                    }
                    infos.push(info);
                }
                Some(to_json_string(&list_page(infos, &req)))
            }
            ConsumerEndpoint::Info { stream, consumer } => {
                if let Err(e) = check_empty_body(body.as_bytes()) {
                    return Some(to_json_string(&ConsumerInfoResponse::err(e)));
                }
                let Some(s) = self.streams.get_mut(&stream) else {
                    return Some(to_json_string(&ConsumerInfoResponse::err(
                        ErrorId::StreamNotFound.error(),
                    )));
                };
                let Some(c) = s.consumers.get_mut(&consumer) else {
                    return Some(to_json_string(&ConsumerInfoResponse::err(
                        ErrorId::ConsumerNotFound.error(),
                    )));
                };
                let (mut info, more) =
                    c.info_for_response(now, &s.data, &self.listeners, VERSION, API_LEVEL);
                align_info(&mut info, reference, note);
                self.collect(now, &stream, more);
                Some(to_json_string(&ConsumerInfoResponse::ok(info)))
            }
            ConsumerEndpoint::Delete { stream, consumer } => {
                if let Err(e) = check_empty_body(body.as_bytes()) {
                    return Some(to_json_string(&ConsumerDeleteResponse::err(e)));
                }
                let Some(s) = self.streams.get_mut(&stream) else {
                    return Some(to_json_string(&ConsumerDeleteResponse::err(
                        ErrorId::StreamNotFound.error(),
                    )));
                };
                let Some(mut c) = s.consumers.remove(&consumer) else {
                    return Some(to_json_string(&ConsumerDeleteResponse::err(
                        ErrorId::ConsumerNotFound.error(),
                    )));
                };
                let actions = c.handle(now, Event::Delete, &s.data, &self.listeners);
                self.collect(now, &stream, actions);
                Some(to_json_string(&ConsumerDeleteResponse::ok()))
            }
            ConsumerEndpoint::Pause { stream, consumer } => {
                let req: ConsumerPauseRequest =
                    chorus_jetstream::api::stream::parse_optional_request(body.as_bytes()).ok()?;
                let Some(s) = self.streams.get_mut(&stream) else {
                    return Some(to_json_string(&ConsumerPauseResponse::err(
                        ErrorId::StreamNotFound.error(),
                    )));
                };
                let Some(c) = s.consumers.get_mut(&consumer) else {
                    return Some(to_json_string(&ConsumerPauseResponse::err(
                        ErrorId::ConsumerNotFound.error(),
                    )));
                };
                let until = Some(req.pause_until).filter(|t| !t.is_zero());
                let actions = c.handle(now, Event::Pause(until), &s.data, &self.listeners);
                self.collect(now, &stream, actions);
                let mut resp = ConsumerPauseResponse::ok(req.pause_until, now);
                if let Some(r) = reference.get("pause_remaining").and_then(Value::as_i64) {
                    resp.pause_remaining = r;
                }
                Some(to_json_string(&resp))
            }
            _ => None,
        }
    }

    fn register_stream(&mut self, reference: &Value) {
        let Some(cfg) = reference.get("config") else { return };
        let mut cfg: StreamConfig = serde_json::from_value(cfg.clone()).expect("stream config");
        cfg.metadata.remove("_nats.ver");
        cfg.metadata.remove("_nats.level");
        self.streams.insert(
            cfg.name.clone(),
            StreamModel { cfg, data: VecStream::new(), consumers: BTreeMap::new() },
        );
    }

    fn publish(&mut self, now: i64, subject: &str, body: &str) {
        let Some(sname) = self
            .streams
            .iter()
            .find(|(_, s)| {
                s.cfg.subjects.iter().any(|f| {
                    chorus_proto::subject::subject_is_subset_of(subject.as_bytes(), f.as_bytes())
                })
            })
            .map(|(n, _)| n.clone())
        else {
            return;
        };
        let s = self.streams.get_mut(&sname).unwrap();
        let seq = s.data.summary_last() + 1;
        let ts = self.ts.get(&(sname.clone(), seq)).copied().unwrap_or(now);
        s.data.append(subject, body.as_bytes(), ts);
        let mut all = vec![];
        for c in s.consumers.values_mut() {
            all.extend(c.handle(
                now,
                Event::StreamAppended { seq, subject },
                &s.data,
                &self.listeners,
            ));
        }
        self.collect(now, &sname, all);
    }

    fn ack(&mut self, now: i64, subject: &str, reply: &str, body: &str) {
        let Some(p) = chorus_jetstream::consumer::ack::parse_ack_subject(subject) else { return };
        let (sname, cname) = (p.stream.to_string(), p.consumer.to_string());
        let Some(s) = self.streams.get_mut(&sname) else { return };
        let Some(c) = s.consumers.get_mut(&cname) else { return };
        let ev = Event::Ack { subject, reply, body: body.as_bytes() };
        let actions = c.handle(now, ev, &s.data, &self.listeners);
        self.collect(now, &sname, actions);
    }

    fn pull(&mut self, now: i64, subject: &str, reply: &str, body: &str) {
        let Some(ConsumerEndpoint::Next { stream, consumer }) = parse_endpoint(subject) else {
            return;
        };
        let Some(s) = self.streams.get_mut(&stream) else { return };
        let Some(c) = s.consumers.get_mut(&consumer) else { return };
        let ev = Event::PullRequest { reply, body: body.as_bytes() };
        let actions = c.handle(now, ev, &s.data, &self.listeners);
        self.collect(now, &stream, actions);
    }
}

trait LastSeq {
    fn summary_last(&self) -> u64;
}

impl LastSeq for VecStream {
    fn summary_last(&self) -> u64 {
        use chorus_jetstream::consumer::ConsumerStream;
        self.summary().last_seq
    }
}

fn out_matches(ours: &Out, theirs: &Msg) -> bool {
    // Go's JSON decoder errors inside "400 Bad Request - ..." are not ours to copy.
    const GO_JSON: &str = "NATS/1.0 400 Bad Request - json: ";
    let headers_match = match (&ours.headers, &theirs.headers) {
        (Some(o), Some(t)) if t.starts_with(GO_JSON) => {
            o.starts_with("NATS/1.0 400 Bad Request - ")
        }
        (o, t) => o == t,
    };
    Some(&ours.subject) == theirs.subject.as_ref()
        && ours.reply == theirs.reply
        && headers_match
        && ours.body == theirs.body
}

fn show(outs: &[Out]) -> Vec<String> {
    outs.iter()
        .map(|o| format!("{} {:?} {:?} {:?}", o.subject, o.reply, o.headers, o.body))
        .collect()
}

fn show_ref(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            format!(
                "{} {:?} {:?} {:?}",
                m.subject.as_deref().unwrap_or(""),
                m.reply,
                m.headers,
                m.body
            )
        })
        .collect()
}

/// Compares one response body; Go's JSON decoder texts are not ours, so 10025 compares by
/// code only.
fn compare_response(ours: &str, theirs: &str, note: &str) {
    let t = parse(theirs);
    if t.pointer("/error/err_code").and_then(Value::as_u64) == Some(10025) {
        let o = parse(ours);
        assert_eq!(o.pointer("/error/err_code"), t.pointer("/error/err_code"), "{note}: {ours}");
        return;
    }
    assert_eq!(ours, theirs, "{note}");
}

/// Replays one group; returns how many comparisons it made.
fn replay(group: &str) -> usize {
    let recs: Vec<Record> = records().into_iter().filter(|r| r.group == group).collect();
    assert!(!recs.is_empty(), "no records for {group}");
    let mut h = Harness::new(&recs);
    let mut checks = 0;
    // Subscriptions watched later existed from the start of the group.
    for r in recs.iter().filter(|r| r.op == "watch" && !r.subject.starts_with('$')) {
        let end = T0 + r.at_ms * MS + (r.seconds.unwrap_or(0.3) * 1000.0) as i64 * MS;
        h.listeners.spans.push((r.subject.clone(), T0, end));
    }
    // Inboxes live for as long as the recording listened on them.
    for r in &recs {
        let Some(inbox) = &r.reply else { continue };
        let from = T0 + r.at_ms * MS;
        let to = match (r.op.as_str(), r.elapsed_ms) {
            ("pull", Some(e)) => from + e * MS,
            // A request sent without waiting: its inbox stays until the consumer goes.
            ("pull", None) => i64::MAX,
            _ => from + 1000 * MS,
        };
        h.listeners.spans.push((inbox.clone(), from, to));
    }
    for r in &recs {
        let now = T0 + r.at_ms * MS;
        h.advance(now);
        h.listeners.now.set(now);
        match r.op.as_str() {
            "req" | "cli" => {
                if r.subject.is_empty() {
                    continue;
                }
                let theirs = r.answers().first().map(|m| m.body.clone()).unwrap_or_default();
                let tv = parse(&theirs);
                if r.subject.starts_with("$JS.API.STREAM.CREATE.") {
                    h.register_stream(&tv);
                    continue;
                }
                if let Some(ours) = h.api(now, &r.subject, &r.body, &tv, &r.note) {
                    compare_response(&ours, &theirs, &format!("{group}/{}/{}", r.note, r.subject));
                    checks += 1;
                }
            }
            "pub" => h.publish(now, &r.subject, &r.body),
            "pull" => h.pull(now, &r.subject, r.reply.as_deref().unwrap_or(""), &r.body),
            "ack" => h.ack(now, &r.subject, r.reply.as_deref().unwrap_or(""), &r.body),
            _ => {}
        }
    }
    // What every inbox got, against what the reference's got while someone listened.
    for r in &recs {
        let (dest, until) = match r.op.as_str() {
            "pull" | "ack" => {
                let Some(inbox) = r.reply.clone() else { continue };
                let until = T0 + (r.at_ms + r.elapsed_ms.unwrap_or(500)) * MS;
                (inbox, until)
            }
            "watch" if !r.subject.starts_with("$JS.EVENT") => {
                let until = T0 + r.at_ms * MS + (r.seconds.unwrap_or(0.3) * 1000.0) as i64 * MS;
                (r.subject.clone(), until)
            }
            _ => continue,
        };
        let mut expected: Vec<Msg> = r.msgs.clone();
        if r.op == "pull" && r.elapsed_ms.is_none() {
            // Answers to a request nobody waited for were recorded by a later watch.
            for w in recs.iter().filter(|w| w.op == "watch" && w.subject == dest) {
                expected.extend(w.msgs.clone());
            }
        }
        let ours: Vec<Out> = h
            .outs
            .get(&dest)
            .map(|v| {
                v.iter().filter(|o| o.at <= until || r.elapsed_ms.is_none()).cloned().collect()
            })
            .unwrap_or_default();
        let same = ours.len() == expected.len()
            && ours.iter().zip(&expected).all(|(o, t)| out_matches(o, t));
        assert!(
            same,
            "{group}/{}: {dest}\nours:   {:#?}\ntheirs: {:#?}",
            r.note,
            show(&ours),
            show_ref(&expected)
        );
        checks += 1;
    }
    // Advisories, without id and time.
    for r in recs.iter().filter(|r| r.op == "watch" && r.subject.starts_with("$JS.EVENT")) {
        let theirs: Vec<Value> = r
            .msgs
            .iter()
            .map(|m| {
                let mut v = parse(&m.body);
                v.as_object_mut().unwrap().remove("id");
                v.as_object_mut().unwrap().remove("timestamp");
                serde_json::json!({"subject": m.subject, "body": v})
            })
            .collect();
        let ours: Vec<Value> = h
            .advisories
            .iter()
            .filter(|(_, a)| a.subject().starts_with("$JS.EVENT.ADVISORY.CONSUMER"))
            .map(|(_, a)| {
                let mut v: Value = serde_json::from_slice(&a.to_json("x")).unwrap();
                v.as_object_mut().unwrap().remove("id");
                v.as_object_mut().unwrap().remove("timestamp");
                serde_json::json!({"subject": a.subject(), "body": v})
            })
            .collect();
        assert_eq!(ours, theirs, "{group}/{}: advisories", r.note);
        checks += 1;
    }
    checks
}

#[test]
fn validation_matches_reference() {
    let n = replay("validation");
    assert!(n > 90, "only {n} comparisons");
}

#[test]
fn choiros_consumers_match_reference() {
    let n = replay("choiros");
    assert!(n >= 30, "only {n} comparisons");
}

#[test]
fn pull_requests_match_reference() {
    let n = replay("pull");
    assert!(n > 40, "only {n} comparisons");
}

#[test]
fn push_consumer_matches_reference() {
    let n = replay("push");
    assert!(n >= 3, "only {n} comparisons");
}

#[test]
fn workqueue_matches_reference() {
    let n = replay("workqueue");
    assert!(n >= 4, "only {n} comparisons");
}

/// The exact JSON the `nats` CLI v0.5.0 sends for the ChoirOS consumers, and the config the
/// reference stored for it, which our check must reproduce from the request alone.
#[test]
fn choiros_cli_requests_are_recorded_and_checked() {
    let recs = records();
    let creates: Vec<&Record> = recs
        .iter()
        .filter(|r| {
            r.group == "choiros"
                && r.op == "cli"
                && r.subject.starts_with("$JS.API.CONSUMER.CREATE.")
        })
        .collect();
    assert_eq!(creates.len(), 2, "AGENT_POOL and SYNC_WORKER");
    assert_eq!(
        creates[0].subject,
        "$JS.API.CONSUMER.CREATE.USER_EVENTS.AGENT_POOL.choiros.user.*.action.COMMAND"
    );
    assert_eq!(
        creates[0].body,
        concat!(
            r#"{"stream_name":"USER_EVENTS","config":{"ack_policy":"explicit","deliver_policy":"all","#,
            r#""durable_name":"AGENT_POOL","name":"AGENT_POOL","filter_subject":"choiros.user.*.action.COMMAND","#,
            r#""max_deliver":3,"replay_policy":"instant","num_replicas":0,"pause_until":"0001-01-01T00:00:00Z"},"#,
            r#""action":""}"#
        )
    );
    assert!(creates[1].body.contains(r#""filter_subject":"choiros.user.*.file.*""#));
    assert!(creates[1].body.contains(r#""max_deliver":-1"#));
    // As written (without --pull or a terminal), the CLI stops before sending anything.
    let exits: Vec<&Record> =
        recs.iter().filter(|r| r.group == "choiros" && r.source == "nats-cli-exit").collect();
    assert_eq!(exits.len(), 2);
    for r in creates {
        let theirs = parse(&r.replies[0].body);
        let stream: StreamConfig = {
            let s = recs
                .iter()
                .find(|s| s.group == "choiros" && s.subject == "$JS.API.STREAM.CREATE.USER_EVENTS")
                .unwrap();
            serde_json::from_value(parse(&s.replies[0].body)["config"].clone()).unwrap()
        };
        let sub = parse_create_subject(&r.subject).unwrap().unwrap();
        let limits = untiered(Default::default());
        let server = ServerConsumerLimits::default();
        let ctx = ConsumerCheckContext { clustered: false, server: &server, account: &limits };
        let out = check_create(
            &sub,
            r.body.as_bytes(),
            Some(&stream),
            &Vec::<ConsumerConfig>::new(),
            &CreateEnv::default(),
            &ctx,
        )
        .unwrap();
        let stored =
            chorus_jetstream::consumer::metadata::with_dynamic(out.config(), VERSION, API_LEVEL);
        assert_eq!(serde_json::to_value(&stored).unwrap(), theirs["config"], "{}", r.note);
    }
}
