//! The behaviour suite every [`StreamStore`] must pass. Each `pub fn` takes a factory that
//! returns a fresh, empty store and panics on a failed expectation; [`crate::store_suite!`]
//! turns the whole list into `#[test]`s for one backend:
//!
//! ```ignore
//! chorus_store::store_suite!(|| chorus_store::MemStore::new("T"));
//! ```

use crate::{
    Discard, LimitExceeded, Limits, MsgTtl, NewMessage, PurgeRequest, RemoveMode, StorageKind,
    StreamStore, SubjectFilter, file_msg_size, mem_msg_size,
};
use std::collections::BTreeMap;

/// Generates one `#[test]` per behaviour of [`crate::testing`] for the given factory
/// expression (anything implementing `FnMut() -> impl StreamStore`, evaluated per test).
#[macro_export]
macro_rules! store_suite {
    ($factory:expr) => {
        $crate::store_suite!(@tests $factory;
            append_and_load, append_batch, sequences_after_remove, sequences_after_purge,
            load_last_with_wildcards, load_next_with_filters, load_next_linear_scan,
            limit_max_msgs, limit_max_bytes, limit_max_age, limit_max_msgs_per_subject,
            discard_new_checks, purge_variants, compact, message_ttl, state_numbers,
            deleted_details, num_pending, subject_totals, erase, delete_closes,
            batch_enforcement_matches_single, model_random_ops);
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::$name($factory);
            }
        )*
    };
}

const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

/// Size of a message as the store of `kind` counts it.
pub fn msg_size(kind: StorageKind, subject: &str, headers: Option<&[u8]>, payload: &[u8]) -> u64 {
    let h = headers.map_or(0, <[u8]>::len);
    match kind {
        StorageKind::Memory => mem_msg_size(subject.len(), h, payload.len()),
        StorageKind::File => file_msg_size(subject.len(), h, payload.len()),
    }
}

fn put<S: StreamStore>(s: &mut S, subject: &str, payload: &[u8], ts: i64) -> u64 {
    s.append(&NewMessage::new(subject, payload, ts)).expect("append").seq
}

fn seqs<S: StreamStore>(s: &S, filter: &SubjectFilter) -> Vec<u64> {
    let mut out = Vec::new();
    let mut next = 0;
    while let Some(m) = s.load_next(filter, next).expect("load_next") {
        out.push(m.seq);
        next = m.seq + 1;
    }
    out
}

fn all<S: StreamStore>(s: &S) -> Vec<u64> {
    seqs(s, &SubjectFilter::all())
}

/// Appends with and without headers and TTL; loads return exactly what went in.
pub fn append_and_load<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    assert!(s.load(1).unwrap().is_none());
    let hdr = b"NATS/1.0\r\nX: y\r\n\r\n";
    let a = s.append(&NewMessage::new("a.b", b"one", T0)).unwrap();
    assert_eq!((a.seq, a.last_seq), (1, 1));
    assert!(a.removed.is_empty());
    let b = s
        .append(&NewMessage::new("a.c", b"two", T0 + 1).with_headers(hdr).with_ttl(MsgTtl::Never))
        .unwrap();
    assert_eq!(b.seq, 2);
    assert_eq!(put(&mut s, "x", b"", T0 + 2), 3);

    let m = s.load(1).unwrap().unwrap();
    assert_eq!((m.seq, m.timestamp, m.subject.as_str()), (1, T0, "a.b"));
    assert_eq!(&m.payload[..], b"one");
    assert_eq!(m.headers, None);
    assert_eq!(m.ttl, MsgTtl::None);
    let m = s.load(2).unwrap().unwrap();
    assert_eq!(m.headers.as_deref(), Some(&hdr[..]));
    assert_eq!(&m.payload[..], b"two");
    assert_eq!(m.ttl, MsgTtl::Never);
    assert!(s.load(3).unwrap().unwrap().payload.is_empty());
    assert!(s.load(0).unwrap().is_none());
    assert!(s.load(4).unwrap().is_none());

    let st = s.state(false);
    let k = s.kind();
    let bytes = msg_size(k, "a.b", None, b"one")
        + msg_size(k, "a.c", Some(hdr), b"two")
        + msg_size(k, "x", None, b"");
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.last_seq), (3, bytes, 1, 3));
    assert_eq!((st.first_ts, st.last_ts, st.num_subjects, st.num_deleted), (T0, T0 + 2, 3, 0));
    s.sync().unwrap();
}

