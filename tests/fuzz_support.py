"""Strategies for fuzzing the adapters: arbitrary JSON, XML, bytes, headers and e-mails, mixed
with the real payloads in ../shared/fixtures changed in random places (structure-aware: most
random bytes stop at the first check, a fixture with one field changed reaches the deep code).

How many examples: `CIVICDESK_FUZZ_EXAMPLES` (default 200 per adapter for the normal test run;
the full run uses 2000, see docs/fuzzing.md)."""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bot.platform.adapter import BadRequest, Unauthorized
from bot.platform.messages import MEDIA_KINDS, InboundMessage
from bot.storage.models import InboxMessage

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
EXAMPLES = int(os.environ.get("CIVICDESK_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a loaded CI machine: speed is the benchmarks' business
    database=None,
    suppress_health_check=list(HealthCheck),
)
REFUSALS = (BadRequest, Unauthorized)
"""What an adapter's verify, handshake and parse may raise: the web layer turns these into
400/401/403; anything else is a 500 and a traceback per request."""

# The inbox's column widths: a longer value fails the insert on PostgreSQL (VARCHAR(n)).
WIDTHS = {
    name: InboxMessage.model_fields[name].metadata[0].max_length
    for name in (
        "platform_id",
        "conversation",
        "sender",
        "sender_name",
        "mention",
        "lang_hint",
        "reply_to",
    )
}
MAX_TEXT = 1 << 20  # no adapter keeps more than a request body may hold


def fixture_json(folder: str) -> list[Any]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((FIXTURES / folder).glob("*.json"))
    ]


def fixture_bytes(folder: str, pattern: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((FIXTURES / folder).glob(pattern))]


def check_message(message: Any) -> None:
    """What every InboundMessage an adapter returns must be: typed, and bounded to what the
    inbox stores."""
    assert isinstance(message, InboundMessage)
    for name in ("platform_id", "conversation", "sender"):
        value = getattr(message, name)
        assert isinstance(value, str) and len(value) <= WIDTHS[name], (name, value[:80])
    for name in ("sender_name", "mention", "lang_hint", "reply_to"):
        value = getattr(message, name)
        assert value is None or (isinstance(value, str) and len(value) <= WIDTHS[name]), name
    assert isinstance(message.text, str) and len(message.text) <= MAX_TEXT
    assert message.reply_context is None or isinstance(message.reply_context, str)
    assert message.media is None or message.media in MEDIA_KINDS
    assert isinstance(message.public, bool)


# --- JSON -------------------------------------------------------------------------------------

# Lengths that sit on the adapters' limits (255 ids, 2000 web chat, 4096 Telegram, 10 000 texts).
EDGE_LENGTHS = (0, 1, 16, 17, 255, 256, 2000, 2001, 10_000, 10_001)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(EDGE_LENGTHS).map(lambda n: "x" * n),
    st.sampled_from(["", " ", "\x00", "\ud800", "@", "<@U1>", "١٧٠٠٠٠٠٠٠٠", "1e309", "-1"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, document: Any, keys: tuple[str, ...] = ()) -> Any:
    """`document` (a fixture) with one to three values replaced, keys removed or added."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        node = document
        for _depth in range(draw(st.integers(0, 6))):
            children = _children(node)
            if not children:
                break
            node = children[draw(st.integers(0, len(children) - 1))]
        if isinstance(node, dict):
            choices = sorted(node) + list(keys) or ["id"]
            key = draw(st.sampled_from(choices))
            if draw(st.booleans()) and key in node:
                del node[key]
            else:
                node[key] = draw(json_values)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
    return document


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [value for value in node.values() if isinstance(value, dict | list)]
    if isinstance(node, list):
        return [value for value in node if isinstance(value, dict | list)]
    return []


def deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def json_bodies(seeds: list[Any], keys: tuple[str, ...] = ()) -> st.SearchStrategy[bytes]:
    """Request bodies: mostly fixtures changed in places, also any JSON, raw bytes, deep nesting
    and broken encodings."""
    structured = st.sampled_from(seeds).flatmap(lambda seed: mutated(seed, keys))
    return st.one_of(
        structured.map(lambda value: json.dumps(value).encode()),
        structured.map(
            lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        structured.map(lambda value: json.dumps(value).encode("utf-16")),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=200),
        st.sampled_from([60, 64, 65, 1000, 100_000]).map(deep_json),
        st.sampled_from([b"", b"{", b"[]", b"null", b'"x"', b"1e999", b"NaN", b'{"a":1,"a":2}']),
    )


def headers(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """Headers with the names an adapter reads (and others), any values: digits of other
    scripts, huge numbers, control characters."""
    values = st.one_of(
        texts,
        st.integers(min_value=-(10**20), max_value=10**400).map(str),
        st.sampled_from(["sha256=", "v0=", "Bearer ", "1700000000", "١٧٠٠٠٠٠٠٠٠", "0x10"]),
    )
    return st.dictionaries(st.sampled_from((*names, "Content-Type", "X-Other")), values, max_size=4)


def queries(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from((*names, "other")), texts, max_size=len(names) + 1)


# --- XML --------------------------------------------------------------------------------------


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_xml(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """WeChat messages: fixtures with fields changed or added, any XML, DTDs, deep nesting."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(seeds))
    if kind == 1:
        fields = {
            "ToUserName": "gh_1",
            "FromUserName": "openid",
            "CreateTime": "1700000000",
            "MsgType": "text",
            "Content": "hi",
            "MsgId": "1",
        }
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from([*fields, "Event", "Encrypt", "a b", "x:y"]))
            fields[name] = draw(texts)
        inner = "".join(
            f"<{name}>{_cdata(value) if draw(st.booleans()) else _escape(value)}</{name}>"
            for name, value in fields.items()
        )
        text = f"<xml>{inner}</xml>"
        encoding = draw(st.sampled_from(["utf-8", "utf-16", "gb18030"]))
        declared = f'<?xml version="1.0" encoding="{encoding}"?>' if draw(st.booleans()) else ""
        try:
            return (declared + text).encode(encoding if declared else "utf-8", "surrogatepass")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")
    if kind == 2:
        depth = draw(st.sampled_from([2, 8, 9, 100, 50_000]))
        return b"<xml>" + b"<a>" * depth + b"</a>" * depth + b"</xml>"
    if kind == 3:
        dtd = (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><MsgType>text</MsgType>'
            "<Content>&b;</Content><FromUserName>o</FromUserName><MsgId>1</MsgId></xml>"
        )
        return dtd.encode(draw(st.sampled_from(["utf-16", "utf-8"])))
    if kind == 4:
        return draw(st.binary(max_size=300))
    seed = draw(st.sampled_from(seeds))
    cut = draw(st.integers(0, len(seed)))
    return seed[:cut] + draw(st.binary(max_size=20)) + seed[cut:]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- E-mail -----------------------------------------------------------------------------------

