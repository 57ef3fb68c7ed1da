// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title SecretRegistry: when each hash-lock secret was first revealed on chain.
/// @notice secrethash = sha256(secret), as in Lightning, so one secret can settle a payment on this chain,
/// on another chain and on Lightning at once (proto/locks.md). Registering is idempotent: the first
/// registration time is kept, a repeat changes nothing and emits nothing. Any contract may read it.
contract SecretRegistry {
    /// @notice sha256(secret) => timestamp of the block that first revealed the secret (zero: never).
    mapping(bytes32 secrethash => uint256 registeredAt) public registrationTime;

    event SecretRevealed(bytes32 indexed secrethash, bytes32 secret);

    /// @dev A zero secret is anyone's guess: a lock on sha256(0) would be claimable by all.
    error ZeroSecret();

    /// @notice Reveal `secret`; returns false if it was already registered.
    function registerSecret(bytes32 secret) external returns (bool) {
        return _register(secret);
    }

    /// @notice Reveal several secrets; returns how many were new.
    function registerSecretBatch(bytes32[] calldata secrets) external returns (uint256 registered) {
        for (uint256 i; i < secrets.length; ++i) {
            if (_register(secrets[i])) ++registered;
        }
    }

    function _register(bytes32 secret) private returns (bool) {
        if (secret == 0) revert ZeroSecret();
        bytes32 secrethash = sha256(abi.encode(secret));
        if (registrationTime[secrethash] != 0) return false;
        registrationTime[secrethash] = block.timestamp;
        emit SecretRevealed(secrethash, secret);
        return true;
    }
}
