//! Client authentication on CONNECT: tokens and users with passwords.
//!
//! NKeys, JWT, bcrypt passwords, accounts and permissions come with the auth issue; until then
//! a configuration that needs them is refused at start-up rather than silently weakened.

use chorus_conf::Options;

use crate::info::ConnectOpts;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Authorization Violation")]
    Violation,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("authorization: {0} is not supported yet")]
    Unsupported(&'static str),
}

/// Who may connect, built once from the options (and again on reload).
#[derive(Debug, Default)]
pub struct Auth {
    token: Option<String>,
    users: Vec<(String, String)>,
}

impl Auth {
    pub fn from_options(opts: &Options) -> Result<Auth, AuthConfigError> {
        let a = &opts.authorization;
        let mut users: Vec<(String, String)> =
            a.users.iter().map(|u| (u.user.clone(), u.password.clone())).collect();
        if let (Some(u), Some(p)) = (&a.user, &a.password) {
            users.push((u.clone(), p.clone()));
        }
        if users.iter().any(|(_, p)| p.starts_with("$2")) {
            return Err(AuthConfigError::Unsupported("bcrypt passwords"));
        }
        if !a.nkeys.is_empty() {
            return Err(AuthConfigError::Unsupported("nkey users"));
        }
        if a.token.as_deref().is_some_and(|t| t.starts_with("$2")) {
            return Err(AuthConfigError::Unsupported("bcrypt tokens"));
        }
        Ok(Auth { token: a.token.clone(), users })
    }

    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }

    /// Checks the credentials of a CONNECT; returns the user name when there is one.
    pub fn check(&self, c: &ConnectOpts) -> Result<Option<String>, AuthError> {
        if let Some(t) = &self.token {
            return if c.auth_token.as_deref().is_some_and(|given| ct_eq(given, t)) {
                Ok(None)
            } else {
                Err(AuthError::Violation)
            };
        }
        let (Some(user), Some(pass)) = (&c.user, &c.pass) else {
            return Err(AuthError::Violation);
        };
        match self.users.iter().find(|(u, _)| u == user) {
            Some((_, p)) if ct_eq(pass, p) => Ok(Some(user.clone())),
            _ => Err(AuthError::Violation),
        }
    }
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(token: Option<&str>, user: Option<&str>, pass: Option<&str>) -> ConnectOpts {
        ConnectOpts {
            auth_token: token.map(String::from),
            user: user.map(String::from),
            pass: pass.map(String::from),
            ..ConnectOpts::default()
        }
    }

    #[test]
    fn token_and_users() {
        let a = Auth { token: Some("s3cret".into()), users: vec![] };
        assert!(a.required());
        assert!(a.check(&connect(Some("s3cret"), None, None)).is_ok());
        assert_eq!(a.check(&connect(Some("s3cre"), None, None)), Err(AuthError::Violation));
        assert_eq!(a.check(&connect(None, None, None)), Err(AuthError::Violation));
        let a = Auth { token: None, users: vec![("browser".into(), "pw".into())] };
        assert_eq!(
            a.check(&connect(None, Some("browser"), Some("pw"))),
            Ok(Some("browser".into()))
        );
        assert_eq!(a.check(&connect(None, Some("browser"), Some("px"))), Err(AuthError::Violation));
        assert_eq!(a.check(&connect(None, Some("other"), Some("pw"))), Err(AuthError::Violation));
        assert!(!Auth::default().required());
    }
}
