"""Size limits a framework must respect, taken from settings."""

from __future__ import annotations

from dataclasses import dataclass

from roadmap_core.settings import LLMSettings


@dataclass(frozen=True, slots=True)
class PlanLimits:
    max_concepts: int = 40
    max_stages: int = 8
    # Total estimated hours may exceed weekly_hours * weeks by this fraction.
    hours_tolerance: float = 0.10
    max_repair_rounds: int = 2

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> PlanLimits:
        return cls(
            max_concepts=settings.max_concepts,
            max_stages=settings.max_stages,
            hours_tolerance=settings.plan_hours_tolerance,
            max_repair_rounds=settings.max_repair_rounds,
        )
