"""WhatsApp Business Platform, Cloud API: Meta's webhooks in, `/{phone-number-id}/messages` out.

Deliveries are `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
"messages", "value": {"metadata": {"phone_number_id"}, "contacts": [...], "messages": [...]}}]}]}`
(subscription check and signature in `adapters.meta`). Every message is private (1:1). The
dedup key is the message's `wamid.`, the same when Meta redelivers. Delivery statuses
(`value.statuses`: sent, delivered, read, failed), reactions and system notices are no questions
and are skipped, as are messages to another phone number of the same business account.

A photo, a voice note, a document, a sticker, a location or a contact card is stored with its
kind in `InboundMessage.media` (a caption, if any, is the text); the desk answers it as such.

Replies are free-form text only within the 24-hour customer-service window that the citizen's
last message opened (`bot.tickets.handoff.REPLY_WINDOWS`: a later staff answer goes by e-mail or
is kept until the citizen writes again). Past it WhatsApp answers error 131047, which is not
retried. A reply quotes the question it answers (`context.message_id`).
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
from adapters.payload import json_object, optional_string, required_string
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

log = logging.getLogger("civicdesk.whatsapp")

OBJECT = "whatsapp_business_account"
# WhatsApp's message types → MEDIA_KINDS; text-like types are read in `_text`.
MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",  # voice notes too
    "document": "file",
    "sticker": "sticker",
    "location": "location",
    "contacts": "contact",
    "unsupported": "unsupported",
    "unknown": "unsupported",
}
SKIPPED_TYPES = frozenset({"reaction", "system", "ephemeral", "request_welcome"})
CLOSED_WINDOW = 131047  # "Re-engagement message": more than 24 hours since the citizen wrote
UNDELIVERABLE = frozenset({131026, 131021, 131030})  # no WhatsApp there / to itself / not allowed
PAIR_RATE_LIMIT = frozenset({130429, 131048, 131056})  # throughput, spam rate, per-recipient pair
PAIR_RATE_PAUSE = 6.0
INVALID_PARAMETER = frozenset(
    {100, 131008, 131009}
)  # a parameter (such as the quote) refused  # "about one message every 6 seconds to the same user"


def numeric_id(value: str) -> str:
    """The Phone number ID: digits, as Meta shows it (it is a Graph API node, not a phone)."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) > 32:
        raise ValueError("must be the Phone number ID, the digits shown under API Setup")
    return digits


SETTINGS = meta_settings(
    ChannelSetting(
        "PHONE_NUMBER_ID",
        "The Phone number ID of the business number (WhatsApp → API Setup), not the number "
        "itself; messages to other numbers of the account are skipped.",
        required=True,
        parse=numeric_id,
    ),
)


