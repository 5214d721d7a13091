//! Property tests of the incremental state root on a real RocksDB store.
//!
//! Random sequences of blocks insert, update and delete accounts and slots (slots set to
//! zero, accounts emptied or deleted, storage cleared and rewritten in the same block). After
//! every block:
//! - the incremental root equals a full recomputation over the flat state (`root::state_root`
//!   on the model), and the root the stored tries give;
//! - the stored branch nodes, hashed state and storage roots are exactly what a rebuild from
//!   scratch gives (so nothing stale survives to poison a later block);
//! - proofs of random present and absent accounts and slots verify against the root with
//!   alloy-trie's verifier and carry the model's values.

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, keccak256};
use lanes_executor::{
    SealedBlock, StateChanges, Storage, StorageOptions, StoredAccount,
    root::{self, FlatState},
    state::AccountChange,
    trie::{self, AccountProof},
};
use proptest::prelude::*;

/// Accounts the blocks draw from; a few never get created, for absence proofs.
const ACCOUNTS: u64 = 160;
/// Address 0 is a "big" contract with many slots, so its storage trie has stored nodes
/// several levels deep; the others get a handful.
const BIG_SLOTS: u64 = 600;
const SMALL_SLOTS: u64 = 6;

fn address(i: u64) -> Address {
    Address::from_word(keccak256(i.to_be_bytes()))
}

#[derive(Clone, Debug)]
enum Op {
    /// New nonce/balance, some slots written (zero deletes).
    Update {
        nonce: u64,
        balance: u64,
        code: bool,
        slots: Vec<(u64, u64)>,
    },
    /// Storage cleared (re-creation), then some slots written.
    Recreate {
        balance: u64,
        slots: Vec<(u64, u64)>,
    },
    /// The account becomes empty but stays.
    Empty,
    /// Self-destructed or touched while empty: gone with its storage.
    Delete,
}

fn slots(big: bool, max: usize) -> impl Strategy<Value = Vec<(u64, u64)>> {
    let universe = if big { BIG_SLOTS } else { SMALL_SLOTS };
    // A third of the writes clear the slot.
    prop::collection::vec(
        (0..universe, prop_oneof![Just(0u64), 1..1_000u64, 1..3u64]),
        0..max,
    )
}

fn op(index: u64) -> impl Strategy<Value = Op> {
    let big = index == 0;
    let max = if big { 120 } else { 4 };
    prop_oneof![
        6 => (0..50u64, 0..1_000_000u64, any::<bool>(), slots(big, max))
            .prop_map(|(nonce, balance, code, slots)| Op::Update { nonce, balance, code, slots }),
        1 => (0..1_000u64, slots(big, max)).prop_map(|(balance, slots)| Op::Recreate { balance, slots }),
        1 => Just(Op::Empty),
        1 => Just(Op::Delete),
    ]
}

fn block() -> impl Strategy<Value = Vec<(u64, Op)>> {
    prop::collection::vec(
        (0..ACCOUNTS).prop_flat_map(|i| op(i).prop_map(move |op| (i, op))),
        1..40,
    )
}

/// The first block creates most accounts (and a big storage trie), so later blocks work on
/// a trie with stored nodes.
fn genesis_block() -> impl Strategy<Value = Vec<(u64, Op)>> {
    (
        prop::collection::vec(
            (0..50u64, 1..1_000_000u64, slots(false, 4)),
            (ACCOUNTS - 10) as usize,
        ),
        slots(true, 500),
    )
        .prop_map(|(accounts, big)| {
            accounts
                .into_iter()
                .enumerate()
                .map(|(i, (nonce, balance, slots))| {
                    let slots = if i == 0 { big.clone() } else { slots };
                    (
                        i as u64,
                        Op::Update {
                            nonce,
                            balance,
                            code: i % 3 == 0,
                            slots,
                        },
                    )
                })
                .collect()
        })
}

