//! The batcher task: reads sealed L2 blocks, closes batches, posts them to the rollup contract
//! and reports the L2 heads L1 vouches for.
//!
//! Exactly-once comes from the contract, not from local state: the task keeps no cursor on
//! disk. On start, and whenever the rollup's last batch index is not the one it expects (an
//! L1 reorg dropped a batch transaction, the owner reverted batches, another instance posted),
//! it reads `lastBatch()` and rebuilds from the L2 block after it. The contract refuses a batch
//! whose index, first block or previous state root does not follow the last recorded one, so a
//! restart at any point can neither skip nor duplicate a batch.
//!
//! Heads (published on a watch channel, [`BatcherStatus`]):
//! - `posted`: last L2 block in a batch recorded in L1's latest block;
//! - `safe`: the same, read at the L1 block `confirmations - 1` below the head;
//! - `finalized`: last L2 block of the last batch past the finalization period, read at that
//!   same L1 block.
//!
//! Backpressure: [`Backlog`] counts the sealed blocks not yet in a recorded batch and their
//! uncompressed size; `over_limit` turns on above `max_backlog_bytes`, and the sequencer is
//! expected to slow down or shrink blocks while it is on.
//!
//! Forced inclusion: each batch declares the number of L1 -> L2 messages its last block has
//! executed ([`BlockSource::l1_messages_included`]). If L2 leaves a queued message out past the
//! rollup's `forceInclusionDelay`, the contract refuses every batch (`ForcedInclusionMissed`):
//! the failure is counted under `reason="forced_inclusion"` and the batcher rebuilds from L1
//! and keeps trying, so batches go through again once L2 blocks execute the message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use lanes_l1_bridge::bindings::LanesRollup;
use lanes_l1_bridge::{BatchHeader, ErrorClass, L1Error, LastBatch};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::builder::{BatchBuilder, BuilderConfig, CloseReason, ClosedBatch};
use crate::error::{BatcherError, BatcherResult};
use crate::format::{BatchBlock, Compression};
use crate::metrics::BatcherMetrics;
use crate::source::BlockSource;
use crate::txmgr::{DaMode, TxCandidate, TxManager, TxManagerConfig, contract_error, rpc_error};

const TARGET: &str = "lanes::batcher";

/// How the batcher task batches and posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherSettings {
    /// L2 chain id (written into every batch).
    pub chain_id: u64,
    /// The rollup contract.
    pub rollup: Address,
    /// Largest encoded batch, bytes (one L1 transaction's calldata or blobs).
    pub max_batch_bytes: usize,
    /// Longest a block waits in an open batch.
    pub max_batch_age: Duration,
    /// Codec and level.
    pub compression: Compression,
    /// Calldata, blobs or the cheaper of the two.
    pub da_mode: DaMode,
    /// L1 blocks (counting the batch's own) before its L2 blocks are `safe`.
    pub confirmations: u64,
    /// How often to look for new L2 blocks and L1 progress.
    pub poll_interval: Duration,
    /// Backlog (uncompressed bytes) above which [`Backlog::over_limit`] is set.
    pub max_backlog_bytes: u64,
    /// Longest pause between retries after a failure.
    pub max_backoff: Duration,
}

impl BatcherSettings {
    /// Settings from `[batcher]`, for L2 chain `chain_id` and the rollup at `rollup`.
    pub fn from_config(
        config: &lanes_config::BatcherConfig,
        chain_id: u64,
        rollup: Address,
    ) -> Self {
        Self {
            chain_id,
            rollup,
            max_batch_bytes: config.max_batch_bytes,
            max_batch_age: config.max_batch_age,
            compression: Compression::from_config(config),
            da_mode: DaMode::from_config(config.data_availability),
            confirmations: config.confirmations.max(1),
            poll_interval: config.poll_interval,
            max_backlog_bytes: config.max_backlog_bytes,
            max_backoff: Duration::from_secs(30),
        }
    }

    /// The transaction manager policy that goes with `[batcher]`.
    pub fn txmgr_config(config: &lanes_config::BatcherConfig) -> TxManagerConfig {
        TxManagerConfig {
            confirmations: config.confirmations.max(1),
            poll_interval: config.poll_interval,
            resubmit_after: config.resubmit_after,
            fee_bump_percent: config.fee_bump_percent,
            max_fee_per_gas: config.max_fee_per_gas,
            ..TxManagerConfig::default()
        }
    }
}

