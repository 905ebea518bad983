"""Mastodon's data in civicdesk's terms: status HTML as plain text, mention notifications as
inbound messages, and the rate-limit headers as a wait. Pure functions, no I/O."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from adapters.html_text import Attributes, tokens
from adapters.http import MAX_RETRY_AFTER, JsonReply, parse_retry_after
from adapters.payload import compact
from bot.platform.adapter import TextRules
from bot.platform.lengths import graphemes
from bot.platform.messages import InboundMessage

PUBLIC_VISIBILITIES = ("public", "unlisted")
MAX_ID = 255  # the inbox's column widths
MAX_LANGUAGE = 16
ELLIPSIS = "…"
# "@civicdesk @clerk@gov.example question": the handles in front address people, they ask nothing.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[\w.-]+(?:@[\w.-]+)?)+\s*", re.UNICODE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")
MAX_MENTIONS = 50
# A status's media_attachments[].type → InboundMessage.media.
MEDIA_TYPES = {"image": "image", "gifv": "video", "video": "video", "audio": "audio"}


def mentioned_accounts(status: Mapping[str, Any]) -> dict[str, str]:
    """The accounts a status mentions: id → profile URL (bounded)."""
    mentions = status.get("mentions")
    found: dict[str, str] = {}
    for item in mentions[:MAX_MENTIONS] if isinstance(mentions, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            url = item.get("url")
            found[item["id"]] = url if isinstance(url, str) else ""
    return found


def media_of(status: Mapping[str, Any]) -> str | None:
    """The kind of the status's first attachment; None when it has none."""
    attachments = status.get("media_attachments")
    first = attachments[0] if isinstance(attachments, list) and attachments else None
    if not isinstance(first, Mapping):
        return None
    return MEDIA_TYPES.get(str(first.get("type")), "file")


