//! Failover of a replicated stream: how long publishing stops when the stream's leader dies.
//!
//! Creates the stream (file storage, `replicas` copies) on a cluster, finds its leader and
//! publishes through a node that does not lead it (see `cluster`): one message at a time, each
//! with its own `Nats-Msg-Id`, every attempt waiting `attempt` for its PubAck and retried with
//! the same id on a time-out or an error (the server drops a repeat it already stored). After
//! `warmup` acknowledged messages it prints `ready leader=<name> publisher=<name>` on stderr
//! and keeps publishing; the harness then kills the leader (SIGKILL) and writes
//! `killed <unix time in ns>` on stdin, taken just before the kill.
//!
//! The figure is the time from the kill to the first PubAck of an attempt sent after it (an
//! attempt sent before can only be answered by the dead leader, before it died). Publishing
//! goes on until `after` messages were acknowledged after the kill; the stream must then hold
//! exactly the acknowledged messages (none lost, none stored twice) and name a new leader.

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream;
use bytes::Bytes;
use serde_json::json;

use crate::cluster;

#[derive(Debug)]
pub struct Opts {
    pub urls: Vec<String>,
    pub stream: String,
    pub subject: String,
    pub size: usize,
    pub replicas: usize,
    pub warmup: u64,
    pub after: u64,
    pub attempt: Duration,
    /// How long to wait for the kill notice, and then for the first PubAck after it.
    pub wait_secs: u64,
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Why attempts failed, by kind.
#[derive(Debug, Default)]
struct Failures {
    timed_out: u64,
    no_responders: u64,
    other: u64,
    first_other: Option<String>,
}

pub async fn run(o: Opts) -> Result<serde_json::Value> {
    let cfg = stream::Config {
        name: o.stream.clone(),
        subjects: vec![o.subject.clone()],
        storage: stream::StorageType::File,
        num_replicas: o.replicas,
        ..Default::default()
    };
    let placed = cluster::place(&o.urls, cfg, o.attempt).await?;
    let js = placed.js.clone();
    let payload = Bytes::from(vec![b'x'; o.size]);

    let mut last_seq = 0u64;
    let deadline = Instant::now() + cluster::READY;
    for i in 0..o.warmup {
        let id = format!("m{i}");
        let ack = cluster::publish_retry(&js, &o.subject, &payload, &id, deadline).await?;
        ensure!(ack.sequence == last_seq + 1, "warm-up {id} has sequence {}", ack.sequence);
        last_seq = ack.sequence;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u128>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(ns) = line.trim().strip_prefix("killed ").and_then(|v| v.parse().ok()) {
                let _ = tx.send(ns);
                break;
            }
        }
    });
    eprintln!("ready leader={} publisher={}", placed.leader, placed.publisher_name());

    let wait = Duration::from_secs(o.wait_secs);
    let ready_at = Instant::now();
    let mut kill_ns: Option<u128> = None;
    let mut first_after_ns: Option<u128> = None;
    let mut last_before_ns: u128 = now_ns();
    let mut acked_after = 0u64;
    let mut duplicates = 0u64;
    let mut attempts = 0u64;
    let mut fail = Failures::default();
    let mut i = o.warmup;
    while acked_after < o.after {
        let id = format!("m{i}");
        loop {
            if kill_ns.is_none() {
                kill_ns = rx.try_recv().ok();
            }
            match kill_ns {
                None if ready_at.elapsed() > wait => {
                    bail!("no kill notice on stdin within {wait:?}")
                }
                Some(k) if first_after_ns.is_none() && now_ns() > k + wait.as_nanos() => {
                    bail!("no PubAck within {wait:?} of the kill ({fail:?})")
                }
                _ => {}
            }
            let sent_ns = now_ns();
            attempts += 1;
            let attempt = async {
                js.send_publish(
                    o.subject.clone(),
                    PublishMessage::build().payload(payload.clone()).message_id(&id),
                )
                .await?
                .await
            };
            match attempt.await {
                Ok(ack) => {
                    let got_ns = now_ns();
                    ensure!(
                        ack.stream == o.stream,
                        "PubAck for {id} names stream {:?}",
                        ack.stream
                    );
                    ensure!(
                        ack.sequence == last_seq + 1,
                        "PubAck for {id} has sequence {} after {last_seq}{}",
                        ack.sequence,
                        if ack.duplicate { " (duplicate)" } else { "" }
                    );
                    last_seq = ack.sequence;
                    duplicates += u64::from(ack.duplicate);
                    if kill_ns.is_none() {
                        kill_ns = rx.try_recv().ok();
                    }
                    match kill_ns {
                        Some(k) if sent_ns >= k => {
                            first_after_ns.get_or_insert(got_ns);
                            acked_after += 1;
                        }
                        _ => last_before_ns = got_ns,
                    }
                    break;
                }
                Err(e) => {
                    match e.kind() {
                        PublishErrorKind::TimedOut => fail.timed_out += 1,
                        PublishErrorKind::StreamNotFound => fail.no_responders += 1,
                        _ => {
                            fail.other += 1;
                            fail.first_other.get_or_insert_with(|| e.to_string());
                        }
                    }
                    // An immediate answer (no responders while no node leads the stream):
                    // a short pause, not a busy loop.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        i += 1;
    }
    let kill = kill_ns.context("no kill notice")?;
    let first = first_after_ns.context("no PubAck after the kill")?;
    let acked = i;

    // The stream on the survivors: exactly the acknowledged messages, and a new leader.
    let mut st = placed.stream.clone();
    let deadline = Instant::now() + cluster::READY;
    let info = loop {
        match st.info().await {
            Ok(info) => break info.clone(),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context("stream info after the failover"),
        }
    };
    let new_leader = info.cluster.as_ref().and_then(|c| c.leader.clone()).unwrap_or_default();
    ensure!(
        info.state.messages == acked,
        "stream {} holds {} messages after {acked} acknowledged (lost or stored twice)",
        o.stream,
        info.state.messages
    );
    ensure!(
        new_leader != placed.leader,
        "the stream still names {new_leader:?} as leader after it was killed"
    );
    let ms = |ns: u128| ns as f64 / 1e6;
    Ok(json!({
        "mode": "jsfailover",
        "replicas": o.replicas,
        "size": o.size,
        "leader": placed.leader,
        "publisher": placed.publisher_name(),
        "new_leader": new_leader,
        "failover_ms": ms(first.saturating_sub(kill)),
        "last_ack_before_kill_ms": ms(kill.saturating_sub(last_before_ns)),
        "attempt_ms": o.attempt.as_secs_f64() * 1e3,
        "acked": acked,
        "acked_after_kill": acked_after,
        "duplicates": duplicates,
        "attempts": attempts,
        "timed_out": fail.timed_out,
        "no_responders": fail.no_responders,
        "other_errors": fail.other,
        "first_other_error": fail.first_other,
    }))
}
