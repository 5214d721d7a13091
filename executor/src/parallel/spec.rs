//! Speculative execution of one group of transactions on one worker.
//!
//! A worker runs its group in block order over its own view: the group's earlier writes,
//! then the state committed before the window, then the block's base state. Every account
//! and slot the EVM loads is logged with the value it saw, and every location a transaction
//! changes is indexed by the first transaction that changed it, so validation can later tell
//! whether another worker changed something before a transaction read it.
//!
//! Two kinds of update are kept out of the read/write sets because they commute:
//! - the fee recipient's reward: the EVM runs with a handler that computes the reward but
//!   does not pay it ([`LazyReward`]); rewards are added in block order at commit. A
//!   transaction that loads the fee recipient itself is marked for exact re-execution.
//! - the recipient of a plain ETH transfer to an account without code: no code runs, so the
//!   recipient's balance is observed by nothing but the credit; the transaction records a
//!   credit and only depends on the recipient having no code.

use super::{codes::WorkerCodes, crew::Claim, digest, plan::Prediction};
use crate::tx::LanesReceipt;
use crate::{
    block::RecoveredTx,
    bloom::{BloomBits, BloomCache},
    error::ExecutorError,
    evm::{ChainSpec, LanesEvm, build_evm, tx_env},
    state::{AccountChange, StateChanges, StateReader, StoredAccount},
};
use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom, Transaction};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, Log, TxKind, U256, map::HashMap};
use revm::{
    Database, ExecuteEvm,
    bytecode::Bytecode,
    context::{BlockEnv, ContextSetters, result::EVMError},
    context_interface::{Block, Cfg, ContextTr, Transaction as _, result::HaltReason},
    handler::{EvmTr, FrameResult, Handler},
    primitives::hardfork::SpecId,
    state::{AccountInfo, EvmState},
};
use std::{cell::Cell, marker::PhantomData, ops::Range, sync::Arc, time::Instant};

/// Marker for "never" in [`FirstWrite`].
pub(super) const NEVER: u32 = u32::MAX;

/// A location of state that transactions read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// An account's nonce, balance and code hash (and its existence).
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
}

impl Loc {
    /// The location's seeded 64-bit digest (see [`Scratch::first_writes`]).
    pub(super) fn digest(&self) -> u64 {
        match self {
            Loc::Account(address) => digest::address(address),
            Loc::Slot(address, slot) => {
                digest::pair(digest::address(address), digest::word256(slot))
            }
        }
    }
}

/// What validation needs of a [`Read`].
#[derive(Clone, Copy, Debug)]
pub(super) struct ReadKey {
    /// The digest of the location read.
    pub loc: u64,
    /// [`Read::tolerates_credits`].
    pub tolerates_credits: bool,
}

impl ReadKey {
    fn of(read: &Read) -> Self {
        Self {
            loc: read.loc().digest(),
            tolerates_credits: read.tolerates_credits(),
        }
    }
}

/// A value a transaction read, with where it came from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Read {
    /// An account load.
    Account {
        /// The account.
        address: Address,
        /// What the view held.
        value: Option<StoredAccount>,
        /// Only the absence of code matters (the transaction just credits it).
        credit_only: bool,
    },
    /// A storage load.
    Slot {
        /// The contract.
        address: Address,
        /// The slot.
        slot: U256,
        /// What the view held.
        value: U256,
        /// The value was predicted (a hot credit), not taken from the view: other workers'
        /// credits to it are expected, and the prediction is checked against them.
        predicted: bool,
    },
}

impl Read {
    /// The location read.
    pub(super) fn loc(&self) -> Loc {
        match *self {
            Read::Account { address, .. } => Loc::Account(address),
            Read::Slot { address, slot, .. } => Loc::Slot(address, slot),
        }
    }

    /// True for reads that other workers' credits do not invalidate by themselves.
    pub(super) fn tolerates_credits(&self) -> bool {
        matches!(
            self,
            Read::Account {
                credit_only: true,
                ..
            } | Read::Slot {
                predicted: true,
                ..
            }
        )
    }
}

/// A slot whose value is predicted for the hot credits of a window.
#[derive(Clone, Copy, Debug)]
pub(super) struct PredictedSlot {
    /// Which hot credit ([`super::plan::Plan::hot`]).
    pub hot: u32,
    /// Its value before the window.
    pub base: U256,
    /// Which storage layout guess put the holder's balance here.
    pub layout: super::layout::Layout,
}

