//! `accounts { NAME { ... } }`: users, JetStream limits, exports, imports and mappings.

use std::time::Duration;

use serde::Serialize;

use crate::auth::{
    NkeyUserOptions, Permissions, UserOptions, apply_default_permissions, looks_like_nkey,
    parse_permissions, parse_users,
};
use crate::convert::{Cx, index, is_valid_subject, path};
use crate::value::{Value, ValueKind};

/// One account. Its users live in [`crate::AuthorizationOptions::users`] / `nkeys` with
/// `account` set to this account's name, as in nats-server.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountOptions {
    pub name: String,
    /// Public account NKey, when the account has one.
    pub nkey: Option<String>,
    /// `None`: JetStream disabled for the account.
    pub jetstream: Option<AccountJetStreamLimits>,
    pub exports: Vec<ExportOptions>,
    pub imports: Vec<ImportOptions>,
    pub default_permissions: Option<Permissions>,
    pub mappings: Vec<MappingOptions>,
    pub limits: AccountLimits,
    pub msg_trace: Option<MsgTraceOptions>,
}

/// Per-account JetStream limits; `None` means unlimited (nats-server's -1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountJetStreamLimits {
    pub max_memory: Option<i64>,
    pub max_store: Option<i64>,
    pub max_streams: Option<i64>,
    pub max_consumers: Option<i64>,
    pub max_bytes_required: bool,
    pub memory_max_stream_bytes: Option<i64>,
    pub store_max_stream_bytes: Option<i64>,
    pub max_ack_pending: Option<i64>,
    /// `"owner"`: replication traffic runs in this account rather than the system account.
    pub cluster_traffic_owner: bool,
}

