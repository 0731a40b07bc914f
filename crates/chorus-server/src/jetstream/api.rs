//! `$JS.API.*` requests and direct gets, answered on the runtime thread with
//! `chorus-jetstream`'s checks and response shapes (nats-server's `jetstream_api.go`,
//! single-server paths).

use std::collections::BTreeMap;

use bytes::Bytes;
use chorus_conf::Options;
use chorus_jetstream::api::account::{AccountInfo, AccountInfoResponse, ApiStats, Tier, untiered};
use chorus_jetstream::api::msg::{
    BatchPosition, DirectStatus, MsgDeleteResponse, MsgGetRequest, MsgGetResponse, MsgLookup,
    StoredMsg as ApiStoredMsg, check_direct_get_by_subject, check_direct_get_request,
    check_msg_delete_request, check_msg_get_request, direct_get_header,
};
use chorus_jetstream::api::stream::{
    ClusterInfo, StreamCreateResponse, StreamDeleteResponse, StreamInfoRequest, StreamInfoResponse,
    StreamListRequest, StreamListResponse, StreamNamesResponse, StreamPurgeResponse,
    StreamUpdateResponse, check_delete_request, check_purge_request, list_page, names_page,
    parse_optional_request, parse_request,
};
use chorus_jetstream::api::subjects::{self, ApiEndpoint};
use chorus_jetstream::api::types;
use chorus_jetstream::consumer::Event;
use chorus_jetstream::go::{Timestamp, to_json_vec};
use chorus_jetstream::stream::advisory::{StreamAction, StreamAdvisory};
use chorus_jetstream::stream::check::{
    CheckContext, CreateOutcome, ServerLimits, StreamLookup, check_create, check_update,
};
use chorus_jetstream::stream::config::{StorageType, StreamConfig, StreamConfigRequest};
use chorus_jetstream::stream::headers;
use chorus_jetstream::stream::metadata::{errors_on_required_level, with_dynamic};
use chorus_jetstream::stream::publish::hdr;
use chorus_jetstream::{ApiError, ErrorId};
use chorus_store::{
    MemStore, PurgeRequest, RemoveMode, StorageKind, StoreError, StreamStore, SubjectFilter,
};
use serde::Serialize;

use super::internal::InternalMsg;
use super::stream::{
    Definition, Stream, limits_of, now_nanos, seq_for_time, storage_kind, unsupported_feature,
};
use super::{AccountJs, Reply, Runtime, subscribe_stream};
use crate::account::Account;
use crate::info::{API_LEVEL, COMPAT_VERSION};

/// `type` of answers to requests no endpoint takes (nats-server's `JSApiSystemResponseType`).
const SYSTEM_RESPONSE: &str = "io.nats.jetstream.api.v1.system_response";

/// Most subjects a multi-last direct get answers (nats-server's `maxAllowedResponses`).
const MAX_MULTI_LAST: usize = 1024;

#[derive(Serialize)]
struct ErrorOnly<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    error: &'a ApiError,
}

pub(super) fn generic_error(kind: &str, e: &ApiError) -> Vec<u8> {
    to_json_vec(&ErrorOnly { kind, error: e })
}

/// An endpoint this server knows but does not serve yet.
pub(super) fn not_implemented(what: &str) -> ApiError {
    ApiError {
        code: 501,
        err_code: ErrorId::BadRequest.err_code(),
        description: format!("{what} not implemented by this server yet"),
    }
}

/// The error response of an endpoint, in that endpoint's shape (fixed fields included).
pub(super) fn error_body(ep: &ApiEndpoint, e: ApiError) -> Vec<u8> {
    use ApiEndpoint::*;
    match ep {
        AccountInfo => to_json_vec(&AccountInfoResponse::err(e)),
        StreamCreate { .. } => to_json_vec(&StreamCreateResponse::err(e)),
        StreamUpdate { .. } => to_json_vec(&StreamUpdateResponse::err(e)),
        StreamInfo { .. } => to_json_vec(&StreamInfoResponse::err(e)),
        StreamDelete { .. } => to_json_vec(&StreamDeleteResponse::err(e)),
        StreamNames => to_json_vec(&StreamNamesResponse::err(e)),
        StreamList => to_json_vec(&StreamListResponse::err(e)),
        StreamPurge { .. } => to_json_vec(&StreamPurgeResponse::err(e)),
        StreamMsgGet { .. } => to_json_vec(&MsgGetResponse::err(e)),
        StreamMsgDelete { .. } => to_json_vec(&MsgDeleteResponse::err(e)),
        StreamSnapshot { .. } => generic_error(types::STREAM_SNAPSHOT_RESPONSE, &e),
        StreamRestore { .. } => generic_error(types::STREAM_RESTORE_RESPONSE, &e),
        StreamLeaderStepdown { .. } => generic_error(types::STREAM_LEADER_STEPDOWN_RESPONSE, &e),
        StreamPeerRemove { .. } => generic_error(types::STREAM_REMOVE_PEER_RESPONSE, &e),
        DirectGet { .. } | DirectGetLastBySubject { .. } | Other => {
            generic_error(SYSTEM_RESPONSE, &e)
        }
    }
}

