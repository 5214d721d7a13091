//! Watcher logic against a scripted in-memory L1: confirmations, reorgs, outages, restarts.
//! The anvil-backed tests in `tests/` cover the same paths against a real node.

use std::sync::Mutex;

use alloy::primitives::{Address, Bytes, TxHash, U256, keccak256};
use alloy::rpc::types::TransactionRequest;
use tokio::time::timeout;

use super::*;
use crate::client::L1Future;
use crate::cursor::MemoryCursorStore;
use crate::types::{BatchHeader, ForcedInclusion, L1BlockRef, L1Contracts, L1Receipt, LastBatch};

#[derive(Default)]
struct Chain {
    blocks: Vec<(L1BlockRef, Vec<L1Message>)>,
    down: bool,
    /// Makes blocks mined after a reorg differ from the ones they replace.
    salt: u64,
}

struct FakeL1 {
    chain: Mutex<Chain>,
}

impl FakeL1 {
    fn new() -> Arc<Self> {
        let fake = Arc::new(Self {
            chain: Mutex::new(Chain::default()),
        });
        fake.mine(&[0]);
        fake
    }

    /// Appends one block per entry, each with that many deposits.
    fn mine(&self, deposits_per_block: &[usize]) {
        let mut chain = self.chain.lock().unwrap();
        for &deposits in deposits_per_block {
            let number = chain.blocks.len() as u64;
            let parent_hash = chain.blocks.last().map_or(B256::ZERO, |(b, _)| b.hash);
            let mut seed = parent_hash.to_vec();
            seed.extend(number.to_be_bytes());
            seed.extend(chain.salt.to_be_bytes());
            let hash = keccak256(seed);
            let mut nonce = chain
                .blocks
                .iter()
                .map(|(_, m)| m.len() as u64)
                .sum::<u64>();
            let messages = (0..deposits)
                .map(|i| {
                    let message = L1Message {
                        deposit_nonce: nonce,
                        from: Address::repeat_byte(1),
                        to: Address::repeat_byte(2),
                        mint: U256::from(chain.salt * 1000 + nonce),
                        value: U256::ZERO,
                        gas_limit: 21_000,
                        data: Bytes::new(),
                        l1_block_number: number,
                        l1_block_hash: hash,
                        log_index: i as u64,
                        enqueued_at: number * 12,
                    };
                    nonce += 1;
                    message
                })
                .collect();
            let block = L1BlockRef {
                number,
                hash,
                parent_hash,
                timestamp: number * 12,
            };
            chain.blocks.push((block, messages));
        }
    }

    /// Replaces the newest `depth` blocks by `replacement` (deposits per block).
    fn reorg(&self, depth: usize, replacement: &[usize]) {
        {
            let mut chain = self.chain.lock().unwrap();
            let keep = chain.blocks.len() - depth;
            chain.blocks.truncate(keep);
            chain.salt += 1;
        }
        self.mine(replacement);
    }

    fn set_down(&self, down: bool) {
        self.chain.lock().unwrap().down = down;
    }

    fn read<T>(&self, f: impl FnOnce(&Chain) -> T) -> L1Result<T> {
        let chain = self.chain.lock().unwrap();
        if chain.down {
            return Err(L1Error::Unavailable {
                context: "fake",
                message: "connection refused".into(),
            });
        }
        Ok(f(&chain))
    }
}

fn unsupported<'a, T: Send + 'a>() -> L1Future<'a, T> {
    Box::pin(async { Err(L1Error::Config("not supported by the fake L1".into())) })
}

