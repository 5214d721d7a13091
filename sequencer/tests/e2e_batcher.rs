//! End to end: the node posts its blocks to a real anvil L1 and `lanes derive` rebuilds the
//! same chain from L1 alone.
//!
//! * `dev_node_posts_batches_that_derive_to_the_same_chain`: `lanes node --dev` starts its own
//!   anvil and deploys the contracts; transfers for a few dozen blocks, a flush through the JWT
//!   admin endpoint, then `lanes derive` into a fresh data directory gives the same head hash
//!   and state root. Also checks `safe`/`finalized` and `lanes_syncStatus`, the admin pause,
//!   and that anvil goes away with the node.
//! * `kill_9_while_a_batch_is_in_flight_neither_skips_nor_duplicates`: an external anvil,
//!   contracts from `lanes l1 deploy --write-config`; the node is SIGKILLed while a batch
//!   transaction waits in anvil's mempool, restarted on the same data directory: the rollup's
//!   `BatchSubmitted` events are consecutive and contiguous, and derivation still matches.
//! * `l1_outage_keeps_blocks_coming_and_the_batcher_catches_up`: anvil stopped for a while, L2
//!   keeps producing, the batcher reports the error, then catches up without gaps.
//! * `backlog_over_its_limit_shrinks_blocks`: backpressure caps blocks at a quarter of
//!   `sequencer.max_block_txs` while the unposted backlog is over its limit.
//! * `without_anvil_the_dev_node_runs_l2_only_and_says_so`.
//!
//! Needs `make tools` (anvil, cast).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::eip2718::Encodable2718,
    network::TxSignerSync,
    primitives::{Address, B256, Bytes, TxKind, U256},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use common::{
    DEV_ACCOUNTS, Node, derive, dev_l1_url, free_port, lanes_bin, parse_u128, plain, rpc_call, run,
    tool,
};
use lanes_l1_bridge::bindings::LanesRollup;
use serde_json::{Value, json};

const GWEI: u128 = 1_000_000_000;

