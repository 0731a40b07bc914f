//! The routing engine: where a published message goes, for every kind of publisher.
//!
//! Client connections, routes and the server's own publishers (JetStream replies and
//! deliveries, `$SYS` answers) all hand their messages to a [`Delivery`], so local
//! subscribers, queue groups, mappings, imports and exports, and the fan-out to other servers
//! are decided in one place.
//!
//! ```text
//!  client reader ─┐                       ┌─ local subscriber: MSG/HMSG into its buffer
//!  route reader ──┼─► Delivery::publish ──┼─ internal subscriber: its Sink (JetStream)
//!  internal ──────┘   (mappings, imports, ├─ route with interest: one RMSG/HMSG per peer,
//!                      shadows, $SYS,     │  naming the queue groups it was picked for
//!                      responses)         └─ end of batch: Delivery::flush wakes writers
//! ```
//!
//! Rules (nats-server's `processMsgResults`):
//! - A plain subscriber gets every message; a queue group gets each message once,
//!   cluster-wide: a local member is preferred, else one peer that has members is picked
//!   (weighted by its member count) and told in the `RMSG` which groups it must serve.
//! - A message that came in on a route is delivered to local subscribers only, never to
//!   another route (the mesh is full, so the publisher's server reached every peer itself),
//!   and to the queue groups the sender named only.
//! - Service imports are processed on the publisher's server; responses (`_R_` subjects) and
//!   `$SYS` requests wherever they arrive.
//! - A receiver's buffer is appended to under its lock and never written here; a receiver past
//!   `max_pending` is cut as a slow consumer; one that is merely behind makes the publisher
//!   pause briefly ([`Delivery::take_stall`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_proto::{encode, headers, subject};
use chorus_sublist::SublistResult;
use rustc_hash::FxHashMap;

use crate::account::{self, Account, Shadow, ShadowRef};
use crate::conn::{Kind, Transport};
use crate::server::ServerInner;
use crate::sub::{ClientShared, Msg, SubRef, Subscription};

/// Per-connection match cache size before it is pruned (nats-server: 512 results, prune 256).
const CACHE_MAX: usize = 1024;
const CACHE_PRUNE: usize = 256;
/// How many service-import hops one message may take (nats-server detects cycles by export;
/// this also bounds chains).
const MAX_IMPORT_HOPS: usize = 16;
/// Reply permissions (`allow_responses`) one client may hold at once.
const REPLIES_MAX: usize = CACHE_MAX * 16;

/// A connection's own cache of match results, trusted while the account sublist's generation
/// is unchanged.
#[derive(Debug, Default)]
pub(crate) struct MatchCache {
    map: FxHashMap<Bytes, Arc<SublistResult<SubRef>>>,
    generation: u64,
}

impl MatchCache {
    #[inline]
    fn lookup(&mut self, acc: &Account, subject: &[u8]) -> Arc<SublistResult<SubRef>> {
        let generation = acc.sublist.generation();
        if generation != self.generation {
            self.map.clear();
            self.generation = generation;
        } else if let Some(r) = self.map.get(subject) {
            return r.clone();
        }
        let r = acc.sublist.match_subject(subject);
        if self.map.len() >= CACHE_MAX {
            let victims: Vec<Bytes> = self.map.keys().take(CACHE_PRUNE).cloned().collect();
            for k in victims {
                self.map.remove(&k);
            }
        }
        // Copy the key out of the read buffer so the cache does not pin it.
        self.map.insert(Bytes::copy_from_slice(subject), r.clone());
        r
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

/// How the first account's subscribers are looked up.
pub(crate) enum Lookup<'a> {
    /// Through the publisher's own cache (client connections).
    Cached(&'a mut MatchCache),
    /// Through the sublist's shared cache (subjects that repeat).
    Shared,
    /// Without filling any cache: subjects unlikely to repeat (reply inboxes).
    Transient,
}

/// Who publishes a message.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// The publishing connection: a client (echo, `Nats-Request-Info`) or the route the
    /// message came in on. `None`: the server itself.
    pub conn: Option<&'a Arc<ClientShared>>,
    /// CONNECT `echo`: the publisher receives its own messages.
    pub echo: bool,
    /// For a message from a route: the queue groups the sending server picked this server
    /// for (the queue names of its `RMSG`).
    pub queues: &'a [Bytes],
}

impl<'a> Origin<'a> {
    /// The server's own publishes.
    pub(crate) const SERVER: Origin<'static> = Origin { conn: None, echo: true, queues: &[] };

