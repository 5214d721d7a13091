//! [`TxManager`]: gets one transaction at a time onto L1 and to a confirmation depth.
//!
//! It signs locally with the batcher key (the key never leaves the [`PrivateKeySigner`] and
//! is never logged), sends raw EIP-1559 (calldata) or EIP-4844 (blob) transactions, and then:
//! - polls for a receipt of any of the attempts made for this transaction;
//! - bumps the fees and replaces the transaction (same nonce) when it is not mined within
//!   `resubmit_after` (blob fees are doubled, as nodes require for blob replacements);
//! - on "nonce too low", checks whether one of its own attempts was mined; if not, something
//!   else used the nonce (another batcher instance, a transaction from before a restart): it
//!   re-reads the nonce and simulates again, so a batch L1 has meanwhile recorded comes back as
//!   the contract's revert instead of being posted twice;
//! - on a receipt that disappears while waiting for the confirmation depth (an L1 reorg
//!   dropped it), broadcasts the same signed transaction again.
//!
//! The nonce is read from the latest block, not the pending pool: a transaction left pending
//! by a crashed predecessor is then replaced rather than queued behind.

use std::time::{Duration, Instant};

use alloy::consensus::{
    SignableTransaction, TxEip1559, TxEip4844, TxEip4844Variant, TxEip4844WithSidecar, TxEnvelope,
};
use alloy::eips::eip2718::Encodable2718;
use alloy::eips::eip4844::builder::{SidecarBuilder, SimpleCoder};
use alloy::eips::eip4844::{DATA_GAS_PER_BLOB, FIELD_ELEMENTS_PER_BLOB};
use alloy::eips::eip7594::BlobTransactionSidecarVariant;
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, TxHash, TxKind, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportErrorKind};
use lanes_l1_bridge::{L1Error, L1Receipt, L1Result, decode_revert};
use tracing::{debug, info, warn};

const TARGET: &str = "lanes::batcher::txmgr";

/// Calldata gas per byte used to compare with blobs: the EIP-7623 floor (Prague) for
/// data-heavy transactions, 10 tokens of 4 gas per non-zero byte; compressed batches are
/// almost all non-zero bytes.
pub const CALLDATA_GAS_PER_BYTE: u64 = 40;

/// Bytes of payload one blob carries with alloy's `SimpleCoder`: 31 of every 32 bytes, less
/// the field element holding the length.
pub const BLOB_PAYLOAD_BYTES: usize = (FIELD_ELEMENTS_PER_BLOB as usize - 1) * 31;

/// How batch data travels to L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaMode {
    /// In the calldata of `submitBatch`.
    Calldata,
    /// In EIP-4844 blobs of `submitBatchWithBlobs`.
    Blobs,
    /// Whichever is cheaper at current L1 prices, per batch.
    Auto,
}

impl DaMode {
    /// The mode `[batcher] data_availability` configures.
    pub fn from_config(mode: lanes_config::DataAvailability) -> Self {
        match mode {
            lanes_config::DataAvailability::Calldata => Self::Calldata,
            lanes_config::DataAvailability::Blobs => Self::Blobs,
            lanes_config::DataAvailability::Auto => Self::Auto,
        }
    }
}

/// Limits and policies of a [`TxManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxManagerConfig {
    /// L1 blocks (including the one holding it) before a transaction counts as confirmed.
    pub confirmations: u64,
    /// How often receipts and the L1 head are polled.
    pub poll_interval: Duration,
    /// A transaction not mined after this long is replaced with higher fees.
    pub resubmit_after: Duration,
    /// Fee increase per replacement, percent (nodes require at least 10).
    pub fee_bump_percent: u64,
    /// Fees are never raised above this (wei per gas); a stuck transaction then waits.
    pub max_fee_per_gas: u128,
    /// Longest a single transaction is pursued before giving up with a retryable error.
    pub max_wait: Duration,
    /// Longest wait for one JSON-RPC response.
    pub request_timeout: Duration,
}

