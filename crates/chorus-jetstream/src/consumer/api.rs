//! The consumer half of the JetStream JSON API: `ConsumerInfo`, the CREATE / INFO / DELETE /
//! NAMES / LIST / PAUSE responses, the pull request body, and the consumer API subjects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::ConsumerConfig;
use crate::api::errors::{ApiError, ErrorId};
use crate::api::stream::ClusterInfo;
use crate::api::types::*;
use crate::go::{Timestamp, null_default};

/// Most names a CONSUMER.NAMES page holds.
pub const NAMES_LIMIT: usize = 1024;
/// Most infos a CONSUMER.LIST page holds.
pub const LIST_LIMIT: usize = 256;

fn is_false(v: &bool) -> bool {
    !*v
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// A consumer sequence and the stream sequence it corresponds to, with the last activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    #[serde(rename = "consumer_seq")]
    pub consumer: u64,
    #[serde(rename = "stream_seq")]
    pub stream: u64,
    #[serde(rename = "last_active", default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
}

/// The pin of a pinned-client priority group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityGroupState {
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    /// Go's `omitempty` does not drop a zero `time.Time`, so this is always present.
    #[serde(default)]
    pub pinned_ts: Timestamp,
}

/// `ConsumerInfo`, as INFO, CREATE and LIST report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    #[serde(rename = "stream_name")]
    pub stream: String,
    pub name: String,
    pub created: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConsumerConfig>,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub push_bound: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
    /// When the info was gathered.
    #[serde(rename = "ts")]
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub priority_groups: Vec<PriorityGroupState>,
}

response!(
    /// CONSUMER.CREATE / DURABLE.CREATE response.
    ConsumerCreateResponse, CONSUMER_CREATE_RESPONSE {
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        pub info: Option<ConsumerInfo>,
    }
);

response!(
    /// CONSUMER.INFO response.
    ConsumerInfoResponse, CONSUMER_INFO_RESPONSE {
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        pub info: Option<ConsumerInfo>,
    }
);

response!(
    /// CONSUMER.DELETE response.
    ConsumerDeleteResponse, CONSUMER_DELETE_RESPONSE {
        #[serde(default, skip_serializing_if = "is_false")]
        pub success: bool,
    }
);

response!(
    /// CONSUMER.NAMES response; `consumers` is an array even when empty or on errors.
    ConsumerNamesResponse, CONSUMER_NAMES_RESPONSE {
        pub total: u64,
        pub offset: u64,
        pub limit: u64,
        #[serde(deserialize_with = "null_default")]
        pub consumers: Vec<String>,
    }
);

response!(
    /// CONSUMER.LIST response; `consumers` is an array even when empty or on errors.
    ConsumerListResponse, CONSUMER_LIST_RESPONSE {
        pub total: u64,
        pub offset: u64,
        pub limit: u64,
        #[serde(deserialize_with = "null_default")]
        pub consumers: Vec<ConsumerInfo>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
        pub missing: Vec<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
        pub offline: BTreeMap<String, String>,
    }
);

response!(
    /// CONSUMER.PAUSE response; `paused` and `pause_until` are present even on errors.
    ConsumerPauseResponse, CONSUMER_PAUSE_RESPONSE {
        pub paused: bool,
        pub pause_until: Timestamp,
        /// Nanoseconds.
        #[serde(default, skip_serializing_if = "is_zero_i64")]
        pub pause_remaining: i64,
    }
);

/// The `type` of CONSUMER.UNPIN responses.
pub const CONSUMER_UNPIN_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_unpin_response";

response!(
    /// CONSUMER.UNPIN response: nothing but the type (and an error).
    ConsumerUnpinResponse, CONSUMER_UNPIN_RESPONSE {}
);

impl ConsumerUnpinResponse {
    pub fn ok() -> Self {
        ConsumerUnpinResponse { kind: Self::TYPE.into(), error: None }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerUnpinResponse { kind: Self::TYPE.into(), error: Some(e) }
    }
}

/// CONSUMER.UNPIN request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConsumerUnpinRequest {
    #[serde(default)]
    pub group: String,
}

/// The `type` of CONSUMER.RESET responses.
pub const CONSUMER_RESET_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_reset_response";

/// CONSUMER.RESET response: the consumer's info after the reset (absent on errors) and the
/// sequence it restarts at (always present, 0 on errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerResetResponse {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<ConsumerInfo>,
    pub reset_seq: u64,
}

impl ConsumerResetResponse {
    pub fn ok(info: ConsumerInfo, reset_seq: u64) -> Self {
        ConsumerResetResponse {
            kind: CONSUMER_RESET_RESPONSE.into(),
            error: None,
            info: Some(info),
            reset_seq,
        }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerResetResponse {
            kind: CONSUMER_RESET_RESPONSE.into(),
            error: Some(e),
            info: None,
            reset_seq: 0,
        }
    }
}

