//! Versioning metadata (ADR-44): the `_nats.*` keys nats-server keeps in a stream's
//! `metadata`.
//!
//! `_nats.req.level` (the API level the stream's features need) is stored with the config;
//! `_nats.ver` and `_nats.level` (the answering server's version and API level) are added
//! only to responses and never stored.

use super::config::{PersistMode, StreamConfig};

/// The JetStream API level nats-server v2.15 implements (and reports as `api.level`).
pub const API_LEVEL: u32 = 5;
/// Stored: the API level a server needs to support the stream.
pub const REQUIRED_LEVEL_KEY: &str = "_nats.req.level";
/// Response only: the answering server's version.
pub const SERVER_VERSION_KEY: &str = "_nats.ver";
/// Response only: the answering server's API level.
pub const SERVER_LEVEL_KEY: &str = "_nats.level";

/// The API level a config's features need: 1 for message TTLs and delete markers (2.11),
/// 2 for counters, atomic batches, schedules and async persistence (2.12), 4 for fast batch
/// publishing (2.14).
pub fn required_api_level(cfg: &StreamConfig) -> u32 {
    let mut level = 0;
    if cfg.allow_msg_ttl || cfg.subject_delete_marker_ttl > 0 {
        level = level.max(1);
    }
    if cfg.allow_msg_counter
        || cfg.allow_atomic_publish
        || cfg.allow_msg_schedules
        || cfg.persist_mode == PersistMode::Async
    {
        level = level.max(2);
    }
    if cfg.allow_batch_publish {
        level = level.max(4);
    }
    level
}

/// The versioning operations on a `metadata` map, shared by streams and consumers (which
/// use the same keys).
pub mod map {
    use std::collections::BTreeMap;

    use super::{REQUIRED_LEVEL_KEY, SERVER_LEVEL_KEY, SERVER_VERSION_KEY};

    pub type Metadata = BTreeMap<String, String>;

    /// Drops response-only keys and records the required level.
    pub fn set_static(meta: &mut Metadata, required_level: u32) {
        delete_dynamic(meta);
        meta.insert(REQUIRED_LEVEL_KEY.into(), required_level.to_string());
    }

    /// Adds the answering server's version and API level (responses only).
    pub fn add_dynamic(meta: &mut Metadata, server_version: &str, api_level: u32) {
        meta.insert(SERVER_VERSION_KEY.into(), server_version.into());
        meta.insert(SERVER_LEVEL_KEY.into(), api_level.to_string());
    }

    /// Removes the response-only keys.
    pub fn delete_dynamic(meta: &mut Metadata) {
        meta.remove(SERVER_VERSION_KEY);
        meta.remove(SERVER_LEVEL_KEY);
    }

    /// Makes `meta`'s versioning keys those of `prev`, so two configs compare equal when only
    /// versioning differs.
    pub fn copy_versioning(meta: &mut Metadata, prev: &Metadata) {
        delete_dynamic(meta);
        match prev.get(REQUIRED_LEVEL_KEY) {
            Some(v) => {
                meta.insert(REQUIRED_LEVEL_KEY.into(), v.clone());
            }
            None => {
                meta.remove(REQUIRED_LEVEL_KEY);
            }
        }
    }
}

/// nats-server's `setStaticStreamMetadata`: drops any response-only keys a client sent back
/// and records `_nats.req.level`. Applied to every create and update request.
pub fn set_static(cfg: &mut StreamConfig) {
    let level = required_api_level(cfg);
    map::set_static(&mut cfg.metadata, level);
}

/// nats-server's `setDynamicStreamMetadata`: a copy of the config for a response, with the
/// server's version and API level added.
pub fn with_dynamic(cfg: &StreamConfig, server_version: &str, api_level: u32) -> StreamConfig {
    let mut out = cfg.clone();
    map::add_dynamic(&mut out.metadata, server_version, api_level);
    out
}

/// Removes the response-only keys.
pub fn delete_dynamic(cfg: &mut StreamConfig) {
    map::delete_dynamic(&mut cfg.metadata);
}

/// nats-server's `copyStreamMetadata`: makes `cfg`'s versioning keys those of `prev`, so the
/// two can be compared while ignoring versioning differences.
pub fn copy_versioning(cfg: &mut StreamConfig, prev: &StreamConfig) {
    map::copy_versioning(&mut cfg.metadata, &prev.metadata);
}

/// Whether a `Nats-Required-Api-Level` request header asks for more than we implement (or is
/// not a number), in which case nats-server answers 10185 (or `412` on direct gets).
pub fn errors_on_required_level(header_value: Option<&[u8]>, api_level: u32) -> bool {
    match header_value {
        None | Some([]) => false,
        Some(v) => match std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(min) => (api_level as i64) < min,
            None => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let mut c = StreamConfig::default();
        assert_eq!(required_api_level(&c), 0);
        c.subject_delete_marker_ttl = 1;
        assert_eq!(required_api_level(&c), 1);
        c.persist_mode = PersistMode::Async;
        assert_eq!(required_api_level(&c), 2);
        c.allow_batch_publish = true;
        assert_eq!(required_api_level(&c), 4);
    }

    #[test]
    fn static_and_dynamic_keys() {
        let mut c = StreamConfig::default();
        c.metadata.insert(SERVER_VERSION_KEY.into(), "9.9.9".into());
        c.metadata.insert("owner".into(), "me".into());
        c.allow_msg_ttl = true;
        set_static(&mut c);
        assert_eq!(c.metadata.len(), 2);
        assert_eq!(c.metadata[REQUIRED_LEVEL_KEY], "1");
        let d = with_dynamic(&c, "2.15.2", API_LEVEL);
        assert_eq!(d.metadata[SERVER_VERSION_KEY], "2.15.2");
        assert_eq!(d.metadata[SERVER_LEVEL_KEY], "5");
        assert_eq!(c.metadata.len(), 2, "the stored config is left alone");

        let mut other = d.clone();
        other.metadata.insert(REQUIRED_LEVEL_KEY.into(), "0".into());
        copy_versioning(&mut other, &c);
        assert_eq!(other, c);
        copy_versioning(&mut other, &StreamConfig::default());
        assert!(!other.metadata.contains_key(REQUIRED_LEVEL_KEY));
    }

    #[test]
    fn required_level_header() {
        assert!(!errors_on_required_level(None, 5));
        assert!(!errors_on_required_level(Some(b""), 5));
        assert!(!errors_on_required_level(Some(b"5"), 5));
        assert!(errors_on_required_level(Some(b"6"), 5));
        assert!(errors_on_required_level(Some(b"x"), 5));
    }
}
