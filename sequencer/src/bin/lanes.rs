//! The `lanes` command: run a node (`lanes node`), initialise a data directory
//! (`lanes init`), print the effective configuration (`lanes config`), check a database
//! (`lanes db verify`), load-test a node (`lanes bench`), deploy the L1 contracts
//! (`lanes l1 deploy`), prove and pay a withdrawal on L1 (`lanes l1 withdrawal`), rebuild L2
//! from L1 alone (`lanes derive`).

/// glibc malloc spends a large share of trie hashing and block building in its free lists;
/// mimalloc keeps small allocations thread-local.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use alloy_primitives::B256;
use clap::{Args, Parser, Subcommand};
use eyre::{WrapErr, eyre};
use lanes_config::{LanesConfig, LogFormat};
use lanes_executor::{Storage, StorageOptions};
use lanes_sequencer::node;
use serde_json::{Map, Value, json};
use std::{net::IpAddr, path::PathBuf};
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Parser, Debug)]
#[command(
    name = "lanes",
    version,
    about = "lanes: a parallel-execution Ethereum L2 sequencer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the node.
    Node(NodeArgs),
    /// Initialise a data directory from a genesis file and exit.
    Init {
        /// geth-style genesis JSON.
        #[arg(long)]
        genesis: PathBuf,
        /// Data directory to initialise.
        #[arg(long)]
        datadir: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print the effective configuration (secrets redacted) as TOML.
    Config(NodeArgs),
    /// Inspect the database of a data directory (the node must be stopped).
    #[command(subcommand)]
    Db(DbCommand),
    /// Load-test a node end to end: sustained throughput and inclusion latency.
    Bench(lanes_sequencer::bench::BenchArgs),
    /// The L1 contracts.
    #[command(subcommand)]
    L1(L1Command),
    /// Rebuild the L2 chain from the batches on L1 into a fresh data directory, checking every
    /// posted state root, and print the head block.
    Derive(DeriveArgs),
}

#[derive(Subcommand, Debug)]
enum L1Command {
    /// Deploy LanesRollup (which deploys LanesPortal) and print (or write) their addresses.
    Deploy(DeployArgs),
    /// Show where the withdrawals of an L2 transaction stand on L1 and, with `--finalize`,
    /// prove them against a final state root and pay them out on L1.
    Withdrawal(WithdrawalArgs),
}

#[derive(Args, Debug)]
struct WithdrawalArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The L2 transaction that called `L2WithdrawalQueue.withdraw`.
    #[arg(long)]
    tx: alloy_primitives::TxHash,
    /// L2 JSON-RPC URL (default: this node's, from `rpc.addr`/`rpc.port`).
    #[arg(long = "l2-rpc")]
    l2_rpc: Option<String>,
    /// L1 JSON-RPC URL (default: `l1.rpc_url`).
    #[arg(long = "l1-rpc")]
    l1_rpc: Option<String>,
    /// The LanesRollup contract (default: `l1.rollup_address`).
    #[arg(long)]
    rollup: Option<alloy_primitives::Address>,
    /// The LanesPortal contract (default: `l1.portal_address`).
    #[arg(long)]
    portal: Option<alloy_primitives::Address>,
    /// Prove and pay every withdrawal of the transaction that is not paid yet.
    #[arg(long)]
    finalize: bool,
    /// With `--finalize`: wait up to this many seconds for the withdrawals to become final
    /// instead of failing when they are not.
    #[arg(long, default_value_t = 0)]
    wait_secs: u64,
    /// File with the private key of the L1 account paying the gas of `--finalize` (default:
    /// the LANES_L1_KEY environment variable). Anyone may pay; the ETH goes to the recipient.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DeployArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// L1 JSON-RPC URL (default: `l1.rpc_url`).
    #[arg(long = "l1-rpc")]
    l1_rpc: Option<String>,
    /// File with the deployer's private key (default: `l1.deploy_private_key`, e.g. from
    /// LANES_L1__DEPLOY_PRIVATE_KEY).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The batcher (sequencer) L1 account allowed to submit batches (default: the address of
    /// the batcher key in the configuration, else the deployer).
    #[arg(long)]
    sequencer: Option<alloy_primitives::Address>,
    /// Owner of the rollup (default: the deployer).
    #[arg(long)]
    owner: Option<alloy_primitives::Address>,
    /// Seconds after submission at which a batch's state root is final.
    #[arg(long, default_value_t = 604_800)]
    finalization_period_secs: u64,
    /// Seconds within which a queued L1 -> L2 message must be in a batch: the longest the
    /// sequencer may hold back a deposit or forced transaction.
    #[arg(long, default_value_t = 86_400)]
    force_inclusion_delay_secs: u64,
    /// Write `[l1] rollup_address` / `portal_address` into this TOML config file (created if
    /// missing, other lines and comments kept).
    #[arg(long)]
    write_config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DeriveArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// L1 JSON-RPC URL.
    #[arg(long = "l1-rpc")]
    l1_rpc: String,
    /// The LanesRollup contract.
    #[arg(long)]
    rollup: alloy_primitives::Address,
    /// Fresh data directory to rebuild into.
    #[arg(long)]
    datadir: PathBuf,
    /// geth-style genesis JSON (default: `chain.genesis`, else the dev genesis).
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// L1 block to read batches from (default: the rollup's deployment block, found by
    /// searching `eth_getCode`; 0 when the L1 node cannot answer that).
    #[arg(long)]
    from_block: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Recompute the head's state root from the flat state, from scratch, and compare it
    /// with the head header and the stored state trie; exits non-zero on any mismatch.
    Verify {
        #[command(flatten)]
        common: CommonArgs,
        /// Data directory (`storage.datadir`).
        #[arg(long)]
        datadir: Option<PathBuf>,
    },
}

