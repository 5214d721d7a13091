//! The node's L1 side: which L1 to use (a configured RPC with deployed contracts, or with
//! `l1.dev_anvil` a local anvil the node starts and deploys to), the batcher posting blocks to
//! it, and the L1 watcher following the portal.
//!
//! Deposits and forced transactions the watcher delivers go to the deposit queue
//! ([`crate::deposits`]), and the producer puts them first in the next block as deposit
//! transactions.

use crate::{
    deposits::DepositQueue,
    l1_cursor::CommittedCursorStore,
    node::{NodeError, NodeResult},
};
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use lanes_batcher::{
    Batcher, BatcherHandle, BatcherMetrics, BatcherSettings, BatcherStatus, BlockSource, TxManager,
};
use lanes_config::LanesConfig;
use lanes_executor::Storage;
use lanes_l1_bridge::{
    AlloyL1Client, DeployParams, DevL1, DevL1Options, L1Contracts, L1Watcher, WatcherConfig,
    WatcherMetrics, dev_account,
};
use std::{path::PathBuf, sync::Arc, time::Duration};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

const TARGET: &str = "lanes::l1";

/// Finalization period of the dev deployment: short, so `finalized` moves while you watch.
pub const DEV_FINALIZATION_PERIOD: Duration = Duration::from_secs(12);

/// Withdrawals are proven with `eth_getProof` at the last block of a final batch, which is
/// at least a finalization period old; a node serves proofs only for the blocks in its
/// history. Under load a block comes every `block_time`, so that is the span the history is
/// sure to cover.
async fn warn_if_withdrawals_unprovable(config: &LanesConfig, client: &AlloyL1Client) {
    let period = match client.rollup().finalizationPeriod().call().await {
        Ok(period) => Duration::from_secs(period),
        Err(err) => {
            debug!(target: TARGET, %err, "cannot read the finalization period");
            return;
        }
    };
    let covered = config
        .sequencer
        .block_time
        .saturating_mul(u32::try_from(config.storage.state_root_history).unwrap_or(u32::MAX));
    let needed = period + config.batcher.max_batch_age;
    if covered < needed {
        warn!(
            target: TARGET,
            history_blocks = config.storage.state_root_history,
            covered = ?covered,
            needed = ?needed,
            "storage.state_root_history may not reach back to the last final batch under load: \
             withdrawals can only be proven through a node that keeps a longer history"
        );
    }
}

/// Forced-inclusion delay of the dev deployment: a day, as on a testnet; the forced-inclusion
/// tests deploy with a short one.
pub const DEV_FORCE_INCLUSION_DELAY: Duration = Duration::from_secs(86_400);

/// The L1 a node posts to.
#[derive(Debug, Clone)]
pub struct L1Endpoint {
    /// JSON-RPC URL.
    pub url: String,
    /// `LanesRollup`.
    pub rollup: Address,
    /// `LanesPortal`.
    pub portal: Address,
    /// L1 block the rollup was deployed in.
    pub deploy_block: u64,
}

/// The running L1 side of a node; [`L1Services::shutdown`] stops it.
#[derive(Debug, Default)]
pub struct L1Services {
    /// The local anvil, in dev mode.
    pub dev: Option<DevL1>,
    /// Where the node posts.
    pub endpoint: Option<L1Endpoint>,
    /// The batcher, when it runs.
    pub batcher: Option<BatcherHandle>,
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
}

fn l1_dir(config: &LanesConfig) -> PathBuf {
    config.storage.datadir.join("l1")
}

fn l1_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Config(format!("L1: {e}"))
}

