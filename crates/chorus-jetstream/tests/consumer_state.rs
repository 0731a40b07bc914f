//! The consumer state machine, scenario by scenario, on a virtual clock (no tokio, no
//! sockets): redelivery, backoff, max deliver, naks, terms, progress, ack floors, ack all,
//! retention hooks, pull statuses, push heartbeats and flow control, inactivity, pausing,
//! rate limits, start positions, snapshots, and the ChoirOS consumers.

use chorus_jetstream::api::account::untiered;
use chorus_jetstream::consumer::ack::parse_ack_subject;
use chorus_jetstream::consumer::action::{
    CONSUMER_STALLED, LAST_CONSUMER, LAST_STREAM, MSG_SIZE, PENDING_BYTES, PENDING_MESSAGES,
};
use chorus_jetstream::consumer::check::{
    ConsumerCheckContext, CreateEnv, ServerConsumerLimits, check_create, parse_create_subject,
};
use chorus_jetstream::consumer::config::{AckPolicy, DeliverPolicy, ReplayPolicy};
use chorus_jetstream::consumer::{
    Action, AdvisoryKind, AlwaysInterested, Consumer, ConsumerConfig, ConsumerContext,
    ConsumerSnapshot, Delivery, Event, StatusMsg, VecStream,
};
use chorus_jetstream::go::Timestamp;
use chorus_jetstream::stream::config::{RetentionPolicy, StreamConfig};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const T0: i64 = 1_700_000_000 * S;

fn stream_cfg(retention: RetentionPolicy) -> StreamConfig {
    StreamConfig {
        name: "S".into(),
        subjects: vec!["s.>".into()],
        retention,
        num_replicas: 1,
        max_msgs_per_subject: -1,
        max_msg_size: -1,
        ..Default::default()
    }
}

/// A defaulted config as the create check would store it.
fn checked(stream: &StreamConfig, body: &str, subject: &str) -> (String, ConsumerConfig) {
    let limits = untiered(Default::default());
    let server = ServerConsumerLimits::default();
    let ctx = ConsumerCheckContext { clustered: false, server: &server, account: &limits };
    let sub = parse_create_subject(subject).unwrap().unwrap();
    let env = CreateEnv { generated_name: "EPH".into(), ..Default::default() };
    let out = check_create(
        &sub,
        body.as_bytes(),
        Some(stream),
        &Vec::<ConsumerConfig>::new(),
        &env,
        &ctx,
    )
    .expect("config accepted");
    (out.name().to_string(), out.config().clone())
}

struct World {
    stream: VecStream,
    cfg: StreamConfig,
    c: Consumer,
}

impl World {
    fn new(retention: RetentionPolicy, config_json: &str) -> World {
        let cfg = stream_cfg(retention);
        let body = format!(r#"{{"stream_name":"S","config":{config_json}}}"#);
        let v: serde_json::Value = serde_json::from_str(config_json).unwrap();
        let name = v["durable_name"].as_str().or(v["name"].as_str()).unwrap_or("").to_string();
        let subject = if name.is_empty() {
            "$JS.API.CONSUMER.CREATE.S".to_string()
        } else {
            format!("$JS.API.CONSUMER.CREATE.S.{name}")
        };
        let (name, config) = checked(&cfg, &body, &subject);
        let stream = VecStream::new();
        let ctx = ConsumerContext::for_stream(&cfg, 1024 * 1024);
        let c = Consumer::create(&name, config, Timestamp::from_unix_nanos(T0), ctx, T0, &stream);
        World { stream, cfg, c }
    }

    fn publish(&mut self, now: i64, subject: &str, payload: &str) -> (u64, Vec<Action>) {
        let seq = self.stream.append(subject, payload.as_bytes(), now);
        let a = self.c.handle(
            now,
            Event::StreamAppended { seq, subject },
            &self.stream,
            &AlwaysInterested,
        );
        (seq, a)
    }

    fn pull(&mut self, now: i64, reply: &str, body: &str) -> Vec<Action> {
        self.c.handle(
            now,
            Event::PullRequest { reply, body: body.as_bytes() },
            &self.stream,
            &AlwaysInterested,
        )
    }

    fn ack(&mut self, now: i64, d: &Delivery, body: &str) -> Vec<Action> {
        self.c.handle(
            now,
            Event::Ack { subject: &d.reply, reply: "", body: body.as_bytes() },
            &self.stream,
            &AlwaysInterested,
        )
    }

    fn tick(&mut self, now: i64) -> Vec<Action> {
        self.c.handle(now, Event::Tick, &self.stream, &AlwaysInterested)
    }

    /// Ticks at every deadline up to `until`, collecting what happens.
    fn run_until(&mut self, until: i64) -> Vec<(i64, Action)> {
        let mut out = vec![];
        while let Some(d) = self.c.next_deadline() {
            if d > until {
                break;
            }
            for a in self.tick(d) {
                out.push((d, a));
            }
        }
        out
    }

    fn info(&mut self, now: i64) -> chorus_jetstream::consumer::api::ConsumerInfo {
        self.c.info(now, &self.stream, &AlwaysInterested).0
    }
}

fn deliveries(actions: &[Action]) -> Vec<Delivery> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn statuses(actions: &[Action]) -> Vec<StatusMsg> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Status(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn advisories(actions: &[Action]) -> Vec<AdvisoryKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Advisory(a) => Some(a.kind.clone()),
            _ => None,
        })
        .collect()
}

const EXPLICIT_PULL: &str =
    r#"{"durable_name":"C","ack_policy":"explicit","ack_wait":10000000000}"#;

