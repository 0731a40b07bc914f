//! JetStream pull consumers through async-nats (`jetstream::consumer::pull`) and raw
//! `$JS.API.CONSUMER.*` requests, against an embedded server with a temporary store.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::{self, stream};
use chorus_conf::Options;
use chorus_server::Server;
use futures::{StreamExt, TryStreamExt};
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

// ---- push consumers ---------------------------------------------------------------------------

use async_nats::jetstream::consumer::push;

/// The next message on a raw subscription (or a timeout error).
async fn recv(sub: &mut async_nats::Subscriber) -> Result<async_nats::Message> {
    tokio::time::timeout(T, sub.next()).await.context("nothing arrived")?.context("sub closed")
}

/// Waits for a consumer info request to answer 10014 (consumer gone).
async fn wait_gone(nc: &async_nats::Client, stream: &str, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = api(nc, &format!("$JS.API.CONSUMER.INFO.{stream}.{name}"), "").await?;
        if v["error"]["err_code"].as_u64() == Some(10014) {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{name} still there: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn push_consumer_delivers_to_its_group_only_while_bound() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 20).await?;
    let mut c = s
        .create_consumer(push::Config {
            durable_name: Some("G".into()),
            deliver_subject: "dlv.g".into(),
            deliver_group: Some("workers".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    // Nobody in the group yet: nothing is delivered, the consumer is not bound. A plain
    // subscriber on the deliver subject does not bind a consumer with a deliver group.
    let mut plain = nc.subscribe("dlv.g").await?;
    nc.flush().await?;
    let info = c.info().await?;
    assert!(!info.push_bound);
    assert_eq!((info.num_pending, info.delivered.stream_sequence), (20, 0));

    let mut a = nc.queue_subscribe("dlv.g", "workers".into()).await?;
    let mut b = nc.queue_subscribe("dlv.g", "workers".into()).await?;
    let mut seen = Vec::new();
    let (mut from_a, mut from_b) = (0, 0);
    while seen.len() < 20 {
        let m = tokio::select! {
            m = recv(&mut a) => { from_a += 1; m? }
            m = recv(&mut b) => { from_b += 1; m? }
        };
        let reply = m.reply.clone().context("ack subject")?;
        let t: Vec<&str> = reply.split('.').collect();
        assert_eq!((t.len(), t[0], t[1], t[2], t[3]), (9, "$JS", "ACK", "EV", "G"));
        assert_eq!(t[4], "1", "first delivery");
        seen.push(t[5].parse::<u64>()?);
        assert_eq!(m.subject.as_str(), format!("ev.{}", t[5]));
        nc.publish(reply, "+ACK".into()).await?;
    }
    assert_eq!(from_a + from_b, 20);
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
    // The plain subscriber on the same subject sees the deliveries too (it is a subscriber
    // like any other) but does not take them from the group.
    assert!(recv(&mut plain).await.is_ok());
    nc.flush().await?;
    let info = c.info().await?;
    assert!(info.push_bound);
    assert_eq!(info.delivered.stream_sequence, 20);
    let acked = async {
        loop {
            let i = c.info().await?.clone();
            if i.num_ack_pending == 0 {
                return Ok::<_, anyhow::Error>(i);
            }
        }
    };
    let info = tokio::time::timeout(T, acked).await??;
    assert_eq!(info.ack_floor.stream_sequence, 20);

    // A pull request against a push consumer is answered with 409.
    let r = nc.request("$JS.API.CONSUMER.MSG.NEXT.EV.G", "1".into()).await?;
    assert_eq!(r.status.map(u16::from), Some(409));
    assert_eq!(r.description.as_deref(), Some("Consumer is push based"));
    Ok(())
}

#[tokio::test]
async fn push_flow_control_stalls_until_answered_and_heartbeats_say_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 0).await?;
    // 24 messages of 128 KiB: 3 MiB, more than the first flow control window (2 MiB).
    let big = bytes::Bytes::from(vec![b'x'; 128 * 1024]);
    for i in 1..=24 {
        js.publish(format!("ev.{i}"), big.clone()).await?.await?;
    }
    let mut sub = nc.subscribe("dlv.fc").await?;
    nc.flush().await?;
    let _c = s
        .create_consumer(push::Config {
            durable_name: Some("F".into()),
            deliver_subject: "dlv.fc".into(),
            ack_policy: AckPolicy::None,
            flow_control: true,
            idle_heartbeat: Duration::from_millis(200),
            ..Default::default()
        })
        .await?;
    let mut data = 0u64;
    let mut fc_subject = None;
    let mut stalled = None;
    // Read without answering the flow control request: deliveries stop, and the idle
    // heartbeat names the request we owe.
    while stalled.is_none() {
        let m = recv(&mut sub).await?;
        match (m.status.map(u16::from), m.description.as_deref()) {
            (None, _) => {
                assert!(fc_subject.is_none() || data < 24, "delivered past the window");
                data += 1;
            }
            (Some(100), Some("FlowControl Request")) => {
                assert!(m.payload.is_empty());
                let r = m.reply.clone().context("flow control reply subject")?;
                assert!(r.starts_with("$JS.FC.EV.F."), "{r}");
                assert_eq!(r.split('.').count(), 5);
                fc_subject.get_or_insert(r.to_string());
            }
            (Some(100), Some("Idle Heartbeat")) => {
                let h = m.headers.as_ref().context("heartbeat headers")?;
                if let Some(st) = h.get("Nats-Consumer-Stalled") {
                    stalled = Some(st.to_string());
                    assert_eq!(
                        h.get("Nats-Last-Consumer").map(|v| v.as_str()),
                        Some(&*data.to_string())
                    );
                    assert_eq!(
                        h.get("Nats-Last-Stream").map(|v| v.as_str()),
                        Some(&*data.to_string())
                    );
                }
            }
            other => anyhow::bail!("unexpected status {other:?}"),
        }
    }
    let fc = fc_subject.context("a flow control request came first")?;
    assert_eq!(stalled.as_deref(), Some(fc.as_str()));
    assert!(data < 24, "the window stopped delivery ({data} delivered)");
    // Answer every request from now on: everything arrives.
    nc.publish(fc, "".into()).await?;
    while data < 24 {
        let m = recv(&mut sub).await?;
        match (m.status.map(u16::from), m.reply.clone()) {
            (None, _) => data += 1,
            (Some(100), Some(r)) => nc.publish(r, "".into()).await?,
            _ => {}
        }
    }
    // Idle again: a heartbeat without the stalled header, numbers at the end of the stream.
    loop {
        let m = recv(&mut sub).await?;
        if m.description.as_deref() == Some("Idle Heartbeat") {
            let h = m.headers.as_ref().context("headers")?;
            if h.get("Nats-Consumer-Stalled").is_none() {
                assert_eq!(h.get("Nats-Last-Stream").map(|v| v.as_str()), Some("24"));
                break;
            }
        } else if let (Some(100), Some(r)) = (m.status.map(u16::from), m.reply.clone()) {
            nc.publish(r, "".into()).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn async_nats_push_and_ordered_consumers_read_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let s = setup(&js, stream::RetentionPolicy::Limits, 50).await?;
    let c = s
        .create_consumer(push::Config {
            durable_name: Some("P".into()),
            deliver_subject: nc.new_inbox(),
            ack_policy: AckPolicy::Explicit,
            flow_control: true,
            idle_heartbeat: Duration::from_secs(1),
            ..Default::default()
        })
        .await?;
    let mut msgs = c.messages().await?;
    for i in 1..=50 {
        let m = tokio::time::timeout(T, msgs.next()).await?.context("end")?;
        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(m.payload, format!("m{i}"));
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let ordered = s
        .create_consumer(push::OrderedConfig {
            deliver_subject: nc.new_inbox(),
            filter_subject: "ev.>".into(),
            ..Default::default()
        })
        .await?;
    let mut msgs = ordered.messages().await?;
    for i in 1..=50 {
        let m = tokio::time::timeout(T, msgs.next()).await?.context("end")?;
        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(m.subject.as_str(), format!("ev.{i}"));
    }
    // New messages keep coming to the ordered consumer.
    js.publish("ev.new", "late".into()).await?.await?;
    let m = tokio::time::timeout(T, msgs.next()).await?.context("end")?;
    assert_eq!(m.map_err(|e| anyhow::anyhow!("{e}"))?.payload, "late");
    Ok(())
}

#[tokio::test]
async fn ephemeral_push_goes_after_losing_interest_with_advisories() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let _s = setup(&js, stream::RetentionPolicy::Limits, 3).await?;
    let mut created = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.CREATED.EV.*").await?;
    let mut deleted = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.DELETED.EV.*").await?;
    let mut sub = nc.subscribe("dlv.eph").await?;
    nc.flush().await?;
    let v = api(
        &nc,
        "$JS.API.CONSUMER.CREATE.EV",
        r#"{"stream_name":"EV","config":{"deliver_subject":"dlv.eph","ack_policy":"none","inactive_threshold":200000000}}"#,
    )
    .await?;
    let name = v["name"].as_str().context("name")?.to_string();
    assert_eq!(v["push_bound"], true, "{v}");
    let adv: Value = serde_json::from_slice(&recv(&mut created).await?.payload)?;
    assert_eq!(adv["type"], "io.nats.jetstream.advisory.v1.consumer_action");
    assert_eq!((adv["stream"].as_str(), adv["action"].as_str()), (Some("EV"), Some("create")));
    assert_eq!(adv["consumer"].as_str(), Some(name.as_str()));
    assert_eq!(adv["id"].as_str().map(str::len), Some(22));
    for i in 1..=3 {
        assert_eq!(recv(&mut sub).await?.payload, format!("m{i}"));
    }
    // Bound: it outlives its threshold several times over.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let v = api(&nc, &format!("$JS.API.CONSUMER.INFO.EV.{name}"), "").await?;
    assert_eq!(v["push_bound"], true, "{v}");
    sub.unsubscribe().await?;
    wait_gone(&nc, "EV", &name).await?;
    let adv: Value = serde_json::from_slice(&recv(&mut deleted).await?.payload)?;
    assert_eq!(
        (adv["consumer"].as_str(), adv["action"].as_str()),
        (Some(name.as_str()), Some("delete"))
    );
    Ok(())
}

#[tokio::test]
async fn pause_holds_push_deliveries_until_resumed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let _s = setup(&js, stream::RetentionPolicy::Limits, 1).await?;
    let mut sub = nc.subscribe("dlv.p").await?;
    let mut paused_adv = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.EV.PZ").await?;
    nc.flush().await?;
    api(
        &nc,
        "$JS.API.CONSUMER.CREATE.EV.PZ",
        r#"{"stream_name":"EV","config":{"durable_name":"PZ","deliver_subject":"dlv.p","ack_policy":"explicit"}}"#,
    )
    .await?;
    assert_eq!(recv(&mut sub).await?.payload, "m1");
    let v = api(&nc, "$JS.API.CONSUMER.PAUSE.EV.PZ", r#"{"pause_until":"2999-01-01T00:00:00Z"}"#)
        .await?;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.consumer_pause_response");
    assert_eq!(
        (v["paused"].as_bool(), v["pause_until"].as_str()),
        (Some(true), Some("2999-01-01T00:00:00Z"))
    );
    assert!(v["pause_remaining"].as_i64().is_some_and(|n| n > 0));
    let adv: Value = serde_json::from_slice(&recv(&mut paused_adv).await?.payload)?;
    assert_eq!(
        (adv["type"].as_str(), adv["paused"].as_bool()),
        (Some("io.nats.jetstream.advisory.v1.consumer_pause"), Some(true))
    );
    js.publish("ev.2", "m2".into()).await?.await?;
    let v = api(&nc, "$JS.API.CONSUMER.INFO.EV.PZ", "").await?;
    assert_eq!((v["paused"].as_bool(), v["num_pending"].as_u64()), (Some(true), Some(1)));
    assert_eq!(v["config"]["pause_until"], "2999-01-01T00:00:00Z");
    // Not delivered while paused; an empty body resumes.
    let v = api(&nc, "$JS.API.CONSUMER.PAUSE.EV.PZ", "").await?;
    assert_eq!(v["paused"], false);
    assert_eq!(recv(&mut sub).await?.payload, "m2");
    let v = api(&nc, "$JS.API.CONSUMER.PAUSE.EV.NOPE", "").await?;
    assert_eq!(v["error"]["err_code"].as_u64(), Some(10014));
    let v = api(&nc, "$JS.API.CONSUMER.PAUSE.NOPE.PZ", "").await?;
    assert_eq!(v["error"]["err_code"].as_u64(), Some(10059));
    Ok(())
}

#[tokio::test]
async fn kv_watch_sees_puts_and_deletes_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let kv = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "cfg".into(),
            history: 5,
            ..Default::default()
        })
        .await?;
    kv.put("a", "1".into()).await?;
    kv.put("b", "1".into()).await?;
    kv.put("a", "2".into()).await?;
    // A watch with history starts with the last value per key (`watch_all` would start at
    // new values only).
    let mut w = kv.watch_with_history(">").await?;
    let mut next = async || -> Result<(String, String, async_nats::jetstream::kv::Operation)> {
        let e = tokio::time::timeout(T, w.next()).await?.context("watch ended")??;
        Ok((e.key, String::from_utf8_lossy(&e.value).into_owned(), e.operation))
    };
    use async_nats::jetstream::kv::Operation::{Delete, Put};
    assert_eq!(next().await?, ("b".into(), "1".into(), Put));
    assert_eq!(next().await?, ("a".into(), "2".into(), Put));
    kv.put("c", "3".into()).await?;
    kv.delete("a").await?;
    kv.put("b", "4".into()).await?;
    assert_eq!(next().await?, ("c".into(), "3".into(), Put));
    assert_eq!(next().await?, ("a".into(), "".into(), Delete));
    assert_eq!(next().await?, ("b".into(), "4".into(), Put));

    let mut keys: Vec<String> = kv.keys().await?.try_collect().await?;
    keys.sort();
    assert_eq!(keys, ["b", "c"]);
    let hist: Vec<_> = kv.history("a").await?.try_collect().await?;
    let ops: Vec<_> = hist
        .iter()
        .map(|e| (String::from_utf8_lossy(&e.value).into_owned(), e.operation))
        .collect();
    assert_eq!(ops, [("1".into(), Put), ("2".into(), Put), ("".into(), Delete)]);
    Ok(())
}

