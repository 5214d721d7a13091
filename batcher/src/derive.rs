//! Derivation: rebuild the L2 chain from what L1 holds, and nothing else.
//!
//! 1. [`Deriver::batches`] reads the rollup's `BatchSubmitted` and `BatchesReverted` events
//!    in L1 order and keeps the batches still recorded (a revert drops the batches from its
//!    index on; their replacements follow).
//! 2. For each batch it fetches the data: the calldata of the submitting transaction
//!    (`submitBatch(header, data)`, checked against the event's `dataHash = keccak256(data)`),
//!    or its blobs (each checked against the transaction's versioned hash by recomputing the
//!    KZG commitment, and the list against `dataHash`). Blobs are not part of an execution
//!    node's chain: they come from a [`BlobFetcher`]. [`AnvilBlobFetcher`] reads them with
//!    anvil's `anvil_getBlobsByTransactionHash`; against a real L1 a beacon-API fetcher
//!    (`/eth/v1/beacon/blob_sidecars/{slot}`) is needed and not written yet.
//! 3. [`blocks_of`] decodes the batches into the ordered list of L2 blocks and checks that they
//!    chain up: consecutive indices and block numbers, each batch's previous state root equal
//!    to the last one's new root, the data's block range, parent hash and final state root
//!    equal to what the event recorded.
//! 4. A [`BlockSink`] executes them. [`StorageReplay`] re-executes each block on a RocksDB
//!    [`Storage`] with the sequential executor and refuses the first one whose state root or
//!    block hash differs from the posted one (the hash covers the whole header: transactions,
//!    receipts, gas, logs bloom).
//!
//! Lanes blocks cannot go through [`lanes_executor::import_block`]: sub-second blocks share a
//! timestamp, which Ethereum's header rules forbid, and the import computes the state root
//! from the full state; replay uses the environment posted in the batch and the incremental
//! root instead.

use std::sync::Arc;

use alloy::consensus::Transaction as _;
use alloy::eips::eip2718::Decodable2718;
use alloy::eips::eip4844::builder::{SidecarCoder, SimpleCoder};
use alloy::eips::eip4844::env_settings::EnvKzgSettings;
use alloy::eips::eip4844::{Blob, c_kzg, kzg_to_versioned_hash};
use alloy::primitives::{Address, B256, Bytes, TxHash, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use futures::future::BoxFuture;
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, RecoveredTx, SequentialExecutor, SkipReason, Storage,
    TxSource,
};
use lanes_l1_bridge::BatchHeader;
use lanes_l1_bridge::bindings::LanesRollup;
use tracing::{debug, info};

use crate::error::{BatcherError, BatcherResult};
use crate::format::{BatchData, DEFAULT_MAX_DECOMPRESSED};
use crate::txmgr::rpc_error;

const TARGET: &str = "lanes::derive";

/// Where a batch's data was posted (the event's `dataAvailability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLocation {
    /// Calldata of the submitting transaction.
    Calldata,
    /// Blobs of the submitting transaction.
    Blobs,
}

/// A batch recorded on L1, with its decoded data.
#[derive(Debug, Clone)]
pub struct PostedBatch {
    /// The header as recorded by `BatchSubmitted`.
    pub header: BatchHeader,
    /// The event's commitment to the data.
    pub data_hash: B256,
    /// Calldata or blobs.
    pub location: DataLocation,
    /// L1 block of the submission.
    pub l1_block: u64,
    /// The submitting transaction.
    pub l1_tx: TxHash,
    /// The decoded batch.
    pub data: BatchData,
}

/// One L2 block to re-execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedBlock {
    /// Its environment (number and parent hash included).
    pub env: BlockEnvInput,
    /// Its transactions, EIP-2718 encoded, in order.
    pub transactions: Vec<Bytes>,
    /// The state root the sequencer posted for it.
    pub state_root: B256,
    /// The block hash the sequencer posted for it.
    pub hash: B256,
    /// The batch it came in.
    pub batch_index: u64,
}

impl DerivedBlock {
    /// Block number.
    pub fn number(&self) -> u64 {
        self.env.number
    }
}

/// Fetches the blobs of an L1 transaction.
pub trait BlobFetcher: Send + Sync {
    /// The blobs of `tx` (whose versioned hashes are `hashes`), in order, each as its
    /// 131,072 bytes (on the heap: a `Blob` value is too large for async stacks).
    fn blobs<'a>(
        &'a self,
        tx: TxHash,
        hashes: &'a [B256],
    ) -> BoxFuture<'a, BatcherResult<Vec<Bytes>>>;
}

