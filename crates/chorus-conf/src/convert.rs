//! Typed reads of [`Value`]s that collect errors and warnings instead of stopping at the
//! first one, as nats-server does when it processes a configuration.

use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::error::{ConfError, Warning};
use crate::value::{Entry, Map, Value, ValueKind};

/// `parent.key`, or `key` at the top.
pub(crate) fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

#[derive(Default)]
pub(crate) struct Cx {
    pub errors: Vec<ConfError>,
    pub warnings: Vec<Warning>,
}

impl Cx {
    pub fn error(&mut self, key: &str, v: &Value, msg: impl Into<String>) {
        self.errors.push(ConfError::Invalid {
            file: v.file().map(Into::into),
            key: key.to_string(),
            line: v.line,
            msg: msg.into(),
        });
    }

    pub fn warn(&mut self, key: &str, v: &Value, msg: impl Into<String>) {
        self.warnings.push(Warning {
            file: v.file().map(Into::into),
            key: key.to_string(),
            line: v.line,
            message: msg.into(),
        });
    }

    /// Reports a key this block does not know, unless it only served as a variable.
    pub fn unknown(&mut self, parent: &str, e: &Entry) {
        if !e.used_as_variable {
            self.warn(&path(parent, &e.key), &e.value, format!("unknown field {:?}", e.key));
        }
    }

    fn expected(&mut self, key: &str, v: &Value, what: &str) {
        self.error(key, v, format!("expected {what}, got {}", v.describe()));
    }

    pub fn string(&mut self, key: &str, v: &Value) -> Option<String> {
        match &v.kind {
            ValueKind::String(s) => Some(s.clone()),
            _ => {
                self.expected(key, v, "a string");
                None
            }
        }
    }

    /// A string that must not be empty: empty means "unset" in nats-server.
    pub fn opt_string(&mut self, key: &str, v: &Value) -> Option<Option<String>> {
        self.string(key, v).map(|s| if s.is_empty() { None } else { Some(s) })
    }

    pub fn int(&mut self, key: &str, v: &Value) -> Option<i64> {
        match v.kind {
            ValueKind::Integer(i) => Some(i),
            _ => {
                self.expected(key, v, "an integer");
                None
            }
        }
    }

    /// An integer size; suffixes such as `1MB` were applied by the parser.
    pub fn size(&mut self, key: &str, v: &Value) -> Option<i64> {
        match v.kind {
            ValueKind::Integer(i) => Some(i),
            _ => {
                self.expected(key, v, "a size");
                None
            }
        }
    }

    /// A non-negative size or count.
    pub fn usize_(&mut self, key: &str, v: &Value) -> Option<usize> {
        let i = self.size(key, v)?;
        match usize::try_from(i) {
            Ok(u) => Some(u),
            Err(_) => {
                self.error(key, v, format!("expected a non-negative value, got {i}"));
                None
            }
        }
    }

    pub fn u32_(&mut self, key: &str, v: &Value) -> Option<u32> {
        let i = self.int(key, v)?;
        match u32::try_from(i) {
            Ok(u) => Some(u),
            Err(_) => {
                self.error(key, v, format!("value {i} is out of range"));
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &str, v: &Value) -> Option<bool> {
        match v.kind {
            ValueKind::Bool(b) => Some(b),
            _ => {
                self.expected(key, v, "a boolean");
                None
            }
        }
    }

    pub fn map<'v>(&mut self, key: &str, v: &'v Value) -> Option<&'v Map> {
        match &v.kind {
            ValueKind::Map(m) => Some(m),
            _ => {
                self.expected(key, v, "a map");
                None
            }
        }
    }

