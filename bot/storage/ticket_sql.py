"""The SQL of escalation tickets (used by `bot.storage.store.Store`): finding them, what staff do
with
a ticket, a citizen's follow-ups while it is open, reminders, and the escalation log.

Each change is one transaction: the ticket's new state, its log entry, the message to the
citizen (an answer, or why it was closed) and the lines posted in the ticket's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, tuple_, update

import bot.storage.claims as claims
from bot.answering.composer import compose
from bot.platform.adapter import TextRules
from bot.platform.messages import (
    OUTBOX_PENDING,
)
from bot.storage.models import (
    EVENT_ANSWERED,
    EVENT_CLAIMED,
    EVENT_CLOSED,
    EVENT_FOLLOW_UP,
    EVENT_NOTE,
    EVENT_REMINDED,
    EVENT_UNDELIVERABLE,
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
from bot.tickets.drafts import KIND_ANSWER, KIND_REPLY, KIND_TICKET, KIND_TICKET_UPDATE
from bot.tickets.fallback import EmailAnswer, citizen_address, email_answer, staff_note
from bot.tickets.faq_draft import ticket_hint
from bot.tickets.handoff import (
    KEPT_ANSWER_SENT,
    Answer,
    Claim,
    Close,
    Handoff,
    Note,
    StaffCommand,
    for_staff,
    ticket_update,
)
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


def open_tickets(keys: Sequence[TicketKey], connection: Connection) -> dict[TicketKey, Ticket]:
    """The open ticket of each (channel, conversation, sender), if any: while one is open the
    bot steps aside in that conversation. An undeliverable one counts too: the citizen's next
    message opens the platform's reply window again, and its kept answer goes out (`follow_up`)."""
    if not keys:
        return {}
    statement = select(TICKET).where(
        TICKET.c.status.in_((TICKET_OPEN, TICKET_UNDELIVERABLE)),
        tuple_(TICKET.c.channel, TICKET.c.conversation, TICKET.c.sender).in_(list(set(keys))),
    )
    found: dict[TicketKey, Ticket] = {}
    for row in connection.execute(statement.order_by(TICKET.c.id)):
        found.setdefault((row.channel, row.conversation, row.sender), as_ticket(row))
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


