use super::*;

use std::sync::atomic::AtomicUsize;
use std::thread;

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Plain subscribers of a match, sorted.
fn plain(sl: &Sublist<u32>, subject: &str) -> Vec<u32> {
    sorted(&sl.match_subject(subject.as_bytes()).psubs)
}

/// Queue groups of a match as (name, sorted members), sorted by name.
fn groups(sl: &Sublist<u32>, subject: &str) -> Vec<(String, Vec<u32>)> {
    let r = sl.match_subject(subject.as_bytes());
    let mut g: Vec<_> = r
        .queue_groups()
        .map(|(n, m)| (String::from_utf8(n.to_vec()).unwrap(), sorted(m)))
        .collect();
    g.sort();
    g
}

fn both() -> [Sublist<u32>; 2] {
    [Sublist::new(), Sublist::without_cache()]
}

#[test]
fn literal_match() {
    for sl in both() {
        sl.insert(b"foo.bar", None, 1).unwrap();
        sl.insert(b"foo.baz", None, 2).unwrap();
        sl.insert(b"foo", None, 3).unwrap();
        assert_eq!(plain(&sl, "foo.bar"), [1]);
        assert_eq!(plain(&sl, "foo.baz"), [2]);
        assert_eq!(plain(&sl, "foo"), [3]);
        assert_eq!(plain(&sl, "foo.bar.baz"), [] as [u32; 0]);
        assert_eq!(plain(&sl, "bar"), [] as [u32; 0]);
        assert_eq!(sl.count(), 3);
    }
}

#[test]
fn partial_wildcard() {
    for sl in both() {
        sl.insert(b"foo.*", None, 1).unwrap();
        sl.insert(b"*.bar", None, 2).unwrap();
        sl.insert(b"*.*", None, 3).unwrap();
        sl.insert(b"foo.*.baz", None, 4).unwrap();
        sl.insert(b"*", None, 5).unwrap();
        assert_eq!(plain(&sl, "foo.bar"), [1, 2, 3]);
        assert_eq!(plain(&sl, "foo.x"), [1, 3]);
        assert_eq!(plain(&sl, "x.bar"), [2, 3]);
        assert_eq!(plain(&sl, "foo.x.baz"), [4]);
        assert_eq!(plain(&sl, "foo.x.bar"), [] as [u32; 0]);
        assert_eq!(plain(&sl, "foo"), [5]);
        assert_eq!(plain(&sl, "foo.bar.baz.qux"), [] as [u32; 0]);
    }
}

#[test]
fn full_wildcard() {
    for sl in both() {
        sl.insert(b">", None, 1).unwrap();
        sl.insert(b"foo.>", None, 2).unwrap();
        sl.insert(b"foo.*.>", None, 3).unwrap();
        sl.insert(b"foo.bar.>", None, 4).unwrap();
        assert_eq!(plain(&sl, "foo"), [1]);
        assert_eq!(plain(&sl, "foo.bar"), [1, 2]);
        assert_eq!(plain(&sl, "foo.bar.baz"), [1, 2, 3, 4]);
        assert_eq!(plain(&sl, "foo.x.y.z"), [1, 2, 3]);
        assert_eq!(plain(&sl, "bar.baz"), [1]);
    }
}

#[test]
fn wildcard_bytes_inside_tokens_are_literal() {
    for sl in both() {
        sl.insert(b"foo*.bar", None, 1).unwrap();
        sl.insert(b"a>", None, 2).unwrap();
        assert_eq!(plain(&sl, "foo*.bar"), [1]);
        assert_eq!(plain(&sl, "fooX.bar"), [] as [u32; 0]);
        assert_eq!(plain(&sl, "a>"), [2]);
        assert_eq!(plain(&sl, "a.b"), [] as [u32; 0]);
    }
}

