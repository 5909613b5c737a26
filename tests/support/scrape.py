"""Reading a Prometheus scrape in tests: every sample, summed by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    samples: list[tuple[str, dict[str, str], float]]

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample called ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str) -> bool:
        return any(sample == name for sample, _, _ in self.samples)


def parse(text: str) -> Scrape:
    return Scrape(
        [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    )


async def status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(timeout=10.0) as http:
        return (await http.get(url, headers=headers)).status_code


async def scrape(url: str, token: str) -> Scrape:
    async with httpx.AsyncClient(timeout=10.0) as http:
        answer = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    return parse(answer.text)
