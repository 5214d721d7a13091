//! Block building: the [`BlockExecutor`] trait and the sequential implementation.
//!
//! Building is not replay: candidates come from the mempool and one that turns out invalid
//! when its turn comes (nonce already used, balance gone, fee below the base fee) is skipped,
//! reported back to the source, and never ends up in the block.
//!
//! Deposits (L1 messages, type 0x7e) are the exception: they have no nonce, fee or balance
//! precondition, so one is never skipped as invalid. See [`transact_deposit`].

use crate::{
    block::{BlockTx, RecoveredTx, SealedBlock},
    bloom::BloomCache,
    error::{ExecutorError, ExecutorResult},
    evm::{LanesEvm, build_evm, deposit_tx_env, tx_env},
    state::{BlockState, CodeCache, StateChanges, StateReader},
    tx::{L1_MESSAGE_COUNTER, LanesReceipt, TxDeposit},
};
use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Eip658Value, Header, Receipt, Transaction, constants::EMPTY_WITHDRAWALS,
    proofs,
};
use alloy_eips::Typed2718;
use alloy_eips::{eip4788::BEACON_ROOTS_ADDRESS, eip4788::SYSTEM_ADDRESS};
use alloy_primitives::{Bloom, Bytes, KECCAK256_EMPTY, U256};
use revm::{DatabaseCommit, ExecuteCommitEvm, SystemCallEvm, context::result::EVMError};
use std::sync::Arc;

pub use crate::evm::{BlockEnvInput, ChainSpec};

/// Why a candidate transaction was left out of the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The transaction is invalid against the state at its turn (nonce, balance, fee cap,
    /// ...): drop it.
    Invalid(String),
    /// The transaction does not fit in the gas left in this block: try it in a later block.
    DoesNotFit,
}

/// An ordered source of candidate transactions, fed back with what was skipped.
pub trait TxSource {
    /// The next candidate, `None` when the source has nothing more right now (see
    /// [`TxSource::wait_for_more`]).
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>>;
    /// Called after [`TxSource::next_tx`] returned `None`, once the executor has run
    /// everything offered so far: blocks until more candidates may be ready and returns
    /// `true`, or returns `false` when the block is done. A block builder streams this way:
    /// transactions that arrive while the block is being built still join it. The default
    /// is a fixed list: `None` means exhausted.
    fn wait_for_more(&mut self) -> bool {
        false
    }
    /// `tx` was not included. A source should not offer the sender's later nonces in this
    /// block, since they can no longer execute; it still offers the deposits it holds, whose
    /// sender's skips do not concern them (executors pull ahead and rely on this).
    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason);
}

/// A fixed list of transactions as a source; records what was skipped.
#[derive(Debug, Default)]
pub struct VecSource {
    txs: std::vec::IntoIter<Arc<RecoveredTx>>,
    /// Skipped transactions with their reasons, in the order they were skipped.
    pub skipped: Vec<(Arc<RecoveredTx>, SkipReason)>,
}

impl VecSource {
    /// A source yielding `txs` in order.
    pub fn new(txs: Vec<Arc<RecoveredTx>>) -> Self {
        Self {
            txs: txs.into_iter(),
            skipped: Vec::new(),
        }
    }
}

impl TxSource for VecSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.txs.next()
    }
    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        self.skipped.push((Arc::new(tx.clone()), reason));
    }
}

/// The outcome of executing a block, before its state root is known.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// The environment the block ran in.
    pub env: BlockEnvInput,
    /// Included transactions in order.
    pub transactions: Vec<BlockTx>,
    /// One receipt per included transaction.
    pub receipts: Vec<LanesReceipt>,
    /// State changes of the whole block.
    pub changes: StateChanges,
    /// Gas used by the block.
    pub gas_used: u64,
    /// Base fee collected (burnt or credited to the vault); deposits pay none.
    pub base_fees: U256,
}

