//! The meta group's state on the runtime thread: which streams exist in the cluster, where
//! their replicas are, and the API requests the meta leader answers (nats-server's
//! `jetstream_cluster.go` stream assignments and `jsClustered*` request paths).
//!
//! ```text
//!  STREAM.CREATE (heard by every server) ─► meta leader: checks, placement ─► propose Add
//!      every server applies Add: a peer of the stream opens its replica (replica.rs) and
//!      starts its member of the stream group; the meta leader answers once the group has a
//!      leader that reports the stream's info
//! ```
//!
//! Every server hears every `$JS.API` request (the API subscriptions are advertised over
//! the routes) and the one responsible answers: the meta leader for the account-wide
//! requests (create, update, delete, names, list, account info), a stream's leader for the
//! stream's own (info, purge, messages, consumers). When there is no meta leader, the
//! server the client is connected to answers 10008 "JetStream system temporarily
//! unavailable".
//!
//! Commands are JSON (they carry stream configs, whose serde shape is JSON's). The state is
//! persisted in the raft log's metadata with the position it was applied at, in the same
//! database as the log (one WAL: a crash keeps a prefix of both).

use std::collections::BTreeMap;
use std::sync::Arc;

use chorus_conf::Options;
use chorus_jetstream::api::account::{AccountInfo, AccountInfoResponse, ApiStats, Tier, untiered};
use chorus_jetstream::api::stream::{
    StreamCreateResponse, StreamDeleteResponse, StreamInfo, StreamListRequest, StreamListResponse,
    StreamUpdateResponse, check_delete_request, list_page, names_page, parse_optional_request,
    parse_request,
};
use chorus_jetstream::api::subjects::ApiEndpoint;
use chorus_jetstream::go::to_json_vec;
use chorus_jetstream::stream::check::{
    CheckContext, CreateOutcome, StreamLookup, check_create, check_update,
};
use chorus_jetstream::stream::config::{StorageType, StreamConfig, StreamConfigRequest};
use chorus_jetstream::stream::metadata::with_dynamic;
use chorus_jetstream::{ApiError, ErrorId};
use chorus_raft::types::{LogId, StoredMembership};
use chorus_raft::{Applied, Committed, NodeId, Payload, Resp};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::cluster::{Cluster, META_GROUP};
use super::internal::InternalMsg;
use super::replica::{Awaiting, Replica};
use super::stream::{now_nanos, unsupported_feature};
use super::{AccountJs, Runtime};
use crate::info::{API_LEVEL, COMPAT_VERSION};

/// Where a stream lives: nats-server's `streamAssignment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StreamAssignment {
    pub account: String,
    pub config: StreamConfig,
    /// Unix nanos, chosen by the meta leader.
    pub created: i64,
    /// The stream group's name (`S-R3F-abcd1234`).
    pub group: String,
    /// Its members' node ids, and their server names when placed.
    pub peers: Vec<NodeId>,
    pub names: Vec<String>,
}

impl StreamAssignment {
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.account, self.config.name)
    }
}

/// The meta group's applied state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct MetaState {
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
    /// Streams by `<account>/<stream>`.
    pub streams: BTreeMap<String, StreamAssignment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum MetaCmd {
    /// A new leader's first command (see `cluster::watch`).
    Barrier,
    Add(StreamAssignment),
    Update {
        account: String,
        stream: String,
        config: StreamConfig,
    },
    Delete {
        account: String,
        stream: String,
    },
}

pub(crate) fn encode(cmd: &MetaCmd) -> Vec<u8> {
    serde_json::to_vec(cmd).expect("meta commands serialise")
}

/// The runtime thread's part of clustered JetStream.
pub(crate) struct ClusterRt {
    pub ctl: Arc<Cluster>,
    pub meta: MetaState,
    pub meta_leader: Option<NodeId>,
    pub meta_leading: bool,
    /// This server's stream replicas, by group name.
    pub replicas: FxHashMap<String, Replica>,
    /// Replies owed once a proposal of this server applies, by proposal id.
    pub awaiting: FxHashMap<u64, Awaiting>,
    pub next_id: u64,
}

