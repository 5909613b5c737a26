"""Reading the fake LLM's request log: which item each request was for, and when."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from roadmap_dev.fake_llm import FakeLLM

# json_schema name of a request → the content kind it generates.
CONTENT_SCHEMAS = {"Tutorial": "tutorial", "ResourceList": "resources", "Quiz": "quiz"}
PLANNING_SCHEMAS = ("IntentAnalysis", "Framework")


ItemKey = tuple[str, str, str]  # (roadmap goal, concept key, kind): unique per item here


def item_of(request: dict[str, Any]) -> ItemKey | None:
    """The item a content request is for; None for planning requests.

    Tests give every roadmap its own goal, so the goal tells the roadmaps apart.
    """
    kind = CONTENT_SCHEMAS.get(str(request.get("schema")))
    if kind is None or not request.get("concept_id"):
        return None
    return str(request.get("goal")), str(request["concept_id"]), kind


def per_item(requests: Iterable[dict[str, Any]]) -> Counter[ItemKey]:
    return Counter(key for r in requests if (key := item_of(r)) is not None)


def content_requests(requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if item_of(r) is not None]


def wait_for_request(
    fake: FakeLLM, match: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for request in fake.requests():
            if match(request):
                return request
        if time.monotonic() > deadline:
            raise AssertionError(f"no LLM request {what} within {timeout:.0f}s")
        time.sleep(0.05)


def requests_after_save(
    items: Iterable[dict[str, Any]], requests: Iterable[dict[str, Any]]
) -> list[str]:
    """Requests for an item that arrived after its result was stored (each is a repeat)."""
    saved: dict[ItemKey, datetime] = {
        (str(i["goal"]), str(i["concept_key"]), str(i["kind"])): i["saved_at"]
        for i in items
        if i["saved_at"]
    }
    repeats = []
    for request in requests:
        key = item_of(request)
        if key is None or key not in saved:
            continue
        if float(request["ts"]) > saved[key].timestamp():
            repeats.append(
                f"{key} requested at {request['ts']:.3f} (seq {request['seq']}), saved at {saved[key]}"
            )
    return repeats