impl ExecutedBlock {
    /// The header of this block given its state root.
    pub fn header(&self, state_root: alloy_primitives::B256) -> Header {
        let txs: Vec<_> = self
            .transactions
            .iter()
            .map(|t| t.tx.inner().clone())
            .collect();
        let mut logs_bloom = Bloom::default();
        for receipt in &self.receipts {
            logs_bloom.accrue_bloom(receipt.logs_bloom());
        }
        Header {
            parent_hash: self.env.parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: self.env.beneficiary,
            state_root,
            transactions_root: proofs::calculate_transaction_root(&txs),
            receipts_root: proofs::calculate_receipt_root(&self.receipts),
            logs_bloom,
            difficulty: U256::ZERO,
            number: self.env.number,
            gas_limit: self.env.gas_limit,
            gas_used: self.gas_used,
            timestamp: self.env.timestamp,
            extra_data: Bytes::new(),
            mix_hash: self.env.prevrandao,
            nonce: Default::default(),
            base_fee_per_gas: Some(self.env.base_fee),
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: Some(self.blob_gas_used()),
            excess_blob_gas: Some(self.env.excess_blob_gas),
            parent_beacon_block_root: Some(self.env.parent_beacon_block_root),
            ..Default::default()
        }
    }

    /// EIP-4844 blob gas used by the included transactions.
    pub fn blob_gas_used(&self) -> u64 {
        self.transactions
            .iter()
            .filter_map(|t| t.tx.blob_gas_used())
            .sum()
    }

    /// Seals the block with its state root; returns the block and the state changes to commit.
    pub fn seal(self, state_root: alloy_primitives::B256) -> (SealedBlock, StateChanges) {
        let header = self.header(state_root);
        (
            SealedBlock::new(header, self.transactions, self.receipts),
            self.changes,
        )
    }
}

/// Executes blocks. Implementations must give exactly the result of running the
/// transactions one after another in the order the source yields them.
pub trait BlockExecutor: Send + Sync {
    /// Builds a block on top of `state` from the candidates `source` yields.
    fn execute<R: StateReader>(
        &self,
        chain: &ChainSpec,
        env: &BlockEnvInput,
        state: R,
        source: &mut dyn TxSource,
    ) -> ExecutorResult<ExecutedBlock>;
}

/// Runs transactions one at a time in block order: the reference implementation every
/// other executor is tested against.
#[derive(Clone, Debug, Default)]
pub struct SequentialExecutor {
    codes: CodeCache,
}

