//! NATS JWTs (github.com/nats-io/jwt v2): decoding, the ed25519 signature check against the
//! issuer's public NKey, and the claim types of operators, accounts and users.
//!
//! A token is `base64url(header).base64url(claims).base64url(signature)`, unpadded; the
//! signature covers the first two parts as text, made by the key named in `iss`.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_conf::{
    Permissions as PermOptions, ResponsePermission, SubjectPermission as SubjectOptions,
};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("jwt: expected three dot-separated parts")]
    Format,
    #[error("jwt: bad base64 in the {0}")]
    Base64(&'static str),
    #[error("jwt: bad {0} JSON: {1}")]
    Json(&'static str, String),
    #[error("jwt: unsupported header (typ {typ:?}, alg {alg:?})")]
    Header { typ: String, alg: String },
    #[error("jwt: issuer {0:?} is not a valid public NKey")]
    Issuer(String),
    #[error("jwt: signature does not verify against the issuer")]
    Signature,
    #[error("jwt: expected a {expected} claim, got {got:?}")]
    Kind { expected: &'static str, got: String },
}

#[derive(Debug, Deserialize)]
struct Header {
    #[serde(default)]
    typ: String,
    #[serde(default)]
    alg: String,
}

/// The fields every claim shares; `N` is the `nats` section of the claim type.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims<N> {
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub nbf: i64,
    pub nats: N,
}

impl<N> Claims<N> {
    /// `exp` passed (0 = never expires).
    pub fn expired(&self, now: i64) -> bool {
        self.exp > 0 && self.exp < now
    }

    /// `nbf` not reached yet.
    pub fn not_yet_valid(&self, now: i64) -> bool {
        self.nbf > 0 && self.nbf > now
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperatorNats {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub signing_keys: Vec<String>,
    #[serde(default)]
    pub system_account: String,
    /// Accounts must be signed by a signing key, not the operator's own key.
    #[serde(default)]
    pub strict_signing_key_usage: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccountNats {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub signing_keys: Vec<SigningKey>,
    /// User public key (or `*` for all users) -> Unix time: user JWTs issued at or before it
    /// are refused.
    #[serde(default)]
    pub revocations: HashMap<String, i64>,
    #[serde(default)]
    pub default_permissions: JwtPermissions,
    #[serde(default)]
    pub limits: serde_json::Value,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub exports: Vec<JwtExport>,
    #[serde(default)]
    pub imports: Vec<JwtImport>,
    /// Subject mappings: source subject -> weighted destinations.
    #[serde(default)]
    pub mappings: std::collections::BTreeMap<String, Vec<JwtMapping>>,
}

/// One destination of an account claim's mapping (jwt v2 `WeightedMapping`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JwtMapping {
    #[serde(default)]
    pub subject: String,
    /// 0 means 100, as jwt's GetWeight.
    #[serde(default)]
    pub weight: u8,
    #[serde(default)]
    pub cluster: String,
}

impl AccountNats {
    /// An account limit (`conn`, `subs`, `payload`, ...); `None` when absent or negative
    /// (jwt's -1 = unlimited).
    pub fn limit(&self, name: &str) -> Option<i64> {
        self.limits.get(name).and_then(serde_json::Value::as_i64).filter(|n| *n >= 0)
    }
}

/// An export of an account claim (jwt v2 `Export`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JwtExport {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub token_req: bool,
    /// `Singleton`, `Stream` or `Chunked`.
    #[serde(default)]
    pub response_type: String,
    /// Nanoseconds.
    #[serde(default)]
    pub response_threshold: i64,
    #[serde(default)]
    pub account_token_position: u32,
}

/// An import of an account claim (jwt v2 `Import`): `subject` is the exporter's subject,
/// `local_subject` (or the older `to`) where it appears in the importing account.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JwtImport {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub local_subject: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub share: bool,
}

/// An account signing key: a bare key, or a scoped key whose template replaces the
/// permissions of the users it signs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SigningKey {
    Plain(String),
    Scoped(Box<UserScope>),
}

