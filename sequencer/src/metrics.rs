//! Sequencer metrics (intake, mempool, blocks, RPC, executor, storage), registered in the
//! node's registry, plus the L1 watcher's, registered here so an L2-only node exports them too
//! (at their idle values) and the watcher, once wired, records into the same handles.
//!
//! Labelled families are created with every label value they can take, so a dashboard's
//! `rate()` reads 0 instead of "no data" before the first event.

use crate::mempool::{Mempool, PoolLimits};
use lanes_executor::Storage;
use lanes_l1_bridge::WatcherMetrics;
use lanes_monitoring::{MetricsRegistry, MonitoringError, buckets};
use prometheus::{
    Counter, Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Values of the `stage` label of `lanes_block_stage_duration_seconds`. `commit` makes the
/// block durable (header, body, receipts, state diff) and ends before it is published;
/// `state_write` writes its state columns and tries after it is published.
pub const BLOCK_STAGES: [&str; 5] = [
    "ordering",
    "execution",
    "state_root",
    "commit",
    "state_write",
];
/// Values of the `pool` label of the mempool gauges.
pub const POOLS: [&str; 2] = ["pending", "queued"];
/// Values of the `kind` label of `lanes_db_write_stalls_total`: RocksDB slowing writes down
/// (`delay`) or stopping them (`stop`) because flushes or compactions fall behind.
pub const WRITE_STALL_KINDS: [&str; 2] = ["delay", "stop"];

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
    /// Transactions a worker took over from another's group, done with its own.
    pub executor_taken_over: IntCounter,
    /// Busy worker time over wall time for the last block.
    pub executor_speedup: Gauge,
    /// Worker threads of the executor.
    pub executor_threads: IntGauge,
    /// On-disk size of the database.
    pub db_size: IntGauge,
    /// Configured target block time.
    pub block_time: Gauge,
    /// Capacity of each sub-pool (`mempool.max_pending`, `mempool.max_queued`).
    pub mempool_capacity: IntGaugeVec,
    /// Time spent executing transactions, summed over executor workers.
    pub executor_busy_seconds: Counter,
    /// RocksDB write stalls by kind (`delay`, `stop`), summed over column families.
    pub db_write_stalls: IntCounterVec,
    /// 1 while RocksDB has stopped writes.
    pub db_write_stopped: IntGauge,
    /// Bytes RocksDB estimates compaction must rewrite to settle.
    pub db_pending_compaction: IntGauge,
    /// Bytes in RocksDB memtables (active, unflushed and pinned).
    pub db_memtables: IntGauge,
    /// fsyncs of the write-ahead log made after publishing (`storage.sync_before_publish`
    /// off).
    pub db_wal_syncs: IntCounter,
    /// Time spent in those fsyncs.
    pub db_wal_sync_seconds: Counter,
    /// The L1 watcher's metrics, for the watcher the node runs when L1 is configured.
    pub l1: WatcherMetrics,
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
                buckets::interval_seconds(),
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
            executor_taken_over: registry.counter(
                "lanes_executor_taken_over_total",
                "Transactions a worker took over from another's group after finishing its own \
                 (the groups were uneven, or the CPUs ran at different speeds)",
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
            block_time: registry.gauge(
                "lanes_block_time_seconds",
                "Configured target time between blocks (sequencer.block_time)",
            )?,
            mempool_capacity: registry.int_gauge_vec(
                "lanes_mempool_capacity_transactions",
                "Most transactions each sub-pool holds (mempool.max_pending, mempool.max_queued)",
                &["pool"],
            )?,
            executor_busy_seconds: registry.float_counter(
                "lanes_executor_busy_seconds_total",
                "Time spent executing transactions, summed over executor workers; its rate is the average number of busy threads",
            )?,
            db_write_stalls: registry.counter_vec(
                "lanes_db_write_stalls_total",
                "RocksDB write stalls (flush or compaction falling behind), by kind: delay (writes slowed) or stop",
                &["kind"],
            )?,
            db_write_stopped: registry.int_gauge(
                "lanes_db_write_stopped",
                "1 while RocksDB has stopped writes, else 0",
            )?,
            db_pending_compaction: registry.int_gauge(
                "lanes_db_pending_compaction_bytes",
                "Bytes RocksDB estimates compaction must rewrite to bring every level under its target size",
            )?,
            db_memtables: registry.int_gauge(
                "lanes_db_memtable_bytes",
                "Bytes held in RocksDB memtables (active, unflushed and pinned)",
            )?,
            db_wal_syncs: registry.counter(
                "lanes_db_wal_syncs_total",
                "fsyncs of the write-ahead log made just after publishing blocks (storage.sync_before_publish off)",
            )?,
            db_wal_sync_seconds: registry.float_counter(
                "lanes_db_wal_sync_seconds_total",
                "Time spent in the fsyncs of lanes_db_wal_syncs_total; a published block is durable once the fsync after it ends",
            )?,
            l1: WatcherMetrics::register(registry)?,
        }
        .with_label_values_initialised())
    }

    fn with_label_values_initialised(self) -> Self {
        for stage in BLOCK_STAGES {
            self.stage_seconds.with_label_values(&[stage]);
        }
        for pool in POOLS {
            self.mempool_txs.with_label_values(&[pool]);
            self.mempool_bytes.with_label_values(&[pool]);
            self.mempool_capacity.with_label_values(&[pool]);
        }
        for kind in WRITE_STALL_KINDS {
            self.db_write_stalls.with_label_values(&[kind]);
        }
        for reason in crate::pool::REJECT_REASONS {
            self.tx_rejected.with_label_values(&[reason]);
        }
        self.tx_skipped.with_label_values(&["invalid"]);
        self
    }

    /// Publishes the pool capacities the mempool alert compares against.
    pub fn set_pool_limits(&self, limits: &PoolLimits) {
        let gauge = |pool: &str, limit: usize| {
            self.mempool_capacity
                .with_label_values(&[pool])
                .set(i64::try_from(limit).unwrap_or(i64::MAX));
        };
        gauge("pending", limits.max_pending);
        gauge("queued", limits.max_queued);
    }

    /// Refreshes the storage gauges and counters from RocksDB's own properties.
    pub fn refresh_storage(&self, storage: &Storage) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.db_size.set(clamp(storage.size_bytes()));
        let (db, column_families) = storage.rocksdb();
        let int_sum = |name: &str| -> u64 {
            column_families
                .iter()
                .filter_map(|cf| db.property_int_value_cf(*cf, name).ok().flatten())
                .sum()
        };
        self.db_pending_compaction
            .set(clamp(int_sum("rocksdb.estimate-pending-compaction-bytes")));
        self.db_memtables
            .set(clamp(int_sum("rocksdb.size-all-mem-tables")));
        if let Some(wal) = storage.wal_sync_stats() {
            // The store keeps running totals; the counters follow them.
            self.db_wal_syncs
                .inc_by(wal.syncs.saturating_sub(self.db_wal_syncs.get()));
            let seconds = wal.seconds - self.db_wal_sync_seconds.get();
            if seconds > 0.0 {
                self.db_wal_sync_seconds.inc_by(seconds);
            }
        }
        let stopped = db
            .property_int_value("rocksdb.is-write-stopped")
            .ok()
            .flatten()
            .unwrap_or(0);
        self.db_write_stopped.set(i64::from(stopped > 0));

        let (mut delays, mut stops) = (0, 0);
        for cf in &column_families {
            if let Ok(Some(text)) = db.property_value_cf(*cf, "rocksdb.cf-write-stall-stats") {
                let (d, s) = parse_write_stall_stats(&text);
                delays += d;
                stops += s;
            }
        }
        // RocksDB keeps running totals; the counters follow them.
        for (kind, total) in [("delay", delays), ("stop", stops)] {
            let counter = self.db_write_stalls.with_label_values(&[kind]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
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

/// `(total-delays, total-stops)` from RocksDB's `rocksdb.cf-write-stall-stats` text, e.g.
/// `Write Stall (count): ..., total-delays: 3, total-stops: 1`. Missing keys count as 0.
fn parse_write_stall_stats(text: &str) -> (u64, u64) {
    let text = text.trim_start().trim_start_matches("Write Stall (count):");
    let value = |key: &str| {
        text.split([',', '\n'])
            .filter_map(|item| item.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (value("total-delays"), value("total-stops"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_stall_stats_parse() {
        let text = "Write Stall (count): cf-l0-file-count-limit-delays-with-ongoing-compaction: 0, \
                    l0-file-count-limit-delays: 2, l0-file-count-limit-stops: 1, \
                    memtable-limit-delays: 0, memtable-limit-stops: 0, \
                    pending-compaction-bytes-delays: 0, pending-compaction-bytes-stops: 0, \
                    total-delays: 2, total-stops: 1\n";
        assert_eq!(parse_write_stall_stats(text), (2, 1));
        assert_eq!(
            parse_write_stall_stats("Write Stall (count): total-delays: 7\n"),
            (7, 0)
        );
        assert_eq!(parse_write_stall_stats(""), (0, 0));
    }

    #[test]
    fn storage_metrics_read_rocksdb() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            Storage::open(dir.path(), &lanes_executor::StorageOptions::default()).unwrap();
        let registry = MetricsRegistry::new();
        let metrics = SequencerMetrics::register(&registry).unwrap();
        metrics.refresh_storage(&storage);
        // A fresh store has empty-but-allocated memtables and no stalls.
        assert!(
            metrics.db_memtables.get() > 0,
            "{}",
            metrics.db_memtables.get()
        );
        assert_eq!(metrics.db_write_stopped.get(), 0);
        for kind in WRITE_STALL_KINDS {
            assert_eq!(metrics.db_write_stalls.with_label_values(&[kind]).get(), 0);
        }
        let text = registry.render();
        for name in [
            "lanes_db_size_bytes",
            "lanes_db_memtable_bytes",
            "lanes_db_pending_compaction_bytes",
            "lanes_db_write_stopped",
            "lanes_db_wal_syncs_total",
            "lanes_db_wal_sync_seconds_total",
            "lanes_l1_head_block",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(
            text.contains("lanes_db_write_stalls_total{kind=\"stop\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("lanes_tx_rejected_total{reason=\"nonce_too_low\"} 0"),
            "{text}"
        );

        // A committed block is fsynced just after, and the counters follow the store's totals.
        let genesis = lanes_executor::GenesisSpec::dev(42069, 30_000_000).unwrap();
        let (_, parent) = storage.init_or_check_genesis(&genesis).unwrap();
        let changes = lanes_executor::StateChanges::default();
        let header = alloy_consensus::Header {
            number: 1,
            parent_hash: parent,
            state_root: storage.state_root(&changes).unwrap(),
            ..Default::default()
        };
        let block = lanes_executor::SealedBlock::new(header, vec![], vec![]);
        storage.commit_block(&block, &changes).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while storage.wal_sync_stats().unwrap().syncs == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no fsync after the commit"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        metrics.refresh_storage(&storage);
        metrics.refresh_storage(&storage);
        let stats = storage.wal_sync_stats().unwrap();
        assert_eq!(metrics.db_wal_syncs.get(), stats.syncs);
        assert!((metrics.db_wal_sync_seconds.get() - stats.seconds).abs() < 1e-9);
    }
}
