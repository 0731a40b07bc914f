//! Many idle connections: the accept rate while opening them, then a hold period during which
//! the harness reads the server's resident memory.
//!
//! The client side speaks the protocol by hand (INFO in, CONNECT + PING out, PONG in) rather
//! than through async-nats: a full client per connection would cost the load generator far more
//! than the server, and the figure is about the server's accept path. A connection counts as
//! established once its PONG arrived, i.e. the server has fully registered the client.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::host_port;

const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"rust\",\"version\":\"0\",\
\"protocol\":1,\"name\":\"chorus-loadgen\"}\r\nPING\r\n";
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

type LineReader = Lines<BufReader<OwnedReadHalf>>;

pub(crate) struct Conn {
    pub(crate) lines: LineReader,
    pub(crate) wr: OwnedWriteHalf,
}

pub async fn run(
    url: &str,
    count: u64,
    concurrency: usize,
    hold_secs: u64,
) -> Result<serde_json::Value> {
    let addr = host_port(url)?;
    let start = Instant::now();
    let conns: Vec<Conn> = stream::iter(0..count)
        .map(|i| {
            let addr = addr.clone();
            async move {
                tokio::time::timeout(STEP_TIMEOUT, establish(&addr))
                    .await
                    .with_context(|| format!("connection {i}: handshake timed out"))?
                    .with_context(|| format!("connection {i}"))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!("established {count}");

    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for c in conns {
        tasks.spawn(hold(c, release_rx.clone()));
    }
    // The harness closes our stdin once it has sampled the server's memory; the hold limit
    // only bounds a run whose harness went away.
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let held_to_limit =
        tokio::time::timeout(Duration::from_secs(hold_secs), stdin_closed).await.is_err();
    let _ = release_tx.send(true);

    let mut alive = 0u64;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        match r.context("connection task")? {
            Ok(()) => alive += 1,
            Err(e) => {
                first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    Ok(json!({
        "mode": "conns",
        "count": count,
        "concurrency": concurrency,
        "secs": secs,
        "conns_per_sec": count as f64 / secs,
        "alive": alive,
        "held_to_limit": held_to_limit,
        "first_error": first_error,
    }))
}

/// INFO in, CONNECT + PING out, PONG in: the server has registered the client.
pub(crate) async fn establish(addr: &str) -> Result<Conn> {
    let stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::with_capacity(2048, rd).lines();
    let info = lines.next_line().await?.context("closed before INFO")?;
    ensure!(info.starts_with("INFO "), "expected INFO, got {info:?}");
    wr.write_all(CONNECT).await.context("sending CONNECT")?;
    loop {
        let line = lines.next_line().await?.context("closed before PONG")?;
        match line.as_str() {
            "PONG" => return Ok(Conn { lines, wr }),
            "PING" => wr.write_all(b"PONG\r\n").await?,
            l if l.starts_with("-ERR") => bail!("server refused the connection: {l}"),
            _ => {} // async INFO updates
        }
    }
}

/// Keeps one connection idle (answering the server's keep-alive PINGs) until released, then
/// proves it is still served with a PING/PONG round trip.
async fn hold(mut c: Conn, mut release: watch::Receiver<bool>) -> Result<()> {
    let mut released = *release.borrow();
    if released {
        c.wr.write_all(b"PING\r\n").await?;
    }
    let deadline = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            // `next_line` is cancellation safe, so losing the race to the release branch
            // never drops a partial line.
            line = c.lines.next_line() => {
                let line = line?.context("server closed the idle connection")?;
                match line.as_str() {
                    "PING" => c.wr.write_all(b"PONG\r\n").await?,
                    "PONG" if released => return Ok(()),
                    l if l.starts_with("-ERR") => bail!("server error on an idle connection: {l}"),
                    _ => {}
                }
            }
            changed = release.changed(), if !released => {
                // A dropped sender also means "stop holding".
                let _ = changed;
                released = true;
                c.wr.write_all(b"PING\r\n").await?;
                deadline.as_mut().reset(tokio::time::Instant::now() + STEP_TIMEOUT);
            }
            () = &mut deadline => bail!("no PONG within {STEP_TIMEOUT:?} after the hold"),
        }
    }
}