/// A batch takes consecutive sequences and behaves like single appends.
pub fn append_batch<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    put(&mut s, "pre", b"0", T0);
    let payloads: Vec<Vec<u8>> = (0..50).map(|i| format!("m{i}").into_bytes()).collect();
    let batch: Vec<NewMessage<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| NewMessage::new(if i % 2 == 0 { "even" } else { "odd" }, p, T0 + i as i64))
        .collect();
    let r = s.append_batch(&batch).unwrap();
    assert_eq!((r.seq, r.last_seq), (2, 51));
    s.sync().unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let m = s.load(2 + i as u64).unwrap().unwrap();
        assert_eq!(&m.payload[..], &p[..]);
    }
    assert_eq!(s.state(false).msgs, 51);
    assert_eq!(s.subjects_totals(&SubjectFilter::all())["even"], 25);
    let empty = s.append_batch(&[]).unwrap();
    assert_eq!((empty.seq, empty.last_seq), (52, 51));
    assert_eq!(s.state(false).last_seq, 51);
}

/// Removes at the head, middle and tail; sequences keep counting from the last assigned.
pub fn sequences_after_remove<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for i in 1..=10 {
        put(&mut s, "s", b"x", T0 + i);
    }
    assert!(s.remove(5, RemoveMode::Remove).unwrap());
    assert!(!s.remove(5, RemoveMode::Remove).unwrap());
    assert!(!s.remove(11, RemoveMode::Remove).unwrap());
    assert!(s.remove(1, RemoveMode::Remove).unwrap());
    let st = s.state(true);
    assert_eq!((st.msgs, st.first_seq, st.first_ts, st.last_seq), (8, 2, T0 + 2, 10));
    assert_eq!((st.num_deleted, st.deleted), (1, Some(vec![5])));
    // Removing the tail keeps last_seq and counts as a delete.
    assert!(s.remove(10, RemoveMode::Remove).unwrap());
    let st = s.state(true);
    assert_eq!((st.last_seq, st.num_deleted, st.deleted), (10, 2, Some(vec![5, 10])));
    assert_eq!(put(&mut s, "s", b"x", T0 + 11), 11);
    // Removing everything from the head walks first past the gaps.
    for seq in [2, 3, 4, 6, 7, 8] {
        assert!(s.remove(seq, RemoveMode::Remove).unwrap());
    }
    let st = s.state(true);
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (2, 9, 11));
    assert_eq!(st.deleted, Some(vec![10]));
    assert!(s.remove(9, RemoveMode::Remove).unwrap());
    assert!(s.remove(11, RemoveMode::Remove).unwrap());
    let st = s.state(true);
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.last_seq, st.first_ts), (0, 0, 12, 11, 0));
    assert_eq!((st.num_deleted, st.num_subjects), (0, 0));
    assert_eq!(put(&mut s, "s", b"x", T0 + 12), 12);
    assert_eq!(s.state(false).first_seq, 12);
}

/// A full purge empties the stream and the next message continues the sequence.
pub fn sequences_after_purge<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let st = s.state(false);
    assert_eq!((st.first_seq, st.last_seq), (0, 0));
    assert_eq!(s.purge(&PurgeRequest::default()).unwrap(), 0);
    for i in 1..=7 {
        put(&mut s, if i % 2 == 0 { "a" } else { "b" }, b"x", T0 + i);
    }
    s.remove(3, RemoveMode::Remove).unwrap();
    assert_eq!(s.purge(&PurgeRequest::default()).unwrap(), 6);
    let st = s.state(true);
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.last_seq), (0, 0, 8, 7));
    assert_eq!((st.first_ts, st.last_ts, st.num_subjects), (0, T0 + 7, 0));
    assert_eq!(st.deleted, Some(vec![]));
    assert!(s.load(7).unwrap().is_none());
    assert!(s.load_last(&SubjectFilter::all()).unwrap().is_none());
    assert_eq!(put(&mut s, "a", b"y", T0 + 8), 8);
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.first_ts, st.last_seq), (1, 8, T0 + 8, 8));
}

/// Last message by literal subject, wildcard, several filters and all.
pub fn load_last_with_wildcards<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for (i, subj) in ["a.1", "a.2", "b.1", "a.1", "b.2.x", "a.2", "c"].iter().enumerate() {
        put(&mut s, subj, format!("{i}").as_bytes(), T0 + i as i64);
    }
    let last = |s: &S, f: &SubjectFilter| s.load_last(f).unwrap().map(|m| m.seq);
    assert_eq!(last(&s, &SubjectFilter::subject("a.1")), Some(4));
    assert_eq!(last(&s, &SubjectFilter::subject("a.*")), Some(6));
    assert_eq!(last(&s, &SubjectFilter::subject("b.>")), Some(5));
    assert_eq!(last(&s, &SubjectFilter::subject("b.*")), Some(3));
    assert_eq!(last(&s, &SubjectFilter::subject("*.1")), Some(4));
    assert_eq!(last(&s, &SubjectFilter::any_of(["a.1", "b.*"])), Some(4));
    assert_eq!(last(&s, &SubjectFilter::all()), Some(7));
    assert_eq!(last(&s, &SubjectFilter::subject("d")), None);
    assert_eq!(last(&s, &SubjectFilter::subject("a")), None);
    // Removing a subject's last moves it back; removing the stream's last too.
    s.remove(6, RemoveMode::Remove).unwrap();
    assert_eq!(last(&s, &SubjectFilter::subject("a.2")), Some(2));
    assert_eq!(last(&s, &SubjectFilter::subject("a.*")), Some(4));
    s.remove(7, RemoveMode::Remove).unwrap();
    let m = s.load_last(&SubjectFilter::all()).unwrap().unwrap();
    assert_eq!((m.seq, m.subject.as_str(), &m.payload[..]), (5, "b.2.x", &b"4"[..]));
}

