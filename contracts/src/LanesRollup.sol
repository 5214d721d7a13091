// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {LanesPortal} from "./LanesPortal.sol";

/// @title LanesRollup
/// @notice The L1 record of the lanes rollup: the chain of batches the sequencer posts, each with the
/// L2 block range it covers, the L2 state root after its last block and a commitment to its data.
/// A batch's state root is final `finalizationPeriod` seconds after it was recorded; until then the
/// owner can revert it (and every later batch). Withdrawals are proven against final roots only.
///
/// Deployment: one transaction. The constructor records the genesis batch (index 0, L2 block 0,
/// `genesisStateRoot`, final at once) and deploys this rollup's `LanesPortal`, whose address is
/// `portal()`. The batcher resumes from `lastBatch()`: the next batch has index `batchIndex + 1` and
/// starts at L2 block `lastBlock + 1` from state root `stateRoot`.
///
/// Forced inclusion: every L1 -> L2 message in the portal's queue (deposits and forced
/// transactions) must be executed on L2 in queue order. Each batch declares `l1MessagesIncluded`,
/// the number of queue entries L2 has executed by the batch's last block; it may not decrease nor
/// exceed the queue's length, and it must cover every entry enqueued at least `forceInclusionDelay`
/// seconds before the batch is submitted. A sequencer that ignores a message can then post nothing
/// more until it includes it.
///
/// Trust: state roots are not proven (no fraud or validity proofs); the finalization period is the
/// owner's window to revert a wrong root before withdrawals can use it.
contract LanesRollup {
    /// @notice Where a batch's data was posted.
    enum DataAvailability {
        /// @dev In the calldata of the submitting transaction: `dataHash = keccak256(data)`.
        Calldata,
        /// @dev In EIP-4844 blobs of the submitting transaction:
        /// `dataHash = keccak256(abi.encodePacked(blobhash(0), ..., blobhash(n - 1)))`.
        Blobs
    }

    /// @notice A batch as submitted by the sequencer.
    /// @param batchIndex Must be `lastBatchIndex() + 1`.
    /// @param firstBlock First L2 block of the batch: the previous batch's `lastBlock + 1`.
    /// @param lastBlock Last L2 block of the batch, `>= firstBlock`.
    /// @param prevStateRoot State root after the previous batch; must match the recorded one.
    /// @param newStateRoot State root after `lastBlock`; not zero.
    /// @param l1MessagesIncluded Number of L1 -> L2 messages (portal deposit nonces `0 ..
    /// l1MessagesIncluded - 1`) L2 has executed up to `lastBlock`.
    struct BatchHeader {
        uint256 batchIndex;
        uint64 firstBlock;
        uint64 lastBlock;
        bytes32 prevStateRoot;
        bytes32 newStateRoot;
        uint256 l1MessagesIncluded;
    }

    /// @notice A recorded batch.
    /// @param stateRoot L2 state root after `lastBlock`.
    /// @param dataHash Commitment to the batch's data (see `DataAvailability`).
    /// @param lastBlock Last L2 block of the batch.
    /// @param submittedAt L1 timestamp of its submission (0 for genesis).
    /// @param l1MessagesIncluded L1 -> L2 messages executed up to `lastBlock`.
    struct Batch {
        bytes32 stateRoot;
        bytes32 dataHash;
        uint64 lastBlock;
        uint64 submittedAt;
        uint64 l1MessagesIncluded;
    }

    /// @notice The portal (bridge) deployed by this contract.
    LanesPortal public immutable portal;
    /// @notice Seconds after submission at which a batch's state root is final.
    uint64 public immutable finalizationPeriod;
    /// @notice Seconds after which a queued L1 -> L2 message must be in every submitted batch.
    uint64 public immutable forceInclusionDelay;

    /// @notice Account allowed to change the sequencer, pause and revert batches.
    address public owner;
    /// @notice Account that may accept ownership (two-step transfer).
    address public pendingOwner;
    /// @notice The only account that may submit batches (the batcher's key).
    address public sequencer;
    /// @notice Whether batch submission is paused. Withdrawals of final batches still work.
    bool public paused;
    /// @notice Index of the last recorded batch (0: only genesis).
    uint256 public lastBatchIndex;

    mapping(uint256 batchIndex => Batch) private _batches;

    /// @notice The rollup started from `genesisStateRoot` (batch 0, L2 block 0) with `portal`.
    event RollupInitialized(
        bytes32 genesisStateRoot, address portal, uint64 finalizationPeriod, uint64 forceInclusionDelay
    );
    /// @notice Batch `batchIndex` recorded L2 blocks `firstBlock..=lastBlock`.
    event BatchSubmitted(
        uint256 indexed batchIndex,
        uint64 firstBlock,
        uint64 lastBlock,
        bytes32 prevStateRoot,
        bytes32 newStateRoot,
        bytes32 dataHash,
        uint256 l1MessagesIncluded,
        DataAvailability dataAvailability
    );
    /// @notice Batches `fromBatchIndex..=previousLastBatchIndex` were removed by the owner.
    event BatchesReverted(uint256 indexed fromBatchIndex, uint256 previousLastBatchIndex);
    /// @notice The sequencer key changed.
    event SequencerChanged(address indexed previousSequencer, address indexed newSequencer);
    /// @notice Batch submission was paused by `account`.
    event Paused(address account);
    /// @notice Batch submission was resumed by `account`.
    event Unpaused(address account);
    /// @notice `newOwner` may now accept ownership.
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice Ownership moved to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice `caller` is not the sequencer.
    error NotSequencer(address caller);
    /// @notice `caller` is not the owner.
    error NotOwner(address caller);
    /// @notice `caller` is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice An address that must be set is zero.
    error ZeroAddress();
    /// @notice Batch submission is paused.
    error SubmissionsPaused();
    /// @notice Batch submission is not paused.
    error NotPaused();
    /// @notice The batch index is not the next one.
    error UnexpectedBatchIndex(uint256 expected, uint256 given);
    /// @notice The batch does not start right after the previous batch's last L2 block.
    error NonContiguousBlocks(uint64 expectedFirstBlock, uint64 givenFirstBlock);
    /// @notice The batch's last block is before its first.
    error InvalidBlockRange(uint64 firstBlock, uint64 lastBlock);
    /// @notice The batch's previous state root is not the recorded one.
    error PrevStateRootMismatch(bytes32 expected, bytes32 given);
    /// @notice A state root cannot be zero.
    error ZeroStateRoot();
    /// @notice Calldata batches carry data.
    error EmptyBatchData();
    /// @notice A blob batch's transaction carries no blobs.
    error NoBlobs();
    /// @notice `l1MessagesIncluded` went down.
    error L1MessagesDecreased(uint256 previous, uint256 given);
    /// @notice `l1MessagesIncluded` exceeds the queue's length.
    error L1MessagesBeyondQueue(uint256 given, uint256 queueLength);
    /// @notice Queue entry `depositNonce` was due on L2 by `deadline` but the batch leaves it out.
    error ForcedInclusionMissed(uint256 depositNonce, uint256 deadline);
    /// @notice There is no batch `batchIndex`.
    error BatchNotFound(uint256 batchIndex);
    /// @notice Batch `batchIndex` is not final yet.
    error BatchNotFinalized(uint256 batchIndex);
    /// @notice Batch `batchIndex` is final and cannot be reverted.
    error BatchAlreadyFinalized(uint256 batchIndex);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param owner_ Administrator (sequencer rotation, pause, batch revert, ownership transfer).
    /// @param sequencer_ The batcher's key, the only account that may submit batches.
    /// @param genesisStateRoot State root of L2 block 0 (recorded as final batch 0).
    /// @param finalizationPeriod_ Seconds until a batch is final (0: final when recorded).
    /// @param forceInclusionDelay_ Seconds within which a queued L1 -> L2 message must be included.
    constructor(
        address owner_,
        address sequencer_,
        bytes32 genesisStateRoot,
        uint64 finalizationPeriod_,
        uint64 forceInclusionDelay_
    ) {
        if (owner_ == address(0) || sequencer_ == address(0)) revert ZeroAddress();
        if (genesisStateRoot == bytes32(0)) revert ZeroStateRoot();
        finalizationPeriod = finalizationPeriod_;
        forceInclusionDelay = forceInclusionDelay_;
        owner = owner_;
        sequencer = sequencer_;
        _batches[0] = Batch(genesisStateRoot, bytes32(0), 0, 0, 0);
        portal = new LanesPortal(address(this));

        emit OwnershipTransferred(address(0), owner_);
        emit SequencerChanged(address(0), sequencer_);
        emit RollupInitialized(genesisStateRoot, address(portal), finalizationPeriod_, forceInclusionDelay_);
    }

    // ---------------------------------------------------------------------------------------------
    // Batches
    // ---------------------------------------------------------------------------------------------

    /// @notice Records a batch whose data is `data`, posted in this transaction's calldata.
    function submitBatch(BatchHeader calldata header, bytes calldata data) external {
        if (data.length == 0) revert EmptyBatchData();
        _record(header, keccak256(data), DataAvailability.Calldata);
    }

    /// @notice Records a batch whose data is in this transaction's EIP-4844 blobs, committed to by
    /// the hash of their versioned hashes in order.
    function submitBatchWithBlobs(BatchHeader calldata header) external {
        uint256 count;
        while (blobhash(count) != bytes32(0)) {
            count++;
        }
        if (count == 0) revert NoBlobs();
        bytes32[] memory hashes = new bytes32[](count);
        for (uint256 i; i < count; i++) {
            hashes[i] = blobhash(i);
        }
        _record(header, keccak256(abi.encodePacked(hashes)), DataAvailability.Blobs);
    }

    /// @notice Removes batches `fromBatchIndex..=lastBatchIndex()`, none of them final, so the
    /// sequencer resubmits from batch `fromBatchIndex`. Owner only; works while paused.
    function revertBatches(uint256 fromBatchIndex) external onlyOwner {
        uint256 last = lastBatchIndex;
        if (fromBatchIndex == 0 || fromBatchIndex > last) revert BatchNotFound(fromBatchIndex);
        // Batches become final in index order, so checking the first is enough.
        if (isFinalized(fromBatchIndex)) revert BatchAlreadyFinalized(fromBatchIndex);
        lastBatchIndex = fromBatchIndex - 1;
        emit BatchesReverted(fromBatchIndex, last);
    }

    // ---------------------------------------------------------------------------------------------
    // Administration
    // ---------------------------------------------------------------------------------------------

    /// @notice Rotates the sequencer (batcher) key.
    function setSequencer(address newSequencer) external onlyOwner {
        if (newSequencer == address(0)) revert ZeroAddress();
        emit SequencerChanged(sequencer, newSequencer);
        sequencer = newSequencer;
    }

    /// @notice Stops batch submission. Deposits, forced transactions and withdrawals continue.
    function pause() external onlyOwner {
        if (paused) revert SubmissionsPaused();
        paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Resumes batch submission.
    function unpause() external onlyOwner {
        if (!paused) revert NotPaused();
        paused = false;
        emit Unpaused(msg.sender);
    }

    /// @notice Starts transferring ownership to `newOwner`, who must call `acceptOwnership`.
    /// Passing the zero address cancels a pending transfer.
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    /// @notice Completes an ownership transfer started by `transferOwnership`.
    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice Where the batcher resumes: the last recorded batch's index, last L2 block and state
    /// root.
    function lastBatch() external view returns (uint256 batchIndex, uint64 lastBlock, bytes32 stateRoot) {
        Batch storage b = _batches[lastBatchIndex];
        return (lastBatchIndex, b.lastBlock, b.stateRoot);
    }

    /// @notice L1 -> L2 messages executed on L2 as of the last recorded batch.
    function l1MessagesIncluded() external view returns (uint256) {
        return _batches[lastBatchIndex].l1MessagesIncluded;
    }

    /// @notice Recorded batch `batchIndex` (final or not).
    function getBatch(uint256 batchIndex) external view returns (Batch memory) {
        if (batchIndex > lastBatchIndex) revert BatchNotFound(batchIndex);
        return _batches[batchIndex];
    }

    /// @notice State root after batch `batchIndex` (final or not).
    function stateRootAt(uint256 batchIndex) external view returns (bytes32) {
        if (batchIndex > lastBatchIndex) revert BatchNotFound(batchIndex);
        return _batches[batchIndex].stateRoot;
    }

    /// @notice Whether batch `batchIndex` exists and is final. Genesis is final from the start.
    function isFinalized(uint256 batchIndex) public view returns (bool) {
        if (batchIndex > lastBatchIndex) return false;
        if (batchIndex == 0) return true;
        // The finalization period is days long: a validator's few seconds of timestamp leeway is moot.
        // forge-lint: disable-next-line(block-timestamp)
        return block.timestamp >= uint256(_batches[batchIndex].submittedAt) + finalizationPeriod;
    }

    /// @notice State root after batch `batchIndex`; reverts unless the batch is final.
    function finalizedStateRoot(uint256 batchIndex) external view returns (bytes32) {
        if (batchIndex > lastBatchIndex) revert BatchNotFound(batchIndex);
        if (!isFinalized(batchIndex)) revert BatchNotFinalized(batchIndex);
        return _batches[batchIndex].stateRoot;
    }

    /// @notice Index of the last final batch (0 if only genesis is final).
    function lastFinalizedBatchIndex() external view returns (uint256) {
        // Submission times never decrease with the index, so finality is a prefix: binary search.
        uint256 lo = 0;
        uint256 hi = lastBatchIndex;
        while (lo < hi) {
            uint256 mid = (lo + hi + 1) / 2;
            if (isFinalized(mid)) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// @notice The oldest queued L1 -> L2 message not yet included by a recorded batch, and when a
    /// batch must include it. `pending` is false when every queued message is included.
    function nextForcedInclusion() external view returns (bool pending, uint256 depositNonce, uint256 deadline) {
        depositNonce = _batches[lastBatchIndex].l1MessagesIncluded;
        if (depositNonce >= portal.depositNonce()) return (false, depositNonce, 0);
        return (true, depositNonce, uint256(portal.queuedAt(depositNonce)) + forceInclusionDelay);
    }

    // ---------------------------------------------------------------------------------------------
    // Internal
    // ---------------------------------------------------------------------------------------------

    function _record(BatchHeader calldata h, bytes32 dataHash, DataAvailability da) private {
        if (msg.sender != sequencer) revert NotSequencer(msg.sender);
        if (paused) revert SubmissionsPaused();

        uint256 previousIndex = lastBatchIndex;
        Batch storage previous = _batches[previousIndex];
        if (h.batchIndex != previousIndex + 1) revert UnexpectedBatchIndex(previousIndex + 1, h.batchIndex);
        uint64 expectedFirst = previous.lastBlock + 1;
        if (h.firstBlock != expectedFirst) revert NonContiguousBlocks(expectedFirst, h.firstBlock);
        if (h.lastBlock < h.firstBlock || h.lastBlock == type(uint64).max) {
            revert InvalidBlockRange(h.firstBlock, h.lastBlock);
        }
        if (h.prevStateRoot != previous.stateRoot) revert PrevStateRootMismatch(previous.stateRoot, h.prevStateRoot);
        if (h.newStateRoot == bytes32(0)) revert ZeroStateRoot();
        _checkForcedInclusion(previous.l1MessagesIncluded, h.l1MessagesIncluded);

        lastBatchIndex = h.batchIndex;
        _batches[h.batchIndex] = Batch({
            stateRoot: h.newStateRoot,
            dataHash: dataHash,
            lastBlock: h.lastBlock,
            submittedAt: uint64(block.timestamp),
            l1MessagesIncluded: uint64(h.l1MessagesIncluded)
        });
        emit BatchSubmitted(
            h.batchIndex, h.firstBlock, h.lastBlock, h.prevStateRoot, h.newStateRoot, dataHash, h.l1MessagesIncluded, da
        );
    }

    /// @dev Queue entries are enqueued in timestamp order, so if the first entry the batch leaves
    /// out is not due yet, no later one is.
    function _checkForcedInclusion(uint256 previous, uint256 included) private view {
        if (included < previous) revert L1MessagesDecreased(previous, included);
        uint256 queueLength = portal.depositNonce();
        if (included > queueLength) revert L1MessagesBeyondQueue(included, queueLength);
        if (included == queueLength) return;
        uint256 deadline = uint256(portal.queuedAt(included)) + forceInclusionDelay;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= deadline) revert ForcedInclusionMissed(included, deadline);
    }
}