    pub fn array<'v>(&mut self, key: &str, v: &'v Value) -> Option<&'v [Value]> {
        match &v.kind {
            ValueKind::Array(a) => Some(a),
            _ => {
                self.expected(key, v, "an array");
                None
            }
        }
    }

    /// A string or an array of strings (nats-server's `parseStringArray`).
    pub fn strings(&mut self, key: &str, v: &Value) -> Option<Vec<String>> {
        match &v.kind {
            ValueKind::String(s) => Some(vec![s.clone()]),
            ValueKind::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, e) in a.iter().enumerate() {
                    out.push(self.string(&index(key, i), e)?);
                }
                Some(out)
            }
            _ => {
                self.expected(key, v, "a string or an array of strings");
                None
            }
        }
    }

    /// A Go duration string only (`time.ParseDuration`).
    pub fn duration_str(&mut self, key: &str, v: &Value) -> Option<Duration> {
        match &v.kind {
            ValueKind::String(s) => match parse_go_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(key, v, format!("error parsing {key}: {e}"));
                    None
                }
            },
            _ => {
                self.expected(key, v, "a duration string such as \"2m\"");
                None
            }
        }
    }

    /// nats-server's `parseDuration`: a duration string, or (the old style, with a warning)
    /// an integer number of seconds.
    pub fn duration_compat(&mut self, key: &str, v: &Value) -> Option<Duration> {
        match v.kind {
            ValueKind::Integer(i) => {
                let Ok(secs) = u64::try_from(i) else {
                    self.error(key, v, format!("expected a non-negative duration, got {i}"));
                    return None;
                };
                let name = key.rsplit('.').next().unwrap_or(key);
                self.warn(key, v, format!("{name} should be converted to a duration"));
                Some(Duration::from_secs(secs))
            }
            _ => self.duration_str(key, v),
        }
    }

    /// Seconds as an integer or a float, or a duration string (authorization and TLS
    /// timeouts).
    pub fn seconds_or_duration(&mut self, key: &str, v: &Value) -> Option<Duration> {
        let secs = match v.kind {
            ValueKind::Integer(i) => i as f64,
            ValueKind::Float(f) => f,
            ValueKind::String(_) => return self.duration_str(key, v),
            _ => {
                self.expected(key, v, "seconds or a duration string");
                return None;
            }
        };
        match Duration::try_from_secs_f64(secs) {
            Ok(d) => Some(d),
            Err(_) => {
                self.error(key, v, format!("invalid number of seconds {secs}"));
                None
            }
        }
    }

    /// A port as nats-server reads it: `-1` asks for a random port (0 for the listener).
    /// `0` is returned as `None`: "not set".
    pub fn port(&mut self, key: &str, v: &Value) -> Option<Option<u16>> {
        let p = self.int(key, v)?;
        port_from_i64(p).or_else(|| {
            self.error(key, v, format!("port {p} is out of range"));
            None
        })
    }

    /// `listen`: a port, or `host:port`. Returns the host (empty when only a port was given)
    /// and the port as in [`Cx::port`].
    pub fn listen(&mut self, key: &str, v: &Value) -> Option<(String, Option<u16>)> {
        match &v.kind {
            ValueKind::Integer(p) => match port_from_i64(*p) {
                Some(port) => Some((String::new(), port)),
                None => {
                    self.error(key, v, format!("port {p} is out of range"));
                    None
                }
            },
            ValueKind::String(s) => match split_host_port(s) {
                Some((host, port)) => match port.parse::<i64>().ok().and_then(port_from_i64) {
                    Some(p) => Some((host, p)),
                    None => {
                        self.error(key, v, format!("could not parse port {port:?}"));
                        None
                    }
                },
                None => {
                    self.error(key, v, format!("could not parse address string {s:?}"));
                    None
                }
            },
            _ => {
                self.error(key, v, format!("expected port or host:port, got {}", v.describe()));
                None
            }
        }
    }
}

/// `-1` -> random (`Some(Some(0))`), `0` -> unset (`Some(None)`), else the port.
pub(crate) fn port_from_i64(p: i64) -> Option<Option<u16>> {
    match p {
        -1 => Some(Some(0)),
        0 => Some(None),
        1..=65535 => Some(Some(p as u16)),
        _ => None,
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[v6]:port`, `:port`.
pub(crate) fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        // An IPv6 address must be bracketed.
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

/// nats-server's subject check for permissions (`IsValidSubject`): non-empty tokens, no
/// white space, and `>` only as the last token.
pub fn is_valid_subject(subject: &str) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in subject.split('.') {
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t.len() > 1 {
            if t.contains([' ', '\t', '\n', '\r', '\x0c']) {
                return false;
            }
            continue;
        }
        match t {
            ">" => saw_fwc = true,
            " " | "\t" | "\n" | "\r" | "\x0c" => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("0.0.0.0:4222"), Some(("0.0.0.0".into(), "4222".into())));
        assert_eq!(split_host_port("[::1]:4222"), Some(("::1".into(), "4222".into())));
        assert_eq!(split_host_port(":4222"), Some(("".into(), "4222".into())));
        assert_eq!(split_host_port("localhost"), None);
        assert_eq!(split_host_port("::1:4222"), None);
    }

    #[test]
    fn subjects() {
        for ok in ["foo", "foo.*", "foo.>", ">", "*.bar", "a.b.c"] {
            assert!(is_valid_subject(ok), "{ok}");
        }
        for bad in ["", "foo.", ".foo", "foo..bar", "foo.>.bar", "a b", "foo bar.baz"] {
            assert!(!is_valid_subject(bad), "{bad}");
        }
    }
}
