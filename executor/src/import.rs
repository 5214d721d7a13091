//! Block import: replaying a block someone else built, validating it on the way.
//!
//! Building trusts its own choices; import trusts nothing. The header is checked against
//! its parent (Cancun rules), the body against the header, every transaction must execute
//! (one the executor skips makes the block invalid), and the result of execution (gas,
//! receipts, bloom, state root) must match the header. Any mismatch is reported as
//! [`ExecutorError::InvalidBlock`].

use crate::{
    block::{RecoveredTx, SealedBlock},
    error::{ExecutorError, ExecutorResult},
    evm::{BlockEnvInput, ChainSpec, blob_params},
    executor::{BlockExecutor, SkipReason, TxSource},
    genesis::INITIAL_BASE_FEE,
    root::{FlatState, FullState},
    state::{AccountChange, MemoryState, StateChanges, StateReader, StoredAccount},
};
use alloy_consensus::{
    Block, EMPTY_OMMER_ROOT_HASH, Header, Transaction, TxEip4844Variant, TxEnvelope, proofs,
    transaction::SignerRecoverable,
};
use alloy_eips::{
    eip1559::BaseFeeParams, eip4844::calc_excess_blob_gas, eip4895::Withdrawal, eip7840::BlobParams,
};
use alloy_primitives::{B256, Bloom};
use alloy_rlp::{Decodable, Encodable};
use std::sync::Arc;

/// Smallest gas limit a block may have (yellow paper).
const GAS_LIMIT_MINIMUM: u64 = 5_000;
/// A block's gas limit moves by less than 1/1024 of its parent's.
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1_024;
/// Longest `extra_data` a header may carry.
const MAX_EXTRA_DATA: usize = 32;

fn invalid(reason: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidBlock(reason.into())
}

/// Decodes a block from its RLP encoding.
///
/// The encoding must be canonical: re-encoding the decoded block must give the same bytes.
pub fn decode_block(rlp: &[u8]) -> ExecutorResult<Block<TxEnvelope>> {
    let mut buf = rlp;
    let block =
        Block::<TxEnvelope>::decode(&mut buf).map_err(|e| invalid(format!("block RLP: {e}")))?;
    if !buf.is_empty() {
        return Err(invalid(format!(
            "{} trailing bytes after the block RLP",
            buf.len()
        )));
    }
    let mut encoded = Vec::with_capacity(rlp.len());
    block.encode(&mut encoded);
    if encoded != rlp {
        return Err(invalid("block RLP is not canonical"));
    }
    Ok(block)
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> ExecutorResult<()> {
    if ok { Ok(()) } else { Err(invalid(why())) }
}

/// The base fee a child of `parent` must carry (EIP-1559), never below `floor`.
pub fn expected_base_fee(parent: &Header, floor: u64) -> u64 {
    let fee = match parent.base_fee_per_gas {
        Some(base_fee) => BaseFeeParams::ethereum().next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            base_fee,
        ),
        // The first London block starts from the initial base fee.
        None => INITIAL_BASE_FEE,
    };
    fee.max(floor)
}

/// The excess blob gas a child of `parent` must carry (EIP-4844).
pub fn expected_excess_blob_gas(parent: &Header) -> u64 {
    calc_excess_blob_gas(
        parent.excess_blob_gas.unwrap_or_default(),
        parent.blob_gas_used.unwrap_or_default(),
    )
}

