//! [`BatcherError`]: what went wrong in the batcher, classified by what the caller should do.

use lanes_l1_bridge::{ErrorClass, L1Error};

use crate::format::FormatError;

/// Result of a batcher operation.
pub type BatcherResult<T> = Result<T, BatcherError>;

/// Why a batcher operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BatcherError {
    /// Talking to L1 failed; [`L1Error::class`] says whether to retry.
    #[error(transparent)]
    L1(#[from] L1Error),
    /// A batch could not be encoded or decoded.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The local L2 chain could not be read.
    #[error("reading the L2 chain: {0}")]
    Source(String),
    /// The local L2 chain and L1 disagree (a state root or a block the rollup recorded is not
    /// what this node holds): posting would be refused forever, so the operator must act.
    #[error("L2 chain and L1 disagree: {0}")]
    Mismatch(String),
    /// Data read back from L1 is not a valid chain of batches (derivation).
    #[error("invalid batch on L1: {0}")]
    InvalidBatch(String),
    /// Re-executing a derived block did not give the posted result.
    #[error("derived block {number} does not match what was posted: {reason}")]
    Replay {
        /// The L2 block.
        number: u64,
        /// What differed.
        reason: String,
    },
    /// The batcher task is not running (stopped or crashed).
    #[error("the batcher task is not running")]
    Stopped,
    /// The metrics could not be registered (a name clash: a programming error).
    #[error(transparent)]
    Metrics(#[from] lanes_monitoring::MonitoringError),
}

impl BatcherError {
    /// What the caller should do. Source errors are retried (RocksDB is busy or a block is
    /// not committed yet); mismatches and invalid data are fatal.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::L1(e) => e.class(),
            Self::Source(_) => ErrorClass::Retryable,
            Self::Format(_) | Self::InvalidBatch(_) | Self::Replay { .. } => ErrorClass::Rejected,
            Self::Mismatch(_) | Self::Stopped | Self::Metrics(_) => ErrorClass::Fatal,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// Low-cardinality label for `lanes_batcher_post_failures_total{reason}`.
    pub fn reason_label(&self) -> &'static str {
        match self {
            Self::L1(L1Error::Reverted { name, .. }) => match name.as_deref() {
                Some("ForcedInclusionMissed") => "forced_inclusion",
                Some("UnexpectedBatchIndex" | "NonContiguousBlocks" | "PrevStateRootMismatch") => {
                    "out_of_sync"
                }
                Some("SubmissionsPaused") => "paused",
                Some("NotSequencer") => "not_sequencer",
                _ => "reverted",
            },
            Self::L1(L1Error::TxFailed { .. }) => "tx_failed",
            Self::L1(L1Error::ReceiptTimeout { .. }) => "timeout",
            Self::L1(L1Error::Node { message, .. }) if message.contains("insufficient funds") => {
                "insufficient_funds"
            }
            Self::L1(L1Error::Unavailable { .. } | L1Error::Node { .. }) => "l1_unavailable",
            Self::L1(_) => "l1_other",
            Self::Format(_) => "format",
            Self::Source(_) => "source",
            Self::Mismatch(_) => "mismatch",
            Self::InvalidBatch(_) | Self::Replay { .. } => "invalid",
            Self::Stopped | Self::Metrics(_) => "stopped",
        }
    }
}

impl From<lanes_executor::ExecutorError> for BatcherError {
    fn from(e: lanes_executor::ExecutorError) -> Self {
        Self::Source(e.to_string())
    }
}
