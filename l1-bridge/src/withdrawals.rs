//! L2 -> L1 withdrawals, the user's side: find the withdrawals an L2 transaction made, the
//! final batch that covers it, the Merkle-Patricia proof of it under that batch's state root,
//! and the payout on L1.
//!
//! A withdrawal is an entry `withdrawals[nonce] = hashWithdrawal(nonce, sender, recipient,
//! amount)` in the storage of `L2WithdrawalQueue` ([`L2_WITHDRAWAL_QUEUE`]) on L2. Entries are
//! never cleared, so any final batch whose last block is at or after the withdrawal's block
//! proves it. [`WithdrawalProver::status`] picks the newest final batch: its last block is the
//! most recent, and so the most likely to be within the L2 node's proof history
//! (`storage.state_root_history`; like `eth_getProof` on geth, proving an old state needs a node
//! that kept it).

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes, TxHash, U256, address};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Log, TransactionRequest};
use alloy::sol_types::SolEvent;
use serde::Deserialize;

use crate::bindings::{L2WithdrawalQueue, LanesPortal};
use crate::client::{AlloyL1Client, L1Client, connect_provider};
use crate::error::{L1Error, L1Result};
use crate::types::L1Receipt;

/// Address of the `L2WithdrawalQueue` system contract on L2 (`LanesPortal.L2_WITHDRAWAL_QUEUE`).
pub const L2_WITHDRAWAL_QUEUE: Address = address!("0x4200000000000000000000000000000000000016");

/// One withdrawal as `L2WithdrawalQueue.withdraw` recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The withdrawal's nonce, its key in `withdrawals`.
    pub nonce: U256,
    /// The L2 account that withdrew.
    pub sender: Address,
    /// The L1 account to pay.
    pub recipient: Address,
    /// Wei to pay.
    pub amount: U256,
    /// The stored hash.
    pub hash: B256,
    /// L2 block of the withdrawal.
    pub l2_block: u64,
}

impl Withdrawal {
    /// The portal's calldata struct.
    pub fn to_portal(&self) -> LanesPortal::WithdrawalTx {
        LanesPortal::WithdrawalTx {
            nonce: self.nonce,
            sender: self.sender,
            recipient: self.recipient,
            amount: self.amount,
        }
    }

    /// The storage slot of this withdrawal in `L2WithdrawalQueue`:
    /// keccak256(abi.encode(nonce, 0)).
    pub fn slot(&self) -> B256 {
        let mut preimage = [0u8; 64];
        preimage[..32].copy_from_slice(&self.nonce.to_be_bytes::<32>());
        alloy::primitives::keccak256(preimage)
    }
}

/// Where a withdrawal stands on L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalStatus {
    /// No batch on L1 holds its L2 block yet.
    NotPosted {
        /// Last L2 block in a recorded batch.
        last_posted_block: u64,
    },
    /// A batch holds it, but no batch that does is final yet.
    NotFinal {
        /// The first recorded batch that holds the withdrawal's block.
        batch_index: u64,
        /// L1 timestamp (seconds) at which that batch becomes final.
        final_at: u64,
    },
    /// Provable against final batch `batch_index`, whose last L2 block is `last_block`.
    Ready {
        /// The final batch to prove against.
        batch_index: u64,
        /// Its last L2 block: the block to take the proof at.
        last_block: u64,
        /// Its state root.
        state_root: B256,
    },
    /// Already paid on L1.
    Finalized,
}

/// The account and storage proofs `finalizeWithdrawal` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalProof {
    /// The final batch proven against.
    pub batch_index: u64,
    /// `eth_getProof(L2_WITHDRAWAL_QUEUE, ..).accountProof`.
    pub account_proof: Vec<Bytes>,
    /// `storageProof[0].proof` for the withdrawal's slot.
    pub storage_proof: Vec<Bytes>,
}

