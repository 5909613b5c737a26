from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from roadmap_core import contracts
from roadmap_core.celery_app import (
    CONTENT_HARD_TIME_LIMIT,
    CONTENT_SOFT_TIME_LIMIT,
    create_celery_app,
)
from roadmap_core.settings import LLMSettings, RedisSettings


def test_every_contract_routes_to_a_declared_queue() -> None:
    app = create_celery_app("t", RedisSettings())
    declared = {q.name for q in app.conf.task_queues}
    assert declared == set(contracts.QUEUES)
    for name, contract in contracts.CONTRACTS.items():
        assert contract.name == name
        assert app.conf.task_routes[name]["queue"] == contract.queue
        assert (
            name.split(".")[0]
            == {"content_generation": "content", "chat": "chat", "logs": "logs"}[contract.queue]
        )


def test_shared_celery_config_is_safe_by_default() -> None:
    conf = create_celery_app("t", RedisSettings()).conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_create_missing_queues is False
    # LLM timeout < soft limit < hard limit < visibility timeout
    assert LLMSettings().llm_timeout_s < CONTENT_SOFT_TIME_LIMIT < CONTENT_HARD_TIME_LIMIT
    assert conf.broker_transport_options["visibility_timeout"] > CONTENT_HARD_TIME_LIMIT


def test_payloads_are_ids_only_and_strict() -> None:
    job = uuid.uuid4()
    assert contracts.PlanJob(job_id=job).model_dump(mode="json") == {"job_id": str(job)}
    with pytest.raises(ValidationError):
        contracts.PlanJob.model_validate({"job_id": str(job), "goal": "smuggled"})
    with pytest.raises(ValidationError):
        contracts.GenerateConcepts(job_id=job, concept_ids=[])


def test_send_publishes_by_name_to_the_contract_queue() -> None:
    sent: list[tuple[str, tuple[object, ...], str]] = []

    class Recorder:
        def send_task(
            self,
            name: str,
            args: tuple[object, ...],
            queue: str,
            ignore_result: bool,
            producer: object = None,
        ) -> object:
            sent.append((name, args, queue))

            class R:
                id = "task-1"

            return R()

    job = uuid.uuid4()
    assert contracts.send_plan_job(Recorder(), job) == "task-1"  # type: ignore[arg-type]
    assert sent == [("content.plan_job", ({"job_id": str(job)},), "content_generation")]
    with pytest.raises(TypeError):
        contracts.send(Recorder(), contracts.PLAN_JOB, contracts.CancelJob(job_id=job))  # type: ignore[arg-type]
