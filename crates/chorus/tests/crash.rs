//! Crash recovery of JetStream file streams, end to end: the real `chorus` binary is killed
//! with SIGKILL in the middle of a publish load and restarted on the same store directory.
//!
//! Chorus acknowledges a publish to a file stream only after the batch holding it was
//! fsynced, so after any crash the restarted server must hold every acknowledged message at
//! the sequence its PubAck named, the stream must be contiguous from 1 (these streams have no
//! deletes), and no message may be stored twice. Messages whose ack was lost in the crash may
//! or may not be there; both are correct.
//!
//! # Layout
//!
//! ```text
//! Server        the child process: start on a random port (`-p -1`, port read from its log),
//!               SIGKILL, kill-on-drop so a failing test leaves nothing running
//! load_and_kill concurrent publishers (own connection each, a window of async publishes),
//!               SIGKILL after a random-ish delay, every outcome recorded
//! read_stream   the stream read back by sequence through STREAM.MSG.GET
//! check         the invariants, against the outcomes of every round so far
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};
use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use futures::FutureExt as _;
use futures::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::watch;

const PUBLISHERS: usize = 4;
/// Publishes in flight per publisher, unacknowledged.
const WINDOW: usize = 64;
const ROUNDS: usize = 3;
/// Ack timeout of the publishers. Short, because after the kill every pending ack waits for
/// it; a timeout before the kill is harmless (the message just counts as unacknowledged).
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The `chorus` child process. Dropping it kills it, so a failed assertion does not leak it.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `chorus -js -sd <store>` on a random loopback port; `log` gets its output.
    async fn start(store: &Path, log: PathBuf) -> Result<Server> {
        let out = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning chorus")?;
        let mut server = Server { child, port: 0, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        const MARK: &str = "Listening for client connections on 127.0.0.1:";
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(rest) = text.split(MARK).nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                server.port = digits.parse().context("port in the log")?;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("chorus exited at start ({status}):\n{text}");
            }
            if Instant::now() > deadline {
                bail!("chorus did not listen within 10 s:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap: no shutdown code runs.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        let status = self.child.wait()?;
        ensure!(status.code().is_none(), "chorus had exited before the kill: {status}");
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the client learned about one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A PubAck with this sequence.
    Acked(u64),
    /// An error reply from the server (for example 10167 when its queue was full): not stored.
    Refused,
    /// No answer (the crash, or not sent at all): stored or not, both are correct.
    Unknown,
}

/// The outcomes of one publisher in one round, indexed by its message counter.
struct PubLog {
    round: usize,
    publisher: usize,
    outcomes: Vec<Outcome>,
}

/// A message's id, which is also its payload: unique over rounds and publishers, and ordered
/// by counter within one publisher's round.
fn msg_id(round: usize, publisher: usize, n: usize) -> String {
    format!("r{round}.p{publisher}.{n:08}")
}

fn parse_id(id: &str) -> Option<(usize, usize, usize)> {
    let mut it = id.split('.');
    let r = it.next()?.strip_prefix('r')?.parse().ok()?;
    let p = it.next()?.strip_prefix('p')?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    it.next().is_none().then_some((r, p, n))
}

fn subject(prefix: &str, publisher: usize) -> String {
    format!("{prefix}.{publisher}")
}

fn classify(r: Result<jetstream::publish::PublishAck, PublishError>) -> Outcome {
    match r {
        Ok(ack) => Outcome::Acked(ack.sequence),
        Err(e) if e.kind() == PublishErrorKind::Other => Outcome::Refused,
        Err(_) => Outcome::Unknown,
    }
}

/// One publisher: async publishes with at most [`WINDOW`] unacknowledged, until `stop`;
/// then it waits for the acks still pending (each bounded by [`ACK_TIMEOUT`]).
async fn publisher(
    url: String,
    prefix: &'static str,
    round: usize,
    p: usize,
    with_msg_id: bool,
    mut stop: watch::Receiver<bool>,
) -> Result<PubLog> {
    let client = async_nats::connect(&url).await?;
    let js = jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client);
    let subj = subject(prefix, p);
    let mut outcomes = Vec::new();
    let mut pending = FuturesUnordered::new();
    let mut stopped = false;
    loop {
        while let Some(Some((n, r))) = pending.next().now_or_never() {
            outcomes[n] = classify(r);
        }
        if stopped || pending.len() >= WINDOW {
            match pending.next().await {
                Some((n, r)) => outcomes[n] = classify(r),
                None => break,
            }
            continue;
        }
        let n = outcomes.len();
        outcomes.push(Outcome::Unknown);
        let id = msg_id(round, p, n);
        let send = async {
            if with_msg_id {
                let mut h = HeaderMap::new();
                h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                js.publish_with_headers(subj.clone(), h, id.clone().into()).await
            } else {
                js.publish(subj.clone(), id.clone().into()).await
            }
        };
        // Only the kill may interrupt a send: a send dropped half-way before it would leave a
        // hole in this connection's sequence of publishes that the order check would report.
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => stopped = true,
            sent = send => {
                // Not sent (the connection is gone): stays Unknown.
                if let Ok(ack) = sent {
                    pending.push(async move { (n, ack.await) });
                }
            }
        }
    }
    Ok(PubLog { round, publisher: p, outcomes })
}

