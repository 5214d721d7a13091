//! `root-bench`: how the incremental state root scales with the size of the state.
//!
//! For each state size it builds a RocksDB store holding that many accounts (each with a few
//! storage slots) plus an ERC-20 token contract with a balance slot per account, then times
//! the state root of one and the same block of ERC-20 transfers on top: every transfer
//! changes the sender's nonce and balance (gas) and two token balance slots, and the fee
//! recipient is paid. Senders and recipients come from the first accounts, which exist at
//! every size, so each size roots exactly the same changes.
//!
//! Run it optimised: `cargo run --release -p lanes-executor --bin root-bench`.

/// glibc malloc spends a large share of trie hashing and block building in its free lists;
/// mimalloc keeps small allocations thread-local.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, keccak256};
use clap::Parser;
use lanes_executor::{
    SealedBlock, StateChanges, Storage, StorageOptions, StoredAccount, state::AccountChange,
};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

#[derive(Parser, Debug)]
#[command(about = "Incremental state root time against state size")]
struct Args {
    /// State sizes, in accounts.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    accounts: Vec<u64>,
    /// Storage slots per account.
    #[arg(long, default_value_t = 3)]
    slots: u64,
    /// ERC-20 transfers in the timed block.
    #[arg(long, default_value_t = 1000)]
    transfers: u64,
    /// Accounts per block while building the state.
    #[arg(long, default_value_t = 100_000)]
    chunk: u64,
    /// Timed computations of the block's root per size (the first one reads a cold-ish
    /// cache; the median is reported as the result).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Where to put the databases (default: a temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only build the state of this size in `--dir` (the timed process runs the build in a
    /// child process of its own, so the build's gigabytes of short-lived allocations do not
    /// leave the timed process with a fragmented heap).
    #[arg(long, hide = true)]
    build_only: Option<u64>,
}

const TOKEN: Address = Address::repeat_byte(0x70);
const FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

fn account(i: u64) -> Address {
    Address::from_word(keccak256(i.to_be_bytes()))
}

/// Solidity's slot of `balances[holder]` for a mapping at slot 0.
fn balance_slot(holder: Address) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(holder.as_slice());
    U256::from_be_bytes(keccak256(preimage).0)
}

fn token_info() -> StoredAccount {
    StoredAccount {
        nonce: 1,
        balance: U256::ZERO,
        code_hash: keccak256(b"token"),
    }
}

/// Accounts `from..to`, each with `slots` slots and a token balance.
fn state_chunk(from: u64, to: u64, slots: u64) -> StateChanges {
    let mut changes = StateChanges::default();
    let mut token = AccountChange {
        info: Some(token_info()),
        ..Default::default()
    };
    for i in from..to {
        let address = account(i);
        let mut change = AccountChange {
            info: Some(StoredAccount {
                nonce: 1 + i % 7,
                balance: U256::from(10u64.pow(18) + i),
                code_hash: KECCAK256_EMPTY,
            }),
            ..Default::default()
        };
        for s in 0..slots {
            change
                .storage
                .insert(U256::from(s), U256::from(i * 31 + s + 1));
        }
        changes.accounts.insert(address, change);
        token
            .storage
            .insert(balance_slot(address), U256::from(1_000_000 + i));
    }
    changes.accounts.insert(TOKEN, token);
    changes
}

/// A timed block: `transfers` token transfers between distinct holders, the `index`-th group
/// of `2 * transfers` accounts.
fn transfer_block(transfers: u64, index: u64) -> StateChanges {
    let mut changes = StateChanges::default();
    let mut token = AccountChange {
        info: Some(token_info()),
        ..Default::default()
    };
    for t in 0..transfers {
        let first = 2 * transfers * index;
        let (sender, recipient) = (account(first + 2 * t), account(first + 2 * t + 1));
        changes.accounts.insert(
            sender,
            AccountChange {
                info: Some(StoredAccount {
                    nonce: 100 + t,
                    balance: U256::from(10u64.pow(17) + t),
                    code_hash: KECCAK256_EMPTY,
                }),
                ..Default::default()
            },
        );
        token
            .storage
            .insert(balance_slot(sender), U256::from(7 + t));
        token
            .storage
            .insert(balance_slot(recipient), U256::from(9_000_000 + t));
    }
    changes.accounts.insert(TOKEN, token);
    changes.accounts.insert(
        FEE_RECIPIENT,
        AccountChange {
            info: Some(StoredAccount {
                nonce: 0,
                balance: U256::from(123_456_789u64),
                code_hash: KECCAK256_EMPTY,
            }),
            ..Default::default()
        },
    );
    changes
}

