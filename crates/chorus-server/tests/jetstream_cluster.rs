//! Clustered JetStream: three in-process servers joined by routes, raft-replicated streams,
//! real clients on real sockets (port 0, loopback).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use chorus_conf::{ClusterOptions, Options};
use chorus_server::Server;
use futures::StreamExt;
use serde_json::Value;

const T: Duration = Duration::from_secs(10);

fn node(name: &str, dir: &Path, routes: Vec<String>) -> Options {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 0,
        server_name: name.into(),
        cluster: Some(ClusterOptions {
            name: Some("c1".into()),
            host: "127.0.0.1".into(),
            port: Some(0),
            routes,
            ..ClusterOptions::default()
        }),
        ..Options::default()
    };
    o.jetstream.enabled = true;
    o.jetstream.store_dir = Some(dir.join(name));
    o
}

/// Three servers; the second and third list the first (gossip completes the mesh).
async fn cluster(dir: &Path) -> Vec<Server> {
    let a = Server::start(node("a", dir, vec![])).await.expect("a starts");
    let url = a.route_url().expect("a has a route listener");
    let b = Server::start(node("b", dir, vec![url.clone()])).await.expect("b starts");
    let c = Server::start(node("c", dir, vec![url])).await.expect("c starts");
    vec![a, b, c]
}

async fn shutdown(servers: Vec<Server>) {
    for s in servers {
        s.shutdown().await;
    }
}

