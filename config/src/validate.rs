//! Semantic checks that serde cannot express: ranges, cross-field
//! constraints and secret formats.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use figment::Figment;

use crate::layers::layer_of;
use crate::{Compression, ConfigError, LanesConfig};

/// Slower than a minute is not a rollup any more; faster than 50ms leaves no
/// time to execute a meaningful block on the hardware we target.
const BLOCK_TIME: RangeInclusive<Duration> = Duration::from_millis(50)..=Duration::from_secs(60);
/// Gas of the cheapest transaction: a block must fit at least one.
const MIN_GAS_LIMIT: u64 = 21_000;

/// One broken rule.
#[derive(Debug)]
pub(crate) struct Violation {
    /// The key the operator should change.
    pub key: &'static str,
    /// Another key the rule involves, whose layer is worth naming too.
    pub related: Option<&'static str>,
    pub message: String,
}

impl Violation {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            related: None,
            message: message.into(),
        }
    }

    fn related(mut self, key: &'static str) -> Self {
        self.related = Some(key);
        self
    }

    /// Turns the violation into an error, naming layers when `figment` is
    /// known.
    pub(crate) fn into_error(self, figment: Option<&Figment>) -> ConfigError {
        let mut message = self.message;
        if let (Some(figment), Some(related)) = (figment, self.related)
            && let Some(layer) = layer_of(figment, related)
        {
            message.push_str(&format!(" ({related} from {layer})"));
        }
        ConfigError::InvalidValue {
            key: self.key.to_owned(),
            layer: figment.and_then(|f| layer_of(f, self.key)),
            message,
        }
    }
}

