"""The benchmarks, in report order, and how to call each one's `run`."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bench.lib.context import Context

BENCH_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bench:
    number: int
    name: str
    title: str
    file: str  # in bench/
    owner: str  # who writes its module


BENCHES: tuple[Bench, ...] = (
    Bench(1, "single_vs_arch", "Single service vs this architecture", "single_vs_arch.py", "bench"),
    Bench(2, "enqueue", "Enqueue path: POST /api/v1/roadmaps vs a bare endpoint", "enqueue.py", "API"),
    Bench(3, "generation", "Generation wall time vs the critical-path bound", "generation.py", "content worker"),
    Bench(4, "logs_ingest", "Logs ingest rate and lag", "logs_ingest.py", "logs worker"),
    Bench(5, "isolation", "Isolation: reads while roadmaps generate", "isolation.py", "bench"),
    Bench(6, "connections", "Connections under 3x overload", "connections.py", "bench"),
    Bench(7, "footprint", "Footprint: memory per service", "footprint.py", "bench"),
    Bench(8, "scale", "Scale-out: content workers and API processes", "scale.py", "bench"),
    Bench(9, "images", "Images: size and start to healthy", "images.py", "containers"),
    Bench(10, "links", "Links: link checking's share of a concept's generation", "links.py", "content worker"),
    Bench(11, "web", "Web UI: page render time, JavaScript, idle memory", "web.py", "web"),
    Bench(12, "chat", "Mentor chat: time to first token", "chat.py", "chat"),
)  # fmt: skip
BY_NAME = {b.name: b for b in BENCHES}


class NotAvailable(Exception):
    """The benchmark's module (or its `run`) is not in this checkout, or what it measures is
    not on this machine (raised by `run`: no container engine for the images)."""


def load(bench: Bench) -> Callable[..., Any]:
    path = BENCH_DIR / bench.file
    if not path.is_file():
        raise NotAvailable(f"bench/{bench.file} does not exist")
    module_name = f"bench.{path.stem}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise NotAvailable(f"bench/{bench.file} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    run = getattr(module, "run", None)
    if not callable(run):
        raise NotAvailable(f"bench/{bench.file} has no run() function")
    return cast("Callable[..., Any]", run)


@contextlib.contextmanager
def call_arguments(run: Callable[..., Any], ctx: Context) -> Iterator[dict[str, Any]]:
    """Keyword arguments for a `run` whose signature we did not write.

    Our own benchmarks take the Context. The others' `run(...)` get, by parameter name,
    what the runner knows: the mode, repeats, servers, a fresh database/Redis db, wrk.
    Parameters we cannot fill keep their defaults; a required one we cannot fill fails
    with a clear message.
    """
    params = inspect.signature(run).parameters
    known: dict[str, Any] = {
        "ctx": ctx,
        "context": ctx,
        "smoke": ctx.smoke,
        "repeat": ctx.repeat,
        "repeats": ctx.repeat,
        "servers": ctx.servers,
        "wrk": ctx.wrk,
        "wrk_path": ctx.wrk,
        "workdir": ctx.workdir,
        "log_dir": ctx.workdir,
        "k_values": (8,) if ctx.smoke else (8, 16),
        "quick": ctx.smoke,
    }
    with contextlib.ExitStack() as stack:
        if {"database_url", "redis_url"} & set(params):
            fresh = stack.enter_context(ctx.fresh())
            known["database_url"] = fresh.database_url
            known["redis_url"] = fresh.redis_url
        kwargs: dict[str, Any] = {}
        missing: list[str] = []
        for name, param in params.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name in known:
                kwargs[name] = known[name]
            elif param.default is param.empty:
                missing.append(name)
        if missing:
            raise TypeError(f"run() needs {', '.join(missing)}, which the runner does not provide")
        yield kwargs
