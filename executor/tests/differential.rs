//! Differential tests: the parallel executor must build exactly the block the sequential
//! executor builds from the same candidates — same included transactions, receipts, skips
//! (with reasons), gas, state changes and state root — at 1, 2, 4 and 8 worker threads, with
//! the default tuning and with tunings that force parallel windows and tiny windows.
//!
//! Blocks are random mixes of ETH transfers (to accounts, contracts, the fee recipient and
//! fresh addresses), ERC-20 transfers/approvals/transferFrom, a counter everybody writes, a
//! contract calling it, balance reads (including the fee recipient's), CREATE/CREATE2,
//! SELFDESTRUCT, reverts and out-of-gas, over several transactions per sender whose nonces go
//! stale or whose balance runs out mid-block, and L1 deposits (type 0x7e) among them: minting
//! to known and fresh senders, some refused by revm (value above the balance after the mint,
//! gas limit below the intrinsic gas) and so failed with the mint kept. Contracts are the precompiled ones in
//! `benches-assets/` (Solidity source there); senders are assigned, not recovered, since the
//! executor trusts the recovered sender.

use alloy_consensus::{Signed, TxEip1559, TxEip2930, TxEnvelope, TxLegacy, transaction::Recovered};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{
    Address, B256, Bytes, KECCAK256_EMPTY, Signature, TxKind, U256, keccak256,
    map::{HashMap, HashSet},
};
use alloy_sol_types::{SolCall, sol};
use lanes_executor::{
    BlockEnvInput, BlockExecutor, ChainSpec, ExecutedBlock, ExecutionStats, LanesReceipt,
    LanesTxEnvelope, ParallelConfig, ParallelExecutor, RecoveredTx, SequentialExecutor, SkipReason,
    StateChanges, StoredAccount, TxDeposit, TxSource, root,
    state::{AccountChange, MemoryState},
};
use proptest::prelude::*;
use std::{
    collections::VecDeque,
    sync::{Arc, LazyLock},
};

sol! {
    interface IToken {
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
    }
    interface ICounter {
        function increment() external;
        function incrementBy(uint256 n) external;
        function observeCoinbase() external;
        function observe(address who) external;
        function observeToken(address token, address who) external;
        function payToken(address token, address to, uint256 amount) external;
        function forward(address to) external payable;
        function burn(uint256 rounds) external;
        function fail() external;
    }
    interface ICaller {
        function poke(address counter) external;
    }
    interface IFactory {
        function deploy() external payable returns (address);
        function deploy2(bytes32 salt) external returns (address);
        function deployAndKill() external payable;
        function killLast() external;
    }
}

const CHAIN_ID: u64 = 1337;
const BASE_FEE: u64 = 1_000_000_000;
const ACCOUNTS: usize = 16;
/// Accounts from this index on start nearly broke, so their balance runs out mid-block.
const POOR_FROM: usize = 13;

const TOKEN: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
]);
const COUNTER: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
]);
const CALLER: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,
]);
const FACTORY: Address = Address::new([
    0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4,
]);
const CONTRACTS: [Address; 4] = [TOKEN, COUNTER, CALLER, FACTORY];

fn account(i: usize) -> Address {
    Address::repeat_byte(0x10 + i as u8)
}

fn fresh(i: u8) -> Address {
    Address::repeat_byte(0xa0 + (i % 4))
}

fn ether(milli: u64) -> U256 {
    U256::from(milli) * U256::from(1_000_000_000_000_000u64)
}

fn code(hex: &str) -> Bytes {
    Bytes::from(alloy_primitives::hex::decode(hex.trim()).expect("valid hex"))
}

