//! Consumers served from the runtime thread: the `$JS.API.CONSUMER.*` requests, pull
//! requests, acks, timers and durable snapshots, around `chorus-jetstream`'s pure
//! [`Consumer`] state machine.
//!
//! Each account has internal subscriptions shared by all its consumers,
//! `$JS.API.CONSUMER.MSG.NEXT.>`, `$JS.API.CONSUMER.RESET.>`, `$JS.ACK.>` and `$JS.FC.>` (flow
//! control answers, push.rs); the subject names the stream and consumer. Push consumers'
//! deliver-subject interest, flow control and pacing live in push.rs.
//! Every event goes through [`Runtime::consumer_event`], which hands the state machine a
//! read view of the stream store ([`StoreView`]) and carries out the returned [`Action`]s:
//! deliveries, statuses and ack replies join the batch's replies (sent after its sync),
//! advisories are published, retention removals hit the store, `Delete` drops the consumer.
//!
//! Durable consumers of file streams are snapshotted into the store in the commit of the
//! batch that changed them (the same sync as the stream's messages) and restored with their
//! stream. Ephemeral consumers live in memory only, as in nats-server they do not outlive a
//! restart here.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chorus_conf::Options;
use chorus_jetstream::ApiError;
use chorus_jetstream::ErrorId;
use chorus_jetstream::api::account::untiered;
use chorus_jetstream::consumer::ack::parse_ack_subject;
use chorus_jetstream::consumer::api::{
    ConsumerCreateResponse, ConsumerDeleteResponse, ConsumerEndpoint, ConsumerInfoResponse,
    ConsumerListResponse, ConsumerNamesResponse, ConsumerPauseRequest, ConsumerPauseResponse,
    ConsumerResetRequest, ConsumerResetResponse, ConsumerUnpinRequest, ConsumerUnpinResponse,
    ConsumersRequest, list_page, names_page, parse_endpoint,
};
use chorus_jetstream::consumer::check::{CreateEnv, is_valid_group_name, parse_create_subject};
use chorus_jetstream::consumer::view::StreamSummary;
use chorus_jetstream::consumer::{
    Action, Advisory, AdvisoryKind, Consumer, ConsumerCheckContext, ConsumerConfig,
    ConsumerContext, ConsumerFilter, ConsumerLookup, ConsumerSnapshot, ConsumerStream,
    CreateOutcome, DeliveryInterest, Event, ServerConsumerLimits, StatusMsg, StreamMsg,
    check_create,
};
use chorus_jetstream::go::{Timestamp, to_json_vec};
use chorus_jetstream::stream::config::RetentionPolicy;
use chorus_jetstream::stream::headers;
use chorus_jetstream::stream::metadata::errors_on_required_level;
use chorus_jetstream::stream::publish::hdr;
use chorus_store::{RemoveMode, StorageKind, StoredMsg, StreamStore, SubjectFilter};

use super::internal::InternalMsg;
use super::push;
use super::stream::{Stream, now_nanos};
use super::{AccountJs, Reply, Runtime};
use crate::account::Account;
use crate::info::{API_LEVEL, COMPAT_VERSION};

/// [`ConsumerStream`] over a stream's store.
pub(super) struct StoreView<'a>(pub &'a dyn StreamStore);

fn filter_of(f: &ConsumerFilter) -> SubjectFilter {
    if f.is_all() { SubjectFilter::all() } else { SubjectFilter::any_of(f.subjects()) }
}

fn stream_msg(m: StoredMsg) -> StreamMsg {
    StreamMsg {
        seq: m.seq,
        subject: m.subject,
        header: m.headers,
        payload: m.payload,
        timestamp: m.timestamp,
    }
}

impl ConsumerStream for StoreView<'_> {
    fn summary(&self) -> StreamSummary {
        let s = self.0.state(false);
        StreamSummary { first_seq: s.first_seq, last_seq: s.last_seq, msgs: s.msgs }
    }
    fn load(&self, seq: u64) -> Option<StreamMsg> {
        self.0.load(seq).ok().flatten().map(stream_msg)
    }
    fn next_matching(&self, filter: &ConsumerFilter, start: u64) -> Option<StreamMsg> {
        self.0.load_next(&filter_of(filter), start).ok().flatten().map(stream_msg)
    }
    fn num_pending(&self, start: u64, filter: &ConsumerFilter, last_per_subject: bool) -> u64 {
        self.0.num_pending(start, &filter_of(filter), last_per_subject).unwrap_or(0)
    }
    fn last_seqs_per_subject(&self, filter: &ConsumerFilter) -> Vec<u64> {
        let mut v: Vec<u64> =
            self.0.subjects_state(&filter_of(filter)).values().map(|s| s.last).collect();
        v.sort_unstable();
        v
    }
    fn last_seq_matching(&self, subject: &str) -> u64 {
        self.0.load_last(&SubjectFilter::subject(subject)).ok().flatten().map_or(0, |m| m.seq)
    }
    fn first_seq_matching(&self, subject: &str, start: u64) -> u64 {
        self.0
            .load_next(&SubjectFilter::subject(subject), start)
            .ok()
            .flatten()
            .map_or(0, |m| m.seq)
    }
    fn seq_for_time(&self, unix_nanos: i64) -> u64 {
        super::stream::seq_for_time(self.0, unix_nanos)
    }
}

