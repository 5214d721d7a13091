//! Ethereum Foundation blockchain tests (`BlockchainTests` of `ethereum/tests`), run through
//! [`import_block`] and any [`BlockExecutor`].
//!
//! Each test starts from its `pre` state and genesis block, imports its blocks in order
//! (blocks marked `expectException` must be rejected and leave the state alone), and must end
//! with the `postState` (or `postStateHash`) and the head `lastblockhash` it names. Only
//! `Cancun` tests run, since that is the only fork lanes implements; the others are skipped
//! with their fork named. The `ef-tests` binary and the crate's smoke test both use this
//! module.

use crate::{
    block::SealedBlock,
    error::ExecutorError,
    error::ExecutorResult,
    evm::ChainSpec,
    executor::BlockExecutor,
    import::{decode_block, import_block},
    root::{FlatState, FullState},
    state::{AccountChange, MemoryState, StateChanges, StateReader, StoredAccount},
    storage::{Storage, StorageOptions},
};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U64, U256, keccak256};
use rayon::prelude::*;
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

/// The fork the executor implements; tests for any other network are skipped.
pub const SUPPORTED_NETWORK: &str = "Cancun";

/// Chain id every EF blockchain test uses.
const TEST_CHAIN_ID: u64 = 1;

/// One blockchain test as stored in the JSON files (only the fields the runner needs).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainTest {
    /// Fork the test is filled for (`Cancun`, `Shanghai`, ...).
    pub network: String,
    /// RLP of the genesis block.
    #[serde(rename = "genesisRLP")]
    pub genesis_rlp: Bytes,
    /// The genesis header as JSON; only its hash is used.
    pub genesis_block_header: GenesisHeader,
    /// Blocks to import in order.
    pub blocks: Vec<TestBlock>,
    /// The genesis state.
    pub pre: BTreeMap<Address, TestAccount>,
    /// The expected state after the last valid block.
    pub post_state: Option<BTreeMap<Address, TestAccount>>,
    /// The expected state root after the last valid block, when the full state is left out.
    pub post_state_hash: Option<B256>,
    /// Hash of the expected head.
    #[serde(rename = "lastblockhash")]
    pub last_block_hash: B256,
}

/// The part of `genesisBlockHeader` the runner checks.
#[derive(Clone, Debug, Deserialize)]
pub struct GenesisHeader {
    /// The genesis block hash.
    pub hash: B256,
}

/// A block of a test.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestBlock {
    /// The block's RLP (possibly malformed on purpose).
    pub rlp: Bytes,
    /// Set when the block must be rejected: the exception a client is expected to raise.
    pub expect_exception: Option<String>,
}

/// An account in `pre` or `postState`.
#[derive(Clone, Debug, Deserialize)]
pub struct TestAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: U64,
    /// Code (empty for externally owned accounts).
    #[serde(default)]
    pub code: Bytes,
    /// Storage slots.
    #[serde(default)]
    pub storage: BTreeMap<U256, U256>,
}

/// What happened to one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything matched.
    Passed,
    /// Something did not match or a block was wrongly accepted or rejected: why.
    Failed(String),
    /// Not run: why (the fork, typically).
    Skipped(String),
}

/// The outcome of one named test in one file.
#[derive(Clone, Debug)]
pub struct TestReport {
    /// The file the test is in.
    pub file: PathBuf,
    /// The test's name (its key in the file).
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Counts of outcomes; its `Display` is the runner's closing line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that were skipped.
    pub skipped: usize,
}

