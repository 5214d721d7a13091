//! The L1 watcher against a real anvil: confirmation depth, an L1 reorg, an L1 restart, and a
//! watcher restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use common::*;
use lanes_l1_bridge::{AlloyL1Client, FileCursorStore, L1Client, MemoryCursorStore};

async fn with_timeout<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(150), test)
        .await
        .expect("test finished within 150s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_is_delivered_only_after_the_confirmation_depth() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let mut watcher = watch(&l1, &deployed, 3, Arc::new(MemoryCursorStore::new()));

        let recipient = Address::repeat_byte(0xaa);
        let amount = U256::from(123_456_789u64);
        let receipt = deposit(&l1, &deployed, 2, recipient, amount).await;
        watcher.wait_head(receipt.block_number).await;
        watcher.nothing(Duration::from_millis(300)).await;
        mine(&l1, 2).await; // two blocks on top: one short
        watcher.wait_head(receipt.block_number + 2).await;
        watcher.nothing(Duration::from_millis(300)).await;
        mine(&l1, 1).await;

        let m = watcher.next().await;
        assert_eq!(m.deposit_nonce, 0);
        assert_eq!(m.to, recipient);
        assert_eq!(m.mint, amount);
        assert_eq!(m.l1_block_number, receipt.block_number);
        assert_eq!(m.l1_block_hash, receipt.block_hash);
        // Counted once handed over, which is just after the receiver got it.
        wait_until("deposit counted", || watcher.metrics.deposits_seen() == 1).await;
        watcher.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_removed_by_an_l1_reorg_is_never_delivered() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let mut watcher = watch(&l1, &deployed, 3, Arc::new(MemoryCursorStore::new()));

        let orphaned = Address::repeat_byte(0x0a);
        let receipt = deposit(&l1, &deployed, 2, orphaned, U256::from(1)).await;
        mine(&l1, 1).await;
        watcher.wait_head(receipt.block_number + 1).await;

        // Replace the deposit's block and the one on top with two empty blocks.
        let client = AlloyL1Client::connect(l1.url(), deployed.contracts()).unwrap();
        let _: serde_json::Value = client
            .provider()
            .raw_request(
                "anvil_reorg".into(),
                (2u64, Vec::<serde_json::Value>::new()),
            )
            .await
            .expect("anvil_reorg");
        assert_ne!(
            client.block_hash(receipt.block_number).await.unwrap(),
            Some(receipt.block_hash),
            "the deposit's block was replaced"
        );
        assert!(
            client
                .portal_messages(receipt.block_number, receipt.block_number + 1)
                .await
                .unwrap()
                .is_empty(),
            "the deposit is gone from L1"
        );

        // Bury the fork point well past the confirmation depth, then deposit again: the new
        // deposit takes nonce 0 and is the only one delivered.
        mine(&l1, 5).await;
        let kept = Address::repeat_byte(0x0b);
        let receipt = deposit(&l1, &deployed, 2, kept, U256::from(2)).await;
        mine(&l1, 3).await;
        let m = watcher.next().await;
        assert_eq!(
            (m.deposit_nonce, m.to, m.l1_block_number),
            (0, kept, receipt.block_number)
        );
        watcher.nothing(Duration::from_millis(500)).await;
        assert!(watcher.metrics.reorgs() >= 1, "the reorg was noticed");
        assert_eq!(watcher.metrics.deposits_seen(), 1);
        watcher.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_retries_through_an_l1_restart_and_resumes_without_duplicates() {
    with_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let mut l1 = start_anvil(Some(dir.path().join("anvil-state.json"))).await;
        let deployed = deploy_lanes(&l1).await;
        let cursor = dir.path().join("cursor.json");
        let mut watcher = watch(&l1, &deployed, 1, Arc::new(FileCursorStore::new(&cursor)));

        deposit(&l1, &deployed, 2, Address::repeat_byte(1), U256::from(1)).await;
        mine(&l1, 1).await;
        assert_eq!(watcher.next().await.deposit_nonce, 0);

        // L1 goes away (gracefully, so anvil dumps its chain) and the watcher keeps failing.
        l1.stop();
        let errors = watcher.metrics.rpc_errors();
        wait_until("failed polls", || {
            watcher.metrics.rpc_errors() >= errors + 3
        })
        .await;
        assert!(
            !watcher.task.is_finished(),
            "the watcher survives the outage"
        );

        l1.restart().await.expect("anvil restarts on the same port");
        deposit(&l1, &deployed, 2, Address::repeat_byte(2), U256::from(2)).await;
        mine(&l1, 1).await;
        let m = watcher.next().await;
        assert_eq!((m.deposit_nonce, m.to), (1, Address::repeat_byte(2)));
        watcher.nothing(Duration::from_millis(500)).await;
        watcher.stop().await.unwrap();

        // A new watcher on the same cursor file delivers only what came after.
        deposit(&l1, &deployed, 2, Address::repeat_byte(3), U256::from(3)).await;
        mine(&l1, 1).await;
        let mut watcher = watch(&l1, &deployed, 1, Arc::new(FileCursorStore::new(&cursor)));
        let m = watcher.next().await;
        assert_eq!((m.deposit_nonce, m.to), (2, Address::repeat_byte(3)));
        watcher.nothing(Duration::from_millis(500)).await;
        watcher.stop().await.unwrap();
    })
    .await;
}
