//! Subject filters: one subject, a wildcard, or several (consumer `filter_subjects`).

use chorus_proto::subject::{subject_has_wildcard, subject_is_subset_of};

/// A set of subjects a read is restricted to. Built once per consumer or request, so matching
/// does not re-parse the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFilter {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    All,
    /// Literal subjects, no wildcard among them.
    Literals(Vec<String>),
    /// At least one wildcard pattern (literals may be mixed in).
    Patterns(Vec<String>),
}

impl SubjectFilter {
    /// Every subject.
    pub fn all() -> Self {
        SubjectFilter { kind: Kind::All }
    }

    /// One subject or pattern. `""` and `>` mean all, as in nats-server.
    pub fn subject(subject: &str) -> Self {
        Self::any_of([subject])
    }

    /// Several subjects or patterns (a message matches if any matches). Empty = all.
    pub fn any_of<I, S>(subjects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for s in subjects {
            let s = s.as_ref();
            if s.is_empty() || s == ">" {
                return Self::all();
            }
            if !list.iter().any(|x| x == s) {
                list.push(s.to_owned());
            }
        }
        if list.is_empty() {
            return Self::all();
        }
        let kind = if list.iter().any(|s| subject_has_wildcard(s.as_bytes())) {
            Kind::Patterns(list)
        } else {
            Kind::Literals(list)
        };
        SubjectFilter { kind }
    }

    /// Whether the filter matches every subject.
    pub fn is_all(&self) -> bool {
        matches!(self.kind, Kind::All)
    }

    /// The single literal subject, if that is all the filter is.
    pub fn as_literal(&self) -> Option<&str> {
        match &self.kind {
            Kind::Literals(l) if l.len() == 1 => Some(&l[0]),
            _ => None,
        }
    }

    /// The literal subjects, if the filter has no wildcard (and is not all).
    pub fn literals(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Literals(l) => Some(l),
            _ => None,
        }
    }

    /// Whether a literal subject matches.
    pub fn matches(&self, subject: &str) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Literals(l) => l.iter().any(|s| s == subject),
            Kind::Patterns(p) => {
                p.iter().any(|f| subject_is_subset_of(subject.as_bytes(), f.as_bytes()))
            }
        }
    }

    /// The longest prefix every matching subject shares (the literal part before the first
    /// wildcard token), so ordered subject maps can narrow a scan. Empty = no narrowing.
    pub fn common_prefix(&self) -> &str {
        match &self.kind {
            Kind::All => "",
            Kind::Literals(l) | Kind::Patterns(l) if l.len() == 1 => literal_prefix(&l[0]),
            _ => "",
        }
    }
}

/// The part of a pattern before its first wildcard token, ending at a token separator.
fn literal_prefix(pattern: &str) -> &str {
    let mut offset = 0;
    for tok in pattern.split('.') {
        if tok == "*" || tok == ">" {
            return &pattern[..offset];
        }
        offset += tok.len() + 1;
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_matches() {
        assert!(SubjectFilter::subject(">").is_all());
        assert!(SubjectFilter::subject("").is_all());
        assert!(SubjectFilter::any_of(Vec::<String>::new()).is_all());
        let lit = SubjectFilter::subject("a.b");
        assert_eq!(lit.as_literal(), Some("a.b"));
        assert!(lit.matches("a.b") && !lit.matches("a.c"));
        let wc = SubjectFilter::subject("a.*.c");
        assert!(wc.as_literal().is_none());
        assert!(wc.matches("a.x.c") && !wc.matches("a.x.d") && !wc.matches("a.x.c.d"));
        let multi = SubjectFilter::any_of(["x.>", "y"]);
        assert!(multi.matches("x.1.2") && multi.matches("y") && !multi.matches("x"));
        assert_eq!(multi.common_prefix(), "");
    }

    #[test]
    fn literal_prefix_stops_at_first_wildcard_token() {
        assert_eq!(literal_prefix("a.b.*"), "a.b.");
        assert_eq!(literal_prefix("a.*.c"), "a.");
        assert_eq!(literal_prefix("*.c"), "");
        assert_eq!(literal_prefix("a.b"), "a.b");
        assert_eq!(literal_prefix("ab*.>"), "ab*.");
        assert_eq!(SubjectFilter::subject("orders.>").common_prefix(), "orders.");
    }
}
