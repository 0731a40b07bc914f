//! The `tls`, `websocket`, `jetstream`, `cluster` and `resolver` blocks.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::auth::{Permissions, SubjectPermission, check_subjects, parse_authorization};
use crate::convert::{Cx, index, path};
use crate::value::{Value, ValueKind};

/// nats-server's `TLS_TIMEOUT`.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
/// `DEFAULT_TLS_HANDSHAKE_FIRST_FALLBACK_DELAY`.
pub const DEFAULT_TLS_HANDSHAKE_FIRST_FALLBACK_DELAY: Duration = Duration::from_millis(50);
/// `defaultSyncInterval` of the file store.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(120);
/// `DEFAULT_ROUTE_POOL_SIZE`.
pub const DEFAULT_ROUTE_POOL_SIZE: i32 = 3;

/// Go's `tls.CipherSuites()` names, which nats-server accepts in `cipher_suites`.
pub const SECURE_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Go's `tls.InsecureCipherSuites()`: accepted only with `allow_insecure_cipher_suites`.
pub const INSECURE_CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// The curve names nats-server accepts in `curve_preferences`.
pub const CURVE_PREFERENCES: &[&str] = &[
    "SecP384r1MLKEM1024",
    "SecP256r1MLKEM768",
    "X25519MLKEM768",
    "X25519",
    "CurveP256",
    "CurveP384",
    "CurveP521",
];

// ---- TLS ------------------------------------------------------------------------------------