/// `keccak256(key . slot)`: the storage slot of `mapping[key]` at `slot`.
fn mapping_slot(key: Address, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(key.as_slice());
    buf[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

fn allowance_slot(owner: Address, spender: Address) -> U256 {
    let inner = mapping_slot(owner, U256::from(1));
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(spender.as_slice());
    buf[32..].copy_from_slice(&inner.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

/// Which account collects the fees: changes which paths the executor must take.
#[derive(Clone, Copy, Debug)]
enum Beneficiary {
    /// An address that does not exist yet.
    Fresh,
    /// One of the senders.
    Sender,
    /// The counter contract.
    Contract,
}

impl Beneficiary {
    fn address(self) -> Address {
        match self {
            Beneficiary::Fresh => Address::repeat_byte(0xbe),
            Beneficiary::Sender => account(0),
            Beneficiary::Contract => COUNTER,
        }
    }
}

fn genesis() -> MemoryState {
    let mut state = MemoryState::default();
    for i in 0..ACCOUNTS {
        let balance = if i < POOR_FROM {
            ether(1_000_000)
        } else {
            ether(30)
        };
        state.accounts.insert(
            account(i),
            StoredAccount {
                nonce: 0,
                balance,
                code_hash: KECCAK256_EMPTY,
            },
        );
        state.storage.insert(
            (TOKEN, mapping_slot(account(i), U256::ZERO)),
            U256::from(1_000),
        );
        let spender = account((i + 1) % ACCOUNTS);
        state.storage.insert(
            (TOKEN, allowance_slot(account(i), spender)),
            U256::from(500),
        );
    }
    state.storage.insert(
        (TOKEN, mapping_slot(COUNTER, U256::ZERO)),
        U256::from(1_000_000),
    );
    state.storage.insert(
        (TOKEN, U256::from(2)),
        U256::from(1_000 * ACCOUNTS as u64 + 1_000_000),
    );
    let contracts = [
        (TOKEN, include_str!("../benches-assets/Token.hex")),
        (COUNTER, include_str!("../benches-assets/Counter.hex")),
        (CALLER, include_str!("../benches-assets/Caller.hex")),
        (FACTORY, include_str!("../benches-assets/Factory.hex")),
    ];
    for (address, hex) in contracts {
        let bytes = code(hex);
        let hash = keccak256(&bytes);
        state.codes.insert(hash, bytes);
        state.accounts.insert(
            address,
            StoredAccount {
                nonce: 1,
                balance: U256::ZERO,
                code_hash: hash,
            },
        );
    }
    state.block_hashes.insert(0, B256::repeat_byte(0x99));
    state
}

/// A destination.
#[derive(Clone, Copy, Debug)]
enum Target {
    Account(usize),
    Contract(usize),
    Beneficiary,
    Fresh(u8),
}

impl Target {
    fn address(self, beneficiary: Address) -> Address {
        match self {
            Target::Account(i) => account(i),
            Target::Contract(i) => CONTRACTS[i],
            Target::Beneficiary => beneficiary,
            Target::Fresh(i) => fresh(i),
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    Eth {
        to: Target,
        value: u16,
    },
    TokenTransfer {
        to: Target,
        amount: u16,
    },
    Approve {
        spender: Target,
        amount: u16,
    },
    TransferFrom {
        from: usize,
        to: Target,
        amount: u16,
    },
    Increment,
    IncrementBy(u8),
    ObserveCoinbase,
    Observe(Target),
    ObserveToken(Target),
    PayToken {
        to: Target,
        amount: u16,
    },
    Forward {
        to: Target,
        value: u16,
    },
    Poke,
    Burn(u8),
    Fail,
    Deploy {
        value: u16,
    },
    Deploy2(u8),
    DeployAndKill {
        value: u16,
    },
    KillLast,
    Create,
}

#[derive(Clone, Copy, Debug)]
enum NonceMode {
    Next,
    Reuse,
    Gap,
}

#[derive(Clone, Copy, Debug)]
enum TxType {
    Legacy,
    AccessList,
    Dynamic,
    /// An L1 deposit minting `mint` hundredths of an ether, from the spec's sender or from
    /// an account that does not exist yet.
    Deposit {
        mint: u16,
        fresh_sender: bool,
    },
}

#[derive(Clone, Debug)]
struct TxSpec {
    sender: usize,
    action: Action,
    nonce: NonceMode,
    tx_type: TxType,
    tip: u8,
    fee_cap_below_base: bool,
    low_gas: bool,
    wrong_chain: bool,
    access_token_slot_of: Option<usize>,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0..ACCOUNTS).prop_map(Target::Account),
        1 => (0..4usize).prop_map(Target::Contract),
        1 => Just(Target::Beneficiary),
        2 => any::<u8>().prop_map(Target::Fresh),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (target(), 0..3000u16).prop_map(|(to, value)| Action::Eth { to, value }),
        5 => (target(), 0..1500u16).prop_map(|(to, amount)| Action::TokenTransfer { to, amount }),
        1 => (target(), 0..1500u16).prop_map(|(spender, amount)| Action::Approve { spender, amount }),
        2 => (0..ACCOUNTS, target(), 0..700u16).prop_map(|(from, to, amount)| Action::TransferFrom { from, to, amount }),
        3 => Just(Action::Increment),
        1 => any::<u8>().prop_map(Action::IncrementBy),
        1 => Just(Action::ObserveCoinbase),
        2 => target().prop_map(Action::Observe),
        1 => target().prop_map(Action::ObserveToken),
        1 => (target(), 0..100u16).prop_map(|(to, amount)| Action::PayToken { to, amount }),
        2 => (target(), 0..100u16).prop_map(|(to, value)| Action::Forward { to, value }),
        2 => Just(Action::Poke),
        1 => (0..40u8).prop_map(Action::Burn),
        1 => Just(Action::Fail),
        1 => (0..50u16).prop_map(|value| Action::Deploy { value }),
        1 => (0..4u8).prop_map(Action::Deploy2),
        1 => (0..50u16).prop_map(|value| Action::DeployAndKill { value }),
        1 => Just(Action::KillLast),
        1 => Just(Action::Create),
    ]
}

/// Actions that only conflict where the lanes expect it, so whole windows commit by merging.
fn calm_action() -> impl Strategy<Value = Action> {
    let to = prop_oneof![
        3 => (0..ACCOUNTS).prop_map(Target::Account),
        3 => any::<u8>().prop_map(Target::Fresh),
        1 => (1..2usize).prop_map(Target::Contract),
    ];
    prop_oneof![
        6 => (to.clone(), 0..3u16).prop_map(|(to, value)| Action::Eth { to, value }),
        4 => (to.clone(), 0..1500u16).prop_map(|(to, amount)| Action::TokenTransfer { to, amount }),
        1 => (to.clone(), 0..1500u16).prop_map(|(spender, amount)| Action::Approve { spender, amount }),
        1 => (0..ACCOUNTS, to.clone(), 0..700u16).prop_map(|(from, to, amount)| Action::TransferFrom { from, to, amount }),
        2 => Just(Action::Increment),
        1 => (0..40u8).prop_map(Action::Burn),
        1 => Just(Action::Fail),
        1 => (0..50u16).prop_map(|value| Action::Deploy { value }),
        1 => (0..4u8).prop_map(Action::Deploy2),
        1 => (0..50u16).prop_map(|value| Action::DeployAndKill { value }),
        1 => Just(Action::KillLast),
        1 => Just(Action::Create),
    ]
}

fn calm_tx_spec() -> impl Strategy<Value = TxSpec> {
    (
        0..ACCOUNTS,
        calm_action(),
        prop_oneof![2 => Just(0u8), 3 => 1..5u8],
        prop::bool::weighted(0.03),
    )
        .prop_map(|(sender, action, tip, low_gas)| TxSpec {
            sender,
            action,
            nonce: NonceMode::Next,
            tx_type: TxType::Dynamic,
            tip,
            fee_cap_below_base: false,
            low_gas,
            wrong_chain: false,
            access_token_slot_of: None,
        })
}

fn tx_spec() -> impl Strategy<Value = TxSpec> {
    (
        (0..ACCOUNTS, action()),
        prop_oneof![12 => Just(NonceMode::Next), 1 => Just(NonceMode::Reuse), 1 => Just(NonceMode::Gap)],
        prop_oneof![
            1 => Just(TxType::Legacy),
            1 => Just(TxType::AccessList),
            4 => Just(TxType::Dynamic),
            1 => (0..5000u16, prop::bool::weighted(0.3))
                .prop_map(|(mint, fresh_sender)| TxType::Deposit { mint, fresh_sender }),
        ],
        prop_oneof![2 => Just(0u8), 3 => 1..5u8],
        prop::bool::weighted(0.03),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.02),
        prop::option::weighted(0.15, 0..ACCOUNTS),
    )
        .prop_map(
            |((sender, action), nonce, tx_type, tip, fee_cap_below_base, low_gas, wrong_chain, access)| TxSpec {
                sender,
                action,
                nonce,
                tx_type,
                tip,
                fee_cap_below_base,
                low_gas,
                wrong_chain,
                access_token_slot_of: access,
            },
        )
}

/// Turns specs into signed-looking transactions with the sender attached.
struct Builder {
    nonces: HashMap<usize, u64>,
    beneficiary: Address,
    /// Deposits built so far, which makes their source hashes unique.
    deposits: u64,
}

impl Builder {
    fn build(&mut self, spec: &TxSpec) -> Arc<RecoveredTx> {
        let b = self.beneficiary;
        let (to, value, input, gas): (TxKind, U256, Vec<u8>, u64) = match &spec.action {
            Action::Eth { to, value } => {
                let to = to.address(b);
                let gas = if CONTRACTS.contains(&to) || to == b {
                    60_000
                } else {
                    21_000
                };
                (
                    TxKind::Call(to),
                    ether(*value as u64) / U256::from(100),
                    vec![],
                    gas,
                )
            }
            Action::TokenTransfer { to, amount } => (
                TxKind::Call(TOKEN),
                U256::ZERO,
                IToken::transferCall {
                    to: to.address(b),
                    value: U256::from(*amount),
                }
                .abi_encode(),
                90_000,
            ),
            Action::Approve { spender, amount } => (
                TxKind::Call(TOKEN),
                U256::ZERO,
                IToken::approveCall {
                    spender: spender.address(b),
                    value: U256::from(*amount),
                }
                .abi_encode(),
                70_000,
            ),
            Action::TransferFrom { from, to, amount } => (
                TxKind::Call(TOKEN),
                U256::ZERO,
                IToken::transferFromCall {
                    from: account(*from),
                    to: to.address(b),
                    value: U256::from(*amount),
                }
                .abi_encode(),
                110_000,
            ),
            Action::Increment => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::incrementCall {}.abi_encode(),
                60_000,
            ),
            Action::IncrementBy(n) => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::incrementByCall { n: U256::from(*n) }.abi_encode(),
                60_000,
            ),
            Action::ObserveCoinbase => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::observeCoinbaseCall {}.abi_encode(),
                60_000,
            ),
            Action::Observe(who) => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::observeCall {
                    who: who.address(b),
                }
                .abi_encode(),
                60_000,
            ),
            Action::ObserveToken(who) => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::observeTokenCall {
                    token: TOKEN,
                    who: who.address(b),
                }
                .abi_encode(),
                70_000,
            ),
            Action::PayToken { to, amount } => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::payTokenCall {
                    token: TOKEN,
                    to: to.address(b),
                    amount: U256::from(*amount),
                }
                .abi_encode(),
                90_000,
            ),
            Action::Forward { to, value } => (
                TxKind::Call(COUNTER),
                ether(*value as u64) / U256::from(100),
                ICounter::forwardCall { to: to.address(b) }.abi_encode(),
                90_000,
            ),
            Action::Poke => (
                TxKind::Call(CALLER),
                U256::ZERO,
                ICaller::pokeCall { counter: COUNTER }.abi_encode(),
                90_000,
            ),
            Action::Burn(rounds) => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::burnCall {
                    rounds: U256::from(*rounds),
                }
                .abi_encode(),
                150_000,
            ),
            Action::Fail => (
                TxKind::Call(COUNTER),
                U256::ZERO,
                ICounter::failCall {}.abi_encode(),
                60_000,
            ),
            Action::Deploy { value } => (
                TxKind::Call(FACTORY),
                U256::from(*value),
                IFactory::deployCall {}.abi_encode(),
                300_000,
            ),
            Action::Deploy2(salt) => (
                TxKind::Call(FACTORY),
                U256::ZERO,
                IFactory::deploy2Call {
                    salt: B256::with_last_byte(*salt),
                }
                .abi_encode(),
                300_000,
            ),
            Action::DeployAndKill { value } => (
                TxKind::Call(FACTORY),
                U256::from(*value),
                IFactory::deployAndKillCall {}.abi_encode(),
                300_000,
            ),
            Action::KillLast => (
                TxKind::Call(FACTORY),
                U256::ZERO,
                IFactory::killLastCall {}.abi_encode(),
                100_000,
            ),
            Action::Create => (
                TxKind::Create,
                U256::ZERO,
                code(include_str!("../benches-assets/Child.init.hex")).to_vec(),
                250_000,
            ),
        };
        let gas_limit = if spec.low_gas { gas / 2 + 500 } else { gas };
        if let TxType::Deposit { mint, fresh_sender } = spec.tx_type {
            let from = if fresh_sender {
                Address::repeat_byte(0xd0 + (spec.sender % 4) as u8)
            } else {
                // A deposit always uses its sender's nonce, even when its call is refused.
                *self.nonces.entry(spec.sender).or_default() += 1;
                account(spec.sender)
            };
            self.deposits += 1;
            let deposit = TxDeposit {
                source_hash: keccak256(self.deposits.to_be_bytes()),
                from,
                to,
                mint: (ether(mint as u64) / U256::from(100)).to(),
                value,
                gas_limit,
                is_system_transaction: false,
                input: Bytes::from(input),
            };
            return Arc::new(Recovered::new_unchecked(
                LanesTxEnvelope::deposit(deposit),
                from,
            ));
        }
        let next = self.nonces.entry(spec.sender).or_default();
        let nonce = match spec.nonce {
            NonceMode::Next => {
                *next += 1;
                *next - 1
            }
            NonceMode::Reuse => next.saturating_sub(1),
            NonceMode::Gap => *next + 1,
        };
        let tip = spec.tip as u128 * 1_000_000_000;
        let max_fee = if spec.fee_cap_below_base {
            BASE_FEE as u128 - 1
        } else {
            BASE_FEE as u128 + tip + 7
        };
        let chain_id = if spec.wrong_chain {
            CHAIN_ID + 1
        } else {
            CHAIN_ID
        };
        let access_list = AccessList(
            spec.access_token_slot_of
                .map(|i| {
                    vec![AccessListItem {
                        address: TOKEN,
                        storage_keys: vec![B256::from(mapping_slot(account(i), U256::ZERO))],
                    }]
                })
                .unwrap_or_default(),
        );
        let input = Bytes::from(input);
        let signature = Signature::test_signature();
        let envelope = match spec.tx_type {
            TxType::Legacy => TxEnvelope::from(Signed::new_unhashed(
                TxLegacy {
                    chain_id: Some(chain_id),
                    nonce,
                    gas_price: max_fee,
                    gas_limit,
                    to,
                    value,
                    input,
                },
                signature,
            )),
            TxType::AccessList => TxEnvelope::from(Signed::new_unhashed(
                TxEip2930 {
                    chain_id,
                    nonce,
                    gas_price: max_fee,
                    gas_limit,
                    to,
                    value,
                    input,
                    access_list,
                },
                signature,
            )),
            TxType::Dynamic | TxType::Deposit { .. } => TxEnvelope::from(Signed::new_unhashed(
                TxEip1559 {
                    chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas: max_fee,
                    max_priority_fee_per_gas: tip.min(max_fee),
                    to,
                    value,
                    input,
                    access_list,
                },
                signature,
            )),
        };
        Arc::new(Recovered::new_unchecked(
            envelope.into(),
            account(spec.sender),
        ))
    }
}

