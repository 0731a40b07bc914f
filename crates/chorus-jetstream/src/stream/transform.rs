//! Validity of subject transforms (stream `subject_transform`, mirror/source
//! `subject_transforms`, `republish`), with nats-server's error texts.
//!
//! This is the checking half of nats-server's `subject_transform.go`: whether a `src`/`dest`
//! pair would compile (`NewSubjectTransform`) and whether a destination is well formed
//! (`ValidateMapping`). Applying a transform to a subject belongs to the runtime.
//!
//! Destinations use `$N` or mustache functions per token: `{{wildcard(1)}}`,
//! `{{partition(n,1,2)}}`, `{{splitFromLeft(1,2)}}`, `{{splitFromRight(..)}}`,
//! `{{sliceFromLeft(..)}}`, `{{sliceFromRight(..)}}`, `{{left(..)}}`, `{{right(..)}}`,
//! `{{split(1,-)}}`, `{{random(n)}}`. Function names accept an upper-case first letter of
//! each word, as nats-server's regular expressions do.

use std::fmt;

/// What is wrong with a transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingErrorKind {
    BadSubject,
    InvalidTransform,
    UnknownFunction,
    IndexOutOfRange,
    NotEnoughArgs,
    InvalidArg,
    TooManyArgs,
}

/// A transform error; displays exactly as nats-server's error does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MappingError {
    pub kind: MappingErrorKind,
    /// The offending destination token, when nats-server names one.
    pub token: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.kind {
            MappingErrorKind::BadSubject => "invalid subject",
            MappingErrorKind::InvalidTransform => "invalid mapping destination: invalid transform",
            MappingErrorKind::UnknownFunction => "invalid mapping destination: unknown function",
            MappingErrorKind::IndexOutOfRange => {
                "invalid mapping destination: wildcard index out of range"
            }
            MappingErrorKind::NotEnoughArgs => {
                "invalid mapping destination: not enough arguments passed to the function"
            }
            MappingErrorKind::InvalidArg => {
                "invalid mapping destination: function argument is invalid or in the wrong format"
            }
            MappingErrorKind::TooManyArgs => {
                "invalid mapping destination: too many arguments passed to the function"
            }
        };
        if self.token.is_empty() {
            f.write_str(base)
        } else {
            write!(f, "{base} in {}", self.token)
        }
    }
}

fn err(kind: MappingErrorKind, token: impl Into<String>) -> MappingError {
    MappingError { kind, token: token.into() }
}

/// nats-server's `ValidateMapping`: the destination's shape, then whether the pair compiles.
/// An empty destination is valid (no transform).
pub fn validate_mapping(src: &str, dest: &str) -> Result<(), MappingError> {
    if dest.is_empty() {
        return Ok(());
    }
    let mut after_fwc = false;
    for t in dest.split('.') {
        if t.is_empty() || after_fwc {
            return Err(err(MappingErrorKind::InvalidTransform, t));
        }
        if is_mustache(t) {
            if function_args(t).is_none() {
                return Err(err(MappingErrorKind::UnknownFunction, t));
            }
            continue;
        }
        if t == ">" {
            after_fwc = true;
        } else if t.contains(['\t', '\n', '\x0c', '\r', ' ']) {
            return Err(err(MappingErrorKind::InvalidTransform, ""));
        }
    }
    check_transform(src, dest)
}

/// nats-server's `NewSubjectTransform` (non-strict) reduced to its verdict: whether `src`
/// (empty meaning `>`) can be mapped to `dest`.
pub fn check_transform(src: &str, dest: &str) -> Result<(), MappingError> {
    if dest.is_empty() {
        return Ok(());
    }
    let src = if src.is_empty() { ">" } else { src };
    let (Some(s), Some(d)) = (subject_info(src), subject_info(dest)) else {
        return Err(err(MappingErrorKind::BadSubject, ""));
    };
    if d.pwcs > 0 || s.fwc != d.fwc {
        return Err(err(MappingErrorKind::BadSubject, ""));
    }
    for token in dest.split('.') {
        let (kind, indexes) = index_placeholders(token)?;
        if s.pwcs > 0 || s.fwc {
            if matches!(kind, Function::None | Function::Random) {
                continue;
            }
            for i in indexes {
                if i > s.pwcs as i64 {
                    return Err(err(MappingErrorKind::IndexOutOfRange, format!("{token}: [{i}]")));
                }
            }
        } else if !matches!(kind, Function::None | Function::Random | Function::Partition) {
            return Err(err(MappingErrorKind::IndexOutOfRange, token));
        }
    }
    Ok(())
}

struct SubjectInfo {
    pwcs: usize,
    fwc: bool,
}

/// nats-server's `subjectInfo`: non-empty tokens, nothing after `>`; counts `*` tokens.
fn subject_info(subject: &str) -> Option<SubjectInfo> {
    if subject.is_empty() {
        return None;
    }
    let mut info = SubjectInfo { pwcs: 0, fwc: false };
    for t in subject.split('.') {
        if t.is_empty() || info.fwc {
            return None;
        }
        match t {
            ">" => info.fwc = true,
            "*" => info.pwcs += 1,
            _ => {}
        }
    }
    Some(info)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    None,
    Wildcard,
    Partition,
    SplitFromLeft,
    SplitFromRight,
    SliceFromLeft,
    SliceFromRight,
    Split,
    Left,
    Right,
    Random,
}

