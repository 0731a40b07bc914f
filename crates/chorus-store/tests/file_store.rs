//! FileStore-only behaviour: restarts, crashes, corruption, poisoning, stream management.

use chorus_store::file::codec;
use chorus_store::{
    Fault, FileStore, Limits, MsgTtl, NewMessage, PurgeRequest, RemoveMode, Store, StoreError,
    StreamStore, SubjectFilter,
};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000_000_000;

fn all_msgs(s: &FileStore) -> Vec<chorus_store::StoredMsg> {
    let mut out = Vec::new();
    let mut next = 0;
    while let Some(m) = s.load_next(&SubjectFilter::all(), next).unwrap() {
        next = m.seq + 1;
        out.push(m);
    }
    out
}

/// Everything observable about a stream, for before/after comparisons.
type Snapshot = (
    chorus_store::StreamState,
    std::collections::BTreeMap<String, chorus_store::SubjectState>,
    Vec<chorus_store::StoredMsg>,
    u64,
);

fn snapshot(s: &FileStore) -> Snapshot {
    (
        s.state(true),
        s.subjects_state(&SubjectFilter::all()),
        all_msgs(s),
        s.num_pending(0, &SubjectFilter::subject("a.*"), false).unwrap(),
    )
}

#[test]
fn reopen_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.create_stream("ORDERS", br#"{"name":"ORDERS"}"#).unwrap();
        let mut other = store.create_stream("OTHER", b"cfg2").unwrap();
        for i in 0..30i64 {
            let subj = ["a.x", "a.y", "b"][i as usize % 3];
            let m = NewMessage::new(subj, b"payload", T0 + i);
            let m = if i % 4 == 0 { m.with_headers(b"NATS/1.0\r\nK: v\r\n\r\n") } else { m };
            let m = if i % 5 == 0 { m.with_ttl(MsgTtl::Seconds(3600)) } else { m };
            s.append(&m).unwrap();
        }
        other.append(&NewMessage::new("z", b"other", T0)).unwrap();
        s.remove(1, RemoveMode::Remove).unwrap();
        s.remove(7, RemoveMode::Erase).unwrap();
        s.remove(30, RemoveMode::Remove).unwrap();
        s.purge(&PurgeRequest { subject: Some("b".into()), seq: 20, keep: 0 }).unwrap();
        store.put_consumer_state("ORDERS", "C1", b"state-1").unwrap();
        store.put_consumer_state("ORDERS", "C2", b"state-2").unwrap();
        store.set_stream_config("OTHER", b"cfg3").unwrap();
        s.sync().unwrap();
        before = snapshot(&s);
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stream_names().unwrap(), vec!["ORDERS", "OTHER"]);
    assert_eq!(store.stream_config("ORDERS").unwrap().unwrap(), br#"{"name":"ORDERS"}"#);
    assert_eq!(store.stream_config("OTHER").unwrap().unwrap(), b"cfg3");
    assert_eq!(
        store.consumer_states("ORDERS").unwrap(),
        vec![("C1".to_string(), b"state-1".to_vec()), ("C2".to_string(), b"state-2".to_vec())]
    );
    let mut s = store.open_stream("ORDERS").unwrap();
    assert_eq!(snapshot(&s), before);
    let st = s.state(true);
    assert_eq!((st.last_seq, st.msgs), (30, 30 - 3 - 6));
    assert!(st.deleted.as_ref().unwrap().contains(&30), "a removed tail stays deleted");
    // TTL schedule and sequence continue after the restart.
    let e = s.expire(T0 + 3601 * 1_000_000_000).unwrap();
    assert_eq!(e.removed.seqs, vec![11, 16, 21, 26], "TTL'd messages that remain");
    assert_eq!(s.append(&NewMessage::new("a.x", b"n", T0 + 99)).unwrap().seq, 31);
    let other = store.open_stream("OTHER").unwrap();
    assert_eq!(&other.load(1).unwrap().unwrap().payload[..], b"other");
}

#[test]
fn watermarks_survive_reopen_of_an_empty_stream() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.create_stream("E", b"").unwrap();
        for i in 0..5 {
            s.append(&NewMessage::new("e", b"x", T0 + i)).unwrap();
        }
        s.purge(&PurgeRequest::default()).unwrap();
        let mut c = store.create_stream("C", b"").unwrap();
        c.compact(100).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut s = store.open_stream("E").unwrap();
    let st = s.state(false);
    assert_eq!((st.msgs, st.first_seq, st.last_seq, st.last_ts), (0, 6, 5, T0 + 4));
    assert_eq!(s.append(&NewMessage::new("e", b"x", T0)).unwrap().seq, 6);
    let mut c = store.open_stream("C").unwrap();
    assert_eq!((c.state(false).first_seq, c.state(false).last_seq), (100, 99));
    assert_eq!(c.append(&NewMessage::new("e", b"x", T0)).unwrap().seq, 100);
}

