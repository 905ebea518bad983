"""The SQL of finishing inbox rows (used by `bot.storage.store.Store`): many rows in one
transaction.

Per row: the message marked done, its replies queued, its ticket opened, its conversation's
pending question kept or forgotten. A row whose claim was lost writes nothing (False); a row
whose ticket code is in use writes nothing (ReferenceTaken); the others are written together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, tuple_

import bot.storage.claims as claims
from bot.platform.messages import OUTBOX_PENDING, OUTBOX_SENDING
from bot.storage.engine import insert_ignoring_duplicates
from bot.storage.models import (
    CONVERSATION_STATE,
    EVENT_OPENED,
    OUTBOX,
    TICKET,
    TICKET_OPEN,
)
from bot.storage.ticket_sql import add_event
from bot.tickets.drafts import KIND_ACK, KIND_TICKET, Finish, OutboxDraft, PendingClarify
from bot.tickets.reference import ReferenceTaken

_REFERENCES_IN_USE = select(TICKET.c.reference).where(
    TICKET.c.reference.in_(bindparam("b_references", expanding=True))
)
_STATE_KEY = tuple_(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation)
_FORGET = delete(CONVERSATION_STATE).where(_STATE_KEY.in_(bindparam("b_keys", expanding=True)))
PRUNE_EXPIRED_STATE = delete(CONVERSATION_STATE).where(
    CONVERSATION_STATE.c.expires_at < bindparam("b_now", type_=CONVERSATION_STATE.c.expires_at.type)
)


@dataclass(frozen=True)
class Handover:
    """Write up to `limit` replies already claimed by this worker, for delivery straight from
    memory: the claim that would otherwise follow costs a transaction per batch. The limit is
    the delivery slots free, so a claimed reply is always one being sent; the rest are queued."""

    worker_id: str
    lease_until: datetime
    limit: int


def finish_batch(
    items: Sequence[tuple[Finish, claims.Token]],
    now: datetime,
    connection: Connection,
    handover: Handover | None = None,
) -> tuple[list[bool | Exception], list[Any]]:
    """Per row True, False (claim lost) or ReferenceTaken; and, with `handover`, the outbox rows
    written (claimed by `handover.worker_id`)."""
    held = claims.still_held(
        connection, claims.HELD_INBOX, [(f.inbox_id, token) for f, token in items]
    )
    results = _check_references(connection, [f for f, _ in items], held)
    done = [f for (f, _), result in zip(items, results, strict=True) if result is True]
    if not done:
        return results, []
    connection.execute(
        claims.MARK_DONE,
        [
            {"b_id": f.inbox_id, "b_decision": f.decision, "b_entry_id": f.entry_id, "b_now": now}
            for f in done
        ],
    )
    tickets = {f.inbox_id: _open_ticket(connection, f, now) for f in done}
    outbox = [
        _outbox_row(draft, f.inbox_id, tickets.get(f.inbox_id), now)
        for f in done
        for draft in (*f.replies, *(f.ticket.staff_posts if f.ticket else ()))
    ]
    written: list[Any] = []
    if outbox and handover is not None and handover.limit > 0:
        claimed, outbox = outbox[: handover.limit], outbox[handover.limit :]
        for row in claimed:
            row.update(status=OUTBOX_SENDING, attempts=1, claimed_by=handover.worker_id,
                       lease_until=handover.lease_until)  # fmt: skip
        statement = insert(OUTBOX).returning(*OUTBOX.c, sort_by_parameter_order=True)
        written = list(connection.execute(statement, claimed))
    if outbox:
        connection.execute(insert(OUTBOX), outbox)
    _keep_pending(connection, done, held)
    return results, written


def prune_expired_state(now: datetime, connection: Connection) -> int:
    """Forget clarifying questions nobody answered in time."""
    return connection.execute(PRUNE_EXPIRED_STATE, {"b_now": now}).rowcount


def _check_references(
    connection: Connection, finishes: Sequence[Finish], held: dict[int, Any]
) -> list[bool | Exception]:
    wanted = [f.ticket.reference for f in finishes if f.ticket and f.inbox_id in held]
    in_use: set[str] = set()
    if wanted:
        found = connection.execute(_REFERENCES_IN_USE, {"b_references": wanted})
        in_use = {row.reference for row in found}
    results: list[bool | Exception] = []
    for f in finishes:
        if f.inbox_id not in held:
            results.append(False)
        elif f.ticket is not None and f.ticket.reference in in_use:
            results.append(ReferenceTaken(f.ticket.reference))
        else:
            if f.ticket is not None:
                in_use.add(f.ticket.reference)  # two new tickets drew the same code
            results.append(True)
    return results


_OPEN_TICKET: dict[str, Any] = {}


def _open_ticket_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (reference) DO NOTHING RETURNING id, built once per dialect:
    building it per ticket cost more than running it."""
    statement = _OPEN_TICKET.get(dialect)
    if statement is None:
        columns = (
            "reference", "status", "inbox_id", "channel", "conversation", "sender",
            "sender_name", "public", "question", "reason", "candidates", "created_at",
            "due_at", "reply_deadline",
        )  # fmt: skip
        statement = (
            insert_ignoring_duplicates(dialect, TICKET)
            .on_conflict_do_nothing(index_elements=["reference"])
            .values({c: bindparam(f"b_{c}", type_=TICKET.c[c].type) for c in columns})
            .returning(TICKET.c.id)
        )
        _OPEN_TICKET[dialect] = statement
    return statement


