//! The transactions and receipts lanes blocks hold: Ethereum's, plus the deposit (type 0x7e).
//!
//! A deposit is an L1 message (an ETH deposit or a forced transaction enqueued in the portal)
//! turned into an L2 transaction. It carries no signature: its sender is the L1 caller, and
//! its identity, the source hash, comes from where the message was emitted on L1, so every
//! node derives the same transaction, with the same hash, from the same L1 log. Encoding,
//! hash and source hash are the OP Stack's (`op-alloy-consensus`), so OP tooling reads lanes
//! deposits as they are.

use alloy_consensus::{
    Receipt, ReceiptEnvelope, ReceiptWithBloom, Sealable, Sealed, TransactionEnvelope, TxEnvelope,
    TxType, transaction::Recovered, transaction::TxHashRef,
};
use alloy_eips::{
    Typed2718,
    eip2718::{Decodable2718, Eip2718Error, Eip2718Result, Encodable2718},
};
use alloy_primitives::{Address, B256, Bloom, Log, address};
use alloy_rlp::{BufMut, Decodable, Encodable};
use op_alloy_consensus::UserDepositSource;
pub use op_alloy_consensus::{OpDepositReceipt, TxDeposit};

/// EIP-2718 type of a deposit transaction (as in the OP Stack).
pub const DEPOSIT_TX_TYPE: u8 = 0x7e;

/// The account whose nonce counts the L1 messages (deposits) L2 has executed. L1 numbers
/// its messages from 0 without gaps and L2 executes them in that order, so this nonce is
/// the deposit nonce L2 expects next: in the state, it commits atomically with the block
/// that executed the message, which is what a restarted node resumes from. Nobody holds
/// its key and it has no code, so nothing else changes it.
pub const L1_MESSAGE_COUNTER: Address = address!("0x4200000000000000000000000000000000000015");

/// A transaction of a lanes block: a signed Ethereum transaction or an L1 deposit.
#[derive(Debug, Clone, TransactionEnvelope)]
#[envelope(tx_type_name = LanesTxType)]
pub enum LanesTxEnvelope {
    /// A signed Ethereum transaction (legacy, 2930, 1559, 4844, 7702).
    #[envelope(flatten)]
    Ethereum(TxEnvelope),
    /// A deposit derived from an L1 message, sealed with its hash.
    #[envelope(ty = 126)]
    #[serde(serialize_with = "op_alloy_consensus::serde_deposit_tx_rpc")]
    Deposit(Sealed<TxDeposit>),
}

impl LanesTxEnvelope {
    /// Seals a deposit (computes its hash).
    pub fn deposit(tx: TxDeposit) -> Self {
        Self::Deposit(tx.seal_slow())
    }

    /// The transaction hash: keccak256 of the EIP-2718 encoding.
    pub fn tx_hash(&self) -> &B256 {
        match self {
            Self::Ethereum(tx) => tx.tx_hash(),
            Self::Deposit(tx) => tx.hash_ref(),
        }
    }

    /// The deposit, if this is one.
    pub fn as_deposit(&self) -> Option<&TxDeposit> {
        match self {
            Self::Deposit(tx) => Some(tx.inner()),
            Self::Ethereum(_) => None,
        }
    }

    /// True for a deposit.
    pub fn is_deposit(&self) -> bool {
        matches!(self, Self::Deposit(_))
    }

    /// The signed Ethereum transaction, if this is one.
    pub fn as_ethereum(&self) -> Option<&TxEnvelope> {
        match self {
            Self::Ethereum(tx) => Some(tx),
            Self::Deposit(_) => None,
        }
    }
}

impl TxHashRef for LanesTxEnvelope {
    fn tx_hash(&self) -> &B256 {
        Self::tx_hash(self)
    }
}

impl From<TxEnvelope> for LanesTxEnvelope {
    fn from(tx: TxEnvelope) -> Self {
        Self::Ethereum(tx)
    }
}

/// A deposit ready for a block: its sender is the deposit's `from`, nothing to recover.
pub fn recovered_deposit(tx: TxDeposit) -> Recovered<LanesTxEnvelope> {
    let from = tx.from;
    Recovered::new_unchecked(LanesTxEnvelope::deposit(tx), from)
}

/// The source hash of a deposit emitted as log `log_index` of L1 block `l1_block_hash`
/// (the OP Stack's user deposit source: unique per L1 log, so replays are impossible).
pub fn user_deposit_source_hash(l1_block_hash: B256, log_index: u64) -> B256 {
    UserDepositSource::new(l1_block_hash, log_index).source_hash()
}

/// A receipt of a lanes block: Ethereum's typed receipts, plus the deposit's (type 0x7e),
/// which also records the nonce the deposit used, as the OP Stack's does since Canyon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanesReceipt {
    /// Receipt of a signed Ethereum transaction.
    Ethereum(ReceiptEnvelope),
    /// Receipt of a deposit.
    Deposit(ReceiptWithBloom<OpDepositReceipt>),
}

