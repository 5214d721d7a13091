//! Wires a node together: storage, chain, pool, block producer, JSON-RPC and metrics, with
//! graceful shutdown; and, when an L1 is configured, the L1 watcher feeding deposits to the
//! producer.

use crate::{
    chain::Chain,
    deposits::{DepositMetrics, DepositQueue, DepositSource},
    mempool::PoolLimits,
    metrics::SequencerMetrics,
    pool::TxPool,
    producer::{BlockProducer, NodeExecutor, ProducerConfig},
    rpc::{self, RpcConfig, RpcContext},
};
use lanes_config::{ExecutorMode, LanesConfig};
use lanes_executor::{
    ChainSpec, ExecutorError, GenesisSpec, ParallelExecutor, SequentialExecutor, Storage,
    StorageOptions,
};
use lanes_l1_bridge::{
    AlloyL1Client, L1Contracts, L1Error, L1Watcher, MemoryCursorStore, WatcherConfig,
    WatcherMetrics,
};
use lanes_monitoring::{Health, MetricsRegistry, MonitoringError};
use revm::primitives::hardfork::SpecId;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Errors that stop a node from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage or execution failed (fatal).
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// A listener could not be bound or a server failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Metrics could not be registered.
    #[error(transparent)]
    Monitoring(#[from] MonitoringError),
    /// The configuration asks for something this build cannot do.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The L1 could not be reached or read at start.
    #[error(transparent)]
    L1(#[from] L1Error),
}

/// Result alias for node operations.
pub type NodeResult<T> = Result<T, NodeError>;

/// The genesis the configuration names: a geth-style file, or the dev genesis.
pub fn genesis_from_config(config: &LanesConfig) -> NodeResult<GenesisSpec> {
    Ok(match &config.chain.genesis {
        Some(path) => GenesisSpec::from_file(path)?,
        None => GenesisSpec::dev(config.chain.chain_id, config.chain.gas_limit)?,
    })
}

/// Where the database lives inside the data directory.
pub fn db_path(config: &LanesConfig) -> PathBuf {
    config.storage.datadir.join("db")
}

/// Opens the store and initialises it from `genesis` if it is empty.
pub fn open_storage(config: &LanesConfig, genesis: &GenesisSpec) -> NodeResult<Arc<Storage>> {
    std::fs::create_dir_all(&config.storage.datadir)?;
    let storage = Storage::open(
        &db_path(config),
        &StorageOptions {
            cache_bytes: config.storage.cache_bytes as usize,
            sync_commits: true,
        },
    )?;
    let (number, hash) = storage.init_or_check_genesis(genesis)?;
    // After the genesis check, so the first kept state is the head's.
    let storage = storage.with_history(config.storage.state_root_history as usize)?;
    info!(target: "lanes::node", datadir = %config.storage.datadir.display(), head = number, %hash, "storage open");
    Ok(Arc::new(storage))
}

/// Addresses a running node listens on.
#[derive(Clone, Copy, Debug)]
pub struct NodeAddrs {
    /// JSON-RPC (HTTP and WebSocket).
    pub rpc: SocketAddr,
    /// Metrics and health.
    pub metrics: Option<SocketAddr>,
}

/// Runs a node until `shutdown` fires (then stops intake, commits the block in progress
/// and returns) or a fatal error occurs. `ready` receives the bound addresses.
pub async fn run(
    config: LanesConfig,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<NodeAddrs>>,
) -> NodeResult<()> {
    let genesis = genesis_from_config(&config)?;
    let storage = open_storage(&config, &genesis)?;
    // Blocks are built on the stored tries: a trie that does not give the head's root would
    // seal wrong roots from the next block on.
    storage.check_state_root()?;
    let spec = ChainSpec {
        chain_id: genesis.chain_id,
        spec_id: SpecId::CANCUN,
        base_fee_recipient: config.sequencer.base_fee_recipient,
        base_fee_floor: config.chain.base_fee_floor,
    };
    let chain = Arc::new(Chain::load(storage.clone(), spec)?);

    let registry = MetricsRegistry::new();
    let metrics = Arc::new(SequencerMetrics::register(&registry)?);
    metrics.head_block.set(chain.head().number() as i64);
    let block_time = config.sequencer.block_time;
    let health = Health::new(block_time * 3 + Duration::from_secs(1));
    let pool = Arc::new(TxPool::new(
        chain.clone(),
        PoolLimits::from(&config.mempool),
        metrics.clone(),
    ));

    let executor = Arc::new(match config.executor.mode {
        ExecutorMode::Sequential => NodeExecutor::Sequential(SequentialExecutor::new()),
        ExecutorMode::Parallel => {
            // 0 means every core.
            let threads = match config.executor.threads {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            };
            NodeExecutor::Parallel(Box::new(ParallelExecutor::new(threads)))
        }
    });
    metrics.executor_threads.set(executor.threads() as i64);
    info!(target: "lanes::node", mode = ?config.executor.mode, threads = executor.threads(), "executor ready");
    let mut producer = BlockProducer::new(
        chain.clone(),
        pool.clone(),
        executor,
        ProducerConfig {
            block_time,
            empty_block_interval: config.sequencer.empty_block_interval,
            fee_recipient: config.sequencer.fee_recipient,
            max_block_txs: config.sequencer.max_block_txs,
        },
        metrics.clone(),
        health.clone(),
    );
    let l1 = match start_deposits(&config, &chain, &registry, &shutdown).await? {
        Some(deposits) => {
            producer = producer.with_deposits(deposits);
            "L1 deposits followed"
        }
        None => "L2 only: no L1 configured",
    };

    let rpc_config = RpcConfig {
        addr: SocketAddr::new(config.rpc.addr, config.rpc.port),
        max_request_body_bytes: config.rpc.max_request_body_bytes,
        max_response_body_bytes: config.rpc.max_response_body_bytes,
        max_batch_size: config.rpc.max_batch_size,
        max_connections: config.rpc.max_connections,
        gas_cap: config.rpc.gas_cap,
        evm_timeout: config.rpc.evm_timeout,
        max_logs_block_range: config.rpc.max_logs_block_range,
        max_logs: config.rpc.max_logs,
        fee_history_max_blocks: config.rpc.fee_history_max_blocks,
    };
    let (rpc_addr, rpc_handle) = rpc::serve(RpcContext {
        chain: chain.clone(),
        pool: pool.clone(),
        config: rpc_config,
        client_version: client_version(),
        metrics: metrics.clone(),
    })
    .await?;

    let metrics_shutdown = CancellationToken::new();
    let mut metrics_addr = None;
    let metrics_task = if config.metrics.enabled {
        let listener = lanes_monitoring::bind(&config.metrics).await?;
        metrics_addr = Some(listener.local_addr()?);
        let token = metrics_shutdown.clone();
        let storage = storage.clone();
        let size_gauge = metrics.db_size.clone();
        tokio::spawn(async move {
            // Refresh the database size now and then; RocksDB computes it on request.
            let refresher = tokio::spawn(async move {
                loop {
                    size_gauge.set(storage.size_bytes() as i64);
                    tokio::time::sleep(Duration::from_secs(15)).await;
                }
            });
            let result = lanes_monitoring::serve(listener, registry, health, async move {
                token.cancelled().await
            })
            .await;
            refresher.abort();
            result
        })
        .into()
    } else {
        None
    };

    info!(
        target: "lanes::node",
        chain_id = chain.spec().chain_id,
        head = chain.head().number(),
        rpc = %rpc_addr,
        metrics = ?metrics_addr,
        l1,
        "lanes node running"
    );
    if let Some(ready) = ready {
        let _ = ready.send(NodeAddrs {
            rpc: rpc_addr,
            metrics: metrics_addr,
        });
    }

    let result = producer.run(shutdown.clone()).await;
    if result.is_err() {
        warn!(target: "lanes::node", "block production stopped on an error; shutting down");
    }
    let _ = rpc_handle.stop();
    rpc_handle.stopped().await;
    metrics_shutdown.cancel();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    info!(target: "lanes::node", head = chain.head().number(), "node stopped");
    result.map_err(NodeError::from)
}

/// The deposit nonce L2 expects next: the count of L1 messages its state has executed.
pub fn next_deposit_nonce(chain: &Chain) -> NodeResult<u64> {
    Ok(chain
        .latest_account(lanes_executor::L1_MESSAGE_COUNTER)?
        .map_or(0, |a| a.nonce))
}

/// Starts the L1 watcher when `l1.rpc_url`, `l1.rollup_address` and `l1.portal_address` are
/// all set, and returns the queue it fills.
///
/// The watcher rescans from the portal's deployment block at every start (its cursor is kept
/// in memory only): the L2 state says which messages were executed
/// ([`next_deposit_nonce`]), and the queue ignores those. A persisted cursor could run ahead
/// of L2 (a message delivered but not yet in a committed block when the node stopped) and
/// lose that message.
async fn start_deposits(
    config: &LanesConfig,
    chain: &Arc<Chain>,
    registry: &MetricsRegistry,
    shutdown: &CancellationToken,
) -> NodeResult<Option<Arc<dyn DepositSource>>> {
    let l1 = &config.l1;
    let (Some(url), Some(rollup), Some(portal)) =
        (&l1.rpc_url, l1.rollup_address, l1.portal_address)
    else {
        return Ok(None);
    };
    let client = AlloyL1Client::connect(url, L1Contracts { rollup, portal })?;
    let start_block = client.deployment_block(portal).await?;
    let next_nonce = next_deposit_nonce(chain)?;
    let queue = Arc::new(DepositQueue::new(
        next_nonce,
        DepositMetrics::register(registry)?,
    ));
    let watcher = L1Watcher::new(
        Arc::new(client),
        Arc::new(MemoryCursorStore::new()),
        WatcherConfig::from_l1_config(l1, start_block),
        WatcherMetrics::register(registry)?,
    );
    let (mut messages, watcher_task) = watcher.spawn(1024, shutdown.child_token());
    info!(target: "lanes::node", %portal, start_block, next_nonce, confirmations = l1.confirmations, "following L1 deposits");
    let sink = queue.clone();
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            match sink.push(&message) {
                Ok(true) => {
                    debug!(target: "lanes::node", nonce = message.deposit_nonce, from = %message.from, "L1 message queued")
                }
                Ok(false) => {}
                Err(err) => {
                    // The watcher delivers without gaps; this is a bug, not a condition to
                    // wait out. Deposits stop; L2 blocks go on.
                    error!(target: "lanes::node", %err, "L1 message out of order; deposits stopped");
                    break;
                }
            }
        }
        match watcher_task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => error!(target: "lanes::node", %err, "L1 watcher stopped"),
            Err(err) => error!(target: "lanes::node", %err, "L1 watcher task panicked"),
        }
    });
    Ok(Some(queue))
}

/// `web3_clientVersion`: name/version/os-arch/rust.
pub fn client_version() -> String {
    format!(
        "lanes/v{}/{}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
