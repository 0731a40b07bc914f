//! JetStream publish throughput: create a stream with the requested storage, publish to it and
//! count the PubAcks. `sync` awaits each PubAck before the next publish (one message in flight,
//! so the figure is bounded by the server's store-and-acknowledge latency); `async` keeps up to
//! `window` PubAcks outstanding, as `nats bench js pub --batch` does, so a server that commits
//! in groups can amortise one sync over many messages.
//!
//! The publish phase stops at `count` messages or after `max_secs`, whichever comes first: a
//! server that fsyncs every message one by one (nats-server with `sync_interval: always`)
//! would otherwise need many minutes for the counts the others finish in seconds. The rate is
//! acknowledged messages over the time from the first publish to the last PubAck, and the
//! stream must then hold exactly the acknowledged messages. `sync` also reports each
//! publish's latency (send to PubAck, p50/p99).
//!
//! With `replicas` above 1 the URLs are a cluster's nodes: the stream is replicated, and the
//! client publishes through a node that does not lead it (see `cluster`), after one untimed
//! warm-up publish (the stream then holds it too).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use serde_json::json;

use crate::cluster;
use crate::micros;
use crate::reqrep::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Async,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "sync" => Ok(Self::Sync),
            "async" => Ok(Self::Async),
            _ => bail!("--mode {s:?}: expected sync or async"),
        }
    }
}

pub fn storage(s: &str) -> Result<stream::StorageType> {
    match s {
        "file" => Ok(stream::StorageType::File),
        "memory" => Ok(stream::StorageType::Memory),
        _ => bail!("--storage {s:?}: expected file or memory"),
    }
}

#[derive(Debug)]
pub struct Opts {
    /// One server, or with `replicas` above 1 every node of the cluster.
    pub urls: Vec<String>,
    pub stream: String,
    pub subject: String,
    pub storage: stream::StorageType,
    pub size: usize,
    pub count: u64,
    pub mode: Mode,
    pub window: usize,
    pub max_secs: u64,
    pub replicas: usize,
}

pub async fn run(o: Opts) -> Result<serde_json::Value> {
    let cfg = stream::Config {
        name: o.stream.clone(),
        subjects: vec![o.subject.clone()],
        storage: o.storage,
        num_replicas: o.replicas,
        ..Default::default()
    };
    let payload = Bytes::from(vec![b'x'; o.size]);
    // Every outstanding PubAck shares this limit; a window of acks behind per-message fsyncs
    // can take well over the default 5 s.
    let ack_timeout = Duration::from_secs(30);
    let mut placed = None;
    let mut last_seq: u64 = 0;
    let (js, mut st) = if o.replicas > 1 {
        // A replicated stream: publish through a node that does not lead it. One untimed
        // publish first, retried until the stream's subjects reached that node.
        let p = cluster::place(&o.urls, cfg, ack_timeout).await?;
        let deadline = Instant::now() + cluster::READY;
        let ack = cluster::publish_retry(&p.js, &o.subject, &payload, "warmup", deadline).await?;
        ensure!(ack.sequence == 1, "the warm-up PubAck has sequence {}", ack.sequence);
        last_seq = 1;
        let pair = (p.js.clone(), p.stream.clone());
        placed = Some(p);
        pair
    } else {
        let client = async_nats::connect(&o.urls[0]).await.context("connecting")?;
        let mut js = jetstream::new(client);
        js.set_timeout(ack_timeout);
        wait_jetstream(&js).await?;
        let st =
            js.create_stream(cfg).await.with_context(|| format!("creating stream {}", o.stream))?;
        (js, st)
    };
    let warm = last_seq;

    let window = if o.mode == Mode::Sync { 1 } else { o.window.max(1) };
    let mut inflight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
    let mut acked: u64 = 0;
    let mut sent: u64 = 0;
    // Sync: each publish's time from the send to its PubAck.
    let mut lat: Vec<u64> = Vec::new();
    let start = Instant::now();
    let cap = Duration::from_secs(o.max_secs);
    while sent < o.count && start.elapsed() < cap {
        if inflight.len() >= window {
            let fut = inflight.pop_front().expect("window is not empty");
            last_seq = check_ack(fut, &o.stream, last_seq, acked).await?;
            acked += 1;
        }
        let t0 = Instant::now();
        let fut = js
            .publish(o.subject.clone(), payload.clone())
            .await
            .with_context(|| format!("publish {sent}"))?;
        sent += 1;
        if o.mode == Mode::Sync {
            last_seq = check_ack(fut, &o.stream, last_seq, acked).await?;
            acked += 1;
            lat.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        } else {
            inflight.push_back(fut);
        }
    }
    while let Some(fut) = inflight.pop_front() {
        last_seq = check_ack(fut, &o.stream, last_seq, acked).await?;
        acked += 1;
    }
    let secs = start.elapsed().as_secs_f64();

    let info = st.info().await.context("stream info")?;
    ensure!(
        info.state.messages == acked + warm,
        "stream {} holds {} messages after {} PubAcks",
        o.stream,
        info.state.messages,
        acked + warm
    );
    let mut out = json!({
        "mode": "jspub",
        "publish": if o.mode == Mode::Sync { "sync" } else { "async" },
        "storage": format!("{:?}", o.storage).to_lowercase(),
        "size": o.size,
        "replicas": o.replicas,
        "requested": o.count,
        "acked": acked,
        "capped": acked < o.count,
        "window": window,
        "secs": secs,
        "msgs_per_sec": acked as f64 / secs.max(1e-9),
    });
    if !lat.is_empty() {
        let s = Summary::of(lat);
        out["p50_us"] = json!(micros(s.pct(50.0)));
        out["p99_us"] = json!(micros(s.pct(99.0)));
        out["max_us"] = json!(micros(s.max));
    }
    if let Some(p) = &placed {
        out["leader"] = json!(p.leader);
        out["publisher"] = json!(p.publisher_name());
    }
    Ok(out)
}

/// A PubAck must name our stream and carry the next sequence: the stream was created empty
/// and only this client publishes to it.
async fn check_ack(fut: PublishAckFuture, stream: &str, last_seq: u64, n: u64) -> Result<u64> {
    let ack = fut.await.with_context(|| format!("PubAck {n}"))?;
    ensure!(ack.stream == stream, "PubAck {n} names stream {:?}", ack.stream);
    ensure!(!ack.duplicate, "PubAck {n} reports a duplicate");
    ensure!(
        ack.sequence == last_seq + 1,
        "PubAck {n} has sequence {} after {last_seq}",
        ack.sequence
    );
    Ok(ack.sequence)
}

/// The server may greet clients a moment before its JetStream API answers.
pub async fn wait_jetstream(js: &jetstream::Context) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match js.query_account().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for JetStream: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("JetStream account info"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_storage() {
        assert_eq!(Mode::parse("sync").unwrap(), Mode::Sync);
        assert_eq!(Mode::parse("async").unwrap(), Mode::Async);
        assert!(Mode::parse("batch").is_err());
        assert_eq!(storage("file").unwrap(), stream::StorageType::File);
        assert_eq!(storage("memory").unwrap(), stream::StorageType::Memory);
        assert!(storage("disk").is_err());
    }
}
