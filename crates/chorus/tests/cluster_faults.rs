//! Faults of a three-node cluster, process level: three real `chorus` processes joined by
//! routes, R3 streams (one file, one memory), publishers with message ids running while a
//! node is killed with SIGKILL, frozen with SIGSTOP past the election timeout, or all three
//! are killed at once.
//!
//! After each fault every node is made the stream leader in turn (STREAM.LEADER.STEPDOWN
//! until it wins) and the whole stream is read back through it: every acknowledged message
//! must be at the sequence its PubAck named, no message may be stored twice, one
//! publisher's messages are stored in the order it sent them, the stream is contiguous from
//! 1, and the replicas agree on what is at each sequence. Messages whose ack was lost in the
//! fault may or may not be there; both are correct.
//!
//! # Layout
//!
//! ```text
//! Node     one child process: config file with fixed ports (restarts reuse them), SIGKILL,
//!          SIGSTOP/SIGCONT, kill-on-drop
//! Load     publishers (own connection each, a window of async publishes) on chosen nodes
//! phases   leader SIGKILL + restart, leader SIGSTOP + SIGCONT, follower SIGKILL + restart,
//!          all three SIGKILLed and restarted, and again once the raft log was compacted
//! verify   each node made leader, its stream read back, checked against every outcome
//! ```

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, consumer};
use futures::FutureExt as _;
use futures::stream::{FuturesUnordered, StreamExt as _};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The streams under test: (name, subject prefix, storage).
const STREAMS: [(&str, &str, &str); 2] =
    [("FAULTF", "faultf", "file"), ("FAULTM", "faultm", "memory")];
