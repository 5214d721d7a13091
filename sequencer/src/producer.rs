//! Block production as a two-stage pipeline, each stage a task that owns its state:
//!
//! 1. the **producer**, every `block_time`: opens a block on top of the last *executed* block
//!    (committed state plus the blocks still in flight), puts the L1 deposits waiting in its
//!    [`DepositSource`] first, in L1 order, then executes the pool's transactions in
//!    fee order, and keeps taking new arrivals until 60% of the block time has passed (so a
//!    transaction waits for the next seal, not the next block start, and execution overlaps
//!    intake). It then seals the block's transaction list, updates the pool, and hands the
//!    executed block on; a block that got nothing is dropped unless an empty block is due;
//! 2. the **committer**, strictly in block order: computes the state root, seals the header
//!    (parent hash, state root), commits the block's data (header, transactions, receipts,
//!    state diff) in one atomic RocksDB write, publishes it (RPC head, receipts,
//!    subscriptions; its state is read from memory meanwhile), and then writes its state
//!    (flat state and tries) before the next block's root, which builds on them.
//!
//! So block N+1 executes while block N is rooted and committed. The channel between them is
//! bounded: a slow disk slows production instead of piling up unsaved blocks. A failed
//! commit stops the pipeline; nothing after the failed block is committed.

use crate::{
    chain::Chain,
    deposits::DepositSource,
    mempool::{AccountState, BestTransactions},
    metrics::SequencerMetrics,
    pool::{TxPool, next_base_fee},
};
use alloy_consensus::Header;
use alloy_primitives::{
    Address, B256, keccak256,
    map::{AddressMap, HashSet},
};
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ExecutedBlock, ExecutorError, RecoveredTx, SkipReason,
    StateChanges, StateReader, StoredAccount, TxSource,
};
use lanes_monitoring::Health;
use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// How many executed blocks may wait for the committer before the producer waits.
const PIPELINE_DEPTH: usize = 2;

/// The executor the node runs, chosen by `executor.mode`.
#[derive(Debug)]
pub enum NodeExecutor {
    /// One transaction after another (the reference).
    Sequential(lanes_executor::SequentialExecutor),
    /// Lanes on a worker pool with exactly the sequential result.
    Parallel(Box<lanes_executor::ParallelExecutor>),
}

impl NodeExecutor {
    /// Statistics of the last block, when the executor keeps any.
    pub fn last_stats(&self) -> Option<lanes_executor::ExecutionStats> {
        match self {
            Self::Sequential(_) => None,
            Self::Parallel(executor) => Some(executor.last_stats()),
        }
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        match self {
            Self::Sequential(_) => 1,
            Self::Parallel(executor) => executor.threads(),
        }
    }
}

impl BlockExecutor for NodeExecutor {
    fn execute<R: StateReader>(
        &self,
        chain: &lanes_executor::ChainSpec,
        env: &BlockEnvInput,
        state: R,
        source: &mut dyn TxSource,
    ) -> Result<ExecutedBlock, ExecutorError> {
        match self {
            Self::Sequential(executor) => executor.execute(chain, env, state, source),
            Self::Parallel(executor) => executor.execute(chain, env, state, source),
        }
    }
}

/// Block production settings (mapped from `sequencer.*` config).
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Target time between blocks.
    pub block_time: Duration,
    /// Produce an empty block when none was produced for this long (`None`: never).
    pub empty_block_interval: Option<Duration>,
    /// Receives priority fees.
    pub fee_recipient: Address,
    /// Upper bound on transactions per block.
    pub max_block_txs: usize,
}

