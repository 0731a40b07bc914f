//! Stream management requests and responses: create, update, info, delete, names, list,
//! purge, with nats-server's JSON shapes (field order, omissions, `null`s).

use std::collections::BTreeMap;

use chorus_proto::subject::subjects_overlap;
use serde::{Deserialize, Serialize};

use super::errors::{ApiError, ErrorId};
use super::types::*;
use crate::go::{Timestamp, null_default};
use crate::stream::config::{ExternalStream, StreamConfig, StreamSource, SubjectTransform};

/// Most names a STREAM.NAMES page holds.
pub const NAMES_LIMIT: usize = 1024;
/// Most infos a STREAM.LIST page holds.
pub const LIST_LIMIT: usize = 256;
/// Most subjects a STREAM.INFO with `subjects_filter` reports at once.
pub const MAX_SUBJECT_DETAILS: usize = 100_000;

/// A stream's state (`StreamState`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    #[serde(rename = "first_ts")]
    pub first_time: Timestamp,
    pub last_seq: u64,
    #[serde(rename = "last_ts")]
    pub last_time: Timestamp,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_subjects: u64,
    /// Per-subject counts, only when asked for with `subjects_filter`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub subjects: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_deleted: u64,
    /// Deleted sequences, only when asked for with `deleted_details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub deleted: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
    #[serde(rename = "consumer_count")]
    pub consumers: u64,
}

impl StreamState {
    /// The state of a stream just created from `cfg`: empty, and positioned before
    /// `first_seq` when the config sets one.
    pub fn empty(cfg: &StreamConfig) -> StreamState {
        let first_seq = cfg.first_seq;
        StreamState { first_seq, last_seq: first_seq.saturating_sub(1), ..Default::default() }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Messages a store lost (e.g. to corruption).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostStreamData {
    #[serde(deserialize_with = "null_default")]
    pub msgs: Vec<u64>,
    pub bytes: u64,
}

/// Who serves the stream. A single server reports `{"leader":"<server name>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raft_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<Timestamp>,
    #[serde(default, rename = "system_account", skip_serializing_if = "is_false")]
    pub system_account: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traffic_account: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub replicas: Vec<PeerInfo>,
    /// Reconfiguration in progress (clustered only); kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<serde_json::Value>,
}

/// A replica of a clustered stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub name: String,
    pub current: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since last seen.
    pub active: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lag: u64,
    pub peer: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pending: bool,
}

/// State of a mirror or source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSourceInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    pub lag: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Nanoseconds since last activity (-1 when never active).
    pub active: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub subject_transforms: Vec<SubjectTransform>,
}

impl StreamSourceInfo {
    /// The info of a mirror or source that has not delivered anything yet (`active` -1).
    pub fn inactive(src: &StreamSource) -> StreamSourceInfo {
        StreamSourceInfo {
            name: src.name.clone(),
            external: src.external.clone(),
            lag: 0,
            seq: 0,
            active: -1,
            error: None,
            filter_subject: src.filter_subject.clone(),
            subject_transforms: src.subject_transforms.clone(),
        }
    }
}

/// Where else the stream (or a mirror of it) lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAlternate {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub cluster: String,
}

/// `StreamInfo`: config, creation time, state, and placement details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub config: StreamConfig,
    pub created: Timestamp,
    pub state: StreamState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub sources: Vec<StreamSourceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub alternates: Vec<StreamAlternate>,
    /// When the info was gathered.
    #[serde(rename = "ts")]
    pub timestamp: Timestamp,
}

/// STREAM.INFO request body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInfoRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub offset: i64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub deleted_details: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub subjects_filter: String,
}

/// STREAM.NAMES and STREAM.LIST request body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamListRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub offset: i64,
    /// Only streams whose subjects overlap this one.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub subject: String,
}

/// STREAM.PURGE request body (optional): purge up to (not including) `seq`, or keep the
/// newest `keep`, optionally only on `filter`. `seq` and `keep` exclude each other (10003).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPurgeRequest {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub filter: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub keep: u64,
}

response!(
    /// STREAM.CREATE response. `did_create` is true for every success, including an
    /// identical stream that already existed.
    StreamCreateResponse, STREAM_CREATE_RESPONSE {
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        pub info: Option<StreamInfo>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub did_create: bool,
    }
);

response!(
    /// STREAM.UPDATE response.
    StreamUpdateResponse, STREAM_UPDATE_RESPONSE {
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        pub info: Option<StreamInfo>,
    }
);

