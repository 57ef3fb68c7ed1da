// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title ChannelBase: what ChannelHub and its batch extension (ChannelBatch, run by delegatecall on the
/// hub's storage) share: the state types, the storage layout, the events and errors, and the helpers
/// that check states and signatures and move funds. Storage is declared here only, so the two contracts
/// can never disagree on where a slot lives.
abstract contract ChannelBase {
    /// @dev The state a caller passes in; participant1 is the lower address.
    struct Channel {
        address participant1;
        address participant2;
        address token; // address(0) for native ether
        uint256 challengePeriod;
        uint256 deposit1;
        uint256 deposit2;
        uint256 withdrawn1;
        uint256 withdrawn2;
    }

    /// @dev The fields of a balance proof that the contract keeps (nonce 0 means "no proof").
    struct Proof {
        uint256 nonce;
        uint256 transferredAmount;
        uint256 lockedAmount;
        bytes32 locksRoot;
    }

    /// @dev Added to a channel's state by a close. proof1 is signed by participant1, proof2 by participant2.
    struct Closing {
        address closer;
        uint256 settleTime; // the last second at which a proof may still be updated
        Proof proof1;
        Proof proof2;
    }

    /// @dev What a unilateral settle keeps for later unlocks; its hash is the settled channel's slot.
    /// locked1/locksRoot1 are participant1's outgoing locks (paid to participant2 when claimed).
    struct SettledLocks {
        address token;
        address participant1;
        uint256 locked1;
        bytes32 locksRoot1;
        address participant2;
        uint256 locked2;
        bytes32 locksRoot2;
    }

    /// @dev A 65-byte r || s || v signature in EIP-2098 compact form: vs = (v - 27) << 255 | s.
    /// All zero stands for "no signature" where the signer sends the transaction itself.
    struct Signature {
        bytes32 r;
        bytes32 vs;
    }

    bytes32 public constant SETTLED = bytes32(uint256(1));

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant BALANCE_PROOF_TYPEHASH = keccak256(
        "BalanceProof(bytes32 channelId,uint256 nonce,uint256 transferredAmount,uint256 lockedAmount,bytes32 locksRoot)"
    );
    bytes32 internal constant BALANCE_PROOF_UPDATE_TYPEHASH = keccak256(
        "BalanceProofUpdate(bytes32 channelId,uint256 nonce,uint256 transferredAmount,uint256 lockedAmount,bytes32 locksRoot)"
    );
    bytes32 internal constant WITHDRAW_TYPEHASH = keccak256(
        "Withdraw(bytes32 channelId,address participant,uint256 totalWithdraw,uint256 expiry,address receiver)"
    );
    bytes32 internal constant COOPERATIVE_SETTLE_TYPEHASH = keccak256(
        "CooperativeSettle(bytes32 channelId,address participant1,uint256 amount1,address receiver1,address participant2,uint256 amount2,address receiver2)"
    );
    // Signatures with s above half the curve order are malleable twins of valid ones (EIP-2).
    uint256 internal constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 internal constant HALF_CURVE_MASK = (1 << 255) - 1;

    /// @notice Channel id => commitment to the channel's state (zero: never opened).
    mapping(bytes32 channelId => bytes32 commitment) public channels;
    /// @notice Payouts whose transfer failed at settle, claimable by their recipient.
    mapping(address token => mapping(address recipient => uint256 amount)) public unclaimed;

    /// @notice The batch extension (ChannelBatch) that unknown calls are delegated to; zero until attached.
    address public extension;
    /// @dev Participant => keccak256 of its BLS public key (128-byte G1), registered with a proof of
    /// possession by the participant itself (ChannelBatch.registerBlsKey).
    mapping(address participant => bytes32 keyHash) internal blsKeys;
    /// @dev keccak256 of a list of signers (32-byte words, in batch order) => keccak256 of the sum of
    /// their registered BLS keys (ChannelBatch.registerBlsSigners).
    mapping(bytes32 signersId => bytes32 aggregateKeyHash) internal blsSigners;

    uint256 internal transient entered;

    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed participant1,
        address indexed participant2,
        address token,
        uint256 challengePeriod,
        uint256 deposit1,
        uint256 deposit2
    );
    event ChannelDeposit(bytes32 indexed channelId, address indexed participant, uint256 totalDeposit);
    event ChannelWithdraw(
        bytes32 indexed channelId, address indexed participant, uint256 totalWithdraw, address receiver
    );
    /// @dev The proof fields are the partner's proof (signed by the partner) that the closer submitted.
    event ChannelClosed(
        bytes32 indexed channelId,
        address indexed closer,
        uint256 settleTime,
        uint256 nonce,
        uint256 transferredAmount,
        uint256 lockedAmount,
        bytes32 locksRoot
    );
    /// @dev The proof fields are the closer's proof (signed by the closer) that replaced the stored one.
    event BalanceProofUpdated(
        bytes32 indexed channelId,
        address indexed signer,
        uint256 nonce,
        uint256 transferredAmount,
        uint256 lockedAmount,
        bytes32 locksRoot
    );
    event ChannelSettled(
        bytes32 indexed channelId, uint256 amount1, uint256 amount2, uint256 locked1, uint256 locked2
    );
    event ChannelCooperativelySettled(
        bytes32 indexed channelId, uint256 amount1, address receiver1, uint256 amount2, address receiver2
    );
    /// @dev `sender`'s locks: `claimed` went to its partner, `returned` back to `sender`.
    event ChannelUnlocked(bytes32 indexed channelId, address indexed sender, uint256 claimed, uint256 returned);
    event PayoutDeferred(address indexed token, address indexed recipient, uint256 amount);
    event PayoutClaimed(address indexed token, address indexed recipient, address to, uint256 amount);

    error InvalidChallengeBounds(uint256 minimum, uint256 maximum);
    error ChallengePeriodOutOfBounds(uint256 challengePeriod);
    error InvalidPartner(address partner);
    error ChannelExists(bytes32 channelId);
    error UnknownChannel(bytes32 channelId);
    error StateMismatch(bytes32 channelId);
    error NotParticipant(address account);
    error DepositNotIncreasing(uint256 current, uint256 requested);
    error DepositOverflow();
    error WrongEtherAmount(uint256 expected, uint256 sent);
    error TokenAmountMismatch(uint256 expected, uint256 received);
    error TokenCallFailed(address token);
    error EtherTransferFailed(address to);
    error InvalidSignature();
    error WrongSigner(address expected, address recovered);
    error UnsignedProof();
    error WithdrawExpired(uint256 expiry);
    error WithdrawNotIncreasing(uint256 current, uint256 requested);
    error WithdrawExceedsChannel(uint256 amount, uint256 available);
    error InvalidReceiver();
    error NonceNotIncreasing(uint256 stored, uint256 submitted);
    error ChallengePeriodOver(uint256 settleTime);
    error ChallengePeriodNotOver(uint256 settleTime);
    error PayoutMismatch(uint256 total, uint256 available);
    error NothingToClaim();
    error NothingLocked(address sender);
    error MalformedLocks(uint256 length);
    error LocksRootMismatch(bytes32 stored, bytes32 computed);
    error Reentrancy();
    error ExtensionAttached(address extension);
    error WrongExtension(bytes32 codehash);
    error NoExtension();

    modifier nonReentrant() {
        if (entered != 0) revert Reentrancy();
        entered = 1;
        _;
        entered = 0;
    }

    // ------------------------------------------------------------------ shared helpers

    function _refuseState(bytes32 channelId, bytes32 stored) internal pure {
        if (stored == 0) revert UnknownChannel(channelId);
        revert StateMismatch(channelId);
    }

    function _held(Channel calldata ch) internal pure returns (uint256) {
        return ch.deposit1 + ch.deposit2 - ch.withdrawn1 - ch.withdrawn2;
    }

    function _saturatingAdd(uint256 a, uint256 b) internal pure returns (uint256) {
        unchecked {
            uint256 sum = a + b;
            return sum < a ? type(uint256).max : sum;
        }
    }

    function _checkSigner(bytes32 digest, Signature calldata signature, address expected) internal view {
        uint256 vs = uint256(signature.vs);
        uint256 s = vs & HALF_CURVE_MASK;
        // Only low-s signatures can be written compactly, so no malleable twin gets through.
        if (s > HALF_CURVE_ORDER) revert InvalidSignature();
        address recovered;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, digest)
            mstore(add(ptr, 0x20), add(27, shr(255, vs)))
            mstore(add(ptr, 0x40), calldataload(signature))
            mstore(add(ptr, 0x60), s)
            // The precompile returns nothing for an invalid signature: the zeroed word then stays zero.
            mstore(0x00, 0)
            pop(staticcall(gas(), 1, ptr, 0x80, 0x00, 0x20))
            recovered := mload(0x00)
        }
        if (recovered == address(0)) revert InvalidSignature();
        if (recovered != expected) revert WrongSigner(expected, recovered);
    }

    /// @dev The participant who sends the transaction has consented by signing it: its own signature
    /// may then be all zero (one ecrecover saved).
    function _checkConsent(bytes32 digest, Signature calldata signature, address participant) internal view {
        if (signature.r == 0 && signature.vs == 0 && msg.sender == participant) return;
        _checkSigner(digest, signature, participant);
    }

    /// @dev Take `amount` from the caller; for a token, the balance must grow by exactly `amount`.
    function _collect(address token, uint256 amount) internal {
        if (token == address(0)) {
            if (msg.value != amount) revert WrongEtherAmount(amount, msg.value);
            return;
        }
        if (msg.value != 0) revert WrongEtherAmount(0, msg.value);
        if (amount == 0) return;
        uint256 before = IERC20Minimal(token).balanceOf(address(this));
        _tokenCall(token, abi.encodeCall(IERC20Minimal.transferFrom, (msg.sender, address(this), amount)));
        uint256 received = IERC20Minimal(token).balanceOf(address(this)) - before;
        if (received != amount) revert TokenAmountMismatch(amount, received);
    }

    /// @dev Pay or revert: for withdraw and claim, where only the payee is hurt by a failure.
    function _send(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            (bool sent, bytes memory reason) = to.call{value: amount}("");
            if (!sent) _bubble(reason, abi.encodeWithSelector(EtherTransferFailed.selector, to));
            return;
        }
        bool ok;
        bool returnedTrue;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0xa9059cbb)) // transfer(address,uint256)
            mstore(add(ptr, 0x04), to)
            mstore(add(ptr, 0x24), amount)
            mstore(0x00, 0)
            ok := call(gas(), token, 0, ptr, 0x44, 0x00, 0x20)
            // true, or nothing at all from a contract (USDT and the like)
            switch returndatasize()
            case 0 { returnedTrue := gt(extcodesize(token), 0) }
            case 32 { returnedTrue := eq(mload(0x00), 1) }
            default { returnedTrue := 0 }
        }
        if (!ok) {
            bytes memory reason = new bytes(0);
            assembly ("memory-safe") {
                reason := mload(0x40)
                mstore(reason, returndatasize())
                returndatacopy(add(reason, 0x20), 0, returndatasize())
                mstore(0x40, add(add(reason, 0x20), returndatasize()))
            }
            _bubble(reason, abi.encodeWithSelector(TokenCallFailed.selector, token));
        }
        if (!returnedTrue) revert TokenCallFailed(token);
    }

    /// @dev Pay, or record the payout as claimable: one side's failing receiver must not block the other.
    /// Nothing the callee returns is copied beyond one word, so no answer, however long, can make the
    /// payout (and with it the other side's) run out of gas.
    function _payOrDefer(address token, address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            switch token
            case 0 { ok := call(gas(), to, amount, 0, 0, 0, 0) }
            default {
                let ptr := mload(0x40)
                mstore(ptr, shl(224, 0xa9059cbb)) // transfer(address,uint256)
                mstore(add(ptr, 0x04), to)
                mstore(add(ptr, 0x24), amount)
                mstore(0x00, 0)
                ok := call(gas(), token, 0, ptr, 0x44, 0x00, 0x20)
                // true, or nothing at all from a contract (USDT and the like)
                switch returndatasize()
                case 0 { ok := and(ok, gt(extcodesize(token), 0)) }
                case 32 { ok := and(ok, eq(mload(0x00), 1)) }
                default { ok := 0 }
            }
        }
        if (!ok) {
            unclaimed[token][to] += amount;
            emit PayoutDeferred(token, to, amount);
        }
    }

    function _tokenCall(address token, bytes memory data) internal {
        (bool ok, bytes memory result) = token.call(data);
        if (!ok) _bubble(result, abi.encodeWithSelector(TokenCallFailed.selector, token));
        if (!_returnedTrue(token, result)) revert TokenCallFailed(token);
    }

    /// @dev Tokens that return nothing (USDT) are accepted, but only if the address holds code at all.
    function _returnedTrue(address token, bytes memory result) internal view returns (bool) {
        if (result.length == 0) return token.code.length > 0;
        return result.length == 32 && abi.decode(result, (uint256)) == 1;
    }

    function _bubble(bytes memory reason, bytes memory fallbackReason) internal pure {
        bytes memory data = reason.length > 0 ? reason : fallbackReason;
        assembly ("memory-safe") {
            revert(add(data, 32), mload(data))
        }
    }

    /// @dev The EIP-712 digest of Withdraw(channelId, participant, totalWithdraw, expiry, receiver).
    function _withdrawDigest(
        bytes32 separator,
        bytes32 channelId,
        address participant,
        uint256 totalWithdraw,
        uint256 expiry,
        address receiver
    ) internal pure returns (bytes32 digest) {
        bytes32 typeHash = WITHDRAW_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), channelId)
            mstore(add(ptr, 0x40), participant)
            mstore(add(ptr, 0x60), totalWithdraw)
            mstore(add(ptr, 0x80), expiry)
            mstore(add(ptr, 0xa0), receiver)
            mstore(add(ptr, 0x40), keccak256(ptr, 0xc0))
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), separator)
            digest := keccak256(add(ptr, 0x1e), 0x42)
        }
    }

    /// @dev The EIP-712 digest of CooperativeSettle(channelId, participant1, amount1, receiver1,
    /// participant2, amount2, receiver2).
    function _cooperativeSettleDigest(
        bytes32 separator,
        bytes32 channelId,
        address participant1,
        uint256 amount1,
        address receiver1,
        address participant2,
        uint256 amount2,
        address receiver2
    ) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                COOPERATIVE_SETTLE_TYPEHASH,
                channelId,
                participant1,
                amount1,
                receiver1,
                participant2,
                amount2,
                receiver2
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", separator, structHash));
    }

    function _buildDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("channeld"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @dev keccak256(abi.encode(ch)) and the same with word `field` replaced by `value`, hashed from one
    /// copy of the calldata words (dirty address bits change the hash, so they fail the slot check).
    function _stateHashes(Channel calldata ch, uint256 field, uint256 value)
        internal
        pure
        returns (bytes32 current, bytes32 next)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, ch, 256)
            current := keccak256(ptr, 256)
            mstore(add(ptr, shl(5, field)), value)
            next := keccak256(ptr, 256)
        }
    }
}
