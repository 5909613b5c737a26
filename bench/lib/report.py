"""The run's report: `<date>.md` for people and `<date>.json` with every value."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lib.registry import BENCHES, Bench
from bench.lib.results import Figure


@dataclass
class Outcome:
    bench: Bench
    status: str  # "ok", "error", "not available", "skipped"
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def targets(self) -> list[dict[str, Any]]:
        targets = self.result.get("targets")
        return [t for t in targets if isinstance(t, dict)] if isinstance(targets, list) else []

    def figures(self) -> list[dict[str, Any]]:
        figures = self.result.get("figures")
        return [f for f in figures if isinstance(f, dict)] if isinstance(figures, list) else []

    def figure(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self.figures() if f.get("name") == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.bench.number,
            "name": self.bench.name,
            "title": self.bench.title,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error or None,
            **self.result,
        }


_NOT_FIGURES = frozenset({"raw", "settings", "notes", "title", "targets"})


def normalise(result: dict[str, Any], *, judge: bool) -> dict[str, Any]:
    """Fill in what a benchmark's figures leave out (text, min/median/max) so every report
    reads the same; in smoke mode (`judge=False`) targets are shown but not judged."""
    out = dict(result)
    figures = []
    for fig in result.get("figures") or []:
        if not isinstance(fig, dict):
            continue
        values = [float(v) for v in fig.get("values") or [] if isinstance(v, int | float)]
        shaped = Figure(
            str(fig.get("name", "?")), str(fig.get("unit", "")), values,
            str(fig.get("fmt") or "{:.4g}"),
        ).as_dict()  # fmt: skip
        figures.append({**shaped, **{k: v for k, v in fig.items() if v is not None}})
    if figures:
        out["figures"] = figures
    if not judge and isinstance(result.get("targets"), list):
        out["targets"] = [{**t, "pass": None} for t in result["targets"] if isinstance(t, dict)]
    return out


def verdict(passed: Any) -> str:
    if passed is True:
        return "PASS"
    if passed is False:
        return "FAIL"
    return "not judged"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: Any, fmt: str = "{:.4g}") -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int | float):
        return "n/a" if math.isnan(value) else fmt.format(value)
    return str(value)


def render_markdown(meta: dict[str, Any], outcomes: list[Outcome]) -> str:
    lines = [f"# Benchmark results — {meta['date']}", ""]
    lines += [
        f"Mode: **{meta['mode']}** · command: `{meta['command']}` · total time "
        f"{meta['seconds']:.0f} s · revision {meta.get('revision') or 'unknown'}",
        "",
        "Every figure is the **median over the repeats, with (min-max)**; targets are judged "
        "on the median. How each benchmark works and why the targets are what they are: "
        "[`bench/README.md`](../README.md).",
        "",
        "## Targets",
        "",
        "| # | benchmark | target | required | measured | result |",
        "|---|---|---|---|---|---|",
    ]
    for out in outcomes:
        if out.status != "ok":
            lines.append(
                f"| {out.bench.number} | {_cell(out.bench.title)} | — | — | "
                f"{_cell(out.status + (': ' + out.error.splitlines()[0] if out.error else ''))} "
                f"| {'ERROR' if out.status == 'error' else 'n/a'} |"
            )
            continue
        targets = out.targets()
        if not targets:
            lines.append(
                f"| {out.bench.number} | {_cell(out.bench.title)} | (figures only) | — | — | — |"
            )
        for t in targets:
            lines.append(
                f"| {out.bench.number} | {_cell(out.bench.title)} | {_cell(t.get('name'))} | "
                f"{_cell(t.get('target'))} | {_cell(t.get('measured'))} | "
                f"**{verdict(t.get('pass'))}** |"
            )
    claims = meta.get("claims") or []
    if claims:
        lines += [
            "",
            "## The original guide's claims, measured",
            "",
            "| claim (single service → services) | guide | measured here |",
            "|---|---|---|",
        ]
        lines += [f"| {_cell(c[0])} | {_cell(c[1])} | {_cell(c[2])} |" for c in claims]
    lines += ["", "## Machine and versions", ""]
    lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in meta["machine"].items()]
    lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in meta["environment"].items()]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines += [f"- **packages**: {versions}", ""]
    for out in outcomes:
        lines += _section(out)
    return "\n".join(lines).rstrip() + "\n"


def _section(out: Outcome) -> list[str]:
    lines = [f"## {out.bench.number}. {out.bench.title} (`{out.bench.name}`)", ""]
    if out.status != "ok":
        lines += [f"**{out.status.upper()}**" + (f": {out.error}" if out.error else ""), ""]
        return lines
    lines.append(f"Ran in {out.seconds:.0f} s.")
    lines.append("")
    settings = out.result.get("settings")
    if isinstance(settings, dict) and settings:
        lines += [f"- {_cell(k)}: {_cell(v)}" for k, v in settings.items()]
        lines.append("")
    figures = out.figures()
    if figures:
        lines += ["| figure | median (min-max) | per repeat |", "|---|---|---|"]
        for f in figures:
            values = f.get("values") or []
            per = ", ".join(_num(v) for v in values)
            lines.append(f"| {_cell(f.get('name'))} | {_cell(f.get('text'))} | {per} |")
        lines.append("")
    elif out.result:
        lines += ["| reported | value |", "|---|---|"]
        shown = {k: v for k, v in out.result.items() if k not in _NOT_FIGURES}
        lines += [f"| {_cell(k)} | {_cell(_num(v))} |" for k, v in _flat(shown)]
        lines.append("")
    notes = out.result.get("notes")
    if isinstance(notes, list):
        lines += [f"- {_cell(n)}" for n in notes]
        if notes:
            lines.append("")
    return lines


def _flat(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items += _flat(value, f"{prefix}{key}.")
        return items
    if isinstance(data, list) and all(isinstance(v, int | float) for v in data):
        return [(prefix.rstrip("."), ", ".join(_num(v) for v in data))]
    if isinstance(data, list):
        items = []
        for i, value in enumerate(data):
            items += _flat(value, f"{prefix}{i}.")
        return items
    return [(prefix.rstrip("."), data)]


def write(directory: Path, stem: str, meta: dict[str, Any], outcomes: list[Outcome]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"{stem}.md"
    md.write_text(render_markdown(meta, outcomes))
    claims = [{"claim": a, "guide": b, "measured": c} for a, b, c in meta.get("claims") or []]
    payload = {**meta, "claims": claims, "benchmarks": [o.as_dict() for o in outcomes]}
    (directory / f"{stem}.json").write_text(
        json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n"
    )
    return md


def free_stem(directory: Path, date: str) -> str:
    """`<date>`, or `<date>-N` when a report of that day is already there."""
    stem, n = date, 1
    while (directory / f"{stem}.md").exists() or (directory / f"{stem}.json").exists():
        n += 1
        stem = f"{date}-{n}"
    return stem


LATEST = "latest.json"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def latest_figures(meta: dict[str, Any], outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Every figure of the run, one line each: name, value (the median), unit, goal, pass.

    A figure's goal is its own (``goal``/``pass`` in the figure) or that of the target that
    judged it (a target naming it in ``figure``, or whose measured text is the figure's).
    """
    rows: list[dict[str, Any]] = []
    for out in outcomes:
        if out.status != "ok":
            continue
        targets = out.targets()
        for fig in out.figures():
            name = str(fig.get("name", "?"))
            linked = next(
                (
                    t
                    for t in targets
                    if t.get("figure") == name or t.get("measured") == fig.get("text")
                ),
                None,
            )
            goal = fig.get("goal", linked.get("target") if linked else None)
            passed = fig.get("pass", linked.get("pass") if linked else None)
            rows.append(
                {
                    "name": str(fig.get("key") or _slug(f"{out.bench.name} {name}")),
                    "value": fig.get("median"),
                    "unit": fig.get("unit", ""),
                    "goal": goal,
                    "pass": passed,
                    "benchmark": out.bench.name,
                    "commit": meta.get("revision"),
                    "date": meta.get("date"),
                }
            )
    return rows


