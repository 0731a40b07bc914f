//! [`Options`]: the typed server configuration, with nats-server's defaults, built from a
//! parsed [`Map`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::accounts::{AccountOptions, MappingOptions, parse_accounts, parse_mappings};
use crate::auth::{AuthorizationOptions, looks_like_nkey, parse_authorization};
use crate::blocks::{
    ClusterOptions, JetStreamOptions, ResolverOptions, TlsOptions, WebsocketOptions,
    WriteTimeoutPolicy, parse_cluster, parse_jetstream, parse_resolver, parse_tls, parse_websocket,
    parse_write_timeout,
};
use crate::convert::{Cx, path, port_from_i64};
use crate::error::{ConfError, Warning};
use crate::value::{Map, Value, ValueKind};

pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 4222;
pub const DEFAULT_HTTP_PORT: u16 = 8222;
pub const DEFAULT_MAX_CONNECTIONS: usize = 64 * 1024;
pub const MAX_CONTROL_LINE_SIZE: usize = 4096;
pub const MAX_PAYLOAD_SIZE: usize = 1024 * 1024;
/// Above this nats-server warns that payloads are "generally discouraged".
pub const MAX_PAYLOAD_MAX_SIZE: usize = 8 * 1024 * 1024;
pub const MAX_PENDING_SIZE: usize = 64 * 1024 * 1024;
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
pub const DEFAULT_PING_MAX_OUT: u32 = 2;
pub const DEFAULT_FLUSH_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_ERROR_REPORTS: u32 = 3600;
pub const DEFAULT_RECONNECT_ERROR_REPORTS: u32 = 1;
pub const DEFAULT_MAX_CLOSED_CLIENTS: usize = 10_000;
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// The whole server configuration, after the file (and, via [`crate::flags::Cli::apply`],
/// the command line) has been applied to nats-server's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Options {
    pub config_file: Option<PathBuf>,
    /// `""`: the server uses its generated id.
    pub server_name: String,
    /// Keys `host`, `net`, `listen`.
    pub host: String,
    /// 0 asks for a random port (`port: -1`).
    pub port: u16,
    pub client_advertise: Option<String>,
    /// Monitoring interface; the client `host` unless `http`/`https` named one.
    pub http_host: String,
    /// Keys `http_port`, `monitor_port`, `http`; `Some(0)`: random port.
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
    pub http_base_path: String,
    /// 0 means no client connection is accepted (`max_connections: 0` in nats-server).
    pub max_connections: usize,
    /// 0 = unlimited.
    pub max_subscriptions: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub write_timeout: Option<WriteTimeoutPolicy>,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub no_header_support: bool,
    pub disable_sublist_cache: bool,
    pub debug: bool,
    pub trace: bool,
    pub trace_verbose: bool,
    pub trace_headers: bool,
    pub logtime: bool,
    pub logtime_utc: bool,
    pub log_file: Option<PathBuf>,
    pub log_size_limit: i64,
    pub log_max_num: i64,
    pub syslog: bool,
    pub remote_syslog: Option<String>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    pub prof_port: Option<u16>,
    pub prof_block_rate: i64,
    pub connect_error_reports: u32,
    pub reconnect_error_reports: u32,
    /// 0 = unlimited.
    pub max_traced_msg_len: usize,
    pub max_closed_clients: usize,
    pub max_sub_tokens: Option<u8>,
    pub no_fast_producer_stall: bool,
    pub proxy_protocol: bool,
    pub authorization: AuthorizationOptions,
    pub accounts: Vec<AccountOptions>,
    /// Top-level `mappings`: subject mappings of the global account.
    pub mappings: Vec<MappingOptions>,
    pub system_account: Option<String>,
    pub no_system_account: bool,
    pub tls: Option<TlsOptions>,
    pub allow_non_tls: bool,
    pub websocket: Option<WebsocketOptions>,
    pub jetstream: JetStreamOptions,
    pub cluster: Option<ClusterOptions>,
    /// Operator JWTs: file paths or the JWT text itself, as written.
    pub operator: Vec<String>,
    pub resolver: Option<ResolverOptions>,
    /// `resolver_preload { ACCOUNT_PUBLIC_KEY: JWT }` in file order.
    pub resolver_preload: Vec<(String, String)>,
    pub resolver_tls: Option<TlsOptions>,
    pub resolver_pinned_accounts: Vec<String>,
    pub trusted_keys: Vec<String>,
    pub server_tags: Vec<String>,
    pub server_metadata: Vec<(String, String)>,
    pub feature_flags: Vec<(String, bool)>,
    pub default_js_domain: Vec<(String, String)>,
    pub default_sentinel: Option<String>,
    /// Blocks accepted but not yet typed; kept as parsed for the issues that implement them.
    #[serde(skip)]
    pub leafnodes: Option<Value>,
    #[serde(skip)]
    pub gateway: Option<Value>,
    #[serde(skip)]
    pub mqtt: Option<Value>,
    #[serde(skip)]
    pub ocsp: Option<Value>,
    #[serde(skip)]
    pub ocsp_cache: Option<Value>,
    #[serde(skip)]
    pub proxies: Option<Value>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_file: None,
            server_name: String::new(),
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            client_advertise: None,
            http_host: DEFAULT_HOST.to_string(),
            http_port: None,
            https_port: None,
            http_base_path: String::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: 0,
            max_payload: MAX_PAYLOAD_SIZE,
            max_pending: MAX_PENDING_SIZE,
            max_control_line: MAX_CONTROL_LINE_SIZE,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX_OUT,
            write_deadline: DEFAULT_FLUSH_DEADLINE,
            write_timeout: None,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            no_header_support: false,
            disable_sublist_cache: false,
            debug: false,
            trace: false,
            trace_verbose: false,
            trace_headers: false,
            logtime: true,
            logtime_utc: false,
            log_file: None,
            log_size_limit: 0,
            log_max_num: 0,
            syslog: false,
            remote_syslog: None,
            pid_file: None,
            ports_file_dir: None,
            prof_port: None,
            prof_block_rate: 0,
            connect_error_reports: DEFAULT_CONNECT_ERROR_REPORTS,
            reconnect_error_reports: DEFAULT_RECONNECT_ERROR_REPORTS,
            max_traced_msg_len: 0,
            max_closed_clients: DEFAULT_MAX_CLOSED_CLIENTS,
            max_sub_tokens: None,
            no_fast_producer_stall: false,
            proxy_protocol: false,
            authorization: AuthorizationOptions::default(),
            accounts: Vec::new(),
            mappings: Vec::new(),
            system_account: None,
            no_system_account: false,
            tls: None,
            allow_non_tls: false,
            websocket: None,
            jetstream: JetStreamOptions::default(),
            cluster: None,
            operator: Vec::new(),
            resolver: None,
            resolver_preload: Vec::new(),
            resolver_tls: None,
            resolver_pinned_accounts: Vec::new(),
            trusted_keys: Vec::new(),
            server_tags: Vec::new(),
            server_metadata: Vec::new(),
            feature_flags: Vec::new(),
            default_js_domain: Vec::new(),
            default_sentinel: None,
            leafnodes: None,
            gateway: None,
            mqtt: None,
            ocsp: None,
            ocsp_cache: None,
            proxies: None,
        }
    }
}