class WhatsAppAdapter(MetaWebhook):
    """One business phone number on WhatsApp's Cloud API."""

    text_rules = TEXT_RULES["whatsapp"]

    def __init__(
        self,
        name: str,
        *,
        verify_token: Secret,
        app_secret: Secret,
        access_token: Secret,
        phone_number_id: str,
        api_base: str = GRAPH_API_BASE,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            name,
            verify_token=verify_token,
            app_secret=app_secret,
            access_token=access_token,
            api_base=api_base,
            timeout=timeout,
        )
        self.phone_number_id = numeric_id(phone_number_id)

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WhatsAppAdapter:
        return cls(
            config.name,
            verify_token=config.secret("VERIFY_TOKEN"),
            app_secret=config.secret("APP_SECRET"),
            access_token=config.secret("ACCESS_TOKEN"),
            phone_number_id=config.get("PHONE_NUMBER_ID"),
            api_base=config.api_base or GRAPH_API_BASE,
            timeout=config.get("TIMEOUT"),
        )

    # --- Inbound (handshake and verify: MetaWebhook) -------------------------------------------

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, 'a WhatsApp webhook: {"object": ..., "entry": [...]}')
        if data.get("object") != OBJECT:
            raise BadRequest(f'"object" must be "{OBJECT}": is this the WhatsApp app\'s webhook?')
        messages = []
        for entry in items(data, "entry", "entries"):
            for change in items(entry, "changes", "changes"):
                value = change.get("value")
                if change.get("field") != "messages" or not isinstance(value, dict):
                    continue  # account updates, template reviews, ...: not messages
                messages.extend(self._messages(value))
        return messages

    def _messages(self, value: Mapping[str, Any]) -> list[InboundMessage]:
        metadata = value.get("metadata")
        number = id_string(metadata, "phone_number_id") if isinstance(metadata, dict) else None
        if number != self.phone_number_id:
            return []  # another number of the same business account
        names = {
            wa_id: profile.get("name")
            for contact in items(value, "contacts", "contacts")
            if (wa_id := id_string(contact, "wa_id"))
            and isinstance(profile := contact.get("profile"), dict)
        }
        found = []
        for message in items(value, "messages", "messages"):
            inbound = self._message(message, names)
            if inbound is not None:
                found.append(inbound)
        return found

    def _message(
        self, message: Mapping[str, Any], names: Mapping[str, Any]
    ) -> InboundMessage | None:
        kind = optional_string(message, "type", limit=40) or "unknown"
        if kind in SKIPPED_TYPES:
            return None
        sender = required_string(message, "from", limit=MAX_ID)
        text, media = _text(message, kind)
        context = message.get("context")
        name = names.get(sender)
        return InboundMessage(
            channel=self.name,
            platform_id=required_string(message, "id", limit=MAX_ID),
            conversation=sender,
            sender=sender,
            text=text,
            public=False,
            sender_name=name if isinstance(name, str) and name.strip() else None,
            reply_to=optional_string(context, "id", limit=MAX_ID)
            if isinstance(context, dict)
            else None,
            received_at=_timestamp(message),
            raw=dict(message),
            media=media,
        )

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"")

    # --- Replies -----------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.recipient or msg.conversation,
            "type": "text",
            "text": {"preview_url": False, "body": msg.text},
        }
        if msg.reply_to:
            payload["context"] = {"message_id": msg.reply_to}
        result, error = await self._post(payload)
        if error is not None and error.code in INVALID_PARAMETER and "context" in payload:
            # The quoted message may be gone (a kept answer sent days later): the answer
            # matters more than the quote.
            log.info("channel=%s outbox=%s refused with a quote: sending without", self.name,
                     msg.id)  # fmt: skip
            del payload["context"]
            result, _ = await self._post(payload)
        return result

    async def _post(self, payload: Mapping[str, Any]) -> tuple[SendResult, GraphError | None]:
        token = self._access_token.reveal()
        reply = await call_json(
            self._http.session,
            f"{self.api_base}/{self.phone_number_id}/messages",
            payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            return reply, None
        return self._result(reply, token), graph_error(reply.data)

    def _result(self, reply: JsonReply, token: str) -> SendResult:
        error = graph_error(reply.data)
        if error is not None and error.code in UNDELIVERABLE:
            return SendResult.failed(
                f"WhatsApp error {error.code} ({error.message}): this number cannot receive it",
                retryable=False,
            )
        if error is not None and error.code in PAIR_RATE_LIMIT:
            return SendResult.failed(
                f"WhatsApp error {error.code} ({error.message}): sending too fast",
                retryable=True,
                retry_after=PAIR_RATE_PAUSE,
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


def _text(message: Mapping[str, Any], kind: str) -> tuple[str, str | None]:
    """The message's text and media kind: a caption or a button's label counts as text."""
    body = message.get(kind)
    part = body if isinstance(body, dict) else {}
    if kind == "text":
        return required_string(part, "body", limit=MAX_TEXT, allow_empty=True), None
    if kind == "button":  # a quick-reply button of a template we sent
        return optional_string(part, "text", limit=MAX_TEXT) or "", None
    if kind == "interactive":  # a reply button or list row of an interactive message
        chosen = part.get(str(part.get("type")))
        label = (
            optional_string(chosen, "title", limit=MAX_TEXT) if isinstance(chosen, dict) else None
        )
        return label or "", None
    media = MEDIA.get(kind, "unsupported")
    caption = optional_string(part, "caption", limit=MAX_TEXT) if kind in MEDIA else None
    return caption or "", media


def _timestamp(message: Mapping[str, Any]) -> datetime:
    """When the citizen sent it (unix seconds as text); now when WhatsApp does not say."""
    value = message.get("timestamp")
    try:
        seconds = int(str(value))
    except ValueError:
        return datetime.now(UTC)
    if not 0 < seconds < 10**11:
        raise BadRequest('"timestamp" must be unix seconds')
    return datetime.fromtimestamp(seconds, UTC)


def _closed_window(error: GraphError | None) -> GraphError | None:
    return error if error is not None and error.code == CLOSED_WINDOW else None


def _sent_id(data: Any) -> str | None:
    sent = data.get("messages") if isinstance(data, dict) else None
    if isinstance(sent, list) and sent and isinstance(sent[0], dict):
        value = sent[0].get("id")
        return value if isinstance(value, str) else None
    return None


SPEC = AdapterSpec(
    name="whatsapp",
    summary="WhatsApp Cloud API: Meta's signed webhooks in, text replies within the 24-hour "
    "customer-service window out.",
    settings=SETTINGS,
    build=WhatsAppAdapter.from_config,
    api_base=GRAPH_API_BASE,
)
