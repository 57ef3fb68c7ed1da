// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ChannelBase} from "./ChannelBase.sol";
import {SecretRegistry} from "./SecretRegistry.sol";
import {BATCH_CODEHASH} from "./BatchCodehash.sol";

/// @title ChannelHub: every two-party payment channel of one chain, native ether and ERC-20 alike.
/// @notice One storage slot per channel holds a keccak256 commitment to the channel's whole state.
/// Callers pass the current state in calldata; the contract checks it against the commitment, applies
/// the change, stores the new commitment and emits an event carrying everything a follower needs to
/// rebuild that state. Gas, not elegance, set this shape: see docs/gas.md.
///
/// Commitments (preimage lengths differ, so one kind can never pass for another):
///   open:    keccak256(abi.encode(Channel))                   8 words
///   closed:  keccak256(abi.encode(Channel, Closing))         18 words
///   settled: after a cooperative settle, SETTLED; after a unilateral settle, zero (the refund pays for
///            a good part of the settle) when nothing stays locked, else keccak256(abi.encode(token,
///            participant1, locked1, locksRoot1, participant2, locked2, locksRoot2)), 7 words, kept for
///            unlock, which zeroes the side it releases and clears the slot once nothing stays locked.
/// Channel ids never repeat: an id hashes the opener, the partner, a salt and the opening block's
/// timestamp; a slot is non-zero from its opening until a unilateral settle or the last unlock, which
/// come strictly later than the opening second, so no later opening can hash to a cleared id.
/// Batches of many channels (ChannelBatch, docs/batch.md) run on this contract's storage through its
/// fallback, once the one extension whose code hash is compiled in here has been attached.
contract ChannelHub is ChannelBase {
    /// @dev proto/locks.md: a packed lock is amount || expiration || secrethash, 32 bytes each.
    uint256 private constant PACKED_LOCK_SIZE = 96;
    uint256 public constant MAX_LOCKS = 32;

    /// @notice withdrawPacked's calldata is not its 272-byte layout.
    error InvalidPackedCall();

    /// @notice Where unlock looks up when each secret was revealed (created by this contract).
    SecretRegistry public immutable secretRegistry;
    uint256 public immutable minChallengePeriod;
    uint256 public immutable maxChallengePeriod;
    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    constructor(uint256 minChallengePeriod_, uint256 maxChallengePeriod_) {
        if (minChallengePeriod_ == 0 || minChallengePeriod_ > maxChallengePeriod_) {
            revert InvalidChallengeBounds(minChallengePeriod_, maxChallengePeriod_);
        }
        secretRegistry = new SecretRegistry();
        minChallengePeriod = minChallengePeriod_;
        maxChallengePeriod = maxChallengePeriod_;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
    }

    // ------------------------------------------------------------------ lifecycle

    /// @notice Open a channel with `partner`; `deposit` (may be zero) is the opener's first total deposit.
    /// The id is keccak256(abi.encode(opener, partner, salt, block.timestamp)), also in ChannelOpened.
    function openChannel(address partner, address token, uint256 challengePeriod, uint256 salt, uint256 deposit)
        external
        payable
        nonReentrant
        returns (bytes32 channelId)
    {
        if (partner == address(0) || partner == msg.sender) revert InvalidPartner(partner);
        if (challengePeriod < minChallengePeriod || challengePeriod > maxChallengePeriod) {
            revert ChallengePeriodOutOfBounds(challengePeriod);
        }
        channelId = channelIdOf(msg.sender, partner, salt, block.timestamp);
        if (channels[channelId] != 0) revert ChannelExists(channelId);
        Channel memory ch;
        ch.token = token;
        ch.challengePeriod = challengePeriod;
        if (msg.sender < partner) {
            (ch.participant1, ch.participant2, ch.deposit1) = (msg.sender, partner, deposit);
        } else {
            (ch.participant1, ch.participant2, ch.deposit2) = (partner, msg.sender, deposit);
        }
        channels[channelId] = keccak256(abi.encode(ch));
        emit ChannelOpened(channelId, ch.participant1, ch.participant2, token, challengePeriod, ch.deposit1, ch.deposit2);
        _collect(token, deposit);
    }

    /// @notice Raise `participant`'s total deposit to `totalDeposit`; the caller pays the difference.
    function setTotalDeposit(bytes32 channelId, Channel calldata ch, address participant, uint256 totalDeposit)
        external
        payable
        nonReentrant
    {
        _checkOpen(channelId, ch);
        Channel memory next = ch;
        uint256 current;
        if (participant == ch.participant1) {
            (current, next.deposit1) = (ch.deposit1, totalDeposit);
        } else if (participant == ch.participant2) {
            (current, next.deposit2) = (ch.deposit2, totalDeposit);
        } else {
            revert NotParticipant(participant);
        }
        if (totalDeposit <= current) revert DepositNotIncreasing(current, totalDeposit);
        // Refused here so that no later sum of the two deposits can overflow (settle must never revert).
        if (next.deposit1 > type(uint256).max - next.deposit2) revert DepositOverflow();
        channels[channelId] = keccak256(abi.encode(next));
        emit ChannelDeposit(channelId, participant, totalDeposit);
        _collect(ch.token, totalDeposit - current);
    }

    /// @notice Pay `participant`'s withdrawal up to `totalWithdraw` to `receiver` without closing.
    /// Both participants sign Withdraw(channelId, participant, totalWithdraw, expiry, receiver); the one
    /// sending the transaction may pass an empty signature instead of its own.
    function setTotalWithdraw(
        bytes32 channelId,
        Channel calldata ch,
        address participant,
        uint256 totalWithdraw,
        uint256 expiry,
        address receiver,
        Signature calldata signature1,
        Signature calldata signature2
    ) external {
        (bytes32 next, uint256 amount, bytes32 digest,) =
            _prepareWithdraw(channelId, ch, participant, totalWithdraw, expiry, receiver);
        _checkConsent(digest, signature1, ch.participant1);
        _checkConsent(digest, signature2, ch.participant2);
        _finishWithdraw(channelId, next, participant, totalWithdraw, receiver, ch.token, amount);
    }

    /// @notice setTotalWithdraw for the sender's own withdrawal to itself, in less calldata: the sender
    /// is both the participant and the receiver, so only the partner's Withdraw signature travels, and the
    /// arguments are packed, not ABI-encoded (a zero byte of calldata still costs 4 gas):
    ///   channelId 32 | participant1 20 | participant2 20 | token 20 | challengePeriod 4 | deposit1 16 |
    ///   deposit2 16 | withdrawn1 16 | withdrawn2 16 | totalWithdraw 16 | expiry 32 | r 32 | vs 32
    /// (272 bytes after the selector). A state whose values do not fit these widths uses setTotalWithdraw.
    function withdrawPacked() external {
        // The most frequent call of a merchant, so written close to the metal: the checks of
        // _prepareWithdraw on the unpacked words, the digest and the signature recovery inline. Not even
        // the lock is read: every function stores its new commitment before its external call, so a
        // re-entry sees current states and takes nothing twice.
        if (msg.data.length != 276) revert InvalidPackedCall();
        bytes32 channelId;
        uint256 totalWithdraw;
        uint256 expiry;
        address token;
        assembly ("memory-safe") {
            channelId := calldataload(4)
            token := shr(96, calldataload(76))
            totalWithdraw := shr(128, calldataload(164))
            expiry := calldataload(180)
        }
        if (block.timestamp > expiry) revert WithdrawExpired(expiry);
        bytes32 separator = domainSeparator();
        bytes32 typeHash = WITHDRAW_TYPEHASH;
        uint256 field; // the sender's withdrawn word: 6 or 7, else 0
        address partner;
        bytes32 stored;
        bytes32 next;
        bytes32 slot;
        uint256 current;
        uint256 available;
        uint256 s;
        address recovered;
        assembly ("memory-safe") {
            let first := shr(96, calldataload(36))
            let second := shr(96, calldataload(56))
            if eq(caller(), first) { field := 6 partner := second }
            if eq(caller(), second) { field := 7 partner := first }
            let ptr := mload(0x40)
            mstore(ptr, first)
            mstore(add(ptr, 0x20), second)
            mstore(add(ptr, 0x40), token)
            mstore(add(ptr, 0x60), shr(224, calldataload(96)))
            mstore(add(ptr, 0x80), shr(128, calldataload(100)))
            mstore(add(ptr, 0xa0), shr(128, calldataload(116)))
            mstore(add(ptr, 0xc0), shr(128, calldataload(132)))
            mstore(add(ptr, 0xe0), shr(128, calldataload(148)))
            stored := keccak256(ptr, 0x100)
            current := mload(add(ptr, shl(5, field)))
            // A committed state never withdraws more than its deposits (both checked when committed).
            available := sub(add(mload(add(ptr, 0x80)), mload(add(ptr, 0xa0))), add(mload(add(ptr, 0xc0)), mload(add(ptr, 0xe0))))
            mstore(add(ptr, shl(5, field)), totalWithdraw)
            next := keccak256(ptr, 0x100)
            mstore(0x00, channelId)
            mstore(0x20, channels.slot)
            slot := keccak256(0x00, 0x40)
            // Withdraw(channelId, participant = sender, totalWithdraw, expiry, receiver = sender)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), channelId)
            mstore(add(ptr, 0x40), caller())
            mstore(add(ptr, 0x60), totalWithdraw)
            mstore(add(ptr, 0x80), expiry)
            mstore(add(ptr, 0xa0), caller())
            mstore(add(ptr, 0x40), keccak256(ptr, 0xc0))
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), separator)
            let digest := keccak256(add(ptr, 0x1e), 0x42)
            let vs := calldataload(244)
            s := and(vs, shr(1, not(0)))
            mstore(ptr, digest)
            mstore(add(ptr, 0x20), add(27, shr(255, vs)))
            mstore(add(ptr, 0x40), calldataload(212))
            mstore(add(ptr, 0x60), s)
            mstore(0x00, 0)
            pop(staticcall(gas(), 1, ptr, 0x80, 0x00, 0x20))
            recovered := mload(0x00)
        }
        if (field == 0) revert NotParticipant(msg.sender);
        bytes32 held;
        assembly ("memory-safe") {
            held := sload(slot)
        }
        if (held != stored) _refuseState(channelId, held);
        if (totalWithdraw <= current) revert WithdrawNotIncreasing(current, totalWithdraw);
        uint256 amount;
        unchecked {
            amount = totalWithdraw - current;
        }
        if (amount > available) revert WithdrawExceedsChannel(amount, available);
        // Only low-s signatures can be written compactly, so no malleable twin gets through.
        if (s > HALF_CURVE_ORDER || recovered == address(0)) revert InvalidSignature();
        if (recovered != partner) revert WrongSigner(partner, recovered);
        assembly ("memory-safe") {
            sstore(slot, next)
        }
        emit ChannelWithdraw(channelId, msg.sender, totalWithdraw, msg.sender);
        _send(token, msg.sender, amount);
    }

    /// @notice Close with the partner's latest balance proof (nonce 0 and all-zero fields for none).
    function closeChannel(
        bytes32 channelId,
        Channel calldata ch,
        Proof calldata partnerProof,
        Signature calldata partnerSignature
    ) external nonReentrant {
        _checkOpen(channelId, ch);
        address partner;
        if (msg.sender == ch.participant1) {
            partner = ch.participant2;
        } else if (msg.sender == ch.participant2) {
            partner = ch.participant1;
        } else {
            revert NotParticipant(msg.sender);
        }
        _checkProof(channelId, partnerProof, partnerSignature, partner);
        Closing memory closing;
        closing.closer = msg.sender;
        closing.settleTime = block.timestamp + ch.challengePeriod;
        if (partner == ch.participant1) closing.proof1 = partnerProof;
        else closing.proof2 = partnerProof;
        channels[channelId] = keccak256(abi.encode(ch, closing));
        emit ChannelClosed(
            channelId,
            msg.sender,
            closing.settleTime,
            partnerProof.nonce,
            partnerProof.transferredAmount,
            partnerProof.lockedAmount,
            partnerProof.locksRoot
        );
    }

    /// @notice During the challenge period, replace the closer's stored proof by a higher-nonce one.
    /// The non-closing participant submits it itself, or anyone (a watchtower) submits it with the
    /// non-closing participant's BalanceProofUpdate signature over the same fields: without that, a closer
    /// could sign itself a fresh proof with a higher nonce and a lower amount.
    function updateBalanceProof(
        bytes32 channelId,
        Channel calldata ch,
        Closing calldata closing,
        Proof calldata closerProof,
        Signature calldata closerSignature,
        Signature calldata partnerAuthorization
    ) external nonReentrant {
        _checkClosed(channelId, ch, closing);
        if (block.timestamp > closing.settleTime) revert ChallengePeriodOver(closing.settleTime);
        bool closerIsFirst = closing.closer == ch.participant1;
        uint256 stored = closerIsFirst ? closing.proof1.nonce : closing.proof2.nonce;
        if (closerProof.nonce <= stored) revert NonceNotIncreasing(stored, closerProof.nonce);
        _checkSigner(_proofDigest(BALANCE_PROOF_TYPEHASH, channelId, closerProof), closerSignature, closing.closer);
        address nonCloser = closerIsFirst ? ch.participant2 : ch.participant1;
        if (msg.sender != nonCloser) {
            bytes32 authorization = _proofDigest(BALANCE_PROOF_UPDATE_TYPEHASH, channelId, closerProof);
            _checkSigner(authorization, partnerAuthorization, nonCloser);
        }
        Closing memory next = closing;
        if (closerIsFirst) next.proof1 = closerProof;
        else next.proof2 = closerProof;
        channels[channelId] = keccak256(abi.encode(ch, next));
        emit BalanceProofUpdated(
            channelId,
            closing.closer,
            closerProof.nonce,
            closerProof.transferredAmount,
            closerProof.lockedAmount,
            closerProof.locksRoot
        );
    }

    /// @notice After the challenge period, pay both sides; locked amounts stay held for a later unlock.
    function settleChannel(bytes32 channelId, Channel calldata ch, Closing calldata closing) external nonReentrant {
        _checkClosed(channelId, ch, closing);
        if (block.timestamp <= closing.settleTime) revert ChallengePeriodNotOver(closing.settleTime);
        (uint256 amount1, uint256 locked1, uint256 amount2, uint256 locked2) = settlement(ch, closing);
        channels[channelId] = locked1 == 0 && locked2 == 0
            ? bytes32(0)
            : keccak256(
                abi.encode(
                    ch.token,
                    ch.participant1,
                    locked1,
                    closing.proof1.locksRoot,
                    ch.participant2,
                    locked2,
                    closing.proof2.locksRoot
                )
            );
        emit ChannelSettled(channelId, amount1, amount2, locked1, locked2);
        _payOrDefer(ch.token, ch.participant1, amount1);
        _payOrDefer(ch.token, ch.participant2, amount2);
    }

    /// @notice Settle at once on payouts both participants signed; they must add up to all the channel
    /// holds. The participant sending the transaction may pass an empty signature instead of its own.
    function cooperativeSettle(
        bytes32 channelId,
        Channel calldata ch,
        uint256 amount1,
        address receiver1,
        uint256 amount2,
        address receiver2,
        Signature calldata signature1,
        Signature calldata signature2
    ) external nonReentrant {
        _checkOpen(channelId, ch);
        if (receiver1 == address(0) || receiver2 == address(0)) revert InvalidReceiver();
        uint256 available = _held(ch);
        if (amount1 > available || amount2 != available - amount1) {
            revert PayoutMismatch(amount1 > available ? amount1 : amount1 + amount2, available);
        }
        bytes32 digest = cooperativeSettleDigest(
            channelId, ch.participant1, amount1, receiver1, ch.participant2, amount2, receiver2
        );
        _checkConsent(digest, signature1, ch.participant1);
        _checkConsent(digest, signature2, ch.participant2);
        channels[channelId] = SETTLED;
        emit ChannelCooperativelySettled(channelId, amount1, receiver1, amount2, receiver2);
        _payOrDefer(ch.token, receiver1, amount1);
        _payOrDefer(ch.token, receiver2, amount2);
    }

    /// @notice After a unilateral settle, release `sender`'s locked amount: each lock whose secret was
    /// registered at or before its expiration goes to the partner, the rest back to `sender`. Anyone may
    /// call it with `packedLocks`, the locks that `sender`'s last proof committed to (its locksRoot), in
    /// order. The side's stored locked amount becomes zero, so it cannot be unlocked twice.
    function unlock(bytes32 channelId, SettledLocks calldata settled, address sender, bytes calldata packedLocks)
        external
        nonReentrant
    {
        bytes32 stored = channels[channelId];
        if (stored != keccak256(abi.encode(settled))) _refuseState(channelId, stored);
        SettledLocks memory next = settled;
        (uint256 locked, bytes32 root, address receiver) = _lockedSide(next, sender);
        if (locked == 0) revert NothingLocked(sender);
        uint256 length = packedLocks.length;
        if (length % PACKED_LOCK_SIZE != 0 || length > MAX_LOCKS * PACKED_LOCK_SIZE) revert MalformedLocks(length);
        bytes32 computed = packedLocks.length == 0 ? bytes32(0) : keccak256(packedLocks);
        if (computed != root) revert LocksRootMismatch(root, computed);
        uint256 claimed = _claimable(packedLocks);
        // The signed locks may add up to more than settle could keep (an insolvent sender): pay what is held.
        if (claimed > locked) claimed = locked;
        channels[channelId] = next.locked1 == 0 && next.locked2 == 0 ? bytes32(0) : keccak256(abi.encode(next));
        emit ChannelUnlocked(channelId, sender, claimed, locked - claimed);
        _payOrDefer(settled.token, receiver, claimed);
        _payOrDefer(settled.token, sender, locked - claimed);
    }

    /// @notice Attach the batch extension (ChannelBatch), once. Anyone may: only code whose hash this
    /// contract was compiled with is accepted, so the choice is the source's, not the caller's.
    function attachExtension(address batch) external {
        if (extension != address(0)) revert ExtensionAttached(extension);
        if (batch.codehash != BATCH_CODEHASH) revert WrongExtension(batch.codehash);
        extension = batch;
    }

    /// @notice Plain ether is refused: deposits name their channel.
    receive() external payable {
        revert WrongEtherAmount(0, msg.value);
    }

    /// @notice Every other call goes to the batch extension, run on this contract's storage.
    fallback() external payable {
        address target = extension;
        if (target == address(0)) revert NoExtension();
        // Memory past the free pointer only, so the optimiser keeps treating the contract as memory-safe.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let ok := delegatecall(gas(), target, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(ok) { revert(ptr, returndatasize()) }
            return(ptr, returndatasize())
        }
    }

    /// @notice Pay the caller's deferred payouts in `token` to `to`.
    function claim(address token, address to) external nonReentrant {
        uint256 amount = unclaimed[token][msg.sender];
        if (amount == 0) revert NothingToClaim();
        if (to == address(0)) revert InvalidReceiver();
        unclaimed[token][msg.sender] = 0;
        emit PayoutClaimed(token, msg.sender, to, amount);
        _send(token, to, amount);
    }

    // ------------------------------------------------------------------ views

    function channelIdOf(address opener, address partner, uint256 salt, uint256 openedAt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(opener, partner, salt, openedAt));
    }

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == cachedChainId ? cachedDomainSeparator : _buildDomainSeparator();
    }

    function balanceProofDigest(
        bytes32 channelId,
        uint256 nonce,
        uint256 transferredAmount,
        uint256 lockedAmount,
        bytes32 locksRoot
    ) external view returns (bytes32) {
        return _proofDigest(BALANCE_PROOF_TYPEHASH, channelId, Proof(nonce, transferredAmount, lockedAmount, locksRoot));
    }

    function balanceProofUpdateDigest(
        bytes32 channelId,
        uint256 nonce,
        uint256 transferredAmount,
        uint256 lockedAmount,
        bytes32 locksRoot
    ) external view returns (bytes32) {
        return _proofDigest(
            BALANCE_PROOF_UPDATE_TYPEHASH, channelId, Proof(nonce, transferredAmount, lockedAmount, locksRoot)
        );
    }

    function withdrawDigest(
        bytes32 channelId,
        address participant,
        uint256 totalWithdraw,
        uint256 expiry,
        address receiver
    ) public view returns (bytes32) {
        return _withdrawDigest(domainSeparator(), channelId, participant, totalWithdraw, expiry, receiver);
    }

    function cooperativeSettleDigest(
        bytes32 channelId,
        address participant1,
        uint256 amount1,
        address receiver1,
        address participant2,
        uint256 amount2,
        address receiver2
    ) public view returns (bytes32) {
        return _cooperativeSettleDigest(
            domainSeparator(), channelId, participant1, amount1, receiver1, participant2, amount2, receiver2
        );
    }

    /// @notice What settle pays each participant and keeps locked on each side's behalf.
    /// Saturating arithmetic: no pair of signed amounts can make it revert, and the four results always
    /// add up to exactly what the channel holds.
    function settlement(Channel calldata ch, Closing calldata closing)
        public
        pure
        returns (uint256 amount1, uint256 locked1, uint256 amount2, uint256 locked2)
    {
        uint256 available = _held(ch);
        uint256 credit1 = _saturatingAdd(ch.deposit1, closing.proof2.transferredAmount);
        uint256 debit1 = _saturatingAdd(ch.withdrawn1, closing.proof1.transferredAmount);
        uint256 net1 = credit1 > debit1 ? credit1 - debit1 : 0;
        if (net1 > available) net1 = available;
        uint256 net2 = available - net1;
        locked1 = closing.proof1.lockedAmount < net1 ? closing.proof1.lockedAmount : net1;
        locked2 = closing.proof2.lockedAmount < net2 ? closing.proof2.lockedAmount : net2;
        amount1 = net1 - locked1;
        amount2 = net2 - locked2;
    }

    // ------------------------------------------------------------------ internals

    function _checkOpen(bytes32 channelId, Channel calldata ch) private view {
        bytes32 stored = channels[channelId];
        if (stored != keccak256(abi.encode(ch))) _refuseState(channelId, stored);
    }

    function _checkClosed(bytes32 channelId, Channel calldata ch, Closing calldata closing) private view {
        bytes32 expected;
        // keccak256(abi.encode(ch, closing)) from the calldata words (both static: 8 and 10 words)
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, ch, 0x100)
            calldatacopy(add(ptr, 0x100), closing, 0x140)
            expected := keccak256(ptr, 0x240)
        }
        bytes32 stored = channels[channelId];
        if (stored != expected) _refuseState(channelId, stored);
    }


    /// @dev Every check of a withdrawal but the signatures; returns the new commitment, the amount to pay,
    /// the Withdraw digest both must have signed and the participant's partner.
    function _prepareWithdraw(
        bytes32 channelId,
        Channel calldata ch,
        address participant,
        uint256 totalWithdraw,
        uint256 expiry,
        address receiver
    ) private view returns (bytes32 next, uint256 amount, bytes32 digest, address partner) {
        // No lock is taken: the only external call comes last, after the new commitment is stored, so a
        // re-entry sees the new state. Refused while another call holds the lock (a deposit's token call).
        if (entered != 0) revert Reentrancy();
        if (block.timestamp > expiry) revert WithdrawExpired(expiry);
        if (receiver == address(0)) revert InvalidReceiver();
        uint256 field;
        uint256 current;
        if (participant == ch.participant1) {
            (field, current, partner) = (6, ch.withdrawn1, ch.participant2);
        } else if (participant == ch.participant2) {
            (field, current, partner) = (7, ch.withdrawn2, ch.participant1);
        } else {
            revert NotParticipant(participant);
        }
        bytes32 stored;
        (stored, next) = _stateHashes(ch, field, totalWithdraw);
        if (channels[channelId] != stored) _refuseState(channelId, channels[channelId]);
        if (totalWithdraw <= current) revert WithdrawNotIncreasing(current, totalWithdraw);
        amount = totalWithdraw - current;
        uint256 available = _held(ch);
        if (amount > available) revert WithdrawExceedsChannel(amount, available);
        digest = withdrawDigest(channelId, participant, totalWithdraw, expiry, receiver);
    }

    function _finishWithdraw(
        bytes32 channelId,
        bytes32 next,
        address participant,
        uint256 totalWithdraw,
        address receiver,
        address token,
        uint256 amount
    ) private {
        channels[channelId] = next;
        emit ChannelWithdraw(channelId, participant, totalWithdraw, receiver);
        _send(token, receiver, amount);
    }

    /// @dev `sender`'s locked amount, locks root and partner; clears that side in `settled`.
    function _lockedSide(SettledLocks memory settled, address sender)
        private
        pure
        returns (uint256 locked, bytes32 root, address receiver)
    {
        if (sender == settled.participant1) {
            (locked, root, receiver) = (settled.locked1, settled.locksRoot1, settled.participant2);
            (settled.locked1, settled.locksRoot1) = (0, 0);
        } else if (sender == settled.participant2) {
            (locked, root, receiver) = (settled.locked2, settled.locksRoot2, settled.participant1);
            (settled.locked2, settled.locksRoot2) = (0, 0);
        } else {
            revert NotParticipant(sender);
        }
    }

    /// @dev The sum of the amounts of the locks whose secret was registered at or before their expiration.
    function _claimable(bytes calldata packedLocks) private view returns (uint256 claimed) {
        uint256 length = packedLocks.length;
        for (uint256 offset; offset < length; offset += PACKED_LOCK_SIZE) {
            uint256 amount;
            uint256 expiration;
            bytes32 secrethash;
            assembly ("memory-safe") {
                let at := add(packedLocks.offset, offset)
                amount := calldataload(at)
                expiration := calldataload(add(at, 0x20))
                secrethash := calldataload(add(at, 0x40))
            }
            uint256 revealedAt = secretRegistry.registrationTime(secrethash);
            if (revealedAt != 0 && revealedAt <= expiration) claimed = _saturatingAdd(claimed, amount);
        }
    }




    function _checkProof(bytes32 channelId, Proof calldata proof, Signature calldata signature, address signer)
        private
        view
    {
        if (proof.nonce == 0) {
            if (proof.transferredAmount != 0 || proof.lockedAmount != 0 || proof.locksRoot != 0) {
                revert UnsignedProof();
            }
            return;
        }
        _checkSigner(_proofDigest(BALANCE_PROOF_TYPEHASH, channelId, proof), signature, signer);
    }

    function _proofDigest(bytes32 typeHash, bytes32 channelId, Proof memory proof) private view returns (bytes32) {
        return _typedDigest(
            keccak256(
                abi.encode(
                    typeHash, channelId, proof.nonce, proof.transferredAmount, proof.lockedAmount, proof.locksRoot
                )
            )
        );
    }

    function _typedDigest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }









}
