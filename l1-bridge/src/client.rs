//! [`L1Client`], the seam between lanes and L1, and [`AlloyL1Client`], its JSON-RPC-over-HTTP
//! implementation.

use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use alloy::transports::http::reqwest;
use futures::future::BoxFuture;

use crate::bindings::{LanesPortal, LanesRollup};
use crate::error::{L1Error, L1Result};
use crate::types::{
    BatchHeader, ForcedInclusion, L1BlockRef, L1Contracts, L1Message, L1Receipt, LastBatch,
};

/// A boxed future of an L1 result, so [`L1Client`] can be used as `Arc<dyn L1Client>`.
pub type L1Future<'a, T> = BoxFuture<'a, L1Result<T>>;

/// Everything lanes asks of L1. The watcher reads blocks and portal events through it; the
/// batcher reads the rollup's state and posts batches. Tests substitute fakes.
pub trait L1Client: Send + Sync {
    /// The rollup and portal this client talks to.
    fn contracts(&self) -> L1Contracts;

    /// The account transactions are sent from, if the client has a signer.
    fn signer_address(&self) -> Option<Address>;

    /// `eth_chainId`.
    fn chain_id(&self) -> L1Future<'_, u64>;

    /// Number of the latest L1 block.
    fn latest_block_number(&self) -> L1Future<'_, u64>;

    /// Block `number`, or `None` when L1 has no such block (yet, or any more after a reorg).
    fn block(&self, number: u64) -> L1Future<'_, Option<L1BlockRef>>;

    /// Hash of block `number`, or `None` when L1 has no such block.
    fn block_hash(&self, number: u64) -> L1Future<'_, Option<B256>> {
        Box::pin(async move { Ok(self.block(number).await?.map(|b| b.hash)) })
    }

    /// The portal's L1 -> L2 messages (`TransactionDeposited` events) in blocks `from..=to`, in
    /// log order.
    fn portal_messages(&self, from: u64, to: u64) -> L1Future<'_, Vec<L1Message>>;

    /// Balance of `address` at the latest block.
    fn balance(&self, address: Address) -> L1Future<'_, U256>;

    /// `LanesRollup.lastBatch()`.
    fn last_batch(&self) -> L1Future<'_, LastBatch>;

    /// `LanesRollup.nextForcedInclusion()`.
    fn next_forced_inclusion(&self) -> L1Future<'_, ForcedInclusion>;

    /// `LanesRollup.isFinalized(batch_index)`.
    fn is_finalized(&self, batch_index: u64) -> L1Future<'_, bool>;

    /// Fills (nonce, gas, fees, chain id), signs with the client's signer and broadcasts `tx`;
    /// returns its hash without waiting for it to be mined.
    fn send_transaction(&self, tx: TransactionRequest) -> L1Future<'_, TxHash>;

    /// The receipt of `tx_hash`, or `None` while it is not mined.
    fn receipt(&self, tx_hash: TxHash) -> L1Future<'_, Option<L1Receipt>>;

    /// Posts a batch whose data travels in calldata (`submitBatch`) and waits until it is mined.
    /// A batch the contract refuses fails with [`L1Error::Reverted`] naming the custom error
    /// (`NotSequencer`, `UnexpectedBatchIndex`, `ForcedInclusionMissed`, ...) before anything is
    /// sent.
    fn submit_batch(&self, header: BatchHeader, data: Bytes) -> L1Future<'_, L1Receipt>;
}

/// Limits of an [`AlloyL1Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest wait for one JSON-RPC response; a hung L1 then counts as unreachable.
    pub request_timeout: Duration,
    /// Longest wait for a sent transaction's receipt.
    pub receipt_timeout: Duration,
    /// How often a pending transaction's receipt is polled.
    pub receipt_poll_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            receipt_timeout: Duration::from_secs(120),
            receipt_poll_interval: Duration::from_millis(250),
        }
    }
}

/// [`L1Client`] over alloy's HTTP provider (polling only: no websocket, no subscriptions).
#[derive(Debug, Clone)]
pub struct AlloyL1Client {
    provider: DynProvider,
    contracts: L1Contracts,
    signer: Option<Address>,
    options: ClientOptions,
}

