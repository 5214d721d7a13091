//! The node's view of its chain: storage, the committed head, and new-block notifications
//! that the RPC (subscriptions) and the pool follow.

use alloy_primitives::{Address, B256, Bytes, U256, map::HashMap};
use alloy_rpc_types_eth::BlockNumberOrTag;
use lanes_executor::{
    ChainSpec, ExecutorError, ExecutorResult, SealedBlock, StateChanges, StateReader, Storage,
    StoredAccount,
};
use parking_lot::{Condvar, Mutex, RwLock};
use std::{collections::VecDeque, sync::Arc, time::Duration};
use tokio::sync::broadcast;

/// Capacity of the new-block channel: a subscriber that falls this far behind is told it
/// lagged instead of slowing block production.
const NEW_BLOCK_CHANNEL: usize = 256;

/// Shared chain state.
#[derive(Debug)]
pub struct Chain {
    storage: Arc<Storage>,
    spec: ChainSpec,
    head: RwLock<Arc<SealedBlock>>,
    new_blocks: broadcast::Sender<Arc<SealedBlock>>,
    in_flight: RwLock<InFlight>,
    sealed: Arc<SealedHashes>,
    batcher: std::sync::OnceLock<tokio::sync::watch::Receiver<lanes_batcher::BatcherStatus>>,
}

/// Blocks executed but not committed yet (the pipeline's depth): their state changes, oldest
/// first, and all of them folded together for readers.
#[derive(Debug, Default)]
struct InFlight {
    blocks: VecDeque<(u64, Arc<StateChanges>)>,
    folded: Arc<StateChanges>,
}

impl InFlight {
    fn refold(&mut self) {
        let mut folded = StateChanges::default();
        for (_, changes) in &self.blocks {
            folded.extend((**changes).clone());
        }
        self.folded = Arc::new(folded);
    }
}

/// Hashes of blocks sealed but maybe not committed, for `BLOCKHASH` in the blocks executing
/// behind them. A reader that needs a hash that is not sealed yet waits for the sealer.
#[derive(Debug, Default)]
pub struct SealedHashes {
    hashes: Mutex<HashMap<u64, B256>>,
    sealed: Condvar,
    failed: std::sync::atomic::AtomicBool,
}

impl SealedHashes {
    /// How long a reader waits for a block's hash before giving up on the block.
    const WAIT: Duration = Duration::from_secs(30);

    /// Records the hash of sealed block `number` and wakes waiting readers.
    pub fn insert(&self, number: u64, hash: B256) {
        let mut hashes = self.hashes.lock();
        hashes.insert(number, hash);
        // Old entries are in storage by now; keep the map small.
        hashes.retain(|n, _| *n + 512 > number);
        self.sealed.notify_all();
    }

    /// Marks the sealer as stopped: waiting readers give up instead of waiting forever.
    pub fn fail(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _guard = self.hashes.lock();
        self.sealed.notify_all();
    }

    /// The hash of `number`, waiting for it to be sealed.
    fn wait(&self, number: u64) -> ExecutorResult<B256> {
        let deadline = std::time::Instant::now() + Self::WAIT;
        let mut hashes = self.hashes.lock();
        loop {
            if let Some(hash) = hashes.get(&number) {
                return Ok(*hash);
            }
            if self.failed.load(std::sync::atomic::Ordering::SeqCst)
                || self.sealed.wait_until(&mut hashes, deadline).timed_out()
            {
                return Err(ExecutorError::Evm(format!(
                    "hash of block {number} never sealed"
                )));
            }
        }
    }
}

/// The state block execution reads: committed storage plus the blocks in flight, and block
/// hashes that may still be being sealed.
#[derive(Debug, Clone)]
pub struct PipelineReader {
    storage: Arc<Storage>,
    changes: Arc<StateChanges>,
    sealed: Arc<SealedHashes>,
    /// Blocks at or above this number are executed but maybe not sealed yet.
    first_unsealed: u64,
}

impl StateReader for PipelineReader {
    fn account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        match self.changes.account(&address) {
            Some(info) => Ok(info),
            None => self.storage.account(address),
        }
    }
    fn storage(&self, address: Address, slot: U256) -> ExecutorResult<U256> {
        match self.changes.storage(&address, &slot) {
            Some(value) => Ok(value),
            None => self.storage.storage(address, slot),
        }
    }
    fn code(&self, hash: B256) -> ExecutorResult<Option<Bytes>> {
        match self.changes.codes.get(&hash) {
            Some(code) => Ok(Some(code.clone())),
            None => self.storage.code(hash),
        }
    }
    fn block_hash(&self, number: u64) -> ExecutorResult<Option<B256>> {
        if let Some(hash) = self.sealed.hashes.lock().get(&number) {
            return Ok(Some(*hash));
        }
        if number >= self.first_unsealed {
            return Ok(None);
        }
        match self.storage.canonical_hash(number)? {
            Some(hash) => Ok(Some(hash)),
            // Executed before this block but not sealed yet: wait for the sealer.
            None => self.sealed.wait(number).map(Some),
        }
    }
}

