//! Consumers: configuration, its validation, the API shapes, and the per-consumer state
//! machine, as pure data and functions (no clock, no I/O).
//!
//! - [`config`]: `ConsumerConfig` and the create request, nats-server v2.15's JSON.
//! - [`check`]: defaults, validation, update rules and the create/update decision.
//! - [`api`]: `ConsumerInfo` and the INFO/CREATE/DELETE/NAMES/LIST/PAUSE responses, the pull
//!   request body, consumer API subjects.
//! - [`ack`]: ack reply subjects (both layouts) and ack bodies.
//! - [`state`]: [`Consumer`], the state machine: events in, [`Action`]s out.
//! - [`waiting`]: the pull request queue.
//! - [`persist`]: the store's view of a consumer and the snapshot blob.
//! - [`action`]: deliveries, status messages, advisories.
//! - [`view`]: the stream as a consumer reads it ([`ConsumerStream`]), and [`VecStream`].
//! - [`metadata`]: `_nats.*` versioning keys.

pub mod ack;
pub mod action;
pub mod api;
pub mod check;
pub mod config;
pub mod metadata;
pub mod persist;
pub mod state;
pub mod view;
pub mod waiting;

pub use action::{Action, Advisory, AdvisoryKind, Delivery, StatusMsg};
pub use check::{
    ConsumerCheckContext, ConsumerLookup, CreateOutcome, ServerConsumerLimits,
    check_consumer_config, check_create,
};
pub use config::{AckPolicy, ConsumerConfig, CreateConsumerRequest, DeliverPolicy, ReplayPolicy};
pub use persist::{ConsumerSnapshot, ConsumerState};
pub use state::{Consumer, ConsumerContext, Event};
pub use view::{
    AlwaysInterested, ConsumerFilter, ConsumerStream, DeliveryInterest, StreamMsg, VecStream,
};
