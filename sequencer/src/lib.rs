//! # lanes-sequencer
//!
//! The top of the stack: it takes transactions from users and turns them into blocks.
//!
//! Data flow: `eth_sendRawTransaction` ([`rpc`]) → decoding, sender recovery and
//! validation ([`validation`], [`pool`]) → the [`mempool`] → every block time the
//! [`producer`] puts the L1 deposits waiting in the [`deposits`] queue first, then orders the
//! best transactions, runs them through the executor crate, computes
//! the state root, commits the block atomically and updates the pool and the [`chain`] head,
//! which RPC readers and subscribers follow. [`node`] wires it all and owns shutdown; the
//! `lanes` binary (`src/bin/lanes.rs`) parses the command line and configuration.
//!
//! Main types: [`chain::Chain`], [`pool::TxPool`], [`mempool::Mempool`],
//! [`producer::BlockProducer`], [`rpc::RpcContext`].

pub mod admin;
pub mod bench;
pub mod chain;
pub mod deposits;
pub mod l1;
pub mod l1_cursor;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod pool;
pub mod producer;
pub mod rpc;
#[cfg(test)]
mod testing;
pub mod validation;
