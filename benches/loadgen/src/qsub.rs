//! Queue-group delivery rate: `members` connections each join the same queue group; a
//! publisher (`nats bench pub`, run by the harness) sends `count` messages, and every message
//! must reach exactly one member. The rate is `count` over the time from the first delivery to
//! the `count`-th, the same definition `nats bench sub` uses. After the last expected message a
//! short grace period catches duplicate deliveries, which the harness treats as a failure.
//!
//! `urls` may name several servers (a cluster): member `m` connects to `urls[m % len]`, so the
//! group is spread over the nodes, and `per_member` tells which node delivered what.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::sync_with_server;

#[derive(Debug)]
pub struct Opts {
    /// One server URL per node; members are assigned round-robin.
    pub urls: Vec<String>,
    pub subject: String,
    pub queue: String,
    pub members: usize,
    pub count: u64,
    pub timeout_secs: u64,
}

#[derive(Debug, Default)]
struct Shared {
    total: AtomicU64,
    first: OnceLock<Instant>,
    last: Mutex<Option<Instant>>,
    done: Notify,
    slow_consumer_events: AtomicU64,
}

const GRACE: Duration = Duration::from_millis(200);

pub async fn run(o: Opts) -> Result<serde_json::Value> {
    let shared = Arc::new(Shared::default());
    let mut subs = Vec::with_capacity(o.members);
    let mut clients = Vec::with_capacity(o.members);
    for m in 0..o.members {
        let url = &o.urls[m % o.urls.len()];
        let events = shared.clone();
        let client = async_nats::ConnectOptions::new()
            // async-nats drops messages once a subscription's buffer is full; a benchmark
            // must measure the server, not that client-side limit.
            .subscription_capacity(1 << 20)
            // Stay on the node we were given: a cluster advertises its other nodes' client
            // URLs, and a member that moved would change the spread being measured.
            .ignore_discovered_servers()
            .event_callback(move |e| {
                let events = events.clone();
                async move {
                    if matches!(e, async_nats::Event::SlowConsumer(_)) {
                        events.slow_consumer_events.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .connect(url.as_str())
            .await
            .with_context(|| format!("member {m}: connecting to {url}"))?;
        let sub = client
            .queue_subscribe(o.subject.clone(), o.queue.clone())
            .await
            .with_context(|| format!("member {m}: subscribing"))?;
        sync_with_server(&client).await.with_context(|| format!("member {m}"))?;
        subs.push(sub);
        clients.push(client);
    }
    eprintln!("ready");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut members = Vec::with_capacity(o.members);
    for mut sub in subs {
        let shared = shared.clone();
        let mut stop = stop_rx.clone();
        let count = o.count;
        members.push(tokio::spawn(async move {
            let mut mine = 0u64;
            loop {
                tokio::select! {
                    msg = sub.next() => {
                        if msg.is_none() {
                            break;
                        }
                        mine += 1;
                        let n = shared.total.fetch_add(1, Ordering::Relaxed) + 1;
                        let now = Instant::now();
                        if n == 1 {
                            let _ = shared.first.set(now);
                        }
                        if n == count {
                            *shared.last.lock().unwrap() = Some(now);
                            shared.done.notify_one();
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
            mine
        }));
    }

    let waited = tokio::time::timeout(Duration::from_secs(o.timeout_secs), shared.done.notified());
    if waited.await.is_err() {
        let _ = stop_tx.send(true);
        return Err(anyhow!(
            "timed out after {}s with {} of {} messages ({} slow-consumer events)",
            o.timeout_secs,
            shared.total.load(Ordering::Relaxed),
            o.count,
            shared.slow_consumer_events.load(Ordering::Relaxed)
        ));
    }
    tokio::time::sleep(GRACE).await;
    let _ = stop_tx.send(true);
    let mut per_member = Vec::with_capacity(members.len());
    for m in members {
        per_member.push(m.await.context("member task")?);
    }
    drop(clients);

    let first = *shared.first.get().context("no first delivery recorded")?;
    let last = shared.last.lock().unwrap().context("no last delivery recorded")?;
    let secs = last.duration_since(first).as_secs_f64().max(1e-9);
    Ok(json!({
        "mode": "qsub",
        "members": o.members,
        "urls": o.urls,
        "count": o.count,
        "received": shared.total.load(Ordering::Relaxed),
        "per_member": per_member,
        "secs": secs,
        "msgs_per_sec": o.count as f64 / secs,
        "slow_consumer_events": shared.slow_consumer_events.load(Ordering::Relaxed),
    }))
}
