//! Byte-for-byte compatibility with the Go encodings nats-server's JSON goes through:
//! `encoding/json` string escaping, `time.Time` (RFC 3339 with trimmed nanoseconds),
//! `time.Duration` text, `[]byte` as standard base64, and nats-server's lenient integer parser.
//!
//! Clients parse the JSON, so most of this only matters for differential tests that compare
//! our responses with the reference's bytes; the timestamp and base64 formats matter to every
//! client.

use std::fmt;
use std::io;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises like Go's `json.Marshal`: compact, and `<`, `>`, `&`, U+2028 and U+2029 inside
/// strings escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
pub fn to_json_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Our types have only string map keys and no non-finite floats, so this cannot fail.
    value.serialize(&mut ser).expect("JSON serialisation of API types");
    out
}

/// [`to_json_vec`] as a `String`.
pub fn to_json_string<T: Serialize + ?Sized>(value: &T) -> String {
    String::from_utf8(to_json_vec(value)).expect("serde_json emits UTF-8")
}

struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc)?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

// ---- time.Time -------------------------------------------------------------------------------

const NANOS_PER_SEC: i128 = 1_000_000_000;
/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const GO_ZERO_UNIX_SECS: i64 = -62_135_596_800;

/// A point in time as nats-server's JSON carries it: Go's `time.Time`, marshalled as RFC 3339
/// with up to nine fractional digits, trailing zeros trimmed (`2026-11-27T08:44:41.97035266Z`).
///
/// The default value is Go's zero time, `0001-01-01T00:00:00Z`, which is what an empty
/// stream reports as `first_ts`. Times parsed with a UTC offset keep it for formatting, as Go
/// does; everything the server itself produces is UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch (negative before 1970; Go's zero time is far below).
    unix_nanos: i128,
    /// The UTC offset the time is shown in, in seconds east of UTC.
    offset_secs: i32,
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.unix_nanos.cmp(&other.unix_nanos)
    }
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing time {0:?} as RFC 3339 failed")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// Go's zero `time.Time`.
    pub const ZERO: Timestamp =
        Timestamp { unix_nanos: GO_ZERO_UNIX_SECS as i128 * NANOS_PER_SEC, offset_secs: 0 };

    /// A UTC time from nanoseconds since the Unix epoch (what stores keep as `ts`).
    pub fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp { unix_nanos: nanos as i128, offset_secs: 0 }
    }

    /// Nanoseconds since the Unix epoch, saturating outside `i64` (Go's zero time included).
    pub fn unix_nanos(&self) -> i64 {
        self.unix_nanos.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    pub fn is_zero(&self) -> bool {
        self.unix_nanos == Timestamp::ZERO.unix_nanos
    }

    /// The same instant shown in UTC.
    pub fn to_utc(self) -> Timestamp {
        Timestamp { offset_secs: 0, ..self }
    }

    /// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` accepts it: `T` separator, optional
    /// fraction of 1 to 9 digits, `Z` or `±hh:mm`.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        parse_rfc3339(s.as_bytes()).ok_or_else(|| TimestampError(s.to_string()))
    }

    fn civil(&self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let local = self.unix_nanos + self.offset_secs as i128 * NANOS_PER_SEC;
        let secs = local.div_euclid(NANOS_PER_SEC) as i64;
        let nanos = local.rem_euclid(NANOS_PER_SEC) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, nanos)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, n) = self.civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if n > 0 {
            let frac = format!("{n:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        if self.offset_secs == 0 {
            f.write_str("Z")
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let off = self.offset_secs.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", off / 3600, off / 60 % 60)
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn parse_rfc3339(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(&frac[..n])? * 10u32.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])? as i32;
            let m = digits(&[*m1, *m2])? as i32;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64;
    let utc = local - offset_secs as i64;
    Some(Timestamp { unix_nanos: utc as i128 * NANOS_PER_SEC + nanos as i128, offset_secs })
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// A system time as Go's `time.Time` marshals it in UTC (`time.RFC3339Nano`: fraction trimmed
/// of trailing zeros). Monitoring and `$SYS` JSON use it.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let nanos = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Timestamp { unix_nanos: nanos, offset_secs: 0 }.to_string()
}

// ---- time.Duration ---------------------------------------------------------------------------

