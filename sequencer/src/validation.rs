//! Transaction decoding and admission checks.
//!
//! Error messages match go-ethereum's (`core/error.go`, `core/txpool`) so that
//! wallets and tooling written against geth recognise them; most tools match
//! on the message prefix, so the prefixes are kept verbatim and any detail is
//! appended after a colon the way geth wraps its errors.

use alloy_consensus::{Signed, Transaction, TxEnvelope, TxLegacy, transaction::Recovered};
use alloy_eips::{
    eip2718::{
        Decodable2718, EIP1559_TX_TYPE_ID, EIP2930_TX_TYPE_ID, EIP7702_TX_TYPE_ID, Eip2718Error,
    },
    eip7825::MAX_TX_GAS_LIMIT_OSAKA,
};
use alloy_primitives::{Address, U256};

use crate::mempool::{PoolLimits, PoolTransaction};

/// JSON-RPC error code geth uses for every transaction rejection, including
/// undecodable raw transactions.
pub const TX_REJECTED_RPC_CODE: i32 = -32000;

/// EIP-3860 limit on contract-creation input.
pub const MAX_INITCODE_SIZE: usize = 49_152;

const TX_GAS: u64 = 21_000;
const TX_GAS_CONTRACT_CREATION: u64 = 53_000;
const TX_DATA_ZERO_GAS: u64 = 4;
const TX_DATA_NON_ZERO_GAS: u64 = 16;
const INIT_CODE_WORD_GAS: u64 = 2;
const ACCESS_LIST_ADDRESS_GAS: u64 = 2_400;
const ACCESS_LIST_STORAGE_KEY_GAS: u64 = 1_900;
const PER_AUTHORIZATION_GAS: u64 = 25_000;
const TX_COST_FLOOR_PER_TOKEN: u64 = 10;

