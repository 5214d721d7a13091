//! End-to-end tests of the state trie: `eth_getProof` answers that verify against the block's
//! state root (with alloy-trie's verifier), the refusal of state the node cannot prove, and
//! `lanes db verify` on the data directory the node leaves behind, before and after damage.

mod common;

use alloy_consensus::TrieAccount;
use alloy_primitives::{Address, B256, Bytes, U256};
use common::{DEV_ACCOUNTS, Node, RpcError, cast, forge_create_token, lanes_bin, run};
use lanes_executor::trie::{AccountProof, StorageProof, verify_account_proof};
use serde_json::{Value, json};
use std::{process::Command, str::FromStr, time::Duration};

fn field<T: FromStr>(v: &Value, key: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key:?} in {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad {key:?} in {v}: {e:?}"))
}

fn bytes_list(v: &Value) -> Vec<Bytes> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|b| b.as_str().unwrap().parse().unwrap())
        .collect()
}

/// The proof in `response` as the executor's type, for its verifier.
fn to_proof(response: &Value, state_root: B256) -> AccountProof {
    let nonce = u64::from_str_radix(
        field::<String>(response, "nonce").trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let account = TrieAccount {
        nonce,
        balance: field(response, "balance"),
        storage_root: field(response, "storageHash"),
        code_hash: field(response, "codeHash"),
    };
    // EIP-1186 reports an absent account as the empty one.
    let absent = account == TrieAccount::default();
    AccountProof {
        address: field(response, "address"),
        account: (!absent).then_some(account),
        proof: bytes_list(&response["accountProof"]),
        storage: response["storageProof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|slot| StorageProof {
                slot: B256::from(U256::from_str(slot["key"].as_str().unwrap()).unwrap()),
                value: field(slot, "value"),
                proof: bytes_list(&slot["proof"]),
            })
            .collect(),
        state_root,
    }
}

/// `eth_getProof` at the head, with the head's state root; retried if a block lands between
/// reading the head and asking (the node only proves the head).
fn proof_at_head(node: &Node, address: &str, slots: &[String]) -> (Value, B256) {
    for _ in 0..20 {
        let head = node.block_number();
        match node.rpc(
            "eth_getProof",
            json!([address, slots, format!("{head:#x}")]),
        ) {
            Ok(proof) => {
                let block =
                    node.rpc_ok("eth_getBlockByNumber", json!([format!("{head:#x}"), false]));
                return (proof, field(&block, "stateRoot"));
            }
            Err(RpcError::Rpc { message, .. }) if message.contains("historical state") => continue,
            Err(err) => panic!("eth_getProof: {err}"),
        }
    }
    panic!("the head never stood still long enough")
}

