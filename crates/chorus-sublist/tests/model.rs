//! Model test: random insert/remove/match sequences against a naive list-scanning matcher.
//! Results are compared as multisets: plain subscribers, and members per queue name.

use std::collections::BTreeMap;

use chorus_sublist::{Sublist, SublistError};
use proptest::prelude::*;

/// Token-wise match of a published subject against a subscription pattern. Published `*` and
/// `>` tokens are plain tokens that only wildcards match (nats-server routes them that way).
fn naive_matches(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    if s.iter().any(|t| t.is_empty()) {
        return false;
    }
    for (i, pt) in p.iter().enumerate() {
        if *pt == ">" {
            return s.len() > i;
        }
        match s.get(i) {
            Some(st) if *pt == "*" || pt == st => {}
            _ => return false,
        }
    }
    p.len() == s.len()
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        subject: String,
        queue: Option<String>,
        id: u8,
    },
    /// Remove the n-th live subscription (mod the count).
    RemoveLive(usize),
    /// Remove an arbitrary triple, which may or may not be live.
    RemoveAny {
        subject: String,
        queue: Option<String>,
        id: u8,
    },
    /// Remove every live subscription of one id in a batch (a closing connection), plus a
    /// bogus entry.
    RemoveBatch(u8),
    Match(String),
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(str::to_string)
}

/// Subscription subjects: 1..=4 tokens from {a, b, c, *}, optionally ending in `>`.
fn pattern() -> impl Strategy<Value = String> {
    let tok = prop_oneof![3 => token(), 1 => Just("*".to_string())];
    (prop::collection::vec(tok, 0..4), any::<bool>()).prop_filter_map(
        "empty subject",
        |(mut toks, fwc)| {
            if fwc || toks.is_empty() {
                toks.push(">".to_string());
            }
            Some(toks.join("."))
        },
    )
}

/// Published subjects: 1..=5 tokens, mostly literal, sometimes a `*`/`>` token or an empty one.
fn literal() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        12 => token(),
        1 => Just("*".to_string()),
        1 => Just(">".to_string()),
        1 => Just(String::new()),
    ];
    prop::collection::vec(tok, 1..=5).prop_map(|t| t.join("."))
}

fn queue() -> impl Strategy<Value = Option<String>> {
    prop_oneof![2 => Just(None), 1 => Just(Some("q1".into())), 1 => Just(Some("q2".into()))]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (pattern(), queue(), 0u8..6).prop_map(|(subject, queue, id)| Op::Insert {
            subject,
            queue,
            id
        }),
        3 => any::<usize>().prop_map(Op::RemoveLive),
        1 => (pattern(), queue(), 0u8..6).prop_map(|(subject, queue, id)| Op::RemoveAny {
            subject,
            queue,
            id
        }),
        1 => (0u8..6).prop_map(Op::RemoveBatch),
        8 => literal().prop_map(Op::Match),
    ]
}

type Live = Vec<(String, Option<String>, u8)>;

fn check_match(sl: &Sublist<u8>, live: &Live, subject: &str) -> Result<(), TestCaseError> {
    let mut want_plain = Vec::new();
    let mut want_groups: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (pattern, queue, id) in live {
        if naive_matches(pattern, subject) {
            match queue {
                None => want_plain.push(*id),
                Some(q) => want_groups.entry(q.as_bytes().to_vec()).or_default().push(*id),
            }
        }
    }
    want_plain.sort();
    want_groups.values_mut().for_each(|v| v.sort());

    let (result, generation) = sl.match_with_generation(subject.as_bytes());
    prop_assert_eq!(generation, sl.generation());
    let mut got_plain = result.psubs.clone();
    got_plain.sort();
    let mut got_groups: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (name, members) in result.queue_groups() {
        prop_assert!(!members.is_empty(), "empty queue group in result");
        let mut m = members.to_vec();
        m.sort();
        prop_assert!(got_groups.insert(name.to_vec(), m).is_none(), "queue group listed twice");
    }
    prop_assert_eq!(&got_plain, &want_plain, "plain subscribers for {:?}", subject);
    prop_assert_eq!(&got_groups, &want_groups, "queue groups for {:?}", subject);
    let interest = !want_plain.is_empty() || !want_groups.is_empty();
    prop_assert_eq!(sl.has_interest(subject.as_bytes()), interest, "interest in {:?}", subject);
    Ok(())
}