impl AlloyL1Client {
    /// A read-only client for `rpc_url` (`http://...`).
    pub fn connect(rpc_url: &str, contracts: L1Contracts) -> L1Result<Self> {
        Self::build(rpc_url, contracts, None, ClientOptions::default())
    }

    /// A client that signs transactions with `signer`.
    pub fn connect_with_signer(
        rpc_url: &str,
        contracts: L1Contracts,
        signer: PrivateKeySigner,
    ) -> L1Result<Self> {
        Self::build(rpc_url, contracts, Some(signer), ClientOptions::default())
    }

    /// A client with explicit limits.
    pub fn build(
        rpc_url: &str,
        contracts: L1Contracts,
        signer: Option<PrivateKeySigner>,
        options: ClientOptions,
    ) -> L1Result<Self> {
        let (provider, signer) = connect_provider(rpc_url, signer, options.request_timeout)?;
        Ok(Self {
            provider,
            contracts,
            signer,
            options,
        })
    }

    /// The underlying provider, for calls this client does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The rollup contract binding.
    pub fn rollup(&self) -> LanesRollup::LanesRollupInstance<DynProvider> {
        LanesRollup::new(self.contracts.rollup, self.provider.clone())
    }

    /// The portal contract binding.
    pub fn portal(&self) -> LanesPortal::LanesPortalInstance<DynProvider> {
        LanesPortal::new(self.contracts.portal, self.provider.clone())
    }

    /// Checks that the configured addresses are a lanes rollup and its own portal, so a typo in
    /// the config fails at start instead of as silently missing deposits.
    pub async fn check_contracts(&self) -> L1Result<()> {
        let portal = self
            .rollup()
            .portal()
            .call()
            .await
            .map_err(|e| L1Error::contract("LanesRollup.portal", e))?;
        if portal != self.contracts.portal {
            return Err(L1Error::Config(format!(
                "rollup {} uses portal {portal}, but {} is configured",
                self.contracts.rollup, self.contracts.portal
            )));
        }
        Ok(())
    }

    /// The first block at which `address` has code: the deploy block of a contract, where the
    /// watcher starts when it has no cursor yet. Binary search over `eth_getCode`, so it needs
    /// an archive node (anvil is one).
    pub async fn deployment_block(&self, address: Address) -> L1Result<u64> {
        let has_code = async |block: u64| -> L1Result<bool> {
            let code = self
                .provider
                .get_code_at(address)
                .block_id(BlockId::number(block))
                .await
                .map_err(|e| L1Error::rpc("eth_getCode", e))?;
            Ok(!code.is_empty())
        };
        let (mut lo, mut hi) = (0, self.latest_block_number().await?);
        if !has_code(hi).await? {
            return Err(L1Error::InvalidData {
                context: "deployment_block",
                message: format!("no code at {address}"),
            });
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if has_code(mid).await? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// Polls for the receipt of `tx_hash` until it is mined or the receipt timeout passes.
    pub async fn wait_for_receipt(&self, tx_hash: TxHash) -> L1Result<L1Receipt> {
        wait_for_receipt(&self.provider, tx_hash, &self.options).await
    }

    /// The part of [`L1Client::submit_batch`] that broadcasts, for callers that manage the
    /// transaction's life themselves (fee bumps, replacement): returns the hash once sent.
    pub async fn send_batch(&self, header: BatchHeader, data: Bytes) -> L1Result<TxHash> {
        self.require_signer()?;
        let pending = self
            .rollup()
            .submitBatch(header.to_sol(), data)
            .send()
            .await
            .map_err(|e| L1Error::contract("submitBatch", e))?;
        Ok(*pending.tx_hash())
    }

    fn require_signer(&self) -> L1Result<Address> {
        self.signer
            .ok_or_else(|| L1Error::Config("this L1 client has no signer".into()))
    }

    fn boxed<'a, T, F>(&'a self, f: F) -> L1Future<'a, T>
    where
        F: Future<Output = L1Result<T>> + Send + 'a,
    {
        Box::pin(f)
    }
}

impl L1Client for AlloyL1Client {
    fn contracts(&self) -> L1Contracts {
        self.contracts
    }

    fn signer_address(&self) -> Option<Address> {
        self.signer
    }

