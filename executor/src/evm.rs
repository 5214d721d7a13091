//! Glue between alloy's transaction types and revm: transaction environments, block
//! environments and EVM construction, shared by block building and `eth_call`.

use crate::{block::RecoveredTx, tx::TxDeposit};
use alloy_consensus::{Header, Transaction};
use alloy_eips::Typed2718;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{Address, B256, U256};
use revm::{
    Context, Database, MainBuilder, MainnetEvm,
    context::{BlockEnv, CfgEnv, Journal, TxEnv, either::Either},
    context_interface::block::BlobExcessGasAndPrice,
    primitives::hardfork::SpecId,
};

/// Chain-wide execution rules.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// EVM rules (lanes runs Cancun).
    pub spec_id: SpecId,
    /// Where the base fee goes: `None` burns it (EIP-1559), `Some(vault)` credits it.
    pub base_fee_recipient: Option<Address>,
    /// The base fee never drops below this (wei).
    pub base_fee_floor: u64,
}

impl ChainSpec {
    /// Cancun rules for `chain_id`, base fee burnt, no floor.
    pub fn cancun(chain_id: u64) -> Self {
        Self {
            chain_id,
            spec_id: SpecId::CANCUN,
            base_fee_recipient: None,
            base_fee_floor: 0,
        }
    }
}

/// Everything about a block that execution depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEnvInput {
    /// Block number.
    pub number: u64,
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Unix timestamp (seconds).
    pub timestamp: u64,
    /// Fee recipient (coinbase).
    pub beneficiary: Address,
    /// Block gas limit.
    pub gas_limit: u64,
    /// EIP-1559 base fee.
    pub base_fee: u64,
    /// PREVRANDAO value (header `mix_hash`).
    pub prevrandao: B256,
    /// EIP-4788 parent beacon block root written to the beacon roots contract.
    pub parent_beacon_block_root: B256,
    /// Upper bound on transactions in the block.
    pub max_txs: usize,
    /// EIP-4844 excess blob gas of the block (header field), which sets the blob base fee.
    /// Zero for lanes' own blocks, which carry no blobs.
    pub excess_blob_gas: u64,
}

impl BlockEnvInput {
    /// The environment a block with `header` ran in (block import and replay); its parent
    /// hash is the header's, and it may hold at most `max_txs` transactions.
    pub fn from_header(header: &Header, max_txs: usize) -> Self {
        Self {
            number: header.number,
            parent_hash: header.parent_hash,
            timestamp: header.timestamp,
            beneficiary: header.beneficiary,
            gas_limit: header.gas_limit,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
            prevrandao: header.mix_hash,
            parent_beacon_block_root: header.parent_beacon_block_root.unwrap_or_default(),
            max_txs,
            excess_blob_gas: header.excess_blob_gas.unwrap_or_default(),
        }
    }

    /// The revm block environment.
    pub fn block_env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: self.beneficiary,
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(self.prevrandao),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
                self.excess_blob_gas,
                BlobParams::cancun().update_fraction as u64,
            )),
            ..Default::default()
        }
    }
}

/// revm's transaction environment for a recovered transaction.
pub fn tx_env(tx: &RecoveredTx) -> TxEnv {
    tx_env_for(tx.inner(), tx.signer())
}

/// revm's transaction environment for signed transaction `tx` sent by `caller` (deposits
/// run with [`deposit_tx_env`]).
pub fn tx_env_for<T: Transaction + Typed2718>(tx: &T, caller: Address) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

/// revm's transaction environment for a deposit whose sender is at `nonce`: a legacy
/// transaction at gas price 0 (run with the base fee check disabled), so it pays no fee.
pub fn deposit_tx_env(tx: &TxDeposit, nonce: u64) -> TxEnv {
    TxEnv {
        tx_type: 0,
        caller: tx.from,
        gas_limit: tx.gas_limit,
        gas_price: 0,
        kind: tx.to,
        value: tx.value,
        data: tx.input.clone(),
        nonce,
        chain_id: None,
        ..Default::default()
    }
}

/// The EVM context lanes runs in, over database `DB`.
pub type LanesContext<DB> = Context<BlockEnv, TxEnv, CfgEnv, DB, Journal<DB>, ()>;

/// The mainnet EVM type lanes runs, over database `DB`.
pub type LanesEvm<DB> = MainnetEvm<LanesContext<DB>>;

/// The context of a block's EVM over `db`: the chain's rules, `block`, and whatever
/// `configure` changes.
pub fn evm_context<DB: Database>(
    chain: &ChainSpec,
    block: BlockEnv,
    db: DB,
    configure: impl FnOnce(&mut CfgEnv),
) -> LanesContext<DB> {
    let mut ctx: LanesContext<DB> = Context::new(db, chain.spec_id);
    ctx.block = block;
    ctx.modify_cfg(|cfg| {
        cfg.chain_id = chain.chain_id;
        // revm leaves the per-transaction blob limit unchecked unless told; the fork sets it.
        cfg.max_blobs_per_tx = Some(blob_params(chain.spec_id).max_blobs_per_tx);
        configure(cfg);
    });
    ctx
}

/// Builds an EVM over `db` for a block.
pub fn build_evm<DB: Database>(
    chain: &ChainSpec,
    block: BlockEnv,
    db: DB,
    configure: impl FnOnce(&mut CfgEnv),
) -> LanesEvm<DB> {
    evm_context(chain, block, db, configure).build_mainnet()
}

/// The blob schedule (EIP-7840) of `spec`.
pub fn blob_params(spec: SpecId) -> BlobParams {
    if spec.is_enabled_in(SpecId::OSAKA) {
        BlobParams::osaka()
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        BlobParams::prague()
    } else {
        BlobParams::cancun()
    }
}
