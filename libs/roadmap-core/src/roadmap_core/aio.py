"""A long-lived asyncio event loop in a background thread of the current process.

Celery's pools are synchronous. Processes that want one event loop (and one
connection pool bound to it) for their whole life start a ``BackgroundLoop``
after fork and hand coroutines to it from task code.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


async def _in_context(context: contextvars.Context, coro: Coroutine[Any, Any, T]) -> T:
    # Cancelling this task (the caller's future) cancels the inner one it awaits.
    return await asyncio.get_running_loop().create_task(coro, context=context)


class BackgroundLoop:
    def __init__(self, name: str = "roadmap-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._pid != os.getpid():
            raise RuntimeError("BackgroundLoop not started in this process")
        return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None and self._pid == os.getpid() and self._loop.is_running()

    def start(self) -> None:
        if self.running:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._loop, self._pid = loop, os.getpid()
        self._thread.start()
        ready.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the loop in a copy of the caller's context: what the calling
        thread had set (the span of the Celery task that runs it) holds inside too."""
        return asyncio.run_coroutine_threadsafe(
            _in_context(contextvars.copy_context(), coro), self.loop
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result from a non-loop thread."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._pid != os.getpid():
            return
        loop = self._loop
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = self._pid = None
