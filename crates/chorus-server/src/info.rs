//! The `INFO` a client receives, and the `CONNECT` it answers with.

use serde::{Deserialize, Serialize};

/// The nats-server version Chorus reports in `INFO.version`.
///
/// Clients enable JetStream API features by server version (nats.js: the consumer-create API
/// from 2.9, multiple filters from 2.10, batch direct get from 2.11), so this is the newest
/// nats-server behaviour Chorus vouches for, not Chorus's own version (which is in `chorus`).
pub const COMPAT_VERSION: &str = "2.11.0";

/// Chorus's own version, reported in the extra `INFO.chorus` field and in /varz.
pub const CHORUS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Client protocol level: 1 = supports async INFO (cluster topology updates).
pub const PROTO: i32 = 1;

/// The JetStream API level that goes with [`COMPAT_VERSION`] (2.11 introduced level 1).
pub const API_LEVEL: i32 = 1;

/// `INFO` as nats-server sends it (field names and omission rules from server.go `Info`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Info {
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
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    #[serde(skip_serializing_if = "is_false")]
    pub acc_is_sys: bool,
    /// JetStream API level (ADR-44) of the nats-server version in `version`.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub api_lvl: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub xkey: String,
    /// Chorus's own version; clients ignore unknown fields.
    pub chorus: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// The options a client sends in `CONNECT` (client.go `ClientOpts`).
///
/// Defaults are nats-server's `defaultOpts`: a client that never sends CONNECT (telnet) is
/// verbose and pedantic, and echo is on unless a client turns it off.
///
/// Go's JSON decoder leaves a field alone when it reads `null`, and clients do send `null`
/// (async-nats: `"name":null`), so every field here accepts `null` as "not given".
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConnectOpts {
    #[serde(deserialize_with = "or_default_true")]
    pub echo: bool,
    #[serde(deserialize_with = "or_default_true")]
    pub verbose: bool,
    #[serde(deserialize_with = "or_default_true")]
    pub pedantic: bool,
    #[serde(deserialize_with = "or_default")]
    pub tls_required: bool,
    pub nkey: Option<String>,
    pub jwt: Option<String>,
    pub sig: Option<String>,
    pub auth_token: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub lang: String,
    #[serde(deserialize_with = "or_default")]
    pub version: String,
    #[serde(deserialize_with = "or_default")]
    pub protocol: i32,
    #[serde(deserialize_with = "or_default")]
    pub headers: bool,
    #[serde(deserialize_with = "or_default")]
    pub no_responders: bool,
}

fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// For the options whose nats-server default is `true` (`null` keeps the default).
fn or_default_true<'de, D>(d: D) -> Result<bool, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            echo: true,
            verbose: true,
            pedantic: true,
            tls_required: false,
            nkey: None,
            jwt: None,
            sig: None,
            auth_token: None,
            user: None,
            pass: None,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            protocol: 0,
            headers: false,
            no_responders: false,
        }
    }
}

/// The server's identity, as nats-server makes it: an NKey server key pair (the id is its
/// public key, 56 base32 characters starting with `N`) and an x25519 key (`xkey` in INFO) for
/// encrypting messages such as auth callout requests.
pub struct ServerKeys {
    pub id: String,
    pub xkey: String,
    pub signer: nkeys::KeyPair,
}

impl ServerKeys {
    pub fn generate() -> ServerKeys {
        let signer = nkeys::KeyPair::new_server();
        ServerKeys { id: signer.public_key(), xkey: nkeys::XKey::new().public_key(), signer }
    }
}

/// A nonce as nats-server makes them for NKey challenges: 11 random bytes, base64url
/// without padding.
pub fn new_nonce() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 11];
    rand::rng().fill_bytes(&mut raw);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(15);
    let mut bits = 0u32;
    let mut nbits = 0;
    for b in raw {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_defaults_follow_nats_server() {
        let c: ConnectOpts = serde_json::from_str("{}").unwrap();
        assert!(c.echo && c.verbose && c.pedantic && !c.headers);
        let c: ConnectOpts = serde_json::from_str(
            r#"{"verbose":false,"pedantic":false,"echo":false,"headers":true,"x":1}"#,
        )
        .unwrap();
        assert!(!c.echo && !c.verbose && !c.pedantic && c.headers);
        let c: ConnectOpts =
            serde_json::from_str(r#"{"name":null,"echo":null,"protocol":1,"sig":null}"#).unwrap();
        assert!(c.echo && c.name.is_empty() && c.protocol == 1);
    }

    #[test]
    fn ids_have_the_nats_shape() {
        let k = ServerKeys::generate();
        assert_eq!(k.id.len(), 56);
        assert!(k.id.starts_with('N'));
        assert!(k.xkey.starts_with('X'));
        assert_ne!(k.id, ServerKeys::generate().id);
        assert_eq!(new_nonce().len(), 15);
    }
}
