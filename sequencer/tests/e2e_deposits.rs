//! End-to-end deposits on a real anvil: `cast send` to the portal's `depositETH` on L1, and
//! after the confirmation depth the L2 balance rises, through a type 0x7e transaction that
//! `eth_getTransactionByHash`, `eth_getBlockByNumber` and `eth_getTransactionReceipt` serve;
//! a deposit an L1 reorg removes before its confirmation depth is never credited; a forced
//! transaction spends its sender's L2 balance.

mod common;

use alloy::primitives::{Address, B256};
use alloy::sol_types::SolError;
use common::{DEV_BALANCE_WEI, Node, ONE_ETHER, cast, tools_bin};
use lanes_l1_bridge::{DeployParams, DevL1, DevL1Options, deploy, dev_account};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn hex_u128(v: &Value) -> u128 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    u128::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

struct Devnet {
    _runtime: tokio::runtime::Runtime,
    _l1: DevL1,
    url: String,
    portal: Address,
    rollup: Address,
    node: Node,
}

/// An anvil L1 mining a block a second with the contracts deployed (queued L1 messages due
/// after `force_inclusion_delay`), and a node following it at confirmation depth 2.
fn devnet(force_inclusion_delay: Duration) -> Devnet {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (l1, url, deployed) = runtime.block_on(async {
        let l1 = DevL1::start(DevL1Options {
            anvil_path: Some(tools_bin().join("anvil")),
            block_time: Some(Duration::from_secs(1)),
            ..Default::default()
        })
        .await
        .expect("anvil starts");
        let params = DeployParams {
            owner: dev_account(0).address(),
            sequencer: dev_account(1).address(),
            genesis_state_root: B256::repeat_byte(1),
            finalization_period: Duration::from_secs(60),
            force_inclusion_delay,
        };
        let deployed = deploy(l1.url(), l1.deployer(), &params)
            .await
            .expect("contracts deploy");
        let url = l1.url().to_owned();
        (l1, url, deployed)
    });
    let node = Node::builder()
        .block_time("100ms")
        .config_str("l1", "rpc_url", &url)
        .config_str("l1", "rollup_address", &deployed.rollup.to_string())
        .config_str("l1", "portal_address", &deployed.portal.to_string())
        .config("l1", "confirmations", "2")
        .config_str("l1", "poll_interval", "200ms")
        .spawn();
    Devnet {
        _runtime: runtime,
        _l1: l1,
        url,
        portal: deployed.portal,
        rollup: deployed.rollup,
        node,
    }
}

