// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title LanesToken
/// @notice A minimal ERC-20 token: fixed supply minted to the deployer, no owner, no mint/burn.
/// @dev An allowance of `type(uint256).max` is treated as infinite and never decreases.
contract LanesToken {
    /// @notice Emitted when `value` tokens move from `from` to `to` (`from` is zero on mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice Emitted when `owner` sets `spender`'s allowance to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice `from` holds `balance` tokens but tried to move `needed`.
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    /// @notice `spender` may move `allowance` tokens but tried to move `needed`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    /// @notice Tokens cannot be sent to `receiver` (the zero address).
    error InvalidReceiver(address receiver);
    /// @notice `spender` (the zero address) cannot be approved.
    error InvalidSpender(address spender);

    /// @notice The token's name.
    string public name;
    /// @notice The token's symbol.
    string public symbol;
    /// @notice Number of decimals of the token's display unit.
    uint8 public constant decimals = 18;
    /// @notice Total number of tokens in existence.
    uint256 public totalSupply;

    /// @notice Token balance of each account.
    mapping(address account => uint256) public balanceOf;
    /// @notice Remaining number of tokens `spender` may move on behalf of `owner`.
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @param name_ The token's name.
    /// @param symbol_ The token's symbol.
    /// @param initialSupply Tokens (in base units) minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        totalSupply = initialSupply;
        balanceOf[msg.sender] = initialSupply;
        emit Transfer(address(0), msg.sender, initialSupply);
    }

    /// @notice Moves `value` tokens from the caller to `to`.
    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Sets `spender`'s allowance over the caller's tokens to `value`.
    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert InvalidSpender(spender);
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` using the caller's allowance.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function _transfer(address from, address to, uint256 value) private {
        if (to == address(0)) revert InvalidReceiver(to);
        uint256 fromBalance = balanceOf[from];
        if (fromBalance < value) revert InsufficientBalance(from, fromBalance, value);
        unchecked {
            // Cannot underflow (checked above) nor overflow (the sum of balances is totalSupply).
            balanceOf[from] = fromBalance - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
