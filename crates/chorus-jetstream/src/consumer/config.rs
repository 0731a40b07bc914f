//! `ConsumerConfig` and the consumer create request, with nats-server v2.15's JSON names,
//! field order, omission rules and enum spellings.
//!
//! As for streams, a config as a client sends it is mostly zeros; [`super::check`] fills in
//! the defaults the server stores and reports. Durations are `i64` nanoseconds (Go's
//! `time.Duration`). Unknown fields are rejected, as nats-server's strict request decoding
//! does (10025).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::go::{Timestamp, null_default};

/// Default `ack_wait` for explicit and all ack policies: 30 s.
pub const DEFAULT_ACK_WAIT: i64 = 30_000_000_000;
/// Default `max_ack_pending` when acks are needed and nothing else sets one.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Default `max_waiting` of pull consumers (`JSWaitQueueDefaultMax`).
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// Inactivity threshold given to ephemeral consumers that set none: 5 s.
pub const DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD: i64 = 5_000_000_000;
/// Default `priority_timeout` of pinned-client consumers: 2 minutes.
pub const DEFAULT_PINNED_TTL: i64 = 120_000_000_000;
/// The idle heartbeat the `flow_control` ack policy requires: 1 s.
pub const FLOW_CONTROL_ACK_HEARTBEAT: i64 = 1_000_000_000;

/// The configuration of a consumer (nats-server's `ConsumerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "durable_name",
        skip_serializing_if = "String::is_empty"
    )]
    pub durable: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, deserialize_with = "null_default")]
    pub deliver_policy: DeliverPolicy,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_default")]
    pub ack_policy: AckPolicy,
    /// Nanoseconds.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    /// -1 (after defaults) means unlimited.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_deliver: i64,
    /// Nanoseconds per redelivery step.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "backoff",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub backoff: Vec<i64>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub replay_policy: ReplayPolicy,
    /// Bits per second.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "rate_limit_bps",
        skip_serializing_if = "is_zero_u64"
    )]
    pub rate_limit: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "sample_freq",
        skip_serializing_if = "String::is_empty"
    )]
    pub sample_frequency: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_waiting: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "max_batch",
        skip_serializing_if = "is_zero_i64"
    )]
    pub max_request_batch: i64,
    /// Nanoseconds.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "max_expires",
        skip_serializing_if = "is_zero_i64"
    )]
    pub max_request_expires: i64,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "max_bytes",
        skip_serializing_if = "is_zero_i64"
    )]
    pub max_request_max_bytes: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    /// Nanoseconds.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "idle_heartbeat",
        skip_serializing_if = "is_zero_i64"
    )]
    pub heartbeat: i64,
    /// Nanoseconds.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    /// Always present, 0 meaning "as the stream".
    #[serde(default, deserialize_with = "null_default", rename = "num_replicas")]
    pub replicas: i64,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "mem_storage",
        skip_serializing_if = "is_false"
    )]
    pub memory_storage: bool,
    /// Internal consumers of mirrors and sources; not listed by the API.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub sourcing: bool,
    /// Kept sorted, as Go marshals map keys in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
    /// A set zero time is kept and reported (the `nats` CLI sends one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "PriorityPolicy::is_none"
    )]
    pub priority_policy: PriorityPolicy,
    /// Nanoseconds (`priority_timeout` in JSON).
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "priority_timeout",
        skip_serializing_if = "is_zero_i64"
    )]
    pub pinned_ttl: i64,
}

fn is_false(v: &bool) -> bool {
    !*v
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl ConsumerConfig {
    /// Durable consumers have a `durable_name`.
    pub fn is_durable(&self) -> bool {
        !self.durable.is_empty()
    }

    /// Push consumers have a deliver subject; the others are pulled.
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    pub fn is_pull(&self) -> bool {
        self.deliver_subject.is_empty()
    }

    /// `filter_subject` and `filter_subjects` as one list (nats-server's
    /// `gatherSubjectFilters`): the list first, then the single filter.
    pub fn filters(&self) -> Vec<String> {
        let mut out = self.filter_subjects.clone();
        if !self.filter_subject.is_empty() {
            out.push(self.filter_subject.clone());
        }
        out
    }

    /// Whether `pause_until` lies after `now` (unix nanos).
    pub fn is_paused_at(&self, now: i64) -> bool {
        self.pause_until.is_some_and(|t| !t.is_zero() && now < t.unix_nanos())
    }

    /// `max_deliver` as a delivery cap; 0 means none (the config's -1).
    pub fn max_deliveries(&self) -> u64 {
        self.max_deliver.max(0) as u64
    }
}

/// Where a new consumer starts in the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

/// Which deliveries need an acknowledgement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AckPolicy {
    /// The Go zero value: what a request that leaves `ack_policy` out gets.
    #[default]
    None,
    /// Acknowledging one message acknowledges every earlier one.
    All,
    Explicit,
    /// Acks ride on flow control replies (2.14+, sourcing).
    FlowControl,
}