/// `limits { max_connections, max_subscriptions, max_payload, max_leafnodes }`;
/// `None` = no account-specific limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountLimits {
    pub max_connections: Option<i64>,
    pub max_subscriptions: Option<i64>,
    pub max_payload: Option<i64>,
    pub max_leafnodes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MsgTraceOptions {
    pub dest: Option<String>,
    /// Percentage of messages traced, 1..=100.
    pub sampling: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExportKind {
    Stream,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResponseType {
    Singleton,
    Streamed,
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportOptions {
    pub kind: ExportKind,
    pub subject: String,
    /// Accounts allowed to import; empty = public.
    pub accounts: Vec<String>,
    pub response_type: Option<ResponseType>,
    pub response_threshold: Option<Duration>,
    pub latency: Option<LatencyOptions>,
    pub account_token_position: Option<u32>,
    pub allow_trace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyOptions {
    pub subject: String,
    /// 1..=100 percent, or `None` for "headers" (sample when the request asks for it).
    pub sampling: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportOptions {
    pub kind: ExportKind,
    /// The exporting account.
    pub account: String,
    pub subject: String,
    /// Local subject (services: where requests are sent; streams: mapped subject).
    pub to: Option<String>,
    /// Streams only: prefix added to imported subjects.
    pub prefix: Option<String>,
    /// Services only: share the requester's information (latency tracking).
    pub share: bool,
    pub allow_trace: bool,
}

/// `mappings { "src": "dest" }` or weighted `"src": [{destination, weight, cluster}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingOptions {
    pub subject: String,
    pub destinations: Vec<MapDestination>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapDestination {
    pub subject: String,
    pub weight: u8,
    pub cluster: Option<String>,
}

/// Everything `accounts { }` yields: the accounts and the users declared inside them.
#[derive(Default)]
pub(crate) struct AccountsBlock {
    pub accounts: Vec<AccountOptions>,
    pub users: Vec<UserOptions>,
    pub nkeys: Vec<NkeyUserOptions>,
}

/// The name nats-server reserves for the global account.
pub const GLOBAL_ACCOUNT: &str = "$G";

pub(crate) fn parse_accounts(cx: &mut Cx, key: &str, v: &Value) -> AccountsBlock {
    let mut out = AccountsBlock::default();
    match &v.kind {
        ValueKind::Array(names) => {
            for (i, n) in names.iter().enumerate() {
                let k = index(key, i);
                let Some(name) = cx.string(&k, n) else {
                    continue;
                };
                if name == GLOBAL_ACCOUNT {
                    cx.error(&k, n, format!("{name:?} is a Reserved Account"));
                } else if out.accounts.iter().any(|a| a.name == name) {
                    cx.error(&k, n, format!("Duplicate Account Entry: {name}"));
                } else {
                    out.accounts.push(AccountOptions { name, ..AccountOptions::default() });
                }
            }
        }
        ValueKind::Map(m) => {
            for e in m.entries() {
                // Keys used only as `$variables` inside the block are not accounts.
                if e.used_as_variable {
                    continue;
                }
                let k = path(key, &e.key);
                let Some(am) = e.value.as_map() else {
                    cx.error(&k, &e.value, "Expected map entries for accounts");
                    continue;
                };
                if e.key == GLOBAL_ACCOUNT {
                    cx.error(&k, &e.value, format!("{:?} is a Reserved Account", e.key));
                    continue;
                }
                let mut acc = AccountOptions { name: e.key.clone(), ..AccountOptions::default() };
                let mut users = Vec::new();
                let mut nkeys = Vec::new();
                for ae in am.entries() {
                    let ak = path(&k, &ae.key);
                    let av = &ae.value;
                    match ae.key.to_ascii_lowercase().as_str() {
                        "nkey" => {
                            let nk = av.as_str().unwrap_or_default();
                            if looks_like_nkey(nk, 'A') {
                                acc.nkey = Some(nk.to_string());
                            } else {
                                cx.error(
                                    &ak,
                                    av,
                                    format!(
                                        "Not a valid public nkey for an account: {}",
                                        av.describe()
                                    ),
                                );
                            }
                        }
                        "imports" => acc.imports = parse_imports(cx, &ak, av),
                        "exports" => acc.exports = parse_exports(cx, &ak, av),
                        "jetstream" => {
                            if let Some(js) = parse_account_jetstream(cx, &ak, av) {
                                acc.jetstream = js;
                            }
                        }
                        "users" => {
                            if let Some((u, n)) = parse_users(cx, &ak, av) {
                                users = u;
                                nkeys = n;
                            }
                        }
                        "default_permissions" => {
                            acc.default_permissions = parse_permissions(cx, &ak, av);
                        }
                        "mappings" | "maps" => acc.mappings = parse_mappings(cx, &ak, av),
                        "limits" => acc.limits = parse_limits(cx, &ak, av),
                        "msg_trace" | "trace_dest" => {
                            acc.msg_trace = parse_msg_trace(cx, &ak, &ae.key, av);
                        }
                        _ => cx.unknown(&k, ae),
                    }
                }
                if let Some(dp) = &acc.default_permissions {
                    apply_default_permissions(&mut users, &mut nkeys, dp);
                }
                for u in &mut users {
                    u.account = Some(acc.name.clone());
                }
                for u in &mut nkeys {
                    u.account = Some(acc.name.clone());
                }
                out.users.extend(users);
                out.nkeys.extend(nkeys);
                out.accounts.push(acc);
            }
        }
        _ => cx.error(key, v, format!("expected an array or a map, got {}", v.describe())),
    }
    check_imports_exports(cx, key, v, &out.accounts);
    out
}

/// Imports and exports must name accounts that exist.
fn check_imports_exports(cx: &mut Cx, key: &str, v: &Value, accounts: &[AccountOptions]) {
    let exists = |n: &str| accounts.iter().any(|a| a.name == n);
    for acc in accounts {
        for ex in &acc.exports {
            for a in &ex.accounts {
                if !exists(a) {
                    let what = kind_name(ex.kind);
                    cx.error(key, v, format!("{a:?} account not defined for {what} export"));
                }
            }
        }
        for im in &acc.imports {
            if !exists(&im.account) {
                let what = kind_name(im.kind);
                cx.error(key, v, format!("{:?} account not defined for {what} import", im.account));
            }
        }
    }
}

fn kind_name(k: ExportKind) -> &'static str {
    match k {
        ExportKind::Stream => "stream",
        ExportKind::Service => "service",
    }
}

pub(crate) fn parse_account_jetstream(
    cx: &mut Cx,
    key: &str,
    v: &Value,
) -> Option<Option<AccountJetStreamLimits>> {
    match &v.kind {
        ValueKind::Bool(true) => Some(Some(AccountJetStreamLimits::default())),
        ValueKind::Bool(false) => Some(None),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => Some(Some(AccountJetStreamLimits::default())),
            "disabled" | "disable" => Some(None),
            _ => {
                cx.error(
                    key,
                    v,
                    format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
                );
                None
            }
        },
        ValueKind::Map(m) => {
            let mut l = AccountJetStreamLimits::default();
            for e in m.entries() {
                let k = path(key, &e.key);
                let v = &e.value;
                let size = |cx: &mut Cx| {
                    let n = v.as_int();
                    if n.is_none() {
                        cx.error(
                            &k,
                            v,
                            format!(
                                "Expected a parseable size for {:?}, got {}",
                                e.key,
                                v.describe()
                            ),
                        );
                    }
                    // -1 is nats-server's "unlimited".
                    n.filter(|n| *n >= 0)
                };
                match e.key.to_ascii_lowercase().as_str() {
                    "max_memory" | "max_mem" | "mem" | "memory" => l.max_memory = size(cx),
                    "max_store" | "max_file" | "max_disk" | "store" | "disk" => {
                        l.max_store = size(cx);
                    }
                    "max_streams" | "streams" => l.max_streams = size(cx),
                    "max_consumers" | "consumers" => l.max_consumers = size(cx),
                    "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                        l.max_bytes_required = cx.boolean(&k, v).unwrap_or(false);
                    }
                    "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                        l.memory_max_stream_bytes = size(cx);
                    }
                    "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                        l.store_max_stream_bytes = size(cx);
                    }
                    "max_ack_pending" => l.max_ack_pending = size(cx),
                    "cluster_traffic" => match v.as_str() {
                        Some("system") | Some("") => l.cluster_traffic_owner = false,
                        Some("owner") => l.cluster_traffic_owner = true,
                        _ => cx.error(
                            &k,
                            v,
                            format!(
                                "Expected 'system' or 'owner' string value for {:?}, got {}",
                                e.key,
                                v.describe()
                            ),
                        ),
                    },
                    _ => cx.unknown(key, e),
                }
            }
            Some(Some(l))
        }
        _ => {
            cx.error(
                key,
                v,
                format!("Expected map, bool or string to define JetStream, got {}", v.describe()),
            );
            None
        }
    }
}

