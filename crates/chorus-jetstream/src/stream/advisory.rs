//! Stream lifecycle advisories: `$JS.EVENT.ADVISORY.STREAM.{CREATED,UPDATED,DELETED}.<stream>`
//! with nats-server's `io.nats.jetstream.advisory.v1.stream_action` JSON.

use serde::Serialize;

use crate::go::{Timestamp, to_json_vec};

/// What happened to the stream (nats-server's `ActionAdvisoryType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamAction {
    Create,
    Modify,
    Delete,
}

/// One stream action advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAdvisory {
    /// When it happened (unix nanos).
    pub time: i64,
    pub stream: String,
    pub action: StreamAction,
    /// The JetStream domain, left out of the JSON when empty.
    pub domain: String,
}

impl StreamAdvisory {
    /// The subject nats-server publishes it on.
    pub fn subject(&self) -> String {
        let what = match self.action {
            StreamAction::Create => "CREATED",
            StreamAction::Modify => "UPDATED",
            StreamAction::Delete => "DELETED",
        };
        format!("$JS.EVENT.ADVISORY.STREAM.{what}.{}", self.stream)
    }

    /// The JSON body, with `id` as the event id (nats-server uses a fresh NUID).
    pub fn to_json(&self, id: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            id: &'a str,
            timestamp: Timestamp,
            stream: &'a str,
            action: StreamAction,
            #[serde(skip_serializing_if = "str::is_empty")]
            domain: &'a str,
        }
        to_json_vec(&Body {
            kind: "io.nats.jetstream.advisory.v1.stream_action",
            id,
            timestamp: Timestamp::from_unix_nanos(self.time),
            stream: &self.stream,
            action: self.action,
            domain: &self.domain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_json_match_nats_server() {
        let a = StreamAdvisory {
            time: 1_700_000_000_123_456_789,
            stream: "ORDERS".into(),
            action: StreamAction::Modify,
            domain: String::new(),
        };
        assert_eq!(a.subject(), "$JS.EVENT.ADVISORY.STREAM.UPDATED.ORDERS");
        let v: serde_json::Value = serde_json::from_slice(&a.to_json("abc")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "io.nats.jetstream.advisory.v1.stream_action",
                "id": "abc",
                "timestamp": "2023-11-14T22:13:20.123456789Z",
                "stream": "ORDERS",
                "action": "modify"
            })
        );
        let d = StreamAdvisory { action: StreamAction::Delete, domain: "hub".into(), ..a };
        assert_eq!(d.subject(), "$JS.EVENT.ADVISORY.STREAM.DELETED.ORDERS");
        let v: serde_json::Value = serde_json::from_slice(&d.to_json("x")).unwrap();
        assert_eq!((v["action"].as_str(), v["domain"].as_str()), (Some("delete"), Some("hub")));
    }
}
