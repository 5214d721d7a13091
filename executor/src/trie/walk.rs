//! The incremental walk: one trie's root from its persisted branch nodes, its persisted
//! leaves and the leaves that changed.
//!
//! The general mechanism feeds alloy-trie's [`HashBuilder`] a sorted sequence of items that
//! together cover the key space of the new trie: for a subtree nothing changed in and whose
//! hash is stored, one `add_branch` with that hash; everywhere else the leaves themselves,
//! read from the persisted leaves with the changes merged in. The builder rebuilds every
//! node above and between those items, so structural changes (branches appearing,
//! collapsing into extensions or leaves) need no special handling. A stored branch hash may
//! stand in for its subtree when no key under it changed: a branch node's content depends on
//! the keys below it alone.
//!
//! Leaves reach the builder hashed too: once the next item is known, a leaf's depth (one
//! more than its longest common prefix with its neighbours) and so its node are known, and
//! `add_branch(path of the leaf node, its hash)` gives the builder the same parent as
//! `add_leaf` would. The builder then records leaf hashes in the branch nodes it emits, like
//! branch hashes, so a changed leaf's siblings are never read again. Reusing a leaf's hash is
//! only right while its parent stays a branch at the same path (the leaf node encodes the
//! rest of its key).
//!
//! The builder's per-item bookkeeping is most of the cost of a block of updates, so a stored
//! node that certainly stays a branch is composed directly instead
//! ([`BranchNodeRef`] over its children's references): untouched children keep their stored
//! hashes, changed branch children are composed in turn, changed single leaves are hashed
//! directly, and anything else gets a builder of its own for that child's subtree. Only a
//! node that dissolves (fewer than two children left) goes back to the caller's builder. On
//! big tries the changed children of the root are composed in parallel.
//!
//! Which branch nodes are stored, and their masks, follows the builder's rules
//! (`HashBuilder::with_updates`): a node is kept when one of its children is hashed or has
//! stored nodes below it (tree mask); composition records exactly what the builder would.
//! The tree mask tells the walk where descending into stored nodes pays; elsewhere it reads
//! leaves. Every stored node met in a changed region is deleted unless rebuilt, so the stored
//! set stays exactly what a full rebuild would store (the property tests check this).

use crate::error::ExecutorResult;
use alloy_primitives::B256;
use alloy_trie::{
    BranchNodeCompact, EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieMask,
    nodes::{BranchNodeRef, LeafNodeRef, RlpNode, TrieNode},
    proof::{ProofNodes, ProofRetainer},
};

/// New value of one leaf: `Some(leaf value)` (the RLP the trie stores under the key), or
/// `None` when the key is removed.
pub type LeafChange = (B256, Option<Vec<u8>>);

/// A stored node to write (`Some`) or delete (`None`).
pub type NodeChange = (Nibbles, Option<BranchNodeCompact>);

/// One trie's persisted data, as the walk reads it.
///
/// Calls come in increasing key order within a walk, which lets implementations keep their
/// cursors positioned instead of seeking every time.
pub trait TrieSource {
    /// The stored branch node with the smallest path at or after `from`.
    fn seek_node(&mut self, from: &Nibbles)
    -> ExecutorResult<Option<(Nibbles, BranchNodeCompact)>>;

    /// The stored branch node at exactly `path`. A point lookup is much cheaper than a seek
    /// in an LSM tree (bloom filters), and it is what the walk needs for a child it knows
    /// to be a stored branch.
    fn node(&mut self, path: &Nibbles) -> ExecutorResult<Option<BranchNodeCompact>> {
        Ok(self
            .seek_node(path)?
            .filter(|(found, _)| found == path)
            .map(|(_, node)| node))
    }

    /// The persisted leaf values of `keys` (sorted), `None` where there is none.
    fn values(&mut self, keys: &[B256]) -> ExecutorResult<Vec<Option<Vec<u8>>>> {
        Ok(vec![None; keys.len()])
    }

    /// Calls `f` with every persisted leaf (hashed key, leaf value) with `from <= key < to`
    /// (`to: None`: up to the end of the key space), in key order.
    fn leaves(
        &mut self,
        from: &B256,
        to: Option<&B256>,
        f: &mut dyn FnMut(&B256, &[u8]),
    ) -> ExecutorResult<()>;
}

