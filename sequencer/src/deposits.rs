//! L1 messages waiting for L2: deposits and forced transactions become the first
//! transactions of the next block, in L1 order.
//!
//! The L1 watcher (`lanes_l1_bridge::L1Watcher`) emits [`L1Message`]s after their
//! confirmation depth; [`DepositQueue::push`] turns each into a deposit transaction (type
//! 0x7e, [`deposit_tx`]) and queues it. The producer asks a [`DepositSource`] for the
//! deposits of each block and reports how many the block included.
//!
//! Every message is queued in deposit-nonce order without gaps, so the L2 order is the L1
//! order; a message already queued (a watcher replaying after a restart) is ignored. The
//! producer includes every queued message in the next block it fits in, which is before any
//! forced-inclusion deadline.

use alloy_primitives::TxKind;
use lanes_executor::{RecoveredTx, TxDeposit, recovered_deposit, user_deposit_source_hash};
use lanes_l1_bridge::L1Message;
use lanes_monitoring::{IntCounter, IntGauge, MetricsRegistry, MonitoringResult};
use parking_lot::Mutex;
use std::{collections::VecDeque, sync::Arc};

/// The deposit transaction an L1 message becomes. Deterministic: every node derives the
/// same transaction, and so the same hash, from the same L1 log.
pub fn deposit_tx(message: &L1Message) -> TxDeposit {
    TxDeposit {
        source_hash: user_deposit_source_hash(message.l1_block_hash, message.log_index),
        from: message.from,
        to: TxKind::Call(message.to),
        // The portal locks real ETH, and all of it fits in 128 bits many times over.
        mint: message.mint.saturating_to(),
        value: message.value,
        gas_limit: message.gas_limit,
        is_system_transaction: false,
        input: message.data.clone(),
    }
}

/// Where the producer gets the deposits of the next block.
pub trait DepositSource: Send + Sync {
    /// The deposits to put first in the next block, oldest first: as many as fit in
    /// `max_gas` (by gas limit) and `max_txs`. They stay queued until [`Self::included`].
    fn next_deposits(&self, max_gas: u64, max_txs: usize) -> Vec<Arc<RecoveredTx>>;
    /// The oldest `count` deposits were included in an executed block: drop them.
    fn included(&self, count: usize);
    /// Deposits waiting.
    fn pending(&self) -> usize;
}

/// Why an L1 message was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DepositQueueError {
    /// A message was skipped: the queue would no longer follow the L1 order. The watcher
    /// must replay from the missing nonce.
    #[error("deposit nonce {got} arrived while {expected} was expected next")]
    Gap {
        /// The nonce the queue expects.
        expected: u64,
        /// The nonce that arrived.
        got: u64,
    },
}

/// The queue's metrics.
#[derive(Clone, Debug)]
pub struct DepositMetrics {
    /// L1 messages queued and not yet in an executed block.
    pub pending: IntGauge,
    /// L1 messages queued.
    pub queued: IntCounter,
    /// L1 messages included in executed blocks.
    pub included: IntCounter,
}

impl DepositMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> MonitoringResult<Self> {
        Ok(Self {
            pending: registry.int_gauge(
                "lanes_l1_messages_awaiting_inclusion",
                "L1 messages (deposits, forced transactions) past their confirmation depth, waiting for an L2 block",
            )?,
            queued: registry.counter(
                "lanes_l1_messages_queued_total",
                "L1 messages queued for L2 after their confirmation depth",
            )?,
            included: registry.counter(
                "lanes_l1_messages_included_total",
                "L1 messages executed in L2 blocks",
            )?,
        })
    }

    /// Metrics registered nowhere, for tests and tools.
    pub fn unregistered() -> Self {
        Self::register(&MetricsRegistry::new()).expect("a fresh registry has no clashes")
    }
}

#[derive(Debug, Default)]
struct QueueState {
    next_nonce: u64,
    pending: VecDeque<Arc<RecoveredTx>>,
}

/// The in-memory [`DepositSource`]: deposits in deposit-nonce order.
#[derive(Debug)]
pub struct DepositQueue {
    state: Mutex<QueueState>,
    metrics: DepositMetrics,
}

impl DepositQueue {
    /// A queue expecting deposit nonce `next_nonce` first (the messages before it are on L2
    /// already).
    pub fn new(next_nonce: u64, metrics: DepositMetrics) -> Self {
        metrics.pending.set(0);
        Self {
            state: Mutex::new(QueueState {
                next_nonce,
                pending: VecDeque::new(),
            }),
            metrics,
        }
    }

    /// Queues `message`. Returns false for a message queued before (its nonce is behind);
    /// errs, queueing nothing, on a gap.
    pub fn push(&self, message: &L1Message) -> Result<bool, DepositQueueError> {
        let mut state = self.state.lock();
        if message.deposit_nonce < state.next_nonce {
            return Ok(false);
        }
        if message.deposit_nonce > state.next_nonce {
            return Err(DepositQueueError::Gap {
                expected: state.next_nonce,
                got: message.deposit_nonce,
            });
        }
        state.next_nonce += 1;
        state
            .pending
            .push_back(Arc::new(recovered_deposit(deposit_tx(message))));
        self.metrics.queued.inc();
        self.metrics.pending.set(state.pending.len() as i64);
        Ok(true)
    }

