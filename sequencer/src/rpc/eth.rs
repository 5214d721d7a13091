//! The `eth_`, `net_` and `web3_` namespaces.

use super::{
    RpcContext,
    call::{self, CallLimits},
    convert::{
        RpcReceipt, RpcTransaction, rpc_block, rpc_header, rpc_logs, rpc_pending_transaction,
        rpc_receipt, rpc_transaction,
    },
    error::{LIMIT_EXCEEDED, RpcResult, internal, invalid_params, rpc_error, server_error},
};
use crate::pool::{SubmitError, next_base_fee};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    Block, BlockId, BlockNumberOrTag, EIP1186AccountProofResponse, EIP1186StorageProof, FeeHistory,
    Filter, FilterBlockOption, Log, TransactionRequest, state::StateOverride,
};
use alloy_serde::JsonStorageKey;
use jsonrpsee::{RpcModule, types::Params};
use lanes_executor::{SealedBlock, StateReader};
use std::sync::Arc;

/// Tip suggested by `eth_maxPriorityFeePerGas` when recent blocks paid none: 0.001 gwei,
/// enough to order ahead of zero-tip transactions without overpaying on an L2.
const MIN_SUGGESTED_TIP: u128 = 1_000_000;

/// Most storage keys one `eth_getProof` may ask for: each costs a walk down the storage trie.
const MAX_PROOF_KEYS: usize = 1024;

/// Runs blocking work (RocksDB, EVM) off the async runtime's threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> RpcResult<T> + Send + 'static,
) -> RpcResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

/// [`blocking`] within `rpc.evm_timeout`, for work that runs the EVM on a caller's input
/// (calls, estimates, traces): geth's message when it runs out.
pub(super) async fn bounded<T: Send + 'static>(
    ctx: &RpcContext,
    work: impl FnOnce() -> RpcResult<T> + Send + 'static,
) -> RpcResult<T> {
    let timeout = ctx.config.evm_timeout;
    tokio::time::timeout(timeout, blocking(work))
        .await
        .map_err(|_| server_error(format!("execution aborted (timeout = {timeout:?})")))?
}

/// The `eth_sendRawTransaction` answer to a submission: geth's codes and messages.
pub(super) fn send_raw_response(result: Result<B256, SubmitError>) -> RpcResult<B256> {
    match result {
        Ok(hash) => Ok(hash),
        Err(SubmitError::Rejected(err)) => Err(rpc_error(err.rpc_code(), err.to_string())),
        Err(err @ SubmitError::ShuttingDown) => Err(server_error(err.to_string())),
        Err(SubmitError::Internal(err)) => Err(internal(err)),
    }
}

impl RpcContext {
    /// The number of the committed block a `BlockId` names, if it exists.
    fn block_number_by_id(&self, id: BlockId) -> RpcResult<Option<u64>> {
        let number = match id {
            BlockId::Number(tag) => self.chain.resolve(tag),
            BlockId::Hash(hash) => {
                match self
                    .chain
                    .storage()
                    .block_number(hash.block_hash)
                    .map_err(internal)?
                {
                    Some(n) => n,
                    None => return Ok(None),
                }
            }
        };
        Ok((number <= self.chain.head().number()).then_some(number))
    }

    /// The block a `BlockId` names, if it exists.
    pub(crate) fn block_by_id(&self, id: BlockId) -> RpcResult<Option<Arc<SealedBlock>>> {
        match self.block_number_by_id(id)? {
            Some(number) => self.chain.block(number).map_err(internal),
            None => Ok(None),
        }
    }

