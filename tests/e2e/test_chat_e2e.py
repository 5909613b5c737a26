"""The mentor chat end to end: the real API, content worker, chat worker (the content
worker's code on the ``chat`` queue, a process of its own), logs worker and the fake LLM.

A question about a concept is stored and answered 202 at once; its answer streams as
``delta`` events then one ``message`` event, resumes with ``Last-Event-ID``, is written by
the LLM's streaming API with the plan and the concept's tutorial in its prompt, lists with
the conversation, and counts on the roadmap's usage. Chat answers do not wait for the
content queue; errors are problem+json (404 for someone else's roadmap, 422 for bad text,
429 when the daily token quota is spent).
"""

from __future__ import annotations

import uuid

import pytest
from redis import Redis as SyncRedis

from roadmap_client import NotFound, RateLimited, RoadmapClient, ValidationFailed, concepts_of
from roadmap_client.events import Event
from roadmap_client.models import ChatDeltaEvent, ChatMessageEvent
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow


def _until_answer(events: list[Event], stream: object, answer_id: uuid.UUID) -> list[Event]:
    for event in stream:  # type: ignore[attr-defined]
        events.append(event)
        if isinstance(event.data, ChatMessageEvent) and event.data.message.id == answer_id:
            break
    stream.close()  # type: ignore[attr-defined]
    return events


def _completed_roadmap(client: RoadmapClient) -> uuid.UUID:
    job = client.create_roadmap(**small_request())
    roadmap = client.wait(job.id, max_wait=120)
    assert roadmap.status == "completed", roadmap.status
    return job.id


def test_chat_streams_an_answer_grounded_in_the_concept(stack: Stack) -> None:
    stack.start(api=True, content_workers=1, logs_worker=True, chat_worker=True)
    client, _ = stack.new_user()
    job_id = _completed_roadmap(client)
    concept = concepts_of(client.get_roadmap(job_id))[0]
    before = client.get_roadmap(job_id).usage
    stack.fake.reset()

    question = "Why does this matter before the next concept?"
    accepted = client.post_chat_message(job_id, question, concept_id=concept.id)
    assert accepted.message.role == "user"
    assert accepted.message.content == question
    assert accepted.message.concept_id == concept.id
    assert accepted.links.events == f"/api/v1/roadmaps/{job_id}/chat/events"

    events = _until_answer(
        [],
        client.chat_events(job_id, last_event_id=accepted.last_event_id),
        accepted.answer_id,
    )
    deltas = [e.data for e in events if isinstance(e.data, ChatDeltaEvent)]
    final = events[-1].data
    assert isinstance(final, ChatMessageEvent)
    answer = final.message
    assert answer.id == accepted.answer_id
    assert answer.status == "done"
    assert answer.reply_to == accepted.message.id
    assert [d.index for d in deltas] == list(range(len(deltas)))
    assert len(deltas) > 10  # streamed piece by piece
    assert all(d.message_id == answer.id for d in deltas)
    assert "".join(d.text for d in deltas) == answer.content
    assert concept.title in answer.content
    assert answer.completion_tokens > 0
    assert answer.prompt_tokens > 0

    # The streaming API was used, with the concept (from its tutorial context) in the prompt.
    chat_calls = [r for r in stack.fake.requests() if r.get("stream")]
    assert len(chat_calls) == 1
    assert chat_calls[0]["concept"] == concept.title
    assert chat_calls[0]["schema"] is None

    # Resuming after the k-th delta replays the rest of the answer, in order.
    k = len(deltas) // 2
    resumed = _until_answer(
        [], client.chat_events(job_id, last_event_id=events[k].id), accepted.answer_id
    )
    assert [e.id for e in resumed] == [e.id for e in events[k + 1 :]]

    # The conversation lists both messages; the answer counts on the roadmap's usage.
    page = client.chat_messages(job_id)
    assert [(m.role, m.id) for m in page.items] == [
        ("user", accepted.message.id),
        ("assistant", answer.id),
    ]
    assert page.items[1].content == answer.content
    after = client.get_roadmap(job_id).usage
    assert after.llm_calls == before.llm_calls + 1
    assert after.completion_tokens == before.completion_tokens + answer.completion_tokens

    # A follow-up without a concept: the earlier turn is in its prompt (history).
    _, second = client.ask(job_id, "And what should I practise first?")
    assert second.status == "done"
    assert second.concept_id is None
    assert len(client.chat_messages(job_id).items) == 4
    # system (plan), the first question and its answer, the new question
    assert stack.fake.requests()[-1]["messages"] == 4
    assert chat_calls[0]["messages"] == 3  # system (plan), system (concept), question


