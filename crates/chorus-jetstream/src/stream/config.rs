//! `StreamConfig` and its parts, with nats-server v2.15's JSON names, field order, omission
//! rules and enum spellings.
//!
//! A config as a client sends it is mostly zeros ("unset"); [`super::check`] turns it into the
//! defaulted config the server stores and reports. Durations are `i64` nanoseconds, as Go's
//! `time.Duration` marshals. Unknown fields are rejected, as nats-server's strict JSON mode
//! (the default) rejects them with 10025.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::go::{Timestamp, null_default};

/// Default duplicate window: two minutes.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;
/// Maximum `num_replicas`.
pub const MAX_REPLICAS: i64 = 5;
/// Maximum length of stream, consumer and template names.
pub const MAX_NAME_LEN: usize = 255;
/// Maximum length of a description.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Maximum total length of metadata keys and values.
pub const MAX_METADATA_LEN: usize = 128 * 1024;

/// The configuration of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub retention: RetentionPolicy,
    #[serde(default, deserialize_with = "null_default")]
    pub max_consumers: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub max_msgs: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub max_bytes: i64,
    /// Nanoseconds; 0 means unlimited.
    #[serde(default, deserialize_with = "null_default")]
    pub max_age: i64,
    #[serde(default, deserialize_with = "null_default", rename = "max_msgs_per_subject")]
    pub max_msgs_per_subject: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i32")]
    pub max_msg_size: i32,
    #[serde(default, deserialize_with = "null_default")]
    pub discard: DiscardPolicy,
    #[serde(default, deserialize_with = "null_default")]
    pub storage: StorageType,
    #[serde(default, deserialize_with = "null_default", rename = "num_replicas")]
    pub num_replicas: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub no_ack: bool,
    /// Nanoseconds.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    #[serde(default, deserialize_with = "null_default")]
    pub compression: Compression,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_u64")]
    pub first_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    #[serde(default, deserialize_with = "null_default")]
    pub allow_direct: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub mirror_direct: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub sealed: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub deny_delete: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub deny_purge: bool,
    #[serde(default, deserialize_with = "null_default", rename = "allow_rollup_hdrs")]
    pub allow_rollup: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub consumer_limits: ConsumerLimits,
    #[serde(default, deserialize_with = "null_default")]
    pub allow_msg_ttl: bool,
    /// Nanoseconds.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub subject_delete_marker_ttl: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "allow_atomic",
        skip_serializing_if = "is_false"
    )]
    pub allow_atomic_publish: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "PersistMode::is_default"
    )]
    pub persist_mode: PersistMode,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "allow_batched",
        skip_serializing_if = "is_false"
    )]
    pub allow_batch_publish: bool,
    /// Kept sorted, as Go marshals map keys in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
}

fn is_false(v: &bool) -> bool {
    !*v
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// A stream create/update request body: the config plus the request-scoped `pedantic` flag
/// (reject instead of silently defaulting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamConfigRequest {
    #[serde(flatten)]
    pub config: StreamConfig,
    #[serde(skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

impl<'de> Deserialize<'de> for StreamConfigRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `flatten` cannot be combined with `deny_unknown_fields`, so take `pedantic` off the
        // object and hand the rest to the strict config parser.
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let pedantic = match map.remove("pedantic") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "cannot unmarshal {other} into field pedantic of type bool"
                )));
            }
        };
        let config = StreamConfig::deserialize(serde_json::Value::Object(map))
            .map_err(serde::de::Error::custom)?;
        Ok(StreamConfigRequest { config, pedantic })
    }
}

/// How messages leave the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RetentionPolicy {
    /// Kept until a limit (messages, bytes, age) removes them.
    #[default]
    Limits,
    /// Kept while some consumer still has to acknowledge them.
    Interest,
    /// Removed once one consumer acknowledges them.
    WorkQueue,
}

/// What happens when a limit is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DiscardPolicy {
    /// Remove old messages to make room.
    #[default]
    Old,
    /// Refuse the new message.
    New,
}

/// Where the stream keeps its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// On disk; the default when a request leaves `storage` out.
    #[default]
    File,
    Memory,
}

/// Block compression of file storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    #[default]
    None,
    S2,
}

/// When a stored message counts as persisted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PersistMode {
    /// Flushed before the PubAck.
    #[default]
    Default,
    /// Flushed in the background; the PubAck may come first.
    Async,
}

impl PersistMode {
    pub fn is_default(&self) -> bool {
        *self == PersistMode::Default
    }
}

