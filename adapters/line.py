"""LINE Messaging API: webhooks in, replies by reply token while it lasts, by push after that.

Every webhook is signed: `X-Line-Signature = base64(HMAC-SHA256(channel secret, body))`. The
console's "Verify" button posts `{"events": []}`, which is answered 200 and stores nothing. Text
messages in a 1:1 chat are private questions; in a group or multi-person chat (room) they are
public, and by default only those that mention the account are answered (GROUP_MESSAGES). The
dedup key is `webhookEventId`, the same in a redelivery.

A reply token is free but single-use, and LINE guarantees it only within one minute of the
webhook's arrival, so it is used for REPLY_TOKEN_SECONDS after that; a later reply (a staff
answer, a retry) or a token LINE calls invalid goes by push to the chat, which counts against
the plan's monthly quota. Push carries `X-Line-Retry-Key`, derived from the outbox row, so a push
retried after a lost answer is delivered once (LINE answers the repeat with 409).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from adapters.http import (
    JsonReply,
    SessionSlot,
    call_json,
    classify_reply,
    hmac_sha256_base64,
    same,
)
from adapters.line_mentions import (
    addressing_mentions,
    reply_message,
    self_mentions,
    without_mentions,
)
from adapters.payload import compact, json_object, load_object, optional_string, required_string
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret, seconds
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

log = logging.getLogger("civicdesk.line")

API_BASE = "https://api.line.me"
SIGNATURE_HEADER = "X-Line-Signature"
RETRY_KEY_HEADER = "X-Line-Retry-Key"
REPLY_PATH = "/v2/bot/message/reply"
PUSH_PATH = "/v2/bot/message/push"
# LINE: "Reply tokens must be used within one minute after receiving the webhook." A margin for
# the time between our clock reading and LINE's receipt of the reply.
REPLY_TOKEN_SECONDS = 50.0
INVALID_REPLY_TOKEN = "invalid reply token"  # noqa: S105 - LINE's error text, not a secret
_RETRY_KEYS = uuid.UUID("a53af009-55e1-4323-91a1-1adc58a86d67")  # namespace of our retry keys
MAX_ID = 255
MAX_TEXT = 10_000
GROUP_MODES = ("mentions", "all")
# LINE's message types (Messaging API reference, "Message event") → InboundMessage.media.
MEDIA_TYPES = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "file",
    "location": "location",
    "sticker": "sticker",
}
CHATS = {"user": ("userId", False), "group": ("groupId", True), "room": ("roomId", True)}


def _group_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in GROUP_MODES:
        raise ValueError("must be mentions or all")
    return mode


SETTINGS = (
    ChannelSetting(
        "CHANNEL_SECRET",
        "The channel secret (Basic settings tab); LINE signs every webhook with it.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "CHANNEL_ACCESS_TOKEN",
        "A channel access token (Messaging API tab, long-lived); replies are sent with it.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "GROUP_MESSAGES",
        "Which messages in group chats are answered: mentions (those mentioning the account) "
        "or all.",
        default="mentions",
        parse=_group_mode,
    ),
    ChannelSetting(
        "TIMEOUT", "Seconds to wait for LINE's API to answer.", default="10", parse=seconds
    ),
)


def retry_key(msg: OutboundMessage) -> str:
    """The X-Line-Retry-Key of a reply: the same for every attempt of one outbox row, and
    different for another text or chat even if a new database reuses the row id."""
    return str(uuid.uuid5(_RETRY_KEYS, f"{msg.channel}\n{msg.id}\n{msg.conversation}\n{msg.text}"))


class LineAdapter:
    """One LINE Official Account (a Messaging API channel)."""

    text_rules = TEXT_RULES["line"]

    def __init__(
        self,
        name: str,
        channel_secret: Secret,
        access_token: Secret,
        *,
        group_messages: str = "mentions",
        api_base: str = API_BASE,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._secret = channel_secret
        self._access_token = access_token
        self.group_messages = _group_mode(group_messages)
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self._http = SessionSlot()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> LineAdapter:
        return cls(
            config.name,
            config.secret("CHANNEL_SECRET"),
            config.secret("CHANNEL_ACCESS_TOKEN"),
            group_messages=config.get("GROUP_MESSAGES"),
            api_base=config.api_base or API_BASE,
            timeout=config.get("TIMEOUT"),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    # --- Inbound ---------------------------------------------------------------------------

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None  # the console's Verify is a signed POST without events

    def verify(self, raw: RawRequest) -> None:
        signature = raw.header(SIGNATURE_HEADER)
        if not signature:
            raise Unauthorized(f"missing {SIGNATURE_HEADER} header: only LINE may post here")
        expected = hmac_sha256_base64(self._secret.reveal(), raw.body)
        if not same(signature.strip(), expected):
            raise Unauthorized(
                f"{SIGNATURE_HEADER} does not match: check that CHANNEL_SECRET is the channel "
                "secret of this channel (Basic settings tab)"
            )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, 'a LINE webhook: {"destination": ..., "events": [...]}')
        events = data.get("events")
        if not isinstance(events, list):
            raise BadRequest('the body must be a JSON object with an "events" list')
        received = self._clock()
        messages = []
        for event in events:
            if not isinstance(event, dict):
                raise BadRequest("each of the events must be a JSON object")
            message = self._message(event, received)
            if message is not None:
                messages.append(message)
        return messages

    def _message(self, event: Mapping[str, Any], received: float) -> InboundMessage | None:
        content, source = event.get("message"), event.get("source")
        if (
            event.get("type") != "message"
            or event.get("mode", "active") != "active"  # standby: another module answers
            or not isinstance(content, dict)
            or not isinstance(source, dict)
            or not isinstance(source.get("type"), str)
            or source["type"] not in CHATS
        ):
            return None  # follow, join, postback, unsend, read receipts...: see the docs
        key, public = CHATS[source["type"]]
        conversation = required_string(source, key, limit=MAX_ID)
        kind = content.get("type")
        if kind == "text":
            text = required_string(content, "text", limit=MAX_TEXT, allow_empty=True)
            media = None
        else:
            # A sticker, image, video, audio, file, location (or a kind newer than this
            # adapter): a message all the same, which the bot answers that it reads text only.
            text, media = "", MEDIA_TYPES.get(str(kind), "unsupported")
        if public and self.group_messages == "mentions" and not self_mentions(content):
            return None
        text = without_mentions(text, addressing_mentions(content))
        context = {
            "replyToken": event.get("replyToken"),
            "quoteToken": content.get("quoteToken"),
            "received": int(received * 1000),  # our clock: the token's minute starts here
            "timestamp": event.get("timestamp"),  # LINE's event time (kept in a redelivery)
        }
        return InboundMessage(
            channel=self.name,
            platform_id=required_string(event, "webhookEventId", limit=MAX_ID),
            conversation=conversation,
            sender=optional_string(source, "userId", limit=MAX_ID) or conversation,
            text=text,
            public=public,
            mention=None,  # the reply mentions the asker itself, as LINE does: see reply_message
            reply_to=optional_string(content, "quotedMessageId", limit=MAX_ID),
            reply_context=compact(context),
            received_at=datetime.fromtimestamp(received, UTC),
            raw=dict(event),
            media=media,
        )

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"{}", "application/json")

    # --- Replies -----------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        context = load_object(msg.reply_context)
        quote = context.get("quoteToken")
        text = reply_message(
            msg.text,
            public=msg.public,
            recipient=msg.recipient,
            quote=quote if isinstance(quote, str) else None,
        )
        token, received = context.get("replyToken"), context.get("received")
        if (
            isinstance(token, str)
            and isinstance(received, int)
            and self._clock() * 1000 - received < REPLY_TOKEN_SECONDS * 1000
        ):
            answer = await self._call(REPLY_PATH, {"replyToken": token, "messages": [text]})
            if isinstance(answer, SendResult) or not _invalid_reply_token(answer):
                return self._result(answer)
            log.info("channel=%s outbox=%s reply token refused: pushing", self.name, msg.id)
        payload = {"to": msg.conversation, "messages": [text]}
        answer = await self._call(PUSH_PATH, payload, {RETRY_KEY_HEADER: retry_key(msg)})
        if isinstance(answer, JsonReply) and answer.status == 409:
            # The same retry key was accepted before: that attempt's answer was lost.
            return SendResult.sent(answer.headers.get("X-Line-Accepted-Request-Id"))
        return self._result(answer)

    async def _call(
        self, path: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> JsonReply | SendResult:
        token = self._access_token.reveal()
        return await call_json(
            self._http.session,
            f"{self.api_base}{path}",
            payload,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=self.timeout,
            secrets=[token],
        )

    def _result(self, answer: JsonReply | SendResult) -> SendResult:
        if isinstance(answer, SendResult):
            return answer
        if 200 <= answer.status < 300:
            return SendResult.sent(_sent_id(answer.data))
        message = _error_message(answer.data)
        if answer.status == 429 and "monthly limit" in message.lower():
            return SendResult.failed(
                "HTTP 429: the plan's monthly message quota is used up (push messages count; "
                "replies within a minute are free)",
                retryable=False,
            )
        if answer.status == 401:
            return SendResult.failed(
                "HTTP 401: the channel access token is wrong or expired: set CHANNEL_ACCESS_TOKEN",
                retryable=False,
            )
        return classify_reply(answer, [self._access_token.reveal()])

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


def _invalid_reply_token(answer: JsonReply | SendResult) -> bool:
    return (
        isinstance(answer, JsonReply)
        and answer.status == 400
        and INVALID_REPLY_TOKEN in _error_message(answer.data).lower()
    )


def _error_message(data: Any) -> str:
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""


def _sent_id(data: Any) -> str | None:
    sent = data.get("sentMessages") if isinstance(data, dict) else None
    if isinstance(sent, list) and sent and isinstance(sent[0], dict) and "id" in sent[0]:
        return str(sent[0]["id"])
    return None


SPEC = AdapterSpec(
    name="line",
    summary="LINE Messaging API: signed webhooks; reply token within the minute, else push.",
    settings=SETTINGS,
    build=LineAdapter.from_config,
    api_base=API_BASE,
)
