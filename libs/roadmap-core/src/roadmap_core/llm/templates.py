"""Prompt templates (Jinja2, shipped as package data in ``roadmap_core/llm/prompts``).

One template per step renders the user message; ``system.j2`` renders the system
message, which fixes the output language to the request's ``language``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from roadmap_core.llm.client import ChatMessage


class PromptName(StrEnum):
    intent = "intent"
    design = "design"
    repair = "repair"
    revise = "revise"
    tutorial = "tutorial"
    resources = "resources"
    quiz = "quiz"


LANGUAGE_NAMES: Final[dict[str, str]] = {
    "en": "English",
    "zh": "Simplified Chinese (简体中文)",
    "zh-cn": "Simplified Chinese (简体中文)",
    "zh-hans": "Simplified Chinese (简体中文)",
    "zh-tw": "Traditional Chinese (繁體中文)",
    "zh-hant": "Traditional Chinese (繁體中文)",
    "ja": "Japanese (日本語)",
    "ko": "Korean (한국어)",
    "es": "Spanish (español)",
    "fr": "French (français)",
    "de": "German (Deutsch)",
    "it": "Italian (italiano)",
    "pt": "Portuguese (português)",
    "ru": "Russian (русский)",
    "ar": "Arabic (العربية)",
    "hi": "Hindi (हिन्दी)",
    "vi": "Vietnamese (Tiếng Việt)",
    "tr": "Turkish (Türkçe)",
    "nl": "Dutch (Nederlands)",
    "pl": "Polish (polski)",
    "uk": "Ukrainian (українська)",
    "id": "Indonesian (Bahasa Indonesia)",
}


def language_name(tag: str) -> str:
    """A human name for a BCP 47-ish tag, for the model's benefit; unknown tags as given."""
    norm = tag.strip().lower().replace("_", "-")
    return LANGUAGE_NAMES.get(norm) or LANGUAGE_NAMES.get(norm.split("-")[0]) or tag


def _oneline(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def _quote(value: Any) -> str:
    return "\n".join("> " + line for line in str(value).strip().splitlines()) or "> "


def _num(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.1f}"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("roadmap_core.llm", "prompts"),
        undefined=StrictUndefined,
        # Prompts are plain text for a model, not HTML.
        autoescape=select_autoescape(enabled_extensions=(), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Package data, unchanged while a process runs: no stat of every file per render.
        auto_reload=False,
    )
    env.filters["oneline"] = _oneline
    env.filters["quote"] = _quote
    env.filters["num"] = _num
    return env


def render(name: PromptName | str, **context: Any) -> str:
    text = _environment().get_template(f"{PromptName(name)}.j2").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_messages(name: PromptName | str, *, language: str, **context: Any) -> list[ChatMessage]:
    """System + user messages for step ``name``; human-readable output in ``language``."""
    system = (
        _environment()
        .get_template("system.j2")
        .render(language=language, language_name=language_name(language))
    )
    return [
        {"role": "system", "content": system.strip()},
        {"role": "user", "content": render(name, **context)},
    ]