impl Summary {
    /// Counts the outcomes of `reports`.
    pub fn of(reports: &[TestReport]) -> Self {
        let mut summary = Self::default();
        for report in reports {
            match report.outcome {
                Outcome::Passed => summary.passed += 1,
                Outcome::Failed(_) => summary.failed += 1,
                Outcome::Skipped(_) => summary.skipped += 1,
            }
        }
        summary
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The `.json` files under `paths` (files are taken as they are, directories searched
/// recursively), sorted so runs are reproducible.
pub fn find_test_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files)?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Runs every test of every file in `files`, files in parallel on the current rayon pool.
pub fn run_files<E: BlockExecutor + ?Sized>(files: &[PathBuf], executor: &E) -> Vec<TestReport> {
    files
        .par_iter()
        .flat_map_iter(|file| run_file(file, executor))
        .collect()
}

/// Runs every test in the JSON file at `path`. A file that cannot be read or parsed is
/// reported as one failed test named after the file.
pub fn run_file<E: BlockExecutor + ?Sized>(path: &Path, executor: &E) -> Vec<TestReport> {
    let report = |name: String, outcome| TestReport {
        file: path.to_path_buf(),
        name,
        outcome,
    };
    let tests: BTreeMap<String, BlockchainTest> = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(tests) => tests,
        Err(e) => {
            return vec![report(
                path.display().to_string(),
                Outcome::Failed(format!("unreadable: {e}")),
            )];
        }
    };
    tests
        .into_iter()
        .map(|(name, test)| {
            let outcome = catch_unwind(AssertUnwindSafe(|| run_test(&test, executor)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Outcome::Failed(format!("panicked: {message}"))
                });
            report(name, outcome)
        })
        .collect()
}

/// Runs one test through `executor`.
pub fn run_test<E: BlockExecutor + ?Sized>(test: &BlockchainTest, executor: &E) -> Outcome {
    if test.network != SUPPORTED_NETWORK {
        return Outcome::Skipped(format!("network {}", test.network));
    }
    match run_cancun_test(test, executor) {
        Ok(()) => Outcome::Passed,
        Err(reason) => match unreachable_prestate(test) {
            // revm checks code and nonce for CREATE collisions but not storage (EIP-7610),
            // and lanes refuses such accounts in its genesis, so on a lanes chain this state
            // cannot exist. A test that fails on such a pre-state is reported as skipped with
            // this reason; one that passes despite it counts as passed.
            Some(violation) => Outcome::Skipped(format!(
                "pre-state not reachable on lanes ({violation}); failed with: {reason}"
            )),
            None => Outcome::Failed(reason),
        },
    }
}

/// Why the pre-state could not be a lanes genesis, if it could not.
fn unreachable_prestate(test: &BlockchainTest) -> Option<String> {
    test.pre.iter().find_map(|(address, account)| {
        crate::genesis::check_alloc_account(
            *address,
            account.storage.values().any(|v| !v.is_zero()),
            !account.code.is_empty(),
            account.nonce.to(),
        )
        .err()
        .map(|e| e.to_string())
    })
}

fn run_cancun_test<E: BlockExecutor + ?Sized>(
    test: &BlockchainTest,
    executor: &E,
) -> Result<(), String> {
    let chain = ChainSpec::cancun(TEST_CHAIN_ID);
    let mut state = TestState::new(memory_state(&test.pre)).map_err(|e| e.to_string())?;
    let genesis = decode_block(&test.genesis_rlp).map_err(|e| format!("genesis: {e}"))?;
    let genesis_hash = genesis.header.hash_slow();
    if genesis_hash != test.genesis_block_header.hash {
        return Err(format!(
            "genesis hash {genesis_hash}, test says {}",
            test.genesis_block_header.hash
        ));
    }
    let pre_root = state.commit_genesis(&genesis.header)?;
    if pre_root != genesis.header.state_root {
        return Err(format!(
            "pre-state root {pre_root}, genesis header says {}",
            genesis.header.state_root
        ));
    }
    state
        .memory
        .block_hashes
        .insert(genesis.header.number, genesis_hash);
    let mut head = genesis.header;
    let mut head_hash = genesis_hash;

    for (index, test_block) in test.blocks.iter().enumerate() {
        let result = decode_block(&test_block.rlp)
            .and_then(|block| import_block(&chain, &head, &block, &state, executor));
        match (result, &test_block.expect_exception) {
            (Ok((block, changes)), None) => {
                state.commit(&block, &changes)?;
                head_hash = block.hash;
                head = block.header;
            }
            (Ok(_), Some(exception)) => {
                return Err(format!(
                    "block {index} was imported but must fail with {exception}"
                ));
            }
            (Err(ExecutorError::InvalidBlock(_)), Some(_)) => {}
            (Err(e), _) => return Err(format!("block {index}: {e}")),
        }
    }

    if let Some(expected) = &test.post_state {
        compare_post_state(&state.memory, expected)?;
    }
    if let Some(expected) = test.post_state_hash {
        let root = state.tries.trie_root().map_err(|e| e.to_string())?;
        if root != expected {
            return Err(format!("post-state root {root}, test says {expected}"));
        }
    }
    if head_hash != test.last_block_hash {
        return Err(format!(
            "head {head_hash}, test says {}",
            test.last_block_hash
        ));
    }
    Ok(())
}

/// A test's state twice: in memory, which the executor reads and the post-state check
/// compares, and in an in-memory [`Storage`] whose persisted tries give every state root
/// incrementally, exactly as the node computes them.
struct TestState {
    memory: MemoryState,
    tries: Storage,
}

impl TestState {
    fn new(memory: MemoryState) -> ExecutorResult<Self> {
        let tries = Storage::open_in_memory(&StorageOptions {
            cache_bytes: 4 << 20,
            sync: crate::CommitSync::Never,
        })?;
        Ok(Self { memory, tries })
    }