/// The slots predicted in a window, numbered in the order they were added.
///
/// Every storage access of a transaction with a prediction is looked up here, and so is
/// every slot a transaction of such a window reads: the slots are few, so a lookup compares
/// the slot's low word with theirs instead of hashing a 52-byte key.
#[derive(Debug, Default)]
pub(super) struct PredictedSlots {
    index: HashMap<(Address, U256), u32>,
    slots: Vec<((Address, U256), PredictedSlot)>,
    /// The low word of every slot, consulted while there are at most [`Self::FILTERED`].
    lows: Vec<u64>,
}

impl PredictedSlots {
    /// Up to this many slots, a lookup compares low words first.
    const FILTERED: usize = 16;

    /// Predicts `slot` of `address` (replacing an earlier prediction of it).
    pub(super) fn insert(&mut self, address: Address, slot: U256, predicted: PredictedSlot) {
        let next = self.slots.len() as u32;
        let i = *self.index.entry((address, slot)).or_insert(next);
        if i == next {
            self.slots.push(((address, slot), predicted));
            self.lows.push(slot.as_limbs()[0]);
        } else {
            self.slots[i as usize].1 = predicted;
        }
    }

    /// The number and prediction of `slot` of `address`, if it is predicted.
    pub(super) fn get(&self, address: Address, slot: U256) -> Option<(u32, &PredictedSlot)> {
        if self.slots.len() > Self::FILTERED {
            let i = *self.index.get(&(address, slot))?;
            return Some((i, &self.slots[i as usize].1));
        }
        // A hit compares the whole key of the few slots whose low word matches: hashing the
        // 52-byte key cost more than that, on every access of a predicted transaction.
        let low = slot.as_limbs()[0];
        self.lows
            .iter()
            .zip(&self.slots)
            .enumerate()
            .find(|(_, (l, (key, _)))| **l == low && *key == (address, slot))
            .map(|(i, (_, (_, predicted)))| (i as u32, predicted))
    }

    /// The contract and slot numbered `i`, with its prediction.
    pub(super) fn nth(&self, i: u32) -> &((Address, U256), PredictedSlot) {
        &self.slots[i as usize]
    }

    /// Number of predicted slots.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if nothing is predicted.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What a transaction did to a predicted slot: read `read`, left `written`.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlotDelta {
    /// Window index.
    pub idx: u32,
    /// The slot's number in [`PredictedSlots`].
    pub slot: u32,
    /// The predicted value it read.
    pub read: U256,
    /// The value it left.
    pub written: U256,
}

/// The first transactions (block index) of a group that changed a location.
#[derive(Clone, Copy, Debug)]
pub(super) struct FirstWrite {
    /// First absolute change.
    pub write: u32,
    /// First credit (commutative balance increase).
    pub credit: u32,
}

/// Per-worker cache of the block's base state, kept across the windows of a block: the base
/// does not change during a block, so nothing in it is ever stale.
#[derive(Debug, Default)]
pub(super) struct BaseCache {
    accounts: HashMap<Address, Option<StoredAccount>>,
    storage: HashMap<(Address, U256), U256>,
}

/// What the EVM made of one transaction.
// Kept inline: records live in reused buffers, and boxing would allocate per transaction.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Outcome {
    /// It executes (successfully or not) and goes in the block.
    Included(Included),
    /// It is invalid against the state it saw.
    Invalid(String),
    /// Something outside the transaction's control went wrong (a database error, an EVM
    /// failure); only an exact re-execution can tell what the block makes of it.
    Failed,
}

/// An included transaction's results besides its writes.
#[derive(Debug)]
pub(super) struct Included {
    /// Gas used.
    pub gas_used: u64,
    /// Receipt, its bloom still as bits; the cumulative gas is filled in at commit.
    pub receipt: SpecReceipt,
    /// The fee recipient's reward.
    pub reward: U256,
    /// A commutative credit of a plain transfer (recipient, amount), not in the writes.
    pub credit: Option<(Address, U256)>,
}

/// A receipt as a worker records it: what the block's receipt is made of at commit, with the
/// bloom as bits (see [`BloomBits`]) so that the 256-byte bloom is written once, in place.
#[derive(Debug)]
pub(super) struct SpecReceipt {
    /// EIP-2718 type of the transaction.
    pub ty: u8,
    /// Whether it succeeded.
    pub success: bool,
    /// Its logs.
    pub logs: Vec<Log>,
    /// The bloom of the logs.
    pub bloom: BloomBits,
}

