//! Incremental Ethereum state root and EIP-1186 proofs over tries persisted in RocksDB.
//!
//! Beside the flat state, storage keeps (all in the block's write batch, see
//! [`crate::storage`]):
//! - the hashed state: `keccak(address)` → account leaf (RLP of [`TrieAccount`], storage root
//!   included) and `keccak(address) ‖ keccak(slot)` → storage leaf (RLP of the value), so
//!   leaves come out in trie order;
//! - the intermediate branch nodes of the account trie and of every storage trie, in
//!   alloy-trie's compact form ([`BranchNodeCompact`]: child masks and the hashes of the
//!   children that are branches).
//!
//! A block's root ([`state_update`]) hashes the changed keys, recomputes the storage tries of
//! the accounts whose storage changed (in parallel, on rayon's global pool), then the account
//! trie; each trie is a [`walk`] that reuses the stored hashes of every subtree the block did
//! not touch. The cost follows what the block changed, not the size of the state.
//!
//! Proofs ([`account_proof`]) run the same walk over the persisted tries with the requested
//! keys as targets and keep the nodes on their paths.

pub(crate) mod cache;
pub(crate) mod db;
pub mod nodes;
pub mod walk;

use crate::{
    error::{ExecutorError, ExecutorResult},
    state::StateChanges,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieAccount};
use db::TrieTables;
use rayon::prelude::*;
pub use walk::{
    EmptySource, LeafChange, NodeChange, PrefixSet, TrieOutput, TrieSource, compute_root,
    compute_root_parallel, compute_root_with_old, proof_for, prove, sort_changes,
};

/// What a block does to one account's storage trie.
#[derive(Clone, Debug, Default)]
pub struct StorageTrieUpdate {
    /// `keccak(address)`.
    pub hashed_address: B256,
    /// Every slot and node stored before is gone (account deleted or storage cleared);
    /// `slots` and `nodes` start from an empty trie.
    pub wiped: bool,
    /// Changed slots: hashed slot → RLP of the new value, `None` when the slot is cleared.
    pub slots: Vec<LeafChange>,
    /// Branch nodes to write or delete.
    pub nodes: Vec<NodeChange>,
    /// The new storage root (empty-trie root for deleted accounts).
    pub root: B256,
}

/// What a block does to the hashed state and the tries: everything
/// [`crate::Storage::commit_block`] writes beside the flat state.
#[derive(Clone, Debug, Default)]
pub struct StateTrieUpdate {
    /// The new state root.
    pub root: B256,
    /// Changed accounts: hashed address → RLP of the new [`TrieAccount`], `None` when the
    /// account is deleted.
    pub accounts: Vec<LeafChange>,
    /// Account trie branch nodes to write or delete.
    pub account_nodes: Vec<NodeChange>,
    /// Storage tries touched by the block (changed slots, cleared or deleted accounts).
    pub storages: Vec<StorageTrieUpdate>,
    /// Persisted leaves the walks read (cost measure).
    pub leaves_read: usize,
}

/// RLP of a storage value as the trie stores it.
pub fn storage_leaf(value: &U256) -> Vec<u8> {
    alloy_rlp::encode(value)
}

/// One changed account, hashed.
struct Hashed {
    hashed_address: B256,
    info: Option<crate::state::StoredAccount>,
    wiped: bool,
    slots: Vec<LeafChange>,
}

fn hash_changes(changes: &StateChanges) -> Vec<Hashed> {
    let mut hashed: Vec<Hashed> = changes
        .accounts
        .par_iter()
        .map(|(address, change)| {
            let deleted = change.info.is_none();
            let wiped = deleted || change.storage_cleared;
            let mut slots: Vec<LeafChange> = if deleted {
                Vec::new()
            } else {
                change
                    .storage
                    .iter()
                    // Clearing a slot of a wiped trie is a no-op.
                    .filter(|(_, value)| !(wiped && value.is_zero()))
                    .map(|(slot, value)| {
                        (
                            keccak256(B256::from(*slot)),
                            (!value.is_zero()).then(|| storage_leaf(value)),
                        )
                    })
                    .collect()
            };
            slots.sort_unstable_by_key(|(key, _)| *key);
            Hashed {
                hashed_address: keccak256(address),
                info: change.info,
                wiped,
                slots,
            }
        })
        .collect();
    hashed.sort_unstable_by_key(|h| h.hashed_address);
    hashed
}

