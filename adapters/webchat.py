"""The web chat: the page at /chat where anyone can try the bot, on by default.

The page POSTs a question as JSON to /webhooks/<channel> like any platform would, so it takes the
same path through the inbox and the workers. Workers answer asynchronously, so `send` cannot write
into the page's HTTP response: it drops the reply into an in-process mailbox, and the page
long-polls `GET /chat/api/replies?conversation=...&after=<seq>` for it.

The mailbox lives in the process that delivers the reply. With several processes behind a load
balancer, a reply may be delivered by another process than the one the page polls: route /chat and
/webhooks/webchat to one process (sticky sessions) or leave webchat to a single-process set-up.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.payload import json_object
from bot.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest
from bot.config import AdapterSpec, ChannelConfig, ChannelSetting
from bot.messages import InboundMessage, OutboundMessage, SendResult

MAX_QUESTION = 2000  # characters: a question, not an essay
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # conversation and message ids made by the page


@dataclass(frozen=True)
class ChatReply:
    seq: int  # increasing across the mailbox: the page asks for replies after the last it saw
    text: str
    reply_to: str | None
    at: str  # ISO 8601, UTC

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "text": self.text, "reply_to": self.reply_to, "at": self.at}


@dataclass
class _Box:
    replies: deque[ChatReply]
    touched: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Mailbox:
    """Replies per conversation, kept for a while so that a page that reconnects still gets them.

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
        self._seq = 0
        self._keep, self._ttl, self._max = keep, ttl, max_conversations
        self._clock = clock
        self._closed = False

    def __len__(self) -> int:
        return len(self._boxes)

    def put(self, conversation: str, text: str, reply_to: str | None = None) -> ChatReply:
        self._seq += 1
        at = datetime.now(UTC).isoformat(timespec="seconds")
        reply = ChatReply(self._seq, text, reply_to, at)
        box = self._box(conversation)
        box.replies.append(reply)
        # Wake every waiter of this conversation, and give later waiters a fresh event.
        box.changed.set()
        box.changed = asyncio.Event()
        return reply

    async def wait(self, conversation: str, after: int, timeout: float) -> list[ChatReply]:
        """The replies after `after`, waiting up to `timeout` seconds for one if there is none."""
        box = self._box(conversation)
        newer = [r for r in box.replies if r.seq > after]
        if newer or self._closed:
            return newer
        changed = box.changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return []
        return [r for r in box.replies if r.seq > after]

    def close(self) -> None:
        """Release every waiter (the server is stopping)."""
        self._closed = True
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
            box = _Box(deque(maxlen=self._keep), now)
            if self._closed:
                box.changed.set()
        box.touched = now
        self._boxes[conversation] = box  # the most recently used goes last
        return box


class WebchatAdapter:
    """The web chat channel: no signature (anyone may try it), replies through the mailbox."""

    text_rules = TEXT_RULES["webchat"]

    def __init__(self, name: str = "webchat", mailbox: Mailbox | None = None) -> None:
        self.name = name
        self.mailbox = mailbox or Mailbox()

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
        reply = self.mailbox.put(msg.conversation, msg.text, msg.reply_to)
        return SendResult.sent(f"webchat-{reply.seq}")

    async def replies(self, conversation: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """For the page's long poll: replies after `after`, waiting up to `timeout` seconds."""
        if not _TOKEN.match(conversation):
            raise BadRequest("conversation must be 8-64 letters, digits, '-' or '_'")
        return [r.as_json() for r in await self.mailbox.wait(conversation, after, timeout)]

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