/// A trie with nothing persisted: a wiped storage trie, or a trie built from its changes
/// alone (genesis).
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptySource;

impl TrieSource for EmptySource {
    fn seek_node(&mut self, _: &Nibbles) -> ExecutorResult<Option<(Nibbles, BranchNodeCompact)>> {
        Ok(None)
    }
    fn leaves(
        &mut self,
        _: &B256,
        _: Option<&B256>,
        _: &mut dyn FnMut(&B256, &[u8]),
    ) -> ExecutorResult<()> {
        Ok(())
    }
}

/// Sorted, deduplicated full-length keys; a path is "in" the set when some key starts with
/// it.
#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    keys: Vec<Nibbles>,
}

impl PrefixSet {
    /// The set of `keys` (hashed, 32 bytes each).
    pub fn new(keys: impl IntoIterator<Item = B256>) -> Self {
        let mut keys: Vec<Nibbles> = keys.into_iter().map(|k| Nibbles::unpack(k)).collect();
        keys.sort_unstable();
        keys.dedup();
        Self { keys }
    }

    /// The keys under `path`, as an index range.
    fn range(&self, path: &Nibbles) -> std::ops::Range<usize> {
        let start = self.keys.partition_point(|k| k < path);
        let len = self.keys[start..]
            .iter()
            .take_while(|k| k.starts_with(path))
            .count();
        start..start + len
    }