impl ClusterRt {
    pub(crate) fn new(ctl: Arc<Cluster>) -> ClusterRt {
        let meta = match ctl_log_meta(&ctl) {
            Ok(Some(m)) => m,
            Ok(None) => MetaState::default(),
            Err(e) => {
                tracing::error!("JetStream cluster: the meta state is unreadable: {e}");
                MetaState::default()
            }
        };
        ClusterRt {
            ctl,
            meta,
            meta_leader: None,
            meta_leading: false,
            replicas: FxHashMap::default(),
            awaiting: FxHashMap::default(),
            next_id: 0,
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The streams of `account`.
    pub(crate) fn account_streams<'a>(
        &'a self,
        account: &'a str,
    ) -> impl Iterator<Item = &'a StreamAssignment> + 'a {
        let prefix = format!("{account}/");
        self.meta
            .streams
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, a)| a)
    }

    pub(crate) fn assignment(&self, account: &str, stream: &str) -> Option<&StreamAssignment> {
        self.meta.streams.get(&format!("{account}/{stream}"))
    }

    /// Whom a stepdown of a group with members `peers` hands the lead to, as nats-server
    /// chooses: the request's `placement.preferred` (a server name) when given, else a
    /// connected member other than this server, at random. `None`: nobody to hand to; the
    /// first follower to time out takes over.
    pub(crate) fn stepdown_target(
        &self,
        srv: &crate::server::ServerInner,
        body: &[u8],
        peers: &[NodeId],
    ) -> Result<Option<NodeId>, ApiError> {
        #[derive(Deserialize)]
        struct Request {
            #[serde(default)]
            placement: Option<PreferredPlacement>,
        }
        #[derive(Deserialize)]
        struct PreferredPlacement {
            #[serde(default)]
            preferred: String,
        }
        let body = body.trim_ascii();
        let mut preferred = String::new();
        if body.first().is_some_and(|b| *b == b'{' || *b == b'[') {
            let req: Request =
                serde_json::from_slice(body).map_err(|e| ErrorId::InvalidJSON.with_err(e))?;
            preferred = req.placement.map(|p| p.preferred).unwrap_or_default();
        }
        let me = self.ctl.node;
        if !preferred.is_empty() {
            return match peers.iter().find(|p| self.server_name(srv, **p) == preferred) {
                Some(p) if *p == me => Err(ErrorId::ClusterNoPeers
                    .with_err(format!("preferred server {preferred:?} is already leader"))),
                Some(p) => Ok(Some(*p)),
                None => Err(ErrorId::ClusterNoPeers
                    .with_err(format!("preferred server {preferred:?} not known"))),
            };
        }
        let connected: Vec<NodeId> =
            srv.routes.raft_peers().into_iter().map(|(id, _)| id).collect();
        let candidates: Vec<NodeId> =
            peers.iter().copied().filter(|p| *p != me && connected.contains(p)).collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let draw = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos() as usize;
        Ok(Some(candidates[draw % candidates.len()]))
    }

    /// The server name of a node: from the routes, else from the assignments.
    pub(crate) fn server_name(&self, srv: &crate::server::ServerInner, node: NodeId) -> String {
        if node == self.ctl.node {
            return srv.name.clone();
        }
        if let Some((_, n)) = srv.routes.raft_peers().into_iter().find(|(id, _)| *id == node) {
            return n;
        }
        if let Some(n) = self.meta.membership.membership().get_node(&node) {
            return n.server.clone();
        }
        for a in self.meta.streams.values() {
            if let Some(i) = a.peers.iter().position(|p| *p == node) {
                return a.names[i].clone();
            }
        }
        super::cluster::peer_id(node)
    }
}

fn ctl_log_meta(ctl: &Cluster) -> Result<Option<MetaState>, String> {
    match ctl.log_meta(META_GROUP, "state").map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| e.to_string()),
    }
}

/// The account's streams as the create and update checks see them: the cluster's.
struct MetaLookup<'a>(Vec<&'a StreamConfig>);

impl StreamLookup for MetaLookup<'_> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        self.0.iter().copied().find(|c| c.name == name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.0.iter().copied())
    }
}

/// A random group name the way nats-server makes them: `S-R<replicas><F|M>-<8 chars>`.
fn group_name(cfg: &StreamConfig) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..8)
        .map(|_| ALPHABET[(rand::random::<u32>() as usize) % ALPHABET.len()] as char)
        .collect();
    let kind = if cfg.storage == StorageType::Memory { 'M' } else { 'F' };
    format!("S-R{}{kind}-{tail}", cfg.num_replicas.max(1))
}

