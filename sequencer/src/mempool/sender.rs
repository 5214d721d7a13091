//! One sender's transactions and its pending/queued split.

use std::collections::BTreeMap;

use alloy_primitives::U256;

use super::PoolTransaction;

/// A sender's pooled transactions by nonce.
///
/// The pending (executable) set is always the run `state_nonce ..
/// state_nonce + pending_count`: contiguous from the account nonce and with a
/// cumulative cost within `balance`. Everything else is queued. Keeping the
/// split as a count rather than two maps makes promotion and demotion a
/// counter change instead of moving entries.
#[derive(Debug)]
pub(super) struct SenderPool {
    pub(super) txs: BTreeMap<u64, PoolTransaction>,
    pub(super) state_nonce: u64,
    pub(super) balance: U256,
    pub(super) pending_count: u64,
    pub(super) pending_cost: U256,
    pub(super) pending_bytes: usize,
    pub(super) total_bytes: usize,
}

impl SenderPool {
    pub(super) fn new(state_nonce: u64, balance: U256) -> Self {
        Self {
            txs: BTreeMap::new(),
            state_nonce,
            balance,
            pending_count: 0,
            pending_cost: U256::ZERO,
            pending_bytes: 0,
            total_bytes: 0,
        }
    }

    pub(super) fn pending_nonce(&self) -> u64 {
        self.state_nonce + self.pending_count
    }

    pub(super) fn is_pending(&self, nonce: u64) -> bool {
        nonce >= self.state_nonce && nonce < self.pending_nonce()
    }

    pub(super) fn queued_count(&self) -> usize {
        self.txs.len() - self.pending_count as usize
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.total_bytes - self.pending_bytes
    }

    pub(super) fn pending(&self) -> impl DoubleEndedIterator<Item = &PoolTransaction> {
        self.txs
            .range(self.state_nonce..self.pending_nonce())
            .map(|(_, tx)| tx)
    }

    pub(super) fn queued(&self) -> impl Iterator<Item = &PoolTransaction> {
        let pending = self.state_nonce..self.pending_nonce();
        self.txs
            .iter()
            .filter(move |(n, _)| !pending.contains(n))
            .map(|(_, tx)| tx)
    }

    /// Highest-nonce pending transaction.
    pub(super) fn pending_tail(&self) -> Option<&PoolTransaction> {
        if self.pending_count == 0 {
            return None;
        }
        self.txs.get(&(self.pending_nonce() - 1))
    }

    /// Highest-nonce queued transaction. Queued transactions below the state
    /// nonce can't exist (they're pruned), so the map's last entry is queued
    /// exactly when it lies at or past the pending nonce.
    pub(super) fn queued_tail(&self) -> Option<&PoolTransaction> {
        self.txs
            .last_key_value()
            .filter(|(n, _)| **n >= self.pending_nonce())
            .map(|(_, tx)| tx)
    }

    /// Inserts (or replaces) without promoting. The caller has already
    /// checked that a replaced pending transaction keeps the pending cost
    /// within the balance.
    pub(super) fn insert(&mut self, tx: PoolTransaction) -> Option<PoolTransaction> {
        let pending = self.is_pending(tx.nonce);
        self.total_bytes += tx.encoded_len;
        if pending {
            self.pending_bytes += tx.encoded_len;
            self.pending_cost += tx.cost();
        }
        let old = self.txs.insert(tx.nonce, tx)?;
        self.total_bytes -= old.encoded_len;
        if pending {
            self.pending_bytes -= old.encoded_len;
            self.pending_cost -= old.cost();
        }
        Some(old)
    }

    /// Extends the pending run while the next nonce is pooled and affordable.
    /// Returns how many transactions were promoted.
    pub(super) fn promote(&mut self) -> u64 {
        let mut promoted = 0;
        while let Some(tx) = self.txs.get(&self.pending_nonce()) {
            let cost = self.pending_cost.saturating_add(tx.cost());
            if cost > self.balance {
                break;
            }
            self.pending_cost = cost;
            self.pending_bytes += tx.encoded_len;
            self.pending_count += 1;
            promoted += 1;
        }
        promoted
    }

    /// Shrinks the pending run to end before `nonce`. Returns how many
    /// transactions were demoted.
    pub(super) fn demote_from(&mut self, nonce: u64) -> u64 {
        let from = nonce.max(self.state_nonce);
        let end = self.pending_nonce();
        if from >= end {
            return 0;
        }
        for (_, tx) in self.txs.range(from..end) {
            self.pending_cost -= tx.cost();
            self.pending_bytes -= tx.encoded_len;
        }
        self.pending_count = from - self.state_nonce;
        end - from
    }

    /// Removes one transaction; later pending ones lose their predecessor and
    /// become queued.
    pub(super) fn remove(&mut self, nonce: u64) -> Option<PoolTransaction> {
        if !self.txs.contains_key(&nonce) {
            return None;
        }
        self.demote_from(nonce);
        let tx = self.txs.remove(&nonce)?;
        self.total_bytes -= tx.encoded_len;
        Some(tx)
    }

    /// Adopts a new account nonce and balance: drops transactions below the
    /// nonce and recomputes the pending run from scratch. Returns the dropped
    /// transactions.
    pub(super) fn set_state(&mut self, nonce: u64, balance: U256) -> Vec<PoolTransaction> {
        let kept = self.txs.split_off(&nonce);
        let stale: Vec<_> = std::mem::replace(&mut self.txs, kept)
            .into_values()
            .collect();
        self.total_bytes -= stale.iter().map(|tx| tx.encoded_len).sum::<usize>();
        self.state_nonce = nonce;
        self.balance = balance;
        self.pending_count = 0;
        self.pending_cost = U256::ZERO;
        self.pending_bytes = 0;
        self.promote();
        stale
    }
}
