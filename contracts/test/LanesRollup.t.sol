// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {LanesRollup} from "../src/LanesRollup.sol";
import {LanesPortal} from "../src/LanesPortal.sol";

contract LanesRollupTest is Test {
    uint64 internal constant FINALIZATION = 1 days;
    uint64 internal constant DELAY = 1 hours;
    uint256 internal constant START = 1_700_000_000;
    bytes32 internal constant GENESIS = keccak256("genesis state root");
    bytes internal constant DATA = "compressed blocks";

    LanesRollup internal rollup;
    LanesPortal internal portal;
    address internal owner = address(0x0A11);
    address internal sequencer = address(0x5E0);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    function setUp() public {
        vm.warp(START);
        rollup = new LanesRollup(owner, sequencer, GENESIS, FINALIZATION, DELAY);
        portal = rollup.portal();
        vm.deal(alice, 100 ether);
    }

    // ----------------------------------------------------------------------------------------
    // construction
    // ----------------------------------------------------------------------------------------

    function test_Constructor() public view {
        assertEq(rollup.owner(), owner, "owner");
        assertEq(rollup.sequencer(), sequencer, "sequencer");
        assertEq(rollup.pendingOwner(), address(0), "pending owner");
        assertFalse(rollup.paused());
        assertEq(uint256(rollup.finalizationPeriod()), FINALIZATION);
        assertEq(uint256(rollup.forceInclusionDelay()), DELAY);
        assertEq(address(portal.rollup()), address(rollup), "portal points back");
        assertEq(portal.depositNonce(), 0);

        (uint256 index, uint64 lastBlock, bytes32 root) = rollup.lastBatch();
        assertEq(index, 0, "genesis index");
        assertEq(uint256(lastBlock), 0, "genesis block");
        assertEq(root, GENESIS, "genesis root");
        assertEq(rollup.lastBatchIndex(), 0);
        assertEq(rollup.l1MessagesIncluded(), 0);
        assertTrue(rollup.isFinalized(0), "genesis is final at once");
        assertEq(rollup.finalizedStateRoot(0), GENESIS);
        assertEq(rollup.lastFinalizedBatchIndex(), 0);
    }

    function test_ConstructorEmitsEvents() public {
        vm.expectEmit(true, true, false, true);
        emit LanesRollup.OwnershipTransferred(address(0), owner);
        vm.expectEmit(true, true, false, true);
        emit LanesRollup.SequencerChanged(address(0), sequencer);
        new LanesRollup(owner, sequencer, GENESIS, FINALIZATION, DELAY);
    }

    function test_RevertWhen_ConstructorGetsZeroValues() public {
        vm.expectRevert(LanesRollup.ZeroAddress.selector);
        new LanesRollup(address(0), sequencer, GENESIS, FINALIZATION, DELAY);
        vm.expectRevert(LanesRollup.ZeroAddress.selector);
        new LanesRollup(owner, address(0), GENESIS, FINALIZATION, DELAY);
        vm.expectRevert(LanesRollup.ZeroStateRoot.selector);
        new LanesRollup(owner, sequencer, bytes32(0), FINALIZATION, DELAY);
    }

    function test_RevertWhen_PortalGetsZeroRollup() public {
        vm.expectRevert(LanesPortal.ZeroRollup.selector);
        new LanesPortal(address(0));
    }

    // ----------------------------------------------------------------------------------------
    // submitting batches
    // ----------------------------------------------------------------------------------------

    function test_SubmitBatch() public {
        LanesRollup.BatchHeader memory h = _header(1, 1, 10, GENESIS, _root(1), 0);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit LanesRollup.BatchSubmitted(
            1, 1, 10, GENESIS, _root(1), keccak256(DATA), 0, LanesRollup.DataAvailability.Calldata
        );
        vm.prank(sequencer);
        rollup.submitBatch(h, DATA);

        (uint256 index, uint64 lastBlock, bytes32 root) = rollup.lastBatch();
        assertEq(index, 1);
        assertEq(uint256(lastBlock), 10);
        assertEq(root, _root(1));
        LanesRollup.Batch memory b = rollup.getBatch(1);
        assertEq(b.stateRoot, _root(1));
        assertEq(b.dataHash, keccak256(DATA));
        assertEq(uint256(b.lastBlock), 10);
        assertEq(uint256(b.submittedAt), START);
        assertEq(uint256(b.l1MessagesIncluded), 0);
        assertEq(rollup.stateRootAt(1), _root(1));
    }

    function test_SubmitConsecutiveBatches() public {
        _submit(1, 1, 1, 0); // a single block
        _submit(2, 2, 5, 0);
        _submit(3, 6, 100, 0);
        (uint256 index, uint64 lastBlock, bytes32 root) = rollup.lastBatch();
        assertEq(index, 3);
        assertEq(uint256(lastBlock), 100);
        assertEq(root, _root(3));
        assertEq(rollup.stateRootAt(2), _root(2));
    }

    function test_SubmitBatchWithBlobs() public {
        bytes32[] memory hashes = new bytes32[](2);
        hashes[0] = bytes32(uint256(0x01) << 248 | 1);
        hashes[1] = bytes32(uint256(0x01) << 248 | 2);
        vm.blobhashes(hashes);
        bytes32 expected = keccak256(abi.encodePacked(hashes[0], hashes[1]));

        vm.expectEmit(true, false, false, true, address(rollup));
        emit LanesRollup.BatchSubmitted(1, 1, 4, GENESIS, _root(1), expected, 0, LanesRollup.DataAvailability.Blobs);
        vm.prank(sequencer);
        rollup.submitBatchWithBlobs(_header(1, 1, 4, GENESIS, _root(1), 0));
        assertEq(rollup.getBatch(1).dataHash, expected);
    }

    function test_RevertWhen_BlobBatchHasNoBlobs() public {
        vm.expectRevert(LanesRollup.NoBlobs.selector);
        vm.prank(sequencer);
        rollup.submitBatchWithBlobs(_header(1, 1, 4, GENESIS, _root(1), 0));
    }

    function test_RevertWhen_CallerIsNotSequencer() public {
        LanesRollup.BatchHeader memory h = _header(1, 1, 10, GENESIS, _root(1), 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotSequencer.selector, alice));
        vm.prank(alice);
        rollup.submitBatch(h, DATA);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotSequencer.selector, owner));
        vm.prank(owner);
        rollup.submitBatch(h, DATA);

        bytes32[] memory hashes = new bytes32[](1);
        hashes[0] = bytes32(uint256(1));
        vm.blobhashes(hashes);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotSequencer.selector, alice));
        vm.prank(alice);
        rollup.submitBatchWithBlobs(h);
    }

    function test_RevertWhen_BatchIndexSkipsAhead() public {
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.UnexpectedBatchIndex.selector, 1, 2));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 1, 10, GENESIS, _root(2), 0), DATA);
    }

    function test_RevertWhen_BatchIndexRepeats() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.UnexpectedBatchIndex.selector, 2, 1));
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 11, 20, _root(1), _root(2), 0), DATA);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.UnexpectedBatchIndex.selector, 2, 0));
        vm.prank(sequencer);
        rollup.submitBatch(_header(0, 11, 20, _root(1), _root(2), 0), DATA);
    }

    function test_RevertWhen_BlocksHaveAGap() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NonContiguousBlocks.selector, 11, 12));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 12, 20, _root(1), _root(2), 0), DATA);
    }

    function test_RevertWhen_BlocksOverlap() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NonContiguousBlocks.selector, 11, 10));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 10, 20, _root(1), _root(2), 0), DATA);
    }

    function test_RevertWhen_FirstBatchDoesNotStartAtBlockOne() public {
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NonContiguousBlocks.selector, 1, 0));
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 0, 10, GENESIS, _root(1), 0), DATA);
    }

    function test_RevertWhen_BlockRangeInvalid() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.InvalidBlockRange.selector, 11, 10));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 10, _root(1), _root(2), 0), DATA);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.InvalidBlockRange.selector, 11, type(uint64).max));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, type(uint64).max, _root(1), _root(2), 0), DATA);
    }

    function test_RevertWhen_PrevStateRootIsWrong() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.PrevStateRootMismatch.selector, _root(1), GENESIS));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 20, GENESIS, _root(2), 0), DATA);
    }

    function test_RevertWhen_NewStateRootIsZero() public {
        vm.expectRevert(LanesRollup.ZeroStateRoot.selector);
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 1, 10, GENESIS, bytes32(0), 0), DATA);
    }

    function test_RevertWhen_BatchDataEmpty() public {
        vm.expectRevert(LanesRollup.EmptyBatchData.selector);
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 1, 10, GENESIS, _root(1), 0), "");
    }

    // ----------------------------------------------------------------------------------------
    // finalization
    // ----------------------------------------------------------------------------------------

    function test_FinalizationPeriod() public {
        _submit(1, 1, 10, 0);
        vm.warp(START + 100);
        _submit(2, 11, 20, 0);

        assertFalse(rollup.isFinalized(1));
        assertEq(rollup.lastFinalizedBatchIndex(), 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFinalized.selector, 1));
        rollup.finalizedStateRoot(1);

        vm.warp(START + FINALIZATION - 1);
        assertFalse(rollup.isFinalized(1), "one second early");

        vm.warp(START + FINALIZATION);
        assertTrue(rollup.isFinalized(1), "final at submission + period");
        assertFalse(rollup.isFinalized(2));
        assertEq(rollup.finalizedStateRoot(1), _root(1));
        assertEq(rollup.lastFinalizedBatchIndex(), 1);

        vm.warp(START + 100 + FINALIZATION);
        assertTrue(rollup.isFinalized(2));
        assertEq(rollup.lastFinalizedBatchIndex(), 2);
        assertFalse(rollup.isFinalized(3), "batch that does not exist");
    }

    function test_RevertWhen_BatchDoesNotExist() public {
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 1));
        rollup.finalizedStateRoot(1);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 1));
        rollup.getBatch(1);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 1));
        rollup.stateRootAt(1);
    }

    function test_ZeroFinalizationPeriod() public {
        LanesRollup instant = new LanesRollup(owner, sequencer, GENESIS, 0, DELAY);
        vm.prank(sequencer);
        instant.submitBatch(_header(1, 1, 1, GENESIS, _root(1), 0), DATA);
        assertTrue(instant.isFinalized(1));
        assertEq(instant.finalizedStateRoot(1), _root(1));
    }

    function testFuzz_LastFinalizedBatchIndex(uint8 count, uint256 elapsed) public {
        uint256 n = bound(count, 1, 30);
        for (uint64 i = 1; i <= n; i++) {
            vm.warp(START + i * 1 hours);
            _submit(i, i, i, 0);
        }
        vm.warp(START + n * 1 hours + bound(elapsed, 0, 2 days));
        uint256 expected;
        for (uint256 i = 1; i <= n; i++) {
            if (rollup.isFinalized(i)) expected = i;
        }
        assertEq(rollup.lastFinalizedBatchIndex(), expected);
    }

    // ----------------------------------------------------------------------------------------
    // reverting batches
    // ----------------------------------------------------------------------------------------

    function test_RevertBatches() public {
        _deposit();
        _submit(1, 1, 10, 0);
        _submit(2, 11, 20, 1);
        _submit(3, 21, 30, 1);

        vm.expectEmit(true, false, false, true, address(rollup));
        emit LanesRollup.BatchesReverted(2, 3);
        vm.prank(owner);
        rollup.revertBatches(2);

        (uint256 index, uint64 lastBlock, bytes32 root) = rollup.lastBatch();
        assertEq(index, 1);
        assertEq(uint256(lastBlock), 10);
        assertEq(root, _root(1));
        assertEq(rollup.l1MessagesIncluded(), 0, "message count rolled back");
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 2));
        rollup.getBatch(2);

        // The sequencer resubmits from batch 2 with another root.
        bytes32 replacement = keccak256("replacement");
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 20, _root(1), replacement, 1), DATA);
        assertEq(rollup.stateRootAt(2), replacement);
    }

    function test_RevertWhen_RevertingFinalizedBatch() public {
        _submit(1, 1, 10, 0);
        vm.warp(START + FINALIZATION);
        _submit(2, 11, 20, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchAlreadyFinalized.selector, 1));
        vm.prank(owner);
        rollup.revertBatches(1);
        vm.prank(owner);
        rollup.revertBatches(2); // not final yet
        assertEq(rollup.lastBatchIndex(), 1);
    }

    function test_RevertWhen_RevertingMissingBatch() public {
        _submit(1, 1, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 0));
        vm.prank(owner);
        rollup.revertBatches(0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.BatchNotFound.selector, 2));
        vm.prank(owner);
        rollup.revertBatches(2);
    }

    // ----------------------------------------------------------------------------------------
    // administration
    // ----------------------------------------------------------------------------------------

    function test_RevertWhen_NonOwnerAdministers() public {
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, alice));
        rollup.setSequencer(bob);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, alice));
        rollup.pause();
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, alice));
        rollup.unpause();
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, alice));
        rollup.revertBatches(1);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, alice));
        rollup.transferOwnership(alice);
        vm.stopPrank();

        // The sequencer has no admin rights either.
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, sequencer));
        vm.prank(sequencer);
        rollup.pause();
    }

    function test_SetSequencer() public {
        vm.expectEmit(true, true, false, true, address(rollup));
        emit LanesRollup.SequencerChanged(sequencer, bob);
        vm.prank(owner);
        rollup.setSequencer(bob);
        assertEq(rollup.sequencer(), bob);

        LanesRollup.BatchHeader memory h = _header(1, 1, 10, GENESIS, _root(1), 0);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotSequencer.selector, sequencer));
        vm.prank(sequencer);
        rollup.submitBatch(h, DATA);
        vm.prank(bob);
        rollup.submitBatch(h, DATA);
        assertEq(rollup.lastBatchIndex(), 1);
    }

    function test_RevertWhen_SequencerSetToZero() public {
        vm.expectRevert(LanesRollup.ZeroAddress.selector);
        vm.prank(owner);
        rollup.setSequencer(address(0));
    }

    function test_PauseStopsSubmissions() public {
        vm.expectEmit(false, false, false, true, address(rollup));
        emit LanesRollup.Paused(owner);
        vm.prank(owner);
        rollup.pause();
        assertTrue(rollup.paused());

        LanesRollup.BatchHeader memory h = _header(1, 1, 10, GENESIS, _root(1), 0);
        vm.expectRevert(LanesRollup.SubmissionsPaused.selector);
        vm.prank(sequencer);
        rollup.submitBatch(h, DATA);
        bytes32[] memory hashes = new bytes32[](1);
        hashes[0] = bytes32(uint256(1));
        vm.blobhashes(hashes);
        vm.expectRevert(LanesRollup.SubmissionsPaused.selector);
        vm.prank(sequencer);
        rollup.submitBatchWithBlobs(h);

        // Deposits and forced transactions still queue.
        _deposit();

        vm.expectEmit(false, false, false, true, address(rollup));
        emit LanesRollup.Unpaused(owner);
        vm.prank(owner);
        rollup.unpause();
        assertFalse(rollup.paused());
        vm.prank(sequencer);
        rollup.submitBatch(h, DATA);
    }

    function test_RevertWhen_PauseStateUnchanged() public {
        vm.expectRevert(LanesRollup.NotPaused.selector);
        vm.prank(owner);
        rollup.unpause();
        vm.prank(owner);
        rollup.pause();
        vm.expectRevert(LanesRollup.SubmissionsPaused.selector);
        vm.prank(owner);
        rollup.pause();
    }

    function test_OwnershipTransfer() public {
        vm.expectEmit(true, true, false, true, address(rollup));
        emit LanesRollup.OwnershipTransferStarted(owner, bob);
        vm.prank(owner);
        rollup.transferOwnership(bob);
        assertEq(rollup.owner(), owner, "unchanged until accepted");
        assertEq(rollup.pendingOwner(), bob);

        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotPendingOwner.selector, alice));
        vm.prank(alice);
        rollup.acceptOwnership();

        vm.expectEmit(true, true, false, true, address(rollup));
        emit LanesRollup.OwnershipTransferred(owner, bob);
        vm.prank(bob);
        rollup.acceptOwnership();
        assertEq(rollup.owner(), bob);
        assertEq(rollup.pendingOwner(), address(0));

        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotOwner.selector, owner));
        vm.prank(owner);
        rollup.pause();
        vm.prank(bob);
        rollup.pause();
    }

    function test_RevertWhen_AcceptingWithoutPendingTransfer() public {
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotPendingOwner.selector, address(0)));
        vm.prank(address(0));
        rollup.acceptOwnership();
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.NotPendingOwner.selector, bob));
        vm.prank(bob);
        rollup.acceptOwnership();
    }

    // ----------------------------------------------------------------------------------------
    // forced inclusion
    // ----------------------------------------------------------------------------------------

    function test_MessageIncludedBeforeDeadline() public {
        _deposit(); // nonce 0 at START
        vm.warp(START + DELAY - 1);
        _submit(1, 1, 10, 0); // not due yet: may be left out
        (bool pending, uint256 nonce, uint256 deadline) = rollup.nextForcedInclusion();
        assertTrue(pending);
        assertEq(nonce, 0);
        assertEq(deadline, START + DELAY);

        _submit(2, 11, 20, 1);
        assertEq(rollup.l1MessagesIncluded(), 1);
        (pending,,) = rollup.nextForcedInclusion();
        assertFalse(pending);
    }

    function test_RevertWhen_ForcedTransactionSkippedPastDeadline() public {
        vm.prank(alice, alice);
        portal.enqueueTransaction(bob, 0, 100_000, hex"deadbeef");
        vm.warp(START + DELAY);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.ForcedInclusionMissed.selector, 0, START + DELAY));
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 1, 10, GENESIS, _root(1), 0), DATA);

        // Including it makes the batch acceptable.
        _submit(1, 1, 10, 1);
    }

    function test_RevertWhen_DepositSkippedPastDeadline() public {
        _submit(1, 1, 10, 0);
        _deposit();
        vm.warp(START + 2 * DELAY);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.ForcedInclusionMissed.selector, 0, START + DELAY));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 20, _root(1), _root(2), 0), DATA);
    }

    function test_ForcedInclusionInQueueOrder() public {
        _deposit(); // nonce 0 at START
        vm.warp(START + 30 minutes);
        _deposit(); // nonce 1
        _deposit(); // nonce 2

        // At START + DELAY only nonce 0 is due: including it alone is enough...
        vm.warp(START + DELAY);
        _submit(1, 1, 10, 1);
        // ...and half an hour later nonces 1 and 2 are due too.
        vm.warp(START + 30 minutes + DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(LanesRollup.ForcedInclusionMissed.selector, 2, START + 30 minutes + DELAY)
        );
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 20, _root(1), _root(2), 2), DATA);
        _submit(2, 11, 20, 3);
    }

    function test_RevertWhen_MoreMessagesThanQueued() public {
        _deposit();
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.L1MessagesBeyondQueue.selector, 2, 1));
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 1, 10, GENESIS, _root(1), 2), DATA);
    }

    function test_RevertWhen_MessageCountDecreases() public {
        _deposit();
        _deposit();
        _submit(1, 1, 10, 2);
        vm.expectRevert(abi.encodeWithSelector(LanesRollup.L1MessagesDecreased.selector, 2, 1));
        vm.prank(sequencer);
        rollup.submitBatch(_header(2, 11, 20, _root(1), _root(2), 1), DATA);
    }

    /// A batch is accepted exactly when its message count does not decrease, does not exceed the
    /// queue, and covers every message enqueued at least DELAY seconds ago.
    function testFuzz_ForcedInclusionRule(uint256 seed, uint8 queued, uint8 included, uint256 submitAfter) public {
        uint256 n = bound(queued, 0, 12);
        uint256[] memory times = new uint256[](n);
        uint256 t = START;
        for (uint256 i; i < n; i++) {
            t += uint256(keccak256(abi.encode(seed, i))) % 40 minutes;
            vm.warp(t);
            _deposit();
            times[i] = t;
        }
        uint256 count = bound(included, 0, n + 1);
        uint256 now_ = t + bound(submitAfter, 0, 2 * DELAY);
        vm.warp(now_);

        bool ok = count <= n && (count == n || now_ - times[count] < DELAY);
        if (!ok) vm.expectRevert();
        vm.prank(sequencer);
        rollup.submitBatch(_header(1, 1, 10, GENESIS, _root(1), count), DATA);
        assertEq(rollup.lastBatchIndex(), ok ? 1 : 0);
    }

    // ----------------------------------------------------------------------------------------
    // helpers
    // ----------------------------------------------------------------------------------------

    function _root(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("state root", i));
    }

    function _header(
        uint256 index,
        uint64 firstBlock,
        uint64 lastBlock,
        bytes32 prevRoot,
        bytes32 newRoot,
        uint256 l1Messages
    ) internal pure returns (LanesRollup.BatchHeader memory) {
        return LanesRollup.BatchHeader({
            batchIndex: index,
            firstBlock: firstBlock,
            lastBlock: lastBlock,
            prevStateRoot: prevRoot,
            newStateRoot: newRoot,
            l1MessagesIncluded: l1Messages
        });
    }

    /// Submits batch `index` chaining state roots _root(index - 1) -> _root(index).
    function _submit(uint256 index, uint64 firstBlock, uint64 lastBlock, uint256 l1Messages) internal {
        bytes32 prev = index == 1 ? GENESIS : _root(index - 1);
        vm.prank(sequencer);
        rollup.submitBatch(_header(index, firstBlock, lastBlock, prev, _root(index), l1Messages), DATA);
    }

    function _deposit() internal {
        vm.prank(alice, alice);
        portal.depositETH{value: 1 ether}(alice, 100_000);
    }
}