/// L2 heads as L1 records them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L2Heads {
    /// Last L2 block in a batch recorded in the latest L1 block.
    pub posted: u64,
    /// L1 head when last read.
    pub l1_head: u64,
    /// Last L2 block in a batch recorded at least `confirmations` L1 blocks deep.
    pub safe: u64,
    /// The L1 block `safe` and `finalized` were read at.
    pub safe_l1_block: u64,
    /// Last L2 block in a batch past the rollup's finalization period.
    pub finalized: u64,
}

/// What waits to be posted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Sealed L2 blocks not in a batch recorded on L1.
    pub unposted_blocks: u64,
    /// Their uncompressed batch size (estimated for blocks not read yet).
    pub unposted_bytes: u64,
    /// `unposted_bytes` is above `max_backlog_bytes`: the sequencer should slow down.
    pub over_limit: bool,
}

/// Everything the batcher task publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatcherStatus {
    /// Whether posting is on (off after [`BatcherHandle::stop`]).
    pub running: bool,
    /// L2 heads on L1.
    pub heads: L2Heads,
    /// Unposted backlog.
    pub backlog: Backlog,
    /// Index of the last batch recorded on L1 (latest block).
    pub last_batch_index: u64,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

enum Command {
    Flush(oneshot::Sender<BatcherResult<u64>>),
    Stop(oneshot::Sender<()>),
    Start(oneshot::Sender<()>),
}

/// Controls a running batcher task. Cloning shares the task.
#[derive(Debug, Clone)]
pub struct BatcherHandle {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<BatcherStatus>,
}

impl BatcherHandle {
    /// Closes the open batch (after reading every block sealed so far) and posts it; returns
    /// the last L2 block recorded on L1 once it is confirmed.
    pub async fn flush(&self) -> BatcherResult<u64> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush(tx))
            .await
            .map_err(|_| BatcherError::Stopped)?;
        rx.await.map_err(|_| BatcherError::Stopped)?
    }

    /// Pauses posting (after the batch in flight, if any). Heads keep being followed.
    pub async fn stop(&self) -> BatcherResult<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Stop(tx))
            .await
            .map_err(|_| BatcherError::Stopped)?;
        rx.await.map_err(|_| BatcherError::Stopped)
    }

    /// Resumes posting.
    pub async fn start(&self) -> BatcherResult<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Start(tx))
            .await
            .map_err(|_| BatcherError::Stopped)?;
        rx.await.map_err(|_| BatcherError::Stopped)
    }

    /// The current status.
    pub fn status(&self) -> BatcherStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change (heads, backlog).
    pub fn subscribe(&self) -> watch::Receiver<BatcherStatus> {
        self.status.clone()
    }
}

struct Cursor {
    /// Index the next batch must have.
    next_index: u64,
    /// State root recorded by the last batch.
    prev_root: B256,
    /// Last L2 block recorded on L1.
    posted: u64,
}

/// The batcher task; see the module docs. Build with [`Batcher::new`], run with
/// [`Batcher::spawn`].
pub struct Batcher {
    settings: BatcherSettings,
    source: Arc<dyn BlockSource>,
    txmgr: Arc<TxManager>,
    metrics: BatcherMetrics,
    builder: BatchBuilder,
    cursor: Option<Cursor>,
    pending: Option<ClosedBatch>,
    running: bool,
    flush_target: Option<u64>,
    flush_waiters: Vec<oneshot::Sender<BatcherResult<u64>>>,
    status: watch::Sender<BatcherStatus>,
    last_error: Option<String>,
    avg_block_bytes: f64,
    heads: L2Heads,
    last_balance_read: Option<Instant>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("settings", &self.settings)
            .field("txmgr", &self.txmgr)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher posting `source`'s blocks through `txmgr`.
    pub fn new(
        settings: BatcherSettings,
        source: Arc<dyn BlockSource>,
        txmgr: Arc<TxManager>,
        metrics: BatcherMetrics,
    ) -> Self {
        let builder = BatchBuilder::new(
            BuilderConfig {
                chain_id: settings.chain_id,
                max_bytes: settings.max_batch_bytes,
                max_age: settings.max_batch_age,
                compression: settings.compression,
            },
            1,
            B256::ZERO,
        );
        let (status, _) = watch::channel(BatcherStatus {
            running: true,
            ..BatcherStatus::default()
        });
        Self {
            settings,
            source,
            txmgr,
            metrics,
            builder,
            cursor: None,
            pending: None,
            running: true,
            flush_target: None,
            flush_waiters: Vec::new(),
            status,
            last_error: None,
            avg_block_bytes: 0.0,
            heads: L2Heads::default(),
            last_balance_read: None,
        }
    }

