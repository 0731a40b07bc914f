//! `chorus-loadgen`: the load generator that `benches/run` drives for the figures `nats bench`
//! does not cover. Each subcommand runs one bounded measurement against a server on loopback
//! and prints exactly one JSON line of results on stdout; progress and errors go to stderr, and
//! a failed measurement exits non-zero so the harness can tell a failure from a slow run.
//!
//! Layout:
//! - `args`: the tiny `--flag value` parser (no CLI framework, to keep the dependency set to the
//!   workspace's).
//! - `reqrep`: sequential request/reply latency through the server (p50/p99).
//! - `conns`: open many idle NATS connections, report the accept rate, hold them while the
//!   harness samples the server's memory, then check they are all still alive.
//! - `qsub`: queue-group subscribers (`nats bench sub` has no queue option), on one server or
//!   spread over the nodes of a cluster.
//! - `interest`: a subscription storm on one connection, held while the harness watches the
//!   other nodes of a cluster learn it (route interest) and samples their memory.
//! - `jspub`: JetStream publish throughput (PubAcks awaited one by one or in a window).
//! - `jsconsume`: JetStream consumer throughput (pull with and without acks, ordered, push,
//!   workqueue end to end).
//! - `jsfailover`: how long publishing to a replicated stream stops when its leader is killed.
//! - `cluster`: replicated streams on a cluster (creation while the meta group elects, the
//!   leader, a publisher on a node that does not lead), shared by the three above.
//! - `kv`: JetStream key-value put and get latency (p50/p99).
//! - `rawtcp`: a sender/receiver pair over loopback TCP with no server in between, the
//!   physical limit the pub/sub figures are compared with.
//! - `authconn`: NKey / JWT connect storms (full signed handshakes per second), and the
//!   config and credentials both servers need for them (`authconf`).

mod args;
mod authconn;
mod cluster;
mod conns;
mod interest;
mod jsconsume;
mod jsfailover;
mod jspub;
mod kv;
mod qsub;
mod rawtcp;
mod reqrep;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::args::Args;

const USAGE: &str = "\
usage: chorus-loadgen <command> [flags]

