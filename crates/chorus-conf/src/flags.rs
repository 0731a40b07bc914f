//! nats-server's command line (its `ConfigureOptions` and `main.go` usage), parsed the way
//! Go's `flag` package parses: `-flag value`, `-flag=value`, `--flag value`, `--flag=value`,
//! and booleans as `-D` or `-D=false` (never `-D false`). Parsing stops at the first
//! argument that is not a flag; the only such arguments accepted are `version` and `help`.
//!
//! Flags given explicitly override the configuration file, as in nats-server, which parses
//! the command line again after reading the file.

use std::path::PathBuf;

use crate::blocks::{ClusterOptions, TlsOptions};
use crate::options::{DEFAULT_HOST, DEFAULT_PORT, Options};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the server.
    Run(Cli),
    /// `-t`: check the configuration file and exit.
    TestConfig(Cli),
    /// `-v`, `--version` or the word `version`.
    Version,
    /// `-h`, `--help` or the word `help`.
    Help,
    /// `--help_tls`.
    HelpTls,
    /// `-sl <signal>[=<pid>]`: send a signal to a running server. `pid` is a PID or the path
    /// of a PID file, as given.
    Signal { signal: String, pid: Option<String> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    #[error("flag needs an argument: -{0}")]
    NeedsArgument(String),
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidValue { flag: String, value: String, reason: String },
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    #[error("unrecognized command: {0:?}")]
    UnrecognizedCommand(String),
    /// A rule across flags, with nats-server's wording.
    #[error("{0}")]
    Invalid(String),
}

/// The signals `--signal` accepts.
pub const SIGNALS: &[&str] = &["ldm", "stop", "quit", "term", "reopen", "reload"];

/// Every override the command line can make; `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cli {
    pub config_file: Option<PathBuf>,
    /// Chorus's own `--dev`: a development server (relaxed defaults chosen by the binary).
    pub dev: bool,
    pub host: Option<String>,
    /// As nats-server: 0 means "the default port", -1 a random port.
    pub port: Option<i64>,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    pub trace_verbose: Option<bool>,
    pub logtime: Option<bool>,
    pub logtime_utc: Option<bool>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth: Option<String>,
    pub http_port: Option<i64>,
    pub https_port: Option<i64>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub log_size_limit: Option<i64>,
    pub syslog: Option<bool>,
    pub remote_syslog: Option<String>,
    pub prof_port: Option<i64>,
    /// Comma-separated route URLs; `Some("")` clears the configured routes.
    pub routes: Option<String>,
    /// `--cluster` / `--cluster_listen` URL; `Some("")` disables clustering.
    pub cluster_listen: Option<String>,
    pub cluster_advertise: Option<String>,
    pub no_advertise: Option<bool>,
    pub connect_retries: Option<i64>,
    pub cluster_name: Option<String>,
    pub tls: Option<bool>,
    pub tls_verify: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca_cert: Option<PathBuf>,
    pub max_traced_msg_len: Option<i64>,
    pub jetstream: Option<bool>,
    pub store_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Int,
    Str,
}