/// Flags shared by every subcommand that reads the configuration.
#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log.format", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Args, Debug, Clone)]
struct NodeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Data directory (`storage.datadir`).
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// JSON-RPC listen address (`rpc.addr`).
    #[arg(long = "rpc.addr")]
    rpc_addr: Option<IpAddr>,
    /// JSON-RPC port (`rpc.port`, default 8545).
    #[arg(long = "rpc.port")]
    rpc_port: Option<u16>,
    /// Metrics and health port (`metrics.port`, default 9545).
    #[arg(long = "metrics.port")]
    metrics_port: Option<u16>,
    /// Development mode: dev genesis and keys, short block time, everything on loopback, a
    /// local anvil as L1 (unless `l1.rpc_url` is set), the admin endpoint on a free port.
    #[arg(long)]
    dev: bool,
}

/// Settings `--dev` applies when neither the file, the environment nor a flag set them.
fn dev_preset() -> Value {
    json!({
        "sequencer": { "block_time": "250ms" },
        "rpc": { "addr": "127.0.0.1", "tracing": true },
        "metrics": { "addr": "127.0.0.1" },
        "l1": { "dev_anvil": true },
        // A free port (logged at start): several dev nodes, or a dev node beside another
        // client's 8551, must not clash. Calldata: the dev L1 is a local anvil, and blob
        // commitments would cost every dev node seconds of CPU loading the KZG setup.
        "batcher": { "admin_port": 0, "data_availability": "calldata" },
    })
}

fn cli_overrides(args: &NodeArgs) -> Value {
    let mut map = Map::new();
    let mut set = |section: &str, key: &str, value: Value| {
        map.entry(section.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("sections are objects")
            .insert(key.to_string(), value);
    };
    if let Some(dir) = &args.datadir {
        set("storage", "datadir", json!(dir));
    }
    if let Some(addr) = args.rpc_addr {
        set("rpc", "addr", json!(addr));
    }
    if let Some(port) = args.rpc_port {
        set("rpc", "port", json!(port));
    }
    if let Some(port) = args.metrics_port {
        set("metrics", "port", json!(port));
    }
    if let Some(format) = &args.common.log_format {
        set("log", "format", json!(format));
    }
    Value::Object(map)
}

fn load_config(args: &NodeArgs) -> eyre::Result<LanesConfig> {
    let preset = args.dev.then(|| ("--dev preset", dev_preset()));
    lanes_config::load_with_preset(args.common.config.as_deref(), preset, cli_overrides(args))
        .map_err(|e| eyre!("{e}"))
}

fn init_tracing(config: &LanesConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!(target: "lanes::node", "SIGTERM received; shutting down"),
        _ = int.recv() => info!(target: "lanes::node", "SIGINT received; shutting down"),
    }
    token.cancel();
}

