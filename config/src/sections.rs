//! The configuration sections, one struct per `[table]` of the TOML file.
//!
//! Every section is `#[serde(default, deny_unknown_fields)]`: a key that is
//! left out takes its built-in default, and a misspelt key is an error rather
//! than a silently ignored setting.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{Address, address};
use serde::{Deserialize, Serialize};

const MIB: u32 = 1024 * 1024;

/// Chain identity and the parameters of the built-in development genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Path to a genesis JSON file. Default: unset, which means the built-in
    /// development genesis built from `chain_id` and `gas_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genesis: Option<PathBuf>,
    /// Chain id of the built-in development genesis. Default: `42069`.
    pub chain_id: u64,
    /// Block gas limit of the built-in development genesis. Default:
    /// `500_000_000`: sized so that blocks are cut by the block time (the
    /// sequencer stops filling a block at 60% of it), not by gas, on the
    /// hardware lanes targets; Ethereum's 30M would cap a 250 ms dev chain
    /// at about 1,300 ERC-20 transfers a second. A production chain sets its
    /// own in its genesis file, from its data-availability budget.
    pub gas_limit: u64,
    /// Lowest base fee in wei; the EIP-1559 base fee never drops below it.
    /// Default: `1_000_000` (0.001 gwei): mainnet-like floors of several gwei
    /// would make an L2 as expensive as the L1 it is meant to relieve.
    pub base_fee_floor: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            genesis: None,
            chain_id: 42069,
            gas_limit: 500_000_000,
            base_fee_floor: 1_000_000,
        }
    }
}

/// The JSON-RPC server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Address the JSON-RPC server listens on. Default: `127.0.0.1`.
    pub addr: IpAddr,
    /// Port the JSON-RPC server listens on; `0` picks a free port. Default:
    /// `8545`.
    pub port: u16,
    /// Largest accepted request body in bytes. Default: 5 MiB (`5242880`).
    pub max_request_body_bytes: u32,
    /// Largest response body in bytes. Default: 160 MiB (`167772160`).
    pub max_response_body_bytes: u32,
    /// Most calls in one JSON-RPC batch. Default: `1000`.
    pub max_batch_size: u32,
    /// Most concurrent connections. Default: `1000`.
    pub max_connections: u32,
    /// Gas cap for `eth_call` and `eth_estimateGas`. Default: `50_000_000`.
    pub gas_cap: u64,
    /// Wall-clock limit for one `eth_call`/`eth_estimateGas` execution or one `debug_trace*`
    /// request (geth's default trace timeout is also 5s).
    /// Default: `5s`.
    #[serde(with = "humantime_serde")]
    pub evm_timeout: Duration,
    /// Widest block range one `eth_getLogs` query may span. Default: `10000`.
    pub max_logs_block_range: u64,
    /// Most logs one `eth_getLogs` query may return. Default: `20000`.
    pub max_logs: usize,
    /// Most blocks one `eth_feeHistory` query may cover. Default: `1024`.
    pub fee_history_max_blocks: u64,
    /// A polled filter (`eth_newFilter`, `eth_newBlockFilter`,
    /// `eth_newPendingTransactionFilter`) not polled for this long is removed, as
    /// in geth. Default: `5m`.
    #[serde(with = "humantime_serde")]
    pub filter_timeout: Duration,
    /// Most polled filters installed at once; more are refused until some are
    /// uninstalled or expire. Default: `10000`.
    pub max_filters: usize,
    /// How long `eth_sendRawTransactionSync` (EIP-7966) waits for the receipt:
    /// the default, and the most a client may ask for. Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub send_raw_sync_timeout: Duration,
    /// Serve the `debug_trace*` methods (geth's tracers). Each replays a block or a call
    /// and may hold a CPU for up to `evm_timeout`, which a public endpoint on a sequencer
    /// should not offer anyone, so they are off unless asked for; `--dev` turns them on.
    /// Default: `false`.
    pub tracing: bool,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8545,
            max_request_body_bytes: 5 * MIB,
            max_response_body_bytes: 160 * MIB,
            max_batch_size: 1000,
            max_connections: 1000,
            gas_cap: 50_000_000,
            evm_timeout: Duration::from_secs(5),
            max_logs_block_range: 10_000,
            max_logs: 20_000,
            fee_history_max_blocks: 1024,
            filter_timeout: Duration::from_secs(300),
            max_filters: 10_000,
            send_raw_sync_timeout: Duration::from_secs(2),
            tracing: false,
        }
    }
}

/// Block production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequencerConfig {
    /// Target interval between blocks, between `50ms` and `60s`. Default:
    /// `1s`.
    #[serde(with = "humantime_serde")]
    pub block_time: Duration,
    /// When no transactions arrive, an empty block is still produced after
    /// this long so the chain's clock keeps moving; must be at least
    /// `block_time`. `"never"` disables empty blocks. Default: `12s`.
    #[serde(with = "optional_duration")]
    pub empty_block_interval: Option<Duration>,
    /// Receives the priority fees. Default:
    /// `0x4200000000000000000000000000000000000011`, the OP-stack sequencer
    /// fee vault address.
    pub fee_recipient: Address,
    /// Receives the base fee. Default: unset, which burns the base fee as
    /// EIP-1559 does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_fee_recipient: Option<Address>,
    /// Most transactions in one block. Default: `50000`.
    pub max_block_txs: usize,
}

