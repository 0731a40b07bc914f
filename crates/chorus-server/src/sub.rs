//! The shared half of a connection and its subscriptions: what other tasks touch.
//!
//! A [`ClientShared`] is the part of a connection (client, route or the server's own internal
//! subscriber) that other connections' tasks reach: its outbound buffer, its lifecycle, and
//! what delivery checks (permissions, reply permissions). A [`Subscription`] is what sits in
//! an account's sublist and in match results.
//!
//! Delivery appends to the outbound buffer under a short lock and never does I/O; only the
//! connection's own writer task writes the socket (see `client`'s module docs).
//!
//! This module and `account` know each other (an account's sublist holds subscriptions, a
//! connection points back at its account); everything else here is below both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use chorus_proto::encode;
use rustc_hash::FxHashMap;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::account::{Account, Shadow};
use crate::auth::Permissions;
use crate::conn::{CloseReason, Kind, Transport};

/// A message as delivery sees it: views into the publisher's buffer, copied only into the
/// receivers' outbound buffers.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub hdr: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl Msg<'_> {
    /// Payload plus headers: what nats-server counts as a message's bytes.
    pub fn size(&self) -> usize {
        self.payload.len() + self.hdr.map_or(0, <[u8]>::len)
    }
}

/// The target of the server's own subscriptions (JetStream's, today). Delivery hands it the
/// message instead of appending to a buffer; it must not block.
pub(crate) trait Sink: Send + Sync + std::fmt::Debug {
    /// Takes a message published in `account` for the internal subscription `sid`. Returns
    /// whether it counts as delivered (for no-responders). `routed`: it came from another
    /// server of the cluster.
    fn deliver(
        &self,
        account: &Arc<Account>,
        sid: &[u8],
        msg: &Msg<'_>,
        requester: Option<String>,
        routed: bool,
    ) -> bool;

    /// Whether this delivery wants the publisher's `ClientInfo` JSON (the JetStream API audit
    /// advisory names the requester); computed only when it does.
    fn wants_requester(&self, _account: &Account, _sid: &[u8]) -> bool {
        false
    }
}

#[derive(Debug, Default)]
pub(crate) struct Outbound {
    buf: BytesMut,
    /// Set once the connection is closing: nothing more is appended.
    closing: bool,
    reason: Option<CloseReason>,
    msgs: u64,
    bytes: u64,
}

/// Metadata shown by /connz, written on CONNECT.
#[derive(Debug, Clone, Default)]
pub struct ConnMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: Option<String>,
    pub rtt: Option<Duration>,
}

/// The part of a client that other tasks touch: its outbound buffer and its lifecycle.
#[derive(Debug)]
pub struct ClientShared {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    out: Mutex<Outbound>,
    wake: Notify,
    /// Signalled each time the writer takes the buffer (a stalled publisher waits on it).
    pub(crate) drained: Notify,
    /// Cancels the reader and writer at once.
    pub kill: CancellationToken,
    pub meta: Mutex<ConnMeta>,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub num_subs: AtomicU64,
    pub last_activity: Mutex<SystemTime>,
    /// Whether this client announced header support; others get messages without headers,
    /// as nats-server strips them.
    pub(crate) headers: AtomicBool,
    pub(crate) max_pending: usize,
    /// Past this many pending bytes, a publisher that filled the buffer pauses briefly.
    pub(crate) stall_at: usize,
    /// Set for the server's internal subscribers (JetStream): deliveries go to this sink
    /// instead of an outbound buffer; there is no socket and no writer.
    pub(crate) internal: Option<Arc<dyn Sink>>,
    /// Client, route or internal.
    pub kind: Kind,
    /// The listener a client came in on.
    pub transport: Transport,
    /// The permissions the client authenticated with, for checks made by other clients'
    /// readers at delivery time (the deny filter of wide subscriptions, reply permissions).
    pub(crate) perms: OnceLock<Arc<Permissions>>,
    /// `allow_responses`: reply subjects this client may publish to, with the number of
    /// replies left and the deadline (filled when a request is delivered to it).
    pub(crate) replies: Mutex<FxHashMap<Bytes, (usize, Instant)>>,
    /// The account this client is bound to (weak: accounts hold subscriptions, which hold
    /// clients).
    pub(crate) account: Mutex<Weak<Account>>,
    /// Stream-import shadows of this client's subscriptions, by subscription address, so any
    /// reader that removes a subscription (auto-unsubscribe) removes its shadows too.
    pub(crate) shadows: Mutex<FxHashMap<usize, Vec<Arc<Shadow>>>>,
    /// JWT users: the user key, issuer and issue time, re-checked on account updates.
    pub(crate) jwt_user: Mutex<Option<chorus_auth::JwtUser>>,
    /// A route dedicated to one account (pinned, or `$SYS`'s): its messages and interest
    /// carry no account token.
    pub(crate) pinned: OnceLock<String>,
    /// A client that takes async INFO (protocol 1, after its first PONG): it is told when
    /// the cluster's client URLs change.
    pub(crate) async_info: AtomicBool,
    /// An internal client whose subscriptions the routes hear of (clustered JetStream: every
    /// server's API and the stream leaders' subjects are reachable from the whole cluster).
    pub(crate) advertise: OnceLock<Weak<crate::server::ServerInner>>,
}