/// The deposit receipt version lanes writes (the OP Stack's Canyon encoding).
pub const DEPOSIT_RECEIPT_VERSION: u64 = 1;

impl LanesReceipt {
    /// The receipt of a transaction of EIP-2718 type `ty` (a deposit's without its nonce:
    /// use [`Self::deposit`]).
    // Inlined: the parallel executor's commit builds each receipt in place through it.
    #[inline]
    pub fn new(ty: u8, receipt: ReceiptWithBloom<Receipt>) -> Self {
        if ty == DEPOSIT_TX_TYPE {
            return Self::Deposit(ReceiptWithBloom {
                receipt: OpDepositReceipt {
                    inner: receipt.receipt,
                    deposit_nonce: None,
                    deposit_receipt_version: None,
                },
                logs_bloom: receipt.logs_bloom,
            });
        }
        // Every type the executor runs is one of Ethereum's or the deposit.
        let tx_type = TxType::try_from(ty).unwrap_or(TxType::Legacy);
        Self::Ethereum(ReceiptEnvelope::from_typed(tx_type, receipt))
    }

    /// The receipt of a deposit that ran at sender nonce `nonce`.
    pub fn deposit(receipt: Receipt, nonce: u64) -> Self {
        let logs_bloom = receipt.bloom_slow();
        Self::Deposit(ReceiptWithBloom {
            receipt: OpDepositReceipt {
                inner: receipt,
                deposit_nonce: Some(nonce),
                deposit_receipt_version: Some(DEPOSIT_RECEIPT_VERSION),
            },
            logs_bloom,
        })
    }

    fn inner(&self) -> &Receipt {
        match self {
            Self::Ethereum(ReceiptEnvelope::Legacy(r))
            | Self::Ethereum(ReceiptEnvelope::Eip2930(r))
            | Self::Ethereum(ReceiptEnvelope::Eip1559(r))
            | Self::Ethereum(ReceiptEnvelope::Eip4844(r))
            | Self::Ethereum(ReceiptEnvelope::Eip7702(r)) => &r.receipt,
            Self::Deposit(r) => &r.receipt.inner,
        }
    }

    /// The receipt fields with their bloom, as an Ethereum receipt has them.
    pub fn receipt_with_bloom(&self) -> ReceiptWithBloom<&Receipt> {
        ReceiptWithBloom {
            receipt: self.inner(),
            logs_bloom: *self.logs_bloom(),
        }
    }

    /// Sets the gas used by the block up to and including this transaction.
    pub fn set_cumulative_gas_used(&mut self, gas: u64) {
        match self {
            Self::Ethereum(ReceiptEnvelope::Legacy(r))
            | Self::Ethereum(ReceiptEnvelope::Eip2930(r))
            | Self::Ethereum(ReceiptEnvelope::Eip1559(r))
            | Self::Ethereum(ReceiptEnvelope::Eip4844(r))
            | Self::Ethereum(ReceiptEnvelope::Eip7702(r)) => r.receipt.cumulative_gas_used = gas,
            Self::Deposit(r) => r.receipt.inner.cumulative_gas_used = gas,
        }
    }

    /// Gas used by the block up to and including this transaction.
    pub fn cumulative_gas_used(&self) -> u64 {
        self.inner().cumulative_gas_used
    }

    /// Logs emitted.
    pub fn logs(&self) -> &[Log] {
        &self.inner().logs
    }

    /// Bloom filter of the logs.
    pub fn logs_bloom(&self) -> &Bloom {
        match self {
            Self::Ethereum(r) => r.logs_bloom(),
            Self::Deposit(r) => &r.logs_bloom,
        }
    }

    /// True if the transaction succeeded.
    pub fn status(&self) -> bool {
        self.inner().status.coerce_status()
    }

    /// The sender nonce a deposit used; `None` for other transactions.
    pub fn deposit_nonce(&self) -> Option<u64> {
        match self {
            Self::Deposit(r) => r.receipt.deposit_nonce,
            Self::Ethereum(_) => None,
        }
    }

    /// The deposit receipt version; `None` for other transactions.
    pub fn deposit_receipt_version(&self) -> Option<u64> {
        match self {
            Self::Deposit(r) => r.receipt.deposit_receipt_version,
            Self::Ethereum(_) => None,
        }
    }
}

impl Typed2718 for LanesReceipt {
    fn ty(&self) -> u8 {
        match self {
            Self::Ethereum(r) => r.ty(),
            Self::Deposit(_) => DEPOSIT_TX_TYPE,
        }
    }
}

