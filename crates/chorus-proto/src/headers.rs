//! `NATS/1.0` header blocks (ADR-4): building the status messages the server originates and
//! reading the status line of a block.

/// The no-responders status nats-server sends to a requester when nobody is subscribed to the
/// request subject: `NATS/1.0 503` plus `Nats-Subject` naming the request subject.
pub fn no_responders(subject: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(32 + subject.len());
    h.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    h.extend_from_slice(subject);
    h.extend_from_slice(b"\r\n\r\n");
    h
}

/// A header block with only a status line, e.g. `status_only(408, Some("Request Timeout"))`.
pub fn status_only(code: u16, description: Option<&str>) -> Vec<u8> {
    let mut h = format!("NATS/1.0 {code}");
    if let Some(d) = description {
        h.push(' ');
        h.push_str(d);
    }
    h.push_str("\r\n\r\n");
    h.into_bytes()
}

/// The status code of a header block, if its first line carries one.
pub fn status_code(block: &[u8]) -> Option<u16> {
    let line = block.strip_prefix(b"NATS/1.0")?;
    let line = &line[..line.iter().position(|&b| b == b'\r').unwrap_or(line.len())];
    let code = line.trim_ascii_start().split(|&b| b == b' ').next()?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The value of the first header named `name` (case-insensitive), if any.
pub fn get<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    block.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon].eq_ignore_ascii_case(name.as_bytes()).then(|| line[colon + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_responders_matches_nats_server_bytes() {
        // nats-server: "NATS/1.0 503\r\nNats-Subject: %s\r\n\r\n" with a length of 32 + len(subject).
        let h = no_responders(b"svc.echo");
        assert_eq!(h, b"NATS/1.0 503\r\nNats-Subject: svc.echo\r\n\r\n");
        assert_eq!(h.len(), 32 + "svc.echo".len());
        assert_eq!(status_code(&h), Some(503));
        assert_eq!(get(&h, "nats-subject"), Some(&b"svc.echo"[..]));
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"NATS/1.0\r\nA: b\r\n\r\n"), None);
        assert_eq!(status_code(&status_only(408, Some("Request Timeout"))), Some(408));
        assert_eq!(status_only(404, None), b"NATS/1.0 404\r\n\r\n");
        assert_eq!(get(b"NATS/1.0\r\nA: b\r\n\r\n", "B"), None);
    }
}
