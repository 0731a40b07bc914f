//! Streams: configuration, its validation, and the rules for publishing into a stream.

pub mod advisory;
pub mod check;
pub mod config;
pub mod headers;
pub mod metadata;
pub mod publish;
pub mod transform;

pub use check::{
    CheckContext, CreateOutcome, ServerLimits, StreamLookup, check_create, check_stream_config,
    check_update,
};
pub use config::{StreamConfig, StreamConfigRequest};
pub use publish::{DedupeWindow, PubAck, PublishOutcome, StreamView, check_publish};