/// Milliseconds in 200..800, different from run to run.
fn kill_delay() -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    Duration::from_millis(200 + u64::from(nanos) % 600)
}

/// Runs [`PUBLISHERS`] publishers against `server`, SIGKILLs it mid-load, and returns what
/// each publisher learned.
async fn load_and_kill(
    server: Server,
    prefix: &'static str,
    round: usize,
    with_msg_id: bool,
) -> Result<Vec<PubLog>> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            tokio::spawn(publisher(server.url(), prefix, round, p, with_msg_id, stop_rx.clone()))
        })
        .collect();
    let delay = kill_delay();
    tokio::time::sleep(delay).await;
    // Kill first, stop the publishers after: the crash must hit publishes in flight.
    server.kill()?;
    stop_tx.send(true)?;
    let mut logs = Vec::new();
    for t in tasks {
        let log = tokio::time::timeout(Duration::from_secs(15), t)
            .await
            .context("publisher did not finish after the kill")???;
        logs.push(log);
    }
    let count = |o: Outcome| logs.iter().flat_map(|l| &l.outcomes).filter(|x| **x == o).count();
    let acked =
        logs.iter().flat_map(|l| &l.outcomes).filter(|o| matches!(o, Outcome::Acked(_))).count();
    let (refused, unknown) = (count(Outcome::Refused), count(Outcome::Unknown));
    eprintln!(
        "round {round}: SIGKILL after {} ms: {acked} acked, {refused} refused, {unknown} unanswered",
        delay.as_millis()
    );
    // Not vacuous: messages were acknowledged, and the kill caught some in flight.
    ensure!(acked > 0, "round {round}: no publish was acknowledged before the kill");
    // Each publisher may add one Unknown of its own, the send the stop interrupted.
    ensure!(unknown > PUBLISHERS, "round {round}: the kill did not catch any publish in flight");
    Ok(logs)
}

/// One stored message as read back.
#[derive(Debug)]
struct Stored {
    subject: String,
    id: String,
    msg_id_header: Option<String>,
}

/// Reads the whole stream by sequence (STREAM.MSG.GET), checking the stream state says it is
/// contiguous from 1. Index `i` holds sequence `i + 1`.
async fn read_stream(url: &str, name: &str) -> Result<Vec<Stored>> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(10)).build(client);
    let st = js.get_stream(name).await?;
    let state = st.get_info().await?.state;
    let last = state.last_sequence;
    ensure!(
        state.messages == last && (last == 0 || state.first_sequence == 1),
        "stream {name} is not contiguous from 1: {state:?}"
    );
    let reads = futures::stream::iter(1..=last)
        .map(|seq| {
            let st = &st;
            async move {
                let m = st
                    .get_raw_message(seq)
                    .await
                    .with_context(|| format!("sequence {seq} of {last} is missing (a gap)"))?;
                ensure!(m.sequence == seq, "asked for {seq}, got {}", m.sequence);
                Ok(Stored {
                    subject: m.subject.to_string(),
                    id: String::from_utf8(m.payload.to_vec())?,
                    msg_id_header: m
                        .headers
                        .get(async_nats::header::NATS_MESSAGE_ID)
                        .map(|v| v.as_str().to_string()),
                })
            }
        })
        .buffered(32);
    reads.collect::<Vec<Result<Stored>>>().await.into_iter().collect()
}

