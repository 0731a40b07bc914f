//! Operator (JWT) mode: the trust chain operator -> account -> user, with accounts from
//! `resolver: MEMORY` + `resolver_preload`.
//!
//! The operator JWTs of `operator` are trusted by configuration; their subjects and signing
//! keys may issue accounts. Each preloaded account JWT must be issued by one of those keys,
//! and a client's user JWT (CONNECT `jwt`) by its account or one of the account's signing
//! keys (naming the account in `issuer_account`). The client proves it holds the user key by
//! signing the INFO nonce, unless the user is a bearer token. A user signed by a scoped
//! signing key gets the scope's template permissions, with `{{name()}}`, `{{subject()}}`,
//! `{{account-name()}}`, `{{account-subject()}}`, `{{tag(..)}}` and `{{account-tag(..)}}`
//! filled in as nats-server does.
//!
//! Not checked yet: `src` (allowed networks), `times` (connect windows),
//! `allowed_connection_types`, account limits other than `disallow_bearer`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chorus_conf::{Options, ResolverOptions};

use crate::jwt::{self, AccountClaims, JwtError, SigningKey, UserClaims, UserPermissionLimits};
use crate::perms::{PermError, Permissions};
use crate::users::{AuthError, Credentials, Identity};

/// Why an operator-mode configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("operator: cannot read {path:?}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("operator: no JWT found in {0:?}")]
    NoJwt(String),
    #[error("operator JWT: {0}")]
    Operator(JwtError),
    #[error("operator JWT {0:?} is not self-signed")]
    NotSelfSigned(String),
    #[error("operator mode requires an account resolver")]
    NoResolver,
    #[error("resolver {0} is not supported yet (only MEMORY)")]
    Resolver(&'static str),
    #[error("resolver_preload {key}: {source}")]
    Account { key: String, source: JwtError },
    #[error("resolver_preload {key}: the JWT's subject is {subject}")]
    Subject { key: String, subject: String },
    #[error("resolver_preload {0}: not issued by a trusted operator")]
    Untrusted(String),
    #[error("resolver_preload {key}: default permissions: {source}")]
    Permissions { key: String, source: PermError },
}

#[derive(Debug)]
struct Account {
    claims: AccountClaims,
    default_permissions: Option<Arc<Permissions>>,
}

/// The verified operators and preloaded accounts.
#[derive(Debug)]
pub struct Trust {
    trusted: HashSet<String>,
    accounts: HashMap<String, Account>,
}

impl Trust {
    /// Reads the operators (inline JWTs or files) and verifies every preloaded account.
    pub fn from_options(opts: &Options) -> Result<Trust, OperatorError> {
        let mut trusted = HashSet::new();
        for entry in &opts.operator {
            let token = load_jwt(entry)?;
            let op = jwt::decode::<jwt::OperatorNats>(&token).map_err(OperatorError::Operator)?;
            if op.iss != op.sub {
                return Err(OperatorError::NotSelfSigned(op.sub));
            }
            trusted.extend(op.nats.signing_keys.iter().cloned());
            trusted.insert(op.sub);
        }
        trusted.extend(opts.trusted_keys.iter().cloned());
        match &opts.resolver {
            None => return Err(OperatorError::NoResolver),
            Some(ResolverOptions::Memory) => {}
            Some(ResolverOptions::Url(_)) => return Err(OperatorError::Resolver("URL")),
            Some(ResolverOptions::Dir(_)) => return Err(OperatorError::Resolver("full/cache")),
        }
        let mut accounts = HashMap::new();
        for (key, token) in &opts.resolver_preload {
            let claims = jwt::decode::<jwt::AccountNats>(token)
                .map_err(|source| OperatorError::Account { key: key.clone(), source })?;
            if &claims.sub != key {
                return Err(OperatorError::Subject { key: key.clone(), subject: claims.sub });
            }
            if !trusted.contains(&claims.iss) {
                return Err(OperatorError::Untrusted(key.clone()));
            }
            let default_permissions = claims
                .nats
                .default_permissions
                .to_options()
                .map(|p| Permissions::compile(&p).map(Arc::new))
                .transpose()
                .map_err(|source| OperatorError::Permissions { key: key.clone(), source })?;
            accounts.insert(key.clone(), Account { claims, default_permissions });
        }
        Ok(Trust { trusted, accounts })
    }

