//! async-nats scenarios of Chorus's differential conformance suite.
//!
//! Each scenario lives in its own file under `proto-conformance/scenarios/rust/` and exposes
//! `pub async fn run(url: &str) -> anyhow::Result<serde_json::Value>`: it runs one client flow
//! against the server at `url` and returns what the client observed. The `chorus-conformance`
//! binary prints that value as one JSON line; `proto-conformance/runner.py` runs it against
//! nats-server and against Chorus and compares the two (after normalising ids and inboxes).
//!
//! Layout: this file holds the registry (`mod` lines with `#[path]` into the scenario
//! directory, plus the `registry!` list) and the helpers scenarios share. A test checks that
//! the registry and the directory list the same scenarios.
//!
//! Observations hold what a client can rely on (payloads, subjects, counts, error kinds),
//! never timings or anything that depends on scheduling.

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::{Client, HeaderMap, Message, Subscriber};
use futures::StreamExt as _;
use serde_json::{Value, json};

#[path = "../../scenarios/rust/consumer_pinned.rs"]
mod consumer_pinned;
#[path = "../../scenarios/rust/consumer_push.rs"]
mod consumer_push;
#[path = "../../scenarios/rust/consumer_reset.rs"]
mod consumer_reset;
#[path = "../../scenarios/rust/headers.rs"]
mod headers;
#[path = "../../scenarios/rust/jetstream_kv.rs"]
mod jetstream_kv;
#[path = "../../scenarios/rust/kv_watch.rs"]
mod kv_watch;
#[path = "../../scenarios/rust/max_payload.rs"]
mod max_payload;
#[path = "../../scenarios/rust/no_responders.rs"]
mod no_responders;
#[path = "../../scenarios/rust/object_store.rs"]
mod object_store;
#[path = "../../scenarios/rust/pub_sub.rs"]
mod pub_sub;
#[path = "../../scenarios/rust/queue_group.rs"]
mod queue_group;
#[path = "../../scenarios/rust/request_reply.rs"]
mod request_reply;
#[path = "../../scenarios/rust/wildcard.rs"]
mod wildcard;

macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        /// Names of all scenarios, as the runner knows them (the file stems).
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        /// Runs the named scenario; `None` if there is no scenario of that name.
        pub async fn run_scenario(name: &str, url: &str) -> Option<anyhow::Result<Value>> {
            match name {
                $(stringify!($name) => Some($name::run(url).await),)*
                _ => None,
            }
        }
    };
}

registry!(
    consumer_pinned,
    consumer_push,
    consumer_reset,
    headers,
    jetstream_kv,
    kv_watch,
    max_payload,
    no_responders,
    object_store,
    pub_sub,
    queue_group,
    request_reply,
    wildcard,
);

/// How long a scenario waits for a message it expects before calling it missing.
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the server under test. A connect that does not work at once is a failure of the
/// scenario, so no retries that would only slow a broken run down.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("connect to {url}"))
}

/// The next `n` messages of `sub`, failing if they do not arrive within [`RECEIVE_TIMEOUT`].
pub async fn next_messages(sub: &mut Subscriber, n: usize) -> anyhow::Result<Vec<Message>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(RECEIVE_TIMEOUT, sub.next()).await {
            Ok(Some(msg)) => out.push(msg),
            Ok(None) => bail!("subscription ended after {} of {n} messages", out.len()),
            Err(_) => bail!("timed out after {} of {n} messages", out.len()),
        }
    }
    Ok(out)
}

/// A round trip through the server: everything this client sent before has been processed,
/// and every message the server had routed to this connection before has been received and
/// handed to its subscribers. (`Client::flush` only empties the socket buffer.) It publishes to
/// a fresh inbox the client itself listens on: the server handles one connection's ops in
/// order and writes to it in order, so that message comes back after all earlier ones.
pub async fn round_trip(client: &Client) -> anyhow::Result<()> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    client.publish(inbox, "".into()).await?;
    client.flush().await?;
    next_messages(&mut sub, 1).await.context("round trip through the server")?;
    sub.unsubscribe().await?;
    Ok(())
}

/// Messages already handed to `sub` (call after [`round_trip`]), without waiting for more.
pub fn buffered(sub: &mut Subscriber) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(Some(msg)) = futures::FutureExt::now_or_never(sub.next()) {
        out.push(msg);
    }
    out
}

/// Subject, payload (text if it is UTF-8, else its bytes), reply and headers of a message.
pub fn describe(msg: &Message) -> Value {
    let payload = match std::str::from_utf8(&msg.payload) {
        Ok(text) => json!(text),
        Err(_) => json!({ "bytes": msg.payload.to_vec() }),
    };
    let mut v = json!({ "subject": msg.subject.as_str(), "payload": payload });
    if let Some(reply) = &msg.reply {
        v["reply"] = json!(reply.as_str());
    }
    if let Some(headers) = &msg.headers {
        v["headers"] = describe_headers(headers);
    }
    if let Some(status) = &msg.status {
        v["status"] = json!(status.as_u16());
    }
    v
}

/// Headers as a sorted list of [name, [values...]] (HeaderMap iterates in hash order).
pub fn describe_headers(headers: &HeaderMap) -> Value {
    let mut entries: Vec<(String, Vec<String>)> = headers
        .iter()
        .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
        .collect();
    entries.sort();
    json!(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in scenarios/rust is registered and every registered name has a file, so a
    /// scenario the runner discovers is one the binary can run.
    #[test]
    fn registry_matches_scenario_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/rust");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let path = e.unwrap().path();
                (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(String::from))?
            })
            .collect();
        files.sort();
        let mut registered: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
        registered.sort();
        assert_eq!(files, registered);
    }

    #[tokio::test]
    async fn unknown_scenario_is_none() {
        assert!(run_scenario("no_such_scenario", "nats://127.0.0.1:1").await.is_none());
    }
}
