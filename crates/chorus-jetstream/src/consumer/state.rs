//! The state machine of one consumer: `state + event(now) -> actions`.
//!
//! [`Consumer`] follows nats-server's `consumer.go` leader logic: the next stream sequence to
//! look at, the delivered and ack floors, the pending acks (stream seq -> consumer seq and
//! delivery time), redelivery counts and the redelivery queue, the pull request queue, push
//! interest, flow control, idle heartbeats, rate limiting, pausing and the inactivity
//! threshold. Alongside it keeps the consumer store's own view ([`ConsumerState`]), which is
//! what info reports for `delivered`/`ack_floor` and what [`Consumer::snapshot`] persists.
//!
//! The runtime feeds [`Event`]s with the current time and read access to the stream, sends
//! the returned [`Action`]s, and calls again with [`Event::Tick`] at
//! [`Consumer::next_deadline`]. Nothing here reads a clock or draws a random number, so two
//! replicas fed the same events decide the same.
//!
//! Deliberate differences from nats-server, all about timing granularity: deadlines are
//! exact (no 1 ms timer slack, no random jitter on inactivity thresholds); a request or ack
//! deadline at exactly `now` counts as reached; a delivery that must wait (rate limit,
//! `replay_policy: original`) is decided now and carries `not_before` instead of blocking;
//! the loop then stops until that time ([`Consumer::next_deadline`]), so at most one
//! delivery waits ahead of its time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::ack::{
    AckFormat, AckKind, AckReplyInfo, FLOW_CONTROL_PREFIX, ack_reply, parse_ack_body,
    parse_ack_subject,
};
use super::action::{
    Action, Advisory, AdvisoryKind, CONSUMER_STALLED, Delivery, LAST_CONSUMER, LAST_STREAM,
    MSG_SIZE, PIN_ID, StatusMsg,
};
use super::api::{ConsumerInfo, NextRequest, PriorityGroup, PriorityGroupState, SequenceInfo};
use super::config::{
    AckPolicy, ConsumerConfig, DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD, DeliverPolicy, PriorityPolicy,
    ReplayPolicy,
};
use super::metadata;
use super::persist::{ConsumerSnapshot, ConsumerState, Pending, SequencePair};
use super::view::{ConsumerFilter, ConsumerStream, DeliveryInterest, StreamMsg};
use super::waiting::{WaitQueue, WaitingRequest};
use crate::go::{Timestamp, duration_string};
use crate::stream::config::{RetentionPolicy, StorageType, StreamConfig};
use crate::stream::headers;

const MILLI: i64 = 1_000_000;
const SECOND: i64 = 1_000_000_000;
/// nats-server's `JsFlowControlMaxPending`: 32 MiB of unanswered flow-controlled bytes.
const FLOW_CONTROL_MAX_PENDING: i64 = 32 * 1024 * 1024;
/// Extra time pull consumers get on top of their inactivity threshold.
const PULL_INACTIVE_SLACK: i64 = 100 * MILLI;
/// The 1 ms nats-server adds to ack timers, which also shows in the inactivity check.
const ACK_WAIT_DELAY: i64 = MILLI;
/// Reason given when a pending message disappears from the stream.
pub const TERM_UNACKED_REMOVED: &str = "Unacknowledged message was deleted";

/// What a consumer knows about where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerContext {
    /// The stream's name.
    pub stream: String,
    pub retention: RetentionPolicy,
    /// The stream's subjects (to tell whether a filter really filters).
    pub stream_subjects: Vec<String>,
    /// `max_msgs_per_subject` (1 makes `last_per_subject` a plain start).
    pub max_msgs_per_subject: i64,
    /// Rate limit burst in bytes: the stream's `max_msg_size`, else the max payload.
    pub rate_burst: i64,
    /// The JetStream domain (advisories, v2 ack subjects).
    pub domain: String,
    /// The account name (pinned advisories).
    pub account: String,
    pub ack_format: AckFormat,
    /// Whether the consumer's state lives in memory (stream storage memory or
    /// `mem_storage`); only changes which `delivered` info reports before the first delivery.
    pub memory_state: bool,
    /// Most deliveries one call makes before returning (the rest follow at `now`).
    pub max_deliveries_per_call: usize,
}

impl ConsumerContext {
    /// The context for a consumer of `stream` on a server with `max_payload`.
    pub fn for_stream(stream: &StreamConfig, max_payload: i64) -> ConsumerContext {
        ConsumerContext {
            stream: stream.name.clone(),
            retention: stream.retention,
            stream_subjects: stream.subjects.clone(),
            max_msgs_per_subject: stream.max_msgs_per_subject,
            rate_burst: if stream.max_msg_size > 0 {
                stream.max_msg_size as i64
            } else {
                max_payload
            },
            domain: String::new(),
            account: String::new(),
            ack_format: AckFormat::V1,
            memory_state: stream.storage == StorageType::Memory,
            max_deliveries_per_call: 1024,
        }
    }
}

/// Something that happened to the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A pull request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    PullRequest { reply: &'a str, body: &'a [u8] },
    /// A message on the consumer's ack subject (the payload after any headers).
    Ack { subject: &'a str, reply: &'a str, body: &'a [u8] },
    /// An answer to a flow control request, with its header block.
    FlowControlReply { subject: &'a str, header: &'a [u8] },
    /// Push consumers: someone does (or no longer does) listen on the deliver subject.
    Interest(bool),
    /// The stream stored a message.
    StreamAppended { seq: u64, subject: &'a str },
    /// The stream removed a message (limits, age, delete), not because of our ack.
    StreamRemoved { seq: u64, subject: &'a str },
    /// The stream was purged up to (not including) `first_seq`; 0 means all. `wider` when
    /// the purge was filtered narrower than this consumer (pending entries are then checked
    /// one by one).
    StreamPurged { first_seq: u64, last_seq: u64, wider: bool },
    /// A config update that [`super::check::check_create`] accepted.
    ConfigUpdate(Box<ConsumerConfig>),
    /// `CONSUMER.PAUSE`: pause until the given time, or unpause with `None`.
    Pause(Option<Timestamp>),
    /// `CONSUMER.UNPIN` of a pinned-client group.
    Unpin { group: &'a str },
    /// Time passed (called at [`Consumer::next_deadline`]).
    Tick,
    /// The consumer is being deleted.
    Delete,
    /// The consumer stops running here (its stream's leader moved to another server):
    /// waiting pull requests get `409 Leadership Change`, as nats-server's do.
    LeadershipChange,
}

#[derive(Debug, Clone)]
struct SkipList {
    resume: u64,
    seqs: VecDeque<u64>,
}

/// A token bucket like Go's `rate.Limiter`: `rate` bytes per second, `burst` bytes deep.
#[derive(Debug, Clone)]
struct Limiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: i64,
}

impl Limiter {
    fn new(bits_per_sec: u64, burst: i64) -> Limiter {
        let burst = burst.max(1) as f64;
        Limiter { rate: (bits_per_sec / 8) as f64, burst, tokens: burst, last: 0 }
    }

    /// Reserves `n` bytes at `at`; returns when they may go.
    fn reserve(&mut self, at: i64, n: i64) -> i64 {
        if self.rate <= 0.0 {
            return at;
        }
        if at > self.last {
            let elapsed = (at - self.last) as f64 / SECOND as f64;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = at;
        }
        // Go refuses a reservation larger than the burst outright; we let it through at the
        // pace of a full burst instead of stalling forever.
        self.tokens -= (n as f64).min(self.burst);
        if self.tokens >= 0.0 {
            return at;
        }
        at + (-self.tokens / self.rate * SECOND as f64).ceil() as i64
    }
}

/// Delivered, unacknowledged messages (stream seq -> consumer seq and delivery time), with
/// an index by delivery time so the earliest ack deadline is found without a scan (the
/// runtime asks for [`Consumer::next_deadline`] on every pass). Every change goes through
/// these methods, which keep the two in step.
#[derive(Debug, Clone, Default)]
struct PendingSet {
    map: BTreeMap<u64, Pending>,
    by_time: BTreeSet<(i64, u64)>,
}

impl PendingSet {
    fn from_map(map: BTreeMap<u64, Pending>) -> PendingSet {
        let by_time = map.iter().map(|(s, p)| (p.timestamp, *s)).collect();
        PendingSet { map, by_time }
    }
    fn map(&self) -> &BTreeMap<u64, Pending> {
        &self.map
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    fn get(&self, seq: &u64) -> Option<&Pending> {
        self.map.get(seq)
    }
    fn contains_key(&self, seq: &u64) -> bool {
        self.map.contains_key(seq)
    }
    fn iter(&self) -> std::collections::btree_map::Iter<'_, u64, Pending> {
        self.map.iter()
    }
    fn keys(&self) -> std::collections::btree_map::Keys<'_, u64, Pending> {
        self.map.keys()
    }
    fn range(
        &self,
        r: impl std::ops::RangeBounds<u64>,
    ) -> std::collections::btree_map::Range<'_, u64, Pending> {
        self.map.range(r)
    }
    fn insert(&mut self, seq: u64, p: Pending) {
        if let Some(old) = self.map.insert(seq, p) {
            self.by_time.remove(&(old.timestamp, seq));
        }
        self.by_time.insert((p.timestamp, seq));
    }
    fn remove(&mut self, seq: &u64) -> Option<Pending> {
        let p = self.map.remove(seq)?;
        self.by_time.remove(&(p.timestamp, *seq));
        Some(p)
    }
    /// Sets the delivery time of `seq`; returns its consumer sequence if it is pending.
    fn set_timestamp(&mut self, seq: u64, ts: i64) -> Option<u64> {
        let p = self.map.get_mut(&seq)?;
        self.by_time.remove(&(p.timestamp, seq));
        p.timestamp = ts;
        self.by_time.insert((ts, seq));
        Some(p.sequence)
    }
    /// Pending entries in delivery-time order.
    fn by_time(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.by_time.iter().copied()
    }
}

