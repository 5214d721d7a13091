//! The `debug_` methods: geth's built-in tracers (the struct logger, `callTracer`,
//! `prestateTracer`, `4byteTracer`, `noopTracer`) over replays of committed blocks on their
//! parent's state ([`Replay`]) and over calls.
//!
//! Also the raw encodings of headers, blocks and receipts (`debug_getRaw*`).
//!
//! A replay needs the parent block's state, so only the last `storage.state_root_history`
//! blocks can be traced; older ones get geth's answer for a pruned state. JavaScript tracers
//! and the other built-in tracers are refused by name.

use super::RpcContext;
use super::call::{self, CallLimits};
use super::error::{RpcResult, invalid_params, server_error};
use super::eth::{blocking, bounded};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bytes};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, TransactionRequest};
use alloy_rpc_types_trace::{
    common::TraceResult,
    geth::{
        CallConfig, FourByteFrame, GethDebugBuiltInTracerType, GethDebugTracerType,
        GethDebugTracingCallOptions, GethDebugTracingOptions, GethDefaultTracingOptions, GethTrace,
        NoopFrame, PreStateConfig,
    },
};
use jsonrpsee::RpcModule;
use lanes_executor::{
    BlockEnvInput, BlockState, RecoveredTx, Replay, SealedBlock, StateAt, StateReader,
    trace::ReplayContext,
};
use revm::{
    Inspector,
    context::{TxEnv, result::ResultAndState},
    inspector::NoOpInspector,
};
use revm_inspectors::tracing::{FourByteInspector, TracingInspector, TracingInspectorConfig};
use std::sync::Arc;

/// A tracer a request asked for.
#[derive(Clone, Debug)]
enum Tracer {
    /// geth's default: every step, with stack, memory and storage as configured.
    StructLogs(GethDefaultTracingOptions),
    Call(CallConfig),
    PreState(PreStateConfig),
    FourByte,
    Noop,
}

/// What a tracer runs: a transaction of the block being replayed, or a call.
enum Target<'a> {
    Tx(&'a RecoveredTx),
    Call(Box<TxEnv>),
}

impl Tracer {
    fn from_options(options: Option<GethDebugTracingOptions>) -> RpcResult<Self> {
        let options = options.unwrap_or_default();
        let config = options.tracer_config;
        let bad_config = |err: serde_json::Error| invalid_params(format!("tracerConfig: {err}"));
        Ok(match options.tracer {
            None => Self::StructLogs(options.config),
            Some(GethDebugTracerType::BuiltInTracer(builtin)) => match builtin {
                GethDebugBuiltInTracerType::CallTracer => {
                    Self::Call(config.into_call_config().map_err(bad_config)?)
                }
                GethDebugBuiltInTracerType::PreStateTracer => {
                    Self::PreState(config.into_pre_state_config().map_err(bad_config)?)
                }
                GethDebugBuiltInTracerType::FourByteTracer => Self::FourByte,
                GethDebugBuiltInTracerType::NoopTracer => Self::Noop,
                other => {
                    return Err(server_error(format!(
                        "tracer {} is not supported",
                        GethDebugTracerType::BuiltInTracer(other).as_str()
                    )));
                }
            },
            Some(GethDebugTracerType::JsTracer(_)) => {
                return Err(server_error("JavaScript tracers are not supported"));
            }
        })
    }

    /// Runs `target` on `replay` under this tracer and returns what it recorded.
    fn trace<R: StateReader>(
        &self,
        replay: &mut Replay<'_, R>,
        target: Target<'_>,
    ) -> RpcResult<GethTrace> {
        match self {
            Self::StructLogs(options) => {
                let config = TracingInspectorConfig::from_geth_config(options);
                run(
                    replay,
                    target,
                    TracingInspector::new(config),
                    |inspector, out, _| {
                        let output = out.result.output().cloned().unwrap_or_default();
                        Ok(GethTrace::Default(inspector.geth_builder().geth_traces(
                            out.result.tx_gas_used(),
                            output,
                            *options,
                        )))
                    },
                )
            }
            Self::Call(config) => {
                let inspector =
                    TracingInspector::new(TracingInspectorConfig::from_geth_call_config(config));
                run(replay, target, inspector, |inspector, out, _| {
                    Ok(GethTrace::CallTracer(
                        inspector
                            .geth_builder()
                            .geth_call_traces(*config, out.result.tx_gas_used()),
                    ))
                })
            }
            Self::PreState(config) => {
                let inspector = TracingInspector::new(
                    TracingInspectorConfig::from_geth_prestate_config(config),
                );
                run(replay, target, inspector, |inspector, out, before| {
                    inspector
                        .geth_builder()
                        .geth_prestate_traces(out, config, before)
                        .map(GethTrace::PreStateTracer)
                        .map_err(super::error::internal)
                })
            }
            Self::FourByte => run(
                replay,
                target,
                FourByteInspector::default(),
                |inspector, _, _| Ok(GethTrace::FourByteTracer(FourByteFrame::from(&inspector))),
            ),
            Self::Noop => run(replay, target, NoOpInspector, |_, _, _| {
                Ok(GethTrace::NoopTracer(NoopFrame::default()))
            }),
        }
    }
}