fn run(sl: &Sublist<u8>, ops: &[Op]) -> Result<Live, TestCaseError> {
    let mut live: Live = Vec::new();
    let mut generation = sl.generation();
    for op in ops {
        match op {
            Op::Insert { subject, queue, id } => {
                sl.insert(subject.as_bytes(), queue.as_deref().map(str::as_bytes), *id)
                    .map_err(|e| TestCaseError::fail(format!("insert {subject}: {e}")))?;
                live.push((subject.clone(), queue.clone(), *id));
                prop_assert!(sl.generation() > generation);
            }
            Op::RemoveLive(n) => {
                if live.is_empty() {
                    continue;
                }
                let (subject, queue, id) = live.remove(n % live.len());
                prop_assert_eq!(
                    sl.remove(subject.as_bytes(), queue.as_deref().map(str::as_bytes), &id),
                    Ok(())
                );
                prop_assert!(sl.generation() > generation);
            }
            Op::RemoveAny { subject, queue, id } => {
                let pos = live.iter().position(|(s, q, i)| s == subject && q == queue && i == id);
                let res = sl.remove(subject.as_bytes(), queue.as_deref().map(str::as_bytes), id);
                match pos {
                    Some(p) => {
                        live.remove(p);
                        prop_assert_eq!(res, Ok(()));
                        prop_assert!(sl.generation() > generation);
                    }
                    None => {
                        prop_assert_eq!(res, Err(SublistError::NotFound));
                        prop_assert_eq!(sl.generation(), generation);
                    }
                }
            }
            Op::RemoveBatch(id) => {
                let (mine, rest): (Live, Live) = live.drain(..).partition(|(_, _, i)| i == id);
                live = rest;
                let mut batch: Vec<(String, Option<Vec<u8>>, u8)> = mine
                    .iter()
                    .map(|(s, q, i)| (s.clone(), q.as_ref().map(|q| q.as_bytes().to_vec()), *i))
                    .collect();
                batch.push(("a.b.c.a.b".into(), None, *id));
                prop_assert_eq!(sl.remove_batch(batch), mine.len());
                if mine.is_empty() {
                    prop_assert_eq!(sl.generation(), generation);
                } else {
                    prop_assert_eq!(sl.generation(), generation + 1);
                }
            }
            Op::Match(subject) => check_match(sl, &live, subject)?,
        }
        generation = sl.generation();
        prop_assert_eq!(sl.count(), live.len());
    }
    // Everything live is listed, and every literal we can build still matches correctly.
    let mut all = sl.all();
    all.sort();
    let mut want: Vec<u8> = live.iter().map(|(_, _, i)| *i).collect();
    want.sort();
    prop_assert_eq!(all, want);
    for s in ["a", "a.b", "b.c.a", "c.c.c.c", "a.*", "a.>", "a.b.c.a.b"] {
        check_match(sl, &live, s)?;
    }
    Ok(live)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cached_sublist_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        run(&Sublist::new(), &ops)?;
    }

    #[test]
    fn uncached_sublist_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        run(&Sublist::without_cache(), &ops)?;
    }

    /// Draining everything afterwards leaves a sublist that matches nothing and still works.
    #[test]
    fn drain_then_reuse(ops in prop::collection::vec(op(), 1..80)) {
        let sl = Sublist::new();
        let live = run(&sl, &ops)?;
        for (subject, queue, id) in &live {
            prop_assert_eq!(
                sl.remove(subject.as_bytes(), queue.as_deref().map(str::as_bytes), id),
                Ok(())
            );
        }
        prop_assert_eq!(sl.count(), 0);
        prop_assert!(sl.all().is_empty());
        for s in ["a", "a.b", "b.c.a", "c.c.c.c", "a.*"] {
            prop_assert!(sl.match_subject(s.as_bytes()).is_empty());
            prop_assert!(!sl.has_interest(s.as_bytes()));
        }
        sl.insert(b"a.*", Some(b"q1"), 9).unwrap();
        prop_assert_eq!(&sl.match_subject(b"a.b").qsubs, &vec![vec![9u8]]);
    }
}

#[test]
fn naive_matcher_sanity() {
    assert!(naive_matches("a.*", "a.b"));
    assert!(naive_matches("a.>", "a.b.c"));
    assert!(!naive_matches("a.>", "a"));
    assert!(naive_matches(">", "a"));
    assert!(!naive_matches("a.*", "a.b.c"));
    assert!(!naive_matches("a.b", "a.*"));
    assert!(naive_matches("a.*", "a.>"));
    assert!(!naive_matches("*", ""));
    assert!(!naive_matches("a.*", "a."));
}
