"""The mentor chat's rows: a learner's turn, the worker's claim of its answer, the
conversation as context and as a list."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.chat import ChatMessageView, ChatRole, ChatStatus
from roadmap_db.models import ChatMessage, RoadmapJob


def view(message: ChatMessage) -> ChatMessageView:
    return ChatMessageView(
        id=message.id,
        role=message.role,
        status=message.status,
        content=message.content,
        concept_id=message.concept_id,
        reply_to=message.reply_to,
        error=message.error,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        cost_usd=float(message.cost_usd),
        created_at=message.created_at,
        completed_at=message.completed_at,
    )


async def add_turn(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    user_id: uuid.UUID,
    content: str,
    concept_id: uuid.UUID | None,
    tokens_reserved: int,
) -> tuple[ChatMessage, ChatMessage]:
    """The learner's message and the row of its answer, still empty (``pending``)."""
    question = ChatMessage(
        job_id=job_id,
        user_id=user_id,
        role=ChatRole.user,
        status=ChatStatus.done,
        content=content,
        concept_id=concept_id,
    )
    session.add(question)
    await session.flush()
    answer = ChatMessage(
        job_id=job_id,
        user_id=user_id,
        role=ChatRole.assistant,
        status=ChatStatus.pending,
        content="",
        concept_id=concept_id,
        reply_to=question.id,
        tokens_reserved=tokens_reserved,
    )
    session.add(answer)
    await session.flush()
    await session.refresh(question)
    await session.refresh(answer)
    return question, answer


async def conversation(
    session: AsyncSession, *, job_id: uuid.UUID, user_id: uuid.UUID, limit: int
) -> tuple[list[ChatMessage], bool]:
    """The latest ``limit`` messages, oldest first, and whether older ones exist."""
    rows = (
        (
            await session.execute(
                select(ChatMessage)
                .where(ChatMessage.job_id == job_id, ChatMessage.user_id == user_id)
                .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
                .limit(limit + 1)
            )
        )
        .scalars()
        .all()
    )
    return list(reversed(rows[:limit])), len(rows) > limit


async def claim_answer(
    session: AsyncSession, message_id: uuid.UUID, token: str, *, max_attempts: int
) -> ChatMessage | None:
    """Take the answer to write: a ``pending`` one, or one this task (same token, i.e. a
    redelivery) was writing. ``None``: someone else has it, it ended, or its attempts
    are spent (it is then marked ``failed``)."""
    return (
        await session.execute(
            update(ChatMessage)
            .where(
                ChatMessage.id == message_id,
                ChatMessage.role == ChatRole.assistant,
                ChatMessage.attempts < max_attempts,
                (ChatMessage.status == ChatStatus.pending)
                | (
                    (ChatMessage.status == ChatStatus.streaming)
                    & (ChatMessage.claim_token == token)
                ),
            )
            .values(
                status=ChatStatus.streaming,
                claim_token=token,
                attempts=ChatMessage.attempts + 1,
            )
            .returning(ChatMessage)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()


async def give_up_if_spent(
    session: AsyncSession, message_id: uuid.UUID, *, max_attempts: int, error: str
) -> ChatMessage | None:
    """Mark an answer whose claims are spent ``failed``; returns it if this did."""
    return (
        await session.execute(
            update(ChatMessage)
            .where(
                ChatMessage.id == message_id,
                ChatMessage.role == ChatRole.assistant,
                ChatMessage.attempts >= max_attempts,
                ChatMessage.status.in_([ChatStatus.pending, ChatStatus.streaming]),
            )
            .values(status=ChatStatus.failed, error=error, completed_at=func.now())
            .returning(ChatMessage)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()


async def history_before(
    session: AsyncSession, answer: ChatMessage, *, limit: int
) -> list[ChatMessage]:
    """The finished messages before ``answer``'s question, newest first."""
    question = await session.get(ChatMessage, answer.reply_to) if answer.reply_to else None
    before = question.created_at if question is not None else answer.created_at
    rows = (
        (
            await session.execute(
                select(ChatMessage)
                .where(
                    ChatMessage.job_id == answer.job_id,
                    ChatMessage.user_id == answer.user_id,
                    ChatMessage.created_at < before,
                    ChatMessage.status == ChatStatus.done,
                )
                .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class AnswerUsage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


async def finish_answer(
    session: AsyncSession,
    message_id: uuid.UUID,
    token: str,
    *,
    status: ChatStatus,
    content: str,
    error: str | None,
    usage: Sequence[AnswerUsage],
) -> ChatMessage | None:
    """Store the answer's end if this task still holds it, and give the roadmap's quota
    reservation back what the answer did not use (its used tokens already came off it
    when they were added to the roadmap's totals)."""
    prompt = sum(u.prompt_tokens for u in usage)
    completion = sum(u.completion_tokens for u in usage)
    cost = sum((u.cost_usd for u in usage), Decimal(0))
    done = (
        await session.execute(
            update(ChatMessage)
            .where(
                ChatMessage.id == message_id,
                ChatMessage.status == ChatStatus.streaming,
                ChatMessage.claim_token == token,
            )
            .values(
                status=status,
                content=content,
                error=error,
                prompt_tokens=ChatMessage.prompt_tokens + prompt,
                completion_tokens=ChatMessage.completion_tokens + completion,
                cost_usd=ChatMessage.cost_usd + cost,
                completed_at=func.now(),
            )
            .returning(ChatMessage)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if done is not None:
        leftover = max(0, done.tokens_reserved - prompt - completion)
        if leftover:
            await session.execute(
                update(RoadmapJob)
                .where(RoadmapJob.id == done.job_id)
                .values(tokens_reserved=func.greatest(RoadmapJob.tokens_reserved - leftover, 0))
                .execution_options(synchronize_session=False)
            )
    return done


def stale_pending_answers_query(
    *, stale_age: timedelta, limit: int
) -> Select[uuid.UUID, uuid.UUID]:
    """The reconciler's query; ``ix_chat_messages_pending_answers`` (migration 0010) serves it."""
    return (
        select(ChatMessage.job_id, ChatMessage.id)
        .where(
            ChatMessage.role == ChatRole.assistant,
            ChatMessage.status == ChatStatus.pending,
            ChatMessage.created_at < func.now() - stale_age,
        )
        .order_by(ChatMessage.created_at)
        .limit(limit)
    )


async def stale_pending_answers(
    session: AsyncSession, *, stale_age: timedelta, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(roadmap, answer) of answers still ``pending`` longer than ``stale_age``: their task
    was lost, or waits in a queue that long (a second send is then harmless)."""
    rows = await session.execute(stale_pending_answers_query(stale_age=stale_age, limit=limit))
    return [(job_id, message_id) for job_id, message_id in rows.all()]
