//! The transaction pool.
//!
//! Transactions are kept per sender, by nonce. A sender's *pending*
//! (executable) transactions are the run starting at its account nonce with
//! no gap and a cumulative cost the balance covers; the rest are *queued*
//! until a gap fills or the balance grows. Block building draws from the
//! pending set through [`BestTransactions`].
//!
//! Capacity: pending and queued transactions have separate limits. When the
//! category a new transaction needs a slot in is full, the cheapest
//! transaction in that category (lowest effective tip at the current base
//! fee; newest first on ties) is evicted if the newcomer's tip is strictly
//! higher, otherwise the newcomer is refused with "txpool is full". Only a
//! sender's highest-nonce transaction of a category is ever evicted, so
//! eviction never opens a gap inside anyone's pending run. Eviction never
//! crosses categories: dropping a queued transaction doesn't make room for a
//! pending one.
//!
//! Lifetime: like geth, only queued transactions expire. Pending ones are
//! included in the next blocks, or, if their fee cap is below the base fee,
//! are the first evicted under pressure; expiring them would also open
//! gaps in their senders' pending runs.

mod best;
mod sender;
mod transaction;

use std::{
    cmp::Reverse,
    collections::{BTreeSet, HashSet},
    time::{Duration, Instant},
};

use alloy_primitives::{
    Address, B256, U256,
    map::{AddressMap, B256Map},
};

pub use best::BestTransactions;
pub use transaction::PoolTransaction;

use crate::validation::{TxValidationError, validate_stateful};
use sender::SenderPool;

/// Pool size and admission limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most pending (executable) transactions.
    pub max_pending: usize,
    /// Most queued (waiting on a nonce gap or on funds) transactions.
    pub max_queued: usize,
    /// Most transactions per sender, pending and queued together.
    pub account_slots: usize,
    /// Largest accepted distance of a nonce above the sender's next nonce.
    pub max_nonce_gap: u64,
    /// Percentage by which a replacement must raise both fee caps.
    pub price_bump_percent: u64,
    /// Queued transactions older than this are dropped by
    /// [`Mempool::evict_expired`].
    pub lifetime: Duration,
    /// Largest accepted encoded transaction, in bytes.
    pub max_tx_bytes: usize,
    /// Largest accepted gas limit of one transaction.
    pub max_tx_gas: u64,
    /// Lowest accepted priority fee, in wei.
    pub min_priority_fee: u128,
}

/// The defaults are `mempool.*`'s documented defaults, kept in one place (the config crate).
impl Default for PoolLimits {
    fn default() -> Self {
        Self::from(&lanes_config::MempoolConfig::default())
    }
}

impl From<&lanes_config::MempoolConfig> for PoolLimits {
    fn from(m: &lanes_config::MempoolConfig) -> Self {
        Self {
            max_pending: m.max_pending,
            max_queued: m.max_queued,
            account_slots: m.account_slots,
            max_nonce_gap: m.max_nonce_gap,
            price_bump_percent: m.price_bump_percent,
            lifetime: m.lifetime,
            max_tx_bytes: m.max_tx_bytes,
            max_tx_gas: m.max_tx_gas,
            min_priority_fee: m.min_priority_fee,
        }
    }
}

/// Where an admitted transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Executable now.
    Pending,
    /// Waiting for a missing nonce or more funds.
    Queued,
}

/// Result of [`Mempool::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Where the transaction landed.
    pub status: TxStatus,
    /// The same-nonce transaction it replaced.
    pub replaced: Option<B256>,
    /// Other transactions dropped along the way: evicted to make room, or
    /// found stale because the caller's account nonce was newer than the
    /// pool's.
    pub evicted: Vec<B256>,
}

/// A sender's account after a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    /// Account nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
}

/// Result of [`Mempool::on_block`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Pooled transactions the block included.
    pub included: Vec<B256>,
    /// Other transactions whose nonce the block used up.
    pub stale: Vec<B256>,
    /// Transactions evicted because promotions or demotions overfilled a
    /// category.
    pub evicted: Vec<B256>,
    /// Queued transactions that became pending.
    pub promoted: u64,
    /// Pending transactions that became queued (the balance no longer covers
    /// them).
    pub demoted: u64,
}

