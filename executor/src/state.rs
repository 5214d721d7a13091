//! State access: the [`StateReader`] seam, the per-block change set ([`StateChanges`]) and
//! [`BlockState`], the revm database the executors run on.
//!
//! Reads go: changes made earlier in the block (or by blocks not yet committed, when
//! pipelined) → a per-block read cache → the underlying reader (RocksDB). revm's journal only
//! keeps state for one transaction, so without the cache every transaction would go back to
//! RocksDB for the sender, the recipient and the fee recipient.

use crate::error::{ExecutorError, ExecutorResult};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256, map::HashMap};
use parking_lot::Mutex;
use revm::{
    Database, DatabaseCommit, DatabaseRef,
    bytecode::Bytecode,
    primitives::AddressMap,
    state::{Account, AccountInfo},
};
use std::sync::Arc;

/// The consensus part of an account, without its storage root (which the state root code
/// derives) and without its code (stored by hash).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredAccount {
    /// Account nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// keccak256 of the code, [`KECCAK256_EMPTY`] for accounts without code.
    pub code_hash: B256,
}

impl StoredAccount {
    /// An account that does not exist yet as it reads once touched: no nonce, no balance, no
    /// code.
    pub const EMPTY: Self = Self {
        nonce: 0,
        balance: U256::ZERO,
        code_hash: KECCAK256_EMPTY,
    };

    /// Fixed-size encoding used in the `accounts` column family: nonce (8, BE), balance (32,
    /// BE), code hash (32).
    pub fn encode(&self) -> [u8; 72] {
        let mut out = [0u8; 72];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    /// Inverse of [`StoredAccount::encode`].
    pub fn decode(bytes: &[u8]) -> ExecutorResult<Self> {
        if bytes.len() != 72 {
            return Err(ExecutorError::corrupt(
                "accounts",
                format!("length {}", bytes.len()),
            ));
        }
        Ok(Self {
            nonce: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }

    /// True for an account EIP-161 considers empty.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance.is_zero() && self.code_hash == KECCAK256_EMPTY
    }

    fn to_info(self) -> AccountInfo {
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            // Left to `code_by_hash`, so the analysed bytecode comes from the cache.
            code: if self.code_hash == KECCAK256_EMPTY {
                Some(Bytecode::default())
            } else {
                None
            },
            ..Default::default()
        }
    }
}

/// Read access to a consistent state (the seam between execution and storage).
///
/// Implemented by the RocksDB store (latest committed state, or a snapshot of it) and by
/// [`OverlayReader`] (a store plus blocks executed but not yet committed).
pub trait StateReader: Send + Sync {
    /// The account at `address`, `None` if it does not exist.
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>>;
    /// The value of a storage slot (zero if unset).
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256>;
    /// Contract code by hash.
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>>;
    /// Hash of the canonical block `number`, for the BLOCKHASH opcode.
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>>;
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        (**self).storage(address, slot)
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        (**self).code(hash)
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        (**self).block_hash(number)
    }
}

impl<T: StateReader + ?Sized> StateReader for Arc<T> {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        (**self).storage(address, slot)
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        (**self).code(hash)
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        (**self).block_hash(number)
    }
}

/// What one account became: `info: None` means the account was deleted (self-destructed or
/// touched while empty, EIP-161).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// New account data, `None` when the account no longer exists.
    pub info: Option<StoredAccount>,
    /// Every previously stored slot is gone (self-destruct, deletion or re-creation); only
    /// `storage` below is valid.
    pub storage_cleared: bool,
    /// Slots written (a zero value deletes the slot).
    pub storage: HashMap<U256, U256>,
}

/// All state changes of one or more consecutive blocks, in the form storage commits and the
/// state root consumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Changed accounts.
    pub accounts: HashMap<Address, AccountChange>,
    /// New contract code by hash.
    pub codes: HashMap<B256, Bytes>,
}