    /// Whose state a request for block `id` reads: the head's, or a recent block's that
    /// storage keeps (`storage.state_root_history`). Older states are refused rather than
    /// answered wrong; so are `safe` and `finalized` when they name such a block, as geth
    /// refuses a pruned state.
    pub(crate) fn state_target(&self, id: Option<BlockId>) -> RpcResult<StateTarget> {
        let id = id.unwrap_or_default();
        if let BlockId::Number(BlockNumberOrTag::Latest | BlockNumberOrTag::Pending) = id {
            return Ok(StateTarget::Latest);
        }
        let number = self
            .block_number_by_id(id)?
            .ok_or_else(|| server_error("header not found"))?;
        if number == self.chain.head().number() {
            return Ok(StateTarget::Latest);
        }
        match self.chain.storage().state_at(number).map_err(internal)? {
            Some(state) => Ok(StateTarget::Past(state)),
            None => Err(server_error(
                "historical state not available: this node keeps the state of recent blocks \
                 only (storage.state_root_history)",
            )),
        }
    }

    fn limits(&self) -> CallLimits {
        CallLimits {
            gas_cap: self.config.gas_cap,
        }
    }

    fn suggested_tip(&self) -> u128 {
        let head = self.chain.head();
        let base_fee = head.header.base_fee_per_gas;
        let mut tips: Vec<u128> = head
            .transactions
            .iter()
            .filter_map(|t| {
                alloy_consensus::Transaction::effective_tip_per_gas(
                    t.tx.inner(),
                    base_fee.unwrap_or_default(),
                )
            })
            .collect();
        tips.sort_unstable();
        tips.get(tips.len() / 2)
            .copied()
            .unwrap_or(0)
            .max(MIN_SUGGESTED_TIP)
    }

    fn next_base_fee(&self) -> u64 {
        next_base_fee(&self.chain.head().header, self.chain.spec().base_fee_floor)
    }
}

fn hex_u64(value: u64) -> U64 {
    U64::from(value)
}