/// A source that behaves like the pool: once a sender is skipped, its later transactions
/// are not offered. With a burst size it streams like the block builder: it offers that
/// many transactions, then says "nothing right now" until the executor waits for more.
struct PoolSource {
    txs: VecDeque<Arc<RecoveredTx>>,
    dropped: HashSet<Address>,
    skipped: Vec<(B256, SkipReason)>,
    burst: usize,
    /// Offers left in the current burst.
    released: usize,
}

impl PoolSource {
    fn new(txs: &[Arc<RecoveredTx>], burst: usize) -> Self {
        Self {
            txs: txs.iter().cloned().collect(),
            dropped: HashSet::default(),
            skipped: Vec::new(),
            burst,
            released: burst,
        }
    }
}

impl TxSource for PoolSource {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        loop {
            if self.burst > 0 {
                if self.released == 0 {
                    return None;
                }
                self.released -= 1;
            }
            let tx = self.txs.pop_front()?;
            if tx.inner().is_deposit() || !self.dropped.contains(&tx.signer()) {
                return Some(tx);
            }
        }
    }
    fn wait_for_more(&mut self) -> bool {
        self.released = self.burst;
        self.burst > 0 && !self.txs.is_empty()
    }
    fn skip(&mut self, tx: &RecoveredTx, reason: SkipReason) {
        self.dropped.insert(tx.signer());
        self.skipped.push((*tx.inner().tx_hash(), reason));
    }
}