def test_chat_does_not_wait_for_the_content_queue(stack: Stack) -> None:
    stack.start(api=True, content_workers=1, logs_worker=True, chat_worker=True)
    client, _ = stack.new_user()
    job_id = _completed_roadmap(client)
    # No content worker any more: new roadmaps stay queued, chat answers still come.
    for worker in stack.content_workers():
        worker.stop()
    queued = client.create_roadmap(**small_request())
    _, answer = client.ask(job_id, "What is the first step?")
    assert answer.status == "done"
    assert client.get_roadmap(queued.id).status == "queued"


def test_a_lost_chat_task_is_sent_again_by_the_reconciler(stack: Stack) -> None:
    stack.start(
        api=True,
        content_workers=1,
        logs_worker=True,
        chat_worker=False,
        STALE_AGE_S="1",
        RECONCILE_INTERVAL_S="1",
    )
    client, _ = stack.new_user()
    job_id = _completed_roadmap(client)
    accepted = client.post_chat_message(job_id, "Is anyone there?")
    # Redis loses the task before any chat worker took it.
    broker = SyncRedis.from_url(stack.redis_url)
    try:
        lost = [key for key in broker.scan_iter("chat*") if broker.type(key) == b"list"]
        assert lost, "the task was not queued"
        broker.delete(*lost)
    finally:
        broker.close()
    stack.chat_worker()
    events = _until_answer(
        [],
        client.chat_events(job_id, last_event_id=accepted.last_event_id),
        accepted.answer_id,
    )
    final = events[-1].data
    assert isinstance(final, ChatMessageEvent)
    assert final.message.status == "done"
    assert len([r for r in stack.fake.requests() if r.get("stream")]) == 1


def test_chat_errors_are_problems(stack: Stack) -> None:
    stack.start(api=True, content_workers=1, logs_worker=True, chat_worker=False)
    owner, _ = stack.new_user()
    job_id = _completed_roadmap(owner)
    other, _ = stack.new_user()

    with pytest.raises(NotFound):
        other.post_chat_message(job_id, "Hello?")
    with pytest.raises(NotFound):
        other.chat_messages(job_id)
    with pytest.raises(NotFound):
        next(iter(other.chat_events(job_id)))
    with pytest.raises(NotFound):
        owner.post_chat_message(uuid.uuid4(), "Hello?")
    with pytest.raises(NotFound) as unknown_concept:
        owner.post_chat_message(job_id, "Hello?", concept_id=uuid.uuid4())
    assert unknown_concept.value.problem.detail == "No such concept in this roadmap."
    for bad in ("", "   ", "x" * 4001):
        with pytest.raises(ValidationFailed):
            owner.post_chat_message(job_id, bad)
    assert owner.chat_messages(job_id).items == []

    # A daily token quota the roadmap already spent: the chat is refused before any work.
    api = stack.extra_api(QUOTA_TOKENS_PER_DAY="1000")
    limited = stack.client(token=owner.token, api=api)
    with pytest.raises(RateLimited) as refused:
        limited.post_chat_message(job_id, "One more question")
    assert refused.value.problem.quota == "tokens_per_day"
    assert owner.chat_messages(job_id).items == []
