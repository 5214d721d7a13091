//! End-to-end tests: the real `lanes` binary in `--dev` mode, driven by
//! Foundry's own `cast` and `forge` (installed by `make tools`), as a user
//! would. Each test starts its own node on free ports.

mod common;

use common::{
    CHAIN_ID, DEV_ACCOUNTS, DEV_BALANCE_WEI, Node, ONE_ETHER, RpcError, cast, forge_create_token,
    parse_u128,
};
use serde_json::{Value, json};

/// `cast balance <address>` in wei.
fn balance(node: &Node, address: &str) -> u128 {
    parse_u128(&cast(["balance", address, "--rpc-url", &node.rpc_url()]).ok())
}

/// `cast receipt <hash> --json` (cast waits for the receipt to appear).
fn receipt(node: &Node, hash: &str) -> Value {
    cast(["receipt", hash, "--json", "--rpc-url", &node.rpc_url()]).json()
}

fn hex_field(v: &Value, key: &str) -> u128 {
    parse_u128(
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {key:?} in {v}")),
    )
}

/// Everything the sender paid in fees for the transaction of `receipt`:
/// gasUsed × effectiveGasPrice, plus an L1 data fee if the receipt has one.
fn fee_paid(receipt: &Value) -> u128 {
    let l2 = hex_field(receipt, "gasUsed") * hex_field(receipt, "effectiveGasPrice");
    let l1 = receipt
        .get("l1Fee")
        .and_then(Value::as_str)
        .map(parse_u128)
        .unwrap_or(0);
    l2 + l1
}

/// A 20-byte address as a 32-byte topic, lower-case.
fn address_topic(address: &str) -> String {
    format!(
        "0x{:0>64}",
        address.trim_start_matches("0x").to_ascii_lowercase()
    )
}

#[test]
fn cast_sends_ether_and_balances_move_exactly() {
    let node = Node::start();
    let url = node.rpc_url();
    let (sender, recipient) = (DEV_ACCOUNTS[0], DEV_ACCOUNTS[1]);

    assert_eq!(
        cast(["chain-id", "--rpc-url", &url]).ok(),
        CHAIN_ID.to_string()
    );
    let sender_before = balance(&node, sender.address);
    let recipient_before = balance(&node, recipient.address);
    assert_eq!(
        sender_before, DEV_BALANCE_WEI,
        "dev account 0 is prefunded with 10,000 ETH"
    );
    assert_eq!(
        recipient_before, DEV_BALANCE_WEI,
        "dev account 1 is prefunded with 10,000 ETH"
    );

    let hash = cast([
        "send",
        "--async",
        "--private-key",
        sender.private_key,
        recipient.address,
        "--value",
        "1ether",
        "--rpc-url",
        &url,
    ])
    .ok();
    assert!(
        hash.starts_with("0x") && hash.len() == 66,
        "expected a tx hash, got {hash:?}"
    );

    let receipt = receipt(&node, &hash);
    assert_eq!(receipt["status"], "0x1", "receipt: {receipt}");
    assert_eq!(
        receipt["transactionHash"]
            .as_str()
            .map(str::to_ascii_lowercase),
        Some(hash.to_ascii_lowercase())
    );
    assert_eq!(
        hex_field(&receipt, "gasUsed"),
        21_000,
        "a plain transfer uses 21000 gas"
    );

    let fee = fee_paid(&receipt);
    assert!(fee > 0, "the sender pays a fee: {receipt}");
    assert_eq!(
        balance(&node, recipient.address),
        recipient_before + ONE_ETHER,
        "recipient gains exactly 1 ether"
    );
    assert_eq!(
        balance(&node, sender.address),
        sender_before - ONE_ETHER - fee,
        "sender pays 1 ether + fee"
    );

    // The transaction is visible the usual ways too.
    let tx = cast(["tx", &hash, "--json", "--rpc-url", &url]).json();
    assert_eq!(
        tx["from"].as_str().map(str::to_ascii_lowercase),
        Some(sender.address.to_ascii_lowercase())
    );
    assert_eq!(cast(["nonce", sender.address, "--rpc-url", &url]).ok(), "1");
}