impl Encodable2718 for LanesReceipt {
    fn type_flag(&self) -> Option<u8> {
        match self {
            Self::Ethereum(r) => r.type_flag(),
            Self::Deposit(_) => Some(DEPOSIT_TX_TYPE),
        }
    }

    fn encode_2718_len(&self) -> usize {
        match self {
            Self::Ethereum(r) => r.encode_2718_len(),
            Self::Deposit(r) => 1 + r.length(),
        }
    }

    fn encode_2718(&self, out: &mut dyn BufMut) {
        match self {
            Self::Ethereum(r) => r.encode_2718(out),
            Self::Deposit(r) => {
                out.put_u8(DEPOSIT_TX_TYPE);
                r.encode(out);
            }
        }
    }
}

impl Decodable2718 for LanesReceipt {
    fn typed_decode(ty: u8, buf: &mut &[u8]) -> Eip2718Result<Self> {
        if ty == DEPOSIT_TX_TYPE {
            return Ok(Self::Deposit(
                ReceiptWithBloom::decode(buf).map_err(Eip2718Error::RlpError)?,
            ));
        }
        ReceiptEnvelope::typed_decode(ty, buf).map(Self::Ethereum)
    }

    fn fallback_decode(buf: &mut &[u8]) -> Eip2718Result<Self> {
        ReceiptEnvelope::fallback_decode(buf).map(Self::Ethereum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Eip658Value, Transaction};
    use alloy_primitives::{Bytes, LogData, TxKind, U256, keccak256};

    fn deposit() -> TxDeposit {
        TxDeposit {
            source_hash: user_deposit_source_hash(B256::repeat_byte(7), 3),
            from: Address::repeat_byte(1),
            to: TxKind::Call(Address::repeat_byte(2)),
            mint: 5_000,
            value: U256::from(1_000),
            gas_limit: 100_000,
            is_system_transaction: false,
            input: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn deposit_round_trips_and_hashes_its_encoding() {
        let envelope = LanesTxEnvelope::deposit(deposit());
        let encoded = envelope.encoded_2718();
        assert_eq!(encoded[0], DEPOSIT_TX_TYPE);
        assert_eq!(*envelope.tx_hash(), keccak256(&encoded));
        let decoded = LanesTxEnvelope::decode_2718(&mut encoded.as_slice()).unwrap();
        assert_eq!(decoded.tx_hash(), envelope.tx_hash());
        assert_eq!(decoded.as_deposit(), Some(&deposit()));
        assert_eq!(decoded.ty(), DEPOSIT_TX_TYPE);
        assert_eq!(decoded.gas_limit(), 100_000);
        assert_eq!(decoded.value(), U256::from(1_000));
        assert_eq!(decoded.max_fee_per_gas(), 0);
    }

    #[test]
    fn source_hash_depends_on_the_l1_log() {
        let a = user_deposit_source_hash(B256::repeat_byte(7), 3);
        assert_ne!(a, user_deposit_source_hash(B256::repeat_byte(7), 4));
        assert_ne!(a, user_deposit_source_hash(B256::repeat_byte(8), 3));
        // OP's user-deposit domain: keccak(0u256 ++ keccak(l1 block hash ++ log index u256)).
        let mut inner = [0u8; 64];
        inner[..32].copy_from_slice(&[7; 32]);
        inner[63] = 3;
        let mut outer = [0u8; 64];
        outer[32..].copy_from_slice(keccak256(inner).as_slice());
        assert_eq!(a, keccak256(outer));
    }

    #[test]
    fn deposit_receipt_round_trips() {
        let receipt = Receipt {
            status: Eip658Value::Eip658(false),
            cumulative_gas_used: 42_000,
            logs: vec![Log {
                address: Address::repeat_byte(9),
                data: LogData::new_unchecked(vec![B256::repeat_byte(1)], Bytes::new()),
            }],
        }
        .with_bloom();
        let deposit = LanesReceipt::deposit(receipt.receipt.clone(), 9);
        assert_eq!(deposit.deposit_nonce(), Some(9));
        assert_eq!(deposit.logs_bloom(), &receipt.logs_bloom);
        for (ty, lanes) in [
            (DEPOSIT_TX_TYPE, deposit),
            (
                DEPOSIT_TX_TYPE,
                LanesReceipt::new(DEPOSIT_TX_TYPE, receipt.clone()),
            ),
            (0, LanesReceipt::new(0, receipt.clone())),
            (2, LanesReceipt::new(2, receipt.clone())),
        ] {
            let encoded = lanes.encoded_2718();
            let decoded = LanesReceipt::decode_2718(&mut encoded.as_slice()).unwrap();
            assert_eq!(decoded, lanes);
            assert_eq!(decoded.ty(), ty);
            assert_eq!(decoded.cumulative_gas_used(), 42_000);
            assert!(!decoded.status());
        }
    }
}
