// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title Withdrawals
/// @notice The L2 -> L1 withdrawal format shared by `L2WithdrawalQueue` (which records withdrawals
/// on L2) and `LanesPortal` (which proves and pays them on L1).
/// @dev A withdrawal with nonce `n` is recorded in the L2 queue's storage as
/// `withdrawals[n] = keccak256(abi.encode(n, sender, recipient, amount))`, and `withdrawals` is the
/// queue's first state variable (slot 0). Its storage slot is therefore
/// `keccak256(abi.encode(n, uint256(0)))`, and the key of that slot in the account's storage trie is
/// `keccak256(slot)`.
library Withdrawals {
    /// @notice Storage slot of the `withdrawals` mapping in `L2WithdrawalQueue`.
    uint256 internal constant WITHDRAWALS_MAPPING_SLOT = 0;

    /// @notice Hash that identifies a withdrawal and is stored under its nonce on L2.
    function hash(uint256 nonce, address sender, address recipient, uint256 amount) internal pure returns (bytes32) {
        return keccak256(abi.encode(nonce, sender, recipient, amount));
    }

    /// @notice Storage slot in `L2WithdrawalQueue` that holds the hash of withdrawal `nonce`.
    function storageSlot(uint256 nonce) internal pure returns (bytes32) {
        return keccak256(abi.encode(nonce, WITHDRAWALS_MAPPING_SLOT));
    }
}
