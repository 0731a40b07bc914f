//! Publish/subscribe with async-nats: the INFO fields a client reads, payloads (text, binary,
//! empty), reply subjects, and no duplicates.

use serde_json::{Value, json};

use crate::{buffered, connect, describe, next_messages, round_trip};

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let info = client.server_info();
    let mut sub = client.subscribe("rs.ps.subject").await?;
    let publisher = connect(url).await?;
    round_trip(&client).await?;
    publisher.publish("rs.ps.subject", "hello".into()).await?;
    publisher.publish("rs.ps.subject", vec![0u8, 159, 255].into()).await?;
    publisher.publish_with_reply("rs.ps.subject", "rs.reply.to", "with reply".into()).await?;
    publisher.publish("rs.ps.subject", "".into()).await?;
    round_trip(&publisher).await?;
    let messages = next_messages(&mut sub, 4).await?;
    round_trip(&client).await?;
    let extra = buffered(&mut sub).len();
    Ok(json!({
        "info": {
            "proto": info.proto,
            "headers": info.headers,
            "max_payload": info.max_payload,
            "auth_required": info.auth_required,
            "tls_required": info.tls_required,
            "client_ip": info.client_ip,
        },
        "messages": messages.iter().map(describe).collect::<Vec<_>>(),
        "payload_lengths": messages.iter().map(|m| m.payload.len()).collect::<Vec<_>>(),
        "extra": extra,
    }))
}