/// Checks `header` against its parent under Cancun (post-merge) rules: everything that can be
/// known before looking at the body.
pub fn validate_header(chain: &ChainSpec, parent: &Header, header: &Header) -> ExecutorResult<()> {
    ensure(header.number == parent.number + 1, || {
        format!(
            "number {} does not follow parent {}",
            header.number, parent.number
        )
    })?;
    let parent_hash = parent.hash_slow();
    ensure(header.parent_hash == parent_hash, || {
        format!(
            "parent hash {} is not the parent's {parent_hash}",
            header.parent_hash
        )
    })?;
    ensure(header.timestamp > parent.timestamp, || {
        format!(
            "timestamp {} not after parent's {}",
            header.timestamp, parent.timestamp
        )
    })?;
    let max_delta = parent.gas_limit / GAS_LIMIT_BOUND_DIVISOR;
    ensure(
        header.gas_limit < parent.gas_limit.saturating_add(max_delta)
            && header.gas_limit > parent.gas_limit.saturating_sub(max_delta)
            && header.gas_limit >= GAS_LIMIT_MINIMUM,
        || {
            format!(
                "gas limit {} out of bounds for parent's {}",
                header.gas_limit, parent.gas_limit
            )
        },
    )?;
    ensure(header.gas_used <= header.gas_limit, || {
        format!(
            "gas used {} above gas limit {}",
            header.gas_used, header.gas_limit
        )
    })?;
    ensure(header.extra_data.len() <= MAX_EXTRA_DATA, || {
        format!("extra data of {} bytes", header.extra_data.len())
    })?;
    ensure(header.difficulty.is_zero(), || {
        format!("difficulty {} after the merge", header.difficulty)
    })?;
    ensure(header.nonce.is_zero(), || {
        format!("nonce {} after the merge", header.nonce)
    })?;
    ensure(header.ommers_hash == EMPTY_OMMER_ROOT_HASH, || {
        "ommers hash is not empty".into()
    })?;
    let base_fee = expected_base_fee(parent, chain.base_fee_floor);
    ensure(header.base_fee_per_gas == Some(base_fee), || {
        format!(
            "base fee {:?}, expected {base_fee}",
            header.base_fee_per_gas
        )
    })?;
    ensure(header.withdrawals_root.is_some(), || {
        "missing withdrawals root".into()
    })?;
    ensure(header.parent_beacon_block_root.is_some(), || {
        "missing parent beacon block root".into()
    })?;
    let Some(blob_gas_used) = header.blob_gas_used else {
        return Err(invalid("missing blob gas used"));
    };
    let Some(excess_blob_gas) = header.excess_blob_gas else {
        return Err(invalid("missing excess blob gas"));
    };
    let params = blob_params(chain.spec_id);
    ensure(blob_gas_used <= params.max_blob_gas_per_block(), || {
        format!("blob gas used {blob_gas_used} above the block maximum")
    })?;
    ensure(
        blob_gas_used % alloy_eips::eip4844::DATA_GAS_PER_BLOB == 0,
        || format!("blob gas used {blob_gas_used} is not a whole number of blobs"),
    )?;
    let expected = expected_excess_blob_gas(parent);
    ensure(excess_blob_gas == expected, || {
        format!("excess blob gas {excess_blob_gas}, expected {expected}")
    })?;
    // Fields of later forks have no place in a Cancun header.
    ensure(
        header.requests_hash.is_none()
            && header.block_access_list_hash.is_none()
            && header.slot_number.is_none(),
        || "header carries fields of a later fork".into(),
    )?;
    Ok(())
}

