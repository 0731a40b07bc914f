//! `authorization { }` blocks, users, NKey users and permissions.

use std::time::Duration;

use serde::Serialize;

use crate::convert::{Cx, index, is_valid_subject, path};
use crate::value::{Map, Value, ValueKind};

/// nats-server's `AUTH_TIMEOUT`.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// `DEFAULT_ALLOW_RESPONSE_MAX_MSGS`.
pub const DEFAULT_ALLOW_RESPONSE_MAX_MSGS: usize = 1;
/// `DEFAULT_ALLOW_RESPONSE_EXPIRATION`.
pub const DEFAULT_ALLOW_RESPONSE_EXPIRATION: Duration = Duration::from_secs(120);

/// The connection types a user may be limited to (`allowed_connection_types`).
pub const CONNECTION_TYPES: &[&str] =
    &["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS"];

/// The server-wide `authorization` block, plus the top-level `no_auth_user`.
///
/// `users` and `nkeys` hold every user of the configuration: those of this block (with
/// `account: None`, i.e. the global account) and those declared inside `accounts { }` (with
/// their account's name), as nats-server keeps them in one list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorizationOptions {
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub users: Vec<UserOptions>,
    pub nkeys: Vec<NkeyUserOptions>,
    /// Time allowed for CONNECT after INFO (default 2 s).
    pub timeout: Duration,
    pub no_auth_user: Option<String>,
    pub default_permissions: Option<Permissions>,
    pub auth_callout: Option<AuthCalloutOptions>,
    pub proxy_required: bool,
}

impl Default for AuthorizationOptions {
    fn default() -> Self {
        AuthorizationOptions {
            token: None,
            user: None,
            password: None,
            users: Vec::new(),
            nkeys: Vec::new(),
            timeout: DEFAULT_AUTH_TIMEOUT,
            no_auth_user: None,
            default_permissions: None,
            auth_callout: None,
            proxy_required: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserOptions {
    pub user: String,
    /// Plain text, or a bcrypt hash starting with `$2a$`.
    pub password: String,
    pub permissions: Option<Permissions>,
    /// `None`: the global account.
    pub account: Option<String>,
    /// Upper-case names from [`CONNECTION_TYPES`]; empty means any.
    pub allowed_connection_types: Vec<String>,
    pub proxy_required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NkeyUserOptions {
    /// Public user NKey (starts with `U`).
    pub nkey: String,
    pub permissions: Option<Permissions>,
    pub account: Option<String>,
    pub allowed_connection_types: Vec<String>,
    pub proxy_required: bool,
}

/// Publish/subscribe permissions.
///
/// As in nats-server, when `allow_responses` is set and the configuration gave no publish
/// allow list, publishing is limited to replies: treat an empty `publish.allow` as "nothing
/// allowed" whenever `allow_responses` is `Some`, and as "no allow restriction" otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Permissions {
    pub publish: Option<SubjectPermission>,
    pub subscribe: Option<SubjectPermission>,
    pub allow_responses: Option<ResponsePermission>,
}

/// A plain list in the configuration means `allow`. Subscribe entries may carry a queue
/// group after a space (`"foo.* workers"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubjectPermission {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponsePermission {
    /// Replies allowed per request; negative values in the file mean "unlimited", stored as
    /// `usize::MAX`.
    pub max: usize,
    pub expires: Duration,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        ResponsePermission {
            max: DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
            expires: DEFAULT_ALLOW_RESPONSE_EXPIRATION,
        }
    }
}

/// `auth_callout { issuer, account, auth_users, xkey, allowed_accounts }` (ADR-26).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuthCalloutOptions {
    /// Public account NKey that signs the responses.
    pub issuer: String,
    /// Account the callout service connects to (`$G` when unset, as in nats-server).
    pub account: String,
    pub auth_users: Vec<String>,
    pub xkey: Option<String>,
    pub allowed_accounts: Vec<String>,
}

/// What one `authorization` block said; callers copy the parts their context allows.
#[derive(Debug, Default)]
pub(crate) struct AuthBlock {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub timeout: Option<Duration>,
    /// `Some` as soon as a `users` key exists, even when its list is empty.
    pub users: Option<Vec<UserOptions>>,
    pub nkeys: Vec<NkeyUserOptions>,
    pub default_permissions: Option<Permissions>,
    pub callout: Option<AuthCalloutOptions>,
    pub proxy_required: bool,
}

