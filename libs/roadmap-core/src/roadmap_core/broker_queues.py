"""How the Celery queues lie in Redis: their keys and the send time of a waiting message.

Read by the API (``/admin/queues``, ``/metrics``) and the workers' metrics alike.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

from roadmap_core.celery_app import SENT_AT_HEADER

# kombu's Redis transport keeps a message of priority p > 0 under "<queue>\x06\x16<p>".
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def queue_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS)]


def message_sent_at(raw: Any) -> float | None:
    """The ``sent_at`` header of a raw message as the transport stores it, if readable."""
    try:
        message = json.loads(raw)
        return float(message["headers"][SENT_AT_HEADER])
    except (ValueError, TypeError, KeyError):
        return None


def task_of(raw: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A raw message as the transport stores it: (task name, payload, headers).

    The payload is the task's one positional argument, as every contract sends it.
    """
    message = json.loads(raw)
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    return message["headers"]["task"], args[0], message["headers"]


def oldest_age(tails: Sequence[Any], now: float | None = None) -> float | None:
    """Seconds since the oldest of the queue's tail messages (one per key) was sent.

    LPUSH adds at the head and workers take from the tail: the oldest is at index -1.
    """
    sent = [t for t in (message_sent_at(raw) for raw in tails) if t is not None]
    if not sent:
        return None
    now = time.time() if now is None else now
    return round(max(0.0, now - min(sent)), 3)