#[test]
fn forge_deploys_erc20_and_cast_uses_it() {
    let node = Node::start();
    let url = node.rpc_url();
    let (deployer, holder) = (DEV_ACCOUNTS[0], DEV_ACCOUNTS[1]);
    let supply = "1000000000000000000000000"; // 1,000,000 tokens of 18 decimals

    let created = forge_create_token(&node, &deployer, supply);
    let token = created["deployedTo"]
        .as_str()
        .unwrap_or_else(|| panic!("no deployedTo in {created}"))
        .to_owned();
    assert_eq!(
        created["deployer"].as_str().map(str::to_ascii_lowercase),
        Some(deployer.address.to_ascii_lowercase())
    );
    let deploy_receipt = receipt(
        &node,
        created["transactionHash"]
            .as_str()
            .expect("transactionHash"),
    );
    assert_eq!(
        deploy_receipt["status"], "0x1",
        "deploy receipt: {deploy_receipt}"
    );
    assert_eq!(
        deploy_receipt["contractAddress"]
            .as_str()
            .map(str::to_ascii_lowercase),
        Some(token.to_ascii_lowercase()),
        "receipt names the new contract"
    );
    let code = cast(["code", &token, "--rpc-url", &url]).ok();
    assert!(code.len() > 2, "no code at {token}: {code:?}");

    assert_eq!(
        cast(["call", &token, "totalSupply()(uint256)", "--rpc-url", &url])
            .ok()
            .split_whitespace()
            .next(),
        Some(supply)
    );
    assert_eq!(
        cast(["call", &token, "symbol()(string)", "--rpc-url", &url])
            .ok()
            .trim_matches('"'),
        "LNS"
    );

    let sent = cast([
        "send",
        "--json",
        &token,
        "transfer(address,uint256)",
        holder.address,
        "1000",
        "--private-key",
        deployer.private_key,
        "--rpc-url",
        &url,
    ])
    .json();
    assert_eq!(sent["status"], "0x1", "transfer receipt: {sent}");
    let transfer_hash = sent["transactionHash"]
        .as_str()
        .expect("transactionHash")
        .to_ascii_lowercase();

    let held = cast([
        "call",
        &token,
        "balanceOf(address)(uint256)",
        holder.address,
        "--rpc-url",
        &url,
    ])
    .ok();
    assert_eq!(parse_u128(&held), 1000);
    let left = cast([
        "call",
        &token,
        "balanceOf(address)(uint256)",
        deployer.address,
        "--rpc-url",
        &url,
    ])
    .ok();
    assert_eq!(parse_u128(&left), parse_u128(supply) - 1000);

    let logs = cast([
        "logs",
        "--json",
        "--from-block",
        "0",
        "--address",
        &token,
        "Transfer(address,address,uint256)",
        "--rpc-url",
        &url,
    ])
    .json();
    let logs = logs
        .as_array()
        .unwrap_or_else(|| panic!("logs is not an array: {logs}"));
    assert_eq!(logs.len(), 2, "the mint and the transfer: {logs:#?}");
    let transfer = logs
        .iter()
        .find(|l| {
            l["transactionHash"]
                .as_str()
                .map(str::to_ascii_lowercase)
                .as_deref()
                == Some(&transfer_hash)
        })
        .unwrap_or_else(|| panic!("no log of the transfer tx {transfer_hash}: {logs:#?}"));
    let topics: Vec<String> = transfer["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t.as_str().expect("topic").to_ascii_lowercase())
        .collect();
    let transfer_sig = cast(["sig-event", "Transfer(address,address,uint256)"])
        .ok()
        .to_ascii_lowercase();
    assert_eq!(
        topics,
        vec![
            transfer_sig,
            address_topic(deployer.address),
            address_topic(holder.address)
        ]
    );
    assert_eq!(parse_u128(transfer["data"].as_str().expect("data")), 1000);
    assert_eq!(
        transfer["address"].as_str().map(str::to_ascii_lowercase),
        Some(token.to_ascii_lowercase())
    );
}

#[test]
fn bad_input_gets_json_rpc_errors_and_the_node_keeps_running() {
    let mut node = Node::start();
    let url = node.rpc_url();
    let (sender, recipient) = (DEV_ACCOUNTS[2], DEV_ACCOUNTS[3]);

    // First transaction (nonce 0) mined; `cast send` without --async waits for the receipt.
    let first = cast([
        "send",
        "--json",
        "--private-key",
        sender.private_key,
        recipient.address,
        "--value",
        "1gwei",
        "--rpc-url",
        &url,
    ])
    .json();
    assert_eq!(first["status"], "0x1", "first receipt: {first}");

    // Replaying nonce 0 is rejected by the node with a JSON-RPC error that cast reports.
    let stderr = cast([
        "send",
        "--nonce",
        "0",
        "--private-key",
        sender.private_key,
        recipient.address,
        "--value",
        "1gwei",
        "--rpc-url",
        &url,
    ])
    .err();
    assert!(
        stderr.to_ascii_lowercase().contains("nonce too low"),
        "cast stderr: {stderr}"
    );

    // An unknown method: the standard "method not found" error.
    let stderr = cast(["rpc", "lanes_noSuchMethod", "--rpc-url", &url]).err();
    assert!(stderr.contains("-32601"), "cast stderr: {stderr}");
    match node.rpc("lanes_noSuchMethod", json!([])) {
        Err(RpcError::Rpc { code, .. }) => assert_eq!(code, -32601),
        other => panic!("expected a method-not-found error, got {other:?}"),
    }

    // Malformed parameters and garbage transactions: JSON-RPC errors, not dropped connections.
    for (method, params) in [
        ("eth_getBalance", json!(["0xnot-an-address", "latest"])),
        ("eth_getBalance", json!([])),
        ("eth_sendRawTransaction", json!(["0xdeadbeef"])),
        ("eth_getBlockByNumber", json!(["0x1", "not-a-bool"])),
    ] {
        match node.rpc(method, params.clone()) {
            Err(RpcError::Rpc { .. }) => {}
            other => panic!("{method}({params}) should be a JSON-RPC error, got {other:?}"),
        }
    }
    let stderr = cast(["publish", "0xdeadbeef", "--rpc-url", &url]).err();
    assert!(stderr.contains("error"), "cast stderr: {stderr}");

    // Still alive and still producing correct answers.
    assert!(node.is_running(), "node died:\n{}", node.log_tail(100));
    assert_eq!(
        cast(["chain-id", "--rpc-url", &url]).ok(),
        CHAIN_ID.to_string()
    );
    assert_eq!(cast(["nonce", sender.address, "--rpc-url", &url]).ok(), "1");
}