    /// Spawns the task; it runs until `cancel` fires (or a fatal error, which the join handle
    /// returns). The command channel holds `command_capacity` requests.
    pub fn spawn(
        self,
        command_capacity: usize,
        cancel: CancellationToken,
    ) -> (BatcherHandle, JoinHandle<BatcherResult<()>>) {
        let (tx, rx) = mpsc::channel(command_capacity.max(1));
        let handle = BatcherHandle {
            commands: tx,
            status: self.status.subscribe(),
        };
        let task = tokio::spawn(self.run(rx, cancel));
        (handle, task)
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) -> BatcherResult<()> {
        info!(target: TARGET, account = %self.txmgr.address(), rollup = %self.settings.rollup, mode = ?self.settings.da_mode, codec = self.settings.compression.codec.name(), "batcher started");
        let mut backoff = Duration::ZERO;
        let mut last_refresh: Option<Instant> = None;
        let result = loop {
            if cancel.is_cancelled() {
                break Ok(());
            }
            while let Ok(command) = commands.try_recv() {
                self.handle(command);
            }
            let mut progressed = false;
            if self.running {
                let step = tokio::select! {
                    _ = cancel.cancelled() => break Ok(()),
                    step = self.step() => step,
                };
                match step {
                    Ok(p) => {
                        progressed = p;
                        backoff = Duration::ZERO;
                        self.last_error = None;
                    }
                    Err(e) if e.class() == ErrorClass::Fatal => {
                        error!(target: TARGET, error = %e, "batcher stopped");
                        break Err(e);
                    }
                    Err(e) => {
                        self.metrics
                            .post_failures
                            .with_label_values(&[e.reason_label()])
                            .inc();
                        backoff = (backoff * 2)
                            .max(Duration::from_millis(200))
                            .min(self.settings.max_backoff);
                        warn!(target: TARGET, error = %e, retry_in = ?backoff, "batch posting failed");
                        self.last_error = Some(e.to_string());
                    }
                }
            }
            let refresh_due = last_refresh
                .is_none_or(|at| at.elapsed() >= self.settings.poll_interval)
                || progressed;
            if refresh_due {
                if let Err(e) = self.refresh_heads().await {
                    debug!(target: TARGET, error = %e, "reading L2 heads from L1 failed");
                }
                last_refresh = Some(Instant::now());
            }
            self.publish();
            if progressed {
                continue;
            }
            let wait = if backoff.is_zero() {
                self.settings.poll_interval
            } else {
                backoff
            };
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    // Every handle is gone: nobody can stop us but the token; keep polling.
                    None => tokio::time::sleep(wait).await,
                },
                _ = tokio::time::sleep(wait) => {}
            }
        };
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.send(Err(BatcherError::Stopped));
        }
        self.running = false;
        self.publish();
        info!(target: TARGET, "batcher stopped");
        result
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Flush(reply) => {
                if !self.running {
                    let _ = reply.send(Err(BatcherError::Stopped));
                    return;
                }
                match self.source.head() {
                    Ok(head) => {
                        self.flush_target = Some(self.flush_target.unwrap_or(0).max(head));
                        self.flush_waiters.push(reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Stop(reply) => {
                info!(target: TARGET, "batcher paused");
                self.running = false;
                for waiter in self.flush_waiters.drain(..) {
                    let _ = waiter.send(Err(BatcherError::Stopped));
                }
                self.flush_target = None;
                self.publish();
                let _ = reply.send(());
            }
            Command::Start(reply) => {
                info!(target: TARGET, "batcher resumed");
                self.running = true;
                // L1 may have moved while we were paused.
                self.cursor = None;
                self.publish();
                let _ = reply.send(());
            }
        }
    }

    /// One unit of work: resync with L1 if needed, post a closed batch, or read blocks and
    /// close a batch. Returns whether something happened (so the loop goes on at once).
    async fn step(&mut self) -> BatcherResult<bool> {
        let l1_last = self.last_batch_at(BlockId::latest()).await?;
        let in_sync = self
            .cursor
            .as_ref()
            .is_some_and(|c| c.next_index == l1_last.batch_index + 1);
        if !in_sync {
            if self.cursor.is_some() {
                warn!(target: TARGET, l1_last_batch = l1_last.batch_index, "L1 batches are not where this batcher left them (reorg, revert or another batcher); resyncing from L1");
            }
            self.resync(l1_last)?;
        }

        if let Some(batch) = self.pending.take() {
            return match self.post(&batch).await {
                Ok(()) => {
                    self.answer_flush();
                    Ok(true)
                }
                Err(e) => {
                    if matches!(
                        e.reason_label(),
                        "out_of_sync" | "forced_inclusion" | "tx_failed"
                    ) {
                        // Rebuild from what L1 holds now.
                        self.cursor = None;
                    } else {
                        self.pending = Some(batch);
                    }
                    Err(e)
                }
            };
        }

        // Reading blocks and compressing (zstd at level 12 over megabytes) takes tens of
        // milliseconds: not on a runtime worker, which RPC and subscriptions share.
        off_the_runtime(|| self.build())
    }

    /// Reads the blocks up to the head into the open batch; closes it on size, age or a
    /// flush. Returns whether a batch closed.
    fn build(&mut self) -> BatcherResult<bool> {
        let head = self.source.head()?;
        let now = Instant::now();
        while self.builder.next_block() <= head {
            let number = self.builder.next_block();
            let block = self.source.block(number)?.ok_or_else(|| {
                BatcherError::Source(format!("block {number} missing below head {head}"))
            })?;
            let l1_messages = self.source.l1_messages_included(number)?;
            let entry = BatchBlock::from_sealed(&block);
            let size = entry.encoded_len() as f64;
            self.avg_block_bytes = if self.avg_block_bytes == 0.0 {
                size
            } else {
                self.avg_block_bytes * 0.95 + size * 0.05
            };
            if let Some(closed) = self.builder.push(entry, l1_messages, now)? {
                self.pending = Some(closed);
                return Ok(true);
            }
        }
        let flush = self
            .flush_target
            .is_some_and(|target| self.builder.next_block() > target);
        let reason = if flush {
            Some(CloseReason::Flush)
        } else if self.builder.is_due(now) {
            Some(CloseReason::Age)
        } else {
            None
        };
        if let Some(reason) = reason
            && let Some(closed) = self.builder.close(reason, now)?
        {
            self.pending = Some(closed);
            return Ok(true);
        }
        self.answer_flush();
        Ok(false)
    }

    fn answer_flush(&mut self) {
        let (Some(target), Some(cursor)) = (self.flush_target, self.cursor.as_ref()) else {
            return;
        };
        if cursor.posted >= target {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(Ok(cursor.posted));
            }
            self.flush_target = None;
        }
    }

    /// Starts over from the last batch L1 recorded.
    fn resync(&mut self, last: LastBatch) -> BatcherResult<()> {
        let local_head = self.source.head()?;
        let Some(block) = self.source.block(last.last_block)? else {
            return Err(BatcherError::Mismatch(format!(
                "the rollup has batches up to L2 block {}, but this node's chain ends at block {local_head}; derive the chain from L1 first",
                last.last_block
            )));
        };
        if block.header.state_root != last.state_root {
            return Err(BatcherError::Mismatch(format!(
                "the rollup records state root {} after L2 block {}, this node has {}",
                last.state_root, last.last_block, block.header.state_root
            )));
        }
        info!(target: TARGET, batch_index = last.batch_index, last_block = last.last_block, "resuming after the last batch recorded on L1");
        self.cursor = Some(Cursor {
            next_index: last.batch_index + 1,
            prev_root: last.state_root,
            posted: last.last_block,
        });
        self.builder.reset(last.last_block + 1, block.hash);
        self.pending = None;
        self.metrics
            .last_posted_l2_block
            .set(last.last_block as i64);
        Ok(())
    }

    async fn post(&mut self, batch: &ClosedBatch) -> BatcherResult<()> {
        let cursor = self
            .cursor
            .as_ref()
            .expect("a batch is only closed after a resync");
        let header = BatchHeader {
            batch_index: cursor.next_index,
            first_block: batch.first_block(),
            last_block: batch.last_block(),
            prev_state_root: cursor.prev_root,
            new_state_root: batch.data.new_state_root(),
            l1_messages_included: batch.data.l1_messages_included,
        };
        let mode = match self.settings.da_mode {
            DaMode::Auto => self.txmgr.prices().await?.cheaper_mode(batch.encoded.len()),
            mode => mode,
        };
        let candidate = match mode {
            DaMode::Blobs => TxCandidate {
                to: self.settings.rollup,
                input: LanesRollup::submitBatchWithBlobsCall {
                    header: header.to_sol(),
                }
                .abi_encode()
                .into(),
                blob_data: Some(batch.encoded.clone()),
            },
            _ => TxCandidate {
                to: self.settings.rollup,
                input: LanesRollup::submitBatchCall {
                    header: header.to_sol(),
                    data: batch.encoded.clone(),
                }
                .abi_encode()
                .into(),
                blob_data: None,
            },
        };
        debug!(target: TARGET, index = header.batch_index, first = header.first_block, last = header.last_block, bytes = batch.encoded.len(), ?mode, "posting batch");
        let confirmed = self.txmgr.send(&candidate).await?;
        let latency = batch.closed_at.elapsed();
        let m = &self.metrics;
        m.batches_posted.inc();
        m.batch_raw_bytes.observe(batch.raw_bytes as f64);
        m.batch_compressed_bytes.observe(batch.encoded.len() as f64);
        m.compression_ratio.set(batch.compression_ratio());
        m.posting_latency.observe(latency.as_secs_f64());
        m.l1_gas_used.inc_by(confirmed.receipt.gas_used);
        m.l1_fee_wei.inc_by(confirmed.fee_wei() as f64);
        m.l1_gas_price_wei
            .set(confirmed.receipt.effective_gas_price as f64);
        m.last_posted_l2_block.set(header.last_block as i64);
        info!(target: TARGET,
            index = header.batch_index,
            blocks = %format!("{}..={}", header.first_block, header.last_block),
            txs = batch.data.transaction_count(),
            raw = batch.raw_bytes,
            compressed = batch.encoded.len(),
            ?mode,
            reason = batch.reason.as_str(),
            l1_block = confirmed.receipt.block_number,
            tx = %confirmed.receipt.tx_hash,
            gas = confirmed.receipt.gas_used,
            attempts = confirmed.attempts,
            latency = ?latency,
            "batch posted");
        let cursor = self.cursor.as_mut().expect("checked above");
        cursor.next_index += 1;
        cursor.prev_root = header.new_state_root;
        cursor.posted = header.last_block;
        self.last_balance_read = None;
        Ok(())
    }

    async fn last_batch_at(&self, block: BlockId) -> Result<LastBatch, L1Error> {
        let rollup = LanesRollup::new(self.settings.rollup, self.txmgr.provider().clone());
        let last = rollup
            .lastBatch()
            .block(block)
            .call()
            .await
            .map_err(|e| contract_error("lastBatch", e))?;
        Ok(LastBatch {
            batch_index: u64::try_from(last.batchIndex).unwrap_or(u64::MAX),
            last_block: last.lastBlock,
            state_root: last.stateRoot,
        })
    }

    async fn refresh_heads(&mut self) -> Result<(), L1Error> {
        let provider = self.txmgr.provider();
        let l1_head = provider
            .get_block_number()
            .await
            .map_err(|e| rpc_error("eth_blockNumber", e))?;
        let latest = self.last_batch_at(BlockId::number(l1_head)).await?;
        let safe_block = l1_head.saturating_sub(self.settings.confirmations.saturating_sub(1));
        let safe = self.last_batch_at(BlockId::number(safe_block)).await?;
        let rollup = LanesRollup::new(self.settings.rollup, provider.clone());
        let final_index = rollup
            .lastFinalizedBatchIndex()
            .block(BlockId::number(safe_block))
            .call()
            .await
            .map_err(|e| contract_error("lastFinalizedBatchIndex", e))?;
        let finalized = rollup
            .getBatch(final_index)
            .block(BlockId::number(safe_block))
            .call()
            .await
            .map_err(|e| contract_error("getBatch", e))?
            .lastBlock;
        self.heads = L2Heads {
            posted: latest.last_block,
            l1_head,
            safe: safe.last_block,
            safe_l1_block: safe_block,
            finalized,
        };
        self.metrics.last_final_l2_block.set(finalized as i64);
        let balance_due = self
            .last_balance_read
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(30));
        if balance_due {
            let balance = self.txmgr.balance().await?;
            self.metrics
                .l1_account_balance_wei
                .with_label_values(&["batcher"])
                .set(wei_f64(balance));
            self.last_balance_read = Some(Instant::now());
        }
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        let Ok(head) = self.source.head() else {
            return self.status.borrow().backlog;
        };
        let posted = self.cursor.as_ref().map_or(self.heads.posted, |c| c.posted);
        let unposted_blocks = head.saturating_sub(posted);
        let read_up_to = self.builder.next_block().saturating_sub(1);
        let unread = head.saturating_sub(read_up_to);
        let known = self.builder.raw_bytes() + self.pending.as_ref().map_or(0, |p| p.raw_bytes);
        let unposted_bytes = known as u64 + (unread as f64 * self.avg_block_bytes) as u64;
        Backlog {
            unposted_blocks,
            unposted_bytes,
            over_limit: unposted_bytes > self.settings.max_backlog_bytes,
        }
    }

    fn publish(&self) {
        let backlog = self.backlog();
        self.metrics
            .unposted_blocks
            .set(backlog.unposted_blocks as i64);
        self.metrics
            .unposted_bytes
            .set(backlog.unposted_bytes as i64);
        let status = BatcherStatus {
            running: self.running,
            heads: self.heads,
            backlog,
            last_batch_index: self.cursor.as_ref().map_or(0, |c| c.next_index - 1),
            last_error: self.last_error.clone(),
        };
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }
}