#[test]
fn wildcard_tokens_in_published_subject_are_plain_tokens() {
    // nats-server routes `PUB foo.*` as a literal: only subscription wildcards match it.
    for sl in both() {
        sl.insert(b"foo.bar", None, 1).unwrap();
        sl.insert(b"foo.*", None, 2).unwrap();
        sl.insert(b"foo.>", None, 3).unwrap();
        assert_eq!(plain(&sl, "foo.*"), [2, 3]);
        assert_eq!(plain(&sl, "foo.>"), [2, 3]);
        // Inserting afterwards must update those cached results as well.
        sl.insert(b"*.*", None, 4).unwrap();
        sl.insert(b"foo.baz", None, 5).unwrap();
        assert_eq!(plain(&sl, "foo.*"), [2, 3, 4]);
        assert_eq!(plain(&sl, "foo.>"), [2, 3, 4]);
    }
}

#[test]
fn queue_groups_are_grouped_by_name() {
    for sl in both() {
        sl.insert(b"foo.bar", Some(b"q1"), 1).unwrap();
        sl.insert(b"foo.bar", Some(b"q1"), 2).unwrap();
        sl.insert(b"foo.*", Some(b"q1"), 3).unwrap();
        sl.insert(b"foo.>", Some(b"q2"), 4).unwrap();
        sl.insert(b"foo.bar", None, 5).unwrap();
        let r = sl.match_subject(b"foo.bar");
        assert_eq!(r.psubs, [5]);
        assert_eq!(r.fanout(), 3);
        assert_eq!(
            groups(&sl, "foo.bar"),
            [("q1".to_string(), vec![1, 2, 3]), ("q2".to_string(), vec![4])]
        );
        for i in 0..r.qsubs.len() {
            let want: &[u8] = if r.qsubs[i].contains(&4) { b"q2" } else { b"q1" };
            assert_eq!(r.queue_name(i), want);
        }
        assert_eq!(groups(&sl, "foo.x"), [("q1".into(), vec![3]), ("q2".into(), vec![4])]);
    }
}

#[test]
fn invalid_input_is_rejected() {
    let sl = Sublist::new();
    for bad in [&b""[..], b".", b"foo.", b".foo", b"foo..bar", b"foo.>.bar", b">.>", b"a b"] {
        assert_eq!(sl.insert(bad, None, 1), Err(SublistError::InvalidSubject), "{bad:?}");
        assert_eq!(sl.remove(bad, None, &1), Err(SublistError::InvalidSubject), "{bad:?}");
    }
    assert_eq!(sl.insert(b"foo", Some(b""), 1), Err(SublistError::InvalidQueue));
    assert_eq!(sl.insert(b"foo", Some(b"a b"), 1), Err(SublistError::InvalidQueue));
    assert_eq!(sl.count(), 0);
    assert_eq!(sl.generation(), 0, "a rejected insert must not bump the generation");
    // Published subjects with empty tokens match nothing, even under `>` or `*`.
    sl.insert(b">", None, 1).unwrap();
    sl.insert(b"foo.*.bar", None, 2).unwrap();
    for bad in [&b""[..], b"foo..bar", b"foo.", b".foo"] {
        assert!(sl.match_subject(bad).is_empty(), "{bad:?}");
        assert!(!sl.has_interest(bad), "{bad:?}");
    }
    assert_eq!(sl.stats().num_cache, 0, "invalid subjects are not cached");
}

#[test]
fn removal() {
    for sl in both() {
        sl.insert(b"foo.bar", None, 1).unwrap();
        sl.insert(b"foo.bar", None, 2).unwrap();
        sl.insert(b"foo.*", Some(b"q"), 3).unwrap();
        assert_eq!(sl.remove(b"foo.bar", None, &9), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"foo.baz", None, &1), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"foo.bar.baz", None, &1), Err(SublistError::NotFound));
        // Queue membership is part of the identity of a subscription.
        assert_eq!(sl.remove(b"foo.*", None, &3), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"foo.*", Some(b"other"), &3), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"foo.bar", Some(b"q"), &1), Err(SublistError::NotFound));
        let generation = sl.generation();
        sl.remove(b"foo.bar", None, &1).unwrap();
        assert!(sl.generation() > generation);
        assert_eq!(plain(&sl, "foo.bar"), [2]);
        sl.remove(b"foo.*", Some(b"q"), &3).unwrap();
        assert!(sl.match_subject(b"foo.bar").qsubs.is_empty());
        assert_eq!(sl.remove(b"foo.*", Some(b"q"), &3), Err(SublistError::NotFound));
        assert_eq!(sl.count(), 1);
    }
}

