//! Keys and record encodings of the FileStore database (layout in the crate docs).
//!
//! Every value carries a CRC-32 computed over its key and its bytes, so a value that is damaged
//! or that ends up under the wrong key fails verification.

use crate::engine::{IndexEntry, MsgMeta, SeqState};
use crate::types::{MsgTtl, StoredMsg, file_msg_size};
use bytes::Bytes;

/// Column family of message records.
pub const CF_MESSAGES: &str = "messages";
/// Column family of the per-subject index.
pub const CF_SUBJECTS: &str = "subjects";
/// Column family of stream and consumer metadata.
pub const CF_META: &str = "meta";
/// Column family reserved for raft logs.
pub const CF_RAFT: &str = "raft";

/// Version of this layout, stored under [`META_VERSION`].
pub const FORMAT_VERSION: u32 = 1;

/// `meta` key of the layout version.
pub const META_VERSION: &[u8] = b"V";
/// `meta` key of the next stream id.
pub const META_NEXT_ID: &[u8] = b"N";
const META_STREAM: u8 = b'S';
const META_SEQS: u8 = b'Q';
const META_CONSUMER: u8 = b'C';

const RECORD_VERSION: u8 = 1;
const FLAG_HEADERS: u8 = 1;
/// Fixed part of a message record, before the subject.
const RECORD_FIXED: usize = 28;
const CRC_LEN: usize = 4;

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// `messages` key: stream id and sequence, big-endian so keys sort by (stream, seq).
pub fn message_key(stream_id: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&stream_id.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Sequence of a `messages` key of the given stream.
pub fn message_key_seq(key: &[u8]) -> Option<u64> {
    (key.len() == 16).then(|| u64::from_be_bytes(key[8..].try_into().expect("8 bytes")))
}

/// The bounds `[id, id + 1)` that hold every key of a stream in `messages` and `subjects`.
pub fn stream_range(stream_id: u64) -> ([u8; 8], [u8; 8]) {
    (stream_id.to_be_bytes(), (stream_id + 1).to_be_bytes())
}

/// `subjects` key prefix of one subject: stream id, subject length (u16 BE), subject.
pub fn subject_prefix(stream_id: u64, subject: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(18 + subject.len());
    k.extend_from_slice(&stream_id.to_be_bytes());
    k.extend_from_slice(&(subject.len() as u16).to_be_bytes());
    k.extend_from_slice(subject.as_bytes());
    k
}

/// `subjects` key: [`subject_prefix`] followed by the sequence (BE).
pub fn subject_key(stream_id: u64, subject: &str, seq: u64) -> Vec<u8> {
    let mut k = subject_prefix(stream_id, subject);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a `subjects` key into (subject, seq).
pub fn parse_subject_key(key: &[u8]) -> Option<(&[u8], u64)> {
    if key.len() < 18 {
        return None;
    }
    let len = u16::from_be_bytes([key[8], key[9]]) as usize;
    if key.len() != 18 + len {
        return None;
    }
    let seq = u64::from_be_bytes(key[10 + len..].try_into().ok()?);
    Some((&key[10..10 + len], seq))
}

/// Message record:
/// `version u8 | flags u8 | ts i64 | ttl i64 | subject_len u16 | headers_len u32 |
/// meta_crc u32 | subject | headers | payload | body_crc u32`, integers little-endian.
/// `meta_crc` covers key + the first 24 bytes + subject, so removals can trust a record's
/// subject and size without hashing the payload; `body_crc` covers key + headers + payload.
pub fn encode_message(
    key: &[u8],
    subject: &str,
    headers: Option<&[u8]>,
    payload: &[u8],
    ts: i64,
    ttl: MsgTtl,
) -> Vec<u8> {
    let hdr = headers.unwrap_or(&[]);
    let mut v =
        Vec::with_capacity(RECORD_FIXED + subject.len() + hdr.len() + payload.len() + CRC_LEN);
    v.push(RECORD_VERSION);
    v.push(if headers.is_some() { FLAG_HEADERS } else { 0 });
    v.extend_from_slice(&ts.to_le_bytes());
    v.extend_from_slice(&ttl.to_raw().to_le_bytes());
    v.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    v.extend_from_slice(&(hdr.len() as u32).to_le_bytes());
    let meta_crc = crc(&[key, &v[..24], subject.as_bytes()]);
    v.extend_from_slice(&meta_crc.to_le_bytes());
    v.extend_from_slice(subject.as_bytes());
    v.extend_from_slice(hdr);
    v.extend_from_slice(payload);
    let body_crc = crc(&[key, hdr, payload]);
    v.extend_from_slice(&body_crc.to_le_bytes());
    v
}

/// The subject bytes of a record built by [`encode_message`] (unverified: for records this
/// process built and still holds, such as buffered writes).
pub(crate) fn record_subject(record: &[u8]) -> &[u8] {
    let len = record.get(18..20).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    record.get(28..28 + len).unwrap_or_default()
}

/// The parts of a message record whose meta checksum holds.
struct Parsed<'a> {
    flags: u8,
    ts: i64,
    ttl: i64,
    subject: &'a [u8],
    headers: &'a [u8],
    payload: &'a [u8],
    body_crc: u32,
}

fn parse_message<'a>(key: &[u8], v: &'a [u8]) -> Result<Parsed<'a>, String> {
    if v.len() < RECORD_FIXED + CRC_LEN {
        return Err(format!("record of {} bytes is too short", v.len()));
    }
    if v[0] != RECORD_VERSION {
        return Err(format!("unknown record version {}", v[0]));
    }
    let slen = u16::from_le_bytes([v[18], v[19]]) as usize;
    let hlen = u32_at(v, 20) as usize;
    if RECORD_FIXED + slen + hlen + CRC_LEN > v.len() {
        return Err("record lengths exceed its size".into());
    }
    let subject = &v[RECORD_FIXED..RECORD_FIXED + slen];
    if crc(&[key, &v[..24], subject]) != u32_at(v, 24) {
        return Err("header checksum mismatch".into());
    }
    let body = &v[RECORD_FIXED + slen..v.len() - CRC_LEN];
    Ok(Parsed {
        flags: v[1],
        ts: i64_at(v, 2),
        ttl: i64_at(v, 10),
        subject,
        headers: &body[..hlen],
        payload: &body[hlen..],
        body_crc: u32_at(v, v.len() - CRC_LEN),
    })
}

