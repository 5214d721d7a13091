// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RLPWriter} from "./utils/RLPWriter.sol";
import {RLPReader} from "../src/lib/RLPReader.sol";

/// @notice Exposes RLPReader through external calls so that tests can catch its reverts.
contract RLPHarness {
    using RLPReader for RLPReader.Item;

    error DepthLimit();

    function listLength(bytes memory data) external pure returns (uint256) {
        return RLPReader.toItem(data).readList().length;
    }

    function element(bytes memory data, uint256 index) external pure returns (bytes memory) {
        return RLPReader.toItem(data).readList()[index].readRaw();
    }

    function readBytes(bytes memory data) external pure returns (bytes memory) {
        return RLPReader.toItem(data).readBytes();
    }

    function readUint256(bytes memory data) external pure returns (uint256) {
        return RLPReader.toItem(data).readUint256();
    }

    function readBytes32(bytes memory data) external pure returns (bytes32) {
        return RLPReader.toItem(data).readBytes32();
    }

    function isEmptyString(bytes memory data) external pure returns (bool) {
        return RLPReader.toItem(data).isEmptyString();
    }

    /// @notice Decodes `data` completely (every nested item) and encodes it again.
    function roundTrip(bytes memory data) external pure returns (bytes memory) {
        return _roundTrip(RLPReader.toItem(data), 0);
    }

    function _roundTrip(RLPReader.Item memory item, uint256 depth) private pure returns (bytes memory) {
        if (depth > 24) revert DepthLimit();
        if (!item.isList()) return RLPWriter.encodeBytes(item.readBytes());
        RLPReader.Item[] memory items = item.readList();
        bytes[] memory encoded = new bytes[](items.length);
        for (uint256 i; i < items.length; i++) {
            encoded[i] = _roundTrip(items[i], depth + 1);
        }
        return RLPWriter.encodeList(encoded);
    }
}