fn commit(storage: &Storage, number: u64, changes: &StateChanges) -> eyre::Result<B256> {
    let root = storage.state_root(changes)?;
    let header = Header {
        number,
        state_root: root,
        ..Default::default()
    };
    storage.commit_block(&SealedBlock::new(header, vec![], vec![]), changes)?;
    Ok(root)
}

struct Measurement {
    accounts: u64,
    nodes_rewritten: usize,
    /// Blocks of holders not touched before (deep nodes not cached yet).
    fresh: Runs,
    /// One block again and again (everything cached).
    hot: Runs,
    /// The very first block (cold caches).
    first: Duration,
    commit: Duration,
}

#[derive(Default)]
struct Runs {
    median: Duration,
    min: Duration,
    /// CPU time per run, all threads: unlike wall time, not inflated by other processes.
    cpu: Duration,
    count: usize,
}

impl Runs {
    fn time(storage: &Storage, blocks: &[StateChanges]) -> eyre::Result<Self> {
        let cpu_before = process_cpu_time();
        let mut times = Vec::with_capacity(blocks.len());
        for block in blocks {
            let started = Instant::now();
            let update = storage.state_trie_update(block)?;
            times.push(started.elapsed());
            drop(update);
        }
        let cpu = process_cpu_time()
            .zip(cpu_before)
            .map_or(Duration::ZERO, |(after, before)| {
                (after - before) / times.len().max(1) as u32
            });
        times.sort();
        Ok(Self {
            median: times.get(times.len() / 2).copied().unwrap_or_default(),
            min: times.first().copied().unwrap_or_default(),
            cpu,
            count: times.len(),
        })
    }
}

impl std::fmt::Display for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:>7.2?}, min {:>7.2?}, CPU {:>7.2?}/block ({} runs)",
            self.median, self.min, self.cpu, self.count
        )
    }
}

fn open(dir: &std::path::Path, accounts: u64) -> eyre::Result<Storage> {
    Ok(Storage::open(
        &dir.join(format!("state-{accounts}")),
        &StorageOptions {
            cache_bytes: 512 << 20,
            sync: lanes_executor::CommitSync::Never,
        },
    )?)
}

/// Builds the state (block by block, through the normal commit path) and compacts it.
fn build(args: &Args, dir: &std::path::Path, accounts: u64) -> eyre::Result<u64> {
    let storage = open(dir, accounts)?;
    let blocks = accounts.div_ceil(args.chunk);
    if let Some((number, _)) = storage.head()?
        && number >= blocks
    {
        eprintln!("  reusing the state built in {}", dir.display());
        return Ok(number);
    }
    let started = Instant::now();
    let mut number = 0;
    let mut from = 0;
    while from < accounts {
        let to = (from + args.chunk).min(accounts);
        number += 1;
        commit(&storage, number, &state_chunk(from, to, args.slots))?;
        from = to;
    }
    eprintln!(
        "  built {accounts} accounts x {} slots + token with {accounts} holders in {:.1?}",
        args.slots,
        started.elapsed()
    );
    let started = Instant::now();
    storage.compact()?;
    eprintln!("  compacted in {:.1?}", started.elapsed());
    Ok(number)
}

