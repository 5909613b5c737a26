"""Schema-valid, prompt-derived fake answers for the five structured outputs."""

# Chinese text uses full-width punctuation on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any, Final

from roadmap_dev.fake_llm.prompt import PromptFacts
from roadmap_dev.fake_llm.vocab import ASPECTS, DOMAINS, GOAL_PREFIXES, MODULE_THEMES, STAGES

SCHEMAS: Final = ("IntentAnalysis", "Framework", "Tutorial", "ResourceList", "Quiz")
CONCEPTS_PER_STAGE: Final = 6
CONCEPTS_PER_MODULE: Final = 4


def detect_schema(response_format: Any) -> str | None:
    """Which of our models a request asks for (by json_schema name, else by its properties)."""
    if not isinstance(response_format, dict):
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        return None
    name = spec.get("name")
    if name in SCHEMAS:
        return str(name)
    props = (spec.get("schema") or {}).get("properties") or {}
    for key, schema in (
        ("stages", "Framework"),
        ("markdown", "Tutorial"),
        ("resources", "ResourceList"),
        ("questions", "Quiz"),
        ("goals", "IntentAnalysis"),
    ):
        if key in props:
            return schema
    return None


def topic_of(goal: str) -> str:
    text = re.sub(r"\s+", " ", goal).strip().rstrip(".!?。！")
    lowered = text.lower()
    for prefix in GOAL_PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    text = text or goal.strip()
    text = text[:80].strip()
    return text[0].upper() + text[1:] if text else "General studies"


def slug(text: str) -> str:
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return value[:40].strip("-") or "topic"


