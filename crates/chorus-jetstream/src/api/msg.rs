//! Reading and deleting single messages: STREAM.MSG.GET, STREAM.MSG.DELETE and the direct
//! get API (ADR-31), whose replies are the messages themselves with `Nats-*` headers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::errors::{ApiError, ErrorId};
use super::stream::{is_empty_request, parse_request};
use super::types::{STREAM_MSG_DELETE_RESPONSE, STREAM_MSG_GET_RESPONSE};
use crate::go::{Timestamp, base64_bytes, null_default};
use crate::stream::config::StreamConfig;
use crate::stream::headers;

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// Body of STREAM.MSG.GET and DIRECT.GET (`JSApiMsgGetRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgGetRequest {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "last_by_subj",
        skip_serializing_if = "String::is_empty"
    )]
    pub last_by_subject: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "next_by_subj",
        skip_serializing_if = "String::is_empty"
    )]
    pub next_by_subject: String,
    /// Direct get only: how many messages to send.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub batch: i64,
    /// Direct get only: stop after this many bytes.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_i64")]
    pub max_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// Direct get only: the last message of each subject matching these filters.
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "multi_last",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub multi_last: Vec<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero_u64")]
    pub up_to_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_time: Option<Timestamp>,
    #[serde(
        default,
        deserialize_with = "null_default",
        rename = "no_hdr",
        skip_serializing_if = "is_false"
    )]
    pub no_headers: bool,
}

const MSG_GET_FIELDS: [&str; 10] = [
    "seq",
    "last_by_subj",
    "next_by_subj",
    "batch",
    "max_bytes",
    "start_time",
    "multi_last",
    "up_to_seq",
    "up_to_time",
    "no_hdr",
];

/// How to find the message a get asks for, once a start time is turned into a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgLookup {
    /// The message at this sequence.
    Seq(u64),
    /// The first message at or after `from` on `subject` (which may contain wildcards).
    Next { subject: String, from: u64 },
    /// The last message on `subject`.
    Last(String),
}

impl MsgGetRequest {
    /// What to load. `seq_for_time` is the store's "first sequence at or after this time",
    /// used when the request has a `start_time`.
    pub fn lookup(&self, seq_for_time: impl FnOnce(Timestamp) -> u64) -> MsgLookup {
        let seq = match self.start_time {
            Some(t) => seq_for_time(t),
            None => self.seq,
        };
        if seq > 0 && self.next_by_subject.is_empty() {
            MsgLookup::Seq(seq)
        } else if !self.next_by_subject.is_empty() {
            MsgLookup::Next { subject: self.next_by_subject.clone(), from: seq }
        } else {
            MsgLookup::Last(self.last_by_subject.clone())
        }
    }
}

/// STREAM.MSG.GET request checks: a body is required, parsed strictly (10025), batching is
/// not supported here, and `seq`/`last_by_subj`/`start_time` exclude each other (10003).
pub fn check_msg_get_request(body: &[u8]) -> Result<MsgGetRequest, ApiError> {
    if is_empty_request(body) {
        return Err(ErrorId::BadRequest.error());
    }
    let value: serde_json::Value = parse_request(body)?;
    if let Some(unknown) =
        value.as_object().and_then(|o| o.keys().find(|k| !MSG_GET_FIELDS.contains(&k.as_str())))
    {
        return Err(ErrorId::InvalidJSON.with_err(format!("json: unknown field {unknown:?}")));
    }
    let req: MsgGetRequest =
        serde_json::from_value(value).map_err(|e| ErrorId::InvalidJSON.with_err(e))?;
    if req.batch > 0 || req.max_bytes > 0 {
        return Err(ErrorId::BadRequest.error());
    }
    let (seq, last, next, start) = (
        req.seq > 0,
        !req.last_by_subject.is_empty(),
        !req.next_by_subject.is_empty(),
        req.start_time.is_some(),
    );
    let nothing = !seq && !last && !next && !start;
    let exclusive = [(seq, last), (seq, start), (start, last), (last, next)];
    if nothing || exclusive.iter().any(|(a, b)| *a && *b) {
        return Err(ErrorId::BadRequest.error());
    }
    Ok(req)
}

/// A stored message in a MSG.GET response; header and data travel as base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMsg {
    pub subject: String,
    pub seq: u64,
    #[serde(
        default,
        rename = "hdrs",
        with = "base64_bytes",
        skip_serializing_if = "Bytes::is_empty"
    )]
    pub header: Bytes,
    #[serde(default, with = "base64_bytes", skip_serializing_if = "Bytes::is_empty")]
    pub data: Bytes,
    pub time: Timestamp,
}

/// STREAM.MSG.GET response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgGetResponse {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<StoredMsg>,
}

impl MsgGetResponse {
    pub const TYPE: &'static str = STREAM_MSG_GET_RESPONSE;

