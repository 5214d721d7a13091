//! The parallel block builder: [`ParallelExecutor`].
//!
//! It produces exactly the block [`crate::SequentialExecutor`] produces from the same source:
//! the same included transactions, receipts, state changes and skips (with the same reasons),
//! in the same order.
//!
//! # How
//!
//! The block is built window by window. A window is a run of candidates pulled from the
//! source in order, never more than the sequential builder would certainly have pulled: as
//! many as the block still has room for if each used its whole gas limit, so no candidate in
//! the window can fail to fit and the sequential loop could not have stopped inside it.
//!
//! A window is split into lanes (see `plan`): transactions that share a sender, a contract,
//! a token holder or an access-list entry go in one lane. Lanes are packed onto the workers
//! (the calling thread and a fixed pool); each worker executes its transactions in block
//! order on a private view (its own earlier writes over the committed state), logging every
//! value each transaction read and the first transaction that changed each location (see
//! `spec`). A worker done with its group while another still has many transactions not
//! started takes over the back part of them (as much as evens out their ends), from a point
//! where no lane is cut, on a view of its own: the packing is by gas, but the CPUs of a
//! virtual machine neither start nor run alike.
//!
//! Then a transaction's speculative result stands if no other worker changed anything it
//! read before it did. When every result stands, the workers' views are merged and nothing
//! runs again (a worker puts the receipts in block order while the views merge). Otherwise
//! everything before the first stale result is replayed from the logged writes, and from
//! there each transaction is checked value by value against the committed state and
//! executed again with revm's own handler if any value moved: the result is always the
//! sequential one, only the time differs.
//!
//! Skips are decided in block order and reported to the source exactly where the sequential
//! builder reports them. A candidate pulled into the window after its sender was skipped is
//! treated as never offered, as the source contract demands ([`TxSource::skip`]: a source
//! does not offer a skipped sender's later transactions).
//!
//! Some updates commute and do not serialise a block:
//! - the fee recipient's reward, paid in block order after the fact (a transaction that reads
//!   the fee recipient is executed exactly instead);
//! - plain ETH transfers to accounts without code, committed as credits;
//! - ERC-20 payments to a holder many transactions of the window pay (see `layout`): each
//!   transaction is given the holder's balance predicted from the earlier payments' amounts,
//!   and every access to that slot is then replayed in block order, value by value.
//!
//! Windows too small or too dependent to profit (one lane carrying most of the gas) run
//! sequentially on the committed state, with the same code the sequential builder runs.

mod codes;
mod commit;
mod crew;
mod digest;
mod layout;
mod plan;
mod spec;

use crate::{
    block::RecoveredTx,
    error::ExecutorResult,
    evm::{BlockEnvInput, ChainSpec},
    executor::{BlockExecutor, ExecutedBlock, SkipReason, TxSource},
    state::{AccountChange, CodeCache, StateReader},
};
use alloy_consensus::Transaction;
use alloy_primitives::{Address, KECCAK256_EMPTY, U256, map::HashMap};
use commit::{Committer, combine};
use parking_lot::Mutex;
use spec::{GroupInput, Outcome, PredictedSlot, PredictedSlots, Scratch};
use std::{
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Intrinsic minimum of any transaction (as in the sequential builder).
const MIN_TX_GAS: u64 = 21_000;

/// Tuning of the parallel executor.
#[derive(Clone, Debug)]
pub struct ParallelConfig {
    /// Largest number of candidates pulled into one window.
    pub max_window: usize,
    /// Windows with fewer candidates per worker than this run sequentially.
    pub min_txs_per_worker: usize,
    /// A window runs in parallel only if its lanes can be packed so that the heaviest worker
    /// carries at most this fraction of the window's gas.
    pub max_worker_share: f64,
    /// Ignore the dependency guess and deal transactions to workers round-robin. Always
    /// correct but slow; tests use it to make validation catch every dependency itself.
    pub round_robin: bool,
    /// Predict the balance of ERC-20 holders many transactions of a window pay, instead of
    /// serialising those payments (the prediction is checked, never trusted).
    pub predict_hot_credits: bool,
    /// Have each worker take over the back half of the next worker's group, as a worker
    /// done early does when its neighbour has much left. Always correct; tests use it to
    /// run the take-over on every window instead of when timing allows.
    pub split_groups: bool,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        Self {
            max_window: 4096,
            min_txs_per_worker: 4,
            max_worker_share: 0.8,
            round_robin: false,
            predict_hot_credits: true,
            split_groups: false,
        }
    }
}

/// What happened while building the last block, for metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionStats {
    /// Transactions included.
    pub transactions: usize,
    /// Candidates executed (included, skipped or discarded).
    pub candidates: usize,
    /// Windows the block was built in.
    pub windows: usize,
    /// Windows executed in parallel (the rest ran sequentially).
    pub parallel_windows: usize,
    /// Parallel windows whose speculative results all stood, so the workers' views were
    /// merged without replaying any transaction.
    pub merged_windows: usize,
    /// Lanes found in the parallel windows.
    pub lanes: usize,
    /// Speculative results that could not be used as they were (stale reads, the fee
    /// recipient read, a sender skipped under them).
    pub conflicts: usize,
    /// Transactions executed a second time.
    pub reexecutions: usize,
    /// Transactions a worker done with its own group took over from another's.
    pub taken_over: usize,
    /// Wall time of the whole block.
    pub elapsed: Duration,
    /// Time spent executing transactions, summed over workers.
    pub busy: Duration,
    /// Wall time spent splitting windows into lanes.
    pub plan_time: Duration,
    /// Wall time of the parallel windows' speculative execution.
    pub speculate_time: Duration,
    /// Wall time of the parallel windows' validation.
    pub validate_time: Duration,
    /// Wall time of the parallel windows' in-order commit.
    pub commit_time: Duration,
}