MAIL_HEADERS = (
    "From",
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Language",
    "Auto-Submitted",
    "Precedence",
    "Return-Path",
    "List-Id",
    "Authentication-Results",
    "Content-Type",
    "Content-Transfer-Encoding",
)
header_values = st.one_of(
    texts,
    st.sampled_from(
        [
            "=?utf-8?b?5aaC5L2V?=",
            "=?gb2312?q?=C4=E3?=",
            "=?bogus?q?x?=",
            "=?utf-8?b?!!!?=",
            "Alice <alice@example.org>",
            '"A (b) c" <a@b>, <c@d>',
            "((((((((a@b))))))))",
            "<a@b> <c@d>",
            "text/plain; charset=gb2312",
            "text/html; charset=unknown-8bit",
            "multipart/alternative; boundary=b",
            "text/plain; title*0*=us-ascii'en'a; title*1*=b",
            "base64",
            "quoted-printable",
            "auto-replied",
            "bulk",
            "<>",
        ]
    ),
    st.integers(1, 200).map(lambda n: "".join(f"; p*{i}*=x" for i in range(n))),
)


@st.composite
def mails(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Mails: fixtures with headers replaced or bytes spliced in, and mails built from parts."""
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a real mail, changed
        seed = draw(st.sampled_from(seeds))
        cut = draw(st.integers(0, len(seed)))
        return seed[:cut] + draw(st.binary(max_size=40)) + seed[draw(st.integers(cut, len(seed))) :]
    if kind == 1:  # raw header lines, any values
        lines = [
            f"{draw(st.sampled_from(MAIL_HEADERS))}: {draw(header_values)}"
            for _ in range(draw(st.integers(0, 8)))
        ]
        body = draw(st.one_of(texts, st.sampled_from(["<p>a</p><blockquote>b</blockquote>"])))
        text = "\r\n".join(lines) + "\r\n\r\n" + body
        return text.encode("utf-8", "surrogatepass") + draw(st.binary(max_size=8))
    if kind == 2:  # a well-formed MIME mail with odd contents
        message = EmailMessage(policy=SMTP)
        message["From"] = "citizen@example.org"
        message["Message-ID"] = "<q@example.org>"
        message.set_content(draw(st.text(max_size=200)))
        if draw(st.booleans()):
            message.add_alternative(draw(st.text(max_size=200)), subtype="html")
        if draw(st.booleans()):
            message.add_attachment(draw(st.binary(max_size=50)), "application", "octet-stream")
        for number, part in enumerate(message.walk()):  # else the generator uses `random`
            if part.is_multipart():
                part.set_boundary(f"=_civicdesk_fuzz_{number}")
        data = message.as_bytes()
        return data.replace(b"citizen@example.org", draw(texts).encode("utf-8", "surrogatepass"))
    return draw(st.binary(max_size=400))
