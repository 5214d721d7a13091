use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Signature, TxKind, U256};
use proptest::prelude::*;

use super::*;
use crate::validation::TxValidationError;

const GAS: u64 = 21_000;

/// A pool transaction with a dummy signature; the pool never looks at
/// signatures, and this keeps the property test fast. The recipient is the
/// sender so that equal parameters from different senders hash differently.
fn tx_with(sender: Address, nonce: u64, max_fee: u128, tip: u128, value: u64) -> PoolTransaction {
    let inner = TxEip1559 {
        chain_id: 1,
        nonce,
        gas_limit: GAS,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(sender),
        value: U256::from(value),
        ..Default::default()
    };
    let envelope = TxEnvelope::from(inner.into_signed(Signature::test_signature()));
    PoolTransaction::new(Recovered::new_unchecked(envelope, sender))
}

fn tx(sender: Address, nonce: u64, fee: u128) -> PoolTransaction {
    tx_with(sender, nonce, fee, fee, 0)
}

fn addr(i: u8) -> Address {
    Address::repeat_byte(i + 1)
}

fn rich() -> U256 {
    U256::from(10).pow(U256::from(30))
}

fn limits() -> PoolLimits {
    PoolLimits {
        max_pending: 100,
        max_queued: 100,
        ..PoolLimits::default()
    }
}

impl Mempool {
    /// Checks every internal invariant; panics on violation.
    fn assert_invariants(&self) {
        let (mut pending, mut queued, mut pending_bytes, mut queued_bytes) = (0, 0, 0, 0);
        let mut pending_tails = BTreeSet::new();
        let mut queued_tails = BTreeSet::new();
        let mut hashes = 0;
        for (address, s) in &self.senders {
            assert!(!s.txs.is_empty(), "empty sender kept");
            assert!(s.txs.len() <= self.limits.account_slots);
            assert!(
                *s.txs.first_key_value().unwrap().0 >= s.state_nonce,
                "stale tx kept"
            );
            let mut cost = U256::ZERO;
            let mut bytes = 0;
            for n in s.state_nonce..s.pending_nonce() {
                let tx = s.txs.get(&n).expect("pending run has a gap");
                cost += tx.cost();
                bytes += tx.encoded_len;
            }
            assert_eq!(cost, s.pending_cost);
            assert_eq!(bytes, s.pending_bytes);
            assert!(cost <= s.balance, "pending run unaffordable");
            if let Some(next) = s.txs.get(&s.pending_nonce()) {
                assert!(cost + next.cost() > s.balance, "promotable tx left queued");
            }
            assert_eq!(
                s.total_bytes,
                s.txs.values().map(|t| t.encoded_len).sum::<usize>()
            );
            for (nonce, tx) in &s.txs {
                assert_eq!(tx.nonce, *nonce);
                assert_eq!(tx.sender, *address);
                assert_eq!(self.by_hash.get(&tx.hash), Some(&(*address, *nonce)));
                let is_pending = s.is_pending(*nonce);
                assert_eq!(
                    self.status(&tx.hash),
                    Some(if is_pending {
                        TxStatus::Pending
                    } else {
                        TxStatus::Queued
                    })
                );
            }
            hashes += s.txs.len();
            pending += s.pending_count as usize;
            queued += s.queued_count();
            pending_bytes += s.pending_bytes;
            queued_bytes += s.queued_bytes();
            if let Some(tx) = s.pending_tail() {
                pending_tails.insert(tail_key(self.base_fee, *address, tx));
            }
            if let Some(tx) = s.queued_tail() {
                queued_tails.insert(tail_key(self.base_fee, *address, tx));
            }
        }
        assert_eq!(hashes, self.by_hash.len());
        assert_eq!(pending, self.pending_count);
        assert_eq!(queued, self.queued_count);
        assert_eq!(pending_bytes, self.pending_bytes);
        assert_eq!(queued_bytes, self.queued_bytes);
        assert_eq!(pending_tails, self.pending_tails);
        assert_eq!(queued_tails, self.queued_tails);
        assert!(self.pending_count <= self.limits.max_pending);
        assert!(self.queued_count <= self.limits.max_queued);
    }

