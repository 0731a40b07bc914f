//! The ChoirOS bus end to end (`../shared/seed/000_5a3e2747d31b441f.txt`): the design's
//! streams and consumers on one server, three agents sharing AGENT_POOL, the dead-letter
//! advisory, an agent inbox that fills while the agent is busy, and a server restart in the
//! middle that loses nothing acknowledged. Real sockets, async-nats, a temporary store.
//!
//! Deviation from the design, as on nats-server: AGENT_EVENTS `choiros.agent.>` and
//! AGENT_INBOX `choiros.agent.*.inbox` overlap (10065, asserted below), so AGENT_EVENTS is
//! created here on `choiros.agent.*.events.>`.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use serde_json::Value;

const T: Duration = Duration::from_secs(5);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn js_opts(dir: &std::path::Path) -> Options {
    let mut o = Options { host: "127.0.0.1".into(), port: 0, ..Options::default() };
    o.jetstream.enabled = true;
    o.jetstream.store_dir = Some(dir.to_path_buf());
    o
}

fn stream_cfg(
    name: &str,
    subject: &str,
    retention: RetentionPolicy,
    storage: StorageType,
) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: vec![subject.into()],
        retention,
        storage,
        ..Default::default()
    }
}

/// The design's streams (R1: one node).
async fn create_streams(js: &Context) -> Result<()> {
    use RetentionPolicy::{Limits, WorkQueue};
    use StorageType::{File, Memory};
    let user = stream::Config {
        max_age: 30 * DAY,
        ..stream_cfg("USER_EVENTS", "choiros.user.>", Limits, File)
    };
    js.create_stream(user).await?;
    let agent = stream::Config {
        max_age: 7 * DAY,
        ..stream_cfg("AGENT_EVENTS", "choiros.agent.>", Limits, File)
    };
    js.create_stream(agent.clone()).await?;
    let inbox = stream::Config {
        max_messages_per_subject: 1000,
        ..stream_cfg("AGENT_INBOX", "choiros.agent.*.inbox", WorkQueue, Memory)
    };
    // As on nats-server: the design's two agent streams overlap.
    let err = js.create_stream(inbox.clone()).await.expect_err("subjects overlap");
    ensure!(err.to_string().contains("10065"), "{err}");
    js.delete_stream("AGENT_EVENTS").await?;
    js.create_stream(stream::Config { subjects: vec!["choiros.agent.*.events.>".into()], ..agent })
        .await?;
    js.create_stream(inbox).await?;
    js.create_stream(stream_cfg("CITATIONS", "choiros.citation.>", Limits, File)).await?;
    let orch = stream::Config {
        max_age: DAY,
        ..stream_cfg("ORCHESTRATOR", "choiros.orchestrator.>", Limits, Memory)
    };
    js.create_stream(orch).await?;
    Ok(())
}

