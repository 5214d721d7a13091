//! The committed side of a block: the state every transaction before the current one left,
//! the included transactions and receipts, and the in-order decisions that go back to the
//! source.

use super::spec::{
    Included, Loc, NEVER, PredictedSlots, Read, Scratch, SpecReceipt, TxRecord, apply_write,
};
use crate::{
    block::{BlockTx, RecoveredTx},
    bloom::BloomCache,
    error::{ExecutorError, ExecutorResult},
    evm::{BlockEnvInput, ChainSpec, build_evm, tx_env},
    executor::{SkipReason, TxSource, apply_beacon_root, transact_deposit},
    state::{AccountChange, BlockState, CodeCache, StateChanges, StateReader, StoredAccount},
    tx::LanesReceipt,
};
use alloy_consensus::{Eip658Value, Receipt};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, KECCAK256_EMPTY, U256, map::HashSet};
use revm::{Database, ExecuteCommitEvm, context::result::EVMError};
use std::{collections::hash_map::Entry, sync::Arc};

/// What the block looks like so far.
pub(super) struct Committer<'r, R> {
    pub db: BlockState<&'r R>,
    pub chain: &'r ChainSpec,
    pub env: &'r BlockEnvInput,
    pub transactions: Vec<BlockTx>,
    pub receipts: Vec<LanesReceipt>,
    pub gas_used: u64,
    /// Gas used by deposits, which pay no base fee.
    pub deposit_gas: u64,
    /// Senders with a skipped transaction: the source no longer offers their later ones.
    pub dropped: HashSet<Address>,
    /// Transactions executed again on the committed state.
    pub reexecutions: usize,
    /// For the receipts of transactions run here; made on first use, as a window whose
    /// speculation stands needs none.
    bloom: Option<BloomCache>,
}

impl<'r, R: StateReader> Committer<'r, R> {
    /// Starts a block: the EIP-4788 system call first, as the sequential builder does.
    pub(super) fn new(
        reader: &'r R,
        codes: CodeCache,
        chain: &'r ChainSpec,
        env: &'r BlockEnvInput,
    ) -> ExecutorResult<Self> {
        let mut committer = Self {
            db: BlockState::new(reader, codes),
            chain,
            env,
            transactions: Vec::new(),
            receipts: Vec::new(),
            gas_used: 0,
            deposit_gas: 0,
            dropped: HashSet::default(),
            reexecutions: 0,
            bloom: None,
        };
        let mut evm = build_evm(chain, env.block_env(), &mut committer.db, |_| {});
        apply_beacon_root(&mut evm, env)?;
        Ok(committer)
    }

    /// Records a skip exactly where the sequential builder would have made it.
    pub(super) fn skip(&mut self, source: &mut dyn TxSource, tx: &RecoveredTx, reason: SkipReason) {
        self.dropped.insert(tx.signer());
        source.skip(tx, reason);
    }

    /// Records an included transaction (its state changes are the caller's business).
    pub(super) fn include(&mut self, tx: &Arc<RecoveredTx>, gas_used: u64, receipt: SpecReceipt) {
        include(
            &mut self.transactions,
            &mut self.receipts,
            &mut self.gas_used,
            tx.clone(),
            gas_used,
            receipt,
        );
    }

