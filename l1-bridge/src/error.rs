//! [`L1Error`]: what went wrong talking to L1, classified by what the caller should do about it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use alloy::contract::Error as ContractError;
use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::{ContractObject, Error as AbiError};
use alloy::primitives::{B256, Bytes, Selector};
use alloy::sol_types::{Panic, Revert, SolError};
use alloy::transports::{RpcError, TransportErrorKind};

/// Result of an L1 operation.
pub type L1Result<T> = Result<T, L1Error>;

/// What a caller should do with an [`L1Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// L1 is unreachable, slow or not ready: try again later, with backoff.
    Retryable,
    /// L1 refused this particular request (a revert, a failed transaction): retrying the same
    /// request gives the same answer; change the request or report it.
    Rejected,
    /// Misconfiguration or an L1 that does not look like ours: stop and tell the operator.
    Fatal,
}

/// Why an L1 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// The L1 node could not be reached or did not answer in time (connection refused, timeout,
    /// malformed or empty response).
    #[error("L1 unreachable during {context}: {message}")]
    Unavailable {
        /// The operation, e.g. `eth_getLogs`.
        context: &'static str,
        /// The transport's description.
        message: String,
    },
    /// The L1 node answered with a JSON-RPC error that is not a revert (e.g. `header not found`,
    /// `nonce too low`, `insufficient funds`). Retryable: these clear up on their own or once the
    /// operator acts (funds the key), and a transaction manager inspects `message` to adapt.
    #[error("L1 node refused {context}: {message} (code {code})")]
    Node {
        /// The operation.
        context: &'static str,
        /// JSON-RPC error code.
        code: i64,
        /// JSON-RPC error message.
        message: String,
    },
    /// A call or transaction reverted in the EVM, e.g. `NotSequencer(0x…)`.
    #[error("{context} reverted: {reason}")]
    Reverted {
        /// The operation.
        context: &'static str,
        /// The decoded revert, e.g. `UnexpectedBatchIndex(2, 5)`, or the raw data in hex.
        reason: String,
        /// The custom error's name (`NotSequencer`), `Error` for a `revert("…")`, `Panic`, or
        /// `None` when the revert data matches no error of the lanes contracts.
        name: Option<String>,
        /// The raw revert data.
        data: Bytes,
    },
    /// A transaction was mined but failed (status 0).
    #[error("transaction {tx_hash} failed on L1 ({context})")]
    TxFailed {
        /// The operation.
        context: &'static str,
        /// The failed transaction.
        tx_hash: B256,
    },
    /// A sent transaction had no receipt within the wait limit: it may still be mined.
    #[error("no receipt for transaction {tx_hash} after {waited:?}")]
    ReceiptTimeout {
        /// The pending transaction.
        tx_hash: B256,
        /// How long we waited.
        waited: Duration,
    },
    /// The L1 settings are unusable (missing URL or key, malformed key, no signer for a send).
    #[error("invalid L1 configuration: {0}")]
    Config(String),
    /// No `anvil` binary was found, so no local L1 can be started; the node runs L2-only.
    #[error(
        "anvil not found (looked for {searched}); install Foundry (`make tools`) or set l1.anvil_path, or configure l1.rpc_url"
    )]
    AnvilNotFound {
        /// The places looked at, comma separated.
        searched: String,
    },
    /// `anvil` was found but did not start.
    #[error("could not start anvil: {0}")]
    Anvil(String),
    /// L1 returned data our contracts cannot have produced (undecodable event, call output, or
    /// no code at a contract address): wrong address or ABI drift.
    #[error("unexpected L1 data during {context}: {message}")]
    InvalidData {
        /// The operation.
        context: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The portal's deposit nonces skipped one: the watcher started after the first deposit or
    /// missed a block, so L2 would lose a message.
    #[error(
        "L1 message nonce gap: expected deposit nonce {expected}, found {found} in L1 block {block} (is the watcher's start block the portal's deploy block?)"
    )]
    NonceGap {
        /// The nonce the next message must have.
        expected: u64,
        /// The nonce found.
        found: u64,
        /// The L1 block holding it.
        block: u64,
    },
    /// The L2 node (read when proving a withdrawal) failed or lacks what was asked, e.g. a
    /// proof for a block outside its history.
    #[error("L2 node: {context}: {message}")]
    L2 {
        /// The operation, e.g. `eth_getProof`.
        context: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The watcher's cursor could not be read or written.
    #[error("L1 cursor store: {0}")]
    Cursor(String),
}