impl ExecutionStats {
    /// Busy time over wall time: how many workers were kept busy on average.
    pub fn speedup_estimate(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.busy.as_secs_f64() / self.elapsed.as_secs_f64()
        }
    }
}

/// Builds blocks on a fixed pool of worker threads, with exactly the sequential result.
#[derive(Debug)]
pub struct ParallelExecutor {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    /// Every worker can have a CPU of its own, so the calling thread may wait for them
    /// spinning (see `crew`).
    spin: bool,
    config: ParallelConfig,
    codes: CodeCache,
    layouts: layout::Layouts,
    /// Per account that several workers wrote many slots of in a recent window, how many
    /// (see [`ParallelExecutor::learn_slot_hints`]).
    slot_hints: Mutex<HashMap<Address, usize>>,
    /// Workers' buffers, reused block after block.
    scratch: Mutex<Vec<Scratch>>,
    last_stats: Mutex<ExecutionStats>,
}

impl ParallelExecutor {
    /// An executor with `threads` workers (at least one; one means sequential).
    pub fn new(threads: usize) -> Self {
        Self::with_config(threads, ParallelConfig::default())
    }

    /// An executor with `threads` workers and explicit tuning.
    pub fn with_config(threads: usize, config: ParallelConfig) -> Self {
        let threads = threads.max(1);
        // The calling thread is one of the workers, so the pool has one thread fewer: on a
        // machine with as many cores as workers, no thread is left spinning while the caller
        // does the in-order work. Without a pool (one worker, or threads could not be started)
        // every window runs sequentially, which is always correct.
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("lanes-exec-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            threads,
            pool,
            spin: threads <= cores,
            config,
            codes: CodeCache::default(),
            layouts: layout::Layouts::default(),
            slot_hints: Mutex::new(HashMap::default()),
            scratch: Mutex::new(Vec::new()),
            last_stats: Mutex::new(ExecutionStats::default()),
        }
    }

    /// Number of workers.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Statistics of the most recently built block.
    pub fn last_stats(&self) -> ExecutionStats {
        self.last_stats.lock().clone()
    }
}

