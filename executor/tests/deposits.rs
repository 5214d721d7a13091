//! Deposit (type 0x7e) execution semantics, the same under the sequential and the parallel
//! executor: the mint is credited before the call and survives its failure, no fee is
//! charged or burnt, the sender's nonce is used, a refused call still makes a failed receipt
//! using its whole gas limit, and the deposit's gas counts toward the block.

use alloy_consensus::{Signed, TxEip1559, transaction::Recovered};
use alloy_eips::{Encodable2718, Typed2718};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, Signature, TxKind, U256, keccak256};
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, DEPOSIT_TX_TYPE, ExecutedBlock, L1_MESSAGE_COUNTER,
    LanesReceipt, ParallelConfig, ParallelExecutor, RecoveredTx, SequentialExecutor, StoredAccount,
    TxDeposit, executor::VecSource, recovered_deposit, state::MemoryState,
};
use std::sync::Arc;

const BASE_FEE: u64 = 1_000_000_000;
const VAULT: Address = Address::repeat_byte(0xfe);
const COINBASE: Address = Address::repeat_byte(0xbe);
const USER: Address = Address::repeat_byte(0x11);
const FRESH: Address = Address::repeat_byte(0xd0);
const TARGET: Address = Address::repeat_byte(0x22);
/// Code: `REVERT(0, 0)`.
const REVERTER: Address = Address::repeat_byte(0x33);

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64.pow(18))
}

fn state() -> MemoryState {
    let mut state = MemoryState::default();
    state.accounts.insert(
        USER,
        StoredAccount {
            nonce: 0,
            balance: ether(10),
            code_hash: KECCAK256_EMPTY,
        },
    );
    let code = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xfd]);
    state.codes.insert(keccak256(&code), code.clone());
    state.accounts.insert(
        REVERTER,
        StoredAccount {
            nonce: 1,
            balance: U256::ZERO,
            code_hash: keccak256(&code),
        },
    );
    state
}

fn deposit(n: u8, mint: u64, to: Address, value: U256, gas_limit: u64) -> Arc<RecoveredTx> {
    Arc::new(recovered_deposit(TxDeposit {
        source_hash: B256::repeat_byte(n),
        from: FRESH,
        to: TxKind::Call(to),
        mint: ether(mint).to(),
        value,
        gas_limit,
        is_system_transaction: false,
        input: Bytes::new(),
    }))
}

fn transfer(nonce: u64) -> Arc<RecoveredTx> {
    let tx = TxEip1559 {
        chain_id: 1337,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 2 * BASE_FEE as u128,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(TARGET),
        value: U256::from(1),
        ..Default::default()
    };
    let envelope =
        alloy_consensus::TxEnvelope::from(Signed::new_unhashed(tx, Signature::test_signature()));
    Arc::new(Recovered::new_unchecked(envelope.into(), USER))
}

fn chain() -> ChainSpec {
    let mut chain = ChainSpec::cancun(1337);
    chain.base_fee_recipient = Some(VAULT);
    chain
}

fn env() -> BlockEnvInput {
    BlockEnvInput {
        number: 1,
        parent_hash: B256::ZERO,
        timestamp: 1_700_000_000,
        beneficiary: COINBASE,
        gas_limit: 30_000_000,
        base_fee: BASE_FEE,
        prevrandao: B256::ZERO,
        parent_beacon_block_root: B256::ZERO,
        max_txs: 100,
        excess_blob_gas: 0,
    }
}

fn run(executor: &impl BlockExecutor, txs: Vec<Arc<RecoveredTx>>) -> (ExecutedBlock, MemoryState) {
    let (chain, env) = (chain(), env());
    let base = state();
    let mut source = VecSource::new(txs);
    let block = executor
        .execute(&chain, &env, &base, &mut source)
        .expect("block builds");
    assert!(
        source.skipped.is_empty(),
        "nothing skipped: {:?}",
        source.skipped
    );
    let mut after = base;
    after.apply(&block.changes);
    (block, after)
}

fn block_txs() -> Vec<Arc<RecoveredTx>> {
    vec![
        // Mints 5 to a fresh account, which sends 1 on.
        deposit(1, 5, TARGET, ether(1), 21_000),
        // Refused by revm (value above the balance even after the mint): mint kept.
        deposit(2, 1, TARGET, ether(100), 30_000),
        // Reverts: mint kept, value not sent.
        deposit(3, 2, REVERTER, ether(1), 50_000),
        transfer(0),
    ]
}

