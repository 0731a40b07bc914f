//! JetStream consumer throughput: how fast a consumer drains a stream.
//!
//! Kinds:
//! - `fetch`: a durable pull consumer with explicit acks, read with the client's continuous
//!   pull (`messages()`, batches of `batch`), every message acked (not awaited one by one).
//! - `fetch-noack`: the same with `ack_policy: none`.
//! - `ordered`: the client's ordered consumer (pull based in async-nats).
//! - `push`: a push consumer on a deliver subject, `ack_policy: none`, flow control on.
//! - `workqueue`: end to end through a workqueue stream: a publisher (PubAck window 256) and a
//!   consumer acking each message run at the same time; done when every message was consumed
//!   and the stream is empty again.
//!
//! Except for `workqueue`, the stream is filled first (not timed); the rate is messages over
//! the time from creating the consumer to the last message received. Every run checks that
//! each message arrived exactly once and in order.
//!
//! With `replicas` above 1 the URLs are a cluster's nodes: the stream (and so its consumer) is
//! replicated, and the client fills and drains it through a node that does not lead it (see
//! `cluster`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::consumer::{AckPolicy, pull, push};
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::cluster;
use crate::jspub::wait_jetstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fetch,
    FetchNoAck,
    Ordered,
    Push,
    WorkQueue,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "fetch" => Kind::Fetch,
            "fetch-noack" => Kind::FetchNoAck,
            "ordered" => Kind::Ordered,
            "push" => Kind::Push,
            "workqueue" => Kind::WorkQueue,
            _ => bail!("--kind {s:?}: expected fetch, fetch-noack, ordered, push or workqueue"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Fetch => "fetch",
            Kind::FetchNoAck => "fetch-noack",
            Kind::Ordered => "ordered",
            Kind::Push => "push",
            Kind::WorkQueue => "workqueue",
        }
    }
}

#[derive(Debug)]
pub struct Opts {
    /// One server, or with `replicas` above 1 every node of the cluster.
    pub urls: Vec<String>,
    pub kind: Kind,
    pub storage: stream::StorageType,
    pub size: usize,
    pub count: u64,
    pub batch: usize,
    pub max_secs: u64,
    pub replicas: usize,
}

const STREAM: &str = "BENCHC";
const SUBJECT: &str = "benchc.x";
const WINDOW: usize = 256;