    /// The message, without its header when the request said `no_hdr`.
    pub fn ok(mut message: StoredMsg, request: &MsgGetRequest) -> Self {
        if request.no_headers {
            message.header = Bytes::new();
        }
        MsgGetResponse { kind: Self::TYPE.into(), error: None, message: Some(message) }
    }

    pub fn err(e: ApiError) -> Self {
        MsgGetResponse { kind: Self::TYPE.into(), error: Some(e), message: None }
    }

    /// Nothing matched the lookup (10037).
    pub fn not_found() -> Self {
        Self::err(ErrorId::NoMessageFound.error())
    }
}

/// STREAM.MSG.DELETE body: erase (overwrite) unless `no_erase`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgDeleteRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub seq: u64,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub no_erase: bool,
}

/// STREAM.MSG.DELETE response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgDeleteResponse {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl MsgDeleteResponse {
    pub const TYPE: &'static str = STREAM_MSG_DELETE_RESPONSE;

    pub fn ok() -> Self {
        MsgDeleteResponse { kind: Self::TYPE.into(), error: None, success: true }
    }

    pub fn err(e: ApiError) -> Self {
        MsgDeleteResponse { kind: Self::TYPE.into(), error: Some(e), success: false }
    }

    /// The store said there was no such message: nats-server passes the store's error text
    /// through 10057 (`"no message found"` for a sequence that is gone).
    pub fn store_error(err: impl std::fmt::Display) -> Self {
        Self::err(ErrorId::StreamMsgDeleteFailed.with_err(err))
    }

    /// The store removed nothing without an error (10043).
    pub fn sequence_not_found(seq: u64) -> Self {
        Self::err(ErrorId::SequenceNotFound.with(&[("seq", &seq)]))
    }
}

/// STREAM.MSG.DELETE checks before touching the store: a body (10003), parsed strictly
/// (10025), an existing stream (10059), not sealed (10109), deletes allowed (10057).
pub fn check_msg_delete_request(
    body: &[u8],
    cfg: Option<&StreamConfig>,
) -> Result<MsgDeleteRequest, ApiError> {
    if is_empty_request(body) {
        return Err(ErrorId::BadRequest.error());
    }
    let req: MsgDeleteRequest = parse_request(body)?;
    let cfg = cfg.ok_or_else(|| ErrorId::StreamNotFound.error())?;
    if cfg.sealed {
        return Err(ErrorId::StreamSealed.error());
    }
    if cfg.deny_delete {
        return Err(ErrorId::StreamMsgDeleteFailed.with_err("message delete not permitted"));
    }
    Ok(req)
}

/// Direct get replies that are only a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectStatus {
    /// `412 Required Api Level`
    RequiredApiLevel,
    /// `408 Empty Request`
    EmptyRequest,
    /// `408 Malformed Request`
    MalformedRequest,
    /// `408 Bad Request`
    BadRequest,
    /// `404 Message Not Found`
    NotFound,
    /// `404 No Results` (multi-last with nothing matching)
    NoResults,
    /// `413 Too Many Results`
    TooManyResults,
    /// `204 EOB`, ending a batch: messages still pending after it, the last sequence sent,
    /// and for multi-last requests the sequence the answer is consistent up to.
    EndOfBatch { num_pending: u64, last_seq: u64, up_to_seq: Option<u64> },
}

impl DirectStatus {
    /// The reply's header block (the reply has no payload).
    pub fn header(&self) -> Vec<u8> {
        let line = match self {
            DirectStatus::RequiredApiLevel => "412 Required Api Level",
            DirectStatus::EmptyRequest => "408 Empty Request",
            DirectStatus::MalformedRequest => "408 Malformed Request",
            DirectStatus::BadRequest => "408 Bad Request",
            DirectStatus::NotFound => "404 Message Not Found",
            DirectStatus::NoResults => "404 No Results",
            DirectStatus::TooManyResults => "413 Too Many Results",
            DirectStatus::EndOfBatch { num_pending, last_seq, up_to_seq } => {
                let mut s = format!(
                    "NATS/1.0 204 EOB\r\nNats-Num-Pending: {num_pending}\r\nNats-Last-Sequence: {last_seq}\r\n"
                );
                if let Some(u) = up_to_seq {
                    s.push_str(&format!("Nats-UpTo-Sequence: {u}\r\n"));
                }
                s.push_str("\r\n");
                return s.into_bytes();
            }
        };
        format!("NATS/1.0 {line}\r\n\r\n").into_bytes()
    }
}

