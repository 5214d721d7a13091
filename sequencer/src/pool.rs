//! Transaction intake: decoding and sender recovery on a CPU pool, validation against the
//! latest state, admission into the [`Mempool`].

use crate::{
    chain::Chain,
    mempool::{AccountState, AddOutcome, Mempool, PoolLimits, PoolTransaction},
    metrics::SequencerMetrics,
    validation::{self, Fork, TxValidationError, ValidationContext},
};
use alloy_primitives::{Address, B256, Bytes, U256};
use parking_lot::Mutex;
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use tokio::sync::broadcast;

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction was refused (geth's message in `Display`).
    #[error(transparent)]
    Rejected(#[from] TxValidationError),
    /// The node is shutting down and no longer accepts transactions.
    #[error("sequencer is shutting down")]
    ShuttingDown,
    /// Reading account state failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The shared pool: a locked [`Mempool`] plus what intake needs to validate.
#[derive(Debug)]
pub struct TxPool {
    mempool: Mutex<Mempool>,
    chain: Arc<Chain>,
    limits: PoolLimits,
    accepting: AtomicBool,
    metrics: Arc<SequencerMetrics>,
    /// Threads for decoding and sender recovery. Not rayon's global pool: the state root
    /// runs its parallel parts there, and behind a queue of intake batches (each ~100
    /// recoveries, ~5 ms) every one of them would wait, stalling block commits. Own threads
    /// leave the sharing of the cores to the OS scheduler, at a lower priority
    /// ([`INTAKE_NICE`]).
    intake: rayon::ThreadPool,
    /// Hashes of admitted transactions, for pending-transaction filters and subscriptions.
    /// A ring: receivers that fall behind lose the oldest, the sender never waits.
    admitted: broadcast::Sender<B256>,
}

/// Admissions kept for receivers that fall behind (pending-transaction filters are polled,
/// often every few seconds).
const ADMITTED_CHANNEL: usize = 16_384;

impl TxPool {
    /// Creates the pool.
    pub fn new(chain: Arc<Chain>, limits: PoolLimits, metrics: Arc<SequencerMetrics>) -> Self {
        let mut mempool = Mempool::new(limits.clone());
        mempool.set_base_fee(chain.head().header.base_fee_per_gas.unwrap_or_default());
        metrics.set_pool_limits(&limits);
        Self {
            mempool: Mutex::new(mempool),
            chain,
            limits,
            accepting: AtomicBool::new(true),
            metrics,
            intake: rayon::ThreadPoolBuilder::new()
                .num_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .thread_name(|i| format!("lanes-intake-{i}"))
                .start_handler(|_| lower_priority())
                .build()
                .expect("spawning intake threads"),
            admitted: broadcast::channel(ADMITTED_CHANNEL).0,
        }
    }

    /// Hashes of the transactions admitted from now on (each one, pending or queued, once).
    pub fn subscribe_admitted(&self) -> broadcast::Receiver<B256> {
        self.admitted.subscribe()
    }

    /// Locks the mempool (block producer, RPC reads).
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, Mempool> {
        self.mempool.lock()
    }

    /// Stops intake (shutdown).
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Decodes, validates and admits a raw transaction; returns its hash.
    ///
    /// The CPU-heavy part (sender recovery, ~56 µs) runs on the intake threads, never on the
    /// async runtime's threads.
    pub async fn submit_raw(self: &Arc<Self>, raw: Vec<u8>) -> Result<B256, SubmitError> {
        if !self.accepting.load(Ordering::Relaxed) {
            return Err(SubmitError::ShuttingDown);
        }
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.intake.spawn(move || {
            let _ = tx.send(this.submit_blocking(&raw));
        });
        let result = rx
            .await
            .map_err(|_| SubmitError::Internal("intake worker died".into()))?;
        self.count(&result);
        result
    }

    /// [`TxPool::submit_raw`] for several transactions (a JSON-RPC batch): senders are
    /// recovered in parallel, then the transactions are admitted one after another in the
    /// order given, so a sender's nonces in one batch are judged exactly as if sent one by
    /// one. One hop to the CPU pool for the lot instead of one per transaction.
    pub async fn submit_raw_batch(
        self: &Arc<Self>,
        raws: Vec<Bytes>,
    ) -> Vec<Result<B256, SubmitError>> {
        if !self.accepting.load(Ordering::Relaxed) {
            return raws
                .iter()
                .map(|_| Err(SubmitError::ShuttingDown))
                .collect();
        }
        let len = raws.len();
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.intake.spawn(move || {
            let prepared: Vec<_> = raws.par_iter().map(|raw| this.prepare(raw)).collect();
            let admitted: Vec<_> = prepared
                .into_iter()
                .map(|tx| tx.and_then(|tx| this.admit(tx)))
                .collect();
            let _ = tx.send(admitted);
        });
        let results = match rx.await {
            Ok(results) => results,
            Err(_) => (0..len)
                .map(|_| Err(SubmitError::Internal("intake worker died".into())))
                .collect(),
        };
        for result in &results {
            self.count(result);
        }
        results
    }

    fn count(&self, result: &Result<B256, SubmitError>) {
        match result {
            Ok(_) => self.metrics.tx_accepted.inc(),
            Err(SubmitError::Rejected(err)) => self
                .metrics
                .tx_rejected
                .with_label_values(&[reject_reason(err)])
                .inc(),
            Err(_) => {}
        }
        self.metrics.tx_received.inc();
    }

    /// The synchronous body of [`TxPool::submit_raw`].
    pub fn submit_blocking(&self, raw: &[u8]) -> Result<B256, SubmitError> {
        self.prepare(raw).and_then(|tx| self.admit(tx))
    }

    /// What needs no pool or account state: size, decoding, sender recovery, and the checks
    /// against the chain's rules. Independent per transaction, so it can run in parallel.
    fn prepare(&self, raw: &[u8]) -> Result<PoolTransaction, SubmitError> {
        if raw.len() > self.limits.max_tx_bytes {
            return Err(TxValidationError::OversizedData {
                size: raw.len(),
                limit: self.limits.max_tx_bytes,
            }
            .into());
        }
        let tx = validation::decode_and_recover(raw)?;
        let head = self.chain.head();
        let spec = self.chain.spec();
        let next_base_fee = next_base_fee(&head.header, spec.base_fee_floor);
        let ctx = ValidationContext {
            chain_id: spec.chain_id,
            block_gas_limit: head.header.gas_limit,
            base_fee_floor: spec.base_fee_floor.min(next_base_fee),
            limits: &self.limits,
            fork: Fork::Cancun,
        };
        validation::validate_stateless(&tx, &ctx)?;
        Ok(tx)
    }

    /// Checks `tx` against its sender's latest state and pooled transactions, and adds it.
    /// Transactions of one sender must be admitted in nonce-submission order.
    fn admit(&self, tx: PoolTransaction) -> Result<B256, SubmitError> {
        let (nonce, balance) = self.account(tx.sender)?;
        let hash = tx.hash;
        let mut pool = self.mempool.lock();
        let pending_nonce = pool.pending_nonce(tx.sender, nonce);
        validation::validate_stateful(&tx, nonce, pending_nonce, balance, &self.limits)?;
        let AddOutcome { .. } = pool.add(tx, nonce, balance)?;
        self.metrics.set_pool_sizes(&pool);
        drop(pool);
        // No receiver is not an error: nobody watches the pool.
        let _ = self.admitted.send(hash);
        Ok(hash)
    }

    /// (nonce, balance) of `address` after every executed block.
    pub fn account(&self, address: Address) -> Result<(u64, U256), SubmitError> {
        let account = self
            .chain
            .latest_account(address)
            .map_err(|e| SubmitError::Internal(e.to_string()))?;
        Ok(account.map_or((0, U256::ZERO), |a| (a.nonce, a.balance)))
    }

    /// The next nonce `address` should use, counting its pending pool transactions.
    pub fn pending_nonce(&self, address: Address) -> Result<u64, SubmitError> {
        let (nonce, _) = self.account(address)?;
        Ok(self.mempool.lock().pending_nonce(address, nonce))
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<PoolTransaction> {
        self.mempool.lock().get(hash).cloned()
    }

    /// Applies a committed block to the pool.
    pub fn on_block(
        &self,
        included: &[B256],
        next_base_fee: u64,
        touched: Vec<(Address, AccountState)>,
        invalid: &[B256],
    ) {
        let mut pool = self.mempool.lock();
        for hash in invalid {
            pool.remove(hash);
        }
        pool.on_block(included, next_base_fee, touched);
        let expired = pool.evict_expired(std::time::Instant::now());
        if !expired.is_empty() {
            tracing::debug!(target: "lanes::pool", expired = expired.len(), "dropped expired transactions");
        }
        self.metrics.set_pool_sizes(&pool);
    }
}

/// Nice value of the intake threads. Under a flood of transactions intake alone can keep
/// every core busy; at equal priority the block pipeline (execution, state root, commit)
/// then gets a thread's share like any other and blocks fall behind their slot while the
/// pool fills. Lower-priority intake takes what the pipeline leaves: inclusion keeps pace,
/// and admission slows down instead (clients see the node accept more slowly, not
/// transactions waiting ever longer for a block).
pub const INTAKE_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`INTAKE_NICE`]. On Linux the nice value is a
/// per-thread attribute, and `setpriority(PRIO_PROCESS, 0)` sets the calling thread's only.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::process::setpriority_process(None, INTAKE_NICE) {
        tracing::warn!(target: "lanes::pool", %err, "could not lower the intake threads' priority");
    }
}