    /// True if some key starts with `path`.
    pub fn contains(&self, path: &Nibbles) -> bool {
        self.keys
            .get(self.keys.partition_point(|k| k < path))
            .is_some_and(|k| k.starts_with(path))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A 32-byte key bound from a path: the path padded with zero nibbles.
fn pad(path: &Nibbles) -> B256 {
    let mut out = B256::ZERO;
    path.pack_to(&mut out.0[..path.len().div_ceil(2)]);
    out
}

/// Feeds the [`HashBuilder`] its items in key order, turning each leaf into the hash of its
/// leaf node as soon as the next item fixes the leaf's depth.
pub(crate) struct Emitter {
    hb: HashBuilder,
    /// The builder builds the subtree at this path: keys reach it without this prefix.
    base: Nibbles,
    /// Whether an item with stored nodes below went in (a tree-mask bit for `base`).
    stored_items: bool,
    /// Proofs need the leaf nodes themselves in the builder, not their hashes.
    hash_leaves: bool,
    /// Key of the last item handed to the builder.
    last: Option<Nibbles>,
    /// A leaf waiting for the next item.
    pending: Option<Nibbles>,
    pending_value: Vec<u8>,
    rlp: Vec<u8>,
}

impl Emitter {
    /// An emitter whose builder collects the branch nodes to store.
    pub(crate) fn with_updates() -> Self {
        Self::new(HashBuilder::default().with_updates(true), true)
    }

    /// An emitter building the subtree at `base` (the node a parent at `base`'s parent
    /// refers to), keeping that node's encoding for the parent.
    fn subtree(base: Nibbles) -> Self {
        let hb = HashBuilder::default()
            .with_updates(true)
            .with_proof_retainer(ProofRetainer::new(vec![Nibbles::default()]));
        Self {
            base,
            ..Self::new(hb, true)
        }
    }

    fn new(hb: HashBuilder, hash_leaves: bool) -> Self {
        Self {
            hb,
            base: Nibbles::default(),
            stored_items: false,
            hash_leaves,
            last: None,
            pending: None,
            pending_value: Vec::new(),
            rlp: Vec::with_capacity(128),
        }
    }

    /// `key` as the builder sees it (relative to `base`).
    fn strip(&self, key: &Nibbles) -> Nibbles {
        if self.base.is_empty() {
            *key
        } else {
            key.slice(self.base.len()..)
        }
    }

    /// Adds a leaf (full 64-nibble key, leaf value); keys must increase.
    pub(crate) fn leaf(&mut self, key: Nibbles, value: &[u8]) {
        if !self.hash_leaves {
            self.hb.add_leaf_unchecked(self.strip(&key), value);
            return;
        }
        self.flush(Some(&key));
        self.pending = Some(key);
        self.pending_value.clear();
        self.pending_value.extend_from_slice(value);
    }

    /// Adds the hash of the branch (or leaf) node at `path`.
    fn branch(&mut self, path: Nibbles, hash: B256, stored: bool) {
        self.flush(Some(&path));
        self.hb.add_branch(self.strip(&path), hash, stored);
        self.stored_items |= stored;
        self.last = Some(path);
    }

    fn flush(&mut self, next: Option<&Nibbles>) {
        let Some(key) = self.pending.take() else {
            return;
        };
        // The leaf hangs off the branch where it parts from the closer of its neighbours;
        // without neighbours it is the whole trie.
        let depth = [self.last.as_ref(), next]
            .into_iter()
            .flatten()
            .map(|other| other.common_prefix_length(&key))
            .max();
        self.last = Some(key);
        if let Some(depth) = depth {
            self.rlp.clear();
            let suffix = key.slice(depth + 1..);
            let node = LeafNodeRef::new(&suffix, &self.pending_value).rlp(&mut self.rlp);
            // A leaf node under 32 bytes is embedded in its parent, not hashed.
            if let Some(hash) = node.as_hash() {
                let path = self.strip(&key.slice(..depth + 1));
                self.hb.add_branch(path, hash, false);
                return;
            }
        }
        let key = self.strip(&key);
        self.hb.add_leaf_unchecked(key, &self.pending_value);
    }

    /// The root, and the branch nodes to store (when built [`Emitter::with_updates`]).
    pub(crate) fn finish(mut self) -> (B256, alloy_trie::HashMap<Nibbles, BranchNodeCompact>) {
        self.flush(None);
        let root = self.hb.root();
        let (_, updates) = self.hb.split();
        (root, updates)
    }

    /// For an emitter from [`Emitter::subtree`]: the subtree's node as its parent sees it,
    /// and the branch nodes to store under `base` (absolute paths).
    fn finish_subtree(mut self) -> (Child, Vec<(Nibbles, BranchNodeCompact)>) {
        self.flush(None);
        self.hb.root();
        let Some(rlp) = self.hb.stack.last().cloned() else {
            return (Child::Gone, Vec::new());
        };
        let root_node = self
            .hb
            .take_proof_nodes()
            .into_inner()
            .remove(&Nibbles::default());
        // The branch and leaf children of a branch are hashed in its stored form; extension
        // children are not (the builder's rule). A lone item is a branch handed in whole.
        let extension = root_node.is_some_and(|node| {
            matches!(
                <TrieNode as alloy_rlp::Decodable>::decode(&mut &node[..]),
                Ok(TrieNode::Extension(_))
            )
        });
        let (_, updates) = self.hb.split();
        let stored = self.stored_items || !updates.is_empty();
        let base = self.base;
        let nodes = updates
            .into_iter()
            .map(|(path, mut node)| {
                node.root_hash = None;
                (base.join(&path), node)
            })
            .collect();
        let hashed = rlp.is_hash() && !extension;
        (
            Child::Node {
                rlp,
                hashed,
                stored,
            },
            nodes,
        )
    }
}

/// What one walk produced.
#[derive(Debug)]
pub struct TrieOutput {
    /// Root of the new trie.
    pub root: B256,
    /// Stored nodes to write or delete, in no particular order.
    pub nodes: Vec<NodeChange>,
    /// Persisted leaves the walk read (a cost measure for tests and benchmarks).
    pub leaves_read: usize,
}

/// The new state of a child, as composing its parent needs it.
enum Child {
    /// No keys left under it.
    Gone,
    /// The child's node reference, whether the parent's stored form hashes it (hash mask)
    /// and whether stored nodes lie below (tree mask).
    Node {
        rlp: RlpNode,
        hashed: bool,
        stored: bool,
    },
}

impl Child {
    fn hashed(hash: B256, stored: bool) -> Self {
        Self::Node {
            rlp: RlpNode::word_rlp(&hash),
            hashed: true,
            stored,
        }
    }
}

struct Walk<'a, S: ?Sized> {
    source: &'a mut S,
    /// Changed keys, plus proof targets when proving.
    prefixes: &'a PrefixSet,
    changes: &'a [LeafChange],
    /// The persisted values of the changed keys, when known.
    old: &'a [Option<Vec<u8>>],
    next_change: usize,
    out: Emitter,
    /// Whether branch nodes may be composed directly (not when proving: the proof retainer
    /// sees only what goes through the builder).
    compose: bool,
    /// Branch nodes composed directly, to store.
    composed: Vec<(Nibbles, BranchNodeCompact)>,
    /// Stored nodes met in changed regions: deleted unless rebuilt.
    visited: Vec<Nibbles>,
    leaves_read: usize,
    rlp: Vec<u8>,
}

impl<'a, S: TrieSource + ?Sized> Walk<'a, S> {
    fn new(
        source: &'a mut S,
        prefixes: &'a PrefixSet,
        changes: &'a [LeafChange],
        old: &'a [Option<Vec<u8>>],
        out: Emitter,
        compose: bool,
    ) -> Self {
        Self {
            source,
            prefixes,
            changes,
            old,
            next_change: 0,
            out,
            compose,
            composed: Vec::new(),
            visited: Vec::new(),
            leaves_read: 0,
            rlp: Vec::with_capacity(600),
        }
    }

