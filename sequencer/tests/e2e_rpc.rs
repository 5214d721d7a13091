//! End-to-end JSON-RPC behaviour against the real `lanes` binary: the protocol edges
//! (batches, malformed input, unknown methods, limits), block tags, logs, fee and gas
//! methods, WebSocket subscriptions, polled filters, state at recent blocks, tracing and raw
//! encodings.

mod common;

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy},
    eips::eip2718::Encodable2718,
    network::TxSignerSync,
    primitives::{Address, Bytes, TxKind, U256, hex, keccak256},
    signers::local::PrivateKeySigner,
};
use common::{DEV_ACCOUNTS, Node, RpcError, http_request};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const GWEI: u128 = 1_000_000_000;

fn signer(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

fn sign_1559(signer: &PrivateKeySigner, mut tx: TxEip1559) -> String {
    let signature = signer.sign_transaction_sync(&mut tx).unwrap();
    hex::encode_prefixed(TxEnvelope::from(tx.into_signed(signature)).encoded_2718())
}

/// Init code of a contract whose runtime emits `LOG2(topic0 = 0xaa.., topic1 = caller)`
/// with the call data as data, and returns nothing; reverting with "nope" when called
/// with empty data.
fn emitter_initcode() -> Bytes {
    // runtime:
    //   CALLDATASIZE ISZERO PUSH1 revert JUMPI
    //   CALLDATASIZE PUSH0 PUSH0 CALLDATACOPY
    //   CALLER PUSH32 0xaa..aa CALLDATASIZE PUSH0 LOG2 STOP
    //   revert: JUMPDEST  (store Error("nope") ABI and revert)
    let mut runtime = hex::decode("3615602f57365f5f37337faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa365fa200").unwrap();
    let revert_at = runtime.len();
    assert_eq!(revert_at, 0x2f, "jump target");
    // JUMPDEST; mstore Error(string) selector + offset + len + "nope"; revert(0x1c, 0x64)
    runtime.extend(
        hex::decode(concat!(
            "5b",
            "6308c379a0",
            "5f52", // mstore(0, 0x08c379a0)
            "6020",
            "6020",
            "52", // mstore(0x20, 0x20)
            "6004",
            "6040",
            "52", // mstore(0x40, 4)
            "7f6e6f706500000000000000000000000000000000000000000000000000000000",
            "6060",
            "52",
            "6064",
            "601c",
            "fd"
        ))
        .unwrap(),
    );
    initcode_for(&runtime)
}

/// Init code that deploys `runtime` (at most 255 bytes): CODECOPY it to memory and RETURN it.
fn initcode_for(runtime: &[u8]) -> Bytes {
    let len = u8::try_from(runtime.len()).expect("a short runtime");
    let mut init = vec![0x60, len, 0x60, 0x0c, 0x5f, 0x39, 0x60, len, 0x5f, 0xf3];
    init.extend([0x00, 0x00]); // padding so the runtime starts at 0x0c
    init.extend(runtime);
    init.into()
}

fn wait_receipt(node: &Node, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receipt = node.rpc_ok("eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "no receipt for {hash}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn quantity(v: &Value) -> u128 {
    common::parse_u128(v.as_str().unwrap_or_else(|| panic!("not a quantity: {v}")))
}

fn deploy_emitter(node: &Node, signer: &PrivateKeySigner, nonce: u64) -> (Address, Value) {
    let raw = sign_create(signer, nonce, emitter_initcode());
    let hash = node.rpc_ok("eth_sendRawTransaction", json!([raw]));
    let receipt = wait_receipt(node, hash.as_str().unwrap());
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let address: Address = receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(address, signer.address().create(nonce));
    (address, receipt)
}

/// Deploys `runtime` from `signer` at `nonce`; its address.
fn deploy_runtime(node: &Node, signer: &PrivateKeySigner, nonce: u64, runtime: &[u8]) -> Address {
    let raw = sign_create(signer, nonce, initcode_for(runtime));
    let hash = node.rpc_ok("eth_sendRawTransaction", json!([raw]));
    let receipt = wait_receipt(node, hash.as_str().unwrap());
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A signed contract creation running `initcode`.
fn sign_create(signer: &PrivateKeySigner, nonce: u64, initcode: Bytes) -> String {
    sign_1559(
        signer,
        TxEip1559 {
            chain_id: common::CHAIN_ID,
            nonce,
            gas_limit: 200_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Create,
            input: initcode,
            ..Default::default()
        },
    )
}

/// A signed call of `to` with `input`.
fn sign_call(signer: &PrivateKeySigner, to: Address, nonce: u64, input: &[u8]) -> String {
    sign_1559(
        signer,
        TxEip1559 {
            chain_id: common::CHAIN_ID,
            nonce,
            gas_limit: 200_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(to),
            input: input.to_vec().into(),
            ..Default::default()
        },
    )
}

/// POSTs a JSON-RPC batch; the answers.
fn post_batch(port: u16, batch: &Value) -> Vec<Value> {
    let (_, body) = http_request(
        port,
        "POST",
        "/",
        Some(batch.to_string().as_bytes()),
        common::HTTP_TIMEOUT,
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    body.as_array().expect("batch answer is an array").clone()
}

#[test]
fn protocol_errors_use_json_rpc_codes() {
    let node = Node::start();
    let port = node.rpc_port();
    // Malformed JSON: parse error -32700, the connection answers.
    let (status, body) =
        http_request(port, "POST", "/", Some(b"{not json"), common::HTTP_TIMEOUT).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], -32700, "{status} {body}");
    // Unknown method: -32601.
    match node.rpc("eth_doesNotExist", json!([])) {
        Err(RpcError::Rpc { code, .. }) => assert_eq!(code, -32601),
        other => panic!("{other:?}"),
    }
    // Bad params: -32602.
    match node.rpc("eth_getBalance", json!(["0x1234"])) {
        Err(RpcError::Rpc { code, .. }) => assert_eq!(code, -32602),
        other => panic!("{other:?}"),
    }
    // Batch requests answer each call, in order, errors included.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_nope", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "net_version", "params": []},
    ]);
    let answers = post_batch(port, &batch);
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).unwrap().clone();
    assert_eq!(by_id(1)["result"], "0xa455");
    assert_eq!(by_id(2)["error"]["code"], -32601);
    assert_eq!(by_id(3)["result"], "42069");
    // A body over the limit is refused, not read: 413, or the connection is closed while
    // the client is still writing.
    let huge = vec![b' '; 6 * 1024 * 1024];
    if let Ok((status, _)) = http_request(port, "POST", "/", Some(&huge), common::HTTP_TIMEOUT) {
        assert_eq!(status, 413);
    }
    // And the node still serves.
    assert_eq!(node.rpc_ok("eth_chainId", json!([])), "0xa455");
    // Calls are counted per method; unknown names share one label.
    let (status, metrics) = node.metrics().unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("lanes_rpc_requests_total{method=\"eth_chainId\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lanes_rpc_errors_total{method=\"unknown\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("eth_doesNotExist"),
        "method names from clients are not labels"
    );
}