    pub(crate) fn client(c: &'a Arc<ClientShared>, echo: bool) -> Origin<'a> {
        Origin { conn: Some(c), echo, queues: &[] }
    }

    pub(crate) fn route(r: &'a Arc<ClientShared>, queues: &'a [Bytes]) -> Origin<'a> {
        Origin { conn: Some(r), echo: true, queues }
    }

    fn is_routed(&self) -> bool {
        self.conn.is_some_and(|c| c.kind == Kind::Router)
    }

    /// Whether `sub` is the publisher's own subscription that `echo: false` hides.
    fn hides(&self, sub: &Subscription) -> bool {
        !self.echo && self.conn.is_some_and(|c| Arc::ptr_eq(&sub.client, c))
    }

    /// The publishing client, if a client publishes.
    fn publisher(&self) -> Option<&'a Arc<ClientShared>> {
        self.conn.filter(|c| c.kind == Kind::Client)
    }
}

/// A peer (route connection) this message goes to, and the queue groups it must serve.
struct RemoteHit {
    route: Arc<ClientShared>,
    queues: Vec<Bytes>,
}

/// One publisher's delivery state: the receivers touched since the last flush, counters, the
/// queue-pick randomness and scratch space. A client's reader owns one for its connection;
/// the server's internal publishers own one per batch.
#[derive(Default)]
pub(crate) struct Delivery {
    dirty: Vec<Arc<ClientShared>>,
    stall: Option<Arc<ClientShared>>,
    rng: u64,
    /// Messages and bytes delivered since the counters were taken ([`Delivery::take_counts`]),
    /// and of those, sent to routes.
    out_msgs: u64,
    out_bytes: u64,
    out_route_msgs: u64,
    out_route_bytes: u64,
    remote: Vec<RemoteHit>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("dirty", &self.dirty.len()).finish()
    }
}

/// One publish as it crosses accounts: the subject it is routed by may differ from the one
/// receivers see (a JetStream delivery is routed to a pull request's inbox and shown with the
/// stored message's subject).
#[derive(Clone, Copy)]
struct Hop<'a> {
    msg: Msg<'a>,
    shown: Option<&'a [u8]>,
    /// Came through a service import (stream-import shadows are then skipped, as in
    /// nats-server).
    from_service: bool,
}

/// Where the `@` of a `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>@
/// <subject>` reply is (nats-server's `jsAckDeliverIdx`): the first `@` after the eight dots
/// of the ack token (stream and consumer names may hold an `@` themselves).
pub(crate) fn js_ack_deliver_idx(reply: &[u8]) -> Option<usize> {
    if !reply.starts_with(b"$JS.ACK.") || reply.len() <= 8 {
        return None;
    }
    let mut dots = 0;
    for (i, &b) in reply.iter().enumerate() {
        match b {
            b'.' => dots += 1,
            b'@' if dots >= 8 => return Some(i),
            _ => {}
        }
    }
    None
}

fn js_ack_has_deliver(reply: &[u8]) -> bool {
    js_ack_deliver_idx(reply).is_some()
}

impl Hop<'_> {
    fn shown(&self) -> &[u8] {
        self.shown.unwrap_or(self.msg.subject)
    }
}

impl Delivery {
    /// A seed for the queue-pick randomness (a client's cid, say), so publishers do not all
    /// pick in step.
    pub(crate) fn seeded(seed: u64) -> Delivery {
        Delivery { rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, ..Delivery::default() }
    }

    /// Routes `msg` published in `acc`: mappings first, then subscribers, imports and routes.
    /// Returns whether anyone (here or on a peer) will receive it.
    #[inline]
    pub(crate) fn publish(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        msg: Msg<'_>,
        lookup: Lookup<'_>,
    ) -> bool {
        self.publish_shown(srv, from, acc, msg, None, lookup)
    }