impl Runtime {
    pub(super) fn meta_applied(&self) -> Applied {
        let c = self.cluster.as_ref().expect("clustered");
        Applied { log_id: c.meta.applied, membership: c.meta.membership.clone() }
    }

    fn persist_meta(&self) -> Result<(), String> {
        let c = self.cluster.as_ref().expect("clustered");
        let blob = serde_json::to_vec(&c.meta).map_err(|e| e.to_string())?;
        c.ctl.put_log_meta(META_GROUP, "state", &blob).map_err(|e| e.to_string())
    }

    pub(super) fn meta_snapshot(&mut self) -> Result<(Applied, Vec<u8>), String> {
        // What the log behind the snapshot held must be on disk before openraft purges it.
        self.store.sync().map_err(|e| e.to_string())?;
        let c = self.cluster.as_ref().expect("clustered");
        let blob = serde_json::to_vec(&c.meta.streams).map_err(|e| e.to_string())?;
        Ok((self.meta_applied(), blob))
    }

    pub(super) fn meta_install(&mut self, at: Applied, data: &[u8]) -> Result<(), String> {
        let streams: BTreeMap<String, StreamAssignment> =
            serde_json::from_slice(data).map_err(|e| format!("bad meta snapshot: {e}"))?;
        let old: Vec<String> = {
            let c = self.cluster.as_ref().expect("clustered");
            c.meta.streams.keys().filter(|k| !streams.contains_key(*k)).cloned().collect()
        };
        for key in old {
            let sa = self.cluster.as_mut().expect("clustered").meta.streams.remove(&key);
            if let Some(sa) = sa {
                self.drop_assignment(&sa);
            }
        }
        for sa in streams.into_values() {
            self.add_assignment(sa);
        }
        let c = self.cluster.as_mut().expect("clustered");
        c.meta.applied = at.log_id;
        c.meta.membership = at.membership;
        self.persist_meta()
    }