/// Everything observable about a built block.
#[derive(Debug, PartialEq)]
struct Built {
    included: Vec<B256>,
    receipts: Vec<LanesReceipt>,
    skipped: Vec<(B256, SkipReason)>,
    gas_used: u64,
    base_fees: U256,
    changes: StateChanges,
    state_root: B256,
}

fn build(
    executor: &impl BlockExecutor,
    chain: &ChainSpec,
    env: &BlockEnvInput,
    state: &MemoryState,
    txs: &[Arc<RecoveredTx>],
    burst: usize,
) -> Built {
    let mut source = PoolSource::new(txs, burst);
    let ExecutedBlock {
        transactions,
        receipts,
        changes,
        gas_used,
        base_fees,
        ..
    } = executor
        .execute(chain, env, state, &mut source)
        .expect("block builds");
    let state_root = root::state_root_with(state, &changes).expect("root");
    Built {
        included: transactions.iter().map(|t| t.hash()).collect(),
        receipts,
        skipped: source.skipped,
        gas_used,
        base_fees,
        changes,
        state_root,
    }
}

/// Parallel executors under test: every thread count with five tunings.
static EXECUTORS: LazyLock<Vec<(String, ParallelExecutor)>> = LazyLock::new(|| {
    let forced = ParallelConfig {
        min_txs_per_worker: 1,
        max_worker_share: 1.0,
        ..Default::default()
    };
    let tiny = ParallelConfig {
        max_window: 5,
        ..forced.clone()
    };
    let scattered = ParallelConfig {
        round_robin: true,
        ..forced.clone()
    };
    let split = ParallelConfig {
        split_groups: true,
        ..forced.clone()
    };
    let mut executors = Vec::new();
    for threads in [1, 2, 4, 8] {
        executors.push((
            format!("{threads} threads, default"),
            ParallelExecutor::new(threads),
        ));
        executors.push((
            format!("{threads} threads, forced"),
            ParallelExecutor::with_config(threads, forced.clone()),
        ));
        executors.push((
            format!("{threads} threads, tiny windows"),
            ParallelExecutor::with_config(threads, tiny.clone()),
        ));
        executors.push((
            format!("{threads} threads, round robin"),
            ParallelExecutor::with_config(threads, scattered.clone()),
        ));
        executors.push((
            format!("{threads} threads, groups split"),
            ParallelExecutor::with_config(threads, split.clone()),
        ));
    }
    executors
});