/// The response type of a consumer endpoint, so errors to consumer requests (required API
/// level, endpoints not served yet) come in their own shape and clients report them.
pub(super) fn consumer_type(subject: &str) -> Option<&'static str> {
    let rest = subject.strip_prefix("$JS.API.CONSUMER.")?;
    let op = rest.split('.').next().unwrap_or("");
    Some(match op {
        "CREATE" | "DURABLE" => types::CONSUMER_CREATE_RESPONSE,
        "INFO" => types::CONSUMER_INFO_RESPONSE,
        "DELETE" => types::CONSUMER_DELETE_RESPONSE,
        "NAMES" => types::CONSUMER_NAMES_RESPONSE,
        "LIST" => types::CONSUMER_LIST_RESPONSE,
        "PAUSE" => types::CONSUMER_PAUSE_RESPONSE,
        "UNPIN" => chorus_jetstream::consumer::api::CONSUMER_UNPIN_RESPONSE,
        _ => SYSTEM_RESPONSE,
    })
}

/// An error answer to a consumer request, in that request's response shape.
pub(super) fn consumer_error(subject: &str, e: ApiError) -> Vec<u8> {
    generic_error(consumer_type(subject).unwrap_or(SYSTEM_RESPONSE), &e)
}

/// `$JS.<domain>.API.x` is `$JS.API.x` for the server's own domain.
fn without_domain(subject: String, target: super::Target, opts: &Options) -> String {
    match (target, &opts.jetstream.domain) {
        (super::Target::DomainApi, Some(d)) => match subject.strip_prefix(&format!("$JS.{d}.API."))
        {
            Some(rest) => format!("$JS.API.{rest}"),
            None => subject,
        },
        _ => subject,
    }
}

/// Read access to an account's streams for the create/update checks.
struct Lookup<'a>(&'a BTreeMap<String, Stream>);

impl StreamLookup for Lookup<'_> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        self.0.get(name).map(|s| &s.cfg)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.0.values().map(|s| &s.cfg))
    }
}

/// 75% of the machine's memory, nats-server's default `max_memory_store`.
pub(super) fn default_max_memory() -> i64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
    });
    total_kb.map_or(i64::MAX, |kb| kb.saturating_mul(1024) / 4 * 3)
}

/// The stream's key in the store.
pub(super) fn store_key(account: &Account, stream: &str) -> String {
    format!("{}/{stream}", account.name)
}

/// Replies to a direct get: (header block, payload).
type DirectReplies = Vec<(Option<Vec<u8>>, Bytes)>;

fn status(st: DirectStatus) -> DirectReplies {
    vec![(Some(st.header()), Bytes::new())]
}

