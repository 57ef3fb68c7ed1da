"""The batch Merkle tree: roots, paths for every leaf, and paths that must fail."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from channeld.batch import InvalidBatch, MerklePath, merkle_path, merkle_root, root_from_path, verify_path


def _leaves(count: int) -> list[bytes]:
    return [keccak(text=f"leaf {i}") for i in range(count)]


def test_root_of_three_carries_the_odd_leaf_up() -> None:
    a, b, c = _leaves(3)
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == keccak(a + b)
    assert merkle_root([a, b, c]) == keccak(keccak(a + b) + c)


@pytest.mark.parametrize("count", range(1, 12))
def test_every_leaf_has_a_path_to_the_root(count: int) -> None:
    leaves = _leaves(count)
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        path = merkle_path(leaves, index)
        assert verify_path(leaf, path, root)
        assert not verify_path(keccak(leaf), path, root)


def test_tampered_paths_fail() -> None:
    leaves = _leaves(6)
    root = merkle_root(leaves)
    path = merkle_path(leaves, 2)
    assert not verify_path(leaves[2], MerklePath(3, 6, path.siblings), root)  # wrong side
    assert not verify_path(leaves[2], MerklePath(2, 3, path.siblings), root)  # wrong tree size
    assert not verify_path(leaves[2], MerklePath(2, 6, path.siblings[:-1]), root)  # too short
    assert not verify_path(leaves[2], MerklePath(2, 6, (*path.siblings, root)), root)  # too long
    flipped = (keccak(path.siblings[0]), *path.siblings[1:])
    assert not verify_path(leaves[2], MerklePath(2, 6, flipped), root)
    with pytest.raises(InvalidBatch):
        root_from_path(leaves[2], MerklePath(6, 6, path.siblings))


def test_malformed_trees_are_refused() -> None:
    with pytest.raises(InvalidBatch):
        merkle_root([])
    with pytest.raises(InvalidBatch):
        merkle_root([b"short"])
    with pytest.raises(InvalidBatch):
        merkle_path(_leaves(3), 3)


@given(count=st.integers(1, 70), data=st.data())
def test_any_leaf_verifies_and_no_other_leaf_does(count: int, data: st.DataObject) -> None:
    leaves = _leaves(count)
    index = data.draw(st.integers(0, count - 1))
    other = data.draw(st.integers(0, count - 1))
    root = merkle_root(leaves)
    path = merkle_path(leaves, index)
    assert verify_path(leaves[index], path, root)
    assert verify_path(leaves[other], path, root) == (other == index)
