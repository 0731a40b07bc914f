//! Routes: the links between the servers of a cluster, wire-compatible with nats-server's
//! (`route.go`), so a Chorus node can sit in a cluster of nats-servers and the reverse.
//!
//! ```text
//!  cluster port ─accept─┐                 ┌─ RS+/RS- from peers: route subscriptions in the
//!  configured routes ───┼─► route::conn ──┤   accounts' sublists (owner: the route link)
//!  gossiped peers ─dial─┘   (handshake,   ├─ RMSG/HMSG: deliver::Delivery (local only)
//!                            ops, pings)  └─ INFO: gossip (dial new peers), lame duck
//!  local subscriptions ── interest ──► Routes::send_interest ──► RS+/RS- to each peer
//!  publishes ── deliver ──► route subscriptions ──► one RMSG per peer link
//! ```
//!
//! The model is nats-server's:
//! - Each pair of servers is joined by a *pool* of connections (default 3, `pool_size`),
//!   plus one dedicated (*pinned*) connection per pinned account (`cluster.accounts`, and
//!   the system account whenever pooling is on). An account's interest and messages use the
//!   slot `fnv32a(account) % pool_size`, or its pinned connection, where the account token is
//!   left out. A peer that announces no pool (`pool_size: -1`) gets everything on one.
//! - The dialer picks a free slot and announces it (`route_pool_idx`); the acceptor puts the
//!   connection there. A connection whose slot (or pinned account) is taken is a duplicate
//!   and is closed without a word; when both servers dial each other, both may lose theirs
//!   and the next attempts (1 s apart, with jitter) settle it.
//! - Interest: the first local subscription on a subject sends `RS+`, the last one leaving
//!   `RS-`; a queue group's member count travels as its weight. A connection that comes up
//!   gets a snapshot of the accounts it carries.
//! - A new peer's INFO is forwarded to the other peers (gossip), which dial it: the mesh
//!   becomes full even when each server lists only one other.
//!
//! This module holds the table of registered links ([`Routes`]); `conn` runs a connection.

pub(crate) mod conn;
pub(crate) mod info;
pub(crate) mod raft;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use chorus_proto::encode;
use rustc_hash::FxHashMap;

use crate::sub::ClientShared;
use info::{RouteInfo, pool_index};

/// One registered route connection.
#[derive(Debug)]
pub(crate) struct Link {
    /// Its outbound buffer, counters and lifecycle (kind `Router`).
    pub shared: Arc<ClientShared>,
    pub remote_id: String,
    pub remote_name: String,
    /// The peer's raft node id (0: it runs no clustered JetStream).
    pub remote_node: u64,
    /// The pool slot, or `None` for a pinned connection.
    pub slot: Option<usize>,
    /// The account a pinned connection carries.
    pub account: Option<String>,
    /// The peer announced no pool: every account travels here, with its name.
    pub no_pool: bool,
    /// Dialed by this server (it reconnects when lost).
    pub did_solicit: AtomicBool,
    /// Dialed from a configured route (`routes: [...]`), as /routez `is_configured`.
    pub configured: AtomicBool,
    /// The URL it was dialed with (shown and redialed).
    pub url: Mutex<Option<String>>,
    /// Route subscriptions learned on it.
    pub subs: AtomicUsize,
    /// Round trip of the last PING answered.
    pub rtt: Mutex<Option<Duration>>,
}

impl Link {
    /// Whether messages and interest of `account` carry the account token on this link.
    pub(crate) fn names_account(&self) -> bool {
        self.account.is_none()
    }
}

/// What is known about one peer server.
#[derive(Debug)]
struct Peer {
    /// Pooled links by slot (one slot for a no-pool peer).
    slots: Vec<Option<Arc<Link>>>,
    /// Pinned links by account.
    pinned: FxHashMap<String, Arc<Link>>,
    no_pool: bool,
    /// The INFO of its first connection (client URLs).
    info: RouteInfo,
    /// INFOs of pinned connections that registered before any pooled one: they are gossiped
    /// after the pooled one (a peer told of a pinned connection first would take that for
    /// the whole route and never dial the pool).
    held_gossip: Vec<RouteInfo>,
    /// The peer is in lame duck mode: its client URLs are withdrawn.
    ldm: bool,
}