    /// The deposit nonce expected next.
    pub fn next_nonce(&self) -> u64 {
        self.state.lock().next_nonce
    }
}

impl DepositSource for DepositQueue {
    fn next_deposits(&self, max_gas: u64, max_txs: usize) -> Vec<Arc<RecoveredTx>> {
        let state = self.state.lock();
        let mut gas = 0u64;
        let mut deposits = Vec::new();
        for tx in state.pending.iter().take(max_txs) {
            let limit = alloy_consensus::Transaction::gas_limit(tx.inner());
            match gas.checked_add(limit) {
                Some(total) if total <= max_gas => gas = total,
                // In order: a deposit that does not fit holds back the later ones.
                _ => break,
            }
            deposits.push(tx.clone());
        }
        deposits
    }

    fn included(&self, count: usize) {
        let mut state = self.state.lock();
        let count = count.min(state.pending.len());
        state.pending.drain(..count);
        self.metrics.included.inc_by(count as u64);
        self.metrics.pending.set(state.pending.len() as i64);
    }

    fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Transaction;
    use alloy_primitives::{Address, B256, Bytes, U256};

    fn message(nonce: u64, gas_limit: u64) -> L1Message {
        L1Message {
            deposit_nonce: nonce,
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            mint: U256::from(1_000 + nonce),
            value: U256::from(nonce),
            gas_limit,
            data: Bytes::from_static(b"data"),
            l1_block_number: 10 + nonce,
            l1_block_hash: B256::repeat_byte(nonce as u8 + 1),
            log_index: nonce,
            enqueued_at: 1_700_000_000,
        }
    }

    #[test]
    fn a_message_becomes_a_deterministic_deposit() {
        let m = message(3, 50_000);
        let tx = deposit_tx(&m);
        assert_eq!(tx, deposit_tx(&m.clone()));
        assert_eq!(tx.from, m.from);
        assert_eq!(tx.to, TxKind::Call(m.to));
        assert_eq!(U256::from(tx.mint), m.mint);
        assert_eq!(tx.value, m.value);
        assert_eq!(tx.gas_limit, m.gas_limit);
        assert_eq!(tx.input, m.data);
        assert_eq!(
            tx.source_hash,
            user_deposit_source_hash(m.l1_block_hash, m.log_index)
        );
        // Another log, another identity.
        let mut other = m.clone();
        other.log_index += 1;
        assert_ne!(deposit_tx(&other).source_hash, tx.source_hash);
    }

