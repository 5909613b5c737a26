"""Keep what a process builds at start-up out of the garbage collector's full passes.

A full (generation 2) pass walks every tracked object the process holds: all the modules
imported (SQLAlchemy, Celery, pydantic, openai…), their classes and caches. In a content
worker's child that took ~170 ms, during which its event loop — with its LLM calls in flight,
its saves and its heartbeats — stood still. Objects that live as long as the process are
frozen instead (``gc.freeze``: moved to a permanent generation that no pass visits); the
same passes then took 2 to 45 ms. In a prefork worker the main process freezes before the pool
forks, so the children inherit it, and the passes no longer write to every inherited
object's header either, which kept those pages shared between the children.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what start-up left behind, then freeze everything still alive."""
    gc.collect()
    gc.freeze()
