"""The SQL of tickets (used by `bot.storage.store.Store`): finding them, applying what staff
do with a ticket, a citizen's follow-ups and reminders, and the ticket log.

What a change is (the next state, the texts for the citizen and the staff) is decided by the
pure functions of `bot.tickets.actions`; here it is only applied, as one transaction: the
ticket's new state (a conditional update: only while the ticket still has the status the
decision was made on), its log entry, the message to the citizen and the lines posted in the
ticket's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, tuple_, update

import bot.storage.claims as claims
from bot.platform.adapter import TextRules
from bot.platform.messages import (
    OUTBOX_PENDING,
)
from bot.storage.models import (
    EVENT_FOLLOW_UP,
    INBOX,
    OUTBOX,
    TICKET,
    TICKET_CLOSED,
    TICKET_EVENT,
    TICKET_OPEN,
    TICKET_UNDELIVERABLE,
    Ticket,
    TicketEvent,
)
from bot.tickets.actions import (
    TicketChange,
    follow_up_changes,
    is_late,
    reminder_change,
    staff_command_change,
)
from bot.tickets.drafts import KIND_ANSWER, KIND_TICKET, KIND_TICKET_UPDATE, OutboxDraft
from bot.tickets.handoff import Handoff, StaffCommand
from bot.tickets.reference import TicketClosed, TicketNotFound

TicketKey = tuple[str, str, str]  # (channel, conversation, sender)


def as_ticket(row: Row[Any]) -> Ticket:
    return Ticket(**row._asdict())


def get_ticket(reference: str, connection: Connection) -> Ticket | None:
    statement = select(TICKET).where(TICKET.c.reference == reference)
    row = connection.execute(statement).first()
    return as_ticket(row) if row is not None else None


@dataclass(frozen=True)
class Outcome:
    """What a staff command did: the ticket after it, and the log entry written."""

    ticket: Ticket
    kind: str  # the event kind: claimed, note, answered, closed, undeliverable


def open_tickets(
    keys: Sequence[TicketKey], connection: Connection, *, answered_since: datetime | None = None
) -> dict[TicketKey, Ticket]:
    """The ticket of each (channel, conversation, sender) the conversation rules must know of:
    an open one (the bot answers only what the FAQ answers, or steps aside once a person has
    it), an undeliverable one (the citizen's next message opens the platform's reply window
    again, and its kept answer goes out), or, with `answered_since`, one a person answered since
    then (the quiet period after a staff answer)."""
    if not keys:
        return {}
    status: Any = TICKET.c.status.in_((TICKET_OPEN, TICKET_UNDELIVERABLE))
    if answered_since is not None:
        status = or_(
            status,
            and_(
                TICKET.c.status == TICKET_CLOSED,
                TICKET.c.answered_by.is_not(None),
                TICKET.c.closed_at >= answered_since,
            ),
        )
    statement = select(TICKET).where(
        status,
        tuple_(TICKET.c.channel, TICKET.c.conversation, TICKET.c.sender).in_(list(set(keys))),
    )
    found: dict[TicketKey, Ticket] = {}
    for row in connection.execute(statement.order_by(TICKET.c.id)):
        key = (row.channel, row.conversation, row.sender)
        known = found.get(key)
        # An open ticket before one answered lately; the newest of each.
        if known is None or known.status == TICKET_CLOSED or row.status != TICKET_CLOSED:
            found[key] = as_ticket(row)
    return found


def ticket_by_post(channel: str, post_id: str, connection: Connection) -> Ticket | None:
    """The ticket whose post (or an update in its thread) on staff `channel` has the platform
    id `post_id`: what a staff member's reply in a thread points at."""
    posted = (
        select(OUTBOX.c.escalation_id)
        .where(
            OUTBOX.c.channel == channel,
            OUTBOX.c.platform_message_id == post_id,
            OUTBOX.c.kind.in_((KIND_TICKET, KIND_TICKET_UPDATE)),
        )
        .limit(1)
        .scalar_subquery()
    )
    row = connection.execute(select(TICKET).where(TICKET.c.id == posted)).first()
    return as_ticket(row) if row is not None else None


def add_event(
    connection: Connection,
    escalation_id: int,
    kind: str,
    *,
    at: datetime,
    actor: str | None = None,
    channel: str | None = None,
    detail: str | None = None,
) -> None:
    connection.execute(
        insert(TICKET_EVENT).values(
            escalation_id=escalation_id,
            at=at,
            kind=kind,
            actor=actor,
            channel=channel,
            detail=detail,
        )
    )


def events(reference: str, connection: Connection) -> list[TicketEvent]:
    statement = (
        select(TICKET_EVENT)
        .join(TICKET, TICKET.c.id == TICKET_EVENT.c.escalation_id)
        .where(TICKET.c.reference == reference)
        .order_by(TICKET_EVENT.c.id)
    )
    return [TicketEvent(**row._asdict()) for row in connection.execute(statement)]


