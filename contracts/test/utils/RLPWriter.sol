// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @notice Canonical RLP encoder for tests (the contracts only decode).
library RLPWriter {
    /// @notice Encodes `data` as an RLP string.
    function encodeBytes(bytes memory data) internal pure returns (bytes memory) {
        if (data.length == 1 && uint8(data[0]) < 0x80) return data;
        return bytes.concat(_header(0x80, data.length), data);
    }

    /// @notice Encodes `value` as an RLP integer (big-endian, no leading zeros; zero is empty).
    function encodeUint(uint256 value) internal pure returns (bytes memory) {
        return encodeBytes(trimmed(value));
    }

    /// @notice Encodes a list whose elements are already encoded.
    function encodeList(bytes[] memory encodedItems) internal pure returns (bytes memory) {
        bytes memory payload;
        for (uint256 i; i < encodedItems.length; i++) {
            payload = bytes.concat(payload, encodedItems[i]);
        }
        return bytes.concat(_header(0xc0, payload.length), payload);
    }

    /// @notice Two-element list helper.
    function encodeList(bytes memory a, bytes memory b) internal pure returns (bytes memory) {
        bytes[] memory items = new bytes[](2);
        items[0] = a;
        items[1] = b;
        return encodeList(items);
    }

    /// @notice Big-endian bytes of `value` without leading zeros.
    function trimmed(uint256 value) internal pure returns (bytes memory out) {
        uint256 length;
        for (uint256 v = value; v != 0; v >>= 8) {
            length++;
        }
        out = new bytes(length);
        for (uint256 i; i < length; i++) {
            // forge-lint: disable-next-line(unsafe-typecast)
            out[length - 1 - i] = bytes1(uint8(value >> (8 * i)));
        }
    }

    function _header(uint8 base, uint256 length) private pure returns (bytes memory) {
        // forge-lint: disable-next-line(unsafe-typecast)
        if (length < 56) return abi.encodePacked(uint8(base + length));
        bytes memory len = trimmed(length);
        return bytes.concat(abi.encodePacked(uint8(base + 55 + len.length)), len);
    }
}