/// CONSUMER.RESET request body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConsumerResetRequest {
    #[serde(default)]
    pub seq: u64,
}

impl ConsumerCreateResponse {
    pub fn ok(info: ConsumerInfo) -> Self {
        ConsumerCreateResponse { kind: Self::TYPE.into(), error: None, info: Some(info) }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerCreateResponse { kind: Self::TYPE.into(), error: Some(e), info: None }
    }
}

impl ConsumerInfoResponse {
    pub fn ok(info: ConsumerInfo) -> Self {
        ConsumerInfoResponse { kind: Self::TYPE.into(), error: None, info: Some(info) }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerInfoResponse { kind: Self::TYPE.into(), error: Some(e), info: None }
    }
}

impl ConsumerDeleteResponse {
    pub fn ok() -> Self {
        ConsumerDeleteResponse { kind: Self::TYPE.into(), error: None, success: true }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerDeleteResponse { kind: Self::TYPE.into(), error: Some(e), success: false }
    }
}

impl ConsumerNamesResponse {
    pub fn err(e: ApiError) -> Self {
        ConsumerNamesResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            total: 0,
            offset: 0,
            limit: 0,
            consumers: vec![],
        }
    }
}

impl ConsumerListResponse {
    pub fn err(e: ApiError) -> Self {
        ConsumerListResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            total: 0,
            offset: 0,
            limit: 0,
            consumers: vec![],
            missing: vec![],
            offline: BTreeMap::new(),
        }
    }
}

impl ConsumerPauseResponse {
    /// The answer for a pause until `until` (zero: unpause) given at `now`.
    pub fn ok(until: Timestamp, now: i64) -> Self {
        let until = until.to_utc();
        let paused = !until.is_zero() && now < until.unix_nanos();
        ConsumerPauseResponse {
            kind: Self::TYPE.into(),
            error: None,
            paused,
            pause_until: until,
            pause_remaining: if paused { until.unix_nanos() - now } else { 0 },
        }
    }
    pub fn err(e: ApiError) -> Self {
        ConsumerPauseResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            paused: false,
            pause_until: Timestamp::ZERO,
            pause_remaining: 0,
        }
    }
}

/// CONSUMER.NAMES and CONSUMER.LIST request body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumersRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub offset: i64,
}

/// CONSUMER.PAUSE request body (optional): no time or the zero time unpauses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerPauseRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub pause_until: Timestamp,
}

/// A CONSUMER.NAMES page from names in any order: sorted, at most [`NAMES_LIMIT`] from
/// `offset`.
pub fn names_page<'a>(
    names: impl IntoIterator<Item = &'a str>,
    request: &ConsumersRequest,
) -> ConsumerNamesResponse {
    let mut names: Vec<String> = names.into_iter().map(str::to_string).collect();
    names.sort();
    let total = names.len();
    let offset = (request.offset.max(0) as usize).min(total);
    ConsumerNamesResponse {
        kind: ConsumerNamesResponse::TYPE.into(),
        error: None,
        total: total as u64,
        offset: offset as u64,
        limit: NAMES_LIMIT as u64,
        consumers: names.into_iter().skip(offset).take(NAMES_LIMIT).collect(),
    }
}

/// A CONSUMER.LIST page from infos in any order: sorted by name, at most [`LIST_LIMIT`]
/// from `offset`.
pub fn list_page(mut infos: Vec<ConsumerInfo>, request: &ConsumersRequest) -> ConsumerListResponse {
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let total = infos.len();
    let offset = (request.offset.max(0) as usize).min(total);
    ConsumerListResponse {
        kind: ConsumerListResponse::TYPE.into(),
        error: None,
        total: total as u64,
        offset: offset as u64,
        limit: LIST_LIMIT as u64,
        consumers: infos.into_iter().skip(offset).take(LIST_LIMIT).collect(),
        missing: vec![],
        offline: BTreeMap::new(),
    }
}

/// A pull request's priority-group fields (`PriorityGroup`, embedded in the request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityGroup {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub min_pending: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub min_ack_pending: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub priority: i64,
}

/// The JSON body of `CONSUMER.MSG.NEXT` (`JSApiConsumerGetNextRequest`). Unknown fields are
/// ignored: nats-server decodes this one leniently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRequest {
    /// Nanoseconds; 0 waits forever (or, with `no_wait`, not at all).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub expires: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub batch: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_bytes: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub no_wait: bool,
    /// Nanoseconds.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "idle_heartbeat",
        skip_serializing_if = "is_zero_i64"
    )]
    pub heartbeat: i64,
    #[serde(flatten)]
    pub priority_group: PriorityGroup,
}

