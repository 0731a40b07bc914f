//! The two hooks between the client runtime and the JetStream runtime:
//!
//! - [`InternalSink`]: the target of an internal subscription (a [`Sink`]). The routing engine
//!   (`deliver`) meets it on any publisher's task; it copies the message into owned [`Bytes`]
//!   and queues it for the runtime thread without waiting. The queue is bounded by message count and bytes; what
//!   does not fit is refused the way nats-server refuses it (below).
//! - The server's own publishes (PubAcks, API responses, deliveries) leave through
//!   `internal::Outbox`, the routing engine with the server as publisher.
//!
//! # A full queue
//!
//! The publisher is never blocked. A message for a stream that does not fit gets, when it has
//! a reply subject, nats-server's answer to an ingest queue over its limit: a
//! `NATS/1.0 429 Too Many Requests` header and an error PubAck `10167 too many requests`
//! (`stream.go`, `queueInbound`). An API request that does not fit is dropped, as nats-server
//! drops requests past its API queue limit; the requester times out. Both are counted
//! ([`super::JetStreamStats::refused`]) and logged at most once a second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_jetstream::ErrorId;
use chorus_jetstream::stream::publish::PubAckResponse;

use crate::account::Account;
use crate::internal::Outbox;
use crate::server::ServerInner;
use crate::sub::{Msg, Sink};

/// What an internal subscription's sid says about its target. The sid is the only per-
/// subscription data `Client::deliver` hands over, so it carries the routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `$JS.API.>` of an account.
    Api,
    /// `$JS.<domain>.API.>`: the same API under the server's JetStream domain.
    DomainApi,
    /// The subjects of the stream with this runtime id.
    Stream(u64),
    /// `$JS.API.DIRECT.GET.<stream>` and `$JS.API.DIRECT.GET.<stream>.>`.
    Direct(u64),
    /// `$JS.API.CONSUMER.MSG.NEXT.>`: pull requests of the account's consumers.
    Next,
    /// `$JS.ACK.>`: acks of the account's consumers.
    Ack,
    /// `$JS.FC.>`: answers to push consumers' flow control requests.
    FlowControl,
    /// `$JS.API.CONSUMER.RESET.>`: resets of existing consumers (each consumer's own
    /// subscription in nats-server). The API subscription takes them too and stays silent, so
    /// a reset of an unknown consumer times out as with nats-server.
    Reset,
}

/// Sids of the `$JS.API.>` and `$JS.<domain>.API.>` subscriptions.
const API_SID: &[u8] = b"api";
const DOMAIN_API_SID: &[u8] = b"apid";

impl Target {
    pub(crate) fn sid(self) -> Bytes {
        match self {
            Target::Api => Bytes::from_static(API_SID),
            Target::DomainApi => Bytes::from_static(DOMAIN_API_SID),
            Target::Stream(id) => Bytes::from(format!("s{id}")),
            Target::Direct(id) => Bytes::from(format!("d{id}")),
            Target::Next => Bytes::from_static(b"next"),
            Target::Ack => Bytes::from_static(b"ack"),
            Target::FlowControl => Bytes::from_static(b"fc"),
            Target::Reset => Bytes::from_static(b"reset"),
        }
    }

    fn from_sid(sid: &[u8]) -> Option<Target> {
        let num = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<u64>().ok();
        match sid {
            API_SID => Some(Target::Api),
            DOMAIN_API_SID => Some(Target::DomainApi),
            b"next" => Some(Target::Next),
            b"ack" => Some(Target::Ack),
            b"fc" => Some(Target::FlowControl),
            b"reset" => Some(Target::Reset),
            [b's', rest @ ..] => num(rest).map(Target::Stream),
            [b'd', rest @ ..] => num(rest).map(Target::Direct),
            _ => None,
        }
    }
}

/// A message on its way to the runtime thread.
#[derive(Debug, Clone)]
pub(crate) struct InternalMsg {
    pub account: Arc<Account>,
    pub target: Target,
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
    /// API requests while someone listens to `$JS.EVENT.ADVISORY.API`: the requester as
    /// nats-server's `ClientInfo` JSON, for the audit advisory.
    pub requester: Option<String>,
    /// It came from another server of the cluster (that server's own JetStream hears it
    /// too): only the server a client is connected to answers for a cluster that cannot.
    pub routed: bool,
}