/// A `tls { }` block. Files are not opened here; the TLS layer loads them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsOptions {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Skip verification of the peer's certificate (client side only).
    pub insecure: bool,
    /// Require and verify client certificates.
    pub verify: bool,
    /// Verify client certificates and map their subject to a user.
    pub verify_and_map: bool,
    pub verify_cert_and_check_known_urls: bool,
    pub allow_insecure_cipher_suites: bool,
    /// Go cipher-suite names, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`; empty = defaults.
    pub cipher_suites: Vec<String>,
    /// Go curve names, e.g. `X25519`; empty = defaults.
    pub curve_preferences: Vec<String>,
    /// TLS handshake timeout (default 2 s).
    pub timeout: Duration,
    pub connection_rate_limit: i64,
    /// Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of allowed peers.
    pub pinned_certs: Vec<String>,
    pub cert_store: Option<String>,
    pub cert_match_by: Option<String>,
    pub cert_match: Option<String>,
    pub cert_match_skip_invalid: bool,
    pub ca_certs_match: Vec<String>,
    /// Do the TLS handshake before sending INFO.
    pub handshake_first: bool,
    /// With `handshake_first`, how long to wait for a client's TLS hello before falling back
    /// to INFO first (`auto` = 50 ms).
    pub handshake_first_fallback: Option<Duration>,
    /// `"1.2"` or `"1.3"`.
    pub min_version: Option<String>,
    /// `certs: [{cert_file, key_file}, ...]`, several certificates chosen by SNI.
    pub certs: Vec<TlsCertPair>,
    /// `ocsp_peer`: kept as written (a boolean or a map) for the TLS layer.
    pub ocsp_peer: Option<serde_json::Value>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cert_file: None,
            key_file: None,
            ca_file: None,
            insecure: false,
            verify: false,
            verify_and_map: false,
            verify_cert_and_check_known_urls: false,
            allow_insecure_cipher_suites: false,
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            timeout: DEFAULT_TLS_TIMEOUT,
            connection_rate_limit: 0,
            pinned_certs: Vec::new(),
            cert_store: None,
            cert_match_by: None,
            cert_match: None,
            cert_match_skip_invalid: false,
            ca_certs_match: Vec::new(),
            handshake_first: false,
            handshake_first_fallback: None,
            min_version: None,
            certs: Vec::new(),
            ocsp_peer: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsCertPair {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// nats-server's `parseTLS`. Unlike most blocks, an unknown key here is an error there, and
/// here too.
pub(crate) fn parse_tls(cx: &mut Cx, key: &str, v: &Value, client_ctx: bool) -> Option<TlsOptions> {
    let m = cx.map(key, v)?;
    let mut t = TlsOptions::default();
    let before = cx.errors.len();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        let s = |cx: &mut Cx| cx.string(&k, v);
        let b = |cx: &mut Cx| cx.boolean(&k, v).unwrap_or(false);
        match e.key.to_ascii_lowercase().as_str() {
            "cert_file" => t.cert_file = s(cx).map(PathBuf::from),
            "key_file" => t.key_file = s(cx).map(PathBuf::from),
            "ca_file" => t.ca_file = s(cx).map(PathBuf::from),
            "insecure" => t.insecure = b(cx),
            "verify" => t.verify = b(cx),
            "verify_and_map" => {
                t.verify_and_map = b(cx);
                t.verify |= t.verify_and_map;
            }
            "verify_cert_and_check_known_urls" => {
                let on = b(cx);
                if on && client_ctx {
                    cx.error(
                        &k,
                        v,
                        "verify_cert_and_check_known_urls not supported in this context",
                    );
                }
                t.verify_cert_and_check_known_urls = on;
                t.verify |= on;
            }
            "allow_insecure_cipher_suites" => t.allow_insecure_cipher_suites = b(cx),
            "cipher_suites" => {
                t.cipher_suites = cx.strings(&k, v).unwrap_or_default();
                if t.cipher_suites.is_empty() {
                    cx.error(&k, v, "error parsing tls config, 'cipher_suites' cannot be empty");
                }
            }
            "curve_preferences" => {
                t.curve_preferences = cx.strings(&k, v).unwrap_or_default();
                if t.curve_preferences.is_empty() {
                    cx.error(
                        &k,
                        v,
                        "error parsing tls config, 'curve_preferences' cannot be empty",
                    );
                }
            }
            "timeout" => t.timeout = cx.seconds_or_duration(&k, v).unwrap_or(DEFAULT_TLS_TIMEOUT),
            "connection_rate_limit" => t.connection_rate_limit = cx.int(&k, v).unwrap_or(0),
            "pinned_certs" => {
                for (i, p) in cx.array(&k, v).unwrap_or_default().iter().enumerate() {
                    let Some(p) = cx.string(&index(&k, i), p) else {
                        continue;
                    };
                    let p = p.to_ascii_lowercase();
                    if p.len() != 64 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                        cx.error(
                            &k,
                            v,
                            format!(
                                "error parsing tls config, 'pinned_certs' key {p} does not look \
                                 like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"
                            ),
                        );
                        continue;
                    }
                    t.pinned_certs.push(p);
                }
            }
            "cert_store" => t.cert_store = cx.opt_string(&k, v).flatten(),
            "cert_match_by" => t.cert_match_by = cx.opt_string(&k, v).flatten(),
            "cert_match" => t.cert_match = cx.opt_string(&k, v).flatten(),
            "cert_match_skip_invalid" => t.cert_match_skip_invalid = b(cx),
            "ca_certs_match" => t.ca_certs_match = cx.strings(&k, v).unwrap_or_default(),
            "handshake_first" | "first" | "immediate" => match &v.kind {
                ValueKind::Bool(on) => t.handshake_first = *on,
                ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
                    "true" | "on" => t.handshake_first = true,
                    "false" | "off" => t.handshake_first = false,
                    "auto" | "auto_fallback" => {
                        t.handshake_first = true;
                        t.handshake_first_fallback =
                            Some(DEFAULT_TLS_HANDSHAKE_FIRST_FALLBACK_DELAY);
                    }
                    _ => match crate::duration::parse_go_duration(s) {
                        Ok(d) => {
                            t.handshake_first = true;
                            t.handshake_first_fallback = Some(d);
                        }
                        Err(_) => {
                            cx.error(&k, v, format!("field {:?}'s value {s:?} is invalid", e.key))
                        }
                    },
                },
                _ => cx.error(&k, v, format!("field {:?} should be a boolean or a string", e.key)),
            },
            "ocsp_peer" => match &v.kind {
                ValueKind::Bool(_) | ValueKind::Map(_) => t.ocsp_peer = Some(v.to_json()),
                _ => cx.error(&k, v, "error parsing ocsp peer config: unsupported type"),
            },
            "certs" | "certificates" => {
                for (i, pv) in cx.array(&k, v).unwrap_or_default().iter().enumerate() {
                    let pk = index(&k, i);
                    let Some(pm) = cx.map(&pk, pv) else { continue };
                    let (mut cert, mut keyf) = (None, None);
                    for pe in pm.entries() {
                        let ek = path(&pk, &pe.key);
                        match pe.key.as_str() {
                            "cert_file" => cert = cx.string(&ek, &pe.value),
                            "key_file" => keyf = cx.string(&ek, &pe.value),
                            _ => cx.error(
                                &ek,
                                &pe.value,
                                format!(
                                    "error parsing tls certs config, unknown field {:?}",
                                    pe.key
                                ),
                            ),
                        }
                    }
                    match (cert, keyf) {
                        (Some(c), Some(kf)) if !c.is_empty() && !kf.is_empty() => {
                            t.certs.push(TlsCertPair { cert_file: c.into(), key_file: kf.into() });
                        }
                        _ => cx.error(
                            &pk,
                            pv,
                            "error parsing certificates config: both 'cert_file' and \
                             'cert_key' options are required",
                        ),
                    }
                }
            }
            "min_version" => match &v.kind {
                ValueKind::String(s) => match s.as_str() {
                    "1.2" | "1.3" => t.min_version = Some(s.clone()),
                    "1.0" | "1.1" => cx.error(
                        &k,
                        v,
                        format!("error parsing tls config: unsupported TLS version: TLS {s}"),
                    ),
                    _ => cx.error(&k, v, format!("error parsing tls config: unknown version: {s}")),
                },
                _ => cx.error(
                    &k,
                    v,
                    format!(
                        "error parsing tls config: 'min_version' wrong type: {} (quote it)",
                        v.describe()
                    ),
                ),
            },
            _ => cx.error(&k, v, format!("error parsing tls config, unknown field {:?}", e.key)),
        }
    }
    for c in &t.cipher_suites {
        if !SECURE_CIPHER_SUITES.contains(&c.as_str())
            && !INSECURE_CIPHER_SUITES.contains(&c.as_str())
        {
            cx.error(&path(key, "cipher_suites"), v, format!("unrecognized cipher {c}"));
        }
    }
    let insecure: Vec<&str> = t
        .cipher_suites
        .iter()
        .map(String::as_str)
        .filter(|c| INSECURE_CIPHER_SUITES.contains(c))
        .collect();
    if !insecure.is_empty() && !t.allow_insecure_cipher_suites {
        cx.error(
            key,
            v,
            format!(
                "insecure cipher suites configured without 'allow_insecure_cipher_suites' \
                 option set: {}",
                insecure.join(", ")
            ),
        );
    }
    for c in &t.curve_preferences {
        if !CURVE_PREFERENCES.contains(&c.as_str()) {
            cx.error(
                &path(key, "curve_preferences"),
                v,
                format!("unrecognized curve preference {c}"),
            );
        }
    }
    if !t.certs.is_empty() && t.cert_file.is_some() {
        cx.error(
            key,
            v,
            "error parsing tls config, cannot combine 'cert_file' option with 'certs' option",
        );
    }
    (cx.errors.len() == before).then_some(t)
}

