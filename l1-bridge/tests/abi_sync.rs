//! The committed ABI/bytecode copies in `l1-bridge/abi/` (what the bindings are generated from)
//! must match forge's artifacts in `contracts/out`, so a contract change cannot leave stale
//! bindings behind.

use std::path::{Path, PathBuf};

use serde_json::Value;

const CONTRACTS: [&str; 3] = ["LanesRollup", "LanesPortal", "L2WithdrawalQueue"];
const FIX: &str = "make contracts && l1-bridge/abi/update.sh";

fn contracts_dir() -> PathBuf {
    std::env::var_os("LANES_CONTRACTS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `{FIX}`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The parts the bindings use.
fn essentials(artifact: &Value) -> [&Value; 3] {
    [
        &artifact["abi"],
        &artifact["bytecode"]["object"],
        &artifact["deployedBytecode"]["object"],
    ]
}

#[test]
fn committed_copies_are_complete() {
    let abi_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("abi");
    for name in CONTRACTS {
        let copy = read_json(&abi_dir.join(format!("{name}.json")));
        let [abi, bytecode, deployed] = essentials(&copy);
        assert!(
            abi.as_array().is_some_and(|a| !a.is_empty()),
            "{name}: no ABI"
        );
        for code in [bytecode, deployed] {
            assert!(
                code.as_str()
                    .is_some_and(|c| c.starts_with("0x") && c.len() > 2),
                "{name}: missing bytecode; run `{FIX}`"
            );
        }
    }
}

#[test]
fn committed_copies_match_forge_artifacts() {
    let out = contracts_dir().join("out");
    if !out.is_dir() {
        // `make test` builds the contracts first, so CI always compares.
        eprintln!(
            "skipping: {} does not exist (run `make contracts` to compare the ABI copies)",
            out.display()
        );
        return;
    }
    let abi_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("abi");
    let mut stale = Vec::new();
    for name in CONTRACTS {
        let artifact = read_json(&out.join(format!("{name}.sol")).join(format!("{name}.json")));
        let copy = read_json(&abi_dir.join(format!("{name}.json")));
        if essentials(&artifact) != essentials(&copy) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "l1-bridge/abi/ is out of date for {stale:?} (contracts changed); run `{FIX}` and commit the result"
    );
}