/// Runs `target` under `inspector`; `finish` turns the inspector into the answer.
fn run<R: StateReader, I: Inspector<ReplayContext<R>>>(
    replay: &mut Replay<'_, R>,
    target: Target<'_>,
    inspector: I,
    finish: impl FnOnce(I, &ResultAndState, &BlockState<R>) -> RpcResult<GethTrace>,
) -> RpcResult<GethTrace> {
    match target {
        Target::Tx(tx) => replay
            .trace(tx, inspector, finish)
            .map_err(|err| server_error(err.to_string()))?,
        Target::Call(env) => replay
            .trace_call(*env, inspector, finish)
            .map_err(call::call_error)?,
    }
}

/// The state block `number` was built on, if storage still keeps it.
fn parent_state(ctx: &RpcContext, number: u64) -> RpcResult<StateAt> {
    if number == 0 {
        return Err(server_error("genesis is not traceable"));
    }
    ctx.chain
        .storage()
        .state_at(number - 1)
        .map_err(super::error::internal)?
        .ok_or_else(|| {
            server_error(format!(
                "required historical state unavailable (reexec stopped at block {}): this \
                 node keeps the state of recent blocks only (storage.state_root_history)",
                number - 1
            ))
        })
}

/// A replay of `block` positioned at its first transaction.
fn replay_of<'c>(ctx: &'c RpcContext, block: &SealedBlock) -> RpcResult<Replay<'c, StateAt>> {
    let parent = parent_state(ctx, block.header.number)?;
    let env = BlockEnvInput::from_header(&block.header, usize::MAX);
    Replay::new(ctx.chain.spec(), env, parent).map_err(|err| server_error(err.to_string()))
}

fn trace_transaction(ctx: &RpcContext, hash: B256, tracer: &Tracer) -> RpcResult<GethTrace> {
    let location = ctx
        .chain
        .storage()
        .tx_location(hash)
        .map_err(super::error::internal)?
        .ok_or_else(|| server_error("transaction not found"))?;
    let block = ctx
        .chain
        .block(location.block_number)
        .map_err(super::error::internal)?
        .ok_or_else(|| server_error("transaction not found"))?;
    let index = location.index as usize;
    let mut replay = replay_of(ctx, &block)?;
    for earlier in &block.transactions[..index] {
        replay
            .run(&earlier.tx)
            .map_err(|err| server_error(err.to_string()))?;
    }
    tracer.trace(&mut replay, Target::Tx(&block.transactions[index].tx))
}

fn trace_block(
    ctx: &RpcContext,
    block: Option<Arc<SealedBlock>>,
    tracer: &Tracer,
) -> RpcResult<Vec<TraceResult<GethTrace, String>>> {
    let block = block.ok_or_else(block_not_found)?;
    let mut replay = replay_of(ctx, &block)?;
    let mut results = Vec::with_capacity(block.transactions.len());
    for tx in block.transactions.iter() {
        let tx_hash = Some(*tx.tx.inner().tx_hash());
        results.push(match tracer.trace(&mut replay, Target::Tx(&tx.tx)) {
            Ok(result) => TraceResult::Success { result, tx_hash },
            Err(err) => TraceResult::Error {
                error: err.message().to_string(),
                tx_hash,
            },
        });
    }
    Ok(results)
}

