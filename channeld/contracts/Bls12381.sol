// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Bls12381: BLS signature checks on the EIP-2537 precompiles (prague).
/// @notice Public keys are G1 points and signatures G2 points (the "minimal public key size" variant of
/// draft-irtf-cfrg-bls-signature, as Ethereum's consensus layer and py-ecc's G2ProofOfPossession use).
/// Messages are hashed to G2 with RFC 9380's BLS12381G2_XMD:SHA-256_SSWU_RO_: expand_message_xmd with
/// SHA-256, two field elements of Fp2 reduced mod p, the precompile's map-to-curve (which also clears
/// the cofactor) on each, and their sum. Points travel in the precompiles' encoding: each base-field
/// coordinate in 64 bytes (16 zero bytes, then 48 big-endian), a G1 point x || y (128 bytes), a G2 point
/// x.c0 || x.c1 || y.c0 || y.c1 (256 bytes).
library Bls12381 {
    address private constant MODEXP = address(0x05);
    address private constant G1ADD = address(0x0b);
    address private constant G2ADD = address(0x0d);
    address private constant PAIRING = address(0x0f);
    address private constant MAP_FP2_TO_G2 = address(0x11);

    /// @dev The ciphersuites of the proof-of-possession scheme (signatures, and proofs of possession).
    bytes internal constant SIGNATURE_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
    bytes internal constant POP_DST = "BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    bytes private constant FIELD_MODULUS =
        hex"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";
    // The G1 generator with its y negated: e(pk, H(m)) * e(-g1, sig) == 1 is the signature check.
    uint256 private constant NEG_G1_X_HIGH = 0x17f1d3a73197d7942695638c4fa9ac0f;
    uint256 private constant NEG_G1_X_LOW = 0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb;
    uint256 private constant NEG_G1_Y_HIGH = 0x114d1d6855d545a8aa7d76c8cf2e21f2;
    uint256 private constant NEG_G1_Y_LOW = 0x67816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca;
    // (p - 1) / 2, split like the coordinates: a y above it is the "larger" root (the compressed sign bit).
    uint256 private constant HALF_P_HIGH = 0xd0088f51cbff34d258dd3db21a5d66b;
    uint256 private constant HALF_P_LOW = 0xb23ba5c279c2895fb39869507b587b120f55ffff58a9ffffdcff7fffffffd555;

    error PrecompileFailed(address precompile);
    error InvalidBlsPoint();

    /// @notice RFC 9380 hash_to_curve to G2 of `message` under `dst` (at most 255 bytes).
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bytes memory) {
        bytes memory uniform = expandMessageXmd(message, dst);
        bytes memory q0 = _precompile(MAP_FP2_TO_G2, abi.encodePacked(_reduce(uniform, 0), _reduce(uniform, 64)), 256);
        bytes memory q1 = _precompile(MAP_FP2_TO_G2, abi.encodePacked(_reduce(uniform, 128), _reduce(uniform, 192)), 256);
        return _precompile(G2ADD, abi.encodePacked(q0, q1), 256);
    }

    /// @notice RFC 9380 expand_message_xmd with SHA-256, 256 bytes out (four 64-byte field elements).
    function expandMessageXmd(bytes memory message, bytes memory dst) internal pure returns (bytes memory uniform) {
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        bytes32 b0 = sha256(abi.encodePacked(new bytes(64), message, uint16(256), uint8(0), dstPrime));
        bytes32 b = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        uniform = new bytes(256);
        assembly ("memory-safe") {
            mstore(add(uniform, 0x20), b)
        }
        for (uint256 i = 2; i <= 8; ++i) {
            b = sha256(abi.encodePacked(b0 ^ b, uint8(i), dstPrime));
            assembly ("memory-safe") {
                mstore(add(uniform, shl(5, i)), b)
            }
        }
    }

    /// @notice Whether `signature` (G2) by `publicKey` (G1) signs the G2 point `messagePoint`. Points off
    /// the curve or outside the prime-order subgroup make the pairing precompile fail: false.
    function verify(bytes memory publicKey, bytes memory messagePoint, bytes memory signature)
        internal
        view
        returns (bool)
    {
        bytes memory input = abi.encodePacked(
            publicKey,
            messagePoint,
            _negG1(),
            signature
        );
        (bool ok, bytes memory result) = PAIRING.staticcall(input);
        return ok && result.length == 32 && abi.decode(result, (uint256)) == 1;
    }

    /// @notice The sum of two G1 points; reverts on a point that is not on the curve.
    function addG1(bytes memory a, bytes memory b) internal view returns (bytes memory) {
        return _precompile(G1ADD, abi.encodePacked(a, b), 128);
    }

    /// @notice The 48-byte compressed form of a G1 point (ZCash's format, as py-ecc serialises public keys):
    /// x with the compression flag, and the sign flag when y is the larger square root.
    function compressG1(bytes calldata point) internal pure returns (bytes memory compressed) {
        if (point.length != 128) revert InvalidBlsPoint();
        uint256 xHigh = uint256(bytes32(point[0:32]));
        uint256 xLow = uint256(bytes32(point[32:64]));
        uint256 yHigh = uint256(bytes32(point[64:96]));
        uint256 yLow = uint256(bytes32(point[96:128]));
        // Coordinates are below p < 2**381: the top 16 bytes of each pair of words are padding.
        if (xHigh >> 128 != 0 || yHigh >> 128 != 0) revert InvalidBlsPoint();
        if (xHigh | xLow | yHigh | yLow == 0) revert InvalidBlsPoint(); // the point at infinity
        bool larger = yHigh > HALF_P_HIGH || (yHigh == HALF_P_HIGH && yLow > HALF_P_LOW);
        uint256 flags = larger ? 0xa0 : 0x80;
        compressed = abi.encodePacked(bytes16(uint128(xHigh | (flags << 120))), bytes32(xLow));
    }

    function _negG1() private pure returns (bytes memory) {
        return abi.encodePacked(uint256(NEG_G1_X_HIGH), NEG_G1_X_LOW, uint256(NEG_G1_Y_HIGH), NEG_G1_Y_LOW);
    }

    /// @dev The 64-byte big-endian integer at uniform[offset:offset+64] mod p, in the 64-byte encoding.
    function _reduce(bytes memory uniform, uint256 offset) private view returns (bytes memory) {
        bytes memory chunk = new bytes(64);
        assembly ("memory-safe") {
            mstore(add(chunk, 0x20), mload(add(add(uniform, 0x20), offset)))
            mstore(add(chunk, 0x40), mload(add(add(uniform, 0x40), offset)))
        }
        bytes memory reduced = _precompile(
            MODEXP, abi.encodePacked(uint256(64), uint256(1), uint256(48), chunk, uint8(1), FIELD_MODULUS), 48
        );
        return abi.encodePacked(bytes16(0), reduced);
    }

    function _precompile(address precompile, bytes memory input, uint256 outputLength)
        private
        view
        returns (bytes memory output)
    {
        bool ok;
        (ok, output) = precompile.staticcall(input);
        if (!ok || output.length != outputLength) revert PrecompileFailed(precompile);
    }
}
