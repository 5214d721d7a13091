// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {RLPWriter} from "./RLPWriter.sol";

/// @notice Reference Merkle-Patricia trie builder for tests: computes the root of a small key/value
/// set and the proof of any key, the way geth's trie does (nodes shorter than 32 bytes embedded in
/// their parent and left out of proofs, the root always hashed). Quadratic and memory hungry: for
/// tries of a few dozen keys. Checked against real anvil storage roots and proofs in
/// MerkleTrie.t.sol.
/// @dev Keys must be distinct. A key may be a prefix of another (its value then sits in a branch).
/// `values` are the raw leaf values (for storage tries: rlp(uint)); they must be non-empty.
library TrieBuilder {
    bytes32 internal constant EMPTY_TRIE_ROOT = keccak256(hex"80");

    function root(bytes[] memory keys, bytes[] memory values) internal pure returns (bytes32) {
        if (keys.length == 0) return EMPTY_TRIE_ROOT;
        return keccak256(_node(_allNibbles(keys), values, 0));
    }

    /// @notice The proof of `key` (present or absent) in the trie of `keys` => `values`.
    function proof(bytes[] memory keys, bytes[] memory values, bytes memory key)
        internal
        pure
        returns (bytes[] memory out)
    {
        if (keys.length == 0) return new bytes[](0);
        bytes[] memory set = _allNibbles(keys);
        bytes memory target = _nibbles(key);
        out = new bytes[](_maxLength(set) + 2);
        uint256 count;
        uint256 depth;
        bytes[] memory vals = values;
        for (bool isRoot = true;; isRoot = false) {
            bytes memory node = _node(set, vals, depth);
            if (isRoot || node.length >= 32) out[count++] = node;
            if (set.length == 1) break; // leaf
            uint256 shared = _commonPrefix(set, depth);
            if (shared > 0) {
                // extension: follow it if the target shares its path
                if (target.length < depth + shared) break;
                bool follows = true;
                for (uint256 i; i < shared; i++) {
                    if (target[depth + i] != set[0][depth + i]) follows = false;
                }
                if (!follows) break;
                depth += shared;
                continue;
            }
            // branch
            if (target.length == depth) break;
            (bytes[] memory subKeys, bytes[] memory subValues) = _filter(set, vals, depth, uint8(target[depth]));
            if (subKeys.length == 0) break;
            set = subKeys;
            vals = subValues;
            depth++;
        }
        assembly ("memory-safe") {
            mstore(out, count)
        }
    }

    function _node(bytes[] memory keys, bytes[] memory values, uint256 depth) private pure returns (bytes memory) {
        if (keys.length == 1) {
            return RLPWriter.encodeList(
                RLPWriter.encodeBytes(_hexPrefix(keys[0], depth, keys[0].length, true)),
                RLPWriter.encodeBytes(values[0])
            );
        }
        uint256 shared = _commonPrefix(keys, depth);
        if (shared > 0) {
            return RLPWriter.encodeList(
                RLPWriter.encodeBytes(_hexPrefix(keys[0], depth, depth + shared, false)),
                _ref(_node(keys, values, depth + shared))
            );
        }
        bytes[] memory items = new bytes[](17);
        for (uint8 n; n < 16; n++) {
            (bytes[] memory subKeys, bytes[] memory subValues) = _filter(keys, values, depth, n);
            items[n] = subKeys.length == 0 ? bytes(hex"80") : _ref(_node(subKeys, subValues, depth + 1));
        }
        items[16] = hex"80";
        for (uint256 i; i < keys.length; i++) {
            if (keys[i].length == depth) items[16] = RLPWriter.encodeBytes(values[i]);
        }
        return RLPWriter.encodeList(items);
    }

    function _ref(bytes memory node) private pure returns (bytes memory) {
        if (node.length < 32) return node;
        return RLPWriter.encodeBytes(abi.encodePacked(keccak256(node)));
    }

    function _commonPrefix(bytes[] memory keys, uint256 depth) private pure returns (uint256 shared) {
        uint256 limit = type(uint256).max;
        for (uint256 i; i < keys.length; i++) {
            if (keys[i].length - depth < limit) limit = keys[i].length - depth;
        }
        for (; shared < limit; shared++) {
            bytes1 nibble = keys[0][depth + shared];
            for (uint256 i = 1; i < keys.length; i++) {
                if (keys[i][depth + shared] != nibble) return shared;
            }
        }
    }

    function _filter(bytes[] memory keys, bytes[] memory values, uint256 depth, uint8 nibble)
        private
        pure
        returns (bytes[] memory subKeys, bytes[] memory subValues)
    {
        uint256 count;
        for (uint256 i; i < keys.length; i++) {
            if (keys[i].length > depth && uint8(keys[i][depth]) == nibble) count++;
        }
        subKeys = new bytes[](count);
        subValues = new bytes[](count);
        count = 0;
        for (uint256 i; i < keys.length; i++) {
            if (keys[i].length > depth && uint8(keys[i][depth]) == nibble) {
                subKeys[count] = keys[i];
                subValues[count++] = values[i];
            }
        }
    }

    function _hexPrefix(bytes memory nibbles, uint256 from, uint256 to, bool leaf)
        private
        pure
        returns (bytes memory out)
    {
        uint256 length = to - from;
        bool odd = length % 2 == 1;
        out = new bytes(length / 2 + 1);
        uint8 flag = (leaf ? 2 : 0) + (odd ? 1 : 0);
        out[0] = bytes1(flag << 4);
        uint256 p = from;
        if (odd) out[0] |= nibbles[p++];
        for (uint256 i = 1; i < out.length; i++) {
            out[i] = (nibbles[p] << 4) | nibbles[p + 1];
            p += 2;
        }
    }

    function _allNibbles(bytes[] memory keys) private pure returns (bytes[] memory out) {
        out = new bytes[](keys.length);
        for (uint256 i; i < keys.length; i++) {
            out[i] = _nibbles(keys[i]);
        }
    }

    function _nibbles(bytes memory key) private pure returns (bytes memory out) {
        out = new bytes(key.length * 2);
        for (uint256 i; i < key.length; i++) {
            out[2 * i] = key[i] >> 4;
            out[2 * i + 1] = key[i] & 0x0f;
        }
    }

    function _maxLength(bytes[] memory keys) private pure returns (uint256 max) {
        for (uint256 i; i < keys.length; i++) {
            if (keys[i].length > max) max = keys[i].length;
        }
    }
}