    /// Drains [`Self::best_transactions`], checking it yields each sender's
    /// pending run in nonce order and always the best available head.
    fn assert_best_order(&self, base_fee: u64) -> Vec<PoolTransaction> {
        let mut runs: HashMap<Address, Vec<PoolTransaction>> = HashMap::new();
        for s in self.senders.values() {
            let run: Vec<_> = s.pending().cloned().collect();
            if let Some(first) = run.first() {
                runs.insert(first.sender, run);
            }
        }
        let mut next_index: HashMap<Address, usize> = HashMap::new();
        let yielded: Vec<_> = self.best_transactions(base_fee).collect();
        for tx in &yielded {
            let idx = next_index.entry(tx.sender).or_default();
            let run = &runs[&tx.sender];
            assert_eq!(run[*idx].hash, tx.hash, "sender's txs out of nonce order");
            *idx += 1;
            // Every other sender's next tx is available and must not beat this one.
            let tip = tx
                .effective_tip(base_fee)
                .expect("yielded a tx below the base fee");
            for (sender, run) in &runs {
                let i = next_index.get(sender).copied().unwrap_or(0);
                let i = if *sender == tx.sender { i - 1 } else { i };
                if let Some(head) = run.get(i)
                    && let Some(head_tip) = head.effective_tip(base_fee)
                {
                    assert!(
                        head_tip < tip || (head_tip == tip && head.seq >= tx.seq),
                        "a better head was available"
                    );
                }
            }
        }
        // Everything executable was yielded: each run up to its first tx below
        // the base fee.
        for (sender, run) in &runs {
            let executable = run
                .iter()
                .take_while(|t| t.effective_tip(base_fee).is_some())
                .count();
            assert_eq!(next_index.get(sender).copied().unwrap_or(0), executable);
        }
        yielded
    }
}

#[test]
fn pending_queued_and_promotion_on_fill() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    let out = pool.add(tx(a, 0, 10), 0, rich()).unwrap();
    assert_eq!(out.status, TxStatus::Pending);
    assert_eq!(
        pool.add(tx(a, 2, 10), 0, rich()).unwrap().status,
        TxStatus::Queued
    );
    assert_eq!((pool.len_pending(), pool.len_queued()), (1, 1));
    assert_eq!(pool.pending_nonce(a, 0), 1);
    assert_eq!(
        pool.add(tx(a, 1, 10), 0, rich()).unwrap().status,
        TxStatus::Pending
    );
    assert_eq!((pool.len_pending(), pool.len_queued()), (3, 0));
    assert_eq!(pool.pending_nonce(a, 0), 3);
    assert_eq!(pool.pending_nonce(addr(9), 7), 7);
    assert_eq!(pool.bytes_pending(), 3 * tx(a, 0, 10).encoded_len);
    assert_eq!(pool.bytes_queued(), 0);
    assert_eq!(pool.senders().collect::<Vec<_>>(), vec![a]);
    pool.assert_invariants();
}

#[test]
fn already_known_and_nonce_bounds() {
    let mut pool = Mempool::new(PoolLimits {
        max_nonce_gap: 2,
        ..limits()
    });
    let a = addr(0);
    let t = tx(a, 5, 10);
    pool.add(t.clone(), 5, rich()).unwrap();
    assert!(pool.contains(&t.hash));
    assert_eq!(pool.get(&t.hash).unwrap().nonce, 5);
    assert_eq!(pool.add(t, 5, rich()), Err(TxValidationError::AlreadyKnown));
    assert!(matches!(
        pool.add(tx(a, 4, 10), 5, rich()),
        Err(TxValidationError::NonceTooLow {
            tx: 4,
            state: 5,
            ..
        })
    ));
    // Next nonce is 6; a gap of 2 (nonces 6, 7 missing) is the most allowed.
    pool.add(tx(a, 8, 10), 5, rich()).unwrap();
    assert!(matches!(
        pool.add(tx(a, 9, 10), 5, rich()),
        Err(TxValidationError::NonceTooHigh { tx: 9, next: 6, .. })
    ));
    pool.assert_invariants();
}