/// Function names in the order nats-server tries them, with the words whose first letter
/// may be upper case.
const FUNCTIONS: [(Function, &[&str]); 10] = [
    (Function::Wildcard, &["wildcard"]),
    (Function::Partition, &["partition"]),
    (Function::SplitFromLeft, &["split", "from", "left"]),
    (Function::SplitFromRight, &["split", "from", "right"]),
    (Function::SliceFromLeft, &["slice", "from", "left"]),
    (Function::SliceFromRight, &["slice", "from", "right"]),
    (Function::Right, &["right"]),
    (Function::Left, &["left"]),
    (Function::Split, &["split"]),
    (Function::Random, &["random"]),
];

fn is_mustache(t: &str) -> bool {
    t.len() > 4 && t.starts_with("{{") && t.ends_with("}}")
}

fn is_re_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// Matches `{{\s*NAME\s*\((.*)\)\s*}}` anywhere in `t` (leftmost start, greedy capture, `.`
/// not crossing a newline) and returns the captured argument text.
fn match_function<'a>(t: &'a str, words: &[&str]) -> Option<&'a str> {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(p) = t[from..].find("{{").map(|i| i + from) {
        from = p + 1;
        let mut i = p + 2;
        while i < b.len() && is_re_space(b[i]) {
            i += 1;
        }
        let mut ok = true;
        for w in words {
            let wb = w.as_bytes();
            if i + wb.len() > b.len() {
                ok = false;
                break;
            }
            let first_ok = b[i] == wb[0] || b[i] == wb[0].to_ascii_uppercase();
            if !first_ok || b[i + 1..i + wb.len()] != wb[1..] {
                ok = false;
                break;
            }
            i += wb.len();
        }
        if !ok {
            continue;
        }
        while i < b.len() && is_re_space(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'(' {
            continue;
        }
        let open = i + 1;
        let limit = b[open..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| open + n);
        // Greedy: the last `)` (before any newline) followed by `\s*}}`.
        for q in (open..limit).rev() {
            if b[q] != b')' {
                continue;
            }
            let mut k = q + 1;
            while k < b.len() && is_re_space(b[k]) {
                k += 1;
            }
            if b[k..].starts_with(b"}}") {
                return Some(&t[open..q]);
            }
        }
    }
    None
}

/// The function a mustache token calls and its arguments (Go's regexp `,\s*` split).
fn function_args(t: &str) -> Option<(Function, Vec<&str>)> {
    for (f, words) in FUNCTIONS {
        if let Some(args) = match_function(t, words) {
            let mut out = Vec::new();
            let mut rest = args;
            while let Some(c) = rest.find(',') {
                out.push(&rest[..c]);
                rest = rest[c + 1..].trim_start_matches(|ch: char| is_re_space(ch as u8));
            }
            out.push(rest);
            return Some((f, out));
        }
    }
    None
}

/// Go's `strconv.Atoi`: optional sign, decimal digits, within `i64`.
fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn trim_spaces(s: &str) -> &str {
    s.trim_matches(' ')
}