/// Blobs from anvil's `anvil_getBlobsByTransactionHash` (anvil keeps every blob it mined).
#[derive(Debug, Clone)]
pub struct AnvilBlobFetcher {
    provider: DynProvider,
}

impl AnvilBlobFetcher {
    /// A fetcher asking the anvil behind `provider`.
    pub fn new(provider: DynProvider) -> Self {
        Self { provider }
    }
}

impl BlobFetcher for AnvilBlobFetcher {
    fn blobs<'a>(
        &'a self,
        tx: TxHash,
        _hashes: &'a [B256],
    ) -> BoxFuture<'a, BatcherResult<Vec<Bytes>>> {
        Box::pin(async move {
            let blobs: Option<Vec<Bytes>> = self
                .provider
                .raw_request("anvil_getBlobsByTransactionHash".into(), (tx,))
                .await
                .map_err(|e| rpc_error("anvil_getBlobsByTransactionHash", e))?;
            blobs.ok_or_else(|| {
                BatcherError::InvalidBatch(format!("the L1 node has no blobs for {tx}"))
            })
        })
    }
}

/// Reads batches from L1; see the module docs.
pub struct Deriver {
    provider: DynProvider,
    rollup: Address,
    from_block: u64,
    max_decompressed: usize,
    log_range: u64,
    blobs: Arc<dyn BlobFetcher>,
}

impl std::fmt::Debug for Deriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deriver")
            .field("rollup", &self.rollup)
            .field("from_block", &self.from_block)
            .finish_non_exhaustive()
    }
}

impl Deriver {
    /// Reads the rollup at `rollup` through `provider`, from L1 block `from_block` (the
    /// rollup's deploy block: no batch is older). Blobs come from anvil by default.
    pub fn new(provider: DynProvider, rollup: Address, from_block: u64) -> Self {
        Self {
            blobs: Arc::new(AnvilBlobFetcher::new(provider.clone())),
            provider,
            rollup,
            from_block,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            log_range: 10_000,
        }
    }

    /// A deriver over a fresh HTTP connection to `rpc_url`.
    pub fn connect(rpc_url: &str, rollup: Address, from_block: u64) -> BatcherResult<Self> {
        let url = rpc_url.parse().map_err(|e| {
            lanes_l1_bridge::L1Error::Config(format!("L1 RPC URL {rpc_url:?}: {e}"))
        })?;
        let provider = ProviderBuilder::default().connect_http(url).erased();
        Ok(Self::new(provider, rollup, from_block))
    }

    /// Uses `fetcher` for blob data.
    pub fn with_blob_fetcher(mut self, fetcher: Arc<dyn BlobFetcher>) -> Self {
        self.blobs = fetcher;
        self
    }

    /// Refuses batches that decompress to more than `limit` bytes.
    pub fn with_max_decompressed(mut self, limit: usize) -> Self {
        self.max_decompressed = limit;
        self
    }

