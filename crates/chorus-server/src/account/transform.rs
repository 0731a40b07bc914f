//! Subject transforms (nats-server's `subjectTransform`): the mapping from a source pattern to
//! a destination used by account `mappings {}`, stream imports with `to`, and service imports
//! whose local subject differs from the exported one.
//!
//! A destination token is a literal, `$N` or `{{wildcard(N)}}` (the N-th `*` of the source),
//! or one of nats-server's functions of a wildcard token: `partition(n, i, ...)` (a bucket
//! from an FNV-1a hash of the named wildcard tokens, or of the whole subject),
//! `splitFromLeft/Right(i, pos)`, `sliceFromLeft/Right(i, size)`, `left/right(i, len)`,
//! `split(i, delimiter)`, and `random(n)`. A trailing `>` in both source and destination
//! passes the remaining tokens through. Import transforms are "strict": only wildcard
//! references, every `*` used, so they can be reversed (a subscription on the importer's side
//! becomes a subscription on the exporter's side).

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("invalid subject")]
    BadSubject,
    #[error("invalid mapping destination: mapping destination index out of range in {0}")]
    IndexOutOfRange(String),
    #[error("invalid mapping destination: not all wildcards are being used in {0}")]
    NotUsingAllWildcards(String),
    #[error("invalid mapping destination: mapping function not supported for import in {0}")]
    NotForImport(String),
    #[error("invalid mapping destination: invalid argument in {0}")]
    InvalidArg(String),
    #[error("invalid mapping destination: unknown mapping destination function in {0}")]
    UnknownFunction(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    /// Index of the source token whose value is copied.
    Wild(usize),
    /// Number of buckets and the source token indexes hashed (all tokens when empty).
    Partition(u32, Vec<usize>),
    /// A function of one source token and an integer.
    Func(Func, usize, i64),
    /// `split(i, delimiter)`.
    Split(usize, String),
    Random(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    SplitFromLeft,
    SplitFromRight,
    SliceFromLeft,
    SliceFromRight,
    Left,
    Right,
}

/// A compiled transform from `src` to `dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub src: String,
    pub dest: String,
    src_tokens: usize,
    toks: Vec<Tok>,
    /// The destination ends in `>`: the source's remaining tokens are appended.
    fwc: bool,
}

fn info(s: &str) -> Option<(Vec<&str>, usize, bool)> {
    if s.is_empty() {
        return None;
    }
    let toks: Vec<&str> = s.split('.').collect();
    let mut pwcs = 0;
    let mut fwc = false;
    for t in &toks {
        if t.is_empty() || fwc || t.contains(char::is_whitespace) {
            return None;
        }
        match *t {
            "*" => pwcs += 1,
            ">" => fwc = true,
            _ => {}
        }
    }
    Some((toks, pwcs, fwc))
}

/// What a destination token asks for (wildcard numbers are 1-based, as written).
enum Placeholder {
    None,
    Wild(Vec<usize>),
    Partition(u32, Vec<usize>),
    Func(Func, usize, i64),
    Split(usize, String),
    Random(u32),
}

fn placeholder(token: &str) -> Result<Placeholder, TransformError> {
    if let Some(n) = token.strip_prefix('$') {
        if let Ok(i) = n.parse::<usize>() {
            return Ok(Placeholder::Wild(vec![i]));
        }
        return Ok(Placeholder::None);
    }
    let Some(inner) = token.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) else {
        return Ok(Placeholder::None);
    };
    let inner = inner.trim();
    let (name, args) = match inner.find('(') {
        Some(p) if inner.ends_with(')') => (&inner[..p], &inner[p + 1..inner.len() - 1]),
        _ => return Err(TransformError::UnknownFunction(token.to_string())),
    };
    let args: Vec<&str> = args.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    let bad = || TransformError::InvalidArg(token.into());
    let ints = || -> Result<Vec<usize>, TransformError> {
        args.iter().map(|a| a.parse::<usize>().map_err(|_| bad())).collect()
    };
    let index_int = |f: Func| -> Result<Placeholder, TransformError> {
        if args.len() != 2 {
            return Err(bad());
        }
        let i = args[0].parse::<usize>().map_err(|_| bad())?;
        let n = args[1].parse::<i32>().map_err(|_| bad())?;
        Ok(Placeholder::Func(f, i, i64::from(n)))
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "splitfromleft" => return index_int(Func::SplitFromLeft),
        "splitfromright" => return index_int(Func::SplitFromRight),
        "slicefromleft" => return index_int(Func::SliceFromLeft),
        "slicefromright" => return index_int(Func::SliceFromRight),
        "left" => return index_int(Func::Left),
        "right" => return index_int(Func::Right),
        "split" => {
            if args.len() != 2 || args[1].contains(' ') || args[1].contains('.') {
                return Err(bad());
            }
            let i = args[0].parse::<usize>().map_err(|_| bad())?;
            return Ok(Placeholder::Split(i, args[1].to_string()));
        }
        "random" => {
            let n = match args.as_slice() {
                [n] => n.parse::<i32>().ok().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            return Ok(Placeholder::Random(n));
        }
        _ => {}
    }
    match name.trim().to_ascii_lowercase().as_str() {
        "wildcard" => {
            let v = ints()?;
            if v.len() != 1 {
                return Err(TransformError::IndexOutOfRange(token.into()));
            }
            Ok(Placeholder::Wild(v))
        }
        "partition" => {
            let v = ints()?;
            let Some((&n, rest)) = v.split_first() else {
                return Err(bad());
            };
            if n > i32::MAX as usize {
                return Err(bad());
            }
            Ok(Placeholder::Partition(n as u32, rest.to_vec()))
        }
        _ => Err(TransformError::UnknownFunction(token.into())),
    }
}