/// A consumer API endpoint with the names its subject carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEndpoint {
    /// CREATE (all three forms) and DURABLE.CREATE; see [`super::check::parse_create_subject`].
    Create,
    Names {
        stream: String,
    },
    List {
        stream: String,
    },
    Info {
        stream: String,
        consumer: String,
    },
    Delete {
        stream: String,
        consumer: String,
    },
    Pause {
        stream: String,
        consumer: String,
    },
    /// Pull requests: `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    Next {
        stream: String,
        consumer: String,
    },
    LeaderStepdown {
        stream: String,
        consumer: String,
    },
    Unpin {
        stream: String,
        consumer: String,
    },
    Reset {
        stream: String,
        consumer: String,
    },
}

/// Which consumer endpoint `subject` addresses, if any.
pub fn parse_endpoint(subject: &str) -> Option<ConsumerEndpoint> {
    let rest = subject.strip_prefix("$JS.API.CONSUMER.")?;
    let t: Vec<&str> = rest.split('.').collect();
    let sc = |s: &str, c: &str| (s.to_string(), c.to_string());
    use ConsumerEndpoint::*;
    Some(match t.as_slice() {
        ["CREATE", ..] | ["DURABLE", "CREATE", ..] => Create,
        ["NAMES", s] => Names { stream: s.to_string() },
        ["LIST", s] => List { stream: s.to_string() },
        ["INFO", s, c] => {
            let (stream, consumer) = sc(s, c);
            Info { stream, consumer }
        }
        ["DELETE", s, c] => {
            let (stream, consumer) = sc(s, c);
            Delete { stream, consumer }
        }
        ["PAUSE", s, c] => {
            let (stream, consumer) = sc(s, c);
            Pause { stream, consumer }
        }
        ["MSG", "NEXT", s, c] => {
            let (stream, consumer) = sc(s, c);
            Next { stream, consumer }
        }
        ["LEADER", "STEPDOWN", s, c] => {
            let (stream, consumer) = sc(s, c);
            LeaderStepdown { stream, consumer }
        }
        ["UNPIN", s, c] => {
            let (stream, consumer) = sc(s, c);
            Unpin { stream, consumer }
        }
        ["RESET", s, c] => {
            let (stream, consumer) = sc(s, c);
            Reset { stream, consumer }
        }
        _ => return None,
    })
}

/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
pub fn next_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}")
}

/// CONSUMER.INFO and CONSUMER.DELETE take no body (10038 otherwise).
pub fn check_empty_body(body: &[u8]) -> Result<(), ApiError> {
    if crate::api::stream::is_empty_request(body) {
        Ok(())
    } else {
        Err(ErrorId::NotEmptyRequest.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::to_json_string;

    #[test]
    fn error_responses_keep_fixed_fields() {
        let e = ErrorId::StreamNotFound.error();
        assert_eq!(
            to_json_string(&ConsumerNamesResponse::err(e.clone())),
            concat!(
                r#"{"type":"io.nats.jetstream.api.v1.consumer_names_response","error":{"code":404,"#,
                r#""err_code":10059,"description":"stream not found"},"total":0,"offset":0,"limit":0,"#,
                r#""consumers":[]}"#
            )
        );
        assert_eq!(
            to_json_string(&ConsumerPauseResponse::err(e)),
            concat!(
                r#"{"type":"io.nats.jetstream.api.v1.consumer_pause_response","error":{"code":404,"#,
                r#""err_code":10059,"description":"stream not found"},"paused":false,"#,
                r#""pause_until":"0001-01-01T00:00:00Z"}"#
            )
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("$JS.API.CONSUMER.CREATE.S.C.x.y"),
            Some(ConsumerEndpoint::Create)
        );
        assert_eq!(
            parse_endpoint("$JS.API.CONSUMER.MSG.NEXT.S.C"),
            Some(ConsumerEndpoint::Next { stream: "S".into(), consumer: "C".into() })
        );
        assert_eq!(parse_endpoint("$JS.API.CONSUMER.INFO.S"), None);
        assert_eq!(parse_endpoint("$JS.API.STREAM.INFO.S"), None);
        assert_eq!(next_subject("S", "C"), "$JS.API.CONSUMER.MSG.NEXT.S.C");
    }

    #[test]
    fn next_request_is_lenient() {
        let r: NextRequest =
            serde_json::from_str(r#"{"batch":5,"expires":1000,"bogus":true,"group":"g"}"#).unwrap();
        assert_eq!((r.batch, r.expires, r.priority_group.group.as_str()), (5, 1000, "g"));
    }
}
