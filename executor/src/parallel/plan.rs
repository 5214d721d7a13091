//! Lanes: a cheap guess, before execution, of which transactions depend on each other.
//!
//! Transactions that share a key are put in one lane and run in order on one worker; lanes
//! are then packed onto the workers. Keys are the sender, the recipient when it also sends
//! in the window, the addresses and slots of the access list, and for calls into contracts
//! either the contract or, for the ERC-20 calls whose arguments say which balances they
//! touch, one key per (token, holder). A wrong guess costs time, never correctness: the
//! validation after execution catches every dependency the keys missed.

use super::digest;
use crate::block::RecoveredTx;
use alloy_consensus::Transaction;
use alloy_primitives::{Address, B256, TxKind, U256};
use std::sync::Arc;

/// A key for the whole of an account (its balance, nonce, code, all its storage).
fn account_key(address: &Address) -> u64 {
    account_key_of(digest::address(address))
}

/// [`account_key`] from the address's digest.
fn account_key_of(address: u64) -> u64 {
    digest::pair(address, 0)
}

/// A key for one storage slot (from an access list).
fn slot_key(address: &Address, slot: &B256) -> u64 {
    digest::pair(digest::address(address), digest::slot(slot) | 1)
}

/// What the window does to one ERC-20 holder's balance.
struct Holder {
    /// Its first transaction (the lane it joins).
    first: u32,
    /// Transactions crediting it.
    credits: u32,
    /// Something may lower it (or its allowances).
    debited: bool,
    /// It also sends in the window.
    sends: bool,
    /// Its index in [`Plan::hot`], once it is predicted.
    hot: Option<u32>,
}

impl Holder {
    fn new(first: usize, sends: bool) -> Self {
        Self {
            first: first as u32,
            credits: 0,
            debited: false,
            sends,
            hot: None,
        }
    }
}

const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// The `n`th ABI word of `input` as an address, if it is one.
fn address_arg(input: &[u8], n: usize) -> Option<Address> {
    let word = input.get(4 + 32 * n..4 + 32 * (n + 1))?;
    word[..12]
        .iter()
        .all(|b| *b == 0)
        .then(|| Address::from_slice(&word[12..]))
}

/// How a window is split across workers.
#[derive(Debug)]
pub(super) struct Plan {
    /// Window indices per worker, each in block order.
    pub groups: Vec<Vec<u32>>,
    /// Per group, in ascending order, the positions from which the rest of the group holds
    /// whole lanes: where a worker done early may take the rest over (see
    /// [`super::crew::Claim`]) without splitting a lane, whose later transactions would
    /// then miss its earlier ones' writes.
    pub splits: Vec<Vec<u32>>,
    /// Number of lanes found.
    pub lanes: usize,
    /// Gas weight of the heaviest worker.
    pub max_group_weight: u64,
    /// Gas weight of the window.
    pub total_weight: u64,
    /// Token holders credited by several transactions and touched by nothing else the
    /// hints can see: their balance is predicted instead of serialising the credits.
    pub hot: Vec<HotCredit>,
    /// Per window transaction, the hot credit it makes.
    pub predictions: Vec<Option<Prediction>>,
}

/// A token holder many transactions of the window credit.
#[derive(Debug)]
pub(super) struct HotCredit {
    /// The token contract.
    pub token: Address,
    /// The credited holder.
    pub holder: Address,
    /// (window index, amount) of each credit, in block order.
    pub txs: Vec<(u32, U256)>,
    /// Sum of the amounts.
    pub total: U256,
}

/// A transaction's hot credit: its balance slot is expected to hold the value before the
/// window plus `prefix` (the credits of the earlier transactions).
#[derive(Clone, Copy, Debug)]
pub(super) struct Prediction {
    /// Index into [`Plan::hot`].
    pub hot: u32,
    /// Sum of the amounts credited to the holder earlier in the window.
    pub prefix: U256,
    /// This transaction's credit.
    pub amount: U256,
}