/// Settings whose "unset" state matters until every key has been read.
#[derive(Default)]
struct Pending {
    host: Option<String>,
    port: Option<Option<u16>>,
    http_host: Option<String>,
    auth_timeout_set: bool,
    auth_key: Option<Value>,
    auth_users_key: bool,
    accounts_key: Option<Value>,
    account_users: Vec<crate::auth::UserOptions>,
    account_nkeys: Vec<crate::auth::NkeyUserOptions>,
}

impl Options {
    /// Reads and interprets a configuration file.
    pub fn from_file(path: &Path) -> Result<(Options, Vec<Warning>), ConfError> {
        Options::from_file_with_env(path, &crate::syntax::process_env)
    }

    /// [`Options::from_file`] with the environment given as a function.
    pub fn from_file_with_env(
        path: &Path,
        env: crate::syntax::EnvLookup<'_>,
    ) -> Result<(Options, Vec<Warning>), ConfError> {
        let map = crate::syntax::parse_file_with_env(path, env)?;
        let (mut opts, mut warnings) = Options::from_map(&map)?;
        opts.config_file = Some(path.to_path_buf());
        for w in &mut warnings {
            if w.file.is_none() {
                w.file = Some(path.to_path_buf());
            }
        }
        Ok((opts, warnings))
    }