commands:
  reqrep --url URL --count N [--size BYTES] [--warmup N]
      sequential requests from one client to one echo responder; latency percentiles
  conns  --url URL --count N --concurrency C [--hold-secs S]
      open N idle connections (C handshakes in flight), print 'established N' on stderr,
      hold them until stdin closes (or S seconds), then PING each one and report
  qsub   --url URL[,URL...] --subject SUBJ --count N [--members M] [--queue NAME]
         [--timeout-secs S]
      M queue-group subscribers (member m on the (m mod #URLs)-th URL); prints 'ready' on
      stderr once subscribed, then reports the delivery rate once N messages arrived in total
  interest --url URL --count N [--subject PREFIX] [--hold-secs S]
      one raw connection; prints 'connected' on stderr, waits for a line on stdin, then sends
      N SUBs on distinct subjects PREFIX.<i> and a PING; prints 'subscribed N' at the PONG and
      holds them until stdin closes (or S seconds), then checks the connection with a PING
  jspub  --url URL[,URL...] --stream NAME --subject SUBJ --storage file|memory --size BYTES
         --count N --mode sync|async [--window W] [--max-secs S] [--replicas R]
      create the stream, publish N messages (sync: each PubAck awaited before the next, with
      latency p50/p99; async: up to W PubAcks in flight; stops early after S seconds) and
      report msgs/s. With R > 1 the URLs are the nodes of a cluster: an R-replica stream,
      published to through a node that does not lead it
  jsconsume --url URL[,URL...] --kind fetch|fetch-noack|ordered|push|workqueue --count N
         [--storage file|memory] [--size BYTES] [--batch B] [--max-secs S] [--replicas R]
      fill a stream (workqueue: publish while consuming), drain it with that kind of consumer
      and report msgs/s (R > 1: as jspub, through a node that does not lead the stream)
  jsfailover --url URL,URL,... --stream NAME --subject SUBJ [--size BYTES] [--replicas R]
         [--warmup N] [--after N] [--attempt-ms MS] [--wait-secs S]
      an R-replica file stream; sync publishes with message ids through a node that does not
      lead it; prints 'ready leader=NAME publisher=NAME' on stderr after N, then reads
      'killed <unix ns>' on stdin (the harness kills the leader) and reports the time from
      the kill to the first PubAck after it, once N more messages were acknowledged
  kv     --url URL --count N [--bucket NAME] [--storage file|memory] [--size BYTES] [--warmup N]
      create a bucket, N sequential puts of distinct keys, then a get of each; p50/p99
  rawtcp --bytes N [--chunk BYTES]
      move N bytes over a loopback TCP connection between two threads
  authconf --mode nkey|jwt --dir DIR
      write DIR/auth-MODE.conf (server config: NKey user, or operator mode with a MEMORY
      resolver) and DIR/auth-MODE.creds with fresh keys; prints their paths
  authconn --url URL --creds FILE --count N --concurrency C
      N full handshakes (INFO nonce, signed CONNECT, PONG), C in flight; connections/s
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(argv) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chorus-loadgen: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(argv: Vec<String>) -> Result<serde_json::Value> {
    let Some((cmd, rest)) = argv.split_first() else {
        eprint!("{USAGE}");
        bail!("missing command");
    };
    if cmd == "-h" || cmd == "--help" {
        print!("{USAGE}");
        std::process::exit(0);
    }
    let mut args = Args::parse(rest)?;
    let out = match cmd.as_str() {
        "reqrep" => {
            let url = args.string("url")?;
            let count = args.u64("count")?;
            let size = args.u64_or("size", 16)?;
            let warmup = args.u64_or("warmup", (count / 10).min(1000))?;
            args.finish()?;
            // One thread: the requests are strictly sequential anyway, and cross-thread
            // wake-ups would add their own jitter to the latencies being measured.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?
                .block_on(reqrep::run(&url, count, to_usize(size)?, warmup))?
        }
        "conns" => {
            let url = args.string("url")?;
            let count = args.u64("count")?;
            let concurrency = args.u64("concurrency")?;
            let hold_secs = args.u64_or("hold-secs", 300)?;
            args.finish()?;
            runtime()?.block_on(conns::run(&url, count, to_usize(concurrency)?, hold_secs))?
        }
        "qsub" => {
            let urls: Vec<String> = args
                .string("url")?
                .split(',')
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect();
            if urls.is_empty() {
                bail!("--url names no server");
            }
            let subject = args.string("subject")?;
            let count = args.u64("count")?;
            let members = args.u64_or("members", 4)?;
            let queue = args.string_or("queue", "bench-q");
            let timeout_secs = args.u64_or("timeout-secs", 120)?;
            args.finish()?;
            let opts = qsub::Opts {
                urls,
                subject,
                queue,
                members: to_usize(members)?,
                count,
                timeout_secs,
            };
            runtime()?.block_on(qsub::run(opts))?
        }
        "interest" => {
            let url = args.string("url")?;
            let count = args.u64("count")?;
            let prefix = args.string_or("subject", "bench.interest");
            let hold_secs = args.u64_or("hold-secs", 300)?;
            args.finish()?;
            runtime()?.block_on(interest::run(&url, &prefix, count, hold_secs))?
        }
        "jspub" => {
            let opts = jspub::Opts {
                urls: cluster::split_urls(&args.string("url")?)?,
                stream: args.string("stream")?,
                subject: args.string("subject")?,
                storage: jspub::storage(&args.string("storage")?)?,
                size: to_usize(args.u64("size")?)?,
                count: args.u64("count")?,
                mode: jspub::Mode::parse(&args.string("mode")?)?,
                window: to_usize(args.u64_or("window", 256)?)?,
                max_secs: args.u64_or("max-secs", 600)?,
                replicas: to_usize(args.u64_or("replicas", 1)?)?,
            };
            args.finish()?;
            runtime()?.block_on(jspub::run(opts))?
        }
        "jsconsume" => {
            let opts = jsconsume::Opts {
                urls: cluster::split_urls(&args.string("url")?)?,
                kind: jsconsume::Kind::parse(&args.string("kind")?)?,
                storage: jspub::storage(&args.string_or("storage", "file"))?,
                size: to_usize(args.u64_or("size", 128)?)?,
                count: args.u64("count")?,
                batch: to_usize(args.u64_or("batch", 500)?)?,
                max_secs: args.u64_or("max-secs", 120)?,
                replicas: to_usize(args.u64_or("replicas", 1)?)?,
            };
            args.finish()?;
            runtime()?.block_on(jsconsume::run(opts))?
        }
        "jsfailover" => {
            let opts = jsfailover::Opts {
                urls: cluster::split_urls(&args.string("url")?)?,
                stream: args.string("stream")?,
                subject: args.string("subject")?,
                size: to_usize(args.u64_or("size", 128)?)?,
                replicas: to_usize(args.u64_or("replicas", 3)?)?,
                warmup: args.u64_or("warmup", 200)?,
                after: args.u64_or("after", 200)?,
                attempt: std::time::Duration::from_millis(args.u64_or("attempt-ms", 100)?),
                wait_secs: args.u64_or("wait-secs", 60)?,
            };
            args.finish()?;
            runtime()?.block_on(jsfailover::run(opts))?
        }
        "kv" => {
            let url = args.string("url")?;
            let count = args.u64("count")?;
            let bucket = args.string_or("bucket", "bench");
            let storage = jspub::storage(&args.string_or("storage", "file"))?;
            let size = to_usize(args.u64_or("size", 16)?)?;
            let warmup = args.u64_or("warmup", (count / 10).min(100))?;
            args.finish()?;
            // Sequential, as `reqrep`: one thread keeps cross-thread wake-ups out of the samples.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?
                .block_on(kv::run(&url, &bucket, storage, count, size, warmup))?
        }
        "rawtcp" => {
            let bytes = args.u64("bytes")?;
            let chunk = args.u64_or("chunk", 32 * 1024)?;
            args.finish()?;
            rawtcp::run(bytes, to_usize(chunk)?)?
        }
        "authconf" => {
            let mode = authconn::Mode::parse(&args.string("mode")?)?;
            let dir = args.string("dir")?;
            args.finish()?;
            authconn::write_config(mode, std::path::Path::new(&dir))?
        }
        "authconn" => {
            let url = args.string("url")?;
            let creds = args.string("creds")?;
            let count = args.u64("count")?;
            let concurrency = to_usize(args.u64("concurrency")?)?;
            args.finish()?;
            runtime()?.block_on(authconn::run(
                &url,
                std::path::Path::new(&creds),
                count,
                concurrency,
            ))?
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command {other:?}");
        }
    };
    Ok(out)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).context("value does not fit in usize")
}

/// Microseconds with two decimals: enough resolution for loopback latencies, and short JSON.
pub(crate) fn micros(nanos: u64) -> f64 {
    (nanos as f64 / 10.0).round() / 100.0
}

/// Waits until the server has processed everything this client sent so far (e.g. a SUB).
/// `Client::flush` only flushes the socket, and a publisher on another connection could
/// otherwise race the subscription: a message to a fresh inbox, received back on the same
/// connection, is a full round trip through the server.
pub(crate) async fn sync_with_server(client: &async_nats::Client) -> Result<()> {
    let inbox = client.new_inbox();
    let mut probe = client.subscribe(inbox.clone()).await.context("probe: subscribing")?;
    client.publish(inbox, bytes::Bytes::new()).await.context("probe: publishing")?;
    client.flush().await.context("probe: flushing")?;
    tokio::time::timeout(std::time::Duration::from_secs(10), futures::StreamExt::next(&mut probe))
        .await
        .context("probe: no round trip within 10s")?
        .context("probe: subscription closed")?;
    probe.unsubscribe().await.context("probe: unsubscribing")?;
    Ok(())
}

/// The `host:port` part of a `nats://host:port` URL, for the raw-TCP connections of `conns`.
pub(crate) fn host_port(url: &str) -> Result<String> {
    let rest = url.strip_prefix("nats://").unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hp = rest.trim_end_matches('/');
    if !hp.contains(':') {
        bail!("URL {url:?} has no port");
    }
    Ok(hp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_strips_scheme_and_credentials() {
        assert_eq!(host_port("nats://127.0.0.1:4222").unwrap(), "127.0.0.1:4222");
        assert_eq!(host_port("nats://u:p@127.0.0.1:99/").unwrap(), "127.0.0.1:99");
        assert_eq!(host_port("localhost:1").unwrap(), "localhost:1");
        assert!(host_port("nats://127.0.0.1").is_err());
    }

    #[test]
    fn micros_rounds_to_hundredths() {
        assert_eq!(micros(12_345), 12.35);
        assert_eq!(micros(1_000), 1.0);
    }

    #[test]
    fn unknown_command_and_flags_are_errors() {
        assert!(run(vec!["nope".into()]).is_err());
        let e = run(vec!["rawtcp".into(), "--bytes".into(), "1".into(), "--bogus".into()]);
        assert!(e.unwrap_err().to_string().contains("--bogus"));
    }
}
