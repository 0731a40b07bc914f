//! Errors and warnings of parsing and interpreting a configuration.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration was refused.
///
/// Every variant that comes from a place in a file names the line (and the file, when the
/// configuration was read from one), so an operator can find the offending text.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The text is not valid configuration syntax.
    #[error("{}parse error on line {line}: {msg}", file_prefix(.file))]
    Parse { file: Option<PathBuf>, line: u32, msg: String },

    /// A `$NAME` reference matched no enclosing key and no environment variable.
    #[error(
        "{}variable reference for '{name}' on line {line} can not be found",
        file_prefix(.file)
    )]
    UndefinedVariable { file: Option<PathBuf>, name: String, line: u32 },

    /// A `$NAME` reference whose environment value could not be parsed, or that loops.
    #[error(
        "{}variable reference for '{name}' on line {line} could not be parsed: {msg}",
        file_prefix(.file)
    )]
    BadVariable { file: Option<PathBuf>, name: String, line: u32, msg: String },

    /// An `include` could not be read or parsed.
    #[error("{}error parsing include file '{path}' (line {line}): {source}", file_prefix(.file))]
    Include { file: Option<PathBuf>, path: String, line: u32, source: Box<ConfError> },

    /// A configuration file could not be read.
    #[error("error opening config file {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A key holds a value of the wrong type or out of range.
    #[error("{}{key} (line {line}): {msg}", file_prefix(.file))]
    Invalid { file: Option<PathBuf>, key: String, line: u32, msg: String },

    /// A rule across several options is broken (found by [`crate::Options::validate`]).
    #[error("{0}")]
    Validation(String),

    /// A reload changed an option that cannot change while the server runs.
    #[error("config reload not supported for {option}: {detail}")]
    Reload { option: &'static str, detail: String },

    /// More than one error; nats-server reports them all at once, and so do we.
    #[error("{}", join_errors(.0))]
    Multiple(Vec<ConfError>),
}

impl ConfError {
    /// The individual errors: itself, or the members of [`ConfError::Multiple`].
    pub fn errors(&self) -> Vec<&ConfError> {
        match self {
            ConfError::Multiple(v) => v.iter().collect(),
            other => vec![other],
        }
    }

    /// The line the error points at, if it points at one.
    pub fn line(&self) -> Option<u32> {
        match self {
            ConfError::Parse { line, .. }
            | ConfError::UndefinedVariable { line, .. }
            | ConfError::BadVariable { line, .. }
            | ConfError::Include { line, .. }
            | ConfError::Invalid { line, .. } => Some(*line),
            ConfError::Multiple(v) => v.first().and_then(ConfError::line),
            _ => None,
        }
    }

    pub(crate) fn from_list(mut errors: Vec<ConfError>) -> Option<ConfError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfError::Multiple(errors)),
        }
    }
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    match file {
        Some(f) => format!("{}: ", f.display()),
        None => String::new(),
    }
}

fn join_errors(v: &[ConfError]) -> String {
    v.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// Something accepted but suspicious, e.g. an unknown key or a bare integer where nats-server
/// prefers a duration string. The server logs these and starts anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: Option<PathBuf>,
    /// Dotted path of the key, e.g. `cluster.foo` or `authorization.users[0].bar`.
    pub key: String,
    pub line: u32,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} (line {}): {}", file_prefix(&self.file), self.key, self.line, self.message)
    }
}