fn parse_exports(cx: &mut Cx, key: &str, v: &Value) -> Vec<ExportOptions> {
    let Some(arr) = cx.array(key, v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, ev) in arr.iter().enumerate() {
        let k = index(key, i);
        let Some(m) = ev.as_map() else {
            cx.error(
                &k,
                ev,
                format!("Export Items should be a map with type entry, got {}", ev.describe()),
            );
            continue;
        };
        let mut kind = None;
        let mut subject = String::new();
        let mut ex = ExportOptions {
            kind: ExportKind::Stream,
            subject: String::new(),
            accounts: Vec::new(),
            response_type: None,
            response_threshold: None,
            latency: None,
            account_token_position: None,
            allow_trace: false,
        };
        let mut service_only: Option<(String, &Value)> = None;
        for e in m.entries() {
            let ek = path(&k, &e.key);
            let v = &e.value;
            match e.key.to_ascii_lowercase().as_str() {
                "stream" | "service" => {
                    let this = if e.key.eq_ignore_ascii_case("stream") {
                        ExportKind::Stream
                    } else {
                        ExportKind::Service
                    };
                    if kind.is_some_and(|k| k != this) {
                        cx.error(&ek, v, "Detected stream and service in the same export");
                        continue;
                    }
                    kind = Some(this);
                    subject = cx.string(&ek, v).unwrap_or_default();
                }
                "response" | "response_type" => {
                    service_only.get_or_insert((ek.clone(), v));
                    ex.response_type = match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                        Some("single" | "singleton") => Some(ResponseType::Singleton),
                        Some("stream") => Some(ResponseType::Streamed),
                        Some("chunk" | "chunked") => Some(ResponseType::Chunked),
                        _ => {
                            cx.error(&ek, v, format!("Unknown response type: {}", v.describe()));
                            None
                        }
                    };
                }
                "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                    service_only.get_or_insert((ek.clone(), v));
                    ex.response_threshold = cx.duration_str(&ek, v);
                }
                "accounts" => ex.accounts = cx.strings(&ek, v).unwrap_or_default(),
                "latency" => {
                    service_only.get_or_insert((ek.clone(), v));
                    ex.latency = parse_latency(cx, &ek, v);
                }
                "account_token_position" => ex.account_token_position = cx.u32_(&ek, v),
                "allow_trace" => {
                    service_only.get_or_insert((ek.clone(), v));
                    ex.allow_trace = cx.boolean(&ek, v).unwrap_or(false);
                }
                _ => cx.unknown(&k, e),
            }
        }
        let Some(kind) = kind else {
            cx.error(&k, ev, "export needs a 'stream' or a 'service' subject");
            continue;
        };
        if let (ExportKind::Stream, Some((sk, sv))) = (kind, service_only) {
            cx.error(&sk, sv, "Detected service directive on non-service");
            continue;
        }
        ex.kind = kind;
        ex.subject = subject;
        out.push(ex);
    }
    out
}

