//! Deploying the L1 contracts (`lanes l1 deploy`, and the dev node's own anvil).

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use lanes_config::L1Config;
use serde::{Deserialize, Serialize};

use crate::bindings::LanesRollup;
use crate::client::{
    AlloyL1Client, ClientOptions, connect_provider, parse_private_key, wait_for_receipt,
};
use crate::error::{L1Error, L1Result};
use crate::types::L1Contracts;

/// Constructor arguments of `LanesRollup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployParams {
    /// Administrator: rotates the sequencer key, pauses, reverts non-final batches.
    pub owner: Address,
    /// The batcher's L1 account, the only one allowed to submit batches.
    pub sequencer: Address,
    /// State root of L2 block 0, recorded as final batch 0.
    pub genesis_state_root: B256,
    /// Time after submission at which a batch's state root is final (whole seconds).
    pub finalization_period: Duration,
    /// Time within which a queued L1 -> L2 message must be in a batch (whole seconds).
    pub force_inclusion_delay: Duration,
}

/// Where a deployment landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedContracts {
    /// `LanesRollup`.
    pub rollup: Address,
    /// `LanesPortal`, deployed by the rollup's constructor.
    pub portal: Address,
    /// L1 block of the deployment: the L1 watcher's start block (no deposit can be older).
    pub deploy_block: u64,
    /// The deployment transaction.
    pub deploy_tx: B256,
}

impl DeployedContracts {
    /// The addresses as the client wants them.
    pub fn contracts(&self) -> L1Contracts {
        L1Contracts {
            rollup: self.rollup,
            portal: self.portal,
        }
    }

    /// The `[l1]` lines to paste into a lanes config file.
    pub fn to_toml(&self) -> String {
        format!(
            "[l1]\n# Deployed in L1 block {} by transaction {}.\nrollup_address = \"{}\"\nportal_address = \"{}\"\n",
            self.deploy_block, self.deploy_tx, self.rollup, self.portal
        )
    }

    /// Reads a deployment saved by [`DeployedContracts::save`]; `None` if the file does not exist.
    pub fn load(path: &Path) -> L1Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| L1Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(L1Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// Saves the deployment as JSON.
    pub fn save(&self, path: &Path) -> L1Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a deployment always serialises");
        std::fs::write(path, json + "\n")
            .map_err(|e| L1Error::Config(format!("writing {}: {e}", path.display())))
    }

    /// Sets the addresses in a loaded config.
    pub fn apply_to(&self, l1: &mut L1Config) {
        l1.rollup_address = Some(self.rollup);
        l1.portal_address = Some(self.portal);
    }
}

/// Deploys `LanesRollup` (which deploys its `LanesPortal`) to the L1 at `rpc_url`, paid by
/// `deployer`, and waits for the deployment to be mined.
pub async fn deploy(
    rpc_url: &str,
    deployer: PrivateKeySigner,
    params: &DeployParams,
) -> L1Result<DeployedContracts> {
    let options = ClientOptions::default();
    let (provider, _) = connect_provider(rpc_url, Some(deployer), options.request_timeout)?;
    let pending = LanesRollup::deploy_builder(
        provider.clone(),
        params.owner,
        params.sequencer,
        params.genesis_state_root,
        params.finalization_period.as_secs(),
        params.force_inclusion_delay.as_secs(),
    )
    .send()
    .await
    .map_err(|e| L1Error::contract("deploy LanesRollup", e))?;
    let deploy_tx = *pending.tx_hash();
    let receipt = wait_for_receipt(&provider, deploy_tx, &options).await?;
    if !receipt.success {
        return Err(L1Error::TxFailed {
            context: "deploy LanesRollup",
            tx_hash: deploy_tx,
        });
    }
    let rollup = provider
        .get_transaction_receipt(deploy_tx)
        .await
        .map_err(|e| L1Error::rpc("eth_getTransactionReceipt", e))?
        .and_then(|r| r.contract_address)
        .ok_or_else(|| L1Error::InvalidData {
            context: "deploy LanesRollup",
            message: "receipt has no contract address".into(),
        })?;
    let portal = LanesRollup::new(rollup, provider)
        .portal()
        .call()
        .await
        .map_err(|e| L1Error::contract("LanesRollup.portal", e))?;
    Ok(DeployedContracts {
        rollup,
        portal,
        deploy_block: receipt.block_number,
        deploy_tx,
    })
}

/// For `lanes node --dev`: reuses the deployment recorded in `record` (a JSON file next to the
/// dev anvil's state file) when L1 still holds it with the same sequencer, and otherwise deploys
/// afresh and records it. Returns the deployment and whether it was reused. Redeploying on every
/// start would give a restarted dev node, whose L2 chain persists, a rollup contract that
/// expects batch 1 from genesis again.
pub async fn deploy_or_reuse(
    rpc_url: &str,
    deployer: PrivateKeySigner,
    params: &DeployParams,
    record: &Path,
) -> L1Result<(DeployedContracts, bool)> {
    if let Some(recorded) = DeployedContracts::load(record)? {
        let client = AlloyL1Client::connect(rpc_url, recorded.contracts())?;
        let still_there = match client.check_contracts().await {
            Ok(()) => {
                let sequencer = client
                    .rollup()
                    .sequencer()
                    .call()
                    .await
                    .map_err(|e| L1Error::contract("LanesRollup.sequencer", e))?;
                sequencer == params.sequencer
            }
            // No code at the address (a fresh L1) decodes as empty output.
            Err(e) if !e.is_retryable() => false,
            Err(e) => return Err(e),
        };
        if still_there {
            return Ok((recorded, true));
        }
        tracing::info!(record = %record.display(), "recorded L1 deployment is gone; deploying again");
    }
    let deployed = deploy(rpc_url, deployer, params).await?;
    deployed.save(record)?;
    Ok((deployed, false))
}

