//! The shared behaviour suite against FileStore. Every store a test asks for is a new stream
//! in the same database, so the suite also checks that streams sharing a database stay apart.

chorus_store::store_suite!({
    let mut db: Option<(chorus_store::Store, tempfile::TempDir)> = None;
    let mut n = 0;
    move || {
        let (store, _) = db.get_or_insert_with(|| {
            let dir = tempfile::tempdir().unwrap();
            (chorus_store::Store::open(dir.path()).unwrap(), dir)
        });
        n += 1;
        store.create_stream(&format!("S{n}"), b"{}").unwrap()
    }
});
