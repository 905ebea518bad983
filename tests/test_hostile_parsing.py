"""What a hostile sender's payload does to the parsers (issue 11, findings 3 and 4, and the same
review of XML and HTML): bounded work, a clear 400 (or a skipped mail), and a server that keeps
answering meanwhile."""

from __future__ import annotations

import asyncio
import email._header_value_parser as header_parser
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_support import SMALL_KB, environment, served_app

import adapters.email as email_adapter
from adapters.email import EmailAdapter
from adapters.email_imap import ImapAccount
from adapters.email_limits import MAX_PARAMETERS, MailRefused
from adapters.email_parse import html_to_text, read_mail
from adapters.email_quotes import strip_reply
from adapters.line import LineAdapter
from adapters.mastodon_text import question_text
from adapters.matrix_appservice import MatrixAppServiceAdapter
from adapters.matrix_events import Identity, pill_names
from adapters.slack import SlackAdapter
from adapters.telegram import TelegramAdapter
from adapters.webchat import WebchatAdapter
from adapters.webhook import WebhookAdapter
from adapters.wechat import WeChatAdapter
from adapters.weibo import WeiboAdapter
from bot.config.settings import Secret
from bot.gateway.web import healthz
from bot.platform.adapter import BadRequest, RawRequest
from tests.mail_support import Dovecot, citizen_mail, dovecot_missing, running_dovecot

LEVELS = 100_000
DEEP = b'{"a":' * LEVELS + b"1" + b"}" * LEVELS


def hostile_mail(parameters: int = 10_000) -> bytes:
    """The mail of finding 3: 262 KiB, 10,000 RFC 2231 continuations of one parameter."""
    continued = "".join(f";\r\n title*{n}*=abcdefghijklmn" for n in range(parameters))
    return (
        "From: someone@example.org\r\nTo: desk@example.gov\r\nSubject: hello\r\n"
        "Message-ID: <hostile@example.org>\r\n"
        f"Content-Type: text/plain; charset=utf-8{continued}\r\n\r\nWhere do I pay?\r\n"
    ).encode()


# --- Finding 4: deeply nested JSON ------------------------------------------------------------


def json_channels() -> list[tuple[str, Any, RawRequest]]:
    bot = Identity("@civicdesk:example.org")
    post = RawRequest("POST", "/webhooks/x", {}, {"Content-Type": "application/json"}, DEEP)
    put = RawRequest("PUT", "/webhooks/matrix/_matrix/app/v1/transactions/1", {}, {}, DEEP)
    return [
        ("webchat", WebchatAdapter("webchat"), post),
        ("webhook", WebhookAdapter("webhook", Secret("s"), "http://127.0.0.1:1"), post),
        ("telegram", TelegramAdapter("telegram", Secret("1:a"), Secret("s")), post),
        ("slack", SlackAdapter("slack", Secret("s"), Secret("xoxb-1")), post),
        ("line", LineAdapter("line", Secret("s"), Secret("t")), post),
        ("weibo", WeiboAdapter("weibo", Secret("t"), app_secret=Secret("s")), post),
        (
            "matrix",
            MatrixAppServiceAdapter("matrix", "http://x", Secret("a"), Secret("h"), bot),
            put,
        ),
    ]


@pytest.mark.parametrize(("name", "adapter", "raw"), json_channels(), ids=lambda v: str(v)[:8])
def test_json_nested_100000_levels_is_a_bad_request_on_every_json_channel(
    name: str, adapter: Any, raw: RawRequest
) -> None:
    with pytest.raises(BadRequest, match="nests deeper than 64 levels"):
        adapter.parse(raw)


def test_a_slack_url_verification_nested_100000_levels_is_no_handshake() -> None:
    body = b'{"type":"url_verification","challenge":' + DEEP + b"}"
    adapter = SlackAdapter("slack", Secret("s"), Secret("xoxb-1"))
    assert adapter.handshake(RawRequest("POST", "/webhooks/slack", {}, {}, body)) is None


async def test_a_transaction_nested_100000_levels_is_left_to_parse_by_prepare() -> None:
    """Slack's and the Matrix application service's `prepare` read the body before `parse`:
    the deep document must reach parse's 400, not raise RecursionError (a 500) on the way."""
    bot = Identity("@civicdesk:example.org")
    slack = SlackAdapter("slack", Secret("s"), Secret("xoxb-1"))
    matrix = MatrixAppServiceAdapter("matrix", "http://127.0.0.1:1", Secret("a"), Secret("h"), bot)
    post = RawRequest("POST", "/webhooks/slack", {}, {}, DEEP)
    put = RawRequest("PUT", "/webhooks/matrix/_matrix/app/v1/transactions/1", {}, {}, DEEP)
    for adapter, raw in ((slack, post), (matrix, put)):
        await adapter.prepare(raw)
        with pytest.raises(BadRequest, match="nests deeper than 64 levels"):
            adapter.parse(raw)


