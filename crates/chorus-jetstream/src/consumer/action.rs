//! What the consumer state machine asks the runtime to do: deliver, answer with a status,
//! reply to an ack, publish an advisory, let the stream drop an acknowledged message, delete
//! the consumer.

use bytes::Bytes;
use serde::Serialize;

use crate::go::{Timestamp, to_json_vec};

/// One decision of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a stored message to a subscriber (push) or a pull request's inbox.
    Deliver(Delivery),
    /// A header-only status message (`NATS/1.0 <code> <description>`).
    Status(StatusMsg),
    /// An empty message to the reply subject of an ack that asked for confirmation.
    AckReply { to: String },
    /// An advisory or metric for `$JS.EVENT.>`; nats-server publishes it only when someone
    /// listens on its subject.
    Advisory(Advisory),
    /// Interest and workqueue retention: this consumer no longer needs stream sequence
    /// `seq`; the stream removes it once no other consumer does.
    AckedForRetention { seq: u64 },
    /// The consumer hit its inactivity threshold: delete it (with the delete advisory).
    Delete,
}

/// A message going out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The deliver subject or the pull request's reply inbox.
    pub to: String,
    /// The message's original subject.
    pub subject: String,
    /// The ack reply subject.
    pub reply: String,
    pub header: Option<Bytes>,
    pub payload: Bytes,
    pub stream_seq: u64,
    pub consumer_seq: u64,
    /// 1 on the first delivery.
    pub delivery_count: u64,
    /// The message's stream timestamp, unix nanos.
    pub timestamp: i64,
    /// Send no earlier than this (unix nanos): rate limits and original-speed replay.
    pub not_before: i64,
}

/// A status message (empty payload, status line and headers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMsg {
    pub to: String,
    /// Flow control requests carry the subject to answer on.
    pub reply: Option<String>,
    pub code: u16,
    pub description: String,
    pub headers: Vec<(String, String)>,
}

impl StatusMsg {
    pub(crate) fn new(to: &str, code: u16, description: impl Into<String>) -> StatusMsg {
        StatusMsg {
            to: to.to_string(),
            reply: None,
            code,
            description: description.into(),
            headers: vec![],
        }
    }

    pub(crate) fn with_pending(mut self, msgs: i64, bytes: i64) -> StatusMsg {
        self.headers.push((PENDING_MESSAGES.into(), msgs.to_string()));
        self.headers.push((PENDING_BYTES.into(), bytes.to_string()));
        self
    }

    /// The header block as nats-server writes it.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = format!("NATS/1.0 {} {}\r\n", self.code, self.description);
        for (k, v) in &self.headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sent with 408/409 pull statuses: batch messages still owed.
pub const PENDING_MESSAGES: &str = "Nats-Pending-Messages";
/// Sent with 408/409 pull statuses: bytes still owed.
pub const PENDING_BYTES: &str = "Nats-Pending-Bytes";
/// Idle heartbeats: the last consumer sequence delivered.
pub const LAST_CONSUMER: &str = "Nats-Last-Consumer";
/// Idle heartbeats: the last stream sequence delivered.
pub const LAST_STREAM: &str = "Nats-Last-Stream";
/// Idle heartbeats while flow control is outstanding: the flow control subject.
pub const CONSUMER_STALLED: &str = "Nats-Consumer-Stalled";
/// Headers-only deliveries: the size of the dropped payload.
pub const MSG_SIZE: &str = "Nats-Msg-Size";
/// Pinned-client deliveries: the pin id.
pub const PIN_ID: &str = "Nats-Pin-Id";

/// Advisory and metric events about a consumer, with nats-server's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    /// When it happened (unix nanos).
    pub time: i64,
    pub stream: String,
    pub consumer: String,
    /// The JetStream domain, left out of the JSON when empty.
    pub domain: String,
    pub kind: AdvisoryKind,
}

