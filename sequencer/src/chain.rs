//! The node's view of its chain: storage, the committed head, and new-block notifications
//! that the RPC (subscriptions) and the pool follow.

use alloy_rpc_types_eth::BlockNumberOrTag;
use lanes_executor::{ChainSpec, ExecutorResult, SealedBlock, Storage};
use parking_lot::RwLock;
use std::sync::Arc;
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

    /// Resolves a block tag to a number. Until batches are posted to L1, every committed
    /// block is as safe and final as it gets on this node, so `safe` and `finalized` follow
    /// the head; `pending` is the head too (the block being built is not exposed).
    pub fn resolve(&self, tag: BlockNumberOrTag) -> u64 {
        let head = self.head().number();
        match tag {
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Latest
            | BlockNumberOrTag::Pending
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized => head,
        }
    }
}