/// Every flag name and what it takes.
const FLAGS: &[(&str, Kind)] = &[
    ("h", Kind::Bool),
    ("help", Kind::Bool),
    ("port", Kind::Int),
    ("p", Kind::Int),
    ("n", Kind::Str),
    ("name", Kind::Str),
    ("server_name", Kind::Str),
    ("addr", Kind::Str),
    ("a", Kind::Str),
    ("net", Kind::Str),
    ("client_advertise", Kind::Str),
    ("D", Kind::Bool),
    ("debug", Kind::Bool),
    ("V", Kind::Bool),
    ("VV", Kind::Bool),
    ("trace", Kind::Bool),
    ("DV", Kind::Bool),
    ("DVV", Kind::Bool),
    ("T", Kind::Bool),
    ("logtime", Kind::Bool),
    ("logtime_utc", Kind::Bool),
    ("user", Kind::Str),
    ("pass", Kind::Str),
    ("auth", Kind::Str),
    ("m", Kind::Int),
    ("http_port", Kind::Int),
    ("ms", Kind::Int),
    ("https_port", Kind::Int),
    ("c", Kind::Str),
    ("config", Kind::Str),
    ("t", Kind::Bool),
    ("sl", Kind::Str),
    ("signal", Kind::Str),
    ("P", Kind::Str),
    ("pid", Kind::Str),
    ("ports_file_dir", Kind::Str),
    ("l", Kind::Str),
    ("log", Kind::Str),
    ("log_size_limit", Kind::Int),
    ("s", Kind::Bool),
    ("syslog", Kind::Bool),
    ("r", Kind::Str),
    ("remote_syslog", Kind::Str),
    ("version", Kind::Bool),
    ("v", Kind::Bool),
    ("profile", Kind::Int),
    ("routes", Kind::Str),
    ("cluster", Kind::Str),
    ("cluster_listen", Kind::Str),
    ("cluster_advertise", Kind::Str),
    ("no_advertise", Kind::Bool),
    ("connect_retries", Kind::Int),
    ("cluster_name", Kind::Str),
    ("help_tls", Kind::Bool),
    ("tls", Kind::Bool),
    ("tlsverify", Kind::Bool),
    ("tlscert", Kind::Str),
    ("tlskey", Kind::Str),
    ("tlscacert", Kind::Str),
    ("max_traced_msg_len", Kind::Int),
    ("js", Kind::Bool),
    ("jetstream", Kind::Bool),
    ("sd", Kind::Str),
    ("store_dir", Kind::Str),
    ("dev", Kind::Bool),
];

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, or `0x`, `0o`/`0`, `0b` prefixes.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    // Base 0 allows underscores between digits.
    let digits = if radix != 10 || digits.contains('_') { digits.replace('_', "") } else { digits };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    i64::try_from(if neg { -v } else { v }).ok()
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, FlagError> {
    let args: Vec<String> = args.into_iter().collect();
    let mut cli = Cli::default();
    let mut show_version = false;
    let mut show_help = false;
    let mut show_tls_help = false;
    let mut test_config = false;
    let mut signal: Option<String> = None;
    // The `-tls*` flags seen, in the order Go's `flag.Visit` reports them (by name).
    let mut tls_flags: Vec<&'static str> = Vec::new();
    let mut positional: Option<String> = None;

    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg.len() < 2 || !arg.starts_with('-') {
            positional = Some(arg.clone());
            break;
        }
        let body = if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                // `--` ends the flags.
                positional = args.get(i).cloned();
                break;
            }
            long
        } else {
            &arg[1..]
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::BadSyntax(arg.clone()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(name, kind)) = FLAGS.iter().find(|(n, _)| *n == name) else {
            return Err(FlagError::Undefined(name.to_string()));
        };
        let invalid = |value: &str, reason: &str| FlagError::InvalidValue {
            flag: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let mut b = None;
        let mut n = None;
        let mut s = None;
        match kind {
            Kind::Bool => {
                b = Some(match &inline {
                    None => true,
                    Some(v) => parse_bool(v).ok_or_else(|| invalid(v, "parse error"))?,
                });
            }
            Kind::Int | Kind::Str => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        let Some(v) = args.get(i) else {
                            return Err(FlagError::NeedsArgument(name.to_string()));
                        };
                        i += 1;
                        v.clone()
                    }
                };
                if kind == Kind::Int {
                    n = Some(parse_int(&value).ok_or_else(|| invalid(&value, "parse error"))?);
                } else {
                    s = Some(value);
                }
            }
        }
        let (b, n) = (b.unwrap_or(false), n.unwrap_or(0));
        let path = |s: Option<String>| s.map(PathBuf::from);
        match name {
            "h" | "help" => show_help = b,
            "v" | "version" => show_version = b,
            "help_tls" => show_tls_help = b,
            "t" => test_config = b,
            "p" | "port" => cli.port = Some(n),
            "n" | "name" | "server_name" => cli.server_name = s,
            "a" | "addr" | "net" => cli.host = s,
            "client_advertise" => cli.client_advertise = s,
            "D" | "debug" => cli.debug = Some(b),
            "V" | "trace" => cli.trace = Some(b),
            "VV" => {
                cli.trace = Some(b);
                cli.trace_verbose = Some(b);
            }
            "DV" => {
                cli.debug = Some(b);
                cli.trace = Some(b);
            }
            "DVV" => {
                cli.debug = Some(b);
                cli.trace = Some(b);
                cli.trace_verbose = Some(b);
            }
            "T" | "logtime" => cli.logtime = Some(b),
            "logtime_utc" => cli.logtime_utc = Some(b),
            "user" => cli.user = s,
            "pass" => cli.pass = s,
            "auth" => cli.auth = s,
            "m" | "http_port" => cli.http_port = Some(n),
            "ms" | "https_port" => cli.https_port = Some(n),
            "c" | "config" => cli.config_file = path(s),
            "sl" | "signal" => signal = s,
            "P" | "pid" => cli.pid_file = path(s),
            "ports_file_dir" => cli.ports_file_dir = path(s),
            "l" | "log" => cli.log_file = path(s),
            "log_size_limit" => cli.log_size_limit = Some(n),
            "s" | "syslog" => cli.syslog = Some(b),
            "r" | "remote_syslog" => cli.remote_syslog = s,
            "profile" => cli.prof_port = Some(n),
            "routes" => cli.routes = s,
            "cluster" | "cluster_listen" => cli.cluster_listen = s,
            "cluster_advertise" => cli.cluster_advertise = s,
            "no_advertise" => cli.no_advertise = Some(b),
            "connect_retries" => cli.connect_retries = Some(n),
            "cluster_name" => cli.cluster_name = s,
            "tls" => {
                cli.tls = Some(b);
                tls_flags.push("tls");
            }
            "tlsverify" => {
                cli.tls_verify = Some(b);
                tls_flags.push("tlsverify");
            }
            "tlscert" => {
                cli.tls_cert = path(s);
                tls_flags.push("tlscert");
            }
            "tlskey" => {
                cli.tls_key = path(s);
                tls_flags.push("tlskey");
            }
            "tlscacert" => {
                cli.tls_ca_cert = path(s);
                tls_flags.push("tlscacert");
            }
            "max_traced_msg_len" => cli.max_traced_msg_len = Some(n),
            "js" | "jetstream" => cli.jetstream = Some(b),
            "sd" | "store_dir" => cli.store_dir = path(s),
            "dev" => cli.dev = b,
            _ => unreachable!("flag {name} is in FLAGS"),
        }
    }

    if show_version {
        return Ok(Command::Version);
    }
    if show_help {
        return Ok(Command::Help);
    }
    if show_tls_help {
        return Ok(Command::HelpTls);
    }
    if let Some(p) = positional {
        return match p.to_ascii_lowercase().as_str() {
            "version" => Ok(Command::Version),
            "help" => Ok(Command::Help),
            _ => Err(FlagError::UnrecognizedCommand(p)),
        };
    }
    if let Some(sig) = signal {
        let parts: Vec<&str> = sig.split('=').collect();
        if parts.len() > 2 {
            return Err(FlagError::Invalid(format!(
                "invalid signal parameters: {:?}",
                &parts[2..]
            )));
        }
        if !SIGNALS.contains(&parts[0]) {
            return Err(FlagError::Invalid(format!("unknown signal {:?}", parts[0])));
        }
        return Ok(Command::Signal {
            signal: parts[0].to_string(),
            pid: parts.get(1).map(|p| p.to_string()),
        });
    }
    // Go's flag.Visit reports `tls` before `tlscacert`, `tlscert`...: `-tls=false` wins
    // over the other TLS flags whatever their order on the line.
    tls_flags.sort_unstable();
    if cli.tls != Some(false) && !tls_flags.is_empty() {
        if cli.tls_cert.as_deref().is_none_or(|p| p.as_os_str().is_empty()) {
            return Err(FlagError::Invalid(
                "TLS Server certificate must be present and valid".into(),
            ));
        }
        if cli.tls_key.as_deref().is_none_or(|p| p.as_os_str().is_empty()) {
            return Err(FlagError::Invalid(
                "TLS Server private key must be present and valid".into(),
            ));
        }
    }
    if let Some(url) = cli.cluster_listen.as_deref().filter(|u| !u.is_empty()) {
        parse_cluster_url(url).map_err(FlagError::Invalid)?;
    }
    if test_config {
        if cli.config_file.is_none() {
            return Err(FlagError::Invalid(
                "must specify [-c, --config] option to check configuration file syntax".into(),
            ));
        }
        return Ok(Command::TestConfig(cli));
    }
    Ok(Command::Run(cli))
}