// ---- WebSocket ------------------------------------------------------------------------------

/// A `websocket { }` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebsocketOptions {
    /// Interface to listen on (`0.0.0.0` once a port is set and no host was given).
    pub host: String,
    /// `None`: no WebSocket listener; `Some(0)`: a random port.
    pub port: Option<u16>,
    pub advertise: Option<String>,
    pub no_tls: bool,
    pub tls: Option<TlsOptions>,
    pub same_origin: bool,
    pub allowed_origins: Vec<String>,
    pub compression: bool,
    pub handshake_timeout: Option<Duration>,
    /// The block's own `authorization { user, password, token, timeout }`.
    pub authorization: Option<WebsocketAuth>,
    pub jwt_cookie: Option<String>,
    pub user_cookie: Option<String>,
    pub pass_cookie: Option<String>,
    pub token_cookie: Option<String>,
    pub no_auth_user: Option<String>,
    /// Extra HTTP headers for the upgrade response, in file order.
    pub headers: Vec<(String, String)>,
    pub ping_interval: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebsocketAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub timeout: Option<Duration>,
}

pub(crate) fn parse_websocket(cx: &mut Cx, key: &str, v: &Value) -> Option<WebsocketOptions> {
    let m = cx.map(key, v)?;
    let mut w = WebsocketOptions::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((h, p)) = cx.listen(&k, v) {
                    w.host = h;
                    w.port = p;
                }
            }
            "port" => {
                if let Some(p) = cx.port(&k, v) {
                    w.port = p;
                }
            }
            "host" | "net" => w.host = cx.string(&k, v).unwrap_or_default(),
            "advertise" => w.advertise = cx.opt_string(&k, v).flatten(),
            "no_tls" => w.no_tls = cx.boolean(&k, v).unwrap_or(false),
            "tls" => w.tls = parse_tls(cx, &k, v, true),
            "same_origin" => w.same_origin = cx.boolean(&k, v).unwrap_or(false),
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins"
            | "origin" => w.allowed_origins = cx.strings(&k, v).unwrap_or_default(),
            "handshake_timeout" => {
                w.handshake_timeout = match v.kind {
                    ValueKind::Integer(i) if i >= 0 => Some(Duration::from_secs(i as u64)),
                    _ => cx.duration_str(&k, v),
                };
            }
            "compress" | "compression" => w.compression = cx.boolean(&k, v).unwrap_or(false),
            "authorization" | "authentication" => {
                let Some(am) = cx.map(&k, v) else { continue };
                let mut a = WebsocketAuth::default();
                for ae in am.entries() {
                    let ak = path(&k, &ae.key);
                    let av = &ae.value;
                    match ae.key.to_ascii_lowercase().as_str() {
                        "user" | "username" => a.user = cx.string(&ak, av),
                        "pass" | "password" => a.password = cx.string(&ak, av),
                        "token" => a.token = cx.string(&ak, av),
                        // nats-server reads only numbers here and ignores anything else.
                        "timeout" => {
                            a.timeout = match av.kind {
                                ValueKind::Integer(_) | ValueKind::Float(_) => {
                                    cx.seconds_or_duration(&ak, av)
                                }
                                _ => None,
                            };
                        }
                        _ => cx.unknown(&k, ae),
                    }
                }
                w.authorization = Some(a);
            }
            "jwt_cookie" => w.jwt_cookie = cx.opt_string(&k, v).flatten(),
            "user_cookie" => w.user_cookie = cx.opt_string(&k, v).flatten(),
            "pass_cookie" => w.pass_cookie = cx.opt_string(&k, v).flatten(),
            "token_cookie" => w.token_cookie = cx.opt_string(&k, v).flatten(),
            "no_auth_user" => w.no_auth_user = cx.opt_string(&k, v).flatten(),
            "headers" => {
                let Some(hm) = cx.map(&k, v) else { continue };
                w.headers.clear();
                for he in hm.entries() {
                    if let Some(hv) = cx.string(&path(&k, &he.key), &he.value) {
                        w.headers.push((he.key.clone(), hv));
                    }
                }
            }
            "ping_interval" => w.ping_interval = cx.duration_compat(&k, v),
            _ => cx.unknown(key, e),
        }
    }
    Some(w)
}

