"""HTML as a stream of start tags, end tags and text, read in linear time.

The stdlib's `html.parser` rescans the rest of the document at every "<" it cannot close:
24 KB of "<a " took 16 s on Python 3.11.7 (CVE-2025-6069), and an e-mail's HTML body or a
Mastodon status comes from anyone. Turning them into text needs the tag names, the text between
tags and a few attributes (the id, class or style that marks a mail client's quoted history, a
mention link's href), so this reader looks for each "<" and each ">" once: comments, doctypes and
processing instructions are skipped, script and style contents are skipped up to their end tag,
and a "<" that opens no tag is text, as browsers show it. A tag ends at its first ">", even
inside a quoted attribute value (html.parser would read on to the closing quote).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Literal

Kind = Literal["start", "startend", "end", "data"]
Attributes = tuple[tuple[str, str | None], ...]
"""A start tag's attributes as html.parser gives them: lower-case names, values with character
references decoded, None for an attribute without a value."""

MAX_ATTRIBUTES = 32
"""The attributes read of one start tag (mail clients write a handful); the rest are ignored."""

_NAME = re.compile(r"[A-Za-z][^\s/>]*")
# One attribute: a name, then optionally "=" and a quoted or unquoted value. Within a tag (no ">"
# in it) a quote that never closes fails once and leaves no later quote of its kind to retry:
# linear in the tag's length.
_ATTRIBUTE = re.compile(
    r"""([^\s/>"'=][^\s/>"'=]*|["'=][^\s/>"'=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?"""
)
_RAW_TEXT_END = {
    "script": re.compile(r"</script", re.IGNORECASE),
    "style": re.compile(r"</style", re.IGNORECASE),
}


def tokens(html: str) -> Iterator[tuple[Kind, str, Attributes]]:
    """("start" | "startend", lower-case tag name, its attributes), ("end", lower-case tag name,
    ()) and ("data", text with character references decoded, ()), in document order."""
    pos, size = 0, len(html)
    while pos < size:
        lt = html.find("<", pos)
        if lt < 0:
            yield "data", unescape(html[pos:]), ()
            return
        if lt > pos:
            yield "data", unescape(html[pos:lt]), ()
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            if end < 0:
                return  # an unclosed comment hides the rest, as in a browser
            pos = end + 3
            continue
        if html.startswith(("<!", "<?"), lt):  # doctype, CDATA, processing instruction
            end = html.find(">", lt + 2)
            if end < 0:
                return
            pos = end + 1
            continue
        closing = html.startswith("</", lt)
        name = _NAME.match(html, lt + (2 if closing else 1))
        if name is None:
            yield "data", "<", ()
            pos = lt + 1
            continue
        end = html.find(">", name.end())
        if end < 0:  # no ">" in the rest: no later "<" can open a tag either
            yield "data", unescape(html[lt:]), ()
            return
        tag = name.group().lower()
        pos = end + 1
        if closing:
            yield "end", tag, ()
        elif html[end - 1] == "/":
            yield "startend", tag, attributes(html[name.end() : end - 1])
        else:
            yield "start", tag, attributes(html[name.end() : end])
            raw_end = _RAW_TEXT_END.get(tag)
            if raw_end is not None:  # script and style: text that is never shown
                found = raw_end.search(html, pos)
                if found is None:
                    return
                pos = found.start()


def attributes(source: str) -> Attributes:
    """The attributes in a start tag's text after its name (no ">" in it), at most
    `MAX_ATTRIBUTES` of them."""
    found: list[tuple[str, str | None]] = []
    for match in _ATTRIBUTE.finditer(source):
        name, double, single, bare = match.groups()
        value = next((v for v in (double, single, bare) if v is not None), None)
        found.append((name.lower(), None if value is None else unescape(value)))
        if len(found) >= MAX_ATTRIBUTES:
            break
    return tuple(found)