#[test]
fn duplicates_are_counted_per_insert() {
    let sl = Sublist::new();
    sl.insert(b"a", None, 7).unwrap();
    sl.insert(b"a", None, 7).unwrap();
    assert_eq!(plain(&sl, "a"), [7, 7]);
    sl.remove(b"a", None, &7).unwrap();
    assert_eq!(plain(&sl, "a"), [7]);
    sl.remove(b"a", None, &7).unwrap();
    assert!(sl.match_subject(b"a").is_empty());
    assert_eq!(sl.remove(b"a", None, &7), Err(SublistError::NotFound));
}

#[test]
fn pruning_removes_empty_nodes() {
    let sl = Sublist::new();
    sl.insert(b"a.b.c.d", None, 1).unwrap();
    sl.insert(b"a.*.c", None, 2).unwrap();
    sl.insert(b"a.>", Some(b"q"), 3).unwrap();
    sl.insert(b"a.b", None, 4).unwrap();
    assert_eq!(read(&sl.trie).root.node_count(), 1 + 4 + 2 + 1);
    sl.remove(b"a.b.c.d", None, &1).unwrap();
    // a.b stays (it has a subscriber); its c and d below go.
    assert_eq!(read(&sl.trie).root.node_count(), 1 + 2 + 2 + 1);
    sl.remove(b"a.*.c", None, &2).unwrap();
    sl.remove(b"a.>", Some(b"q"), &3).unwrap();
    assert_eq!(read(&sl.trie).root.node_count(), 1 + 2);
    sl.remove(b"a.b", None, &4).unwrap();
    assert!(read(&sl.trie).root.is_empty());
    assert_eq!(sl.count(), 0);
}

#[test]
fn churn_of_unique_subjects_leaves_nothing_behind() {
    let sl = Sublist::new();
    // A long-lived subscription keeps `_INBOX` itself alive.
    sl.insert(b"_INBOX.keep", None, u32::MAX).unwrap();
    const N: u32 = 100_000;
    for i in 0..N {
        let subject = format!("_INBOX.{i:08x}.{}", i % 7);
        sl.insert(subject.as_bytes(), None, i).unwrap();
        if i % 3 == 0 {
            sl.insert(format!("svc.{i}.*").as_bytes(), Some(b"q"), i).unwrap();
        }
        if i % 5 == 0 {
            // Matches cache results that the removals below must clean up.
            assert_eq!(plain(&sl, &subject), [i]);
        }
    }
    assert_eq!(sl.count() as u32, N + 1 + N.div_ceil(3));
    let inbox_children = read(&sl.trie).root.children[&b"_INBOX"[..]].children.capacity();
    assert!(inbox_children >= N as usize);
    for i in 0..N {
        sl.remove(format!("_INBOX.{i:08x}.{}", i % 7).as_bytes(), None, &i).unwrap();
        if i % 3 == 0 {
            sl.remove(format!("svc.{i}.*").as_bytes(), Some(b"q"), &i).unwrap();
        }
    }
    assert_eq!(sl.count(), 1);
    let trie = read(&sl.trie);
    assert_eq!(trie.root.node_count(), 3, "root, _INBOX, keep");
    let inbox = &trie.root.children[&b"_INBOX"[..]];
    assert!(
        inbox.children.capacity() <= 32,
        "capacity {} not given back",
        inbox.children.capacity()
    );
    assert!(trie.root.children.capacity() <= 32);
    drop(trie);
    assert!(sl.stats().num_cache as usize <= CACHE_MAX);
    sl.remove(b"_INBOX.keep", None, &u32::MAX).unwrap();
    assert!(read(&sl.trie).root.is_empty());
}