// ---- JetStream ------------------------------------------------------------------------------

/// When the file store flushes to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncInterval {
    /// fsync every write before acknowledging it (`sync_interval: always`).
    Always,
    Every(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StoreCipher {
    ChaCha,
    Aes,
}

/// `jetstream: enabled`, `jetstream: true`, or `jetstream { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JetStreamOptions {
    pub enabled: bool,
    pub store_dir: Option<PathBuf>,
    /// `None`: sized dynamically from the machine (nats-server's -1).
    pub max_memory_store: Option<i64>,
    pub max_file_store: Option<i64>,
    pub domain: Option<String>,
    pub sync_interval: SyncInterval,
    /// `strict: false` relaxes API request checks (default true).
    pub strict: bool,
    pub encryption_key: Option<String>,
    pub prev_encryption_key: Option<String>,
    pub cipher: Option<StoreCipher>,
    pub extension_hint: Option<String>,
    pub limits: JetStreamLimits,
    /// Lower-cased and trimmed, as nats-server stores it.
    pub unique_tag: Option<String>,
    pub max_outstanding_catchup: Option<i64>,
    pub max_buffered_size: Option<i64>,
    pub max_buffered_msgs: Option<i64>,
    pub request_queue_limit: Option<i64>,
    pub info_queue_limit: Option<i64>,
    pub meta_compact: Option<u64>,
    pub meta_compact_size: Option<u64>,
    pub meta_compact_sync: bool,
    pub max_concurrent_io: Option<u32>,
    /// `tpm { }` kept as written.
    pub tpm: Option<serde_json::Value>,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            enabled: false,
            store_dir: None,
            max_memory_store: None,
            max_file_store: None,
            domain: None,
            sync_interval: SyncInterval::Every(DEFAULT_SYNC_INTERVAL),
            strict: true,
            encryption_key: None,
            prev_encryption_key: None,
            cipher: None,
            extension_hint: None,
            limits: JetStreamLimits::default(),
            unique_tag: None,
            max_outstanding_catchup: None,
            max_buffered_size: None,
            max_buffered_msgs: None,
            request_queue_limit: None,
            info_queue_limit: None,
            meta_compact: None,
            meta_compact_size: None,
            meta_compact_sync: false,
            max_concurrent_io: None,
            tpm: None,
        }
    }
}

/// `jetstream { limits { } }`: server-wide caps on assets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JetStreamLimits {
    pub max_ack_pending: Option<i64>,
    pub max_ha_assets: Option<i64>,
    pub max_request_batch: Option<i64>,
    pub default_max_consumers: Option<i64>,
    pub duplicate_window: Option<Duration>,
    pub batch_max_inflight_per_stream: Option<i64>,
    pub batch_max_inflight_total: Option<i64>,
    pub batch_max_msgs: Option<i64>,
    pub batch_timeout: Option<Duration>,
}

/// nats-server's `getStorageSize`: an integer, or a string ending in K, M, G or T
/// (powers of 1024).
fn storage_size(cx: &mut Cx, key: &str, v: &Value) -> Option<i64> {
    match &v.kind {
        ValueKind::Integer(i) => Some(*i),
        ValueKind::String(s) if s.is_empty() => Some(0),
        ValueKind::String(s) => {
            let (num, suffix) = s.split_at(s.len() - s.chars().last().map_or(0, char::len_utf8));
            let shift = match suffix {
                "K" => 10,
                "M" => 20,
                "G" => 30,
                "T" => 40,
                _ => {
                    cx.error(key, v, "sizes defined as strings must end in K, M, G, T");
                    return None;
                }
            };
            match num.parse::<i64>().ok().and_then(|n| n.checked_mul(1 << shift)) {
                Some(n) => Some(n),
                None => {
                    cx.error(key, v, format!("expected a size, got {s:?}"));
                    None
                }
            }
        }
        _ => {
            cx.error(key, v, format!("expected a size, got {}", v.describe()));
            None
        }
    }
}

