//! Block types shared by the executor, storage, the RPC and (later) the batcher.

use crate::tx::{LanesReceipt, LanesTxEnvelope};
use alloy_consensus::{Header, Transaction, transaction::Recovered};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, TxKind};
use std::sync::Arc;

/// A transaction with its sender: recovered once, at intake, for a signed one; the deposit's
/// `from` for a deposit.
pub type RecoveredTx = Recovered<LanesTxEnvelope>;

/// A transaction in a block together with its hash.
#[derive(Clone, Debug)]
pub struct BlockTx {
    /// The transaction and its recovered sender.
    pub tx: Arc<RecoveredTx>,
}

impl BlockTx {
    /// Wraps a recovered transaction.
    pub fn new(tx: Arc<RecoveredTx>) -> Self {
        Self { tx }
    }
    /// Transaction hash.
    pub fn hash(&self) -> B256 {
        *self.tx.inner().tx_hash()
    }
    /// Recovered sender.
    pub fn sender(&self) -> Address {
        self.tx.signer()
    }
    /// True for an L1 deposit.
    pub fn is_deposit(&self) -> bool {
        self.tx.inner().is_deposit()
    }
    /// The address a contract-creating signed transaction deploys to (a deposit's depends
    /// on the nonce it used, which its receipt records).
    pub fn created_address(&self) -> Option<Address> {
        match self.tx.kind() {
            TxKind::Create => Some(self.sender().create(self.tx.nonce())),
            TxKind::Call(_) => None,
        }
    }
}

/// A sealed block: header with its hash, transactions and receipts.
#[derive(Clone, Debug)]
pub struct SealedBlock {
    /// keccak256 of the RLP header.
    pub hash: B256,
    /// The header.
    pub header: Header,
    /// Transactions in block order.
    pub transactions: Arc<Vec<BlockTx>>,
    /// Receipts in block order.
    pub receipts: Arc<Vec<LanesReceipt>>,
}

impl SealedBlock {
    /// Seals `header` (computes its hash).
    pub fn new(header: Header, transactions: Vec<BlockTx>, receipts: Vec<LanesReceipt>) -> Self {
        Self {
            hash: header.hash_slow(),
            header,
            transactions: Arc::new(transactions),
            receipts: Arc::new(receipts),
        }
    }

    /// Block number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// Gas used by transaction `index` (receipts only carry the cumulative value).
    pub fn gas_used_by(&self, index: usize) -> u64 {
        let cumulative = self.receipts[index].cumulative_gas_used();
        let before = if index == 0 {
            0
        } else {
            self.receipts[index - 1].cumulative_gas_used()
        };
        cumulative - before
    }

    /// Index of the first log of transaction `index` within the block.
    pub fn first_log_index(&self, index: usize) -> usize {
        self.receipts[..index].iter().map(|r| r.logs().len()).sum()
    }

    /// Encoded size of the transactions (EIP-2718), for metrics.
    pub fn transactions_size(&self) -> usize {
        self.transactions
            .iter()
            .map(|t| t.tx.inner().encode_2718_len())
            .sum()
    }
}

/// The price per gas the sender actually paid in a block with `base_fee`.
pub fn effective_gas_price(tx: &LanesTxEnvelope, base_fee: Option<u64>) -> u128 {
    tx.effective_gas_price(base_fee)
}
