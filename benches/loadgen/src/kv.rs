//! Key-value latency: create a bucket, then `count` sequential puts of distinct keys (each
//! awaits its PubAck, so on a server that syncs before acknowledging every put includes a
//! store sync), then a get of every key in the same order. Every sample is kept (exact
//! nearest-rank percentiles, as `reqrep`), after `warmup` untimed operations of each kind.
//! Each get must return the value last put under that key.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use serde_json::json;

use crate::jspub::wait_jetstream;
use crate::micros;
use crate::reqrep::Summary;

pub async fn run(
    url: &str,
    bucket: &str,
    storage: stream::StorageType,
    count: u64,
    size: usize,
    warmup: u64,
) -> Result<serde_json::Value> {
    let client = async_nats::connect(url).await.context("connecting")?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(30));
    wait_jetstream(&js).await?;
    let store = js
        .create_key_value(kv::Config {
            bucket: bucket.to_string(),
            history: 1,
            storage,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating bucket {bucket}"))?;

    let total = warmup + count;
    let value = |i: u64| Bytes::from(format!("{i:0>size$}").into_bytes());
    let mut puts = Vec::with_capacity(usize::try_from(count)?);
    for i in 0..total {
        let t = Instant::now();
        store.put(format!("k{i}"), value(i)).await.with_context(|| format!("put k{i}"))?;
        if i >= warmup {
            puts.push(nanos(t));
        }
    }
    let mut gets = Vec::with_capacity(puts.len());
    for i in 0..total {
        let t = Instant::now();
        let got = store.get(format!("k{i}")).await.with_context(|| format!("get k{i}"))?;
        let ns = nanos(t);
        ensure!(got.as_ref() == Some(&value(i)), "get k{i} returned {got:?}");
        if i >= warmup {
            gets.push(ns);
        }
    }

    let (p, g) = (Summary::of(puts), Summary::of(gets));
    Ok(json!({
        "mode": "kv",
        "count": count,
        "size": size,
        "warmup": warmup,
        "put_p50_us": micros(p.pct(50.0)),
        "put_p99_us": micros(p.pct(99.0)),
        "put_max_us": micros(p.max),
        "get_p50_us": micros(g.pct(50.0)),
        "get_p99_us": micros(g.pct(99.0)),
        "get_max_us": micros(g.max),
    }))
}

fn nanos(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