/// Registers the namespaces on `module`.
pub fn register(
    module: &mut RpcModule<RpcContext>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("eth_chainId", |_, ctx, _| -> RpcResult<U64> {
        Ok(hex_u64(ctx.chain.spec().chain_id))
    })?;
    module.register_method("net_version", |_, ctx, _| -> RpcResult<String> {
        Ok(ctx.chain.spec().chain_id.to_string())
    })?;
    module.register_method("net_listening", |_, _, _| -> RpcResult<bool> { Ok(true) })?;
    module.register_method("net_peerCount", |_, _, _| -> RpcResult<U64> {
        Ok(U64::ZERO)
    })?;
    module.register_method("web3_clientVersion", |_, ctx, _| -> RpcResult<String> {
        Ok(ctx.client_version.clone())
    })?;
    module.register_method("web3_sha3", |params: Params<'_>, _, _| -> RpcResult<B256> {
        let data: Bytes = params.one()?;
        Ok(alloy_primitives::keccak256(&data))
    })?;
    module.register_method("eth_blockNumber", |_, ctx, _| -> RpcResult<U64> {
        Ok(hex_u64(ctx.chain.head().number()))
    })?;
    module.register_method("eth_syncing", |_, _, _| -> RpcResult<bool> { Ok(false) })?;
    module.register_method("eth_accounts", |_, _, _| -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    })?;
    module.register_method("eth_gasPrice", |_, ctx, _| -> RpcResult<U256> {
        Ok(U256::from(
            ctx.next_base_fee() as u128 + ctx.suggested_tip(),
        ))
    })?;
    module.register_method("eth_maxPriorityFeePerGas", |_, ctx, _| -> RpcResult<U256> {
        Ok(U256::from(ctx.suggested_tip()))
    })?;
    module.register_method("eth_blobBaseFee", |_, _, _| -> RpcResult<U256> {
        Ok(U256::from(1))
    })?;

    module.register_async_method("eth_getBalance", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let at = ctx.state_target(block)?;
        blocking(move || {
            let account = at.reader(&ctx.chain).account(address).map_err(internal)?;
            Ok(account.map_or(U256::ZERO, |a| a.balance))
        })
        .await
    })?;
    module.register_async_method("eth_getTransactionCount", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
            return ctx
                .pool
                .pending_nonce(address)
                .map(hex_u64)
                .map_err(internal);
        }
        let at = ctx.state_target(block)?;
        blocking(move || {
            let account = at.reader(&ctx.chain).account(address).map_err(internal)?;
            Ok(hex_u64(account.map_or(0, |a| a.nonce)))
        })
        .await
    })?;
    module.register_async_method("eth_getCode", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let at = ctx.state_target(block)?;
        blocking(move || {
            let state = at.reader(&ctx.chain);
            let Some(account) = state.account(address).map_err(internal)? else {
                return Ok(Bytes::new());
            };
            Ok(state
                .code(account.code_hash)
                .map_err(internal)?
                .unwrap_or_default())
        })
        .await
    })?;
    module.register_async_method("eth_getStorageAt", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let address: Address = seq.next()?;
        let slot: U256 = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let at = ctx.state_target(block)?;
        blocking(move || {
            let value = at
                .reader(&ctx.chain)
                .storage(address, slot)
                .map_err(internal)?;
            Ok(B256::from(value))
        })
        .await
    })?;
    module.register_async_method("eth_getProof", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let address: Address = seq.next()?;
        let keys: Vec<JsonStorageKey> = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        if keys.len() > MAX_PROOF_KEYS {
            return Err(invalid_params(format!(
                "too many storage keys: {} (at most {MAX_PROOF_KEYS})",
                keys.len()
            )));
        }
        blocking(move || get_proof(&ctx, address, keys, block)).await
    })?;
    module.register_async_method("eth_call", |params, ctx, _| async move {
        simulated(ctx, params, call::call).await
    })?;
    module.register_async_method("eth_estimateGas", |params, ctx, _| async move {
        simulated(ctx, params, |chain, at, request, overrides, limits| {
            call::estimate_gas(chain, at, request, overrides, limits).map(hex_u64)
        })
        .await
    })?;
    module.register_async_method("eth_createAccessList", |params, ctx, _| async move {
        simulated(ctx, params, call::create_access_list).await
    })?;
    module.register_async_method("eth_sendRawTransaction", |params, ctx, _| async move {
        let raw: Bytes = params.one()?;
        send_raw_response(ctx.pool.submit_raw(raw.to_vec()).await)
    })?;
    module.register_async_method("eth_sendRawTransactionSync", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let raw: Bytes = seq.next()?;
        let timeout: Option<U64> = seq.optional_next()?;
        send_raw_sync(&ctx, raw, timeout).await
    })?;
    module.register_async_method("eth_getTransactionByHash", |params, ctx, _| async move {
        let hash: B256 = params.one()?;
        if let Some(tx) = ctx.pool.get(&hash) {
            return Ok(Some(rpc_pending_transaction(&tx.tx)));
        }
        blocking(move || -> RpcResult<Option<RpcTransaction>> {
            let Some(location) = ctx.chain.storage().tx_location(hash).map_err(internal)? else {
                return Ok(None);
            };
            let Some(block) = ctx.chain.block(location.block_number).map_err(internal)? else {
                return Ok(None);
            };
            Ok(Some(rpc_transaction(&block, location.index as usize)))
        })
        .await
    })?;
    module.register_async_method("eth_getTransactionReceipt", |params, ctx, _| async move {
        let hash: B256 = params.one()?;
        blocking(move || -> RpcResult<Option<RpcReceipt>> {
            let Some(location) = ctx.chain.storage().tx_location(hash).map_err(internal)? else {
                return Ok(None);
            };
            let Some(block) = ctx.chain.block(location.block_number).map_err(internal)? else {
                return Ok(None);
            };
            Ok(Some(rpc_receipt(&block, location.index as usize)))
        })
        .await
    })?;
    module.register_async_method("eth_getBlockByNumber", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let tag: BlockNumberOrTag = seq.next()?;
        let full: bool = seq.optional_next()?.unwrap_or(false);
        blocking(move || -> RpcResult<Option<Block<RpcTransaction>>> {
            Ok(ctx
                .block_by_id(BlockId::Number(tag))?
                .map(|b| rpc_block(&b, full)))
        })
        .await
    })?;
    module.register_async_method("eth_getBlockByHash", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let hash: B256 = seq.next()?;
        let full: bool = seq.optional_next()?.unwrap_or(false);
        blocking(move || -> RpcResult<Option<Block<RpcTransaction>>> {
            Ok(ctx
                .block_by_id(BlockId::from(hash))?
                .map(|b| rpc_block(&b, full)))
        })
        .await
    })?;
    module.register_async_method("eth_getBlockReceipts", |params, ctx, _| async move {
        let id: BlockId = params.one()?;
        blocking(move || -> RpcResult<Option<Vec<RpcReceipt>>> {
            Ok(ctx.block_by_id(id)?.map(|b| {
                (0..b.transactions.len())
                    .map(|i| rpc_receipt(&b, i))
                    .collect()
            }))
        })
        .await
    })?;
    for method in [
        "eth_getBlockTransactionCountByNumber",
        "eth_getBlockTransactionCountByHash",
    ] {
        module.register_async_method(method, |params, ctx, _| async move {
            let id: BlockId = params.one()?;
            blocking(move || -> RpcResult<Option<U64>> {
                Ok(ctx
                    .block_by_id(id)?
                    .map(|b| hex_u64(b.transactions.len() as u64)))
            })
            .await
        })?;
    }
    // A rollup has no uncles and no miners; explorers and older clients still ask.
    for method in [
        "eth_getUncleCountByBlockNumber",
        "eth_getUncleCountByBlockHash",
    ] {
        module.register_async_method(method, |params, ctx, _| async move {
            let id: BlockId = params.one()?;
            blocking(move || -> RpcResult<Option<U64>> {
                Ok(ctx.block_number_by_id(id)?.map(|_| U64::ZERO))
            })
            .await
        })?;
    }
    for method in [
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getUncleByBlockHashAndIndex",
    ] {
        module.register_method(method, |params, _, _| -> RpcResult<Option<()>> {
            let mut seq = params.sequence();
            let _: BlockId = seq.next()?;
            let _: U64 = seq.next()?;
            Ok(None)
        })?;
    }
    module.register_method("eth_mining", |_, _, _| -> RpcResult<bool> { Ok(false) })?;
    module.register_method("eth_hashrate", |_, _, _| -> RpcResult<U64> {
        Ok(U64::ZERO)
    })?;
    for method in [
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByBlockHashAndIndex",
    ] {
        module.register_async_method(method, |params, ctx, _| async move {
            let mut seq = params.sequence();
            let id: BlockId = seq.next()?;
            let index: U64 = seq.next()?;
            blocking(move || -> RpcResult<Option<RpcTransaction>> {
                let Some(block) = ctx.block_by_id(id)? else {
                    return Ok(None);
                };
                let index = index.to::<usize>();
                Ok((index < block.transactions.len()).then(|| rpc_transaction(&block, index)))
            })
            .await
        })?;
    }
    // The EIP-2718 encodings, as `cast tx --raw` asks for them.
    for method in ["eth_getRawTransactionByHash", "debug_getRawTransaction"] {
        module.register_async_method(method, |params, ctx, _| async move {
            let hash: B256 = params.one()?;
            if let Some(tx) = ctx.pool.get(&hash) {
                return Ok(Some(Bytes::from(tx.tx.inner().encoded_2718())));
            }
            blocking(move || -> RpcResult<Option<Bytes>> {
                let Some(location) = ctx.chain.storage().tx_location(hash).map_err(internal)?
                else {
                    return Ok(None);
                };
                let block = ctx.chain.block(location.block_number).map_err(internal)?;
                Ok(block.and_then(|block| {
                    let tx = block.transactions.get(location.index as usize)?;
                    Some(Bytes::from(tx.tx.inner().encoded_2718()))
                }))
            })
            .await
        })?;
    }
    for method in [
        "eth_getRawTransactionByBlockNumberAndIndex",
        "eth_getRawTransactionByBlockHashAndIndex",
    ] {
        module.register_async_method(method, |params, ctx, _| async move {
            let mut seq = params.sequence();
            let id: BlockId = seq.next()?;
            let index: U64 = seq.next()?;
            blocking(move || -> RpcResult<Option<Bytes>> {
                let Some(block) = ctx.block_by_id(id)? else {
                    return Ok(None);
                };
                let tx = block.transactions.get(index.to::<usize>());
                Ok(tx.map(|tx| Bytes::from(tx.tx.inner().encoded_2718())))
            })
            .await
        })?;
    }
    module.register_async_method("eth_getLogs", |params, ctx, _| async move {
        let filter: Filter = params.one()?;
        blocking(move || get_logs(&ctx, &filter)).await
    })?;
    module.register_async_method("eth_feeHistory", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let count: U64 = seq.next()?;
        let newest: BlockNumberOrTag = seq.next()?;
        let percentiles: Option<Vec<f64>> = seq.optional_next()?;
        blocking(move || fee_history(&ctx, count.to::<u64>(), newest, percentiles)).await
    })?;
    Ok(())
}

