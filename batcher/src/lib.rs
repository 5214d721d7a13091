//! # lanes-batcher
//!
//! Turns sealed L2 blocks into compressed batches, posts them with their state roots to the
//! `LanesRollup` contract on L1, and reads them back (derivation), so the L2 chain can be
//! rebuilt from L1 alone.
//!
//! Data flow: the sequencer commits blocks to RocksDB; the [`Batcher`] task reads them through a
//! [`BlockSource`], gathers them in a [`BatchBuilder`] (closing on size, age or flush), encodes
//! them in the versioned [`format`] (RLP, zstd or brotli), and hands the transaction to the
//! [`TxManager`], which signs it with the batcher key, sends it as calldata or EIP-4844 blobs,
//! bumps fees when it is stuck and waits for the confirmation depth. The L1 contract is the
//! source of truth: the task resumes from `lastBatch()` and never keeps a cursor of its own.
//! It publishes the L2 heads L1 vouches for (`safe`, `finalized`) and the unposted backlog on a
//! watch channel ([`BatcherStatus`]), and its metrics ([`BatcherMetrics`]).
//!
//! [`derive`] goes the other way: [`Deriver`] reads the batches from L1 events and calldata or
//! blobs, [`blocks_of`] checks that they chain up, and a [`BlockSink`] such as
//! [`StorageReplay`] re-executes each block and compares its state root and hash with the
//! posted ones.
//!
//! Errors are [`BatcherError`]s, classified like the L1 bridge's into retry, reject and fatal.

pub mod builder;
pub mod derive;
mod error;
pub mod format;
pub mod metrics;
pub mod service;
mod source;
pub mod txmgr;

pub use builder::{BatchBuilder, BuilderConfig, CloseReason, ClosedBatch};
pub use derive::{
    AnvilBlobFetcher, BlobFetcher, BlockSink, DataLocation, DeriveSummary, DerivedBlock, Deriver,
    PostedBatch, StorageReplay, blocks_of, derive,
};
pub use error::{BatcherError, BatcherResult};
pub use format::{BatchBlock, BatchData, Codec, Compression, FormatError};
pub use metrics::BatcherMetrics;
pub use service::{
    Backlog, Batcher, BatcherHandle, BatcherSettings, BatcherStatus, L2Heads, batcher_key,
    spawn_batcher,
};
pub use source::BlockSource;
pub use txmgr::{Confirmed, DaMode, L1Prices, TxCandidate, TxManager, TxManagerConfig};

/// Loads c-kzg's trusted setup on a background thread. It takes seconds of CPU and happens
/// once per process, when the first blob is committed to; a node that may post blobs calls
/// this at start so the load does not land in the middle of block production.
pub fn warm_kzg_setup() {
    let _ = std::thread::Builder::new()
        .name("lanes-kzg-setup".into())
        .stack_size(64 << 20)
        .spawn(|| {
            alloy::eips::eip4844::env_settings::EnvKzgSettings::Default.get();
        });
}

/// Runs `f` on a thread with a 64 MiB stack and awaits its result. KZG work on blobs (128 KiB
/// each, copied by value through c-kzg's bindings) overflows the 2 MiB stacks of tokio's
/// threads in unoptimised builds.
pub(crate) async fn on_big_stack<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lanes-kzg".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawning a thread");
    rx.await.expect("the KZG thread does not panic")
}
