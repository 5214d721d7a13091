//! The metrics registry and the naming rules it enforces.

use prometheus::core::Collector;
use prometheus::{
    Counter, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::health::HealthCollector;
use crate::{Health, MonitoringError, MonitoringResult};

/// Prefix every lanes metric carries, so dashboards can tell ours from the
/// process and exporter metrics scraped alongside.
pub const METRIC_PREFIX: &str = "lanes_";
/// Suffix every counter carries, per Prometheus naming conventions.
pub const COUNTER_SUFFIX: &str = "_total";
/// Suffixes Prometheus itself appends to histogram series; a metric named
/// with one would be confused with those series.
const RESERVED_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// What kind of metric a name is for, which decides its suffix rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The Prometheus registry of a lanes node.
///
/// Cloning is cheap and every clone registers into and renders the same
/// metrics. Each subsystem registers its own metrics at startup through the
/// typed helpers, which reject names that break the naming rules: every name
/// starts with `lanes_` and is lowercase snake case, counters end in
/// `_total` and nothing else does, help text is not empty.
#[derive(Clone)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    /// A registry holding only the process metrics (CPU, memory, open file
    /// descriptors; Linux only).
    pub fn new() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            // A fresh registry holds nothing it could clash with.
            if let Err(error) = registry.register(Box::new(process)) {
                tracing::warn!(%error, "process metrics unavailable");
            }
        }
        Self { registry }
    }

    /// The underlying registry, for collectors the helpers do not cover.
    /// Metrics registered this way bypass the naming rules.
    pub fn prometheus(&self) -> &Registry {
        &self.registry
    }

    /// Registers a counter; `name` must end in `_total`.
    pub fn counter(&self, name: &str, help: &str) -> MonitoringResult<IntCounter> {
        check(name, help, Kind::Counter, &[])?;
        self.register(name, IntCounter::with_opts(Opts::new(name, help)))
    }

    /// Registers a counter with labels; `name` must end in `_total`.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> MonitoringResult<IntCounterVec> {
        check(name, help, Kind::Counter, labels)?;
        self.register(name, IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// Registers a floating-point counter, for sums of non-integer amounts
    /// such as busy seconds; `name` must end in `_total`.
    pub fn float_counter(&self, name: &str, help: &str) -> MonitoringResult<Counter> {
        check(name, help, Kind::Counter, &[])?;
        self.register(name, Counter::with_opts(Opts::new(name, help)))
    }

    /// Registers a floating-point gauge.
    pub fn gauge(&self, name: &str, help: &str) -> MonitoringResult<Gauge> {
        check(name, help, Kind::Gauge, &[])?;
        self.register(name, Gauge::with_opts(Opts::new(name, help)))
    }

    /// Registers an integer gauge.
    pub fn int_gauge(&self, name: &str, help: &str) -> MonitoringResult<IntGauge> {
        check(name, help, Kind::Gauge, &[])?;
        self.register(name, IntGauge::with_opts(Opts::new(name, help)))
    }

    /// Registers an integer gauge with labels.
    pub fn int_gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> MonitoringResult<IntGaugeVec> {
        check(name, help, Kind::Gauge, labels)?;
        self.register(name, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// Registers a histogram with the given upper bucket bounds, usually
    /// from [`buckets`](crate::buckets).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
    ) -> MonitoringResult<Histogram> {
        check(name, help, Kind::Histogram, &[])?;
        self.register(
            name,
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)),
        )
    }

    /// Registers a histogram with labels.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> MonitoringResult<HistogramVec> {
        check(name, help, Kind::Histogram, labels)?;
        self.register(
            name,
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels),
        )
    }

    /// Exports `health`'s age as `lanes_producer_heartbeat_age_seconds`, read
    /// at scrape time. [`router`](crate::router) does this for the health it
    /// serves; registering a second [`Health`] is an error.
    pub fn register_health(&self, health: &Health) -> MonitoringResult<()> {
        let name = crate::health::HEARTBEAT_AGE_METRIC;
        let collector =
            HealthCollector::new(health.clone()).map_err(|source| MonitoringError::Prometheus {
                name: name.to_owned(),
                source,
            })?;
        self.register_boxed(name, Box::new(collector))
    }

    /// Every registered metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let encoder = TextEncoder::new();
        let mut out = String::new();
        // Family by family, so one that fails to encode costs only itself.
        for family in self.registry.gather() {
            match encoder.encode_to_string(std::slice::from_ref(&family)) {
                Ok(text) => out.push_str(&text),
                Err(error) => {
                    tracing::error!(metric = family.name(), %error, "cannot encode metric");
                }
            }
        }
        out
    }

    fn register<C>(&self, name: &str, collector: prometheus::Result<C>) -> MonitoringResult<C>
    where
        C: Collector + Clone + 'static,
    {
        let collector = collector.map_err(|source| MonitoringError::Prometheus {
            name: name.to_owned(),
            source,
        })?;
        self.register_boxed(name, Box::new(collector.clone()))?;
        Ok(collector)
    }

    fn register_boxed(&self, name: &str, collector: Box<dyn Collector>) -> MonitoringResult<()> {
        let prometheus_error = |source| MonitoringError::Prometheus {
            name: name.to_owned(),
            source,
        };
        match self.registry.register(collector) {
            Ok(()) => Ok(()),
            Err(prometheus::Error::AlreadyReg) => Err(MonitoringError::AlreadyRegistered {
                name: name.to_owned(),
            }),
            Err(source) => Err(prometheus_error(source)),
        }
    }
}