/// Whose state a request reads.
#[derive(Clone, Debug)]
pub(crate) enum StateTarget {
    /// The head's (the flat store, with the block being written).
    Latest,
    /// A recent block's, kept by storage.
    Past(lanes_executor::StateAt),
}

impl StateTarget {
    /// A reader of that state.
    pub(crate) fn reader<'a>(&'a self, chain: &'a crate::chain::Chain) -> &'a dyn StateReader {
        match self {
            StateTarget::Latest => chain.storage().as_ref(),
            StateTarget::Past(state) => state,
        }
    }
}

/// The methods that simulate a transaction request (`eth_call` and the like): parses
/// `[request, block?, stateOverrides?]`, checks that the block's state is served, and runs
/// `work` off the runtime's threads within `rpc.evm_timeout`.
async fn simulated<T: Send + 'static>(
    ctx: Arc<RpcContext>,
    params: Params<'static>,
    work: impl FnOnce(
        &crate::chain::Chain,
        &StateTarget,
        &TransactionRequest,
        Option<&StateOverride>,
        CallLimits,
    ) -> RpcResult<T>
    + Send
    + 'static,
) -> RpcResult<T> {
    let mut seq = params.sequence();
    let request: TransactionRequest = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let overrides: Option<StateOverride> = seq.optional_next()?;
    let at = ctx.state_target(block)?;
    let limits = ctx.limits();
    let runner = Arc::clone(&ctx);
    bounded(&ctx, move || {
        work(&runner.chain, &at, &request, overrides.as_ref(), limits)
    })
    .await
}

