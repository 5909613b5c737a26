"""Issue 19, item 2: one trace per roadmap, across the real processes.

An OTLP receiver started by the test collects what the API, the content worker (two
prefork children) and the logs worker export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` names
it. The trace of ``POST /api/v1/roadmaps`` continues in the ``plan_job`` task (its context
carried in the message the API built itself, ``task_wire``), in every
``generate_concepts`` task the planner fanned out, through every LLM call and database
write, and into the logs worker; its id is in the API's JSON log line and in every
execution log of the roadmap. Before: no tracing at all.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from tests.support.db import Db, wait_for
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

SERVER, CLIENT, CONSUMER = 2, 3, 5  # OTLP span kinds


def _submit_span(spans: list[ReceivedSpan], job_id: str) -> ReceivedSpan:
    found = [
        s for s in spans
        if s.service == "roadmap-api" and s.kind == SERVER
        and s.attributes.get("roadmap.job_id") == job_id
    ]  # fmt: skip
    assert len(found) == 1, [(s.name, s.attributes) for s in spans if s.service == "roadmap-api"]
    return found[0]


def _system(span: ReceivedSpan) -> str | None:
    value = span.attributes.get("db.system.name", span.attributes.get("db.system"))
    return str(value) if value is not None else None


def _is_http(span: ReceivedSpan) -> bool:
    return "http.request.method" in span.attributes or "http.method" in span.attributes


def _exporting_to(receiver: OtlpReceiver, **settings: str) -> dict[str, str]:
    """Settings of every service: spans to ``receiver``, exported every 100 ms."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **settings,
    }


async def _wait_for(receiver: OtlpReceiver, done: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "spans did not arrive in time"
        await asyncio.sleep(0.2)


async def test_i19_02_a_roadmap_is_one_trace_from_the_api_through_the_workers(
    stack: Stack, db: Db
) -> None:
    with otlp_receiver() as receiver:
        stack.start(settings=_exporting_to(receiver, ACCESS_LOG="true"))
        client, _ = stack.new_user()
        jobs = [str(client.create_roadmap(**small_request()).id) for _ in range(2)]
        await db.wait_jobs(jobs, {"completed"}, within=90, context=stack.logs)
        calls = stack.fake.requests()

        def complete() -> bool:
            spans = receiver.snapshot()
            names = {(s.service, s.name) for s in spans}
            return (
                sum(1 for s in spans if s.name.startswith("chat ")) >= len(calls)
                and ("roadmap-worker-logs", "logs.write_batch") in names
                and sum(1 for s in spans if s.name == "run/content.generate_concepts") >= 6
            )

        await _wait_for(receiver, complete)
        # A moment more for the last log batches of the roadmaps' final steps.
        await asyncio.sleep(1.0)
        spans = receiver.snapshot()

    traces = {}
    llm_spans = 0
    for job_id in jobs:
        root = _submit_span(spans, job_id)
        assert root.parent_id is None
        assert root.name == "POST /api/v1/roadmaps"
        traces[job_id] = root.trace_id
        tree = [s for s in spans if s.trace_id == root.trace_id]

        # One connected tree: every span's parent is in the trace; the submit is its root.
        ids = {s.span_id for s in tree}
        orphans = [(s.service, s.name) for s in tree if s.parent_id and s.parent_id not in ids]
        assert not orphans, orphans
        assert [s for s in tree if s.parent_id is None] == [root]

        by_service: dict[str, set[str]] = {}
        for s in tree:
            by_service.setdefault(s.service, set()).add(s.name)
        assert set(by_service) == {"roadmap-api", "roadmap-worker-content", "roadmap-worker-logs"}
        content = [s for s in tree if s.service == "roadmap-worker-content"]
        assert (
            sum(1 for s in content if s.name == "run/content.plan_job" and s.kind == CONSUMER) == 1
        )
        # MAX_CONCEPTS=3, CONCEPT_BATCH_SIZE=1: the planner fanned out three tasks.
        assert sum(1 for s in content if s.name == "run/content.generate_concepts") == 3
        # Every LLM call of this roadmap (two to plan, three per concept), with its usage,
        # and the HTTP request under each.
        llm = [s for s in content if s.name == "chat gpt-4o-mini"]
        assert len(llm) == 2 + 3 * 3
        llm_spans += len(llm)
        assert all(s.attributes["roadmap.job_id"] == job_id for s in llm)
        assert all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in llm)
        http = {s.parent_id for s in content if s.kind == CLIENT and _is_http(s)}
        assert {s.span_id for s in llm} <= http
        # Database writes and Redis commands of the workers.
        assert any(_system(s) == "postgresql" and "INSERT" in s.name.upper() for s in content)
        assert any(_system(s) == "redis" for s in content)
        assert "logs.write_batch" in by_service["roadmap-worker-logs"]

    # One trace per roadmap, and every call the provider saw is in one of them.
    assert len(set(traces.values())) == len(jobs)
    assert llm_spans == len(calls)

    # The trace id in the API's JSON access line of the submit and in the execution logs.
    assert stack.api is not None
    lines = [json.loads(x) for x in stack.api.log(5_000_000).splitlines() if x.startswith("{")]
    submits = [
        x for x in lines if x.get("route") == "/api/v1/roadmaps" and x.get("method") == "POST"
    ]
    assert {x.get("trace_id") for x in submits} == set(traces.values())
    for job_id, trace_id in traces.items():
        rows = await db.fetch(
            "SELECT details->>'trace_id' AS trace_id FROM execution_logs WHERE job_id = $1",
            uuid.UUID(job_id),
        )
        assert rows
        assert {r["trace_id"] for r in rows} == {trace_id}


async def test_i19_02_a_roadmap_the_sampler_leaves_out_is_recorded_nowhere(
    stack: Stack, db: Db
) -> None:
    """Head sampling decides once, in the API: a roadmap it leaves out gets no span in any
    service, and its execution logs name no trace. Before: the logs worker continued the
    trace the logs named as a sampled one, exporting a ``logs.write_batch`` span, whose
    parent was never recorded, for every roadmap."""
    with otlp_receiver() as receiver:
        # Every process reads the sampler; only the API's root decision matters.
        stack.start(
            settings=_exporting_to(
                receiver,
                OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                OTEL_TRACES_SAMPLER_ARG="0",
            )
        )
        client, _ = stack.new_user()
        job_id = client.create_roadmap(**small_request()).id
        await db.wait_jobs([job_id], {"completed"}, within=90, context=stack.logs)

        async def finished_logged() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM execution_logs WHERE job_id = $1 AND step = 'finalize'",
                    job_id,
                )
            )

        await wait_for(finished_logged, within=30, what="the job's last execution log")
        # Past several export intervals of every process (100 ms here).
        await asyncio.sleep(1.5)
        spans = receiver.snapshot()

    assert spans == [], sorted({(s.service, s.name) for s in spans})
    rows = await db.fetch(
        "SELECT details->>'trace_id' AS trace_id FROM execution_logs WHERE job_id = $1", job_id
    )
    assert rows
    assert {r["trace_id"] for r in rows} == {None}