/// Next message from a sequence for literal, wildcard and multi filters.
pub fn load_next_with_filters<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let subjects = ["o.1", "o.2", "p.1", "o.1", "q", "p.2", "o.2", "q"];
    for (i, subj) in subjects.iter().enumerate() {
        put(&mut s, subj, b"x", T0 + i as i64);
    }
    assert_eq!(seqs(&s, &SubjectFilter::subject("o.1")), vec![1, 4]);
    assert_eq!(seqs(&s, &SubjectFilter::subject("o.*")), vec![1, 2, 4, 7]);
    assert_eq!(seqs(&s, &SubjectFilter::subject("*.1")), vec![1, 3, 4]);
    assert_eq!(seqs(&s, &SubjectFilter::any_of(["q", "p.>"])), vec![3, 5, 6, 8]);
    assert_eq!(seqs(&s, &SubjectFilter::any_of(["q", "o.2"])), vec![2, 5, 7, 8]);
    assert_eq!(all(&s), (1..=8).collect::<Vec<_>>());
    let f = SubjectFilter::subject("p.*");
    assert_eq!(s.load_next(&f, 4).unwrap().unwrap().seq, 6);
    assert!(s.load_next(&f, 7).unwrap().is_none());
    assert!(s.load_next(&SubjectFilter::all(), 9).unwrap().is_none());
    assert!(s.load_next(&SubjectFilter::subject("zzz"), 0).unwrap().is_none());
    // Starting below first and across removed messages.
    s.remove(1, RemoveMode::Remove).unwrap();
    s.remove(2, RemoveMode::Remove).unwrap();
    s.remove(4, RemoveMode::Remove).unwrap();
    assert_eq!(s.load_next(&SubjectFilter::all(), 0).unwrap().unwrap().seq, 3);
    assert_eq!(s.load_next(&SubjectFilter::subject("o.*"), 1).unwrap().unwrap().seq, 7);
    assert_eq!(s.load_next(&SubjectFilter::subject("o.1"), 0).unwrap(), None);
    let m = s.load_next(&SubjectFilter::all(), 4).unwrap().unwrap();
    assert_eq!((m.seq, m.subject.as_str()), (5, "q"));
}

/// Wildcard reads over many subjects (the path that walks messages instead of subjects).
pub fn load_next_linear_scan<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for i in 0..600u64 {
        let subj = format!("k.{}.{}", i % 3, i);
        put(&mut s, &subj, b"v", T0 + i as i64);
    }
    let f = SubjectFilter::subject("k.1.*");
    let got = seqs(&s, &f);
    let want: Vec<u64> = (0..600u64).filter(|i| i % 3 == 1).map(|i| i + 1).collect();
    assert_eq!(got, want);
    assert_eq!(s.num_pending(0, &f, false).unwrap(), 200);
    assert_eq!(
        s.num_pending(301, &f, false).unwrap(),
        want.iter().filter(|&&q| q >= 301).count() as u64
    );
    assert_eq!(s.load_last(&f).unwrap().unwrap().seq, *want.last().unwrap());
    assert_eq!(s.state(false).num_subjects, 600);
}

/// max_msgs with discard old drops the oldest and reports them; lowering the limit applies
/// at once; discard new leaves the messages alone.
pub fn limit_max_msgs<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    s.set_limits(Limits { max_msgs: Some(5), ..Limits::default() }).unwrap();
    let mut removed = Vec::new();
    for i in 1..=9 {
        let r = s.append(&NewMessage::new("m", b"x", T0 + i)).unwrap();
        removed.extend(r.removed.seqs);
    }
    assert_eq!(removed, vec![1, 2, 3, 4]);
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.first_ts, st.last_seq), (5, 5, T0 + 5, 9));
    let r = s.set_limits(Limits { max_msgs: Some(2), ..Limits::default() }).unwrap();
    assert_eq!(r.seqs, vec![5, 6, 7]);
    assert_eq!(r.bytes, 3 * msg_size(s.kind(), "m", None, b"x"));
    assert_eq!(all(&s), vec![8, 9]);

    let mut s = new();
    s.set_limits(Limits { max_msgs: Some(2), discard: Discard::New, ..Limits::default() }).unwrap();
    let m = NewMessage::new("m", b"x", T0);
    assert_eq!(s.check_discard_new(&m, false).unwrap(), None);
    put(&mut s, "m", b"x", T0);
    put(&mut s, "m", b"x", T0);
    assert_eq!(s.check_discard_new(&m, false).unwrap(), Some(LimitExceeded::MaxMsgs));
    // The store itself does not drop anything under discard new.
    let r = s.append(&m).unwrap();
    assert!(r.removed.is_empty());
    assert_eq!(s.state(false).msgs, 3);
}

