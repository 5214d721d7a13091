//! Sequencer metrics (intake, mempool, blocks, RPC), registered in the node's registry.

use crate::mempool::Mempool;
use lanes_monitoring::{MetricsRegistry, MonitoringError, buckets};
use prometheus::{
    Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

/// All metrics the sequencer crate exports.
#[derive(Debug)]
pub struct SequencerMetrics {
    /// Raw transactions received over RPC.
    pub tx_received: IntCounter,
    /// Transactions admitted to the pool.
    pub tx_accepted: IntCounter,
    /// Transactions refused, by reason.
    pub tx_rejected: IntCounterVec,
    /// Pool sizes by sub-pool (`pending`, `queued`).
    pub mempool_txs: IntGaugeVec,
    /// Pool sizes in bytes by sub-pool.
    pub mempool_bytes: IntGaugeVec,
    /// RPC calls by method.
    pub rpc_requests: IntCounterVec,
    /// RPC calls that returned an error, by method.
    pub rpc_errors: IntCounterVec,
    /// RPC latency by method.
    pub rpc_latency: HistogramVec,
    /// Head block number.
    pub head_block: IntGauge,
    /// Time between consecutive blocks.
    pub block_interval: Histogram,
    /// Transactions per block.
    pub block_txs: Histogram,
    /// Gas per block.
    pub block_gas: Histogram,
    /// Gas per second over the last block interval.
    pub gas_per_second: Gauge,
    /// Time per pipeline stage (`ordering`, `execution`, `state_root`, `commit`).
    pub stage_seconds: HistogramVec,
    /// Transactions skipped at execution, by reason.
    pub tx_skipped: IntCounterVec,
    /// Transactions included in blocks.
    pub tx_included: IntCounter,
    /// Lanes per block (parallel executor).
    pub executor_lanes: Histogram,
    /// Transactions executed a second time.
    pub executor_reexecutions: IntCounter,
    /// Speculative results that could not be used as they were.
    pub executor_conflicts: IntCounter,
    /// Busy worker time over wall time for the last block.
    pub executor_speedup: Gauge,
    /// Worker threads of the executor.
    pub executor_threads: IntGauge,
    /// On-disk size of the database.
    pub db_size: IntGauge,
}

impl SequencerMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Result<Self, MonitoringError> {
        Ok(Self {
            tx_received: registry.counter(
                "lanes_tx_received_total",
                "Raw transactions received over JSON-RPC",
            )?,
            tx_accepted: registry.counter(
                "lanes_tx_accepted_total",
                "Transactions admitted to the mempool",
            )?,
            tx_rejected: registry.counter_vec(
                "lanes_tx_rejected_total",
                "Transactions refused at intake, by reason",
                &["reason"],
            )?,
            mempool_txs: registry.int_gauge_vec(
                "lanes_mempool_transactions",
                "Transactions in the mempool, by sub-pool",
                &["pool"],
            )?,
            mempool_bytes: registry.int_gauge_vec(
                "lanes_mempool_bytes",
                "Encoded size of mempool transactions, by sub-pool",
                &["pool"],
            )?,
            rpc_requests: registry.counter_vec(
                "lanes_rpc_requests_total",
                "JSON-RPC calls, by method",
                &["method"],
            )?,
            rpc_errors: registry.counter_vec(
                "lanes_rpc_errors_total",
                "JSON-RPC calls that returned an error, by method",
                &["method"],
            )?,
            rpc_latency: registry.histogram_vec(
                "lanes_rpc_request_duration_seconds",
                "JSON-RPC call latency, by method (batches as `batch`)",
                &["method"],
                buckets::latency_seconds(),
            )?,
            head_block: registry.int_gauge(
                "lanes_head_block_number",
                "Number of the latest committed block",
            )?,
            block_interval: registry.histogram(
                "lanes_block_interval_seconds",
                "Time between consecutive committed blocks",
                buckets::latency_seconds(),
            )?,
            block_txs: registry.histogram(
                "lanes_block_transactions",
                "Transactions per block",
                buckets::counts(100_000),
            )?,
            block_gas: registry.histogram(
                "lanes_block_gas_used",
                "Gas used per block",
                buckets::counts(1_000_000_000),
            )?,
            gas_per_second: registry.gauge(
                "lanes_gas_per_second",
                "Gas executed per second over the last block interval",
            )?,
            stage_seconds: registry.histogram_vec(
                "lanes_block_stage_duration_seconds",
                "Time spent per block in each pipeline stage",
                &["stage"],
                buckets::latency_seconds(),
            )?,
            tx_skipped: registry.counter_vec(
                "lanes_tx_skipped_total",
                "Candidate transactions left out of blocks at execution, by reason",
                &["reason"],
            )?,
            tx_included: registry.counter(
                "lanes_tx_included_total",
                "Transactions included in committed blocks",
            )?,
            executor_lanes: registry.histogram(
                "lanes_executor_lanes",
                "Lanes (independent groups of transactions) per block",
                buckets::counts(10_000),
            )?,
            executor_reexecutions: registry.counter(
                "lanes_executor_reexecutions_total",
                "Transactions executed again because a read they made was invalidated",
            )?,
            executor_conflicts: registry.counter(
                "lanes_executor_conflicts_total",
                "Speculative results that could not be used as they were",
            )?,
            executor_speedup: registry.gauge(
                "lanes_executor_speedup_estimate",
                "Sum of transaction execution time over block wall time, last block",
            )?,
            executor_threads: registry.int_gauge(
                "lanes_executor_threads",
                "Worker threads of the block executor",
            )?,
            db_size: registry.int_gauge(
                "lanes_db_size_bytes",
                "On-disk size of the RocksDB store (SST files)",
            )?,
        })
    }

    /// Refreshes the mempool gauges.
    pub fn set_pool_sizes(&self, pool: &Mempool) {
        self.mempool_txs
            .with_label_values(&["pending"])
            .set(pool.len_pending() as i64);
        self.mempool_txs
            .with_label_values(&["queued"])
            .set(pool.len_queued() as i64);
        self.mempool_bytes
            .with_label_values(&["pending"])
            .set(pool.bytes_pending() as i64);
        self.mempool_bytes
            .with_label_values(&["queued"])
            .set(pool.bytes_queued() as i64);
    }
}
