"""Warm pure, process-wide caches in the main process before the pool forks.

Compiled prompt templates, the JSON schemas sent as ``response_format``, the ORM's
configured mappers and the modules the HTTP client imports on its first connection are
made once here and inherited by every child, instead of by the first task of each child
(a child's first job was the slowest). Only pure data and code are warmed: connections
and clients are still created in each child.

Why imports matter most: the images run with ``PYTHONDONTWRITEBYTECODE`` and without
precompiled bytecode (the Dockerfiles say why), so a module first imported in a child is
compiled from source there. anyio loads its asyncio backend on the first connection of
the LLM client, which took ~85 ms of a cold child's ~130 ms of CPU before its first LLM
call (a py-spy profile of a one-child worker; ~5 ms warm). With twelve children starting
at once on two cores, that delayed every first call by up to 0.7 s.
"""

from __future__ import annotations

import importlib

from sqlalchemy.orm import configure_mappers

from roadmap_core.domain import Framework, IntentAnalysis, Quiz, ResourceList, Tutorial
from roadmap_core.llm.schema import strict_json_schema
from roadmap_core.llm.templates import _environment

# Imported lazily on the first request of the LLM client (httpx2 → httpcore2 → anyio),
# and the codec for host names in URLs.
FIRST_REQUEST_MODULES = ("anyio._backends._asyncio", "encodings.idna")


def warm_caches() -> None:
    environment = _environment()
    # Every template, the shared parts (``_request.j2``…) included: they are compiled
    # when a prompt first includes them.
    for name in environment.list_templates():
        environment.get_template(name)
    for model in (IntentAnalysis, Framework, Tutorial, ResourceList, Quiz):
        strict_json_schema(model)
    for module in FIRST_REQUEST_MODULES:
        importlib.import_module(module)
    # The ORM's relationships are resolved on the first query otherwise (~8 ms a child).
    configure_mappers()
