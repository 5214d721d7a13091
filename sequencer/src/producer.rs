//! The block producer: a task that, every `block_time`, orders pool transactions, executes
//! them, computes the state root, commits the block atomically and tells the pool and the
//! subscribers.

use crate::{
    chain::Chain,
    mempool::{AccountState, BestTransactions},
    metrics::SequencerMetrics,
    pool::{TxPool, next_base_fee},
};
use alloy_primitives::{Address, B256, map::HashSet};
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ExecutorError, RecoveredTx, SealedBlock, SkipReason, StateReader,
    TxSource, root,
};
use lanes_monitoring::Health;
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

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

/// Feeds the executor from a pool snapshot, stopping at a deadline so a block never runs
/// far past its slot.
struct PoolSource {
    best: BestTransactions,
    deadline: Instant,
    invalid: Vec<(B256, Address, String)>,
}

impl TxSource for PoolSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        if Instant::now() >= self.deadline {
            return None;
        }
        self.best.next().map(|tx| tx.tx)
    }

    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        self.best.mark_invalid(tx.signer());
        if let SkipReason::Invalid(why) = reason {
            self.invalid.push((*tx.inner().tx_hash(), tx.signer(), why));
        }
    }
}

/// The block producer task.
pub struct BlockProducer<E> {
    chain: Arc<Chain>,
    pool: Arc<TxPool>,
    executor: Arc<E>,
    config: ProducerConfig,
    metrics: Arc<SequencerMetrics>,
    health: Health,
    last_block_at: Instant,
}

impl<E: BlockExecutor + 'static> BlockProducer<E> {
    /// Creates the producer.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<TxPool>,
        executor: Arc<E>,
        config: ProducerConfig,
        metrics: Arc<SequencerMetrics>,
        health: Health,
    ) -> Self {
        Self {
            chain,
            pool,
            executor,
            config,
            metrics,
            health,
            last_block_at: Instant::now(),
        }
    }

    /// Produces blocks until `shutdown` fires; then stops intake, seals and commits what is
    /// pending, and returns. An error is fatal: nothing after the failed block is produced.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ExecutorError> {
        let mut ticker = tokio::time::interval(self.config.block_time);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let head = self.chain.head();
        self.health
            .block_produced(head.number(), head.header.timestamp);
        info!(target: "lanes::producer", head = head.number(), block_time = ?self.config.block_time, "block producer started");
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            if let Err(err) = self.tick().await {
                error!(target: "lanes::producer", %err, "block production failed; stopping");
                return Err(err);
            }
        }
        self.pool.stop_accepting();
        // Seal what was accepted before intake stopped, so nothing acknowledged is left
        // only in memory.
        if self.pool.lock().len_pending() > 0 {
            self.produce().await?;
        }
        info!(target: "lanes::producer", head = self.chain.head().number(), "block producer stopped");
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), ExecutorError> {
        let has_pending = self.pool.lock().len_pending() > 0;
        let empty_due = self
            .config
            .empty_block_interval
            .is_some_and(|interval| self.last_block_at.elapsed() >= interval);
        if has_pending || empty_due {
            self.produce().await?;
        } else {
            // Idle but healthy: the node is up and would produce if there were work.
            let head = self.chain.head();
            self.health.block_produced(head.number(), now_secs());
        }
        Ok(())
    }

    /// Builds, seals and commits one block on top of the head.
    pub async fn produce(&mut self) -> Result<Arc<SealedBlock>, ExecutorError> {
        let parent = self.chain.head();
        let spec = self.chain.spec().clone();
        let base_fee = next_base_fee(&parent.header, spec.base_fee_floor);
        let env = BlockEnvInput {
            number: parent.number() + 1,
            parent_hash: parent.hash,
            // Sub-second blocks share a timestamp; it never goes backwards.
            timestamp: now_secs().max(parent.header.timestamp),
            beneficiary: self.config.fee_recipient,
            gas_limit: parent.header.gas_limit,
            base_fee,
            // Deterministic and derivable by anyone replaying the chain from L1.
            prevrandao: parent.hash,
            parent_beacon_block_root: B256::ZERO,
            max_txs: self.config.max_block_txs,
        };
        let production_started = Instant::now();
        let ordering_started = Instant::now();
        let best = self.pool.lock().best_transactions(base_fee);
        let ordering = ordering_started.elapsed();
        let deadline = Instant::now() + self.config.block_time.mul_f64(0.6);
        let executor = self.executor.clone();
        let storage = self.chain.storage().clone();
        let metrics = self.metrics.clone();

        let (block, invalid, touched) = tokio::task::spawn_blocking(move || {
            let mut source = PoolSource {
                best,
                deadline,
                invalid: Vec::new(),
            };
            let started = Instant::now();
            let executed = executor.execute(&spec, &env, storage.clone(), &mut source)?;
            let execution = started.elapsed();
            let started = Instant::now();
            let state_root = root::state_root_with(&*storage, &executed.changes)?;
            let root_time = started.elapsed();
            let (block, changes) = executed.seal(state_root);
            let started = Instant::now();
            storage.commit_block(&block, &changes)?;
            let commit = started.elapsed();
            for (stage, time) in [
                ("ordering", ordering),
                ("execution", execution),
                ("state_root", root_time),
                ("commit", commit),
            ] {
                metrics
                    .stage_seconds
                    .with_label_values(&[stage])
                    .observe(time.as_secs_f64());
            }
            // Every account the block changed, so pooled senders that only received funds are
            // promoted too; plus skipped senders, whose pool view may be stale.
            let invalid = source.invalid;
            let mut touched: Vec<(Address, AccountState)> = changes
                .accounts
                .iter()
                .map(|(address, change)| (*address, account_state(change.info)))
                .collect();
            let changed: HashSet<Address> = changes.accounts.keys().copied().collect();
            for (_, sender, _) in &invalid {
                if !changed.contains(sender) {
                    touched.push((*sender, account_state(storage.account(*sender)?)));
                }
            }
            Ok::<_, ExecutorError>((Arc::new(block), invalid, touched))
        })
        .await
        .map_err(|e| ExecutorError::Evm(format!("block task panicked: {e}")))??;

        let included: Vec<B256> = block.transactions.iter().map(|t| t.hash()).collect();
        let invalid_hashes: Vec<B256> = invalid.iter().map(|(h, _, _)| *h).collect();
        for (hash, _, why) in &invalid {
            debug!(target: "lanes::producer", %hash, reason = %why, "dropped transaction invalid at execution");
            self.metrics
                .tx_skipped
                .with_label_values(&["invalid"])
                .inc();
        }
        let next_fee = next_base_fee(&block.header, self.chain.spec().base_fee_floor);
        self.pool
            .on_block(&included, next_fee, touched, &invalid_hashes);
        self.chain.set_head(block.clone());

        let interval = self.last_block_at.elapsed();
        self.last_block_at = Instant::now();
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
        let production = production_started.elapsed();
        if production > self.config.block_time {
            warn!(target: "lanes::producer", ?production, block_time = ?self.config.block_time, "producing a block took longer than the block time");
        }
        Ok(block)
    }
}

fn account_state(account: Option<lanes_executor::StoredAccount>) -> AccountState {
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
