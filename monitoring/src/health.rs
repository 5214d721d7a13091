//! Liveness as "still producing blocks".
//!
//! A sequencer whose HTTP server answers but whose block loop is wedged is
//! down as far as its users are concerned, so health is judged by the age of
//! the last produced block, not by the endpoint answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, Opts};

/// Name of the gauge [`Health`] exports: seconds since the block producer last reported in
/// (a block, or an idle slot with nothing to include).
pub const HEARTBEAT_AGE_METRIC: &str = "lanes_producer_heartbeat_age_seconds";

/// Marks "no block yet" in [`Inner::last_block_nanos`].
const NO_BLOCK: u64 = u64::MAX;

/// Shared liveness state: the block producer reports each block, the health
/// endpoint reads it. Cloning is cheap and clones share state.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    created: Instant,
    max_block_age: Duration,
    head: AtomicU64,
    head_timestamp: AtomicU64,
    /// When the last block was reported, in nanoseconds since `created`, on
    /// the monotonic clock so wall-clock jumps cannot fake a stall.
    last_block_nanos: AtomicU64,
}

/// Where the node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// No block yet, but the node started less than the maximum block age
    /// ago. Counts as healthy, so a restart is not flagged as an outage.
    Starting,
    /// The last block is younger than the maximum block age.
    Ok,
    /// No block for at least the maximum block age.
    Stalled,
}

impl HealthStatus {
    /// The name used in the `/health` JSON: `starting`, `ok` or `stalled`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Ok => "ok",
            HealthStatus::Stalled => "stalled",
        }
    }

    /// Whether `/health` answers 200 rather than 503.
    pub fn is_healthy(self) -> bool {
        !matches!(self, HealthStatus::Stalled)
    }
}

/// A snapshot of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The verdict.
    pub status: HealthStatus,
    /// Number of the last produced block, if any.
    pub head: Option<u64>,
    /// Timestamp (unix seconds) of the last produced block, if any.
    pub head_timestamp: Option<u64>,
    /// Time since the last block was produced, if any.
    pub last_block_age: Option<Duration>,
    /// The age past which the node counts as stalled.
    pub max_block_age: Duration,
}

impl HealthReport {
    /// The `/health` response body: `{"status": "ok", "head": N,
    /// "last_block_age_ms": ms, ...}`, with `null`s before the first block.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status.as_str(),
            "head": self.head,
            "head_timestamp": self.head_timestamp,
            "last_block_age_ms": self.last_block_age.map(millis),
            "max_block_age_ms": millis(self.max_block_age),
        })
    }
}

impl Health {
    /// Health that turns [`HealthStatus::Stalled`] once no block has been
    /// produced for `max_block_age`, counting from now until the first
    /// block.
    pub fn new(max_block_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                created: Instant::now(),
                max_block_age,
                head: AtomicU64::new(0),
                head_timestamp: AtomicU64::new(0),
                last_block_nanos: AtomicU64::new(NO_BLOCK),
            }),
        }
    }

    /// Records that block `number` with timestamp `unix_time` (seconds) was
    /// produced just now.
    pub fn block_produced(&self, number: u64, unix_time: u64) {
        let nanos = self.inner.created.elapsed().as_nanos();
        // Written last with Release so a reader that sees the new time also
        // sees the new head.
        self.inner.head.store(number, Ordering::Relaxed);
        self.inner
            .head_timestamp
            .store(unix_time, Ordering::Relaxed);
        self.inner.last_block_nanos.store(
            u64::try_from(nanos).unwrap_or(NO_BLOCK - 1),
            Ordering::Release,
        );
    }

    /// The age past which the node counts as stalled.
    pub fn max_block_age(&self) -> Duration {
        self.inner.max_block_age
    }

    /// The current state.
    pub fn report(&self) -> HealthReport {
        self.report_at(Instant::now())
    }

    fn report_at(&self, now: Instant) -> HealthReport {
        let inner = &*self.inner;
        let last = inner.last_block_nanos.load(Ordering::Acquire);
        let max_block_age = inner.max_block_age;
        if last == NO_BLOCK {
            let up = now.saturating_duration_since(inner.created);
            let status = if up < max_block_age {
                HealthStatus::Starting
            } else {
                HealthStatus::Stalled
            };
            return HealthReport {
                status,
                head: None,
                head_timestamp: None,
                last_block_age: None,
                max_block_age,
            };
        }
        let produced_at = inner.created + Duration::from_nanos(last);
        let age = now.saturating_duration_since(produced_at);
        HealthReport {
            status: if age < max_block_age {
                HealthStatus::Ok
            } else {
                HealthStatus::Stalled
            },
            head: Some(inner.head.load(Ordering::Relaxed)),
            head_timestamp: Some(inner.head_timestamp.load(Ordering::Relaxed)),
            last_block_age: Some(age),
            max_block_age,
        }
    }
}