impl L1Client for FakeL1 {
    fn contracts(&self) -> L1Contracts {
        L1Contracts {
            rollup: Address::ZERO,
            portal: Address::ZERO,
        }
    }
    fn signer_address(&self) -> Option<Address> {
        None
    }
    fn chain_id(&self) -> L1Future<'_, u64> {
        Box::pin(async { Ok(1) })
    }
    fn latest_block_number(&self) -> L1Future<'_, u64> {
        let r = self.read(|c| c.blocks.len() as u64 - 1);
        Box::pin(async move { r })
    }
    fn block(&self, number: u64) -> L1Future<'_, Option<L1BlockRef>> {
        let r = self.read(|c| c.blocks.get(number as usize).map(|(b, _)| *b));
        Box::pin(async move { r })
    }
    fn portal_messages(&self, from: u64, to: u64) -> L1Future<'_, Vec<L1Message>> {
        let r = self.read(|c| {
            c.blocks
                .iter()
                .filter(|(b, _)| (from..=to).contains(&b.number))
                .flat_map(|(_, m)| m.clone())
                .collect()
        });
        Box::pin(async move { r })
    }
    fn balance(&self, _: Address) -> L1Future<'_, U256> {
        unsupported()
    }
    fn last_batch(&self) -> L1Future<'_, LastBatch> {
        unsupported()
    }
    fn next_forced_inclusion(&self) -> L1Future<'_, ForcedInclusion> {
        unsupported()
    }
    fn is_finalized(&self, _: u64) -> L1Future<'_, bool> {
        unsupported()
    }
    fn send_transaction(&self, _: TransactionRequest) -> L1Future<'_, TxHash> {
        unsupported()
    }
    fn receipt(&self, _: TxHash) -> L1Future<'_, Option<L1Receipt>> {
        unsupported()
    }
    fn submit_batch(&self, _: BatchHeader, _: Bytes) -> L1Future<'_, L1Receipt> {
        unsupported()
    }
}

fn config(confirmations: u64, start_block: u64) -> WatcherConfig {
    WatcherConfig {
        confirmations,
        poll_interval: Duration::from_millis(5),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        max_block_range: 3,
        ..WatcherConfig::new(start_block)
    }
}

struct Running {
    rx: mpsc::Receiver<L1Message>,
    task: JoinHandle<L1Result<()>>,
    cancel: CancellationToken,
    metrics: WatcherMetrics,
}

fn start(fake: &Arc<FakeL1>, store: &MemoryCursorStore, config: WatcherConfig) -> Running {
    let metrics = WatcherMetrics::unregistered();
    let cancel = CancellationToken::new();
    let watcher = L1Watcher::new(
        fake.clone(),
        Arc::new(store.clone()),
        config,
        metrics.clone(),
    );
    let (rx, task) = watcher.spawn(16, cancel.clone());
    Running {
        rx,
        task,
        cancel,
        metrics,
    }
}

impl Running {
    async fn next(&mut self) -> L1Message {
        timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a message within 5s")
            .expect("the watcher is running")
    }

    /// Asserts nothing arrives for a while (long enough for dozens of polls).
    async fn nothing(&mut self) {
        if let Ok(Some(m)) = timeout(Duration::from_millis(150), self.rx.recv()).await {
            panic!("unexpected message {m:?}");
        }
    }

    async fn stop(self) -> L1Result<()> {
        self.cancel.cancel();
        timeout(Duration::from_secs(5), self.task)
            .await
            .expect("stops on cancel")
            .expect("no panic")
    }
}