def post_line(
    connection: Connection, handoff: Handoff, ticket: Ticket, text: str, *, at: datetime
) -> None:
    """A line in the ticket's thread in every staff channel it was posted to. Before the ticket
    post itself has left (no platform id yet), the line goes to the room on its own: it
    starts with the reference code, so staff still see which ticket it belongs to."""
    for staff in handoff.staff:
        root = connection.execute(
            select(OUTBOX.c.platform_message_id)
            .where(
                OUTBOX.c.escalation_id == ticket.id,
                OUTBOX.c.channel == staff.name,
                OUTBOX.c.kind == KIND_TICKET,
            )
            .limit(1)
        ).scalar()
        _queue(
            connection,
            at,
            channel=staff.name,
            conversation=staff.room,
            text=text,
            kind=KIND_TICKET_UPDATE,
            escalation_id=ticket.id,
            reply_to=root,
        )


def apply_change(
    connection: Connection,
    ticket: Ticket,
    change: TicketChange,
    *,
    now: datetime,
    handoff: Handoff,
    question: Question | None,
) -> Ticket:
    """Write one decided change (bot.tickets.actions): the new values only while the ticket
    still has the status the decision was made on; TicketClosed (with who acted first) when
    another actor changed it since. `question`: the citizen's message (thread, reply context)."""
    if change.values:
        statement = update(TICKET).where(TICKET.c.id == ticket.id)
        if change.expected is not None:
            statement = statement.where(TICKET.c.status == change.expected)
        row = connection.execute(statement.values(**change.values).returning(*TICKET.c)).first()
        if row is None:
            now_is = get_ticket(ticket.reference, connection) or ticket
            raise TicketClosed(ticket.reference, now_is.answered_by or now_is.assigned_to)
        ticket = as_ticket(row)
    if change.event is not None:
        event = change.event
        add_event(connection, _id(ticket), event.kind, at=now, actor=event.actor,
                  channel=event.channel, detail=event.detail)  # fmt: skip
    if change.to_citizen is not None:
        _queue(
            connection,
            now,
            channel=ticket.channel,
            conversation=ticket.conversation,
            text=change.to_citizen.text,
            kind=change.to_citizen.kind,
            escalation_id=ticket.id,
            inbox_id=ticket.inbox_id,
            recipient=ticket.sender,
            reply_to=question.platform_id if question is not None else None,
            reply_context=question.reply_context if question is not None else None,
            public=ticket.public,
        )
    if change.by_email is not None:
        email = change.by_email
        _queue(connection, now, channel=email.channel, conversation=email.address,
               text=email.text, kind=KIND_ANSWER, escalation_id=ticket.id,
               inbox_id=ticket.inbox_id, recipient=email.address, reply_to=None,
               reply_context=email.reply_context, public=False)  # fmt: skip
    if change.staff_line is not None:
        post_line(connection, handoff, ticket, change.staff_line, at=now)
    return ticket


@dataclass(frozen=True)
class Question:
    """Where a reply to the citizen's question goes: its platform id (thread), reply context,
    and whom it mentioned."""

    platform_id: str | None
    reply_context: str | None
    mention: str | None


def question_of(connection: Connection, ticket: Ticket) -> Question | None:
    """The citizen's question behind `ticket`."""
    row = connection.execute(
        select(INBOX.c.platform_id, INBOX.c.reply_context, INBOX.c.mention).where(
            INBOX.c.id == ticket.inbox_id
        )
    ).first()
    return Question(row.platform_id, row.reply_context, row.mention) if row is not None else None


def apply_staff_command(
    connection: Connection,
    command: StaffCommand,
    *,
    reference: str,
    actor: str,
    channel: str | None,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
) -> Outcome:
    """Carry out what a staff member said about ticket `reference` (from its thread or the
    command line). TicketNotFound; TicketClosed when it is no longer open (a second answer is
    not sent: of two staff answering at once, the first one wins, also on PostgreSQL, where
    both may have read it open: the update is conditional)."""
    ticket = get_ticket(reference, connection)
    if ticket is None:
        raise TicketNotFound(reference)
    question = question_of(connection, ticket)
    follow_ups = _follow_up_texts(connection, ticket) if is_late(ticket, now) else ()
    change = staff_command_change(
        ticket, command, actor=actor, channel=channel, now=now, handoff=handoff,
        rules_for=rules_for, mention=question.mention if question is not None else None,
        follow_ups=follow_ups,
    )  # fmt: skip
    ticket = apply_change(connection, ticket, change, now=now, handoff=handoff,
                          question=question)  # fmt: skip
    return Outcome(ticket, change.kind)


def _follow_up_texts(connection: Connection, ticket: Ticket) -> list[str]:
    texts = connection.execute(
        select(TICKET_EVENT.c.detail)
        .where(
            TICKET_EVENT.c.escalation_id == ticket.id,
            TICKET_EVENT.c.kind == EVENT_FOLLOW_UP,
        )
        .order_by(TICKET_EVENT.c.id)
    ).scalars()
    return [text or "" for text in texts]