/// A batch's transactions are recovered together but answered one by one in batch order:
/// each call sees the pool as the calls before it left it, with geth's errors.
/// 1 wei to `0x00…01` at nonce 0: 21,000 gas, 10 gwei cap, 1 gwei tip.
fn wei_to_one() -> TxEip1559 {
    TxEip1559 {
        chain_id: common::CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(Address::with_last_byte(1)),
        value: U256::from(1),
        ..Default::default()
    }
}

#[test]
fn batched_transactions_are_admitted_in_batch_order() {
    let node = Node::start();
    let port = node.rpc_port();
    let s = signer(6);
    let tx = |nonce: u64, chain_id: u64| TxEip1559 {
        chain_id,
        nonce,
        ..wei_to_one()
    };
    let first = sign_1559(&s, tx(0, common::CHAIN_ID));
    let second = sign_1559(&s, tx(1, common::CHAIN_ID));
    let send = |id: u64, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": params});
    let batch = json!([
        send(1, json!([first])),
        send(2, json!([second])),
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getTransactionCount",
         "params": [s.address(), "pending"]},
        send(4, json!([second])),
        send(5, json!(["0xzz"])),
        send(6, json!([sign_1559(&s, tx(2, common::CHAIN_ID + 1))])),
        send(7, json!([sign_1559(&s, tx(3, common::CHAIN_ID))])),
        send(8, json!([sign_1559(&s, tx(2, common::CHAIN_ID))])),
    ]);
    let answers = post_batch(port, &batch);
    let ids: Vec<i64> = answers.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8], "answers in request order");
    let hash_of = |raw: &str| alloy::primitives::keccak256(hex::decode(raw).unwrap()).to_string();
    assert_eq!(answers[0]["result"], hash_of(&first), "{answers:?}");
    assert_eq!(answers[1]["result"], hash_of(&second), "{answers:?}");
    // Sees the two transactions before it, not the ones after it.
    assert_eq!(answers[2]["result"], "0x2", "{answers:?}");
    assert_eq!(answers[3]["error"]["code"], -32000, "{answers:?}");
    assert_eq!(
        answers[3]["error"]["message"], "already known",
        "{answers:?}"
    );
    assert_eq!(answers[4]["error"]["code"], -32602, "{answers:?}");
    assert_eq!(answers[5]["error"]["code"], -32000, "{answers:?}");
    assert_eq!(
        answers[5]["error"]["message"],
        format!(
            "invalid chain id: have {}, want {}",
            common::CHAIN_ID + 1,
            common::CHAIN_ID
        ),
        "{answers:?}"
    );
    // Nonce 3 before nonce 2 is queued (a gap), then 2 fills it: both accepted.
    assert!(answers[6]["result"].is_string(), "{answers:?}");
    assert!(answers[7]["result"].is_string(), "{answers:?}");
    assert_eq!(
        node.rpc_ok("eth_getTransactionCount", json!([s.address(), "pending"])),
        "0x4"
    );
}

