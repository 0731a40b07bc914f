//! The shared behaviour suite against MemStore.

chorus_store::store_suite!(|| chorus_store::MemStore::new("TEST"));
