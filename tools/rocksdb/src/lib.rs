//! Empty: this package exists so Cargo builds `librocksdb-sys`'s bundled RocksDB and snappy
//! (see `Cargo.toml` and `scripts/build-rocksdb`).