impl SequentialExecutor {
    /// A sequential executor with its own code cache.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Intrinsic minimum of any transaction: below this much gas left, stop looking.
const MIN_TX_GAS: u64 = 21_000;

impl BlockExecutor for SequentialExecutor {
    fn execute<R: StateReader>(
        &self,
        chain: &ChainSpec,
        env: &BlockEnvInput,
        state: R,
        source: &mut dyn TxSource,
    ) -> ExecutorResult<ExecutedBlock> {
        let mut db = BlockState::new(state, self.codes.clone());
        let mut transactions = Vec::new();
        let mut receipts = Vec::new();
        let mut gas_used = 0u64;
        let mut deposit_gas = 0u64;
        {
            let mut evm = build_evm(chain, env.block_env(), &mut db, |_| {});
            apply_beacon_root(&mut evm, env)?;
            let mut bloom = BloomCache::new();
            while transactions.len() < env.max_txs && env.gas_limit - gas_used >= MIN_TX_GAS {
                let Some(tx) = source.next_tx() else {
                    if source.wait_for_more() {
                        continue;
                    }
                    break;
                };
                if tx.gas_limit() > env.gas_limit - gas_used {
                    source.skip(&tx, SkipReason::DoesNotFit);
                    continue;
                }
                if let Some(deposit) = tx.inner().as_deposit() {
                    let (used, mut receipt) = transact_deposit(&mut evm, deposit)?;
                    gas_used += used;
                    deposit_gas += used;
                    receipt.set_cumulative_gas_used(gas_used);
                    receipts.push(receipt);
                    transactions.push(BlockTx::new(tx));
                    continue;
                }
                match evm.transact_commit(tx_env(&tx)) {
                    Ok(result) => {
                        gas_used += result.tx_gas_used();
                        let receipt = Receipt {
                            status: Eip658Value::Eip658(result.is_success()),
                            cumulative_gas_used: gas_used,
                            logs: result.into_logs(),
                        };
                        receipts.push(LanesReceipt::new(tx.ty(), bloom.with_bloom(receipt)));
                        transactions.push(BlockTx::new(tx));
                    }
                    Err(EVMError::Transaction(invalid)) => {
                        source.skip(&tx, SkipReason::Invalid(invalid.to_string()));
                    }
                    Err(EVMError::Database(err)) => return Err(err),
                    Err(other) => return Err(ExecutorError::Evm(other.to_string())),
                }
            }
        }
        let base_fees = U256::from(env.base_fee) * U256::from(gas_used - deposit_gas);
        if let Some(vault) = chain.base_fee_recipient {
            let mut changes = std::mem::take(&mut db.changes);
            changes.credit(db.reader(), vault, base_fees)?;
            db.changes = changes;
        }
        Ok(ExecutedBlock {
            env: env.clone(),
            transactions,
            receipts,
            changes: db.into_changes(),
            gas_used,
            base_fees,
        })
    }
}

/// Runs deposit `tx` on top of the state `evm` has committed so far, and commits it.
///
/// The mint is credited to `from` before the call and stays whatever the call does. The call
/// runs at gas price 0 (no fee charged, no base fee burnt, nothing to the fee recipient) at
/// `from`'s current nonce, which it increments. A call revm refuses to start (value above the
/// balance after the mint, gas limit below the intrinsic gas, sender with code, ...) still
/// increments the nonce and uses its whole gas limit, with a failed receipt: a deposit is
/// never left out, so every node derives the same block from the same L1 messages.
/// Either way the nonce of [`L1_MESSAGE_COUNTER`] counts the deposit.
///
/// Returns the gas used and the receipt (with the nonce the deposit used), its cumulative gas
/// left for the caller to fill in.
pub fn transact_deposit<R: StateReader>(
    evm: &mut LanesEvm<&mut BlockState<R>>,
    tx: &TxDeposit,
) -> ExecutorResult<(u64, LanesReceipt)> {
    let db = &mut *evm.ctx.journaled_state.database;
    if tx.mint > 0 {
        db.update_account(tx.from, |a| {
            a.balance = a.balance.saturating_add(U256::from(tx.mint))
        })?;
    }
    let nonce = db.account(tx.from)?.map_or(0, |a| a.nonce);
    evm.ctx.cfg.disable_base_fee = true;
    let result = evm.transact_commit(deposit_tx_env(tx, nonce));
    evm.ctx.cfg.disable_base_fee = false;
    // After the call, so the call sees the count of the deposits before it.
    let db = &mut *evm.ctx.journaled_state.database;
    db.update_account(L1_MESSAGE_COUNTER, |a| a.nonce += 1)?;
    match result {
        Ok(result) => Ok((
            result.tx_gas_used(),
            LanesReceipt::deposit(
                Receipt {
                    status: Eip658Value::Eip658(result.is_success()),
                    cumulative_gas_used: 0,
                    logs: result.into_logs(),
                },
                nonce,
            ),
        )),
        Err(EVMError::Transaction(invalid)) => {
            tracing::debug!(
                target: "lanes::executor",
                source_hash = %tx.source_hash,
                %invalid,
                "deposit call refused; mint kept, nonce used"
            );
            let db = &mut *evm.ctx.journaled_state.database;
            db.update_account(tx.from, |a| a.nonce += 1)?;
            Ok((
                tx.gas_limit,
                LanesReceipt::deposit(
                    Receipt {
                        status: Eip658Value::Eip658(false),
                        cumulative_gas_used: 0,
                        logs: Vec::new(),
                    },
                    nonce,
                ),
            ))
        }
        Err(EVMError::Database(err)) => Err(err),
        Err(other) => Err(ExecutorError::Evm(other.to_string())),
    }
}

/// EIP-4788: store the parent beacon block root in the beacon roots contract, if the chain
/// has it deployed (without code the call is a no-op by the EIP).
pub fn apply_beacon_root<R: StateReader>(
    evm: &mut crate::evm::LanesEvm<&mut BlockState<R>>,
    env: &BlockEnvInput,
) -> ExecutorResult<()> {
    let has_code = evm
        .ctx
        .journaled_state
        .database
        .account(BEACON_ROOTS_ADDRESS)?
        .is_some_and(|a| a.code_hash != KECCAK256_EMPTY);
    if !has_code || env.number == 0 {
        return Ok(());
    }
    let result = evm
        .system_call_one(BEACON_ROOTS_ADDRESS, env.parent_beacon_block_root.0.into())
        .map_err(|e| match e {
            EVMError::Database(err) => err,
            other => ExecutorError::Evm(format!("beacon root system call: {other}")),
        });
    let mut state = revm::ExecuteEvm::finalize(evm);
    result?;
    // The system call must leave no trace on the caller or the fee recipient (unless one of
    // them is the contract itself, whose storage write is the point of the call).
    for address in [SYSTEM_ADDRESS, env.beneficiary] {
        if address != BEACON_ROOTS_ADDRESS {
            state.remove(&address);
        }
    }
    evm.ctx.journaled_state.database.commit(state);
    Ok(())
}