#[test]
fn redelivery_after_ack_wait() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "one");
    let d = deliveries(&w.pull(T0 + MS, "in.1", "1"));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].delivery_count, 1);
    assert_eq!(w.c.next_deadline(), Some(T0 + MS + 10 * S), "ack wait timer");
    // Nothing before the deadline.
    assert!(w.tick(T0 + 10 * S).is_empty());
    assert_eq!(w.c.redelivery_queue().count(), 0);
    // At the deadline it is queued, and goes to the next pull request.
    w.tick(T0 + MS + 10 * S);
    assert_eq!(w.c.redelivery_queue().collect::<Vec<_>>(), [1]);
    let r = deliveries(&w.pull(T0 + 11 * S, "in.2", "1"));
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].stream_seq, r[0].consumer_seq, r[0].delivery_count), (1, 2, 2));
    let p = parse_ack_subject(&r[0].reply).unwrap().info;
    assert_eq!((p.delivered, p.stream_seq, p.consumer_seq), (2, 1, 2));
    let info = w.info(T0 + 11 * S);
    assert_eq!((info.num_ack_pending, info.num_redelivered), (1, 1));
    assert_eq!((info.delivered.consumer, info.delivered.stream), (2, 1));
}

#[test]
fn push_redelivers_by_itself_on_the_backoff_schedule() {
    let mut w = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"B","deliver_subject":"out","ack_policy":"explicit",
            "backoff":[1000000000,5000000000,10000000000],"max_deliver":5}"#,
    );
    assert_eq!(w.c.config().ack_wait, S, "backoff[0] becomes ack_wait");
    w.c.set_initial_interest(T0, true);
    let (_, a) = w.publish(T0, "s.a", "x");
    assert_eq!(deliveries(&a).len(), 1);
    let log = w.run_until(T0 + 60 * S);
    let times: Vec<i64> = log
        .iter()
        .filter_map(|(t, a)| matches!(a, Action::Deliver(_)).then_some((t - T0) / MS))
        .collect();
    // 1s, then 5s, then 10s (the last step repeats) after each delivery.
    assert_eq!(times, [1000, 6000, 16000, 26000]);
    let counts: Vec<u64> = log
        .iter()
        .filter_map(|(_, a)| if let Action::Deliver(d) = a { Some(d.delivery_count) } else { None })
        .collect();
    assert_eq!(counts, [2, 3, 4, 5]);
    let exceeded: Vec<_> = log
        .iter()
        .filter_map(|(t, a)| match a {
            Action::Advisory(adv) => match adv.kind {
                AdvisoryKind::MaxDeliveries { stream_seq, deliveries } => {
                    Some(((t - T0) / MS, stream_seq, deliveries))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(exceeded, [(36000, 1, 5)], "five deliveries, then the advisory");
    assert_eq!(w.c.num_ack_pending(), 0);
    assert_eq!(w.c.next_deadline(), None, "nothing left to time");
}

#[test]
fn nak_with_delay_and_plain_nak() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "one");
    let d = deliveries(&w.pull(T0, "in.1", "1")).remove(0);
    let a = w.ack(T0 + S, &d, r#"-NAK {"delay": 3000000000}"#);
    assert!(matches!(advisories(&a)[..], [AdvisoryKind::Nak { stream_seq: 1, deliveries: 1, .. }]));
    // Not redeliverable yet: a no-wait pull finds nothing.
    let s = statuses(&w.pull(T0 + 2 * S, "in.2", r#"{"batch":1,"no_wait":true}"#));
    assert_eq!((s[0].code, s[0].description.as_str()), (404, "No Messages"));
    assert_eq!(w.c.next_deadline(), Some(T0 + 4 * S), "due 3s after the nak");
    w.pull(T0 + 2 * S, "in.3", r#"{"batch":1,"expires":10000000000}"#);
    let log = w.run_until(T0 + 5 * S);
    let redelivered: Vec<_> = log
        .iter()
        .filter_map(
            |(t, a)| if let Action::Deliver(d) = a { Some((*t, d.delivery_count)) } else { None },
        )
        .collect();
    assert_eq!(redelivered, [(T0 + 4 * S, 2)]);
    // A plain nak queues it at once.
    let d2 = match &log.iter().find(|(_, a)| matches!(a, Action::Deliver(_))).unwrap().1 {
        Action::Deliver(d) => d.clone(),
        _ => unreachable!(),
    };
    w.ack(T0 + 5 * S, &d2, "-NAK");
    let again = deliveries(&w.pull(T0 + 5 * S, "in.4", "1"));
    assert_eq!(again[0].delivery_count, 3);
    // A nak for a delivery sequence beyond what was delivered is ignored.
    let mut fake = again[0].clone();
    fake.reply = fake.reply.replace(".3.1.3.", ".3.1.99.");
    assert!(advisories(&w.ack(T0 + 6 * S, &fake, "-NAK")).is_empty());
}

#[test]
fn term_stops_redelivery_with_reason() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "one");
    let d = deliveries(&w.pull(T0, "in.1", "1")).remove(0);
    let a = w.ack(T0 + S, &d, "+TERM  bad payload ");
    let adv = a
        .iter()
        .find_map(|a| if let Action::Advisory(x) = a { Some(x.clone()) } else { None })
        .unwrap();
    assert_eq!(adv.subject(), "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C");
    assert_eq!(
        String::from_utf8(adv.to_json("ID")).unwrap(),
        concat!(
            r#"{"type":"io.nats.jetstream.advisory.v1.terminated","id":"ID","#,
            r#""timestamp":"2023-11-14T22:13:21Z","stream":"S","consumer":"C","consumer_seq":1,"#,
            r#""stream_seq":1,"deliveries":1,"reason":"bad payload"}"#
        )
    );
    assert_eq!(w.c.num_ack_pending(), 0);
    assert!(w.run_until(T0 + 60 * S).is_empty(), "never redelivered");
}

#[test]
fn progress_extends_the_deadline() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "one");
    let d = deliveries(&w.pull(T0, "in.1", "1")).remove(0);
    w.ack(T0 + 8 * S, &d, "+WPI");
    assert_eq!(w.c.next_deadline(), Some(T0 + 18 * S));
    w.tick(T0 + 10 * S);
    assert_eq!(w.c.redelivery_queue().count(), 0, "still in progress at the old deadline");
    w.ack(T0 + 17 * S, &d, "+WPI");
    w.tick(T0 + 18 * S);
    assert_eq!(w.c.redelivery_queue().count(), 0);
    w.tick(T0 + 27 * S);
    assert_eq!(w.c.redelivery_queue().collect::<Vec<_>>(), [1]);
    // The store saw the progress as a new delivery time.
    assert_eq!(w.c.stored_state().pending[&1].timestamp, T0 + 17 * S);
}

#[test]
fn ack_floor_moves_over_gaps() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    for i in 0..4 {
        w.publish(T0, "s.a", &format!("m{i}"));
    }
    let d = deliveries(&w.pull(T0, "in.1", "4"));
    assert_eq!(d.len(), 4);
    // Pending counts in the ack subjects go down: 3, 2, 1, 0.
    let pend: Vec<u64> =
        d.iter().map(|d| parse_ack_subject(&d.reply).unwrap().info.pending).collect();
    assert_eq!(pend, [3, 2, 1, 0]);
    w.ack(T0 + S, &d[1], "+ACK");
    w.ack(T0 + S, &d[2], "");
    let i = w.info(T0 + S);
    assert_eq!((i.ack_floor.consumer, i.ack_floor.stream, i.num_ack_pending), (0, 0, 2));
    w.ack(T0 + S, &d[0], "+ACK");
    let i = w.info(T0 + S);
    assert_eq!((i.ack_floor.consumer, i.ack_floor.stream, i.num_ack_pending), (3, 3, 1));
    assert_eq!(w.c.ack_floor().stream, 3);
    w.ack(T0 + S, &d[3], "+ACK");
    let i = w.info(T0 + S);
    assert_eq!((i.ack_floor.consumer, i.ack_floor.stream, i.num_ack_pending), (4, 4, 0));
    // Acking again changes nothing and still confirms.
    let a = w.c.handle(
        T0 + S,
        Event::Ack { subject: &d[3].reply, reply: "ack.reply", body: b"+ACK" },
        &w.stream,
        &AlwaysInterested,
    );
    assert_eq!(a, [Action::AckReply { to: "ack.reply".into() }]);
}

