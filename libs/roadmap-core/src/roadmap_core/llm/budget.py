"""Worst-case number of HTTP requests to the LLM endpoint, derived from settings.

Let ``S = LLM_SDK_MAX_RETRIES``, ``A = LLM_TASK_MAX_ATTEMPTS``,
``R = MAX_REPAIR_ROUNDS`` and ``N`` the number of concepts (``N <= MAX_CONCEPTS``).

* One logical call sends at most ``1 + S`` HTTP requests (the SDK's retries; our
  client has no retry loop of its own).
* Planning makes at most ``2 + R`` logical calls: intent analysis, curriculum
  design, ``R`` repair rounds. A plan task runs at most ``A`` times.
* Content makes ``3`` logical calls per concept (tutorial, resources, quiz), each
  item attempted at most ``A`` times.
* Each review round with feedback makes at most ``1 + R`` calls (revision + repairs),
  attempted at most ``A`` times.

    requests(N, V) <= (1 + S) * A * ((2 + R) + 3*N + V*(1 + R))

for ``V`` review rounds with feedback. With the defaults (S=2, A=3, R=2) and the
largest roadmap (N=40, V=0): 3 * 3 * (4 + 120) = 1116 requests; a typical
24-concept roadmap without faults makes 2 + 72 = 74. Retrying failed items or
regenerating a concept (user actions) adds ``(1 + S) * A`` per item.
"""

from __future__ import annotations

from roadmap_core.settings import LLMSettings

CONTENT_CALLS_PER_CONCEPT = 3


def planning_calls(settings: LLMSettings) -> int:
    return 2 + settings.max_repair_rounds


def revision_calls(settings: LLMSettings) -> int:
    return 1 + settings.max_repair_rounds


def worst_case_requests(settings: LLMSettings, n_concepts: int, review_rounds: int = 0) -> int:
    """Upper bound of HTTP requests for one roadmap of ``n_concepts`` concepts."""
    per_call = 1 + settings.llm_sdk_max_retries
    calls = (
        planning_calls(settings)
        + CONTENT_CALLS_PER_CONCEPT * n_concepts
        + review_rounds * revision_calls(settings)
    )
    return per_call * settings.llm_task_max_attempts * calls