    /// Interprets a parsed configuration. Every error found is reported (as
    /// [`ConfError::Multiple`] when there are several); unknown keys are warnings.
    pub fn from_map(map: &Map) -> Result<(Options, Vec<Warning>), ConfError> {
        let mut cx = Cx::default();
        let mut o = Options::default();
        let mut p = Pending::default();
        if map.is_empty() {
            cx.warnings.push(Warning {
                file: None,
                key: String::new(),
                line: 0,
                message: "config has no values or is empty".to_string(),
            });
        }
        // The system account is read first: other blocks depend on it in nats-server.
        if let Some(v) = map.get("system_account").or_else(|| map.get("system")) {
            o.system_account = cx.opt_string("system_account", v).flatten();
        }
        for e in map.entries() {
            o.top_level(&mut cx, &mut p, e);
        }
        o.finish(&mut cx, p);
        match ConfError::from_list(cx.errors) {
            Some(err) => Err(err),
            None => Ok((o, cx.warnings)),
        }
    }

    fn top_level(&mut self, cx: &mut Cx, p: &mut Pending, e: &crate::value::Entry) {
        let k = e.key.as_str();
        let v = &e.value;
        let o = self;
        match k.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((h, port)) = cx.listen(k, v) {
                    p.host = Some(h);
                    p.port = Some(port);
                }
            }
            "client_advertise" => o.client_advertise = cx.opt_string(k, v).flatten(),
            "port" => {
                if let Some(port) = cx.port(k, v) {
                    p.port = Some(port);
                }
            }
            "server_name" => {
                if let Some(n) = cx.string(k, v) {
                    if n.contains(' ') {
                        cx.error(k, v, "server name cannot contain spaces");
                    } else {
                        o.server_name = n;
                    }
                }
            }
            "host" | "net" => p.host = cx.string(k, v),
            "debug" => o.debug = cx.boolean(k, v).unwrap_or(o.debug),
            "trace" => o.trace = cx.boolean(k, v).unwrap_or(o.trace),
            "trace_verbose" => {
                if let Some(b) = cx.boolean(k, v) {
                    o.trace_verbose = b;
                    o.trace = b;
                }
            }
            "trace_headers" => {
                if let Some(b) = cx.boolean(k, v) {
                    o.trace_headers = b;
                    o.trace = b;
                }
            }
            "logtime" => o.logtime = cx.boolean(k, v).unwrap_or(o.logtime),
            "logtime_utc" => o.logtime_utc = cx.boolean(k, v).unwrap_or(o.logtime_utc),
            "mappings" | "maps" => o.mappings = parse_mappings(cx, k, v),
            "disable_sublist_cache" | "no_sublist_cache" => {
                o.disable_sublist_cache = cx.boolean(k, v).unwrap_or(false);
            }
            "accounts" => {
                let block = parse_accounts(cx, k, v);
                o.accounts.extend(block.accounts);
                p.account_users.extend(block.users);
                p.account_nkeys.extend(block.nkeys);
                p.accounts_key = Some(v.clone());
            }
            "default_sentinel" => o.default_sentinel = cx.opt_string(k, v).flatten(),
            "authorization" => {
                let Some(a) = parse_authorization(cx, k, v) else {
                    return;
                };
                let auth = &mut o.authorization;
                auth.user = a.user.filter(|s| !s.is_empty());
                auth.password = a.password.filter(|s| !s.is_empty());
                auth.token = a.token.filter(|s| !s.is_empty());
                auth.proxy_required = a.proxy_required;
                auth.auth_callout = a.callout;
                auth.default_permissions = a.default_permissions;
                if let Some(t) = a.timeout {
                    auth.timeout = t;
                    p.auth_timeout_set = true;
                }
                p.auth_users_key = a.users.is_some();
                auth.users = a.users.unwrap_or_default();
                auth.nkeys = a.nkeys;
                p.auth_key = Some(v.clone());
            }
            "http" | "https" => {
                if let Some((h, port)) = cx.listen(k, v) {
                    p.http_host = Some(h);
                    if k.eq_ignore_ascii_case("http") {
                        o.http_port = port;
                    } else {
                        o.https_port = port;
                    }
                }
            }
            "http_port" | "monitor_port" => {
                if let Some(port) = cx.port(k, v) {
                    o.http_port = port;
                }
            }
            "https_port" => {
                if let Some(port) = cx.port(k, v) {
                    o.https_port = port;
                }
            }
            "http_base_path" => o.http_base_path = cx.string(k, v).unwrap_or_default(),
            "cluster" => o.cluster = parse_cluster(cx, k, v),
            "gateway" => o.gateway = raw_map(cx, k, v),
            "leaf" | "leafnodes" => o.leafnodes = raw_map(cx, k, v),
            "store_dir" | "storedir" => {
                if o.jetstream.store_dir.is_some() {
                    cx.error(k, v, "Duplicate 'store_dir' configuration");
                } else {
                    o.jetstream.store_dir = cx.opt_string(k, v).flatten().map(PathBuf::from);
                }
            }
            "jetstream" => parse_jetstream(cx, k, v, &mut o.jetstream),
            "logfile" | "log_file" => o.log_file = cx.opt_string(k, v).flatten().map(Into::into),
            "logfile_size_limit" | "log_size_limit" => {
                o.log_size_limit = cx.size(k, v).unwrap_or(0)
            }
            "logfile_max_num" | "log_max_num" => o.log_max_num = cx.int(k, v).unwrap_or(0),
            "syslog" => o.syslog = cx.boolean(k, v).unwrap_or(false),
            "remote_syslog" => o.remote_syslog = cx.opt_string(k, v).flatten(),
            "pidfile" | "pid_file" => o.pid_file = cx.opt_string(k, v).flatten().map(Into::into),
            "ports_file_dir" => o.ports_file_dir = cx.opt_string(k, v).flatten().map(Into::into),
            "prof_port" => {
                if let Some(port) = cx.port(k, v) {
                    o.prof_port = port;
                }
            }
            "prof_block_rate" => o.prof_block_rate = cx.int(k, v).unwrap_or(0),
            "max_control_line" => {
                if let Some(n) = limit_i32(cx, k, v) {
                    o.max_control_line = if n == 0 { MAX_CONTROL_LINE_SIZE } else { n };
                }
            }
            "max_payload" => {
                if let Some(n) = limit_i32(cx, k, v) {
                    o.max_payload = if n == 0 { MAX_PAYLOAD_SIZE } else { n };
                    if o.max_payload > MAX_PAYLOAD_MAX_SIZE {
                        cx.warn(
                            k,
                            v,
                            "Maximum payloads over 8.00 MB are generally discouraged and could \
                             lead to poor performance",
                        );
                    }
                }
            }
            "max_pending" => {
                if let Some(n) = cx.usize_(k, v) {
                    o.max_pending = if n == 0 { MAX_PENDING_SIZE } else { n };
                }
            }
            "proxy_protocol" => o.proxy_protocol = cx.boolean(k, v).unwrap_or(false),
            "max_connections" | "max_conn" => {
                if let Some(n) = cx.size(k, v) {
                    // nats-server turns 0 into -1, which refuses every client.
                    o.max_connections = usize::try_from(n).unwrap_or(0);
                }
            }
            "max_traced_msg_len" => o.max_traced_msg_len = cx.usize_(k, v).unwrap_or(0),
            "max_subscriptions" | "max_subs" => {
                if let Some(n) = cx.size(k, v) {
                    // Negative counts, like 0, mean "no limit".
                    o.max_subscriptions = usize::try_from(n).unwrap_or(0);
                }
            }
            "max_sub_tokens" | "max_subscription_tokens" => match cx.int(k, v) {
                Some(n) if n > 255 => cx.error(k, v, format!("{k} value is too big")),
                Some(n) if n <= 0 => cx.error(k, v, format!("{k} value can not be negative")),
                Some(n) => o.max_sub_tokens = Some(n as u8),
                None => {}
            },
            "ping_interval" => {
                if let Some(d) = cx.duration_compat(k, v) {
                    o.ping_interval = if d.is_zero() { DEFAULT_PING_INTERVAL } else { d };
                }
            }
            "ping_max" => {
                if let Some(n) = cx.u32_(k, v) {
                    o.ping_max = if n == 0 { DEFAULT_PING_MAX_OUT } else { n };
                }
            }
            "tls" => o.tls = parse_tls(cx, k, v, true),
            "ocsp" => o.ocsp = Some(v.clone()),
            "allow_non_tls" => o.allow_non_tls = cx.boolean(k, v).unwrap_or(false),
            "write_deadline" => {
                if let Some(d) = cx.duration_compat(k, v) {
                    o.write_deadline = if d.is_zero() { DEFAULT_FLUSH_DEADLINE } else { d };
                }
            }
            "write_timeout" => o.write_timeout = parse_write_timeout(cx, k, v),
            "lame_duck_duration" => {
                if let Some(d) = cx.duration_str(k, v) {
                    if d < Duration::from_secs(30) {
                        cx.error(
                            k,
                            v,
                            format!(
                                "invalid lame_duck_duration of {}, minimum is 30 seconds",
                                crate::duration::format_go_duration(d)
                            ),
                        );
                    } else {
                        o.lame_duck_duration = d;
                    }
                }
            }
            "lame_duck_grace_period" => {
                if let Some(d) = cx.duration_str(k, v) {
                    o.lame_duck_grace_period =
                        if d.is_zero() { DEFAULT_LAME_DUCK_GRACE_PERIOD } else { d };
                }
            }
            "operator" | "operators" | "roots" | "root" | "root_operators" | "root_operator" => {
                o.operator = cx.strings(k, v).unwrap_or_default();
            }
            "resolver" | "account_resolver" | "accounts_resolver" => {
                o.resolver = parse_resolver(cx, k, v);
            }
            "resolver_tls" => o.resolver_tls = parse_tls(cx, k, v, true),
            "resolver_preload" => {
                let Some(m) = v.as_map() else {
                    cx.error(k, v, "preload should be a map of account_public_key:account_jwt");
                    return;
                };
                o.resolver_preload.clear();
                for pe in m.entries() {
                    let pk = path(k, &pe.key);
                    match pe.value.as_str() {
                        Some(jwt) if jwt.split('.').count() == 3 => {
                            o.resolver_preload.push((pe.key.clone(), jwt.to_string()));
                        }
                        Some(_) => cx.error(&pk, &pe.value, "invalid account JWT"),
                        None => {
                            cx.error(&pk, &pe.value, "preload map value should be a string JWT")
                        }
                    }
                }
            }
            "resolver_pinned_accounts" => {
                o.resolver_pinned_accounts = cx.strings(k, v).unwrap_or_default();
            }
            "no_auth_user" => o.authorization.no_auth_user = cx.opt_string(k, v).flatten(),
            "system_account" | "system" => {}
            "no_system_account" | "no_system" | "no_sys_acc" => {
                o.no_system_account = cx.boolean(k, v).unwrap_or(false);
            }
            "no_header_support" => o.no_header_support = cx.boolean(k, v).unwrap_or(false),
            "trusted" | "trusted_keys" => {
                o.trusted_keys = cx.strings(k, v).unwrap_or_default();
                for key in &o.trusted_keys {
                    if !looks_like_nkey(key, 'O') {
                        cx.error(
                            k,
                            v,
                            format!(
                                "trust key {key:?} required to be a valid public operator nkey"
                            ),
                        );
                    }
                }
            }
            "connect_error_reports" => {
                if let Some(n) = cx.u32_(k, v) {
                    o.connect_error_reports =
                        if n == 0 { DEFAULT_CONNECT_ERROR_REPORTS } else { n };
                }
            }
            "reconnect_error_reports" => {
                if let Some(n) = cx.u32_(k, v) {
                    o.reconnect_error_reports =
                        if n == 0 { DEFAULT_RECONNECT_ERROR_REPORTS } else { n };
                }
            }
            "websocket" | "ws" => o.websocket = parse_websocket(cx, k, v),
            "mqtt" => o.mqtt = raw_map(cx, k, v),
            "server_tags" => o.server_tags = cx.strings(k, v).unwrap_or_default(),
            "server_metadata" => {
                if let Some(m) = cx.map(k, v) {
                    for me in m.entries() {
                        if let Some(s) = cx.string(&path(k, &me.key), &me.value) {
                            o.server_metadata.push((me.key.clone(), s));
                        }
                    }
                }
            }
            "feature_flags" => {
                if let Some(m) = cx.map(k, v) {
                    for fe in m.entries() {
                        if let Some(b) = cx.boolean(&path(k, &fe.key), &fe.value) {
                            o.feature_flags.push((fe.key.clone(), b));
                        }
                    }
                }
            }
            "default_js_domain" => {
                if let Some(m) = cx.map(k, v) {
                    for de in m.entries() {
                        if let Some(s) = cx.string(&path(k, &de.key), &de.value) {
                            o.default_js_domain.push((de.key.clone(), s));
                        }
                    }
                }
            }
            "ocsp_cache" => o.ocsp_cache = Some(v.clone()),
            "no_fast_producer_stall" => {
                o.no_fast_producer_stall = cx.boolean(k, v).unwrap_or(false)
            }
            "max_closed_clients" => {
                if let Some(n) = cx.usize_(k, v) {
                    o.max_closed_clients = if n == 0 { DEFAULT_MAX_CLOSED_CLIENTS } else { n };
                }
            }
            "proxies" => o.proxies = raw_map(cx, k, v),
            _ => cx.unknown("", e),
        }
    }

    /// Applies defaults that depend on several keys and the cross-block rules nats-server
    /// enforces while reading the file.
    fn finish(&mut self, cx: &mut Cx, p: Pending) {
        if let Some(h) = p.host {
            self.host = if h.is_empty() { DEFAULT_HOST.to_string() } else { h };
        }
        match p.port {
            Some(Some(port)) => self.port = port,
            Some(None) | None => self.port = DEFAULT_PORT,
        }
        self.http_host = match p.http_host {
            Some(h) if !h.is_empty() => h,
            _ => self.host.clone(),
        };
        if let Some(ws) = self.websocket.as_mut()
            && ws.port.is_some()
            && ws.host.is_empty()
        {
            ws.host = DEFAULT_HOST.to_string();
        }
        // With TLS the default authorization timeout is the TLS timeout plus a second.
        if let (false, Some(tls)) = (p.auth_timeout_set, &self.tls) {
            self.authorization.timeout = tls.timeout + Duration::from_secs(1);
        }

        let auth = &mut self.authorization;
        if let Some(av) = &p.auth_key {
            if (auth.user.is_some() || auth.password.is_some()) && auth.token.is_some() {
                cx.error("authorization", av, "Cannot have a user/pass and token");
            }
            if p.auth_users_key || !p.account_users.is_empty() || !p.account_nkeys.is_empty() {
                if auth.user.is_some() {
                    cx.error(
                        "authorization",
                        av,
                        "Can not have a single user/pass and a users array",
                    );
                }
                if auth.token.is_some() {
                    cx.error("authorization", av, "Can not have a token and a users array");
                }
            }
        }
        // Users of accounts come first, then those of the authorization block.
        let mut users = p.account_users;
        users.append(&mut auth.users);
        let mut nkeys = p.account_nkeys;
        nkeys.append(&mut auth.nkeys);
        let dup_at = p.auth_key.as_ref().or(p.accounts_key.as_ref());
        let mut seen: Vec<&str> = Vec::new();
        for name in
            users.iter().map(|u| u.user.as_str()).chain(nkeys.iter().map(|n| n.nkey.as_str()))
        {
            if seen.contains(&name) {
                if let Some(at) = dup_at {
                    let what =
                        if name.len() == 56 && name.starts_with('U') { "nkey" } else { "user" };
                    cx.error("authorization", at, format!("Duplicate {what} {name:?} detected"));
                }
            } else {
                seen.push(name);
            }
        }
        auth.users = users;
        auth.nkeys = nkeys;

        if let Some(callout) = &auth.auth_callout {
            for a in &callout.allowed_accounts {
                if !self.accounts.iter().any(|acc| &acc.name == a) {
                    cx.errors.push(ConfError::Validation(format!(
                        "auth_callout allowed account {a:?} not found in configured accounts"
                    )));
                }
            }
        }
    }
}

/// `max_payload` and `max_control_line` are int32 in nats-server.
fn limit_i32(cx: &mut Cx, k: &str, v: &Value) -> Option<usize> {
    let n = cx.usize_(k, v)?;
    if n > i32::MAX as usize {
        cx.error(k, v, format!("{k} value is too big"));
        return None;
    }
    Some(n)
}

/// Blocks not typed yet must at least be maps.
fn raw_map(cx: &mut Cx, k: &str, v: &Value) -> Option<Value> {
    match v.kind {
        ValueKind::Map(_) => Some(v.clone()),
        _ => {
            cx.error(k, v, format!("expected a map, got {}", v.describe()));
            None
        }
    }
}

/// Used by the flags module: `-1` asks for a random port.
pub(crate) fn flag_port(p: i64) -> Option<Option<u16>> {
    port_from_i64(p)
}