#[test]
fn replacement_needs_the_full_price_bump_on_both_caps() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    let old = tx_with(a, 0, 1000, 100, 0);
    pool.add(old.clone(), 0, rich()).unwrap();

    for (fee, tip) in [(1090, 110), (1100, 109), (1100, 100), (1000, 200)] {
        assert_eq!(
            pool.add(tx_with(a, 0, fee, tip, 0), 0, rich()),
            Err(TxValidationError::ReplacementUnderpriced),
            "fee {fee} tip {tip}"
        );
    }
    let new = tx_with(a, 0, 1100, 110, 0);
    let out = pool.add(new.clone(), 0, rich()).unwrap();
    assert_eq!(out.replaced, Some(old.hash));
    assert_eq!(out.status, TxStatus::Pending);
    assert!(!pool.contains(&old.hash));
    assert_eq!(pool.len(), 1);

    // Zero caps must still strictly increase.
    let zero = tx_with(addr(1), 0, 0, 0, 0);
    pool.add(zero, 0, rich()).unwrap();
    assert_eq!(
        pool.add(tx_with(addr(1), 0, 0, 0, 1), 0, rich()),
        Err(TxValidationError::ReplacementUnderpriced)
    );
    pool.add(tx_with(addr(1), 0, 1, 1, 0), 0, rich()).unwrap();
    pool.assert_invariants();
}

#[test]
fn replacing_an_unaffordable_queued_tx_can_make_it_pending() {
    let a = addr(0);
    let mut pool = Mempool::new(limits());
    pool.add(tx(a, 0, 10), 0, rich()).unwrap();
    let expensive = tx_with(a, 1, 10, 10, 1_000_000);
    pool.add(expensive.clone(), 0, rich()).unwrap();
    let balance = U256::from(500_000);
    let out = pool.on_block(&[], 0, [(a, AccountState { nonce: 0, balance })]);
    assert_eq!(out.demoted, 1);
    assert_eq!(pool.status(&expensive.hash), Some(TxStatus::Queued));

    // Contiguous, so it must fit the balance together with nonce 0.
    let out = pool.add(tx(a, 1, 11), 0, balance).unwrap();
    assert_eq!(out.status, TxStatus::Pending);
    assert_eq!(out.replaced, Some(expensive.hash));
    assert_eq!(
        pool.add(tx(a, 2, 20), 0, balance)
            .map_err(|e| e.to_string()),
        Err(format!(
            "insufficient funds for gas * price + value: address {a} have 500000 want 861000"
        ))
    );
    pool.assert_invariants();
}

#[test]
fn account_limit() {
    let mut pool = Mempool::new(PoolLimits {
        account_slots: 3,
        ..limits()
    });
    let a = addr(0);
    for n in 0..3 {
        pool.add(tx(a, n, 10), 0, rich()).unwrap();
    }
    assert_eq!(
        pool.add(tx(a, 3, 10), 0, rich()),
        Err(TxValidationError::AccountLimitExceeded)
    );
    // Replacements don't take a new slot.
    pool.add(tx(a, 2, 20), 0, rich()).unwrap();
    pool.add(tx(addr(1), 0, 10), 0, rich()).unwrap();
    pool.assert_invariants();
}

#[test]
fn cumulative_balance_for_pending_single_cost_for_queued() {
    let a = addr(0);
    let cost = U256::from(GAS * 10);
    let balance = cost * U256::from(2);
    let mut pool = Mempool::new(limits());
    pool.add(tx(a, 0, 10), 0, balance).unwrap();
    pool.add(tx(a, 1, 10), 0, balance).unwrap();
    assert!(matches!(
        pool.add(tx(a, 2, 10), 0, balance),
        Err(TxValidationError::InsufficientFunds { want, .. }) if want == cost * U256::from(3)
    ));
    // A queued tx only has to be affordable on its own.
    assert_eq!(
        pool.add(tx(a, 3, 10), 0, balance).unwrap().status,
        TxStatus::Queued
    );
    assert!(matches!(
        pool.add(tx(a, 4, 30), 0, balance),
        Err(TxValidationError::InsufficientFunds { .. })
    ));
    // Replacing a pending tx must keep the whole run affordable.
    assert!(matches!(
        pool.add(tx(a, 0, 11), 0, balance),
        Err(TxValidationError::InsufficientFunds { .. })
    ));
    pool.assert_invariants();
}