/// Result of [`Mempool::remove`].
#[derive(Debug, Clone)]
pub struct RemoveOutcome {
    /// The removed transaction.
    pub tx: PoolTransaction,
    /// The sender's later pending transactions, now queued behind the gap.
    pub demoted: u64,
    /// Transactions evicted because the demotions overfilled the queue.
    pub evicted: Vec<B256>,
}

/// Eviction order within a category: lowest tip (`None`, below the base
/// fee, lowest of all), then newest.
type TailKey = (Option<u128>, Reverse<u64>, Address);

fn tail_key(base_fee: u64, sender: Address, tx: &PoolTransaction) -> TailKey {
    (tx.effective_tip(base_fee), Reverse(tx.seq), sender)
}

/// The transaction pool. Not synchronised; wrap it in a lock.
#[derive(Debug)]
pub struct Mempool {
    limits: PoolLimits,
    base_fee: u64,
    senders: AddressMap<SenderPool>,
    by_hash: B256Map<(Address, u64)>,
    /// Each sender's highest-nonce pending transaction, cheapest first.
    pending_tails: BTreeSet<TailKey>,
    /// Each sender's highest-nonce queued transaction, cheapest first.
    queued_tails: BTreeSet<TailKey>,
    pending_count: usize,
    queued_count: usize,
    pending_bytes: usize,
    queued_bytes: usize,
    next_seq: u64,
    /// Senders whose pending run grew since the block builder last looked
    /// ([`Self::take_best`], [`Self::take_fresh`]).
    fresh: HashSet<Address>,
}

impl Mempool {
    /// An empty pool with base fee 0 (set it with [`Self::set_base_fee`]).
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            limits,
            base_fee: 0,
            senders: AddressMap::default(),
            by_hash: B256Map::default(),
            pending_tails: BTreeSet::new(),
            queued_tails: BTreeSet::new(),
            pending_count: 0,
            queued_count: 0,
            pending_bytes: 0,
            queued_bytes: 0,
            next_seq: 0,
            fresh: HashSet::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    /// Base fee that eviction ranks tips against.
    pub fn base_fee(&self) -> u64 {
        self.base_fee
    }

    /// Sets the base fee that eviction ranks tips against (the next block's).
    /// O(senders · log senders) when it changes.
    pub fn set_base_fee(&mut self, base_fee: u64) {
        if base_fee == self.base_fee {
            return;
        }
        self.base_fee = base_fee;
        self.pending_tails.clear();
        self.queued_tails.clear();
        for (addr, sender) in &self.senders {
            if let Some(tx) = sender.pending_tail() {
                self.pending_tails.insert(tail_key(base_fee, *addr, tx));
            }
            if let Some(tx) = sender.queued_tail() {
                self.queued_tails.insert(tail_key(base_fee, *addr, tx));
            }
        }
    }