#[tokio::test]
async fn object_store_round_trips_a_multi_chunk_object() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let os = js
        .create_object_store(async_nats::jetstream::object_store::Config {
            bucket: "files".into(),
            ..Default::default()
        })
        .await?;
    // 600 KiB of varied bytes: five chunks of the default 128 KiB.
    let data: Vec<u8> =
        (0..600 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let info = os.put("blob.bin", &mut data.as_slice()).await?;
    assert_eq!((info.size, info.chunks), (data.len(), 5));
    os.put("small.txt", &mut b"hello".as_slice()).await?;

    let mut obj = os.get("blob.bin").await?;
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await?;
    assert!(back == data, "object content differs ({} bytes back)", back.len());
    let i = os.info("blob.bin").await?;
    assert_eq!((i.size, i.chunks, i.deleted), (data.len(), 5, false));

    let mut names: Vec<String> = os.list().await?.map_ok(|o| o.name).try_collect().await?;
    names.sort();
    assert_eq!(names, ["blob.bin", "small.txt"]);
    os.delete("blob.bin").await?;
    let names: Vec<String> = os.list().await?.map_ok(|o| o.name).try_collect().await?;
    assert_eq!(names, ["small.txt"]);
    assert!(os.get("blob.bin").await.is_err());
    Ok(())
}