response!(
    /// STREAM.INFO response: the paging fields come first and are present even on errors;
    /// they describe the subject details (all zero without `subjects_filter`).
    StreamInfoResponse, STREAM_INFO_RESPONSE {
        pub total: u64,
        pub offset: u64,
        pub limit: u64,
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        pub info: Option<StreamInfo>,
    }
);

response!(
    /// STREAM.DELETE response.
    StreamDeleteResponse, STREAM_DELETE_RESPONSE {
        #[serde(default, skip_serializing_if = "is_false")]
        pub success: bool,
    }
);

response!(
    /// STREAM.NAMES response; `streams` is `null` when there are none.
    StreamNamesResponse, STREAM_NAMES_RESPONSE {
        pub total: u64,
        pub offset: u64,
        pub limit: u64,
        pub streams: Option<Vec<String>>,
    }
);

response!(
    /// STREAM.LIST response; `streams` is `null` when there are none.
    StreamListResponse, STREAM_LIST_RESPONSE {
        pub total: u64,
        pub offset: u64,
        pub limit: u64,
        pub streams: Option<Vec<StreamInfo>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
        pub missing: Vec<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
        pub offline: BTreeMap<String, String>,
    }
);

response!(
    /// STREAM.PURGE response; `purged` is present even on errors.
    StreamPurgeResponse, STREAM_PURGE_RESPONSE {
        #[serde(default, skip_serializing_if = "is_false")]
        pub success: bool,
        pub purged: u64,
    }
);

impl StreamCreateResponse {
    pub fn ok(info: StreamInfo) -> Self {
        StreamCreateResponse {
            kind: Self::TYPE.into(),
            error: None,
            info: Some(info),
            did_create: true,
        }
    }
    pub fn err(e: ApiError) -> Self {
        StreamCreateResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            info: None,
            did_create: false,
        }
    }
}

impl StreamUpdateResponse {
    pub fn ok(info: StreamInfo) -> Self {
        StreamUpdateResponse { kind: Self::TYPE.into(), error: None, info: Some(info) }
    }
    pub fn err(e: ApiError) -> Self {
        StreamUpdateResponse { kind: Self::TYPE.into(), error: Some(e), info: None }
    }
}

impl StreamInfoResponse {
    /// A response without subject details (paging all zero).
    pub fn ok(info: StreamInfo) -> Self {
        StreamInfoResponse {
            kind: Self::TYPE.into(),
            error: None,
            total: 0,
            offset: 0,
            limit: 0,
            info: Some(info),
        }
    }
    pub fn err(e: ApiError) -> Self {
        StreamInfoResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            total: 0,
            offset: 0,
            limit: 0,
            info: None,
        }
    }

    /// A response with the subject counts matching the request's `subjects_filter`, paged as
    /// nats-server pages them: all of them when they fit from offset 0, else a sorted window
    /// of at most [`MAX_SUBJECT_DETAILS`] from `offset`.
    pub fn with_subjects(mut info: StreamInfo, counts: BTreeMap<String, u64>, offset: i64) -> Self {
        let total = counts.len();
        let mut resp = StreamInfoResponse::ok(StreamInfo::default());
        if total > 0 {
            let offset = (offset.max(0) as usize).min(total);
            resp.offset = offset as u64;
            resp.limit = MAX_SUBJECT_DETAILS as u64;
            resp.total = total as u64;
            let window: BTreeMap<String, u64> = if offset == 0 && total <= MAX_SUBJECT_DETAILS {
                counts
            } else {
                counts.into_iter().skip(offset).take(MAX_SUBJECT_DETAILS).collect()
            };
            info.state.subjects = window;
        }
        resp.info = Some(info);
        resp
    }
}

impl StreamDeleteResponse {
    pub fn ok() -> Self {
        StreamDeleteResponse { kind: Self::TYPE.into(), error: None, success: true }
    }
    pub fn err(e: ApiError) -> Self {
        StreamDeleteResponse { kind: Self::TYPE.into(), error: Some(e), success: false }
    }
}

impl StreamNamesResponse {
    pub fn err(e: ApiError) -> Self {
        StreamNamesResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            total: 0,
            offset: 0,
            limit: 0,
            streams: None,
        }
    }
}

impl StreamListResponse {
    pub fn err(e: ApiError) -> Self {
        StreamListResponse {
            kind: Self::TYPE.into(),
            error: Some(e),
            total: 0,
            offset: 0,
            limit: 0,
            streams: None,
            missing: vec![],
            offline: BTreeMap::new(),
        }
    }
}