/// Checks the body of `block` against its header: transactions root, no ommers, withdrawals
/// and their root, blob gas.
pub fn validate_body(chain: &ChainSpec, block: &Block<TxEnvelope>) -> ExecutorResult<()> {
    let header = &block.header;
    let body = &block.body;
    if !body.ommers.is_empty() {
        return Err(invalid(format!(
            "{} ommers after the merge",
            body.ommers.len()
        )));
    }
    let transactions_root = proofs::calculate_transaction_root(&body.transactions);
    if transactions_root != header.transactions_root {
        return Err(invalid(format!(
            "transactions root {transactions_root}, header says {}",
            header.transactions_root
        )));
    }
    let Some(withdrawals) = &body.withdrawals else {
        return Err(invalid("body without withdrawals"));
    };
    let withdrawals_root = proofs::calculate_withdrawals_root(withdrawals);
    if Some(withdrawals_root) != header.withdrawals_root {
        return Err(invalid(format!(
            "withdrawals root {withdrawals_root}, header says {:?}",
            header.withdrawals_root
        )));
    }
    // Sidecars travel on the network only; a block holds the bare transaction.
    if let Some(index) = body.transactions.iter().position(|tx| {
        tx.as_eip4844()
            .is_some_and(|tx| matches!(tx.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)))
    }) {
        return Err(invalid(format!(
            "transaction {index} carries a blob sidecar"
        )));
    }
    let params: BlobParams = blob_params(chain.spec_id);
    let mut blob_gas_used = 0u64;
    for tx in &body.transactions {
        blob_gas_used = blob_gas_used.saturating_add(tx.blob_gas_used().unwrap_or_default());
        if blob_gas_used > params.max_blob_gas_per_block() {
            return Err(invalid(format!(
                "blob gas {blob_gas_used} above the block maximum {}",
                params.max_blob_gas_per_block()
            )));
        }
    }
    if Some(blob_gas_used) != header.blob_gas_used {
        return Err(invalid(format!(
            "blob gas used {blob_gas_used}, header says {:?}",
            header.blob_gas_used
        )));
    }
    Ok(())
}

/// Recovers the sender of every transaction (rejecting invalid signatures, including high-s
/// ones, EIP-2).
pub fn recover_senders(transactions: &[TxEnvelope]) -> ExecutorResult<Vec<Arc<RecoveredTx>>> {
    transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            let sender = tx
                .recover_signer()
                .map_err(|e| invalid(format!("transaction {index}: bad signature: {e}")))?;
            Ok(Arc::new(RecoveredTx::new_unchecked(
                tx.clone().into(),
                sender,
            )))
        })
        .collect()
}

/// Senders of lanes transactions in block order: signatures are recovered once, a deposit's
/// sender is the `from` its L1 message names.
pub fn recover_lanes_senders(
    transactions: &[crate::tx::LanesTxEnvelope],
) -> ExecutorResult<Vec<Arc<RecoveredTx>>> {
    transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            let sender = match tx {
                crate::tx::LanesTxEnvelope::Deposit(deposit) => deposit.inner().from,
                crate::tx::LanesTxEnvelope::Ethereum(signed) => signed
                    .recover_signer()
                    .map_err(|e| invalid(format!("transaction {index}: bad signature: {e}")))?,
            };
            Ok(Arc::new(RecoveredTx::new_unchecked(tx.clone(), sender)))
        })
        .collect()
}

/// Applies EIP-4895 withdrawals on top of a block's `changes` (made over `base`): each
/// credits `amount` gwei, and an account left empty by a zero withdrawal is removed (EIP-161),
/// as the execution specs do.
pub fn apply_withdrawals(
    changes: &mut StateChanges,
    base: &impl StateReader,
    withdrawals: &[Withdrawal],
) -> ExecutorResult<()> {
    for withdrawal in withdrawals {
        let address = withdrawal.address;
        let current = match changes.account(&address) {
            Some(info) => info,
            None => base.account(address)?,
        };
        let amount = withdrawal.amount_wei();
        let account = match current {
            Some(account) => account,
            None if amount.is_zero() => continue,
            None => StoredAccount::EMPTY,
        };
        let account = StoredAccount {
            balance: account.balance.saturating_add(amount),
            ..account
        };
        let entry = changes.accounts.entry(address).or_default();
        if account.is_empty() {
            *entry = AccountChange {
                info: None,
                storage_cleared: true,
                storage: Default::default(),
            };
        } else {
            entry.info = Some(account);
        }
    }
    Ok(())
}

/// Feeds the block's transactions to the executor in order and remembers the first one it
/// skipped: in a block being imported every transaction must execute.
#[derive(Debug)]
struct StrictSource {
    txs: std::vec::IntoIter<Arc<RecoveredTx>>,
    offered: usize,
    rejected: Option<(usize, B256, SkipReason)>,
}

