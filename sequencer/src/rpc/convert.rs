//! Conversions from lanes' block types to the JSON-RPC types wallets expect.
//!
//! Deposits (type 0x7e) are written as op-geth writes them: the deposit's own fields
//! (`sourceHash`, `mint`, `isSystemTx`, ...) beside the usual ones, a zero signature and gas
//! price, and a receipt of type `0x7e`.

use alloy_consensus::{ReceiptEnvelope, Transaction as _};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::U256;
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt, Withdrawals,
};
use lanes_executor::{
    BlockTx, DEPOSIT_TX_TYPE, LanesReceipt, LanesTxEnvelope, RecoveredTx, SealedBlock,
};
use serde::Serialize;

/// A transaction in RPC form.
// Built, serialized and dropped right away: boxing the common variant would only cost.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum RpcTransaction {
    /// A signed Ethereum transaction, as alloy writes it.
    Ethereum(Transaction),
    /// A deposit: the deposit's fields with the block context. Built as a JSON value
    /// because both the deposit and the block context carry `from`, which must appear once.
    Deposit(serde_json::Value),
}

impl RpcTransaction {
    fn new(tx: Transaction<LanesTxEnvelope>) -> Self {
        let Transaction {
            inner,
            block_hash,
            block_number,
            transaction_index,
            effective_gas_price,
            block_timestamp,
        } = tx;
        let (envelope, signer) = inner.into_parts();
        match envelope {
            LanesTxEnvelope::Ethereum(envelope) => Self::Ethereum(Transaction {
                inner: alloy_consensus::transaction::Recovered::new_unchecked(envelope, signer),
                block_hash,
                block_number,
                transaction_index,
                effective_gas_price,
                block_timestamp,
            }),
            deposit @ LanesTxEnvelope::Deposit(_) => {
                let tx = Transaction {
                    inner: alloy_consensus::transaction::Recovered::new_unchecked(deposit, signer),
                    block_hash,
                    block_number,
                    transaction_index,
                    effective_gas_price,
                    block_timestamp,
                };
                Self::Deposit(serde_json::to_value(tx).unwrap_or_default())
            }
        }
    }
}

/// A receipt in RPC form.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum RpcReceipt {
    /// Receipt of a signed Ethereum transaction, as alloy writes it.
    Ethereum(TransactionReceipt),
    /// Receipt of a deposit: the same fields, of type `0x7e`.
    Deposit(serde_json::Value),
}

/// The RPC header of `block`.
pub fn rpc_header(block: &SealedBlock) -> Header {
    let body: usize = block
        .transactions
        .iter()
        .map(|t| t.tx.inner().encode_2718_len())
        .sum();
    let size = block.header.length() + body + 8;
    Header {
        hash: block.hash,
        inner: block.header.clone(),
        total_difficulty: Some(U256::ZERO),
        size: Some(U256::from(size)),
    }
}

/// A mined transaction. A deposit's `nonce` is the one it used, from its receipt (as
/// op-geth does: the deposit itself has none).
pub fn rpc_transaction(block: &SealedBlock, index: usize) -> RpcTransaction {
    let tx = &block.transactions[index];
    let mut rpc = RpcTransaction::new(Transaction {
        inner: (*tx.tx).clone(),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.tx.effective_gas_price(block.header.base_fee_per_gas)),
        block_timestamp: Some(block.header.timestamp),
    });
    if let (RpcTransaction::Deposit(value), Some(nonce)) =
        (&mut rpc, block.receipts[index].deposit_nonce())
    {
        value["nonce"] = quantity(nonce);
    }
    rpc
}

/// A transaction still in the pool.
pub fn rpc_pending_transaction(tx: &RecoveredTx) -> RpcTransaction {
    RpcTransaction::new(Transaction {
        inner: tx.clone(),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    })
}

/// The RPC block, with full transactions or hashes.
pub fn rpc_block(block: &SealedBlock, full: bool) -> Block<RpcTransaction> {
    let transactions = if full {
        BlockTransactions::Full(
            (0..block.transactions.len())
                .map(|i| rpc_transaction(block, i))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(BlockTx::hash).collect())
    };
    Block {
        header: rpc_header(block),
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Withdrawals::default()),
    }
}

