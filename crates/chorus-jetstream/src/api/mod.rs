//! The JetStream JSON API as clients see it: request and response types with nats-server's
//! exact JSON, the error table, and the API subjects.

pub mod account;
pub mod audit;
pub mod errors;
mod errors_generated;
pub mod msg;
pub mod stream;
pub mod subjects;
pub mod types;

pub use errors::{ApiError, ErrorId, ErrorInfo};
