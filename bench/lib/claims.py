"""The original guide's performance table, next to what this run measured."""

from __future__ import annotations

from bench.lib.report import Outcome


def _text(outcomes: dict[str, Outcome], bench: str, figure: str) -> str | None:
    out = outcomes.get(bench)
    if out is None or out.status != "ok":
        return None
    fig = out.figure(figure)
    return str(fig["text"]) if fig and fig.get("text") else None


def _median(outcomes: dict[str, Outcome], bench: str, figure: str) -> float | None:
    out = outcomes.get(bench)
    fig = out.figure(figure) if out is not None and out.status == "ok" else None
    value = fig.get("median") if fig else None
    return float(value) if isinstance(value, int | float) else None


def claims(outcomes: list[Outcome], server_info: dict[str, str]) -> list[tuple[str, str, str]]:
    by_name = {o.bench.name: o for o in outcomes}
    rows: list[tuple[str, str, str]] = []

    base_p50 = _text(by_name, "single_vs_arch", "baseline @ 0.5 req/s offered: p50 response")
    ours_p50 = _text(by_name, "single_vs_arch", "ours @ 0.5 req/s offered: p50 response")
    if base_p50 and ours_p50:
        rows.append(
            ("API response time", "25 s → 0.1 s (250x)",
             f"{base_p50} → {ours_p50} (POST at 0.5 req/s, fake LLM 200 ms/call)")
        )  # fmt: skip
    base_max = _text(by_name, "single_vs_arch", "baseline: max sustained rate")
    ours_max = _text(by_name, "single_vs_arch", "ours: max sustained rate (POST)")
    ratio = _text(by_name, "single_vs_arch", "ours / baseline max rate")
    if base_max and ours_max:
        rows.append(
            ("Sustained request rate", "5-10 → 100+ req/s (10-20x)",
             f"{base_max} → {ours_max} ({ratio})")
        )  # fmt: skip
    total = _median(by_name, "connections", "peak connections: sum of services")
    max_conn = server_info.get("postgres.max_connections")
    if total is not None and max_conn:
        share = 100 * total / int(max_conn)
        rows.append(
            ("Database connection use", "80-100% → 20-30%",
             f"peak {total:.0f} of max_connections {max_conn} ({share:.0f}%) under 3x overload")
        )  # fmt: skip
    memory = _text(by_name, "footprint", "all services loaded: PSS sum")
    if memory:
        rows.append(
            ("Deployment cost", "$50-55 → $22-25 per month",
             f"{memory} of memory for API + both workers under load (Railway bills memory "
             "and CPU by use; see footprint)")
        )  # fmt: skip
    return rows
