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
    _shared: dict[str, BenchStack] = field(default_factory=dict)
    _closer: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stacks shared in smoke mode (and drop their databases)."""
        self._shared.clear()
        self._closer.close()

    def scale(self, full: float, smoke: float) -> float:
        return smoke if self.smoke else full

    @contextlib.contextmanager
    def fresh(self) -> Iterator[Fresh]:
        with self.servers.fresh() as fresh:
            yield fresh

    @contextlib.contextmanager
    def stack(
        self, label: str, config: StackConfig | None = None, *, share: str | None = None
    ) -> Iterator[BenchStack]:
        """A fresh database + Redis db and the services of `config`, all gone on exit.

        In smoke mode, benchmarks passing the same `share` key (and config) get one stack,
        stopped at the end of the run: starting one costs seconds and smoke numbers are not
        judged. Only benchmarks whose leftovers (e.g. a backlog of queued roadmaps after a
        POST flood) cannot disturb each other should share one.
        """
        config = config or StackConfig()
        if not self.smoke or share is None:
            with self._new_stack(label, config) as stack:
                yield stack
            return
        key = f"{share}:{config!r}"
        if key not in self._shared:
            self._shared[key] = self._closer.enter_context(self._new_stack(label, config))
        yield self._shared[key]

    @contextlib.contextmanager
    def _new_stack(self, label: str, config: StackConfig) -> Iterator[BenchStack]:
        log_dir = self.workdir / f"{next(_counter):02d}-{label}"
        with self.fresh() as fresh, BenchStack(fresh, config, log_dir) as stack:
            yield stack
