"""Task messages encoded for kombu's Redis transport, to publish with an asyncio Redis client.

``contracts.send`` goes through kombu's producer, which is synchronous and costs about half
a millisecond of CPU per message (exchange lookup, entity copies, declarations, retries).
The API publishes on its hottest path, from an event loop, so it builds the same message
here and pushes it itself: Celery's own ``as_task_v2`` makes the task message (protocol 2:
headers, properties, ``[args, kwargs, embed]`` body), and this module wraps it the way the
Redis transport's ``basic_publish`` does (JSON body, base64 body encoding, a delivery tag,
``delivery_info``). A worker cannot tell the two apart; ``tests/test_task_wire.py`` checks
that against a message kombu published.

Only priority-0 messages to a queue by name (the default exchange), which is how every
contract is sent; the LPUSH goes to the queue's own key.
"""

from __future__ import annotations

import base64
import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import uuid_utils
from celery import Celery
from celery.utils.nodenames import anon_nodename

from roadmap_core import telemetry
from roadmap_core.celery_app import SENT_AT_HEADER
from roadmap_core.contracts import Contract, Payload


@dataclass(frozen=True, slots=True)
class WireMessage:
    task: str  # the contract's task name
    queue: str  # the Redis list a worker BRPOPs
    task_id: str
    data: bytes  # what kombu's Redis transport would LPUSH


@functools.cache
def _origin(pid: int) -> str:
    return str(anon_nodename())


def _uuid() -> str:
    # Random like kombu's uuid4 ids, without a getrandom() system call per id.
    return str(uuid_utils.uuid4())


def encode(
    app: Celery,
    contract: Contract,
    payload: Payload,
    trace: Mapping[str, str] | None = None,
) -> WireMessage:
    """The message kombu would publish for ``payload``. With tracing on, its headers carry
    ``trace`` (a :func:`roadmap_core.telemetry.carrier` captured earlier) or else the
    current trace context, where Celery's instrumentation in the worker picks it up."""
    if not isinstance(payload, contract.payload):
        raise TypeError(f"{contract.name} takes {contract.payload.__name__}")
    task_id = _uuid()
    args = (payload.model_dump(mode="json"),)
    message = app.amqp.as_task_v2(
        task_id,
        contract.name,
        args=args,
        kwargs={},
        reply_to=app.thread_oid,
        ignore_result=True,
        # What saferepr gives for payloads of short strings, without its cost.
        argsrepr=repr(args),
        kwargsrepr="{}",
        origin=_origin(os.getpid()),
    )
    headers: dict[str, Any] = message.headers
    headers[SENT_AT_HEADER] = time.time()
    context = trace if trace is not None else telemetry.carrier()
    if context:
        headers.update(context)
    body = orjson.dumps(message.body)
    envelope = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **message.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": contract.queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": _uuid(),
        },
    }
    # orjson: the two encodings were most of a message's cost with the standard library.
    return WireMessage(contract.name, contract.queue, task_id, orjson.dumps(envelope))