    /// [`Delivery::publish`], with receivers seeing `shown` as the subject while `msg.subject`
    /// decides who they are.
    #[inline]
    pub(crate) fn publish_shown(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        msg: Msg<'_>,
        shown: Option<&[u8]>,
        lookup: Lookup<'_>,
    ) -> bool {
        let flags = acc.flags();
        let hop = Hop { msg, shown, from_service: false };
        if flags == 0 {
            return self.route(srv, from, acc, &hop, lookup);
        }
        self.publish_in_account(srv, from, acc, hop, flags, lookup)
    }

    /// [`Delivery::publish_shown`] for an account that maps, imports or exports.
    #[inline(never)]
    fn publish_in_account(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: Hop<'_>,
        flags: u8,
        lookup: Lookup<'_>,
    ) -> bool {
        let msg = hop.msg;
        // Mappings apply where a message enters the system, not again on the peers.
        let mapped = if flags & account::F_MAPPINGS != 0 && !from.is_routed() {
            acc.map_subject(msg.subject)
        } else {
            None
        };
        let hop = match &mapped {
            Some(m) => Hop { msg: Msg { subject: m, ..msg }, ..hop },
            None => hop,
        };
        let mut chain = Vec::new();
        self.route_in(srv, from, acc, &hop, Some(lookup), &mut chain)
    }

    /// Adds what was sent since the last call to the server's figures (once per batch, not
    /// once per message).
    pub(crate) fn add_counts(&mut self, stats: &crate::conn::Stats) {
        if self.out_msgs == 0 {
            return;
        }
        stats.out_msgs.fetch_add(self.out_msgs, Ordering::Relaxed);
        stats.out_bytes.fetch_add(self.out_bytes, Ordering::Relaxed);
        if self.out_route_msgs > 0 {
            stats.out_route_msgs.fetch_add(self.out_route_msgs, Ordering::Relaxed);
            stats.out_route_bytes.fetch_add(self.out_route_bytes, Ordering::Relaxed);
        }
        self.out_msgs = 0;
        self.out_bytes = 0;
        self.out_route_msgs = 0;
        self.out_route_bytes = 0;
    }

    /// Wakes every writer that got something since the last flush.
    pub(crate) fn flush(&mut self) {
        for c in self.dirty.drain(..) {
            c.wake_writer();
        }
    }

    /// Queues `c`'s writer for the next [`Delivery::flush`] (a protocol line the caller
    /// appended itself).
    pub(crate) fn mark_dirty(&mut self, c: &Arc<ClientShared>) {
        self.dirty.push(c.clone());
    }

    /// A receiver this publisher pushed past 3/4 of its `max_pending`, if any: the publisher
    /// should wait briefly for it to drain.
    pub(crate) fn take_stall(&mut self) -> Option<Arc<ClientShared>> {
        self.stall.take()
    }