#[tokio::test]
async fn delivers_only_after_confirmations_in_order() {
    let fake = FakeL1::new();
    fake.mine(&[2, 0, 1]); // blocks 1..=3, nonces 0, 1 | - | 2
    let store = MemoryCursorStore::new();
    let mut w = start(&fake, &store, config(2, 1));

    // Head 3: blocks 1 is confirmed, 2 and 3 are not.
    assert_eq!(w.next().await.deposit_nonce, 0);
    assert_eq!(w.next().await.deposit_nonce, 1);
    w.nothing().await;
    // Nonce 2 (block 3, enqueued at L1 time 36) waits for its confirmations.
    assert_eq!(w.metrics.messages_pending(), 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let age = w.metrics.oldest_pending_age();
    assert!(
        (now - 36 - 1) as f64 <= age && age <= (now - 36 + 1) as f64,
        "{age}"
    );
    fake.mine(&[0]);
    w.nothing().await;
    fake.mine(&[0]);
    let m = w.next().await;
    assert_eq!((m.deposit_nonce, m.l1_block_number), (2, 3));
    assert_eq!(w.metrics.head_block(), 5);
    let metrics = w.metrics.clone();
    w.stop().await.unwrap();
    // After the stop, so the count of the last hand-over is in.
    assert_eq!(metrics.deposits_seen(), 3);
    assert_eq!(metrics.messages_pending(), 0);
    assert_eq!(metrics.oldest_pending_age(), 0.0);
    let cursor = store.get().unwrap();
    assert_eq!(cursor.next_block, 4);
    assert_eq!(cursor.next_deposit_nonce, 3);
}

#[tokio::test]
async fn reorg_drops_unconfirmed_messages() {
    let fake = FakeL1::new();
    let store = MemoryCursorStore::new();
    let mut w = start(&fake, &store, config(3, 1));
    fake.mine(&[1, 0]); // nonce 0 in block 1, two blocks short of confirmed
    w.nothing().await;
    // Blocks 1 and 2 vanish; the new branch carries a different message under nonce 0.
    fake.reorg(2, &[0, 1, 0, 0, 0]);
    let m = w.next().await;
    assert_eq!((m.deposit_nonce, m.l1_block_number), (0, 2));
    assert_eq!(m.mint, U256::from(1000), "the message of the new branch");
    assert!(w.metrics.reorgs() >= 1);
    w.nothing().await;
    w.stop().await.unwrap();
}

#[tokio::test]
async fn outage_is_retried_and_resumed() {
    let fake = FakeL1::new();
    let store = MemoryCursorStore::new();
    fake.mine(&[1, 0]);
    let mut w = start(&fake, &store, config(1, 1));
    assert_eq!(w.next().await.deposit_nonce, 0);
    fake.set_down(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        w.metrics.rpc_errors() >= 2,
        "polls kept failing and were counted"
    );
    assert!(!w.task.is_finished(), "the watcher survives an outage");
    fake.mine(&[1, 1]);
    fake.set_down(false);
    assert_eq!(w.next().await.deposit_nonce, 1);
    w.nothing().await; // nonce 2 waits for its confirmation
    fake.mine(&[0]);
    assert_eq!(w.next().await.deposit_nonce, 2);
    w.stop().await.unwrap();
}

#[tokio::test]
async fn restart_resumes_from_the_cursor_without_duplicates() {
    let fake = FakeL1::new();
    let store = MemoryCursorStore::new();
    fake.mine(&[2, 1, 0]);
    let mut w = start(&fake, &store, config(1, 1));
    for nonce in 0..3 {
        assert_eq!(w.next().await.deposit_nonce, nonce);
    }
    w.stop().await.unwrap();

    fake.mine(&[1, 0]);
    // A cursor saved in the middle of block 1 (nonce 0 delivered, nonce 1 not): the rescan
    // skips what was delivered.
    store
        .save(&WatcherCursor {
            next_block: 1,
            parent_hash: Some(fake.read(|c| c.blocks[0].0.hash).unwrap()),
            next_deposit_nonce: 1,
        })
        .unwrap();
    let mut w = start(&fake, &store, config(1, 1));
    for nonce in 1..4 {
        assert_eq!(w.next().await.deposit_nonce, nonce);
    }
    w.nothing().await;
    w.stop().await.unwrap();
}

#[tokio::test]
async fn reorg_of_delivered_blocks_never_repeats_a_nonce() {
    let fake = FakeL1::new();
    let store = MemoryCursorStore::new();
    fake.mine(&[1, 0]);
    let mut w = start(&fake, &store, config(1, 1));
    assert_eq!(w.next().await.deposit_nonce, 0);
    // Deeper than the confirmation depth: block 1 (already delivered) is replaced.
    fake.reorg(2, &[1, 1, 0]);
    assert_eq!(w.next().await.deposit_nonce, 1);
    w.nothing().await;
    assert!(w.metrics.reorgs() >= 1);
    w.stop().await.unwrap();
}

#[tokio::test]
async fn starting_after_the_first_deposit_is_a_nonce_gap() {
    let fake = FakeL1::new();
    fake.mine(&[1, 1, 0, 0]);
    let store = MemoryCursorStore::new();
    let w = start(&fake, &store, config(1, 2));
    let result = timeout(Duration::from_secs(5), w.task)
        .await
        .unwrap()
        .unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            L1Error::NonceGap {
                expected: 0,
                found: 1,
                block: 2
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn stops_when_the_receiver_is_dropped() {
    let fake = FakeL1::new();
    let store = MemoryCursorStore::new();
    let Running { rx, task, .. } = start(&fake, &store, config(0, 0));
    drop(rx);
    fake.mine(&[1]);
    timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
