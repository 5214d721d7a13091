//! The batcher against a real anvil: posting, restart, blobs, reorgs, fee bumps and
//! derivation of the posted chain into a fresh RocksDB.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::sol_types::SolCall;
use common::*;
use lanes_batcher::format::BatchBlock;
use lanes_batcher::{
    BatchBuilder, BuilderConfig, CloseReason, DaMode, DataLocation, Deriver, StorageReplay,
    TxCandidate, blocks_of, derive,
};
use lanes_l1_bridge::BatchHeader;
use lanes_l1_bridge::bindings::LanesRollup;

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("test finished within 180s");
}

/// Derives the chain from L1 into a fresh store and checks it is `l2`'s, block by block.
async fn derive_and_compare(
    l1: &lanes_l1_bridge::DevL1,
    deployed_rollup: alloy::primitives::Address,
    deploy_block: u64,
    l2: &L2Chain,
) -> Vec<lanes_batcher::PostedBatch> {
    let deriver = Deriver::connect(l1.url(), deployed_rollup, deploy_block).unwrap();
    let batches = deriver.batches(None).await.unwrap();
    let blocks = blocks_of(&batches, Some(CHAIN_ID)).unwrap();
    let head = l2.head();
    assert_eq!(
        blocks.len() as u64,
        head,
        "one derived block per posted block"
    );
    for block in &blocks {
        let ours = l2.storage.block(block.number()).unwrap().unwrap();
        assert_eq!(block.hash, ours.hash, "block {}", block.number());
        assert_eq!(block.state_root, ours.header.state_root);
        assert_eq!(block.env.parent_hash, ours.header.parent_hash);
        assert_eq!(block, &{
            let entry = BatchBlock::from_sealed(&ours);
            lanes_batcher::DerivedBlock {
                env: entry.env(ours.number(), ours.header.parent_hash),
                transactions: entry.transactions,
                state_root: entry.state_root,
                hash: entry.hash,
                batch_index: block.batch_index,
            }
        });
    }

    // Re-execute everything on an empty RocksDB from genesis.
    let dir = tempfile::tempdir().unwrap();
    let (fresh, _) = open_storage(&dir.path().join("derived"));
    let mut replay = StorageReplay::new(fresh.clone(), l2.chain.clone());
    let summary = derive(&deriver, &mut replay, Some(CHAIN_ID), None)
        .await
        .unwrap();
    assert_eq!(summary.head, head);
    assert_eq!(fresh.head().unwrap(), l2.storage.head().unwrap());
    assert_eq!(
        fresh.header(head).unwrap().unwrap().state_root,
        l2.storage.header(head).unwrap().unwrap().state_root
    );
    // Deriving again over the derived store is a no-op that checks every hash.
    let again = derive(&deriver, &mut replay, Some(CHAIN_ID), None)
        .await
        .unwrap();
    assert_eq!(again.head, head);
    batches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_calldata_batches_and_derivation_rebuilds_the_chain() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(30, 5);
        let deployed = deploy_for(&l1, &l2, Duration::from_secs(3600)).await;
        // ~2.5 KB batches: several batches for 30 blocks.
        let running = Running::spawn(&l1, &l2, settings(&deployed, 2_500, DaMode::Calldata)).await;
        running.wait_posted(30).await;

        let events = submitted(&l1, &deployed).await;
        assert!(events.len() >= 3, "{events:?}");
        assert_contiguous(&events, 30);
        assert!(events.iter().all(|e| e.3 == 0), "calldata: {events:?}");
        let status = running.handle.status();
        assert_eq!(status.last_batch_index, events.len() as u64);
        assert_eq!(status.heads.safe, 30, "one confirmation: safe at once");
        assert_eq!(status.heads.finalized, 0, "finalization period is an hour");
        assert_eq!(running.metrics.batches_posted.get(), events.len() as u64);
        assert!(running.metrics.l1_gas_used.get() > 0);
        assert!(running.metrics.compression_ratio.get() > 1.0);
        assert_eq!(running.metrics.unposted_blocks.get(), 0);
        eprintln!(
            "calldata: {} batches for 150 L2 transactions, {} L1 gas ({:.0} per L2 tx), last ratio {:.2}",
            events.len(),
            running.metrics.l1_gas_used.get(),
            running.metrics.l1_gas_used.get() as f64 / 150.0,
            running.metrics.compression_ratio.get()
        );

        // Blocks sealed later go out on flush without waiting for the age limit.
        l2.produce(4, 3);
        let posted = tokio::time::timeout(WAIT, running.handle.flush())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(posted, 34);
        running.shutdown().await.unwrap();

        let batches = derive_and_compare(&l1, deployed.rollup, deployed.deploy_block, &l2).await;
        assert!(batches.iter().all(|b| b.location == DataLocation::Calldata));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_l1_without_gap_or_duplicate() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(8, 2);
        let deployed = deploy_for(&l1, &l2, Duration::from_secs(3600)).await;
        let first = Running::spawn(&l1, &l2, settings(&deployed, 2_000, DaMode::Calldata)).await;
        first.wait_posted(8).await;
        first.shutdown().await.unwrap();

        // A batcher that crashed after its transaction for blocks 9..=12 went out: L1 holds
        // the batch, nothing local remembers it.
        l2.produce(8, 2);
        let txmgr = txmgr(&l1).await;
        let parent = l2.storage.block(8).unwrap().unwrap();
        let mut builder = BatchBuilder::new(
            BuilderConfig {
                chain_id: CHAIN_ID,
                max_bytes: 1 << 20,
                max_age: Duration::from_secs(60),
                compression: settings(&deployed, 1, DaMode::Calldata).compression,
            },
            9,
            parent.hash,
        );
        for n in 9..=12 {
            let block = l2.storage.block(n).unwrap().unwrap();
            builder
                .push(
                    BatchBlock::from_sealed(&block),
                    0,
                    std::time::Instant::now(),
                )
                .unwrap();
        }
        let batch = builder
            .close(CloseReason::Flush, std::time::Instant::now())
            .unwrap()
            .unwrap();
        let index = submitted(&l1, &deployed).await.len() as u64 + 1;
        let header = BatchHeader {
            batch_index: index,
            first_block: 9,
            last_block: 12,
            prev_state_root: parent.header.state_root,
            new_state_root: batch.data.new_state_root(),
            l1_messages_included: 0,
        };
        let input = LanesRollup::submitBatchCall {
            header: header.to_sol(),
            data: batch.encoded.clone(),
        }
        .abi_encode();
        txmgr
            .send(&TxCandidate {
                to: deployed.rollup,
                input: input.clone().into(),
                blob_data: None,
            })
            .await
            .unwrap();
        // Sending the same batch again is refused by the contract before anything is paid.
        let err = txmgr
            .send(&TxCandidate {
                to: deployed.rollup,
                input: input.into(),
                blob_data: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("UnexpectedBatchIndex"), "{err}");

        let second = Running::spawn(&l1, &l2, settings(&deployed, 2_000, DaMode::Calldata)).await;
        second.wait_posted(16).await;
        second.shutdown().await.unwrap();
        let events = submitted(&l1, &deployed).await;
        assert_contiguous(&events, 16);
        assert!(
            events.iter().any(|e| (e.1, e.2) == (9, 12)),
            "the crashed batcher's batch is kept: {events:?}"
        );
        derive_and_compare(&l1, deployed.rollup, deployed.deploy_block, &l2).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_batches_are_posted_and_derived() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(12, 4);
        // Final as soon as recorded: the finalized head follows the posted one.
        let deployed = deploy_for(&l1, &l2, Duration::ZERO).await;
        let running = Running::spawn(&l1, &l2, settings(&deployed, 3_000, DaMode::Blobs)).await;
        running.wait_posted(12).await;
        let mut status = running.handle.subscribe();
        tokio::time::timeout(WAIT, status.wait_for(|s| s.heads.finalized == 12))
            .await
            .expect("finalized head reaches the posted one")
            .unwrap();
        assert_eq!(running.metrics.last_final_l2_block.get(), 12);
        running.shutdown().await.unwrap();
        let events = submitted(&l1, &deployed).await;
        assert_contiguous(&events, 12);
        assert!(events.iter().all(|e| e.3 == 1), "blobs: {events:?}");
        let batches = derive_and_compare(&l1, deployed.rollup, deployed.deploy_block, &l2).await;
        assert!(batches.iter().all(|b| b.location == DataLocation::Blobs));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_dropped_by_an_l1_reorg_is_posted_again() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(6, 2);
        let deployed = deploy_for(&l1, &l2, Duration::from_secs(3600)).await;
        let snapshot: alloy::primitives::U256 =
            anvil_rpc(&l1, "evm_snapshot", serde_json::json!([])).await;
        // Auto: anvil's blob base fee is 1 wei, so this posts blobs.
        let running = Running::spawn(&l1, &l2, settings(&deployed, 100_000, DaMode::Auto)).await;
        running.wait_posted(6).await;
        assert_eq!(submitted(&l1, &deployed).await.len(), 1);

        // Pause, so the reorg happens between two looks at L1 rather than mid-post.
        running.handle.stop().await.unwrap();
        assert!(!running.handle.status().running);
        let reverted: bool = anvil_rpc(&l1, "evm_revert", serde_json::json!([snapshot])).await;
        assert!(reverted);
        assert!(
            submitted(&l1, &deployed).await.is_empty(),
            "the batch left L1"
        );
        l2.produce(2, 1);
        // Stopped: the backlog grows and is reported (L1 now holds nothing of blocks 1..=8).
        let mut status = running.handle.subscribe();
        let backlog =
            tokio::time::timeout(WAIT, status.wait_for(|s| s.backlog.unposted_blocks >= 2))
                .await
                .expect("backlog reported while stopped")
                .unwrap()
                .backlog;
        assert!(
            backlog.unposted_bytes > 0 && !backlog.over_limit,
            "{backlog:?}"
        );
        assert!(matches!(
            running.handle.flush().await,
            Err(lanes_batcher::BatcherError::Stopped)
        ));
        running.handle.start().await.unwrap();
        running.wait_posted(8).await;
        running.shutdown().await.unwrap();
        let events = submitted(&l1, &deployed).await;
        assert_contiguous(&events, 8);
        assert!(
            events.iter().all(|e| e.3 == 1),
            "auto chose blobs: {events:?}"
        );
        derive_and_compare(&l1, deployed.rollup, deployed.deploy_block, &l2).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_is_replaced_with_higher_fees() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(2, 1);
        let deployed = deploy_for(&l1, &l2, Duration::from_secs(3600)).await;
        let txmgr = Arc::new(
            lanes_batcher::TxManager::connect(
                l1.url(),
                lanes_l1_bridge::dev_account(1),
                lanes_batcher::TxManagerConfig {
                    resubmit_after: Duration::from_millis(400),
                    ..txmgr_config()
                },
            )
            .await
            .unwrap(),
        );
        let block = l2.storage.block(1).unwrap().unwrap();
        let data = lanes_batcher::BatchData {
            chain_id: CHAIN_ID,
            first_block: 1,
            parent_hash: l2.genesis.header.hash_slow(),
            l1_messages_included: 0,
            blocks: vec![BatchBlock::from_sealed(&block)],
        };
        let header = BatchHeader {
            batch_index: 1,
            first_block: 1,
            last_block: 1,
            prev_state_root: l2.genesis.header.state_root,
            new_state_root: block.header.state_root,
            l1_messages_included: 0,
        };
        let encoded = data
            .encode_batch(settings(&deployed, 1, DaMode::Calldata).compression)
            .unwrap();
        // Nothing gets mined until we say so.
        let _: serde_json::Value =
            anvil_rpc(&l1, "evm_setAutomine", serde_json::json!([false])).await;
        let sender = txmgr.clone();
        let rollup = deployed.rollup;
        let send = tokio::spawn(async move {
            sender
                .send(&TxCandidate {
                    to: rollup,
                    input: LanesRollup::submitBatchCall {
                        header: header.to_sol(),
                        data: encoded.into(),
                    }
                    .abi_encode()
                    .into(),
                    blob_data: None,
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let _: serde_json::Value = anvil_rpc(&l1, "evm_mine", serde_json::json!([])).await;
        let confirmed = tokio::time::timeout(WAIT, send)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            confirmed.attempts >= 2,
            "replaced at least once: {confirmed:?}"
        );
        let _: serde_json::Value =
            anvil_rpc(&l1, "evm_setAutomine", serde_json::json!([true])).await;
        let events = submitted(&l1, &deployed).await;
        assert_eq!(
            events.len(),
            1,
            "exactly one of the replacements landed: {events:?}"
        );
        // The one mined pays more than the first attempt would have.
        assert!(confirmed.receipt.success);
    })
    .await;
}

/// The chain as a source that reports L1 messages executed from block `from` on, standing in
/// for a sequencer that executes deposits (lanes blocks carry none yet).
struct MessagesFrom {
    storage: Arc<lanes_executor::Storage>,
    from: std::sync::atomic::AtomicU64,
}

impl lanes_batcher::BlockSource for MessagesFrom {
    fn head(&self) -> lanes_batcher::BatcherResult<u64> {
        lanes_batcher::BlockSource::head(&*self.storage)
    }
    fn block(
        &self,
        number: u64,
    ) -> lanes_batcher::BatcherResult<Option<lanes_executor::SealedBlock>> {
        lanes_batcher::BlockSource::block(&*self.storage, number)
    }
    fn l1_messages_included(&self, number: u64) -> lanes_batcher::BatcherResult<u64> {
        Ok(u64::from(
            number >= self.from.load(std::sync::atomic::Ordering::SeqCst),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_that_skip_a_due_forced_message_are_refused_until_l2_includes_it() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        l2.produce(4, 1);
        let deployed =
            deploy_with(&l1, &l2, Duration::from_secs(3600), Duration::from_secs(2)).await;
        // A deposit enters the L1 -> L2 queue and becomes due.
        let user = lanes_l1_bridge::AlloyL1Client::connect_with_signer(
            l1.url(),
            deployed.contracts(),
            lanes_l1_bridge::dev_account(2),
        )
        .unwrap();
        let pending = user
            .portal()
            .depositETH(lanes_l1_bridge::dev_account(5).address(), 100_000)
            .value(alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(17)))
            .send()
            .await
            .unwrap();
        assert!(
            user.wait_for_receipt(*pending.tx_hash())
                .await
                .unwrap()
                .success
        );
        let _: serde_json::Value = anvil_rpc(&l1, "evm_increaseTime", serde_json::json!([3])).await;
        let _: serde_json::Value = anvil_rpc(&l1, "evm_mine", serde_json::json!([])).await;

        let source = Arc::new(MessagesFrom {
            storage: l2.storage.clone(),
            from: std::sync::atomic::AtomicU64::new(u64::MAX),
        });
        let running = Running::spawn_on(
            &l1,
            source.clone(),
            settings(&deployed, 100_000, DaMode::Calldata),
        )
        .await;
        let mut status = running.handle.subscribe();
        let refused = tokio::time::timeout(
            WAIT,
            status.wait_for(|s| {
                s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("ForcedInclusionMissed"))
            }),
        )
        .await
        .expect("the rollup refuses the batch")
        .unwrap()
        .clone();
        assert_eq!(refused.heads.posted, 0, "{refused:?}");
        assert!(
            running
                .metrics
                .post_failures
                .with_label_values(&["forced_inclusion"])
                .get()
                >= 1
        );

        // L2 executes the message in block 5: the next batch covers it and goes through.
        source.from.store(5, std::sync::atomic::Ordering::SeqCst);
        l2.produce(1, 1);
        running.wait_posted(5).await;
        running.shutdown().await.unwrap();
        let client =
            lanes_l1_bridge::AlloyL1Client::connect(l1.url(), deployed.contracts()).unwrap();
        let next = lanes_l1_bridge::L1Client::next_forced_inclusion(&client)
            .await
            .unwrap();
        assert!(!next.pending, "{next:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_gas_per_l2_transaction_of_full_batches() {
    bounded(async {
        let l1 = start_anvil().await;
        let mut l2 = L2Chain::new();
        // About 280 KB of raw batch data: two full 120 KB batches and a remainder.
        l2.produce(20, 100);
        let deployed = deploy_for(&l1, &l2, Duration::from_secs(3600)).await;
        let mut report = Vec::new();
        for (mode, name) in [(DaMode::Calldata, "calldata"), (DaMode::Blobs, "blobs")] {
            // A fresh rollup per mode, both over the same L2 chain.
            let deployed = if mode == DaMode::Calldata {
                deployed
            } else {
                deploy_for(&l1, &l2, Duration::from_secs(3600)).await
            };
            let mut s = settings(&deployed, 120_000, mode);
            s.compression.level = 12;
            let running = Running::spawn(&l1, &l2, s).await;
            running.wait_posted(20).await;
            let gas = running.metrics.l1_gas_used.get();
            let batches = running.metrics.batches_posted.get();
            running.shutdown().await.unwrap();
            let per_tx = gas as f64 / 2_000.0;
            report.push(format!(
                "{name}: {batches} batches, {gas} L1 execution gas, {per_tx:.0} gas per L2 tx"
            ));
            assert!(batches >= 2, "{name}: {batches}");
            match mode {
                // The EIP-7623 floor (40 gas per non-zero byte) on ~80 compressed bytes per
                // transaction, plus the fixed cost of each submitBatch.
                DaMode::Calldata => assert!(per_tx < 6_000.0, "{name}: {per_tx}"),
                // Blobs leave only the fixed execution cost of each submitBatchWithBlobs.
                _ => assert!(per_tx < 500.0, "{name}: {per_tx}"),
            }
        }
        eprintln!("{}", report.join("\n"));
    })
    .await;
}