/// Exports the age of the producer's last report to [`Health`], read at
/// scrape time.
///
/// The producer reports every block and every idle slot (nothing to
/// include), so the age grows only when it is wedged, not when the chain is
/// merely quiet. A gauge the producer set itself would be stale by however
/// long ago it last ran, which is exactly the case that matters; reading the
/// age when Prometheus scrapes makes "no new block for N block times" an
/// alert on one sample, independent of the scrape interval.
pub(crate) struct HealthCollector {
    health: Health,
    age: Gauge,
}

impl HealthCollector {
    pub(crate) fn new(health: Health) -> prometheus::Result<Self> {
        let age = Gauge::with_opts(Opts::new(
            HEARTBEAT_AGE_METRIC,
            "Seconds since the block producer last produced a block or passed an idle slot with nothing to include (since start-up before that), read at scrape time; /health turns 503 past its maximum block age",
        ))?;
        Ok(Self { health, age })
    }
}

impl Collector for HealthCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.age.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let inner = &*self.health.inner;
        let report = self.health.report();
        let age = report
            .last_block_age
            .unwrap_or_else(|| inner.created.elapsed());
        self.age.set(age.as_secs_f64());
        self.age.collect()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_AGE: Duration = Duration::from_secs(5);

    #[test]
    fn starting_then_stalled_without_blocks() {
        let health = Health::new(MAX_AGE);
        let t0 = health.inner.created;

        let r = health.report_at(t0 + Duration::from_secs(1));
        assert_eq!(r.status, HealthStatus::Starting);
        assert!(r.status.is_healthy());
        assert_eq!((r.head, r.last_block_age), (None, None));

        let r = health.report_at(t0 + MAX_AGE);
        assert_eq!(r.status, HealthStatus::Stalled);
        assert!(!r.status.is_healthy());
    }

    #[test]
    fn ok_while_blocks_are_young() {
        let health = Health::new(MAX_AGE);
        health.block_produced(7, 1_700_000_000);
        let produced = health.inner.created
            + Duration::from_nanos(health.inner.last_block_nanos.load(Ordering::Acquire));

        let r = health.report_at(produced + Duration::from_millis(4_999));
        assert_eq!(r.status, HealthStatus::Ok);
        assert_eq!(r.head, Some(7));
        assert_eq!(r.head_timestamp, Some(1_700_000_000));
        assert_eq!(r.last_block_age, Some(Duration::from_millis(4_999)));

        let r = health.report_at(produced + MAX_AGE);
        assert_eq!(r.status, HealthStatus::Stalled);
        assert_eq!(r.head, Some(7));

        // A new block recovers, and clones see it.
        health.clone().block_produced(8, 1_700_000_001);
        let r = health.report();
        assert_eq!((r.status, r.head), (HealthStatus::Ok, Some(8)));
    }

    #[test]
    fn real_clock_with_short_max_age() {
        // Generous enough that a busy test machine does not make the
        // "immediately after" checks flaky.
        let max_age = Duration::from_millis(300);
        let health = Health::new(max_age);
        assert_eq!(health.report().status, HealthStatus::Starting);
        std::thread::sleep(max_age + Duration::from_millis(20));
        assert_eq!(health.report().status, HealthStatus::Stalled);
        health.block_produced(1, 0);
        assert_eq!(health.report().status, HealthStatus::Ok);
        std::thread::sleep(max_age + Duration::from_millis(20));
        assert_eq!(health.report().status, HealthStatus::Stalled);
    }

    #[test]
    fn collector_reports_block_age() {
        let health = Health::new(MAX_AGE);
        let collector = HealthCollector::new(health.clone()).unwrap();
        let age = |c: &HealthCollector| {
            let families = c.collect();
            assert_eq!(families.len(), 1);
            assert_eq!(families[0].name(), HEARTBEAT_AGE_METRIC);
            families[0].get_metric()[0].get_gauge().get_value()
        };
        // Before the first block the age counts from start-up.
        std::thread::sleep(Duration::from_millis(30));
        let before = age(&collector);
        assert!(before >= 0.03, "{before}");
        health.block_produced(1, 0);
        let after = age(&collector);
        assert!(after < before, "{after} < {before}");
        std::thread::sleep(Duration::from_millis(30));
        assert!(age(&collector) >= after + 0.03);
    }

    #[test]
    fn json_shape() {
        let health = Health::new(MAX_AGE);
        let json = health.report_at(health.inner.created).to_json();
        assert_eq!(json["status"], "starting");
        assert!(json["head"].is_null());
        assert!(json["last_block_age_ms"].is_null());
        assert_eq!(json["max_block_age_ms"], 5000);

        health.block_produced(3, 10);
        let json = health.report().to_json();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["head"], 3);
        assert!(json["last_block_age_ms"].is_u64());
    }
}
