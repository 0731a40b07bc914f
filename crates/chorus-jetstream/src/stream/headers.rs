//! `NATS/1.0` header blocks (ADR-4) as nats-server's JetStream code reads and edits them.
//!
//! nats-server looks headers up with its own fast scanner rather than a parsed map: the key
//! must start a line and be followed directly by `:`; the match is case-sensitive; the value
//! runs from the first non-space byte to the end of the line; the first occurrence wins. The
//! publish rules depend on that (a lower-case `nats-expected-stream` is not a precondition),
//! so [`get`] reproduces it. [`parse`] gives the whole block as a list, for everything else.

/// The line every header block starts with.
pub const HDR_LINE: &str = "NATS/1.0\r\n";
const EMPTY_HDR: &str = "NATS/1.0\r\n\r\n";

/// Byte offset of `key` in `hdr` under nats-server's rules (`getHeaderKeyIndex`).
fn key_index(hdr: &[u8], key: &str) -> Option<usize> {
    let k = key.as_bytes();
    let mut offset = 0;
    loop {
        let found = memchr::memmem::find(&hdr[offset..], k)?;
        let index = offset + found;
        if index < 2 {
            return None;
        }
        if index >= hdr.len() - 1 || hdr[index - 1] != b'\n' || hdr[index - 2] != b'\r' {
            offset = index + k.len();
            continue;
        }
        if index + k.len() >= hdr.len() {
            return None;
        }
        if hdr[index + k.len()] != b':' {
            offset = index + k.len();
            continue;
        }
        return Some(index);
    }
}

/// The value of header `key` (nats-server's `sliceHeader`): `Some(b"")` for a present but
/// empty value. Most JetStream checks treat empty as absent.
pub fn get<'a>(hdr: &'a [u8], key: &str) -> Option<&'a [u8]> {
    if hdr.is_empty() {
        return None;
    }
    let mut i = key_index(hdr, key)? + key.len() + 1;
    while i < hdr.len() && hdr[i] == b' ' {
        i += 1;
    }
    let start = i;
    while i < hdr.len() {
        if hdr[i] == b'\r' && i < hdr.len() - 1 && hdr[i + 1] == b'\n' {
            break;
        }
        i += 1;
    }
    Some(&hdr[start..i])
}

/// The value of `key` if present and non-empty.
pub fn get_non_empty<'a>(hdr: &'a [u8], key: &str) -> Option<&'a [u8]> {
    get(hdr, key).filter(|v| !v.is_empty())
}

/// [`get_non_empty`] as UTF-8 text (lossy: JetStream header values are ASCII in practice).
pub fn get_str(hdr: &[u8], key: &str) -> Option<String> {
    get_non_empty(hdr, key).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Appends `key: value` before the block's final CRLF (nats-server's `genHeader`), starting a
/// new block when `hdr` is empty.
pub fn append(hdr: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(hdr.len() + key.len() + value.len() + 16);
    if hdr.len() > 2 {
        out.extend_from_slice(&hdr[..hdr.len() - 2]);
    } else {
        out.extend_from_slice(HDR_LINE.as_bytes());
    }
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b": ");
    // Go's http.Header.Write: newlines become spaces, surrounding blanks are trimmed.
    let clean: String =
        value.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
    out.extend_from_slice(clean.trim_matches([' ', '\t']).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// Removes every `key` line (nats-server's `removeHeaderIfPresent`); an emptied block becomes
/// no block at all.
pub fn remove(hdr: &[u8], key: &str) -> Vec<u8> {
    let mut hdr = hdr.to_vec();
    loop {
        let Some(start) = key_index(&hdr, key) else {
            return hdr;
        };
        if start < 1 || hdr[start - 1] != b'\n' {
            return hdr;
        }
        let Some(end) = memchr::memmem::find(&hdr[start..], b"\r\n") else {
            return hdr;
        };
        hdr.drain(start..start + end + 2);
        if hdr.len() <= EMPTY_HDR.len() {
            return Vec::new();
        }
    }
}

/// Replaces the value of the first `key` line, or appends one (nats-server's `setHeader`).
pub fn set(hdr: &[u8], key: &str, value: &str) -> Vec<u8> {
    if let Some(start) = key_index(hdr, key) {
        let mut vs = start + key.len() + 1;
        if vs < hdr.len() && hdr[vs] == b' ' {
            vs += 1;
        }
        let Some(ve) = memchr::memchr(b'\r', &hdr[vs..]) else {
            return hdr.to_vec();
        };
        let mut out = hdr[..vs].to_vec();
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(&hdr[vs + ve..]);
        return out;
    }
    let mut out = hdr.to_vec();
    let mut value = value.to_string();
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
        value.push_str("\r\n");
    }
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// A parsed header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    /// The status code of `NATS/1.0 <code> <description>`, if any.
    pub status: Option<u16>,
    pub description: String,
    /// Headers in order, names as sent, values trimmed.
    pub entries: Vec<(String, String)>,
}

