//! `lanes bench`: an end-to-end load generator, measuring what an operator would.
//!
//! A run: derive fresh sender accounts; plan and sign everything up front (signing is not
//! what is measured); have the funding key deploy the workload's contracts ([`workload`]) and
//! fund the senders, waiting for each wave's receipts; then the timed phase. Several HTTP
//! connections send batches of `eth_sendRawTransaction` at a fixed open-loop rate, or as
//! fast as the node takes them with at most `--max-inflight` accepted but not yet included
//! ([`send`]). Blocks are followed over WebSocket `newHeads` ([`follow`]); a transaction's
//! latency is from the moment its batch was sent to the arrival of the head of the block
//! holding it (the node announces heads after commit, so its receipt is readable then).
//! After the send phase the run waits for every accepted transaction to be included, then
//! writes the report ([`stats::Report`]), the chart ([`chart`]) and the node's per-stage
//! profile from its Prometheus metrics ([`profile`]).
//!
//! `--spawn-dev` runs all of this against a fresh `lanes node --dev` started from this
//! executable ([`spawn`]).

pub mod chart;
pub mod follow;
pub mod profile;
pub mod rpc;
pub mod send;
pub mod spawn;
pub mod stats;
pub mod workload;

use alloy_primitives::{Address, B256, keccak256, map::B256Map};
use parking_lot::Mutex;
use rpc::{RpcClient, quantity, quantity_u128};
use serde_json::{Value, json};
use stats::{BlockPoint, Latencies, Report, SeriesPoint};
use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;
use workload::{Account, Fees, SignedTx, Workload};

/// Dev account 0 of the `--dev` genesis (the anvil/Hardhat mnemonic's first key).
pub const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The arguments don't make a run (fix the command line).
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The node could not be reached or answered garbage (check the URL and the node).
    #[error("connection: {0}")]
    Connect(String),
    /// A call the run depends on failed.
    #[error("{method} failed ({code}): {message}")]
    Rpc {
        /// Method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// Node's message.
        message: String,
    },
    /// Deploying or funding failed (look at the node's state or the funding key).
    #[error("set-up: {0}")]
    Setup(String),
    /// The dev node could not be started.
    #[error("dev node: {0}")]
    Spawn(String),
    /// Writing the report or the chart failed.
    #[error("output: {0}")]
    Output(String),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `lanes bench` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// JSON-RPC URL of the node under test (HTTP; WebSocket on the same port for `newHeads`).
    #[arg(long, conflicts_with = "spawn_dev")]
    pub rpc: Option<String>,
    /// WebSocket URL for `newHeads` (default: `--rpc` with a `ws://` scheme).
    #[arg(long)]
    pub ws: Option<String>,
    /// Prometheus metrics URL of the node, for the per-stage profile (set by `--spawn-dev`).
    #[arg(long)]
    pub metrics: Option<String>,
    /// Start a fresh `lanes node --dev` (temporary data directory, free ports) and stop it
    /// afterwards.
    #[arg(long)]
    pub spawn_dev: bool,
    /// Extra argument for the spawned node (repeatable), e.g. `--node-arg=--config
    /// --node-arg=bench.toml`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Funding key (hex). Default: dev account 0. Never printed.
    #[arg(long, env = "LANES_BENCH_KEY", hide_env_values = true, hide_default_value = true, default_value = DEV_KEY)]
    pub key: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Workload::Erc20)]
    pub workload: Workload,
    /// Transactions per second (open loop), or `max` (or 0) for as fast as the node takes
    /// them.
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Length of the send phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Sender accounts (at most one per transaction).
    #[arg(long, default_value_t = 2000)]
    pub senders: usize,
    /// Concurrent HTTP connections sending batches.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Most transactions per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Pairs of the `swap` workload (senders spread over them).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Transactions to pre-sign for `--rate max` (the run stops early if they run out).
    /// Default: 12,000 per second of `--duration`.
    #[arg(long)]
    pub max_txs: Option<usize>,
    /// `--rate max` only: most accepted but not yet included transactions (keeps the
    /// pool below its limits instead of measuring rejections).
    #[arg(long, default_value_t = 15_000)]
    pub max_inflight: u64,
    /// EIP-1559 fee cap of every transaction, gwei (senders are funded for it).
    #[arg(long, default_value_t = 10.0)]
    pub max_fee_gwei: f64,
    /// EIP-1559 tip, wei.
    #[arg(long, default_value_t = 1_000_000)]
    pub tip_wei: u128,
    /// Longest wait for accepted transactions to be included after the send phase, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write an SVG chart of throughput and latency over time here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// State the senders, the follower and the progress printer share during the timed phase.
