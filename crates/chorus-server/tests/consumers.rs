//! JetStream pull consumers through async-nats (`jetstream::consumer::pull`) and raw
//! `$JS.API.CONSUMER.*` requests, against an embedded server with a temporary store.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::{self, stream};
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

fn js_opts(dir: &std::path::Path) -> Options {
    let mut o = Options { host: "127.0.0.1".into(), port: 0, ..Options::default() };
    o.jetstream.enabled = true;
    o.jetstream.store_dir = Some(dir.to_path_buf());
    o
}

async fn api(nc: &async_nats::Client, subject: &str, body: &str) -> Result<Value> {
    let m = tokio::time::timeout(T, nc.request(subject.to_string(), body.to_string().into()))
        .await
        .context("request timed out")??;
    Ok(serde_json::from_slice(&m.payload)?)
}

async fn setup(
    js: &jetstream::Context,
    retention: stream::RetentionPolicy,
    n: u64,
) -> Result<stream::Stream> {
    let s = js
        .create_stream(stream::Config {
            name: "EV".into(),
            subjects: vec!["ev.>".into()],
            retention,
            ..Default::default()
        })
        .await?;
    for i in 1..=n {
        js.publish(format!("ev.{i}"), format!("m{i}").into()).await?.await?;
    }
    Ok(s)
}

async fn durable(s: &stream::Stream, name: &str, cfg: pull::Config) -> Result<PullConsumer> {
    Ok(s.create_consumer(pull::Config {
        durable_name: Some(name.into()),
        ack_policy: AckPolicy::Explicit,
        ..cfg
    })
    .await?)
}

/// Waits (up to `T`) for one message of a pull request of `batch` with `expires`.
async fn next_msgs(
    c: &PullConsumer,
    batch: usize,
    expires: Duration,
) -> Result<Vec<jetstream::Message>> {
    let mut it = c.batch().max_messages(batch).expires(expires).messages().await?;
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(T, it.next()).await.context("pull timed out")? {
        out.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
        if out.len() == batch {
            break;
        }
    }
    Ok(out)
}

