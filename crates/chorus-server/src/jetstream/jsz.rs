//! `/jsz`: JetStream figures for the monitoring port, in nats-server's JSON shape
//! (`JSInfo`, `AccountDetail`, `StreamDetail` of its monitor.go).
//!
//! The runtime thread owns every stream and consumer, so the monitor does not read them: it
//! queues a closure on the runtime's work queue ([`super::Work::Call`]) that builds the
//! report between two batches and sends it back on a oneshot channel.

use chorus_jetstream::api::stream::{ClusterInfo, StreamState};
use chorus_jetstream::go::Timestamp;
use chorus_jetstream::stream::config::StorageType;
use chorus_jetstream::stream::config::StreamConfig;
use serde::Serialize;

use super::Runtime;
use super::api::default_max_memory;
use super::stream::now_nanos;
use crate::info::API_LEVEL;

/// The query of a `/jsz` request (nats-server's `JSzOptions`).
#[derive(Debug, Clone, Default)]
pub struct JszOptions {
    /// `acc`: only this account's details.
    pub account: Option<String>,
    pub accounts: bool,
    pub streams: bool,
    pub consumers: bool,
    pub config: bool,
    pub offset: usize,
    /// 0: nats-server's default of 1024.
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct ApiStats {
    level: u32,
    total: u64,
    errors: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Usage {
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: usize,
    ha_assets: usize,
    api: ApiStats,
}

#[derive(Debug, Serialize)]
struct JsConfig {
    max_memory: i64,
    max_storage: i64,
    store_dir: String,
    #[serde(skip_serializing_if = "is_zero")]
    sync_interval: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sync_always: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    domain: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict: bool,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `jetstream { limits {} }` as nats-server's `JSLimitOpts` (unset fields are left out).
#[derive(Debug, Default, Serialize)]
struct LimitOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_request_batch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_ack_pending: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_ha_assets: Option<i64>,
    #[serde(rename = "max_duplicate_window", skip_serializing_if = "Option::is_none")]
    duplicate_window: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_max_consumers: Option<i64>,
}

#[derive(Debug, Serialize)]
struct StreamDetail {
    name: String,
    created: Timestamp,
    cluster: ClusterInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<StreamConfig>,
    state: StreamState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    consumer_detail: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct AccountDetail {
    name: String,
    id: String,
    #[serde(flatten)]
    usage: Usage,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stream_detail: Vec<StreamDetail>,
}

/// The whole `/jsz` answer (nats-server's `JSInfo`).
#[derive(Debug, Serialize)]
pub struct JsInfo {
    #[serde(flatten)]
    usage: Usage,
    server_id: String,
    now: Timestamp,
    config: JsConfig,
    limits: LimitOpts,
    streams: usize,
    consumers: usize,
    messages: u64,
    bytes: u64,
    /// Clustered JetStream: the meta group (nats-server's `MetaClusterInfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_cluster: Option<MetaClusterInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    account_details: Vec<AccountDetail>,
    total: usize,
}

/// `/jsz` `meta_cluster`.
#[derive(Debug, Serialize)]
struct MetaClusterInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    leader: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    peer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<chorus_jetstream::api::stream::PeerInfo>,
    cluster_size: usize,
    pending: u64,
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Runtime {
    fn meta_cluster_info(&self) -> Option<MetaClusterInfo> {
        let c = self.cluster.as_ref()?;
        let m = c.ctl.meta().map(chorus_raft::Group::metrics);
        let members: Vec<chorus_raft::NodeId> =
            c.meta.membership.membership().voter_ids().collect();
        let last = m.as_ref().and_then(|m| m.last_log_index).unwrap_or(0);
        let up: Vec<chorus_raft::NodeId> =
            self.srv.routes.raft_peers().into_iter().map(|(id, _)| id).collect();
        let replicas = members
            .iter()
            .filter(|id| Some(**id) != c.meta_leader)
            .map(|id| {
                let matched = m
                    .as_ref()
                    .and_then(|m| m.replication.as_ref())
                    .and_then(|r| r.get(id).copied())
                    .flatten()
                    .map(|l| l.index);
                let online = *id == c.ctl.node || up.contains(id);
                let lag = matched.map_or(0, |i| last.saturating_sub(i));
                chorus_jetstream::api::stream::PeerInfo {
                    name: c.server_name(&self.srv, *id),
                    current: online && (matched.is_none() || lag == 0),
                    offline: !online,
                    active: 0,
                    lag,
                    peer: super::cluster::peer_id(*id),
                    pending: false,
                }
            })
            .collect();
        Some(MetaClusterInfo {
            name: self.srv.cluster_name(),
            leader: c.meta_leader.map(|l| c.server_name(&self.srv, l)).unwrap_or_default(),
            peer: c.meta_leader.map(super::cluster::peer_id).unwrap_or_default(),
            replicas,
            cluster_size: members.len(),
            pending: 0,
        })
    }

    /// Builds the `/jsz` report. `&mut` because a consumer's info may fire its timers'
    /// actions, as it does for `CONSUMER.INFO`.
    pub(super) fn jsz(&mut self, o: &JszOptions) -> JsInfo {
        let opts = self.srv.opts();
        let js = &opts.jetstream;
        let mut o = o.clone();
        if o.limit == 0 {
            o.limit = 1024;
        }
        if o.consumers {
            o.streams = true;
        }
        if o.streams && o.account.is_none() {
            o.accounts = true;
        }
        let mut usage = Usage { accounts: self.accounts.len(), ..Default::default() };
        usage.api.level = API_LEVEL as u32;
        let (mut streams, mut consumers, mut messages, mut bytes) = (0, 0, 0, 0);
        for acc in self.accounts.values() {
            usage.api.total += acc.api_total;
            usage.api.errors += acc.api_errors;
            for s in acc.streams.values() {
                let st = s.store.state(false);
                let reserved = s.cfg.max_bytes.max(0) as u64;
                if s.cfg.storage == StorageType::Memory {
                    usage.memory += st.bytes;
                    usage.reserved_memory += reserved;
                } else {
                    usage.storage += st.bytes;
                    usage.reserved_storage += reserved;
                }
                streams += 1;
                messages += st.msgs;
                bytes += st.bytes;
            }
            consumers += acc.consumers.values().map(|m| m.len()).sum::<usize>();
        }
        let names: Vec<String> = match &o.account {
            Some(a) if self.accounts.contains_key(a) => vec![a.clone()],
            _ if o.accounts => self.accounts.keys().skip(o.offset).take(o.limit).cloned().collect(),
            _ => Vec::new(),
        };
        let account_details = names.iter().map(|n| self.account_detail(n, &o)).collect();
        let meta_cluster = self.meta_cluster_info();
        JsInfo {
            meta_cluster,
            usage,
            server_id: self.srv.id.clone(),
            now: Timestamp::from_unix_nanos(now_nanos()),
            config: JsConfig {
                max_memory: js
                    .max_memory_store
                    .filter(|v| *v > 0)
                    .unwrap_or_else(default_max_memory),
                max_storage: js.max_file_store.filter(|v| *v > 0).unwrap_or(i64::MAX),
                store_dir: super::store_dir(&opts).display().to_string(),
                sync_interval: match js.sync_interval {
                    chorus_conf::SyncInterval::Every(d) => nanos(d),
                    chorus_conf::SyncInterval::Always => 0,
                },
                sync_always: js.sync_interval == chorus_conf::SyncInterval::Always,
                domain: js.domain.clone().unwrap_or_default(),
                strict: js.strict,
            },
            limits: LimitOpts {
                max_request_batch: js.limits.max_request_batch,
                max_ack_pending: js.limits.max_ack_pending,
                max_ha_assets: js.limits.max_ha_assets,
                duplicate_window: js.limits.duplicate_window.map(nanos),
                default_max_consumers: js.limits.default_max_consumers,
            },
            streams,
            consumers,
            messages,
            bytes,
            account_details,
            total: self.accounts.len(),
        }
    }

    fn account_detail(&mut self, name: &str, o: &JszOptions) -> AccountDetail {
        let Some(mut acc) = self.accounts.remove(name) else {
            unreachable!("names come from the accounts map")
        };
        // An account with limits reports them as its reservation; unlimited is -1 as u64,
        // as nats-server prints it.
        let mut usage = Usage {
            reserved_memory: acc.limits.max_memory as u64,
            reserved_storage: acc.limits.max_storage as u64,
            api: ApiStats { level: 0, total: acc.api_total, errors: acc.api_errors },
            ..Default::default()
        };
        for s in acc.streams.values() {
            let b = s.store.state(false).bytes;
            if s.cfg.storage == StorageType::Memory {
                usage.memory += b;
            } else {
                usage.storage += b;
            }
        }
        let mut stream_detail = Vec::new();
        if o.streams {
            let names: Vec<String> = acc.streams.keys().cloned().collect();
            for sname in names {
                let s = &acc.streams[&sname];
                let mut state = s.info(s.cfg.clone(), false).state;
                let cnames: Vec<String> = acc
                    .consumers
                    .get(&sname)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                state.consumers = cnames.len() as u64;
                let mut detail = StreamDetail {
                    name: sname.clone(),
                    created: s.created,
                    cluster: self.cluster_info_of(s).unwrap_or_default(),
                    config: o.config.then(|| s.cfg.clone()),
                    state,
                    consumer_detail: Vec::new(),
                };
                if o.consumers {
                    for c in cnames {
                        let Some(info) = self.consumer_info(&mut acc, &sname, &c) else { continue };
                        let Ok(mut v) = serde_json::to_value(&info) else { continue };
                        if !o.config
                            && let Some(m) = v.as_object_mut()
                        {
                            m.remove("config");
                        }
                        detail.consumer_detail.push(v);
                    }
                }
                stream_detail.push(detail);
            }
        }
        let detail =
            AccountDetail { name: name.to_string(), id: name.to_string(), usage, stream_detail };
        self.accounts.insert(name.to_string(), acc);
        detail
    }
}
