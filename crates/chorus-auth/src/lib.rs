//! Client authentication and subject permissions, with no I/O: the server hands in what a
//! client presented in CONNECT and gets back an identity (user, account, permissions) or a
//! refusal, and asks compiled permissions whether a publish or subscribe is allowed.
//!
//! Layout:
//! - [`users`]: [`Authenticator`] built from `authorization {}` and `accounts {}`: tokens,
//!   users with plain or bcrypt passwords, NKey users (signature over the INFO nonce),
//!   `no_auth_user`, default permissions.
//! - [`perms`]: [`Permissions`] compiled from allow/deny lists into sublists, so checks cost a
//!   trie walk, and the deliver-time deny filter for wide subscriptions.
//!
//! - [`jwt`]: NATS JWT decoding and signature checks; operator, account and user claims.
//! - [`operator`]: operator mode: the operator -> account -> user trust chain over
//!   `resolver: MEMORY` + `resolver_preload`, revocations, scoped signing keys.
//!
//! Auth callout, the URL and cache account resolvers are not here yet: a configuration
//! asking for them is refused by [`Authenticator::from_options`] rather than run without them.

pub mod jwt;
pub mod operator;
pub mod perms;
pub mod users;

pub use operator::{OperatorError, Trust, UpdateError, Updated};
pub use perms::{PermError, Permissions, ResponsePerm};
pub use users::{AuthConfigError, AuthError, Authenticator, Credentials, Identity, JwtUser, ct_eq};
