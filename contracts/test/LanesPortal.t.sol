// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {LanesRollup} from "../src/LanesRollup.sol";
import {LanesPortal} from "../src/LanesPortal.sol";

/// @notice A contract that deposits through the portal (its L2 sender is aliased).
contract DepositingContract {
    function deposit(LanesPortal portal, address to) external payable {
        portal.depositETH{value: msg.value}(to, 50_000);
    }
}

/// Deposits and forced transactions: the L1 -> L2 message queue.
contract LanesPortalTest is Test {
    uint64 internal constant START = 1_700_000_000;

    LanesRollup internal rollup;
    LanesPortal internal portal;
    address internal owner = address(0x0A11);
    address internal sequencer = address(0x5E0);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    function setUp() public {
        vm.warp(START);
        rollup = new LanesRollup(owner, sequencer, keccak256("genesis"), 1 days, 1 hours);
        portal = rollup.portal();
        vm.deal(alice, 100 ether);
    }

    function test_DepositETH() public {
        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.TransactionDeposited(0, alice, bob, 1 ether, 1 ether, 100_000, "", START);
        vm.prank(alice, alice);
        uint256 nonce = portal.depositETH{value: 1 ether}(bob, 100_000);

        assertEq(nonce, 0);
        assertEq(portal.depositNonce(), 1);
        assertEq(address(portal).balance, 1 ether, "portal holds the ETH");
        assertEq(alice.balance, 99 ether);
        (bytes32 hash, uint64 enqueuedAt) = portal.queue(0);
        assertEq(hash, portal.l1MessageHash(0, alice, bob, 1 ether, 1 ether, 100_000, ""));
        assertEq(hash, keccak256(abi.encode(0, alice, bob, 1 ether, 1 ether, uint64(100_000), keccak256(""))));
        assertEq(uint256(enqueuedAt), START);
        assertEq(uint256(portal.queuedAt(0)), START);
    }

    function test_DepositNoncesAreMonotonic() public {
        for (uint64 i; i < 5; i++) {
            vm.expectEmit(true, true, true, true, address(portal));
            emit LanesPortal.TransactionDeposited(i, alice, bob, i, i, 21_000, "", START + i);
            vm.warp(START + i);
            vm.prank(alice, alice);
            assertEq(portal.depositETH{value: i}(bob, 21_000), i);
        }
        assertEq(portal.depositNonce(), 5);
        assertEq(uint256(portal.queuedAt(4)), START + 4);
    }

    function test_DepositByPlainTransfer() public {
        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.TransactionDeposited(0, alice, alice, 2 ether, 2 ether, 100_000, "", START);
        vm.prank(alice, alice);
        (bool ok,) = address(portal).call{value: 2 ether}("");
        assertTrue(ok);
        assertEq(portal.depositNonce(), 1);
        assertEq(address(portal).balance, 2 ether);
    }

    function test_ContractSenderIsAliased() public {
        DepositingContract depositor = new DepositingContract();
        address aliased = address(uint160(address(depositor)) + uint160(0x1111000000000000000000000000000000001111));
        assertEq(portal.applyL1ToL2Alias(address(depositor)), aliased);

        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.TransactionDeposited(0, aliased, bob, 1 ether, 1 ether, 50_000, "", START);
        vm.prank(alice, alice);
        depositor.deposit{value: 1 ether}(portal, bob);
    }

    function test_AliasWrapsAround() public view {
        assertEq(
            portal.applyL1ToL2Alias(address(type(uint160).max)),
            address(uint160(0x1111000000000000000000000000000000001110))
        );
    }

    function test_EnqueueTransaction() public {
        bytes memory data = abi.encodeWithSignature("transfer(address,uint256)", bob, 5);
        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.TransactionDeposited(0, alice, bob, 0, 3 ether, 200_000, data, START);
        vm.prank(alice, alice);
        uint256 nonce = portal.enqueueTransaction(bob, 3 ether, 200_000, data);
        assertEq(nonce, 0);
        (bytes32 hash,) = portal.queue(0);
        assertEq(hash, portal.l1MessageHash(0, alice, bob, 0, 3 ether, 200_000, data));
        assertEq(address(portal).balance, 0);
    }

    function test_DepositsAndForcedTransactionsShareNonces() public {
        vm.startPrank(alice, alice);
        assertEq(portal.depositETH{value: 1}(bob, 21_000), 0);
        assertEq(portal.enqueueTransaction(bob, 0, 30_000, hex"01"), 1);
        assertEq(portal.enqueueTransaction{value: 5}(bob, 5, 30_000, ""), 2);
        assertEq(portal.depositETH{value: 1}(bob, 21_000), 3);
        vm.stopPrank();
        assertEq(portal.depositNonce(), 4);
        assertEq(address(portal).balance, 7);
    }

    function test_RevertWhen_TargetIsZero() public {
        vm.expectRevert(LanesPortal.ZeroTarget.selector);
        vm.prank(alice);
        portal.depositETH{value: 1}(address(0), 100_000);
        vm.expectRevert(LanesPortal.ZeroTarget.selector);
        vm.prank(alice);
        portal.enqueueTransaction(address(0), 0, 100_000, hex"6000");
    }

    function test_RevertWhen_GasLimitTooLow() public {
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.GasLimitTooLow.selector, 20_999, 21_000));
        vm.prank(alice);
        portal.depositETH{value: 1}(bob, 20_999);

        bytes memory data = new bytes(100);
        assertEq(uint256(portal.minimumGasLimit(100)), 25_000);
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.GasLimitTooLow.selector, 24_999, 25_000));
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, 24_999, data);
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, 25_000, data);
    }

    function test_RevertWhen_GasLimitTooHigh() public {
        uint64 max = portal.MAX_GAS_LIMIT();
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.GasLimitTooHigh.selector, max + 1, max));
        vm.prank(alice);
        portal.depositETH{value: 1}(bob, max + 1);
        vm.prank(alice);
        portal.depositETH{value: 1}(bob, max);
    }

    function test_RevertWhen_L1BlockGasBudgetExceeded() public {
        uint64 max = portal.MAX_GAS_LIMIT(); // 16.7M; the budget is 30M per L1 block
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, max, "");
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.L1BlockGasBudgetExceeded.selector, max, max));
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, max, "");
        // What is left of the budget can still be used...
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, 30_000_000 - max, "");
        // ...and the next L1 block has a fresh one.
        vm.roll(block.number + 1);
        vm.prank(alice);
        portal.enqueueTransaction(bob, 0, max, "");
        assertEq(portal.depositNonce(), 3);
    }

    function test_RevertWhen_QueueIndexOutOfRange() public {
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.QueueIndexOutOfRange.selector, 0, 0));
        portal.queuedAt(0);
    }

    function testFuzz_Deposit(address from, address to, uint96 amount, uint64 gasLimit) public {
        vm.assume(to != address(0) && from != address(portal) && from != address(vm));
        gasLimit = uint64(bound(gasLimit, 21_000, portal.MAX_GAS_LIMIT()));
        vm.deal(from, amount);
        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.TransactionDeposited(0, from, to, amount, amount, gasLimit, "", START);
        vm.prank(from, from);
        portal.depositETH{value: amount}(to, gasLimit);
        assertEq(address(portal).balance, amount);
    }
}
