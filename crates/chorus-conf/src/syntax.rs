//! Reader of nats-server's configuration language (the behaviour of its `conf/lex.go` and
//! `conf/parse.go`), written as one recursive-descent pass that builds [`Value`]s directly.
//!
//! The language in short:
//! - `key value`, `key = value` and `key: value`; an entry ends at a new line, `;` or `,`.
//! - Comments start with `#` or `//` and run to the end of the line.
//! - Maps `{ ... }`, arrays `[ ... ]` (elements split by `,` or new lines), raw blocks
//!   `( ... )` closed by a `)` alone on its line.
//! - `"..."` strings take the escapes `\t \n \r \" \\ \xHH`; `'...'` strings take none;
//!   bare words are strings too, except `true/false/yes/no/on/off` (booleans) and `$NAME`
//!   (a variable).
//! - Numbers: integers with an optional size suffix (`k m g t p e` = powers of 1000;
//!   `kb ki kib`, `mb`... = powers of 1024, any case), floats, full Zulu datetimes, and
//!   dotted-quad `1.2.3.4:80` forms, which are strings.
//! - `include path` pastes the top-level keys of another file, found relative to the
//!   including file's directory.
//! - `$NAME` resolves to the nearest enclosing map key already written, innermost first,
//!   then to the environment variable NAME, whose text is itself parsed as a value.
//!
//! Where nats-server's lexer has plain bugs (`[1]` lexes the `]` into the number and then
//! fails; `1kbb` silently drops the key), this reader is lenient or reports an error, never
//! silently different on a configuration nats-server accepts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ConfError;
use crate::value::{Datetime, Map, Value, ValueKind};

/// Deepest nesting of maps and arrays accepted; guards the stack against hostile input.
const MAX_DEPTH: usize = 128;
/// Deepest chain of includes; nats-server has no limit and overflows its stack on a cycle.
const MAX_INCLUDE_DEPTH: usize = 32;
/// The key nats-server uses when it parses an environment variable's text as `pk=<text>`.
const ENV_KEY: &str = "pk";

/// Where `$NAME` references look after the enclosing blocks.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as nats-server uses it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Parses configuration text. Includes are looked up relative to `base_dir`, or to the
/// current directory when it is `None`.
pub fn parse_str(src: &str, base_dir: Option<&Path>) -> Result<Map, ConfError> {
    parse_str_with_env(src, base_dir, &process_env)
}

/// [`parse_str`] with the environment given as a function (for embedding and tests).
pub fn parse_str_with_env(
    src: &str,
    base_dir: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<Map, ConfError> {
    let base = base_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let mut env_refs = HashSet::new();
    Parser::new(src, None, base, &mut env_refs, env, 0).parse_document()
}

/// Reads and parses a configuration file; includes are relative to its directory.
pub fn parse_file(path: &Path) -> Result<Map, ConfError> {
    parse_file_with_env(path, &process_env)
}

/// [`parse_file`] with the environment given as a function.
pub fn parse_file_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Map, ConfError> {
    let mut env_refs = HashSet::new();
    parse_file_inner(path, &mut env_refs, env, 0)
}

fn parse_file_inner(
    path: &Path,
    env_refs: &mut HashSet<String>,
    env: EnvLookup<'_>,
    include_depth: usize,
) -> Result<Map, ConfError> {
    let src = std::fs::read_to_string(path)
        .map_err(|source| ConfError::Io { path: path.to_path_buf(), source })?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file = Some(Arc::new(path.to_path_buf()));
    Parser::new(&src, file, base, env_refs, env, include_depth).parse_document()
}

/// Joins an include path the way Go's `filepath.Join` does: even an absolute include path
/// is taken relative to the including file's directory.
fn join_include(base: &Path, inc: &str) -> PathBuf {
    let rel = inc.trim_start_matches('/');
    if rel.is_empty() { base.to_path_buf() } else { base.join(rel) }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// Where a value ends the enclosing entry, as far as numbers are concerned.
/// nats-server leaves `]` out of this set, which breaks `[1]`; we accept it.
fn ends_number(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => is_nl(c) || is_ws(c) || matches!(c, '}' | ']' | ';' | ','),
    }
}

fn show(c: Option<char>) -> String {
    match c {
        None => "EOF".to_string(),
        Some('\n') => "\\n".to_string(),
        Some(c) => c.to_string(),
    }
}

/// What kind of map an entry is being read into; each ends its values differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Nested,
}

