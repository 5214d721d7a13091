//! The batcher's Prometheus metrics (names agreed with the monitoring dashboards).

use lanes_monitoring::{
    Gauge, Histogram, IntCounter, IntCounterVec, IntGauge, MetricsRegistry, MonitoringError,
    MonitoringResult, buckets,
};
use prometheus::{Counter, GaugeVec, Opts};

/// Handles to every batcher metric. Cloning shares them.
#[derive(Clone, Debug)]
pub struct BatcherMetrics {
    /// `lanes_batcher_unposted_blocks`: sealed L2 blocks not yet in a batch recorded on L1.
    pub unposted_blocks: IntGauge,
    /// `lanes_batcher_unposted_bytes`: their uncompressed batch size (estimated for blocks
    /// not read yet).
    pub unposted_bytes: IntGauge,
    /// `lanes_batcher_batch_raw_bytes`: uncompressed size of each posted batch.
    pub batch_raw_bytes: Histogram,
    /// `lanes_batcher_batch_compressed_bytes`: posted size of each batch.
    pub batch_compressed_bytes: Histogram,
    /// `lanes_batcher_compression_ratio`: raw / compressed of the last batch.
    pub compression_ratio: Gauge,
    /// `lanes_batcher_posting_latency_seconds`: batch closed -> L1 confirmation depth.
    pub posting_latency: Histogram,
    /// `lanes_batcher_batches_posted_total`.
    pub batches_posted: IntCounter,
    /// `lanes_batcher_post_failures_total{reason}`.
    pub post_failures: IntCounterVec,
    /// `lanes_batcher_l1_gas_used_total`.
    pub l1_gas_used: IntCounter,
    /// `lanes_batcher_l1_fee_wei_total` (a float counter: wei overflow 64 bits at 18 ETH).
    pub l1_fee_wei: Counter,
    /// `lanes_batcher_l1_gas_price_wei`: effective gas price of the last batch transaction.
    pub l1_gas_price_wei: Gauge,
    /// `lanes_batcher_last_posted_l2_block`: last L2 block in a batch recorded on L1.
    pub last_posted_l2_block: IntGauge,
    /// `lanes_batcher_last_final_l2_block`: last L2 block whose batch is final.
    pub last_final_l2_block: IntGauge,
    /// `lanes_l1_account_balance_wei{account}` (`batcher`, `sequencer`).
    pub l1_account_balance_wei: GaugeVec,
}

impl BatcherMetrics {
    /// Registers every batcher metric in `registry`; gauges start at 0.
    pub fn register(registry: &MetricsRegistry) -> MonitoringResult<Self> {
        let size_buckets = bytes_buckets();
        let l1_fee_wei = Counter::with_opts(Opts::new(
            "lanes_batcher_l1_fee_wei_total",
            "Wei paid on L1 for batch transactions (execution and blob fees)",
        ))
        .map_err(|source| prometheus_error("lanes_batcher_l1_fee_wei_total", source))?;
        register_raw(registry, "lanes_batcher_l1_fee_wei_total", &l1_fee_wei)?;
        let balance = GaugeVec::new(
            Opts::new(
                "lanes_l1_account_balance_wei",
                "L1 balance of the node's accounts, wei",
            ),
            &["account"],
        )
        .map_err(|source| prometheus_error("lanes_l1_account_balance_wei", source))?;
        register_raw(registry, "lanes_l1_account_balance_wei", &balance)?;
        // Pre-create the batcher series so queries return data before the first read.
        balance.with_label_values(&["batcher"]).set(0.0);
        Ok(Self {
            unposted_blocks: registry.int_gauge(
                "lanes_batcher_unposted_blocks",
                "Sealed L2 blocks not yet in a batch recorded on L1",
            )?,
            unposted_bytes: registry.int_gauge(
                "lanes_batcher_unposted_bytes",
                "Uncompressed batch bytes of the unposted L2 blocks (estimated for blocks not read yet)",
            )?,
            batch_raw_bytes: registry.histogram(
                "lanes_batcher_batch_raw_bytes",
                "Uncompressed size of posted batches, bytes",
                size_buckets.clone(),
            )?,
            batch_compressed_bytes: registry.histogram(
                "lanes_batcher_batch_compressed_bytes",
                "Compressed (posted) size of batches, bytes",
                size_buckets,
            )?,
            compression_ratio: registry.gauge(
                "lanes_batcher_compression_ratio",
                "Raw over compressed size of the last posted batch",
            )?,
            posting_latency: registry.histogram(
                "lanes_batcher_posting_latency_seconds",
                "Time from closing a batch to its L1 transaction reaching the confirmation depth",
                latency_buckets(),
            )?,
            batches_posted: registry.counter(
                "lanes_batcher_batches_posted_total",
                "Batches recorded on L1 with the confirmation depth",
            )?,
            post_failures: registry.counter_vec(
                "lanes_batcher_post_failures_total",
                "Failed batch posting attempts by reason",
                &["reason"],
            )?,
            l1_gas_used: registry.counter(
                "lanes_batcher_l1_gas_used_total",
                "L1 gas used by batch transactions",
            )?,
            l1_fee_wei,
            l1_gas_price_wei: registry.gauge(
                "lanes_batcher_l1_gas_price_wei",
                "Effective gas price of the last batch transaction, wei",
            )?,
            last_posted_l2_block: registry.int_gauge(
                "lanes_batcher_last_posted_l2_block",
                "Last L2 block in a batch recorded on L1",
            )?,
            last_final_l2_block: registry.int_gauge(
                "lanes_batcher_last_final_l2_block",
                "Last L2 block whose batch is past the rollup's finalization period",
            )?,
            l1_account_balance_wei: balance,
        }
        .with_failure_series())
    }

