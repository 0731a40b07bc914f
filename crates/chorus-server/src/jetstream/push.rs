//! Push consumers: what the runtime adds around the state machine's push mode.
//!
//! - **Interest.** A push consumer delivers only while its deliver subject has a subscriber.
//!   As in nats-server (`registerNotification`, `updateDeliveryInterest`), only a
//!   subscription on exactly the deliver subject counts: a plain one without a deliver group,
//!   a queue subscription in that group with one. Each account sublist gets a change hook
//!   ([`Runtime::watch_account`]); the sink filters it down to watched deliver subjects and
//!   queues a [`Work::Interest`](super::internal::Work) for the runtime, which re-checks the
//!   consumers on that subject ([`Runtime::deliver_interest_changed`]). No polling.
//! - **Flow control answers** arrive on `$JS.FC.>` (one subscription per account, like acks)
//!   and go to the consumer named in the subject.
//! - **Paced deliveries.** With `rate_limit_bps` or `replay_policy: original` a delivery
//!   carries a `not_before`; it waits here ([`PushState`]) and leaves from the runtime's
//!   timer pass, in order, together with whatever the same consumer produced after it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;

use super::internal::InternalMsg;
use super::{AccountJs, Reply, Runtime};
use crate::account::Account;
use chorus_jetstream::consumer::{ConsumerConfig, Event};

/// Deliveries (and what followed them) waiting for their time.
#[derive(Default)]
pub(crate) struct PushState {
    held: BinaryHeap<Reverse<Held>>,
    order: u64,
    /// Per consumer (account, stream, name): until when its output is held, so a heartbeat
    /// produced later never overtakes a paced delivery (its sequences would look like a gap).
    until: rustc_hash::FxHashMap<(String, String, String), i64>,
}

struct Held {
    at: i64,
    order: u64,
    reply: Reply,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

impl PushState {
    /// Keeps `reply` of consumer `key` until `at` (unix nanos).
    pub(super) fn hold(&mut self, key: (String, String, String), at: i64, reply: Reply) {
        self.order += 1;
        self.held.push(Reverse(Held { at, order: self.order, reply }));
        let u = self.until.entry(key).or_insert(at);
        *u = (*u).max(at);
    }

    /// Whether any consumer's output is held (the common case, no pacing, skips the lookup).
    pub(super) fn holds_any(&self) -> bool {
        !self.until.is_empty()
    }

    /// Until when the output of consumer `key` waits (0: it does not).
    pub(super) fn held_until(&self, key: &(String, String, String)) -> i64 {
        self.until.get(key).copied().unwrap_or(0)
    }

    /// When the earliest held message is due.
    pub(super) fn next_due(&self) -> Option<i64> {
        self.held.peek().map(|h| h.0.at)
    }

    /// Everything due at `now`, in order.
    fn take_due(&mut self, now: i64) -> Vec<Reply> {
        let mut out = Vec::new();
        while self.held.peek().is_some_and(|h| h.0.at <= now) {
            out.push(self.held.pop().expect("peeked").0.reply);
        }
        self.until.retain(|_, t| *t > now);
        out
    }
}

/// Whether a push consumer with `cfg` has a listener in `account`: a subscription on exactly
/// its deliver subject, in its deliver group when it has one.
pub(super) fn deliver_interest(account: &Account, cfg: &ConsumerConfig) -> bool {
    let subject = cfg.deliver_subject.as_bytes();
    let r = account.sublist.match_subject(subject);
    if cfg.deliver_group.is_empty() {
        r.psubs.iter().any(|s| s.0.subject.as_ref() == subject)
    } else {
        r.queue_groups().any(|(q, subs)| {
            q == cfg.deliver_group.as_bytes()
                && subs.iter().any(|s| s.0.subject.as_ref() == subject)
        })
    }
}

impl Runtime {
    /// Installs the account sublist's change hook that feeds deliver-subject interest.
    pub(super) fn watch_account(&self, account: &Arc<Account>) {
        let sink = self.sink.clone();
        let weak = Arc::downgrade(account);
        // A second runtime on the same account (a restart in one process cannot happen: the
        // accounts are rebuilt) would find the hook taken; the first one stays in charge.
        account.sublist.set_change_hook(Box::new(move |s| sink.interest_changed(&weak, s)));
    }

    /// A subscription on `subject`, the deliver subject of some push consumer, came or went.
    pub(super) fn deliver_interest_changed(&mut self, account: &Arc<Account>, subject: &Bytes) {
        let Some(mut acc) = self.accounts.remove(&account.name) else { return };
        let mut changed = Vec::new();
        for (sn, m) in &acc.consumers {
            for (cn, c) in m {
                let cfg = c.config();
                if !cfg.is_push() || cfg.deliver_subject.as_bytes() != subject.as_ref() {
                    continue;
                }
                let now_active = deliver_interest(&acc.account, cfg);
                if now_active != c.is_active() {
                    changed.push((sn.clone(), cn.clone(), now_active));
                }
            }
        }
        for (sn, cn, active) in changed {
            self.consumer_event(&mut acc, &sn, &cn, |c, v, i, now| {
                c.handle(now, Event::Interest(active), v, i)
            });
        }
        self.accounts.insert(account.name.clone(), acc);
    }

    /// An answer on `$JS.FC.<stream>.<consumer>.<token>` (or the domain/account-hash form).
    pub(super) fn handle_flow_control(&mut self, m: InternalMsg) {
        let subject = String::from_utf8_lossy(&m.subject).into_owned();
        let t: Vec<&str> = subject.split('.').collect();
        let (stream, consumer) = match t.len() {
            5 => (t[2], t[3]),
            7 => (t[4], t[5]),
            _ => return,
        };
        let (stream, consumer) = (stream.to_string(), consumer.to_string());
        let header = m.headers.clone().unwrap_or_default();
        let Some(mut acc) = self.accounts.remove(&m.account.name) else { return };
        self.consumer_event(&mut acc, &stream, &consumer, |c, v, i, now| {
            c.handle(now, Event::FlowControlReply { subject: &subject, header: &header }, v, i)
        });
        self.accounts.insert(acc.account.name.clone(), acc);
    }

    /// Moves held deliveries that are due into the batch's replies.
    pub(super) fn release_held(&mut self, now: i64) {
        let due = self.push.take_due(now);
        self.out.extend(due);
    }

    /// Starts watching a push consumer's deliver subject and tells it whether someone
    /// listens already (it then starts at the next timer pass, after the create response).
    pub(super) fn push_started(&mut self, acc: &mut AccountJs, stream: &str, name: &str, now: i64) {
        let Some(c) = acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name)) else { return };
        if !c.config().is_push() {
            return;
        }
        self.sink.watch_deliver(&acc.account.name, &c.config().deliver_subject, true);
        let active = deliver_interest(&acc.account, c.config());
        c.set_initial_interest(now, active);
    }

    /// Stops watching the deliver subject of a push consumer that goes away.
    pub(super) fn push_stopped(&self, account: &str, cfg: &ConsumerConfig) {
        if cfg.is_push() {
            self.sink.watch_deliver(account, &cfg.deliver_subject, false);
        }
    }
}
