//! A stream replica in a cluster: this server's copy of a stream whose changes come from its
//! raft group (nats-server's `jetstream_cluster.go` `processClusteredInboundMsg` and
//! `applyStreamEntries`).
//!
//! ```text
//!  leader: publish ─► decide what only it can (account limits, interest: `keep`) ─► batch
//!          end of the runtime batch: ONE entry per stream [Msgs{ts, msgs}, Drop, ConsumerSnap…]
//!            ─► propose (cluster.rs) ─► committed on a quorum's disks ─► apply, every replica:
//!  apply:  Stream::publish(ts from the entry) — the same checks and store code as a single
//!          server — then the PubAcks this server owes (only the proposer has them)
//! ```
//!
//! What a replica applies depends only on the entry and its state: the timestamp is the
//! leader's, the checks (dedupe window, expected-* headers, limits) run on the applied state,
//! and what depends on this server (account usage across streams, consumers' interest) is
//! decided by the leader and carried in the entry. A PubAck leaves after the entry is
//! committed (on a quorum's disks: the raft log is fsynced before openraft hears it is
//! saved) and applied here; the stream store's own writes are not synced for it, since the
//! log replays them.
//!
//! Consumers run on the stream's leader only. Their state is replicated as snapshots
//! (`ConsumerSnap`, at most one per consumer per batch, in the same entry as the batch's
//! messages), retention removals their acks cause as `Drop`; a new leader brings the
//! consumers back from the last snapshots (so at most what was acked since the last one is
//! redelivered: at-least-once, as nats-server).
//!
//! Expiry (max age, TTLs, the duplicate window) runs on the leader's clock and reaches the
//! replicas as `Tick{now}`; followers run no timers.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chorus_jetstream::api::stream::{ClusterInfo, PeerInfo};
use chorus_jetstream::consumer::{Consumer, ConsumerSnapshot, Event};
use chorus_jetstream::go::Timestamp;
use chorus_jetstream::stream::config::{StorageType, StreamConfig};
use chorus_raft::types::{LogId, StoredMembership};
use chorus_raft::{Applied, Committed, NodeId, Payload, PeerNode, Resp};
use chorus_store::{StorageKind, StreamStore};
use serde::{Deserialize, Serialize};

use super::consumer::StoreView;
use super::internal::InternalMsg;
use super::meta::StreamAssignment;
use super::stream::{Definition, Stream, now_nanos};
use super::{AccountJs, Reply, Runtime, subscribe_stream, unsubscribe_all};
use crate::account::Account;

/// Most proposals of one stream in flight; past it a batch's messages wait in `outgoing`.
const MAX_INFLIGHT: usize = 64;
/// Most bytes of messages waiting to be proposed for one stream; past it publishes are
/// refused (the leader cannot get them committed as fast as they come).
const MAX_OUTGOING_BYTES: usize = 64 * 1024 * 1024;

/// One published message in an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PMsg {
    pub subject: String,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    /// Interest retention: whether a consumer wants it (the leader's view).
    pub keep: bool,
}

/// What a stream group's entries carry (one entry holds a list of them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StreamCmd {
    /// A new leader's first entry (see `cluster::watch`).
    Barrier,
    /// Published messages, stored at `ts` (unix nanos, the leader's clock). `id` names the
    /// PubAcks the proposer (`origin`) owes.
    Msgs {
        origin: NodeId,
        id: u64,
        ts: i64,
        msgs: Vec<PMsg>,
    },
    /// Expiry and the duplicate window at the leader's `now`.
    Tick {
        now: i64,
    },
    /// A purge or message delete request (its JSON body), answered by the proposer.
    Api {
        origin: NodeId,
        id: u64,
        op: ApiOp,
        body: Vec<u8>,
    },
    /// Messages no consumer needs any more (workqueue and interest retention).
    Drop {
        seqs: Vec<u64>,
    },
    /// The stream's config (JSON) from the meta group's assignment.
    Config {
        config: String,
    },
    /// A consumer's snapshot (config and state), from the leader.
    ConsumerSnap {
        name: String,
        blob: Vec<u8>,
    },
    ConsumerGone {
        name: String,
    },
    /// Every member has the log up to `upto` and applied it (the leader saw their matched
    /// indexes): each purges its log to there (file streams, whose state is on disk).
    Compact {
        upto: u64,
    },
}

/// A file stream's leader proposes a [`StreamCmd::Compact`] after this many entries...
const COMPACT_EVERY: u64 = 4096;
/// ...keeping this many entries behind the slowest member's matched index.
const COMPACT_KEEP: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ApiOp {
    Purge,
    MsgDelete,
}

