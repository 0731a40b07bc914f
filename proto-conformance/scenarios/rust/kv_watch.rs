//! KV watchers with async-nats (ordered push consumers on the bucket's stream): a watch with
//! history sees the last value of each key then every change in order, a plain watch only
//! new changes, a key watch only its key; keys and history.
//! flags: -js

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

use crate::connect;

/// Key, value, operation and revision. The `delta` (messages still pending when the entry
/// was delivered) is deterministic only for entries stored before the watch started: for live
/// changes it depends on whether the next put was stored before the delivery (nats-server
/// delivers from another goroutine), so it is kept only for the initial values.
fn entry(e: &kv::Entry) -> Value {
    json!([e.key, String::from_utf8_lossy(&e.value), format!("{:?}", e.operation), e.revision])
}

fn entry_with_delta(e: &kv::Entry) -> Value {
    let mut v = entry(e);
    v.as_array_mut().expect("an array").push(json!(e.delta));
    v
}

async fn next_entry(w: &mut kv::Watch) -> anyhow::Result<kv::Entry> {
    Ok(tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .context("watch timed out")?
        .context("watch ended")??)
}

async fn next(w: &mut kv::Watch) -> anyhow::Result<Value> {
    Ok(entry(&next_entry(w).await?))
}

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let nc = connect(url).await?;
    let js = jetstream::new(nc.clone());
    let kv = js
        .create_key_value(kv::Config {
            bucket: "watched".into(),
            history: 10,
            ..Default::default()
        })
        .await?;
    kv.put("a", "1".into()).await?;
    kv.put("b", "1".into()).await?;
    kv.put("a", "2".into()).await?;
    let mut all = kv.watch_with_history(">").await?;
    let mut fresh = kv.watch_all().await?;
    let mut only_b = kv.watch("b").await?;
    let mut initial = vec![
        entry_with_delta(&next_entry(&mut all).await?),
        entry_with_delta(&next_entry(&mut all).await?),
    ];
    initial.sort_by_key(|v| v[0].as_str().map(String::from));
    kv.put("c", "3".into()).await?;
    kv.delete("a").await?;
    kv.put("b", "4".into()).await?;
    kv.purge("c").await?;
    let mut changes = Vec::new();
    let mut new_only = Vec::new();
    for _ in 0..4 {
        changes.push(next(&mut all).await?);
        new_only.push(next(&mut fresh).await?);
    }
    let b = next(&mut only_b).await?;
    let mut keys: Vec<String> = kv.keys().await?.try_collect().await?;
    keys.sort();
    let history: Vec<Value> = kv.history("a").await?.map_ok(|e| entry(&e)).try_collect().await?;
    js.delete_key_value("watched").await?;
    Ok(json!({
        "initial": initial,
        "changes": changes,
        "watch_all": new_only,
        "watch_b": b,
        "keys": keys,
        "history_a": history,
    }))
}
