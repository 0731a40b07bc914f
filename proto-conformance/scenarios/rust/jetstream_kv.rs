//! JetStream with async-nats: a stream with acked publishes (dedupe, expected last sequence),
//! raw and direct gets, and a KV bucket (put, get, create conflicts, update, delete, purge),
//! as the `jetstream` and `kv` modules of the Rust client drive them.
//! flags: -js

use async_nats::jetstream::{self, message::PublishMessage, stream};
use serde_json::{Value, json};

use crate::connect;

/// A JetStream API error code, or the client's error kind when the server sent none.
fn describe_err<E: std::fmt::Display + std::fmt::Debug>(e: &E) -> Value {
    json!({ "error": e.to_string() })
}

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let js = jetstream::new(client.clone());
    let mut obs = serde_json::Map::new();

    let mut s = js
        .create_stream(stream::Config {
            name: "RS".into(),
            subjects: vec!["rs.>".into()],
            allow_direct: true,
            ..Default::default()
        })
        .await?;
    let mut acks = Vec::new();
    for subject in ["rs.a", "rs.b", "rs.a"] {
        let a = js.publish(subject, subject.into()).await?.await?;
        acks.push(json!([a.stream, a.sequence, a.duplicate]));
    }
    for _ in 0..2 {
        let p = PublishMessage::build().payload("once".into()).message_id("id-1");
        let a = js.send_publish("rs.c", p).await?.await?;
        acks.push(json!([a.stream, a.sequence, a.duplicate]));
    }
    obs.insert("acks".into(), json!(acks));
    let wrong = js
        .send_publish("rs.c", PublishMessage::build().payload("x".into()).expected_last_sequence(1))
        .await?
        .await;
    obs.insert(
        "wrong_last".into(),
        wrong.map(|_| json!("ok")).unwrap_or_else(|e| describe_err(&e)),
    );

    let m = s.get_raw_message(2).await?;
    obs.insert(
        "raw".into(),
        json!([m.subject.as_str(), m.sequence, String::from_utf8_lossy(&m.payload)]),
    );
    let d = s.direct_get_last_for_subject("rs.a").await?;
    obs.insert("direct_last".into(), json!([d.subject.as_str(), d.sequence]));
    let missing = s.direct_get(99).await;
    obs.insert("direct_missing".into(), json!(missing.is_err()));
    let info = s.info().await?;
    obs.insert(
        "state".into(),
        json!([info.state.messages, info.state.first_sequence, info.state.last_sequence]),
    );

    let kv = js
        .create_key_value(jetstream::kv::Config {
            bucket: "rkv".into(),
            history: 3,
            ..Default::default()
        })
        .await?;
    let mut puts = Vec::new();
    for v in ["v1", "v2", "v3", "v4"] {
        puts.push(kv.put("key", v.into()).await?);
    }
    obs.insert("puts".into(), json!(puts));
    let entry = kv.entry("key").await?.expect("entry");
    obs.insert(
        "entry".into(),
        json!([entry.key, entry.revision, String::from_utf8_lossy(&entry.value)]),
    );
    obs.insert("create_existing".into(), json!(kv.create("key", "x".into()).await.is_err()));
    obs.insert("create_new".into(), json!(kv.create("other", "o".into()).await?));
    obs.insert("update_stale".into(), json!(kv.update("key", "s".into(), 1).await.is_err()));
    obs.insert("update_ok".into(), json!(kv.update("key", "u".into(), 4).await?));
    kv.delete("key").await?;
    obs.insert("after_delete".into(), json!(kv.get("key").await?.map(|b| b.to_vec())));
    kv.purge("other").await?;
    obs.insert("after_purge".into(), json!(kv.get("other").await?.map(|b| b.to_vec())));
    let mut bucket = js.get_stream("KV_rkv").await?;
    let b = bucket.info().await?;
    // History 3 keeps the last three revisions of "key" (its delete marker among them) and
    // the purge marker of "other".
    obs.insert("bucket".into(), json!([b.state.messages, b.state.last_sequence]));

    js.delete_stream("RS").await?;
    obs.insert("deleted".into(), json!(js.get_stream("RS").await.is_err()));
    // Leave the store empty (repeated runs reuse the store directory).
    js.delete_key_value("rkv").await?;
    Ok(Value::Object(obs))
}