fn parse_cipher(cx: &mut Cx, key: &str, v: &Value) -> Option<StoreCipher> {
    let s = cx.string(key, v)?;
    match s.to_ascii_lowercase().as_str() {
        "chacha" | "chachapoly" => Some(StoreCipher::ChaCha),
        "aes" => Some(StoreCipher::Aes),
        _ => {
            cx.error(key, v, format!("Unknown cipher type: {s:?}"));
            None
        }
    }
}

/// nats-server's `parseJetStream`. `store_dir` is the value of a top-level `store_dir`
/// seen before, which the block must not repeat.
pub(crate) fn parse_jetstream(cx: &mut Cx, key: &str, v: &Value, js: &mut JetStreamOptions) {
    match &v.kind {
        ValueKind::Bool(b) => js.enabled = *b,
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => js.enabled = true,
            "disabled" | "disable" => js.enabled = false,
            _ => cx.error(
                key,
                v,
                format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
            ),
        },
        ValueKind::Map(m) => {
            let mut enable = true;
            for e in m.entries() {
                let k = path(key, &e.key);
                let v = &e.value;
                match e.key.to_ascii_lowercase().as_str() {
                    "strict" => js.strict = cx.boolean(&k, v).unwrap_or(true),
                    "store" | "store_dir" | "storedir" => {
                        if js.store_dir.is_some() {
                            cx.error(&k, v, "Duplicate 'store_dir' configuration");
                        } else {
                            js.store_dir = cx.opt_string(&k, v).flatten().map(PathBuf::from);
                        }
                    }
                    "sync" | "sync_interval" => {
                        if v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("always")) {
                            js.sync_interval = SyncInterval::Always;
                        } else if let Some(d) = cx.duration_compat(&k, v) {
                            js.sync_interval = SyncInterval::Every(d);
                        }
                    }
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        js.max_memory_store = storage_size(cx, &k, v);
                    }
                    "max_file_store" | "max_file" => js.max_file_store = storage_size(cx, &k, v),
                    "domain" => js.domain = cx.opt_string(&k, v).flatten(),
                    "enable" | "enabled" => enable = cx.boolean(&k, v).unwrap_or(true),
                    "key" | "ek" | "encryption_key" => {
                        js.encryption_key = cx.opt_string(&k, v).flatten();
                    }
                    "prev_key" | "prev_ek" | "prev_encryption_key" => {
                        js.prev_encryption_key = cx.opt_string(&k, v).flatten();
                    }
                    "cipher" => js.cipher = parse_cipher(cx, &k, v),
                    "extension_hint" => js.extension_hint = cx.opt_string(&k, v).flatten(),
                    "limits" => parse_js_limits(cx, &k, v, &mut js.limits),
                    "tpm" => {
                        if cx.map(&k, v).is_some() {
                            js.tpm = Some(v.to_json());
                        }
                    }
                    "unique_tag" => {
                        js.unique_tag = cx
                            .string(&k, v)
                            .map(|s| s.trim().to_lowercase())
                            .filter(|s| !s.is_empty());
                    }
                    "max_outstanding_catchup" => {
                        js.max_outstanding_catchup = storage_size(cx, &k, v);
                    }
                    "max_buffered_size" => js.max_buffered_size = storage_size(cx, &k, v),
                    "max_buffered_msgs" => js.max_buffered_msgs = cx.int(&k, v),
                    "request_queue_limit" => js.request_queue_limit = cx.int(&k, v),
                    "info_queue_limit" => js.info_queue_limit = cx.int(&k, v),
                    "meta_compact" => match cx.int(&k, v) {
                        Some(n) if n >= 0 => js.meta_compact = Some(n as u64),
                        Some(n) => cx.error(&k, v, format!("Expected an absolute size, got {n}")),
                        None => {}
                    },
                    "meta_compact_size" => match storage_size(cx, &k, v) {
                        Some(n) if n >= 0 => js.meta_compact_size = Some(n as u64),
                        Some(n) => cx.error(&k, v, format!("Expected an absolute size, got {n}")),
                        None => {}
                    },
                    "meta_compact_sync" => {
                        js.meta_compact_sync = cx.boolean(&k, v).unwrap_or(false)
                    }
                    "max_concurrent_io" => match cx.int(&k, v) {
                        Some(n @ 4..=8192) => js.max_concurrent_io = Some(n as u32),
                        Some(n) => cx.error(
                            &k,
                            v,
                            format!("Expected an absolute size between 4 and 8192, got {n}"),
                        ),
                        None => {}
                    },
                    _ => cx.unknown(key, e),
                }
            }
            js.enabled = enable;
        }
        _ => cx.error(
            key,
            v,
            format!("Expected map, bool or string to define JetStream, got {}", v.describe()),
        ),
    }
}