/// Base fee of the block after `parent` (EIP-1559), never below `floor`.
pub fn next_base_fee(parent: &alloy_consensus::Header, floor: u64) -> u64 {
    let next = parent
        .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
        .unwrap_or_default();
    next.max(floor)
}

/// Error message prefixes and the `reason` label of `lanes_tx_rejected_total` they map to.
const REJECT_REASON_PREFIXES: [(&str, &str); 17] = [
    ("rlp", "decode"),
    ("transaction type not supported", "tx_type"),
    ("only replay-protected", "unprotected"),
    ("invalid chain id", "chain_id"),
    ("invalid sender", "sender"),
    ("nonce too low", "nonce_too_low"),
    ("nonce too high", "nonce_too_high"),
    ("insufficient funds", "insufficient_funds"),
    ("intrinsic gas too low", "intrinsic_gas"),
    ("exceeds block gas limit", "gas_limit"),
    ("max fee per gas less than block base fee", "fee_cap"),
    (
        "replacement transaction underpriced",
        "replacement_underpriced",
    ),
    ("txpool is full", "pool_full"),
    ("already known", "already_known"),
    ("oversized data", "oversized"),
    ("transaction underpriced", "underpriced"),
    ("account limit exceeded", "account_limit"),
];

/// Every `reason` label [`reject_reason`] returns, for metrics that start each at 0.
pub const REJECT_REASONS: [&str; 18] = {
    let mut out = ["other"; 18];
    let mut i = 0;
    while i < REJECT_REASON_PREFIXES.len() {
        out[i] = REJECT_REASON_PREFIXES[i].1;
        i += 1;
    }
    out
};

/// Low-cardinality label for a rejection, for the `lanes_tx_rejected_total` metric.
pub fn reject_reason(err: &TxValidationError) -> &'static str {
    let text = err.to_string();
    for (prefix, label) in REJECT_REASON_PREFIXES {
        if text.starts_with(prefix) {
            return label;
        }
    }
    "other"
}