/// Outside controls on block production: the batcher's backpressure and the admin pause.
#[derive(Clone, Debug)]
pub struct ProducerControls {
    /// `true` while the batcher's unposted backlog is over its limit: blocks shrink to a
    /// quarter of `max_block_txs` and no empty blocks are made, so the backlog stops growing
    /// at full speed while L1 catches up.
    pub throttle: watch::Receiver<bool>,
    /// `true` while block production is paused (`admin_stopSequencer`).
    pub paused: watch::Receiver<bool>,
    /// Set by the producer to the committed head once it has paused with nothing in flight,
    /// `None` while it runs.
    pub paused_at: Arc<watch::Sender<Option<u64>>>,
    /// `lanes_sequencer_backpressure_blocks_total`, when registered.
    pub throttled_blocks: Option<prometheus::IntCounter>,
}

impl Default for ProducerControls {
    fn default() -> Self {
        Self {
            throttle: watch::channel(false).1,
            paused: watch::channel(false).1,
            paused_at: Arc::new(watch::channel(None).0),
            throttled_blocks: None,
        }
    }
}

/// How often an open block looks for new arrivals once it has run everything it had.
const STREAM_POLL: Duration = Duration::from_millis(2);

/// Feeds the executor the block's deposits, then the pool: a snapshot at the block's start,
/// then, until the block's deadline, whatever becomes ready meanwhile. A transaction that
/// arrives while a block is open joins it, so it waits for the next seal rather than the
/// next block start. Deposits are offered whatever the time: they were chosen to fit, and
/// every node must see them in the block the sequencer says.
struct PoolSource {
    deposits: VecDeque<Arc<RecoveredTx>>,
    best: BestTransactions,
    pool: Arc<TxPool>,
    deadline: Instant,
    invalid: Vec<(B256, Address, String)>,
    /// Time spent waiting for arrivals.
    waited: Duration,
    /// Per sender, the nonce after the last one offered: a later snapshot starts there.
    offered: AddressMap<u64>,
    /// Senders skipped in this block: none of their transactions is offered again.
    dropped: HashSet<Address>,
    /// The batcher's backpressure and the block size it allows: a block opened before the
    /// backlog went over its limit stops taking transactions at that size.
    throttle: Option<(watch::Receiver<bool>, usize)>,
    /// Pool transactions offered so far.
    offered_count: usize,
}

impl PoolSource {
    fn new(
        deposits: VecDeque<Arc<RecoveredTx>>,
        pool: Arc<TxPool>,
        base_fee: u64,
        deadline: Instant,
    ) -> Self {
        let best = pool.lock().take_best(base_fee);
        Self {
            deposits,
            best,
            pool,
            deadline,
            invalid: Vec::new(),
            waited: Duration::ZERO,
            offered: AddressMap::default(),
            dropped: HashSet::default(),
            throttle: None,
            offered_count: 0,
        }
    }

    /// Follows the batcher's backpressure: while it is on, take at most `cap` transactions.
    fn with_throttle(mut self, throttle: watch::Receiver<bool>, cap: usize) -> Self {
        self.throttle = Some((throttle, cap));
        self
    }

    fn throttled(&self) -> bool {
        self.throttle
            .as_ref()
            .is_some_and(|(on, cap)| self.offered_count >= *cap && *on.borrow())
    }
}

impl TxSource for PoolSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        if let Some(deposit) = self.deposits.pop_front() {
            return Some(deposit);
        }
        if Instant::now() >= self.deadline || self.throttled() {
            return None;
        }
        let tx = self.best.next()?;
        self.offered.insert(tx.sender, tx.nonce + 1);
        self.offered_count += 1;
        Some(tx.tx)
    }

    fn wait_for_more(&mut self) -> bool {
        // Called once `best` is drained (or the deadline passed), so `offered` holds every
        // sender's next nonce and a fresh snapshot cannot offer a transaction twice.
        loop {
            let now = Instant::now();
            if now >= self.deadline || self.throttled() {
                return false;
            }
            let mut pool = self.pool.lock();
            if pool.has_fresh() {
                let base_fee = self.best.base_fee();
                let (offered, dropped) = (&self.offered, &self.dropped);
                self.best = pool.take_fresh(base_fee, |sender| {
                    (!dropped.contains(sender)).then(|| offered.get(sender).copied().unwrap_or(0))
                });
                return true;
            }
            drop(pool);
            let nap = STREAM_POLL.min(self.deadline - now);
            std::thread::sleep(nap);
            self.waited += nap;
        }
    }

    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        if tx.inner().is_deposit() {
            // Never invalid; chosen to fit the block, so this is not expected. It stays
            // queued for the next block.
            warn!(target: "lanes::producer", hash = %tx.inner().tx_hash(), ?reason, "deposit left out of the block");
            return;
        }
        self.best.mark_invalid(tx.signer());
        self.dropped.insert(tx.signer());
        if let SkipReason::Invalid(why) = reason {
            self.invalid.push((*tx.inner().tx_hash(), tx.signer(), why));
        }
    }
}