impl Default for ParallelExecutor {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl BlockExecutor for ParallelExecutor {
    fn execute<R: StateReader>(
        &self,
        chain: &ChainSpec,
        env: &BlockEnvInput,
        state: R,
        source: &mut dyn TxSource,
    ) -> ExecutorResult<ExecutedBlock> {
        let started = Instant::now();
        let mut stats = ExecutionStats::default();
        let reader = state;
        let mut committer = Committer::new(&reader, self.codes.clone(), chain, env)?;
        // Another block being built concurrently keeps the buffers: then start afresh.
        let mut scratch = std::mem::take(&mut *self.scratch.lock());
        scratch.resize_with(2 * self.threads, Scratch::default);
        for s in &mut scratch {
            s.new_block = true;
        }
        let mut held: Option<Arc<RecoveredTx>> = None;
        let mut exhausted = false;
        let mut waited = Duration::ZERO;

        loop {
            let window = pull_window(
                &mut committer,
                env,
                source,
                &mut held,
                &mut exhausted,
                self.config.max_window,
            );
            if window.is_empty() {
                let full = committer.transactions.len() >= env.max_txs
                    || committer.gas_left() < MIN_TX_GAS;
                if exhausted && !full && held.is_none() {
                    // Everything offered so far has run: a streaming source may have more.
                    let waiting = Instant::now();
                    let more = source.wait_for_more();
                    waited += waiting.elapsed();
                    if more {
                        exhausted = false;
                        continue;
                    }
                }
                break;
            }
            stats.windows += 1;
            stats.candidates += window.len();
            if window[0].inner().is_deposit() {
                committer.run_serial(&window, source)?;
                continue;
            }
            self.run_window(
                &mut committer,
                &reader,
                window,
                source,
                &mut scratch,
                &mut stats,
            )?;
        }

        let base_fees =
            U256::from(env.base_fee) * U256::from(committer.gas_used - committer.deposit_gas);
        if let Some(vault) = chain.base_fee_recipient {
            let mut changes = std::mem::take(&mut committer.db.changes);
            changes.credit(committer.db.reader(), vault, base_fees)?;
            committer.db.changes = changes;
        }
        *self.scratch.lock() = scratch;
        stats.transactions = committer.transactions.len();
        stats.reexecutions = committer.reexecutions;
        // Time spent waiting for a streaming source is not execution.
        stats.elapsed = started.elapsed().saturating_sub(waited);
        *self.last_stats.lock() = stats;
        Ok(ExecutedBlock {
            env: env.clone(),
            transactions: committer.transactions,
            receipts: committer.receipts,
            changes: committer.db.into_changes(),
            gas_used: committer.gas_used,
            base_fees,
        })
    }
}

/// Pulls the next window of candidates, reporting candidates that do not fit exactly where
/// the sequential builder would. Every candidate in the window certainly fits: the window
/// holds no more gas limit than the gas left, and no more transactions than the room left.
fn pull_window<R: StateReader>(
    committer: &mut Committer<'_, R>,
    env: &BlockEnvInput,
    source: &mut dyn TxSource,
    held: &mut Option<Arc<RecoveredTx>>,
    exhausted: &mut bool,
    max_window: usize,
) -> Vec<Arc<RecoveredTx>> {
    let mut window: Vec<Arc<RecoveredTx>> = Vec::new();
    let mut window_of_deposits = false;
    let room = env.max_txs.saturating_sub(committer.transactions.len());
    let mut budget = committer.gas_left();
    while window.len() < room.min(max_window) && budget >= MIN_TX_GAS {
        let tx = match held.take() {
            Some(tx) => tx,
            None if *exhausted => break,
            None => match source.next_tx() {
                Some(tx) => tx,
                None => {
                    *exhausted = true;
                    break;
                }
            },
        };
        // Deposits run alone, in order, on the committed state (`Committer::run_serial`):
        // a window is either a run of deposits or holds none.
        if !window.is_empty() && tx.inner().is_deposit() != window_of_deposits {
            *held = Some(tx);
            break;
        }
        if committer.dropped.contains(&tx.signer()) && !tx.inner().is_deposit() {
            // Pulled before its sender was skipped: the source would not have offered it.
            continue;
        }
        if tx.gas_limit() > budget {
            if window.is_empty() {
                // The budget is the exact gas left here: the sequential verdict.
                committer.skip(source, &tx, SkipReason::DoesNotFit);
                continue;
            }
            // Whether it fits depends on the gas the window actually uses.
            *held = Some(tx);
            break;
        }
        budget -= tx.gas_limit();
        window_of_deposits = tx.inner().is_deposit();
        window.push(tx);
    }
    window
}

impl ParallelExecutor {
    fn run_window<R: StateReader>(
        &self,
        committer: &mut Committer<'_, R>,
        reader: &R,
        window: Vec<Arc<RecoveredTx>>,
        source: &mut dyn TxSource,
        scratch: &mut [Scratch],
        stats: &mut ExecutionStats,
    ) -> ExecutorResult<()> {
        let serial = |committer: &mut Committer<'_, R>,
                      source: &mut dyn TxSource,
                      stats: &mut ExecutionStats| {
            let started = Instant::now();
            let result = committer.run_serial(&window, source);
            stats.busy += started.elapsed();
            result
        };
        let Some(pool) = &self.pool else {
            return serial(committer, source, stats);
        };
        if window.len() < self.threads * self.config.min_txs_per_worker {
            return serial(committer, source, stats);
        }
        let planning = Instant::now();
        // A chain of one sender's transactions shows in the cheapest step of planning: it
        // runs sequentially without waking the workers, whose wake-up costs the caller's CPU
        // (the workers are called in only once a parallel run is still likely).
        let senders = if self.config.round_robin {
            None
        } else {
            match plan::senders(&window, self.config.max_worker_share) {
                Some(senders) => Some(senders),
                None => {
                    stats.plan_time += planning.elapsed();
                    return serial(committer, source, stats);
                }
            }
        };
        let muster = crew::Muster::call(pool, self.threads - 1);
        let plan = {
            let db = &mut committer.db;
            match senders {
                None => Some(plan::round_robin(&window, self.threads)),
                Some(senders) => {
                    let predict = self.config.predict_hot_credits;
                    plan::plan(
                        &window,
                        senders,
                        self.threads,
                        // A lookup failure is not an error here: it only weakens the guess.
                        |address| {
                            db.account(address)
                                .ok()
                                .flatten()
                                .is_some_and(|a| a.code_hash != KECCAK256_EMPTY)
                        },
                        |token| predict && self.layouts.predictable(token),
                    )
                }
            }
        };
        stats.plan_time += planning.elapsed();
        // A window that runs sequentially lets the mustered workers go first: left spinning
        // until it ends, they would hold their CPUs to the end of their spin limit, which the
        // node's other work (the previous block's commit and state root, the RPC) can use.
        let Some(plan) = plan else {
            drop(muster);
            return serial(committer, source, stats);
        };
        let limit = self.config.max_worker_share * plan.total_weight as f64;
        if plan.groups.len() < 2 || plan.max_group_weight as f64 > limit {
            drop(muster);
            return serial(committer, source, stats);
        }
        stats.parallel_windows += 1;
        stats.lanes += plan.lanes;
        self.layouts.tick();

        // Where each hot holder's balance may live, with its value before the window.
        let mut predicted_slots = PredictedSlots::default();
        for (h, hot) in plan.hot.iter().enumerate() {
            for layout in self.layouts.candidates(hot.token) {
                let slot = layout.slot(hot.holder);
                let base = revm::Database::storage(&mut committer.db, hot.token, slot)?;
                predicted_slots.insert(
                    hot.token,
                    slot,
                    PredictedSlot {
                        hot: h as u32,
                        base,
                        layout,
                    },
                );
            }
        }

        // Execute every group speculatively.
        let block_env = committer.env.block_env();
        let slot_hints = self.slot_hints.lock().clone();
        let input = GroupInput {
            chain: committer.chain,
            block_env: &block_env,
            beneficiary: committer.env.beneficiary,
            reader,
            committed: &committer.db.changes,
            predicted_slots: &predicted_slots,
            predictions: &plan.predictions,
            slot_hints: &slot_hints,
            window_len: window.len(),
        };
        let groups: Vec<Vec<(u32, &Arc<RecoveredTx>)>> = plan
            .groups
            .iter()
            .map(|g| g.iter().map(|&i| (i, &window[i as usize])).collect())
            .collect();
        let claims: Vec<crew::Claim> = groups.iter().map(|g| crew::Claim::new(g.len())).collect();
        let speculation = Groups {
            input: &input,
            groups: &groups,
            claims: &claims,
            splits: &plan.splits,
            split_all: self.config.split_groups,
            epoch: Instant::now(),
        };
        // Each worker has its buffers and a spare for a group's tail it may take over.
        let n = groups.len();
        let (primaries, spares) = scratch[..2 * n].split_at_mut(n);
        for spare in spares.iter_mut() {
            spare.taken = false;
        }
        let phase = Instant::now();
        let finish = crew::Finish::default();
        pool.in_place_scope(|scope| {
            let mut workers = primaries.iter_mut().zip(spares.iter_mut()).enumerate();
            let (_, (own, own_spare)) = workers.next().expect("two groups or more");
            for (w, (output, spare)) in workers {
                let (speculation, finish) = (&speculation, &finish);
                scope.spawn(move |_| {
                    speculation.work(w, output, spare);
                    finish.done();
                });
            }
            let present = muster.present();
            drop(muster);
            if !present {
                crew::hand_over();
            }
            speculation.work(0, own, own_spare);
            finish.wait(n - 1, self.spin);
        });
        drop(groups);
        // The taken-over tails are views of their own, validated and merged like the others:
        // they are moved up behind the groups' views.
        let mut view_count = n;
        for k in n..2 * n {
            if scratch[k].taken {
                stats.taken_over += scratch[k].records.len();
                scratch.swap(view_count, k);
                view_count += 1;
            }
        }
        let outputs = &mut scratch[..view_count];
        stats.busy += outputs.iter().map(|o| o.busy).sum::<Duration>();
        stats.speculate_time += phase.elapsed();
        let phase = Instant::now();

        // Each worker but the first combines the accounts it shares with an earlier worker.
        // The first shares none: it replays the accesses to predicted slots instead, and
        // combines the views of taken-over tails, which are short. Then all of them look for
        // the transactions whose reads another worker changed first (`StaleScan`).
        let views: Vec<&Scratch> = outputs.iter().collect();
        let workers = views.len();
        let mut combined_by: Vec<Vec<(Address, Option<AccountChange>)>> = vec![Vec::new(); workers];
        let mut predictions = (u32::MAX, HashMap::default());
        let committed = &committer.db.changes;
        let scan = StaleScan::new(&views);
        let muster = crew::Muster::call(pool, n - 1);
        let mut reporter = None;
        let finish = crew::Finish::default();
        pool.in_place_scope(|scope| {
            let (views, scan) = (&views, &scan);
            let predicted = &predicted_slots;
            let finish = &finish;
            let (_, others) = combined_by.split_first_mut().expect("two groups or more");
            let (others, tails) = others.split_at_mut(n - 1);
            for (w, combined) in others.iter_mut().enumerate() {
                let w = w + 1;
                scope.spawn(move |_| {
                    *combined = combine_shared(views, w, committed, reader, predicted);
                    scan.run(views);
                    finish.done();
                });
            }
            drop(muster);
            // Called after the jobs above, so the first worker to finish waits for the
            // commit's report job instead of going to sleep.
            reporter = Some(crew::Muster::call(pool, 1));
            // Every access to a predicted slot is replayed in block order, value by value.
            if !predicted_slots.is_empty() {
                predictions = self.check_predictions(&plan, &predicted_slots, views);
            }
            for (k, combined) in tails.iter_mut().enumerate() {
                *combined = combine_shared(views, n + k, committed, reader, predicted);
            }
            scan.run(views);
            finish.wait(n - 1, self.spin);
        });
        let (pred_stale, predicted_finals) = predictions;
        drop(views);
        let outputs = &mut scratch[..workers];

        let first_stale = pred_stale.min(scan.first());
        let mut combined: Vec<(Address, Option<AccountChange>)> =
            combined_by.into_iter().flatten().collect();
        // Each shared account was combined once, by the second view holding it.
        self.learn_slot_hints(&combined);
        // A predicted slot several workers wrote ends at the value the replay found.
        for (address, change) in &mut combined {
            if let Some(change) = change {
                for ((contract, slot), last) in &predicted_finals {
                    if contract == address && change.storage.contains_key(slot) {
                        change.storage.insert(*slot, *last);
                    }
                }
            }
        }

        stats.validate_time += phase.elapsed();
        let phase = Instant::now();
        let speculation = Speculation {
            outputs,
            first_stale,
            combined,
            reporter,
            spin: self.spin,
        };
        let committed = commit_window(pool, committer, window, speculation, source, stats);
        stats.commit_time += phase.elapsed();
        committed
    }
}

/// A window's groups, as the workers execute them.
struct Groups<'a, R> {
    input: &'a GroupInput<'a, R>,
    /// Per worker, its transactions in block order.
    groups: &'a [Vec<(u32, &'a Arc<RecoveredTx>)>],
    /// Per group, the positions its owner has not started (see [`crew::Claim`]).
    claims: &'a [crew::Claim],
    /// Per group, where its tail may be taken over (see [`plan::Plan::splits`]).
    splits: &'a [Vec<u32>],
    /// [`ParallelConfig::split_groups`].
    split_all: bool,
    /// When the speculation began (the claims' clock).
    epoch: Instant,
}