impl StreamPurgeResponse {
    pub fn ok(purged: u64) -> Self {
        StreamPurgeResponse { kind: Self::TYPE.into(), error: None, success: true, purged }
    }
    pub fn err(e: ApiError) -> Self {
        StreamPurgeResponse { kind: Self::TYPE.into(), error: Some(e), success: false, purged: 0 }
    }
}

/// Whether any of a stream's subjects overlaps the request's `subject` filter (STREAM.NAMES
/// and STREAM.LIST).
pub fn stream_matches_filter(cfg: &StreamConfig, filter: &str) -> bool {
    filter.is_empty()
        || cfg.subjects.iter().any(|s| subjects_overlap(filter.as_bytes(), s.as_bytes()))
}

/// A STREAM.NAMES page: names sorted, the filter applied, at most [`NAMES_LIMIT`] from
/// `offset`.
pub fn names_page<'a>(
    configs: impl IntoIterator<Item = &'a StreamConfig>,
    request: &StreamListRequest,
) -> StreamNamesResponse {
    let mut names: Vec<String> = configs
        .into_iter()
        .filter(|c| stream_matches_filter(c, &request.subject))
        .map(|c| c.name.clone())
        .collect();
    names.sort();
    let total = names.len();
    let offset = (request.offset.max(0) as usize).min(total);
    let page: Vec<String> = names.into_iter().skip(offset).take(NAMES_LIMIT).collect();
    StreamNamesResponse {
        kind: StreamNamesResponse::TYPE.into(),
        error: None,
        total: total as u64,
        offset: offset as u64,
        limit: NAMES_LIMIT as u64,
        streams: if page.is_empty() { None } else { Some(page) },
    }
}

/// A STREAM.LIST page from infos in any order: sorted by name, filtered, at most
/// [`LIST_LIMIT`] from `offset`.
pub fn list_page(mut infos: Vec<StreamInfo>, request: &StreamListRequest) -> StreamListResponse {
    infos.retain(|i| stream_matches_filter(&i.config, &request.subject));
    infos.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let total = infos.len();
    let offset = (request.offset.max(0) as usize).min(total);
    let page: Vec<StreamInfo> = infos.into_iter().skip(offset).take(LIST_LIMIT).collect();
    StreamListResponse {
        kind: StreamListResponse::TYPE.into(),
        error: None,
        total: total as u64,
        offset: offset as u64,
        limit: LIST_LIMIT as u64,
        streams: if page.is_empty() { None } else { Some(page) },
        missing: vec![],
        offline: BTreeMap::new(),
    }
}

/// nats-server's `isJSONObjectOrArray`: whether an optional request body is there to parse.
pub fn is_json_object_or_array(body: &[u8]) -> bool {
    body.iter()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|c| *c == b'{' || *c == b'[')
}

/// nats-server's `isEmptyRequest`: nothing, `{}`, or a JSON object without members.
pub fn is_empty_request(body: &[u8]) -> bool {
    if body.is_empty() || body == b"{}" {
        return true;
    }
    matches!(serde_json::from_slice::<serde_json::Value>(body), Ok(serde_json::Value::Object(m)) if m.is_empty())
}

/// Parses a request body strictly, as nats-server does by default; failures are 10025 with
/// serde's message (the reference's text is Go's, which we do not reproduce).
pub fn parse_request<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ErrorId::InvalidJSON.with_err(e))
}

/// An optional body (INFO, NAMES, LIST, PURGE): parsed only when it is a JSON object or
/// array, otherwise the defaults.
pub fn parse_optional_request<'a, T: Deserialize<'a> + Default>(
    body: &'a [u8],
) -> Result<T, ApiError> {
    if is_json_object_or_array(body) { parse_request(body) } else { Ok(T::default()) }
}

/// STREAM.DELETE takes no body (10038 otherwise).
pub fn check_delete_request(body: &[u8]) -> Result<(), ApiError> {
    if is_empty_request(body) { Ok(()) } else { Err(ErrorId::NotEmptyRequest.error()) }
}