    fn chain_id(&self) -> L1Future<'_, u64> {
        self.boxed(async move {
            self.provider
                .get_chain_id()
                .await
                .map_err(|e| L1Error::rpc("eth_chainId", e))
        })
    }

    fn latest_block_number(&self) -> L1Future<'_, u64> {
        self.boxed(async move {
            self.provider
                .get_block_number()
                .await
                .map_err(|e| L1Error::rpc("eth_blockNumber", e))
        })
    }

    fn block(&self, number: u64) -> L1Future<'_, Option<L1BlockRef>> {
        self.boxed(async move {
            let block = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(number))
                .await
                .map_err(|e| L1Error::rpc("eth_getBlockByNumber", e))?;
            Ok(block.map(|b| L1BlockRef {
                number: b.header.number,
                hash: b.header.hash,
                parent_hash: b.header.parent_hash,
                timestamp: b.header.timestamp,
            }))
        })
    }

    fn portal_messages(&self, from: u64, to: u64) -> L1Future<'_, Vec<L1Message>> {
        self.boxed(async move {
            let filter = Filter::new()
                .address(self.contracts.portal)
                .event_signature(LanesPortal::TransactionDeposited::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| L1Error::rpc("eth_getLogs", e))?;
            let mut messages = logs
                .iter()
                .filter(|log| !log.removed)
                .map(L1Message::from_log)
                .collect::<L1Result<Vec<_>>>()?;
            // Nodes return logs in order, but nothing in the spec says so.
            messages.sort_by_key(|m| (m.l1_block_number, m.log_index));
            Ok(messages)
        })
    }

    fn balance(&self, address: Address) -> L1Future<'_, U256> {
        self.boxed(async move {
            self.provider
                .get_balance(address)
                .await
                .map_err(|e| L1Error::rpc("eth_getBalance", e))
        })
    }

    fn last_batch(&self) -> L1Future<'_, LastBatch> {
        self.boxed(async move {
            let last = self
                .rollup()
                .lastBatch()
                .call()
                .await
                .map_err(|e| L1Error::contract("lastBatch", e))?;
            Ok(LastBatch {
                batch_index: to_u64("lastBatch.batchIndex", last.batchIndex)?,
                last_block: last.lastBlock,
                state_root: last.stateRoot,
            })
        })
    }

    fn next_forced_inclusion(&self) -> L1Future<'_, ForcedInclusion> {
        self.boxed(async move {
            let next = self
                .rollup()
                .nextForcedInclusion()
                .call()
                .await
                .map_err(|e| L1Error::contract("nextForcedInclusion", e))?;
            Ok(ForcedInclusion {
                pending: next.pending,
                deposit_nonce: to_u64("nextForcedInclusion.depositNonce", next.depositNonce)?,
                deadline: to_u64("nextForcedInclusion.deadline", next.deadline)?,
            })
        })
    }

    fn is_finalized(&self, batch_index: u64) -> L1Future<'_, bool> {
        self.boxed(async move {
            self.rollup()
                .isFinalized(U256::from(batch_index))
                .call()
                .await
                .map_err(|e| L1Error::contract("isFinalized", e))
        })
    }

    fn send_transaction(&self, tx: TransactionRequest) -> L1Future<'_, TxHash> {
        self.boxed(async move {
            self.require_signer()?;
            let pending = self
                .provider
                .send_transaction(tx)
                .await
                .map_err(|e| L1Error::rpc("eth_sendTransaction", e))?;
            Ok(*pending.tx_hash())
        })
    }

    fn receipt(&self, tx_hash: TxHash) -> L1Future<'_, Option<L1Receipt>> {
        self.boxed(async move {
            let receipt = self
                .provider
                .get_transaction_receipt(tx_hash)
                .await
                .map_err(|e| L1Error::rpc("eth_getTransactionReceipt", e))?;
            Ok(receipt.as_ref().and_then(to_receipt))
        })
    }

    fn submit_batch(&self, header: BatchHeader, data: Bytes) -> L1Future<'_, L1Receipt> {
        self.boxed(async move {
            let tx_hash = self.send_batch(header, data).await?;
            let receipt = self.wait_for_receipt(tx_hash).await?;
            if !receipt.success {
                return Err(L1Error::TxFailed {
                    context: "submitBatch",
                    tx_hash,
                });
            }
            Ok(receipt)
        })
    }
}

