//! End-to-end load, crash and shutdown tests: an alloy provider drives the real `lanes`
//! binary, and the data directory is checked afterwards by opening RocksDB directly.

mod common;

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::eip2718::Encodable2718,
    network::TxSignerSync,
    primitives::{Address, B256, TxKind, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use common::{DEV_ACCOUNTS, Node};
use lanes_executor::{
    StateReader, Storage, StorageOptions,
    root::{FullState, state_root},
};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const GWEI: u128 = 1_000_000_000;

fn signer(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

/// A signed EIP-1559 ETH transfer, encoded for `eth_sendRawTransaction`.
fn transfer(signer: &PrivateKeySigner, nonce: u64, to: Address, value: u128) -> (B256, Vec<u8>) {
    let mut tx = TxEip1559 {
        chain_id: common::CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: 1_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    };
    let signature = signer.sign_transaction_sync(&mut tx).expect("sign");
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    (*envelope.tx_hash(), envelope.encoded_2718())
}

/// Recomputes the state root from the flat state on disk and compares it with the head
/// header's, and returns the head number. The node must be stopped.
fn check_datadir(node: &Node) -> u64 {
    let storage = Storage::open(&node.datadir().join("db"), &StorageOptions::default())
        .expect("open the node's database");
    let (number, hash) = storage.head().unwrap().expect("a head block");
    let header = storage.header(number).unwrap().expect("head header");
    assert_eq!(header.hash_slow(), hash, "head hash matches its header");
    let from_scratch = state_root(&storage.flat_state().unwrap());
    assert_eq!(
        from_scratch, header.state_root,
        "state root of block {number} == full recomputation"
    );
    number
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn thousand_transactions_from_ten_senders() {
    thousand_transactions(Node::builder().block_time("200ms").spawn());
}

/// The same load through the parallel executor: the same exact balances and a state root
/// that matches a recomputation.
#[test]
fn thousand_transactions_with_the_parallel_executor() {
    thousand_transactions(
        Node::builder()
            .block_time("200ms")
            .config_str("executor", "mode", "parallel")
            .config("executor", "threads", "2")
            .spawn(),
    );
}

fn thousand_transactions(mut node: Node) {
    let url: alloy::transports::http::reqwest::Url = node.rpc_url().parse().unwrap();
    let senders: Vec<PrivateKeySigner> = (0..10).map(signer).collect();
    let recipient = |i: usize| Address::with_last_byte(0xa0 + i as u8);
    let value = |nonce: u64| 1_000 + nonce as u128;
    let rt = runtime();
    rt.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let before: Vec<U256> =
            futures_balances(&provider, senders.iter().map(|s| s.address())).await;

        // 100 transactions per sender, submitted round-robin so the pool holds many senders
        // at once.
        let mut hashes = Vec::new();
        for nonce in 0..100u64 {
            for (i, signer) in senders.iter().enumerate() {
                let (hash, raw) = transfer(signer, nonce, recipient(i), value(nonce));
                let sent = provider.send_raw_transaction(&raw).await.expect("accepted");
                assert_eq!(*sent.tx_hash(), hash);
                hashes.push((i, hash));
            }
        }

        let deadline = Instant::now() + Duration::from_secs(120);
        let mut fees = vec![U256::ZERO; senders.len()];
        for (i, hash) in &hashes {
            let receipt = loop {
                if let Some(r) = provider.get_transaction_receipt(*hash).await.unwrap() {
                    break r;
                }
                assert!(
                    Instant::now() < deadline,
                    "receipt of {hash} not available in time"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(receipt.status(), "transfer {hash} succeeded");
            fees[*i] += U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
        }

        let sent_value: u128 = (0..100).map(value).sum();
        for (i, signer) in senders.iter().enumerate() {
            let nonce = provider
                .get_transaction_count(signer.address())
                .await
                .unwrap();
            assert_eq!(nonce, 100, "nonce of sender {i}");
            let balance = provider.get_balance(signer.address()).await.unwrap();
            assert_eq!(
                balance,
                before[i] - U256::from(sent_value) - fees[i],
                "balance of sender {i}"
            );
            let received = provider.get_balance(recipient(i)).await.unwrap();
            assert_eq!(received, U256::from(sent_value), "balance of recipient {i}");
        }
    });
    node.terminate();
    check_datadir(&node);
}

async fn futures_balances(
    provider: &impl Provider,
    addresses: impl Iterator<Item = Address>,
) -> Vec<U256> {
    let mut out = Vec::new();
    for address in addresses {
        out.push(provider.get_balance(address).await.unwrap());
    }
    out
}

/// kill -9 while blocks are being produced under load; after a restart the head is
/// consistent and every transaction whose receipt was served before the kill is still there.
#[test]
fn crash_under_load_loses_nothing_acknowledged() {
    let mut node = Node::builder().block_time("100ms").spawn();
    let url: alloy::transports::http::reqwest::Url = node.rpc_url().parse().unwrap();
    let senders: Vec<PrivateKeySigner> = (0..4).map(signer).collect();
    let rt = runtime();
    let confirmed: HashMap<B256, u64> = rt.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let mut confirmed = HashMap::new();
        let mut pending = Vec::new();
        let started = Instant::now();
        let mut nonce = 0u64;
        // Keep submitting and collecting receipts for a while, so the kill lands mid-stream.
        while started.elapsed() < Duration::from_secs(3) {
            for signer in &senders {
                let (hash, raw) = transfer(signer, nonce, Address::with_last_byte(0xee), 1);
                let _ = provider.send_raw_transaction(&raw).await.expect("accepted");
                pending.push(hash);
            }
            nonce += 1;
            let mut still = Vec::new();
            for hash in pending.drain(..) {
                match provider.get_transaction_receipt(hash).await.unwrap() {
                    Some(r) => {
                        confirmed.insert(hash, r.block_number.unwrap());
                    }
                    None => still.push(hash),
                }
            }
            pending = still;
        }
        confirmed
    });
    assert!(
        confirmed.len() > 20,
        "load produced confirmed transactions ({})",
        confirmed.len()
    );
    node.kill();
    let head_after_kill = check_datadir(&node);

    node.restart();
    let url: alloy::transports::http::reqwest::Url = node.rpc_url().parse().unwrap();
    rt.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let head = provider.get_block_number().await.unwrap();
        assert!(
            head >= head_after_kill,
            "restart resumes at the committed head"
        );
        for (hash, block) in &confirmed {
            let receipt = provider
                .get_transaction_receipt(*hash)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("receipt of {hash} served before the kill is gone"));
            assert_eq!(receipt.block_number, Some(*block));
        }
        // The chain goes on from where it was.
        let (hash, raw) = transfer(&senders[0], 0, Address::ZERO, 1);
        let err = provider
            .send_raw_transaction(&raw)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("nonce too low"), "{err} ({hash})");
    });
    node.terminate();
    check_datadir(&node);
}