impl Runtime {
    pub(super) fn server_limits(&self, current: &AccountJs, opts: &Options) -> ServerLimits {
        let js = &opts.jetstream;
        let (mut mem, mut file) = (0i64, 0i64);
        for acc in self.accounts.values().chain(std::iter::once(current)) {
            for s in acc.streams.values().filter(|s| s.cfg.max_bytes > 0) {
                match s.cfg.storage {
                    StorageType::Memory => mem = mem.saturating_add(s.cfg.max_bytes),
                    StorageType::File => file = file.saturating_add(s.cfg.max_bytes),
                }
            }
        }
        ServerLimits {
            max_memory: js.max_memory_store.filter(|v| *v > 0).unwrap_or_else(default_max_memory),
            max_store: js.max_file_store.filter(|v| *v > 0).unwrap_or(i64::MAX),
            memory_reserved: mem,
            store_reserved: file,
            max_duplicate_window: js
                .limits
                .duplicate_window
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// Publishes a stream action advisory, if anyone listens (as nats-server does).
    pub(super) fn stream_advisory(
        &mut self,
        acc: &AccountJs,
        stream: &str,
        action: StreamAction,
        opts: &Options,
    ) {
        let adv = StreamAdvisory {
            time: now_nanos(),
            stream: stream.to_string(),
            action,
            domain: opts.jetstream.domain.clone().unwrap_or_default(),
        };
        let subject = adv.subject();
        if !super::consumer::has_interest(&acc.account, &subject) {
            return;
        }
        self.out.push(Reply {
            account: acc.account.clone(),
            subject: Bytes::from(subject),
            headers: None,
            payload: Bytes::from(adv.to_json(&super::consumer::event_id())),
            reply: None,
            shown_as: None,
            file_ack: None,
        });
    }

    /// Queues an API answer, counts it, and queues the audit advisory when the requester
    /// came with one (someone listens: see `Client::deliver`).
    pub(super) fn api_answer(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        body: Vec<u8>,
        err: bool,
        opts: &Options,
    ) {
        acc.api_total += 1;
        if err {
            acc.api_errors += 1;
        }
        let body = Bytes::from(body);
        if let Some(to) = m.reply.as_ref().filter(|r| !r.is_empty()) {
            self.out.push(Reply {
                account: acc.account.clone(),
                subject: to.clone(),
                headers: None,
                payload: body.clone(),
                reply: None,
                shown_as: None,
                file_ack: None,
            });
        }
        if let Some(client) = &m.requester {
            let audit = chorus_jetstream::api::audit::ApiAudit {
                time: now_nanos(),
                server: &self.srv.name,
                client,
                subject,
                request: &String::from_utf8_lossy(&m.payload),
                response: &String::from_utf8_lossy(&body),
                domain: opts.jetstream.domain.as_deref().unwrap_or(""),
            };
            self.out.push(Reply {
                account: acc.account.clone(),
                subject: Bytes::from_static(super::API_AUDIT_SUBJECT.as_bytes()),
                headers: None,
                payload: Bytes::from(audit.to_json(&super::consumer::event_id())),
                reply: None,
                shown_as: None,
                file_ack: None,
            });
        }
    }

    /// Clustered JetStream: who answers (see meta.rs). Returns true when the request is
    /// dealt with (answered, proposed, or another server's to answer).
    fn cluster_api(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        ep: &ApiEndpoint,
        opts: &Options,
    ) -> bool {
        match self.cluster_answers(acc, ep, subject) {
            None => {
                self.cluster_unavailable(acc, m, subject, ep, opts);
                return true;
            }
            Some(false) => return true,
            Some(true) => {}
        }
        if self.meta_api(acc, m, subject, ep, opts) {
            return true;
        }
        let group = |stream: &str| acc.streams.get(stream).and_then(|s| s.group.clone());
        match ep {
            ApiEndpoint::StreamPurge { stream } | ApiEndpoint::StreamMsgDelete { stream } => {
                let Some(g) = group(stream) else { return false };
                let op = if matches!(ep, ApiEndpoint::StreamPurge { .. }) {
                    super::replica::ApiOp::Purge
                } else {
                    super::replica::ApiOp::MsgDelete
                };
                self.replicated_api(&g, op, m, subject);
                true
            }
            ApiEndpoint::StreamLeaderStepdown { stream } => {
                let Some(g) = group(stream) else { return false };
                let b = match self.stream_stepdown(&g, &m.payload) {
                    Ok(()) => br#"{"type":"io.nats.jetstream.api.v1.stream_leader_stepdown_response","success":true}"#.to_vec(),
                    Err(e) => generic_error(types::STREAM_LEADER_STEPDOWN_RESPONSE, &e),
                };
                self.api_answer(acc, m, subject, b, false, opts);
                true
            }
            ApiEndpoint::StreamPeerRemove { stream } => {
                if !acc.streams.contains_key(stream) {
                    return false;
                }
                let peer = serde_json::from_slice::<serde_json::Value>(&m.payload)
                    .ok()
                    .and_then(|v| v.get("peer").and_then(|p| p.as_str()).map(String::from));
                let Some(peer) = peer.filter(|p| !p.is_empty()) else {
                    let b = error_body(ep, ErrorId::BadRequest.error());
                    self.api_answer(acc, m, subject, b, true, opts);
                    return true;
                };
                let member = self
                    .cluster
                    .as_ref()
                    .and_then(|c| c.assignment(&acc.account.name, stream))
                    .is_some_and(|a| a.names.contains(&peer));
                let e = if member {
                    not_implemented("removing a stream's peer is")
                } else {
                    ErrorId::ClusterPeerNotMember.error()
                };
                self.api_answer(acc, m, subject, error_body(ep, e), true, opts);
                true
            }
            _ => false,
        }
    }

    pub(super) fn handle_api(&mut self, m: InternalMsg, opts: &Options) {
        let subject = String::from_utf8_lossy(&m.subject).into_owned();
        let subject = without_domain(subject, m.target, opts);
        let Some(mut acc) = self.accounts.remove(&m.account.name) else {
            self.not_enabled(&m, &subject);
            return;
        };
        self.api_request(&mut acc, &m, &subject, opts);
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    /// Any API request in an account without JetStream: 10039 in the endpoint's shape.
    fn not_enabled(&mut self, m: &InternalMsg, subject: &str) {
        let Some(d) = self.disabled.get(&m.account.name) else { return };
        let Some(to) = m.reply.as_ref().filter(|r| !r.is_empty()) else { return };
        let e = ErrorId::NotEnabledForAccount.error();
        let body = match consumer_type(subject) {
            Some(t) => generic_error(t, &e),
            None => error_body(&subjects::parse(subject).unwrap_or(ApiEndpoint::Other), e),
        };
        self.out.push(Reply {
            account: d.account.clone(),
            subject: to.clone(),
            headers: None,
            payload: Bytes::from(body),
            reply: None,
            shown_as: None,
            file_ack: None,
        });
    }

    fn api_request(&mut self, acc: &mut AccountJs, m: &InternalMsg, subject: &str, opts: &Options) {
        let reply = m.reply.as_ref().filter(|r| !r.is_empty());
        let body: &[u8] = &m.payload;
        let ep = subjects::parse(subject).unwrap_or(ApiEndpoint::Other);
        if self.cluster.is_some() && self.cluster_api(acc, m, subject, &ep, opts) {
            return;
        }
        if let ApiEndpoint::DirectGet { stream }
        | ApiEndpoint::DirectGetLastBySubject { stream, .. } = &ep
        {
            // Only through the domain prefix: the plain subjects go to the stream's own
            // subscription.
            let Some(to) = reply else { return };
            let Some(s) = acc.streams.get(stream).filter(|s| s.cfg.allow_direct) else { return };
            let replies = direct_get(s, subject, m.headers.as_deref(), body, opts);
            for (h, p) in replies {
                self.out.push(Reply {
                    account: acc.account.clone(),
                    subject: to.clone(),
                    headers: h,
                    payload: p,
                    reply: None,
                    shown_as: None,
                    file_ack: None,
                });
            }
            return;
        }
        if subject.starts_with("$JS.API.CONSUMER.RESET.") {
            // Answered by the consumer's own subscription (consumer.rs), never by the API.
            return;
        }
        if let Some(h) = m.headers.as_deref()
            && errors_on_required_level(headers::get(h, hdr::REQUIRED_API_LEVEL), API_LEVEL as u32)
        {
            let e = ErrorId::RequiredApiLevel.error();
            let b = match consumer_type(subject) {
                Some(t) => generic_error(t, &e),
                None => error_body(&ep, e),
            };
            self.api_answer(acc, m, subject, b, true, opts);
            return;
        }
        let (b, err) = match &ep {
            ApiEndpoint::AccountInfo => (self.account_info(acc, opts), false),
            ApiEndpoint::StreamCreate { stream } => self.stream_create(acc, stream, body, opts),
            ApiEndpoint::StreamUpdate { stream } => self.stream_update(acc, stream, body, opts),
            ApiEndpoint::StreamInfo { stream } => {
                let cluster = acc.streams.get(stream).and_then(|s| self.cluster_info_of(s));
                stream_info(acc, stream, body, opts, cluster)
            }
            ApiEndpoint::StreamDelete { stream } => self.stream_delete(acc, stream, body),
            ApiEndpoint::StreamNames => match parse_optional_request::<StreamListRequest>(body) {
                Ok(req) => {
                    (to_json_vec(&names_page(acc.streams.values().map(|s| &s.cfg), &req)), false)
                }
                Err(e) => (error_body(&ep, e), true),
            },
            ApiEndpoint::StreamList => match parse_optional_request::<StreamListRequest>(body) {
                Ok(req) => {
                    let domain = opts.jetstream.domain.clone().unwrap_or_default();
                    let infos = acc
                        .streams
                        .values()
                        .map(|s| {
                            let mut i = s.info(s.cfg.clone(), false);
                            i.domain = domain.clone();
                            i
                        })
                        .collect();
                    (to_json_vec(&list_page(infos, &req)), false)
                }
                Err(e) => (error_body(&ep, e), true),
            },
            ApiEndpoint::StreamPurge { stream } => self.stream_purge(acc, stream, body),
            ApiEndpoint::StreamMsgGet { stream } => msg_get(acc, stream, body),
            ApiEndpoint::StreamMsgDelete { stream } => self.msg_delete(acc, stream, body),
            ApiEndpoint::StreamLeaderStepdown { .. } | ApiEndpoint::StreamPeerRemove { .. } => {
                (error_body(&ep, ErrorId::ClusterRequired.error()), true)
            }
            ApiEndpoint::StreamSnapshot { .. } => {
                (error_body(&ep, not_implemented("stream snapshots are")), true)
            }
            ApiEndpoint::StreamRestore { .. } => {
                (error_body(&ep, not_implemented("stream restores are")), true)
            }
            ApiEndpoint::DirectGet { .. } | ApiEndpoint::DirectGetLastBySubject { .. } => {
                unreachable!("handled above")
            }
            ApiEndpoint::Other if subject.starts_with("$JS.API.CONSUMER.") => {
                self.consumer_api(acc, subject, body, opts)
            }
            ApiEndpoint::Other => match consumer_type(subject) {
                Some(t) => (generic_error(t, &not_implemented("consumers are")), true),
                None => (error_body(&ep, ErrorId::BadRequest.error()), true),
            },
        };
        self.api_answer(acc, m, subject, b, err, opts);
    }

    fn account_info(&self, acc: &AccountJs, opts: &Options) -> Vec<u8> {
        let mut t = Tier { limits: acc.limits, ..Default::default() };
        for s in acc.streams.values() {
            let bytes = s.store.state(false).bytes;
            let reserved = s.cfg.max_bytes.max(0) as u64;
            match s.cfg.storage {
                StorageType::Memory => {
                    t.memory += bytes;
                    t.reserved_memory += reserved;
                }
                StorageType::File => {
                    t.storage += bytes;
                    t.reserved_storage += reserved;
                }
            }
            t.streams += 1;
        }
        t.consumers = acc.consumers.values().map(|m| m.len() as u64).sum();
        let info = AccountInfo {
            totals: t,
            domain: opts.jetstream.domain.clone().unwrap_or_default(),
            api: ApiStats {
                level: API_LEVEL as u32,
                total: acc.api_total,
                errors: acc.api_errors,
                inflight: 0,
            },
            tiers: BTreeMap::new(),
        };
        to_json_vec(&AccountInfoResponse::ok(info))
    }

    fn stream_create(
        &mut self,
        acc: &mut AccountJs,
        name: &str,
        body: &[u8],
        opts: &Options,
    ) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&StreamCreateResponse::err(e)), true);
        let req: StreamConfigRequest = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let server = self.server_limits(acc, opts);
        let account_limits = untiered(acc.limits);
        let ctx = CheckContext {
            clustered: false,
            server: &server,
            account: &account_limits,
            streams: &Lookup(&acc.streams),
        };
        let cfg = match check_create(name, &req, &ctx) {
            Err(e) => return err(e),
            Ok(CreateOutcome::Exists(_)) => {
                let s = &acc.streams[name];
                let info = s.info(with_dynamic(&s.cfg, COMPAT_VERSION, API_LEVEL as u32), false);
                return (to_json_vec(&StreamCreateResponse::ok(info)), false);
            }
            Ok(CreateOutcome::Create(cfg)) => cfg,
        };
        if let Some(what) = unsupported_feature(&cfg) {
            return err(ErrorId::StreamCreate
                .with_err(format!("{what} are not supported by this server yet")));
        }
        let created = Timestamp::from_unix_nanos(now_nanos());
        let def = Definition { config: cfg, created };
        let key = store_key(&acc.account, name);
        let store = match self.create_store(&key, &def) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("Stream create failed for '{} > {name}': {e}", acc.account.name);
                return err(ErrorId::StreamCreate.with_err(e));
            }
        };
        let id = self.alloc_id();
        let s = Stream::new(id, def.config, created, store);
        let info = s.info(with_dynamic(&s.cfg, COMPAT_VERSION, API_LEVEL as u32), false);
        self.install(acc, s);
        self.stream_advisory(acc, name, StreamAction::Create, opts);
        (to_json_vec(&StreamCreateResponse::ok(info)), false)
    }

    pub(super) fn create_store(
        &self,
        key: &str,
        def: &Definition,
    ) -> Result<Box<dyn StreamStore>, StoreError> {
        let fs = self.store.create_stream(key, &def.encode())?;
        let mut store: Box<dyn StreamStore> = match storage_kind(&def.config) {
            StorageKind::File => Box::new(fs),
            StorageKind::Memory => {
                // The definition stays in the database (the stream comes back, empty, after a
                // restart); the messages live in memory.
                drop(fs);
                Box::new(MemStore::new(&def.config.name))
            }
        };
        let setup = |store: &mut Box<dyn StreamStore>| -> Result<(), StoreError> {
            store.set_limits(limits_of(&def.config))?;
            if def.config.first_seq > 1 {
                store.compact(def.config.first_seq)?;
            }
            store.sync()
        };
        if let Err(e) = setup(&mut store) {
            let _ = store.delete();
            let _ = self.store.delete_stream(key);
            return Err(e);
        }
        Ok(store)
    }

    fn stream_update(
        &mut self,
        acc: &mut AccountJs,
        name: &str,
        body: &[u8],
        opts: &Options,
    ) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&StreamUpdateResponse::err(e)), true);
        let req: StreamConfigRequest = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let server = self.server_limits(acc, opts);
        let account_limits = untiered(acc.limits);
        let ctx = CheckContext {
            clustered: false,
            server: &server,
            account: &account_limits,
            streams: &Lookup(&acc.streams),
        };
        let cfg = match check_update(name, &req, &ctx, &[]) {
            Ok(c) => c,
            Err(e) => return err(e),
        };
        if let Some(what) = unsupported_feature(&cfg) {
            return err(ErrorId::StreamUpdate
                .with_err(format!("{what} are not supported by this server yet")));
        }
        let key = store_key(&acc.account, name);
        let s = acc.streams.get_mut(name).expect("check_update found it");
        let def = Definition { config: cfg.clone(), created: s.created };
        if let Err(e) = self.store.set_stream_config(&key, &def.encode()) {
            return err(ErrorId::StreamUpdate.with_err(e));
        }
        let resubscribe = s.cfg.subjects != cfg.subjects || s.cfg.allow_direct != cfg.allow_direct;
        let is_file = s.is_file();
        if let Err(e) = s.reconfigure(cfg, now_nanos()) {
            return err(ErrorId::StreamUpdate.with_err(e));
        }
        self.dirty |= is_file;
        if resubscribe {
            let mut s = acc.streams.remove(name).expect("present");
            subscribe_stream((&acc.account, &acc.client), &mut s);
            acc.streams.insert(name.to_string(), s);
        }
        let s = &acc.streams[name];
        let mut info = s.info(with_dynamic(&s.cfg, COMPAT_VERSION, API_LEVEL as u32), false);
        info.domain = opts.jetstream.domain.clone().unwrap_or_default();
        self.stream_advisory(acc, name, StreamAction::Modify, opts);
        (to_json_vec(&StreamUpdateResponse::ok(info)), false)
    }

    fn stream_delete(&mut self, acc: &mut AccountJs, name: &str, body: &[u8]) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&StreamDeleteResponse::err(e)), true);
        if let Err(e) = check_delete_request(body) {
            return err(e);
        }
        let Some(mut s) = self.uninstall(acc, name) else {
            return err(ErrorId::StreamNotFound.error());
        };
        self.drop_consumers(acc, name);
        let key = store_key(&acc.account, name);
        let res = match s.store.kind() {
            // Deleting through the handle removes the messages and the definition.
            StorageKind::File => s.store.delete(),
            StorageKind::Memory => {
                let _ = s.store.delete();
                self.store.delete_stream(&key).map(|_| ())
            }
        };
        if let Err(e) = res {
            tracing::error!("Stream delete failed for '{} > {name}': {e}", acc.account.name);
            return err(ErrorId::StreamDelete.with_err(e));
        }
        self.stream_advisory(acc, name, StreamAction::Delete, &self.srv.opts());
        (to_json_vec(&StreamDeleteResponse::ok()), false)
    }

    pub(super) fn stream_purge(
        &mut self,
        acc: &mut AccountJs,
        name: &str,
        body: &[u8],
    ) -> (Vec<u8>, bool) {
        let err = |e: ApiError| (to_json_vec(&StreamPurgeResponse::err(e)), true);
        let cfg = acc.streams.get(name).map(|s| &s.cfg);
        let req = match check_purge_request(body, cfg) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        let s = acc.streams.get_mut(name).expect("checked");
        let p = PurgeRequest {
            subject: (!req.filter.is_empty()).then(|| req.filter.clone()),
            seq: req.seq,
            keep: req.keep,
        };
        self.dirty |= s.is_file();
        match s.store.purge(&p) {
            Ok(n) => {
                // A filtered purge leaves gaps a consumer cannot tell from the range alone;
                // consumers learn only of the unfiltered ones for now.
                if req.filter.is_empty() {
                    let st = s.store.state(false);
                    self.each_consumer(acc, name, |c, v, i, now| {
                        let e = Event::StreamPurged {
                            first_seq: st.first_seq,
                            last_seq: st.last_seq,
                            wider: false,
                        };
                        c.handle(now, e, v, i)
                    });
                }
                (to_json_vec(&StreamPurgeResponse::ok(n)), false)
            }
            Err(e) => err(ErrorId::StreamPurgeFailed.with_err(e)),
        }
    }

    pub(super) fn msg_delete(
        &mut self,
        acc: &mut AccountJs,
        name: &str,
        body: &[u8],
    ) -> (Vec<u8>, bool) {
        let cfg = acc.streams.get(name).map(|s| &s.cfg);
        let req = match check_msg_delete_request(body, cfg) {
            Ok(r) => r,
            Err(e) => return (to_json_vec(&MsgDeleteResponse::err(e)), true),
        };
        let s = acc.streams.get_mut(name).expect("checked");
        let mode = if req.no_erase { RemoveMode::Remove } else { RemoveMode::Erase };
        self.dirty |= s.is_file();
        let st = s.store.state(false);
        let subject = s.store.load(req.seq).ok().flatten().map(|m| m.subject);
        let resp = match s.store.remove(req.seq, mode) {
            Ok(true) => {
                let subject = subject.unwrap_or_default();
                self.each_consumer(acc, name, |c, v, i, now| {
                    c.handle(now, Event::StreamRemoved { seq: req.seq, subject: &subject }, v, i)
                });
                MsgDeleteResponse::ok()
            }
            Err(e) => MsgDeleteResponse::store_error(e),
            // nats-server's file store names the missing cases; its memory store does not.
            Ok(false) if s.is_file() && req.seq == 0 => {
                MsgDeleteResponse::store_error("no message found")
            }
            Ok(false) if s.is_file() && req.seq > st.last_seq => {
                MsgDeleteResponse::store_error("stream store EOF")
            }
            Ok(false) if s.is_file() && (st.msgs == 0 || req.seq < st.first_seq) => {
                MsgDeleteResponse::store_error("no message found")
            }
            Ok(false) => MsgDeleteResponse::sequence_not_found(req.seq),
        };
        let err = resp.error.is_some();
        (to_json_vec(&resp), err)
    }

    pub(super) fn handle_direct(&mut self, m: InternalMsg, id: u64, opts: &Options) {
        let Some(to) = m.reply.as_ref().filter(|r| !r.is_empty()) else { return };
        let Some(acc) = self.accounts.get(&m.account.name) else { return };
        let Some(s) = acc.by_id.get(&id).and_then(|n| acc.streams.get(n)) else { return };
        let subject = String::from_utf8_lossy(&m.subject);
        let replies = direct_get(s, &subject, m.headers.as_deref(), &m.payload, opts);
        for (h, p) in replies {
            self.out.push(Reply {
                account: m.account.clone(),
                subject: to.clone(),
                headers: h,
                payload: p,
                reply: None,
                shown_as: None,
                file_ack: None,
            });
        }
    }
}