impl SpecReceipt {
    /// The block's receipt, with the block's gas used up to and including this transaction.
    // Inlined into the commit's loop so that the receipt is built where the block keeps it:
    // a window's receipts are reported on one thread while the other merges, and for ERC-20
    // transfers that thread is the longer one.
    #[inline(always)]
    pub(super) fn into_receipt(self, cumulative_gas_used: u64) -> LanesReceipt {
        let receipt = ReceiptWithBloom {
            receipt: Receipt {
                status: Eip658Value::Eip658(self.success),
                cumulative_gas_used,
                logs: self.logs,
            },
            logs_bloom: self.bloom.to_bloom(),
        };
        LanesReceipt::new(self.ty, receipt)
    }
}

/// One account as a transaction left it, in the terms of
/// [`StateChanges::apply_evm_state`]: what the account became, whether its stored slots
/// were wiped first (deleted or created), and the slots written after that.
#[derive(Clone, Debug)]
pub(super) struct AccountWrite {
    /// The account.
    pub address: Address,
    /// Its new data, `None` if deleted.
    pub info: Option<StoredAccount>,
    /// The EVM held the account's code, so the block's changes carry it (as
    /// [`StateChanges::apply_evm_state`] records it); the bytes are in the worker's view.
    pub code: bool,
    /// Every previously stored slot is gone.
    pub clear: bool,
    /// Slots written, in [`Scratch::slots`].
    pub slots: Range<u32>,
}

/// One speculatively executed transaction.
#[derive(Debug)]
pub(super) struct TxRecord {
    /// Position in the window.
    pub idx: u32,
    /// What happened.
    pub outcome: Outcome,
    /// Its reads, in [`Scratch::reads`].
    pub reads: Range<u32>,
    /// Its writes, in [`Scratch::writes`].
    pub writes: Range<u32>,
    /// The result depends on something only exact execution gets right (the fee
    /// recipient's balance).
    pub needs_exact: bool,
}

impl TxRecord {
    /// True if the transaction changed the speculative view.
    pub(super) fn has_effects(&self) -> bool {
        matches!(self.outcome, Outcome::Included(_) | Outcome::Failed)
    }
}

/// A worker's buffers, kept by the executor across windows and blocks so that building a
/// block does not page in fresh memory every time.
///
/// Workers' buffers lie side by side in one vector, and each push writes a vector's length
/// here: aligned to 128 bytes (a pair of cache lines, as CPUs fetch them), no two workers
/// write the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Scratch {
    /// The block's base state as read so far (cleared per block).
    pub cache: BaseCache,
    /// Records in block order.
    pub records: Vec<TxRecord>,
    /// Read log.
    pub reads: Vec<Read>,
    /// Per entry of the read log, what validation needs of it: the location's digest and
    /// whether other workers' credits leave it standing. Validation checks every read of
    /// the window on one thread; 16 bytes a read instead of the 104 of the log, digested
    /// here in parallel instead of there in series.
    pub read_keys: Vec<ReadKey>,
    /// Write log.
    pub writes: Vec<AccountWrite>,
    /// Slots of the write log.
    pub slots: Vec<(U256, U256)>,
    /// Analysed bytecode, kept across blocks.
    pub bytecode: WorkerCodes,
    /// Hashes of recent log addresses and topics, for receipt blooms; kept across blocks.
    pub bloom: BloomCache,
    /// First write and first credit per location, keyed by the location's digest: an entry
    /// is 16 bytes instead of 64, and this table is written for every location a
    /// transaction changes and looked up for every one read. Two locations sharing a digest
    /// (a chance of about one in 2^64 per pair, with a per-process seed) would only make a
    /// result look stale and be checked again value by value, never the reverse.
    pub first_writes: digest::Map<FirstWrite>,
    /// The group's changes over the committed state.
    pub local: StateChanges,
    /// Total credits per account.
    pub credits: HashMap<Address, U256>,
    /// Reads and writes of predicted slots, in block order.
    pub slot_deltas: Vec<SlotDelta>,
    /// Time spent executing (for the speedup estimate).
    pub busy: std::time::Duration,
    /// Every transaction of the group was included (none invalid, none failed).
    pub all_included: bool,
    /// The buffers still hold an earlier block (its base state too): the group that uses
    /// them first clears them, on its own thread, instead of the calling thread clearing
    /// every worker's before the plan.
    pub new_block: bool,
    /// The buffers hold, for this window, the tail of a group another worker took over.
    pub taken: bool,
}

