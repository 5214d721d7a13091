//! A withdrawal end to end on a `--dev` node and its anvil L1: ETH deposited on L1 reaches a
//! fresh L2 account, which withdraws part of it through `L2WithdrawalQueue` (installed in the
//! L2 genesis). Once the batch holding that block is posted and final (12 s on the dev
//! deployment), `lanes l1 withdrawal --finalize` proves it with `eth_getProof` against the
//! batch's state root and the portal pays it: the L1 balance rises once, and replaying the
//! same `finalizeWithdrawal` fails with `WithdrawalAlreadyFinalized`. `lanes derive` then
//! rebuilds the chain from L1, checking the deposit against the portal's queue.

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolError;
use common::{CmdOutput, DEV_ACCOUNTS, Node, ONE_ETHER, cast, derive, dev_l1_url, lanes_bin, run};
use serde_json::{Value, json};

const QUEUE: &str = "0x4200000000000000000000000000000000000016";

fn balance(rpc: &str, who: Address) -> u128 {
    cast(["balance", "--rpc-url", rpc, &who.to_string()])
        .ok()
        .parse()
        .unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn withdrawal_cmd(
    node: &Node,
    l1: &str,
    deployment: &Value,
    tx: &str,
    extra: &[&str],
) -> CmdOutput {
    let mut cmd = std::process::Command::new(lanes_bin());
    cmd.args([
        "l1",
        "withdrawal",
        "--tx",
        tx,
        "--l2-rpc",
        &node.rpc_url(),
        "--l1-rpc",
        l1,
        "--rollup",
        deployment["rollup"].as_str().unwrap(),
        "--portal",
        deployment["portal"].as_str().unwrap(),
    ])
    .args(extra)
    // The account paying the L1 gas of `--finalize`; anyone may.
    .env("LANES_L1_KEY", DEV_ACCOUNTS[3].private_key)
    .env("RUST_LOG", "warn");
    run(&mut cmd, Duration::from_secs(180))
}

#[test]
fn withdrawal_is_proven_against_a_final_root_and_paid_once() {
    let node = Node::builder().fast_batching().spawn();
    let l1 = dev_l1_url(&node);
    let l2 = node.rpc_url();
    let deployment: Value = serde_json::from_str(
        &std::fs::read_to_string(node.datadir().join("l1/deployment.json")).unwrap(),
    )
    .unwrap();
    let portal = deployment["portal"].as_str().unwrap().to_owned();

    // The queue is in the genesis with its runtime code.
    let code = node.rpc_ok("eth_getCode", json!([QUEUE, "0x0"]));
    assert_eq!(
        code.as_str().unwrap(),
        alloy::primitives::hex::encode_prefixed(
            &lanes_l1_bridge::bindings::L2WithdrawalQueue::DEPLOYED_BYTECODE
        )
    );

    // A fresh L2 account, funded only by a deposit, so the portal holds what it pays out.
    let user = PrivateKeySigner::random();
    let user_key = alloy::primitives::hex::encode_prefixed(user.to_bytes());
    let depositor = DEV_ACCOUNTS[2];
    let sent = cast([
        "send",
        "--rpc-url",
        &l1,
        "--private-key",
        depositor.private_key,
        "--value",
        "2ether",
        &portal,
        "depositETH(address,uint64)",
        &user.address().to_string(),
        "100000",
    ]);
    assert!(sent.success(), "{}", sent.streams());
    wait_until("the deposit reaches L2", Duration::from_secs(60), || {
        balance(&l2, user.address()) == 2 * ONE_ETHER
    });

    // Withdraw 1 ETH to an L1 account that has never held any.
    let recipient = PrivateKeySigner::random().address();
    let sent = cast([
        "send",
        "--rpc-url",
        &l2,
        "--private-key",
        &user_key,
        "--value",
        "1ether",
        QUEUE,
        "withdraw(address)",
        &recipient.to_string(),
        "--json",
    ]);
    assert!(sent.success(), "{}", sent.streams());
    let receipt = sent.json();
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let tx = receipt["transactionHash"].as_str().unwrap().to_owned();
    let withdrawn_in = common::parse_u128(receipt["blockNumber"].as_str().unwrap()) as u64;
    // The ETH left the user and sits, out of circulation, in the queue.
    assert!(balance(&l2, user.address()) < ONE_ETHER);
    assert_eq!(
        balance(&l2, QUEUE.parse().unwrap()),
        ONE_ETHER,
        "the queue holds what was withdrawn"
    );

    // Straight away it is not provable yet, and the command says why.
    let early = withdrawal_cmd(&node, &l1, &deployment, &tx, &[]);
    let early: Value = serde_json::from_str(early.ok().lines().next().unwrap()).unwrap();
    assert_eq!(early["recipient"], json!(recipient));
    assert_eq!(early["amount"], json!(U256::from(ONE_ETHER)));
    assert!(
        early["status"] == "not posted" || early["status"] == "not final",
        "{early}"
    );
    // Finalizing without waiting fails and pays nothing.
    let refused = withdrawal_cmd(&node, &l1, &deployment, &tx, &["--finalize"]);
    assert!(!refused.success());
    assert_eq!(balance(&l1, recipient), 0);

    // Wait for the batch to become final, prove, pay.
    let paid = withdrawal_cmd(
        &node,
        &l1,
        &deployment,
        &tx,
        &["--finalize", "--wait-secs", "120"],
    );
    let paid = paid.ok();
    let out: Value = serde_json::from_str(paid.lines().next().unwrap()).unwrap();
    assert_eq!(out["status"], "finalized", "{out}");
    assert_eq!(balance(&l1, recipient), ONE_ETHER);
    let l1_tx = out["l1Tx"].as_str().unwrap().to_owned();

    // A replay of the same proof is refused on L1 and pays nothing more.
    let input = cast(["tx", "--rpc-url", &l1, &l1_tx, "input"]).ok();
    let replay = cast([
        "send",
        "--rpc-url",
        &l1,
        "--private-key",
        DEV_ACCOUNTS[4].private_key,
        &portal,
        input.trim(),
    ]);
    assert!(!replay.success(), "a replayed withdrawal was accepted");
    let selector = alloy::primitives::hex::encode(
        <lanes_l1_bridge::bindings::LanesPortal::WithdrawalAlreadyFinalized as SolError>::SELECTOR,
    );
    assert!(
        replay.streams().contains(&selector),
        "not refused as WithdrawalAlreadyFinalized: {}",
        replay.streams()
    );
    assert_eq!(balance(&l1, recipient), ONE_ETHER);
    // The command reports it as paid rather than paying again.
    let again = withdrawal_cmd(&node, &l1, &deployment, &tx, &["--finalize"]);
    let again: Value = serde_json::from_str(again.ok().lines().next().unwrap()).unwrap();
    assert_eq!(again["status"], "finalized");
    assert_eq!(balance(&l1, recipient), ONE_ETHER);

    // A verifier rebuilding L2 from L1 alone checks the deposit against the portal's queue
    // and reaches the same posted state.
    let posted = |n: u64| {
        node.rpc_ok("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))["hash"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (head, hash, _) = derive(&l1, deployment["rollup"].as_str().unwrap(), node.dir());
    assert!(
        head >= withdrawn_in,
        "derived head {head} is before the withdrawal"
    );
    assert_eq!(hash, posted(head));
}
