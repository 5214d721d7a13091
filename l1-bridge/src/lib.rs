//! The L1 side of lanes: how the rollup talks to the Ethereum chain its batches, state roots,
//! deposits and withdrawals live on.
//!
//! Where it sits in the data flow:
//! - **L1 -> L2.** Users deposit ETH or force L2 transactions through `LanesPortal`, which
//!   queues them as `TransactionDeposited` events. The [`L1Watcher`] follows those events, waits
//!   until they are `confirmations` blocks deep (so an L1 reorg cannot make L2 execute a message
//!   L1 forgot), and hands them to the sequencer as [`L1Message`]s, in queue order, over a
//!   bounded channel. The sequencer turns them into the first transactions of its next block.
//! - **L2 -> L1.** The batcher posts batches of L2 blocks with their state roots to
//!   `LanesRollup` through an [`L1Client`] ([`L1Client::submit_batch`]) and resumes from
//!   [`L1Client::last_batch`]. Withdrawals recorded by `L2WithdrawalQueue` on L2 are proven
//!   against final state roots and paid by the portal; [`WithdrawalProver`] does the user's
//!   side (find, prove with `eth_getProof`, finalize).
//!
//! Main types:
//! - [`bindings`]: alloy `sol!` bindings of `LanesRollup`, `LanesPortal` and
//!   `L2WithdrawalQueue`, generated from the ABI and bytecode copies in `l1-bridge/abi/`.
//! - [`L1Client`], the seam the watcher and batcher use, and [`AlloyL1Client`], its HTTP
//!   implementation.
//! - [`deploy`] / [`deploy_command`]: one transaction deploys the rollup, whose constructor
//!   deploys the portal; [`DeployedContracts::to_toml`] is the config snippet.
//! - [`DevL1`]: a local anvil for `lanes node --dev` and the tests.
//! - [`L1Watcher`] with its [`CursorStore`] ([`MemoryCursorStore`], [`FileCursorStore`]).
//!
//! Errors are [`L1Error`]s, classified by [`L1Error::class`] into retry, reject and fatal.

pub mod bindings;
mod client;
mod cursor;
mod deploy;
mod dev;
mod error;
mod types;
mod watcher;
mod withdrawals;

pub use client::{
    AlloyL1Client, ClientOptions, L1Client, L1Future, parse_l1_url, parse_private_key,
};
pub use cursor::{CursorStore, FileCursorStore, MemoryCursorStore, WatcherCursor};
pub use deploy::{
    DeployParams, DeployedContracts, deploy, deploy_command, deploy_or_reuse, write_addresses,
};
pub use dev::{DEV_L1_CHAIN_ID, DEV_MNEMONIC, DevL1, DevL1Options, dev_account, find_anvil};
pub use error::{ErrorClass, L1Error, L1Result, decode_revert};
pub use types::{
    BatchHeader, ForcedInclusion, L1BlockRef, L1Contracts, L1Message, L1Receipt, LastBatch,
};
pub use watcher::{L1Watcher, WatcherConfig, WatcherMetrics};
pub use withdrawals::{
    L2_WITHDRAWAL_QUEUE, Withdrawal, WithdrawalProof, WithdrawalProver, WithdrawalStatus,
};