impl Default for TxManagerConfig {
    fn default() -> Self {
        Self {
            confirmations: 2,
            poll_interval: Duration::from_secs(1),
            resubmit_after: Duration::from_secs(48),
            fee_bump_percent: 20,
            max_fee_per_gas: 500_000_000_000,
            max_wait: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A transaction to get onto L1.
#[derive(Debug, Clone)]
pub struct TxCandidate {
    /// Called contract.
    pub to: Address,
    /// Call data.
    pub input: Bytes,
    /// Payload to carry in blobs (`None`: a plain EIP-1559 transaction).
    pub blob_data: Option<Bytes>,
}

/// A transaction that reached the confirmation depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// Its receipt.
    pub receipt: L1Receipt,
    /// Transactions signed for it (1 unless fees were bumped or the nonce moved).
    pub attempts: u32,
    /// Blob gas used (0 for calldata).
    pub blob_gas_used: u64,
    /// Wei paid per blob gas.
    pub blob_gas_price: u128,
}

impl Confirmed {
    /// Total wei paid: execution gas plus blob gas.
    pub fn fee_wei(&self) -> u128 {
        u128::from(self.receipt.gas_used) * self.receipt.effective_gas_price
            + u128::from(self.blob_gas_used) * self.blob_gas_price
    }
}

/// Current L1 prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Prices {
    /// Base fee of the latest block.
    pub base_fee: u128,
    /// Suggested priority fee.
    pub priority_fee: u128,
    /// Blob base fee.
    pub blob_base_fee: u128,
}

impl L1Prices {
    /// Which of calldata and blobs costs less for `len` bytes of batch data.
    pub fn cheaper_mode(&self, len: usize) -> DaMode {
        let gas_price = self.base_fee + self.priority_fee;
        let calldata = u128::from(CALLDATA_GAS_PER_BYTE) * len as u128 * gas_price;
        let blobs = len.div_ceil(BLOB_PAYLOAD_BYTES).max(1) as u128;
        let blob = blobs * u128::from(DATA_GAS_PER_BLOB) * self.blob_base_fee
            // A blob transaction spends a little more execution gas (the blobhash loop) and
            // the calldata one pays for its data: the fixed parts are about equal.
            + 5_000 * gas_price;
        if blob < calldata {
            DaMode::Blobs
        } else {
            DaMode::Calldata
        }
    }
}

/// Fees of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fees {
    max_fee: u128,
    priority: u128,
    blob_fee: u128,
}

/// Which blob sidecar form the L1 accepts: EIP-7594 cell proofs (Osaka onwards) or EIP-4844
/// blob proofs. Found by trying; remembered for the next transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SidecarKind {
    Eip7594,
    Eip4844,
}

/// Signs, sends and follows batch transactions; see the module docs.
pub struct TxManager {
    provider: DynProvider,
    signer: PrivateKeySigner,
    address: Address,
    chain_id: u64,
    config: TxManagerConfig,
    sidecar_kind: parking_lot::Mutex<SidecarKind>,
}

impl std::fmt::Debug for TxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TxManager")
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

enum Broadcast {
    Sent,
    NonceTooLow,
    Underpriced,
    SidecarRejected(String),
}

