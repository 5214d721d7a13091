//! Decoded branch nodes of the latest state, kept in memory across blocks.
//!
//! Every block walks the top levels of the account trie and of the busy storage tries again;
//! a point read from RocksDB costs microseconds (index and data block searches, decoding),
//! a map lookup a small fraction of that. The cache holds the nodes of the committed head
//! only: storage applies every committed block's node changes to it, and it is never used
//! for snapshot reads (proofs), which may be older than the head.

use super::NodeChange;
use alloy_primitives::{B256, map::HashMap};
use alloy_trie::{BranchNodeCompact, Nibbles};
use parking_lot::RwLock;

type Trie = HashMap<Nibbles, BranchNodeCompact>;

/// The cache, by trie (`None`: the account trie; `Some(hashed address)`: a storage trie).
#[derive(Debug)]
pub(crate) struct NodeCache {
    inner: RwLock<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    tries: HashMap<Option<B256>, Trie>,
    entries: usize,
    /// Bumped by every change, so a node read from the database before a commit cannot
    /// be cached after it.
    generation: u64,
}

impl NodeCache {
    /// A cache of at most `capacity` nodes. Once full it only keeps the nodes it has up to
    /// date; the ones that got in first are the top levels every walk passes through.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            capacity,
        }
    }

    /// The current generation: pass it back to [`NodeCache::insert`].
    pub(crate) fn generation(&self) -> u64 {
        self.inner.read().generation
    }

    pub(crate) fn get(&self, trie: Option<&B256>, path: &Nibbles) -> Option<BranchNodeCompact> {
        self.inner
            .read()
            .tries
            .get(&trie.copied())?
            .get(path)
            .cloned()
    }

    /// Remembers a node read from the database in `generation`.
    pub(crate) fn insert(
        &self,
        generation: u64,
        trie: Option<&B256>,
        path: Nibbles,
        node: BranchNodeCompact,
    ) {
        let mut inner = self.inner.write();
        if inner.entries >= self.capacity || inner.generation != generation {
            return;
        }
        if inner
            .tries
            .entry(trie.copied())
            .or_default()
            .insert(path, node)
            .is_none()
        {
            inner.entries += 1;
        }
    }

    /// Applies committed node changes of one trie; `wiped` drops the trie first.
    pub(crate) fn apply(&self, trie: Option<&B256>, wiped: bool, changes: &[NodeChange]) {
        let mut inner = self.inner.write();
        let inner = &mut *inner;
        inner.generation += 1;
        if wiped && let Some(old) = inner.tries.remove(&trie.copied()) {
            inner.entries -= old.len();
        }
        let Some(nodes) = inner.tries.get_mut(&trie.copied()) else {
            return;
        };
        // Only nodes already cached are updated: new ones come in when read.
        for (path, node) in changes {
            match node {
                Some(node) => {
                    if let Some(cached) = nodes.get_mut(path) {
                        *cached = node.clone();
                    }
                }
                None => {
                    if nodes.remove(path).is_some() {
                        inner.entries -= 1;
                    }
                }
            }
        }
    }

    /// Forgets everything (after a failed write, when the database state is uncertain).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.write();
        inner.tries.clear();
        inner.entries = 0;
        inner.generation += 1;
    }
}