def test_nesting_up_to_the_limit_is_read() -> None:
    """A question whose `raw` nests 60 levels (within 64) is still a question."""
    nested: Any = "leaf"
    for _ in range(60):
        nested = {"n": nested}
    body = json.dumps({"id": "m-1234567890", "conversation": "c-1234567890", "text": "hi"})
    body = body[:-1] + ', "extra": ' + json.dumps(nested) + "}"
    raw = RawRequest(
        "POST", "/webhooks/webchat", {}, {"Content-Type": "application/json"}, body.encode()
    )
    [message] = WebchatAdapter("webchat").parse(raw)
    assert message.text == "hi"


async def test_the_unsigned_web_chat_answers_400_to_deep_json(tmp_path: Path) -> None:
    app, _, _ = await served_app(
        environment(tmp_path / "db.sqlite", "http://127.0.0.1:1/hook"), SMALL_KB, workers=False
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/webhooks/webchat", data=DEEP, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
        assert "deeper than 64" in (await response.json())["error"]


# --- Finding 3: the e-mail with 10,000 RFC 2231 parameters ------------------------------------


def test_the_10000_parameter_mail_is_refused_before_the_header_parser_sees_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real = header_parser.parse_mime_parameters

    def spy(value: str) -> Any:
        parsed.append(value)
        return real(value)

    monkeypatch.setattr(header_parser, "parse_mime_parameters", spy)
    with pytest.raises(MailRefused, match="the Content-Type header is 298929 characters long"):
        read_mail(hostile_mail(), own_address="desk@example.gov")
    assert parsed == []  # the quadratic parser never ran


def test_a_short_header_with_too_many_parameters_is_refused() -> None:
    mail = hostile_mail(parameters=MAX_PARAMETERS + 1).replace(b"abcdefghijklmn", b"a")
    with pytest.raises(MailRefused, match=f"has 66 parameters: at most {MAX_PARAMETERS}"):
        read_mail(mail, own_address="desk@example.gov")


def test_a_mail_with_ordinary_parameters_is_read() -> None:
    mail = read_mail(hostile_mail(parameters=2), own_address="desk@example.gov")
    assert mail.text == "Where do I pay?"


@pytest.mark.parametrize(
    ("mail", "bound"),
    [
        (b"From: " + b"(" * 30_000 + b"a@b.c" + b")" * 30_000 + b"\r\n\r\nhi", "comments"),
        (
            b"From: a@b.c\r\n"
            + b"".join(
                b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                for i in range(3000)
            )
            + b"\r\nhi",
            "lines that may delimit MIME parts",
        ),
        (b"From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\n" * 3000, "multipart or message"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\nhi", "header fields"),
        (b"From: a@b.c\r\n\r\n" + b"x" * 2_000_001, "bytes long"),
    ],
    ids=["nested-comments", "nested-multipart", "nested-messages", "headers", "size"],
)
def test_mails_that_made_the_stdlib_recurse_or_crawl_are_refused(mail: bytes, bound: str) -> None:
    """Nested comments and nested multiparts raised RecursionError in the stdlib parsers."""
    with pytest.raises(MailRefused, match=bound):
        read_mail(mail, own_address="desk@example.gov")


def test_html_with_unclosed_tags_is_read_as_text() -> None:
    """html.parser rescans the rest at every "<" it cannot close (quadratic: 24 KB of "<a "
    took 16 s); the linear reader shows such text as a browser does."""
    assert html_to_text("<p>Where &amp; when?</p><a " + "<a " * 20_000).startswith("Where & when?")
    # As html.parser read them:
    assert html_to_text("<p>Where &amp; when?</p><a <a <a ") == "Where & when?\n<a <a <a"
    assert html_to_text("<p>a<br>b</p><script>x<y</script><blockquote>c</blockquote>") == (
        "a\nb\n> c\n"
    )


def test_an_outlook_reply_marked_by_attributes_is_cut_also_before_unclosed_tags() -> None:
    """The linear reader gives start tags' attributes: Outlook.com's history marker (an id) and
    Outlook's header border (a style) still cut the quoted history, whatever follows."""
    junk = "<a " * 20_000
    by_id = '<p>Where do I pay?</p><div id="divRplyFwdMsg"><b>From:</b> Desk</div><p>Old</p>'
    by_style = (
        "<p>Where do I pay?</p>"
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        "<p><b>From:</b> Desk</p></div><p>Old</p>"
    )
    for html in (by_id, by_style):
        assert strip_reply(html_to_text(html + junk)) == "Where do I pay?"
    assert strip_reply(html_to_text(by_id.replace("divRplyFwdMsg", "other"))) != "Where do I pay?"


def test_own_mentions_are_taken_out_of_html_with_unclosed_tags() -> None:
    """Mastodon's own mention link and Matrix's pill are found by the linear reader's href
    attribute (the patterns they replaced took seconds on 20 KB of '<a href="')."""
    junk = '<a href="' * 5_000
    url = "https://gov.social/@civicdesk"
    content = (
        f'<p>请问 <span class="h-card"><a href="{url}" class="u-url mention">@<span>civicdesk'
        "</span></a></span> 诉讼费怎么交</p>"
    )
    assert question_text(content + junk, own_urls=[url]).startswith("请问 诉讼费怎么交")
    bot = Identity("@civicdesk:example.org", "Civic Desk")
    pill = '<a href="https://matrix.to/#/@civicdesk:example.org">Civic Desk</a>: hello'
    assert pill_names({"formatted_body": pill + junk}, bot) == ["Civic Desk"]


# --- Finding 3: the server answers while a mail is parsed ---------------------------------------

pytestmark_dovecot = pytest.mark.skipif(
    dovecot_missing() is not None, reason=dovecot_missing() or ""
)


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


def mailbox(server: Dovecot) -> EmailAdapter:
    imap = ImapAccount(
        server.host, server.port, server.user, Secret(server.password), tls="none", timeout=10
    )
    return EmailAdapter(
        "email", imap, from_address=server.user, smtp_host="127.0.0.1", smtp_tls="none"
    )


@pytestmark_dovecot
async def test_healthz_answers_while_the_hostile_mail_is_parsed(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /healthz issued while the 10,000-parameter mail is being read completes before the
    read does. The read is held until /healthz has answered (or for at most 30 s): parsing on
    the event loop would hold /healthz too, and the order below would be reversed."""
    events: list[str] = []
    reading = threading.Event()
    answered = threading.Event()
    real: Callable[..., Any] = email_adapter.read_mail

    def held_read(data: bytes, **kw: Any) -> Any:
        try:
            return real(data, **kw)
        finally:
            if b"hostile@" in data:
                reading.set()
                answered.wait(30)
                events.append("mail read")

    monkeypatch.setattr(email_adapter, "read_mail", held_read)
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    await dovecot.append(hostile_mail())
    await dovecot.append(citizen_mail("Where do I pay?", message_id="<after@example.cn>"))

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    async with TestClient(TestServer(app)) as client:
        poll = asyncio.create_task(channel.poll(start.cursor))
        assert await asyncio.to_thread(reading.wait, 30)
        response = await client.get("/healthz")
        events.append(f"healthz {response.status}")
        answered.set()
        result = await poll

    assert events == ["healthz 200", "mail read"]
    # The hostile mail is skipped (refused), the next one is answered, the cursor moves past both.
    assert [m.platform_id for m in result.messages] == ["<after@example.cn>"]
    assert result.cursor is not None and json.loads(result.cursor)["uid"] == 2


# --- XML: WeChat ------------------------------------------------------------------------------


def wechat() -> WeChatAdapter:
    return WeChatAdapter("wechat", "wx0123456789abcdef", Secret("s"), Secret("t"))


def test_a_dtd_hidden_in_utf16_is_refused() -> None:
    """The DTD check searched the bytes for "<!ENTITY": in UTF-16 it was not found, and the
    entities were expanded into the stored question."""
    document = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><MsgType>text</MsgType>'
        "<FromUserName>o</FromUserName><MsgId>1</MsgId><Content>&b;&b;</Content></xml>"
    )
    raw = RawRequest("POST", "/webhooks/wechat", {}, {}, document.encode("utf-16"))
    with pytest.raises(BadRequest, match="DTD"):
        wechat().parse(raw)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<xml>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</xml>", "bytes long"),
        (b"<xml>" + b"<a>" * 9 + b"</a>" * 9 + b"</xml>", "deeper than 8"),
        (b'<?xml version="1.0" encoding="gb18030"?><xml><MsgType>text</MsgType></xml>', "UTF-8"),
    ],
    ids=["size", "depth", "multibyte-encoding"],
)
def test_xml_outside_the_bounds_is_a_bad_request(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        wechat().parse(RawRequest("POST", "/webhooks/wechat", {}, {}, body))