impl Transform {
    /// A mapping transform (`mappings {}`).
    pub fn new(src: &str, dest: &str) -> Result<Transform, TransformError> {
        Transform::build(src, dest, false)
    }

    /// An import transform: reversible, wildcard references only, every `*` used.
    pub fn strict(src: &str, dest: &str) -> Result<Transform, TransformError> {
        Transform::build(src, dest, true)
    }

    fn build(src: &str, dest: &str, strict: bool) -> Result<Transform, TransformError> {
        let src = if src.is_empty() { ">" } else { src };
        let (stoks, npwcs, sfwc) = info(src).ok_or(TransformError::BadSubject)?;
        let (dtoks, dpwcs, dfwc) = info(dest).ok_or(TransformError::BadSubject)?;
        if dpwcs > 0 || sfwc != dfwc {
            return Err(TransformError::BadSubject);
        }
        // Source position of the i-th `*` (1-based).
        let wild_pos: Vec<usize> =
            stoks.iter().enumerate().filter(|(_, t)| **t == "*").map(|(i, _)| i).collect();
        let mut toks = Vec::with_capacity(dtoks.len());
        let mut used = 0;
        for t in &dtoks {
            let idx = |ws: &[usize]| -> Result<Vec<usize>, TransformError> {
                ws.iter()
                    .map(|&w| {
                        if w == 0 || w > npwcs {
                            Err(TransformError::IndexOutOfRange(format!("{t}: [{w}]")))
                        } else {
                            Ok(wild_pos[w - 1])
                        }
                    })
                    .collect()
            };
            let ph = placeholder(t)?;
            let is_plain = matches!(ph, Placeholder::None | Placeholder::Wild(_));
            if strict && !is_plain {
                return Err(TransformError::NotForImport((*t).into()));
            }
            // Without wildcards in the source only partition and random make sense.
            let sourceless = matches!(
                ph,
                Placeholder::None | Placeholder::Partition(..) | Placeholder::Random(_)
            );
            if npwcs == 0 && !sfwc && !sourceless {
                return Err(TransformError::IndexOutOfRange((*t).into()));
            }
            match ph {
                Placeholder::None => toks.push(Tok::Lit((*t).to_string())),
                Placeholder::Wild(ws) => {
                    used += ws.len();
                    toks.push(Tok::Wild(idx(&ws)?[0]));
                }
                Placeholder::Partition(n, ws) => toks.push(Tok::Partition(n, idx(&ws)?)),
                Placeholder::Func(f, w, n) => {
                    used += 1;
                    toks.push(Tok::Func(f, idx(&[w])?[0], n));
                }
                Placeholder::Split(w, d) => {
                    used += 1;
                    toks.push(Tok::Split(idx(&[w])?[0], d));
                }
                Placeholder::Random(n) => toks.push(Tok::Random(n)),
            }
        }
        if strict && used < npwcs {
            return Err(TransformError::NotUsingAllWildcards(dest.into()));
        }
        Ok(Transform {
            src: src.to_string(),
            dest: dest.to_string(),
            src_tokens: stoks.len(),
            toks,
            fwc: dfwc,
        })
    }

