//! Who may connect: token, users with passwords (plain or bcrypt), NKey users; the account
//! each lands in and the permissions each gets.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use chorus_conf::{AuthorizationOptions, Options, Permissions as PermOptions};

use crate::operator::{OperatorError, Trust};
use crate::perms::{PermError, Permissions};

/// The credentials a client presented in CONNECT.
#[derive(Debug, Default, Clone)]
pub struct Credentials<'a> {
    pub token: Option<&'a str>,
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub nkey: Option<&'a str>,
    pub sig: Option<&'a str>,
    /// The nonce this server sent in INFO (for NKey signatures).
    pub nonce: Option<&'a str>,
    pub jwt: Option<&'a str>,
}

/// A successful authentication.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user name or NKey, for logs and /connz.
    pub name: Option<String>,
    /// Account name; `None` = the global account.
    pub account: Option<String>,
    pub permissions: Option<Arc<Permissions>>,
    /// Unix time (seconds) at which the user JWT expires.
    pub expires: Option<i64>,
    /// Unix time (seconds) at which the user's account JWT expires.
    pub account_expires: Option<i64>,
    /// Per-connection limits from the user JWT (`subs`, `payload`); `None` = unlimited.
    pub max_subs: Option<usize>,
    pub max_payload: Option<usize>,
    /// JWT users: what account updates re-check later (revocations, signing keys).
    pub jwt_user: Option<JwtUser>,
}