/// Why a transaction was refused. `Display` gives geth's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxValidationError {
    /// The raw bytes aren't a well-formed transaction.
    #[error("rlp: {0}")]
    Rlp(alloy_rlp::Error),
    /// Bytes follow the transaction.
    #[error("rlp: input contains more than one value")]
    TrailingBytes,
    /// Blob (EIP-4844) transactions, transaction types this chain doesn't
    /// know, and types from forks not yet active.
    #[error("transaction type not supported")]
    TxTypeNotSupported,
    /// A legacy transaction without an EIP-155 chain id.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    UnprotectedTx,
    /// Signed for another chain.
    #[error("invalid chain id: have {have}, want {want}")]
    InvalidChainId {
        /// Chain id in the transaction.
        have: u64,
        /// This chain's id.
        want: u64,
    },
    /// The signature doesn't recover to an address.
    #[error("invalid sender")]
    InvalidSender,
    /// The nonce was already used.
    #[error("nonce too low: address {address}, tx: {tx} state: {state}")]
    NonceTooLow {
        /// Sender.
        address: Address,
        /// Transaction nonce.
        tx: u64,
        /// Account nonce.
        state: u64,
    },
    /// The nonce is too far ahead of the sender's next nonce.
    #[error("nonce too high: address {address}, tx: {tx}, next: {next}, max gap: {max_gap}")]
    NonceTooHigh {
        /// Sender.
        address: Address,
        /// Transaction nonce.
        tx: u64,
        /// The sender's next nonce, counting its executable pool transactions.
        next: u64,
        /// Largest accepted distance above `next`.
        max_gap: u64,
    },
    /// Nonce `2^64-1`, which can never be followed.
    #[error("nonce has max value: address {address}, nonce: {nonce}")]
    NonceMax {
        /// Sender.
        address: Address,
        /// Transaction nonce.
        nonce: u64,
    },
    /// The sender can't pay for this transaction (plus its pooled
    /// predecessors).
    #[error(
        "insufficient funds for gas * price + value: address {address} have {have} want {want}"
    )]
    InsufficientFunds {
        /// Sender.
        address: Address,
        /// Balance.
        have: U256,
        /// Required balance.
        want: U256,
    },
    /// The gas limit doesn't cover the intrinsic cost.
    #[error("intrinsic gas too low: have {have}, want {want}")]
    IntrinsicGasTooLow {
        /// Gas limit.
        have: u64,
        /// Intrinsic gas.
        want: u64,
    },
    /// The gas limit doesn't cover the EIP-7623 calldata floor.
    #[error("insufficient gas for floor data gas cost: have {have}, want {want}")]
    FloorDataGas {
        /// Gas limit.
        have: u64,
        /// Floor data gas.
        want: u64,
    },
    /// Intrinsic gas doesn't fit in 64 bits.
    #[error("gas uint64 overflow")]
    GasUintOverflow,
    /// The gas limit exceeds the block gas limit.
    #[error("exceeds block gas limit")]
    ExceedsBlockGasLimit,
    /// The gas limit exceeds the per-transaction cap (`mempool.max_tx_gas`, and EIP-7825's
    /// from Osaka on).
    #[error("transaction gas limit too high (cap: {cap}, tx: {tx})")]
    GasLimitTooHigh {
        /// The cap.
        cap: u64,
        /// Gas limit.
        tx: u64,
    },
    /// `maxFeePerGas` is below the base fee (or the pool's floor for it).
    #[error(
        "max fee per gas less than block base fee: address {address}, maxFeePerGas: {max_fee_per_gas}, baseFee: {base_fee}"
    )]
    FeeCapTooLow {
        /// Sender.
        address: Address,
        /// The transaction's fee cap.
        max_fee_per_gas: u128,
        /// The base fee it must cover.
        base_fee: u64,
    },
    /// `maxPriorityFeePerGas > maxFeePerGas`.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// `gas * maxFeePerGas + value` doesn't fit in 256 bits. (A fee cap above
    /// 2^128 already fails to decode, so this only triggers via `value`.)
    #[error("max fee per gas higher than 2^256-1")]
    FeeCapVeryHigh,
    /// The encoded transaction is larger than the pool accepts.
    #[error("oversized data: transaction size {size}, limit {limit}")]
    OversizedData {
        /// Encoded size.
        size: usize,
        /// The pool's limit.
        limit: usize,
    },
    /// Contract-creation input above the EIP-3860 limit.
    #[error("max initcode size exceeded: code size {size}, limit {MAX_INITCODE_SIZE}")]
    MaxInitCodeSizeExceeded {
        /// Input length.
        size: usize,
    },
    /// An EIP-7702 transaction without authorizations.
    #[error("EIP-7702 transaction with empty auth list")]
    EmptyAuthList,
    /// The priority fee is below the pool's minimum.
    #[error("transaction underpriced: gas tip cap {tip}, minimum needed {min}")]
    Underpriced {
        /// The transaction's priority fee.
        tip: u128,
        /// The pool's minimum.
        min: u128,
    },
    /// A transaction with the same sender and nonce is pooled and this one
    /// doesn't raise both fee caps by the required bump.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The sender already has as many pooled transactions as allowed.
    #[error("account limit exceeded")]
    AccountLimitExceeded,
    /// The pool is full and this transaction doesn't outbid the cheapest one.
    #[error("txpool is full")]
    TxPoolFull,
    /// The transaction is already pooled.
    #[error("already known")]
    AlreadyKnown,
}

impl TxValidationError {
    /// The JSON-RPC error code to answer with.
    pub const fn rpc_code(&self) -> i32 {
        TX_REJECTED_RPC_CODE
    }
}

/// Which fork's transaction rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Fork {
    /// No EIP-7702 transactions, no calldata floor.
    Cancun,
    /// Adds EIP-7702 transactions and the EIP-7623 calldata floor.
    Prague,
    /// Adds the EIP-7825 per-transaction gas cap. revm's default spec.
    #[default]
    Osaka,
}

/// Chain parameters the stateless checks need.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// This chain's EIP-155 id.
    pub chain_id: u64,
    /// Gas limit of the block being built.
    pub block_gas_limit: u64,
    /// Lowest acceptable `maxFeePerGas`, usually the next block's base fee or
    /// a configured minimum.
    pub base_fee_floor: u64,
    /// Pool limits (size, minimum tip).
    pub limits: &'a PoolLimits,
    /// Active fork.
    pub fork: Fork,
}

