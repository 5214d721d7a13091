//! The walk's view of the tries persisted in RocksDB (see [`crate::storage`] for the column
//! families), at the latest state or at a snapshot.

use super::{
    cache::NodeCache,
    nodes::{decode_node, decode_path, encode_path},
    walk::TrieSource,
};
use crate::error::{ExecutorError, ExecutorResult};
use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, Nibbles, TrieAccount};
use rocksdb::{ColumnFamily, DB, DBRawIterator, ReadOptions, Snapshot};

/// Table names, for corruption reports.
pub(crate) const ACCOUNT_TRIE: &str = "account_trie";
pub(crate) const STORAGE_TRIE: &str = "storage_trie";
pub(crate) const HASHED_ACCOUNTS: &str = "hashed_accounts";
pub(crate) const HASHED_STORAGE: &str = "hashed_storage";

/// A forward cursor over a raw iterator. The walk asks for keys in increasing order and
/// mostly for keys close to the last one, so a few `next` steps usually replace a seek
/// (which has to search every level of the LSM tree).
struct Cursor<'a> {
    iter: DBRawIterator<'a>,
    /// The iterator sits on the first key at or after this one.
    positioned_at: Option<Vec<u8>>,
    /// How many entries to step over before seeking instead.
    steps: usize,
}

impl<'a> Cursor<'a> {
    fn new(iter: DBRawIterator<'a>, steps: usize) -> Self {
        Self {
            iter,
            positioned_at: None,
            steps,
        }
    }

    /// Moves to the first key at or after `target`.
    fn seek(&mut self, target: &[u8]) -> ExecutorResult<()> {
        if self.positioned_at.as_deref().is_some_and(|at| at <= target) {
            for _ in 0..self.steps {
                match self.iter.key() {
                    Some(key) if key < target => self.iter.next(),
                    _ => {
                        self.iter.status()?;
                        self.set_position(target);
                        return Ok(());
                    }
                }
            }
        }
        self.iter.seek(target);
        self.iter.status()?;
        self.set_position(target);
        Ok(())
    }

    fn set_position(&mut self, at: &[u8]) {
        let buf = self.positioned_at.get_or_insert_with(Vec::new);
        buf.clear();
        buf.extend_from_slice(at);
    }
}

/// Node seeks mostly jump over whole subtrees, leaf reads mostly continue where the last
/// one stopped.
const NODE_STEPS: usize = 2;
const LEAF_STEPS: usize = 8;

/// Where the tries live and which state to read.
#[derive(Clone, Copy)]
pub(crate) struct TrieTables<'a> {
    pub db: &'a DB,
    pub account_trie: &'a ColumnFamily,
    pub storage_trie: &'a ColumnFamily,
    pub hashed_accounts: &'a ColumnFamily,
    pub hashed_storage: &'a ColumnFamily,
    pub snapshot: Option<&'a Snapshot<'a>>,
    /// Nodes of the latest state; never set together with `snapshot`.
    pub cache: Option<&'a NodeCache>,
}

impl std::fmt::Debug for TrieTables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrieTables")
            .field("snapshot", &self.snapshot.is_some())
            .finish_non_exhaustive()
    }
}