fn parse_js_limits(cx: &mut Cx, key: &str, v: &Value, l: &mut JetStreamLimits) {
    let Some(m) = cx.map(key, v) else { return };
    *l = JetStreamLimits::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "max_ack_pending" => l.max_ack_pending = cx.int(&k, v),
            "max_ha_assets" => l.max_ha_assets = cx.int(&k, v),
            "max_request_batch" => l.max_request_batch = cx.int(&k, v),
            "default_max_consumers" => l.default_max_consumers = cx.int(&k, v),
            "duplicate_window" => l.duplicate_window = cx.duration_str(&k, v),
            "batch" => {
                let Some(bm) = cx.map(&k, v) else { continue };
                for be in bm.entries() {
                    let bk = path(&k, &be.key);
                    let bv = &be.value;
                    match be.key.to_ascii_lowercase().as_str() {
                        "max_inflight_per_stream" => {
                            l.batch_max_inflight_per_stream = cx.int(&bk, bv);
                        }
                        "max_inflight_total" => l.batch_max_inflight_total = cx.int(&bk, bv),
                        "max_msgs" => l.batch_max_msgs = cx.int(&bk, bv),
                        "timeout" => l.batch_timeout = cx.duration_str(&bk, bv),
                        _ => cx.unknown(&k, be),
                    }
                }
            }
            _ => cx.unknown(key, e),
        }
    }
}

// ---- Cluster --------------------------------------------------------------------------------

/// A `cluster { }` block (routes between servers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterOptions {
    pub name: Option<String>,
    pub host: String,
    /// `None`: no route listener; `Some(0)`: a random port.
    pub port: Option<u16>,
    pub advertise: Option<String>,
    pub no_advertise: bool,
    pub connect_retries: u32,
    pub connect_backoff: bool,
    /// Route connections per peer; negative disables pooling (default 3).
    pub pool_size: i32,
    /// Route URLs to solicit, e.g. `nats://nats-2.internal:6222`.
    pub routes: Vec<String>,
    /// Credentials routes must present (and send): the block's `authorization`.
    pub user: Option<String>,
    pub password: Option<String>,
    pub auth_timeout: Option<Duration>,
    /// Import = what this server accepts from routes, export = what it sends.
    pub permissions: Option<RoutePermissions>,
    pub tls: Option<TlsOptions>,
    /// Accounts with dedicated route connections.
    pub accounts: Vec<String>,
    pub compression: CompressionOptions,
    pub ping_interval: Option<Duration>,
    pub ping_max: Option<u32>,
    pub write_deadline: Option<Duration>,
    pub write_timeout: Option<WriteTimeoutPolicy>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            name: None,
            host: crate::options::DEFAULT_HOST.to_string(),
            port: None,
            advertise: None,
            no_advertise: false,
            connect_retries: 0,
            connect_backoff: false,
            pool_size: DEFAULT_ROUTE_POOL_SIZE,
            routes: Vec::new(),
            user: None,
            password: None,
            auth_timeout: None,
            permissions: None,
            tls: None,
            accounts: Vec::new(),
            compression: CompressionOptions::default(),
            ping_interval: None,
            ping_max: None,
            write_deadline: None,
            write_timeout: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutePermissions {
    pub import: Option<SubjectPermission>,
    pub export: Option<SubjectPermission>,
}

/// Route compression: a mode (`off`, `accept`, `s2_fast`, `s2_better`, `s2_best`, `s2_auto`)
/// and, for `s2_auto`, RTT thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompressionOptions {
    pub mode: String,
    pub rtt_thresholds: Vec<Duration>,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        CompressionOptions { mode: "accept".to_string(), rtt_thresholds: Vec::new() }
    }
}

/// What to do when a write to a connection times out (`write_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WriteTimeoutPolicy {
    Default,
    Close,
    Retry,
}

pub(crate) fn parse_write_timeout(cx: &mut Cx, key: &str, v: &Value) -> Option<WriteTimeoutPolicy> {
    match cx.string(key, v)?.as_str() {
        "default" => Some(WriteTimeoutPolicy::Default),
        "close" => Some(WriteTimeoutPolicy::Close),
        "retry" => Some(WriteTimeoutPolicy::Retry),
        _ => {
            cx.error(key, v, "write_timeout must be 'default', 'close' or 'retry'");
            None
        }
    }
}

fn parse_compression(cx: &mut Cx, key: &str, v: &Value, c: &mut CompressionOptions) {
    match &v.kind {
        ValueKind::String(s) => c.mode = s.clone(),
        ValueKind::Bool(true) => c.mode = "s2_fast".to_string(),
        ValueKind::Bool(false) => c.mode = "off".to_string(),
        ValueKind::Map(m) => {
            for e in m.entries() {
                let k = path(key, &e.key);
                match e.key.to_ascii_lowercase().as_str() {
                    "mode" => c.mode = cx.string(&k, &e.value).unwrap_or_default(),
                    "rtt_thresholds" | "thresholds" | "rtts" | "rtt" => {
                        for (i, t) in cx.array(&k, &e.value).unwrap_or_default().iter().enumerate()
                        {
                            if let Some(d) = cx.duration_str(&index(&k, i), t) {
                                c.rtt_thresholds.push(d);
                            }
                        }
                    }
                    _ if e.used_as_variable => {}
                    _ => cx.error(&k, &e.value, format!("unknown field {:?}", e.key)),
                }
            }
        }
        _ => cx.error(
            key,
            v,
            format!("field {key:?} should be a boolean or a structure, got {}", v.describe()),
        ),
    }
}

