//! Push consumers with async-nats: a durable with a deliver group shared by two queue
//! subscribers (each message once, acked), flow control and idle heartbeats as a raw
//! subscriber sees them (where the request comes, the stall, the heartbeat naming it), the
//! client's own push `messages()` with acks, an ordered consumer, pause/resume, and the
//! created/deleted advisories.
//! flags: -js

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{AckPolicy, push};
use async_nats::jetstream::{self, stream};
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::{connect, next_messages, round_trip};

/// An advisory with its volatile parts (event id, time) reduced to their shape.
fn advisory(m: &async_nats::Message) -> anyhow::Result<Value> {
    let mut v: Value = serde_json::from_slice(&m.payload)?;
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        v["id"] = json!(format!("<{} chars>", id.len()));
    }
    Ok(json!({ "subject": m.subject.as_str(), "body": v }))
}

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let nc = connect(url).await?;
    let js = jetstream::new(nc.clone());
    let mut obs = serde_json::Map::new();
    let s = js
        .create_stream(stream::Config {
            name: "PUSH".into(),
            subjects: vec!["push.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await?;
    for i in 1..=10 {
        js.publish(format!("push.{i}"), format!("m{i}").into()).await?.await?;
    }
    let mut created = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.CREATED.PUSH.*").await?;
    let mut deleted = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.DELETED.PUSH.*").await?;
    let mut paused = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.PUSH.*").await?;
    round_trip(&nc).await?;

    // A deliver group: unbound until a queue subscriber in that group shows up.
    let mut g = s
        .create_consumer(push::Config {
            durable_name: Some("GROUP".into()),
            deliver_subject: "deliver.group".into(),
            deliver_group: Some("workers".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    obs.insert("created_advisory".into(), advisory(&next_messages(&mut created, 1).await?[0])?);
    let i = g.info().await?;
    obs.insert(
        "group_before".into(),
        json!([i.push_bound, i.num_pending, i.delivered.stream_sequence]),
    );
    let mut a = nc.queue_subscribe("deliver.group", "workers".into()).await?;
    let mut b = nc.queue_subscribe("deliver.group", "workers".into()).await?;
    let mut seqs = Vec::new();
    while seqs.len() < 10 {
        let m = tokio::select! {
            m = next_messages(&mut a, 1) => m?,
            m = next_messages(&mut b, 1) => m?,
        };
        let m = &m[0];
        let reply = m.reply.clone().context("ack subject")?;
        let t: Vec<&str> = reply.split('.').collect();
        seqs.push((t[5].parse::<u64>()?, m.subject.to_string(), t[4].to_string()));
        nc.request(reply, "".into()).await?;
    }
    seqs.sort();
    obs.insert("group_deliveries".into(), json!(seqs));
    let i = g.info().await?;
    obs.insert(
        "group_after".into(),
        json!([i.push_bound, i.num_pending, i.num_ack_pending, i.ack_floor.stream_sequence]),
    );

    // Flow control and heartbeats, raw: 24 messages of 128 KiB against a 2 MiB window.
    let big = vec![b'x'; 128 * 1024];
    for i in 1..=24 {
        js.publish(format!("push.big.{i}"), big.clone().into()).await?.await?;
    }
    let mut raw = nc.subscribe("deliver.fc").await?;
    round_trip(&nc).await?;
    s.create_consumer(push::Config {
        durable_name: Some("FC".into()),
        deliver_subject: "deliver.fc".into(),
        filter_subject: "push.big.>".into(),
        ack_policy: AckPolicy::None,
        flow_control: true,
        idle_heartbeat: Duration::from_millis(300),
        ..Default::default()
    })
    .await?;
    let mut events = Vec::new();
    let mut data = 0;
    let mut fc = None;
    loop {
        let m = next_messages(&mut raw, 1).await?.remove(0);
        match m.status.map(u16::from) {
            None => data += 1,
            Some(code) => {
                let desc = m.description.clone().unwrap_or_default();
                // async-nats keeps headers in a hash map: sort them.
                let mut headers: Vec<(String, String)> = m
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .map(|(k, v)| {
                        let v = v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
                        (k.to_string(), v)
                    })
                    .filter(|(k, _)| !k.is_empty())
                    .collect();
                headers.sort();
                let reply = m.reply.as_ref().map(|r| {
                    let t: Vec<&str> = r.split('.').collect();
                    format!("{} ({} tokens)", t[..4].join("."), t.len())
                });
                let stalled = headers.iter().any(|(k, _)| k == "Nats-Consumer-Stalled");
                let same = headers.iter().any(|(_, v)| Some(v.as_str()) == fc.as_deref());
                events.push(json!({"after": data, "code": code, "description": desc,
                    "headers": headers.iter().map(|(k, v)| if k == "Nats-Consumer-Stalled" {
                        json!([k, if same { "<the request>" } else { "<other>" }])
                    } else { json!([k, v]) }).collect::<Vec<_>>(),
                    "reply": reply}));
                if let Some(r) = &m.reply {
                    fc.get_or_insert(r.to_string());
                }
                if stalled {
                    break;
                }
            }
        }
    }
    obs.insert("flow_control_events".into(), json!(events));
    nc.publish(fc.context("a flow control request")?, "".into()).await?;
    while data < 24 {
        let m = next_messages(&mut raw, 1).await?.remove(0);
        match (m.status, m.reply) {
            (None, _) => data += 1,
            (Some(_), Some(r)) => nc.publish(r, "".into()).await?,
            _ => {}
        }
    }
    obs.insert("flow_control_delivered".into(), json!(data));
    raw.unsubscribe().await?;

    // The client's push consumer with acks, and an ordered consumer.
    let c = s
        .create_consumer(push::Config {
            durable_name: Some("CLIENT".into()),
            deliver_subject: nc.new_inbox(),
            filter_subject: "push.*".into(),
            ack_policy: AckPolicy::Explicit,
            flow_control: true,
            idle_heartbeat: Duration::from_secs(1),
            ..Default::default()
        })
        .await?;
    let mut msgs = c.messages().await?;
    let mut got = Vec::new();
    for _ in 0..10 {
        let m = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await?.context("end")?;
        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    obs.insert("client_push".into(), json!(got));
    drop(msgs);
    let o = s
        .create_consumer(push::OrderedConfig {
            deliver_subject: nc.new_inbox(),
            filter_subject: "push.*".into(),
            ..Default::default()
        })
        .await?;
    let mut msgs = o.messages().await?;
    let mut got = Vec::new();
    for _ in 0..10 {
        let m = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await?.context("end")?;
        got.push(m.map_err(|e| anyhow::anyhow!("{e}"))?.subject.to_string());
    }
    obs.insert("ordered".into(), json!(got));

    // Pause and resume.
    let r = nc
        .request(
            "$JS.API.CONSUMER.PAUSE.PUSH.GROUP",
            r#"{"pause_until":"2999-01-01T00:00:00Z"}"#.into(),
        )
        .await?;
    let mut v: Value = serde_json::from_slice(&r.payload)?;
    v["pause_remaining"] = json!(v["pause_remaining"].as_i64().is_some_and(|n| n > 0));
    obs.insert("pause".into(), v);
    let i = g.info().await?;
    obs.insert(
        "paused_info".into(),
        json!([i.paused, i.config.pause_until.map(|t| t.to_string())]),
    );
    let r = nc.request("$JS.API.CONSUMER.PAUSE.PUSH.GROUP", "".into()).await?;
    obs.insert("resume".into(), serde_json::from_slice(&r.payload)?);
    let advs = next_messages(&mut paused, 2).await?;
    obs.insert("pause_advisories".into(), json!([advisory(&advs[0])?, advisory(&advs[1])?]));

    s.delete_consumer("GROUP").await?;
    obs.insert("deleted_advisory".into(), advisory(&next_messages(&mut deleted, 1).await?[0])?);
    js.delete_stream("PUSH").await?;
    Ok(Value::Object(obs))
}
