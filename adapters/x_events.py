"""X's payloads in civicdesk's terms: the channel's settings, the Account Activity webhook's
mentions and direct messages, the v2 mentions timeline, the poll cursor. No I/O: `adapters.x`
calls the API and hands the answers here.

Account Activity deliveries (v1.1 objects) look like `{"for_user_id": ME, "tweet_create_events":
[Tweet...]}` and `{"for_user_id": ME, "direct_message_events": [{"type": "message_create", "id",
"created_timestamp", "message_create": {"target": {"recipient_id"}, "sender_id", "message_data":
{"text", "attachment"?}}}], "users": {id: {...}}}`. They carry every post of the account too,
its own direct messages, likes and follows: only posts that mention or answer the account and
direct messages to it are questions. Ids are kept as decimal strings (they exceed 2^53).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.payload import compact, load_object, optional_string
from bot.config.settings import ChannelSetting, seconds
from bot.platform.adapter import BadRequest
from bot.platform.messages import InboundMessage

MAX_ID = 32
MAX_TEXT = 20_000  # a post is at most 25 000 characters for Premium; DMs 10 000
MAX_EVENTS = 500
DM_PREFIX = "dm-"  # platform ids of direct messages, apart from those of posts
# "@court @citizen question": the handles in front of a reply address people, they are no
# part of the question.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w{1,15})+\s*")


def poll_interval(value: str) -> float:
    """Seconds between two polls of the mentions; 0: no polling (the webhook brings them)."""
    if value.strip() in ("0", "0.0", ""):
        return 0.0
    return seconds(value)


SETTINGS = (
    ChannelSetting(
        "CONSUMER_KEY",
        "The app's API Key (Keys and tokens → Consumer Keys).",
        required=True,
    ),
    ChannelSetting(
        "CONSUMER_SECRET",
        "The app's API Key Secret: signs the webhook's CRC answers and is checked against every "
        "delivery's x-twitter-webhooks-signature.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "ACCESS_TOKEN",
        "The account's Access Token (Keys and tokens → Authentication Tokens, with Read, Write "
        "and Direct Messages permission).",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "ACCESS_TOKEN_SECRET", "The account's Access Token Secret.", required=True, secret=True
    ),
    ChannelSetting(
        "USER_ID",
        "The account's numeric user id; deliveries for other accounts subscribed to the same "
        "webhook are skipped (unset: taken from the webhook, or asked from the API for polling).",
    ),
    ChannelSetting(
        "POLL_INTERVAL",
        "Seconds between two polls of the account's mentions, for access tiers without the "
        "Account Activity webhook; 0: no polling.",
        default="0",
        parse=poll_interval,
    ),
    ChannelSetting("TIMEOUT", "Seconds to wait for X's API.", default="10", parse=seconds),
)


def without_leading_mentions(text: str) -> str:
    return _LEADING_MENTIONS.sub("", text, count=1).strip()


def _id(data: Mapping[str, Any], key: str) -> str | None:
    """A decimal id string (the *_str field where X has one)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isdigit() or len(value) > MAX_ID:
        raise BadRequest(f'"{key}" must be a numeric id')
    return value


def _events(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f'"{key}" must be a list of JSON objects')
    if len(value) > MAX_EVENTS:
        raise BadRequest(f'"{key}" has {len(value)} items: at most {MAX_EVENTS}')
    return value


def activity_messages(
    channel: str, data: Mapping[str, Any], own_id: str | None
) -> tuple[str | None, list[InboundMessage]]:
    """The account the delivery is for, and the questions in it (none when it is for another
    account than `own_id`)."""
    for_user = _id(data, "for_user_id")
    if for_user is None:
        raise BadRequest('"for_user_id" is missing: is this an Account Activity delivery?')
    if own_id is not None and for_user != own_id:
        return for_user, []
    messages = []
    for tweet in _events(data, "tweet_create_events"):
        message = webhook_post(channel, tweet, for_user)
        if message is not None:
            messages.append(message)
    given = data.get("users")
    users: Mapping[str, Any] = given if isinstance(given, dict) else {}
    for event in _events(data, "direct_message_events"):
        message = direct_message(channel, event, for_user, users)
        if message is not None:
            messages.append(message)
    return for_user, messages


def webhook_post(channel: str, tweet: Mapping[str, Any], own_id: str) -> InboundMessage | None:
    """A v1.1 post that mentions or answers the account; None for any other post."""
    user = tweet.get("user")
    if not isinstance(user, dict) or "retweeted_status" in tweet:
        return None  # reposts repeat someone else's words
    author = _id(user, "id_str") or _id(user, "id")
    if author is None or author == own_id:
        return None
    found = tweet.get("entities")
    entities: Mapping[str, Any] = found if isinstance(found, dict) else {}
    mentioned = {
        _id(mention, "id_str") or _id(mention, "id")
        for mention in _events(entities, "user_mentions")
    }
    if own_id not in mentioned and _id(tweet, "in_reply_to_user_id_str") != own_id:
        return None
    post_id = _id(tweet, "id_str") or _id(tweet, "id")
    if post_id is None:
        raise BadRequest('a post needs "id_str"')
    extended = tweet.get("extended_tweet")
    full = extended if isinstance(extended, dict) and "full_text" in extended else tweet
    text = optional_string(full, "full_text" if full is extended else "text", limit=MAX_TEXT,
                           allow_empty=True) or ""  # fmt: skip
    handle = optional_string(user, "screen_name", limit=50)
    return InboundMessage(
        channel=channel,
        platform_id=post_id,
        conversation=post_id,
        sender=author,
        text=_displayed(text, full.get("display_text_range")),
        public=True,
        sender_name=optional_string(user, "name", limit=100),
        mention=f"@{handle}" if handle else None,
        lang_hint=optional_string(tweet, "lang", limit=10),
        reply_to=_id(tweet, "in_reply_to_status_id_str"),
        reply_context=compact({"post": post_id}),
        received_at=_created(tweet.get("timestamp_ms"), milliseconds=True),
        raw=dict(tweet),
        media=_post_media(full),
    )