fn measure(args: &Args, dir: &std::path::Path, accounts: u64) -> eyre::Result<Measurement> {
    eyre::ensure!(
        accounts >= 2 * args.transfers,
        "{accounts} accounts are too few for {} transfers",
        args.transfers
    );
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--slots",
            &args.slots.to_string(),
            "--chunk",
            &args.chunk.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--build-only", &accounts.to_string()])
        .status()?;
    eyre::ensure!(status.success(), "building the state failed");
    let storage = open(dir, accounts)?;
    let number = storage
        .head()?
        .ok_or_else(|| eyre::eyre!("no state built"))?
        .0;

    // The first block warms the caches (block cache, node cache) the way the previous
    // blocks of a running node would; then blocks of other holders (their paths below the
    // top levels are not cached yet: the steady state of a node), then one block again and
    // again (everything cached).
    let blocks: Vec<StateChanges> = (0..distinct_blocks(args))
        .map(|index| transfer_block(args.transfers, index))
        .collect();
    let started = Instant::now();
    let update = storage.state_trie_update(&blocks[0])?;
    let first = started.elapsed();
    let expected = update.root;
    // Every branch node on the changed paths is rehashed and rewritten: the work a block
    // of updates cannot avoid, and what grows with the depth of the tries.
    let nodes_rewritten =
        update.account_nodes.len() + update.storages.iter().map(|s| s.nodes.len()).sum::<usize>();
    drop(update);
    let fresh = Runs::time(&storage, &blocks[1..])?;
    let hot = Runs::time(&storage, &vec![blocks[0].clone(); args.runs.max(1)])?;
    let started = Instant::now();
    let committed = commit(&storage, number + 1, &blocks[0])?;
    let commit_time = started.elapsed();
    eyre::ensure!(committed == expected, "root changed between runs");
    eyre::ensure!(storage.trie_root()? == expected, "stored trie disagrees");
    Ok(Measurement {
        accounts,
        nodes_rewritten,
        fresh,
        hot,
        first,
        commit: commit_time,
    })
}

/// How many blocks of distinct holders every state size has room for (at most 6).
fn distinct_blocks(args: &Args) -> u64 {
    let smallest = args.accounts.iter().copied().min().unwrap_or_default();
    (smallest / (2 * args.transfers)).clamp(1, 6)
}

fn main() -> eyre::Result<()> {
    let args = Args::parse();
    if let (Some(accounts), Some(dir)) = (args.build_only, &args.dir) {
        build(&args, dir, accounts)?;
        return Ok(());
    }
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.0.clone()
        }
    };
    println!(
        "block: {} ERC-20 transfers ({} token slots, {} sender accounts, token, fee recipient); \
         {} threads",
        args.transfers,
        2 * args.transfers,
        args.transfers,
        rayon::current_num_threads()
    );
    let mut results = Vec::new();
    for &accounts in &args.accounts {
        eprintln!("state with {accounts} accounts:");
        let m = measure(&args, &dir, accounts)?;
        println!(
            "{:>9} accounts: fresh blocks: {}\n{:>19} same block:   {}\n{:>19} first block \
             (cold caches) {:.2?}, root + commit {:.2?}; {} branch nodes rewritten",
            m.accounts, m.fresh, "", m.hot, "", m.first, m.commit, m.nodes_rewritten
        );
        results.push(m);
    }
    if let [small, .., large] = results.as_slice() {
        let ratio = |l: Duration, s: Duration| l.as_secs_f64() / s.as_secs_f64().max(1e-9);
        println!(
            "ratio {} / {} accounts, branch nodes rewritten: {:.2}x",
            large.accounts,
            small.accounts,
            large.nodes_rewritten as f64 / small.nodes_rewritten.max(1) as f64
        );
        for (what, l, s) in [
            ("fresh blocks", &large.fresh, &small.fresh),
            ("same block", &large.hot, &small.hot),
        ] {
            println!(
                "ratio {} / {} accounts, {what}: {:.2}x median, {:.2}x min, {:.2}x CPU",
                large.accounts,
                small.accounts,
                ratio(l.median, s.median),
                ratio(l.min, s.min),
                ratio(l.cpu, s.cpu)
            );
        }
    }
    Ok(())
}

/// CPU time of every thread of this process so far (Linux `schedstat`, nanoseconds).
fn process_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// A temporary directory removed on drop (the bench does not depend on `tempfile`).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> eyre::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("root-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}
