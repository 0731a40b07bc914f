//! Request/reply with async-nats: a responder task answers on the reply subject (an inbox),
//! with and without headers; the requester gets exactly the answers.

use async_nats::HeaderMap;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::{connect, describe, round_trip};

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let responder = connect(url).await?;
    let mut requests = responder.subscribe("rs.svc.echo").await?;
    round_trip(&responder).await?;
    let task = tokio::spawn({
        let responder = responder.clone();
        async move {
            let mut seen = Vec::new();
            while let Some(req) = requests.next().await {
                let Some(reply) = req.reply.clone() else {
                    continue;
                };
                seen.push(json!({
                    "subject": req.subject.as_str(),
                    "payload": String::from_utf8_lossy(&req.payload),
                    "reply_is_inbox": reply.starts_with("_INBOX."),
                }));
                let mut headers = HeaderMap::new();
                headers.insert("Served-By", "echo");
                let body = format!("echo: {}", String::from_utf8_lossy(&req.payload));
                responder.publish_with_headers(reply, headers, body.into()).await?;
                responder.flush().await?;
                if seen.len() == 3 {
                    break;
                }
            }
            anyhow::Ok(seen)
        }
    });

    let client = connect(url).await?;
    let mut replies = Vec::new();
    for body in ["one", "two", ""] {
        let reply = client.request("rs.svc.echo", body.into()).await?;
        replies.push(describe(&reply));
    }
    let seen = task.await??;
    Ok(json!({ "replies": replies, "seen": seen }))
}
