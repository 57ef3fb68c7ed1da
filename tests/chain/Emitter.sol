// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// A stand-in contract for chain-layer tests: one event, one custom error, one immutable.
contract Emitter {
    event Ping(uint256 indexed id, address sender);
    error TooBig(uint256 given, uint256 limit);

    uint256 public immutable limit;

    constructor(uint256 limit_) {
        limit = limit_;
    }

    function ping(uint256 id) external {
        if (id > limit) revert TooBig(id, limit);
        emit Ping(id, msg.sender);
    }
}