def follow_up(
    connection: Connection,
    ticket: Ticket,
    *,
    text: str,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
    reply: OutboxDraft | None = None,
    inbox_id: int | None = None,
    acknowledge: bool = False,
    acknowledged_before: datetime | None = None,
) -> bool:
    """A citizen wrote again while their ticket is open (or lately answered): apply what
    bot.tickets.actions decides (the message in the ticket and its thread, a kept answer sent
    now), and `reply` to the citizen. With `acknowledge`, the reply is a brief acknowledgement
    sent only if none went out since `acknowledged_before` (checked in the update itself, so of
    two workers only one sends it). Whether `reply` was queued."""
    question = question_of(connection, ticket)
    mention = question.mention if question is not None else None
    for change in follow_up_changes(ticket, text=text, now=now, handoff=handoff,
                                    rules_for=rules_for, mention=mention):  # fmt: skip
        ticket = apply_change(connection, ticket, change, now=now, handoff=handoff,
                              question=question)  # fmt: skip
    if reply is None:
        return False
    if acknowledge:
        statement = update(TICKET).where(TICKET.c.id == ticket.id)
        if acknowledged_before is not None:
            statement = statement.where(
                or_(
                    TICKET.c.acknowledged_at.is_(None),
                    TICKET.c.acknowledged_at <= acknowledged_before,
                )
            )
        if connection.execute(statement.values(acknowledged_at=now)).rowcount == 0:
            return False  # another worker acknowledged this conversation just now
    values = _draft_values(reply)
    _queue(connection, now, **values, escalation_id=ticket.id, inbox_id=inbox_id)
    return True


def _draft_values(draft: OutboxDraft) -> dict[str, Any]:
    return {
        "channel": draft.channel,
        "conversation": draft.conversation,
        "recipient": draft.recipient,
        "reply_to": draft.reply_to,
        "reply_context": draft.reply_context,
        "public": draft.public,
        "text": draft.text,
        "kind": draft.kind,
    }


def remind_overdue(connection: Connection, *, now: datetime, every: float, handoff: Handoff) -> int:
    """Post a reminder in the thread of every open ticket past its promised answer time, at
    most once per `every` seconds each. How many were reminded."""
    since = now - timedelta(seconds=every)
    statement = select(TICKET).where(
        TICKET.c.status == TICKET_OPEN,
        TICKET.c.due_at.is_not(None),
        TICKET.c.due_at < now,
        or_(TICKET.c.reminded_at.is_(None), TICKET.c.reminded_at < since),
    )
    overdue = [as_ticket(row) for row in connection.execute(statement)]
    for ticket in overdue:
        change = reminder_change(ticket, now=now, handoff=handoff)
        apply_change(connection, ticket, change, now=now, handoff=handoff, question=None)
    return len(overdue)


def list_filtered(
    connection: Connection,
    *,
    status: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    staff: str | None = None,
    overdue_at: datetime | None = None,
) -> list[Ticket]:
    """Tickets for operators: by status, channel, creation date, staff member (who claimed,
    answered or wrote in its log) and, with `overdue_at`, only those open past their due time."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(TICKET.c.status == status)
    if channel is not None:
        conditions.append(TICKET.c.channel == channel)
    if since is not None:
        conditions.append(TICKET.c.created_at >= since)
    if until is not None:
        conditions.append(TICKET.c.created_at < until)
    if staff is not None:
        acted = select(TICKET_EVENT.c.escalation_id).where(TICKET_EVENT.c.actor == staff)
        conditions.append(
            or_(
                TICKET.c.assigned_to == staff,
                TICKET.c.answered_by == staff,
                TICKET.c.id.in_(acted),
            )
        )
    if overdue_at is not None:
        conditions.append(
            and_(
                TICKET.c.status == TICKET_OPEN,
                TICKET.c.due_at.is_not(None),
                TICKET.c.due_at < overdue_at,
            )
        )
    statement = select(TICKET).where(*conditions).order_by(TICKET.c.created_at, TICKET.c.id)
    return [as_ticket(row) for row in connection.execute(statement)]


def finish_row(
    connection: Connection,
    *,
    inbox_id: int,
    token: Any,
    decision: str,
    now: datetime,
    action: Callable[[Connection], None],
) -> bool:
    """Do `action` and mark the claimed inbox row done, together, if the claim still holds
    (False: it was lost to another worker, which does it instead)."""
    if inbox_id not in claims.still_held(connection, claims.HELD_INBOX, [(inbox_id, token)]):
        return False
    action(connection)
    connection.execute(
        claims.MARK_DONE,
        {"b_id": inbox_id, "b_decision": decision, "b_entry_id": None, "b_now": now},
    )
    return True


def _queue(connection: Connection, now: datetime, **values: Any) -> None:
    connection.execute(
        insert(OUTBOX).values(
            status=OUTBOX_PENDING, attempts=0, next_attempt_at=now, created_at=now, **values
        )
    )


def _id(ticket: Ticket) -> int:
    if ticket.id is None:
        raise ValueError("a stored escalation (with an id) is needed")
    return ticket.id
