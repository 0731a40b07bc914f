//! Route interest storm: one connection makes `count` subscriptions on distinct literal
//! subjects (`PREFIX.0`, `PREFIX.1`, ...) in one burst, then a PING. In a cluster every other
//! node must learn each of them (one `RS+` per subject on the route); the harness times that
//! by watching the other nodes' subscription counts, and samples their memory while this
//! connection holds the subscriptions.
//!
//! The protocol is spoken by hand, as in `conns`: the SUB lines are formatted before the start
//! signal and written in one go, so the load generator adds next to nothing to the time.
//! Sequence: handshake, print `connected` on stderr, wait for a line on stdin (the harness
//! starts its clock as it writes it), write the SUBs and a PING, print `subscribed N` once the
//! PONG arrived (the server has processed every SUB), hold until stdin closes, then prove the
//! connection is still served with a PING/PONG round trip.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::conns::{Conn, establish};
use crate::host_port;

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(url: &str, prefix: &str, count: u64, hold_secs: u64) -> Result<serde_json::Value> {
    let addr = host_port(url)?;
    let mut c = tokio::time::timeout(STEP_TIMEOUT, establish(&addr))
        .await
        .context("handshake timed out")??;
    let mut burst =
        String::with_capacity(usize::try_from(count)?.saturating_mul(prefix.len() + 24));
    for i in 0..count {
        write!(burst, "SUB {prefix}.{i} {}\r\n", i + 1)?;
    }
    burst.push_str("PING\r\n");
    eprintln!("connected");

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match stdin.next_line().await.context("reading the start signal")? {
        Some(_) => {}
        None => bail!("stdin closed before the start signal"),
    }
    let start = Instant::now();
    c.wr.write_all(burst.as_bytes()).await.context("sending the SUBs")?;
    tokio::time::timeout(Duration::from_secs(hold_secs), await_pong(&mut c))
        .await
        .context("no PONG after the SUBs")??;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("subscribed {count}");

    // Hold: answer the server's keep-alive PINGs until the harness closes stdin.
    let hold = tokio::time::sleep(Duration::from_secs(hold_secs));
    tokio::pin!(hold);
    let mut held_to_limit = false;
    loop {
        tokio::select! {
            line = c.lines.next_line() => {
                let line = line?.context("server closed the connection while holding the subscriptions")?;
                match line.as_str() {
                    "PING" => c.wr.write_all(b"PONG\r\n").await?,
                    l if l.starts_with("-ERR") => bail!("server error while holding: {l}"),
                    _ => {}
                }
            }
            more = stdin.next_line() => {
                if more.ok().flatten().is_none() {
                    break;
                }
            }
            () = &mut hold => {
                held_to_limit = true;
                break;
            }
        }
    }
    c.wr.write_all(b"PING\r\n").await?;
    tokio::time::timeout(STEP_TIMEOUT, await_pong(&mut c))
        .await
        .context("no PONG after the hold")??;
    Ok(json!({
        "mode": "interest",
        "count": count,
        "bytes": burst.len(),
        "secs_to_pong": secs,
        "held_to_limit": held_to_limit,
    }))
}

async fn await_pong(c: &mut Conn) -> Result<()> {
    loop {
        let line = c.lines.next_line().await?.context("server closed the connection")?;
        match line.as_str() {
            "PONG" => return Ok(()),
            "PING" => c.wr.write_all(b"PONG\r\n").await?,
            l if l.starts_with("-ERR") => bail!("server error: {l}"),
            _ => {} // async INFO updates (a cluster's connect_urls)
        }
    }
}