pub async fn run(o: Opts) -> Result<serde_json::Value> {
    let retention = if o.kind == Kind::WorkQueue {
        stream::RetentionPolicy::WorkQueue
    } else {
        stream::RetentionPolicy::Limits
    };
    let cfg = stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECT.into()],
        storage: o.storage,
        retention,
        num_replicas: o.replicas,
        ..Default::default()
    };
    let timeout = Duration::from_secs(30);
    let mut placed = None;
    let (client, js, st) = if o.replicas > 1 {
        // A replicated stream, filled and drained through a node that does not lead it;
        // the first message retried until the stream's subjects reached that node.
        let p = cluster::place(&o.urls, cfg, timeout).await?;
        let deadline = Instant::now() + cluster::READY;
        let one = Bytes::from(vec![b'x'; o.size]);
        let ack = cluster::publish_retry(&p.js, SUBJECT, &one, "first", deadline).await?;
        ensure!(ack.sequence == 1, "the first PubAck has sequence {}", ack.sequence);
        let t = (p.nodes[p.publisher].client.clone(), p.js.clone(), p.stream.clone());
        placed = Some(p);
        t
    } else {
        let client = async_nats::connect(&o.urls[0]).await.context("connecting")?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(timeout);
        wait_jetstream(&js).await?;
        let st = js.create_stream(cfg).await.context("creating the stream")?;
        (client, js, st)
    };
    let first = u64::from(placed.is_some());
    let payload = Bytes::from(vec![b'x'; o.size]);
    if let (Some(cfg), Some(_)) = (pull_config(o.kind), &placed) {
        // A replicated durable consumer is led by one node, and pull requests from the client's
        // node meet no responders until its interest arrived there: created (and led) before
        // the fill, it has had the time. Creating it again below takes the same consumer.
        let c = st.create_consumer(cfg).await.context("creating the consumer")?;
        consumer_leader(c).await?;
    }
    if o.kind != Kind::WorkQueue {
        publish(&js, &payload, o.count - first.min(o.count)).await.context("filling the stream")?;
    }

    let cap = Duration::from_secs(o.max_secs);
    let start = Instant::now();
    let got = match o.kind {
        Kind::Fetch | Kind::FetchNoAck => {
            let ack = o.kind == Kind::Fetch;
            let cfg = pull_config(o.kind).expect("a pull consumer");
            let c = st.create_consumer(cfg).await.context("creating the consumer")?;
            let msgs = c.stream().max_messages_per_batch(o.batch).messages().await?;
            drain(msgs, o.count, ack, cap).await?
        }
        Kind::Ordered => {
            let c = st
                .create_consumer(pull::OrderedConfig::default())
                .await
                .context("creating the ordered consumer")?;
            drain(c.messages().await?, o.count, false, cap).await?
        }
        Kind::Push => {
            let c = st
                .create_consumer(push::Config {
                    durable_name: Some("benchpush".into()),
                    deliver_subject: client.new_inbox(),
                    ack_policy: AckPolicy::None,
                    flow_control: true,
                    idle_heartbeat: Duration::from_secs(5),
                    ..Default::default()
                })
                .await
                .context("creating the push consumer")?;
            drain(c.messages().await?, o.count, false, cap).await?
        }
        Kind::WorkQueue => {
            let cfg = pull_config(o.kind).expect("a pull consumer");
            let c = st.create_consumer(cfg).await.context("creating the consumer")?;
            let msgs = c.stream().max_messages_per_batch(o.batch).messages().await?;
            let consumer = tokio::spawn(drain(msgs, o.count, true, cap));
            let pjs = js.clone();
            let p = payload.clone();
            let n = o.count;
            publish(&pjs, &p, n - first.min(n)).await.context("publishing")?;
            consumer.await.context("consumer task")??
        }
    };
    let secs = start.elapsed().as_secs_f64();
    if o.kind == Kind::WorkQueue {
        // Acks are not awaited one by one; the last ones may still be on their way (a
        // server that fsyncs every removal can take a while).
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut st = js.get_stream(STREAM).await?;
        loop {
            let left = st.info().await?.state.messages;
            if left == 0 {
                break;
            }
            ensure!(Instant::now() < deadline, "{left} messages left in the workqueue");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut out = json!({
        "mode": "jsconsume",
        "kind": o.kind.name(),
        "storage": format!("{:?}", o.storage).to_lowercase(),
        "size": o.size,
        "requested": o.count,
        "received": got,
        "capped": got < o.count,
        "secs": secs,
        "msgs_per_sec": got as f64 / secs.max(1e-9),
        "replicas": o.replicas,
    });
    if let Some(p) = &placed {
        out["leader"] = json!(p.leader);
        out["publisher"] = json!(p.publisher_name());
    }
    Ok(out)
}

/// The durable pull consumer of `kind`, if it reads through one.
fn pull_config(kind: Kind) -> Option<pull::Config> {
    let (name, ack) = match kind {
        Kind::Fetch => ("bench", true),
        Kind::FetchNoAck => ("bench", false),
        Kind::WorkQueue => ("wq", true),
        Kind::Ordered | Kind::Push => return None,
    };
    Some(pull::Config {
        durable_name: Some(name.into()),
        ack_policy: if ack { AckPolicy::Explicit } else { AckPolicy::None },
        ..Default::default()
    })
}

/// Until a replicated consumer names its leader.
async fn consumer_leader(mut c: jetstream::consumer::PullConsumer) -> Result<String> {
    let deadline = Instant::now() + cluster::READY;
    loop {
        let last = match c.info().await {
            Ok(info) => match info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                Some(l) if !l.is_empty() => return Ok(l),
                _ => "no leader".to_string(),
            },
            Err(e) => e.to_string(),
        };
        ensure!(Instant::now() < deadline, "the consumer has no leader: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `n` messages with up to [`WINDOW`] PubAcks in flight.
async fn publish(js: &jetstream::Context, payload: &Bytes, n: u64) -> Result<()> {
    let mut inflight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if inflight.len() >= WINDOW {
            inflight.pop_front().expect("not empty").await.with_context(|| format!("ack {i}"))?;
        }
        inflight.push_back(js.publish(SUBJECT, payload.clone()).await?);
    }
    while let Some(f) = inflight.pop_front() {
        f.await.context("PubAck")?;
    }
    Ok(())
}

/// Reads until `count` messages arrived (or `cap` passed), checking stream sequences are
/// 1, 2, 3, ... with no gap or repeat; acks each one when asked to.
async fn drain<S, E>(mut msgs: S, count: u64, ack: bool, cap: Duration) -> Result<u64>
where
    S: futures::Stream<Item = Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let mut got = 0u64;
    while got < count {
        let left = cap.saturating_sub(start.elapsed());
        let Ok(next) = tokio::time::timeout(left, msgs.next()).await else { break };
        let m = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => bail!("after {got} messages: {e}"),
            None => bail!("the message stream ended after {got} messages"),
        };
        let seq = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
        ensure!(seq == got + 1, "stream sequence {seq} after {got} messages");
        if ack {
            m.ack().await.map_err(|e| anyhow::anyhow!("ack {seq}: {e}"))?;
        }
        got += 1;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for k in ["fetch", "fetch-noack", "ordered", "push", "workqueue"] {
            assert_eq!(Kind::parse(k).unwrap().name(), k);
        }
        assert!(Kind::parse("pull").is_err());
    }
}