/// max_bytes counts with the backend's size accounting and drops oldest-first.
pub fn limit_max_bytes<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let k = s.kind();
    let one = msg_size(k, "b", None, &[0u8; 100]);
    s.set_limits(Limits { max_bytes: Some(one * 3 + one / 2), ..Limits::default() }).unwrap();
    for i in 1..=3 {
        assert!(s.append(&NewMessage::new("b", &[0u8; 100], T0 + i)).unwrap().removed.is_empty());
    }
    let r = s.append(&NewMessage::new("b", &[0u8; 100], T0 + 4)).unwrap();
    assert_eq!((r.removed.seqs, r.removed.bytes), (vec![1], one));
    let st = s.state(false);
    assert_eq!((st.msgs, st.bytes, st.first_seq), (3, 3 * one, 2));
    // A big message pushes out as many as needed.
    let big = msg_size(k, "b", None, &[0u8; 250]);
    let r = s.append(&NewMessage::new("b", &[0u8; 250], T0 + 5)).unwrap();
    assert_eq!(r.removed.seqs, vec![2, 3]);
    assert_eq!(s.state(false).bytes, one + big);
    // A message larger than the limit removes everything, itself included (as nats-server).
    let r = s.append(&NewMessage::new("b", &[0u8; 500], T0 + 6)).unwrap();
    assert_eq!(r.removed.seqs, vec![4, 5, 6]);
    let st = s.state(false);
    assert_eq!((st.msgs, st.bytes, st.first_seq, st.last_seq), (0, 0, 7, 6));

    let mut s = new();
    s.set_limits(Limits { max_bytes: Some(one * 2), discard: Discard::New, ..Limits::default() })
        .unwrap();
    let m = NewMessage::new("b", &[0u8; 100], T0);
    s.append(&m).unwrap();
    assert_eq!(s.check_discard_new(&m, false).unwrap(), None);
    s.append(&m).unwrap();
    assert_eq!(s.check_discard_new(&m, false).unwrap(), Some(LimitExceeded::MaxBytes));
}

/// max_age removes by timestamp against the given `now`; `Nats-TTL: never` is exempt.
pub fn limit_max_age<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    s.set_limits(Limits { max_age_nanos: Some(10 * SEC), ..Limits::default() }).unwrap();
    put(&mut s, "a", b"1", T0);
    s.append(&NewMessage::new("a", b"2", T0 + SEC).with_ttl(MsgTtl::Never)).unwrap();
    put(&mut s, "a", b"3", T0 + 2 * SEC);
    put(&mut s, "a", b"4", T0 + 20 * SEC);
    let e = s.expire(T0 + 5 * SEC).unwrap();
    assert!(e.removed.is_empty());
    assert_eq!(e.next, Some(T0 + 10 * SEC));
    let e = s.expire(T0 + 12 * SEC).unwrap();
    assert_eq!(e.removed.seqs, vec![1, 3]);
    assert_eq!(e.next, Some(T0 + 30 * SEC));
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.first_ts), (2, 2, T0 + SEC));
    let e = s.expire(T0 + 100 * SEC).unwrap();
    assert_eq!(e.removed.seqs, vec![4]);
    assert_eq!(e.next, None);
    assert_eq!(all(&s), vec![2]);
}

/// max_msgs_per_subject keeps the newest N of each subject, whatever the discard policy.
pub fn limit_max_msgs_per_subject<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    s.set_limits(Limits {
        max_msgs_per_subject: Some(2),
        discard: Discard::New,
        ..Limits::default()
    })
    .unwrap();
    let mut removed = Vec::new();
    for (i, subj) in ["k.a", "k.b", "k.a", "k.a", "k.b", "k.a", "k.c"].iter().enumerate() {
        removed.extend(s.append(&NewMessage::new(subj, b"v", T0 + i as i64)).unwrap().removed.seqs);
    }
    assert_eq!(removed, vec![1, 3]);
    let t = s.subjects_totals(&SubjectFilter::all());
    assert_eq!(
        t.into_iter().collect::<Vec<_>>(),
        vec![("k.a".to_string(), 2), ("k.b".to_string(), 2), ("k.c".to_string(), 1)]
    );
    let ss = s.subjects_state(&SubjectFilter::subject("k.a"));
    assert_eq!((ss["k.a"].first, ss["k.a"].last), (4, 6));
    // Lowering the limit sweeps every subject.
    let r = s.set_limits(Limits { max_msgs_per_subject: Some(1), ..Limits::default() }).unwrap();
    assert_eq!(r.seqs, vec![2, 4]);
    assert_eq!(all(&s), vec![5, 6, 7]);
    let st = s.state(true);
    assert_eq!((st.msgs, st.first_seq, st.num_deleted), (3, 5, 0));
}