fn parse_latency(cx: &mut Cx, key: &str, v: &Value) -> Option<LatencyOptions> {
    if let Some(s) = v.as_str() {
        return Some(LatencyOptions { subject: s.to_string(), sampling: Some(100) });
    }
    let m = cx.map(key, v)?;
    let mut sampling = Some(100u8);
    if let Some(sv) = m.get("sampling") {
        let sk = path(key, "sampling");
        let n = match &sv.kind {
            ValueKind::Integer(n) => *n,
            ValueKind::String(s) if s.trim().eq_ignore_ascii_case("headers") => -1,
            ValueKind::String(s) => match s.trim_end_matches('%').parse::<i64>() {
                Ok(n) => n,
                Err(e) => {
                    cx.error(&sk, sv, format!("Failed to parse latency sample: {e}"));
                    return None;
                }
            },
            _ => {
                cx.error(&sk, sv, "Expected latency sample to be a string or map/struct");
                return None;
            }
        };
        sampling = match n {
            -1 => None,
            1..=100 => Some(n as u8),
            _ => {
                cx.error(&sk, sv, "sampling value should be in range [1..100]");
                return None;
            }
        };
    }
    let Some(subject) = m.get("subject") else {
        cx.error(key, v, "Latency subject required, but missing");
        return None;
    };
    Some(LatencyOptions { subject: cx.string(&path(key, "subject"), subject)?, sampling })
}