fn check_cluster_permissions(p: &Permissions) -> Result<(), String> {
    if let Some(i) = &p.publish {
        check_subjects(&i.allow, false).map_err(|e| format!("cluster import allow: {e}"))?;
        check_subjects(&i.deny, false).map_err(|e| format!("cluster import deny: {e}"))?;
    }
    if let Some(x) = &p.subscribe {
        check_subjects(&x.allow, false).map_err(|e| format!("cluster export allow: {e}"))?;
        check_subjects(&x.deny, false).map_err(|e| format!("cluster export deny: {e}"))?;
    }
    Ok(())
}

/// nats-server's `parseCluster`.
pub(crate) fn parse_cluster(cx: &mut Cx, key: &str, v: &Value) -> Option<ClusterOptions> {
    let m = cx.map(key, v)?;
    let mut c = ClusterOptions::default();
    let mut perms_from_block = false;
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "name" => {
                let Some(n) = cx.string(&k, v) else { continue };
                if n.contains(' ') {
                    cx.error(&k, v, "cluster name cannot contain spaces");
                } else if n == "_" {
                    cx.error(&k, v, "cluster name is reserved");
                } else {
                    c.name = Some(n).filter(|n| !n.is_empty());
                }
            }
            "listen" => {
                if let Some((h, p)) = cx.listen(&k, v) {
                    c.host = if h.is_empty() { crate::options::DEFAULT_HOST.into() } else { h };
                    c.port = p;
                }
            }
            "port" => {
                if let Some(p) = cx.port(&k, v) {
                    c.port = p;
                }
            }
            "host" | "net" => {
                if let Some(h) = cx.string(&k, v) {
                    c.host = h;
                }
            }
            "authorization" => {
                let Some(a) = parse_authorization(cx, &k, v) else {
                    continue;
                };
                if a.users.is_some() {
                    cx.error(&k, v, "Cluster authorization does not allow multiple users");
                    continue;
                }
                if a.token.is_some() {
                    cx.error(&k, v, "Cluster authorization does not support tokens");
                    continue;
                }
                if a.callout.is_some() {
                    cx.error(&k, v, "Cluster authorization does not support callouts");
                    continue;
                }
                c.user = a.user.filter(|s| !s.is_empty());
                c.password = a.password.filter(|s| !s.is_empty());
                c.auth_timeout = a.timeout;
                if let Some(p) = a.default_permissions {
                    if let Err(msg) = check_cluster_permissions(&p) {
                        cx.error(&k, v, msg);
                        continue;
                    }
                    cx.warn(
                        &k,
                        v,
                        "setting \"permissions\" within cluster authorization block is deprecated",
                    );
                    if !perms_from_block {
                        c.permissions =
                            Some(RoutePermissions { import: p.publish, export: p.subscribe });
                    }
                }
            }
            "routes" => {
                let Some(list) = cx.strings(&k, v) else {
                    continue;
                };
                c.routes = list.into_iter().map(|r| r.trim().to_string()).collect();
            }
            "tls" => c.tls = parse_tls(cx, &k, v, false),
            "cluster_advertise" | "advertise" => c.advertise = cx.opt_string(&k, v).flatten(),
            "no_advertise" => c.no_advertise = cx.boolean(&k, v).unwrap_or(false),
            "connect_retries" => c.connect_retries = cx.u32_(&k, v).unwrap_or(0),
            "connect_backoff" => c.connect_backoff = cx.boolean(&k, v).unwrap_or(false),
            "permissions" => {
                let Some(p) = crate::auth::parse_permissions(cx, &k, v) else {
                    continue;
                };
                if p.allow_responses.is_some() {
                    cx.error(&k, v, "Cluster permissions do not support dynamic responses");
                    continue;
                }
                if let Err(msg) = check_cluster_permissions(&p) {
                    cx.error(&k, v, msg);
                    continue;
                }
                perms_from_block = true;
                c.permissions = Some(RoutePermissions { import: p.publish, export: p.subscribe });
            }
            "pool_size" => {
                if let Some(n) = cx.int(&k, v) {
                    c.pool_size = n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                }
            }
            "accounts" => c.accounts = cx.strings(&k, v).unwrap_or_default(),
            "compression" => parse_compression(cx, &k, v, &mut c.compression),
            "ping_interval" => {
                c.ping_interval = cx.duration_compat(&k, v);
                if c.ping_interval.is_some_and(|d| d > Duration::from_secs(30)) {
                    cx.warn(
                        &k,
                        v,
                        "Cluster 'ping_interval' will reset to 30s which is the max for routes",
                    );
                }
            }
            "ping_max" => c.ping_max = cx.u32_(&k, v),
            "write_deadline" => c.write_deadline = cx.duration_compat(&k, v),
            "write_timeout" => c.write_timeout = parse_write_timeout(cx, &k, v),
            _ => cx.unknown(key, e),
        }
    }
    if c.pool_size == 0 {
        c.pool_size = DEFAULT_ROUTE_POOL_SIZE;
    }
    Some(c)
}

