//! The pool's view of a signed, sender-recovered transaction.

use std::{sync::Arc, time::Instant};

use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, U256};
use lanes_executor::{LanesTxEnvelope, RecoveredTx};

/// A recovered transaction plus the fields the pool orders and prices by.
///
/// Cloning is cheap (one `Arc` bump plus a few words), so block building can
/// hold snapshots of pool contents without keeping the pool locked.
#[derive(Debug, Clone)]
pub struct PoolTransaction {
    /// The signed transaction and its recovered signer, in the block transaction type so
    /// block building takes it as it is (the pool never holds a deposit).
    pub tx: Arc<RecoveredTx>,
    /// Transaction hash.
    pub hash: B256,
    /// Recovered signer.
    pub sender: Address,
    /// Account nonce the transaction consumes.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// `maxFeePerGas`; the gas price for legacy and EIP-2930 transactions.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`; the gas price for legacy and EIP-2930
    /// transactions.
    pub max_priority_fee_per_gas: u128,
    /// Wei transferred.
    pub value: U256,
    /// Length of the EIP-2718 encoding in bytes.
    pub encoded_len: usize,
    /// When the transaction was first seen; the pool's lifetime (TTL) is
    /// measured from here.
    pub arrival: Instant,
    /// Admission order, assigned by [`crate::mempool::Mempool::add`]; breaks
    /// ties between equal tips in favour of the earlier transaction.
    pub seq: u64,
}

impl PoolTransaction {
    /// Wraps a recovered transaction, stamping it as arriving now.
    pub fn new(tx: Recovered<TxEnvelope>) -> Self {
        Self::with_arrival(tx, Instant::now())
    }

    /// Wraps a recovered transaction with an explicit arrival time.
    pub fn with_arrival(tx: Recovered<TxEnvelope>, arrival: Instant) -> Self {
        let envelope = tx.inner();
        let max_fee_per_gas = envelope.max_fee_per_gas();
        Self {
            hash: *envelope.tx_hash(),
            sender: tx.signer(),
            nonce: envelope.nonce(),
            gas_limit: envelope.gas_limit(),
            max_fee_per_gas,
            max_priority_fee_per_gas: envelope
                .max_priority_fee_per_gas()
                .unwrap_or(max_fee_per_gas),
            value: envelope.value(),
            encoded_len: envelope.eip2718_encoded_length(),
            arrival,
            seq: 0,
            tx: Arc::new(tx.convert()),
        }
    }

    /// The signed envelope.
    pub fn envelope(&self) -> &TxEnvelope {
        match self.tx.inner() {
            LanesTxEnvelope::Ethereum(tx) => tx,
            // Only `with_arrival` builds a pool transaction, from a signed envelope.
            LanesTxEnvelope::Deposit(_) => unreachable!("the pool never holds a deposit"),
        }
    }

    /// Most wei the transaction can spend: `gas_limit * max_fee_per_gas +
    /// value` (plus blob gas for EIP-4844), or `None` if that exceeds 2^256-1.
    pub fn checked_cost(&self) -> Option<U256> {
        // u64 * u128 always fits in 256 bits; only the additions can overflow.
        let mut cost = U256::from(self.gas_limit) * U256::from(self.max_fee_per_gas);
        let envelope = self.envelope();
        if let (Some(blob_gas), Some(blob_fee)) =
            (envelope.blob_gas_used(), envelope.max_fee_per_blob_gas())
        {
            cost = cost.checked_add(U256::from(blob_gas) * U256::from(blob_fee))?;
        }
        cost.checked_add(self.value)
    }

    /// [`Self::checked_cost`], saturating at 2^256-1 (which no balance can
    /// cover).
    pub fn cost(&self) -> U256 {
        self.checked_cost().unwrap_or(U256::MAX)
    }

    /// Tip per gas the block producer earns at `base_fee`; `None` if the fee
    /// cap doesn't cover the base fee, so the transaction can't be included.
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        let headroom = self.max_fee_per_gas.checked_sub(u128::from(base_fee))?;
        Some(headroom.min(self.max_priority_fee_per_gas))
    }
}