fn stream_info(
    acc: &AccountJs,
    name: &str,
    body: &[u8],
    opts: &Options,
    cluster: Option<ClusterInfo>,
) -> (Vec<u8>, bool) {
    let err = |e: ApiError| (to_json_vec(&StreamInfoResponse::err(e)), true);
    let req: StreamInfoRequest = match parse_optional_request(body) {
        Ok(r) => r,
        Err(e) => return err(e),
    };
    let Some(s) = acc.streams.get(name) else {
        return err(ErrorId::StreamNotFound.error());
    };
    let mut info =
        s.info(with_dynamic(&s.cfg, COMPAT_VERSION, API_LEVEL as u32), req.deleted_details);
    info.domain = opts.jetstream.domain.clone().unwrap_or_default();
    info.state.consumers = acc.consumers.get(name).map_or(0, |m| m.len() as u64);
    info.cluster = cluster;
    let resp = if req.subjects_filter.is_empty() {
        StreamInfoResponse::ok(info)
    } else {
        let counts = s.store.subjects_totals(&SubjectFilter::subject(&req.subjects_filter));
        StreamInfoResponse::with_subjects(info, counts, req.offset)
    };
    (to_json_vec(&resp), false)
}

fn msg_get(acc: &AccountJs, name: &str, body: &[u8]) -> (Vec<u8>, bool) {
    let req = match check_msg_get_request(body) {
        Ok(r) => r,
        Err(e) => return (to_json_vec(&MsgGetResponse::err(e)), true),
    };
    let Some(s) = acc.streams.get(name) else {
        return (to_json_vec(&MsgGetResponse::err(ErrorId::StreamNotFound.error())), true);
    };
    let store = &*s.store;
    let found = match req.lookup(|t| seq_for_time(store, t.unix_nanos())) {
        MsgLookup::Seq(seq) => store.load(seq),
        MsgLookup::Next { subject, from } => {
            store.load_next(&SubjectFilter::subject(&subject), from)
        }
        MsgLookup::Last(subject) => store.load_last(&SubjectFilter::subject(&subject)),
    };
    match found {
        Ok(Some(m)) => {
            let msg = ApiStoredMsg {
                subject: m.subject,
                seq: m.seq,
                header: m.headers.unwrap_or_default(),
                data: m.payload,
                time: Timestamp::from_unix_nanos(m.timestamp),
            };
            (to_json_vec(&MsgGetResponse::ok(msg, &req)), false)
        }
        _ => (to_json_vec(&MsgGetResponse::not_found()), true),
    }
}

