"""Warm pure, process-wide caches in the main process before the pool forks.

Compiled prompt templates and the JSON schemas sent as ``response_format`` are
computed once here and inherited by every child, instead of being built by the
first task of each child (a child's first job was the slowest). Only pure data
is warmed: connections and clients are still created in each child.
"""

from __future__ import annotations

from roadmap_core.domain import Framework, IntentAnalysis, Quiz, ResourceList, Tutorial
from roadmap_core.llm.schema import strict_json_schema
from roadmap_core.llm.templates import PromptName, _environment


def warm_caches() -> None:
    environment = _environment()
    environment.get_template("system.j2")
    for name in PromptName:
        environment.get_template(f"{name}.j2")
    for model in (IntentAnalysis, Framework, Tutorial, ResourceList, Quiz):
        strict_json_schema(model)
