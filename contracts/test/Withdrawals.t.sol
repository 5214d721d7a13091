// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RLPWriter} from "./utils/RLPWriter.sol";
import {TrieBuilder} from "./utils/TrieBuilder.sol";
import {ProofFixtures as F} from "./fixtures/ProofFixtures.sol";
import {LanesRollup} from "../src/LanesRollup.sol";
import {LanesPortal} from "../src/LanesPortal.sol";
import {L2WithdrawalQueue} from "../src/L2WithdrawalQueue.sol";
import {MerkleTrie} from "../src/lib/MerkleTrie.sol";
import {RLPReader} from "../src/lib/RLPReader.sol";

/// @notice Recipient that rejects ETH.
contract RejectingRecipient {
    receive() external payable {
        revert("no thanks");
    }
}

/// @notice Recipient that tries to finalize the same withdrawal again while being paid.
contract ReentrantRecipient {
    bytes public payload;
    bool public reentered;
    bool public reentrySucceeded;

    function arm(bytes calldata payload_) external {
        payload = payload_;
    }

    receive() external payable {
        if (payload.length == 0 || reentered) return;
        reentered = true;
        (reentrySucceeded,) = msg.sender.call(payload);
    }
}

/// L2 withdrawal queue (runs on L2) and proven withdrawals on L1, with real proofs from anvil.
contract WithdrawalsTest is Test {
    uint64 internal constant FINALIZATION = 1 days;
    uint256 internal constant START = 1_700_000_000;
    bytes32 internal constant GENESIS = keccak256("genesis");
    address internal constant QUEUE_ADDRESS = 0x4200000000000000000000000000000000000016;

    LanesRollup internal rollup;
    LanesPortal internal portal;
    address internal owner = address(0x0A11);
    address internal sequencer = address(0x5E0);
    address internal relayer = address(0x4E1A7E4);

    function setUp() public {
        vm.warp(START);
        rollup = new LanesRollup(owner, sequencer, GENESIS, FINALIZATION, 1 hours);
        portal = rollup.portal();
        // Batch 1 commits to the anvil state that holds the fixture withdrawals.
        _submitBatch(F.STATE_ROOT);
        vm.warp(START + FINALIZATION);
        vm.deal(address(portal), 10 ether);
    }

    // ----------------------------------------------------------------------------------------
    // L2WithdrawalQueue
    // ----------------------------------------------------------------------------------------

    function test_L2QueueAddressIsThePortals() public view {
        assertEq(portal.L2_WITHDRAWAL_QUEUE(), QUEUE_ADDRESS);
    }

    function test_L2WithdrawRecordsHashInSlot() public {
        L2WithdrawalQueue queue = _installQueue();
        address alice = address(0xA11CE);
        vm.deal(alice, 5 ether);
        bytes32 expected = keccak256(abi.encode(0, alice, address(0xB0B), 2 ether));

        vm.expectEmit(true, true, true, true, address(queue));
        emit L2WithdrawalQueue.WithdrawalInitiated(0, alice, address(0xB0B), 2 ether, expected);
        vm.prank(alice);
        assertEq(queue.withdraw{value: 2 ether}(address(0xB0B)), 0);

        assertEq(queue.withdrawals(0), expected);
        assertEq(queue.withdrawalCount(), 1);
        assertEq(queue.hashWithdrawal(0, alice, address(0xB0B), 2 ether), expected);
        // The layout the L1 proof relies on: withdrawals[n] at keccak256(abi.encode(n, 0)).
        bytes32 slot = keccak256(abi.encode(uint256(0), uint256(0)));
        assertEq(queue.withdrawalSlot(0), slot);
        assertEq(portal.withdrawalSlot(0), slot);
        assertEq(vm.load(address(queue), slot), expected);
        assertEq(uint256(vm.load(address(queue), bytes32(uint256(1)))), 1, "withdrawalCount in slot 1");

        vm.prank(alice);
        assertEq(queue.withdraw{value: 1 ether}(alice), 1);
        assertEq(vm.load(address(queue), keccak256(abi.encode(uint256(1), uint256(0)))), queue.withdrawals(1));
        // The ETH is burnt: it stays in the queue, which has no way to send it.
        assertEq(QUEUE_ADDRESS.balance, 3 ether);
    }

    function test_RevertWhen_L2WithdrawalInvalid() public {
        L2WithdrawalQueue queue = _installQueue();
        vm.expectRevert(L2WithdrawalQueue.ZeroAmount.selector);
        queue.withdraw(address(0xB0B));
        vm.deal(address(this), 1 ether);
        vm.expectRevert(L2WithdrawalQueue.ZeroRecipient.selector);
        queue.withdraw{value: 1}(address(0));
    }

    function test_L2QueueRejectsPlainTransfers() public {
        _installQueue();
        vm.deal(address(this), 1 ether);
        (bool ok,) = QUEUE_ADDRESS.call{value: 1}("");
        assertFalse(ok, "no receive: ETH only enters through withdraw");
    }

    // ----------------------------------------------------------------------------------------
    // finalizeWithdrawal: positive paths
    // ----------------------------------------------------------------------------------------

    function test_FinalizeWithdrawal() public {
        LanesPortal.WithdrawalTx memory w = _w0();
        bytes32 hash = keccak256(abi.encode(w.nonce, w.sender, w.recipient, w.amount));
        assertEq(portal.verifyWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof()), hash);

        vm.expectEmit(true, true, true, true, address(portal));
        emit LanesPortal.WithdrawalFinalized(w.nonce, hash, w.recipient, w.amount);
        vm.prank(relayer); // anyone may relay; the recipient is paid
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof());

        assertEq(w.recipient.balance, w.amount, "recipient paid");
        assertEq(address(portal).balance, 10 ether - w.amount);
        assertTrue(portal.finalizedWithdrawals(w.nonce));
    }

    function test_FinalizeSeveralWithdrawals() public {
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        portal.finalizeWithdrawal(_wLast(), 1, F.queueAccountProof(), F.wLastStorageProof());
        portal.finalizeWithdrawal(_wExt(), 1, F.queueAccountProof(), F.wExtStorageProof());
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT);
        assertEq(F.W_LAST_RECIPIENT.balance, F.W_LAST_AMOUNT);
        assertEq(F.W_EXT_RECIPIENT.balance, F.W_EXT_AMOUNT);
    }

    function test_WithdrawalProvableUnderLaterRoots() public {
        // A later batch with another root does not invalidate the old final one.
        _submitBatchAfter(1, keccak256("later root"));
        vm.warp(block.timestamp + FINALIZATION);
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT);
    }

    function test_FinalizeWithdrawalWhilePaused() public {
        vm.prank(owner);
        rollup.pause();
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT);
    }

    function test_DepositedETHPaysWithdrawals() public {
        vm.deal(address(portal), 0);
        address alice = address(0xA11CE);
        vm.deal(alice, 2 ether);
        vm.prank(alice, alice);
        portal.depositETH{value: 2 ether}(alice, 100_000);
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertEq(address(portal).balance, 1 ether);
    }

    // ----------------------------------------------------------------------------------------
    // finalizeWithdrawal: rejections
    // ----------------------------------------------------------------------------------------

    function test_RevertWhen_WithdrawalReplayed() public {
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalAlreadyFinalized.selector, 0));
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT, "paid once");
    }

    function test_RevertWhen_ReplayedUnderAnotherBatch() public {
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        _submitBatchAfter(1, F.STATE_ROOT); // the same state again in batch 2
        vm.warp(block.timestamp + FINALIZATION);
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalAlreadyFinalized.selector, 0));
        portal.finalizeWithdrawal(_w0(), 2, F.queueAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_ReentrantReplay() public {
        ReentrantRecipient template = new ReentrantRecipient();
        vm.etch(F.W0_RECIPIENT, address(template).code);
        ReentrantRecipient recipient = ReentrantRecipient(payable(F.W0_RECIPIENT));
        bytes[] memory accountProof = F.queueAccountProof();
        bytes[] memory storageProof = F.w0StorageProof();
        recipient.arm(abi.encodeCall(portal.finalizeWithdrawal, (_w0(), 1, accountProof, storageProof)));

        portal.finalizeWithdrawal(_w0(), 1, accountProof, storageProof);
        assertTrue(recipient.reentered(), "recipient tried again");
        assertFalse(recipient.reentrySucceeded(), "second payout refused");
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT, "paid once");
    }

    function test_RevertWhen_BatchNotFinalized() public {
        _submitBatchAfter(1, F.STATE_ROOT);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFinalized.selector, 2));
        portal.finalizeWithdrawal(_w0(), 2, F.queueAccountProof(), F.w0StorageProof());
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFinalized.selector, 2));
        portal.verifyWithdrawal(_w0(), 2, F.queueAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_BatchNotFound() public {
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 7));
        portal.finalizeWithdrawal(_w0(), 7, F.queueAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_ProvenAgainstWrongBatch() public {
        // Genesis is final but has another root.
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, 0));
        portal.finalizeWithdrawal(_w0(), 0, F.queueAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_WithdrawalFieldsAltered() public {
        LanesPortal.WithdrawalTx memory w = _w0();
        w.amount += 1;
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalNotProven.selector, 0));
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof());

        w = _w0();
        w.recipient = relayer;
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalNotProven.selector, 0));
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof());

        w = _w0();
        w.sender = relayer;
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalNotProven.selector, 0));
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_WithdrawalNeverMade() public {
        LanesPortal.WithdrawalTx memory w = _w0();
        w.nonce = F.ABSENT_AT_BRANCH_NONCE;
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalNotProven.selector, w.nonce));
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.absentAtBranchStorageProof());
        w.nonce = F.ABSENT_AT_LEAF_NONCE;
        vm.expectRevert(abi.encodeWithSelector(LanesPortal.WithdrawalNotProven.selector, w.nonce));
        portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.absentAtLeafStorageProof());
    }

    function test_RevertWhen_StorageProofOfAnotherWithdrawal() public {
        // W_LAST's own proof does not prove W0 (its slot path needs other nodes).
        vm.expectRevert();
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.wLastStorageProof());
        assertFalse(portal.finalizedWithdrawals(0));
    }

    function test_RevertWhen_AccountProofOfAnotherAccount() public {
        // The proof of STORAGE_ACCOUNT (whose storage root differs) cannot stand in for the queue's.
        vm.expectRevert();
        portal.finalizeWithdrawal(_w0(), 1, F.storageAccountProof(), F.w0StorageProof());
    }

    function test_RevertWhen_ProofsEmpty() public {
        vm.expectRevert(MerkleTrie.ProofTooShort.selector);
        portal.finalizeWithdrawal(_w0(), 1, new bytes[](0), F.w0StorageProof());
        vm.expectRevert(MerkleTrie.ProofTooShort.selector);
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), new bytes[](0));
    }

    /// A state in which the queue account does not exist: the exclusion proof is rejected.
    function test_RevertWhen_QueueAccountMissing() public {
        (bytes[] memory keys, bytes[] memory values) = _stateWith(address(0xDEAD), _account(bytes32(uint256(1))));
        _submitBatchAfter(1, TrieBuilder.root(keys, values));
        vm.warp(block.timestamp + FINALIZATION);
        bytes[] memory accountProof =
            TrieBuilder.proof(keys, values, abi.encodePacked(keccak256(abi.encodePacked(QUEUE_ADDRESS))));
        vm.expectRevert(LanesPortal.WithdrawalQueueAccountMissing.selector);
        portal.finalizeWithdrawal(_w0(), 2, accountProof, F.w0StorageProof());
    }

    /// A state whose queue account is not a four-field account.
    function test_RevertWhen_AccountMalformed() public {
        bytes[] memory fields = new bytes[](3);
        fields[0] = RLPWriter.encodeUint(0);
        fields[1] = RLPWriter.encodeUint(0);
        fields[2] = RLPWriter.encodeBytes(abi.encodePacked(F.QUEUE_STORAGE_ROOT));
        (bytes[] memory keys, bytes[] memory values) = _stateWith(QUEUE_ADDRESS, RLPWriter.encodeList(fields));
        _submitBatchAfter(1, TrieBuilder.root(keys, values));
        vm.warp(block.timestamp + FINALIZATION);
        bytes[] memory accountProof =
            TrieBuilder.proof(keys, values, abi.encodePacked(keccak256(abi.encodePacked(QUEUE_ADDRESS))));
        vm.expectRevert(LanesPortal.InvalidAccount.selector);
        portal.finalizeWithdrawal(_w0(), 2, accountProof, F.w0StorageProof());
    }

    /// A state built here with the queue's real storage root: the real storage proof goes through.
    function test_ProofsAgainstBuiltState() public {
        (bytes[] memory keys, bytes[] memory values) = _stateWith(QUEUE_ADDRESS, _account(F.QUEUE_STORAGE_ROOT));
        _submitBatchAfter(1, TrieBuilder.root(keys, values));
        vm.warp(block.timestamp + FINALIZATION);
        bytes[] memory accountProof =
            TrieBuilder.proof(keys, values, abi.encodePacked(keccak256(abi.encodePacked(QUEUE_ADDRESS))));
        portal.finalizeWithdrawal(_wExt(), 2, accountProof, F.wExtStorageProof());
        assertEq(F.W_EXT_RECIPIENT.balance, F.W_EXT_AMOUNT);
    }

    function test_RevertWhen_PayoutFails() public {
        vm.etch(F.W0_RECIPIENT, type(RejectingRecipient).runtimeCode);
        vm.expectRevert(
            abi.encodeWithSelector(LanesPortal.WithdrawalTransferFailed.selector, F.W0_RECIPIENT, F.W0_AMOUNT)
        );
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertFalse(portal.finalizedWithdrawals(0), "still claimable");

        // Once the recipient accepts ETH the withdrawal goes through.
        vm.etch(F.W0_RECIPIENT, "");
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
        assertEq(F.W0_RECIPIENT.balance, F.W0_AMOUNT);
    }

    function test_RevertWhen_PortalLacksFunds() public {
        vm.deal(address(portal), F.W0_AMOUNT - 1);
        vm.expectRevert(
            abi.encodeWithSelector(LanesPortal.WithdrawalTransferFailed.selector, F.W0_RECIPIENT, F.W0_AMOUNT)
        );
        portal.finalizeWithdrawal(_w0(), 1, F.queueAccountProof(), F.w0StorageProof());
    }

    // ----------------------------------------------------------------------------------------
    // fuzz
    // ----------------------------------------------------------------------------------------

    /// Any withdrawal other than the proven one is rejected, and nothing is paid.
    function testFuzz_RejectsAnyOtherWithdrawal(uint256 nonce, address sender, address recipient, uint256 amount)
        public
    {
        LanesPortal.WithdrawalTx memory w = LanesPortal.WithdrawalTx(nonce, sender, recipient, amount);
        vm.assume(keccak256(abi.encode(w)) != keccak256(abi.encode(_w0())));
        uint256 balance = address(portal).balance;
        try portal.finalizeWithdrawal(w, 1, F.queueAccountProof(), F.w0StorageProof()) {
            fail("an unproven withdrawal was paid");
        } catch (bytes memory reason) {
            // forge-lint: disable-next-line(unsafe-typecast)
            bytes4 selector = bytes4(reason);
            assertTrue(
                selector == LanesPortal.WithdrawalNotProven.selector
                    || selector == MerkleTrie.ProofNodeHashMismatch.selector
                    || selector == MerkleTrie.ProofTooShort.selector || selector == MerkleTrie.ProofTooLong.selector,
                "unexpected error"
            );
        }
        assertEq(address(portal).balance, balance);
    }

    /// Corrupting any byte of either proof makes finalization fail.
    function testFuzz_RejectsCorruptedProofs(bool accountSide, uint256 nodeIndex, uint256 byteIndex, uint8 flip)
        public
    {
        bytes[] memory accountProof = F.queueAccountProof();
        bytes[] memory storageProof = F.w0StorageProof();
        bytes[] memory target = accountSide ? accountProof : storageProof;
        nodeIndex = bound(nodeIndex, 0, target.length - 1);
        byteIndex = bound(byteIndex, 0, target[nodeIndex].length - 1);
        target[nodeIndex][byteIndex] ^= bytes1(uint8(bound(flip, 1, 255)));
        vm.expectRevert(abi.encodeWithSelector(MerkleTrie.ProofNodeHashMismatch.selector, nodeIndex));
        portal.finalizeWithdrawal(_w0(), 1, accountProof, storageProof);
    }

    // ----------------------------------------------------------------------------------------
    // helpers
    // ----------------------------------------------------------------------------------------

    function _w0() internal pure returns (LanesPortal.WithdrawalTx memory) {
        return LanesPortal.WithdrawalTx(F.W0_NONCE, F.W0_SENDER, F.W0_RECIPIENT, F.W0_AMOUNT);
    }

    function _wLast() internal pure returns (LanesPortal.WithdrawalTx memory) {
        return LanesPortal.WithdrawalTx(F.W_LAST_NONCE, F.W_LAST_SENDER, F.W_LAST_RECIPIENT, F.W_LAST_AMOUNT);
    }

    function _wExt() internal pure returns (LanesPortal.WithdrawalTx memory) {
        return LanesPortal.WithdrawalTx(F.W_EXT_NONCE, F.W_EXT_SENDER, F.W_EXT_RECIPIENT, F.W_EXT_AMOUNT);
    }

    function _installQueue() internal returns (L2WithdrawalQueue) {
        vm.etch(QUEUE_ADDRESS, type(L2WithdrawalQueue).runtimeCode);
        return L2WithdrawalQueue(QUEUE_ADDRESS);
    }

    function _submitBatch(bytes32 root) internal {
        vm.prank(sequencer);
        rollup.submitBatch(
            LanesRollup.BatchHeader({
                batchIndex: 1,
                firstBlock: 1,
                lastBlock: 4,
                prevStateRoot: GENESIS,
                newStateRoot: root,
                l1MessagesIncluded: 0
            }),
            "batch"
        );
    }

    function _submitBatchAfter(uint256 previous, bytes32 root) internal {
        (, uint64 lastBlock, bytes32 prevRoot) = rollup.lastBatch();
        vm.prank(sequencer);
        rollup.submitBatch(
            LanesRollup.BatchHeader({
                batchIndex: previous + 1,
                firstBlock: lastBlock + 1,
                lastBlock: lastBlock + 1,
                prevStateRoot: prevRoot,
                newStateRoot: root,
                l1MessagesIncluded: 0
            }),
            "batch"
        );
    }

    /// rlp([nonce 0, balance 0, storageRoot, codeHash of empty code])
    function _account(bytes32 storageRoot) internal pure returns (bytes memory) {
        bytes[] memory fields = new bytes[](4);
        fields[0] = RLPWriter.encodeUint(0);
        fields[1] = RLPWriter.encodeUint(0);
        fields[2] = RLPWriter.encodeBytes(abi.encodePacked(storageRoot));
        fields[3] = RLPWriter.encodeBytes(abi.encodePacked(keccak256("")));
        return RLPWriter.encodeList(fields);
    }

    /// A small state trie: a few filler accounts plus `account` => `value`.
    function _stateWith(address account, bytes memory value)
        internal
        pure
        returns (bytes[] memory keys, bytes[] memory values)
    {
        keys = new bytes[](4);
        values = new bytes[](4);
        for (uint160 i; i < 3; i++) {
            keys[i] = abi.encodePacked(keccak256(abi.encodePacked(address(0x1000 + i))));
            values[i] = _account(bytes32(uint256(i + 1)));
        }
        keys[3] = abi.encodePacked(keccak256(abi.encodePacked(account)));
        values[3] = value;
    }
}
