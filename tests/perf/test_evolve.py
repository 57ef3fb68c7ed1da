"""The generated state copier equals `dataclasses.replace` and refuses classes that validate when built."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from channeld import protocol as p
from channeld.protocol._payments import _evolve_side, _evolve_state, _evolver
from tests.protocol.pair import deliver, make_pair


def test_evolve_equals_replace_for_states_and_sides() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 5))
    assert not deliver(alice, bob)
    state = alice.state
    assert _evolve_state(state, now=7, in_flight=()) == replace(state, now=7, in_flight=())
    assert _evolve_state(state) == state and _evolve_state(state) is not state
    assert _evolve_side(state.our, deposit=3) == replace(state.our, deposit=3)
    with pytest.raises(TypeError):
        _evolve_state(state, no_such_field=1)


def test_a_class_that_validates_in_post_init_is_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        amount: int

        def __post_init__(self) -> None:
            if self.amount < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="__post_init__"):
        _evolver(Checked)