impl StateChanges {
    /// Applies revm's post-transaction state, with the commit rules revm documents for the
    /// database layer: untouched accounts are skipped; self-destructed accounts and touched
    /// empty accounts (EIP-161) are deleted with their storage; a newly created account starts
    /// from empty storage.
    pub fn apply_evm_state(&mut self, state: impl IntoIterator<Item = (Address, Account)>) {
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let entry = self.accounts.entry(address).or_default();
            if account.is_selfdestructed() || account.is_empty() {
                entry.info = None;
                entry.storage_cleared = true;
                entry.storage.clear();
                continue;
            }
            if account.is_created() {
                entry.storage_cleared = true;
                entry.storage.clear();
            }
            let info = &account.info;
            if info.code_hash != KECCAK256_EMPTY
                && let Some(code) = &info.code
            {
                self.codes
                    .entry(info.code_hash)
                    .or_insert_with(|| code.original_bytes());
            }
            entry.info = Some(StoredAccount {
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
            });
            for (slot, value) in account.changed_storage_slots() {
                entry.storage.insert(*slot, value.present_value());
            }
        }
    }

    /// Folds `later` (changes made after `self`) into `self`.
    pub fn extend(&mut self, later: StateChanges) {
        for (address, change) in later.accounts {
            let entry = self.accounts.entry(address).or_default();
            if change.storage_cleared {
                entry.storage_cleared = true;
                entry.storage.clear();
            }
            entry.info = change.info;
            entry.storage.extend(change.storage);
        }
        self.codes.extend(later.codes);
    }

    /// Adds `amount` to the balance of `address` (creating it if needed) on top of `base`.
    pub fn credit(
        &mut self,
        base: &impl StateReader,
        address: Address,
        amount: U256,
    ) -> ExecutorResult<()> {
        if amount.is_zero() {
            return Ok(());
        }
        let current = match self.accounts.get(&address) {
            Some(change) => change.info,
            None => base.account(address)?,
        };
        let mut account = current.unwrap_or(StoredAccount::EMPTY);
        account.balance = account.balance.saturating_add(amount);
        self.accounts.entry(address).or_default().info = Some(account);
        Ok(())
    }

    /// Looks up an account in the changes: `None` if untouched here, `Some(None)` if deleted.
    pub fn account(&self, address: &Address) -> Option<Option<StoredAccount>> {
        self.accounts.get(address).map(|c| c.info)
    }

    /// Looks up a slot in the changes: `None` if the changes say nothing about it.
    pub fn storage(&self, address: &Address, slot: &U256) -> Option<U256> {
        let change = self.accounts.get(address)?;
        match change.storage.get(slot) {
            Some(value) => Some(*value),
            None if change.storage_cleared => Some(U256::ZERO),
            None => None,
        }
    }
}

/// A reader that sees `changes` on top of `base`: the post-state of blocks executed but not
/// yet committed.
#[derive(Clone, Debug)]
pub struct OverlayReader<R> {
    /// The committed state underneath.
    pub base: R,
    /// Changes not yet committed, oldest first already folded together.
    pub changes: Arc<StateChanges>,
    /// Hashes of blocks above the committed head that are not in `base` yet.
    pub block_hashes: Arc<HashMap<u64, B256>>,
}

impl<R: StateReader> StateReader for OverlayReader<R> {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        match self.changes.account(&address) {
            Some(info) => Ok(info),
            None => self.base.account(address),
        }
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        match self.changes.storage(&address, &slot) {
            Some(value) => Ok(value),
            None => self.base.storage(address, slot),
        }
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        match self.changes.codes.get(&hash) {
            Some(code) => Ok(Some(code.clone())),
            None => self.base.code(hash),
        }
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        match self.block_hashes.get(&number) {
            Some(hash) => Ok(Some(*hash)),
            None => self.base.block_hash(number),
        }
    }
}

/// Analyses stored code for the EVM. Code that starts like an EIP-7702 delegation but is
/// not a well-formed one is plain legacy code, as geth reads it (revm's `new_raw` would
/// panic on it).
pub(crate) fn analyse_code(bytes: Bytes) -> Bytecode {
    match Bytecode::new_raw_checked(bytes.clone()) {
        Ok(code) => code,
        Err(_) => Bytecode::new_legacy(bytes),
    }
}

