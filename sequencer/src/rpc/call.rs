//! `eth_call` and `eth_estimateGas`: transactions executed on a snapshot of the latest state,
//! never committed.

use super::error::{RpcResult, SERVER_ERROR, execution_reverted, rpc_error, server_error};
use super::eth::StateTarget;
use crate::chain::Chain;
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, TxKind, U256, keccak256};
use alloy_rpc_types_eth::{AccessListResult, TransactionRequest, state::StateOverride};
use lanes_executor::{
    BlockState, CodeCache, ExecutorError, OverlayReader, Replay, StateChanges, StateReader,
    StoredAccount, evm::build_evm,
};
use revm::{
    ExecuteEvm,
    context::{
        TxEnv,
        result::{EVMError, ExecutionResult, InvalidTransaction},
    },
};
use revm_inspectors::access_list::AccessListInspector;
use std::sync::Arc;

/// Limits for simulated calls.
#[derive(Clone, Copy, Debug)]
pub struct CallLimits {
    /// Highest gas a call may use.
    pub gas_cap: u64,
}

/// Builds the overlay that `stateOverrides` describe.
fn apply_overrides(
    base: &impl StateReader,
    overrides: &StateOverride,
) -> Result<StateChanges, ExecutorError> {
    let mut changes = StateChanges::default();
    for (address, o) in overrides {
        let mut account = base.account(*address)?.unwrap_or(StoredAccount::EMPTY);
        if let Some(balance) = o.balance {
            account.balance = balance;
        }
        if let Some(nonce) = o.nonce {
            account.nonce = nonce;
        }
        if let Some(code) = &o.code {
            account.code_hash = if code.is_empty() {
                KECCAK256_EMPTY
            } else {
                keccak256(code)
            };
            changes.codes.insert(account.code_hash, code.clone());
        }
        let change = changes.accounts.entry(*address).or_default();
        change.info = Some(account);
        if let Some(state) = &o.state {
            change.storage_cleared = true;
            change.storage.extend(
                state
                    .iter()
                    .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))),
            );
        }
        if let Some(diff) = &o.state_diff {
            change.storage.extend(
                diff.iter()
                    .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))),
            );
        }
    }
    Ok(changes)
}

pub(super) fn tx_env(request: &TransactionRequest, gas: u64, chain_id: u64) -> TxEnv {
    let gas_price = request
        .max_fee_per_gas
        .or(request.gas_price)
        .unwrap_or_default();
    TxEnv {
        tx_type: request
            .transaction_type
            // An access list is charged for whatever the type, as geth charges it.
            .unwrap_or(if request.max_fee_per_gas.is_some() {
                2
            } else if request.access_list.is_some() {
                1
            } else {
                0
            }),
        caller: request.from.unwrap_or(Address::ZERO),
        gas_limit: gas,
        gas_price,
        kind: request.to.unwrap_or(TxKind::Create),
        value: request.value.unwrap_or_default(),
        data: request.input.input().cloned().unwrap_or_default(),
        nonce: request.nonce.unwrap_or_default(),
        chain_id: Some(request.chain_id.unwrap_or(chain_id)),
        access_list: request.access_list.clone().unwrap_or_default(),
        gas_priority_fee: request.max_priority_fee_per_gas,
        blob_hashes: Vec::new(),
        max_fee_per_blob_gas: 0,
        authorization_list: Vec::new(),
    }
}

/// Runs `request` on the state `at` names with `gas` gas; returns revm's result.
pub fn simulate(
    chain: &Chain,
    at: &StateTarget,
    request: &TransactionRequest,
    overrides: Option<&StateOverride>,
    gas: u64,
) -> RpcResult<ExecutionResult> {
    let (reader, env) = call_setup(chain, at, request, overrides, gas)?;
    let mut db = BlockState::new(reader, CodeCache::default());
    let spec = chain.spec();
    let mut evm = build_evm(spec, env.block_env(), &mut db, |cfg| {
        cfg.disable_nonce_check = true;
    });
    match evm.transact(tx_env(request, gas, spec.chain_id)) {
        Ok(out) => Ok(out.result),
        Err(err) => Err(call_error(err)),
    }
}

