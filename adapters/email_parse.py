"""Reading one inbound e-mail with the stdlib `email` package: ids, addresses, the text, loops.

Charsets: mail from China is often labelled GB2312 while using GBK characters, or Big5 while
using HKSCS ones; the labels are read as their supersets (GB18030, Big5-HKSCS), and unlabelled
or wrongly labelled text is tried as UTF-8, then GB18030, before falling back to Latin-1.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from adapters.email_limits import check_bytes, check_parts
from adapters.email_quotes import HISTORY_MARK, strip_reply
from adapters.html_text import Attributes, tokens

SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",  # what clients labelled Latin-1 really send
    "us-ascii": "utf-8",  # 8-bit bytes under an ASCII label are mostly UTF-8
    "ascii": "utf-8",
}
FALLBACKS = ("utf-8", "gb18030")
MAX_HTML_CHARS = 100_000  # of an HTML body, read as text
MAX_BODY_CHARS = 20_000  # of the body text, before the quoted history is stripped
_MSGID = re.compile(r"<([^<>\s]+)>")
_SPACE = re.compile(r"\s+")
_RE_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|vs|回复|回覆|答复|fwd?|fw|转发)\s*[:：]\s*)+", re.I
)


@dataclass(frozen=True)
class Mail:
    """The parts of one e-mail civicdesk uses."""

    message_id: str | None  # "<id@host>", normalized
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    address: str  # the sender's address (From)
    name: str | None  # the sender's display name
    reply_address: str  # where an answer goes: Reply-To, else From
    text: str  # what the sender wrote, quoted history and signature stripped
    lang: str | None
    automatic: str | None  # why this is an auto-reply, bounce or list mail; None for a person
    authentication: tuple[str, ...]  # Authentication-Results headers, as received
    media: str | None = None  # the kind of the first attachment of a mail without body text


def read_mail(data: bytes, *, own_address: str) -> Mail:
    """The parts of a mail civicdesk uses; `MailRefused` (a BadRequest) for a mail outside the
    bounds of `adapters.email_limits`. CPU-bound: pollers call it off the event loop."""
    check_bytes(data)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    check_parts(message)
    name, address = _address(message, "From")
    _, reply_address = _address(message, "Reply-To")
    subject = header_text(message, "Subject")
    references = tuple(message_ids(_raw(message, "References")))
    in_reply_to = next(iter(message_ids(_raw(message, "In-Reply-To"))), None)
    text = strip_reply(body_text(message))
    media = None if text else attachment_kind(message)
    if not text:  # everything was in the subject line
        text = _RE_PREFIX.sub("", subject).strip()
    language = _raw(message, "Content-Language").strip().lower()[:2]
    return Mail(
        message_id=next(iter(message_ids(_raw(message, "Message-ID"))), None),
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        address=address,
        name=name,
        reply_address=reply_address or address,
        text=text,
        lang=language if language in ("zh", "en") else None,
        automatic=automatic_reason(message, address, own_address),
        authentication=tuple(
            _SPACE.sub(" ", str(v)).strip() for v in message.get_all("Authentication-Results", [])
        ),
        media=media,
    )


def attachment_kind(message: EmailMessage) -> str | None:
    """The media kind of the mail's first attachment (a scan, a photo of a letter); None when
    there is none."""
    for part in message.iter_attachments():
        main = part.get_content_maintype()
        return {"image": "image", "audio": "audio", "video": "video"}.get(main, "file")
    return None


def message_ids(value: str) -> list[str]:
    """The message ids in a header value, each as "<left@right>" without whitespace/comments."""
    found = [f"<{match}>" for match in _MSGID.findall(value)]
    if found:
        return found
    bare = value.strip()
    return [f"<{bare}>"] if bare and " " not in bare and "@" in bare else []


def reply_subject(subject: str) -> str:
    """ "Re: <subject>" once, whatever prefixes ("Re:", "RE:", "回复：", "AW:") were there."""
    stripped = _RE_PREFIX.sub("", subject).strip()
    return f"Re: {stripped}" if stripped else "Re:"


def authentication_summary(results: tuple[str, ...]) -> str:
    """ "dmarc=pass dkim=pass spf=pass" from the Authentication-Results headers (RFC 8601) the
    receiving server added, for the log: civicdesk does not act on them. Only the topmost header
    is the own server's; the others travelled with the mail and may be forged."""
    if not results:
        return "no Authentication-Results"
    found = re.findall(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)", results[0], re.IGNORECASE)
    seen: dict[str, str] = {}
    for method, verdict in found:
        seen.setdefault(method.lower(), verdict.lower())
    return " ".join(f"{m}={v}" for m, v in seen.items()) or "no verdict"


