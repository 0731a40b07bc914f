//! Wildcard subscriptions with async-nats: `*` matches exactly one token, `>` one or more
//! trailing tokens; each subscription gets each matching message once, in publish order.

use serde_json::{Value, json};

use crate::{buffered, connect, round_trip};

const PUBLISHED: &[&str] = &["w.a", "w.a.b", "w.a.b.c", "w.x.b", "w", "v.a", "w.a.b.c.d"];

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let patterns = ["w.*", "w.>", "w.*.b", "w.a.>", ">", "*.a"];
    let mut subs = Vec::new();
    for pattern in patterns {
        subs.push((pattern, client.subscribe(pattern).await?));
    }
    round_trip(&client).await?;
    for subject in PUBLISHED {
        client.publish(*subject, (*subject).into()).await?;
    }
    round_trip(&client).await?;
    let mut seen = serde_json::Map::new();
    for (pattern, sub) in &mut subs {
        let subjects: Vec<String> = buffered(sub)
            .iter()
            .map(|m| m.subject.to_string())
            .filter(|s| !s.starts_with("_INBOX."))
            .collect();
        seen.insert(pattern.to_string(), json!(subjects));
    }
    Ok(json!({ "published": PUBLISHED, "received": seen }))
}