/// How fast stored messages are replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReplayPolicy {
    #[default]
    Instant,
    /// With the gaps between the messages' original timestamps.
    Original,
}

/// How pull requests of priority groups are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PriorityPolicy {
    #[default]
    None,
    /// Requests get messages only past their `min_pending` / `min_ack_pending`.
    Overflow,
    /// One client (pin id) gets everything until it stops pulling.
    PinnedClient,
    /// Lower `priority` values are served first.
    Prioritized,
}

impl PriorityPolicy {
    pub fn is_none(&self) -> bool {
        *self == PriorityPolicy::None
    }
}

macro_rules! string_enum {
    ($ty:ident, $($rest:tt)+) => {
        crate::go::json_string_enum!($ty, $($rest)+);

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $ty::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("can not unmarshal \"\\\"{}\\\"\"", s))
                })
            }
        }
    };
}

string_enum!(
    DeliverPolicy,
    All = "all",
    Last = "last",
    New = "new",
    ByStartSequence = "by_start_sequence",
    ByStartTime = "by_start_time",
    LastPerSubject = "last_per_subject";
    extra "undefined" => All
);
string_enum!(
    AckPolicy,
    None = "none",
    All = "all",
    Explicit = "explicit",
    FlowControl = "flow_control"
);
string_enum!(ReplayPolicy, Instant = "instant", Original = "original");
string_enum!(
    PriorityPolicy,
    None = "none",
    Overflow = "overflow",
    PinnedClient = "pinned_client",
    Prioritized = "prioritized"
);

/// What a create request may do (`action`): create or update (`""`), only create, only
/// update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ConsumerAction {
    #[default]
    CreateOrUpdate,
    Update,
    Create,
}

impl ConsumerAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsumerAction::CreateOrUpdate => "",
            ConsumerAction::Update => "update",
            ConsumerAction::Create => "create",
        }
    }
}

impl Serialize for ConsumerAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConsumerAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s.as_ref() {
            "" => Ok(ConsumerAction::CreateOrUpdate),
            "update" => Ok(ConsumerAction::Update),
            "create" => Ok(ConsumerAction::Create),
            other => Err(serde::de::Error::custom(format!("unknown consumer action: \"{other}\""))),
        }
    }
}

/// The body of `CONSUMER.CREATE` and `CONSUMER.DURABLE.CREATE` (`CreateConsumerRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConsumerRequest {
    #[serde(default, deserialize_with = "null_default", rename = "stream_name")]
    pub stream: String,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ConsumerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub action: ConsumerAction,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::to_json_string;

    #[test]
    fn zero_config_serialises_like_go() {
        assert_eq!(
            to_json_string(&ConsumerConfig::default()),
            r#"{"deliver_policy":"all","ack_policy":"none","replay_policy":"instant","num_replicas":0}"#
        );
    }

    #[test]
    fn enums_parse_exact_spellings() {
        let c: ConsumerConfig = serde_json::from_str(
            r#"{"deliver_policy":"undefined","ack_policy":"flow_control","replay_policy":"original",
                "priority_policy":"pinned_client"}"#,
        )
        .unwrap();
        assert_eq!(c.deliver_policy, DeliverPolicy::All);
        assert_eq!(c.ack_policy, AckPolicy::FlowControl);
        assert_eq!(c.replay_policy, ReplayPolicy::Original);
        assert_eq!(c.priority_policy, PriorityPolicy::PinnedClient);
        for bad in [
            r#"{"ack_policy":"Explicit"}"#,
            r#"{"deliver_policy":"first"}"#,
            r#"{"replay_policy":1}"#,
            r#"{"durable":"x"}"#,
        ] {
            assert!(serde_json::from_str::<ConsumerConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_actions() {
        let r: CreateConsumerRequest =
            serde_json::from_str(r#"{"stream_name":"S","config":{},"action":"create"}"#).unwrap();
        assert_eq!(r.action, ConsumerAction::Create);
        assert!(
            serde_json::from_str::<CreateConsumerRequest>(r#"{"stream_name":"S","action":"x"}"#)
                .is_err()
        );
        let r = CreateConsumerRequest { stream: "S".into(), ..Default::default() };
        assert!(to_json_string(&r).ends_with(r#""action":""}"#));
    }

    #[test]
    fn filters_are_gathered_list_first() {
        let c = ConsumerConfig {
            filter_subject: "a".into(),
            filter_subjects: vec!["b".into(), "c".into()],
            ..Default::default()
        };
        assert_eq!(c.filters(), ["b", "c", "a"]);
        assert!(ConsumerConfig::default().filters().is_empty());
    }
}