impl SigningKey {
    pub fn key(&self) -> &str {
        match self {
            SigningKey::Plain(k) => k,
            SigningKey::Scoped(s) => &s.key,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserScope {
    pub kind: String,
    pub key: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub template: UserPermissionLimits,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StringLists {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl StringLists {
    fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ResponseLimits {
    #[serde(default)]
    pub max: i64,
    /// Nanoseconds, as Go's time.Duration marshals.
    #[serde(default)]
    pub ttl: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JwtPermissions {
    #[serde(rename = "pub", default)]
    pub publish: StringLists,
    #[serde(rename = "sub", default)]
    pub subscribe: StringLists,
    #[serde(default)]
    pub resp: Option<ResponseLimits>,
}

impl JwtPermissions {
    /// The configuration form, or `None` when the claim sets nothing (nats-server then falls
    /// back to the account's default permissions).
    pub fn to_options(&self) -> Option<PermOptions> {
        if self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none() {
            return None;
        }
        let lists = |l: &StringLists| {
            (!l.is_empty()).then(|| SubjectOptions { allow: l.allow.clone(), deny: l.deny.clone() })
        };
        let allow_responses = self.resp.map(|r| {
            let mut rp = ResponsePermission::default();
            // Zero means "the default", as in nats-server's validateResponsePermissions.
            if r.max != 0 {
                rp.max = usize::try_from(r.max).unwrap_or(usize::MAX);
            }
            if r.ttl != 0 {
                rp.expires = Duration::from_nanos(r.ttl.unsigned_abs());
            }
            rp
        });
        Some(PermOptions {
            publish: lists(&self.publish),
            subscribe: lists(&self.subscribe),
            allow_responses,
        })
    }
}

/// Permissions and limits of a user claim (`UserPermissionLimits` in Go). Fields beyond the
/// permissions are kept only so a scoped user can be checked for setting none of them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserPermissionLimits {
    #[serde(flatten)]
    pub permissions: JwtPermissions,
    #[serde(default)]
    pub src: serde_json::Value,
    #[serde(default)]
    pub times: serde_json::Value,
    #[serde(default)]
    pub times_location: String,
    #[serde(default)]
    pub subs: i64,
    #[serde(default)]
    pub data: i64,
    #[serde(default)]
    pub payload: i64,
    #[serde(default)]
    pub bearer_token: bool,
    #[serde(default)]
    pub proxy_required: bool,
    #[serde(default)]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    /// Nothing set at all: what a user signed by a scoped key must look like, since the
    /// scope's template supplies everything.
    pub fn is_empty(&self) -> bool {
        let blank = |v: &serde_json::Value| match v {
            serde_json::Value::Null => true,
            serde_json::Value::Array(a) => a.is_empty(),
            serde_json::Value::String(s) => s.is_empty(),
            _ => false,
        };
        self.permissions == JwtPermissions::default()
            && blank(&self.src)
            && blank(&self.times)
            && self.times_location.is_empty()
            && self.subs == 0
            && self.data == 0
            && self.payload == 0
            && !self.bearer_token
            && !self.proxy_required
            && self.allowed_connection_types.is_empty()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserNats {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(flatten)]
    pub limits: UserPermissionLimits,
    #[serde(default)]
    pub issuer_account: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Generic claims (jwt v2 `GenericClaims`): any `nats` map. Used by account delete requests,
/// whose `nats.accounts` lists the accounts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenericNats {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub accounts: Option<serde_json::Value>,
}

impl Kind for GenericNats {
    /// Any type is accepted.
    const KIND: &'static str = "";
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// An activation token: the exporting account lets `sub` (the importer) import `subject`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivationNats {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "kind", default)]
    pub import_kind: String,
    #[serde(default)]
    pub issuer_account: String,
}

impl Kind for ActivationNats {
    const KIND: &'static str = "activation";
    fn kind(&self) -> &str {
        &self.kind
    }
}

pub type OperatorClaims = Claims<OperatorNats>;
pub type AccountClaims = Claims<AccountNats>;
pub type UserClaims = Claims<UserNats>;

/// A claim whose `nats.type` names what it is.
pub trait Kind {
    const KIND: &'static str;
    fn kind(&self) -> &str;
}

impl Kind for OperatorNats {
    const KIND: &'static str = "operator";
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl Kind for AccountNats {
    const KIND: &'static str = "account";
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl Kind for UserNats {
    const KIND: &'static str = "user";
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// Decodes a JWT and checks its signature against its own `iss`. Who may issue it (the
/// trust chain) is the caller's business.
pub fn decode<N>(token: &str) -> Result<Claims<N>, JwtError>
where
    N: Kind + serde::de::DeserializeOwned,
{
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Format);
    };
    let hb = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Base64("header"))?;
    let header: Header =
        serde_json::from_slice(&hb).map_err(|e| JwtError::Json("header", e.to_string()))?;
    if !header.typ.eq_ignore_ascii_case("JWT") || header.alg != "ed25519-nkey" {
        return Err(JwtError::Header { typ: header.typ, alg: header.alg });
    }
    let cb = URL_SAFE_NO_PAD.decode(c).map_err(|_| JwtError::Base64("claims"))?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Base64("signature"))?;
    let claims: Claims<N> =
        serde_json::from_slice(&cb).map_err(|e| JwtError::Json("claims", e.to_string()))?;
    let issuer = nkeys::KeyPair::from_public_key(&claims.iss)
        .map_err(|_| JwtError::Issuer(claims.iss.clone()))?;
    let signed = &token[..h.len() + 1 + c.len()];
    issuer.verify(signed.as_bytes(), &sig).map_err(|_| JwtError::Signature)?;
    if !N::KIND.is_empty() && claims.nats.kind() != N::KIND {
        return Err(JwtError::Kind { expected: N::KIND, got: claims.nats.kind().to_string() });
    }
    Ok(claims)
}