def rng_for(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - fake content


def _t(facts: PromptFacts, en: str, zh: str) -> str:
    return zh if facts.chinese else en


def intent(facts: PromptFacts, rng: random.Random) -> dict[str, Any]:
    topic = topic_of(facts.goal)
    lowered = facts.goal.lower()
    domain = _t(facts, "General learning", "通用学习")
    for keywords, en, zh in DOMAINS:
        if any(k in lowered for k in keywords):
            domain = _t(facts, en, zh)
            break
    aspects = rng.sample(ASPECTS[2:30], 4)
    if facts.chinese:
        goals = [
            f"理解{topic}的核心概念",
            f"能够独立完成{topic}相关的实践项目",
            f"建立{topic}的系统知识体系",
        ]
        skills = [f"{topic}：{a[2]}" for a in aspects]
        background = f"具备{_level_zh(facts.level)}水平的相关基础"
        notes = f"总学习时间约 {facts.hour_budget:g} 小时"
    else:
        goals = [
            f"Understand the core ideas of {topic}",
            f"Build a small project with {topic} independently",
            f"Know where to go next after this {topic} roadmap",
        ]
        skills = [f"{topic}: {a[1].lower()}" for a in aspects]
        background = f"A {facts.level} learner with general study habits"
        notes = f"About {facts.hour_budget:g} hours of study in total"
    return {
        "topic": topic,
        "domain": domain,
        "goals": goals,
        "key_skills": skills,
        "assumed_background": background,
        "notes": notes,
    }


def _level_zh(level: str) -> str:
    return {"beginner": "初级", "intermediate": "中级", "advanced": "高级"}.get(level, "初级")


MIN_HOURS = 0.1


def _concept_count(facts: PromptFacts, forced: int | None) -> int:
    if forced is not None:
        return max(1, min(forced, facts.max_concepts))
    by_budget = round(facts.hour_budget / 4)
    return max(3, min(by_budget, 24, facts.max_concepts))


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def framework(facts: PromptFacts, rng: random.Random, forced: int | None) -> dict[str, Any]:
    topic = topic_of(facts.goal)
    n = _concept_count(facts, forced)
    n_stages = max(1, min(math.ceil(n / CONCEPTS_PER_STAGE), facts.max_stages, len(STAGES), n))
    per_stage = _split(n, n_stages)
    level_offset = {"beginner": 0, "intermediate": 1, "advanced": 2}.get(facts.level, 0)

    weights = [rng.uniform(0.8, 1.2) for _ in range(n)]
    target = facts.hour_budget * 0.9
    # Down to 6 minutes a concept, so the smallest budget the API accepts (1 h) still fits.
    hours = [max(MIN_HOURS, min(200.0, round(target * w / sum(weights), 1))) for w in weights]
    while sum(hours) > facts.hour_budget and max(hours) > MIN_HOURS:
        i = hours.index(max(hours))
        hours[i] = max(MIN_HOURS, round(hours[i] - 0.5, 1))

    ids: list[str] = []
    stages: list[dict[str, Any]] = []
    index = 0
    for s, count in enumerate(per_stage):
        stage_en, stage_zh = STAGES[s % len(STAGES)]
        n_modules = max(1, math.ceil(count / CONCEPTS_PER_MODULE))
        modules = []
        for m, m_count in enumerate(_split(count, n_modules)):
            theme_en, theme_zh = MODULE_THEMES[(s + m) % len(MODULE_THEMES)]
            concepts = []
            for _ in range(m_count):
                aspect_slug, aspect_en, aspect_zh = ASPECTS[index % len(ASPECTS)]
                round_no = index // len(ASPECTS)
                cid = aspect_slug if round_no == 0 else f"{aspect_slug}-{round_no + 1}"
                title = _t(facts, f"{topic}: {aspect_en}", f"{topic}：{aspect_zh}")
                if round_no:
                    title += _t(facts, f" (part {round_no + 1})", f"（第{round_no + 1}部分）")
                prereqs = [ids[-1]] if ids else []
                if len(ids) > 2 and rng.random() < 0.3:
                    extra = rng.choice(ids[:-1])
                    prereqs.append(extra)
                concepts.append(
                    {
                        "id": cid,
                        "title": title[:200],
                        "summary": _t(
                            facts,
                            f"{aspect_en} of {topic}, at a level suited to a {facts.level}"
                            " learner, with practice.",
                            f"面向{_level_zh(facts.level)}学习者的{topic}{aspect_zh}，包含练习。",
                        ),
                        "difficulty": min(5, 1 + level_offset + (index * 3) // max(1, n)),
                        "estimated_hours": hours[index],
                        "prerequisites": prereqs,
                    }
                )
                ids.append(cid)
                index += 1
            modules.append(
                {
                    "title": _t(facts, f"{stage_en}: {theme_en}", f"{stage_zh}：{theme_zh}"),
                    "description": _t(
                        facts,
                        f"{theme_en} for {topic} during the '{stage_en}' stage.",
                        f"{topic}在“{stage_zh}”阶段的{theme_zh}。",
                    ),
                    "concepts": concepts,
                }
            )
        stages.append(
            {
                "title": _t(facts, f"Stage {s + 1}: {stage_en}", f"第{s + 1}阶段：{stage_zh}"),
                "description": _t(
                    facts,
                    f"{stage_en} with {topic}.",
                    f"{topic}学习的{stage_zh}阶段。",
                ),
                "modules": modules,
            }
        )
    summary = _t(
        facts,
        f"A {facts.hour_budget:g}-hour roadmap to {facts.goal.rstrip('.')}, in {n} concepts"
        f" over {n_stages} stages.",
        f"用 {facts.hour_budget:g} 小时、{n_stages} 个阶段、{n} 个知识点完成目标：{facts.goal}",
    )
    if facts.feedback:
        summary += _t(facts, " Revised after review feedback.", " 已根据评审意见修订。")
    return {
        "title": _t(facts, f"{topic} learning roadmap", f"{topic}学习路线")[:200],
        "summary": summary[:4000],
        "stages": stages,
    }


def repaired_framework(
    facts: PromptFacts, rng: random.Random, forced: int | None
) -> dict[str, Any]:
    """Fix the framework in the prompt the way a careful model would; else design anew."""
    current = facts.current_framework
    if not current or not isinstance(current.get("stages"), list):
        return framework(facts, rng, forced)
    try:
        return _repair(current, facts)
    except (KeyError, TypeError, ValueError, AttributeError):
        return framework(facts, rng, forced)


def _repair(current: dict[str, Any], facts: PromptFacts) -> dict[str, Any]:
    seen: set[str] = set()
    order: list[str] = []
    kept = 0
    stages = []
    for stage in current["stages"][: facts.max_stages]:
        modules = []
        for module in stage.get("modules", []):
            concepts = []
            for concept in module.get("concepts", []):
                if kept >= facts.max_concepts:
                    break
                cid = str(concept["id"])
                base, n = cid, 2
                while cid in seen:
                    cid = f"{base[:60]}-{n}"
                    n += 1
                # Keep only prerequisites seen earlier: removes unknown ids and cycles.
                prereqs = [p for p in concept.get("prerequisites", []) if p in seen and p != cid]
                seen.add(cid)
                order.append(cid)
                concepts.append({**concept, "id": cid, "prerequisites": sorted(set(prereqs))})
                kept += 1
            if concepts:
                modules.append({**module, "concepts": concepts})
        if modules:
            stages.append({**stage, "modules": modules})
    all_concepts = [c for s in stages for m in s["modules"] for c in m["concepts"]]
    if not all_concepts:
        raise ValueError("nothing to repair")
    total = sum(float(c["estimated_hours"]) for c in all_concepts)
    if total > facts.hour_budget:
        scale = facts.hour_budget * 0.9 / total
        for c in all_concepts:
            c["estimated_hours"] = max(
                0.1, math.floor(float(c["estimated_hours"]) * scale * 10) / 10
            )
    return {**current, "stages": stages}


def invalid_framework(facts: PromptFacts, rng: random.Random, forced: int | None) -> dict[str, Any]:
    """Schema-valid but failing validation: duplicate id, unknown prerequisite, cycle, hours."""
    data = framework(facts, rng, max(forced or 4, 4))
    concepts = [c for s in data["stages"] for m in s["modules"] for c in m["concepts"]]
    concepts[1]["id"] = concepts[0]["id"]
    concepts[2]["prerequisites"] = ["no-such-concept", concepts[3]["id"]]
    concepts[3]["prerequisites"] = [concepts[2]["id"]]
    concepts[0]["estimated_hours"] = min(200.0, facts.hour_budget * 2 + 1)
    return data


# Markup a model could be tricked into writing: each line would run script or inject markup
# if a page rendered the tutorial's Markdown without sanitizing it.
HOSTILE_MARKDOWN: Final = "\n\n".join(
    [
        "## Hostile content",
        '<script>window.__hostile = "script";</script>',
        '<img src="x" onerror="window.__hostile = \'onerror\'">',
        "[a javascript link](javascript:window.__hostile='link')",
        '<a href="#" onclick="window.__hostile = \'onclick\'">raw link</a>',
        '<iframe src="http://127.0.0.1:9/"></iframe>',
        "![tracking image](javascript:window.__hostile='img')",
    ]
)


def tutorial(facts: PromptFacts, rng: random.Random) -> dict[str, Any]:
    topic = topic_of(facts.goal)
    title = facts.concept_title or topic
    if facts.chinese:
        sections = [
            f"## 概述\n\n本教程讲解**{title}**，它是学习{topic}的重要一步。",
            f"## 为什么重要\n\n掌握{title}能帮助你把前面学到的知识串联起来，并为后续内容打下基础。",
            "## 核心要点\n\n"
            + "\n".join(f"- 要点 {i + 1}：{title}的关键思想之一" for i in range(3)),
            f"## 示例\n\n```text\n示例：逐步应用 {title}\n1. 明确问题\n2. 选择方法\n3. 验证结果\n```",
            "## 常见错误\n\n- 跳过基础概念\n- 只看不练",
            f"## 小结\n\n你已经了解了{title}的核心内容。",
            "## 练习\n\n1. 用自己的话解释本节内容。\n2. 完成一个小练习并记录结果。",
        ]
        if facts.instructions:
            sections.insert(1, f"## 针对你的要求\n\n{facts.instructions[:500]}")
    else:
        sections = [
            f"## Overview\n\nThis tutorial covers **{title}**, a key step in learning {topic}.",
            f"## Why it matters\n\n{title} ties together what came before and prepares the"
            " next concepts of the roadmap.",
            "## Key ideas\n\n"
            + "\n".join(f"- Idea {i + 1}: one of the central points of {title}" for i in range(3)),
            f"## Worked example\n\n```text\nApplying {title} step by step\n1. State the problem"
            "\n2. Pick an approach\n3. Check the result\n```",
            "## Common mistakes\n\n- Skipping the fundamentals\n- Reading without practising",
            f"## Summary\n\nYou now know the essentials of {title}.",
            "## Practice\n\n1. Explain this concept in your own words.\n2. Solve a small"
            " exercise and note what you learned.",
        ]
        if facts.instructions:
            sections.insert(1, f"## Your request\n\n{facts.instructions[:500]}")
    return {
        "title": title[:200],
        "markdown": "\n\n".join(sections),
        "estimated_minutes": rng.randint(20, 90),
    }


_RESOURCE_SHAPES: Final = [
    ("documentation", "https://docs.example.com/{topic}/{concept}", "official guide", "官方指南"),
    ("article", "https://www.example.org/articles/{topic}-{concept}", "in depth", "深度文章"),
    ("video", "https://video.example.net/watch/{topic}-{concept}", "video walkthrough", "视频讲解"),
    ("exercise", "https://exercises.example.org/{topic}/{concept}", "exercises", "练习题"),
    ("book", "https://books.example.com/{topic}", "book chapter", "书籍章节"),
    ("course", "https://learn.example.com/courses/{topic}", "course", "课程"),
]


def resources(facts: PromptFacts, rng: random.Random) -> dict[str, Any]:
    if facts.sources:
        return _chosen_resources(facts, rng)
    topic = topic_of(facts.goal)
    title = facts.concept_title or topic
    topic_slug, concept_slug = slug(topic), facts.concept_id or slug(title)
    shapes = rng.sample(_RESOURCE_SHAPES, rng.randint(3, 5))
    items = []
    for kind, url, en, zh in shapes:
        items.append(
            {
                "title": _t(facts, f"{title} — {en}", f"{title}{zh}")[:200],
                "url": url.format(topic=topic_slug, concept=concept_slug),
                "type": kind,
                "description": _t(
                    facts,
                    f"A {en} that helps with {title}.",
                    f"帮助你学习{title}的{zh}。",
                ),
            }
        )
    return {"resources": items}


_SOURCE_TYPES: Final = ("documentation", "article", "video", "course", "exercise", "other")


def _chosen_resources(facts: PromptFacts, rng: random.Random) -> dict[str, Any]:
    """Like a model given search results: picks most of them, and, as models do now and
    then, adds one URL that was not offered (the pipeline must drop it)."""
    title = facts.concept_title or topic_of(facts.goal)
    picked = facts.sources[: max(1, min(len(facts.sources), rng.randint(3, 5)))]
    items = [
        {
            "title": source_title[:200],
            "url": url,
            "type": _SOURCE_TYPES[i % len(_SOURCE_TYPES)],
            "description": _t(
                facts, f"Helps with {title}: {source_title}."[:300], f"帮助你学习{title}。"
            ),
        }
        for i, (url, source_title) in enumerate(picked)
    ]
    items.append(
        {
            "title": _t(facts, f"{title} — further reading", f"{title}延伸阅读")[:200],
            "url": f"https://invented.example.com/{slug(title)}",
            "type": "article",
            "description": _t(facts, "A page the model made up.", "模型编造的页面。"),
        }
    )
    return {"resources": items}


def quiz(facts: PromptFacts, rng: random.Random) -> dict[str, Any]:
    title = facts.concept_title or topic_of(facts.goal)
    questions = []
    count = rng.randint(4, 6)
    for i in range(count):
        kind = ("single_choice", "multiple_choice", "true_false")[i % 3]
        if kind == "true_false":
            options = [_t(facts, "True", "正确"), _t(facts, "False", "错误")]
            correct = [rng.randrange(2)]
        else:
            options = [
                _t(
                    facts,
                    f"Statement {chr(65 + k)} about {title}",
                    f"关于{title}的说法{chr(65 + k)}",
                )[:200]
                for k in range(4)
            ]
            correct = (
                [rng.randrange(4)] if kind == "single_choice" else sorted(rng.sample(range(4), 2))
            )
        questions.append(
            {
                "id": f"q{i + 1}",
                "type": kind,
                "prompt": _t(
                    facts,
                    f"Question {i + 1}: which answer is right about {title}?",
                    f"第{i + 1}题：关于{title}，哪个答案正确？",
                ),
                "options": options,
                "correct": correct,
                "explanation": _t(
                    facts,
                    f"The correct answer follows from the key ideas of {title}.",
                    f"正确答案来自{title}的核心要点。",
                ),
            }
        )
    return {"questions": questions}


def invalid_instance(schema: str) -> dict[str, Any]:
    """JSON the pydantic model rejects (shape errors)."""
    if schema == "Quiz":
        return {
            "questions": [
                {
                    "id": "q1",
                    "type": "single_choice",
                    "prompt": "?",
                    "options": ["a", "b"],
                    "correct": [5],
                    "explanation": "",
                }
            ]
        }
    if schema == "ResourceList":
        return {"resources": [{"title": "x", "url": "not a url", "type": "article"}]}
    if schema == "Tutorial":
        return {"title": "x", "markdown": "", "estimated_minutes": 0}
    return {"unexpected": True}


def generate(schema: str, facts: PromptFacts, rng: random.Random, forced: int | None) -> Any:
    if schema == "IntentAnalysis":
        return intent(facts, rng)
    if schema == "Framework":
        if facts.problems or (facts.current_framework is not None and not facts.feedback):
            return repaired_framework(facts, rng, forced)
        return framework(facts, rng, forced)
    if schema == "Tutorial":
        return tutorial(facts, rng)
    if schema == "ResourceList":
        return resources(facts, rng)
    if schema == "Quiz":
        return quiz(facts, rng)
    raise ValueError(f"unknown schema {schema}")


def chat_reply(facts: PromptFacts, question: str, rng: random.Random) -> str:
    """A mentor's free-text answer (no response_format): about the concept when the prompt
    names one, else about the goal; it quotes the start of the learner's question."""
    subject = facts.concept_title or topic_of(facts.goal)
    asked = " ".join(question.split()[:12]) or "your question"
    if facts.chinese:
        steps = rng.sample(
            ["先读一遍教程的要点", "动手写一个小例子", "对照测验检查理解", "记录遇到的问题"], 3
        )
        return (
            f"关于「{asked}」：这与{subject}直接相关。建议你{steps[0]}，然后{steps[1]}，"
            f"最后{steps[2]}。如果还有不清楚的地方，告诉我你卡在哪一步。"
        )
    steps = rng.sample(
        [
            "reread the key points of the tutorial",
            "write a tiny example of your own",
            "check yourself against the quiz",
            "note where you got stuck",
            "explain it aloud in two sentences",
        ],
        3,
    )
    return (
        f'Good question: "{asked}". It comes down to {subject}. '
        f"First, {steps[0]}; then {steps[1]}; finally, {steps[2]}. "
        f"Most learners at the {facts.level} level find that doing this once makes "
        f"{subject} click. Tell me which part is still unclear and we will go through it."
    )