/// The invariants of `stored` against the outcomes of every round so far. Returns id -> seq.
fn check(
    stored: &[Stored],
    logs: &[PubLog],
    prefix: &str,
    with_msg_id: bool,
) -> Result<HashMap<String, u64>> {
    let attempted: HashMap<(usize, usize), &PubLog> =
        logs.iter().map(|l| ((l.round, l.publisher), l)).collect();
    let mut by_id: HashMap<String, u64> = HashMap::new();
    let mut last_n: HashMap<(usize, usize), (usize, u64)> = HashMap::new();
    for (i, m) in stored.iter().enumerate() {
        let seq = i as u64 + 1;
        let Some((r, p, n)) = parse_id(&m.id) else { bail!("seq {seq}: foreign payload {m:?}") };
        ensure!(m.subject == subject(prefix, p), "seq {seq}: {m:?} on the wrong subject");
        if with_msg_id {
            ensure!(m.msg_id_header.as_deref() == Some(m.id.as_str()), "seq {seq}: {m:?}");
        }
        let log = attempted.get(&(r, p)).with_context(|| format!("seq {seq}: unknown {m:?}"))?;
        ensure!(n < log.outcomes.len(), "seq {seq}: {} was never published", m.id);
        ensure!(
            log.outcomes[n] != Outcome::Refused,
            "seq {seq}: {} is stored but its publish was refused",
            m.id
        );
        if let Some(prev) = by_id.insert(m.id.clone(), seq) {
            bail!("{} stored twice: at seq {prev} and {seq}", m.id);
        }
        // One connection's publishes are stored in the order they were sent.
        if let Some((pn, pseq)) = last_n.insert((r, p), (n, seq)) {
            ensure!(pn < n, "out of order: {} at seq {seq} after counter {pn} at {pseq}", m.id);
        }
    }
    let last_seq = stored.len() as u64;
    for l in logs {
        let max_acked = l.outcomes.iter().rposition(|o| matches!(o, Outcome::Acked(_)));
        for (n, o) in l.outcomes.iter().enumerate() {
            let id = msg_id(l.round, l.publisher, n);
            match *o {
                Outcome::Acked(seq) => {
                    ensure!(
                        seq <= last_seq,
                        "LOSS: {id} was acked at seq {seq}, the stream ends at {last_seq}"
                    );
                    ensure!(
                        by_id.get(&id) == Some(&seq),
                        "LOSS: {id} was acked at seq {seq}, stored there: {:?}, {id} stored at {:?}",
                        stored[seq as usize - 1],
                        by_id.get(&id)
                    );
                }
                // A later publish of the same connection was acked, and the server takes one
                // connection's publishes in order: this one was stored before it.
                Outcome::Unknown if max_acked.is_some_and(|m| n < m) => ensure!(
                    by_id.contains_key(&id),
                    "LOSS: {id} is missing though a later publish of its connection was acked"
                ),
                _ => {}
            }
        }
    }
    Ok(by_id)
}

