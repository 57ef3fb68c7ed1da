// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title TestToken: a plain ERC-20 whose mint is public. For tests and benchmarks only.
/// @dev An allowance of type(uint256).max is never decremented, as in the common implementations.
contract TestToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error InsufficientBalance(uint256 balance, uint256 needed);
    error InsufficientAllowance(uint256 allowance, uint256 needed);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external virtual returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external virtual returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal virtual {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(balance, amount);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}

/// @title FeeOnTransferToken: burns 1% of every transfer, so the receiver gets less than was sent.
contract FeeOnTransferToken is TestToken {
    constructor() TestToken("Fee Token", "FEE") {}

    function _transfer(address from, address to, uint256 amount) internal override {
        uint256 fee = amount / 100;
        super._transfer(from, to, amount - fee);
        if (fee > 0) {
            uint256 balance = balanceOf[from];
            if (balance < fee) revert InsufficientBalance(balance, fee);
            balanceOf[from] = balance - fee;
            totalSupply -= fee;
            emit Transfer(from, address(0), fee);
        }
    }
}

/// @title ReentrantToken: once armed, its next transfer calls back into a target before moving funds,
/// and passes on the target's revert, so a test sees exactly how the re-entry was refused.
contract ReentrantToken is TestToken {
    address public target;
    bytes public payload;

    constructor() TestToken("Reentrant Token", "BAD") {}

    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    function _transfer(address from, address to, uint256 amount) internal override {
        address callee = target;
        if (callee != address(0)) {
            target = address(0);
            (bool ok, bytes memory reason) = callee.call(payload);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(reason, 32), mload(reason))
                }
            }
        }
        super._transfer(from, to, amount);
    }
}

/// @title EtherRefuser: a receiver that refuses ether, to test deferred payouts.
contract EtherRefuser {
    error Refused();

    receive() external payable {
        revert Refused();
    }
}
