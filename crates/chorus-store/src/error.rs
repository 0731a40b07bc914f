//! The crate's error type.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stored record failed its checksum or could not be decoded. The record is kept as is;
    /// see the crate docs for the recovery policy.
    #[error("stream {stream:?}: corrupt record at sequence {seq}: {detail}")]
    Corrupt {
        /// Stream name.
        stream: String,
        /// Sequence of the bad record (0 when the record is not a message, e.g. metadata).
        seq: u64,
        /// What was wrong.
        detail: String,
    },
    /// A write or fsync failed earlier: the whole store refuses every later operation, because
    /// what reached the disk is unknown. Restart the server to recover from the WAL.
    #[error("store poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// An operation on this stream failed half-way (e.g. it met a corrupt record while
    /// removing messages); the in-memory summary may no longer match the disk, so the handle
    /// refuses further work. Reopen the stream (after a repair) to continue.
    #[error("stream {stream:?} is out of service: {reason}")]
    Broken {
        /// Stream name.
        stream: String,
        /// The failure that broke it.
        reason: String,
    },
    /// The stream was deleted through this handle.
    #[error("stream {0:?} is closed")]
    Closed(String),
    /// An error from RocksDB.
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    /// A failure injected by [`crate::Fault`] (tests).
    #[error("injected fault: {0}")]
    Injected(&'static str),
    /// No stream of that name.
    #[error("stream {0:?} not found")]
    StreamNotFound(String),
    /// `create_stream` on an existing name.
    #[error("stream {0:?} already exists")]
    StreamExists(String),
    /// The stream is already open through another handle (a second writer would corrupt the
    /// in-memory summaries).
    #[error("stream {0:?} is already open")]
    StreamOpen(String),
    /// A message the store cannot represent.
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// The database was written by an incompatible version of this crate.
    #[error("unsupported store format version {0}")]
    Version(u32),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
