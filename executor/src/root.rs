//! Ethereum Merkle-Patricia state root, recomputed from the full state.
//!
//! This is the simple, obviously-correct version: cost grows with the whole state. It is the
//! oracle the incremental root (a later step) is tested against.

use crate::{
    error::ExecutorResult,
    state::{StateChanges, StoredAccount},
};
use alloy_primitives::{Address, B256, U256, keccak256, map::HashMap};
use alloy_trie::{
    EMPTY_ROOT_HASH, TrieAccount,
    root::{state_root_unsorted, storage_root_unsorted},
};
use std::collections::BTreeMap;

/// Full state as plain maps, the input of [`state_root`].
#[derive(Debug, Default, Clone)]
pub struct FlatState {
    /// Accounts.
    pub accounts: BTreeMap<Address, StoredAccount>,
    /// Non-zero storage slots per account.
    pub storage: HashMap<Address, BTreeMap<U256, U256>>,
}

impl FlatState {
    /// Applies `changes` on top of this state.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, change) in &changes.accounts {
            if change.storage_cleared {
                self.storage.remove(address);
            }
            match change.info {
                Some(info) => {
                    self.accounts.insert(*address, info);
                }
                None => {
                    self.accounts.remove(address);
                    self.storage.remove(address);
                }
            }
            if change.info.is_some() && !change.storage.is_empty() {
                let slots = self.storage.entry(*address).or_default();
                for (slot, value) in &change.storage {
                    if value.is_zero() {
                        slots.remove(slot);
                    } else {
                        slots.insert(*slot, *value);
                    }
                }
            }
        }
    }
}

/// Storage root of one account's slots.
pub fn storage_root<'a>(slots: impl IntoIterator<Item = (&'a U256, &'a U256)>) -> B256 {
    storage_root_unsorted(
        slots
            .into_iter()
            .filter(|(_, value)| !value.is_zero())
            .map(|(slot, value)| (keccak256(B256::from(*slot)), *value)),
    )
}

/// The state root of `state`.
pub fn state_root(state: &FlatState) -> B256 {
    state_root_unsorted(state.accounts.iter().map(|(address, account)| {
        let storage_root = state
            .storage
            .get(address)
            .map_or(EMPTY_ROOT_HASH, storage_root);
        (
            keccak256(address),
            TrieAccount {
                nonce: account.nonce,
                balance: account.balance,
                storage_root,
                code_hash: account.code_hash,
            },
        )
    }))
}

/// The state root of a state that consists of `changes` alone (genesis).
pub fn state_root_of_changes(changes: &StateChanges) -> B256 {
    let mut state = FlatState::default();
    state.apply(changes);
    state_root(&state)
}

/// Something that can list its whole state (RocksDB, memory), for the full recomputation.
pub trait FullState {
    /// Reads the whole state into memory.
    fn flat_state(&self) -> ExecutorResult<FlatState>;

    /// The state root with `changes` applied on top. The default recomputes it from the
    /// whole state; a store with persisted tries ([`crate::Storage`]) overrides it with the
    /// incremental computation.
    fn state_root_after(&self, changes: &StateChanges) -> ExecutorResult<B256>
    where
        Self: Sized,
    {
        state_root_with(self, changes)
    }
}

/// Recomputes the state root of `base` with `changes` applied on top.
pub fn state_root_with(base: &impl FullState, changes: &StateChanges) -> ExecutorResult<B256> {
    let mut state = base.flat_state()?;
    state.apply(changes);
    Ok(state_root(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{KECCAK256_EMPTY, b256};

    #[test]
    fn empty_state_has_empty_root() {
        assert_eq!(state_root(&FlatState::default()), EMPTY_ROOT_HASH);
    }

    #[test]
    fn root_depends_on_content_not_insertion_order() {
        let account = |balance: u64| StoredAccount {
            nonce: 1,
            balance: U256::from(balance),
            code_hash: KECCAK256_EMPTY,
        };
        let mut a = FlatState::default();
        let mut b = FlatState::default();
        for i in 0..50u8 {
            a.accounts
                .insert(Address::with_last_byte(i), account(i as u64));
        }
        for i in (0..50u8).rev() {
            b.accounts
                .insert(Address::with_last_byte(i), account(i as u64));
        }
        assert_eq!(state_root(&a), state_root(&b));
        b.accounts.insert(Address::with_last_byte(7), account(8));
        assert_ne!(state_root(&a), state_root(&b));
        assert_ne!(
            state_root(&a),
            b256!("0000000000000000000000000000000000000000000000000000000000000000")
        );
    }

    #[test]
    fn zero_slots_do_not_change_the_storage_root() {
        let mut slots = BTreeMap::new();
        slots.insert(U256::from(1), U256::from(5));
        let with_value = storage_root(&slots);
        slots.insert(U256::from(2), U256::ZERO);
        assert_eq!(storage_root(&slots), with_value);
    }
}