/// A direct get (ADR-31), as nats-server's `getDirectRequest`/`getDirectMulti` answer it.
fn direct_get(
    s: &Stream,
    subject: &str,
    headers_in: Option<&[u8]>,
    body: &[u8],
    opts: &Options,
) -> DirectReplies {
    if let Some(h) = headers_in
        && errors_on_required_level(headers::get(h, hdr::REQUIRED_API_LEVEL), API_LEVEL as u32)
    {
        return status(DirectStatus::RequiredApiLevel);
    }
    // `$JS.API.DIRECT.GET.<stream>` has five tokens; more means the subject form.
    let by_subject = subject.split('.').count() > 5;
    let req = if by_subject {
        check_direct_get_by_subject(subject, body)
    } else {
        check_direct_get_request(body)
    };
    let req = match req {
        Ok(r) => r,
        Err(st) => return status(st),
    };
    let max_bytes =
        if req.max_bytes > 0 { req.max_bytes as usize } else { opts.max_pending.max(1) };
    if !req.multi_last.is_empty() {
        return direct_multi(s, &req, max_bytes);
    }
    let store = &*s.store;
    let name = &s.cfg.name;
    let all = SubjectFilter::all();
    let mut seq = match req.start_time {
        Some(t) => seq_for_time(store, t.unix_nanos()),
        None => req.seq,
    };
    let next_filter = SubjectFilter::subject(&req.next_by_subject);
    let is_batch = req.batch > 0;
    let batch = req.batch.max(1);
    let mut np = if is_batch {
        let f = if req.next_by_subject.is_empty() { &all } else { &next_filter };
        match store.num_pending(seq, f, false) {
            Ok(n) => n,
            Err(_) => return Vec::new(),
        }
    } else {
        0
    };
    let mut out = DirectReplies::new();
    let (mut lseq, mut sent_bytes) = (0u64, 0usize);
    for i in 0..batch {
        let found = if seq > 0 && req.next_by_subject.is_empty() {
            let r = if i == 0 && !is_batch { store.load(seq) } else { store.load_next(&all, seq) };
            r.ok().flatten()
        } else if !req.next_by_subject.is_empty() {
            store.load_next(&next_filter, seq).ok().flatten()
        } else {
            store.load_last(&SubjectFilter::subject(&req.last_by_subject)).ok().flatten()
        };
        let Some(m) = found else {
            if batch > 1 && i > 0 {
                break;
            }
            return status(DirectStatus::NotFound);
        };
        seq = m.seq + 1;
        let stored_hdr = m.headers.as_deref().unwrap_or(b"");
        let h = if req.no_headers {
            None
        } else {
            let pos = is_batch.then(|| {
                np = np.saturating_sub(1);
                BatchPosition { num_pending: np, last_seq: lseq }
            });
            let time = Timestamp::from_unix_nanos(m.timestamp);
            Some(direct_get_header(name, &m.subject, m.seq, time, stored_hdr, pos))
        };
        lseq = m.seq;
        sent_bytes += m.subject.len() + stored_hdr.len() + m.payload.len();
        out.push((h, m.payload));
        if sent_bytes >= max_bytes {
            break;
        }
    }
    if is_batch {
        let eob = DirectStatus::EndOfBatch { num_pending: np, last_seq: lseq, up_to_seq: None };
        out.push((Some(eob.header()), Bytes::new()));
    }
    out
}