/// Parses a private key given as `0x` and 64 hex digits.
pub fn parse_private_key(key: &str) -> L1Result<PrivateKeySigner> {
    // The key itself never goes into the error: errors end up in logs.
    PrivateKeySigner::from_str(key.trim()).map_err(|_| {
        L1Error::Config("malformed private key (expected 0x and 64 hex digits)".into())
    })
}

/// An L1 JSON-RPC URL, which must be `http://`: the workspace builds reqwest without TLS, and
/// websockets are not used.
pub fn parse_l1_url(rpc_url: &str) -> L1Result<reqwest::Url> {
    let url = reqwest::Url::parse(rpc_url)
        .map_err(|e| L1Error::Config(format!("L1 RPC URL {rpc_url:?}: {e}")))?;
    if url.scheme() != "http" {
        return Err(L1Error::Config(format!(
            "L1 RPC URL {rpc_url:?}: only http:// is supported"
        )));
    }
    Ok(url)
}

/// An HTTP provider for `rpc_url` with bounded request times, signing with `signer` if given.
pub(crate) fn connect_provider(
    rpc_url: &str,
    signer: Option<PrivateKeySigner>,
    request_timeout: Duration,
) -> L1Result<(DynProvider, Option<Address>)> {
    let url = parse_l1_url(rpc_url)?;
    let http = reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(request_timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| L1Error::Config(format!("HTTP client: {e}")))?;
    Ok(match signer {
        Some(signer) => {
            let address = signer.address();
            let provider = ProviderBuilder::new()
                .wallet(EthereumWallet::from(signer))
                .connect_reqwest(http, url)
                .erased();
            (provider, Some(address))
        }
        None => (
            ProviderBuilder::new().connect_reqwest(http, url).erased(),
            None,
        ),
    })
}

pub(crate) async fn wait_for_receipt(
    provider: &DynProvider,
    tx_hash: TxHash,
    options: &ClientOptions,
) -> L1Result<L1Receipt> {
    let start = Instant::now();
    loop {
        let receipt = provider
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(|e| L1Error::rpc("eth_getTransactionReceipt", e))?;
        if let Some(receipt) = receipt.as_ref().and_then(to_receipt) {
            return Ok(receipt);
        }
        if start.elapsed() >= options.receipt_timeout {
            return Err(L1Error::ReceiptTimeout {
                tx_hash,
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(options.receipt_poll_interval).await;
    }
}

/// `None` for a receipt without a block (some nodes return those for pending transactions).
fn to_receipt(receipt: &TransactionReceipt) -> Option<L1Receipt> {
    Some(L1Receipt {
        tx_hash: receipt.transaction_hash,
        block_number: receipt.block_number?,
        block_hash: receipt.block_hash?,
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        success: receipt.status(),
    })
}

fn to_u64(context: &'static str, value: U256) -> L1Result<u64> {
    u64::try_from(value).map_err(|_| L1Error::InvalidData {
        context,
        message: format!("{value} does not fit 64 bits"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACTS: L1Contracts = L1Contracts {
        rollup: Address::ZERO,
        portal: Address::ZERO,
    };

    #[test]
    fn rejects_unusable_urls_and_keys() {
        let err = AlloyL1Client::connect("https://mainnet.example", CONTRACTS).unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(AlloyL1Client::connect("not a url", CONTRACTS).is_err());
        assert!(AlloyL1Client::connect("http://127.0.0.1:1", CONTRACTS).is_ok());

        let err = parse_private_key("0x1234").unwrap_err();
        assert!(!err.to_string().contains("1234"), "{err}");
        let key =
            parse_private_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        assert_eq!(
            key.address(),
            alloy::primitives::address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
    }

    #[tokio::test]
    async fn unreachable_l1_is_retryable() {
        // Port 1 is reserved (tcpmux) and closed on any sane test machine.
        let client = AlloyL1Client::connect("http://127.0.0.1:1", CONTRACTS).unwrap();
        let err = client.latest_block_number().await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        let client = AlloyL1Client::connect("http://127.0.0.1:1", CONTRACTS).unwrap();
        let err = client
            .send_transaction(TransactionRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, L1Error::Config(_)), "{err:?}");
    }
}
