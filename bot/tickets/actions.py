"""Ticket decisions as plain functions: what a staff command, a citizen's follow-up or an overdue
reminder does to a ticket: which state follows, what the citizen is told, which line goes in
the ticket's threads. `bot.storage.ticket_sql` only applies the `TicketChange`s returned here,
each as one conditional update (`WHERE status = :expected`), so that of two people acting on one
ticket at once only one wins; the other is told who did (`not_sent_line`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.answering.composer import compose
from bot.platform.adapter import TextRules
from bot.tickets.drafts import KIND_ANSWER, KIND_REPLY
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
    staff_time,
    ticket_update,
)
from bot.tickets.reference import TicketClosed

# Ticket statuses and event kinds (the same strings as bot.storage.models).
OPEN, CLOSED, UNDELIVERABLE = "open", "closed", "undeliverable"
EVENT_ANSWERED, EVENT_CLAIMED, EVENT_CLOSED, EVENT_NOTE = "answered", "claimed", "closed", "note"
EVENT_FOLLOW_UP, EVENT_REMINDED, EVENT_UNDELIVERABLE = "follow-up", "reminded", "undeliverable"


class TicketLike(Protocol):
    """The fields of a stored ticket the decisions read (bot.storage.models.Ticket has them)."""

    @property
    def reference(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def public(self) -> bool: ...
    @property
    def question(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def answered_by(self) -> str | None: ...
    @property
    def assigned_to(self) -> str | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def reply_deadline(self) -> datetime | None: ...


@dataclass(frozen=True)
class Event:
    """An entry for the ticket's log."""

    kind: str
    actor: str | None = None
    channel: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ToCitizen:
    """A message to the citizen in the conversation of their question, composed for its channel."""

    text: str
    kind: str


@dataclass(frozen=True)
class ByEmail:
    """The answer sent by e-mail instead (the platform's reply window had closed)."""

    channel: str
    address: str
    text: str
    reply_context: str


@dataclass(frozen=True)
class TicketChange:
    """One change of a ticket, applied in one transaction: the new column values (only while
    the ticket still has status `expected`), its log entry, what goes to the citizen and the
    line posted in the ticket's threads."""

    expected: str | None  # None: no condition (nothing in `values` depends on the status)
    values: Mapping[str, Any] = field(default_factory=dict)
    event: Event | None = None
    to_citizen: ToCitizen | None = None
    by_email: ByEmail | None = None
    staff_line: str | None = None
    kind: str = ""  # the event kind, for the caller's outcome


def is_late(ticket: TicketLike, now: datetime) -> bool:
    """Past the platform's reply window: an answer now needs another way to the citizen."""
    return ticket.reply_deadline is not None and now > ticket.reply_deadline


def staff_command_change(
    ticket: TicketLike,
    command: StaffCommand,
    *,
    actor: str,
    channel: str | None,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
    mention: str | None,
    follow_ups: Sequence[str] = (),
) -> TicketChange:
    """What a staff member's claim, note, close or answer does to `ticket`. TicketClosed when it
    is no longer open (an undeliverable ticket may still be closed: the citizen was reached
    another way). `follow_ups`: what the citizen added, read only when `is_late` (an e-mail
    address may be in it)."""
    if isinstance(command, Note):  # notes are welcome whatever the state
        return TicketChange(
            None, event=Event(EVENT_NOTE, actor, channel, command.text), kind=EVENT_NOTE
        )
    reached_otherwise = ticket.status == UNDELIVERABLE and isinstance(command, Close)
    if ticket.status != OPEN and not reached_otherwise:
        raise TicketClosed(ticket.reference, ticket.answered_by)

    def line(kind: str, detail: str | None = None) -> str:
        return ticket_update(handoff, ticket.reference, kind, actor=actor, at=now, detail=detail)

    if isinstance(command, Claim):
        return TicketChange(
            OPEN,
            {"assigned_to": actor},
            Event(EVENT_CLAIMED, actor, channel),
            staff_line=line(EVENT_CLAIMED),
            kind=EVENT_CLAIMED,
        )
    if isinstance(command, Close):
        reason = command.reason or None
        told = None
        if reason and not reached_otherwise:  # the platform would refuse it now
            told = ToCitizen(_for_citizen(ticket, reason, rules_for, mention), KIND_REPLY)
        return TicketChange(
            ticket.status,
            {"status": CLOSED, "closed_at": now, "close_reason": reason},
            Event(EVENT_CLOSED, actor, channel, reason),
            to_citizen=told,
            staff_line=line(EVENT_CLOSED),
            kind=EVENT_CLOSED,
        )
    return _answer_change(
        ticket,
        command,
        actor=actor,
        channel=channel,
        now=now,
        handoff=handoff,
        rules_for=rules_for,
        mention=mention,
        follow_ups=follow_ups,
        line=line,
    )


