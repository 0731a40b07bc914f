//! What the server writes to a client, and to a route.
//!
//! Frames are appended straight into the subscriber's outbound buffer: the fan-out path does
//! no allocation of its own, only the buffer's amortised growth.

use bytes::{BufMut, BytesMut};

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

fn put_usize(out: &mut BytesMut, n: usize) {
    let mut b = itoa::Buffer::new();
    out.put_slice(b.format(n).as_bytes());
}

/// The exact size [`msg`] will append, so callers can check limits before writing.
pub fn msg_len(subject: &[u8], sid: &[u8], reply: Option<&[u8]>, payload_len: usize) -> usize {
    // "MSG " + subject + " " + sid + " " [+ reply + " "] + len + "\r\n" + payload + "\r\n"
    4 + subject.len()
        + 1
        + sid.len()
        + 1
        + reply.map_or(0, |r| r.len() + 1)
        + 20
        + 2
        + payload_len
        + 2
}

/// Appends `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`.
pub fn msg(out: &mut BytesMut, subject: &[u8], sid: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    out.reserve(msg_len(subject, sid, reply, payload.len()));
    out.put_slice(b"MSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(r) = reply {
        out.put_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, payload.len());
    out.put_slice(b"\r\n");
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends `HMSG <subject> <sid> [reply] <hdr size> <total size>\r\n<headers><payload>\r\n`.
pub fn hmsg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    out.reserve(msg_len(subject, sid, reply, headers.len() + payload.len()) + 21);
    out.put_slice(b"HMSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(r) = reply {
        out.put_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, headers.len());
    out.put_u8(b' ');
    put_usize(out, headers.len() + payload.len());
    out.put_slice(b"\r\n");
    out.put_slice(headers);
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends a message for a route: `RMSG <account> <subject> [reply] <size>`, or with headers
/// `HMSG <account> <subject> [reply] <hdr size> <total size>`, then the payload. With queue
/// groups the reply slot becomes `+ <reply>` (or `|` without one) followed by the queue names
/// (nats-server's route format). `account` is `None` on a route pinned to the account.
pub fn rmsg(
    out: &mut BytesMut,
    account: Option<&[u8]>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let hlen = headers.map_or(0, <[u8]>::len);
    let qlen: usize = queues.iter().map(|q| q.len() + 1).sum();
    out.reserve(
        6 + account.map_or(0, |a| a.len() + 1)
            + subject.len()
            + 1
            + reply.map_or(0, |r| r.len() + 3)
            + 2
            + qlen
            + 42
            + hlen
            + payload.len(),
    );
    out.put_slice(if headers.is_some() { b"HMSG " } else { b"RMSG " });
    if let Some(a) = account {
        out.put_slice(a);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    out.put_u8(b' ');
    if queues.is_empty() {
        if let Some(r) = reply {
            out.put_slice(r);
            out.put_u8(b' ');
        }
    } else {
        match reply {
            Some(r) => {
                out.put_slice(b"+ ");
                out.put_slice(r);
                out.put_u8(b' ');
            }
            None => out.put_slice(b"| "),
        }
        for q in queues {
            out.put_slice(q);
            out.put_u8(b' ');
        }
    }
    if let Some(h) = headers {
        put_usize(out, h.len());
        out.put_u8(b' ');
    }
    put_usize(out, hlen + payload.len());
    out.put_slice(b"\r\n");
    if let Some(h) = headers {
        out.put_slice(h);
    }
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends a route's interest line: `RS+ <account> <subject>` or with a queue group
/// `RS+ <account> <subject> <queue> <weight>`; `RS- <account> <subject> [queue]` when
/// `weight` is 0. `account` is `None` on a route pinned to the account.
pub fn route_sub(
    out: &mut BytesMut,
    account: Option<&[u8]>,
    subject: &[u8],
    queue: Option<&[u8]>,
    weight: u32,
) {
    out.put_slice(if weight == 0 { b"RS- " } else { b"RS+ " });
    if let Some(a) = account {
        out.put_slice(a);
        out.put_u8(b' ');
    }
    out.put_slice(subject);
    if let Some(q) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
        if weight > 0 {
            out.put_u8(b' ');
            put_usize(out, weight as usize);
        }
    }
    out.put_slice(b"\r\n");
}

/// Appends `-ERR '<text>'\r\n`.
pub fn err(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

/// Appends `INFO <json>\r\n`.
pub fn info(out: &mut BytesMut, json: &[u8]) {
    out.put_slice(b"INFO ");
    out.put_slice(json);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let mut b = BytesMut::new();
        msg(&mut b, b"foo.bar", b"7", None, b"hello");
        msg(&mut b, b"foo", b"1", Some(b"_INBOX.x"), b"");
        hmsg(&mut b, b"s", b"2", None, b"NATS/1.0\r\n\r\n", b"hi");
        err(&mut b, "Invalid Subject");
        assert_eq!(
            &b[..],
            &b"MSG foo.bar 7 5\r\nhello\r\nMSG foo 1 _INBOX.x 0\r\n\r\n\
HMSG s 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Invalid Subject'\r\n"[..]
        );
    }

    #[test]
    fn route_frames() {
        let mut b = BytesMut::new();
        rmsg(&mut b, Some(b"$G"), b"foo", None, &[], None, b"hi");
        rmsg(&mut b, Some(b"A"), b"foo", Some(b"r"), &[], Some(b"NATS/1.0\r\n\r\n"), b"x");
        rmsg(&mut b, None, b"foo", Some(b"r"), &[b"q1", b"q2"], None, b"");
        rmsg(&mut b, Some(b"A"), b"foo", None, &[b"q"], None, b"y");
        assert_eq!(
            &b[..],
            &b"RMSG $G foo 2\r\nhi\r\nHMSG A foo r 12 13\r\nNATS/1.0\r\n\r\nx\r\n\
RMSG foo + r q1 q2 0\r\n\r\nRMSG A foo | q 1\r\ny\r\n"[..]
        );
        let mut b = BytesMut::new();
        route_sub(&mut b, Some(b"$G"), b"foo.*", None, 1);
        route_sub(&mut b, Some(b"$G"), b"foo", Some(b"q"), 3);
        route_sub(&mut b, None, b"foo", Some(b"q"), 0);
        route_sub(&mut b, Some(b"A"), b"bar", None, 0);
        assert_eq!(&b[..], &b"RS+ $G foo.*\r\nRS+ $G foo q 3\r\nRS- foo q\r\nRS- A bar\r\n"[..]);
    }

    #[test]
    fn msg_len_is_an_upper_bound() {
        let mut b = BytesMut::new();
        msg(&mut b, b"a.b.c", b"123", Some(b"r"), &[0u8; 1000]);
        assert!(b.len() <= msg_len(b"a.b.c", b"123", Some(b"r"), 1000));
    }
}
