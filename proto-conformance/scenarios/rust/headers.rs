//! Header round trip with async-nats: several values per name, names kept as sent, header-only
//! messages, and messages without headers next to ones with.

use async_nats::HeaderMap;
use serde_json::{Value, json};

use crate::{connect, describe, next_messages, round_trip};

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let mut sub = client.subscribe("rs.hdr.>").await?;
    round_trip(&client).await?;

    let mut headers = HeaderMap::new();
    headers.insert("X-Single", "one");
    headers.append("X-Multi", "a");
    headers.append("X-Multi", "b");
    headers.insert("lower-case", "kept");
    headers.insert("X-Spaces", "  padded value ");
    client.publish_with_headers("rs.hdr.a", headers, "body".into()).await?;
    let mut only = HeaderMap::new();
    only.insert("K", "v");
    client.publish_with_headers("rs.hdr.b", only, "".into()).await?;
    client.publish("rs.hdr.c", "no headers".into()).await?;
    round_trip(&client).await?;
    let msgs = next_messages(&mut sub, 3).await?;
    Ok(json!({ "messages": msgs.iter().map(describe).collect::<Vec<_>>() }))
}
