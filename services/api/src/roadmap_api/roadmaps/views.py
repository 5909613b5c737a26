"""Turn database rows into response bodies (shared by owner and admin listings)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from roadmap_api.roadmaps.schemas import (
    ConceptNode,
    FrameworkOut,
    ItemState,
    Learning,
    ModuleNode,
    ReviewOut,
    RoadmapDetail,
    RoadmapSummary,
    StageNode,
    links_for,
)
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep, LearnerStatus
from roadmap_core.progress import Progress, Usage
from roadmap_db.models import ConceptProgress, ReviewRound, RoadmapJob
from roadmap_db.repositories.job_reads import FrameworkTree
from roadmap_db.repositories.learner_progress import QuizScores


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


@dataclass(frozen=True, slots=True)
class LearnerView:
    """One learner's marks and quiz scores on a roadmap's concepts."""

    progress: dict[uuid.UUID, ConceptProgress] = field(default_factory=dict)
    scores: dict[uuid.UUID, QuizScores] = field(default_factory=dict)

    def status(self, concept_id: uuid.UUID) -> LearnerStatus:
        mark = self.progress.get(concept_id)
        return LearnerStatus(mark.status) if mark is not None else LearnerStatus.not_started

    def learning(self, tree: FrameworkTree | None) -> Learning:
        concept_ids = [c.id for c in tree.concepts] if tree is not None else []
        statuses = [self.status(c) for c in concept_ids]
        done = statuses.count(LearnerStatus.done)
        best = [self.scores[c].best for c in concept_ids if c in self.scores]
        return Learning(
            concepts=len(concept_ids),
            done=done,
            in_progress=statuses.count(LearnerStatus.in_progress),
            completion=done / len(concept_ids) if concept_ids else 0.0,
            quizzes_attempted=len(best),
            average_best_score=sum(best) / len(best) if best else None,
        )


def framework_of(
    job: RoadmapJob, tree: FrameworkTree | None, learner: LearnerView
) -> FrameworkOut | None:
    if tree is None:
        return None
    stages = []
    for stage in tree.stages:
        modules = []
        for module in tree.modules_by_stage.get(stage.id, []):
            concepts = []
            for concept in tree.concepts_by_module.get(module.id, []):
                status = learner.status(concept.id)
                scores = learner.scores.get(concept.id)
                concepts.append(
                    ConceptNode(
                        id=concept.id,
                        key=concept.key,
                        title=concept.title,
                        summary=concept.summary,
                        difficulty=concept.difficulty,
                        estimated_hours=concept.estimated_hours,
                        prerequisites=list(concept.prerequisites),
                        progress=status,
                        completed=status is LearnerStatus.done,
                        quiz_attempts=scores.attempts if scores else 0,
                        best_quiz_score=scores.best if scores else None,
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
    learner: LearnerView,
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
            "framework": framework_of(job, tree, learner),
            "learning": learner.learning(tree),
        }
    )
