"""The worker's Celery app, settings and main-process setup, without starting a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roadmap_core import contracts
from roadmap_dev.fake_llm import FakeLLM
from roadmap_worker_content import runtime
from roadmap_worker_content.app import celery_app
from roadmap_worker_content.settings import ContentWorkerSettings


def test_the_app_runs_exactly_the_content_and_chat_contracts() -> None:
    own = (contracts.CONTENT_QUEUE, contracts.CHAT_QUEUE)
    content = {n for n, c in contracts.CONTRACTS.items() if c.queue in own}
    ours = {n for n in celery_app.tasks if not n.startswith("celery.")}
    assert ours == content
    for name in content:
        assert celery_app.conf.task_routes[name]["queue"] == contracts.CONTRACTS[name].queue
    assert contracts.ANSWER_CHAT.queue == contracts.CHAT_QUEUE


def test_the_app_is_a_safe_prefork_worker() -> None:
    conf = celery_app.conf
    assert conf.worker_pool == "prefork"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_soft_shutdown_timeout > 0
    assert conf.worker_hijack_root_logger is False


def test_settings_read_the_documented_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "WORKER_CONCURRENCY": "3",
        "WORKER_MAX_TASKS_PER_CHILD": "50",
        "ITEM_LEASE_S": "30",
        "RECONCILE_INTERVAL_S": "1",
        "STALE_AGE_S": "5",
        "RECONCILE_BATCH": "10",
        "RECONCILER_ENABLED": "false",
        "CONCEPT_BATCH_SIZE": "6",
        "SOFT_SHUTDOWN_TIMEOUT_S": "25",
        "WORKER_DB_POOL_SIZE": "3",
        "WORKER_DB_MAX_OVERFLOW": "1",
        "LLM_CONCURRENCY": "5",
        "WORKER_LLM_SLOTS": "12",
        "DATABASE_URL": "postgres://u@db.internal:5432/roadmap",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = ContentWorkerSettings()
    assert (s.worker_concurrency, s.worker_max_tasks_per_child) == (3, 50)
    assert (s.item_lease_s, s.lease_renew_s, s.reconcile_interval_s) == (30, 10, 1)
    assert (s.stale_age_s, s.reconcile_batch, s.reconciler_enabled) == (5, 10, False)
    assert (s.concept_batch_size, s.soft_shutdown_timeout_s, s.llm_concurrency) == (6, 25, 5)
    assert (s.child_pool_size, s.worker_db_max_overflow, s.worker_llm_slots) == (3, 1, 12)
    assert s.database_url == "postgresql+asyncpg://u@db.internal:5432/roadmap"


def test_each_child_keeps_a_connection_per_call_slot_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_CONCURRENCY", "6")
    monkeypatch.delenv("WORKER_DB_POOL_SIZE", raising=False)
    assert ContentWorkerSettings().child_pool_size == 7


def test_children_share_the_replica_slots_only_when_they_could_exceed_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "_replica", None)  # put back after the test
    settings = ContentWorkerSettings(llm_concurrency=8, worker_llm_slots=16)
    assert runtime.shared_caps(settings) == ()  # a process that is not a worker's child
    runtime.mark_replica(children=2)
    assert runtime.shared_caps(settings) == ()  # 2 x 8: the slots cannot be exceeded
    runtime.mark_replica(children=3)
    (cap,) = runtime.shared_caps(settings)
    assert (cap.limit, cap.setting) == (16, "WORKER_LLM_SLOTS")
    # Another replica (another main process) has a budget of its own.
    first = cap.key
    runtime.mark_replica(children=3)
    assert runtime.shared_caps(settings)[0].key != first


_HUNG_SHUTDOWN = """
import time
from celery.signals import worker_shutting_down
import roadmap_worker_content.app
from roadmap_core import celery_shutdown as guard
guard.STACKS_AFTER_S = 0.2
guard.EXIT_AFTER_S = 0.5
worker_shutting_down.send(sender="content@test", sig="SIGQUIT", how="Cold", exitcode=1)
def hung_in_broker_teardown():
    time.sleep(120)
