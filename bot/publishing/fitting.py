"""An announcement fitted to one platform: the whole where it fits, else a short form that keeps
the title and the link, cut only where a reader expects a cut.

Order of preference, each measured with the platform's own counter (`bot.platform.lengths`):
1. title, every body language, link;
2. title, one language (the first written), link;
3. title, that body cut after a sentence, then after a clause (，、；：), then, in Latin script,
   between words, with "…", and the link;
4. title and link; 5. the title cut the same way, and the link; 6. the link alone.
A cut never falls between two CJK characters (a Chinese word has no spaces to show where it
ends, so the only safe cuts are punctuation), never inside a Latin word, never inside a link.
The link is never cut or dropped: it is where the whole announcement is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.answering.composer import ELLIPSIS, fits
from bot.platform.adapter import TEXT_RULES, TextRules
from bot.platform.lengths import url_spans
from bot.publishing.announcement import Announcement

# The platforms that post announcements (adapters with `publish`).
PUBLISHING_PLATFORMS = ("weibo", "x", "mastodon", "telegram", "matrix", "email")
# A Telegram photo's caption is limited to 1024 characters (Bot API, sendPhoto); a longer
# announcement with a picture is fitted to the caption, so that it stays one post.
TELEGRAM_CAPTION = TextRules(1024, name="telegram caption")

SEPARATOR = "\n\n"
_SENTENCE_END = "。！？!?…\n"
_LATIN_SENTENCE_END = ".;"
_CLAUSE_END = "，、；：,;:）)」』”"
_TRAILING = " \t\r\n,，、:：;；-–—"


class NotPublishable(ValueError):
    """The channel's platform cannot post announcements."""


@dataclass(frozen=True)
class Fitted:
    """One channel's text, with its count as the platform counts and the platform's limit."""

    channel: str
    platform: str
    text: str
    count: int
    limit: int
    form: str  # "full", "one language", "cut", "title", "link"

    def as_json(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "text": self.text,
            "count": self.count,
            "limit": self.limit,
        }


def publishing_rules(platform: str, *, with_image: bool) -> TextRules:
    """The length rules of a post on `platform` (an adapter name)."""
    if platform not in PUBLISHING_PLATFORMS:
        raise NotPublishable(
            f"the {platform} adapter cannot post announcements; publishing platforms are "
            f"{', '.join(PUBLISHING_PLATFORMS)}"
        )
    if platform == "telegram" and with_image:
        return TELEGRAM_CAPTION
    return TEXT_RULES[platform]


def fit_for_channel(announcement: Announcement, channel: str, platform: str) -> Fitted:
    rules = publishing_rules(platform, with_image=announcement.image is not None)
    text, form = fit(
        announcement.title, [b for _, b in announcement.bodies], announcement.link, rules
    )
    return Fitted(channel, platform, text, rules.count(text), rules.limit, form)


def fit(title: str, bodies: Sequence[str], link: str, rules: TextRules) -> tuple[str, str]:
    """(text, form): the announcement within `rules`, link kept; see the module docstring."""

    def assemble(*parts: str) -> str:
        return SEPARATOR.join(part for part in parts if part)

    whole = assemble(title, *bodies, link)
    if fits(whole, rules):
        return whole, "full"
    first = bodies[0] if bodies else ""
    if len(bodies) > 1 and fits(assemble(title, first, link), rules):
        return assemble(title, first, link), "one language"
    if first:
        cut = _longest_cut(first, lambda head: assemble(title, head, link), rules)
        if cut is not None:
            return cut, "cut"
    if fits(assemble(title, link), rules):
        return assemble(title, link), "title"
    cut = _longest_cut(title, lambda head: assemble(head, link), rules)
    if cut is not None:
        return cut, "title"
    return link, "link"


def _longest_cut(text: str, build: Callable[[str], str], rules: TextRules) -> str | None:
    """The longest `build(head + "…")` within `rules`, `head` ending at the best boundary tier
    that gives one."""
    for points in cut_points(text):
        best: str | None = None
        # Counts grow with the head, except by a unit here and there (rounding, links): a
        # binary search finds the region, a short walk back settles it.
        low, high = 0, len(points) - 1
        while low <= high:
            middle = (low + high) // 2
            candidate = build(_head(text, points[middle]))
            if fits(candidate, rules):
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        if best is None:
            for point in reversed(points[: high + 8]):
                candidate = build(_head(text, point))
                if fits(candidate, rules):
                    best = candidate
                    break
        if best is not None:
            return best
    return None


def _head(text: str, point: int) -> str:
    return text[:point].rstrip(_TRAILING) + ELLIPSIS


def is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF
    )


def cut_points(text: str) -> tuple[list[int], list[int], list[int]]:
    """Offsets where `text` may end in a short form: after a sentence; after a clause; between
    two Latin words. Never inside a link; never between two CJK characters."""
    inside_link: set[int] = set()
    for start, end in url_spans(text):
        inside_link.update(range(start + 1, end + 1))
    sentence: list[int] = []
    clause: list[int] = []
    word: list[int] = []
    for point in range(1, len(text)):
        if point in inside_link:
            continue
        before, after = text[point - 1], text[point]
        if before in _SENTENCE_END or (before in _LATIN_SENTENCE_END and after.isspace()):
            sentence.append(point)
        elif before in _CLAUSE_END and (is_cjk(before) or after.isspace()):
            clause.append(point)
        elif (before.isspace() or after.isspace()) and not (is_cjk(before) and is_cjk(after)):
            word.append(point)
    # Each tier also offers the better boundaries: a sentence end is a clause end too.
    return sentence, sorted(sentence + clause), sorted(sentence + clause + word)