/// Decodes an EIP-2718 transaction (legacy, 0x01, 0x02 or 0x04) and recovers
/// its sender.
///
/// Recovery is the expensive part, so the type is checked before decoding:
/// blob transactions can carry megabytes of sidecar that would be wasted
/// work.
pub fn decode_and_recover(raw: &[u8]) -> Result<PoolTransaction, TxValidationError> {
    let Some(&first) = raw.first() else {
        return Err(TxValidationError::Rlp(alloy_rlp::Error::InputTooShort));
    };
    // Bytes >= 0xc0 start an RLP list (legacy); anything at or below 0x7f is
    // an EIP-2718 type byte. 0x80..0xbf is an RLP string, which the decoder
    // rejects itself.
    if first <= 0x7f
        && !matches!(
            first,
            EIP2930_TX_TYPE_ID | EIP1559_TX_TYPE_ID | EIP7702_TX_TYPE_ID
        )
    {
        return Err(TxValidationError::TxTypeNotSupported);
    }
    let mut buf = raw;
    let to_error = |e| match e {
        Eip2718Error::RlpError(e) => TxValidationError::Rlp(e),
        _ => TxValidationError::TxTypeNotSupported,
    };
    // The envelope's untagged fallback swallows the legacy decoder's error, so
    // legacy is decoded directly to report what's actually wrong.
    let envelope = if first <= 0x7f {
        TxEnvelope::decode_2718(&mut buf).map_err(to_error)?
    } else {
        TxEnvelope::Legacy(Signed::<TxLegacy>::fallback_decode(&mut buf).map_err(to_error)?)
    };
    if !buf.is_empty() {
        return Err(TxValidationError::TrailingBytes);
    }
    let signer = alloy_consensus::transaction::SignerRecoverable::recover_signer(&envelope)
        .map_err(|_| TxValidationError::InvalidSender)?;
    let mut tx = PoolTransaction::new(Recovered::new_unchecked(envelope, signer));
    tx.encoded_len = raw.len();
    Ok(tx)
}

/// Gas charged before execution starts: base cost, calldata, EIP-3860
/// initcode words, access list and EIP-7702 authorizations.
pub fn intrinsic_gas(tx: &TxEnvelope) -> Result<u64, TxValidationError> {
    let input = tx.input();
    let create = tx.is_create();
    let mut gas = if create {
        TX_GAS_CONTRACT_CREATION
    } else {
        TX_GAS
    };

    let non_zero = input.iter().filter(|b| **b != 0).count() as u64;
    let zero = input.len() as u64 - non_zero;
    let add = |gas: u64, n: u64, per: u64| {
        n.checked_mul(per)
            .and_then(|g| gas.checked_add(g))
            .ok_or(TxValidationError::GasUintOverflow)
    };
    gas = add(gas, non_zero, TX_DATA_NON_ZERO_GAS)?;
    gas = add(gas, zero, TX_DATA_ZERO_GAS)?;
    if create {
        gas = add(gas, (input.len() as u64).div_ceil(32), INIT_CODE_WORD_GAS)?;
    }
    if let Some(list) = tx.access_list() {
        let keys: usize = list.iter().map(|item| item.storage_keys.len()).sum();
        gas = add(gas, list.len() as u64, ACCESS_LIST_ADDRESS_GAS)?;
        gas = add(gas, keys as u64, ACCESS_LIST_STORAGE_KEY_GAS)?;
    }
    if let Some(auths) = tx.authorization_list() {
        gas = add(gas, auths.len() as u64, PER_AUTHORIZATION_GAS)?;
    }
    Ok(gas)
}

/// EIP-7623 minimum gas for the calldata: `21000 + 10 * tokens`, where a zero
/// byte is one token and a non-zero byte four.
pub fn floor_data_gas(input: &[u8]) -> u64 {
    let non_zero = input.iter().filter(|b| **b != 0).count() as u64;
    let tokens = input.len() as u64 + 3 * non_zero;
    tokens
        .saturating_mul(TX_COST_FLOOR_PER_TOKEN)
        .saturating_add(TX_GAS)
}

