"""Deterministic checks of a framework beyond its shape (pydantic covers the shape).

The messages are written for two readers: the LLM, which gets them in the repair
prompt, and the learner, who sees them when planning fails. They name the
concepts, stages and modules concerned and are stable (sorted) for a given input.
"""

from __future__ import annotations

from collections import Counter

from roadmap_core.domain import Concept, Framework, RoadmapRequest
from roadmap_core.pipeline.limits import PlanLimits


def validate_framework(
    framework: Framework, request: RoadmapRequest, limits: PlanLimits
) -> list[str]:
    """Every problem found, or an empty list when the framework is valid.

    Checks: at least one and at most ``max_stages`` stages; no empty stage or module;
    at most ``max_concepts`` concepts; unique concept ids; prerequisites that exist,
    are not the concept itself, and form no cycle; total estimated hours within
    ``hour_budget * (1 + hours_tolerance)``.
    """
    errors: list[str] = []
    errors += _check_levels(framework, limits)
    concepts = framework.concepts()
    errors += _check_ids(concepts)
    errors += _check_prerequisites(concepts)
    errors += _check_hours(concepts, request, limits)
    return errors


def _check_levels(framework: Framework, limits: PlanLimits) -> list[str]:
    errors: list[str] = []
    if not framework.stages:
        errors.append("the framework has no stages")
    if len(framework.stages) > limits.max_stages:
        errors.append(
            f"the framework has {len(framework.stages)} stages; at most {limits.max_stages}"
            " are allowed"
        )
    for s_index, stage in enumerate(framework.stages, start=1):
        if not stage.modules:
            errors.append(f'stage {s_index} "{stage.title}" has no modules')
        for m_index, module in enumerate(stage.modules, start=1):
            if not module.concepts:
                errors.append(
                    f'module {s_index}.{m_index} "{module.title}" (stage "{stage.title}")'
                    " has no concepts"
                )
    count = len(framework.concepts())
    if count > limits.max_concepts:
        errors.append(
            f"the framework has {count} concepts; at most {limits.max_concepts} are allowed"
        )
    return errors


def _check_ids(concepts: list[Concept]) -> list[str]:
    counts = Counter(c.id for c in concepts)
    return [
        f'concept id "{cid}" is used by {n} concepts; ids must be unique'
        for cid, n in sorted(counts.items())
        if n > 1
    ]


def _check_prerequisites(concepts: list[Concept]) -> list[str]:
    errors: list[str] = []
    known = {c.id for c in concepts}
    for concept in concepts:
        for prereq in concept.prerequisites:
            if prereq == concept.id:
                errors.append(f'concept "{concept.id}" lists itself as a prerequisite')
            elif prereq not in known:
                errors.append(
                    f'concept "{concept.id}" has prerequisite "{prereq}", which is not a concept'
                    " of this framework"
                )
    errors += [
        "prerequisites form a cycle: " + " -> ".join(cycle) for cycle in _find_cycles(concepts)
    ]
    return errors


def _find_cycles(concepts: list[Concept]) -> list[list[str]]:
    """One representative cycle per strongly connected group (self-loops reported apart)."""
    graph: dict[str, list[str]] = {}
    for concept in concepts:
        edges = graph.setdefault(concept.id, [])
        edges.extend(p for p in concept.prerequisites if p != concept.id)
    for edges in graph.values():
        edges[:] = sorted({p for p in edges if p in graph})

    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    seen_members: set[str] = set()

    for root in sorted(graph):
        if colour[root] != white:
            continue
        # Iterative DFS: frameworks are small, but recursion limits are not worth risking.
        path: list[str] = [root]
        iters = [iter(graph[root])]
        colour[root] = grey
        while iters:
            node = path[-1]
            child = next(iters[-1], None)
            if child is None:
                colour[node] = black
                path.pop()
                iters.pop()
                continue
            if colour[child] == grey:
                cycle = [*path[path.index(child) :], child]
                if not seen_members.intersection(cycle):
                    cycles.append(cycle)
                    seen_members.update(cycle)
            elif colour[child] == white:
                colour[child] = grey
                path.append(child)
                iters.append(iter(graph[child]))
    return cycles


def _check_hours(concepts: list[Concept], request: RoadmapRequest, limits: PlanLimits) -> list[str]:
    total = sum(c.estimated_hours for c in concepts)
    budget = request.hour_budget
    allowed = budget * (1 + limits.hours_tolerance)
    if total > allowed + 1e-9:
        return [
            f"the concepts' estimated hours add up to {total:g} h, more than the budget of"
            f" {budget:g} h ({request.weekly_hours:g} h/week x {request.weeks} weeks,"
            f" {limits.hours_tolerance:.0%} tolerance allows {allowed:g} h); shorten or drop"
            " concepts"
        ]
    return []