/// The smallest key after every key that starts with `prefix`, if there is one.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl<'a> TrieTables<'a> {
    fn read_opts(&self, prefix: &[u8]) -> ReadOptions {
        let mut opts = ReadOptions::default();
        if let Some(snapshot) = self.snapshot {
            opts.set_snapshot(snapshot);
        }
        if !prefix.is_empty() {
            opts.set_iterate_lower_bound(prefix.to_vec());
            if let Some(end) = prefix_end(prefix) {
                opts.set_iterate_upper_bound(end);
            }
        }
        opts
    }

    fn source(
        &self,
        owner: Option<&B256>,
        nodes: &'a ColumnFamily,
        leaves: &'a ColumnFamily,
        tables: (&'static str, &'static str),
    ) -> DbTrieSource<'a> {
        let prefix = owner.map_or(&[][..], |owner| owner.as_slice());
        DbTrieSource {
            db: self.db,
            snapshot: self.snapshot,
            nodes_cf: nodes,
            leaves_cf: leaves,
            owner: owner.copied(),
            cache: self.cache.map(|cache| (cache, cache.generation())),
            prefix: prefix.to_vec(),
            nodes: Cursor::new(
                self.db.raw_iterator_cf_opt(nodes, self.read_opts(prefix)),
                NODE_STEPS,
            ),
            leaves: Cursor::new(
                self.db.raw_iterator_cf_opt(leaves, self.read_opts(prefix)),
                LEAF_STEPS,
            ),
            key: Vec::with_capacity(96),
            tables,
        }
    }

    /// The account trie.
    pub fn account_trie(&self) -> DbTrieSource<'a> {
        self.source(
            None,
            self.account_trie,
            self.hashed_accounts,
            (ACCOUNT_TRIE, HASHED_ACCOUNTS),
        )
    }

    /// The storage trie of the account with hashed address `hashed_address`.
    pub fn storage_trie(&self, hashed_address: &B256) -> DbTrieSource<'a> {
        self.source(
            Some(hashed_address),
            self.storage_trie,
            self.hashed_storage,
            (STORAGE_TRIE, HASHED_STORAGE),
        )
    }

    fn get(&self, cf: &ColumnFamily, key: &[u8]) -> ExecutorResult<Option<Vec<u8>>> {
        Ok(match self.snapshot {
            Some(snapshot) => snapshot.get_cf(cf, key)?,
            None => self.db.get_cf(cf, key)?,
        })
    }

    /// The account leaf stored under `hashed_address`.
    pub fn account(&self, hashed_address: &B256) -> ExecutorResult<Option<TrieAccount>> {
        self.get(self.hashed_accounts, hashed_address.as_slice())?
            .map(|raw| decode_account(&raw))
            .transpose()
    }

    /// The account leaves stored under `keys` (sorted), in one batched read.
    pub fn accounts(&self, keys: &[B256]) -> ExecutorResult<Vec<Option<Vec<u8>>>> {
        let opts = self.read_opts(&[]);
        self.db
            .batched_multi_get_cf_opt(self.hashed_accounts, keys, true, &opts)
            .into_iter()
            .map(|res| Ok(res?.map(|raw| raw.to_vec())))
            .collect()
    }

    /// Every stored branch node of the account trie (`None`) or of one storage trie.
    pub fn stored_nodes(
        &self,
        hashed_address: Option<&B256>,
    ) -> ExecutorResult<Vec<(Nibbles, BranchNodeCompact)>> {
        let (cf, prefix, table) = match hashed_address {
            Some(address) => (self.storage_trie, address.as_slice(), STORAGE_TRIE),
            None => (self.account_trie, &[][..], ACCOUNT_TRIE),
        };
        let mut iter = self.db.raw_iterator_cf_opt(cf, self.read_opts(prefix));
        iter.seek(prefix);
        let mut nodes = Vec::new();
        while let Some((key, value)) = iter.item() {
            if !key.starts_with(prefix) {
                break;
            }
            nodes.push((
                decode_path(&key[prefix.len()..], table)?,
                decode_node(value, table)?,
            ));
            iter.next();
        }
        iter.status()?;
        Ok(nodes)
    }

    /// The distinct hashed addresses that own entries in the storage tables (slots or
    /// nodes), each once, in order.
    pub fn storage_owners(&self) -> ExecutorResult<Vec<B256>> {
        let mut owners = Vec::new();
        for cf in [self.hashed_storage, self.storage_trie] {
            let mut iter = self.db.raw_iterator_cf_opt(cf, self.read_opts(&[]));
            iter.seek_to_first();
            while let Some(key) = iter.key() {
                if key.len() < 32 {
                    return Err(ExecutorError::corrupt(STORAGE_TRIE, "key length"));
                }
                let owner = B256::from_slice(&key[..32]);
                owners.push(owner);
                match prefix_end(owner.as_slice()) {
                    Some(end) => iter.seek(end),
                    None => break,
                }
            }
            iter.status()?;
        }
        owners.sort_unstable();
        owners.dedup();
        Ok(owners)
    }

    /// The leaf value stored for slot `hashed_slot` of `hashed_address`.
    pub fn storage_value(
        &self,
        hashed_address: &B256,
        hashed_slot: &B256,
    ) -> ExecutorResult<Option<Vec<u8>>> {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(hashed_address.as_slice());
        key[32..].copy_from_slice(hashed_slot.as_slice());
        self.get(self.hashed_storage, &key)
    }
}

/// Decodes an account leaf value.
pub(crate) fn decode_account(raw: &[u8]) -> ExecutorResult<TrieAccount> {
    alloy_rlp::decode_exact(raw).map_err(|e| ExecutorError::corrupt(HASHED_ACCOUNTS, e))
}