    /// The batches recorded on L1 up to block `to_block` (default: latest), in index order,
    /// with their data fetched, verified against the commitments and decoded.
    pub async fn batches(&self, to_block: Option<u64>) -> BatcherResult<Vec<PostedBatch>> {
        let to_block = match to_block {
            Some(block) => block,
            None => self
                .provider
                .get_block_number()
                .await
                .map_err(|e| rpc_error("eth_blockNumber", e))?,
        };
        let mut recorded: Vec<(LanesRollup::BatchSubmitted, u64, TxHash)> = Vec::new();
        let mut from = self.from_block;
        while from <= to_block {
            let to = to_block.min(from + self.log_range - 1);
            let filter = Filter::new()
                .address(self.rollup)
                .event_signature(vec![
                    LanesRollup::BatchSubmitted::SIGNATURE_HASH,
                    LanesRollup::BatchesReverted::SIGNATURE_HASH,
                ])
                .from_block(from)
                .to_block(to);
            let mut logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| rpc_error("eth_getLogs", e))?;
            logs.retain(|log| !log.removed);
            logs.sort_by_key(|log| (log.block_number, log.log_index));
            for log in logs {
                let invalid = |e: alloy::sol_types::Error| {
                    BatcherError::InvalidBatch(format!("undecodable rollup event: {e}"))
                };
                let (Some(block), Some(tx)) = (log.block_number, log.transaction_hash) else {
                    continue;
                };
                if log.topic0() == Some(&LanesRollup::BatchesReverted::SIGNATURE_HASH) {
                    let event = LanesRollup::BatchesReverted::decode_log(&log.inner)
                        .map_err(invalid)?
                        .data;
                    info!(target: TARGET, from = %event.fromBatchIndex, l1_block = block, "batches reverted on L1");
                    recorded.retain(|(b, _, _)| b.batchIndex < event.fromBatchIndex);
                    continue;
                }
                let event = LanesRollup::BatchSubmitted::decode_log(&log.inner)
                    .map_err(invalid)?
                    .data;
                recorded.push((event, block, tx));
            }
            from = to + 1;
        }
        let mut batches = Vec::with_capacity(recorded.len());
        for (event, l1_block, l1_tx) in recorded {
            batches.push(self.fetch(event, l1_block, l1_tx).await?);
        }
        Ok(batches)
    }

    async fn fetch(
        &self,
        event: LanesRollup::BatchSubmitted,
        l1_block: u64,
        l1_tx: TxHash,
    ) -> BatcherResult<PostedBatch> {
        let index = u64::try_from(event.batchIndex)
            .map_err(|_| BatcherError::InvalidBatch("batch index above 2^64".into()))?;
        let header = BatchHeader {
            batch_index: index,
            first_block: event.firstBlock,
            last_block: event.lastBlock,
            prev_state_root: event.prevStateRoot,
            new_state_root: event.newStateRoot,
            l1_messages_included: u64::try_from(event.l1MessagesIncluded).map_err(|_| {
                BatcherError::InvalidBatch(format!("batch {index}: l1MessagesIncluded above 2^64"))
            })?,
        };
        let tx = self
            .provider
            .get_transaction_by_hash(l1_tx)
            .await
            .map_err(|e| rpc_error("eth_getTransactionByHash", e))?
            .ok_or_else(|| {
                BatcherError::InvalidBatch(format!(
                    "batch {index}: L1 transaction {l1_tx} not found"
                ))
            })?;
        let (location, bytes) = match event.dataAvailability {
            0 => {
                let call = LanesRollup::submitBatchCall::abi_decode(tx.input()).map_err(|e| {
                    BatcherError::InvalidBatch(format!(
                        "batch {index}: transaction {l1_tx} is not a direct submitBatch call: {e}"
                    ))
                })?;
                if keccak256(&call.data) != event.dataHash {
                    return Err(BatcherError::InvalidBatch(format!(
                        "batch {index}: calldata does not hash to the recorded dataHash"
                    )));
                }
                (DataLocation::Calldata, call.data.to_vec())
            }
            1 => {
                let hashes = tx.blob_versioned_hashes().unwrap_or_default().to_vec();
                if keccak256(hashes.iter().flat_map(|h| h.0).collect::<Vec<u8>>()) != event.dataHash
                {
                    return Err(BatcherError::InvalidBatch(format!(
                        "batch {index}: blob hashes do not hash to the recorded dataHash"
                    )));
                }
                let blobs = self.blobs.blobs(l1_tx, &hashes).await?;
                let data = crate::on_big_stack(move || {
                    let blobs = blobs
                        .iter()
                        .map(|bytes| {
                            Blob::try_from(bytes.as_ref()).map_err(|_| {
                                BatcherError::InvalidBatch(format!(
                                    "batch {index}: blob of {} bytes",
                                    bytes.len()
                                ))
                            })
                        })
                        .collect::<BatcherResult<Vec<Blob>>>()?;
                    verify_blobs(index, &blobs, &hashes)?;
                    let parts = SimpleCoder::default().decode_all(&blobs).ok_or_else(|| {
                        BatcherError::InvalidBatch(format!(
                            "batch {index}: blobs are not SimpleCoder data"
                        ))
                    })?;
                    Ok::<_, BatcherError>(parts.concat())
                })
                .await?;
                (DataLocation::Blobs, data)
            }
            other => {
                return Err(BatcherError::InvalidBatch(format!(
                    "batch {index}: unknown data availability {other}"
                )));
            }
        };
        let data = BatchData::decode_batch(&bytes, self.max_decompressed)
            .map_err(|e| BatcherError::InvalidBatch(format!("batch {index}: {e}")))?;
        debug!(target: TARGET, index, l1_block, blocks = data.blocks.len(), ?location, "batch read from L1");
        Ok(PostedBatch {
            header,
            data_hash: event.dataHash,
            location,
            l1_block,
            l1_tx,
            data,
        })
    }
}