/// The parts of a user JWT that later account updates are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtUser {
    pub key: String,
    pub issuer: String,
    pub iat: i64,
    pub bearer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Authorization Violation")]
    Violation,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("authorization: {0}")]
    Permissions(#[from] PermError),
    #[error("authorization: nkey {0:?} is not a valid user NKey")]
    BadNkey(String),
    #[error("authorization: {0} is not supported yet")]
    Unsupported(&'static str),
    #[error("authorization: no_auth_user {0:?} is not a configured user")]
    UnknownNoAuthUser(String),
    #[error(transparent)]
    Operator(#[from] OperatorError),
}

#[derive(Debug)]
struct User {
    password: Secret,
    account: Option<String>,
    permissions: Option<Arc<Permissions>>,
}

#[derive(Debug)]
enum Secret {
    Plain(String),
    Bcrypt(String),
}

impl Secret {
    fn new(s: &str) -> Secret {
        // nats-server treats a value starting with "$2" as a bcrypt hash.
        if s.starts_with("$2") {
            Secret::Bcrypt(s.to_string())
        } else {
            Secret::Plain(s.to_string())
        }
    }

    fn check(&self, given: &str) -> bool {
        match self {
            Secret::Plain(p) => ct_eq(given, p),
            Secret::Bcrypt(h) => bcrypt::verify(given, h).unwrap_or(false),
        }
    }
}

/// The compiled `authorization {}` (and the users of `accounts {}`).
#[derive(Debug, Default)]
pub struct Authenticator {
    token: Option<Secret>,
    users: HashMap<String, User>,
    nkeys: HashMap<String, User>,
    no_auth_user: Option<String>,
    default_permissions: Option<Arc<Permissions>>,
    /// Operator (JWT) mode: when set, only user JWTs are accepted.
    operator: Option<Trust>,
}

impl Authenticator {
    pub fn from_options(opts: &Options) -> Result<Authenticator, AuthConfigError> {
        let a: &AuthorizationOptions = &opts.authorization;
        if a.auth_callout.is_some() {
            return Err(AuthConfigError::Unsupported("auth_callout"));
        }
        if !opts.operator.is_empty() {
            return Ok(Authenticator {
                operator: Some(Trust::from_options(opts)?),
                ..Authenticator::default()
            });
        }
        let compile = |p: &Option<PermOptions>| -> Result<Option<Arc<Permissions>>, PermError> {
            p.as_ref().map(|p| Permissions::compile(p).map(Arc::new)).transpose()
        };
        let default_permissions = compile(&a.default_permissions)?;
        let mut users = HashMap::new();
        for u in &a.users {
            let permissions = compile(&u.permissions)?.or_else(|| default_permissions.clone());
            users.insert(
                u.user.clone(),
                User {
                    password: Secret::new(&u.password),
                    account: u.account.clone(),
                    permissions,
                },
            );
        }
        if let Some(u) = &a.user {
            users.insert(
                u.clone(),
                User {
                    password: Secret::new(a.password.as_deref().unwrap_or_default()),
                    account: None,
                    permissions: default_permissions.clone(),
                },
            );
        }
        let mut nkeys = HashMap::new();
        for n in &a.nkeys {
            if nkeys::KeyPair::from_public_key(&n.nkey).is_err() || !n.nkey.starts_with('U') {
                return Err(AuthConfigError::BadNkey(n.nkey.clone()));
            }
            let permissions = compile(&n.permissions)?.or_else(|| default_permissions.clone());
            nkeys.insert(
                n.nkey.clone(),
                User {
                    password: Secret::Plain(String::new()),
                    account: n.account.clone(),
                    permissions,
                },
            );
        }
        if let Some(u) = &a.no_auth_user
            && !users.contains_key(u)
            && !nkeys.contains_key(u)
        {
            return Err(AuthConfigError::UnknownNoAuthUser(u.clone()));
        }
        Ok(Authenticator {
            token: a.token.as_deref().map(Secret::new),
            users,
            nkeys,
            no_auth_user: a.no_auth_user.clone(),
            default_permissions,
            operator: None,
        })
    }

    /// The operator trust chain, in operator (JWT) mode.
    pub fn operator(&self) -> Option<&Trust> {
        self.operator.as_ref()
    }

    /// Whether clients must authenticate (INFO `auth_required`).
    pub fn required(&self) -> bool {
        self.operator.is_some()
            || self.token.is_some()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
    }

    /// Whether INFO must carry a nonce for NKey signatures.
    pub fn needs_nonce(&self) -> bool {
        self.operator.is_some() || !self.nkeys.is_empty()
    }

    /// The user a client that presents no credentials is taken as, if configured.
    pub fn no_auth_user(&self) -> Option<&str> {
        self.no_auth_user.as_deref()
    }

    /// The identity of a configured user or NKey, without credentials: for transports that
    /// authenticated the client already (a verified certificate under `verify_and_map`).
    pub fn identity_of(&self, name: &str) -> Option<Identity> {
        self.users.get(name).or_else(|| self.nkeys.get(name)).map(|u| identity(name, u))
    }

    /// Whether checking these credentials runs bcrypt (milliseconds of CPU each at the usual
    /// costs), following the order of [`Authenticator::authenticate`]: a server should not run
    /// such a check on the thread that serves other clients.
    pub fn is_expensive(&self, c: &Credentials<'_>) -> bool {
        if self.operator.is_some() || !self.required() || c.nkey.is_some() {
            return false;
        }
        if let Some(t) = &self.token {
            return c.token.is_some() && matches!(t, Secret::Bcrypt(_));
        }
        c.user
            .and_then(|u| self.users.get(u))
            .is_some_and(|u| matches!(u.password, Secret::Bcrypt(_)))
    }

    /// Checks CONNECT credentials, in nats-server's order: NKey, token, user/password, and
    /// `no_auth_user` when nothing was presented. In operator mode only a user JWT is accepted.
    pub fn authenticate(&self, c: &Credentials<'_>) -> Result<Identity, AuthError> {
        if let Some(trust) = &self.operator {
            return trust.authenticate(c);
        }
        if !self.required() {
            return Ok(Identity::default());
        }
        if let Some(nkey) = c.nkey {
            let user = self.nkeys.get(nkey).ok_or(AuthError::Violation)?;
            let (Some(sig), Some(nonce)) = (c.sig, c.nonce) else {
                return Err(AuthError::Violation);
            };
            let sig = decode_sig(sig).ok_or(AuthError::Violation)?;
            let kp = nkeys::KeyPair::from_public_key(nkey).map_err(|_| AuthError::Violation)?;
            kp.verify(nonce.as_bytes(), &sig).map_err(|_| AuthError::Violation)?;
            return Ok(identity(nkey, user));
        }
        if let Some(t) = &self.token {
            return match c.token {
                Some(given) if t.check(given) => Ok(Identity {
                    permissions: self.default_permissions.clone(),
                    ..Identity::default()
                }),
                _ => Err(AuthError::Violation),
            };
        }
        if let Some(name) = c.user {
            let user = self.users.get(name).ok_or(AuthError::Violation)?;
            return if user.password.check(c.pass.unwrap_or_default()) {
                Ok(identity(name, user))
            } else {
                Err(AuthError::Violation)
            };
        }
        let nothing = c.token.is_none() && c.pass.is_none() && c.jwt.is_none();
        if nothing
            && let Some(name) = &self.no_auth_user
            && let Some(user) = self.users.get(name).or_else(|| self.nkeys.get(name))
        {
            return Ok(identity(name, user));
        }
        Err(AuthError::Violation)
    }
}

fn identity(name: &str, u: &User) -> Identity {
    Identity {
        name: Some(name.to_string()),
        account: u.account.clone(),
        permissions: u.permissions.clone(),
        ..Identity::default()
    }
}

/// Signatures come base64url without padding (nats clients), standard base64 is accepted too.
fn decode_sig(sig: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD].iter().find_map(|e| e.decode(sig).ok())
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_conf::{NkeyUserOptions, UserOptions};

    fn creds<'a>() -> Credentials<'a> {
        Credentials::default()
    }

    fn user(name: &str, pass: &str, account: Option<&str>) -> UserOptions {
        UserOptions {
            user: name.into(),
            password: pass.into(),
            account: account.map(String::from),
            ..UserOptions::default()
        }
    }

    #[test]
    fn token() {
        let mut o = Options::default();
        o.authorization.token = Some("s3cret".into());
        let a = Authenticator::from_options(&o).unwrap();
        assert!(a.required());
        assert!(a.authenticate(&Credentials { token: Some("s3cret"), ..creds() }).is_ok());
        assert!(a.authenticate(&Credentials { token: Some("s3cre"), ..creds() }).is_err());
        assert!(a.authenticate(&Credentials { token: Some("s3cret!"), ..creds() }).is_err());
        assert!(a.authenticate(&creds()).is_err());
    }

    #[test]
    fn users_plain_and_bcrypt_with_accounts() {
        let hash = bcrypt::hash("hunter2", 4).unwrap();
        let mut o = Options::default();
        o.authorization.users = vec![user("alice", "pw", Some("A")), user("bob", &hash, None)];
        let a = Authenticator::from_options(&o).unwrap();
        let id = a
            .authenticate(&Credentials { user: Some("alice"), pass: Some("pw"), ..creds() })
            .unwrap();
        assert_eq!(id.account.as_deref(), Some("A"));
        assert!(
            a.authenticate(&Credentials { user: Some("alice"), pass: Some("px"), ..creds() })
                .is_err()
        );
        assert!(
            a.authenticate(&Credentials { user: Some("bob"), pass: Some("hunter2"), ..creds() })
                .is_ok()
        );
        assert!(
            a.authenticate(&Credentials { user: Some("bob"), pass: Some(&hash), ..creds() })
                .is_err()
        );
        assert!(
            a.authenticate(&Credentials { user: Some("carol"), pass: Some("pw"), ..creds() })
                .is_err()
        );
    }

    #[test]
    fn only_bcrypt_checks_are_expensive() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let mut o = Options::default();
        o.authorization.users = vec![user("plain", "pw", None), user("hashed", &hash, None)];
        let a = Authenticator::from_options(&o).unwrap();
        let login = |u| Credentials { user: Some(u), pass: Some("pw"), ..creds() };
        assert!(a.is_expensive(&login("hashed")));
        assert!(!a.is_expensive(&login("plain")));
        assert!(!a.is_expensive(&login("unknown")));
        let mut t = Options::default();
        t.authorization.token = Some(hash.clone());
        let a = Authenticator::from_options(&t).unwrap();
        assert!(a.is_expensive(&Credentials { token: Some("pw"), ..creds() }));
        assert!(!a.is_expensive(&creds()));
    }

    #[test]
    fn nkey_signature_over_the_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let mut o = Options::default();
        o.authorization.nkeys =
            vec![NkeyUserOptions { nkey: kp.public_key(), ..NkeyUserOptions::default() }];
        let a = Authenticator::from_options(&o).unwrap();
        assert!(a.needs_nonce());
        let nonce = "abcDEF123_-";
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(kp.sign(nonce.as_bytes()).unwrap());
        let pk = kp.public_key();
        let ok = Credentials { nkey: Some(&pk), sig: Some(&sig), nonce: Some(nonce), ..creds() };
        assert_eq!(a.authenticate(&ok).unwrap().name.as_deref(), Some(pk.as_str()));
        let wrong_nonce = Credentials { nonce: Some("other"), ..ok.clone() };
        assert!(a.authenticate(&wrong_nonce).is_err());
        let other = nkeys::KeyPair::new_user();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(other.sign(nonce.as_bytes()).unwrap());
        assert!(a.authenticate(&Credentials { sig: Some(&forged), ..ok.clone() }).is_err());
        assert!(a.authenticate(&Credentials { sig: None, ..ok }).is_err());
    }

    #[test]
    fn no_auth_user_applies_only_without_credentials() {
        let mut o = Options::default();
        o.authorization.users = vec![user("guest", "pw", Some("PUBLIC"))];
        o.authorization.no_auth_user = Some("guest".into());
        let a = Authenticator::from_options(&o).unwrap();
        assert_eq!(a.authenticate(&creds()).unwrap().account.as_deref(), Some("PUBLIC"));
        assert!(
            a.authenticate(&Credentials { user: Some("guest"), pass: Some("no"), ..creds() })
                .is_err()
        );
        o.authorization.no_auth_user = Some("nobody".into());
        assert!(Authenticator::from_options(&o).is_err());
    }

    #[test]
    fn open_server_needs_nothing() {
        let a = Authenticator::from_options(&Options::default()).unwrap();
        assert!(!a.required());
        assert!(a.authenticate(&creds()).is_ok());
    }
}