/// Publishers per stream.
const PUBLISHERS: usize = 2;
/// Publishes in flight per publisher, unacknowledged.
const WINDOW: usize = 16;
/// Ack timeout of the publishers: a publish caught by a fault counts as unacknowledged.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// API requests: long enough for an election.
const API_TIMEOUT: Duration = Duration::from_secs(5);

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One `chorus` child process. Dropping it kills it, so a failed assertion leaks nothing.
struct Node {
    name: String,
    dir: PathBuf,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Node {
    fn new(dir: &Path, i: usize, ports: &[(u16, u16)]) -> Result<Node> {
        let name = format!("n{}", i + 1);
        let (port, route) = ports[i];
        let routes: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, r))| format!("nats://127.0.0.1:{r}"))
            .collect();
        let store = dir.join(&name);
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                 jetstream {{ store_dir: \"{}\" }}\n\
                 cluster {{\n  name: faults\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                store.display(),
                routes.join(", ")
            ),
        )?;
        Ok(Node { name, dir: dir.to_path_buf(), conf, port, child: None, starts: 0 })
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("{}.{}.log", self.name, self.starts))
    }

    async fn start(&mut self) -> Result<()> {
        self.starts += 1;
        let out = std::fs::File::create(self.log())?;
        let child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning chorus")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        let mark = format!("Listening for client connections on 127.0.0.1:{}", self.port);
        loop {
            let text = std::fs::read_to_string(self.log()).unwrap_or_default();
            if text.contains(&mark) {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().expect("spawned").try_wait()? {
                bail!("{} exited at start ({status}):\n{text}", self.name);
            }
            if Instant::now() > deadline {
                bail!("{} did not listen within 15 s:\n{text}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL and reap: no shutdown code runs.
    fn kill(&mut self) -> Result<()> {
        let mut child = self.child.take().context("not running")?;
        child.kill()?;
        let status = child.wait()?;
        ensure!(status.code().is_none(), "{} had exited before the kill: {status}", self.name);
        Ok(())
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        let child = self.child.as_ref().context("not running")?;
        kill(Pid::from_raw(i32::try_from(child.id())?), sig)?;
        Ok(())
    }

    /// Everything this node logged since its first start.
    fn log_text(&self) -> String {
        (1..=self.starts)
            .map(|k| {
                let p = self.dir.join(format!("{}.{k}.log", self.name));
                std::fs::read_to_string(p).unwrap_or_default()
            })
            .collect()
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn api(nc: &async_nats::Client, subject: &str, body: Value) -> Result<Value> {
    let m =
        tokio::time::timeout(API_TIMEOUT, nc.request(subject.to_string(), body.to_string().into()))
            .await
            .with_context(|| format!("{subject}: no answer in time"))??;
    Ok(serde_json::from_slice(&m.payload)?)
}

/// Retries `f` until it is Ok or `limit` passed; the last error is reported.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e.context(what.to_string())),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn create_streams(nc: &async_nats::Client) -> Result<()> {
    for (name, prefix, storage) in STREAMS {
        let cfg = json!({
            "name": name,
            "subjects": [format!("{prefix}.>")],
            "storage": storage,
            "num_replicas": 3,
            "duplicate_window": 120_000_000_000u64,
        });
        eventually(Duration::from_secs(30), "creating a stream", || async {
            let v = api(nc, &format!("$JS.API.STREAM.CREATE.{name}"), cfg.clone()).await?;
            ensure!(v.get("error").is_none(), "{v}");
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The stream's leader, once it has one and every replica is current.
async fn settled_leader(nc: &async_nats::Client, stream: &str) -> Result<String> {
    eventually(Duration::from_secs(30), "waiting for a settled stream", || async {
        let v = api(nc, &format!("$JS.API.STREAM.INFO.{stream}"), json!({})).await?;
        let leader = v["cluster"]["leader"].as_str().unwrap_or_default().to_string();
        ensure!(!leader.is_empty(), "no leader: {v}");
        let replicas = v["cluster"]["replicas"].as_array().cloned().unwrap_or_default();
        ensure!(replicas.len() == 2, "replicas: {v}");
        ensure!(
            replicas.iter().all(|r| r["current"] == json!(true) && r["offline"] != json!(true)),
            "a replica is behind: {v}"
        );
        Ok(leader)
    })
    .await
}

/// The stream's leader as its info names it, asked with a short timeout: while a new leader
/// takes over, nobody answers for a moment (as with nats-server).
async fn leader_now(nc: &async_nats::Client, stream: &str) -> Option<String> {
    let subject = format!("$JS.API.STREAM.INFO.{stream}");
    let m = tokio::time::timeout(Duration::from_secs(1), nc.request(subject, "{}".into()))
        .await
        .ok()?
        .ok()?;
    let v: Value = serde_json::from_slice(&m.payload).ok()?;
    v["cluster"]["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_string)
}

/// Steps the stream's leader down in favour of `target` (`placement.preferred`) until it
/// leads; returns the stepdowns it took.
async fn make_leader(nc: &async_nats::Client, stream: &str, target: &str) -> Result<usize> {
    for stepdowns in 0..6 {
        let leader = settled_leader(nc, stream).await?;
        if leader == target {
            return Ok(stepdowns);
        }
        let v = api(
            nc,
            &format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
            json!({"placement": {"preferred": target}}),
        )
        .await?;
        ensure!(v["success"] == json!(true), "stepdown of {stream}: {v}");
        // The old leader may win again (the target could not): then step down again.
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if leader_now(nc, stream).await.is_some_and(|l| l != leader) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    bail!("{target} did not become leader of {stream} in 6 stepdowns")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked(u64),
    /// An error reply (stored or not is then a server's lie either way: must not be stored).
    Refused,
    /// No answer: stored or not, both are correct.
    Unknown,
}

struct PubLog {
    stream: usize,
    phase: usize,
    publisher: usize,
    outcomes: Vec<Outcome>,
}

fn msg_id(stream: usize, phase: usize, publisher: usize, n: usize) -> String {
    format!("s{stream}.f{phase}.p{publisher}.{n:08}")
}

fn parse_id(id: &str) -> Option<(usize, usize, usize, usize)> {
    let mut it = id.split('.');
    let s = it.next()?.strip_prefix('s')?.parse().ok()?;
    let f = it.next()?.strip_prefix('f')?.parse().ok()?;
    let p = it.next()?.strip_prefix('p')?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    it.next().is_none().then_some((s, f, p, n))
}

fn classify(r: Result<jetstream::publish::PublishAck, PublishError>) -> Outcome {
    match r {
        Ok(ack) => Outcome::Acked(ack.sequence),
        Err(e) if e.kind() == PublishErrorKind::Other => Outcome::Refused,
        Err(_) => Outcome::Unknown,
    }
}

/// One publisher on one node: async publishes with message ids, at most [`WINDOW`] pending,
/// until `stop`; then it waits for what is pending (each bounded by [`ACK_TIMEOUT`]).
async fn publisher(
    url: String,
    stream: usize,
    phase: usize,
    p: usize,
    window: usize,
    mut stop: watch::Receiver<bool>,
) -> Result<PubLog> {
    let client = async_nats::ConnectOptions::new().retry_on_initial_connect().connect(&url).await?;
    let js = jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client);
    let subject = format!("{}.{p}", STREAMS[stream].1);
    let mut outcomes = Vec::new();
    let mut pending = FuturesUnordered::new();
    let mut stopped = false;
    loop {
        while let Some(Some((n, r))) = pending.next().now_or_never() {
            outcomes[n] = classify(r);
        }
        if stopped || pending.len() >= window {
            match pending.next().await {
                Some((n, r)) => outcomes[n] = classify(r),
                None => break,
            }
            continue;
        }
        let n = outcomes.len();
        outcomes.push(Outcome::Unknown);
        let id = msg_id(stream, phase, p, n);
        let send = async {
            let mut h = HeaderMap::new();
            h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
            js.publish_with_headers(subject.clone(), h, id.clone().into()).await
        };
        let sent = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            sent = send => Some(sent),
        };
        match sent {
            None => stopped = true,
            Some(Ok(ack)) => pending.push(async move { (n, ack.await) }),
            // Not sent (the connection is gone): stays Unknown.
            Some(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(PubLog { stream, phase, publisher: p, outcomes })
}

/// Publishers of every stream, spread over `urls`.
struct Load {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<PubLog>>>,
}

impl Load {
    fn start(urls: &[String], phase: usize) -> Load {
        Load::with_window(urls, phase, WINDOW, STREAMS.len())
    }

    /// Publishers of the first `streams` streams.
    fn with_window(urls: &[String], phase: usize, window: usize, streams: usize) -> Load {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for s in 0..streams {
            for p in 0..PUBLISHERS {
                let url = urls[(s * PUBLISHERS + p) % urls.len()].clone();
                tasks.push(tokio::spawn(publisher(url, s, phase, p, window, rx.clone())));
            }
        }
        Load { stop, tasks }
    }

    async fn finish(self, phase: usize) -> Result<Vec<PubLog>> {
        self.stop.send(true)?;
        let mut logs = Vec::new();
        for t in self.tasks {
            let log = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .context("a publisher did not finish")???;
            logs.push(log);
        }
        let all = || logs.iter().flat_map(|l| &l.outcomes);
        let acked = all().filter(|o| matches!(o, Outcome::Acked(_))).count();
        let refused = all().filter(|o| **o == Outcome::Refused).count();
        let unknown = all().filter(|o| **o == Outcome::Unknown).count();
        eprintln!("phase {phase}: {acked} acked, {refused} refused, {unknown} unanswered");
        ensure!(acked > 0, "phase {phase}: nothing was acknowledged");
        Ok(logs)
    }
}

/// The stream as read through its current leader: payloads (message ids) by sequence.
async fn read_stream(nc: &async_nats::Client, name: &str) -> Result<Vec<String>> {
    let js = jetstream::ContextBuilder::new().timeout(API_TIMEOUT).build(nc.clone());
    let mut st = js.get_stream(name).await?;
    let state = st.info().await?.state.clone();
    let last = state.last_sequence;
    ensure!(
        state.messages == last && (last == 0 || state.first_sequence == 1),
        "stream {name} is not contiguous from 1: {state:?}"
    );
    let c = st
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut msgs = c.messages().await?;
    let mut out = Vec::with_capacity(last as usize);
    while (out.len() as u64) < last {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .with_context(|| format!("{name}: read {} of {last}", out.len()))?
            .context("consumer ended")??;
        let seq = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
        ensure!(seq == out.len() as u64 + 1, "{name}: expected seq {}, got {seq}", out.len() + 1);
        out.push(String::from_utf8(m.payload.to_vec())?);
    }
    Ok(out)
}

/// The invariants of one stream's contents against every outcome so far.
fn check(stream: usize, stored: &[String], logs: &[PubLog]) -> Result<()> {
    let attempted: HashMap<(usize, usize), &PubLog> =
        logs.iter().filter(|l| l.stream == stream).map(|l| ((l.phase, l.publisher), l)).collect();
    let mut by_id: HashMap<&str, u64> = HashMap::new();
    let mut last_n: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, id) in stored.iter().enumerate() {
        let seq = i as u64 + 1;
        let Some((s, f, p, n)) = parse_id(id) else { bail!("seq {seq}: foreign payload {id}") };
        ensure!(s == stream, "seq {seq}: {id} is another stream's");
        let log = attempted.get(&(f, p)).with_context(|| format!("seq {seq}: unknown {id}"))?;
        ensure!(n < log.outcomes.len(), "seq {seq}: {id} was never published");
        ensure!(log.outcomes[n] != Outcome::Refused, "seq {seq}: {id} stored but refused");
        if let Some(prev) = by_id.insert(id, seq) {
            bail!("{id} stored twice: at seq {prev} and {seq}");
        }
        if let Some(pn) = last_n.insert((f, p), n) {
            ensure!(pn < n, "out of order: {id} at seq {seq} after counter {pn}");
        }
    }
    for l in attempted.values() {
        for (n, o) in l.outcomes.iter().enumerate() {
            if let Outcome::Acked(seq) = *o {
                let id = msg_id(stream, l.phase, l.publisher, n);
                ensure!(
                    by_id.get(id.as_str()) == Some(&seq),
                    "LOSS: {id} was acked at seq {seq}; there: {:?}; {id} at {:?}",
                    stored.get(seq as usize - 1),
                    by_id.get(id.as_str())
                );
            }
        }
    }
    Ok(())
}

/// Every node made leader of every stream in turn; what each serves is checked, and the
/// replicas must agree at every sequence.
async fn verify(nodes: &[Node], logs: &[PubLog], phase: usize) -> Result<()> {
    let nc = async_nats::connect(nodes[0].url()).await?;
    for (s, (name, _, _)) in STREAMS.iter().enumerate() {
        let mut reads: Vec<(String, Vec<String>)> = Vec::new();
        for node in nodes {
            let t0 = Instant::now();
            let stepdowns = make_leader(&nc, name, &node.name).await?;
            let t1 = Instant::now();
            let stored = read_stream(&nc, name).await?;
            eprintln!(
                "phase {phase}: {name}: {} leads after {stepdowns} stepdowns ({} ms), \
                 read {} in {} ms",
                node.name,
                (t1 - t0).as_millis(),
                stored.len(),
                t1.elapsed().as_millis()
            );
            check(s, &stored, logs).with_context(|| format!("{name} led by {}", node.name))?;
            reads.push((node.name.clone(), stored));
        }
        let (first, rest) = reads.split_first().expect("three reads");
        for (node, r) in rest {
            ensure!(r == &first.1, "{name}: {node} and {} hold different messages", first.0);
        }
        eprintln!("phase {phase}: {name}: {} messages, the same on every leader", first.1.len());
    }
    Ok(())
}

fn leader_index(nodes: &[Node], name: &str) -> Result<usize> {
    nodes.iter().position(|n| n.name == name).with_context(|| format!("unknown leader {name}"))
}

async fn faults(dir: &Path) -> Result<()> {
    let ports: Vec<(u16, u16)> =
        (0..3).map(|_| Ok((free_port()?, free_port()?))).collect::<Result<_>>()?;
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::new(dir, i, &ports)).collect::<Result<_>>()?;
    for n in &mut nodes {
        n.start().await?;
    }
    let nc = async_nats::connect(nodes[0].url()).await?;
    create_streams(&nc).await?;
    let mut logs = Vec::new();

    // Phase 0: SIGKILL the file stream's leader under load; it comes back on its store.
    let leader = leader_index(&nodes, &settled_leader(&nc, STREAMS[0].0).await?)?;
    let others: Vec<String> =
        nodes.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, n)| n.url()).collect();
    let load = Load::start(&others, 0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    eprintln!("phase 0: SIGKILL of {} (leader)", nodes[leader].name);
    nodes[leader].kill()?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    logs.extend(load.finish(0).await?);
    nodes[leader].start().await?;
    verify(&nodes, &logs, 0).await?;

    // Phase 1: SIGSTOP the leader past the election timeout, then SIGCONT: the old leader
    // must not ack anything the new one did not commit.
    let leader = leader_index(&nodes, &settled_leader(&nc, STREAMS[0].0).await?)?;
    let others: Vec<String> =
        nodes.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, n)| n.url()).collect();
    let load = Load::start(&others, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    eprintln!("phase 1: SIGSTOP of {} (leader) for 3 s", nodes[leader].name);
    nodes[leader].signal(Signal::SIGSTOP)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes[leader].signal(Signal::SIGCONT)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    logs.extend(load.finish(1).await?);
    verify(&nodes, &logs, 1).await?;

    // Phase 2: SIGKILL a follower under load, bring it back while the load goes on.
    let leader = leader_index(&nodes, &settled_leader(&nc, STREAMS[0].0).await?)?;
    let follower = (leader + 1) % 3;
    let others: Vec<String> =
        nodes.iter().enumerate().filter(|(i, _)| *i != follower).map(|(_, n)| n.url()).collect();
    let load = Load::start(&others, 2);
    tokio::time::sleep(Duration::from_millis(800)).await;
    eprintln!("phase 2: SIGKILL of {} (follower)", nodes[follower].name);
    nodes[follower].kill()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes[follower].start().await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    logs.extend(load.finish(2).await?);
    verify(&nodes, &logs, 2).await?;

    // Phase 3: all three SIGKILLed under load, then restarted.
    drop(nc);
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    let load = Load::start(&urls, 3);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    eprintln!("phase 3: SIGKILL of all three");
    for n in &mut nodes {
        n.kill()?;
    }
    logs.extend(load.finish(3).await?);
    for n in &mut nodes {
        n.start().await?;
    }
    verify(&nodes, &logs, 3).await?;

    // Phase 4: publishes one at a time (an entry each) until every member has compacted the
    // file stream's raft log; then all three are SIGKILLed and come back on compacted logs.
    let nc = async_nats::connect(nodes[0].url()).await?;
    let v = api(&nc, &format!("$JS.API.STREAM.INFO.{}", STREAMS[0].0), json!({})).await?;
    let group = v["cluster"]["raft_group"].as_str().context("raft_group")?.to_string();
    let compacted = format!("raft log of {group} compacted up to");
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    // Only the file stream: memory streams keep their whole log (docs/missing.md).
    let load = Load::with_window(&urls, 4, 1, 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !nodes.iter().all(|n| n.log_text().contains(&compacted)) {
        ensure!(Instant::now() < deadline, "the raft log of {group} was not compacted in 120 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("phase 4: {group} compacted on every node; SIGKILL of all three");
    for n in &mut nodes {
        n.kill()?;
    }
    logs.extend(load.finish(4).await?);
    for n in &mut nodes {
        n.start().await?;
    }
    verify(&nodes, &logs, 4).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_messages_survive_kill_freeze_and_restart_of_cluster_nodes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let r = tokio::time::timeout(Duration::from_secs(300), faults(dir.path()))
        .await
        .context("the cluster fault test took over 300 s")
        .and_then(|r| r);
    if r.is_err() {
        let keep = dir.keep();
        eprintln!("logs kept in {}", keep.display());
        for entry in std::fs::read_dir(&keep)?.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "--- {} ---\n{}",
                    p.display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
        }
    }
    r
}
