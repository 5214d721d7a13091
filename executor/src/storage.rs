//! RocksDB storage: flat state, blocks, receipts and indexes, committed per block in two
//! atomic write batches.
//!
//! A block is committed in two steps so that it can be published before its state lands:
//! 1. [`Storage::commit_block_data`]: header, body, receipts, indexes, the new head and the
//!    block's state diff (`state_diffs`), synced. From here the block is durable and can be
//!    served; readers of this store see its state through an in-memory overlay.
//! 2. [`Storage::write_state`]: flat state, hashed state, trie nodes and the new state head;
//!    the diff is deleted in the same batch. Not synced: the diff is the durable copy, and
//!    opening the store replays any diff past the state head (a crash between the steps).
//!
//! At most one block's state is unwritten: the next block's state root builds on the stored
//! tries, so [`Storage::state_root`] and [`Storage::commit_block_data`] write it first.
//! [`Storage::commit_block`] does both steps at once.
//!
//! Column families:
//! - `accounts`: address → [`StoredAccount`] (72 bytes)
//! - `storage`: address ‖ slot → value (32 bytes BE; zero values are deleted)
//! - `bytecode`: code hash → code
//! - `headers`: number (8 bytes BE) → RLP header
//! - `canonical`: number → block hash; `block_numbers`: hash → number
//! - `bodies`: number → RLP list of (sender, EIP-2718 transaction)
//! - `receipts`: number → RLP list of EIP-2718 receipts
//! - `tx_index`: transaction hash → number ‖ index (8 + 4 bytes BE)
//! - `meta`: `head`, `state_head` (the block the state columns describe), `chain_id`,
//!   `genesis_hash`, and `aux/<key>` values other components keep beside the chain
//!   ([`Storage::aux`])
//! - `state_diffs`: number → the block's [`StateChanges`] while its state is unwritten
//! - `hashed_accounts`: keccak(address) → account trie leaf (RLP of `TrieAccount`)
//! - `hashed_storage`: keccak(address) ‖ keccak(slot) → storage trie leaf (RLP of the value)
//! - `account_trie`: nibble path (one nibble per byte) → branch node ([`crate::trie::nodes`])
//! - `storage_trie`: keccak(address) ‖ nibble path → branch node
//!
//! The last four are the state root's working set ([`crate::trie`]); they are written in the
//! same batch as the flat state, so the tries always describe the state head.

use crate::tx::{LanesReceipt, LanesTxEnvelope};
use crate::{
    block::{BlockTx, SealedBlock},
    error::{ExecutorError, ExecutorResult},
    genesis::GenesisSpec,
    history::{FlatRead, FlatValue, History},
    root::{FlatState, FullState},
    state::{StateChanges, StateReader, StoredAccount},
    trie::{
        self, AccountProof, HashedStateCheck, StateTrieUpdate,
        cache::NodeCache,
        db::{TrieTables, prefix_end},
        nodes::{encode_node, encode_path},
    },
};
use alloy_consensus::{Header, transaction::Recovered};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode,
    Options, ReadOptions, Snapshot, WriteBatch, WriteOptions,
};
use std::{path::Path, sync::Arc};

const CF_ACCOUNTS: &str = "accounts";
const CF_STORAGE: &str = "storage";
const CF_BYTECODE: &str = "bytecode";
const CF_HEADERS: &str = "headers";
const CF_CANONICAL: &str = "canonical";
const CF_BLOCK_NUMBERS: &str = "block_numbers";
const CF_BODIES: &str = "bodies";
const CF_RECEIPTS: &str = "receipts";
const CF_TX_INDEX: &str = "tx_index";
const CF_META: &str = "meta";
const CF_HASHED_ACCOUNTS: &str = trie::db::HASHED_ACCOUNTS;
const CF_HASHED_STORAGE: &str = trie::db::HASHED_STORAGE;
const CF_ACCOUNT_TRIE: &str = trie::db::ACCOUNT_TRIE;
const CF_STORAGE_TRIE: &str = trie::db::STORAGE_TRIE;
const CF_STATE_DIFFS: &str = "state_diffs";
const ALL_CFS: [&str; 15] = [
    CF_ACCOUNTS,
    CF_STORAGE,
    CF_BYTECODE,
    CF_HEADERS,
    CF_CANONICAL,
    CF_BLOCK_NUMBERS,
    CF_BODIES,
    CF_RECEIPTS,
    CF_TX_INDEX,
    CF_META,
    CF_HASHED_ACCOUNTS,
    CF_HASHED_STORAGE,
    CF_ACCOUNT_TRIE,
    CF_STORAGE_TRIE,
    CF_STATE_DIFFS,
];

const META_HEAD: &[u8] = b"head";
/// The block whose state the state columns hold; absent in data directories written before
/// the two-step commit, where it is the head.
const META_STATE_HEAD: &[u8] = b"state_head";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_GENESIS_HASH: &[u8] = b"genesis_hash";
/// Prefix of [`Storage::aux`] keys, which keeps them apart from the chain's own.
const META_AUX_PREFIX: &str = "aux/";

#[derive(RlpEncodable, RlpDecodable)]
struct StoredTx {
    sender: Address,
    encoded: Bytes,
}

/// A block's [`StateChanges`] as `state_diffs` keeps them.
#[derive(RlpEncodable, RlpDecodable)]
struct StoredDiff {
    accounts: Vec<StoredAccountDiff>,
    codes: Vec<StoredCode>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct StoredAccountDiff {
    address: Address,
    /// [`StoredAccount::encode`], empty when the account was deleted.
    info: Bytes,
    storage_cleared: bool,
    slots: Vec<StoredSlot>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct StoredSlot {
    slot: U256,
    value: U256,
}

#[derive(RlpEncodable, RlpDecodable)]
struct StoredCode {
    hash: B256,
    code: Bytes,
}

fn encode_diff(changes: &StateChanges) -> Vec<u8> {
    let diff = StoredDiff {
        accounts: changes
            .accounts
            .iter()
            .map(|(address, change)| StoredAccountDiff {
                address: *address,
                info: change
                    .info
                    .map_or_else(Bytes::new, |info| Bytes::copy_from_slice(&info.encode())),
                storage_cleared: change.storage_cleared,
                slots: change
                    .storage
                    .iter()
                    .map(|(slot, value)| StoredSlot {
                        slot: *slot,
                        value: *value,
                    })
                    .collect(),
            })
            .collect(),
        codes: changes
            .codes
            .iter()
            .map(|(hash, code)| StoredCode {
                hash: *hash,
                code: code.clone(),
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(diff.length());
    diff.encode(&mut out);
    out
}

fn decode_diff(mut raw: &[u8]) -> ExecutorResult<StateChanges> {
    let diff =
        StoredDiff::decode(&mut raw).map_err(|e| ExecutorError::corrupt(CF_STATE_DIFFS, e))?;
    let mut changes = StateChanges::default();
    for account in diff.accounts {
        let info = match account.info.is_empty() {
            true => None,
            false => Some(StoredAccount::decode(&account.info)?),
        };
        changes.accounts.insert(
            account.address,
            crate::state::AccountChange {
                info,
                storage_cleared: account.storage_cleared,
                storage: account
                    .slots
                    .into_iter()
                    .map(|s| (s.slot, s.value))
                    .collect(),
            },
        );
    }
    changes.codes = diff.codes.into_iter().map(|c| (c.hash, c.code)).collect();
    Ok(changes)
}

/// Where a transaction landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block_number: u64,
    /// Index in the block.
    pub index: u32,
}

/// Storage options.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Block cache size in bytes.
    pub cache_bytes: usize,
    /// When a block's write is made durable.
    pub sync: CommitSync,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 256 << 20,
            sync: CommitSync::AfterPublish,
        }
    }
}

/// When step 1 of a commit ([`Storage::commit_block_data`]) is fsynced. Either way its write
/// reaches the operating system before the call returns, so a crash of the process loses no
/// block; the choice is about power loss and kernel crashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitSync {
    /// Before the call returns: no block that was published can be lost. Every block waits
    /// for the disk's fsync, whose tail (hundreds of milliseconds on a shared virtual disk)
    /// then shows in the inclusion latency.
    BeforePublish,
    /// Right after, on a background thread: a power loss can lose the blocks of the fsync
    /// in progress (milliseconds normally). Those blocks are not on L1 yet, the same exposure
    /// an OP Stack sequencer's unsafe blocks have.
    #[default]
    AfterPublish,
    /// Never (tests and throwaway stores).
    Never,
}

