//! The raft log behaviour suite on both backends, and what only RocksDB does: survive a
//! reopen, and refuse a damaged entry.

use chorus_store::raftlog::suite;
use chorus_store::{MemRaftLog, RaftLog, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("db")).unwrap();
    (dir, s)
}

#[test]
fn memory_log_behaves() {
    suite::append_and_read(&MemRaftLog::new());
    suite::truncate_and_purge(&MemRaftLog::new());
    suite::meta_and_remove(&MemRaftLog::new());
    assert!(!MemRaftLog::new().durable());
}

#[test]
fn rocksdb_log_behaves() {
    let (_d, s) = store();
    suite::append_and_read(&s);
    let (_d, s) = store();
    suite::truncate_and_purge(&s);
    let (_d, s) = store();
    suite::meta_and_remove(&s);
    assert!(s.durable());
}

#[test]
fn rocksdb_log_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path().join("db")).unwrap();
        s.append("S-1", &[(1, b"a".to_vec()), (2, b"b".to_vec())]).unwrap();
        s.put_meta("S-1", "vote", b"t3").unwrap();
        s.sync().unwrap();
    }
    let s = Store::open(dir.path().join("db")).unwrap();
    assert_eq!(s.last("S-1").unwrap(), Some((2, b"b".to_vec())));
    assert_eq!(s.meta("S-1", "vote").unwrap(), Some(b"t3".to_vec()));
}

#[test]
fn a_failed_sync_poisons_the_log_too() {
    let (_d, s) = store();
    s.append("g", &[(1, b"a".to_vec())]).unwrap();
    s.inject_fault(chorus_store::Fault::FailNextSync);
    assert!(s.sync().is_err());
    assert!(s.append("g", &[(2, b"b".to_vec())]).is_err(), "nothing retries silently");
}
