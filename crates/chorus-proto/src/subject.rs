//! Subject and queue-name rules, on raw bytes.
//!
//! A subject is a sequence of tokens separated by `.`. Subscriptions may use two wildcards, each
//! only as a whole token: `*` matches exactly one token, `>` matches one or more tokens and must
//! be the last token. The rules follow nats-server's `server/sublist.go` (`IsValidSubject`,
//! `IsValidLiteralSubject`, `IsValidPublishSubject`, `subjectHasWildcard`,
//! `subjectIsSubsetMatch`, `SubjectsCollide`).
//!
//! Everything here works on `&[u8]` and never allocates: these checks sit on the publish and
//! subscribe paths. Whitespace means the five bytes nats-server rejects: space, `\t`, `\n`,
//! `\r` and form feed (`\x0c`); other control bytes and non-UTF-8 bytes are accepted, as there.

/// Token separator.
pub const TSEP: u8 = b'.';
/// Partial wildcard: matches exactly one token.
pub const PWC: u8 = b'*';
/// Full wildcard: matches one or more trailing tokens.
pub const FWC: u8 = b'>';

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

#[inline]
fn is_pwc(tok: &[u8]) -> bool {
    tok == [PWC]
}

#[inline]
fn is_fwc(tok: &[u8]) -> bool {
    tok == [FWC]
}

/// Splits a subject into its tokens. An empty subject yields one empty token and `a..b` yields
/// an empty middle token, so callers can spot invalid input by looking for empty tokens.
#[inline]
pub fn tokens(subject: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
    subject.split(|&b| b == TSEP)
}

/// Number of tokens (0 for an empty subject), as nats-server's `numTokens`.
#[inline]
pub fn num_tokens(subject: &[u8]) -> usize {
    if subject.is_empty() {
        return 0;
    }
    1 + subject.iter().filter(|&&b| b == TSEP).count()
}

/// A subject a client may subscribe to: non-empty tokens, no whitespace, `>` only as the last
/// token. `*` and `>` inside a longer token (`foo*`, `a>b`) are ordinary characters.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    scan(subject, true)
}

/// nats-server's `IsValidLiteralSubject`: non-empty tokens and no wildcard token. Like the
/// reference it does not look for whitespace (the protocol parser already split on it); use
/// [`is_valid_publish_subject`] when whitespace must be rejected too.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    // A single pass: track the current token's length and whether it is a lone wildcard.
    let mut len = 0usize;
    let mut first = 0u8;
    for &b in subject {
        if b == TSEP {
            if len == 0 || (len == 1 && (first == PWC || first == FWC)) {
                return false;
            }
            len = 0;
        } else {
            if len == 0 {
                first = b;
            }
            len += 1;
        }
    }
    !(len == 0 || (len == 1 && (first == PWC || first == FWC)))
}

/// nats-server's `IsValidPublishSubject`: a valid subject without wildcard tokens. This is
/// the check applied to publish subjects (in pedantic mode the server reports `Invalid Publish
/// Subject` for subjects failing [`is_valid_literal_subject`], which the protocol parser has
/// already stripped of whitespace, so the two agree on anything that comes off the wire).
pub fn is_valid_publish_subject(subject: &[u8]) -> bool {
    scan(subject, false)
}

/// One pass over a subject checking token shape and whitespace. With `wildcards == false`,
/// any wildcard token makes the subject invalid.
#[inline]
fn scan(subject: &[u8], wildcards: bool) -> bool {
    let mut len = 0usize;
    let mut first = 0u8;
    // Set once a `>` token has ended: any token after it is an error.
    let mut after_fwc = false;
    for &b in subject {
        if b == TSEP {
            if len == 0 || after_fwc {
                return false;
            }
            if len == 1 && (first == PWC || first == FWC) {
                if !wildcards {
                    return false;
                }
                after_fwc = first == FWC;
            }
            len = 0;
        } else if is_ws(b) {
            return false;
        } else {
            if len == 0 {
                first = b;
            }
            len += 1;
        }
    }
    if len == 0 || after_fwc {
        return false;
    }
    wildcards || !(len == 1 && (first == PWC || first == FWC))
}

