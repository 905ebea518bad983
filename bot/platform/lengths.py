"""Text length the way each platform counts it.

Every counter is a pure function `str -> int`. They share one URL pattern (`URL_RE`), because
each of these platforms replaces a link by a fixed-size placeholder before counting, and the
composer must agree with all of them about where a link starts and ends.

How sure each rule is (see ../shared/PLATFORMS.md):
- `x_length`: twitter-text v3 (config/v3.json), checked against its conformance suite.
- `mastodon_length`: Mastodon's StatusLengthValidator, checked against recorded server counts.
- `weibo_length`: community knowledge of the web client, no oracle (PLATFORMS.md marks it ⚠️).
- `plain_length` / `utf8_bytes_length` / `utf16_length`: what the platform documents, nothing more.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import regex

# Punctuation, separators, control/format characters (directional marks, zero-width spaces) and
# ASCII symbols end a domain label; letters, digits, marks and other symbols (☃.net) may be in one.
_LABEL_CHAR = r"[^\p{P}\p{Z}\p{C}\s$+<=>^`|~]"
_LABEL = rf"{_LABEL_CHAR}(?:(?:{_LABEL_CHAR}|-)*{_LABEL_CHAR})?"
# A top-level domain is letters only, so IP addresses are not links (Mastodon counts
# "http://127.0.0.1/" literally). An ASCII TLD stops before a following CJK character
# ("https://x.gov请看"); a non-ASCII one (.рф, .پاکستان) takes letters and marks.
_TLD = (
    r"(?:xn--[a-z0-9-]+"
    r"|[a-z]{2,63}(?![a-z0-9@+-])"
    r"|[^\P{L}a-zA-Z](?:[^\P{L}a-zA-Z]|\p{M})+)"
)
# Path and query characters follow twitter-text: Latin (with accents) and Cyrillic in the path,
# ASCII only in the query, and a link never ends in . , ; : ! ? or an unbalanced parenthesis.
_ACCENTED = r"\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0300-\u036f\u0400-\u04ff\u1e00-\u1eff"
_PATH_CHAR = rf"[a-z0-9{_ACCENTED}!*';:=+,.$/%#\[\]\-\u2013_~@|&]"
_PATH_END = rf"[a-z0-9{_ACCENTED}+\-=_#/]"
_PARENS = rf"\({_PATH_CHAR}*\)"
_PATH = rf"/(?:(?:{_PATH_CHAR}|{_PARENS})*(?:{_PATH_END}|{_PARENS}))?"
_QUERY = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/]"

URL_RE = regex.compile(
    # Not glued to a word, a mention or a hashtag: "foohttp://x.com" is no link.
    r"(?<![a-z0-9@＠$#＃])https?://"
    rf"(?P<host>(?:{_LABEL}\.)+{_TLD})(?::[0-9]+)?(?:{_PATH})?(?:{_QUERY})?",
    regex.IGNORECASE,
)
"""A link as the platforms see it: scheme http(s) required, no userinfo, no IP address."""

# Longer labels (after punycode) or URLs are not links to twitter-text; they count literally.
_MAX_LABEL = 63
_MAX_URL = 4096

_GRAPHEME = regex.compile(r"\X")
# A grapheme cluster that is an emoji: pictographs and their ZWJ/modifier/tag sequences, flags
# (regional indicator pairs) and keycaps.
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
_MASTODON_MENTION = regex.compile(
    r"(?<![=/\w])@(?P<user>[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)@\w+(?:[.-]+\w+)*",
    regex.IGNORECASE,
)

X_URL_WEIGHT = 23
MASTODON_URL_WEIGHT = 23
# Weibo shortens links to t.cn; its short link is about 20 ASCII characters, i.e. 10 汉字.
WEIBO_URL_HALF_UNITS = 20
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _valid_host(host: str) -> bool:
    for label in host.split("."):
        size = len(label) if label.isascii() else len("xn--") + len(label.encode("punycode"))
        if size > _MAX_LABEL:
            return False
    return True


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every link that the platforms replace by a placeholder."""
    spans = []
    for match in URL_RE.finditer(text):
        if _valid_host(match["host"]) and len(match[0]) <= _MAX_URL:
            spans.append(match.span())
    return spans