    /// Admits a validated transaction. `state_nonce` and `state_balance` are
    /// the sender's account as the caller read it. For a sender already
    /// pooled, the caller's view replaces the pool's unless its nonce is
    /// older: a read that raced a block including the sender's transactions
    /// can't roll the pool back, while a balance change the pool wasn't told
    /// about (e.g. incoming funds) is picked up.
    ///
    /// Rules, in order: not already pooled; nonce not used and not more than
    /// `max_nonce_gap` above [`Self::pending_nonce`]; a same-nonce
    /// replacement raises both fee caps by `price_bump_percent`; the sender
    /// has fewer than `account_slots` transactions; the balance covers this
    /// transaction and, if it is or replaces a pending one, the sender's
    /// whole pending run; and there's room, possibly by evicting a cheaper
    /// transaction.
    pub fn add(
        &mut self,
        tx: PoolTransaction,
        state_nonce: u64,
        state_balance: U256,
    ) -> Result<AddOutcome, TxValidationError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(TxValidationError::AlreadyKnown);
        }
        let address = tx.sender;
        let hash = tx.hash;
        let mut evicted = Vec::new();
        let mut sender = match self.detach(address) {
            Some(mut sender) => {
                if state_nonce > sender.state_nonce
                    || (state_nonce == sender.state_nonce && state_balance != sender.balance)
                {
                    for stale in sender.set_state(state_nonce, state_balance) {
                        self.by_hash.remove(&stale.hash);
                        evicted.push(stale.hash);
                    }
                }
                sender
            }
            None => SenderPool::new(state_nonce, state_balance),
        };
        let admitted = self.admit(&mut sender, tx, &mut evicted);
        self.attach(address, sender);
        let (status, replaced) = admitted?;
        if status == TxStatus::Pending {
            self.fresh.insert(address);
        }
        evicted.extend(self.enforce_limits(Some(hash)));
        Ok(AddOutcome {
            status,
            replaced,
            evicted,
        })
    }

    /// [`Self::add`] with the sender detached, so eviction can't pick it.
    fn admit(
        &mut self,
        sender: &mut SenderPool,
        mut tx: PoolTransaction,
        evicted: &mut Vec<B256>,
    ) -> Result<(TxStatus, Option<B256>), TxValidationError> {
        let next = sender.pending_nonce();
        validate_stateful(&tx, sender.state_nonce, next, sender.balance, &self.limits)?;

        let existing = sender.txs.get(&tx.nonce);
        match existing {
            Some(old) if !self.outbids(&tx, old) => {
                return Err(TxValidationError::ReplacementUnderpriced);
            }
            None if sender.txs.len() >= self.limits.account_slots => {
                return Err(TxValidationError::AccountLimitExceeded);
            }
            _ => {}
        }

        // A transaction joining or replacing inside the pending run must keep
        // the whole run affordable, so admitting it never demotes anything.
        if tx.nonce <= next {
            let replaced_cost = existing
                .filter(|_| tx.nonce < next)
                .map_or(U256::ZERO, PoolTransaction::cost);
            let want = (sender.pending_cost - replaced_cost).saturating_add(tx.cost());
            if want > sender.balance {
                return Err(TxValidationError::InsufficientFunds {
                    address: tx.sender,
                    have: sender.balance,
                    want,
                });
            }
        }

        // The detached sender's own transactions aren't in the global counts.
        let tip = tx.effective_tip(self.base_fee);
        if tx.nonce == next
            && self.pending_count + sender.pending_count as usize >= self.limits.max_pending
        {
            evicted.push(self.evict_for(TxStatus::Pending, tip)?);
        } else if tx.nonce > next
            && existing.is_none()
            && self.queued_count + sender.queued_count() >= self.limits.max_queued
        {
            evicted.push(self.evict_for(TxStatus::Queued, tip)?);
        }

        tx.seq = self.next_seq;
        self.next_seq += 1;
        let (hash, nonce, address) = (tx.hash, tx.nonce, tx.sender);
        let replaced = sender.insert(tx).map(|old| {
            self.by_hash.remove(&old.hash);
            old.hash
        });
        self.by_hash.insert(hash, (address, nonce));
        sender.promote();
        let status = if sender.is_pending(nonce) {
            TxStatus::Pending
        } else {
            TxStatus::Queued
        };
        Ok((status, replaced))
    }

    /// geth's rule: both caps strictly higher and at least
    /// `old * (100 + bump) / 100`.
    fn outbids(&self, new: &PoolTransaction, old: &PoolTransaction) -> bool {
        let bump = U256::from(100 + self.limits.price_bump_percent);
        let threshold = |old: u128| U256::from(old) * bump / U256::from(100);
        new.max_fee_per_gas > old.max_fee_per_gas
            && new.max_priority_fee_per_gas > old.max_priority_fee_per_gas
            && U256::from(new.max_fee_per_gas) >= threshold(old.max_fee_per_gas)
            && U256::from(new.max_priority_fee_per_gas) >= threshold(old.max_priority_fee_per_gas)
    }

    /// Frees one slot in `category` for a newcomer tipping `tip`.
    fn evict_for(
        &mut self,
        category: TxStatus,
        tip: Option<u128>,
    ) -> Result<B256, TxValidationError> {
        let tails = match category {
            TxStatus::Pending => &self.pending_tails,
            TxStatus::Queued => &self.queued_tails,
        };
        match tails.first() {
            Some(&(cheapest, _, victim)) if tip > cheapest => Ok(self
                .evict_tail(category, victim)
                .ok_or(TxValidationError::TxPoolFull)?),
            _ => Err(TxValidationError::TxPoolFull),
        }
    }

    /// Removes `sender`'s highest-nonce transaction of `category`.
    fn evict_tail(&mut self, category: TxStatus, address: Address) -> Option<B256> {
        let mut sender = self.detach(address)?;
        let nonce = match category {
            TxStatus::Pending => sender.pending_tail(),
            TxStatus::Queued => sender.queued_tail(),
        }
        .map(|tx| tx.nonce);
        let removed = nonce.and_then(|nonce| sender.remove(nonce));
        self.attach(address, sender);
        let removed = removed?;
        self.by_hash.remove(&removed.hash);
        Some(removed.hash)
    }

    /// Evicts the cheapest tails until both categories fit, sparing
    /// `protect` (a transaction just admitted).
    fn enforce_limits(&mut self, protect: Option<B256>) -> Vec<B256> {
        let mut evicted = Vec::new();
        for (category, limit) in [
            (TxStatus::Queued, self.limits.max_queued),
            (TxStatus::Pending, self.limits.max_pending),
        ] {
            while self.count(category) > limit {
                let Some(victim) = self.cheapest_tail(category, protect) else {
                    break;
                };
                match self.evict_tail(category, victim) {
                    Some(hash) => evicted.push(hash),
                    None => break,
                }
            }
        }
        evicted
    }

    fn count(&self, category: TxStatus) -> usize {
        match category {
            TxStatus::Pending => self.pending_count,
            TxStatus::Queued => self.queued_count,
        }
    }

    fn cheapest_tail(&self, category: TxStatus, protect: Option<B256>) -> Option<Address> {
        let (tails, tail_of): (_, fn(&SenderPool) -> Option<&PoolTransaction>) = match category {
            TxStatus::Pending => (&self.pending_tails, SenderPool::pending_tail),
            TxStatus::Queued => (&self.queued_tails, SenderPool::queued_tail),
        };
        tails.iter().map(|key| key.2).find(|address| {
            let tail = self.senders.get(address).and_then(tail_of);
            tail.is_some_and(|tx| Some(tx.hash) != protect)
        })
    }

    /// Takes a sender out of the indexes so it can be mutated; pair with
    /// [`Self::attach`].
    fn detach(&mut self, address: Address) -> Option<SenderPool> {
        let sender = self.senders.remove(&address)?;
        self.pending_count -= sender.pending_count as usize;
        self.queued_count -= sender.queued_count();
        self.pending_bytes -= sender.pending_bytes;
        self.queued_bytes -= sender.queued_bytes();
        if let Some(tx) = sender.pending_tail() {
            self.pending_tails
                .remove(&tail_key(self.base_fee, address, tx));
        }
        if let Some(tx) = sender.queued_tail() {
            self.queued_tails
                .remove(&tail_key(self.base_fee, address, tx));
        }
        Some(sender)
    }

    /// Re-indexes a detached sender (dropping it if it has no transactions).
    fn attach(&mut self, address: Address, sender: SenderPool) {
        if sender.txs.is_empty() {
            return;
        }
        self.pending_count += sender.pending_count as usize;
        self.queued_count += sender.queued_count();
        self.pending_bytes += sender.pending_bytes;
        self.queued_bytes += sender.queued_bytes();
        if let Some(tx) = sender.pending_tail() {
            self.pending_tails
                .insert(tail_key(self.base_fee, address, tx));
        }
        if let Some(tx) = sender.queued_tail() {
            self.queued_tails
                .insert(tail_key(self.base_fee, address, tx));
        }
        self.senders.insert(address, sender);
    }

    /// The nonce `sender`'s next transaction should use: past its pending
    /// run, or `state_nonce` if the pool has nothing executable for it.
    pub fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        self.senders
            .get(&sender)
            .map_or(state_nonce, |s| s.pending_nonce().max(state_nonce))
    }

    /// A pooled transaction.
    pub fn get(&self, hash: &B256) -> Option<&PoolTransaction> {
        let (address, nonce) = self.by_hash.get(hash)?;
        self.senders.get(address)?.txs.get(nonce)
    }

    /// Whether the transaction is pooled.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether a pooled transaction is pending or queued.
    pub fn status(&self, hash: &B256) -> Option<TxStatus> {
        let (address, nonce) = self.by_hash.get(hash)?;
        let sender = self.senders.get(address)?;
        Some(if sender.is_pending(*nonce) {
            TxStatus::Pending
        } else {
            TxStatus::Queued
        })
    }

    /// Number of pending transactions.
    pub fn len_pending(&self) -> usize {
        self.pending_count
    }

    /// Number of queued transactions.
    pub fn len_queued(&self) -> usize {
        self.queued_count
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.pending_count + self.queued_count
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded size of the pending transactions.
    pub fn bytes_pending(&self) -> usize {
        self.pending_bytes
    }

    /// Encoded size of the queued transactions.
    pub fn bytes_queued(&self) -> usize {
        self.queued_bytes
    }

    /// Senders with pooled transactions.
    pub fn senders(&self) -> impl Iterator<Item = Address> + '_ {
        self.senders.keys().copied()
    }

    /// Pending transactions, each sender's in nonce order (senders in no
    /// particular order).
    pub fn pending_transactions(&self) -> impl Iterator<Item = &PoolTransaction> + '_ {
        self.senders.values().flat_map(SenderPool::pending)
    }

    /// Queued transactions, each sender's in nonce order (senders in no
    /// particular order).
    pub fn queued_transactions(&self) -> impl Iterator<Item = &PoolTransaction> + '_ {
        self.senders.values().flat_map(SenderPool::queued)
    }

    /// Pending transactions in block-building order at `base_fee`; see
    /// [`BestTransactions`]. O(pending) to snapshot.
    pub fn best_transactions(&self, base_fee: u64) -> BestTransactions {
        BestTransactions::new(
            base_fee,
            self.senders.iter().map(|(a, s)| (*a, s.pending())),
        )
    }

    /// [`Self::best_transactions`] for a block builder that then streams new arrivals with
    /// [`Self::take_fresh`]: starts tracking arrivals from this snapshot on.
    pub fn take_best(&mut self, base_fee: u64) -> BestTransactions {
        self.fresh.clear();
        self.best_transactions(base_fee)
    }

    /// The pending transactions that became ready since the last [`Self::take_best`] or
    /// `take_fresh`, in block-building order: of each sender whose pending run grew, those
    /// from nonce `next_offered(sender)` on; `None` leaves the sender out. O(new senders),
    /// so a builder can poll it while a block is open.
    pub fn take_fresh(
        &mut self,
        base_fee: u64,
        next_offered: impl Fn(&Address) -> Option<u64>,
    ) -> BestTransactions {
        let fresh = std::mem::take(&mut self.fresh);
        let senders = &self.senders;
        BestTransactions::new(
            base_fee,
            fresh.iter().filter_map(|address| {
                let from = next_offered(address)?;
                let sender = senders.get(address)?;
                Some((
                    *address,
                    sender.pending().filter(move |tx| tx.nonce >= from),
                ))
            }),
        )
    }

    /// Whether transactions became ready since the builder last looked.
    pub fn has_fresh(&self) -> bool {
        !self.fresh.is_empty()
    }

    /// Applies a block: drops the `included` transactions and every other one
    /// whose nonce is used up, adopts the `touched` accounts' new nonces and
    /// balances (senders not pooled are ignored), then re-splits the affected
    /// senders: queued transactions that became contiguous and affordable
    /// are promoted, pending ones the balance no longer covers are demoted
    /// (kept, as geth does). `next_base_fee` becomes the eviction base fee.
    ///
    /// `touched` should hold every account the block changed; a pooled
    /// sender missing from it keeps its old balance, and its nonce only
    /// advances past its included transactions.
    pub fn on_block(
        &mut self,
        included: &[B256],
        next_base_fee: u64,
        touched: impl IntoIterator<Item = (Address, AccountState)>,
    ) -> BlockOutcome {
        #[derive(Default)]
        struct Update {
            min_nonce: u64,
            account: Option<AccountState>,
        }
        let mut updates: AddressMap<Update> = AddressMap::default();
        let mut included_set = HashSet::with_capacity(included.len());
        for hash in included {
            if let Some(&(address, nonce)) = self.by_hash.get(hash) {
                included_set.insert(*hash);
                let update = updates.entry(address).or_default();
                update.min_nonce = update.min_nonce.max(nonce.saturating_add(1));
            }
        }
        for (address, account) in touched {
            if self.senders.contains_key(&address) {
                updates.entry(address).or_default().account = Some(account);
            }
        }

        self.set_base_fee(next_base_fee);
        let mut outcome = BlockOutcome::default();
        for (address, update) in updates {
            let Some(mut sender) = self.detach(address) else {
                continue;
            };
            let old_next = sender.pending_nonce();
            let (nonce, balance) = match update.account {
                Some(account) => (account.nonce, account.balance),
                None => (sender.state_nonce, sender.balance),
            };
            let nonce = nonce.max(update.min_nonce);
            for tx in sender.set_state(nonce, balance) {
                self.by_hash.remove(&tx.hash);
                if included_set.contains(&tx.hash) {
                    outcome.included.push(tx.hash);
                } else {
                    outcome.stale.push(tx.hash);
                }
            }
            let new_next = sender.pending_nonce();
            outcome.promoted += new_next.saturating_sub(old_next.max(nonce));
            outcome.demoted += old_next.saturating_sub(new_next);
            self.attach(address, sender);
        }
        outcome.evicted = self.enforce_limits(None);
        outcome
    }

    /// Removes a transaction, e.g. one that failed at execution. The sender's
    /// later pending transactions are demoted behind the new gap.
    pub fn remove(&mut self, hash: &B256) -> Option<RemoveOutcome> {
        let (address, nonce) = self.by_hash.remove(hash)?;
        let mut sender = self.detach(address)?;
        let demoted = if sender.is_pending(nonce) {
            sender.pending_nonce() - nonce - 1
        } else {
            0
        };
        let tx = sender.remove(nonce);
        self.attach(address, sender);
        Some(RemoveOutcome {
            tx: tx?,
            demoted,
            evicted: self.enforce_limits(None),
        })
    }

    /// Drops queued transactions that arrived more than `lifetime` before
    /// `now`; returns their hashes. O(pooled transactions).
    pub fn evict_expired(&mut self, now: Instant) -> Vec<B256> {
        let lifetime = self.limits.lifetime;
        let expired: Vec<(Address, u64)> = self
            .senders
            .iter()
            .flat_map(|(address, sender)| {
                sender
                    .queued()
                    .filter(|tx| now.saturating_duration_since(tx.arrival) > lifetime)
                    .map(|tx| (*address, tx.nonce))
            })
            .collect();
        let mut hashes = Vec::with_capacity(expired.len());
        for (address, nonce) in expired {
            let Some(mut sender) = self.detach(address) else {
                continue;
            };
            if let Some(tx) = sender.remove(nonce) {
                self.by_hash.remove(&tx.hash);
                hashes.push(tx.hash);
            }
            self.attach(address, sender);
        }
        hashes
    }
}

#[cfg(test)]
mod tests;
