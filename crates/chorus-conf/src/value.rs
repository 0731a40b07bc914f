//! The parsed configuration tree: every value remembers where it was written.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed value and the place it came from.
///
/// For a value stored under a key, `line` is the line of the key (as nats-server reports it);
/// for an array element it is the line of the element itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub line: u32,
    /// The file the value was read from; `None` for text given to [`crate::parse_str`]
    /// and for values that came from an environment variable's text.
    pub file: Option<Arc<PathBuf>>,
}

/// The shapes a value can take; the same set nats-server's `conf` package produces.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    String(String),
    /// Size suffixes (`k`, `mb`, `gib`...) are already applied.
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(Datetime),
    Array(Vec<Value>),
    Map(Map),
}

/// A full Zulu ISO 8601 timestamp such as `2016-05-04T18:53:41Z` (the only form nats accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Datetime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// One `key: value` of a [`Map`].
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// Set when a later `$key` reference read this entry: such entries are variable
    /// definitions, so they do not raise "unknown field" warnings.
    pub used_as_variable: bool,
}

/// A map that keeps its keys in the order they were first written.
///
/// Writing a key again replaces its value in place, as a later assignment does in nats-server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub(crate) fn entry_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    /// Sets `key`, keeping its original position if it already existed.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.entry_mut(&key) {
            Some(e) => {
                e.value = value;
                e.used_as_variable = false;
            }
            None => self.entries.push(Entry { key, value, used_as_variable: false }),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|e| (e.key.as_str(), &e.value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// The tree as JSON (datetimes as strings), e.g. for dumping the effective config.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect(),
        )
    }
}

impl Value {
    pub(crate) fn new(kind: ValueKind, line: u32, file: Option<Arc<PathBuf>>) -> Value {
        Value { kind, line, file }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            ValueKind::Integer(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self.kind {
            ValueKind::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            ValueKind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            ValueKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(PathBuf::as_path)
    }

    /// A short description used in error messages: `"abc"`, `12`, `true`, `a map`...
    pub fn describe(&self) -> String {
        match &self.kind {
            ValueKind::String(s) => format!("{s:?}"),
            ValueKind::Integer(i) => i.to_string(),
            ValueKind::Float(f) => f.to_string(),
            ValueKind::Bool(b) => b.to_string(),
            ValueKind::Datetime(d) => d.to_string(),
            ValueKind::Array(_) => "an array".to_string(),
            ValueKind::Map(_) => "a map".to_string(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            ValueKind::String(s) => J::String(s.clone()),
            ValueKind::Integer(i) => J::from(*i),
            ValueKind::Float(f) => J::from(*f),
            ValueKind::Bool(b) => J::Bool(*b),
            ValueKind::Datetime(d) => J::String(d.to_string()),
            ValueKind::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            ValueKind::Map(m) => m.to_json(),
        }
    }

    /// Moves the whole subtree to one place (used for values pasted in by `$VAR`).
    pub(crate) fn relocate(&mut self, line: u32, file: &Option<Arc<PathBuf>>) {
        self.line = line;
        self.file = file.clone();
        match &mut self.kind {
            ValueKind::Array(a) => a.iter_mut().for_each(|v| v.relocate(line, file)),
            ValueKind::Map(m) => m.entries.iter_mut().for_each(|e| e.value.relocate(line, file)),
            _ => {}
        }
    }
}
