"""What a benchmark hands back to the runner, and how the runner turns it into a report.

A benchmark returns a plain dict (JSON-ready) of this shape; every key but `figures` is
optional:

    {
      "title": "…",
      "settings": {"fake LLM latency": "200 ms", …},
      "figures": [{"name": "p99 at 200 req/s", "unit": "ms",
                   "values": [12.1, 11.8, 12.6]}, …],     # one value per repeat
      "targets": [{"name": "p99 enqueue at 200 req/s", "target": "≤ 15 ms",
                   "measured": "12.1 ms (11.8-12.6)", "pass": true}, …],
      "notes": ["…"],
      "raw": {…anything…},
    }
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.lib.stats import Spread


@dataclass
class Figure:
    name: str
    unit: str
    values: list[float]
    fmt: str = "{:.1f}"
    # Its name in bench/results/latest.json (else one is made from the benchmark and name),
    # and its goal and verdict there, when the figure has one.
    key: str | None = None
    goal: str | None = None
    passed: bool | None = None

    @property
    def spread(self) -> Spread:
        return Spread.of(self.values)

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit and self.unit != "x" else self.unit
        return self.spread.text(self.fmt, unit)

    def as_dict(self) -> dict[str, Any]:
        spread = self.spread
        return {
            "name": self.name,
            "unit": self.unit,
            "values": [_json_number(v) for v in self.values],
            "min": _json_number(spread.min),
            "median": _json_number(spread.median),
            "max": _json_number(spread.max),
            "text": self.text(),
            **({"key": self.key} if self.key else {}),
            **({"goal": self.goal, "pass": self.passed} if self.goal else {}),
        }


@dataclass
class Target:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: could not be judged (a figure is missing)
    figure: str | None = None  # the name of the figure it judges, if one

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "pass": self.passed,
            **({"figure": self.figure} if self.figure else {}),
        }


@dataclass
class BenchResult:
    title: str
    settings: dict[str, str] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def figure(
        self,
        name: str,
        unit: str,
        values: Sequence[float],
        fmt: str = "{:.1f}",
        *,
        key: str | None = None,
        goal: str | None = None,
        passed: bool | None = None,
    ) -> Figure:
        fig = Figure(name, unit, [float(v) for v in values], fmt, key, goal, passed)
        self.figures.append(fig)
        return fig

    def target(
        self,
        name: str,
        target: str,
        measured: str,
        passed: bool | None,
        *,
        figure: str | None = None,
    ) -> Target:
        tgt = Target(name, target, measured, passed, figure)
        self.targets.append(tgt)
        return tgt

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "settings": self.settings,
            "figures": [f.as_dict() for f in self.figures],
            "targets": [t.as_dict() for t in self.targets],
            "notes": self.notes,
            "raw": _jsonable(self.raw),
        }


def at_most(values: Sequence[float], bound: float) -> bool | None:
    """PASS when the median of the repeats is within the bound (None if nothing measured)."""
    spread = Spread.of(values)
    return None if math.isnan(spread.median) else spread.median <= bound


def at_least(values: Sequence[float], bound: float) -> bool | None:
    spread = Spread.of(values)
    return None if math.isnan(spread.median) else spread.median >= bound


def _json_number(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _json_number(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)