impl<R: StateReader> Groups<'_, R> {
    /// Worker `w`'s share: its own group, then, if another group still has many
    /// transactions not started, the back part of them on a spare view: as much as makes
    /// both end together at the pace each went so far (on this VM, one CPU was seen running
    /// a third slower than the other, block after block).
    fn work(&self, w: usize, own: &mut Scratch, spare: &mut Scratch) {
        let n = self.groups.len();
        let next = (w + 1) % n;
        let forced = self
            .split_all
            .then(|| self.claims[next].steal(&self.splits[next], 2, 0.5))
            .flatten()
            .map(|range| (next, range));
        self.claims[w].begin(self.epoch.elapsed());
        spec::run_group(self.input, own, &self.groups[w], Some(&self.claims[w]));
        let taken = forced.or_else(|| {
            let (v, _) = (0..n)
                .filter(|&v| v != w)
                .map(|v| (v, self.claims[v].left()))
                .max_by_key(|&(_, left)| left)?;
            let own_pace = (!own.records.is_empty())
                .then(|| own.busy.as_nanos() as f64 / own.records.len() as f64);
            let share = match (self.claims[v].pace(self.epoch.elapsed()), own_pace) {
                (Some(theirs), Some(mine)) => theirs / (theirs + mine),
                _ => 0.5,
            };
            let range = self.claims[v].steal(&self.splits[v], crew::MIN_STEAL, share)?;
            Some((v, range))
        });
        if let Some((v, range)) = taken {
            let txs = &self.groups[v][range.start as usize..range.end as usize];
            spec::run_taken(self.input, own, spare, txs);
        }
    }
}

