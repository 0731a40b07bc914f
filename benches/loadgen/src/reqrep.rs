//! Request/reply latency: one requester connection, one responder connection that echoes the
//! payload, requests strictly one at a time so each sample is one full round trip
//! client → server → responder → server → client. Every sample is kept and sorted, so the
//! percentiles are exact rather than bucketed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::{micros, sync_with_server};

const SUBJECT: &str = "bench.reqrep";

pub async fn run(url: &str, count: u64, size: usize, warmup: u64) -> Result<serde_json::Value> {
    let responder = async_nats::connect(url).await.context("responder: connecting")?;
    let requester = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(url)
        .await
        .context("requester: connecting")?;

    let mut sub = responder.subscribe(SUBJECT).await.context("responder: subscribing")?;
    sync_with_server(&responder).await.context("responder")?;
    let echo = tokio::spawn({
        let responder = responder.clone();
        async move {
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    responder.publish(reply, msg.payload).await?;
                }
            }
            anyhow::Ok(())
        }
    });

    let payload = Bytes::from(vec![b'x'; size]);
    let mut samples: Vec<u64> = Vec::with_capacity(usize::try_from(count)?);
    for i in 0..warmup + count {
        let t = Instant::now();
        let reply = requester
            .request(SUBJECT, payload.clone())
            .await
            .with_context(|| format!("request {i}"))?;
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ensure!(reply.payload.len() == size, "reply {i} has {} bytes", reply.payload.len());
        if i >= warmup {
            samples.push(nanos);
        }
    }
    echo.abort();

    let s = Summary::of(samples);
    Ok(json!({
        "mode": "reqrep",
        "count": count,
        "size": size,
        "warmup": warmup,
        "min_us": micros(s.min),
        "mean_us": micros(s.mean),
        "p50_us": micros(s.pct(50.0)),
        "p90_us": micros(s.pct(90.0)),
        "p99_us": micros(s.pct(99.0)),
        "p999_us": micros(s.pct(99.9)),
        "max_us": micros(s.max),
    }))
}

/// Sorted latency samples in nanoseconds.
#[derive(Debug)]
pub(crate) struct Summary {
    sorted: Vec<u64>,
    min: u64,
    pub(crate) max: u64,
    mean: u64,
}

impl Summary {
    pub(crate) fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let n = samples.len().max(1) as u128;
        let mean = (samples.iter().map(|&v| u128::from(v)).sum::<u128>() / n) as u64;
        Self {
            min: samples.first().copied().unwrap_or(0),
            max: samples.last().copied().unwrap_or(0),
            mean,
            sorted: samples,
        }
    }

    /// Nearest-rank percentile: the smallest sample with at least `p`% of samples at or
    /// below it.
    pub(crate) fn pct(&self, p: f64) -> u64 {
        if self.sorted.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of((1..=100).rev().collect());
        assert_eq!(s.pct(50.0), 50);
        assert_eq!(s.pct(99.0), 99);
        assert_eq!(s.pct(99.9), 100);
        assert_eq!(s.pct(0.0), 1);
        assert_eq!((s.min, s.max, s.mean), (1, 100, 50));
        let one = Summary::of(vec![7]);
        assert_eq!((one.pct(50.0), one.pct(99.0)), (7, 7));
        assert_eq!(Summary::of(vec![]).pct(50.0), 0);
    }
}
