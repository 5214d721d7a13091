// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RLPWriter} from "./utils/RLPWriter.sol";
import {TrieBuilder} from "./utils/TrieBuilder.sol";
import {ProofFixtures as F} from "./fixtures/ProofFixtures.sol";
import {MerkleTrie} from "../src/lib/MerkleTrie.sol";
import {RLPReader} from "../src/lib/RLPReader.sol";
import {Withdrawals} from "../src/lib/Withdrawals.sol";

/// @notice Exposes MerkleTrie through an external call so that tests can catch its reverts.
contract TrieHarness {
    function get(bytes memory key, bytes[] memory proof, bytes32 root) external pure returns (bool, bytes memory) {
        return MerkleTrie.get(key, proof, root);
    }
}

contract MerkleTrieTest is Test {
    using RLPReader for RLPReader.Item;

    TrieHarness internal h;

    function setUp() public {
        h = new TrieHarness();
    }

    // ----------------------------------------------------------------------------------------
    // real proofs from anvil (test/fixtures/ProofFixtures.sol)
    // ----------------------------------------------------------------------------------------

    function test_AccountProofOfWithdrawalQueue() public view {
        (bool exists, bytes memory account) =
            h.get(_accountKey(0x4200000000000000000000000000000000000016), F.queueAccountProof(), F.STATE_ROOT);
        assertTrue(exists, "account exists");
        RLPReader.Item[] memory fields = RLPReader.toItem(account).readList();
        assertEq(fields.length, 4, "account fields");
        assertEq(fields[0].readUint256(), 0, "nonce");
        assertEq(fields[1].readUint256(), F.QUEUE_BALANCE, "balance");
        assertEq(fields[2].readBytes32(), F.QUEUE_STORAGE_ROOT, "storage root");
        assertEq(fields[3].readBytes32(), F.QUEUE_CODE_HASH, "code hash");
    }

    function test_StorageProofsOfWithdrawals() public view {
        _assertWithdrawalProven(F.W0_NONCE, F.W0_SENDER, F.W0_RECIPIENT, F.W0_AMOUNT, F.w0StorageProof());
        _assertWithdrawalProven(
            F.W_LAST_NONCE, F.W_LAST_SENDER, F.W_LAST_RECIPIENT, F.W_LAST_AMOUNT, F.wLastStorageProof()
        );
        _assertWithdrawalProven(F.W_EXT_NONCE, F.W_EXT_SENDER, F.W_EXT_RECIPIENT, F.W_EXT_AMOUNT, F.wExtStorageProof());
    }

    function test_ExclusionProofEndingAtBranch() public view {
        (bool exists, bytes memory value) = h.get(
            _slotKey(Withdrawals.storageSlot(F.ABSENT_AT_BRANCH_NONCE)),
            F.absentAtBranchStorageProof(),
            F.QUEUE_STORAGE_ROOT
        );
        assertFalse(exists);
        assertEq(value.length, 0);
    }

    function test_ExclusionProofEndingAtLeaf() public view {
        (bool exists,) = h.get(
            _slotKey(Withdrawals.storageSlot(F.ABSENT_AT_LEAF_NONCE)),
            F.absentAtLeafStorageProof(),
            F.QUEUE_STORAGE_ROOT
        );
        assertFalse(exists);
    }

    function test_ExclusionProofOfAccount() public view {
        (bool exists,) = h.get(_accountKey(F.ABSENT_ACCOUNT), F.absentAccountProof(), F.STATE_ROOT);
        assertFalse(exists);
    }

    /// The exclusion proof of one key proves nothing about another: a key whose path leaves the
    /// proof needs a node the proof lacks.
    function test_ExclusionProofDoesNotCoverOtherKeys() public view {
        bytes memory key = _slotKey(Withdrawals.storageSlot(F.W0_NONCE));
        bytes[][2] memory proofs = [F.absentAtBranchStorageProof(), F.absentAtLeafStorageProof()];
        for (uint256 i; i < 2; i++) {
            try h.get(key, proofs[i], F.QUEUE_STORAGE_ROOT) returns (bool exists, bytes memory) {
                assertFalse(exists, "cannot prove W0 with another key's proof");
            } catch (bytes memory reason) {
                _assertTrieError(reason);
            }
        }
    }

    /// Our reference builder reproduces the storage root anvil computed for a known storage, and
    /// the very proof anvil gave for one of its slots.
    function test_BuilderMatchesAnvil() public view {
        uint256[] memory slots = F.storageSlots();
        uint256[] memory values = F.storageValues();
        bytes[] memory keys = new bytes[](slots.length);
        bytes[] memory vals = new bytes[](slots.length);
        for (uint256 i; i < slots.length; i++) {
            keys[i] = _slotKey(bytes32(slots[i]));
            vals[i] = RLPWriter.encodeUint(values[i]);
        }
        assertEq(TrieBuilder.root(keys, vals), F.STORAGE_ACCOUNT_ROOT, "storage root");

        bytes[] memory built = TrieBuilder.proof(keys, vals, _slotKey(bytes32(F.STORAGE_ACCOUNT_SLOT)));
        bytes[] memory anvil = F.storageAccountSlotProof();
        assertEq(built.length, anvil.length, "proof length");
        for (uint256 i; i < built.length; i++) {
            assertEq(built[i], anvil[i], "proof node");
        }

        (bool exists, bytes memory account) =
            h.get(_accountKey(F.STORAGE_ACCOUNT), F.storageAccountProof(), F.STATE_ROOT);
        assertTrue(exists);
        assertEq(
            RLPReader.toItem(account).readList()[2].readBytes32(), F.STORAGE_ACCOUNT_ROOT, "account's storage root"
        );

        for (uint256 i; i < slots.length; i++) {
            (bool found, bytes memory value) =
                h.get(keys[i], TrieBuilder.proof(keys, vals, keys[i]), F.STORAGE_ACCOUNT_ROOT);
            assertTrue(found, "slot found");
            assertEq(RLPReader.toItem(value).readUint256(), values[i], "slot value");
        }
    }

    // ----------------------------------------------------------------------------------------
    // malformed proofs of real tries
    // ----------------------------------------------------------------------------------------

    function test_RevertWhen_WrongRoot() public {
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, 0));
        h.get(_slotKey(Withdrawals.storageSlot(F.W0_NONCE)), F.w0StorageProof(), F.STATE_ROOT);
    }

    function test_RevertWhen_ProofTooShort() public {
        bytes[] memory proof = F.wExtStorageProof();
        assembly {
            mstore(proof, sub(mload(proof), 1))
        }
        vm.expectRevert(MerkleTrie.ProofTooShort.selector);
        h.get(_slotKey(Withdrawals.storageSlot(F.W_EXT_NONCE)), proof, F.QUEUE_STORAGE_ROOT);

        vm.expectRevert(MerkleTrie.ProofTooShort.selector);
        h.get(_slotKey(Withdrawals.storageSlot(F.W_EXT_NONCE)), new bytes[](0), F.QUEUE_STORAGE_ROOT);
    }

    function test_RevertWhen_ProofTooLong() public {
        bytes[] memory proof = F.w0StorageProof();
        bytes[] memory longer = new bytes[](proof.length + 1);
        for (uint256 i; i < proof.length; i++) {
            longer[i] = proof[i];
        }
        longer[proof.length] = proof[0];
        vm.expectRevert(MerkleTrie.ProofTooLong.selector);
        h.get(_slotKey(Withdrawals.storageSlot(F.W0_NONCE)), longer, F.QUEUE_STORAGE_ROOT);
    }

    function test_RevertWhen_NodesOutOfOrder() public {
        bytes[] memory proof = F.wExtStorageProof();
        (proof[1], proof[2]) = (proof[2], proof[1]);
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, 1));
        h.get(_slotKey(Withdrawals.storageSlot(F.W_EXT_NONCE)), proof, F.QUEUE_STORAGE_ROOT);
    }

    // ----------------------------------------------------------------------------------------
    // small tries from the reference builder: embedded nodes, branch values, empty trie
    // ----------------------------------------------------------------------------------------

    function test_EmptyTrie() public view {
        bytes32 emptyRoot = TrieBuilder.root(new bytes[](0), new bytes[](0));
        assertEq(emptyRoot, MerkleTrie.EMPTY_TRIE_ROOT);
        (bool exists,) = h.get(hex"1234", new bytes[](0), emptyRoot);
        assertFalse(exists);
        bytes[] memory proof = new bytes[](1);
        proof[0] = hex"80";
        (exists,) = h.get(hex"1234", proof, emptyRoot);
        assertFalse(exists);
    }

    function test_SingleLeafRootShorterThan32Bytes() public view {
        bytes[] memory keys = new bytes[](1);
        bytes[] memory vals = new bytes[](1);
        keys[0] = hex"01";
        vals[0] = hex"02";
        bytes[] memory proof = TrieBuilder.proof(keys, vals, keys[0]);
        assertEq(proof.length, 1);
        assertTrue(proof[0].length < 32, "root node is short but still hashed");
        (bool exists, bytes memory value) = h.get(keys[0], proof, TrieBuilder.root(keys, vals));
        assertTrue(exists);
        assertEq(value, hex"02");
        (exists,) = h.get(hex"03", proof, TrieBuilder.root(keys, vals));
        assertFalse(exists);
    }

    /// One-byte keys and values make every node below the root shorter than 32 bytes, so they are
    /// embedded: the proof is the root alone.
    function test_EmbeddedNodes() public view {
        bytes[] memory keys = new bytes[](4);
        bytes[] memory vals = new bytes[](4);
        keys[0] = hex"10";
        keys[1] = hex"11";
        keys[2] = hex"20";
        keys[3] = hex"35";
        for (uint8 i; i < 4; i++) {
            vals[i] = abi.encodePacked(0xa0 + i);
        }
        bytes32 root = TrieBuilder.root(keys, vals);
        for (uint256 i; i < 4; i++) {
            bytes[] memory proof = TrieBuilder.proof(keys, vals, keys[i]);
            assertEq(proof.length, 1, "embedded children are not separate proof nodes");
            (bool exists, bytes memory value) = h.get(keys[i], proof, root);
            assertTrue(exists);
            assertEq(value, vals[i]);
        }
        // Absent: empty branch slot, divergent embedded leaf, divergent embedded branch.
        bytes[3] memory absent = [bytes(hex"40"), bytes(hex"21"), bytes(hex"12")];
        for (uint256 i; i < absent.length; i++) {
            (bool exists,) = h.get(absent[i], TrieBuilder.proof(keys, vals, absent[i]), root);
            assertFalse(exists);
        }
    }

    /// Keys that are prefixes of other keys keep their value in a branch's 17th slot.
    function test_BranchValues() public view {
        bytes[] memory keys = new bytes[](4);
        bytes[] memory vals = new bytes[](4);
        keys[0] = hex"ab";
        keys[1] = hex"abcd";
        keys[2] = hex"abce";
        keys[3] = hex"ab12345678901234567890123456789012345678";
        vals[0] = "value at the branch";
        vals[1] = "cd";
        vals[2] = "a value long enough to force its leaf to be hashed";
        vals[3] = "x";
        bytes32 root = TrieBuilder.root(keys, vals);
        for (uint256 i; i < keys.length; i++) {
            (bool exists, bytes memory value) = h.get(keys[i], TrieBuilder.proof(keys, vals, keys[i]), root);
            assertTrue(exists);
            assertEq(value, vals[i]);
        }
        (bool found,) = h.get(hex"abcf", TrieBuilder.proof(keys, vals, hex"abcf"), root);
        assertFalse(found);
        (found,) = h.get(hex"a0", TrieBuilder.proof(keys, vals, hex"a0"), root);
        assertFalse(found, "key ending inside the extension");
        (found,) = h.get(hex"abc0", TrieBuilder.proof(keys, vals, hex"abc0"), root);
        assertFalse(found);
    }

    // ----------------------------------------------------------------------------------------
    // invalid nodes (hand-built, referenced by hash from the root)
    // ----------------------------------------------------------------------------------------

    function test_RevertWhen_NodeHasWrongArity() public {
        bytes[] memory items = new bytes[](3);
        items[0] = hex"20";
        items[1] = hex"01";
        items[2] = hex"02";
        _expectInvalidRoot(RLPWriter.encodeList(items), hex"00", MerkleTrie.InvalidTrieNode.selector);
    }

    function test_RevertWhen_NodeIsNotAList() public {
        _expectInvalidRoot(RLPWriter.encodeBytes("not a node"), hex"00", RLPReader.RLPNotAList.selector);
    }

    function test_RevertWhen_BadHexPrefix() public {
        // flag nibble 4
        _expectInvalidRoot(_leaf(hex"4012", hex"01"), hex"12", MerkleTrie.InvalidTrieNode.selector);
        // even path with a non-zero padding nibble
        _expectInvalidRoot(_leaf(hex"2512", hex"01"), hex"12", MerkleTrie.InvalidTrieNode.selector);
        // empty path string
        _expectInvalidRoot(_leaf("", hex"01"), hex"12", MerkleTrie.InvalidTrieNode.selector);
    }

    function test_RevertWhen_LeafValueEmpty() public {
        _expectInvalidRoot(_leaf(hex"2012", ""), hex"12", MerkleTrie.InvalidTrieNode.selector);
    }

    function test_RevertWhen_ExtensionPathEmpty() public {
        _expectInvalidRoot(
            RLPWriter.encodeList(RLPWriter.encodeBytes(hex"00"), RLPWriter.encodeBytes(abi.encode(bytes32(0)))),
            hex"12",
            MerkleTrie.InvalidTrieNode.selector
        );
    }

    function test_RevertWhen_ExtensionChildEmpty() public {
        _expectInvalidRoot(
            RLPWriter.encodeList(RLPWriter.encodeBytes(hex"0012"), hex"80"),
            hex"12",
            MerkleTrie.InvalidTrieNode.selector
        );
    }

    function test_RevertWhen_ChildReferenceNot32Bytes() public {
        bytes[] memory items = _emptyBranch();
        items[1] = RLPWriter.encodeBytes(new bytes(31));
        _expectInvalidRoot(RLPWriter.encodeList(items), hex"12", MerkleTrie.InvalidTrieNode.selector);
    }

    function test_RevertWhen_EmbeddedChildTooLong() public {
        bytes[] memory items = _emptyBranch();
        items[1] = _leaf(hex"32", new bytes(40)); // a 44-byte node must be hashed, not embedded
        _expectInvalidRoot(RLPWriter.encodeList(items), hex"12", MerkleTrie.InvalidTrieNode.selector);
    }

    function test_RevertWhen_BranchValueNotAString() public {
        bytes[] memory items = _emptyBranch();
        items[16] = hex"c0";
        _expectInvalidRoot(RLPWriter.encodeList(items), "", RLPReader.RLPNotAString.selector);
    }

    // ----------------------------------------------------------------------------------------
    // fuzz
    // ----------------------------------------------------------------------------------------

    /// Random tries (1-12 distinct keys of 1-3 bytes or 32 bytes, values of 1-40 bytes, so that
    /// nodes are embedded or hashed): every key proves its value, absent keys prove absence.
    function testFuzz_BuiltTries(uint256 seed, uint8 count, uint8 keyLengthChoice) public view {
        uint256 n = bound(count, 1, 12);
        uint256 keyLength = [uint256(1), 2, 3, 32][keyLengthChoice % 4];
        (bytes[] memory keys, bytes[] memory vals) = _randomTrie(seed, n, keyLength);
        bytes32 root = TrieBuilder.root(keys, vals);

        for (uint256 i; i < keys.length; i++) {
            (bool exists, bytes memory value) = h.get(keys[i], TrieBuilder.proof(keys, vals, keys[i]), root);
            assertTrue(exists, "present key proven");
            assertEq(value, vals[i], "value");
        }
        bytes memory other = _randomBytes(seed ^ 0xabcdef, keyLength);
        bool present;
        for (uint256 i; i < keys.length; i++) {
            if (keccak256(keys[i]) == keccak256(other)) present = true;
        }
        (bool found,) = h.get(other, TrieBuilder.proof(keys, vals, other), root);
        assertEq(found, present, "absent key");
    }

    /// Changing any byte of any node of a real proof breaks the hash chain at that node.
    function testFuzz_MutatedProofNodeFails(uint256 nodeIndex, uint256 byteIndex, uint8 flip) public {
        bytes[] memory proof = F.wExtStorageProof();
        nodeIndex = bound(nodeIndex, 0, proof.length - 1);
        byteIndex = bound(byteIndex, 0, proof[nodeIndex].length - 1);
        proof[nodeIndex][byteIndex] ^= bytes1(uint8(bound(flip, 1, 255)));
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, nodeIndex));
        h.get(_slotKey(Withdrawals.storageSlot(F.W_EXT_NONCE)), proof, F.QUEUE_STORAGE_ROOT);
    }

    /// A proof checked against another key never proves that key present (it may prove it absent
    /// when the paths part at a missing child or a leaf, or fail on a node the proof lacks).
    function testFuzz_ProofForOtherKeyFails(bytes32 otherKey) public view {
        vm.assume(otherKey != keccak256(abi.encode(Withdrawals.storageSlot(F.W_EXT_NONCE))));
        try h.get(abi.encodePacked(otherKey), F.wExtStorageProof(), F.QUEUE_STORAGE_ROOT) returns (
            bool exists, bytes memory
        ) {
            assertFalse(exists, "another key proven present");
        } catch (bytes memory reason) {
            _assertTrieError(reason);
        }
    }

    /// Same for account proofs, with the key changed in one nibble only.
    function testFuzz_AccountProofForNearbyKeyFails(uint8 nibbleIndex, uint8 flip) public view {
        bytes memory key = _accountKey(0x4200000000000000000000000000000000000016);
        uint256 i = bound(nibbleIndex, 0, 63);
        uint8 mask = uint8(bound(flip, 1, 15));
        key[i / 2] ^= bytes1(i % 2 == 0 ? mask << 4 : mask);
        try h.get(key, F.queueAccountProof(), F.STATE_ROOT) returns (bool exists, bytes memory) {
            assertFalse(exists, "another account proven present");
        } catch (bytes memory reason) {
            _assertTrieError(reason);
        }
    }

    function testFuzz_WrongRootFails(bytes32 root) public {
        vm.assume(root != F.QUEUE_STORAGE_ROOT);
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, 0));
        h.get(_slotKey(Withdrawals.storageSlot(F.W0_NONCE)), F.w0StorageProof(), root);
    }

    /// Arbitrary bytes as the (correctly hashed) root node, and as a second node it references:
    /// the verifier returns or reverts with its own errors, never panics.
    function testFuzz_ArbitraryNodesRevertCleanly(bytes memory node, bytes memory child, bytes memory key) public view {
        bytes[] memory proof = new bytes[](2);
        proof[0] = node;
        proof[1] = child;
        try h.get(key, proof, keccak256(node)) returns (bool, bytes memory) {}
        catch (bytes memory reason) {
            _assertTrieError(reason);
        }
    }

    /// Structured garbage: lists of 2 or 17 random items, the shapes the verifier dispatches on.
    function testFuzz_RandomListNodesRevertCleanly(uint256 seed, bool branch, bytes memory key) public view {
        uint256 count = branch ? 17 : 2;
        bytes[] memory items = new bytes[](count);
        for (uint256 i; i < count; i++) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            if (r % 4 == 0) {
                items[i] = hex"80";
            } else if (r % 4 == 1) {
                items[i] = RLPWriter.encodeBytes(abi.encodePacked(bytes32(r)));
            } else if (r % 4 == 2) {
                items[i] = _leaf(_randomBytes(r, 1 + (r >> 8) % 4), _randomBytes(r >> 1, 1 + (r >> 16) % 8));
            } else {
                items[i] = RLPWriter.encodeBytes(_randomBytes(r, (r >> 8) % 40));
            }
        }
        bytes[] memory proof = new bytes[](1);
        proof[0] = RLPWriter.encodeList(items);
        try h.get(key, proof, keccak256(proof[0])) returns (bool, bytes memory) {}
        catch (bytes memory reason) {
            _assertTrieError(reason);
        }
    }

    // ----------------------------------------------------------------------------------------
    // helpers
    // ----------------------------------------------------------------------------------------

    function _assertWithdrawalProven(
        uint256 nonce,
        address sender,
        address recipient,
        uint256 amount,
        bytes[] memory proof
    ) internal view {
        (bool exists, bytes memory value) = h.get(_slotKey(Withdrawals.storageSlot(nonce)), proof, F.QUEUE_STORAGE_ROOT);
        assertTrue(exists, "withdrawal slot exists");
        assertEq(
            bytes32(RLPReader.toItem(value).readUint256()),
            Withdrawals.hash(nonce, sender, recipient, amount),
            "stored withdrawal hash"
        );
    }

    function _expectInvalidRoot(bytes memory node, bytes memory key, bytes4 selector) internal {
        bytes[] memory proof = new bytes[](1);
        proof[0] = node;
        vm.expectRevert(selector);
        h.get(key, proof, keccak256(node));
    }

    function _leaf(bytes memory encodedPath, bytes memory value) internal pure returns (bytes memory) {
        return RLPWriter.encodeList(RLPWriter.encodeBytes(encodedPath), RLPWriter.encodeBytes(value));
    }

    function _emptyBranch() internal pure returns (bytes[] memory items) {
        items = new bytes[](17);
        for (uint256 i; i < 17; i++) {
            items[i] = hex"80";
        }
    }

    function _randomTrie(uint256 seed, uint256 n, uint256 keyLength)
        internal
        pure
        returns (bytes[] memory keys, bytes[] memory vals)
    {
        keys = new bytes[](n);
        vals = new bytes[](n);
        uint256 count;
        for (uint256 attempt; count < n && attempt < 4 * n; attempt++) {
            bytes memory key = _randomBytes(uint256(keccak256(abi.encode(seed, attempt))), keyLength);
            bool duplicate;
            for (uint256 j; j < count; j++) {
                if (keccak256(keys[j]) == keccak256(key)) duplicate = true;
            }
            if (duplicate) continue;
            uint256 r = uint256(keccak256(abi.encode(seed, attempt, "value")));
            keys[count] = key;
            vals[count++] = _randomBytes(r, 1 + r % 40);
        }
        assembly {
            mstore(keys, count)
            mstore(vals, count)
        }
    }

    function _randomBytes(uint256 seed, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i; i < length; i += 32) {
            bytes32 word = keccak256(abi.encode(seed, i));
            for (uint256 j; j < 32 && i + j < length; j++) {
                out[i + j] = word[j];
            }
        }
    }

    function _accountKey(address account) internal pure returns (bytes memory) {
        return abi.encodePacked(keccak256(abi.encodePacked(account)));
    }

    function _slotKey(bytes32 slot) internal pure returns (bytes memory) {
        return abi.encodePacked(keccak256(abi.encode(slot)));
    }

    function _assertTrieError(bytes memory reason) internal pure {
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes4 selector = reason.length >= 4 ? bytes4(reason) : bytes4(0);
        assertTrue(
            selector == MerkleTrie.ProofNodeHashMismatch.selector || selector == MerkleTrie.ProofTooShort.selector
                || selector == MerkleTrie.ProofTooLong.selector || selector == MerkleTrie.InvalidTrieNode.selector
                || selector == RLPReader.RLPEmptyInput.selector || selector == RLPReader.RLPTruncated.selector
                || selector == RLPReader.RLPNonCanonical.selector || selector == RLPReader.RLPTrailingBytes.selector
                || selector == RLPReader.RLPNotAList.selector || selector == RLPReader.RLPNotAString.selector
                || selector == RLPReader.RLPUnexpectedLength.selector,
            "reverted with something other than a MerkleTrie or RLPReader error"
        );
    }
}
