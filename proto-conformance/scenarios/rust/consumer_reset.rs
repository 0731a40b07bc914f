//! CONSUMER.RESET: back to just above the ack floor (empty body) or to a given sequence,
//! forgetting pending acks (redeliveries start counting again); refused for deliver policies
//! that do not allow it or below a configured start; no responders for an unknown consumer.
//! flags: -js

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::connect;

fn pick(v: &Value) -> Value {
    json!({
        "type": v["type"], "error": v["error"], "reset_seq": v["reset_seq"], "name": v["name"],
        "delivered": v["delivered"]["stream_seq"], "dseq": v["delivered"]["consumer_seq"],
        "ack_floor": v["ack_floor"]["stream_seq"], "num_pending": v["num_pending"],
        "num_ack_pending": v["num_ack_pending"], "num_redelivered": v["num_redelivered"],
    })
}

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let nc = connect(url).await?;
    let js = jetstream::new(nc.clone());
    let mut obs = serde_json::Map::new();
    let s = js
        .create_stream(stream::Config {
            name: "RST".into(),
            subjects: vec!["rst.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await?;
    for i in 1..=5 {
        js.publish(format!("rst.{i}"), format!("m{i}").into()).await?.await?;
    }
    let c = s
        .create_consumer(pull::Config { durable_name: Some("R".into()), ..Default::default() })
        .await?;
    let fetch = |n: usize| {
        let c = c.clone();
        async move {
            let mut b =
                c.fetch().max_messages(n).expires(Duration::from_secs(1)).messages().await?;
            let mut out = Vec::new();
            while let Some(m) = b.next().await {
                let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                let i = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
                out.push(json!([
                    m.subject.as_str(),
                    i.stream_sequence,
                    i.consumer_sequence,
                    i.delivered
                ]));
                m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(out)
        }
    };
    let reset = |subject: String, body: &'static str| {
        let nc = nc.clone();
        async move {
            match nc.request(subject, body.into()).await {
                Ok(r) => anyhow::Ok(pick(&serde_json::from_slice(&r.payload)?)),
                Err(e) => anyhow::Ok(json!({ "request_error": format!("{:?}", e.kind()) })),
            }
        }
    };
    // Deliver 3, ack only the first two (the third ack is lost: its subject is kept, unused).
    let mut b = c.fetch().max_messages(3).expires(Duration::from_secs(1)).messages().await?;
    let mut n = 0;
    while let Some(m) = b.next().await {
        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
        n += 1;
        if n <= 2 {
            m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    obs.insert("to_ack_floor".into(), reset("$JS.API.CONSUMER.RESET.RST.R".into(), "").await?);
    obs.insert("after_floor".into(), json!(fetch(1).await?));
    obs.insert(
        "to_seq".into(),
        reset("$JS.API.CONSUMER.RESET.RST.R".into(), r#"{"seq":5}"#).await?,
    );
    obs.insert("after_seq".into(), json!(fetch(2).await?));
    obs.insert(
        "past_end".into(),
        reset("$JS.API.CONSUMER.RESET.RST.R".into(), r#"{"seq":99}"#).await?,
    );

    s.create_consumer(pull::Config {
        durable_name: Some("NEW".into()),
        deliver_policy: jetstream::consumer::DeliverPolicy::New,
        ..Default::default()
    })
    .await?;
    obs.insert(
        "new_policy".into(),
        reset("$JS.API.CONSUMER.RESET.RST.NEW".into(), r#"{"seq":1}"#).await?,
    );
    obs.insert(
        "new_policy_floor".into(),
        reset("$JS.API.CONSUMER.RESET.RST.NEW".into(), "").await?,
    );
    s.create_consumer(pull::Config {
        durable_name: Some("FROM3".into()),
        deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: 3 },
        ..Default::default()
    })
    .await?;
    obs.insert(
        "below_start".into(),
        reset("$JS.API.CONSUMER.RESET.RST.FROM3".into(), r#"{"seq":2}"#).await?,
    );
    obs.insert(
        "at_start".into(),
        reset("$JS.API.CONSUMER.RESET.RST.FROM3".into(), r#"{"seq":4}"#).await?,
    );
    obs.insert("unknown".into(), reset("$JS.API.CONSUMER.RESET.RST.NOPE".into(), "").await?);
    js.delete_stream("RST").await?;
    Ok(Value::Object(obs))
}