impl std::ops::Index<&u64> for PendingSet {
    type Output = Pending;
    fn index(&self, seq: &u64) -> &Pending {
        &self.map[seq]
    }
}

/// Why the next message could not be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextErr {
    Eof,
    MaxAckPending,
    Missing,
}

/// One consumer.
#[derive(Debug, Clone)]
pub struct Consumer {
    name: String,
    cfg: ConsumerConfig,
    created: Timestamp,
    ctx: ConsumerContext,
    filter: ConsumerFilter,

    /// Next stream sequence to look at.
    sseq: u64,
    /// Next consumer (delivery) sequence.
    dseq: u64,
    adflr: u64,
    asflr: u64,
    pending: PendingSet,
    rdc: BTreeMap<u64, u64>,
    rdq: VecDeque<u64>,
    rdqi: BTreeSet<u64>,
    npc: i64,
    npf: u64,
    lss: Option<SkipList>,
    waiting: WaitQueue,
    lwqic: i64,
    store: ConsumerState,

    active: bool,
    pbytes: i64,
    maxpb: i64,
    pblimit: i64,
    fcid: Option<String>,
    fcsz: i64,
    fc_count: u64,
    hb_next: i64,
    dthresh: i64,
    dtmr: i64,
    unpause_at: i64,
    ldt: i64,
    lat: i64,
    replay: bool,
    replay_last_seq: u64,
    lts: i64,
    send_clock: i64,
    limiter: Option<Limiter>,
    /// A paced delivery (rate limit, original replay) is due then: the loop stops there so
    /// at most one delivery waits ahead of time.
    resume_at: i64,
    pin_id: String,
    pinned_ts: i64,
    pin_deadline: i64,
    pin_count: u64,
    more: bool,
    closed: bool,
    out: Vec<Action>,
}

impl Consumer {
    /// A new consumer with a config [`super::check::check_create`] produced, positioned per
    /// its deliver policy, as leader.
    pub fn create(
        name: &str,
        config: ConsumerConfig,
        created: Timestamp,
        ctx: ConsumerContext,
        now: i64,
        stream: &dyn ConsumerStream,
    ) -> Consumer {
        let mut c = Consumer::blank(name, config, created, ctx);
        c.select_starting_seq(stream);
        c.become_leader(now, stream);
        c
    }

    /// A consumer brought back from its snapshot (restart), as leader. Pending messages
    /// whose ack wait passed while it was down are queued for redelivery.
    pub fn restore(
        snapshot: ConsumerSnapshot,
        ctx: ConsumerContext,
        now: i64,
        stream: &dyn ConsumerStream,
    ) -> (Consumer, Vec<Action>) {
        let mut c = Consumer::blank(&snapshot.name, snapshot.config, snapshot.created, ctx);
        c.apply_state(&snapshot.state);
        c.check_redelivered(stream);
        c.become_leader(now, stream);
        c.check_pending(now, stream);
        let out = std::mem::take(&mut c.out);
        (c, out)
    }

    fn blank(
        name: &str,
        cfg: ConsumerConfig,
        created: Timestamp,
        ctx: ConsumerContext,
    ) -> Consumer {
        let filter = ConsumerFilter::new(cfg.filters());
        let limiter = (cfg.rate_limit > 0).then(|| Limiter::new(cfg.rate_limit, ctx.rate_burst));
        let waiting = WaitQueue::new(if cfg.is_pull() { cfg.max_waiting } else { 0 });
        Consumer {
            name: name.to_string(),
            cfg,
            created,
            ctx,
            filter,
            sseq: 0,
            dseq: 0,
            adflr: 0,
            asflr: 0,
            pending: PendingSet::default(),
            rdc: BTreeMap::new(),
            rdq: VecDeque::new(),
            rdqi: BTreeSet::new(),
            npc: 0,
            npf: 0,
            lss: None,
            waiting,
            lwqic: 0,
            store: ConsumerState::default(),
            active: false,
            pbytes: 0,
            maxpb: 0,
            pblimit: 0,
            fcid: None,
            fcsz: 0,
            fc_count: 0,
            hb_next: 0,
            dthresh: 0,
            dtmr: 0,
            unpause_at: 0,
            ldt: 0,
            lat: 0,
            replay: false,
            replay_last_seq: 0,
            lts: 0,
            send_clock: 0,
            limiter,
            resume_at: 0,
            pin_id: String::new(),
            pinned_ts: 0,
            pin_deadline: 0,
            pin_count: 0,
            more: false,
            closed: false,
            out: Vec::new(),
        }
    }

    /// Push consumers: whether the deliver subject had a subscriber when the consumer
    /// started (nats-server learns this before it answers the create request). Delivers
    /// nothing by itself, so the create response can go first: with a listener the next
    /// deadline is "now" and the following [`Event::Tick`] starts delivering. Later changes
    /// come as [`Event::Interest`].
    pub fn set_initial_interest(&mut self, now: i64, active: bool) {
        self.update_interest(now, active);
        if active && self.cfg.is_push() {
            self.more = true;
        }
    }