impl Scratch {
    /// Forgets the last window (keeping the memory).
    pub(super) fn reset_window(&mut self) {
        self.records.clear();
        self.reads.clear();
        self.read_keys.clear();
        self.writes.clear();
        self.slots.clear();
        self.first_writes.clear();
        self.local.accounts.clear();
        self.local.codes.clear();
        self.credits.clear();
        self.slot_deltas.clear();
        self.busy = Default::default();
        self.all_included = true;
    }

    /// Forgets the last block (keeping the memory).
    pub(super) fn reset_block(&mut self) {
        self.reset_window();
        self.cache.accounts.clear();
        self.cache.storage.clear();
    }

    /// The reads of `record`.
    pub(super) fn reads_of(&self, record: &TxRecord) -> &[Read] {
        &self.reads[record.reads.start as usize..record.reads.end as usize]
    }

    /// The writes of `record`.
    pub(super) fn writes_of(&self, record: &TxRecord) -> &[AccountWrite] {
        &self.writes[record.writes.start as usize..record.writes.end as usize]
    }

    /// The slots of `write`.
    pub(super) fn slots_of(&self, write: &AccountWrite) -> &[(U256, U256)] {
        &self.slots[write.slots.start as usize..write.slots.end as usize]
    }
}

/// Applies one recorded account write to `changes`, with the rules of
/// [`StateChanges::apply_evm_state`].
pub(super) fn apply_write(
    changes: &mut StateChanges,
    write: &AccountWrite,
    slots: &[(U256, U256)],
) {
    apply_to(
        changes.accounts.entry(write.address).or_default(),
        write,
        slots,
    );
}

/// [`apply_write`] to the account's entry.
fn apply_to(entry: &mut AccountChange, write: &AccountWrite, slots: &[(U256, U256)]) {
    if write.clear {
        entry.storage_cleared = true;
        entry.storage.clear();
    }
    entry.info = write.info;
    entry.storage.extend(slots.iter().copied());
}

/// What a worker needs to execute a group, shared by all workers.
pub(super) struct GroupInput<'a, R> {
    pub chain: &'a ChainSpec,
    pub block_env: &'a BlockEnv,
    pub beneficiary: Address,
    pub reader: &'a R,
    pub committed: &'a StateChanges,
    /// Slots of hot credits, with their value before the window.
    pub predicted_slots: &'a PredictedSlots,
    /// Per window index, the hot credit the transaction makes.
    pub predictions: &'a [Option<Prediction>],
    /// Slots written to an account in a recent window, where that was many (see
    /// [`WriteLog::record`]).
    pub slot_hints: &'a HashMap<Address, usize>,
    /// Transactions in the window (all groups).
    pub window_len: usize,
}

/// The revm database of a worker: group writes → committed state → base, with logging.
pub(super) struct SpecDb<'a, R> {
    reader: &'a R,
    committed: &'a StateChanges,
    codes: &'a mut WorkerCodes,
    cache: &'a mut BaseCache,
    beneficiary: Address,
    local: &'a mut StateChanges,
    reads: &'a mut Vec<Read>,
    touched_beneficiary: bool,
    predicted_slots: &'a PredictedSlots,
    prediction: Option<Prediction>,
}

/// The account info revm gets for a stored account, exactly as [`crate::BlockState`] builds
/// it (code left to `code_by_hash` so the analysed bytecode comes from the cache).
fn to_info(account: StoredAccount) -> AccountInfo {
    AccountInfo {
        balance: account.balance,
        nonce: account.nonce,
        code_hash: account.code_hash,
        code: if account.code_hash == KECCAK256_EMPTY {
            Some(Bytecode::default())
        } else {
            None
        },
        ..Default::default()
    }
}

impl<'a, R: StateReader> SpecDb<'a, R> {
    fn view_account(&mut self, address: Address) -> Result<Option<StoredAccount>, ExecutorError> {
        if let Some(info) = self.local.account(&address) {
            return Ok(info);
        }
        if !self.committed.accounts.is_empty()
            && let Some(info) = self.committed.account(&address)
        {
            return Ok(info);
        }
        if let Some(info) = self.cache.accounts.get(&address) {
            return Ok(*info);
        }
        let info = self.reader.account(address)?;
        self.cache.accounts.insert(address, info);
        Ok(info)
    }