    /// Emits the whole trie.
    fn run(&mut self) -> ExecutorResult<()> {
        // Big tries have a branch at the root: look it up directly (cached).
        match self.source.node(&Nibbles::default())? {
            Some(root) => self.visit(Nibbles::default(), &root),
            None => self.cover(Nibbles::default()),
        }
    }

    /// The outcome, once the builder has everything.
    fn finish(self) -> TrieOutput {
        let (root, updates) = self.out.finish();
        let mut nodes: Vec<NodeChange> = self
            .visited
            .into_iter()
            .filter(|path| !updates.contains_key(path))
            .map(|path| (path, None))
            .collect();
        let mut composed: Vec<Nibbles> = self.composed.iter().map(|(path, _)| *path).collect();
        composed.sort_unstable();
        nodes.retain(|(path, _)| composed.binary_search(path).is_err());
        nodes.extend(updates.into_iter().map(|(path, node)| (path, Some(node))));
        nodes.extend(
            self.composed
                .into_iter()
                .map(|(path, node)| (path, Some(node))),
        );
        TrieOutput {
            root,
            nodes,
            leaves_read: self.leaves_read,
        }
    }

    /// Emits everything under `prefix`, using the stored nodes found there.
    fn cover(&mut self, prefix: Nibbles) -> ExecutorResult<()> {
        let end = prefix.increment().map(|p| pad(&p));
        let mut from = prefix;
        loop {
            let found = self
                .source
                .seek_node(&from)?
                .filter(|(path, _)| path.starts_with(&prefix));
            let Some((path, node)) = found else {
                return self.emit_leaves(pad(&from), end);
            };
            self.emit_leaves(pad(&from), Some(pad(&path)))?;
            self.visit(path, &node)?;
            if path == prefix {
                return Ok(());
            }
            // The next region starts right after `path`'s subtree; once that leaves
            // `prefix`, `path` ran to the end of it.
            match path.next_without_prefix() {
                Some(next) if next.starts_with(&prefix) => from = next,
                _ => return Ok(()),
            }
        }
    }

    /// Emits everything under the stored node `node` at `path`.
    fn visit(&mut self, path: Nibbles, node: &BranchNodeCompact) -> ExecutorResult<()> {
        if self.compose
            && let Some(hash) = self.compose(path, node)?
        {
            self.out.branch(path, hash, true);
            return Ok(());
        }
        let changed = self.changed_children(&path);
        if !changed.is_empty() {
            self.visited.push(path);
        }
        // With two children untouched the node stays a branch at `path`, so every untouched
        // child keeps its node and hash. Otherwise only hashed children with stored nodes
        // below (branches) are certain to: a leaf child may move up into the parent's place.
        let stable = (node.state_mask.get() & !changed.get()).count_ones() >= 2;
        for nibble in 0..16u8 {
            let mut child = path;
            child.push_unchecked(nibble);
            let child_changed = changed.is_bit_set(nibble);
            let in_tree = node.tree_mask.is_bit_set(nibble);
            let hashed = node.hash_mask.is_bit_set(nibble);
            if !node.state_mask.is_bit_set(nibble) {
                if child_changed {
                    self.emit_subtree_leaves(&child)?;
                }
            } else if !child_changed && hashed && (stable || in_tree) {
                self.out
                    .branch(child, node.hash_for_nibble(nibble), in_tree);
            } else if in_tree && hashed {
                // A hashed child with stored nodes below is a stored branch right there.
                match self.source.node(&child)? {
                    Some(child_node) => self.visit(child, &child_node)?,
                    None => self.cover(child)?,
                }
            } else if in_tree {
                self.cover(child)?;
            } else if let Some(index) = self.single_leaf(&child, node, nibble) {
                // The child is the old leaf of the one key that changed under it.
                if let (key, Some(new)) = &self.changes[index] {
                    self.out.leaf(Nibbles::unpack(key), new);
                }
                self.next_change += 1;
            } else {
                self.emit_subtree_leaves(&child)?;
            }
        }
        Ok(())
    }