/// The event-specific part of an [`Advisory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvisoryKind {
    /// `io.nats.jetstream.advisory.v1.max_deliver`.
    MaxDeliveries { stream_seq: u64, deliveries: u64 },
    /// `io.nats.jetstream.advisory.v1.nak`.
    Nak { consumer_seq: u64, stream_seq: u64, deliveries: u64 },
    /// `io.nats.jetstream.advisory.v1.terminated`.
    Terminated { consumer_seq: u64, stream_seq: u64, deliveries: u64, reason: String },
    /// `io.nats.jetstream.metric.v1.consumer_ack` (sampled acks).
    AckMetric { consumer_seq: u64, stream_seq: u64, ack_time: i64, deliveries: u64 },
    /// `io.nats.jetstream.advisory.v1.consumer_pause`.
    Pause { paused: bool, pause_until: Timestamp },
    /// `io.nats.jetstream.advisory.v1.consumer_action` (created / deleted).
    Action { action: &'static str },
    /// `io.nats.jetstream.advisory.v1.consumer_group_pinned`.
    Pinned { account: String, group: String, pinned_id: String },
    /// `io.nats.jetstream.advisory.v1.consumer_group_unpinned`.
    Unpinned { account: String, group: String, reason: String },
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

impl Advisory {
    /// The subject nats-server publishes it on.
    pub fn subject(&self) -> String {
        let pre = match &self.kind {
            AdvisoryKind::MaxDeliveries { .. } => "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES",
            AdvisoryKind::Nak { .. } => "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED",
            AdvisoryKind::Terminated { .. } => "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED",
            AdvisoryKind::AckMetric { .. } => "$JS.EVENT.METRIC.CONSUMER.ACK",
            AdvisoryKind::Pause { .. } => "$JS.EVENT.ADVISORY.CONSUMER.PAUSE",
            AdvisoryKind::Action { action } if *action == "delete" => {
                "$JS.EVENT.ADVISORY.CONSUMER.DELETED"
            }
            AdvisoryKind::Action { .. } => "$JS.EVENT.ADVISORY.CONSUMER.CREATED",
            AdvisoryKind::Pinned { .. } => "$JS.EVENT.ADVISORY.CONSUMER.PINNED",
            AdvisoryKind::Unpinned { .. } => "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED",
        };
        format!("{pre}.{}.{}", self.stream, self.consumer)
    }

    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            AdvisoryKind::MaxDeliveries { .. } => "io.nats.jetstream.advisory.v1.max_deliver",
            AdvisoryKind::Nak { .. } => "io.nats.jetstream.advisory.v1.nak",
            AdvisoryKind::Terminated { .. } => "io.nats.jetstream.advisory.v1.terminated",
            AdvisoryKind::AckMetric { .. } => "io.nats.jetstream.metric.v1.consumer_ack",
            AdvisoryKind::Pause { .. } => "io.nats.jetstream.advisory.v1.consumer_pause",
            AdvisoryKind::Action { .. } => "io.nats.jetstream.advisory.v1.consumer_action",
            AdvisoryKind::Pinned { .. } => "io.nats.jetstream.advisory.v1.consumer_group_pinned",
            AdvisoryKind::Unpinned { .. } => {
                "io.nats.jetstream.advisory.v1.consumer_group_unpinned"
            }
        }
    }

    /// The JSON body, with `id` as the event id (nats-server uses a fresh NUID).
    pub fn to_json(&self, id: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Head<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: &'a str,
            timestamp: Timestamp,
        }
        #[derive(Serialize)]
        struct Full<'a, T: Serialize> {
            #[serde(flatten)]
            head: Head<'a>,
            #[serde(flatten)]
            body: T,
            #[serde(skip_serializing_if = "is_empty")]
            domain: &'a str,
        }
        let head =
            Head { kind: self.type_name(), id, timestamp: Timestamp::from_unix_nanos(self.time) };
        let (s, c, d) = (self.stream.as_str(), self.consumer.as_str(), self.domain.as_str());
        macro_rules! emit {
            ($body:expr) => {
                to_json_vec(&Full { head, body: $body, domain: d })
            };
        }
        match &self.kind {
            AdvisoryKind::MaxDeliveries { stream_seq, deliveries } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    stream_seq: u64,
                    deliveries: u64,
                }
                emit!(B {
                    stream: s,
                    consumer: c,
                    stream_seq: *stream_seq,
                    deliveries: *deliveries
                })
            }
            AdvisoryKind::Nak { consumer_seq, stream_seq, deliveries } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    consumer_seq: u64,
                    stream_seq: u64,
                    deliveries: u64,
                }
                emit!(B {
                    stream: s,
                    consumer: c,
                    consumer_seq: *consumer_seq,
                    stream_seq: *stream_seq,
                    deliveries: *deliveries
                })
            }
            AdvisoryKind::Terminated { consumer_seq, stream_seq, deliveries, reason } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    consumer_seq: u64,
                    stream_seq: u64,
                    deliveries: u64,
                    #[serde(skip_serializing_if = "is_empty")]
                    reason: &'a str,
                }
                emit!(B {
                    stream: s,
                    consumer: c,
                    consumer_seq: *consumer_seq,
                    stream_seq: *stream_seq,
                    deliveries: *deliveries,
                    reason
                })
            }
            AdvisoryKind::AckMetric { consumer_seq, stream_seq, ack_time, deliveries } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    consumer_seq: u64,
                    stream_seq: u64,
                    ack_time: i64,
                    deliveries: u64,
                }
                emit!(B {
                    stream: s,
                    consumer: c,
                    consumer_seq: *consumer_seq,
                    stream_seq: *stream_seq,
                    ack_time: *ack_time,
                    deliveries: *deliveries
                })
            }
            AdvisoryKind::Pause { paused, pause_until } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    paused: bool,
                    pause_until: Timestamp,
                }
                emit!(B { stream: s, consumer: c, paused: *paused, pause_until: *pause_until })
            }
            AdvisoryKind::Action { action } => {
                #[derive(Serialize)]
                struct B<'a> {
                    stream: &'a str,
                    consumer: &'a str,
                    action: &'a str,
                }
                emit!(B { stream: s, consumer: c, action })
            }
            AdvisoryKind::Pinned { account, group, pinned_id } => {
                #[derive(Serialize)]
                struct B<'a> {
                    #[serde(skip_serializing_if = "is_empty")]
                    account: &'a str,
                    stream: &'a str,
                    consumer: &'a str,
                    #[serde(skip_serializing_if = "is_empty")]
                    domain: &'a str,
                    group: &'a str,
                    pinned_id: &'a str,
                }
                // The domain sits in the middle of this one, so it is written here.
                to_json_vec(&Full {
                    head,
                    body: B { account, stream: s, consumer: c, domain: d, pinned_id, group },
                    domain: "",
                })
            }
            AdvisoryKind::Unpinned { account, group, reason } => {
                #[derive(Serialize)]
                struct B<'a> {
                    #[serde(skip_serializing_if = "is_empty")]
                    account: &'a str,
                    stream: &'a str,
                    consumer: &'a str,
                    #[serde(skip_serializing_if = "is_empty")]
                    domain: &'a str,
                    group: &'a str,
                    reason: &'a str,
                }
                to_json_vec(&Full {
                    head,
                    body: B { account, stream: s, consumer: c, domain: d, group, reason },
                    domain: "",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_headers() {
        let s = StatusMsg::new("_INBOX.1", 408, "Request Timeout").with_pending(3, 0);
        assert_eq!(
            s.header_bytes(),
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
        );
        assert_eq!(s.header(PENDING_MESSAGES), Some("3"));
        assert_eq!(
            StatusMsg::new("x", 404, "No Messages").header_bytes(),
            b"NATS/1.0 404 No Messages\r\n\r\n"
        );
    }

    #[test]
    fn max_deliver_advisory_json() {
        let a = Advisory {
            time: 1_000_000_000,
            stream: "USER_EVENTS".into(),
            consumer: "AGENT_POOL".into(),
            domain: String::new(),
            kind: AdvisoryKind::MaxDeliveries { stream_seq: 2, deliveries: 3 },
        };
        assert_eq!(
            a.subject(),
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.USER_EVENTS.AGENT_POOL"
        );
        assert_eq!(
            String::from_utf8(a.to_json("ID")).unwrap(),
            concat!(
                r#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"ID","#,
                r#""timestamp":"1970-01-01T00:00:01Z","stream":"USER_EVENTS","consumer":"AGENT_POOL","#,
                r#""stream_seq":2,"deliveries":3}"#
            )
        );
    }
}
