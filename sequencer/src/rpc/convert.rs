//! Conversions from lanes' block types to the JSON-RPC types wallets expect.

use alloy_consensus::{ReceiptEnvelope, Transaction as _};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::U256;
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt, Withdrawals,
};
use lanes_executor::{BlockTx, SealedBlock};

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

/// A mined transaction.
pub fn rpc_transaction(block: &SealedBlock, index: usize) -> Transaction {
    let tx = &block.transactions[index];
    Transaction {
        inner: (*tx.tx).clone(),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.tx.effective_gas_price(block.header.base_fee_per_gas)),
        block_timestamp: Some(block.header.timestamp),
    }
}

/// A transaction still in the pool.
pub fn rpc_pending_transaction(tx: &BlockTx) -> Transaction {
    Transaction {
        inner: (*tx.tx).clone(),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}

/// The RPC block, with full transactions or hashes.
pub fn rpc_block(block: &SealedBlock, full: bool) -> Block {
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
pub fn rpc_receipt(block: &SealedBlock, index: usize) -> TransactionReceipt {
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
        ReceiptEnvelope::Legacy(r) => ReceiptEnvelope::Legacy(with_rpc_logs(r)),
        ReceiptEnvelope::Eip2930(r) => ReceiptEnvelope::Eip2930(with_rpc_logs(r)),
        ReceiptEnvelope::Eip1559(r) => ReceiptEnvelope::Eip1559(with_rpc_logs(r)),
        ReceiptEnvelope::Eip4844(r) => ReceiptEnvelope::Eip4844(with_rpc_logs(r)),
        ReceiptEnvelope::Eip7702(r) => ReceiptEnvelope::Eip7702(with_rpc_logs(r)),
    };
    TransactionReceipt {
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
        contract_address: tx.created_address(),
    }
}