/// What the next block builds on: the last executed block (maybe not committed yet).
#[derive(Clone, Debug)]
struct Tip {
    number: u64,
    timestamp: u64,
    gas_limit: u64,
    header_for_fee: Header,
    prevrandao: B256,
}

impl Tip {
    fn of(header: &Header) -> Self {
        Self {
            number: header.number,
            timestamp: header.timestamp,
            gas_limit: header.gas_limit,
            header_for_fee: fee_header(header.gas_used, header.gas_limit, header.base_fee_per_gas),
            prevrandao: header.mix_hash,
        }
    }
}

/// The header fields the EIP-1559 update reads.
fn fee_header(gas_used: u64, gas_limit: u64, base_fee: Option<u64>) -> Header {
    Header {
        gas_used,
        gas_limit,
        base_fee_per_gas: base_fee,
        ..Default::default()
    }
}

/// The block producer task (stage 1).
pub struct BlockProducer {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    executor: Arc<NodeExecutor>,
    config: ProducerConfig,
    metrics: Arc<SequencerMetrics>,
    health: Health,
    tip: Tip,
    last_block_at: Instant,
    controls: ProducerControls,
    throttled: bool,
    deposits: Option<Arc<dyn DepositSource>>,
}

impl BlockProducer {
    /// Creates the producer on top of the committed head.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<TxPool>,
        executor: Arc<NodeExecutor>,
        config: ProducerConfig,
        metrics: Arc<SequencerMetrics>,
        health: Health,
    ) -> Self {
        let tip = Tip::of(&chain.head().header);
        Self {
            chain,
            pool,
            executor,
            config,
            metrics,
            health,
            tip,
            last_block_at: Instant::now(),
            controls: ProducerControls::default(),
            throttled: false,
            deposits: None,
        }
    }

    /// Follows `controls` (backpressure, pause) from now on.
    pub fn with_controls(mut self, controls: ProducerControls) -> Self {
        self.controls = controls;
        self
    }

    /// Takes L1 deposits from `deposits` and puts them first in each block.
    pub fn with_deposits(mut self, deposits: Arc<dyn DepositSource>) -> Self {
        self.deposits = Some(deposits);
        self
    }

    /// Produces blocks until `shutdown` fires; then stops intake, executes and commits what
    /// is pending, drains the committer and returns. An error is fatal: nothing after the
    /// failed block is committed.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ExecutorError> {
        let (to_committer, from_producer) = mpsc::channel(PIPELINE_DEPTH);
        let committer = Committer {
            chain: self.chain.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            parent_hash: self.chain.head().hash,
            last_commit_at: Instant::now(),
        };
        let committer = tokio::spawn(committer.run(from_producer));

        let mut ticker = tokio::time::interval(self.config.block_time);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let head = self.chain.head();
        self.health
            .block_produced(head.number(), head.header.timestamp);
        info!(target: "lanes::producer", head = head.number(), block_time = ?self.config.block_time, "block producer started");
        let mut result = Ok(());
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            if let Err(err) = self.tick(&to_committer).await {
                error!(target: "lanes::producer", %err, "block production failed; stopping");
                result = Err(err);
                break;
            }
        }
        if result.is_ok() {
            self.pool.stop_accepting();
            // Execute what was accepted before intake stopped, so nothing acknowledged is
            // left only in memory.
            if self.pool.lock().len_pending() > 0 {
                result = self.produce(&to_committer, false).await;
            }
        }
        drop(to_committer);
        let committed = committer
            .await
            .map_err(|e| ExecutorError::Evm(format!("committer task panicked: {e}")))?;
        info!(target: "lanes::producer", head = self.chain.head().number(), "block producer stopped");
        result.and(committed)
    }

    async fn tick(
        &mut self,
        to_committer: &mpsc::Sender<ExecutedBlock>,
    ) -> Result<(), ExecutorError> {
        if *self.controls.paused.borrow() {
            // Report the pause once the pipeline has drained, so the head is final.
            let head = self.chain.head().number();
            if head == self.tip.number && self.controls.paused_at.borrow().is_none() {
                info!(target: "lanes::producer", head, "block production paused");
                self.controls.paused_at.send_replace(Some(head));
            }
            self.health.block_produced(head, now_secs());
            return Ok(());
        }
        if self.controls.paused_at.borrow().is_some() {
            info!(target: "lanes::producer", "block production resumed");
            self.controls.paused_at.send_replace(None);
        }
        let throttled = *self.controls.throttle.borrow();
        if throttled != self.throttled {
            self.throttled = throttled;
            if throttled {
                warn!(target: "lanes::producer", "batcher backlog over its limit: shrinking blocks until L1 catches up");
            } else {
                info!(target: "lanes::producer", "batcher backlog back under its limit: full blocks again");
            }
        }
        let empty_due = !throttled
            && self
                .config
                .empty_block_interval
                .is_some_and(|interval| self.last_block_at.elapsed() >= interval);
        // Even with nothing pending the block opens: what arrives before its deadline joins
        // it. It is dropped if nothing did (and no empty block is due).
        self.produce(to_committer, empty_due).await
    }

    /// Executes one block on top of the tip and hands it to the committer; with nothing to
    /// include, only if `allow_empty`.
    async fn produce(
        &mut self,
        to_committer: &mpsc::Sender<ExecutedBlock>,
        allow_empty: bool,
    ) -> Result<(), ExecutorError> {
        let spec = self.chain.spec().clone();
        let base_fee = next_base_fee(&self.tip.header_for_fee, spec.base_fee_floor);
        let number = self.tip.number + 1;
        let env = BlockEnvInput {
            number,
            // Filled in by the committer when it seals, once the parent's root is known.
            parent_hash: B256::ZERO,
            // Sub-second blocks share a timestamp; it never goes backwards.
            timestamp: now_secs().max(self.tip.timestamp),
            beneficiary: self.config.fee_recipient,
            gas_limit: self.tip.gas_limit,
            base_fee,
            // Derivable by anyone replaying the chain, and independent of the parent's state
            // root so execution need not wait for it.
            prevrandao: keccak256([self.tip.prevrandao.as_slice(), &number.to_be_bytes()].concat()),
            parent_beacon_block_root: B256::ZERO,
            max_txs: if self.throttled {
                throttled_size(self.config.max_block_txs)
            } else {
                self.config.max_block_txs
            },
            excess_blob_gas: 0,
        };
        let started = Instant::now();
        let deposits: VecDeque<_> = self
            .deposits
            .as_ref()
            .map(|d| d.next_deposits(env.gas_limit, env.max_txs))
            .unwrap_or_default()
            .into();
        let deadline = started + self.config.block_time.mul_f64(0.6);
        let source = PoolSource::new(deposits, self.pool.clone(), base_fee, deadline)
            .with_throttle(
                self.controls.throttle.clone(),
                throttled_size(self.config.max_block_txs),
            );
        let ordering = started.elapsed();
        let executor = self.executor.clone();
        let reader = self.chain.pipeline_reader(number);
        let (executed, invalid, touched, waited, capped) = tokio::task::spawn_blocking(move || {
            let mut source = source;
            let executed = executor.execute(&spec, &env, reader.clone(), &mut source)?;
            let touched = touched_accounts(&executed.changes, &source.invalid, &reader)?;
            let capped = source.throttled();
            Ok::<_, ExecutorError>((executed, source.invalid, touched, source.waited, capped))
        })
        .await
        .map_err(|e| ExecutorError::Evm(format!("execution task panicked: {e}")))??;
        if executed.transactions.is_empty() && invalid.is_empty() && !allow_empty {
            // Opened for arrivals that did not come: no block.
            self.health
                .block_produced(self.chain.head().number(), now_secs());
            return Ok(());
        }
        if (self.throttled || capped)
            && let Some(counter) = &self.controls.throttled_blocks
        {
            counter.inc();
        }
        // Waiting for arrivals while the block was open is not execution.
        let execution = (started.elapsed() - ordering).saturating_sub(waited);
        if let Some(stats) = self.executor.last_stats() {
            self.metrics.executor_lanes.observe(stats.lanes as f64);
            self.metrics
                .executor_reexecutions
                .inc_by(stats.reexecutions as u64);
            self.metrics
                .executor_conflicts
                .inc_by(stats.conflicts as u64);
            self.metrics
                .executor_taken_over
                .inc_by(stats.taken_over as u64);
            self.metrics.executor_speedup.set(stats.speedup_estimate());
            self.metrics
                .executor_busy_seconds
                .inc_by(stats.busy.as_secs_f64());
        }
        self.metrics
            .stage_seconds
            .with_label_values(&["ordering"])
            .observe(ordering.as_secs_f64());
        self.metrics
            .stage_seconds
            .with_label_values(&["execution"])
            .observe(execution.as_secs_f64());

        // The next block builds on this one: its state joins the in-flight overlay and its
        // transactions leave the pool now, before it is committed.
        self.chain
            .push_in_flight(number, Arc::new(executed.changes.clone()));
        let included: Vec<B256> = executed.transactions.iter().map(|t| t.hash()).collect();
        if let Some(deposits) = &self.deposits {
            let count = executed
                .transactions
                .iter()
                .take_while(|t| t.is_deposit())
                .count();
            if count > 0 {
                debug!(target: "lanes::producer", number, deposits = count, "deposits included");
                deposits.included(count);
            }
        }
        let invalid_hashes: Vec<B256> = invalid.iter().map(|(h, _, _)| *h).collect();
        for (hash, _, why) in &invalid {
            debug!(target: "lanes::producer", %hash, reason = %why, "dropped transaction invalid at execution");
            self.metrics
                .tx_skipped
                .with_label_values(&["invalid"])
                .inc();
        }
        let next_fee = next_base_fee(
            &fee_header(
                executed.gas_used,
                executed.env.gas_limit,
                Some(executed.env.base_fee),
            ),
            self.chain.spec().base_fee_floor,
        );
        self.pool
            .on_block(&included, next_fee, touched, &invalid_hashes);
        self.tip = Tip {
            number,
            timestamp: executed.env.timestamp,
            gas_limit: executed.env.gas_limit,
            header_for_fee: fee_header(
                executed.gas_used,
                executed.env.gas_limit,
                Some(executed.env.base_fee),
            ),
            prevrandao: executed.env.prevrandao,
        };
        self.last_block_at = Instant::now();
        if execution > self.config.block_time {
            warn!(target: "lanes::producer", ?execution, block_time = ?self.config.block_time, "executing a block took longer than the block time");
        }
        to_committer
            .send(executed)
            .await
            .map_err(|_| ExecutorError::Evm("the committer stopped".into()))
    }
}

