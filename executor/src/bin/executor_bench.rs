//! `executor-bench`: sequential vs parallel block building on the same blocks.
//!
//! Builds one block per workload on a pre-funded in-memory state and times, in one run,
//! the sequential builder, the parallel builder and the "ceiling" (the block's senders split
//! into as many parts as threads, each part built on its own thread with its own EVM and its
//! own copy of the state, no coordination at all). Times are medians over repetitions; the
//! parallel result is checked against the sequential one before anything is timed.
//!
//! Run in release: `cargo run --release -p lanes-executor --bin executor-bench -- --threads 2`.

/// glibc malloc spends a large share of trie hashing and block building in its free lists;
/// mimalloc keeps small allocations thread-local.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use alloy_consensus::{Signed, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{
    Address, B256, Bytes, KECCAK256_EMPTY, Signature, TxKind, U256, keccak256, map::HashMap,
};
use clap::Parser;
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, ExecutedBlock, ParallelExecutor, RecoveredTx,
    SequentialExecutor, StoredAccount, executor::VecSource, state::MemoryState,
};
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Times sequential vs parallel block execution per workload.
#[derive(Parser, Debug)]
#[command(name = "executor-bench")]
struct Args {
    /// Worker threads of the parallel executor (and parts of the ceiling run).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Write the result rows as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Timed repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Transactions per block (at least 1,000 for the reference workloads).
    #[arg(long, default_value_t = 1_000)]
    txs: usize,
    /// Run only these workloads (default: all).
    #[arg(long = "workload")]
    workloads: Vec<String>,
    /// Profiling aid: after the check, only time this side (sequential, parallel or ceiling).
    #[arg(long)]
    only: Option<String>,
    /// Profiling aid: also print the fastest time of each phase of the parallel executor
    /// (plan, speculate, validate, commit), in the normal interleaved run too.
    #[arg(long)]
    phases: bool,
    /// Statistic over repetitions: `median`, or `min` (robust to other load on a shared
    /// machine).
    #[arg(long, default_value = "median")]
    stat: String,
}

const CHAIN_ID: u64 = 42069;
const BASE_FEE: u64 = 1_000_000_000;
const TIP: u128 = 1_000_000_000;
const WORKLOADS: [&str; 7] = [
    "transfers",
    "erc20",
    "erc20-hot-recipient",
    "swap-one-pair",
    "swap-100-pairs",
    "mixed",
    "one-sender-chain",
];

const TOKEN: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
]);
const TOKEN_A: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
]);
const TOKEN_B: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,
]);
const HOT: Address = Address::new([0x60; 20]);

fn pair(i: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x71;
    bytes[18..].copy_from_slice(&(i as u16).to_be_bytes());
    Address::new(bytes)
}

/// A distinct account per (workload, index): senders and recipients never collide.
fn account(workload: u8, role: u8, i: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x10 + workload;
    bytes[1] = role;
    bytes[16..].copy_from_slice(&(i as u32).to_be_bytes());
    Address::new(bytes)
}

fn code(hex: &str) -> Bytes {
    Bytes::from(alloy_primitives::hex::decode(hex.trim()).expect("embedded bytecode is hex"))
}