fn wei_f64(value: U256) -> f64 {
    // f64 keeps 53 bits: plenty for a balance gauge.
    value.to_string().parse().unwrap_or(f64::MAX)
}

/// The batcher key from `[batcher] private_key` or `private_key_file` (`None` when neither is
/// set). Errors never contain the key.
pub fn batcher_key(
    config: &lanes_config::BatcherConfig,
) -> Result<Option<alloy::signers::local::PrivateKeySigner>, L1Error> {
    if let Some(key) = &config.private_key {
        return lanes_l1_bridge::parse_private_key(key).map(Some);
    }
    let Some(path) = &config.private_key_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| L1Error::Config(format!("batcher key file {}: {e}", path.display())))?;
    lanes_l1_bridge::parse_private_key(&text).map(Some)
}

/// What the node calls: connects a [`TxManager`] to `l1_rpc_url` with `key`, registers the
/// batcher metrics in `registry` and spawns the task over `source` for the rollup at
/// `rollup`, with `[batcher]`'s settings. Runs until `cancel` fires.
#[allow(clippy::too_many_arguments)]
pub async fn spawn_batcher(
    config: &lanes_config::BatcherConfig,
    l1_rpc_url: &str,
    rollup: Address,
    key: alloy::signers::local::PrivateKeySigner,
    l2_chain_id: u64,
    source: Arc<dyn BlockSource>,
    registry: &lanes_monitoring::MetricsRegistry,
    cancel: CancellationToken,
) -> BatcherResult<(BatcherHandle, JoinHandle<BatcherResult<()>>)> {
    let metrics = BatcherMetrics::register(registry)?;
    let txmgr = TxManager::connect(l1_rpc_url, key, BatcherSettings::txmgr_config(config)).await?;
    let settings = BatcherSettings::from_config(config, l2_chain_id, rollup);
    Ok(Batcher::new(settings, source, Arc::new(txmgr), metrics).spawn(16, cancel))
}