/// STREAM.PURGE: the optional body, and the rules about the stream that come before purging
/// (`seq` with `keep` is 10003; sealed 10109; `deny_purge` 10110).
pub fn check_purge_request(
    body: &[u8],
    cfg: Option<&StreamConfig>,
) -> Result<StreamPurgeRequest, ApiError> {
    let req: StreamPurgeRequest = parse_optional_request(body)?;
    if req.seq > 0 && req.keep > 0 {
        return Err(ErrorId::BadRequest.error());
    }
    let cfg = cfg.ok_or_else(|| ErrorId::StreamNotFound.error())?;
    if cfg.sealed {
        return Err(ErrorId::StreamSealed.error());
    }
    if cfg.deny_purge {
        return Err(ErrorId::StreamPurgeFailed.with_err("stream purge not permitted"));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::to_json_string;

    #[test]
    fn empty_state_serialises_like_the_reference() {
        let s = StreamState::default();
        assert_eq!(
            to_json_string(&s),
            concat!(
                r#"{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","#,
                r#""last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0}"#
            )
        );
    }

    #[test]
    fn error_responses_keep_their_fixed_fields() {
        let e = || ErrorId::StreamNotFound.error();
        let not_found = r#""error":{"code":404,"err_code":10059,"description":"stream not found"}"#;
        assert_eq!(
            to_json_string(&StreamInfoResponse::err(e())),
            format!(
                r#"{{"type":"{STREAM_INFO_RESPONSE}",{not_found},"total":0,"offset":0,"limit":0}}"#
            )
        );
        assert_eq!(
            to_json_string(&StreamPurgeResponse::err(ErrorId::BadRequest.error())),
            format!(
                r#"{{"type":"{STREAM_PURGE_RESPONSE}","error":{{"code":400,"err_code":10003,"description":"bad request"}},"purged":0}}"#
            )
        );
        assert_eq!(
            to_json_string(&StreamNamesResponse::err(e())),
            format!(
                r#"{{"type":"{STREAM_NAMES_RESPONSE}",{not_found},"total":0,"offset":0,"limit":0,"streams":null}}"#
            )
        );
        assert_eq!(
            to_json_string(&StreamDeleteResponse::ok()),
            format!(r#"{{"type":"{STREAM_DELETE_RESPONSE}","success":true}}"#)
        );
    }

    #[test]
    fn names_paging() {
        let cfgs: Vec<StreamConfig> = ["B", "A", "C"]
            .iter()
            .map(|n| StreamConfig {
                name: n.to_string(),
                subjects: vec![format!("{n}.>")],
                ..Default::default()
            })
            .collect();
        let all = names_page(&cfgs, &StreamListRequest::default());
        assert_eq!(all.streams.as_deref(), Some(&["A".to_string(), "B".into(), "C".into()][..]));
        assert_eq!((all.total, all.offset, all.limit), (3, 0, 1024));
        let off = names_page(&cfgs, &StreamListRequest { offset: 2, subject: String::new() });
        assert_eq!(off.streams.as_deref(), Some(&["C".to_string()][..]));
        let past = names_page(&cfgs, &StreamListRequest { offset: 9, subject: String::new() });
        assert_eq!((past.offset, past.streams), (3, None));
        let filtered = names_page(&cfgs, &StreamListRequest { offset: 0, subject: "B.x".into() });
        assert_eq!(filtered.streams.as_deref(), Some(&["B".to_string()][..]));
        assert_eq!(filtered.total, 1);
    }

    #[test]
    fn request_bodies() {
        assert!(is_empty_request(b"") && is_empty_request(b"{}") && is_empty_request(b" { } "));
        assert!(!is_empty_request(br#"{"x":1}"#) && !is_empty_request(b"[]"));
        assert_eq!(check_delete_request(br#"{"x":1}"#).unwrap_err().err_code, 10038);
        assert!(is_json_object_or_array(b" \n{") && !is_json_object_or_array(b"null"));
        let cfg = StreamConfig::default();
        assert_eq!(
            check_purge_request(br#"{"seq":3,"keep":1}"#, Some(&cfg)).unwrap_err().err_code,
            10003
        );
        let r = check_purge_request(br#"{"filter":"p.a","keep":1}"#, Some(&cfg)).unwrap();
        assert_eq!((r.filter.as_str(), r.keep), ("p.a", 1));
        let deny = StreamConfig { deny_purge: true, ..Default::default() };
        let e = check_purge_request(b"", Some(&deny)).unwrap_err();
        assert_eq!((e.err_code, e.description.as_str()), (10110, "stream purge not permitted"));
        assert_eq!(check_purge_request(b"", None).unwrap_err().err_code, 10059);
        assert_eq!(
            parse_request::<StreamPurgeRequest>(br#"{"bogus":1}"#).unwrap_err().err_code,
            10025
        );
    }
}
