//! Resumable decoder of the operations a client sends.
//!
//! The decoder mirrors the observable behaviour of nats-server's byte-at-a-time parser
//! (`server/parser.go`) while working a line at a time:
//! - operation names are case-insensitive and are checked as soon as their first bytes arrive,
//!   so garbage is rejected without waiting for a newline;
//! - `PING`, `PONG` and `+OK` ignore anything up to the end of their line, as nats-server does;
//! - a payload is taken by its declared size and must be followed by `\r\n`;
//! - a control line (or an unterminated one) longer than `max_control_line` is an error, so a
//!   client cannot make us buffer without bound.
//!
//! Nothing is copied: every field of a [`ClientOp`] is a `Bytes` view of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

/// One operation received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT {json}`; the JSON is left to the caller.
    Connect(Bytes),
    /// `PUB <subject> [reply] <size>`.
    Pub {
        subject: Bytes,
        reply: Option<Bytes>,
        payload: Bytes,
    },
    /// `HPUB <subject> [reply] <header size> <total size>`; `headers` is the `NATS/1.0` block.
    HPub {
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Bytes,
        payload: Bytes,
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    },
    /// `UNSUB <sid> [max]`. A `max` that is not a positive number unsubscribes at once, as in
    /// nats-server, so it is reported as `Some(0)`.
    Unsub {
        sid: Bytes,
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `INFO {json}` (clients may send it; the server ignores it).
    Info(Bytes),
    /// `+OK`.
    Ok,
    /// `-ERR <text>`: nats-server closes a client connection that sends one.
    Err(Bytes),
}

/// A protocol violation. Every variant ends the connection, as in nats-server; only some are
/// announced to the client with `-ERR` first (see [`ProtoError::client_message`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("Unknown Protocol Operation")]
    UnknownOp,
    #[error("maximum control line exceeded")]
    MaxControlLine,
    #[error("maximum payload exceeded: {size} vs {max}")]
    MaxPayload { size: usize, max: usize },
    /// Malformed arguments (wrong count, bad size). nats-server logs these and closes the
    /// connection without an `-ERR`.
    #[error("{op} Parse Error: {reason}")]
    BadArgs { op: &'static str, reason: &'static str },
}