fn word_address(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

fn mapping_slot(key: Address, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&word_address(key));
    buf[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

fn allowance_slot(owner: Address, spender: Address) -> U256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&word_address(spender));
    buf[32..].copy_from_slice(&mapping_slot(owner, U256::from(1)).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

fn call(signature: &str, words: &[[u8; 32]]) -> Bytes {
    let mut input = keccak256(signature.as_bytes())[..4].to_vec();
    for w in words {
        input.extend_from_slice(w);
    }
    Bytes::from(input)
}

fn tx(
    sender: Address,
    nonce: u64,
    to: Address,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> Arc<RecoveredTx> {
    let inner = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: BASE_FEE as u128 * 2 + TIP,
        max_priority_fee_per_gas: TIP,
        to: TxKind::Call(to),
        value,
        input,
        access_list: Default::default(),
    };
    // The executor trusts the recovered sender; signatures do not take part.
    let envelope = TxEnvelope::from(Signed::new_unhashed(inner, Signature::test_signature()));
    Arc::new(Recovered::new_unchecked(envelope.into(), sender))
}

/// Pre-funded state: every account a workload may use, the tokens and the pairs.
struct World {
    state: MemoryState,
}

impl World {
    fn new() -> Self {
        let mut state = MemoryState::default();
        let token = code(include_str!("../../benches-assets/Token.hex"));
        let pair_code = code(include_str!("../../benches-assets/Pair.hex"));
        for (address, bytes) in [(TOKEN, &token), (TOKEN_A, &token), (TOKEN_B, &token)] {
            let hash = keccak256(bytes);
            state.codes.insert(hash, bytes.clone());
            state.accounts.insert(
                address,
                StoredAccount {
                    nonce: 1,
                    balance: U256::ZERO,
                    code_hash: hash,
                },
            );
        }
        let pair_hash = keccak256(&pair_code);
        state.codes.insert(pair_hash, pair_code);
        let reserve = U256::from(10u64).pow(U256::from(24));
        for i in 0..100 {
            let p = pair(i);
            state.accounts.insert(
                p,
                StoredAccount {
                    nonce: 1,
                    balance: U256::ZERO,
                    code_hash: pair_hash,
                },
            );
            state
                .storage
                .insert((p, U256::ZERO), U256::from_be_bytes(word_address(TOKEN_A)));
            state.storage.insert(
                (p, U256::from(1)),
                U256::from_be_bytes(word_address(TOKEN_B)),
            );
            state.storage.insert((p, U256::from(2)), reserve);
            state.storage.insert((p, U256::from(3)), reserve);
            state
                .storage
                .insert((TOKEN_A, mapping_slot(p, U256::ZERO)), reserve);
            state
                .storage
                .insert((TOKEN_B, mapping_slot(p, U256::ZERO)), reserve);
        }
        state.storage.insert((HOT, U256::ZERO), U256::ZERO);
        Self { state }
    }

    fn fund(&mut self, who: Address) {
        let ether = U256::from(10u64).pow(U256::from(21));
        self.state.accounts.insert(
            who,
            StoredAccount {
                nonce: 0,
                balance: ether,
                code_hash: KECCAK256_EMPTY,
            },
        );
    }

    fn give_tokens(&mut self, token: Address, who: Address, amount: U256) {
        self.state
            .storage
            .insert((token, mapping_slot(who, U256::ZERO)), amount);
    }

    fn approve_all_pairs(&mut self, who: Address) {
        for token in [TOKEN_A, TOKEN_B] {
            for i in 0..100 {
                self.state
                    .storage
                    .insert((token, allowance_slot(who, pair(i))), U256::MAX);
            }
        }
    }
}

/// Builds the transactions of `workload` (`n` of them; `id` keeps accounts apart).
fn workload_txs(world: &mut World, workload: &str, n: usize, id: u8) -> Vec<Arc<RecoveredTx>> {
    let amount = U256::from(10u64).pow(U256::from(18));
    match workload {
        "transfers" => (0..n)
            .map(|i| {
                let sender = account(id, 0, i);
                world.fund(sender);
                tx(
                    sender,
                    0,
                    account(id, 1, i),
                    U256::from(1_000_000u64),
                    Bytes::new(),
                    21_000,
                )
            })
            .collect(),
        "erc20" | "erc20-hot-recipient" => (0..n)
            .map(|i| {
                let sender = account(id, 0, i);
                world.fund(sender);
                world.give_tokens(TOKEN, sender, amount * U256::from(100));
                let to = if workload == "erc20" {
                    account(id, 1, i)
                } else {
                    HOT
                };
                let input = call(
                    "transfer(address,uint256)",
                    &[word_address(to), amount.to_be_bytes()],
                );
                tx(sender, 0, TOKEN, U256::ZERO, input, 70_000)
            })
            .collect(),
        "swap-one-pair" | "swap-100-pairs" => (0..n)
            .map(|i| {
                let sender = account(id, 0, i);
                world.fund(sender);
                world.give_tokens(TOKEN_A, sender, amount * U256::from(100));
                world.give_tokens(TOKEN_B, sender, amount * U256::from(100));
                world.approve_all_pairs(sender);
                let target = if workload == "swap-one-pair" {
                    pair(0)
                } else {
                    pair(i % 100)
                };
                let mut zero_for_one = [0u8; 32];
                zero_for_one[31] = (i % 2) as u8;
                let input = call(
                    "swap(uint256,bool,address)",
                    &[amount.to_be_bytes(), zero_for_one, word_address(sender)],
                );
                tx(sender, 0, target, U256::ZERO, input, 150_000)
            })
            .collect(),
        "one-sender-chain" => {
            let sender = account(id, 0, 0);
            world.fund(sender);
            (0..n)
                .map(|i| {
                    tx(
                        sender,
                        i as u64,
                        account(id, 1, i),
                        U256::from(1_000_000u64),
                        Bytes::new(),
                        21_000,
                    )
                })
                .collect()
        }
        "mixed" => {
            // Every other workload in equal parts, interleaved in a fixed pseudo-random
            // order that keeps each sender's transactions in nonce order.
            let parts: Vec<Vec<_>> = WORKLOADS
                .iter()
                .filter(|w| **w != "mixed")
                .enumerate()
                .map(|(k, w)| workload_txs(world, w, n.div_ceil(6), 100 + k as u8))
                .collect();
            let mut cursors = vec![0usize; parts.len()];
            let mut out = Vec::new();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            while out.len() < parts.iter().map(Vec::len).sum::<usize>() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let k = (seed % parts.len() as u64) as usize;
                if cursors[k] < parts[k].len() {
                    out.push(parts[k][cursors[k]].clone());
                    cursors[k] += 1;
                }
            }
            out
        }
        other => panic!("unknown workload {other}"),
    }
}

fn env(gas_limit: u64) -> BlockEnvInput {
    BlockEnvInput {
        number: 1,
        parent_hash: B256::ZERO,
        timestamp: 1_700_000_000,
        beneficiary: Address::repeat_byte(0xbe),
        gas_limit,
        base_fee: BASE_FEE,
        prevrandao: B256::ZERO,
        parent_beacon_block_root: B256::ZERO,
        max_txs: 1_000_000,
        excess_blob_gas: 0,
    }
}

fn run(
    executor: &impl BlockExecutor,
    chain: &ChainSpec,
    env: &BlockEnvInput,
    state: &MemoryState,
    txs: &[Arc<RecoveredTx>],
) -> (Duration, ExecutedBlock, usize) {
    let mut source = VecSource::new(txs.to_vec());
    let started = Instant::now();
    let block = executor
        .execute(chain, env, state, &mut source)
        .expect("block builds");
    (started.elapsed(), block, source.skipped.len())
}

/// The timed phases of a parallel block, for profiling.
fn phases(stats: &lanes_executor::ExecutionStats) -> [Duration; 5] {
    [
        stats.elapsed,
        stats.plan_time,
        stats.speculate_time,
        stats.validate_time,
        stats.commit_time,
    ]
}

/// Prints the fastest of each phase (see [`phases`]), if they were tracked, and the
/// transactions taken over between workers per parallel block.
fn print_phases(mins: &[Duration], taken_over: usize, runs: usize) {
    if let [elapsed, plan, speculate, validate, commit] = mins {
        println!(
            "  fastest phases: elapsed {elapsed:?} plan {plan:?} speculate {speculate:?} \
             validate {validate:?} commit {commit:?}; taken over {:.1} txs/block",
            taken_over as f64 / runs.max(1) as f64
        );
    }
}

fn summarise(mut times: Vec<Duration>, stat: &str) -> Duration {
    times.sort();
    let index = if stat == "min" { 0 } else { times.len() / 2 };
    times.get(index).copied().unwrap_or_default()
}

/// Splits the block by sender into `parts` groups of similar gas, each kept in block order.
fn split_by_sender(txs: &[Arc<RecoveredTx>], parts: usize) -> Vec<Vec<Arc<RecoveredTx>>> {
    let mut by_sender: HashMap<Address, Vec<Arc<RecoveredTx>>> = HashMap::default();
    let mut order = Vec::new();
    for tx in txs {
        let entry = by_sender.entry(tx.signer()).or_default();
        if entry.is_empty() {
            order.push(tx.signer());
        }
        entry.push(tx.clone());
    }
    let mut groups: Vec<(u64, Vec<Arc<RecoveredTx>>)> =
        (0..parts).map(|_| (0, Vec::new())).collect();
    for sender in order {
        let txs = by_sender.remove(&sender).unwrap_or_default();
        let gas: u64 = txs
            .iter()
            .map(|t| alloy_consensus::Transaction::gas_limit(t.inner()))
            .sum();
        let lightest = groups.iter_mut().min_by_key(|g| g.0).expect("parts > 0");
        lightest.0 += gas;
        lightest.1.extend(txs);
    }
    groups.into_iter().map(|g| g.1).collect()
}

#[derive(Debug, serde::Serialize)]
struct Row {
    workload: String,
    txs: usize,
    gas: u64,
    seq_ms: f64,
    par_ms: f64,
    speedup: f64,
    ceiling: f64,
    reexecutions: usize,
    threads: usize,
    seq_us_per_tx: f64,
    par_mgas_per_s: f64,
    lanes: usize,
    conflicts: usize,
    merged_windows: usize,
    parallel_windows: usize,
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let threads = args.threads.max(1);
    let selected: Vec<&str> = if args.workloads.is_empty() {
        WORKLOADS.to_vec()
    } else {
        WORKLOADS
            .iter()
            .copied()
            .filter(|w| args.workloads.iter().any(|a| a == w))
            .collect()
    };
    let chain = ChainSpec::cancun(CHAIN_ID);
    let sequential = SequentialExecutor::new();
    let parallel = ParallelExecutor::new(threads);
    let ceiling_executors: Vec<SequentialExecutor> =
        (0..threads).map(|_| SequentialExecutor::new()).collect();
    // Threads that already exist, as the parallel executor's do (spawning them would be
    // charged to the ceiling), with the calling thread as one of them, also as it does.
    let ceiling_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.saturating_sub(1).max(1))
        .build()?;
    let reps = args.reps.max(1);
    // As the parallel executor decides: spin only if every thread has a core.
    let spin = threads <= std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "executor-bench: {threads} threads, {reps} reps ({} reported), {} cores available",
        args.stat,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<20} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9}",
        "workload",
        "txs",
        "Mgas",
        "seq_ms",
        "par_ms",
        "speedup",
        "ceiling",
        "Mgas/s",
        "reexec",
        "seq_us/tx"
    );
    let mut rows = Vec::new();
    for (id, workload) in selected.iter().enumerate() {
        let mut world = World::new();
        let txs = workload_txs(&mut world, workload, args.txs, id as u8);
        let gas_limit: u64 = txs
            .iter()
            .map(|t| alloy_consensus::Transaction::gas_limit(t.inner()))
            .sum();
        let env = env(gas_limit.max(30_000_000));
        let state = world.state;

        // Check before timing: the parallel block must be the sequential block.
        let (_, expected, expected_skips) = run(&sequential, &chain, &env, &state, &txs);
        let (_, got, got_skips) = run(&parallel, &chain, &env, &state, &txs);
        let same = got.changes == expected.changes
            && got.receipts == expected.receipts
            && got.gas_used == expected.gas_used
            && got_skips == expected_skips;
        eyre::ensure!(
            same,
            "{workload}: the parallel block differs from the sequential block"
        );
        eyre::ensure!(
            expected_skips == 0,
            "{workload}: {expected_skips} transactions were skipped"
        );

        let parts = split_by_sender(&txs, threads);
        let mut seq_times = Vec::new();
        let mut par_times = Vec::new();
        let mut ceiling_times = Vec::new();
        let mut stats = parallel.last_stats();
        let mut phase_mins: Vec<Duration> = Vec::new();
        let (mut taken_over, mut par_runs) = (0usize, 0usize);
        let only = args.only.as_deref();
        for _ in 0..reps {
            if only.is_none_or(|o| o == "sequential") {
                seq_times.push(run(&sequential, &chain, &env, &state, &txs).0);
            }
            if only.is_none_or(|o| o == "parallel") {
                par_times.push(run(&parallel, &chain, &env, &state, &txs).0);
                let last = parallel.last_stats();
                taken_over += last.taken_over;
                par_runs += 1;
                let track = only.is_some() || args.phases;
                if track && !phase_mins.is_empty() {
                    for (min, phase) in phase_mins.iter_mut().zip(phases(&last)) {
                        *min = (*min).min(phase);
                    }
                } else if track {
                    phase_mins = phases(&last).to_vec();
                }
                stats = last;
            }
            if only.is_some_and(|o| o != "ceiling") {
                continue;
            }
            let copies: Vec<MemoryState> = (0..threads).map(|_| state.clone()).collect();
            let done = AtomicUsize::new(0);
            let started = Instant::now();
            ceiling_pool.in_place_scope(|scope| {
                let (chain, env, done) = (&chain, &env, &done);
                let others = parts.iter().zip(&copies).zip(&ceiling_executors).skip(1);
                for ((part, copy), executor) in others {
                    scope.spawn(move |_| {
                        run(executor, chain, env, copy, part);
                        done.fetch_add(1, Ordering::Release);
                    });
                }
                // No pause to let the woken threads settle: measured on this machine, a
                // 20 us sleep here made the ceiling 2-8% lower, which flatters the ratio.
                run(&ceiling_executors[0], chain, env, &copies[0], &parts[0]);
                // And no sleep on the scope's latch at the end, which the parallel executor
                // avoids the same way: woken late, it made the ceiling lower too.
                while spin && done.load(Ordering::Acquire) + 1 < parts.len() {
                    std::hint::spin_loop();
                }
            });
            ceiling_times.push(started.elapsed());
        }
        let stat = args.stat.as_str();
        let (seq, par, ceiling) = (
            summarise(seq_times, stat),
            summarise(par_times, stat),
            summarise(ceiling_times, stat),
        );
        if only.is_some() {
            println!("{workload}: seq {seq:?} par {par:?} ceiling {ceiling:?} {stats:?}");
            print_phases(&phase_mins, taken_over, par_runs);
            continue;
        }
        print_phases(&phase_mins, taken_over, par_runs);
        let row = Row {
            workload: workload.to_string(),
            txs: txs.len(),
            gas: expected.gas_used,
            seq_ms: seq.as_secs_f64() * 1e3,
            par_ms: par.as_secs_f64() * 1e3,
            speedup: seq.as_secs_f64() / par.as_secs_f64(),
            ceiling: seq.as_secs_f64() / ceiling.as_secs_f64(),
            reexecutions: stats.reexecutions,
            threads,
            seq_us_per_tx: seq.as_secs_f64() * 1e6 / txs.len() as f64,
            par_mgas_per_s: expected.gas_used as f64 / par.as_secs_f64() / 1e6,
            lanes: stats.lanes,
            conflicts: stats.conflicts,
            merged_windows: stats.merged_windows,
            parallel_windows: stats.parallel_windows,
        };
        println!(
            "{:<20} {:>6} {:>8.1} {:>8.3} {:>8.3} {:>7.2}x {:>7.2}x {:>9.1} {:>7} {:>9.2}",
            row.workload,
            row.txs,
            row.gas as f64 / 1e6,
            row.seq_ms,
            row.par_ms,
            row.speedup,
            row.ceiling,
            row.par_mgas_per_s,
            row.reexecutions,
            row.seq_us_per_tx
        );
        rows.push(row);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
