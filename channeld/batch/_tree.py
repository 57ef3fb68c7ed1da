"""The Merkle tree of a BLS batch: leaves in entry order, each level hashing (left, right) pairs in order
and carrying an odd last node up unchanged. ChannelBatch._merkleRoot computes the same root on chain.

A leaf hashes a tag and 2 or 3 words (96 or 128 bytes), an inner node two words (64 bytes): different
preimage lengths, so a leaf can never pass for an inner node or the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

from channeld.batch._errors import InvalidBatch


def _level_up(nodes: Sequence[bytes]) -> list[bytes]:
    parents = [keccak(nodes[i] + nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
    if len(nodes) % 2:
        parents.append(nodes[-1])
    return parents


def _check_leaves(leaves: Sequence[bytes]) -> None:
    if not leaves:
        raise InvalidBatch("a batch has at least one entry")
    if any(not isinstance(leaf, bytes) or len(leaf) != 32 for leaf in leaves):
        raise InvalidBatch("leaves are 32-byte hashes")


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    _check_leaves(leaves)
    nodes = list(leaves)
    while len(nodes) > 1:
        nodes = _level_up(nodes)
    return nodes[0]


@dataclass(frozen=True, slots=True)
class MerklePath:
    """The siblings from a leaf up to the root; a level where the node had no sibling (carried up) is
    absent. `index` and `count` fix the tree's shape, so which side each sibling is on follows."""

    index: int
    count: int
    siblings: tuple[bytes, ...]


def merkle_path(leaves: Sequence[bytes], index: int) -> MerklePath:
    _check_leaves(leaves)
    if not 0 <= index < len(leaves):
        raise InvalidBatch(f"no leaf {index} among {len(leaves)}")
    nodes, position, siblings = list(leaves), index, []
    while len(nodes) > 1:
        partner = position ^ 1
        if partner < len(nodes):
            siblings.append(nodes[partner])
        nodes, position = _level_up(nodes), position // 2
    return MerklePath(index, len(leaves), tuple(siblings))


def root_from_path(leaf: bytes, path: MerklePath) -> bytes:
    """The root that `leaf` at `path.index` of a `path.count`-leaf tree leads to; InvalidBatch if the path
    does not have the shape such a tree gives."""
    if not 0 <= path.index < path.count:
        raise InvalidBatch(f"leaf index {path.index} outside a tree of {path.count}")
    node, position, count, siblings = leaf, path.index, path.count, list(path.siblings)
    while count > 1:
        if position ^ 1 < count:
            if not siblings:
                raise InvalidBatch("the Merkle path is too short for its tree")
            sibling = siblings.pop(0)
            node = keccak(node + sibling) if position % 2 == 0 else keccak(sibling + node)
        position, count = position // 2, (count + 1) // 2
    if siblings:
        raise InvalidBatch("the Merkle path is too long for its tree")
    return node


def verify_path(leaf: bytes, path: MerklePath, root: bytes) -> bool:
    try:
        return root_from_path(leaf, path) == root
    except InvalidBatch:
        return False