/// The root and the trie writes for `changes` on top of the state `tables` holds.
pub(crate) fn state_update(
    tables: &TrieTables<'_>,
    changes: &StateChanges,
) -> ExecutorResult<StateTrieUpdate> {
    let hashed = hash_changes(changes);

    // Storage tries first (the account leaves need their roots), in parallel: they are
    // independent of each other. Meanwhile the changed accounts are read as stored: their
    // storage roots carry over when the block leaves their storage alone, and their old
    // leaves tell the account trie walk which leaf children it can replace in place.
    let keys: Vec<B256> = hashed.iter().map(|h| h.hashed_address).collect();
    let (storages, old_accounts) = rayon::join(
        || storage_updates(tables, &hashed),
        || tables.accounts(&keys),
    );
    let (storages, old_accounts) = (storages?, old_accounts?);
    let old_roots: Vec<B256> = old_accounts
        .iter()
        .map(|raw| {
            raw.as_deref().map_or(Ok(EMPTY_ROOT_HASH), |raw| {
                Ok(db::decode_account(raw)?.storage_root)
            })
        })
        .collect::<ExecutorResult<_>>()?;

    let mut accounts = Vec::with_capacity(hashed.len());
    let mut storages = storages;
    let mut leaves_read = 0;
    for ((h, storage), old_root) in hashed.into_iter().zip(&mut storages).zip(&old_roots) {
        if let Some((update, _)) = storage {
            update.slots = h.slots;
        }
        let Some(info) = h.info else {
            accounts.push((h.hashed_address, None));
            continue;
        };
        let storage_root = match storage {
            Some((update, read)) => {
                leaves_read += *read;
                update.root
            }
            None if h.wiped => EMPTY_ROOT_HASH,
            None => *old_root,
        };
        let leaf = TrieAccount {
            nonce: info.nonce,
            balance: info.balance,
            storage_root,
            code_hash: info.code_hash,
        };
        accounts.push((h.hashed_address, Some(alloy_rlp::encode(leaf))));
    }
    let output = compute_root_parallel(&|| tables.account_trie(), &accounts, Some(&old_accounts))?;
    Ok(StateTrieUpdate {
        root: output.root,
        accounts,
        account_nodes: output.nodes,
        storages: storages
            .into_iter()
            .flatten()
            .map(|(update, _)| update)
            .collect(),
        leaves_read: leaves_read + output.leaves_read,
    })
}

/// The storage tries of the accounts in `hashed` whose storage the block touches
/// (`result[i]` belongs to `hashed[i]`), with the persisted leaves they read.
fn storage_updates(
    tables: &TrieTables<'_>,
    hashed: &[Hashed],
) -> ExecutorResult<Vec<Option<(StorageTrieUpdate, usize)>>> {
    let touched: Vec<B256> = hashed
        .iter()
        .filter(|h| h.wiped || !h.slots.is_empty())
        .map(|h| h.hashed_address)
        .collect();
    let mut old_roots = tables.accounts(&touched)?.into_iter();
    let old_roots: Vec<B256> = hashed
        .iter()
        .map(|h| {
            if !h.wiped && h.slots.is_empty() {
                return Ok(EMPTY_ROOT_HASH);
            }
            match old_roots.next().flatten() {
                Some(raw) => Ok(db::decode_account(&raw)?.storage_root),
                None => Ok(EMPTY_ROOT_HASH),
            }
        })
        .collect::<ExecutorResult<_>>()?;
    hashed
        .par_iter()
        .zip(&old_roots)
        .map(|(h, old_root)| {
            // Only a trie that had slots has anything to delete: most deleted accounts
            // (empty ones, EIP-161) never had storage.
            let wipe = h.wiped && *old_root != EMPTY_ROOT_HASH;
            if !wipe && h.slots.is_empty() {
                return Ok(None);
            }
            let mut update = StorageTrieUpdate {
                hashed_address: h.hashed_address,
                wiped: wipe,
                slots: Vec::new(),
                nodes: Vec::new(),
                root: EMPTY_ROOT_HASH,
            };
            if h.info.is_none() {
                return Ok(Some((update, 0)));
            }
            let output = if h.wiped || *old_root == EMPTY_ROOT_HASH {
                compute_root(&mut EmptySource, &h.slots)?
            } else {
                let open = || tables.storage_trie(&h.hashed_address);
                compute_root_parallel(&open, &h.slots, None)?
            };
            update.root = output.root;
            update.nodes = output.nodes;
            Ok(Some((update, output.leaves_read)))
        })
        .collect()
}

