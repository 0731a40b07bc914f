//! Raft frames over routes: the [`chorus_raft::Transport`] of a clustered JetStream.
//!
//! ```text
//!  Hub (every raft group of this server) ── frame for node N ──► RouteTransport::send
//!     ──► `RMSG [$SYS] $CRAFT <len>` on the link that carries the system account to N
//!  peer's route reader: `$CRAFT` in the system account ──► its Hub::receive(from: our node)
//! ```
//!
//! One set of connections per pair of servers carries every group's traffic (the route
//! pool's system-account link, pinned when pooling is on), as nats-server multiplexes its
//! raft groups over the system account. `$CRAFT` is not a subscription: frames go only to
//! the node they are for, are never delivered to clients, and a peer that announced no node
//! id (nats-server, or a Chorus without clustered JetStream) is never sent one.
//!
//! Backpressure: a frame is refused (openraft sees the peer unreachable and backs off) while
//! the link's outbound buffer holds more than half its `max_pending`, so raft traffic never
//! makes a route a slow consumer, and memory per peer stays bounded.

use std::sync::{Arc, Weak};

use bytes::BytesMut;
use chorus_proto::encode;

use crate::server::ServerInner;

/// The subject raft frames travel under, in the system account.
pub(crate) const RAFT_SUBJECT: &[u8] = b"$CRAFT";

/// The account raft frames are addressed to: the system account, `$SYS` when there is none
/// (the token only has to match on both ends).
pub(crate) fn raft_account(srv: &ServerInner) -> String {
    crate::server::system_account_name(&srv.opts(), &srv.auth())
        .unwrap_or_else(|| crate::account::SYSTEM_ACCOUNT.to_string())
}

/// Sends raft frames to peers over their routes.
#[derive(Debug)]
pub(crate) struct RouteTransport {
    srv: Weak<ServerInner>,
    /// [`raft_account`], fixed at start (config reloads cannot change the system account).
    account: String,
}

impl RouteTransport {
    pub(crate) fn new(srv: &Arc<ServerInner>) -> RouteTransport {
        RouteTransport { srv: Arc::downgrade(srv), account: raft_account(srv) }
    }
}

impl chorus_raft::Transport for RouteTransport {
    fn send(&self, to: chorus_raft::NodeId, frame: Vec<u8>) -> bool {
        let Some(srv) = self.srv.upgrade() else { return false };
        let Some(link) = srv.routes.raft_link(to, &self.account) else { return false };
        let (_, _, pending) = link.shared.out_counts();
        if pending > link.shared.max_pending / 2 {
            return false;
        }
        let pinned = link.account.as_deref() == Some(self.account.as_str());
        let token = (!pinned).then_some(self.account.as_bytes());
        let mut line = BytesMut::with_capacity(frame.len() + 48);
        encode::rmsg(&mut line, token, RAFT_SUBJECT, None, &[], None, &frame);
        if link.shared.append_proto(&line) == Some(true) {
            link.shared.wake_writer();
        }
        true
    }
}
