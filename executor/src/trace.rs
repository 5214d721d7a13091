//! Replaying a committed block on its parent's state, with an inspector on the transactions
//! asked for: what the RPC's `debug_trace*` methods run.
//!
//! The replay takes the sequential builder's own steps (the EIP-4788 call first, deposits
//! with their mint and counter, one commit per transaction), so a traced transaction sees
//! exactly the state it saw when its block was built. Which inspector and what it reports
//! are the caller's: this crate knows revm's [`Inspector`], not any tracer's format.

use crate::{
    block::RecoveredTx,
    error::{ExecutorError, ExecutorResult},
    evm::{BlockEnvInput, ChainSpec, LanesContext, build_evm, deposit_tx_env, evm_context, tx_env},
    executor::{apply_beacon_root, transact_deposit},
    state::{BlockState, CodeCache, StateChanges, StateReader},
    tx::L1_MESSAGE_COUNTER,
};
use alloy_primitives::U256;
use revm::{
    DatabaseCommit, ExecuteCommitEvm, InspectEvm, Inspector, MainBuilder,
    context::{
        CfgEnv, TxEnv,
        result::{EVMError, ResultAndState},
    },
};

/// The context an inspector sees during a replay.
pub type ReplayContext<R> = LanesContext<BlockState<R>>;

/// A block being replayed, transaction by transaction, on its parent's state.
pub struct Replay<'c, R> {
    chain: &'c ChainSpec,
    env: BlockEnvInput,
    /// Lent to the EVM while a traced transaction runs (the EVM owns its database, so an
    /// inspector's type names no borrow).
    db: Option<BlockState<R>>,
}

impl<'c, R: StateReader> Replay<'c, R> {
    /// Starts replaying the block `env` describes on `parent`, the state after its parent:
    /// the EIP-4788 system call runs first, as it did when the block was built.
    pub fn new(chain: &'c ChainSpec, env: BlockEnvInput, parent: R) -> ExecutorResult<Self> {
        let mut replay = Self::on(chain, env, parent);
        let db = replay.db.as_mut().expect("state present");
        let mut evm = build_evm(chain, replay.env.block_env(), db, |_| {});
        apply_beacon_root(&mut evm, &replay.env)?;
        Ok(replay)
    }

    /// Runs transactions in the context `env` describes on `state` as it is, with no
    /// block-start system call: a call simulated on top of a block.
    pub fn on(chain: &'c ChainSpec, env: BlockEnvInput, state: R) -> Self {
        Self {
            chain,
            env,
            db: Some(BlockState::new(state, CodeCache::default())),
        }
    }

    /// What the transactions run so far changed.
    pub fn into_changes(self) -> StateChanges {
        self.db.expect("state present").into_changes()
    }

    fn db(&mut self) -> &mut BlockState<R> {
        self.db.as_mut().expect("state present")
    }

    /// Runs `tx` untraced and commits it.
    pub fn run(&mut self, tx: &RecoveredTx) -> ExecutorResult<()> {
        let (chain, block) = (self.chain, self.env.block_env());
        let mut evm = build_evm(chain, block, self.db(), |_| {});
        if let Some(deposit) = tx.inner().as_deposit() {
            transact_deposit(&mut evm, deposit)?;
            return Ok(());
        }
        match evm.transact_commit(tx_env(tx)) {
            Ok(_) => Ok(()),
            Err(err) => Err(replay_error(err)),
        }
    }

    /// Runs `tx` under `inspector` and commits it. `finish` gets the inspector, the result
    /// with the state it changed, and the state as it was before the transaction (for
    /// tracers that report what a transaction read or changed).
    pub fn trace<I, T>(
        &mut self,
        tx: &RecoveredTx,
        inspector: I,
        finish: impl FnOnce(I, &ResultAndState, &BlockState<R>) -> T,
    ) -> ExecutorResult<T>
    where
        I: Inspector<ReplayContext<R>>,
    {
        let Some(deposit) = tx.inner().as_deposit() else {
            return self
                .inspect(tx_env(tx), |_| {}, inspector, finish, true)
                .map_err(replay_error);
        };
        // As `transact_deposit`: the mint lands before the call, whose nonce is the
        // sender's after it, and the L1 message counter counts the deposit after it.
        if deposit.mint > 0 {
            self.db().update_account(deposit.from, |a| {
                a.balance = a.balance.saturating_add(U256::from(deposit.mint))
            })?;
        }
        let nonce = self.db().account(deposit.from)?.map_or(0, |a| a.nonce);
        let env = deposit_tx_env(deposit, nonce);
        let traced = self.inspect(
            env,
            |cfg| cfg.disable_base_fee = true,
            inspector,
            finish,
            true,
        );
        let traced = match traced {
            Ok(traced) => Ok(traced),
            Err(EVMError::Transaction(invalid)) => {
                // A refused deposit still used its nonce.
                self.db().update_account(deposit.from, |a| a.nonce += 1)?;
                Err(ExecutorError::Evm(format!(
                    "deposit call was refused ({invalid}): nothing ran to trace"
                )))
            }
            Err(err) => Err(replay_error(err)),
        };
        self.db()
            .update_account(L1_MESSAGE_COUNTER, |a| a.nonce += 1)?;
        traced
    }

    /// Runs `env` under `inspector` without committing it: a simulated call. The nonce is
    /// not checked, as `eth_call` does not check it.
    pub fn trace_call<I, T>(
        &mut self,
        env: TxEnv,
        inspector: I,
        finish: impl FnOnce(I, &ResultAndState, &BlockState<R>) -> T,
    ) -> Result<T, EVMError<ExecutorError>>
    where
        I: Inspector<ReplayContext<R>>,
    {
        self.inspect(
            env,
            |cfg| cfg.disable_nonce_check = true,
            inspector,
            finish,
            false,
        )
    }

    fn inspect<I, T>(
        &mut self,
        env: TxEnv,
        configure: impl FnOnce(&mut CfgEnv),
        inspector: I,
        finish: impl FnOnce(I, &ResultAndState, &BlockState<R>) -> T,
        commit: bool,
    ) -> Result<T, EVMError<ExecutorError>>
    where
        I: Inspector<ReplayContext<R>>,
    {
        let db = self.db.take().expect("state present");
        let ctx = evm_context(self.chain, self.env.block_env(), db, configure);
        let mut evm = ctx.build_mainnet_with_inspector(inspector);
        let outcome = evm.inspect_tx(env);
        let inspector = evm.inspector;
        let mut db = evm.ctx.journaled_state.database;
        let traced = outcome.map(|out| {
            let traced = finish(inspector, &out, &db);
            if commit {
                db.commit(out.state);
            }
            traced
        });
        self.db = Some(db);
        traced
    }
}

/// A failure replaying a transaction its block included: the stored block and state
/// disagree, or the store failed.
fn replay_error(err: EVMError<ExecutorError>) -> ExecutorError {
    match err {
        EVMError::Database(err) => err,
        other => ExecutorError::Evm(format!("replaying an included transaction: {other}")),
    }
}
