// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Withdrawals} from "./lib/Withdrawals.sol";

/// @title L2WithdrawalQueue
/// @notice L2 system contract that records withdrawals of ETH to L1. It lives at the fixed address
/// `0x4200000000000000000000000000000000000016` (`LanesPortal.L2_WITHDRAWAL_QUEUE`), installed in the
/// L2 genesis with this contract's runtime bytecode (`deployedBytecode`) and empty storage: it has no
/// constructor state to initialise.
/// @dev Storage layout (relied on by the L1 proof, see `Withdrawals`):
/// - slot 0: `withdrawals`, mapping nonce => keccak256(abi.encode(nonce, sender, l1Recipient, amount));
///   the entry of nonce `n` is at slot `keccak256(abi.encode(n, uint256(0)))`;
/// - slot 1: `withdrawalCount`, the next nonce.
/// Entries are written once and never cleared, so a withdrawal stays provable under every later
/// state root.
///
/// Burning: withdrawn ETH stays in this contract's balance. No code path sends ETH out of it (no
/// call, no selfdestruct, no receive/fallback that forwards), so that balance is out of circulation
/// for good, the L2 counterpart of the ETH the portal pays out on L1. The balance is therefore the
/// total ever withdrawn.
contract L2WithdrawalQueue {
    /// @notice Hash of each withdrawal by nonce (slot 0).
    mapping(uint256 nonce => bytes32 withdrawalHash) public withdrawals;
    /// @notice Number of withdrawals so far, i.e. the nonce of the next one (slot 1).
    uint256 public withdrawalCount;

    /// @notice `sender` burnt `amount` wei on L2 to be paid to `l1Recipient` on L1 once a batch
    /// holding this block is final.
    event WithdrawalInitiated(
        uint256 indexed nonce,
        address indexed sender,
        address indexed l1Recipient,
        uint256 amount,
        bytes32 withdrawalHash
    );

    /// @notice A withdrawal must carry some ETH.
    error ZeroAmount();
    /// @notice The L1 recipient cannot be the zero address.
    error ZeroRecipient();

    /// @notice Withdraws `msg.value` wei to `l1Recipient` on L1.
    /// @return nonce The withdrawal's nonce, its key in `withdrawals`.
    function withdraw(address l1Recipient) external payable returns (uint256 nonce) {
        if (msg.value == 0) revert ZeroAmount();
        if (l1Recipient == address(0)) revert ZeroRecipient();
        nonce = withdrawalCount++;
        bytes32 withdrawalHash = Withdrawals.hash(nonce, msg.sender, l1Recipient, msg.value);
        withdrawals[nonce] = withdrawalHash;
        emit WithdrawalInitiated(nonce, msg.sender, l1Recipient, msg.value, withdrawalHash);
    }

    /// @notice keccak256(abi.encode(nonce, sender, l1Recipient, amount)), the value stored for a
    /// withdrawal.
    function hashWithdrawal(uint256 nonce, address sender, address l1Recipient, uint256 amount)
        external
        pure
        returns (bytes32)
    {
        return Withdrawals.hash(nonce, sender, l1Recipient, amount);
    }

    /// @notice Storage slot holding withdrawal `nonce` (for `eth_getProof`).
    function withdrawalSlot(uint256 nonce) external pure returns (bytes32) {
        return Withdrawals.storageSlot(nonce);
    }
}