fn direct_multi(s: &Stream, req: &MsgGetRequest, max_bytes: usize) -> DirectReplies {
    let store = &*s.store;
    let st = store.state(false);
    let mut up_to = req.up_to_seq;
    if let Some(t) = req.up_to_time {
        up_to = seq_for_time(store, t.unix_nanos());
        if up_to <= st.first_seq {
            return status(DirectStatus::NoResults);
        }
        up_to -= 1;
    }
    if up_to == 0 {
        up_to = st.last_seq;
    }
    let filter = SubjectFilter::any_of(&req.multi_last);
    let subjects = store.subjects_state(&filter);
    if subjects.len() > MAX_MULTI_LAST {
        return status(DirectStatus::TooManyResults);
    }
    // The last message of each subject within [req.seq, up_to].
    let mut seqs: Vec<u64> = Vec::new();
    for (subj, ss) in &subjects {
        let last = if ss.last <= up_to {
            Some(ss.last)
        } else {
            let f = SubjectFilter::subject(subj);
            let mut last = None;
            let mut at = ss.first;
            while let Ok(Some(m)) = store.load_next(&f, at) {
                if m.seq > up_to {
                    break;
                }
                last = Some(m.seq);
                at = m.seq + 1;
            }
            last
        };
        if let Some(l) = last.filter(|l| *l >= req.seq) {
            seqs.push(l);
        }
    }
    if seqs.is_empty() {
        return status(DirectStatus::NoResults);
    }
    seqs.sort_unstable();
    let total = seqs.len() as u64;
    let mut out = DirectReplies::new();
    let (mut lseq, mut sent, mut sent_bytes) = (0u64, 0u64, 0usize);
    for seq in seqs {
        let Ok(Some(m)) = store.load(seq) else {
            return status(DirectStatus::NotFound);
        };
        let stored_hdr = m.headers.as_deref().unwrap_or(b"");
        let pos = BatchPosition { num_pending: total - sent - 1, last_seq: lseq };
        let time = Timestamp::from_unix_nanos(m.timestamp);
        let h = direct_get_header(&s.cfg.name, &m.subject, m.seq, time, stored_hdr, Some(pos));
        lseq = m.seq;
        sent_bytes += m.subject.len() + stored_hdr.len() + m.payload.len();
        out.push((Some(h), m.payload));
        sent += 1;
        if sent_bytes >= max_bytes || (req.batch > 0 && sent >= req.batch as u64) {
            break;
        }
    }
    let eob = DirectStatus::EndOfBatch {
        num_pending: total - sent,
        last_seq: lseq,
        up_to_seq: Some(up_to),
    };
    out.push((Some(eob.header()), Bytes::new()));
    out
}