#[derive(Debug)]
pub struct Shared {
    /// Start of the timed phase.
    pub t0: Instant,
    /// The pre-signed transactions, in send order.
    pub txs: Vec<SignedTx>,
    /// Hash → position in `txs`.
    pub index: B256Map<u32>,
    /// Microseconds after `t0` each transaction was sent, plus one (0: not sent).
    pub send_us: Vec<AtomicU64>,
    /// Whether each transaction was seen in a block.
    pub included_flags: Vec<AtomicBool>,
    /// Sent so far.
    pub sent: AtomicU64,
    /// Accepted so far.
    pub accepted: AtomicU64,
    /// Refused or lost so far.
    pub failed: AtomicU64,
    /// Seen in blocks so far.
    pub included: AtomicU64,
    /// Errors by kind.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// What the follower recorded.
    pub live: Mutex<Live>,
}

/// The follower's records.
#[derive(Debug, Default)]
pub struct Live {
    /// Every latency.
    pub latencies: Latencies,
    /// Latencies of the transactions included in each second.
    pub per_second: Vec<Latencies>,
    /// Every block seen.
    pub blocks: Vec<BlockPoint>,
}

impl Live {
    /// Records a block and its bench transactions' latencies (µs).
    pub fn record_block(&mut self, block: BlockPoint, latencies: &[u64]) {
        let second = block.t as usize;
        if self.per_second.len() <= second {
            self.per_second.resize_with(second + 1, Latencies::default);
        }
        for &us in latencies {
            self.latencies.record_us(us);
            self.per_second[second].record_us(us);
        }
        self.blocks.push(block);
    }
}

impl Shared {
    fn new(txs: Vec<SignedTx>) -> Self {
        let index = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| (tx.hash, i as u32))
            .collect();
        let n = txs.len();
        Self {
            t0: Instant::now(),
            txs,
            index,
            send_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            included_flags: (0..n).map(|_| AtomicBool::new(false)).collect(),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            included: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            live: Mutex::new(Live::default()),
        }
    }

    /// Counts an error of `kind` for `n` transactions.
    pub fn error(&self, kind: String, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        *self.errors.lock().entry(kind).or_default() += n;
    }
}

fn parse_key(key: &str) -> Result<Account, BenchError> {
    let key: B256 = key
        .trim()
        .parse()
        .map_err(|_| BenchError::Args("the funding key is not 32 bytes of hex".into()))?;
    Account::from_key(key)
        .ok_or_else(|| BenchError::Args("the funding key is not a valid secp256k1 key".into()))
}

fn parse_rate(rate: &str) -> Result<Option<f64>, BenchError> {
    match rate.trim() {
        "max" | "0" => Ok(None),
        other => match other.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Some(r)),
            _ => Err(BenchError::Args(format!(
                "--rate must be a positive number or `max`, not {other:?}"
            ))),
        },
    }
}

/// Runs the benchmark and returns its report (also written to `--report` if given).
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let rate = parse_rate(&args.rate)?;
    let funder = parse_key(&args.key)?;
    if args.duration <= 0.0 || args.senders == 0 || args.connections == 0 || args.batch == 0 {
        return Err(BenchError::Args(
            "--duration, --senders, --connections and --batch must be positive".into(),
        ));
    }
    let mut dev = None;
    let (rpc_url, metrics_url) = if args.spawn_dev {
        eprintln!("lanes bench: starting a dev node");
        let node = spawn::DevNode::spawn(&args.node_args, Duration::from_secs(60)).await?;
        eprintln!(
            "lanes bench: dev node at {} (log {})",
            node.rpc_url,
            node.log_path().display()
        );
        let urls = (node.rpc_url.clone(), Some(node.metrics_url.clone()));
        dev = Some(node);
        urls
    } else {
        let url = args
            .rpc
            .clone()
            .ok_or_else(|| BenchError::Args("give --rpc URL or --spawn-dev".into()))?;
        (url, args.metrics.clone())
    };
    let result = run_against(&args, rate, &funder, &rpc_url, metrics_url.as_deref()).await;
    if let Some(mut node) = dev {
        if result.is_err() {
            eprintln!("lanes bench: dev node log tail:\n{}", node.log_tail());
        }
        node.stop(Duration::from_secs(15));
    }
    result
}