/// `lanes l1 deploy`: deploys to `l1.rpc_url` with `l1.deploy_private_key`, and when
/// `config_file` is given, writes the addresses into its `[l1]` section (creating the file or
/// section if needed, keeping everything else, comments included).
pub async fn deploy_command(
    l1: &L1Config,
    params: &DeployParams,
    config_file: Option<&Path>,
) -> L1Result<DeployedContracts> {
    let rpc_url = l1
        .rpc_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| L1Error::Config("l1.rpc_url is required to deploy".into()))?;
    let key = l1
        .deploy_private_key
        .as_deref()
        .ok_or_else(|| L1Error::Config("l1.deploy_private_key is required to deploy".into()))?;
    let deployed = deploy(rpc_url, parse_private_key(key)?, params).await?;
    if let Some(path) = config_file {
        write_addresses(path, &deployed)?;
    }
    Ok(deployed)
}

/// Writes `rollup_address` and `portal_address` into the `[l1]` section of the TOML file at
/// `path`, creating what is missing and leaving every other line as it was.
pub fn write_addresses(path: &Path, deployed: &DeployedContracts) -> L1Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(L1Error::Config(format!("reading {}: {e}", path.display()))),
    };
    let updated = upsert_l1_keys(
        &text,
        &[
            ("rollup_address", format!("\"{}\"", deployed.rollup)),
            ("portal_address", format!("\"{}\"", deployed.portal)),
        ],
    );
    std::fs::write(path, updated)
        .map_err(|e| L1Error::Config(format!("writing {}: {e}", path.display())))
}

/// Sets `keys` in the `[l1]` table of a TOML document, line by line, so comments survive (a TOML
/// round trip through a parser would drop them).
fn upsert_l1_keys(text: &str, keys: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let is_header = |line: &str| line.trim_start().starts_with('[');
    let Some(start) = lines
        .iter()
        .position(|l| l.split('#').next().is_some_and(|l| l.trim() == "[l1]"))
    else {
        if lines.last().is_some_and(|l| !l.trim().is_empty()) {
            lines.push(String::new());
        }
        lines.push("[l1]".into());
        lines.extend(keys.iter().map(|(k, v)| format!("{k} = {v}")));
        return lines.join("\n") + "\n";
    };
    for (key, value) in keys {
        let end = lines[start + 1..]
            .iter()
            .position(|l| is_header(l))
            .map_or(lines.len(), |i| start + 1 + i);
        let existing = lines[start + 1..end].iter().position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        match existing {
            Some(i) => lines[start + 1 + i] = format!("{key} = {value}"),
            None => {
                // After the section's last non-blank line, so a blank separator stays in place.
                let mut at = end;
                while at > start + 1 && lines[at - 1].trim().is_empty() {
                    at -= 1;
                }
                lines.insert(at, format!("{key} = {value}"));
            }
        }
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    fn deployed() -> DeployedContracts {
        DeployedContracts {
            rollup: address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
            portal: address!("0xa16E02E87b7454126E5E10d957A927A7F5B5d2be"),
            deploy_block: 1,
            deploy_tx: B256::repeat_byte(7),
        }
    }

    #[test]
    fn toml_snippet_names_both_addresses() {
        let toml = deployed().to_toml();
        assert!(toml.starts_with("[l1]\n"));
        assert!(toml.contains("rollup_address = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\""));
        assert!(toml.contains("portal_address = \"0xa16E02E87b7454126E5E10d957A927A7F5B5d2be\""));
    }

    #[test]
    fn upsert_replaces_inserts_and_appends() {
        let keys = [
            ("rollup_address", "\"R\"".to_string()),
            ("portal_address", "\"P\"".to_string()),
        ];
        // No [l1] section: appended.
        assert_eq!(
            upsert_l1_keys("[rpc]\nport = 1\n", &keys),
            "[rpc]\nport = 1\n\n[l1]\nrollup_address = \"R\"\nportal_address = \"P\"\n"
        );
        // Existing key replaced, missing key inserted before the blank line, comments kept.
        let text = "# top\n[l1]\n# rollup_address = \"0x0\"\nrollup_address = \"old\"\nconfirmations = 2\n\n[batcher]\nenabled = true\n";
        assert_eq!(
            upsert_l1_keys(text, &keys),
            "# top\n[l1]\n# rollup_address = \"0x0\"\nrollup_address = \"R\"\nconfirmations = 2\nportal_address = \"P\"\n\n[batcher]\nenabled = true\n"
        );
        // Empty file.
        assert_eq!(
            upsert_l1_keys("", &keys),
            "[l1]\nrollup_address = \"R\"\nportal_address = \"P\"\n"
        );
    }

    #[test]
    fn written_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lanes.toml");
        std::fs::write(&path, "[l1]\nconfirmations = 3\n").unwrap();
        write_addresses(&path, &deployed()).unwrap();
        // The extracted config, not the text: the file must stay valid for `lanes`.
        let figment = lanes_config::LanesConfig::figment(Some(&path), serde_json::Value::Null);
        let config = lanes_config::LanesConfig::extract(&figment).unwrap();
        assert_eq!(config.l1.confirmations, 3);
        assert_eq!(config.l1.rollup_address, Some(deployed().rollup));
        assert_eq!(config.l1.portal_address, Some(deployed().portal));
    }
}