/// The OP-stack `SequencerFeeVault` predeploy; tooling that knows OP chains
/// already looks for fees there.
pub const DEFAULT_FEE_RECIPIENT: Address = address!("0x4200000000000000000000000000000000000011");

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            block_time: Duration::from_secs(1),
            empty_block_interval: Some(Duration::from_secs(12)),
            fee_recipient: DEFAULT_FEE_RECIPIENT,
            base_fee_recipient: None,
            max_block_txs: 50_000,
        }
    }
}

/// The transaction pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most executable (pending) transactions held. Default: `20000`.
    pub max_pending: usize,
    /// Most transactions waiting on a nonce gap (queued). Default: `5000`.
    pub max_queued: usize,
    /// Most transactions per sender, pending and queued together. Default:
    /// `1024`.
    pub account_slots: usize,
    /// A nonce more than this far above the sender's next nonce is rejected
    /// as "nonce too high". Default: `64`.
    pub max_nonce_gap: u64,
    /// A replacement transaction must raise both fee caps by at least this
    /// many percent. Default: `10`.
    pub price_bump_percent: u64,
    /// Transactions older than this are evicted. Default: `3h`.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// Largest accepted encoded transaction in bytes. Default: `131072`.
    pub max_tx_bytes: usize,
    /// Largest accepted gas limit of one transaction. Default: `16777216`
    /// (2^24, EIP-7825's cap): with blocks of hundreds of millions of gas,
    /// one transaction must not be able to take a block's worth of
    /// execution time.
    pub max_tx_gas: u64,
    /// Lowest accepted priority fee (tip) in wei. Default: `0`.
    #[serde(with = "wide_uint")]
    pub min_priority_fee: u128,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_pending: 20_000,
            max_queued: 5_000,
            account_slots: 1_024,
            max_nonce_gap: 64,
            price_bump_percent: 10,
            lifetime: Duration::from_secs(3 * 60 * 60),
            max_tx_bytes: 131_072,
            max_tx_gas: 16_777_216,
            min_priority_fee: 0,
        }
    }
}

/// How blocks are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorMode {
    /// One transaction after another.
    #[default]
    Sequential,
    /// Transactions run speculatively in parallel and are re-executed on
    /// conflict.
    Parallel,
}

/// The block executor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// `"sequential"` or `"parallel"`. Default: `"sequential"`.
    pub mode: ExecutorMode,
    /// Worker threads for parallel execution; `0` uses every available core.
    /// Default: `0`.
    pub threads: usize,
}

/// The on-disk database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory holding the chain database. Default: `"./lanes-data"`.
    pub datadir: PathBuf,
    /// Database block cache in bytes. Default: 256 MiB (`268435456`).
    pub cache_bytes: u64,
    /// How many recent blocks keep their state, for proofs (`eth_getProof`)
    /// and state reads and calls at those blocks. Default: `128`.
    pub state_root_history: u64,
    /// fsync each block before it is published, so that not even a power
    /// loss can lose a block whose receipts were served; every block then
    /// waits for the disk's fsync. Default: `false`: a block's write reaches
    /// the operating system before it is published (a crash of the process
    /// loses nothing) and is fsynced right after, off the publishing path,
    /// so a power loss can lose the blocks of the fsync in progress, which
    /// are not on L1 yet either.
    pub sync_before_publish: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            datadir: PathBuf::from("./lanes-data"),
            cache_bytes: 256 * u64::from(MIB),
            state_root_history: 128,
            sync_before_publish: false,
        }
    }
}

/// The connection to the L1 chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// JSON-RPC URL of the L1 node. Default: unset, which starts a local
    /// anvil as L1 when `dev_anvil` is on, and runs L2 only otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_url: Option<String>,
    /// L1 blocks on top of a block before its events are acted on. Default:
    /// `2`.
    pub confirmations: u64,
    /// How often the L1 is polled for new blocks. Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// The `anvil` binary to start when `rpc_url` is unset. Default: unset,
    /// which looks `anvil` up on `PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anvil_path: Option<PathBuf>,
    /// Address of the deployed rollup contract. Default: unset, which
    /// deploys it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup_address: Option<Address>,
    /// Address of the deployed deposit portal contract. Default: unset,
    /// which deploys it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_address: Option<Address>,
    /// Secret: private key (`0x` and 64 hex digits) paying for contract
    /// deployment. Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_private_key: Option<String>,
    /// With `rpc_url` unset, start a local anvil (dev keys, contracts deployed
    /// on start) as L1; `--dev` turns it on. Default: `false`.
    pub dev_anvil: bool,
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            rpc_url: None,
            confirmations: 2,
            poll_interval: Duration::from_secs(2),
            anvil_path: None,
            rollup_address: None,
            portal_address: None,
            deploy_private_key: None,
            dev_anvil: false,
        }
    }
}