/// Running totals of the background fsyncs ([`CommitSync::AfterPublish`]), for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WalSyncStats {
    /// fsyncs done.
    pub syncs: u64,
    /// Time spent in them, in seconds.
    pub seconds: f64,
}

/// Thread that fsyncs the write-ahead log when asked ([`CommitSync::AfterPublish`]).
struct WalSyncer {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failed: Arc<Mutex<Option<rocksdb::Error>>>,
    stats: Arc<Mutex<WalSyncStats>>,
}

impl WalSyncer {
    fn start(db: Arc<DB>) -> ExecutorResult<Self> {
        // One slot: a request still queued covers every write made before the thread takes
        // it, so requests coalesce while an fsync is running.
        let (wake, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let failed = Arc::new(Mutex::new(None));
        let failure = failed.clone();
        let stats = Arc::new(Mutex::new(WalSyncStats::default()));
        let totals = stats.clone();
        let thread = std::thread::Builder::new()
            .name("lanes-wal-sync".into())
            .spawn(move || {
                for () in requests {
                    let started = std::time::Instant::now();
                    if let Err(err) = db.flush_wal(true) {
                        tracing::error!(
                            target: "lanes::storage",
                            %err,
                            "fsync of the write-ahead log failed"
                        );
                        *failure.lock() = Some(err);
                    }
                    let mut totals = totals.lock();
                    totals.syncs += 1;
                    totals.seconds += started.elapsed().as_secs_f64();
                }
            })?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
            failed,
            stats,
        })
    }

    /// Asks for an fsync of everything written so far; fails if an earlier one failed.
    fn request(&self) -> ExecutorResult<()> {
        if let Some(err) = self.failed.lock().clone() {
            return Err(ExecutorError::Db(err));
        }
        if let Some(wake) = &self.wake {
            // Full means a request is queued and will fsync this write too.
            let _ = wake.try_send(());
        }
        Ok(())
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its last fsync; joining releases its
        // handle on the database before the store is reopened.
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The RocksDB-backed store.
pub struct Storage {
    /// Declared before `db` so it drops first: its thread holds snapshots of the database.
    history: Option<History>,
    /// Declared before `db` for the same reason: its thread holds the database.
    wal_syncer: Option<WalSyncer>,
    db: Arc<DB>,
    /// fsync a block's data write before it returns ([`CommitSync::BeforePublish`]).
    sync_commits: bool,
    /// fsync the rare writes outside blocks (genesis, [`Storage::put_aux`]) unless the store
    /// never syncs.
    sync_other: bool,
    /// The trie update [`Storage::state_root`] computed, kept for the `commit_block` of the
    /// same changes so the tries are not walked twice per block.
    pending_trie: Mutex<Option<PendingTrie>>,
    /// Branch nodes of the state head that the root computation reads block after block
    /// (the tops of the big tries).
    node_cache: NodeCache,
    /// The block whose data is written but whose state is not (step 1 of a commit done,
    /// step 2 not): reads see its changes on top of the state columns.
    unwritten: RwLock<Option<Arc<Unwritten>>>,
    /// Serialises state writes (the committer's and a proof's that needs the head's tries).
    state_writes: Mutex<()>,
}

/// A block whose header, body, receipts and diff are durable but whose state is not.
struct Unwritten {
    number: u64,
    hash: B256,
    state_root: B256,
    changes: Arc<StateChanges>,
    trie: StateTrieUpdate,
}

struct PendingTrie {
    head: Option<u64>,
    changes: StateChanges,
    update: StateTrieUpdate,
}

/// Outcome of [`Storage::verify_state_root`]: the head's state root next to every way of
/// recomputing it.
#[derive(Clone, Debug)]
pub struct StateRootCheck {
    /// The head block `(number, hash)`.
    pub head: (u64, B256),
    /// State root in the head header.
    pub header_root: B256,
    /// Root recomputed from the flat state from scratch.
    pub flat_root: B256,
    /// Root recomputed from the hashed state from scratch (stored nodes ignored), and how
    /// the stored nodes compare with a rebuild.
    pub hashed: HashedStateCheck,
    /// Root the stored trie nodes give (what the next block builds on).
    pub trie_root: B256,
}

impl StateRootCheck {
    /// True when every recomputation agrees with the header.
    pub fn is_ok(&self) -> bool {
        self.flat_root == self.header_root
            && self.hashed.root == self.header_root
            && self.hashed.is_consistent()
            && self.trie_root == self.header_root
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.db.path())
            .finish()
    }
}

fn be_u64(bytes: &[u8], table: &'static str) -> ExecutorResult<u64> {
    Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| {
        ExecutorError::corrupt(table, "expected 8 bytes")
    })?))
}

/// The state head in `meta` as `get` reads it (the store or a snapshot of it): `state_head`,
/// or the head in a data directory written before the two-step commit.
fn read_state_head(
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, rocksdb::Error>,
) -> ExecutorResult<Option<u64>> {
    let raw = match get(META_STATE_HEAD)? {
        Some(raw) => raw,
        None => match get(META_HEAD)? {
            Some(raw) => raw,
            None => return Ok(None),
        },
    };
    be_u64(&raw, "meta").map(Some)
}

fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

/// Exclusive upper bound of an address's keys in `storage`.
fn address_upper_bound(address: &Address) -> Vec<u8> {
    let mut bound = address.to_vec();
    // Increment as a big-endian number; 0xff..ff has no successor, so use a longer key.
    for i in (0..bound.len()).rev() {
        if bound[i] == 0xff {
            bound[i] = 0;
        } else {
            bound[i] += 1;
            return bound;
        }
    }
    vec![0xff; 53]
}

