//! Acknowledgements: the reply subject each delivery carries and the bodies clients send to
//! it (ADR-15).
//!
//! nats-server v2.15 builds the 9-token form
//! `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` by default; with the
//! `js_ack_fc_v2` feature flag it builds the 11-token form
//! `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
//! (domain `_` when none; more tokens may follow). It parses both, whatever it builds.

use crate::go::parse_duration;

/// Prefix of every ack subject.
pub const ACK_PREFIX: &str = "$JS.ACK.";
/// Prefix of flow control reply subjects.
pub const FLOW_CONTROL_PREFIX: &str = "$JS.FC.";

/// The numbers an ack reply subject carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckReplyInfo {
    /// Stream sequence of the delivered message.
    pub stream_seq: u64,
    /// Consumer (delivery) sequence.
    pub consumer_seq: u64,
    /// Delivery count (1 on the first delivery).
    pub delivered: u64,
    /// The message's stream timestamp, unix nanos.
    pub timestamp: i64,
    /// Messages still pending for the consumer after this one.
    pub pending: u64,
}

/// Which ack subject layout to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckFormat {
    /// The 9-token subject (nats-server's default).
    V1,
    /// The 11-token subject with JetStream domain (`_` for none) and account hash.
    V2 { domain: String, account_hash: String },
}

/// Builds a delivery's ack reply subject.
pub fn ack_reply(format: &AckFormat, stream: &str, consumer: &str, info: &AckReplyInfo) -> String {
    let tail = format!(
        "{}.{}.{}.{}.{}",
        info.delivered, info.stream_seq, info.consumer_seq, info.timestamp, info.pending
    );
    match format {
        AckFormat::V1 => format!("{ACK_PREFIX}{stream}.{consumer}.{tail}"),
        AckFormat::V2 { domain, account_hash } => {
            let domain = if domain.is_empty() { "_" } else { domain };
            format!("{ACK_PREFIX}{domain}.{account_hash}.{stream}.{consumer}.{tail}")
        }
    }
}

/// The subjects a consumer listens on for acks (both forms, as nats-server subscribes).
pub fn ack_subscriptions(
    stream: &str,
    consumer: &str,
    domain: &str,
    account_hash: &str,
) -> [String; 2] {
    let domain = if domain.is_empty() { "_" } else { domain };
    [
        format!("{ACK_PREFIX}{stream}.{consumer}.*.*.*.*.*"),
        format!("{ACK_PREFIX}{domain}.{account_hash}.{stream}.{consumer}.*.*.*.*.>"),
    ]
}

/// nats-server's `parseAckReplyNum`: digits only, else -1.
fn parse_num(d: &str) -> i64 {
    if d.is_empty() {
        return -1;
    }
    let mut n: i64 = 0;
    for b in d.bytes() {
        if !b.is_ascii_digit() {
            return -1;
        }
        n = n.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    n
}

/// Parsed ack subject: stream and consumer names plus the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAckSubject<'a> {
    pub stream: &'a str,
    pub consumer: &'a str,
    pub info: AckReplyInfo,
}

/// nats-server's `ackReplyInfo`: reads either form. `None` when the subject has neither 9
/// nor at least 11 tokens or does not start with `$JS.ACK`. A token that is not a number
/// reads as `u64::MAX` (Go's `uint64(-1)`), which the consumer then ignores as out of range.
pub fn parse_ack_subject(subject: &str) -> Option<ParsedAckSubject<'_>> {
    let t: Vec<&str> = subject.split('.').collect();
    if (t.len() != 9 && t.len() < 11) || t[0] != "$JS" || t[1] != "ACK" {
        return None;
    }
    let o = if t.len() >= 11 { 4 } else { 2 };
    Some(ParsedAckSubject {
        stream: t[o],
        consumer: t[o + 1],
        info: AckReplyInfo {
            delivered: parse_num(t[o + 2]) as u64,
            stream_seq: parse_num(t[o + 3]) as u64,
            consumer_seq: parse_num(t[o + 4]) as u64,
            timestamp: parse_num(t[o + 5]),
            pending: parse_num(t[o + 6]) as u64,
        },
    })
}

