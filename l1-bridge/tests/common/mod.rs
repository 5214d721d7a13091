//! Shared helpers for the anvil-backed tests: start an anvil on a free port, deploy the lanes
//! contracts, deposit, mine, and wait with bounded timeouts.
//!
//! Environment: `LANES_TOOLS_BIN`, the folder holding `anvil` (default `<repo>/.tools/bin`, where
//! `make tools` installs it; the Makefile sets it).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use lanes_l1_bridge::{
    AlloyL1Client, CursorStore, DeployParams, DeployedContracts, DevL1, DevL1Options, L1Client,
    L1Message, L1Receipt, L1Watcher, WatcherConfig, WatcherMetrics, deploy, dev_account,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound of any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// State root of the fake L2 genesis the tests deploy with.
pub const GENESIS_ROOT: B256 = B256::repeat_byte(0x11);

/// Seconds until a batch is final in the test deployment.
pub const FINALIZATION_PERIOD: u64 = 60;

/// Seconds within which a queued message must be included in the test deployment.
pub const FORCE_INCLUSION_DELAY: u64 = 600;

/// `$LANES_TOOLS_BIN/anvil` or `<repo>/.tools/bin/anvil`; panics with the fix if missing.
pub fn anvil_path() -> PathBuf {
    let dir = std::env::var_os("LANES_TOOLS_BIN")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(".tools")
                .join("bin")
        });
    let anvil = dir.join("anvil");
    assert!(
        anvil.is_file(),
        "{} does not exist: run `make tools` (or set LANES_TOOLS_BIN)",
        anvil.display()
    );
    anvil
}

/// An automining anvil on a free port; `state_file` makes it survive [`DevL1::restart`].
pub async fn start_anvil(state_file: Option<PathBuf>) -> DevL1 {
    DevL1::start(DevL1Options {
        anvil_path: Some(anvil_path()),
        block_time: None,
        state_file,
        ..DevL1Options::default()
    })
    .await
    .expect("anvil starts")
}

/// The sequencer (batcher) key of the test deployment: dev account 1.
pub fn sequencer_key() -> PrivateKeySigner {
    dev_account(1)
}

/// Constructor arguments of the test deployment: dev account 0 owns it.
pub fn deploy_params() -> DeployParams {
    DeployParams {
        owner: dev_account(0).address(),
        sequencer: sequencer_key().address(),
        genesis_state_root: GENESIS_ROOT,
        finalization_period: Duration::from_secs(FINALIZATION_PERIOD),
        force_inclusion_delay: Duration::from_secs(FORCE_INCLUSION_DELAY),
    }
}

/// Deploys the contracts with dev account 0 as deployer and owner.
pub async fn deploy_lanes(l1: &DevL1) -> DeployedContracts {
    deploy(l1.url(), dev_account(0), &deploy_params())
        .await
        .expect("contracts deploy")
}

/// A client signing with `key`.
pub fn client_for(
    l1: &DevL1,
    deployed: &DeployedContracts,
    key: PrivateKeySigner,
) -> AlloyL1Client {
    AlloyL1Client::connect_with_signer(l1.url(), deployed.contracts(), key).unwrap()
}

/// Deposits `amount` wei for `recipient` on L2 from dev account `from`; returns the receipt.
pub async fn deposit(
    l1: &DevL1,
    deployed: &DeployedContracts,
    from: u32,
    recipient: Address,
    amount: U256,
) -> L1Receipt {
    let client = client_for(l1, deployed, dev_account(from));
    let pending = client
        .portal()
        .depositETH(recipient, 100_000)
        .value(amount)
        .send()
        .await
        .expect("deposit is sent");
    let receipt = client
        .wait_for_receipt(*pending.tx_hash())
        .await
        .expect("deposit is mined");
    assert!(receipt.success, "deposit succeeded");
    receipt
}

/// Mines `blocks` empty blocks.
pub async fn mine(l1: &DevL1, blocks: u64) {
    let client = AlloyL1Client::connect(l1.url(), Default::default()).unwrap();
    let _: serde_json::Value = client
        .provider()
        .raw_request("anvil_mine".into(), (U256::from(blocks),))
        .await
        .expect("anvil_mine");
}

/// Latest block number.
pub async fn head(l1: &DevL1) -> u64 {
    AlloyL1Client::connect(l1.url(), Default::default())
        .unwrap()
        .latest_block_number()
        .await
        .unwrap()
}

/// A running watcher and what it delivers.
pub struct Watcher {
    pub rx: mpsc::Receiver<L1Message>,
    pub task: JoinHandle<lanes_l1_bridge::L1Result<()>>,
    pub cancel: CancellationToken,
    pub metrics: WatcherMetrics,
}

/// Starts a watcher on `l1` from the deploy block, polling every 50ms.
pub fn watch(
    l1: &DevL1,
    deployed: &DeployedContracts,
    confirmations: u64,
    store: Arc<dyn CursorStore>,
) -> Watcher {
    let client = Arc::new(AlloyL1Client::connect(l1.url(), deployed.contracts()).unwrap());
    let config = WatcherConfig {
        confirmations,
        poll_interval: Duration::from_millis(50),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..WatcherConfig::new(deployed.deploy_block)
    };
    let metrics = WatcherMetrics::unregistered();
    let cancel = CancellationToken::new();
    let (rx, task) =
        L1Watcher::new(client, store, config, metrics.clone()).spawn(64, cancel.clone());
    Watcher {
        rx,
        task,
        cancel,
        metrics,
    }
}

impl Watcher {
    /// The next delivered message; panics after [`WAIT`].
    pub async fn next(&mut self) -> L1Message {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a message within the wait limit")
            .expect("the watcher is running")
    }

    /// Panics if a message arrives within `for_`.
    pub async fn nothing(&mut self, for_: Duration) {
        if let Ok(Some(m)) = tokio::time::timeout(for_, self.rx.recv()).await {
            panic!("unexpected L1 message {m:?}");
        }
    }

    /// Waits until the watcher has seen L1 block `number` as head (so it has scanned it).
    pub async fn wait_head(&self, number: u64) {
        wait_until("watcher head", || self.metrics.head_block() >= number).await;
        // One more poll so the scan of that head is done, not just started.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Cancels the watcher and returns how it ended.
    pub async fn stop(self) -> lanes_l1_bridge::L1Result<()> {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("watcher stops on cancel")
            .expect("watcher did not panic")
    }
}

/// Polls `condition` every 20ms; panics naming `what` after [`WAIT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
