"""The SQL of escalation tickets (used by `bot.store.Store`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from bot.adapter import TextRules
from bot.composer import compose
from bot.drafts import KIND_ANSWER
from bot.escalation import EscalationClosed, EscalationNotFound
from bot.models import (
    ESCALATION,
    ESCALATION_ANSWERED,
    ESCALATION_CLOSED,
    ESCALATION_OPEN,
    INBOX,
    OUTBOX,
    OUTBOX_PENDING,
    Escalation,
)


def as_escalation(row: Row[Any]) -> Escalation:
    return Escalation(**row._asdict())


def list_escalations(status: str | None, connection: Connection) -> list[Escalation]:
    statement = select(ESCALATION).order_by(ESCALATION.c.created_at, ESCALATION.c.id)
    if status is not None:
        statement = statement.where(ESCALATION.c.status == status)
    return [as_escalation(row) for row in connection.execute(statement)]


def get_escalation(reference: str, connection: Connection) -> Escalation | None:
    statement = select(ESCALATION).where(ESCALATION.c.reference == reference)
    row = connection.execute(statement).first()
    return as_escalation(row) if row is not None else None


def answer_escalation(
    connection: Connection,
    *,
    reference: str,
    text: str,
    by: str,
    now: datetime,
    rules_for: Callable[[str], TextRules],
) -> Escalation:
    """Close the ticket with the human's answer and queue that answer to the citizen.

    The UPDATE comes first and only matches a ticket still open: of two staff answering at once,
    one wins and the other gets EscalationClosed, so the citizen hears one answer."""
    closing = (
        update(ESCALATION)
        .where(
            ESCALATION.c.reference == reference,
            ESCALATION.c.status.in_([ESCALATION_OPEN, ESCALATION_ANSWERED]),
        )
        .values(
            status=ESCALATION_CLOSED,
            answer=text,
            answered_by=by,
            answered_at=now,
            closed_at=now,
        )
        .returning(*ESCALATION.c)
    )
    row = connection.execute(closing).first()
    if row is None:
        existing = get_escalation(reference, connection)
        if existing is None:
            raise EscalationNotFound(reference)
        raise EscalationClosed(reference)
    escalation = as_escalation(row)
    mention = None
    if escalation.public and escalation.inbox_id is not None:
        mention = connection.execute(
            select(INBOX.c.mention).where(INBOX.c.id == escalation.inbox_id)
        ).scalar()
    connection.execute(
        insert(OUTBOX).values(
            inbox_id=escalation.inbox_id,
            escalation_id=escalation.id,
            channel=escalation.channel,
            conversation=escalation.conversation,
            recipient=escalation.sender,
            # Reply in the thread of the question, where the platform has threads.
            reply_to=select(INBOX.c.platform_id)
            .where(INBOX.c.id == escalation.inbox_id)
            .scalar_subquery(),
            reply_context=select(INBOX.c.reply_context)
            .where(INBOX.c.id == escalation.inbox_id)
            .scalar_subquery(),
            public=escalation.public,
            text=compose(text, rules_for(escalation.channel), mention=mention),
            kind=KIND_ANSWER,
            status=OUTBOX_PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return escalation