impl ProtoError {
    /// The text nats-server sends in `-ERR '<text>'` before closing, if it sends one.
    pub fn client_message(&self) -> Option<&'static str> {
        match self {
            ProtoError::UnknownOp => Some("Unknown Protocol Operation"),
            ProtoError::MaxControlLine => Some("maximum control line exceeded"),
            ProtoError::MaxPayload { .. } => Some("Maximum Payload Violation"),
            ProtoError::BadArgs { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Pub,
    HPub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

/// What must follow an operation name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// At least one space or tab (`PUB foo 1`).
    Space,
    /// Anything up to the newline is ignored (`PING`, `PONG`, `+OK`).
    Ignore,
    /// Optional whitespace, then the argument (`INFO`).
    Arg,
}

const WORDS: [(&[u8], Kw, After); 10] = [
    (b"PUB", Kw::Pub, After::Space),
    (b"PING", Kw::Ping, After::Ignore),
    (b"PONG", Kw::Pong, After::Ignore),
    (b"HPUB", Kw::HPub, After::Space),
    (b"SUB", Kw::Sub, After::Space),
    (b"UNSUB", Kw::Unsub, After::Space),
    (b"CONNECT", Kw::Connect, After::Arg),
    (b"INFO", Kw::Info, After::Arg),
    (b"+OK", Kw::Ok, After::Ignore),
    (b"-ERR", Kw::Err, After::Space),
];

/// The longest operation name, so that an unterminated line is bounded by
/// `max_control_line` plus this.
const MAX_OP_LEN: usize = 8;

/// Matches the operation name at the start of `line`.
///
/// Returns `Ok(None)` when `line` is a valid but incomplete prefix (only possible when
/// `complete` is false), `Ok(Some((kw, arg_start)))` once the name and its separator are known.
fn keyword(line: &[u8], complete: bool) -> Result<Option<(Kw, usize)>, ProtoError> {
    let mut incomplete = false;
    for (word, kw, after) in WORDS {
        let n = word.len().min(line.len());
        if !line[..n].iter().zip(word.iter()).all(|(a, b)| a.to_ascii_uppercase() == *b) {
            continue;
        }
        if line.len() < word.len() {
            incomplete = true;
            continue;
        }
        let rest = &line[word.len()..];
        return match after {
            After::Ignore => Ok(Some((kw, line.len()))),
            After::Arg => Ok(Some((kw, word.len() + skip_ws(rest)))),
            After::Space => match rest.first() {
                Some(b' ' | b'\t') => Ok(Some((kw, word.len() + skip_ws(rest)))),
                None if !complete => Ok(None),
                _ => Err(ProtoError::UnknownOp),
            },
        };
    }
    if incomplete && !complete { Ok(None) } else { Err(ProtoError::UnknownOp) }
}

fn skip_ws(s: &[u8]) -> usize {
    s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count()
}

/// Splits arguments on spaces and tabs into at most `N` ranges; `None` if there are more.
fn split_args<const N: usize>(s: &[u8], base: usize) -> Option<([(usize, usize); N], usize)> {
    let mut out = [(0, 0); N];
    let mut n = 0;
    let mut start: Option<usize> = None;
    for (i, b) in s.iter().enumerate() {
        if matches!(b, b' ' | b'\t') {
            if let Some(st) = start.take() {
                if n == N {
                    return None;
                }
                out[n] = (base + st, base + i);
                n += 1;
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        if n == N {
            return None;
        }
        out[n] = (base + st, base + s.len());
        n += 1;
    }
    Some((out, n))
}

/// A decimal size as nats-server's `parseSize` reads it: digits only, no sign, no overflow.
fn parse_size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut n: usize = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

#[derive(Debug)]
struct PendingMsg {
    subject: Bytes,
    reply: Option<Bytes>,
    /// Header length for HPUB.
    hdr: Option<usize>,
    size: usize,
}

/// Resumable decoder. Feed it the read buffer after every read; it consumes complete
/// operations from the front and leaves partial ones in place.
#[derive(Debug)]
pub struct Decoder {
    max_control_line: usize,
    max_payload: usize,
    pending: Option<PendingMsg>,
    /// How much of an unterminated control line has already been searched for `\n`, so a
    /// line trickling in byte by byte costs linear, not quadratic, time.
    scanned: usize,
}

impl Decoder {
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        Decoder { max_control_line, max_payload, pending: None, scanned: 0 }
    }

    /// Limits can change (config reload, per-user limits after CONNECT).
    pub fn set_limits(&mut self, max_control_line: usize, max_payload: usize) {
        self.max_control_line = max_control_line;
        self.max_payload = max_payload;
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Decodes the next operation from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; what was consumed is remembered. After an
    /// error the connection must be closed: the decoder's state is unspecified.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ProtoError> {
        loop {
            if let Some(p) = &self.pending {
                let need = p.size + 2;
                if buf.len() < need {
                    return Ok(None);
                }
                if &buf[p.size..need] != b"\r\n" {
                    return Err(ProtoError::UnknownOp);
                }
                let p = self.pending.take().expect("pending checked above");
                let body = buf.split_to(p.size).freeze();
                buf.advance(2);
                return Ok(Some(match p.hdr {
                    None => ClientOp::Pub { subject: p.subject, reply: p.reply, payload: body },
                    Some(h) => ClientOp::HPub {
                        subject: p.subject,
                        reply: p.reply,
                        headers: body.slice(..h),
                        payload: body.slice(h..),
                    },
                }));
            }
            if buf.is_empty() {
                return Ok(None);
            }
            let from = self.scanned.min(buf.len());
            let Some(nl) = memchr::memchr(b'\n', &buf[from..]).map(|i| i + from) else {
                keyword(&buf[..buf.len().min(MAX_OP_LEN)], false)?;
                // +1: a trailing '\r' may already be here without its '\n'.
                if buf.len() > self.max_control_line.saturating_add(MAX_OP_LEN + 1) {
                    return Err(ProtoError::MaxControlLine);
                }
                self.scanned = buf.len();
                return Ok(None);
            };
            self.scanned = 0;
            let line = buf.split_to(nl + 1).freeze();
            let mut end = nl;
            if end > 0 && line[end - 1] == b'\r' {
                end -= 1;
            }
            let Some((kw, arg_start)) = keyword(&line[..end], true)? else {
                return Err(ProtoError::UnknownOp);
            };
            let arg = &line[arg_start.min(end)..end];
            // The whole-line bound matches the bound on unterminated lines above, so how the
            // bytes were chunked never changes the outcome.
            if arg.len() > self.max_control_line
                || end > self.max_control_line.saturating_add(MAX_OP_LEN)
            {
                return Err(ProtoError::MaxControlLine);
            }
            let base = arg_start.min(end);
            match kw {
                Kw::Ping => return Ok(Some(ClientOp::Ping)),
                Kw::Pong => return Ok(Some(ClientOp::Pong)),
                Kw::Ok => return Ok(Some(ClientOp::Ok)),
                Kw::Connect => return Ok(Some(ClientOp::Connect(line.slice(base..end)))),
                Kw::Info => return Ok(Some(ClientOp::Info(line.slice(base..end)))),
                Kw::Err => return Ok(Some(ClientOp::Err(line.slice(base..end)))),
                Kw::Sub => {
                    let bad = ProtoError::BadArgs { op: "processSub", reason: "wrong arguments" };
                    let (a, n) = split_args::<3>(arg, base).ok_or(bad.clone())?;
                    let s = |i: usize| line.slice(a[i].0..a[i].1);
                    return match n {
                        2 => Ok(Some(ClientOp::Sub { subject: s(0), queue: None, sid: s(1) })),
                        3 => {
                            Ok(Some(ClientOp::Sub { subject: s(0), queue: Some(s(1)), sid: s(2) }))
                        }
                        _ => Err(bad),
                    };
                }
                Kw::Unsub => {
                    let bad = ProtoError::BadArgs { op: "processUnsub", reason: "wrong arguments" };
                    let (a, n) = split_args::<2>(arg, base).ok_or(bad.clone())?;
                    let sid = line.slice(a[0].0..a[0].1);
                    return match n {
                        1 => Ok(Some(ClientOp::Unsub { sid, max: None })),
                        2 => {
                            let max = parse_size(&line[a[1].0..a[1].1]).unwrap_or(0) as u64;
                            Ok(Some(ClientOp::Unsub { sid, max: Some(max) }))
                        }
                        _ => Err(bad),
                    };
                }
                Kw::Pub => {
                    let bad = ProtoError::BadArgs { op: "processPub", reason: "wrong arguments" };
                    let (a, n) = split_args::<3>(arg, base).ok_or(bad.clone())?;
                    let (reply, size_at) = match n {
                        2 => (None, 1),
                        3 => (Some(line.slice(a[1].0..a[1].1)), 2),
                        _ => return Err(bad),
                    };
                    let size = parse_size(&line[a[size_at].0..a[size_at].1]).ok_or(
                        ProtoError::BadArgs { op: "processPub", reason: "Bad or Missing Size" },
                    )?;
                    self.check_payload(size)?;
                    let subject = line.slice(a[0].0..a[0].1);
                    self.pending = Some(PendingMsg { subject, reply, hdr: None, size });
                }
                Kw::HPub => {
                    let bad =
                        ProtoError::BadArgs { op: "processHeaderPub", reason: "wrong arguments" };
                    let (a, n) = split_args::<4>(arg, base).ok_or(bad.clone())?;
                    let (reply, hdr_at) = match n {
                        3 => (None, 1),
                        4 => (Some(line.slice(a[1].0..a[1].1)), 2),
                        _ => return Err(bad),
                    };
                    let hdr =
                        parse_size(&line[a[hdr_at].0..a[hdr_at].1]).ok_or(ProtoError::BadArgs {
                            op: "processHeaderPub",
                            reason: "Bad or Missing Header Size",
                        })?;
                    let size = parse_size(&line[a[hdr_at + 1].0..a[hdr_at + 1].1]).ok_or(
                        ProtoError::BadArgs {
                            op: "processHeaderPub",
                            reason: "Bad or Missing Total Size",
                        },
                    )?;
                    if hdr > size {
                        return Err(ProtoError::BadArgs {
                            op: "processHeaderPub",
                            reason: "Header Size larger then TotalSize",
                        });
                    }
                    self.check_payload(size)?;
                    let subject = line.slice(a[0].0..a[0].1);
                    self.pending = Some(PendingMsg { subject, reply, hdr: Some(hdr), size });
                }
            }
        }
    }

    fn check_payload(&self, size: usize) -> Result<(), ProtoError> {
        if size > self.max_payload {
            return Err(ProtoError::MaxPayload { size, max: self.max_payload });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<ClientOp>, ProtoError> {
        let mut d = Decoder::new(4096, 1024 * 1024);
        let mut buf = BytesMut::from(input);
        let mut ops = Vec::new();
        while let Some(op) = d.decode(&mut buf)? {
            ops.push(op);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(ops)
    }

    /// Feeds the input split at every pair of points and checks the ops are the same.
    fn split_everywhere(input: &[u8]) {
        let whole = decode_all(input).unwrap();
        for i in 0..=input.len() {
            let mut d = Decoder::new(4096, 1024 * 1024);
            let mut buf = BytesMut::new();
            let mut ops = Vec::new();
            for chunk in [&input[..i], &input[i..]] {
                buf.extend_from_slice(chunk);
                while let Some(op) = d.decode(&mut buf).unwrap() {
                    ops.push(op);
                }
            }
            assert_eq!(ops, whole, "split at {i}");
            // and byte by byte
        }
        let mut d = Decoder::new(4096, 1024 * 1024);
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        for b in input {
            buf.extend_from_slice(&[*b]);
            while let Some(op) = d.decode(&mut buf).unwrap() {
                ops.push(op);
            }
        }
        assert_eq!(ops, whole, "byte by byte");
    }

    #[test]
    fn every_op_at_every_split() {
        let input =
            b"CONNECT {\"verbose\":false}\r\nPUB foo 5\r\nhello\r\nPUB foo.bar _INBOX.1 0\r\n\r\n\
HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHPUB h r 12 12\r\nNATS/1.0\r\n\r\n\r\n\
SUB foo 1\r\nSUB foo q 2\r\nUNSUB 1\r\nUNSUB 2 10\r\nPING\r\nPONG\r\n+OK\r\nINFO {}\r\n-ERR 'x'\r\n\
pub\tfoo\t\t3\r\nabc\r\nping\n";
        split_everywhere(input);
        let ops = decode_all(input).unwrap();
        assert_eq!(ops.len(), 16);
        assert_eq!(
            ops[1],
            ClientOp::Pub {
                subject: Bytes::from_static(b"foo"),
                reply: None,
                payload: Bytes::from_static(b"hello")
            }
        );
        assert_eq!(
            ops[3],
            ClientOp::HPub {
                subject: Bytes::from_static(b"h"),
                reply: None,
                headers: Bytes::from_static(b"NATS/1.0\r\n\r\n"),
                payload: Bytes::from_static(b"hi"),
            }
        );
        assert_eq!(
            ops[6],
            ClientOp::Sub {
                subject: Bytes::from_static(b"foo"),
                queue: Some(Bytes::from_static(b"q")),
                sid: Bytes::from_static(b"2")
            }
        );
        assert_eq!(ops[8], ClientOp::Unsub { sid: Bytes::from_static(b"2"), max: Some(10) });
        assert_eq!(
            ops[14],
            ClientOp::Pub {
                subject: Bytes::from_static(b"foo"),
                reply: None,
                payload: Bytes::from_static(b"abc")
            }
        );
        assert_eq!(ops[15], ClientOp::Ping);
    }

    #[test]
    fn unknown_op_is_rejected_before_the_newline() {
        let mut d = Decoder::new(4096, 1024);
        let mut buf = BytesMut::from(&b"XYZ"[..]);
        assert_eq!(d.decode(&mut buf), Err(ProtoError::UnknownOp));
        let mut buf = BytesMut::from(&b"PUX"[..]);
        assert_eq!(Decoder::new(4096, 1024).decode(&mut buf), Err(ProtoError::UnknownOp));
        // A valid prefix waits for more.
        let mut buf = BytesMut::from(&b"CONNE"[..]);
        assert_eq!(Decoder::new(4096, 1024).decode(&mut buf), Ok(None));
    }

    #[test]
    fn malformed_lines() {
        for (input, want) in [
            (&b"\r\n"[..], ProtoError::UnknownOp),
            (b"PUB\r\n", ProtoError::UnknownOp),
            (b"MSG foo 1 1\r\n", ProtoError::UnknownOp),
            (b"PUBS foo 1\r\n", ProtoError::UnknownOp),
            (b"PUB foo 3\r\nabcd\r\n", ProtoError::UnknownOp),
            (b"PUB foo\r\n", ProtoError::BadArgs { op: "processPub", reason: "wrong arguments" }),
            (
                b"PUB a b c d\r\n",
                ProtoError::BadArgs { op: "processPub", reason: "wrong arguments" },
            ),
            (
                b"PUB foo -1\r\n",
                ProtoError::BadArgs { op: "processPub", reason: "Bad or Missing Size" },
            ),
            (b"SUB foo\r\n", ProtoError::BadArgs { op: "processSub", reason: "wrong arguments" }),
            (b"UNSUB\r\n", ProtoError::UnknownOp),
            (
                b"HPUB foo 10 5\r\n",
                ProtoError::BadArgs {
                    op: "processHeaderPub",
                    reason: "Header Size larger then TotalSize",
                },
            ),
        ] {
            assert_eq!(decode_all(input), Err(want), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn connect_takes_whatever_follows_as_its_argument() {
        // nats-server: no separator needed; the server then fails to parse the JSON.
        assert_eq!(decode_all(b"CONNECT\r\n").unwrap(), vec![ClientOp::Connect(Bytes::new())]);
        assert_eq!(
            decode_all(b"connect{}\r\n").unwrap(),
            vec![ClientOp::Connect(Bytes::from_static(b"{}"))]
        );
    }

    #[test]
    fn ping_ignores_the_rest_of_its_line() {
        assert_eq!(
            decode_all(b"PINGXX yy\r\nPONG z\r\n").unwrap(),
            vec![ClientOp::Ping, ClientOp::Pong]
        );
    }

    #[test]
    fn limits() {
        let mut d = Decoder::new(4096, 10);
        let mut buf = BytesMut::from(&b"PUB foo 11\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(ProtoError::MaxPayload { size: 11, max: 10 }));
        let mut d = Decoder::new(16, 1024);
        let mut buf = BytesMut::from(&b"SUB aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(ProtoError::MaxControlLine));
        // An unterminated line cannot grow without bound.
        let mut d = Decoder::new(16, 1024);
        let mut buf = BytesMut::from(&b"SUB aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..]);
        assert_eq!(d.decode(&mut buf), Err(ProtoError::MaxControlLine));
    }

    #[test]
    fn unsub_with_bad_max_unsubscribes_now() {
        assert_eq!(
            decode_all(b"UNSUB 1 x\r\n").unwrap(),
            vec![ClientOp::Unsub { sid: Bytes::from_static(b"1"), max: Some(0) }]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut d = Decoder::new(64, 128);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }
    }
}