/// nats-server's `parseAuthorization`.
pub(crate) fn parse_authorization(cx: &mut Cx, key: &str, v: &Value) -> Option<AuthBlock> {
    let m = cx.map(key, v)?;
    let mut a = AuthBlock::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "user" | "username" => a.user = cx.string(&k, v),
            "pass" | "password" => a.password = cx.string(&k, v),
            "token" => a.token = cx.string(&k, v),
            "timeout" => {
                if let Some(d) = cx.seconds_or_duration(&k, v) {
                    if d > Duration::from_secs(60) {
                        cx.warn(
                            &k,
                            v,
                            format!(
                                "timeout of {} seconds is high, consider keeping it under 60 \
                                 seconds. possibly caused by unquoted duration; use '1m' \
                                 instead of 1m, for example",
                                d.as_secs_f64()
                            ),
                        );
                    }
                    a.timeout = Some(d);
                }
            }
            "users" => {
                if let Some((users, nkeys)) = parse_users(cx, &k, v) {
                    a.users = Some(users);
                    a.nkeys = nkeys;
                }
            }
            "default_permission" | "default_permissions" | "permissions" => {
                a.default_permissions = parse_permissions(cx, &k, v);
            }
            "auth_callout" | "auth_hook" => a.callout = parse_auth_callout(cx, &k, v),
            "proxy_required" => a.proxy_required = cx.boolean(&k, v).unwrap_or(false),
            _ => cx.unknown(key, e),
        }
    }
    if let (Some(dp), Some(users)) = (&a.default_permissions, &mut a.users) {
        apply_default_permissions(users, &mut a.nkeys, dp);
    }
    Some(a)
}

pub(crate) fn apply_default_permissions(
    users: &mut [UserOptions],
    nkeys: &mut [NkeyUserOptions],
    dp: &Permissions,
) {
    for u in users.iter_mut().filter(|u| u.permissions.is_none()) {
        u.permissions = Some(dp.clone());
    }
    for u in nkeys.iter_mut().filter(|u| u.permissions.is_none()) {
        u.permissions = Some(dp.clone());
    }
}

/// A valid public NKey of the given kind (`U` user, `A` account, `O` operator, `X` curve):
/// base32 of one prefix byte, 32 key bytes and a CRC-16 (XMODEM), as nkeys checks it.
pub(crate) fn looks_like_nkey(s: &str, prefix: char) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    if s.len() != 56 || !s.starts_with(prefix) {
        return false;
    }
    let mut raw = Vec::with_capacity(35);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == b) else {
            return false;
        };
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            raw.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if raw.len() != 35 {
        return false;
    }
    let mut crc: u16 = 0;
    for &b in &raw[..33] {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc == u16::from_le_bytes([raw[33], raw[34]])
}

/// nats-server's `parseUsers`: splits an array of user maps into password users and
/// NKey users.
pub(crate) fn parse_users(
    cx: &mut Cx,
    key: &str,
    v: &Value,
) -> Option<(Vec<UserOptions>, Vec<NkeyUserOptions>)> {
    let arr = cx.array(key, v)?;
    let mut users = Vec::new();
    let mut nkeys = Vec::new();
    for (i, uv) in arr.iter().enumerate() {
        let ukey = index(key, i);
        let Some(um) = cx.map(&ukey, uv) else {
            continue;
        };
        let mut user = UserOptions::default();
        let mut nkey = NkeyUserOptions::default();
        let mut perms = None;
        for e in um.entries() {
            let k = path(&ukey, &e.key);
            let v = &e.value;
            match e.key.to_ascii_lowercase().as_str() {
                "nkey" => nkey.nkey = cx.string(&k, v).unwrap_or_default(),
                "user" | "username" => user.user = cx.string(&k, v).unwrap_or_default(),
                "pass" | "password" => user.password = cx.string(&k, v).unwrap_or_default(),
                "permission" | "permissions" | "authorization" => {
                    perms = parse_permissions(cx, &k, v);
                }
                "allowed_connection_types" | "connection_types" | "clients" => {
                    let cts = parse_connection_types(cx, &k, v);
                    user.allowed_connection_types = cts.clone();
                    nkey.allowed_connection_types = cts;
                }
                "proxy_required" => {
                    let b = cx.boolean(&k, v).unwrap_or(false);
                    user.proxy_required = b;
                    nkey.proxy_required = b;
                }
                _ => cx.unknown(&ukey, e),
            }
        }
        if nkey.nkey.is_empty() && user.user.is_empty() {
            cx.error(&ukey, uv, "User entry requires a user");
            return None;
        }
        if !nkey.nkey.is_empty() {
            if !looks_like_nkey(&nkey.nkey, 'U') {
                cx.error(&ukey, uv, "Not a valid public nkey for a user");
                return None;
            }
            if !user.user.is_empty() || !user.password.is_empty() {
                cx.error(&ukey, uv, "Nkey users do not take usernames or passwords");
                return None;
            }
            nkey.permissions = perms;
            nkeys.push(nkey);
        } else {
            user.permissions = perms;
            users.push(user);
        }
    }
    Some((users, nkeys))
}