    /// Stores the pre-state as the genesis block; returns its root.
    fn commit_genesis(&mut self, header: &alloy_consensus::Header) -> Result<B256, String> {
        let mut changes = StateChanges::default();
        for (address, info) in &self.memory.accounts {
            changes.accounts.insert(
                *address,
                AccountChange {
                    info: Some(*info),
                    ..Default::default()
                },
            );
        }
        for ((address, slot), value) in &self.memory.storage {
            if let Some(change) = changes.accounts.get_mut(address) {
                change.storage.insert(*slot, *value);
            }
        }
        changes.codes.extend(
            self.memory
                .codes
                .iter()
                .map(|(hash, code)| (*hash, code.clone())),
        );
        let root = self.tries.state_root(&changes).map_err(|e| e.to_string())?;
        self.tries
            .commit_block(&SealedBlock::new(header.clone(), vec![], vec![]), &changes)
            .map_err(|e| format!("storing the pre-state: {e}"))?;
        Ok(root)
    }

    fn commit(&mut self, block: &SealedBlock, changes: &StateChanges) -> Result<(), String> {
        self.memory.apply(changes);
        self.memory.block_hashes.insert(block.number(), block.hash);
        self.tries
            .commit_block(block, changes)
            .map_err(|e| format!("storing block {}: {e}", block.number()))
    }
}

impl StateReader for TestState {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        self.memory.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        self.memory.storage(address, slot)
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        self.memory.code(hash)
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        self.memory.block_hash(number)
    }
}

impl FullState for TestState {
    fn flat_state(&self) -> ExecutorResult<FlatState> {
        self.memory.flat_state()
    }

    fn state_root_after(&self, changes: &StateChanges) -> ExecutorResult<B256> {
        self.tries.state_root(changes)
    }
}

fn code_hash(code: &Bytes) -> B256 {
    if code.is_empty() {
        KECCAK256_EMPTY
    } else {
        keccak256(code)
    }
}

/// The state `accounts` describe.
pub fn memory_state(accounts: &BTreeMap<Address, TestAccount>) -> MemoryState {
    let mut state = MemoryState::default();
    for (address, account) in accounts {
        let code_hash = code_hash(&account.code);
        if !account.code.is_empty() {
            state.codes.insert(code_hash, account.code.clone());
        }
        state.accounts.insert(
            *address,
            StoredAccount {
                nonce: account.nonce.to(),
                balance: account.balance,
                code_hash,
            },
        );
        for (slot, value) in &account.storage {
            if !value.is_zero() {
                state.storage.insert((*address, *slot), *value);
            }
        }
    }
    state
}

/// Up to this many differences are listed in a failure.
const MAX_DIFFERENCES: usize = 5;

fn compare_post_state(
    state: &MemoryState,
    expected: &BTreeMap<Address, TestAccount>,
) -> Result<(), String> {
    let actual = state.flat_state().map_err(|e| e.to_string())?;
    let no_slots = BTreeMap::new();
    let mut differences = Vec::new();
    for (address, account) in expected {
        let Some(info) = actual.accounts.get(address) else {
            differences.push(format!("{address} missing"));
            continue;
        };
        if info.balance != account.balance {
            differences.push(format!(
                "{address} balance {}, expected {}",
                info.balance, account.balance
            ));
        }
        if info.nonce != account.nonce.to::<u64>() {
            differences.push(format!(
                "{address} nonce {}, expected {}",
                info.nonce, account.nonce
            ));
        }
        if info.code_hash != code_hash(&account.code) {
            differences.push(format!("{address} code differs"));
        }
        let slots = actual.storage.get(address).unwrap_or(&no_slots);
        for (slot, value) in &account.storage {
            let have = slots.get(slot).copied().unwrap_or_default();
            if have != *value {
                differences.push(format!(
                    "{address} slot {slot:#x} = {have:#x}, expected {value:#x}"
                ));
            }
        }
        for (slot, value) in slots {
            if !account.storage.contains_key(slot) {
                differences.push(format!(
                    "{address} slot {slot:#x} = {value:#x}, expected unset"
                ));
            }
        }
    }
    for address in actual.accounts.keys() {
        if !expected.contains_key(address) {
            differences.push(format!("{address} exists, expected absent"));
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    let total = differences.len();
    differences.sort();
    differences.truncate(MAX_DIFFERENCES);
    let more = if total > MAX_DIFFERENCES {
        format!(" (+{} more)", total - MAX_DIFFERENCES)
    } else {
        String::new()
    };
    Err(format!("post state: {}{more}", differences.join("; ")))
}