    /// Executes `txs` one by one on the committed state, like the sequential builder.
    pub(super) fn run_serial<'t>(
        &mut self,
        txs: impl IntoIterator<Item = &'t Arc<RecoveredTx>>,
        source: &mut dyn TxSource,
    ) -> ExecutorResult<()> {
        let mut evm = build_evm(self.chain, self.env.block_env(), &mut self.db, |_| {});
        let bloom = self.bloom.get_or_insert_with(BloomCache::new);
        for tx in txs {
            if let Some(deposit) = tx.inner().as_deposit() {
                let (used, mut receipt) = transact_deposit(&mut evm, deposit)?;
                self.gas_used += used;
                self.deposit_gas += used;
                receipt.set_cumulative_gas_used(self.gas_used);
                self.receipts.push(receipt);
                self.transactions.push(BlockTx::new(tx.clone()));
                continue;
            }
            if self.dropped.contains(&tx.signer()) {
                continue;
            }
            match evm.transact_commit(tx_env(tx)) {
                Ok(result) => {
                    self.gas_used += result.tx_gas_used();
                    let receipt = Receipt {
                        status: Eip658Value::Eip658(result.is_success()),
                        cumulative_gas_used: self.gas_used,
                        logs: result.into_logs(),
                    };
                    self.receipts
                        .push(LanesReceipt::new(tx.ty(), bloom.with_bloom(receipt)));
                    self.transactions.push(BlockTx::new(tx.clone()));
                }
                Err(EVMError::Transaction(invalid)) => {
                    self.dropped.insert(tx.signer());
                    source.skip(tx, SkipReason::Invalid(invalid.to_string()));
                }
                Err(EVMError::Database(err)) => return Err(err),
                Err(other) => return Err(ExecutorError::Evm(other.to_string())),
            }
        }
        Ok(())
    }

    /// Executes one transaction on the committed state with revm's own handler.
    pub(super) fn reexecute(
        &mut self,
        tx: &Arc<RecoveredTx>,
        source: &mut dyn TxSource,
    ) -> ExecutorResult<()> {
        self.reexecutions += 1;
        self.run_serial(std::iter::once(tx), source)
    }

    /// True if every value `reads` saw is what the committed state holds now.
    pub(super) fn reads_current(&mut self, reads: &[Read]) -> ExecutorResult<bool> {
        for read in reads {
            let current = match *read {
                Read::Account {
                    address,
                    value,
                    credit_only: false,
                } => self.db.account(address)? == value,
                Read::Account {
                    address,
                    credit_only: true,
                    ..
                } => self
                    .db
                    .account(address)?
                    .is_none_or(|a| a.code_hash == KECCAK256_EMPTY),
                Read::Slot {
                    address,
                    slot,
                    value,
                    ..
                } => Database::storage(&mut self.db, address, slot)? == value,
            };
            if !current {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Commits a speculative result whose reads are current: its writes, its credit and
    /// the reward, with the rules the sequential builder's per-transaction commit follows.
    /// Returns false (and changes nothing) if the credit would overflow, which revm handles
    /// differently; the caller then executes exactly.
    pub(super) fn commit_recorded(
        &mut self,
        tx: &Arc<RecoveredTx>,
        scratch: &Scratch,
        record: &TxRecord,
        included: Included,
    ) -> ExecutorResult<bool> {
        let Included {
            gas_used,
            receipt,
            reward,
            credit,
        } = included;
        if let Some((to, amount)) = credit {
            let balance = self.db.account(to)?.map_or(U256::ZERO, |a| a.balance);
            if balance.checked_add(amount).is_none() {
                return Ok(false);
            }
        }
        for write in scratch.writes_of(record) {
            apply_write(&mut self.db.changes, write, scratch.slots_of(write));
            if write.code
                && let Some(hash) = write.info.map(|info| info.code_hash)
                && let Some(code) = scratch.local.codes.get(&hash)
            {
                self.db
                    .changes
                    .codes
                    .entry(hash)
                    .or_insert_with(|| code.clone());
            }
        }
        if let Some((to, amount)) = credit {
            credit_account(&mut self.db, to, amount)?;
        }
        touch_credit(&mut self.db, self.env.beneficiary, reward)?;
        self.include(tx, gas_used, receipt);
        Ok(true)
    }

    /// Commits a window whose speculative results all stand by merging the workers' views
    /// instead of replaying every transaction. `combined` holds the accounts more than one
    /// worker touched, merged ahead. Returns false, changing nothing, if they could not be
    /// merged exactly (then the caller replays).
    pub(super) fn try_merge(
        &mut self,
        outputs: &mut [Scratch],
        combined: Vec<(Address, Option<AccountChange>)>,
    ) -> ExecutorResult<bool> {
        let Some(combined) = combined
            .into_iter()
            .map(|(address, change)| Some((address, change?)))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(false);
        };
        let mut views: Vec<&mut StateChanges> = outputs.iter_mut().map(|o| &mut o.local).collect();
        merge_views(&mut self.db.changes, &mut views, combined);
        Ok(true)
    }

    /// Pays the rewards of consecutive included transactions in one go. Equivalent to paying
    /// them one by one: after the first payment the account can only be left empty (and so
    /// deleted again) if every later reward is zero too.
    pub(super) fn pay_rewards(
        &mut self,
        rewards: impl IntoIterator<Item = U256>,
    ) -> ExecutorResult<()> {
        let mut rewards = rewards.into_iter();
        let Some(first) = rewards.next() else {
            return Ok(());
        };
        touch_credit(&mut self.db, self.env.beneficiary, first)?;
        let rest = rewards.fold(U256::ZERO, |sum, r| sum.saturating_add(r));
        touch_credit(&mut self.db, self.env.beneficiary, rest)?;
        Ok(())
    }

    /// Gas left in the block.
    pub(super) fn gas_left(&self) -> u64 {
        self.env.gas_limit - self.gas_used
    }
}

/// Appends an included transaction and its receipt, built in place with the block's
/// cumulative gas. A free function so that a worker can report a window while the
/// committer's state is merged.
#[inline(always)]
pub(super) fn include(
    transactions: &mut Vec<BlockTx>,
    receipts: &mut Vec<LanesReceipt>,
    block_gas: &mut u64,
    tx: Arc<RecoveredTx>,
    gas_used: u64,
    receipt: SpecReceipt,
) {
    *block_gas += gas_used;
    receipts.push(receipt.into_receipt(*block_gas));
    transactions.push(BlockTx::new(tx));
}

/// Merges the workers' views, whose every result stands, into the committed state;
/// `combined` holds the accounts more than one worker touched, merged ahead.
pub(super) fn merge_views(
    changes: &mut StateChanges,
    views: &mut [&mut StateChanges],
    combined: Vec<(Address, AccountChange)>,
) {
    for view in views.iter_mut() {
        for (address, _) in &combined {
            view.accounts.remove(address);
        }
    }
    // Typically the committed state is small next to a window's changes: adopt the
    // largest worker's table and fold the older entries under it instead of inserting
    // every account again.
    if let Some(largest) = views.iter_mut().max_by_key(|v| v.accounts.len())
        && largest.accounts.len() > changes.accounts.len()
    {
        let mut older =
            std::mem::replace(&mut changes.accounts, std::mem::take(&mut largest.accounts));
        for (address, earlier) in older.drain() {
            fold_under(changes, address, earlier);
        }
        // The worker gets the emptied table back, so its memory is still reused.
        largest.accounts = older;
    }
    let incoming: usize = views.iter().map(|v| v.accounts.len()).sum();
    changes.accounts.reserve(incoming);
    for view in views.iter_mut() {
        // Drained, not moved: the worker keeps the memory for the next window.
        for (address, later) in view.accounts.drain() {
            fold(changes, address, later);
        }
        for (hash, code) in view.codes.drain() {
            changes.codes.entry(hash).or_insert(code);
        }
    }
    for (address, later) in combined {
        fold(changes, address, later);
    }
}

/// The merged change of `address`, touched by several workers, or `None` if their changes
/// do not combine exactly. Validation guarantees that at most one worker changed the account
/// outright, and that then no other worker credited it; credits from different workers add.
/// Predicted slots may be written by several workers: the caller sets them to the value the
/// replay of their accesses found.
pub(super) fn combine(
    outputs: &[&Scratch],
    address: Address,
    window_start: Option<StoredAccount>,
    predicted: &PredictedSlots,
) -> Option<AccountChange> {
    let mut writer: Option<usize> = None;
    let mut creditors = Vec::new();
    let mut credit_total = U256::ZERO;
    let mut storage_cleared = false;
    let mut cleared_by = None;
    let mut slot_writers = 0;
    let mut infos = Vec::new();
    // The largest slot map is the starting point; the others are added to it.
    let largest = outputs
        .iter()
        .enumerate()
        .filter_map(|(w, o)| o.local.accounts.get(&address).map(|c| (w, c.storage.len())))
        .max_by_key(|(_, len)| *len)
        .map(|(w, _)| w)?;
    let mut storage = outputs[largest].local.accounts[&address].storage.clone();
    storage.reserve(
        outputs
            .iter()
            .enumerate()
            .filter(|(w, _)| *w != largest)
            .filter_map(|(_, o)| o.local.accounts.get(&address).map(|c| c.storage.len()))
            .sum(),
    );
    for (w, output) in outputs.iter().enumerate() {
        let Some(change) = output.local.accounts.get(&address) else {
            continue;
        };
        // Keyed by digest: were another location to share this one's, a worker that only
        // credited the account or wrote its slots would be named its writer. Its view then
        // holds the window's data plus its own credits, which is what the credit sum gives,
        // and any other worker's credit or write still makes this `None`.
        if output
            .first_writes
            .get(&Loc::Account(address).digest())
            .is_some_and(|f| f.write != NEVER)
        {
            if writer.is_some() {
                return None;
            }
            writer = Some(w);
        }
        if let Some(credit) = output.credits.get(&address) {
            credit_total = credit_total.checked_add(*credit)?;
            creditors.push(w);
        }
        if change.storage_cleared {
            storage_cleared = true;
            cleared_by = Some(w);
        }
        if !change.storage.is_empty() {
            slot_writers += 1;
        }
        if w != largest {
            for (slot, value) in &change.storage {
                if storage.insert(*slot, *value).is_some()
                    && predicted.get(address, *slot).is_none()
                {
                    return None;
                }
            }
        }
        infos.push((w, change.info));
    }
    // A clear in one worker and slot writes in another would depend on their order.
    if let Some(w) = cleared_by {
        let own = usize::from(
            outputs[w]
                .local
                .accounts
                .get(&address)
                .is_some_and(|c| !c.storage.is_empty()),
        );
        if slot_writers > own {
            return None;
        }
    }
    let info = match writer {
        // The writer's own credits are in its view; nobody else may have credited.
        Some(w) => {
            if creditors.iter().any(|c| *c != w) {
                return None;
            }
            infos.iter().find(|(v, _)| *v == w).map(|(_, info)| *info)?
        }
        None if !credit_total.is_zero() => {
            let mut account = window_start.unwrap_or(StoredAccount::EMPTY);
            account.balance = account.balance.checked_add(credit_total)?;
            Some(account)
        }
        None => {
            let first = infos[0].1;
            if infos.iter().any(|(_, info)| *info != first) {
                return None;
            }
            first
        }
    };
    Some(AccountChange {
        info,
        storage_cleared,
        storage,
    })
}

/// Folds `later`, a change made after everything in `changes`, into `changes`: the rule of
/// [`StateChanges::extend`] for one account.
fn fold(changes: &mut StateChanges, address: Address, later: AccountChange) {
    match changes.accounts.entry(address) {
        Entry::Vacant(slot) => {
            slot.insert(later);
        }
        Entry::Occupied(mut slot) => {
            let entry = slot.get_mut();
            if later.storage_cleared {
                entry.storage_cleared = true;
                entry.storage.clear();
            }
            entry.info = later.info;
            entry.storage.extend(later.storage);
        }
    }
}

/// Folds `earlier`, a change made before everything in `changes`, under `changes`.
fn fold_under(changes: &mut StateChanges, address: Address, earlier: AccountChange) {
    match changes.accounts.entry(address) {
        Entry::Vacant(slot) => {
            slot.insert(earlier);
        }
        Entry::Occupied(mut slot) => {
            let later = std::mem::replace(slot.get_mut(), earlier);
            let entry = slot.get_mut();
            if later.storage_cleared {
                entry.storage_cleared = true;
                entry.storage.clear();
            }
            entry.info = later.info;
            entry.storage.extend(later.storage);
        }
    }
}

/// Credits a plain transfer's recipient as revm's commit of that transfer would.
fn credit_account<R: StateReader>(
    db: &mut BlockState<R>,
    address: Address,
    amount: U256,
) -> ExecutorResult<()> {
    let mut account = db.account(address)?.unwrap_or(StoredAccount::EMPTY);
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or_else(|| ExecutorError::Evm(format!("balance overflow crediting {address}")))?;
    db.changes.accounts.entry(address).or_default().info = Some(account);
    Ok(())
}

/// Pays `amount` to `address` the way revm pays the fee recipient (the account is touched,
/// an overflowing increase is dropped) followed by the commit of that touch (an account left
/// empty is deleted, EIP-161).
fn touch_credit<R: StateReader>(
    db: &mut BlockState<R>,
    address: Address,
    amount: U256,
) -> ExecutorResult<()> {
    let mut account = db.account(address)?.unwrap_or(StoredAccount::EMPTY);
    if let Some(balance) = account.balance.checked_add(amount) {
        account.balance = balance;
    }
    let entry = db.changes.accounts.entry(address).or_default();
    if account.is_empty() {
        entry.info = None;
        entry.storage_cleared = true;
        entry.storage.clear();
    } else {
        entry.info = Some(account);
    }
    Ok(())
}