// ---- Resolver -------------------------------------------------------------------------------

/// How account JWTs are found in operator mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ResolverOptions {
    /// `resolver: MEMORY`: accounts come from `resolver_preload`.
    Memory,
    /// `resolver: URL("https://host/jwt/v1/accounts/")`.
    Url(String),
    /// `resolver { type: full|cache, dir: ... }`.
    Dir(DirResolverOptions),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DirResolverKind {
    Full,
    Cache,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirResolverOptions {
    pub kind: DirResolverKind,
    pub dir: PathBuf,
    pub allow_delete: bool,
    pub hard_delete: bool,
    pub limit: i64,
    pub ttl: Option<Duration>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

pub(crate) fn parse_resolver(cx: &mut Cx, key: &str, v: &Value) -> Option<ResolverOptions> {
    const BAD: &str = "error parsing account resolver, should be MEM or  URL(\"url\") or a map \
                       containing dir and type state=[FULL|CACHE])";
    match &v.kind {
        ValueKind::String(s) => {
            let t = s.trim();
            let upper = t.to_ascii_uppercase();
            if upper.starts_with("MEM") {
                return Some(ResolverOptions::Memory);
            }
            if let Some(rest) = upper.strip_prefix("URL") {
                let inner = rest.trim();
                if inner.starts_with('(') && inner.ends_with(')') {
                    // Take the URL from the original text, keeping its case.
                    let open = t.find('(').unwrap_or(0);
                    let close = t.rfind(')').unwrap_or(t.len());
                    let url = t[open + 1..close].trim().trim_matches('"').trim();
                    if url.is_empty() || url.contains(char::is_whitespace) {
                        cx.error(key, v, format!("error parsing account resolver URL {url:?}"));
                        return None;
                    }
                    return Some(ResolverOptions::Url(url.to_string()));
                }
            }
            cx.error(key, v, BAD);
            None
        }
        ValueKind::Map(m) => {
            let mut d = DirResolverOptions {
                kind: DirResolverKind::Full,
                dir: PathBuf::new(),
                allow_delete: false,
                hard_delete: false,
                limit: 0,
                ttl: None,
                interval: None,
                timeout: None,
            };
            let mut kind = String::new();
            let mut hard_delete_set = false;
            for e in m.entries() {
                let k = path(key, &e.key);
                let v = &e.value;
                match e.key.as_str() {
                    "dir" => d.dir = cx.string(&k, v).unwrap_or_default().into(),
                    "type" => kind = cx.string(&k, v).unwrap_or_default(),
                    "allow_delete" => d.allow_delete = cx.boolean(&k, v).unwrap_or(false),
                    "hard_delete" => {
                        hard_delete_set = true;
                        d.hard_delete = cx.boolean(&k, v).unwrap_or(false);
                    }
                    "limit" => d.limit = cx.int(&k, v).unwrap_or(0),
                    "ttl" => d.ttl = cx.duration_str(&k, v),
                    "interval" => d.interval = cx.duration_str(&k, v),
                    "timeout" => d.timeout = cx.duration_str(&k, v),
                    _ => cx.unknown(key, e),
                }
            }
            let before = cx.errors.len();
            match kind.to_ascii_uppercase().as_str() {
                "MEM" | "MEMORY" => return Some(ResolverOptions::Memory),
                "CACHE" => {
                    d.kind = DirResolverKind::Cache;
                    if d.interval.is_some() {
                        cx.error(key, v, "CACHE does not accept sync");
                    }
                    if d.allow_delete {
                        cx.error(key, v, "CACHE does not accept allow_delete");
                    }
                    if hard_delete_set {
                        cx.error(key, v, "CACHE does not accept hard_delete");
                    }
                }
                "FULL" => {
                    if d.ttl.is_some() {
                        cx.error(key, v, "FULL does not accept ttl");
                    }
                    if hard_delete_set && !d.allow_delete {
                        cx.error(key, v, "hard_delete has no effect without delete");
                    }
                }
                _ => {
                    cx.error(key, v, BAD);
                    return None;
                }
            }
            if d.dir.as_os_str().is_empty() {
                cx.error(key, v, "dir has no value and needs to point to a directory");
            }
            (cx.errors.len() == before).then_some(ResolverOptions::Dir(d))
        }
        _ => {
            cx.error(
                key,
                v,
                format!("error parsing operator resolver, wrong type {}", v.describe()),
            );
            None
        }
    }
}