/// The analysed code of `hash` from its loaded bytes; code a contract's hash names but the
/// store lacks means the store is corrupt.
pub(crate) fn loaded_code(hash: B256, bytes: Option<Bytes>) -> ExecutorResult<Bytecode> {
    let bytes = bytes.ok_or_else(|| {
        ExecutorError::corrupt("bytecode", format!("missing code for hash {hash}"))
    })?;
    Ok(analyse_code(bytes))
}

/// Analysed bytecode shared across blocks: analysis (jump tables) is paid once per contract,
/// not once per transaction.
#[derive(Clone, Debug, Default)]
pub struct CodeCache {
    inner: Arc<Mutex<HashMap<B256, Bytecode>>>,
}

impl CodeCache {
    /// Upper bound on cached contracts; past it the cache is dropped wholesale, which is
    /// cheap and keeps memory bounded without LRU bookkeeping on the hot path.
    const MAX_ENTRIES: usize = 16_384;

    fn get_or_load(
        &self,
        hash: B256,
        load: impl FnOnce() -> ExecutorResult<Option<Bytes>>,
    ) -> ExecutorResult<Bytecode> {
        if let Some(code) = self.inner.lock().get(&hash) {
            return Ok(code.clone());
        }
        let code = loaded_code(hash, load()?)?;
        let mut cache = self.inner.lock();
        if cache.len() >= Self::MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(hash, code.clone());
        Ok(code)
    }
}

/// The revm [`Database`] for executing one block: `changes` made so far in the block over a
/// read-through cache over `reader`.
#[derive(Debug)]
pub struct BlockState<R> {
    reader: R,
    codes: CodeCache,
    /// Changes made by the transactions executed so far.
    pub changes: StateChanges,
    accounts: HashMap<Address, Option<StoredAccount>>,
    storage: HashMap<(Address, U256), U256>,
}

impl<R: StateReader> BlockState<R> {
    /// Creates a block state over `reader`.
    pub fn new(reader: R, codes: CodeCache) -> Self {
        Self {
            reader,
            codes,
            changes: StateChanges::default(),
            accounts: HashMap::default(),
            storage: HashMap::default(),
        }
    }

    /// The reader underneath.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Current view of an account (changes, then cache, then reader).
    pub fn account(&mut self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        if let Some(info) = self.changes.account(&address) {
            return Ok(info);
        }
        if let Some(info) = self.accounts.get(&address) {
            return Ok(*info);
        }
        let info = self.reader.account(address)?;
        self.accounts.insert(address, info);
        Ok(info)
    }

    /// Changes an account outside the EVM (a deposit's mint, its nonce when the call could
    /// not run): `update` sees the current view, or an empty account if there is none.
    pub fn update_account(
        &mut self,
        address: Address,
        update: impl FnOnce(&mut StoredAccount),
    ) -> ExecutorResult<()> {
        let mut account = self.account(address)?.unwrap_or(StoredAccount::EMPTY);
        update(&mut account);
        self.changes.accounts.entry(address).or_default().info = Some(account);
        Ok(())
    }

    /// Consumes the state, returning the block's changes.
    pub fn into_changes(self) -> StateChanges {
        self.changes
    }
}

impl<R: StateReader> Database for BlockState<R> {
    type Error = ExecutorError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(self.account(address)?.map(StoredAccount::to_info))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK256_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        let changes = &self.changes;
        let reader = &self.reader;
        self.codes
            .get_or_load(code_hash, || match changes.codes.get(&code_hash) {
                Some(code) => Ok(Some(code.clone())),
                None => reader.code(code_hash),
            })
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        if let Some(value) = self.changes.storage(&address, &index) {
            return Ok(value);
        }
        if let Some(value) = self.storage.get(&(address, index)) {
            return Ok(*value);
        }
        let value = self.reader.storage(address, index)?;
        self.storage.insert((address, index), value);
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.reader.block_hash(number)?.unwrap_or_default())
    }
}