/// The logs of transaction `index`, with block context and block-wide log indices.
pub fn rpc_logs(block: &SealedBlock, index: usize) -> Vec<Log> {
    let first = block.first_log_index(index);
    let tx_hash = block.transactions[index].hash();
    block.receipts[index]
        .logs()
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.number()),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(tx_hash),
            transaction_index: Some(index as u64),
            log_index: Some((first + i) as u64),
            removed: false,
        })
        .collect()
}

/// The receipt of transaction `index` of `block`.
pub fn rpc_receipt(block: &SealedBlock, index: usize) -> RpcReceipt {
    let tx = &block.transactions[index];
    let logs = rpc_logs(block, index);
    let receipt = &block.receipts[index];
    let with_rpc_logs = |r: &alloy_consensus::ReceiptWithBloom<alloy_consensus::Receipt>| {
        alloy_consensus::ReceiptWithBloom {
            receipt: alloy_consensus::Receipt {
                status: r.receipt.status,
                cumulative_gas_used: r.receipt.cumulative_gas_used,
                logs: logs.clone(),
            },
            logs_bloom: r.logs_bloom,
        }
    };
    let inner = match receipt {
        LanesReceipt::Ethereum(ReceiptEnvelope::Legacy(r)) => {
            ReceiptEnvelope::Legacy(with_rpc_logs(r))
        }
        // Written as a legacy receipt, then retyped below.
        LanesReceipt::Deposit(r) => {
            ReceiptEnvelope::Legacy(with_rpc_logs(&alloy_consensus::ReceiptWithBloom {
                receipt: r.receipt.inner.clone(),
                logs_bloom: r.logs_bloom,
            }))
        }
        LanesReceipt::Ethereum(ReceiptEnvelope::Eip2930(r)) => {
            ReceiptEnvelope::Eip2930(with_rpc_logs(r))
        }
        LanesReceipt::Ethereum(ReceiptEnvelope::Eip1559(r)) => {
            ReceiptEnvelope::Eip1559(with_rpc_logs(r))
        }
        LanesReceipt::Ethereum(ReceiptEnvelope::Eip4844(r)) => {
            ReceiptEnvelope::Eip4844(with_rpc_logs(r))
        }
        LanesReceipt::Ethereum(ReceiptEnvelope::Eip7702(r)) => {
            ReceiptEnvelope::Eip7702(with_rpc_logs(r))
        }
    };
    let receipt = TransactionReceipt {
        inner,
        transaction_hash: tx.hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        gas_used: block.gas_used_by(index),
        effective_gas_price: tx.tx.effective_gas_price(block.header.base_fee_per_gas),
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender(),
        to: tx.tx.to(),
        contract_address: match block.receipts[index].deposit_nonce() {
            // A deposit has no nonce of its own: it created at the one it used.
            Some(nonce) if tx.tx.kind().is_create() => Some(tx.sender().create(nonce)),
            Some(_) => None,
            None => tx.created_address(),
        },
    };
    if !tx.is_deposit() {
        return RpcReceipt::Ethereum(receipt);
    }
    // A deposit's receipt has the legacy receipt's fields under its own type, plus the
    // nonce it used and the receipt version (op-geth's `depositNonce`,
    // `depositReceiptVersion`).
    let deposit = &block.receipts[index];
    let mut value = serde_json::to_value(receipt).unwrap_or_default();
    value["type"] = quantity(u64::from(DEPOSIT_TX_TYPE));
    if let Some(nonce) = deposit.deposit_nonce() {
        value["depositNonce"] = quantity(nonce);
    }
    if let Some(version) = deposit.deposit_receipt_version() {
        value["depositReceiptVersion"] = quantity(version);
    }
    RpcReceipt::Deposit(value)
}

