"""The SQL of claiming work and of settling what became of it (used by `bot.storage.store.Store`).

A claim is one UPDATE ... RETURNING over the oldest claimable rows:

- PostgreSQL: the rows are picked by a sub-select with FOR UPDATE SKIP LOCKED, so concurrent
  claimers in any number of processes each lock different rows and never wait on each other.
- SQLite: FOR UPDATE is not rendered; the transaction holds the database's single write lock
  (BEGIN IMMEDIATE, bot.storage.engine), so claims from any process run one after another.

Each claim adds one to `attempts`. (claimed_by, attempts) is the claim's fencing token: a worker
whose lease ran out and whose row was claimed again can no longer settle it, because the second
claim changed `attempts`. Settling is done for many rows at once: one SELECT finds which claims
still hold, one executemany UPDATE writes them.

Each function is one step of a transaction on a sync Connection (bot.storage.runner runs them).

Statements are built once, with bound parameters: building SQLAlchemy expressions costs more
than running them on SQLite.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    or_,
    select,
    tuple_,
    update,
)

from bot.platform.messages import (
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
)
from bot.storage.models import (
    INBOX,
    INBOX_CLAIMED,
    INBOX_DONE,
    INBOX_NEW,
    OUTBOX,
)

Token = tuple[str, int]  # (claimed_by, attempts) at the time of the claim


@dataclass(frozen=True)
class Settlement:
    """New values for a row this store claimed, written only if the claim still holds."""

    row_id: int
    token: Token
    values: Mapping[str, Any]


def _claim(table: Table, claimable: Any, order: Sequence[Any], claimed_status: str) -> Update:
    picked = (
        select(table.c.id)
        .where(claimable)
        .order_by(*order)
        .limit(bindparam("b_limit", type_=Integer))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(table)
        .where(table.c.id.in_(picked))
        .values(
            status=claimed_status,
            claimed_by=bindparam("b_worker"),
            lease_until=bindparam("b_lease_until", type_=table.c.lease_until.type),
            attempts=table.c.attempts + 1,
        )
        .returning(*table.c)
    )


_NOW_INBOX = bindparam("b_now", type_=INBOX.c.lease_until.type)
# New rows, and rows whose claim outlived its lease (the worker crashed or hung).
_INBOX_CLAIMABLE = or_(
    INBOX.c.status == INBOX_NEW,
    and_(INBOX.c.status == INBOX_CLAIMED, INBOX.c.lease_until < _NOW_INBOX),
)
_NOW_OUTBOX = bindparam("b_now", type_=OUTBOX.c.lease_until.type)
# Replies due now, and replies whose sender's lease ran out. The second kind may have reached the
# platform before the crash: delivery is at least once, and the outbox id handed to the adapter
# is the idempotency key a receiver can deduplicate on.
_OUTBOX_DUE = or_(
    and_(OUTBOX.c.status == OUTBOX_PENDING, OUTBOX.c.next_attempt_at <= _NOW_OUTBOX),
    and_(OUTBOX.c.status == OUTBOX_SENDING, OUTBOX.c.lease_until < _NOW_OUTBOX),
)
_OUTBOX_ORDER = (OUTBOX.c.next_attempt_at, OUTBOX.c.id)
CLAIM_INBOX = _claim(INBOX, _INBOX_CLAIMABLE, (INBOX.c.id,), INBOX_CLAIMED)
CLAIM_OUTBOX = _claim(OUTBOX, _OUTBOX_DUE, _OUTBOX_ORDER, OUTBOX_SENDING)
CLAIM_OUTBOX_OF_CHANNELS = _claim(
    OUTBOX,
    and_(_OUTBOX_DUE, OUTBOX.c.channel.in_(bindparam("b_channels", expanding=True))),
    _OUTBOX_ORDER,
    OUTBOX_SENDING,
)


def claim(
    connection: Connection,
    statement: Update,
    *,
    worker_id: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
    channels: Collection[str] | None = None,
) -> list[Row[Any]]:
    params: dict[str, Any] = {
        "b_limit": limit,
        "b_worker": worker_id,
        "b_now": now,
        "b_lease_until": lease_until,
    }
    if channels is not None:
        params["b_channels"] = list(channels)
    rows = list(connection.execute(statement, params))
    rows.sort(key=lambda row: row.id)  # RETURNING has no order of its own
    return rows


def _held_query(table: Table, claimed_status: str, columns: Sequence[Any]) -> Select[Any]:
    return select(*columns).where(
        table.c.status == claimed_status,
        tuple_(table.c.id, table.c.claimed_by, table.c.attempts).in_(
            bindparam("b_claims", expanding=True)
        ),
    )


HELD_INBOX = _held_query(INBOX, INBOX_CLAIMED, (INBOX.c.id, INBOX.c.channel, INBOX.c.conversation))
HELD_OUTBOX = _held_query(OUTBOX, OUTBOX_SENDING, (OUTBOX.c.id,))


def still_held(
    connection: Connection, query: Select[Any], claims: Sequence[tuple[int, Token]]
) -> dict[int, Row[Any]]:
    """The rows among `claims` whose claim still holds (locked until commit on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    keys = [(row_id, worker, attempts) for row_id, (worker, attempts) in claims]
    return {row.id: row for row in connection.execute(query, {"b_claims": keys})}


def settle(
    connection: Connection, table: Table, claimed_status: str, items: Sequence[Settlement]
) -> list[bool]:
    """Write each settlement whose claim still holds; True for those written."""
    query = HELD_INBOX if table is INBOX else HELD_OUTBOX
    held = still_held(connection, query, [(s.row_id, s.token) for s in items])
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in items:
        if item.row_id in held:
            columns = tuple(sorted(item.values))
            params = {f"b_{column}": value for column, value in item.values.items()}
            by_columns.setdefault(columns, []).append({"b_id": item.row_id, **params})
    for columns, params_list in by_columns.items():
        connection.execute(_update_by_id(table, columns), params_list)
    return [item.row_id in held for item in items]


_UPDATES: dict[tuple[str, tuple[str, ...]], Update] = {}


def _update_by_id(table: Table, columns: tuple[str, ...]) -> Update:
    """UPDATE table SET <columns> WHERE id = :b_id, built once per table and set of columns."""
    key = (table.name, columns)
    statement = _UPDATES.get(key)
    if statement is None:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}", type_=table.c[c].type) for c in columns})
        )
        _UPDATES[key] = statement
    return statement


def revive_dead(now: datetime, outbox_id: int, connection: Connection) -> bool:
    """Queue a dead letter again, with a full set of attempts. One whose text the retention
    purge blanked is not: it would send an empty message."""
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == OUTBOX_DEAD, OUTBOX.c.text != "")
        .values(
            status=OUTBOX_PENDING,
            attempts=0,
            next_attempt_at=now,
            claimed_by=None,
            lease_until=None,
        )
        .returning(OUTBOX.c.id)
    )
    return connection.execute(statement).first() is not None


def dead_letters(connection: Connection) -> list[Row[Any]]:
    statement = select(OUTBOX).where(OUTBOX.c.status == OUTBOX_DEAD).order_by(OUTBOX.c.id)
    return list(connection.execute(statement))


# An inbox claim settled for good: the message handled (bot.storage.finish, bot.storage.ticket_sql).
MARK_DONE = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("b_id"))
    .values(
        status=INBOX_DONE,
        decision=bindparam("b_decision"),
        entry_id=bindparam("b_entry_id"),
        processed_at=bindparam("b_now", type_=INBOX.c.processed_at.type),
        lease_until=None,
    )
)