/// The state as of the changes so far, read without filling the caches: what a tracer
/// reports as a transaction's state before it ran.
impl<R: StateReader> DatabaseRef for BlockState<R> {
    type Error = ExecutorError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let account = match self.changes.account(&address) {
            Some(info) => info,
            None => match self.accounts.get(&address) {
                Some(info) => *info,
                None => self.reader.account(address)?,
            },
        };
        Ok(account.map(StoredAccount::to_info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK256_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        self.codes
            .get_or_load(code_hash, || match self.changes.codes.get(&code_hash) {
                Some(code) => Ok(Some(code.clone())),
                None => self.reader.code(code_hash),
            })
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Self::Error> {
        if let Some(value) = self.changes.storage(&address, &index) {
            return Ok(value);
        }
        match self.storage.get(&(address, index)) {
            Some(value) => Ok(*value),
            None => self.reader.storage(address, index),
        }
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.reader.block_hash(number)?.unwrap_or_default())
    }
}

impl<R: StateReader> DatabaseCommit for BlockState<R> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        self.changes.apply_evm_state(changes);
    }
}

/// A [`StateReader`] over in-memory maps, for tests and tools.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    /// Accounts.
    pub accounts: HashMap<Address, StoredAccount>,
    /// Storage slots.
    pub storage: HashMap<(Address, U256), U256>,
    /// Code by hash.
    pub codes: HashMap<B256, Bytes>,
    /// Block hashes by number.
    pub block_hashes: HashMap<u64, B256>,
}

impl MemoryState {
    /// Applies committed changes.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, change) in &changes.accounts {
            if change.storage_cleared {
                self.storage.retain(|(a, _), _| a != address);
            }
            match change.info {
                Some(info) => {
                    self.accounts.insert(*address, info);
                }
                None => {
                    self.accounts.remove(address);
                }
            }
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    self.storage.remove(&(*address, *slot));
                } else {
                    self.storage.insert((*address, *slot), *value);
                }
            }
        }
        self.codes
            .extend(changes.codes.iter().map(|(k, v)| (*k, v.clone())));
    }
}

impl StateReader for MemoryState {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        Ok(self.accounts.get(&address).copied())
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        Ok(self
            .storage
            .get(&(address, slot))
            .copied()
            .unwrap_or_default())
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        Ok(self.codes.get(&hash).cloned())
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        Ok(self.block_hashes.get(&number).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_delegation_code_is_legacy_code() {
        // 0xef0100 followed by 5 bytes instead of an address: not a delegation.
        let short = Bytes::from_static(&[0xef, 0x01, 0x00, 1, 2, 3, 4, 5]);
        let code = analyse_code(short.clone());
        assert!(code.is_legacy());
        assert_eq!(code.original_bytes(), short);
        let delegation = Bytes::from([&[0xef, 0x01, 0x00][..], &[0x11; 20]].concat());
        assert!(analyse_code(delegation).is_eip7702());
    }

    #[test]
    fn account_encoding_round_trips() {
        let account = StoredAccount {
            nonce: 7,
            balance: U256::from(123_456_789u64),
            code_hash: B256::repeat_byte(0xab),
        };
        assert_eq!(StoredAccount::decode(&account.encode()).unwrap(), account);
        assert!(StoredAccount::decode(&[0u8; 10]).is_err());
    }

    #[test]
    fn extend_respects_storage_clears() {
        let a = Address::repeat_byte(1);
        let mut first = StateChanges::default();
        let change = first.accounts.entry(a).or_default();
        change.info = Some(StoredAccount {
            nonce: 1,
            ..Default::default()
        });
        change.storage.insert(U256::from(1), U256::from(10));
        let mut second = StateChanges::default();
        let change = second.accounts.entry(a).or_default();
        change.info = Some(StoredAccount {
            nonce: 2,
            ..Default::default()
        });
        change.storage_cleared = true;
        change.storage.insert(U256::from(2), U256::from(20));
        first.extend(second);
        assert_eq!(first.storage(&a, &U256::from(1)), Some(U256::ZERO));
        assert_eq!(first.storage(&a, &U256::from(2)), Some(U256::from(20)));
        assert_eq!(first.account(&a).unwrap().unwrap().nonce, 2);
    }
}
