//! Error types of the executor crate, classified by what the caller should do.

use revm::database_interface::DBErrorMarker;

/// Result alias for the executor crate.
pub type ExecutorResult<T> = Result<T, ExecutorError>;

/// Errors raised by storage, state access and block execution.
///
/// Every variant is fatal for the block it happened in: the block is not committed and the
/// node must stop producing rather than seal something it cannot reproduce.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// RocksDB returned an error (I/O, corruption, ...).
    #[error("database error: {0}")]
    Db(#[from] rocksdb::Error),
    /// Data read from the database could not be decoded: the store is corrupt or was written
    /// by an incompatible version.
    #[error("corrupt database entry in {table}: {reason}")]
    Corrupt {
        /// Column family the entry lives in.
        table: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The data directory does not hold the chain the configuration asks for.
    #[error("data directory mismatch: {0}")]
    Mismatch(String),
    /// The genesis specification is unusable.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The EVM failed in a way that is not a property of the transaction (for example a
    /// precompile's fatal error or a header the EVM rejects).
    #[error("evm failure: {0}")]
    Evm(String),
    /// A block handed in for import is invalid (conformance tests, derivation).
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// The operating system refused something the store needs (a thread, a file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ExecutorError {
    /// Builds a [`ExecutorError::Corrupt`] for `table`.
    pub fn corrupt(table: &'static str, reason: impl ToString) -> Self {
        Self::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}

impl DBErrorMarker for ExecutorError {}