async fn api(nc: &async_nats::Client, subject: &str, body: &str) -> Result<Value> {
    let m = tokio::time::timeout(T, nc.request(subject.to_string(), body.to_string().into()))
        .await
        .context("API answer in time")??;
    Ok(serde_json::from_slice(&m.payload)?)
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

/// Creates a stream, retrying while the cluster is still forming (no meta leader yet, or
/// not every server in the meta group).
async fn create(nc: &async_nats::Client, cfg: Value) -> Result<Value> {
    let name = cfg["name"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let subject = format!("$JS.API.STREAM.CREATE.{name}");
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            nc.request(subject, cfg.to_string().into()),
        )
        .await;
        if let Ok(Ok(m)) = r {
            let v: Value = serde_json::from_slice(&m.payload)?;
            if v.get("error").is_none() {
                return Ok(v);
            }
            if ![10008, 10005].contains(&err_code(&v)) {
                bail!("stream create failed: {v}");
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the cluster did not take a stream in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stream info once the stream has a leader (retrying through a leader change).
async fn info(nc: &async_nats::Client, stream: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            nc.request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()),
        )
        .await;
        if let Ok(Ok(m)) = r {
            let v: Value = serde_json::from_slice(&m.payload)?;
            if v.get("error").is_none()
                && v["cluster"]["leader"].as_str().is_some_and(|l| !l.is_empty())
            {
                return Ok(v);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no info for {stream} in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(s: &Server) -> Result<async_nats::Client> {
    Ok(async_nats::connect(s.client_url()).await?)
}

#[tokio::test]
async fn a_clustered_server_alone_never_acks() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Its only route leads nowhere: the meta group can never form.
    let s = Server::start(node("alone", dir.path(), vec!["nats://127.0.0.1:1".into()])).await?;
    let nc = connect(&s).await?;
    let cfg = r#"{"name":"S","subjects":["s.>"],"num_replicas":1}"#;
    let v = api(&nc, "$JS.API.STREAM.CREATE.S", cfg).await?;
    assert_eq!(err_code(&v), 10008, "{v}");
    assert_eq!(v["error"]["description"], "JetStream system temporarily unavailable");
    let v = api(&nc, "$JS.API.STREAM.INFO.S", "").await?;
    assert_eq!(err_code(&v), 10008, "{v}");
    // Nothing captures the subject: a publisher asking for an ack hears no responders.
    let js = jetstream::new(nc.clone());
    let r = js.publish("s.x", "lost?".into()).await?.await;
    assert!(r.is_err(), "a lone clustered server acked a publish: {r:?}");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn r3_stream_keeps_every_acked_message_when_its_leader_dies() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut servers = cluster(dir.path()).await;
    let ncs =
        [connect(&servers[0]).await?, connect(&servers[1]).await?, connect(&servers[2]).await?];
    let created = create(
        &ncs[0],
        serde_json::json!({"name":"ORDERS","subjects":["orders.>"],"num_replicas":3,"storage":"file"}),
    )
    .await?;
    assert_eq!(created["config"]["num_replicas"], 3);
    let i = info(&ncs[2], "ORDERS").await?;
    assert_eq!(i["cluster"]["name"], "c1");
    assert!(i["cluster"]["raft_group"].as_str().unwrap().starts_with("S-R3F-"), "{i}");
    assert_eq!(i["cluster"]["replicas"].as_array().unwrap().len(), 2, "{i}");

    // Publishes through a server that may not lead: every ack names its sequence.
    let js = jetstream::new(ncs[1].clone());
    for n in 1..=200u64 {
        let ack = js.publish(format!("orders.{}", n % 7), format!("m{n}").into()).await?.await?;
        assert_eq!(ack.sequence, n);
    }
    let leader = info(&ncs[0], "ORDERS").await?["cluster"]["leader"].as_str().unwrap().to_string();
    let li = servers.iter().position(|s| s.inner().name == leader).expect("leader is one of ours");
    let dead = servers.remove(li);
    let dead_name = dead.inner().name.clone();
    dead.shutdown().await;

    // The survivors elect a new leader and keep taking writes.
    let nc = connect(&servers[0]).await?;
    let js = jetstream::new(nc.clone());
    let deadline = tokio::time::Instant::now() + T;
    let mut n = 201u64;
    while n <= 300 {
        // A publish that timed out may have committed: the retry carries the same message
        // id, so the duplicate window answers with the first sequence.
        let p = PublishMessage::build().payload(format!("m{n}").into()).message_id(format!("m{n}"));
        if let Ok(f) = js.send_publish(format!("orders.{}", n % 7), p).await
            && let Ok(ack) = f.await
        {
            assert_eq!(ack.sequence, n, "every sequence once, in order");
            n += 1;
            continue;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader took writes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let i = info(&nc, "ORDERS").await?;
    assert_ne!(i["cluster"]["leader"], dead_name.as_str());
    assert_eq!(i["state"]["messages"], 300);
    let gone = i["cluster"]["replicas"].as_array().unwrap();
    assert!(gone.iter().any(|r| r["name"] == dead_name.as_str() && r["offline"] == true), "{i}");

    // Every acknowledged message, once, in order.
    let stream = js.get_stream("ORDERS").await?;
    let consumer = stream
        .create_consumer(pull::Config { durable_name: Some("all".into()), ..Default::default() })
        .await?;
    let mut msgs =
        consumer.fetch().max_messages(300).expires(Duration::from_secs(5)).messages().await?;
    let mut seen = 0u64;
    while seen < 300 {
        let m = tokio::time::timeout(T, msgs.next())
            .await?
            .context("fetch ended early")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        seen += 1;
        assert_eq!(m.payload, format!("m{seen}").as_bytes());
        assert_eq!(m.subject.as_str(), format!("orders.{}", seen % 7));
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    // The dead server comes back on its store and catches up from the log.
    let urls: Vec<String> = servers.iter().filter_map(Server::route_url).collect();
    let back = Server::start(node(&dead_name, dir.path(), urls)).await?;
    servers.push(back);
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let i = info(&nc, "ORDERS").await?;
        let reps = i["cluster"]["replicas"].as_array().cloned().unwrap_or_default();
        let ok = i["cluster"]["leader"] == dead_name.as_str()
            || reps.iter().any(|r| r["name"] == dead_name.as_str() && r["current"] == true);
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted replica never caught up: {i}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown(servers).await;
    Ok(())
}

#[tokio::test]
async fn workqueue_consumers_serve_from_any_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let servers = cluster(dir.path()).await;
    let ncs =
        [connect(&servers[0]).await?, connect(&servers[1]).await?, connect(&servers[2]).await?];
    create(
        &ncs[0],
        serde_json::json!({"name":"WQ","subjects":["wq.>"],"num_replicas":3,"retention":"workqueue"}),
    )
    .await?;
    info(&ncs[0], "WQ").await?;
    let js = [
        jetstream::new(ncs[0].clone()),
        jetstream::new(ncs[1].clone()),
        jetstream::new(ncs[2].clone()),
    ];
    let stream = js[2].get_stream("WQ").await?;
    stream
        .create_consumer(pull::Config { durable_name: Some("W".into()), ..Default::default() })
        .await?;
    for n in 0..30 {
        js[0].publish(format!("wq.job.{n}"), format!("job {n}").into()).await?.await?;
    }
    // Each server's clients take a third; subjects arrive as published (the delivery crossed
    // a route when the consumer's leader is elsewhere).
    let mut got = Vec::new();
    for j in &js {
        let c: jetstream::consumer::PullConsumer = j
            .get_stream("WQ")
            .await?
            .get_consumer("W")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut batch =
            c.fetch().max_messages(10).expires(Duration::from_secs(5)).messages().await?;
        for _ in 0..10 {
            let m = tokio::time::timeout(T, batch.next())
                .await?
                .context("batch ended")?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let n: u64 = m.subject.as_str().strip_prefix("wq.job.").context("subject")?.parse()?;
            assert_eq!(m.payload, format!("job {n}").as_bytes());
            got.push(n);
            m.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    // Acked work goes (its removal is replicated after the ack), and stays gone through a
    // leader change.
    let deadline = tokio::time::Instant::now() + T;
    let i = loop {
        let i = info(&ncs[1], "WQ").await?;
        if i["state"]["messages"] == 0 {
            break i;
        }
        assert!(tokio::time::Instant::now() < deadline, "acked work stays: {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v = api(&ncs[1], "$JS.API.STREAM.LEADER.STEPDOWN.WQ", "").await?;
    assert_eq!(v["success"], true, "{v}");
    let old = i["cluster"]["leader"].clone();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let i = info(&ncs[1], "WQ").await?;
        if i["cluster"]["leader"] != old {
            assert_eq!(i["state"]["messages"], 0, "the new leader applied the removals: {i}");
            assert_eq!(i["state"]["last_seq"], 30);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "stepdown elected nobody new");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown(servers).await;
    Ok(())
}

#[tokio::test]
async fn kv_on_three_replicas() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let servers = cluster(dir.path()).await;
    let a = jetstream::new(connect(&servers[0]).await?);
    let b = jetstream::new(connect(&servers[1]).await?);
    // The bucket is created once the meta group has all three servers.
    let deadline = tokio::time::Instant::now() + T;
    let kv = loop {
        match a
            .create_key_value(jetstream::kv::Config {
                bucket: "cfg".into(),
                history: 5,
                num_replicas: 3,
                ..Default::default()
            })
            .await
        {
            Ok(kv) => break kv,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "no R3 bucket: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let r1 = kv.put("theme", "dark".into()).await?;
    let r2 = kv.put("theme", "light".into()).await?;
    assert!(r2 > r1);
    let kv_b = b.get_key_value("cfg").await?;
    assert_eq!(kv_b.get("theme").await?.as_deref(), Some(&b"light"[..]));
    let e = kv_b.create("theme", "again".into()).await;
    assert!(e.is_err(), "create over an existing key must fail");
    let hist: Vec<_> = kv_b.history("theme").await?.collect().await;
    assert_eq!(hist.len(), 2);
    let s = b.get_stream("KV_cfg").await?;
    assert_eq!(s.cached_info().config.num_replicas, 3);
    let _ = stream::Config::default();
    shutdown(servers).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stepdown_hands_the_lead_to_the_preferred_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let servers = cluster(dir.path()).await;
    let nc = connect(&servers[0]).await?;
    create(&nc, serde_json::json!({"name": "P", "subjects": ["p.>"], "num_replicas": 3})).await?;
    let stepdown = |body: Value| {
        let nc = nc.clone();
        async move { api(&nc, "$JS.API.STREAM.LEADER.STEPDOWN.P", &body.to_string()).await }
    };
    // nats-server's refusals (10005), answered by the leader.
    let leader = info(&nc, "P").await?["cluster"]["leader"].as_str().unwrap().to_string();
    let v = stepdown(serde_json::json!({"placement": {"preferred": leader}})).await?;
    assert_eq!(err_code(&v), 10005, "{v}");
    assert_eq!(v["error"]["description"], format!("preferred server {leader:?} is already leader"));
    let v = stepdown(serde_json::json!({"placement": {"preferred": "nobody"}})).await?;
    assert_eq!(err_code(&v), 10005, "{v}");
    assert_eq!(v["error"]["description"], "preferred server \"nobody\" not known");
    let v = api(&nc, "$JS.API.STREAM.LEADER.STEPDOWN.P", "{bad").await?;
    assert_eq!(err_code(&v), 10025, "{v}");
    // Each member in turn, whichever leads: the preferred one takes over.
    for target in ["b", "c", "a", "c"] {
        let now = info(&nc, "P").await?["cluster"]["leader"].as_str().unwrap().to_string();
        if now == target {
            continue;
        }
        let v = stepdown(serde_json::json!({"placement": {"preferred": target}})).await?;
        assert_eq!(v["success"], true, "{v}");
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let v = info(&nc, "P").await?;
            if v["cluster"]["leader"] == target {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{target} was preferred, {} leads", v["cluster"]["leader"]);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    shutdown(servers).await;
    Ok(())
}
