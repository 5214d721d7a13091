//! Layered configuration for lanes.
//!
//! The `lanes` binary calls [`load`] once at startup and hands the resulting
//! [`LanesConfig`] sections to the subsystems: [`RpcConfig`] to the JSON-RPC
//! server, [`SequencerConfig`] to block production, [`MempoolConfig`] to the
//! transaction pool, [`ExecutorConfig`] to the executor, [`StorageConfig`]
//! to the database, [`L1Config`] and [`BatcherConfig`] to the L1 bridge and
//! batcher, [`MetricsConfig`] to the metrics endpoint and [`LogConfig`] to
//! the tracing subscriber. Nothing reads configuration after startup.
//!
//! Values are layered, each layer overriding the ones before it:
//!
//! 1. built-in defaults ([`LanesConfig::default`]),
//! 2. a TOML file, if one is named (`lanes.example.toml` lists every key),
//! 3. `LANES_*` environment variables, with `__` between section and key:
//!    `LANES_RPC__PORT=9000`, `LANES_SEQUENCER__BLOCK_TIME=200ms`,
//! 4. command-line flags, passed in as a JSON map holding only the flags the
//!    user set (`{"rpc": {"port": 9000}}` or `{"rpc.port": 9000}`).
//!
//! Durations are humantime strings (`"1s"`, `"200ms"`, `"3h"`). Misspelt
//! keys are errors, and every error names the key and the layer that set
//! it, e.g. `invalid value for rpc.port from environment variable
//! LANES_RPC__PORT: ...`. Errors are [`ConfigError`]s.

mod error;
mod layers;
mod sections;
mod validate;

use std::path::Path;

use figment::Figment;
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, ConfigResult};
pub use layers::{ENV_PREFIX, ENV_SEPARATOR};
pub use sections::{
    BatcherConfig, ChainConfig, Compression, DEFAULT_FEE_RECIPIENT, DataAvailability,
    ExecutorConfig, ExecutorMode, L1Config, LogConfig, LogFormat, MempoolConfig, MetricsConfig,
    RpcConfig, SequencerConfig, StorageConfig,
};

/// Shown instead of a secret by [`LanesConfig::redacted`].
pub const REDACTED: &str = "<redacted>";

/// The whole configuration of a lanes node, one field per TOML table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanesConfig {
    /// `[chain]`: chain identity and genesis.
    pub chain: ChainConfig,
    /// `[rpc]`: the JSON-RPC server.
    pub rpc: RpcConfig,
    /// `[sequencer]`: block production.
    pub sequencer: SequencerConfig,
    /// `[mempool]`: the transaction pool.
    pub mempool: MempoolConfig,
    /// `[executor]`: block execution.
    pub executor: ExecutorConfig,
    /// `[storage]`: the database.
    pub storage: StorageConfig,
    /// `[l1]`: the L1 connection.
    pub l1: L1Config,
    /// `[batcher]`: posting batches to L1.
    pub batcher: BatcherConfig,
    /// `[metrics]`: the Prometheus and health endpoint.
    pub metrics: MetricsConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
}

/// Loads, layers and validates the configuration.
///
/// `file` is an optional TOML file; naming one that does not exist is an
/// error. `cli` holds the command-line flags the user set, as a JSON object
/// of sections (`{"rpc": {"port": 9000}}`) or dotted keys
/// (`{"rpc.port": 9000}`); `null` values and `Value::Null` are ignored.
pub fn load(file: Option<&Path>, cli: serde_json::Value) -> ConfigResult<LanesConfig> {
    load_with_preset(file, None, cli)
}