#[tokio::test]
async fn durable_push_survives_a_restart_and_cannot_move_while_bound() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let body = |deliver: &str| {
        format!(
            r#"{{"stream_name":"EV","config":{{"durable_name":"DP","deliver_subject":"{deliver}","ack_policy":"explicit","ack_wait":60000000000}}}}"#
        )
    };
    {
        let srv = Server::start(js_opts(dir.path())).await?;
        let nc = async_nats::connect(srv.client_url()).await?;
        let js = jetstream::new(nc.clone());
        setup(&js, stream::RetentionPolicy::Limits, 4).await?;
        let mut sub = nc.subscribe("dlv.one").await?;
        nc.flush().await?;
        api(&nc, "$JS.API.CONSUMER.CREATE.EV.DP", &body("dlv.one")).await?;
        for i in 1..=4 {
            let m = recv(&mut sub).await?;
            assert_eq!(m.payload, format!("m{i}"));
            if i <= 2 {
                nc.request(m.reply.context("ack subject")?, "".into()).await?;
            }
        }
        // Bound: moving it to another deliver subject is refused (10013), as nats-server does.
        let v = api(&nc, "$JS.API.CONSUMER.CREATE.EV.DP", &body("dlv.two")).await?;
        assert_eq!(v["error"]["err_code"].as_u64(), Some(10013), "{v}");
        srv.shutdown().await;
    }
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let v = api(&nc, "$JS.API.CONSUMER.INFO.EV.DP", "").await?;
    assert_eq!((v["push_bound"].as_bool(), v["num_ack_pending"].as_u64()), (None, Some(2)), "{v}");
    assert_eq!(v["ack_floor"]["stream_seq"].as_u64(), Some(2));
    // Unbound now, so it may move; the new subject's subscriber gets the unacked messages
    // again (a moved consumer redelivers what was pending) and then new ones.
    let mut sub = nc.subscribe("dlv.two").await?;
    nc.flush().await?;
    let v = api(&nc, "$JS.API.CONSUMER.CREATE.EV.DP", &body("dlv.two")).await?;
    assert_eq!(v["config"]["deliver_subject"], "dlv.two", "{v}");
    let js = jetstream::new(nc.clone());
    js.publish("ev.5", "m5".into()).await?.await?;
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = recv(&mut sub).await?;
        let t: Vec<String> = m.reply.context("ack")?.split('.').map(String::from).collect();
        got.push((String::from_utf8_lossy(&m.payload).into_owned(), t[4].clone()));
    }
    assert_eq!(
        got,
        [("m3".into(), "2".into()), ("m4".into(), "2".into()), ("m5".into(), "1".into())]
    );
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn rate_limited_push_paces_but_delivers_everything_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    // The burst is the stream's max_msg_size: 2 KB, so 1 KB messages at 20 KB/s are paced
    // (held by the runtime until their time) after the first two.
    let s = js
        .create_stream(stream::Config {
            name: "RL".into(),
            subjects: vec!["rl.>".into()],
            max_message_size: 2048,
            ..Default::default()
        })
        .await?;
    for i in 0..12u8 {
        js.publish(format!("rl.{i}"), vec![b'a' + i; 1000].into()).await?.await?;
    }
    let mut sub = nc.subscribe("dlv.rl").await?;
    nc.flush().await?;
    s.create_consumer(push::Config {
        durable_name: Some("RL".into()),
        deliver_subject: "dlv.rl".into(),
        ack_policy: AckPolicy::None,
        rate_limit: 160_000,
        idle_heartbeat: Duration::from_millis(100),
        ..Default::default()
    })
    .await?;
    let mut got = Vec::new();
    while got.len() < 12 {
        let m = recv(&mut sub).await?;
        if m.status.is_none() {
            got.push(m.payload[0]);
        }
    }
    assert_eq!(got, (0..12u8).map(|i| b'a' + i).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn push_max_ack_pending_holds_back_and_unacked_messages_come_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = Server::start(js_opts(dir.path())).await?;
    let nc = async_nats::connect(srv.client_url()).await?;
    let js = jetstream::new(nc.clone());
    setup(&js, stream::RetentionPolicy::Limits, 4).await?;
    let mut sub = nc.subscribe("dlv.map").await?;
    let mut adv = nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EV.M").await?;
    nc.flush().await?;
    api(
        &nc,
        "$JS.API.CONSUMER.CREATE.EV.M",
        r#"{"stream_name":"EV","config":{"durable_name":"M","deliver_subject":"dlv.map","ack_policy":"explicit","max_ack_pending":2,"ack_wait":300000000,"max_deliver":2}}"#,
    )
    .await?;
    // (payload, delivery count) of the next delivery.
    async fn next(sub: &mut async_nats::Subscriber) -> Result<(String, String, String)> {
        let m = recv(sub).await?;
        let r = m.reply.context("ack subject")?.to_string();
        let dc = r.split('.').nth(4).context("token")?.to_string();
        Ok((String::from_utf8_lossy(&m.payload).into_owned(), dc, r))
    }
    let (p1, dc1, r1) = next(&mut sub).await?;
    let (p2, _, _) = next(&mut sub).await?;
    assert_eq!((p1.as_str(), dc1.as_str(), p2.as_str()), ("m1", "1", "m2"));
    let v = api(&nc, "$JS.API.CONSUMER.INFO.EV.M", "").await?;
    assert_eq!((v["num_ack_pending"].as_u64(), v["num_pending"].as_u64()), (Some(2), Some(2)));
    // Acking m1 makes room for m3; m2 is never acked: it comes back once, then the
    // max-deliveries advisory says it is given up.
    nc.request(r1, "".into()).await?;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let (p, dc, r) = next(&mut sub).await?;
        if p != "m2" {
            nc.publish(r, "+ACK".into()).await?;
        }
        seen.push((p, dc));
    }
    seen.sort();
    let m2: Vec<_> = seen.iter().filter(|(p, _)| p == "m2").map(|(_, d)| d.as_str()).collect();
    assert_eq!(m2, ["2"], "{seen:?}");
    let a: Value = serde_json::from_slice(&recv(&mut adv).await?.payload)?;
    assert_eq!((a["stream_seq"].as_u64(), a["deliveries"].as_u64()), (Some(2), Some(2)));
    Ok(())
}