/// The speculative results of a window, validated.
struct Speculation<'a> {
    /// Per worker.
    outputs: &'a mut [Scratch],
    /// The first window index whose result cannot be trusted as is.
    first_stale: u32,
    /// The accounts more than one worker changed, with their combined change (`None` if
    /// the changes do not combine exactly).
    combined: Vec<(Address, Option<AccountChange>)>,
    /// A worker waiting to report the receipts if the views merge.
    reporter: Option<crew::Muster>,
    /// The calling thread may wait for workers spinning.
    spin: bool,
}

/// Commits a window in block order: merges the workers' views if every result stands,
/// otherwise replays up to the first stale result and checks or re-executes the rest.
fn commit_window<R: StateReader>(
    pool: &rayon::ThreadPool,
    committer: &mut Committer<'_, R>,
    window: Vec<Arc<RecoveredTx>>,
    speculation: Speculation<'_>,
    source: &mut dyn TxSource,
    stats: &mut ExecutionStats,
) -> ExecutorResult<()> {
    let Speculation {
        outputs,
        first_stale,
        combined,
        reporter,
        spin,
    } = speculation;
    // Records in block order: (worker, position in the worker's records).
    let mut order: Vec<(u32, u32)> = vec![(u32::MAX, 0); window.len()];
    for (w, output) in outputs.iter().enumerate() {
        for (k, record) in output.records.iter().enumerate() {
            order[record.idx as usize] = (w as u32, k as u32);
        }
    }

    let merges = first_stale == u32::MAX
        && outputs.iter().all(|o| o.all_included)
        && combined.iter().all(|(_, change)| change.is_some());
    if merges {
        // Every result stands, every transaction is included and the views merge: the
        // receipts are put in block order on a worker while this thread merges the views.
        // No sender in the window was dropped: `pull_window` leaves out earlier windows'
        // skipped senders, and nothing in this one was skipped.
        let combined = combined
            .into_iter()
            .filter_map(|(address, change)| Some((address, change?)))
            .collect();
        let crew = (reporter, spin);
        merge_and_report(pool, committer, window, &order, outputs, combined, crew)?;
        stats.merged_windows += 1;
        return Ok(());
    }
    drop(reporter);

    // Where speculation stops being usable as is: the first stale result, or the first
    // candidate that turns out never offered (its sender skipped earlier in the window)
    // yet changed its worker's view.
    let mut cut = (first_stale as usize).min(window.len());
    {
        let mut dropped = committer.dropped.clone();
        for (i, tx) in window.iter().enumerate().take(cut) {
            let (w, k) = order[i];
            let record = &outputs[w as usize].records[k as usize];
            if dropped.contains(&tx.signer()) {
                if record.has_effects() {
                    cut = i;
                    break;
                }
            } else if matches!(record.outcome, Outcome::Invalid(_)) {
                dropped.insert(tx.signer());
            }
        }
    }

    // Outcomes are moved out; the records stay with the workers' buffers.
    let take = |outputs: &mut [Scratch], i: usize| {
        let (w, k) = order[i];
        let record = &mut outputs[w as usize].records[k as usize];
        (
            w as usize,
            k as usize,
            std::mem::replace(&mut record.outcome, Outcome::Failed),
        )
    };

    committer.receipts.reserve(window.len());
    committer.transactions.reserve(window.len());
    if cut == window.len() && committer.try_merge(outputs, combined)? {
        // Every result stands and the views merged: just report, in order.
        let mut rewards = Vec::with_capacity(window.len());
        for (i, tx) in window.iter().enumerate() {
            let (_, _, outcome) = take(outputs, i);
            if committer.dropped.contains(&tx.signer()) {
                continue;
            }
            match outcome {
                Outcome::Included(included) => {
                    rewards.push(included.reward);
                    committer.include(tx, included.gas_used, included.receipt);
                }
                Outcome::Invalid(why) => committer.skip(source, tx, SkipReason::Invalid(why)),
                Outcome::Failed => unreachable!("a failed result is never valid"),
            }
        }
        committer.pay_rewards(rewards)?;
        stats.merged_windows += 1;
        return Ok(());
    }

    // Replay up to the cut from the recorded writes, then check each result against the
    // committed state and execute again what moved.
    for (i, tx) in window.iter().enumerate() {
        let (w, k, outcome) = take(outputs, i);
        if committer.dropped.contains(&tx.signer()) {
            continue;
        }
        let scratch = &outputs[w];
        let record = &scratch.records[k];
        let usable = i < cut
            || (!record.needs_exact && committer.reads_current(scratch.reads_of(record))?);
        if !usable {
            stats.conflicts += 1;
            committer.reexecute(tx, source)?;
            continue;
        }
        match outcome {
            Outcome::Included(included) => {
                if !committer.commit_recorded(tx, scratch, record, included)? {
                    stats.conflicts += 1;
                    committer.reexecute(tx, source)?;
                }
            }
            Outcome::Invalid(why) => committer.skip(source, tx, SkipReason::Invalid(why)),
            Outcome::Failed => {
                stats.conflicts += 1;
                committer.reexecute(tx, source)?;
            }
        }
    }
    Ok(())
}