/// Fewest credits to one holder in a window for its balance to be predicted.
const HOT_MIN_CREDITS: u32 = 3;

/// What the hints say a transaction touches besides its sender.
#[derive(Clone, Copy)]
enum Touch {
    None,
    /// The lane of an account that also sends in the window (its first transaction).
    Sender(u32),
    /// Everything about an account (a contract called with arguments the hints do not read).
    Account(u64),
    /// A token call: the holders (indices into the holder list) whose balance it may lower,
    /// and the one it credits ([`NO_HOLDER`] for none).
    Holders {
        debited: [u32; 2],
        credited: u32,
        /// The ABI word of the call's input holding the credited amount.
        amount_word: u8,
    },
}

/// An access list's entry, as the joining pass uses it.
#[derive(Clone, Copy)]
enum Listed {
    /// An account that also sends in the window: its lane (its first transaction).
    Sender(u32),
    /// An account or slot key.
    Key(u64),
}

/// No holder, in [`Touch::Holders`].
const NO_HOLDER: u32 = u32::MAX;

/// The balances an ERC-20 call moves, read from its arguments.
struct Erc20Call {
    /// Holders whose balance (or allowance) the call reads and may lower.
    debited: [Option<Address>; 2],
    /// The holder credited.
    credited: Option<Address>,
    /// The ABI word holding the amount credited.
    amount_word: u8,
}

fn erc20_call(sender: Address, input: &[u8]) -> Option<Erc20Call> {
    let selector = input.get(..4)?;
    if selector == TRANSFER {
        let to = address_arg(input, 0)?;
        input.get(36..68)?;
        Some(Erc20Call {
            debited: [Some(sender), None],
            credited: Some(to),
            amount_word: 1,
        })
    } else if selector == TRANSFER_FROM {
        let from = address_arg(input, 0)?;
        let to = address_arg(input, 1)?;
        input.get(68..100)?;
        Some(Erc20Call {
            debited: [Some(from), Some(sender)],
            credited: Some(to),
            amount_word: 2,
        })
    } else if selector == APPROVE {
        let spender = address_arg(input, 0)?;
        Some(Erc20Call {
            debited: [Some(sender), Some(spender)],
            credited: None,
            amount_word: 0,
        })
    } else {
        None
    }
}

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    /// Joins the sets of `a` and `b`; returns the joined set's weight if they were apart.
    fn union(&mut self, a: u32, b: u32, weights: &mut [u64]) -> Option<u64> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return None;
        }
        // The smaller index is the root, so a lane is named by its first transaction.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        weights[lo as usize] += weights[hi as usize];
        Some(weights[lo as usize])
    }
}

/// A window's senders, the first step of [`plan`]: per transaction its gas and its
/// sender's first transaction (the lane it joins).
pub(super) struct Senders {
    /// Per transaction, its gas; once lanes are joined, per lane root, the lane's.
    weights: Vec<u64>,
    total_weight: u64,
    /// Most gas one lane may carry.
    limit: u64,
    /// Per sender: its first transaction and its gas.
    by_address: digest::Map<(u32, u64)>,
    /// Per transaction, its sender's first transaction.
    first_of_sender: Vec<u32>,
}

/// Finds the window's senders; `None` as soon as one sender carries more than `max_share`
/// of the window's gas (a chain of one sender's transactions): such a window runs
/// sequentially, and this step alone, the cheapest, tells.
pub(super) fn senders(window: &[Arc<RecoveredTx>], max_share: f64) -> Option<Senders> {
    let n = window.len();
    let weights: Vec<u64> = window.iter().map(|tx| tx.gas_limit()).collect();
    let total_weight: u64 = weights.iter().sum();
    let limit = (max_share * total_weight as f64) as u64;
    let mut by_address: digest::Map<(u32, u64)> = digest::map(n);
    let mut first_of_sender = Vec::with_capacity(n);
    for (i, tx) in window.iter().enumerate() {
        let gas = weights[i];
        let (first, weight) = by_address
            .entry(digest::address(&tx.signer()))
            .or_insert((i as u32, 0));
        *weight += gas;
        if *weight > limit {
            return None;
        }
        first_of_sender.push(*first);
    }
    Some(Senders {
        weights,
        total_weight,
        limit,
        by_address,
        first_of_sender,
    })
}