#[test]
fn cache_is_updated_on_insert() {
    let sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), [1]);
    assert!(sl.match_subject(b"other").is_empty());
    let before = sl.match_subject(b"foo.bar");
    // Literal insert on a cached subject.
    sl.insert(b"foo.bar", None, 2).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), [1, 2]);
    // Wildcard inserts on cached subjects, plain and queue.
    sl.insert(b"foo.*", None, 3).unwrap();
    sl.insert(b">", Some(b"q"), 4).unwrap();
    sl.insert(b"*.bar", Some(b"q"), 5).unwrap();
    sl.insert(b"nope.*", None, 6).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), [1, 2, 3]);
    assert_eq!(groups(&sl, "foo.bar"), [("q".into(), vec![4, 5])]);
    assert_eq!(groups(&sl, "other"), [("q".into(), vec![4])]);
    // The earlier snapshot is untouched (copy on write).
    assert_eq!(before.psubs, [1]);
    assert!(before.qsubs.is_empty());
    let st = sl.stats();
    assert_eq!(st.num_cache, 2);
    assert!(st.cache_hit_rate > 0.0);
}

#[test]
fn cache_is_updated_on_remove() {
    let sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", Some(b"q"), 3).unwrap();
    sl.insert(b"x.y", None, 4).unwrap();
    for s in ["foo.bar", "foo.baz", "x.y", "foo.a.b"] {
        sl.match_subject(s.as_bytes());
    }
    sl.remove(b"foo.bar", None, &1).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), [2]);
    sl.remove(b"foo.*", None, &2).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), [] as [u32; 0]);
    assert_eq!(plain(&sl, "foo.baz"), [] as [u32; 0]);
    assert_eq!(groups(&sl, "foo.a.b"), [("q".into(), vec![3])]);
    sl.remove(b"foo.>", Some(b"q"), &3).unwrap();
    assert!(sl.match_subject(b"foo.a.b").is_empty());
    assert!(sl.match_subject(b"foo.bar").is_empty());
    assert_eq!(plain(&sl, "x.y"), [4]);
    // A removal that does not concern a cached subject leaves its entry (and hit) in place.
    let hits = sl.cache_hits.load(Ordering::Relaxed);
    assert_eq!(plain(&sl, "x.y"), [4]);
    assert_eq!(sl.cache_hits.load(Ordering::Relaxed), hits + 1);
}

#[test]
fn remove_batch_clears_and_bumps_once() {
    for sl in both() {
        for i in 0..10u32 {
            sl.insert(format!("c.{i}").as_bytes(), None, i).unwrap();
            sl.insert(b"c.*", Some(b"q"), i).unwrap();
        }
        sl.insert(b"c.>", None, 100).unwrap();
        assert_eq!(plain(&sl, "c.3"), [3, 100]);
        let generation = sl.generation();
        let mine: Vec<(String, Option<&[u8]>, u32)> = (0..10u32)
            .filter(|i| i % 2 == 0)
            .flat_map(|i| [(format!("c.{i}"), None, i), ("c.*".into(), Some(&b"q"[..]), i)])
            .chain([("c.nope".to_string(), None, 5), ("bad..subject".into(), None, 5)])
            .collect();
        assert_eq!(sl.remove_batch(mine), 10);
        assert_eq!(sl.generation(), generation + 1);
        assert_eq!(sl.count(), 11);
        assert_eq!(plain(&sl, "c.2"), [100]);
        assert_eq!(plain(&sl, "c.3"), [3, 100]);
        assert_eq!(groups(&sl, "c.3"), [("q".into(), vec![1, 3, 5, 7, 9])]);
        assert_eq!(sl.stats().num_removes, 10);
        // Nothing removed: nothing changes.
        assert_eq!(sl.remove_batch([(b"c.2", None::<&[u8]>, 2)]), 0);
        assert_eq!(sl.generation(), generation + 1);
    }
}