impl Peer {
    fn links(&self) -> impl Iterator<Item = &Arc<Link>> {
        self.slots.iter().flatten().chain(self.pinned.values())
    }

    fn is_empty(&self) -> bool {
        self.links().next().is_none()
    }
}

/// Why a connection was not registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its slot or pinned account is taken, or the pool is full: closed silently.
    Duplicate,
    /// A protocol error worth an `-ERR` before closing.
    Invalid(String),
}

/// What registering a connection found.
#[derive(Debug)]
pub(crate) struct Registered {
    pub link: Arc<Link>,
    /// The first connection of this peer: its client URLs are added.
    pub first: bool,
    /// INFOs to forward to the other peers now, in order (see `Peer::held_gossip`).
    pub gossip: Vec<RouteInfo>,
    /// A dialer with free slots left: it should open the next connection.
    pub more: bool,
}

/// A registration request from a connection whose handshake is done.
#[derive(Debug)]
pub(crate) struct Join<'a> {
    pub shared: &'a Arc<ClientShared>,
    pub info: &'a RouteInfo,
    pub did_solicit: bool,
    pub configured: bool,
    pub url: Option<String>,
}

/// The server's routes, as the rest of the server reaches them.
#[derive(Debug, Default)]
pub struct Routes {
    table: Mutex<Table>,
    /// Registered links: when 0, interest changes skip the table lock.
    links: AtomicUsize,
    /// Bumped when the client URLs clients should know change.
    urls_changed: AtomicU64,
    /// Set at shutdown: nothing registers any more.
    closed: AtomicBool,
    /// This server's pool size (0: pooling off), readable without the table lock (the
    /// INFO built while registering needs it).
    pool_size: AtomicUsize,
}

