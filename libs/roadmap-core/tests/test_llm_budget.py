from __future__ import annotations

from roadmap_core.llm import worst_case_requests
from roadmap_core.settings import LLMSettings


def test_worst_case_formula_with_defaults() -> None:
    settings = LLMSettings()  # S=2, A=3, R=2
    assert worst_case_requests(settings, 40) == 3 * 3 * (4 + 120) == 1116
    assert worst_case_requests(settings, 24, review_rounds=2) == 3 * 3 * (4 + 72 + 2 * 3)


def test_worst_case_follows_settings() -> None:
    settings = LLMSettings(llm_sdk_max_retries=0, llm_task_max_attempts=1, max_repair_rounds=0)
    assert worst_case_requests(settings, 10) == 2 + 30