fn check(name: &str, help: &str, kind: Kind, labels: &[&str]) -> MonitoringResult<()> {
    let invalid = |reason: &'static str| MonitoringError::InvalidName {
        name: name.to_owned(),
        reason,
    };

    let Some(rest) = name.strip_prefix(METRIC_PREFIX) else {
        return Err(invalid("must start with `lanes_`"));
    };
    if rest.is_empty() || rest.starts_with('_') {
        return Err(invalid("needs a name after `lanes_`"));
    }
    if !is_snake_case(name) {
        return Err(invalid(
            "must contain only lowercase ASCII letters, digits and `_`",
        ));
    }
    match kind {
        Kind::Counter if !name.ends_with(COUNTER_SUFFIX) => {
            return Err(invalid("counters must end in `_total`"));
        }
        Kind::Counter if rest == &COUNTER_SUFFIX[1..] => {
            return Err(invalid("needs a name before `_total`"));
        }
        Kind::Gauge | Kind::Histogram if name.ends_with(COUNTER_SUFFIX) => {
            return Err(invalid("only counters may end in `_total`"));
        }
        _ => {}
    }
    if RESERVED_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        return Err(invalid(
            "`_bucket`, `_sum` and `_count` are reserved for histogram series",
        ));
    }

    if help.trim().is_empty() {
        return Err(MonitoringError::MissingHelp {
            name: name.to_owned(),
        });
    }

    for (i, label) in labels.iter().enumerate() {
        let invalid_label = |reason: &'static str| MonitoringError::InvalidLabel {
            name: name.to_owned(),
            label: (*label).to_owned(),
            reason,
        };
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid_label("must start with a lowercase letter or `_`"));
        }
        if !is_snake_case(label) {
            return Err(invalid_label(
                "must contain only lowercase ASCII letters, digits and `_`",
            ));
        }
        if label.starts_with("__") {
            return Err(invalid_label("`__` is reserved for Prometheus"));
        }
        if kind == Kind::Histogram && *label == "le" {
            return Err(invalid_label("`le` is the histogram bucket label"));
        }
        if labels[..i].contains(label) {
            return Err(invalid_label("appears twice"));
        }
    }
    Ok(())
}

