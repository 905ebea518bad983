"""Retention: the texts and identities of citizens' messages are removed once older than
CIVICDESK_RETENTION_DAYS, by `civicdesk purge` and by a daily run in `civicdesk serve` and
`civicdesk work` (`daily_purge`, a cleanup context of the app while it has workers).

Rows are kept and only their personal columns blanked, so every count the report makes (per
channel, day, decision, FAQ entry, escalation status and times) stays exactly what it was:

- inbox: text, sender, conversation, sender_name, mention, reply_context;
- outbox: text, conversation, recipient, reply_context, last_error (a platform's error may quote
  the recipient);
- escalation: question, sender, conversation, sender_name, answer, close_reason (status, times,
  staff, reason and candidates, which are FAQ entries and their phrasings, stay);
- escalation_event: detail (follow-ups, notes) of the tickets purged;
- conversation_state: expired rows are deleted (their options are ignored already).

A blanked column holds '' (NULL stays NULL, so "had an answer" still counts the same). The
conversation is blanked rather than hashed: a conversation is often a phone number, an e-mail
address or a platform user id, and a hash of one is easily reversed by trying them all; the
report counts nothing per conversation.

Never touched: inbox rows new or claimed, or asked by an open ticket; outbox rows pending or
sending, or of an open ticket; open tickets and their log. A ticket's age is that of its last
change (closed, else answered, else opened), and its log is purged with it. Age otherwise:
inbox.received_at, outbox.created_at.

Each batch of `batch_rows` rows is one short transaction, so a large first purge does not hold
the database for long; rows are walked by id (the primary key), once. A purge run twice purges
nothing the second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)

from bot.platform.messages import (
    OUTBOX_PENDING,
    OUTBOX_SENDING,
)
from bot.storage.engine import StoreUnavailable
from bot.storage.models import (
    CONVERSATION_STATE,
    INBOX,
    INBOX_CLAIMED,
    INBOX_NEW,
    OUTBOX,
    TICKET,
    TICKET_EVENT,
    TICKET_OPEN,
)
from bot.storage.store import Store

log = logging.getLogger("civicdesk.purge")

BATCH_ROWS = 500
FIRST_DELAY = 300.0  # seconds after start-up before the first daily purge
EVERY = 86400.0  # seconds between daily purges
RETRY = 3600.0  # seconds before trying again when the database did not answer


@dataclass(frozen=True)
class PurgeCounts:
    """Rows purged (or that would be) per table."""

    inbox: int = 0
    outbox: int = 0
    escalation: int = 0  # fields named after the tables (`civicdesk purge` prints them)
    escalation_event: int = 0
    conversation_state: int = 0

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --- Which rows, and what is blanked -----------------------------------------------------------

_BLANKED: dict[str, tuple[Column[Any], ...]] = {
    "inbox": (
        INBOX.c.text,
        INBOX.c.sender,
        INBOX.c.conversation,
        INBOX.c.sender_name,
        INBOX.c.mention,
        INBOX.c.reply_context,
    ),
    "outbox": (
        OUTBOX.c.text,
        OUTBOX.c.conversation,
        OUTBOX.c.recipient,
        OUTBOX.c.reply_context,
        OUTBOX.c.last_error,
    ),
    "escalation": (
        TICKET.c.question,
        TICKET.c.sender,
        TICKET.c.conversation,
        TICKET.c.sender_name,
        TICKET.c.answer,
        TICKET.c.close_reason,
    ),
    "escalation_event": (TICKET_EVENT.c.detail,),
}
_TABLES: dict[str, Table] = {
    "inbox": INBOX,
    "outbox": OUTBOX,
    "escalation": TICKET,
    "escalation_event": TICKET_EVENT,
}


def _blank(column: Column[Any]) -> ColumnElement[Any]:
    """'' in place of the value; NULL stays NULL."""
    if not column.nullable:
        return literal("")
    return case((column.is_(None), null()), else_=literal(""))


def _not_blank(columns: Sequence[Column[Any]]) -> ColumnElement[bool]:
    """Some column still holds something (NULL != '' is not true: NULL counts as blank)."""
    return or_(*(column != "" for column in columns))


def _last_change() -> ColumnElement[Any]:
    return func.coalesce(TICKET.c.closed_at, TICKET.c.answered_at, TICKET.c.created_at)


def _ticket_done(cutoff: datetime) -> ColumnElement[bool]:
    return and_(TICKET.c.status != TICKET_OPEN, _last_change() < cutoff)


def _open_ticket(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return select(TICKET.c.id).where(condition, TICKET.c.status == TICKET_OPEN).exists()


def _due(table: str, cutoff: datetime) -> ColumnElement[bool]:
    """The rows of `table` to purge at `cutoff` that still hold something."""
    blanked = _not_blank(_BLANKED[table])
    if table == "inbox":
        return and_(
            INBOX.c.received_at < cutoff,
            INBOX.c.status.not_in((INBOX_NEW, INBOX_CLAIMED)),
            ~_open_ticket(TICKET.c.inbox_id == INBOX.c.id),
            blanked,
        )
    if table == "outbox":
        return and_(
            OUTBOX.c.created_at < cutoff,
            OUTBOX.c.status.not_in((OUTBOX_PENDING, OUTBOX_SENDING)),
            ~_open_ticket(TICKET.c.id == OUTBOX.c.escalation_id),
            blanked,
        )
    if table == "escalation":
        return and_(_ticket_done(cutoff), blanked)
    ticket_done = (
        select(TICKET.c.id)
        .where(TICKET.c.id == TICKET_EVENT.c.escalation_id, _ticket_done(cutoff))
        .exists()
    )
    return and_(ticket_done, blanked)


def _expired_state(now: datetime) -> ColumnElement[bool]:
    expires = CONVERSATION_STATE.c.expires_at
    return or_(expires.is_(None), expires < now)


# --- The SQL: plain functions of a Connection (one transaction each) ---------------------------


def purge_batch(
    table: str, cutoff: datetime, after: int, batch_rows: int, connection: Connection
) -> tuple[int, int | None]:
    """Blank up to `batch_rows` rows of `table` due at `cutoff` with ids above `after`.
    Returns (rows blanked, the last id looked at; None when no row was left to look at)."""
    rows = _TABLES[table]
    due = _due(table, cutoff)
    ids = list(
        connection.execute(
            select(rows.c.id).where(rows.c.id > after, due).order_by(rows.c.id).limit(batch_rows)
        ).scalars()
    )
    if not ids:
        return 0, None
    values = {column.name: _blank(column) for column in _BLANKED[table]}
    blanked = connection.execute(update(rows).where(rows.c.id.in_(ids), due).values(values))
    last = ids[-1] if len(ids) == batch_rows else None
    return int(blanked.rowcount), last


def delete_expired_state(now: datetime, batch_rows: int, connection: Connection) -> int:
    """Delete up to `batch_rows` expired conversation_state rows; how many."""
    key = tuple_(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation)
    keys = [
        tuple(row)
        for row in connection.execute(
            select(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation)
            .where(_expired_state(now))
            .order_by(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation)
            .limit(batch_rows)
        )
    ]
    if not keys:
        return 0
    deleted = connection.execute(
        delete(CONVERSATION_STATE).where(key.in_(keys), _expired_state(now))
    )
    return int(deleted.rowcount)


def count_due(cutoff: datetime, now: datetime, connection: Connection) -> PurgeCounts:
    """What a purge at `cutoff` would purge (`--dry-run`)."""
    counted = {
        table: int(
            connection.execute(
                select(func.count()).select_from(_TABLES[table]).where(_due(table, cutoff))
            ).scalar_one()
        )
        for table in _TABLES
    }
    state = connection.execute(
        select(func.count()).select_from(CONVERSATION_STATE).where(_expired_state(now))
    ).scalar_one()
    return PurgeCounts(**counted, conversation_state=int(state))


# --- Runs ----------------------------------------------------------------------------------------


async def purge(
    store: Store,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> PurgeCounts:
    """Purge what is older than `older_than` (by the store's clock), batch after batch; the
    rows purged per table. With `dry_run`, only count them. StoreUnavailable when the database
    fails (the batches done stay done: running it again carries on)."""
    now = store.now()
    cutoff = now - older_than
    runner = store._db  # the store's SQL lives in the bot.storage.store* modules
    if dry_run:
        return await runner.read(partial(count_due, cutoff, now))
    counts: dict[str, int] = {}
    for table in _TABLES:
        done, after = 0, 0
        while True:
            blanked, last = await runner.write(
                partial(purge_batch, table, cutoff, after, batch_rows)
            )
            done += blanked
            if last is None:
                break
            after = last
        counts[table] = done
    deleted = 0
    while True:
        batch = await runner.write(partial(delete_expired_state, now, batch_rows))
        deleted += batch
        if batch < batch_rows:
            break
    return PurgeCounts(**counts, conversation_state=deleted)


def describe(counts: PurgeCounts) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.as_dict().items())


async def purge_every_day(
    store: Store,
    retention_days: int,
    *,
    first_delay: float | None = None,
    every: float | None = None,
    retry: float | None = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> None:
    """Purge what is older than `retention_days`, `first_delay` seconds from now (FIRST_DELAY)
    and then every `every` seconds (EVERY), `retry` seconds (RETRY) after a failure, until
    cancelled."""
    every = EVERY if every is None else every
    retry = RETRY if retry is None else retry
    wait = FIRST_DELAY if first_delay is None else first_delay
    while True:
        await sleep(wait)
        try:
            counts = await purge(store, timedelta(days=retention_days))
        except StoreUnavailable as exc:
            log.warning("purge: the database is unavailable, trying again later: %s", exc)
            wait = retry
            continue
        if counts.total:
            log.info(
                "purge: texts and identities older than %d days removed: %s",
                retention_days,
                describe(counts),
            )
        wait = every