/// Starts the local anvil and deploys the contracts to it (reusing the deployment recorded in
/// the data directory when anvil's saved state still holds it). `None` (with a warning) when
/// anvil cannot be found.
async fn start_dev_l1(
    config: &LanesConfig,
    storage: &Storage,
    key: &PrivateKeySigner,
) -> NodeResult<Option<(DevL1, L1Endpoint)>> {
    let anvil = match lanes_l1_bridge::find_anvil(config.l1.anvil_path.as_deref()) {
        Ok(path) => path,
        Err(e) => {
            warn!(target: TARGET, error = %e, "anvil not found: running L2 only, nothing is posted to L1 (run `make tools` or set l1.anvil_path)");
            return Ok(None);
        }
    };
    let dir = l1_dir(config);
    std::fs::create_dir_all(&dir)?;
    // Started from this (runtime worker) thread, which lives as long as the node: anvil gets
    // SIGTERM when the node dies, even by SIGKILL, and dumps its state for the next start.
    let dev = DevL1::spawn(DevL1Options {
        anvil_path: Some(anvil),
        state_file: Some(dir.join("anvil-state.json")),
        log_file: Some(dir.join("anvil.log")),
        die_with_parent: true,
        ..DevL1Options::default()
    })
    .map_err(l1_error)?;
    let genesis = storage
        .block(0)?
        .ok_or_else(|| NodeError::Config("no genesis block".into()))?;
    let params = DeployParams {
        owner: dev_account(0).address(),
        sequencer: key.address(),
        genesis_state_root: genesis.header.state_root,
        finalization_period: DEV_FINALIZATION_PERIOD,
        force_inclusion_delay: DEV_FORCE_INCLUSION_DELAY,
    };
    let (deployed, reused) = lanes_l1_bridge::deploy_or_reuse(
        dev.url(),
        dev_account(0),
        &params,
        &dir.join("deployment.json"),
    )
    .await
    .map_err(l1_error)?;
    if !reused {
        // A fresh anvil redeploys at the same addresses: a cursor into the L1 that is gone
        // would skip the new one's events.
        storage
            .delete_aux(&crate::l1_cursor::cursor_key(deployed.portal))
            .map_err(NodeError::Executor)?;
    }
    info!(target: TARGET, url = dev.url(), pid = ?dev.pid(), rollup = %deployed.rollup, portal = %deployed.portal, reused, "dev L1 (anvil) running");
    let endpoint = L1Endpoint {
        url: dev.url().to_owned(),
        rollup: deployed.rollup,
        portal: deployed.portal,
        deploy_block: deployed.deploy_block,
    };
    Ok(Some((dev, endpoint)))
}

/// The configured L1: `l1.rpc_url` with `l1.rollup_address` (the portal is read from the
/// rollup when unset).
async fn configured_l1(config: &LanesConfig, url: &str) -> NodeResult<L1Endpoint> {
    let rollup = config.l1.rollup_address.ok_or_else(|| {
        NodeError::Config(
            "l1.rpc_url is set but l1.rollup_address is not; deploy with `lanes l1 deploy --write-config`".into(),
        )
    })?;
    let client = AlloyL1Client::connect(
        url,
        L1Contracts {
            rollup,
            portal: config.l1.portal_address.unwrap_or_default(),
        },
    )
    .map_err(l1_error)?;
    let portal = match config.l1.portal_address {
        Some(portal) => portal,
        None => client
            .rollup()
            .portal()
            .call()
            .await
            .map_err(|e| l1_error(format!("LanesRollup.portal: {e}")))?,
    };
    // An anvil restarted from a state dump cannot answer for old blocks: start from 0 then.
    let deploy_block = client.deployment_block(rollup).await.unwrap_or_else(|e| {
        warn!(target: TARGET, error = %e, "cannot find the rollup's deployment block; the L1 watcher starts from block 0");
        0
    });
    Ok(L1Endpoint {
        url: url.to_owned(),
        rollup,
        portal,
        deploy_block,
    })
}