#[test]
fn generation_tracks_mutations() {
    let sl = Sublist::new();
    let g0 = sl.generation();
    sl.insert(b"a", None, 1).unwrap();
    let (r, g1) = sl.match_with_generation(b"a");
    assert_eq!(r.psubs, [1]);
    assert_eq!(g1, g0 + 1);
    assert_eq!(sl.match_with_generation(b"a").1, g1, "cache hit reports the same generation");
    sl.insert(b"b", None, 2).unwrap();
    assert_eq!(sl.match_with_generation(b"a").1, g1 + 1);
    let _ = sl.remove(b"a", None, &9);
    assert_eq!(sl.generation(), g1 + 1, "failed remove does not bump");
}

#[test]
fn has_interest_agrees_with_match() {
    for sl in both() {
        sl.insert(b"a.*.c", None, 1).unwrap();
        sl.insert(b"b.>", Some(b"q"), 2).unwrap();
        sl.insert(b"d", None, 3).unwrap();
        sl.insert(b"a.b.c.d", None, 4).unwrap();
        for (s, want) in [
            ("a.x.c", true),
            ("a.x", false),
            ("a.b.c.d", true),
            ("a.b.c.e", false),
            ("b", false),
            ("b.c", true),
            ("b.c.d", true),
            ("d", true),
            ("d.e", false),
            ("e", false),
        ] {
            assert_eq!(sl.has_interest(s.as_bytes()), want, "{s}");
            assert_eq!(!sl.match_subject(s.as_bytes()).is_empty(), want, "{s}");
            assert_eq!(sl.has_interest(s.as_bytes()), want, "{s} (cached)");
        }
        sl.remove(b"d", None, &3).unwrap();
        assert!(!sl.has_interest(b"d"));
    }
}

#[test]
fn all_lists_every_subscription() {
    let sl = Sublist::new();
    sl.insert(b"a", None, 1).unwrap();
    sl.insert(b"a.*", None, 2).unwrap();
    sl.insert(b">", Some(b"q"), 3).unwrap();
    sl.insert(b"a.b.c", Some(b"r"), 4).unwrap();
    sl.insert(b"a.b.c", Some(b"r"), 4).unwrap();
    assert_eq!(sorted(&sl.all()), [1, 2, 3, 4, 4]);
}

#[test]
fn stats_match_nats_definitions() {
    let sl = Sublist::new();
    sl.insert(b"a", None, 1).unwrap();
    sl.insert(b"a", None, 2).unwrap();
    sl.insert(b"a", Some(b"q"), 3).unwrap();
    sl.insert(b"a", Some(b"q"), 4).unwrap();
    sl.insert(b"b", None, 5).unwrap();
    sl.remove(b"b", None, &5).unwrap();
    sl.match_subject(b"a"); // miss
    sl.match_subject(b"a"); // hit
    sl.match_subject(b"b"); // miss, empty result cached
    sl.match_subject(b"b"); // hit
    let st = sl.stats();
    assert_eq!(st.num_subs, 4);
    assert_eq!(st.num_inserts, 5);
    assert_eq!(st.num_removes, 1);
    assert_eq!(st.num_matches, 4);
    assert_eq!(st.num_cache, 2);
    assert_eq!(st.cache_hit_rate, 0.5);
    // Fan-out counts plain subscribers plus one per queue group: a -> 2 + 1, b -> 0.
    assert_eq!(st.max_fanout, 3);
    assert_eq!(st.avg_fanout, 1.5);

    let mut total = SublistStats::default();
    total.add(&st);
    total.add(&st);
    assert_eq!(total.num_subs, 8);
    assert_eq!(total.num_matches, 8);
    assert_eq!(total.cache_hit_rate, 0.5);
    assert_eq!(total.max_fanout, 3);
    assert_eq!(total.avg_fanout, 1.5);

    let nc = Sublist::without_cache();
    nc.insert(b"a", None, 1).unwrap();
    nc.match_subject(b"a");
    let st = nc.stats();
    assert_eq!((st.num_cache, st.num_matches, st.cache_hit_rate), (0, 1, 0.0));
}

