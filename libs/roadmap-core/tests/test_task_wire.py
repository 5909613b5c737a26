"""Messages built by ``task_wire`` are the ones kombu's Redis transport would have pushed,
and a Celery consumer reads them as the task they name."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Connection
from redis import Redis

from roadmap_core import contracts, task_wire
from roadmap_core.celery_app import SENT_AT_HEADER, create_celery_app
from roadmap_core.settings import RedisSettings

# Differ per message by nature: ids, the send time, the sending process.
PER_MESSAGE = {"id", "root_id", "argsrepr", SENT_AT_HEADER, "origin"}


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    Redis.from_url(redis_url).flushdb()
    celery = create_celery_app("task-wire-tests", RedisSettings(redis_url=redis_url))
    yield celery
    celery.close()


def pushed(redis_url: str, queue: str) -> list[dict[str, Any]]:
    client = Redis.from_url(redis_url)
    try:
        return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    finally:
        client.close()


def without(fields: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in names}


def body_of(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


def test_the_message_matches_what_kombu_publishes(app: Celery, redis_url: str) -> None:
    job = uuid.uuid4()
    contracts.send_plan_job(app, job)
    ours = task_wire.encode(app, contracts.PLAN_JOB, contracts.PlanJob(job_id=job))
    Redis.from_url(redis_url).lpush(ours.queue, ours.data)

    kombu_message, wire_message = pushed(redis_url, contracts.CONTENT_QUEUE)
    assert wire_message.keys() == kombu_message.keys()
    for key in ("content-encoding", "content-type"):
        assert wire_message[key] == kombu_message[key]
    assert body_of(wire_message) == body_of(kombu_message)
    for side in (wire_message, kombu_message):
        assert side["headers"]["argsrepr"] == repr(({"job_id": str(job)},))
    assert without(wire_message["headers"], PER_MESSAGE) == without(
        kombu_message["headers"], PER_MESSAGE
    )
    per_message = {"correlation_id", "delivery_tag"}
    assert without(wire_message["properties"], per_message) == without(
        kombu_message["properties"], per_message
    )

    headers = wire_message["headers"]
    assert headers["id"] == headers["root_id"] == ours.task_id
    assert wire_message["properties"]["correlation_id"] == ours.task_id
    assert ours.task == "content.plan_job"
    assert abs(headers[SENT_AT_HEADER] - time.time()) < 60
    assert wire_message["properties"]["delivery_tag"] != kombu_message["properties"]["delivery_tag"]


def test_a_consumer_receives_it_as_the_named_task(app: Celery, redis_url: str) -> None:
    job = uuid.uuid4()
    message = task_wire.encode(app, contracts.CANCEL_JOB, contracts.CancelJob(job_id=job))
    Redis.from_url(redis_url).lpush(message.queue, message.data)

    received: list[Any] = []
    with Connection(redis_url) as conn:
        queue = conn.SimpleQueue(contracts.CONTENT_QUEUE)
        got = queue.get(timeout=5)
        received.append((got.headers["task"], got.headers["id"], got.decode()))
        got.ack()
        queue.close()
    assert received == [("content.cancel_job", message.task_id, [[{"job_id": str(job)}], {}, {
        "callbacks": None, "errbacks": None, "chain": None, "chord": None}])]  # fmt: skip


def test_a_payload_of_another_contract_is_refused(app: Celery) -> None:
    with pytest.raises(TypeError):
        task_wire.encode(app, contracts.PLAN_JOB, contracts.CancelJob(job_id=uuid.uuid4()))


def test_broker_urls_must_be_redis() -> None:
    assert RedisSettings(celery_broker_url=" rediss://h:6380/1 ").broker_url == "rediss://h:6380/1"
    assert RedisSettings(celery_broker_url="").broker_url == RedisSettings().redis_url
    with pytest.raises(ValueError, match="Redis URL"):
        RedisSettings(celery_broker_url="amqp://guest@localhost//")
