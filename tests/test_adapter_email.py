"""The e-mail adapter without a mail server: reading mail, stripping quotes, composing answers,
and sending them to a real SMTP server (aiosmtpd) with the error classification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.header import Header
from email.message import EmailMessage
from pathlib import Path

import pytest

from adapters import ADAPTERS
from adapters.email import EmailAdapter
from adapters.email_imap import ImapAccount, is_loopback
from adapters.email_parse import authentication_summary, read_mail, reply_subject
from adapters.email_quotes import strip_reply
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import TEXT_RULES, RawRequest
from bot.platform.messages import OutboundMessage
from tests.mail_support import SmtpSink, citizen_mail, free_port, smtp_sink

FIXTURES = Path(__file__).parent / "fixtures" / "email"
TALON = sorted(FIXTURES.glob("talon_*.eml"))
DESK = "desk@example.gov"


def adapter(smtp_port: int = 25, **extra: object) -> EmailAdapter:
    imap = ImapAccount("127.0.0.1", 1, DESK, Secret("pw"), tls="none")
    options: dict[str, object] = {"smtp_host": "127.0.0.1", "smtp_tls": "none", **extra}
    return EmailAdapter(
        "email",
        imap,
        from_address=f"Court Desk <{DESK}>",
        smtp_port=smtp_port,
        **options,  # type: ignore[arg-type]
    )


# --- reading mail -----------------------------------------------------------------------------


def test_the_talon_fixtures_are_all_here() -> None:
    assert len(TALON) == 5


@pytest.mark.parametrize("path", TALON, ids=lambda p: p.stem)
def test_each_talon_reply_strips_to_hello(path: Path) -> None:
    mail = read_mail(path.read_bytes(), own_address=DESK)
    assert mail.text == "Hello"
    assert mail.automatic is None


def test_fixture_fields_a_user_would_notice() -> None:
    mail = read_mail((FIXTURES / "talon_reply_yahoo.eml").read_bytes(), own_address=DESK)
    assert mail.message_id == "<1333374330.68772.YahooMailNeo@web114411.mail.gq1.yahoo.com>"
    assert mail.in_reply_to == "<1333374262.7063.15.camel@mg5>"
    assert mail.address == "xxx@yahoo.com"
    assert mail.name == "Alex Q"
    assert mail.subject == "Re: Test"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "你好，请问怎么交费？\n\n在 2024年3月1日 10:00，市民热线 <d@gov.cn> 写道：\n> 您好",
            "你好，请问怎么交费？",
        ),
        ("問題\n\n於 2024年3月1日 週五，法院 <d@gov.tw> 寫道：\n> 舊", "問題"),
        ("Hi\n\nOn Mon, Mar 4, 2024 at 10:00 AM Desk <\nd@example.gov> wrote:\n\n> old\n", "Hi"),
        ("Neu\n\nAm 04.03.2024 um 10:00 schrieb Desk <d@x.de>:\n> alt", "Neu"),
        ("Nouveau\n\nLe lun. 4 mars 2024, Desk <d@x.fr> a écrit :\n> vieux", "Nouveau"),
        (
            "你好\n\n------------------ 原始邮件 ------------------\n"
            "发件人: x\n发送时间: y\n主题: z",
            "你好",
        ),
        (
            "你好\n\n发件人: 法院 <d@gov.cn>\n发送时间: 2024年3月1日\n收件人: 我\n主题: 回复\n\n旧",
            "你好",
        ),
        ("Hello\n\n-----Original Message-----\nFrom: a\nSent: b\n\nold", "Hello"),
        ("Hello\n\n________________________________\nFrom: D <d@x>\nSent: Mon\nTo: me", "Hello"),
        ("Question\n\n-- \nJohn Doe\n+1 555", "Question"),
        (
            "请问诉讼费在哪里交\n\n发自我的iPhone\n\n在 2024年3月1日 写道：\n> 旧",
            "请问诉讼费在哪里交",
        ),
        ("> quoted first\nmy answer\n> more\nand more", "my answer\nand more"),
        ("From now on I write here.\nTo be clear: this is new.", None),
        ("On Monday I went there.\nThey wrote: nothing.", None),
        ("第一行\n第二行\n法院 <d@gov.cn> 写道：\n> 旧", "第一行\n第二行"),
    ],
)
def test_strip_reply(text: str, expected: str | None) -> None:
    assert strip_reply(text) == (text if expected is None else expected)


def _raw_mail(headers: dict[str, str], body: bytes, content_type: str) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + f"Content-Type: {content_type}\r\n\r\n".encode() + body


def test_gb2312_label_with_gbk_characters_is_read() -> None:
    # 镕 is in GBK but not in GB2312: clients label such mail GB2312 anyway.
    subject = Header("关于朱镕基的问题", "gbk").encode().replace("gbk", "gb2312")
    raw = _raw_mail(
        {
            "From": f"{Header('张三', 'gb2312').encode()} <zhang@example.cn>",
            "Subject": subject,
            "Message-ID": "<a1@example.cn>",
        },
        "请问朱镕基路的诉讼服务中心几点开门？\r\n".encode("gbk"),
        "text/plain; charset=gb2312",
    )
    mail = read_mail(raw, own_address=DESK)
    assert mail.text == "请问朱镕基路的诉讼服务中心几点开门？"
    assert mail.subject == "关于朱镕基的问题"
    assert mail.name == "张三"


def test_big5_mail_is_read() -> None:
    raw = _raw_mail(
        {"From": "chan@example.hk", "Subject": Header("查詢", "big5").encode()},
        "請問如何繳納訴訟費？\r\n".encode("big5"),
        "text/plain; charset=big5",
    )
    mail = read_mail(raw, own_address=DESK)
    assert (mail.text, mail.subject) == ("請問如何繳納訴訟費？", "查詢")


def test_unlabelled_8bit_utf8_is_read() -> None:
    raw = _raw_mail({"From": "a@example.cn"}, "如何缴纳诉讼费？".encode(), "text/plain")
    assert read_mail(raw, own_address=DESK).text == "如何缴纳诉讼费？"


def test_html_only_mail_becomes_text_without_the_quote() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><div>如何缴纳诉讼费？</div>"
        "<div>谢谢&amp;祝好</div><div class=gmail_quote>"
        "在 2024年3月1日 法院 &lt;d@gov.cn&gt; 写道："
        "<blockquote><div>旧的内容</div></blockquote></div></body></html>"
    )
    raw = _raw_mail({"From": "a@example.cn"}, html.encode(), "text/html; charset=utf-8")
    assert read_mail(raw, own_address=DESK).text == "如何缴纳诉讼费？\n谢谢&祝好"


def test_plain_part_is_preferred_over_html() -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.cn"
    mail.set_content("plain question")
    mail.add_alternative("<p>html question</p>", subtype="html")
    assert read_mail(mail.as_bytes(), own_address=DESK).text == "plain question"


def test_empty_body_falls_back_to_the_subject() -> None:
    raw = citizen_mail("", subject="Re: 如何缴纳诉讼费？")
    assert read_mail(raw, own_address=DESK).text == "如何缴纳诉讼费？"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated; type=vacation"},
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Precedence": "junk"},
        {"List-Id": "<news.example.cn>"},
        {"X-Autoreply": "yes"},
        {"Return-Path": "<>"},
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str]) -> None:
    mail = read_mail(citizen_mail("I am away", headers=headers), own_address=DESK)
    assert mail.automatic


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@mx.example.cn", "postmaster@example.cn", f"Desk <{DESK.upper()}>"]
)
def test_bounces_and_own_mail_are_recognised(sender: str) -> None:
    assert read_mail(citizen_mail("x", sender=sender), own_address=DESK).automatic


def test_auto_submitted_no_is_a_person() -> None:
    raw = citizen_mail("question", headers={"Auto-Submitted": "no"})
    assert read_mail(raw, own_address=DESK).automatic is None


def test_inbound_message_fields() -> None:
    raw = citizen_mail(
        "如何缴纳诉讼费？\n\n在 2024年3月1日，法院 <desk@example.gov> 写道：\n> 您好",
        subject="Re: 诉讼费",
        message_id="<q2@example.cn>",
        headers={
            "In-Reply-To": "<a1@example.gov>",
            "References": "<q1@example.cn> <a1@example.gov>",
            "Reply-To": "Zhang <zhang.reply@example.cn>",
            "Content-Language": "zh-CN",
            "Authentication-Results": "mx.example.gov; dkim=pass header.d=example.cn",
        },
    )
    message = adapter().inbound(7, 42, raw)
    assert message is not None
    assert message.platform_id == "<q2@example.cn>"
    assert message.conversation == "<q1@example.cn>"  # the thread's root
    assert message.reply_to == "<a1@example.gov>"
    assert message.sender == "zhang.san@example.cn"
    assert message.sender_name == "Zhang San"
    assert message.text == "如何缴纳诉讼费？"
    assert message.public is False
    assert message.lang_hint == "zh"
    assert message.raw["authentication_results"] == [
        "mx.example.gov; dkim=pass header.d=example.cn"
    ]
    assert json.loads(message.reply_context or "") == {
        "message_id": "<q2@example.cn>",
        "references": ["<q1@example.cn>", "<a1@example.gov>"],
        "subject": "Re: 诉讼费",
        "to": "zhang.reply@example.cn",
    }


def test_authentication_summary_reads_the_topmost_header() -> None:
    top = "mx.example.gov; spf=pass smtp.mailfrom=example.cn; dkim=fail; dmarc=fail (p=reject)"
    forged = "mx.example.gov; dmarc=pass"
    assert authentication_summary((top, forged)) == "spf=pass dkim=fail dmarc=fail"
    assert authentication_summary(()) == "no Authentication-Results"


def test_mail_without_message_id_is_keyed_on_the_uid() -> None:
    raw = b"From: a@example.cn\r\nSubject: q\r\n\r\nquestion\r\n"
    message = adapter().inbound(7, 42, raw)
    assert message is not None
    assert (message.platform_id, message.conversation) == ("7:42", "7:42")


def test_automatic_mail_gives_no_message() -> None:
    raw = citizen_mail("away", headers={"Auto-Submitted": "auto-replied"})
    assert adapter().inbound(7, 42, raw) is None


def test_no_webhook_for_email() -> None:
    raw = RawRequest("POST", "/webhooks/email", {}, {}, b"{}")
    reply = adapter().handshake(raw)
    assert reply is not None and reply.status == 404
    assert adapter().parse(raw) == []


# --- composing and sending ----------------------------------------------------------------------


def answer(text: str = "可通过网上缴费。", reply_id: int = 9, **context: object) -> OutboundMessage:
    ctx = {
        "message_id": "<q2@example.cn>",
        "references": ["<q1@example.cn>", "<a1@example.gov>"],
        "subject": "RE: Re: 诉讼费",
        "to": "zhang.reply@example.cn",
        **context,
    }
    return OutboundMessage(
        id=reply_id,
        channel="email",
        conversation="<q1@example.cn>",
        text=text,
        public=False,
        recipient="zhang.san@example.cn",
        reply_to="<q2@example.cn>",
        reply_context=json.dumps(ctx, ensure_ascii=False),
    )


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with smtp_sink() as server:
        yield server


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Test", "Re: Test"),
        ("Re: Test", "Re: Test"),
        ("RE: re: Test", "Re: Test"),
        ("回复：咨询", "Re: 咨询"),
        ("AW: Frage", "Re: Frage"),
        ("", "Re:"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


async def test_send_threads_the_answer(sink: SmtpSink) -> None:
    result = await adapter(sink.port).send(answer())
    assert result.ok
    (mail,) = sink.mails
    assert mail.sender == DESK
    assert mail.recipients == ["zhang.reply@example.cn"]  # Reply-To wins over From
    message = mail.message
    assert message["Subject"] == "Re: 诉讼费"
    assert message["In-Reply-To"] == "<q2@example.cn>"
    assert str(message["References"]).split() == [
        "<q1@example.cn>",
        "<a1@example.gov>",
        "<q2@example.cn>",
    ]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["From"] == f"Court Desk <{DESK}>"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().strip() == "可通过网上缴费。"
    assert result.platform_id == message["Message-ID"]
    assert str(message["Message-ID"]).endswith("@example.gov>")


async def test_a_resend_carries_the_same_message_id(sink: SmtpSink) -> None:
    channel = adapter(sink.port)
    first = await channel.send(answer(reply_id=9))
    again = await channel.send(answer(reply_id=9))
    other = await channel.send(answer(reply_id=10))
    ids = [str(m.message["Message-ID"]) for m in sink.mails]
    assert ids[0] == ids[1] == first.platform_id == again.platform_id
    assert ids[2] != ids[0] and ids[2] == other.platform_id


async def test_long_lines_stay_within_998_octets(sink: SmtpSink) -> None:
    text = "如何缴纳诉讼费" * 400 + " https://court.example.gov/" + "x" * 1200
    assert await adapter(sink.port).send(answer(text=text))
    data = sink.mails[0].data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert sink.mails[0].message.get_content().strip() == text


async def test_without_context_the_recipient_gets_it(sink: SmtpSink) -> None:
    msg = answer()
    bare = OutboundMessage(
        id=3, channel="email", conversation="c", text="hi", public=False, recipient="a@example.cn"
    )
    assert (await adapter(sink.port).send(bare)).ok
    assert sink.mails[0].recipients == ["a@example.cn"]
    assert "In-Reply-To" not in sink.mails[0].message
    assert msg.reply_context


async def test_temporary_smtp_failure_is_retryable(sink: SmtpSink) -> None:
    sink.reply_with = "451 4.3.0 Try again later"
    result = await adapter(sink.port).send(answer())
    assert not result.ok and result.retryable
    assert "451" in (result.error or "")


async def test_refused_recipient_is_permanent(sink: SmtpSink) -> None:
    sink.refuse_recipients = "550 5.1.1 No such user"
    result = await adapter(sink.port).send(answer())
    assert not result.ok and not result.retryable
    assert "550" in (result.error or "")


async def test_rejected_data_is_permanent(sink: SmtpSink) -> None:
    sink.reply_with = "554 5.7.1 Message rejected as spam"
    result = await adapter(sink.port).send(answer())
    assert not result.ok and not result.retryable


async def test_no_server_is_retryable() -> None:
    result = await adapter(free_port()).send(answer())
    assert not result.ok and result.retryable


async def test_no_address_is_permanent(sink: SmtpSink) -> None:
    bare = OutboundMessage(id=3, channel="email", conversation="c", text="hi", public=False)
    result = await adapter(sink.port).send(bare)
    assert not result.ok and not result.retryable
    assert sink.mails == []


def test_email_counts_plain_characters() -> None:
    channel = adapter()
    assert channel.text_rules is TEXT_RULES["email"]
    assert channel.text_rules.count("如何 pay 🙂 https://x.cn @a") == 24


# --- configuration --------------------------------------------------------------------------


def environ(**extra: str) -> dict[str, str]:
    return {
        "CIVICDESK_EMAIL_IMAP_HOST": "imap.example.gov",
        "CIVICDESK_EMAIL_IMAP_USER": DESK,
        "CIVICDESK_EMAIL_IMAP_PASSWORD": "secret-imap",
        "CIVICDESK_EMAIL_SMTP_HOST": "smtp.example.gov",
        "CIVICDESK_EMAIL_SMTP_USER": DESK,
        "CIVICDESK_EMAIL_SMTP_PASSWORD": "secret-smtp",
        "CIVICDESK_EMAIL_FROM": DESK,
        **extra,
    }


def build(env: dict[str, str]) -> EmailAdapter:
    (config,) = read_channels(env, ("email",), ADAPTERS)
    built = ADAPTERS["email"].build(config)
    assert isinstance(built, EmailAdapter)
    return built


def test_defaults_are_implicit_tls() -> None:
    channel = build(environ())
    assert (channel.imap.port, channel.imap.tls, channel.imap.mailbox) == (993, "implicit", "INBOX")
    assert (channel.smtp_port, channel.smtp_tls, channel.poll_interval) == (465, "implicit", 60.0)
    assert "secret" not in repr(vars(channel)) and "secret" not in repr(channel.imap)


def test_starttls_defaults_to_port_587() -> None:
    assert build(environ(CIVICDESK_EMAIL_SMTP_TLS="starttls")).smtp_port == 587


@pytest.mark.parametrize("key", ["IMAP_TLS", "SMTP_TLS"])
def test_plaintext_to_a_remote_server_is_refused(key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}=none"):
        build(environ(**{f"CIVICDESK_EMAIL_{key}": "none"}))


def test_plaintext_to_loopback_is_allowed() -> None:
    channel = build(
        environ(
            CIVICDESK_EMAIL_IMAP_HOST="127.0.0.1",
            CIVICDESK_EMAIL_IMAP_TLS="none",
            CIVICDESK_EMAIL_SMTP_HOST="localhost",
            CIVICDESK_EMAIL_SMTP_TLS="none",
        )
    )
    assert channel.smtp_port == 25
    assert is_loopback("::1") and not is_loopback("10.0.0.1")


def test_api_base_is_refused() -> None:
    with pytest.raises(ConfigError, match="calls no platform API"):
        build(environ(CIVICDESK_EMAIL_API_BASE="http://127.0.0.1:1"))


def test_bad_from_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="CIVICDESK_EMAIL_FROM"):
        build(environ(CIVICDESK_EMAIL_FROM="desk"))


def test_composed_message_parses_back() -> None:
    message = adapter().compose(answer())
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Re: 诉讼费"


# --- Issue 12: quoted history of Outlook.com / Hotmail, Lotus Notes, zh and en headers --------

# Hotmail's HTML replies as recorded in Odoo's mail test data (odoo/odoo, addons/mail tests:
# QUOTE_HOTMAIL_HTML and HOTMAIL_1, LGPL-3): <hr id="stopSpelling"> then the Date / Subject /
# From / To lines of the quoted message, with no <blockquote>.
HOTMAIL_STOP_SPELLING = (
    "<html><head><style><!--\n.hmmessage P\n{\nmargin:0px;\npadding:0px\n}\n--></style></head>\n"
    "<body class='hmmessage'>\n<div dir='ltr'>I don't like that.<br><br>\n"
    '<div><hr id="stopSpelling">\nDate: Tue, 5 Jan 2016 10:24:48 +0100<br>\n'
    "Subject: Test from gmail<br>\nFrom: poilvache@example.com<br>\n"
    "To: tartelette@example.com grosbedon@example.com<br><br>\n"
    '<div dir="ltr"><b><i>Test reply. The suite.</i></b>\n<br clear="all"><div><br>\n'
    '</div>-- <br><div class="ecxgmail_signature">\nRaoul Poilvache</div>\n'
    "</div></div></div></body></html>"
)
HOTMAIL_SUBJECT_FIRST = (
    '<div>\n<div dir="ltr"><br>\nI have an amazing company, i\'m learning OpenERP.\n'
    '<br><br>Kindest regards,<br>xxx<br>\n<div>\n<div id="SkyDrivePlaceholder">\n</div>\n'
    '<hr id="stopSpelling">\nSubject: Re: your OpenERP.com registration<br>From: xxx@xxx.xxx'
    "<br>To: xxx@xxx.xxx<br>Date: Wed, 27 Mar 2013 17:12:12 +0000\n<br><br>\nHello xxx,\n<br>\n"
    "I noticed you recently created an OpenERP.com account.\n</div>\n</div>\n</div>"
)
# Outlook.com / Outlook on the web today: <div id="appendonsend"> and <hr tabindex="-1">
# above <div id="divRplyFwdMsg"> with the bold From / Sent / To / Subject block.
OUTLOOK_COM = (
    '<html><body><div dir="ltr">请问诉讼费怎么交？</div>'
    '<div id="appendonsend"></div>'
    '<hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt">'
    "<b>From:</b> Court Desk &lt;desk@example.gov&gt;<br><b>Sent:</b> Monday, 4 May 2026 09:12"
    "<br><b>To:</b> Zhang San &lt;zhang@example.cn&gt;<br><b>Subject:</b> Re: 诉讼费</font>"
    "<div>&nbsp;</div></div><div>诉讼费可在诉讼服务中心缴纳。</div></body></html>"
)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (HOTMAIL_STOP_SPELLING, "I don't like that."),
        (
            HOTMAIL_SUBJECT_FIRST,
            "I have an amazing company, i'm learning OpenERP.\nKindest regards,\nxxx",
        ),
        (OUTLOOK_COM, "请问诉讼费怎么交？"),
    ],
)
def test_outlook_com_and_hotmail_html_replies_keep_only_the_new_text(
    html: str, expected: str
) -> None:
    raw = _raw_mail({"From": "a@example.cn"}, html.encode(), "text/html; charset=utf-8")
    assert read_mail(raw, own_address=DESK).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Hotmail's text part: the header block starts with Date, not From.
        (
            "Where do I pay?\n\nDate: Tue, 5 Jan 2016 10:24:48 +0100\nSubject: Re: fees\n"
            "From: desk@example.gov\nTo: a@example.com\n\nPay at the counter.",
            "Where do I pay?",
        ),
        # Lotus Notes: the author's hierarchical name and the date above To / cc / Subject.
        (
            "Thank you, and the court fee?\n\n\n\nCourt Desk/Court/Gov@Gov\n"
            "04/05/2026 09:12 AM\n\nTo\nZhang San/Citizens@Citizens\ncc\n\nSubject\nRe: hearing",
            None,
        ),
        (
            "Thank you, and the court fee?\n\nCourt Desk/Court/Gov@Gov\n04/05/2026 09:12 AM\n"
            "To: Zhang San/Citizens@Citizens\ncc: \nSubject: Re: hearing\n\nThe hearing is ...",
            "Thank you, and the court fee?",
        ),
        (
            'And the fee?\n\n-----"Court Desk" <desk@example.gov> wrote: -----\nTo: a@b.c\n'
            "From: desk@example.gov\nDate: 04/05/2026 09:12AM\nSubject: Re: hearing\n\nold",
            "And the fee?",
        ),
        (
            "诉讼费怎么交\n\n-----原始邮件-----\n发件人: 法院\n发送时间: 2026年5月4日\n\n旧",
            "诉讼费怎么交",
        ),
        (
            "诉讼费怎么交\n\n发件人: 法院 <d@gov.cn>\n发送时间: 2026年5月4日 9:12\n\n旧的答复",
            "诉讼费怎么交",
        ),
        (
            "诉讼费怎么交\n\n在 2026年5月4日 09:12，法院 <d@gov.cn> 写道：\n您好，关于开庭……",
            "诉讼费怎么交",
        ),
        (
            "And the fee?\n\nOn Mon, May 4, 2026 at 9:12 AM Court Desk <desk@example.gov> wrote:\n"
            "The hearing is on Tuesday.",
            "And the fee?",
        ),
        ("And the fee?\n\n---------- Forwarded message ---------\nFrom: x\n\nold", "And the fee?"),
    ],
)
def test_reply_and_forward_headers_cut_the_history(text: str, expected: str | None) -> None:
    if expected is None:  # Lotus Notes' table layout without colons: the name and date lines
        assert strip_reply(text) == "Thank you, and the court fee?"
        return
    assert strip_reply(text) == expected


def test_a_mail_with_only_an_attachment_is_a_message_with_its_kind() -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.cn"
    mail["Message-ID"] = "<scan@example.cn>"
    mail.set_content("")
    mail.add_attachment(b"\x89PNG\r\n", maintype="image", subtype="png", filename="letter.png")
    message = adapter().inbound(1, 7, mail.as_bytes())
    assert message is not None
    assert (message.text, message.media) == ("", "image")
