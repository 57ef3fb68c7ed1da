// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title AllowanceToken: the ERC-20 surface the test tokens share (events, allowances, transfers); each
/// token keeps its balances its own way behind `_transfer`.
/// @dev An allowance of type(uint256).max is never decremented, as in the common implementations.
abstract contract AllowanceToken {
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error InsufficientBalance(uint256 balance, uint256 needed);
    error InsufficientAllowance(uint256 allowance, uint256 needed);

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

    function _transfer(address from, address to, uint256 amount) internal virtual;
}

/// @title TestToken: a plain ERC-20 whose mint is public. For tests and benchmarks only.
contract TestToken is AllowanceToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function _transfer(address from, address to, uint256 amount) internal virtual override {
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

/// @title RebasingToken: balances are shares times a multiplier its owner changes (like stETH or AMPL),
/// so every holder's balance moves on a rebase without any Transfer event.
/// @dev At a multiplier other than 1 a transfer moves whole shares, so the receiver may get a unit less.
contract RebasingToken is AllowanceToken {
    string public constant name = "Rebasing Token";
    string public constant symbol = "REB";
    uint8 public constant decimals = 18;
    address public immutable owner;
    uint256 public numerator = 1;
    uint256 public denominator = 1;
    uint256 public totalShares;
    mapping(address => uint256) public sharesOf;

    event Rebased(uint256 numerator, uint256 denominator);

    error NotOwner(address caller);
    error BadMultiplier(uint256 numerator, uint256 denominator);

    constructor() {
        owner = msg.sender;
    }

    function balanceOf(address holder) public view returns (uint256) {
        return sharesOf[holder] * numerator / denominator;
    }

    function totalSupply() external view returns (uint256) {
        return totalShares * numerator / denominator;
    }

    function rebase(uint256 numerator_, uint256 denominator_) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (numerator_ == 0 || denominator_ == 0) revert BadMultiplier(numerator_, denominator_);
        numerator = numerator_;
        denominator = denominator_;
        emit Rebased(numerator_, denominator_);
    }

    function mint(address to, uint256 amount) external {
        uint256 shares = amount * denominator / numerator;
        totalShares += shares;
        sharesOf[to] += shares;
        emit Transfer(address(0), to, amount);
    }

    function _transfer(address from, address to, uint256 amount) internal override {
        uint256 balance = balanceOf(from);
        if (balance < amount) revert InsufficientBalance(balance, amount);
        uint256 shares = amount * denominator / numerator;
        sharesOf[from] -= shares;
        sharesOf[to] += shares;
        emit Transfer(from, to, amount);
    }
}