/// Go's `time.Duration.String()`: `1m0s`, `1h30m0s`, `1.5s`, `500ms`, `1µs`, `0s`.
/// nats-server puts it in some error texts (`"... server limit of 1m0s"`).
pub fn duration_string(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, prec) = match u {
            0 => return "0s".into(),
            1..=999 => ("ns", 0),
            1_000..=999_999 => ("µs", 3),
            _ => ("ms", 6),
        };
        out.push_str(&frac(u, prec));
        out.push_str(unit);
    } else {
        let secs_frac = frac(u % 60_000_000_000, 9);
        u /= 60_000_000_000;
        let mut head = String::new();
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                head = format!("{u}h");
            }
            head.push_str(&format!("{mins}m"));
        }
        out = format!("{head}{secs_frac}s");
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / 10^prec` printed with the fraction's trailing zeros (and a bare dot) removed.
fn frac(v: u64, prec: u32) -> String {
    if prec == 0 {
        return v.to_string();
    }
    let p = 10u64.pow(prec);
    let (int, f) = (v / p, v % p);
    if f == 0 {
        return int.to_string();
    }
    let fs = format!("{f:0width$}", width = prec as usize);
    format!("{int}.{}", fs.trim_end_matches('0'))
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with optional fractions and
/// units (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5s`, `-2m`; a bare `0`
/// is allowed. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let err = || DurationError(s.to_string());
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, r) = rest.split_at(int_len);
        rest = r;
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..n];
            rest = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        let (unit, r) = rest.split_at(unit_len);
        rest = r;
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let int: u64 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| err())? };
        if int > (1u64 << 63) / scale {
            return Err(err());
        }
        let mut v = int * scale;
        // Go keeps the fraction's digits as an integer over a power-of-ten scale (dropping
        // digits that would overflow) and adds it through a float, which we mirror.
        let (mut f, mut fscale, mut overflow) = (0u64, 1f64, false);
        for c in frac_part.bytes() {
            if overflow {
                continue;
            }
            match f.checked_mul(10).and_then(|x| x.checked_add((c - b'0') as u64)) {
                Some(x) if x <= 1u64 << 63 => {
                    f = x;
                    fscale *= 10.0;
                }
                _ => overflow = true,
            }
        }
        if f > 0 {
            v += (f as f64 * (scale as f64 / fscale)) as u64;
            if v > 1u64 << 63 {
                return Err(err());
            }
        }
        total = total.checked_add(v).ok_or_else(err)?;
        if total > i64::MAX as u64 + neg as u64 {
            return Err(err());
        }
    }
    Ok(if neg { (total as i64).wrapping_neg() } else { total as i64 })
}

/// nats-server's `parseInt64`: ASCII digits only, no sign; anything else (or nothing) is -1.
/// Overflow wraps, as the Go arithmetic does.
pub fn parse_int64(d: &[u8]) -> i64 {
    if d.is_empty() {
        return -1;
    }
    let mut n: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return -1;
        }
        n = n.wrapping_mul(10).wrapping_add((c - b'0') as i64);
    }
    n
}

// ---- []byte as base64 ------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Go's JSON encodes `[]byte`.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why base64 did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal base64 data at input byte {0}")]
pub struct Base64Error(pub usize);

/// Decodes standard base64 (padding required, as Go's `StdEncoding`; `\r` and `\n` ignored).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    let clean: Vec<(usize, u8)> =
        s.bytes().enumerate().filter(|&(_, c)| c != b'\r' && c != b'\n').collect();
    if !clean.len().is_multiple_of(4) {
        return Err(Base64Error(clean.last().map_or(0, |&(i, _)| i)));
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for (q, quad) in clean.chunks(4).enumerate() {
        let last = q == clean.len() / 4 - 1;
        let mut n = 0u32;
        let mut pad = 0;
        for (j, &(pos, c)) in quad.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && j >= 2 => {
                    pad += 1;
                    0
                }
                _ => return Err(Base64Error(pos)),
            };
            if pad > 0 && c != b'=' {
                return Err(Base64Error(pos));
            }
            n = n << 6 | v as u32;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// Serde adapter for `Bytes` fields carried as base64 strings (Go `[]byte`).
pub mod base64_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::base64_encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s {
            None => Ok(Bytes::new()),
            Some(s) => super::base64_decode(&s).map(Bytes::from).map_err(serde::de::Error::custom),
        }
    }
}