#[test]
fn full_pool_evicts_the_cheapest_senders_highest_nonce() {
    let mut pool = Mempool::new(PoolLimits {
        max_pending: 3,
        ..limits()
    });
    let (a, b, c, d) = (addr(0), addr(1), addr(2), addr(3));
    let a0 = tx(a, 0, 2);
    let a1 = tx(a, 1, 1);
    pool.add(a0.clone(), 0, rich()).unwrap();
    pool.add(a1.clone(), 0, rich()).unwrap();
    pool.add(tx(b, 0, 5), 0, rich()).unwrap();

    // Not strictly better than the cheapest (a1, tip 1).
    assert_eq!(
        pool.add(tx(c, 0, 1), 0, rich()),
        Err(TxValidationError::TxPoolFull)
    );
    let out = pool.add(tx(c, 0, 3), 0, rich()).unwrap();
    assert_eq!(out.evicted, vec![a1.hash]);
    assert!(pool.contains(&a0.hash));
    // a0 (tip 2) is now the cheapest tail.
    let out = pool.add(tx(d, 0, 4), 0, rich()).unwrap();
    assert_eq!(out.evicted, vec![a0.hash]);
    assert_eq!(pool.len_pending(), 3);
    pool.assert_invariants();
}

#[test]
fn eviction_ranks_by_effective_tip_at_the_base_fee() {
    let mut pool = Mempool::new(PoolLimits {
        max_pending: 2,
        ..limits()
    });
    pool.set_base_fee(100);
    // Big tip but fee cap barely over the base fee: effective tip 5.
    let capped = tx_with(addr(0), 0, 105, 50, 0);
    pool.add(capped.clone(), 0, rich()).unwrap();
    pool.add(tx_with(addr(1), 0, 200, 10, 0), 0, rich())
        .unwrap();
    let out = pool.add(tx_with(addr(2), 0, 200, 6, 0), 0, rich()).unwrap();
    assert_eq!(out.evicted, vec![capped.hash]);

    // Below the base fee ranks lowest of all.
    pool.set_base_fee(150);
    let under = tx_with(addr(3), 0, 140, 140, 0);
    assert_eq!(
        pool.add(under, 0, rich()),
        Err(TxValidationError::TxPoolFull)
    );
    pool.assert_invariants();
}

#[test]
fn full_queue_evicts_cheapest_queued() {
    let mut pool = Mempool::new(PoolLimits {
        max_queued: 2,
        ..limits()
    });
    let q1 = tx(addr(0), 5, 1);
    pool.add(q1.clone(), 0, rich()).unwrap();
    pool.add(tx(addr(1), 5, 3), 0, rich()).unwrap();
    assert_eq!(
        pool.add(tx(addr(2), 5, 1), 0, rich()),
        Err(TxValidationError::TxPoolFull)
    );
    // Pending admission is unaffected by a full queue.
    pool.add(tx(addr(2), 0, 1), 0, rich()).unwrap();
    let out = pool.add(tx(addr(2), 5, 2), 0, rich()).unwrap();
    assert_eq!(out.evicted, vec![q1.hash]);
    pool.assert_invariants();
}

#[test]
fn promotion_overflowing_pending_evicts_the_promoted_tail() {
    let mut pool = Mempool::new(PoolLimits {
        max_pending: 3,
        ..limits()
    });
    let a = addr(0);
    pool.add(tx(addr(1), 0, 50), 0, rich()).unwrap();
    pool.add(tx(a, 1, 10), 0, rich()).unwrap();
    pool.add(tx(a, 2, 1), 0, rich()).unwrap();
    let out = pool.add(tx(a, 0, 10), 0, rich()).unwrap();
    assert_eq!(out.status, TxStatus::Pending);
    assert_eq!(out.evicted, vec![tx(a, 2, 1).hash]);
    assert_eq!(pool.len_pending(), 3);
    pool.assert_invariants();
}