def _in_report_order(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grouped by benchmark in the registry's order (others after, by name), each keeping its
    own order: a run of one benchmark rewrites only its own lines of the file, so branches
    that each re-ran a different benchmark merge without touching each other's figures."""
    rank = {b.name: b.number for b in BENCHES}

    def key(item: tuple[int, dict[str, Any]]) -> tuple[int, str, int]:
        index, figure = item
        bench = str(figure.get("benchmark", ""))
        return (rank.get(bench, len(rank) + 1), "" if bench in rank else bench, index)

    return [f for _, f in sorted(enumerate(figures), key=key)]


def write_latest(directory: Path, meta: dict[str, Any], outcomes: list[Outcome]) -> Path:
    """``latest.json``: the figures of this run, plus those of benchmarks it did not run
    (kept from the previous file with their own commit and date)."""
    path = directory / LATEST
    ran = {o.bench.name for o in outcomes}
    kept: list[dict[str, Any]] = []
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
            kept = [f for f in previous.get("figures", []) if f.get("benchmark") not in ran]
        except (OSError, ValueError):
            kept = []
    figures = _in_report_order(latest_figures(meta, outcomes) + kept)
    payload = {
        "commit": meta.get("revision"),
        "date": meta.get("date"),
        "mode": meta.get("mode"),
        "command": meta.get("command"),
        "load average before the run": meta["environment"].get(
            "load average (1/5/15 min) before the run"
        ),
        "load average after the run": meta["environment"].get("load average after the run"),
        "figures": figures,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n")
    return path