/// The root of the persisted account trie, from its stored nodes (cheap: with nothing
/// changed, the walk only reads the root node's children).
pub(crate) fn stored_root(tables: &TrieTables<'_>) -> ExecutorResult<B256> {
    Ok(compute_root(&mut tables.account_trie(), &[])?.root)
}

/// An EIP-1186 proof of one account and some of its storage slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The account.
    pub address: Address,
    /// The account leaf; `None` if the account does not exist (the proof shows its absence).
    pub account: Option<TrieAccount>,
    /// Account trie nodes from the root to the account's leaf (or to where its path ends).
    pub proof: Vec<Bytes>,
    /// One proof per requested slot, in request order.
    pub storage: Vec<StorageProof>,
    /// The state root the proofs lead to.
    pub state_root: B256,
}

impl AccountProof {
    /// The storage root (empty-trie root for an absent account).
    pub fn storage_root(&self) -> B256 {
        self.account.map_or(EMPTY_ROOT_HASH, |a| a.storage_root)
    }
}

/// An EIP-1186 proof of one storage slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProof {
    /// The slot as requested (unhashed).
    pub slot: B256,
    /// Its value (zero when absent).
    pub value: U256,
    /// Storage trie nodes from the storage root to the slot's leaf (or to where its path
    /// ends).
    pub proof: Vec<Bytes>,
}

/// Proofs for `address` and `slots` over the persisted tries.
pub(crate) fn account_proof(
    tables: &TrieTables<'_>,
    address: Address,
    slots: &[B256],
) -> ExecutorResult<AccountProof> {
    let hashed_address = keccak256(address);
    let (state_root, nodes) = prove(&mut tables.account_trie(), &[hashed_address])?;
    let account = tables.account(&hashed_address)?;
    let proof = proof_for(&nodes, state_root, &hashed_address);

    let hashed_slots: Vec<B256> = slots.iter().map(keccak256).collect();
    let storage_root = account.map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
    let storage_nodes = if storage_root == EMPTY_ROOT_HASH || slots.is_empty() {
        None
    } else {
        let (root, nodes) = prove(&mut tables.storage_trie(&hashed_address), &hashed_slots)?;
        if root != storage_root {
            return Err(ExecutorError::corrupt(
                db::STORAGE_TRIE,
                format!(
                    "storage trie of {address} has root {root}, its account says {storage_root}"
                ),
            ));
        }
        Some(nodes)
    };
    let storage = slots
        .iter()
        .zip(&hashed_slots)
        .map(|(slot, hashed_slot)| {
            let Some(nodes) = &storage_nodes else {
                return Ok(StorageProof {
                    slot: *slot,
                    value: U256::ZERO,
                    proof: Vec::new(),
                });
            };
            let value = match tables.storage_value(&hashed_address, hashed_slot)? {
                Some(raw) => alloy_rlp::decode_exact::<U256>(&raw)
                    .map_err(|e| ExecutorError::corrupt(db::HASHED_STORAGE, e))?,
                None => U256::ZERO,
            };
            Ok(StorageProof {
                slot: *slot,
                value,
                proof: proof_for(nodes, storage_root, hashed_slot),
            })
        })
        .collect::<ExecutorResult<Vec<_>>>()?;
    Ok(AccountProof {
        address,
        account,
        proof,
        storage,
        state_root,
    })
}

/// Verifies `proof` against `state_root` with alloy-trie's verifier: the account proof and
/// every storage proof. For tests and tools; the RPC serves proofs without checking them.
pub fn verify_account_proof(
    state_root: B256,
    proof: &AccountProof,
) -> Result<(), alloy_trie::proof::ProofVerificationError> {
    use alloy_trie::proof::verify_proof;
    verify_proof(
        state_root,
        Nibbles::unpack(keccak256(proof.address)),
        proof.account.map(alloy_rlp::encode),
        &proof.proof,
    )?;
    for slot in &proof.storage {
        verify_proof(
            proof.storage_root(),
            Nibbles::unpack(keccak256(slot.slot)),
            (!slot.value.is_zero()).then(|| storage_leaf(&slot.value)),
            &slot.proof,
        )?;
    }
    Ok(())
}