/// The discard-new decision as nats-server makes it before storing.
pub fn discard_new_checks<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let lim = Limits {
        max_msgs: Some(3),
        max_msgs_per_subject: Some(1),
        discard: Discard::New,
        discard_new_per_subject: true,
        ..Limits::default()
    };
    s.set_limits(lim.clone()).unwrap();
    put(&mut s, "a", b"x", T0);
    let again = NewMessage::new("a", b"y", T0);
    assert_eq!(s.check_discard_new(&again, false).unwrap(), Some(LimitExceeded::MaxMsgsPerSubject));
    assert_eq!(s.check_discard_new(&again, true).unwrap(), None, "rollups pass");
    put(&mut s, "b", b"x", T0);
    put(&mut s, "c", b"x", T0);
    let d = NewMessage::new("d", b"x", T0);
    assert_eq!(s.check_discard_new(&d, false).unwrap(), Some(LimitExceeded::MaxMsgs));
    // A subject at its limit replaces its oldest, so max_msgs does not refuse it.
    s.set_limits(Limits { discard_new_per_subject: false, ..lim }).unwrap();
    assert_eq!(s.check_discard_new(&again, false).unwrap(), None);
    // Discard old never refuses.
    s.set_limits(Limits { max_msgs: Some(1), ..Limits::default() }).unwrap();
    assert_eq!(s.check_discard_new(&d, false).unwrap(), None);
}

/// STREAM.PURGE: by subject (literal, wildcard), up to a sequence, keep N, combined.
pub fn purge_variants<S: StreamStore>(mut new: impl FnMut() -> S) {
    let fill = |s: &mut S| {
        // seq:  1   2   3   4   5   6   7   8   9   10
        for (i, subj) in ["a", "b", "a", "c.1", "a", "c.2", "b", "a", "c.1", "a"].iter().enumerate()
        {
            put(s, subj, b"p", T0 + i as i64);
        }
    };
    let req = |subject: Option<&str>, seq: u64, keep: u64| PurgeRequest {
        subject: subject.map(str::to_owned),
        seq,
        keep,
    };

    let mut s = new();
    fill(&mut s);
    assert_eq!(s.purge(&req(Some("a"), 0, 0)).unwrap(), 5);
    assert_eq!(all(&s), vec![2, 4, 6, 7, 9]);
    assert_eq!(s.state(false).first_seq, 2);
    assert_eq!(s.purge(&req(Some("c.*"), 0, 0)).unwrap(), 3);
    assert_eq!(all(&s), vec![2, 7]);
    assert_eq!(s.state(true).deleted, Some(vec![3, 4, 5, 6, 8, 9, 10]));

    let mut s = new();
    fill(&mut s);
    assert_eq!(s.purge(&req(Some("a"), 0, 2)).unwrap(), 3);
    assert_eq!(seqs(&s, &SubjectFilter::subject("a")), vec![8, 10]);

    let mut s = new();
    fill(&mut s);
    assert_eq!(s.purge(&req(Some("a"), 6, 0)).unwrap(), 3, "below 6: 1, 3, 5");
    assert_eq!(seqs(&s, &SubjectFilter::subject("a")), vec![8, 10]);
    assert_eq!(s.purge(&req(Some("a"), 1, 0)).unwrap(), 0, "below 1 is nothing");

    // Up to a sequence on all subjects is a compact; keep applies across the filter.
    let mut s = new();
    fill(&mut s);
    assert_eq!(s.purge(&req(None, 4, 0)).unwrap(), 3);
    assert_eq!(s.state(false).first_seq, 4);
    assert_eq!(s.purge(&req(Some(">"), 0, 2)).unwrap(), 5);
    assert_eq!(all(&s), vec![9, 10]);
    assert_eq!(s.purge(&req(None, 0, 5)).unwrap(), 0, "keep more than there is");

    // Wildcard with keep keeps the newest across matching subjects.
    let mut s = new();
    fill(&mut s);
    assert_eq!(s.purge(&req(Some("c.>"), 0, 1)).unwrap(), 2);
    assert_eq!(seqs(&s, &SubjectFilter::subject("c.>")), vec![9]);
    assert_eq!(s.purge(&req(Some("nope"), 0, 0)).unwrap(), 0);
    let st = s.state(false);
    assert_eq!((st.msgs, st.num_subjects), (8, 3));
}