#[test]
fn on_block_removes_included_and_stale_and_promotes() {
    let mut pool = Mempool::new(limits());
    let (a, b) = (addr(0), addr(1));
    let a0 = tx(a, 0, 10);
    pool.add(a0.clone(), 0, rich()).unwrap();
    let a2 = tx(a, 2, 10);
    let a3 = tx(a, 3, 10);
    pool.add(a2.clone(), 0, rich()).unwrap();
    pool.add(a3.clone(), 0, rich()).unwrap();
    let b5 = tx(b, 5, 10);
    pool.add(b5.clone(), 3, rich()).unwrap();
    assert_eq!((pool.len_pending(), pool.len_queued()), (1, 3));

    // a0 and a nonce-1 tx from elsewhere were included; b's nonce jumped to 5.
    let out = pool.on_block(
        &[a0.hash],
        7,
        [
            (
                a,
                AccountState {
                    nonce: 2,
                    balance: rich(),
                },
            ),
            (
                b,
                AccountState {
                    nonce: 5,
                    balance: rich(),
                },
            ),
            (
                addr(9),
                AccountState {
                    nonce: 1,
                    balance: U256::ZERO,
                },
            ),
        ],
    );
    assert_eq!(out.included, vec![a0.hash]);
    assert!(out.stale.is_empty());
    assert_eq!(out.promoted, 3);
    assert_eq!(out.demoted, 0);
    assert_eq!((pool.len_pending(), pool.len_queued()), (3, 0));
    assert_eq!(pool.base_fee(), 7);
    assert_eq!(pool.pending_nonce(a, 2), 4);
    pool.assert_invariants();

    // Nonces used by a tx the pool didn't see make pooled ones stale.
    let out = pool.on_block(
        &[],
        7,
        [(
            a,
            AccountState {
                nonce: 3,
                balance: rich(),
            },
        )],
    );
    assert_eq!(out.stale, vec![a2.hash]);
    assert!(pool.contains(&a3.hash));
    pool.assert_invariants();
}

#[test]
fn on_block_without_account_update_still_advances_past_included() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    let a0 = tx(a, 0, 10);
    pool.add(a0.clone(), 0, rich()).unwrap();
    pool.add(tx(a, 1, 10), 0, rich()).unwrap();
    let out = pool.on_block(&[a0.hash], 0, []);
    assert_eq!(out.included, vec![a0.hash]);
    assert_eq!(pool.len_pending(), 1);
    assert_eq!(pool.pending_nonce(a, 0), 2);
    pool.assert_invariants();
}

#[test]
fn balance_drop_demotes_instead_of_dropping() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    for n in 0..3 {
        pool.add(tx(a, n, 10), 0, rich()).unwrap();
    }
    let cost = U256::from(GAS * 10);
    let out = pool.on_block(
        &[],
        0,
        [(
            a,
            AccountState {
                nonce: 0,
                balance: cost + cost / U256::from(2),
            },
        )],
    );
    assert_eq!(out.demoted, 2);
    assert_eq!((pool.len_pending(), pool.len_queued()), (1, 2));
    assert_eq!(pool.status(&tx(a, 2, 10).hash), Some(TxStatus::Queued));
    pool.assert_invariants();
    // Funds arrive: promoted back.
    let out = pool.on_block(
        &[],
        0,
        [(
            a,
            AccountState {
                nonce: 0,
                balance: rich(),
            },
        )],
    );
    assert_eq!(out.promoted, 2);
    assert_eq!(pool.len_pending(), 3);
    pool.assert_invariants();
}

#[test]
fn demotion_overflowing_the_queue_evicts() {
    let mut pool = Mempool::new(PoolLimits {
        max_queued: 1,
        ..limits()
    });
    let a = addr(0);
    for n in 0..3 {
        pool.add(tx(a, n, 10 + n as u128), 0, rich()).unwrap();
    }
    let out = pool.on_block(
        &[],
        0,
        [(
            a,
            AccountState {
                nonce: 0,
                balance: U256::from(GAS * 10),
            },
        )],
    );
    assert_eq!(out.demoted, 2);
    assert_eq!(out.evicted, vec![tx(a, 2, 12).hash]);
    assert_eq!((pool.len_pending(), pool.len_queued()), (1, 1));
    pool.assert_invariants();
}

#[test]
fn remove_demotes_later_transactions() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    for n in 0..4 {
        pool.add(tx(a, n, 10), 0, rich()).unwrap();
    }
    let out = pool.remove(&tx(a, 1, 10).hash).unwrap();
    assert_eq!(out.tx.nonce, 1);
    assert_eq!(out.demoted, 2);
    assert_eq!((pool.len_pending(), pool.len_queued()), (1, 2));
    assert!(pool.remove(&tx(a, 1, 10).hash).is_none());
    let out = pool.remove(&tx(a, 3, 10).hash).unwrap();
    assert_eq!(out.demoted, 0);
    pool.assert_invariants();
}

