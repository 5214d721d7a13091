//! Rust bindings of the L1 contracts, generated at build time by alloy's `sol!` from the ABI and
//! bytecode copies committed in `l1-bridge/abi/` (refreshed from forge's artifacts by
//! `abi/update.sh`; `tests/abi_sync.rs` fails when they drift from `contracts/out`).
//!
//! Each contract module holds its calls, events, custom errors, the creation `BYTECODE` and the
//! runtime `DEPLOYED_BYTECODE` (the L2 genesis installs `L2WithdrawalQueue`'s).
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    LanesRollup,
    "abi/LanesRollup.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    LanesPortal,
    "abi/LanesPortal.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    L2WithdrawalQueue,
    "abi/L2WithdrawalQueue.json"
);