    /// The new hash of the stored node `node` at `path`, computed from its children's
    /// nodes without running the builder over the node itself, when the node stays a branch
    /// (two or more children left). Untouched children come with their stored hashes,
    /// changed ones are composed in turn, single leaves hashed directly, anything else built
    /// by a builder of its own. That is the whole work of a block of updates, at a fraction
    /// of the builder's cost per node. `None` (nothing consumed) when the node does not stay
    /// a branch: the caller's builder takes over.
    fn compose(&mut self, path: Nibbles, node: &BranchNodeCompact) -> ExecutorResult<Option<B256>> {
        let changed = self.changed_children(&path);
        let mark = (self.next_change, self.visited.len(), self.composed.len());
        let mut children: [Option<Child>; 16] = Default::default();
        for nibble in 0..16u8 {
            let child_changed = changed.is_bit_set(nibble);
            if !child_changed && !node.state_mask.is_bit_set(nibble) {
                continue;
            }
            let mut child = path;
            child.push_unchecked(nibble);
            let state = if !child_changed && node.hash_mask.is_bit_set(nibble) {
                Child::hashed(
                    node.hash_for_nibble(nibble),
                    node.tree_mask.is_bit_set(nibble),
                )
            } else {
                match self.changed_child(&child, node, nibble)? {
                    Some(state) => state,
                    None => self.build_subtree(child)?,
                }
            };
            if let Child::Node { .. } = state {
                children[nibble as usize] = Some(state);
            }
        }
        let composed = if children.iter().flatten().count() >= 2 {
            assemble(&mut self.rlp, &path, &children)
        } else {
            None
        };
        let Some((hash, stored)) = composed else {
            // The node dissolves into its parent (or is too small to be hashed).
            (self.next_change, ..) = mark;
            self.visited.truncate(mark.1);
            self.composed.truncate(mark.2);
            return Ok(None);
        };
        if !changed.is_empty() {
            self.visited.push(path);
        }
        self.composed.push((path, stored));
        Ok(Some(hash))
    }

    /// The new state of the changed child `child` (nibble `nibble` of `node`) in the cheap
    /// cases: a stored branch that stays one, a single leaf replaced or removed, a leaf
    /// added where there was nothing. `None` otherwise.
    fn changed_child(
        &mut self,
        child: &Nibbles,
        node: &BranchNodeCompact,
        nibble: u8,
    ) -> ExecutorResult<Option<Child>> {
        let present = node.state_mask.is_bit_set(nibble);
        let hashed = node.hash_mask.is_bit_set(nibble);
        if present && hashed && node.tree_mask.is_bit_set(nibble) {
            let Some(child_node) = self.source.node(child)? else {
                return Ok(None);
            };
            return Ok(self
                .compose(*child, &child_node)?
                .map(|hash| Child::hashed(hash, true)));
        }
        let index = if present {
            match self.single_leaf(child, node, nibble) {
                Some(index) => index,
                None => return Ok(None),
            }
        } else {
            let range = self.prefixes.range(child);
            if range.len() != 1 || range.start != self.next_change {
                return Ok(None);
            }
            range.start
        };
        let (key, new) = &self.changes[index];
        let Some(new) = new else {
            self.next_change += 1;
            return Ok(Some(Child::Gone));
        };
        self.rlp.clear();
        let suffix = Nibbles::unpack(key).slice(child.len()..);
        let Some(hash) = LeafNodeRef::new(&suffix, new).rlp(&mut self.rlp).as_hash() else {
            return Ok(None);
        };
        self.next_change += 1;
        Ok(Some(Child::hashed(hash, false)))
    }

