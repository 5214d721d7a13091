//! Shared helpers for the batcher's anvil-backed tests: a real L2 chain in RocksDB built by
//! the sequential executor, a local anvil with the lanes contracts, and a batcher on them.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use lanes_batcher::{
    Batcher, BatcherHandle, BatcherMetrics, BatcherResult, BatcherSettings, Codec, Compression,
    DaMode, TxManager, TxManagerConfig,
};
use lanes_executor::executor::VecSource;
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, GenesisSpec, SequentialExecutor, Storage,
    StorageOptions,
};
use lanes_l1_bridge::bindings::LanesRollup;
use lanes_l1_bridge::{DeployParams, DeployedContracts, DevL1, DevL1Options, deploy, dev_account};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// L2 chain id of the tests (the dev chain's).
pub const CHAIN_ID: u64 = 42069;

/// Upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(60);

/// `$LANES_TOOLS_BIN/anvil` or `<repo>/.tools/bin/anvil`.
pub fn anvil_path() -> PathBuf {
    let dir = std::env::var_os("LANES_TOOLS_BIN")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin"));
    let anvil = dir.join("anvil");
    assert!(
        anvil.is_file(),
        "{} does not exist: run `make tools` (or set LANES_TOOLS_BIN)",
        anvil.display()
    );
    anvil
}

/// An automining anvil (one block per transaction) on a free port.
pub async fn start_anvil() -> DevL1 {
    DevL1::start(DevL1Options {
        anvil_path: Some(anvil_path()),
        block_time: None,
        ..DevL1Options::default()
    })
    .await
    .expect("anvil starts")
}

/// An L2 chain in a temporary RocksDB, built block by block with the sequential executor.
pub struct L2Chain {
    pub dir: tempfile::TempDir,
    pub storage: Arc<Storage>,
    pub genesis: GenesisSpec,
    pub chain: ChainSpec,
    keys: Vec<(PrivateKeySigner, u64)>,
    executor: SequentialExecutor,
}

impl L2Chain {
    /// A chain holding only the dev genesis.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (storage, genesis) = open_storage(&dir.path().join("db"));
        // Dev accounts 2..=9: 0 and 1 are the L1 deployer and batcher in these tests (the
        // chains are separate, the keys need not be, but it keeps logs readable).
        let keys = (2..10).map(|i| (dev_account(i), 0)).collect();
        Self {
            dir,
            storage,
            genesis,
            chain: ChainSpec::cancun(CHAIN_ID),
            keys,
            executor: SequentialExecutor::new(),
        }
    }

    /// The head block number.
    pub fn head(&self) -> u64 {
        self.storage.head().unwrap().unwrap().0
    }

    /// Builds and commits `blocks` blocks of `txs` transactions each (ETH transfers, some with
    /// calldata), like the producer does: execute, incremental state root, seal, commit.
    pub fn produce(&mut self, blocks: usize, txs: usize) {
        for _ in 0..blocks {
            let (number, hash) = self.storage.head().unwrap().unwrap();
            let parent = self.storage.header(number).unwrap().unwrap();
            let next = number + 1;
            let base_fee = lanes_executor::import::expected_base_fee(&parent, 0);
            let env = BlockEnvInput {
                number: next,
                parent_hash: hash,
                // Two blocks per second share a timestamp, as the producer's do.
                timestamp: 1_750_000_000 + next / 2,
                beneficiary: Address::repeat_byte(0xfe),
                gas_limit: parent.gas_limit,
                base_fee,
                prevrandao: keccak256([parent.mix_hash.as_slice(), &next.to_be_bytes()].concat()),
                parent_beacon_block_root: B256::ZERO,
                max_txs: txs,
                excess_blob_gas: 0,
            };
            let mut list = Vec::with_capacity(txs);
            for i in 0..txs {
                let k = (next as usize * 7 + i) % self.keys.len();
                let (key, nonce) = &mut self.keys[k];
                let input = if i % 3 == 0 {
                    Bytes::from(keccak256(next.to_be_bytes()).to_vec())
                } else {
                    Bytes::new()
                };
                let tx = TxEip1559 {
                    chain_id: CHAIN_ID,
                    nonce: *nonce,
                    gas_limit: 60_000,
                    max_fee_per_gas: u128::from(base_fee) * 2 + 1_000,
                    max_priority_fee_per_gas: 1_000,
                    to: TxKind::Call(Address::from_word(keccak256([next as u8, i as u8]))),
                    value: U256::from(1_000 + i as u64),
                    access_list: Default::default(),
                    input,
                };
                *nonce += 1;
                let signature = key.sign_hash_sync(&tx.signature_hash()).unwrap();
                let envelope: TxEnvelope = tx.into_signed(signature).into();
                list.push(Arc::new(Recovered::new_unchecked(
                    envelope.into(),
                    key.address(),
                )));
            }
            let mut source = VecSource::new(list);
            let executed = self
                .executor
                .execute(&self.chain, &env, &*self.storage, &mut source)
                .unwrap();
            assert!(source.skipped.is_empty(), "{:?}", source.skipped);
            let root = self.storage.state_root(&executed.changes).unwrap();
            let (block, changes) = executed.seal(root);
            self.storage.commit_block(&block, &changes).unwrap();
        }
    }
}

/// Opens (creating) a store initialised with the dev genesis.
pub fn open_storage(path: &std::path::Path) -> (Arc<Storage>, GenesisSpec) {
    let storage = Storage::open(
        path,
        &StorageOptions {
            cache_bytes: 8 << 20,
            sync: lanes_executor::CommitSync::Never,
        },
    )
    .unwrap();
    let genesis = GenesisSpec::dev(CHAIN_ID, 30_000_000).unwrap();
    storage.init_or_check_genesis(&genesis).unwrap();
    (Arc::new(storage), genesis)
}