impl Storage {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path, options: &StorageOptions) -> ExecutorResult<Self> {
        Self::open_with(path, options, None)
    }

    /// A store that lives in memory only (RocksDB's in-memory environment): the same code
    /// paths as on disk, for replaying test chains (the conformance runner) without files.
    pub fn open_in_memory(options: &StorageOptions) -> ExecutorResult<Self> {
        let env = rocksdb::Env::mem_env()?;
        Self::open_with(Path::new("/lanes-in-memory"), options, Some(env))
    }

    fn open_with(
        path: &Path,
        options: &StorageOptions,
        env: Option<rocksdb::Env>,
    ) -> ExecutorResult<Self> {
        let mut db_opts = Options::default();
        if let Some(env) = &env {
            db_opts.set_env(env);
        }
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(
            std::thread::available_parallelism().map_or(2, |n| n.get()) as i32
        );
        let cache = Cache::new_lru_cache(options.cache_bytes);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            let mut cf_opts = Options::default();
            cf_opts.set_block_based_table_factory(&table);
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = Arc::new(DB::open_cf_descriptors(&db_opts, path, cfs)?);
        let storage = Self {
            history: None,
            db: db.clone(),
            sync_commits: options.sync == CommitSync::BeforePublish,
            sync_other: options.sync != CommitSync::Never,
            wal_syncer: match options.sync {
                CommitSync::AfterPublish => Some(WalSyncer::start(db.clone())?),
                CommitSync::BeforePublish | CommitSync::Never => None,
            },
            pending_trie: Mutex::new(None),
            // Decoded nodes are about 300 bytes with their map entry; a quarter of the
            // block cache budget on top of it holds the top levels of the big tries.
            node_cache: NodeCache::new(options.cache_bytes / 4 / 300),
            unwritten: RwLock::new(None),
            state_writes: Mutex::new(()),
        };
        storage.recover_state()?;
        Ok(storage)
    }

    /// Writes the state of blocks whose data landed but whose state did not (a crash
    /// between the two steps of a commit), from their stored diffs, checking each against
    /// its header's state root.
    fn recover_state(&self) -> ExecutorResult<()> {
        let (Some((head, _)), Some(state_head)) = (self.head()?, self.state_head()?) else {
            return Ok(());
        };
        for number in state_head.saturating_add(1)..=head {
            let raw = self
                .db
                .get_cf(self.cf(CF_STATE_DIFFS), number.to_be_bytes())?
                .ok_or_else(|| {
                    ExecutorError::corrupt(
                        CF_STATE_DIFFS,
                        format!("no diff for block {number} past the state head {state_head}"),
                    )
                })?;
            let changes = decode_diff(&raw)?;
            let header = self
                .header(number)?
                .ok_or_else(|| ExecutorError::corrupt("headers", format!("no header {number}")))?;
            let trie = self.state_trie_update(&changes)?;
            if trie.root != header.state_root {
                return Err(ExecutorError::corrupt(
                    CF_STATE_DIFFS,
                    format!(
                        "the diff of block {number} gives state root {}, its header has {}",
                        trie.root, header.state_root
                    ),
                ));
            }
            tracing::info!(target: "lanes::storage", number, "writing the state of a block committed without it");
            let hash = header.hash_slow();
            *self.unwritten.write() = Some(Arc::new(Unwritten {
                number,
                hash,
                state_root: header.state_root,
                changes: Arc::new(changes),
                trie,
            }));
            self.write_state()?;
        }
        Ok(())
    }

    fn tables<'a>(&'a self, snapshot: Option<&'a Snapshot<'a>>) -> TrieTables<'a> {
        let mut tables = tables_on(&self.db, snapshot);
        tables.cache = snapshot.is_none().then_some(&self.node_cache);
        tables
    }

    /// Keeps the states of the last `blocks` committed blocks for proofs
    /// ([`Storage::account_proof_at`]); `0` keeps the head only.
    pub fn with_history(mut self, blocks: usize) -> ExecutorResult<Self> {
        self.history = match blocks {
            0 => None,
            blocks => {
                let history = History::start(
                    self.db.clone(),
                    blocks,
                    |db, snapshot| tables_on(db, Some(snapshot)),
                    read_flat_at,
                )?;
                if let Some((number, hash)) = self.head()?
                    && let Some(header) = self.header(number)?
                {
                    history.record(number, hash, header.state_root);
                }
                Some(history)
            }
        };
        Ok(self)
    }

    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// Initialises an empty store with `genesis`, or checks that a non-empty store holds the
    /// same chain. Returns the head `(number, hash)`.
    pub fn init_or_check_genesis(&self, genesis: &GenesisSpec) -> ExecutorResult<(u64, B256)> {
        let genesis_hash = genesis.header.hash_slow();
        if let Some(stored) = self.db.get_cf(self.cf(CF_META), META_GENESIS_HASH)? {
            let stored = B256::try_from(stored.as_slice())
                .map_err(|_| ExecutorError::corrupt("meta", "genesis hash length"))?;
            if stored != genesis_hash {
                return Err(ExecutorError::Mismatch(format!(
                    "the data directory holds a chain with genesis {stored}, but the configured genesis is {genesis_hash}"
                )));
            }
            // The chain id is not part of the genesis header, so it is checked on its own.
            if let Some(chain_id) = self.chain_id()?
                && chain_id != genesis.chain_id
            {
                return Err(ExecutorError::Mismatch(format!(
                    "the data directory holds chain id {chain_id}, but the configured chain id is {}",
                    genesis.chain_id
                )));
            }
            return self
                .head()?
                .ok_or_else(|| ExecutorError::corrupt("meta", "genesis without head"));
        }
        let block = SealedBlock::new(genesis.header.clone(), Vec::new(), Vec::new());
        let trie = self.state_trie_update(&genesis.alloc)?;
        if trie.root != genesis.header.state_root {
            return Err(ExecutorError::Genesis(format!(
                "the allocation has state root {}, the genesis header says {}",
                trie.root, genesis.header.state_root
            )));
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), META_GENESIS_HASH, genesis_hash);
        batch.put_cf(
            self.cf(CF_META),
            META_CHAIN_ID,
            genesis.chain_id.to_be_bytes(),
        );
        self.write_block_data(&mut batch, &block);
        self.write_state_columns(&mut batch, &genesis.alloc, &trie);
        batch.put_cf(self.cf(CF_META), META_STATE_HEAD, 0u64.to_be_bytes());
        self.write_with_trie(batch, &trie, self.sync_other)?;
        Ok((0, genesis_hash))
    }

    /// Chain id recorded at initialisation.
    pub fn chain_id(&self) -> ExecutorResult<Option<u64>> {
        self.db
            .get_cf(self.cf(CF_META), META_CHAIN_ID)?
            .map(|v| be_u64(&v, "meta"))
            .transpose()
    }

    /// The value other components keep under `key` beside the chain (e.g. the L1 watcher's
    /// cursor), or `None`.
    pub fn aux(&self, key: &str) -> ExecutorResult<Option<Vec<u8>>> {
        Ok(self
            .db
            .get_cf(self.cf(CF_META), format!("{META_AUX_PREFIX}{key}"))?)
    }

    /// Replaces the value under `key` (see [`Storage::aux`]); durable when it returns if
    /// commits are.
    pub fn put_aux(&self, key: &str, value: &[u8]) -> ExecutorResult<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), format!("{META_AUX_PREFIX}{key}"), value);
        self.write(batch, self.sync_other)
    }

    /// Removes the value under `key` (see [`Storage::aux`]).
    pub fn delete_aux(&self, key: &str) -> ExecutorResult<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_META), format!("{META_AUX_PREFIX}{key}"));
        self.write(batch, self.sync_other)
    }

    /// Genesis hash recorded at initialisation.
    pub fn genesis_hash(&self) -> ExecutorResult<Option<B256>> {
        Ok(self
            .db
            .get_cf(self.cf(CF_META), META_GENESIS_HASH)?
            .and_then(|v| B256::try_from(v.as_slice()).ok()))
    }

    /// The block the state columns and tries describe: the head, or the block before it
    /// while the head's state is being written ([`Storage::write_state`]).
    pub fn state_head(&self) -> ExecutorResult<Option<u64>> {
        read_state_head(|key| self.db.get_cf(self.cf(CF_META), key))
    }

    /// The committed head `(number, hash)`: the last block whose data is written (its state
    /// may still be being written, readers see it either way).
    pub fn head(&self) -> ExecutorResult<Option<(u64, B256)>> {
        let Some(number) = self.db.get_cf(self.cf(CF_META), META_HEAD)? else {
            return Ok(None);
        };
        let number = be_u64(&number, "meta")?;
        let hash = self.canonical_hash(number)?.ok_or_else(|| {
            ExecutorError::corrupt("canonical", format!("no hash for head {number}"))
        })?;
        Ok(Some((number, hash)))
    }

    /// Commits a sealed block and its state changes: both steps of a commit
    /// ([`Storage::commit_block_data`], then [`Storage::write_state`]).
    pub fn commit_block(&self, block: &SealedBlock, changes: &StateChanges) -> ExecutorResult<()> {
        self.commit_block_data(block, Arc::new(changes.clone()))?;
        self.write_state()
    }

    /// Step 1 of a commit: header, body, receipts, indexes, the new head and the block's
    /// state diff land together or not at all, synced when the store syncs commits. The
    /// block can be served once this returns: reads see its state on top of the state
    /// columns until [`Storage::write_state`] writes it.
    ///
    /// The trie update is the one [`Storage::state_root`] computed for the same changes on
    /// the same state, or computed here. The header's state root is not checked against it
    /// (callers seal the header with the root they got from [`Storage::state_root`]).
    pub fn commit_block_data(
        &self,
        block: &SealedBlock,
        changes: Arc<StateChanges>,
    ) -> ExecutorResult<()> {
        let _writer = self.state_writes.lock();
        // The trie update below builds on the parent's state.
        self.write_unwritten_state()?;
        let trie = match self.take_pending_trie(&changes)? {
            Some(trie) => trie,
            None => self.state_trie_update(&changes)?,
        };
        let mut batch = WriteBatch::default();
        self.write_block_data(&mut batch, block);
        batch.put_cf(
            self.cf(CF_STATE_DIFFS),
            block.number().to_be_bytes(),
            encode_diff(&changes),
        );
        self.write(batch, self.sync_commits)?;
        if let Some(syncer) = &self.wal_syncer {
            syncer.request()?;
        }
        // Until this lands, a reader of `head()` may see the new head over the parent's state
        // (`Storage::l1_messages_included` allows for it); readers that follow the chain's
        // published head never do, as it is published after this returns.
        *self.unwritten.write() = Some(Arc::new(Unwritten {
            number: block.number(),
            hash: block.hash,
            state_root: block.header.state_root,
            changes,
            trie,
        }));
        Ok(())
    }

    /// Totals of the fsyncs made after publishing; `None` unless the store syncs that way
    /// ([`CommitSync::AfterPublish`]).
    pub fn wal_sync_stats(&self) -> Option<WalSyncStats> {
        self.wal_syncer.as_ref().map(|syncer| *syncer.stats.lock())
    }

    /// Step 2 of a commit: writes the state of the block [`Storage::commit_block_data`] left
    /// unwritten (flat state, hashed state, tries, state head) in one batch. A no-op when
    /// there is none.
    pub fn write_state(&self) -> ExecutorResult<()> {
        let _writer = self.state_writes.lock();
        self.write_unwritten_state()
    }

    /// [`Storage::write_state`] with the writer lock held.
    fn write_unwritten_state(&self) -> ExecutorResult<()> {
        let Some(unwritten) = self.unwritten.read().clone() else {
            return Ok(());
        };
        let mut batch = WriteBatch::default();
        self.write_state_columns(&mut batch, &unwritten.changes, &unwritten.trie);
        let number = unwritten.number.to_be_bytes();
        batch.delete_cf(self.cf(CF_STATE_DIFFS), number);
        batch.put_cf(self.cf(CF_META), META_STATE_HEAD, number);
        // Not synced: if it is lost, the synced diff is replayed at the next open.
        self.write_with_trie(batch, &unwritten.trie, false)?;
        // Readers that took the overlay before this point still read correct values: the
        // overlay holds what the columns now hold.
        *self.unwritten.write() = None;
        if let Some(history) = &self.history {
            history.record(unwritten.number, unwritten.hash, unwritten.state_root);
        }
        Ok(())
    }

    /// Writes `batch`, which carries `trie`, and brings the node cache up to date.
    fn write_with_trie(
        &self,
        batch: WriteBatch,
        trie: &StateTrieUpdate,
        sync: bool,
    ) -> ExecutorResult<()> {
        if let Err(err) = self.write(batch, sync) {
            self.node_cache.clear();
            return Err(err);
        }
        self.node_cache.apply(None, false, &trie.account_nodes);
        for storage in &trie.storages {
            self.node_cache
                .apply(Some(&storage.hashed_address), storage.wiped, &storage.nodes);
        }
        Ok(())
    }

    /// The state root after applying `changes` to the committed head, computed
    /// incrementally over the stored tries: the cost follows the size of `changes`, not of
    /// the state. The trie update is kept for the [`Storage::commit_block`] of the same
    /// changes that normally follows. The head's state is written first if it is not yet.
    pub fn state_root(&self, changes: &StateChanges) -> ExecutorResult<B256> {
        self.write_state()?;
        let head = self.state_head()?;
        let update = self.state_trie_update(changes)?;
        let root = update.root;
        *self.pending_trie.lock() = Some(PendingTrie {
            head,
            changes: changes.clone(),
            update,
        });
        Ok(root)
    }

    /// Everything `changes` does to the hashed state and the tries on top of the committed
    /// head, with the new state root; nothing is written.
    pub fn state_trie_update(&self, changes: &StateChanges) -> ExecutorResult<StateTrieUpdate> {
        trie::state_update(&self.tables(None), changes)
    }

    fn take_pending_trie(&self, changes: &StateChanges) -> ExecutorResult<Option<StateTrieUpdate>> {
        let Some(pending) = self.pending_trie.lock().take() else {
            return Ok(None);
        };
        Ok(
            (pending.head == self.state_head()? && pending.changes == *changes)
                .then_some(pending.update),
        )
    }

    /// The state root the stored tries give, with nothing applied on top. Cheap: only the
    /// top of the account trie is read.
    pub fn trie_root(&self) -> ExecutorResult<B256> {
        trie::stored_root(&self.tables(None))
    }

    /// Checks that the stored tries give the state root of the block they describe (the
    /// head, once its state is written); a mismatch means the trie tables are missing (a
    /// data directory written before they existed) or corrupt. Returns that block's
    /// `(number, hash)`.
    pub fn check_state_root(&self) -> ExecutorResult<(u64, B256)> {
        let snapshot = self.snapshot();
        let (number, hash) = snapshot.trie_block()?;
        let header = snapshot.header(number)?;
        let root = trie::stored_root(&self.tables(Some(&snapshot.snapshot)))?;
        if root != header.state_root {
            return Err(ExecutorError::Mismatch(format!(
                "the state trie gives root {root}, but head block {number} has state root {}: \
                 the trie tables are missing (data directory written by an older version) or \
                 corrupt; `lanes db verify` recomputes the root from the flat state",
                header.state_root
            )));
        }
        Ok((number, hash))
    }

    /// Recomputes the state root of the block the state columns describe in every way there
    /// is (flat state, hashed state, stored trie) on one consistent snapshot. Reads the whole
    /// state: for tools, not for the node.
    pub fn verify_state_root(&self) -> ExecutorResult<StateRootCheck> {
        self.write_state()?;
        let snapshot = self.snapshot();
        let head = snapshot.trie_block()?;
        let header_root = snapshot.header(head.0)?.state_root;
        let tables = self.tables(Some(&snapshot.snapshot));
        Ok(StateRootCheck {
            head,
            header_root,
            flat_root: crate::root::state_root(&snapshot.columns_flat_state()?),
            hashed: trie::recompute_from_hashed(&tables)?,
            trie_root: trie::stored_root(&tables)?,
        })
    }

    /// EIP-1186 proofs of `address` and its `slots` at the block the tries describe, with
    /// that block's `(number, hash)` (read from one snapshot, so a block committed meanwhile
    /// cannot mix in). That is the head unless the head's state is being written;
    /// [`Storage::account_proof_at`] waits for it.
    pub fn account_proof(
        &self,
        address: Address,
        slots: &[B256],
    ) -> ExecutorResult<((u64, B256), AccountProof)> {
        let snapshot = self.snapshot();
        let head = snapshot.trie_block()?;
        let header = snapshot.header(head.0)?;
        let proof = trie::account_proof(&self.tables(Some(&snapshot.snapshot)), address, slots)?;
        if proof.state_root != header.state_root {
            return Err(ExecutorError::corrupt(
                CF_ACCOUNT_TRIE,
                format!(
                    "the state trie gives root {}, head block {} has {}",
                    proof.state_root, head.0, header.state_root
                ),
            ));
        }
        Ok((head, proof))
    }

    /// How many L1 messages (deposit transactions) the chain has executed up to and including
    /// block `number`: the [`crate::L1_MESSAGE_COUNTER`] of the state, corrected by the
    /// deposits of the blocks between the state's block and `number`. Cheap for recent
    /// blocks, which is what the batcher asks.
    pub fn l1_messages_included(&self, number: u64) -> ExecutorResult<u64> {
        let snapshot = self.snapshot();
        let Some(state_block) = snapshot.state_block()? else {
            return Ok(0);
        };
        let counter = snapshot
            .account(crate::L1_MESSAGE_COUNTER)?
            .map_or(0, |a| a.nonce);
        // Committed blocks never change, so reading them outside the snapshot is safe.
        let deposits = |blocks: std::ops::RangeInclusive<u64>| -> ExecutorResult<u64> {
            let mut total = 0u64;
            for n in blocks {
                let block = self.block(n)?.ok_or_else(|| {
                    ExecutorError::corrupt("bodies", format!("no block {n} at or below the head"))
                })?;
                total += block
                    .transactions
                    .iter()
                    .filter(|tx| tx.tx.inner().is_deposit())
                    .count() as u64;
            }
            Ok(total)
        };
        if number >= state_block {
            // A head whose data landed a moment before its state; nothing past the head.
            let head = snapshot.head()?.map_or(state_block, |(head, _)| head);
            return Ok(counter + deposits(state_block + 1..=number.min(head))?);
        }
        counter
            .checked_sub(deposits(number + 1..=state_block)?)
            .ok_or_else(|| {
                ExecutorError::corrupt(
                    "state",
                    "more deposits in blocks than the L1 message counter",
                )
            })
    }

    /// EIP-1186 proofs of `address` and its `slots` at block `number`: the head, or one of
    /// the recent blocks [`Storage::with_history`] keeps. `None` when the block's state is
    /// not kept.
    pub fn account_proof_at(
        &self,
        number: u64,
        address: Address,
        slots: &[B256],
    ) -> ExecutorResult<Option<((u64, B256), AccountProof)>> {
        // The head's state may still be being written: its proof needs its tries.
        if self
            .unwritten
            .read()
            .as_ref()
            .is_some_and(|u| u.number == number)
        {
            self.write_state()?;
        }
        if self.state_head()? == Some(number) {
            let (head, proof) = self.account_proof(address, slots)?;
            // The head moved on between the two reads: fall through to the kept states.
            if head.0 == number {
                return Ok(Some((head, proof)));
            }
        }
        match &self.history {
            Some(history) => history.proof(number, address, slots),
            None => Ok(None),
        }
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> ExecutorResult<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    fn write_trie(&self, batch: &mut WriteBatch, trie: &StateTrieUpdate) {
        let hashed_accounts = self.cf(CF_HASHED_ACCOUNTS);
        let hashed_storage = self.cf(CF_HASHED_STORAGE);
        let account_trie = self.cf(CF_ACCOUNT_TRIE);
        let storage_trie = self.cf(CF_STORAGE_TRIE);
        for (key, leaf) in &trie.accounts {
            match leaf {
                Some(leaf) => batch.put_cf(hashed_accounts, key, leaf),
                None => batch.delete_cf(hashed_accounts, key),
            }
        }
        let mut key = Vec::with_capacity(128);
        for (path, node) in &trie.account_nodes {
            key.clear();
            encode_path(path, &mut key);
            match node {
                Some(node) => batch.put_cf(account_trie, &key, encode_node(node)),
                None => batch.delete_cf(account_trie, &key),
            }
        }
        for storage in &trie.storages {
            let prefix = storage.hashed_address.as_slice();
            if storage.wiped {
                // Keys under an all-0xff prefix are at most 64 bytes long.
                let end = prefix_end(prefix).unwrap_or_else(|| vec![0xff; 65]);
                batch.delete_range_cf(hashed_storage, prefix, &end);
                batch.delete_range_cf(storage_trie, prefix, &end);
            }
            for (slot, leaf) in &storage.slots {
                key.clear();
                key.extend_from_slice(prefix);
                key.extend_from_slice(slot.as_slice());
                match leaf {
                    Some(leaf) => batch.put_cf(hashed_storage, &key, leaf),
                    None => batch.delete_cf(hashed_storage, &key),
                }
            }
            for (path, node) in &storage.nodes {
                key.clear();
                key.extend_from_slice(prefix);
                encode_path(path, &mut key);
                match node {
                    Some(node) => batch.put_cf(storage_trie, &key, encode_node(node)),
                    None => batch.delete_cf(storage_trie, &key),
                }
            }
        }
    }

    /// The state columns of `changes`: flat state, code, hashed state and trie nodes.
    fn write_state_columns(
        &self,
        batch: &mut WriteBatch,
        changes: &StateChanges,
        trie: &StateTrieUpdate,
    ) {
        self.write_trie(batch, trie);
        let accounts = self.cf(CF_ACCOUNTS);
        let storage = self.cf(CF_STORAGE);
        for (address, change) in &changes.accounts {
            if change.storage_cleared || change.info.is_none() {
                batch.delete_range_cf(
                    storage,
                    address.as_slice(),
                    address_upper_bound(address).as_slice(),
                );
            }
            match &change.info {
                Some(info) => batch.put_cf(accounts, address, info.encode()),
                None => batch.delete_cf(accounts, address),
            }
            if change.info.is_none() {
                continue;
            }
            for (slot, value) in &change.storage {
                let key = storage_key(address, slot);
                if value.is_zero() {
                    batch.delete_cf(storage, key);
                } else {
                    batch.put_cf(storage, key, value.to_be_bytes::<32>());
                }
            }
        }
        for (hash, code) in &changes.codes {
            batch.put_cf(self.cf(CF_BYTECODE), hash, code);
        }
    }

    /// The block columns: header, hashes, body, receipts, transaction index and the head.
    fn write_block_data(&self, batch: &mut WriteBatch, block: &SealedBlock) {
        let number = block.number().to_be_bytes();
        let mut header = Vec::new();
        block.header.encode(&mut header);
        batch.put_cf(self.cf(CF_HEADERS), number, header);
        batch.put_cf(self.cf(CF_CANONICAL), number, block.hash);
        batch.put_cf(self.cf(CF_BLOCK_NUMBERS), block.hash, number);

        let body: Vec<StoredTx> = block
            .transactions
            .iter()
            .map(|t| StoredTx {
                sender: t.sender(),
                encoded: t.tx.inner().encoded_2718().into(),
            })
            .collect();
        let mut encoded = Vec::new();
        body.encode(&mut encoded);
        batch.put_cf(self.cf(CF_BODIES), number, encoded);

        let receipts: Vec<Bytes> = block
            .receipts
            .iter()
            .map(|r| r.encoded_2718().into())
            .collect();
        let mut encoded = Vec::new();
        receipts.encode(&mut encoded);
        batch.put_cf(self.cf(CF_RECEIPTS), number, encoded);

        for (index, tx) in block.transactions.iter().enumerate() {
            let mut location = [0u8; 12];
            location[..8].copy_from_slice(&number);
            location[8..].copy_from_slice(&(index as u32).to_be_bytes());
            batch.put_cf(self.cf(CF_TX_INDEX), tx.hash(), location);
        }
        batch.put_cf(self.cf(CF_META), META_HEAD, number);
    }

    /// Hash of canonical block `number`.
    pub fn canonical_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        self.db
            .get_cf(self.cf(CF_CANONICAL), number.to_be_bytes())?
            .map(|v| B256::try_from(v.as_slice()))
            .transpose()
            .map_err(|_| ExecutorError::corrupt("canonical", "hash length"))
    }

    /// Number of the block with `hash`.
    pub fn block_number(&self, hash: B256) -> ExecutorResult<Option<u64>> {
        self.db
            .get_cf(self.cf(CF_BLOCK_NUMBERS), hash)?
            .map(|v| be_u64(&v, "block_numbers"))
            .transpose()
    }

    /// Header of block `number`.
    pub fn header(&self, number: u64) -> ExecutorResult<Option<Header>> {
        self.db
            .get_cf(self.cf(CF_HEADERS), number.to_be_bytes())?
            .map(|v| {
                Header::decode(&mut v.as_slice()).map_err(|e| ExecutorError::corrupt("headers", e))
            })
            .transpose()
    }

    /// Transactions of block `number`.
    pub fn transactions(&self, number: u64) -> ExecutorResult<Option<Vec<BlockTx>>> {
        let Some(raw) = self.db.get_cf(self.cf(CF_BODIES), number.to_be_bytes())? else {
            return Ok(None);
        };
        let body = Vec::<StoredTx>::decode(&mut raw.as_slice())
            .map_err(|e| ExecutorError::corrupt("bodies", e))?;
        body.into_iter()
            .map(|stored| {
                let tx = LanesTxEnvelope::decode_2718(&mut stored.encoded.as_ref())
                    .map_err(|e| ExecutorError::corrupt("bodies", e))?;
                Ok(BlockTx::new(Arc::new(Recovered::new_unchecked(
                    tx,
                    stored.sender,
                ))))
            })
            .collect::<ExecutorResult<Vec<_>>>()
            .map(Some)
    }

    /// Receipts of block `number`.
    pub fn receipts(&self, number: u64) -> ExecutorResult<Option<Vec<LanesReceipt>>> {
        let Some(raw) = self.db.get_cf(self.cf(CF_RECEIPTS), number.to_be_bytes())? else {
            return Ok(None);
        };
        let list = Vec::<Bytes>::decode(&mut raw.as_slice())
            .map_err(|e| ExecutorError::corrupt("receipts", e))?;
        list.into_iter()
            .map(|bytes| {
                LanesReceipt::decode_2718(&mut bytes.as_ref())
                    .map_err(|e| ExecutorError::corrupt("receipts", e))
            })
            .collect::<ExecutorResult<Vec<_>>>()
            .map(Some)
    }

    /// The whole block `number`.
    pub fn block(&self, number: u64) -> ExecutorResult<Option<SealedBlock>> {
        let Some(header) = self.header(number)? else {
            return Ok(None);
        };
        let transactions = self.transactions(number)?.unwrap_or_default();
        let receipts = self.receipts(number)?.unwrap_or_default();
        Ok(Some(SealedBlock::new(header, transactions, receipts)))
    }

    /// Where the transaction `hash` landed.
    pub fn tx_location(&self, hash: B256) -> ExecutorResult<Option<TxLocation>> {
        let Some(raw) = self.db.get_cf(self.cf(CF_TX_INDEX), hash)? else {
            return Ok(None);
        };
        if raw.len() != 12 {
            return Err(ExecutorError::corrupt("tx_index", "length"));
        }
        Ok(Some(TxLocation {
            block_number: be_u64(&raw[..8], "tx_index")?,
            index: u32::from_be_bytes(raw[8..].try_into().expect("4 bytes")),
        }))
    }

    /// A consistent point-in-time view of the state, unaffected by later commits.
    pub fn snapshot(&self) -> StorageSnapshot<'_> {
        // The overlay first: a block whose data lands after it is not in the snapshot's
        // state either, and one whose state lands before the snapshot is dropped below.
        let unwritten = self.unwritten.read().clone();
        let snapshot = self.db.snapshot();
        let mut snapshot = StorageSnapshot {
            storage: self,
            snapshot,
            unwritten: None,
        };
        // On a read error keep the overlay: on top of its own state it reads the same.
        let state_head = snapshot.trie_head().ok().flatten();
        snapshot.unwritten = unwritten.filter(|u| state_head.is_none_or(|h| u.number > h));
        snapshot
    }

    /// Flushes the memtables and compacts every column family into one sorted run: the
    /// layout of a store that has been running for a while. For tools and benchmarks.
    pub fn compact(&self) -> ExecutorResult<()> {
        for name in ALL_CFS {
            let cf = self.cf(name);
            self.db.flush_cf(cf)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// The RocksDB handle and every column family, for metrics read from RocksDB properties.
    pub fn rocksdb(&self) -> (&DB, Vec<&ColumnFamily>) {
        (&self.db, ALL_CFS.iter().map(|name| self.cf(name)).collect())
    }

    /// Approximate on-disk size in bytes (SST files), for metrics.
    pub fn size_bytes(&self) -> u64 {
        ALL_CFS
            .iter()
            .filter_map(|name| {
                self.db
                    .property_int_value_cf(self.cf(name), "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
            })
            .sum()
    }

    fn read_account(&self, value: Option<Vec<u8>>) -> ExecutorResult<Option<StoredAccount>> {
        value.map(|v| StoredAccount::decode(&v)).transpose()
    }

    fn read_flat_state(&self, read_opts: impl Fn() -> ReadOptions) -> ExecutorResult<FlatState> {
        let mut state = FlatState::default();
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_ACCOUNTS), read_opts(), IteratorMode::Start)
        {
            let (key, value) = item?;
            let address = Address::try_from(key.as_ref())
                .map_err(|_| ExecutorError::corrupt("accounts", "key length"))?;
            state
                .accounts
                .insert(address, StoredAccount::decode(&value)?);
        }
        for item in self.db.iterator_cf_opt(
            self.cf(CF_STORAGE),
            read_opts(),
            IteratorMode::From(&[], Direction::Forward),
        ) {
            let (key, value) = item?;
            if key.len() != 52 || value.len() != 32 {
                return Err(ExecutorError::corrupt("storage", "key or value length"));
            }
            let address = Address::from_slice(&key[..20]);
            let slot = U256::from_be_slice(&key[20..]);
            state
                .storage
                .entry(address)
                .or_default()
                .insert(slot, U256::from_be_slice(&value));
        }
        Ok(state)
    }
}

