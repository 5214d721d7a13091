//! JSON-RPC errors with geth's codes and messages.

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;

/// geth's code for server-side errors (txpool rejections, missing state, ...).
pub const SERVER_ERROR: i32 = -32000;
/// JSON-RPC 2.0 invalid params.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0 internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// geth's code for a reverted `eth_call` / `eth_estimateGas`, with the revert data attached.
pub const EXECUTION_REVERTED: i32 = 3;
/// geth's code for a limit exceeded (e.g. `eth_getLogs` range).
pub const LIMIT_EXCEEDED: i32 = -32005;

/// Result type of RPC handlers.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// An error with `code` and `message` and no data.
pub fn rpc_error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// `-32000` with `message`.
pub fn server_error(message: impl Into<String>) -> ErrorObjectOwned {
    rpc_error(SERVER_ERROR, message)
}

/// `-32602` with `message`.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    rpc_error(INVALID_PARAMS, message)
}

/// An internal failure; the detail goes to the log, the caller gets a generic message.
pub fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::error!(target: "lanes::rpc", %err, "internal error serving request");
    rpc_error(INTERNAL_ERROR, "internal error")
}

/// geth's revert error: code 3, "execution reverted[: reason]", data = revert output.
pub fn execution_reverted(output: &Bytes) -> ErrorObjectOwned {
    let message = match alloy_sol_types::decode_revert_reason(output) {
        // alloy prefixes `Error(string)` reasons with "revert: "; geth shows the bare reason.
        Some(reason) => {
            format!(
                "execution reverted: {}",
                reason.strip_prefix("revert: ").unwrap_or(&reason)
            )
        }
        None => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output.to_string()))
}