/// Random operations with a close/reopen every few steps: the reopened stream must look
/// exactly like the one that was closed.
#[test]
fn random_history_survives_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut expected = None;
    for round in 0..12 {
        let store = Store::open(dir.path()).unwrap();
        let mut s = if round == 0 {
            store.create_stream("R", b"").unwrap()
        } else {
            store.open_stream("R").unwrap()
        };
        if let Some(exp) = expected.take() {
            assert_eq!(snapshot(&s), exp, "round {round}");
        }
        s.set_limits(Limits { max_msgs_per_subject: Some(6), ..Limits::default() }).unwrap();
        for step in 0..40 {
            let last = s.state(false).last_seq;
            match rnd(8) {
                0..=3 => {
                    let subj = ["a.1", "a.2", "b", "c.d"][rnd(4) as usize];
                    let body = vec![b'r'; rnd(64) as usize];
                    let ttl =
                        if rnd(4) == 0 { MsgTtl::Seconds(rnd(100) + 1) } else { MsgTtl::None };
                    s.append(&NewMessage::new(subj, &body, T0 + step).with_ttl(ttl)).unwrap();
                }
                4 => {
                    s.remove(rnd(last + 1), RemoveMode::Remove).unwrap();
                }
                5 => {
                    let subj = ["a.*", "b", ">"][rnd(3) as usize];
                    let req = PurgeRequest { subject: Some(subj.into()), seq: 0, keep: rnd(3) + 1 };
                    s.purge(&req).unwrap();
                }
                6 => {
                    s.compact(s.state(false).first_seq + rnd(3)).unwrap();
                }
                _ => {
                    s.expire(T0 + rnd(60) as i64 * 1_000_000_000).unwrap();
                }
            }
        }
        s.sync().unwrap();
        expected = Some(snapshot(&s));
    }
}

#[test]
fn stream_management() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut a = store.create_stream("A", b"a").unwrap();
    assert!(matches!(store.create_stream("A", b"x"), Err(StoreError::StreamExists(_))));
    assert!(matches!(store.open_stream("A"), Err(StoreError::StreamOpen(_))));
    assert!(matches!(store.delete_stream("A"), Err(StoreError::StreamOpen(_))));
    assert!(matches!(store.open_stream("NOPE"), Err(StoreError::StreamNotFound(_))));
    a.append(&NewMessage::new("s", b"old", T0)).unwrap();
    store.put_consumer_state("A", "C", b"c").unwrap();
    let old_id = a.stream_id();
    a.delete().unwrap();
    drop(a);
    assert!(store.stream_names().unwrap().is_empty());
    // A new stream of the same name gets a new id and none of the old data.
    let b = store.create_stream("A", b"b").unwrap();
    assert!(b.stream_id() > old_id);
    assert!(b.load(1).unwrap().is_none());
    assert_eq!(b.state(false).msgs, 0);
    assert!(store.consumer_states("A").unwrap().is_empty());
    drop(b);
    assert!(store.delete_stream("A").unwrap());
    assert!(!store.delete_stream("A").unwrap());
    // Consumer state lifecycle.
    let _c = store.create_stream("C", b"").unwrap();
    store.put_consumer_state("C", "d", b"1").unwrap();
    store.put_consumer_state("C", "d", b"2").unwrap();
    assert_eq!(store.consumer_state("C", "d").unwrap().unwrap(), b"2");
    assert!(store.delete_consumer_state("C", "d").unwrap());
    assert!(!store.delete_consumer_state("C", "d").unwrap());
    assert_eq!(store.consumer_state("C", "d").unwrap(), None);
}

fn raw_db(path: &Path) -> rocksdb::DB {
    let cfs = [codec::CF_MESSAGES, codec::CF_SUBJECTS, codec::CF_META, codec::CF_RAFT];
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).unwrap()
}

fn flip(db: &rocksdb::DB, cf: &str, key: &[u8], at: impl Fn(usize) -> usize) {
    let cf = db.cf_handle(cf).unwrap();
    let mut v = db.get_cf(cf, key).unwrap().expect("record present");
    let i = at(v.len());
    v[i] ^= 0x5a;
    db.put_cf(cf, key, v).unwrap();
}