/// EIP-7966's code for a transaction not included within the timeout.
const SYNC_TIMEOUT: i32 = 4;
/// EIP-7966's code for a transaction the pool holds but cannot include yet.
const SYNC_NOT_READY: i32 = 5;

/// `eth_sendRawTransactionSync` (EIP-7966): submits as `eth_sendRawTransaction` does, then
/// waits for the transaction's receipt, up to the client's timeout in milliseconds if it is
/// positive and within `rpc.send_raw_sync_timeout`, otherwise that setting.
async fn send_raw_sync(
    ctx: &RpcContext,
    raw: Bytes,
    timeout: Option<U64>,
) -> RpcResult<RpcReceipt> {
    let limit = ctx.config.send_raw_sync_timeout;
    let timeout = timeout
        .map(|ms| std::time::Duration::from_millis(ms.saturating_to()))
        .filter(|t| !t.is_zero() && *t <= limit)
        .unwrap_or(limit);
    // Listening before submitting: the block that includes it cannot come first.
    let mut blocks = ctx.chain.subscribe();
    let hash = send_raw_response(ctx.pool.submit_raw(raw.to_vec()).await)?;
    if ctx.pool.lock().status(&hash) == Some(crate::mempool::TxStatus::Queued) {
        return Err(jsonrpsee::types::ErrorObjectOwned::owned(
            SYNC_NOT_READY,
            "The transaction was added to the mempool but wasn't processed due to a missing \
             nonce or insufficient funds. Please double-check your account and try again.",
            Some(hash),
        ));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let block = match tokio::time::timeout_at(deadline, blocks.recv()).await {
            Ok(Ok(block)) => block,
            // Blocks went by unseen (or the chain stopped): look the transaction up instead.
            Ok(Err(err)) => {
                if let Some(location) = ctx.chain.storage().tx_location(hash).map_err(internal)?
                    && let Some(block) = ctx.chain.block(location.block_number).map_err(internal)?
                {
                    return Ok(rpc_receipt(&block, location.index as usize));
                }
                if matches!(err, tokio::sync::broadcast::error::RecvError::Closed) {
                    return Err(server_error("sequencer is shutting down"));
                }
                continue;
            }
            Err(_) => {
                return Err(jsonrpsee::types::ErrorObjectOwned::owned(
                    SYNC_TIMEOUT,
                    format!(
                        "The transaction was added to the mempool but wasn't processed in \
                         {timeout:?}."
                    ),
                    Some(hash),
                ));
            }
        };
        if let Some(index) = block.transactions.iter().position(|tx| tx.hash() == hash) {
            return Ok(rpc_receipt(&block, index));
        }
    }
}