/// The existing consumers of a stream, for the create check.
struct Lookup<'a>(Option<&'a BTreeMap<String, Consumer>>);

impl ConsumerLookup for Lookup<'_> {
    fn get(&self, name: &str) -> Option<&ConsumerConfig> {
        self.0?.get(name).map(Consumer::config)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &ConsumerConfig> + '_> {
        match self.0 {
            Some(m) => Box::new(m.values().map(Consumer::config)),
            None => Box::new(std::iter::empty()),
        }
    }
}

/// Whether any subscriber in `account` would receive a message on `subject`.
pub(super) fn has_interest(account: &Account, subject: &str) -> bool {
    let r = account.sublist.match_subject(subject.as_bytes());
    !r.psubs.is_empty() || r.qsubs.iter().any(|g| !g.is_empty())
}

/// Whether a consumer of `stream` wants messages on `subject` (interest retention keeps
/// them only then).
pub(super) fn any_interest(acc: &AccountJs, stream: &str, subject: &str) -> bool {
    acc.consumers.get(stream).is_some_and(|m| {
        m.values().any(|c| ConsumerFilter::new(c.config().filters()).matches(subject))
    })
}

pub(super) fn context_of(acc: &AccountJs, s: &Stream, opts: &Options) -> ConsumerContext {
    context(acc, s, opts)
}

fn context(acc: &AccountJs, s: &Stream, opts: &Options) -> ConsumerContext {
    let mut ctx = ConsumerContext::for_stream(&s.cfg, opts.max_payload as i64);
    ctx.domain = opts.jetstream.domain.clone().unwrap_or_default();
    ctx.account = acc.account.name.clone();
    ctx
}

/// Durables of file streams are persisted; everything else lives in memory.
/// Whether a consumer's state is kept beyond this process: durables of file streams, and
/// every consumer of a replicated stream (its replicas get its snapshots).
fn persisted(s: &Stream, c: &Consumer) -> bool {
    s.group.is_some() || (s.store.kind() == StorageKind::File && c.config().is_durable())
}

/// An 8-character name for an ephemeral consumer, like nats-server's.
fn generated_name() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8).map(|_| ALPHABET[(rand::random::<u32>() as usize) % ALPHABET.len()] as char).collect()
}

/// A fresh id for an advisory: 22 base-62 characters, the shape of nats-server's NUIDs.
pub(super) fn event_id() -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| DIGITS[(rand::random::<u32>() % 62) as usize] as char).collect()
}

