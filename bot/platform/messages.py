"""Platform-neutral messages: what adapters produce and consume. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboundMessage:
    """One thing a citizen (or a staff member) said to the account."""

    channel: str  # configured channel name, e.g. "weibo" or "telegram-staff"
    platform_id: str  # the platform's own id of this event: the dedup key (always a string)
    conversation: str  # where a reply goes (chat id, thread, status id, e-mail thread)
    sender: str  # platform user id
    text: str
    public: bool  # a public mention or comment (True) or a private message (False)
    sender_name: str | None = None  # for display only
    # How a public reply addresses the asker, written as the platform writes a mention
    # ("@alice", "@alice@example.social", "<@U024BE7LH>"); None: the reply does not address
    # anyone (it quotes the question instead, as on Telegram). Private replies never use it.
    mention: str | None = None
    lang_hint: str | None = None  # from the platform, if it says
    reply_to: str | None = None  # the platform id this message answers (threads, staff replies)
    # Adapter-defined text (usually compact JSON) that the reply needs and the platform gave only
    # here: LINE's reply token, a Weibo comment's status id, an e-mail's Message-ID and subject.
    # Stored with the message and handed back, untouched, on every OutboundMessage answering it.
    reply_context: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    raw: Mapping[str, Any] = field(default_factory=dict)  # what the platform sent, for the log
    # What came besides (or instead of) text, as one of MEDIA_KINDS; None: text only. A photo
    # with a caption has the caption as `text` and "image" here; a sticker alone has text "".
    media: str | None = None


# The kinds of non-text content adapters report in InboundMessage.media. "unsupported": the
# platform said it could not show the citizen's message (WeChat's placeholder, for one).
MEDIA_KINDS = frozenset(
    {"image", "sticker", "audio", "video", "file", "location", "contact", "unsupported"}
)


# Where a reply is on its way out (the outbox's status), as a reader of replies sees it.
OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_DEAD = "pending", "sending", "sent", "dead"


@dataclass(frozen=True)
class OutboundMessage:
    """One reply to deliver through a channel's adapter."""

    id: int  # the outbox row id: also the idempotency key a receiver may deduplicate on
    channel: str
    conversation: str
    text: str
    public: bool
    recipient: str | None = None  # platform user id, where the platform addresses users
    reply_to: str | None = None  # platform id of the message being answered
    reply_context: str | None = None  # the answered InboundMessage's reply_context
    attempt: int = 1


@dataclass(frozen=True)
class SendResult:
    """What a delivery attempt came to; adapters classify errors, the worker acts on them."""

    ok: bool
    platform_id: str | None = None  # the platform's id of the sent message
    retryable: bool = True  # False: retrying cannot help (bad recipient, window closed, ...)
    retry_after: float | None = None  # seconds, when the platform said so
    error: str | None = None
    url: str | None = None  # a public link to the sent message, where the platform gives one

    @classmethod
    def sent(cls, platform_id: str | None = None, *, url: str | None = None) -> SendResult:
        return cls(ok=True, platform_id=platform_id, url=url)

    @classmethod
    def failed(
        cls, error: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> SendResult:
        return cls(ok=False, retryable=retryable, retry_after=retry_after, error=error)


@dataclass(frozen=True)
class Publication:
    """One announcement, already fitted to one channel, to post as the account's own message."""

    id: int  # the outbox row id: the idempotency key (a retried publish must not post twice)
    channel: str
    text: str  # fitted to the platform's length rules, link included where it fits
    target: str | None = None  # where to post when the channel has several places (a room, a list)
    link: str | None = None
    image: bytes | None = None  # posted where the platform allows, else the text alone
    image_type: str | None = None  # e.g. "image/png"
    attempt: int = 1
    # An earlier attempt ended without a recorded result (the process died or lost its lease
    # mid-send): the platform may have the post already. An adapter whose platform keeps an
    # idempotency key (Mastodon's Idempotency-Key, Matrix's transaction id) just sends again;
    # one without must not guess: it looks the post up, or refuses (a dead letter for staff to
    # check) rather than post twice.
    in_doubt: bool = False
