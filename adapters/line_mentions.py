"""LINE mentions: which ones address the account, and the question without them.

A group message mentioning the account carries `mention.mentionees[]` with `index` and `length`
of each "@name" in the text and `isSelf: true` for the account. LINE counts text in UTF-16 code
units; the offsets are read that way first, then as code points, and a span that does not cover
an "@..." leaves the text untouched rather than cutting the question.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.platform.adapter import TEXT_RULES
from bot.platform.lengths import utf16_length

ASKER = "asker"  # the textV2 placeholder of the asker's mention


def without_mentions(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without the mentions at `spans` (index, length). LINE counts in UTF-16 code units
    (its text-length rule); code points are tried as well, and a span that does not cover an
    "@..." leaves the text as it is."""
    if not spans:
        return text
    for cut in (_cut_utf16, _cut_code_points):
        result = cut(text, sorted(spans, reverse=True))
        if result is not None:
            return " ".join(result.split())
    return text


def _cut_utf16(text: str, spans: Sequence[tuple[int, int]]) -> str | None:
    units = text.encode("utf-16-le", "surrogatepass")
    for index, length in spans:
        piece = units[2 * index : 2 * (index + length)]
        try:
            if not piece.decode("utf-16-le").startswith("@"):
                return None
        except UnicodeDecodeError:
            return None
        units = units[: 2 * index] + units[2 * (index + length) :]
    return units.decode("utf-16-le", "surrogatepass")


def _cut_code_points(text: str, spans: Sequence[tuple[int, int]]) -> str | None:
    for index, length in spans:
        if not text[index : index + length].startswith("@"):
            return None
        text = text[:index] + text[index + length :]
    return text


def self_mentions(content: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The spans of the mentions of the account itself (`isSelf`)."""
    return _spans(content, lambda item: item.get("isSelf") is True)


def addressing_mentions(content: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The spans to take out of the question: the account's own mentions and "@All" (a
    mentionee of type "all"), which address the account without asking anything."""
    return _spans(content, lambda item: item.get("isSelf") is True or item.get("type") == "all")


def _spans(
    content: Mapping[str, Any], wanted: Callable[[Mapping[str, Any]], bool]
) -> list[tuple[int, int]]:
    mention = content.get("mention")
    mentionees = mention.get("mentionees") if isinstance(mention, dict) else None
    spans = []
    for item in mentionees if isinstance(mentionees, list) else []:
        if not isinstance(item, dict) or not wanted(item):
            continue
        index, length = item.get("index"), item.get("length")
        if isinstance(index, int) and isinstance(length, int) and index >= 0 and length > 0:
            spans.append((index, length))
    return spans


def reply_message(
    text: str, *, public: bool, recipient: str | None, quote: str | None
) -> dict[str, Any]:
    """The message object of a reply. A public reply quotes the question (`quote`) and starts
    with a real mention of the asker: a textV2 message whose `{asker}` LINE shows as the user's
    name and notifies them. (The core writes no "@name" for LINE, the question's `mention` being
    None: a user id is no name to write.) A plain text message instead when the asker is no user
    (`U...`), when the text has braces that textV2 would read as placeholders, or when the
    mention would take it over LINE's limit."""
    message: dict[str, Any] = {"type": "text", "text": text}
    mentioned = f"{{{ASKER}}} {text}"
    if (
        public
        and recipient
        and recipient.startswith("U")
        and "{" not in text
        and "}" not in text
        and utf16_length(mentioned) <= TEXT_RULES["line"].limit
    ):
        mention = {"type": "mention", "mentionee": {"type": "user", "userId": recipient}}
        message = {"type": "textV2", "text": mentioned, "substitution": {ASKER: mention}}
    if public and quote:
        message["quoteToken"] = quote
    return message
