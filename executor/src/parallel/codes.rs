//! Analysed bytecode shared by the workers.

use crate::error::{ExecutorError, ExecutorResult};
use alloy_primitives::{B256, Bytes, map::HashMap};
use parking_lot::RwLock;
use revm::bytecode::Bytecode;
use std::sync::Arc;

/// Bytecode by hash, analysed once and shared across workers and blocks. Workers keep a
/// per-block copy of what they use, so the lock is taken once per contract per worker.
#[derive(Clone, Debug, Default)]
pub(super) struct SharedCodes {
    inner: Arc<RwLock<HashMap<B256, Bytecode>>>,
}

impl SharedCodes {
    /// Same bound as [`crate::CodeCache`]: past it the cache is dropped wholesale.
    const MAX_ENTRIES: usize = 16_384;

    pub(super) fn get_or_load(
        &self,
        hash: B256,
        load: impl FnOnce() -> ExecutorResult<Option<Bytes>>,
    ) -> ExecutorResult<Bytecode> {
        if let Some(code) = self.inner.read().get(&hash) {
            return Ok(code.clone());
        }
        let bytes = load()?.ok_or_else(|| {
            ExecutorError::corrupt("bytecode", format!("missing code for hash {hash}"))
        })?;
        let code = Bytecode::new_raw(bytes);
        let mut cache = self.inner.write();
        if cache.len() >= Self::MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(hash, code.clone());
        Ok(code)
    }
}