async fn run_against(
    args: &BenchArgs,
    rate: Option<f64>,
    funder: &Account,
    rpc_url: &str,
    metrics_url: Option<&str>,
) -> Result<Report, BenchError> {
    let client = RpcClient::new(rpc_url, Duration::from_secs(30))?;
    let chain_id = quantity(&client.call::<Value>("eth_chainId", json!([])).await?)
        .ok_or_else(|| BenchError::Connect("eth_chainId: not a quantity".into()))?;
    let balance = quantity_u128(
        &client
            .call::<Value>("eth_getBalance", json!([funder.address, "latest"]))
            .await?,
    )
    .unwrap_or(0);
    let funder_nonce = quantity(
        &client
            .call::<Value>(
                "eth_getTransactionCount",
                json!([funder.address, "pending"]),
            )
            .await?,
    )
    .unwrap_or(0);
    let fees = Fees {
        chain_id,
        max_fee: (args.max_fee_gwei * 1e9) as u128,
        tip: args.tip_wei,
    };
    if fees.max_fee < fees.tip {
        return Err(BenchError::Args("--max-fee-gwei is below --tip-wei".into()));
    }

    let total = match rate {
        Some(r) => (r * args.duration).ceil() as usize,
        None => args
            .max_txs
            .unwrap_or((12_000.0 * args.duration).ceil() as usize),
    }
    .max(1);
    let n = args.senders.min(total);
    let seed = keccak256(
        [
            funder.key.as_slice(),
            &std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_be_bytes(),
        ]
        .concat(),
    );
    let started = Instant::now();
    let senders = workload::derive_accounts(seed, n);
    let per_sender = workload::per_sender(total, n);
    let plan = workload::plan_setup(
        args.workload,
        funder.address,
        funder_nonce,
        &senders,
        &per_sender,
        args.pairs,
        &fees,
    );
    let first_nonces: Vec<u64> = plan.sender_calls.iter().map(|c| c.len() as u64).collect();
    let txs = workload::sign_timed(
        args.workload,
        &senders,
        &first_nonces,
        &plan.contracts,
        seed,
        total,
        &fees,
    );
    eprintln!(
        "lanes bench: {} workload, {} senders, {} transactions signed in {:.1}s",
        args.workload,
        n,
        txs.len(),
        started.elapsed().as_secs_f64()
    );
    let funding: alloy_primitives::U256 = plan
        .funder_calls
        .iter()
        .map(|c| c.value)
        .sum::<alloy_primitives::U256>();
    if funding > alloy_primitives::U256::from(balance) {
        return Err(BenchError::Setup(format!(
            "the funding account {} holds {balance} wei but the run needs {funding} wei \
             (lower --max-fee-gwei, --duration or --rate)",
            funder.address
        )));
    }

    // Set-up: the funder's calls in waves its per-account pool limit allows, then the
    // senders' own set-up calls.
    let setup_started = Instant::now();
    let mut nonce = funder_nonce;
    for wave in plan.funder_calls.chunks(1000) {
        let signed: Vec<SignedTx> = wave
            .iter()
            .map(|call| {
                let tx = workload::sign(&funder.key, nonce, call, &fees);
                nonce += 1;
                tx
            })
            .collect();
        send::submit_and_confirm(&client, &signed, "funding").await?;
    }
    let own: Vec<SignedTx> = plan
        .sender_calls
        .iter()
        .zip(&senders)
        .flat_map(|(calls, sender)| {
            calls
                .iter()
                .enumerate()
                .map(|(k, call)| workload::sign(&sender.key, k as u64, call, &fees))
        })
        .collect();
    for wave in own.chunks(5000) {
        send::submit_and_confirm(&client, wave, "sender set-up").await?;
    }
    eprintln!(
        "lanes bench: set-up ({} funder and {} sender transactions) took {:.1}s",
        plan.funder_calls.len(),
        own.len(),
        setup_started.elapsed().as_secs_f64()
    );

    // Timed phase.
    let head = quantity(&client.call::<Value>("eth_blockNumber", json!([])).await?).unwrap_or(0);
    let ws = args.ws.clone().unwrap_or_else(|| follow::ws_url(rpc_url));
    let stop_follow = CancellationToken::new();
    let heads = follow::subscribe(&ws, stop_follow.clone()).await?;
    let metrics_before = match metrics_url {
        Some(url) => profile::scrape(url).await,
        None => None,
    };
    let shared = Arc::new(Shared::new(txs));
    let follower = tokio::spawn(follow::process(heads, head, client.clone(), shared.clone()));
    let stop_monitor = CancellationToken::new();
    let monitor = tokio::spawn(send::monitor(
        client.clone(),
        shared.clone(),
        stop_monitor.clone(),
    ));
    let duration = Duration::from_secs_f64(args.duration);
    let exhausted = send::send_phase(
        rpc_url,
        shared.clone(),
        rate,
        duration,
        args.connections,
        args.batch.min(1000),
        args.max_inflight,
    )
    .await?;
    let send_window = shared.t0.elapsed().as_secs_f64().max(1e-9);

    // Drain: wait for every accepted transaction to show up in a block.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    while shared.included.load(Ordering::Relaxed) < shared.accepted.load(Ordering::Relaxed)
        && Instant::now() < drain_deadline
        && !follower.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_follow.cancel();
    stop_monitor.cancel();
    let samples = monitor.await.unwrap_or_default();
    if follower.is_finished() {
        match follower.await {
            Ok(Err(e)) => eprintln!("lanes bench: following blocks failed: {e}"),
            Err(e) => eprintln!("lanes bench: the block follower panicked: {e}"),
            Ok(Ok(())) => {}
        }
    } else {
        follower.abort();
    }
    let node_profile = match (metrics_url, metrics_before) {
        (Some(url), Some(before)) => profile::scrape(url)
            .await
            .map(|after| profile::profile(&before, &after)),
        _ => None,
    };

    let report = build_report(
        args,
        rate,
        n,
        &shared,
        send_window,
        samples,
        node_profile,
        exhausted,
    );
    print_summary(&report);
    if let Some(path) = &args.report {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| BenchError::Output(e.to_string()))?;
        std::fs::write(path, text)
            .map_err(|e| BenchError::Output(format!("{}: {e}", path.display())))?;
    }
    if let Some(path) = &args.chart {
        let title = format!(
            "lanes bench: {} at {}",
            report.workload,
            rate.map_or("max".to_string(), |r| format!("{r} tx/s"))
        );
        chart::draw(path, &title, &report.series)?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &BenchArgs,
    rate: Option<f64>,
    senders: usize,
    shared: &Shared,
    send_window: f64,
    samples: Vec<send::Sample>,
    node_profile: Option<stats::NodeProfile>,
    exhausted: bool,
) -> Report {
    let live = shared.live.lock();
    let sent = shared.sent.load(Ordering::Relaxed);
    let accepted = shared.accepted.load(Ordering::Relaxed);
    let included = shared.included.load(Ordering::Relaxed);
    let last_inclusion = live
        .blocks
        .iter()
        .filter(|b| b.ours > 0)
        .map(|b| b.t)
        .fold(0.0, f64::max);
    let wall = last_inclusion.max(1e-9);
    let gas: u64 = live
        .blocks
        .iter()
        .filter(|b| b.t <= wall)
        .map(|b| b.gas_used)
        .sum();
    let warmup = 0.2 * args.duration;
    let steady: u64 = live
        .blocks
        .iter()
        .filter(|b| b.t > warmup && b.t <= args.duration)
        .map(|b| b.ours)
        .sum();
    let intervals: Vec<f64> = live
        .blocks
        .windows(2)
        .map(|w| (w[1].t - w[0].t) * 1000.0)
        .collect();

    // One point per second: sends from the progress samples, inclusions from the blocks.
    let seconds = samples.len().max(wall.ceil() as usize);
    let mut series: Vec<SeriesPoint> = (0..seconds)
        .map(|s| SeriesPoint {
            t: (s + 1) as f64,
            ..Default::default()
        })
        .collect();
    let mut previous = send::Sample::default();
    for (s, sample) in samples.iter().enumerate() {
        let point = &mut series[s];
        point.sent = sample.sent - previous.sent;
        point.accepted = sample.accepted - previous.accepted;
        point.errors = sample.failed - previous.failed;
        point.pool_pending = sample.pool.map(|p| p.0);
        point.pool_queued = sample.pool.map(|p| p.1);
        previous = *sample;
    }
    // What happened after the last whole second (the end of the send phase) goes into the
    // next point, so the series adds up to the totals.
    let residual_at = samples.len().min(series.len().saturating_sub(1));
    if let Some(point) = series.get_mut(residual_at) {
        point.sent += sent - previous.sent;
        point.accepted += accepted - previous.accepted;
        point.errors += shared.failed.load(Ordering::Relaxed) - previous.failed;
    }
    for block in &live.blocks {
        if let Some(point) = series.get_mut(block.t as usize) {
            point.included += block.ours;
            point.gas += block.gas_used;
            point.blocks += 1;
        }
    }
    for (s, latencies) in live.per_second.iter().enumerate() {
        if let Some(point) = series.get_mut(s) {
            let p = latencies.percentiles();
            point.latency_p50_ms = p.p50;
            point.latency_p99_ms = p.p99;
        }
    }
    Report {
        workload: args.workload.to_string(),
        rate,
        senders,
        connections: args.connections,
        batch: args.batch,
        duration_s: args.duration,
        wall_s: wall,
        signed: shared.txs.len() as u64,
        sent,
        accepted,
        included,
        failed: shared.failed.load(Ordering::Relaxed),
        sent_tps: sent as f64 / send_window,
        accepted_tps: accepted as f64 / send_window,
        included_tps: included as f64 / wall,
        steady_included_tps: steady as f64 / (args.duration - warmup),
        gas_per_s: gas as f64 / wall,
        latency_ms: live.latencies.percentiles(),
        errors: shared.errors.lock().clone(),
        block_time_ms: stats::summary(&intervals),
        series,
        blocks: live.blocks.clone(),
        node_profile,
        exhausted,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn print_summary(r: &Report) {
    println!(
        "workload {}  rate {}  senders {}  duration {:.1}s  wall {:.1}s",
        r.workload,
        r.rate.map_or("max".to_string(), |r| format!("{r}/s")),
        r.senders,
        r.duration_s,
        r.wall_s
    );
    println!(
        "sent {}  accepted {}  included {}  failed {}{}",
        r.sent,
        r.accepted,
        r.included,
        r.failed,
        if r.exhausted {
            "  (pre-signed transactions ran out; raise --max-txs)"
        } else {
            ""
        }
    );
    println!(
        "accepted {:.0} tx/s  included {:.0} tx/s (steady {:.0} tx/s)  {:.1} Mgas/s",
        r.accepted_tps,
        r.included_tps,
        r.steady_included_tps,
        r.gas_per_s / 1e6
    );
    let l = &r.latency_ms;
    println!(
        "latency ms  p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        l.p50, l.p90, l.p99, l.max
    );
    let b = &r.block_time_ms;
    println!(
        "block time ms  mean {:.1}  p50 {:.1}  p99 {:.1}  max {:.1}  ({} blocks)",
        b.mean,
        b.p50,
        b.p99,
        b.max,
        r.blocks.len()
    );
    for (kind, count) in &r.errors {
        println!("error {count} × {kind}");
    }
    if let Some(p) = &r.node_profile {
        let stages: Vec<String> = p
            .stage_us_per_tx
            .iter()
            .map(|(stage, us)| format!("{stage} {us:.1}"))
            .collect();
        println!("node µs/tx by stage: {}", stages.join("  "));
        if let Some(cpu) = p.cpu_us_per_tx {
            println!("node CPU µs/tx: {cpu:.1}");
        }
    }
}

/// Address helper for tests and reports.
pub fn address_of(key: &str) -> Option<Address> {
    parse_key(key).ok().map(|a| a.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("max").unwrap(), None);
        assert_eq!(parse_rate("0").unwrap(), None);
        assert_eq!(parse_rate("250").unwrap(), Some(250.0));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn the_dev_key_is_dev_account_0() {
        assert_eq!(
            address_of(DEV_KEY).unwrap(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert!(parse_key("0x12").is_err());
    }

    #[test]
    fn latencies_land_in_the_second_of_their_block() {
        let mut live = Live::default();
        let block = |t: f64| BlockPoint {
            number: 1,
            t,
            txs: 2,
            ours: 2,
            gas_used: 42_000,
            base_fee: 1,
        };
        live.record_block(block(0.5), &[100_000, 200_000]);
        live.record_block(block(2.2), &[300_000]);
        assert_eq!(live.per_second.len(), 3);
        assert_eq!(live.per_second[0].len(), 2);
        assert!(live.per_second[1].is_empty());
        assert_eq!(live.latencies.len(), 3);
        assert_eq!(live.latencies.percentiles().max, 300.0);
    }
}