/// Whether a subject contains a wildcard token (`*` or `>` standing alone between separators).
/// Does not validate the subject.
pub fn subject_has_wildcard(subject: &[u8]) -> bool {
    let n = subject.len();
    for (i, &b) in subject.iter().enumerate() {
        if (b == PWC || b == FWC)
            && (i == 0 || subject[i - 1] == TSEP)
            && (i + 1 == n || subject[i + 1] == TSEP)
        {
            return true;
        }
    }
    false
}

/// A queue group name: non-empty and free of whitespace. nats-server has no further rule (the
/// protocol parser splits arguments on whitespace, so any other byte can reach it), hence `.`,
/// `*` and `>` are ordinary characters in a queue name.
pub fn is_valid_queue_name(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|&b| is_ws(b))
}

/// Whether every subject matched by `subject` is also matched by `of` (nats-server's
/// `subjectIsSubsetMatch(subject, of)`, used for stream and consumer filter checks). Both may
/// contain wildcards: `foo.*` is a subset of `>`, `*.*` and `foo.*`, but not of `foo.bar`, and
/// `foo.>` is not a subset of `foo.*`. A literal subject is a subset of a pattern exactly when
/// the pattern matches it.
///
/// Wildcards are recognised only as whole tokens. (nats-server v2.15 looks at a token's first
/// byte only, so it treats a literal token such as `*x` in `of` as a wildcard; we do not.)
/// Inputs are expected to be valid subjects; an empty token never matches.
pub fn subject_is_subset_of(subject: &[u8], of: &[u8]) -> bool {
    let mut sub = tokens(subject);
    for t2 in tokens(of) {
        let Some(t1) = sub.next() else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if is_fwc(t2) {
            // `>` in `of` covers the rest of `subject`, which has at least this token.
            return !t1.is_empty();
        }
        if t1.is_empty() || is_fwc(t1) {
            return false;
        }
        if is_pwc(t1) {
            if !is_pwc(t2) {
                return false;
            }
        } else if !is_pwc(t2) && t1 != t2 {
            return false;
        }
    }
    sub.next().is_none()
}