/// The most transactions a block takes while the batcher's backlog is over its limit.
fn throttled_size(max_block_txs: usize) -> usize {
    (max_block_txs / 4).max(1)
}

/// Every account the block changed, so pooled senders that only received funds are
/// promoted too; plus skipped senders, whose pool view may be stale.
fn touched_accounts(
    changes: &StateChanges,
    invalid: &[(B256, Address, String)],
    state: &impl StateReader,
) -> Result<Vec<(Address, AccountState)>, ExecutorError> {
    let mut touched: Vec<(Address, AccountState)> = changes
        .accounts
        .iter()
        .map(|(address, change)| (*address, account_state(change.info)))
        .collect();
    let changed: HashSet<Address> = changes.accounts.keys().copied().collect();
    for (_, sender, _) in invalid {
        if !changed.contains(sender) {
            touched.push((*sender, account_state(state.account(*sender)?)));
        }
    }
    Ok(touched)
}

/// The committer task (stage 2): roots, seals, commits and publishes blocks in order.
struct Committer {
    chain: Arc<Chain>,
    metrics: Arc<SequencerMetrics>,
    health: Health,
    parent_hash: B256,
    last_commit_at: Instant,
}

impl Committer {
    async fn run(mut self, mut blocks: mpsc::Receiver<ExecutedBlock>) -> Result<(), ExecutorError> {
        while let Some(executed) = blocks.recv().await {
            if let Err(err) = self.commit(executed).await {
                error!(target: "lanes::producer", %err, "committing a block failed; stopping the pipeline");
                // Readers waiting for a hash this committer will never seal must not hang.
                self.chain.sealed_hashes().fail();
                return Err(err);
            }
        }
        Ok(())
    }