def automatic_reason(message: Message, sender: str, own_address: str) -> str | None:
    """Why a mail must not be answered (RFC 3834 and common practice), or None."""
    submitted = _raw(message, "Auto-Submitted").strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = _raw(message, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ("X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe"):
        if message.get(header) is not None:
            return f"{header} header"
    if _raw(message, "Return-Path").strip() == "<>":
        return "empty Return-Path (a bounce)"
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report"
    local = sender.rsplit("@", 1)[0].lower()
    if not sender or local in ("mailer-daemon", "postmaster"):
        return f"sender {sender or '(none)'}"
    if sender.lower() == own_address.lower():
        return "sent by this channel's own address"
    return None


def body_text(message: EmailMessage) -> str:
    """The text/plain body, else the HTML one as text (quotes marked with "> ")."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = decode_part(part)
    if part.get_content_type() == "text/html":
        # HTMLParser costs tens of microseconds per tag: a 2 MB body of tags took 9 s.
        text = html_to_text(text[:MAX_HTML_CHARS])
    # The stripper tries each line as the start of a wrapped attribution: the words the
    # sender wrote come first, and what is kept is cut to a few thousand characters anyway.
    return text[:MAX_BODY_CHARS]


def decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def decode_bytes(data: bytes, charset: str | None) -> str:
    tried: list[str] = []
    if charset:
        label = charset.strip().strip('"').lower()
        tried.append(SUPERSETS.get(label, label))
    for codec in (*tried, *FALLBACKS):
        try:
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def header_text(message: Message, name: str) -> str:
    """A header as text (RFC 2047 words and raw 8-bit bytes decoded with superset charsets)."""
    return decode_words(_raw(message, name))


def _address(message: Message, name: str) -> tuple[str | None, str]:
    raw = _raw(message, name)
    if not raw:
        return None, ""
    pairs = getaddresses([raw]) or [parseaddr(raw)]
    display, address = pairs[0]
    address = _normal_address(address)
    if display:
        display = decode_words(display)
    return (display or None), address


def decode_words(value: str) -> str:
    pieces: list[str] = []
    for part, charset in decode_header(value):
        if isinstance(part, str):  # no encoded words: raw text, maybe 8-bit bytes escaped
            pieces.append(decode_bytes(part.encode("utf-8", "surrogateescape"), None))
        else:
            pieces.append(decode_bytes(part, charset))
    return _SPACE.sub(" ", "".join(pieces)).strip()


def _normal_address(address: str) -> str:
    address = address.strip()
    if "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _raw(message: Message, name: str) -> str:
    """The header's source text (not decoded): ids and addresses are read from it."""
    lowered = name.lower()
    for key, value in message.raw_items() if isinstance(message, EmailMessage) else ():
        if key.lower() == lowered:
            return _SPACE.sub(" ", str(value)).strip()
    value = message.get(name)
    return "" if value is None else _SPACE.sub(" ", str(value)).strip()


# Elements whose id (or class) marks where a client put the quoted history of an HTML reply:
# Outlook.com / Hotmail (stopSpelling, divRplyFwdMsg, appendonsend), Outlook for iOS/Android
# and the new Outlook (mail-editor-reference-message-container), Yahoo (yahoo_quoted).
HISTORY_IDS = frozenset(
    {"stopspelling", "divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
)
HISTORY_CLASSES = frozenset({"yahoo_quoted", "moz-forward-container"})


# Outlook desktop's reply header: a div with a thin top border (#E1E1E1, older #B5C4DF) around
# the From/Sent/To/Subject block; Outlook.com's <hr tabindex="-1"> above it.
_OUTLOOK_RULE = re.compile(r"border-top\s*:\s*solid\s+#(?:e1e1e1|b5c4df)\s+1(?:\.0)?pt", re.I)


def _starts_history(attrs: Attributes) -> bool:
    for name, value in attrs:
        if value is not None and name == "style" and _OUTLOOK_RULE.search(value):
            return True
    found = dict(attrs)
    if (found.get("tabindex") or "").strip() == "-1" and "98%" in (found.get("style") or ""):
        return True
    for name, value in attrs:
        if value is None:
            continue
        if name == "id" and value.strip().lower() in HISTORY_IDS:
            return True
        if name == "class" and HISTORY_CLASSES & set(value.lower().split()):
            return True
    return False


class _Text:
    BLOCKS = frozenset(
        "p div br tr li h1 h2 h3 h4 h5 h6 table ul ol pre hr section article header footer".split()
    )
    SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.quote = 0
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        if not self.skip and _starts_history(attrs):
            self._break()
            self.lines[-1] = HISTORY_MARK
            self._break()
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "blockquote":
            self.quote += 1
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_startendtag(self, tag: str, attrs: Attributes) -> None:
        if not self.skip and _starts_history(attrs):
            self._break()
            self.lines[-1] = HISTORY_MARK
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = _SPACE.sub(" ", data)
        if not text.strip() and not self.lines[-1]:
            return
        if not self.lines[-1] and self.quote:
            self.lines[-1] = "> "
        self.lines[-1] += text

    def _break(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")


def html_to_text(html: str) -> str:
    parser = _Text()
    for kind, value, attrs in tokens(html):
        if kind == "start":
            parser.handle_starttag(value, attrs)
        elif kind == "startend":
            parser.handle_startendtag(value, attrs)
        elif kind == "end":
            parser.handle_endtag(value)
        else:
            parser.handle_data(value)
    return "\n".join(line.strip() for line in parser.lines)