/// `eth_getProof` (EIP-1186) at the head or at one of the recent blocks whose state storage
/// keeps (`storage.state_root_history`).
fn get_proof(
    ctx: &RpcContext,
    address: Address,
    keys: Vec<JsonStorageKey>,
    block: Option<BlockId>,
) -> RpcResult<EIP1186AccountProofResponse> {
    let slots: Vec<B256> = keys.iter().map(JsonStorageKey::as_b256).collect();
    let storage = ctx.chain.storage();
    let head = ctx.chain.head().number();
    let number = match block.unwrap_or_default() {
        BlockId::Number(BlockNumberOrTag::Number(n)) => n,
        BlockId::Number(BlockNumberOrTag::Earliest) => 0,
        BlockId::Number(_) => head,
        BlockId::Hash(h) => storage
            .block_number(h.block_hash)
            .map_err(internal)?
            .ok_or_else(|| server_error("header not found"))?,
    };
    if number > head {
        return Err(server_error("header not found"));
    }
    let (_, proof) = storage
        .account_proof_at(number, address, &slots)
        .map_err(internal)?
        .ok_or_else(|| {
            server_error(
                "historical state not available: proofs are kept for recent blocks only \
                 (storage.state_root_history)",
            )
        })?;
    let storage_hash = proof.storage_root();
    let account = proof.account.unwrap_or_default();
    Ok(EIP1186AccountProofResponse {
        address,
        balance: account.balance,
        // An absent account reads as empty, as EIP-1186 describes it.
        code_hash: proof
            .account
            .map_or(alloy_primitives::KECCAK256_EMPTY, |a| a.code_hash),
        nonce: account.nonce,
        storage_hash,
        account_proof: proof.proof,
        storage_proof: keys
            .into_iter()
            .zip(proof.storage)
            .map(|(key, slot)| EIP1186StorageProof::new(key, slot.value, slot.proof))
            .collect(),
    })
}

/// `eth_getLogs` over committed blocks, bloom-filtered, with range and result limits.
pub(crate) fn get_logs(ctx: &RpcContext, filter: &Filter) -> RpcResult<Vec<Log>> {
    let head = ctx.chain.head().number();
    let (from, to) = match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            match ctx.chain.storage().block_number(*hash).map_err(internal)? {
                Some(n) => (n, n),
                None => return Err(server_error("unknown block")),
            }
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let from = from_block.map_or(head, |t| ctx.chain.resolve(t));
            let to = to_block.map_or(head, |t| ctx.chain.resolve(t)).min(head);
            if from > to {
                if from_block.is_some() && to_block.is_some() && from > head {
                    return Ok(Vec::new());
                }
                if from > to && from <= head {
                    return Err(invalid_params("invalid block range params"));
                }
                return Ok(Vec::new());
            }
            if to - from >= ctx.config.max_logs_block_range {
                return Err(rpc_error(
                    LIMIT_EXCEEDED,
                    format!(
                        "query exceeds max block range {}",
                        ctx.config.max_logs_block_range
                    ),
                ));
            }
            (from, to)
        }
    };
    let max = ctx.config.max_logs;
    let (logs, _) = logs_in_range(ctx, filter, from, to, max.saturating_add(1))?;
    if logs.len() > max {
        return Err(rpc_error(
            LIMIT_EXCEEDED,
            format!("query returned more than {max} results"),
        ));
    }
    Ok(logs)
}