    #[test]
    fn queue_keeps_l1_order_ignores_replays_and_refuses_gaps() {
        let queue = DepositQueue::new(5, DepositMetrics::unregistered());
        assert_eq!(queue.push(&message(4, 21_000)), Ok(false));
        assert_eq!(
            queue.push(&message(6, 21_000)),
            Err(DepositQueueError::Gap {
                expected: 5,
                got: 6
            })
        );
        for nonce in 5..9 {
            assert_eq!(queue.push(&message(nonce, 30_000)), Ok(true));
        }
        assert_eq!(queue.push(&message(6, 30_000)), Ok(false));
        assert_eq!(queue.next_nonce(), 9);
        assert_eq!(queue.pending(), 4);

        // Gas bound: 30k each, 100k room → the three oldest.
        let next = queue.next_deposits(100_000, 10);
        let values: Vec<U256> = next.iter().map(|t| t.value()).collect();
        assert_eq!(values, [U256::from(5), U256::from(6), U256::from(7)]);
        // Count bound.
        assert_eq!(queue.next_deposits(1_000_000, 2).len(), 2);
        // Offered but not included: still there.
        assert_eq!(queue.pending(), 4);
        queue.included(3);
        let rest = queue.next_deposits(1_000_000, 10);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].value(), U256::from(8));
        queue.included(1);
        assert_eq!(queue.pending(), 0);
        assert!(queue.next_deposits(1_000_000, 10).is_empty());
        assert_eq!(queue.metrics.queued.get(), 4);
        assert_eq!(queue.metrics.included.get(), 4);
        assert_eq!(queue.metrics.pending.get(), 0);
    }

    #[test]
    fn a_deposit_too_large_holds_back_the_later_ones() {
        let queue = DepositQueue::new(0, DepositMetrics::unregistered());
        queue.push(&message(0, 80_000)).unwrap();
        queue.push(&message(1, 10_000)).unwrap();
        assert!(queue.next_deposits(50_000, 10).is_empty());
        assert_eq!(queue.next_deposits(90_000, 10).len(), 2);
    }

    /// The producer puts queued deposits first in the next block, in L1 order, ahead of
    /// pool transactions; they are stored, indexed by hash and served like op-geth serves
    /// them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producer_puts_deposits_first_in_l1_order() {
        for parallel in [false, true] {
            produce_deposits(parallel).await;
        }
    }

    async fn produce_deposits(parallel: bool) {
        use crate::{
            producer::{BlockProducer, NodeExecutor, ProducerConfig},
            rpc::convert::{rpc_receipt, rpc_transaction},
            testing::{DEV_KEYS, dev_node, signed_transfer},
        };
        use alloy_signer_local::PrivateKeySigner;
        use lanes_executor::{ParallelExecutor, SequentialExecutor, genesis::DEV_ACCOUNTS};
        use std::time::Duration;

        let node = dev_node();
        let (chain, pool, metrics) = (node.chain.clone(), node.pool.clone(), node.metrics.clone());
        let executor = Arc::new(if parallel {
            NodeExecutor::Parallel(Box::new(ParallelExecutor::new(2)))
        } else {
            NodeExecutor::Sequential(SequentialExecutor::new())
        });

        // A user transaction already waiting in the pool.
        let signer: PrivateKeySigner = DEV_KEYS[0].parse().unwrap();
        assert_eq!(signer.address(), DEV_ACCOUNTS[0]);
        let raw = signed_transfer(0, 0, 5);
        let user_hash = pool.submit_blocking(&raw).unwrap();

        // Two L1 messages from a new account: a mint, then a call spending part of it.
        let depositor = Address::repeat_byte(0xd1);
        let recipient = Address::repeat_byte(0xd2);
        let ether = U256::from(10u64.pow(18));
        let queue = Arc::new(DepositQueue::new(0, DepositMetrics::unregistered()));
        let mut first = message(0, 100_000);
        first.from = depositor;
        first.to = depositor;
        first.mint = U256::from(3) * ether;
        first.value = U256::ZERO;
        first.data = Bytes::new();
        let mut second = message(1, 100_000);
        second.from = depositor;
        second.to = recipient;
        second.mint = ether;
        second.value = U256::from(2) * ether;
        second.data = Bytes::new();
        queue.push(&first).unwrap();
        queue.push(&second).unwrap();
        let hashes: Vec<_> = queue
            .next_deposits(u64::MAX, 10)
            .iter()
            .map(|t| *t.inner().tx_hash())
            .collect();

        let producer = BlockProducer::new(
            chain.clone(),
            pool.clone(),
            executor,
            ProducerConfig {
                block_time: Duration::from_millis(50),
                empty_block_interval: None,
                fee_recipient: Address::repeat_byte(0xfe),
                max_block_txs: 1_000,
            },
            metrics,
            lanes_monitoring::Health::new(Duration::from_secs(5)),
        )
        .with_deposits(queue.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(producer.run(shutdown.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while chain.head().number() < 1 {
            assert!(std::time::Instant::now() < deadline, "no block produced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await.unwrap().unwrap();

        assert_eq!(queue.pending(), 0, "included deposits leave the queue");
        let block = chain.block(1).unwrap().unwrap();
        let included: Vec<_> = block.transactions.iter().map(|t| t.hash()).collect();
        assert_eq!(included, [hashes[0], hashes[1], user_hash]);
        let depositor_account = chain.latest_account(depositor).unwrap().unwrap();
        assert_eq!(depositor_account.balance, U256::from(2) * ether);
        assert_eq!(depositor_account.nonce, 2);
        assert_eq!(
            chain.latest_account(recipient).unwrap().unwrap().balance,
            U256::from(2) * ether
        );

        // Found by hash, served with its type, fields and receipt.
        let location = chain.storage().tx_location(hashes[1]).unwrap().unwrap();
        assert_eq!(location.block_number, 1);
        assert_eq!(location.index, 1);
        let tx = serde_json::to_value(rpc_transaction(&block, 1)).unwrap();
        assert_eq!(tx["type"], "0x7e");
        assert_eq!(tx["mint"], "0xde0b6b3a7640000");
        assert_eq!(tx["from"], serde_json::to_value(depositor).unwrap());
        assert_eq!(
            tx["sourceHash"],
            serde_json::to_value(user_deposit_source_hash(
                second.l1_block_hash,
                second.log_index
            ))
            .unwrap()
        );
        // The depositor's second transaction: nonce 1.
        assert_eq!(tx["nonce"], "0x1");
        let receipt = serde_json::to_value(rpc_receipt(&block, 1)).unwrap();
        assert_eq!(receipt["type"], "0x7e");
        assert_eq!(receipt["depositNonce"], "0x1");
        assert_eq!(receipt["status"], "0x1");
        assert_eq!(receipt["gasUsed"], "0x5208");
        let user_receipt = serde_json::to_value(rpc_receipt(&block, 2)).unwrap();
        assert_eq!(user_receipt["type"], "0x2");
        assert_eq!(user_receipt["cumulativeGasUsed"], "0xf618");
    }
}