contract RLPReaderTest is Test {
    RLPHarness internal h;

    function setUp() public {
        h = new RLPHarness();
    }

    // ----------------------------------------------------------------------------------------
    // known encodings (Ethereum wiki / Yellow Paper examples)
    // ----------------------------------------------------------------------------------------

    function test_Strings() public view {
        assertEq(h.readBytes(hex"83646f67"), bytes("dog"));
        assertEq(h.readBytes(hex"80"), bytes(""));
        assertEq(h.readBytes(hex"0f"), hex"0f");
        assertEq(h.readBytes(hex"00"), hex"00");
        assertEq(h.readBytes(hex"7f"), hex"7f");
        assertEq(h.readBytes(hex"8180"), hex"80");
        bytes memory lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
        assertEq(lorem.length, 56);
        assertEq(h.readBytes(bytes.concat(hex"b838", lorem)), lorem);
        assertTrue(h.isEmptyString(hex"80"));
        assertFalse(h.isEmptyString(hex"c0"));
        assertFalse(h.isEmptyString(hex"00"));
    }

    function test_LongString() public view {
        bytes memory payload = new bytes(1024);
        payload[1023] = 0x01;
        assertEq(h.readBytes(bytes.concat(hex"b90400", payload)), payload);
    }

    function test_Integers() public view {
        assertEq(h.readUint256(hex"80"), 0);
        assertEq(h.readUint256(hex"0f"), 15);
        assertEq(h.readUint256(hex"820400"), 1024);
        assertEq(h.readUint256(hex"8180"), 128);
        assertEq(
            h.readUint256(hex"a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), type(uint256).max
        );
        assertEq(
            h.readBytes32(hex"a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"),
            bytes32(0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20)
        );
    }

    function test_Lists() public view {
        assertEq(h.listLength(hex"c0"), 0);
        assertEq(h.listLength(hex"c88363617483646f67"), 2);
        assertEq(h.element(hex"c88363617483646f67", 0), hex"83636174");
        assertEq(h.element(hex"c88363617483646f67", 1), hex"83646f67");
        // The set-theoretical representation of three: [ [], [[]], [ [], [[]] ] ]
        assertEq(h.listLength(hex"c7c0c1c0c3c0c1c0"), 3);
        assertEq(h.element(hex"c7c0c1c0c3c0c1c0", 2), hex"c3c0c1c0");
        assertEq(h.roundTrip(hex"c7c0c1c0c3c0c1c0"), hex"c7c0c1c0c3c0c1c0");
    }

    function test_LongList() public view {
        bytes[] memory items = new bytes[](20);
        for (uint256 i; i < items.length; i++) {
            items[i] = RLPWriter.encodeBytes("abc");
        }
        bytes memory encoded = RLPWriter.encodeList(items);
        assertEq(uint8(encoded[0]), 0xf8, "long list prefix");
        assertEq(h.listLength(encoded), 20);
        assertEq(h.roundTrip(encoded), encoded);
    }

    // ----------------------------------------------------------------------------------------
    // rejected encodings
    // ----------------------------------------------------------------------------------------

    function test_RevertWhen_Empty() public {
        vm.expectRevert(RLPReader.RLPEmptyInput.selector);
        h.readBytes("");
        vm.expectRevert(RLPReader.RLPEmptyInput.selector);
        h.listLength("");
    }

    function test_RevertWhen_NonCanonicalSingleByte() public {
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readBytes(hex"8100");
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readBytes(hex"817f");
    }

    function test_RevertWhen_NonCanonicalLongForm() public {
        // Long form for a 1-byte length below 56.
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readBytes(hex"b80161");
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.listLength(hex"f80180");
        // Length with a leading zero byte.
        bytes memory payload = new bytes(56);
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readBytes(bytes.concat(hex"b90038", payload));
    }

    function test_RevertWhen_Truncated() public {
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.readBytes(hex"83646f");
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.readBytes(hex"b9"); // length bytes missing
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.readBytes(hex"bbffffffff00"); // huge length
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.readBytes(hex"bfffffffffffffffff"); // 2**64 - 1 bytes
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.listLength(hex"c3836364");
    }

    function test_RevertWhen_ElementRunsPastItsList() public {
        // Outer list [c2 83 64, 6f, 67]: its first element is a list of 2 bytes whose string
        // claims 3 bytes. The bytes after it belong to the outer list, not to it.
        bytes memory outer = hex"c5c283646f67";
        assertEq(h.listLength(outer), 3);
        bytes memory first = h.element(outer, 0);
        assertEq(first, hex"c28364");
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.listLength(first);
        vm.expectRevert(RLPReader.RLPTruncated.selector);
        h.roundTrip(outer);
    }

    function test_RevertWhen_TrailingBytes() public {
        vm.expectRevert(RLPReader.RLPTrailingBytes.selector);
        h.readBytes(hex"83646f6700");
        vm.expectRevert(RLPReader.RLPTrailingBytes.selector);
        h.listLength(hex"c0c0");
        vm.expectRevert(RLPReader.RLPTrailingBytes.selector);
        h.readUint256(hex"0101");
    }

    function test_RevertWhen_WrongType() public {
        vm.expectRevert(RLPReader.RLPNotAList.selector);
        h.listLength(hex"83646f67");
        vm.expectRevert(RLPReader.RLPNotAList.selector);
        h.listLength(hex"05");
        vm.expectRevert(RLPReader.RLPNotAString.selector);
        h.readBytes(hex"c0");
        vm.expectRevert(RLPReader.RLPNotAString.selector);
        h.readUint256(hex"c180");
    }

    function test_RevertWhen_BadIntegers() public {
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readUint256(hex"00"); // zero is the empty string
        vm.expectRevert(RLPReader.RLPNonCanonical.selector);
        h.readUint256(hex"820001"); // leading zero
        vm.expectRevert(RLPReader.RLPUnexpectedLength.selector);
        h.readUint256(hex"a1010000000000000000000000000000000000000000000000000000000000000000");
        vm.expectRevert(RLPReader.RLPUnexpectedLength.selector);
        h.readBytes32(hex"9f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        vm.expectRevert(RLPReader.RLPUnexpectedLength.selector);
        h.readBytes32(hex"80");
    }

    // ----------------------------------------------------------------------------------------
    // fuzz
    // ----------------------------------------------------------------------------------------

    /// Arbitrary bytes either decode completely and re-encode to themselves (the decoder only
    /// accepts canonical encodings), or revert with one of RLPReader's errors, never a panic.
    function testFuzz_ArbitraryBytesDecodeCanonicallyOrRevertCleanly(bytes memory data) public view {
        try h.roundTrip(data) returns (bytes memory again) {
            assertEq(again, data, "decode then encode is the identity");
        } catch (bytes memory reason) {
            _assertRLPError(reason);
        }
    }

    /// Same with inputs that start like RLP lists, to get past the first header more often.
    function testFuzz_ListLikeBytes(uint8 prefix, bytes memory body) public view {
        bytes memory data = bytes.concat(bytes1(uint8(bound(prefix, 0xc0, 0xff))), body);
        try h.roundTrip(data) returns (bytes memory again) {
            assertEq(again, data, "decode then encode is the identity");
        } catch (bytes memory reason) {
            _assertRLPError(reason);
        }
    }

    /// Encodings of random nested structures decode to themselves.
    function testFuzz_EncodedStructuresDecode(uint256 seed) public view {
        bytes memory encoded = _randomItem(seed, 0);
        assertEq(h.roundTrip(encoded), encoded, "round trip");
    }

    function testFuzz_Uint256RoundTrip(uint256 value) public view {
        assertEq(h.readUint256(RLPWriter.encodeUint(value)), value);
    }

    function testFuzz_BytesRoundTrip(bytes memory data) public view {
        assertEq(h.readBytes(RLPWriter.encodeBytes(data)), data);
    }

    function _randomItem(uint256 seed, uint256 depth) internal pure returns (bytes memory) {
        seed = uint256(keccak256(abi.encode(seed, depth)));
        if (depth >= 4 || seed % 3 == 0) {
            // A string of 0-70 bytes, sometimes a single small byte.
            uint256 length = (seed >> 8) % 71;
            bytes memory data = new bytes(length);
            for (uint256 i; i < length; i++) {
                data[i] = bytes1(uint8(uint256(keccak256(abi.encode(seed, i)))));
            }
            return RLPWriter.encodeBytes(data);
        }
        uint256 count = (seed >> 8) % 8;
        bytes[] memory items = new bytes[](count);
        for (uint256 i; i < count; i++) {
            items[i] = _randomItem(seed + i, depth + 1);
        }
        return RLPWriter.encodeList(items);
    }

    function _assertRLPError(bytes memory reason) internal pure {
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes4 selector = reason.length >= 4 ? bytes4(reason) : bytes4(0);
        assertTrue(
            selector == RLPReader.RLPEmptyInput.selector || selector == RLPReader.RLPTruncated.selector
                || selector == RLPReader.RLPNonCanonical.selector || selector == RLPReader.RLPTrailingBytes.selector
                || selector == RLPReader.RLPNotAList.selector || selector == RLPReader.RLPNotAString.selector
                || selector == RLPReader.RLPUnexpectedLength.selector || selector == RLPHarness.DepthLimit.selector,
            "reverted with something other than an RLPReader error"
        );
    }
}