impl Chain {
    /// Loads the committed head from `storage`.
    pub fn load(storage: Arc<Storage>, spec: ChainSpec) -> ExecutorResult<Self> {
        let (number, _) = storage
            .head()?
            .ok_or_else(|| lanes_executor::ExecutorError::corrupt("meta", "no head block"))?;
        let head = storage.block(number)?.ok_or_else(|| {
            lanes_executor::ExecutorError::corrupt("headers", "head block missing")
        })?;
        let (new_blocks, _) = broadcast::channel(NEW_BLOCK_CHANNEL);
        Ok(Self {
            storage,
            spec,
            head: RwLock::new(Arc::new(head)),
            new_blocks,
            in_flight: RwLock::default(),
            sealed: Arc::default(),
            batcher: std::sync::OnceLock::new(),
        })
    }

    /// The store.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// Execution rules.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The latest committed block.
    pub fn head(&self) -> Arc<SealedBlock> {
        self.head.read().clone()
    }

    /// Records a newly committed block as head and notifies subscribers.
    pub fn set_head(&self, block: Arc<SealedBlock>) {
        *self.head.write() = block.clone();
        // No receivers is fine: nobody is subscribed.
        let _ = self.new_blocks.send(block);
    }

    /// Subscribes to newly committed blocks.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SealedBlock>> {
        self.new_blocks.subscribe()
    }

    /// Hashes of sealed blocks (the sealer records them here).
    pub fn sealed_hashes(&self) -> &Arc<SealedHashes> {
        &self.sealed
    }

    /// Records an executed block's changes as in flight (executed, not committed).
    pub fn push_in_flight(&self, number: u64, changes: Arc<StateChanges>) {
        let mut in_flight = self.in_flight.write();
        let mut folded = (*in_flight.folded).clone();
        folded.extend((*changes).clone());
        in_flight.folded = Arc::new(folded);
        in_flight.blocks.push_back((number, changes));
    }

    /// Block `number` is committed: its changes are in storage now.
    pub fn pop_in_flight(&self, number: u64) {
        let mut in_flight = self.in_flight.write();
        while in_flight.blocks.front().is_some_and(|(n, _)| *n <= number) {
            in_flight.blocks.pop_front();
        }
        in_flight.refold();
    }

    /// The state after every executed block (committed or in flight), for executing the
    /// next block; `next_number` is the block that will read it.
    pub fn pipeline_reader(&self, next_number: u64) -> PipelineReader {
        PipelineReader {
            storage: self.storage.clone(),
            changes: self.in_flight.read().folded.clone(),
            sealed: self.sealed.clone(),
            first_unsealed: next_number,
        }
    }

    /// An account after every executed block (intake validates nonces against this, so a
    /// transaction whose nonce an in-flight block used is refused as "nonce too low").
    pub fn latest_account(&self, address: Address) -> ExecutorResult<Option<StoredAccount>> {
        if let Some(info) = self.in_flight.read().folded.account(&address) {
            return Ok(info);
        }
        self.storage.account(address)
    }

    /// A committed block by number.
    pub fn block(&self, number: u64) -> ExecutorResult<Option<Arc<SealedBlock>>> {
        let head = self.head();
        if number == head.number() {
            return Ok(Some(head));
        }
        if number > head.number() {
            return Ok(None);
        }
        Ok(self.storage.block(number)?.map(Arc::new))
    }

    /// Makes `safe` and `finalized` follow the batcher's L2 heads (what L1 vouches for).
    /// Without it (an L2-only node) they follow the head. Set once.
    pub fn follow_batcher(
        &self,
        status: tokio::sync::watch::Receiver<lanes_batcher::BatcherStatus>,
    ) {
        let _ = self.batcher.set(status);
    }

    /// The batcher's view, when the node posts to L1.
    pub fn batcher_status(&self) -> Option<lanes_batcher::BatcherStatus> {
        self.batcher.get().map(|rx| rx.borrow().clone())
    }

    /// Resolves a block tag to a number. `latest` and `pending` are the last sequenced block
    /// (the block being built is not exposed). With a batcher, `safe` is the last block in a
    /// batch with the L1 confirmation depth and `finalized` the last block of a batch past
    /// the rollup's finalization period; on an L2-only node every committed block is as safe
    /// and final as it gets, so both follow the head.
    pub fn resolve(&self, tag: BlockNumberOrTag) -> u64 {
        let head = self.head().number();
        match tag {
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => head,
            BlockNumberOrTag::Safe => self
                .batcher_status()
                .map_or(head, |s| s.heads.safe.min(head)),
            BlockNumberOrTag::Finalized => self
                .batcher_status()
                .map_or(head, |s| s.heads.finalized.min(head)),
        }
    }
}