/// nats-server's `indexPlaceHolders`: the function of one destination token and the
/// wildcard indexes it refers to.
fn index_placeholders(token: &str) -> Result<(Function, Vec<i64>), MappingError> {
    use MappingErrorKind::*;
    if token.len() <= 1 {
        return Ok((Function::None, vec![]));
    }
    if let Some(n) = token.strip_prefix('$') {
        // `$x` that is not a number is an ordinary token.
        return Ok(match atoi(n) {
            Some(i) => (Function::Wildcard, vec![i]),
            None => (Function::None, vec![]),
        });
    }
    if !is_mustache(token) {
        return Ok((Function::None, vec![]));
    }
    let Some((f, args)) = function_args(token) else {
        return Err(err(UnknownFunction, token));
    };
    let int = |s: &str| atoi(trim_spaces(s)).ok_or_else(|| err(InvalidArg, token));
    let int32 = |s: &str| {
        atoi(trim_spaces(s)).filter(|v| *v <= i32::MAX as i64).ok_or_else(|| err(InvalidArg, token))
    };
    match f {
        Function::Wildcard => {
            if args.len() == 1 && args[0].is_empty() {
                return Err(err(NotEnoughArgs, token));
            }
            if args.len() > 1 {
                return Err(err(TooManyArgs, token));
            }
            Ok((f, vec![int(args[0])?]))
        }
        Function::Partition => {
            int32(args[0])?;
            let idx = args[1..].iter().map(|a| int(a)).collect::<Result<Vec<_>, _>>()?;
            Ok((f, idx))
        }
        Function::SplitFromLeft
        | Function::SplitFromRight
        | Function::SliceFromLeft
        | Function::SliceFromRight
        | Function::Left
        | Function::Right => {
            if args.len() < 2 {
                return Err(err(NotEnoughArgs, token));
            }
            if args.len() > 2 {
                return Err(err(TooManyArgs, token));
            }
            let i = int(args[0])?;
            trim_spaces(args[1]).parse::<i32>().map_err(|_| err(InvalidArg, token))?;
            Ok((f, vec![i]))
        }
        Function::Split => {
            if args.len() < 2 {
                return Err(err(NotEnoughArgs, token));
            }
            if args.len() > 2 {
                return Err(err(TooManyArgs, token));
            }
            let i = int(args[0])?;
            if args[1].contains([' ', '.']) {
                return Err(err(InvalidArg, token));
            }
            Ok((f, vec![i]))
        }
        Function::Random => {
            if args.len() != 1 {
                return Err(err(NotEnoughArgs, token));
            }
            int32(args[0])?;
            Ok((f, vec![]))
        }
        Function::None => Ok((f, vec![])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_error_texts() {
        // Captured from nats-server v2.15.2 (see tests/fixtures/reference.json).
        assert_eq!(
            validate_mapping("a.*", "x.$2").unwrap_err().to_string(),
            "invalid mapping destination: wildcard index out of range in $2: [2]"
        );
        assert_eq!(
            validate_mapping("a.*", "x.{{nope(1)}}").unwrap_err().to_string(),
            "invalid mapping destination: unknown function in {{nope(1)}}"
        );
        assert!(validate_mapping("vtr.*", "vtrx.{{wildcard(1)}}").is_ok());
        assert!(check_transform("vre.*", "out.$3").is_err());
    }

    #[test]
    fn shapes() {
        assert!(validate_mapping("", "").is_ok());
        assert!(validate_mapping("a.>", "b.>").is_ok());
        assert!(validate_mapping("", "b.>").is_ok());
        assert_eq!(check_transform("a.>", "b").unwrap_err().kind, MappingErrorKind::BadSubject);
        assert_eq!(check_transform("a.*", "b.*").unwrap_err().kind, MappingErrorKind::BadSubject);
        assert_eq!(
            validate_mapping("a", "b..c").unwrap_err().to_string(),
            "invalid mapping destination: invalid transform"
        );
        assert_eq!(
            validate_mapping("a.>", "b.>.c").unwrap_err().to_string(),
            "invalid mapping destination: invalid transform in c"
        );
        assert_eq!(
            validate_mapping("a", "b c").unwrap_err().to_string(),
            "invalid mapping destination: invalid transform"
        );
        // Literal source: only random and partition functions can be used.
        assert!(check_transform("a", "b.{{partition(3)}}").is_ok());
        assert!(check_transform("a", "b.{{random(3)}}").is_ok());
        assert_eq!(
            check_transform("a", "b.{{wildcard(1)}}").unwrap_err().to_string(),
            "invalid mapping destination: wildcard index out of range in {{wildcard(1)}}"
        );
        // `$x` with a non-number is an ordinary token.
        assert!(check_transform("a", "b.$x").is_ok());
    }

    #[test]
    fn functions() {
        let ok = [
            ("a.*.*", "{{ Wildcard( 2 ) }}.{{wildcard(1)}}"),
            ("a.*", "{{partition(10,1)}}"),
            ("a.*", "{{SplitFromLeft(1,2)}}"),
            ("a.*", "{{splitFromRight(1, 2)}}"),
            ("a.*", "{{sliceFromLeft(1,2)}}"),
            ("a.*", "{{SliceFromRight(1,2)}}"),
            ("a.*", "{{left(1,2)}}.{{Right(1,2)}}"),
            ("a.*", "{{split(1,-)}}"),
            ("a.*", "{{splitfromleft(1,2)}}"),
            ("a.*", "{{random(5)}}"),
        ];
        for (s, d) in ok {
            assert_eq!(validate_mapping(s, d), Ok(()), "{s} -> {d}");
        }
        let bad = [
            ("a.*", "{{wildcard()}}", MappingErrorKind::NotEnoughArgs),
            ("a.*", "{{wildcard(1,2)}}", MappingErrorKind::TooManyArgs),
            ("a.*", "{{wildcard(x)}}", MappingErrorKind::InvalidArg),
            ("a.*", "{{left(1)}}", MappingErrorKind::NotEnoughArgs),
            ("a.*", "{{left(1,2,3)}}", MappingErrorKind::TooManyArgs),
            ("a.*", "{{split(1,a b)}}", MappingErrorKind::InvalidArg),
            ("a.*", "{{random(1,2)}}", MappingErrorKind::NotEnoughArgs),
            ("a.*", "{{partition(x)}}", MappingErrorKind::InvalidArg),
            ("a.*", "{{WILDCARD(1)}}", MappingErrorKind::UnknownFunction),
            ("a.*", "{{sPlit(1,-)}}", MappingErrorKind::UnknownFunction),
            ("a.*", "{{wildcard(3)}}", MappingErrorKind::IndexOutOfRange),
        ];
        for (s, d, kind) in bad {
            assert_eq!(validate_mapping(s, d).map_err(|e| e.kind), Err(kind), "{s} -> {d}");
        }
    }
}