/// What an ack body asks for, in nats-server's order of tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK`, `+OK` or an empty body.
    Ack,
    /// `+NXT` followed by a pull request (batch count or JSON), also acknowledging.
    Next(Vec<u8>),
    /// `-NAK`, optionally with a delay (`{"delay": ns}` or a Go duration). A delay that does
    /// not parse is dropped (nats-server logs it and naks without delay).
    Nak { delay: Option<i64> },
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+TERM`, optionally with a reason: never redeliver.
    Term { reason: String },
    /// Anything else: ignored (but still answered when the ack asked for a reply).
    Unknown,
}

/// Classifies an ack body (the payload after any headers).
pub fn parse_ack_body(body: &[u8]) -> AckKind {
    if body.is_empty() || body == b"+ACK" || body == b"+OK" {
        return AckKind::Ack;
    }
    if let Some(rest) = body.strip_prefix(b"+NXT") {
        return AckKind::Next(rest.to_vec());
    }
    if let Some(rest) = body.strip_prefix(b"-NAK") {
        return AckKind::Nak { delay: parse_nak_delay(rest) };
    }
    if body == b"+WPI" {
        return AckKind::Progress;
    }
    if let Some(rest) = body.strip_prefix(b"+TERM") {
        return AckKind::Term { reason: String::from_utf8_lossy(rest.trim_ascii()).into_owned() };
    }
    AckKind::Unknown
}

fn parse_nak_delay(arg: &[u8]) -> Option<i64> {
    let arg = arg.trim_ascii();
    if arg.is_empty() {
        return None;
    }
    if arg[0] == b'{' {
        #[derive(serde::Deserialize)]
        struct NakOptions {
            #[serde(default)]
            delay: i64,
        }
        return serde_json::from_slice::<NakOptions>(arg).ok().map(|o| o.delay);
    }
    parse_duration(std::str::from_utf8(arg).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_round_trip() {
        let info = AckReplyInfo {
            stream_seq: 7,
            consumer_seq: 3,
            delivered: 2,
            timestamp: 1_700_000_000_000_000_000,
            pending: 4,
        };
        let v1 = ack_reply(&AckFormat::V1, "S", "C", &info);
        assert_eq!(v1, "$JS.ACK.S.C.2.7.3.1700000000000000000.4");
        let p = parse_ack_subject(&v1).unwrap();
        assert_eq!((p.stream, p.consumer, p.info), ("S", "C", info));
        let v2 = ack_reply(
            &AckFormat::V2 { domain: String::new(), account_hash: "H".into() },
            "S",
            "C",
            &info,
        );
        assert_eq!(v2, "$JS.ACK._.H.S.C.2.7.3.1700000000000000000.4");
        assert_eq!(parse_ack_subject(&v2).unwrap().info, info);
        // More tokens after the eleventh are allowed (room for extensions).
        assert_eq!(parse_ack_subject(&format!("{v2}.x")).unwrap().info, info);
        assert!(parse_ack_subject("$JS.ACK.S.C.1.2.3.4").is_none());
        assert!(parse_ack_subject("$JS.ACK.S.C.1.2.3.4.5.6").is_none());
        assert!(parse_ack_subject("$JS.NAK.S.C.1.2.3.4.5").is_none());
        let bad = parse_ack_subject("$JS.ACK.S.C.x.2.3.4.5").unwrap();
        assert_eq!(bad.info.delivered, u64::MAX);
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_ack_body(b""), AckKind::Ack);
        assert_eq!(parse_ack_body(b"+OK"), AckKind::Ack);
        assert_eq!(parse_ack_body(b"+ACK "), AckKind::Unknown);
        assert_eq!(parse_ack_body(b"-NAK"), AckKind::Nak { delay: None });
        assert_eq!(
            parse_ack_body(br#"-NAK {"delay": 5000000000}"#),
            AckKind::Nak { delay: Some(5_000_000_000) }
        );
        assert_eq!(parse_ack_body(b"-NAK 2s"), AckKind::Nak { delay: Some(2_000_000_000) });
        assert_eq!(parse_ack_body(b"-NAK nope"), AckKind::Nak { delay: None });
        assert_eq!(parse_ack_body(b"+WPI"), AckKind::Progress);
        assert_eq!(
            parse_ack_body(b"+TERM  bad input "),
            AckKind::Term { reason: "bad input".into() }
        );
        assert_eq!(parse_ack_body(b"+NXT 5"), AckKind::Next(b" 5".to_vec()));
    }
}