/// The barrier a new leader commits before it serves: JSON for the meta group, postcard
/// for a stream group.
pub(crate) fn barrier_cmd(meta: bool) -> Vec<u8> {
    if meta {
        super::meta::encode(&super::meta::MetaCmd::Barrier)
    } else {
        encode(&[StreamCmd::Barrier])
    }
}

fn encode(cmds: &[StreamCmd]) -> Vec<u8> {
    postcard::to_allocvec(cmds).expect("stream commands serialise")
}

/// Replies a proposal owes once applied here.
pub(crate) enum Awaiting {
    /// One per message of a `Msgs`: where its PubAck goes.
    Acks(Vec<Option<(Arc<Account>, Bytes)>>),
    /// An API request answered with the apply's result.
    Api { msg: InternalMsg, subject: String },
}

/// What this server keeps of a stream replica.
pub(crate) struct Replica {
    pub account: String,
    pub stream: String,
    pub group: String,
    pub peers: Vec<NodeId>,
    pub leading: bool,
    pub leader: Option<NodeId>,
    pub leader_since: Option<i64>,
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The consumers as last replicated (snapshot blobs): what a new leader brings back.
    pub dormant: BTreeMap<String, Vec<u8>>,
    /// This batch's publishes, proposed together at the batch's end.
    pub outgoing: Vec<PMsg>,
    pub outgoing_acks: Vec<Option<(Arc<Account>, Bytes)>>,
    pub outgoing_bytes: usize,
    /// Other commands for the next entry.
    pub cmds: Vec<StreamCmd>,
    pub inflight: usize,
    /// A `Tick` is proposed and not applied yet.
    pub tick_inflight: bool,
    /// Stepping down: nothing is proposed until then (writes would keep the followers'
    /// leases fresh and no one would stand for election).
    pub stepping_down: Option<std::time::Instant>,
    /// A file stream: its state is on disk, so its log can be compacted.
    pub is_file: bool,
    /// The highest compaction proposed or applied, and one applied in this batch.
    pub compacted: u64,
    pub compact_to: Option<u64>,
    /// When the leader last looked at the members' progress for a compaction.
    pub compact_checked: Option<std::time::Instant>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AppliedMark {
    log_id: Option<LogId>,
    membership: StoredMembership,
}

impl Runtime {
    pub(super) fn leads_replica(&self, group: &str) -> bool {
        self.cluster.as_ref().and_then(|c| c.replicas.get(group)).is_some_and(|r| r.leading)
    }

    /// Opens this server's replica of an assigned stream and starts its group member.
    pub(super) fn open_replica(&mut self, sa: &StreamAssignment) {
        let Some(c) = self.cluster.as_ref() else { return };
        if c.replicas.contains_key(&sa.group) {
            return;
        }
        let Some(mut acc) = self.accounts.remove(&sa.account) else {
            tracing::error!(
                "JetStream cluster: stream '{} > {}' is assigned here but the account has no \
                 JetStream on this server",
                sa.account,
                sa.config.name
            );
            return;
        };
        let name = sa.config.name.clone();
        let key = format!("{}/{}", sa.account, name);
        let created = Timestamp::from_unix_nanos(sa.created);
        let recovered = acc.streams.contains_key(&name);
        if !recovered {
            let def = Definition { config: sa.config.clone(), created };
            match self.create_store(&key, &def) {
                Ok(store) => {
                    let id = self.alloc_id();
                    let mut s = Stream::new(id, sa.config.clone(), created, store);
                    s.group = Some(Arc::from(sa.group.as_str()));
                    self.install(&mut acc, s);
                }
                Err(e) => {
                    tracing::error!("JetStream cluster: creating replica of {key} failed: {e}");
                    self.accounts.insert(acc.account.name.clone(), acc);
                    return;
                }
            }
        } else if let Some(s) = acc.streams.get_mut(&name) {
            s.group = Some(Arc::from(sa.group.as_str()));
            // A recovered stream subscribed as a single server's would: a replica serves
            // only while it leads.
            unsubscribe_all(&acc.account, &mut s.subs);
            unsubscribe_all(&acc.account, &mut s.direct_subs);
        }
        // Consumers of a recovered replica come back when it leads, from their snapshots.
        let mut dormant = BTreeMap::new();
        if let Some(cs) = acc.consumers.remove(&name) {
            for (n, cons) in cs {
                self.sink.set_consumer(&acc.account.name, &name, &n, false);
                self.push_stopped(&acc.account.name, cons.config());
                dormant.insert(n, cons.snapshot().encode());
            }
        }
        let is_file = acc.streams.get(&name).is_some_and(Stream::is_file);
        self.accounts.insert(acc.account.name.clone(), acc);
        let c = self.cluster.as_mut().expect("clustered");
        // A memory replica starts empty: it replays the group's log from the start.
        let mark: AppliedMark = if is_file && recovered {
            match c.ctl.log_meta(&sa.group, "applied") {
                Ok(Some(b)) => serde_json::from_slice(&b).unwrap_or_default(),
                _ => AppliedMark::default(),
            }
        } else {
            AppliedMark::default()
        };
        c.replicas.insert(
            sa.group.clone(),
            Replica {
                account: sa.account.clone(),
                stream: name,
                group: sa.group.clone(),
                peers: sa.peers.clone(),
                leading: false,
                leader: None,
                leader_since: None,
                applied: mark.log_id,
                membership: mark.membership,
                dormant,
                outgoing: Vec::new(),
                outgoing_acks: Vec::new(),
                outgoing_bytes: 0,
                cmds: Vec::new(),
                inflight: 0,
                tick_inflight: false,
                stepping_down: None,
                is_file: sa.config.storage == StorageType::File,
                compacted: mark.log_id.map_or(0, |l| l.index),
                compact_to: None,
                compact_checked: None,
            },
        );
        let members: BTreeMap<NodeId, PeerNode> = sa
            .peers
            .iter()
            .zip(&sa.names)
            .map(|(id, n)| (*id, PeerNode { server: n.clone() }))
            .collect();
        c.ctl.clone().start_stream_group(sa.group.clone(), members);
    }