def _answer_change(
    ticket: TicketLike,
    command: Answer,
    *,
    actor: str,
    channel: str | None,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
    mention: str | None,
    follow_ups: Sequence[str],
    line: Callable[[str, str | None], str],
) -> TicketChange:
    late = is_late(ticket, now)
    by_email = _email_fallback(ticket, command.text, handoff, follow_ups) if late else None
    undeliverable = late and by_email is None
    values = {
        "status": UNDELIVERABLE if undeliverable else CLOSED,
        "answer": command.text,
        "answered_by": actor,
        "answered_at": now,
        "closed_at": None if undeliverable else now,
    }
    if undeliverable:  # kept, and shown to operators: nothing is dropped silently
        return TicketChange(
            OPEN,
            values,
            Event(EVENT_UNDELIVERABLE, actor, channel, command.text),
            staff_line=line(EVENT_UNDELIVERABLE, None),
            kind=EVENT_UNDELIVERABLE,
        )
    # An answer worth keeping is one command away from the FAQ: say so in the thread.
    hint = ticket_hint(ticket.reference)
    if by_email is not None and handoff.email_fallback is not None:
        via = staff_note(by_email, handoff.lang)
        email = ByEmail(
            handoff.email_fallback,
            by_email.address,
            compose(by_email.body, rules_for(handoff.email_fallback)),
            by_email.reply_context,
        )
        return TicketChange(
            OPEN,
            values,
            Event(EVENT_ANSWERED, actor, channel, f"{via}\n{command.text}"),
            by_email=email,
            staff_line=line(EVENT_ANSWERED, f"{via}\n{hint}"),
            kind=EVENT_ANSWERED,
        )
    told = ToCitizen(_for_citizen(ticket, command.text, rules_for, mention), KIND_ANSWER)
    return TicketChange(
        OPEN,
        values,
        Event(EVENT_ANSWERED, actor, channel, command.text),
        to_citizen=told,
        staff_line=line(EVENT_ANSWERED, hint),
        kind=EVENT_ANSWERED,
    )


def _email_fallback(
    ticket: TicketLike, answer: str, handoff: Handoff, follow_ups: Sequence[str]
) -> EmailAnswer | None:
    """The answer as an e-mail, when the citizen gave an address and there is a channel for it."""
    if handoff.email_fallback is None:
        return None
    address = citizen_address([ticket.question, *follow_ups])
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


def follow_up_changes(
    ticket: TicketLike,
    *,
    text: str,
    now: datetime,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
    mention: str | None,
) -> list[TicketChange]:
    """A citizen wrote again while their ticket is open (or lately answered): it goes to the
    ticket and its thread, and the platform's reply window starts again from this message. If
    the ticket's answer was kept as undeliverable (written after the window had closed), it is
    sent now."""
    window = handoff.reply_window(ticket.channel) if not ticket.public else None
    added = TicketChange(
        ticket.status,
        {"reply_deadline": now + window} if window is not None else {},
        Event(EVENT_FOLLOW_UP, "citizen", ticket.channel, text),
        staff_line=ticket_update(
            handoff, ticket.reference, EVENT_FOLLOW_UP, actor=None, at=now, detail=text
        ),
        kind=EVENT_FOLLOW_UP,
    )
    if ticket.status != UNDELIVERABLE or not ticket.answer:
        return [added]
    said = for_staff(handoff, KEPT_ANSWER_SENT)
    kept = TicketChange(
        UNDELIVERABLE,
        {"status": CLOSED, "closed_at": now},
        Event(EVENT_ANSWERED, ticket.answered_by, ticket.channel, f"{said}\n{ticket.answer}"),
        to_citizen=ToCitizen(_for_citizen(ticket, ticket.answer, rules_for, mention), KIND_ANSWER),
        staff_line=ticket_update(
            handoff, ticket.reference, EVENT_ANSWERED, actor=ticket.answered_by, at=now, detail=said
        ),
        kind=EVENT_ANSWERED,
    )
    return [added, kept]


def reminder_change(ticket: TicketLike, *, now: datetime, handoff: Handoff) -> TicketChange:
    """An open ticket past its promised answer time: a reminder in its thread."""
    return TicketChange(
        OPEN,
        {"reminded_at": now},
        Event(EVENT_REMINDED, "civicdesk"),
        staff_line=ticket_update(handoff, ticket.reference, EVENT_REMINDED, actor=None, at=now),
        kind=EVENT_REMINDED,
    )


NOT_SENT = {
    "answered": ("未发出：{who} 已于 {at} 先行答复", "not sent: {who} answered first, at {at}"),
    "closed": ("未发出：该问题已于 {at} 由 {who} 关闭", "not sent: {who} closed it first, at {at}"),
    "gone": ("未发出：该问题已不再开放", "not sent: the ticket is no longer open"),
}


def not_sent_line(ticket: TicketLike, *, actor: str, now: datetime, handoff: Handoff) -> str:
    """For a staff member whose answer lost to another's: who acted first, and when."""
    answered = ticket.answered_by is not None
    who = ticket.answered_by if answered else ticket.assigned_to
    at = ticket.answered_at if answered else None
    key = "answered" if answered else ("closed" if who else "gone")
    zh, en = NOT_SENT[key]
    text = (zh if handoff.lang == "zh" else en).format(who=who, at=staff_time(at or now, handoff))
    return f"[{ticket.reference}] {actor}: {text}"


def _for_citizen(
    ticket: TicketLike, text: str, rules_for: Callable[[str], TextRules], mention: str | None
) -> str:
    """`text` fitted to the citizen's channel, addressed to them where the reply is public."""
    return compose(text, rules_for(ticket.channel), mention=mention if ticket.public else None)
