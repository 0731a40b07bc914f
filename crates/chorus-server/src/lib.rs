//! The Chorus server runtime: everything that owns a socket or a task.
//!
//! Layout (module names follow nats-server's files so the two can be read side by side):
//! - [`server`]: [`Server`] start/reload/lame duck/shutdown, the client registry, stats.
//! - [`client`]: one connection's reader and writer tasks, routing and delivery.
//! - [`account`]: accounts: subscription lists, exports/imports, mappings, limits, the system
//!   account's claims updates.
//! - [`auth`]: CONNECT credential checks.
//! - [`info`]: the `INFO` a client receives and the `CONNECT` options it sends.
//! - [`jetstream`]: the JetStream runtime: streams on `chorus-store`, `$JS.API`, PubAcks.
//! - [`monitor`]: the HTTP monitoring endpoints (/varz, /connz, /subsz, /healthz, ...).
//! - [`tls`]: `tls { }` as a rustls configuration, the NATS TLS upgrade on the client port
//!   (INFO first, or `handshake_first`), users mapped from client certificates.
//! - [`websocket`]: the WebSocket listener (upgrade, origins, cookies, permessage-deflate) and
//!   the frame pumps that hand a plain byte stream to the same client code as TCP.
//!
//! The pure pieces live in other crates: the codec in `chorus-proto`, the subject trie in
//! `chorus-sublist`, options in `chorus-conf`.
//!
//! Embedding (what tests do):
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut opts = chorus_conf::Options::default();
//! opts.port = 0; // any free port
//! let server = chorus_server::Server::start(opts).await?;
//! println!("clients connect to {}", server.client_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod account;
pub mod auth;
pub mod client;
pub mod info;
pub mod jetstream;
pub mod monitor;
pub mod server;
pub mod tls;
pub mod websocket;

pub use server::{Server, ServerError, check_accounts};