impl InternalMsg {
    fn size(&self) -> usize {
        self.subject.len()
            + self.reply.as_ref().map_or(0, |r| r.len())
            + self.headers.as_ref().map_or(0, |h| h.len())
            + self.payload.len()
    }
}

/// Whether a subscription sid is a `$JS.API.>` one (the requests the audit advisory covers).
/// (A byte compare: this runs for every message an internal subscription takes.)
pub(crate) fn is_api_sid(sid: &[u8]) -> bool {
    sid == API_SID || sid == DOMAIN_API_SID
}

/// Where nats-server publishes the JetStream API audit advisory.
pub(crate) const API_AUDIT_SUBJECT: &str = "$JS.EVENT.ADVISORY.API";

/// Work for the runtime thread.
pub(crate) enum Work {
    Msg(InternalMsg),
    /// Wakes the thread so it sees the shutdown flag.
    Wake,
    /// Runs on the runtime thread after the current batch (monitoring reads its state).
    Call(Call),
    /// A subscription on a push consumer's deliver subject came or went (account, subject).
    Interest(Arc<Account>, Bytes),
}

/// Work run on the runtime thread with access to all of its state.
pub(crate) type Call = Box<dyn FnOnce(&mut super::Runtime) + Send>;

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Msg(m) => f.debug_tuple("Msg").field(m).finish(),
            Work::Wake => f.write_str("Wake"),
            Work::Call(_) => f.write_str("Call"),
            Work::Interest(a, s) => f.debug_tuple("Interest").field(&a.name).field(s).finish(),
        }
    }
}

/// Queue bounds, from `jetstream { max_buffered_msgs, max_buffered_size, request_queue_limit }`
/// with nats-server's defaults: messages and bytes bound what publishers put in for streams
/// (nats-server bounds each stream's ingest queue; we bound the sum), requests bound the API
/// and direct-get requests waiting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub msgs: usize,
    pub bytes: usize,
    pub api_requests: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        // stream.go streamDefaultMaxQueueMsgs/Bytes, jetstream_api.go JSDefaultRequestQueueLimit.
        QueueLimits { msgs: 100_000, bytes: 128 * 1024 * 1024, api_requests: 10_000 }
    }
}

#[derive(Debug)]
struct SinkShared {
    tx: Sender<Work>,
    limits: QueueLimits,
    msgs: AtomicUsize,
    bytes: AtomicUsize,
    api: AtomicUsize,
    stats: Arc<super::JetStreamStats>,
    last_warn: Mutex<Option<Instant>>,
    srv: std::sync::Weak<ServerInner>,
    /// Stream names by runtime id, for the 429 answer (the sid carries only the id).
    names: Mutex<rustc_hash::FxHashMap<u64, String>>,
    /// Consumers served, as `<account> <stream>.<consumer>`: a pull request for any other
    /// is refused so its requester sees no responders, as with nats-server (where each
    /// consumer subscribes on its own).
    consumers: Mutex<rustc_hash::FxHashSet<String>>,
    /// Deliver subjects of push consumers by (account, subject), counted: a subscription
    /// change on one of them wakes the runtime ([`InternalSink::interest_changed`]).
    watched: Mutex<rustc_hash::FxHashMap<(String, Bytes), usize>>,
    /// `watched` is non-empty: the common case (no push consumers) skips the lock.
    any_watched: std::sync::atomic::AtomicBool,
}

/// The JetStream runtime's end of internal subscriptions. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct InternalSink {
    shared: Arc<SinkShared>,
}

/// What the runtime thread tells the sink when it takes a message off the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dequeued {
    size: usize,
    api: bool,
}