    /// Pre-creates the common `reason` series at 0, so failure panels and alerts have data
    /// (zeros) before the first failure.
    fn with_failure_series(self) -> Self {
        for reason in [
            "l1_unavailable",
            "out_of_sync",
            "reverted",
            "timeout",
            "tx_failed",
            "insufficient_funds",
            "forced_inclusion",
        ] {
            self.post_failures.with_label_values(&[reason]);
        }
        self
    }

    /// Metrics in a private registry (tests, tools).
    pub fn unregistered() -> Self {
        Self::register(&MetricsRegistry::new()).expect("a fresh registry accepts the metrics")
    }
}

/// 1 KiB to 1 MiB in powers of two: calldata batches top out near 128 KiB, blob batches at
/// six blobs (768 KiB).
fn bytes_buckets() -> Vec<f64> {
    (10..=20).map(|exp| f64::from(1u32 << exp)).collect()
}

/// Posting takes L1 blocks (12 s each on mainnet) times the confirmation depth.
fn latency_buckets() -> Vec<f64> {
    let mut out = buckets::latency_seconds();
    out.retain(|b| *b >= 0.01);
    out.extend([30.0, 60.0, 120.0, 300.0, 600.0, 1800.0]);
    out
}

fn register_raw<C: prometheus::core::Collector + Clone + 'static>(
    registry: &MetricsRegistry,
    name: &str,
    collector: &C,
) -> MonitoringResult<()> {
    registry
        .prometheus()
        .register(Box::new(collector.clone()))
        .map_err(|source| match source {
            prometheus::Error::AlreadyReg => MonitoringError::AlreadyRegistered {
                name: name.to_owned(),
            },
            source => prometheus_error(name, source),
        })
}

fn prometheus_error(name: &str, source: prometheus::Error) -> MonitoringError {
    MonitoringError::Prometheus {
        name: name.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly the names agreed with the monitoring work.
    const AGREED: [&str; 14] = [
        "lanes_batcher_unposted_blocks",
        "lanes_batcher_unposted_bytes",
        "lanes_batcher_batch_raw_bytes",
        "lanes_batcher_batch_compressed_bytes",
        "lanes_batcher_compression_ratio",
        "lanes_batcher_posting_latency_seconds",
        "lanes_batcher_batches_posted_total",
        "lanes_batcher_post_failures_total",
        "lanes_batcher_l1_gas_used_total",
        "lanes_batcher_l1_fee_wei_total",
        "lanes_batcher_l1_gas_price_wei",
        "lanes_batcher_last_posted_l2_block",
        "lanes_batcher_last_final_l2_block",
        "lanes_l1_account_balance_wei",
    ];

    #[test]
    fn registers_exactly_the_agreed_names() {
        let registry = MetricsRegistry::new();
        let metrics = BatcherMetrics::register(&registry).unwrap();
        // Vec metrics only show once a series exists.
        metrics.post_failures.with_label_values(&["timeout"]).inc();
        let mut names: Vec<String> = registry
            .prometheus()
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .filter(|n| n.starts_with("lanes_"))
            .collect();
        names.sort();
        let mut agreed: Vec<String> = AGREED.iter().map(|s| s.to_string()).collect();
        agreed.sort();
        assert_eq!(names, agreed);
        let text = registry.render();
        assert!(text.contains("lanes_batcher_unposted_blocks 0"), "{text}");
        assert!(
            text.contains("lanes_l1_account_balance_wei{account=\"batcher\"} 0"),
            "{text}"
        );
        // A second registration in the same registry is refused, not silently shared.
        assert!(BatcherMetrics::register(&registry).is_err());
    }
}
