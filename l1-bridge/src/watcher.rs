//! The L1 watcher: follows the portal's `TransactionDeposited` events and delivers them, in queue
//! order and only once they are `confirmations` blocks deep, to the sequencer.
//!
//! How it stays correct:
//! - Reorgs. Every poll first checks that the newest block it scanned is still canonical. If
//!   not, it walks back over the hashes it kept (scanned blocks, then recently delivered ones)
//!   to the newest block L1 still has, drops everything scanned above it and rescans. Messages
//!   are held back until `confirmations` deep, so those of orphaned blocks are dropped before
//!   they reach L2. A reorg deeper than that cannot be undone downstream; the watcher then
//!   rescans from the fork point, skips deposit nonces it already delivered and logs an error.
//! - Restarts. The [`WatcherCursor`] is saved after every delivered message; a restarted watcher
//!   rescans from the cursor's block and skips nonces below the cursor's, so it neither skips
//!   nor repeats a message (one message can repeat if the process dies between handing it over
//!   and saving the cursor; consumers compare `deposit_nonce` with what they executed).
//! - Outages. RPC failures are retried with exponential backoff for as long as it takes; only
//!   errors that retrying cannot fix (a nonce gap, a broken cursor store, undecodable events)
//!   end the task.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::B256;
use futures::future::try_join_all;
use lanes_config::L1Config;
use lanes_monitoring::{Gauge, IntCounter, IntGauge, MetricsRegistry, MonitoringResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::client::L1Client;
use crate::cursor::{CursorStore, WatcherCursor};
use crate::error::{L1Error, L1Result};
use crate::types::L1Message;

/// How the watcher follows L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherConfig {
    /// Blocks on top of a block before its messages are delivered (`l1.confirmations`).
    pub confirmations: u64,
    /// Pause between polls once caught up with L1 (`l1.poll_interval`).
    pub poll_interval: Duration,
    /// First L1 block to scan when no cursor is saved: the contracts' deploy block.
    pub start_block: u64,
    /// Most blocks per `eth_getLogs` query.
    pub max_block_range: u64,
    /// First wait after a failed poll; doubled on every further failure.
    pub backoff_initial: Duration,
    /// Longest wait between retries.
    pub backoff_max: Duration,
    /// How many delivered blocks' hashes are kept to find the fork point of a deep reorg.
    pub history: usize,
}

impl WatcherConfig {
    /// Defaults for a watcher starting at `start_block`.
    pub fn new(start_block: u64) -> Self {
        Self {
            confirmations: 2,
            poll_interval: Duration::from_secs(2),
            start_block,
            max_block_range: 1000,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            history: 256,
        }
    }

    /// `confirmations` and `poll_interval` from the `[l1]` config section.
    pub fn from_l1_config(l1: &L1Config, start_block: u64) -> Self {
        Self {
            confirmations: l1.confirmations,
            poll_interval: l1.poll_interval,
            ..Self::new(start_block)
        }
    }
}

/// The watcher's metrics.
#[derive(Debug, Clone)]
pub struct WatcherMetrics {
    head_block: IntGauge,
    deposits_seen: IntCounter,
    reorgs: IntCounter,
    rpc_errors: IntCounter,
    messages_pending: IntGauge,
    oldest_pending_age: Gauge,
}

impl WatcherMetrics {
    /// Registers `lanes_l1_head_block`, `lanes_l1_deposits_seen_total`, `lanes_l1_reorgs_total`,
    /// `lanes_l1_rpc_errors_total`, `lanes_l1_messages_pending` and
    /// `lanes_l1_oldest_pending_message_age_seconds` in `registry`.
    pub fn register(registry: &MetricsRegistry) -> MonitoringResult<Self> {
        Ok(Self {
            head_block: registry.int_gauge(
                "lanes_l1_head_block",
                "Latest L1 block number seen by the L1 watcher.",
            )?,
            deposits_seen: registry.counter(
                "lanes_l1_deposits_seen_total",
                "L1 -> L2 messages (deposits and forced transactions) delivered to L2 after their confirmation depth.",
            )?,
            reorgs: registry.counter(
                "lanes_l1_reorgs_total",
                "L1 reorgs the L1 watcher rolled back.",
            )?,
            rpc_errors: registry.counter(
                "lanes_l1_rpc_errors_total",
                "Failed L1 watcher polls (L1 unreachable or erroring); each is retried with backoff.",
            )?,
            messages_pending: registry.int_gauge(
                "lanes_l1_messages_pending",
                "L1 -> L2 messages (deposits and forced transactions) seen on L1 and not yet delivered to L2, most waiting for their confirmation depth.",
            )?,
            oldest_pending_age: registry.gauge(
                "lanes_l1_oldest_pending_message_age_seconds",
                "Seconds since the oldest L1 -> L2 message not yet delivered to L2 was enqueued on L1 (0 when none); it must be included within the rollup's forceInclusionDelay.",
            )?,
        })
    }

