//! The `lanes` command line: `init` from a genesis file, `config` with redaction, and
//! start-up failures that name what is wrong.

mod common;

use common::{CmdOutput, Node, lanes_bin, run};
use serde_json::json;
use std::{path::Path, process::Command, time::Duration};

const TIMEOUT: Duration = Duration::from_secs(60);

/// `lanes init --genesis <genesis> --datadir <datadir>`.
fn init(genesis: &Path, datadir: &Path) -> CmdOutput {
    run(
        Command::new(lanes_bin())
            .arg("init")
            .arg("--genesis")
            .arg(genesis)
            .arg("--datadir")
            .arg(datadir),
        TIMEOUT,
    )
}

#[test]
fn init_from_genesis_then_run_that_chain() {
    let node_dir = tempfile::tempdir().unwrap();
    let genesis = node_dir.path().join("genesis.json");
    let funded = "0x00000000000000000000000000000000000000aa";
    std::fs::write(
        &genesis,
        json!({
            "config": {"chainId": 777},
            "gasLimit": "0x1c9c380",
            "baseFeePerGas": "0x3b9aca00",
            "difficulty": "0x0",
            "timestamp": "0x0",
            "extraData": "0x",
            "alloc": {funded: {"balance": "0x1234"}}
        })
        .to_string(),
    )
    .unwrap();
    let datadir = node_dir.path().join("data");
    let out = init(&genesis, &datadir).ok();
    assert!(
        out.contains("initialised") && out.contains("block 0"),
        "{out}"
    );

    // A node configured with that genesis serves that chain.
    let node = Node::builder()
        .config_str("chain", "genesis", genesis.to_str().unwrap())
        .config_str("storage", "datadir", datadir.to_str().unwrap())
        .spawn();
    assert_eq!(node.rpc_ok("eth_chainId", json!([])), "0x309");
    assert_eq!(
        node.rpc_ok("eth_getBalance", json!([funded, "latest"])),
        "0x1234"
    );
    drop(node);

    // The same data directory refuses a different chain instead of mixing state.
    let out = init(&genesis, &datadir);
    assert!(
        out.success(),
        "re-running init on the same chain is a no-op: {}",
        out.streams()
    );
    let other = node_dir.path().join("other.json");
    std::fs::write(
        &other,
        std::fs::read_to_string(&genesis)
            .unwrap()
            .replace("0x1234", "0x1235"),
    )
    .unwrap();
    let out = init(&other, &datadir);
    assert!(!out.success());
    assert!(
        out.streams().contains("data directory"),
        "{}",
        out.streams()
    );
}

#[test]
fn config_subcommand_layers_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lanes.toml");
    std::fs::write(
        &file,
        "[batcher]\nprivate_key = \"0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\"\n[rpc]\nport = 9100\n",
    )
    .unwrap();
    let out = run(
        Command::new(lanes_bin())
            .args(["config", "--config"])
            .arg(&file)
            .args(["--metrics.port", "9200"])
            .env("LANES_SEQUENCER__BLOCK_TIME", "300ms"),
        TIMEOUT,
    )
    .ok();
    assert!(out.contains("port = 9100"), "{out}");
    assert!(out.contains("port = 9200"), "{out}");
    assert!(out.contains("block_time = \"300ms\""), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    assert!(!out.contains("59c6995e"), "secret leaked: {out}");
}

#[test]
fn invalid_config_fails_at_start_naming_key_and_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(lanes_bin())
            .args(["node", "--dev", "--datadir"])
            .arg(dir.path())
            .env("LANES_SEQUENCER__BLOCK_TIME", "10ms"),
        TIMEOUT,
    );
    assert!(!out.success());
    let text = out.streams();
    assert!(text.contains("sequencer.block_time"), "{text}");
    assert!(text.contains("LANES_SEQUENCER__BLOCK_TIME"), "{text}");
}

#[test]
fn taken_port_fails_at_start_naming_address_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // No `--dev`: no L1 and no batcher, so the JSON-RPC server is the first to bind.
    let out = run(
        Command::new(lanes_bin())
            .args(["node", "--rpc.addr", "127.0.0.1", "--rpc.port"])
            .arg(port.to_string())
            .args(["--metrics.port", "0", "--datadir"])
            .arg(dir.path()),
        TIMEOUT,
    );
    assert!(!out.success(), "{}", out.streams());
    let text = out.streams();
    assert!(
        text.contains(&format!(
            "cannot listen on 127.0.0.1:{port} for the JSON-RPC server (`rpc.port`)"
        )),
        "{text}"
    );
    assert!(text.contains("Address already in use"), "{text}");
    drop(taken);
}
