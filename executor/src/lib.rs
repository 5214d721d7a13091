//! # lanes-executor
//!
//! Owns the chain state and runs blocks on revm.
//!
//! Data flow: the sequencer hands a block environment and an ordered source of candidate
//! transactions to a [`BlockExecutor`]; it executes them over a [`StateReader`] (RocksDB, or
//! RocksDB plus blocks not yet committed), skipping transactions that turn out invalid, and
//! returns an [`ExecutedBlock`]: receipts, logs and the [`StateChanges`]. The state root is
//! computed incrementally over the tries stored beside the state ([`Storage::state_root`],
//! [`trie`]; [`root`] is the from-scratch reference), the block is sealed ([`SealedBlock`])
//! and committed in two atomic RocksDB write batches: [`Storage::commit_block_data`] (block,
//! receipts, indexes, state diff: enough to publish it) and [`Storage::write_state`] (state
//! and tries); the store serves the state in between from memory and replays the diff after
//! a crash.
//!
//! Blocks hold [`LanesTxEnvelope`]s: Ethereum's signed transactions plus the deposit (type
//! 0x7e, [`tx`]), an L1 message that needs no signature and is never skipped; both executors
//! run a block's deposits one by one on the committed state ([`executor::transact_deposit`]).
//!
//! Main types:
//! - [`Storage`]: the RocksDB store (column families for accounts, storage, bytecode,
//!   headers, bodies, receipts, transaction index and metadata).
//! - [`StateReader`]: the seam between execution and storage; [`BlockState`] is the revm
//!   database built on it.
//! - [`BlockExecutor`] and [`SequentialExecutor`]: block building on revm, in block order.
//! - [`GenesisSpec`]: geth-style genesis and the dev genesis.
//! - [`import_block`]: replay of a block built elsewhere, validated against its header
//!   ([`conformance`] runs the Ethereum Foundation blockchain tests through it).
//! - [`Replay`]: a committed block run again on its parent's state, with an inspector on
//!   the transactions the RPC traces.

pub mod block;
mod bloom;
pub mod conformance;
pub mod error;
pub mod evm;
pub mod executor;
pub mod genesis;
mod history;
pub mod import;
pub mod parallel;
pub mod root;
pub mod state;
pub mod storage;
pub mod trace;
pub mod trie;
pub mod tx;

pub use block::{BlockTx, RecoveredTx, SealedBlock};
pub use error::{ExecutorError, ExecutorResult};
pub use executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, ExecutedBlock, SequentialExecutor, SkipReason,
    TxSource,
};
pub use genesis::{GenesisSpec, install_system_contract, read_genesis_file};
pub use import::import_block;
pub use parallel::{ExecutionStats, ParallelConfig, ParallelExecutor};
pub use state::{BlockState, CodeCache, OverlayReader, StateChanges, StateReader, StoredAccount};
pub use storage::{CommitSync, StateAt, Storage, StorageOptions, TxLocation, WalSyncStats};
pub use trace::Replay;
pub use tx::{
    DEPOSIT_RECEIPT_VERSION, DEPOSIT_TX_TYPE, L1_MESSAGE_COUNTER, LanesReceipt, LanesTxEnvelope,
    LanesTxType, TxDeposit, recovered_deposit, user_deposit_source_hash,
};
