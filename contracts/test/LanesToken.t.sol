// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {LanesToken} from "../src/LanesToken.sol";

contract LanesTokenTest is Test {
    uint256 internal constant SUPPLY = 1_000_000 ether;

    LanesToken internal token;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA401);

    function setUp() public {
        vm.prank(alice);
        token = new LanesToken("Lanes", "LNS", SUPPLY);
    }

    // ----------------------------------------------------------------------------------------
    // metadata and construction
    // ----------------------------------------------------------------------------------------

    function test_Metadata() public view {
        assertEq(token.name(), "Lanes");
        assertEq(token.symbol(), "LNS");
        assertEq(uint256(token.decimals()), 18);
    }

    function test_ConstructorMintsToDeployer() public view {
        assertEq(token.totalSupply(), SUPPLY, "totalSupply");
        assertEq(token.balanceOf(alice), SUPPLY, "deployer balance");
        assertEq(token.balanceOf(bob), 0, "other balance");
    }

    function test_ConstructorEmitsMintTransfer() public {
        vm.expectEmit(true, true, false, true);
        emit LanesToken.Transfer(address(0), bob, 42);
        vm.prank(bob);
        new LanesToken("X", "X", 42);
    }

    function test_ZeroSupply() public {
        LanesToken t = new LanesToken("", "", 0);
        assertEq(t.totalSupply(), 0);
        assertEq(t.balanceOf(address(this)), 0);
    }

    // ----------------------------------------------------------------------------------------
    // transfer
    // ----------------------------------------------------------------------------------------

    function test_Transfer() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit LanesToken.Transfer(alice, bob, 1000);
        vm.prank(alice);
        assertTrue(token.transfer(bob, 1000), "transfer returns true");
        assertEq(token.balanceOf(alice), SUPPLY - 1000, "sender");
        assertEq(token.balanceOf(bob), 1000, "recipient");
        assertEq(token.totalSupply(), SUPPLY, "supply unchanged");
    }

    function test_TransferToSelf() public {
        vm.prank(alice);
        assertTrue(token.transfer(alice, 5));
        assertEq(token.balanceOf(alice), SUPPLY);
    }

    function test_TransferZero() public {
        vm.prank(bob);
        assertTrue(token.transfer(carol, 0));
        assertEq(token.balanceOf(carol), 0);
    }

    function test_RevertWhen_TransferExceedsBalance() public {
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InsufficientBalance.selector, bob, 0, 1));
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(alice, 1);
    }

    function test_RevertWhen_TransferToZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InvalidReceiver.selector, address(0)));
        vm.prank(alice);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(address(0), 1);
    }

    function testFuzz_TransferConservesSupply(address to, uint256 amount, uint256 second) public {
        vm.assume(to != address(0) && to != alice);
        amount = bound(amount, 0, SUPPLY);
        vm.prank(alice);
        assertTrue(token.transfer(to, amount));
        assertEq(token.balanceOf(alice) + token.balanceOf(to), SUPPLY, "sum of balances");
        assertEq(token.balanceOf(to), amount, "recipient");

        // Send some back: still conserved.
        second = bound(second, 0, amount);
        vm.prank(to);
        assertTrue(token.transfer(alice, second));
        assertEq(token.balanceOf(alice) + token.balanceOf(to), SUPPLY, "sum after return");
        assertEq(token.totalSupply(), SUPPLY, "totalSupply");
    }

    function testFuzz_RevertWhen_TransferMoreThanBalance(uint256 balance, uint256 amount) public {
        balance = bound(balance, 0, SUPPLY);
        amount = bound(amount, balance + 1, type(uint256).max);
        vm.prank(alice);
        assertTrue(token.transfer(bob, balance));
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InsufficientBalance.selector, bob, balance, amount));
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(carol, amount);
    }

    // ----------------------------------------------------------------------------------------
    // approve / transferFrom
    // ----------------------------------------------------------------------------------------

    function test_Approve() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit LanesToken.Approval(alice, bob, 500);
        vm.prank(alice);
        assertTrue(token.approve(bob, 500));
        assertEq(token.allowance(alice, bob), 500);

        vm.prank(alice);
        token.approve(bob, 7); // overwrite, not add
        assertEq(token.allowance(alice, bob), 7);
    }

    function test_RevertWhen_ApproveZeroSpender() public {
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InvalidSpender.selector, address(0)));
        vm.prank(alice);
        token.approve(address(0), 1);
    }

    function test_TransferFrom() public {
        vm.prank(alice);
        token.approve(bob, 500);

        vm.expectEmit(true, true, false, true, address(token));
        emit LanesToken.Transfer(alice, carol, 200);
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, carol, 200));

        assertEq(token.allowance(alice, bob), 300, "allowance spent");
        assertEq(token.balanceOf(carol), 200, "recipient");
        assertEq(token.balanceOf(alice), SUPPLY - 200, "owner");
    }

    function test_TransferFromInfiniteAllowanceIsNotSpent() public {
        vm.prank(alice);
        token.approve(bob, type(uint256).max);
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, carol, 1 ether));
        assertEq(token.allowance(alice, bob), type(uint256).max);
        assertEq(token.balanceOf(carol), 1 ether);
    }

    function test_RevertWhen_TransferFromExceedsAllowance() public {
        vm.prank(alice);
        token.approve(bob, 99);
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InsufficientAllowance.selector, bob, 99, 100));
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transferFrom(alice, carol, 100);
    }

    function test_RevertWhen_TransferFromWithoutApproval() public {
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InsufficientAllowance.selector, bob, 0, 1));
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transferFrom(alice, carol, 1);
    }

    function test_RevertWhen_TransferFromExceedsBalance() public {
        vm.prank(bob);
        token.approve(carol, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(LanesToken.InsufficientBalance.selector, bob, 0, 1));
        vm.prank(carol);
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transferFrom(bob, alice, 1);
    }

    function testFuzz_TransferFromSpendsExactly(uint256 allowed, uint256 amount) public {
        allowed = bound(allowed, 0, type(uint256).max - 1); // max is the infinite case
        amount = bound(amount, 0, allowed < SUPPLY ? allowed : SUPPLY);
        vm.prank(alice);
        token.approve(bob, allowed);
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, carol, amount));
        assertEq(token.allowance(alice, bob), allowed - amount, "allowance");
        assertEq(token.balanceOf(alice) + token.balanceOf(carol), SUPPLY, "conservation");
    }
}