    /// Metrics in a private registry, for tests and tools that do not export them.
    pub fn unregistered() -> Self {
        Self::register(&MetricsRegistry::new()).expect("a fresh registry accepts the metrics")
    }

    /// Current value of `lanes_l1_head_block`.
    pub fn head_block(&self) -> u64 {
        u64::try_from(self.head_block.get()).unwrap_or(0)
    }

    /// Current value of `lanes_l1_deposits_seen_total`.
    pub fn deposits_seen(&self) -> u64 {
        self.deposits_seen.get()
    }

    /// Current value of `lanes_l1_reorgs_total`.
    pub fn reorgs(&self) -> u64 {
        self.reorgs.get()
    }

    /// Current value of `lanes_l1_rpc_errors_total`.
    pub fn rpc_errors(&self) -> u64 {
        self.rpc_errors.get()
    }

    /// Current value of `lanes_l1_messages_pending`.
    pub fn messages_pending(&self) -> u64 {
        u64::try_from(self.messages_pending.get()).unwrap_or(0)
    }

    /// Current value of `lanes_l1_oldest_pending_message_age_seconds`.
    pub fn oldest_pending_age(&self) -> f64 {
        self.oldest_pending_age.get()
    }

    /// Sets the pending-message gauges from the messages not yet delivered, at unix time
    /// `now` (seconds). L1 timestamps are whole seconds, so the age is too.
    fn set_pending<'a>(&self, pending: impl Iterator<Item = &'a L1Message>, now: u64) {
        let (count, oldest) = pending.fold((0i64, None::<u64>), |(n, oldest), m| {
            (
                n + 1,
                Some(oldest.map_or(m.enqueued_at, |o| o.min(m.enqueued_at))),
            )
        });
        self.messages_pending.set(count);
        self.oldest_pending_age
            .set(oldest.map_or(0, |t| now.saturating_sub(t)) as f64);
    }
}

/// Follows the portal on L1 and delivers its messages; see the module docs.
pub struct L1Watcher {
    client: Arc<dyn L1Client>,
    store: Arc<dyn CursorStore>,
    config: WatcherConfig,
    metrics: WatcherMetrics,
}

impl std::fmt::Debug for L1Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1Watcher")
            .field("contracts", &self.client.contracts())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A block scanned but not yet fully delivered.
#[derive(Debug)]
struct ScannedBlock {
    number: u64,
    /// `None` for a block inside a confirmed range whose header was not fetched.
    hash: Option<B256>,
    messages: Vec<L1Message>,
}

/// What one poll achieved.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Caught up with L1 (or L1 changed under us): wait `poll_interval`.
    Idle,
    /// More blocks to scan: poll again at once.
    Busy,
    /// Cancelled, or the receiver is gone.
    Stopped,
}

/// What scanning a block range found.
enum Scan {
    Done,
    /// L1 changed between our queries: look again next poll.
    Raced,
    /// The range does not build on the newest block we scanned.
    Reorg,
}

struct State {
    cursor: WatcherCursor,
    /// Recently delivered blocks with known hashes, oldest first.
    delivered: VecDeque<(u64, B256)>,
    /// Scanned blocks not fully delivered, ascending; the last one's hash is always known.
    pending: VecDeque<ScannedBlock>,
}

impl L1Watcher {
    /// A watcher reading L1 through `client` and saving its cursor in `store`.
    pub fn new(
        client: Arc<dyn L1Client>,
        store: Arc<dyn CursorStore>,
        config: WatcherConfig,
        metrics: WatcherMetrics,
    ) -> Self {
        Self {
            client,
            store,
            config,
            metrics,
        }
    }

    /// Runs the watcher as a task delivering into a channel of `capacity` messages. The task
    /// ends with `Ok` when `cancel` fires or the receiver is dropped, and with the error when it
    /// meets one retrying cannot fix.
    pub fn spawn(
        self,
        capacity: usize,
        cancel: CancellationToken,
    ) -> (mpsc::Receiver<L1Message>, JoinHandle<L1Result<()>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (rx, tokio::spawn(self.run(tx, cancel)))
    }

