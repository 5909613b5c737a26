"""What the fake reads from our prompts (see roadmap_core/llm/prompts/*.j2).

The fake only needs a few facts; they are parsed from the stable "- Key: value"
lines of the templates. Missing facts fall back to defaults, so any prompt gets
a schema-valid answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any


def _line(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else None


def _section(title: str, text: str) -> str | None:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else None


@dataclass(frozen=True, slots=True)
class PromptFacts:
    text: str
    digest: str
    goal: str
    level: str
    language: str
    hour_budget: float
    max_concepts: int
    max_stages: int
    concept_title: str | None
    concept_id: str | None
    feedback: str | None
    instructions: str | None
    problems: list[str]
    current_framework: dict[str, Any] | None
    # (url, title) of the search results a resources prompt offers.
    sources: list[tuple[str, str]]

    @property
    def chinese(self) -> bool:
        return self.language.lower().startswith("zh")


def parse_prompt(messages: list[dict[str, Any]]) -> PromptFacts:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    text = "\n".join(parts)
    user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user") or text
    budget = _line(r"^- Hour budget: ([\d.]+)", user)
    max_concepts = _line(r"at most (\d+) concepts", user)
    max_stages = _line(r"At most (\d+) stages", user)
    feedback = _section("Reviewer feedback", user)
    instructions = _section("User instructions", user)
    problems_text = _section("Problems found", user)
    framework_text = _section("Current framework (JSON)", user)
    current: dict[str, Any] | None = None
    if framework_text:
        end = framework_text.rfind("}")
        try:
            loaded = json.loads(framework_text[: end + 1])
            current = loaded if isinstance(loaded, dict) else None
        except ValueError:
            current = None
    language = _line(r"^- Output language: (\S+)", user)
    if language is None:
        language = _line(r'language tag "([^"]+)"', text) or "en"
    return PromptFacts(
        text=user,
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
        # A chat's facts sit in its system message: looked up there when the user's lack them.
        goal=_line(r"^- Goal: (.+)$", user) or _line(r"^- Goal: (.+)$", text) or "General studies",
        level=_line(r"^- Level: (\w+)", user) or "beginner",
        language=language,
        hour_budget=float(budget) if budget else 40.0,
        max_concepts=int(max_concepts) if max_concepts else 40,
        max_stages=int(max_stages) if max_stages else 8,
        concept_title=_line(r"^- Concept title: (.+)$", user)
        or _line(r"^- Concept title: (.+)$", text),
        concept_id=_line(r"^- Concept id: (\S+)", user),
        feedback=_unquote(feedback),
        instructions=_unquote(instructions),
        problems=[
            line[2:].strip() for line in (problems_text or "").splitlines() if line.startswith("- ")
        ],
        current_framework=current,
        sources=[
            (m.group(1), m.group(2).strip())
            for m in re.finditer(r"^- Source \d+: (\S+)\n\s+Title: (.+)$", user, re.MULTILINE)
        ],
    )


def _unquote(block: str | None) -> str | None:
    """The quoted ("> ") lines that open a user-text section."""
    if block is None:
        return None
    quoted: list[str] = []
    for line in block.splitlines():
        if not line.startswith(">"):
            break
        quoted.append(line[2:] if line.startswith("> ") else line[1:])
    return "\n".join(quoted).strip() or None