    /// Applies committed meta entries, in order.
    pub(super) fn apply_meta(&mut self, entries: Vec<Committed>) -> Result<Vec<Resp>, String> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match e.payload {
                Payload::Blank => {}
                Payload::Membership(m) => {
                    self.cluster.as_mut().expect("clustered").meta.membership = m;
                }
                Payload::Command(c) => match serde_json::from_slice::<MetaCmd>(&c) {
                    Ok(MetaCmd::Barrier) => {}
                    Ok(MetaCmd::Add(sa)) => self.add_assignment(sa),
                    Ok(MetaCmd::Update { account, stream, config }) => {
                        self.update_assignment(&account, &stream, config)
                    }
                    Ok(MetaCmd::Delete { account, stream }) => {
                        let key = format!("{account}/{stream}");
                        let sa =
                            self.cluster.as_mut().expect("clustered").meta.streams.remove(&key);
                        if let Some(sa) = sa {
                            self.drop_assignment(&sa);
                        }
                    }
                    // A command this build does not know would make replicas diverge.
                    Err(e) => return Err(format!("undecodable meta command: {e}")),
                },
            }
            self.cluster.as_mut().expect("clustered").meta.applied = Some(e.log_id);
            out.push(Resp(Vec::new()));
        }
        self.persist_meta()?;
        Ok(out)
    }

    /// A stream assigned (or re-assigned at recovery): a peer opens its replica.
    pub(super) fn add_assignment(&mut self, sa: StreamAssignment) {
        let c = self.cluster.as_mut().expect("clustered");
        let key = sa.key();
        let mine = sa.peers.contains(&c.ctl.node);
        c.meta.streams.insert(key, sa.clone());
        if mine {
            self.open_replica(&sa);
        }
    }

    fn update_assignment(&mut self, account: &str, stream: &str, config: StreamConfig) {
        let key = format!("{account}/{stream}");
        let c = self.cluster.as_mut().expect("clustered");
        let Some(sa) = c.meta.streams.get_mut(&key) else { return };
        sa.config = config;
        let group = sa.group.clone();
        // The stream's own log orders the change among its messages: its leader proposes it
        // (a new leader checks the config it applied against the assignment too).
        self.reconcile_config(&group);
    }

    fn drop_assignment(&mut self, sa: &StreamAssignment) {
        self.close_replica(sa, true);
    }

    /// The meta group's leader changed (or this server's role in it).
    pub(super) fn meta_role(&mut self, leading: bool, leader: Option<NodeId>) {
        let Some(c) = self.cluster.as_mut() else { return };
        if leading && !c.meta_leading {
            tracing::info!("JetStream cluster: this server leads the meta group");
        }
        c.meta_leading = leading;
        c.meta_leader = leader;
    }

    /// Whether this server answers `ep` in the cluster: `Some(true)` when it does, `Some(false)`
    /// when another server does, `None` when the cluster cannot (no meta leader).
    pub(super) fn cluster_answers(
        &self,
        acc: &AccountJs,
        ep: &ApiEndpoint,
        subject: &str,
    ) -> Option<bool> {
        let c = self.cluster.as_ref()?;
        let stream = match ep {
            ApiEndpoint::StreamInfo { stream }
            | ApiEndpoint::StreamPurge { stream }
            | ApiEndpoint::StreamMsgGet { stream }
            | ApiEndpoint::StreamMsgDelete { stream }
            | ApiEndpoint::StreamLeaderStepdown { stream }
            | ApiEndpoint::StreamPeerRemove { stream }
            | ApiEndpoint::DirectGet { stream }
            | ApiEndpoint::DirectGetLastBySubject { stream, .. } => Some(stream.clone()),
            ApiEndpoint::Other if subject.starts_with("$JS.API.CONSUMER.") => {
                consumer_stream(subject)
            }
            _ => None,
        };
        c.meta_leader?;
        match stream {
            // Unknown streams are the meta leader's to answer ("stream not found").
            Some(s) => match c.assignment(&acc.account.name, &s) {
                Some(sa) => Some(self.leads_replica(&sa.group)),
                None => Some(c.meta_leading),
            },
            None => Some(c.meta_leading),
        }
    }

    /// The account-wide requests the meta leader answers. Returns false for the rest.
    pub(super) fn meta_api(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        ep: &ApiEndpoint,
        opts: &Options,
    ) -> bool {
        let body: &[u8] = &m.payload;
        match ep {
            ApiEndpoint::StreamCreate { stream } => {
                self.cluster_stream_create(acc, m, subject, stream, body, opts)
            }
            ApiEndpoint::StreamUpdate { stream } => {
                self.cluster_stream_update(acc, m, subject, stream, body, opts)
            }
            ApiEndpoint::StreamDelete { stream } => {
                let err = |e: ApiError| to_json_vec(&StreamDeleteResponse::err(e));
                if let Err(e) = check_delete_request(body) {
                    self.api_answer(acc, m, subject, err(e), true, opts);
                    return true;
                }
                let c = self.cluster.as_ref().expect("clustered");
                if c.assignment(&acc.account.name, stream).is_none() {
                    self.api_answer(
                        acc,
                        m,
                        subject,
                        err(ErrorId::StreamNotFound.error()),
                        true,
                        opts,
                    );
                    return true;
                }
                let cmd = encode(&MetaCmd::Delete {
                    account: acc.account.name.clone(),
                    stream: stream.clone(),
                });
                let (account, msg, subj) =
                    (acc.account.name.clone(), m.clone(), subject.to_string());
                c.ctl.clone().propose(META_GROUP, cmd, move |rt, r| {
                    let body = match r {
                        Ok(_) => to_json_vec(&StreamDeleteResponse::ok()),
                        Err(_) => err(ErrorId::ClusterNotAvail.error()),
                    };
                    rt.answer_later(&account, &msg, &subj, body);
                });
            }
            ApiEndpoint::StreamNames => {
                let req = match parse_optional_request::<StreamListRequest>(body) {
                    Ok(r) => r,
                    Err(e) => {
                        let b = super::api::error_body(ep, e);
                        self.api_answer(acc, m, subject, b, true, opts);
                        return true;
                    }
                };
                let c = self.cluster.as_ref().expect("clustered");
                let configs: Vec<&StreamConfig> =
                    c.account_streams(&acc.account.name).map(|a| &a.config).collect();
                let b = to_json_vec(&names_page(configs, &req));
                self.api_answer(acc, m, subject, b, false, opts);
            }
            ApiEndpoint::StreamList => {
                let req = match parse_optional_request::<StreamListRequest>(body) {
                    Ok(r) => r,
                    Err(e) => {
                        let b = super::api::error_body(ep, e);
                        self.api_answer(acc, m, subject, b, true, opts);
                        return true;
                    }
                };
                let (account, msg, subj) =
                    (acc.account.name.clone(), m.clone(), subject.to_string());
                self.gather_infos(&acc.account.name, move |rt, infos, missing| {
                    let mut resp: StreamListResponse = list_page(infos, &req);
                    resp.missing = missing;
                    rt.answer_later(&account, &msg, &subj, to_json_vec(&resp));
                });
            }
            ApiEndpoint::AccountInfo => {
                let (account, msg, subj) =
                    (acc.account.name.clone(), m.clone(), subject.to_string());
                let limits = acc.limits;
                let (total, errors) = (acc.api_total, acc.api_errors);
                let domain = opts.jetstream.domain.clone().unwrap_or_default();
                self.gather_infos(&acc.account.name, move |rt, infos, _| {
                    let mut t = Tier { limits, ..Default::default() };
                    for i in &infos {
                        let reserved = i.config.max_bytes.max(0) as u64;
                        match i.config.storage {
                            StorageType::Memory => {
                                t.memory += i.state.bytes;
                                t.reserved_memory += reserved;
                            }
                            StorageType::File => {
                                t.storage += i.state.bytes;
                                t.reserved_storage += reserved;
                            }
                        }
                        t.streams += 1;
                        t.consumers += i.state.consumers;
                    }
                    let info = AccountInfo {
                        totals: t,
                        domain,
                        api: ApiStats { level: API_LEVEL as u32, total, errors, inflight: 0 },
                        tiers: BTreeMap::new(),
                    };
                    rt.answer_later(
                        &account,
                        &msg,
                        &subj,
                        to_json_vec(&AccountInfoResponse::ok(info)),
                    );
                });
            }
            ApiEndpoint::Other if subject == "$JS.API.META.LEADER.STEPDOWN" => {
                const KIND: &str = "io.nats.jetstream.api.v1.meta_leader_stepdown_response";
                let c = self.cluster.as_ref().expect("clustered");
                let voters: Vec<NodeId> = c.meta.membership.membership().voter_ids().collect();
                let b = match c.stepdown_target(&self.srv, &m.payload, &voters) {
                    Ok(target) => {
                        c.ctl.clone().step_down(META_GROUP, target);
                        format!(r#"{{"type":"{KIND}","success":true}}"#).into_bytes()
                    }
                    Err(e) => super::api::generic_error(KIND, &e),
                };
                self.api_answer(acc, m, subject, b, false, opts);
            }
            _ => return false,
        }
        true
    }

    fn cluster_check_ctx_limits(
        &self,
        acc: &AccountJs,
        opts: &Options,
    ) -> chorus_jetstream::stream::check::ServerLimits {
        self.server_limits(acc, opts)
    }

    fn cluster_stream_create(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        name: &str,
        body: &[u8],
        opts: &Options,
    ) {
        let err = |e: ApiError| to_json_vec(&StreamCreateResponse::err(e));
        let req: StreamConfigRequest = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return self.api_answer(acc, m, subject, err(e), true, opts),
        };
        let server = self.cluster_check_ctx_limits(acc, opts);
        let account_limits = untiered(acc.limits);
        let c = self.cluster.as_ref().expect("clustered");
        let lookup = MetaLookup(c.account_streams(&acc.account.name).map(|a| &a.config).collect());
        let ctx = CheckContext {
            clustered: true,
            server: &server,
            account: &account_limits,
            streams: &lookup,
        };
        let cfg = match check_create(name, &req, &ctx) {
            Err(e) => return self.api_answer(acc, m, subject, err(e), true, opts),
            Ok(CreateOutcome::Exists(_)) => {
                let (account, msg, subj) =
                    (acc.account.name.clone(), m.clone(), subject.to_string());
                self.stream_info_of(&acc.account.name, name, move |rt, info| {
                    let body = match info {
                        Some(i) => to_json_vec(&StreamCreateResponse::ok(i)),
                        None => err(ErrorId::ClusterNotAvail.error()),
                    };
                    rt.answer_later(&account, &msg, &subj, body);
                });
                return;
            }
            Ok(CreateOutcome::Create(cfg)) => cfg,
        };
        if let Some(what) = unsupported_feature(&cfg) {
            let e = ErrorId::StreamCreate
                .with_err(format!("{what} are not supported by this server yet"));
            return self.api_answer(acc, m, subject, err(e), true, opts);
        }
        let peers = match self.place(&cfg) {
            Ok(p) => p,
            Err(e) => return self.api_answer(acc, m, subject, err(e), true, opts),
        };
        let c = self.cluster.as_ref().expect("clustered");
        let names = peers.iter().map(|p| c.server_name(&self.srv, *p)).collect();
        let sa = StreamAssignment {
            account: acc.account.name.clone(),
            group: group_name(&cfg),
            config: cfg,
            created: now_nanos(),
            peers,
            names,
        };
        let cmd = encode(&MetaCmd::Add(sa));
        let (account, msg, subj, stream) =
            (acc.account.name.clone(), m.clone(), subject.to_string(), name.to_string());
        c.ctl.clone().propose(META_GROUP, cmd, move |rt, r| {
            if r.is_err() {
                rt.answer_later(&account, &msg, &subj, err(ErrorId::ClusterNotAvail.error()));
                return;
            }
            let (a2, m2, s2) = (account.clone(), msg.clone(), subj.clone());
            rt.stream_info_when_ready(&account, &stream, move |rt, info| {
                let body = match info {
                    Some(i) => to_json_vec(&StreamCreateResponse::ok(i)),
                    None => err(ErrorId::ClusterNotAvail.error()),
                };
                rt.answer_later(&a2, &m2, &s2, body);
            });
        });
    }

    fn cluster_stream_update(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        name: &str,
        body: &[u8],
        opts: &Options,
    ) {
        let err = |e: ApiError| to_json_vec(&StreamUpdateResponse::err(e));
        let req: StreamConfigRequest = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return self.api_answer(acc, m, subject, err(e), true, opts),
        };
        let server = self.cluster_check_ctx_limits(acc, opts);
        let account_limits = untiered(acc.limits);
        let c = self.cluster.as_ref().expect("clustered");
        let lookup = MetaLookup(c.account_streams(&acc.account.name).map(|a| &a.config).collect());
        let ctx = CheckContext {
            clustered: true,
            server: &server,
            account: &account_limits,
            streams: &lookup,
        };
        let cfg = match check_update(name, &req, &ctx, &[]) {
            Ok(c) => c,
            Err(e) => return self.api_answer(acc, m, subject, err(e), true, opts),
        };
        if let Some(what) = unsupported_feature(&cfg) {
            let e = ErrorId::StreamUpdate
                .with_err(format!("{what} are not supported by this server yet"));
            return self.api_answer(acc, m, subject, err(e), true, opts);
        }
        let old = c.assignment(&acc.account.name, name).map(|a| a.config.num_replicas.max(1));
        if old.is_some_and(|r| r != cfg.num_replicas.max(1)) {
            let e = ErrorId::StreamUpdate
                .with_err("changing a stream's replicas is not supported by this server yet");
            return self.api_answer(acc, m, subject, err(e), true, opts);
        }
        let cmd = encode(&MetaCmd::Update {
            account: acc.account.name.clone(),
            stream: name.to_string(),
            config: cfg.clone(),
        });
        let (account, msg, subj, stream) =
            (acc.account.name.clone(), m.clone(), subject.to_string(), name.to_string());
        c.ctl.clone().propose(META_GROUP, cmd, move |rt, r| {
            if r.is_err() {
                rt.answer_later(&account, &msg, &subj, err(ErrorId::ClusterNotAvail.error()));
                return;
            }
            let (a2, m2, s2) = (account.clone(), msg.clone(), subj.clone());
            rt.stream_info_of(&account, &stream, move |rt, info| {
                let body = match info {
                    Some(mut i) => {
                        // The leader may not have applied the change yet: the answer shows it.
                        i.config = with_dynamic(&cfg, COMPAT_VERSION, API_LEVEL as u32);
                        to_json_vec(&StreamUpdateResponse::ok(i))
                    }
                    None => err(ErrorId::ClusterNotAvail.error()),
                };
                rt.answer_later(&a2, &m2, &s2, body);
            });
        });
    }

    /// Picks the servers of a new stream: the meta group's members that are up, fewest
    /// streams first (nats-server places by available resources; ties broken at random).
    fn place(&self, cfg: &StreamConfig) -> Result<Vec<NodeId>, ApiError> {
        let c = self.cluster.as_ref().expect("clustered");
        let want = cfg.num_replicas.max(1) as usize;
        let up: Vec<NodeId> = self.srv.routes.raft_peers().into_iter().map(|(id, _)| id).collect();
        let mut candidates: Vec<(usize, u32, NodeId)> = c
            .meta
            .membership
            .membership()
            .voter_ids()
            .filter(|id| *id == c.ctl.node || up.contains(id))
            .map(|id| {
                let load = c.meta.streams.values().filter(|a| a.peers.contains(&id)).count();
                (load, rand::random::<u32>(), id)
            })
            .collect();
        if candidates.len() < want {
            // nats-server's text, without its reasons (which peers lacked what).
            return Err(ErrorId::ClusterNoPeers.with_err("no suitable peers for placement"));
        }
        candidates.sort();
        Ok(candidates.into_iter().take(want).map(|(_, _, id)| id).collect())
    }

    /// An API answer produced after a proposal or a question to a peer came back.
    pub(super) fn answer_later(
        &mut self,
        account: &str,
        m: &InternalMsg,
        subject: &str,
        body: Vec<u8>,
    ) {
        let Some(mut acc) = self.accounts.remove(account) else {
            // Called while the account is out of the map (an answer that was ready at once,
            // inside the request's handler): answered right after it.
            let (account, m, subject) = (account.to_string(), m.clone(), subject.to_string());
            self.sink.call(Box::new(move |rt: &mut Runtime| {
                if rt.accounts.contains_key(&account) {
                    rt.answer_later(&account, &m, &subject, body);
                }
            }));
            return;
        };
        let opts = self.srv.opts();
        let err = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| v.get("error").is_some());
        self.api_answer(&mut acc, m, subject, body, err, &opts);
        self.accounts.insert(acc.account.name.clone(), acc);
        self.commit(false);
    }

    /// The info of one stream, from its leader (here or asked).
    pub(super) fn stream_info_of(
        &mut self,
        account: &str,
        stream: &str,
        done: impl FnOnce(&mut Runtime, Option<StreamInfo>) + Send + 'static,
    ) {
        let c = self.cluster.as_ref().expect("clustered");
        let Some(sa) = c.assignment(account, stream).cloned() else {
            return done(self, None);
        };
        if self.leads_replica(&sa.group) {
            let info = self.local_stream_info(account, stream, false);
            return done(self, info);
        }
        let body = serde_json::to_vec(&(account, stream)).expect("serialises");
        c.ctl.clone().ask(sa.peers.clone(), "si", body, move |rt, answer| {
            let info = answer.and_then(|b| serde_json::from_slice::<StreamInfo>(&b).ok());
            done(rt, info)
        });
    }

    /// Like [`Runtime::stream_info_of`] for a stream just created: waits (up to 5 s) for its
    /// group to have a leader.
    fn stream_info_when_ready(
        &mut self,
        account: &str,
        stream: &str,
        done: impl FnOnce(&mut Runtime, Option<StreamInfo>) + Send + 'static,
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        self.retry_info(account.to_string(), stream.to_string(), deadline, Box::new(done));
    }

    fn retry_info(
        &mut self,
        account: String,
        stream: String,
        deadline: std::time::Instant,
        done: InfoDone,
    ) {
        let (a, s) = (account.clone(), stream.clone());
        self.stream_info_of(&account, &stream, move |rt, info| {
            if info.is_some() || std::time::Instant::now() >= deadline {
                return done(rt, info);
            }
            let Some(c) = rt.cluster.as_ref() else { return done(rt, None) };
            let (ctl, sink) = (c.ctl.clone(), rt.sink.clone());
            ctl.rt.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                sink.call(Box::new(move |rt: &mut Runtime| rt.retry_info(a, s, deadline, done)));
            });
        });
    }

    /// The infos of every stream of `account` (for STREAM.LIST and account info); the ones
    /// no leader answered for are `missing`.
    fn gather_infos(
        &mut self,
        account: &str,
        done: impl FnOnce(&mut Runtime, Vec<StreamInfo>, Vec<String>) + Send + 'static,
    ) {
        let c = self.cluster.as_ref().expect("clustered");
        let names: Vec<String> =
            c.account_streams(account).map(|a| a.config.name.clone()).collect();
        if names.is_empty() {
            return done(self, Vec::new(), Vec::new());
        }
        let gather = Arc::new(std::sync::Mutex::new(Gather {
            left: names.len(),
            infos: Vec::new(),
            missing: Vec::new(),
            done: Some(Box::new(done)),
        }));
        for name in names {
            let g = gather.clone();
            let n = name.clone();
            self.stream_info_of(account, &name, move |rt, info| {
                let finished = {
                    let mut g = g.lock().unwrap();
                    match info {
                        Some(i) => g.infos.push(i),
                        None => g.missing.push(n),
                    }
                    g.left -= 1;
                    (g.left == 0).then(|| {
                        (
                            g.done.take(),
                            std::mem::take(&mut g.infos),
                            std::mem::take(&mut g.missing),
                        )
                    })
                };
                if let Some((Some(f), infos, missing)) = finished {
                    f(rt, infos, missing);
                }
            });
        }
    }

    /// A question from another server (see `Cluster::ask`).
    pub(super) fn answer_peer(&mut self, _from: NodeId, topic: &str, body: &[u8]) -> Vec<u8> {
        match topic {
            "si" => {
                let Ok((account, stream)) = serde_json::from_slice::<(String, String)>(body) else {
                    return Vec::new();
                };
                let Some(c) = self.cluster.as_ref() else { return Vec::new() };
                let Some(sa) = c.assignment(&account, &stream) else { return Vec::new() };
                if !self.leads_replica(&sa.group.clone()) {
                    return Vec::new();
                }
                self.local_stream_info(&account, &stream, false)
                    .map(|i| to_json_vec(&i))
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// This server's view of a stream it leads, with the cluster block.
    pub(super) fn local_stream_info(
        &mut self,
        account: &str,
        stream: &str,
        details: bool,
    ) -> Option<StreamInfo> {
        let acc = self.accounts.get(account)?;
        let s = acc.streams.get(stream)?;
        let mut info = s.info(with_dynamic(&s.cfg, COMPAT_VERSION, API_LEVEL as u32), details);
        info.domain = self.srv.opts().jetstream.domain.clone().unwrap_or_default();
        info.state.consumers = acc.consumers.get(stream).map_or(0, |m| m.len() as u64);
        info.cluster = self.cluster_info_of(s);
        Some(info)
    }

    /// `$JS.API` requests when the cluster has no meta leader: the server the client is
    /// connected to says so (10008); the others stay quiet.
    pub(super) fn cluster_unavailable(
        &mut self,
        acc: &mut AccountJs,
        m: &InternalMsg,
        subject: &str,
        ep: &ApiEndpoint,
        opts: &Options,
    ) {
        if m.routed {
            return;
        }
        let e = ErrorId::ClusterNotAvail.error();
        let b = match super::api::consumer_type(subject) {
            Some(t) => super::api::generic_error(t, &e),
            None => super::api::error_body(ep, e),
        };
        self.api_answer(acc, m, subject, b, true, opts);
    }
}

/// The stream a `$JS.API.CONSUMER.*` request is about.
fn consumer_stream(subject: &str) -> Option<String> {
    use chorus_jetstream::consumer::api::{ConsumerEndpoint, parse_endpoint};
    if let Some(Ok(cs)) = chorus_jetstream::consumer::check::parse_create_subject(subject) {
        return Some(cs.stream);
    }
    match parse_endpoint(subject)? {
        ConsumerEndpoint::Info { stream, .. }
        | ConsumerEndpoint::Delete { stream, .. }
        | ConsumerEndpoint::Names { stream }
        | ConsumerEndpoint::List { stream }
        | ConsumerEndpoint::Pause { stream, .. }
        | ConsumerEndpoint::Unpin { stream, .. }
        | ConsumerEndpoint::LeaderStepdown { stream, .. }
        | ConsumerEndpoint::Next { stream, .. }
        | ConsumerEndpoint::Reset { stream, .. } => Some(stream),
        _ => None,
    }
}

/// What runs with a stream's info once it is known.
type InfoDone = Box<dyn FnOnce(&mut Runtime, Option<StreamInfo>) + Send>;

struct Gather {
    left: usize,
    infos: Vec<StreamInfo>,
    missing: Vec<String>,
    #[allow(clippy::type_complexity)]
    done: Option<Box<dyn FnOnce(&mut Runtime, Vec<StreamInfo>, Vec<String>) + Send>>,
}
