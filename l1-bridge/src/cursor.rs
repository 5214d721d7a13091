//! Where the L1 watcher persists how far it has delivered: [`CursorStore`] and two simple
//! implementations (the node backs it with RocksDB).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

use crate::error::{L1Error, L1Result};

/// How far the L1 watcher has delivered L1 -> L2 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherCursor {
    /// First L1 block whose messages have not all been delivered.
    pub next_block: u64,
    /// Hash of block `next_block - 1` as the watcher saw it, so a reorg that happened while it
    /// was stopped is noticed; `None` before the first block.
    pub parent_hash: Option<B256>,
    /// Deposit nonce of the next message to deliver. Messages below it were delivered, which is
    /// what keeps a rescan (after a restart mid-block, or a deep reorg) from delivering twice.
    pub next_deposit_nonce: u64,
}

impl WatcherCursor {
    /// The cursor of a watcher that has delivered nothing and starts at `start_block`.
    pub fn genesis(start_block: u64) -> Self {
        Self {
            next_block: start_block,
            parent_hash: None,
            next_deposit_nonce: 0,
        }
    }
}

/// Persistence of the watcher's [`WatcherCursor`]. `save` is called after every delivered message
/// and every fully delivered block, and must be durable when it returns.
pub trait CursorStore: Send + Sync {
    /// The saved cursor, or `None` if none was ever saved.
    fn load(&self) -> L1Result<Option<WatcherCursor>>;
    /// Replaces the saved cursor.
    fn save(&self, cursor: &WatcherCursor) -> L1Result<()>;
}

/// A cursor kept in memory; clones share it, so a test can inspect what a watcher saved or hand
/// it to the next watcher.
#[derive(Debug, Clone, Default)]
pub struct MemoryCursorStore {
    cursor: Arc<Mutex<Option<WatcherCursor>>>,
}

impl MemoryCursorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last saved cursor.
    pub fn get(&self) -> Option<WatcherCursor> {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CursorStore for MemoryCursorStore {
    fn load(&self) -> L1Result<Option<WatcherCursor>> {
        Ok(self.get())
    }

    fn save(&self, cursor: &WatcherCursor) -> L1Result<()> {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(*cursor);
        Ok(())
    }
}

/// A cursor in a JSON file, replaced atomically (write to a temporary file, fsync, rename).
#[derive(Debug, Clone)]
pub struct FileCursorStore {
    path: PathBuf,
}

impl FileCursorStore {
    /// A store in `path`; the file is created on the first save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CursorStore for FileCursorStore {
    fn load(&self) -> L1Result<Option<WatcherCursor>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(L1Error::Cursor(format!("{}: {e}", self.path.display()))),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| L1Error::Cursor(format!("{}: {e}", self.path.display())))
    }

    fn save(&self, cursor: &WatcherCursor) -> L1Result<()> {
        let fail = |e: std::io::Error| L1Error::Cursor(format!("{}: {e}", self.path.display()));
        let tmp = self.path.with_extension("tmp");
        let json = serde_json::to_vec(cursor).expect("a cursor always serialises");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(fail)?;
            file.write_all(&json).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCursorStore::new(dir.path().join("cursor.json"));
        assert_eq!(store.load().unwrap(), None);
        let cursor = WatcherCursor {
            next_block: 42,
            parent_hash: Some(B256::repeat_byte(1)),
            next_deposit_nonce: 7,
        };
        store.save(&cursor).unwrap();
        assert_eq!(store.load().unwrap(), Some(cursor));
        assert_eq!(
            FileCursorStore::new(store.path()).load().unwrap(),
            Some(cursor)
        );

        std::fs::write(store.path(), "garbage").unwrap();
        assert!(matches!(store.load(), Err(L1Error::Cursor(_))));
    }

    #[test]
    fn memory_store_is_shared_by_clones() {
        let store = MemoryCursorStore::new();
        store.clone().save(&WatcherCursor::genesis(5)).unwrap();
        assert_eq!(store.load().unwrap(), Some(WatcherCursor::genesis(5)));
    }
}