    #[inline]
    fn next_rand(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = rand::random::<u64>() | 1;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Delivers a message published in `acc`: its subscribers, the stream-import shadows of
    /// other accounts' subscribers (unless the message came through a service import, as in
    /// nats-server), `$SYS` requests, its service imports and its response subjects.
    /// `lookup`: how to look up `acc`'s subscribers (`None`: the shared cache).
    /// `chain` holds the service exports already crossed, so import cycles stop.
    fn route_in(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: &Hop<'_>,
        lookup: Option<Lookup<'_>>,
        chain: &mut Vec<usize>,
    ) -> bool {
        let flags = acc.flags();
        let lookup = lookup.unwrap_or(Lookup::Shared);
        let msg = hop.msg;
        let mut delivered = if flags & account::F_SHADOWS != 0 && !hop.from_service {
            self.route_with_shadows(srv, from, acc, hop, lookup)
        } else {
            self.route(srv, from, acc, hop, lookup)
        };
        if flags & account::F_SYSTEM != 0
            && msg.subject.starts_with(b"$SYS.")
            && let Some(resp) = account::system::handle(srv, msg.subject, msg.payload)
        {
            delivered = true;
            if let Some(r) = msg.reply {
                let resp_msg = Msg { subject: r, reply: None, hdr: None, payload: &resp };
                let h = Hop { msg: resp_msg, shown: None, from_service: true };
                self.route_in(srv, &Origin::SERVER, acc, &h, Some(Lookup::Transient), chain);
            }
        }
        // The publisher's server crossed the imports already; a peer does not again.
        if flags & account::F_SERVICE_IMPORTS != 0 && !from.is_routed() {
            let routing = acc.routing();
            for si in &routing.service_imports {
                if subject::subject_is_subset_of(msg.subject, si.from.as_bytes()) {
                    delivered |= self.service_import(srv, from, acc, si, hop, chain);
                }
            }
        }
        if flags & account::F_RESPONSES != 0
            && let Some(resp) = acc.response_for(msg.subject)
        {
            if chain.len() >= MAX_IMPORT_HOPS {
                return delivered;
            }
            chain.push(0);
            let to = resp.to.clone();
            let h = Hop {
                msg: Msg { subject: &to, reply: None, ..msg },
                shown: hop.shown,
                from_service: true,
            };
            let d = self.route_in(srv, from, &resp.dest, &h, None, chain);
            chain.pop();
            let eof = msg.payload.is_empty() && msg.hdr.is_none();
            if !d || eof || resp.kind == chorus_conf::ResponseType::Singleton {
                acc.remove_response(msg.subject);
            }
            delivered |= d;
        }
        delivered
    }

    #[inline(always)]
    fn lookup(acc: &Account, subject: &[u8], lookup: Lookup<'_>) -> Arc<SublistResult<SubRef>> {
        match lookup {
            Lookup::Cached(c) => c.lookup(acc, subject),
            Lookup::Shared => acc.sublist.match_subject(subject),
            Lookup::Transient => acc.sublist.match_transient(subject),
        }
    }

    /// Delivers to every matching subscription of `acc`, and to the routes with interest.
    fn route(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: &Hop<'_>,
        lookup: Lookup<'_>,
    ) -> bool {
        let r = Self::lookup(acc, hop.msg.subject, lookup);
        let mut delivered = false;
        for s in &r.psubs {
            delivered |= self.deliver_or_note(srv, from, acc, &s.0, hop);
        }
        // Without routes there is no peer's member in any group.
        let clustered = srv.routes.any();
        for (i, group) in r.qsubs.iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let name = r.queue_name(i);
            // The common case, a group of this server's members only, takes the short way.
            let local = !clustered
                || (!from.is_routed() && group.iter().all(|s| s.0.client.kind != Kind::Router));
            if local {
                delivered |= self.pick_local(srv, from, acc, hop, group);
                continue;
            }
            let total = group.len();
            delivered |=
                self.pick_queue(srv, from, acc, hop, name, total, |i| Member::Sub(&group[i].0));
        }
        if !self.remote.is_empty() {
            delivered |= self.send_remote(srv, acc, hop);
        }
        delivered
    }

    /// [`Delivery::route`] for an account whose subjects other accounts import: its own
    /// subscribers and the stream-import shadows of other accounts' subscribers, each of those
    /// getting the subject mapped to its own account. A queue group is one group across both,
    /// as nats-server keeps shadows in the exporter's list: one member of the union gets it.
    fn route_with_shadows(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: &Hop<'_>,
        lookup: Lookup<'_>,
    ) -> bool {
        let r = Self::lookup(acc, hop.msg.subject, lookup);
        let rs = acc.shadows.match_subject(hop.msg.subject);
        let mut delivered = false;
        for s in &r.psubs {
            delivered |= self.deliver_or_note(srv, from, acc, &s.0, hop);
        }
        for sh in &rs.psubs {
            delivered |= self.deliver_shadow(srv, from, &sh.0, hop);
        }
        let mut merged = vec![false; rs.qsubs.len()];
        for (i, group) in r.qsubs.iter().enumerate() {
            let name = r.queue_name(i);
            let shadows: &[ShadowRef] = match rs.queue_groups().position(|(n, _)| n == name) {
                Some(j) => {
                    merged[j] = true;
                    &rs.qsubs[j]
                }
                None => &[],
            };
            let total = group.len() + shadows.len();
            if total == 0 {
                continue;
            }
            delivered |= self.pick_queue(srv, from, acc, hop, name, total, |i| {
                if i < group.len() {
                    Member::Sub(&group[i].0)
                } else {
                    Member::Shadow(&shadows[i - group.len()].0)
                }
            });
        }
        for (j, (name, group)) in rs.queue_groups().enumerate() {
            if merged[j] || group.is_empty() {
                continue;
            }
            delivered |= self.pick_queue(srv, from, acc, hop, name, group.len(), |i| {
                Member::Shadow(&group[i].0)
            });
        }
        if !self.remote.is_empty() {
            delivered |= self.send_remote(srv, acc, hop);
        }
        delivered
    }

