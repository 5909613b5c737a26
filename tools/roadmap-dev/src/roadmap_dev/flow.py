"""The client flow shared by `roadmap demo` and `roadmap generate`: submit, follow, show."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from roadmap_client import ApiError, RoadmapClient, concepts_of
from roadmap_client.client import ContentKind
from roadmap_client.models import (
    ConceptNode,
    QuizItem,
    ResourcesItem,
    RoadmapDetail,
    TutorialItem,
)

DEFAULT_GOAL = "Learn Python for data analysis"
STATUS_MARK = {
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "running": "[yellow]…[/]",
    "queued": "[dim]·[/]",
    "pending": "[dim]·[/]",
    "cancelled": "[dim]-[/]",
}
EXCERPT_LINES = 14
KINDS = ("tutorial", "resources", "quiz")
TERMINAL = frozenset({"completed", "partial_failure", "failed", "cancelled"})


@dataclass(frozen=True)
class RoadmapRequestOptions:
    goal: str = DEFAULT_GOAL
    level: str = "beginner"
    weekly_hours: float = 5
    weeks: int = 4
    language: str = "en"

    def body(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "level": self.level,
            "weekly_hours": self.weekly_hours,
            "weeks": self.weeks,
            "language": self.language,
        }


@dataclass
class FlowResult:
    roadmap: RoadmapDetail
    raw: dict[str, Any]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _describe(roadmap: RoadmapDetail) -> str:
    if roadmap.framework is None:
        return f"{roadmap.status}: {roadmap.current_step}"
    stages = _count(len(roadmap.framework.stages), "stage")
    concepts = _count(len(concepts_of(roadmap)), "concept")
    failed = f", [red]{roadmap.progress.failed} failed[/]" if roadmap.progress.failed else ""
    return f"{stages} / {concepts} planned · {roadmap.status}{failed}"


def follow(
    client: RoadmapClient,
    job_id: uuid.UUID,
    console: Console,
    *,
    show_progress: bool,
    timeout: float,
    cancelled: threading.Event | None = None,
) -> RoadmapDetail:
    """Follow the SSE stream to a terminal event, drawing a progress bar from the job state.

    Event payloads only trigger a refresh: the job resource is the one source of the counts.
    """
    deadline = time.monotonic() + timeout
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not show_progress,
    )
    roadmap = client.get_roadmap(job_id)
    with progress:
        task = progress.add_task(_describe(roadmap), total=None)
        last_refresh = 0.0
        for event in client.events(job_id):
            if cancelled is not None and cancelled.is_set():
                break
            if event.type == "review_required":
                client.review(job_id, approve=True)
            now = time.monotonic()
            if event.is_terminal or now - last_refresh > 0.2:
                roadmap = client.get_roadmap(job_id)
                last_refresh = now
                total = roadmap.progress.total or None
                progress.update(
                    task,
                    description=_describe(roadmap),
                    total=total,
                    completed=roadmap.progress.done + roadmap.progress.failed,
                )
            if event.is_terminal or now > deadline:
                break
    roadmap = client.get_roadmap(job_id)
    if roadmap.status not in TERMINAL and time.monotonic() > deadline:
        raise ApiError(0, {"title": f"not finished after {timeout:.0f}s"}, "GET", str(job_id))
    return roadmap


def submit_and_follow(
    client: RoadmapClient,
    request: RoadmapRequestOptions,
    console: Console,
    *,
    show_progress: bool,
    timeout: float,
    cancelled: threading.Event | None = None,
) -> FlowResult:
    accepted = client.create_roadmap(**request.body())
    console.print(f"submitted roadmap [bold]{accepted.id}[/] — goal: {escape(repr(request.goal))}")
    roadmap = follow(
        client,
        accepted.id,
        console,
        show_progress=show_progress,
        timeout=timeout,
        cancelled=cancelled,
    )
    return FlowResult(roadmap=roadmap, raw=client.get_roadmap_json(accepted.id))


def _items_line(concept: ConceptNode) -> str:
    """`✓T ✓R ✓Q`: one mark per content item, in a fixed order (legend under the tree)."""
    kinds = sorted(concept.content, key=lambda k: (KINDS.index(k) if k in KINDS else len(KINDS), k))
    return " ".join(
        f"{STATUS_MARK.get(concept.content[kind].status, '?')}{kind[:1].upper()}" for kind in kinds
    )


def roadmap_tree(roadmap: RoadmapDetail) -> Tree:
    title = (
        (roadmap.framework.title if roadmap.framework else None) or roadmap.title or roadmap.goal
    )
    tree = Tree(f"[bold]{escape(title or '')}[/]  ({roadmap.status})")
    if roadmap.framework is None:
        return tree
    for stage in roadmap.framework.stages:
        stage_node = tree.add(f"[bold cyan]{escape(stage.title)}[/]")
        for module in stage.modules:
            module_node = stage_node.add(f"[magenta]{escape(module.title)}[/]")
            for concept in module.concepts:
                hours = f" ({concept.estimated_hours:g} h)" if concept.estimated_hours else ""
                module_node.add(f"{_items_line(concept)}  {escape(concept.title)}{hours}")
    return tree


LEGEND = "[dim]T tutorial · R resources · Q quiz — ✓ done, ✗ failed, … running, · waiting[/]"


def _first_with(roadmap: RoadmapDetail, kind: ContentKind) -> ConceptNode | None:
    for concept in concepts_of(roadmap):
        item = concept.content.get(kind)
        if item is not None and item.status == "succeeded":
            return concept
    return None


def tutorial_excerpt(client: RoadmapClient, roadmap: RoadmapDetail) -> Panel | None:
    concept = _first_with(roadmap, "tutorial")
    if concept is None:
        return None
    item = client.get_concept(roadmap.id, concept.id).content.get("tutorial")
    if not isinstance(item, TutorialItem) or item.result is None:
        return None
    markdown = item.result.body.markdown.strip()
    lines = markdown.splitlines()
    excerpt = "\n".join(lines[:EXCERPT_LINES]) + ("\n\n…" if len(lines) > EXCERPT_LINES else "")
    return Panel(
        Markdown(excerpt), title=f"Tutorial excerpt — {escape(concept.title)}", expand=False
    )


def checked_resources(client: RoadmapClient, roadmap: RoadmapDetail) -> Panel | None:
    """The first concept's resources: found by web search, each with its link check."""
    concept = _first_with(roadmap, "resources")
    if concept is None:
        return None
    item = client.get_concept(roadmap.id, concept.id).content.get("resources")
    if not isinstance(item, ResourcesItem) or item.result is None:
        return None
    body = item.result.body
    lines = [
        Text(f"searched {body.search_provider or '?'}: {body.search_query or '?'}", style="bold")
    ]
    for resource in body.resources[:3]:
        link = resource.link
        lines.append(Text(f"{resource.title} ({resource.type})"))
        lines.append(Text(f"  {resource.url}", style="cyan"))
        if link is not None:
            checked = link.checked_at.strftime("%H:%M:%S")
            detail = f"  {link.status} · HTTP {link.http_status} · {link.content_type or '?'}"
            if link.final_url != str(resource.url):
                detail += f" · ended at {link.final_url}"
            if link.page_title:
                detail += f" · “{link.page_title}”"
            lines.append(
                Text(
                    f"{detail} · checked {checked}", style="green" if link.status == "ok" else "red"
                )
            )
    return Panel(
        Group(*lines), title=f"Resources (checked) — {escape(concept.title)}", expand=False
    )