/// A JSON-RPC quantity: `0x`-prefixed hex without leading zeros.
fn quantity(n: u64) -> serde_json::Value {
    serde_json::Value::String(format!("{n:#x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Eip658Value, Receipt};
    use alloy_primitives::{Address, B256, Bytes, TxKind};
    use lanes_executor::{TxDeposit, recovered_deposit};
    use std::sync::Arc;

    fn block_with_deposit() -> (SealedBlock, TxDeposit) {
        block_with_deposit_to(TxKind::Call(Address::repeat_byte(2)))
    }

    fn block_with_deposit_to(to: TxKind) -> (SealedBlock, TxDeposit) {
        let deposit = TxDeposit {
            source_hash: B256::repeat_byte(5),
            from: Address::repeat_byte(1),
            to,
            mint: 3_000,
            value: U256::from(1_000),
            gas_limit: 100_000,
            is_system_transaction: false,
            input: Bytes::new(),
        };
        let tx = BlockTx::new(Arc::new(recovered_deposit(deposit.clone())));
        let receipt = LanesReceipt::deposit(
            Receipt {
                status: Eip658Value::Eip658(true),
                cumulative_gas_used: 21_000,
                logs: vec![],
            },
            4,
        );
        let header = alloy_consensus::Header {
            number: 7,
            base_fee_per_gas: Some(1_000_000_000),
            ..Default::default()
        };
        (SealedBlock::new(header, vec![tx], vec![receipt]), deposit)
    }

    #[test]
    fn deposits_are_written_like_op_geth() {
        let (block, deposit) = block_with_deposit();
        let hash = block.transactions[0].hash();
        let tx = serde_json::to_value(rpc_transaction(&block, 0)).unwrap();
        assert_eq!(tx["type"], "0x7e");
        assert_eq!(tx["hash"], serde_json::to_value(hash).unwrap());
        assert_eq!(
            tx["sourceHash"],
            serde_json::to_value(deposit.source_hash).unwrap()
        );
        assert_eq!(tx["from"], serde_json::to_value(deposit.from).unwrap());
        assert_eq!(
            tx["to"],
            serde_json::to_value(Address::repeat_byte(2)).unwrap()
        );
        assert_eq!(tx["mint"], "0xbb8");
        assert_eq!(tx["value"], "0x3e8");
        assert_eq!(tx["gas"], "0x186a0");
        assert_eq!(tx["gasPrice"], "0x0");
        assert_eq!(tx["blockNumber"], "0x7");
        assert_eq!(tx["nonce"], "0x4");
        assert_eq!(tx["transactionIndex"], "0x0");
        assert_eq!(tx["blockHash"], serde_json::to_value(block.hash).unwrap());
        // `from` once: the text has no duplicate key.
        let text = serde_json::to_string(&rpc_transaction(&block, 0)).unwrap();
        assert_eq!(text.matches("\"from\"").count(), 1, "{text}");

        let receipt = serde_json::to_value(rpc_receipt(&block, 0)).unwrap();
        assert_eq!(receipt["type"], "0x7e");
        assert_eq!(receipt["status"], "0x1");
        assert_eq!(receipt["gasUsed"], "0x5208");
        assert_eq!(receipt["effectiveGasPrice"], "0x0");
        assert_eq!(receipt["depositNonce"], "0x4");
        assert_eq!(receipt["depositReceiptVersion"], "0x1");
        assert_eq!(
            receipt["transactionHash"],
            serde_json::to_value(hash).unwrap()
        );
        assert_eq!(receipt["from"], serde_json::to_value(deposit.from).unwrap());

        let full = serde_json::to_value(rpc_block(&block, true)).unwrap();
        assert_eq!(full["transactions"][0], tx);
        assert!(receipt["contractAddress"].is_null());
    }

    #[test]
    fn a_creating_deposit_reports_the_address_of_the_nonce_it_used() {
        let (block, deposit) = block_with_deposit_to(TxKind::Create);
        let receipt = serde_json::to_value(rpc_receipt(&block, 0)).unwrap();
        assert_eq!(
            receipt["contractAddress"],
            serde_json::to_value(deposit.from.create(4)).unwrap()
        );
    }
}