impl Runtime {
    /// `$JS.API.CONSUMER.*` (everything but MSG.NEXT, which has its own subscription).
    pub(super) fn consumer_api(
        &mut self,
        acc: &mut AccountJs,
        subject: &str,
        body: &[u8],
        opts: &Options,
    ) -> (Vec<u8>, bool) {
        match parse_endpoint(subject) {
            Some(ConsumerEndpoint::Create) => self.consumer_create(acc, subject, body, opts),
            Some(ConsumerEndpoint::Info { stream, consumer }) => {
                let err = |e: ApiError| (to_json_vec(&ConsumerInfoResponse::err(e)), true);
                if !acc.streams.contains_key(&stream) {
                    return err(ErrorId::StreamNotFound.error());
                }
                match self.consumer_info(acc, &stream, &consumer) {
                    Some(info) => (to_json_vec(&ConsumerInfoResponse::ok(info)), false),
                    None => err(ErrorId::ConsumerNotFound.error()),
                }
            }
            Some(ConsumerEndpoint::Delete { stream, consumer }) => {
                let err = |e: ApiError| (to_json_vec(&ConsumerDeleteResponse::err(e)), true);
                if !acc.streams.contains_key(&stream) {
                    return err(ErrorId::StreamNotFound.error());
                }
                if !self.consumer_delete(acc, &stream, &consumer) {
                    return err(ErrorId::ConsumerNotFound.error());
                }
                (to_json_vec(&ConsumerDeleteResponse::ok()), false)
            }
            Some(ConsumerEndpoint::Names { stream }) => {
                let req: ConsumersRequest = match parse_body(body) {
                    Ok(r) => r,
                    Err(e) => return (to_json_vec(&ConsumerNamesResponse::err(e)), true),
                };
                if !acc.streams.contains_key(&stream) {
                    let e = ErrorId::StreamNotFound.error();
                    return (to_json_vec(&ConsumerNamesResponse::err(e)), true);
                }
                let names = acc.consumers.get(&stream).into_iter().flat_map(|m| m.keys());
                (to_json_vec(&names_page(names.map(String::as_str), &req)), false)
            }
            Some(ConsumerEndpoint::List { stream }) => {
                let req: ConsumersRequest = match parse_body(body) {
                    Ok(r) => r,
                    Err(e) => return (to_json_vec(&ConsumerListResponse::err(e)), true),
                };
                if !acc.streams.contains_key(&stream) {
                    let e = ErrorId::StreamNotFound.error();
                    return (to_json_vec(&ConsumerListResponse::err(e)), true);
                }
                let names: Vec<String> = acc
                    .consumers
                    .get(&stream)
                    .into_iter()
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                let infos =
                    names.iter().filter_map(|n| self.consumer_info(acc, &stream, n)).collect();
                (to_json_vec(&list_page(infos, &req)), false)
            }
            Some(ConsumerEndpoint::Pause { stream, consumer }) => {
                let err = |e: ApiError| (to_json_vec(&ConsumerPauseResponse::err(e)), true);
                // nats-server reads the body only when it looks like JSON; anything else
                // (or nothing) unpauses.
                let t = body.trim_ascii_start();
                let req: ConsumerPauseRequest = if t.starts_with(b"{") || t.starts_with(b"[") {
                    match serde_json::from_slice(body) {
                        Ok(r) => r,
                        Err(e) => return err(ErrorId::InvalidJSON.with_err(e)),
                    }
                } else {
                    ConsumerPauseRequest::default()
                };
                if !acc.streams.contains_key(&stream) {
                    return err(ErrorId::StreamNotFound.error());
                }
                if !acc.consumers.get(&stream).is_some_and(|m| m.contains_key(&consumer)) {
                    return err(ErrorId::ConsumerNotFound.error());
                }
                let until = req.pause_until.to_utc();
                let arg = (!until.is_zero()).then_some(until);
                self.consumer_event(acc, &stream, &consumer, |c, v, i, now| {
                    c.handle(now, Event::Pause(arg), v, i)
                });
                (to_json_vec(&ConsumerPauseResponse::ok(until, now_nanos())), false)
            }
            Some(ConsumerEndpoint::Unpin { stream, consumer }) => {
                self.consumer_unpin(acc, &stream, &consumer, body)
            }
            Some(ConsumerEndpoint::LeaderStepdown { stream, consumer }) => {
                let group = acc.streams.get(&stream).and_then(|s| s.group.clone());
                let Some(g) = group else {
                    return (
                        super::api::consumer_error(subject, ErrorId::ClusterRequired.error()),
                        true,
                    );
                };
                if !acc.consumers.get(&stream).is_some_and(|m| m.contains_key(&consumer)) {
                    let e = ErrorId::ConsumerNotFound.error();
                    return (super::api::consumer_error(subject, e), true);
                }
                // A consumer runs where its stream leads: the stream's leader steps down.
                if let Err(e) = self.stream_stepdown(&g, body) {
                    return (super::api::consumer_error(subject, e), true);
                }
                (
                    br#"{"type":"io.nats.jetstream.api.v1.consumer_leader_stepdown_response","success":true}"#
                        .to_vec(),
                    false,
                )
            }
            _ => (
                super::api::consumer_error(
                    subject,
                    super::api::not_implemented("this consumer request is"),
                ),
                true,
            ),
        }
    }

