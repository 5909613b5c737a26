"""Percentiles and the spread of a figure over repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks.

    NaN for an empty sample, so a missing figure never masquerades as zero.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "count": float(len(samples_ms)),
        "p50_ms": percentile(samples_ms, 50),
        "p90_ms": percentile(samples_ms, 90),
        "p99_ms": percentile(samples_ms, 99),
        "max_ms": max(samples_ms) if samples_ms else math.nan,
        "mean_ms": statistics.fmean(samples_ms) if samples_ms else math.nan,
    }


@dataclass(frozen=True)
class Spread:
    """One figure measured in several repeats: min / median / max and the raw values."""

    min: float
    median: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not finite:
            return cls(math.nan, math.nan, math.nan, ())
        return cls(min(finite), statistics.median(finite), max(finite), tuple(finite))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["values"] = list(self.values)
        return data

    def text(self, fmt: str = "{:.1f}", unit: str = "") -> str:
        """`median (min-max)`, or the single value when there was one repeat."""
        if not self.values:
            return "n/a"
        med = fmt.format(self.median) + unit
        if len(self.values) == 1 or self.min == self.max:
            return med
        return f"{med} ({fmt.format(self.min)}-{fmt.format(self.max)})"


def spread_by_key(runs: Sequence[dict[str, float]]) -> dict[str, Spread]:
    """Turn repeats of flat {name: value} dicts into {name: Spread}."""
    keys: list[str] = []
    for run in runs:
        for key in run:
            if key not in keys:
                keys.append(key)
    return {key: Spread.of(run[key] for run in runs if key in run) for key in keys}