/// The design's durable consumers on USER_EVENTS.
async fn create_consumers(js: &Context) -> Result<()> {
    let user = js.get_stream("USER_EVENTS").await?;
    user.create_consumer(pull::Config {
        durable_name: Some("AGENT_POOL".into()),
        filter_subject: "choiros.user.*.action.COMMAND".into(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        max_deliver: 3,
        ..Default::default()
    })
    .await?;
    user.create_consumer(pull::Config {
        durable_name: Some("SYNC_WORKER".into()),
        filter_subject: "choiros.user.*.file.*".into(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// An agent: its own connection, bound to the shared AGENT_POOL consumer.
async fn agent(url: &str) -> Result<PullConsumer> {
    let nc = async_nats::connect(url).await?;
    let js = jetstream::new(nc);
    js.get_stream("USER_EVENTS")
        .await?
        .get_consumer("AGENT_POOL")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// One pull of up to `batch` messages, waiting at most `expires` for them.
async fn fetch(
    c: &PullConsumer,
    batch: usize,
    expires: Duration,
) -> Result<Vec<jetstream::Message>> {
    let mut it = c.fetch().max_messages(batch).expires(expires).messages().await?;
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(T, it.next()).await.context("fetch timed out")? {
        out.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(out)
}

async fn fetch_one(c: &PullConsumer) -> Result<jetstream::Message> {
    let mut v = fetch(c, 1, Duration::from_secs(2)).await?;
    ensure!(v.len() == 1, "expected one message, got {}", v.len());
    Ok(v.remove(0))
}

fn deliveries(m: &jetstream::Message) -> i64 {
    m.info().map(|i| i.delivered).unwrap_or(-1)
}

async fn publish(js: &Context, subject: &str, body: &str) -> Result<u64> {
    Ok(js.publish(subject.to_string(), body.to_string().into()).await?.await?.sequence)
}

#[tokio::test]
async fn choiros_bus_end_to_end_with_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let url = srv.client_url();
    let nc = async_nats::connect(&url).await?;
    let js = jetstream::new(nc.clone());
    create_streams(&js).await?;
    create_consumers(&js).await?;
    let mut dead_letters =
        nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.USER_EVENTS.AGENT_POOL").await?;
    nc.flush().await?;

    // A user command and a file event land in USER_EVENTS.
    let cmd1 = publish(&js, "choiros.user.u1.action.COMMAND", "cmd-1").await?;
    publish(&js, "choiros.user.u1.file.write", "file-1").await?;
    publish(&js, "choiros.user.u1.chat.message", "hello").await?;

    // Three agents share AGENT_POOL: the first two nak, the third acks on delivery 3.
    let agents = [agent(&url).await?, agent(&url).await?, agent(&url).await?];
    for (i, a) in agents.iter().enumerate() {
        let m = fetch_one(a).await?;
        ensure!(m.payload == "cmd-1" && deliveries(&m) == i as i64 + 1, "agent {i}");
        if i < 2 {
            m.ack_with(AckKind::Nak(None)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let mut pool = agents[0].clone();
    let info = pool.info().await?;
    assert_eq!(info.ack_floor.stream_sequence, cmd1);
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));

    // A command nobody can handle is delivered 3 times, then dead-lettered by the advisory.
    let cmd2 = publish(&js, "choiros.user.u2.action.COMMAND", "cmd-2").await?;
    for a in &agents {
        let m = fetch_one(a).await?;
        ensure!(m.payload == "cmd-2", "got {:?}", m.payload);
        m.ack_with(AckKind::Nak(None)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // As in nats-server, the advisory goes out when the consumer next looks for work (the next
    // pull), and the message is not delivered a 4th time.
    assert!(fetch(&agents[0], 1, Duration::from_millis(300)).await?.is_empty(), "no 4th delivery");
    let adv = tokio::time::timeout(T, dead_letters.next()).await?.context("advisory")?;
    let v: Value = serde_json::from_slice(&adv.payload)?;
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!((v["stream_seq"].as_u64(), v["deliveries"].as_u64()), (Some(cmd2), Some(3)));

    // The agent inbox fills while the agent is busy, then drains in order (workqueue).
    let inbox = js.get_stream("AGENT_INBOX").await?;
    let a1 = inbox
        .create_consumer(pull::Config {
            durable_name: Some("a1".into()),
            filter_subject: "choiros.agent.a1.inbox".into(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    for i in 1..=5 {
        publish(&js, "choiros.agent.a1.inbox", &format!("note-{i}")).await?;
    }
    let got = fetch(&a1, 10, Duration::from_millis(500)).await?;
    let bodies: Vec<String> =
        got.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
    assert_eq!(bodies, (1..=5).map(|i| format!("note-{i}")).collect::<Vec<_>>());
    for m in got {
        m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    assert_eq!(js.get_stream("AGENT_INBOX").await?.info().await?.state.messages, 0);

    // More file events while SYNC_WORKER has read only the first; then a restart.
    let sync = js
        .get_stream("USER_EVENTS")
        .await?
        .get_consumer::<pull::Config>("SYNC_WORKER")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = fetch_one(&sync).await?;
    assert_eq!(m.payload, "file-1");
    m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut acked = Vec::new();
    for i in 2..=20 {
        acked.push(
            publish(&js, &format!("choiros.user.u{}.file.write", i % 3), &format!("file-{i}"))
                .await?,
        );
    }
    let cit = publish(&js, "choiros.citation.a1.u1", "cited").await?;
    drop((agents, pool, sync, a1, js, dead_letters));
    nc.drain().await.ok();
    srv.shutdown().await;

    let srv = Server::start(js_opts(dir.path())).await?;
    let url = srv.client_url();
    let nc = async_nats::connect(&url).await?;
    let js = jetstream::new(nc.clone());
    // Everything acknowledged is there, and each consumer resumes where it was.
    let user = js.get_stream("USER_EVENTS").await?.info().await?.state.clone();
    assert_eq!(user.last_sequence, *acked.last().unwrap());
    assert_eq!(user.messages, 3 + 1 + 19);
    let c = js.get_stream("CITATIONS").await?.get_raw_message(cit).await?;
    assert_eq!(c.payload, "cited");
    let sync = js
        .get_stream("USER_EVENTS")
        .await?
        .get_consumer::<pull::Config>("SYNC_WORKER")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = fetch(&sync, 50, Duration::from_millis(500)).await?;
    let bodies: Vec<String> =
        got.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
    assert_eq!(bodies, (2..=20).map(|i| format!("file-{i}")).collect::<Vec<_>>());
    let seqs: Vec<u64> = got.iter().map(|m| m.info().unwrap().stream_sequence).collect();
    assert_eq!(seqs, acked);
    // cmd-1 (acked) and cmd-2 (dead-lettered) are not delivered again; a new command is.
    let pool = agent(&url).await?;
    let cmd3 = publish(&js, "choiros.user.u1.action.COMMAND", "cmd-3").await?;
    let m = fetch_one(&pool).await?;
    assert_eq!((m.payload.as_ref(), m.info().unwrap().stream_sequence), (&b"cmd-3"[..], cmd3));
    srv.shutdown().await;
    Ok(())
}