static SEQUENTIAL: LazyLock<SequentialExecutor> = LazyLock::new(SequentialExecutor::new);

#[derive(Clone, Debug)]
struct Case {
    beneficiary: Beneficiary,
    vault: bool,
    gas_limit: u64,
    max_txs: usize,
    blocks: Vec<Vec<TxSpec>>,
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![chaotic_case(), calm_case(), hot_case()]
}

/// Many payments of one token to a few holders (predicted hot credits), with other
/// transactions reading those balances, paying them from contracts, or debiting them.
fn hot_case() -> impl Strategy<Value = Case> {
    let hot = (0..3u8).prop_map(Target::Fresh);
    let action = prop_oneof![
        12 => (hot.clone(), 0..1200u16).prop_map(|(to, amount)| Action::TokenTransfer { to, amount }),
        2 => (0..ACCOUNTS, hot.clone(), 0..700u16).prop_map(|(from, to, amount)| Action::TransferFrom { from, to, amount }),
        1 => hot.clone().prop_map(Action::ObserveToken),
        1 => (hot.clone(), 0..100u16).prop_map(|(to, amount)| Action::PayToken { to, amount }),
        2 => (0..ACCOUNTS).prop_map(|i| Action::TokenTransfer { to: Target::Account(i), amount: 5 }),
        2 => (any::<u8>(), 0..3u16).prop_map(|(i, value)| Action::Eth { to: Target::Fresh(i), value }),
        1 => Just(Action::Increment),
    ];
    let spec = (
        0..ACCOUNTS,
        action,
        prop_oneof![5 => Just(NonceMode::Next), 1 => Just(NonceMode::Reuse)],
    )
        .prop_map(|(sender, action, nonce)| TxSpec {
            nonce,
            ..spec(sender, action)
        });
    (
        prop::collection::vec(prop::collection::vec(spec, 0..64), 1..=3),
        any::<bool>(),
    )
        .prop_map(|(blocks, small)| Case {
            beneficiary: Beneficiary::Fresh,
            vault: false,
            gas_limit: 30_000_000,
            max_txs: if small { 20 } else { 1_000 },
            blocks,
        })
}

/// Blocks of mostly independent transactions: whole windows stand and merge.
fn calm_case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Beneficiary::Fresh), Just(Beneficiary::Contract)],
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(calm_tx_spec(), 0..64), 1..=2),
    )
        .prop_map(|(beneficiary, vault, blocks)| Case {
            beneficiary,
            vault,
            gas_limit: 30_000_000,
            max_txs: 1_000,
            blocks,
        })
}