impl L1Error {
    /// What the caller should do.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. }
            | Self::Node { .. }
            | Self::ReceiptTimeout { .. }
            | Self::L2 { .. } => ErrorClass::Retryable,
            Self::Reverted { .. } | Self::TxFailed { .. } => ErrorClass::Rejected,
            Self::Config(_)
            | Self::AnvilNotFound { .. }
            | Self::Anvil(_)
            | Self::InvalidData { .. }
            | Self::NonceGap { .. }
            | Self::Cursor(_) => ErrorClass::Fatal,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// The custom error's name when this is a decoded revert, e.g. `Some("NotSequencer")`.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { name, .. } => name.as_deref(),
            _ => None,
        }
    }

    /// Classifies an RPC error of `context`.
    pub(crate) fn rpc(context: &'static str, error: RpcError<TransportErrorKind>) -> Self {
        match error {
            RpcError::ErrorResp(payload) => {
                if let Some(data) = payload.as_revert_data() {
                    return Self::reverted(context, data);
                }
                // Some nodes report `require(cond)` without data as a plain message.
                if payload.message.contains("revert") {
                    return Self::Reverted {
                        context,
                        reason: payload.message.to_string(),
                        name: None,
                        data: Bytes::new(),
                    };
                }
                Self::Node {
                    context,
                    code: payload.code,
                    message: payload.message.to_string(),
                }
            }
            // A proxy in front of the node answering HTML or an empty body is as good as down.
            RpcError::Transport(_) | RpcError::NullResp | RpcError::DeserError { .. } => {
                Self::Unavailable {
                    context,
                    message: error.to_string(),
                }
            }
            RpcError::LocalUsageError(_)
            | RpcError::SerError(_)
            | RpcError::UnsupportedFeature(_) => Self::Config(format!("{context}: {error}")),
        }
    }

    /// Classifies an error of a contract binding call.
    pub(crate) fn contract(context: &'static str, error: ContractError) -> Self {
        match error {
            ContractError::TransportError(e) => Self::rpc(context, e),
            ContractError::PendingTransactionError(e) => Self::Unavailable {
                context,
                message: e.to_string(),
            },
            e @ (ContractError::ZeroData(..)
            | ContractError::AbiError(_)
            | ContractError::UnknownFunction(_)
            | ContractError::UnknownSelector(_)
            | ContractError::NotADeploymentTransaction
            | ContractError::ContractNotDeployed) => Self::InvalidData {
                context,
                message: e.to_string(),
            },
        }
    }

    /// A revert with `data`, decoded against the lanes contracts' errors.
    pub(crate) fn reverted(context: &'static str, data: Bytes) -> Self {
        let (name, reason) = match decode_revert(&data) {
            Some((name, reason)) => (Some(name), reason),
            None => (None, format!("unknown revert data {data}")),
        };
        Self::Reverted {
            context,
            reason,
            name,
            data,
        }
    }
}

/// Every custom error of the lanes contracts by selector, read from the same ABI copies the
/// bindings are generated from, so a new error in a contract is decoded without code changes.
static CONTRACT_ERRORS: LazyLock<HashMap<Selector, AbiError>> = LazyLock::new(|| {
    let mut errors = HashMap::new();
    for json in [
        include_str!("../abi/LanesRollup.json"),
        include_str!("../abi/LanesPortal.json"),
        include_str!("../abi/L2WithdrawalQueue.json"),
    ] {
        // tests/abi_sync.rs parses the same files, so a broken copy fails the build's tests.
        let Ok(object) = serde_json::from_str::<ContractObject>(json) else {
            continue;
        };
        for error in object
            .abi
            .into_iter()
            .flat_map(|abi| abi.errors.into_values().flatten())
        {
            errors.insert(error.selector(), error);
        }
    }
    errors
});

