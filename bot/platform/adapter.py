"""The adapter contract: what the core needs to know about a platform, and nothing else.

Adapters never see aiohttp's server types: the web layer hands them a `RawRequest` that keeps the
raw body (signatures are computed over bytes), and they answer handshakes with an `HttpReply`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.platform.lengths import (
    mastodon_length,
    plain_length,
    utf8_bytes_length,
    utf16_length,
    weibo_length,
    x_length,
)
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult


@dataclass(frozen=True)
class TextRules:
    """A reply fits a channel when `count(text) <= limit`."""

    limit: int
    count: Callable[[str], int] = plain_length
    name: str = "plain"


TEXT_RULES: dict[str, TextRules] = {
    "weibo": TextRules(140, weibo_length, "weibo"),
    "x": TextRules(280, x_length, "x"),
    "mastodon": TextRules(500, mastodon_length, "mastodon"),
    "telegram": TextRules(4096, name="telegram"),
    "slack": TextRules(4000, name="slack"),
    # LINE counts a text message's 5000 in UTF-16 code units: an emoji such as 🍎 counts 2.
    "line": TextRules(5000, utf16_length, "line"),
    # The documented limit of a passive reply is 2048 bytes (PLATFORMS.md ⚠️), not characters:
    # count bytes rather than guess a character limit (2048 bytes ≈ 680 汉字).
    "wechat": TextRules(2048, utf8_bytes_length, "wechat"),
    # The real bound is 65 536 bytes for the whole event; 4000 keeps a reply readable.
    "matrix": TextRules(4000, name="matrix"),
    "email": TextRules(20000, name="email"),
    "webchat": TextRules(2000, name="webchat"),
    "webhook": TextRules(4000, name="webhook"),
    "messenger": TextRules(2000, name="messenger"),
    "whatsapp": TextRules(4096, name="whatsapp"),
}

DEFAULT_TEXT_RULES = TextRules(4000)
"""For a channel of unknown platform: generous, but still a bound."""


def rules_for(channel: str) -> TextRules:
    """The rules for a configured channel name.

    A channel is named after its platform, optionally with a suffix ("telegram-staff"), so the
    part before the first "-" or "_" picks the platform when the whole name is not known.
    """
    key = channel.strip().lower()
    if key in TEXT_RULES:
        return TEXT_RULES[key]
    platform = key.replace("_", "-").split("-", 1)[0]
    return TEXT_RULES.get(platform, DEFAULT_TEXT_RULES)


class Unauthorized(Exception):
    """The request's signature or token is wrong or stale: 401 (or the `status` the platform's
    spec asks for, such as Matrix's 403 for a wrong hs_token), and nothing of it is stored."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class BadRequest(Exception):
    """The request is malformed for this platform: 400 with the message, nothing stored."""


class RetryLater(Exception):
    """The request may hold a citizen's message that cannot be classified yet (a Matrix room
    whose membership the homeserver did not tell): 503 with `Retry-After`, nothing stored, so
    the platform delivers it again instead of the message being acknowledged and lost."""

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive lookups: use `header()`
    body: bytes
    remote: str | None = None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)  # aiohttp's headers look up case-insensitively
        if value is not None:
            return value
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class HttpReply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)


class Adapter(Protocol):
    """One configured channel of one platform."""

    name: str  # the configured channel name
    text_rules: TextRules

    def verify(self, raw: RawRequest) -> None:
        """Raise Unauthorized unless the request really comes from the platform."""

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        """Answer a GET challenge or URL verification; None when this is no handshake."""

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        """The messages in a verified request; events this channel does not serve are skipped.
        Raise BadRequest for a malformed body."""

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        """What the platform expects once the messages are stored (often an empty 200)."""

    async def send(self, msg: OutboundMessage) -> SendResult:
        """Deliver one reply; the only network call an adapter makes."""

    async def close(self) -> None:
        """Release what the adapter holds (HTTP sessions)."""


@runtime_checkable
class Preparer(Protocol):
    """An adapter that must ask its platform something before it can classify a verified
    request (a Matrix application service: the size of a room it has not seen since it
    started). The web layer awaits `prepare` between `verify` and `parse`."""

    async def prepare(self, raw: RawRequest) -> None:
        """Look up what `parse(raw)` will need; never raises for a failed lookup (`parse` then
        raises RetryLater when it cannot do without it)."""
        ...


@dataclass(frozen=True)
class PollResult:
    """What one poll brought: new messages, and the cursor to start from next time.

    The poll runner stores `messages` first and only then saves `cursor`; a crash in between
    fetches the same messages again and the inbox's dedup key drops them, so a restart neither
    skips nor repeats. `cursor=None` keeps the previous cursor."""

    messages: list[InboundMessage]
    cursor: str | None = None
    # Seconds until the next poll when the platform asked for it (rate limit); None: the interval.
    retry_after: float | None = None


class PollFailed(Exception):
    """A poll could not be made (network, 5xx, auth): logged with this message, tried again at
    the next interval (or after `retry_after`); the cursor does not move."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class Poller(Protocol):
    """An adapter that fetches messages, for platforms without push for this account type
    (Weibo mentions, Mastodon notifications, Matrix /sync, IMAP). It is an Adapter too: its
    replies leave through `send`. The runner in `bot.gateway.polling` calls `poll` every
    `poll_interval` seconds, one call at a time per channel."""

    name: str
    poll_interval: float

    async def poll(self, cursor: str | None) -> PollResult:
        """Messages after `cursor` (None: first run; start from now rather than replaying the
        account's whole history). Raise PollFailed for a poll that could not be made."""


@runtime_checkable
class StaffDirectory(Protocol):
    """A staff channel whose events name their author by id only (Slack's message events often
    carry no profile): the name to record as who answered, looked up on the platform."""

    async def staff_name(self, user: str) -> str | None:
        """The name the platform shows for `user`; None when it cannot say (never raises)."""
        ...


@runtime_checkable
class Publisher(Protocol):
    """An adapter that can post the account's own messages (announcements), not only replies."""

    async def publish(self, publication: Publication) -> SendResult:
        """Post `publication`; SendResult.platform_id and .url name the post when it went out."""
        ...