/// Anything goes: stale nonces, drained balances, fee recipient reads, hidden dependencies.
fn chaotic_case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Beneficiary::Fresh),
            Just(Beneficiary::Sender),
            Just(Beneficiary::Contract)
        ],
        any::<bool>(),
        prop_oneof![1 => Just(200_000u64), 1 => Just(1_500_000u64), 4 => Just(30_000_000u64)],
        prop_oneof![1 => Just(4usize), 4 => Just(1_000usize)],
        prop::collection::vec(prop::collection::vec(tx_spec(), 0..48), 1..=2),
    )
        .prop_map(|(beneficiary, vault, gas_limit, max_txs, blocks)| Case {
            beneficiary,
            vault,
            gas_limit,
            max_txs,
            blocks,
        })
}

/// The first block of `case` as block 1 on genesis: its transactions and environment.
fn first_block(case: &Case) -> (Vec<Arc<RecoveredTx>>, BlockEnvInput) {
    let beneficiary = case.beneficiary.address();
    let mut builder = Builder {
        nonces: HashMap::default(),
        deposits: 0,
        beneficiary,
    };
    let txs = case.blocks[0].iter().map(|s| builder.build(s)).collect();
    let env = BlockEnvInput {
        number: 1,
        parent_hash: B256::ZERO,
        timestamp: 1,
        beneficiary,
        gas_limit: case.gas_limit,
        base_fee: BASE_FEE,
        prevrandao: B256::ZERO,
        parent_beacon_block_root: B256::ZERO,
        max_txs: case.max_txs,
        excess_blob_gas: 0,
    };
    (txs, env)
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut chain = ChainSpec::cancun(CHAIN_ID);
    if case.vault {
        chain.base_fee_recipient = Some(Address::repeat_byte(0xfe));
    }
    let mut state = genesis();
    let beneficiary = case.beneficiary.address();
    let mut builder = Builder {
        nonces: HashMap::default(),
        deposits: 0,
        beneficiary,
    };
    for (number, specs) in case.blocks.iter().enumerate() {
        let env = BlockEnvInput {
            number: number as u64 + 1,
            parent_hash: B256::repeat_byte(number as u8),
            timestamp: 1_700_000_000 + number as u64,
            beneficiary,
            gas_limit: case.gas_limit,
            base_fee: BASE_FEE,
            prevrandao: B256::repeat_byte(7),
            parent_beacon_block_root: B256::ZERO,
            max_txs: case.max_txs,
            excess_blob_gas: 0,
        };
        let txs: Vec<_> = specs.iter().map(|s| builder.build(s)).collect();
        let expected = build(&*SEQUENTIAL, &chain, &env, &state, &txs, 0);
        let streamed = build(&*SEQUENTIAL, &chain, &env, &state, &txs, 2);
        prop_assert_eq!(
            &streamed,
            &expected,
            "block {} streamed sequentially",
            number + 1
        );
        // Streaming in bursts (0: all at once) must not change the block either.
        for (i, (name, executor)) in EXECUTORS.iter().enumerate() {
            let burst = i % 5;
            let got = build(executor, &chain, &env, &state, &txs, burst);
            prop_assert_eq!(
                &got,
                &expected,
                "block {} with {}, bursts of {}",
                number + 1,
                name,
                burst
            );
        }
        state.apply(&expected.changes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(192)
    ))]

    #[test]
    fn parallel_builds_the_sequential_block(case in case()) {
        check(&case)?;
    }
}

/// Fixed blocks that must take the parallel path, so the fast merge is exercised whatever
/// proptest draws.
fn fixed(txs: Vec<TxSpec>, beneficiary: Beneficiary) -> Case {
    Case {
        beneficiary,
        vault: true,
        gas_limit: 30_000_000,
        max_txs: 1_000,
        blocks: vec![txs],
    }
}

fn spec(sender: usize, action: Action) -> TxSpec {
    TxSpec {
        sender,
        action,
        nonce: NonceMode::Next,
        tx_type: TxType::Dynamic,
        tip: 2,
        fee_cap_below_base: false,
        low_gas: false,
        wrong_chain: false,
        access_token_slot_of: None,
    }
}

/// The shape the sequencer builds: the L1 deposits first (minting to senders that then
/// spend it, to fresh accounts, one refused for its value), then a parallel window.
#[test]
fn deposits_first_then_a_parallel_window() {
    let deposit = |sender, mint, fresh_sender, action| TxSpec {
        tx_type: TxType::Deposit { mint, fresh_sender },
        ..spec(sender, action)
    };
    let mut txs = vec![
        deposit(POOR_FROM, 4000, false, Action::Increment),
        deposit(
            1,
            0,
            true,
            Action::Eth {
                to: Target::Account(2),
                value: 2000,
            },
        ),
        deposit(
            2,
            100,
            true,
            Action::Eth {
                to: Target::Fresh(1),
                value: 50,
            },
        ),
        deposit(
            3,
            100,
            false,
            Action::TokenTransfer {
                to: Target::Account(4),
                amount: 7,
            },
        ),
    ];
    txs.extend((0..48).map(|i| {
        spec(
            POOR_FROM + i % 3,
            Action::Eth {
                to: Target::Fresh(i as u8),
                value: 900,
            },
        )
    }));
    txs.extend((0..32).map(|i| spec(i % POOR_FROM, Action::Increment)));
    check(&fixed(txs, Beneficiary::Fresh)).unwrap();
}

