//! Queue group distribution with async-nats: three members on separate connections share the
//! messages, each message reaching exactly one member; a plain subscriber gets all of them.
//! Which member gets which message is the server's choice, so only sums are compared.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{buffered, connect, round_trip};

const N: usize = 90;

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let mut members = Vec::new();
    for _ in 0..3 {
        let client = connect(url).await?;
        let sub = client.queue_subscribe("rs.q.jobs", "workers".to_string()).await?;
        round_trip(&client).await?;
        members.push((client, sub));
    }
    let plain_client = connect(url).await?;
    let mut plain = plain_client.subscribe("rs.q.jobs").await?;
    round_trip(&plain_client).await?;

    let publisher = connect(url).await?;
    for i in 0..N {
        publisher.publish("rs.q.jobs", format!("job-{i}").into()).await?;
    }
    // Once the publisher's round trip is back, every job has been routed; each receiver's own
    // round trip then brings in everything routed to it before.
    round_trip(&publisher).await?;

    let mut per_job: BTreeMap<String, usize> = BTreeMap::new();
    let mut counts = Vec::new();
    for (client, sub) in &mut members {
        round_trip(client).await?;
        let got = buffered(sub);
        counts.push(got.len());
        for msg in got {
            *per_job.entry(String::from_utf8_lossy(&msg.payload).into_owned()).or_default() += 1;
        }
    }
    round_trip(&plain_client).await?;
    let plain_count = buffered(&mut plain).len();
    Ok(json!({
        "published": N,
        "queue_total": counts.iter().sum::<usize>(),
        "distinct_jobs": per_job.len(),
        "jobs_delivered_more_than_once": per_job.values().filter(|&&n| n > 1).count(),
        "members": counts.len(),
        "plain": plain_count,
    }))
}