/// Checks each blob against its versioned hash (KZG commitment recomputed).
fn verify_blobs(index: u64, blobs: &[Blob], hashes: &[B256]) -> BatcherResult<()> {
    if blobs.len() != hashes.len() {
        return Err(BatcherError::InvalidBatch(format!(
            "batch {index}: {} blobs for {} versioned hashes",
            blobs.len(),
            hashes.len()
        )));
    }
    let settings = EnvKzgSettings::Default.get();
    for (i, (blob, hash)) in blobs.iter().zip(hashes).enumerate() {
        let kzg_blob = c_kzg::Blob::new(blob.0);
        let commitment = settings
            .blob_to_kzg_commitment(&kzg_blob)
            .map_err(|e| BatcherError::InvalidBatch(format!("batch {index}: blob {i}: {e}")))?;
        if kzg_to_versioned_hash(commitment.as_slice()) != *hash {
            return Err(BatcherError::InvalidBatch(format!(
                "batch {index}: blob {i} does not match its versioned hash"
            )));
        }
    }
    Ok(())
}

/// The L2 blocks of `batches`, in order, after checking that the batches chain up (see the
/// module docs). With `chain_id`, batches of another chain are refused.
pub fn blocks_of(
    batches: &[PostedBatch],
    chain_id: Option<u64>,
) -> BatcherResult<Vec<DerivedBlock>> {
    let mut blocks = Vec::new();
    let mut previous: Option<&PostedBatch> = None;
    for batch in batches {
        let h = &batch.header;
        let d = &batch.data;
        let index = h.batch_index;
        let fail = |why: String| Err(BatcherError::InvalidBatch(format!("batch {index}: {why}")));
        if let Some(prev) = previous {
            if index != prev.header.batch_index + 1 {
                return fail(format!("follows batch {}", prev.header.batch_index));
            }
            if h.first_block != prev.header.last_block + 1 {
                return fail(format!(
                    "starts at L2 block {}, previous batch ended at {}",
                    h.first_block, prev.header.last_block
                ));
            }
            if h.prev_state_root != prev.header.new_state_root {
                return fail("previous state root is not the previous batch's".into());
            }
            let prev_hash = prev.data.blocks.last().map(|b| b.hash).unwrap_or_default();
            if d.parent_hash != prev_hash {
                return fail("parent hash is not the previous batch's last block".into());
            }
        } else if index != 1 || h.first_block != 1 {
            return fail(format!(
                "the first batch must be batch 1 from L2 block 1 (is the start block the rollup's deploy block?), got L2 block {}",
                h.first_block
            ));
        }
        if let Some(id) = chain_id
            && d.chain_id != id
        {
            return fail(format!("chain id {}, expected {id}", d.chain_id));
        }
        if d.first_block != h.first_block || d.last_block() != h.last_block {
            return fail(format!(
                "data holds blocks {}..={}, the header says {}..={}",
                d.first_block,
                d.last_block(),
                h.first_block,
                h.last_block
            ));
        }
        if d.new_state_root() != h.new_state_root {
            return fail("the last block's state root is not the recorded one".into());
        }
        if d.l1_messages_included != h.l1_messages_included {
            return fail("l1MessagesIncluded differs between data and header".into());
        }
        let mut parent = d.parent_hash;
        for (i, block) in d.blocks.iter().enumerate() {
            let number = d.first_block + i as u64;
            blocks.push(DerivedBlock {
                env: block.env(number, parent),
                transactions: block.transactions.clone(),
                state_root: block.state_root,
                hash: block.hash,
                batch_index: index,
            });
            parent = block.hash;
        }
        previous = Some(batch);
    }
    Ok(blocks)
}

/// Executes derived blocks, in order.
pub trait BlockSink {
    /// Executes `block` on top of the previous one; fails if the result is not the posted
    /// one.
    fn apply(&mut self, block: &DerivedBlock) -> BatcherResult<()>;
}

