//! The Chorus server runtime: everything that owns a socket or a task.
//!
//! Layout: rooms that import downward (module names follow nats-server's files so the two
//! can be read side by side):
//!
//! ```text
//!  server      Server start/reload/lame duck/shutdown, ServerInner (the state every task
//!              shares: options, accounts, connections, routes, the JetStream handle)
//!  monitor     HTTP monitoring (/varz, /connz, /subsz, /routez, /jsz, /healthz, ...)
//!  jetstream   the JetStream runtime: streams on chorus-store, $JS.API, consumers
//!  client      a client connection: protocol, auth, permissions, subscriptions
//!  route       a route connection to another server: handshake, interest, forwarding
//!  internal    the server as a publisher (JetStream replies, $SYS answers)
//!  deliver     the routing engine all of the above publish through
//!  interest    subscribing/unsubscribing: sublists, shadows, what routes are told
//!  account     accounts: sublists, imports/exports, mappings, limits; account/system
//!  sub         the shared half of a connection (outbound buffer), subscriptions
//!  listener    the client and WebSocket ports (TLS, WebSocket upgrade) handing byte
//!              streams to the client code
//!  auth, info  credential checks; the INFO/CONNECT shapes
//!  conn        leaf types: connection kinds, close reasons, counters
//! ```
//!
//! `account` and `sub` know each other (an account's sublist holds subscriptions, a
//! connection points back at its account); `ServerInner` is the shared state everything
//! reads.
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
pub mod conn;
pub(crate) mod deliver;
pub mod info;
pub(crate) mod interest;
pub(crate) mod internal;
pub mod jetstream;
pub mod listener;
pub mod monitor;
pub mod route;
pub mod server;
pub mod sub;

pub use server::{Server, ServerError, check_accounts};
