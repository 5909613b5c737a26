"""A chat turn: check, reserve quota, store the question and its pending answer, enqueue."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api import audit, quotas
from roadmap_api.chat.events import stream_position
from roadmap_api.chat.schemas import ChatAccepted, ChatMessageIn, ChatPage, chat_links
from roadmap_api.content.service import CONCEPT_NOT_FOUND
from roadmap_api.errors import NotFound
from roadmap_api.roadmaps.service import owned_job
from roadmap_api.state import AppServices
from roadmap_core.chat import chat_stream_key
from roadmap_core.logdetails import ChatMessageReceivedDetails
from roadmap_db.models import User
from roadmap_db.repositories import chat as chat_rows
from roadmap_db.repositories import job_reads


async def post_message(
    session: AsyncSession,
    services: AppServices,
    user: User,
    job_id: uuid.UUID,
    body: ChatMessageIn,
) -> ChatAccepted:
    job = await owned_job(session, job_id, user.id)
    if (
        body.concept_id is not None
        and await job_reads.get_job_concept(session, job.id, body.concept_id) is None
    ):
        raise NotFound(CONCEPT_NOT_FOUND)
    settings = services.settings
    tokens = settings.quota_reserve_chat_tokens
    await quotas.reserve_chat(session, settings, owner_id=user.id, job_id=job.id, tokens=tokens)
    # Read before the answer can exist: every event of the answer comes after it.
    position = await stream_position(services.redis, chat_stream_key(job.id))
    question, answer = await chat_rows.add_turn(
        session,
        job_id=job.id,
        user_id=user.id,
        content=body.content,
        concept_id=body.concept_id,
        tokens_reserved=tokens,
    )
    await session.commit()
    await services.enqueuer.answer_chat(job.id, answer.id)
    audit.job_event(
        "chat message received",
        job.id,
        ChatMessageReceivedDetails(
            user_id=user.id, message_id=question.id, answer_id=answer.id, chars=len(body.content)
        ),
        step="chat",
        concept_id=body.concept_id,
    )
    return ChatAccepted(
        message=chat_rows.view(question),
        answer_id=answer.id,
        last_event_id=position,
        links=chat_links(job.id),
    )


async def list_messages(
    session: AsyncSession, user: User, job_id: uuid.UUID, limit: int
) -> ChatPage:
    job = await owned_job(session, job_id, user.id)
    rows, more = await chat_rows.conversation(session, job_id=job.id, user_id=user.id, limit=limit)
    return ChatPage(items=[chat_rows.view(r) for r in rows], has_more=more)