/// Nothing persisted to reuse: every stored node is ignored (full recomputation from the
/// leaves, for verification).
struct LeavesOnly<S>(S);

impl<S: TrieSource> TrieSource for LeavesOnly<S> {
    fn seek_node(
        &mut self,
        _: &Nibbles,
    ) -> ExecutorResult<Option<(Nibbles, alloy_trie::BranchNodeCompact)>> {
        Ok(None)
    }
    fn leaves(
        &mut self,
        from: &B256,
        to: Option<&B256>,
        f: &mut dyn FnMut(&B256, &[u8]),
    ) -> ExecutorResult<()> {
        self.0.leaves(from, to, f)
    }
}

/// Result of a from-scratch recomputation over the hashed state.
#[derive(Clone, Debug, Default)]
pub struct HashedStateCheck {
    /// State root recomputed from the hashed leaves alone (storage roots included).
    pub root: B256,
    /// Accounts in the hashed state.
    pub accounts: u64,
    /// Accounts whose stored storage root differs from the recomputed one.
    pub storage_root_mismatches: Vec<B256>,
    /// Stored branch nodes that differ from what a full rebuild stores (missing, extra or
    /// different), by trie (`None`: the account trie) and path.
    pub node_mismatches: Vec<(Option<B256>, Nibbles)>,
    /// Hashed addresses with storage slots or nodes but no account.
    pub orphaned_storage: Vec<B256>,
}

impl HashedStateCheck {
    /// True when the stored tries and storage roots are exactly what a rebuild gives.
    pub fn is_consistent(&self) -> bool {
        self.storage_root_mismatches.is_empty()
            && self.node_mismatches.is_empty()
            && self.orphaned_storage.is_empty()
    }
}

fn compare_nodes(
    check: &mut HashedStateCheck,
    trie: Option<B256>,
    expected: impl IntoIterator<Item = (Nibbles, alloy_trie::BranchNodeCompact)>,
    stored: Vec<(Nibbles, alloy_trie::BranchNodeCompact)>,
) {
    let mut expected: std::collections::BTreeMap<_, _> = expected.into_iter().collect();
    for (path, node) in stored {
        if expected.remove(&path).as_ref() != Some(&node) {
            check.node_mismatches.push((trie, path));
        }
    }
    check
        .node_mismatches
        .extend(expected.into_keys().map(|path| (trie, path)));
}

/// Recomputes the state root from the hashed leaves alone, ignoring every stored node and
/// stored storage root, and compares the stored nodes and storage roots with the rebuilt
/// ones.
pub(crate) fn recompute_from_hashed(tables: &TrieTables<'_>) -> ExecutorResult<HashedStateCheck> {
    let mut check = HashedStateCheck::default();
    let mut out = walk::Emitter::with_updates();
    let mut owners = Vec::new();
    let mut failure = None;
    LeavesOnly(tables.account_trie()).leaves(&B256::ZERO, None, &mut |key, value| {
        if failure.is_some() {
            return;
        }
        let result = (|| {
            let mut account = db::decode_account(value)?;
            let storage = compute_root(&mut LeavesOnly(tables.storage_trie(key)), &[])?;
            if storage.leaves_read > 0 {
                owners.push(*key);
            }
            if storage.root != account.storage_root {
                check.storage_root_mismatches.push(*key);
                account.storage_root = storage.root;
            }
            let expected = storage.nodes.into_iter().filter_map(|(p, n)| Some((p, n?)));
            compare_nodes(
                &mut check,
                Some(*key),
                expected,
                tables.stored_nodes(Some(key))?,
            );
            out.leaf(Nibbles::unpack(key), &alloy_rlp::encode(account));
            check.accounts += 1;
            Ok::<_, ExecutorError>(())
        })();
        if let Err(err) = result {
            failure = Some(err);
        }
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    let (root, expected) = out.finish();
    check.root = root;
    compare_nodes(&mut check, None, expected, tables.stored_nodes(None)?);
    check.orphaned_storage = tables
        .storage_owners()?
        .into_iter()
        .filter(|owner| owners.binary_search(owner).is_err())
        .collect();
    Ok(check)
}