macro_rules! string_enum {
    ($ty:ident, $what:literal, $($rest:tt)+) => {
        crate::go::json_string_enum!($ty, $($rest)+);

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $ty::parse_json(&s).ok_or_else(|| serde::de::Error::custom(format!(
                    concat!("can not unmarshal {:?} as ", $what), s
                )))
            }
        }
    };
}

string_enum!(
    RetentionPolicy,
    "retention",
    Limits = "limits",
    Interest = "interest",
    WorkQueue = "workqueue"
);
string_enum!(DiscardPolicy, "discard policy", Old = "old", New = "new");
string_enum!(StorageType, "storage type", File = "file", Memory = "memory");
string_enum!(Compression, "compression", None = "none", S2 = "s2");
string_enum!(PersistMode, "persist mode", Default = "default", Async = "async"; extra "" => Default);

impl RetentionPolicy {
    fn parse_json(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}
impl DiscardPolicy {
    /// nats-server accepts any letter case here (and only here).
    fn parse_json(s: &str) -> Option<Self> {
        Self::parse(&s.to_ascii_lowercase())
    }
}
impl StorageType {
    fn parse_json(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}
impl Compression {
    fn parse_json(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}
impl PersistMode {
    fn parse_json(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}

/// Where a clustered stream may be placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub preferred: String,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.tags.is_empty() && self.preferred.is_empty()
    }
}

/// A stream this one mirrors or sources from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSource {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<StreamConsumerSource>,
}

impl StreamSource {
    /// The key nats-server uses to tell two sources apart (`composeIName`): the stream name,
    /// the external API prefix, the durable consumer name, then the filters and destinations.
    /// nats-server hashes the prefix and consumer name; we keep them verbatim, which gives a
    /// different string but the same equality.
    pub fn index_name(&self) -> String {
        let mut iname = self.name.clone();
        if let Some(ext) = &self.external {
            iname.push(':');
            iname.push_str(&ext.api);
        }
        if let Some(c) = &self.consumer {
            iname.push_str(":C=");
            iname.push_str(&c.name);
        }
        let or_all = |s: &str| if s.is_empty() { ">".to_string() } else { s.to_string() };
        let (source, destination) = if self.subject_transforms.is_empty() {
            (or_all(&self.filter_subject), ">".to_string())
        } else {
            let src: Vec<String> = self.subject_transforms.iter().map(|t| or_all(&t.src)).collect();
            let dst: Vec<String> =
                self.subject_transforms.iter().map(|t| or_all(&t.dest)).collect();
            (src.join("\x0c"), dst.join("\x0c"))
        };
        format!("{iname} {source} {destination}")
    }

    /// The key nats-server uses to spot two sources sharing one durable sourcing consumer
    /// (`composeCName`), with the same verbatim-instead-of-hashed caveat as
    /// [`StreamSource::index_name`].
    pub fn consumer_key(&self) -> String {
        let mut cname = self.name.clone();
        if let Some(ext) = &self.external {
            cname.push(':');
            cname.push_str(&ext.api);
        }
        let c = self.consumer.as_ref().map_or("", |c| c.name.as_str());
        format!("{cname} {c}")
    }
}

/// A durable consumer to use for sourcing (instead of an ephemeral one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConsumerSource {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
}

/// A source or mirror in another account or JetStream domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalStream {
    #[serde(default, deserialize_with = "null_default")]
    pub api: String,
    #[serde(default, deserialize_with = "null_default")]
    pub deliver: String,
}

impl ExternalStream {
    /// The domain named by an API prefix of the form `$JS.<domain>.API`.
    pub fn domain(&self) -> Option<&str> {
        self.api.split('.').nth(1).filter(|_| !self.api.is_empty())
    }
}

/// A subject mapping (`src` to `dest`, with `$1`/`{{wildcard(1)}}`-style placeholders).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectTransform {
    #[serde(default, deserialize_with = "null_default")]
    pub src: String,
    #[serde(default, deserialize_with = "null_default")]
    pub dest: String,
}

