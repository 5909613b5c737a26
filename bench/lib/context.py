"""What the runner hands each benchmark: servers, mode, and a way to start a fresh stack."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib.infra import Fresh, Servers
from bench.lib.stack import BenchStack, StackConfig

_counter = itertools.count(1)


@dataclass
class Context:
    servers: Servers
    smoke: bool
    repeat: int
    workdir: Path  # logs of every process started, kept until the run ends
    wrk: str | None
    wrk_note: str
    notes: list[str] = field(default_factory=list)
    _closer: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop whatever the run still holds open (and drop its databases)."""
        self._closer.close()

    def scale(self, full: float, smoke: float) -> float:
        return smoke if self.smoke else full

    @contextlib.contextmanager
    def fresh(self) -> Iterator[Fresh]:
        with self.servers.fresh() as fresh:
            yield fresh

    @contextlib.contextmanager
    def stack(self, label: str, config: StackConfig | None = None) -> Iterator[BenchStack]:
        """A fresh database + Redis db and the services of `config`, all gone on exit.

        Never shared between benchmarks, smoke mode included: a stack left running (its
        pools, a backlog of flooded roadmaps) would take connections and CPU from the next.
        """
        with self._new_stack(label, config or StackConfig()) as stack:
            yield stack

    @contextlib.contextmanager
    def _new_stack(self, label: str, config: StackConfig) -> Iterator[BenchStack]:
        log_dir = self.workdir / f"{next(_counter):02d}-{label}"
        with self.fresh() as fresh, BenchStack(fresh, config, log_dir) as stack:
            yield stack