/// Compact removes everything below a sequence; past the end it resets the next sequence.
pub fn compact<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for i in 1..=10 {
        put(&mut s, if i % 2 == 0 { "e" } else { "o" }, b"c", T0 + i);
    }
    s.remove(6, RemoveMode::Remove).unwrap();
    s.remove(8, RemoveMode::Remove).unwrap();
    assert_eq!(s.compact(5).unwrap(), 4);
    let st = s.state(true);
    assert_eq!((st.msgs, st.first_seq, st.first_ts, st.last_seq), (4, 5, T0 + 5, 10));
    assert_eq!(st.deleted, Some(vec![6, 8]));
    assert_eq!(s.compact(3).unwrap(), 0, "already below first");
    // Compacting onto a deleted sequence lands first on the next record.
    assert_eq!(s.compact(6).unwrap(), 1);
    let st = s.state(true);
    assert_eq!((st.first_seq, st.deleted), (7, Some(vec![8])));
    assert_eq!(s.subjects_totals(&SubjectFilter::all())["o"], 2);
    // Past the end: empty, and the next message gets the compact sequence.
    assert_eq!(s.compact(20).unwrap(), 3);
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.last_seq, st.num_subjects), (0, 20, 19, 0));
    assert_eq!(put(&mut s, "o", b"c", T0 + 20), 20);
    assert_eq!(s.compact(0).unwrap(), 1, "0 purges everything");
    assert_eq!(s.state(false).first_seq, 21);
}

/// Per-message TTLs expire at timestamp + TTL given `now`.
pub fn message_ttl<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    s.append(&NewMessage::new("t", b"1", T0).with_ttl(MsgTtl::Seconds(5))).unwrap();
    put(&mut s, "t", b"2", T0);
    s.append(&NewMessage::new("u", b"3", T0).with_ttl(MsgTtl::Seconds(2))).unwrap();
    s.append(&NewMessage::new("u", b"4", T0).with_ttl(MsgTtl::Seconds(60))).unwrap();
    let e = s.expire(T0 + SEC).unwrap();
    assert!(e.removed.is_empty());
    assert_eq!(e.next, Some(T0 + 2 * SEC));
    let e = s.expire(T0 + 2 * SEC).unwrap();
    assert_eq!(e.removed.seqs, vec![3]);
    assert_eq!(e.next, Some(T0 + 5 * SEC));
    // A message removed by other means leaves the schedule too.
    s.remove(4, RemoveMode::Remove).unwrap();
    let e = s.expire(T0 + 10 * SEC).unwrap();
    assert_eq!(e.removed.seqs, vec![1]);
    assert_eq!(e.next, None);
    assert_eq!(all(&s), vec![2]);
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.num_subjects), (1, 2, 1));
}

/// Every state number after a mixed history.
pub fn state_numbers<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let k = s.kind();
    let hdr = b"NATS/1.0\r\n\r\n";
    s.append(&NewMessage::new("x.1", b"aaaa", T0 + 1).with_headers(hdr)).unwrap();
    put(&mut s, "x.2", b"bb", T0 + 2);
    put(&mut s, "y", b"", T0 + 3);
    put(&mut s, "x.1", b"c", T0 + 4);
    s.remove(2, RemoveMode::Remove).unwrap();
    let st = s.state(false);
    let bytes = msg_size(k, "x.1", Some(hdr), b"aaaa")
        + msg_size(k, "y", None, b"")
        + msg_size(k, "x.1", None, b"c");
    assert_eq!(st.msgs, 3);
    assert_eq!(st.bytes, bytes);
    assert_eq!((st.first_seq, st.first_ts, st.last_seq, st.last_ts), (1, T0 + 1, 4, T0 + 4));
    assert_eq!((st.num_deleted, st.deleted.clone(), st.num_subjects), (1, None, 2));
    assert!(st.corrupt.is_empty());
    // Header bytes count: with headers the file store adds 4 for their length.
    let with = msg_size(k, "s", Some(b"h"), b"p");
    let without = msg_size(k, "s", None, b"p");
    assert_eq!(with - without, if k == StorageKind::File { 5 } else { 1 });
}

/// The deleted-sequence details, in order, bounded by first/last.
pub fn deleted_details<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for i in 1..=20 {
        put(&mut s, "d", b"x", T0 + i);
    }
    for seq in [15, 3, 9, 10, 20, 1] {
        s.remove(seq, RemoveMode::Remove).unwrap();
    }
    let st = s.state(true);
    assert_eq!(st.first_seq, 2);
    assert_eq!(st.deleted, Some(vec![3, 9, 10, 15, 20]));
    assert_eq!(st.num_deleted, 5);
    assert_eq!(st.msgs, 14);
    assert_eq!(st.last_seq - st.first_seq + 1 - st.msgs, st.num_deleted);
    s.remove(2, RemoveMode::Remove).unwrap();
    let st = s.state(true);
    assert_eq!((st.first_seq, st.deleted), (4, Some(vec![9, 10, 15, 20])));
}

