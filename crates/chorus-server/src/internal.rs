//! The server as a publisher: JetStream's PubAcks, API answers, deliveries and advisories,
//! and `$SYS` answers leave through an [`Outbox`], the routing engine (`deliver`) with the
//! server itself as the origin. Queue groups, imports, response subjects and routes apply
//! exactly as for a client's publish.
//!
//! An outbox collects the receivers it touched and wakes them once, at [`Outbox::flush`]:
//! a batch's replies go out together, as a reader task's deferred flush does.

use std::sync::Arc;

use crate::account::Account;
use crate::deliver::{Delivery, Lookup, Origin};
use crate::server::ServerInner;
use crate::sub::Msg;

/// The server's own publishes of one batch; writers are woken by [`Outbox::flush`].
#[derive(Debug)]
pub(crate) struct Outbox {
    srv: Arc<ServerInner>,
    delivery: Delivery,
}

impl Outbox {
    pub(crate) fn new(srv: &Arc<ServerInner>) -> Outbox {
        Outbox { srv: srv.clone(), delivery: Delivery::default() }
    }

    /// Publishes into `account` as nats-server's internal clients do. Returns whether anyone
    /// received it.
    pub(crate) fn publish(
        &mut self,
        account: &Arc<Account>,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        let msg = Msg { subject, reply, hdr: headers, payload };
        self.delivery.publish(&self.srv, &Origin::SERVER, account, msg, Lookup::Shared)
    }

    /// Like [`Outbox::publish`], but routed by `route` while receivers see `subject`: a
    /// consumer delivery goes to a pull request's inbox with the message's own subject.
    /// `transient` for a route subject unlikely to repeat (a reply inbox): matched without
    /// filling the sublist cache ([`chorus_sublist::Sublist::match_transient`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish_via(
        &mut self,
        account: &Arc<Account>,
        route: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        transient: bool,
    ) -> bool {
        let msg = Msg { subject: route, reply, hdr: headers, payload };
        let shown = (subject != route).then_some(subject);
        let lookup = if transient { Lookup::Transient } else { Lookup::Shared };
        self.delivery.publish_shown(&self.srv, &Origin::SERVER, account, msg, shown, lookup)
    }

    /// Wakes every writer that got something since the last flush, and counts what was sent.
    pub(crate) fn flush(&mut self) {
        self.delivery.add_counts(&self.srv.stats);
        self.delivery.flush();
    }
}