fn trace_call(
    ctx: &RpcContext,
    request: TransactionRequest,
    block: Option<BlockId>,
    options: Option<GethDebugTracingCallOptions>,
    limits: CallLimits,
) -> RpcResult<GethTrace> {
    let options = options.unwrap_or_default();
    if options.block_overrides.is_some() {
        return Err(invalid_params("blockOverrides are not supported"));
    }
    if options.tx_index.is_some() {
        return Err(invalid_params("txIndex is not supported"));
    }
    let tracer = Tracer::from_options(Some(options.tracing_options))?;
    let at = ctx.state_target(block)?;
    let gas = call::gas_for(&request, limits);
    let (reader, env) = call::call_setup(
        &ctx.chain,
        &at,
        &request,
        options.state_overrides.as_ref(),
        gas,
    )?;
    let chain_id = ctx.chain.spec().chain_id;
    let mut replay = Replay::on(ctx.chain.spec(), env, reader);
    tracer.trace(
        &mut replay,
        Target::Call(Box::new(call::tx_env(&request, gas, chain_id))),
    )
}

fn block_not_found() -> jsonrpsee::types::ErrorObjectOwned {
    server_error("block not found")
}

/// `debug_traceBlockByNumber` and `debug_traceBlockByHash`.
async fn trace_block_by_id(
    ctx: Arc<RpcContext>,
    id: BlockId,
    options: Option<GethDebugTracingOptions>,
) -> RpcResult<Vec<TraceResult<GethTrace, String>>> {
    let tracer = Tracer::from_options(options)?;
    let inner = ctx.clone();
    bounded(&ctx, move || {
        let block = inner.block_by_id(id)?;
        trace_block(&inner, block, &tracer)
    })
    .await
}

/// Registers the raw encodings, and the `debug_trace*` methods if `tracing`.
pub fn register(
    module: &mut RpcModule<RpcContext>,
    tracing: bool,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    // Raw encodings, as geth serves them: the header's and the block's RLP, and the
    // receipts' EIP-2718 encodings (what a receipts root commits to).
    module.register_async_method("debug_getRawHeader", |params, ctx, _| async move {
        let id: BlockId = params.one()?;
        blocking(move || -> RpcResult<Bytes> {
            let block = ctx.block_by_id(id)?.ok_or_else(block_not_found)?;
            Ok(alloy_rlp::encode(&block.header).into())
        })
        .await
    })?;
    module.register_async_method("debug_getRawBlock", |params, ctx, _| async move {
        let id: BlockId = params.one()?;
        blocking(move || -> RpcResult<Bytes> {
            let block = ctx.block_by_id(id)?.ok_or_else(block_not_found)?;
            let body = alloy_consensus::BlockBody {
                transactions: block
                    .transactions
                    .iter()
                    .map(|tx| tx.tx.inner().clone())
                    .collect::<Vec<_>>(),
                ommers: Vec::new(),
                withdrawals: Some(Default::default()),
            };
            let full = alloy_consensus::Block::new(block.header.clone(), body);
            Ok(alloy_rlp::encode(&full).into())
        })
        .await
    })?;
    module.register_async_method("debug_getRawReceipts", |params, ctx, _| async move {
        let id: BlockId = params.one()?;
        blocking(move || -> RpcResult<Vec<Bytes>> {
            let block = ctx.block_by_id(id)?.ok_or_else(block_not_found)?;
            Ok(block
                .receipts
                .iter()
                .map(|receipt| receipt.encoded_2718().into())
                .collect())
        })
        .await
    })?;
    if !tracing {
        return Ok(());
    }
    module.register_async_method("debug_traceTransaction", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let hash: B256 = seq.next()?;
        let tracer = Tracer::from_options(seq.optional_next()?)?;
        let inner = ctx.clone();
        bounded(&ctx, move || trace_transaction(&inner, hash, &tracer)).await
    })?;
    module.register_async_method("debug_traceBlockByNumber", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let number: BlockNumberOrTag = seq.next()?;
        trace_block_by_id(ctx, BlockId::Number(number), seq.optional_next()?).await
    })?;
    module.register_async_method("debug_traceBlockByHash", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let hash: B256 = seq.next()?;
        trace_block_by_id(ctx, BlockId::from(hash), seq.optional_next()?).await
    })?;
    module.register_async_method("debug_traceCall", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let request: TransactionRequest = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let options: Option<GethDebugTracingCallOptions> = seq.optional_next()?;
        let limits = CallLimits {
            gas_cap: ctx.config.gas_cap,
        };
        let inner = ctx.clone();
        bounded(&ctx, move || {
            trace_call(&inner, request, block, options, limits)
        })
        .await
    })?;
    Ok(())
}