    /// Closes this server's replica (the stream was deleted): its group, store and log go.
    pub(super) fn close_replica(&mut self, sa: &StreamAssignment, delete: bool) {
        let Some(c) = self.cluster.as_mut() else { return };
        if c.replicas.remove(&sa.group).is_none() {
            return;
        }
        c.ctl.clone().remove_stream_group(&sa.group);
        let Some(mut acc) = self.accounts.remove(&sa.account) else { return };
        let name = sa.config.name.clone();
        if let Some(mut s) = self.uninstall(&mut acc, &name) {
            self.drop_consumers(&mut acc, &name);
            if delete {
                let key = format!("{}/{}", sa.account, name);
                let res = match s.store.kind() {
                    StorageKind::File => s.store.delete(),
                    StorageKind::Memory => {
                        let _ = s.store.delete();
                        self.store.delete_stream(&key).map(|_| ())
                    }
                };
                if let Err(e) = res {
                    tracing::error!("JetStream cluster: deleting replica of {key}: {e}");
                }
                let opts = self.srv.opts();
                self.stream_advisory(
                    &acc,
                    &name,
                    chorus_jetstream::stream::advisory::StreamAction::Delete,
                    &opts,
                );
            }
        }
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    pub(super) fn replica_applied(&self, group: &str) -> Result<Applied, String> {
        let c = self.cluster.as_ref().expect("clustered");
        let r = c.replicas.get(group).ok_or_else(|| format!("no replica for group {group}"))?;
        Ok(Applied { log_id: r.applied, membership: r.membership.clone() })
    }

    /// A file stream's snapshot is its store: the bytes only name the position, which the
    /// applied mark and the stream's writes (on disk before the mark) already hold. It is
    /// built before the log is compacted. Memory streams keep their whole log.
    pub(super) fn replica_snapshot(&mut self, group: &str) -> Result<(Applied, Vec<u8>), String> {
        let c = self.cluster.as_ref().expect("clustered");
        let Some(r) = c.replicas.get(group) else { return Err(format!("no replica {group}")) };
        if !r.is_file {
            return Err(format!("group {group}: memory streams keep their log (no snapshots)"));
        }
        let at = Applied { log_id: r.applied, membership: r.membership.clone() };
        let blob = serde_json::to_vec(&serde_json::json!({
            "account": r.account,
            "stream": r.stream,
            "applied": r.applied.map_or(0, |l| l.index),
        }))
        .expect("serialises");
        self.store.sync().map_err(|e| e.to_string())?;
        Ok((at, blob))
    }

    pub(super) fn replica_install(
        &mut self,
        group: &str,
        _at: Applied,
        _data: &[u8],
    ) -> Result<(), String> {
        // Compaction never purges what a member has not matched, so only a member that
        // lost its store (a new node) could be sent one; catching up from a stream
        // snapshot is not built (docs/missing.md): stop rather than serve a partial stream.
        Err(format!(
            "group {group}: this replica is behind the compacted log; catching up from a \
             stream snapshot is not supported yet"
        ))
    }

    /// The group's leader changed, or this server's role in it.
    pub(super) fn replica_role(&mut self, group: &str, leading: bool, leader: Option<NodeId>) {
        let Some(c) = self.cluster.as_mut() else { return };
        let Some(r) = c.replicas.get_mut(group) else { return };
        let was = r.leading;
        r.leading = leading;
        if !leading {
            r.stepping_down = None;
        }
        if r.leader != leader || leading != was {
            r.leader_since = leader.map(|_| now_nanos());
        }
        r.leader = leader;
        let (account, stream) = (r.account.clone(), r.stream.clone());
        if leading == was {
            return;
        }
        let Some(mut acc) = self.accounts.remove(&account) else { return };
        if leading {
            tracing::info!("JetStream cluster: leading stream '{account} > {stream}'");
            self.become_leader(&mut acc, group, &stream);
        } else {
            self.stop_leading(&mut acc, group, &stream);
        }
        self.accounts.insert(account, acc);
        if leading {
            self.reconcile_config(group);
        }
        self.commit(false);
    }

    fn become_leader(&mut self, acc: &mut AccountJs, group: &str, stream: &str) {
        let Some(s) = acc.streams.get_mut(stream) else { return };
        subscribe_stream((&acc.account, &acc.client), s);
        if s.cfg.max_age > 0 || s.cfg.allow_msg_ttl || s.dedupe.window() > 0 {
            s.next_expiry = Some(now_nanos());
        }
        let dormant = self
            .cluster
            .as_ref()
            .and_then(|c| c.replicas.get(group))
            .map(|r| r.dormant.clone())
            .unwrap_or_default();
        let opts = self.srv.opts();
        let now = now_nanos();
        for (name, blob) in dormant {
            let snap = match ConsumerSnapshot::decode(&blob) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(
                        "JetStream cluster: consumer {stream}/{name} not restored: {e}"
                    );
                    continue;
                }
            };
            let s = &acc.streams[stream];
            let ctx = super::consumer::context_of(acc, s, &opts);
            let (c, _) = Consumer::restore(snap, ctx, now, &StoreView(&*s.store));
            self.sink.set_consumer(&acc.account.name, stream, &name, true);
            acc.consumers.entry(stream.to_string()).or_default().insert(name.clone(), c);
            self.push_started(acc, stream, &name, now);
        }
    }

