//! Sans-io codec of WebSocket frames (RFC 6455), as a NATS server speaks them.
//!
//! NATS over WebSocket has no framing of its own: the client protocol is a byte stream cut
//! into frames anywhere, so a frame may hold half an operation or many. The decoder therefore
//! hands out data *as it arrives*, piece by piece, unmasked, and never waits for a whole frame:
//! a client announcing a 64 MB frame costs no 64 MB buffer; the NATS parser behind it enforces
//! `max_payload` on the operations inside. Control frames (at most 125 bytes) are the only ones
//! buffered whole.
//!
//! What is checked, with nats-server's wording (`websocket.go`), so the close frame a client
//! sees reads the same:
//! - RSV2/RSV3 clear, RSV1 only with negotiated permessage-deflate and only on a message's
//!   first frame;
//! - client frames masked (unless the peer asked for no masking, as leaf nodes may);
//! - control frames final, uncompressed, at most 125 bytes; a close payload of 0 or >= 2
//!   bytes with a valid status code;
//! - continuation frames only inside a fragmented message, and no new message before the
//!   previous one's final frame.
//!
//! The encoder side writes frame headers (masked when acting as a client, for tests and
//! tools) and close payloads.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const OP_CONTINUATION: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// Largest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest frame header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Close status codes (RFC 6455 section 7.4.1) that a NATS server sends.
pub mod status {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const NO_STATUS: u16 = 1005;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const TLS_HANDSHAKE: u16 = 1015;
}

/// A frame that breaks the protocol. The connection is closed with status 1002 and the
/// error's text as the close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("RSV2 and RSV3 must be clear")]
    ReservedBits,
    #[error("compressed frame received without negotiated permessage-deflate")]
    CompressionNotNegotiated,
    #[error("mask bit missing")]
    MaskMissing,
    #[error("control frame length bigger than maximum allowed of 125 bytes")]
    ControlTooLong,
    #[error("control frame does not have final bit set")]
    ControlFragmented,
    #[error("control frame must not be compressed")]
    ControlCompressed,
    #[error("new message started before final frame for previous message was received")]
    MessageInterleaved,
    #[error("invalid continuation frame")]
    BadContinuation,
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    #[error("invalid 64-bit payload length")]
    BadLength,
    #[error("close frame payload cannot be 1 byte")]
    CloseOneByte,
    #[error("invalid close status code {0}")]
    BadCloseStatus(u16),
}

/// What the decoder found in the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A piece of a text or binary message, unmasked. `compressed`: the message is
    /// permessage-deflate compressed (its first frame had RSV1). `end`: this piece ends the
    /// message (the final frame is complete). Pieces of one message arrive in order and may
    /// be empty (a zero-length final frame still ends a compressed message).
    Data {
        payload: BytesMut,
        compressed: bool,
        end: bool,
    },
    Ping(Bytes),
    Pong(Bytes),
    /// The peer closes. `status` is `None` when the frame had no status (1005: nothing is to
    /// be echoed); a reason that is not UTF-8 turns into status 1007, as nats-server answers.
    Close {
        status: Option<u16>,
        reason: String,
    },
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    len: u64,
    mask: Option<[u8; 4]>,
    header_len: usize,
}

/// Resumable decoder of the frames a client sends.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    require_mask: bool,
    compression: bool,
    /// A data message is open: its final frame has not been seen yet.
    msg_open: bool,
    msg_compressed: bool,
    /// Inside a data frame's payload: bytes left, its mask and position, and its FIN bit.
    rem: u64,
    in_payload: bool,
    mask: Option<[u8; 4]>,
    mask_pos: usize,
    frame_fin: bool,
}

impl FrameDecoder {
    /// `require_mask`: reject unmasked frames (clients must mask). `compression`: accept
    /// RSV1 (permessage-deflate was negotiated).
    pub fn new(require_mask: bool, compression: bool) -> FrameDecoder {
        FrameDecoder {
            require_mask,
            compression,
            msg_open: false,
            msg_compressed: false,
            rem: 0,
            in_payload: false,
            mask: None,
            mask_pos: 0,
            frame_fin: false,
        }
    }