class _Text:
    """Mastodon's status HTML (<p>, <br>, links, h-card mentions) as text with line breaks;
    the mention links to `own_urls` (`<a href="https://gov.social/@civicdesk" class="u-url
    mention">`, matched by their href) each read as one space."""

    def __init__(self, own_urls: Collection[str] = ()) -> None:
        self.parts: list[str] = []
        self.own_urls = frozenset(url.lower() for url in own_urls)
        self.in_own_link = False

    def handle_token(self, kind: str, value: str, attrs: Attributes) -> None:
        if self.in_own_link:
            self.in_own_link = not (kind == "end" and value == "a")
        elif kind in ("start", "startend"):
            href = dict(attrs).get("href") if value == "a" else None
            if href is not None and href.lower() in self.own_urls:
                self.parts.append(" ")
                self.in_own_link = kind == "start"
            else:
                self.handle_starttag(value)
        elif kind == "data":
            self.handle_data(value)

    def handle_starttag(self, tag: str) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str, own_urls: Collection[str] = ()) -> str:
    parser = _Text(own_urls)
    for kind, value, attrs in tokens(content):
        parser.handle_token(kind, value, attrs)
    text = "".join(parser.parts).replace("\r\n", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def question_text(content: str, spoiler: str = "", own_urls: Collection[str] = ()) -> str:
    """The citizen's words: the content as text without the leading @handles and without the
    mention links to the account itself (`own_urls`) wherever they stand ("请问 @civicdesk
    诉讼费怎么交"); a content warning, when there is one, comes first (people put the subject
    there)."""
    text = _LEADING_MENTIONS.sub("", html_to_text(content, own_urls), count=1).strip()
    text = _SPACES.sub(" ", text)
    spoiler = spoiler.strip()
    return f"{spoiler}\n{text}" if spoiler and text else spoiler or text


def mention_message(
    channel: str, notification: Mapping[str, Any], own_id: str | None = None
) -> InboundMessage | None:
    """A `mention` notification as an inbound message; None for other types, bots (two
    auto-responders would answer each other forever) and notifications without a status.
    `own_id`: the account's own id, whose mention links are taken out of the text; without it,
    a status mentioning one account only mentions the account itself."""
    status = notification.get("status")
    if notification.get("type") != "mention" or not isinstance(status, Mapping):
        return None
    account = status.get("account") or notification.get("account")
    if not isinstance(account, Mapping) or account.get("bot") is True:
        return None
    status_id, sender, acct = status.get("id"), account.get("id"), account.get("acct")
    # Within the inbox's columns ("@" + acct is the mention): a longer value is no Mastodon id.
    if not all(isinstance(v, str) and 0 < len(v) < MAX_ID for v in (status_id, sender, acct)):
        return None
    visibility = status.get("visibility")
    if not isinstance(visibility, str) or not visibility or len(visibility) > MAX_ID:
        visibility = "public"
    public = visibility in PUBLIC_VISIBILITIES
    language = _short(status.get("language"), MAX_LANGUAGE)
    reply_to = _short(status.get("in_reply_to_id"), MAX_ID)
    name = account.get("display_name")
    name = name[:MAX_ID] if isinstance(name, str) else None
    mentioned = mentioned_accounts(status)
    if own_id is None and len(mentioned) == 1:
        own_id = next(iter(mentioned))
    own_url = mentioned.get(own_id or "")
    text = question_text(
        str(status.get("content") or ""),
        str(status.get("spoiler_text") or ""),
        [own_url] if own_url else [],
    )
    return InboundMessage(
        channel=channel,
        platform_id=str(status_id),
        conversation=str(status_id),
        sender=str(sender),
        sender_name=name.strip() if isinstance(name, str) and name.strip() else str(acct),
        # "@user@domain" (or "@user" on this instance): a real mention, which Mastodon counts as
        # "@user" and which notifies the asker. Direct answers are addressed in `send`.
        mention=f"@{acct}" if public else None,
        text=text,
        public=public,
        media=media_of(status),
        lang_hint=language,
        reply_to=reply_to,
        reply_context=compact({"visibility": visibility, "acct": acct}),
        raw=dict(notification),
    )


def _short(value: Any, limit: int) -> str | None:
    """`value` when it is a non-empty string of at most `limit` characters, else None."""
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def id_order(value: str) -> tuple[int, str]:
    """Sort key of Mastodon's ids: decimal strings of growing integers."""
    return (len(value), value)


def rate_limit_wait(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds until the rate limit resets when the budget is spent (X-RateLimit-Remaining 0),
    from X-RateLimit-Reset (ISO 8601); None while requests remain."""
    remaining = headers.get("X-RateLimit-Remaining")
    if remaining is None or remaining.strip() not in ("0", "0.0"):
        return None
    return reset_wait(headers, now)


def reset_wait(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    value = headers.get("X-RateLimit-Reset")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return min(max(when.timestamp() - now(), 0.0), MAX_RETRY_AFTER)


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """A 429's wait: Retry-After when sent, else until X-RateLimit-Reset."""
    return parse_retry_after(headers.get("Retry-After"), now) or reset_wait(headers, now)


def addressed(text: str, acct: str | None, rules: TextRules) -> str:
    """`text` starting with `@acct `, cut with "…" where the added handle would take it over the
    limit: a direct status reaches only the accounts it mentions, and the core addresses only
    public answers (with the question's `mention`)."""
    if not acct or text == f"@{acct}" or text.startswith(f"@{acct} "):
        return text
    prefix = f"@{acct} "
    whole = prefix + text
    if rules.count(whole) <= rules.limit:
        return whole
    clusters = graphemes(text)
    low, high = 0, len(clusters)
    while low < high:  # the longest head that fits with the handle and "…"
        middle = (low + high + 1) // 2
        if rules.count(prefix + "".join(clusters[:middle]).rstrip() + ELLIPSIS) <= rules.limit:
            low = middle
        else:
            high = middle - 1
    return prefix + "".join(clusters[:low]).rstrip() + ELLIPSIS


def notifications(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        return []
    return [n for n in data if isinstance(n, dict) and isinstance(n.get("id"), str) and n["id"]]


def ids(data: Any) -> list[str]:
    return [n["id"] for n in notifications(data)]


def error_text(reply: JsonReply) -> str:
    error = reply.fields.get("error")
    if isinstance(error, str):
        return f" ({error[:200]})"
    return f" ({reply.text[:200]})" if reply.text.strip() else ""