#[test]
fn transaction_validation_errors_match_geth() {
    let node = Node::start();
    let s = signer(5);
    let base = wei_to_one();
    let send = |tx: TxEip1559| node.rpc("eth_sendRawTransaction", json!([sign_1559(&s, tx)]));
    let message = |r: Result<Value, RpcError>| match r {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32000, "{message}");
            message
        }
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(
        message(send(TxEip1559 {
            chain_id: 1,
            ..base.clone()
        }))
        .starts_with("invalid chain id")
    );
    assert!(
        message(send(TxEip1559 {
            gas_limit: 20_000,
            ..base.clone()
        }))
        .starts_with("intrinsic gas too low")
    );
    assert!(
        message(send(TxEip1559 {
            gas_limit: 600_000_000,
            ..base.clone()
        }))
        .starts_with("exceeds block gas limit")
    );
    assert_eq!(
        message(send(TxEip1559 {
            gas_limit: 40_000_000,
            ..base.clone()
        })),
        "transaction gas limit too high (cap: 16777216, tx: 40000000)"
    );
    assert!(
        message(send(TxEip1559 {
            value: U256::from(10u128.pow(30)),
            ..base.clone()
        }))
        .starts_with("insufficient funds for gas * price + value")
    );
    assert!(
        message(send(TxEip1559 {
            nonce: 1_000,
            ..base.clone()
        }))
        .starts_with("nonce too high")
    );
    assert!(
        message(send(TxEip1559 {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
            ..base.clone()
        }))
        .starts_with("max fee per gas less than block base fee")
    );
    assert!(
        message(send(TxEip1559 {
            max_priority_fee_per_gas: 20 * GWEI,
            ..base.clone()
        }))
        .starts_with("max priority fee per gas higher than max fee per gas")
    );
    send(base.clone()).expect("valid transaction accepted");
    assert_eq!(message(send(base.clone())), "already known");
    // Same nonce, same fees but different content: a replacement that does not bump fees.
    assert_eq!(
        message(send(TxEip1559 {
            value: U256::from(2),
            ..base.clone()
        })),
        "replacement transaction underpriced"
    );
    // Unprotected legacy transactions are refused over RPC, as geth does by default.
    let mut legacy = TxLegacy {
        chain_id: None,
        nonce: 1,
        gas_price: 10 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    };
    let signature = s.sign_transaction_sync(&mut legacy).unwrap();
    let raw = hex::encode_prefixed(TxEnvelope::from(legacy.into_signed(signature)).encoded_2718());
    assert!(
        message(node.rpc("eth_sendRawTransaction", json!([raw])))
            .starts_with("only replay-protected")
    );
    // Garbage bytes: an rlp error, not a crash.
    assert!(message(node.rpc("eth_sendRawTransaction", json!(["0xdeadbeef"]))).starts_with("rlp"));
}