/// Commits a window whose every transaction is included with the result it speculated:
/// one worker reports the receipts in block order while the calling thread merges the
/// views into the committed state.
fn merge_and_report<R: StateReader>(
    pool: &rayon::ThreadPool,
    committer: &mut Committer<'_, R>,
    window: Vec<Arc<RecoveredTx>>,
    order: &[(u32, u32)],
    outputs: &mut [Scratch],
    combined: Vec<(Address, AccountChange)>,
    (reporter, spin): (Option<crew::Muster>, bool),
) -> ExecutorResult<()> {
    let mut records: Vec<&mut Vec<spec::TxRecord>> = Vec::with_capacity(outputs.len());
    let mut views: Vec<&mut crate::state::StateChanges> = Vec::with_capacity(outputs.len());
    for output in outputs.iter_mut() {
        records.push(&mut output.records);
        views.push(&mut output.local);
    }
    let Committer {
        db,
        transactions,
        receipts,
        gas_used,
        ..
    } = committer;
    receipts.reserve(window.len());
    transactions.reserve(window.len());
    let mut rewards = Vec::with_capacity(window.len());
    let finish = crew::Finish::default();
    pool.in_place_scope(|scope| {
        let (rewards, finish) = (&mut rewards, &finish);
        scope.spawn(move |_| {
            // The transactions are moved, not cloned: a clone's count update would pull
            // each one's cache line from the core that pulled it into the window.
            for (tx, &(w, k)) in window.into_iter().zip(order) {
                let record = &mut records[w as usize][k as usize];
                let Outcome::Included(included) =
                    std::mem::replace(&mut record.outcome, Outcome::Failed)
                else {
                    unreachable!("every outcome of a reported window is an inclusion");
                };
                commit::include(
                    transactions,
                    receipts,
                    gas_used,
                    tx,
                    included.gas_used,
                    included.receipt,
                );
                rewards.push(included.reward);
            }
            finish.done();
        });
        drop(reporter);
        commit::merge_views(&mut db.changes, &mut views, combined);
        finish.wait(1, spin);
    });
    committer.pay_rewards(rewards)
}

/// A shared account whose combined change has this many slots gets a hint.
const HINT_MIN_SLOTS: usize = 256;
/// Hints kept at most; past it they are dropped wholesale.
const HINT_MAX_ACCOUNTS: usize = 64;
/// Largest hint, so that one huge window cannot make every later one reserve as much.
const HINT_MAX_SLOTS: usize = 1 << 16;

impl ParallelExecutor {
    /// Remembers the accounts several workers wrote many slots of, with how many, so that
    /// the next windows' workers size those slot tables once instead of growing them.
    fn learn_slot_hints(&self, combined: &[(Address, Option<AccountChange>)]) {
        let mut hints = self.slot_hints.lock();
        for (address, change) in combined {
            let Some(change) = change else { continue };
            if change.storage.len() < HINT_MIN_SLOTS {
                continue;
            }
            if hints.len() >= HINT_MAX_ACCOUNTS && !hints.contains_key(address) {
                hints.clear();
            }
            hints.insert(*address, change.storage.len().min(HINT_MAX_SLOTS));
        }
    }