fn parse_connection_types(cx: &mut Cx, key: &str, v: &Value) -> Vec<String> {
    let Some(list) = cx.strings(key, v) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for ct in list {
        let up = ct.to_ascii_uppercase();
        if !CONNECTION_TYPES.contains(&up.as_str()) {
            cx.error(key, v, format!("unknown connection type {ct:?}"));
            continue;
        }
        if !out.contains(&up) {
            out.push(up);
        }
    }
    out
}

fn parse_auth_callout(cx: &mut Cx, key: &str, v: &Value) -> Option<AuthCalloutOptions> {
    let m = cx.map(key, v)?;
    let mut ac = AuthCalloutOptions::default();
    let mut ok = true;
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "issuer" => {
                ac.issuer = cx.string(&k, v).unwrap_or_default();
                if !looks_like_nkey(&ac.issuer, 'A') {
                    cx.error(
                        &k,
                        v,
                        format!(
                            "Expected callout user to be a valid public account nkey, got {:?}",
                            ac.issuer
                        ),
                    );
                    ok = false;
                }
            }
            "account" | "acc" => ac.account = cx.string(&k, v).unwrap_or_default(),
            "auth_users" | "users" => ac.auth_users = cx.strings(&k, v).unwrap_or_default(),
            "xkey" | "key" => {
                let x = cx.string(&k, v).unwrap_or_default();
                if !looks_like_nkey(&x, 'X') {
                    cx.error(
                        &k,
                        v,
                        format!("Expected callout xkey to be a valid public xkey, got {x:?}"),
                    );
                    ok = false;
                }
                ac.xkey = Some(x);
            }
            "allowed_accounts" => ac.allowed_accounts = cx.strings(&k, v).unwrap_or_default(),
            _ => cx.unknown(key, e),
        }
    }
    if ac.account.is_empty() {
        ac.account = "$G".to_string();
    }
    if ac.issuer.is_empty() {
        cx.error(key, v, "Authorization callouts require an issuer to be specified");
        return None;
    }
    if ac.auth_users.is_empty() {
        cx.error(key, v, "Authorization callouts require authorized users to be specified");
        return None;
    }
    ok.then_some(ac)
}

/// nats-server's `parseUserPermissions`.
pub(crate) fn parse_permissions(cx: &mut Cx, key: &str, v: &Value) -> Option<Permissions> {
    let m = cx.map(key, v)?;
    let mut p = Permissions::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            // For routes, import is publish and export is subscribe.
            "pub" | "publish" | "import" => p.publish = parse_subject_permission(cx, &k, v, false),
            "sub" | "subscribe" | "export" => {
                p.subscribe = parse_subject_permission(cx, &k, v, true);
            }
            "publish_allow_responses" | "allow_responses" => {
                p.allow_responses = match v.kind {
                    ValueKind::Bool(true) => Some(ResponsePermission::default()),
                    ValueKind::Bool(false) => None,
                    _ => parse_allow_responses(cx, &k, v),
                };
                if p.allow_responses.is_some() && p.publish.is_none() {
                    p.publish = Some(SubjectPermission::default());
                }
            }
            _ => cx.unknown(key, e),
        }
    }
    Some(p)
}

