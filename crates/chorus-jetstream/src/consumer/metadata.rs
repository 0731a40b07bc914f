//! Versioning metadata (ADR-44) of consumers: `_nats.req.level` stored with the config,
//! `_nats.ver` / `_nats.level` added to responses only. Same keys as streams
//! ([`crate::stream::metadata`]).

use super::config::{AckPolicy, ConsumerConfig, PriorityPolicy};
#[cfg(test)]
use crate::stream::metadata::REQUIRED_LEVEL_KEY;
use crate::stream::metadata::map;

/// The API level a consumer config needs: 1 for pausing and priority groups (2.11), 4 for
/// the `flow_control` ack policy (2.14).
pub fn required_api_level(cfg: &ConsumerConfig) -> u32 {
    let mut level = 0;
    if cfg.pause_until.is_some_and(|t| !t.is_zero()) {
        level = level.max(1);
    }
    if cfg.priority_policy != PriorityPolicy::None
        || cfg.pinned_ttl != 0
        || !cfg.priority_groups.is_empty()
    {
        level = level.max(1);
    }
    if cfg.ack_policy == AckPolicy::FlowControl {
        level = level.max(4);
    }
    level
}

/// nats-server's `setStaticConsumerMetadata`: drops response-only keys, records
/// `_nats.req.level`. Applied to every create request and pause.
pub fn set_static(cfg: &mut ConsumerConfig) {
    let level = required_api_level(cfg);
    map::set_static(&mut cfg.metadata, level);
}

/// A copy of `cfg` for a response, with the server's version and API level added.
pub fn with_dynamic(cfg: &ConsumerConfig, server_version: &str, api_level: u32) -> ConsumerConfig {
    let mut out = cfg.clone();
    map::add_dynamic(&mut out.metadata, server_version, api_level);
    out
}

/// Removes the response-only keys.
pub fn delete_dynamic(cfg: &mut ConsumerConfig) {
    map::delete_dynamic(&mut cfg.metadata);
}

/// nats-server's `copyConsumerMetadata`: gives `cfg` the versioning key of `prev` so the two
/// compare equal when only versioning differs.
pub fn copy_versioning(cfg: &mut ConsumerConfig, prev: &ConsumerConfig) {
    map::copy_versioning(&mut cfg.metadata, &prev.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::Timestamp;

    #[test]
    fn levels() {
        let mut c = ConsumerConfig::default();
        assert_eq!(required_api_level(&c), 0);
        c.pause_until = Some(Timestamp::ZERO);
        assert_eq!(required_api_level(&c), 0);
        c.pause_until = Some(Timestamp::from_unix_nanos(1));
        assert_eq!(required_api_level(&c), 1);
        c.ack_policy = AckPolicy::FlowControl;
        assert_eq!(required_api_level(&c), 4);
        set_static(&mut c);
        assert_eq!(c.metadata.get(REQUIRED_LEVEL_KEY).map(String::as_str), Some("4"));
    }
}