/// Re-executes derived blocks into a RocksDB [`Storage`] (from genesis or from where it
/// stands: blocks it already holds are checked by hash and skipped).
#[derive(Debug)]
pub struct StorageReplay {
    storage: Arc<Storage>,
    chain: ChainSpec,
    executor: SequentialExecutor,
}

impl StorageReplay {
    /// Replays into `storage` (initialised with the chain's genesis) under `chain`'s rules,
    /// which must be the sequencer's (chain id, base fee recipient and floor).
    pub fn new(storage: Arc<Storage>, chain: ChainSpec) -> Self {
        Self {
            storage,
            chain,
            executor: SequentialExecutor::new(),
        }
    }

    /// The storage replayed into.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }
}

/// Offers a block's transactions in order; remembers the first one the executor skipped.
struct StrictSource {
    txs: std::vec::IntoIter<Arc<RecoveredTx>>,
    rejected: Option<String>,
}

impl TxSource for StrictSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        if self.rejected.is_some() {
            return None;
        }
        self.txs.next()
    }

    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        if self.rejected.is_none() {
            self.rejected = Some(format!(
                "transaction {} skipped: {reason:?}",
                tx.inner().tx_hash()
            ));
        }
    }
}

impl BlockSink for StorageReplay {
    fn apply(&mut self, block: &DerivedBlock) -> BatcherResult<()> {
        let number = block.number();
        let replay = |reason: String| BatcherError::Replay { number, reason };
        let (head, head_hash) = self
            .storage
            .head()?
            .ok_or_else(|| replay("the storage holds no genesis".into()))?;
        if number <= head {
            let ours = self.storage.canonical_hash(number)?;
            return if ours == Some(block.hash) {
                Ok(())
            } else {
                Err(replay(format!(
                    "local block has hash {ours:?}, L1 says {}",
                    block.hash
                )))
            };
        }
        if number != head + 1 {
            return Err(replay(format!("storage head is {head}")));
        }
        if block.env.parent_hash != head_hash {
            return Err(replay(format!(
                "parent hash {}, local head {head} is {head_hash}",
                block.env.parent_hash
            )));
        }
        let envelopes = block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                lanes_executor::LanesTxEnvelope::decode_2718(&mut raw.as_ref())
                    .map_err(|e| replay(format!("transaction {i}: {e}")))
            })
            .collect::<BatcherResult<Vec<_>>>()?;
        let txs = lanes_executor::import::recover_lanes_senders(&envelopes)
            .map_err(|e| replay(e.to_string()))?;
        let count = txs.len();
        let mut source = StrictSource {
            txs: txs.into_iter(),
            rejected: None,
        };
        let executed =
            self.executor
                .execute(&self.chain, &block.env, &*self.storage, &mut source)?;
        if let Some(why) = source.rejected {
            return Err(replay(why));
        }
        if executed.transactions.len() != count {
            return Err(replay(format!(
                "{} of {count} transactions executed",
                executed.transactions.len()
            )));
        }
        let root = self.storage.state_root(&executed.changes)?;
        if root != block.state_root {
            return Err(replay(format!(
                "state root {root}, posted {}",
                block.state_root
            )));
        }
        let (sealed, changes) = executed.seal(root);
        if sealed.hash != block.hash {
            return Err(replay(format!(
                "block hash {}, posted {}",
                sealed.hash, block.hash
            )));
        }
        self.storage.commit_block(&sealed, &changes)?;
        Ok(())
    }
}

/// What [`derive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriveSummary {
    /// Batches read.
    pub batches: usize,
    /// L2 blocks applied.
    pub blocks: usize,
    /// L2 transactions in them.
    pub transactions: usize,
    /// Last L2 block applied (0 when L1 holds no batch).
    pub head: u64,
    /// Its hash (`None` when L1 holds no batch).
    pub head_hash: Option<B256>,
}

/// The portal's hash of L1 message `nonce` that deposit `tx` executes:
/// keccak256(abi.encode(nonce, from, to, mint, value, gasLimit, keccak256(data))), as
/// `LanesPortal.l1MessageHash` computes it.
pub fn l1_message_hash(nonce: u64, tx: &lanes_executor::TxDeposit) -> B256 {
    use alloy::sol_types::SolValue;
    let to = tx.to.to().copied().unwrap_or_default();
    keccak256(
        (
            alloy::primitives::U256::from(nonce),
            tx.from,
            to,
            alloy::primitives::U256::from(tx.mint),
            tx.value,
            tx.gas_limit,
            keccak256(&tx.input),
        )
            .abi_encode(),
    )
}