#[test]
fn proofs_verify_and_db_verify_checks_the_data_directory() {
    // A short proof history (blocks come only with transactions), so the test outlives it.
    let mut node = Node::builder()
        .config("storage", "state_root_history", "2")
        .spawn();
    let url = node.rpc_url();
    let (deployer, other) = (DEV_ACCOUNTS[0], DEV_ACCOUNTS[1]);

    // A contract with storage: the token of the Foundry tests.
    let created = forge_create_token(&node, &deployer, "1000000");
    let token = created["deployedTo"].as_str().unwrap().to_owned();
    cast([
        "send",
        "--private-key",
        deployer.private_key,
        other.address,
        "--value",
        "1ether",
        "--rpc-url",
        &url,
    ])
    .ok();

    let slots: Vec<String> = (0..8u64).map(|i| format!("{:#066x}", i)).collect();
    let mut nonzero_slots = 0;
    for address in [
        token.as_str(),
        deployer.address,
        other.address,
        "0x000000000000000000000000000000000000dead",
    ] {
        let (response, state_root) = proof_at_head(&node, address, &slots);
        let proof = to_proof(&response, state_root);
        verify_account_proof(state_root, &proof)
            .unwrap_or_else(|e| panic!("proof of {address} does not verify: {e}\n{response}"));
        assert_eq!(proof.address, Address::from_str(address).unwrap());
        // The values agree with the plain state methods.
        let balance: U256 = node
            .rpc_ok("eth_getBalance", json!([address, "latest"]))
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(proof.account.map_or(U256::ZERO, |a| a.balance), balance);
        for slot in &proof.storage {
            let value: U256 = node
                .rpc_ok("eth_getStorageAt", json!([address, slot.slot, "latest"]))
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(slot.value, value, "slot {} of {address}", slot.slot);
            nonzero_slots += usize::from(!value.is_zero());
        }
    }
    assert!(
        nonzero_slots > 0,
        "the token's storage is proven, not only absences"
    );

    // A recent block stays provable after later blocks changed the account: the proof
    // shows the state of that block and verifies against that block's root.
    let balance_of = |address: &str| -> U256 {
        node.rpc_ok("eth_getBalance", json!([address, "latest"]))
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = node.block_number();
    let balance_before = balance_of(other.address);
    cast([
        "send",
        "--private-key",
        deployer.private_key,
        other.address,
        "--value",
        "2ether",
        "--rpc-url",
        &url,
    ])
    .ok();
    let balance_after = balance_of(other.address);
    assert_ne!(balance_before, balance_after);
    let at = format!("{before:#x}");
    let response = node.rpc_ok("eth_getProof", json!([other.address, [], at]));
    let block = node.rpc_ok("eth_getBlockByNumber", json!([at, false]));
    let state_root: B256 = field(&block, "stateRoot");
    let proof = to_proof(&response, state_root);
    verify_account_proof(state_root, &proof)
        .unwrap_or_else(|e| panic!("proof at block {before} does not verify: {e}\n{response}"));
    assert_eq!(proof.account.unwrap().balance, balance_before);
    let (response, state_root) = proof_at_head(&node, other.address, &[]);
    let proof = to_proof(&response, state_root);
    verify_account_proof(state_root, &proof).unwrap();
    assert_eq!(proof.account.unwrap().balance, balance_after);

    // State the node cannot prove is refused, not answered wrong.
    let err = node
        .rpc("eth_getProof", json!([deployer.address, [], "0x0"]))
        .expect_err("a proof at genesis after blocks were built");
    assert!(err.to_string().contains("historical state"), "{err}");

    node.terminate();
    let verify = |datadir: &std::path::Path| {
        run(
            Command::new(lanes_bin())
                .args(["db", "verify", "--datadir"])
                .arg(datadir),
            Duration::from_secs(60),
        )
    };
    let out = verify(node.datadir());
    assert!(out.success(), "{}", out.streams());
    assert!(
        out.ok().contains("state root verified"),
        "{}",
        out.streams()
    );

    // Damage: a block whose header does not carry the root of its state, as a bug sealing
    // the wrong root would leave. `db verify` says so and fails, and the node refuses to
    // start on it.
    {
        let storage = lanes_executor::Storage::open(
            &node.datadir().join("db"),
            &lanes_executor::StorageOptions::default(),
        )
        .unwrap();
        let mut changes = lanes_executor::StateChanges::default();
        changes.accounts.insert(
            Address::repeat_byte(0x42),
            lanes_executor::state::AccountChange {
                info: Some(lanes_executor::StoredAccount {
                    nonce: 1,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        let head = storage.head().unwrap().unwrap().0;
        let header = storage.header(head).unwrap().unwrap();
        let mut next = header.clone();
        next.number = head + 1;
        next.parent_hash = header.hash_slow();
        storage
            .commit_block(
                &lanes_executor::SealedBlock::new(next, vec![], vec![]),
                &changes,
            )
            .unwrap();
    }
    let out = verify(node.datadir());
    assert!(!out.success(), "{}", out.streams());
    assert!(out.streams().contains("MISMATCH"), "{}", out.streams());
    let out = run(&mut node.command(), Duration::from_secs(60));
    assert!(!out.success(), "{}", out.streams());
    assert!(
        out.streams().contains("state trie gives root"),
        "{}",
        out.streams()
    );
}
