//! Wires a node together: storage, chain, pool, block producer, JSON-RPC and metrics, with
//! graceful shutdown; and, when an L1 is configured, the L1 watcher feeding deposits to the
//! producer.

use crate::{
    chain::Chain,
    deposits::{DepositMetrics, DepositQueue},
    mempool::PoolLimits,
    metrics::SequencerMetrics,
    pool::TxPool,
    producer::{BlockProducer, NodeExecutor, ProducerConfig, ProducerControls},
    rpc::{self, RpcConfig, RpcContext},
};
use lanes_config::{ExecutorMode, LanesConfig};
use lanes_executor::{
    ChainSpec, ExecutorError, GenesisSpec, ParallelExecutor, SequentialExecutor, Storage,
    StorageOptions,
};
use lanes_l1_bridge::L1Error;
use lanes_monitoring::{Health, MetricsRegistry, MonitoringError};
use revm::primitives::hardfork::SpecId;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Errors that stop a node from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage or execution failed (fatal).
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// Any other I/O failure (the admin secret file, for one).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A server could not listen on its configured address (taken, or not this host's).
    #[error("cannot listen on {addr} for the {server} (`{key}`): {source}")]
    Listen {
        /// Which server: "JSON-RPC server", "metrics server", "admin endpoint".
        server: &'static str,
        /// The configuration key that sets the port, for the operator to change.
        key: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        source: std::io::Error,
    },
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
///
/// Either way lanes' L2 system contracts are installed: `L2WithdrawalQueue` at
/// `0x4200…0016`, which the L1 portal trusts to record withdrawals.
pub fn genesis_from_config(config: &LanesConfig) -> NodeResult<GenesisSpec> {
    let mut genesis = match &config.chain.genesis {
        Some(path) => lanes_executor::read_genesis_file(path)?,
        None => lanes_executor::genesis::dev_genesis(config.chain.chain_id, config.chain.gas_limit),
    };
    lanes_executor::install_system_contract(
        &mut genesis,
        "L2WithdrawalQueue",
        lanes_l1_bridge::L2_WITHDRAWAL_QUEUE,
        &lanes_l1_bridge::bindings::L2WithdrawalQueue::DEPLOYED_BYTECODE,
    )?;
    Ok(GenesisSpec::from_genesis(&genesis)?)
}

/// The execution rules of the chain `config` and `genesis` describe; derivation from L1 must
/// use the same ones to reproduce the sequencer's blocks.
pub fn chain_spec(config: &LanesConfig, genesis: &GenesisSpec) -> ChainSpec {
    ChainSpec {
        chain_id: genesis.chain_id,
        spec_id: SpecId::CANCUN,
        base_fee_recipient: config.sequencer.base_fee_recipient,
        base_fee_floor: config.chain.base_fee_floor,
    }
}

/// Where the database lives inside the data directory.
pub fn db_path(config: &LanesConfig) -> PathBuf {
    db_path_in(&config.storage.datadir)
}

/// Where the database lives inside `datadir`.
pub fn db_path_in(datadir: &std::path::Path) -> PathBuf {
    datadir.join("db")
}