#[test]
fn only_queued_transactions_expire() {
    let mut pool = Mempool::new(PoolLimits {
        lifetime: Duration::from_secs(60),
        ..limits()
    });
    let a = addr(0);
    let start = Instant::now();
    let mut old_pending = tx(a, 0, 10);
    old_pending.arrival = start;
    let mut old_queued = tx(a, 2, 10);
    old_queued.arrival = start;
    let mut young_queued = tx(a, 3, 10);
    young_queued.arrival = start + Duration::from_secs(30);
    for t in [&old_pending, &old_queued, &young_queued] {
        pool.add(t.clone(), 0, rich()).unwrap();
    }
    assert!(
        pool.evict_expired(start + Duration::from_secs(60))
            .is_empty()
    );
    assert_eq!(
        pool.evict_expired(start + Duration::from_secs(61)),
        vec![old_queued.hash]
    );
    assert_eq!(
        pool.evict_expired(start + Duration::from_secs(91)),
        vec![young_queued.hash]
    );
    assert!(pool.contains(&old_pending.hash));
    pool.assert_invariants();
}

#[test]
fn add_with_newer_state_drops_stale() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    let a0 = tx(a, 0, 10);
    pool.add(a0.clone(), 0, rich()).unwrap();
    let out = pool.add(tx(a, 1, 10), 1, rich()).unwrap();
    assert_eq!(out.evicted, vec![a0.hash]);
    assert_eq!(out.status, TxStatus::Pending);
    // An older state read doesn't roll the pool back.
    assert!(matches!(
        pool.add(tx(a, 0, 20), 0, rich()),
        Err(TxValidationError::NonceTooLow { .. })
    ));
    pool.assert_invariants();
}

#[test]
fn add_adopts_a_newer_balance_at_the_same_nonce() {
    let mut pool = Mempool::new(limits());
    let a = addr(0);
    let cost = U256::from(GAS * 10);
    pool.add(tx(a, 0, 10), 0, cost).unwrap();
    pool.add(tx(a, 2, 10), 0, cost).unwrap();
    assert!(matches!(
        pool.add(tx(a, 1, 10), 0, cost),
        Err(TxValidationError::InsufficientFunds { .. })
    ));
    // Funds arrived without the pool being told; the submission's state read
    // carries them.
    let out = pool.add(tx(a, 1, 10), 0, cost * U256::from(3)).unwrap();
    assert_eq!(out.status, TxStatus::Pending);
    assert_eq!((pool.len_pending(), pool.len_queued()), (3, 0));
    pool.assert_invariants();
}

#[test]
fn best_transactions_orders_by_tip_then_arrival_within_nonce_order() {
    let mut pool = Mempool::new(limits());
    let (a, b, c) = (addr(0), addr(1), addr(2));
    pool.add(tx_with(a, 0, 100, 1, 0), 0, rich()).unwrap();
    pool.add(tx_with(a, 1, 100, 50, 0), 0, rich()).unwrap();
    pool.add(tx_with(b, 0, 100, 10, 0), 0, rich()).unwrap();
    pool.add(tx_with(c, 0, 100, 10, 0), 0, rich()).unwrap();
    pool.add(tx_with(c, 1, 100, 5, 0), 0, rich()).unwrap();
    pool.add(tx_with(c, 3, 100, 99, 0), 0, rich()).unwrap(); // queued: never yielded

    let order: Vec<_> = pool
        .assert_best_order(0)
        .iter()
        .map(|t| (t.sender, t.nonce))
        .collect();
    assert_eq!(order, vec![(b, 0), (c, 0), (c, 1), (a, 0), (a, 1)]);

    // Base fee 95: effective tips a0=1, a1=5, b0=5, c0=5, c1=5.
    let order: Vec<_> = pool
        .assert_best_order(95)
        .iter()
        .map(|t| (t.sender, t.nonce))
        .collect();
    assert_eq!(order, vec![(b, 0), (c, 0), (c, 1), (a, 0), (a, 1)]);

    // Above every fee cap: nothing.
    assert_eq!(pool.best_transactions(101).count(), 0);
}