/// Decodes revert data into the error's name and a readable form such as
/// `NotSequencer(0x70997970C51812dc3A010C7d01b50e0d17dc79C8)`.
pub fn decode_revert(data: &[u8]) -> Option<(String, String)> {
    let selector = Selector::try_from(data.get(..4)?).ok()?;
    if selector == Revert::SELECTOR {
        let revert = Revert::abi_decode(data).ok()?;
        return Some(("Error".into(), format!("Error({:?})", revert.reason)));
    }
    if selector == Panic::SELECTOR {
        let panic = Panic::abi_decode(data).ok()?;
        return Some(("Panic".into(), format!("Panic({:#x})", panic.code)));
    }
    let error = CONTRACT_ERRORS.get(&selector)?;
    let values = error.abi_decode_input(&data[4..]).ok()?;
    let mut reason = format!("{}(", error.name);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            reason.push_str(", ");
        }
        format_value(&mut reason, value);
    }
    reason.push(')');
    Some((error.name.clone(), reason))
}

fn format_value(out: &mut String, value: &DynSolValue) {
    // Writing to a String cannot fail.
    let _ = match value {
        DynSolValue::Address(a) => write!(out, "{a}"),
        DynSolValue::Uint(v, _) => write!(out, "{v}"),
        DynSolValue::Int(v, _) => write!(out, "{v}"),
        DynSolValue::Bool(b) => write!(out, "{b}"),
        DynSolValue::FixedBytes(word, size) => {
            write!(out, "{}", Bytes::copy_from_slice(&word[..*size]))
        }
        DynSolValue::Bytes(b) => write!(out, "{}", Bytes::copy_from_slice(b)),
        DynSolValue::String(s) => write!(out, "{s:?}"),
        other => write!(out, "{other:?}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::LanesRollup;
    use alloy::primitives::{U256, address};

    #[test]
    fn decodes_custom_errors_by_name() {
        let data = LanesRollup::NotSequencer {
            caller: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        }
        .abi_encode();
        let (name, reason) = decode_revert(&data).unwrap();
        assert_eq!(name, "NotSequencer");
        assert_eq!(
            reason,
            "NotSequencer(0x70997970C51812dc3A010C7d01b50e0d17dc79C8)"
        );

        let data = LanesRollup::UnexpectedBatchIndex {
            expected: U256::from(2),
            given: U256::from(5),
        }
        .abi_encode();
        assert_eq!(
            decode_revert(&data).unwrap().1,
            "UnexpectedBatchIndex(2, 5)"
        );
    }

    #[test]
    fn decodes_string_reverts_and_panics() {
        let data = Revert::from("nope").abi_encode();
        assert_eq!(
            decode_revert(&data).unwrap(),
            ("Error".into(), "Error(\"nope\")".into())
        );
        let data = Panic {
            code: U256::from(0x11),
        }
        .abi_encode();
        assert_eq!(decode_revert(&data).unwrap().1, "Panic(0x11)");
        assert!(decode_revert(&[1, 2, 3, 4]).is_none());
        assert!(decode_revert(&[]).is_none());
    }

    #[test]
    fn classes() {
        let unavailable = L1Error::Unavailable {
            context: "eth_blockNumber",
            message: "connection refused".into(),
        };
        assert!(unavailable.is_retryable());
        let reverted = L1Error::reverted(
            "submitBatch",
            LanesRollup::SubmissionsPaused {}.abi_encode().into(),
        );
        assert_eq!(reverted.class(), ErrorClass::Rejected);
        assert_eq!(reverted.revert_name(), Some("SubmissionsPaused"));
        assert_eq!(L1Error::Config("x".into()).class(), ErrorClass::Fatal);
    }
}
