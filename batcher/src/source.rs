//! [`BlockSource`]: how the batcher reads sealed L2 blocks.

use std::sync::Arc;

use lanes_executor::{SealedBlock, Storage};

use crate::error::BatcherResult;

/// Sealed L2 blocks, as committed by the sequencer.
pub trait BlockSource: Send + Sync {
    /// Number of the last committed block.
    fn head(&self) -> BatcherResult<u64>;

    /// Committed block `number`, `None` above the head.
    fn block(&self, number: u64) -> BatcherResult<Option<SealedBlock>>;

    /// L1 -> L2 messages (portal deposit nonces `0..n`) executed by the end of block
    /// `number`: the rollup's `l1MessagesIncluded` for a batch ending there.
    ///
    /// The default, 0, is right for a chain that executes no L1 messages.
    fn l1_messages_included(&self, number: u64) -> BatcherResult<u64> {
        let _ = number;
        Ok(0)
    }
}

impl BlockSource for Storage {
    fn head(&self) -> BatcherResult<u64> {
        Ok(Storage::head(self)?.map_or(0, |(number, _)| number))
    }

    fn block(&self, number: u64) -> BatcherResult<Option<SealedBlock>> {
        Ok(Storage::block(self, number)?)
    }

    fn l1_messages_included(&self, number: u64) -> BatcherResult<u64> {
        Ok(Storage::l1_messages_included(self, number)?)
    }
}

impl<T: BlockSource + ?Sized> BlockSource for Arc<T> {
    fn head(&self) -> BatcherResult<u64> {
        (**self).head()
    }

    fn block(&self, number: u64) -> BatcherResult<Option<SealedBlock>> {
        (**self).block(number)
    }

    fn l1_messages_included(&self, number: u64) -> BatcherResult<u64> {
        (**self).l1_messages_included(number)
    }
}