#[test]
fn cache_is_bounded_and_stays_correct_across_sweeps() {
    let sl = Sublist::new();
    sl.insert(b"s.*", None, 1).unwrap();
    for i in 0..5_000u32 {
        let subject = format!("s.{i}");
        let want: &[u32] = if i > 2_000 { &[1, 2] } else { &[1] };
        assert_eq!(plain(&sl, &subject), want);
        let n = sl.stats().num_cache as usize;
        assert!(n <= CACHE_MAX, "cache grew to {n}");
        if i == 2_000 {
            sl.insert(b"s.>", None, 2).unwrap();
        }
    }
    // Entries that survived sweeps were updated by the insert above.
    let n = sl.stats().num_cache as usize;
    assert!((CACHE_SWEEP_TO / 4..=CACHE_MAX).contains(&n), "{n}");
    for i in (0..5_000u32).step_by(7) {
        assert_eq!(plain(&sl, &format!("s.{i}")), [1, 2]);
    }
}

#[test]
fn pattern_matches_follows_trie_semantics() {
    for (p, s, want) in [
        ("foo.*", "foo.bar", true),
        ("foo.*", "foo.*", true),
        ("foo.*", "foo.>", true),
        ("foo.>", "foo.*", true),
        ("foo.bar", "foo.*", false),
        ("foo.>", "foo", false),
        ("*", "foo.bar", false),
        (">", "a.b.c", true),
        ("a.b", "a.b", true),
        ("a.b", "a.bc", false),
    ] {
        assert_eq!(pattern_matches(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
    }
}

/// Readers must never observe a result older than the last completed mutation.
#[test]
fn concurrent_matches_never_see_stale_results() {
    const N: usize = 400;
    let sl = Arc::new(Sublist::<u32>::new());
    let inserted = Arc::new(AtomicUsize::new(0));
    let remaining = Arc::new(AtomicUsize::new(N));
    // 0: inserting, 1: removing, 2: done.
    let phase = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(std::sync::Barrier::new(4));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (sl, inserted, remaining, phase, start) =
                (sl.clone(), inserted.clone(), remaining.clone(), phase.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut checks = 0u64;
                loop {
                    let before = phase.load(Ordering::Acquire);
                    if before == 2 {
                        return checks;
                    }
                    let at_least = inserted.load(Ordering::Acquire);
                    let at_most = remaining.load(Ordering::Acquire);
                    let n = sl.match_subject(b"c.d").psubs.len();
                    let after = phase.load(Ordering::Acquire);
                    if before == 0 && after == 0 {
                        assert!(n >= at_least, "stale: {n} < {at_least}");
                        checks += 1;
                    } else if before == 1 {
                        assert!(n <= at_most, "stale: {n} > {at_most}");
                        checks += 1;
                    }
                }
            })
        })
        .collect();
    start.wait();
    for i in 0..N {
        let subject: &[u8] = if i % 2 == 0 { b"c.>" } else { b"c.d" };
        sl.insert(subject, None, i as u32).unwrap();
        inserted.store(i + 1, Ordering::Release);
        thread::yield_now();
    }
    phase.store(1, Ordering::Release);
    for i in 0..N {
        let subject: &[u8] = if i % 2 == 0 { b"c.>" } else { b"c.d" };
        sl.remove(subject, None, &(i as u32)).unwrap();
        remaining.store(N - i - 1, Ordering::Release);
        thread::yield_now();
    }
    phase.store(2, Ordering::Release);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(checks > 0);
    assert!(sl.match_subject(b"c.d").is_empty());
}