    fn view_storage(&mut self, address: Address, slot: U256) -> Result<U256, ExecutorError> {
        if let Some(value) = self.local.storage(&address, &slot) {
            return Ok(value);
        }
        if !self.committed.accounts.is_empty()
            && let Some(value) = self.committed.storage(&address, &slot)
        {
            return Ok(value);
        }
        if let Some(value) = self.cache.storage.get(&(address, slot)) {
            return Ok(*value);
        }
        let value = self.reader.storage(address, slot)?;
        self.cache.storage.insert((address, slot), value);
        Ok(value)
    }
}

impl<R: StateReader> Database for SpecDb<'_, R> {
    type Error = ExecutorError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        if address == self.beneficiary {
            self.touched_beneficiary = true;
        }
        let value = self.view_account(address)?;
        self.reads.push(Read::Account {
            address,
            value,
            credit_only: false,
        });
        Ok(value.map(to_info))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK256_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        let (local, committed, reader) = (&*self.local, self.committed, self.reader);
        self.codes.get_or_load(code_hash, || {
            match local
                .codes
                .get(&code_hash)
                .or_else(|| committed.codes.get(&code_hash))
            {
                Some(bytes) => Ok(Some(bytes.clone())),
                None => reader.code(code_hash),
            }
        })
    }

    fn storage(&mut self, address: Address, slot: U256) -> Result<U256, Self::Error> {
        if let Some(prediction) = self.prediction
            && let Some((_, predicted)) = self.predicted_slots.get(address, slot)
            && predicted.hot == prediction.hot
        {
            let value = predicted.base.wrapping_add(prediction.prefix);
            self.reads.push(Read::Slot {
                address,
                slot,
                value,
                predicted: true,
            });
            return Ok(value);
        }
        let value = self.view_storage(address, slot)?;
        self.reads.push(Read::Slot {
            address,
            slot,
            value,
            predicted: false,
        });
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.reader.block_hash(number)?.unwrap_or_default())
    }
}

/// The mainnet handler, except that the fee recipient's reward is computed, not paid.
pub(super) struct LazyReward<DB> {
    reward: Cell<U256>,
    /// The reward does not fit revm's arithmetic; let exact execution deal with it.
    overflow: Cell<bool>,
    _db: PhantomData<DB>,
}

impl<DB> LazyReward<DB> {
    fn new() -> Self {
        Self {
            reward: Cell::new(U256::ZERO),
            overflow: Cell::new(false),
            _db: PhantomData,
        }
    }
}

impl<DB: Database<Error = ExecutorError>> Handler for LazyReward<DB> {
    type Evm = LanesEvm<DB>;
    type Error = EVMError<ExecutorError>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        // Mirrors revm's `post_execution::reward_beneficiary` arithmetic.
        let ctx = evm.ctx_ref();
        if ctx.cfg().is_fee_charge_disabled() {
            return Ok(());
        }
        let basefee = ctx.block().basefee() as u128;
        let effective_gas_price = ctx.tx().effective_gas_price(basefee);
        let coinbase_gas_price = if ctx.cfg().spec().is_enabled_in(SpecId::LONDON) {
            effective_gas_price.saturating_sub(basefee)
        } else {
            effective_gas_price
        };
        let gas = exec_result.gas();
        let used = gas.used().saturating_sub(gas.reservoir());
        match coinbase_gas_price.checked_mul(used as u128) {
            Some(reward) => self.reward.set(U256::from(reward)),
            None => self.overflow.set(true),
        }
        Ok(())
    }
}

/// Addresses that may be precompiles or system contracts: never treated as plain credits.
fn is_reserved(address: &Address) -> bool {
    address.0[..18].iter().all(|b| *b == 0)
}