/// Every rule `config` breaks.
pub(crate) fn violations(config: &LanesConfig) -> Vec<Violation> {
    let mut out = Vec::new();
    let c = config;

    if c.chain.chain_id == 0 {
        out.push(Violation::new("chain.chain_id", "must not be 0"));
    }
    for (key, gas) in [
        ("chain.gas_limit", c.chain.gas_limit),
        ("mempool.max_tx_gas", c.mempool.max_tx_gas),
    ] {
        if gas < MIN_GAS_LIMIT {
            out.push(Violation::new(
                key,
                format!("{gas} is below {MIN_GAS_LIMIT}, the gas of a plain transfer"),
            ));
        }
    }

    if !BLOCK_TIME.contains(&c.sequencer.block_time) {
        out.push(Violation::new(
            "sequencer.block_time",
            format!(
                "{} is outside the allowed range {}..={}",
                fmt_duration(c.sequencer.block_time),
                fmt_duration(*BLOCK_TIME.start()),
                fmt_duration(*BLOCK_TIME.end()),
            ),
        ));
    }
    if let Some(interval) = c.sequencer.empty_block_interval
        && interval < c.sequencer.block_time
    {
        out.push(
            Violation::new(
                "sequencer.empty_block_interval",
                format!(
                    "{} is shorter than sequencer.block_time {}; use \"never\" to disable empty blocks",
                    fmt_duration(interval),
                    fmt_duration(c.sequencer.block_time),
                ),
            )
            .related("sequencer.block_time"),
        );
    }

    let positive: [(&'static str, u64); 19] = [
        (
            "rpc.max_request_body_bytes",
            c.rpc.max_request_body_bytes.into(),
        ),
        (
            "rpc.max_response_body_bytes",
            c.rpc.max_response_body_bytes.into(),
        ),
        ("rpc.max_batch_size", c.rpc.max_batch_size.into()),
        ("rpc.max_connections", c.rpc.max_connections.into()),
        ("rpc.gas_cap", c.rpc.gas_cap),
        ("rpc.max_logs_block_range", c.rpc.max_logs_block_range),
        ("rpc.max_logs", as_u64(c.rpc.max_logs)),
        ("rpc.fee_history_max_blocks", c.rpc.fee_history_max_blocks),
        ("rpc.max_filters", as_u64(c.rpc.max_filters)),
        ("sequencer.max_block_txs", as_u64(c.sequencer.max_block_txs)),
        ("mempool.max_pending", as_u64(c.mempool.max_pending)),
        ("mempool.max_queued", as_u64(c.mempool.max_queued)),
        ("mempool.account_slots", as_u64(c.mempool.account_slots)),
        ("mempool.max_tx_bytes", as_u64(c.mempool.max_tx_bytes)),
        ("mempool.price_bump_percent", c.mempool.price_bump_percent),
        ("batcher.max_batch_bytes", as_u64(c.batcher.max_batch_bytes)),
        ("batcher.confirmations", c.batcher.confirmations),
        ("batcher.max_backlog_bytes", c.batcher.max_backlog_bytes),
        ("storage.state_root_history", c.storage.state_root_history),
    ];
    for (key, value) in positive {
        if value == 0 {
            out.push(Violation::new(key, "must be greater than 0"));
        }
    }

    let nonzero_durations = [
        ("rpc.evm_timeout", c.rpc.evm_timeout),
        ("rpc.filter_timeout", c.rpc.filter_timeout),
        ("rpc.send_raw_sync_timeout", c.rpc.send_raw_sync_timeout),
        ("mempool.lifetime", c.mempool.lifetime),
        ("l1.poll_interval", c.l1.poll_interval),
        ("batcher.max_batch_age", c.batcher.max_batch_age),
        ("batcher.poll_interval", c.batcher.poll_interval),
        ("batcher.resubmit_after", c.batcher.resubmit_after),
    ];
    for (key, value) in nonzero_durations {
        if value.is_zero() {
            out.push(Violation::new(key, "must be longer than 0s"));
        }
    }

    if c.batcher.fee_bump_percent < 10 {
        out.push(Violation::new(
            "batcher.fee_bump_percent",
            "must be at least 10 (nodes refuse smaller replacement bumps)",
        ));
    }

    let levels = match c.batcher.compression {
        Compression::Zstd => Some(("zstd", 1..=22)),
        Compression::Brotli => Some(("brotli", 0..=11)),
        Compression::None => None,
    };
    if let Some((name, range)) = levels
        && !range.contains(&c.batcher.compression_level)
    {
        out.push(
            Violation::new(
                "batcher.compression_level",
                format!(
                    "{} is outside {}..={} allowed for {name}",
                    c.batcher.compression_level,
                    range.start(),
                    range.end()
                ),
            )
            .related("batcher.compression"),
        );
    }

    for (key, secret) in [
        ("batcher.private_key", &c.batcher.private_key),
        ("l1.deploy_private_key", &c.l1.deploy_private_key),
    ] {
        // The message must never echo the value: it is a secret.
        if let Some(secret) = secret
            && !is_private_key(secret)
        {
            out.push(Violation::new(key, "must be 0x followed by 64 hex digits"));
        }
    }
    if c.batcher.private_key.is_some() && c.batcher.private_key_file.is_some() {
        out.push(
            Violation::new(
                "batcher.private_key_file",
                "is set together with batcher.private_key; set only one",
            )
            .related("batcher.private_key"),
        );
    }

    if c.log.filter.trim().is_empty() {
        out.push(Violation::new("log.filter", "must not be empty"));
    }

    port_conflicts(c, &mut out);
    out
}

/// Listeners that would fail to bind because another one holds the port.
fn port_conflicts(c: &LanesConfig, out: &mut Vec<Violation>) {
    let rpc = ("rpc.port", c.rpc.addr, c.rpc.port);
    let metrics = c
        .metrics
        .enabled
        .then_some(("metrics.port", c.metrics.addr, c.metrics.port));
    // The admin endpoint's address is the binary's choice, so any equal port
    // is treated as a clash.
    let admin = c
        .batcher
        .enabled
        .then_some(("batcher.admin_port", c.batcher.admin_port));

    if let Some((key, addr, port)) = metrics
        && port != 0
        && port == rpc.2
        && addrs_overlap(addr, rpc.1)
    {
        out.push(
            Violation::new(
                key,
                format!("{port} is also used by rpc.port on an overlapping address"),
            )
            .related(rpc.0),
        );
    }
    if let Some((key, port)) = admin {
        for (other_key, other_port) in
            [(Some(rpc.0), rpc.2), (metrics.map(|m| m.0), c.metrics.port)]
        {
            if let Some(other_key) = other_key
                && port != 0
                && port == other_port
            {
                out.push(
                    Violation::new(key, format!("{port} is also used by {other_key}"))
                        .related(other_key),
                );
            }
        }
    }
}

/// Binding the unspecified address takes the port on every address.
fn addrs_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

fn is_private_key(key: &str) -> bool {
    key.strip_prefix("0x")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn fmt_duration(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(config: &LanesConfig) -> Vec<&'static str> {
        violations(config).into_iter().map(|v| v.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(violations(&LanesConfig::default()).is_empty());
    }

    #[test]
    fn block_time_range() {
        let mut c = LanesConfig::default();
        c.sequencer.block_time = Duration::from_millis(49);
        assert_eq!(keys(&c), ["sequencer.block_time"]);
        c.sequencer.block_time = Duration::from_millis(50);
        assert!(keys(&c).is_empty());
        c.sequencer.block_time = Duration::from_secs(60);
        c.sequencer.empty_block_interval = None;
        assert!(keys(&c).is_empty());
        c.sequencer.block_time = Duration::from_millis(60_001);
        assert_eq!(keys(&c), ["sequencer.block_time"]);
    }

    #[test]
    fn empty_block_interval_not_below_block_time() {
        let mut c = LanesConfig::default();
        c.sequencer.block_time = Duration::from_secs(2);
        c.sequencer.empty_block_interval = Some(Duration::from_secs(1));
        assert_eq!(keys(&c), ["sequencer.empty_block_interval"]);
        c.sequencer.empty_block_interval = Some(Duration::from_secs(2));
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn zero_limits_rejected() {
        let mut c = LanesConfig::default();
        c.rpc.max_batch_size = 0;
        c.mempool.max_pending = 0;
        c.mempool.price_bump_percent = 0;
        c.mempool.lifetime = Duration::ZERO;
        assert_eq!(
            keys(&c),
            [
                "rpc.max_batch_size",
                "mempool.max_pending",
                "mempool.price_bump_percent",
                "mempool.lifetime"
            ]
        );
    }

    #[test]
    fn gas_limit_floor() {
        let mut c = LanesConfig::default();
        c.chain.gas_limit = 20_999;
        assert_eq!(keys(&c), ["chain.gas_limit"]);
        c.chain.gas_limit = 21_000;
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn compression_level_depends_on_algorithm() {
        let mut c = LanesConfig::default();
        c.batcher.compression = Compression::Brotli;
        c.batcher.compression_level = 12;
        assert_eq!(keys(&c), ["batcher.compression_level"]);
        c.batcher.compression = Compression::Zstd;
        assert!(keys(&c).is_empty());
        c.batcher.compression_level = 0;
        assert_eq!(keys(&c), ["batcher.compression_level"]);
        c.batcher.compression_level = 23;
        assert_eq!(keys(&c), ["batcher.compression_level"]);
        c.batcher.compression = Compression::None;
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn private_key_format_without_echoing_it() {
        let mut c = LanesConfig::default();
        c.batcher.private_key = Some(format!("0x{}", "ab".repeat(32)));
        c.l1.deploy_private_key = Some(format!("0x{}", "AB".repeat(32)));
        assert!(keys(&c).is_empty());

        let leaked = "0xsupersecret";
        c.batcher.private_key = Some(leaked.to_owned());
        c.l1.deploy_private_key = Some("ab".repeat(32));
        let v = violations(&c);
        assert_eq!(
            v.iter().map(|v| v.key).collect::<Vec<_>>(),
            ["batcher.private_key", "l1.deploy_private_key"]
        );
        assert!(v.iter().all(|v| !v.message.contains("supersecret")));
    }

    #[test]
    fn private_key_and_file_are_exclusive() {
        let mut c = LanesConfig::default();
        c.batcher.private_key = Some(format!("0x{}", "11".repeat(32)));
        c.batcher.private_key_file = Some("key".into());
        assert_eq!(keys(&c), ["batcher.private_key_file"]);
    }

    #[test]
    fn port_conflicts_need_same_port_and_overlapping_addr() {
        let mut c = LanesConfig::default();
        c.metrics.port = c.rpc.port;
        assert_eq!(keys(&c), ["metrics.port"]);

        c.metrics.addr = "10.0.0.1".parse().unwrap();
        assert!(keys(&c).is_empty());

        c.rpc.addr = "0.0.0.0".parse().unwrap();
        assert_eq!(keys(&c), ["metrics.port"]);

        c.metrics.enabled = false;
        assert!(keys(&c).is_empty());

        // Port 0 asks the OS for a free port, so two of them never clash.
        let mut c = LanesConfig::default();
        c.rpc.port = 0;
        c.metrics.port = 0;
        c.batcher.admin_port = 0;
        assert!(keys(&c).is_empty());

        let mut c = LanesConfig::default();
        c.batcher.admin_port = c.metrics.port;
        assert_eq!(keys(&c), ["batcher.admin_port"]);
        c.batcher.enabled = false;
        assert!(keys(&c).is_empty());
    }
}