    /// `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>`, with nats-server's order of checks.
    fn consumer_unpin(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        consumer: &str,
        body: &[u8],
    ) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&ConsumerUnpinResponse::err(e)), true);
        let req: ConsumerUnpinRequest = if body.is_empty() {
            // Go's json.Unmarshal of nothing.
            return err(ErrorId::InvalidJSON.with_err("unexpected end of JSON input"));
        } else {
            match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return err(ErrorId::InvalidJSON.with_err(e)),
            }
        };
        if req.group.is_empty() {
            return err(ErrorId::InvalidJSON.with_err("consumer group not specified"));
        }
        if !is_valid_group_name(&req.group) {
            return err(ErrorId::ConsumerInvalidGroupName.error());
        }
        if !acc.streams.contains_key(stream) {
            return err(ErrorId::StreamNotFound.error());
        }
        let Some(c) = acc.consumers.get(stream).and_then(|m| m.get(consumer)) else {
            return err(ErrorId::ConsumerNotFound.error());
        };
        if !c.config().priority_groups.contains(&req.group) {
            return err(ErrorId::ConsumerInvalidPriorityGroup.error());
        }
        let group = req.group.clone();
        self.consumer_event(acc, stream, consumer, |c, v, i, now| {
            c.handle(now, Event::Unpin { group: &group }, v, i)
        });
        (to_json_vec(&ConsumerUnpinResponse::ok()), false)
    }

    fn consumer_create(
        &mut self,
        acc: &mut AccountJs,
        subject: &str,
        body: &[u8],
        opts: &Options,
    ) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&ConsumerCreateResponse::err(e)), true);
        let cs = match parse_create_subject(subject) {
            Some(Ok(cs)) => cs,
            Some(Err(e)) => return err(e),
            None => return err(ErrorId::BadRequest.error()),
        };
        let js = &opts.jetstream;
        let server = ServerConsumerLimits {
            max_request_batch: js.limits.max_request_batch.unwrap_or(0),
            max_ack_pending: js.limits.max_ack_pending.unwrap_or(0),
            default_max_consumers: 0,
        };
        let account_limits = untiered(acc.limits);
        let ctx = ConsumerCheckContext {
            clustered: self.cluster.is_some(),
            server: &server,
            account: &account_limits,
        };
        let mut env =
            CreateEnv { generated_name: generated_name(), deliver_subject_has_interest: false };
        let check = |env: &CreateEnv| {
            check_create(
                &cs,
                body,
                acc.streams.get(&cs.stream).map(|s| &s.cfg),
                &Lookup(acc.consumers.get(&cs.stream)),
                env,
                &ctx,
            )
        };
        let mut outcome = check(&env);
        // Moving a push consumer to another deliver subject is refused while the old one
        // still has a subscriber (any subscriber, as nats-server's `HasInterest`).
        if let Ok(CreateOutcome::Update { name, config }) = &outcome
            && let Some(old) = acc.consumers.get(&cs.stream).and_then(|m| m.get(name))
            && old.config().is_push()
            && old.config().deliver_subject != config.deliver_subject
            && has_interest(&acc.account, &old.config().deliver_subject)
        {
            env.deliver_subject_has_interest = true;
            outcome = check(&env);
        }
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return err(e),
        };
        let stream = cs.stream.clone();
        let name = outcome.name().to_string();
        let now = now_nanos();
        match outcome {
            CreateOutcome::Create { config, .. } => {
                let s = &acc.streams[&stream];
                let cctx = context(acc, s, opts);
                let c = Consumer::create(
                    &name,
                    config,
                    Timestamp::from_unix_nanos(now),
                    cctx,
                    now,
                    &StoreView(&*s.store),
                );
                if persisted(s, &c) {
                    self.consumers_dirty.insert((
                        acc.account.name.clone(),
                        stream.clone(),
                        name.clone(),
                    ));
                }
                self.sink.set_consumer(&acc.account.name, &stream, &name, true);
                acc.consumers.entry(stream.clone()).or_default().insert(name.clone(), c);
                self.push_started(acc, &stream, &name, now);
                self.advise(acc, &stream, &name, now, AdvisoryKind::Action { action: "create" });
            }
            CreateOutcome::Update { config, .. } => {
                let old = acc.consumers[&stream][&name].config().clone();
                let moved = old.is_push() && old.deliver_subject != config.deliver_subject;
                if moved {
                    self.push_stopped(&acc.account.name, &old);
                    self.sink.watch_deliver(&acc.account.name, &config.deliver_subject, true);
                }
                let active = moved.then(|| push::deliver_interest(&acc.account, &config));
                self.consumer_event(acc, &stream, &name, |c, v, i, now| {
                    let mut out = c.handle(now, Event::ConfigUpdate(Box::new(config)), v, i);
                    if let Some(active) = active {
                        out.extend(c.handle(now, Event::Interest(active), v, i));
                    }
                    out
                });
            }
        }
        match self.consumer_info(acc, &stream, &name) {
            Some(info) => (to_json_vec(&ConsumerCreateResponse::ok(info)), false),
            None => err(ErrorId::ConsumerNotFound.error()),
        }
    }

    /// `ConsumerInfo` for a response; statuses the info check produces are sent.
    pub(super) fn consumer_info(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        name: &str,
    ) -> Option<chorus_jetstream::consumer::api::ConsumerInfo> {
        let s = acc.streams.get(stream)?;
        let c = acc.consumers.get_mut(stream)?.get_mut(name)?;
        let account = acc.account.clone();
        let interest = |subj: &str| has_interest(&account, subj);
        let (info, actions) = c.info_for_response(
            now_nanos(),
            &StoreView(&*s.store),
            &interest,
            COMPAT_VERSION,
            API_LEVEL as u32,
        );
        // nats-server leaves `cluster` out of a consumer's info when it runs without a cluster
        // (streams do report their leader).
        let mut info = info;
        if self.cluster.is_some() {
            info.cluster =
                acc.streams.get(stream).and_then(|s| self.consumer_cluster_info(s, name));
        }
        self.apply_actions(acc, stream, name, actions);
        Some(info)
    }

    /// Deletes a consumer (API or inactivity); false if there was none.
    fn consumer_delete(&mut self, acc: &mut AccountJs, stream: &str, name: &str) -> bool {
        let Some(mut c) = acc.consumers.get_mut(stream).and_then(|m| m.remove(name)) else {
            return false;
        };
        self.sink.set_consumer(&acc.account.name, stream, name, false);
        self.push_stopped(&acc.account.name, c.config());
        if let Some(s) = acc.streams.get(stream) {
            let account = acc.account.clone();
            let interest = |subj: &str| has_interest(&account, subj);
            let actions = c.handle(now_nanos(), Event::Delete, &StoreView(&*s.store), &interest);
            if let Some(g) = s.group.clone() {
                self.queue_consumer(&g, name, None);
            } else if persisted(s, &c) {
                let key = super::api::store_key(&acc.account, stream);
                if let Err(e) = self.store.delete_consumer_state(&key, name) {
                    tracing::error!("JetStream: deleting consumer state of {key}/{name}: {e}");
                }
                self.dirty = true;
            }
            self.consumers_dirty.remove(&(acc.account.name.clone(), stream.into(), name.into()));
            self.apply_actions(acc, stream, name, actions);
            self.drop_uninteresting(acc, stream, c.ack_floor().stream + 1);
        }
        true
    }

    /// Interest retention after a consumer went: messages from `from` on that no remaining
    /// consumer needs are removed (nats-server's `checkInterestState`).
    fn drop_uninteresting(&mut self, acc: &mut AccountJs, stream: &str, from: u64) {
        let Some(s) = acc.streams.get_mut(stream) else { return };
        if s.cfg.retention != RetentionPolicy::Interest {
            return;
        }
        let consumers = acc.consumers.get(stream);
        let all = SubjectFilter::all();
        let mut seq = from.max(s.store.state(false).first_seq);
        if let Some(g) = s.group.clone() {
            // A replica removes at apply: the removals are proposed.
            let mut drops = Vec::new();
            while let Ok(Some(m)) = s.store.load_next(&all, seq) {
                seq = m.seq + 1;
                if !consumers.is_some_and(|cs| cs.values().any(|c| c.needs_ack(m.seq, &m.subject)))
                {
                    drops.push(m.seq);
                }
            }
            for d in drops {
                self.queue_drop(&g, d);
            }
            return;
        }
        while let Ok(Some(m)) = s.store.load_next(&all, seq) {
            seq = m.seq + 1;
            if consumers.is_some_and(|cs| cs.values().any(|c| c.needs_ack(m.seq, &m.subject))) {
                continue;
            }
            if let Err(e) = s.store.remove(m.seq, RemoveMode::Remove) {
                tracing::error!("JetStream: removing message {} of {stream}: {e}", m.seq);
                break;
            }
            self.lazy |= s.is_file();
        }
    }

    /// Forgets every consumer of a stream being deleted (its stored states go with it).
    pub(super) fn drop_consumers(&mut self, acc: &mut AccountJs, stream: &str) {
        let Some(m) = acc.consumers.remove(stream) else { return };
        let key = super::api::store_key(&acc.account, stream);
        for (name, c) in &m {
            self.sink.set_consumer(&acc.account.name, stream, name, false);
            self.push_stopped(&acc.account.name, c.config());
            let _ = self.store.delete_consumer_state(&key, name);
            self.consumers_dirty.remove(&(acc.account.name.clone(), stream.into(), name.clone()));
        }
    }

    /// Runs one event through a consumer and carries out what it decides.
    pub(super) fn consumer_event(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        name: &str,
        f: impl FnOnce(&mut Consumer, &StoreView<'_>, &dyn DeliveryInterest, i64) -> Vec<Action>,
    ) {
        let Some(s) = acc.streams.get(stream) else { return };
        let Some(c) = acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name)) else { return };
        let account = acc.account.clone();
        let interest = |subj: &str| has_interest(&account, subj);
        let actions = f(c, &StoreView(&*s.store), &interest, now_nanos());
        if persisted(s, c) {
            self.consumers_dirty.insert((acc.account.name.clone(), stream.into(), name.into()));
        }
        self.apply_actions(acc, stream, name, actions);
    }

    fn apply_actions(&mut self, acc: &mut AccountJs, stream: &str, name: &str, out: Vec<Action>) {
        let mut delete = false;
        let now = now_nanos();
        // A paced delivery waits; what the consumer says after it waits behind it.
        let account = acc.account.clone();
        let key = || (account.name.clone(), stream.to_string(), name.to_string());
        let mut hold_until = if self.push.holds_any() { self.push.held_until(&key()) } else { 0 };
        for a in out {
            let reply = match a {
                Action::Deliver(d) => {
                    hold_until = hold_until.max(d.not_before);
                    Reply {
                        account: acc.account.clone(),
                        subject: Bytes::from(d.to),
                        reply: Some(Bytes::from(d.reply)),
                        shown_as: Some(Bytes::from(d.subject)),
                        headers: d.header.map(|h| h.to_vec()),
                        payload: d.payload,
                        file_ack: None,
                    }
                }
                Action::Status(st) if hold_until > now => status_reply(&acc.account, &st),
                other => {
                    self.apply_now(acc, stream, name, other, &mut delete);
                    continue;
                }
            };
            if hold_until > now {
                self.push.hold(key(), hold_until, reply);
            } else {
                self.out.push(reply);
            }
        }
        if delete {
            self.consumer_delete(acc, stream, name);
        }
    }

    /// An action that never waits for pacing.
    fn apply_now(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        name: &str,
        a: Action,
        delete: &mut bool,
    ) {
        {
            match a {
                Action::Deliver(_) => unreachable!("deliveries are paced by the caller"),
                Action::Status(st) => self.out.push(status_reply(&acc.account, &st)),
                Action::AckReply { to } => self.out.push(Reply {
                    account: acc.account.clone(),
                    subject: Bytes::from(to),
                    reply: None,
                    shown_as: None,
                    headers: None,
                    payload: Bytes::new(),
                    file_ack: None,
                }),
                Action::Advisory(adv) => {
                    let subject = adv.subject();
                    // nats-server publishes advisories only when someone listens.
                    if has_interest(&acc.account, &subject) {
                        self.out.push(Reply {
                            account: acc.account.clone(),
                            subject: Bytes::from(subject),
                            reply: None,
                            shown_as: None,
                            headers: None,
                            payload: Bytes::from(adv.to_json(&event_id())),
                            file_ack: None,
                        });
                    }
                }
                Action::AckedForRetention { seq } => {
                    self.acked_for_retention(acc, stream, name, seq)
                }
                Action::Delete => *delete = true,
            }
        }
    }

    /// Publishes a runtime-made advisory (created) the way the state machine's go out.
    fn advise(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        name: &str,
        now: i64,
        kind: AdvisoryKind,
    ) {
        let adv = Advisory {
            time: now,
            stream: stream.to_string(),
            consumer: name.to_string(),
            domain: self.srv.opts().jetstream.domain.clone().unwrap_or_default(),
            kind,
        };
        let mut delete = false;
        self.apply_now(acc, stream, name, Action::Advisory(adv), &mut delete);
    }

    /// Workqueue and interest retention: drop `seq` once no consumer needs it.
    fn acked_for_retention(&mut self, acc: &mut AccountJs, stream: &str, name: &str, seq: u64) {
        let Some(s) = acc.streams.get_mut(stream) else { return };
        if s.cfg.retention == RetentionPolicy::Limits {
            return;
        }
        let Ok(Some(m)) = s.store.load(seq) else { return };
        let needed = acc
            .consumers
            .get(stream)
            .is_some_and(|cs| cs.iter().any(|(n, c)| n != name && c.needs_ack(seq, &m.subject)));
        if needed {
            return;
        }
        if let Some(g) = s.group.clone() {
            self.queue_drop(&g, seq);
            return;
        }
        match s.store.remove(seq, RemoveMode::Remove) {
            Ok(_) => self.lazy |= s.is_file(),
            Err(e) => tracing::error!("JetStream: removing acked message {seq}: {e}"),
        }
    }

    /// A pull request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    pub(super) fn handle_next(&mut self, m: InternalMsg) {
        let Some(reply) = m.reply.as_ref().filter(|r| !r.is_empty()) else { return };
        let subject = String::from_utf8_lossy(&m.subject).into_owned();
        let Some(ConsumerEndpoint::Next { stream, consumer }) = parse_endpoint(&subject) else {
            return;
        };
        let reply = String::from_utf8_lossy(reply).into_owned();
        let Some(mut acc) = self.accounts.remove(&m.account.name) else { return };
        self.consumer_event(&mut acc, &stream, &consumer, |c, v, i, now| {
            c.handle(now, Event::PullRequest { reply: &reply, body: &m.payload }, v, i)
        });
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    /// `$JS.API.CONSUMER.RESET.<stream>.<consumer>` (only for existing consumers: the sink
    /// lets the rest through to no responders, as nats-server's per-consumer subscription).
    /// The `Nats-Stream-Identity` answer header is not produced.
    pub(super) fn handle_reset(&mut self, m: InternalMsg) {
        let Some(reply) = m.reply.clone().filter(|r| !r.is_empty()) else { return };
        let subject = String::from_utf8_lossy(&m.subject).into_owned();
        let Some(ConsumerEndpoint::Reset { stream, consumer }) = parse_endpoint(&subject) else {
            return;
        };
        let Some(mut acc) = self.accounts.remove(&m.account.name) else { return };
        let body = self.consumer_reset(&mut acc, &stream, &consumer, &m);
        self.out.push(Reply {
            account: acc.account.clone(),
            subject: reply,
            reply: None,
            shown_as: None,
            headers: None,
            payload: Bytes::from(body),
            file_ack: None,
        });
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    fn consumer_reset(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        name: &str,
        m: &InternalMsg,
    ) -> Vec<u8> {
        let err = |e: ApiError| to_json_vec(&ConsumerResetResponse::err(e));
        if let Some(h) = m.headers.as_deref()
            && errors_on_required_level(headers::get(h, hdr::REQUIRED_API_LEVEL), API_LEVEL as u32)
        {
            return err(ErrorId::RequiredApiLevel.error());
        }
        let req: ConsumerResetRequest = if m.payload.is_empty() {
            ConsumerResetRequest::default()
        } else {
            match serde_json::from_slice(&m.payload) {
                Ok(r) => r,
                Err(e) => return err(ErrorId::InvalidJSON.with_err(e)),
            }
        };
        let Some(s) = acc.streams.get(stream) else {
            return err(ErrorId::ConsumerInvalidReset.with_err("consumer closed"));
        };
        let Some(c) = acc.consumers.get_mut(stream).and_then(|cs| cs.get_mut(name)) else {
            return err(ErrorId::ConsumerInvalidReset.with_err("consumer closed"));
        };
        let account = acc.account.clone();
        let interest = |subj: &str| has_interest(&account, subj);
        let (seq, actions) = match c.reset(now_nanos(), req.seq, &StoreView(&*s.store), &interest) {
            Ok(r) => r,
            Err(e) => return err(ErrorId::ConsumerInvalidReset.with_err(e)),
        };
        if persisted(s, c) {
            self.consumers_dirty.insert((acc.account.name.clone(), stream.into(), name.into()));
        }
        self.apply_actions(acc, stream, name, actions);
        // Interest retention: what the consumer skipped over is no longer needed by it.
        self.drop_uninteresting(acc, stream, 0);
        match self.consumer_info(acc, stream, name) {
            Some(info) => to_json_vec(&ConsumerResetResponse::ok(info, seq)),
            None => err(ErrorId::ConsumerInvalidReset.with_err("consumer closed")),
        }
    }

    /// A message on `$JS.ACK.>`.
    pub(super) fn handle_ack(&mut self, m: InternalMsg) {
        let subject = String::from_utf8_lossy(&m.subject).into_owned();
        let Some(p) = parse_ack_subject(&subject) else { return };
        let (stream, consumer) = (p.stream.to_string(), p.consumer.to_string());
        let reply = m.reply.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        let Some(mut acc) = self.accounts.remove(&m.account.name) else { return };
        self.consumer_event(&mut acc, &stream, &consumer, |c, v, i, now| {
            c.handle(now, Event::Ack { subject: &subject, reply: &reply, body: &m.payload }, v, i)
        });
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    /// Runs an event through every consumer of `stream`.
    pub(super) fn each_consumer(
        &mut self,
        acc: &mut AccountJs,
        stream: &str,
        mut f: impl FnMut(&mut Consumer, &StoreView<'_>, &dyn DeliveryInterest, i64) -> Vec<Action>,
    ) {
        let names: Vec<String> =
            acc.consumers.get(stream).into_iter().flat_map(|m| m.keys().cloned()).collect();
        for n in names {
            self.consumer_event(acc, stream, &n, &mut f);
        }
    }

    /// The stream stored `seq`: its consumers may have pull requests waiting for it.
    pub(super) fn stream_appended(&mut self, account: &str, stream: &str, seq: u64, subject: &str) {
        // Most published messages go to streams without consumers: skip taking the account
        // out of the map (and the name allocation putting it back).
        let has_consumers = self
            .accounts
            .get(account)
            .and_then(|a| a.consumers.get(stream))
            .is_some_and(|c| !c.is_empty());
        if !has_consumers {
            return;
        }
        let Some(mut acc) = self.accounts.remove(account) else { return };
        self.each_consumer(&mut acc, stream, |c, v, i, now| {
            c.handle(now, Event::StreamAppended { seq, subject }, v, i)
        });
        self.accounts.insert(account.to_string(), acc);
    }

    /// Ticks every consumer whose deadline has come.
    pub(super) fn consumer_timers(&mut self, now: i64) {
        let mut due = Vec::new();
        for (an, acc) in &self.accounts {
            for (sn, m) in &acc.consumers {
                for (cn, c) in m {
                    if c.next_deadline().is_some_and(|t| t <= now) {
                        due.push((an.clone(), sn.clone(), cn.clone()));
                    }
                }
            }
        }
        for (an, sn, cn) in due {
            let Some(mut acc) = self.accounts.remove(&an) else { continue };
            self.consumer_event(&mut acc, &sn, &cn, |c, v, i, now| {
                c.handle(now, Event::Tick, v, i)
            });
            self.accounts.insert(an, acc);
        }
    }

    /// Writes the snapshots of the durables changed in this batch; true if any was written
    /// (the batch's sync then covers them).
    pub(super) fn write_consumer_states(&mut self) -> bool {
        let mut wrote = false;
        for (an, sn, cn) in std::mem::take(&mut self.consumers_dirty) {
            let Some(acc) = self.accounts.get(&an) else { continue };
            let Some(c) = acc.consumers.get(&sn).and_then(|m| m.get(&cn)) else { continue };
            if let Some(g) = acc.streams.get(&sn).and_then(|s| s.group.clone()) {
                let blob = c.snapshot().encode();
                self.queue_consumer(&g, &cn, Some(blob));
                continue;
            }
            let key = super::api::store_key(&acc.account, &sn);
            match self.store.put_consumer_state(&key, &cn, &c.snapshot().encode()) {
                Ok(()) => wrote = true,
                Err(e) => tracing::error!("JetStream: saving consumer {key}/{cn} failed: {e}"),
            }
        }
        wrote
    }

    /// Brings back the stored durables of a file stream just recovered.
    pub(super) fn restore_consumers(&mut self, acc: &mut AccountJs, stream: &str) {
        if !acc.streams.get(stream).is_some_and(Stream::is_file) {
            return;
        }
        let key = super::api::store_key(&acc.account, stream);
        let states = match self.store.consumer_states(&key) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("JetStream: listing consumers of {key} failed: {e}");
                return;
            }
        };
        let opts = self.srv.opts();
        let now = now_nanos();
        for (name, blob) in states {
            let snap = match ConsumerSnapshot::decode(&blob) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("JetStream: consumer {key}/{name} not restored: {e}");
                    continue;
                }
            };
            let s = &acc.streams[stream];
            let ctx = context(acc, s, &opts);
            // Statuses and advisories from the restore have no one to go to yet.
            let (c, _) = Consumer::restore(snap, ctx, now, &StoreView(&*s.store));
            self.sink.set_consumer(&acc.account.name, stream, &name, true);
            acc.consumers.entry(stream.to_string()).or_default().insert(name.clone(), c);
            self.push_started(acc, stream, &name, now);
        }
    }
}

pub(super) fn status_reply(account: &Arc<Account>, st: &StatusMsg) -> Reply {
    Reply {
        account: account.clone(),
        subject: Bytes::from(st.to.clone()),
        reply: st.reply.clone().map(Bytes::from),
        shown_as: None,
        headers: Some(st.header_bytes()),
        payload: Bytes::new(),
        file_ack: None,
    }
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ErrorId::InvalidJSON.with_err(e))
}