/// A single read consults the unwritten block first. Should its state land between that
/// look and the column read, the column holds the same value or a later block's: each read
/// returns the value at some block at or after the head it started at.
impl StateReader for Storage {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        if let Some(unwritten) = &*self.unwritten.read()
            && let Some(info) = unwritten.changes.account(&address)
        {
            return Ok(info);
        }
        self.read_account(self.db.get_cf(self.cf(CF_ACCOUNTS), address)?)
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        if let Some(unwritten) = &*self.unwritten.read()
            && let Some(value) = unwritten.changes.storage(&address, &slot)
        {
            return Ok(value);
        }
        Ok(self
            .db
            .get_cf(self.cf(CF_STORAGE), storage_key(&address, &slot))?
            .map_or(U256::ZERO, |v| U256::from_be_slice(&v)))
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        if let Some(unwritten) = &*self.unwritten.read()
            && let Some(code) = unwritten.changes.codes.get(&hash)
        {
            return Ok(Some(code.clone()));
        }
        Ok(self.db.get_cf(self.cf(CF_BYTECODE), hash)?.map(Bytes::from))
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        self.canonical_hash(number)
    }
}

/// Reads the flat state columns as `snapshot` sees them (for [`History`]).
fn read_flat_at(db: &DB, snapshot: &Snapshot<'_>, read: FlatRead) -> ExecutorResult<FlatValue> {
    let cf = |name: &'static str| {
        db.cf_handle(name)
            .ok_or_else(|| ExecutorError::corrupt(name, "column family missing"))
    };
    Ok(match read {
        FlatRead::Account(address) => FlatValue::Account(
            snapshot
                .get_cf(cf(CF_ACCOUNTS)?, address)?
                .map(|v| StoredAccount::decode(&v))
                .transpose()?,
        ),
        FlatRead::Storage(address, slot) => FlatValue::Storage(
            snapshot
                .get_cf(cf(CF_STORAGE)?, storage_key(&address, &slot))?
                .map_or(U256::ZERO, |v| U256::from_be_slice(&v)),
        ),
    })
}

