//! Metrics and health for lanes.
//!
//! The binary creates one [`MetricsRegistry`] and one [`Health`] at startup
//! and hands clones to every subsystem: the mempool, block producer,
//! executor, RPC server, L1 bridge and batcher each register their own
//! metrics through the registry's typed helpers, which enforce the naming
//! rules (`lanes_` prefix, counters ending in `_total`, help text), and the
//! block producer reports each block to [`Health`]. [`serve`] exposes both
//! over HTTP:
//!
//! - `GET /metrics`: every metric in the Prometheus text format, plus the
//!   process metrics (CPU, memory, file descriptors),
//! - `GET /health`: 200 while blocks are being produced, 503 once the last
//!   block is older than the configured maximum age. Health means
//!   "producing blocks", not "answers HTTP".
//!
//! `/metrics` also carries `lanes_producer_heartbeat_age_seconds`, the age
//! of the producer's last report to [`Health`] (a block, or an idle slot)
//! read at scrape time, so "no new block for N block times" is an alert on a
//! single sample whatever the scrape interval, and a quiet chain is not an
//! outage.
//!
//! Shared histogram layouts live in [`buckets`]. Errors are
//! [`MonitoringError`]s; registering metrics happens once at startup, so
//! callers propagate them with `?`.
//!
//! # Monitoring
//!
//! The crate's folder ships what an operator needs around those metrics
//! (see `monitoring/README.md`):
//!
//! - `prometheus/prometheus.yml`: scrapes a local node (`127.0.0.1:9545`)
//!   and loads `prometheus/alerts.yml`, the alert rules (no new block for 3
//!   block times, batch posting lag, low L1 balances, RPC error rate,
//!   mempool near full, L1 unreachable), with unit tests for
//!   `promtool test rules` in `prometheus/alerts_test.yml`.
//! - `grafana/dashboards/lanes.json`: the dashboard (importable as is, with
//!   a `datasource` variable), and `grafana/provisioning/` to have
//!   `grafana-server` load it with a Prometheus data source at start.
//!
//! ```text
//! lanes node --dev &                     # metrics on 127.0.0.1:9545
//! cd monitoring && prometheus --config.file=prometheus/prometheus.yml
//! GF_PATHS_PROVISIONING=$PWD/grafana/provisioning LANES_MONITORING_DIR=$PWD \
//!     grafana-server --homepath /usr/share/grafana
//! ```
//!
//! [`assets`] embeds these files and holds the PromQL helpers the tests use
//! to evaluate every panel and alert against a real Prometheus scraping a
//! real node (`sequencer/tests/e2e_monitoring.rs`).

pub mod assets;
pub mod buckets;
mod health;
mod registry;
mod server;

pub use health::{HEARTBEAT_AGE_METRIC, Health, HealthReport, HealthStatus};
pub use prometheus::{
    Counter, Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};
pub use registry::{COUNTER_SUFFIX, METRIC_PREFIX, MetricsRegistry};
pub use server::{METRICS_CONTENT_TYPE, bind, router, serve};

/// Result of registering a metric.
pub type MonitoringResult<T> = Result<T, MonitoringError>;

/// Why a metric could not be registered. All of these are programming
/// errors in the registering subsystem, surfaced at startup.
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// The name breaks the naming rules.
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The help text is empty.
    #[error("metric {name} needs a help text")]
    MissingHelp {
        /// The metric's name.
        name: String,
    },
    /// A label name is invalid.
    #[error("invalid label {label:?} on metric {name}: {reason}")]
    InvalidLabel {
        /// The metric's name.
        name: String,
        /// The rejected label.
        label: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A metric of that name is already registered.
    #[error("metric {name} is already registered")]
    AlreadyRegistered {
        /// The metric's name.
        name: String,
    },
    /// Prometheus rejected the metric, e.g. for unsorted buckets.
    #[error("cannot register metric {name}: {source}")]
    Prometheus {
        /// The metric's name.
        name: String,
        /// Prometheus' reason.
        #[source]
        source: prometheus::Error,
    },
}