impl HeaderBlock {
    /// The first value of `name`, compared case-insensitively (client semantics).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All values of `name`, case-insensitively.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a header block did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header block does not start with NATS/1.0")]
    NoVersionLine,
    #[error("header line without a colon: {0:?}")]
    NoColon(String),
}

/// Parses a whole block into its status line and entries. Lines that are empty end the
/// block.
pub fn parse(block: &[u8]) -> Result<HeaderBlock, HeaderError> {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let rest = first.strip_prefix("NATS/1.0").ok_or(HeaderError::NoVersionLine)?;
    let mut out = HeaderBlock::default();
    let rest = rest.trim();
    if !rest.is_empty() {
        let (code, desc) = rest.split_once(' ').unwrap_or((rest, ""));
        out.status = code.parse().ok();
        out.description = desc.trim().to_string();
    }
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| HeaderError::NoColon(line.into()))?;
        out.entries.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &[u8] =
        b"NATS/1.0\r\nNats-Msg-Id: m1\r\nX-Nats-Msg-Id: no\r\nFoo:  bar \r\nE:\r\n\r\n";

    #[test]
    fn lookup_follows_nats_server() {
        assert_eq!(get(H, "Nats-Msg-Id"), Some(&b"m1"[..]));
        assert_eq!(get(H, "nats-msg-id"), None, "case-sensitive");
        assert_eq!(get(H, "Msg-Id"), None, "must start a line");
        assert_eq!(get(H, "Foo"), Some(&b"bar "[..]), "leading spaces skipped, trailing kept");
        assert_eq!(get(H, "E"), Some(&b""[..]));
        assert_eq!(get_non_empty(H, "E"), None);
        assert_eq!(get(b"", "Foo"), None);
        assert_eq!(get(b"NATS/1.0\r\nFooBar: x\r\n\r\n", "Foo"), None);
        // nats-server gives up when the first match is inside "NATS/1.0" at offset 0 or 1,
        // so single-letter keys like "A" or "N" are never found. We keep that.
        assert_eq!(get(b"NATS/1.0\r\nA: x\r\n\r\n", "A"), None);
        assert_eq!(get(b"NATS/1.0\r\nT: x\r\n\r\n", "T"), Some(&b"x"[..]));
    }

    #[test]
    fn editing() {
        let h = append(b"", "Nats-TTL", "5");
        assert_eq!(h, b"NATS/1.0\r\nNats-TTL: 5\r\n\r\n");
        let h = append(&h, "Nats-Stream", "S");
        assert_eq!(h, b"NATS/1.0\r\nNats-TTL: 5\r\nNats-Stream: S\r\n\r\n");
        assert_eq!(remove(&h, "Nats-TTL"), b"NATS/1.0\r\nNats-Stream: S\r\n\r\n");
        assert_eq!(remove(&remove(&h, "Nats-TTL"), "Nats-Stream"), b"");
        assert_eq!(
            set(&h, "Nats-TTL", "600"),
            b"NATS/1.0\r\nNats-TTL: 600\r\nNats-Stream: S\r\n\r\n"
        );
        assert_eq!(
            set(&h, "New", "v"),
            b"NATS/1.0\r\nNats-TTL: 5\r\nNats-Stream: S\r\nNew: v\r\n\r\n"
        );
    }

    #[test]
    fn parsing() {
        let b = parse(b"NATS/1.0 404 Message Not Found\r\n\r\n").unwrap();
        assert_eq!((b.status, b.description.as_str()), (Some(404), "Message Not Found"));
        let b = parse(H).unwrap();
        assert_eq!(b.status, None);
        assert_eq!(b.get("nats-msg-id"), Some("m1"));
        assert_eq!(b.get("foo"), Some("bar"));
        assert_eq!(b.entries.len(), 4);
        assert_eq!(parse(b"HTTP/1.1\r\n\r\n"), Err(HeaderError::NoVersionLine));
    }
}
