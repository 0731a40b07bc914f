//! JetStream API errors: the `{"code", "err_code", "description"}` object and the table of
//! every error nats-server can put in it.
//!
//! The table itself ([`ErrorId`], generated from nats-server's `server/errors.json` by
//! `tools/gen_errors.py`) keeps the reference's numbers and description templates verbatim.
//! Templates name their substitutions in braces (`"wrong last sequence: {seq}"`); as in
//! nats-server, filling one in is a plain text replacement of the `{name}` marker.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use super::errors_generated::ErrorId;
use super::errors_generated::TABLE;

/// One row of the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    pub id: ErrorId,
    /// nats-server's Go constant, e.g. `"JSStreamNotFoundErr"`.
    pub constant: &'static str,
    /// HTTP-like status (400, 404, 409, 412, 429, 500, 503).
    pub code: u16,
    /// The JetStream error code clients match on, e.g. 10059.
    pub err_code: u16,
    /// The description template, with `{name}` markers for the parts filled in per error.
    pub description: &'static str,
}

impl ErrorId {
    /// The table row for this error.
    pub fn info(self) -> &'static ErrorInfo {
        &TABLE[self as usize]
    }

    pub fn code(self) -> u16 {
        self.info().code
    }

    pub fn err_code(self) -> u16 {
        self.info().err_code
    }

    /// The description template.
    pub fn template(self) -> &'static str {
        self.info().description
    }

    /// The error with its template as the description. Meant for templates without markers;
    /// for the others use [`ErrorId::with`] or [`ErrorId::with_err`].
    pub fn error(self) -> ApiError {
        let info = self.info();
        ApiError { code: info.code, err_code: info.err_code, description: info.description.into() }
    }

    /// The error with the `{err}` marker replaced by `err` (nats-server's `NewJS...Error(err)`
    /// helpers for the many `"{err}"` templates).
    pub fn with_err(self, err: impl fmt::Display) -> ApiError {
        self.with(&[("err", &err)])
    }

    /// The error with each `{name}` marker replaced by its value. Replacement is a single pass
    /// over the template, like Go's `strings.NewReplacer`, so a value containing a marker is
    /// left alone.
    pub fn with(self, args: &[(&str, &dyn fmt::Display)]) -> ApiError {
        let info = self.info();
        let values: Vec<(String, String)> =
            args.iter().map(|(k, v)| (format!("{{{k}}}"), v.to_string())).collect();
        let mut out = String::with_capacity(info.description.len() + 16);
        let mut rest = info.description;
        'scan: while !rest.is_empty() {
            for (marker, value) in &values {
                if let Some(tail) = rest.strip_prefix(marker.as_str()) {
                    out.push_str(value);
                    rest = tail;
                    continue 'scan;
                }
            }
            let mut chars = rest.chars();
            out.extend(chars.next());
            rest = chars.as_str();
        }
        ApiError { code: info.code, err_code: info.err_code, description: out }
    }

    /// The error with this `err_code`, if nats-server defines one.
    pub fn from_err_code(err_code: u16) -> Option<ErrorId> {
        TABLE.binary_search_by_key(&err_code, |e| e.err_code).ok().map(|i| TABLE[i].id)
    }

    /// All errors, ordered by `err_code`.
    pub fn all() -> impl Iterator<Item = &'static ErrorInfo> {
        TABLE.iter()
    }
}

/// The error object of every JetStream API response and error PubAck.
///
/// Serialises like nats-server's `ApiError`: `err_code` and `description` are left out when
/// zero/empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{description} ({err_code})")]
pub struct ApiError {
    pub code: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub err_code: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

impl ApiError {
    /// Which table entry this error is, by its `err_code`.
    pub fn id(&self) -> Option<ErrorId> {
        ErrorId::from_err_code(self.err_code)
    }

    /// Whether this is the given error (compares `err_code`, as nats-server's `IsNatsErr`).
    pub fn is(&self, id: ErrorId) -> bool {
        self.err_code == id.err_code()
    }
}

impl From<ErrorId> for ApiError {
    fn from(id: ErrorId) -> Self {
        id.error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_indexed_by_id() {
        let mut prev = 0;
        for (i, e) in TABLE.iter().enumerate() {
            assert_eq!(e.id as usize, i, "{}", e.constant);
            assert!(e.err_code > prev, "{} out of order", e.constant);
            prev = e.err_code;
            assert_eq!(ErrorId::from_err_code(e.err_code), Some(e.id));
        }
        assert_eq!(ErrorId::from_err_code(1), None);
        assert_eq!(ErrorId::from_err_code(9999), None);
    }

    #[test]
    fn templates_fill_in_like_nats_server() {
        let e = ErrorId::StreamWrongLastSequence.with(&[("seq", &42u64)]);
        assert_eq!(e.description, "wrong last sequence: 42");
        assert_eq!((e.code, e.err_code), (400, 10071));
        let e = ErrorId::StreamInvalidConfig.with_err("max age can not be negative");
        assert_eq!(e, ApiError { code: 500, err_code: 10052, description: e.description.clone() });
        assert_eq!(e.description, "max age can not be negative");
        let e = ErrorId::StreamExternalDelPrefixOverlaps
            .with(&[("prefix", &"dlv"), ("subject", &"foo")]);
        assert_eq!(
            e.description,
            "stream external delivery prefix dlv overlaps with stream subject foo"
        );
        // A value that itself looks like a marker is not substituted again.
        let e = ErrorId::StreamWrongLastMsgID.with(&[("id", &"{id}")]);
        assert_eq!(e.description, "wrong last msg ID: {id}");
        // Unknown markers stay as they are.
        assert_eq!(ErrorId::InvalidJSON.error().description, "invalid JSON: {err}");
    }

    #[test]
    fn serialises_like_api_error() {
        let e = ErrorId::StreamNotFound.error();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":404,"err_code":10059,"description":"stream not found"}"#
        );
        let bare = ApiError { code: 503, err_code: 0, description: String::new() };
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"code":503}"#);
        let back: ApiError = serde_json::from_str(r#"{"code":503}"#).unwrap();
        assert_eq!(back, bare);
        assert_eq!(e.to_string(), "stream not found (10059)");
        assert!(e.is(ErrorId::StreamNotFound));
        assert_eq!(e.id(), Some(ErrorId::StreamNotFound));
    }
}
