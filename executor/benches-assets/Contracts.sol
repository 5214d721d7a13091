// SPDX-License-Identifier: MIT
// Contracts for the executor's differential tests and `executor-bench`. Runtime bytecode is
// embedded (see README.md for how the .hex files are produced); storage is seeded directly,
// so constructors only matter for contracts created during a test.
pragma solidity ^0.8.20;

/// Minimal ERC-20. Layout: balanceOf at slot 0, allowance at slot 1, totalSupply at slot 2.
contract Token {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - value;
        }
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        uint256 balance = balanceOf[from];
        require(balance >= value, "balance");
        unchecked {
            balanceOf[from] = balance - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

interface IToken {
    function balanceOf(address who) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// Uniswap-V2-style constant-product pair over two tokens, swapping in one call (what the V2
/// router does in two): pulls the input with transferFrom, pays the output, updates reserves.
/// Layout: token0 slot 0, token1 slot 1, reserve0 slot 2, reserve1 slot 3.
contract Pair {
    address public token0;
    address public token1;
    uint256 public reserve0;
    uint256 public reserve1;

    event Swap(address indexed sender, uint256 amountIn, uint256 amountOut, bool zeroForOne, address indexed to);

    function swap(uint256 amountIn, bool zeroForOne, address to) external returns (uint256 amountOut) {
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (reserve0, reserve1) : (reserve1, reserve0);
        uint256 inWithFee = amountIn * 997;
        amountOut = (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
        require(amountOut > 0, "output");
        (address tokenIn, address tokenOut) = zeroForOne ? (token0, token1) : (token1, token0);
        require(IToken(tokenIn).transferFrom(msg.sender, address(this), amountIn), "in");
        require(IToken(tokenOut).transfer(to, amountOut), "out");
        if (zeroForOne) {
            reserve0 = reserveIn + amountIn;
            reserve1 = reserveOut - amountOut;
        } else {
            reserve1 = reserveIn + amountIn;
            reserve0 = reserveOut - amountOut;
        }
        emit Swap(msg.sender, amountIn, amountOut, zeroForOne, to);
    }
}

/// A hot spot everybody writes, plus ways to read balances the executor treats specially.
/// Layout: count slot 0, last observed balance slot 1.
contract Counter {
    uint256 public count;
    uint256 public observed;

    function increment() external {
        count += 1;
    }

    function incrementBy(uint256 n) external {
        count += n;
    }

    /// Reads the fee recipient's balance: must see every earlier reward of the block.
    function observeCoinbase() external {
        observed = block.coinbase.balance;
    }

    /// Reads any balance: must see every earlier credit of the block.
    function observe(address who) external {
        observed = who.balance;
    }

    event Observed(uint256 value);

    /// Pays tokens from this contract's own balance: a credit the hints cannot see.
    function payToken(address token, address to, uint256 amount) external {
        IToken(token).transfer(to, amount);
    }

    /// Logs a token balance: must see every earlier (predicted) credit of the block.
    function observeToken(address token, address who) external {
        emit Observed(IToken(token).balanceOf(who));
    }

    /// Forwards the value to `to` from inside a contract.
    function forward(address payable to) external payable {
        (bool ok,) = to.call{value: msg.value}("");
        require(ok, "forward");
    }

    /// Burns gas: runs out of gas when given too little.
    function burn(uint256 rounds) external {
        uint256 x = count;
        for (uint256 i = 0; i < rounds; i++) {
            x = uint256(keccak256(abi.encode(x, i)));
            observed = x;
        }
    }

    function fail() external pure {
        revert("fail");
    }

    event Received(uint256 balance);

    /// Accepts ETH and logs its own balance, which a credit must not skip.
    receive() external payable {
        emit Received(address(this).balance);
    }
}

interface ICounter {
    function increment() external;
}

/// Calls another contract: a dependency no lane key sees.
contract Caller {
    uint256 public calls;

    function poke(address counter) external {
        calls += 1;
        ICounter(counter).increment();
    }
}

/// Created by Factory. Layout: value slot 0.
contract Child {
    uint256 public value;

    constructor() payable {
        value = 42;
    }

    function set(uint256 v) external {
        value = v;
    }

    function kill(address payable to) external {
        selfdestruct(to);
    }

    receive() external payable {}
}

/// CREATE and CREATE2, and a contract created and destroyed in one transaction.
contract Factory {
    address public last;

    function deploy() external payable returns (address child) {
        child = address(new Child{value: msg.value}());
        last = child;
    }

    function deploy2(bytes32 salt) external returns (address child) {
        child = address(new Child{salt: salt}());
        last = child;
    }

    function deployAndKill() external payable {
        Child child = new Child{value: msg.value}();
        child.kill(payable(msg.sender));
    }

    function killLast() external {
        Child(payable(last)).kill(payable(msg.sender));
    }
}