/// The state and block context a call on `at` runs in: the state with `overrides` on top,
/// and the block's context with room for `gas` (and no base fee for a call that names no
/// fee, as geth runs it).
pub(super) fn call_setup<'c>(
    chain: &'c Chain,
    at: &StateTarget,
    request: &TransactionRequest,
    overrides: Option<&StateOverride>,
    gas: u64,
) -> RpcResult<(
    OverlayReader<Arc<dyn StateReader + 'c>>,
    lanes_executor::BlockEnvInput,
)> {
    let storage = chain.storage();
    // The state, and the header whose block context the call runs in.
    let (base, header): (Arc<dyn StateReader + 'c>, _) = match at {
        StateTarget::Latest => (Arc::new(storage.snapshot()), chain.head().header.clone()),
        StateTarget::Past(state) => {
            let header = storage
                .header(state.number())
                .map_err(super::error::internal)?
                .ok_or_else(|| server_error("header not found"))?;
            (Arc::new(state.clone()), header)
        }
    };
    let changes = match overrides {
        Some(o) => apply_overrides(&base, o).map_err(super::error::internal)?,
        None => StateChanges::default(),
    };
    let reader = OverlayReader {
        base,
        changes: Arc::new(changes),
        block_hashes: Arc::default(),
    };
    let no_fee = request.gas_price.is_none()
        && request.max_fee_per_gas.is_none()
        && request.max_priority_fee_per_gas.is_none();
    let env = lanes_executor::BlockEnvInput {
        number: header.number,
        parent_hash: header.parent_hash,
        timestamp: header.timestamp,
        beneficiary: header.beneficiary,
        gas_limit: header.gas_limit.max(gas),
        // As geth: a call that names no fee runs with a zero base fee rather than failing
        // the fee-cap check.
        base_fee: if no_fee {
            0
        } else {
            header.base_fee_per_gas.unwrap_or_default()
        },
        prevrandao: header.mix_hash,
        parent_beacon_block_root: B256::ZERO,
        max_txs: 1,
        excess_blob_gas: 0,
    };
    Ok((reader, env))
}

/// The answer to a call revm refused to run, or whose state could not be read.
pub(super) fn call_error(err: EVMError<ExecutorError>) -> jsonrpsee::types::ErrorObjectOwned {
    match err {
        EVMError::Transaction(invalid) => invalid_tx_error(&invalid),
        EVMError::Database(err) => super::error::internal(err),
        other => server_error(other.to_string()),
    }
}

fn invalid_tx_error(invalid: &InvalidTransaction) -> jsonrpsee::types::ErrorObjectOwned {
    match invalid {
        InvalidTransaction::LackOfFundForMaxFee { .. } => {
            server_error("insufficient funds for gas * price + value")
        }
        InvalidTransaction::GasPriceLessThanBasefee => {
            server_error("max fee per gas less than block base fee")
        }
        InvalidTransaction::CallerGasLimitMoreThanBlock => server_error("exceeds block gas limit"),
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. } => {
            server_error("intrinsic gas too low")
        }
        other => server_error(other.to_string()),
    }
}

pub(super) fn gas_for(request: &TransactionRequest, limits: CallLimits) -> u64 {
    request
        .gas
        .map_or(limits.gas_cap, |g| g.min(limits.gas_cap))
}

/// `eth_call`.
pub fn call(
    chain: &Chain,
    at: &StateTarget,
    request: &TransactionRequest,
    overrides: Option<&StateOverride>,
    limits: CallLimits,
) -> RpcResult<Bytes> {
    match simulate(chain, at, request, overrides, gas_for(request, limits))? {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(execution_reverted(&output)),
        ExecutionResult::Halt { reason, .. } => Err(server_error(halt_message(&reason))),
    }
}

fn halt_message(reason: &revm::context::result::HaltReason) -> String {
    use revm::context::result::{HaltReason, OutOfGasError};
    match reason {
        HaltReason::OutOfGas(OutOfGasError::Basic) | HaltReason::OutOfGas(_) => "out of gas".into(),
        HaltReason::OpcodeNotFound | HaltReason::InvalidFEOpcode => "invalid opcode".into(),
        HaltReason::StackUnderflow => "stack underflow".into(),
        HaltReason::StackOverflow => "stack overflow".into(),
        HaltReason::InvalidJump => "invalid jump destination".into(),
        HaltReason::CallTooDeep => "max call depth exceeded".into(),
        HaltReason::CreateContractSizeLimit => "max code size exceeded".into(),
        HaltReason::CreateCollision => "contract address collision".into(),
        HaltReason::OutOfFunds => "insufficient balance for transfer".into(),
        HaltReason::StateChangeDuringStaticCall => "write protection".into(),
        other => format!("{other:?}"),
    }
}