#[test]
fn best_transactions_skips_below_base_fee_and_invalid_senders() {
    let mut pool = Mempool::new(limits());
    let (a, b) = (addr(0), addr(1));
    pool.add(tx_with(a, 0, 50, 50, 0), 0, rich()).unwrap();
    pool.add(tx_with(a, 1, 200, 200, 0), 0, rich()).unwrap();
    pool.add(tx_with(b, 0, 200, 10, 0), 0, rich()).unwrap();
    pool.add(tx_with(b, 1, 200, 10, 0), 0, rich()).unwrap();
    pool.add(tx_with(b, 2, 200, 10, 0), 0, rich()).unwrap();

    // a0 can't pay base fee 100, so a1 can't run either.
    let order: Vec<_> = pool
        .assert_best_order(100)
        .iter()
        .map(|t| (t.sender, t.nonce))
        .collect();
    assert_eq!(order, vec![(b, 0), (b, 1), (b, 2)]);

    let mut best = pool.best_transactions(0);
    assert_eq!(best.base_fee(), 0);
    let first = best.next().unwrap();
    assert_eq!((first.sender, first.nonce), (a, 0));
    let second = best.next().unwrap();
    assert_eq!((second.sender, second.nonce), (a, 1));
    let third = best.next().unwrap();
    assert_eq!((third.sender, third.nonce), (b, 0));
    best.mark_invalid(b);
    assert!(best.next().is_none());
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        sender: u8,
        nonce: u64,
        fee: u128,
        tip: u128,
        value: u64,
    },
    Block {
        take: usize,
        base_fee: u64,
        funds: Vec<(u8, u64)>,
    },
    Remove {
        pick: usize,
    },
    Expire {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..5, 0u64..10, 1u128..40, 0u128..40, 0u64..3_000_000).prop_map(
            |(sender, nonce, fee, tip, value)| Op::Add { sender, nonce, fee, tip: tip.min(fee), value }
        ),
        2 => (0usize..8, 0u64..30, prop::collection::vec((0u8..5, 0u64..4_000_000), 0..3))
            .prop_map(|(take, base_fee, funds)| Op::Block { take, base_fee, funds }),
        1 => (0usize..64).prop_map(|pick| Op::Remove { pick }),
        1 => (0u64..120).prop_map(|secs| Op::Expire { secs }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_under_random_operations(ops in prop::collection::vec(op(), 1..60)) {
        let limits = PoolLimits {
            max_pending: 8,
            max_queued: 5,
            account_slots: 6,
            max_nonce_gap: 3,
            price_bump_percent: 10,
            lifetime: Duration::from_secs(60),
            ..PoolLimits::default()
        };
        let mut pool = Mempool::new(limits);
        let start = Instant::now();
        let mut clock = 0u64;
        let mut world: HashMap<Address, AccountState> = (0..5)
            .map(|i| (addr(i), AccountState { nonce: 0, balance: U256::from(3_000_000u64) }))
            .collect();
        for op in ops {
            match op {
                Op::Add { sender, nonce, fee, tip, value } => {
                    let sender = addr(sender);
                    let mut t = tx_with(sender, nonce, fee, tip, value);
                    clock += 1;
                    t.arrival = start + Duration::from_secs(clock);
                    let account = world[&sender];
                    let before = pool.len();
                    match pool.add(t.clone(), account.nonce, account.balance) {
                        Ok(out) => {
                            prop_assert!(pool.contains(&t.hash));
                            prop_assert_eq!(pool.status(&t.hash), Some(out.status));
                            let removed = out.evicted.len() + usize::from(out.replaced.is_some());
                            prop_assert_eq!(pool.len(), before + 1 - removed);
                        }
                        Err(_) => prop_assert_eq!(pool.len(), before),
                    }
                }
                Op::Block { take, base_fee, funds } => {
                    // Execute the first `take` best txs against the world.
                    let best = pool.assert_best_order(pool.base_fee());
                    let mut included = Vec::new();
                    let mut touched: HashMap<Address, AccountState> = HashMap::new();
                    for t in best.into_iter().take(take) {
                        let account = world.get_mut(&t.sender).unwrap();
                        prop_assert_eq!(t.nonce, account.nonce);
                        prop_assert!(t.cost() <= account.balance);
                        account.nonce += 1;
                        account.balance -= t.cost();
                        touched.insert(t.sender, *account);
                        included.push(t.hash);
                    }
                    for (i, amount) in funds {
                        let account = world.get_mut(&addr(i)).unwrap();
                        // Either a deposit or a drain (e.g. a delegated account's code).
                        if amount % 2 == 0 {
                            account.balance += U256::from(amount);
                        } else {
                            account.balance = account.balance.saturating_sub(U256::from(amount));
                        }
                        touched.insert(addr(i), *account);
                    }
                    let before = pool.len();
                    let out = pool.on_block(&included, base_fee, touched);
                    prop_assert_eq!(out.included.len(), included.len());
                    prop_assert_eq!(
                        pool.len(),
                        before - out.included.len() - out.stale.len() - out.evicted.len()
                    );
                }
                Op::Remove { pick } => {
                    let all: Vec<B256> = pool
                        .pending_transactions()
                        .chain(pool.queued_transactions())
                        .map(|t| t.hash)
                        .collect();
                    if !all.is_empty() {
                        let hash = all[pick % all.len()];
                        let before = pool.len();
                        let out = pool.remove(&hash).unwrap();
                        prop_assert_eq!(out.tx.hash, hash);
                        prop_assert!(!pool.contains(&hash));
                        prop_assert_eq!(pool.len(), before - 1 - out.evicted.len());
                    }
                }
                Op::Expire { secs } => {
                    let now = start + Duration::from_secs(secs);
                    for hash in pool.evict_expired(now) {
                        prop_assert!(!pool.contains(&hash));
                    }
                    for t in pool.queued_transactions() {
                        prop_assert!(now.saturating_duration_since(t.arrival) <= Duration::from_secs(60));
                    }
                }
            }
            pool.assert_invariants();
            for s in pool.senders.values() {
                // on_block was told about every change, so the views agree.
                let account = world[&s.txs.values().next().unwrap().sender];
                prop_assert_eq!(s.state_nonce, account.nonce);
                prop_assert_eq!(s.balance, account.balance);
            }
            let _ = pool.assert_best_order(pool.base_fee());
        }
    }
}

