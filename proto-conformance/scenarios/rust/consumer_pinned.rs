//! A pinned-client pull consumer (priority groups): the first pull request of group "A" gets
//! the pin (advisory, `Nats-Pin-Id` header on the messages, pin in consumer info), a request
//! with another pin id is refused with 423, CONSUMER.UNPIN releases it (advisory), and the
//! next request gets a new pin. Pin ids are random: only their shape and equality are kept.
//! flags: -js

use async_nats::HeaderMap;
use serde_json::{Value, json};

use crate::{connect, next_messages, round_trip};

fn shape(id: &str) -> String {
    format!("<{} chars>", id.len())
}

fn advisory(m: &async_nats::Message) -> anyhow::Result<Value> {
    let mut v: Value = serde_json::from_slice(&m.payload)?;
    for k in ["id", "pinned_id"] {
        if let Some(s) = v.get(k).and_then(Value::as_str) {
            v[k] = json!(shape(s));
        }
    }
    Ok(json!({ "subject": m.subject.as_str(), "body": v }))
}

fn status(m: &async_nats::Message) -> Value {
    let pin =
        m.headers.as_ref().and_then(|h: &HeaderMap| h.get("Nats-Pin-Id")).map(|v| v.to_string());
    json!({
        "subject": m.subject.as_str(),
        "payload": String::from_utf8_lossy(&m.payload),
        "status": m.status.map(u16::from),
        "description": m.description,
        "pin": pin.as_deref().map(shape),
    })
}

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let nc = connect(url).await?;
    let mut obs = serde_json::Map::new();
    let api = |subject: &str, body: String| {
        let nc = nc.clone();
        let subject = subject.to_string();
        async move {
            let r = nc.request(subject, body.into()).await?;
            anyhow::Ok(serde_json::from_slice::<Value>(&r.payload)?)
        }
    };
    api(
        "$JS.API.STREAM.CREATE.PIN",
        r#"{"name":"PIN","subjects":["pin.>"],"storage":"memory"}"#.into(),
    )
    .await?;
    for i in 1..=4 {
        nc.request(format!("pin.{i}"), format!("m{i}").into()).await?;
    }
    let v = api(
        "$JS.API.CONSUMER.CREATE.PIN.PC",
        r#"{"stream_name":"PIN","config":{"durable_name":"PC","ack_policy":"none","priority_policy":"pinned_client","priority_groups":["A"],"priority_timeout":60000000000}}"#.into(),
    )
    .await?;
    obs.insert(
        "config".into(),
        json!([
            v["config"]["priority_policy"],
            v["config"]["priority_groups"],
            v["config"]["priority_timeout"]
        ]),
    );
    let mut pinned = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PINNED.PIN.PC").await?;
    let mut unpinned = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.PIN.PC").await?;
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await?;
    round_trip(&nc).await?;

    let pull = |body: String| {
        let nc = nc.clone();
        let inbox = inbox.clone();
        async move {
            nc.publish_with_reply("$JS.API.CONSUMER.MSG.NEXT.PIN.PC", inbox, body.into()).await?;
            anyhow::Ok(())
        }
    };
    pull(r#"{"batch":2,"expires":2000000000,"group":"A"}"#.into()).await?;
    let first = next_messages(&mut sub, 2).await?;
    let pin = first[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Pin-Id"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    obs.insert("first".into(), json!(first.iter().map(status).collect::<Vec<_>>()));
    obs.insert("pinned_advisory".into(), advisory(&next_messages(&mut pinned, 1).await?[0])?);
    let info = api("$JS.API.CONSUMER.INFO.PIN.PC", String::new()).await?;
    let pg = &info["priority_groups"][0];
    obs.insert(
        "info_pin".into(),
        json!([pg["group"], pg["pinned_client_id"].as_str() == Some(pin.as_str())]),
    );
    pull(r#"{"batch":1,"expires":2000000000,"group":"A","id":"not-the-pin"}"#.into()).await?;
    obs.insert("wrong_pin".into(), status(&next_messages(&mut sub, 1).await?[0]));
    pull(format!(r#"{{"batch":1,"expires":2000000000,"group":"A","id":"{pin}"}}"#)).await?;
    obs.insert("right_pin".into(), status(&next_messages(&mut sub, 1).await?[0]));

    let v = api("$JS.API.CONSUMER.UNPIN.PIN.PC", r#"{"group":"A"}"#.into()).await?;
    obs.insert("unpin".into(), v);
    obs.insert("unpinned_advisory".into(), advisory(&next_messages(&mut unpinned, 1).await?[0])?);
    pull(r#"{"batch":1,"expires":2000000000,"group":"A"}"#.into()).await?;
    let m = next_messages(&mut sub, 1).await?.remove(0);
    let new_pin = m
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Pin-Id"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    obs.insert("after_unpin".into(), json!([status(&m), new_pin != pin && !new_pin.is_empty()]));
    api("$JS.API.STREAM.DELETE.PIN", String::new()).await?;
    Ok(Value::Object(obs))
}