    /// Follows L1 until cancelled; see [`L1Watcher::spawn`].
    pub async fn run(self, tx: mpsc::Sender<L1Message>, cancel: CancellationToken) -> L1Result<()> {
        let cursor = self
            .store
            .load()?
            .unwrap_or_else(|| WatcherCursor::genesis(self.config.start_block));
        let mut delivered = VecDeque::new();
        if let (Some(parent), Some(hash)) = (cursor.next_block.checked_sub(1), cursor.parent_hash) {
            delivered.push_back((parent, hash));
        }
        let mut state = State {
            cursor,
            delivered,
            pending: VecDeque::new(),
        };
        info!(
            portal = %self.client.contracts().portal,
            next_block = state.cursor.next_block,
            next_deposit_nonce = state.cursor.next_deposit_nonce,
            confirmations = self.config.confirmations,
            "L1 watcher started"
        );

        let mut backoff = self.config.backoff_initial;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let stepped = self.step(&mut state, &tx, &cancel).await;
            self.metrics
                .set_pending(state.pending.iter().flat_map(|b| &b.messages), unix_now());
            let wait = match stepped {
                Ok(Step::Stopped) => return Ok(()),
                Ok(Step::Busy) => {
                    backoff = self.config.backoff_initial;
                    continue;
                }
                Ok(Step::Idle) => {
                    backoff = self.config.backoff_initial;
                    self.config.poll_interval
                }
                Err(e) if e.is_retryable() => {
                    self.metrics.rpc_errors.inc();
                    warn!(error = %e, retry_in = ?backoff, "L1 watcher poll failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                    wait
                }
                Err(e) => {
                    error!(error = %e, "L1 watcher stopped");
                    return Err(e);
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }

    async fn step(
        &self,
        state: &mut State,
        tx: &mpsc::Sender<L1Message>,
        cancel: &CancellationToken,
    ) -> L1Result<Step> {
        let head = self.client.latest_block_number().await?;
        self.metrics
            .head_block
            .set(i64::try_from(head).unwrap_or(i64::MAX));

        // A reorg anywhere below the newest scanned block changes that block's hash, so checking
        // it alone notices every reorg that matters.
        if let Some((number, hash)) = tip(state)
            && self.client.block_hash(number).await? != Some(hash)
        {
            self.rewind(state).await?;
            return Ok(Step::Busy);
        }

        let confirmed_upto = head.checked_sub(self.config.confirmations);
        let from = next_scan(state);
        if from <= head {
            let to = head.min(from.saturating_add(self.config.max_block_range.max(1) - 1));
            match self.scan(state, from, to, confirmed_upto).await? {
                Scan::Done => {}
                Scan::Raced => return Ok(Step::Idle),
                Scan::Reorg => {
                    self.rewind(state).await?;
                    return Ok(Step::Busy);
                }
            }
        }
        if let Some(confirmed) = confirmed_upto
            && self.deliver(state, confirmed, tx, cancel).await? == Step::Stopped
        {
            return Ok(Step::Stopped);
        }
        Ok(if next_scan(state) <= head {
            Step::Busy
        } else {
            Step::Idle
        })
    }

    /// Scans blocks `from..=to` into `state.pending`. Headers are fetched for `from` (to link to
    /// what we have), for the last confirmed block of the range (the cursor's next hash) and for
    /// every unconfirmed block (to notice their reorgs); confirmed blocks in between need none.
    async fn scan(
        &self,
        state: &mut State,
        from: u64,
        to: u64,
        confirmed_upto: Option<u64>,
    ) -> L1Result<Scan> {
        let last_confirmed = confirmed_upto.filter(|c| *c >= from).map(|c| c.min(to));
        let mut numbers = vec![from];
        numbers.extend(last_confirmed);
        numbers.extend(last_confirmed.map_or(from, |c| c + 1)..=to);
        numbers.sort_unstable();
        numbers.dedup();
        let fetched = try_join_all(numbers.iter().map(|n| self.client.block(*n))).await?;
        let mut headers = BTreeMap::new();
        for block in fetched {
            // A missing block below the head we just read: L1 is reorganising under us.
            let Some(block) = block else {
                return Ok(Scan::Raced);
            };
            headers.insert(block.number, block);
        }
        if let Some((_, tip_hash)) = tip(state)
            && headers[&from].parent_hash != tip_hash
        {
            return Ok(Scan::Reorg);
        }
        for (number, block) in &headers {
            if let Some(parent) = number.checked_sub(1).and_then(|p| headers.get(&p))
                && block.parent_hash != parent.hash
            {
                return Ok(Scan::Raced);
            }
        }

        let messages = self.client.portal_messages(from, to).await?;
        let mut by_block: BTreeMap<u64, Vec<L1Message>> = BTreeMap::new();
        for message in messages {
            let number = message.l1_block_number;
            if !(from..=to).contains(&number) {
                return Err(L1Error::InvalidData {
                    context: "eth_getLogs",
                    message: format!("log of block {number} in a query for {from}..={to}"),
                });
            }
            if headers
                .get(&number)
                .is_some_and(|h| h.hash != message.l1_block_hash)
            {
                return Ok(Scan::Raced);
            }
            by_block.entry(number).or_default().push(message);
        }

        let mut numbers: Vec<u64> = headers.keys().chain(by_block.keys()).copied().collect();
        numbers.sort_unstable();
        numbers.dedup();
        for number in numbers {
            state.pending.push_back(ScannedBlock {
                number,
                hash: headers.get(&number).map(|h| h.hash),
                messages: by_block.remove(&number).unwrap_or_default(),
            });
        }
        debug!(from, to, pending = state.pending.len(), "scanned L1 blocks");
        Ok(Scan::Done)
    }

    /// Hands over the messages of every pending block up to `confirmed`, saving the cursor as it
    /// goes.
    async fn deliver(
        &self,
        state: &mut State,
        confirmed: u64,
        tx: &mpsc::Sender<L1Message>,
        cancel: &CancellationToken,
    ) -> L1Result<Step> {
        while state.pending.front().is_some_and(|b| b.number <= confirmed) {
            let block = state.pending.pop_front().expect("checked above");
            for message in block.messages {
                let expected = state.cursor.next_deposit_nonce;
                if message.deposit_nonce < expected {
                    debug!(
                        deposit_nonce = message.deposit_nonce,
                        "L1 message already delivered"
                    );
                    continue;
                }
                if message.deposit_nonce > expected {
                    return Err(L1Error::NonceGap {
                        expected,
                        found: message.deposit_nonce,
                        block: block.number,
                    });
                }
                debug!(
                    deposit_nonce = message.deposit_nonce,
                    l1_block = block.number,
                    "delivering L1 message"
                );
                tokio::select! {
                    sent = tx.send(message) => if sent.is_err() { return Ok(Step::Stopped) },
                    () = cancel.cancelled() => return Ok(Step::Stopped),
                }
                state.cursor.next_deposit_nonce += 1;
                self.metrics.deposits_seen.inc();
                self.store.save(&state.cursor)?;
            }
            state.cursor.next_block = block.number + 1;
            state.cursor.parent_hash = block.hash;
            if let Some(hash) = block.hash {
                state.delivered.push_back((block.number, hash));
                while state.delivered.len() > self.config.history.max(1) {
                    state.delivered.pop_front();
                }
            }
            self.store.save(&state.cursor)?;
        }
        Ok(Step::Idle)
    }

    /// Rolls back to the newest block we know of that L1 still has.
    async fn rewind(&self, state: &mut State) -> L1Result<()> {
        let mut fork = None;
        let scanned = state
            .pending
            .iter()
            .rev()
            .filter_map(|b| Some((b.number, b.hash?, true)));
        let delivered = state.delivered.iter().rev().map(|(n, h)| (*n, *h, false));
        for (number, hash, is_pending) in scanned.chain(delivered).collect::<Vec<_>>() {
            if self.client.block_hash(number).await? == Some(hash) {
                fork = Some((number, hash, is_pending));
                break;
            }
        }
        self.metrics.reorgs.inc();

        match fork {
            Some((number, _, true)) => {
                let orphaned: Vec<_> = state.pending.iter().filter(|b| b.number > number).collect();
                let dropped: usize = orphaned.iter().map(|b| b.messages.len()).sum();
                warn!(
                    fork_block = number,
                    orphaned_blocks = orphaned.len(),
                    dropped_messages = dropped,
                    "L1 reorg: dropped unconfirmed blocks"
                );
                state.pending.retain(|b| b.number <= number);
            }
            Some((number, hash, false)) => {
                error!(
                    fork_block = number,
                    delivered_up_to = state.cursor.next_block.saturating_sub(1),
                    next_deposit_nonce = state.cursor.next_deposit_nonce,
                    "L1 reorg deeper than the confirmation depth reached delivered messages; \
                     rescanning, without delivering nonces already delivered (raise l1.confirmations)"
                );
                state.pending.clear();
                state.delivered.retain(|(n, _)| *n <= number);
                state.cursor.next_block = number + 1;
                state.cursor.parent_hash = Some(hash);
                self.store.save(&state.cursor)?;
            }
            None => {
                let oldest = state
                    .delivered
                    .front()
                    .map_or(state.cursor.next_block, |(n, _)| *n);
                error!(
                    rescan_from = oldest,
                    "L1 reorg deeper than every block hash the watcher kept; rescanning"
                );
                state.pending.clear();
                state.delivered.clear();
                state.cursor.next_block = oldest;
                state.cursor.parent_hash = None;
                self.store.save(&state.cursor)?;
            }
        }
        Ok(())
    }
}

/// The newest scanned block with its hash, if known.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tip(state: &State) -> Option<(u64, B256)> {
    match state.pending.back() {
        Some(block) => block.hash.map(|h| (block.number, h)),
        None => Some((
            state.cursor.next_block.checked_sub(1)?,
            state.cursor.parent_hash?,
        )),
    }
}

/// The next block to scan.
fn next_scan(state: &State) -> u64 {
    state
        .pending
        .back()
        .map_or(state.cursor.next_block, |b| b.number + 1)
}

#[cfg(test)]
#[path = "watcher_tests.rs"]
mod tests;