fn to_changes(ops: &[(u64, Op)]) -> StateChanges {
    let mut changes = StateChanges::default();
    for (index, op) in ops {
        let mut change = AccountChange::default();
        let write = |change: &mut AccountChange, slots: &[(u64, u64)]| {
            for (slot, value) in slots {
                change.storage.insert(U256::from(*slot), U256::from(*value));
            }
        };
        match op {
            Op::Update {
                nonce,
                balance,
                code,
                slots,
            } => {
                change.info = Some(StoredAccount {
                    nonce: *nonce,
                    balance: U256::from(*balance),
                    code_hash: if *code {
                        keccak256(index.to_be_bytes())
                    } else {
                        KECCAK256_EMPTY
                    },
                });
                write(&mut change, slots);
            }
            Op::Recreate { balance, slots } => {
                change.info = Some(StoredAccount {
                    nonce: 1,
                    balance: U256::from(*balance),
                    code_hash: keccak256(b"code"),
                });
                change.storage_cleared = true;
                write(&mut change, slots);
            }
            Op::Empty => {
                change.info = Some(StoredAccount {
                    code_hash: KECCAK256_EMPTY,
                    ..Default::default()
                });
            }
            Op::Delete => change.storage_cleared = true,
        }
        // Later ops on the same account in one block replace earlier ones, as the
        // executor's folded changes do.
        changes.accounts.insert(address(*index), change);
    }
    changes
}

/// Recent blocks whose state the test stores keep for proofs.
const HISTORY: usize = 3;

fn open() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        &StorageOptions {
            cache_bytes: 8 << 20,
            sync: lanes_executor::CommitSync::Never,
        },
    )
    .unwrap()
    .with_history(HISTORY)
    .unwrap();
    (dir, storage)
}

fn commit(storage: &Storage, number: u64, changes: &StateChanges) -> B256 {
    let root = storage.state_root(changes).unwrap();
    let header = Header {
        number,
        state_root: root,
        ..Default::default()
    };
    storage
        .commit_block(&SealedBlock::new(header, vec![], vec![]), changes)
        .unwrap();
    root
}

fn check_proof(storage: &Storage, model: &FlatState, root: B256, who: Address, slots: &[B256]) {
    let (_, proof): (_, AccountProof) = storage.account_proof(who, slots).unwrap();
    check_proved(proof, model, root, who, slots);
}

fn check_proved(proof: AccountProof, model: &FlatState, root: B256, who: Address, slots: &[B256]) {
    assert_eq!(proof.state_root, root);
    trie::verify_account_proof(root, &proof)
        .unwrap_or_else(|e| panic!("proof of {who} does not verify: {e}"));
    let expected = model.accounts.get(&who);
    assert_eq!(
        proof.account.map(|a| (a.nonce, a.balance, a.code_hash)),
        expected.map(|a| (a.nonce, a.balance, a.code_hash))
    );
    let no_slots = Default::default();
    let model_slots = model.storage.get(&who).unwrap_or(&no_slots);
    assert_eq!(proof.storage_root(), root::storage_root(model_slots));
    for (slot, proved) in slots.iter().zip(&proof.storage) {
        assert_eq!(proved.slot, *slot);
        let value = model_slots
            .get(&U256::from_be_bytes(slot.0))
            .copied()
            .unwrap_or_default();
        assert_eq!(proved.value, value, "slot {slot} of {who}");
    }
}

