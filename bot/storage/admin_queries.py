"""The SQL of the /admin pages and of `civicdesk users`, beyond what `bot.storage.store.Store`
offers:
escalations paged and searched, a ticket's outgoing messages, discarding a dead letter, which
FAQ entries answered lately, and operator accounts.

`AdminStore` runs these on the Store's own runner (one writer per process on SQLite), so admin
writes queue with the workers' instead of racing them for the database's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, exists, func, insert, or_, select, update

from bot.platform.messages import (
    OUTBOX_DEAD,
)
from bot.storage.models import (
    INBOX,
    OPERATOR,
    OUTBOX,
    TICKET,
    TICKET_EVENT,
    TICKET_OPEN,
    OutboxRow,
    Ticket,
)
from bot.storage.store import Store
from bot.storage.ticket_sql import as_ticket

log = logging.getLogger(__name__)

T = TypeVar("T")
# outbox.status of a dead letter an operator gave up on: kept for the record, never sent.
OUTBOX_DISCARDED = "discarded"


class OperatorExists(Exception):
    """`users add` of a name that already has an account."""


@dataclass(frozen=True)
class TicketFilter:
    """What the escalation list shows; None (or empty text) means any."""

    status: str | None = None
    channel: str | None = None
    staff: str | None = None  # claimed, answered or wrote in its log
    overdue_at: datetime | None = None  # only open tickets due before this moment
    text: str | None = None  # in the question, answer, reference, name, or any log entry


@dataclass(frozen=True)
class OperatorAccount:
    name: str
    created_at: datetime


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(where: TicketFilter) -> list[Any]:
    conditions: list[Any] = []
    if where.status:
        conditions.append(TICKET.c.status == where.status)
    if where.channel:
        conditions.append(TICKET.c.channel == where.channel)
    if where.staff:
        acted = select(TICKET_EVENT.c.escalation_id).where(TICKET_EVENT.c.actor == where.staff)
        conditions.append(
            or_(
                TICKET.c.assigned_to == where.staff,
                TICKET.c.answered_by == where.staff,
                TICKET.c.id.in_(acted),
            )
        )
    if where.overdue_at is not None:
        conditions.extend(
            (
                TICKET.c.status == TICKET_OPEN,
                TICKET.c.due_at.is_not(None),
                TICKET.c.due_at < where.overdue_at,
            )
        )
    if where.text and where.text.strip():
        pattern = _like(where.text.strip())
        in_log = exists().where(
            TICKET_EVENT.c.escalation_id == TICKET.c.id,
            TICKET_EVENT.c.detail.ilike(pattern, escape="\\"),
        )
        columns = (
            TICKET.c.reference,
            TICKET.c.question,
            TICKET.c.answer,
            TICKET.c.sender_name,
            TICKET.c.close_reason,
        )
        conditions.append(or_(*(c.ilike(pattern, escape="\\") for c in columns), in_log))
    return conditions


def search_tickets(
    connection: Connection, where: TicketFilter, *, offset: int, limit: int
) -> tuple[list[Ticket], int]:
    """One page of matching tickets, newest first, and how many match in all."""
    conditions = _conditions(where)
    total = connection.execute(select(func.count()).select_from(TICKET).where(*conditions))
    statement = (
        select(TICKET)
        .where(*conditions)
        .order_by(TICKET.c.created_at.desc(), TICKET.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    found = [as_ticket(row) for row in connection.execute(statement)]
    return found, int(total.scalar() or 0)


def ticket_messages(connection: Connection, escalation_id: int) -> list[OutboxRow]:
    """Everything civicdesk sent (or tried to) about one ticket, oldest first."""
    statement = select(OUTBOX).where(OUTBOX.c.escalation_id == escalation_id).order_by(OUTBOX.c.id)
    return [OutboxRow(**row._asdict()) for row in connection.execute(statement)]


def discard_dead(connection: Connection, outbox_id: int, *, note: str) -> bool:
    """Give up on a dead letter: it stays, marked discarded with who did it; False if it is not
    dead (already retried or discarded)."""
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == OUTBOX_DEAD)
        .values(
            status=OUTBOX_DISCARDED,
            last_error=func.coalesce(OUTBOX.c.last_error, "") + f"\n[{note}]",
        )
        .returning(OUTBOX.c.id)
    )
    return connection.execute(statement).first() is not None


def matched_entries(connection: Connection, since: datetime) -> set[str]:
    """The FAQ entries questions received since `since` were matched to."""
    statement = (
        select(INBOX.c.entry_id)
        .where(INBOX.c.received_at >= since, INBOX.c.entry_id.is_not(None))
        .distinct()
    )
    return {str(entry) for entry in connection.execute(statement).scalars()}


# --- operator accounts -------------------------------------------------------------------------


def add_operator(connection: Connection, name: str, password_hash: str, now: datetime) -> None:
    if operator_hash(connection, name) is not None:
        raise OperatorExists(name)
    connection.execute(
        insert(OPERATOR).values(name=name, password_hash=password_hash, created_at=now)
    )


def remove_operator(connection: Connection, name: str) -> bool:
    removed = connection.execute(delete(OPERATOR).where(OPERATOR.c.name == name))
    return bool(removed.rowcount)


def operator_hash(connection: Connection, name: str) -> str | None:
    statement = select(OPERATOR.c.password_hash).where(OPERATOR.c.name == name)
    found: str | None = connection.execute(statement).scalar()
    return found


def list_operators(connection: Connection) -> list[OperatorAccount]:
    statement = select(OPERATOR.c.name, OPERATOR.c.created_at).order_by(OPERATOR.c.name)
    return [OperatorAccount(row.name, row.created_at) for row in connection.execute(statement)]


class AdminStore:
    """The functions above, run on `store`'s runner."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _read(self, work: Callable[[Connection], T]) -> T:
        return await self.store._db.read(work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        return await self.store._db.write(work)

    async def search_tickets(
        self, where: TicketFilter, *, offset: int, limit: int
    ) -> tuple[list[Ticket], int]:
        return await self._read(partial(search_tickets, where=where, offset=offset, limit=limit))

    async def ticket_messages(self, escalation_id: int) -> list[OutboxRow]:
        return await self._read(partial(ticket_messages, escalation_id=escalation_id))

    async def discard_dead(self, outbox_id: int, *, by: str) -> bool:
        note = f"discarded by {by} at {self.store.now().isoformat(timespec='seconds')}"
        discarded = await self._write(partial(discard_dead, outbox_id=outbox_id, note=note))
        if discarded:
            log.info("outbox %d: dead letter discarded by %s", outbox_id, by)
        return discarded

    async def matched_entries(self, since: datetime) -> set[str]:
        return await self._read(partial(matched_entries, since=since))

    async def add_operator(self, name: str, password_hash: str) -> None:
        await self._write(
            partial(add_operator, name=name, password_hash=password_hash, now=self.store.now())
        )

    async def remove_operator(self, name: str) -> bool:
        return await self._write(partial(remove_operator, name=name))

    async def operator_hash(self, name: str) -> str | None:
        return await self._read(partial(operator_hash, name=name))

    async def list_operators(self) -> list[OperatorAccount]:
        return await self._read(list_operators)
