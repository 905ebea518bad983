"""The e-mail channel in staff mode (a channel with a STAFF_ROOM, the staff's address): tickets
mailed to the staff with a Message-ID of ours, updates threaded on them, and a staff member's
reply to a ticket read back (quote and signature stripped) as acting on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters import ADAPTERS
from adapters.email import EmailAdapter
from adapters.email_imap import ImapAccount
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.messages import OutboundMessage
from tests.mail_support import SmtpSink, citizen_mail, smtp_sink

DESK = "desk@example.gov"
STAFF = "Duty desk <duty@example.gov>"
TICKET_TEXT = (
    "[civicdesk] New ticket Q7K2M9 · wechat (private) · citizen\n"
    "Question: 我的案件进展到哪一步了\n"
    "Reply in this thread to answer the citizen. Commands: claim / close <reason> / note <text>"
)


def staff_adapter(smtp_port: int = 25) -> EmailAdapter:
    imap = ImapAccount("127.0.0.1", 1, DESK, Secret("pw"), tls="none")
    return EmailAdapter(
        "email",
        imap,
        from_address=f"Court Desk <{DESK}>",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_tls="none",
        staff_room=STAFF,
    )


def post(reply_to: str | None = None, text: str = TICKET_TEXT, row: int = 5) -> OutboundMessage:
    return OutboundMessage(
        id=row, channel="email", conversation=STAFF, text=text, public=False, reply_to=reply_to
    )


# --- tickets and updates out -------------------------------------------------------------------


def test_a_ticket_goes_to_the_staff_with_the_tagged_first_line_as_subject() -> None:
    channel = staff_adapter()
    message = channel.compose(post())

    assert message["To"] == STAFF
    assert message["From"] == f"Court Desk <{DESK}>"
    assert message["Subject"] == "[civicdesk] New ticket Q7K2M9 · wechat (private) · citizen"
    assert message["In-Reply-To"] is None and message["References"] is None
    assert message["Message-ID"] == channel.message_id(post())  # deterministic: the platform id
    assert str(message["Message-ID"]).startswith("<civicdesk.5.")
    assert message["Auto-Submitted"] == "auto-generated"  # no out-of-office answers to it
    assert message.get_content().strip().splitlines() == TICKET_TEXT.splitlines()


def test_an_update_is_threaded_on_the_ticket() -> None:
    ticket_id = "<civicdesk.5.0123456789ab@example.gov>"
    message = staff_adapter().compose(post(ticket_id, "[Q7K2M9] answered · Li Wei · 11-26 10:00"))

    assert message["To"] == STAFF
    assert message["Subject"] == "Re: [civicdesk] [Q7K2M9] answered · Li Wei · 11-26 10:00"
    assert message["In-Reply-To"] == ticket_id
    assert message["References"] == ticket_id


def test_ticket_ids_differ_with_their_text_so_they_cannot_be_guessed_from_another() -> None:
    channel = staff_adapter()
    one, other = channel.message_id(post()), channel.message_id(post(text="another ticket"))
    assert one != other and one.split(".")[1] == other.split(".")[1] == "5"


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with smtp_sink() as server:
        yield server


async def test_the_ticket_is_sent_to_the_staff_address_and_its_id_is_the_message_id(
    sink: SmtpSink,
) -> None:
    result = await staff_adapter(sink.port).send(post())

    (mail,) = sink.mails
    assert mail.recipients == ["duty@example.gov"]
    assert result.ok and result.platform_id == mail.message["Message-ID"]


# --- staff replies in -------------------------------------------------------------------------


def reply_mail(in_reply_to: str | None, text: str, **headers: str) -> bytes:
    extra = {"In-Reply-To": in_reply_to, "References": in_reply_to} if in_reply_to else {}
    return citizen_mail(
        text,
        subject=headers.pop("subject", "Re: [civicdesk] New ticket Q7K2M9 · wechat (private)"),
        sender="Li Wei <li.wei@example.gov>",
        to=DESK,
        message_id="<reply-1@example.gov>",
        headers={**extra, **headers},
    )


def ticket_id() -> str:
    return staff_adapter().message_id(post())


def test_a_reply_to_a_ticket_answers_it_without_the_quote_and_the_signature() -> None:
    text = (
        "您的案件已于11月20日立案。\n\n-- \n李伟 诉讼服务中心\n\n"
        f"在 2026年11月26日 10:00，Court Desk <{DESK}> 写道：\n> [civicdesk] New ticket Q7K2M9\n"
    )
    message = staff_adapter().inbound(7, 42, reply_mail(ticket_id(), text))

    assert message is not None
    assert message.reply_to == ticket_id()  # as the ticket's platform id was stored
    assert message.text == "您的案件已于11月20日立案。"
    assert (message.sender, message.sender_name) == ("li.wei@example.gov", "Li Wei")
    assert message.platform_id == "<reply-1@example.gov>"
    assert message.public is False


def test_a_client_that_keeps_only_references_still_names_the_ticket() -> None:
    raw = reply_mail(None, "claim", References=f"<x@example.cn> {ticket_id()}")
    message = staff_adapter().inbound(7, 42, raw)
    assert message is not None and message.reply_to == ticket_id()


def test_the_ticket_id_is_read_as_the_adapter_normalises_ids() -> None:
    raw = reply_mail(None, "claim", **{"In-Reply-To": f"  {ticket_id()} (Li's reply)"})
    message = staff_adapter().inbound(7, 42, raw)
    assert message is not None and message.reply_to == ticket_id()


@pytest.mark.parametrize(
    "raw",
    [
        reply_mail(None, "Lunch at noon?"),  # a new mail, not a reply
        reply_mail("<someone-else@example.cn>", "Agreed."),  # a reply to other mail
        reply_mail("<civicdesk.5.0123456789ab@elsewhere.example>", "Agreed."),  # not our domain
        reply_mail("<civicdesk.5.0123456789ab@example.gov>", ""),  # empty: only a subject
        reply_mail(
            "<civicdesk.5.0123456789ab@example.gov>", "I am away", subject="自动回复: 新工单"
        ),
        reply_mail(
            "<civicdesk.5.0123456789ab@example.gov>",
            "I am away",
            subject="Automatic reply: [civicdesk] New ticket",
        ),
        reply_mail(
            "<civicdesk.5.0123456789ab@example.gov>", "away", **{"Auto-Submitted": "auto-replied"}
        ),
    ],
    ids=["new-mail", "other-thread", "other-domain", "empty", "zh-auto", "en-auto", "rfc3834"],
)
def test_other_mail_in_the_mailbox_is_not_acted_on(raw: bytes) -> None:
    assert staff_adapter().inbound(7, 42, raw) is None


# --- configuration --------------------------------------------------------------------------


def environ(**extra: str) -> dict[str, str]:
    return {
        "CIVICDESK_EMAIL_IMAP_HOST": "imap.example.gov",
        "CIVICDESK_EMAIL_IMAP_USER": DESK,
        "CIVICDESK_EMAIL_IMAP_PASSWORD": "secret-imap",
        "CIVICDESK_EMAIL_SMTP_HOST": "smtp.example.gov",
        "CIVICDESK_EMAIL_FROM": f"Court Desk <{DESK}>",
        **extra,
    }


def build(env: dict[str, str]) -> EmailAdapter:
    (config,) = read_channels(env, ("email",), ADAPTERS)
    built = ADAPTERS["email"].build(config)
    assert isinstance(built, EmailAdapter)
    return built


def test_the_staff_room_is_read_from_its_setting() -> None:
    assert build(environ(CIVICDESK_EMAIL_STAFF_ROOM=STAFF)).staff_room == STAFF
    assert build(environ()).staff_room is None


@pytest.mark.parametrize(
    ("room", "says"),
    [("duty desk", "must be the e-mail address"), (DESK.upper(), "not the channel's own FROM")],
)
def test_a_wrong_staff_room_is_refused(room: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"CIVICDESK_EMAIL_STAFF_ROOM.*{says}"):
        build(environ(CIVICDESK_EMAIL_STAFF_ROOM=room))