/// Executes `txs` (window index, transaction) in order on a fresh view over the committed
/// state and logs what each read and wrote into `scratch` (reset first).
///
/// With a `claim`, the group's owner asks it before each transaction and stops where
/// another worker took the rest over ([`run_taken`]).
pub(super) fn run_group<R: StateReader>(
    input: &GroupInput<'_, R>,
    scratch: &mut Scratch,
    txs: &[(u32, &Arc<RecoveredTx>)],
    claim: Option<&Claim>,
) {
    let started = Instant::now();
    if std::mem::take(&mut scratch.new_block) {
        scratch.reset_block();
    } else {
        scratch.reset_window();
    }
    // Room for everything up front: a table that grows rehashes (copies) every entry again,
    // and the view one worker builds becomes the window's committed state at the merge,
    // which then takes in the other workers' accounts too (two per transaction is typical:
    // sender and recipient or contract). A taken-over tail needs room for its own only.
    let room = if claim.is_some() {
        input.committed.accounts.len() + 2 * input.window_len
    } else {
        2 * txs.len()
    };
    scratch.local.accounts.reserve(room);
    scratch.first_writes.reserve(3 * txs.len());
    let Scratch {
        cache,
        records,
        reads,
        read_keys,
        writes,
        slots,
        bytecode,
        first_writes,
        local,
        credits,
        slot_deltas,
        busy,
        all_included,
        bloom,
        new_block: _,
        taken: _,
    } = scratch;
    let db = SpecDb {
        reader: input.reader,
        committed: input.committed,
        codes: bytecode,
        cache,
        beneficiary: input.beneficiary,
        local,
        reads,
        touched_beneficiary: false,
        predicted_slots: input.predicted_slots,
        prediction: None,
    };
    let mut evm = build_evm(input.chain, input.block_env.clone(), db, |_| {});

    for &(idx, tx) in txs {
        if claim.is_some_and(|claim| !claim.next()) {
            break;
        }
        let db = &mut evm.ctx.journaled_state.database;
        let start = db.reads.len();
        db.touched_beneficiary = false;
        db.prediction = input.predictions[idx as usize];
        evm.ctx.set_tx(tx_env(tx));
        let mut handler = LazyReward::new();
        let result = handler.run(&mut evm);
        let state = evm.finalize();
        let db = &mut evm.ctx.journaled_state.database;
        let read_range = start..db.reads.len();
        let writes_start = writes.len();
        let mut needs_exact = db.touched_beneficiary || handler.overflow.get();
        let outcome = match result {
            Ok(result) => {
                let tx_reads = &mut db.reads[read_range.clone()];
                let credit = plain_credit(tx, input.beneficiary, &result, &state, tx_reads);
                if let Some((to, _)) = credit {
                    for read in tx_reads.iter_mut() {
                        if let Read::Account {
                            address,
                            credit_only,
                            ..
                        } = read
                            && *address == to
                        {
                            *credit_only = true;
                        }
                    }
                }
                let mut log = WriteLog {
                    writes,
                    slots,
                    first_writes,
                    credits,
                    slot_hints: input.slot_hints,
                };
                log.record(db.local, tx_reads, idx, &state, credit);
                record_slot_deltas(tx_reads, idx, &state, db.predicted_slots, slot_deltas);
                let gas_used = result.tx_gas_used();
                let success = result.is_success();
                let logs = result.into_logs();
                let receipt = SpecReceipt {
                    ty: tx.ty(),
                    success,
                    bloom: bloom.logs_bloom_bits(&logs),
                    logs,
                };
                Outcome::Included(Included {
                    gas_used,
                    receipt,
                    reward: handler.reward.get(),
                    credit,
                })
            }
            Err(EVMError::Transaction(invalid)) => Outcome::Invalid(invalid.to_string()),
            Err(_) => {
                needs_exact = true;
                Outcome::Failed
            }
        };
        *all_included &= matches!(outcome, Outcome::Included(_));
        let tx_reads = &evm.ctx.journaled_state.database.reads[read_range.clone()];
        read_keys.extend(tx_reads.iter().map(ReadKey::of));
        records.push(TxRecord {
            idx,
            outcome,
            reads: read_range.start as u32..read_range.end as u32,
            writes: writes_start as u32..writes.len() as u32,
            needs_exact,
        });
    }
    *busy = started.elapsed();
}