fn parse_allow_responses(cx: &mut Cx, key: &str, v: &Value) -> Option<ResponsePermission> {
    let Some(m) = v.as_map() else {
        cx.error(key, v, "error parsing response permissions, expected a boolean or a map");
        return None;
    };
    let mut rp = ResponsePermission::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        let v = &e.value;
        match e.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                // Zero keeps the default; negative means unlimited.
                match cx.int(&k, v)? {
                    0 => {}
                    n if n < 0 => rp.max = usize::MAX,
                    n => rp.max = n as usize,
                }
            }
            "expires" | "expiration" | "ttl" => {
                let ValueKind::String(s) = &v.kind else {
                    cx.error(&k, v, "error parsing expires, not a duration string");
                    return None;
                };
                match crate::duration::parse_go_duration_nanos(s) {
                    Ok(0) => {}
                    // Negative means "never expires".
                    Ok(n) if n < 0 => rp.expires = Duration::MAX,
                    Ok(n) => rp.expires = Duration::from_nanos(n as u64),
                    Err(err) => {
                        cx.error(&k, v, format!("error parsing expires: {err}"));
                        return None;
                    }
                }
            }
            _ => cx.unknown(key, e),
        }
    }
    Some(rp)
}

/// A list (or one subject) means `allow`; a map takes `allow` and `deny`.
fn parse_subject_permission(
    cx: &mut Cx,
    key: &str,
    v: &Value,
    allow_queue: bool,
) -> Option<SubjectPermission> {
    match &v.kind {
        ValueKind::Map(m) => parse_allow_deny(cx, key, m, allow_queue),
        _ => Some(SubjectPermission {
            allow: parse_subjects(cx, key, v, allow_queue)?,
            deny: Vec::new(),
        }),
    }
}

fn parse_allow_deny(
    cx: &mut Cx,
    key: &str,
    m: &Map,
    allow_queue: bool,
) -> Option<SubjectPermission> {
    if m.is_empty() {
        return None;
    }
    let mut p = SubjectPermission::default();
    for e in m.entries() {
        let k = path(key, &e.key);
        match e.key.to_ascii_lowercase().as_str() {
            "allow" => p.allow = parse_subjects(cx, &k, &e.value, allow_queue).unwrap_or_default(),
            "deny" => p.deny = parse_subjects(cx, &k, &e.value, allow_queue).unwrap_or_default(),
            _ if e.used_as_variable => {}
            _ => cx.error(
                &k,
                &e.value,
                format!(
                    "Unknown field name {:?} parsing subject permissions, only 'allow' or \
                     'deny' are permitted",
                    e.key
                ),
            ),
        }
    }
    Some(p)
}

fn parse_subjects(cx: &mut Cx, key: &str, v: &Value, allow_queue: bool) -> Option<Vec<String>> {
    let subjects = match &v.kind {
        ValueKind::String(s) => vec![s.clone()],
        ValueKind::Array(a) => {
            let mut out = Vec::new();
            for (i, e) in a.iter().enumerate() {
                match e.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => {
                        cx.error(
                            &index(key, i),
                            e,
                            "Subject in permissions array cannot be cast to string",
                        );
                        return None;
                    }
                }
            }
            out
        }
        _ => {
            cx.error(
                key,
                v,
                format!(
                    "Expected subject permissions to be a subject, or array of subjects, got {}",
                    v.describe()
                ),
            );
            return None;
        }
    };
    if let Err(msg) = check_subjects(&subjects, allow_queue) {
        cx.error(key, v, msg);
        return None;
    }
    Some(subjects)
}

/// nats-server's `checkPermSubjectArray`.
pub(crate) fn check_subjects(subjects: &[String], allow_queue: bool) -> Result<(), String> {
    for s in subjects {
        if is_valid_subject(s) {
            continue;
        }
        if !allow_queue {
            return Err(format!("subject {s:?} is not a valid subject"));
        }
        let parts: Vec<&str> = s.split_whitespace().collect();
        if parts.len() != 2 {
            return Err(format!("subject {s:?} is not a valid subject"));
        }
        if !is_valid_subject(parts[0]) {
            return Err(format!("subject {:?} is not a valid subject", parts[0]));
        }
        if !is_valid_subject(parts[1]) {
            return Err(format!("queue {:?} is not a valid queue", parts[1]));
        }
    }
    Ok(())
}
