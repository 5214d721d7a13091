//! The L1 watcher's cursor in RocksDB, saved only as far as L2 has committed what the watcher
//! delivered.
//!
//! The watcher saves its cursor as soon as it hands a message to the deposit queue, but the
//! queue lives in memory: a cursor saved then and a crash before the message is in a committed
//! block would lose the message on restart. [`CommittedCursorStore`] therefore holds each saved
//! cursor back until the chain's L1 message counter (the nonce of `0x4200…0015`, part of the
//! committed state) reaches its `next_deposit_nonce`, and only then writes it, beside the
//! chain in the same RocksDB. A restart rescans L1 from there: messages delivered again are
//! below the counter and the queue drops them. Across L1 blocks without messages the cursor
//! advances at once, so a restart does not rescan L1 from the rollup's deployment.

use std::collections::VecDeque;
use std::sync::Arc;

use alloy_primitives::Address;
use lanes_executor::{ExecutorResult, Storage};
use lanes_l1_bridge::{CursorStore, L1Error, L1Result, WatcherCursor};
use parking_lot::Mutex;

/// Key of a portal's cursor among the storage's [`Storage::aux`] values: one per portal, so a
/// node pointed at another deployment does not resume from the old one's position.
pub fn cursor_key(portal: Address) -> String {
    format!("l1_watcher_cursor/{portal}")
}

/// The number of L1 messages executed in committed blocks.
pub type ExecutedCount = Box<dyn Fn() -> ExecutorResult<u64> + Send + Sync>;

/// A [`CursorStore`] in the node's RocksDB that never runs ahead of committed L2 blocks.
pub struct CommittedCursorStore {
    storage: Arc<Storage>,
    key: String,
    executed: ExecutedCount,
    /// Cursors saved by the watcher and not yet covered by committed blocks, oldest first,
    /// with strictly increasing `next_deposit_nonce` (a newer cursor with the same nonce
    /// replaces the older: it covers more L1 blocks and needs nothing more executed).
    pending: Mutex<VecDeque<WatcherCursor>>,
}

impl std::fmt::Debug for CommittedCursorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedCursorStore")
            .field("pending", &self.pending.lock().len())
            .finish_non_exhaustive()
    }
}

impl CommittedCursorStore {
    /// The cursor of `portal`'s messages in `storage`, whose executed-message count is the
    /// committed head's.
    pub fn new(storage: Arc<Storage>, portal: Address) -> Self {
        let reader = storage.clone();
        Self::with_executed(
            storage,
            portal,
            Box::new(move || match reader.head()? {
                Some((head, _)) => reader.l1_messages_included(head),
                None => Ok(0),
            }),
        )
    }

    /// A store in `storage` with another source of the executed-message count.
    pub fn with_executed(storage: Arc<Storage>, portal: Address, executed: ExecutedCount) -> Self {
        Self {
            storage,
            key: cursor_key(portal),
            executed,
            pending: Mutex::new(VecDeque::new()),
        }
    }
}

fn cursor_error(e: impl std::fmt::Display) -> L1Error {
    L1Error::Cursor(e.to_string())
}

impl CursorStore for CommittedCursorStore {
    fn load(&self) -> L1Result<Option<WatcherCursor>> {
        self.storage
            .aux(&self.key)
            .map_err(cursor_error)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(cursor_error))
            .transpose()
    }

    fn save(&self, cursor: &WatcherCursor) -> L1Result<()> {
        let executed = (self.executed)().map_err(cursor_error)?;
        let ready = {
            let mut pending = self.pending.lock();
            if pending
                .back()
                .is_some_and(|last| last.next_deposit_nonce >= cursor.next_deposit_nonce)
            {
                // Same nonce (or a rewind after an L1 reorg): the newer cursor replaces every
                // pending one that would need as much executed.
                while pending
                    .back()
                    .is_some_and(|last| last.next_deposit_nonce >= cursor.next_deposit_nonce)
                {
                    pending.pop_back();
                }
            }
            pending.push_back(*cursor);
            let mut ready = None;
            while pending
                .front()
                .is_some_and(|c| c.next_deposit_nonce <= executed)
            {
                ready = pending.pop_front();
            }
            ready
        };
        if let Some(cursor) = ready {
            let json = serde_json::to_vec(&cursor).map_err(cursor_error)?;
            self.storage
                .put_aux(&self.key, &json)
                .map_err(cursor_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use lanes_executor::{GenesisSpec, StorageOptions};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn cursor(next_block: u64, nonce: u64) -> WatcherCursor {
        WatcherCursor {
            next_block,
            parent_hash: Some(B256::with_last_byte(next_block as u8)),
            next_deposit_nonce: nonce,
        }
    }

    #[test]
    fn a_cursor_is_kept_only_once_l2_has_executed_what_it_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let storage = Storage::open(dir.path(), &StorageOptions::default()).unwrap();
            storage
                .init_or_check_genesis(&GenesisSpec::dev(1, 30_000_000).unwrap())
                .unwrap();
            Arc::new(storage)
        };
        let executed = Arc::new(AtomicU64::new(0));
        let count = executed.clone();
        let portal = Address::repeat_byte(0x99);
        let store = CommittedCursorStore::with_executed(
            open(),
            portal,
            Box::new(move || Ok(count.load(Ordering::SeqCst))),
        );
        assert_eq!(store.load().unwrap(), None);

        // Blocks without messages: saved at once.
        store.save(&cursor(10, 0)).unwrap();
        assert_eq!(store.load().unwrap(), Some(cursor(10, 0)));
        // Messages 0 and 1 delivered (blocks 10 and 12), not executed: the cursor stays.
        store.save(&cursor(11, 1)).unwrap();
        store.save(&cursor(13, 2)).unwrap();
        store.save(&cursor(14, 2)).unwrap();
        assert_eq!(store.load().unwrap(), Some(cursor(10, 0)));
        // Message 0 committed: the cursor after it, not past message 1.
        executed.store(1, Ordering::SeqCst);
        store.save(&cursor(15, 2)).unwrap();
        assert_eq!(store.load().unwrap(), Some(cursor(11, 1)));
        // Both committed: the newest cursor, which covers the most L1 blocks.
        executed.store(2, Ordering::SeqCst);
        store.save(&cursor(16, 2)).unwrap();
        assert_eq!(store.load().unwrap(), Some(cursor(16, 2)));

        // It is durable: a restarted node reads it back.
        drop(store);
        let storage = open();
        let reopened = CommittedCursorStore::new(storage.clone(), portal);
        assert_eq!(reopened.load().unwrap(), Some(cursor(16, 2)));
        // Another deployment starts from scratch.
        let other = CommittedCursorStore::new(storage, Address::repeat_byte(0x98));
        assert_eq!(other.load().unwrap(), None);
    }
}