/// Opens the store and initialises it from `genesis` if it is empty.
pub fn open_storage(config: &LanesConfig, genesis: &GenesisSpec) -> NodeResult<Arc<Storage>> {
    std::fs::create_dir_all(&config.storage.datadir)?;
    let storage = Storage::open(
        &db_path(config),
        &StorageOptions {
            cache_bytes: config.storage.cache_bytes as usize,
            sync: match config.storage.sync_before_publish {
                true => lanes_executor::CommitSync::BeforePublish,
                false => lanes_executor::CommitSync::AfterPublish,
            },
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
    /// Admin endpoint (JWT).
    pub admin: Option<SocketAddr>,
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
    let spec = chain_spec(&config, &genesis);
    let chain = Arc::new(Chain::load(storage.clone(), spec)?);

    let registry = MetricsRegistry::new();
    let metrics = Arc::new(SequencerMetrics::register(&registry)?);
    // At startup, L1 or not, so dashboards and alerts see the series (at 0) on every node.
    let batcher_metrics = lanes_batcher::BatcherMetrics::register(&registry)?;
    let throttled_blocks = registry.counter(
        "lanes_sequencer_backpressure_blocks_total",
        "Blocks built shrunk (a quarter of sequencer.max_block_txs) because the batcher's unposted backlog was over batcher.max_backlog_bytes",
    )?;
    let backpressure_active = registry.int_gauge(
        "lanes_sequencer_backpressure_active",
        "1 while the batcher's unposted backlog is over batcher.max_backlog_bytes and blocks are shrunk, else 0",
    )?;
    metrics.head_block.set(chain.head().number() as i64);
    let block_time = config.sequencer.block_time;
    metrics.block_time.set(block_time.as_secs_f64());
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
    // L1 messages (deposits, forced transactions) the watcher delivers wait here for a block.
    // The L2 state counts the messages executed, so a restart resumes after the last one.
    let deposit_queue = Arc::new(DepositQueue::new(
        next_deposit_nonce(&chain)?,
        DepositMetrics::register(&registry)?,
    ));
    let l1 = crate::l1::start(
        &config,
        storage.clone(),
        genesis.chain_id,
        batcher_metrics,
        metrics.l1.clone(),
        deposit_queue.clone(),
    )
    .await?;
    let (throttle_tx, throttle) = tokio::sync::watch::channel(false);
    let mut follower = None;
    if let Some(mut status) = l1.batcher_status() {
        chain.follow_batcher(status.clone());
        follower = Some(tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let over = status.borrow().backlog.over_limit;
                backpressure_active.set(i64::from(over));
                throttle_tx.send_if_modified(|v| std::mem::replace(v, over) != over);
            }
        }));
    }
    let (pause, paused) = tokio::sync::watch::channel(false);
    let controls = ProducerControls {
        throttle,
        paused,
        paused_at: Arc::new(tokio::sync::watch::channel(None).0),
        throttled_blocks: Some(throttled_blocks),
    };
    let admin_shutdown = CancellationToken::new();
    let mut admin_addr = None;
    let mut admin_task = None;
    if config.batcher.enabled {
        let secret_path = config
            .batcher
            .jwt_secret_file
            .clone()
            .unwrap_or_else(|| config.storage.datadir.join("admin-jwt.hex"));
        let secret = crate::admin::load_or_create_secret(&secret_path)?;
        let addr = SocketAddr::new(
            std::net::Ipv4Addr::LOCALHOST.into(),
            config.batcher.admin_port,
        );
        let (addr, task) = crate::admin::serve(
            addr,
            secret,
            crate::admin::AdminContext {
                batcher: l1.batcher.clone(),
                chain: chain.clone(),
                pause: Arc::new(pause),
                paused_at: controls.paused_at.clone(),
                pause_timeout: block_time * 8 + Duration::from_secs(5),
            },
            admin_shutdown.clone(),
        )
        .await
        .map_err(|source| NodeError::Listen {
            server: "admin endpoint",
            key: "batcher.admin_port",
            addr,
            source,
        })?;
        admin_addr = Some(addr);
        admin_task = Some(task);
    }
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
    )
    .with_controls(controls);
    if l1.endpoint.is_some() {
        producer = producer.with_deposits(deposit_queue);
    }

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
        filter_timeout: config.rpc.filter_timeout,
        max_filters: config.rpc.max_filters,
        send_raw_sync_timeout: config.rpc.send_raw_sync_timeout,
        tracing: config.rpc.tracing,
    };
    let wanted_rpc_addr = rpc_config.addr;
    let (rpc_addr, rpc_handle) = rpc::serve(RpcContext {
        chain: chain.clone(),
        pool: pool.clone(),
        config: rpc_config,
        client_version: client_version(),
        metrics: metrics.clone(),
        filters: rpc::Filters::new(config.rpc.filter_timeout, config.rpc.max_filters),
    })
    .await
    .map_err(|source| NodeError::Listen {
        server: "JSON-RPC server",
        key: "rpc.port",
        addr: wanted_rpc_addr,
        source,
    })?;

    let metrics_shutdown = CancellationToken::new();
    let mut metrics_addr = None;
    let metrics_task = if config.metrics.enabled {
        let listener = lanes_monitoring::bind(&config.metrics)
            .await
            .map_err(|source| NodeError::Listen {
                server: "metrics server",
                key: "metrics.port",
                addr: SocketAddr::new(config.metrics.addr, config.metrics.port),
                source,
            })?;
        metrics_addr = Some(listener.local_addr()?);
        let token = metrics_shutdown.clone();
        let storage = storage.clone();
        let storage_metrics = metrics.clone();
        tokio::spawn(async move {
            // Refresh the database size now and then; RocksDB computes it on request.
            let refresher = tokio::spawn(async move {
                loop {
                    storage_metrics.refresh_storage(&storage);
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
        admin = ?admin_addr,
        l1 = l1.endpoint.as_ref().map(|e| e.url.as_str()),
        rollup = ?l1.endpoint.as_ref().map(|e| e.rollup),
        batcher = l1.batcher.is_some(),
        "lanes node running"
    );
    if let Some(ready) = ready {
        let _ = ready.send(NodeAddrs {
            rpc: rpc_addr,
            metrics: metrics_addr,
            admin: admin_addr,
        });
    }

    let result = producer.run(shutdown.clone()).await;
    if result.is_err() {
        warn!(target: "lanes::node", "block production stopped on an error; shutting down");
    }
    let _ = rpc_handle.stop();
    rpc_handle.stopped().await;
    admin_shutdown.cancel();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    if let Some(task) = follower {
        task.abort();
    }
    l1.shutdown().await;
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

/// `web3_clientVersion`: name/version/os-arch/rust.
pub fn client_version() -> String {
    format!(
        "lanes/v{}/{}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