/// Runs `txs`, the tail of another worker's group taken over by the worker owning `own`
/// (done with its own group), on `spare`: a view of its own, since the worker's view holds
/// its group's writes, some of them by transactions later in the block than these. The
/// worker's caches of base state, bytecode and bloom bits come along; they hold nothing
/// that depends on a view.
pub(super) fn run_taken<R: StateReader>(
    input: &GroupInput<'_, R>,
    own: &mut Scratch,
    spare: &mut Scratch,
    txs: &[(u32, &Arc<RecoveredTx>)],
) {
    // The spare's own cache may hold an earlier block: it is cleared before it is set aside.
    if std::mem::take(&mut spare.new_block) {
        spare.reset_block();
    }
    let lend = |own: &mut Scratch, spare: &mut Scratch| {
        std::mem::swap(&mut own.cache, &mut spare.cache);
        std::mem::swap(&mut own.bytecode, &mut spare.bytecode);
        std::mem::swap(&mut own.bloom, &mut spare.bloom);
    };
    lend(own, spare);
    run_group(input, spare, txs, None);
    lend(own, spare);
    spare.taken = true;
}

/// Logs what the transaction did to predicted slots, whether it was given the prediction or
/// not: validation replays these in block order, value by value.
fn record_slot_deltas(
    reads: &[Read],
    idx: u32,
    state: &EvmState,
    predicted_slots: &PredictedSlots,
    out: &mut Vec<SlotDelta>,
) {
    if predicted_slots.is_empty() {
        return;
    }
    for read in reads {
        if let Read::Slot {
            address,
            slot,
            value,
            ..
        } = *read
        {
            let Some((number, _)) = predicted_slots.get(address, slot) else {
                continue;
            };
            let written = state
                .get(&address)
                .and_then(|account| account.storage.get(&slot))
                .map_or(value, |s| s.present_value());
            out.push(SlotDelta {
                idx,
                slot: number,
                read: value,
                written,
            });
        }
    }
}

/// If `tx` is a plain ETH transfer to an account without code whose only effect on the
/// recipient is the credit, the recipient and amount.
fn plain_credit(
    tx: &RecoveredTx,
    beneficiary: Address,
    result: &revm::context::result::ExecutionResult,
    state: &EvmState,
    reads: &[Read],
) -> Option<(Address, U256)> {
    let TxKind::Call(to) = tx.kind() else {
        return None;
    };
    let value = tx.value();
    if value.is_zero()
        || to == tx.signer()
        || to == beneficiary
        || is_reserved(&to)
        || !result.is_success()
    {
        return None;
    }
    let before = reads.iter().find_map(|read| match *read {
        Read::Account { address, value, .. } if address == to => Some(value),
        _ => None,
    })?;
    let before = before.unwrap_or(StoredAccount::EMPTY);
    if before.code_hash != KECCAK256_EMPTY {
        return None;
    }
    let after = state.get(&to)?;
    let expected = before.balance.checked_add(value)?;
    let untouched_otherwise = after.is_touched()
        && !after.is_created()
        && !after.is_selfdestructed()
        && after.info.balance == expected
        && after.info.nonce == before.nonce
        && after.info.code_hash == KECCAK256_EMPTY
        && after.storage.is_empty();
    untouched_otherwise.then_some((to, value))
}

/// The write side of a worker's scratch.
struct WriteLog<'a> {
    writes: &'a mut Vec<AccountWrite>,
    slots: &'a mut Vec<(U256, U256)>,
    first_writes: &'a mut digest::Map<FirstWrite>,
    credits: &'a mut HashMap<Address, U256>,
    slot_hints: &'a HashMap<Address, usize>,
}