    /// [`Delivery::pick_queue`] for a group with no peer in it: a uniform draw, then the next
    /// member that takes it (skipping closing ones).
    fn pick_local(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: &Hop<'_>,
        group: &[SubRef],
    ) -> bool {
        let total = group.len();
        let start = (self.next_rand() % total as u64) as usize;
        for k in 0..total {
            let s = &group[(start + k) % total].0;
            if !from.hides(s) && self.deliver(srv, from, acc, s, hop) {
                return true;
            }
        }
        false
    }

    /// One member of a queue group gets the message, cluster-wide. For a message published
    /// on this server, a member is drawn over the whole group, weighted as nats-server does:
    /// each local member counts 1, each peer the number of members it announced; a local
    /// draw that fails (a closing member) passes to the next local one, then to a peer. For a
    /// message from a route, only the groups it names are served, by a local member; if none
    /// is left (it just unsubscribed), another peer's member gets it, never the sender's.
    #[allow(clippy::too_many_arguments)]
    fn pick_queue<'s>(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        hop: &Hop<'_>,
        name: &[u8],
        total: usize,
        member: impl Fn(usize) -> Member<'s>,
    ) -> bool {
        let from_route = from.is_routed();
        if from_route && !from.queues.iter().any(|q| &q[..] == name) {
            return false;
        }
        let weight = |m: &Member<'_>| match m {
            Member::Sub(s) if s.client.kind == Kind::Router => {
                if from_route {
                    0
                } else {
                    u64::from(s.weight.load(Ordering::Relaxed).max(1))
                }
            }
            _ => 1,
        };
        let sum: u64 = (0..total).map(|k| weight(&member(k))).sum();
        let mut start = 0;
        if sum == total as u64 {
            // Every member weighs 1 (no peer in the group, the common case): a uniform draw.
            start = (self.next_rand() % sum) as usize;
        } else if sum > 0 {
            let mut draw = self.next_rand() % sum;
            for k in 0..total {
                let w = weight(&member(k));
                if draw < w {
                    start = k;
                    break;
                }
                draw -= w;
            }
        }
        for k in 0..total {
            let got = match member((start + k) % total) {
                // A peer drawn first takes it; later ones wait for the fallback below.
                Member::Sub(s) if s.client.kind == Kind::Router => {
                    if k == 0 && sum > 0 && !s.client.is_closing() {
                        s.delivered.fetch_add(1, Ordering::Relaxed);
                        self.note_remote(&s.client, Some(name));
                        return true;
                    }
                    continue;
                }
                Member::Sub(s) => {
                    if from.hides(s) {
                        continue;
                    }
                    self.deliver(srv, from, acc, s, hop)
                }
                Member::Shadow(sh) => self.deliver_shadow(srv, from, sh, hop),
            };
            if got {
                return true;
            }
        }
        // No local member took it: a peer that has members does.
        for k in 0..total {
            if let Member::Sub(s) = member((start + k) % total)
                && s.client.kind == Kind::Router
                && !s.client.is_closing()
                && !from.conn.is_some_and(|c| Arc::ptr_eq(c, &s.client))
            {
                s.delivered.fetch_add(1, Ordering::Relaxed);
                self.note_remote(&s.client, Some(name));
                return true;
            }
        }
        false
    }

    /// A plain subscriber: delivered here, or, for a route's, remembered for the fan-out.
    #[inline(always)]
    fn deliver_or_note(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        sub: &Arc<Subscription>,
        hop: &Hop<'_>,
    ) -> bool {
        if sub.client.kind == Kind::Router {
            if from.is_routed() || sub.client.is_closing() {
                return false;
            }
            sub.delivered.fetch_add(1, Ordering::Relaxed);
            self.note_remote(&sub.client, None);
            return true;
        }
        if from.hides(sub) {
            return false;
        }
        self.deliver(srv, from, acc, sub, hop)
    }

    /// Remembers that `route` gets this message (once, whatever number of its subscriptions
    /// match), and for which queue group if any.
    fn note_remote(&mut self, route: &Arc<ClientShared>, queue: Option<&[u8]>) {
        let i = match self.remote.iter().position(|h| Arc::ptr_eq(&h.route, route)) {
            Some(i) => i,
            None => {
                self.remote.push(RemoteHit { route: route.clone(), queues: Vec::new() });
                self.remote.len() - 1
            }
        };
        if let Some(q) = queue {
            self.remote[i].queues.push(Bytes::copy_from_slice(q));
        }
    }

    /// Sends the message once to each route noted by this hop (`RMSG`, or `HMSG` with
    /// headers), with the queue groups it was picked for.
    #[inline(never)]
    fn send_remote(&mut self, srv: &Arc<ServerInner>, acc: &Account, hop: &Hop<'_>) -> bool {
        let hits = std::mem::take(&mut self.remote);
        let msg = hop.msg;
        let mut sent = false;
        for h in &hits {
            let c = &h.route;
            let pinned = c.pinned_account().is_some_and(|p| p == acc.name);
            let account = (!pinned).then_some(acc.name.as_bytes());
            let queues: Vec<&[u8]> = h.queues.iter().map(|q| &q[..]).collect();
            let hdr = msg.hdr.filter(|_| c.headers.load(Ordering::Relaxed));
            // A message shown under another subject (a JetStream delivery to a pull
            // request's inbox) travels by its routing subject, the shown one after an `@` at
            // the end of its `$JS.ACK` reply, as nats-server sends it; the peer takes it off.
            let suffixed;
            let reply = match (hop.shown, msg.reply) {
                (Some(shown), Some(r)) if shown != msg.subject && !js_ack_has_deliver(r) => {
                    suffixed = [r, b"@", shown].concat();
                    Some(&suffixed[..])
                }
                _ => msg.reply,
            };
            let appended = c.append(msg.size(), |out| {
                encode::rmsg(out, account, msg.subject, reply, &queues, hdr, msg.payload)
            });
            let Some((was_empty, pending)) = appended else { continue };
            sent = true;
            self.out_msgs += 1;
            self.out_bytes += msg.size() as u64;
            self.out_route_msgs += 1;
            self.out_route_bytes += msg.size() as u64;
            if pending > c.max_pending {
                slow_consumer(srv, c);
                continue;
            }
            if was_empty {
                self.dirty.push(c.clone());
            }
            // A route that is behind slows the client publishing into it, as a slow local
            // receiver does (nats-server stalls client producers for either).
            if pending > c.stall_at {
                self.stall = Some(c.clone());
            }
        }
        // Keep the allocation for the next message.
        self.remote = hits;
        self.remote.clear();
        sent
    }

    /// Delivers to the subscription behind a stream-import shadow, on its account's subject.
    fn deliver_shadow(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        sh: &Shadow,
        hop: &Hop<'_>,
    ) -> bool {
        let dsubj = sh.import.deliver_subject(hop.shown());
        let Some(home) = sh.root.client.account() else { return false };
        let h = Hop { shown: Some(dsubj.as_deref().unwrap_or(hop.shown())), ..*hop };
        self.deliver(srv, from, &home, &sh.root, &h)
    }

    /// A request through a service import (nats-server's processServiceImport): re-published
    /// in the exporting account on the exported subject, with a `_R_` reply that maps back to
    /// the requester, and the requester's account in a `Nats-Request-Info` header.
    fn service_import(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        si: &Arc<account::ServiceImport>,
        hop: &Hop<'_>,
        chain: &mut Vec<usize>,
    ) -> bool {
        let key = Arc::as_ptr(&si.export) as usize;
        if chain.contains(&key) || chain.len() >= MAX_IMPORT_HOPS {
            return false;
        }
        let msg = hop.msg;
        let exporter = si.acc.clone();
        let mut to = si.target(msg.subject);
        if exporter.flags() & account::F_MAPPINGS != 0
            && let Some(m) = exporter.map_subject(&to)
        {
            to = m;
        }
        let nrr = msg.reply.map(|r| exporter.new_response(acc.clone(), r, &si.export));
        if nrr.is_some() {
            crate::interest::advertise_responses(srv, &exporter);
        }
        let hdr = request_info_header(srv, from, msg.hdr, &acc.name, si.share);
        chain.push(key);
        let h = Hop {
            msg: Msg { subject: &to, reply: nrr.as_deref(), hdr: Some(&hdr), payload: msg.payload },
            shown: None,
            from_service: true,
        };
        let d = self.route_in(srv, from, &exporter, &h, None, chain);
        chain.pop();
        if !d && let Some(n) = &nrr {
            exporter.remove_response(n);
        }
        d
    }

    /// Delivers to one local subscription (client or internal), `acc` being the account the
    /// message is delivered in.
    fn deliver(
        &mut self,
        srv: &Arc<ServerInner>,
        from: &Origin<'_>,
        acc: &Arc<Account>,
        sub: &Arc<Subscription>,
        hop: &Hop<'_>,
    ) -> bool {
        let msg = hop.msg;
        let subject = hop.shown();
        if let Some(p) = sub.client.perms.get() {
            // A subscription wider than a denied subject: filter here (nats-server's
            // deliver-time deny check).
            if p.has_sub_deny() && p.deny_delivery(subject, sub.queue.as_deref()) {
                return false;
            }
            if let (Some(r), Some(rp)) = (msg.reply, p.responses()) {
                let mut replies = sub.client.replies.lock().unwrap();
                if replies.len() < REPLIES_MAX {
                    // `expires` may be "never" (Duration::MAX): saturate instead of overflowing.
                    let now = Instant::now();
                    let deadline = now
                        .checked_add(rp.expires)
                        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
                    replies.insert(Bytes::copy_from_slice(r), (rp.max, deadline));
                }
            }
        }
        let max = sub.max.load(Ordering::Relaxed);
        if max > 0 {
            let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
            if n > max {
                return false;
            }
            if n == max {
                let home = sub.client.account().unwrap_or_else(|| acc.clone());
                crate::interest::unsubscribe(srv, &home, sub);
            }
        } else {
            sub.delivered.fetch_add(1, Ordering::Relaxed);
        }
        let c = &sub.client;
        if let Some(sink) = &c.internal {
            // The API audit advisory names the requester; built only when someone listens.
            let requester = match from.publisher() {
                Some(pc) if sink.wants_requester(acc, &sub.sid) => {
                    Some(client_info_json(srv, pc, &pc_account_name(pc, acc), true))
                }
                _ => None,
            };
            let shown = Msg { subject, ..msg };
            let routed = from.conn.is_some_and(|c| c.kind == crate::conn::Kind::Router);
            return sink.deliver(acc, &sub.sid, &shown, requester, routed);
        }
        let hdr = msg.hdr.filter(|_| c.headers.load(Ordering::Relaxed));
        let size = msg.payload.len() + hdr.map_or(0, <[u8]>::len);
        let appended = c.append(size, |out| match hdr {
            Some(h) => encode::hmsg(out, subject, &sub.sid, msg.reply, h, msg.payload),
            None => encode::msg(out, subject, &sub.sid, msg.reply, msg.payload),
        });
        let Some((was_empty, pending)) = appended else {
            return false;
        };
        self.out_msgs += 1;
        self.out_bytes += size as u64;
        if pending > c.max_pending {
            slow_consumer(srv, c);
            return true;
        }
        if was_empty {
            self.dirty.push(c.clone());
        }
        if pending > c.stall_at {
            self.stall = Some(c.clone());
        }
        true
    }

    /// The no-responders status (503) for a request nobody received, sent to the requester's
    /// own subscription on its reply subject (nats-server sends it only there).
    pub(crate) fn no_responders(
        &mut self,
        client: &Arc<ClientShared>,
        acc: &Account,
        subject: &[u8],
        reply: &[u8],
    ) {
        if !subject::is_valid_literal_subject(reply) {
            return;
        }
        let r = acc.sublist.match_subject(reply);
        let Some(sub) = r.psubs.iter().find(|s| Arc::ptr_eq(&s.0.client, client)) else {
            return;
        };
        let h = headers::no_responders(subject);
        let sid = sub.0.sid.clone();
        if let Some((true, _)) =
            client.append(h.len(), |out| encode::hmsg(out, reply, &sid, None, &h, b""))
        {
            self.dirty.push(client.clone());
        }
    }
}

