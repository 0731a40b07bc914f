//! config: max_payload: 1024
//! max_payload with async-nats: the limit from INFO is enforced before sending (publish and
//! request fail with `MaxPayloadExceeded`, headers count), the connection stays up, and a
//! payload of exactly max_payload is delivered.

use async_nats::HeaderMap;
use serde_json::{Value, json};

use crate::{buffered, connect, round_trip};

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let mut sub = client.subscribe("rs.big").await?;
    round_trip(&client).await?;
    let max = client.server_info().max_payload;

    let exact = client.publish("rs.big", vec![b'x'; max].into()).await;
    let over = client.publish("rs.big", vec![b'x'; max + 1].into()).await;
    let mut headers = HeaderMap::new();
    headers.insert("Pad", "0123456789");
    let over_with_headers =
        client.publish_with_headers("rs.big", headers, vec![b'x'; max - 4].into()).await;
    let request = client.request("rs.big", vec![b'x'; max + 1].into()).await;
    round_trip(&client).await?;
    let delivered: Vec<usize> = buffered(&mut sub).iter().map(|m| m.payload.len()).collect();
    Ok(json!({
        "max_payload": max,
        "exact": exact.map(|_| "ok").map_err(|e| format!("{:?}", e.kind())),
        "over": over.map(|_| "ok").map_err(|e| format!("{:?}", e.kind())),
        "over_with_headers": over_with_headers.map(|_| "ok").map_err(|e| format!("{:?}", e.kind())),
        "request_over": request.map(|_| "ok").map_err(|e| format!("{:?}", e.kind())),
        "delivered_lengths": delivered,
        "still_connected": client.connection_state().to_string(),
    }))
}
