"""The web chat: the page at /chat where anyone can try the bot, on by default.

The page POSTs a question as JSON to /webhooks/<channel> like any platform would, so it takes the
same path through the inbox and the workers. Workers answer asynchronously, so `send` cannot write
into the page's HTTP response: the page long-polls `GET /chat/api/replies?conversation=...&after=
<id>` for the replies after the last it saw, numbered by their outbox ids.

The outbox is where the replies are read: a reply delivered by another process (the Procfile's
`civicdesk work`, another server behind a load balancer) reaches the page too, found by a look at
the database every `LOOK_EVERY` seconds while a poll waits. A reply this process delivers is
kept a while in its mailbox and wakes the waiting poll at once, before its row is marked sent.
Replies are shown in order: a reply still being sent holds back the ones after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.payload import json_object
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest
from bot.platform.messages import (
    OUTBOX_DEAD,
    OUTBOX_SENT,
    InboundMessage,
    OutboundMessage,
    SendResult,
)

MAX_QUESTION = 2000  # characters: a question, not an essay
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # conversation and message ids made by the page


LOOK_EVERY = 0.5  # seconds between looks at the outbox while a poll waits


@dataclass(frozen=True)
class ChatReply:
    seq: int  # the reply's outbox id: the page asks for replies after the last it saw
    text: str
    reply_to: str | None
    at: str  # ISO 8601, UTC

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "text": self.text, "reply_to": self.reply_to, "at": self.at}


@dataclass
class _Box:
    replies: dict[int, ChatReply]
    touched: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Mailbox:
    """Replies this process delivered, per conversation (the outbox marks them sent a moment
    later), and the wake-up of the polls waiting for them.

    Bounded: at most `keep` replies per conversation and `max_conversations` conversations (the
    least recently used go first), each dropped `ttl` seconds after it was last used.
    """

    def __init__(
        self,
        *,
        keep: int = 50,
        ttl: float = 3600.0,
        max_conversations: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._boxes: OrderedDict[str, _Box] = OrderedDict()
        self._keep, self._ttl, self._max = keep, ttl, max_conversations
        self._clock = clock
        self.closed = False

    def __len__(self) -> int:
        return len(self._boxes)

    def put(self, conversation: str, reply: ChatReply) -> None:
        box = self._box(conversation)
        box.replies[reply.seq] = reply
        while len(box.replies) > self._keep:
            del box.replies[min(box.replies)]
        # Wake every waiter of this conversation, and give later waiters a fresh event.
        box.changed.set()
        box.changed = asyncio.Event()

    def delivered(self, conversation: str, after: int) -> dict[int, ChatReply]:
        """The replies delivered here after `after`, by id."""
        box = self._box(conversation)
        return {seq: reply for seq, reply in box.replies.items() if seq > after}

    async def wait(self, conversation: str, timeout: float) -> None:
        """Until a reply is put in this conversation, the mailbox closes, or `timeout`."""
        changed = self._box(conversation).changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def close(self) -> None:
        """Release every waiter (the server is stopping)."""
        self.closed = True
        for box in self._boxes.values():
            box.changed.set()

    def _box(self, conversation: str) -> _Box:
        now = self._clock()
        box = self._boxes.pop(conversation, None)
        while self._boxes:
            oldest = next(iter(self._boxes.values()))
            if oldest.touched >= now - self._ttl and len(self._boxes) < self._max:
                break
            self._boxes.popitem(last=False)[1].changed.set()
        if box is None:
            box = _Box({}, now)
            if self.closed:
                box.changed.set()
        box.touched = now
        self._boxes[conversation] = box  # the most recently used goes last
        return box


def shown(rows: Sequence[Any], here: Mapping[int, ChatReply]) -> list[ChatReply]:
    """What the page may show of a conversation's outbox rows after its last id (oldest first):
    each reply delivered (by this process: `here`, or marked sent), up to the first one still
    on its way; dead letters are skipped, they will not come."""
    replies: list[ChatReply] = []
    for row in rows:
        if row.id in here:
            replies.append(here[row.id])
        elif row.status == OUTBOX_SENT:
            sent = row.sent_at.replace(tzinfo=row.sent_at.tzinfo or UTC) if row.sent_at else None
            at = sent.isoformat(timespec="seconds") if sent else ""
            replies.append(ChatReply(row.id, row.text, row.reply_to, at))
        elif row.status != OUTBOX_DEAD:
            break
    return replies


class WebchatAdapter:
    """The web chat channel: no signature (anyone may try it), replies through the mailbox."""

    text_rules = TEXT_RULES["webchat"]

    def __init__(self, name: str = "webchat", mailbox: Mailbox | None = None) -> None:
        self.name = name
        self.mailbox = mailbox or Mailbox()
        self._outbox: Callable[[str, int], Awaitable[list[Any]]] | None = None

    def read_outbox(self, reader: Callable[[str, int], Awaitable[list[Any]]]) -> None:
        """Where to read a conversation's replies (`Store.conversation_replies` of this
        channel): without it, only replies delivered by this process reach the page."""
        self._outbox = reader

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WebchatAdapter:
        return cls(config.name)

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None

    def verify(self, raw: RawRequest) -> None:
        """Open by design: the try-it channel. Leave it out of CIVICDESK_CHANNELS to close it."""

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        # Requiring a JSON content type makes a browser on another site ask first (a CORS
        # preflight, which nothing here answers), so other sites cannot post in a visitor's name.
        content_type = (raw.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise BadRequest("send the question as JSON with Content-Type: application/json")
        data = json_object(raw.body, '{"id": ..., "conversation": ..., "text": ...}')
        message_id = _token(data, "id")
        conversation = _token(data, "conversation")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest('"text" must be the question, a non-empty string')
        if len(text) > MAX_QUESTION:
            raise BadRequest(f"the question is {len(text)} characters long: at most {MAX_QUESTION}")
        lang = data.get("lang")
        return [
            InboundMessage(
                channel=self.name,
                platform_id=message_id,
                conversation=conversation,
                sender=conversation,
                text=text,
                public=False,
                lang_hint=lang if lang in ("zh", "en") else None,
                raw={"id": message_id, "conversation": conversation},
            )
        ]

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b'{"ok":true}', "application/json")

    async def send(self, msg: OutboundMessage) -> SendResult:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self.mailbox.put(msg.conversation, ChatReply(msg.id, msg.text, msg.reply_to, at))
        return SendResult.sent(f"webchat-{msg.id}")

    async def replies(self, conversation: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """For the page's long poll: replies after `after`, waiting up to `timeout` seconds."""
        if not _TOKEN.match(conversation):
            raise BadRequest("conversation must be 8-64 letters, digits, '-' or '_'")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self._delivered(conversation, after)
            left = deadline - loop.time()
            if found or left <= 0 or self.mailbox.closed:
                return [reply.as_json() for reply in found]
            await self.mailbox.wait(conversation, min(left, LOOK_EVERY))

    async def _delivered(self, conversation: str, after: int) -> list[ChatReply]:
        here = self.mailbox.delivered(conversation, after)
        if self._outbox is None:
            return [here[seq] for seq in sorted(here)]
        return shown(await self._outbox(conversation, after), here)

    def stop_waiting(self) -> None:
        """The server is stopping: answer every waiting poll now rather than hold shutdown."""
        self.mailbox.close()

    async def close(self) -> None:
        self.mailbox.close()


def _token(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise BadRequest(f'"{key}" must be 8-64 letters, digits, "-" or "_"')
    return value


SETTINGS: tuple[ChannelSetting, ...] = ()

SPEC = AdapterSpec(
    name="webchat",
    summary="The try-it page at /chat (open to anyone; replies by long poll).",
    settings=SETTINGS,
    build=WebchatAdapter.from_config,
)
