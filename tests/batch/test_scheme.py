"""Choosing ECDSA or BLS by batch size, from the measured gas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channeld.batch import MEASURED, BatchKind, GasModel, InvalidBatch, Scheme, break_even, choose_scheme

GAS_JSON = Path(__file__).resolve().parents[2] / "docs" / "gas.json"


def test_bls_wins_from_the_break_even_on_and_not_before() -> None:
    models = {(BatchKind.WITHDRAW, Scheme.ECDSA): GasModel(50_000, 10_000),
              (BatchKind.WITHDRAW, Scheme.BLS): GasModel(150_000, 6_000)}
    assert break_even(BatchKind.WITHDRAW, models) == 26
    assert choose_scheme(BatchKind.WITHDRAW, 25, models) is Scheme.ECDSA
    assert choose_scheme(BatchKind.WITHDRAW, 26, models) is Scheme.BLS
    with pytest.raises(InvalidBatch):
        choose_scheme(BatchKind.WITHDRAW, 0, models)


def test_without_a_per_channel_saving_bls_never_wins() -> None:
    models = {(BatchKind.CLOSE, Scheme.ECDSA): GasModel(50_000, 10_000),
              (BatchKind.CLOSE, Scheme.BLS): GasModel(150_000, 10_000)}
    assert break_even(BatchKind.CLOSE, models) is None
    assert choose_scheme(BatchKind.CLOSE, 10_000, models) is Scheme.ECDSA


def test_the_models_match_the_measured_figures() -> None:
    measured = json.loads(GAS_JSON.read_text())["batch"]
    for (kind, scheme), model in MEASURED.items():
        figures = measured[kind.name.lower()][scheme.value]
        for count, per_channel in figures.items():
            predicted = model.gas(int(count)) / int(count)
            # linear through N = 10 and 100; the largest batches cost a few per cent more per channel
            assert abs(predicted - per_channel) <= 0.05 * per_channel, (kind, scheme, count)
    for kind in BatchKind:
        assert measured["break_even_n"][kind.name.lower()] == break_even(kind)
