//! Plain data exchanged with L1: block references, L1 -> L2 messages, batch headers, receipts.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::rpc::types::Log;
use alloy::sol_types::{SolEvent, SolValue};
use serde::{Deserialize, Serialize};

use crate::bindings::{LanesPortal, LanesRollup};
use crate::error::{L1Error, L1Result};

/// The two L1 contracts of a lanes deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Contracts {
    /// `LanesRollup`: batches, state roots, forced-inclusion checks.
    pub rollup: Address,
    /// `LanesPortal`: deposits, the L1 -> L2 message queue, withdrawals.
    pub portal: Address,
}

/// An L1 block as far as the watcher cares: where it sits and what it builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Block timestamp, seconds.
    pub timestamp: u64,
}

/// One entry of the portal's L1 -> L2 message queue (a deposit or a forced transaction), from its
/// `TransactionDeposited` event. L2 executes it as a deposit transaction: mint `mint` wei to
/// `from`, then call `to` from `from` with `value`, `gas_limit` and `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Message {
    /// Position in the queue; L2 executes messages in this order, without gaps.
    pub deposit_nonce: u64,
    /// L2 sender: the L1 caller, aliased when it is a contract.
    pub from: Address,
    /// L2 call target (never a contract creation).
    pub to: Address,
    /// Wei minted to `from` on L2 (the ETH locked in the portal).
    pub mint: U256,
    /// Wei sent with the L2 call.
    pub value: U256,
    /// L2 gas limit of the call.
    pub gas_limit: u64,
    /// L2 call data.
    pub data: Bytes,
    /// L1 block that enqueued the message.
    pub l1_block_number: u64,
    /// Hash of that block.
    pub l1_block_hash: B256,
    /// Index of the event's log in that block.
    pub log_index: u64,
    /// L1 timestamp of the enqueueing block; the message is due on L2 by
    /// `enqueued_at + forceInclusionDelay`.
    pub enqueued_at: u64,
}

impl L1Message {
    /// Decodes a `TransactionDeposited` log of the portal.
    pub fn from_log(log: &Log) -> L1Result<Self> {
        let invalid = |message: String| L1Error::InvalidData {
            context: "TransactionDeposited",
            message,
        };
        let event = LanesPortal::TransactionDeposited::decode_log(&log.inner)
            .map_err(|e| invalid(format!("undecodable log: {e}")))?
            .data;
        let (Some(l1_block_number), Some(l1_block_hash), Some(log_index)) =
            (log.block_number, log.block_hash, log.log_index)
        else {
            return Err(invalid("log of a pending block".into()));
        };
        Ok(Self {
            deposit_nonce: u64::try_from(event.depositNonce)
                .map_err(|_| invalid(format!("deposit nonce {} too large", event.depositNonce)))?,
            from: event.from,
            to: event.to,
            mint: event.mint,
            value: event.value,
            gas_limit: event.gasLimit,
            data: event.data,
            l1_block_number,
            l1_block_hash,
            log_index,
            enqueued_at: event.enqueuedAt,
        })
    }

    /// The hash the portal records for this message in `queue(depositNonce)`:
    /// `keccak256(abi.encode(nonce, from, to, mint, value, gasLimit, keccak256(data)))`.
    pub fn queue_hash(&self) -> B256 {
        let encoded = (
            U256::from(self.deposit_nonce),
            self.from,
            self.to,
            self.mint,
            self.value,
            self.gas_limit,
            keccak256(&self.data),
        )
            .abi_encode_params();
        keccak256(encoded)
    }
}

/// A batch as submitted to `LanesRollup.submitBatch`, with the integer widths L2 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHeader {
    /// Must be the last recorded batch index + 1.
    pub batch_index: u64,
    /// First L2 block: the previous batch's last block + 1.
    pub first_block: u64,
    /// Last L2 block, `>= first_block`.
    pub last_block: u64,
    /// State root after the previous batch, as recorded on L1.
    pub prev_state_root: B256,
    /// State root after `last_block`.
    pub new_state_root: B256,
    /// L1 -> L2 messages (deposit nonces `0..l1_messages_included`) executed by `last_block`.
    pub l1_messages_included: u64,
}

impl BatchHeader {
    /// The ABI struct of the binding.
    pub fn to_sol(&self) -> LanesRollup::BatchHeader {
        LanesRollup::BatchHeader {
            batchIndex: U256::from(self.batch_index),
            firstBlock: self.first_block,
            lastBlock: self.last_block,
            prevStateRoot: self.prev_state_root,
            newStateRoot: self.new_state_root,
            l1MessagesIncluded: U256::from(self.l1_messages_included),
        }
    }
}

/// `LanesRollup.lastBatch()`: where the batcher resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBatch {
    /// Index of the last recorded batch (0: only genesis).
    pub batch_index: u64,
    /// Its last L2 block.
    pub last_block: u64,
    /// The L2 state root after it.
    pub state_root: B256,
}

/// `LanesRollup.nextForcedInclusion()`: the oldest queued message no recorded batch includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForcedInclusion {
    /// Whether any queued message is not yet included by a recorded batch.
    pub pending: bool,
    /// The oldest such message's deposit nonce (the queue length when none is pending).
    pub deposit_nonce: u64,
    /// L1 timestamp from which a batch leaving it out is rejected (0 when none is pending).
    pub deadline: u64,
}

/// What L1 says about a mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Receipt {
    /// The transaction.
    pub tx_hash: B256,
    /// Block it was mined in.
    pub block_number: u64,
    /// Hash of that block.
    pub block_hash: B256,
    /// Gas it used.
    pub gas_used: u64,
    /// Wei paid per gas.
    pub effective_gas_price: u128,
    /// Whether it succeeded (status 1).
    pub success: bool,
}