#[derive(Debug, Default)]
struct Table {
    /// This server's pool size (0: pooling off).
    pool_size: usize,
    /// Accounts with dedicated connections (the system account when pooling).
    pinned: Vec<String>,
    peers: BTreeMap<String, Peer>,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes::default()
    }

    /// Sets this server's pool size (`cluster.pool_size`; negative: off) and pinned accounts.
    pub(crate) fn configure(&self, pool_size: i32, pinned: Vec<String>) {
        let mut t = self.table.lock().unwrap();
        t.pool_size = usize::try_from(pool_size).unwrap_or(0);
        t.pinned = if t.pool_size == 0 { Vec::new() } else { pinned };
        self.pool_size.store(t.pool_size, Ordering::Release);
    }

    /// Whether any route is up (route subscriptions exist only then: a link's are removed
    /// before it unregisters).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.links.load(Ordering::Acquire) > 0
    }

    pub(crate) fn pool_size(&self) -> usize {
        self.pool_size.load(Ordering::Acquire)
    }

    /// Whether `account` has dedicated connections here.
    pub(crate) fn is_pinned(&self, account: &str) -> bool {
        self.table.lock().unwrap().pinned.iter().any(|a| a == account)
    }

    pub(crate) fn pinned_accounts(&self) -> Vec<String> {
        self.table.lock().unwrap().pinned.clone()
    }

    /// Registers a connection whose handshake is done (nats-server's `addRoute`). `hello`
    /// runs under the table lock before the link becomes visible, with the slot it got, and
    /// returns what must be on the wire before any interest (the dialer's INFO); it must not
    /// call back into the table.
    pub(crate) fn register(
        &self,
        j: Join<'_>,
        hello: impl FnOnce(Option<usize>) -> Option<Vec<u8>>,
    ) -> Result<Registered, Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Duplicate);
        }
        let mut t = self.table.lock().unwrap();
        let remote_pool = usize::try_from(j.info.route_pool_size).unwrap_or(0);
        let no_pool = remote_pool == 0 || t.pool_size == 0;
        let account = (!j.info.route_account.is_empty()).then(|| j.info.route_account.clone());
        let effective = t.pool_size.max(remote_pool).max(1);
        if let Some(a) = &account {
            if no_pool {
                return Err(Refused::Invalid(format!(
                    "Not possible to have a dedicated route for account {a:?} between those servers"
                )));
            }
            if !t.pinned.iter().any(|p| p == a) {
                return Err(Refused::Invalid(format!("No route for account {a:?}")));
            }
        } else if !no_pool {
            if j.did_solicit && j.info.route_pool_idx != 0 {
                return Err(Refused::Invalid(format!(
                    "Route pool index should not be set but is set to {}",
                    j.info.route_pool_idx
                )));
            }
            if !j.did_solicit
                && (j.info.route_pool_idx < 0 || j.info.route_pool_idx as usize >= effective)
            {
                return Err(Refused::Invalid(format!(
                    "Invalid route pool index: {} - pool size is {}",
                    j.info.route_pool_idx, j.info.route_pool_size
                )));
            }
        }
        let slots = if no_pool { 1 } else { effective };
        let first = !t.peers.contains_key(&j.info.server_id);
        let peer = t.peers.entry(j.info.server_id.clone()).or_insert_with(|| Peer {
            slots: vec![None; slots],
            pinned: FxHashMap::default(),
            no_pool,
            info: j.info.clone(),
            held_gossip: Vec::new(),
            ldm: false,
        });
        if peer.slots.len() < slots {
            peer.slots.resize(slots, None);
        }
        // A dialed connection that finds its place taken hands its role to the links that
        // stay: they are redialed (with its URL) when lost, as nats-server upgrades them.
        let upgrade = |peer: &Peer| {
            if j.did_solicit {
                for l in peer.links() {
                    l.did_solicit.store(true, Ordering::Relaxed);
                    if j.configured {
                        l.configured.store(true, Ordering::Relaxed);
                    }
                    let mut url = l.url.lock().unwrap();
                    if url.is_none() || j.configured {
                        url.clone_from(&j.url);
                    }
                }
            }
        };
        let slot = match &account {
            Some(a) if peer.pinned.contains_key(a) => {
                upgrade(peer);
                return Err(Refused::Duplicate);
            }
            Some(_) => None,
            None if no_pool || !j.did_solicit => {
                let want = if no_pool { 0 } else { j.info.route_pool_idx as usize };
                if peer.slots[want].is_some() {
                    upgrade(peer);
                    return Err(Refused::Duplicate);
                }
                Some(want)
            }
            // A dialer takes the first free slot and tells the acceptor.
            None => match peer.slots.iter().position(Option::is_none) {
                Some(i) => Some(i),
                None => {
                    upgrade(peer);
                    return Err(Refused::Duplicate);
                }
            },
        };
        // A dialer anywhere in the pool makes every link of the peer reconnect when lost.
        upgrade(peer);
        let solicited_before = peer.links().any(|l| l.did_solicit.load(Ordering::Relaxed));
        let link = Arc::new(Link {
            shared: j.shared.clone(),
            remote_id: j.info.server_id.clone(),
            remote_name: j.info.server_name.clone(),
            remote_node: j.info.chorus_node,
            slot,
            account: account.clone(),
            no_pool,
            did_solicit: AtomicBool::new(j.did_solicit || solicited_before),
            configured: AtomicBool::new(j.configured),
            url: Mutex::new(j.url),
            subs: AtomicUsize::new(0),
            rtt: Mutex::new(None),
        });
        if let Some(a) = &account {
            let _ = link.shared.pinned.set(a.clone());
        }
        if let Some(bytes) = hello(slot) {
            let _ = link.shared.append_proto(&bytes);
        }
        let had_pooled = peer.slots.iter().any(Option::is_some);
        let mut gossip = Vec::new();
        match (&account, slot) {
            (Some(a), _) => {
                peer.pinned.insert(a.clone(), link.clone());
                if had_pooled {
                    gossip.push(j.info.clone());
                } else {
                    peer.held_gossip.push(j.info.clone());
                }
            }
            (None, Some(i)) => {
                peer.slots[i] = Some(link.clone());
                if !had_pooled {
                    gossip.push(j.info.clone());
                    gossip.append(&mut peer.held_gossip);
                }
            }
            (None, None) => unreachable!("a pooled link has a slot"),
        }
        let more = j.did_solicit
            && account.is_none()
            && !no_pool
            && peer.slots.iter().any(Option::is_none);
        self.links.fetch_add(1, Ordering::AcqRel);
        if first {
            self.urls_changed.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Registered { link, first, gossip, more })
    }

    /// Removes a registered link. Returns whether it was the peer's last (its client URLs
    /// go).
    pub(crate) fn unregister(&self, link: &Arc<Link>) -> bool {
        let mut t = self.table.lock().unwrap();
        let Some(peer) = t.peers.get_mut(&link.remote_id) else { return false };
        let mine = |l: &Option<Arc<Link>>| l.as_ref().is_some_and(|x| Arc::ptr_eq(x, link));
        let removed = match (&link.account, link.slot) {
            (Some(a), _) if peer.pinned.get(a).is_some_and(|x| Arc::ptr_eq(x, link)) => {
                peer.pinned.remove(a);
                true
            }
            (Some(_), _) => false,
            (None, Some(i)) if peer.slots.get(i).is_some_and(mine) => {
                peer.slots[i] = None;
                true
            }
            _ => false,
        };
        if !removed {
            return false;
        }
        self.links.fetch_sub(1, Ordering::AcqRel);
        let last = peer.is_empty();
        if last {
            t.peers.remove(&link.remote_id);
            self.urls_changed.fetch_add(1, Ordering::AcqRel);
        }
        last
    }

    /// Tells every peer that this server's interest in (`subject`, `queue`) of `account` is
    /// now `weight` subscriptions (0: none left): `RS+`/`RS-` on the link that carries the
    /// account. Callers hold the account's interest lock, so lines of one subject keep their
    /// order.
    pub(crate) fn send_interest(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        weight: u32,
    ) {
        if self.links.load(Ordering::Acquire) == 0 {
            return;
        }
        let t = self.table.lock().unwrap();
        let pinned = t.pinned.iter().any(|a| a == account);
        let slot = pool_index(t.pool_size, account);
        let mut line = BytesMut::with_capacity(subject.len() + account.len() + 24);
        for peer in t.peers.values() {
            let link = if peer.no_pool {
                peer.slots[0].as_ref()
            } else if pinned {
                peer.pinned.get(account)
            } else {
                peer.slots.get(slot).and_then(Option::as_ref)
            };
            let Some(link) = link else { continue };
            line.clear();
            let acc = link.names_account().then_some(account.as_bytes());
            encode::route_sub(&mut line, acc, subject, queue, weight);
            if link.shared.append_proto(&line) == Some(true) {
                link.shared.wake_writer();
            }
        }
    }

    /// Whether `link` carries `account`'s interest (for the snapshot a new link gets).
    pub(crate) fn carries(&self, link: &Link, account: &str) -> bool {
        if link.no_pool {
            return true;
        }
        let t = self.table.lock().unwrap();
        let pinned = t.pinned.iter().any(|a| a == account);
        match (&link.account, link.slot) {
            (Some(a), _) => a == account,
            (None, Some(i)) => !pinned && pool_index(t.pool_size, account) == i,
            (None, None) => false,
        }
    }

    /// Whether a link to `server_id` (for `account`'s pinned connection, or any) exists.
    pub(crate) fn has_peer(&self, server_id: &str, account: Option<&str>) -> bool {
        let t = self.table.lock().unwrap();
        match (t.peers.get(server_id), account) {
            (Some(p), Some(a)) => p.pinned.contains_key(a),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// A peer entered lame duck mode (or left it): its client URLs are withdrawn.
    pub(crate) fn set_ldm(&self, server_id: &str, ldm: bool) -> bool {
        let mut t = self.table.lock().unwrap();
        let Some(p) = t.peers.get_mut(server_id) else { return false };
        let changed = p.ldm != ldm;
        p.ldm = ldm;
        if changed {
            self.urls_changed.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// The client (`ws`: WebSocket) URLs of the peers, for `connect_urls`.
    pub(crate) fn peer_client_urls(&self, ws: bool) -> Vec<String> {
        let t = self.table.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for p in t.peers.values().filter(|p| !p.ldm) {
            let urls = if ws { &p.info.ws_connect_urls } else { &p.info.connect_urls };
            for u in urls {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        out
    }

    /// Counts when the peers' client URLs changed (clients compare it to push async INFO).
    pub(crate) fn urls_generation(&self) -> u64 {
        self.urls_changed.load(Ordering::Acquire)
    }

    /// The INFO of each peer but `except`, with one link to send gossip on, and whether the
    /// peer is reached through a configured route.
    pub(crate) fn gossip_targets(&self, except: &str) -> Vec<(Arc<Link>, bool)> {
        let t = self.table.lock().unwrap();
        t.peers
            .iter()
            .filter(|(id, _)| id.as_str() != except)
            .filter_map(|(_, p)| {
                let link = p.slots.iter().flatten().next().or_else(|| p.pinned.values().next())?;
                let configured = p.links().any(|l| l.configured.load(Ordering::Relaxed));
                Some((link.clone(), configured))
            })
            .collect()
    }

    /// Every registered link (monitoring, lame duck, shutdown).
    pub(crate) fn links(&self) -> Vec<Arc<Link>> {
        let t = self.table.lock().unwrap();
        t.peers.values().flat_map(|p| p.links().cloned().collect::<Vec<_>>()).collect()
    }

    /// The first pooled link of each peer (where a lame duck INFO goes).
    pub(crate) fn first_links(&self) -> Vec<Arc<Link>> {
        let t = self.table.lock().unwrap();
        t.peers
            .values()
            .filter_map(|p| p.slots.iter().flatten().next().or_else(|| p.pinned.values().next()))
            .cloned()
            .collect()
    }

    /// The link raft frames for `node` go on: the one that carries the system account
    /// (its pinned connection, or its pool slot), with that account's token when the link
    /// names accounts.
    pub(crate) fn raft_link(&self, node: u64, system: &str) -> Option<Arc<Link>> {
        let t = self.table.lock().unwrap();
        let peer = t.peers.values().find(|p| p.links().any(|l| l.remote_node == node))?;
        if peer.no_pool {
            return peer.slots[0].clone();
        }
        if let Some(l) = peer.pinned.get(system) {
            return Some(l.clone());
        }
        let slot = pool_index(t.pool_size, system);
        peer.slots
            .get(slot)
            .cloned()
            .flatten()
            .or_else(|| peer.slots.iter().flatten().next().cloned())
    }

    /// The raft node ids of the connected peers, with their server names.
    pub(crate) fn raft_peers(&self) -> Vec<(u64, String)> {
        let t = self.table.lock().unwrap();
        t.peers
            .values()
            .filter_map(|p| {
                let l = p.links().find(|l| l.remote_node != 0)?;
                Some((l.remote_node, l.remote_name.clone()))
            })
            .collect()
    }

    /// Distinct peers connected (/varz `remotes`).
    pub(crate) fn num_remotes(&self) -> usize {
        self.table.lock().unwrap().peers.len()
    }

    /// Stops registering; closes every link (shutdown). Peers see the connections drop.
    pub(crate) fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        for l in self.links() {
            l.shared.close(crate::conn::CloseReason::ServerShutdown, false);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A /routez row's numbers, read under no lock but the link's own.
#[derive(Debug)]
pub(crate) struct LinkView {
    pub rid: u64,
    pub remote_id: String,
    pub remote_name: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub addr: std::net::SocketAddr,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub rtt: Option<Duration>,
    pub pending: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    pub account: Option<String>,
}

impl Link {
    pub(crate) fn view(&self) -> LinkView {
        let (out_msgs, out_bytes, pending) = self.shared.out_counts();
        LinkView {
            rid: self.shared.cid,
            remote_id: self.remote_id.clone(),
            remote_name: self.remote_name.clone(),
            did_solicit: self.did_solicit.load(Ordering::Relaxed),
            is_configured: self.configured.load(Ordering::Relaxed),
            addr: self.shared.addr,
            start: self.shared.start,
            last_activity: *self.shared.last_activity.lock().unwrap(),
            rtt: *self.rtt.lock().unwrap(),
            pending,
            in_msgs: self.shared.in_msgs.load(Ordering::Relaxed),
            out_msgs,
            in_bytes: self.shared.in_bytes.load(Ordering::Relaxed),
            out_bytes,
            subscriptions: self.subs.load(Ordering::Relaxed),
            account: self.account.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Kind, Transport};

    fn conn(cid: u64) -> Arc<ClientShared> {
        Arc::new(ClientShared::new(
            cid,
            ([127, 0, 0, 1], 1000 + cid as u16).into(),
            Kind::Router,
            Transport::Tcp,
            1 << 20,
            tokio_util::sync::CancellationToken::new(),
            std::sync::Weak::new(),
        ))
    }

    fn info(id: &str, pool: i32, idx: i32, account: &str) -> RouteInfo {
        RouteInfo {
            server_id: id.into(),
            server_name: id.to_lowercase(),
            route_pool_size: pool,
            route_pool_idx: idx,
            route_account: account.into(),
            connect_urls: vec![format!("{id}:4222")],
            ..RouteInfo::default()
        }
    }

    fn join<'a>(c: &'a Arc<ClientShared>, i: &'a RouteInfo, dialed: bool) -> Join<'a> {
        Join { shared: c, info: i, did_solicit: dialed, configured: dialed, url: None }
    }

    fn routes() -> Routes {
        let r = Routes::new();
        r.configure(3, vec!["$SYS".into()]);
        r
    }

    #[test]
    fn dialers_take_free_slots_and_acceptors_the_slot_they_are_told() {
        let r = routes();
        let (c1, c2, c3, c4) = (conn(1), conn(2), conn(3), conn(4));
        let i = info("NB", 3, 0, "");
        // The dialer announces the slot it took in its INFO (`hello` sees it).
        let mut told = Vec::new();
        let a = r
            .register(join(&c1, &i, true), |s| {
                told.push(s);
                None
            })
            .unwrap();
        assert_eq!((a.link.slot, a.first, a.more), (Some(0), true, true));
        let b = r
            .register(join(&c2, &i, true), |s| {
                told.push(s);
                None
            })
            .unwrap();
        assert_eq!((b.link.slot, b.first, b.more), (Some(1), false, true));
        assert_eq!(told, vec![Some(0), Some(1)]);
        // The peer dialed slot 2 meanwhile: accepted there.
        let ia = info("NB", 3, 2, "");
        let c = r.register(join(&c3, &ia, false), |_| None).unwrap();
        assert_eq!(c.link.slot, Some(2));
        // Full: another dial is a duplicate, and so is an accepted one on a taken slot.
        assert_eq!(r.register(join(&c4, &i, true), |_| None).unwrap_err(), Refused::Duplicate);
        let taken = info("NB", 3, 1, "");
        assert_eq!(r.register(join(&c4, &taken, false), |_| None).unwrap_err(), Refused::Duplicate);
        // The accepted survivor now stands for a dialed, configured route.
        assert!(c.link.did_solicit.load(Ordering::Relaxed));
        assert!(c.link.configured.load(Ordering::Relaxed));
        assert_eq!((r.links().len(), r.num_remotes()), (3, 1));
    }

    #[test]
    fn refusals_name_the_problem_as_nats_server_does() {
        let r = routes();
        let c = conn(1);
        let bad = info("NB", 3, 5, "");
        assert_eq!(
            r.register(join(&c, &bad, false), |_| None).unwrap_err(),
            Refused::Invalid("Invalid route pool index: 5 - pool size is 3".into())
        );
        let set = info("NB", 3, 1, "");
        assert_eq!(
            r.register(join(&c, &set, true), |_| None).unwrap_err(),
            Refused::Invalid("Route pool index should not be set but is set to 1".into())
        );
        let other = info("NB", 3, 0, "ACC");
        assert_eq!(
            r.register(join(&c, &other, false), |_| None).unwrap_err(),
            Refused::Invalid("No route for account \"ACC\"".into())
        );
        let no_pool = info("NB", 0, 0, "$SYS");
        assert_eq!(
            r.register(join(&c, &no_pool, false), |_| None).unwrap_err(),
            Refused::Invalid(
                "Not possible to have a dedicated route for account \"$SYS\" between those \
                 servers"
                    .into()
            )
        );
        assert_eq!(r.links().len(), 0);
    }

    #[test]
    fn pinned_links_are_one_per_account_and_the_last_link_takes_the_peer() {
        let r = routes();
        let (c1, c2, c3) = (conn(1), conn(2), conn(3));
        let gen0 = r.urls_generation();
        let pool = r.register(join(&c1, &info("NB", 3, 0, ""), true), |_| None).unwrap();
        let sys = info("NB", 3, 0, "$SYS");
        let pinned = r.register(join(&c2, &sys, false), |_| None).unwrap();
        assert_eq!((pinned.link.slot, pinned.link.account.as_deref()), (None, Some("$SYS")));
        assert_eq!(c2.pinned_account(), Some("$SYS"));
        assert_eq!(r.register(join(&c3, &sys, true), |_| None).unwrap_err(), Refused::Duplicate);
        assert_eq!(r.peer_client_urls(false), vec!["NB:4222"]);
        assert!(r.urls_generation() > gen0);
        assert!(!r.unregister(&pinned.link), "the pooled link is still up");
        assert!(r.unregister(&pool.link), "the peer's last link");
        assert!(!r.unregister(&pool.link), "already gone");
        assert!(r.peer_client_urls(false).is_empty());
        assert_eq!(r.num_remotes(), 0);
    }

    #[test]
    fn interest_goes_on_the_link_that_carries_the_account() {
        let r = routes();
        let conns: Vec<_> = (0..4).map(conn).collect();
        let mut links = Vec::new();
        for (k, c) in conns.iter().take(3).enumerate() {
            let i = info("NB", 3, k as i32, "");
            links.push(r.register(join(c, &i, false), |_| None).unwrap().link);
        }
        let sys = info("NB", 3, 0, "$SYS");
        links.push(r.register(join(&conns[3], &sys, false), |_| None).unwrap().link);
        // $G hashes to slot 2 with a pool of 3, ACC to 1, foo to 0 (seen between two
        // nats-servers); $SYS is pinned and travels without its name.
        r.send_interest("$G", b"orders.>", None, 1);
        r.send_interest("ACC", b"work", Some(b"q"), 2);
        r.send_interest("foo", b"x", None, 0);
        r.send_interest("$SYS", b"$SYS.REQ.SERVER.PING", None, 1);
        let got: Vec<String> =
            conns.iter().map(|c| String::from_utf8(c.take_pending()).unwrap()).collect();
        assert_eq!(got[2], "RS+ $G orders.>\r\n");
        assert_eq!(got[1], "RS+ ACC work q 2\r\n");
        assert_eq!(got[0], "RS- foo x\r\n");
        assert_eq!(got[3], "RS+ $SYS.REQ.SERVER.PING\r\n");
        assert!(r.carries(&links[2], "$G") && !r.carries(&links[0], "$G"));
        assert!(r.carries(&links[3], "$SYS") && !r.carries(&links[0], "$SYS"));
    }

    #[test]
    fn a_peer_without_a_pool_gets_every_account_on_one_link() {
        let r = routes();
        let c = conn(1);
        let l = r.register(join(&c, &info("NOLD", 0, 0, ""), true), |_| None).unwrap();
        assert!(l.link.no_pool && !l.more);
        r.send_interest("$SYS", b"a", None, 1);
        r.send_interest("$G", b"b", Some(b"q"), 3);
        assert_eq!(String::from_utf8(c.take_pending()).unwrap(), "RS+ $SYS a\r\nRS+ $G b q 3\r\n");
        assert!(r.carries(&l.link, "ACC"));
    }
}