/// Whether some literal subject is matched by both `a` and `b` (nats-server's
/// `SubjectsCollide`, which JetStream uses to reject streams with overlapping subjects).
/// Wildcards count only as whole tokens; inputs are expected to be valid subjects.
pub fn subjects_overlap(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let mut ta = tokens(a);
    let mut tb = tokens(b);
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x.is_empty() || y.is_empty() {
                    return false;
                }
                // `>` is last and takes one or more tokens; the other side has a token here
                // and any tail it needs, so a common literal exists if the prefix agreed.
                if is_fwc(x) || is_fwc(y) {
                    return true;
                }
                if !(is_pwc(x) || is_pwc(y) || x == y) {
                    return false;
                }
            }
            // Different token counts and no `>` to absorb the difference.
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_subjects() {
        for s in [
            "foo",
            "foo.bar",
            "*",
            ">",
            "foo.*",
            "foo.>",
            "*.*.>",
            "foo*",
            "foo.b>r",
            "a>",
            "*foo",
            ">foo.bar",
            "foo.*.bar",
            "$SYS.>",
            "_INBOX.abc.*",
            "ü.ñ",
        ] {
            assert!(is_valid_subject(s.as_bytes()), "{s:?} should be valid");
        }
    }

    #[test]
    fn invalid_subjects() {
        for s in [
            "",
            ".",
            "..",
            "foo.",
            ".foo",
            "foo..bar",
            ">.foo",
            "foo.>.bar",
            "foo.>.>",
            "foo bar",
            "foo\tbar",
            "foo.\n",
            " ",
            "\r",
            "foo.\x0c",
            "foo. .bar",
            "> ",
        ] {
            assert!(!is_valid_subject(s.as_bytes()), "{s:?} should be invalid");
        }
        // Bytes nats-server does not treat as whitespace are accepted.
        assert!(is_valid_subject(b"foo\x0bbar"));
        assert!(is_valid_subject(b"foo\x00bar"));
        assert!(is_valid_subject(&[0xff, 0xfe]));
    }

    #[test]
    fn literal_subjects() {
        for s in ["foo", "foo.bar", "foo*", "a>.b", "*x.>y", "foo bar"] {
            assert!(is_valid_literal_subject(s.as_bytes()), "{s:?} should be literal");
        }
        for s in ["", "*", ">", "foo.*", "foo.>", "*.foo", "foo..bar", "foo.", ".foo"] {
            assert!(!is_valid_literal_subject(s.as_bytes()), "{s:?} should not be literal");
        }
    }

    #[test]
    fn publish_subjects() {
        for s in ["foo", "foo.bar", "foo*", "a>.b", "_INBOX.x1.y2"] {
            assert!(is_valid_publish_subject(s.as_bytes()), "{s:?}");
        }
        for s in ["", "*", ">", "foo.*", "foo.>", "*.foo", "foo..bar", "foo bar", ">.a", "a.\t"] {
            assert!(!is_valid_publish_subject(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn publish_is_valid_and_literal() {
        // The definition nats-server uses, checked over a brute-force set of short inputs.
        let alphabet = [b'a', b'.', b'*', b'>', b' '];
        let mut buf = Vec::new();
        for len in 0..=5u32 {
            for mut code in 0..alphabet.len().pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                let want = is_valid_subject(&buf) && !subject_has_wildcard(&buf);
                assert_eq!(is_valid_publish_subject(&buf), want, "{:?}", buf.escape_ascii());
                let lit = is_valid_literal_subject(&buf);
                assert_eq!(lit && !buf.contains(&b' '), want, "{:?}", buf.escape_ascii());
            }
        }
    }

    #[test]
    fn wildcard_detection() {
        for s in ["*", ">", "foo.*", "foo.>", "*.foo", "a.*.b"] {
            assert!(subject_has_wildcard(s.as_bytes()), "{s:?}");
        }
        for s in ["", "foo", "foo*", "a>", "*a.b", "a.>b", "a.b*.c"] {
            assert!(!subject_has_wildcard(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn queue_names() {
        assert!(is_valid_queue_name(b"workers"));
        assert!(is_valid_queue_name(b"a.b.*"));
        assert!(!is_valid_queue_name(b""));
        assert!(!is_valid_queue_name(b"a b"));
        assert!(!is_valid_queue_name(b"a\r\n"));
    }

    #[test]
    fn tokenizing() {
        let t: Vec<&[u8]> = tokens(b"foo.bar.>").collect();
        assert_eq!(t, [&b"foo"[..], b"bar", b">"]);
        assert_eq!(tokens(b"").count(), 1);
        assert_eq!(tokens(b"a..b").collect::<Vec<_>>(), [&b"a"[..], b"", b"b"]);
        assert_eq!(num_tokens(b""), 0);
        assert_eq!(num_tokens(b"a"), 1);
        assert_eq!(num_tokens(b"a.b.c"), 3);
    }

    #[test]
    fn subset() {
        let yes = [
            ("foo.bar", "foo.bar"),
            ("foo.bar", "foo.*"),
            ("foo.bar", ">"),
            ("foo.bar", "foo.>"),
            ("foo.*", ">"),
            ("foo.*", "*.*"),
            ("foo.*", "foo.*"),
            ("foo.*", "foo.>"),
            ("foo.>", "foo.>"),
            ("foo.>", ">"),
            ("foo.bar.>", "foo.>"),
            ("foo.bar.>", "*.*.>"),
            ("*", "*"),
            ("*", ">"),
        ];
        for (s, of) in yes {
            assert!(subject_is_subset_of(s.as_bytes(), of.as_bytes()), "{s} <= {of}");
        }
        let no = [
            ("foo.*", "foo.bar"),
            ("foo.>", "foo.*"),
            ("foo", "foo.>"),
            ("foo.bar", "foo"),
            ("foo", "foo.bar"),
            (">", "*"),
            (">", "foo.>"),
            ("foo.bar", "*"),
            ("foo.bar", "foo.baz"),
            ("*.bar", "foo.bar"),
            ("foo.>", "foo.*.>"),
            // Tokens that merely start with a wildcard byte are literals.
            ("foo.bar", "foo.*x"),
            ("foo.bar", "foo.>x"),
        ];
        for (s, of) in no {
            assert!(!subject_is_subset_of(s.as_bytes(), of.as_bytes()), "{s} !<= {of}");
        }
    }

    #[test]
    fn overlap() {
        let yes = [
            ("foo", "foo"),
            ("foo.bar", "foo.*"),
            ("foo.*", "*.bar"),
            ("foo.>", "*.bar.baz"),
            ("foo.*", "foo.>"),
            ("*.>", ">"),
            ("a.>", "a.b.>"),
            ("*.*", "a.*"),
            (">", "a"),
        ];
        for (a, b) in yes {
            assert!(subjects_overlap(a.as_bytes(), b.as_bytes()), "{a} ~ {b}");
            assert!(subjects_overlap(b.as_bytes(), a.as_bytes()), "{b} ~ {a}");
        }
        let no = [
            ("foo", "bar"),
            ("foo.bar", "foo"),
            ("foo.*", "foo"),
            ("foo.*", "foo.*.*"),
            ("foo.>", "foo"),
            ("foo.>", "*"),
            ("a.>", "b.*.c.>"),
            ("a.*.>", "a.b"),
            ("*.a", "*.b"),
            ("foo.*x.*", "foo.bar.*"),
        ];
        for (a, b) in no {
            assert!(!subjects_overlap(a.as_bytes(), b.as_bytes()), "{a} !~ {b}");
            assert!(!subjects_overlap(b.as_bytes(), a.as_bytes()), "{b} !~ {a}");
        }
    }

    /// Token-wise match of a literal subject against a pattern, the definition the fast
    /// functions must agree with.
    fn matches(pattern: &[&str], literal: &[&str]) -> bool {
        match (pattern.split_first(), literal.split_first()) {
            (None, None) => true,
            (Some((&">", _)), Some(_)) => true,
            (Some((p, pr)), Some((l, lr))) => (*p == "*" || p == l) && matches(pr, lr),
            _ => false,
        }
    }

    /// All subjects of 1..=max_len tokens over `alphabet` (plus wildcards when asked), with
    /// `>` only last.
    fn all_subjects(
        alphabet: &[&'static str],
        max_len: usize,
        wild: bool,
    ) -> Vec<Vec<&'static str>> {
        let mut toks: Vec<&'static str> = alphabet.to_vec();
        if wild {
            toks.push("*");
        }
        let mut out: Vec<Vec<&'static str>> = vec![vec![]];
        let mut all = Vec::new();
        for _ in 0..max_len {
            let mut next = Vec::new();
            for prefix in &out {
                for t in &toks {
                    let mut p = prefix.clone();
                    p.push(*t);
                    next.push(p);
                }
                if wild {
                    let mut p = prefix.clone();
                    p.push(">");
                    all.push(p);
                }
            }
            all.extend(next.iter().cloned());
            out = next;
        }
        all
    }

    #[test]
    fn subset_and_overlap_agree_with_brute_force() {
        let patterns = all_subjects(&["a", "b"], 3, true);
        // Literals one token longer than any pattern, with a token no pattern names, so that
        // every distinction the patterns can make shows up among them.
        let literals = all_subjects(&["a", "b", "z"], 4, false);
        let matched: Vec<Vec<bool>> =
            patterns.iter().map(|p| literals.iter().map(|l| matches(p, l)).collect()).collect();
        for (i, a) in patterns.iter().enumerate() {
            let sa = a.join(".");
            for (j, b) in patterns.iter().enumerate() {
                let sb = b.join(".");
                let mi = &matched[i];
                let mj = &matched[j];
                let overlap = mi.iter().zip(mj).any(|(x, y)| *x && *y);
                let subset = mi.iter().zip(mj).all(|(x, y)| !*x || *y);
                assert_eq!(subjects_overlap(sa.as_bytes(), sb.as_bytes()), overlap, "{sa} ~ {sb}");
                assert_eq!(
                    subject_is_subset_of(sa.as_bytes(), sb.as_bytes()),
                    subset,
                    "{sa} <= {sb}"
                );
            }
        }
    }
}
