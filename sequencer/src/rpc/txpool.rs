//! The `txpool_` namespace: `txpool_status`, the pool's pending and queued counts (geth's
//! shape: hex quantities), which load generators and dashboards sample.

use super::{RpcContext, RpcResult};
use alloy_primitives::U64;
use jsonrpsee::RpcModule;
use serde::Serialize;

/// `txpool_status` result.
#[derive(Debug, Clone, Serialize)]
pub struct TxPoolStatus {
    /// Executable transactions.
    pub pending: U64,
    /// Transactions waiting on a nonce gap or funds.
    pub queued: U64,
}

/// Registers the namespace.
pub fn register(
    module: &mut RpcModule<RpcContext>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("txpool_status", |_, ctx, _| -> RpcResult<TxPoolStatus> {
        let pool = ctx.pool.lock();
        Ok(TxPoolStatus {
            pending: U64::from(pool.len_pending()),
            queued: U64::from(pool.len_queued()),
        })
    })?;
    Ok(())
}