def _open_ticket(connection: Connection, finish: Finish, now: datetime) -> int | None:
    draft = finish.ticket
    if draft is None:
        return None
    # ON CONFLICT DO NOTHING: a code taken since the check (another process) must not abort the
    # transaction of every other row in it; this row's ticket then goes without its own code.
    ticket_id = connection.execute(
        _open_ticket_statement(connection.dialect.name),
        {
            "b_reference": draft.reference,
            "b_status": TICKET_OPEN,
            "b_inbox_id": finish.inbox_id,
            "b_channel": draft.channel,
            "b_conversation": draft.conversation,
            "b_sender": draft.sender,
            "b_sender_name": draft.sender_name,
            "b_public": draft.public,
            "b_question": draft.question,
            "b_reason": draft.reason,
            "b_candidates": [dict(c) for c in draft.candidates],
            "b_created_at": now,
            "b_due_at": draft.due_at,
            "b_reply_deadline": draft.reply_deadline,
        },
    ).scalar()
    if ticket_id is None:
        raise ReferenceTaken(draft.reference)
    add_event(connection, int(ticket_id), EVENT_OPENED, at=now, actor="civicdesk",
              channel=draft.channel, detail=draft.reason)  # fmt: skip
    return int(ticket_id)


def _keep_pending(connection: Connection, done: Sequence[Finish], held: dict[int, Any]) -> None:
    forget: list[tuple[str, str]] = []
    remember: list[dict[str, Any]] = []
    for f in done:
        key = (held[f.inbox_id].channel, held[f.inbox_id].conversation)
        if f.pending_clarify == "clear":
            forget.append(key)
        elif isinstance(f.pending_clarify, PendingClarify):
            remember.append(
                {
                    "channel": key[0],
                    "conversation": key[1],
                    "pending_options": list(f.pending_clarify.options),
                    "pending_lang": f.pending_clarify.lang,
                    "expires_at": datetime.fromtimestamp(f.pending_clarify.expires_at, UTC),
                }
            )
    # In key order: two processes writing the same conversations lock them in the same order,
    # so they wait for each other instead of deadlocking (PostgreSQL).
    forget.sort()
    remember.sort(key=lambda row: (row["channel"], row["conversation"]))
    if forget:
        connection.execute(_FORGET, {"b_keys": forget})
    if remember:
        upsert = insert_ignoring_duplicates(connection.dialect.name, CONVERSATION_STATE)
        upsert = upsert.on_conflict_do_update(
            index_elements=["channel", "conversation"],
            set_={
                "pending_options": upsert.excluded.pending_options,
                "pending_lang": upsert.excluded.pending_lang,
                "expires_at": upsert.excluded.expires_at,
            },
        )
        connection.execute(upsert, remember)


def _outbox_row(
    draft: OutboxDraft, inbox_id: int | None, escalation_id: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "inbox_id": inbox_id,
        "escalation_id": escalation_id if draft.kind in (KIND_ACK, KIND_TICKET) else None,
        "channel": draft.channel,
        "conversation": draft.conversation,
        "recipient": draft.recipient,
        "reply_to": draft.reply_to,
        "reply_context": draft.reply_context,
        "public": draft.public,
        "text": draft.text,
        "kind": draft.kind,
        "status": OUTBOX_PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "claimed_by": None,
        "lease_until": None,
        "last_error": None,
        "platform_message_id": None,
        "sent_at": None,
    }