fn check(executor: &impl BlockExecutor) {
    let txs = block_txs();
    let hashes: Vec<B256> = txs.iter().map(|t| *t.inner().tx_hash()).collect();
    let (block, state) = run(executor, txs);

    let included: Vec<B256> = block.transactions.iter().map(|t| t.hash()).collect();
    assert_eq!(included, hashes);
    let types: Vec<u8> = block.receipts.iter().map(Typed2718::ty).collect();
    assert_eq!(
        types,
        [DEPOSIT_TX_TYPE, DEPOSIT_TX_TYPE, DEPOSIT_TX_TYPE, 2]
    );
    let status: Vec<bool> = block.receipts.iter().map(LanesReceipt::status).collect();
    assert_eq!(status, [true, false, false, true]);
    let nonces: Vec<Option<u64>> = block
        .receipts
        .iter()
        .map(LanesReceipt::deposit_nonce)
        .collect();
    assert_eq!(nonces, [Some(0), Some(1), Some(2), None]);

    let gas: Vec<u64> = block
        .receipts
        .iter()
        .scan(0, |before, r| {
            let used = r.cumulative_gas_used() - *before;
            *before = r.cumulative_gas_used();
            Some(used)
        })
        .collect();
    assert_eq!(gas[0], 21_000);
    assert_eq!(gas[1], 30_000, "a refused deposit uses its whole gas limit");
    assert!(gas[2] > 21_000 && gas[2] < 50_000, "{}", gas[2]);
    assert_eq!(gas[3], 21_000);
    assert_eq!(block.gas_used, gas.iter().sum::<u64>());

    assert_eq!(
        state.accounts[&L1_MESSAGE_COUNTER].nonce, 3,
        "three L1 messages executed"
    );
    let fresh = state.accounts[&FRESH];
    assert_eq!(fresh.nonce, 3, "every deposit uses a nonce");
    assert_eq!(fresh.balance, ether(5 - 1 + 1 + 2), "no fee, mints kept");
    assert_eq!(state.accounts[&TARGET].balance, ether(1) + U256::from(1));
    assert_eq!(state.accounts[&REVERTER].balance, U256::ZERO);

    // Only the signed transfer pays: its base fee to the vault, its tip to the coinbase.
    assert_eq!(block.base_fees, U256::from(BASE_FEE) * U256::from(21_000));
    assert_eq!(state.accounts[&VAULT].balance, block.base_fees);
    assert_eq!(state.accounts[&COINBASE].balance, U256::from(21_000));
    assert_eq!(
        state.accounts[&USER].balance,
        ether(10) - U256::from(1) - U256::from(21_000 * (BASE_FEE + 1))
    );

    // The block commits to the deposits' 2718 encodings.
    let header = block.header(B256::ZERO);
    let encoded: Vec<_> = block
        .transactions
        .iter()
        .map(|t| t.tx.inner().encoded_2718())
        .collect();
    assert_eq!(encoded[0][0], DEPOSIT_TX_TYPE);
    assert_eq!(
        header.transactions_root,
        alloy_consensus::proofs::ordered_trie_root_with_encoder(&encoded, |e, buf| buf
            .extend_from_slice(e))
    );
}

#[test]
fn sequential_executor_runs_deposits() {
    check(&SequentialExecutor::new());
}

#[test]
fn parallel_executor_runs_deposits() {
    let forced = ParallelConfig {
        min_txs_per_worker: 1,
        max_worker_share: 1.0,
        ..Default::default()
    };
    check(&ParallelExecutor::with_config(2, forced));
    check(&ParallelExecutor::new(1));
}

/// A replay (what `debug_trace*` runs) takes the block's own steps: each traced transaction
/// uses the gas its receipt says, a refused deposit is reported as such, and the replayed
/// state is the block's but for the base fees, which the block pays its vault at the end.
#[test]
fn a_replay_runs_what_the_block_ran() {
    let (block, _) = run(&SequentialExecutor::new(), block_txs());
    let (chain, base) = (chain(), state());
    let mut replay = lanes_executor::Replay::new(&chain, env(), &base).unwrap();
    let mut before = 0;
    for (tx, receipt) in block.transactions.iter().zip(block.receipts.iter()) {
        let used = receipt.cumulative_gas_used() - before;
        before = receipt.cumulative_gas_used();
        let traced = replay.trace(&tx.tx, revm::inspector::NoOpInspector, |_, out, _| {
            (out.result.tx_gas_used(), out.result.is_success())
        });
        match traced {
            Ok((gas, success)) => {
                assert_eq!(gas, used);
                assert_eq!(success, receipt.status());
            }
            Err(err) => {
                assert!(
                    err.to_string().contains("deposit call was refused"),
                    "{err}"
                );
                assert_eq!(receipt.deposit_nonce(), Some(1), "only the refused deposit");
            }
        }
    }
    let mut replayed = base.clone();
    replayed.apply(&replay.into_changes());
    let mut built = base;
    built.apply(&block.changes);
    built.accounts.remove(&VAULT);
    assert_eq!(replayed.accounts, built.accounts);
    assert_eq!(replayed.storage, built.storage);
}
