// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {MerkleTrie} from "./lib/MerkleTrie.sol";
import {RLPReader} from "./lib/RLPReader.sol";
import {Withdrawals} from "./lib/Withdrawals.sol";

/// @notice What the portal needs from the rollup contract: final L2 state roots.
interface ILanesStateRoots {
    /// @notice The L2 state root after batch `batchIndex`; reverts unless that batch is final.
    function finalizedStateRoot(uint256 batchIndex) external view returns (bytes32);
}

/// @title LanesPortal
/// @notice The L1 bridge of the lanes rollup. It queues L1 -> L2 messages (ETH deposits and forced
/// L2 transactions, one queue and one nonce sequence for both) and pays out L2 -> L1 withdrawals
/// proven against a final L2 state root. It holds all deposited ETH.
///
/// Deployment: `LanesRollup`'s constructor deploys the portal with `new LanesPortal(address(this))`,
/// so the two contracts reference each other immutably from the start, with no initializer to
/// front-run: deploy `LanesRollup`, then read `LanesRollup.portal()`. The portal reads final state
/// roots from the rollup; the rollup reads the queue (`depositNonce`, `queuedAt`) to enforce forced
/// inclusion.
///
/// L1 -> L2 messages: message `n` (its `depositNonce`) is emitted as `TransactionDeposited` and
/// recorded as `queue[n] = (hash, enqueuedAt)`. L2 executes messages in nonce order, each as a
/// deposit transaction that needs no signature: mint `mint` wei to `from`, then call `to` from `from`
/// with `value` wei, `gasLimit` gas and `data` (never a contract creation). If the call fails the
/// mint stays. A batch declares how many messages L2 has executed (`l1MessagesIncluded`); the rollup
/// rejects a batch that leaves out a message enqueued `forceInclusionDelay` seconds ago or earlier.
///
/// Sender aliasing: when the caller is a contract (`msg.sender != tx.origin`), `from` is the caller's
/// address plus `0x1111000000000000000000000000000000001111` (mod 2**160), as on Optimism and
/// Arbitrum, so that an L1 contract cannot act as the unrelated L2 account at its own address.
///
/// Spam limits: a message's `gasLimit` is between `minimumGasLimit(data.length)` (enough for the
/// intrinsic gas of its data, EIP-7623 floor included) and `MAX_GAS_LIMIT` (EIP-7825's cap), and the
/// messages of one L1 block may ask for `L1_BLOCK_GAS_BUDGET` L2 gas in total, which bounds the L2
/// load forced through L1 per L1 block.
contract LanesPortal {
    using RLPReader for RLPReader.Item;

    /// @notice A withdrawal as recorded by `L2WithdrawalQueue.withdraw` on L2.
    /// @param nonce The withdrawal's nonce on L2 (its key in `L2WithdrawalQueue.withdrawals`).
    /// @param sender The L2 account that withdrew.
    /// @param recipient The L1 account paid.
    /// @param amount Wei paid.
    struct WithdrawalTx {
        uint256 nonce;
        address sender;
        address recipient;
        uint256 amount;
    }

    /// @notice One entry of the L1 -> L2 message queue.
    /// @param hash `l1MessageHash` of the message.
    /// @param enqueuedAt L1 timestamp of the block that enqueued it.
    struct QueueEntry {
        bytes32 hash;
        uint64 enqueuedAt;
    }

    /// @notice Address of `L2WithdrawalQueue` on L2.
    address public constant L2_WITHDRAWAL_QUEUE = 0x4200000000000000000000000000000000000016;
    /// @notice Offset added to a contract sender's address to form its L2 `from`.
    uint160 public constant ALIAS_OFFSET = uint160(0x1111000000000000000000000000000000001111);
    /// @notice Largest L2 gas limit of one message: EIP-7825's per-transaction cap, 2**24.
    uint64 public constant MAX_GAS_LIMIT = 16_777_216;
    /// @notice Base of `minimumGasLimit`: the intrinsic gas of a transaction.
    uint64 public constant MIN_GAS_LIMIT_BASE = 21_000;
    /// @notice Per data byte in `minimumGasLimit`: EIP-7623's floor for a non-zero byte.
    uint64 public constant MIN_GAS_LIMIT_PER_BYTE = 40;
    /// @notice Total L2 gas the messages of one L1 block may ask for.
    uint64 public constant L1_BLOCK_GAS_BUDGET = 30_000_000;
    /// @notice L2 gas limit of a deposit made by sending ETH to the portal.
    uint64 public constant RECEIVE_GAS_LIMIT = 100_000;

    /// @notice The rollup contract that deployed this portal and holds the state roots.
    ILanesStateRoots public immutable rollup;

    /// @notice Number of L1 -> L2 messages so far: the nonce of the next one and the queue's length.
    uint256 public depositNonce;
    /// @notice The L1 -> L2 message queue, by deposit nonce.
    mapping(uint256 depositNonce => QueueEntry) public queue;
    /// @notice Whether the withdrawal with this L2 nonce has been paid.
    mapping(uint256 withdrawalNonce => bool) public finalizedWithdrawals;

    /// @dev L1 block whose gas budget `_budgetUsed` counts.
    uint64 private _budgetBlock;
    /// @dev L2 gas asked for by the messages of `_budgetBlock`.
    uint64 private _budgetUsed;

    /// @notice L1 -> L2 message `depositNonce`: L2 mints `mint` wei to `from`, then calls `to` from
    /// `from` with `value` wei, `gasLimit` gas and `data`. `from` is aliased for contract callers.
    /// `enqueuedAt` is the L1 block timestamp; the message is due on L2 by
    /// `enqueuedAt + LanesRollup.forceInclusionDelay()`.
    event TransactionDeposited(
        uint256 indexed depositNonce,
        address indexed from,
        address indexed to,
        uint256 mint,
        uint256 value,
        uint64 gasLimit,
        bytes data,
        uint64 enqueuedAt
    );

    /// @notice Withdrawal `nonce` (hash `withdrawalHash`) paid `amount` wei to `recipient`.
    event WithdrawalFinalized(
        uint256 indexed nonce, bytes32 indexed withdrawalHash, address indexed recipient, uint256 amount
    );

    /// @notice The rollup address cannot be zero.
    error ZeroRollup();
    /// @notice An L1 -> L2 message cannot target the zero address (no contract creation).
    error ZeroTarget();
    /// @notice The message's L2 gas limit is below `minimum`.
    error GasLimitTooLow(uint64 gasLimit, uint64 minimum);
    /// @notice The message's L2 gas limit is above `MAX_GAS_LIMIT`.
    error GasLimitTooHigh(uint64 gasLimit, uint64 maximum);
    /// @notice The messages of this L1 block already ask for `used` of `L1_BLOCK_GAS_BUDGET` L2 gas.
    error L1BlockGasBudgetExceeded(uint64 used, uint64 requested);
    /// @notice There is no queue entry `index`.
    error QueueIndexOutOfRange(uint256 index, uint256 length);
    /// @notice Withdrawal `nonce` has already been paid.
    error WithdrawalAlreadyFinalized(uint256 nonce);
    /// @notice The account proof shows no `L2_WITHDRAWAL_QUEUE` account under the state root.
    error WithdrawalQueueAccountMissing();
    /// @notice The proven account is not an RLP list of four fields with a 32-byte storage root.
    error InvalidAccount();
    /// @notice The storage proof does not show the withdrawal's hash under nonce `nonce`.
    error WithdrawalNotProven(uint256 nonce);
    /// @notice Paying `amount` wei to `recipient` failed.
    error WithdrawalTransferFailed(address recipient, uint256 amount);

    /// @param rollup_ The rollup contract (`LanesRollup` deploys the portal and passes itself).
    constructor(address rollup_) {
        if (rollup_ == address(0)) revert ZeroRollup();
        rollup = ILanesStateRoots(rollup_);
    }

    /// @notice Deposits `msg.value` wei to the caller's own address on L2 (`RECEIVE_GAS_LIMIT` gas).
    receive() external payable {
        _enqueue(msg.sender, msg.value, RECEIVE_GAS_LIMIT, "");
    }

    /// @notice Locks `msg.value` wei here and credits it to `l2Recipient` on L2.
    /// @param l2GasLimit L2 gas for the transfer (at least `minimumGasLimit(0)`, 21,000).
    /// @return nonce The message's deposit nonce.
    function depositETH(address l2Recipient, uint64 l2GasLimit) external payable returns (uint256 nonce) {
        return _enqueue(l2Recipient, msg.value, l2GasLimit, "");
    }

    /// @notice Queues an L2 transaction from the caller (aliased if a contract) that the sequencer
    /// must include within `LanesRollup.forceInclusionDelay()` seconds. `msg.value` is minted to the
    /// sender on L2 first, and `value` (which may differ) is sent with the call.
    /// @return nonce The message's deposit nonce.
    function enqueueTransaction(address to, uint256 value, uint64 gasLimit, bytes calldata data)
        external
        payable
        returns (uint256 nonce)
    {
        return _enqueue(to, value, gasLimit, data);
    }

    /// @notice Pays withdrawal `w` after proving it against the state root of final batch
    /// `batchIndex`: `accountProof` proves the account of `L2_WITHDRAWAL_QUEUE` in the state trie
    /// and `storageProof` proves `withdrawals[w.nonce] == hashWithdrawal(w)` in its storage trie (the
    /// `accountProof` and `storageProof[0].proof` of `eth_getProof(L2_WITHDRAWAL_QUEUE,
    /// [withdrawalSlot(w.nonce)], <last block of the batch>)` on L2). Anyone may call it; the ETH
    /// goes to `w.recipient`. Works while the rollup is paused.
    function finalizeWithdrawal(
        WithdrawalTx calldata w,
        uint256 batchIndex,
        bytes[] calldata accountProof,
        bytes[] calldata storageProof
    ) external {
        if (finalizedWithdrawals[w.nonce]) revert WithdrawalAlreadyFinalized(w.nonce);
        bytes32 withdrawalHash = _verifyWithdrawal(w, batchIndex, accountProof, storageProof);
        finalizedWithdrawals[w.nonce] = true;
        emit WithdrawalFinalized(w.nonce, withdrawalHash, w.recipient, w.amount);

        address recipient = w.recipient;
        uint256 amount = w.amount;
        bool ok;
        assembly ("memory-safe") {
            // No return data is copied: a recipient cannot make the caller pay for a huge one.
            ok := call(gas(), recipient, amount, 0, 0, 0, 0)
        }
        if (!ok) revert WithdrawalTransferFailed(recipient, amount);
    }

    /// @notice Checks the proofs of `finalizeWithdrawal` without paying; reverts with its errors.
    /// @return withdrawalHash The proven `hashWithdrawal(w)`.
    function verifyWithdrawal(
        WithdrawalTx calldata w,
        uint256 batchIndex,
        bytes[] calldata accountProof,
        bytes[] calldata storageProof
    ) external view returns (bytes32 withdrawalHash) {
        return _verifyWithdrawal(w, batchIndex, accountProof, storageProof);
    }

    /// @notice L1 timestamp at which queue entry `index` was enqueued.
    function queuedAt(uint256 index) external view returns (uint64) {
        if (index >= depositNonce) revert QueueIndexOutOfRange(index, depositNonce);
        return queue[index].enqueuedAt;
    }

    /// @notice Smallest L2 gas limit of a message with `dataLength` bytes of data.
    function minimumGasLimit(uint256 dataLength) public pure returns (uint64) {
        // Capped so the multiplication cannot overflow; anything that large fails MAX_GAS_LIMIT.
        if (dataLength > MAX_GAS_LIMIT) dataLength = MAX_GAS_LIMIT;
        // casting to 'uint64' is safe because dataLength <= MAX_GAS_LIMIT here
        // forge-lint: disable-next-line(unsafe-typecast)
        return MIN_GAS_LIMIT_BASE + MIN_GAS_LIMIT_PER_BYTE * uint64(dataLength);
    }

    /// @notice The L2 `from` of a message sent by contract `l1Address`.
    function applyL1ToL2Alias(address l1Address) public pure returns (address) {
        unchecked {
            return address(uint160(l1Address) + ALIAS_OFFSET);
        }
    }

    /// @notice Hash recorded in the queue for a message:
    /// keccak256(abi.encode(depositNonce, from, to, mint, value, gasLimit, keccak256(data))).
    function l1MessageHash(
        uint256 nonce,
        address from,
        address to,
        uint256 mint,
        uint256 value,
        uint64 gasLimit,
        bytes memory data
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(nonce, from, to, mint, value, gasLimit, keccak256(data)));
    }

    /// @notice keccak256(abi.encode(nonce, sender, recipient, amount)), the value `L2WithdrawalQueue`
    /// stores for a withdrawal.
    function hashWithdrawal(WithdrawalTx calldata w) public pure returns (bytes32) {
        return Withdrawals.hash(w.nonce, w.sender, w.recipient, w.amount);
    }

    /// @notice Storage slot of withdrawal `nonce` in `L2WithdrawalQueue`:
    /// keccak256(abi.encode(nonce, uint256(0))).
    function withdrawalSlot(uint256 nonce) public pure returns (bytes32) {
        return Withdrawals.storageSlot(nonce);
    }

    function _enqueue(address to, uint256 value, uint64 gasLimit, bytes memory data) private returns (uint256 nonce) {
        if (to == address(0)) revert ZeroTarget();
        uint64 minimum = minimumGasLimit(data.length);
        if (gasLimit < minimum) revert GasLimitTooLow(gasLimit, minimum);
        if (gasLimit > MAX_GAS_LIMIT) revert GasLimitTooHigh(gasLimit, MAX_GAS_LIMIT);

        uint64 used = _budgetBlock == block.number ? _budgetUsed : 0;
        if (used + gasLimit > L1_BLOCK_GAS_BUDGET) revert L1BlockGasBudgetExceeded(used, gasLimit);
        _budgetBlock = uint64(block.number);
        _budgetUsed = used + gasLimit;

        address from = msg.sender == tx.origin ? msg.sender : applyL1ToL2Alias(msg.sender);
        nonce = depositNonce++;
        uint64 enqueuedAt = uint64(block.timestamp);
        queue[nonce] = QueueEntry(l1MessageHash(nonce, from, to, msg.value, value, gasLimit, data), enqueuedAt);
        emit TransactionDeposited(nonce, from, to, msg.value, value, gasLimit, data, enqueuedAt);
    }

    function _verifyWithdrawal(
        WithdrawalTx calldata w,
        uint256 batchIndex,
        bytes[] calldata accountProof,
        bytes[] calldata storageProof
    ) private view returns (bytes32 withdrawalHash) {
        bytes32 stateRoot = rollup.finalizedStateRoot(batchIndex);

        (bool accountExists, bytes memory account) =
            MerkleTrie.get(abi.encodePacked(keccak256(abi.encodePacked(L2_WITHDRAWAL_QUEUE))), accountProof, stateRoot);
        if (!accountExists) revert WithdrawalQueueAccountMissing();
        // account = rlp([nonce, balance, storageRoot, codeHash])
        RLPReader.Item[] memory fields = RLPReader.toItem(account).readList();
        if (fields.length != 4) revert InvalidAccount();
        bytes32 storageRoot = fields[2].readBytes32();

        withdrawalHash = hashWithdrawal(w);
        bytes memory slotKey = abi.encodePacked(keccak256(abi.encode(Withdrawals.storageSlot(w.nonce))));
        (bool slotExists, bytes memory stored) = MerkleTrie.get(slotKey, storageProof, storageRoot);
        // A slot's value is rlp(value as a big-endian integer without leading zeros).
        if (!slotExists || RLPReader.toItem(stored).readUint256() != uint256(withdrawalHash)) {
            revert WithdrawalNotProven(w.nonce);
        }
    }
}