/// Filtered pending counts, as consumers need for num_pending.
pub fn num_pending<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    // seq: 1    2    3    4    5    6    7    8
    for (i, subj) in ["a.x", "b", "a.y", "a.x", "b", "a.z", "b", "a.x"].iter().enumerate() {
        put(&mut s, subj, b"n", T0 + i as i64);
    }
    let np =
        |s: &S, start, f: &str, lps| s.num_pending(start, &SubjectFilter::subject(f), lps).unwrap();
    assert_eq!(np(&s, 0, ">", false), 8);
    assert_eq!(np(&s, 4, ">", false), 5);
    assert_eq!(np(&s, 9, ">", false), 0);
    assert_eq!(np(&s, 1, "a.x", false), 3);
    assert_eq!(np(&s, 2, "a.x", false), 2);
    assert_eq!(np(&s, 5, "a.*", false), 2);
    assert_eq!(np(&s, 1, "b", false), 3);
    assert_eq!(np(&s, 1, "a.*", true), 3, "a.x, a.y, a.z");
    assert_eq!(np(&s, 7, "a.*", true), 1, "only a.x has its last at/after 7");
    assert_eq!(np(&s, 1, ">", true), 4);
    let multi = SubjectFilter::any_of(["a.y", "b"]);
    assert_eq!(s.num_pending(3, &multi, false).unwrap(), 3);
    s.remove(4, RemoveMode::Remove).unwrap();
    s.remove(1, RemoveMode::Remove).unwrap();
    assert_eq!(np(&s, 0, ">", false), 6);
    assert_eq!(np(&s, 5, ">", false), 4);
    assert_eq!(np(&s, 0, "a.x", false), 1);
}

/// Per-subject totals and states for a filter.
pub fn subject_totals<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    for (i, subj) in ["s.a.1", "s.a.2", "s.b.1", "s.a.1", "t"].iter().enumerate() {
        put(&mut s, subj, b"v", T0 + i as i64);
    }
    let t = s.subjects_totals(&SubjectFilter::subject("s.a.*"));
    assert_eq!(
        t.into_iter().collect::<Vec<_>>(),
        vec![("s.a.1".to_string(), 2), ("s.a.2".to_string(), 1)]
    );
    let t = s.subjects_totals(&SubjectFilter::subject("s.*.1"));
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), vec!["s.a.1", "s.b.1"]);
    assert_eq!(s.subjects_totals(&SubjectFilter::all()).len(), 4);
    assert_eq!(s.subjects_totals(&SubjectFilter::subject("t")).get("t"), Some(&1));
    assert!(s.subjects_totals(&SubjectFilter::subject("u")).is_empty());
    let st = s.subjects_state(&SubjectFilter::subject("s.a.1"));
    assert_eq!((st["s.a.1"].msgs, st["s.a.1"].first, st["s.a.1"].last), (2, 1, 4));
    s.remove(1, RemoveMode::Remove).unwrap();
    let st = s.subjects_state(&SubjectFilter::subject("s.a.1"));
    assert_eq!((st["s.a.1"].msgs, st["s.a.1"].first, st["s.a.1"].last), (1, 4, 4));
}

/// Erase removes like remove does.
pub fn erase<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    put(&mut s, "e", b"secret", T0);
    put(&mut s, "e", b"public", T0);
    assert!(s.remove(1, RemoveMode::Erase).unwrap());
    assert!(s.load(1).unwrap().is_none());
    assert_eq!(&s.load(2).unwrap().unwrap().payload[..], b"public");
    assert_eq!(s.state(false).msgs, 1);
}

/// Deleting the stream removes its data and closes the handle.
pub fn delete_closes<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    put(&mut s, "z", b"1", T0);
    s.delete().unwrap();
    assert!(matches!(s.append(&NewMessage::new("z", b"2", T0)), Err(crate::StoreError::Closed(_))));
    assert!(s.load(1).is_err());
    assert_eq!(s.state(false).msgs, 0);
}

/// One batch under limits ends where the same appends one by one end.
pub fn batch_enforcement_matches_single<S: StreamStore>(mut new: impl FnMut() -> S) {
    let limits = Limits {
        max_msgs: Some(7),
        max_bytes: Some(900),
        max_msgs_per_subject: Some(3),
        ..Limits::default()
    };
    let payloads: Vec<Vec<u8>> = (0..30).map(|i| vec![b'x'; (i * 7) % 60]).collect();
    let msgs: Vec<NewMessage<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| NewMessage::new(["p", "q", "r", "p", "p"][i % 5], p, T0 + i as i64))
        .collect();
    let mut one = new();
    one.set_limits(limits.clone()).unwrap();
    let mut removed_one = Vec::new();
    for m in &msgs {
        removed_one.extend(one.append(m).unwrap().removed.seqs);
    }
    let mut batch = new();
    batch.set_limits(limits).unwrap();
    let mut removed_batch = Vec::new();
    for chunk in msgs.chunks(8) {
        removed_batch.extend(batch.append_batch(chunk).unwrap().removed.seqs);
    }
    removed_one.sort_unstable();
    removed_batch.sort_unstable();
    assert_eq!(removed_one, removed_batch);
    assert_eq!(all(&one), all(&batch));
    assert_eq!(one.state(true), batch.state(true));
}

