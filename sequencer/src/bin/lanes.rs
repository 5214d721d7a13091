//! The `lanes` command: run a node (`lanes node`), initialise a data directory
//! (`lanes init`), print the effective configuration (`lanes config`), check a database
//! (`lanes db verify`).

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
    /// Development mode: dev genesis and keys, short block time, everything on loopback.
    #[arg(long)]
    dev: bool,
}

/// Settings `--dev` applies when neither the file, the environment nor a flag set them.
fn dev_preset() -> Value {
    json!({
        "sequencer": { "block_time": "250ms" },
        "rpc": { "addr": "127.0.0.1" },
        "metrics": { "addr": "127.0.0.1" },
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
            sync_commits: false,
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
            let args = NodeArgs {
                common,
                datadir,
                rpc_addr: None,
                rpc_port: None,
                metrics_port: None,
                dev: false,
            };
            let config = load_config(&args)?;
            init_tracing(&config);
            db_verify(&config)
        }
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