fn parse_imports(cx: &mut Cx, key: &str, v: &Value) -> Vec<ImportOptions> {
    let Some(arr) = cx.array(key, v) else {
        return Vec::new();
    };
    let mut out: Vec<ImportOptions> = Vec::new();
    for (i, iv) in arr.iter().enumerate() {
        let k = index(key, i);
        let Some(m) = iv.as_map() else {
            cx.error(
                &k,
                iv,
                format!("Import Items should be a map with type entry, got {}", iv.describe()),
            );
            continue;
        };
        let mut im = ImportOptions {
            kind: ExportKind::Stream,
            account: String::new(),
            subject: String::new(),
            to: None,
            prefix: None,
            share: false,
            allow_trace: false,
        };
        let mut kind = None;
        for e in m.entries() {
            let ek = path(&k, &e.key);
            let v = &e.value;
            match e.key.to_ascii_lowercase().as_str() {
                "stream" | "service" => {
                    let this = if e.key.eq_ignore_ascii_case("stream") {
                        ExportKind::Stream
                    } else {
                        ExportKind::Service
                    };
                    if kind.is_some_and(|k| k != this) {
                        cx.error(&ek, v, "Detected stream and service in the same import");
                        continue;
                    }
                    let Some(am) = v.as_map() else {
                        cx.error(
                            &ek,
                            v,
                            format!("{} entry should be an account map", kind_name(this)),
                        );
                        continue;
                    };
                    for ae in am.entries() {
                        let aek = path(&ek, &ae.key);
                        match ae.key.to_ascii_lowercase().as_str() {
                            "account" => {
                                im.account = cx.string(&aek, &ae.value).unwrap_or_default();
                            }
                            "subject" => {
                                im.subject = cx.string(&aek, &ae.value).unwrap_or_default();
                            }
                            _ => cx.unknown(&ek, ae),
                        }
                    }
                    if im.account.is_empty() || im.subject.is_empty() {
                        cx.error(&ek, v, "Expect an account name and a subject");
                        continue;
                    }
                    kind = Some(this);
                }
                "prefix" => im.prefix = cx.opt_string(&ek, v).flatten(),
                "to" => im.to = cx.opt_string(&ek, v).flatten(),
                "share" => im.share = cx.boolean(&ek, v).unwrap_or(false),
                "allow_trace" => im.allow_trace = cx.boolean(&ek, v).unwrap_or(false),
                _ => cx.unknown(&k, e),
            }
        }
        let Some(kind) = kind else {
            cx.error(&k, iv, "import needs a 'stream' or a 'service' map");
            continue;
        };
        im.kind = kind;
        match kind {
            ExportKind::Stream if im.prefix.is_some() && im.to.is_some() => {
                cx.error(&k, iv, "Stream import can not have a 'prefix' and a 'to' property");
                continue;
            }
            ExportKind::Service if im.allow_trace => {
                cx.error(&k, iv, "Detected allow_trace directive on a non-stream");
                continue;
            }
            _ => {}
        }
        if kind == ExportKind::Service {
            let to = im.to.clone().unwrap_or_else(|| im.subject.clone());
            if let Some(dup) = out.iter().find(|o| {
                o.kind == ExportKind::Service
                    && o.account == im.account
                    && o.to.as_ref().unwrap_or(&o.subject) == &to
            }) {
                cx.error(
                    &k,
                    iv,
                    format!(
                        "Duplicate service import subject {to:?}, previously used in import for \
                         account {:?}, subject {:?}",
                        dup.account, dup.subject
                    ),
                );
                continue;
            }
        }
        out.push(im);
    }
    out
}

pub(crate) fn parse_mappings(cx: &mut Cx, key: &str, v: &Value) -> Vec<MappingOptions> {
    let Some(m) = cx.map(key, v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        if !is_valid_subject(&e.key) {
            cx.error(&k, v, format!("Subject {:?} is not a valid subject", e.key));
            continue;
        }
        let destinations = match &v.kind {
            ValueKind::String(s) => {
                vec![MapDestination { subject: s.clone(), weight: 100, cluster: None }]
            }
            ValueKind::Array(a) => {
                let mut ds = Vec::new();
                for (i, dv) in a.iter().enumerate() {
                    if let Some(d) = parse_map_dest(cx, &index(&k, i), dv) {
                        ds.push(d);
                    }
                }
                ds
            }
            ValueKind::Map(_) => parse_map_dest(cx, &k, v).into_iter().collect(),
            _ => {
                cx.error(&k, v, format!("Unknown type {} for mapping destination", v.describe()));
                continue;
            }
        };
        let total: u32 =
            destinations.iter().filter(|d| d.cluster.is_none()).map(|d| u32::from(d.weight)).sum();
        if total > 100 {
            cx.error(
                &k,
                v,
                format!("Error adding mapping for {:?} : total weight exceeds 100", e.key),
            );
            continue;
        }
        out.push(MappingOptions { subject: e.key.clone(), destinations });
    }
    out
}