/// `eth_estimateGas`: the least gas (within 1.5%, as geth) at which the call succeeds.
pub fn estimate_gas(
    chain: &Chain,
    at: &StateTarget,
    request: &TransactionRequest,
    overrides: Option<&StateOverride>,
    limits: CallLimits,
) -> RpcResult<u64> {
    let mut hi = gas_for(request, limits).min(chain.head().header.gas_limit.max(21_000));
    if let Some(price) = request
        .max_fee_per_gas
        .or(request.gas_price)
        .filter(|p| *p > 0)
    {
        // Cap by what the sender can pay for, as geth does.
        let from = request.from.unwrap_or(Address::ZERO);
        let balance = at
            .reader(chain)
            .account(from)
            .map_err(super::error::internal)?
            .map_or(U256::ZERO, |a| a.balance);
        let available = balance.saturating_sub(request.value.unwrap_or_default());
        let affordable = available / U256::from(price);
        if affordable < U256::from(hi) {
            hi = affordable.to::<u64>();
        }
    }
    let used = match simulate(chain, at, request, overrides, hi)? {
        ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
        ExecutionResult::Revert { output, .. } => return Err(execution_reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            return Err(match reason {
                revm::context::result::HaltReason::OutOfGas(_) => rpc_error(
                    SERVER_ERROR,
                    format!("gas required exceeds allowance ({hi})"),
                ),
                other => server_error(halt_message(&other)),
            });
        }
    };
    let succeeds = |gas: u64| -> RpcResult<bool> {
        Ok(matches!(
            simulate(chain, at, request, overrides, gas)?,
            ExecutionResult::Success { .. }
        ))
    };
    // Gas refunds and the 63/64 rule mean `used` may not be enough; try a close guess first.
    let mut lo = used.saturating_sub(1).max(20_999);
    let optimistic = (used + 2_300) * 64 / 63;
    if optimistic < hi && succeeds(optimistic)? {
        hi = optimistic;
    } else if optimistic < hi {
        lo = optimistic;
    }
    while lo + 1 < hi && (hi - lo) as f64 / hi as f64 > 0.015 {
        let mid = lo + (hi - lo) / 2;
        if succeeds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// Most executions `eth_createAccessList` runs to find a list that covers itself (each run
/// may reach accounts the previous list made cheaper to reach).
const ACCESS_LIST_ROUNDS: usize = 8;

/// `eth_createAccessList`, as geth computes it: the accounts and slots the call's code
/// touches (storage opcodes, account opcodes and calls, as `AccessListInspector` records
/// them), run again with that list until it stops changing, with the gas the last run used.
/// The sender, the recipient (or created contract) and the precompiles are listed only for
/// slots; accounts reached otherwise (the fee recipient paid its tip, a contract created
/// inside the call) are not listed, since listing them would only cost gas. The request's
/// own entries stay, except those naming the sender, the recipient or a precompile, which
/// keep only the slots the call touches. A call that reverts or fails still gets its list,
/// with the error.
pub fn create_access_list(
    chain: &Chain,
    at: &StateTarget,
    request: &TransactionRequest,
    overrides: Option<&StateOverride>,
    limits: CallLimits,
) -> RpcResult<AccessListResult> {
    let gas = gas_for(request, limits);
    let chain_id = chain.spec().chain_id;
    let mut list = request.access_list.clone().unwrap_or_default();
    let mut request = request.clone();
    // The list changes nothing in the state or block context a round runs in.
    let (reader, env) = call_setup(chain, at, &request, overrides, gas)?;
    for _ in 0..ACCESS_LIST_ROUNDS {
        request.access_list = Some(list.clone());
        let mut replay = Replay::on(chain.spec(), env.clone(), reader.clone());
        let (result, next) = replay
            .trace_call(
                tx_env(&request, gas, chain_id),
                AccessListInspector::new(list.clone()),
                |inspector, out, _| (out.result.clone(), inspector.into_access_list()),
            )
            .map_err(call_error)?;
        if next == list {
            let error = match &result {
                ExecutionResult::Success { .. } => None,
                ExecutionResult::Revert { output, .. } => {
                    Some(execution_reverted(output).message().to_string())
                }
                ExecutionResult::Halt { reason, .. } => Some(halt_message(reason)),
            };
            return Ok(AccessListResult {
                access_list: next,
                gas_used: U256::from(result.tx_gas_used()),
                error,
            });
        }
        list = next;
    }
    Err(server_error(format!(
        "access list did not settle in {ACCESS_LIST_ROUNDS} executions"
    )))
}