/// `$JS.API.DIRECT.GET.<stream>` request checks (lenient JSON, unlike the API).
pub fn check_direct_get_request(body: &[u8]) -> Result<MsgGetRequest, DirectStatus> {
    if body.is_empty() {
        return Err(DirectStatus::EmptyRequest);
    }
    let req: MsgGetRequest =
        serde_json::from_slice(body).map_err(|_| DirectStatus::MalformedRequest)?;
    let (seq, last, next, multi, start) = (
        req.seq > 0,
        !req.last_by_subject.is_empty(),
        !req.next_by_subject.is_empty(),
        !req.multi_last.is_empty(),
        req.start_time.is_some(),
    );
    if !seq && !last && !next && !multi && !start {
        return Err(DirectStatus::EmptyRequest);
    }
    let exclusive = [
        (seq, last),
        (seq, start),
        (start, last),
        (last, next),
        (last, req.batch > 0),
        (last, multi),
        (next, multi),
        (req.up_to_seq > 0, req.up_to_time.is_some()),
    ];
    if exclusive.iter().any(|(a, b)| *a && *b) {
        return Err(DirectStatus::BadRequest);
    }
    Ok(req)
}

/// `$JS.API.DIRECT.GET.<stream>.<subject...>`: the last message on the subject named in the
/// request subject. A body may only carry options that make sense for that.
pub fn check_direct_get_by_subject(
    api_subject: &str,
    body: &[u8],
) -> Result<MsgGetRequest, DirectStatus> {
    let mut req = MsgGetRequest::default();
    if !body.is_empty() {
        req = serde_json::from_slice(body).map_err(|_| DirectStatus::MalformedRequest)?;
    }
    // The key starts after the fifth token: $JS.API.DIRECT.GET.<stream>.
    let key = api_subject.splitn(6, '.').nth(5).unwrap_or("");
    if key.is_empty() {
        return Err(DirectStatus::BadRequest);
    }
    if !req.last_by_subject.is_empty()
        || !req.next_by_subject.is_empty()
        || !req.multi_last.is_empty()
        || req.seq != 0
        || req.batch != 0
        || req.start_time.is_some()
        || req.up_to_seq != 0
        || req.up_to_time.is_some()
    {
        return Err(DirectStatus::BadRequest);
    }
    req.last_by_subject = key.to_string();
    Ok(req)
}

/// Batch position for [`direct_get_header`]: messages still pending after this one and the
/// sequence of the previous message sent (0 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub num_pending: u64,
    pub last_seq: u64,
}