/// A tiny deterministic generator, so the suite needs no `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random appends, removes, purges and compacts checked against a plain model after every
/// step (state, deleted set, per-subject totals, filtered walks).
pub fn model_random_ops<S: StreamStore>(mut new: impl FnMut() -> S) {
    let mut s = new();
    let kind = s.kind();
    let subjects = ["m.a", "m.b", "m.c.1", "m.c.2", "n"];
    let filters = ["m.*", "m.>", "n", "m.c.*", ">"];
    // seq -> (subject, size, ts)
    let mut model: BTreeMap<u64, (&str, u64, i64)> = BTreeMap::new();
    let mut first = 0u64;
    let mut last = 0u64;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for step in 0..400 {
        let ts = T0 + step;
        // After any removal, `first` is the oldest record, or last + 1 once empty.
        let refirst = |model: &BTreeMap<u64, (&str, u64, i64)>, last: u64| {
            model.keys().next().copied().unwrap_or(last + 1)
        };
        match rng.below(10) {
            0..=4 => {
                let subj = subjects[rng.below(5) as usize];
                let payload = vec![b'p'; rng.below(40) as usize];
                let seq = put(&mut s, subj, &payload, ts);
                last += 1;
                assert_eq!(seq, last);
                if model.is_empty() {
                    first = seq;
                }
                model.insert(seq, (subj, msg_size(kind, subj, None, &payload), ts));
            }
            5 | 6 => {
                let seq = first + rng.below(last + 2 - first);
                let had = model.remove(&seq).is_some();
                assert_eq!(s.remove(seq, RemoveMode::Remove).unwrap(), had, "remove {seq}");
                if had {
                    first = refirst(&model, last);
                }
            }
            7 => {
                let f = filters[rng.below(5) as usize];
                let filter = SubjectFilter::subject(f);
                let keep = rng.below(3);
                let matching: Vec<u64> =
                    model.iter().filter(|(_, m)| filter.matches(m.0)).map(|(q, _)| *q).collect();
                let n = matching.len().saturating_sub(keep as usize);
                for q in &matching[..n] {
                    model.remove(q);
                }
                let req = PurgeRequest { subject: Some(f.to_owned()), seq: 0, keep };
                assert_eq!(s.purge(&req).unwrap(), n as u64, "purge {f} keep {keep}");
                if n > 0 || (f == ">" && keep == 0) {
                    first = refirst(&model, last);
                }
            }
            8 => {
                let to = first + rng.below(last + 3 - first);
                let before = model.len() as u64;
                let expect = if to == 0 {
                    model.clear();
                    first = last + 1;
                    before
                } else if first > to {
                    0
                } else if to <= last {
                    model.retain(|q, _| *q >= to);
                    first = refirst(&model, last);
                    before - model.len() as u64
                } else {
                    model.clear();
                    first = to;
                    last = to - 1;
                    before
                };
                assert_eq!(s.compact(to).unwrap(), expect, "compact {to}");
            }
            _ => {
                // Mixes buffered and written state for stores that buffer (group commit):
                // reads must merge both.
                if rng.below(2) == 0 {
                    s.flush().unwrap();
                }
                let f = SubjectFilter::subject(filters[rng.below(5) as usize]);
                let start = first + rng.below(last + 2 - first);
                let want: Vec<u64> =
                    model.range(start..).filter(|(_, m)| f.matches(m.0)).map(|(q, _)| *q).collect();
                assert_eq!(s.num_pending(start, &f, false).unwrap(), want.len() as u64);
                assert_eq!(s.load_next(&f, start).unwrap().map(|m| m.seq), want.first().copied());
            }
        }
        let st = s.state(true);
        assert_eq!(st.msgs, model.len() as u64, "step {step}");
        assert_eq!(st.bytes, model.values().map(|m| m.1).sum::<u64>(), "step {step}");
        assert_eq!(st.last_seq, last, "step {step}");
        assert_eq!(st.first_seq, first, "step {step}");
        if model.is_empty() {
            assert_eq!((st.num_deleted, st.first_ts), (0, 0), "step {step}");
        } else {
            assert_eq!(st.first_ts, model[&first].2, "step {step}");
            let deleted: Vec<u64> = (first..=last).filter(|q| !model.contains_key(q)).collect();
            assert_eq!(st.deleted.as_deref(), Some(&deleted[..]), "step {step}");
        }
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for m in model.values() {
            *totals.entry(m.0.to_owned()).or_default() += 1;
        }
        assert_eq!(s.subjects_totals(&SubjectFilter::all()), totals, "step {step}");
        if step % 8 == 0 {
            for q in first.saturating_sub(1)..=last + 1 {
                let got = s.load(q).unwrap().map(|m| m.subject);
                assert_eq!(got.as_deref(), model.get(&q).map(|m| m.0), "load {q}, step {step}");
            }
        }
    }
}