#[test]
fn independent_transfers_merge_without_reexecution() {
    let txs: Vec<_> = (0..64)
        .map(|i| {
            spec(
                i % ACCOUNTS,
                Action::Eth {
                    to: Target::Fresh((i / ACCOUNTS) as u8),
                    value: 1,
                },
            )
        })
        .collect();
    check(&fixed(txs.clone(), Beneficiary::Fresh)).unwrap();
    // Its own executor: the shared ones are busy with other tests.
    let executor = ParallelExecutor::new(2);
    let case = fixed(txs, Beneficiary::Fresh);
    let (txs, env) = first_block(&case);
    let chain = ChainSpec::cancun(CHAIN_ID);
    let expected = build(&*SEQUENTIAL, &chain, &env, &genesis(), &txs, 0);
    assert_eq!(
        build(&executor, &chain, &env, &genesis(), &txs, 0),
        expected
    );
    assert_eq!(expected.included.len(), 64);
    let stats = executor.last_stats();
    assert!(stats.parallel_windows >= 1, "{stats:?}");
    assert_eq!(stats.reexecutions, 0, "{stats:?}");
}

/// Tails of groups taken over by another worker (forced on every window here) are views of
/// their own: validated, predicted credits replayed across them, and merged without
/// executing anything again.
#[test]
fn taken_over_group_tails_merge_exactly() {
    let executor = ParallelExecutor::with_config(
        2,
        ParallelConfig {
            split_groups: true,
            ..Default::default()
        },
    );
    let payments = (0..ACCOUNTS).map(|i| {
        spec(
            i,
            Action::Eth {
                to: Target::Fresh(i as u8),
                value: 1,
            },
        )
    });
    let credits = (0..ACCOUNTS).map(|i| {
        spec(
            i,
            Action::TokenTransfer {
                to: Target::Fresh(1),
                amount: 7 + i as u16,
            },
        )
    });
    for txs in [payments.collect::<Vec<_>>(), credits.collect()] {
        let stats = builds_in_one_merged_window(&executor, &fixed(txs, Beneficiary::Fresh));
        assert!(stats.taken_over > 0, "{stats:?}");
    }
}

#[test]
fn hot_spots_and_fee_recipient_reads_stay_exact() {
    let mut txs = Vec::new();
    for i in 0..48 {
        let action = match i % 6 {
            0 => Action::Increment,
            1 => Action::Poke,
            2 => Action::ObserveCoinbase,
            3 => Action::TokenTransfer {
                to: Target::Account(3),
                amount: 1,
            },
            4 => Action::Eth {
                to: Target::Beneficiary,
                value: 1,
            },
            _ => Action::Observe(Target::Account((i + 1) % ACCOUNTS)),
        };
        txs.push(spec(i % ACCOUNTS, action));
    }
    for beneficiary in [
        Beneficiary::Fresh,
        Beneficiary::Sender,
        Beneficiary::Contract,
    ] {
        check(&fixed(txs.clone(), beneficiary)).unwrap();
    }
}

#[test]
fn zero_tips_touch_an_empty_fee_recipient() {
    let txs: Vec<_> = (0..32)
        .map(|i| TxSpec {
            tip: 0,
            ..spec(
                i % ACCOUNTS,
                Action::Eth {
                    to: Target::Fresh(i as u8),
                    value: 0,
                },
            )
        })
        .collect();
    check(&fixed(txs, Beneficiary::Fresh)).unwrap();
}

#[test]
fn skipped_senders_later_transactions_are_never_offered() {
    let mut txs = Vec::new();
    for round in 0..6 {
        for sender in 0..ACCOUNTS {
            let mut s = spec(
                sender,
                Action::Eth {
                    to: Target::Fresh(sender as u8),
                    value: 2900,
                },
            );
            if round == 1 && sender % 3 == 0 {
                s.nonce = NonceMode::Reuse;
            }
            txs.push(s);
        }
    }
    check(&fixed(txs, Beneficiary::Fresh)).unwrap();
}

/// Sanity of the comparison itself: the deletion marker of an account counts.
#[test]
fn state_changes_compare_deletions() {
    let mut a = StateChanges::default();
    a.accounts.insert(
        account(0),
        AccountChange {
            info: None,
            storage_cleared: true,
            storage: Default::default(),
        },
    );
    let b = StateChanges::default();
    assert_ne!(a, b);
}

