//! JetStream streams through the official Rust client (async-nats `jetstream` and `kv`) and
//! raw `$JS.API` requests, against an embedded server on a free loopback port with a
//! temporary store directory.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, message::PublishMessage as Publish, stream};
use async_nats::{HeaderMap, Message};
use bytes::Bytes;
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

async fn start(o: Options) -> Server {
    Server::start(o).await.expect("server starts")
}

/// A raw request; the reply's JSON.
async fn api(nc: &async_nats::Client, subject: &str, body: &str) -> Result<Value> {
    let m = tokio::time::timeout(T, nc.request(subject.to_string(), body.to_string().into()))
        .await
        .context("request timed out")??;
    Ok(serde_json::from_slice(&m.payload)?)
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

/// Every reply to one request until the server stops sending (direct get batches).
async fn replies(
    nc: &async_nats::Client,
    subject: &str,
    body: &str,
    until_status: bool,
) -> Result<Vec<Message>> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await?;
    nc.publish_with_reply(subject.to_string(), inbox, body.to_string().into()).await?;
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        let end = until_status && m.status.is_some();
        out.push(m);
        if end {
            break;
        }
    }
    Ok(out)
}

#[tokio::test]
async fn info_announces_jetstream_and_domain() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut o = js_opts(dir.path());
    o.jetstream.domain = Some("hub".into());
    let s = start(o).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let info = nc.server_info();
    assert!(info.jetstream);
    assert_eq!(info.domain.as_deref(), Some("hub"));
    // The API answers under the domain prefix too.
    let v = api(&nc, "$JS.hub.API.INFO", "").await?;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    assert_eq!(v["domain"], "hub");
    s.shutdown().await;

    // Without JetStream: no flag, and no API (no responders).
    let plain = start(Options { host: "127.0.0.1".into(), port: 0, ..Options::default() }).await;
    let nc = async_nats::connect(plain.client_url()).await?;
    assert!(!nc.server_info().jetstream);
    let r = nc.request("$JS.API.INFO", "".into()).await;
    assert!(r.is_err(), "no JetStream, no responders: {r:?}");
    plain.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn stream_publish_get_purge_delete_and_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await?;
    assert_eq!(orders.info().await?.config.num_replicas, 1);

    let mut acked = Vec::new();
    for i in 1..=3u64 {
        let ack = js.publish(format!("orders.{i}"), format!("m{i}").into()).await?.await?;
        assert_eq!((ack.stream.as_str(), ack.sequence, ack.duplicate), ("ORDERS", i, false));
        acked.push((i, format!("m{i}")));
    }

    // Duplicate message id: acked as a duplicate of the first, nothing stored.
    let p = || Publish::build().payload("once".into()).message_id("id-1");
    let first = js.send_publish("orders.dup", p()).await?.await?;
    let again = js.send_publish("orders.dup", p()).await?.await?;
    assert_eq!((first.sequence, first.duplicate), (4, false));
    assert_eq!((again.sequence, again.duplicate), (4, true));
    acked.push((4, "once".into()));

    // Expected last sequence: right, then wrong (10071 with the actual last sequence).
    let ok = js
        .send_publish("orders.x", Publish::build().payload("five".into()).expected_last_sequence(4))
        .await?
        .await?;
    assert_eq!(ok.sequence, 5);
    acked.push((5, "five".into()));
    let wrong = js
        .send_publish("orders.x", Publish::build().payload("no".into()).expected_last_sequence(1))
        .await?
        .await
        .expect_err("wrong last sequence");
    assert_eq!(wrong.kind(), jetstream::context::PublishErrorKind::WrongLastSequence);
    let mut h = HeaderMap::new();
    h.insert("Nats-Expected-Last-Sequence", "1");
    let raw = nc.request_with_headers("orders.x", h, "no".into()).await?;
    let v: Value = serde_json::from_slice(&raw.payload)?;
    assert_eq!(err_code(&v), 10071);
    assert_eq!(v["error"]["description"], "wrong last sequence: 5");
    assert_eq!(v["stream"], "ORDERS");

    // Get by sequence and last by subject.
    let m = orders.get_raw_message(2).await?;
    assert_eq!((m.subject.as_str(), m.payload.as_ref()), ("orders.2", &b"m2"[..]));
    let last = orders.get_last_raw_message_by_subject("orders.x").await?;
    assert_eq!(last.sequence, 5);
    let missing = api(&nc, "$JS.API.STREAM.MSG.GET.ORDERS", r#"{"seq":99}"#).await?;
    assert_eq!(err_code(&missing), 10037);

    // Delete one message, then purge one subject.
    assert!(orders.delete_message(1).await?);
    acked.retain(|(seq, _)| *seq != 1);
    let gone = api(&nc, "$JS.API.STREAM.MSG.DELETE.ORDERS", r#"{"seq":1}"#).await?;
    assert_eq!(err_code(&gone), 10057);
    let purged = orders.purge().filter("orders.3").await?;
    assert_eq!(purged.purged, 1);
    acked.retain(|(seq, _)| *seq != 3);
    let info = orders.info().await?.clone();
    assert_eq!(
        (info.state.messages, info.state.first_sequence, info.state.last_sequence),
        (3, 2, 5)
    );
    let detail = api(&nc, "$JS.API.STREAM.INFO.ORDERS", r#"{"deleted_details":true}"#).await?;
    assert_eq!(detail["state"]["deleted"], serde_json::json!([3]));
    let subjects =
        api(&nc, "$JS.API.STREAM.INFO.ORDERS", r#"{"subjects_filter":"orders.*"}"#).await?;
    assert_eq!(subjects["state"]["subjects"]["orders.x"], 1);
    assert_eq!(subjects["total"], 3);

    // Restart on the same store directory: every acknowledged message is there.
    s.shutdown().await;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut orders = js.get_stream("ORDERS").await?;
    assert_eq!(orders.info().await?.state.messages, acked.len() as u64);
    for (seq, payload) in &acked {
        let m = orders.get_raw_message(*seq).await?;
        assert_eq!(m.payload, Bytes::from(payload.clone()), "seq {seq}");
    }
    // The duplicate window survived too, and sequences continue.
    let again = js.send_publish("orders.dup", p()).await?.await?;
    assert_eq!((again.sequence, again.duplicate), (4, true));
    let next = js.publish("orders.y", "six".into()).await?.await?;
    assert_eq!(next.sequence, 6);

    // Delete: gone from the API, and publishing finds no stream.
    assert!(js.delete_stream("ORDERS").await?.success);
    let v = api(&nc, "$JS.API.STREAM.INFO.ORDERS", "").await?;
    assert_eq!(err_code(&v), 10059);
    let e = js.publish("orders.z", "x".into()).await?.await.expect_err("no stream");
    assert_eq!(e.kind(), jetstream::context::PublishErrorKind::StreamNotFound);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn memory_streams_come_back_empty() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let js = jetstream::new(async_nats::connect(s.client_url()).await?);
    js.create_stream(stream::Config {
        name: "MEM".into(),
        subjects: vec!["mem.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await?;
    assert_eq!(js.publish("mem.a", "1".into()).await?.await?.sequence, 1);
    s.shutdown().await;

    let s = start(js_opts(dir.path())).await;
    let js = jetstream::new(async_nats::connect(s.client_url()).await?);
    let mut mem = js.get_stream("MEM").await?;
    let info = mem.info().await?;
    assert_eq!(info.config.storage, stream::StorageType::Memory);
    assert_eq!(info.state.messages, 0);
    assert_eq!(js.publish("mem.b", "2".into()).await?.await?.sequence, 1);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kv_put_get_delete_history_and_create_conflict() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let kv = js
        .create_key_value(jetstream::kv::Config {
            bucket: "cfg".into(),
            history: 5,
            ..Default::default()
        })
        .await?;
    assert_eq!(kv.put("k", "v1".into()).await?, 1);
    assert_eq!(kv.put("k", "v2".into()).await?, 2);
    assert_eq!(kv.get("k").await?, Some(Bytes::from("v2")));
    assert_eq!(kv.entry("k").await?.map(|e| e.revision), Some(2));

    // create: only when the key does not exist (expected last subject sequence 0).
    let e = kv.create("k", "v3".into()).await.expect_err("exists");
    assert_eq!(e.kind(), jetstream::kv::CreateErrorKind::AlreadyExists);
    assert_eq!(kv.create("fresh", "f".into()).await?, 3);
    // update with the right revision works, with a stale one it does not.
    assert_eq!(kv.update("k", "v3".into(), 2).await?, 4);
    assert!(kv.update("k", "v4".into(), 2).await.is_err());

    kv.delete("k").await?;
    assert_eq!(kv.get("k").await?, None);
    // After a delete the key can be created again.
    assert_eq!(kv.create("k", "again".into()).await?, 6);

    // History through a batched direct get: every revision of the key, then end of batch.
    let batch = replies(
        &nc,
        "$JS.API.DIRECT.GET.KV_cfg",
        r#"{"seq":1,"batch":10,"next_by_subj":"$KV.cfg.k"}"#,
        true,
    )
    .await?;
    let payloads: Vec<&[u8]> = batch.iter().map(|m| m.payload.as_ref()).collect();
    assert_eq!(payloads, vec![&b"v1"[..], b"v2", b"v3", b"", b"again", b""]);
    let ops: Vec<Option<String>> = batch
        .iter()
        .map(|m| m.headers.as_ref().and_then(|h| h.get("KV-Operation")).map(|v| v.to_string()))
        .collect();
    assert_eq!(ops[3].as_deref(), Some("DEL"));
    let eob = batch.last().unwrap();
    assert_eq!(eob.status.map(u16::from), Some(204));

    // Purge keeps only the purge marker of the key.
    kv.purge("k").await?;
    let info = api(&nc, "$JS.API.STREAM.INFO.KV_cfg", r#"{"subjects_filter":">"}"#).await?;
    assert_eq!(info["state"]["subjects"]["$KV.cfg.k"], 1);
    assert_eq!(kv.get("k").await?, None);
    assert_eq!(kv.get("fresh").await?, Some(Bytes::from("f")));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn choiros_overlap_and_replicas_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let r3 = js
        .create_stream(stream::Config {
            name: "USER_EVENTS".into(),
            subjects: vec!["choiros.user.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect_err("R3 on one server");
    let code = |e: &jetstream::context::CreateStreamError| match e.kind() {
        jetstream::context::CreateStreamErrorKind::JetStream(j) => j.error_code().0,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(code(&r3), 10074);

    js.create_stream(stream::Config {
        name: "AGENT_EVENTS".into(),
        subjects: vec!["choiros.agent.>".into()],
        ..Default::default()
    })
    .await?;
    let inbox = js
        .create_stream(stream::Config {
            name: "AGENT_INBOX".into(),
            subjects: vec!["choiros.agent.*.inbox".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect_err("overlap");
    assert_eq!(code(&inbox), 10065);
    let names = api(&nc, "$JS.API.STREAM.NAMES", "").await?;
    assert_eq!(names["streams"], serde_json::json!(["AGENT_EVENTS"]));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn api_errors_unknown_endpoints_and_no_direct() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let v = api(&nc, "$JS.API.STREAM.CREATE.X", r#"{"name":"Y"}"#).await?;
    assert_eq!(err_code(&v), 10056);
    let v = api(&nc, "$JS.API.STREAM.CREATE.X", "{").await?;
    assert_eq!(err_code(&v), 10025);
    let v = api(&nc, "$JS.API.NOPE", "").await?;
    assert_eq!(
        (v["type"].as_str(), err_code(&v)),
        (Some("io.nats.jetstream.api.v1.system_response"), 10003)
    );
    let v = api(&nc, "$JS.API.CONSUMER.INFO.X.Y", "").await?;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.consumer_info_response");
    assert_eq!((v["error"]["code"].as_u64(), err_code(&v)), (Some(404), 10059));
    let mut h = HeaderMap::new();
    h.insert("Nats-Required-Api-Level", "99");
    let m = nc.request_with_headers("$JS.API.INFO", h, "".into()).await?;
    let v: Value = serde_json::from_slice(&m.payload)?;
    assert_eq!(err_code(&v), 10185);

    // A stream without allow_direct has no direct-get subscription: no responders.
    let v = api(&nc, "$JS.API.STREAM.CREATE.ND", r#"{"name":"ND","subjects":["nd"]}"#).await?;
    assert_eq!(v["config"]["allow_direct"], false);
    let r = nc.request("$JS.API.DIRECT.GET.ND", r#"{"seq":1}"#.into()).await;
    assert!(r.is_err(), "{r:?}");
    // With it: by sequence, by subject form, statuses.
    let v = api(
        &nc,
        "$JS.API.STREAM.CREATE.D",
        r#"{"name":"D","subjects":["d.>"],"allow_direct":true}"#,
    )
    .await?;
    assert_eq!(v["did_create"], true);
    let mut h = HeaderMap::new();
    h.insert("Foo", "bar");
    nc.request_with_headers("d.a", h, "one".into()).await?;
    nc.request("d.b", "two".into()).await?;
    let m = nc.request("$JS.API.DIRECT.GET.D", r#"{"seq":1}"#.into()).await?;
    let hd = m.headers.clone().unwrap();
    assert_eq!(m.payload.as_ref(), b"one");
    assert_eq!(hd.get("Foo").map(|v| v.as_str()), Some("bar"));
    assert_eq!(hd.get("Nats-Sequence").map(|v| v.as_str()), Some("1"));
    assert_eq!(hd.get("Nats-Stream").map(|v| v.as_str()), Some("D"));
    let m = nc.request("$JS.API.DIRECT.GET.D.d.b", "".into()).await?;
    assert_eq!(m.payload.as_ref(), b"two");
    let m = nc.request("$JS.API.DIRECT.GET.D", r#"{"seq":9}"#.into()).await?;
    assert_eq!(m.status.map(u16::from), Some(404));
    let multi = replies(&nc, "$JS.API.DIRECT.GET.D", r#"{"multi_last":["d.*"]}"#, true).await?;
    assert_eq!(multi.len(), 3);
    let eob = multi[2].headers.clone().unwrap();
    assert_eq!(eob.get("Nats-UpTo-Sequence").map(|v| v.as_str()), Some("2"));
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn limits_and_max_age_expiry() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    let mut st = js
        .create_stream(stream::Config {
            name: "L".into(),
            subjects: vec!["l.>".into()],
            max_messages: 2,
            max_age: Duration::from_millis(1500),
            ..Default::default()
        })
        .await?;
    for i in 0..3 {
        js.publish("l.a", format!("{i}").into()).await?.await?;
    }
    let info = st.info().await?.clone();
    assert_eq!((info.state.messages, info.state.first_sequence), (2, 2));
    // max_age runs on a timer: all gone without further traffic.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(st.info().await?.state.messages, 0);

    // Discard new: refused with the store's words.
    js.create_stream(stream::Config {
        name: "N".into(),
        subjects: vec!["n".into()],
        max_messages: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await?;
    js.publish("n", "1".into()).await?.await?;
    let raw = nc.request("n", "2".into()).await?;
    let v: Value = serde_json::from_slice(&raw.payload)?;
    assert_eq!(err_code(&v), 10077);
    assert_eq!(v["error"]["description"], "maximum messages exceeded");
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn full_queue_answers_429() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut o = js_opts(dir.path());
    // Smaller than any message: every stream publish is refused at the door.
    o.jetstream.max_buffered_size = Some(4);
    let s = start(o).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let v = api(&nc, "$JS.API.STREAM.CREATE.Q", r#"{"name":"Q","subjects":["q"]}"#).await?;
    assert!(v["error"].is_null(), "{v}");
    let m = nc.request("q", "payload".into()).await?;
    assert_eq!(m.status.map(u16::from), Some(429));
    let v: Value = serde_json::from_slice(&m.payload)?;
    assert_eq!((err_code(&v), v["stream"].as_str()), (10167, Some("Q")));
    let stats = s.jetstream_stats().expect("runtime running");
    assert!(stats.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    s.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn acks_of_a_burst_share_syncs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let js = jetstream::new(nc.clone());
    js.create_stream(stream::Config {
        name: "B".into(),
        subjects: vec!["b".into()],
        ..Default::default()
    })
    .await?;
    let stats = s.jetstream_stats().expect("runtime running");
    let before = stats.syncs.load(std::sync::atomic::Ordering::Relaxed);
    const N: u64 = 500;
    let mut futures = Vec::new();
    for i in 0..N {
        futures.push(js.publish("b", format!("{i}").into()).await?);
    }
    let mut seqs = Vec::new();
    for f in futures {
        seqs.push(f.await?.sequence);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
    let syncs = stats.syncs.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(syncs >= 1, "acks went out without a sync");
    assert!(syncs < N, "{syncs} syncs for {N} messages: no group commit");
    s.shutdown().await;
    Ok(())
}

/// Options from a config text (with a temporary store directory appended).
fn conf_opts(dir: &std::path::Path, text: &str) -> Options {
    let path = dir.join("server.conf");
    std::fs::write(
        &path,
        format!("host: 127.0.0.1\nport: -1\njetstream {{ store_dir: {:?} }}\n{text}", dir),
    )
    .unwrap();
    let (o, _warnings) = Options::from_file(&path).expect("config parses");
    o
}

#[tokio::test]
async fn jetstream_per_account_with_limits() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let o = conf_opts(
        dir.path(),
        r#"accounts {
          A { jetstream: enabled, users: [{user: a, password: a}] }
          B { users: [{user: b, password: b}] }
          C { jetstream: { max_mem: 2K, max_file: 1M, max_streams: 2, max_consumers: 1 },
              users: [{user: c, password: c}] }
        }"#,
    );
    let s = start(o).await;
    let login = |u: &'static str| {
        async_nats::ConnectOptions::with_user_and_password(u.into(), u.into())
            .connect(s.client_url())
    };
    let (a, b, c) = (login("a").await?, login("b").await?, login("c").await?);

    // No JetStream in B: every endpoint says so, in its own response type.
    let v = api(&b, "$JS.API.INFO", "").await?;
    assert_eq!((err_code(&v), v["type"].as_str()), (10039, Some(ACCOUNT_INFO)));
    let v = api(&b, "$JS.API.STREAM.NAMES", "").await?;
    assert_eq!(err_code(&v), 10039);
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_names_response");
    let v = api(&b, "$JS.API.CONSUMER.INFO.X.Y", "").await?;
    assert_eq!(err_code(&v), 10039);

    // C's limits: reported, and enforced on create and on publish.
    let v = api(&c, "$JS.API.INFO", "").await?;
    assert_eq!(v["limits"]["max_streams"], 2);
    // As in nats-server, K in account limits is 1000.
    assert_eq!(v["limits"]["max_memory"], 2000);
    let mk = |name: &str, storage: &str| {
        format!(
            r#"{{"name":"{name}","subjects":["{n}.>"],"storage":"{storage}"}}"#,
            n = name.to_lowercase()
        )
    };
    let v = api(&c, "$JS.API.STREAM.CREATE.M", &mk("M", "memory")).await?;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api(&c, "$JS.API.STREAM.CREATE.F", &mk("F", "file")).await?;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api(&c, "$JS.API.STREAM.CREATE.G", &mk("G", "file")).await?;
    assert_eq!(err_code(&v), 10027, "{v}");
    let cc = r#"{"stream_name":"F","config":{"ack_policy":"explicit"}}"#;
    assert_eq!(err_code(&api(&c, "$JS.API.CONSUMER.CREATE.F", cc).await?), 0);
    assert_eq!(err_code(&api(&c, "$JS.API.CONSUMER.CREATE.F", cc).await?), 10026);
    // 2000 bytes of memory: two ~920-byte messages fit, a third would not.
    let big = "x".repeat(900);
    let v = api(&c, "m.1", &big).await?;
    assert_eq!(v["seq"], 1, "{v}");
    let v = api(&c, "m.2", &big).await?;
    assert_eq!(v["seq"], 2, "{v}");
    let v = api(&c, "m.3", &big).await?;
    assert_eq!(err_code(&v), 10002, "{v}");
    let v = api(&c, "$JS.API.STREAM.INFO.M", "").await?;
    assert_eq!(v["state"]["messages"], 2);

    // A is unlimited and has its own namespace: the same stream name is free there.
    let v = api(&a, "$JS.API.STREAM.CREATE.M", &mk("M", "memory")).await?;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api(&a, "$JS.API.STREAM.NAMES", "").await?;
    assert_eq!(v["streams"], serde_json::json!(["M"]));
    let v = api(&a, "$JS.API.INFO", "").await?;
    assert_eq!(v["limits"]["max_streams"], -1);
    assert_eq!(v["streams"], 1);
    s.shutdown().await;
    Ok(())
}

const ACCOUNT_INFO: &str = "io.nats.jetstream.api.v1.account_info_response";

#[tokio::test]
async fn stream_action_advisories() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::connect(s.client_url()).await?;
    let mut adv = nc.subscribe("$JS.EVENT.ADVISORY.STREAM.>").await?;
    nc.flush().await?;
    let cfg = r#"{"name":"ADV","subjects":["adv.>"]}"#;
    assert_eq!(err_code(&api(&nc, "$JS.API.STREAM.CREATE.ADV", cfg).await?), 0);
    // Creating it again with the same config changes nothing: no second advisory.
    assert_eq!(err_code(&api(&nc, "$JS.API.STREAM.CREATE.ADV", cfg).await?), 0);
    let upd = r#"{"name":"ADV","subjects":["adv.>"],"max_msgs":10}"#;
    assert_eq!(err_code(&api(&nc, "$JS.API.STREAM.UPDATE.ADV", upd).await?), 0);
    assert_eq!(err_code(&api(&nc, "$JS.API.STREAM.DELETE.ADV", "").await?), 0);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(T, adv.next()).await?.context("advisory")?;
        let v: Value = serde_json::from_slice(&m.payload)?;
        assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.stream_action");
        assert_eq!(v["stream"], "ADV");
        seen.push((m.subject.to_string(), v["action"].as_str().unwrap_or("").to_string()));
    }
    let want = [
        ("$JS.EVENT.ADVISORY.STREAM.CREATED.ADV", "create"),
        ("$JS.EVENT.ADVISORY.STREAM.UPDATED.ADV", "modify"),
        ("$JS.EVENT.ADVISORY.STREAM.DELETED.ADV", "delete"),
    ];
    assert_eq!(seen, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), adv.next()).await.is_err(),
        "no further advisory"
    );
    s.shutdown().await;
    Ok(())
}

/// `$JS.EVENT.ADVISORY.API`: each answered API request, with the requester, the request and
/// the response (the reply's exact bytes); requests from before anyone listened are not
/// reported.
#[tokio::test]
async fn api_audit_advisories() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = start(js_opts(dir.path())).await;
    let nc = async_nats::ConnectOptions::new().name("auditor").connect(s.client_url()).await?;
    // Nobody listens yet: nothing is built or sent for this one.
    assert_eq!(err_code(&api(&nc, "$JS.API.STREAM.NAMES", "").await?), 0);
    let mut adv = nc.subscribe("$JS.EVENT.ADVISORY.API").await?;
    nc.flush().await?;
    let cfg = r#"{"name":"AUD","subjects":["aud.>"],"storage":"memory"}"#;
    let created = nc.request("$JS.API.STREAM.CREATE.AUD", cfg.into()).await?;
    let missing = nc.request("$JS.API.STREAM.INFO.NOPE", "".into()).await?;
    for (subject, request, reply) in
        [("$JS.API.STREAM.CREATE.AUD", cfg, &created), ("$JS.API.STREAM.INFO.NOPE", "", &missing)]
    {
        let m = tokio::time::timeout(T, adv.next()).await?.context("audit advisory")?;
        let v: Value = serde_json::from_slice(&m.payload)?;
        assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.api_audit");
        assert_eq!(v["subject"], subject);
        assert_eq!(v.get("request").and_then(Value::as_str).unwrap_or(""), request);
        assert_eq!(v["response"].as_str().map(str::as_bytes), Some(&reply.payload[..]));
        assert_eq!(v["client"]["acc"], "$G");
        assert_eq!(v["client"]["name"], "auditor");
        assert_eq!(v["client"]["kind"], "Client");
        assert!(v["client"]["id"].as_u64().is_some_and(|id| id > 0));
        assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), adv.next()).await.is_err(),
        "one advisory per request"
    );
    s.shutdown().await;
    Ok(())
}