    /// Maps a literal subject that matches the source (callers check the match).
    pub fn apply(&self, subject: &str) -> String {
        let tokens: Vec<&str> = subject.split('.').collect();
        let mut out = String::with_capacity(subject.len() + 16);
        for (i, t) in self.toks.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match t {
                Tok::Lit(l) if l == ">" => {
                    out.pop();
                    break;
                }
                Tok::Lit(l) => out.push_str(l),
                Tok::Wild(i) => out.push_str(tokens.get(*i).copied().unwrap_or_default()),
                Tok::Partition(n, idx) => {
                    let key = if idx.is_empty() {
                        subject.to_string()
                    } else {
                        idx.iter().map(|i| tokens.get(*i).copied().unwrap_or_default()).collect()
                    };
                    let bucket = if *n == 0 { 0 } else { fnv1a(key.as_bytes()) % n };
                    let _ = write!(out, "{bucket}");
                }
                Tok::Random(n) => {
                    let r = if *n == 0 { 0 } else { rand::random_range(0..*n) };
                    let _ = write!(out, "{r}");
                }
                Tok::Split(i, delim) => {
                    // Empty pieces are dropped, as nats-server does.
                    let src = tokens.get(*i).copied().unwrap_or_default();
                    let pieces: Vec<&str> =
                        src.split(delim.as_str()).filter(|p| !p.is_empty()).collect();
                    out.push_str(&pieces.join("."));
                }
                Tok::Func(f, i, n) => {
                    let src = tokens.get(*i).copied().unwrap_or_default();
                    apply_func(&mut out, *f, src, *n);
                }
            }
        }
        if self.fwc && tokens.len() >= self.src_tokens {
            // The source's `>` is its last token: pass what it matched through.
            let tail = &tokens[self.src_tokens - 1..];
            if !out.is_empty() && !out.ends_with('.') {
                out.push('.');
            }
            out.push_str(&tail.join("."));
        }
        out
    }

    /// The transform back from `dest` to `src` (import transforms only, see [`Transform::strict`]).
    pub fn reverse(&self) -> Option<Transform> {
        // Destination with placeholders as `*`; the source with its wildcards as references to
        // the destination's `*` positions.
        let mut nsrc = Vec::new();
        let mut order = Vec::new();
        for t in &self.toks {
            match t {
                Tok::Lit(l) => nsrc.push(l.clone()),
                Tok::Wild(i) => {
                    nsrc.push("*".into());
                    order.push(*i);
                }
                Tok::Partition(..) | Tok::Func(..) | Tok::Split(..) | Tok::Random(_) => {
                    return None;
                }
            }
        }
        let src_toks: Vec<&str> = self.src.split('.').collect();
        let mut ndest = Vec::new();
        for (i, t) in src_toks.iter().enumerate() {
            if *t == "*" {
                let k = order.iter().position(|&o| o == i)?;
                ndest.push(format!("${}", k + 1));
            } else {
                ndest.push((*t).to_string());
            }
        }
        Transform::strict(&nsrc.join("."), &ndest.join(".")).ok()
    }
}

/// nats-server's token functions: a no-op when the size or position does not fit the token.
fn apply_func(out: &mut String, f: Func, src: &str, n: i64) {
    let len = src.len() as i64;
    let fits = n > 0
        && n < len
        && src.is_char_boundary(n as usize)
        && src.is_char_boundary((len - n) as usize);
    if !fits {
        out.push_str(src);
        return;
    }
    let n = n as usize;
    let len = src.len();
    match f {
        Func::SplitFromLeft => {
            out.push_str(&src[..n]);
            out.push('.');
            out.push_str(&src[n..]);
        }
        Func::SplitFromRight => {
            out.push_str(&src[..len - n]);
            out.push('.');
            out.push_str(&src[len - n..]);
        }
        Func::Left => out.push_str(&src[..n]),
        Func::Right => out.push_str(&src[len - n..]),
        Func::SliceFromLeft => {
            let pieces: Vec<&str> = src
                .as_bytes()
                .chunks(n)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            out.push_str(&pieces.join("."));
        }
        Func::SliceFromRight => {
            let rem = len % n;
            let mut pieces: Vec<&str> = Vec::new();
            if rem > 0 {
                pieces.push(&src[..rem]);
            }
            pieces.extend(
                src.as_bytes()[rem..].chunks(n).map(|c| std::str::from_utf8(c).unwrap_or_default()),
            );
            out.push_str(&pieces.join("."));
        }
    }
}

