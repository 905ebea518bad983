"""Weibo's API in civicdesk's terms: the channel's settings, error codes, mention items, the
poll cursor, push bodies. No I/O: `adapters.weibo` calls the API and hands the answers here.

Every id is kept as the decimal string of `idstr` (Weibo ids exceed 2^53, where JavaScript and
float-based JSON parsers round them). Error codes are from open.weibo.com/wiki/Error_code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.http import http_url
from adapters.payload import compact, string_values
from bot.config.settings import ChannelSetting, seconds
from bot.platform.adapter import BadRequest
from bot.platform.messages import InboundMessage

MESSAGES_API_BASE = "https://m.api.weibo.com"
MAX_ID_DIGITS = 32  # Weibo's ids have 10 to 16 digits; the inbox keeps 255 characters
MAX_NAME = 255

SETTINGS = (
    ChannelSetting(
        "ACCESS_TOKEN",
        "OAuth2 access token of the official account (reads mentions, posts comments, sends "
        "private replies).",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "APP_SECRET",
        "AppSecret of the app entered in the fans service's developer mode: signs the push "
        "(unset: pushes are refused, mentions are still polled).",
        secret=True,
    ),
    ChannelSetting(
        "USER_ID",
        "The account's numeric uid, whose own posts are skipped (unset: asked from the API).",
    ),
    ChannelSetting(
        "MESSAGES_API_BASE",
        "Base URL of the private-message API (messages/reply).",
        default=MESSAGES_API_BASE,
        parse=http_url,
    ),
    ChannelSetting(
        "CLIENT_IP",
        "Public IP address sent as `rip` with comments (the current comments/create docs ask "
        "for it).",
    ),
    ChannelSetting(
        "POLL_INTERVAL", "Seconds between two polls of the mentions.", default="180", parse=seconds
    ),
    ChannelSetting(
        "REPLAY_WINDOW",
        "Seconds a push's timestamp may differ from the server's clock.",
        default="300",
        parse=seconds,
    ),
    ChannelSetting("TIMEOUT", "Seconds to wait for Weibo's API.", default="10", parse=seconds),
)


RATE_LIMITED = frozenset({10022, 10023, 10024})  # IP / user / user-per-API requests per hour
TOO_FAST = frozenset({20016})  # 发布内容过于频繁: posting too often
TRANSIENT = frozenset({10001, 10002, 10003, 10009, 10010, 10011, 21331})
REPEATED = frozenset({20017, 20019, 20111, 20306})  # similar / same text as just before
TOKEN_REFUSED = frozenset({21301, 21314, 21315, 21316, 21317, 21319, 21327, 21332})
GONE = frozenset({20101, 20201})  # the status / comment no longer exists

RATE_LIMIT_PAUSE = 600.0  # Weibo counts per hour and says nothing of when the count resets
TOO_FAST_PAUSE = 60.0

# "@某法院 诉讼费怎么交", "回复@张三:问题": the handles in front are addressing, not the question.
_LEADING_MENTIONS = re.compile(r"^(?:\s*(?:回复)?@[^\s@:：,，]+[:：]?)+\s*")


@dataclass(frozen=True)
class WeiboError:
    code: int
    message: str
    retryable: bool
    retry_after: float | None = None


def weibo_error(data: Any, token_variable: str) -> WeiboError | None:
    """The error in a Weibo JSON answer (`{"error_code": 21327, "error": "expired_token"}`),
    classified; None when the answer is no error."""
    if not isinstance(data, Mapping) or "error_code" not in data:
        return None
    try:
        code = int(data["error_code"])
    except (TypeError, ValueError):
        code = 0
    said = str(data.get("error") or "")[:200]
    detail = f"Weibo error {code} ({said})" if said else f"Weibo error {code}"
    if code in RATE_LIMITED:
        return WeiboError(code, f"{detail}: rate limited", True, RATE_LIMIT_PAUSE)
    if code in TOO_FAST:
        return WeiboError(code, f"{detail}: posting too often", True, TOO_FAST_PAUSE)
    if code in TRANSIENT:
        return WeiboError(code, detail, True)
    if code in TOKEN_REFUSED:
        return WeiboError(
            code,
            f"{detail}: the access token is expired or revoked; authorise the app again and "
            f"set the new token in {token_variable}",
            False,
        )
    if code in REPEATED:
        return WeiboError(code, f"{detail}: Weibo refuses the same text twice in a row", False)
    if code in GONE:
        return WeiboError(code, f"{detail}: the question was deleted", False)
    return WeiboError(code, detail, False)


def idstr(item: Mapping[str, Any]) -> str | None:
    """The id of a status, comment or user as a decimal string (ASCII digits, at most
    MAX_ID_DIGITS: Weibo's ids have 10 to 16)."""
    return _digits(item.get("idstr")) or _digits(item.get("id"))


_NAMES = re.compile(r"@([^\s@:：,，。！？!?、]{1,30})")
MAX_NAMES = 30


def mentioned_names(text: str) -> set[str]:
    """The @names in a status or comment text (bounded)."""
    return set(_NAMES.findall(text[:2000])[:MAX_NAMES])


def question_text(text: str, own_name: str | None = None) -> str:
    """The question without the leading @names (and "回复@name:") and without the account's
    own @name wherever it stands ("请问 @政务助手 诉讼费怎么交")."""
    text = _LEADING_MENTIONS.sub("", text, count=1)
    if own_name:
        text = re.sub(rf"@{re.escape(own_name)}(?![^\s@:：,，。！？!?、])[:：]?", " ", text)
    return " ".join(text.split())


def mention_message(
    channel: str,
    kind: str,
    item: Mapping[str, Any],
    own_id: str | None,
    own_name: str | None = None,
) -> InboundMessage | None:
    """A status (kind "statuses") or comment ("comments") that @-mentions the account, as an
    inbound public message; None for the account's own posts, deleted ones and odd items."""
    item_id = idstr(item)
    user = item.get("user")
    if item_id is None or not isinstance(user, Mapping) or str(item.get("deleted", "0")) == "1":
        return None
    sender = idstr(user)
    if sender is None or sender == own_id:
        return None
    raw_text = str(item.get("text") or "")
    names = mentioned_names(raw_text)
    if own_name is None and len(names) == 1:
        own_name = next(iter(names))  # the account is mentioned: the only @name is its own
    text = question_text(raw_text, own_name)
    name = user.get("screen_name")
    # Weibo's names have at most 30 characters; the inbox keeps 255 (with the "@" of a mention).
    screen_name = name.strip()[: MAX_NAME - 1] if isinstance(name, str) and name.strip() else None
    common: dict[str, Any] = {
        "channel": channel,
        "platform_id": item_id,
        "sender": sender,
        "sender_name": screen_name,
        # Weibo links "@昵称" to the user: a comment starting with it notifies the asker.
        "mention": f"@{screen_name}" if screen_name else None,
        "text": text,
        "public": True,
        "raw": dict(item),
    }
    if kind == "statuses":
        context = {"kind": "status", "id": item_id}
        return InboundMessage(conversation=item_id, reply_context=compact(context), **common)
    status = item.get("status")
    status_id = idstr(status) if isinstance(status, Mapping) else None
    if status_id is None:
        return None  # a comment whose status is gone cannot be answered
    replied = item.get("reply_comment")
    reply_to = idstr(replied) if isinstance(replied, Mapping) else None
    context = {"kind": "comment", "cid": item_id, "id": status_id}
    return InboundMessage(
        conversation=status_id,
        reply_to=reply_to or status_id,
        reply_context=compact(context),
        **common,
    )


# Push types (粉丝服务平台 message push) → InboundMessage.media; "event" and "mention" (polled
# instead; its push shape is not documented) are skipped, any other type is "unsupported".
PUSH_MEDIA = {"image": "image", "voice": "audio", "position": "location"}
SKIPPED_PUSHES = ("event", "mention")


def push_message(channel: str, data: Mapping[str, Any], own_id: str | None) -> list[InboundMessage]:
    """The private message in one fans-service push; [] for events (follow, subscribe, menu
    clicks), mention pushes (their shape is undocumented) and echoes. A picture, a voice
    message, a position or a type newer than this adapter comes with its media kind."""
    kind = data.get("type")
    if not isinstance(kind, str) or kind in SKIPPED_PUSHES:
        return []
    sender = _digits(data.get("sender_id"))
    receiver = _digits(data.get("receiver_id"))
    if sender is None:
        raise BadRequest('"sender_id" is missing: a Weibo push names its sender')
    if sender in (receiver, own_id):
        return []
    text = data.get("text")
    if kind == "text" and not isinstance(text, str):
        raise BadRequest('"text" must be a string in a Weibo text push')
    text = text if isinstance(text, str) and kind == "text" else ""
    media = None if kind == "text" else PUSH_MEDIA.get(kind, "unsupported")
    created = str(data.get("created_at") or "")
    # A push has no id: Weibo says to deduplicate on sender + created_at (seconds). The content's
    # hash keeps two different messages of the same second apart; a retry has the same content.
    # surrogatepass: JSON may escape a lone surrogate ("\ud800"), which strict UTF-8 refuses.
    content = text if kind == "text" else f"{kind}:{json.dumps(data.get('data'), sort_keys=True)}"
    digest = hashlib.sha1(content.encode("utf-8", "surrogatepass")).hexdigest()[:10]  # noqa: S324
    platform_id = f"pm:{sender}:{_epoch(created)}:{digest}"
    return [
        InboundMessage(
            channel=channel,
            platform_id=platform_id,
            conversation=sender,
            sender=sender,
            text=text.strip(),
            public=False,
            reply_context=compact({"kind": "message"}),
            raw=dict(data),
            media=media,
        )
    ]


def load_cursor(cursor: str | None) -> dict[str, str] | None:
    """{"statuses": since_id, "comments": since_id, "to_me": since_id}; None for a first run or
    a cursor from elsewhere (which then starts from now, like a first run). Comments that @ the
    account and comments on its posts share one id space, growing with time, so "to_me" is
    stored only when it is ahead of "comments" (a cursor saved before comments on the account's
    posts were polled goes on from its "comments")."""
    values = string_values(cursor)
    state = {kind: values.get(kind, "") for kind in ("statuses", "comments")}
    if not all(value.isdigit() for value in state.values()):
        return None
    to_me = values.get("to_me", "")
    state["to_me"] = to_me if to_me.isdigit() else state["comments"]
    return state


def dump_cursor(state: Mapping[str, str]) -> str:
    kept = {"statuses": state["statuses"], "comments": state["comments"]}
    to_me = state.get("to_me", "")
    if to_me.isdigit() and int(to_me) > int(kept["comments"] or "0"):
        kept["to_me"] = to_me
    return compact(kept)


def _digits(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**MAX_ID_DIGITS:
        return str(value)  # Python's json keeps big integers exact
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
            return text
    return None


def _epoch(created_at: str) -> str:
    """'Mon Jul 16 18:09:20 +0800 2012' as unix seconds; the text itself when it is no date."""
    try:
        return str(int(datetime.strptime(created_at, "%a %b %d %H:%M:%S %z %Y").timestamp()))
    except ValueError:
        return created_at.replace(" ", "_")[:40]


def mention_items(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("statuses", "comments"):
        value = data.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, Mapping)]
    return []