/// Checks that need no account state, in geth's order (cheap and
/// type-related first).
pub fn validate_stateless(
    tx: &PoolTransaction,
    ctx: &ValidationContext<'_>,
) -> Result<(), TxValidationError> {
    let envelope = tx.envelope();
    match envelope {
        TxEnvelope::Eip4844(_) => return Err(TxValidationError::TxTypeNotSupported),
        TxEnvelope::Eip7702(_) if ctx.fork < Fork::Prague => {
            return Err(TxValidationError::TxTypeNotSupported);
        }
        _ => {}
    }
    match envelope.chain_id() {
        None => return Err(TxValidationError::UnprotectedTx),
        Some(id) if id != ctx.chain_id => {
            return Err(TxValidationError::InvalidChainId {
                have: id,
                want: ctx.chain_id,
            });
        }
        Some(_) => {}
    }
    if tx.encoded_len > ctx.limits.max_tx_bytes {
        return Err(TxValidationError::OversizedData {
            size: tx.encoded_len,
            limit: ctx.limits.max_tx_bytes,
        });
    }
    let input = envelope.input();
    if envelope.is_create() && input.len() > MAX_INITCODE_SIZE {
        return Err(TxValidationError::MaxInitCodeSizeExceeded { size: input.len() });
    }
    if tx.nonce == u64::MAX {
        return Err(TxValidationError::NonceMax {
            address: tx.sender,
            nonce: tx.nonce,
        });
    }
    if tx.gas_limit > ctx.block_gas_limit {
        return Err(TxValidationError::ExceedsBlockGasLimit);
    }
    // The chain's own cap applies at every fork; Osaka's can only tighten it.
    let cap = if ctx.fork >= Fork::Osaka {
        ctx.limits.max_tx_gas.min(MAX_TX_GAS_LIMIT_OSAKA)
    } else {
        ctx.limits.max_tx_gas
    };
    if tx.gas_limit > cap {
        return Err(TxValidationError::GasLimitTooHigh {
            cap,
            tx: tx.gas_limit,
        });
    }
    if tx.max_priority_fee_per_gas > tx.max_fee_per_gas {
        return Err(TxValidationError::TipAboveFeeCap);
    }
    if envelope
        .authorization_list()
        .is_some_and(|auths| auths.is_empty())
    {
        return Err(TxValidationError::EmptyAuthList);
    }
    let intrinsic = intrinsic_gas(envelope)?;
    if tx.gas_limit < intrinsic {
        return Err(TxValidationError::IntrinsicGasTooLow {
            have: tx.gas_limit,
            want: intrinsic,
        });
    }
    if ctx.fork >= Fork::Prague {
        let floor = floor_data_gas(input);
        if tx.gas_limit < floor {
            return Err(TxValidationError::FloorDataGas {
                have: tx.gas_limit,
                want: floor,
            });
        }
    }
    if tx.checked_cost().is_none() {
        return Err(TxValidationError::FeeCapVeryHigh);
    }
    if tx.max_fee_per_gas < u128::from(ctx.base_fee_floor) {
        return Err(TxValidationError::FeeCapTooLow {
            address: tx.sender,
            max_fee_per_gas: tx.max_fee_per_gas,
            base_fee: ctx.base_fee_floor,
        });
    }
    if tx.max_priority_fee_per_gas < ctx.limits.min_priority_fee {
        return Err(TxValidationError::Underpriced {
            tip: tx.max_priority_fee_per_gas,
            min: ctx.limits.min_priority_fee,
        });
    }
    Ok(())
}