def quiz_attempt(client: RoadmapClient, roadmap: RoadmapDetail) -> Panel | None:
    """Answer the first quiz (the first option of every question) and show how it went:
    the questions come without their answers; the attempt brings score and explanations."""
    concept = _first_with(roadmap, "quiz")
    if concept is None:
        return None
    item = client.get_concept(roadmap.id, concept.id).content.get("quiz")
    if not isinstance(item, QuizItem) or item.result is None:
        return None
    questions = item.result.body.questions
    attempt = client.quiz_attempt(
        roadmap.id, concept.id, [0] * len(questions), quiz_version=item.result.version
    )
    question, result = questions[0], attempt.results[0]
    lines = [
        Text(f"answered {attempt.total} questions: {attempt.correct} right", style="bold"),
        Text(question.prompt),
    ]
    for index, option in enumerate(question.options):
        chosen = "you" if index in result.chosen else "   "
        mark = "●" if index in result.correct_options else "○"
        style = "green" if index in result.correct_options else ""
        lines.append(Text(f"  {chosen} {mark} {option}", style=style))
    if result.explanation:
        lines.append(Text(result.explanation, style="dim"))
    return Panel(
        Group(*lines),
        title=f"Quiz attempt — {escape(concept.title)} — score {attempt.score:.0%}",
        expand=False,
    )


CHAT_QUESTION = "What should I focus on first, and how do I know I have understood it?"


def chat_answer(client: RoadmapClient, roadmap: RoadmapDetail) -> Panel | None:
    """Ask the mentor about the first concept with a tutorial and show its streamed answer."""
    concept = _first_with(roadmap, "tutorial")
    if concept is None:
        return None
    try:
        _, answer = client.ask(roadmap.id, CHAT_QUESTION, concept_id=concept.id, max_wait=30)
    except ApiError as exc:  # an API without the chat, or no chat worker answering
        return Panel(Text(f"no answer: {exc}", style="red"), title="Mentor chat", expand=False)
    lines = [
        Text(f"you: {CHAT_QUESTION}", style="bold"),
        Text(f"mentor: {answer.content}" if answer.status == "done" else f"({answer.error})"),
        Text(
            f"{answer.prompt_tokens:,} prompt + {answer.completion_tokens:,} completion tokens,"
            f" ${answer.cost_usd:.6f}",
            style="dim",
        ),
    ]
    return Panel(Group(*lines), title=f"Mentor chat — {escape(concept.title)}", expand=False)


def usage_table(roadmap: RoadmapDetail, log_count: int) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    usage = roadmap.usage
    table.add_row("prompt tokens", f"{usage.prompt_tokens:,}")
    table.add_row("completion tokens", f"{usage.completion_tokens:,}")
    table.add_row("cost", f"${usage.cost_usd:.4f}")
    table.add_row("execution logs", f"{log_count:,}")
    return table


def show(client: RoadmapClient, result: FlowResult, console: Console) -> None:
    roadmap = result.roadmap
    console.print(roadmap_tree(roadmap))
    console.print(LEGEND)
    panels = (
        tutorial_excerpt(client, roadmap),
        checked_resources(client, roadmap),
        quiz_attempt(client, roadmap),
        chat_answer(client, roadmap),
    )
    for panel in panels:
        if panel is not None:
            console.print(panel)
    # Read again: the chat answer's usage counts on the roadmap too.
    roadmap = client.get_roadmap(roadmap.id)
    console.print(usage_table(roadmap, client.count_logs(roadmap.id)))
