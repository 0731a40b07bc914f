//! The stream side of JetStream as pure functions and data: what nats-server v2.15 accepts,
//! rejects and answers, without the I/O.
//!
//! This crate reads no clock, opens no socket and touches no disk. Time comes in as
//! arguments, stream state through read-only traits ([`stream::StreamView`],
//! [`stream::StreamLookup`]). The runtime (and, later, replication) applies the decisions; the
//! storage crate stores. That keeps every rule testable on its own and identical on every
//! replica (see ARCHITECTURE.md, "JetStream: state machine first").
//!
//! Layout:
//!
//! - [`api`]: the JSON API. [`api::errors`] is the table of every JetStream error
//!   (`code`, `err_code`, description template) generated from nats-server's `errors.json`;
//!   [`api::stream`], [`api::msg`] and [`api::account`] hold request/response types with the
//!   reference's field names, order and omissions; [`api::subjects`] maps API subjects to
//!   endpoints.
//! - [`stream`]: [`stream::config`] (`StreamConfig` and its enums), [`stream::check`]
//!   (validation and defaults, create and update decisions), [`stream::publish`] (publish
//!   preconditions from headers, the duplicate window, PubAcks), [`stream::headers`]
//!   (header blocks the way nats-server scans them), [`stream::transform`] (subject
//!   transform validity) and [`stream::metadata`] (`_nats.*` versioning keys).
//! - [`consumer`]: consumers as pure rules and a state machine: [`consumer::config`] and
//!   [`consumer::check`] (config, defaults, create/update decisions), [`consumer::api`]
//!   (`ConsumerInfo` and responses), [`consumer::state`] (one consumer: events in, actions
//!   out: deliveries, pull statuses, acks, redelivery, advisories), [`consumer::persist`]
//!   (the durable state and its snapshot).
//! - [`go`]: the Go encodings the reference's bytes depend on (JSON escaping, RFC 3339 times,
//!   durations, base64).
//!
//! `tests/reference.rs` replays requests and publishes recorded from nats-server v2.15.2
//! (`tools/capture_reference.py`, including what the `nats` CLI and nats.js send) and
//! compares our answers with the reference's; `tests/consumer_reference.rs` does the same
//! for consumers (`tools/capture_consumers.py`: API requests, pulls, acks, advisories, on the
//! recording's clock).

pub mod api;
pub mod consumer;
pub mod go;
pub mod stream;

pub use api::errors::{ApiError, ErrorId};
