//! Client authentication on CONNECT: the server-side adapter of `chorus-auth`.
//!
//! `chorus-auth` decides (tokens, plain and bcrypt passwords, NKey signatures over the INFO
//! nonce, `no_auth_user`, operator mode with user JWTs, the account and permissions of each
//! user); this module turns a CONNECT into its credentials. Auth callout and the URL and cache
//! account resolvers are refused at start-up rather than silently weakened.

use chorus_conf::Options;

pub use chorus_auth::{AuthConfigError, AuthError, Identity, Permissions};

use crate::info::ConnectOpts;

/// Who may connect, built once from the options (and again on reload).
#[derive(Debug, Default)]
pub struct Auth {
    inner: chorus_auth::Authenticator,
}

impl Auth {
    pub fn from_options(opts: &Options) -> Result<Auth, AuthConfigError> {
        Ok(Auth { inner: chorus_auth::Authenticator::from_options(opts)? })
    }

    pub fn required(&self) -> bool {
        self.inner.required()
    }

    /// The user a CONNECT without credentials is taken as (`no_auth_user`).
    pub fn no_auth_user(&self) -> Option<&str> {
        self.inner.no_auth_user()
    }

    /// INFO must carry a nonce when NKey users exist, and always in operator mode.
    pub fn needs_nonce(&self) -> bool {
        self.inner.needs_nonce()
    }

    /// Checks a CONNECT; returns the user name when there is one.
    pub fn check(&self, c: &ConnectOpts) -> Result<Option<String>, AuthError> {
        self.identify(c, None).map(|id| id.name)
    }

    /// Checks a CONNECT against the nonce this client was sent; the identity carries the
    /// account and permissions the client gets.
    pub fn identify(&self, c: &ConnectOpts, nonce: Option<&str>) -> Result<Identity, AuthError> {
        let creds = chorus_auth::Credentials {
            token: c.auth_token.as_deref(),
            user: c.user.as_deref(),
            pass: c.pass.as_deref(),
            nkey: c.nkey.as_deref(),
            sig: c.sig.as_deref(),
            nonce,
            jwt: c.jwt.as_deref(),
        };
        // A bcrypt check holds a thread for milliseconds; run on a runtime worker, a burst of
        // (failed) logins would stall every client scheduled there. block_in_place hands the
        // worker's other tasks to another thread first (multi-thread runtime only).
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread && self.inner.is_expensive(&creds) {
            tokio::task::block_in_place(|| self.inner.authenticate(&creds))
        } else {
            self.inner.authenticate(&creds)
        }
    }

    /// The identity of a user by name (client-certificate mapping, websocket `no_auth_user`).
    pub fn user_identity(&self, name: &str) -> Option<Identity> {
        self.inner.identity_of(name)
    }

    /// The operator trust chain and its accounts, in operator (JWT) mode.
    pub fn trust(&self) -> Option<&chorus_auth::Trust> {
        self.inner.operator()
    }
}