/// Splits `window` (with its [`senders`]) into lanes and packs them onto `workers` groups,
/// heaviest lane first onto the lightest group. `has_code` says whether an address holds a
/// contract before the window.
///
/// Returns `None` as soon as one lane is bound to carry more than the senders' share limit
/// of the window's gas: such a window runs sequentially, and finding out early keeps that
/// cheap.
pub(super) fn plan(
    window: &[Arc<RecoveredTx>],
    senders: Senders,
    workers: usize,
    mut has_code: impl FnMut(Address) -> bool,
    mut predictable: impl FnMut(Address) -> bool,
) -> Option<Plan> {
    let n = window.len();
    let Senders {
        mut weights,
        total_weight,
        limit,
        by_address: senders,
        first_of_sender,
    } = senders;
    // Most windows call a handful of contracts many times: remember the last answer.
    let mut last_code: Option<(Address, bool, u64)> = None;
    let mut contract = |address: Address| match last_code {
        Some((last, answer, key)) if last == address => answer.then_some(key),
        _ => {
            let answer = has_code(address);
            let key = digest::address(&address);
            last_code = Some((address, answer, key));
            answer.then_some(key)
        }
    };

    // What each transaction touches, and per token holder: its first transaction, how
    // often it is credited, and whether anything may lower its balance.
    let mut holder_index: digest::Map<u32> = digest::map(2 * n);
    let mut holders: Vec<Holder> = Vec::with_capacity(2 * n);
    let mut holder = |token: u64, address: &Address, i: usize| -> u32 {
        let key = digest::address(address);
        *holder_index
            .entry(digest::pair(token, key))
            .or_insert_with(|| {
                holders.push(Holder::new(i, senders.contains_key(&key)));
                holders.len() as u32 - 1
            })
    };
    let mut touches: Vec<Touch> = Vec::with_capacity(n);
    // What access lists name, read here so the joining pass below reads no transaction
    // but the hot credits': per transaction with a list, its entries in `listed`.
    let mut listed: Vec<Listed> = Vec::new();
    let mut lists: Vec<(u32, u32, u32)> = Vec::new();
    for (i, tx) in window.iter().enumerate() {
        let touch = match tx.kind() {
            TxKind::Call(to) => {
                if let Some(&(first, _)) = senders.get(&digest::address(&to)) {
                    Touch::Sender(first)
                } else if tx.input().is_empty() {
                    // A payment; guessing it needs no state lookup (a payment into a
                    // contract that does more than accept it is caught later).
                    Touch::None
                } else if let Some(token) = contract(to) {
                    match erc20_call(tx.signer(), tx.input()) {
                        Some(call) => Touch::Holders {
                            debited: call
                                .debited
                                .map(|h| h.map_or(NO_HOLDER, |h| holder(token, &h, i))),
                            credited: call.credited.map_or(NO_HOLDER, |to| holder(token, &to, i)),
                            amount_word: call.amount_word,
                        },
                        None => Touch::Account(account_key_of(token)),
                    }
                } else {
                    // A recipient without code that does not send is only credited: no key.
                    Touch::None
                }
            }
            TxKind::Create => Touch::None,
        };
        touches.push(touch);
        if let Some(list) = tx.access_list()
            && !list.is_empty()
        {
            let start = listed.len() as u32;
            for item in list.iter() {
                if let Some((first, _)) = senders.get(&digest::address(&item.address)) {
                    listed.push(Listed::Sender(*first));
                } else if item.storage_keys.is_empty() {
                    listed.push(Listed::Key(account_key(&item.address)));
                } else {
                    listed.extend(
                        item.storage_keys
                            .iter()
                            .map(|slot| Listed::Key(slot_key(&item.address, slot))),
                    );
                }
            }
            lists.push((i as u32, start, listed.len() as u32));
        }
    }
    for touch in &touches {
        if let Touch::Holders {
            debited, credited, ..
        } = *touch
        {
            for h in debited {
                if h != NO_HOLDER {
                    holders[h as usize].debited = true;
                }
            }
            if credited != NO_HOLDER {
                holders[credited as usize].credits += 1;
            }
        }
    }

    let mut uf = UnionFind::new(n);
    let mut owner: digest::Map<u32> = digest::map(0);
    let mut hot: Vec<HotCredit> = Vec::new();
    let mut predictions = vec![None; n];
    let mut joins: Vec<u32> = Vec::with_capacity(8);
    let mut keys: Vec<u64> = Vec::with_capacity(8);
    let mut next_list = 0;
    for (i, tx) in window.iter().enumerate() {
        joins.clear();
        keys.clear();
        joins.push(first_of_sender[i]);
        match touches[i] {
            Touch::None => {}
            Touch::Sender(first) => joins.push(first),
            Touch::Account(key) => keys.push(key),
            Touch::Holders {
                debited,
                credited,
                amount_word,
            } => {
                for h in debited {
                    if h != NO_HOLDER {
                        joins.push(holders[h as usize].first);
                    }
                }
                if credited != NO_HOLDER {
                    let holder = &mut holders[credited as usize];
                    if holder.hot.is_none()
                        && holder.credits >= HOT_MIN_CREDITS
                        && !holder.debited
                        && !holder.sends
                    {
                        // The holder's address is read again only when it becomes hot.
                        let holder_address = tx
                            .to()
                            .zip(erc20_call(tx.signer(), tx.input()).and_then(|c| c.credited));
                        if let Some((token, to)) = holder_address
                            && predictable(token)
                        {
                            holder.hot = Some(hot.len() as u32);
                            hot.push(HotCredit {
                                token,
                                holder: to,
                                txs: Vec::with_capacity(holder.credits as usize),
                                total: U256::ZERO,
                            });
                        }
                    }
                    match holder.hot {
                        Some(h) => {
                            let at = 4 + 32 * usize::from(amount_word);
                            let amount = U256::from_be_slice(&tx.input()[at..at + 32]);
                            let entry = &mut hot[h as usize];
                            predictions[i] = Some(Prediction {
                                hot: h,
                                prefix: entry.total,
                                amount,
                            });
                            entry.total = entry.total.wrapping_add(amount);
                            entry.txs.push((i as u32, amount));
                        }
                        _ => joins.push(holder.first),
                    }
                }
            }
        }
        if let Some(&(_, start, end)) = lists.get(next_list)
            && lists[next_list].0 == i as u32
        {
            next_list += 1;
            for entry in &listed[start as usize..end as usize] {
                match *entry {
                    Listed::Sender(first) => joins.push(first),
                    Listed::Key(key) => keys.push(key),
                }
            }
        }
        for key in &keys {
            match owner.entry(*key) {
                std::collections::hash_map::Entry::Occupied(first) => joins.push(*first.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
            }
        }
        for &first in &joins {
            if first != i as u32
                && let Some(weight) = uf.union(first, i as u32, &mut weights)
                && weight > limit
            {
                return None;
            }
        }
    }

    // Lanes are named by their root (their first transaction); `weights` already holds each
    // root's total. Longest processing time first, ties by first transaction so the plan is
    // deterministic; then one pass in block order deals each transaction to its lane's group.
    let roots: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
    let mut lane_roots: Vec<u32> = (0..n as u32).filter(|&i| roots[i as usize] == i).collect();
    let lane_count = lane_roots.len();
    // Stable, and the roots are in block order: ties go by first transaction. Most lanes
    // of a large window weigh the same, and a stable sort finds that run in one pass.
    lane_roots.sort_by_key(|r| std::cmp::Reverse(weights[*r as usize]));
    let workers = workers.max(1);
    let mut group_weights = vec![0u64; workers];
    let mut group_of_root = vec![0u32; n];
    for root in lane_roots {
        let (lightest, _) = group_weights
            .iter()
            .enumerate()
            .min_by_key(|(g, w)| (**w, *g))
            .expect("at least one worker");
        group_weights[lightest] += weights[root as usize];
        group_of_root[root as usize] = lightest as u32;
    }
    let mut groups: Vec<Vec<u32>> = group_weights
        .iter()
        .map(|w| {
            Vec::with_capacity((n as u128 * *w as u128 / total_weight.max(1) as u128) as usize + 1)
        })
        .collect();
    // A lane's root is its first transaction, so it comes first in the lane's group too.
    let mut position = vec![0u32; n];
    for (i, root) in roots.iter().enumerate() {
        let group = &mut groups[group_of_root[*root as usize] as usize];
        position[i] = group.len() as u32;
        group.push(i as u32);
    }
    let max_group_weight = group_weights.iter().copied().max().unwrap_or(0);
    let groups: Vec<Vec<u32>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
    // The rest of a group from position `p` holds whole lanes if no lane there started
    // before `p`.
    let splits = groups
        .iter()
        .map(|group| {
            let mut splits = Vec::new();
            let mut earliest = u32::MAX;
            for p in (1..group.len()).rev() {
                let root = roots[group[p] as usize];
                earliest = earliest.min(position[root as usize]);
                if earliest >= p as u32 {
                    splits.push(p as u32);
                }
            }
            splits.reverse();
            splits
        })
        .collect();
    Some(Plan {
        groups,
        splits,
        lanes: lane_count,
        max_group_weight,
        total_weight,
        hot,
        predictions,
    })
}

/// Deals `window` to `workers` groups round-robin, ignoring dependencies.
pub(super) fn round_robin(window: &[Arc<RecoveredTx>], workers: usize) -> Plan {
    let workers = workers.max(1);
    let mut groups = vec![Vec::new(); workers.min(window.len())];
    let mut weights = vec![0u64; groups.len()];
    for (i, tx) in window.iter().enumerate() {
        groups[i % workers].push(i as u32);
        weights[i % workers] += tx.gas_limit();
    }
    // Dependencies are left to validation here, so a group may be split anywhere.
    let splits = groups
        .iter()
        .map(|g| (1..g.len() as u32).collect())
        .collect();
    Plan {
        groups,
        splits,
        lanes: window.len(),
        max_group_weight: weights.iter().copied().max().unwrap_or(0),
        total_weight: weights.iter().sum(),
        hot: Vec::new(),
        predictions: vec![None; window.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Signed, TxEip1559, TxEnvelope, transaction::Recovered};
    use alloy_primitives::{Bytes, Signature, U256};

    fn tx(from: u8, to: Address, input: Vec<u8>) -> Arc<RecoveredTx> {
        let inner = TxEip1559 {
            to: TxKind::Call(to),
            gas_limit: 50_000,
            input: Bytes::from(input),
            value: U256::ZERO,
            ..Default::default()
        };
        let signed = Signed::new_unhashed(inner, Signature::test_signature());
        Arc::new(Recovered::new_unchecked(
            TxEnvelope::from(signed).into(),
            Address::with_last_byte(from),
        ))
    }

    /// Both steps of planning.
    fn plan(
        window: &[Arc<RecoveredTx>],
        workers: usize,
        max_share: f64,
        has_code: impl FnMut(Address) -> bool,
        predictable: impl FnMut(Address) -> bool,
    ) -> Option<Plan> {
        super::plan(
            window,
            senders(window, max_share)?,
            workers,
            has_code,
            predictable,
        )
    }

    #[test]
    fn a_sender_with_most_of_the_gas_or_a_lane_with_most_of_it_runs_sequentially() {
        let token = Address::repeat_byte(0xee);
        // Five of eight transactions from one sender: more than half the gas.
        let mut window: Vec<_> = (0..5).map(|_| tx(1, Address::ZERO, Vec::new())).collect();
        window.extend((2..5).map(|from| tx(from, Address::ZERO, Vec::new())));
        assert!(senders(&window, 0.5).is_none());
        assert!(senders(&window, 0.7).is_some());
        // Eight senders, but every call goes to one contract it does not understand: one
        // lane, found only when the lanes are joined.
        let window: Vec<_> = (0..8)
            .map(|from| tx(from, token, vec![1, 2, 3, 4]))
            .collect();
        let senders = senders(&window, 0.5).expect("no sender has half the gas");
        assert!(super::plan(&window, senders, 2, |a| a == token, |_| false).is_none());
    }

    fn transfer(to: Address) -> Vec<u8> {
        let mut input = TRANSFER.to_vec();
        input.extend_from_slice(&[0u8; 12]);
        input.extend_from_slice(to.as_slice());
        input.extend_from_slice(&[0u8; 32]);
        input
    }

    #[test]
    fn erc20_transfers_between_distinct_holders_are_separate_lanes() {
        let token = Address::repeat_byte(0xee);
        let window: Vec<_> = (1..=8)
            .map(|i| tx(i, token, transfer(Address::with_last_byte(100 + i))))
            .collect();
        let plan = plan(&window, 2, 1.0, |a| a == token, |_| false).unwrap();
        assert_eq!(plan.lanes, 8);
        assert_eq!(plan.groups.len(), 2);
        assert_eq!(plan.groups[0].len() + plan.groups[1].len(), 8);
    }

    #[test]
    fn a_group_splits_only_between_whole_lanes() {
        // Payments to fresh accounts: lanes by sender only. Sender 1's two transactions
        // are one lane, so its group cannot be split between them.
        let window: Vec<_> = [1, 2, 1, 3, 4, 5]
            .into_iter()
            .map(|from| tx(from, Address::with_last_byte(100 + from), Vec::new()))
            .collect();
        let plan = plan(&window, 2, 1.0, |_| false, |_| false).unwrap();
        assert_eq!(plan.groups, vec![vec![0, 2, 4], vec![1, 3, 5]]);
        assert_eq!(plan.splits, vec![vec![2], vec![1, 2]]);
    }

    #[test]
    fn a_shared_holder_or_unknown_call_joins_lanes() {
        let token = Address::repeat_byte(0xee);
        let hot = Address::with_last_byte(200);
        let mut window: Vec<_> = (1..=4).map(|i| tx(i, token, transfer(hot))).collect();
        window.push(tx(9, token, vec![1, 2, 3, 4]));
        window.push(tx(10, token, vec![1, 2, 3, 4]));
        let plan = plan(&window, 2, 1.0, |a| a == token, |_| false).unwrap();
        assert_eq!(plan.lanes, 2);
    }

    fn word(bytes: &[u8]) -> [u8; 32] {
        let mut word = [0u8; 32];
        word[32 - bytes.len()..].copy_from_slice(bytes);
        word
    }

    #[test]
    fn hot_credits_are_predicted_with_their_amounts_in_block_order() {
        let token = Address::repeat_byte(0xee);
        let hot = Address::with_last_byte(200);
        let mut window: Vec<_> = (1..=3u8)
            .map(|i| {
                let mut input = TRANSFER.to_vec();
                input.extend_from_slice(&word(hot.as_slice()));
                input.extend_from_slice(&word(&[i * 10]));
                tx(i, token, input)
            })
            .collect();
        // transferFrom(owner, hot, 7): the amount is the third word.
        let mut input = TRANSFER_FROM.to_vec();
        input.extend_from_slice(&word(Address::with_last_byte(50).as_slice()));
        input.extend_from_slice(&word(hot.as_slice()));
        input.extend_from_slice(&word(&[7]));
        window.push(tx(4, token, input));
        let plan = plan(&window, 2, 1.0, |a| a == token, |_| true).unwrap();
        assert_eq!(plan.hot.len(), 1);
        let credit = &plan.hot[0];
        assert_eq!((credit.token, credit.holder), (token, hot));
        let amounts: Vec<(u32, u64)> = credit.txs.iter().map(|(i, a)| (*i, a.to())).collect();
        assert_eq!(amounts, vec![(0, 10), (1, 20), (2, 30), (3, 7)]);
        assert_eq!(credit.total, U256::from(67));
        let prefixes: Vec<u64> = plan
            .predictions
            .iter()
            .map(|p| p.expect("every credit predicted").prefix.to())
            .collect();
        assert_eq!(prefixes, vec![0, 10, 30, 60]);
        // Predicted credits do not join lanes: one per sender.
        assert_eq!(plan.lanes, 4);
    }

    fn with_access_list(
        from: u8,
        to: Address,
        entries: Vec<(Address, Vec<B256>)>,
    ) -> Arc<RecoveredTx> {
        let inner = TxEip1559 {
            to: TxKind::Call(to),
            gas_limit: 50_000,
            access_list: alloy_eips::eip2930::AccessList(
                entries
                    .into_iter()
                    .map(
                        |(address, storage_keys)| alloy_eips::eip2930::AccessListItem {
                            address,
                            storage_keys,
                        },
                    )
                    .collect(),
            ),
            ..Default::default()
        };
        let signed = Signed::new_unhashed(inner, Signature::test_signature());
        Arc::new(Recovered::new_unchecked(
            TxEnvelope::from(signed).into(),
            Address::with_last_byte(from),
        ))
    }

    #[test]
    fn calls_and_access_lists_naming_one_account_or_slot_share_a_lane() {
        let contract = Address::repeat_byte(0xcc);
        let other = Address::repeat_byte(0xdd);
        let (slot, another_slot) = (B256::with_last_byte(1), B256::with_last_byte(2));
        let window = vec![
            // A call the hints cannot read, and a payment listing the contract: one lane.
            tx(1, contract, vec![1, 2, 3, 4]),
            with_access_list(2, Address::with_last_byte(200), vec![(contract, vec![])]),
            // Two transactions listing the same slot of another contract: one lane.
            with_access_list(3, Address::with_last_byte(201), vec![(other, vec![slot])]),
            with_access_list(4, Address::with_last_byte(202), vec![(other, vec![slot])]),
            // A different slot of that contract: a lane of its own.
            with_access_list(
                5,
                Address::with_last_byte(203),
                vec![(other, vec![another_slot])],
            ),
            // A payment to an account that also sends in the window joins that sender.
            tx(6, Address::with_last_byte(1), vec![]),
        ];
        let plan = plan(&window, 2, 1.0, |a| a == contract || a == other, |_| false).unwrap();
        assert_eq!(plan.lanes, 3);
        let group_of = |i: u32| plan.groups.iter().position(|g| g.contains(&i)).unwrap();
        assert_eq!(group_of(0), group_of(1));
        assert_eq!(group_of(0), group_of(5));
        assert_eq!(group_of(2), group_of(3));
    }

    #[test]
    fn digests_tell_addresses_and_slots_apart() {
        let a = Address::with_last_byte(1);
        let b = Address::with_last_byte(2);
        assert_eq!(digest::address(&a), digest::address(&a));
        assert_ne!(digest::address(&a), digest::address(&b));
        assert_ne!(account_key(&a), account_key(&b));
        let slot = B256::with_last_byte(7);
        assert_ne!(slot_key(&a, &slot), slot_key(&b, &slot));
        assert_ne!(slot_key(&a, &slot), slot_key(&a, &B256::with_last_byte(8)));
        assert_ne!(slot_key(&a, &slot), account_key(&a));
    }
}