/// SIGTERM right after submitting: intake stops, the block in progress is sealed and
/// committed, the process exits 0, and the transactions are there after a restart.
#[test]
fn sigterm_commits_accepted_transactions() {
    // A long block time, so the transactions are still pending when SIGTERM arrives.
    let mut node = Node::builder().block_time("5s").spawn();
    let url: alloy::transports::http::reqwest::Url = node.rpc_url().parse().unwrap();
    let signer = signer(3);
    let rt = runtime();
    let hashes: Vec<B256> = rt.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let mut hashes = Vec::new();
        for nonce in 0..5 {
            let (hash, raw) = transfer(&signer, nonce, Address::with_last_byte(7), 1);
            let _ = provider.send_raw_transaction(&raw).await.expect("accepted");
            hashes.push(hash);
        }
        hashes
    });
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    check_datadir(&node);
    let storage = Storage::open(&node.datadir().join("db"), &StorageOptions::default()).unwrap();
    for hash in &hashes {
        assert!(
            storage.tx_location(*hash).unwrap().is_some(),
            "{hash} committed at shutdown"
        );
    }
    let account = storage.account(signer.address()).unwrap().unwrap();
    assert_eq!(account.nonce, 5);
}

/// With 50 ms blocks, block N+1 executes while N is still being rooted and committed. A
/// contract that stores `BLOCKHASH(number - 1)` at slot `number` must see exactly the hash
/// each parent was sealed with.
#[test]
fn blockhash_of_a_block_still_in_the_pipeline_is_its_sealed_hash() {
    let mut node = Node::builder().block_time("50ms").spawn();
    let url: alloy::transports::http::reqwest::Url = node.rpc_url().parse().unwrap();
    let deployer = signer(6);
    // runtime: SSTORE(NUMBER, BLOCKHASH(NUMBER - 1))
    let code = [0x43, 0x60, 0x01, 0x90, 0x03, 0x40, 0x43, 0x55, 0x00];
    let mut init = vec![
        0x60, 9, 0x60, 0x0c, 0x5f, 0x39, 0x60, 9, 0x5f, 0xf3, 0x00, 0x00,
    ];
    init.extend(code);
    let sign = |nonce: u64, to: TxKind, input: Vec<u8>| {
        let mut tx = TxEip1559 {
            chain_id: common::CHAIN_ID,
            nonce,
            gas_limit: 100_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: 1_000_000,
            to,
            input: input.into(),
            ..Default::default()
        };
        let signature = deployer.sign_transaction_sync(&mut tx).unwrap();
        TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
    };
    let contract = deployer.address().create(0);
    let rt = runtime();
    rt.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let _ = provider
            .send_raw_transaction(&sign(0, TxKind::Create, init))
            .await
            .unwrap();
        let mut hashes = Vec::new();
        for nonce in 1..=30u64 {
            let pending = provider
                .send_raw_transaction(&sign(nonce, TxKind::Call(contract), Vec::new()))
                .await
                .unwrap();
            hashes.push(*pending.tx_hash());
            // Spread the calls over many blocks.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut checked = std::collections::BTreeSet::new();
        for hash in hashes {
            let receipt = loop {
                if let Some(r) = provider.get_transaction_receipt(hash).await.unwrap() {
                    break r;
                }
                assert!(Instant::now() < deadline, "no receipt for {hash}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(receipt.status());
            let number = receipt.block_number.unwrap();
            let stored = provider
                .get_storage_at(contract, U256::from(number))
                .await
                .unwrap();
            let parent = provider
                .get_block_by_number((number - 1).into())
                .await
                .unwrap()
                .expect("parent block");
            assert_eq!(
                B256::from(stored),
                parent.header.hash,
                "BLOCKHASH({}) in block {number}",
                number - 1
            );
            checked.insert(number);
        }
        assert!(
            checked.len() >= 5,
            "calls spread over several blocks: {checked:?}"
        );
    });
    node.terminate();
    check_datadir(&node);
}