impl TxManager {
    /// Connects to the L1 at `rpc_url` (`http://`) and reads its chain id.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        config: TxManagerConfig,
    ) -> L1Result<Self> {
        let url = lanes_l1_bridge::parse_l1_url(rpc_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| L1Error::Config(format!("HTTP client: {e}")))?;
        // No fillers: nonce, gas and fees are this manager's decisions.
        let provider = ProviderBuilder::default()
            .connect_reqwest(http, url)
            .erased();
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_error("eth_chainId", e))?;
        Ok(Self {
            address: signer.address(),
            provider,
            signer,
            chain_id,
            config,
            sidecar_kind: parking_lot::Mutex::new(SidecarKind::Eip7594),
        })
    }

    /// The batcher account.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The L1 chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The provider (no signer, no fillers), for reads.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The limits in use.
    pub fn config(&self) -> &TxManagerConfig {
        &self.config
    }

    /// The batcher account's balance.
    pub async fn balance(&self) -> L1Result<U256> {
        self.provider
            .get_balance(self.address)
            .await
            .map_err(|e| rpc_error("eth_getBalance", e))
    }

    /// Current base fee, priority fee and blob base fee.
    pub async fn prices(&self) -> L1Result<L1Prices> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc_error("eth_getBlockByNumber", e))?
            .ok_or_else(|| L1Error::Unavailable {
                context: "eth_getBlockByNumber",
                message: "no latest block".into(),
            })?;
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        let priority_fee = self
            .provider
            .get_max_priority_fee_per_gas()
            .await
            .unwrap_or(1_000_000_000);
        let blob_base_fee = self
            .provider
            .get_blob_base_fee()
            .await
            .map_err(|e| rpc_error("eth_blobBaseFee", e))?;
        Ok(L1Prices {
            base_fee,
            priority_fee,
            blob_base_fee,
        })
    }

    async fn fees(&self) -> L1Result<Fees> {
        let prices = self.prices().await?;
        Ok(Fees {
            max_fee: (prices.base_fee * 2 + prices.priority_fee).min(self.config.max_fee_per_gas),
            priority: prices.priority_fee.min(self.config.max_fee_per_gas),
            blob_fee: (prices.blob_base_fee * 2).max(1),
        })
    }

    fn bump(&self, fees: Fees, market: Fees) -> Fees {
        let pct = u128::from(self.config.fee_bump_percent.max(10));
        let up = |v: u128| v + (v * pct).div_ceil(100).max(1);
        let cap = self.config.max_fee_per_gas;
        Fees {
            max_fee: up(fees.max_fee).max(market.max_fee).min(cap),
            priority: up(fees.priority).max(market.priority).min(cap),
            blob_fee: (fees.blob_fee * 2).max(market.blob_fee),
        }
    }

    async fn nonce(&self) -> L1Result<u64> {
        self.provider
            .get_transaction_count(self.address)
            .block_id(BlockId::latest())
            .await
            .map_err(|e| rpc_error("eth_getTransactionCount", e))
    }

    async fn sidecar(&self, data: Bytes) -> L1Result<BlobTransactionSidecarVariant> {
        let kind = *self.sidecar_kind.lock();
        crate::on_big_stack(move || {
            let builder = SidecarBuilder::<SimpleCoder>::from_slice(&data);
            let sidecar = match kind {
                SidecarKind::Eip7594 => builder
                    .build_7594()
                    .map(BlobTransactionSidecarVariant::Eip7594),
                SidecarKind::Eip4844 => builder
                    .build_4844()
                    .map(BlobTransactionSidecarVariant::Eip4844),
            };
            sidecar.map_err(|e| L1Error::Config(format!("building the blob sidecar: {e}")))
        })
        .await
    }

    async fn estimate(
        &self,
        candidate: &TxCandidate,
        hashes: &[B256],
        fees: Fees,
    ) -> L1Result<u64> {
        let mut request = TransactionRequest::default()
            .with_from(self.address)
            .with_to(candidate.to)
            .with_input(candidate.input.clone())
            .with_max_fee_per_gas(fees.max_fee)
            .with_max_priority_fee_per_gas(fees.priority);
        if !hashes.is_empty() {
            request.blob_versioned_hashes = Some(hashes.to_vec());
            request.max_fee_per_blob_gas = Some(fees.blob_fee);
        }
        let gas = self
            .provider
            .estimate_gas(request)
            .await
            .map_err(|e| rpc_error("eth_estimateGas", e))?;
        // State can shift between estimate and inclusion (a cold slot warmed by nobody).
        Ok(gas + gas / 5)
    }

    fn sign(
        &self,
        candidate: &TxCandidate,
        sidecar: Option<&BlobTransactionSidecarVariant>,
        hashes: &[B256],
        nonce: u64,
        gas_limit: u64,
        fees: Fees,
    ) -> L1Result<(TxHash, Vec<u8>)> {
        let sign_error = |e: alloy::signers::Error| L1Error::Config(format!("signing: {e}"));
        let envelope: TxEnvelope = match sidecar {
            None => {
                let tx = TxEip1559 {
                    chain_id: self.chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas: fees.max_fee,
                    max_priority_fee_per_gas: fees.priority,
                    to: TxKind::Call(candidate.to),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input: candidate.input.clone(),
                };
                let signature = self
                    .signer
                    .sign_hash_sync(&tx.signature_hash())
                    .map_err(sign_error)?;
                tx.into_signed(signature).into()
            }
            Some(sidecar) => {
                let tx = TxEip4844 {
                    chain_id: self.chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas: fees.max_fee,
                    max_priority_fee_per_gas: fees.priority,
                    to: candidate.to,
                    value: U256::ZERO,
                    access_list: Default::default(),
                    blob_versioned_hashes: hashes.to_vec(),
                    max_fee_per_blob_gas: fees.blob_fee,
                    input: candidate.input.clone(),
                };
                let signature = self
                    .signer
                    .sign_hash_sync(&tx.signature_hash())
                    .map_err(sign_error)?;
                let variant = TxEip4844Variant::TxEip4844WithSidecar(
                    TxEip4844WithSidecar::from_tx_and_sidecar(tx, sidecar.clone()),
                );
                TxEnvelope::Eip4844(variant.into_signed(signature))
            }
        };
        Ok((*envelope.tx_hash(), envelope.encoded_2718()))
    }

    async fn broadcast(&self, raw: &[u8]) -> L1Result<Broadcast> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(Broadcast::Sent),
            Err(RpcError::ErrorResp(payload)) => {
                let message = payload.message.to_lowercase();
                if message.contains("already known")
                    || message.contains("already imported")
                    || message.contains("known transaction")
                {
                    Ok(Broadcast::Sent)
                } else if message.contains("nonce too low") || message.contains("nonce is too low")
                {
                    Ok(Broadcast::NonceTooLow)
                } else if message.contains("underpriced") {
                    Ok(Broadcast::Underpriced)
                } else if message.contains("sidecar")
                    || message.contains("cell")
                    || message.contains("7594")
                    || message.contains("blob proof")
                    || message.contains("blob version")
                {
                    Ok(Broadcast::SidecarRejected(payload.message.to_string()))
                } else {
                    Err(rpc_error(
                        "eth_sendRawTransaction",
                        RpcError::ErrorResp(payload),
                    ))
                }
            }
            Err(e) => Err(rpc_error("eth_sendRawTransaction", e)),
        }
    }

    async fn receipt(&self, hash: TxHash) -> L1Result<Option<TransactionReceipt>> {
        let receipt = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| rpc_error("eth_getTransactionReceipt", e))?;
        Ok(receipt.filter(|r| r.block_number.is_some() && r.block_hash.is_some()))
    }

    async fn find_mined(&self, attempts: &[TxHash]) -> L1Result<Option<TransactionReceipt>> {
        for hash in attempts.iter().rev() {
            if let Some(receipt) = self.receipt(*hash).await? {
                return Ok(Some(receipt));
            }
        }
        Ok(None)
    }

    /// Waits until `receipt` is `confirmations` deep; `None` if it left the chain meanwhile.
    async fn confirm(
        &self,
        receipt: TransactionReceipt,
        deadline: Instant,
    ) -> L1Result<Option<TransactionReceipt>> {
        let hash = receipt.transaction_hash;
        let mut current = receipt;
        loop {
            let head = self
                .provider
                .get_block_number()
                .await
                .map_err(|e| rpc_error("eth_blockNumber", e))?;
            let Some(now) = self.receipt(hash).await? else {
                return Ok(None);
            };
            if now.block_hash != current.block_hash {
                debug!(target: TARGET, %hash, "batch transaction moved to another L1 block");
            }
            current = now;
            let mined_in = current.block_number.unwrap_or_default();
            if head + 1 >= mined_in + self.config.confirmations.max(1) {
                return Ok(Some(current));
            }
            if Instant::now() >= deadline {
                return Err(L1Error::ReceiptTimeout {
                    tx_hash: hash,
                    waited: self.config.max_wait,
                });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Sends `candidate` and follows it to the confirmation depth (see the module docs).
    ///
    /// Errors: a revert in simulation ([`L1Error::Reverted`], nothing sent), a mined but
    /// failed transaction ([`L1Error::TxFailed`]), an unreachable L1 or a transaction not
    /// confirmed within `max_wait` (retryable).
    pub async fn send(&self, candidate: &TxCandidate) -> L1Result<Confirmed> {
        let started = Instant::now();
        let deadline = started + self.config.max_wait;
        let mut sidecar = match &candidate.blob_data {
            Some(data) => Some(self.sidecar(data.clone()).await?),
            None => None,
        };
        let mut hashes: Vec<B256> = sidecar
            .as_ref()
            .map(|s| s.versioned_hashes().collect())
            .unwrap_or_default();
        let mut fees = self.fees().await?;
        let mut nonce = self.nonce().await?;
        let gas_limit = self.estimate(candidate, &hashes, fees).await?;
        let mut attempts: Vec<TxHash> = Vec::new();
        let mut sidecar_switched = false;
        loop {
            if Instant::now() >= deadline {
                return Err(L1Error::ReceiptTimeout {
                    tx_hash: attempts.last().copied().unwrap_or_default(),
                    waited: started.elapsed(),
                });
            }
            let (hash, raw) =
                self.sign(candidate, sidecar.as_ref(), &hashes, nonce, gas_limit, fees)?;
            match self.broadcast(&raw).await? {
                Broadcast::Sent => {
                    if !attempts.contains(&hash) {
                        attempts.push(hash);
                    }
                    debug!(target: TARGET, %hash, nonce, max_fee = fees.max_fee, attempt = attempts.len(), "batch transaction sent");
                }
                Broadcast::NonceTooLow => {
                    if let Some(receipt) = self.find_mined(&attempts).await? {
                        if let Some(done) = self.finish(receipt, &attempts, deadline).await? {
                            return Ok(done);
                        }
                        continue;
                    }
                    let fresh = self.nonce().await?;
                    warn!(target: TARGET, nonce, fresh, "nonce already used by another transaction; re-simulating");
                    nonce = fresh;
                    // Reverts here if what we are posting was recorded meanwhile.
                    self.estimate(candidate, &hashes, fees).await?;
                    continue;
                }
                Broadcast::Underpriced => {
                    let market = self.fees().await?;
                    let bumped = self.bump(fees, market);
                    if bumped == fees {
                        warn!(target: TARGET, "replacement underpriced and fees at the cap; waiting");
                    } else {
                        fees = bumped;
                        continue;
                    }
                }
                Broadcast::SidecarRejected(message) => {
                    let Some(data) = candidate.blob_data.as_ref().filter(|_| !sidecar_switched)
                    else {
                        return Err(L1Error::Node {
                            context: "eth_sendRawTransaction",
                            code: 0,
                            message,
                        });
                    };
                    let kind = {
                        let mut kind = self.sidecar_kind.lock();
                        *kind = match *kind {
                            SidecarKind::Eip7594 => SidecarKind::Eip4844,
                            SidecarKind::Eip4844 => SidecarKind::Eip7594,
                        };
                        *kind
                    };
                    info!(target: TARGET, ?kind, %message, "L1 refused the blob sidecar form; switching");
                    sidecar_switched = true;
                    let built = self.sidecar(data.clone()).await?;
                    hashes = built.versioned_hashes().collect();
                    sidecar = Some(built);
                    continue;
                }
            }

            // Wait for inclusion, then for depth; replace if it takes too long.
            let resubmit_at = Instant::now() + self.config.resubmit_after;
            loop {
                if let Some(receipt) = self.find_mined(&attempts).await? {
                    match self.finish(receipt, &attempts, deadline).await? {
                        Some(done) => return Ok(done),
                        // Reorged out: broadcast again (same nonce and fees).
                        None => break,
                    }
                }
                if Instant::now() >= resubmit_at || Instant::now() >= deadline {
                    let market = self.fees().await?;
                    let bumped = self.bump(fees, market);
                    info!(target: TARGET, nonce, old = fees.max_fee, new = bumped.max_fee, "batch transaction not mined in time; replacing with higher fees");
                    fees = bumped;
                    break;
                }
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
    }

    async fn finish(
        &self,
        receipt: TransactionReceipt,
        attempts: &[TxHash],
        deadline: Instant,
    ) -> L1Result<Option<Confirmed>> {
        let Some(receipt) = self.confirm(receipt, deadline).await? else {
            warn!(target: TARGET, "batch transaction left the L1 chain (reorg); sending it again");
            return Ok(None);
        };
        let l1 = L1Receipt {
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap_or_default(),
            block_hash: receipt.block_hash.unwrap_or_default(),
            gas_used: receipt.gas_used,
            effective_gas_price: receipt.effective_gas_price,
            success: receipt.status(),
        };
        if !l1.success {
            return Err(L1Error::TxFailed {
                context: "batch transaction",
                tx_hash: l1.tx_hash,
            });
        }
        Ok(Some(Confirmed {
            receipt: l1,
            attempts: attempts.len() as u32,
            blob_gas_used: receipt.blob_gas_used.unwrap_or_default(),
            blob_gas_price: receipt.blob_gas_price.unwrap_or_default(),
        }))
    }
}

/// Classifies a JSON-RPC error like the L1 bridge does.
pub(crate) fn rpc_error(context: &'static str, error: RpcError<TransportErrorKind>) -> L1Error {
    match error {
        RpcError::ErrorResp(payload) => {
            if let Some(data) = payload.as_revert_data() {
                return reverted(context, data);
            }
            if payload.message.contains("revert") {
                return L1Error::Reverted {
                    context,
                    reason: payload.message.to_string(),
                    name: None,
                    data: Bytes::new(),
                };
            }
            L1Error::Node {
                context,
                code: payload.code,
                message: payload.message.to_string(),
            }
        }
        RpcError::Transport(_) | RpcError::NullResp | RpcError::DeserError { .. } => {
            L1Error::Unavailable {
                context,
                message: error.to_string(),
            }
        }
        other => L1Error::Config(format!("{context}: {other}")),
    }
}

/// Classifies an error of a contract binding call.
pub(crate) fn contract_error(context: &'static str, error: alloy::contract::Error) -> L1Error {
    match error {
        alloy::contract::Error::TransportError(e) => rpc_error(context, e),
        other => L1Error::InvalidData {
            context,
            message: other.to_string(),
        },
    }
}

fn reverted(context: &'static str, data: Bytes) -> L1Error {
    let (name, reason) = match decode_revert(&data) {
        Some((name, reason)) => (Some(name), reason),
        None => (None, format!("unknown revert data {data}")),
    };
    L1Error::Reverted {
        context,
        reason,
        name,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_win_when_blob_gas_is_cheap_and_calldata_when_blobs_are_dear() {
        let cheap_blobs = L1Prices {
            base_fee: 10_000_000_000,
            priority_fee: 1_000_000_000,
            blob_base_fee: 1,
        };
        assert_eq!(cheap_blobs.cheaper_mode(100_000), DaMode::Blobs);
        let dear_blobs = L1Prices {
            blob_base_fee: 1_000_000_000_000,
            ..cheap_blobs
        };
        assert_eq!(dear_blobs.cheaper_mode(100_000), DaMode::Calldata);
        // A tiny batch pays for a whole blob: calldata is cheaper even at moderate blob fees.
        let moderate = L1Prices {
            blob_base_fee: 1_000_000_000,
            ..cheap_blobs
        };
        assert_eq!(moderate.cheaper_mode(200), DaMode::Calldata);
        assert_eq!(moderate.cheaper_mode(120_000), DaMode::Blobs);
    }

    #[test]
    fn blob_capacity_matches_the_coder() {
        let data = vec![0xabu8; BLOB_PAYLOAD_BYTES];
        let blobs = SidecarBuilder::<SimpleCoder>::from_slice(&data).take();
        assert_eq!(blobs.len(), 1);
        let data = vec![0xabu8; BLOB_PAYLOAD_BYTES + 40];
        assert_eq!(
            SidecarBuilder::<SimpleCoder>::from_slice(&data)
                .take()
                .len(),
            2
        );
    }
}