/// The logs of blocks `from..=to` that match `filter`'s addresses and topics, in order.
/// Stops after the block that brings them to `max` or more; returns them with the last
/// block read.
pub(super) fn logs_in_range(
    ctx: &RpcContext,
    filter: &Filter,
    from: u64,
    to: u64,
    max: usize,
) -> RpcResult<(Vec<Log>, u64)> {
    let mut logs = Vec::new();
    for number in from..=to {
        if logs.len() >= max {
            return Ok((logs, number - 1));
        }
        let Some(header) = ctx.chain.storage().header(number).map_err(internal)? else {
            continue;
        };
        if !filter.matches_bloom(header.logs_bloom) {
            continue;
        }
        let Some(block) = ctx.chain.block(number).map_err(internal)? else {
            continue;
        };
        for index in 0..block.transactions.len() {
            logs.extend(rpc_logs(&block, index).into_iter().filter(|log| {
                filter.matches_address(log.inner.address)
                    && filter.matches_topics(log.inner.data.topics())
            }));
        }
    }
    Ok((logs, to))
}

fn fee_history(
    ctx: &RpcContext,
    count: u64,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
) -> RpcResult<FeeHistory> {
    if let Some(p) = &percentiles
        && (p.iter().any(|v| !(0.0..=100.0).contains(v)) || p.windows(2).any(|w| w[0] > w[1]))
    {
        return Err(invalid_params("invalid reward percentile"));
    }
    let head = ctx.chain.head().number();
    let newest = ctx.chain.resolve(newest);
    if newest > head {
        return Err(invalid_params("request beyond head block"));
    }
    let count = count.min(ctx.config.fee_history_max_blocks).min(newest + 1);
    if count == 0 {
        return Ok(FeeHistory::default());
    }
    let oldest = newest + 1 - count;
    let mut history = FeeHistory {
        oldest_block: oldest,
        ..Default::default()
    };
    let mut rewards = Vec::new();
    let mut last_header = None;
    for number in oldest..=newest {
        let Some(block) = ctx.chain.block(number).map_err(internal)? else {
            break;
        };
        let header = &block.header;
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        history.base_fee_per_gas.push(base_fee as u128);
        history
            .gas_used_ratio
            .push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
        history.base_fee_per_blob_gas.push(1);
        history.blob_gas_used_ratio.push(0.0);
        if let Some(percentiles) = &percentiles {
            rewards.push(block_rewards(&block, base_fee, percentiles));
        }
        last_header = Some(header.clone());
    }
    if let Some(header) = last_header {
        history
            .base_fee_per_gas
            .push(next_base_fee(&header, ctx.chain.spec().base_fee_floor) as u128);
        history.base_fee_per_blob_gas.push(1);
    }
    if percentiles.is_some() {
        history.reward = Some(rewards);
    }
    Ok(history)
}

/// Effective tips at the given gas-weighted percentiles, as geth computes them.
fn block_rewards(block: &SealedBlock, base_fee: u64, percentiles: &[f64]) -> Vec<u128> {
    let mut tips: Vec<(u128, u64)> = block
        .transactions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let tip = alloy_consensus::Transaction::effective_tip_per_gas(t.tx.inner(), base_fee)
                .unwrap_or(0);
            (tip, block.gas_used_by(i))
        })
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable_by_key(|(tip, _)| *tip);
    let total: u64 = tips.iter().map(|(_, g)| g).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut cumulative = 0u64;
            for (tip, gas) in &tips {
                cumulative += gas;
                if cumulative >= threshold {
                    return *tip;
                }
            }
            tips.last().map_or(0, |(tip, _)| *tip)
        })
        .collect()
}

/// `newHeads` payload for a block.
pub(crate) fn head_notification(block: &SealedBlock) -> alloy_rpc_types_eth::Header {
    rpc_header(block)
}