#[test]
fn corruption_is_reported_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.create_stream("K", b"").unwrap();
        id = s.stream_id();
        for i in 1..=6 {
            s.append(&NewMessage::new("k", format!("body-{i}").as_bytes(), T0 + i)).unwrap();
        }
    }
    {
        let db = raw_db(dir.path());
        // seq 3: a payload byte; seq 1: a subject byte (the record header).
        flip(&db, codec::CF_MESSAGES, &codec::message_key(id, 3), |n| n - 6);
        flip(&db, codec::CF_MESSAGES, &codec::message_key(id, 1), |_| 28);
    }
    let store = Store::open(dir.path()).unwrap();
    // The header of the first record is read at open: the stream refuses to open.
    match store.open_stream("K") {
        Err(StoreError::Corrupt { stream, seq, .. }) => {
            assert_eq!((stream.as_str(), seq), ("K", 1))
        }
        other => panic!("expected corrupt error, got {other:?}"),
    }
    let report = store.repair_stream("K").unwrap();
    assert_eq!((report.removed, report.kept), (vec![1, 3], 4));
    let s = store.open_stream("K").unwrap();
    let st = s.state(true);
    assert_eq!((st.msgs, st.first_seq, st.last_seq, st.deleted), (4, 2, 6, Some(vec![3])));
    assert_eq!(&s.load(2).unwrap().unwrap().payload[..], b"body-2");
    drop(s);

    // A damaged payload in the middle: loads of it fail, others work, state lists it.
    {
        drop(store);
        let db = raw_db(dir.path());
        flip(&db, codec::CF_MESSAGES, &codec::message_key(id, 5), |n| n - 6);
    }
    let store = Store::open(dir.path()).unwrap();
    let mut s = store.open_stream("K").unwrap();
    match s.load(5) {
        Err(StoreError::Corrupt { stream, seq, detail }) => {
            assert_eq!((stream.as_str(), seq), ("K", 5));
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected corrupt error, got {other:?}"),
    }
    assert_eq!(s.state(false).corrupt, vec![5]);
    assert!(s.load(4).unwrap().is_some());
    assert!(matches!(
        s.load_next(&SubjectFilter::all(), 5),
        Err(StoreError::Corrupt { seq: 5, .. })
    ));
    // Still counted: nothing was dropped.
    assert_eq!(s.state(false).msgs, 4);
    // Removing it explicitly is allowed (its header is intact) and clears the report.
    assert!(s.remove(5, RemoveMode::Remove).unwrap());
    assert!(s.state(false).corrupt.is_empty());
    drop(s);

    // A damaged index entry: the stream does not open until repaired.
    drop(store);
    {
        let db = raw_db(dir.path());
        flip(&db, codec::CF_SUBJECTS, &codec::subject_key(id, "k", 4), |_| 0);
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(store.open_stream("K"), Err(StoreError::Corrupt { seq: 4, .. })));
    let report = store.repair_stream("K").unwrap();
    assert_eq!((report.removed, report.kept), (vec![], 3));
    let s = store.open_stream("K").unwrap();
    assert_eq!(all_msgs(&s).iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 4, 6]);
}

#[test]
fn corrupt_record_met_by_a_mutation_breaks_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.create_stream("B", b"").unwrap();
        id = s.stream_id();
        for i in 1..=4 {
            s.append(&NewMessage::new("b", b"x", T0 + i)).unwrap();
        }
    }
    {
        let db = raw_db(dir.path());
        flip(&db, codec::CF_MESSAGES, &codec::message_key(id, 2), |_| 28);
    }
    let store = Store::open(dir.path()).unwrap();
    let mut s = store.open_stream("B").unwrap();
    // A direct remove reads first and fails cleanly.
    assert!(matches!(s.remove(2, RemoveMode::Remove), Err(StoreError::Corrupt { seq: 2, .. })));
    assert!(s.load(1).unwrap().is_some());
    // Enforcing max_msgs must walk over seq 2: the whole operation is dropped.
    let err = s.set_limits(Limits { max_msgs: Some(1), ..Limits::default() }).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { seq: 2, .. }), "{err}");
    assert!(matches!(s.load(3), Err(StoreError::Broken { .. })));
    drop(s);
    // Nothing of the failed operation reached the disk.
    let s = store.open_stream("B").unwrap();
    assert_eq!(s.state(false).msgs, 4);
}