/// The parts of a `--cluster` URL: host, port (`None` = random for `:-1`), user, password.
type ClusterUrl = (String, Option<u16>, Option<(String, String)>);

/// `nats://[user:pass@]host:port`, as nats-server's `overrideCluster` reads it.
fn parse_cluster_url(url: &str) -> Result<ClusterUrl, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = crate::convert::split_host_port(hostport)
        .ok_or_else(|| format!("address {hostport}: missing port in address"))?;
    let port = match port.as_str() {
        "-1" => None,
        p => Some(p.parse::<u16>().map_err(|_| format!("invalid port {p:?}"))?),
    };
    let creds = match userinfo {
        None => None,
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => Some((user.to_string(), pass.to_string())),
            None => return Err("expected cluster password to be set".into()),
        },
    };
    Ok((host, port, creds))
}

impl Cli {
    /// Applies the flags given over `opts` (already loaded from the configuration file).
    pub fn apply(&self, opts: &mut Options) {
        if let Some(c) = &self.config_file {
            opts.config_file = Some(c.clone());
        }
        if let Some(h) = &self.host {
            opts.host = if h.is_empty() { DEFAULT_HOST.to_string() } else { h.clone() };
        }
        if let Some(p) = self.port {
            // As nats-server: 0 is "unset" (the default port), -1 random.
            opts.port = match crate::options::flag_port(p) {
                Some(Some(port)) => port,
                _ => DEFAULT_PORT,
            };
        }
        if let Some(n) = &self.server_name {
            opts.server_name.clone_from(n);
        }
        if let Some(a) = &self.client_advertise {
            opts.client_advertise = Some(a.clone()).filter(|a| !a.is_empty());
        }
        set(&mut opts.debug, self.debug);
        set(&mut opts.trace, self.trace);
        set(&mut opts.trace_verbose, self.trace_verbose);
        set(&mut opts.logtime, self.logtime);
        set(&mut opts.logtime_utc, self.logtime_utc);
        set(&mut opts.syslog, self.syslog);
        if let Some(u) = &self.user {
            opts.authorization.user = Some(u.clone()).filter(|s| !s.is_empty());
        }
        if let Some(p) = &self.pass {
            opts.authorization.password = Some(p.clone()).filter(|s| !s.is_empty());
        }
        if let Some(t) = &self.auth {
            opts.authorization.token = Some(t.clone()).filter(|s| !s.is_empty());
        }
        if let Some(p) = self.http_port {
            opts.http_port = crate::options::flag_port(p).flatten();
        }
        if let Some(p) = self.https_port {
            opts.https_port = crate::options::flag_port(p).flatten();
        }
        if let Some(p) = self.prof_port {
            opts.prof_port = crate::options::flag_port(p).flatten();
        }
        if let Some(p) = &self.pid_file {
            opts.pid_file = Some(p.clone()).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(p) = &self.ports_file_dir {
            opts.ports_file_dir = Some(p.clone()).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(p) = &self.log_file {
            opts.log_file = Some(p.clone()).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(n) = self.log_size_limit {
            opts.log_size_limit = n;
        }
        if let Some(r) = &self.remote_syslog {
            opts.remote_syslog = Some(r.clone()).filter(|s| !s.is_empty());
        }
        if let Some(n) = self.max_traced_msg_len {
            opts.max_traced_msg_len = usize::try_from(n).unwrap_or(0);
        }
        if let Some(js) = self.jetstream {
            opts.jetstream.enabled = js;
        }
        if let Some(sd) = &self.store_dir {
            opts.jetstream.store_dir = Some(sd.clone()).filter(|p| !p.as_os_str().is_empty());
        }
        self.apply_cluster(opts);
        self.apply_tls(opts);
    }

    /// [`Cli::apply`], then the check nats-server makes once file and flags are merged.
    pub fn apply_checked(&self, opts: &mut Options) -> Result<(), FlagError> {
        self.apply(opts);
        let has_listener = opts.cluster.as_ref().is_some_and(|c| c.port.is_some());
        if self.routes.as_deref().is_some_and(|r| !r.is_empty()) && !has_listener {
            return Err(FlagError::Invalid(
                "solicited routes require cluster capabilities, e.g. --cluster".into(),
            ));
        }
        Ok(())
    }

    fn apply_cluster(&self, opts: &mut Options) {
        let touches = self.cluster_listen.is_some()
            || self.routes.is_some()
            || self.cluster_name.is_some()
            || self.cluster_advertise.is_some()
            || self.no_advertise.is_some()
            || self.connect_retries.is_some();
        if !touches {
            return;
        }
        let c = opts.cluster.get_or_insert_with(ClusterOptions::default);
        if let Some(n) = &self.cluster_name {
            c.name = Some(n.clone()).filter(|s| !s.is_empty());
        }
        if let Some(a) = &self.cluster_advertise {
            c.advertise = Some(a.clone()).filter(|s| !s.is_empty());
        }
        set(&mut c.no_advertise, self.no_advertise);
        if let Some(n) = self.connect_retries {
            c.connect_retries = u32::try_from(n).unwrap_or(0);
        }
        if let Some(url) = &self.cluster_listen {
            if url.is_empty() {
                c.port = None;
            } else if let Ok((host, port, creds)) = parse_cluster_url(url) {
                c.host = if host.is_empty() { DEFAULT_HOST.to_string() } else { host };
                c.port = Some(port.unwrap_or(0));
                match creds {
                    Some((u, p)) => {
                        c.user = Some(u);
                        c.password = Some(p);
                    }
                    None => {
                        c.user = None;
                        c.password = None;
                    }
                }
            }
        }
        if let Some(r) = &self.routes {
            c.routes = if r.is_empty() {
                Vec::new()
            } else {
                r.split(',').map(|s| s.trim().to_string()).collect()
            };
        }
    }

    fn apply_tls(&self, opts: &mut Options) {
        if self.tls == Some(false) {
            opts.tls = None;
            return;
        }
        let any = self.tls.is_some()
            || self.tls_verify.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca_cert.is_some();
        if !any {
            return;
        }
        // nats-server replaces the whole TLS configuration with the flags' one.
        opts.tls = Some(TlsOptions {
            cert_file: self.tls_cert.clone(),
            key_file: self.tls_key.clone(),
            ca_file: self.tls_ca_cert.clone(),
            verify: self.tls_verify.unwrap_or(false),
            ..TlsOptions::default()
        });
    }
}

fn set(field: &mut bool, v: Option<bool>) {
    if let Some(v) = v {
        *field = v;
    }
}

/// The help text, in nats-server's layout.
pub fn usage() -> &'static str {
    USAGE
}

const USAGE: &str = "
Usage: chorus [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to chorus process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/chorus.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
        --logtime_utc                Timestamps in UTC instead of local timezone (default: false)
    -s, --syslog                     Log to syslog or windows event log
    -r, --remote_syslog <addr>       Syslog server addr (udp://localhost:514)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (traces system account as well)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace (traces system account as well)
        --log_size_limit <limit>     Logfile size limit (default: auto)
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: unlimited)

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes

Profiling Options:
        --profile <port>             Profiling HTTP port

Chorus Options:
        --dev                        Development mode

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help
";