#[test]
fn logs_calls_and_fee_methods() {
    let node = Node::start();
    let s = signer(2);
    let (emitter, deploy_receipt) = deploy_emitter(&node, &s, 0);
    let code = node.rpc_ok("eth_getCode", json!([emitter, "latest"]));
    assert!(code.as_str().unwrap().len() > 4);

    // eth_call: data echoes nothing, and empty data reverts with the reason and code 3.
    match node.rpc("eth_call", json!([{"to": emitter, "data": "0x"}, "latest"])) {
        Err(RpcError::Rpc {
            code,
            message,
            data,
        }) => {
            assert_eq!(code, 3);
            assert_eq!(message, "execution reverted: nope");
            assert!(data.unwrap().to_string().contains("08c379a0"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        node.rpc_ok("eth_call", json!([{"to": emitter, "data": "0x01"}])),
        "0x"
    );
    // eth_estimateGas gives a limit that works, and reverts surface the same way.
    let estimate = quantity(&node.rpc_ok(
        "eth_estimateGas",
        json!([{"from": s.address(), "to": emitter, "data": "0x0102"}]),
    ));
    assert!((21_000..100_000).contains(&estimate), "{estimate}");
    assert!(matches!(
        node.rpc("eth_estimateGas", json!([{"to": emitter, "data": "0x"}])),
        Err(RpcError::Rpc { code: 3, .. })
    ));
    // State overrides: a balance override is visible to the call.
    let who = Address::with_last_byte(0x99);
    let overridden = node.rpc_ok("eth_call", json!([{"from": who, "to": who, "value": "0x5"}, "latest", {who.to_string(): {"balance": "0x10"}}]));
    assert_eq!(overridden, "0x");

    // Emit two logs in two transactions.
    let mut hashes = Vec::new();
    for (nonce, data) in [(1u64, vec![1u8]), (2, vec![2, 2])] {
        let raw = sign_1559(
            &s,
            TxEip1559 {
                chain_id: common::CHAIN_ID,
                nonce,
                gas_limit: estimate as u64 + 10_000,
                max_fee_per_gas: 10 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to: TxKind::Call(emitter),
                input: data.into(),
                ..Default::default()
            },
        );
        hashes.push(
            node.rpc_ok("eth_sendRawTransaction", json!([raw]))
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let receipts: Vec<Value> = hashes.iter().map(|h| wait_receipt(&node, h)).collect();
    let topic0 = format!("0x{}", "aa".repeat(32));
    let caller_topic = format!("0x{:0>64}", hex::encode(s.address()));
    for r in &receipts {
        assert_eq!(
            r["logs"][0]["address"].as_str().unwrap().to_lowercase(),
            emitter.to_string().to_lowercase()
        );
        assert_eq!(r["logs"][0]["topics"][1], caller_topic);
    }
    let filter = |extra: Value| {
        let mut f = json!({"fromBlock": "earliest", "toBlock": "latest", "address": emitter});
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        node.rpc_ok("eth_getLogs", json!([f]))
    };
    assert_eq!(filter(json!({})).as_array().unwrap().len(), 2);
    assert_eq!(
        filter(json!({"topics": [topic0.clone()]}))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        filter(json!({"topics": [topic0.clone(), caller_topic.clone()]}))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        filter(json!({"topics": [null, format!("0x{}", "11".repeat(32))]}))
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let other_address = node.rpc_ok(
        "eth_getLogs",
        json!([{"fromBlock": "earliest", "address": Address::with_last_byte(1)}]),
    );
    assert_eq!(other_address.as_array().unwrap().len(), 0);
    let by_block = node.rpc_ok(
        "eth_getLogs",
        json!([{"blockHash": receipts[1]["blockHash"]}]),
    );
    assert!(
        by_block
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["transactionHash"] == hashes[1].as_str())
    );
    match node.rpc(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0x100000"}]),
    ) {
        Ok(_) => {} // the range is clamped to the head, which is within the limit
        Err(e) => panic!("{e:?}"),
    }

    // Blocks by tag, number and hash agree; receipts by block; counts.
    let block_number = receipts[1]["blockNumber"].as_str().unwrap().to_string();
    let by_number = node.rpc_ok("eth_getBlockByNumber", json!([block_number, true]));
    let by_hash = node.rpc_ok(
        "eth_getBlockByHash",
        json!([receipts[1]["blockHash"], true]),
    );
    assert_eq!(by_number, by_hash);
    // No uncles on a rollup, for a block and for none.
    let block_hash = &receipts[1]["blockHash"];
    assert_eq!(
        node.rpc_ok("eth_getUncleCountByBlockHash", json!([block_hash])),
        "0x0"
    );
    assert_eq!(
        node.rpc_ok("eth_getUncleCountByBlockNumber", json!(["0xffffff"])),
        Value::Null
    );
    assert_eq!(
        node.rpc_ok(
            "eth_getUncleByBlockHashAndIndex",
            json!([block_hash, "0x0"])
        ),
        Value::Null
    );
    assert_eq!(node.rpc_ok("eth_mining", json!([])), json!(false));
    assert!(
        by_number["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["hash"] == hashes[1].as_str())
    );
    let block_receipts = node.rpc_ok("eth_getBlockReceipts", json!([block_number]));
    assert!(
        block_receipts
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["transactionHash"] == hashes[1].as_str())
    );
    let count = node.rpc_ok(
        "eth_getBlockTransactionCountByNumber",
        json!([block_number]),
    );
    assert_eq!(
        quantity(&count) as usize,
        by_number["transactions"].as_array().unwrap().len()
    );
    for tag in ["latest", "pending", "safe", "finalized"] {
        assert!(
            !node
                .rpc_ok("eth_getBlockByNumber", json!([tag, false]))
                .is_null(),
            "{tag}"
        );
    }
    let genesis = node.rpc_ok("eth_getBlockByNumber", json!(["earliest", false]));
    assert_eq!(genesis["number"], "0x0");
    assert!(
        node.rpc_ok("eth_getBlockByNumber", json!(["0xffffff", false]))
            .is_null()
    );
    let tx = node.rpc_ok("eth_getTransactionByHash", json!([hashes[0]]));
    assert_eq!(tx["blockHash"], receipts[0]["blockHash"]);
    assert_eq!(deploy_receipt["to"], Value::Null);

    // Fees.
    let gas_price = quantity(&node.rpc_ok("eth_gasPrice", json!([])));
    let tip = quantity(&node.rpc_ok("eth_maxPriorityFeePerGas", json!([])));
    assert!(gas_price > tip && tip > 0);
    let history = node.rpc_ok("eth_feeHistory", json!(["0x4", "latest", [25.0, 75.0]]));
    let base_fees = history["baseFeePerGas"].as_array().unwrap();
    let ratios = history["gasUsedRatio"].as_array().unwrap();
    assert_eq!(base_fees.len(), ratios.len() + 1);
    assert_eq!(history["reward"].as_array().unwrap().len(), ratios.len());
    assert_eq!(
        node.rpc_ok("eth_getTransactionCount", json!([s.address(), "pending"])),
        "0x3"
    );
    assert_eq!(node.rpc_ok("eth_syncing", json!([])), false);
}

#[test]
fn websocket_subscriptions_deliver_heads_logs_and_pending_transactions() {
    let node = Node::start();
    let s = signer(4);
    let (emitter, _) = deploy_emitter(&node, &s, 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(node.ws_url())
            .await
            .expect("websocket");
        let request = |id: u64, params: Value| {
            Message::text(
                json!({"jsonrpc": "2.0", "id": id, "method": "eth_subscribe", "params": params})
                    .to_string(),
            )
        };
        ws.send(request(1, json!(["newHeads"]))).await.unwrap();
        ws.send(request(2, json!(["logs", {"address": emitter}])))
            .await
            .unwrap();
        ws.send(request(3, json!(["bogus"]))).await.unwrap();
        ws.send(request(4, json!(["newPendingTransactions"])))
            .await
            .unwrap();
        let raw = sign_call(&s, emitter, 1, &[7]);
        let hash = alloy::primitives::keccak256(hex::decode(&raw).unwrap());
        let mut subscriptions = std::collections::HashMap::new();
        let mut sent = false;
        let (mut heads, mut logs, mut bogus_error, mut admitted) = (0, 0, false, false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while heads < 1 || logs < 1 || !bogus_error || !admitted {
            let message = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("notifications in time")
                .unwrap()
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if let Some(id) = value["id"].as_u64() {
                if id == 3 {
                    assert!(value["error"]["code"].is_i64(), "{value}");
                    bogus_error = true;
                } else {
                    subscriptions.insert(
                        value["result"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{value}"))
                            .to_string(),
                        id,
                    );
                }
                if subscriptions.len() == 3 && !sent {
                    node.rpc_ok("eth_sendRawTransaction", json!([raw]));
                    sent = true;
                }
                continue;
            }
            let sub = value["params"]["subscription"].as_str().unwrap();
            let result = &value["params"]["result"];
            match subscriptions.get(sub) {
                Some(1) => {
                    assert!(
                        result["hash"].is_string() && result["stateRoot"].is_string(),
                        "{result}"
                    );
                    heads += 1;
                }
                Some(2) => {
                    assert_eq!(result["data"], "0x07", "{result}");
                    logs += 1;
                }
                Some(4) => {
                    assert_eq!(result, &json!(hash), "the one transaction sent");
                    admitted = true;
                }
                other => panic!("notification for unknown subscription {other:?}: {value}"),
            }
        }
    });
}

/// Polled filters, as clients without WebSocket use them (ethers' `contract.on`, web3.py's
/// `w3.eth.filter`): each poll returns what happened since the last one.
#[test]
fn polled_filters_report_blocks_logs_and_pending_transactions() {
    let node = Node::start();
    let s = signer(5);
    let (emitter, _) = deploy_emitter(&node, &s, 0);
    let install = |method: &str, params: Value| -> String {
        let id = node.rpc_ok(method, params);
        let id = id.as_str().unwrap_or_else(|| panic!("{method}: {id}"));
        assert!(id.starts_with("0x"), "{method}: {id}");
        id.to_string()
    };
    let changes = |id: &str| node.rpc_ok("eth_getFilterChanges", json!([id]));
    let blocks = install("eth_newBlockFilter", json!([]));
    let logs = install("eth_newFilter", json!([{"address": emitter}]));
    let other_topic = install(
        "eth_newFilter",
        json!([{"address": emitter, "topics": [format!("0x{}", "bb".repeat(32))]}]),
    );
    let from_genesis = install(
        "eth_newFilter",
        json!([{"address": emitter, "fromBlock": "0x0"}]),
    );
    let pending = install("eth_newPendingTransactionFilter", json!([]));
    let pending_full = install("eth_newPendingTransactionFilter", json!([true]));
    // A block range the wrong way round is refused as geth refuses it.
    match node.rpc(
        "eth_newFilter",
        json!([{"fromBlock": "0x5", "toBlock": "0x2"}]),
    ) {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(
                (code, message.as_str()),
                (-32000, "invalid from and to block combination")
            )
        }
        other => panic!("{other:?}"),
    }

    // A transaction with a nonce gap stays queued: it is reported, and stays in the pool
    // to be shown in full.
    let queued = sign_1559(
        &signer(6),
        TxEip1559 {
            nonce: 3,
            ..wei_to_one()
        },
    );
    let queued = node.rpc_ok("eth_sendRawTransaction", json!([queued]));
    let call = sign_call(&s, emitter, 1, &[7]);
    let call = node.rpc_ok("eth_sendRawTransaction", json!([call]));
    assert_eq!(changes(&pending), json!([queued, call]));
    assert_eq!(
        changes(&pending),
        json!([]),
        "a poll reports only what is new"
    );
    let full = changes(&pending_full);
    let full = full.as_array().unwrap();
    assert!(
        full.iter()
            .any(|tx| tx["hash"] == queued && tx["nonce"] == "0x3"),
        "{full:?}"
    );

    let receipt = wait_receipt(&node, call.as_str().unwrap());
    let block_hash = receipt["blockHash"].clone();
    // Blocks are reported up to the head; the call's block is among them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.contains(&block_hash) {
        assert!(Instant::now() < deadline, "{block_hash} not in {seen:?}");
        seen.extend(changes(&blocks).as_array().unwrap().iter().cloned());
    }
    let mut found = Vec::new();
    while found.is_empty() {
        assert!(Instant::now() < deadline, "no log reported");
        found = changes(&logs).as_array().unwrap().clone();
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["data"], "0x07");
    assert_eq!(found[0]["transactionHash"], call);
    assert_eq!(changes(&logs), json!([]));
    assert_eq!(changes(&other_topic), json!([]));
    // The filter's own criteria, over history: from genesis, this log and no other.
    let history = node.rpc_ok("eth_getFilterLogs", json!([from_genesis]));
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["transactionHash"], call);

    // Only log filters have logs; uninstalled and unknown filters are not found.
    for (method, id) in [
        ("eth_getFilterLogs", blocks.as_str()),
        ("eth_getFilterChanges", "0x0123"),
    ] {
        match node.rpc(method, json!([id])) {
            Err(RpcError::Rpc { code, message, .. }) => {
                assert_eq!((code, message.as_str()), (-32000, "filter not found"))
            }
            other => panic!("{method}: {other:?}"),
        }
    }
    assert_eq!(
        node.rpc_ok("eth_uninstallFilter", json!([logs])),
        json!(true)
    );
    assert_eq!(
        node.rpc_ok("eth_uninstallFilter", json!([logs])),
        json!(false)
    );
    assert!(node.rpc("eth_getFilterChanges", json!([logs])).is_err());
}

/// What waits in the pool, by sender and nonce, in geth's shapes: a transaction behind a
/// nonce gap stays queued.
#[test]
fn txpool_content_and_inspect_show_what_waits() {
    let node = Node::start();
    let s = signer(7);
    let raw = sign_1559(
        &s,
        TxEip1559 {
            nonce: 2,
            ..wei_to_one()
        },
    );
    let hash = node.rpc_ok("eth_sendRawTransaction", json!([raw]));
    let sender = s.address().to_checksum(None);

    let content = node.rpc_ok("txpool_content", json!([]));
    let tx = &content["queued"][&sender]["2"];
    assert_eq!(tx["hash"], hash, "{content}");
    assert_eq!(tx["nonce"], "0x2");
    assert!(
        content["pending"]
            .as_object()
            .unwrap()
            .get(&sender)
            .is_none()
    );

    let from = node.rpc_ok("txpool_contentFrom", json!([s.address()]));
    assert_eq!(from["queued"]["2"]["hash"], hash, "{from}");
    assert_eq!(from["pending"], json!({}));
    let other = node.rpc_ok("txpool_contentFrom", json!([signer(8).address()]));
    assert_eq!(other, json!({"pending": {}, "queued": {}}));

    let inspect = node.rpc_ok("txpool_inspect", json!([]));
    assert_eq!(
        inspect["queued"][&sender]["2"],
        format!(
            "{}: 1 wei + 21000 gas × 10000000000 wei",
            Address::with_last_byte(1).to_checksum(None)
        ),
        "{inspect}"
    );
    let status = node.rpc_ok("txpool_status", json!([]));
    assert_eq!(status["queued"], "0x1", "{status}");
}

/// `eth_createAccessList` lists what a call touches, and its gas is what the call then
/// uses with that list; a reverting call still gets its list, with the error.
#[test]
fn access_lists_cover_what_a_call_touches() {
    let node = Node::start();
    let s = signer(9);
    let watched = Address::repeat_byte(0xd0);
    // runtime: SLOAD(5) POP; BALANCE(watched) POP; BALANCE(COINBASE) POP; CREATE of empty
    // code POP; STOP
    let mut runtime = hex::decode("60055450").unwrap();
    runtime.push(0x73);
    runtime.extend(watched.as_slice());
    runtime.extend([0x31, 0x50, 0x41, 0x31, 0x50]);
    runtime.extend(hex::decode("600060006000f05000").unwrap());
    let contract = deploy_runtime(&node, &s, 0, &runtime);
    let head = node.rpc_ok("eth_getBlockByNumber", json!(["latest", false]));
    let miner: Address = serde_json::from_value(head["miner"].clone()).unwrap();

    let result = node.rpc_ok(
        "eth_createAccessList",
        json!([{"from": s.address(), "to": contract}]),
    );
    let slot5 = format!("0x{:064x}", 5);
    let mut expected = vec![
        (
            contract,
            json!({"address": contract, "storageKeys": [slot5]}),
        ),
        (watched, json!({"address": watched, "storageKeys": []})),
        (miner, json!({"address": miner, "storageKeys": []})),
    ];
    expected.sort_by_key(|(address, _)| *address);
    let expected: Vec<Value> = expected.into_iter().map(|(_, item)| item).collect();
    // As geth: what the code looks at is listed, the fee recipient too when the code reads
    // it; the sender, the called contract's own entry and the contract the call creates
    // are not.
    assert_eq!(result["accessList"], json!(expected), "{result}");
    assert!(result.get("error").is_none(), "{result}");
    let gas_used = quantity(&result["gasUsed"]) as u64;

    // The call, sent with that list and exactly that gas, succeeds and uses that gas.
    let call = sign_1559(
        &s,
        TxEip1559 {
            chain_id: common::CHAIN_ID,
            nonce: 1,
            gas_limit: gas_used,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(contract),
            access_list: serde_json::from_value(result["accessList"].clone()).unwrap(),
            ..Default::default()
        },
    );
    let hash = node.rpc_ok("eth_sendRawTransaction", json!([call]));
    let receipt = wait_receipt(&node, hash.as_str().unwrap());
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(quantity(&receipt["gasUsed"]) as u64, gas_used);

    // A call that reverts gets its list and the reason.
    let (emitter, _) = deploy_emitter(&node, &s, 2);
    let result = node.rpc_ok(
        "eth_createAccessList",
        json!([{"from": s.address(), "to": emitter, "data": "0x"}]),
    );
    assert_eq!(result["error"], "execution reverted: nope", "{result}");
    assert_eq!(result["accessList"], json!([]), "{result}");
}

/// `eth_sendRawTransactionSync` (EIP-7966) answers with the receipt; a transaction queued
/// behind a nonce gap gets code 5, and one not included in time code 4, both with its hash.
#[test]
fn sync_send_answers_with_the_receipt() {
    let node = Node::start();
    let s = signer(1);
    let raw = sign_1559(
        &s,
        TxEip1559 {
            to: TxKind::Call(Address::repeat_byte(0x42)),
            ..wei_to_one()
        },
    );
    let receipt = node.rpc_ok("eth_sendRawTransactionSync", json!([raw]));
    let hash = alloy::primitives::keccak256(hex::decode(&raw).unwrap());
    assert_eq!(receipt["transactionHash"], json!(hash), "{receipt}");
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        node.rpc_ok("eth_getTransactionReceipt", json!([hash])),
        receipt,
        "the same receipt as polling gives"
    );

    // Behind a nonce gap: queued, not waited for.
    let gapped = sign_1559(
        &s,
        TxEip1559 {
            nonce: 5,
            ..wei_to_one()
        },
    );
    let started = Instant::now();
    match node.rpc("eth_sendRawTransactionSync", json!([gapped, 10_000])) {
        Err(RpcError::Rpc { code, data, .. }) => {
            assert_eq!(code, 5);
            let hash = alloy::primitives::keccak256(hex::decode(&gapped).unwrap());
            assert_eq!(data, Some(json!(hash)));
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // Refusals are eth_sendRawTransaction's.
    match node.rpc("eth_sendRawTransactionSync", json!([raw])) {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32000);
            assert!(message.starts_with("nonce too low"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// A node that makes no block within the wait answers `eth_sendRawTransactionSync` with
/// code 4 and the hash, after the client's timeout.
#[test]
fn sync_send_times_out_with_code_4() {
    let node = Node::builder().block_time("5s").spawn();
    let raw = sign_1559(&signer(3), wei_to_one());
    let started = Instant::now();
    match node.rpc("eth_sendRawTransactionSync", json!([raw, "0x12c"])) {
        Err(RpcError::Rpc { code, data, .. }) => {
            assert_eq!(code, 4);
            let hash = alloy::primitives::keccak256(hex::decode(&raw).unwrap());
            assert_eq!(data, Some(json!(hash)));
        }
        other => panic!("{other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

/// State reads at recent blocks (`storage.state_root_history` of them) answer as of that
/// block, calls included, with that block's context; older blocks are refused.
#[test]
fn state_at_recent_blocks() {
    let node = Node::builder()
        .config("storage", "state_root_history", "2")
        .spawn();
    let s = signer(2);
    let watched = Address::repeat_byte(0x42);
    // runtime: mstore(0, balance(watched)); mstore(32, number()); return(0, 64)
    let mut runtime = vec![0x73];
    runtime.extend(watched.as_slice());
    runtime.extend(hex::decode("315f524360205260405ff3").unwrap());
    let deploy = sign_create(&s, 0, initcode_for(&runtime));
    let deployed = node.rpc_ok("eth_sendRawTransactionSync", json!([deploy]));
    let reader = deployed["contractAddress"].clone();
    let pay = |nonce: u64| {
        let raw = sign_1559(
            &s,
            TxEip1559 {
                nonce,
                to: TxKind::Call(watched),
                ..wei_to_one()
            },
        );
        node.rpc_ok("eth_sendRawTransactionSync", json!([raw]))["blockNumber"].clone()
    };
    let first = pay(1);
    let second = pay(2);
    assert_ne!(first, second);

    let balance = |block: &Value| quantity(&node.rpc_ok("eth_getBalance", json!([watched, block])));
    assert_eq!(balance(&first), 1);
    assert_eq!(balance(&second), 2);
    assert_eq!(
        node.rpc_ok("eth_getTransactionCount", json!([s.address(), first])),
        "0x2"
    );
    // A call at the earlier block sees its state and runs in its context, by number and
    // by hash (EIP-1898).
    let call = node.rpc_ok("eth_call", json!([{"to": reader}, first]));
    let word = |i: usize| {
        U256::from_str_radix(&call.as_str().unwrap()[2 + 64 * i..2 + 64 * (i + 1)], 16).unwrap()
    };
    assert_eq!(word(0), U256::from(1));
    assert_eq!(word(1), U256::from(quantity(&first)));
    let block = node.rpc_ok("eth_getBlockByNumber", json!([first, false]));
    assert_eq!(
        node.rpc_ok(
            "eth_call",
            json!([{"to": reader}, {"blockHash": block["hash"]}])
        ),
        call
    );
    assert!(quantity(&node.rpc_ok("eth_estimateGas", json!([{"to": reader}, first]))) > 21_000);

    // Two blocks later, the deploy block's state is no longer kept.
    pay(3);
    pay(4);
    match node.rpc("eth_getBalance", json!([watched, deployed["blockNumber"]])) {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32000);
            assert!(
                message.starts_with("historical state not available"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// `debug_traceTransaction`, `debug_traceBlockByNumber`/`ByHash` and `debug_traceCall` with
/// geth's built-in tracers, on a contract that counts its calls in slot 0 and calls the
/// emitter, which logs.
#[test]
fn debug_traces_replay_transactions_and_calls() {
    let node = Node::start();
    let s = signer(1);
    let (emitter, _) = deploy_emitter(&node, &s, 0);
    // runtime: sstore(0, sload(0) + 1); mstore8(0, 0x42); call(gas, emitter, 0, 0, 1, 0, 0)
    let mut runtime = hex::decode("5f546001015f5560425f535f5f60015f5f73").unwrap();
    runtime.extend(emitter.as_slice());
    runtime.extend(hex::decode("5af15000").unwrap());
    let counter = deploy_runtime(&node, &s, 1, &runtime);
    let call_counter = |nonce| sign_call(&s, counter, nonce, &hex::decode("deadbeef00").unwrap());
    let first = node.rpc_ok("eth_sendRawTransaction", json!([call_counter(2)]));
    let second = node.rpc_ok("eth_sendRawTransaction", json!([call_counter(3)]));
    wait_receipt(&node, first.as_str().unwrap());
    let receipt = wait_receipt(&node, second.as_str().unwrap());
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let gas_used = quantity(&receipt["gasUsed"]);
    let counter_lower = format!("{counter:#x}");
    let emitter_lower = format!("{emitter:#x}");

    // callTracer: the call and the emitter's call inside it, with its log.
    let call = node.rpc_ok(
        "debug_traceTransaction",
        json!([second, {"tracer": "callTracer", "tracerConfig": {"withLog": true}}]),
    );
    assert_eq!(call["type"], "CALL", "{call}");
    assert_eq!(call["to"], counter_lower.as_str(), "{call}");
    assert_eq!(call["input"], "0xdeadbeef00", "{call}");
    assert_eq!(quantity(&call["gasUsed"]), gas_used, "{call}");
    let inner = &call["calls"][0];
    assert_eq!(inner["to"], emitter_lower.as_str(), "{call}");
    assert_eq!(inner["input"], "0x42", "{call}");
    assert_eq!(
        inner["logs"][0]["topics"][0],
        format!("0x{}", "aa".repeat(32)),
        "{call}"
    );

    // prestateTracer: the second call found the count the first one left, in whatever
    // block each landed: the replay ran the block's earlier transactions first.
    let slot0 = format!("0x{:064x}", 0);
    let pre = node.rpc_ok(
        "debug_traceTransaction",
        json!([second, {"tracer": "prestateTracer"}]),
    );
    assert_eq!(
        pre[&counter_lower]["storage"][&slot0],
        format!("0x{:064x}", 1),
        "{pre}"
    );
    let diff = node.rpc_ok(
        "debug_traceTransaction",
        json!([second, {"tracer": "prestateTracer", "tracerConfig": {"diffMode": true}}]),
    );
    assert_eq!(
        diff["post"][&counter_lower]["storage"][&slot0],
        format!("0x{:064x}", 2),
        "{diff}"
    );

    // The struct logger: every step, the receipt's gas.
    let steps = node.rpc_ok("debug_traceTransaction", json!([second]));
    assert_eq!(
        quantity(&json!(format!("{:#x}", steps["gas"].as_u64().unwrap()))),
        gas_used
    );
    assert_eq!(steps["failed"], false);
    let logs = steps["structLogs"].as_array().unwrap();
    assert_eq!(logs[0]["op"], "PUSH0", "{}", logs[0]);
    assert!(logs.iter().any(|l| l["op"] == "SSTORE"));
    assert!(logs.iter().any(|l| l["op"] == "LOG2" && l["depth"] == 2));

    // 4byteTracer counts selectors with their argument sizes.
    let four = node.rpc_ok(
        "debug_traceTransaction",
        json!([second, {"tracer": "4byteTracer"}]),
    );
    assert_eq!(four, json!({"0xdeadbeef-1": 1}));

    // A block: one result per transaction, named by hash.
    let block_number = receipt["blockNumber"].clone();
    let block_hash = receipt["blockHash"].clone();
    for (method, id) in [
        ("debug_traceBlockByNumber", block_number),
        ("debug_traceBlockByHash", block_hash),
    ] {
        let traces = node.rpc_ok(method, json!([id, {"tracer": "callTracer"}]));
        let traces = traces.as_array().unwrap();
        let count = node.rpc_ok(
            "eth_getBlockTransactionCountByHash",
            json!([receipt["blockHash"]]),
        );
        assert_eq!(traces.len() as u128, quantity(&count), "{method}");
        let ours = traces
            .iter()
            .find(|t| t["txHash"] == second)
            .unwrap_or_else(|| panic!("{method}: {traces:?}"));
        assert_eq!(quantity(&ours["result"]["gasUsed"]), gas_used, "{method}");
    }

    // A call, traced on the latest state: the count is now 2.
    let call = node.rpc_ok(
        "debug_traceCall",
        json!([{"from": s.address(), "to": counter, "data": "0xdeadbeef00"}, "latest",
               {"tracer": "prestateTracer", "tracerConfig": {"diffMode": true}}]),
    );
    assert_eq!(
        call["post"][&counter_lower]["storage"][&slot0],
        format!("0x{:064x}", 3),
        "{call}"
    );
    let call = node.rpc_ok(
        "debug_traceCall",
        json!([{"from": s.address(), "to": counter}, "latest", {"tracer": "callTracer"}]),
    );
    assert_eq!(call["calls"][0]["to"], emitter_lower.as_str(), "{call}");

    // Raw encodings: each hashes to what names it.
    let raw = node.rpc_ok("eth_getRawTransactionByHash", json!([second]));
    let raw_bytes = hex::decode(raw.as_str().unwrap()).unwrap();
    assert_eq!(
        format!("{:#x}", keccak256(&raw_bytes)),
        second.as_str().unwrap()
    );
    assert_eq!(node.rpc_ok("debug_getRawTransaction", json!([second])), raw);
    let index = receipt["transactionIndex"].clone();
    assert_eq!(
        node.rpc_ok(
            "eth_getRawTransactionByBlockHashAndIndex",
            json!([receipt["blockHash"], index])
        ),
        raw
    );
    assert!(
        node.rpc_ok(
            "eth_getRawTransactionByHash",
            json!([format!("0x{}", "11".repeat(32))])
        )
        .is_null()
    );
    let header = node.rpc_ok("debug_getRawHeader", json!([receipt["blockHash"]]));
    let header_bytes = hex::decode(header.as_str().unwrap()).unwrap();
    assert_eq!(
        format!("{:#x}", keccak256(&header_bytes)),
        receipt["blockHash"].as_str().unwrap()
    );
    let whole = node.rpc_ok("debug_getRawBlock", json!([receipt["blockHash"]]));
    let whole = whole.as_str().unwrap();
    assert!(
        whole.contains(&header.as_str().unwrap()[2..]),
        "the block holds its header"
    );
    assert!(
        whole.contains(&raw.as_str().unwrap()[2..]),
        "and its transactions"
    );
    let receipts = node.rpc_ok("debug_getRawReceipts", json!([receipt["blockHash"]]));
    assert_eq!(
        receipts.as_array().unwrap().len() as u128,
        quantity(&node.rpc_ok(
            "eth_getBlockTransactionCountByHash",
            json!([receipt["blockHash"]])
        ))
    );

    // What cannot be traced says so.
    let err = node
        .rpc(
            "debug_traceTransaction",
            json!([second, {"tracer": "{step: function() {}, result: function() {}}"}]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("JavaScript"), "{err}");
    let err = node
        .rpc(
            "debug_traceTransaction",
            json!([format!("0x{}", "11".repeat(32))]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("transaction not found"), "{err}");
    let err = node
        .rpc("debug_traceBlockByNumber", json!(["0x0"]))
        .unwrap_err();
    assert!(
        err.to_string().contains("genesis is not traceable"),
        "{err}"
    );
}

/// Tracing is served only when asked for (`--dev` asks); without it the tracing methods do
/// not exist, and the raw encodings stay.
#[test]
fn tracing_is_served_only_when_enabled() {
    let node = Node::builder().config("rpc", "tracing", "false").spawn();
    for method in ["debug_traceBlockByNumber", "debug_traceCall"] {
        let err = node.rpc(method, json!(["latest"])).unwrap_err();
        assert!(
            matches!(err, RpcError::Rpc { code: -32601, .. }),
            "{method}: {err}"
        );
    }
    let header = node.rpc_ok("debug_getRawHeader", json!(["latest"]));
    assert!(header.as_str().unwrap().starts_with("0xf9"), "{header}");
}