/// `lanes db verify`.
fn db_verify(config: &LanesConfig) -> eyre::Result<()> {
    let path = node::db_path(config);
    if !path.join("CURRENT").exists() {
        return Err(eyre!("no database at {}", path.display()));
    }
    let storage = Storage::open(
        &path,
        &StorageOptions {
            cache_bytes: config.storage.cache_bytes as usize,
            sync: lanes_executor::CommitSync::Never,
        },
    )
    .wrap_err_with(|| format!("opening {}", path.display()))?;
    let check = storage.verify_state_root()?;
    let verdict = |root: B256| {
        if root == check.header_root {
            "ok"
        } else {
            "MISMATCH"
        }
    };
    let (number, hash) = check.head;
    println!("head block          {number} ({hash})");
    println!("header state root   {}", check.header_root);
    println!(
        "flat state root     {} {}",
        check.flat_root,
        verdict(check.flat_root)
    );
    println!(
        "hashed state root   {} {} ({} accounts)",
        check.hashed.root,
        verdict(check.hashed.root),
        check.hashed.accounts
    );
    println!(
        "stored trie root    {} {}",
        check.trie_root,
        verdict(check.trie_root)
    );
    let hashed = &check.hashed;
    println!(
        "trie tables         {} storage roots, {} branch nodes, {} orphaned storage tries differ from a rebuild",
        hashed.storage_root_mismatches.len(),
        hashed.node_mismatches.len(),
        hashed.orphaned_storage.len()
    );
    if check.is_ok() {
        println!("state root verified");
        Ok(())
    } else {
        Err(eyre!("state root verification failed"))
    }
}

fn runtime() -> eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lanes")
        .build()
        .wrap_err("starting the async runtime")
}

fn plain_args(common: CommonArgs, datadir: Option<PathBuf>) -> NodeArgs {
    NodeArgs {
        common,
        datadir,
        rpc_addr: None,
        rpc_port: None,
        metrics_port: None,
        dev: false,
    }
}

/// The L1 node a command talks to: `--l1-rpc`, else `l1.rpc_url`.
fn l1_rpc_url(flag: Option<&str>, config: &LanesConfig) -> eyre::Result<String> {
    flag.map(str::to_owned)
        .or_else(|| config.l1.rpc_url.clone())
        .ok_or_else(|| eyre!("--l1-rpc (or l1.rpc_url) is required"))
}

/// `lanes l1 deploy`.
fn l1_deploy(args: DeployArgs) -> eyre::Result<()> {
    let config = load_config(&plain_args(args.common.clone(), None))?;
    init_tracing(&config);
    let rpc_url = l1_rpc_url(args.l1_rpc.as_deref(), &config)?;
    let key = match &args.key_file {
        Some(path) => {
            std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?
        }
        None => config.l1.deploy_private_key.clone().ok_or_else(|| {
            eyre!("--key-file or l1.deploy_private_key (LANES_L1__DEPLOY_PRIVATE_KEY) is required")
        })?,
    };
    let deployer = lanes_l1_bridge::parse_private_key(key.trim())?;
    let sequencer = match args.sequencer {
        Some(address) => address,
        None => {
            lanes_batcher::batcher_key(&config.batcher)?.map_or(deployer.address(), |k| k.address())
        }
    };
    let genesis = node::genesis_from_config(&config)?;
    let params = lanes_l1_bridge::DeployParams {
        owner: args.owner.unwrap_or(deployer.address()),
        sequencer,
        genesis_state_root: genesis.header.state_root,
        finalization_period: std::time::Duration::from_secs(args.finalization_period_secs),
        force_inclusion_delay: std::time::Duration::from_secs(args.force_inclusion_delay_secs),
    };
    let deployed = runtime()?.block_on(lanes_l1_bridge::deploy(&rpc_url, deployer, &params))?;
    if let Some(path) = &args.write_config {
        lanes_l1_bridge::write_addresses(path, &deployed)?;
        eprintln!("wrote the addresses into {}", path.display());
    }
    print!("{}", deployed.to_toml());
    Ok(())
}

