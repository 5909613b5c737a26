"""Writing one mentor-chat answer: claim it, build its prompt, stream it, store it.

Each piece the model streams is published at once as a ``delta`` event on the roadmap's
chat stream (``roadmap_core.chat``), so the learner sees the first words as soon as the
provider sends them; the whole answer is stored (with its usage) when the stream ends,
then announced as a ``message`` event. A redelivered task (same id: the claim token)
writes the answer again from its start: its deltas begin again at index 0.
"""

from __future__ import annotations

import logging
import uuid

from roadmap_core.chat import (
    ChatDeltaEvent,
    ChatEventData,
    ChatMessageEvent,
    ChatStatus,
    publish_chat,
)
from roadmap_core.domain import ContentKind, RoadmapRequest, Tutorial
from roadmap_core.llm import CallContext, LLMError
from roadmap_core.logdetails import ChatAnsweredDetails
from roadmap_core.logship import emit
from roadmap_core.pipeline.chat import ChatBudget, ChatConcept, ChatTurn, chat_messages
from roadmap_db.models import ChatMessage, Concept, RoadmapJob
from roadmap_db.repositories import chat as chat_rows
from roadmap_db.repositories import frameworks, job_reads
from roadmap_worker_content.runtime import Runtime

log = logging.getLogger(__name__)

STEP = "chat"


async def _publish(rt: Runtime, job_id: uuid.UUID, data: ChatEventData) -> None:
    await publish_chat(
        rt.redis,
        job_id,
        data,
        maxlen=rt.settings.progress_stream_maxlen,
        ttl_s=rt.settings.progress_stream_ttl_s,
    )


async def _concept(rt: Runtime, concept_id: uuid.UUID | None) -> ChatConcept | None:
    if concept_id is None:
        return None
    async with rt.db.sessions() as session:
        row = await session.get(Concept, concept_id)
        if row is None:
            return None
        content = await job_reads.concept_content(session, concept_id)
    tutorial = None
    stored = content.get(ContentKind.tutorial)
    if stored is not None and stored.result is not None:
        try:
            tutorial = Tutorial.model_validate(stored.result.body).markdown
        except ValueError:
            tutorial = None
    return ChatConcept(title=row.title, summary=row.summary, tutorial=tutorial)


async def answer(rt: Runtime, job_id: uuid.UUID, message_id: uuid.UUID, token: str) -> None:
    settings = rt.settings
    attempts = settings.llm_task_max_attempts
    async with rt.db.transaction() as session:
        claimed = await chat_rows.claim_answer(session, message_id, token, max_attempts=attempts)
        given_up = None
        if claimed is None:
            given_up = await chat_rows.give_up_if_spent(
                session, message_id, max_attempts=attempts, error="the answer kept failing"
            )
    if claimed is None:
        if given_up is not None:
            await _publish(rt, job_id, ChatMessageEvent(message=chat_rows.view(given_up)))
        return
    async with rt.db.sessions() as session:
        job = await session.get(RoadmapJob, claimed.job_id)
        question = await session.get(ChatMessage, claimed.reply_to) if claimed.reply_to else None
        history = await chat_rows.history_before(
            session, claimed, limit=settings.chat_history_messages
        )
        framework = await frameworks.load_framework(session, claimed.job_id)
    if job is None or question is None:
        return  # deleted with its roadmap (the rows cascade)
    concept = await _concept(rt, claimed.concept_id)
    messages = chat_messages(
        RoadmapRequest.model_validate(job.request),
        framework,
        concept,
        [ChatTurn(role=str(m.role), content=m.content) for m in history],
        question.content,
        ChatBudget(total=settings.chat_context_tokens),
    )
    index = 0

    async def on_delta(piece: str) -> None:
        nonlocal index
        await _publish(rt, job_id, ChatDeltaEvent(message_id=message_id, index=index, text=piece))
        index += 1

    status, content, error = ChatStatus.done, "", None
    usage = []
    try:
        streamed = await rt.llm.stream_text(
            messages,
            ctx=CallContext(step=STEP, job_id=job_id),
            on_delta=on_delta,
            max_output_tokens=settings.chat_max_output_tokens,
        )
        content = streamed.text
        if streamed.usage is not None:
            usage.append(
                chat_rows.AnswerUsage(
                    streamed.usage.prompt_tokens,
                    streamed.usage.completion_tokens,
                    streamed.usage.cost_usd,
                )
            )
        if not content.strip():
            status, error = ChatStatus.failed, "the model gave no answer"
    except LLMError as exc:
        status, error = ChatStatus.failed, f"the mentor could not answer ({exc.reason})"
    async with rt.db.transaction() as session:
        stored = await chat_rows.finish_answer(
            session, message_id, token, status=status, content=content, error=error, usage=usage
        )
    if stored is None:
        return  # taken over meanwhile: the holder announces its own end
    emit(
        f"chat answer {status}",
        job_id=job_id,
        concept_id=claimed.concept_id,
        step=STEP,
        details=ChatAnsweredDetails(
            message_id=message_id,
            status="done" if status is ChatStatus.done else "failed",
            pieces=index,
            history_messages=len(history),
            error=error,
        ),
    )
    await _publish(rt, job_id, ChatMessageEvent(message=chat_rows.view(stored)))
