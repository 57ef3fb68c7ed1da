// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ChannelBase} from "./ChannelBase.sol";
import {Bls12381} from "./Bls12381.sol";

interface IChallengeBounds {
    function minChallengePeriod() external view returns (uint256);
    function maxChallengePeriod() external view returns (uint256);
}

/// @title ChannelBatch: many channels of one participant (a hub) in one transaction.
/// @notice Runs only by delegatecall from ChannelHub's fallback, on the hub's storage and at the hub's
/// address (so EIP-712 digests and events are the hub's). The hub accepts exactly one extension, whose
/// runtime code hash is compiled into the hub, so attaching it needs no trusted party.
///
/// The sender of a batch is the one participant all its channels share. Each entry names one channel by
/// its id, the partner and the state fields (participant order and token follow from sender, partner and
/// the batch's token), plus `amount`: the sender's new total withdrawn (withdraw), its payout (close) or
/// its new total deposit (deposit). Partners consent in one of two ways:
///   ECDSA: each partner's EIP-712 Withdraw or CooperativeSettle signature, checked one by one.
///   BLS:   the entries are the leaves of a Merkle tree; every partner signs (BLS12-381, G2 signatures)
///          a message binding the root to chain, hub, kind, token, sender, receiver, expiry and count;
///          the contract rebuilds the root from the entries it executes and checks one aggregate signature
///          against the registered sum of the partners' keys.
contract ChannelBatch is ChannelBase {
    struct Entry {
        bytes32 channelId;
        address partner;
        uint256 challengePeriod;
        uint256 deposit1;
        uint256 deposit2;
        uint256 withdrawn1;
        uint256 withdrawn2;
        uint256 amount;
    }

    /// @dev What a BLS batch's aggregate signature and the sum of the signers' keys are (EIP-2537 encoding).
    struct BlsProof {
        bytes aggregateKey; // 128 bytes, G1
        bytes signature; // 256 bytes, G2
    }

    uint256 internal constant KIND_WITHDRAW = 1;
    uint256 internal constant KIND_CLOSE = 2;
    bytes32 internal constant WITHDRAW_LEAF = keccak256("channeld.batch.withdraw");
    bytes32 internal constant CLOSE_LEAF = keccak256("channeld.batch.close");
    bytes32 internal constant BATCH_ROOT = keccak256("channeld.batch.root.v1");

    error EmptyBatch();
    error SignatureCountMismatch(uint256 entries, uint256 signatures);
    error UnknownSigners(bytes32 signersId);
    error AggregateKeyMismatch(bytes32 signersId);
    error BlsSignatureInvalid();
    error InvalidProofOfPossession();
    error BlsKeyExists(address participant);
    error UnregisteredBlsKey(address participant);
    error BatchLengthMismatch(uint256 partners, uint256 deposits);

    // ------------------------------------------------------------------ batch open and deposit

    /// @notice Open a channel with each partner, the sender's first total deposit in each (may be zero),
    /// collecting all deposits in one transfer. Channel i uses salt `salt + i`.
    function openChannels(
        address token,
        uint256 challengePeriod,
        uint256 salt,
        address[] calldata partners,
        uint256[] calldata deposits
    ) external payable nonReentrant returns (bytes32[] memory ids) {
        if (partners.length != deposits.length) revert BatchLengthMismatch(partners.length, deposits.length);
        if (partners.length == 0) revert EmptyBatch();
        IChallengeBounds bounds = IChallengeBounds(address(this));
        if (challengePeriod < bounds.minChallengePeriod() || challengePeriod > bounds.maxChallengePeriod()) {
            revert ChallengePeriodOutOfBounds(challengePeriod);
        }
        ids = new bytes32[](partners.length);
        uint256 total;
        for (uint256 i; i < partners.length; ++i) {
            ids[i] = _openOne(partners[i], token, challengePeriod, salt + i, deposits[i]);
            total += deposits[i];
        }
        _collect(token, total);
    }

    /// @notice Raise the sender's total deposit in each channel to the entry's `amount`, in one transfer.
    function setTotalDeposits(address token, Entry[] calldata entries) external payable nonReentrant {
        if (entries.length == 0) revert EmptyBatch();
        uint256 buffer = _scratch();
        uint256 total;
        for (uint256 i; i < entries.length; ++i) {
            Entry calldata entry = entries[i];
            (bytes32 stored, uint256 current, uint256 field) = _load(buffer, entry, token, true);
            _checkSlot(entry.channelId, stored);
            if (entry.amount <= current) revert DepositNotIncreasing(current, entry.amount);
            uint256 other = field == 4 ? entry.deposit2 : entry.deposit1;
            if (entry.amount > type(uint256).max - other) revert DepositOverflow();
            channels[entry.channelId] = _rehash(buffer, field, entry.amount);
            emit ChannelDeposit(entry.channelId, msg.sender, entry.amount);
            total += entry.amount - current;
        }
        _collect(token, total);
    }

    // ------------------------------------------------------------------ batch withdraw

    /// @notice Withdraw the sender's earnings from every entry's channel to `receiver`, one transfer in
    /// all; signatures[i] is entry i's partner's Withdraw(channelId, sender, amount, expiry, receiver).
    function batchWithdraw(
        address token,
        address receiver,
        uint256 expiry,
        Entry[] calldata entries,
        Signature[] calldata signatures
    ) external nonReentrant {
        if (signatures.length != entries.length) revert SignatureCountMismatch(entries.length, signatures.length);
        bytes32 separator = _buildDomainSeparator();
        uint256 buffer = _prepare(receiver, expiry, entries.length);
        uint256 total;
        for (uint256 i; i < entries.length; ++i) {
            Entry calldata entry = entries[i];
            total += _withdrawOne(buffer, entry, token, receiver);
            bytes32 digest = _withdrawDigest(separator, entry.channelId, msg.sender, entry.amount, expiry, receiver);
            _checkSigner(digest, signatures[i], entry.partner);
        }
        _send(token, receiver, total);
    }

    /// @notice batchWithdraw with one BLS aggregate signature over the entries' Merkle root.
    function batchWithdrawBls(
        address token,
        address receiver,
        uint256 expiry,
        Entry[] calldata entries,
        BlsProof calldata proof
    ) external nonReentrant {
        uint256 buffer = _prepare(receiver, expiry, entries.length);
        (uint256 leaves, uint256 signers) = _blsBuffers(entries.length);
        uint256 total;
        for (uint256 i; i < entries.length; ++i) {
            Entry calldata entry = entries[i];
            total += _withdrawOne(buffer, entry, token, receiver);
            _record(leaves, signers, i, keccak256(abi.encode(WITHDRAW_LEAF, entry.channelId, entry.amount)), entry);
        }
        _checkBls(KIND_WITHDRAW, token, receiver, expiry, leaves, signers, entries.length, proof);
        _send(token, receiver, total);
    }

    // ------------------------------------------------------------------ batch cooperative close

    /// @notice Settle every entry's channel at once: the sender's payouts (`amount`) go to `receiver` in
    /// one transfer, each partner gets the rest of its channel to its own address. signatures[i] is entry
    /// i's partner's CooperativeSettle signature with those amounts and receivers.
    function batchCooperativeClose(
        address token,
        address receiver,
        Entry[] calldata entries,
        Signature[] calldata signatures
    ) external nonReentrant {
        if (signatures.length != entries.length) revert SignatureCountMismatch(entries.length, signatures.length);
        bytes32 separator = _buildDomainSeparator();
        uint256 buffer = _prepare(receiver, type(uint256).max, entries.length);
        uint256 total;
        for (uint256 i; i < entries.length; ++i) {
            Entry calldata entry = entries[i];
            uint256 partnerAmount = _closeOne(buffer, entry, token, receiver);
            total += entry.amount;
            bytes32 digest = msg.sender < entry.partner
                ? _cooperativeSettleDigest(
                    separator, entry.channelId, msg.sender, entry.amount, receiver, entry.partner, partnerAmount,
                    entry.partner
                )
                : _cooperativeSettleDigest(
                    separator, entry.channelId, entry.partner, partnerAmount, entry.partner, msg.sender, entry.amount,
                    receiver
                );
            _checkSigner(digest, signatures[i], entry.partner);
            _payOrDefer(token, entry.partner, partnerAmount);
        }
        _send(token, receiver, total);
    }

    /// @notice batchCooperativeClose with one BLS aggregate signature over the entries' Merkle root.
    function batchCooperativeCloseBls(
        address token,
        address receiver,
        uint256 expiry,
        Entry[] calldata entries,
        BlsProof calldata proof
    ) external nonReentrant {
        uint256 buffer = _prepare(receiver, expiry, entries.length);
        (uint256 leaves, uint256 signers) = _blsBuffers(entries.length);
        uint256 total;
        for (uint256 i; i < entries.length; ++i) {
            Entry calldata entry = entries[i];
            uint256 partnerAmount = _closeOne(buffer, entry, token, receiver);
            total += entry.amount;
            bytes32 leaf = keccak256(abi.encode(CLOSE_LEAF, entry.channelId, entry.amount, partnerAmount));
            _record(leaves, signers, i, leaf, entry);
            _payOrDefer(token, entry.partner, partnerAmount);
        }
        _checkBls(KIND_CLOSE, token, receiver, expiry, leaves, signers, entries.length, proof);
        _send(token, receiver, total);
    }

    // ------------------------------------------------------------------ BLS keys

    /// @notice Register the sender's BLS public key (128-byte G1) with its proof of possession: py-ecc's
    /// G2ProofOfPossession.PopProve, a signature of the compressed key under the PoP ciphersuite. The
    /// proof stops rogue-key attacks (a key made from others' keys cannot sign); registering from the
    /// participant's own address binds the key to that address, and so to its channels. Keys never change.
    function registerBlsKey(bytes calldata publicKey, bytes calldata proof) external {
        if (blsKeys[msg.sender] != 0) revert BlsKeyExists(msg.sender);
        bytes memory compressed = Bls12381.compressG1(publicKey);
        bytes memory challenge = Bls12381.hashToG2(compressed, Bls12381.POP_DST);
        if (proof.length != 256 || !Bls12381.verify(publicKey, challenge, proof)) revert InvalidProofOfPossession();
        blsKeys[msg.sender] = keccak256(publicKey);
    }

    /// @notice Record the sum of the registered keys of `signers` (in the order their channels will appear
    /// in BLS batches), so a batch checks one key instead of one per channel. Returns the signers' id.
    function registerBlsSigners(address[] calldata signers, bytes calldata keys) external returns (bytes32 id) {
        if (signers.length == 0) revert EmptyBatch();
        if (keys.length != 128 * signers.length) revert BatchLengthMismatch(signers.length, keys.length / 128);
        bytes memory sum = keys[0:128];
        _checkKey(signers[0], sum);
        for (uint256 i = 1; i < signers.length; ++i) {
            bytes memory key = keys[128 * i:128 * (i + 1)];
            _checkKey(signers[i], key);
            sum = Bls12381.addG1(sum, key);
        }
        id = keccak256(abi.encodePacked(signers));
        blsSigners[id] = keccak256(sum);
    }

    function blsKeyHash(address participant) external view returns (bytes32) {
        return blsKeys[participant];
    }

    function blsSignersKeyHash(bytes32 id) external view returns (bytes32) {
        return blsSigners[id];
    }

    /// @notice The G2 point a BLS batch's partners sign: RFC 9380 hash_to_curve of `message`.
    function hashToG2(bytes calldata message) external view returns (bytes memory) {
        return Bls12381.hashToG2(message, Bls12381.SIGNATURE_DST);
    }

    /// @notice The 32-byte message a BLS batch's partners sign (see the contract's notice).
    function batchMessage(
        uint256 kind,
        address token,
        address sender,
        address receiver,
        uint256 expiry,
        uint256 count,
        bytes32 root
    ) public view returns (bytes32) {
        return keccak256(abi.encode(BATCH_ROOT, block.chainid, address(this), kind, token, sender, receiver, expiry, count, root));
    }

    // ------------------------------------------------------------------ internals

    function _openOne(address partner, address token, uint256 challengePeriod, uint256 salt, uint256 deposit)
        private
        returns (bytes32 channelId)
    {
        if (partner == address(0) || partner == msg.sender) revert InvalidPartner(partner);
        channelId = keccak256(abi.encode(msg.sender, partner, salt, block.timestamp));
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
    }

    function _prepare(address receiver, uint256 expiry, uint256 count) private view returns (uint256) {
        if (count == 0) revert EmptyBatch();
        if (receiver == address(0)) revert InvalidReceiver();
        if (block.timestamp > expiry) revert WithdrawExpired(expiry);
        return _scratch();
    }

    /// @dev 256 bytes of memory, allocated once per batch, where each entry's state is rebuilt for hashing.
    function _scratch() private pure returns (uint256 buffer) {
        assembly ("memory-safe") {
            buffer := mload(0x40)
            mstore(0x40, add(buffer, 0x100))
        }
    }

    /// @dev Writes entry's state (abi.encode(Channel) layout) into `buffer` and returns its hash, the
    /// sender's current withdrawn (or deposit) total and that word's index.
    function _load(uint256 buffer, Entry calldata entry, address token, bool deposit)
        private
        view
        returns (bytes32 stored, uint256 current, uint256 field)
    {
        address partner = entry.partner;
        bool senderFirst = msg.sender < partner;
        (address first, address second) = senderFirst ? (msg.sender, partner) : (partner, msg.sender);
        field = (deposit ? 4 : 6) + (senderFirst ? 0 : 1);
        assembly ("memory-safe") {
            mstore(buffer, first)
            mstore(add(buffer, 0x20), second)
            mstore(add(buffer, 0x40), token)
            // challengePeriod, deposit1, deposit2, withdrawn1, withdrawn2: entry words 2 to 6
            calldatacopy(add(buffer, 0x60), add(entry, 0x40), 0xa0)
            stored := keccak256(buffer, 0x100)
            current := mload(add(buffer, shl(5, field)))
        }
    }

    function _rehash(uint256 buffer, uint256 field, uint256 value) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            mstore(add(buffer, shl(5, field)), value)
            next := keccak256(buffer, 0x100)
        }
    }

    function _checkSlot(bytes32 channelId, bytes32 expected) private view {
        bytes32 stored = channels[channelId];
        if (stored != expected) _refuseState(channelId, stored);
    }

    function _heldIn(Entry calldata entry) private pure returns (uint256) {
        return entry.deposit1 + entry.deposit2 - entry.withdrawn1 - entry.withdrawn2;
    }

    /// @dev Every check and effect of one channel's withdrawal but the consent; returns the amount paid.
    function _withdrawOne(uint256 buffer, Entry calldata entry, address token, address receiver)
        private
        returns (uint256 amount)
    {
        (bytes32 stored, uint256 current, uint256 field) = _load(buffer, entry, token, false);
        _checkSlot(entry.channelId, stored);
        if (entry.amount <= current) revert WithdrawNotIncreasing(current, entry.amount);
        amount = entry.amount - current;
        uint256 available = _heldIn(entry);
        if (amount > available) revert WithdrawExceedsChannel(amount, available);
        channels[entry.channelId] = _rehash(buffer, field, entry.amount);
        emit ChannelWithdraw(entry.channelId, msg.sender, entry.amount, receiver);
    }

    /// @dev Every check and effect of one channel's cooperative close but consent and payment; returns
    /// what the partner is owed.
    function _closeOne(uint256 buffer, Entry calldata entry, address token, address receiver)
        private
        returns (uint256 partnerAmount)
    {
        (bytes32 stored,,) = _load(buffer, entry, token, false);
        _checkSlot(entry.channelId, stored);
        uint256 available = _heldIn(entry);
        if (entry.amount > available) revert PayoutMismatch(entry.amount, available);
        partnerAmount = available - entry.amount;
        channels[entry.channelId] = SETTLED;
        if (msg.sender < entry.partner) {
            emit ChannelCooperativelySettled(entry.channelId, entry.amount, receiver, partnerAmount, entry.partner);
        } else {
            emit ChannelCooperativelySettled(entry.channelId, partnerAmount, entry.partner, entry.amount, receiver);
        }
    }

    function _blsBuffers(uint256 count) private pure returns (uint256 leaves, uint256 signers) {
        assembly ("memory-safe") {
            leaves := mload(0x40)
            signers := add(leaves, shl(5, count))
            mstore(0x40, add(signers, shl(5, count)))
        }
    }

    function _record(uint256 leaves, uint256 signers, uint256 i, bytes32 leaf, Entry calldata entry) private pure {
        address partner = entry.partner;
        assembly ("memory-safe") {
            mstore(add(leaves, shl(5, i)), leaf)
            mstore(add(signers, shl(5, i)), partner)
        }
    }

    /// @dev The Merkle root of `count` leaves, reduced in place: each level hashes pairs (left, right) in
    /// order and carries an odd last node up unchanged.
    function _merkleRoot(uint256 leaves, uint256 count) private pure returns (bytes32 root) {
        assembly ("memory-safe") {
            for {} gt(count, 1) {} {
                let half := shr(1, count)
                for { let i := 0 } lt(i, half) { i := add(i, 1) } {
                    mstore(add(leaves, shl(5, i)), keccak256(add(leaves, shl(6, i)), 0x40))
                }
                if and(count, 1) {
                    mstore(add(leaves, shl(5, half)), mload(add(leaves, shl(5, sub(count, 1)))))
                }
                count := add(half, and(count, 1))
            }
            root := mload(leaves)
        }
    }

    function _checkBls(
        uint256 kind,
        address token,
        address receiver,
        uint256 expiry,
        uint256 leaves,
        uint256 signers,
        uint256 count,
        BlsProof calldata proof
    ) private view {
        bytes32 id;
        assembly ("memory-safe") {
            id := keccak256(signers, shl(5, count))
        }
        bytes32 expected = blsSigners[id];
        if (expected == 0) revert UnknownSigners(id);
        if (keccak256(proof.aggregateKey) != expected) revert AggregateKeyMismatch(id);
        bytes32 message = batchMessage(kind, token, msg.sender, receiver, expiry, count, _merkleRoot(leaves, count));
        bytes memory point = Bls12381.hashToG2(abi.encodePacked(message), Bls12381.SIGNATURE_DST);
        if (!Bls12381.verify(proof.aggregateKey, point, proof.signature)) revert BlsSignatureInvalid();
    }

    function _checkKey(address signer, bytes memory key) private view {
        if (blsKeys[signer] != keccak256(key)) revert UnregisteredBlsKey(signer);
    }
}