fn subject_str(s: &[u8]) -> Result<String, String> {
    String::from_utf8(s.to_vec()).map_err(|_| "subject is not UTF-8".to_string())
}

/// Decodes the header of a record, verifying only the meta checksum.
pub(crate) fn decode_meta(key: &[u8], v: &[u8]) -> Result<MsgMeta, String> {
    let p = parse_message(key, v)?;
    let ttl = MsgTtl::from_raw(p.ttl);
    Ok(MsgMeta {
        subject: subject_str(p.subject)?,
        size: file_msg_size(p.subject.len(), p.headers.len(), p.payload.len()),
        ts: p.ts,
        expires: ttl.expires_at(p.ts).unwrap_or(0),
        ttl_never: ttl == MsgTtl::Never,
    })
}

/// Decodes and fully verifies a record.
pub(crate) fn decode_message(key: &[u8], seq: u64, v: &[u8]) -> Result<StoredMsg, String> {
    let p = parse_message(key, v)?;
    if crc(&[key, p.headers, p.payload]) != p.body_crc {
        return Err("body checksum mismatch".into());
    }
    Ok(StoredMsg {
        seq,
        timestamp: p.ts,
        subject: subject_str(p.subject)?,
        headers: (p.flags & FLAG_HEADERS != 0).then(|| Bytes::copy_from_slice(p.headers)),
        payload: Bytes::copy_from_slice(p.payload),
        ttl: MsgTtl::from_raw(p.ttl),
    })
}

/// Index value: `size u64 | expires i64 | crc u32`.
pub(crate) fn encode_index(key: &[u8], size: u64, expires: i64) -> [u8; 20] {
    let mut v = [0u8; 20];
    v[..8].copy_from_slice(&size.to_le_bytes());
    v[8..16].copy_from_slice(&expires.to_le_bytes());
    let c = crc(&[key, &v[..16]]);
    v[16..].copy_from_slice(&c.to_le_bytes());
    v
}

pub(crate) fn decode_index(key: &[u8], seq: u64, v: &[u8]) -> Result<IndexEntry, String> {
    if v.len() != 20 {
        return Err(format!("index value of {} bytes", v.len()));
    }
    if crc(&[key, &v[..16]]) != u32_at(v, 16) {
        return Err("index checksum mismatch".into());
    }
    Ok(IndexEntry { seq, size: u64_at(v, 0), expires: i64_at(v, 8) })
}

/// Appends a CRC of key + value to a metadata value.
pub(crate) fn seal(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + CRC_LEN);
    v.extend_from_slice(value);
    v.extend_from_slice(&crc(&[key, value]).to_le_bytes());
    v
}