impl ClientShared {
    /// A connection with a socket (client or route): its writer drains the buffer, and it is
    /// cut as a slow consumer past `max_pending` bytes.
    pub(crate) fn new(
        cid: u64,
        addr: SocketAddr,
        kind: Kind,
        transport: Transport,
        max_pending: usize,
        kill: CancellationToken,
        account: Weak<Account>,
    ) -> ClientShared {
        let max_pending = max_pending.max(1);
        ClientShared {
            cid,
            addr,
            start: SystemTime::now(),
            out: Mutex::new(Outbound::default()),
            wake: Notify::new(),
            drained: Notify::new(),
            kill,
            meta: Mutex::new(ConnMeta::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
            last_activity: Mutex::new(SystemTime::now()),
            headers: AtomicBool::new(kind == Kind::Router),
            max_pending,
            stall_at: max_pending / 4 * 3,
            internal: None,
            kind,
            transport,
            perms: OnceLock::new(),
            replies: Mutex::new(FxHashMap::default()),
            account: Mutex::new(account),
            shadows: Mutex::new(FxHashMap::default()),
            jwt_user: Mutex::new(None),
            pinned: OnceLock::new(),
            async_info: AtomicBool::new(false),
            advertise: OnceLock::new(),
        }
    }

    /// An internal client: the owner of internal subscriptions (see `internal`).
    pub(crate) fn new_internal(sink: Arc<dyn Sink>) -> ClientShared {
        let mut c = ClientShared::new(
            0,
            ([0, 0, 0, 0], 0).into(),
            Kind::System,
            Transport::Tcp,
            usize::MAX,
            CancellationToken::new(),
            Weak::new(),
        );
        c.headers = AtomicBool::new(true);
        c.stall_at = usize::MAX;
        c.internal = Some(sink);
        c
    }

    /// The account a pinned route carries, if this is one.
    pub(crate) fn pinned_account(&self) -> Option<&str> {
        self.pinned.get().map(String::as_str)
    }

    pub(crate) fn wake_writer(&self) {
        self.wake.notify_one();
    }

    /// Appends to the outbound buffer under the lock. Returns `None` if the connection is
    /// closing, else whether the buffer was empty before (the writer then needs a wake-up)
    /// and the new pending size.
    /// `size` is the message's payload plus headers, what nats-server counts as bytes out.
    #[inline(always)]
    pub(crate) fn append(
        &self,
        size: usize,
        f: impl FnOnce(&mut BytesMut),
    ) -> Option<(bool, usize)> {
        let mut o = self.out.lock().unwrap();
        if o.closing {
            return None;
        }
        let was_empty = o.buf.is_empty();
        f(&mut o.buf);
        o.msgs += 1;
        o.bytes += size as u64;
        Some((was_empty, o.buf.len()))
    }

    pub(crate) fn append_proto(&self, bytes: &[u8]) -> Option<bool> {
        let mut o = self.out.lock().unwrap();
        if o.closing {
            return None;
        }
        let was_empty = o.buf.is_empty();
        o.buf.extend_from_slice(bytes);
        Some(was_empty)
    }

    /// What is queued for the writer, taken out (unit tests of what delivery wrote).
    #[cfg(test)]
    pub(crate) fn take_pending(&self) -> Vec<u8> {
        std::mem::take(&mut self.out.lock().unwrap().buf).to_vec()
    }

    pub fn out_counts(&self) -> (u64, u64, usize) {
        let o = self.out.lock().unwrap();
        (o.msgs, o.bytes, o.buf.len())
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.out.lock().unwrap().reason
    }

    /// Starts closing the connection. With `flush`, what is already queued (say an `-ERR`)
    /// is written first; without it the connection is dropped now.
    pub fn close(&self, reason: CloseReason, flush: bool) {
        {
            let mut o = self.out.lock().unwrap();
            if o.closing {
                return;
            }
            o.closing = true;
            o.reason = Some(reason);
            if !flush {
                o.buf = BytesMut::new();
            }
        }
        if flush {
            self.wake.notify_one();
        } else {
            self.kill.cancel();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.out.lock().unwrap().closing
    }

    /// The account the client is bound to, while it exists.
    pub fn account(&self) -> Option<Arc<Account>> {
        self.account.lock().unwrap().upgrade()
    }

    /// Sends `-ERR 'text'` and closes after flushing it (used from outside the reader:
    /// account updates, expiry).
    pub fn err_and_close(&self, text: &str, reason: CloseReason) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        encode::err(&mut b, text);
        self.send_now(&b);
        self.close(reason, true);
    }

    /// Queues a protocol line and wakes the writer at once (used outside a read batch:
    /// lame-duck INFO, shutdown notices).
    pub fn send_now(&self, bytes: &[u8]) {
        if self.append_proto(bytes).is_some() {
            self.wake.notify_one();
        }
    }
}

/// A subscription, shared between its owner's map, the account sublist and match results.
#[derive(Debug)]
pub struct Subscription {
    pub client: Arc<ClientShared>,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    pub sid: Bytes,
    /// Auto-unsubscribe limit; 0 = none.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
    /// Set when removed from the sublist (e.g. by reaching `max`).
    pub removed: AtomicBool,
    /// A route's queue subscription: how many members the peer has (nats-server's queue
    /// weight), so a remote group with more members is picked more often. 1 otherwise.
    pub weight: AtomicU32,
}

impl Subscription {
    pub(crate) fn new(
        client: Arc<ClientShared>,
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    ) -> Subscription {
        Subscription {
            client,
            subject,
            queue,
            sid,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            weight: AtomicU32::new(1),
        }
    }
}

/// Handle stored in the sublist: identity is the allocation, not the contents.
#[derive(Debug, Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Bounds the writer's reuse of its spare buffer: a burst bigger than this is not kept.
const SPARE_MAX: usize = 256 * 1024;

/// The writer task of a connection with a socket: swaps the outbound buffer out under the
/// lock, writes it within `deadline` (else the peer is a slow consumer), repeats until the
/// connection closes.
pub(crate) async fn write_loop<W: AsyncWrite + Send>(
    c: Arc<ClientShared>,
    wr: W,
    deadline: Duration,
    stats: Arc<crate::conn::Stats>,
) {
    tokio::pin!(wr);
    let mut spare = BytesMut::new();
    loop {
        let closing = {
            let mut o = c.out.lock().unwrap();
            std::mem::swap(&mut o.buf, &mut spare);
            o.closing
        };
        if spare.is_empty() {
            if closing {
                break;
            }
            tokio::select! {
                _ = c.wake.notified() => continue,
                _ = c.kill.cancelled() => break,
            }
        }
        c.drained.notify_waiters();
        let n = spare.len();
        let res = tokio::select! {
            r = tokio::time::timeout(deadline, wr.write_all(&spare)) => r,
            _ = c.kill.cancelled() => break,
        };
        match res {
            Ok(Ok(())) => {
                stats.out_bytes_flushed.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(Err(_)) => {
                c.close(CloseReason::WriteError, false);
                break;
            }
            Err(_) => {
                stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "{}:{} - {}:{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                    c.addr.ip(),
                    c.addr.port(),
                    if c.kind == Kind::Router { "rid" } else { "cid" },
                    c.cid,
                    deadline
                );
                c.close(CloseReason::SlowConsumerWriteDeadline, false);
                break;
            }
        }
        // Keep the spare buffer for reuse, unless a burst left it huge.
        if spare.capacity() > SPARE_MAX {
            spare = BytesMut::new();
        } else {
            spare.clear();
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    c.kill.cancel();
}