/// Republishing of stored messages to another subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RePublish {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub src: String,
    #[serde(default, deserialize_with = "null_default")]
    pub dest: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// Defaults and ceilings the stream imposes on its consumers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerLimits {
    /// Nanoseconds.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::to_json_string;

    #[test]
    fn minimal_request_parses_to_zeros() {
        let c: StreamConfig = serde_json::from_str(r#"{"name":"V1"}"#).unwrap();
        assert_eq!(c.name, "V1");
        assert_eq!((c.max_msgs, c.max_bytes, c.num_replicas, c.duplicate_window), (0, 0, 0, 0));
        assert_eq!(c.storage, StorageType::File);
        assert_eq!(c.retention, RetentionPolicy::Limits);
    }

    #[test]
    fn enums_use_nats_spellings() {
        let c: StreamConfig = serde_json::from_str(
            r#"{"name":"x","retention":"workqueue","discard":"NEW","storage":"memory",
                "compression":"s2","persist_mode":"async"}"#,
        )
        .unwrap();
        assert_eq!(c.retention, RetentionPolicy::WorkQueue);
        assert_eq!(c.discard, DiscardPolicy::New);
        assert_eq!(c.storage, StorageType::Memory);
        assert_eq!(c.compression, Compression::S2);
        assert_eq!(c.persist_mode, PersistMode::Async);
        let c: StreamConfig = serde_json::from_str(r#"{"persist_mode":""}"#).unwrap();
        assert_eq!(c.persist_mode, PersistMode::Default);
        for bad in [
            r#"{"retention":"Limits"}"#,
            r#"{"storage":"disk"}"#,
            r#"{"compression":"zstd"}"#,
            r#"{"persist_mode":"later"}"#,
            r#"{"bogus":1}"#,
            r#"{"placement":{"x":1}}"#,
        ] {
            assert!(serde_json::from_str::<StreamConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nulls_leave_defaults() {
        let c: StreamConfig =
            serde_json::from_str(r#"{"name":"x","subjects":null,"max_msgs":null,"metadata":null}"#)
                .unwrap();
        assert!(c.subjects.is_empty());
        assert_eq!(c.max_msgs, 0);
    }

    #[test]
    fn serialises_in_go_field_order_with_omissions() {
        let c = StreamConfig {
            name: "KV_CONFIG".into(),
            subjects: vec!["$KV.CONFIG.>".into()],
            max_consumers: -1,
            max_msgs: -1,
            max_bytes: -1,
            max_msgs_per_subject: 5,
            max_msg_size: -1,
            discard: DiscardPolicy::New,
            num_replicas: 1,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            allow_direct: true,
            deny_delete: true,
            allow_rollup: true,
            ..Default::default()
        };
        assert_eq!(
            to_json_string(&c),
            concat!(
                r#"{"name":"KV_CONFIG","subjects":["$KV.CONFIG.\u003e"],"retention":"limits","#,
                r#""max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"#,
                r#""max_msgs_per_subject":5,"max_msg_size":-1,"discard":"new","storage":"file","#,
                r#""num_replicas":1,"duplicate_window":120000000000,"compression":"none","#,
                r#""allow_direct":true,"mirror_direct":false,"sealed":false,"deny_delete":true,"#,
                r#""deny_purge":false,"allow_rollup_hdrs":true,"consumer_limits":{},"#,
                r#""allow_msg_ttl":false}"#
            )
        );
    }

    #[test]
    fn request_takes_pedantic_and_stays_strict() {
        let r: StreamConfigRequest =
            serde_json::from_str(r#"{"name":"VP","max_msgs":-5,"pedantic":true}"#).unwrap();
        assert!(r.pedantic);
        assert_eq!(r.config.max_msgs, -5);
        assert!(serde_json::from_str::<StreamConfigRequest>(r#"{"name":"a","x":1}"#).is_err());
        assert!(serde_json::from_str::<StreamConfigRequest>(r#"{"pedantic":1}"#).is_err());
        assert_eq!(
            to_json_string(&r),
            concat!(
                r#"{"name":"VP","retention":"limits","max_consumers":0,"max_msgs":-5,"#,
                r#""max_bytes":0,"max_age":0,"max_msgs_per_subject":0,"discard":"old","#,
                r#""storage":"file","num_replicas":0,"compression":"none","allow_direct":false,"#,
                r#""mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"#,
                r#""allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"#,
                r#""pedantic":true}"#
            )
        );
    }

    #[test]
    fn source_index_names_tell_filters_apart() {
        let a = StreamSource { name: "V1".into(), ..Default::default() };
        let b =
            StreamSource { name: "V1".into(), filter_subject: "V1".into(), ..Default::default() };
        assert_eq!(a.index_name(), "V1 > >");
        assert_eq!(b.index_name(), "V1 V1 >");
        assert_ne!(a.index_name(), b.index_name());
        let t = StreamSource {
            name: "V1".into(),
            subject_transforms: vec![
                SubjectTransform { src: "".into(), dest: "x".into() },
                SubjectTransform { src: "a".into(), dest: "".into() },
            ],
            ..Default::default()
        };
        assert_eq!(t.index_name(), "V1 >\x0ca x\x0c>");
        let e = ExternalStream { api: "$JS.hub.API".into(), deliver: String::new() };
        assert_eq!(e.domain(), Some("hub"));
        assert_eq!(ExternalStream::default().domain(), None);
    }
}
