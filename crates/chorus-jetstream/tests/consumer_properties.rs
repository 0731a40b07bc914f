//! Properties of the consumer state machine under arbitrary acks, naks, terms, progress
//! updates, pull requests and time jumps (explicit acks, unlimited deliveries):
//!
//! - an acknowledged (or terminated) message is never delivered again;
//! - the pending set is exactly the delivered-but-unacknowledged messages, in the leader's
//!   view and in the store's, and `num_ack_pending` counts it;
//! - the ack floor never passes an unacknowledged message;
//! - nothing is lost: draining at the end acknowledges every published message.

use std::collections::BTreeSet;

use chorus_jetstream::consumer::config::{AckPolicy, ConsumerConfig};
use chorus_jetstream::consumer::{
    Action, AlwaysInterested, Consumer, ConsumerContext, Delivery, Event, VecStream,
};
use chorus_jetstream::go::Timestamp;
use chorus_jetstream::stream::config::StreamConfig;
use proptest::prelude::*;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * S;
const ACK_WAIT: i64 = 10 * S;

#[derive(Debug, Clone)]
enum Op {
    Publish,
    Pull { batch: u8, no_wait: bool },
    Ack(usize),
    Nak(usize),
    NakDelay(usize, u8),
    Term(usize),
    Progress(usize),
    Advance(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Publish),
        3 => (1u8..5, any::<bool>()).prop_map(|(batch, no_wait)| Op::Pull { batch, no_wait }),
        4 => any::<usize>().prop_map(Op::Ack),
        2 => any::<usize>().prop_map(Op::Nak),
        1 => (any::<usize>(), 0u8..20).prop_map(|(i, d)| Op::NakDelay(i, d)),
        1 => any::<usize>().prop_map(Op::Term),
        1 => any::<usize>().prop_map(Op::Progress),
        2 => (0u8..30).prop_map(Op::Advance),
    ]
}

struct Model {
    stream: VecStream,
    c: Consumer,
    now: i64,
    published: BTreeSet<u64>,
    done: BTreeSet<u64>,
    delivered: BTreeSet<u64>,
    deliveries: Vec<Delivery>,
    inbox: u64,
}