impl WriteLog<'_> {
    fn mark(&mut self, loc: Loc, idx: u32, is_credit: bool) {
        let entry = self.first_writes.entry(loc.digest()).or_insert(FirstWrite {
            write: NEVER,
            credit: NEVER,
        });
        let field = if is_credit {
            &mut entry.credit
        } else {
            &mut entry.write
        };
        if *field == NEVER {
            *field = idx;
        }
    }

    /// Records revm's post-transaction state in the exact terms of
    /// [`StateChanges::apply_evm_state`] (which consumes the state), applies it to the
    /// group's view, and indexes the locations the transaction changed. A plain transfer's
    /// credit is indexed as a credit and left out of the writes.
    fn record(
        &mut self,
        local: &mut StateChanges,
        reads: &[Read],
        idx: u32,
        state: &EvmState,
        credit: Option<(Address, U256)>,
    ) {
        let any_predicted = reads.iter().any(|read| {
            matches!(
                read,
                Read::Slot {
                    predicted: true,
                    ..
                }
            )
        });
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let before = reads.iter().find_map(|read| match *read {
                Read::Account {
                    address: a, value, ..
                } if a == *address => Some(value),
                _ => None,
            });
            let before = match before {
                Some(value) => value,
                None => local.account(address).unwrap_or(None),
            };
            let slots_start = self.slots.len() as u32;
            let write = if account.is_selfdestructed() || account.is_empty() {
                if before.is_some() {
                    self.mark(Loc::Account(*address), idx, false);
                }
                AccountWrite {
                    address: *address,
                    info: None,
                    code: false,
                    clear: true,
                    slots: slots_start..slots_start,
                }
            } else {
                let created = account.is_created();
                let info = &account.info;
                // Flagged on every transaction that loaded it: a replay may skip the
                // transaction that first did.
                let code = info.code_hash != KECCAK256_EMPTY && info.code.is_some();
                if code
                    && !local.codes.contains_key(&info.code_hash)
                    && let Some(bytecode) = &info.code
                {
                    local
                        .codes
                        .insert(info.code_hash, bytecode.original_bytes());
                }
                for (slot, value) in account.changed_storage_slots() {
                    self.slots.push((*slot, value.present_value()));
                    let predicted = any_predicted && reads.iter().any(|read| {
                        matches!(*read, Read::Slot { address: a, slot: s, predicted: true, .. } if a == *address && s == *slot)
                    });
                    self.mark(Loc::Slot(*address, *slot), idx, predicted);
                }
                let new = StoredAccount {
                    nonce: info.nonce,
                    balance: info.balance,
                    code_hash: info.code_hash,
                };
                match credit {
                    Some((to, amount)) if to == *address => {
                        self.mark(Loc::Account(*address), idx, true);
                        let total = self.credits.entry(*address).or_default();
                        *total = total.saturating_add(amount);
                    }
                    _ if created || Some(new) != before => {
                        self.mark(Loc::Account(*address), idx, false)
                    }
                    _ => {}
                }
                AccountWrite {
                    address: *address,
                    info: Some(new),
                    code,
                    clear: created,
                    slots: slots_start..self.slots.len() as u32,
                }
            };
            let slots = &self.slots[write.slots.start as usize..];
            let entry = local.accounts.entry(*address).or_default();
            // An account a recent window wrote many slots of (a token everybody pays) gets
            // its table sized once, when it would first grow: growing rehashes every slot
            // again, and validation copies this table to combine it with the other
            // workers' slots, keeping its capacity, which then spares a third rehash.
            if entry.storage.capacity() - entry.storage.len() < slots.len()
                && let Some(&hint) = self.slot_hints.get(address)
            {
                entry
                    .storage
                    .reserve(hint.saturating_sub(entry.storage.len()));
            }
            apply_to(entry, &write, slots);
            if credit.is_some_and(|(to, _)| to == *address) {
                // Applied to the view (later transactions of the group see it) but committed
                // as a credit, on top of whatever the other workers did.
                self.slots.truncate(write.slots.start as usize);
            } else {
                self.writes.push(write);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::layout::Layout;

    fn predicted(hot: u32) -> PredictedSlot {
        PredictedSlot {
            hot,
            base: U256::from(hot),
            layout: Layout {
                index: 0,
                vyper: false,
            },
        }
    }

    /// Slots sharing a low word, or a slot under two contracts, are told apart by the whole
    /// key, with few slots (low-word scan) and with many (the index).
    #[test]
    fn predicted_slots_match_the_whole_key() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let low = U256::from(7);
        let high = low | (U256::from(1) << 200);
        for extra in [0usize, 40] {
            let mut slots = PredictedSlots::default();
            slots.insert(a, low, predicted(1));
            slots.insert(a, high, predicted(2));
            slots.insert(b, low, predicted(3));
            for i in 0..extra {
                slots.insert(b, U256::from(1000 + i), predicted(100));
            }
            // Replacing a prediction keeps the slot's number.
            slots.insert(a, high, predicted(4));
            assert_eq!(slots.len(), 3 + extra);
            let hot = |address, slot| slots.get(address, slot).map(|(i, p)| (i, p.hot));
            assert_eq!(hot(a, low), Some((0, 1)));
            assert_eq!(hot(a, high), Some((1, 4)));
            assert_eq!(hot(b, low), Some((2, 3)));
            assert_eq!(hot(b, high), None);
            assert_eq!(hot(a, U256::from(8)), None);
        }
    }
}