    /// Takes what it can from the front of `buf`. `Ok(None)`: more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<WsEvent>, WsError> {
        if self.in_payload {
            if buf.is_empty() {
                return Ok(None);
            }
            let n = (buf.len() as u64).min(self.rem) as usize;
            let mut payload = buf.split_to(n);
            if let Some(key) = self.mask {
                apply_mask(&mut payload, key, self.mask_pos);
                self.mask_pos = (self.mask_pos + n) & 3;
            }
            self.rem -= n as u64;
            let end = self.rem == 0 && self.frame_fin;
            if self.rem == 0 {
                self.in_payload = false;
            }
            return Ok(Some(WsEvent::Data { payload, compressed: self.msg_compressed, end }));
        }
        let Some(h) = self.header(buf)? else {
            return Ok(None);
        };
        if is_control(h.opcode) {
            let total = h.header_len + h.len as usize;
            if buf.len() < total {
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(h.len as usize);
            if let Some(key) = h.mask {
                apply_mask(&mut payload, key, 0);
            }
            return match h.opcode {
                OP_PING => Ok(Some(WsEvent::Ping(payload.freeze()))),
                OP_PONG => Ok(Some(WsEvent::Pong(payload.freeze()))),
                _ => parse_close(&payload).map(Some),
            };
        }
        buf.advance(h.header_len);
        if h.opcode != OP_CONTINUATION {
            self.msg_compressed = h.rsv1;
        }
        self.msg_open = !h.fin;
        self.frame_fin = h.fin;
        self.mask = h.mask;
        self.mask_pos = 0;
        self.rem = h.len;
        if h.len == 0 {
            return Ok(Some(WsEvent::Data {
                payload: BytesMut::new(),
                compressed: self.msg_compressed,
                end: h.fin,
            }));
        }
        self.in_payload = true;
        self.decode(buf)
    }

    /// Parses and checks the header at the front of `buf` without consuming it.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, WsError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 {
            return Err(WsError::ReservedBits);
        }
        if rsv1 && !self.compression {
            return Err(WsError::CompressionNotNegotiated);
        }
        let masked = b1 & 0x80 != 0;
        if self.require_mask && !masked {
            return Err(WsError::MaskMissing);
        }
        let len7 = b1 & 0x7f;
        let opcode = b0 & 0x0f;
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if len7 as usize > MAX_CONTROL_PAYLOAD {
                    return Err(WsError::ControlTooLong);
                }
                if !fin {
                    return Err(WsError::ControlFragmented);
                }
                if rsv1 {
                    return Err(WsError::ControlCompressed);
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.msg_open {
                    return Err(WsError::MessageInterleaved);
                }
            }
            OP_CONTINUATION => {
                if !self.msg_open || rsv1 {
                    return Err(WsError::BadContinuation);
                }
            }
            other => return Err(WsError::UnknownOpcode(other)),
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(None);
        }
        let len = match len7 {
            126 => u16::from_be_bytes([buf[2], buf[3]]) as u64,
            127 => {
                let l = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
                if l & (1 << 63) != 0 {
                    return Err(WsError::BadLength);
                }
                l
            }
            n => n as u64,
        };
        let mask = masked.then(|| {
            let at = 2 + ext;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Some(Header { fin, rsv1, opcode, len, mask, header_len }))
    }
}

fn is_control(opcode: u8) -> bool {
    opcode >= OP_CLOSE
}

fn parse_close(payload: &[u8]) -> Result<WsEvent, WsError> {
    match payload.len() {
        0 => Ok(WsEvent::Close { status: None, reason: String::new() }),
        1 => Err(WsError::CloseOneByte),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_status(code) {
                return Err(WsError::BadCloseStatus(code));
            }
            match std::str::from_utf8(&payload[2..]) {
                Ok(reason) => Ok(WsEvent::Close { status: Some(code), reason: reason.into() }),
                Err(_) => Ok(WsEvent::Close {
                    status: Some(status::INVALID_PAYLOAD),
                    reason: "invalid utf8 body in close frame".into(),
                }),
            }
        }
    }
}

/// Whether a peer may send this close status (RFC 6455 section 7.4).
pub fn is_valid_close_status(code: u16) -> bool {
    match code {
        1004 | 1005 | 1006 | 1015 => false,
        1016..=2999 => false,
        c => (1000..5000).contains(&c),
    }
}

/// The payload of a close frame: the status, then the reason, cut to fit the 125 bytes of a
/// control frame (with a trailing `...` as nats-server marks a cut reason).
pub fn close_payload(status: u16, reason: &str) -> Vec<u8> {
    let mut reason = reason;
    let mut cut = false;
    if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
        let mut end = MAX_CONTROL_PAYLOAD - 5;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason = &reason[..end];
        cut = true;
    }
    let mut out = Vec::with_capacity(MAX_CONTROL_PAYLOAD);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    if cut {
        out.extend_from_slice(b"...");
    }
    out
}

