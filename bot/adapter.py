"""The adapter contract: what the core needs to know about a platform, and nothing else.

For now it holds `TextRules`: a channel's length limit and how that platform counts length.
The `Adapter` protocol and its request/reply types join it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.lengths import (
    mastodon_length,
    plain_length,
    utf8_bytes_length,
    weibo_length,
    x_length,
)


@dataclass(frozen=True)
class TextRules:
    """A reply fits a channel when `count(text) <= limit`."""

    limit: int
    count: Callable[[str], int] = plain_length
    name: str = "plain"


TEXT_RULES: dict[str, TextRules] = {
    "weibo": TextRules(140, weibo_length, "weibo"),
    "x": TextRules(280, x_length, "x"),
    "mastodon": TextRules(500, mastodon_length, "mastodon"),
    "telegram": TextRules(4096, name="telegram"),
    "slack": TextRules(4000, name="slack"),
    "line": TextRules(5000, name="line"),
    # The documented limit of a passive reply is 2048 bytes (PLATFORMS.md ⚠️), not characters:
    # count bytes rather than guess a character limit (2048 bytes ≈ 680 汉字).
    "wechat": TextRules(2048, utf8_bytes_length, "wechat"),
    # The real bound is 65 536 bytes for the whole event; 4000 keeps a reply readable.
    "matrix": TextRules(4000, name="matrix"),
    "email": TextRules(20000, name="email"),
    "webchat": TextRules(2000, name="webchat"),
    "webhook": TextRules(4000, name="webhook"),
    "messenger": TextRules(2000, name="messenger"),
    "whatsapp": TextRules(4096, name="whatsapp"),
}

DEFAULT_TEXT_RULES = TextRules(4000)
"""For a channel of unknown platform: generous, but still a bound."""


def rules_for(channel: str) -> TextRules:
    """The rules for a configured channel name.

    A channel is named after its platform, optionally with a suffix ("telegram-staff"), so the
    part before the first "-" or "_" picks the platform when the whole name is not known.
    """
    key = channel.strip().lower()
    if key in TEXT_RULES:
        return TEXT_RULES[key]
    platform = key.replace("_", "-").split("-", 1)[0]
    return TEXT_RULES.get(platform, DEFAULT_TEXT_RULES)