/// Starts the node's L1 side as `config` says. Without an L1 (no `l1.rpc_url`, no dev anvil)
/// it returns empty services and the node runs L2 only.
pub async fn start(
    config: &LanesConfig,
    storage: Arc<Storage>,
    chain_id: u64,
    batcher_metrics: BatcherMetrics,
    watcher_metrics: WatcherMetrics,
    deposits: Arc<DepositQueue>,
) -> NodeResult<L1Services> {
    let configured_key = lanes_batcher::batcher_key(&config.batcher).map_err(l1_error)?;
    let mut services = L1Services::default();
    let rpc_url = config.l1.rpc_url.as_deref().filter(|u| !u.is_empty());
    let key = match rpc_url {
        Some(url) => {
            services.endpoint = Some(configured_l1(config, url).await?);
            configured_key
        }
        None if config.l1.dev_anvil => {
            // The dev batcher (sequencer) key is dev account 1 of the anvil mnemonic.
            let key = configured_key.unwrap_or_else(|| dev_account(1));
            if let Some((dev, endpoint)) = start_dev_l1(config, &storage, &key).await? {
                services.dev = Some(dev);
                services.endpoint = Some(endpoint);
            }
            Some(key)
        }
        None => {
            warn!(target: TARGET, "no L1 configured (l1.rpc_url unset, l1.dev_anvil off): running L2 only; safe and finalized follow the head");
            None
        }
    };
    let Some(endpoint) = services.endpoint.clone() else {
        return Ok(services);
    };

    let contracts = L1Contracts {
        rollup: endpoint.rollup,
        portal: endpoint.portal,
    };
    let client = Arc::new(AlloyL1Client::connect(&endpoint.url, contracts).map_err(l1_error)?);
    warn_if_withdrawals_unprovable(config, &client).await;

    // The watcher feeds L1 messages to the deposit queue, which the producer empties into
    // blocks. Its cursor is persisted only as far as committed blocks executed what it
    // delivered (see `l1_cursor`); messages delivered again after a restart are below the L2
    // counter and the queue drops them.
    let watcher = L1Watcher::new(
        client.clone(),
        Arc::new(CommittedCursorStore::new(storage.clone(), endpoint.portal)),
        WatcherConfig::from_l1_config(&config.l1, endpoint.deploy_block),
        watcher_metrics,
    );
    let (mut messages, watcher_task) = watcher.spawn(1024, services.cancel.child_token());
    info!(target: TARGET, portal = %endpoint.portal, start_block = endpoint.deploy_block, next_nonce = deposits.next_nonce(), confirmations = config.l1.confirmations, "following L1 deposits");
    services.tasks.push(tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            match deposits.push(&message) {
                Ok(true) => {
                    debug!(target: TARGET, nonce = message.deposit_nonce, from = %message.from, "L1 message queued")
                }
                Ok(false) => {}
                Err(err) => {
                    // The watcher delivers without gaps; this is a bug, not a condition to
                    // wait out. Deposits stop; L2 blocks go on.
                    error!(target: TARGET, %err, "L1 message out of order; deposits stopped");
                    break;
                }
            }
        }
        match watcher_task.await {
            Ok(Err(e)) => warn!(target: TARGET, error = %e, "L1 watcher stopped"),
            Err(e) => warn!(target: TARGET, error = %e, "L1 watcher panicked"),
            Ok(Ok(())) => {}
        }
    }));

    // The sequencer's L1 balance, for the dashboard (the batcher reads its own).
    let balance = batcher_metrics
        .l1_account_balance_wei
        .with_label_values(&["sequencer"]);
    balance.set(0.0);
    let cancel = services.cancel.child_token();
    let balance_client = client.clone();
    services.tasks.push(tokio::spawn(async move {
        loop {
            let sequencer = balance_client.rollup().sequencer().call().await;
            if let Ok(sequencer) = sequencer
                && let Ok(wei) = balance_client.provider().get_balance(sequencer).await
            {
                balance.set(f64::from(wei));
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            }
        }
    }));

    match key {
        Some(key) if config.batcher.enabled => {
            let txmgr = TxManager::connect(
                &endpoint.url,
                key,
                BatcherSettings::txmgr_config(&config.batcher),
            )
            .await
            .map_err(l1_error)?;
            let settings = BatcherSettings::from_config(&config.batcher, chain_id, endpoint.rollup);
            // A node that may post blobs pays for the KZG setup now rather than stalling
            // block production when the first blob batch closes.
            if config.batcher.data_availability != lanes_config::DataAvailability::Calldata {
                lanes_batcher::warm_kzg_setup();
            }
            let source: Arc<dyn BlockSource> = storage;
            let (handle, task) = Batcher::new(settings, source, Arc::new(txmgr), batcher_metrics)
                .spawn(16, services.cancel.child_token());
            services.tasks.push(tokio::spawn(async move {
                match task.await {
                    Ok(Err(e)) => warn!(target: TARGET, error = %e, "batcher stopped; blocks are no longer posted"),
                    Err(e) => warn!(target: TARGET, error = %e, "batcher panicked"),
                    Ok(Ok(())) => {}
                }
            }));
            services.batcher = Some(handle);
        }
        Some(_) => info!(target: TARGET, "batcher disabled (batcher.enabled = false)"),
        None => {
            warn!(target: TARGET, "no batcher key (batcher.private_key or private_key_file): blocks are not posted to L1")
        }
    }
    Ok(services)
}

impl L1Services {
    /// The batcher's status channel, when it runs.
    pub fn batcher_status(&self) -> Option<watch::Receiver<BatcherStatus>> {
        self.batcher.as_ref().map(BatcherHandle::subscribe)
    }

    /// Stops the tasks (bounded wait) and then anvil.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(mut dev) = self.dev.take() {
            // Blocking: SIGTERM and a bounded wait while anvil dumps its state.
            let _ = tokio::task::spawn_blocking(move || dev.stop()).await;
            info!(target: TARGET, "dev L1 (anvil) stopped");
        }
    }
}