impl Model {
    fn new() -> Model {
        let scfg = StreamConfig {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            num_replicas: 1,
            ..Default::default()
        };
        let cfg = ConsumerConfig {
            durable: "C".into(),
            name: "C".into(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: -1,
            max_waiting: 512,
            max_ack_pending: 1000,
            ..Default::default()
        };
        let stream = VecStream::new();
        let ctx = ConsumerContext::for_stream(&scfg, 1 << 20);
        let c = Consumer::create("C", cfg, Timestamp::from_unix_nanos(T0), ctx, T0, &stream);
        Model {
            stream,
            c,
            now: T0,
            published: BTreeSet::new(),
            done: BTreeSet::new(),
            delivered: BTreeSet::new(),
            deliveries: vec![],
            inbox: 0,
        }
    }

    fn absorb(&mut self, actions: Vec<Action>) -> Result<(), TestCaseError> {
        for a in actions {
            if let Action::Deliver(d) = a {
                prop_assert!(
                    !self.done.contains(&d.stream_seq),
                    "acked message {} delivered again",
                    d.stream_seq
                );
                self.delivered.insert(d.stream_seq);
                self.deliveries.push(d);
            }
        }
        Ok(())
    }

    fn event(&mut self, ev: Event<'_>) -> Result<(), TestCaseError> {
        let a = self.c.handle(self.now, ev, &self.stream, &AlwaysInterested);
        self.absorb(a)
    }

    fn ack(&mut self, i: usize, body: &str) -> Result<(), TestCaseError> {
        if self.deliveries.is_empty() {
            return Ok(());
        }
        let d = self.deliveries[i % self.deliveries.len()].clone();
        self.event(Event::Ack { subject: &d.reply, reply: "", body: body.as_bytes() })?;
        if body == "+ACK" || body.starts_with("+TERM") {
            self.done.insert(d.stream_seq);
        }
        Ok(())
    }

    fn pull(&mut self, batch: u8, no_wait: bool) -> Result<(), TestCaseError> {
        self.inbox += 1;
        let reply = format!("in.{}", self.inbox);
        let body = if no_wait {
            format!(r#"{{"batch":{batch},"no_wait":true}}"#)
        } else {
            format!(r#"{{"batch":{batch},"expires":5000000000}}"#)
        };
        self.event(Event::PullRequest { reply: &reply, body: body.as_bytes() })
    }

    fn advance(&mut self, to: i64) -> Result<(), TestCaseError> {
        while let Some(d) = self.c.next_deadline() {
            if d > to {
                break;
            }
            self.now = self.now.max(d);
            self.event(Event::Tick)?;
        }
        self.now = self.now.max(to);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Publish => {
                let seq = self.stream.append("s.a", b"x", self.now);
                self.published.insert(seq);
                self.event(Event::StreamAppended { seq, subject: "s.a" })?;
            }
            Op::Pull { batch, no_wait } => self.pull(batch, no_wait)?,
            Op::Ack(i) => self.ack(i, "+ACK")?,
            Op::Nak(i) => self.ack(i, "-NAK")?,
            Op::NakDelay(i, d) => self.ack(i, &format!(r#"-NAK {{"delay":{}}}"#, d as i64 * S))?,
            Op::Term(i) => self.ack(i, "+TERM")?,
            Op::Progress(i) => self.ack(i, "+WPI")?,
            Op::Advance(s) => self.advance(self.now + s as i64 * S)?,
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let expected: BTreeSet<u64> = self.delivered.difference(&self.done).copied().collect();
        let pending: BTreeSet<u64> = self.c.pending().keys().copied().collect();
        prop_assert_eq!(&pending, &expected, "leader pending");
        let stored: BTreeSet<u64> = self.c.stored_state().pending.keys().copied().collect();
        prop_assert_eq!(&stored, &expected, "store pending");
        prop_assert_eq!(self.c.num_ack_pending(), expected.len());
        let (info, _) = self.c.info(self.now, &self.stream, &AlwaysInterested);
        prop_assert_eq!(info.num_ack_pending as usize, expected.len());
        let floor = self.c.ack_floor().stream;
        prop_assert!(
            expected.iter().all(|&s| s > floor),
            "floor {} passes pending {:?}",
            floor,
            expected
        );
        prop_assert!(info.ack_floor.stream <= floor);
        prop_assert!(
            self.published
                .range(..=floor)
                .all(|s| self.done.contains(s) || !self.delivered.contains(s)),
            "floor {} above an unacked delivery",
            floor
        );
        let undelivered = self.published.iter().filter(|s| !self.delivered.contains(s)).count();
        prop_assert_eq!(self.c.num_pending() as usize, undelivered, "num_pending");
        Ok(())
    }

    /// Pull and ack until everything is acknowledged (or give up).
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..50 {
            if self.done == self.published {
                return Ok(());
            }
            self.advance(self.now + ACK_WAIT + 25 * S)?;
            let before = self.deliveries.len();
            self.pull(100, true)?;
            let fresh: Vec<Delivery> = self.deliveries[before..].to_vec();
            for d in fresh {
                self.event(Event::Ack { subject: &d.reply, reply: "", body: b"+ACK" })?;
                self.done.insert(d.stream_seq);
            }
            self.check()?;
        }
        prop_assert_eq!(&self.done, &self.published, "messages lost");
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn acks_are_never_lost_or_duplicated(ops in proptest::collection::vec(op(), 1..80)) {
        let mut m = Model::new();
        for op in &ops {
            m.apply(op)?;
        }
        m.drain()?;
        prop_assert_eq!(m.c.num_ack_pending(), 0);
        let snapshot = m.c.snapshot();
        prop_assert!(snapshot.state.pending.is_empty());
        prop_assert_eq!(snapshot.state.ack_floor.stream, m.published.last().copied().unwrap_or(0));
    }
}