    async fn commit(&mut self, mut executed: ExecutedBlock) -> Result<(), ExecutorError> {
        executed.env.parent_hash = self.parent_hash;
        let chain = self.chain.clone();
        let metrics = self.metrics.clone();
        let block = tokio::task::spawn_blocking(move || {
            let storage = chain.storage();
            // The committer runs blocks in order, so storage holds exactly the parent state.
            let started = Instant::now();
            let state_root = storage.state_root(&executed.changes)?;
            let root_time = started.elapsed();
            let (block, changes) = executed.seal(state_root);
            chain.sealed_hashes().insert(block.number(), block.hash);
            let started = Instant::now();
            // Header, body, receipts and the state diff: enough to publish the block. Its
            // state is written after it is published (below).
            storage.commit_block_data(&block, Arc::new(changes))?;
            let commit = started.elapsed();
            metrics
                .stage_seconds
                .with_label_values(&["state_root"])
                .observe(root_time.as_secs_f64());
            metrics
                .stage_seconds
                .with_label_values(&["commit"])
                .observe(commit.as_secs_f64());
            Ok::<_, ExecutorError>(Arc::new(block))
        })
        .await
        .map_err(|e| ExecutorError::Evm(format!("commit task panicked: {e}")))??;

        self.parent_hash = block.hash;
        self.chain.pop_in_flight(block.number());
        self.chain.set_head(block.clone());
        let interval = self.last_commit_at.elapsed();
        self.last_commit_at = Instant::now();
        self.metrics.head_block.set(block.number() as i64);
        self.metrics.block_interval.observe(interval.as_secs_f64());
        self.metrics
            .block_txs
            .observe(block.transactions.len() as f64);
        self.metrics.block_gas.observe(block.header.gas_used as f64);
        self.metrics
            .tx_included
            .inc_by(block.transactions.len() as u64);
        if interval > Duration::ZERO {
            self.metrics
                .gas_per_second
                .set(block.header.gas_used as f64 / interval.as_secs_f64());
        }
        self.health.block_produced(block.number(), now_secs());
        if !block.transactions.is_empty() || block.number() % 100 == 0 {
            info!(target: "lanes::producer", number = block.number(), txs = block.transactions.len(), gas = block.header.gas_used, hash = %block.hash, "sealed block");
        }
        // The state write is off the path to publishing but still before the next block's
        // root, which builds on the stored tries.
        let chain = self.chain.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || chain.storage().write_state())
            .await
            .map_err(|e| ExecutorError::Evm(format!("state write task panicked: {e}")))??;
        self.metrics
            .stage_seconds
            .with_label_values(&["state_write"])
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}

