//! Deployment, views and batch submission through the client, against a real anvil.

mod common;

use std::time::Duration;

use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::Provider;
use common::*;
use lanes_l1_bridge::{
    AlloyL1Client, BatchHeader, ErrorClass, L1Client, L1Error, deploy_or_reuse, dev_account,
};

async fn with_timeout<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test finished within 120s");
}

fn batch(index: u64, first: u64, last: u64, prev: B256, new: B256) -> BatchHeader {
    BatchHeader {
        batch_index: index,
        first_block: first,
        last_block: last,
        prev_state_root: prev,
        new_state_root: new,
        l1_messages_included: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_records_genesis_and_links_the_portal() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let client = AlloyL1Client::connect(l1.url(), deployed.contracts()).unwrap();

        client.check_contracts().await.unwrap();
        assert_eq!(
            client.chain_id().await.unwrap(),
            lanes_l1_bridge::DEV_L1_CHAIN_ID
        );
        assert_eq!(
            client.deployment_block(deployed.portal).await.unwrap(),
            deployed.deploy_block
        );
        let last = client.last_batch().await.unwrap();
        assert_eq!(
            (last.batch_index, last.last_block, last.state_root),
            (0, 0, GENESIS_ROOT)
        );
        assert!(client.is_finalized(0).await.unwrap());
        assert!(!client.is_finalized(1).await.unwrap());
        let next = client.next_forced_inclusion().await.unwrap();
        assert!(!next.pending);
        assert_eq!(
            client.rollup().sequencer().call().await.unwrap(),
            sequencer_key().address()
        );

        // A config whose portal is not the rollup's is refused at start.
        let mut wrong = deployed.contracts();
        wrong.portal = deployed.rollup;
        let err = AlloyL1Client::connect(l1.url(), wrong)
            .unwrap()
            .check_contracts()
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Fatal, "{err}");

        let toml = deployed.to_toml();
        assert!(toml.contains(&format!("rollup_address = \"{}\"", deployed.rollup)));
        assert!(toml.contains(&format!("portal_address = \"{}\"", deployed.portal)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencer_submits_a_batch_and_reads_it_back() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let sequencer = client_for(&l1, &deployed, sequencer_key());
        let root = B256::repeat_byte(0x22);

        let receipt = sequencer
            .submit_batch(
                batch(1, 1, 10, GENESIS_ROOT, root),
                Bytes::from_static(b"batch data"),
            )
            .await
            .unwrap();
        assert!(receipt.success);
        let last = sequencer.last_batch().await.unwrap();
        assert_eq!(
            (last.batch_index, last.last_block, last.state_root),
            (1, 10, root)
        );

        // The commitment is keccak256 of the calldata payload.
        let recorded = sequencer
            .rollup()
            .getBatch(U256::from(1))
            .call()
            .await
            .unwrap();
        assert_eq!(
            recorded.dataHash,
            alloy::primitives::keccak256(b"batch data")
        );

        // Final once the finalization period has passed.
        assert!(!sequencer.is_finalized(1).await.unwrap());
        let _: serde_json::Value = sequencer
            .provider()
            .raw_request(
                "evm_increaseTime".into(),
                (U256::from(FINALIZATION_PERIOD),),
            )
            .await
            .unwrap();
        mine(&l1, 1).await;
        assert!(sequencer.is_finalized(1).await.unwrap());

        // A wrong index is refused by name, before anything is sent.
        let err = sequencer
            .submit_batch(
                batch(5, 11, 12, root, B256::repeat_byte(0x33)),
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("UnexpectedBatchIndex"), "{err}");
        assert!(
            err.to_string().contains("UnexpectedBatchIndex(2, 5)"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_from_a_non_sequencer_is_rejected_with_the_error_name() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let intruder = dev_account(3);
        let client = client_for(&l1, &deployed, intruder.clone());
        let balance = client.balance(intruder.address()).await.unwrap();

        let err = client
            .submit_batch(
                batch(1, 1, 1, GENESIS_ROOT, B256::repeat_byte(0x44)),
                Bytes::from_static(b"data"),
            )
            .await
            .unwrap_err();
        match &err {
            L1Error::Reverted { name, reason, .. } => {
                assert_eq!(name.as_deref(), Some("NotSequencer"));
                assert_eq!(reason, &format!("NotSequencer({})", intruder.address()));
            }
            other => panic!("expected a revert, got {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Rejected);
        assert!(!err.is_retryable());
        // Refused before broadcasting: nothing was paid, nothing recorded.
        assert_eq!(client.balance(intruder.address()).await.unwrap(), balance);
        assert_eq!(client.last_batch().await.unwrap().batch_index, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_are_queued_for_forced_inclusion() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let client = AlloyL1Client::connect(l1.url(), deployed.contracts()).unwrap();
        let recipient = dev_account(5).address();
        let amount = U256::from(10).pow(U256::from(18));
        let receipt = deposit(&l1, &deployed, 2, recipient, amount).await;

        let messages = client
            .portal_messages(receipt.block_number, receipt.block_number)
            .await
            .unwrap();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(
            (m.deposit_nonce, m.from, m.to, m.mint, m.value, m.gas_limit),
            (
                0,
                dev_account(2).address(),
                recipient,
                amount,
                amount,
                100_000
            )
        );
        assert_eq!(m.l1_block_hash, receipt.block_hash);
        // Our hash of the message is the one the portal queued.
        let queued = client.portal().queue(U256::ZERO).call().await.unwrap();
        assert_eq!(m.queue_hash(), queued.hash);
        assert_eq!(m.enqueued_at, queued.enqueuedAt);
        assert_eq!(client.balance(deployed.portal).await.unwrap(), amount);

        let next = client.next_forced_inclusion().await.unwrap();
        assert!(next.pending);
        assert_eq!(next.deposit_nonce, 0);
        assert_eq!(next.deadline, m.enqueued_at + FORCE_INCLUSION_DELAY);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_deployment_is_reused_while_the_l1_keeps_it() {
    with_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("l1-deployment.json");
        let mut l1 = start_anvil(Some(dir.path().join("anvil-state.json"))).await;
        let deploy = |url: String| {
            let record = record.clone();
            async move {
                deploy_or_reuse(&url, dev_account(0), &deploy_params(), &record)
                    .await
                    .unwrap()
            }
        };

        let (first, reused) = deploy(l1.url().to_owned()).await;
        assert!(!reused);
        let (again, reused) = deploy(l1.url().to_owned()).await;
        assert!(reused);
        assert_eq!(again, first);

        // anvil restarted from its state file still has the contracts.
        l1.restart().await.unwrap();
        let (after_restart, reused) = deploy(l1.url().to_owned()).await;
        assert!(reused);
        assert_eq!(after_restart, first);
        drop(l1);

        // A fresh L1 does not: deploy again.
        let fresh = start_anvil(None).await;
        let (redeployed, reused) = deploy(fresh.url().to_owned()).await;
        assert!(!reused);
        AlloyL1Client::connect(fresh.url(), redeployed.contracts())
            .unwrap()
            .check_contracts()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_transaction_signs_with_the_client_key() {
    with_timeout(async {
        let l1 = start_anvil(None).await;
        let deployed = deploy_lanes(&l1).await;
        let sender = dev_account(4);
        let client = client_for(&l1, &deployed, sender.clone());
        assert_eq!(client.signer_address(), Some(sender.address()));
        let recipient = alloy::primitives::Address::repeat_byte(0x77);

        // No `from`, nonce, gas or fees: the client fills them in.
        let tx = alloy::rpc::types::TransactionRequest::default()
            .to(recipient)
            .value(U256::from(1234));
        let tx_hash = client.send_transaction(tx).await.unwrap();
        let receipt = client.wait_for_receipt(tx_hash).await.unwrap();
        assert!(receipt.success);
        assert_eq!(client.receipt(tx_hash).await.unwrap(), Some(receipt));
        assert_eq!(client.balance(recipient).await.unwrap(), U256::from(1234));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_l1_funds_the_mnemonic_accounts_and_logs_to_a_file() {
    with_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("anvil.log");
        let mut l1 = lanes_l1_bridge::DevL1::start(lanes_l1_bridge::DevL1Options {
            anvil_path: Some(anvil_path()),
            log_file: Some(log.clone()),
            accounts: 3,
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(l1.url().ends_with(&format!(":{}", l1.port())));
        let client = AlloyL1Client::connect(l1.url(), Default::default()).unwrap();
        let accounts = l1.accounts();
        assert_eq!(accounts.len(), 3);
        for account in &accounts {
            assert!(client.balance(account.address()).await.unwrap() > U256::ZERO);
        }
        assert_eq!(l1.deployer().address(), accounts[0].address());
        assert_eq!(l1.sequencer().address(), accounts[1].address());
        // Interval mining is on by default.
        let start = client.latest_block_number().await.unwrap();
        wait_until_async(|| async { client.latest_block_number().await.unwrap() > start }).await;

        l1.kill();
        assert!(
            client
                .latest_block_number()
                .await
                .unwrap_err()
                .is_retryable()
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("Listening on"), "{text}");
    })
    .await;
}

async fn wait_until_async<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