impl InternalSink {
    pub(crate) fn new(
        tx: Sender<Work>,
        limits: QueueLimits,
        srv: &Arc<ServerInner>,
        stats: Arc<super::JetStreamStats>,
    ) -> Self {
        InternalSink {
            shared: Arc::new(SinkShared {
                tx,
                limits,
                msgs: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                api: AtomicUsize::new(0),
                stats,
                last_warn: Mutex::new(None),
                srv: Arc::downgrade(srv),
                names: Mutex::new(Default::default()),
                consumers: Mutex::new(Default::default()),
                watched: Mutex::new(Default::default()),
                any_watched: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Records (or with `None`, forgets) the name of stream `id`.
    pub(crate) fn set_stream_name(&self, id: u64, name: Option<&str>) {
        let mut names = self.shared.names.lock().unwrap();
        match name {
            Some(n) => names.insert(id, n.to_string()),
            None => names.remove(&id),
        };
    }

    /// Records that a consumer is (or with `false`, no longer is) served.
    pub(crate) fn set_consumer(&self, account: &str, stream: &str, consumer: &str, on: bool) {
        let key = format!("{account} {stream}.{consumer}");
        let mut set = self.shared.consumers.lock().unwrap();
        if on {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    /// Starts (or with `false` stops) watching a push consumer's deliver subject.
    pub(crate) fn watch_deliver(&self, account: &str, subject: &str, on: bool) {
        let key = (account.to_string(), Bytes::copy_from_slice(subject.as_bytes()));
        let mut w = self.shared.watched.lock().unwrap();
        if on {
            *w.entry(key).or_insert(0) += 1;
        } else if let Some(n) = w.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                w.remove(&key);
            }
        }
        self.shared.any_watched.store(!w.is_empty(), Ordering::Release);
    }

    /// The account sublist's change hook: a subscription on `subject` came or went. Only
    /// deliver subjects matter, and only a subscription on exactly that subject makes a push
    /// consumer active (nats-server's notification rule), so a hash lookup decides.
    pub(crate) fn interest_changed(&self, account: &std::sync::Weak<Account>, subject: &[u8]) {
        if !self.shared.any_watched.load(Ordering::Acquire) {
            return;
        }
        let Some(account) = account.upgrade() else { return };
        let key = (account.name.clone(), Bytes::copy_from_slice(subject));
        if !self.shared.watched.lock().unwrap().contains_key(&key) {
            return;
        }
        let _ = self.shared.tx.send(Work::Interest(account, key.1));
    }

    /// Whether the consumer a pull request (or reset) names exists.
    fn serves(&self, account: &Account, subject: &[u8], prefix: &[u8]) -> bool {
        let Some(rest) = subject.strip_prefix(prefix) else {
            return false;
        };
        let key = format!("{} {}", account.name, String::from_utf8_lossy(rest));
        self.shared.consumers.lock().unwrap().contains(&key)
    }

    /// Queues `f` to run on the runtime thread; false if the runtime is gone.
    pub(crate) fn call(&self, f: Call) -> bool {
        self.shared.tx.send(Work::Call(f)).is_ok()
    }

    pub(crate) fn wake(&self) {
        let _ = self.shared.tx.send(Work::Wake);
    }

    /// Releases the queue space of a message the runtime took.
    pub(crate) fn dequeued(&self, d: Dequeued) {
        if d.api {
            self.shared.api.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.shared.msgs.fetch_sub(1, Ordering::Relaxed);
            self.shared.bytes.fetch_sub(d.size, Ordering::Relaxed);
        }
    }

    pub(crate) fn accounting(msg: &InternalMsg) -> Dequeued {
        let api = matches!(
            msg.target,
            Target::Api | Target::DomainApi | Target::Direct(_) | Target::Next | Target::Reset
        );
        Dequeued { size: msg.size(), api }
    }

    /// A message for one of the runtime's subscriptions (see [`Sink`]): queued for the
    /// runtime thread, or refused when the queue is full.
    fn take(
        &self,
        account: &Arc<Account>,
        sid: &[u8],
        m: &Msg<'_>,
        requester: Option<String>,
        routed: bool,
    ) -> bool {
        let (subject, reply, headers, payload) = (m.subject, m.reply, m.hdr, m.payload);
        let Some(target) = Target::from_sid(sid) else { return false };
        if matches!(target, Target::Api | Target::DomainApi) && !routed_through_api(target, subject)
        {
            // Direct gets and pull requests belong to the stream's (or consumer's) own
            // subscription; without one the requester must see no responders, as nats-server
            // keeps them out of its `$JS.API.>` import.
            return false;
        }
        if target == Target::Next && !self.serves(account, subject, b"$JS.API.CONSUMER.MSG.NEXT.") {
            return false;
        }
        if target == Target::Reset && !self.serves(account, subject, b"$JS.API.CONSUMER.RESET.") {
            return false;
        }
        // Subject, headers and payload share one buffer (sliced): fewer allocations per
        // stored message. The reply subject gets its own, since a PubAck keeps it until the
        // sync and must not keep the payload alive with it.
        let h = headers.unwrap_or_default();
        let mut buf = Vec::with_capacity(subject.len() + h.len() + payload.len());
        for part in [subject, h, payload] {
            buf.extend_from_slice(part);
        }
        let buf = Bytes::from(buf);
        let (a, b) = (subject.len(), subject.len() + h.len());
        let msg = InternalMsg {
            account: account.clone(),
            target,
            subject: buf.slice(..a),
            reply: reply.map(Bytes::copy_from_slice),
            headers: headers.map(|_| buf.slice(a..b)),
            payload: buf.slice(b..),
            requester,
            routed,
        };
        let d = Self::accounting(&msg);
        let s = &self.shared;
        // Stream messages count against the ingest limits, requests against the API limit.
        let over = if d.api {
            s.api.load(Ordering::Relaxed) >= s.limits.api_requests
        } else {
            s.msgs.load(Ordering::Relaxed) >= s.limits.msgs
                || s.bytes.load(Ordering::Relaxed) + d.size > s.limits.bytes
        };
        if over {
            self.refuse(msg);
            return true;
        }
        if d.api {
            s.api.fetch_add(1, Ordering::Relaxed);
        } else {
            s.msgs.fetch_add(1, Ordering::Relaxed);
            s.bytes.fetch_add(d.size, Ordering::Relaxed);
        }
        if s.tx.send(Work::Msg(msg)).is_err() {
            // The runtime is gone (shutdown): nothing will answer.
            self.dequeued(d);
            return false;
        }
        true
    }

    fn refuse(&self, msg: InternalMsg) {
        let s = &self.shared;
        let n = s.stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut last = s.last_warn.lock().unwrap();
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    "JetStream queue full ({} msgs, {} bytes queued): refusing message on {:?} \
                     ({n} refused so far)",
                    s.msgs.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                    String::from_utf8_lossy(&msg.subject)
                );
            }
        }
        let (Target::Stream(id), Some(reply), Some(srv)) =
            (msg.target, &msg.reply, s.srv.upgrade())
        else {
            return;
        };
        let name = s.names.lock().unwrap().get(&id).cloned().unwrap_or_default();
        let body = PubAckResponse::error(&name, ErrorId::StreamTooManyRequests.error()).to_wire();
        let mut out = Outbox::new(&srv);
        out.publish(
            &msg.account,
            reply,
            None,
            Some(b"NATS/1.0 429 Too Many Requests\r\n\r\n"),
            &body,
        );
        out.flush();
    }
}

impl Sink for InternalSink {
    fn deliver(
        &self,
        account: &Arc<Account>,
        sid: &[u8],
        msg: &Msg<'_>,
        requester: Option<String>,
        routed: bool,
    ) -> bool {
        self.take(account, sid, msg, requester, routed)
    }

    /// The API audit advisory names the requester; it is built only when someone listens.
    fn wants_requester(&self, account: &Account, sid: &[u8]) -> bool {
        is_api_sid(sid) && account.sublist.has_interest(API_AUDIT_SUBJECT.as_bytes())
    }
}

/// Whether the API subscription takes this request (see [`InternalSink::deliver`]). Under the
/// domain prefix direct gets are answered by the API subscription (streams subscribe only the
/// plain direct-get subjects); pull requests never are.
fn routed_through_api(target: Target, subject: &[u8]) -> bool {
    let Some(i) = subject.windows(5).position(|w| w == b".API.") else { return true };
    let rest = &subject[i + 5..];
    if rest.starts_with(b"CONSUMER.MSG.NEXT") {
        return false;
    }
    !(target == Target::Api && rest.starts_with(b"DIRECT.GET"))
}
