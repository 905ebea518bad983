"""E-mail for real, through the served app: a citizen's mail placed in a dovecot mailbox is polled
by the app's poll runner, answered from the FAQ by the workers, and the answer arrives at an SMTP
server (aiosmtpd) as a threaded reply; the stored question is the text without the quote."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.gateway.web import GATEWAY
from tests.mail_support import (
    Dovecot,
    SmtpSink,
    citizen_mail,
    dovecot_missing,
    running_dovecot,
    smtp_sink,
)
from tests.web_support import SMALL_KB, count_rows, served_app

pytestmark = pytest.mark.skipif(dovecot_missing() is not None, reason=dovecot_missing() or "")

QUESTION = "如何缴纳诉讼费？"
ANSWER = "可通过网上缴费，或到诉讼服务中心窗口缴纳。"  # tests/fixtures/kb/base/fees.yaml


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with smtp_sink() as server:
        yield server


def environ(dovecot: Dovecot, sink: SmtpSink, database: Path) -> dict[str, str]:
    return {
        "CIVICDESK_CHANNELS": "email",
        "CIVICDESK_EMAIL_IMAP_HOST": dovecot.host,
        "CIVICDESK_EMAIL_IMAP_PORT": str(dovecot.port),
        "CIVICDESK_EMAIL_IMAP_USER": dovecot.user,
        "CIVICDESK_EMAIL_IMAP_PASSWORD": dovecot.password,
        "CIVICDESK_EMAIL_IMAP_TLS": "none",
        "CIVICDESK_EMAIL_POLL_INTERVAL": "0.1",
        "CIVICDESK_EMAIL_SMTP_HOST": "127.0.0.1",
        "CIVICDESK_EMAIL_SMTP_PORT": str(sink.port),
        "CIVICDESK_EMAIL_SMTP_TLS": "none",
        "CIVICDESK_EMAIL_FROM": f"Court Desk <{dovecot.user}>",
        "CIVICDESK_EMAIL_TIMEOUT": "10",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }


def stored_questions(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT platform_id, conversation, text FROM inbox ORDER BY id"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


async def test_a_mail_in_the_mailbox_gets_a_threaded_answer(
    aiohttp_client: Any, dovecot: Dovecot, sink: SmtpSink, tmp_path: Path
) -> None:
    database = tmp_path / "d.db"
    app, adapters, _ = await served_app(environ(dovecot, sink, database), SMALL_KB)
    channel = adapters["email"]

    # Mail that was there before civicdesk started is staff's, not the bot's.
    await dovecot.append(citizen_mail(QUESTION, message_id="<before@example.cn>"))
    # Where the app's first poll would start ("now"), saved before it runs, so that what is
    # appended next is new mail whenever the runner's first poll happens.
    start = await channel.poll(None)  # type: ignore[attr-defined]
    await app[GATEWAY].store.save_cursor("email", start.cursor)

    question = (
        f"{QUESTION}\n\n"
        "在 2024年3月1日 星期五 10:00，Court Desk <desk@example.gov> 写道：\n"
        "> 您好，请问有什么可以帮您？\n"
        ">\n"
        "> 法院诉讼服务中心\n"
    )
    await dovecot.append(
        citizen_mail(
            question,
            subject="Re: 诉讼费",
            message_id="<q2@example.cn>",
            headers={
                "In-Reply-To": "<a1@example.gov>",
                "References": "<q1@example.cn> <a1@example.gov>",
                "Reply-To": "Zhang San <zhang.reply@example.cn>",
            },
        )
    )
    await dovecot.append(
        citizen_mail("I am out of office", headers={"Auto-Submitted": "auto-replied"})
    )
    await dovecot.append(citizen_mail(QUESTION, message_id="<q2@example.cn>"))  # delivered twice
    await dovecot.append(
        citizen_mail("How do I pay the court fee?", subject="Fee", message_id="<q3@example.cn>")
    )

    await aiohttp_client(app)  # starts the workers and the poll runner
    first, second = await sink.wait_for(2)

    by_question = {str(m.message["In-Reply-To"]): m for m in (first, second)}
    assert set(by_question) == {"<q2@example.cn>", "<q3@example.cn>"}
    reply = by_question["<q2@example.cn>"]
    assert reply.recipients == ["zhang.reply@example.cn"]
    assert reply.message["Subject"] == "Re: 诉讼费"
    assert str(reply.message["References"]).split() == [
        "<q1@example.cn>",
        "<a1@example.gov>",
        "<q2@example.cn>",
    ]
    assert reply.message["Auto-Submitted"] == "auto-replied"
    assert ANSWER in reply.message.get_content()

    english = by_question["<q3@example.cn>"]
    assert english.message["Subject"] == "Re: Fee"
    assert str(english.message["References"]) == "<q3@example.cn>"
    assert "Pay online or at the litigation service centre." in english.message.get_content()

    # Stored once each (the second delivery of <q2> was dropped), stripped of the quote; the
    # mail from before the start, the auto-reply and nothing else.
    assert stored_questions(database) == [
        ("<q2@example.cn>", "<q1@example.cn>", QUESTION),
        ("<q3@example.cn>", "<q3@example.cn>", "How do I pay the court fee?"),
    ]
    assert count_rows(database, "inbox") == 2
    assert len(sink.mails) == 2