async fn create_stream(url: &str, name: &str, prefix: &str) -> Result<()> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Wraps an error with the server's last log lines.
fn with_log<T>(r: Result<T>, server: &Server) -> Result<T> {
    r.with_context(|| format!("chorus log (tail):\n{}", server.log_tail()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acked_message_survives_sigkill_mid_load() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("store");
        let mut logs: Vec<PubLog> = Vec::new();
        for round in 0..=ROUNDS {
            let server = Server::start(&store, dir.path().join(format!("r{round}.log"))).await?;
            if round == 0 {
                with_log(create_stream(&server.url(), "CRASH", "crash").await, &server)?;
            } else {
                // Recovery of the store a SIGKILL left (from round 2 on: of a recovered one).
                let stored = with_log(read_stream(&server.url(), "CRASH").await, &server)?;
                with_log(check(&stored, &logs, "crash", false), &server)?;
                eprintln!("restart {round}: {} messages, all acked ones present", stored.len());
            }
            if round == ROUNDS {
                break;
            }
            logs.extend(load_and_kill(server, "crash", round, false).await?);
        }
        Ok(())
    })
    .await
    .context("the crash test took over 60 s")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_window_survives_sigkill() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("store");
        let server = Server::start(&store, dir.path().join("a.log")).await?;
        with_log(create_stream(&server.url(), "DEDUP", "dedup").await, &server)?;
        let logs = load_and_kill(server, "dedup", 0, true).await?;

        let server = Server::start(&store, dir.path().join("b.log")).await?;
        let url = server.url();
        let stored = with_log(read_stream(&url, "DEDUP").await, &server)?;
        let by_id = with_log(check(&stored, &logs, "dedup", true), &server)?;
        let before = stored.len() as u64;

        // Publish every attempted message again, as a client retrying after the crash would:
        // what the restarted server holds must be reported a duplicate of its stored sequence
        // (acked or not), the rest stored anew.
        let client = async_nats::connect(&url).await?;
        let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(10)).build(client);
        let ids: Vec<String> = logs
            .iter()
            .flat_map(|l| (0..l.outcomes.len()).map(|n| msg_id(l.round, l.publisher, n)))
            .collect();
        let mut pending = FuturesUnordered::new();
        let (mut dups, mut new) = (0usize, 0usize);
        let mut new_seqs = HashSet::new();
        for id in &ids {
            let (_, p, _) = parse_id(id).expect("own id");
            let mut h = HeaderMap::new();
            h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
            let ack = js.publish_with_headers(subject("dedup", p), h, id.clone().into()).await?;
            pending.push(async move { (id, ack.await) });
            while pending.len() >= WINDOW {
                let (id, ack) = pending.next().await.expect("non-empty");
                check_republish(id, ack?, &by_id, before, &mut dups, &mut new, &mut new_seqs)?;
            }
        }
        while let Some((id, ack)) = pending.next().await {
            check_republish(id, ack?, &by_id, before, &mut dups, &mut new, &mut new_seqs)?;
        }
        eprintln!("after restart: {dups} duplicates reported, {new} stored anew");
        ensure!(dups == by_id.len(), "{dups} duplicates reported, {} were stored", by_id.len());

        // Everything once, nothing twice, in the stream.
        let again = read_stream(&url, "DEDUP").await?;
        ensure!(
            again.len() == ids.len(),
            "{} stored, {} distinct ids sent",
            again.len(),
            ids.len()
        );
        check(&again[..before as usize], &logs, "dedup", true)?;
        let all: HashSet<&str> = again.iter().map(|m| m.id.as_str()).collect();
        ensure!(all.len() == ids.len(), "an id is stored twice after the republish");
        drop(server);
        Ok(())
    })
    .await
    .context("the duplicate-window test took over 60 s")?
}

fn check_republish(
    id: &str,
    ack: jetstream::publish::PublishAck,
    by_id: &HashMap<String, u64>,
    before: u64,
    dups: &mut usize,
    new: &mut usize,
    new_seqs: &mut HashSet<u64>,
) -> Result<()> {
    match by_id.get(id) {
        Some(&seq) => {
            ensure!(
                ack.duplicate && ack.sequence == seq,
                "{id} is stored at seq {seq}; republished after the restart it got {ack:?}"
            );
            *dups += 1;
        }
        None => {
            ensure!(
                !ack.duplicate && ack.sequence > before && new_seqs.insert(ack.sequence),
                "{id} was not stored before; republished it got {ack:?}"
            );
            *new += 1;
        }
    }
    Ok(())
}
