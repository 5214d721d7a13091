//! On-disk encodings of trie paths and stored branch nodes.
//!
//! Paths are stored unpacked, one nibble per byte: byte order is then path order (a path
//! sorts before its extensions) and every subtree is one contiguous key range, which is what
//! the walk's seeks and the deletion of a whole storage trie rely on. Packing two nibbles per
//! byte would make `[1]` and `[1, 0]` share a prefix and break both properties; stored
//! branch paths are short (a few nibbles), so the extra bytes cost next to nothing.

use crate::error::{ExecutorError, ExecutorResult};
use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, Nibbles, TrieMask};

/// Length of the masks header of an encoded node.
const MASKS_LEN: usize = 6;

/// Appends `path` to `out`, one nibble per byte.
pub fn encode_path(path: &Nibbles, out: &mut Vec<u8>) {
    out.extend(path.iter());
}

/// Inverse of [`encode_path`].
pub fn decode_path(bytes: &[u8], table: &'static str) -> ExecutorResult<Nibbles> {
    if bytes.len() > 64 || bytes.iter().any(|b| *b > 0x0f) {
        return Err(ExecutorError::corrupt(table, "invalid nibble path"));
    }
    Ok(Nibbles::from_nibbles_unchecked(bytes))
}

/// Encodes a branch node: state, tree and hash masks (2 bytes BE each), the child hashes in
/// nibble order, then the root hash if present (its presence follows from the length).
pub fn encode_node(node: &BranchNodeCompact) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        MASKS_LEN + 32 * (node.hashes.len() + node.root_hash.is_some() as usize),
    );
    out.extend_from_slice(&node.state_mask.get().to_be_bytes());
    out.extend_from_slice(&node.tree_mask.get().to_be_bytes());
    out.extend_from_slice(&node.hash_mask.get().to_be_bytes());
    for hash in node.hashes.iter() {
        out.extend_from_slice(hash.as_slice());
    }
    if let Some(root) = node.root_hash {
        out.extend_from_slice(root.as_slice());
    }
    out
}

/// Inverse of [`encode_node`]; checks everything `BranchNodeCompact::new` would assert, so a
/// corrupt entry is an error rather than a panic.
pub fn decode_node(bytes: &[u8], table: &'static str) -> ExecutorResult<BranchNodeCompact> {
    if bytes.len() < MASKS_LEN || !(bytes.len() - MASKS_LEN).is_multiple_of(32) {
        return Err(ExecutorError::corrupt(table, "branch node length"));
    }
    let mask = |i: usize| TrieMask::new(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    let (state_mask, tree_mask, hash_mask) = (mask(0), mask(2), mask(4));
    let words = (bytes.len() - MASKS_LEN) / 32;
    let hash_count = hash_mask.count_ones() as usize;
    if state_mask.is_empty()
        || !tree_mask.is_subset_of(state_mask)
        || !hash_mask.is_subset_of(state_mask)
        || (words != hash_count && words != hash_count + 1)
    {
        return Err(ExecutorError::corrupt(table, "branch node masks"));
    }
    let word = |i: usize| B256::from_slice(&bytes[MASKS_LEN + 32 * i..MASKS_LEN + 32 * (i + 1)]);
    let hashes = (0..hash_count).map(word).collect();
    let root_hash = (words > hash_count).then(|| word(hash_count));
    Ok(BranchNodeCompact::new(
        state_mask, tree_mask, hash_mask, hashes, root_hash,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_encoding_round_trips() {
        let node = BranchNodeCompact::new(
            TrieMask::new(0b1011),
            TrieMask::new(0b0001),
            TrieMask::new(0b1010),
            vec![B256::repeat_byte(1), B256::repeat_byte(2)],
            Some(B256::repeat_byte(3)),
        );
        assert_eq!(decode_node(&encode_node(&node), "t").unwrap(), node);
        let node = BranchNodeCompact::new(
            TrieMask::new(0b11),
            TrieMask::default(),
            TrieMask::new(0b01),
            vec![B256::repeat_byte(1)],
            None,
        );
        assert_eq!(decode_node(&encode_node(&node), "t").unwrap(), node);
        assert!(decode_node(&[0, 0, 0, 0, 0, 0], "t").is_err());
        assert!(decode_node(&[0, 1, 0, 2, 0, 0], "t").is_err());
    }

    #[test]
    fn path_order_is_byte_order() {
        let enc = |n: &[u8]| {
            let mut out = Vec::new();
            encode_path(&Nibbles::from_nibbles(n), &mut out);
            out
        };
        assert!(enc(&[1]) < enc(&[1, 0]));
        assert!(enc(&[1, 0, 15]) < enc(&[1, 1]));
        assert!(enc(&[]) < enc(&[0]));
        assert_eq!(
            decode_path(&enc(&[3, 4, 5]), "t").unwrap(),
            Nibbles::from_nibbles([3, 4, 5])
        );
    }
}