    fn stop_leading(&mut self, acc: &mut AccountJs, group: &str, stream: &str) {
        if let Some(s) = acc.streams.get_mut(stream) {
            unsubscribe_all(&acc.account, &mut s.subs);
            unsubscribe_all(&acc.account, &mut s.direct_subs);
            s.next_expiry = None;
        }
        let mut dormant = Vec::new();
        if let Some(cs) = acc.consumers.remove(stream) {
            let now = now_nanos();
            for (n, mut cons) in cs {
                // Waiting pull requests hear why nothing more comes (nats-server's
                // "409 Leadership Change").
                if let Some(s) = acc.streams.get(stream) {
                    let account = acc.account.clone();
                    let interest = |subj: &str| super::consumer::has_interest(&account, subj);
                    let actions =
                        cons.handle(now, Event::LeadershipChange, &StoreView(&*s.store), &interest);
                    self.leadership_statuses(&acc.account, actions);
                }
                self.sink.set_consumer(&acc.account.name, stream, &n, false);
                self.push_stopped(&acc.account.name, cons.config());
                dormant.push((n, cons.snapshot().encode()));
            }
        }
        if let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) {
            for (n, b) in dormant {
                r.dormant.entry(n).or_insert(b);
            }
            // What was not proposed yet will not be: its publishers get no ack and retry.
            r.outgoing.clear();
            r.outgoing_acks.clear();
            r.outgoing_bytes = 0;
            r.cmds.clear();
            r.tick_inflight = false;
        }
    }

    /// The statuses a consumer sends when it stops leading (waiting pull requests).
    fn leadership_statuses(
        &mut self,
        account: &Arc<Account>,
        actions: Vec<chorus_jetstream::consumer::Action>,
    ) {
        for a in actions {
            if let chorus_jetstream::consumer::Action::Status(st) = a {
                self.out.push(super::consumer::status_reply(account, &st));
            }
        }
    }

    /// A new leader, or an updated assignment: the stream's log gets the meta group's config
    /// when it differs from what was applied.
    pub(super) fn reconcile_config(&mut self, group: &str) {
        let Some(c) = self.cluster.as_mut() else { return };
        let Some(r) = c.replicas.get_mut(group) else { return };
        if !r.leading {
            return;
        }
        let Some(sa) = c.meta.streams.get(&format!("{}/{}", r.account, r.stream)) else { return };
        let Some(s) = self.accounts.get(&r.account).and_then(|a| a.streams.get(&r.stream)) else {
            return;
        };
        if s.cfg == sa.config {
            return;
        }
        let config = serde_json::to_string(&sa.config).expect("configs serialise");
        r.cmds.push(StreamCmd::Config { config });
    }

    /// A publish reaching a replicated stream's subscription (the leader's).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replicated_publish(
        &mut self,
        group: &str,
        m: InternalMsg,
        keep: bool,
        over_limit: bool,
        sname: &Arc<str>,
    ) {
        let reply = m.reply.clone().filter(|r| !r.is_empty());
        let refuse = |why: chorus_jetstream::ApiError| {
            chorus_jetstream::stream::publish::PubAckResponse::error(sname, why).to_wire()
        };
        let c = self.cluster.as_mut().expect("clustered");
        let Some(r) = c.replicas.get_mut(group).filter(|r| r.leading) else { return };
        let err =
            if over_limit {
                Some(chorus_jetstream::ErrorId::AccountResourcesExceeded.error())
            } else if r.outgoing_bytes > MAX_OUTGOING_BYTES {
                Some(chorus_jetstream::ErrorId::StreamStoreFailed.with_err(
                    "too many replicated writes pending; the stream's replicas are behind",
                ))
            } else {
                None
            };
        let Ok(subject) = String::from_utf8(m.subject.to_vec()) else {
            let e =
                chorus_jetstream::ErrorId::StreamStoreFailed.with_err("subject is not valid UTF-8");
            if let Some(to) = reply {
                self.out.push(ack_reply(&m.account, to, refuse(e)));
            }
            return;
        };
        if let Some(e) = err {
            if let Some(to) = reply {
                self.out.push(ack_reply(&m.account, to, refuse(e)));
            }
            return;
        }
        let header = m.headers.as_deref().unwrap_or(b"").to_vec();
        r.outgoing_bytes += subject.len() + header.len() + m.payload.len();
        r.outgoing.push(PMsg { subject, header, payload: m.payload.to_vec(), keep });
        r.outgoing_acks.push(reply.map(|to| (m.account.clone(), to)));
    }

    /// A purge or message delete on a stream this server leads: proposed, answered at apply.
    pub(super) fn replicated_api(
        &mut self,
        group: &str,
        op: ApiOp,
        m: &InternalMsg,
        subject: &str,
    ) {
        let c = self.cluster.as_mut().expect("clustered");
        let id = c.next_id();
        let origin = c.ctl.node;
        c.awaiting.insert(id, Awaiting::Api { msg: m.clone(), subject: subject.to_string() });
        let cmd = encode(&[StreamCmd::Api { origin, id, op, body: m.payload.to_vec() }]);
        c.ctl.clone().propose(group, cmd, move |rt, r| {
            if let Err(e) = r
                && let Some(c) = rt.cluster.as_mut()
                && let Some(Awaiting::Api { msg, subject }) = c.awaiting.remove(&id)
            {
                tracing::debug!("JetStream cluster: {subject} not applied: {e}");
                let _ = msg;
            }
        });
    }

    /// `STREAM.LEADER.STEPDOWN` on the leader: another member (the request's preferred
    /// one, else a connected member at random) stands for election.
    pub(super) fn stream_stepdown(
        &mut self,
        group: &str,
        body: &[u8],
    ) -> Result<(), chorus_jetstream::ApiError> {
        let Some(c) = self.cluster.as_mut() else { return Ok(()) };
        let peers = c
            .replicas
            .get(group)
            .and_then(|r| c.assignment(&r.account, &r.stream))
            .map(|a| a.peers.clone())
            .unwrap_or_default();
        let target = c.stepdown_target(&self.srv, body, &peers)?;
        if let Some(r) = c.replicas.get_mut(group) {
            r.stepping_down = Some(std::time::Instant::now() + std::time::Duration::from_secs(5));
        }
        c.ctl.clone().step_down(group, target);
        Ok(())
    }

    /// Queues a retention removal of a replicated stream (applied on every replica).
    pub(super) fn queue_drop(&mut self, group: &str, seq: u64) {
        let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) else { return };
        if let Some(StreamCmd::Drop { seqs }) =
            r.cmds.iter_mut().find(|c| matches!(c, StreamCmd::Drop { .. }))
        {
            seqs.push(seq);
        } else {
            r.cmds.push(StreamCmd::Drop { seqs: vec![seq] });
        }
    }

    /// Queues a consumer's snapshot (or its removal) for the next entry of its stream.
    pub(super) fn queue_consumer(&mut self, group: &str, name: &str, blob: Option<Vec<u8>>) {
        let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) else { return };
        r.cmds.retain(|c| !matches!(c, StreamCmd::ConsumerSnap { name: n, .. } | StreamCmd::ConsumerGone { name: n } if n == name));
        r.cmds.push(match blob {
            Some(blob) => StreamCmd::ConsumerSnap { name: name.to_string(), blob },
            None => StreamCmd::ConsumerGone { name: name.to_string() },
        });
    }

    /// Leader timers of replicated streams: expiry is proposed, not run.
    pub(super) fn replica_tick(&mut self, group: &str, now: i64) {
        let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) else { return };
        if !r.leading || r.tick_inflight {
            return;
        }
        r.tick_inflight = true;
        r.cmds.push(StreamCmd::Tick { now });
    }

    /// End of a runtime batch: one entry per stream with something to replicate.
    pub(super) fn propose_outgoing(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        // Consumers changed in this batch ride in the same entries.
        self.lazy |= self.write_consumer_states();
        let Some(c) = self.cluster.as_mut() else { return };
        let now = now_nanos();
        let mut proposals = Vec::new();
        let origin = c.ctl.node;
        let mut next = c.next_id;
        for r in c.replicas.values_mut() {
            if r.leading && r.is_file {
                maybe_compact(&c.ctl, r);
            }
            if !r.leading
                || (r.outgoing.is_empty() && r.cmds.is_empty())
                || r.inflight >= MAX_INFLIGHT
            {
                continue;
            }
            if r.stepping_down.is_some_and(|t| t > std::time::Instant::now()) {
                continue;
            }
            let mut cmds = Vec::with_capacity(r.cmds.len() + 1);
            let mut awaiting = None;
            if !r.outgoing.is_empty() {
                next += 1;
                let msgs = std::mem::take(&mut r.outgoing);
                r.outgoing_bytes = 0;
                awaiting = Some((next, Awaiting::Acks(std::mem::take(&mut r.outgoing_acks))));
                cmds.push(StreamCmd::Msgs { origin, id: next, ts: now, msgs });
            }
            cmds.append(&mut r.cmds);
            r.inflight += 1;
            proposals.push((r.group.clone(), encode(&cmds), awaiting));
        }
        c.next_id = next;
        for (group, cmd, awaiting) in proposals {
            let id = awaiting.as_ref().map(|(id, _)| *id);
            if let Some((id, a)) = awaiting {
                c.awaiting.insert(id, a);
            }
            let g = group.clone();
            c.ctl.clone().propose(&group, cmd, move |rt, r| {
                let Some(c) = rt.cluster.as_mut() else { return };
                if let Some(rep) = c.replicas.get_mut(&g) {
                    rep.inflight = rep.inflight.saturating_sub(1);
                    if r.is_err() {
                        rep.tick_inflight = false;
                    }
                }
                if let (Err(e), Some(id)) = (r, id) {
                    // Not committed (or not known to be): no PubAck; publishers retry, and
                    // the duplicate window catches a retry of what did commit.
                    c.awaiting.remove(&id);
                    tracing::debug!("JetStream cluster: proposal to {g} failed: {e}");
                }
            });
        }
    }

    /// Applies committed entries of a stream group, in order.
    pub(super) fn apply_stream(
        &mut self,
        group: &str,
        entries: Vec<Committed>,
    ) -> Result<Vec<Resp>, String> {
        let (account, stream, is_file) = {
            let c = self.cluster.as_ref().expect("clustered");
            let Some(r) = c.replicas.get(group) else {
                // Deleted meanwhile: nothing to apply to.
                return Ok(entries.iter().map(|_| Resp(Vec::new())).collect());
            };
            let is_file = self
                .accounts
                .get(&r.account)
                .and_then(|a| a.streams.get(&r.stream))
                .is_some_and(Stream::is_file);
            (r.account.clone(), r.stream.clone(), is_file)
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut last = None;
        let mut membership = None;
        for e in entries {
            match e.payload {
                Payload::Blank => {}
                Payload::Membership(m) => membership = Some(m),
                Payload::Command(b) => {
                    let cmds: Vec<StreamCmd> = postcard::from_bytes(&b)
                        .map_err(|e| format!("undecodable entry in {group}: {e}"))?;
                    for cmd in cmds {
                        self.apply_stream_cmd(group, &account, &stream, cmd)?;
                    }
                }
            }
            last = Some(e.log_id);
            out.push(Resp(Vec::new()));
        }
        // The stream's writes first, then the mark: the same WAL keeps them in this order,
        // so a crash never leaves the mark ahead of the messages.
        if let Some(s) = self.accounts.get_mut(&account).and_then(|a| a.streams.get_mut(&stream))
            && let Err(e) = s.store.flush()
        {
            return Err(format!("writing replica {account}/{stream}: {e}"));
        }
        let c = self.cluster.as_mut().expect("clustered");
        if let Some(r) = c.replicas.get_mut(group) {
            if last.is_some() {
                r.applied = last;
            }
            if let Some(m) = membership {
                r.membership = m;
            }
            let compact = r.compact_to.take();
            if is_file {
                let mark = AppliedMark { log_id: r.applied, membership: r.membership.clone() };
                let blob = serde_json::to_vec(&mark).expect("serialises");
                c.ctl.put_log_meta(group, "applied", &blob).map_err(|e| e.to_string())?;
                // After the mark: the purged entries are then covered by what is on disk.
                if let Some(upto) = compact {
                    c.ctl.clone().compact(group, upto);
                }
            }
        }
        self.commit(false);
        Ok(out)
    }

    fn apply_stream_cmd(
        &mut self,
        group: &str,
        account: &str,
        stream: &str,
        cmd: StreamCmd,
    ) -> Result<(), String> {
        let me = self.cluster.as_ref().expect("clustered").ctl.node;
        match cmd {
            StreamCmd::Barrier => {}
            StreamCmd::Msgs { origin, id, ts, msgs } => {
                let mut acks = match (origin == me)
                    .then(|| self.cluster.as_mut().expect("clustered").awaiting.remove(&id))
                    .flatten()
                {
                    Some(Awaiting::Acks(a)) => a,
                    _ => Vec::new(),
                };
                let opts = self.srv.opts();
                for (i, pm) in msgs.into_iter().enumerate() {
                    let (body, _) = self.store_message(
                        account,
                        stream,
                        &pm.subject,
                        &pm.header,
                        &pm.payload,
                        ts,
                        pm.keep,
                        &opts,
                    );
                    if let Some(Some((acc, to))) = acks.get_mut(i).map(Option::take) {
                        self.out.push(ack_reply(&acc, to, body));
                    }
                }
            }
            StreamCmd::Tick { now } => {
                if let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) {
                    r.tick_inflight = false;
                }
                if let Some(s) =
                    self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(stream))
                {
                    s.tick(now).map_err(|e| format!("expiring {account}/{stream}: {e}"))?;
                    let leading = self.leads_replica(group);
                    if !leading
                        && let Some(s) =
                            self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(stream))
                    {
                        s.next_expiry = None;
                        s.dedupe_next = None;
                    }
                }
            }
            StreamCmd::Api { origin, id, op, body } => {
                let Some(mut acc) = self.accounts.remove(account) else { return Ok(()) };
                let (resp, err) = match op {
                    ApiOp::Purge => self.stream_purge(&mut acc, stream, &body),
                    ApiOp::MsgDelete => self.msg_delete(&mut acc, stream, &body),
                };
                if origin == me
                    && let Some(Awaiting::Api { msg, subject }) =
                        self.cluster.as_mut().expect("clustered").awaiting.remove(&id)
                {
                    let opts = self.srv.opts();
                    self.api_answer(&mut acc, &msg, &subject, resp, err, &opts);
                }
                self.accounts.insert(acc.account.name.clone(), acc);
            }
            StreamCmd::Drop { seqs } => {
                if let Some(s) =
                    self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(stream))
                {
                    for seq in seqs {
                        s.store
                            .remove(seq, chorus_store::RemoveMode::Remove)
                            .map_err(|e| format!("removing {seq} of {account}/{stream}: {e}"))?;
                    }
                }
            }
            StreamCmd::Config { config } => {
                let cfg: StreamConfig =
                    serde_json::from_str(&config).map_err(|e| format!("bad config entry: {e}"))?;
                self.apply_config(account, stream, cfg)?;
            }
            StreamCmd::ConsumerSnap { name, blob } => {
                let key = format!("{account}/{stream}");
                let file = self
                    .accounts
                    .get(account)
                    .and_then(|a| a.streams.get(stream))
                    .is_some_and(Stream::is_file);
                if file && let Err(e) = self.store.put_consumer_state(&key, &name, &blob) {
                    return Err(format!("saving consumer {key}/{name}: {e}"));
                }
                if let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) {
                    r.dormant.insert(name, blob);
                }
            }
            StreamCmd::Compact { upto } => {
                if let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) {
                    r.compacted = r.compacted.max(upto);
                    r.compact_to = Some(upto);
                }
            }
            StreamCmd::ConsumerGone { name } => {
                let key = format!("{account}/{stream}");
                let _ = self.store.delete_consumer_state(&key, &name);
                if let Some(r) = self.cluster.as_mut().and_then(|c| c.replicas.get_mut(group)) {
                    r.dormant.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// A config entry: the stream's definition and limits change at this point of its log.
    fn apply_config(
        &mut self,
        account: &str,
        stream: &str,
        cfg: StreamConfig,
    ) -> Result<(), String> {
        let Some(mut acc) = self.accounts.remove(account) else { return Ok(()) };
        let key = format!("{account}/{stream}");
        let res = (|| {
            let Some(s) = acc.streams.get_mut(stream) else { return Ok(()) };
            let def = Definition { config: cfg.clone(), created: s.created };
            self.store.set_stream_config(&key, &def.encode()).map_err(|e| e.to_string())?;
            let resubscribe =
                s.cfg.subjects != cfg.subjects || s.cfg.allow_direct != cfg.allow_direct;
            s.reconfigure(cfg, now_nanos()).map_err(|e| e.to_string())?;
            if resubscribe && !s.subs.is_empty() {
                subscribe_stream((&acc.account, &acc.client), s);
            }
            Ok::<(), String>(())
        })();
        self.accounts.insert(acc.account.name.clone(), acc);
        res
    }

    /// The `cluster` block of a replicated stream's info (or a single server's).
    pub(super) fn cluster_info_of(&self, s: &Stream) -> Option<ClusterInfo> {
        let Some(c) = self.cluster.as_ref() else {
            return Some(ClusterInfo { leader: self.srv.name.clone(), ..Default::default() });
        };
        let group = s.group.as_deref()?;
        let r = c.replicas.get(group)?;
        let g = c.ctl.group(group);
        let m = g.as_ref().map(|g| g.metrics());
        let last = m.as_ref().and_then(|m| m.last_log_index).unwrap_or(0);
        let mut replicas = Vec::new();
        for p in r.peers.iter().filter(|p| Some(**p) != r.leader) {
            let matched = m
                .as_ref()
                .and_then(|m| m.replication.as_ref())
                .and_then(|rep| rep.get(p).copied())
                .flatten()
                .map(|l| l.index);
            let online =
                *p == c.ctl.node || self.srv.routes.raft_peers().iter().any(|(id, _)| id == p);
            let lag = matched.map_or(0, |i| last.saturating_sub(i));
            let active = m
                .as_ref()
                .and_then(|m| m.millis_since_quorum_ack)
                .filter(|_| online)
                .map_or(0, |ms| (ms.max(1) * 1_000_000) as i64);
            replicas.push(PeerInfo {
                name: c.server_name(&self.srv, *p),
                current: online && lag == 0,
                offline: !online,
                active,
                lag,
                peer: super::cluster::peer_id(*p),
                pending: false,
            });
        }
        replicas.sort_by(|a, b| a.name.cmp(&b.name));
        let leader = r.leader.map(|l| c.server_name(&self.srv, l)).unwrap_or_default();
        if r.peers.len() <= 1 {
            // A single replica has no group to show (nats-server runs none for it).
            return Some(ClusterInfo {
                name: self.srv.cluster_name(),
                leader,
                ..Default::default()
            });
        }
        Some(ClusterInfo {
            name: self.srv.cluster_name(),
            raft_group: group.to_string(),
            leader,
            leader_since: r.leader_since.map(Timestamp::from_unix_nanos),
            // Raft traffic travels in the system account (route::raft).
            system_account: true,
            traffic_account: crate::route::raft::raft_account(&self.srv),
            replicas,
            ..Default::default()
        })
    }

    /// A consumer's `cluster` block: it runs where its stream leads, on the stream's
    /// replicas (its state travels in the stream's group, named here the way nats-server
    /// names a consumer group).
    pub(super) fn consumer_cluster_info(&self, s: &Stream, consumer: &str) -> Option<ClusterInfo> {
        let mut ci = self.cluster_info_of(s)?;
        if let Some(g) = s.group.as_deref().filter(|_| !ci.raft_group.is_empty()) {
            let kind = if s.is_file() { 'F' } else { 'M' };
            let tail = super::cluster::peer_id(
                crate::route::info::fnv32a(format!("{g}/{consumer}").as_bytes()) as u64
                    * 0x9E37_79B9
                    + 1,
            );
            ci.raft_group = format!("C-R{}{kind}-{tail}", s.cfg.num_replicas.max(1));
        }
        Some(ci)
    }
}

fn ack_reply(account: &Arc<Account>, to: Bytes, body: Vec<u8>) -> Reply {
    Reply {
        account: account.clone(),
        subject: to,
        headers: None,
        payload: Bytes::from(body),
        reply: None,
        shown_as: None,
        file_ack: None,
    }
}

/// On the leader of a file stream, every [`COMPACT_EVERY`] entries (looking at most once a
/// second): when every member has matched the log far enough, a [`StreamCmd::Compact`]
/// rides the next entry.
fn maybe_compact(ctl: &std::sync::Arc<super::cluster::Cluster>, r: &mut Replica) {
    let applied = r.applied.map_or(0, |l| l.index);
    if applied < r.compacted + COMPACT_EVERY + COMPACT_KEEP {
        return;
    }
    let now = std::time::Instant::now();
    if r.compact_checked.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
    {
        return;
    }
    r.compact_checked = Some(now);
    let Some(matched) = ctl.matched_by_all(&r.group, &r.peers) else { return };
    let upto = matched.min(applied).saturating_sub(COMPACT_KEEP);
    if upto >= r.compacted + COMPACT_EVERY {
        r.compacted = upto;
        r.cmds.push(StreamCmd::Compact { upto });
    }
}