fn account_state(account: Option<StoredAccount>) -> AccountState {
    AccountState {
        nonce: account.map_or(0, |a| a.nonce),
        balance: account.map_or(Default::default(), |a| a.balance),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{DevNode, dev_node, signed_transfer};

    fn pool() -> (DevNode, Arc<TxPool>) {
        let node = dev_node();
        let pool = node.pool.clone();
        (node, pool)
    }

    fn submit(pool: &TxPool, key: usize, nonce: u64) -> B256 {
        pool.submit_blocking(&signed_transfer(key, nonce, 1))
            .unwrap()
    }

    fn offered(source: &mut PoolSource) -> Vec<B256> {
        std::iter::from_fn(|| source.next_tx())
            .map(|tx| *tx.inner().tx_hash())
            .collect()
    }

    #[test]
    fn an_open_block_takes_arrivals_once_each_until_its_deadline() {
        let (_dir, pool) = pool();
        let a0 = submit(&pool, 0, 0);
        let base_fee = pool.lock().base_fee();
        let far = Instant::now() + Duration::from_secs(60);
        let mut source = PoolSource::new(VecDeque::new(), pool.clone(), base_fee, far);
        assert_eq!(offered(&mut source), [a0]);

        // Arrivals after the snapshot: the sender's next nonce and a new sender. Nothing
        // offered before comes again although it is still pooled.
        let a1 = submit(&pool, 0, 1);
        let b0 = submit(&pool, 1, 0);
        assert!(source.wait_for_more());
        let mut got = offered(&mut source);
        got.sort();
        let mut want = vec![a1, b0];
        want.sort();
        assert_eq!(got, want);

        // A sender skipped in this block is not offered again, even if it sends more.
        let b0_tx = pool.get(&b0).unwrap().tx;
        source.skip(&b0_tx, SkipReason::Invalid("test".into()));
        submit(&pool, 1, 1);
        let a2 = submit(&pool, 0, 2);
        assert!(source.wait_for_more());
        assert_eq!(offered(&mut source), [a2]);
        assert_eq!(source.invalid.len(), 1);

        // Past the deadline the block is done, whatever arrives.
        submit(&pool, 0, 3);
        source.deadline = Instant::now();
        assert!(!source.wait_for_more());
        assert!(source.next_tx().is_none());
    }

    #[test]
    fn backpressure_caps_a_block_that_opened_before_it() {
        let (_dir, pool) = pool();
        let first = [submit(&pool, 0, 0), submit(&pool, 0, 1)];
        submit(&pool, 0, 2);
        let base_fee = pool.lock().base_fee();
        let far = Instant::now() + Duration::from_secs(60);
        let (throttle, on) = watch::channel(false);
        let mut source =
            PoolSource::new(VecDeque::new(), pool.clone(), base_fee, far).with_throttle(on, 2);
        // Unthrottled, the cap does not apply...
        assert_eq!(*source.next_tx().unwrap().inner().tx_hash(), first[0]);
        assert_eq!(*source.next_tx().unwrap().inner().tx_hash(), first[1]);
        // ...once the backlog is over its limit, the open block takes no more than the cap.
        throttle.send_replace(true);
        assert!(source.next_tx().is_none());
        submit(&pool, 1, 0);
        assert!(!source.wait_for_more());
    }

    #[test]
    fn waiting_for_arrivals_ends_at_the_deadline() {
        let (_dir, pool) = pool();
        let base_fee = pool.lock().base_fee();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(30);
        let mut source = PoolSource::new(VecDeque::new(), pool, base_fee, deadline);
        assert!(source.next_tx().is_none());
        assert!(!source.wait_for_more());
        assert!(Instant::now() >= deadline);
        assert!(source.waited > Duration::ZERO);
    }
}