struct Parser<'a, 'e> {
    src: &'a str,
    pos: usize,
    line: u32,
    file: Option<Arc<PathBuf>>,
    base_dir: PathBuf,
    /// Maps under construction, outermost first; variables are looked up here.
    scopes: Vec<Map>,
    /// Environment variables being expanded right now, to stop reference cycles.
    env_refs: &'e mut HashSet<String>,
    env: EnvLookup<'e>,
    include_depth: usize,
    depth: usize,
}

impl<'a, 'e> Parser<'a, 'e> {
    fn new(
        src: &'a str,
        file: Option<Arc<PathBuf>>,
        base_dir: PathBuf,
        env_refs: &'e mut HashSet<String>,
        env: EnvLookup<'e>,
        include_depth: usize,
    ) -> Self {
        Parser {
            src,
            pos: 0,
            line: 1,
            file,
            base_dir,
            scopes: Vec::new(),
            env_refs,
            env,
            include_depth,
            depth: 0,
        }
    }

    // ---- cursor -------------------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn err(&self, msg: impl Into<String>) -> ConfError {
        self.err_at(self.line, msg)
    }

    fn err_at(&self, line: u32, msg: impl Into<String>) -> ConfError {
        ConfError::Parse { file: self.file.as_deref().cloned(), line, msg: msg.into() }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.bump();
        }
    }

    fn skip_all_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// True when a `#` or `//` comment starts here.
    fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to, not including, the end of its line.
    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| !is_nl(c)) {
            self.bump();
        }
    }

    // ---- document and maps ----------------------------------------------------------------

    fn parse_document(mut self) -> Result<Map, ConfError> {
        self.scopes.push(Map::new());
        // A document may be wrapped in `{ }` (JSON style); we count those wrappers.
        let mut wrappers = 0usize;
        loop {
            self.skip_all_space();
            match self.peek() {
                None => break,
                Some('{') => {
                    self.bump();
                    wrappers += 1;
                    continue;
                }
                Some('}') if wrappers > 0 => {
                    self.bump();
                    wrappers -= 1;
                    continue;
                }
                _ if self.at_comment() => {
                    self.skip_comment();
                    continue;
                }
                Some('/') => return Err(self.err("Unexpected '/'.")),
                _ => {}
            }
            self.parse_entry(Level::Top)?;
            // After a top-level value only blanks, a comment or a terminator may follow.
            self.skip_ws();
            if self.at_comment() {
                self.skip_comment();
                continue;
            }
            match self.peek() {
                None => break,
                Some(c) if is_nl(c) || c == ';' || c == ',' => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    wrappers = wrappers.saturating_sub(1);
                }
                c => {
                    return Err(self.err(format!(
                        "Expected a top-level value to end with a new line, comment or EOF, \
                         but got '{}' instead.",
                        show(c)
                    )));
                }
            }
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// Reads a map body after its `{`, up to and including the `}`.
    fn parse_map(&mut self) -> Result<Map, ConfError> {
        self.scopes.push(Map::new());
        let result = self.parse_map_body();
        let map = self.scopes.pop().unwrap_or_default();
        result.map(|()| map)
    }

    fn parse_map_body(&mut self) -> Result<(), ConfError> {
        loop {
            self.skip_all_space();
            match self.peek() {
                None => return Err(self.err("Unexpected EOF processing map.")),
                Some('}') => {
                    self.bump();
                    return Ok(());
                }
                Some(c @ ('=' | ':')) => {
                    return Err(self.err(format!("Unexpected key separator '{c}'.")));
                }
                Some(']') => return Err(self.err("Unexpected array end ']' processing map.")),
                _ if self.at_comment() => {
                    self.skip_comment();
                    continue;
                }
                _ => {}
            }
            self.parse_entry(Level::Nested)?;
            self.skip_ws();
            if self.at_comment() {
                self.skip_comment();
                continue;
            }
            match self.peek() {
                Some(c) if is_nl(c) || c == ';' || c == ',' => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(());
                }
                c => {
                    return Err(self.err(format!(
                        "Expected a map value terminator ',' or a map terminator '}}', \
                         but got '{}' instead.",
                        show(c)
                    )));
                }
            }
        }
    }

    /// Reads `key [sep] value` (or an `include`) into the innermost scope.
    fn parse_entry(&mut self, level: Level) -> Result<(), ConfError> {
        let key_line = self.line;
        let (key, quoted) = self.parse_key(level)?;
        if !quoted
            && key.eq_ignore_ascii_case("include")
            && self.peek().is_some_and(char::is_whitespace)
        {
            return self.parse_include(key_line);
        }
        // Blanks, even new lines, may sit between a key and its separator or value.
        self.skip_all_space();
        let had_sep = matches!(self.peek(), Some('=' | ':'));
        if had_sep {
            self.bump();
        }
        if self.peek().is_none() {
            return Err(
                self.err_at(key_line, format!("config is invalid: key '{key}' has no value"))
            );
        }
        if level == Level::Nested {
            // Inside a map a value may even start on a later line after the separator.
            self.skip_all_space();
            match self.peek() {
                Some(',') => return Err(self.err("Unexpected map value terminator ','.")),
                Some('}') | None => {
                    return Err(self.err_at(key_line, format!("key '{key}' has no value")));
                }
                _ => {}
            }
        }
        let mut value = self.parse_value()?;
        value.line = key_line;
        self.scopes.last_mut().expect("scope").insert(key, value);
        Ok(())
    }

    fn parse_key(&mut self, level: Level) -> Result<(String, bool), ConfError> {
        match self.peek() {
            Some(c @ ('=' | ':')) => Err(self.err(format!("Unexpected key separator '{c}'"))),
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let start = self.pos;
                loop {
                    match self.peek() {
                        None => return Err(self.err("Unexpected EOF processing quoted key.")),
                        Some(c) if c == q => break,
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                let key = self.src[start..self.pos].to_string();
                self.bump();
                Ok((key, true))
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == '=' || c == ':' {
                        break;
                    }
                    self.bump();
                }
                if self.peek().is_none() && level == Level::Nested {
                    return Err(self.err("Unexpected EOF processing map key."));
                }
                Ok((self.src[start..self.pos].to_string(), false))
            }
        }
    }

    // ---- include --------------------------------------------------------------------------

    fn parse_include(&mut self, line: u32) -> Result<(), ConfError> {
        self.skip_ws();
        let path = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let start = self.pos;
                loop {
                    match self.peek() {
                        None => return Err(self.err("Unexpected EOF in quoted include")),
                        Some(c) if c == q => break,
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                let p = self.src[start..self.pos].to_string();
                self.bump();
                p
            }
            Some('[') => return Err(self.err("Expected include value but found start of an array")),
            Some('{') => return Err(self.err("Expected include value but found start of a map")),
            Some('(') => return Err(self.err("Expected include value but found start of a block")),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                return Err(self.err("Expected include value but found start of a number"));
            }
            Some('\\') => {
                return Err(self.err("Expected include value but found escape sequence"));
            }
            Some(c) if is_nl(c) => {
                return Err(self.err("Expected include value but found new line"));
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if is_nl(c) || is_ws(c) || c == ';' || c == '}' || c == '\'' {
                        break;
                    }
                    self.bump();
                }
                let p = self.src[start..self.pos].to_string();
                if self.peek() == Some('\'') {
                    self.bump();
                }
                p
            }
        };
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(self.include_err(
                &path,
                line,
                self.err_at(line, "includes nested too deeply (include cycle?)"),
            ));
        }
        let full = join_include(&self.base_dir, &path);
        let included = parse_file_inner(&full, self.env_refs, self.env, self.include_depth + 1)
            .map_err(|e| self.include_err(&path, line, e))?;
        let scope = self.scopes.last_mut().expect("scope");
        for entry in included.entries() {
            scope.insert(entry.key.clone(), entry.value.clone());
        }
        Ok(())
    }

    fn include_err(&self, path: &str, line: u32, source: ConfError) -> ConfError {
        ConfError::Include {
            file: self.file.as_deref().cloned(),
            path: path.to_string(),
            line,
            source: Box::new(source),
        }
    }

    // ---- values ---------------------------------------------------------------------------

    fn mk(&self, kind: ValueKind, line: u32) -> Value {
        Value::new(kind, line, self.file.clone())
    }

    fn parse_value(&mut self) -> Result<Value, ConfError> {
        self.skip_ws();
        let line = self.line;
        match self.peek() {
            // `key =` at the very end: nats-server reads an empty string.
            None => Ok(self.mk(ValueKind::String(String::new()), line)),
            Some('[') => {
                self.bump();
                self.enter()?;
                let r = self.parse_array();
                self.depth -= 1;
                Ok(self.mk(ValueKind::Array(r?), line))
            }
            Some('{') => {
                self.bump();
                self.enter()?;
                let r = self.parse_map();
                self.depth -= 1;
                Ok(self.mk(ValueKind::Map(r?), line))
            }
            Some('\'') => {
                self.bump();
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '\'') {
                    self.bump();
                }
                if self.peek().is_none() {
                    return Err(self.err("Unexpected EOF."));
                }
                let s = self.src[start..self.pos].to_string();
                self.bump();
                Ok(self.mk(ValueKind::String(s), line))
            }
            Some('"') => {
                self.bump();
                let s = self.parse_dq_string()?;
                Ok(self.mk(ValueKind::String(s), line))
            }
            Some('-') => {
                self.bump();
                self.parse_number(line, true)
            }
            Some('(') => {
                self.bump();
                let s = self.parse_block()?;
                Ok(self.mk(ValueKind::String(s), line))
            }
            Some(c) if c.is_ascii_digit() => self.parse_number(line, false),
            Some('.') => Err(self.err("Floats must start with a digit")),
            Some(c) if is_nl(c) => Err(self.err("Expected value but found new line")),
            Some(_) => self.parse_bare(line, String::new(), true),
        }
    }

    fn enter(&mut self) -> Result<(), ConfError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(self.err("maps and arrays nested too deeply"));
        }
        Ok(())
    }

    fn parse_array(&mut self) -> Result<Vec<Value>, ConfError> {
        let mut out = Vec::new();
        loop {
            self.skip_all_space();
            match self.peek() {
                None => return Err(self.err("Unexpected EOF processing array.")),
                Some(']') => {
                    self.bump();
                    return Ok(out);
                }
                Some(',') => return Err(self.err("Unexpected array value terminator ','.")),
                _ if self.at_comment() => {
                    self.skip_comment();
                    continue;
                }
                _ => {}
            }
            out.push(self.parse_value()?);
            self.skip_ws();
            if self.at_comment() {
                self.skip_comment();
                continue;
            }
            match self.peek() {
                Some(c) if c == ',' || is_nl(c) => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(out);
                }
                c => {
                    return Err(self.err(format!(
                        "Expected an array value terminator ',' or an array terminator ']', \
                         but got '{}' instead.",
                        show(c)
                    )));
                }
            }
        }
    }

    /// Reads the escape after a `\` into `buf`.
    fn parse_escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfError> {
        let c = self.bump();
        let simple = match c {
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('"') => b'"',
            Some('\\') => b'\\',
            Some('x') => {
                let a = self.bump();
                let b = self.bump();
                let (Some(a), Some(b)) = (a, b) else {
                    return Err(self
                        .err("Expected two hexadecimal digits after '\\x', but hit end of input"));
                };
                if is_nl(a) || is_nl(b) {
                    return Err(self
                        .err("Expected two hexadecimal digits after '\\x', but hit end of line"));
                }
                match (a.to_digit(16), b.to_digit(16)) {
                    (Some(h), Some(l)) => {
                        buf.push((h * 16 + l) as u8);
                        return Ok(());
                    }
                    _ => {
                        return Err(self.err(format!(
                            "Expected two hexadecimal digits after '\\x', but got '{a}{b}'"
                        )));
                    }
                }
            }
            other => {
                return Err(self.err(format!(
                    "Invalid escape character '{}'. Only the following escape characters are \
                     allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
                    show(other)
                )));
            }
        };
        buf.push(simple);
        Ok(())
    }

    fn finish_bytes(&self, buf: Vec<u8>) -> Result<String, ConfError> {
        String::from_utf8(buf).map_err(|_| self.err("string escapes do not form valid UTF-8"))
    }

    fn parse_dq_string(&mut self) -> Result<String, ConfError> {
        let mut buf = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.err("Unexpected EOF.")),
                Some('"') => return self.finish_bytes(buf),
                Some('\\') => self.parse_escape(&mut buf)?,
                Some(c) => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }

    /// A raw block: everything up to a `)` standing alone on its line. Like nats-server,
    /// the value keeps the new line that precedes the closing `)`.
    fn parse_block(&mut self) -> Result<String, ConfError> {
        let start = self.pos;
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err("Unexpected EOF processing block."));
            };
            if c != ')' {
                continue;
            }
            let close = self.pos - 1;
            let after_nl = close > start && self.src.as_bytes()[close - 1] == b'\n';
            let line_ends = matches!(self.peek(), None | Some('\n'));
            if after_nl && line_ends {
                return Ok(self.src[start..close].to_string());
            }
        }
    }

    /// A bare word: a string, a boolean or a `$variable`. `classify` is false when the word
    /// began as a number, which keeps it a plain string.
    fn parse_bare(
        &mut self,
        line: u32,
        prefix: String,
        classify: bool,
    ) -> Result<Value, ConfError> {
        let mut buf = prefix.into_bytes();
        let mut escaped = false;
        loop {
            match self.peek() {
                None => break,
                Some(c) if is_nl(c) || is_ws(c) || matches!(c, ';' | ',' | ']' | '}') => break,
                Some('\'') => {
                    // nats-server ends a bare word at a quote and drops the quote.
                    self.bump();
                    break;
                }
                Some('\\') => {
                    self.bump();
                    escaped = true;
                    self.parse_escape(&mut buf)?;
                }
                Some(c) => {
                    self.bump();
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        let s = self.finish_bytes(buf)?;
        if !classify || escaped {
            return Ok(self.mk(ValueKind::String(s), line));
        }
        match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => return Ok(self.mk(ValueKind::Bool(true), line)),
            "false" | "no" | "off" => return Ok(self.mk(ValueKind::Bool(false), line)),
            _ => {}
        }
        if let Some(name) = s.strip_prefix('$') {
            return self.lookup_variable(name, line);
        }
        Ok(self.mk(ValueKind::String(s), line))
    }

    fn parse_number(&mut self, line: u32, negative: bool) -> Result<Value, ConfError> {
        let start = self.pos - usize::from(negative);
        if negative {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {}
                Some('.') => return Err(self.err("Floats must start with a digit, not '.'.")),
                c => return Err(self.err(format!("Expected a digit but got '{}'.", show(c)))),
            }
        }
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let ndigits = self.pos - digits_start;
        match self.peek() {
            Some('-') if !negative => {
                if ndigits != 4 {
                    return Err(self.err("All ISO8601 dates must be in full Zulu form."));
                }
                self.bump();
                self.parse_datetime(start, line)
            }
            Some('.') => {
                self.bump();
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.err(format!(
                        "Floats must have a digit after the '.', but got '{}' instead.",
                        show(self.peek())
                    )));
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
                if self.peek() == Some('.') {
                    // More dots: an address such as 127.0.0.1:4222, kept as a string.
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
                    {
                        self.bump();
                    }
                    let s = self.src[start..self.pos].to_string();
                    return Ok(self.mk(ValueKind::String(s), line));
                }
                let text = &self.src[start..self.pos];
                let f: f64 = text
                    .parse()
                    .map_err(|_| self.err(format!("expected float, but got '{text}'")))?;
                if f.is_infinite() {
                    return Err(self.err(format!("float '{text}' is out of the range")));
                }
                Ok(self.mk(ValueKind::Float(f), line))
            }
            Some(c) if is_size_suffix(c) => {
                let num_end = self.pos;
                self.bump();
                while self.peek().is_some_and(|c| matches!(c, 'b' | 'B' | 'i' | 'I')) {
                    self.bump();
                }
                if !ends_number(self.peek()) {
                    // Something like `5e7bcd` or `1mx`: not a size after all, a string.
                    let prefix = self.src[start..self.pos].to_string();
                    return self.parse_bare(line, prefix, false);
                }
                let suffix = self.src[num_end..self.pos].to_ascii_lowercase();
                let n = self.parse_int(&self.src[start..num_end])?;
                let mult: i64 = match suffix.as_str() {
                    "k" => 1000,
                    "kb" | "ki" | "kib" => 1 << 10,
                    "m" => 1_000_000,
                    "mb" | "mi" | "mib" => 1 << 20,
                    "g" => 1_000_000_000,
                    "gb" | "gi" | "gib" => 1 << 30,
                    "t" => 1_000_000_000_000,
                    "tb" | "ti" | "tib" => 1 << 40,
                    "p" => 1_000_000_000_000_000,
                    "pb" | "pi" | "pib" => 1 << 50,
                    "e" => 1_000_000_000_000_000_000,
                    "eb" | "ei" | "eib" => 1 << 60,
                    _ => {
                        return Err(self.err(format!(
                            "invalid size suffix in '{}'",
                            &self.src[start..self.pos]
                        )));
                    }
                };
                let v = n.checked_mul(mult).ok_or_else(|| {
                    self.err(format!(
                        "integer '{}' is out of the range",
                        &self.src[start..self.pos]
                    ))
                })?;
                Ok(self.mk(ValueKind::Integer(v), line))
            }
            Some(c) if !negative && !ends_number(Some(c)) => {
                // A word that starts with digits, e.g. `10s` or `3rd`: a plain string. The
                // first non-digit is taken literally, as nats-server does.
                self.bump();
                let mut prefix = self.src[start..self.pos - c.len_utf8()].to_string();
                prefix.push(c);
                self.parse_bare(line, prefix, false)
            }
            _ => {
                // nats-server ends a negative number at any non-digit; the caller then
                // complains about whatever follows.
                let n = self.parse_int(&self.src[start..self.pos])?;
                Ok(self.mk(ValueKind::Integer(n), line))
            }
        }
    }

    fn parse_int(&self, text: &str) -> Result<i64, ConfError> {
        text.parse::<i64>().map_err(|e| {
            use std::num::IntErrorKind::*;
            match e.kind() {
                PosOverflow | NegOverflow => {
                    self.err(format!("integer '{text}' is out of the range"))
                }
                _ => self.err(format!("expected integer, but got '{text}'")),
            }
        })
    }

    /// After `YYYY-`: the rest of `YYYY-MM-DDTHH:MM:SSZ`.
    fn parse_datetime(&mut self, start: usize, line: u32) -> Result<Value, ConfError> {
        const FORMAT: &[u8] = b"00-00T00:00:00Z";
        for &f in FORMAT {
            let c = self.bump();
            if f == b'0' {
                if !c.is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.err(format!(
                        "Expected digit in ISO8601 datetime, but found '{}' instead.",
                        show(c)
                    )));
                }
            } else if c != Some(f as char) {
                return Err(self.err(format!(
                    "Expected '{}' in ISO8601 datetime, but found '{}' instead.",
                    f as char,
                    show(c)
                )));
            }
        }
        let text = &self.src[start..self.pos];
        let num = |r: std::ops::Range<usize>| text[r].parse::<u16>().unwrap_or(0);
        let dt = Datetime {
            year: num(0..4),
            month: num(5..7) as u8,
            day: num(8..10) as u8,
            hour: num(11..13) as u8,
            minute: num(14..16) as u8,
            second: num(17..19) as u8,
        };
        let leap = dt.year.is_multiple_of(4)
            && (!dt.year.is_multiple_of(100) || dt.year.is_multiple_of(400));
        let days = match dt.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if dt.day == 0 || dt.day > days || dt.hour > 23 || dt.minute > 59 || dt.second > 59 {
            return Err(self.err(format!("expected Zulu formatted DateTime, but got '{text}'")));
        }
        Ok(self.mk(ValueKind::Datetime(dt), line))
    }

    // ---- variables ------------------------------------------------------------------------

    fn lookup_variable(&mut self, name: &str, line: u32) -> Result<Value, ConfError> {
        // A bare bcrypt hash (`$2a$...`) is a password, not a variable.
        if name.starts_with("2a$") {
            return Ok(self.mk(ValueKind::String(format!("${name}")), line));
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.entry_mut(name) {
                entry.used_as_variable = true;
                let mut v = entry.value.clone();
                v.line = line;
                v.file = self.file.clone();
                return Ok(v);
            }
        }
        let file = self.file.as_deref().cloned();
        if self.env_refs.contains(name) {
            return Err(ConfError::BadVariable {
                file,
                name: name.to_string(),
                line,
                msg: format!("variable reference cycle for '{name}'"),
            });
        }
        let Some(text) = (self.env)(name) else {
            return Err(ConfError::UndefinedVariable { file, name: name.to_string(), line });
        };
        // The environment's text is parsed as a value, so `1k`, `true` or `[a, b]` work.
        self.env_refs.insert(name.to_string());
        let src = format!("{ENV_KEY}={text}");
        let parsed = Parser::new(&src, None, self.base_dir.clone(), self.env_refs, self.env, 0)
            .parse_document();
        self.env_refs.remove(name);
        let mut v = parsed
            .map_err(|e| ConfError::BadVariable {
                file: file.clone(),
                name: name.to_string(),
                line,
                msg: e.to_string(),
            })?
            .get(ENV_KEY)
            .cloned()
            .ok_or_else(|| ConfError::UndefinedVariable { file, name: name.to_string(), line })?;
        v.relocate(line, &self.file);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Map {
        parse_str(s, None).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn join_include_like_go() {
        assert_eq!(
            join_include(Path::new("/etc/nats"), "/abs/x.conf"),
            PathBuf::from("/etc/nats/abs/x.conf")
        );
        assert_eq!(join_include(Path::new("dir"), "x.conf"), PathBuf::from("dir/x.conf"));
    }

    #[test]
    fn entry_lines_are_key_lines() {
        let m = p("a = 1\n\nb {\n  c: [\n 1,\n 2]\n}\n");
        assert_eq!(m.get("a").unwrap().line, 1);
        assert_eq!(m.get("b").unwrap().line, 3);
        let c = m.get("b").unwrap().as_map().unwrap().get("c").unwrap();
        assert_eq!(c.line, 4);
        assert_eq!(c.as_array().unwrap()[1].line, 6);
    }
}