    /// Builds the subtree under `child` with a builder of its own, for a parent that stays
    /// a branch.
    fn build_subtree(&mut self, child: Nibbles) -> ExecutorResult<Child> {
        let parent_out = std::mem::replace(&mut self.out, Emitter::subtree(child));
        let built = self.cover(child);
        let out = std::mem::replace(&mut self.out, parent_out);
        built?;
        let (state, nodes) = out.finish_subtree();
        self.composed.extend(nodes);
        Ok(state)
    }

    /// The index of the one change under `child` when the child (hashed in `node`) is just
    /// the old leaf of that key: hashing the key's old value at this depth gives the stored
    /// hash. Then nothing under the child needs reading.
    fn single_leaf(
        &mut self,
        child: &Nibbles,
        node: &BranchNodeCompact,
        nibble: u8,
    ) -> Option<usize> {
        if !node.hash_mask.is_bit_set(nibble) || self.old.is_empty() {
            return None;
        }
        let range = self.prefixes.range(child);
        if range.len() != 1 || range.start != self.next_change {
            return None;
        }
        let (key, _) = &self.changes[range.start];
        let old = self.old[range.start].as_ref()?;
        self.rlp.clear();
        let suffix = Nibbles::unpack(key).slice(child.len()..);
        let old_node = LeafNodeRef::new(&suffix, old).rlp(&mut self.rlp);
        (old_node.as_hash() == Some(node.hash_for_nibble(nibble))).then_some(range.start)
    }

    /// Children of `path` with a key of the prefix set under them.
    fn changed_children(&self, path: &Nibbles) -> TrieMask {
        let mut mask = TrieMask::default();
        if path.len() < 64 {
            for key in &self.prefixes.keys[self.prefixes.range(path)] {
                mask.set_bit(key.get_unchecked(path.len()));
            }
        }
        mask
    }

    fn emit_subtree_leaves(&mut self, path: &Nibbles) -> ExecutorResult<()> {
        self.emit_leaves(pad(path), path.increment().map(|p| pad(&p)))
    }