/// Compression applied to batches before they are posted to L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard, levels 1 to 22.
    #[default]
    Zstd,
    /// Brotli, levels 0 to 11.
    Brotli,
    /// No compression.
    None,
}

/// Where batch data is posted on L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataAvailability {
    /// In the calldata of the batch transaction.
    Calldata,
    /// In EIP-4844 blobs of the batch transaction.
    Blobs,
    /// Whichever is cheaper at current L1 prices, batch by batch.
    #[default]
    Auto,
}

/// The batcher that posts L2 blocks to L1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatcherConfig {
    /// Whether batches are posted at all. Default: `true`.
    pub enabled: bool,
    /// A batch is closed once its compressed size would pass this many
    /// bytes; sized to fit one L1 transaction. Default: `120000`.
    pub max_batch_bytes: usize,
    /// A batch is closed once its oldest block is this old. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub max_batch_age: Duration,
    /// `"zstd"`, `"brotli"` or `"none"`. Default: `"zstd"` (measured by
    /// `batch-bench`: within 2% of brotli 11's ratio, hundreds of times faster).
    pub compression: Compression,
    /// Compression level: zstd 1 to 22, brotli 0 to 11. Default: `12`.
    pub compression_level: i32,
    /// Secret: private key (`0x` and 64 hex digits) signing batch
    /// transactions. Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// File holding the batcher private key, as an alternative to
    /// `private_key`. Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    /// Port of the batcher admin endpoint. Default: `8551`.
    pub admin_port: u16,
    /// File holding the JWT secret that authenticates admin requests.
    /// Default: unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,
    /// `"calldata"`, `"blobs"` or `"auto"` (the cheaper one at current L1
    /// prices). Default: `"auto"`.
    pub data_availability: DataAvailability,
    /// L1 blocks on top of a batch transaction (counting its own) before its
    /// blocks count as `safe`. Default: `2`.
    pub confirmations: u64,
    /// How often the batcher looks for new L2 blocks and L1 progress.
    /// Default: `1s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A batch transaction not mined after this long is replaced with higher
    /// fees. Default: `48s`.
    #[serde(with = "humantime_serde")]
    pub resubmit_after: Duration,
    /// Fee increase per replacement, percent (at least 10). Default: `20`.
    pub fee_bump_percent: u64,
    /// Fees of batch transactions are never raised above this, in wei per
    /// gas. Default: `500000000000` (500 gwei).
    #[serde(with = "wide_uint")]
    pub max_fee_per_gas: u128,
    /// Once this many uncompressed bytes of sealed blocks wait to be posted,
    /// the sequencer applies backpressure. Default: `33554432` (32 MiB).
    pub max_backlog_bytes: u64,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_batch_bytes: 120_000,
            max_batch_age: Duration::from_secs(30),
            compression: Compression::Zstd,
            compression_level: 12,
            private_key: None,
            private_key_file: None,
            admin_port: 8551,
            jwt_secret_file: None,
            data_availability: DataAvailability::Auto,
            confirmations: 2,
            poll_interval: Duration::from_secs(1),
            resubmit_after: Duration::from_secs(48),
            fee_bump_percent: 20,
            max_fee_per_gas: 500_000_000_000,
            max_backlog_bytes: 32 << 20,
        }
    }
}

/// The Prometheus metrics and health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the endpoint is served. Default: `true`.
    pub enabled: bool,
    /// Address the endpoint listens on. Default: `127.0.0.1`.
    pub addr: IpAddr,
    /// Port the endpoint listens on; `0` picks a free port. Default: `9545`.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9545,
        }
    }
}

/// Output format of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` or `"json"`. Default: `"text"`.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `"info,lanes_executor=debug"`.
    /// Default: `"info"`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// An optional humantime duration where `"never"` stands for `None`.
///
/// TOML has no null, and leaving the key out means "use the default", so
/// turning the feature off needs a word of its own.
mod optional_duration {
    use std::time::Duration;

    use humantime_serde::re::humantime;
    use serde::{Deserialize, Deserializer, Serializer};

    const NEVER: &str = "never";

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_str(NEVER),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        let text = text.trim();
        if text.eq_ignore_ascii_case(NEVER) || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        humantime::parse_duration(text).map(Some).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "{e}; expected a duration such as \"12s\" or \"never\""
            ))
        })
    }
}

/// A `u128` that survives figment and TOML, neither of which has 128-bit
/// integers: written as an integer when it fits in `u64`, as a decimal
/// string otherwise; read from either.
mod wide_uint {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        match u64::try_from(*value) {
            Ok(small) => s.serialize_u64(small),
            Err(_) => s.serialize_str(&value.to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        d.deserialize_any(WideUint)
    }

    struct WideUint;

    impl Visitor<'_> for WideUint {
        type Value = u128;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u128, E> {
            Ok(v.into())
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<u128, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u128, E> {
            u128::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u128, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}
