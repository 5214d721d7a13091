//! JSON-RPC over HTTP and WebSocket on one port (jsonrpsee): the `eth_`, `net_` and `web3_`
//! namespaces, geth's `txpool_` methods and `debug_trace*` tracers, `eth_subscribe` for `newHeads`, `logs` and `newPendingTransactions`, polled
//! filters, batch requests, and limits on body size, batch size, connections, call gas and
//! time, log queries and filters.

mod call;
pub(crate) mod convert;
mod debug;
mod error;
mod eth;
mod filter;
mod intake;
mod lanes;
mod metrics;
mod txpool;

pub use filter::Filters;
pub use intake::{BatchIntake, BatchIntakeLayer};
pub use metrics::{RpcMetrics, RpcMetricsLayer};

pub use error::RpcResult;

use crate::{chain::Chain, pool::TxPool};
use alloy_rpc_types_eth::{Filter, pubsub::SubscriptionKind};
use jsonrpsee::{
    PendingSubscriptionSink, RpcModule, SubscriptionMessage,
    core::SubscriptionError,
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle},
    types::ErrorObjectOwned,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::broadcast::error::RecvError;

/// RPC limits and settings (mapped from `rpc.*` config).
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Largest request body accepted.
    pub max_request_body_bytes: u32,
    /// Largest response body produced.
    pub max_response_body_bytes: u32,
    /// Most calls in one batch.
    pub max_batch_size: u32,
    /// Most concurrent connections.
    pub max_connections: u32,
    /// Gas cap for `eth_call` / `eth_estimateGas`.
    pub gas_cap: u64,
    /// Wall-clock limit for `eth_call` / `eth_estimateGas` and each `debug_trace*` request.
    pub evm_timeout: Duration,
    /// Widest block range of one `eth_getLogs`.
    pub max_logs_block_range: u64,
    /// Most logs one `eth_getLogs` returns.
    pub max_logs: usize,
    /// Most blocks one `eth_feeHistory` covers.
    pub fee_history_max_blocks: u64,
    /// A polled filter not polled for this long is removed.
    pub filter_timeout: Duration,
    /// Most polled filters installed at once.
    pub max_filters: usize,
    /// How long `eth_sendRawTransactionSync` waits for a receipt, at most and by default.
    pub send_raw_sync_timeout: Duration,
    /// Serve the `debug_trace*` methods.
    pub tracing: bool,
}

/// What the handlers share.
#[derive(Debug)]
pub struct RpcContext {
    /// The chain.
    pub chain: Arc<Chain>,
    /// The pool.
    pub pool: Arc<TxPool>,
    /// Settings.
    pub config: RpcConfig,
    /// `web3_clientVersion`.
    pub client_version: String,
    /// Metrics the RPC middleware records.
    pub metrics: Arc<crate::metrics::SequencerMetrics>,
    /// Installed polled filters (`eth_newFilter` and the like).
    pub filters: Filters,
}

/// Builds the RPC module with every method registered.
pub fn module(ctx: RpcContext) -> RpcModule<RpcContext> {
    let tracing = ctx.config.tracing;
    let mut module = RpcModule::new(ctx);
    eth::register(&mut module).expect("method names are unique");
    filter::register(&mut module).expect("method names are unique");
    txpool::register(&mut module).expect("method names are unique");
    lanes::register(&mut module).expect("method names are unique");
    debug::register(&mut module, tracing).expect("method names are unique");
    module
        .register_subscription(
            "eth_subscribe",
            "eth_subscription",
            "eth_unsubscribe",
            |params, pending, ctx, _| async move {
                match parse_subscription(&params) {
                    Ok(subscription) => subscribe(subscription, pending, ctx).await,
                    Err(err) => {
                        pending.reject(err).await;
                        Ok(())
                    }
                }
            },
        )
        .expect("method names are unique");
    module
}

/// Starts the server; it runs until the handle is stopped.
pub async fn serve(ctx: RpcContext) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ctx.config.clone();
    let metrics = ctx.metrics.clone();
    let pool = ctx.pool.clone();
    let module = module(ctx);
    let known: Vec<&'static str> = module.method_names().collect();
    let server = Server::builder()
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer(RpcMetricsLayer::new(metrics, known))
                .layer(BatchIntakeLayer::new(pool, config.max_response_body_bytes)),
        )
        .set_config(
            ServerConfig::builder()
                .max_request_body_size(config.max_request_body_bytes)
                .max_response_body_size(config.max_response_body_bytes)
                .max_connections(config.max_connections)
                .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_size))
                .set_id_provider(HexIdProvider::default())
                .build(),
        )
        .build(config.addr)
        .await?;
    let addr = server.local_addr()?;
    let handle = server.start(module);
    Ok((addr, handle))
}