#[test]
fn very_long_subjects() {
    // A 4 KiB control line allows about 2k tokens; walking them must not exhaust the stack.
    let sl = Sublist::new();
    let literal = vec!["a"; 2_048].join(".");
    let stars = vec!["*"; 2_048].join(".");
    let tail = format!("{}.>", vec!["*"; 2_047].join("."));
    sl.insert(literal.as_bytes(), None, 1).unwrap();
    sl.insert(stars.as_bytes(), Some(b"q"), 2).unwrap();
    sl.insert(tail.as_bytes(), None, 3).unwrap();
    let r = sl.match_subject(literal.as_bytes());
    assert_eq!(sorted(&r.psubs), [1, 3]);
    assert_eq!(r.qsubs, [vec![2]]);
    assert!(sl.has_interest(literal.as_bytes()));
    sl.remove(literal.as_bytes(), None, &1).unwrap();
    sl.remove(stars.as_bytes(), Some(b"q"), &2).unwrap();
    sl.remove(tail.as_bytes(), None, &3).unwrap();
    assert!(read(&sl.trie).root.is_empty());
}

#[test]
fn change_hook_sees_every_successful_mutation() {
    let sl = Sublist::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    assert!(sl.set_change_hook(Box::new(move |s| {
        s2.lock().unwrap().push(String::from_utf8_lossy(s).into_owned())
    })));
    assert!(!sl.set_change_hook(Box::new(|_| {})), "only one hook");
    sl.insert(b"a.b", None, 1).unwrap();
    sl.insert(b"a.*", Some(b"q"), 2).unwrap();
    assert!(sl.insert(b"a..b", None, 3).is_err());
    sl.remove(b"a.b", None, &1).unwrap();
    assert!(sl.remove(b"a.b", None, &1).is_err());
    assert_eq!(sl.remove_batch([(b"a.*".as_slice(), Some(b"q".as_slice()), 2)]), 1);
    assert_eq!(*seen.lock().unwrap(), ["a.b", "a.*", "a.b", "a.*"]);
}

#[test]
fn transient_matches_use_but_never_fill_the_cache() {
    let sl = Sublist::<u32>::new();
    sl.insert(b"_INBOX.abc.*", None, 1).unwrap();
    sl.insert(b"_INBOX.>", Some(b"q"), 2).unwrap();
    sl.insert(b"orders.new", None, 3).unwrap();
    for i in 0..100 {
        let subject = format!("_INBOX.abc.{i}");
        let r = sl.match_transient(subject.as_bytes());
        assert_eq!(r.psubs, vec![1]);
        assert_eq!(r.qsubs.iter().flatten().copied().collect::<Vec<_>>(), vec![2]);
        let cached = sl.match_subject(subject.as_bytes());
        assert_eq!(r.psubs, cached.psubs);
        assert_eq!(r.qsubs.concat(), cached.qsubs.concat());
        // Only the ordinary matches above were cached; the transient ones on a fresh subject
        // leave nothing behind.
        let fresh = format!("_INBOX.abc.t{i}");
        let before = sl.stats().num_cache;
        assert_eq!(sl.match_transient(fresh.as_bytes()).psubs, vec![1]);
        assert_eq!(sl.stats().num_cache, before);
    }
    // A cached result is used (and stays right after a change of subscriptions).
    assert_eq!(sl.match_subject(b"orders.new").psubs, vec![3]);
    assert_eq!(sl.match_transient(b"orders.new").psubs, vec![3]);
    sl.insert(b"orders.*", None, 4).unwrap();
    assert_eq!(sorted(&sl.match_transient(b"orders.new").psubs), vec![3, 4]);
    assert!(sl.match_transient(b"orders..new").is_empty());
}