/// Checks against the sender's account: `state_nonce` and `balance` from
/// state, `pending_nonce` from [`crate::mempool::Mempool::pending_nonce`].
///
/// Only this transaction's own cost is checked against the balance; the pool
/// checks the cumulative cost of the sender's executable transactions.
pub fn validate_stateful(
    tx: &PoolTransaction,
    state_nonce: u64,
    pending_nonce: u64,
    balance: U256,
    limits: &PoolLimits,
) -> Result<(), TxValidationError> {
    if tx.nonce < state_nonce {
        return Err(TxValidationError::NonceTooLow {
            address: tx.sender,
            tx: tx.nonce,
            state: state_nonce,
        });
    }
    let next = pending_nonce.max(state_nonce);
    if tx.nonce.saturating_sub(next) > limits.max_nonce_gap {
        return Err(TxValidationError::NonceTooHigh {
            address: tx.sender,
            tx: tx.nonce,
            next,
            max_gap: limits.max_nonce_gap,
        });
    }
    let cost = tx.cost();
    if cost > balance {
        return Err(TxValidationError::InsufficientFunds {
            address: tx.sender,
            have: balance,
            want: cost,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::signers::SignerSync;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702};
    use alloy_eips::{
        eip2718::Encodable2718,
        eip2930::{AccessList, AccessListItem},
        eip7702::Authorization,
    };
    use alloy_primitives::{B256, Bytes, Signature, TxKind, address, keccak256};
    use alloy_signer_local::PrivateKeySigner;

    use super::*;

    const CHAIN: u64 = 42_069;
    const GWEI: u128 = 1_000_000_000;
    const TO: Address = address!("0x00000000000000000000000000000000000000aa");

    fn signer() -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11)).unwrap()
    }

    fn sign<T>(tx: T) -> Vec<u8>
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let signature = signer().sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
    }

    fn eip1559() -> TxEip1559 {
        TxEip1559 {
            chain_id: CHAIN,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 2 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(TO),
            value: U256::from(7),
            ..Default::default()
        }
    }

    fn legacy() -> TxLegacy {
        TxLegacy {
            chain_id: Some(CHAIN),
            nonce: 3,
            gas_price: 2 * GWEI,
            gas_limit: 21_000,
            to: TxKind::Call(TO),
            value: U256::from(7),
            input: Bytes::new(),
        }
    }

    fn authorization() -> alloy_eips::eip7702::SignedAuthorization {
        let auth = Authorization {
            chain_id: U256::from(CHAIN),
            address: TO,
            nonce: 4,
        };
        let signature = signer().sign_hash_sync(&auth.signature_hash()).unwrap();
        auth.into_signed(signature)
    }

    fn eip7702() -> TxEip7702 {
        TxEip7702 {
            chain_id: CHAIN,
            nonce: 3,
            gas_limit: 46_000,
            max_fee_per_gas: 2 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TO,
            authorization_list: vec![authorization()],
            ..Default::default()
        }
    }

    fn decode<T>(tx: T) -> PoolTransaction
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        decode_and_recover(&sign(tx)).unwrap()
    }

    fn check(
        tx: &PoolTransaction,
        limits: &PoolLimits,
        fork: Fork,
    ) -> Result<(), TxValidationError> {
        let ctx = ValidationContext {
            chain_id: CHAIN,
            block_gas_limit: 30_000_000,
            base_fee_floor: GWEI as u64,
            limits,
            fork,
        };
        validate_stateless(tx, &ctx)
    }

    fn stateless<T>(tx: T) -> Result<(), TxValidationError>
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        check(&decode(tx), &PoolLimits::default(), Fork::Osaka)
    }

    #[test]
    fn decodes_every_supported_type() {
        let access_list = AccessList(vec![AccessListItem {
            address: TO,
            storage_keys: vec![B256::ZERO],
        }]);
        let raws = [
            sign(legacy()),
            sign(TxEip2930 {
                chain_id: CHAIN,
                nonce: 3,
                gas_price: 2 * GWEI,
                gas_limit: 25_300,
                to: TxKind::Call(TO),
                value: U256::from(7),
                access_list,
                input: Bytes::new(),
            }),
            sign(eip1559()),
            sign(eip7702()),
        ];
        for (ty, raw) in raws.iter().enumerate() {
            let tx = decode_and_recover(raw).unwrap();
            assert_eq!(
                tx.envelope().tx_type() as usize,
                if ty == 3 { 4 } else { ty }
            );
            assert_eq!(tx.sender, signer().address());
            assert_eq!(tx.hash, keccak256(raw));
            assert_eq!(tx.encoded_len, raw.len());
            assert_eq!(tx.nonce, 3);
            assert_eq!(tx.max_fee_per_gas, 2 * GWEI);
            check(&tx, &PoolLimits::default(), Fork::Osaka).unwrap();
        }
        let legacy = decode(legacy());
        assert_eq!(legacy.max_priority_fee_per_gas, 2 * GWEI);
        assert_eq!(legacy.cost(), U256::from(21_000 * 2 * GWEI + 7));
        assert_eq!(legacy.effective_tip(GWEI as u64), Some(GWEI));
        let dynamic = decode(eip1559());
        assert_eq!(dynamic.effective_tip(0), Some(GWEI));
        assert_eq!(dynamic.effective_tip(GWEI as u64 + 1), Some(GWEI - 1));
        assert_eq!(dynamic.effective_tip(2 * GWEI as u64 + 1), None);
    }

    #[test]
    fn malformed_bytes() {
        let err = decode_and_recover(&[]).unwrap_err();
        assert_eq!(err.to_string(), "rlp: input too short");
        assert!(matches!(
            decode_and_recover(&[0x02, 0xc0]),
            Err(TxValidationError::Rlp(_))
        ));
        let err = decode_and_recover(&[0xc1, 0x80]).unwrap_err();
        assert_eq!(err.to_string(), "rlp: input too short");
        let err = decode_and_recover(&[0x80]).unwrap_err();
        assert!(matches!(err, TxValidationError::Rlp(_)), "{err}");
        let mut raw = sign(eip1559());
        raw.push(0);
        let err = decode_and_recover(&raw).unwrap_err();
        assert_eq!(err, TxValidationError::TrailingBytes);
        assert_eq!(err.to_string(), "rlp: input contains more than one value");
        assert_eq!(err.rpc_code(), -32000);
    }

    #[test]
    fn unsupported_types() {
        let blob = sign(TxEip4844 {
            chain_id: CHAIN,
            gas_limit: 21_000,
            max_fee_per_gas: 2 * GWEI,
            blob_versioned_hashes: vec![B256::repeat_byte(1)],
            max_fee_per_blob_gas: 1,
            ..Default::default()
        });
        // A well-formed deposit: only L1 makes those, never a user.
        let deposit = lanes_executor::LanesTxEnvelope::deposit(lanes_executor::TxDeposit {
            from: alloy_primitives::Address::repeat_byte(1),
            gas_limit: 21_000,
            ..Default::default()
        })
        .encoded_2718();
        for raw in [
            blob,
            deposit,
            vec![0x00, 0xc0],
            vec![0x05, 0xc0],
            vec![0x7f],
        ] {
            let err = decode_and_recover(&raw).unwrap_err();
            assert_eq!(err, TxValidationError::TxTypeNotSupported);
            assert_eq!(err.to_string(), "transaction type not supported");
        }
        // EIP-7702 only from Prague.
        let tx = decode(eip7702());
        assert_eq!(
            check(&tx, &PoolLimits::default(), Fork::Cancun),
            Err(TxValidationError::TxTypeNotSupported)
        );
        check(&tx, &PoolLimits::default(), Fork::Prague).unwrap();
    }

    #[test]
    fn unprotected_legacy() {
        let err = stateless(TxLegacy {
            chain_id: None,
            ..legacy()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "only replay-protected (EIP-155) transactions allowed over RPC"
        );
    }

    #[test]
    fn invalid_chain_id() {
        let err = stateless(TxEip1559 {
            chain_id: 1,
            ..eip1559()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid chain id: have 1, want 42069");
        let err = stateless(TxLegacy {
            chain_id: Some(1),
            ..legacy()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            TxValidationError::InvalidChainId { have: 1, .. }
        ));
    }

    #[test]
    fn invalid_sender() {
        let bad = Signature::new(U256::ZERO, U256::from(1), false);
        let raw = TxEnvelope::from(eip1559().into_signed(bad)).encoded_2718();
        let err = decode_and_recover(&raw).unwrap_err();
        assert_eq!(err, TxValidationError::InvalidSender);
        assert_eq!(err.to_string(), "invalid sender");
    }

    #[test]
    fn nonce_too_low_and_too_high() {
        let tx = decode(eip1559());
        let limits = PoolLimits {
            max_nonce_gap: 2,
            ..PoolLimits::default()
        };
        let rich = U256::MAX;
        let err = validate_stateful(&tx, 4, 4, rich, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "nonce too low: address {}, tx: 3 state: 4",
                signer().address()
            )
        );
        validate_stateful(&tx, 3, 3, rich, &limits).unwrap();
        // Pending nonce 1 above state 0: nonce 3 leaves a gap of 2, the most allowed.
        validate_stateful(&tx, 0, 1, rich, &limits).unwrap();
        let err = validate_stateful(&tx, 0, 0, rich, &limits).unwrap_err();
        assert!(err.to_string().starts_with("nonce too high"), "{err}");
        assert!(matches!(
            err,
            TxValidationError::NonceTooHigh {
                tx: 3,
                next: 0,
                max_gap: 2,
                ..
            }
        ));
    }

    #[test]
    fn nonce_max() {
        let err = stateless(TxEip1559 {
            nonce: u64::MAX,
            ..eip1559()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("nonce has max value"), "{err}");
    }

    #[test]
    fn insufficient_funds() {
        let tx = decode(eip1559());
        let want = U256::from(21_000 * 2 * GWEI + 7);
        validate_stateful(&tx, 3, 3, want, &PoolLimits::default()).unwrap();
        let have = want - U256::from(1);
        let err = validate_stateful(&tx, 3, 3, have, &PoolLimits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "insufficient funds for gas * price + value: address {} have {have} want {want}",
                signer().address()
            )
        );
    }

    #[test]
    fn intrinsic_gas_accounting() {
        let create = |input: Vec<u8>| {
            decode(TxEip1559 {
                to: TxKind::Create,
                input: input.into(),
                gas_limit: 1_000_000,
                ..eip1559()
            })
        };
        // 53000 + 2 zero bytes * 4 + 1 non-zero * 16 + 1 initcode word * 2.
        assert_eq!(
            intrinsic_gas(create(vec![0, 0, 1]).envelope()),
            Ok(53_000 + 8 + 16 + 2)
        );
        assert_eq!(
            intrinsic_gas(create(vec![1; 33]).envelope()),
            Ok(53_000 + 33 * 16 + 2 * 2)
        );
        let with_list = decode(TxEip1559 {
            access_list: AccessList(vec![
                AccessListItem {
                    address: TO,
                    storage_keys: vec![B256::ZERO, B256::ZERO],
                },
                AccessListItem {
                    address: TO,
                    storage_keys: vec![],
                },
            ]),
            gas_limit: 100_000,
            ..eip1559()
        });
        assert_eq!(
            intrinsic_gas(with_list.envelope()),
            Ok(21_000 + 2 * 2_400 + 2 * 1_900)
        );
        assert_eq!(
            intrinsic_gas(decode(eip7702()).envelope()),
            Ok(21_000 + 25_000)
        );
        assert_eq!(floor_data_gas(&[0, 1]), 21_000 + 10 * 5);
    }

    #[test]
    fn intrinsic_gas_too_low() {
        let err = stateless(TxEip1559 {
            gas_limit: 20_999,
            ..eip1559()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "intrinsic gas too low: have 20999, want 21000"
        );
        let err = stateless(TxEip7702 {
            gas_limit: 45_999,
            ..eip7702()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            TxValidationError::IntrinsicGasTooLow { want: 46_000, .. }
        ));
    }

    #[test]
    fn floor_data_gas_from_prague() {
        // 1000 non-zero bytes: intrinsic 37000, floor 61000.
        let tx = decode(TxEip1559 {
            input: vec![1; 1000].into(),
            gas_limit: 40_000,
            ..eip1559()
        });
        let err = check(&tx, &PoolLimits::default(), Fork::Prague).unwrap_err();
        assert_eq!(
            err.to_string(),
            "insufficient gas for floor data gas cost: have 40000, want 61000"
        );
        check(&tx, &PoolLimits::default(), Fork::Cancun).unwrap();
    }

    #[test]
    fn exceeds_block_gas_limit() {
        let err = stateless(TxEip1559 {
            gas_limit: 30_000_001,
            ..eip1559()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "exceeds block gas limit");
    }

    #[test]
    fn gas_limit_above_osaka_cap() {
        let tx = decode(TxEip1559 {
            gas_limit: MAX_TX_GAS_LIMIT_OSAKA + 1,
            ..eip1559()
        });
        let err = check(&tx, &PoolLimits::default(), Fork::Osaka).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "transaction gas limit too high (cap: 16777216, tx: {})",
                MAX_TX_GAS_LIMIT_OSAKA + 1
            )
        );
        // Before Osaka the chain's own cap (the same 2^24 by default) applies.
        let err = check(&tx, &PoolLimits::default(), Fork::Prague).unwrap_err();
        assert!(matches!(err, TxValidationError::GasLimitTooHigh { .. }));
        let generous = PoolLimits {
            max_tx_gas: u64::MAX,
            ..PoolLimits::default()
        };
        check(&tx, &generous, Fork::Prague).unwrap();
        // Osaka's cap holds whatever the chain allows.
        assert!(check(&tx, &generous, Fork::Osaka).is_err());
        let strict = PoolLimits {
            max_tx_gas: 100_000,
            ..PoolLimits::default()
        };
        let small = decode(TxEip1559 {
            gas_limit: 100_001,
            ..eip1559()
        });
        assert_eq!(
            check(&small, &strict, Fork::Cancun)
                .unwrap_err()
                .to_string(),
            "transaction gas limit too high (cap: 100000, tx: 100001)"
        );
    }

    #[test]
    fn fee_cap_below_base_fee_floor() {
        let tx = decode(TxEip1559 {
            max_fee_per_gas: GWEI - 1,
            max_priority_fee_per_gas: 0,
            ..eip1559()
        });
        let err = check(&tx, &PoolLimits::default(), Fork::Osaka).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "max fee per gas less than block base fee: address {}, maxFeePerGas: 999999999, baseFee: 1000000000",
                signer().address()
            )
        );
    }

    #[test]
    fn tip_above_fee_cap() {
        let err = stateless(TxEip1559 {
            max_priority_fee_per_gas: 3 * GWEI,
            ..eip1559()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max priority fee per gas higher than max fee per gas"
        );
    }

    #[test]
    fn cost_overflowing_256_bits() {
        let err = stateless(TxEip1559 {
            value: U256::MAX,
            ..eip1559()
        })
        .unwrap_err();
        assert_eq!(err, TxValidationError::FeeCapVeryHigh);
        assert_eq!(err.to_string(), "max fee per gas higher than 2^256-1");
    }

    #[test]
    fn oversized_data() {
        let tx = decode(eip1559());
        let limits = PoolLimits {
            max_tx_bytes: tx.encoded_len - 1,
            ..PoolLimits::default()
        };
        let err = check(&tx, &limits, Fork::Osaka).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "oversized data: transaction size {}, limit {}",
                tx.encoded_len,
                tx.encoded_len - 1
            )
        );
    }

    #[test]
    fn initcode_too_large() {
        let tx = decode(TxEip1559 {
            to: TxKind::Create,
            input: vec![0; MAX_INITCODE_SIZE + 1].into(),
            gas_limit: 10_000_000,
            ..eip1559()
        });
        let err = check(&tx, &PoolLimits::default(), Fork::Osaka).unwrap_err();
        assert_eq!(
            err.to_string(),
            "max initcode size exceeded: code size 49153, limit 49152"
        );
        // The same input as calldata is fine.
        let call = decode(TxEip1559 {
            input: vec![0; MAX_INITCODE_SIZE + 1].into(),
            gas_limit: 10_000_000,
            ..eip1559()
        });
        check(&call, &PoolLimits::default(), Fork::Osaka).unwrap();
    }

    #[test]
    fn empty_authorization_list() {
        let err = stateless(TxEip7702 {
            authorization_list: vec![],
            ..eip7702()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "EIP-7702 transaction with empty auth list");
    }

    #[test]
    fn tip_below_pool_minimum() {
        let limits = PoolLimits {
            min_priority_fee: GWEI + 1,
            ..PoolLimits::default()
        };
        let err = check(&decode(eip1559()), &limits, Fork::Osaka).unwrap_err();
        assert_eq!(
            err.to_string(),
            "transaction underpriced: gas tip cap 1000000000, minimum needed 1000000001"
        );
    }

    #[test]
    fn pool_error_messages() {
        for (err, msg) in [
            (
                TxValidationError::ReplacementUnderpriced,
                "replacement transaction underpriced",
            ),
            (TxValidationError::TxPoolFull, "txpool is full"),
            (
                TxValidationError::AccountLimitExceeded,
                "account limit exceeded",
            ),
            (TxValidationError::AlreadyKnown, "already known"),
            (TxValidationError::GasUintOverflow, "gas uint64 overflow"),
        ] {
            assert_eq!(err.to_string(), msg);
            assert_eq!(err.rpc_code(), TX_REJECTED_RPC_CODE);
        }
    }
}