#[test]
fn failed_sync_poisons_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut a = store.create_stream("A", b"").unwrap();
        let mut b = store.create_stream("B", b"").unwrap();
        a.append(&NewMessage::new("a", b"1", T0)).unwrap();
        a.sync().unwrap();
        store.inject_fault(Fault::FailNextSync);
        a.append(&NewMessage::new("a", b"2", T0)).unwrap();
        assert!(matches!(a.sync(), Err(StoreError::Injected("sync"))));
        assert!(store.poisoned().unwrap().contains("sync failed"));
        assert!(matches!(a.append(&NewMessage::new("a", b"3", T0)), Err(StoreError::Poisoned(_))));
        assert!(matches!(a.load(1), Err(StoreError::Poisoned(_))));
        assert!(matches!(b.append(&NewMessage::new("b", b"1", T0)), Err(StoreError::Poisoned(_))));
        assert!(matches!(b.sync(), Err(StoreError::Poisoned(_))));
        assert!(matches!(store.put_consumer_state("A", "c", b""), Err(StoreError::Poisoned(_))));
        assert!(matches!(store.create_stream("C", b""), Err(StoreError::Poisoned(_))));
    }
    // A restart recovers what the WAL holds.
    let store = Store::open(dir.path()).unwrap();
    assert!(store.poisoned().is_none());
    let a = store.open_stream("A").unwrap();
    assert_eq!(a.state(false).last_seq, 2);
}

#[test]
fn failed_write_poisons_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut a = store.create_stream("A", b"").unwrap();
        a.append(&NewMessage::new("a", b"1", T0)).unwrap();
        a.flush().unwrap();
        store.inject_fault(Fault::FailNextWrite);
        // Appends are buffered (group commit): the write happens at the flush.
        a.append(&NewMessage::new("a", b"2", T0)).unwrap();
        let err = a.flush().unwrap_err();
        assert!(matches!(err, StoreError::Injected("write")), "{err}");
        // Nothing is served any more: what reached the disk is unknown.
        assert!(matches!(a.load(1), Err(StoreError::Broken { .. } | StoreError::Poisoned(_))));
        assert!(matches!(a.sync(), Err(StoreError::Broken { .. } | StoreError::Poisoned(_))));
        assert!(matches!(store.sync(), Err(StoreError::Poisoned(_))));
        assert!(matches!(store.stream_names(), Err(StoreError::Poisoned(_))));
    }
    let store = Store::open(dir.path()).unwrap();
    let a = store.open_stream("A").unwrap();
    let st = a.state(false);
    assert_eq!((st.msgs, st.last_seq), (1, 1), "the failed write is not there");
}

const CHILD_ENV: &str = "CHORUS_STORE_CRASH_DIR";

/// Writer half of `kill9_loses_no_acknowledged_message`: appends batches forever, printing
/// each batch's range once `sync` returned. A no-op when run as an ordinary test.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open(&dir).unwrap();
    let mut s = match store.open_stream("CRASH") {
        Ok(s) => s,
        Err(StoreError::StreamNotFound(_)) => store.create_stream("CRASH", b"").unwrap(),
        Err(e) => panic!("{e}"),
    };
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let next = s.state(false).last_seq + 1;
        let bodies: Vec<String> = (next..next + 10).map(|q| format!("seq-{q}")).collect();
        let batch: Vec<NewMessage<'_>> =
            bodies.iter().map(|b| NewMessage::new("crash.test", b.as_bytes(), T0)).collect();
        let r = s.append_batch(&batch).unwrap();
        s.sync().unwrap();
        writeln!(out, "ACK {} {}", r.seq, r.last_seq).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut prev_last = 0;
    for (round, kill_after) in [150usize, 40, 300].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut acked: Vec<(u64, u64)> = Vec::new();
        while acked.len() < kill_after {
            let line = lines.next().expect("child ended early").unwrap();
            // libtest may print "test crash_writer_child ... " on the same line.
            let Some((_, rest)) = line.split_once("ACK ") else { continue };
            let (a, b) = rest.split_once(' ').unwrap();
            acked.push((a.parse().unwrap(), b.parse().unwrap()));
        }
        // SIGKILL while the child is still appending.
        child.kill().unwrap();
        child.wait().unwrap();

        // The writer continued exactly where the previous crash left the stream.
        assert_eq!(acked[0].0, prev_last + 1, "round {round}");
        for w in acked.windows(2) {
            assert_eq!(w[1].0, w[0].1 + 1, "round {round}: acks are contiguous");
        }
        let store = Store::open(dir.path()).unwrap();
        let s = store.open_stream("CRASH").unwrap();
        let msgs = all_msgs(&s);
        let st = s.state(false);
        let max_acked = acked.last().unwrap().1;
        assert!(st.last_seq >= max_acked, "round {round}: lost acknowledged messages");
        // In order, no gaps, no duplicates, each body naming its own sequence.
        assert_eq!((st.msgs, msgs.len() as u64), (st.last_seq, st.last_seq), "round {round}");
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.seq, i as u64 + 1, "round {round}");
            assert_eq!(&m.payload[..], format!("seq-{}", m.seq).as_bytes(), "round {round}");
        }
        prev_last = st.last_seq;
    }
}

