//! What the server writes to a client.
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
    fn msg_len_is_an_upper_bound() {
        let mut b = BytesMut::new();
        msg(&mut b, b"a.b.c", b"123", Some(b"r"), &[0u8; 1000]);
        assert!(b.len() <= msg_len(b"a.b.c", b"123", Some(b"r"), 1000));
    }
}
