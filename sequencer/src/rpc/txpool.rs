//! The `txpool_` namespace, in geth's shapes: `txpool_status` (pending and queued counts,
//! which load generators and dashboards sample), and `txpool_content`,
//! `txpool_contentFrom` and `txpool_inspect` (what is waiting, per sender and nonce, for an
//! operator finding out why a transaction is stuck).

use super::{
    RpcContext, RpcResult,
    convert::{RpcTransaction, rpc_pending_transaction},
};
use crate::mempool::PoolTransaction;
use alloy_consensus::Transaction;
use alloy_primitives::{Address, U64};
use jsonrpsee::RpcModule;
use serde::Serialize;
use std::collections::BTreeMap;

/// `txpool_status` result.
#[derive(Debug, Clone, Serialize)]
pub struct TxPoolStatus {
    /// Executable transactions.
    pub pending: U64,
    /// Transactions waiting on a nonce gap or funds.
    pub queued: U64,
}

/// One sender's transactions by nonce (a decimal string, as geth keys them).
type ByNonce<T> = BTreeMap<String, T>;

/// The pool's transactions by sender (checksummed, as geth keys them) and nonce.
#[derive(Debug, Clone, Serialize)]
struct Content<T> {
    pending: BTreeMap<String, ByNonce<T>>,
    queued: BTreeMap<String, ByNonce<T>>,
}

/// One sender's pending and queued transactions by nonce.
#[derive(Debug, Clone, Serialize)]
struct ContentFrom {
    pending: ByNonce<RpcTransaction>,
    queued: ByNonce<RpcTransaction>,
}

/// Copies of the pool's pending and queued transactions (cheap: an `Arc` each), so that
/// the answer is built without holding the pool's lock.
fn snapshot(
    ctx: &RpcContext,
    keep: impl Fn(&PoolTransaction) -> bool,
) -> (Vec<PoolTransaction>, Vec<PoolTransaction>) {
    let pool = ctx.pool.lock();
    (
        pool.pending_transactions()
            .filter(|tx| keep(tx))
            .cloned()
            .collect(),
        pool.queued_transactions()
            .filter(|tx| keep(tx))
            .cloned()
            .collect(),
    )
}

fn by_sender<T>(
    txs: Vec<PoolTransaction>,
    each: impl Fn(&PoolTransaction) -> T,
) -> BTreeMap<String, ByNonce<T>> {
    let mut out: BTreeMap<String, ByNonce<T>> = BTreeMap::new();
    for tx in &txs {
        out.entry(tx.sender.to_checksum(None))
            .or_default()
            .insert(tx.nonce.to_string(), each(tx));
    }
    out
}

fn full(tx: &PoolTransaction) -> RpcTransaction {
    rpc_pending_transaction(&tx.tx)
}

/// geth's one-line summary: `0xTo: <value> wei + <gas> gas × <fee cap> wei`.
fn summary(tx: &PoolTransaction) -> String {
    let to = match tx.tx.inner().to() {
        Some(to) => to.to_checksum(None),
        None => "contract creation".to_string(),
    };
    format!(
        "{to}: {} wei + {} gas × {} wei",
        tx.value, tx.gas_limit, tx.max_fee_per_gas
    )
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
    module.register_blocking_method("txpool_content", |_, ctx, _| {
        let (pending, queued) = snapshot(&ctx, |_| true);
        RpcResult::Ok(Content {
            pending: by_sender(pending, full),
            queued: by_sender(queued, full),
        })
    })?;
    module.register_blocking_method("txpool_inspect", |_, ctx, _| {
        let (pending, queued) = snapshot(&ctx, |_| true);
        RpcResult::Ok(Content {
            pending: by_sender(pending, summary),
            queued: by_sender(queued, summary),
        })
    })?;
    module.register_blocking_method("txpool_contentFrom", |params, ctx, _| {
        let sender: Address = params.one()?;
        let (pending, queued) = snapshot(&ctx, |tx| tx.sender == sender);
        let of = |txs: Vec<PoolTransaction>| -> ByNonce<RpcTransaction> {
            txs.iter()
                .map(|tx| (tx.nonce.to_string(), full(tx)))
                .collect()
        };
        RpcResult::Ok(ContentFrom {
            pending: of(pending),
            queued: of(queued),
        })
    })?;
    Ok(())
}