#[test]
fn ack_all_acks_everything_below_and_feeds_interest_retention() {
    let mut w = World::new(RetentionPolicy::Interest, r#"{"durable_name":"A","ack_policy":"all"}"#);
    for i in 0..4 {
        w.publish(T0, "s.a", &format!("m{i}"));
    }
    let d = deliveries(&w.pull(T0, "in.1", "4"));
    let a = w.ack(T0 + S, &d[2], "+ACK");
    let mut removed: Vec<u64> = a
        .iter()
        .filter_map(|a| if let Action::AckedForRetention { seq } = a { Some(*seq) } else { None })
        .collect();
    removed.sort();
    assert_eq!(removed, [1, 2, 3]);
    assert_eq!(w.c.pending().keys().copied().collect::<Vec<_>>(), [4]);
    let i = w.info(T0 + S);
    assert_eq!((i.ack_floor.consumer, i.ack_floor.stream), (3, 3));
    // Acking an earlier one is a no-op but confirmed.
    assert!(
        !w.ack(T0 + S, &d[0], "+ACK").iter().any(|a| matches!(a, Action::AckedForRetention { .. }))
    );
}

#[test]
fn workqueue_acks_remove_messages() {
    let mut w =
        World::new(RetentionPolicy::WorkQueue, r#"{"durable_name":"W","ack_policy":"explicit"}"#);
    w.publish(T0, "s.a", "1");
    w.publish(T0, "s.b", "2");
    let d = deliveries(&w.pull(T0, "in", r#"{"batch":2}"#));
    let a = w.ack(T0, &d[1], "+ACK");
    assert!(a.contains(&Action::AckedForRetention { seq: 2 }));
    assert!(!a.contains(&Action::AckedForRetention { seq: 1 }));
    // Ack none on an interest stream hands messages back as they are delivered.
    let mut n =
        World::new(RetentionPolicy::Interest, r#"{"durable_name":"N","deliver_subject":"o"}"#);
    n.c.set_initial_interest(T0, true);
    let (_, a) = n.publish(T0, "s.a", "x");
    assert!(a.contains(&Action::AckedForRetention { seq: 1 }));
}

#[test]
fn pull_status_codes() {
    let mut w = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"P","ack_policy":"explicit","max_waiting":1,"max_batch":10,
            "max_expires":5000000000,"max_bytes":1000}"#,
    );
    let s = statuses(&w.pull(T0, "i1", r#"{"batch":1,"no_wait":true}"#));
    assert_eq!(s[0].header_bytes(), b"NATS/1.0 404 No Messages\r\n\r\n");
    let s = statuses(&w.pull(T0, "i2", r#"{"batch":11}"#));
    assert_eq!(s[0].description, "Exceeded MaxRequestBatch of 10");
    let s = statuses(&w.pull(T0, "i2", r#"{"batch":1,"expires":6000000000}"#));
    assert_eq!(s[0].description, "Exceeded MaxRequestExpires of 5s");
    let s = statuses(&w.pull(T0, "i2", r#"{"batch":1,"max_bytes":1001}"#));
    assert_eq!(s[0].description, "Exceeded MaxRequestMaxBytes of 1000");
    let s = statuses(&w.pull(
        T0,
        "i2",
        r#"{"batch":1,"expires":1000000000,"idle_heartbeat":600000000}"#,
    ));
    assert_eq!(s[0].description, "Bad Request - heartbeat value too large");
    // One request may wait; the second is refused.
    assert!(w.pull(T0, "i3", r#"{"batch":3,"expires":2000000000}"#).is_empty());
    let s = statuses(&w.pull(T0, "i4", r#"{"batch":1,"expires":2000000000}"#));
    assert_eq!((s[0].code, s[0].description.as_str()), (409, "Exceeded MaxWaiting"));
    assert_eq!(w.info(T0).num_waiting, 1);
    // It expires with what it was still owed.
    let log = w.run_until(T0 + 3 * S);
    let s: Vec<_> = log
        .iter()
        .filter_map(|(t, a)| if let Action::Status(s) = a { Some((*t, s.clone())) } else { None })
        .collect();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, T0 + 2 * S);
    assert_eq!(
        s[0].1.header_bytes(),
        b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
    );
    // max_bytes: a message that does not fit ends the request.
    w.publish(T0 + 3 * S, "s.a", "0123456789");
    let s = statuses(&w.pull(T0 + 3 * S, "i5", r#"{"batch":1,"max_bytes":5}"#));
    assert_eq!(s[0].description, "Message Size Exceeds MaxBytes");
    assert_eq!((s[0].header(PENDING_MESSAGES), s[0].header(PENDING_BYTES)), (Some("1"), Some("5")));
    // One that fits, with bytes to spare, completes the batch with a 409.
    let a = w.pull(T0 + 3 * S, "i6", r#"{"batch":1,"max_bytes":500}"#);
    let d = deliveries(&a);
    assert_eq!(d.len(), 1);
    let size = (d[0].subject.len() + d[0].reply.len() + d[0].payload.len()) as i64;
    let s = statuses(&a);
    assert_eq!(s[0].description, "Batch Completed");
    assert_eq!(s[0].header(PENDING_BYTES), Some((500 - size).to_string().as_str()));
    // A no-wait request with more asked than pending messages is told so, or served.
    w.publish(T0 + 4 * S, "s.a", "x");
    w.pull(T0 + 4 * S, "i7", r#"{"batch":1,"expires":1000000000}"#);
}

#[test]
fn no_wait_after_partial_batch_ends_with_404() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "1");
    w.publish(T0, "s.a", "2");
    let a = w.pull(T0, "in", r#"{"batch":5,"no_wait":true}"#);
    assert_eq!(deliveries(&a).len(), 2);
    assert_eq!(statuses(&a)[0].header_bytes(), b"NATS/1.0 404 No Messages\r\n\r\n");
    assert_eq!(w.c.num_waiting(), 0);
}

#[test]
fn pull_heartbeats_and_consumer_deleted() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.pull(T0, "hb", r#"{"batch":1,"expires":2000000000,"idle_heartbeat":500000000}"#);
    let log = w.run_until(T0 + 1200 * MS);
    let hbs: Vec<_> = log
        .iter()
        .filter_map(
            |(t, a)| if let Action::Status(s) = a { Some(((t - T0) / MS, s.code)) } else { None },
        )
        .collect();
    assert_eq!(hbs, [(500, 100), (1000, 100)]);
    let a = w.c.handle(T0 + 1500 * MS, Event::Delete, &w.stream, &AlwaysInterested);
    let s = statuses(&a);
    assert_eq!(s[0].header_bytes(), b"NATS/1.0 409 Consumer Deleted\r\n\r\n");
    assert!(matches!(advisories(&a)[..], [AdvisoryKind::Action { action: "delete" }]));
    assert!(w.c.is_closed());
    assert_eq!(w.c.next_deadline(), None);
}

#[test]
fn push_heartbeats_and_flow_control() {
    let mut w = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"F","deliver_subject":"out","ack_policy":"none","idle_heartbeat":1000000000,"flow_control":true}"#,
    );
    w.c.set_initial_interest(T0, true);
    let log = w.run_until(T0 + 2500 * MS);
    let hb: Vec<_> =
        log.iter()
            .filter_map(|(t, a)| {
                if let Action::Status(s) = a { Some(((t - T0) / MS, s.clone())) } else { None }
            })
            .collect();
    assert_eq!(hb.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [1000, 2000]);
    assert_eq!(
        hb[0].1.header_bytes(),
        b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n"
    );
    // A big burst trips flow control after half the initial 2 MiB window.
    let payload = "x".repeat(100 * 1024);
    let mut fc = None;
    let mut delivered = 0;
    for i in 0..30 {
        let (_, a) = w.publish(T0 + 3 * S, "s.a", &payload);
        delivered += deliveries(&a).len();
        if let Some(s) = statuses(&a).into_iter().find(|s| s.code == 100) {
            fc = Some((i, s));
        }
    }
    let (at, fc) = fc.expect("flow control request");
    assert_eq!(fc.description, "FlowControl Request");
    assert_eq!(at, 10, "sent once more than 1 MiB is unanswered");
    let fc_subject = fc.reply.clone().unwrap();
    assert!(fc_subject.starts_with("$JS.FC.S.F."));
    assert!(delivered < 30, "stalled past the window");
    // Heartbeats while stalled name the flow control subject.
    let log = w.run_until(T0 + 4 * S + 500 * MS);
    let stalled = log
        .iter()
        .find_map(|(_, a)| if let Action::Status(s) = a { Some(s.clone()) } else { None })
        .unwrap();
    assert_eq!(stalled.header(CONSUMER_STALLED), Some(fc_subject.as_str()));
    assert_eq!(stalled.header(LAST_CONSUMER), Some(delivered.to_string().as_str()));
    assert_eq!(stalled.header(LAST_STREAM), Some(delivered.to_string().as_str()));
    // Answering releases the rest.
    let a = w.c.handle(
        T0 + 5 * S,
        Event::FlowControlReply { subject: &fc_subject, header: b"" },
        &w.stream,
        &AlwaysInterested,
    );
    assert_eq!(delivered + deliveries(&a).len(), 30);
}

#[test]
fn ephemeral_pull_consumer_expires_when_idle() {
    let mut w = World::new(RetentionPolicy::Limits, r#"{"ack_policy":"explicit"}"#);
    assert_eq!(w.c.name(), "EPH");
    assert_eq!(w.c.config().inactive_threshold, 5 * S);
    // A request keeps it alive; its expiry counts as activity.
    w.pull(T0 + S, "in", r#"{"batch":1,"expires":3000000000}"#);
    let log = w.run_until(T0 + 9 * S);
    assert!(!log.iter().any(|(_, a)| matches!(a, Action::Delete)));
    let log = w.run_until(T0 + 20 * S);
    let deleted: Vec<i64> =
        log.iter().filter_map(|(t, a)| matches!(a, Action::Delete).then_some(*t)).collect();
    // Last activity at the expiry (4s), threshold 5s plus 100 ms.
    assert_eq!(deleted, [T0 + 9100 * MS]);
    assert!(w.c.is_closed());
}

#[test]
fn ephemeral_waits_for_outstanding_acks_and_push_for_interest() {
    let mut w =
        World::new(RetentionPolicy::Limits, r#"{"ack_policy":"explicit","ack_wait":20000000000}"#);
    w.publish(T0, "s.a", "x");
    deliveries(&w.pull(T0, "in", "1"));
    let log = w.run_until(T0 + 20 * S);
    assert!(!log.iter().any(|(_, a)| matches!(a, Action::Delete)), "an ack may still come");
    let log = w.run_until(T0 + 60 * S);
    let t = log.iter().find_map(|(t, a)| matches!(a, Action::Delete).then_some(*t)).unwrap();
    assert!(t >= T0 + 25 * S, "ack wait plus threshold after the delivery: {}", (t - T0) / MS);

    let mut p = World::new(RetentionPolicy::Limits, r#"{"deliver_subject":"out"}"#);
    p.c.set_initial_interest(T0, true);
    assert!(p.run_until(T0 + 60 * S).is_empty(), "bound push consumers stay");
    p.c.handle(T0 + 60 * S, Event::Interest(false), &p.stream, &AlwaysInterested);
    let log = p.run_until(T0 + 70 * S);
    assert_eq!(
        log.iter()
            .filter(|(_, a)| matches!(a, Action::Delete))
            .map(|(t, _)| *t)
            .collect::<Vec<_>>(),
        [T0 + 65 * S]
    );
}

#[test]
fn pause_until_holds_deliveries() {
    let until = Timestamp::from_unix_nanos(T0 + 10 * S);
    let mut w = World::new(
        RetentionPolicy::Limits,
        &format!(r#"{{"durable_name":"Z","ack_policy":"explicit","pause_until":"{until}"}}"#),
    );
    w.publish(T0, "s.a", "x");
    let a = w.pull(T0 + S, "in", r#"{"batch":1,"expires":30000000000}"#);
    assert!(deliveries(&a).is_empty());
    let i = w.info(T0 + S);
    assert!(i.paused);
    assert_eq!(i.pause_remaining, 9 * S);
    let log = w.run_until(T0 + 11 * S);
    assert!(
        matches!(&log[0].1, Action::Advisory(a) if matches!(a.kind, AdvisoryKind::Pause { paused: false, .. }))
    );
    assert_eq!(log[0].0, T0 + 10 * S);
    assert!(log.iter().any(|(t, a)| *t == T0 + 10 * S && matches!(a, Action::Deliver(_))));
    // CONSUMER.PAUSE again, then unpause.
    let a = w.c.handle(
        T0 + 12 * S,
        Event::Pause(Some(Timestamp::from_unix_nanos(T0 + 100 * S))),
        &w.stream,
        &AlwaysInterested,
    );
    assert!(matches!(advisories(&a)[..], [AdvisoryKind::Pause { paused: true, .. }]));
    assert_eq!(w.c.config().metadata["_nats.req.level"], "1");
    let a = w.c.handle(T0 + 13 * S, Event::Pause(None), &w.stream, &AlwaysInterested);
    assert!(matches!(advisories(&a)[..], [AdvisoryKind::Pause { paused: false, .. }]));
    assert_eq!(w.c.config().pause_until, None);
}

#[test]
fn rate_limit_and_original_replay_set_not_before() {
    let mut w = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"R","deliver_subject":"out","rate_limit_bps":8000}"#,
    );
    for _ in 0..3 {
        w.stream.append("s.a", &[b'x'; 500], T0);
    }
    // The burst is the largest message the stream takes (or the max payload).
    let ctx = ConsumerContext::for_stream(&w.cfg, 600);
    w.c = Consumer::create("R", w.c.config().clone(), Timestamp::ZERO, ctx, T0, &w.stream);
    w.c.set_initial_interest(T0, true);
    assert_eq!(w.c.next_deadline(), Some(1), "a bound push consumer starts at once");
    let mut d = deliveries(&w.tick(T0));
    // 1000 bytes/s: the first message fits the burst, the second waits for its bytes, and
    // the loop stops there until the second is due.
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].not_before, T0);
    assert!(d[1].not_before > d[0].not_before);
    assert_eq!(w.c.next_deadline(), Some(d[1].not_before));
    assert!(deliveries(&w.tick(d[1].not_before - 1)).is_empty());
    d.extend(deliveries(&w.tick(d[1].not_before)));
    assert_eq!(d.len(), 3);
    let size = (d[1].subject.len() + d[1].reply.len() + d[1].payload.len()) as i64;
    assert_eq!(d[2].not_before - d[1].not_before, size * MS, "{size} bytes at 1000 B/s");

    let mut r = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"O","deliver_subject":"out","replay_policy":"original"}"#,
    );
    assert_eq!(r.c.config().replay_policy, ReplayPolicy::Original);
    r.stream.append("s.a", b"1", T0 - 10 * S);
    r.stream.append("s.a", b"2", T0 - 7 * S);
    r.stream.append("s.a", b"3", T0 - 7 * S);
    let mut r2 = World {
        c: {
            let ctx = ConsumerContext::for_stream(&r.cfg, 1 << 20);
            Consumer::create(
                "O",
                r.c.config().clone(),
                Timestamp::from_unix_nanos(T0),
                ctx,
                T0,
                &r.stream,
            )
        },
        ..r
    };
    r2.c.set_initial_interest(T0, true);
    let mut d = deliveries(&r2.tick(T0));
    assert_eq!(d.iter().map(|d| d.not_before - T0).collect::<Vec<_>>(), [0, 3 * S]);
    d.extend(deliveries(&r2.tick(T0 + 3 * S)));
    assert_eq!(d.iter().map(|d| d.not_before - T0).collect::<Vec<_>>(), [0, 3 * S, 3 * S]);
}

#[test]
fn start_positions() {
    let cfg = stream_cfg(RetentionPolicy::Limits);
    let mut s = VecStream::new();
    s.append("s.a", b"1", T0);
    s.append("s.b", b"2", T0 + S);
    s.append("s.a", b"3", T0 + 2 * S);
    s.append("s.c", b"4", T0 + 3 * S);
    let start = |json: &str| {
        let (name, config) = checked(
            &cfg,
            &format!(r#"{{"stream_name":"S","config":{json}}}"#),
            "$JS.API.CONSUMER.CREATE.S.X",
        );
        let mut c = Consumer::create(
            &name,
            config,
            Timestamp::ZERO,
            ConsumerContext::for_stream(&cfg, 1 << 20),
            T0,
            &s,
        );
        c.set_initial_interest(T0, true);
        let a = c.handle(T0, Event::Tick, &s, &AlwaysInterested);
        (deliveries(&a).iter().map(|d| d.stream_seq).collect::<Vec<_>>(), c)
    };
    let push = r#""durable_name":"X","deliver_subject":"o""#;
    assert_eq!(start(&format!("{{{push}}}")).0, [1, 2, 3, 4]);
    assert_eq!(start(&format!(r#"{{{push},"deliver_policy":"last"}}"#)).0, [4]);
    assert_eq!(
        start(&format!(r#"{{{push},"deliver_policy":"last","filter_subject":"s.a"}}"#)).0,
        [3]
    );
    assert_eq!(start(&format!(r#"{{{push},"deliver_policy":"new"}}"#)).0, Vec::<u64>::new());
    assert_eq!(
        start(&format!(r#"{{{push},"deliver_policy":"by_start_sequence","opt_start_seq":3}}"#)).0,
        [3, 4]
    );
    let t = Timestamp::from_unix_nanos(T0 + S);
    assert_eq!(
        start(&format!(r#"{{{push},"deliver_policy":"by_start_time","opt_start_time":"{t}"}}"#)).0,
        [2, 3, 4]
    );
    let (seqs, c) =
        start(&format!(r#"{{{push},"deliver_policy":"last_per_subject","filter_subject":"s.*"}}"#));
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(c.config().deliver_policy, DeliverPolicy::LastPerSubject);
    // Headers only: no payload, its size in a header.
    let (_, mut c) = start(&format!(r#"{{{push},"headers_only":true,"deliver_policy":"last"}}"#));
    let _ = &mut c;
    let mut s2 = s.clone();
    let seq = s2.append("s.a", b"hello", T0);
    let a = c.handle(T0, Event::StreamAppended { seq, subject: "s.a" }, &s2, &AlwaysInterested);
    let d = deliveries(&a);
    assert!(d[0].payload.is_empty());
    let h = String::from_utf8(d[0].header.clone().unwrap().to_vec()).unwrap();
    assert_eq!(h, format!("NATS/1.0\r\n{MSG_SIZE}: 5\r\n\r\n"));
}

#[test]
fn removed_pending_message_is_terminated() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    w.publish(T0, "s.a", "1");
    w.publish(T0, "s.a", "2");
    deliveries(&w.pull(T0, "in", "1"));
    w.stream.remove(1);
    let a = w.c.handle(
        T0 + S,
        Event::StreamRemoved { seq: 1, subject: "s.a" },
        &w.stream,
        &AlwaysInterested,
    );
    assert!(
        matches!(&advisories(&a)[..], [AdvisoryKind::Terminated { stream_seq: 1, reason, .. }] if reason == "Unacknowledged message was deleted")
    );
    assert_eq!(w.c.num_ack_pending(), 0);
    // A purge moves everything past the purged range.
    w.stream.purge();
    w.c.handle(
        T0 + 2 * S,
        Event::StreamPurged { first_seq: 0, last_seq: 2, wider: false },
        &w.stream,
        &AlwaysInterested,
    );
    let i = w.info(T0 + 2 * S);
    assert_eq!((i.num_pending, i.ack_floor.stream, i.num_ack_pending), (0, 2, 0));
    w.publish(T0 + 3 * S, "s.a", "3");
    assert_eq!(deliveries(&w.pull(T0 + 3 * S, "in2", "1"))[0].stream_seq, 3);
}

#[test]
fn snapshot_restore_round_trip() {
    let mut w = World::new(RetentionPolicy::Limits, EXPLICIT_PULL);
    for i in 0..4 {
        w.publish(T0, "s.a", &format!("m{i}"));
    }
    let d = deliveries(&w.pull(T0, "in", "3"));
    w.ack(T0 + S, &d[0], "+ACK");
    w.ack(T0 + S, &d[2], "-NAK");
    deliveries(&w.pull(T0 + S, "in2", "1")); // seq 3 again
    let before = w.info(T0 + 2 * S);
    let blob = w.c.snapshot().encode();
    let snap = ConsumerSnapshot::decode(&blob).unwrap();
    assert_eq!(snap, w.c.snapshot());
    assert_eq!(snap.state.pending.keys().copied().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(snap.state.redelivered.get(&3), Some(&1));
    // Restored right away: same numbers.
    let ctx = ConsumerContext::for_stream(&w.cfg, 1 << 20);
    let (mut r, acts) = Consumer::restore(snap.clone(), ctx.clone(), T0 + 2 * S, &w.stream);
    assert!(acts.is_empty());
    let after = r.info(T0 + 2 * S, &w.stream, &AlwaysInterested).0;
    let nums = |i: &chorus_jetstream::consumer::api::ConsumerInfo| {
        (
            (i.delivered.consumer, i.delivered.stream),
            (i.ack_floor.consumer, i.ack_floor.stream),
            (i.num_ack_pending, i.num_redelivered, i.num_pending),
        )
    };
    assert_eq!(nums(&after), nums(&before));
    assert_eq!(nums(&after), ((4, 3), (1, 1), (2, 1, 1)));
    // Activity times are not persisted (nats-server does not keep them either).
    assert_eq!(after.delivered.last, None);
    // Restored much later: what timed out while down comes back first, then the rest.
    let (mut r, _) = Consumer::restore(snap, ctx, T0 + 100 * S, &w.stream);
    let d = deliveries(&r.handle(
        T0 + 100 * S,
        Event::PullRequest { reply: "in3", body: b"3" },
        &w.stream,
        &AlwaysInterested,
    ));
    assert_eq!(
        d.iter().map(|d| (d.stream_seq, d.delivery_count)).collect::<Vec<_>>(),
        [(2, 2), (3, 3), (4, 1)]
    );
}

/// The ChoirOS AGENT_POOL consumer as the `nats` CLI creates it: a command is delivered,
/// naked twice, and acked on its third delivery; another command runs out of deliveries.
#[test]
fn choiros_agent_pool() {
    let mut cfg = stream_cfg(RetentionPolicy::Limits);
    cfg.name = "USER_EVENTS".into();
    cfg.subjects = vec!["choiros.user.>".into()];
    let body = concat!(
        r#"{"stream_name":"USER_EVENTS","config":{"ack_policy":"explicit","deliver_policy":"all","#,
        r#""durable_name":"AGENT_POOL","name":"AGENT_POOL","filter_subject":"choiros.user.*.action.COMMAND","#,
        r#""max_deliver":3,"replay_policy":"instant","num_replicas":0,"pause_until":"0001-01-01T00:00:00Z"},"#,
        r#""action":""}"#
    );
    let (name, config) = checked(
        &cfg,
        body,
        "$JS.API.CONSUMER.CREATE.USER_EVENTS.AGENT_POOL.choiros.user.*.action.COMMAND",
    );
    assert_eq!((config.ack_wait, config.max_ack_pending, config.max_waiting), (30 * S, 1000, 512));
    assert_eq!(config.ack_policy, AckPolicy::Explicit);
    let mut stream = VecStream::new();
    let ctx = ConsumerContext::for_stream(&cfg, 1 << 20);
    let mut c = Consumer::create(&name, config, Timestamp::from_unix_nanos(T0), ctx, T0, &stream);
    let i = &AlwaysInterested;
    let publish = |c: &mut Consumer, s: &mut VecStream, subject: &str| {
        let seq = s.append(subject, b"cmd", T0);
        c.handle(T0, Event::StreamAppended { seq, subject }, s, i);
    };
    publish(&mut c, &mut stream, "choiros.user.u1.action.COMMAND");
    publish(&mut c, &mut stream, "choiros.user.u1.file.saved");
    publish(&mut c, &mut stream, "choiros.user.u2.action.COMMAND");
    let mut t = T0;
    let pull = |c: &mut Consumer, s: &VecStream, t: i64| {
        deliveries(&c.handle(
            t,
            Event::PullRequest {
                reply: "agent.inbox",
                body: br#"{"batch":1,"expires":1000000000}"#,
            },
            s,
            i,
        ))
    };
    let ack = |c: &mut Consumer, s: &VecStream, t: i64, d: &Delivery, body: &str| {
        c.handle(t, Event::Ack { subject: &d.reply, reply: "", body: body.as_bytes() }, s, i)
    };
    for (n, body) in ["-NAK", "-NAK", "+ACK"].iter().enumerate() {
        t += S;
        let d = pull(&mut c, &stream, t);
        assert_eq!((d[0].stream_seq, d[0].delivery_count), (1, n as u64 + 1));
        assert_eq!(d[0].subject, "choiros.user.u1.action.COMMAND");
        ack(&mut c, &stream, t, &d[0], body);
    }
    let info = c.info(t, &stream, i).0;
    assert_eq!((info.num_ack_pending, info.num_redelivered, info.num_pending), (0, 0, 1));
    assert_eq!((info.ack_floor.consumer, info.ack_floor.stream), (3, 1));
    // The second command: three deliveries, three naks; the next attempt is the advisory.
    for n in 0..3 {
        t += S;
        let d = pull(&mut c, &stream, t);
        assert_eq!((d[0].stream_seq, d[0].delivery_count), (3, n + 1));
        ack(&mut c, &stream, t, &d[0], "-NAK");
    }
    t += S;
    let a = c.handle(
        t,
        Event::PullRequest { reply: "agent.inbox", body: br#"{"batch":1,"expires":1000000000}"# },
        &stream,
        i,
    );
    assert!(deliveries(&a).is_empty(), "the file event is not for this consumer");
    let adv = a
        .iter()
        .find_map(|a| if let Action::Advisory(x) = a { Some(x.clone()) } else { None })
        .unwrap();
    assert_eq!(adv.subject(), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.USER_EVENTS.AGENT_POOL");
    let json: serde_json::Value = serde_json::from_slice(&adv.to_json("X")).unwrap();
    assert_eq!(json["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!((json["stream_seq"].as_u64(), json["deliveries"].as_u64()), (Some(3), Some(3)));
    let info = c.info(t, &stream, i).0;
    assert_eq!((info.num_ack_pending, info.num_redelivered, info.num_pending), (0, 1, 0));
    assert_eq!((info.delivered.consumer, info.delivered.stream), (6, 3));
    // The request then times out owing one message.
    let log: Vec<Action> = c.handle(t + S, Event::Tick, &stream, i);
    assert_eq!(statuses(&log)[0].header(PENDING_MESSAGES), Some("1"));
}

/// SYNC_WORKER: only file events, unlimited deliveries.
#[test]
fn choiros_sync_worker() {
    let mut cfg = stream_cfg(RetentionPolicy::Limits);
    cfg.name = "USER_EVENTS".into();
    cfg.subjects = vec!["choiros.user.>".into()];
    let body = concat!(
        r#"{"stream_name":"USER_EVENTS","config":{"ack_policy":"explicit","deliver_policy":"all","#,
        r#""durable_name":"SYNC_WORKER","name":"SYNC_WORKER","filter_subject":"choiros.user.*.file.*","#,
        r#""max_deliver":-1,"replay_policy":"instant","num_replicas":0,"pause_until":"0001-01-01T00:00:00Z"},"#,
        r#""action":""}"#
    );
    let (name, config) = checked(
        &cfg,
        body,
        "$JS.API.CONSUMER.CREATE.USER_EVENTS.SYNC_WORKER.choiros.user.*.file.*",
    );
    assert_eq!(config.max_deliver, -1);
    let mut stream = VecStream::new();
    stream.append("choiros.user.u1.action.COMMAND", b"c", T0);
    stream.append("choiros.user.u1.file.saved", b"f", T0);
    stream.append("choiros.user.u1.file", b"not a file event", T0);
    let ctx = ConsumerContext::for_stream(&cfg, 1 << 20);
    let mut c = Consumer::create(&name, config, Timestamp::ZERO, ctx, T0, &stream);
    assert_eq!(c.num_pending(), 1);
    let a = c.handle(
        T0,
        Event::PullRequest { reply: "w", body: br#"{"batch":5,"no_wait":true}"# },
        &stream,
        &AlwaysInterested,
    );
    assert_eq!(deliveries(&a).iter().map(|d| d.stream_seq).collect::<Vec<_>>(), [2]);
    assert_eq!(statuses(&a)[0].code, 404);
}

#[test]
fn reset_starts_over_without_pending_or_redelivery_counts() {
    let mut w = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"R","deliver_subject":"out","ack_policy":"explicit","ack_wait":10000000000}"#,
    );
    w.c.set_initial_interest(T0, true);
    let mut d = Vec::new();
    for s in ["s.a", "s.b", "s.c"] {
        d.extend(deliveries(&w.publish(T0, s, s).1));
    }
    assert_eq!(d.len(), 3);
    w.ack(T0 + MS, &d[0], "+ACK");
    // s.b was naked and redelivered: it has a redelivery count.
    w.ack(T0 + MS, &d[1], "-NAK");
    assert_eq!(w.c.redelivered().get(&2), Some(&1));
    // Back to just above the ack floor: s.b and s.c again, as first deliveries, consumer
    // sequences from 1.
    let (seq, a) = w.c.reset(T0 + 2 * MS, 0, &w.stream, &AlwaysInterested).unwrap();
    assert_eq!(seq, 2);
    let again = deliveries(&a);
    let got: Vec<_> =
        again.iter().map(|d| (d.stream_seq, d.consumer_seq, d.delivery_count)).collect();
    assert_eq!(got, [(2, 1, 1), (3, 2, 1)]);
    let i = w.info(T0 + 3 * MS);
    assert_eq!((i.ack_floor.stream, i.ack_floor.consumer, i.num_ack_pending), (1, 0, 2));
    assert_eq!(i.num_redelivered, 0);
    // A reset to a sequence past the stream waits for it.
    let (seq, a) = w.c.reset(T0 + 4 * MS, 10, &w.stream, &AlwaysInterested).unwrap();
    assert_eq!((seq, deliveries(&a).len()), (10, 0));
    assert_eq!(w.info(T0 + 5 * MS).num_pending, 0);

    // Policies that do not allow a given sequence.
    let mut n = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"N","ack_policy":"explicit","deliver_policy":"new"}"#,
    );
    assert_eq!(n.c.reset(T0, 1, &n.stream, &AlwaysInterested).unwrap_err(), "not allowed");
    assert!(n.c.reset(T0, 0, &n.stream, &AlwaysInterested).is_ok(), "the ack floor always is");
    let mut b = World::new(
        RetentionPolicy::Limits,
        r#"{"durable_name":"B","ack_policy":"explicit","deliver_policy":"by_start_sequence","opt_start_seq":3}"#,
    );
    assert_eq!(b.c.reset(T0, 2, &b.stream, &AlwaysInterested).unwrap_err(), "below start seq");
    assert_eq!(b.c.reset(T0, 3, &b.stream, &AlwaysInterested).unwrap().0, 3);
}