/// One persisted trie: its stored branch nodes and its leaves.
pub(crate) struct DbTrieSource<'a> {
    db: &'a DB,
    snapshot: Option<&'a Snapshot<'a>>,
    nodes_cf: &'a ColumnFamily,
    leaves_cf: &'a ColumnFamily,
    owner: Option<B256>,
    cache: Option<(&'a NodeCache, u64)>,
    /// Key prefix of this trie in both tables (the hashed address for storage tries).
    prefix: Vec<u8>,
    nodes: Cursor<'a>,
    leaves: Cursor<'a>,
    key: Vec<u8>,
    tables: (&'static str, &'static str),
}

impl std::fmt::Debug for DbTrieSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTrieSource")
            .field("prefix", &alloy_primitives::hex::encode(&self.prefix))
            .finish_non_exhaustive()
    }
}

impl TrieSource for DbTrieSource<'_> {
    fn node(&mut self, path: &Nibbles) -> ExecutorResult<Option<BranchNodeCompact>> {
        if let Some((cache, _)) = self.cache
            && let Some(node) = cache.get(self.owner.as_ref(), path)
        {
            return Ok(Some(node));
        }
        self.key.clear();
        self.key.extend_from_slice(&self.prefix);
        encode_path(path, &mut self.key);
        let raw = match self.snapshot {
            Some(snapshot) => snapshot.get_pinned_cf(self.nodes_cf, &self.key)?,
            None => self.db.get_pinned_cf(self.nodes_cf, &self.key)?,
        };
        let node = raw
            .map(|raw| decode_node(&raw, self.tables.0))
            .transpose()?;
        if let (Some((cache, generation)), Some(node)) = (self.cache, &node) {
            cache.insert(generation, self.owner.as_ref(), *path, node.clone());
        }
        Ok(node)
    }

    fn values(&mut self, keys: &[B256]) -> ExecutorResult<Vec<Option<Vec<u8>>>> {
        let mut opts = ReadOptions::default();
        if let Some(snapshot) = self.snapshot {
            opts.set_snapshot(snapshot);
        }
        let width = self.prefix.len() + 32;
        let mut full = Vec::with_capacity(width * keys.len());
        for key in keys {
            full.extend_from_slice(&self.prefix);
            full.extend_from_slice(key.as_slice());
        }
        self.db
            .batched_multi_get_cf_opt(self.leaves_cf, full.chunks(width), true, &opts)
            .into_iter()
            .map(|res| Ok(res?.map(|raw| raw.to_vec())))
            .collect()
    }

    fn seek_node(
        &mut self,
        from: &Nibbles,
    ) -> ExecutorResult<Option<(Nibbles, BranchNodeCompact)>> {
        self.key.clear();
        self.key.extend_from_slice(&self.prefix);
        encode_path(from, &mut self.key);
        self.nodes.seek(&self.key)?;
        let Some((key, value)) = self.nodes.iter.item() else {
            return Ok(None);
        };
        if !key.starts_with(&self.prefix) {
            return Ok(None);
        }
        let table = self.tables.0;
        Ok(Some((
            decode_path(&key[self.prefix.len()..], table)?,
            decode_node(value, table)?,
        )))
    }

    fn leaves(
        &mut self,
        from: &B256,
        to: Option<&B256>,
        f: &mut dyn FnMut(&B256, &[u8]),
    ) -> ExecutorResult<()> {
        let prefix_len = self.prefix.len();
        self.key.clear();
        self.key.extend_from_slice(&self.prefix);
        self.key.extend_from_slice(from.as_slice());
        self.leaves.seek(&self.key)?;
        let end = to.map(|to| {
            let mut end = self.prefix.clone();
            end.extend_from_slice(to.as_slice());
            end
        });
        loop {
            let Some((key, value)) = self.leaves.iter.item() else {
                self.leaves.iter.status()?;
                // Exhausted: the cursor no longer knows where it is.
                self.leaves.positioned_at = None;
                return Ok(());
            };
            if end.as_deref().is_some_and(|end| key >= end) || !key.starts_with(&self.prefix) {
                break;
            }
            if key.len() != prefix_len + 32 {
                return Err(ExecutorError::corrupt(self.tables.1, "key length"));
            }
            f(&B256::from_slice(&key[prefix_len..]), value);
            self.leaves.iter.next();
        }
        match end {
            Some(end) => self.leaves.set_position(&end),
            None => self.leaves.positioned_at = None,
        }
        Ok(())
    }
}