def direct_message(
    channel: str, event: Mapping[str, Any], own_id: str, users: Mapping[str, Any]
) -> InboundMessage | None:
    """A direct message to the account; None for its own (X sends those too) and other events."""
    create = event.get("message_create")
    if event.get("type") != "message_create" or not isinstance(create, dict):
        return None
    sender = _id(create, "sender_id")
    if sender is None or sender == own_id:
        return None
    data = create.get("message_data")
    data = data if isinstance(data, dict) else {}
    text = optional_string(data, "text", limit=MAX_TEXT, allow_empty=True) or ""
    media = None
    attachment = data.get("attachment")
    if isinstance(attachment, dict) and isinstance(attachment.get("media"), dict):
        item = attachment["media"]
        media = {"photo": "image", "video": "video", "animated_gif": "video"}.get(
            str(item.get("type")), "file"
        )
        link = item.get("url")
        if isinstance(link, str) and link:
            text = text.replace(link, "").strip()  # X appends the media's t.co link
    event_id = _id(event, "id")
    if event_id is None:
        raise BadRequest('a direct message event needs "id"')
    profile = users.get(sender)
    profile = profile if isinstance(profile, dict) else {}
    return InboundMessage(
        channel=channel,
        platform_id=DM_PREFIX + event_id,
        conversation=sender,
        sender=sender,
        text=text,
        public=False,
        sender_name=optional_string(profile, "name", limit=100),
        received_at=_created(event.get("created_timestamp"), milliseconds=True),
        raw=dict(event),
        media=media,
    )


def mention_message(
    channel: str, post: Mapping[str, Any], own_id: str, handles: Mapping[str, Any]
) -> InboundMessage | None:
    """A post of the v2 mentions timeline (`GET /2/users/:id/mentions`); None for the account's
    own posts and reposts."""
    post_id = _id(post, "id")
    author = _id(post, "author_id")
    if post_id is None or author is None or author == own_id:
        return None
    referenced = post.get("referenced_tweets")
    replied = None
    if isinstance(referenced, list):
        kinds = {r.get("type"): r.get("id") for r in referenced if isinstance(r, dict)}
        if "retweeted" in kinds:
            return None
        replied = kinds.get("replied_to") if isinstance(kinds.get("replied_to"), str) else None
    text = optional_string(post, "text", limit=MAX_TEXT, allow_empty=True) or ""
    user = handles.get(author)
    user = user if isinstance(user, dict) else {}
    handle = optional_string(user, "username", limit=50)
    return InboundMessage(
        channel=channel,
        platform_id=post_id,
        conversation=post_id,
        sender=author,
        text=without_leading_mentions(text),
        public=True,
        sender_name=optional_string(user, "name", limit=100),
        mention=f"@{handle}" if handle else None,
        lang_hint=optional_string(post, "lang", limit=10),
        reply_to=replied,
        reply_context=compact({"post": post_id}),
        received_at=_created(post.get("created_at")),
        raw=dict(post),
        media="image" if _v2_has_media(post) and not without_leading_mentions(text) else None,
    )


def _displayed(text: str, display_range: Any) -> str:
    """The text without the reply's leading @handles: X says where the shown text starts (in
    code points); without that, the leading handles are dropped."""
    if (
        isinstance(display_range, list)
        and len(display_range) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in display_range)
        and 0 <= display_range[0] <= display_range[1] <= len(text)
    ):
        return text[display_range[0] : display_range[1]].strip()
    return without_leading_mentions(text)


def _post_media(tweet: Mapping[str, Any]) -> str | None:
    entities = tweet.get("extended_entities") or tweet.get("entities")
    media = entities.get("media") if isinstance(entities, dict) else None
    if isinstance(media, list) and media and isinstance(media[0], dict):
        return {"photo": "image", "video": "video", "animated_gif": "video"}.get(
            str(media[0].get("type")), "image"
        )
    return None


def _v2_has_media(post: Mapping[str, Any]) -> bool:
    attachments = post.get("attachments")
    return isinstance(attachments, dict) and bool(attachments.get("media_keys"))


def _created(value: Any, *, milliseconds: bool = False) -> datetime:
    """A post's or message's time: unix milliseconds as text (v1.1) or ISO 8601 (v2)."""
    if isinstance(value, str) and value.isdigit() and milliseconds:
        return datetime.fromtimestamp(min(int(value), 10**14) / 1000, UTC)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return datetime.now(UTC)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def load_cursor(cursor: str | None) -> dict[str, str] | None:
    """Where the next poll starts: {"since_id": the newest mention seen} or, for an account
    never mentioned yet, {"start_time": when polling began}; None before the first poll."""
    state = load_object(cursor)
    since = state.get("since_id")
    if isinstance(since, str) and since.isdigit():
        return {"since_id": since}
    start = state.get("start_time")
    if isinstance(start, str) and start:
        return {"start_time": start}
    return None


def dump_cursor(state: Mapping[str, str]) -> str:
    return compact(state)