/// The state after a recent block ([`Storage::state_at`]): the RocksDB snapshot pinned when
/// the block's state was written, read on the history thread.
#[derive(Clone, Debug)]
pub struct StateAt {
    storage: Arc<Storage>,
    number: u64,
}

impl StateAt {
    /// The block whose state this reads.
    pub fn number(&self) -> u64 {
        self.number
    }

    fn read(&self, read: FlatRead) -> ExecutorResult<FlatValue> {
        self.storage
            .history
            .as_ref()
            .and_then(|history| history.read(self.number, read).transpose())
            // Pinned when this reader was made, and dropped since by newer blocks.
            .unwrap_or_else(|| {
                Err(ExecutorError::Mismatch(format!(
                    "the state of block {} is no longer kept",
                    self.number
                )))
            })
    }
}

impl StateReader for StateAt {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        match self.read(FlatRead::Account(address))? {
            FlatValue::Account(account) => Ok(account),
            FlatValue::Storage(_) => Err(ExecutorError::Mismatch("an account read".into())),
        }
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        match self.read(FlatRead::Storage(address, slot))? {
            FlatValue::Storage(value) => Ok(value),
            FlatValue::Account(_) => Err(ExecutorError::Mismatch("a storage read".into())),
        }
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        // Code is content-addressed and never deleted.
        self.storage.code(hash)
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        // BLOCKHASH only reaches blocks before this one, which are canonical.
        if number > self.number {
            return Ok(None);
        }
        self.storage.canonical_hash(number)
    }
}

