"""The tables civicdesk keeps. All SQL that reads or writes them lives in `bot.storage.store`.

Statuses are plain strings (constants below) so that operators can read them in any SQL client.
Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, LargeBinary, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.platform.messages import OUTBOX_PENDING

# inbox.status ("failed": the pipeline raised on every attempt; kept for an operator to look at)
INBOX_NEW, INBOX_CLAIMED, INBOX_DONE, INBOX_FAILED = "new", "claimed", "done", "failed"
# outbox.status: OUTBOX_* of bot.platform.messages (the web chat reads them too)
# outbox.kind of an announcement's post on one channel (sent with the adapter's `publish`)
OUTBOX_KIND_ANNOUNCEMENT = "announcement"
# ticket.status (table escalation). "undeliverable": answered, but the platform no longer lets
# the answer reach the citizen (its reply window closed and it has no fallback); operators must
# act on it.
TICKET_OPEN, TICKET_ANSWERED, TICKET_CLOSED = "open", "answered", "closed"
TICKET_UNDELIVERABLE = "undeliverable"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as timezone-aware UTC on every database.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones and would hand back naive values
    (and compare text), so values are stored there as naive UTC and made aware again on reading.
    Naive values passed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kwargs))


class InboxMessage(SQLModel, table=True):
    """A message as received: stored before the platform gets its 200."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "platform_id", name="uq_inbox_channel_platform_id"),
        Index("ix_inbox_claimable", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=64)
    platform_id: str = Field(max_length=255)
    conversation: str = Field(max_length=255)
    sender: str = Field(max_length=255)
    sender_name: str | None = Field(default=None, max_length=255)
    mention: str | None = Field(default=None, max_length=255)  # see InboundMessage.mention
    text: str
    public: bool = False
    lang_hint: str | None = Field(default=None, max_length=16)
    reply_to: str | None = Field(default=None, max_length=255)
    reply_context: str | None = None  # adapter-defined, handed back with every reply
    received_at: datetime = _when(nullable=False)
    status: str = Field(default=INBOX_NEW, max_length=16)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _when(nullable=True)
    attempts: int = 0
    decision: str | None = Field(default=None, max_length=16)  # answer, clarify, escalate, ...
    entry_id: str | None = Field(default=None, max_length=128)
    processed_at: datetime | None = _when(nullable=True)
    media: str | None = Field(default=None, max_length=16)  # see InboundMessage.media


class OutboxMessage(SQLModel, table=True):
    """A reply waiting to leave, leaving, sent, or dead-lettered."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # A staff reply names the ticket post it answers by the platform's id of that post.
        Index("ix_outbox_posted", "channel", "platform_message_id"),
        # The web chat page reads its conversation's replies by id, from any process.
        Index("ix_outbox_conversation", "channel", "conversation", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int | None = Field(default=None, foreign_key="inbox.id", index=True)
    escalation_id: int | None = Field(default=None, foreign_key="escalation.id")
    channel: str = Field(max_length=64)
    conversation: str = Field(max_length=255)
    recipient: str | None = Field(default=None, max_length=255)
    reply_to: str | None = Field(default=None, max_length=255)
    reply_context: str | None = None  # the question's, for the adapter (reply tokens, threads)
    public: bool = False
    text: str
    kind: str = Field(default="reply", max_length=16)  # reply, ack, answer (a human's), ticket
    status: str = Field(default=OUTBOX_PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _when(nullable=False)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _when(nullable=True)
    last_error: str | None = None
    platform_message_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = _when(nullable=False)
    sent_at: datetime | None = _when(nullable=True)


class Ticket(SQLModel, table=True):
    """A question handed to a human, with the reference code the citizen was given."""

    __tablename__ = "escalation"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, unique=True, index=True)
    status: str = Field(default=TICKET_OPEN, max_length=16, index=True)
    inbox_id: int | None = Field(default=None, foreign_key="inbox.id")
    channel: str = Field(max_length=64)
    conversation: str = Field(max_length=255)
    sender: str = Field(max_length=255)
    sender_name: str | None = Field(default=None, max_length=255)
    public: bool = False
    question: str
    reason: str
    candidates: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    answer: str | None = None
    answered_by: str | None = Field(default=None, max_length=128)
    assigned_to: str | None = Field(default=None, max_length=128)  # who claimed it
    close_reason: str | None = None  # closed without an answer: what the citizen was told
    created_at: datetime = _when(nullable=False)
    answered_at: datetime | None = _when(nullable=True)
    closed_at: datetime | None = _when(nullable=True)
    due_at: datetime | None = _when(nullable=True)  # the answer time promised (working hours)
    # The last moment the platform lets a reply reach the citizen (private replies on WeChat,
    # Weibo, ...); moved on by every follow-up. None: no window.
    reply_deadline: datetime | None = _when(nullable=True)
    reminded_at: datetime | None = _when(nullable=True)
    # When the citizen was last told their message joined this ticket (bot.tickets.conversation).
    acknowledged_at: datetime | None = _when(nullable=True)


# escalation_event.kind
EVENT_OPENED, EVENT_FOLLOW_UP, EVENT_CLAIMED, EVENT_NOTE = "opened", "follow-up", "claimed", "note"
EVENT_ANSWERED, EVENT_CLOSED, EVENT_REMINDED = "answered", "closed", "reminded"
EVENT_UNDELIVERABLE = "undeliverable"


class TicketEvent(SQLModel, table=True):
    """The escalation log: every change of a ticket, with who and when."""

    __tablename__ = "escalation_event"
    __table_args__ = (Index("ix_escalation_event_ticket", "escalation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id")
    at: datetime = _when(nullable=False)
    kind: str = Field(max_length=16)
    actor: str | None = Field(default=None, max_length=128)  # staff member, "citizen", "civicdesk"
    channel: str | None = Field(default=None, max_length=64)  # where it happened
    detail: str | None = None


class ConversationState(SQLModel, table=True):
    """Per-conversation state: the options a clarifying question offered."""

    __tablename__ = "conversation_state"
    # Questions nobody answered are pruned by expiry (bot.storage.store), so that lookup is indexed.
    __table_args__ = (Index("ix_conversation_state_expires", "expires_at"),)

    channel: str = Field(primary_key=True, max_length=64)
    conversation: str = Field(primary_key=True, max_length=255)
    pending_options: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    pending_lang: str | None = Field(default=None, max_length=8)
    expires_at: datetime | None = _when(nullable=True)


class PollCursor(SQLModel, table=True):
    """Where a polling channel's next poll starts (platforms without push)."""

    __tablename__ = "poll_cursor"

    channel: str = Field(primary_key=True, max_length=64)
    cursor: str
    updated_at: datetime = _when(nullable=False)