/// Reads withdrawals from an L2 node and proves and finalizes them on L1.
#[derive(Debug, Clone)]
pub struct WithdrawalProver {
    l2: DynProvider,
    l1: AlloyL1Client,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptLogs {
    #[serde(with = "alloy::serde::quantity")]
    block_number: u64,
    logs: Vec<Log>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeaderRoot {
    state_root: B256,
}

impl WithdrawalProver {
    /// A prover reading L2 from `l2_rpc_url`; `l1` signs the finalizing transaction when it has
    /// a signer.
    pub fn new(l2_rpc_url: &str, l1: AlloyL1Client) -> L1Result<Self> {
        let (l2, _) = connect_provider(l2_rpc_url, None, Duration::from_secs(30))?;
        Ok(Self { l2, l1 })
    }

    /// The withdrawals L2 transaction `tx` made, in log order; empty when it made none.
    /// Fails when L2 does not know the transaction (or has not included it yet).
    pub async fn withdrawals_in(&self, tx: TxHash) -> L1Result<Vec<Withdrawal>> {
        // Raw JSON: the receipt may be of any type (a withdrawal forced from L1 is a 0x7e
        // deposit), and only the logs matter.
        let receipt: ReceiptLogs = self
            .l2_required("eth_getTransactionReceipt", (tx,), || {
                format!("no receipt for {tx} (unknown or not yet included)")
            })
            .await?;
        receipt
            .logs
            .iter()
            .filter(|log| {
                log.address() == L2_WITHDRAWAL_QUEUE
                    && log.topic0() == Some(&L2WithdrawalQueue::WithdrawalInitiated::SIGNATURE_HASH)
            })
            .map(|log| {
                let event = L2WithdrawalQueue::WithdrawalInitiated::decode_log_data(log.data())
                    .map_err(|e| L1Error::InvalidData {
                        context: "WithdrawalInitiated",
                        message: e.to_string(),
                    })?;
                Ok(Withdrawal {
                    nonce: event.nonce,
                    sender: event.sender,
                    recipient: event.l1Recipient,
                    amount: event.amount,
                    hash: event.withdrawalHash,
                    l2_block: receipt.block_number,
                })
            })
            .collect()
    }

    /// Where `w` stands: paid, provable (against the newest final batch), posted but not final,
    /// or not posted.
    pub async fn status(&self, w: &Withdrawal) -> L1Result<WithdrawalStatus> {
        let portal = self.l1.portal();
        let paid = portal
            .finalizedWithdrawals(w.nonce)
            .call()
            .await
            .map_err(|e| L1Error::contract("LanesPortal.finalizedWithdrawals", e))?;
        if paid {
            return Ok(WithdrawalStatus::Finalized);
        }
        let rollup = self.l1.rollup();
        let final_index = rollup
            .lastFinalizedBatchIndex()
            .call()
            .await
            .map_err(|e| L1Error::contract("LanesRollup.lastFinalizedBatchIndex", e))?;
        let final_batch = rollup
            .getBatch(final_index)
            .call()
            .await
            .map_err(|e| L1Error::contract("LanesRollup.getBatch", e))?;
        if final_batch.lastBlock >= w.l2_block {
            return Ok(WithdrawalStatus::Ready {
                batch_index: final_index.to::<u64>(),
                last_block: final_batch.lastBlock,
                state_root: final_batch.stateRoot,
            });
        }
        let last = self.l1.last_batch().await?;
        if last.last_block < w.l2_block {
            return Ok(WithdrawalStatus::NotPosted {
                last_posted_block: last.last_block,
            });
        }
        // Batches become final in index order, so the first one holding the block is the first
        // to make the withdrawal provable: search forward from the newest final one.
        let period = rollup
            .finalizationPeriod()
            .call()
            .await
            .map_err(|e| L1Error::contract("LanesRollup.finalizationPeriod", e))?;
        let mut index = final_index.to::<u64>() + 1;
        loop {
            let batch = rollup
                .getBatch(U256::from(index))
                .call()
                .await
                .map_err(|e| L1Error::contract("LanesRollup.getBatch", e))?;
            if batch.lastBlock >= w.l2_block || index >= last.batch_index {
                return Ok(WithdrawalStatus::NotFinal {
                    batch_index: index,
                    final_at: batch.submittedAt + period,
                });
            }
            index += 1;
        }
    }

    /// Calls `method` on the L2 node; a `null` answer is an error saying `missing`.
    async fn l2_required<P, T>(
        &self,
        method: &'static str,
        params: P,
        missing: impl FnOnce() -> String,
    ) -> L1Result<T>
    where
        P: alloy::rpc::json_rpc::RpcSend,
        T: alloy::rpc::json_rpc::RpcRecv,
    {
        let answer: Option<T> = self
            .l2
            .raw_request(method.into(), params)
            .await
            .map_err(|e| l2_error(method, e))?;
        answer.ok_or_else(|| L1Error::L2 {
            context: method,
            message: missing(),
        })
    }

    /// The proof of `w` under final batch `batch_index` (last L2 block `last_block`, state root
    /// `state_root`), checked against the L2 node's header first: an L2 node that disagrees with
    /// L1 about that block's state cannot give a proof L1 accepts.
    pub async fn prove(
        &self,
        w: &Withdrawal,
        batch_index: u64,
        last_block: u64,
        state_root: B256,
    ) -> L1Result<WithdrawalProof> {
        let header: HeaderRoot = self
            .l2_required(
                "eth_getBlockByNumber",
                (format!("{last_block:#x}"), false),
                || format!("L2 node has no block {last_block}"),
            )
            .await?;
        if header.state_root != state_root {
            return Err(L1Error::InvalidData {
                context: "withdrawal proof",
                message: format!(
                    "L2 block {last_block} has state root {}, but batch {batch_index} on L1 records {state_root}",
                    header.state_root
                ),
            });
        }
        let proof = self
            .l2
            .get_proof(L2_WITHDRAWAL_QUEUE, vec![w.slot()])
            .block_id(BlockId::number(last_block))
            .await
            .map_err(|e| l2_error("eth_getProof", e))?;
        let slot = proof.storage_proof.first().ok_or_else(|| L1Error::L2 {
            context: "eth_getProof",
            message: "no storage proof returned".into(),
        })?;
        if slot.value != U256::from_be_bytes(w.hash.0) {
            return Err(L1Error::InvalidData {
                context: "withdrawal proof",
                message: format!(
                    "withdrawal {} is not in L2WithdrawalQueue at block {last_block} (slot holds {:#x})",
                    w.nonce, slot.value
                ),
            });
        }
        Ok(WithdrawalProof {
            batch_index,
            account_proof: proof.account_proof,
            storage_proof: slot.proof.clone(),
        })
    }

    /// Pays `w` on L1 with `proof`: checks it with `eth_call` first, so a refused withdrawal
    /// (`WithdrawalAlreadyFinalized`, `WithdrawalNotProven`, `BatchNotFinalized`) fails with its
    /// reason before anything is sent, then sends and waits for the receipt.
    pub async fn finalize(&self, w: &Withdrawal, proof: &WithdrawalProof) -> L1Result<L1Receipt> {
        let from = self
            .l1
            .signer_address()
            .ok_or_else(|| L1Error::Config("finalizing needs an L1 key".into()))?;
        let portal = self.l1.portal();
        let call = portal
            .finalizeWithdrawal(
                w.to_portal(),
                U256::from(proof.batch_index),
                proof.account_proof.clone(),
                proof.storage_proof.clone(),
            )
            .from(from);
        call.call()
            .await
            .map_err(|e| L1Error::contract("LanesPortal.finalizeWithdrawal", e))?;
        let tx: TransactionRequest = call.into_transaction_request();
        let hash = self.l1.send_transaction(tx).await?;
        let receipt = self.l1.wait_for_receipt(hash).await?;
        if !receipt.success {
            return Err(L1Error::TxFailed {
                context: "LanesPortal.finalizeWithdrawal",
                tx_hash: hash,
            });
        }
        Ok(receipt)
    }
}

fn l2_error(
    context: &'static str,
    error: alloy::transports::RpcError<alloy::transports::TransportErrorKind>,
) -> L1Error {
    L1Error::L2 {
        context,
        message: error.to_string(),
    }
}
