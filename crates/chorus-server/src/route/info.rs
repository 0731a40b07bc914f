//! The INFO and CONNECT documents of the route handshake, with nats-server's JSON names and
//! omission rules (`server.go` `Info`, `route.go` `connectInfo`).
//!
//! What Chorus says about itself on a route, and why:
//! - `compression: "off"`: Chorus does not speak S2; "off" makes every peer mode (even
//!   `s2_*`) settle on no compression, where `accept` would let an `s2_*` peer switch on.
//! - `headers: true`, else peers strip headers from what they forward.
//! - `lnoc`/`lnocu`/`ln`, as nats-server 2.15: leaf-origin interest and messages
//!   (`LS+`/`LS-`/`LMSG`) are taken like `RS+`/`RS-`/`RMSG` (Chorus has no leaf nodes, so
//!   the origin only matters to peers).
//! - no `jetstream`: JetStream does not cross a cluster whose raft is not shared.
//! - `proto: 2`: no message tracing across routes (`proto` 3).
//! - `chorus_node`: the raft node id of a server with clustered JetStream (raft frames for
//!   it travel on its routes, see `route::raft`).

use serde::{Deserialize, Serialize};

/// Route protocol level Chorus speaks (nats-server's `RouteProtoV2`).
pub(crate) const ROUTE_PROTO: i32 = 2;

/// The route INFO both sides send (and the INFO forwarded as gossip).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RouteInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i32,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    pub max_payload: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// `nats-route://host:port/`: where to dial this server (set with `advertise`, and in
    /// forwarded INFOs).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The sender's client URLs (`host:port`), for clients' `connect_urls`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(skip_serializing_if = "is_false")]
    pub lnoc: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub lnocu: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub ln: bool,
    /// The sender's configured pool size; absent: no pooling.
    #[serde(skip_serializing_if = "is_zero")]
    pub route_pool_size: i32,
    /// The dialer's slot for this connection (absent for slot 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub route_pool_idx: i32,
    /// The account a dedicated (pinned) connection carries.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_account: String,
    /// A peer's config reload added a pinned account (answered by echoing it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_acc_add_reqid: String,
    /// 0: forward this server to others; 1: do not; 2: override (see `route`).
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub gossip_mode: u8,
    /// Set on gateway INFOs, which a route ignores.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Chorus only: the sender's raft node id (the incarnation of its JetStream store), so
    /// raft frames for that node go on this route. Absent from nats-server and from Chorus
    /// servers without clustered JetStream; nats-server ignores it.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub chorus_node: u64,
}

/// The CONNECT a dialer sends first (`route.go` `connectInfo`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RouteConnect {
    pub echo: bool,
    pub verbose: bool,
    pub pedantic: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pass: String,
    pub tls_required: bool,
    pub headers: bool,
    /// The dialer's server id.
    pub name: String,
    pub cluster: String,
    #[serde(skip_serializing_if = "is_false", rename = "cluster_dynamic")]
    pub dynamic: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "is_false")]
    pub lnoc: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub ln: bool,
    /// Only a client sends `lang`: a client on the route port.
    #[serde(skip_serializing)]
    pub lang: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The 32-bit FNV-1a hash nats-server picks an account's pool slot with.
pub(crate) fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// The pool slot of `account` with `pool_size` connections per peer (`computeRoutePoolIdx`).
pub(crate) fn pool_index(pool_size: usize, account: &str) -> usize {
    if pool_size <= 1 {
        return 0;
    }
    (fnv32a(account.as_bytes()) % pool_size as u32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_slots_match_nats_server() {
        // Seen on the wire between two nats-server v2.15.2 with the default pool of 3.
        assert_eq!(fnv32a(b"$G"), 0x7abc_619c);
        assert_eq!(pool_index(3, "$G"), 2);
        assert_eq!(fnv32a(b"ACC"), 0x8486_acfa);
        assert_eq!(pool_index(3, "ACC"), 1);
        assert_eq!(pool_index(3, "foo"), 0);
        assert_eq!(pool_index(1, "$G"), 0);
        assert_eq!(pool_index(0, "$G"), 0);
    }

    #[test]
    fn info_leaves_out_what_is_unset() {
        let i = RouteInfo {
            server_id: "N1".into(),
            server_name: "a".into(),
            version: "2.11.0".into(),
            proto: ROUTE_PROTO,
            go: "rust".into(),
            host: "127.0.0.1".into(),
            port: 6222,
            headers: true,
            max_payload: 1 << 20,
            cluster: "c".into(),
            compression: "off".into(),
            lnoc: true,
            lnocu: true,
            ln: true,
            route_pool_size: 3,
            ..RouteInfo::default()
        };
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(
            json,
            r#"{"server_id":"N1","server_name":"a","version":"2.11.0","proto":2,"go":"rust","host":"127.0.0.1","port":6222,"headers":true,"max_payload":1048576,"cluster":"c","compression":"off","lnoc":true,"lnocu":true,"ln":true,"route_pool_size":3}"#
        );
        // What nats-server sends parses, unknown fields and all.
        let theirs: RouteInfo = serde_json::from_str(
            r#"{"server_id":"NB","server_name":"A","version":"2.15.2","proto":3,"go":"go1.26.8","host":"127.0.0.1","port":24248,"headers":true,"max_payload":1048576,"nonce":"x","cluster":"c1","connect_urls":["127.0.0.1:24222"],"compression":"accept","lnoc":true,"lnocu":true,"ln":true,"route_pool_size":3}"#,
        )
        .unwrap();
        assert_eq!(theirs.route_pool_size, 3);
        assert_eq!(theirs.connect_urls, vec!["127.0.0.1:24222"]);
        let c: RouteConnect = serde_json::from_str(
            r#"{"echo":true,"verbose":false,"pedantic":false,"tls_required":false,"headers":true,"name":"NB","cluster":"c1","lnoc":true,"ln":true}"#,
        )
        .unwrap();
        assert_eq!((c.name.as_str(), c.cluster.as_str(), c.lang), ("NB", "c1", None));
    }
}