hung_in_broker_teardown()
raise SystemExit(3)
"""


def test_a_cold_shutdown_that_hangs_ends_itself_after_writing_the_stacks() -> None:
    # SIGTERM is a cold shutdown here (REMAP_SIGTERM=SIGQUIT): once Celery has waited the
    # soft-shutdown timeout and announced it, a hang is cut short rather than SIGKILLed.
    # Bounded by subprocess.run's timeout: a shutdown that never ends raises TimeoutExpired.
    result = subprocess.run(
        [sys.executable, "-c", _HUNG_SHUTDOWN],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"},
    )
    assert result.returncode == 0, result.stderr
    assert "in hung_in_broker_teardown" in result.stderr
    assert "cold shutdown still running after 0.5 s" in result.stderr


_FORKING = """
import gc
from celery import signals
import roadmap_worker_content.app
signals.worker_init.send(sender=None)  # what the main process does before the pool forks
print(gc.get_freeze_count())
"""


def run_main_process_script(
    script: str, metrics_dir: Path, env: dict[str, str] | None = None
) -> list[str]:
    """What ``script`` prints, run in a fresh interpreter as a worker's main process would
    (no broker reachable; its metrics in ``metrics_dir``; ``env`` added)."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **(env or {}),
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_main_process_freezes_its_objects_before_the_pool_forks(tmp_path: Path) -> None:
    # Frozen, a child's full collection passes skip all it inherits (~170 ms -> 2 to 45 ms).
    assert int(run_main_process_script(_FORKING, tmp_path)[-1]) > 10_000


_REPLICAS = """
from celery import signals
from roadmap_worker_content import app as worker, runtime
class Main:  # the WorkController's parts the handler reads
    app = worker.celery_app
    concurrency = 3
main = Main()
signals.worker_init.send(sender=main)  # a content worker (no -Q): its children share slots
content = runtime._replica
runtime._replica = None
worker.celery_app.amqp.queues.select(["chat"])  # as `-Q chat` does
signals.worker_init.send(sender=main)
print(content.children if content else None, runtime._replica)
"""


def test_only_a_content_workers_children_share_slots(tmp_path: Path) -> None:
    # A chat worker's children make one call at a time: a shared cap would only cost them
    # two Redis round trips per answer.
    assert run_main_process_script(_REPLICAS, tmp_path)[-2:] == ["3", "None"]


_FIRST_CALL = """
import asyncio, sys
from celery import signals
from roadmap_worker_content import app as worker
signals.worker_init.send(sender=None)  # the main process, before the pool forks
from roadmap_core.domain import RoadmapRequest
from roadmap_core.llm.client import LLMClient
from roadmap_core.llm.templates import _environment
from roadmap_core.pipeline.planning import analyze_intent
from roadmap_db.models import Base
print("mappers", all(mapper.configured for mapper in Base.registry.mappers))
compiled, imported = len(_environment().cache), set(sys.modules)
async def first_call():  # what a child's first task does before anything else
    llm = LLMClient(worker.settings)
    try:
        request = RoadmapRequest(goal="Learn Rust", level="beginner", weekly_hours=5,
                                 weeks=4, language="en")
        await analyze_intent(llm, request)
    finally:
        await llm.aclose()
asyncio.run(first_call())
print("compiled", len(_environment().cache) - compiled, "imported", *sorted(set(sys.modules) - imported))
"""


def test_a_childs_first_llm_call_compiles_and_imports_nothing(
    fake: FakeLLM, tmp_path: Path
) -> None:
    # The images run without bytecode: a module first imported in a child is compiled
    # there (anyio's backend took ~85 ms of a cold child's first call), and a template
    # first included there is compiled too, and the ORM configures its mappers on the first
    # query. The main process does all of it before the fork.
    env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test"}
    printed = run_main_process_script(_FIRST_CALL, tmp_path, env)
    assert printed == ["mappers", "True", "compiled", "0", "imported"]
    assert len(fake.requests()) == 1  # the call did reach the provider