    /// Public keys of the accounts clients can land in.
    pub fn account_keys(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// Checks a CONNECT carrying a user JWT, as nats-server's
    /// processClientOrLeafAuthentication does for JWT users.
    pub fn authenticate(&self, c: &Credentials<'_>) -> Result<Identity, AuthError> {
        self.authenticate_at(c, unix_now())
    }

    /// [`Trust::authenticate`] at a given Unix time (tests pin the clock).
    pub fn authenticate_at(&self, c: &Credentials<'_>, now: i64) -> Result<Identity, AuthError> {
        let token = c.jwt.ok_or(AuthError::Violation)?;
        let mut user = jwt::decode::<jwt::UserNats>(token).map_err(|_| AuthError::Violation)?;
        if user.expired(now) || user.not_yet_valid(now) {
            return Err(AuthError::Violation);
        }
        let account_key =
            if user.nats.issuer_account.is_empty() { &user.iss } else { &user.nats.issuer_account };
        let account = self.accounts.get(account_key).ok_or(AuthError::Violation)?;
        let acc = &account.claims;
        if !self.trusted.contains(&acc.iss) {
            return Err(AuthError::Violation);
        }
        if user.iss != acc.sub {
            let key = acc
                .nats
                .signing_keys
                .iter()
                .find(|k| k.key() == user.iss)
                .ok_or(AuthError::Violation)?;
            if let SigningKey::Scoped(scope) = key {
                // A scoped user carries no permissions of its own: the scope decides.
                if scope.kind != "user_scope" || !user.nats.limits.is_empty() {
                    return Err(AuthError::Violation);
                }
                user.nats.limits = apply_scope(&scope.template, &user, acc)?;
            }
        }
        if acc.expired(now) {
            return Err(AuthError::Violation);
        }
        let limits = &user.nats.limits;
        if limits.bearer_token && disallows_bearer(acc) {
            return Err(AuthError::Violation);
        }
        if !limits.bearer_token {
            let (Some(sig), Some(nonce)) = (c.sig, c.nonce) else {
                return Err(AuthError::Violation);
            };
            let sig = decode_sig(sig).ok_or(AuthError::Violation)?;
            let kp =
                nkeys::KeyPair::from_public_key(&user.sub).map_err(|_| AuthError::Violation)?;
            kp.verify(nonce.as_bytes(), &sig).map_err(|_| AuthError::Violation)?;
        }
        if revoked(acc, &user) {
            return Err(AuthError::Violation);
        }
        let permissions = match limits.permissions.to_options() {
            Some(p) => Some(Arc::new(Permissions::compile(&p).map_err(|_| AuthError::Violation)?)),
            None => account.default_permissions.clone(),
        };
        Ok(Identity {
            name: Some(user.sub.clone()),
            account: Some(acc.sub.clone()),
            permissions,
            expires: (user.exp > 0).then_some(user.exp),
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// An operator entry is a JWT or the path of a file holding one (possibly decorated, as
/// `nsc` writes `.jwt` and `.creds` files).
fn load_jwt(entry: &str) -> Result<String, OperatorError> {
    let entry = entry.trim();
    if entry.starts_with("eyJ") && entry.matches('.').count() == 2 {
        return Ok(entry.to_string());
    }
    let text = std::fs::read_to_string(entry)
        .map_err(|source| OperatorError::Read { path: entry.to_string(), source })?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("eyJ") && l.matches('.').count() == 2)
        .map(String::from)
        .ok_or_else(|| OperatorError::NoJwt(entry.to_string()))
}

/// The account's `revocations`: a user JWT issued at or before its key's (or `*`'s) time.
fn revoked(acc: &AccountClaims, user: &UserClaims) -> bool {
    if user.iat == 0 || user.sub.is_empty() {
        return true;
    }
    let r = &acc.nats.revocations;
    [user.sub.as_str(), "*"].iter().any(|k| r.get(*k).is_some_and(|&t| t >= user.iat))
}

fn disallows_bearer(acc: &AccountClaims) -> bool {
    acc.nats.limits.get("disallow_bearer").and_then(serde_json::Value::as_bool).unwrap_or(false)
}

/// Signatures come base64url without padding (nats clients), standard base64 is accepted too.
fn decode_sig(sig: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.decode(sig).ok().or_else(|| STANDARD.decode(sig).ok())
}

/// nats-server caps how many subjects one templated entry may expand to.
const MAX_EXPANSIONS: usize = 4096;

/// The scope's template with the user's and account's values filled in
/// (processUserPermissionsTemplate). Entries that come out as invalid subjects are dropped
/// from allow lists and fail the user in deny lists; an allow list emptied that way turns
/// into `deny >`.
fn apply_scope(
    template: &UserPermissionLimits,
    user: &UserClaims,
    acc: &AccountClaims,
) -> Result<UserPermissionLimits, AuthError> {
    let mut out = template.clone();
    let p = &mut out.permissions;
    let ctx = TemplateCx { user, acc };
    let pub_had_allow = !p.publish.allow.is_empty();
    let sub_had_allow = !p.subscribe.allow.is_empty();
    p.subscribe.allow = ctx.apply(&p.subscribe.allow, false)?;
    p.subscribe.deny = ctx.apply(&p.subscribe.deny, true)?;
    p.publish.allow = ctx.apply(&p.publish.allow, false)?;
    p.publish.deny = ctx.apply(&p.publish.deny, true)?;
    if sub_had_allow && p.subscribe.allow.is_empty() {
        p.subscribe.deny.push(">".into());
    }
    if pub_had_allow && p.publish.allow.is_empty() {
        p.publish.deny.push(">".into());
    }
    Ok(out)
}

struct TemplateCx<'a> {
    user: &'a UserClaims,
    acc: &'a AccountClaims,
}

impl TemplateCx<'_> {
    fn apply(&self, list: &[String], fail_on_bad: bool) -> Result<Vec<String>, AuthError> {
        let mut out = Vec::with_capacity(list.len());
        for entry in list {
            let pieces = split_template(entry);
            // Each placeholder's candidate values; the entry expands to their product.
            let mut expanded = vec![String::new()];
            for piece in pieces {
                let values = match piece {
                    Piece::Text(t) => vec![t.to_string()],
                    Piece::Op(op) => self.values(op, fail_on_bad)?,
                };
                if expanded.len().saturating_mul(values.len()) > MAX_EXPANSIONS {
                    return Err(AuthError::Violation);
                }
                expanded = expanded
                    .iter()
                    .flat_map(|prefix| values.iter().map(move |v| format!("{prefix}{v}")))
                    .collect();
            }
            for subj in expanded {
                if valid_subject(&subj) {
                    if out.len() >= MAX_EXPANSIONS {
                        return Err(AuthError::Violation);
                    }
                    out.push(subj);
                } else if fail_on_bad {
                    return Err(AuthError::Violation);
                }
            }
        }
        Ok(out)
    }

    fn values(&self, op: &str, fail_on_bad: bool) -> Result<Vec<String>, AuthError> {
        let op = op.trim();
        let one = |s: &str| Ok(vec![s.to_string()]);
        if op.eq_ignore_ascii_case("name()") {
            return one(&self.user.name);
        }
        if op.eq_ignore_ascii_case("subject()") {
            return one(&self.user.sub);
        }
        if op.eq_ignore_ascii_case("account-name()") {
            return one(&self.acc.name);
        }
        if op.eq_ignore_ascii_case("account-subject()") {
            return one(&self.user.nats.issuer_account);
        }
        let (tags, tag) = if let Some(t) = strip_call(op, "tag(") {
            (&self.user.nats.tags, t)
        } else if let Some(t) = strip_call(op, "account-tag(") {
            (&self.acc.nats.tags, t)
        } else {
            return Err(AuthError::Violation);
        };
        let prefix = format!("{}:", tag.to_lowercase());
        let found: Vec<String> =
            tags.iter().filter_map(|t| t.strip_prefix(&prefix)).map(String::from).collect();
        if !found.is_empty() {
            Ok(found)
        } else if fail_on_bad {
            Err(AuthError::Violation)
        } else {
            // An invalid subject, so the entry is dropped.
            Ok(vec![" ".into()])
        }
    }
}

fn strip_call<'a>(op: &'a str, name: &str) -> Option<&'a str> {
    let head = op.get(..name.len())?;
    (head.eq_ignore_ascii_case(name) && op.ends_with(')')).then(|| &op[name.len()..op.len() - 1])
}

enum Piece<'a> {
    Text(&'a str),
    Op(&'a str),
}

/// Splits `a.{{name()}}.>` into text and `{{...}}` operations.
fn split_template(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        let inner = &rest[start + 2..start + 2 + len];
        if inner.is_empty() || inner.contains('}') {
            break;
        }
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(Piece::Op(inner));
        rest = &rest[start + 4 + len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Non-empty tokens, no whitespace, `>` only last (nats-server's IsValidSubject).
fn valid_subject(s: &str) -> bool {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return false;
    }
    let tokens: Vec<&str> = s.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| !t.is_empty() && (*t != ">" || i == tokens.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_splitting_and_subject_validity() {
        let p = split_template("a.{{name()}}.{{ subject() }}.>");
        assert_eq!(p.len(), 5);
        assert!(matches!(p[1], Piece::Op("name()")));
        assert!(matches!(p[3], Piece::Op(" subject() ")));
        assert!(valid_subject("a.b.>"));
        assert!(!valid_subject("a..b"));
        assert!(!valid_subject("a.>.b"));
        assert!(!valid_subject("a. .b"));
    }
}