    /// Checks every access to predicted slots in block order: each must have read what the
    /// accesses before it left (starting from the value before the window). Returns the
    /// first window index that did not, and the value each slot is left with. Learns the
    /// layout of tokens whose predictions held, and backs off from tokens whose did not.
    fn check_predictions(
        &self,
        plan: &plan::Plan,
        predicted_slots: &PredictedSlots,
        outputs: &[&Scratch],
    ) -> (u32, HashMap<(Address, U256), U256>) {
        // Accesses per slot, and the slots accessed in (contract, slot) order, as the layouts
        // learn from them.
        let mut counts = vec![0u32; predicted_slots.len()];
        for delta in outputs.iter().flat_map(|o| &o.slot_deltas) {
            counts[delta.slot as usize] += 1;
        }
        let mut order: Vec<u32> = (0..predicted_slots.len() as u32)
            .filter(|&i| counts[i as usize] > 0)
            .collect();
        order.sort_unstable_by_key(|&i| predicted_slots.nth(i).0);
        if credits_chain(plan, predicted_slots, outputs, &counts) {
            let mut finals = HashMap::default();
            for number in order {
                let &(key, predicted) = predicted_slots.nth(number);
                let hot = &plan.hot[predicted.hot as usize];
                if hot.txs.iter().any(|(_, amount)| !amount.is_zero()) {
                    self.layouts.confirm(key.0, predicted.layout);
                }
                finals.insert(key, predicted.base.wrapping_add(hot.total));
            }
            return (u32::MAX, finals);
        }
        // Grouped by slot (a counting sort on the slot's number); within a slot, each
        // worker's accesses are already in block order, so a stable sort only merges runs.
        let mut starts = vec![0usize; predicted_slots.len() + 1];
        for (i, &count) in counts.iter().enumerate() {
            starts[i + 1] = starts[i] + count as usize;
        }
        let mut deltas: Vec<Option<spec::SlotDelta>> = vec![None; starts[starts.len() - 1]];
        let mut next = starts.clone();
        for delta in outputs.iter().flat_map(|o| &o.slot_deltas) {
            deltas[next[delta.slot as usize]] = Some(*delta);
            next[delta.slot as usize] += 1;
        }
        let mut deltas: Vec<spec::SlotDelta> = deltas.into_iter().flatten().collect();
        let mut stale = u32::MAX;
        let mut finals = HashMap::default();
        for number in order {
            let (start, end) = (starts[number as usize], starts[number as usize + 1]);
            let accesses = &mut deltas[start..end];
            accesses.sort_by_key(|d| d.idx);
            let &(key, predicted) = predicted_slots.nth(number);
            let mut value = predicted.base;
            let mut held = true;
            let mut confirmed = false;
            for delta in accesses.iter() {
                if delta.read != value {
                    stale = stale.min(delta.idx);
                    held = false;
                    break;
                }
                let credited = plan.predictions[delta.idx as usize]
                    .filter(|p| p.hot == predicted.hot)
                    .map(|p| p.amount);
                confirmed |= credited
                    .is_some_and(|a| !a.is_zero() && delta.written.wrapping_sub(delta.read) == a);
                value = delta.written;
            }
            let token = key.0;
            if !held {
                self.layouts.reject(token);
            } else if confirmed {
                self.layouts.confirm(token, predicted.layout);
            }
            finals.insert(key, value);
        }
        (stale, finals)
    }
}

/// True if every access to a predicted slot is a predicted credit that read its prediction
/// and added exactly its amount, once per transaction, and each accessed slot saw all of
/// its hot credit's transactions (`counts`: accesses per slot). Those accesses chain by
/// construction: each read the value before the window plus the earlier credits, which is
/// what the previous credit left, so the slot ends at that value plus every credit and the
/// replay can be skipped. False sends the window through the replay.
fn credits_chain(
    plan: &plan::Plan,
    predicted_slots: &PredictedSlots,
    outputs: &[&Scratch],
    counts: &[u32],
) -> bool {
    let mut last = vec![u32::MAX; predicted_slots.len()];
    for output in outputs {
        // A worker's accesses come in block order, a transaction's together.
        for delta in &output.slot_deltas {
            let number = delta.slot as usize;
            let (_, predicted) = predicted_slots.nth(delta.slot);
            let Some(credit) = plan.predictions[delta.idx as usize] else {
                return false;
            };
            if credit.hot != predicted.hot
                || delta.read != predicted.base.wrapping_add(credit.prefix)
                || delta.written != delta.read.wrapping_add(credit.amount)
                || last[number] == delta.idx
            {
                return false;
            }
            last[number] = delta.idx;
        }
    }
    counts.iter().enumerate().all(|(i, &count)| {
        let hot = predicted_slots.nth(i as u32).1.hot as usize;
        count == 0 || count as usize == plan.hot[hot].txs.len()
    })
}