impl Storage {
    /// A reader of the state after block `number`, if it is one of the recent blocks
    /// [`Storage::with_history`] keeps (the head's state is read from `self`).
    pub fn state_at(self: &Arc<Self>, number: u64) -> ExecutorResult<Option<StateAt>> {
        let Some(history) = &self.history else {
            return Ok(None);
        };
        Ok(history
            .read(number, FlatRead::Account(Address::ZERO))?
            .map(|_| StateAt {
                storage: self.clone(),
                number,
            }))
    }
}

impl FullState for Storage {
    fn flat_state(&self) -> ExecutorResult<FlatState> {
        self.snapshot().flat_state()
    }

    fn state_root_after(&self, changes: &StateChanges) -> ExecutorResult<B256> {
        self.state_root(changes)
    }
}

/// A point-in-time view of a [`Storage`] (RocksDB snapshot).
pub struct StorageSnapshot<'a> {
    storage: &'a Storage,
    snapshot: Snapshot<'a>,
    /// The block whose state was not written when the snapshot was taken.
    unwritten: Option<Arc<Unwritten>>,
}

impl std::fmt::Debug for StorageSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSnapshot").finish_non_exhaustive()
    }
}

impl StorageSnapshot<'_> {
    /// Header of block `number`, which must exist in the snapshot.
    fn header(&self, number: u64) -> ExecutorResult<Header> {
        let raw = self
            .snapshot
            .get_cf(self.storage.cf(CF_HEADERS), number.to_be_bytes())?
            .ok_or_else(|| ExecutorError::corrupt("headers", format!("no header {number}")))?;
        Header::decode(&mut raw.as_slice()).map_err(|e| ExecutorError::corrupt("headers", e))
    }

    /// The head `(number, hash)` as of the snapshot.
    pub fn head(&self) -> ExecutorResult<Option<(u64, B256)>> {
        let Some(number) = self.snapshot.get_cf(self.storage.cf(CF_META), META_HEAD)? else {
            return Ok(None);
        };
        let number = be_u64(&number, "meta")?;
        Ok(self.block_hash(number)?.map(|hash| (number, hash)))
    }

    /// `(number, hash)` of the block the snapshot's tries describe.
    fn trie_block(&self) -> ExecutorResult<(u64, B256)> {
        let number = self
            .trie_head()?
            .ok_or_else(|| ExecutorError::Mismatch("the data directory holds no chain".into()))?;
        let hash = self.block_hash(number)?.ok_or_else(|| {
            ExecutorError::corrupt("canonical", format!("no hash for state head {number}"))
        })?;
        Ok((number, hash))
    }

    /// The block the snapshot's state columns and tries describe.
    fn trie_head(&self) -> ExecutorResult<Option<u64>> {
        read_state_head(|key| self.snapshot.get_cf(self.storage.cf(CF_META), key))
    }

    /// The block whose state the snapshot's reads give (the tries may be one behind).
    pub fn state_block(&self) -> ExecutorResult<Option<u64>> {
        match &self.unwritten {
            Some(unwritten) => Ok(Some(unwritten.number)),
            None => self.trie_head(),
        }
    }
}

