//! Analysed bytecode private to one worker.

use crate::{error::ExecutorResult, state::loaded_code};
use alloy_primitives::{B256, Bytes, map::HashMap};
use revm::bytecode::Bytecode;

/// Bytecode by hash, analysed by this worker from its own copy of the bytes and kept across
/// blocks (code is addressed by its hash, so nothing here goes stale).
///
/// Private rather than shared because a [`Bytecode`] is reference-counted: the EVM clones
/// and drops it for every transaction that calls the contract, and the code's bytes are
/// cloned again when a transaction's writes are recorded. With one copy shared by the
/// workers, each of those counts moved one cache line between cores: in a profile of
/// `erc20` (one token called by every transaction), the atomic increments and decrements
/// took about 2.5% of the parallel run's CPU, all of it on the speculation's critical
/// path. A copy per worker costs one analysis per contract per worker.
#[derive(Debug, Default)]
pub(super) struct WorkerCodes {
    codes: HashMap<B256, Bytecode>,
}

impl WorkerCodes {
    /// Past this many contracts the cache is dropped wholesale: bounded memory per worker
    /// without bookkeeping on the hot path.
    const MAX_ENTRIES: usize = 4096;

    /// The analysed code of `hash`, loading its bytes with `load` the first time.
    pub(super) fn get_or_load(
        &mut self,
        hash: B256,
        load: impl FnOnce() -> ExecutorResult<Option<Bytes>>,
    ) -> ExecutorResult<Bytecode> {
        if let Some(code) = self.codes.get(&hash) {
            return Ok(code.clone());
        }
        // Copied: the loaded bytes may share their buffer (and its count) with other
        // workers or with the reader.
        let bytes = load()?.map(|bytes| Bytes::copy_from_slice(&bytes));
        let code = loaded_code(hash, bytes)?;
        if self.codes.len() >= Self::MAX_ENTRIES {
            self.codes.clear();
        }
        self.codes.insert(hash, code.clone());
        Ok(code)
    }
}