    /// Feeds the builder every leaf of the new trie in `[from, to)`: persisted leaves with
    /// the changes merged over them.
    fn emit_leaves(&mut self, from: B256, to: Option<B256>) -> ExecutorResult<()> {
        if to.is_some_and(|to| to <= from) {
            return Ok(());
        }
        let Self {
            source,
            changes,
            next_change,
            out,
            leaves_read,
            ..
        } = self;
        debug_assert!(
            changes.get(*next_change).is_none_or(|(k, _)| *k >= from),
            "a changed key fell in a region the walk skipped"
        );
        let mut add = |key: &B256, value: &[u8]| out.leaf(Nibbles::unpack(key), value);
        source.leaves(&from, to.as_ref(), &mut |key, value| {
            *leaves_read += 1;
            while let Some((changed, new)) = changes.get(*next_change)
                && changed < key
            {
                if let Some(new) = new {
                    add(changed, new);
                }
                *next_change += 1;
            }
            match changes.get(*next_change) {
                Some((changed, new)) if changed == key => {
                    if let Some(new) = new {
                        add(changed, new);
                    }
                    *next_change += 1;
                }
                _ => add(key, value),
            }
        })?;
        while let Some((changed, new)) = changes.get(*next_change)
            && to.is_none_or(|to| *changed < to)
        {
            if let Some(new) = new {
                add(changed, new);
            }
            *next_change += 1;
        }
        Ok(())
    }
}

/// The branch node at `path` with the given children: its hash and its stored form, exactly
/// as the builder would record them; `None` if the node is too short to be hashed.
fn assemble(
    rlp: &mut Vec<u8>,
    path: &Nibbles,
    children: &[Option<Child>; 16],
) -> Option<(B256, BranchNodeCompact)> {
    let mut state_mask = TrieMask::default();
    let mut tree_mask = TrieMask::default();
    let mut hash_mask = TrieMask::default();
    let mut stack: [RlpNode; 16] = Default::default();
    let mut len = 0;
    let mut hashes = Vec::with_capacity(16);
    for (nibble, child) in children.iter().enumerate() {
        let Some(Child::Node {
            rlp,
            hashed,
            stored,
        }) = child
        else {
            continue;
        };
        let nibble = nibble as u8;
        state_mask.set_bit(nibble);
        if *stored {
            tree_mask.set_bit(nibble);
        }
        if *hashed {
            hash_mask.set_bit(nibble);
            hashes.push(rlp.as_hash()?);
        }
        stack[len] = rlp.clone();
        len += 1;
    }
    rlp.clear();
    let hash = BranchNodeRef::new(&stack[..len], state_mask)
        .rlp(rlp)
        .as_hash()?;
    let stored = BranchNodeCompact::new(
        state_mask,
        tree_mask,
        hash_mask,
        hashes,
        path.is_empty().then_some(hash),
    );
    Some((hash, stored))
}

/// Sorts `changes` by key, keeping the last change of each key.
pub fn sort_changes(changes: &mut Vec<LeafChange>) {
    changes.reverse();
    changes.sort_by_key(|(key, _)| *key);
    changes.dedup_by_key(|(key, _)| *key);
}

/// Computes the root of the trie `source` holds with `changes` (sorted by key, one entry per
/// key: see [`sort_changes`]) applied, and the stored-node changes that go with it.
pub fn compute_root(
    source: &mut (impl TrieSource + ?Sized),
    changes: &[LeafChange],
) -> ExecutorResult<TrieOutput> {
    let keys: Vec<B256> = changes.iter().map(|(key, _)| *key).collect();
    let old = if changes.is_empty() {
        Vec::new()
    } else {
        source.values(&keys)?
    };
    compute_root_with_old(source, changes, &old)
}

/// [`compute_root`] with the persisted values of the changed keys already at hand (`old`
/// parallel to `changes`, or empty when unknown).
pub fn compute_root_with_old(
    source: &mut (impl TrieSource + ?Sized),
    changes: &[LeafChange],
    old: &[Option<Vec<u8>>],
) -> ExecutorResult<TrieOutput> {
    debug_assert!(
        changes.windows(2).all(|w| w[0].0 < w[1].0),
        "changes must be sorted"
    );
    debug_assert!(old.is_empty() || old.len() == changes.len());
    let prefixes = PrefixSet::new(changes.iter().map(|(key, _)| *key));
    let mut walk = Walk::new(
        source,
        &prefixes,
        changes,
        old,
        Emitter::with_updates(),
        true,
    );
    walk.run()?;
    debug_assert_eq!(walk.next_change, changes.len(), "every change emitted");
    Ok(walk.finish())
}

/// Below this many changes a trie is walked on one thread.
const PARALLEL_MIN_CHANGES: usize = 256;

/// [`compute_root_with_old`] on rayon's pool: the changed children of the root are
/// composed in parallel, each on its own source from `open` (which also reads the old
/// values of its keys, unless `old` has them), then the root from them. Falls back to one
/// thread when the trie is small or the block reshapes its top.
pub fn compute_root_parallel<S: TrieSource>(
    open: &(impl Fn() -> S + Sync),
    changes: &[LeafChange],
    old: Option<&[Option<Vec<u8>>]>,
) -> ExecutorResult<TrieOutput> {
    if changes.len() >= PARALLEL_MIN_CHANGES
        && rayon::current_num_threads() > 1
        && let Some(output) = compose_root_in_parallel(open, changes, old)?
    {
        return Ok(output);
    }
    match old {
        Some(old) => compute_root_with_old(&mut open(), changes, old),
        None => compute_root(&mut open(), changes),
    }
}

fn compose_root_in_parallel<S: TrieSource>(
    open: &(impl Fn() -> S + Sync),
    changes: &[LeafChange],
    old: Option<&[Option<Vec<u8>>]>,
) -> ExecutorResult<Option<TrieOutput>> {
    use rayon::prelude::*;
    let root_path = Nibbles::default();
    let Some(root) = open().node(&root_path)? else {
        return Ok(None);
    };
    // The changes under each child of the root, as index ranges.
    let mut groups: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    for (index, (key, _)) in changes.iter().enumerate() {
        let nibble = key[0] >> 4;
        match groups.last_mut() {
            Some((last, range)) if *last == nibble => range.end = index + 1,
            _ => groups.push((nibble, index..index + 1)),
        }
    }
    // Every changed child must be a stored branch (that stays one, see below), every
    // other child hashed.
    let mut changed = TrieMask::default();
    for (nibble, _) in &groups {
        changed.set_bit(*nibble);
    }
    let branches = root.hash_mask.get() & root.tree_mask.get();
    if changed.get() & !branches != 0 || root.state_mask.get() & !root.hash_mask.get() != 0 {
        return Ok(None);
    }
    let parts: Vec<Option<(u8, B256, TrieOutput)>> = groups
        .par_iter()
        .map(|(nibble, range)| {
            let mut source = open();
            let child = Nibbles::from_nibbles_unchecked([*nibble]);
            let Some(node) = source.node(&child)? else {
                return Ok(None);
            };
            let part_changes = &changes[range.clone()];
            let fetched;
            let part_old = match old {
                Some(old) if !old.is_empty() => &old[range.clone()],
                Some(_) => &[][..],
                None => {
                    let keys: Vec<B256> = part_changes.iter().map(|(key, _)| *key).collect();
                    fetched = source.values(&keys)?;
                    &fetched[..]
                }
            };
            let prefixes = PrefixSet::new(part_changes.iter().map(|(key, _)| *key));
            let mut walk = Walk::new(
                &mut source,
                &prefixes,
                part_changes,
                part_old,
                Emitter::with_updates(),
                true,
            );
            let Some(hash) = walk.compose(child, &node)? else {
                return Ok(None);
            };
            Ok(Some((*nibble, hash, walk.finish())))
        })
        .collect::<ExecutorResult<_>>()?;
    let mut children: [Option<Child>; 16] = Default::default();
    for nibble in 0..16u8 {
        if root.state_mask.is_bit_set(nibble) {
            children[nibble as usize] = Some(Child::hashed(
                root.hash_for_nibble(nibble),
                root.tree_mask.is_bit_set(nibble),
            ));
        }
    }
    let mut nodes = Vec::new();
    let mut leaves_read = 0;
    for part in parts {
        let Some((nibble, hash, output)) = part else {
            return Ok(None);
        };
        children[nibble as usize] = Some(Child::hashed(hash, true));
        nodes.extend(output.nodes);
        leaves_read += output.leaves_read;
    }
    let Some((root_hash, root_node)) = assemble(&mut Vec::new(), &root_path, &children) else {
        return Ok(None);
    };
    nodes.push((root_path, Some(root_node)));
    Ok(Some(TrieOutput {
        root: root_hash,
        nodes,
        leaves_read,
    }))
}

/// The root of the trie `source` holds, and the nodes proving the presence or absence of
/// each of `targets` (hashed keys) in it.
pub fn prove(
    source: &mut (impl TrieSource + ?Sized),
    targets: &[B256],
) -> ExecutorResult<(B256, ProofNodes)> {
    let prefixes = PrefixSet::new(targets.iter().copied());
    let retainer = ProofRetainer::new(prefixes.keys.clone());
    let out = Emitter::new(HashBuilder::default().with_proof_retainer(retainer), false);
    let mut walk = Walk::new(source, &prefixes, &[], &[], out, false);
    walk.run()?;
    let mut hb = walk.out.hb;
    let root = hb.root();
    Ok((root, hb.take_proof_nodes()))
}

/// The proof of one key out of the nodes [`prove`] retained: the nodes on its path, root
/// first. Nodes shorter than 32 bytes are embedded in their parent and are not listed on
/// their own (as in geth's proofs); an empty trie has an empty proof.
pub fn proof_for(nodes: &ProofNodes, root: B256, key: &B256) -> Vec<alloy_primitives::Bytes> {
    if root == EMPTY_ROOT_HASH {
        return Vec::new();
    }
    nodes
        .matching_nodes_sorted(&Nibbles::unpack(key))
        .into_iter()
        .enumerate()
        .filter(|(i, (_, node))| *i == 0 || node.len() >= 32)
        .map(|(_, (_, node))| node)
        .collect()
}