/// Runs `f`, blocking work, without holding up the other tasks of a multi-threaded runtime.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_from_config_or_file_without_echoing_it() {
        let mut config = lanes_config::BatcherConfig::default();
        assert!(batcher_key(&config).unwrap().is_none());
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        config.private_key = Some(key.into());
        let from_config = batcher_key(&config).unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{key}\n")).unwrap();
        config.private_key = None;
        config.private_key_file = Some(file.clone());
        let from_file = batcher_key(&config).unwrap().unwrap();
        assert_eq!(from_config.address(), from_file.address());
        std::fs::write(&file, "0xdeadbeef").unwrap();
        let err = batcher_key(&config).unwrap_err().to_string();
        assert!(!err.contains("deadbeef"), "{err}");
    }

    #[test]
    fn settings_follow_the_config() {
        let config = lanes_config::BatcherConfig::default();
        let settings = BatcherSettings::from_config(&config, 42069, Address::repeat_byte(1));
        assert_eq!(settings.compression.codec, crate::Codec::Zstd);
        assert_eq!(settings.compression.level, 12);
        assert_eq!(settings.da_mode, DaMode::Auto);
        assert_eq!(settings.max_batch_bytes, config.max_batch_bytes);
        let txmgr = BatcherSettings::txmgr_config(&config);
        assert_eq!(txmgr.confirmations, 2);
        assert_eq!(txmgr.fee_bump_percent, 20);
    }
}