/// Length of the header [`encode_header`] writes.
pub fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    base + if masked { 4 } else { 0 }
}

/// Appends a frame header. `first`: the frame starts a message (carries the opcode; later
/// fragments are continuations). `compressed` sets RSV1 (only on a message's first frame).
/// With `mask`, the header carries the key and the caller masks the payload with
/// [`apply_mask`].
pub fn encode_header(
    out: &mut impl BufMut,
    opcode: u8,
    first: bool,
    fin: bool,
    compressed: bool,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let mut b0 = if first { opcode } else { OP_CONTINUATION };
    if fin {
        b0 |= 0x80;
    }
    if compressed {
        b0 |= 0x40;
    }
    let m = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    match len {
        0..=125 => out.put_u8(m | len as u8),
        126..=65535 => {
            out.put_u8(m | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(m | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(key) = mask {
        out.put_slice(&key);
    }
}

/// A whole frame (header and payload) in one buffer; masked with `mask` if given.
pub fn encode_frame(out: &mut BytesMut, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    encode_header(out, opcode, true, true, false, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// XORs `data` with the masking key, `offset` being the position of `data[0]` within the
/// frame's payload (masking is its own inverse, so this also unmasks).
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut wide = [0u8; 8];
    for (i, b) in wide.iter_mut().enumerate() {
        *b = key[(offset + i) & 3];
    }
    let wide = u64::from_ne_bytes(wide);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let w = u64::from_ne_bytes((&*c).try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&w.to_ne_bytes());
    }
    // The remainder starts a multiple of 8 (so of 4) bytes later: same phase as `offset`.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> BytesMut {
        let mut b = BytesMut::new();
        encode_frame(&mut b, opcode, payload, mask);
        b
    }

    /// Decodes everything in `buf`, concatenating data pieces per message.
    fn drain(d: &mut FrameDecoder, buf: &mut BytesMut) -> Result<Vec<WsEvent>, WsError> {
        let mut out = Vec::new();
        while let Some(ev) = d.decode(buf)? {
            out.push(ev);
        }
        Ok(out)
    }

    #[test]
    fn rfc_examples() {
        // RFC 6455 section 5.7: a single-frame masked text message "Hello".
        let mut b =
            BytesMut::from(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]);
        let mut d = FrameDecoder::new(true, false);
        let ev = d.decode(&mut b).unwrap().unwrap();
        assert_eq!(
            ev,
            WsEvent::Data { payload: BytesMut::from(&b"Hello"[..]), compressed: false, end: true }
        );
        assert!(b.is_empty());
        // The same, as the encoder writes it.
        assert_eq!(
            &frame(OP_TEXT, b"Hello", Some(KEY))[..],
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        // Unmasked 256-byte binary: 16-bit length.
        let f = frame(OP_BINARY, &[0u8; 256], None);
        assert_eq!(&f[..4], &[0x82, 0x7e, 0x01, 0x00]);
        // 64 KiB: 64-bit length.
        let f = frame(OP_BINARY, &vec![0u8; 65536], None);
        assert_eq!(&f[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(header_len(65536, false), 10);
        assert_eq!(header_len(125, true), 6);
        assert_eq!(header_len(126, false), 4);
    }

    #[test]
    fn data_is_handed_out_as_it_arrives() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let whole = frame(OP_BINARY, &payload, Some(KEY));
        let mut d = FrameDecoder::new(true, false);
        let mut got = Vec::new();
        let mut buf = BytesMut::new();
        // Fed 3 bytes at a time: pieces come out before the frame is complete.
        let mut pieces = 0;
        for chunk in whole.chunks(3) {
            buf.extend_from_slice(chunk);
            while let Some(ev) = d.decode(&mut buf).unwrap() {
                let WsEvent::Data { payload, end, .. } = ev else { panic!("{ev:?}") };
                got.extend_from_slice(&payload);
                pieces += 1;
                assert_eq!(end, got.len() == 1000);
            }
        }
        assert_eq!(got, payload);
        assert!(pieces > 100);
    }

    #[test]
    fn a_huge_frame_needs_no_buffer() {
        // A header announcing 64 MiB, then a few bytes: those bytes come out at once.
        let mut b = BytesMut::new();
        encode_header(&mut b, OP_BINARY, true, true, false, 64 << 20, Some(KEY));
        let mut data = b"PUB foo 5\r\n".to_vec();
        apply_mask(&mut data, KEY, 0);
        b.extend_from_slice(&data);
        let mut d = FrameDecoder::new(true, false);
        let WsEvent::Data { payload, end, .. } = d.decode(&mut b).unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(&payload[..], b"PUB foo 5\r\n");
        assert!(!end);
        assert_eq!(d.rem, (64 << 20) - 11);
    }

    #[test]
    fn fragments_and_interleaved_control_frames() {
        let mut b = BytesMut::new();
        encode_header(&mut b, OP_TEXT, true, false, false, 3, None);
        b.extend_from_slice(b"PUB");
        b.extend_from_slice(&frame(OP_PING, b"hi", None));
        encode_header(&mut b, OP_TEXT, false, true, false, 4, None);
        b.extend_from_slice(b" x 0");
        let mut d = FrameDecoder::new(false, false);
        let evs = drain(&mut d, &mut b).unwrap();
        assert_eq!(
            evs,
            vec![
                WsEvent::Data {
                    payload: BytesMut::from(&b"PUB"[..]),
                    compressed: false,
                    end: false
                },
                WsEvent::Ping(Bytes::from_static(b"hi")),
                WsEvent::Data {
                    payload: BytesMut::from(&b" x 0"[..]),
                    compressed: false,
                    end: true
                },
            ]
        );
    }

    #[test]
    fn compressed_messages() {
        let mut b = BytesMut::new();
        encode_header(&mut b, OP_BINARY, true, false, true, 2, None);
        b.extend_from_slice(b"ab");
        encode_header(&mut b, OP_BINARY, false, true, false, 0, None);
        let evs = drain(&mut FrameDecoder::new(false, true), &mut b.clone()).unwrap();
        assert_eq!(
            evs,
            vec![
                WsEvent::Data { payload: BytesMut::from(&b"ab"[..]), compressed: true, end: false },
                WsEvent::Data { payload: BytesMut::new(), compressed: true, end: true },
            ]
        );
        // Not negotiated.
        assert_eq!(
            FrameDecoder::new(false, false).decode(&mut b),
            Err(WsError::CompressionNotNegotiated)
        );
        // RSV1 on a continuation.
        let mut b = BytesMut::new();
        encode_header(&mut b, OP_BINARY, true, false, true, 0, None);
        encode_header(&mut b, OP_BINARY, false, true, true, 0, None);
        assert_eq!(
            drain(&mut FrameDecoder::new(false, true), &mut b),
            Err(WsError::BadContinuation)
        );
    }

    #[test]
    fn protocol_errors() {
        let check = |bytes: &[u8], mask: bool, want: WsError| {
            let mut b = BytesMut::from(bytes);
            assert_eq!(drain(&mut FrameDecoder::new(mask, false), &mut b), Err(want), "{bytes:?}");
        };
        check(&[0xa2, 0x00], false, WsError::ReservedBits);
        check(&[0x92, 0x00], false, WsError::ReservedBits);
        check(&[0x82, 0x00], true, WsError::MaskMissing);
        check(&[0x89, 126], false, WsError::ControlTooLong);
        check(&[0x09, 0x00], false, WsError::ControlFragmented);
        check(&[0xc9, 0x00], false, WsError::CompressionNotNegotiated);
        check(&[0x80, 0x00], false, WsError::BadContinuation);
        check(&[0x02, 0x00, 0x82, 0x00], false, WsError::MessageInterleaved);
        check(&[0x83, 0x00], false, WsError::UnknownOpcode(3));
        check(&[0x8b, 0x00], false, WsError::UnknownOpcode(11));
        check(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0], false, WsError::BadLength);
        check(&[0x88, 0x01, 0x03], false, WsError::CloseOneByte);
        check(&[0x88, 0x02, 0x03, 0xed], false, WsError::BadCloseStatus(1005));
        check(&[0x88, 0x02, 0x00, 0x10], false, WsError::BadCloseStatus(16));
        assert_eq!(WsError::UnknownOpcode(3).to_string(), "unknown opcode 3");
        assert_eq!(
            WsError::ControlTooLong.to_string(),
            "control frame length bigger than maximum allowed of 125 bytes"
        );
    }

    #[test]
    fn control_frames_wait_until_whole() {
        let f = frame(OP_PING, b"abcdef", Some(KEY));
        let mut d = FrameDecoder::new(true, false);
        let mut b = BytesMut::from(&f[..f.len() - 1]);
        assert_eq!(d.decode(&mut b), Ok(None));
        assert_eq!(b.len(), f.len() - 1, "nothing consumed");
        b.extend_from_slice(&f[f.len() - 1..]);
        assert_eq!(d.decode(&mut b), Ok(Some(WsEvent::Ping(Bytes::from_static(b"abcdef")))));
    }

    #[test]
    fn close_frames() {
        let mut d = FrameDecoder::new(false, false);
        let mut b = frame(OP_CLOSE, b"", None);
        assert_eq!(d.decode(&mut b), Ok(Some(WsEvent::Close { status: None, reason: "".into() })));
        let mut b = frame(OP_CLOSE, &close_payload(1000, "bye"), None);
        assert_eq!(
            d.decode(&mut b),
            Ok(Some(WsEvent::Close { status: Some(1000), reason: "bye".into() }))
        );
        let mut b = frame(OP_CLOSE, &[0x03, 0xe8, 0xff, 0xfe], None);
        assert_eq!(
            d.decode(&mut b),
            Ok(Some(WsEvent::Close {
                status: Some(status::INVALID_PAYLOAD),
                reason: "invalid utf8 body in close frame".into()
            }))
        );
        let long = "x".repeat(200);
        let p = close_payload(1002, &long);
        assert_eq!(p.len(), 125);
        assert!(p.ends_with(b"xx..."));
        let p = close_payload(1002, &"é".repeat(100));
        assert!(p.len() <= 125 && std::str::from_utf8(&p[2..]).is_ok());
        assert!(is_valid_close_status(1000) && is_valid_close_status(4999));
        assert!(!is_valid_close_status(999) && !is_valid_close_status(5000));
        assert!(!is_valid_close_status(2000) && !is_valid_close_status(1006));
    }

    #[test]
    fn mask_at_any_offset() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, KEY, 0);
        for split in [1, 3, 5, 8, 13, 100] {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, KEY, 0);
            apply_mask(b, KEY, split);
            assert_eq!(parts, whole, "split at {split}");
        }
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, data[i] ^ KEY[i % 4]);
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any sequence of messages, fragmented anyhow, masked, with pings between
            /// fragments, fed in arbitrary pieces: the decoder returns every message's bytes
            /// in order and every ping.
            #[test]
            fn roundtrip(
                msgs in proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..300), 1usize..4, any::<bool>()),
                    1..6,
                ),
                cut in 1usize..50,
                key in any::<[u8; 4]>(),
            ) {
                let mut wire = BytesMut::new();
                for (payload, frags, ping) in &msgs {
                    let size = payload.len().div_ceil(*frags).max(1);
                    let chunks: Vec<&[u8]> = if payload.is_empty() {
                        vec![&[][..]]
                    } else {
                        payload.chunks(size).collect()
                    };
                    for (i, c) in chunks.iter().enumerate() {
                        let fin = i + 1 == chunks.len();
                        encode_header(&mut wire, OP_BINARY, i == 0, fin, false, c.len(), Some(key));
                        let start = wire.len();
                        wire.extend_from_slice(c);
                        apply_mask(&mut wire[start..], key, 0);
                        if *ping && !fin {
                            encode_frame(&mut wire, OP_PING, b"p", Some(key));
                        }
                    }
                }
                let mut d = FrameDecoder::new(true, false);
                let mut buf = BytesMut::new();
                let mut got: Vec<Vec<u8>> = Vec::new();
                let mut cur = Vec::new();
                let mut pings = 0;
                for piece in wire.chunks(cut) {
                    buf.extend_from_slice(piece);
                    while let Some(ev) = d.decode(&mut buf).unwrap() {
                        match ev {
                            WsEvent::Data { payload, end, .. } => {
                                cur.extend_from_slice(&payload);
                                if end {
                                    got.push(std::mem::take(&mut cur));
                                }
                            }
                            WsEvent::Ping(p) => {
                                prop_assert_eq!(&p[..], b"p");
                                pings += 1;
                            }
                            other => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                }
                prop_assert!(buf.is_empty());
                let want: Vec<Vec<u8>> = msgs.iter().map(|m| m.0.clone()).collect();
                prop_assert_eq!(got, want);
                let want_pings: usize = msgs
                    .iter()
                    .map(|(p, f, ping)| {
                        let n = if p.is_empty() { 1 } else { p.chunks(p.len().div_ceil(*f).max(1)).count() };
                        if *ping { n - 1 } else { 0 }
                    })
                    .sum();
                prop_assert_eq!(pings, want_pings);
            }
        }
    }
}