impl Deriver {
    /// Checks that the deposit transactions (type 0x7e) of `blocks`, which derive from
    /// genesis, are the portal's queued L1 messages in nonce order from 0 (each one's
    /// `l1MessageHash` equal to the queue's), and that every batch declares as
    /// `l1MessagesIncluded` the number its blocks executed. The rollup contract checks only the
    /// count, so without this a sequencer could mint ETH no one deposited, or forge a forced
    /// transaction, and still post matching state roots.
    pub async fn check_l1_messages(
        &self,
        batches: &[PostedBatch],
        blocks: &[DerivedBlock],
    ) -> BatcherResult<()> {
        let declared = batches.last().map_or(0, |b| b.header.l1_messages_included);
        let mut queue = Vec::new();
        if declared > 0 {
            let rollup = LanesRollup::new(self.rollup, self.provider.clone());
            let portal = rollup
                .portal()
                .call()
                .await
                .map_err(|e| contract_error("LanesRollup.portal", e))?;
            let portal = lanes_l1_bridge::bindings::LanesPortal::new(portal, self.provider.clone());
            let queued = portal
                .depositNonce()
                .call()
                .await
                .map_err(|e| contract_error("LanesPortal.depositNonce", e))?;
            // The rollup refuses a count beyond the queue; more here means another portal.
            for nonce in 0..declared.min(queued.saturating_to()) {
                let entry = portal
                    .queue(alloy::primitives::U256::from(nonce))
                    .call()
                    .await
                    .map_err(|e| contract_error("LanesPortal.queue", e))?;
                queue.push(entry.hash);
            }
        }
        let counts: Vec<(u64, u64)> = batches
            .iter()
            .map(|b| (b.header.batch_index, b.header.l1_messages_included))
            .collect();
        check_l1_messages(&counts, blocks, &queue)
    }
}

/// [`Deriver::check_l1_messages`] on data already read: `batches` as (index, declared
/// `l1MessagesIncluded`) in order, `queue` the portal's message hashes by nonce.
fn check_l1_messages(
    batches: &[(u64, u64)],
    blocks: &[DerivedBlock],
    queue: &[B256],
) -> BatcherResult<()> {
    let mut executed = 0u64;
    let mut blocks = blocks.iter().peekable();
    for &(index, declared) in batches {
        while let Some(block) = blocks.next_if(|b| b.batch_index == index) {
            let invalid = |why: String| {
                BatcherError::InvalidBatch(format!(
                    "batch {index}, L2 block {}: {why}",
                    block.number()
                ))
            };
            for raw in &block.transactions {
                if raw.first() != Some(&lanes_executor::DEPOSIT_TX_TYPE) {
                    continue;
                }
                let lanes_executor::LanesTxEnvelope::Deposit(deposit) =
                    lanes_executor::LanesTxEnvelope::decode_2718(&mut raw.as_ref())
                        .map_err(|e| invalid(format!("undecodable deposit: {e}")))?
                else {
                    return Err(invalid("type 0x7e that is not a deposit".into()));
                };
                let queued = queue.get(executed as usize).ok_or_else(|| {
                    invalid(format!(
                        "deposit {} executes L1 message {executed}, which the portal never queued",
                        deposit.hash()
                    ))
                })?;
                if *queued != l1_message_hash(executed, deposit.inner()) {
                    return Err(invalid(format!(
                        "deposit {} is not L1 message {executed} as the portal queued it",
                        deposit.hash()
                    )));
                }
                executed += 1;
            }
        }
        if executed != declared {
            return Err(BatcherError::InvalidBatch(format!(
                "batch {index} declares {declared} L1 messages executed, its blocks executed {executed}"
            )));
        }
    }
    Ok(())
}

/// A failed view call: transport failures keep their retry class, anything else is data this
/// rollup cannot have produced.
fn contract_error(context: &'static str, error: alloy::contract::Error) -> BatcherError {
    BatcherError::L1(match error {
        alloy::contract::Error::TransportError(e) => rpc_error(context, e),
        other => lanes_l1_bridge::L1Error::InvalidData {
            context,
            message: other.to_string(),
        },
    })
}

