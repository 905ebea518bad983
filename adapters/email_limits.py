"""The bounds of one inbound e-mail, checked before the stdlib `email` package parses it.

Anyone can send the desk a mail, and the stdlib parser's cost is not linear in every shape:
RFC 2231 parameter continuations (`title*0*=...; title*1*=...`) cost quadratic time in the
header parser (a 262 KiB mail with 10,000 of them took 13 s), each nested multipart makes the
feed parser scan for every enclosing boundary on every line (and recurse: 3,000 levels raise
RecursionError), and 20,000 parts take 5 s. A mail outside these bounds is refused with a
`MailRefused` saying which bound, before that cost is paid:

- in the bytes, before any parser sees them: the size, the lines that may delimit a MIME part,
  the multipart and message/* declarations (which bound nesting), the top-level header count,
  and every Content-Type field (the feed parser parses those while it splits the parts);
- once the feed parser (linear within the bounds above) has split it, before any header value
  is parsed: the header count and the parameters and length of every header of every part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from typing import Any

from bot.platform.adapter import BadRequest

MAX_MAIL_BYTES = 2_000_000
"""The whole mail (the IMAP fetch asks for no more): the text parts come first."""
MAX_PARTS = 100
"""MIME parts: a text, its HTML twin, a few attachments and forwarded mails fit easily."""
MAX_DELIMITER_LINES = 2 * MAX_PARTS + 50
"""Lines starting with "--": every part's delimiter, closing delimiters, signature lines."""
MAX_CONTAINERS = 32
"""multipart/* and message/* parts, which the feed parser nests (recursing) and rescans."""
MAX_HEADERS = 500
"""Header fields of one part (a long Received chain has 30 to 50)."""
MAX_PARAMETERS = 64
"""Parameters (";") of one header: a Content-Type has 1 to 3."""
MAX_COMMENTS = 64
"""Parentheses (RFC 5322 comments) in one header: the address parsers recurse into nested
ones (30,000 levels raised RecursionError)."""
MAX_HEADER_CHARS = 65_536
"""One header field, folded lines together (a long References header has a few KiB)."""

_DELIMITER_LINE = re.compile(rb"^--", re.MULTILINE)
_CONTAINER = re.compile(rb"^content-type[ \t]*:[ \t\r\n]*(?:multipart|message)/", re.I | re.M)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
# A Content-Type field with its folded lines: the feed parser itself parses these.
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.I | re.M)


class MailRefused(BadRequest):
    """The mail is outside the bounds above; the message says which (for the log)."""


def check_bytes(data: bytes) -> None:
    """MailRefused unless the raw mail is within the bounds a parser may be given."""
    if len(data) > MAX_MAIL_BYTES:
        raise MailRefused(f"the mail is {len(data)} bytes long: at most {MAX_MAIL_BYTES}")
    delimiters = len(_DELIMITER_LINE.findall(data))
    if delimiters > MAX_DELIMITER_LINES:
        raise MailRefused(
            f"the mail has {delimiters} lines that may delimit MIME parts: at most "
            f"{MAX_DELIMITER_LINES} (about {MAX_PARTS} parts)"
        )
    containers = len(_CONTAINER.findall(data))
    if containers > MAX_CONTAINERS:
        raise MailRefused(
            f"the mail declares {containers} multipart or message parts: at most {MAX_CONTAINERS}"
        )
    for field in _CONTENT_TYPE.finditer(data):
        _check_field("Content-Type", field.group().decode("latin-1"))
    end = _HEADER_END.search(data)
    head = data if end is None else data[: end.start()]
    fields = len(_FIELD_START.findall(head))
    if fields > MAX_HEADERS:
        raise MailRefused(f"the mail has {fields} header fields: at most {MAX_HEADERS}")


def check_parts(message: Message) -> None:
    """MailRefused unless every part (at most MAX_PARTS) has bounded headers, checked on their
    source text: no header value has been parsed yet, so nothing costly has run."""
    count = 0
    pending: list[Message] = [message]
    while pending:  # no recursion: nesting is bounded above, but the walk needs no stack
        part = pending.pop()
        count += 1
        if count > MAX_PARTS:
            raise MailRefused(f"the mail has more than {MAX_PARTS} MIME parts")
        _check_headers(part.raw_items())
        if part.is_multipart():  # multipart/* and message/*: the payload is the list of parts
            children = part.get_payload()
            pending.extend(child for child in children if isinstance(child, Message))


def _check_headers(items: Iterable[tuple[str, Any]]) -> None:
    for fields, (name, value) in enumerate(items, start=1):
        if fields > MAX_HEADERS:
            raise MailRefused(f"a part has more than {MAX_HEADERS} header fields")
        _check_field(name, str(value))


def _check_field(name: str, text: str) -> None:
    if len(text) > MAX_HEADER_CHARS:
        raise MailRefused(
            f"the {name} header is {len(text)} characters long: at most {MAX_HEADER_CHARS}"
        )
    comments = text.count("(")
    if comments > MAX_COMMENTS:
        raise MailRefused(
            f"the {name} header has {comments} comments (parentheses): at most {MAX_COMMENTS}"
        )
    parameters = text.count(";")
    if parameters > MAX_PARAMETERS:
        raise MailRefused(
            f"the {name} header has {parameters} parameters: at most {MAX_PARAMETERS}"
        )
