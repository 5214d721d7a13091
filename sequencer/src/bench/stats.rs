//! Measurements and the JSON report: latency percentiles (HDR histograms in microseconds),
//! errors by kind, per-second time series, block times.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Highest latency the histograms track (10 minutes); anything slower is clamped.
const MAX_LATENCY_US: u64 = 600_000_000;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// How many samples.
    pub count: u64,
}

/// A latency recorder (microsecond resolution, 3 significant digits).
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
    // The histogram only knows its buckets' edges; the maximum is kept exactly.
    max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds are valid"),
            max_us: 0,
        }
    }
}

impl Latencies {
    /// Records one latency in microseconds (0 counts as 1 µs: the histogram starts at 1).
    pub fn record_us(&mut self, micros: u64) {
        let micros = micros.clamp(1, MAX_LATENCY_US);
        self.histogram.saturating_record(micros);
        self.max_us = self.max_us.max(micros);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// p50/p90/p99/max/mean in milliseconds; zeros when empty.
    pub fn percentiles(&self) -> Percentiles {
        if self.histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q).min(self.max_us));
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            // The exact maximum; the quantiles are bucket edges (within 0.1 %), so they are
            // capped by it to stay ordered.
            max: ms(self.max_us),
            mean: self.histogram.mean() / 1000.0,
            count: self.histogram.len(),
        }
    }
}

/// Simple distribution of plain values (block times, block sizes): nearest-rank percentiles.
pub fn summary(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    Percentiles {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        count: sorted.len() as u64,
    }
}

/// A low-cardinality kind for an RPC error: the code and the message up to its first
/// detail (geth messages put numbers and addresses after a colon).
pub fn error_kind(code: i64, message: &str) -> String {
    let head = message.split(':').next().unwrap_or(message).trim();
    let head: String = head.chars().take(80).collect();
    format!("{code}: {head}")
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SeriesPoint {
    /// Seconds since the timed phase started (end of the interval).
    pub t: f64,
    /// Transactions sent in this second.
    pub sent: u64,
    /// Transactions the node accepted in this second.
    pub accepted: u64,
    /// Bench transactions included in blocks that arrived in this second.
    pub included: u64,
    /// Gas used by every block that arrived in this second.
    pub gas: u64,
    /// Blocks that arrived in this second.
    pub blocks: u64,
    /// RPC errors in this second.
    pub errors: u64,
    /// Latency of the transactions included in this second.
    pub latency_p50_ms: f64,
    /// Latency of the transactions included in this second.
    pub latency_p99_ms: f64,
    /// `txpool_status` pending at the end of the second (absent if the node lacks it).
    pub pool_pending: Option<u64>,
    /// `txpool_status` queued at the end of the second.
    pub pool_queued: Option<u64>,
}

/// One block seen during the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlockPoint {
    /// Block number.
    pub number: u64,
    /// Seconds since the timed phase started when its `newHeads` arrived.
    pub t: f64,
    /// All its transactions.
    pub txs: u64,
    /// Bench transactions in it.
    pub ours: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Base fee in wei.
    pub base_fee: u64,
}

/// Pipeline stage time per included transaction, from the node's Prometheus metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NodeProfile {
    /// Transactions the node included between the two scrapes.
    pub included: f64,
    /// Blocks the node committed between the two scrapes.
    pub blocks: f64,
    /// Microseconds per included transaction by block stage (ordering, execution, ...).
    pub stage_us_per_tx: BTreeMap<String, f64>,
    /// Milliseconds per block by block stage.
    pub stage_ms_per_block: BTreeMap<String, f64>,
    /// Server-side JSON-RPC time per method (`batch` for whole batches): total seconds.
    pub rpc_seconds: BTreeMap<String, f64>,
    /// Server-side JSON-RPC calls per method.
    pub rpc_calls: BTreeMap<String, f64>,
    /// CPU seconds the node process used between the scrapes (all threads).
    pub cpu_seconds: Option<f64>,
    /// Node CPU microseconds per included transaction.
    pub cpu_us_per_tx: Option<f64>,
}

/// The `--report` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `transfers`, `erc20`, `swap` or `mixed`.
    pub workload: String,
    /// Target rate in tx/s; `null` when sending as fast as accepted.
    pub rate: Option<f64>,
    /// Sender accounts.
    pub senders: usize,
    /// Concurrent HTTP connections.
    pub connections: usize,
    /// Most transactions per batch request.
    pub batch: usize,
    /// The timed send phase, in seconds (the requested duration).
    pub duration_s: f64,
    /// From the first send to the arrival of the last block holding a bench transaction.
    pub wall_s: f64,
    /// Transactions pre-signed for the run.
    pub signed: u64,
    /// Transactions sent.
    pub sent: u64,
    /// Transactions the node accepted.
    pub accepted: u64,
    /// Accepted transactions seen in blocks.
    pub included: u64,
    /// Transactions refused (by RPC error) or lost to transport errors.
    pub failed: u64,
    /// Sent / send phase.
    pub sent_tps: f64,
    /// Accepted / send phase.
    pub accepted_tps: f64,
    /// Included / wall time.
    pub included_tps: f64,
    /// Included per second over the send phase after warm-up (its first 20 %), the
    /// sustained rate.
    pub steady_included_tps: f64,
    /// Gas of the blocks in the wall window / wall time.
    pub gas_per_s: f64,
    /// Send to `newHeads` of the including block, in milliseconds.
    pub latency_ms: Percentiles,
    /// Errors by kind (`code: message`).
    pub errors: BTreeMap<String, u64>,
    /// Time between consecutive `newHeads`, in milliseconds.
    pub block_time_ms: Percentiles,
    /// Per-second series.
    pub series: Vec<SeriesPoint>,
    /// Every block seen.
    pub blocks: Vec<BlockPoint>,
    /// Where node time went, when its metrics were reachable.
    pub node_profile: Option<NodeProfile>,
    /// Whether the pre-signed transactions ran out before the duration ended.
    pub exhausted: bool,
    /// Logical CPUs of this machine.
    pub cpus: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_and_near_exact() {
        let mut l = Latencies::default();
        for us in 1..=10_000u64 {
            l.record_us(us * 100); // 0.1 ms .. 1000 ms, uniform
        }
        let p = l.percentiles();
        assert_eq!(p.count, 10_000);
        assert!((p.p50 - 500.0).abs() / 500.0 < 0.002, "{p:?}");
        assert!((p.p90 - 900.0).abs() / 900.0 < 0.002, "{p:?}");
        assert!((p.p99 - 990.0).abs() / 990.0 < 0.002, "{p:?}");
        assert_eq!(p.max, 1000.0);
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max);
        assert!((p.mean - 500.05).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn empty_and_out_of_range_latencies() {
        let mut l = Latencies::default();
        assert_eq!(l.percentiles(), Percentiles::default());
        l.record_us(0);
        l.record_us(u64::MAX);
        let p = l.percentiles();
        assert_eq!(p.count, 2);
        assert!(p.p50 >= 0.001 && p.max >= 599_000.0, "{p:?}");
    }

    #[test]
    fn summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summary(&values);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.mean, 50.5);
        assert_eq!(summary(&[7.0]).p99, 7.0);
        assert_eq!(summary(&[]).count, 0);
    }

    #[test]
    fn error_kinds_drop_details() {
        assert_eq!(
            error_kind(-32000, "nonce too low: next nonce 5, tx nonce 3"),
            "-32000: nonce too low"
        );
        assert_eq!(
            error_kind(-32003, "txpool is full"),
            "-32003: txpool is full"
        );
    }
}
