"""Smoke test of the benchmark harness with tiny counts: real anvil, a real daemon, a real wallet peer.

It proves the machinery (processes, load generator, figures, report files), not the speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import REQUIRED, main
from benchmarks._profile import Hotspot, Profile, Side
from benchmarks._report import Result, Target, cell, read_json
from benchmarks._stats import Figure, percentile
from benchmarks.floor import measure_floor, payee_rate, payer_rate


def test_figure_is_median_with_min_and_max() -> None:
    figure = Figure.of([3.0, 1.0, 10.0, 2.0])
    assert (figure.median, figure.low, figure.high, figure.runs) == (2.5, 1.0, 10.0, 4)
    with pytest.raises(ValueError):
        Figure.of([])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_targets_give_pass_miss_and_not_available() -> None:
    target = Target.at_least(100, ">= 100")
    assert Result("k", "l", "u", Figure.of([150.0]), target).verdict == "pass"
    assert Result("k", "l", "u", Figure.of([50.0]), target).verdict == "MISS"
    assert Result("k", "l", "u", Figure.of([2.0]), Target.below(3, "< 3")).verdict == "pass"
    missing = Result.unavailable("k", "l", "u", "not built")
    assert missing.verdict == "not available"
    assert cell(missing.figure, missing.reason) == "n/a (not built)"


def test_floor_sides_are_timed_with_the_protocols_own_functions() -> None:
    for rate in (payer_rate(50), payee_rate(50)):
        assert rate.wall > 0 and rate.cpu > 0
    result = measure_floor(100)
    assert result.floor_pps == min(result.payer_pps, result.payee_pps) > 0
    assert result.floor_cpu_pps == min(result.payer.cpu, result.payee.cpu) > 0


def test_quick_run_writes_report_json_and_plot(tmp_path: Path) -> None:
    assert main(["--quick", "--only", "floor", "direct", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "benchmarks.json").read_text())
    assert set(REQUIRED) <= set(document)
    assert document["direct_pipelined_pps"] > 0
    assert document["direct_latency_p99_ms"] >= document["direct_latency_p50_ms"] > 0
    assert document["floor_ratio"] == pytest.approx(document["direct_pipelined_pps"] / document["floor_pps"])
    assert document["three_hop_pps"] is None and "left out" in document["unavailable"]["three_hop_pps"]
    assert "left out" in document["unavailable"]["many_channels_pps"]
    assert document["figures"]["direct_pipelined_pps"]["runs"] == 2
    report = (tmp_path / "benchmarks.md").read_text()
    assert "`direct_pipelined_pps`" in report and "≥ 15,000" in report
    assert "Eclair 89" in report
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a run of some cases replaces their figures and keeps the rest; derived figures follow
    assert main(["--quick", "--only", "floor", "--runs", "1", "--out", str(tmp_path)]) == 0
    after = json.loads((tmp_path / "benchmarks.json").read_text())
    assert after["figures"]["floor_pps"]["runs"] == 1
    assert after["figures"]["direct_pipelined_pps"] == document["figures"]["direct_pipelined_pps"]
    assert after["floor_ratio"] == pytest.approx(after["direct_pipelined_pps"] / after["floor_pps"])
    assert after["run"]["cases_this_run"] == ["floor"]


def test_render_rewrites_the_report_from_its_json(tmp_path: Path) -> None:
    assert main(["--quick", "--only", "floor", "--out", str(tmp_path)]) == 0
    (tmp_path / "benchmarks.md").unlink()
    (tmp_path / "benchmarks.png").unlink()
    assert main(["--render", "--out", str(tmp_path)]) == 0
    results, _, document = read_json(tmp_path / "benchmarks.json")
    assert [r.key for r in results] == document["order"]
    floor = next(r for r in results if r.key == "floor_pps")
    assert floor.figure is not None and floor.figure.median == document["floor_pps"]
    report = (tmp_path / "benchmarks.md").read_text()
    assert "`floor_pps`" in report and "`three_hop_pps`" in report and "left out" in report
    assert (tmp_path / "benchmarks.png").exists()


def test_profile_survives_the_json_round_trip() -> None:
    profile = Profile(1234.5, "two daemons", [Side("Payer daemon", 0.25, [Hotspot(0.5, "f.py:1 sign")])])
    assert Profile.from_json(json.loads(json.dumps(profile.as_json()))) == profile
