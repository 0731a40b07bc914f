//! Sans-io codec of the NATS client protocol.
//!
//! Nothing in this crate touches a socket or a clock: bytes go in, operations come out, and
//! the runtime in `chorus-server` does the I/O. That keeps the parser fuzzable (see `fuzz/`)
//! and testable at every split point.
//!
//! Layout:
//! - [`parser`]: [`parser::Decoder`] turns the bytes a client sends into [`parser::ClientOp`]s,
//!   resumably (`decode(&mut BytesMut) -> Result<Option<ClientOp>, ProtoError>`), zero-copy:
//!   subjects, reply subjects and payloads are `Bytes` slices of the read buffer.
//! - [`encode`]: what the server writes: `MSG`/`HMSG` frames appended straight into an outbound
//!   buffer, `INFO`, `-ERR`, `PING`/`PONG`/`+OK`.
//! - [`headers`]: `NATS/1.0` header blocks, including status lines such as `503` no responders.
//! - [`route`]: [`route::RouteDecoder`], the same for what another server sends on a route
//!   (`RS+`/`RS-`, `RMSG`/`HMSG`, INFO/CONNECT); `encode` writes those too.
//! - [`subject`]: subject and queue-name validation on raw bytes.
//! - [`websocket`]: WebSocket frames (RFC 6455) around the same byte stream: a streaming
//!   frame decoder that never buffers a data frame whole, frame headers and close payloads.
//!
//! ```text
//!  read buffer (BytesMut) --decode--> ClientOp::Pub { subject, reply, payload }  (Bytes views)
//!                                      |
//!                         server routes it, then for each subscriber:
//!                                      v
//!  outbound buffer  <--encode::msg--  "MSG <subject> <sid> [reply] <len>\r\n<payload>\r\n"
//! ```

pub mod encode;
pub mod headers;
pub mod parser;
pub mod route;
pub mod subject;
pub mod websocket;

pub use parser::{ClientOp, Decoder, ProtoError};
pub use route::{RouteDecoder, RouteOp};
