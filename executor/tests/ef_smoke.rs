//! A handful of Ethereum Foundation blockchain tests run through the same code as the
//! `ef-tests` binary, so the runner and block import are covered by `cargo test`. The full
//! suite is `ef-tests ../shared/ethereum-tests/BlockchainTests`.
//!
//! The fixtures live outside the repository: set `LANES_EF_TESTS_DIR` to the
//! `BlockchainTests` directory, or keep the default `<workspace>/../shared/...`.

use alloy_primitives::U256;
use lanes_executor::{
    SequentialExecutor,
    conformance::{BlockchainTest, Outcome, Summary, run_file, run_test},
};
use std::{collections::BTreeMap, path::PathBuf};

/// Files covering the Cancun features import needs: base fee, EIP-4788, withdrawals, blob
/// gas accounting and blocks that must be rejected.
const FILES: &[&str] = &[
    "ValidBlocks/bcExample/basefeeExample.json",
    "GeneralStateTests/Pyspecs/cancun/eip4788_beacon_root/beacon_root_contract_calls.json",
    "GeneralStateTests/Pyspecs/shanghai/eip4895_withdrawals/zero_amount.json",
    "GeneralStateTests/Pyspecs/shanghai/eip4895_withdrawals/multiple_withdrawals_same_address.json",
    "GeneralStateTests/Pyspecs/cancun/eip4844_blobs/correct_increasing_blob_gas_costs.json",
    "GeneralStateTests/Pyspecs/cancun/eip4844_blobs/invalid_tx_max_fee_per_blob_gas.json",
    "GeneralStateTests/Pyspecs/cancun/eip4844_blobs/invalid_static_excess_blob_gas.json",
    "GeneralStateTests/Pyspecs/cancun/eip4844_blobs/reject_valid_full_blob_in_block_rlp.json",
];

fn tests_dir() -> PathBuf {
    let dir = std::env::var_os("LANES_EF_TESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/ethereum-tests/BlockchainTests")
        });
    assert!(
        dir.is_dir(),
        "EF BlockchainTests not found at {}: set LANES_EF_TESTS_DIR to the BlockchainTests directory",
        dir.display()
    );
    dir
}

#[test]
fn selected_ef_files_pass() {
    let dir = tests_dir();
    let executor = SequentialExecutor::new();
    for file in FILES {
        let path = dir.join(file);
        assert!(path.is_file(), "missing EF test file {}", path.display());
        let reports = run_file(&path, &executor);
        let failures: Vec<String> = reports
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed(why) => Some(format!("{}: {why}", r.name)),
                _ => None,
            })
            .collect();
        assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
        let summary = Summary::of(&reports);
        assert!(summary.passed > 0, "{file}: no Cancun test ran ({summary})");
    }
}

/// The runner must notice a wrong post state, or a passing run proves nothing.
#[test]
fn a_wrong_expectation_fails() {
    let path = tests_dir().join(FILES[0]);
    let tests: BTreeMap<String, BlockchainTest> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let executor = SequentialExecutor::new();
    let (_, test) = tests
        .into_iter()
        .find(|(_, t)| t.network == "Cancun")
        .expect("a Cancun test");
    assert_eq!(run_test(&test, &executor), Outcome::Passed);

    let mut wrong_balance = test.clone();
    let account = wrong_balance
        .post_state
        .as_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    account.balance += U256::from(1);
    assert!(matches!(
        run_test(&wrong_balance, &executor),
        Outcome::Failed(_)
    ));

    let mut wrong_head = test.clone();
    wrong_head.last_block_hash = Default::default();
    assert!(matches!(
        run_test(&wrong_head, &executor),
        Outcome::Failed(_)
    ));

    // A valid block marked invalid must fail the test too.
    let mut wrongly_invalid = test;
    wrongly_invalid.blocks[0].expect_exception = Some("anything".into());
    assert!(matches!(
        run_test(&wrongly_invalid, &executor),
        Outcome::Failed(_)
    ));
}