/// The header block of a direct get reply carrying a message: the message's own headers (if
/// any) followed by `Nats-Stream`, `Nats-Subject`, `Nats-Sequence`, `Nats-Time-Stamp`, and
/// for batch and multi-last replies `Nats-Num-Pending` and `Nats-Last-Sequence`.
pub fn direct_get_header(
    stream: &str,
    subject: &str,
    seq: u64,
    time: Timestamp,
    stored_header: &[u8],
    batch: Option<BatchPosition>,
) -> Vec<u8> {
    let mut h = stored_header.to_vec();
    let ts = time.to_utc().to_string();
    h = headers::append(&h, "Nats-Stream", stream);
    h = headers::append(&h, "Nats-Subject", subject);
    h = headers::append(&h, "Nats-Sequence", &seq.to_string());
    h = headers::append(&h, "Nats-Time-Stamp", &ts);
    if let Some(b) = batch {
        h = headers::append(&h, "Nats-Num-Pending", &b.num_pending.to_string());
        h = headers::append(&h, "Nats-Last-Sequence", &b.last_seq.to_string());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::to_json_string;

    #[test]
    fn msg_get_rules() {
        assert_eq!(check_msg_get_request(b"").unwrap_err().err_code, 10003);
        assert_eq!(
            check_msg_get_request(br#"{"seq":1,"last_by_subj":"a"}"#).unwrap_err().err_code,
            10003
        );
        assert_eq!(check_msg_get_request(br#"{"seq":1,"batch":2}"#).unwrap_err().err_code, 10003);
        assert_eq!(check_msg_get_request(br#"{"seq":1,"x":2}"#).unwrap_err().err_code, 10025);
        let r = check_msg_get_request(br#"{"seq":3,"next_by_subj":"p.a"}"#).unwrap();
        assert_eq!(r.lookup(|_| 0), MsgLookup::Next { subject: "p.a".into(), from: 3 });
        let r = check_msg_get_request(br#"{"last_by_subj":"p.new"}"#).unwrap();
        assert_eq!(r.lookup(|_| 0), MsgLookup::Last("p.new".into()));
        let r = check_msg_get_request(br#"{"start_time":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(r.lookup(|_| 7), MsgLookup::Seq(7));
    }

    #[test]
    fn msg_get_response_shape() {
        // As captured from nats-server v2.15.2 ("msg get seq").
        let m = StoredMsg {
            subject: "p.a".into(),
            seq: 2,
            header: Bytes::from_static(b"NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n"),
            data: Bytes::from_static(b"two"),
            time: Timestamp::parse("2026-11-27T08:47:37.061877968Z").unwrap(),
        };
        let req = MsgGetRequest { seq: 2, ..Default::default() };
        assert_eq!(
            to_json_string(&MsgGetResponse::ok(m.clone(), &req)),
            concat!(
                r#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"p.a","#,
                r#""seq":2,"hdrs":"TkFUUy8xLjANCk5hdHMtTXNnLUlkOiBtMQ0KDQo=","data":"dHdv","#,
                r#""time":"2026-11-27T08:47:37.061877968Z"}}"#
            )
        );
        let no_hdr = MsgGetRequest { no_headers: true, ..req };
        assert!(!to_json_string(&MsgGetResponse::ok(m, &no_hdr)).contains("hdrs"));
    }

    #[test]
    fn msg_delete_rules() {
        let cfg = StreamConfig::default();
        assert_eq!(check_msg_delete_request(b"", Some(&cfg)).unwrap_err().err_code, 10003);
        assert_eq!(check_msg_delete_request(br#"{"seq":1}"#, None).unwrap_err().err_code, 10059);
        let sealed = StreamConfig { sealed: true, ..Default::default() };
        assert_eq!(
            check_msg_delete_request(br#"{"seq":1}"#, Some(&sealed)).unwrap_err().err_code,
            10109
        );
        let deny = StreamConfig { deny_delete: true, ..Default::default() };
        let e = check_msg_delete_request(br#"{"seq":1}"#, Some(&deny)).unwrap_err();
        assert_eq!((e.err_code, e.description.as_str()), (10057, "message delete not permitted"));
        let r = check_msg_delete_request(br#"{"seq":4,"no_erase":true}"#, Some(&cfg)).unwrap();
        assert_eq!((r.seq, r.no_erase), (4, true));
        assert_eq!(
            to_json_string(&MsgDeleteResponse::store_error("no message found")),
            concat!(
                r#"{"type":"io.nats.jetstream.api.v1.stream_msg_delete_response","#,
                r#""error":{"code":500,"err_code":10057,"description":"no message found"}}"#
            )
        );
        assert_eq!(
            MsgDeleteResponse::sequence_not_found(9).error.unwrap().description,
            "sequence 9 not found"
        );
    }

    #[test]
    fn direct_get() {
        assert_eq!(check_direct_get_request(b""), Err(DirectStatus::EmptyRequest));
        assert_eq!(check_direct_get_request(b"{"), Err(DirectStatus::MalformedRequest));
        assert_eq!(check_direct_get_request(b"{}"), Err(DirectStatus::EmptyRequest));
        assert_eq!(
            check_direct_get_request(br#"{"seq":1,"last_by_subj":"a"}"#),
            Err(DirectStatus::BadRequest)
        );
        assert!(check_direct_get_request(br#"{"seq":1,"batch":3,"unknown":1}"#).is_ok());
        let r = check_direct_get_by_subject("$JS.API.DIRECT.GET.PR.pr.b", b"").unwrap();
        assert_eq!(r.last_by_subject, "pr.b");
        assert_eq!(
            check_direct_get_by_subject("$JS.API.DIRECT.GET.PR", b""),
            Err(DirectStatus::BadRequest)
        );
        assert_eq!(
            check_direct_get_by_subject("$JS.API.DIRECT.GET.PR.a", br#"{"seq":1}"#),
            Err(DirectStatus::BadRequest)
        );
        assert_eq!(DirectStatus::NotFound.header(), b"NATS/1.0 404 Message Not Found\r\n\r\n");
        assert_eq!(
            DirectStatus::EndOfBatch { num_pending: 0, last_seq: 8, up_to_seq: Some(8) }.header(),
            b"NATS/1.0 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 8\r\nNats-UpTo-Sequence: 8\r\n\r\n"
        );
        let t = Timestamp::parse("2026-11-27T08:47:37.074294806Z").unwrap();
        assert_eq!(
            direct_get_header("PR", "pr.b", 2, t, b"NATS/1.0\r\nFoo: bar\r\n\r\n", None),
            b"NATS/1.0\r\nFoo: bar\r\nNats-Stream: PR\r\nNats-Subject: pr.b\r\nNats-Sequence: 2\r\nNats-Time-Stamp: 2026-11-27T08:47:37.074294806Z\r\n\r\n"
        );
        assert_eq!(
            direct_get_header("PR", "pr.a", 1, t, b"", Some(BatchPosition { num_pending: 6, last_seq: 0 })),
            b"NATS/1.0\r\nNats-Stream: PR\r\nNats-Subject: pr.a\r\nNats-Sequence: 1\r\nNats-Time-Stamp: 2026-11-27T08:47:37.074294806Z\r\nNats-Num-Pending: 6\r\nNats-Last-Sequence: 0\r\n\r\n"
        );
    }
}
