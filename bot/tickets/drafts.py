"""What the pipeline asks the store to write when it finishes an inbox row: plain data, no SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.answering.desk import PendingClarify

# PendingClarify is part of the Finish record: storage takes it from here, not from the desk.
__all__ = [
    "KIND_ACK",
    "KIND_ANSWER",
    "KIND_REPLY",
    "KIND_TICKET",
    "KIND_TICKET_UPDATE",
    "Finish",
    "OutboxDraft",
    "PendingClarify",
    "TicketDraft",
]

# outbox.kind
KIND_REPLY, KIND_ACK, KIND_ANSWER = "reply", "ack", "answer"
# Posts to staff channels: a new ticket, and what happened to it since (in its thread).
KIND_TICKET, KIND_TICKET_UPDATE = "ticket", "ticket-update"


@dataclass(frozen=True)
class OutboxDraft:
    """One reply to queue. A draft of kind "ack" is linked to the escalation written with it."""

    channel: str
    conversation: str
    text: str
    public: bool = False
    recipient: str | None = None
    reply_to: str | None = None
    reply_context: str | None = None
    kind: str = KIND_REPLY


@dataclass(frozen=True)
class TicketDraft:
    """A question for a human, under a reference code the citizen is given."""

    reference: str
    channel: str
    conversation: str
    sender: str
    question: str
    reason: str
    public: bool = False
    sender_name: str | None = None
    # Best first: {"entry_id": ..., "score": ..., "phrasing": ...}, for the staff member's context.
    candidates: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    due_at: datetime | None = None  # the answer time promised to the citizen
    reply_deadline: datetime | None = None  # the platform's last moment for a private reply
    staff_posts: Sequence[OutboxDraft] = ()  # the ticket as posted in each staff channel


@dataclass(frozen=True)
class Finish:
    """What became of one claimed inbox row (`Store.finish_inbox`)."""

    inbox_id: int
    decision: str
    entry_id: str | None
    replies: Sequence[OutboxDraft] = ()
    ticket: TicketDraft | None = None
    # Options to remember, "clear" to forget the conversation's pending question, None: leave it.
    pending_clarify: PendingClarify | Literal["clear"] | None = None