/// Waits until L1 has mined `count` more blocks.
fn wait_l1_blocks(url: &str, count: u128) {
    let head = || -> u128 {
        cast(["block-number", "--rpc-url", url])
            .ok()
            .parse()
            .unwrap()
    };
    let start = head();
    while head() < start + count {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `depositETH(recipient, 100000)` with `ether` attached, from dev account 2; the L1 receipt.
fn deposit_eth(url: &str, portal: Address, recipient: Address, ether: &str) -> Value {
    let depositor = dev_account(2);
    let sent = cast([
        "send",
        "--rpc-url",
        url,
        "--private-key",
        &format!("0x{}", alloy::primitives::hex::encode(depositor.to_bytes())),
        "--value",
        ether,
        &portal.to_string(),
        "depositETH(address,uint64)",
        &recipient.to_string(),
        "100000",
        "--json",
    ]);
    assert!(sent.status.success(), "{}", sent.stderr);
    sent.json()
}

#[test]
fn deposit_on_l1_credits_l2_after_confirmations() {
    // Bound whole: anvil and the runtime must live as long as the test.
    let mut net = devnet(Duration::from_secs(600));
    let (url, portal) = (net.url.clone(), net.portal);
    let node = &mut net.node;
    let depositor = dev_account(2);
    let recipient = Address::repeat_byte(0x5e);
    let l1_block = hex_u128(&deposit_eth(&url, portal, recipient, "1ether")["blockNumber"]);

    let balance = |who: Address| hex_u128(&node.rpc_ok("eth_getBalance", json!([who, "latest"])));
    // One L1 block a second: two more are at least a second away.
    assert_eq!(
        balance(recipient),
        0,
        "credited before the confirmation depth"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(recipient) == 0 {
        assert!(Instant::now() < deadline, "the deposit never reached L2");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(balance(recipient), ONE_ETHER);
    let l1_head: u128 = cast(["block-number", "--rpc-url", &url])
        .ok()
        .parse()
        .unwrap();
    assert!(
        l1_head >= l1_block + 2,
        "credited at L1 head {l1_head}, deposit in {l1_block}"
    );
    // The mint went to the L1 sender (also funded in the dev genesis), who sent it on
    // without paying a fee.
    assert_eq!(balance(depositor.address()), DEV_BALANCE_WEI);

    // Find the deposit in the chain: the first transaction of its block.
    let head = hex_u128(&node.rpc_ok("eth_blockNumber", json!([])));
    let (block, tx) = (1..=head)
        .find_map(|n| {
            let block = node.rpc_ok("eth_getBlockByNumber", json!([format!("{n:#x}"), true]));
            let first = block["transactions"].get(0)?.clone();
            (first["type"] == "0x7e").then_some((block, first))
        })
        .expect("a block holding the deposit");
    assert_eq!(block["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(tx["from"], json!(depositor.address()));
    assert_eq!(tx["to"], json!(recipient));
    assert_eq!(hex_u128(&tx["mint"]), ONE_ETHER);
    assert_eq!(hex_u128(&tx["value"]), ONE_ETHER);
    assert_eq!(hex_u128(&tx["gas"]), 100_000);
    assert!(tx["sourceHash"].is_string());
    // The depositor's first L2 transaction.
    assert_eq!(tx["nonce"], "0x0");

    let by_hash = node.rpc_ok("eth_getTransactionByHash", json!([tx["hash"]]));
    assert_eq!(by_hash, tx);
    let receipt = node.rpc_ok("eth_getTransactionReceipt", json!([tx["hash"]]));
    assert_eq!(receipt["type"], "0x7e");
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(hex_u128(&receipt["gasUsed"]), 21_000);
    assert_eq!(receipt["blockHash"], block["hash"]);
    assert_eq!(receipt["depositNonce"], "0x0");
    let (status, metrics) = node.metrics().expect("metrics answer");
    assert_eq!(status, 200);
    for line in [
        "lanes_l1_messages_queued_total 1",
        "lanes_l1_messages_included_total 1",
        "lanes_l1_messages_awaiting_inclusion 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }

    // A restart (SIGKILL) does not repeat it: the watcher resumes from its cursor in RocksDB,
    // past the deposit, and anything delivered again is below the L2 counter. The cursor is
    // written at the watcher's next save (every confirmed L1 block) after the deposit's block
    // was committed: let two more L1 blocks come first.
    wait_l1_blocks(&url, 2);
    node.restart();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            hex_u128(&node.rpc_ok("eth_getBalance", json!([recipient, "latest"]))),
            ONE_ETHER
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let starts: Vec<(u128, u128)> = node
        .log()
        .lines()
        .filter(|l| l.contains("L1 watcher started"))
        .map(|l| {
            (
                log_field(l, "next_block"),
                log_field(l, "next_deposit_nonce"),
            )
        })
        .collect();
    assert_eq!(starts.len(), 2, "one watcher start per node start");
    assert_eq!(starts[0].1, 0);
    assert_eq!(starts[1].1, 1, "resumed after the executed deposit");
    assert!(
        starts[1].0 > l1_block,
        "resumed from L1 block {} although the deposit was in {l1_block}",
        starts[1].0
    );
}

/// The number after `name=` in a log line (plain or ANSI-coloured).
fn log_field(line: &str, name: &str) -> u128 {
    let line = common::plain(line);
    let name = format!("{name}=");
    let at = line
        .find(&name)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn a_deposit_removed_by_an_l1_reorg_is_never_credited() {
    let net = devnet(Duration::from_secs(600));
    let (url, portal, node) = (net.url.clone(), net.portal, &net.node);
    let recipient = Address::repeat_byte(0x5f);
    let balance = || hex_u128(&node.rpc_ok("eth_getBalance", json!([recipient, "latest"])));

    // The deposit lands in an L1 block that the L1 then drops (back to the snapshot) before
    // it is two blocks deep; the blocks mined since are a different chain.
    let snapshot = cast(["rpc", "evm_snapshot", "--rpc-url", &url]).json();
    deposit_eth(&url, portal, recipient, "1ether");
    let reverted = cast([
        "rpc",
        "evm_revert",
        snapshot.as_str().unwrap(),
        "--rpc-url",
        &url,
    ]);
    assert_eq!(reverted.ok(), "true");

    // Well past the confirmation depth of the dropped block: still nothing on L2.
    wait_l1_blocks(&url, 4);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(balance(), 0, "a reorged-out deposit was credited");

    // The queue position the dropped deposit had goes to the next one, credited once.
    deposit_eth(&url, portal, recipient, "0.5ether");
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance() == 0 {
        assert!(
            Instant::now() < deadline,
            "the second deposit never reached L2"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(balance(), ONE_ETHER / 2);
    let (_, metrics) = node.metrics().expect("metrics answer");
    assert!(
        metrics
            .lines()
            .any(|l| l == "lanes_l1_messages_included_total 1"),
        "{metrics}"
    );
}

/// A forced transaction (`enqueueTransaction`, nothing minted) spends the L1 caller's L2
/// balance like a transaction it signed on L2, at its L2 nonce, without a fee. It never goes
/// through the mempool, so a sequencer whose mempool ignores the sender still executes it;
/// once it is due, L1 refuses a batch that leaves it out and takes one that includes it.
#[test]
fn a_forced_transaction_spends_the_senders_l2_balance() {
    let net = devnet(Duration::from_secs(5));
    let (url, portal, node) = (net.url.clone(), net.portal, &net.node);
    let sender = dev_account(3);
    let recipient = Address::repeat_byte(0x60);
    let balance = |who: Address| hex_u128(&node.rpc_ok("eth_getBalance", json!([who, "latest"])));
    let sent = cast([
        "send",
        "--rpc-url",
        &url,
        "--private-key",
        &format!("0x{}", alloy::primitives::hex::encode(sender.to_bytes())),
        &portal.to_string(),
        "enqueueTransaction(address,uint256,uint64,bytes)",
        &recipient.to_string(),
        "2000000000000000000",
        "100000",
        "0x",
        "--json",
    ]);
    assert!(sent.status.success(), "{}", sent.stderr);
    let enqueued = sent.json();
    let enqueued_at = hex_u128(
        &cast([
            "block",
            "--rpc-url",
            &url,
            "--json",
            &hex_u128(&enqueued["blockNumber"]).to_string(),
        ])
        .json()["timestamp"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(recipient) == 0 {
        assert!(
            Instant::now() < deadline,
            "the forced transaction never reached L2"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The mempool never saw it.
    assert_eq!(
        node.rpc_ok("txpool_status", json!([])),
        json!({"pending": "0x0", "queued": "0x0"})
    );
    assert_eq!(balance(recipient), 2 * ONE_ETHER);
    assert_eq!(balance(sender.address()), DEV_BALANCE_WEI - 2 * ONE_ETHER);
    // It used the sender's L2 nonce.
    assert_eq!(
        node.rpc_ok(
            "eth_getTransactionCount",
            json!([sender.address(), "latest"])
        ),
        "0x1"
    );

    // Once the message is due, the rollup refuses the first batch if it leaves the message
    // out and accepts it with the message in (eth_call as the sequencer on the live L1).
    let head = hex_u128(&node.rpc_ok("eth_blockNumber", json!([])));
    let root =
        node.rpc_ok("eth_getBlockByNumber", json!([format!("{head:#x}"), false]))["stateRoot"]
            .as_str()
            .unwrap()
            .to_owned();
    while hex_u128(&cast(["block", "--rpc-url", &url, "--json", "latest"]).json()["timestamp"])
        < enqueued_at + 5
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let submit = |included: u32| {
        cast([
            "call",
            "--rpc-url",
            &url,
            "--from",
            &dev_account(1).address().to_string(),
            &net.rollup.to_string(),
            "submitBatch((uint256,uint64,uint64,bytes32,bytes32,uint256),bytes)",
            &format!("(1,1,{head},{},{root},{included})", B256::repeat_byte(1)),
            "0x01",
        ])
    };
    let skipped = submit(0);
    let selector = alloy::primitives::hex::encode(
        <lanes_l1_bridge::bindings::LanesRollup::ForcedInclusionMissed as SolError>::SELECTOR,
    );
    assert!(
        !skipped.status.success() && skipped.streams().contains(&selector),
        "a batch skipping a due forced transaction was not refused: {}",
        skipped.streams()
    );
    let included = submit(1);
    assert!(included.status.success(), "{}", included.streams());
}