impl StateReader for StorageSnapshot<'_> {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        if let Some(info) = self
            .unwritten
            .as_ref()
            .and_then(|u| u.changes.account(&address))
        {
            return Ok(info);
        }
        self.storage.read_account(
            self.snapshot
                .get_cf(self.storage.cf(CF_ACCOUNTS), address)?,
        )
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        if let Some(value) = self
            .unwritten
            .as_ref()
            .and_then(|u| u.changes.storage(&address, &slot))
        {
            return Ok(value);
        }
        Ok(self
            .snapshot
            .get_cf(self.storage.cf(CF_STORAGE), storage_key(&address, &slot))?
            .map_or(U256::ZERO, |v| U256::from_be_slice(&v)))
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        // Code is content-addressed and never deleted: no snapshot needed.
        self.storage.code(hash)
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        self.snapshot
            .get_cf(self.storage.cf(CF_CANONICAL), number.to_be_bytes())?
            .map(|v| B256::try_from(v.as_slice()))
            .transpose()
            .map_err(|_| ExecutorError::corrupt("canonical", "hash length"))
    }
}

impl StorageSnapshot<'_> {
    /// The state columns alone, without the unwritten block: what the tries describe.
    fn columns_flat_state(&self) -> ExecutorResult<FlatState> {
        self.storage.read_flat_state(|| {
            let mut opts = ReadOptions::default();
            opts.set_snapshot(&self.snapshot);
            opts
        })
    }
}

impl FullState for StorageSnapshot<'_> {
    fn flat_state(&self) -> ExecutorResult<FlatState> {
        let mut state = self.columns_flat_state()?;
        if let Some(unwritten) = &self.unwritten {
            state.apply(&unwritten.changes);
        }
        Ok(state)
    }
}