class Operator(SQLModel, table=True):
    """An account that signs in to the /admin pages (`civicdesk users add`)."""

    __tablename__ = "operator"

    name: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=255)  # bot.admin.passwords: scrypt, salted
    created_at: datetime = _when(nullable=False)


class AnnouncementRecord(SQLModel, table=True):
    """An announcement as written once (`civicdesk publish`, /admin/announcements)."""

    __tablename__ = "announcement"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=255)
    bodies: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON))  # [lang, text]
    link: str = Field(max_length=2048)
    image: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    image_type: str | None = Field(default=None, max_length=64)
    publish_at: datetime = _when(nullable=False)
    created_at: datetime = _when(nullable=False)
    created_by: str | None = Field(default=None, max_length=128)  # operator, or "cli"


class AnnouncementPost(SQLModel, table=True):
    """One announcement's post on one channel: the outbox row that sends it (its id is the
    idempotency key) and, once posted, the platform's id and public link of the post."""

    __tablename__ = "announcement_post"
    __table_args__ = (
        UniqueConstraint("announcement_id", "channel", name="uq_announcement_post_channel"),
        UniqueConstraint("outbox_id", name="uq_announcement_post_outbox_id"),
        # Replies under a post name it by the platform's id: found by (channel, platform_id).
        Index("ix_announcement_post_platform", "channel", "platform_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    channel: str = Field(max_length=64)
    outbox_id: int = Field(foreign_key="outbox.id")
    text: str
    text_count: int
    text_limit: int
    platform_id: str | None = Field(default=None, max_length=255)
    url: str | None = Field(default=None, max_length=2048)
    posted_at: datetime | None = _when(nullable=True)


# Rows as the workers read them: plain frozen dataclasses, because building a SQLModel table
# object costs about 50 µs (SQLAlchemy instrumentation) against 2 µs for these, twice per message.
# tests/test_store.py checks that their fields are exactly the tables' columns.


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    channel: str
    platform_id: str
    conversation: str
    sender: str
    sender_name: str | None
    mention: str | None
    text: str
    public: bool
    lang_hint: str | None
    reply_to: str | None
    reply_context: str | None
    received_at: datetime
    status: str
    claimed_by: str | None
    lease_until: datetime | None
    attempts: int
    decision: str | None
    entry_id: str | None
    processed_at: datetime | None
    media: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    inbox_id: int | None
    escalation_id: int | None
    channel: str
    conversation: str
    recipient: str | None
    reply_to: str | None
    reply_context: str | None
    public: bool
    text: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    last_error: str | None
    platform_message_id: str | None
    created_at: datetime
    sent_at: datetime | None


# Core handles on the tables, for the statements in bot.storage.store*: typed, and no ORM session
# needed.
INBOX = SQLModel.metadata.tables["inbox"]
OUTBOX = SQLModel.metadata.tables["outbox"]
TICKET = SQLModel.metadata.tables["escalation"]
CONVERSATION_STATE = SQLModel.metadata.tables["conversation_state"]
POLL_CURSOR = SQLModel.metadata.tables["poll_cursor"]
TICKET_EVENT = SQLModel.metadata.tables["escalation_event"]
OPERATOR = SQLModel.metadata.tables["operator"]
ANNOUNCEMENT = SQLModel.metadata.tables["announcement"]
ANNOUNCEMENT_POST = SQLModel.metadata.tables["announcement_post"]