    // ---- accessors --------------------------------------------------------------------------

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }
    pub fn created(&self) -> Timestamp {
        self.created
    }
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// The store's view: what a snapshot persists.
    pub fn stored_state(&self) -> &ConsumerState {
        &self.store
    }
    /// Delivered but unacknowledged messages: stream seq -> (consumer seq, delivery time).
    pub fn pending(&self) -> &BTreeMap<u64, Pending> {
        self.pending.map()
    }
    /// Redelivery counts by stream sequence.
    pub fn redelivered(&self) -> &BTreeMap<u64, u64> {
        &self.rdc
    }
    /// Stream sequences queued for redelivery, in order.
    pub fn redelivery_queue(&self) -> impl Iterator<Item = u64> + '_ {
        self.rdq.iter().copied()
    }
    pub fn num_ack_pending(&self) -> usize {
        self.pending.len()
    }
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }
    /// The cached count of messages not yet delivered.
    pub fn num_pending(&self) -> u64 {
        self.npc.max(0) as u64
    }
    /// The leader's floors: (consumer, stream).
    pub fn ack_floor(&self) -> SequencePair {
        SequencePair { consumer: self.adflr, stream: self.asflr }
    }
    /// Last delivered (consumer, stream) as the leader sees it.
    pub fn delivered(&self) -> SequencePair {
        SequencePair { consumer: self.dseq.saturating_sub(1), stream: self.sseq.saturating_sub(1) }
    }
    /// Whether a push consumer has a listener.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The persisted form: config plus the store's state.
    pub fn snapshot(&self) -> ConsumerSnapshot {
        ConsumerSnapshot {
            stream: self.ctx.stream.clone(),
            name: self.name.clone(),
            created: self.created,
            config: self.cfg.clone(),
            state: self.store.clone(),
        }
    }

    /// When the runtime must call [`Event::Tick`] next (unix nanos), if ever. A time in the
    /// past means "now": a call stopped at [`ConsumerContext::max_deliveries_per_call`] with
    /// more to deliver.
    pub fn next_deadline(&self) -> Option<i64> {
        if self.closed {
            return None;
        }
        let mut next: Option<i64> = None;
        let mut at = |t: i64| {
            if t > 0 {
                next = Some(next.map_or(t, |n: i64| n.min(t)));
            }
        };
        if self.more {
            at(1);
        }
        if self.cfg.ack_wait > 0 {
            at(self.next_ack_deadline());
        }
        for wr in self.waiting.iter() {
            at(wr.expires);
            at(wr.hbt);
        }
        at(self.hb_next);
        at(self.resume_at);
        at(self.dtmr);
        at(self.unpause_at);
        at(self.pin_deadline);
        next
    }

    // ---- the entry point --------------------------------------------------------------------

    /// Applies `event` at `now` and runs the delivery loop; returns what to do.
    pub fn handle(
        &mut self,
        now: i64,
        event: Event<'_>,
        stream: &dyn ConsumerStream,
        interest: &dyn DeliveryInterest,
    ) -> Vec<Action> {
        if self.closed {
            return vec![];
        }
        match event {
            Event::PullRequest { reply, body } => {
                self.process_next_request(now, reply, body, interest)
            }
            Event::Ack { subject, reply, body } => {
                self.process_ack(now, subject, reply, body, interest)
            }
            Event::FlowControlReply { subject, header } => {
                self.process_flow_control(now, subject, header)
            }
            Event::Interest(active) => self.update_interest(now, active),
            Event::StreamAppended { seq, subject } => {
                if self.filter.matches(subject) && seq > self.npf {
                    self.npc += 1;
                }
            }
            Event::StreamRemoved { seq, subject } => self.stream_removed(now, seq, subject),
            Event::StreamPurged { first_seq, last_seq, wider } => {
                self.purge(first_seq, last_seq, wider, stream);
            }
            Event::ConfigUpdate(cfg) => self.update_config(now, *cfg, stream),
            Event::Pause(until) => self.pause(now, until),
            Event::Unpin { group } => {
                // nats-server advises even when nothing was pinned.
                self.unassign_pin();
                self.advise(
                    now,
                    AdvisoryKind::Unpinned {
                        account: self.ctx.account.clone(),
                        group: group.to_string(),
                        reason: "admin".into(),
                    },
                );
            }
            Event::Tick => self.tick(now, stream, interest),
            Event::Delete => {
                self.delete(now);
                return std::mem::take(&mut self.out);
            }
            Event::LeadershipChange => {
                for wr in self.waiting.drain() {
                    self.status(StatusMsg::new(&wr.reply, 409, "Leadership Change"));
                }
                return std::mem::take(&mut self.out);
            }
        }
        if !self.closed {
            self.run(now, stream, interest);
        }
        std::mem::take(&mut self.out)
    }

    /// `ConsumerInfo` at `now`. Like nats-server, gathering it expires pull requests (which
    /// can produce statuses, returned alongside).
    pub fn info(
        &mut self,
        now: i64,
        stream: &dyn ConsumerStream,
        interest: &dyn DeliveryInterest,
    ) -> (ConsumerInfo, Vec<Action>) {
        let np = self.check_num_pending(stream);
        let mut delivered = SequenceInfo {
            consumer: self.dseq.max(1) - 1,
            stream: self.sseq.max(1) - 1,
            last: None,
        };
        if !self.ctx.memory_state || self.store.has_state() {
            delivered.consumer = self.store.delivered.consumer;
            delivered.stream = self.store.delivered.stream;
        }
        if self.ldt > 0 {
            delivered.last = Some(Timestamp::from_unix_nanos(self.ldt));
        }
        let ack_floor = SequenceInfo {
            consumer: self.store.ack_floor.consumer,
            stream: self.store.ack_floor.stream,
            last: (self.lat > 0).then(|| Timestamp::from_unix_nanos(self.lat)),
        };
        if self.cfg.is_pull() {
            self.process_waiting(now, false, interest);
        }
        let paused = self.cfg.is_paused_at(now);
        let info = ConsumerInfo {
            stream: self.ctx.stream.clone(),
            name: self.name.clone(),
            created: self.created,
            config: Some(self.cfg.clone()),
            delivered,
            ack_floor,
            num_ack_pending: self.pending.len() as u64,
            // Redeliveries are off with max_deliver 1, so nats-server does not report them.
            num_redelivered: if self.cfg.max_deliver == 1 { 0 } else { self.rdc.len() as u64 },
            num_waiting: self.waiting.len() as u64,
            num_pending: np,
            cluster: None,
            push_bound: self.cfg.is_push() && self.active,
            paused,
            pause_remaining: if paused {
                self.cfg.pause_until.map_or(0, |t| t.unix_nanos() - now)
            } else {
                0
            },
            timestamp: Timestamp::from_unix_nanos(now),
            priority_groups: self
                .cfg
                .priority_groups
                .first()
                .map(|g| PriorityGroupState {
                    group: g.clone(),
                    pinned_client_id: self.pin_id.clone(),
                    pinned_ts: if self.pinned_ts > 0 {
                        Timestamp::from_unix_nanos(self.pinned_ts)
                    } else {
                        Timestamp::ZERO
                    },
                })
                .into_iter()
                .collect(),
        };
        (info, std::mem::take(&mut self.out))
    }

    /// `$JS.API.CONSUMER.RESET`: start over at stream sequence `seq` (0: just above the ack
    /// floor), forgetting pending acks and redeliveries (`resetStartingSeqLocked` on a single
    /// server). Returns the sequence it restarts at and what the restart delivers, or the
    /// reason it is not allowed (for `invalid reset: {err}`).
    pub fn reset(
        &mut self,
        now: i64,
        seq: u64,
        stream: &dyn ConsumerStream,
        interest: &dyn DeliveryInterest,
    ) -> Result<(u64, Vec<Action>), String> {
        if self.closed {
            return Err("consumer closed".into());
        }
        let seq = if seq == 0 {
            self.asflr + 1
        } else {
            match self.cfg.deliver_policy {
                DeliverPolicy::All => seq,
                DeliverPolicy::ByStartSequence if seq < self.cfg.opt_start_seq => {
                    return Err("below start seq".into());
                }
                DeliverPolicy::ByStartSequence => seq,
                DeliverPolicy::ByStartTime => {
                    let t = self.cfg.opt_start_time.map_or(0, |t| t.unix_nanos());
                    if seq < stream.seq_for_time(t) {
                        return Err("below start time".into());
                    }
                    seq
                }
                _ => return Err("not allowed".into()),
            }
        }
        .max(1);
        // `resetLocalStartingSeq`: a reset to just above the ack floor of an ack-all consumer
        // knows its pending count without a recount.
        let mut recount = self.sseq != seq || !self.pending.is_empty();
        if recount
            && seq == self.asflr + 1
            && matches!(self.cfg.ack_policy, AckPolicy::All | AckPolicy::FlowControl)
        {
            self.npc += self.pending.len() as i64;
            recount = false;
        }
        self.pending = PendingSet::default();
        self.rdc.clear();
        self.rdq.clear();
        self.rdqi.clear();
        self.sseq = seq;
        self.dseq = 1;
        self.adflr = 0;
        self.asflr = seq - 1;
        self.ldt = 0;
        self.lat = 0;
        self.store = ConsumerState::default();
        self.store.set_starting(seq - 1);
        if recount {
            self.recompute_num_pending(stream);
        }
        self.run(now, stream, interest);
        Ok((seq, std::mem::take(&mut self.out)))
    }

    /// `info` with the dynamic versioning metadata responses carry.
    pub fn info_for_response(
        &mut self,
        now: i64,
        stream: &dyn ConsumerStream,
        interest: &dyn DeliveryInterest,
        server_version: &str,
        api_level: u32,
    ) -> (ConsumerInfo, Vec<Action>) {
        let (mut info, out) = self.info(now, stream, interest);
        info.config = info.config.map(|c| metadata::with_dynamic(&c, server_version, api_level));
        (info, out)
    }

    // ---- start ------------------------------------------------------------------------------

    fn select_starting_seq(&mut self, stream: &dyn ConsumerStream) {
        let state = stream.summary();
        let cfg = &self.cfg;
        if cfg.opt_start_seq == 0 {
            match cfg.deliver_policy {
                DeliverPolicy::All => self.sseq = state.first_seq,
                DeliverPolicy::Last => {
                    if self.filter.is_all() {
                        self.sseq = state.last_seq;
                    } else {
                        for f in self.filter.subjects() {
                            self.sseq = self.sseq.max(stream.last_seq_matching(f));
                        }
                    }
                }
                DeliverPolicy::LastPerSubject => {
                    if self.ctx.max_msgs_per_subject == 1 {
                        self.sseq = state.first_seq;
                    } else {
                        let seqs: VecDeque<u64> = stream.last_seqs_per_subject(&self.filter).into();
                        self.sseq = seqs.front().copied().unwrap_or(state.last_seq);
                        self.lss = Some(SkipList { resume: state.last_seq, seqs });
                    }
                }
                DeliverPolicy::ByStartTime => {
                    let t = cfg.opt_start_time.map_or(0, |t| t.unix_nanos());
                    self.sseq = stream.seq_for_time(t);
                    if !self.filter.is_all() {
                        let mut nseq = state.last_seq;
                        for f in self.filter.subjects() {
                            let first = stream.first_seq_matching(f, state.first_seq);
                            if first >= self.sseq && first < nseq {
                                nseq = first;
                            }
                        }
                        if nseq > self.sseq && nseq < state.last_seq {
                            self.sseq = nseq;
                        }
                    }
                }
                DeliverPolicy::New | DeliverPolicy::ByStartSequence => {
                    self.sseq = state.last_seq + 1;
                }
            }
        } else {
            self.sseq = cfg.opt_start_seq;
        }
        if state.first_seq == 0 && cfg.opt_start_seq == 0 {
            self.sseq = 1;
        } else if self.sseq > state.last_seq && cfg.opt_start_seq == 0 {
            self.sseq = state.last_seq + 1;
        } else if self.sseq < state.first_seq {
            self.sseq = state.first_seq;
        }
        self.dseq = 1;
        self.adflr = 0;
        self.asflr = self.sseq - 1;
        self.store.set_starting(self.sseq - 1);
    }

    fn apply_state(&mut self, state: &ConsumerState) {
        self.store = state.clone();
        self.sseq = state.delivered.stream + 1;
        self.dseq = state.delivered.consumer + 1;
        self.adflr = state.ack_floor.consumer;
        self.asflr = state.ack_floor.stream;
        self.pending = PendingSet::from_map(state.pending.clone());
        self.rdc = state.redelivered.clone();
    }

    /// Drops redelivery state for messages at or below the ack floor or gone from the
    /// stream (`checkRedelivered`).
    fn check_redelivered(&mut self, stream: &dyn ConsumerStream) {
        let first = stream.summary().first_seq;
        let seqs: Vec<u64> = self.rdc.keys().copied().collect();
        let mut changed = false;
        for seq in seqs {
            if seq <= self.asflr || seq < first {
                self.remove_from_rdq(seq);
            }
            if seq < first {
                self.rdc.remove(&seq);
                changed = true;
            }
        }
        if changed {
            self.write_store_state();
        }
    }

    /// What nats-server does when a consumer becomes leader (`setLeader(true)`).
    fn become_leader(&mut self, now: i64, stream: &dyn ConsumerStream) {
        self.recompute_num_pending(stream);
        self.update_inactive_threshold();
        if self.cfg.flow_control {
            self.pblimit = FLOW_CONTROL_MAX_PENDING;
            self.maxpb = (FLOW_CONTROL_MAX_PENDING / 16).max(1);
        }
        if self.dthresh > 0 && (self.cfg.is_pull() || !self.active) {
            self.dtmr = now + self.dthresh;
        }
        self.update_pause_state(now);
        if self.cfg.replay_policy != ReplayPolicy::Instant {
            self.replay = true;
            self.replay_last_seq = stream.summary().last_seq;
        }
        if self.cfg.heartbeat > 0 {
            self.hb_next = now + self.cfg.heartbeat;
        }
    }

    fn update_inactive_threshold(&mut self) {
        if !self.cfg.is_durable() && self.cfg.inactive_threshold <= 0 {
            self.dthresh = DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD + PULL_INACTIVE_SLACK;
            self.cfg.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD;
        } else if self.cfg.inactive_threshold > 0 {
            self.dthresh = self.cfg.inactive_threshold
                + if self.cfg.is_pull() { PULL_INACTIVE_SLACK } else { 0 };
        } else {
            self.dthresh = 0;
        }
    }

    fn update_pause_state(&mut self, now: i64) {
        self.unpause_at = match self.cfg.pause_until {
            Some(t) if !t.is_zero() && now < t.unix_nanos() => t.unix_nanos(),
            _ => 0,
        };
    }

    fn recompute_num_pending(&mut self, stream: &dyn ConsumerStream) {
        let lps = self.cfg.deliver_policy == DeliverPolicy::LastPerSubject;
        self.npc = stream.num_pending(self.sseq, &self.filter, lps) as i64;
        self.npf = stream.summary().last_seq;
    }

    /// `checkNumPending`: clamps the cached count to what the stream can hold.
    fn check_num_pending(&mut self, stream: &dyn ConsumerStream) -> u64 {
        let state = stream.summary();
        let npc = self.num_pending();
        if self.sseq > state.last_seq {
            self.npc = 0;
        } else if npc > 0 {
            self.npc = npc.min(state.msgs).min(state.last_seq - self.sseq + 1) as i64;
        }
        self.num_pending()
    }

    // ---- store mirror -----------------------------------------------------------------------

    fn update_delivered(&mut self, dseq: u64, sseq: u64, dc: u64, ts: i64, now: i64) {
        // Errors are the store refusing an impossible update; nats-server ignores them too.
        let _ = self.store.update_delivered(
            dseq,
            sseq,
            dc,
            ts,
            self.cfg.ack_policy,
            self.cfg.max_deliver,
        );
        self.ldt = now;
    }

    fn update_acks(&mut self, dseq: u64, sseq: u64, now: i64) {
        let _ = self.store.update_acks(dseq, sseq, self.cfg.ack_policy);
        self.lat = now;
    }

    /// `writeStoreState`: the store takes the leader's view wholesale.
    fn write_store_state(&mut self) {
        self.store = ConsumerState {
            delivered: SequencePair {
                consumer: self.dseq.saturating_sub(1),
                stream: self.sseq.saturating_sub(1),
            },
            ack_floor: SequencePair { consumer: self.adflr, stream: self.asflr },
            pending: self.pending.map().clone(),
            redelivered: self.rdc.clone(),
        };
    }

    // ---- redelivery bookkeeping -------------------------------------------------------------

    fn delivery_count(&self, seq: u64) -> u64 {
        self.rdc.get(&seq).copied().filter(|&dc| dc >= 1).unwrap_or(1)
    }

    fn inc_delivery_count(&mut self, seq: u64) -> u64 {
        let r = self.rdc.entry(seq).or_insert(0);
        *r += 1;
        *r + 1
    }

    fn dec_delivery_count(&mut self, seq: u64) {
        if let Some(dc) = self.rdc.get_mut(&seq) {
            if *dc > 1 {
                *dc -= 1;
            } else {
                self.rdc.remove(&seq);
            }
        }
    }

    fn add_to_rdq(&mut self, seq: u64) {
        self.rdq.push_back(seq);
        self.rdqi.insert(seq);
    }

    fn remove_from_rdq(&mut self, seq: u64) -> bool {
        if !self.rdqi.remove(&seq) {
            return false;
        }
        if let Some(i) = self.rdq.iter().position(|&s| s == seq) {
            self.rdq.remove(i);
        }
        true
    }

    fn on_rdq(&self, seq: u64) -> bool {
        self.rdqi.contains(&seq)
    }

    /// The earliest ack deadline of a pending message not queued for redelivery. Without a
    /// backoff every message waits `ack_wait`, so the oldest delivery decides (messages on the
    /// redelivery queue are skipped, they are few); with one the steps differ per message and
    /// all are looked at.
    fn next_ack_deadline(&self) -> i64 {
        let d = if self.cfg.backoff.is_empty() {
            self.pending
                .by_time()
                .find(|(_, seq)| !self.rdqi.contains(seq))
                .map_or(0, |(ts, _)| ts.saturating_add(self.cfg.ack_wait))
        } else {
            self.scan_ack_deadline()
        };
        debug_assert_eq!(d, self.scan_ack_deadline(), "the time index is out of step");
        d
    }

    fn scan_ack_deadline(&self) -> i64 {
        self.pending
            .iter()
            .filter(|(seq, _)| !self.rdqi.contains(seq))
            .map(|(seq, p)| p.timestamp.saturating_add(self.ack_deadline(*seq)))
            .filter(|t| *t > 0)
            .min()
            .unwrap_or(0)
    }

    /// The ack deadline of `seq` relative to its delivery: `ack_wait`, or with a backoff the
    /// step for its redelivery count.
    fn ack_deadline(&self, seq: u64) -> i64 {
        let bo = &self.cfg.backoff;
        if bo.is_empty() {
            return self.cfg.ack_wait;
        }
        let dc = self.rdc.get(&seq).copied().unwrap_or(0) as usize;
        bo[dc.min(bo.len() - 1)]
    }

    fn move_ack_floor(&mut self, dseq: u64, sseq: u64) {
        if self.pending.is_empty() {
            self.adflr = self.dseq.saturating_sub(1);
            self.asflr = self.sseq.saturating_sub(1);
        } else if dseq == self.adflr + 1 {
            self.adflr = dseq;
            self.asflr = sseq;
            if let Some((&ss, p)) = self.pending.range(sseq + 1..self.sseq).next()
                && p.sequence > 0
            {
                self.adflr = p.sequence - 1;
                self.asflr = ss - 1;
            }
        }
    }

    fn advise(&mut self, now: i64, kind: AdvisoryKind) {
        self.out.push(Action::Advisory(Advisory {
            time: now,
            stream: self.ctx.stream.clone(),
            consumer: self.name.clone(),
            domain: self.ctx.domain.clone(),
            kind,
        }));
    }

    fn status(&mut self, s: StatusMsg) {
        self.out.push(Action::Status(s));
    }

    /// `hasMaxDeliveries`: whether `seq` used up its deliveries; if so, it leaves pending
    /// with the advisory.
    fn has_max_deliveries(&mut self, now: i64, seq: u64) -> bool {
        let maxdc = self.cfg.max_deliveries();
        if maxdc == 0 {
            return false;
        }
        let dc = self.delivery_count(seq);
        if dc < maxdc {
            return false;
        }
        let deliveries = self.rdc.get(&seq).copied().unwrap_or(0) + 1;
        self.advise(now, AdvisoryKind::MaxDeliveries { stream_seq: seq, deliveries });
        if let Some(p) = self.pending.remove(&seq) {
            self.update_delivered(p.sequence, seq, dc + 1, p.timestamp, now);
            self.move_ack_floor(p.sequence, seq);
        }
        self.rdc.insert(seq, dc);
        true
    }

    // ---- ack timers -------------------------------------------------------------------------

    /// `checkPending`: expired acks go to the redelivery queue (or run out of deliveries).
    fn check_pending(&mut self, now: i64, stream: &dyn ConsumerStream) {
        if self.cfg.ack_wait == 0 || self.pending.is_empty() {
            return;
        }
        let fseq = stream.summary().first_seq;
        let mut changed = false;
        let mut expired = Vec::new();
        let seqs: Vec<(u64, Pending)> = self.pending.iter().map(|(s, p)| (*s, *p)).collect();
        for (seq, p) in seqs {
            if seq < fseq || seq <= self.asflr {
                self.pending.remove(&seq);
                self.rdc.remove(&seq);
                self.remove_from_rdq(seq);
                changed = true;
                self.asflr = self.asflr.max(seq);
                self.adflr = self.adflr.max(p.sequence);
                continue;
            }
            if now - p.timestamp >= self.ack_deadline(seq)
                && !self.on_rdq(seq)
                && !self.has_max_deliveries(now, seq)
            {
                expired.push(seq);
            }
        }
        if let Some(&first) = expired.first() {
            // Keep their relative order while marking them as due now.
            let off = now - self.pending[&first].timestamp;
            for &seq in &expired {
                self.add_to_rdq(seq);
                if let Some(p) = self.pending.get(&seq).copied() {
                    self.pending.set_timestamp(seq, p.timestamp + off);
                }
            }
        }
        if self.pending.is_empty() {
            self.rdq.clear();
            self.rdqi.clear();
            self.adflr = self.dseq.saturating_sub(1);
            self.asflr = self.sseq.saturating_sub(1);
        }
        if changed {
            self.write_store_state();
        }
    }

    /// Everything pending goes back for redelivery now (`forceExpirePending`).
    fn force_expire_pending(&mut self, now: i64) {
        let seqs: Vec<u64> = self.pending.keys().copied().collect();
        let mut expired = Vec::new();
        for seq in seqs {
            if !self.on_rdq(seq) && !self.has_max_deliveries(now, seq) {
                expired.push(seq);
            }
        }
        if let Some(&first) = expired.first() {
            let off = now - self.pending[&first].timestamp;
            for &seq in &expired {
                self.add_to_rdq(seq);
                if let Some(p) = self.pending.get(&seq).copied() {
                    self.pending.set_timestamp(seq, p.timestamp + off);
                }
            }
        }
    }

    // ---- time -------------------------------------------------------------------------------

    fn tick(&mut self, now: i64, stream: &dyn ConsumerStream, interest: &dyn DeliveryInterest) {
        self.check_pending(now, stream);
        if self.unpause_at > 0 && now >= self.unpause_at {
            self.unpause_at = 0;
            let until = self.cfg.pause_until.unwrap_or_default();
            self.advise(
                now,
                AdvisoryKind::Pause { paused: now < until.unix_nanos(), pause_until: until },
            );
        }
        if self.pin_deadline > 0 && now >= self.pin_deadline {
            let group = self.cfg.priority_groups.first().cloned().unwrap_or_default();
            if !self.pin_id.is_empty() {
                self.unassign_pin();
                self.advise(
                    now,
                    AdvisoryKind::Unpinned {
                        account: self.ctx.account.clone(),
                        group,
                        reason: "timeout".into(),
                    },
                );
            }
            self.pin_deadline = 0;
        }
        if self.cfg.is_push() && self.hb_next > 0 && now >= self.hb_next {
            if self.active {
                let to = self.cfg.deliver_subject.clone();
                self.send_idle_heartbeat(&to);
                if self.cfg.ack_policy == AckPolicy::FlowControl
                    && !self.pending.is_empty()
                    && self.fcid.is_none()
                {
                    self.send_flow_control();
                }
            }
            self.hb_next = now + self.cfg.heartbeat;
        }
        if self.dtmr > 0 && now >= self.dtmr {
            self.delete_not_active(now, interest);
        }
    }

    fn send_idle_heartbeat(&mut self, to: &str) {
        let mut s = StatusMsg::new(to, 100, "Idle Heartbeat");
        s.headers.push((LAST_CONSUMER.into(), self.dseq.saturating_sub(1).to_string()));
        s.headers.push((LAST_STREAM.into(), self.sseq.saturating_sub(1).to_string()));
        if let Some(fc) = &self.fcid {
            s.headers.push((CONSUMER_STALLED.into(), fc.clone()));
        }
        self.status(s);
    }

    /// `deleteNotActive`: the inactivity timer fired.
    fn delete_not_active(&mut self, now: i64, interest: &dyn DeliveryInterest) {
        self.dtmr = 0;
        if self.cfg.is_push() {
            if self.active {
                return;
            }
        } else {
            self.process_waiting(now, true, interest);
            if !self.waiting.is_empty() {
                self.dtmr = now + self.dthresh;
                return;
            }
            let elapsed = now - self.waiting.last;
            if elapsed < self.dthresh {
                self.dtmr = now + (self.dthresh - elapsed);
                return;
            }
            // An ack could still come for the latest delivery: wait for its deadline plus
            // the threshold.
            let mut delay = 0;
            for (&seq, p) in self.pending.iter() {
                let wait = self.ack_deadline(seq) + ACK_WAIT_DELAY;
                let ts = p.timestamp + wait + self.dthresh;
                if ts > now {
                    delay = delay.max(ts - now);
                }
            }
            if delay > 0 {
                self.dtmr = now + delay;
                return;
            }
        }
        self.delete(now);
        self.out.push(Action::Delete);
    }

    /// Ack activity keeps a consumer with an inactivity threshold alive
    /// (`suppressDeletion`).
    fn suppress_deletion(&mut self, now: i64) {
        if self.cfg.is_push() {
            if self.dtmr > 0 {
                self.dtmr = now + self.dthresh;
            }
        } else {
            self.waiting.last = now;
            if self.dtmr > 0 {
                self.dtmr = now + self.dthresh;
            }
        }
    }

    fn update_interest(&mut self, now: i64, interest: bool) {
        if self.cfg.is_pull() {
            return;
        }
        self.active = interest;
        if self.dtmr > 0 && self.dthresh > 0 && !interest {
            return;
        }
        self.dtmr = 0;
        if !interest && self.dthresh > 0 {
            self.dtmr = now + self.dthresh;
        }
    }

    fn delete(&mut self, now: i64) {
        if self.closed {
            return;
        }
        self.advise(now, AdvisoryKind::Action { action: "delete" });
        for wr in self.waiting.drain() {
            self.status(StatusMsg::new(&wr.reply, 409, "Consumer Deleted"));
        }
        self.closed = true;
        self.more = false;
    }

    // ---- pull requests ----------------------------------------------------------------------

    #[allow(clippy::type_complexity)]
    fn parse_next_request(
        &self,
        now: i64,
        body: &[u8],
    ) -> Result<(i64, i64, i64, bool, i64, i64, Option<PriorityGroup>), String> {
        let req = body.trim_ascii();
        if req.is_empty() {
            return Ok((0, 1, 0, false, 0, 0, None));
        }
        if req[0] == b'{' {
            let r: NextRequest = serde_json::from_slice(req).map_err(|e| e.to_string())?;
            let mut hbt = 0;
            if r.heartbeat > 0 {
                if r.heartbeat.saturating_mul(2) > r.expires {
                    return Err("heartbeat value too large".into());
                }
                hbt = now + r.heartbeat;
            }
            let expires = if r.expires == 0 { 0 } else { now.saturating_add(r.expires) };
            return Ok((
                expires,
                r.batch,
                r.max_bytes,
                r.no_wait,
                r.heartbeat,
                hbt,
                Some(r.priority_group),
            ));
        }
        let batch = std::str::from_utf8(req).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(1);
        Ok((0, batch, 0, false, 0, 0, None))
    }

    fn process_next_request(
        &mut self,
        now: i64,
        reply: &str,
        body: &[u8],
        interest: &dyn DeliveryInterest,
    ) {
        if reply.is_empty() {
            return;
        }
        if self.cfg.is_push() {
            self.status(StatusMsg::new(reply, 409, "Consumer is push based"));
            return;
        }
        let (expires, batch, max_bytes, no_wait, hb, hbt, pg) =
            match self.parse_next_request(now, body) {
                Ok(r) => r,
                Err(e) => {
                    self.status(StatusMsg::new(reply, 400, format!("Bad Request - {e}")));
                    return;
                }
            };
        let cfg = &self.cfg;
        if cfg.max_request_batch > 0 && batch > cfg.max_request_batch {
            let d = format!("Exceeded MaxRequestBatch of {}", cfg.max_request_batch);
            self.status(StatusMsg::new(reply, 409, d));
            return;
        }
        if expires != 0
            && cfg.max_request_expires > 0
            && expires > now.saturating_add(cfg.max_request_expires)
        {
            let d = format!(
                "Exceeded MaxRequestExpires of {}",
                duration_string(cfg.max_request_expires)
            );
            self.status(StatusMsg::new(reply, 409, d));
            return;
        }
        if max_bytes > 0 && cfg.max_request_max_bytes > 0 && max_bytes > cfg.max_request_max_bytes {
            let d = format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_request_max_bytes);
            self.status(StatusMsg::new(reply, 409, d));
            return;
        }
        if let Some(g) = &pg {
            let policy = cfg.priority_policy;
            let bad = if (g.min_pending != 0 || g.min_ack_pending != 0)
                && policy != PriorityPolicy::Overflow
            {
                Some("Not a Overflow Priority consumer")
            } else if !g.id.is_empty() && policy != PriorityPolicy::PinnedClient {
                Some("Not a Pinned Client Priority consumer")
            } else if g.priority < 0 || g.priority > 9 {
                Some("Priority must be between 0 and 9")
            } else if policy != PriorityPolicy::None && g.group.is_empty() {
                Some("Priority Group missing")
            } else if policy != PriorityPolicy::None && !cfg.priority_groups.contains(&g.group) {
                Some("Invalid Priority Group")
            } else {
                None
            };
            if let Some(b) = bad {
                self.status(StatusMsg::new(reply, 400, format!("Bad Request - {b}")));
                return;
            }
            if policy != PriorityPolicy::None && !self.pin_id.is_empty() {
                if g.id == self.pin_id {
                    self.pin_deadline = now + self.cfg.pinned_ttl;
                } else if !g.id.is_empty() {
                    self.status(StatusMsg::new(reply, 423, "Nats-Pin-Id mismatch"));
                    return;
                }
            }
        }
        if self.waiting.is_full() && now - self.lwqic > SECOND {
            self.process_waiting(now, false, interest);
        }
        if no_wait {
            let msgs_pending = self.num_pending() + self.rdq.len() as u64;
            if msgs_pending == 0 && expires == 0 {
                self.waiting.last = now;
                self.status(StatusMsg::new(reply, 404, "No Messages"));
                return;
            }
            if msgs_pending > 0 {
                let (_, _, batch_pending, _) = self.process_waiting(now, false, interest);
                if (msgs_pending as i64) < batch_pending {
                    self.waiting.last = now;
                    self.status(StatusMsg::new(reply, 408, "Requests Pending"));
                    return;
                }
            }
        }
        let wr = WaitingRequest {
            reply: reply.to_string(),
            n: batch,
            d: 0,
            b: max_bytes,
            expires,
            received: now,
            hb,
            hbt,
            no_wait,
            priority_group: pg,
        };
        let added = if self.cfg.priority_policy == PriorityPolicy::Prioritized {
            self.waiting.add_prioritized(wr)
        } else {
            self.waiting.add(wr)
        };
        // With heartbeats the client notices by itself; a 409 would make it retry in a loop.
        if !added && hb == 0 {
            self.status(StatusMsg::new(reply, 409, "Exceeded MaxWaiting"));
        }
    }

    /// `processWaiting`: expires requests, drops those nobody listens to, sends pull
    /// heartbeats. Returns (expired, remaining, messages still asked for, next deadline).
    fn process_waiting(
        &mut self,
        now: i64,
        eos: bool,
        interest: &dyn DeliveryInterest,
    ) -> (usize, usize, i64, i64) {
        if self.waiting.is_empty() {
            return (0, 0, 0, 0);
        }
        self.lwqic = now;
        let (mut expired, mut brp, mut fexp) = (0, 0i64, 0i64);
        let mut heartbeats = Vec::new();
        let mut statuses = Vec::new();
        let mut reqs: Vec<WaitingRequest> = self.waiting.drain();
        let mut keep = Vec::with_capacity(reqs.len());
        for mut wr in reqs.drain(..) {
            let is_expired = wr.expires != 0 && now >= wr.expires;
            if (eos && wr.no_wait) || is_expired {
                if is_expired {
                    statuses.push(
                        StatusMsg::new(&wr.reply, 408, "Request Timeout").with_pending(wr.n, wr.b),
                    );
                    self.waiting.last = self.waiting.last.max(wr.expires);
                    expired += 1;
                    continue;
                } else if wr.expires == 0 || wr.d > 0 {
                    statuses.push(StatusMsg::new(&wr.reply, 404, "No Messages"));
                    self.waiting.last = self.waiting.last.max(now);
                    expired += 1;
                    continue;
                }
            }
            if !interest.has_interest(&wr.reply) {
                expired += 1;
                continue;
            }
            brp += wr.n;
            if wr.hbt != 0 {
                if now >= wr.hbt {
                    heartbeats.push(wr.reply.clone());
                    wr.hbt = now + wr.hb;
                }
                if fexp == 0 || wr.hbt < fexp {
                    fexp = wr.hbt;
                }
            }
            if wr.expires != 0 && (fexp == 0 || wr.expires < fexp) {
                fexp = wr.expires;
            }
            keep.push(wr);
        }
        let remaining = keep.len();
        let last = self.waiting.last;
        for wr in keep {
            // Re-adding cannot fail: the queue held them all a moment ago.
            self.waiting.add(wr);
        }
        self.waiting.last = last;
        for s in statuses {
            self.status(s);
        }
        for to in heartbeats {
            self.send_idle_heartbeat(&to);
        }
        (expired, remaining, brp, fexp)
    }

    fn assign_pin(&mut self, now: i64) -> String {
        self.pin_count += 1;
        // A NUID-like id, derived from the consumer's identity and a counter so replicas agree.
        let mut x = self
            .created
            .unix_nanos()
            .wrapping_add(self.pin_count as i64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15u64 as i64) as u64;
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut id = String::with_capacity(22);
        for i in 0..22 {
            if i == 11 {
                x ^= self.pin_count.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            }
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            id.push(DIGITS[(x >> 33) as usize % 62] as char);
        }
        self.pin_id = id.clone();
        self.pinned_ts = now;
        self.pin_deadline = now + self.cfg.pinned_ttl;
        id
    }

    fn unassign_pin(&mut self) {
        self.pin_id.clear();
        self.pinned_ts = 0;
        self.pin_deadline = 0;
    }

    /// `nextWaiting`: the request the next message of `sz` bytes goes to, counted.
    fn next_waiting(
        &mut self,
        now: i64,
        sz: i64,
        interest: &dyn DeliveryInterest,
    ) -> Option<WaitingRequest> {
        let policy = self.cfg.priority_policy;
        let need_new_pin = self.pin_id.is_empty() && policy == PriorityPolicy::PinnedClient;
        let mut cycled = 0;
        while let Some(head) = self.waiting.peek().cloned() {
            if head.expires != 0 && now >= head.expires {
                let s = StatusMsg::new(&head.reply, 408, "Request Timeout")
                    .with_pending(head.n, head.b);
                self.status(s);
                self.waiting.last = self.waiting.last.max(head.expires);
                self.waiting.remove_head();
                continue;
            }
            let head_id = head.priority_group.as_ref().map(|g| g.id.clone()).unwrap_or_default();
            let mut assigned_pin = false;
            if need_new_pin {
                if head_id.is_empty() {
                    let id = self.assign_pin(now);
                    let group =
                        head.priority_group.as_ref().map(|g| g.group.clone()).unwrap_or_default();
                    if let Some(h) = self.waiting.peek_mut() {
                        h.priority_group.get_or_insert_with(Default::default).id = id.clone();
                    }
                    self.advise(
                        now,
                        AdvisoryKind::Pinned {
                            account: self.ctx.account.clone(),
                            group,
                            pinned_id: id,
                        },
                    );
                    assigned_pin = true;
                } else {
                    let s = StatusMsg::new(&head.reply, 423, "Nats-Wrong-Pin-Id")
                        .with_pending(head.n, head.b);
                    self.status(s);
                    self.waiting.remove_head();
                    continue;
                }
            } else if !self.pin_id.is_empty() && head_id != self.pin_id {
                if head_id.is_empty() {
                    self.waiting.cycle();
                    cycled += 1;
                    if cycled >= self.waiting.len() {
                        return None;
                    }
                    continue;
                }
                let s = StatusMsg::new(&head.reply, 423, "Nats-Wrong-Pin-Id")
                    .with_pending(head.n, head.b);
                self.status(s);
                self.waiting.remove_head();
                continue;
            }
            if policy == PriorityPolicy::Overflow
                && let Some(g) = &head.priority_group
                && (g.min_pending > 0 || g.min_ack_pending > 0)
                && !((g.min_pending > 0 && g.min_pending <= self.npc + 1)
                    || (g.min_ack_pending > 0 && g.min_ack_pending <= self.pending.len() as i64))
            {
                self.waiting.cycle();
                cycled += 1;
                if cycled >= self.waiting.len() {
                    return None;
                }
                continue;
            }
            if head.b > 0 {
                if sz <= head.b {
                    if let Some(h) = self.waiting.peek_mut() {
                        h.b -= sz;
                        if h.b == 0 {
                            h.n = 1;
                        }
                    }
                } else {
                    let s = StatusMsg::new(&head.reply, 409, "Message Size Exceeds MaxBytes")
                        .with_pending(head.n, head.b);
                    self.status(s);
                    if assigned_pin {
                        self.unassign_pin();
                    }
                    self.waiting.remove_head();
                    continue;
                }
            }
            if interest.has_interest(&head.reply) {
                return self.waiting.pop(policy == PriorityPolicy::Prioritized);
            }
            self.waiting.remove_head();
        }
        None
    }

    // ---- delivery ---------------------------------------------------------------------------

    /// `getNextMsg`: redeliveries first, then (below max ack pending) the skip list of
    /// `last_per_subject`, then the next matching message.
    fn get_next_msg(
        &mut self,
        now: i64,
        stream: &dyn ConsumerStream,
    ) -> Result<(StreamMsg, u64), NextErr> {
        while let Some(seq) = self.rdq.pop_front() {
            self.rdqi.remove(&seq);
            let dc = self.inc_delivery_count(seq);
            let maxdc = self.cfg.max_deliveries();
            if maxdc > 0 && dc > maxdc {
                self.advise(
                    now,
                    AdvisoryKind::MaxDeliveries { stream_seq: seq, deliveries: dc - 1 },
                );
                if let Some(p) = self.pending.remove(&seq) {
                    self.update_delivered(p.sequence, seq, dc, p.timestamp, now);
                    self.move_ack_floor(p.sequence, seq);
                }
                continue;
            }
            match stream.load(seq) {
                Some(m) => return Ok((m, dc)),
                None => {
                    self.dec_delivery_count(seq);
                    if let Some(p) = self.pending.get(&seq).copied() {
                        self.process_term(now, seq, p.sequence, dc - 1, TERM_UNACKED_REMOVED);
                    }
                }
            }
        }
        let maxp = self.cfg.max_ack_pending;
        if maxp > 0 && self.pending.len() as i64 >= maxp {
            return Err(NextErr::MaxAckPending);
        }
        if let Some(lss) = &mut self.lss
            && let Some(seq) = lss.seqs.pop_front()
        {
            if lss.seqs.is_empty() {
                self.sseq = lss.resume;
                self.lss = None;
            } else {
                self.sseq = seq;
            }
            let m = stream.load(seq);
            self.sseq += 1;
            return m.map(|m| (m, 1)).ok_or(NextErr::Missing);
        }
        match stream.next_matching(&self.filter, self.sseq) {
            Some(m) => {
                if m.seq >= self.sseq {
                    self.sseq = m.seq + 1;
                }
                Ok((m, 1))
            }
            None => {
                let last = stream.summary().last_seq;
                if last >= self.sseq {
                    self.sseq = last + 1;
                }
                Err(NextErr::Eof)
            }
        }
    }

    /// One pass of `loopAndGatherMsgs`: deliver until something says wait.
    fn run(&mut self, now: i64, stream: &dyn ConsumerStream, interest: &dyn DeliveryInterest) {
        self.more = false;
        self.resume_at = 0;
        let mut max_ack_stall = false;
        let mut count = 0;
        loop {
            if self.cfg.is_paused_at(now) {
                break;
            }
            if self.send_clock > now {
                self.resume_at = self.send_clock;
                break;
            }
            if self.cfg.is_push() {
                if !self.active || (self.maxpb > 0 && self.pbytes > self.maxpb) {
                    break;
                }
            } else if self.waiting.is_empty() {
                break;
            }
            if count >= self.ctx.max_deliveries_per_call {
                self.more = true;
                break;
            }
            let (mut msg, dc) = match self.get_next_msg(now, stream) {
                Ok(x) => x,
                Err(NextErr::Missing) => continue,
                Err(e) => {
                    if e == NextErr::Eof {
                        let last = stream.summary().last_seq;
                        if self.sseq > last && self.npc != 0 {
                            self.npc = 0;
                            self.npf = last;
                        }
                    }
                    max_ack_stall = e == NextErr::MaxAckPending;
                    break;
                }
            };
            if dc == 1 {
                self.npc -= 1;
            }
            let reply = ack_reply(
                &self.ctx.ack_format,
                &self.ctx.stream,
                &self.name,
                &AckReplyInfo {
                    stream_seq: msg.seq,
                    consumer_seq: self.dseq,
                    delivered: dc,
                    timestamp: msg.timestamp,
                    pending: self.num_pending(),
                },
            );
            if self.cfg.headers_only {
                let hdr = msg.header.as_deref().unwrap_or(&[]);
                let size = msg.payload.len().to_string();
                msg.header = Some(Bytes::from(headers::append(hdr, MSG_SIZE, &size)));
                msg.payload = Bytes::new();
            }
            let hdr_len = msg.header.as_ref().map_or(0, |h| h.len());
            let mut sz = (msg.subject.len() + reply.len() + hdr_len + msg.payload.len()) as i64;
            let (to, wrn, wrb) = if self.cfg.is_push() {
                (self.cfg.deliver_subject.clone(), 0, 0)
            } else if let Some(wr) = self.next_waiting(now, sz, interest) {
                if self.cfg.priority_policy == PriorityPolicy::PinnedClient {
                    let hdr = msg.header.as_deref().unwrap_or(&[]);
                    msg.header = Some(Bytes::from(headers::append(hdr, PIN_ID, &self.pin_id)));
                    let hdr_len = msg.header.as_ref().map_or(0, |h| h.len());
                    sz = (msg.subject.len() + reply.len() + hdr_len + msg.payload.len()) as i64;
                }
                if wr.n > 0
                    && wr.hb > 0
                    && let Some(w) = self.waiting.find_mut(&wr.reply)
                {
                    w.hbt = now + w.hb;
                }
                (wr.reply, wr.n, wr.b)
            } else {
                // Nobody to take it: put it back.
                if dc == 1 && msg.seq + 1 == self.sseq {
                    self.sseq -= 1;
                    self.npc += 1;
                } else if !self.on_rdq(msg.seq) {
                    self.dec_delivery_count(msg.seq);
                    self.add_to_rdq(msg.seq);
                }
                break;
            };
            let mut at = now.max(self.send_clock);
            if self.replay && self.lts > 0 {
                let delay = msg.timestamp - self.lts;
                if delay > MILLI {
                    at += delay;
                }
            }
            self.lts = msg.timestamp;
            if let Some(l) = &mut self.limiter {
                at = l.reserve(at, sz);
            }
            self.send_clock = at;
            self.deliver_msg(now, at, to.clone(), reply, msg, dc);
            if wrn <= 0 && wrb > 0 {
                let s = StatusMsg::new(&to, 409, "Batch Completed").with_pending(wrn, wrb);
                self.status(s);
            }
            if self.cfg.heartbeat > 0 {
                self.hb_next = now + self.cfg.heartbeat;
            }
            count += 1;
        }
        if self.replay && self.sseq > self.replay_last_seq {
            self.replay = false;
        }
        if self.cfg.is_pull() {
            self.process_waiting(now, !max_ack_stall, interest);
        }
    }

    /// `deliverMsg`: counts, tracks and sends one message.
    fn deliver_msg(
        &mut self,
        now: i64,
        at: i64,
        to: String,
        reply: String,
        msg: StreamMsg,
        dc: u64,
    ) {
        let dseq = self.dseq;
        self.dseq += 1;
        let hdr_len = msg.header.as_ref().map_or(0, |h| h.len());
        let psz = (to.len() + reply.len() + hdr_len + msg.payload.len()) as i64;
        if self.maxpb > 0 {
            self.pbytes += psz;
        }
        let seq = msg.seq;
        self.update_delivered(dseq, seq, dc, msg.timestamp, at);
        if self.cfg.ack_policy == AckPolicy::None {
            self.adflr = dseq;
            self.asflr = seq;
        } else {
            if self.pending.set_timestamp(seq, at).is_none() {
                self.pending.insert(seq, Pending { sequence: dseq, timestamp: at });
            }
        }
        self.out.push(Action::Deliver(Delivery {
            to,
            subject: msg.subject,
            reply,
            header: msg.header,
            payload: msg.payload,
            stream_seq: seq,
            consumer_seq: dseq,
            delivery_count: dc,
            timestamp: msg.timestamp,
            not_before: at,
        }));
        if self.maxpb > 0 && self.need_flow_control(psz) {
            self.send_flow_control();
        }
        if self.cfg.is_pull() && self.dthresh > 0 {
            self.waiting.last = now;
        }
        if self.cfg.ack_policy == AckPolicy::None && self.ctx.retention != RetentionPolicy::Limits {
            self.out.push(Action::AckedForRetention { seq });
        }
    }

    fn need_flow_control(&mut self, sz: i64) -> bool {
        if self.maxpb == 0 {
            return false;
        }
        if self.fcid.is_none() && self.pbytes > self.maxpb / 2 {
            return true;
        }
        let maxp = self.cfg.max_ack_pending;
        if self.fcid.is_none()
            && self.cfg.ack_policy == AckPolicy::FlowControl
            && maxp > 0
            && self.pending.len() as i64 >= maxp
        {
            return true;
        }
        if self.fcid.is_some() && self.pbytes - self.fcsz >= self.maxpb {
            self.fcsz += sz;
        }
        false
    }

    fn send_flow_control(&mut self) {
        if !self.cfg.is_push() {
            return;
        }
        self.fc_count += 1;
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut token = String::with_capacity(4);
        let mut l = self.fc_count;
        for _ in 0..4 {
            token.push(DIGITS[(l % 62) as usize] as char);
            l /= 62;
        }
        let prefix = match &self.ctx.ack_format {
            AckFormat::V1 => FLOW_CONTROL_PREFIX.to_string(),
            AckFormat::V2 { domain, account_hash } => {
                let d = if domain.is_empty() { "_" } else { domain };
                format!("{FLOW_CONTROL_PREFIX}{d}.{account_hash}.")
            }
        };
        let subject = format!("{prefix}{}.{}.{token}", self.ctx.stream, self.name);
        self.fcsz = self.pbytes;
        self.fcid = Some(subject.clone());
        let mut s = StatusMsg::new(&self.cfg.deliver_subject, 100, "FlowControl Request");
        s.reply = Some(subject);
        self.status(s);
    }

    fn process_flow_control(&mut self, now: i64, subject: &str, header: &[u8]) {
        if self.fcid.as_deref() != Some(subject) {
            return;
        }
        if self.maxpb < self.pblimit {
            self.maxpb = (self.maxpb * 2).min(self.pblimit);
        }
        self.pbytes = (self.pbytes - self.fcsz).max(0);
        self.fcid = None;
        self.fcsz = 0;
        if self.cfg.ack_policy != AckPolicy::FlowControl {
            return;
        }
        let num = |k: &str| headers::get(header, k).map_or(-1, crate::go::parse_int64);
        let (ldseq, lsseq) = (num(LAST_CONSUMER), num(LAST_STREAM));
        if lsseq > 0 {
            self.process_ack_msg(now, lsseq as u64, ldseq.max(0) as u64, 1, false);
        }
    }

    // ---- acks -------------------------------------------------------------------------------

    fn process_ack(
        &mut self,
        now: i64,
        subject: &str,
        reply: &str,
        body: &[u8],
        interest: &dyn DeliveryInterest,
    ) {
        if self.cfg.inactive_threshold > 0 {
            self.suppress_deletion(now);
        }
        let info = parse_ack_subject(subject).map(|p| p.info).unwrap_or_default();
        let (sseq, dseq, dc) = (info.stream_seq, info.consumer_seq, info.delivered);
        let mut send_reply = sseq != 0;
        match parse_ack_body(body) {
            AckKind::Ack => {
                if !self.process_ack_msg(now, sseq, dseq, dc, true) {
                    send_reply = false;
                }
            }
            AckKind::Next(rest) => {
                self.process_ack_msg(now, sseq, dseq, dc, true);
                self.process_next_request(now, reply, &rest, interest);
                send_reply = false;
            }
            AckKind::Nak { delay } => self.process_nak(now, sseq, dseq, dc, delay),
            AckKind::Progress => self.progress_update(now, sseq),
            AckKind::Term { reason } => {
                if !self.process_term(now, sseq, dseq, dc, &reason) {
                    send_reply = false;
                }
            }
            AckKind::Unknown => {}
        }
        if !reply.is_empty() && send_reply {
            self.out.push(Action::AckReply { to: reply.to_string() });
        }
    }

    /// `processAckMsg`; returns whether the ack counts as processed (and so gets its reply).
    fn process_ack_msg(&mut self, now: i64, sseq: u64, dseq: u64, dc: u64, sample: bool) -> bool {
        // Past what we delivered: a stale leader's delivery or garbage.
        if sseq >= self.sseq && !self.cfg.flow_control {
            return false;
        }
        let in_place = self.ctx.retention != RetentionPolicy::Limits;
        let mut dseq = dseq;
        let mut acked_below = Vec::new();
        match self.cfg.ack_policy {
            AckPolicy::Explicit => {
                if let Some(p) = self.pending.remove(&sseq) {
                    if sample {
                        self.sample_ack(now, sseq, dseq, dc, p.timestamp);
                    }
                    dseq = p.sequence;
                    self.move_ack_floor(dseq, sseq);
                }
                self.rdc.remove(&sseq);
                self.remove_from_rdq(sseq);
            }
            AckPolicy::All | AckPolicy::FlowControl => {
                if dseq <= self.adflr || sseq <= self.asflr {
                    return true;
                }
                self.adflr = dseq;
                self.asflr = sseq;
                let below: Vec<u64> = self.pending.range(..=sseq).map(|(s, _)| *s).collect();
                for seq in below {
                    if in_place && seq != sseq {
                        acked_below.push(seq);
                    }
                    self.pending.remove(&seq);
                    self.rdc.remove(&seq);
                    self.remove_from_rdq(seq);
                }
            }
            AckPolicy::None => return in_place,
        }
        self.update_acks(dseq, sseq, now);
        if in_place {
            self.out.push(Action::AckedForRetention { seq: sseq });
            for seq in acked_below {
                self.out.push(Action::AckedForRetention { seq });
            }
        }
        true
    }

    /// Ack latency metrics for `sample_freq` percent of acks. nats-server draws a random
    /// number; we take a hash of the sequences so replicas agree.
    fn sample_ack(&mut self, now: i64, sseq: u64, dseq: u64, dc: u64, delivered_at: i64) {
        let s = self.cfg.sample_frequency.trim_end_matches('%');
        let freq: i64 = s.parse().unwrap_or(0);
        if freq <= 0 {
            return;
        }
        let roll = (sseq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ dseq) % 100;
        if freq < 100 && roll as i64 > freq {
            return;
        }
        self.advise(
            now,
            AdvisoryKind::AckMetric {
                consumer_seq: dseq,
                stream_seq: sseq,
                ack_time: now - delivered_at,
                deliveries: dc,
            },
        );
    }

    fn process_nak(&mut self, now: i64, sseq: u64, dseq: u64, dc: u64, delay: Option<i64>) {
        if dseq <= self.adflr || dseq > self.dseq {
            return;
        }
        if !self.pending.contains_key(&sseq) {
            return;
        }
        self.advise(
            now,
            AdvisoryKind::Nak { consumer_seq: dseq, stream_seq: sseq, deliveries: dc },
        );
        if let Some(d) = delay {
            self.remove_from_rdq(sseq);
            // Due `d` from now: "now minus ack wait" is already expired.
            let ts = now - self.cfg.ack_wait + d;
            if let Some(pseq) = self.pending.set_timestamp(sseq, ts) {
                self.update_delivered(pseq, sseq, dc, ts, now);
            }
            return;
        }
        if !self.on_rdq(sseq) {
            self.add_to_rdq(sseq);
        }
    }

    /// `+TERM`: acknowledged for good, with the terminated advisory.
    fn process_term(&mut self, now: i64, sseq: u64, dseq: u64, dc: u64, reason: &str) -> bool {
        let processed = self.process_ack_msg(now, sseq, dseq, dc, false);
        self.advise(
            now,
            AdvisoryKind::Terminated {
                consumer_seq: dseq,
                stream_seq: sseq,
                deliveries: dc,
                reason: reason.to_string(),
            },
        );
        processed
    }

    fn progress_update(&mut self, now: i64, seq: u64) {
        if let Some(pseq) = self.pending.set_timestamp(seq, now) {
            self.update_delivered(pseq, seq, 1, now, now);
        }
    }

    // ---- stream changes ---------------------------------------------------------------------

    /// `decStreamPending`: a message left the stream for reasons of its own.
    fn stream_removed(&mut self, now: i64, seq: u64, subject: &str) {
        if seq >= self.sseq && self.filter.matches(subject) {
            self.npc -= 1;
        }
        if let Some(p) = self.pending.get(&seq).copied() {
            let dc = self.delivery_count(seq);
            self.process_term(now, seq, p.sequence, dc, TERM_UNACKED_REMOVED);
        } else if self.rdc.remove(&seq).is_some() {
            self.update_acks(0, seq, now);
        }
    }

    /// The stream was purged (`consumer.purge`).
    fn purge(&mut self, first_seq: u64, last_seq: u64, wider: bool, stream: &dyn ConsumerStream) {
        let mut sseq = first_seq;
        if sseq == 0 && !wider {
            sseq = last_seq + 1;
        }
        if self.sseq < sseq {
            self.sseq = sseq;
        }
        if self.asflr < sseq {
            self.asflr = sseq.saturating_sub(1);
            let entries: Vec<(u64, Pending)> = self.pending.iter().map(|(s, p)| (*s, *p)).collect();
            for (seq, p) in entries {
                let gone = seq <= self.asflr || (wider && stream.load(seq).is_none());
                if gone {
                    if p.sequence > self.adflr {
                        self.adflr = p.sequence;
                        if self.adflr > self.dseq {
                            self.dseq = self.adflr;
                        }
                    }
                    self.pending.remove(&seq);
                    self.rdc.remove(&seq);
                    let _ = self.store.update_acks(p.sequence, seq, self.cfg.ack_policy);
                }
            }
        }
        if self.pending.is_empty() {
            self.rdc.clear();
            self.adflr = self.dseq.saturating_sub(1);
            self.asflr = self.sseq.saturating_sub(1);
        }
        let keep: Vec<u64> = self.rdq.iter().copied().filter(|&s| s >= self.sseq).collect();
        self.rdq.clear();
        self.rdqi.clear();
        for s in keep {
            self.add_to_rdq(s);
        }
        self.write_store_state();
        self.recompute_num_pending(stream);
    }

    // ---- config -----------------------------------------------------------------------------

    fn update_config(&mut self, now: i64, mut cfg: ConsumerConfig, stream: &dyn ConsumerStream) {
        if let Some(t) = cfg.pause_until {
            cfg.pause_until = Some(t.to_utc());
        }
        if cfg.is_push()
            && cfg.deliver_subject != self.cfg.deliver_subject
            && !self.pending.is_empty()
        {
            self.force_expire_pending(now);
        }
        if cfg.rate_limit != self.cfg.rate_limit {
            self.limiter =
                (cfg.rate_limit > 0).then(|| Limiter::new(cfg.rate_limit, self.ctx.rate_burst));
        }
        let threshold_changed = cfg.inactive_threshold != self.cfg.inactive_threshold;
        let pause_changed =
            cfg.pause_until.unwrap_or_default() != self.cfg.pause_until.unwrap_or_default();
        let filters_changed = {
            let mut a = cfg.filters();
            let mut b = self.cfg.filters();
            a.sort();
            b.sort();
            a != b
        };
        self.cfg = cfg;
        if threshold_changed {
            self.update_inactive_threshold();
            self.dtmr = if self.dthresh > 0 { now + self.dthresh } else { 0 };
        }
        if pause_changed {
            self.update_pause_state(now);
            let until = self.cfg.pause_until.unwrap_or_default();
            self.advise(
                now,
                AdvisoryKind::Pause {
                    paused: !until.is_zero() && now < until.unix_nanos(),
                    pause_until: until,
                },
            );
        }
        if filters_changed {
            self.filter = ConsumerFilter::new(self.cfg.filters());
            self.recompute_num_pending(stream);
        }
        if self.cfg.heartbeat > 0 && self.hb_next == 0 {
            self.hb_next = now + self.cfg.heartbeat;
        }
    }

    /// `CONSUMER.PAUSE`.
    fn pause(&mut self, now: i64, until: Option<Timestamp>) {
        let until = until.map(|t| t.to_utc()).filter(|t| !t.is_zero());
        let mut cfg = self.cfg.clone();
        cfg.pause_until = until;
        metadata::set_static(&mut cfg);
        let changed =
            cfg.pause_until.unwrap_or_default() != self.cfg.pause_until.unwrap_or_default();
        self.cfg = cfg;
        if changed {
            self.update_pause_state(now);
            let until = self.cfg.pause_until.unwrap_or_default();
            self.advise(
                now,
                AdvisoryKind::Pause {
                    paused: !until.is_zero() && now < until.unix_nanos(),
                    pause_until: until,
                },
            );
        }
    }

    /// Whether the stream still needs `sseq` for this consumer (interest retention's
    /// `needAck`); `subject` is the message's subject.
    pub fn needs_ack(&self, sseq: u64, subject: &str) -> bool {
        if !self.filter.is_all() && self.is_filtered() && !self.filter.matches(subject) {
            return false;
        }
        let need = match self.cfg.ack_policy {
            AckPolicy::None | AckPolicy::All | AckPolicy::FlowControl => sseq > self.asflr,
            AckPolicy::Explicit => {
                sseq > self.asflr && (sseq >= self.sseq || self.pending.contains_key(&sseq))
            }
        };
        need || self.rdc.contains_key(&sseq)
    }

    /// Whether the filter narrows the stream's subjects (`isFiltered`).
    fn is_filtered(&self) -> bool {
        let subs = self.filter.subjects();
        if subs.is_empty() {
            return false;
        }
        let stream = &self.ctx.stream_subjects;
        if stream.len() == 1 && subs.len() == 1 {
            return stream[0] != subs[0];
        }
        if stream.len() != subs.len() {
            return true;
        }
        stream.iter().any(|s| !subs.contains(s))
    }
}
