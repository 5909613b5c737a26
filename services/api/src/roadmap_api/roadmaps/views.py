"""Turn database rows into response bodies (shared by owner and admin listings)."""

from __future__ import annotations

import uuid

from roadmap_api.roadmaps.schemas import (
    ConceptNode,
    FrameworkOut,
    ItemState,
    ModuleNode,
    ReviewOut,
    RoadmapDetail,
    RoadmapSummary,
    StageNode,
    links_for,
)
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep
from roadmap_core.progress import Progress, Usage
from roadmap_db.models import ConceptProgress, ReviewRound, RoadmapJob
from roadmap_db.repositories.job_reads import FrameworkTree


def progress_of(counts: dict[ItemStatus, int]) -> Progress:
    return Progress.from_counts(counts)


def goal_of(job: RoadmapJob) -> str:
    goal = job.request.get("goal")
    return goal if isinstance(goal, str) else ""


def summary_fields(job: RoadmapJob, counts: dict[ItemStatus, int]) -> dict[str, object]:
    return {
        "id": job.id,
        "status": JobStatus(job.status),
        "current_step": JobStep(job.current_step),
        "title": job.title,
        "goal": goal_of(job),
        "progress": progress_of(counts),
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "links": links_for(job.id),
    }


def summary_of(job: RoadmapJob, counts: dict[ItemStatus, int]) -> RoadmapSummary:
    return RoadmapSummary.model_validate(summary_fields(job, counts))


def usage_of(job: RoadmapJob) -> Usage:
    return Usage(
        prompt_tokens=job.prompt_tokens,
        completion_tokens=job.completion_tokens,
        cost_usd=float(job.cost_usd),
        llm_calls=job.llm_calls,
    )


def review_of(review: ReviewRound | None) -> ReviewOut | None:
    if review is None:
        return None
    return ReviewOut(
        round=review.round,
        decision=review.decision,
        feedback=review.feedback,
        created_at=review.created_at,
        decided_at=review.decided_at,
    )


def framework_of(
    job: RoadmapJob, tree: FrameworkTree | None, progress: dict[uuid.UUID, ConceptProgress]
) -> FrameworkOut | None:
    if tree is None:
        return None
    stages = []
    for stage in tree.stages:
        modules = []
        for module in tree.modules_by_stage.get(stage.id, []):
            concepts = []
            for concept in tree.concepts_by_module.get(module.id, []):
                done = progress.get(concept.id)
                concepts.append(
                    ConceptNode(
                        id=concept.id,
                        key=concept.key,
                        title=concept.title,
                        summary=concept.summary,
                        difficulty=concept.difficulty,
                        estimated_hours=concept.estimated_hours,
                        prerequisites=list(concept.prerequisites),
                        completed=bool(done and done.completed),
                        content={
                            ContentKind(item.kind): ItemState(
                                status=item.status, version=item.version, error=item.error
                            )
                            for item in tree.items_by_concept.get(concept.id, [])
                        },
                    )
                )
            modules.append(
                ModuleNode(
                    id=module.id,
                    title=module.title,
                    description=module.description,
                    concepts=concepts,
                )
            )
        stages.append(
            StageNode(
                id=stage.id, title=stage.title, description=stage.description, modules=modules
            )
        )
    return FrameworkOut(title=job.title, summary=job.summary, stages=stages)


def detail_of(
    job: RoadmapJob,
    counts: dict[ItemStatus, int],
    review: ReviewRound | None,
    tree: FrameworkTree | None,
    progress: dict[uuid.UUID, ConceptProgress],
) -> RoadmapDetail:
    return RoadmapDetail.model_validate(
        {
            **summary_fields(job, counts),
            "summary": job.summary,
            "error": job.error,
            "request": job.request,
            "usage": usage_of(job),
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "review": review_of(review),
            "framework": framework_of(job, tree, progress),
        }
    )