/// The accounts in worker `w`'s view that exactly one earlier worker's view has too (so each
/// shared account is combined once), with how their changes combine (`None` if they do not
/// combine exactly).
fn combine_shared<R: StateReader>(
    outputs: &[&Scratch],
    w: usize,
    committed: &crate::state::StateChanges,
    reader: &R,
    predicted: &PredictedSlots,
) -> Vec<(Address, Option<AccountChange>)> {
    outputs[w]
        .local
        .accounts
        .keys()
        // Combined by the second view holding it only: the combination reads every view,
        // and for a contract every worker calls it copies the largest slot table.
        .filter(|address| {
            outputs[..w]
                .iter()
                .filter(|o| o.local.accounts.contains_key(*address))
                .take(2)
                .count()
                == 1
        })
        .map(|address| {
            // The account before the window: a failed read only makes the window take the
            // replay path, which reads it again.
            let start = match committed.account(address) {
                Some(info) => Ok(info),
                None => reader.account(*address),
            };
            let change = start
                .ok()
                .and_then(|start| combine(outputs, *address, start, predicted));
            (*address, change)
        })
        .collect()
}

/// The search for a window's first stale transaction, in chunks of records that the
/// validating threads claim once their own job is done: the answer is a minimum, so any
/// split of the records gives it, and the threads end together however their jobs and CPUs
/// differ.
struct StaleScan {
    /// Per view, the first transaction whose changes it holds.
    starts: Vec<u32>,
    /// The chunks: a view, and a range of its records.
    chunks: Vec<(usize, Range<usize>)>,
    /// The next chunk not claimed.
    next: AtomicUsize,
    /// The first stale transaction found so far.
    found: AtomicU32,
}

impl StaleScan {
    /// Records per chunk: a few microseconds of lookups, so a claim costs nothing beside it
    /// and the threads end within a chunk of each other.
    const CHUNK: usize = 32;

    fn new(views: &[&Scratch]) -> Self {
        // A view's changes are all made by its first transaction or later ones: a taken-over
        // tail's view is only looked up for the reads of transactions after its start.
        let starts = views
            .iter()
            .map(|o| o.records.first().map_or(u32::MAX, |r| r.idx))
            .collect();
        let chunks = views
            .iter()
            .enumerate()
            .flat_map(|(v, view)| {
                let len = view.records.len();
                (0..len)
                    .step_by(Self::CHUNK)
                    .map(move |start| (v, start..(start + Self::CHUNK).min(len)))
            })
            .collect();
        Self {
            starts,
            chunks,
            next: AtomicUsize::new(0),
            found: AtomicU32::new(u32::MAX),
        }
    }

    /// Checks chunks until none is left.
    fn run(&self, views: &[&Scratch]) {
        while let Some((v, range)) = self.chunks.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let records = &views[*v].records[range.clone()];
            // A chunk that starts after a stale transaction found already cannot lower it.
            if records[0].idx >= self.found.load(Ordering::Relaxed) {
                continue;
            }
            let stale = first_stale_in(views, *v, records, &self.starts);
            self.found.fetch_min(stale, Ordering::Relaxed);
        }
    }

    /// The first stale transaction, once every chunk was checked.
    fn first(&self) -> u32 {
        self.found.load(Ordering::Relaxed)
    }
}

/// The first of `records` (of view `w`) whose speculative result cannot be trusted: it
/// needs exact execution, or another view changed (or credited, unless it only credits too)
/// a location it read before it ran.
fn first_stale_in(
    outputs: &[&Scratch],
    w: usize,
    records: &[spec::TxRecord],
    starts: &[u32],
) -> u32 {
    let output = &outputs[w];
    debug_assert_eq!(output.read_keys.len(), output.reads.len(), "a key per read");
    for record in records {
        if record.needs_exact {
            return record.idx;
        }
        let reads = &output.read_keys[record.reads.start as usize..record.reads.end as usize];
        for &spec::ReadKey {
            loc,
            tolerates_credits: credit_only,
        } in reads
        {
            for (v, other) in outputs.iter().enumerate() {
                if v == w || record.idx <= starts[v] {
                    continue;
                }
                if let Some(first) = other.first_writes.get(&loc)
                    && (first.write < record.idx || (!credit_only && first.credit < record.idx))
                {
                    return record.idx;
                }
            }
        }
    }
    u32::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(slots: usize) -> Option<AccountChange> {
        let mut change = AccountChange::default();
        for i in 0..slots {
            change.storage.insert(U256::from(i), U256::from(1));
        }
        Some(change)
    }

    #[test]
    fn slot_hints_keep_only_many_slots_and_stay_bounded() {
        let executor = ParallelExecutor::new(2);
        let (big, small, failed) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        executor.learn_slot_hints(&[
            (big, change(HINT_MIN_SLOTS)),
            (small, change(HINT_MIN_SLOTS - 1)),
            (failed, None),
        ]);
        let hints = executor.slot_hints.lock().clone();
        assert_eq!(hints.len(), 1);
        assert_eq!(hints[&big], HINT_MIN_SLOTS);

        // A later window overwrites; past the bound the table starts afresh.
        executor.learn_slot_hints(&[(big, change(HINT_MIN_SLOTS + 1))]);
        assert_eq!(executor.slot_hints.lock()[&big], HINT_MIN_SLOTS + 1);
        for i in 0..HINT_MAX_ACCOUNTS {
            let address = Address::with_last_byte(i as u8).create(0);
            executor.learn_slot_hints(&[(address, change(HINT_MIN_SLOTS))]);
        }
        let hints = executor.slot_hints.lock();
        assert!(hints.len() <= HINT_MAX_ACCOUNTS);
        assert!(!hints.contains_key(&big));
    }
}