/// What an `eth_subscribe` asks for.
enum Subscription {
    /// `newHeads`.
    Heads,
    /// `logs` matching the filter.
    Logs(Box<Filter>),
    /// `newPendingTransactions`: each transaction admitted to the pool, as its hash or
    /// (`true` as second parameter, as geth takes it) in full.
    Pending { full: bool },
}

fn parse_subscription(
    params: &jsonrpsee::types::Params<'_>,
) -> Result<Subscription, ErrorObjectOwned> {
    let mut seq = params.sequence();
    let kind: SubscriptionKind = seq.next()?;
    match kind {
        SubscriptionKind::NewHeads => Ok(Subscription::Heads),
        SubscriptionKind::Logs => Ok(Subscription::Logs(Box::new(
            seq.optional_next()?.unwrap_or_default(),
        ))),
        SubscriptionKind::NewPendingTransactions => Ok(Subscription::Pending {
            full: seq.optional_next()?.unwrap_or(false),
        }),
        other => Err(error::invalid_params(format!(
            "unsupported subscription: {other:?}"
        ))),
    }
}

/// Subscription ids as geth makes them: `0x` and hex digits (clients treat them as opaque
/// strings, and some expect the string form).
#[derive(Debug, Default)]
struct HexIdProvider {
    state: std::collections::hash_map::RandomState,
    counter: std::sync::atomic::AtomicU64,
}

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        use std::hash::BuildHasher;
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Two independent keyed hashes give 128 unpredictable bits per id.
        let (a, b) = (self.state.hash_one((n, 0u8)), self.state.hash_one((n, 1u8)));
        jsonrpsee::types::SubscriptionId::Str(format!("0x{a:016x}{b:016x}").into())
    }
}

async fn subscribe(
    subscription: Subscription,
    pending: PendingSubscriptionSink,
    ctx: Arc<RpcContext>,
) -> Result<(), SubscriptionError> {
    use serde_json::value::to_raw_value as raw;
    match subscription {
        Subscription::Heads => {
            relay(pending, ctx.chain.subscribe(), |block| {
                Ok(vec![raw(&eth::head_notification(&block))?])
            })
            .await
        }
        Subscription::Logs(filter) => {
            relay(pending, ctx.chain.subscribe(), |block| {
                (0..block.transactions.len())
                    .flat_map(|i| convert::rpc_logs(&block, i))
                    .filter(|log| {
                        filter.matches_address(log.inner.address)
                            && filter.matches_topics(log.inner.data.topics())
                    })
                    .map(|log| raw(&log))
                    .collect()
            })
            .await
        }
        Subscription::Pending { full } => {
            relay(pending, ctx.pool.subscribe_admitted(), |hash| {
                if !full {
                    return Ok(vec![raw(&hash)?]);
                }
                // Already included or dropped: nothing to show in full.
                ctx.pool
                    .get(&hash)
                    .map(|tx| raw(&convert::rpc_pending_transaction(&tx.tx)))
                    .into_iter()
                    .collect()
            })
            .await
        }
    }
}

/// Sends the subscriber the messages `render` makes of each item `items` receives, until
/// either side closes. A slow subscriber skips ahead (misses the oldest items) rather than
/// holding back block production or the pool.
async fn relay<T: Clone>(
    pending: PendingSubscriptionSink,
    mut items: tokio::sync::broadcast::Receiver<T>,
    mut render: impl FnMut(T) -> serde_json::Result<Vec<Box<serde_json::value::RawValue>>>,
) -> Result<(), SubscriptionError> {
    let Ok(sink) = pending.accept().await else {
        return Ok(());
    };
    loop {
        let item = tokio::select! {
            item = items.recv() => item,
            _ = sink.closed() => return Ok(()),
        };
        let item = match item {
            Ok(item) => item,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return Ok(()),
        };
        for message in render(item).map_err(|e| e.to_string())? {
            if sink.send(SubscriptionMessage::from(message)).await.is_err() {
                return Ok(());
            }
        }
    }
}
