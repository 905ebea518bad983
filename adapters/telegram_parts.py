"""The pieces of the Telegram adapter that need no adapter: reading an Update (entities with
their UTF-16 offsets, users) and reading the Bot API's answer to sendMessage."""

from __future__ import annotations

from typing import Any

from adapters.http import JsonReply, is_retryable_status, parse_retry_after
from adapters.payload import load_object
from bot.platform.adapter import BadRequest
from bot.platform.messages import OutboundMessage, SendResult


def send_failure(reply: JsonReply, data: dict[str, Any], token: str) -> SendResult:
    status = reply.status
    description = data.get("description")
    if not isinstance(description, str):
        description = reply.text
    detail = f"HTTP {status}: {description.strip()[:300]}".replace(token, "***")
    parameters = as_dict(data.get("parameters"))
    retry_after = parameters.get("retry_after")
    if status == 429 or isinstance(retry_after, int | float):
        delay = (
            float(retry_after)
            if isinstance(retry_after, int | float)
            else parse_retry_after(reply.headers.get("Retry-After"))
        )
        return SendResult.failed(detail, retryable=True, retry_after=delay)
    if is_retryable_status(status) or 200 <= status < 300:
        return SendResult.failed(detail, retryable=True)  # an outage, or an answer not understood
    if status == 401:
        detail += ": the bot token was revoked or is wrong (check TOKEN)"
    elif status == 403:
        detail += ": the user blocked the bot, never started it, or the bot left the group"
    return SendResult.failed(detail, retryable=False)


def read_context(msg: OutboundMessage) -> dict[str, Any]:
    """What the reply needs of the question: from reply_context, else from reply_to."""
    context = load_object(msg.reply_context)
    if not context and msg.reply_to:
        _, _, message_id = msg.reply_to.rpartition(":")
        if message_id.isdigit():
            return {"message_id": int(message_id)}
    return context


# The content fields of a Message (Bot API "Message") → InboundMessage.media, first match wins.
MEDIA_FIELDS = (
    ("photo", "image"),
    ("sticker", "sticker"),
    ("animation", "video"),  # a GIF: it also carries "document"
    ("video", "video"),
    ("video_note", "video"),
    ("voice", "audio"),
    ("audio", "audio"),
    ("document", "file"),
    ("venue", "location"),
    ("location", "location"),
    ("contact", "contact"),
    ("poll", "unsupported"),
    ("dice", "unsupported"),
    ("game", "unsupported"),
    ("story", "unsupported"),
    ("paid_media", "unsupported"),
    ("invoice", "unsupported"),
)
# Service messages: something happened in the chat, nobody asked anything.
SERVICE_FIELDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "successful_payment",
        "refunded_payment",
        "users_shared",
        "chat_shared",
        "connected_website",
        "write_access_allowed",
        "passport_data",
        "proximity_alert_triggered",
        "boost_added",
        "chat_background_set",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "general_forum_topic_hidden",
        "general_forum_topic_unhidden",
        "giveaway_created",
        "giveaway",
        "giveaway_winners",
        "giveaway_completed",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
        "web_app_data",
    }
)


def media_of(message: dict[str, Any]) -> str | None:
    """The kind of what the message carries besides text (None: text only)."""
    for key, kind in MEDIA_FIELDS:
        if message.get(key) is not None:
            return kind
    return None


def is_service(message: dict[str, Any]) -> bool:
    return any(key in message for key in SERVICE_FIELDS)


def text_of(message: dict[str, Any]) -> tuple[str, str]:
    """(the text, the key of its entities): the message's text, else a media caption."""
    text = message.get("text")
    if isinstance(text, str):
        return text, "entities"
    caption = message.get("caption")
    return (caption if isinstance(caption, str) else ""), "caption_entities"


def entities_of(message: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, the text it covers, entity) of each entity of the text or caption; offsets count
    UTF-16 code units."""
    text, key = text_of(message)
    entities = message.get(key)
    if not isinstance(text, str) or not isinstance(entities, list):
        return []
    units = text.encode("utf-16-le", "surrogatepass")
    found = []
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            continue
        piece = units[2 * offset : 2 * (offset + length)].decode("utf-16-le", "replace")
        found.append((str(entity.get("type")), piece, entity))
    return found


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def id_of(user: Any) -> str | None:
    if isinstance(user, dict) and isinstance(user.get("id"), int):
        return str(user["id"])
    return None


def display_name(user: dict[str, Any]) -> str | None:
    parts = [user.get("first_name"), user.get("last_name")]
    name = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    return short(name or user.get("username"), 255)


def short(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def chat_ref(conversation: str) -> int | str:
    try:
        return int(conversation)
    except ValueError:
        return conversation  # @channelusername


def child_object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f'"{key}" is missing or not an object')
    return value
