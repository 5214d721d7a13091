//! Block-building order over a snapshot of the pending set.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap, VecDeque},
};

use alloy_primitives::Address;

use super::PoolTransaction;

/// Pending transactions in inclusion order: highest effective tip first,
/// earlier arrival on ties, and each sender's transactions strictly in nonce
/// order (a sender's next transaction competes only once its predecessor was
/// yielded).
///
/// Owns its snapshot (cheap `Arc` clones), so the pool can keep accepting
/// transactions while a block is built. A transaction whose fee cap is below
/// the base fee is never yielded, and neither are its sender's later ones.
/// Each step costs O(log senders).
#[derive(Debug)]
pub struct BestTransactions {
    base_fee: u64,
    senders: Vec<VecDeque<PoolTransaction>>,
    index: HashMap<Address, usize>,
    heads: BinaryHeap<Head>,
}

/// A sender's next transaction, ordered so the heap's max is the best.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    tip: u128,
    seq: u64,
    sender: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.tip
            .cmp(&other.tip)
            .then_with(|| other.seq.cmp(&self.seq))
            .then_with(|| other.sender.cmp(&self.sender))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl BestTransactions {
    /// Builds from each sender's pending transactions, in nonce order.
    pub(super) fn new<'a>(
        base_fee: u64,
        per_sender: impl Iterator<Item = (Address, impl Iterator<Item = &'a PoolTransaction>)>,
    ) -> Self {
        let mut best = Self {
            base_fee,
            senders: Vec::new(),
            index: HashMap::new(),
            heads: BinaryHeap::new(),
        };
        for (address, txs) in per_sender {
            let queue: VecDeque<_> = txs.cloned().collect();
            if queue.is_empty() {
                continue;
            }
            let idx = best.senders.len();
            best.senders.push(queue);
            best.index.insert(address, idx);
            best.push_head(idx);
        }
        best
    }

    fn push_head(&mut self, sender: usize) {
        let Some(tx) = self.senders[sender].front() else {
            return;
        };
        if let Some(tip) = tx.effective_tip(self.base_fee) {
            self.heads.push(Head {
                tip,
                seq: tx.seq,
                sender,
            });
        }
    }

    /// Skips the rest of `sender`'s transactions, e.g. after one failed to
    /// execute: its successors can't run without it.
    pub fn mark_invalid(&mut self, sender: Address) {
        if let Some(&idx) = self.index.get(&sender) {
            // The stale heap entry is skipped when popped: its queue is empty.
            self.senders[idx].clear();
        }
    }

    /// Base fee the tips are computed against.
    pub fn base_fee(&self) -> u64 {
        self.base_fee
    }
}

impl Iterator for BestTransactions {
    type Item = PoolTransaction;

    fn next(&mut self) -> Option<PoolTransaction> {
        loop {
            let head = self.heads.pop()?;
            let Some(tx) = self.senders[head.sender].pop_front() else {
                continue;
            };
            self.push_head(head.sender);
            return Some(tx);
        }
    }
}