/// Reads every batch from L1 (up to `to_block`), checks the chain of batches and the L1
/// messages they execute, and applies the blocks to `sink` in order. With `chain_id`,
/// batches of another chain are refused.
pub async fn derive(
    deriver: &Deriver,
    sink: &mut dyn BlockSink,
    chain_id: Option<u64>,
    to_block: Option<u64>,
) -> BatcherResult<DeriveSummary> {
    let batches = deriver.batches(to_block).await?;
    let blocks = blocks_of(&batches, chain_id)?;
    deriver.check_l1_messages(&batches, &blocks).await?;
    let mut transactions = 0;
    for block in &blocks {
        sink.apply(block)?;
        transactions += block.transactions.len();
    }
    let last = blocks.last();
    info!(target: TARGET, batches = batches.len(), blocks = blocks.len(), transactions, head = last.map_or(0, DerivedBlock::number), "derived the L2 chain from L1");
    Ok(DeriveSummary {
        batches: batches.len(),
        blocks: blocks.len(),
        transactions,
        head: last.map_or(0, DerivedBlock::number),
        head_hash: last.map(|b| b.hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::consensus::Header;
    use alloy::eips::eip2718::Encodable2718;
    use alloy::primitives::{TxKind, U256, b256};
    use lanes_executor::{LanesTxEnvelope, TxDeposit};

    fn deposit(from: u8) -> TxDeposit {
        TxDeposit {
            source_hash: B256::repeat_byte(from),
            from: Address::repeat_byte(from),
            to: TxKind::Call(Address::repeat_byte(2)),
            mint: 5_000,
            value: U256::from(1_000),
            gas_limit: 100_000,
            is_system_transaction: false,
            input: Bytes::from_static(b"hello"),
        }
    }

    fn block(number: u64, batch_index: u64, deposits: &[TxDeposit]) -> DerivedBlock {
        let header = Header {
            number,
            ..Default::default()
        };
        DerivedBlock {
            env: BlockEnvInput::from_header(&header, 100),
            transactions: deposits
                .iter()
                .map(|d| LanesTxEnvelope::deposit(d.clone()).encoded_2718().into())
                .collect(),
            state_root: B256::ZERO,
            hash: B256::ZERO,
            batch_index,
        }
    }

    #[test]
    fn message_hash_is_the_portals() {
        // cast keccak $(cast abi-encode "f(uint256,address,address,uint256,uint256,uint64,bytes32)"
        //   3 0x01..01 0x02..02 5000 1000 100000 $(cast keccak 0x68656c6c6f))
        assert_eq!(
            l1_message_hash(3, &deposit(1)),
            b256!("0x42717640eb66929a459db135cc8bf49312510a397ff7400e97e329e8f4883012")
        );
    }

    #[test]
    fn deposits_must_be_the_queued_messages_in_order_and_counted() {
        let (a, b) = (deposit(1), deposit(3));
        let queue = [l1_message_hash(0, &a), l1_message_hash(1, &b)];
        let blocks = [
            block(1, 1, std::slice::from_ref(&a)),
            block(2, 1, &[]),
            block(3, 2, std::slice::from_ref(&b)),
        ];
        check_l1_messages(&[(1, 1), (2, 2)], &blocks, &queue).unwrap();

        // A batch that miscounts what its blocks executed.
        let err = check_l1_messages(&[(1, 0), (2, 2)], &blocks, &queue).unwrap_err();
        assert!(err.to_string().contains("declares 0"), "{err}");
        // Swapped order: message 0 is not `b`.
        let swapped = [block(1, 1, &[b.clone(), a.clone()])];
        let err = check_l1_messages(&[(1, 2)], &swapped, &queue).unwrap_err();
        assert!(err.to_string().contains("not L1 message 0"), "{err}");
        // A deposit that mints more than was locked on L1.
        let mut forged = a.clone();
        forged.mint += 1;
        let err = check_l1_messages(&[(1, 1)], &[block(1, 1, &[forged])], &queue).unwrap_err();
        assert!(err.to_string().contains("not L1 message 0"), "{err}");
        // One more deposit than L1 ever queued.
        let extra = [block(1, 1, &[a, b, deposit(4)])];
        let err = check_l1_messages(&[(1, 3)], &extra, &queue).unwrap_err();
        assert!(err.to_string().contains("never queued"), "{err}");
    }
}
