//! JetStream on a cluster: one client per node, a replicated stream created as soon as the
//! meta group can take it, its leader, and a publisher on a node that does not lead it (so
//! every publish crosses a route to the leader, and the leader's death leaves the client
//! connected).
//!
//! Used by `jspub`, `jsconsume` and `jsfailover` when given `--replicas` above 1.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck, stream};
use async_nats::{Client, ConnectOptions};
use bytes::Bytes;

/// One connection to one node, and the node's `server_name` from its INFO.
pub struct Node {
    pub name: String,
    pub client: Client,
}

/// Connects to each URL in turn. The clients stay on their node: servers a node advertises
/// are not added to the pool, so no client moves to another node behind the benchmark's back.
pub async fn connect_all(urls: &[String]) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(urls.len());
    for url in urls {
        let client = ConnectOptions::new()
            .ignore_discovered_servers()
            .connect(url.as_str())
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let name = client.server_info().server_name;
        nodes.push(Node { name, client });
    }
    Ok(nodes)
}

/// Creates the stream (or takes it if it exists), retrying while the cluster cannot place it
/// yet: until the meta group has a leader the API answers 10008, and a node may not know
/// its peers' JetStream yet (10005, no suitable peers).
pub async fn create_stream(
    js: &jetstream::Context,
    cfg: stream::Config,
    timeout: Duration,
) -> Result<stream::Stream> {
    let deadline = Instant::now() + timeout;
    let mut reported = Instant::now() - Duration::from_secs(10);
    loop {
        match js.get_or_create_stream(cfg.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() < deadline => {
                if reported.elapsed() >= Duration::from_secs(1) {
                    eprintln!("creating stream {}: {e}; retrying", cfg.name);
                    reported = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating stream {}", cfg.name));
            }
        }
    }
}

/// The stream's leader, once it has one and every other replica is current (`replicas` in
/// all, leader included).
pub async fn wait_leader(
    st: &mut stream::Stream,
    replicas: usize,
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match st.info().await {
            Ok(info) => {
                if let Some(c) = &info.cluster {
                    let current = c.replicas.iter().filter(|p| p.current && !p.offline).count();
                    match c.leader.as_deref() {
                        Some(l) if !l.is_empty() && current + 1 >= replicas => {
                            return Ok(l.to_string());
                        }
                        l => last = format!("leader {l:?}, {current} current replicas"),
                    }
                } else {
                    last = "no cluster info".into();
                }
            }
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            bail!("stream has no leader with {replicas} current replicas: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node to publish through: `n2` unless it leads the stream, else the first node that
/// does not (or the only one there is).
pub fn pick_publisher(nodes: &[Node], leader: &str) -> usize {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    pick_follower(&names, leader)
}

fn pick_follower(names: &[&str], leader: &str) -> usize {
    let followers: Vec<usize> = (0..names.len()).filter(|&i| names[i] != leader).collect();
    followers
        .iter()
        .copied()
        .find(|&i| names[i] == "n2")
        .or_else(|| followers.first().copied())
        .unwrap_or(0)
}

/// One publish with a message id, retried (same id, so a stored one is not stored twice)
/// until a PubAck arrives or `deadline` passes: a new stream's subjects reach the publisher's
/// node a moment after the create answer, and until then a publish meets no responders.
pub async fn publish_retry(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
    id: &str,
    deadline: Instant,
) -> Result<PublishAck> {
    loop {
        let attempt = async {
            js.send_publish(
                subject.to_string(),
                PublishMessage::build().payload(payload.clone()).message_id(id),
            )
            .await?
            .await
        };
        match attempt.await {
            Ok(ack) => return Ok(ack),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("publishing {id}")),
        }
    }
}

/// A replicated stream, ready: created, led, every replica current, and a JetStream context
/// on a node that does not lead it. The clients of all nodes stay open with it.
pub struct Placed {
    pub nodes: Vec<Node>,
    pub stream: stream::Stream,
    pub leader: String,
    /// Index into `nodes` of the publisher's node.
    pub publisher: usize,
    pub js: jetstream::Context,
}

impl Placed {
    pub fn publisher_name(&self) -> &str {
        &self.nodes[self.publisher].name
    }
}

/// How long a new cluster may take to create and lead a stream.
pub const READY: Duration = Duration::from_secs(30);

/// Connects to every node, creates `cfg` (retrying, see [`create_stream`]) through the first,
/// waits for its leader and returns a context on a follower's connection whose requests (and
/// PubAck waits) time out after `timeout`.
pub async fn place(urls: &[String], cfg: stream::Config, timeout: Duration) -> Result<Placed> {
    let replicas = cfg.num_replicas.max(1);
    let nodes = connect_all(urls).await?;
    let mut admin = jetstream::new(nodes[0].client.clone());
    admin.set_timeout(Duration::from_secs(5));
    let name = cfg.name.clone();
    let mut created = create_stream(&admin, cfg, READY).await?;
    let leader = wait_leader(&mut created, replicas, READY).await?;
    let publisher = pick_publisher(&nodes, &leader);
    let mut js = jetstream::new(nodes[publisher].client.clone());
    js.set_timeout(timeout);
    // The handle every later call (info, consumers) goes through: the publisher's node.
    let stream = js
        .get_stream(&name)
        .await
        .with_context(|| format!("stream {name} through {}", nodes[publisher].name))?;
    eprintln!("stream leader {leader}, publishing through {}", nodes[publisher].name);
    Ok(Placed { nodes, stream, leader, publisher, js })
}

/// `--url` as a list: comma-separated.
pub fn split_urls(s: &str) -> Result<Vec<String>> {
    let urls: Vec<String> = s.split(',').filter(|u| !u.is_empty()).map(String::from).collect();
    if urls.is_empty() {
        bail!("--url names no server");
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(split_urls("a,b,,c").unwrap(), ["a", "b", "c"]);
        assert!(split_urls(",").is_err());
    }

    #[test]
    fn publisher_is_n2_unless_it_leads() {
        assert_eq!(pick_follower(&["n1", "n2", "n3"], "n1"), 1);
        assert_eq!(pick_follower(&["n1", "n2", "n3"], "n3"), 1);
        assert_eq!(pick_follower(&["n1", "n2", "n3"], "n2"), 0);
        assert_eq!(pick_follower(&["n3", "n1", "n2"], "n2"), 0);
        assert_eq!(pick_follower(&["n1"], "n1"), 0);
    }
}