impl TxSource for StrictSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        // Once one transaction is out the block is invalid; executing the rest is wasted work.
        if self.rejected.is_some() {
            return None;
        }
        let tx = self.txs.next()?;
        self.offered += 1;
        Some(tx)
    }

    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        if self.rejected.is_none() {
            self.rejected = Some((self.offered - 1, *tx.inner().tx_hash(), reason));
        }
    }
}

/// Imports `block` on top of `parent`, whose post-state `state` is: validates the header and
/// body, executes every transaction through `executor`, applies the EIP-4788 beacon root and
/// the withdrawals, and checks gas used, receipts root, logs bloom and state root against the
/// header.
///
/// Returns the sealed block and the state changes to commit on top of `state`; an invalid
/// block is an [`ExecutorError::InvalidBlock`] and changes nothing.
pub fn import_block<S, E>(
    chain: &ChainSpec,
    parent: &Header,
    block: &Block<TxEnvelope>,
    state: &S,
    executor: &E,
) -> ExecutorResult<(SealedBlock, StateChanges)>
where
    S: StateReader + FullState,
    E: BlockExecutor + ?Sized,
{
    let header = &block.header;
    validate_header(chain, parent, header)?;
    validate_body(chain, block)?;
    let transactions = recover_senders(&block.body.transactions)?;
    let count = transactions.len();

    let env = BlockEnvInput::from_header(header, count);
    let mut source = StrictSource {
        txs: transactions.into_iter(),
        offered: 0,
        rejected: None,
    };
    let executed = executor.execute(chain, &env, state, &mut source)?;
    if let Some((index, hash, reason)) = source.rejected {
        let reason = match reason {
            SkipReason::Invalid(why) => why,
            SkipReason::DoesNotFit => "gas limit above the gas left in the block".into(),
        };
        return Err(invalid(format!(
            "transaction {index} ({hash}) is invalid: {reason}"
        )));
    }
    if executed.transactions.len() != count {
        return Err(invalid(format!(
            "only {} of {count} transactions fit in the block",
            executed.transactions.len()
        )));
    }

    if executed.gas_used != header.gas_used {
        return Err(invalid(format!(
            "gas used {}, header says {}",
            executed.gas_used, header.gas_used
        )));
    }
    let receipts_root = proofs::calculate_receipt_root(&executed.receipts);
    if receipts_root != header.receipts_root {
        return Err(invalid(format!(
            "receipts root {receipts_root}, header says {}",
            header.receipts_root
        )));
    }
    let mut logs_bloom = Bloom::default();
    for receipt in &executed.receipts {
        logs_bloom.accrue_bloom(receipt.logs_bloom());
    }
    if logs_bloom != header.logs_bloom {
        return Err(invalid("logs bloom does not match the receipts"));
    }

    let mut changes = executed.changes;
    apply_withdrawals(
        &mut changes,
        state,
        block.body.withdrawals.as_ref().map_or(&[][..], |w| &w[..]),
    )?;
    let state_root = state.state_root_after(&changes)?;
    if state_root != header.state_root {
        return Err(invalid(format!(
            "state root {state_root}, header says {}",
            header.state_root
        )));
    }
    Ok((
        SealedBlock::new(header.clone(), executed.transactions, executed.receipts),
        changes,
    ))
}

impl FullState for MemoryState {
    fn flat_state(&self) -> ExecutorResult<FlatState> {
        let mut state = FlatState {
            accounts: self.accounts.iter().map(|(a, info)| (*a, *info)).collect(),
            ..Default::default()
        };
        for ((address, slot), value) in &self.storage {
            if !value.is_zero() {
                state
                    .storage
                    .entry(*address)
                    .or_default()
                    .insert(*slot, *value);
            }
        }
        Ok(state)
    }
}