fn run_blocks(first: Vec<(u64, Op)>, blocks: Vec<Vec<(u64, Op)>>, probes: Vec<(u64, Vec<u64>)>) {
    let (_dir, storage) = open();
    let mut model = FlatState::default();
    // (block number, model, root) of the blocks whose state the store keeps.
    let mut recent: std::collections::VecDeque<(u64, FlatState, B256)> = Default::default();
    for (number, ops) in std::iter::once(first).chain(blocks).enumerate() {
        let changes = to_changes(&ops);
        model.apply(&changes);
        let root = commit(&storage, number as u64 + 1, &changes);
        recent.push_back((number as u64 + 1, model.clone(), root));
        if recent.len() > HISTORY {
            let (gone, ..) = recent.pop_front().unwrap();
            assert!(
                storage
                    .account_proof_at(gone, address(0), &[])
                    .unwrap()
                    .is_none(),
                "block {gone} is older than the kept history"
            );
        }
        assert_eq!(
            root,
            root::state_root(&model),
            "block {number}: incremental root"
        );
        assert_eq!(
            storage.trie_root().unwrap(),
            root,
            "block {number}: stored trie root"
        );
        let check = storage.verify_state_root().unwrap();
        assert!(
            check.is_ok(),
            "block {number}: stored tries differ from a rebuild: {check:?}"
        );
        for (account, slots) in &probes {
            let slots: Vec<B256> = slots.iter().map(|s| B256::from(U256::from(*s))).collect();
            check_proof(&storage, &model, root, address(*account), &slots);
            // The same proof at every kept block, against that block's state.
            for (at, model, root) in &recent {
                let ((proved_at, _), proof) = storage
                    .account_proof_at(*at, address(*account), &slots)
                    .unwrap()
                    .unwrap_or_else(|| panic!("block {at} is kept"));
                assert_eq!(proved_at, *at);
                check_proved(proof, model, *root, address(*account), &slots);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn incremental_root_matches_full_recomputation(
        first in genesis_block(),
        blocks in prop::collection::vec(block(), 1..8),
        probes in prop::collection::vec(
            (0..ACCOUNTS + 4, prop::collection::vec(0..BIG_SLOTS, 0..4)), 1..4),
    ) {
        run_blocks(first, blocks, probes);
    }

    #[test]
    fn small_tries_and_empty_states(
        blocks in prop::collection::vec(
            prop::collection::vec((0..6u64).prop_flat_map(|i| op(i).prop_map(move |op| (i, op))), 1..6),
            1..10),
        probes in prop::collection::vec((0..8u64, prop::collection::vec(0..BIG_SLOTS, 0..3)), 1..3),
    ) {
        run_blocks(Vec::new(), blocks, probes);
    }
}

/// Deleting everything brings back the empty root, and the tables end up empty.
#[test]
fn deleting_everything_empties_the_trie() {
    let (_dir, storage) = open();
    let mut ops: Vec<(u64, Op)> = (0..100)
        .map(|i| {
            (
                i,
                Op::Update {
                    nonce: 1,
                    balance: i + 1,
                    code: false,
                    slots: (0..if i == 0 { 300 } else { 3 })
                        .map(|s| (s, s + 1))
                        .collect(),
                },
            )
        })
        .collect();
    let root = commit(&storage, 1, &to_changes(&ops));
    assert_ne!(root, alloy_trie::EMPTY_ROOT_HASH);
    for (_, op) in &mut ops {
        *op = Op::Delete;
    }
    let root = commit(&storage, 2, &to_changes(&ops));
    assert_eq!(root, alloy_trie::EMPTY_ROOT_HASH);
    let check = storage.verify_state_root().unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(check.hashed.accounts, 0);
    let mut model = FlatState::default();
    model.apply(&to_changes(&ops));
    check_proof(&storage, &model, root, address(0), &[B256::ZERO]);
}

/// A larger state, with deep stored nodes, through many small blocks.
#[test]
fn many_blocks_over_a_larger_state() {
    let (_dir, storage) = open();
    let mut model = FlatState::default();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let mut changes = StateChanges::default();
    for i in 0..3_000u64 {
        let mut change = AccountChange {
            info: Some(StoredAccount {
                nonce: i,
                balance: U256::from(i),
                code_hash: KECCAK256_EMPTY,
            }),
            ..Default::default()
        };
        let slots = if i < 2 { 3_000 } else { 2 };
        for s in 0..slots {
            change.storage.insert(U256::from(s), U256::from(s + 1));
        }
        changes.accounts.insert(address(i), change);
    }
    model.apply(&changes);
    commit(&storage, 1, &changes);
    // The point of the exercise: a small block reads a small part of the state.
    let mut small = StateChanges::default();
    small.accounts.insert(
        address(0),
        AccountChange {
            info: Some(StoredAccount {
                nonce: 9,
                balance: U256::from(9),
                code_hash: KECCAK256_EMPTY,
            }),
            storage: [(U256::from(7), U256::from(70))].into_iter().collect(),
            ..Default::default()
        },
    );
    let update = storage.state_trie_update(&small).unwrap();
    assert!(
        update.leaves_read < 100,
        "read {} leaves for a one-slot block",
        update.leaves_read
    );
    assert!(
        update.account_nodes.iter().any(|(path, _)| path.is_empty()),
        "root node stored"
    );
    assert!(
        update.storages[0]
            .nodes
            .iter()
            .any(|(path, _)| path.len() >= 2),
        "deep storage nodes"
    );
    for number in 2..30 {
        let mut changes = StateChanges::default();
        for _ in 0..next(60) + 1 {
            let i = next(3_100);
            let mut change = AccountChange {
                info: Some(StoredAccount {
                    nonce: next(9),
                    balance: U256::from(next(1000)),
                    code_hash: KECCAK256_EMPTY,
                }),
                ..Default::default()
            };
            match next(20) {
                0 => change.info = None,
                1 => change.storage_cleared = true,
                _ => {}
            }
            for _ in 0..next(if i < 2 { 200 } else { 4 }) {
                let value = if next(3) == 0 { 0 } else { next(100) };
                change
                    .storage
                    .insert(U256::from(next(3_200)), U256::from(value));
            }
            changes.accounts.insert(address(i), change);
        }
        model.apply(&changes);
        let root = commit(&storage, number, &changes);
        assert_eq!(root, root::state_root(&model), "block {number}");
        if number % 7 == 0 {
            let check = storage.verify_state_root().unwrap();
            assert!(check.is_ok(), "block {number}: {check:?}");
        }
        let slots: Vec<B256> = (0..5)
            .map(|_| B256::from(U256::from(next(3_200))))
            .collect();
        check_proof(&storage, &model, root, address(next(2)), &slots);
        check_proof(&storage, &model, root, address(next(3_200)), &slots[..1]);
    }
}

/// Blocks wide enough for the parallel path (hundreds of changes per trie), mostly updates
/// (composed directly) with inserts and deletes mixed in (which send parts of the walk back
/// to the hash builder).
#[test]
fn wide_blocks_over_a_larger_state() {
    let (_dir, storage) = open();
    let mut model = FlatState::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let account = |nonce: u64, balance: u64| StoredAccount {
        nonce,
        balance: U256::from(balance),
        code_hash: KECCAK256_EMPTY,
    };
    let mut changes = StateChanges::default();
    for i in 0..4_000u64 {
        let mut change = AccountChange {
            info: Some(account(i, i)),
            ..Default::default()
        };
        if i == 0 {
            for s in 0..4_000u64 {
                change.storage.insert(U256::from(s), U256::from(s + 1));
            }
        }
        changes.accounts.insert(address(i), change);
    }
    model.apply(&changes);
    commit(&storage, 1, &changes);
    for number in 2..12 {
        let mut changes = StateChanges::default();
        let mut contract = AccountChange {
            info: Some(account(1, 1)),
            ..Default::default()
        };
        for _ in 0..400 {
            let slot = next(4_400);
            let value = match next(10) {
                0 => 0,
                _ => next(1_000_000) + 1,
            };
            contract.storage.insert(U256::from(slot), U256::from(value));
        }
        for _ in 0..400 {
            let i = next(4_300) + 1;
            let info = if next(12) == 0 {
                None
            } else {
                Some(account(next(50), next(1_000_000)))
            };
            changes.accounts.insert(
                address(i),
                AccountChange {
                    info,
                    ..Default::default()
                },
            );
        }
        changes.accounts.insert(address(0), contract);
        model.apply(&changes);
        let root = commit(&storage, number, &changes);
        assert_eq!(root, root::state_root(&model), "block {number}");
        if number % 3 == 0 {
            let check = storage.verify_state_root().unwrap();
            assert!(check.is_ok(), "block {number}: {check:?}");
        }
        let slots: Vec<B256> = (0..4)
            .map(|_| B256::from(U256::from(next(4_400))))
            .collect();
        check_proof(&storage, &model, root, address(0), &slots);
        check_proof(&storage, &model, root, address(next(4_300)), &[]);
    }
}
