"""HTML as a stream of start tags, end tags and text, read in linear time.

The stdlib's `html.parser` rescans the rest of the document at every "<" it cannot close:
24 KB of "<a " took 16 s on Python 3.11.7 (CVE-2025-6069), and an e-mail's HTML body or a
Mastodon status comes from anyone. Turning them into text needs only the tag names and the
text between tags, so this reader looks for each "<" and each ">" once: comments, doctypes and
processing instructions are skipped, script and style contents are skipped up to their end tag,
and a "<" that opens no tag is text, as browsers show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Literal

Kind = Literal["start", "startend", "end", "data"]

_NAME = re.compile(r"[A-Za-z][^\s/>]*")
_RAW_TEXT_END = {
    "script": re.compile(r"</script", re.IGNORECASE),
    "style": re.compile(r"</style", re.IGNORECASE),
}


def tokens(html: str) -> Iterator[tuple[Kind, str]]:
    """("start" | "startend" | "end", lower-case tag name) and ("data", text with character
    references decoded), in document order."""
    pos, size = 0, len(html)
    while pos < size:
        lt = html.find("<", pos)
        if lt < 0:
            yield "data", unescape(html[pos:])
            return
        if lt > pos:
            yield "data", unescape(html[pos:lt])
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
            yield "data", "<"
            pos = lt + 1
            continue
        end = html.find(">", name.end())
        if end < 0:  # no ">" in the rest: no later "<" can open a tag either
            yield "data", unescape(html[lt:])
            return
        tag = name.group().lower()
        pos = end + 1
        if closing:
            yield "end", tag
        elif html[end - 1] == "/":
            yield "startend", tag
        else:
            yield "start", tag
            raw_end = _RAW_TEXT_END.get(tag)
            if raw_end is not None:  # script and style: text that is never shown
                found = raw_end.search(html, pos)
                if found is None:
                    return
                pos = found.start()
