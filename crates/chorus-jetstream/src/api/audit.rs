//! The JetStream API audit advisory: `$JS.EVENT.ADVISORY.API`, nats-server's
//! `io.nats.jetstream.advisory.v1.api_audit`, one per answered API request while someone
//! listens.

use serde::Serialize;

use crate::go::{Timestamp, to_json_vec};

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAudit<'a> {
    /// When the request was answered (unix nanos).
    pub time: i64,
    /// The server's name.
    pub server: &'a str,
    /// The requester as nats-server's `ClientInfo` JSON object (taken verbatim).
    pub client: &'a str,
    /// The request subject (without a domain prefix).
    pub subject: &'a str,
    /// The request body, left out when empty.
    pub request: &'a str,
    /// The response body.
    pub response: &'a str,
    /// The JetStream domain, left out when empty.
    pub domain: &'a str,
}

impl ApiAudit<'_> {
    /// The JSON body in nats-server's field order, with `id` as the event id.
    pub fn to_json(&self, id: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Head<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            id: &'a str,
            timestamp: Timestamp,
            server: &'a str,
        }
        #[derive(Serialize)]
        struct Tail<'a> {
            subject: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            request: &'a str,
            response: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            domain: &'a str,
        }
        let head = to_json_vec(&Head {
            kind: "io.nats.jetstream.advisory.v1.api_audit",
            id,
            timestamp: Timestamp::from_unix_nanos(self.time),
            server: self.server,
        });
        let tail = to_json_vec(&Tail {
            subject: self.subject,
            request: self.request,
            response: self.response,
            domain: self.domain,
        });
        // `{head...}` + `,"client":{...},` + `tail...}`: the client object goes in as it is.
        let client = if self.client.is_empty() { "null" } else { self.client };
        let mut out = Vec::with_capacity(head.len() + client.len() + tail.len() + 12);
        out.extend_from_slice(&head[..head.len() - 1]);
        out.extend_from_slice(b",\"client\":");
        out.extend_from_slice(client.as_bytes());
        out.push(b',');
        out.extend_from_slice(&tail[1..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_nats_server_field_order_and_escaping() {
        let a = ApiAudit {
            time: 1_700_000_000_123_456_789,
            server: "n1",
            client: r#"{"acc":"A","rtt":1000,"kind":"Client"}"#,
            subject: "$JS.API.STREAM.CREATE.S",
            request: r#"{"name":"S","subjects":["a.>"]}"#,
            response: r#"{"type":"io.nats.jetstream.api.v1.stream_create_response"}"#,
            domain: "",
        };
        let text = String::from_utf8(a.to_json("ID1")).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"type":"io.nats.jetstream.advisory.v1.api_audit","id":"ID1","#,
                r#""timestamp":"2023-11-14T22:13:20.123456789Z","server":"n1","#,
                r#""client":{"acc":"A","rtt":1000,"kind":"Client"},"#,
                r#""subject":"$JS.API.STREAM.CREATE.S","#,
                r#""request":"{\"name\":\"S\",\"subjects\":[\"a.\u003e\"]}","#,
                r#""response":"{\"type\":\"io.nats.jetstream.api.v1.stream_create_response\"}"}"#
            )
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["client"]["acc"], "A");
        // Empty request left out, domain in when set.
        let b = ApiAudit { request: "", domain: "hub", ..a };
        let v: serde_json::Value = serde_json::from_slice(&b.to_json("ID2")).unwrap();
        assert!(v.get("request").is_none());
        assert_eq!(v["domain"], "hub");
    }
}
