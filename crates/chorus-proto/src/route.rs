//! Resumable decoder of what a route (another server of the cluster) sends.
//!
//! The route protocol is nats-server's (`server/parser.go`, `route.go`):
//!
//! ```text
//!  INFO {json}                 CONNECT {json}            PING  PONG  +OK  -ERR 'text'
//!  RS+ <acc> <subject> [<queue> <weight>]                 interest in a subject
//!  RS- <acc> <subject> [<queue>]                          interest gone
//!  LS+ <origin> <acc> <subject> [<queue> <weight>]        the same, learned from a leaf
//!  LS- <origin> <acc> <subject> [<queue>]
//!  RMSG <acc> <subject> [<reply>] <size>                  a message
//!  RMSG <acc> <subject> + <reply> <queue>... <size>       ... for these queue groups
//!  RMSG <acc> <subject> | <queue>... <size>               ... without a reply
//!  HMSG <acc> <subject> ... <hdr size> <total size>       with headers
//!  LMSG <origin> <acc> <subject> ... <hdr size> <total size>   from a leaf (origin dropped)
//! ```
//!
//! On a route pinned to one account the `<acc>` token is left out; the decoder is told
//! ([`RouteDecoder::set_pinned`]). Like the client decoder, nothing is copied: every field is
//! a `Bytes` view of the read buffer, and a line or payload over its limit is an error before
//! it is buffered whole.

use bytes::{Buf, Bytes, BytesMut};

use crate::parser::ProtoError;

/// One operation received from a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Info(Bytes),
    Connect(Bytes),
    Ping,
    Pong,
    Ok,
    Err(Bytes),
    /// `RS+` (or `LS+`, whose origin is dropped): the peer has interest. `weight` is the
    /// number of queue members (1 for plain interest).
    Sub {
        account: Option<Bytes>,
        subject: Bytes,
        queue: Option<Bytes>,
        weight: u32,
    },
    /// `RS-` (or `LS-`): the peer's interest is gone.
    Unsub {
        account: Option<Bytes>,
        subject: Bytes,
        queue: Option<Bytes>,
    },
    /// `RMSG` / `HMSG`.
    Msg {
        account: Option<Bytes>,
        subject: Bytes,
        reply: Option<Bytes>,
        /// The queue groups the sender picked this server for.
        queues: Vec<Bytes>,
        headers: Option<Bytes>,
        payload: Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Info,
    Connect,
    Ping,
    Pong,
    Ok,
    Err,
    RsPlus,
    RsMinus,
    LsPlus,
    LsMinus,
    Rmsg,
    Hmsg,
    Lmsg,
}

/// Operation names, and whether the rest of the line is ignored (`PING`).
const WORDS: [(&[u8], Kw, bool); 13] = [
    (b"RMSG", Kw::Rmsg, false),
    (b"HMSG", Kw::Hmsg, false),
    (b"LMSG", Kw::Lmsg, false),
    (b"RS+", Kw::RsPlus, false),
    (b"RS-", Kw::RsMinus, false),
    (b"LS+", Kw::LsPlus, false),
    (b"LS-", Kw::LsMinus, false),
    (b"PING", Kw::Ping, true),
    (b"PONG", Kw::Pong, true),
    (b"INFO", Kw::Info, false),
    (b"CONNECT", Kw::Connect, false),
    (b"+OK", Kw::Ok, true),
    (b"-ERR", Kw::Err, false),
];

const MAX_OP_LEN: usize = 8;
/// The longest INFO or CONNECT line a route may send.
const MAX_JSON_LINE: usize = 1 << 20;

/// The operation at the start of `line` and where its arguments begin; `Ok(None)` while
/// `line` is a valid but incomplete prefix.
fn keyword(line: &[u8], complete: bool) -> Result<Option<(Kw, usize)>, ProtoError> {
    let mut incomplete = false;
    for (word, kw, ignore) in WORDS {
        let n = word.len().min(line.len());
        if !line[..n].iter().zip(word.iter()).all(|(a, b)| a.to_ascii_uppercase() == *b) {
            continue;
        }
        if line.len() < word.len() {
            incomplete = true;
            continue;
        }
        let rest = &line[word.len()..];
        if ignore {
            return Ok(Some((kw, line.len())));
        }
        return match rest.first() {
            Some(b' ' | b'\t') => Ok(Some((kw, word.len() + skip_ws(rest)))),
            // INFO/CONNECT may run into their JSON; an empty argument is the caller's problem.
            _ if matches!(kw, Kw::Info | Kw::Connect) => Ok(Some((kw, word.len()))),
            None if !complete => Ok(None),
            _ => Err(ProtoError::UnknownOp),
        };
    }
    if incomplete && !complete { Ok(None) } else { Err(ProtoError::UnknownOp) }
}