/// FNV-1a 32, as nats-server's partition hash.
fn fnv1a(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &c in b {
        h ^= u32::from(c);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Replaces each `*` of a pattern by `$1`, `$2`, ... (nats-server's `transformTokenize`), so a
/// `to` like `bar.*` can serve as a transform destination.
pub fn tokenize(subject: &str) -> String {
    let mut i = 0;
    subject
        .split('.')
        .map(|t| {
            if t == "*" {
                i += 1;
                format!("${i}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Replaces wildcard placeholders of a destination by `*` (nats-server's `transformUntokenize`).
pub fn untokenize(subject: &str) -> String {
    subject
        .split('.')
        .map(|t| match placeholder(t) {
            Ok(Placeholder::Wild(_)) => "*",
            _ => t,
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_wildcard_forms() {
        let t = Transform::new("foo", "bar.baz").unwrap();
        assert_eq!(t.apply("foo"), "bar.baz");
        let t = Transform::new("orders.*.*", "o.$2.{{wildcard(1)}}").unwrap();
        assert_eq!(t.apply("orders.eu.42"), "o.42.eu");
        let t = Transform::new("a.>", "b.>").unwrap();
        assert_eq!(t.apply("a.x.y"), "b.x.y");
        let t = Transform::new("a.*.>", "b.$1.c.>").unwrap();
        assert_eq!(t.apply("a.1.x.y"), "b.1.c.x.y");
    }

    #[test]
    fn errors_match_nats_server_rules() {
        assert_eq!(Transform::new("a.*", "b.*"), Err(TransformError::BadSubject));
        assert_eq!(Transform::new("a.>", "b"), Err(TransformError::BadSubject));
        assert!(matches!(Transform::new("a.*", "b.$2"), Err(TransformError::IndexOutOfRange(_))));
        assert!(matches!(
            Transform::strict("a.*.*", "b.$1"),
            Err(TransformError::NotUsingAllWildcards(_))
        ));
        assert!(matches!(
            Transform::strict("a.*", "b.{{partition(3,1)}}"),
            Err(TransformError::NotForImport(_))
        ));
    }

    #[test]
    fn token_functions() {
        let t = Transform::new("a.*", "{{splitFromLeft(1,2)}}").unwrap();
        assert_eq!(t.apply("a.abcdef"), "ab.cdef");
        let t = Transform::new("a.*", "{{SplitFromRight(1,2)}}").unwrap();
        assert_eq!(t.apply("a.abcdef"), "abcd.ef");
        let t = Transform::new("a.*", "{{sliceFromLeft(1,2)}}").unwrap();
        assert_eq!(t.apply("a.abcde"), "ab.cd.e");
        let t = Transform::new("a.*", "{{sliceFromRight(1,2)}}").unwrap();
        assert_eq!(t.apply("a.abcde"), "a.bc.de");
        let t = Transform::new("a.*", "x.{{left(1,3)}}.{{right(1,2)}}").unwrap();
        assert_eq!(t.apply("a.abcde"), "x.abc.de");
        let t = Transform::new("a.*", "{{split(1,-)}}").unwrap();
        assert_eq!(t.apply("a.-x--y-"), "x.y");
        // Too small to apply: the token is kept.
        let t = Transform::new("a.*", "{{splitFromLeft(1,9)}}").unwrap();
        assert_eq!(t.apply("a.abc"), "abc");
        let t = Transform::new("a", "b.{{random(3)}}").unwrap();
        let r: u32 = t.apply("a").split('.').nth(1).unwrap().parse().unwrap();
        assert!(r < 3);
        assert!(matches!(
            Transform::new("a", "b.{{left(1,2)}}"),
            Err(TransformError::IndexOutOfRange(_))
        ));
        assert!(matches!(
            Transform::new("a.*", "{{nope(1)}}"),
            Err(TransformError::UnknownFunction(_))
        ));
        assert!(matches!(
            Transform::new("a.*", "{{split(1)}}"),
            Err(TransformError::InvalidArg(_))
        ));
    }

    #[test]
    fn partition_is_stable_and_bounded() {
        let t = Transform::new("p.*", "q.{{partition(4,1)}}.$1").unwrap();
        let a = t.apply("p.key1");
        assert_eq!(a, t.apply("p.key1"));
        let bucket: u32 = a.split('.').nth(1).unwrap().parse().unwrap();
        assert!(bucket < 4);
        assert!(a.ends_with(".key1"));
    }

    #[test]
    fn reverse_of_import_transforms() {
        let t = Transform::strict("foo.*.*", "bar.$2.$1").unwrap();
        let r = t.reverse().unwrap();
        assert_eq!(r.apply(&t.apply("foo.a.b")), "foo.a.b");
        let t = Transform::strict("foo.>", &tokenize("pre.foo.>")).unwrap();
        assert_eq!(t.apply("foo.x.y"), "pre.foo.x.y");
        assert_eq!(t.reverse().unwrap().apply("pre.foo.x.y"), "foo.x.y");
        assert_eq!(tokenize("a.*.b.*"), "a.$1.b.$2");
        assert_eq!(untokenize("a.$1.{{wildcard(2)}}"), "a.*.*");
    }
}