/// `lanes l1 withdrawal`: prints one JSON object per withdrawal of the transaction.
fn l1_withdrawal(args: WithdrawalArgs) -> eyre::Result<()> {
    use lanes_l1_bridge::{AlloyL1Client, L1Contracts, WithdrawalProver, WithdrawalStatus};
    let config = load_config(&plain_args(args.common.clone(), None))?;
    init_tracing(&config);
    let l2_rpc = args
        .l2_rpc
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", config.rpc.addr, config.rpc.port));
    let l1_rpc = l1_rpc_url(args.l1_rpc.as_deref(), &config)?;
    let contracts = L1Contracts {
        rollup: args
            .rollup
            .or(config.l1.rollup_address)
            .ok_or_else(|| eyre!("--rollup (or l1.rollup_address) is required"))?,
        portal: args
            .portal
            .or(config.l1.portal_address)
            .ok_or_else(|| eyre!("--portal (or l1.portal_address) is required"))?,
    };
    let l1 = if args.finalize {
        let key = match &args.key_file {
            Some(path) => std::fs::read_to_string(path)
                .wrap_err_with(|| format!("reading {}", path.display()))?,
            None => std::env::var("LANES_L1_KEY")
                .map_err(|_| eyre!("--finalize needs --key-file or LANES_L1_KEY"))?,
        };
        let signer = lanes_l1_bridge::parse_private_key(key.trim())?;
        AlloyL1Client::connect_with_signer(&l1_rpc, contracts, signer)?
    } else {
        AlloyL1Client::connect(&l1_rpc, contracts)?
    };
    let prover = WithdrawalProver::new(&l2_rpc, l1)?;
    runtime()?.block_on(async move {
        let withdrawals = prover.withdrawals_in(args.tx).await?;
        if withdrawals.is_empty() {
            return Err(eyre!("transaction {} made no withdrawal", args.tx));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait_secs);
        for w in &withdrawals {
            let mut out = json!({
                "nonce": w.nonce,
                "sender": w.sender,
                "recipient": w.recipient,
                "amount": w.amount,
                "l2Block": w.l2_block,
            });
            let status = loop {
                let status = prover.status(w).await?;
                let waiting = matches!(
                    status,
                    WithdrawalStatus::NotPosted { .. } | WithdrawalStatus::NotFinal { .. }
                );
                if !(args.finalize && waiting && std::time::Instant::now() < deadline) {
                    break status;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            };
            match status {
                WithdrawalStatus::Finalized => out["status"] = json!("finalized"),
                WithdrawalStatus::NotPosted { last_posted_block } => {
                    out["status"] = json!("not posted");
                    out["lastPostedL2Block"] = json!(last_posted_block);
                }
                WithdrawalStatus::NotFinal {
                    batch_index,
                    final_at,
                } => {
                    out["status"] = json!("not final");
                    out["batchIndex"] = json!(batch_index);
                    out["finalAt"] = json!(final_at);
                }
                WithdrawalStatus::Ready {
                    batch_index,
                    last_block,
                    state_root,
                } => {
                    out["status"] = json!("ready");
                    out["batchIndex"] = json!(batch_index);
                    if args.finalize {
                        let proof = prover.prove(w, batch_index, last_block, state_root).await?;
                        let receipt = prover.finalize(w, &proof).await?;
                        out["status"] = json!("finalized");
                        out["l1Tx"] = json!(receipt.tx_hash);
                    }
                }
            }
            println!("{out}");
            if args.finalize && out["status"] != "finalized" {
                return Err(eyre!(
                    "withdrawal {} is {}; try again later (or pass --wait-secs)",
                    w.nonce,
                    out["status"].as_str().unwrap_or_default()
                ));
            }
        }
        Ok(())
    })
}

/// `lanes derive`.
fn derive(args: DeriveArgs) -> eyre::Result<()> {
    if node::db_path_in(&args.datadir).join("CURRENT").exists() {
        return Err(eyre!(
            "{} already holds a database; derive into a fresh data directory",
            args.datadir.display()
        ));
    }
    let mut overrides = cli_overrides(&plain_args(args.common.clone(), Some(args.datadir.clone())));
    if let Some(genesis) = &args.genesis {
        overrides["chain"] = json!({ "genesis": genesis });
    }
    let config =
        lanes_config::load(args.common.config.as_deref(), overrides).map_err(|e| eyre!("{e}"))?;
    init_tracing(&config);
    let genesis = node::genesis_from_config(&config)?;
    let storage = node::open_storage(&config, &genesis)?;
    let spec = node::chain_spec(&config, &genesis);
    let chain_id = spec.chain_id;
    let summary = runtime()?.block_on(async {
        let client = lanes_l1_bridge::AlloyL1Client::connect(
            &args.l1_rpc,
            lanes_l1_bridge::L1Contracts {
                rollup: args.rollup,
                portal: alloy_primitives::Address::ZERO,
            },
        )?;
        let from_block = match args.from_block {
            Some(block) => block,
            None => client.deployment_block(args.rollup).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot find the rollup's deployment block; reading L1 from block 0");
                0
            }),
        };
        let deriver = lanes_batcher::Deriver::connect(&args.l1_rpc, args.rollup, from_block)?;
        let mut replay = lanes_batcher::StorageReplay::new(storage.clone(), spec);
        eyre::Ok(lanes_batcher::derive(&deriver, &mut replay, Some(chain_id), None).await?)
    })?;
    let head = storage
        .block(summary.head)?
        .ok_or_else(|| eyre!("derived head {} missing", summary.head))?;
    println!("batches      {}", summary.batches);
    println!("blocks       {}", summary.blocks);
    println!("transactions {}", summary.transactions);
    println!("head         {}", summary.head);
    println!("hash         {}", head.hash);
    println!("state root   {}", head.header.state_root);
    Ok(())
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => {
            let config = load_config(&args)?;
            print!(
                "{}",
                config
                    .redacted()
                    .to_toml_string()
                    .map_err(|e| eyre!("{e}"))?
            );
            Ok(())
        }
        Command::Init {
            genesis,
            datadir,
            common,
        } => {
            let args = NodeArgs {
                common,
                datadir: Some(datadir),
                rpc_addr: None,
                rpc_port: None,
                metrics_port: None,
                dev: false,
            };
            let mut overrides = cli_overrides(&args);
            overrides["chain"] = json!({ "genesis": genesis });
            let config = lanes_config::load(args.common.config.as_deref(), overrides)
                .map_err(|e| eyre!("{e}"))?;
            init_tracing(&config);
            let spec = node::genesis_from_config(&config)?;
            let storage = node::open_storage(&config, &spec)?;
            let (number, hash) = storage.head()?.ok_or_else(|| eyre!("no head after init"))?;
            println!(
                "initialised {} at block {number} ({hash})",
                config.storage.datadir.display()
            );
            Ok(())
        }
        Command::Db(DbCommand::Verify { common, datadir }) => {
            let config = load_config(&plain_args(common, datadir))?;
            init_tracing(&config);
            db_verify(&config)
        }
        Command::Bench(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("lanes-bench")
                .build()
                .wrap_err("starting the async runtime")?;
            runtime.block_on(async move {
                lanes_sequencer::bench::run(args)
                    .await
                    .map(|_| ())
                    .map_err(|e| eyre!("{e}"))
            })
        }
        Command::L1(L1Command::Deploy(args)) => l1_deploy(args),
        Command::L1(L1Command::Withdrawal(args)) => l1_withdrawal(args),
        Command::Derive(args) => derive(args),
        Command::Node(args) => {
            let config = load_config(&args)?;
            init_tracing(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("lanes")
                .build()
                .wrap_err("starting the async runtime")?;
            runtime.block_on(async move {
                let token = CancellationToken::new();
                tokio::spawn(shutdown_signal(token.clone()));
                node::run(config, token, None)
                    .await
                    .map_err(|e| eyre!("{e}"))
            })
        }
    }
}