fn is_snake_case(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets;

    fn reason(result: MonitoringResult<impl Sized>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_need_prefix() {
        let r = MetricsRegistry::new();
        assert!(reason(r.int_gauge("head_block", "Head.")).contains("lanes_"));
        assert!(reason(r.counter("txs_total", "Txs.")).contains("lanes_"));
        assert!(r.int_gauge("lanes_", "Nothing.").is_err());
        assert!(r.int_gauge("lanes__x", "Nothing.").is_err());
    }

    #[test]
    fn names_are_lowercase_snake_case() {
        let r = MetricsRegistry::new();
        assert!(r.int_gauge("lanes_headBlock", "Head.").is_err());
        assert!(r.int_gauge("lanes_head-block", "Head.").is_err());
        assert!(r.int_gauge("lanes_head:block", "Head.").is_err());
        assert!(r.int_gauge("lanes_head_block2", "Head.").is_ok());
    }

    #[test]
    fn counters_end_in_total_and_only_counters() {
        let r = MetricsRegistry::new();
        assert!(reason(r.counter("lanes_txs", "Txs.")).contains("_total"));
        assert!(r.counter("lanes_total", "Nothing.").is_err());
        assert!(r.counter("lanes_txs_total", "Txs.").is_ok());
        assert!(r.float_counter("lanes_busy_seconds", "Busy.").is_err());
        assert!(r.float_counter("lanes_busy_seconds_total", "Busy.").is_ok());
        assert!(
            r.counter_vec("lanes_rejected_total", "Rejected.", &["reason"])
                .is_ok()
        );
        assert!(
            r.counter_vec("lanes_dropped", "Dropped.", &["reason"])
                .is_err()
        );

        assert!(r.gauge("lanes_gas_total", "Gas.").is_err());
        assert!(
            r.int_gauge_vec("lanes_pool_total", "Pool.", &["kind"])
                .is_err()
        );
        assert!(
            r.histogram("lanes_time_total", "Time.", buckets::latency_seconds())
                .is_err()
        );
    }

    #[test]
    fn reserved_suffixes_rejected() {
        let r = MetricsRegistry::new();
        assert!(r.int_gauge("lanes_tx_count", "Txs.").is_err());
        assert!(
            r.histogram("lanes_block_bucket", "B.", buckets::latency_seconds())
                .is_err()
        );
    }

    #[test]
    fn help_required() {
        let r = MetricsRegistry::new();
        let err = r.int_gauge("lanes_head_block", "  ").unwrap_err();
        assert!(matches!(err, MonitoringError::MissingHelp { .. }), "{err}");
    }

    #[test]
    fn labels_checked() {
        let r = MetricsRegistry::new();
        assert!(r.counter_vec("lanes_a_total", "A.", &["Reason"]).is_err());
        assert!(r.counter_vec("lanes_b_total", "B.", &["1st"]).is_err());
        assert!(r.counter_vec("lanes_c_total", "C.", &["__name"]).is_err());
        assert!(r.counter_vec("lanes_d_total", "D.", &["x", "x"]).is_err());
        assert!(
            r.histogram_vec("lanes_e_seconds", "E.", &["le"], vec![1.0])
                .is_err()
        );
        assert!(
            r.histogram_vec("lanes_f_seconds", "F.", &["method"], vec![1.0])
                .is_ok()
        );
    }

    #[test]
    fn duplicate_registration_rejected() {
        let r = MetricsRegistry::new();
        r.counter("lanes_blocks_total", "Blocks.").unwrap();
        let err = r.counter("lanes_blocks_total", "Blocks.").unwrap_err();
        assert!(
            matches!(err, MonitoringError::AlreadyRegistered { ref name } if name == "lanes_blocks_total")
        );
        // Through a clone too: clones share one registry.
        let err = r
            .clone()
            .int_gauge_vec("lanes_blocks_total", "Other.", &["x"])
            .unwrap_err();
        assert!(err.to_string().contains("lanes_blocks_total"), "{err}");
    }

    #[test]
    fn bad_buckets_are_an_error() {
        let r = MetricsRegistry::new();
        let err = r
            .histogram("lanes_x_seconds", "X.", vec![2.0, 1.0])
            .unwrap_err();
        assert!(matches!(err, MonitoringError::Prometheus { .. }), "{err}");
    }

    #[test]
    fn render_includes_help_and_values() {
        let r = MetricsRegistry::new();
        let blocks = r.counter("lanes_blocks_total", "Blocks produced.").unwrap();
        let rejected = r
            .counter_vec(
                "lanes_txs_rejected_total",
                "Rejected transactions.",
                &["reason"],
            )
            .unwrap();
        let build = r
            .histogram(
                "lanes_block_build_seconds",
                "Block build time.",
                buckets::latency_seconds(),
            )
            .unwrap();
        blocks.inc_by(3);
        rejected.with_label_values(&["nonce_too_low"]).inc();
        build.observe(0.002);

        let text = r.clone().render();
        assert!(
            text.contains("# HELP lanes_blocks_total Blocks produced.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE lanes_blocks_total counter\n"),
            "{text}"
        );
        assert!(text.contains("lanes_blocks_total 3\n"), "{text}");
        assert!(
            text.contains("lanes_txs_rejected_total{reason=\"nonce_too_low\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lanes_block_build_seconds_bucket{le=\"0.0025\"} 1\n"),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