/// Not a test of behaviour: prints append+sync throughput of 100 x 1 KiB batches.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn measure_batch_append_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut s = store.create_stream("BENCH", b"").unwrap();
    let body = vec![0xabu8; 1024];
    let batch: Vec<NewMessage<'_>> =
        (0..100).map(|i| NewMessage::new("bench.subject", &body, T0 + i)).collect();
    let rounds = 500;
    for sync in [true, false] {
        let start = Instant::now();
        for _ in 0..rounds {
            s.append_batch(&batch).unwrap();
            if sync {
                s.sync().unwrap();
            }
        }
        let el = start.elapsed();
        let n = rounds * 100;
        println!(
            "sync={sync}: {n} msgs in {:.2?}: {:.0} msgs/s, {:.0} batches/s, {:.1} MiB/s",
            el,
            n as f64 / el.as_secs_f64(),
            rounds as f64 / el.as_secs_f64(),
            n as f64 * 1024.0 / el.as_secs_f64() / 1048576.0
        );
    }
}

/// Group commit: appends are buffered until a flush, readable at once, and a handle dropped
/// without a flush still writes what its committed mutations buffered.
#[test]
fn buffered_writes_are_read_back_and_survive_drop() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut a = store.create_stream("A", b"").unwrap();
        for i in 0..5 {
            a.append(&NewMessage::new("g.a", format!("m{i}").as_bytes(), T0)).unwrap();
        }
        a.flush().unwrap();
        // Buffered on top of written: a removal of a written message, new appends, a purge
        // of one subject.
        assert!(a.remove(2, RemoveMode::Remove).unwrap());
        a.append(&NewMessage::new("g.b", b"b1", T0)).unwrap();
        a.append(&NewMessage::new("g.a", b"m5", T0)).unwrap();
        assert!(a.load(2).unwrap().is_none());
        assert_eq!(&a.load(7).unwrap().unwrap().payload[..], b"m5");
        let f = SubjectFilter::subject("g.b");
        assert_eq!(a.load_next(&f, 1).unwrap().unwrap().seq, 6);
        assert_eq!(a.load_last(&SubjectFilter::subject("g.a")).unwrap().unwrap().seq, 7);
        let purged = a
            .purge(&chorus_store::PurgeRequest { subject: Some("g.a".into()), seq: 0, keep: 1 })
            .unwrap();
        assert_eq!(purged, 4);
        assert_eq!(a.state(false).msgs, 2);
        // Dropped without flush or sync.
    }
    let store = Store::open(dir.path()).unwrap();
    let a = store.open_stream("A").unwrap();
    let st = a.state(true);
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (2, 6, 7));
    assert_eq!(&a.load(6).unwrap().unwrap().payload[..], b"b1");
    assert_eq!(&a.load(7).unwrap().unwrap().payload[..], b"m5");
    assert!(a.load(1).unwrap().is_none());
}

/// A caller that never flushes does not buffer without bound: a large group is written on
/// its own.
#[test]
fn large_groups_are_written_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut a = store.create_stream("A", b"").unwrap();
    let body = vec![b'x'; 64 * 1024];
    let mut peak = 0;
    for _ in 0..1100 {
        a.append(&NewMessage::new("big", &body, T0)).unwrap();
        peak = peak.max(a.buffered_bytes());
    }
    assert!(peak > 0, "appends are buffered");
    assert!(a.buffered_bytes() < 1100 * body.len(), "the group was written on its own");
    assert!(peak <= 64 * 1024 * 1024 + body.len() + 64, "peak {peak}");
    a.flush().unwrap();
    assert_eq!(a.buffered_bytes(), 0);
}
