// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title RLPReader
/// @notice Strict decoder for Ethereum's Recursive Length Prefix encoding (Yellow Paper, appendix B),
/// working in place on a `bytes memory` buffer.
/// @dev Every accepted encoding is canonical: decoding then re-encoding gives the input back byte for
/// byte. Rejected: a single byte below 0x80 wrapped in a string header, a long-form length below 56,
/// a length with leading zero bytes, any item running past the end of its buffer or its parent list,
/// and bytes left over after the item a function was asked to read. Every failure is one of the
/// custom errors below; no input makes the decoder panic or read outside its buffer.
library RLPReader {
    /// @notice A view of an RLP item (header plus payload) inside a memory buffer.
    /// @param length Length in bytes of the whole item (header plus payload), as far as it is known:
    /// the reader checks that the header's payload length fits within it.
    /// @param ptr Memory address of the item's first byte.
    struct Item {
        uint256 length;
        uint256 ptr;
    }

    /// @notice The input holds no bytes where an item was expected.
    error RLPEmptyInput();
    /// @notice An item's header announces more bytes than its buffer holds.
    error RLPTruncated();
    /// @notice An item is not encoded in its unique shortest form.
    error RLPNonCanonical();
    /// @notice Bytes follow the item that was read.
    error RLPTrailingBytes();
    /// @notice A list was expected but the item is a string.
    error RLPNotAList();
    /// @notice A string was expected but the item is a list.
    error RLPNotAString();
    /// @notice A string has the wrong length for the type read (not 32 bytes for `bytes32`, over 32
    /// bytes for `uint256`).
    error RLPUnexpectedLength();

    /// @notice Wraps `data` as an item spanning the whole buffer (nothing is checked yet).
    function toItem(bytes memory data) internal pure returns (Item memory item) {
        uint256 ptr;
        assembly ("memory-safe") {
            ptr := add(data, 0x20)
        }
        return Item(data.length, ptr);
    }

    /// @notice Whether `item` is a list; checks its header, not the exact length.
    function isList(Item memory item) internal pure returns (bool) {
        (,, bool list) = _header(item);
        return list;
    }

    /// @notice Decodes `item` as a list and returns views of its elements, in order.
    /// @dev The list must span `item` exactly; each element's header is checked against the list's
    /// payload, so a returned element is safe to decode further.
    function readList(Item memory item) internal pure returns (Item[] memory elements) {
        (uint256 offset, uint256 payloadLength, bool list) = _header(item);
        if (!list) revert RLPNotAList();
        if (offset + payloadLength != item.length) revert RLPTrailingBytes();

        uint256 start = item.ptr + offset;
        uint256 end = start + payloadLength;

        // First pass counts the elements, second pass records them.
        uint256 count;
        for (uint256 ptr = start; ptr < end; count++) {
            ptr += _itemLength(Item(end - ptr, ptr));
        }
        elements = new Item[](count);
        uint256 cursor = start;
        for (uint256 i; i < count; i++) {
            uint256 length = _itemLength(Item(end - cursor, cursor));
            elements[i] = Item(length, cursor);
            cursor += length;
        }
    }

    /// @notice Decodes `item` as a string spanning it exactly and returns a copy of its payload.
    function readBytes(Item memory item) internal pure returns (bytes memory out) {
        (uint256 ptr, uint256 length) = _stringPayload(item);
        out = new bytes(length);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), ptr, length)
        }
    }

    /// @notice Decodes `item` as a string of exactly 32 bytes.
    function readBytes32(Item memory item) internal pure returns (bytes32 value) {
        (uint256 ptr, uint256 length) = _stringPayload(item);
        if (length != 32) revert RLPUnexpectedLength();
        assembly ("memory-safe") {
            value := mload(ptr)
        }
    }

    /// @notice Decodes `item` as a big-endian unsigned integer: at most 32 bytes, no leading zero
    /// byte (zero itself is the empty string).
    function readUint256(Item memory item) internal pure returns (uint256 value) {
        (uint256 ptr, uint256 length) = _stringPayload(item);
        if (length > 32) revert RLPUnexpectedLength();
        if (length == 0) return 0;
        uint256 first;
        assembly ("memory-safe") {
            value := shr(sub(256, mul(length, 8)), mload(ptr))
            first := byte(0, mload(ptr))
        }
        if (first == 0) revert RLPNonCanonical();
    }

    /// @notice Whether `item` is exactly the empty string (0x80).
    function isEmptyString(Item memory item) internal pure returns (bool result) {
        if (item.length != 1) return false;
        uint256 ptr = item.ptr;
        assembly ("memory-safe") {
            result := eq(byte(0, mload(ptr)), 0x80)
        }
    }

    /// @notice Returns a copy of the raw encoding of `item` (header and payload).
    function readRaw(Item memory item) internal pure returns (bytes memory out) {
        uint256 length = _itemLength(item);
        if (length != item.length) revert RLPTrailingBytes();
        uint256 ptr = item.ptr;
        out = new bytes(length);
        assembly ("memory-safe") {
            mcopy(add(out, 0x20), ptr, length)
        }
    }

    /// @dev Payload location of a string item that spans `item` exactly.
    function _stringPayload(Item memory item) private pure returns (uint256 ptr, uint256 length) {
        (uint256 offset, uint256 payloadLength, bool list) = _header(item);
        if (list) revert RLPNotAString();
        if (offset + payloadLength != item.length) revert RLPTrailingBytes();
        return (item.ptr + offset, payloadLength);
    }

    /// @dev Total length (header plus payload) of the item starting at `item.ptr`, checked to fit in
    /// `item.length` bytes.
    function _itemLength(Item memory item) private pure returns (uint256) {
        (uint256 offset, uint256 payloadLength,) = _header(item);
        return offset + payloadLength;
    }

    /// @dev Decodes and validates the header of the item at `item.ptr`: returns the payload's offset
    /// from `item.ptr`, its length, and whether the item is a list. Guarantees
    /// `offset + payloadLength <= item.length`.
    function _header(Item memory item) private pure returns (uint256 offset, uint256 payloadLength, bool list) {
        uint256 available = item.length;
        if (available == 0) revert RLPEmptyInput();
        uint256 ptr = item.ptr;
        uint256 prefix;
        assembly ("memory-safe") {
            prefix := byte(0, mload(ptr))
        }

        if (prefix < 0x80) {
            // A single byte is its own encoding.
            return (0, 1, false);
        }
        if (prefix < 0xb8) {
            // Short string: 0-55 bytes.
            payloadLength = prefix - 0x80;
            if (payloadLength >= available) revert RLPTruncated();
            if (payloadLength == 1) {
                uint256 only;
                assembly ("memory-safe") {
                    only := byte(0, mload(add(ptr, 1)))
                }
                if (only < 0x80) revert RLPNonCanonical();
            }
            return (1, payloadLength, false);
        }
        if (prefix < 0xc0) {
            // Long string: the next 1-8 bytes hold the payload length.
            (offset, payloadLength) = _longLength(ptr, available, prefix - 0xb7);
            return (offset, payloadLength, false);
        }
        if (prefix < 0xf8) {
            // Short list: 0-55 bytes of payload.
            payloadLength = prefix - 0xc0;
            if (payloadLength >= available) revert RLPTruncated();
            return (1, payloadLength, true);
        }
        // Long list: the next 1-8 bytes hold the payload length.
        (offset, payloadLength) = _longLength(ptr, available, prefix - 0xf7);
        return (offset, payloadLength, true);
    }

    /// @dev Reads a long-form length of `lengthOfLength` (1-8) bytes after the prefix at `ptr`.
    function _longLength(uint256 ptr, uint256 available, uint256 lengthOfLength)
        private
        pure
        returns (uint256 offset, uint256 payloadLength)
    {
        offset = 1 + lengthOfLength;
        if (offset > available) revert RLPTruncated();
        uint256 first;
        assembly ("memory-safe") {
            let word := mload(add(ptr, 1))
            first := byte(0, word)
            payloadLength := shr(sub(256, mul(lengthOfLength, 8)), word)
        }
        if (first == 0 || payloadLength < 56) revert RLPNonCanonical();
        // payloadLength < 2**64 and offset <= 9, so neither side can overflow.
        if (payloadLength > available - offset) revert RLPTruncated();
    }
}