/// [`load`] with a named preset layer (such as `--dev`) between the built-in defaults and
/// the file: the preset's values win over defaults but lose to anything the operator set.
/// Errors about a preset value name the layer by `preset.0`.
pub fn load_with_preset(
    file: Option<&Path>,
    preset: Option<(&'static str, serde_json::Value)>,
    cli: serde_json::Value,
) -> ConfigResult<LanesConfig> {
    if let Some(path) = file
        && !path.is_file()
    {
        return Err(ConfigError::FileNotFound {
            path: path.to_owned(),
        });
    }
    let figment = layers::figment(file, preset, cli);
    let config = LanesConfig::extract(&figment)?;
    config.validate_layered(Some(&figment))?;
    Ok(config)
}

impl LanesConfig {
    /// The layered sources without extracting or validating them; [`load`]
    /// is this plus [`LanesConfig::extract`] and validation.
    pub fn figment(file: Option<&Path>, cli: serde_json::Value) -> Figment {
        layers::figment(file, None, cli)
    }

    /// Deserialises `figment`, translating its errors into ones naming key
    /// and layer. Does not validate.
    pub fn extract(figment: &Figment) -> ConfigResult<LanesConfig> {
        figment.extract().map_err(|e| layers::translate(figment, e))
    }

    /// Checks the rules serde cannot express: ranges, cross-field
    /// constraints, secret formats. Reports every broken rule at once.
    ///
    /// The errors name the key but not the layer, which a bare config does
    /// not know; [`load`] names both.
    pub fn validate(&self) -> ConfigResult<()> {
        self.validate_layered(None)
    }

    fn validate_layered(&self, figment: Option<&Figment>) -> ConfigResult<()> {
        let errors = validate::violations(self)
            .into_iter()
            .map(|v| v.into_error(figment))
            .collect();
        match ConfigError::from_list(errors) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// A copy with every secret replaced by [`REDACTED`], safe to log or
    /// print.
    pub fn redacted(&self) -> LanesConfig {
        let mut copy = self.clone();
        for secret in [
            &mut copy.l1.deploy_private_key,
            &mut copy.batcher.private_key,
        ] {
            if secret.is_some() {
                *secret = Some(REDACTED.to_owned());
            }
        }
        copy
    }

    /// The configuration as TOML, in the format the config file accepts.
    /// Unset optional keys are left out. Call on [`LanesConfig::redacted`]
    /// before showing it to anyone.
    pub fn to_toml_string(&self) -> ConfigResult<String> {
        Ok(toml::to_string(self)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use alloy_primitives::address;
    use figment::Jail;
    use serde_json::json;

    use super::*;

    const EXAMPLE: &str = include_str!("../../lanes.example.toml");

    /// Jail closures must return figment errors; ours are not.
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail dictates the error type"
    )]
    fn jailed(test: impl FnOnce(&mut Jail) -> Result<(), String>) {
        Jail::expect_with(|jail| test(jail).map_err(figment::Error::from));
    }

    fn load_err(file: Option<&Path>, cli: serde_json::Value) -> ConfigError {
        match load(file, cli) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_without_any_layer() {
        jailed(|_| {
            let config = load(None, serde_json::Value::Null).map_err(|e| e.to_string())?;
            assert_eq!(config, LanesConfig::default());
            Ok(())
        });
    }

    #[test]
    fn preset_sits_between_defaults_and_operator_layers() {
        jailed(|jail| {
            let preset = json!({"sequencer": {"block_time": "250ms"}, "rpc": {"port": 7000}});
            let config = load_with_preset(None, Some(("--dev preset", preset.clone())), json!({}))
                .map_err(|e| e.to_string())?;
            assert_eq!(config.sequencer.block_time, Duration::from_millis(250));
            assert_eq!(config.rpc.port, 7000);
            // The file, the environment and flags all beat the preset.
            jail.create_file("lanes.toml", "[sequencer]\nblock_time = \"2s\"\n")
                .map_err(|e| e.to_string())?;
            jail.set_env("LANES_RPC__PORT", "7100");
            let config = load_with_preset(
                Some(Path::new("lanes.toml")),
                Some(("--dev preset", preset.clone())),
                json!({"metrics": {"port": 7200}}),
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(config.sequencer.block_time, Duration::from_secs(2));
            assert_eq!(config.rpc.port, 7100);
            assert_eq!(config.metrics.port, 7200);
            // A bad preset value is reported against the preset.
            let err = load_with_preset(
                None,
                Some(("--dev preset", json!({"metrics": {"port": "x"}}))),
                json!({}),
            )
            .unwrap_err();
            assert_eq!(err.layer(), Some("--dev preset"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn default_values() {
        let c = LanesConfig::default();
        assert_eq!(c.chain.chain_id, 42069);
        assert_eq!(c.chain.base_fee_floor, 1_000_000);
        assert_eq!(c.rpc.port, 8545);
        assert_eq!(c.rpc.max_request_body_bytes, 5 * 1024 * 1024);
        assert_eq!(c.rpc.max_response_body_bytes, 160 * 1024 * 1024);
        assert_eq!(c.sequencer.block_time, Duration::from_secs(1));
        assert_eq!(
            c.sequencer.empty_block_interval,
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            c.sequencer.fee_recipient,
            address!("0x4200000000000000000000000000000000000011")
        );
        assert_eq!(c.mempool.lifetime, Duration::from_secs(3 * 3600));
        assert_eq!(c.executor.mode, ExecutorMode::Sequential);
        assert_eq!(c.storage.cache_bytes, 256 * 1024 * 1024);
        assert_eq!(c.batcher.compression, Compression::Zstd);
        assert_eq!(c.metrics.port, 9545);
        assert_eq!(c.log.format, LogFormat::Text);
        c.validate().unwrap();
    }

    #[test]
    fn file_overrides_defaults() {
        jailed(|jail| {
            jail.create_file(
                "lanes.toml",
                r#"
                [rpc]
                port = 9000
                addr = "0.0.0.0"

                [sequencer]
                block_time = "250ms"
                empty_block_interval = "never"
                base_fee_recipient = "0x00000000000000000000000000000000000000aa"

                [executor]
                mode = "parallel"

                [batcher]
                compression = "zstd"
                compression_level = 3
                "#,
            )
            .map_err(|e| e.to_string())?;
            let c = load(Some(Path::new("lanes.toml")), json!({})).map_err(|e| e.to_string())?;
            assert_eq!(c.rpc.port, 9000);
            assert_eq!(c.rpc.addr.to_string(), "0.0.0.0");
            assert_eq!(c.sequencer.block_time, Duration::from_millis(250));
            assert_eq!(c.sequencer.empty_block_interval, None);
            assert_eq!(
                c.sequencer.base_fee_recipient,
                Some(address!("0x00000000000000000000000000000000000000aa"))
            );
            assert_eq!(c.executor.mode, ExecutorMode::Parallel);
            assert_eq!(c.batcher.compression, Compression::Zstd);
            // Untouched keys keep their defaults.
            assert_eq!(c.rpc.max_batch_size, 1000);
            assert_eq!(c.mempool, MempoolConfig::default());
            Ok(())
        });
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        jailed(|jail| {
            jail.create_file("lanes.toml", "[rpc]\nport = 9000\nmax_batch_size = 7\n")
                .map_err(|e| e.to_string())?;
            jail.set_env("LANES_RPC__PORT", 9001);
            jail.set_env("LANES_RPC__MAX_CONNECTIONS", 3);
            let file = Some(Path::new("lanes.toml"));

            let c = load(file, json!({})).map_err(|e| e.to_string())?;
            assert_eq!(
                (c.rpc.port, c.rpc.max_batch_size, c.rpc.max_connections),
                (9001, 7, 3)
            );

            let c = load(file, json!({"rpc": {"port": 9002}})).map_err(|e| e.to_string())?;
            assert_eq!(
                (c.rpc.port, c.rpc.max_batch_size, c.rpc.max_connections),
                (9002, 7, 3)
            );

            // Dotted keys work too, and unset flags (null) override nothing.
            let c = load(file, json!({"rpc.port": 9003, "rpc.max_connections": null}))
                .map_err(|e| e.to_string())?;
            assert_eq!((c.rpc.port, c.rpc.max_connections), (9003, 3));
            Ok(())
        });
    }

    #[test]
    fn nested_env_keys() {
        jailed(|jail| {
            jail.set_env("LANES_SEQUENCER__BLOCK_TIME", "200ms");
            jail.set_env("LANES_SEQUENCER__EMPTY_BLOCK_INTERVAL", "never");
            jail.set_env(
                "LANES_SEQUENCER__FEE_RECIPIENT",
                "0x00000000000000000000000000000000000000bb",
            );
            jail.set_env("LANES_LOG__FILTER", "info,lanes_executor=debug");
            jail.set_env("LANES_LOG__FORMAT", "json");
            jail.set_env("LANES_L1__RPC_URL", "http://127.0.0.1:8545");
            jail.set_env("LANES_METRICS__ENABLED", "false");
            // Not a key (no section separator): the binary's own variable.
            jail.set_env("LANES_CONFIG", "elsewhere.toml");
            let c = load(None, json!({})).map_err(|e| e.to_string())?;
            assert_eq!(c.sequencer.block_time, Duration::from_millis(200));
            assert_eq!(c.sequencer.empty_block_interval, None);
            assert_eq!(
                c.sequencer.fee_recipient,
                address!("0x00000000000000000000000000000000000000bb")
            );
            assert_eq!(c.log.filter, "info,lanes_executor=debug");
            assert_eq!(c.log.format, LogFormat::Json);
            assert_eq!(c.l1.rpc_url.as_deref(), Some("http://127.0.0.1:8545"));
            assert!(!c.metrics.enabled);
            Ok(())
        });
    }

    #[test]
    fn missing_file_names_path() {
        jailed(|_| {
            let err = load_err(Some(Path::new("nope/lanes.toml")), json!({}));
            assert!(matches!(err, ConfigError::FileNotFound { .. }));
            assert!(err.to_string().contains("nope/lanes.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn invalid_env_value_names_key_and_variable() {
        jailed(|jail| {
            jail.set_env("LANES_RPC__PORT", "90x0");
            let err = load_err(None, json!({}));
            assert_eq!(err.key(), Some("rpc.port"));
            assert_eq!(err.layer(), Some("environment variable LANES_RPC__PORT"));
            let msg = err.to_string();
            assert!(
                msg.starts_with(
                    "invalid value for rpc.port from environment variable LANES_RPC__PORT: "
                ),
                "{msg}"
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_file_value_names_key_and_file() {
        jailed(|jail| {
            jail.create_file("bad.toml", "[sequencer]\nblock_time = \"fast\"\n")
                .map_err(|e| e.to_string())?;
            let err = load_err(Some(Path::new("bad.toml")), json!({}));
            assert_eq!(err.key(), Some("sequencer.block_time"));
            assert_eq!(err.layer(), Some("config file bad.toml"));
            assert!(
                err.to_string()
                    .contains("sequencer.block_time from config file bad.toml")
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_cli_value_names_layer() {
        jailed(|_| {
            let err = load_err(None, json!({"batcher": {"compression": "lz4"}}));
            assert_eq!(err.key(), Some("batcher.compression"));
            assert_eq!(err.layer(), Some("command-line flags"));
            assert!(
                err.to_string()
                    .ends_with("expected one of: zstd, brotli, none"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn semantic_errors_name_layer() {
        jailed(|jail| {
            jail.create_file("lanes.toml", "[sequencer]\nblock_time = \"30s\"\n")
                .map_err(|e| e.to_string())?;
            jail.set_env("LANES_SEQUENCER__BLOCK_TIME", "10ms");
            let err = load_err(Some(Path::new("lanes.toml")), json!({}));
            assert_eq!(err.key(), Some("sequencer.block_time"));
            assert_eq!(
                err.layer(),
                Some("environment variable LANES_SEQUENCER__BLOCK_TIME")
            );
            assert!(err.to_string().contains("10ms"), "{err}");

            // 30s is in range but longer than the default empty block
            // interval; the message names the layers of both keys.
            jail.set_env("LANES_SEQUENCER__BLOCK_TIME", "30s");
            let err = load_err(Some(Path::new("lanes.toml")), json!({}));
            assert_eq!(err.key(), Some("sequencer.empty_block_interval"));
            assert_eq!(err.layer(), Some("built-in defaults"));
            assert!(
                err.to_string().contains(
                    "(sequencer.block_time from environment variable LANES_SEQUENCER__BLOCK_TIME)"
                ),
                "{err}"
            );

            jail.set_env("LANES_SEQUENCER__BLOCK_TIME", "1s");
            let err = load_err(None, json!({"metrics": {"port": 8545}}));
            assert_eq!(err.key(), Some("metrics.port"));
            assert_eq!(err.layer(), Some("command-line flags"));
            Ok(())
        });
    }

    #[test]
    fn all_errors_reported_at_once() {
        jailed(|_| {
            let err = load_err(
                None,
                json!({"rpc": {"max_logs": 0}, "chain": {"gas_limit": 1}}),
            );
            let ConfigError::Multiple(errors) = &err else {
                panic!("{err}")
            };
            let keys: BTreeSet<_> = errors.iter().filter_map(ConfigError::key).collect();
            assert_eq!(keys, BTreeSet::from(["rpc.max_logs", "chain.gas_limit"]));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_rejected() {
        jailed(|jail| {
            jail.create_file("typo.toml", "[rpc]\nprot = 1\n")
                .map_err(|e| e.to_string())?;
            let err = load_err(Some(Path::new("typo.toml")), json!({}));
            assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
            assert_eq!(err.key(), Some("rpc.prot"));
            assert_eq!(err.layer(), Some("config file typo.toml"));
            assert!(err.to_string().contains("port"), "{err}");

            let err = load_err(None, json!({"rcp": {"port": 1}}));
            assert_eq!(err.key(), Some("rcp"));

            jail.set_env("LANES_RPC__PORTT", 1);
            let err = load_err(None, json!({}));
            assert_eq!(err.key(), Some("rpc.portt"));
            assert_eq!(err.layer(), Some("environment variable LANES_RPC__PORTT"));
            Ok(())
        });
    }

    #[test]
    fn toml_syntax_error_names_file() {
        jailed(|jail| {
            jail.create_file("broken.toml", "[rpc\nport = 1\n")
                .map_err(|e| e.to_string())?;
            let err = load_err(Some(Path::new("broken.toml")), json!({}));
            assert!(matches!(err, ConfigError::Source { .. }), "{err}");
            assert_eq!(err.layer(), Some("config file broken.toml"));
            Ok(())
        });
    }

    #[test]
    fn durations_parse_as_humantime() {
        jailed(|jail| {
            jail.create_file(
                "d.toml",
                r#"
                [rpc]
                evm_timeout = "1500ms"
                [mempool]
                lifetime = "1h 30m"
                [l1]
                poll_interval = "2s"
                [batcher]
                max_batch_age = "1m"
                "#,
            )
            .map_err(|e| e.to_string())?;
            let c = load(Some(Path::new("d.toml")), json!({})).map_err(|e| e.to_string())?;
            assert_eq!(c.rpc.evm_timeout, Duration::from_millis(1500));
            assert_eq!(c.mempool.lifetime, Duration::from_secs(90 * 60));
            assert_eq!(c.l1.poll_interval, Duration::from_secs(2));
            assert_eq!(c.batcher.max_batch_age, Duration::from_secs(60));

            // A bare number is ambiguous (seconds? millis?) and rejected.
            let err = load_err(None, json!({"sequencer": {"block_time": 1}}));
            assert_eq!(err.key(), Some("sequencer.block_time"));
            Ok(())
        });
    }

    #[test]
    fn redaction_hides_secrets() {
        let secret = format!("0x{}", "5e".repeat(32));
        let mut c = LanesConfig::default();
        c.batcher.private_key = Some(secret.clone());
        c.l1.deploy_private_key = Some(secret.clone());
        c.batcher.private_key_file = Some("/keys/batcher".into());

        let r = c.redacted();
        assert_eq!(r.batcher.private_key.as_deref(), Some(REDACTED));
        assert_eq!(r.l1.deploy_private_key.as_deref(), Some(REDACTED));
        // A path to a secret is not a secret.
        assert_eq!(r.batcher.private_key_file, c.batcher.private_key_file);
        let text = r.to_toml_string().unwrap();
        assert!(!text.contains(&secret[4..]), "{text}");
        assert!(text.contains(REDACTED));
        assert!(!format!("{r:?}").contains(&secret[4..]));

        // Unset secrets stay unset rather than turning into "<redacted>".
        assert_eq!(LanesConfig::default().redacted(), LanesConfig::default());
    }

    #[test]
    fn toml_round_trip() {
        let mut c = LanesConfig::default();
        c.sequencer.empty_block_interval = None;
        c.l1.rollup_address = Some(address!("0x00000000000000000000000000000000000000cc"));
        c.mempool.min_priority_fee = 7;
        let text = c.to_toml_string().unwrap();
        let back: LanesConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn example_file_is_the_defaults() {
        let parsed: LanesConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed, LanesConfig::default());
    }

    /// Every key, including the optional ones that are unset by default,
    /// appears in the example: set ones as `key = `, unset ones commented
    /// out as `# key = `, in the right table.
    #[test]
    fn example_file_lists_every_key() {
        let set: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let defaults = toml::Table::try_from(LanesConfig::default()).unwrap();
        for path in leaf_paths(&defaults) {
            assert!(
                lookup(&set, &path).is_some(),
                "{} missing from lanes.example.toml",
                path.join(".")
            );
        }

        let all = toml::Table::try_from(every_option_set()).unwrap();
        let commented = commented_keys(EXAMPLE);
        for path in leaf_paths(&all) {
            let dotted = path.join(".");
            assert!(
                lookup(&set, &path).is_some() || commented.contains(&dotted),
                "{dotted} neither set nor commented out in lanes.example.toml"
            );
        }
    }

    fn every_option_set() -> LanesConfig {
        let mut c = LanesConfig::default();
        c.chain.genesis = Some("genesis.json".into());
        c.sequencer.base_fee_recipient = Some(DEFAULT_FEE_RECIPIENT);
        c.l1.rpc_url = Some(String::new());
        c.l1.anvil_path = Some("anvil".into());
        c.l1.rollup_address = Some(DEFAULT_FEE_RECIPIENT);
        c.l1.portal_address = Some(DEFAULT_FEE_RECIPIENT);
        c.l1.deploy_private_key = Some(String::new());
        c.batcher.private_key = Some(String::new());
        c.batcher.private_key_file = Some("key".into());
        c.batcher.jwt_secret_file = Some("jwt".into());
        c
    }

    fn leaf_paths(table: &toml::Table) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (key, value) in table {
            match value {
                toml::Value::Table(inner) => {
                    for mut path in leaf_paths(inner) {
                        path.insert(0, key.clone());
                        out.push(path);
                    }
                }
                _ => out.push(vec![key.clone()]),
            }
        }
        out
    }

    fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
        let (last, init) = path.split_last()?;
        let mut table = table;
        for key in init {
            table = table.get(key)?.as_table()?;
        }
        table.get(last)
    }

    /// `section.key` for every `# key = ...` line, tracking `[section]`
    /// headers.
    fn commented_keys(text: &str) -> BTreeSet<String> {
        let mut section = String::new();
        let mut out = BTreeSet::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some(rest) = line.strip_prefix('#')
                && let Some((key, _)) = rest.trim().split_once(" = ")
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                out.insert(format!("{section}.{key}"));
            }
        }
        out
    }
}