/// Verifies and strips the CRC added by [`seal`].
pub(crate) fn unseal<'a>(key: &[u8], v: &'a [u8]) -> Option<&'a [u8]> {
    if v.len() < CRC_LEN {
        return None;
    }
    let (body, c) = v.split_at(v.len() - CRC_LEN);
    (crc(&[key, body]) == u32::from_le_bytes(c.try_into().ok()?)).then_some(body)
}

/// `meta` key of a stream's definition (value: id u64 LE + config blob, sealed).
pub(crate) fn stream_meta_key(name: &str) -> Vec<u8> {
    let mut k = vec![META_STREAM];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of all stream definition keys.
pub(crate) fn stream_meta_prefix() -> [u8; 1] {
    [META_STREAM]
}

/// `meta` key of a stream's sequence watermarks.
pub(crate) fn seqs_key(stream_id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = META_SEQS;
    k[1..].copy_from_slice(&stream_id.to_be_bytes());
    k
}

pub(crate) fn encode_seqs(s: &SeqState) -> [u8; 24] {
    let mut v = [0u8; 24];
    v[..8].copy_from_slice(&s.first_seq.to_le_bytes());
    v[8..16].copy_from_slice(&s.last_seq.to_le_bytes());
    v[16..].copy_from_slice(&s.last_ts.to_le_bytes());
    v
}

pub(crate) fn decode_seqs(v: &[u8]) -> Option<SeqState> {
    (v.len() == 24).then(|| SeqState {
        first_seq: u64_at(v, 0),
        last_seq: u64_at(v, 8),
        last_ts: i64_at(v, 16),
    })
}

/// Prefix of a stream's consumer keys: tag, stream id (BE).
pub(crate) fn consumer_prefix(stream_id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = META_CONSUMER;
    k[1..].copy_from_slice(&stream_id.to_be_bytes());
    k
}

/// `meta` key of a consumer's state blob.
pub(crate) fn consumer_key(stream_id: u64, consumer: &str) -> Vec<u8> {
    let mut k = consumer_prefix(stream_id).to_vec();
    k.extend_from_slice(consumer.as_bytes());
    k
}

/// Smallest key greater than every key starting with `prefix` (None if there is none).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip_and_damage_detection() {
        let key = message_key(7, 42);
        let v = encode_message(
            &key,
            "a.b",
            Some(b"NATS/1.0\r\n\r\n"),
            b"hello",
            99,
            MsgTtl::Seconds(5),
        );
        let m = decode_message(&key, 42, &v).unwrap();
        assert_eq!(m.subject, "a.b");
        assert_eq!(m.headers.as_deref(), Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(&m.payload[..], b"hello");
        assert_eq!((m.timestamp, m.ttl), (99, MsgTtl::Seconds(5)));
        let meta = decode_meta(&key, &v).unwrap();
        assert_eq!(meta.size, file_msg_size(3, 12, 5));
        assert_eq!(meta.expires, 99 + 5_000_000_000);

        // A flipped payload byte fails the body but not the header check.
        let mut bad = v.clone();
        let n = bad.len();
        bad[n - 6] ^= 0x40;
        assert!(decode_meta(&key, &bad).is_ok());
        assert!(decode_message(&key, 42, &bad).is_err());
        // A flipped subject byte fails both.
        let mut bad = v.clone();
        bad[RECORD_FIXED] ^= 1;
        assert!(decode_meta(&key, &bad).is_err());
        // The same bytes under another key fail too.
        assert!(decode_message(&message_key(7, 43), 43, &v).is_err());
        assert!(decode_message(&key, 42, &v[..10]).is_err());
    }

    #[test]
    fn keys_sort_by_stream_then_sequence() {
        assert!(message_key(1, u64::MAX) < message_key(2, 0));
        assert!(message_key(1, 255) < message_key(1, 256));
        let (lo, hi) = stream_range(1);
        assert!(lo.as_slice() < message_key(1, 0).as_slice());
        assert!(message_key(1, u64::MAX).as_slice() < hi.as_slice());
        let k = subject_key(3, "x.y", 9);
        assert_eq!(parse_subject_key(&k), Some((&b"x.y"[..], 9)));
        assert!(subject_key(3, "x.y", 9) < subject_key(3, "x.y", 10));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
    }

    #[test]
    fn sealed_values_detect_damage() {
        let s = seal(b"k", b"value");
        assert_eq!(unseal(b"k", &s), Some(&b"value"[..]));
        assert_eq!(unseal(b"j", &s), None);
        let mut bad = s.clone();
        bad[0] ^= 1;
        assert_eq!(unseal(b"k", &bad), None);
        let idx = encode_index(b"key", 10, 20);
        assert_eq!(decode_index(b"key", 1, &idx).unwrap().size, 10);
        assert!(decode_index(b"kez", 1, &idx).is_err());
    }
}