fn parse_map_dest(cx: &mut Cx, key: &str, v: &Value) -> Option<MapDestination> {
    let Some(m) = v.as_map() else {
        cx.error(key, v, "Expected an entry for the mapping destination");
        return None;
    };
    let mut d = MapDestination { subject: String::new(), weight: 0, cluster: None };
    let mut weight_set = false;
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "dest" | "destination" => d.subject = cx.string(&k, v)?,
            "weight" => {
                let w = match &v.kind {
                    ValueKind::Integer(n) => *n,
                    ValueKind::String(s) => match s.trim_end_matches('%').parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => {
                            cx.error(
                                &k,
                                v,
                                format!("Invalid weight {s:?} for mapping destination"),
                            );
                            return None;
                        }
                    },
                    _ => {
                        cx.error(
                            &k,
                            v,
                            format!("Unknown entry type for weight of {}", v.describe()),
                        );
                        return None;
                    }
                };
                if !(0..=100).contains(&w) {
                    cx.error(&k, v, format!("Invalid weight {w} for mapping destination"));
                    return None;
                }
                d.weight = w as u8;
                weight_set = true;
            }
            "cluster" => d.cluster = cx.opt_string(&k, v)?,
            _ => {
                cx.error(&k, v, format!("Unknown field {:?} for mapping destination", e.key));
                return None;
            }
        }
    }
    if !weight_set {
        cx.error(key, v, format!("Missing weight for mapping destination {:?}", d.subject));
        return None;
    }
    Some(d)
}

fn parse_limits(cx: &mut Cx, key: &str, v: &Value) -> AccountLimits {
    let mut l = AccountLimits::default();
    let Some(m) = cx.map(key, v) else { return l };
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "max_connections" | "max_conn" => l.max_connections = cx.int(&k, v),
            "max_subscriptions" | "max_subs" => l.max_subscriptions = cx.int(&k, v),
            "max_payload" | "max_pay" => l.max_payload = cx.int(&k, v),
            "max_leafnodes" | "max_leafs" => l.max_leafnodes = cx.int(&k, v),
            _ => cx.unknown(key, e),
        }
    }
    l
}

fn parse_msg_trace(cx: &mut Cx, key: &str, top: &str, v: &Value) -> Option<MsgTraceOptions> {
    let mut t = MsgTraceOptions { dest: None, sampling: 0 };
    let check_dest = |cx: &mut Cx, k: &str, v: &Value| -> Option<String> {
        let d = cx.string(k, v)?;
        if !is_valid_subject(&d) || d.contains(['*', '>']) {
            cx.error(k, v, format!("Trace destination {d:?} is not valid"));
            return None;
        }
        Some(d)
    };
    match &v.kind {
        ValueKind::String(_) => t.dest = Some(check_dest(cx, key, v)?),
        ValueKind::Map(m) => {
            for e in m.entries() {
                let k = path(key, &e.key);
                let v = &e.value;
                match e.key.to_ascii_lowercase().as_str() {
                    "dest" => t.dest = Some(check_dest(cx, &k, v)?),
                    "sampling" => {
                        let n = match &v.kind {
                            ValueKind::Integer(n) => *n,
                            ValueKind::String(s) => s.trim_end_matches('%').parse().unwrap_or(-1),
                            _ => -1,
                        };
                        if !(1..=100).contains(&n) {
                            cx.error(
                                &k,
                                v,
                                format!(
                                    "Trace destination sampling value {} is invalid, needs to be \
                                     [1..100]",
                                    v.describe()
                                ),
                            );
                            return None;
                        }
                        t.sampling = n as u8;
                    }
                    _ => cx.unknown(key, e),
                }
            }
        }
        _ => {
            cx.error(
                key,
                v,
                format!(
                    "Expected account message trace {top:?} to be a string or a map/struct, got {}",
                    v.describe()
                ),
            );
            return None;
        }
    }
    if t.dest.is_some() && t.sampling == 0 {
        t.sampling = 100;
    } else if t.dest.is_none() && t.sampling > 0 {
        cx.warn(key, v, "Trace destination sampling ignored since no destination was set");
        t.sampling = 0;
    }
    Some(t)
}
