//! The `lanes_` namespace: `lanes_syncStatus`, the three L2 heads (`unsafe` = last sequenced,
//! `safe`, `finalized`) and the L1 blocks behind them, shaped like `optimism_syncStatus`.

use super::{RpcContext, RpcResult, error::server_error};
use alloy_primitives::B256;
use jsonrpsee::RpcModule;
use serde::Serialize;

/// An L2 block reference.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L2BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Block timestamp, seconds.
    pub timestamp: u64,
}

/// What the batcher reports, when the node posts to L1.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatcherSync {
    /// Posting is on.
    pub running: bool,
    /// Last batch index recorded on L1.
    pub last_batch_index: u64,
    /// Last L2 block in a batch in L1's latest block.
    pub posted_l2: u64,
    /// Sealed L2 blocks not in a recorded batch.
    pub unposted_blocks: u64,
    /// Their uncompressed size, bytes.
    pub unposted_bytes: u64,
    /// The backlog is over `batcher.max_backlog_bytes` (the sequencer shrinks blocks).
    pub over_limit: bool,
    /// The last posting failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// `lanes_syncStatus` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// L1 head the batcher last read (`null` on an L2-only node).
    pub head_l1: Option<u64>,
    /// L1 block `safeL2` and `finalizedL2` were read at (`null` on an L2-only node).
    pub safe_l1: Option<u64>,
    /// Last sequenced block (`latest`).
    pub unsafe_l2: L2BlockRef,
    /// Last block in a batch with the L1 confirmation depth (`safe`).
    pub safe_l2: L2BlockRef,
    /// Last block of a batch past the rollup's finalization period (`finalized`).
    pub finalized_l2: L2BlockRef,
    /// Batcher state (`null` on an L2-only node, where `safe` and `finalized` follow the head).
    pub batcher: Option<BatcherSync>,
}

fn block_ref(
    ctx: &RpcContext,
    tag: alloy_rpc_types_eth::BlockNumberOrTag,
) -> RpcResult<L2BlockRef> {
    let number = ctx.chain.resolve(tag);
    let block = ctx
        .chain
        .block(number)
        .map_err(|e| server_error(e.to_string()))?
        .ok_or_else(|| server_error(format!("block {number} not found")))?;
    Ok(L2BlockRef {
        number,
        hash: block.hash,
        timestamp: block.header.timestamp,
    })
}

/// Registers the namespace.
pub fn register(
    module: &mut RpcModule<RpcContext>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("lanes_syncStatus", |_, ctx, _| -> RpcResult<SyncStatus> {
        use alloy_rpc_types_eth::BlockNumberOrTag as Tag;
        let status = ctx.chain.batcher_status();
        Ok(SyncStatus {
            head_l1: status.as_ref().map(|s| s.heads.l1_head),
            safe_l1: status.as_ref().map(|s| s.heads.safe_l1_block),
            unsafe_l2: block_ref(ctx, Tag::Latest)?,
            safe_l2: block_ref(ctx, Tag::Safe)?,
            finalized_l2: block_ref(ctx, Tag::Finalized)?,
            batcher: status.map(|s| BatcherSync {
                running: s.running,
                last_batch_index: s.last_batch_index,
                posted_l2: s.heads.posted,
                unposted_blocks: s.backlog.unposted_blocks,
                unposted_bytes: s.backlog.unposted_bytes,
                over_limit: s.backlog.over_limit,
                last_error: s.last_error,
            }),
        })
    })?;
    Ok(())
}