def post_update(
    connection: Connection,
    handoff: Handoff,
    ticket: Ticket,
    kind: str,
    *,
    at: datetime,
    actor: str | None = None,
    detail: str | None = None,
) -> None:
    """A line in the ticket's thread in every staff channel it was posted to. Before the ticket
    post itself has left (no platform id yet), the line goes to the room on its own: it
    starts with the reference code, so staff still see which ticket it belongs to."""
    text = ticket_update(handoff, ticket.reference, kind, actor=actor, at=at, detail=detail)
    for staff in handoff.staff_for(ticket.channel):
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
    command line). EscalationNotFound; EscalationClosed when it is no longer open (a second
    answer is not sent: of two staff answering at once, the first one wins)."""
    ticket = get_ticket(reference, connection)
    if ticket is None:
        raise TicketNotFound(reference)
    if isinstance(command, Note):  # notes are welcome whatever the state
        add_event(connection, _id(ticket), EVENT_NOTE, at=now, actor=actor, channel=channel,
                  detail=command.text)  # fmt: skip
        return Outcome(ticket, EVENT_NOTE)
    # An undeliverable ticket may still be closed: the citizen was reached another way, and
    # its kept answer must then not go out when they write again.
    reached_otherwise = ticket.status == TICKET_UNDELIVERABLE and isinstance(command, Close)
    if ticket.status != TICKET_OPEN and not reached_otherwise:
        raise TicketClosed(reference)
    if isinstance(command, Claim):
        ticket = _change(connection, ticket, assigned_to=actor)
        kind, detail, via = EVENT_CLAIMED, None, None
    elif isinstance(command, Close):
        ticket = _change(connection, ticket, status=TICKET_CLOSED, closed_at=now,
                             close_reason=command.reason or None)  # fmt: skip
        if command.reason and not reached_otherwise:  # the platform would refuse it now
            _to_citizen(
                connection, ticket, command.reason, now=now, rules_for=rules_for,
                kind=KIND_REPLY,
            )  # fmt: skip
        kind, detail, via = EVENT_CLOSED, command.reason or None, None
    else:
        kind, detail, via = _answer(
            connection, ticket, command, actor=actor, now=now, handoff=handoff,
            rules_for=rules_for,
        )  # fmt: skip
        ticket = get_ticket(reference, connection) or ticket
    add_event(connection, _id(ticket), kind, at=now, actor=actor, channel=channel,
              detail=detail)  # fmt: skip
    # An answer worth keeping is one command away from the FAQ: say so in the thread.
    hint = ticket_hint(ticket.reference) if kind == EVENT_ANSWERED else None
    shown = "\n".join(line for line in (via, hint) if line) or None
    post_update(connection, handoff, ticket, kind, at=now, actor=actor, detail=shown)
    return Outcome(ticket, kind)


def _answer(
    connection: Connection,
    ticket: Ticket,
    command: Answer,
    *,
    actor: str,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
) -> tuple[str, str, str | None]:
    """The event kind, its detail and, for an answer that took another way, which way."""
    late = ticket.reply_deadline is not None and now > ticket.reply_deadline
    by_email = _email_fallback(connection, ticket, command.text, handoff) if late else None
    undeliverable = late and by_email is None
    _change(
        connection,
        ticket,
        status=TICKET_UNDELIVERABLE if undeliverable else TICKET_CLOSED,
        answer=command.text,
        answered_by=actor,
        answered_at=now,
        closed_at=None if undeliverable else now,
    )
    if undeliverable:  # kept, and shown to operators: nothing is dropped silently
        return EVENT_UNDELIVERABLE, command.text, None
    if by_email is not None and handoff.email_fallback is not None:
        _queue(
            connection,
            now,
            channel=handoff.email_fallback,
            conversation=by_email.address,
            text=compose(by_email.body, rules_for(handoff.email_fallback)),
            kind=KIND_ANSWER,
            escalation_id=ticket.id,
            inbox_id=ticket.inbox_id,
            recipient=by_email.address,
            reply_to=None,
            reply_context=by_email.reply_context,
            public=False,
        )
        via = staff_note(by_email, handoff.lang)
        return EVENT_ANSWERED, f"{via}\n{command.text}", via
    _to_citizen(connection, ticket, command.text, now=now, rules_for=rules_for, kind=KIND_ANSWER)
    return EVENT_ANSWERED, command.text, None


def _email_fallback(
    connection: Connection, ticket: Ticket, answer: str, handoff: Handoff
) -> EmailAnswer | None:
    """The answer as an e-mail, when the citizen gave an address and there is a channel for it."""
    if handoff.email_fallback is None:
        return None
    follow_ups = connection.execute(
        select(TICKET_EVENT.c.detail)
        .where(
            TICKET_EVENT.c.escalation_id == ticket.id,
            TICKET_EVENT.c.kind == EVENT_FOLLOW_UP,
        )
        .order_by(TICKET_EVENT.c.id)
    ).scalars()
    address = citizen_address([ticket.question, *(text or "" for text in follow_ups)])
    if address is None:
        return None
    return email_answer(
        address=address,
        reference=ticket.reference,
        question=ticket.question,
        asked_at=ticket.created_at,
        answer=answer,
        channel=ticket.channel,
        default_lang=handoff.lang,
    )


def follow_up(
    connection: Connection,
    ticket: Ticket,
    *,
    text: str,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
) -> None:
    """A citizen wrote again while their ticket is open: it goes to the ticket and its thread,
    and the platform's reply window starts again from this message. If the ticket's answer was
    kept as undeliverable (written after the window had closed), it is sent now."""
    window = handoff.reply_window(ticket.channel) if not ticket.public else None
    if window is not None:
        ticket = _change(connection, ticket, reply_deadline=now + window)
    add_event(connection, _id(ticket), EVENT_FOLLOW_UP, at=now, actor="citizen",
              channel=ticket.channel, detail=text)  # fmt: skip
    post_update(connection, handoff, ticket, EVENT_FOLLOW_UP, at=now, detail=text)
    if ticket.status == TICKET_UNDELIVERABLE and ticket.answer:
        _to_citizen(connection, ticket, ticket.answer, now=now, rules_for=rules_for,
                    kind=KIND_ANSWER)  # fmt: skip
        ticket = _change(connection, ticket, status=TICKET_CLOSED, closed_at=now)
        said = for_staff(handoff, KEPT_ANSWER_SENT)
        add_event(connection, _id(ticket), EVENT_ANSWERED, at=now,
                  actor=ticket.answered_by, channel=ticket.channel,
                  detail=f"{said}\n{ticket.answer}")  # fmt: skip
        post_update(connection, handoff, ticket, EVENT_ANSWERED, at=now,
                    actor=ticket.answered_by, detail=said)  # fmt: skip


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
        _change(connection, ticket, reminded_at=now)
        add_event(connection, _id(ticket), EVENT_REMINDED, at=now, actor="civicdesk")
        post_update(connection, handoff, ticket, EVENT_REMINDED, at=now)
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


def _change(connection: Connection, ticket: Ticket, **values: Any) -> Ticket:
    row = connection.execute(
        update(TICKET).where(TICKET.c.id == ticket.id).values(**values).returning(*TICKET.c)
    ).first()
    return as_ticket(row) if row is not None else ticket


def _to_citizen(
    connection: Connection,
    ticket: Ticket,
    text: str,
    *,
    now: datetime,
    rules_for: Callable[[str], TextRules],
    kind: str,
) -> None:
    """A message to the citizen in the conversation of their question, in its thread where the
    platform has threads, fitted to the citizen's channel."""
    question = connection.execute(
        select(INBOX.c.platform_id, INBOX.c.reply_context, INBOX.c.mention).where(
            INBOX.c.id == ticket.inbox_id
        )
    ).first()
    mention = question.mention if question is not None and ticket.public else None
    _queue(
        connection,
        now,
        channel=ticket.channel,
        conversation=ticket.conversation,
        text=compose(text, rules_for(ticket.channel), mention=mention),
        kind=kind,
        escalation_id=ticket.id,
        inbox_id=ticket.inbox_id,
        recipient=ticket.sender,
        reply_to=question.platform_id if question is not None else None,
        reply_context=question.reply_context if question is not None else None,
        public=ticket.public,
    )


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
