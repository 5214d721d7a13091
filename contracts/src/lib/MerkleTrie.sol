// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RLPReader} from "./RLPReader.sol";

/// @title MerkleTrie
/// @notice Verifies Merkle-Patricia trie proofs (Yellow Paper, appendix D) of inclusion and of
/// exclusion, such as the `accountProof` and `storageProof` of `eth_getProof` (EIP-1186).
/// @dev A proof is the list of RLP-encoded nodes on the path from the root to the key, each node
/// referenced by its parent through its keccak256 hash. Nodes whose encoding is shorter than 32 bytes
/// are embedded in their parent instead and are not repeated in the proof (as geth and reth produce
/// them); the root is always referenced by hash. The walk must use every proof node: a proof with
/// extra nodes is rejected. Malformed nodes or proofs revert with the custom errors below or those of
/// `RLPReader`; a well-formed proof that the key is absent returns `exists == false`.
///
/// The library knows nothing about secure tries: pass `keccak256(address)` for an account and
/// `keccak256(slot)` for a storage slot.
library MerkleTrie {
    using RLPReader for RLPReader.Item;

    /// @notice Root of the empty trie: keccak256(rlp("")).
    bytes32 internal constant EMPTY_TRIE_ROOT = 0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421;

    /// @notice Proof node `index` does not hash to the reference its parent (or the root) holds.
    error ProofNodeHashMismatch(uint256 index);
    /// @notice The walk needs a node after the last one in the proof.
    error ProofTooShort();
    /// @notice The walk ended before the last node of the proof.
    error ProofTooLong();
    /// @notice A node is not a valid trie node (wrong arity, bad hex-prefix path, bad child
    /// reference, empty leaf value, ...).
    error InvalidTrieNode();

    /// @notice Looks `key` up in the trie with root `root` using `proof`.
    /// @return exists Whether the key is in the trie.
    /// @return value The value stored at the key (the payload of the leaf's value string), empty if
    /// the key is absent.
    function get(bytes memory key, bytes[] memory proof, bytes32 root)
        internal
        pure
        returns (bool exists, bytes memory value)
    {
        if (proof.length == 0) {
            // The empty trie needs no proof; any other root does.
            if (root == EMPTY_TRIE_ROOT) return (false, value);
            revert ProofTooShort();
        }

        bytes memory nibbles = _toNibbles(key);
        uint256 consumed; // nibbles of the key matched so far
        uint256 next; // index of the next proof node to open
        bytes32 expectedHash = root;
        RLPReader.Item memory node;
        bool embedded;

        while (true) {
            if (!embedded) {
                if (next == proof.length) revert ProofTooShort();
                bytes memory encoded = proof[next];
                if (keccak256(encoded) != expectedHash) revert ProofNodeHashMismatch(next);
                node = RLPReader.toItem(encoded);
                next++;
                if (next == 1 && RLPReader.isEmptyString(node)) {
                    // The root node of the empty trie is the empty string.
                    break;
                }
            }

            RLPReader.Item[] memory items = node.readList();
            RLPReader.Item memory child;

            if (items.length == 17) {
                // Branch: 16 children then a value for a key ending here.
                if (consumed == nibbles.length) {
                    value = items[16].readBytes();
                    exists = value.length != 0;
                    break;
                }
                child = items[uint8(nibbles[consumed])];
                consumed++;
                if (child.isEmptyString()) break; // no child on the key's path: absent
            } else if (items.length == 2) {
                // Leaf or extension: a hex-prefix encoded path then a value or a child.
                (bool leaf, bytes memory path) = _decodePath(items[0].readBytes());
                uint256 shared = _sharedPrefix(path, nibbles, consumed);
                if (leaf) {
                    if (shared == path.length && consumed + shared == nibbles.length) {
                        value = items[1].readBytes();
                        if (value.length == 0) revert InvalidTrieNode();
                        exists = true;
                    }
                    // Otherwise the key leaves the path at this leaf: absent.
                    break;
                }
                if (path.length == 0) revert InvalidTrieNode();
                if (shared != path.length) break; // the key leaves the extension's path: absent
                consumed += shared;
                child = items[1];
                if (child.isEmptyString()) revert InvalidTrieNode();
            } else {
                revert InvalidTrieNode();
            }

            // Follow the child reference: a 32-byte hash of the next proof node, or the node itself
            // embedded when its encoding is shorter than 32 bytes.
            if (child.isList()) {
                if (child.length >= 32) revert InvalidTrieNode();
                node = child;
                embedded = true;
            } else {
                bytes memory hashRef = child.readBytes();
                if (hashRef.length != 32) revert InvalidTrieNode();
                // casting to 'bytes32' is safe because hashRef is exactly 32 bytes long
                // forge-lint: disable-next-line(unsafe-typecast)
                expectedHash = bytes32(hashRef);
                embedded = false;
            }
        }

        if (next != proof.length) revert ProofTooLong();
    }

    /// @dev Splits `key` into its nibbles, high nibble first.
    function _toNibbles(bytes memory key) private pure returns (bytes memory nibbles) {
        nibbles = new bytes(key.length * 2);
        for (uint256 i; i < key.length; i++) {
            nibbles[2 * i] = key[i] >> 4;
            nibbles[2 * i + 1] = key[i] & 0x0f;
        }
    }

    /// @dev Decodes a hex-prefix encoded path: the first nibble's bit 1 marks a leaf and bit 0 an
    /// odd number of nibbles, in which case the second nibble is the path's first; for an even path
    /// the second nibble must be zero.
    function _decodePath(bytes memory encoded) private pure returns (bool leaf, bytes memory path) {
        if (encoded.length == 0) revert InvalidTrieNode();
        uint8 flag = uint8(encoded[0]) >> 4;
        if (flag > 3) revert InvalidTrieNode();
        leaf = flag >= 2;
        bool odd = flag & 1 == 1;
        if (!odd && uint8(encoded[0]) & 0x0f != 0) revert InvalidTrieNode();

        uint256 length = (encoded.length - 1) * 2 + (odd ? 1 : 0);
        path = new bytes(length);
        uint256 p;
        if (odd) path[p++] = encoded[0] & 0x0f;
        for (uint256 i = 1; i < encoded.length; i++) {
            path[p++] = encoded[i] >> 4;
            path[p++] = encoded[i] & 0x0f;
        }
    }

    /// @dev Number of leading nibbles `path` shares with `nibbles[from:]`.
    function _sharedPrefix(bytes memory path, bytes memory nibbles, uint256 from) private pure returns (uint256 n) {
        uint256 limit = nibbles.length - from;
        if (path.length < limit) limit = path.length;
        while (n < limit && path[n] == nibbles[from + n]) {
            n++;
        }
    }
}