/// Short batches, calldata (fast to post and derive in a debug build), one L1 confirmation.
fn signer(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

fn transfer(signer: &PrivateKeySigner, nonce: u64, to: Address) -> String {
    signed(
        signer,
        nonce,
        TxKind::Call(to),
        U256::from(1_000 + nonce),
        Bytes::new(),
        21_000,
    )
}

fn signed(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> String {
    let mut tx = TxEip1559 {
        chain_id: common::CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: 1_000_000,
        to,
        value,
        input,
        ..Default::default()
    };
    let signature = signer.sign_transaction_sync(&mut tx).expect("sign");
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    format!("0x{}", hex::encode(envelope.encoded_2718()))
}

/// Sends `count` transfers from dev accounts 2..6 (nonces from `first_nonce`), round robin.
fn send_transfers(node: &Node, first_nonce: u64, count: u64) {
    let senders: Vec<PrivateKeySigner> = (2..6).map(signer).collect();
    for i in 0..count {
        let from = &senders[(i % 4) as usize];
        let nonce = first_nonce + i / 4;
        let to = Address::with_last_byte((i % 200) as u8 + 1);
        node.rpc_ok("eth_sendRawTransaction", json!([transfer(from, nonce, to)]));
    }
}

/// Deploys (from dev account 6) a contract whose code is `sstore(caller(), calldataload(0))`
/// and has dev account 7 call it `count` times: storage writes for derivation to reproduce.
fn storage_writes(node: &Node, count: u64) {
    // Runtime: PUSH1 0 CALLDATALOAD CALLER SSTORE STOP; init code copies it and returns it.
    let init: Bytes = "0x6006600c60003960066000f3600035335500".parse().unwrap();
    let deployer = signer(6);
    let contract = deployer.address().create(0);
    node.rpc_ok(
        "eth_sendRawTransaction",
        json!([signed(
            &deployer,
            0,
            TxKind::Create,
            U256::ZERO,
            init,
            200_000
        )]),
    );
    let caller = signer(7);
    for nonce in 0..count {
        let word = B256::with_last_byte(nonce as u8 + 1);
        let raw = signed(
            &caller,
            nonce,
            TxKind::Call(contract),
            U256::ZERO,
            Bytes::from(word.0),
            100_000,
        );
        node.rpc_ok("eth_sendRawTransaction", json!([raw]));
    }
    wait_until(
        "the contract holds the last write",
        Duration::from_secs(20),
        || {
            let slot = format!(
                "0x{}",
                hex::encode(B256::left_padding_from(caller.address().as_slice()))
            );
            node.rpc(
                "eth_getStorageAt",
                json!([format!("{contract}"), slot, "latest"]),
            )
            .is_ok_and(|v| v == json!(format!("{}", B256::with_last_byte(count as u8))))
        },
    );
}

/// `POST /` to the admin endpoint with a fresh HS256 token (or `token`); status and body.
fn admin_http(port: u16, token: Option<&str>, method: &str) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("admin response");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn admin_secret(node: &Node) -> [u8; 32] {
    lanes_sequencer::admin::load_or_create_secret(&node.datadir().join("admin-jwt.hex"))
        .expect("admin secret")
}

/// An authenticated admin call; the JSON-RPC result.
#[track_caller]
fn admin(node: &Node, port: u16, method: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = lanes_sequencer::admin::make_token(&admin_secret(node), now);
    let (status, body) = admin_http(port, Some(&token), method);
    assert_eq!(status, 200, "{method}: {body}\n{}", node.log_tail(40));
    body.get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {body}\n{}", node.log_tail(40)))
}

fn admin_port(node: &Node) -> u16 {
    let text = std::fs::read_to_string(node.config_path()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("admin_port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("the test config names batcher.admin_port")
}

fn block(node: &Node, tag: &str) -> Value {
    node.rpc_ok("eth_getBlockByNumber", json!([tag, false]))
}

fn number_of(block: &Value) -> u64 {
    parse_u128(block["number"].as_str().unwrap()) as u64
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// Anvil processes whose arguments mention `needle` (e.g. a state file in a data directory).
fn anvil_pids(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("anvil"))
            && args.iter().any(|a| a.contains(needle))
        {
            pids.push(pid);
        }
    }
    pids
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_node_posts_batches_that_derive_to_the_same_chain() {
    let node = Node::builder().fast_batching().spawn();
    let admin_port = admin_port(&node);
    let l1_url = dev_l1_url(&node);
    let deployment: Value = serde_json::from_str(
        &std::fs::read_to_string(node.datadir().join("l1/deployment.json")).unwrap(),
    )
    .unwrap();
    let rollup = deployment["rollup"].as_str().unwrap().to_owned();

    // The admin endpoint wants a valid token.
    let (status, _) = admin_http(admin_port, None, "admin_flushBatcher");
    assert_eq!(status, 401);
    let stale = lanes_sequencer::admin::make_token(&admin_secret(&node), 1_000_000);
    assert_eq!(
        admin_http(admin_port, Some(&stale), "admin_flushBatcher").0,
        401
    );

    // 32 transfers and 9 contract transactions (storage writes) over a few dozen blocks.
    for round in 0..4 {
        send_transfers(&node, round * 2, 8);
        thread::sleep(Duration::from_millis(600));
    }
    storage_writes(&node, 8);
    let target = node.block_number().max(30);
    node.wait_for_block(target, Duration::from_secs(30));

    // Pause: the head stops and admin_stopSequencer names it.
    let paused_hash = admin(&node, admin_port, "admin_stopSequencer");
    let head = block(&node, "latest");
    assert_eq!(
        paused_hash, head["hash"],
        "stopSequencer returns the head hash"
    );
    thread::sleep(Duration::from_millis(800));
    assert_eq!(block(&node, "latest")["hash"], head["hash"], "paused");
    let posted = parse_u128(
        admin(&node, admin_port, "admin_flushBatcher")
            .as_str()
            .unwrap(),
    ) as u64;
    assert_eq!(posted, number_of(&head), "flush posts up to the head");

    // safe follows L1 confirmations; syncStatus names the L1 blocks behind it.
    wait_until(
        "safe reaches the flushed head",
        Duration::from_secs(20),
        || number_of(&block(&node, "safe")) == posted,
    );
    let status = node.rpc_ok("lanes_syncStatus", json!([]));
    assert_eq!(status["unsafeL2"]["number"], json!(posted));
    assert_eq!(status["safeL2"]["hash"], head["hash"]);
    assert!(status["headL1"].as_u64().unwrap() >= status["safeL1"].as_u64().unwrap());
    assert!(status["safeL1"].as_u64().unwrap() > 0);
    assert_eq!(status["batcher"]["unpostedBlocks"], json!(0));
    assert!(number_of(&block(&node, "finalized")) <= posted);
    // State at a tag is that block's state (or refused if the block is out of the kept
    // window), never the head's. Dev account 7 made the last transactions before the pause.
    let sender = DEV_ACCOUNTS[7].address;
    for tag in ["safe", "finalized"] {
        let number = number_of(&block(&node, tag));
        let by_tag = node.rpc("eth_getBalance", json!([sender, tag]));
        let by_number = node.rpc("eth_getBalance", json!([sender, format!("{number:#x}")]));
        assert_eq!(by_tag, by_number, "{tag} (block {number} of {posted})");
    }

    // Rebuild from L1 alone.
    let (derived_head, derived_hash, derived_root) = derive(&l1_url, &rollup, node.dir());
    assert_eq!(derived_head, posted);
    assert_eq!(json!(derived_hash), head["hash"], "same head block hash");
    assert_eq!(json!(derived_root), head["stateRoot"], "same state root");

    admin(&node, admin_port, "admin_startSequencer");
    node.wait_for_block(posted + 2, Duration::from_secs(10));

    // The dev L1 goes away with the node, even when the node is SIGKILLed.
    let anvils = anvil_pids(&node.datadir().display().to_string());
    assert_eq!(anvils.len(), 1, "one anvil for the node");
    let mut node = node;
    let index_at_kill = node.rpc_ok("lanes_syncStatus", json!([]))["batcher"]["lastBatchIndex"]
        .as_u64()
        .unwrap();
    node.kill();
    wait_until(
        "anvil exits after the node",
        Duration::from_secs(15),
        || !pid_alive(anvils[0]),
    );

    // Restarted on the same data directory, the dev node reloads its L1 (anvil dumped its
    // state on the way out), reuses the deployment and goes on from the last batch.
    node.restart();
    assert!(
        plain(&node.log()).contains("reused=true"),
        "{}",
        node.log_tail(30)
    );
    let head = node.block_number();
    wait_until(
        "batches resume after the restart",
        Duration::from_secs(30),
        || {
            let status = node.rpc_ok("lanes_syncStatus", json!([]));
            status["batcher"]["lastBatchIndex"].as_u64().unwrap() > index_at_kill
                && status["batcher"]["postedL2"].as_u64().unwrap() >= head
        },
    );
    // A graceful stop takes anvil down too.
    let anvils = anvil_pids(&node.datadir().display().to_string());
    assert_eq!(anvils.len(), 1, "one anvil for the restarted node");
    assert!(node.terminate().success());
    assert!(!pid_alive(anvils[0]), "anvil stopped with the node");
}

/// An anvil the test owns (so it outlives node restarts); killed on drop.
struct Anvil {
    child: Child,
    port: u16,
}

impl Anvil {
    /// Anvil on a free port; a port taken between [`free_port`] and anvil's bind makes anvil
    /// exit, and the next try takes a fresh one.
    fn start() -> Self {
        for _ in 0..4 {
            if let Some(anvil) = Self::try_launch(free_port(), None) {
                return anvil;
            }
        }
        panic!("anvil exited before answering, four times on fresh ports (or refuses an option)");
    }

    /// Anvil on `port`, loading and dumping its chain at `state` when given; tried again
    /// after a pause if the port is (briefly) taken.
    fn launch(port: u16, state: Option<&Path>) -> Self {
        for _ in 0..4 {
            if let Some(anvil) = Self::try_launch(port, state) {
                return anvil;
            }
            thread::sleep(Duration::from_millis(500));
        }
        panic!("anvil exited before answering on port {port}, four times (or refuses an option)");
    }

    /// `None` if anvil exits before it answers (its port was taken).
    fn try_launch(port: u16, state: Option<&Path>) -> Option<Self> {
        let mut command = Command::new(tool("anvil"));
        command.args(["--port", &port.to_string(), "--block-time", "1"]);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil");
        let mut anvil = Self { child, port };
        let mut exited = false;
        wait_until("anvil answers or exits", Duration::from_secs(20), || {
            exited = matches!(anvil.child.try_wait(), Ok(Some(_)));
            exited || rpc_call(port, "eth_chainId", json!([])).is_ok()
        });
        // Whoever answered, ours must still be running: else the port belongs to another.
        (!exited && matches!(anvil.child.try_wait(), Ok(None))).then_some(anvil)
    }

    /// SIGTERM (anvil dumps its state file) and wait.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("anvil did not exit on SIGTERM");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn call(&self, method: &str, params: Value) -> Value {
        rpc_call(self.port, method, params).unwrap_or_else(|e| panic!("anvil {method}: {e}"))
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (index, first block, last block) of every `BatchSubmitted` event, in L1 order.
fn batches_on_l1(anvil: &Anvil, rollup: &str) -> Vec<(u64, u64, u64)> {
    let logs = anvil.call(
        "eth_getLogs",
        json!([{
            "fromBlock": "0x0",
            "toBlock": "latest",
            "address": rollup,
            "topics": [format!("{}", LanesRollup::BatchSubmitted::SIGNATURE_HASH)],
        }]),
    );
    logs.as_array()
        .unwrap()
        .iter()
        .map(|log| {
            let topics: Vec<B256> = log["topics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().parse().unwrap())
                .collect();
            let data: Bytes = log["data"].as_str().unwrap().parse().unwrap();
            let event = LanesRollup::BatchSubmitted::decode_raw_log(topics, &data).unwrap();
            (
                event.batchIndex.to::<u64>(),
                event.firstBlock,
                event.lastBlock,
            )
        })
        .collect()
}

/// `lastBatch()`: (index, last L2 block, state root).
fn last_batch(anvil: &Anvil, rollup: &str) -> (u64, u64, B256) {
    let data = LanesRollup::lastBatchCall {}.abi_encode();
    let out = anvil.call(
        "eth_call",
        json!([{"to": rollup, "data": format!("0x{}", hex::encode(data))}, "latest"]),
    );
    let bytes: Bytes = out.as_str().unwrap().parse().unwrap();
    let last = LanesRollup::lastBatchCall::abi_decode_returns(&bytes).unwrap();
    (last.batchIndex.to::<u64>(), last.lastBlock, last.stateRoot)
}

/// Deploys the contracts with `lanes l1 deploy` (sequencer = dev account 1); the rollup.
fn deploy(anvil: &Anvil, dir: &Path) -> String {
    let key_file = dir.join("deployer.key");
    std::fs::write(&key_file, DEV_ACCOUNTS[0].private_key).unwrap();
    let out = run(
        Command::new(lanes_bin())
            .args(["l1", "deploy", "--l1-rpc", &anvil.url(), "--key-file"])
            .arg(&key_file)
            .args(["--sequencer", DEV_ACCOUNTS[1].address])
            .env("RUST_LOG", "warn"),
        Duration::from_secs(60),
    )
    .ok();
    out.lines()
        .find_map(|l| l.strip_prefix("rollup_address = "))
        .expect("deploy prints the rollup address")
        .trim_matches('"')
        .to_owned()
}

/// Every batch on L1 follows the one before it: indices 1..=n, contiguous block ranges from 1.
#[track_caller]
fn assert_consecutive(batches: &[(u64, u64, u64)]) {
    let mut next_block = 1;
    for (i, (index, first, last)) in batches.iter().enumerate() {
        assert_eq!(
            *index,
            i as u64 + 1,
            "batch indices consecutive: {batches:?}"
        );
        assert_eq!(*first, next_block, "block ranges contiguous: {batches:?}");
        assert!(last >= first);
        next_block = last + 1;
    }
}

#[test]
fn l1_outage_keeps_blocks_coming_and_the_batcher_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anvil-state.json");
    let port = free_port();
    let anvil = Anvil::launch(port, Some(&state));
    let rollup = deploy(&anvil, dir.path());
    let node = Node::builder()
        .fast_batching()
        .config_str("l1", "rpc_url", &anvil.url())
        .config_str("l1", "rollup_address", &rollup)
        .config_str("batcher", "private_key", DEV_ACCOUNTS[1].private_key)
        .spawn();
    send_transfers(&node, 0, 8);
    wait_until("a first batch lands", Duration::from_secs(30), || {
        last_batch(&anvil, &rollup).0 >= 1
    });

    // L1 down for a while: L2 keeps producing blocks, the batcher counts failures.
    anvil.stop();
    let during = node.block_number();
    send_transfers(&node, 2, 8);
    node.wait_for_block(during + 10, Duration::from_secs(20));
    wait_until(
        "the batcher reports L1 unreachable",
        Duration::from_secs(20),
        || node.rpc_ok("lanes_syncStatus", json!([]))["batcher"]["lastError"].is_string(),
    );

    // L1 back (same chain): the batcher catches up with the head, without gaps.
    let anvil = Anvil::launch(port, Some(&state));
    let head = node.block_number();
    wait_until("the batcher catches up", Duration::from_secs(40), || {
        last_batch(&anvil, &rollup).1 >= head
    });
    assert_consecutive(&batches_on_l1(&anvil, &rollup));
    wait_until("the node sees it", Duration::from_secs(10), || {
        let status = node.rpc_ok("lanes_syncStatus", json!([]));
        status["batcher"]["postedL2"].as_u64().unwrap() >= head
            && status["batcher"]["lastError"].is_null()
    });
}

#[test]
fn kill_9_while_a_batch_is_in_flight_neither_skips_nor_duplicates() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();

    // `lanes l1 deploy` with a key file, writing the addresses into a config file.
    let key_file = dir.path().join("deployer.key");
    std::fs::write(&key_file, DEV_ACCOUNTS[0].private_key).unwrap();
    let written = dir.path().join("l1.toml");
    std::fs::write(
        &written,
        "# deployed by the test\n[l1]\nconfirmations = 1\n",
    )
    .unwrap();
    let out = run(
        Command::new(lanes_bin())
            .args(["l1", "deploy", "--l1-rpc", &anvil.url(), "--key-file"])
            .arg(&key_file)
            .args(["--sequencer", DEV_ACCOUNTS[1].address])
            .args(["--finalization-period-secs", "3", "--write-config"])
            .arg(&written)
            .env("RUST_LOG", "warn"),
        Duration::from_secs(60),
    )
    .ok();
    let rollup = out
        .lines()
        .find_map(|l| l.strip_prefix("rollup_address = "))
        .expect("deploy prints the rollup address")
        .trim_matches('"')
        .to_owned();
    let config_text = std::fs::read_to_string(&written).unwrap();
    assert!(config_text.starts_with("# deployed by the test\n"));
    assert!(config_text.contains(&format!("rollup_address = \"{rollup}\"")));
    assert!(config_text.contains("confirmations = 1"));

    let mut node = Node::builder()
        .fast_batching()
        .config_str("l1", "rpc_url", &anvil.url())
        .config_str("l1", "rollup_address", &rollup)
        .config_str("batcher", "private_key", DEV_ACCOUNTS[1].private_key)
        .spawn();
    let admin_port = admin_port(&node);

    // Load, and SIGKILL while a batch transaction waits in anvil's mempool.
    send_transfers(&node, 0, 16);
    wait_until("a first batch lands", Duration::from_secs(30), || {
        last_batch(&anvil, &rollup).0 >= 1
    });
    send_transfers(&node, 4, 16);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut in_flight = false;
    while Instant::now() < deadline {
        let pending = anvil.call("txpool_status", json!([]))["pending"].clone();
        if parse_u128(pending.as_str().unwrap_or("0x0")) > 0 {
            in_flight = true;
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(in_flight, "no batch transaction seen in flight");
    let killed_at = node.block_number();
    node.kill();

    // Restart on the same data directory and L1; more load; flush.
    node.restart();
    send_transfers(&node, 8, 8);
    node.wait_for_block(killed_at + 5, Duration::from_secs(20));
    let posted = parse_u128(
        admin(&node, admin_port, "admin_flushBatcher")
            .as_str()
            .unwrap(),
    ) as u64;
    assert!(posted > killed_at);

    // No gap, no duplicate: indices 1..=n in order, block ranges contiguous from 1.
    let batches = batches_on_l1(&anvil, &rollup);
    assert!(batches.len() >= 2, "{batches:?}");
    assert_consecutive(&batches);
    let (index, last_block, root) = last_batch(&anvil, &rollup);
    assert_eq!(index, batches.len() as u64);
    assert_eq!(last_block, posted);
    let node_block = block(&node, &format!("0x{posted:x}"));
    assert_eq!(json!(root), node_block["stateRoot"]);

    // And L1 alone still rebuilds the node's chain.
    let (derived_head, derived_hash, derived_root) = derive(&anvil.url(), &rollup, dir.path());
    assert_eq!(derived_head, posted);
    assert_eq!(json!(derived_hash), node_block["hash"]);
    assert_eq!(json!(derived_root), node_block["stateRoot"]);
    node.terminate();
}

/// Sum of one metric family's samples in a `/metrics` exposition.
fn metric(node: &Node, name: &str) -> f64 {
    let (_, body) = node.metrics().expect("metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn backlog_over_its_limit_shrinks_blocks() {
    // Any unposted block is over a 1-byte limit, and batches close only after 30 s.
    let node = Node::builder()
        .config("batcher", "max_backlog_bytes", "1")
        .config_str("batcher", "max_batch_age", "30s")
        .config_str("batcher", "poll_interval", "200ms")
        .config("sequencer", "max_block_txs", "8")
        .spawn();
    // A first block makes a backlog.
    send_transfers(&node, 0, 4);
    wait_until("backpressure turns on", Duration::from_secs(20), || {
        metric(&node, "lanes_sequencer_backpressure_active") == 1.0
    });
    let before = node.block_number();
    // 24 transfers from 4 senders: 3 full blocks unthrottled, at least 12 at a quarter.
    send_transfers(&node, 1, 24);
    // Committed blocks after `before`: (transactions included, most in one block).
    let included = || {
        let mut blocks = (0, 0, 0);
        for n in before + 1..=node.block_number() {
            let txs = node.rpc_ok("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
                ["transactions"]
                .as_array()
                .unwrap()
                .len();
            if txs > blocks.1 {
                blocks = (blocks.0, txs, n);
            }
            blocks.0 += txs;
        }
        blocks
    };
    // The pool drains when the last block executes; it is committed a little later.
    wait_until("all 24 are committed", Duration::from_secs(30), || {
        included().0 >= 24
    });
    let (count, most, at) = included();
    assert!(
        most <= 2,
        "block {at} has {most} transactions under backpressure"
    );
    assert_eq!(count, 24);
    assert!(metric(&node, "lanes_sequencer_backpressure_blocks_total") >= 12.0);
    assert!(node.log().contains("shrinking blocks"));
}

#[test]
fn without_anvil_the_dev_node_runs_l2_only_and_says_so() {
    let node = Node::builder()
        .config_str("l1", "anvil_path", "/nonexistent/anvil")
        .spawn();
    send_transfers(&node, 0, 4);
    wait_until("the transfers are in", Duration::from_secs(20), || {
        node.rpc_ok("txpool_status", json!([]))["pending"] == json!("0x0")
            && node.block_number() > 0
    });
    let log = plain(&node.log());
    assert!(
        log.contains("WARN") && log.contains("running L2 only"),
        "{}",
        node.log_tail(30)
    );
    // No L1: safe and finalized follow the head, and syncStatus has no L1 side.
    let status = node.rpc_ok("lanes_syncStatus", json!([]));
    assert_eq!(status["batcher"], Value::Null);
    assert_eq!(status["headL1"], Value::Null);
    let latest = number_of(&block(&node, "latest"));
    assert!(number_of(&block(&node, "safe")) >= latest);
    assert!(number_of(&block(&node, "finalized")) >= latest);
    // The batcher's series exist (at 0) all the same.
    assert_eq!(metric(&node, "lanes_batcher_batches_posted_total"), 0.0);
    let (_, body) = node.metrics().unwrap();
    assert!(body.contains("lanes_l1_account_balance_wei{account=\"batcher\"} 0"));
}