/// A queue group member: a subscription of the account, or a stream-import shadow.
enum Member<'a> {
    Sub(&'a Arc<Subscription>),
    Shadow(&'a Arc<Shadow>),
}

/// Cuts a receiver past its `max_pending` (nats-server's slow consumer).
fn slow_consumer(srv: &ServerInner, c: &Arc<ClientShared>) {
    if c.is_closing() {
        return;
    }
    srv.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
    let label = if c.kind == Kind::Router { "rid" } else { "cid" };
    tracing::info!(
        "{}:{} - {label}:{} - Slow Consumer Detected: MaxPending of {} Exceeded",
        c.addr.ip(),
        c.addr.port(),
        c.cid,
        c.max_pending
    );
    c.close(crate::conn::CloseReason::SlowConsumerPendingBytes, false);
}

/// The name of the account the publishing client is bound to (falling back to `acc`).
fn pc_account_name(pc: &ClientShared, acc: &Account) -> String {
    pc.account().map(|a| a.name.clone()).unwrap_or_else(|| acc.name.clone())
}

/// nats-server's `ClientInfo` as a service sees it in `Nats-Request-Info` (field order and
/// omissions as its JSON): the account and RTT always, the rest when the import shares.
#[derive(serde::Serialize, Default)]
struct RequestInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    acc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ver: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    rtt: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_type: Option<&'static str>,
}

