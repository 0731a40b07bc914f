//! nats-server's configuration language, typed options and command line, for Chorus.
//!
//! Chorus must start from the same configuration file and flags as `nats-server`, so this
//! crate follows nats-server v2.15 (`conf/lex.go`, `conf/parse.go`, `server/opts.go`,
//! `server/reload.go`, `main.go`) in what it accepts, its defaults and the wording of its
//! errors. It is pure: no runtime, no sockets; the only I/O is reading configuration files
//! (and `include`d ones) and environment variables.
//!
//! Three layers:
//!
//! 1. **Syntax** ([`parse_str`], [`parse_file`]) turns text into a [`Map`] of [`Value`]s that
//!    keeps key order and the line (and file) of every key. It handles `=`/`:`/blank
//!    separators, `#` and `//` comments, maps, arrays, quoted and bare strings, raw `( )`
//!    blocks, size suffixes (`1k` = 1000, `1kb`/`1ki`/`1kib` = 1024), floats, booleans
//!    (`true/yes/on`), Zulu datetimes, `include` relative to the including file, and `$VAR`
//!    references resolved from enclosing blocks, then from the environment.
//! 2. **Options** ([`Options::from_map`], [`Options::from_file`]) interprets the tree into
//!    typed structs with nats-server's defaults, reporting every bad key with its line
//!    (`max_payload (line 3): expected a size, got "abc"`) and unknown keys as
//!    [`Warning`]s. [`Options::validate`] checks the cross-option rules nats-server checks
//!    before starting; [`Options::reload_diff`] says what a reload changes and refuses
//!    what nats-server cannot reload.
//! 3. **Flags** ([`flags::parse_args`]) reads nats-server's command line into a
//!    [`flags::Command`]; [`flags::Cli::apply`] lays the flags over the file's options.
//!
//! Layout: `syntax` (reader), `value` (tree), `duration` (Go durations), `convert` (typed
//! reads that collect errors), `options` (top level), `auth`, `accounts`, `blocks` (TLS,
//! WebSocket, JetStream, cluster, resolver), `validate`, `reload`, `flags`.
//!
//! Not typed yet: `leafnodes`, `gateway`, `mqtt`, `ocsp`, `ocsp_cache` and `proxies` are kept
//! as raw [`Value`]s in [`Options`].

mod accounts;
mod auth;
mod blocks;
mod convert;
pub mod duration;
mod error;
pub mod flags;
mod options;
mod reload;
mod syntax;
mod validate;
mod value;

pub use accounts::{
    AccountJetStreamLimits, AccountLimits, AccountOptions, ExportKind, ExportOptions,
    GLOBAL_ACCOUNT, ImportOptions, LatencyOptions, MapDestination, MappingOptions, MsgTraceOptions,
    ResponseType,
};
pub use auth::{
    AuthCalloutOptions, AuthorizationOptions, CONNECTION_TYPES, DEFAULT_ALLOW_RESPONSE_EXPIRATION,
    DEFAULT_ALLOW_RESPONSE_MAX_MSGS, DEFAULT_AUTH_TIMEOUT, NkeyUserOptions, Permissions,
    ResponsePermission, SubjectPermission, UserOptions,
};
pub use blocks::{
    CURVE_PREFERENCES, ClusterOptions, CompressionOptions, DEFAULT_ROUTE_POOL_SIZE,
    DEFAULT_SYNC_INTERVAL, DEFAULT_TLS_HANDSHAKE_FIRST_FALLBACK_DELAY, DEFAULT_TLS_TIMEOUT,
    DirResolverKind, DirResolverOptions, INSECURE_CIPHER_SUITES, JetStreamLimits, JetStreamOptions,
    ResolverOptions, RoutePermissions, SECURE_CIPHER_SUITES, StoreCipher, SyncInterval,
    TlsCertPair, TlsOptions, WebsocketAuth, WebsocketOptions, WriteTimeoutPolicy,
};
pub use convert::is_valid_subject;
pub use error::{ConfError, Warning};
pub use options::*;
pub use syntax::{
    EnvLookup, parse_file, parse_file_with_env, parse_str, parse_str_with_env, process_env,
};
pub use value::{Datetime, Entry, Map, Value, ValueKind};