def _segments(text: str) -> Iterator[tuple[str, bool]]:
    """The text cut into (piece, is_url) in order."""
    position = 0
    for start, end in url_spans(text):
        if start > position:
            yield text[position:start], False
        yield text[start:end], True
        position = end
    if position < len(text):
        yield text[position:], False


def plain_length(text: str) -> int:
    """Characters (code points): what most APIs mean by "characters"."""
    return len(text)


def utf8_bytes_length(text: str) -> int:
    """UTF-8 bytes, for limits stated in bytes (WeChat passive replies)."""
    return len(text.encode("utf-8", "surrogatepass"))


def utf16_length(text: str) -> int:
    """UTF-16 code units, for limits counted that way (LINE: an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def graphemes(text: str) -> list[str]:
    """User-perceived characters: a flag or a ZWJ family is one."""
    return list(_GRAPHEME.findall(text))


def _x_weight(cluster: str) -> int:
    # twitter-text v3 counts a whole emoji sequence as one emoji of weight 2. Text-style
    # pictographs below U+1100 (©, ®) may count 1 there; 2 errs on the safe side.
    if _EMOJI.search(cluster):
        return 2
    return sum(
        1 if any(low <= ord(char) <= high for low, high in _X_LIGHT_RANGES) else 2
        for char in cluster
    )


def x_length(text: str) -> int:
    """twitter-text v3 weighted length, compared against 280.

    NFC first; code points in 0–4351, 8192–8205, 8208–8223, 8242–8247 weigh 1, others 2; an emoji
    sequence weighs 2; a link weighs 23. Not implemented: links without a scheme ("example.com"),
    which twitter-text also counts as 23.
    """
    text = unicodedata.normalize("NFC", text)
    total = 0
    for piece, is_url in _segments(text):
        if is_url:
            total += X_URL_WEIGHT
        else:
            total += sum(_x_weight(cluster) for cluster in _GRAPHEME.findall(piece))
    return total


def _shorten_mentions(piece: str) -> str:
    def local_part(match: regex.Match[str]) -> str:
        # Mastodon gives no concession to a handle glued to another @ or to "://".
        rest = piece[match.end() :]
        if rest.startswith(("@", "://")):
            return match[0]
        return "@" + match["user"]

    return _MASTODON_MENTION.sub(local_part, piece)


def mastodon_length(text: str, *, spoiler_text: str = "") -> int:
    """Mastodon status length, compared against the instance's max_characters (default 500).

    Grapheme clusters; every link counts 23; `@user@domain` counts as `@user`; the content warning
    (`spoiler_text`) counts as it is.
    """
    total = len(graphemes(spoiler_text))
    for piece, is_url in _segments(text):
        if is_url:
            total += MASTODON_URL_WEIGHT
        else:
            total += len(graphemes(_shorten_mentions(piece)))
    return total


def weibo_length(text: str) -> int:
    """Weibo length in 汉字, compared against 140.

    Uncertain (PLATFORMS.md ⚠️: community knowledge of the web client, no oracle): each Chinese,
    full-width or other non-ASCII code point counts 1, each ASCII character ½, the total rounded
    up; a link counts as its t.cn short link, 20 ASCII characters = 10. Some half-width symbols
    are said to count 1, and emoji are unverified (counted per code point here).
    """
    half_units = 0
    for piece, is_url in _segments(text):
        if is_url:
            half_units += WEIBO_URL_HALF_UNITS
        else:
            half_units += sum(1 if char.isascii() else 2 for char in piece)
    return (half_units + 1) // 2
