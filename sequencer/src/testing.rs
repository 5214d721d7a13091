//! Fixtures for the crate's unit tests: a dev chain on a temporary RocksDB with a pool.

use crate::{chain::Chain, mempool::PoolLimits, metrics::SequencerMetrics, pool::TxPool};
use lanes_executor::{ChainSpec, GenesisSpec, Storage, StorageOptions};
use std::sync::Arc;

/// Chain id of the test chain.
pub(crate) const CHAIN_ID: u64 = 42069;

/// Private keys of the first two dev accounts (`genesis::DEV_ACCOUNTS`).
pub(crate) const DEV_KEYS: [&str; 2] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

/// A dev chain (30M gas) at genesis, its pool and metrics; keep the directory alive.
pub(crate) struct DevNode {
    /// Removed on drop: keeps the database alive.
    pub _dir: tempfile::TempDir,
    pub chain: Arc<Chain>,
    pub pool: Arc<TxPool>,
    pub metrics: Arc<SequencerMetrics>,
}

pub(crate) fn dev_node() -> DevNode {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(
        dir.path(),
        &StorageOptions {
            cache_bytes: 8 << 20,
            sync: lanes_executor::CommitSync::Never,
        },
    )
    .unwrap();
    storage
        .init_or_check_genesis(&GenesisSpec::dev(CHAIN_ID, 30_000_000).unwrap())
        .unwrap();
    let chain = Arc::new(Chain::load(Arc::new(storage), ChainSpec::cancun(CHAIN_ID)).unwrap());
    let registry = lanes_monitoring::MetricsRegistry::new();
    let metrics = Arc::new(SequencerMetrics::register(&registry).unwrap());
    let pool = Arc::new(TxPool::new(
        chain.clone(),
        PoolLimits::default(),
        metrics.clone(),
    ));
    DevNode {
        _dir: dir,
        chain,
        pool,
        metrics,
    }
}

/// A signed EIP-1559 payment of `value` wei to `0x7777…77` from dev account `key`, at 10 gwei.
pub(crate) fn signed_transfer(key: usize, nonce: u64, value: u64) -> Vec<u8> {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::Encodable2718;
    use alloy_primitives::{Address, TxKind, U256};
    let signer: alloy_signer_local::PrivateKeySigner = DEV_KEYS[key].parse().unwrap();
    let mut tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(value),
        ..Default::default()
    };
    let signature = alloy::network::TxSignerSync::sign_transaction_sync(&signer, &mut tx).unwrap();
    TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
}