#[test]
#[ignore]
fn print_case_statistics() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut included, mut skipped, mut par, mut conflicts, mut reexec, mut windows, mut merged) =
        (0, 0, 0, 0, 0, 0, 0);
    for _ in 0..50 {
        let case = calm_case().new_tree(&mut runner).unwrap().current();
        check(&case).unwrap();
        let chain = ChainSpec::cancun(CHAIN_ID);
        let (txs, env) = first_block(&case);
        let executor = &EXECUTORS[5].1;
        let built = build(executor, &chain, &env, &genesis(), &txs, 0);
        included += built.included.len();
        skipped += built.skipped.len();
        let s = executor.last_stats();
        eprintln!(
            "{:?} txs {} windows {} par {} merged {} conflicts {}",
            case.beneficiary,
            txs.len(),
            s.windows,
            s.parallel_windows,
            s.merged_windows,
            s.conflicts
        );
        merged += s.merged_windows;
        par += s.parallel_windows;
        conflicts += s.conflicts;
        reexec += s.reexecutions;
        windows += s.windows;
    }
    println!(
        "included {included} skipped {skipped} windows {windows} parallel {par} merged {merged} conflicts {conflicts} reexec {reexec}"
    );
}

#[test]
fn payments_to_a_contract_that_reads_its_balance() {
    let txs: Vec<_> = (0..16)
        .map(|i| {
            spec(
                i % ACCOUNTS,
                Action::Eth {
                    to: Target::Contract(1),
                    value: 1,
                },
            )
        })
        .collect();
    check(&fixed(txs, Beneficiary::Fresh)).unwrap();
}

#[test]
fn hot_token_recipient_is_predicted_exactly() {
    let mut txs = Vec::new();
    for i in 0..60 {
        let action = match i % 10 {
            7 => Action::ObserveToken(Target::Fresh(0)),
            9 => Action::TransferFrom {
                from: (i + 3) % ACCOUNTS,
                to: Target::Fresh(0),
                amount: 3,
            },
            _ => Action::TokenTransfer {
                to: Target::Fresh(0),
                amount: 10 + i as u16,
            },
        };
        txs.push(spec(i % ACCOUNTS, action));
    }
    check(&fixed(txs.clone(), Beneficiary::Fresh)).unwrap();

    // With its own executor, the credits must not serialise the block.
    let executor = ParallelExecutor::new(2);
    let only_credits: Vec<_> = (0..40)
        .map(|i| {
            spec(
                i % ACCOUNTS,
                Action::TokenTransfer {
                    to: Target::Fresh(1),
                    amount: 7,
                },
            )
        })
        .collect();
    builds_in_one_merged_window(&executor, &fixed(only_credits, Beneficiary::Fresh));
}

/// Builds the first block of `case` with `executor`, checks it against the sequential
/// builder's, and that it took one parallel window, merged without executing anything again.
fn builds_in_one_merged_window(executor: &ParallelExecutor, case: &Case) -> ExecutionStats {
    let (txs, env) = first_block(case);
    let chain = ChainSpec::cancun(CHAIN_ID);
    let expected = build(&*SEQUENTIAL, &chain, &env, &genesis(), &txs, 0);
    assert_eq!(build(executor, &chain, &env, &genesis(), &txs, 0), expected);
    let stats = executor.last_stats();
    assert_eq!(
        (
            stats.parallel_windows,
            stats.merged_windows,
            stats.reexecutions
        ),
        (1, 1, 0),
        "{stats:?}"
    );
    stats
}

#[test]
fn hidden_payments_to_a_hot_holder_are_seen() {
    let mut txs = Vec::new();
    for i in 0..40 {
        // Sender 3 pays from the contract, then credits the holder again right after, on the
        // same worker: only the value replay sees the hidden payment in between.
        let (sender, action) = match i {
            10 => (
                3,
                Action::PayToken {
                    to: Target::Fresh(0),
                    amount: 9,
                },
            ),
            11..=13 => (
                3,
                Action::TokenTransfer {
                    to: Target::Fresh(0),
                    amount: 10,
                },
            ),
            _ => (
                i % ACCOUNTS,
                Action::TokenTransfer {
                    to: Target::Fresh(0),
                    amount: 10,
                },
            ),
        };
        txs.push(spec(sender, action));
    }
    check(&fixed(txs, Beneficiary::Fresh)).unwrap();
}

/// The Ethereum Foundation blockchain tests with every window forced through speculation,
/// also dealt round-robin so validation must catch every dependency itself, and with every
/// group's tail taken over: exactness on the strangest transactions there are. Slow in a
/// debug build (every test file); run with
/// `cargo test -p lanes-executor --test differential -- --ignored ef_tests_with_forced_speculation`.
#[test]
#[ignore]
fn ef_tests_with_forced_speculation() {
    use lanes_executor::conformance::{Outcome, Summary, find_test_files, run_files};
    let dir = std::env::var_os("LANES_EF_TESTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/ethereum-tests/BlockchainTests")
        });
    let files = find_test_files(&[dir]).expect("EF tests directory");
    let forced = ParallelConfig {
        min_txs_per_worker: 1,
        max_worker_share: 1.0,
        ..Default::default()
    };
    for config in [
        forced.clone(),
        ParallelConfig {
            round_robin: true,
            ..forced.clone()
        },
        ParallelConfig {
            split_groups: true,
            ..forced
        },
    ] {
        let executor = ParallelExecutor::with_config(2, config.clone());
        let reports = run_files(&files, &executor);
        let failures: Vec<String> = reports
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed(why) => Some(format!("{}: {why}", r.name)),
                _ => None,
            })
            .collect();
        assert!(failures.is_empty(), "{config:?}:\n{}", failures.join("\n"));
        println!("{config:?}: {}", Summary::of(&reports));
    }
}