#[test]
fn take_fresh_yields_what_became_ready_since_the_last_look() {
    let mut pool = Mempool::new(limits());
    let (a, b, c) = (addr(0), addr(1), addr(2));
    pool.add(tx(a, 0, 10), 0, rich()).unwrap();
    let first: Vec<_> = pool.take_best(0).map(|t| (t.sender, t.nonce)).collect();
    assert_eq!(first, vec![(a, 0)]);
    assert!(!pool.has_fresh());
    let from = |offered: &[(Address, u64)]| {
        let offered = offered.to_vec();
        move |sender: &Address| {
            Some(
                offered
                    .iter()
                    .find(|(s, _)| s == sender)
                    .map_or(0, |(_, n)| *n),
            )
        }
    };

    // a's next nonce and a new sender b are fresh; c's gapped transaction is only queued.
    pool.add(tx(a, 1, 10), 0, rich()).unwrap();
    pool.add(tx(b, 0, 20), 0, rich()).unwrap();
    pool.add(tx(c, 1, 30), 0, rich()).unwrap();
    assert!(pool.has_fresh());
    let fresh: Vec<_> = pool
        .take_fresh(0, from(&[(a, 1)]))
        .map(|t| (t.sender, t.nonce))
        .collect();
    assert_eq!(fresh, vec![(b, 0), (a, 1)]);
    assert!(!pool.has_fresh());
    assert_eq!(pool.take_fresh(0, from(&[])).count(), 0);

    // Filling c's gap makes both of its transactions ready; a sender the builder leaves
    // out (`None`) is not yielded.
    pool.add(tx(c, 0, 30), 0, rich()).unwrap();
    pool.add(tx(b, 1, 20), 0, rich()).unwrap();
    let fresh: Vec<_> = pool
        .take_fresh(0, |sender| (*sender != b).then_some(0))
        .map(|t| (t.sender, t.nonce))
        .collect();
    assert_eq!(fresh, vec![(c, 0), (c, 1)]);

    // A new snapshot starts tracking afresh.
    pool.add(tx(a, 2, 10), 0, rich()).unwrap();
    assert!(pool.has_fresh());
    assert_eq!(pool.take_best(0).count(), 7);
    assert!(!pool.has_fresh());
    pool.assert_invariants();
}