fn is_zero(n: &u128) -> bool {
    *n == 0
}

/// nats-server's `ClientInfo` of a client as JSON: the account and RTT, and with `share` who
/// it is (what a sharing service import and the JetStream API audit show).
pub(crate) fn client_info_json(
    srv: &ServerInner,
    c: &ClientShared,
    acc: &str,
    share: bool,
) -> String {
    let meta = c.meta.lock().unwrap().clone();
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    let mut ci =
        RequestInfo { acc, rtt: meta.rtt.unwrap_or_default().as_nanos(), ..RequestInfo::default() };
    if share {
        ci.start = Some(chorus_jetstream::go::rfc3339(c.start));
        ci.host = Some(c.addr.ip().to_string());
        ci.id = Some(c.cid);
        ci.user = meta.user.and_then(nonempty);
        ci.name = nonempty(meta.name);
        ci.lang = nonempty(meta.lang);
        ci.ver = nonempty(meta.version);
        ci.server = Some(srv.name.clone());
        ci.kind = Some("Client");
        ci.client_type =
            Some(if c.transport == Transport::Websocket { "websocket" } else { "nats" });
    }
    serde_json::to_string(&ci).expect("json")
}

/// The message's header block with `Nats-Request-Info` added (what nats-server tells a
/// service about the requester; an existing one is kept, as a chained import carries the
/// first requester's). The server's own requests carry the account only.
fn request_info_header(
    srv: &ServerInner,
    from: &Origin<'_>,
    hdr: Option<&[u8]>,
    acc: &str,
    share: bool,
) -> Vec<u8> {
    if let Some(h) = hdr
        && headers::get(h, "Nats-Request-Info").is_some()
    {
        return h.to_vec();
    }
    let json = match from.publisher() {
        Some(c) => client_info_json(srv, c, acc, share),
        None => {
            serde_json::to_string(&RequestInfo { acc, ..RequestInfo::default() }).expect("json")
        }
    };
    let mut out = Vec::with_capacity(hdr.map_or(12, <[u8]>::len) + json.len() + 24);
    match hdr {
        Some(h) if h.ends_with(b"\r\n\r\n") => out.extend_from_slice(&h[..h.len() - 2]),
        _ => out.extend_from_slice(b"NATS/1.0\r\n"),
    }
    out.extend_from_slice(b"Nats-Request-Info: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// Appends a protocol line to `c` and queues its writer in `d` (replies to a client's own
/// ops go out with the batch's deliveries).
pub(crate) fn send_proto(d: &mut Delivery, c: &Arc<ClientShared>, bytes: &[u8]) {
    if let Some(true) = c.append_proto(bytes) {
        d.mark_dirty(c);
    }
}