/// Deploys the rollup for `l2`'s genesis, with dev account 1 as the batcher key.
pub async fn deploy_for(l1: &DevL1, l2: &L2Chain, finalization: Duration) -> DeployedContracts {
    deploy_with(l1, l2, finalization, Duration::from_secs(600)).await
}

/// [`deploy_for`] with a chosen forced-inclusion delay.
pub async fn deploy_with(
    l1: &DevL1,
    l2: &L2Chain,
    finalization: Duration,
    force_inclusion_delay: Duration,
) -> DeployedContracts {
    deploy(
        l1.url(),
        dev_account(0),
        &DeployParams {
            owner: dev_account(0).address(),
            sequencer: dev_account(1).address(),
            genesis_state_root: l2.genesis.header.state_root,
            finalization_period: finalization,
            force_inclusion_delay,
        },
    )
    .await
    .expect("contracts deploy")
}

/// Transaction manager policy for tests: quick polls, one confirmation.
pub fn txmgr_config() -> TxManagerConfig {
    TxManagerConfig {
        confirmations: 1,
        poll_interval: Duration::from_millis(50),
        resubmit_after: Duration::from_secs(3),
        max_wait: Duration::from_secs(60),
        ..TxManagerConfig::default()
    }
}

/// A transaction manager with the batcher key (dev account 1).
pub async fn txmgr(l1: &DevL1) -> Arc<TxManager> {
    Arc::new(
        TxManager::connect(l1.url(), dev_account(1), txmgr_config())
            .await
            .unwrap(),
    )
}

/// Batcher settings for tests: small batches, quick polls.
pub fn settings(
    deployed: &DeployedContracts,
    max_batch_bytes: usize,
    mode: DaMode,
) -> BatcherSettings {
    BatcherSettings {
        chain_id: CHAIN_ID,
        rollup: deployed.rollup,
        max_batch_bytes,
        max_batch_age: Duration::from_millis(300),
        compression: Compression {
            codec: Codec::Zstd,
            level: 3,
        },
        da_mode: mode,
        confirmations: 1,
        poll_interval: Duration::from_millis(50),
        max_backlog_bytes: 1 << 20,
        max_backoff: Duration::from_millis(500),
    }
}

/// A running batcher.
pub struct Running {
    pub handle: BatcherHandle,
    pub task: JoinHandle<BatcherResult<()>>,
    pub cancel: CancellationToken,
    pub metrics: BatcherMetrics,
}

impl Running {
    /// Spawns a batcher over `l2`'s storage.
    pub async fn spawn(l1: &DevL1, l2: &L2Chain, settings: BatcherSettings) -> Self {
        Self::spawn_on(l1, l2.storage.clone(), settings).await
    }

    /// Spawns a batcher over `source`.
    pub async fn spawn_on(
        l1: &DevL1,
        source: Arc<dyn lanes_batcher::BlockSource>,
        settings: BatcherSettings,
    ) -> Self {
        let metrics = BatcherMetrics::unregistered();
        let batcher = Batcher::new(settings, source, txmgr(l1).await, metrics.clone());
        let cancel = CancellationToken::new();
        let (handle, task) = batcher.spawn(16, cancel.clone());
        Self {
            handle,
            task,
            cancel,
            metrics,
        }
    }

    /// Waits until L1 records L2 block `number` (latest L1 block).
    pub async fn wait_posted(&self, number: u64) {
        let mut status = self.handle.subscribe();
        tokio::time::timeout(WAIT, status.wait_for(|s| s.heads.posted >= number))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "L2 block {number} not posted in time; status {:?}",
                    self.handle.status()
                )
            })
            .expect("batcher running");
    }

    /// Cancels the task and returns how it ended.
    pub async fn shutdown(self) -> BatcherResult<()> {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("batcher stops on cancel")
            .expect("batcher did not panic")
    }
}

/// Every `BatchSubmitted` event of the rollup: (index, first block, last block, data
/// availability).
pub async fn submitted(l1: &DevL1, deployed: &DeployedContracts) -> Vec<(u64, u64, u64, u8)> {
    let provider: alloy::providers::DynProvider = alloy::providers::ProviderBuilder::default()
        .connect_http(l1.url().parse().unwrap())
        .erased();
    let filter = alloy::rpc::types::Filter::new()
        .address(deployed.rollup)
        .event_signature(LanesRollup::BatchSubmitted::SIGNATURE_HASH)
        .from_block(0u64);
    provider
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|log| {
            let e = LanesRollup::BatchSubmitted::decode_log(&log.inner)
                .unwrap()
                .data;
            (
                u64::try_from(e.batchIndex).unwrap(),
                e.firstBlock,
                e.lastBlock,
                e.dataAvailability,
            )
        })
        .collect()
}

/// Asserts the batches are 1, 2, 3, ... and cover L2 blocks 1..=`last` without gap or overlap.
pub fn assert_contiguous(events: &[(u64, u64, u64, u8)], last: u64) {
    let mut next_block = 1;
    for (i, (index, first, end, _)) in events.iter().enumerate() {
        assert_eq!(*index, i as u64 + 1, "batch indices {events:?}");
        assert_eq!(*first, next_block, "block ranges {events:?}");
        assert!(end >= first);
        next_block = end + 1;
    }
    assert_eq!(next_block, last + 1, "covers up to {last}: {events:?}");
}

/// JSON-RPC call on anvil.
pub async fn anvil_rpc<
    R: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
>(
    l1: &DevL1,
    method: &'static str,
    params: serde_json::Value,
) -> R {
    let provider: alloy::providers::DynProvider = alloy::providers::ProviderBuilder::default()
        .connect_http(l1.url().parse().unwrap())
        .erased();
    provider
        .raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}