/// The trie tables of `db`, read through `snapshot` if given, without the node cache.
fn tables_on<'a>(db: &'a DB, snapshot: Option<&'a Snapshot<'a>>) -> TrieTables<'a> {
    let cf = |name: &'static str| db.cf_handle(name).expect("column family created at open");
    TrieTables {
        db,
        account_trie: cf(CF_ACCOUNT_TRIE),
        storage_trie: cf(CF_STORAGE_TRIE),
        hashed_accounts: cf(CF_HASHED_ACCOUNTS),
        hashed_storage: cf(CF_HASHED_STORAGE),
        snapshot,
        cache: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{root, state::AccountChange};
    use alloy_primitives::KECCAK256_EMPTY;

    fn open() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        (dir, storage)
    }

    #[test]
    fn aux_values_round_trip_apart_from_the_chain_keys() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        let genesis = GenesisSpec::dev(42069, 30_000_000).unwrap();
        storage.init_or_check_genesis(&genesis).unwrap();
        assert_eq!(storage.aux("head").unwrap(), None);
        storage.put_aux("head", b"not the chain head").unwrap();
        storage.put_aux("cursor", b"1").unwrap();
        storage.put_aux("cursor", b"2").unwrap();
        drop(storage);
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.aux("cursor").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(storage.head().unwrap().unwrap().0, 0);
        storage.delete_aux("cursor").unwrap();
        assert_eq!(storage.aux("cursor").unwrap(), None);
        assert_eq!(storage.init_or_check_genesis(&genesis).unwrap().0, 0);
    }

    #[test]
    fn genesis_round_trips_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = GenesisSpec::dev(42069, 30_000_000).unwrap();
        let hash = genesis.header.hash_slow();
        {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            assert_eq!(storage.init_or_check_genesis(&genesis).unwrap(), (0, hash));
        }
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.init_or_check_genesis(&genesis).unwrap(), (0, hash));
        assert_eq!(storage.chain_id().unwrap(), Some(42069));
        assert_eq!(storage.header(0).unwrap().unwrap().hash_slow(), hash);
        assert_eq!(storage.block_number(hash).unwrap(), Some(0));
        let root = root::state_root_with(&storage, &StateChanges::default()).unwrap();
        assert_eq!(root, genesis.header.state_root);
        // A different genesis must be refused.
        let other = GenesisSpec::dev(1, 30_000_000).unwrap();
        assert!(matches!(
            storage.init_or_check_genesis(&other),
            Err(ExecutorError::Mismatch(_))
        ));
    }

    #[test]
    fn start_check_catches_tries_that_do_not_give_the_head_root() {
        let (_dir, storage) = open();
        let genesis = GenesisSpec::dev(42069, 30_000_000).unwrap();
        storage.init_or_check_genesis(&genesis).unwrap();
        assert_eq!(storage.check_state_root().unwrap().0, 0);
        assert_eq!(storage.trie_root().unwrap(), genesis.header.state_root);
        assert!(storage.verify_state_root().unwrap().is_ok());
        // A lost leaf: the stored nodes still give the root, the full check sees it.
        let mut keys = storage
            .db
            .iterator_cf(storage.cf(CF_HASHED_ACCOUNTS), IteratorMode::Start);
        let (key, _) = keys.next().unwrap().unwrap();
        drop(keys);
        storage
            .db
            .delete_cf(storage.cf(CF_HASHED_ACCOUNTS), key)
            .unwrap();
        assert!(storage.check_state_root().is_ok());
        let check = storage.verify_state_root().unwrap();
        assert!(!check.is_ok());
        assert_eq!(check.flat_root, genesis.header.state_root);
        // What a data directory written before the trie tables existed looks like.
        for cf in [
            CF_HASHED_ACCOUNTS,
            CF_HASHED_STORAGE,
            CF_ACCOUNT_TRIE,
            CF_STORAGE_TRIE,
        ] {
            storage
                .db
                .delete_range_cf(storage.cf(cf), &[][..], &[0xffu8; 100][..])
                .unwrap();
        }
        assert!(matches!(
            storage.check_state_root(),
            Err(ExecutorError::Mismatch(_))
        ));
    }

    #[test]
    fn state_changes_apply_and_clear_storage() {
        let (_dir, storage) = open();
        let a = Address::repeat_byte(0xaa);
        let b = Address::repeat_byte(0xff);
        let mut changes = StateChanges::default();
        for address in [a, b] {
            let mut change = AccountChange {
                info: Some(StoredAccount {
                    nonce: 1,
                    balance: U256::from(5),
                    code_hash: KECCAK256_EMPTY,
                }),
                ..Default::default()
            };
            change.storage.insert(U256::from(1), U256::from(11));
            change.storage.insert(U256::MAX, U256::from(12));
            changes.accounts.insert(address, change);
        }
        let header = Header {
            number: 1,
            ..Default::default()
        };
        storage
            .commit_block(&SealedBlock::new(header, vec![], vec![]), &changes)
            .unwrap();
        assert_eq!(storage.storage(a, U256::MAX).unwrap(), U256::from(12));
        assert_eq!(storage.storage(b, U256::from(1)).unwrap(), U256::from(11));
        let snapshot = storage.snapshot();

        // Delete `b` (the 0xff..ff address exercises the range-bound edge case) and zero a slot of `a`.
        let mut changes = StateChanges::default();
        changes.accounts.insert(
            b,
            AccountChange {
                info: None,
                storage_cleared: true,
                ..Default::default()
            },
        );
        let mut change = AccountChange {
            info: Some(StoredAccount {
                nonce: 2,
                balance: U256::from(5),
                code_hash: KECCAK256_EMPTY,
            }),
            ..Default::default()
        };
        change.storage.insert(U256::from(1), U256::ZERO);
        changes.accounts.insert(a, change);
        let header = Header {
            number: 2,
            ..Default::default()
        };
        storage
            .commit_block(&SealedBlock::new(header, vec![], vec![]), &changes)
            .unwrap();

        assert_eq!(storage.account(b).unwrap(), None);
        assert_eq!(storage.storage(b, U256::MAX).unwrap(), U256::ZERO);
        assert_eq!(storage.storage(a, U256::from(1)).unwrap(), U256::ZERO);
        assert_eq!(storage.storage(a, U256::MAX).unwrap(), U256::from(12));
        assert_eq!(storage.head().unwrap().unwrap().0, 2);
        // The snapshot still sees block 1.
        assert_eq!(snapshot.storage(b, U256::MAX).unwrap(), U256::from(12));
        assert_eq!(snapshot.head().unwrap().unwrap().0, 1);
        let flat = storage.flat_state().unwrap();
        assert_eq!(flat.accounts.len(), 1);
        assert_eq!(flat.storage[&a].len(), 1);
    }

    /// Changes that exercise every part of a diff: a new account with code and storage, a
    /// deleted account, cleared storage with new slots, and a zeroed slot.
    fn varied_changes(seed: u8) -> StateChanges {
        let mut changes = StateChanges::default();
        let code = Bytes::from(vec![0x60, seed, 0x00]);
        let code_hash = alloy_primitives::keccak256(&code);
        changes.codes.insert(code_hash, code);
        let mut contract = AccountChange {
            info: Some(StoredAccount {
                nonce: 1,
                balance: U256::from(seed),
                code_hash,
            }),
            storage_cleared: true,
            ..Default::default()
        };
        contract
            .storage
            .insert(U256::from(1), U256::from(seed) + U256::from(1));
        contract.storage.insert(U256::from(2), U256::ZERO);
        changes
            .accounts
            .insert(Address::repeat_byte(0xc0 | seed), contract);
        changes.accounts.insert(
            Address::repeat_byte(0xd0 | seed),
            AccountChange {
                info: None,
                storage_cleared: true,
                ..Default::default()
            },
        );
        let mut payer = AccountChange {
            info: Some(StoredAccount {
                nonce: u64::from(seed),
                balance: U256::MAX - U256::from(seed),
                code_hash: KECCAK256_EMPTY,
            }),
            ..Default::default()
        };
        payer.storage.insert(U256::MAX, U256::from(7));
        changes
            .accounts
            .insert(Address::repeat_byte(0xe0 | seed), payer);
        changes
    }

    /// A dev chain at genesis and block 1 on it, sealed with the root of `changes`.
    fn genesis_and_block(storage: &Storage, changes: &StateChanges) -> SealedBlock {
        genesis_and_block_with(storage, changes, vec![], vec![])
    }

    fn genesis_and_block_with(
        storage: &Storage,
        changes: &StateChanges,
        transactions: Vec<BlockTx>,
        receipts: Vec<LanesReceipt>,
    ) -> SealedBlock {
        let genesis = GenesisSpec::dev(42069, 30_000_000).unwrap();
        let (_, genesis_hash) = storage.init_or_check_genesis(&genesis).unwrap();
        let header = Header {
            number: 1,
            parent_hash: genesis_hash,
            state_root: storage.state_root(changes).unwrap(),
            ..Default::default()
        };
        SealedBlock::new(header, transactions, receipts)
    }

    #[test]
    fn l1_messages_included_holds_while_a_heads_state_is_unwritten() {
        let dir = tempfile::tempdir().unwrap();
        let count = |storage: &Storage| {
            (0..=1)
                .map(|n| storage.l1_messages_included(n).unwrap())
                .collect::<Vec<_>>()
        };
        {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            // Block 1 executes two deposits: the message counter goes from 0 to 2.
            let mut changes = StateChanges::default();
            changes.accounts.insert(
                crate::L1_MESSAGE_COUNTER,
                AccountChange {
                    info: Some(StoredAccount {
                        nonce: 2,
                        balance: U256::ZERO,
                        code_hash: KECCAK256_EMPTY,
                    }),
                    ..Default::default()
                },
            );
            let deposit = |seed: u8| {
                let from = Address::repeat_byte(seed);
                let tx = LanesTxEnvelope::deposit(op_alloy_consensus::TxDeposit {
                    from,
                    source_hash: B256::repeat_byte(seed),
                    ..Default::default()
                });
                BlockTx::new(Arc::new(Recovered::new_unchecked(tx, from)))
            };
            let receipts = (0..2)
                .map(|n| LanesReceipt::deposit(Default::default(), n))
                .collect();
            let block =
                genesis_and_block_with(&storage, &changes, vec![deposit(1), deposit(2)], receipts);
            assert_eq!(count(&storage), [0, 0]);
            storage
                .commit_block_data(&block, Arc::new(changes))
                .unwrap();
            // Through the overlay.
            assert_eq!(count(&storage), [0, 2]);
            // The moment between the data write and the overlay: head 1 over block 0's state.
            *storage.unwritten.write() = None;
            assert_eq!(storage.state_head().unwrap(), Some(0));
            assert_eq!(count(&storage), [0, 2]);
        }
        // Replayed at open: from the columns.
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.state_head().unwrap(), Some(1));
        assert_eq!(count(&storage), [0, 2]);
    }

    #[test]
    fn state_diffs_round_trip() {
        let changes = varied_changes(3);
        assert_eq!(decode_diff(&encode_diff(&changes)).unwrap(), changes);
        assert_eq!(
            decode_diff(&encode_diff(&StateChanges::default())).unwrap(),
            StateChanges::default()
        );
        assert!(decode_diff(&[0xc1]).is_err());
    }

    #[test]
    fn a_block_is_served_before_its_state_is_written_and_replayed_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let changes = varied_changes(1);
        let contract = Address::repeat_byte(0xc1);
        let block = {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            let block = genesis_and_block(&storage, &changes);
            let before = storage.snapshot();
            storage
                .commit_block_data(&block, Arc::new(changes.clone()))
                .unwrap();
            // The block is the head; its state is not in the columns yet, reads see it all
            // the same, through the store and through a snapshot.
            assert_eq!(storage.head().unwrap(), Some((1, block.hash)));
            assert_eq!(storage.state_head().unwrap(), Some(0));
            let snapshot = storage.snapshot();
            assert_eq!(snapshot.state_block().unwrap(), Some(1));
            for reader in [&storage as &dyn StateReader, &snapshot] {
                assert_eq!(
                    reader.account(contract).unwrap(),
                    changes.accounts[&contract].info
                );
                assert_eq!(
                    reader.storage(contract, U256::from(1)).unwrap(),
                    U256::from(2)
                );
                let code_hash = changes.accounts[&contract].info.unwrap().code_hash;
                assert_eq!(
                    reader.code(code_hash).unwrap(),
                    Some(changes.codes[&code_hash].clone())
                );
            }
            assert_eq!(
                root::state_root(&storage.flat_state().unwrap()),
                block.header.state_root
            );
            // A snapshot from before the commit still reads the parent state.
            assert_eq!(before.state_block().unwrap(), Some(0));
            assert_eq!(before.account(contract).unwrap(), None);
            assert_eq!(storage.l1_messages_included(1).unwrap(), 0);
            // Dropped here without step 2: a crash between the two writes.
            block
        };
        let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
        assert_eq!(storage.state_head().unwrap(), Some(1));
        assert_eq!(storage.check_state_root().unwrap(), (1, block.hash));
        assert!(storage.verify_state_root().unwrap().is_ok());
        assert_eq!(
            storage
                .db
                .get_cf(storage.cf(CF_STATE_DIFFS), 1u64.to_be_bytes())
                .unwrap(),
            None
        );
        assert_eq!(
            storage.storage(contract, U256::from(1)).unwrap(),
            U256::from(2)
        );
    }

    #[test]
    fn the_state_write_lands_the_state_and_a_diff_that_misses_its_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            let changes = varied_changes(1);
            let block = genesis_and_block(&storage, &changes);
            storage
                .commit_block_data(&block, Arc::new(changes.clone()))
                .unwrap();
            // The fsync after publishing runs on its own thread.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while storage.wal_sync_stats().unwrap().syncs == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no fsync after the commit"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // A proof of the head waits for its state.
            let contract = Address::repeat_byte(0xc1);
            let (at, proof) = storage.account_proof_at(1, contract, &[]).unwrap().unwrap();
            assert_eq!(at, (1, block.hash));
            assert_eq!(proof.state_root, block.header.state_root);
            assert_eq!(storage.state_head().unwrap(), Some(1));
            storage.write_state().unwrap();
            assert!(storage.verify_state_root().unwrap().is_ok());

            // Block 2 with a header root its diff does not give, left unwritten.
            let header = Header {
                number: 2,
                parent_hash: block.hash,
                state_root: B256::repeat_byte(9),
                ..Default::default()
            };
            storage
                .commit_block_data(
                    &SealedBlock::new(header, vec![], vec![]),
                    Arc::new(varied_changes(2)),
                )
                .unwrap();
        }
        let err = Storage::open(dir.path(), &StorageOptions::default()).unwrap_err();
        assert!(err.to_string().contains("diff of block 2"), "{err}");
    }
}
