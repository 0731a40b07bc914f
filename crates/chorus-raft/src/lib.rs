//! Raft groups for Chorus: openraft 0.9 with the storage, transport and timing a message
//! broker on small machines needs.
//!
//! ```text
//!            application (JetStream: a meta group, one group per replicated stream)
//!   propose ──► Group ──► openraft ──► StateMachine<M> ──► M::apply (committed, in order)
//!                           │    ▲
//!        LogStore ◄─────────┘    └──────── Network ◄──► Hub ◄──► Transport (routes)
//!           │   (append: visible now)               (one per server; frames name the group)
//!           └─► Flusher: ONE RaftLog::sync for every group's waiting appends ─► "saved"
//! ```
//!
//! Layout:
//! - [`types`]: the type configuration (commands are opaque bytes), the tokio runtime with a
//!   seedable election-timeout draw.
//! - [`log`]: a group's log on `chorus_store::RaftLog`, and the group-commit [`log::Flusher`].
//! - [`machine`]: the [`machine::Machine`] trait the application implements.
//! - [`net`]: the [`net::Hub`] and the [`net::Transport`] it sends frames through.
//! - [`group`]: [`group::Group`], and the [`group::Timing`] every group runs with.
//!
//! Rules kept here (each is a way openraft 0.9 setups lose data or liveness):
//! - Raft hears an append is saved only after the fsync that covers it.
//! - A vote is synced before it is cast.
//! - Node ids are incarnations: the application must never reuse one for a wiped store.
//! - Storage errors stop the group (openraft makes them fatal); nothing retries silently.

// openraft's storage traits return its `StorageError` (about 224 bytes) by value; the helpers
// that build it follow the traits' signatures.
#![allow(clippy::result_large_err)]

pub mod group;
pub mod log;
pub mod machine;
pub mod net;
pub mod types;

pub use group::{Group, GroupError, Timing};
pub use log::{Flusher, LogStore};
pub use machine::{Applied, Committed, Machine, Payload};
pub use net::{AppHandler, Hub, Transport};
pub use openraft::ServerState;
pub use types::{NodeId, PeerNode, Resp, seed_thread};
