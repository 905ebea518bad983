"""The generic signed JSON channel: integrate anything that can POST JSON and receive it.

Both directions are signed the same way, with the channel's shared secret:

    X-Civicdesk-Timestamp: <unix seconds>
    X-Civicdesk-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The timestamp is part of the signed text, so a captured request cannot be replayed later with a
fresh timestamp; requests outside the replay window are refused, and a replay inside it is
deduplicated on the message's `id`. Replies carry `Idempotency-Key: <outbox id>`: a reply sent
again after a crash between "sent" and "marked sent" has the same key, and the receiver drops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from adapters.http import SessionSlot, check_fresh, hmac_sha256_hex, post_json, same
from adapters.payload import json_object, optional_string, required_string
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret, seconds
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

SIGNATURE_HEADER = "X-Civicdesk-Signature"
TIMESTAMP_HEADER = "X-Civicdesk-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "sha256="
MAX_ID = 255  # the inbox's column widths
MAX_TEXT = 10_000
EXPECTED = 'an object like {"id": ..., "conversation": ..., "text": ...}'


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Civicdesk-Signature value for a body sent at `timestamp` (unix seconds, as text)."""
    return SCHEME + hmac_sha256_hex(secret, timestamp.encode("ascii") + b"." + body)


def signed_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be a full http:// or https:// address")
    return value


SETTINGS = (
    ChannelSetting(
        "SECRET",
        "Shared secret for the HMAC-SHA256 signatures, both directions (a long random string).",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "OUTBOUND_URL",
        "Where replies are POSTed as signed JSON (http:// or https:// address).",
        required=True,
        parse=_url,
    ),
    ChannelSetting(
        "REPLAY_WINDOW",
        "Seconds a request's X-Civicdesk-Timestamp may differ from the server's clock.",
        default="300",
        parse=seconds,
    ),
    ChannelSetting(
        "TIMEOUT", "Seconds to wait for the receiver of a reply.", default="10", parse=seconds
    ),
)


class WebhookAdapter:
    """One channel of the generic webhook adapter."""

    text_rules = TEXT_RULES["webhook"]

    def __init__(
        self,
        name: str,
        secret: Secret,
        outbound_url: str,
        *,
        replay_window: float = 300.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._secret = secret
        self.outbound_url = outbound_url
        self.replay_window = replay_window
        self.timeout = timeout
        self._clock = clock
        self._http = SessionSlot()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WebhookAdapter:
        return cls(
            config.name,
            config.secret("SECRET"),
            config.get("OUTBOUND_URL"),
            replay_window=config.get("REPLAY_WINDOW"),
            timeout=config.get("TIMEOUT"),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None  # no challenge: the signature on every request is the proof

    def verify(self, raw: RawRequest) -> None:
        timestamp = raw.header(TIMESTAMP_HEADER)
        if not timestamp:
            raise Unauthorized(f"missing {TIMESTAMP_HEADER} header: send the unix time in seconds")
        check_fresh(
            timestamp,
            self._clock(),
            self.replay_window,
            name=TIMESTAMP_HEADER,
            fix="sign with the current time and check the clock",
        )
        signature = raw.header(SIGNATURE_HEADER)
        if not signature or not signature.startswith(SCHEME):
            raise Unauthorized(f"missing {SIGNATURE_HEADER} header: send {SCHEME}<hex HMAC-SHA256>")
        expected = sign(self._secret.reveal(), timestamp.strip(), raw.body)
        if not same(signature.strip().lower(), expected):
            raise Unauthorized(
                f"{SIGNATURE_HEADER} does not match: HMAC-SHA256 the text "
                "'<timestamp>.<raw body>' with the channel's secret"
            )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, EXPECTED)
        received = datetime.fromtimestamp(self._clock(), UTC)
        conversation = required_string(data, "conversation", limit=MAX_ID)
        sender = optional_string(data, "sender", limit=MAX_ID) or conversation
        sender_name = optional_string(data, "sender_name", limit=MAX_ID)
        return [
            InboundMessage(
                channel=self.name,
                platform_id=required_string(data, "id", limit=MAX_ID),
                conversation=conversation,
                sender=sender,
                sender_name=sender_name,
                mention=sender_name or sender,  # public replies start "@<name> "
                text=required_string(data, "text", limit=MAX_TEXT, allow_empty=True),
                public=_flag(data, "public"),
                lang_hint=optional_string(data, "lang", limit=16),
                reply_to=optional_string(data, "reply_to", limit=MAX_ID),
                received_at=received,
                raw=data,
            )
        ]

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b'{"ok":true}', "application/json")

    async def send(self, msg: OutboundMessage) -> SendResult:
        payload = {
            "id": msg.id,
            "channel": msg.channel,
            "conversation": msg.conversation,
            "recipient": msg.recipient,
            "text": msg.text,
            "reply_to": msg.reply_to,
            "public": msg.public,
        }

        def headers(body: bytes) -> Mapping[str, str]:
            signed = signed_headers(self._secret.reveal(), body, self._clock())
            return {**signed, IDEMPOTENCY_HEADER: str(msg.id), "User-Agent": "civicdesk"}

        result = await post_json(
            self._http.session, self.outbound_url, payload, headers=headers, timeout=self.timeout
        )
        # The receiver knows this reply by its id; a reply to it (a staff member answering a
        # ticket) names it in `reply_to`, so that is the id of the message sent.
        return SendResult.sent(str(msg.id)) if result.ok else result

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise BadRequest(f'"{key}" must be true or false')
    return value


SPEC = AdapterSpec(
    name="webhook",
    summary="Generic signed JSON in and out (HMAC-SHA256 with a timestamp).",
    settings=SETTINGS,
    build=WebhookAdapter.from_config,
)