fn skip_ws(s: &[u8]) -> usize {
    s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count()
}

/// Argument ranges split on spaces and tabs.
fn args(s: &[u8], base: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(5);
    let mut start: Option<usize> = None;
    for (i, b) in s.iter().enumerate() {
        if matches!(b, b' ' | b'\t') {
            if let Some(st) = start.take() {
                out.push((base + st, base + i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push((base + st, base + s.len()));
    }
    out
}

fn parse_size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0usize, |n, b| n * 10 + (b - b'0') as usize))
}

#[derive(Debug)]
struct Pending {
    account: Option<Bytes>,
    subject: Bytes,
    reply: Option<Bytes>,
    queues: Vec<Bytes>,
    hdr: Option<usize>,
    size: usize,
}

/// Resumable decoder of a route's byte stream.
#[derive(Debug)]
pub struct RouteDecoder {
    max_control_line: usize,
    max_payload: usize,
    /// The route carries one account: its ops have no account token.
    pinned: bool,
    pending: Option<Pending>,
    scanned: usize,
}

impl RouteDecoder {
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        RouteDecoder { max_control_line, max_payload, pinned: false, pending: None, scanned: 0 }
    }

    /// From now on, ops carry no account token (a route pinned to an account).
    pub fn set_pinned(&mut self, pinned: bool) {
        self.pinned = pinned;
    }

    /// Decodes the next operation from the front of `buf`; `Ok(None)` means more bytes are
    /// needed. After an error the route must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RouteOp>, ProtoError> {
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
            let (headers, payload) = match p.hdr {
                Some(h) => (Some(body.slice(..h)), body.slice(h..)),
                None => (None, body),
            };
            return Ok(Some(RouteOp::Msg {
                account: p.account,
                subject: p.subject,
                reply: p.reply,
                queues: p.queues,
                headers,
                payload,
            }));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let from = self.scanned.min(buf.len());
        let Some(nl) = memchr::memchr(b'\n', &buf[from..]).map(|i| i + from) else {
            let kw = keyword(&buf[..buf.len().min(MAX_OP_LEN)], false)?;
            let limit = match kw {
                Some((Kw::Info | Kw::Connect, _)) => self.max_control_line.max(MAX_JSON_LINE),
                _ => self.max_control_line,
            };
            if buf.len() > limit.saturating_add(MAX_OP_LEN + 1) {
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
        let base = arg_start.min(end);
        // INFO and CONNECT carry JSON documents (a big cluster's URL lists) longer than a
        // control line may be; they get a bound of their own.
        let limit = if matches!(kw, Kw::Info | Kw::Connect) {
            self.max_control_line.max(MAX_JSON_LINE)
        } else {
            self.max_control_line
        };
        if end > limit.saturating_add(MAX_OP_LEN) {
            return Err(ProtoError::MaxControlLine);
        }
        let a = args(&line[base..end], base);
        let s = |i: usize| line.slice(a[i].0..a[i].1);
        let op = match kw {
            Kw::Ping => RouteOp::Ping,
            Kw::Pong => RouteOp::Pong,
            Kw::Ok => RouteOp::Ok,
            Kw::Info => RouteOp::Info(line.slice(base..end)),
            Kw::Connect => RouteOp::Connect(line.slice(base..end)),
            Kw::Err => RouteOp::Err(line.slice(base..end)),
            Kw::RsPlus | Kw::LsPlus | Kw::RsMinus | Kw::LsMinus => {
                let plus = matches!(kw, Kw::RsPlus | Kw::LsPlus);
                let op = if plus { "processRemoteSub" } else { "processRemoteUnsub" };
                let bad = ProtoError::BadArgs { op, reason: "wrong arguments" };
                // LS+ has the origin first; the account follows unless pinned.
                let skip = usize::from(matches!(kw, Kw::LsPlus | Kw::LsMinus));
                let lead = skip + usize::from(!self.pinned);
                let rest = a.len().checked_sub(lead).ok_or(bad.clone())?;
                let account = (!self.pinned).then(|| s(skip));
                match (plus, rest) {
                    (_, 1) => {
                        let subject = s(lead);
                        if plus {
                            RouteOp::Sub { account, subject, queue: None, weight: 1 }
                        } else {
                            RouteOp::Unsub { account, subject, queue: None }
                        }
                    }
                    (true, 3) => {
                        let weight = parse_size(&line[a[lead + 2].0..a[lead + 2].1])
                            .and_then(|w| u32::try_from(w).ok())
                            .filter(|w| *w > 0)
                            .ok_or(ProtoError::BadArgs { op, reason: "bad queue weight" })?;
                        RouteOp::Sub { account, subject: s(lead), queue: Some(s(lead + 1)), weight }
                    }
                    // nats-server also accepts (and ignores) a weight on RS-.
                    (false, 2 | 3) => {
                        RouteOp::Unsub { account, subject: s(lead), queue: Some(s(lead + 1)) }
                    }
                    _ => return Err(bad),
                }
            }
            Kw::Rmsg | Kw::Hmsg | Kw::Lmsg => {
                // LMSG always carries a header size (0 without headers) and an origin first.
                let hdr = kw != Kw::Rmsg;
                let op = if kw == Kw::Lmsg {
                    "processRoutedOriginClusterMsgArgs"
                } else {
                    "processRoutedMsgArgs"
                };
                let bad = ProtoError::BadArgs { op, reason: "wrong arguments" };
                let skip = usize::from(kw == Kw::Lmsg);
                let lead = skip + usize::from(!self.pinned);
                // origin? account? subject [reply | + reply queues.. | | queues..] [hdr] size
                let sizes = 1 + usize::from(hdr);
                if a.len() < lead + 1 + sizes {
                    return Err(bad);
                }
                let account = (!self.pinned).then(|| s(skip));
                let subject = s(lead);
                let mid = &a[lead + 1..a.len() - sizes];
                let (reply, queues) = match mid {
                    [] => (None, Vec::new()),
                    [r] => (Some(line.slice(r.0..r.1)), Vec::new()),
                    [m, rest @ ..] => {
                        let mark = &line[m.0..m.1];
                        let q = |v: &[(usize, usize)]| {
                            v.iter().map(|r| line.slice(r.0..r.1)).collect::<Vec<_>>()
                        };
                        match mark {
                            b"+" if rest.len() >= 2 => {
                                (Some(line.slice(rest[0].0..rest[0].1)), q(&rest[1..]))
                            }
                            b"|" => (None, q(rest)),
                            _ => return Err(bad),
                        }
                    }
                };
                let num = |i: usize| parse_size(&line[a[i].0..a[i].1]);
                let size = num(a.len() - 1)
                    .ok_or(ProtoError::BadArgs { op, reason: "Bad or Missing Size" })?;
                let hdr_len = if hdr {
                    let h = num(a.len() - 2)
                        .ok_or(ProtoError::BadArgs { op, reason: "Bad or Missing Header Size" })?;
                    if h > size {
                        return Err(ProtoError::BadArgs {
                            op,
                            reason: "Header Size larger then TotalSize",
                        });
                    }
                    // An LMSG without headers says 0.
                    (h > 0 || kw == Kw::Hmsg).then_some(h)
                } else {
                    None
                };
                if size > self.max_payload {
                    return Err(ProtoError::MaxPayload { size, max: self.max_payload });
                }
                self.pending =
                    Some(Pending { account, subject, reply, queues, hdr: hdr_len, size });
                return self.decode(buf);
            }
        };
        Ok(Some(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn decode_all(d: &mut RouteDecoder, input: &[u8]) -> Result<Vec<RouteOp>, ProtoError> {
        let mut buf = BytesMut::from(input);
        let mut ops = Vec::new();
        while let Some(op) = d.decode(&mut buf)? {
            ops.push(op);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(ops)
    }

    const STREAM: &[u8] = b"INFO {\"server_id\":\"N1\"}\r\nCONNECT {}\r\nPING\r\nPONG\r\n\
RS+ $G foo\r\nRS+ A foo.* q 3\r\nRS- $G foo\r\nRS- A foo.* q\r\nLS+ N2 $G bar\r\n\
RMSG $G foo 5\r\nhello\r\nRMSG A foo _INBOX.1 0\r\n\r\nRMSG A foo + r q1 q2 2\r\nhi\r\n\
RMSG A foo | q1 1\r\nx\r\nHMSG $G h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
HMSG $G h + r q 12 12\r\nNATS/1.0\r\n\r\n\r\n-ERR 'x'\r\n\
LMSG leafc $G lf 0 2\r\nhi\r\nLMSG _ A lf | q 12 13\r\nNATS/1.0\r\n\r\nx\r\n";

    #[test]
    fn every_op() {
        let ops = decode_all(&mut RouteDecoder::new(4096, 1 << 20), STREAM).unwrap();
        assert_eq!(ops.len(), 18);
        assert_eq!(
            ops[16],
            RouteOp::Msg {
                account: Some(b("$G")),
                subject: b("lf"),
                reply: None,
                queues: vec![],
                headers: None,
                payload: b("hi"),
            }
        );
        assert!(
            matches!(&ops[17], RouteOp::Msg { headers: Some(_), queues, .. } if queues.len() == 1)
        );
        assert_eq!(ops[0], RouteOp::Info(b("{\"server_id\":\"N1\"}")));
        assert_eq!(
            ops[5],
            RouteOp::Sub {
                account: Some(b("A")),
                subject: b("foo.*"),
                queue: Some(b("q")),
                weight: 3
            }
        );
        assert_eq!(
            ops[7],
            RouteOp::Unsub { account: Some(b("A")), subject: b("foo.*"), queue: Some(b("q")) }
        );
        assert_eq!(
            ops[8],
            RouteOp::Sub { account: Some(b("$G")), subject: b("bar"), queue: None, weight: 1 }
        );
        assert_eq!(
            ops[11],
            RouteOp::Msg {
                account: Some(b("A")),
                subject: b("foo"),
                reply: Some(b("r")),
                queues: vec![b("q1"), b("q2")],
                headers: None,
                payload: b("hi"),
            }
        );
        assert_eq!(
            ops[12],
            RouteOp::Msg {
                account: Some(b("A")),
                subject: b("foo"),
                reply: None,
                queues: vec![b("q1")],
                headers: None,
                payload: b("x"),
            }
        );
        assert_eq!(
            ops[14],
            RouteOp::Msg {
                account: Some(b("$G")),
                subject: b("h"),
                reply: Some(b("r")),
                queues: vec![b("q")],
                headers: Some(b("NATS/1.0\r\n\r\n")),
                payload: b(""),
            }
        );
    }

    #[test]
    fn every_split_gives_the_same_ops() {
        let whole = decode_all(&mut RouteDecoder::new(4096, 1 << 20), STREAM).unwrap();
        for i in 0..=STREAM.len() {
            let mut d = RouteDecoder::new(4096, 1 << 20);
            let mut buf = BytesMut::new();
            let mut ops = Vec::new();
            for chunk in [&STREAM[..i], &STREAM[i..]] {
                buf.extend_from_slice(chunk);
                while let Some(op) = d.decode(&mut buf).unwrap() {
                    ops.push(op);
                }
            }
            assert_eq!(ops, whole, "split at {i}");
        }
    }

    #[test]
    fn pinned_routes_leave_the_account_out() {
        let mut d = RouteDecoder::new(4096, 1024);
        d.set_pinned(true);
        let ops = decode_all(&mut d, b"RS+ foo q 2\r\nRMSG foo r 1\r\nx\r\nRMSG foo | q 0\r\n\r\n")
            .unwrap();
        assert_eq!(
            ops[0],
            RouteOp::Sub { account: None, subject: b("foo"), queue: Some(b("q")), weight: 2 }
        );
        assert!(matches!(&ops[1], RouteOp::Msg { account: None, reply: Some(r), .. } if r == "r"));
        assert!(matches!(&ops[2], RouteOp::Msg { queues, reply: None, .. } if queues.len() == 1));
    }

    #[test]
    fn bad_input_is_an_error() {
        for (input, want) in [
            (&b"PUB foo 1\r\n"[..], ProtoError::UnknownOp),
            (b"RS+\r\n", ProtoError::UnknownOp),
            (
                b"RS+ $G\r\n",
                ProtoError::BadArgs { op: "processRemoteSub", reason: "wrong arguments" },
            ),
            (
                b"RS+ $G foo q 0\r\n",
                ProtoError::BadArgs { op: "processRemoteSub", reason: "bad queue weight" },
            ),
            (
                b"RMSG $G\r\n",
                ProtoError::BadArgs { op: "processRoutedMsgArgs", reason: "wrong arguments" },
            ),
            (
                b"RMSG $G foo x q 1\r\n",
                ProtoError::BadArgs { op: "processRoutedMsgArgs", reason: "wrong arguments" },
            ),
            (
                b"RMSG $G foo -1\r\n",
                ProtoError::BadArgs { op: "processRoutedMsgArgs", reason: "Bad or Missing Size" },
            ),
            (b"RMSG $G foo 2000\r\n", ProtoError::MaxPayload { size: 2000, max: 1024 }),
            (b"RMSG $G foo 1\r\nxy\r\n", ProtoError::UnknownOp),
        ] {
            let r = decode_all(&mut RouteDecoder::new(4096, 1024), input);
            assert_eq!(r, Err(want), "{:?}", String::from_utf8_lossy(input));
        }
        let mut d = RouteDecoder::new(16, 1024);
        let mut buf = BytesMut::from(&b"RS+ $G aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..]);
        assert_eq!(d.decode(&mut buf), Err(ProtoError::MaxControlLine));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut d = RouteDecoder::new(64, 128);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }
    }
}