#[tokio::test]
async fn durable_pull_fetch_ack_and_info_counts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 5).await?;
    let mut c = durable(&s, "W", pull::Config::default()).await?;
    assert_eq!(c.cached_info().num_pending, 5);

    let msgs = next_msgs(&c, 3, Duration::from_secs(2)).await?;
    let got: Vec<_> = msgs.iter().map(|m| (m.subject.to_string(), m.payload.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("ev.1".into(), "m1".into()),
            ("ev.2".into(), "m2".into()),
            ("ev.3".into(), "m3".into())
        ]
    );
    let i = msgs[2].info().map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!((i.stream_sequence, i.consumer_sequence, i.delivered, i.pending), (3, 3, 1, 2));
    msgs[0].double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    msgs[1].double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let info = c.info().await?;
    assert_eq!(info.num_pending, 2);
    assert_eq!(info.num_ack_pending, 1);
    assert_eq!((info.delivered.stream_sequence, info.delivered.consumer_sequence), (3, 3));
    assert_eq!((info.ack_floor.stream_sequence, info.ack_floor.consumer_sequence), (2, 2));

    // The API around it: names, list, info, delete.
    let v = api(&nc, "$JS.API.CONSUMER.NAMES.EV", "").await?;
    assert_eq!(v["consumers"], serde_json::json!(["W"]));
    let v = api(&nc, "$JS.API.CONSUMER.LIST.EV", "").await?;
    assert_eq!((v["total"].as_u64(), v["consumers"][0]["name"].as_str()), (Some(1), Some("W")));
    let v = api(&nc, "$JS.API.CONSUMER.INFO.EV.NOPE", "").await?;
    assert_eq!(
        (v["error"]["code"].as_u64(), v["error"]["err_code"].as_u64()),
        (Some(404), Some(10014))
    );
    let v = api(&nc, "$JS.API.CONSUMER.DELETE.EV.W", "").await?;
    assert_eq!(v["success"], true);
    let v = api(&nc, "$JS.API.CONSUMER.INFO.EV.W", "").await?;
    assert_eq!(v["error"]["err_code"].as_u64(), Some(10014));
    // Pull requests for a consumer that is not there: no responders, as with nats-server.
    let r = nc.request("$JS.API.CONSUMER.MSG.NEXT.EV.W", "1".into()).await;
    let kind = r.err().map(|e| e.kind());
    assert_eq!(kind, Some(async_nats::RequestErrorKind::NoResponders));
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn nak_and_ack_wait_redeliver_then_max_deliver_advises() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 1).await?;
    let mut adv = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EV.R").await?;
    let cfg =
        pull::Config { ack_wait: Duration::from_millis(400), max_deliver: 3, ..Default::default() };
    let c = durable(&s, "R", cfg).await?;

    // Nak: redelivered at once with a delivery count of 2.
    let m = next_msgs(&c, 1, Duration::from_secs(2)).await?.remove(0);
    assert_eq!(m.info().map_err(|e| anyhow::anyhow!("{e}"))?.delivered, 1);
    m.ack_with(AckKind::Nak(None)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = next_msgs(&c, 1, Duration::from_secs(2)).await?.remove(0);
    assert_eq!(m.info().map_err(|e| anyhow::anyhow!("{e}"))?.delivered, 2);

    // No ack: after ack_wait it comes again, the last time max_deliver allows.
    let m = next_msgs(&c, 1, Duration::from_secs(3)).await?.remove(0);
    let i = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!((i.stream_sequence, i.delivered), (1, 3));

    // Its ack wait passes again: the next pull gets no fourth delivery; the consumer
    // advises instead (it notices when it looks for the next message to send).
    let mut it = c.batch().max_messages(1).expires(Duration::from_secs(1)).messages().await?;
    let a = tokio::time::timeout(T, adv.next()).await.context("advisory")?.context("advisory")?;
    let v: Value = serde_json::from_slice(&a.payload)?;
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!((v["stream_seq"].as_u64(), v["deliveries"].as_u64()), (Some(1), Some(3)));
    let more = tokio::time::timeout(T, it.next()).await.context("pull end")?;
    assert!(more.is_none_or(|r| r.is_err()), "no delivery past max_deliver");
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn workqueue_ack_removes_the_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut s = setup(&js, stream::RetentionPolicy::WorkQueue, 2).await?;
    let c = durable(&s, "Q", pull::Config::default()).await?;
    let m = next_msgs(&c, 1, Duration::from_secs(2)).await?.remove(0);
    assert_eq!(s.info().await?.state.messages, 2, "delivered but unacked stays");
    m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let st = s.info().await?.state.clone();
    assert_eq!((st.messages, st.first_sequence), (1, 2));
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn waiting_pull_gets_new_messages() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 0).await?;
    let c = durable(&s, "L", pull::Config::default()).await?;
    let pull = tokio::spawn(async move { next_msgs(&c, 1, Duration::from_secs(3)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    js.publish("ev.late", "late".into()).await?.await?;
    let got = pull.await??;
    assert_eq!(got[0].payload, "late");
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn durable_resumes_at_its_ack_floor_after_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let srv = Server::start(js_opts(dir.path())).await?;
        let nc = async_nats::connect(srv.client_url()).await?;
        let js = jetstream::new(nc.clone());
        let s = setup(&js, stream::RetentionPolicy::Limits, 4).await?;
        let c = durable(&s, "D", pull::Config::default()).await?;
        for m in next_msgs(&c, 2, Duration::from_secs(2)).await? {
            m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        srv.shutdown().await;
    }
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = js.get_stream("EV").await?;
    let mut c: PullConsumer = s.get_consumer("D").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = c.info().await?;
    assert_eq!(info.ack_floor.stream_sequence, 2);
    assert_eq!((info.num_pending, info.num_ack_pending), (2, 0));
    let m = next_msgs(&c, 1, Duration::from_secs(2)).await?.remove(0);
    assert_eq!(m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence, 3);
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn ephemeral_goes_after_inactive_threshold_and_purge_moves_consumers() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut s = setup(&js, stream::RetentionPolicy::Limits, 3).await?;
    let mut eph = s
        .create_consumer(pull::Config {
            inactive_threshold: Duration::from_millis(300),
            ..Default::default()
        })
        .await?;
    let name = eph.cached_info().name.clone();
    assert_eq!(name.len(), 8, "generated name {name:?}");
    let mut d = durable(&s, "P", pull::Config::default()).await?;
    assert_eq!(s.info().await?.state.consumer_count, 2);

    s.purge().await?;
    let info = d.info().await?;
    assert_eq!((info.num_pending, info.delivered.stream_sequence), (0, 3));

    tokio::time::sleep(Duration::from_millis(800)).await;
    let v = api(&nc, &format!("$JS.API.CONSUMER.INFO.EV.{name}"), "").await?;
    assert_eq!(v["error"]["err_code"].as_u64(), Some(10014), "ephemeral deleted: {v}");
    assert!(eph.info().await.is_err());
    assert_eq!(s.info().await?.state.consumer_count, 1);
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn interest_stream_keeps_messages_until_every_consumer_acked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut s = setup(&js, stream::RetentionPolicy::Interest, 0).await?;
    let a = durable(&s, "A", pull::Config::default()).await?;
    let _b = durable(&s, "B", pull::Config::default()).await?;
    js.publish("ev.1", "x".into()).await?.await?;
    js.publish("ev.2", "y".into()).await?.await?;
    assert_eq!(s.info().await?.state.messages, 2, "kept for the consumers");

    // A acks both; B still needs them.
    for m in next_msgs(&a, 2, Duration::from_secs(2)).await? {
        m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    assert_eq!(s.info().await?.state.messages, 2);
    // B goes: nobody needs them any more.
    let v = api(&nc, "$JS.API.CONSUMER.DELETE.EV.B", "").await?;
    assert_eq!(v["success"], true);
    assert_eq!(s.info().await?.state.messages, 0);
    srv.shutdown().await;
    Ok(())
}