/// Deserialises JSON `null` as the type's default, as Go leaves a field untouched on `null`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A nats-server enum that travels as a JSON string: generates `as_str`, `parse` (exact
/// spelling, plus an optional extra accepted spelling) and `Serialize`. `Deserialize` is left
/// to the caller, because nats-server's unmarshal errors (which end up in API error texts)
/// are worded differently for stream and consumer enums.
macro_rules! json_string_enum {
    ($ty:ident, $( $variant:ident = $text:literal ),+ $(; extra $etext:literal => $evariant:ident)?) => {
        impl $ty {
            /// The JSON spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $( $ty::$variant => $text, )+ }
            }

            /// Parses the JSON spelling (exact case, as nats-server).
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $( $text => Some($ty::$variant), )+
                    $( $etext => Some($ty::$evariant), )?
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use json_string_enum;

// ---- strconv.Quote -------------------------------------------------------------------------

/// Go's `strconv.Quote` (and `%q`) for the strings nats-server quotes in its error texts.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// Appends `s` quoted as [`quote`] does.
pub fn quote_into(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html_characters() {
        let v = serde_json::json!({"subjects": ["a.>", "<&>"], "n": -1, "s": "\u{2028}x\n"});
        assert_eq!(
            to_json_string(&v),
            r#"{"n":-1,"s":"\u2028x\n","subjects":["a.\u003e","\u003c\u0026\u003e"]}"#
        );
    }

    #[test]
    fn timestamps_format_like_go() {
        assert_eq!(Timestamp::ZERO.to_string(), "0001-01-01T00:00:00Z");
        assert_eq!(Timestamp::default(), Timestamp::ZERO);
        assert!(Timestamp::ZERO.is_zero());
        // Trailing zeros of the fraction are trimmed, as in the reference's "created".
        let t = Timestamp::parse("2026-11-27T08:44:41.970352660Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T08:44:41.97035266Z");
        assert_eq!(Timestamp::from_unix_nanos(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_unix_nanos(1_500_000_000).to_string(), "1970-01-01T00:00:01.5Z");
        assert_eq!(Timestamp::from_unix_nanos(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
        let t = Timestamp::parse("2024-02-29T23:59:59.000000001Z").unwrap();
        assert_eq!(t.unix_nanos(), 1_709_251_199_000_000_001);
        assert_eq!(Timestamp::from_unix_nanos(t.unix_nanos()), t);
    }

    #[test]
    fn timestamps_keep_their_offset() {
        let t = Timestamp::parse("2024-01-02T03:04:05.5+02:00").unwrap();
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.5+02:00");
        assert_eq!(t.to_utc().to_string(), "2024-01-02T01:04:05.5Z");
        let z = Timestamp::parse("2024-01-02T01:04:05.5Z").unwrap();
        assert_eq!(t.cmp(&z), std::cmp::Ordering::Equal);
        for bad in [
            "",
            "2024-01-02",
            "2024-01-02 03:04:05Z",
            "2024-13-02T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05.1234567890Z",
            "2024-01-02T03:04:05+2:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in (-800_000i64..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1, 1, 1) * 86_400, GO_ZERO_UNIX_SECS);
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (120_000_000_000, "2m0s"),
            (5_400_000_000_000, "1h30m0s"),
            (3_600_000_000_001, "1h0m0.000000001s"),
            (-60_000_000_000, "-1m0s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (n, s) in cases {
            assert_eq!(duration_string(n), s, "{n}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        let ok = [
            ("0", 0),
            ("5s", 5_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5s", 1_500_000_000),
            (".5s", 500_000_000),
            ("500ms", 500_000_000),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("-2m", -120_000_000_000),
            ("+3ns", 3),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
        ];
        for (s, n) in ok {
            assert_eq!(parse_duration(s), Ok(n), "{s}");
        }
        for bad in ["", "10", "s", "1x", "1.s.", "-", ".s", "1 s", "9999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nats_parse_int64() {
        assert_eq!(parse_int64(b"123"), 123);
        assert_eq!(parse_int64(b""), -1);
        assert_eq!(parse_int64(b"-1"), -1);
        assert_eq!(parse_int64(b"12a"), -1);
        assert_eq!(parse_int64(b" 1"), -1);
        assert_eq!(parse_int64(b"18446744073709551615") as u64, u64::MAX);
    }

    #[test]
    fn base64_matches_go_std_encoding() {
        // From the reference's MSG.GET response: "NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n".
        let hdr = b"NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n";
        assert_eq!(base64_encode(hdr), "TkFUUy8xLjANCk5hdHMtTXNnLUlkOiBtMQ0KDQo=");
        assert_eq!(base64_encode(b"two"), "dHdv");
        assert_eq!(base64_encode(b"five"), "Zml2ZQ==");
        assert_eq!(base64_encode(b""), "");
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0xff, 0x00, 0x80]] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert!(base64_decode("abc").is_err());
        assert!(base64_decode("a=bc").is_err());
        assert!(base64_decode("ab=c").is_err());
        assert!(base64_decode("ab!c").is_err());
    }

    #[test]
    fn quote_escapes_as_strconv() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("\x07\x08\x0c\n\r\t\x0b\x01\x7f"), "\"\\a\\b\\f\\n\\r\\t\\v\\x01\\x7f\"");
        assert_eq!(quote("µs"), "\"µs\"");
    }

    #[test]
    fn rfc3339_of_system_times() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_795_766_726, 244_504_300);
        assert_eq!(rfc3339(t), "2026-11-27T08:05:26.2445043Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }
}
