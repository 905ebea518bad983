"""Facebook Messenger (a Page's inbox): Meta's webhooks in, the Send API (`/me/messages`) out.

Deliveries are `{"object": "page", "entry": [{"id": PAGE, "time", "messaging": [{"sender":
{"id": PSID}, "recipient": {"id": PAGE}, "timestamp", "message": {"mid", "text"}}]}]}`
(subscription check and signature in `adapters.meta`). Every message is private: a Page's inbox
is 1:1, and the sender's page-scoped id (PSID) is where the reply goes. The dedup key is
`message.mid`, the same when Meta redelivers.

Skipped: the Page's own messages echoed back (`message.is_echo`), delivery and read receipts,
postbacks (button taps of templates civicdesk never sends), reactions, opt-ins, and events of
the handover protocol's standby channel. Attachments without text are stored with their kind
in `InboundMessage.media` (a sticker, a photo, a voice message, a shared location...).

Replies (`messaging_type: RESPONSE`) are allowed within the 24-hour standard messaging window
that the citizen's last message opened (`bot.tickets.handoff.REPLY_WINDOWS` handles a later
staff answer); past it the Send API answers error 10 / 2018278, which is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.http import JsonReply, call_json
from adapters.meta import (
    GRAPH_API_BASE,
    MAX_ID,
    MAX_TEXT,
    GraphError,
    MetaWebhook,
    graph_error,
    graph_result,
    id_string,
    items,
    meta_settings,
)
from adapters.payload import json_object, optional_string
from bot.config.settings import AdapterSpec, ChannelConfig
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

log = logging.getLogger("civicdesk.messenger")

OBJECT = "page"
# Attachment types of the Messenger Platform → MEDIA_KINDS.
ATTACHMENTS = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "file",
    "location": "location",
    "fallback": "unsupported",  # a shared link or something the platform cannot render
    "template": "unsupported",
}
CLOSED_WINDOW = (10, 2018278)  # "This message is sent outside of allowed window"
UNAVAILABLE = 551  # "This person isn't available right now": blocked the Page, or gone

SETTINGS = meta_settings()


class MessengerAdapter(MetaWebhook):
    """One Facebook Page's Messenger inbox."""

    text_rules = TEXT_RULES["messenger"]

    @classmethod
    def from_config(cls, config: ChannelConfig) -> MessengerAdapter:
        return cls(
            config.name,
            verify_token=config.secret("VERIFY_TOKEN"),
            app_secret=config.secret("APP_SECRET"),
            access_token=config.secret("ACCESS_TOKEN"),
            api_base=config.api_base or GRAPH_API_BASE,
            timeout=config.get("TIMEOUT"),
        )

    # --- Inbound (handshake and verify: MetaWebhook) -------------------------------------------

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, 'a Messenger webhook: {"object": "page", "entry": [...]}')
        if data.get("object") != OBJECT:
            raise BadRequest(f'"object" must be "{OBJECT}": is this the Page\'s webhook?')
        messages = []
        for entry in items(data, "entry", "entries"):
            # "standby" (the handover protocol): another app owns the conversation; not ours.
            for event in items(entry, "messaging", "messaging events"):
                message = self._message(event)
                if message is not None:
                    messages.append(message)
        return messages

    def _message(self, event: Mapping[str, Any]) -> InboundMessage | None:
        content = event.get("message")
        sender = event.get("sender")
        if not isinstance(content, dict) or content.get("is_echo") or not isinstance(sender, dict):
            return None  # receipts, postbacks, reactions, our own messages echoed
        psid = id_string(sender, "id")
        mid = optional_string(content, "mid", limit=MAX_ID)
        if psid is None or mid is None:
            raise BadRequest('a message event needs "sender.id" and "message.mid"')
        text = optional_string(content, "text", limit=MAX_TEXT, allow_empty=True) or ""
        replied = content.get("reply_to")
        return InboundMessage(
            channel=self.name,
            platform_id=mid,
            conversation=psid,
            sender=psid,
            text=text,
            public=False,
            reply_to=optional_string(replied, "mid", limit=MAX_ID)
            if isinstance(replied, dict)
            else None,
            received_at=_timestamp(event),
            raw=dict(event),
            media=_media(content),
        )

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"EVENT_RECEIVED")

    # --- Replies -----------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        payload = {
            "recipient": {"id": msg.recipient or msg.conversation},
            "messaging_type": "RESPONSE",
            "message": {"text": msg.text},
        }
        token = self._access_token.reveal()
        reply = await call_json(
            self._http.session,
            f"{self.api_base}/me/messages",
            payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            return reply
        error = graph_error(reply.data)
        if error is not None and error.code == UNAVAILABLE:
            return SendResult.failed(
                f"Messenger error {error.code} ({error.message}): the citizen cannot be reached",
                retryable=False,
            )
        return graph_result(
            reply,
            sent_id=_sent_id(reply.data),
            closed_window=_closed_window(error),
            token_variable=f"{self._prefix}ACCESS_TOKEN",
            secrets=[token],
        )

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


def _media(content: Mapping[str, Any]) -> str | None:
    """The kind of the first attachment (a sticker is an image with a sticker_id)."""
    if content.get("sticker_id") is not None:
        return "sticker"
    attachments = items(content, "attachments", "attachments")
    if not attachments:
        return None
    kind = attachments[0].get("type")
    payload = attachments[0].get("payload")
    if isinstance(payload, dict) and payload.get("sticker_id") is not None:
        return "sticker"
    return ATTACHMENTS.get(kind, "unsupported") if isinstance(kind, str) else "unsupported"


def _timestamp(event: Mapping[str, Any]) -> datetime:
    """When the citizen sent it (unix milliseconds); now when Messenger does not say."""
    value = event.get("timestamp")
    if not isinstance(value, int) or isinstance(value, bool):
        return datetime.now(UTC)
    if not 0 < value < 10**14:
        raise BadRequest('"timestamp" must be unix milliseconds')
    return datetime.fromtimestamp(value / 1000, UTC)


def _closed_window(error: GraphError | None) -> GraphError | None:
    if error is not None and (error.code, error.subcode) == CLOSED_WINDOW:
        return error
    return None


def _sent_id(data: Any) -> str | None:
    value = data.get("message_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


SPEC = AdapterSpec(
    name="messenger",
    summary="Facebook Messenger: a Page's inbox through Meta's signed webhooks; replies by the "
    "Send API within the 24-hour window.",
    settings=SETTINGS,
    build=MessengerAdapter.from_config,
    api_base=GRAPH_API_BASE,
)
