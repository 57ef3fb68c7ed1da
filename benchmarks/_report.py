"""Results, their targets, and the three outputs: the printed table, docs/benchmarks.json and the plot."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._stats import Figure


@dataclass(frozen=True, slots=True)
class Target:
    """A bar a figure must clear: at least `bound` (`kind` "min") or below it ("max"); `text` for readers."""

    text: str
    kind: str
    bound: float

    @classmethod
    def at_least(cls, bound: float, text: str) -> Target:
        return cls(text, "min", bound)

    @classmethod
    def below(cls, bound: float, text: str) -> Target:
        return cls(text, "max", bound)

    def passes(self, value: float) -> bool:
        return value >= self.bound if self.kind == "min" else value < self.bound


@dataclass(frozen=True, slots=True)
class Result:
    """One reported figure, or the reason it is not available."""

    key: str
    label: str
    unit: str
    figure: Figure | None
    target: Target | None = None
    reason: str | None = None

    @classmethod
    def unavailable(cls, key: str, label: str, unit: str, reason: str,
                    target: Target | None = None) -> Result:
        return cls(key, label, unit, None, target, reason)

    @property
    def verdict(self) -> str:
        if self.figure is None:
            return "not available"
        if self.target is None:
            return "-"
        return "pass" if self.target.passes(self.figure.median) else "MISS"

    def as_json(self) -> dict[str, Any]:
        target = None if self.target is None else {"text": self.target.text, "kind": self.target.kind,
                                                   "bound": self.target.bound}
        return {"label": self.label, "unit": self.unit,
                **(self.figure.as_json() if self.figure else {"median": None, "reason": self.reason}),
                "target": target, "verdict": self.verdict}

    @classmethod
    def from_json(cls, key: str, document: dict[str, Any]) -> Result:
        t = document.get("target")
        target = None if t is None else Target(t["text"], t["kind"], float(t["bound"]))
        if document.get("median") is None:
            return cls(key, document["label"], document["unit"], None, target, document.get("reason"))
        figure = Figure(document["median"], document["min"], document["max"], document["runs"])
        return cls(key, document["label"], document["unit"], figure, target)


def number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def cell(figure: Figure | None, reason: str | None) -> str:
    if figure is None:
        return f"n/a ({reason})"
    if figure.runs == 1:
        return number(figure.median)
    return f"{number(figure.median)} ({number(figure.low)} - {number(figure.high)})"


def table(results: Iterable[Result]) -> list[str]:
    """Markdown rows: figure, median (min - max), unit, target, verdict."""
    rows = ["| figure | median (min - max) | unit | target | verdict |", "|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.label} (`{r.key}`) | {cell(r.figure, r.reason)} | {r.unit} | "
                    f"{r.target.text if r.target else ''} | {r.verdict} |")
    return rows


def write_json(path: Path, results: list[Result], run_info: dict[str, Any],
               extra: dict[str, Any] | None = None) -> None:
    document: dict[str, Any] = {r.key: (None if r.figure is None else r.figure.median) for r in results}
    document["unavailable"] = {r.key: r.reason for r in results if r.figure is None}
    document["figures"] = {r.key: r.as_json() for r in results}
    document["order"] = [r.key for r in results]
    document["run"] = run_info
    document.update(extra or {})
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> tuple[list[Result], dict[str, Any], dict[str, Any]]:
    """The results, run information and the whole document of a benchmarks.json written above."""
    document = json.loads(path.read_text())
    results = [Result.from_json(key, document["figures"][key]) for key in document["order"]]
    return results, document["run"], document


def write_plot(path: Path, results: list[Result]) -> None:
    """Throughputs (payments per second, log scale) and latencies, each with min-max whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [r for r in results if r.unit == "payments/s" and r.figure is not None]
    delays = [r for r in results if r.unit == "ms" and r.figure is not None]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    _bars(left, rates, "payments per second (log scale)", log=True)
    _bars(right, delays, "milliseconds (log scale)", log=True)
    figure.suptitle("channeld benchmarks: median of runs, whiskers min-max (red marks: targets)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axes: Any, results: list[Result], ylabel: str, *, log: bool) -> None:
    if not results:
        axes.set_visible(False)
        return
    names = [r.key.removesuffix("_pps").removesuffix("_ms") for r in results]
    medians = [r.figure.median for r in results if r.figure]
    lows = [r.figure.median - r.figure.low for r in results if r.figure]
    highs = [r.figure.high - r.figure.median for r in results if r.figure]
    positions = range(len(results))
    axes.bar(positions, medians, yerr=[lows, highs], capsize=4, color="#4c72b0")
    for x, r in zip(positions, results, strict=True):
        bound = _target_value(r)
        if bound is not None:
            axes.plot([x - 0.4, x + 0.4], [bound, bound], color="#c44e52", linewidth=2)
    axes.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")


def _target_value(result: Result) -> float | None:
    """Where the plot's red mark goes, for a finite target."""
    if result.target is None or result.target.bound in (float("inf"), float("-inf")):
        return None
    return result.target.bound
