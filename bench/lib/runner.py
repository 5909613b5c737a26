"""The runner behind `bench/run.py`: pick benchmarks, provide servers, run, report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from bench.lib import claims, machine, report
from bench.lib.context import Context
from bench.lib.infra import Servers, servers
from bench.lib.loadgen import ensure_wrk
from bench.lib.registry import BENCHES, Bench, NotAvailable, call_arguments, load
from bench.lib.report import Outcome
from roadmap_devservers._process import private_temp_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
LOGS_ROOT = REPO_ROOT / ".roadmap" / "bench"  # git-ignored; the last few runs are kept
KEEP_LOG_RUNS = 5


def _parse(argv: list[str]) -> argparse.Namespace:
    names = [b.name for b in BENCHES]
    parser = argparse.ArgumentParser(
        prog="roadmap bench", description="Benchmarks of Roadmap Agent (see bench/README.md)."
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME",
        help=f"benchmarks to run, by name or number (default: all): {', '.join(names)}",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="a few seconds each; judge no target")
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 3, smoke 1)")
    parser.add_argument(
        "--out", type=Path, default=None,
        help="report folder (default: bench/results, or the run's log folder with --smoke)",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in names and not (name.isdigit() and 1 <= int(name) <= len(BENCHES)):
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(names)}")
    if args.repeat is not None and not 1 <= args.repeat <= 20:
        parser.error("--repeat must be between 1 and 20")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _prune_logs() -> None:
    runs = sorted(p for p in LOGS_ROOT.iterdir() if p.is_dir()) if LOGS_ROOT.is_dir() else []
    for old in runs[:-KEEP_LOG_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.list:
        for b in BENCHES:
            print(f"{b.number}. {b.name:<15} {b.title}")
        return 0
    wanted = [b for b in BENCHES if not args.names or {b.name, str(b.number)} & set(args.names)]
    repeat = args.repeat or (1 if args.smoke else 3)
    started = time.monotonic()
    logs = LOGS_ROOT / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    _prune_logs()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    load_before = machine.load_average()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        say(
            f"warning: load average {load_before} on {os.cpu_count()} cores before starting; "
            "other work on this machine will show up in the figures"
        )
    try:
        wrk, wrk_note = ensure_wrk()
        say(
            f"{'smoke' if args.smoke else 'full'} run of {len(wanted)} benchmark(s), "
            f"{repeat} repeat(s); process logs in {logs}"
        )
        say(f"load generator: {wrk_note}")
        outcomes: list[Outcome] = []
        with private_temp_dir("roadmap-bench-") as tmp, servers(tmp) as found:
            say(f"PostgreSQL: {found.postgres_source}")
            say(f"Redis: {found.redis_source}")
            with Context(found, args.smoke, repeat, logs, wrk, wrk_note) as ctx:
                for i, bench in enumerate(wanted):
                    if i and not args.smoke:
                        settle(found)
                    outcomes.append(run_one(bench, ctx))
            server_info = dict(found.info)
            sources = {"PostgreSQL": found.postgres_source, "Redis": found.redis_source}
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)

    meta: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["uv run roadmap bench", shlex.join(argv)]).strip(),
        "seconds": time.monotonic() - started,
        "repeat": repeat,
        "revision": machine.git_revision(REPO_ROOT),
        "machine": machine.machine_info(),
        "environment": {
            **sources,
            **server_info,
            "load average (1/5/15 min) before the run": load_before,
            "load average after the run": machine.load_average(),
            "load generator": f"{machine.wrk_version() or 'no wrk'} ({wrk_note}); open-loop "
            "latency from an asyncio + httpx scheduler in the runner process",
        },
        "versions": machine.package_versions(),
        "claims": claims.claims(outcomes, server_info),
    }
    out_dir = args.out or (logs if args.smoke else RESULTS_DIR)
    path = report.write(out_dir, report.free_stem(out_dir, meta["date"]), meta, outcomes)
    # What CI and people read first: every figure with its goal and verdict.
    report.write_latest(out_dir, meta, outcomes)
    return summary(outcomes, path, smoke=args.smoke, seconds=meta["seconds"])


# Between benchmarks: the one before may have left PostgreSQL with pages to write and
# the machine busy (the enqueue benchmark runs wrk on both cores); the next starts once
# the 1-minute load average is below SETTLE_LOAD, or after SETTLE_MAX_S in any case.
SETTLE_LOAD = 1.0
SETTLE_MAX_S = 90.0


def settle(found: Servers) -> None:
    started = time.monotonic()
    failed = found.checkpoint()
    if failed:
        say(f"settle: CHECKPOINT not run ({failed})")
    while os.getloadavg()[0] >= SETTLE_LOAD and time.monotonic() - started < SETTLE_MAX_S:
        time.sleep(2.0)
    say(
        f"settle: {time.monotonic() - started:.0f} s, load average "
        f"{os.getloadavg()[0]:.2f} before the next benchmark"
    )


def run_one(bench: Bench, ctx: Context) -> Outcome:
    say("")
    say(f"[{bench.number}] {bench.name} — {bench.title}")
    t0 = time.monotonic()
    try:
        run = load(bench)
    except NotAvailable as exc:
        say(f"[{bench.number}] not available: {exc}")
        return Outcome(bench, "not available", error=str(exc))
    except Exception as exc:
        traceback.print_exc()
        return Outcome(bench, "error", time.monotonic() - t0, error=_short(exc))
    try:
        with call_arguments(run, ctx) as kwargs:
            result = run(**kwargs)
        if not isinstance(result, dict):
            raise TypeError(f"run() returned {type(result).__name__}, not a dict")
    except NotAvailable as exc:
        say(f"[{bench.number}] not available: {exc}")
        return Outcome(bench, "not available", time.monotonic() - t0, error=str(exc))
    except Exception as exc:
        traceback.print_exc()
        say(f"[{bench.number}] ERROR: {_short(exc)}")
        return Outcome(bench, "error", time.monotonic() - t0, error=_short(exc))
    out = Outcome(bench, "ok", time.monotonic() - t0, report.normalise(result, judge=not ctx.smoke))
    for target in out.targets():
        say(
            f"[{bench.number}]   {report.verdict(target.get('pass')):4} {target.get('name')}: "
            f"{target.get('measured')} (target {target.get('target')})"
        )
    say(f"[{bench.number}] done in {out.seconds:.0f} s")
    return out


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 2000 else text[:2000] + "…"


def summary(outcomes: list[Outcome], path: Path, *, smoke: bool, seconds: float) -> int:
    errors = [o for o in outcomes if o.status == "error"]
    failed = [
        (o, t) for o in outcomes if o.status == "ok" for t in o.targets() if t.get("pass") is False
    ]
    say("")
    say(f"report: {path} ({seconds:.0f} s in all)")
    for o in outcomes:
        if o.status == "not available":
            say(f"NOT AVAILABLE [{o.bench.number}] {o.bench.name}: {o.error}")
    for o in errors:
        say(f"ERROR [{o.bench.number}] {o.bench.name}: {o.error.splitlines()[0]}")
    for o, t in failed:
        say(f"FAIL [{o.bench.number}] {t.get('name')}: {t.get('measured')}")
    if errors:
        return 1
    return 1 if failed and not smoke else 0
