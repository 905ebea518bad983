"""Polling a real IMAP server: Debian's dovecot, started by the test on a loopback port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from adapters.email import BATCH, EmailAdapter
from adapters.email_imap import ImapAccount
from bot.config.settings import Secret
from bot.platform.adapter import Poller, PollFailed
from tests.mail_support import Dovecot, citizen_mail, dovecot_missing, free_port, running_dovecot

pytestmark = pytest.mark.skipif(dovecot_missing() is not None, reason=dovecot_missing() or "")


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


def mailbox(
    server: Dovecot, *, password: str | None = None, port: int | None = None
) -> EmailAdapter:
    imap = ImapAccount(
        server.host,
        port or server.port,
        server.user,
        Secret(password or server.password),
        tls="none",
        timeout=10,
    )
    return EmailAdapter(
        "email", imap, from_address=server.user, smtp_host="127.0.0.1", smtp_tls="none"
    )


async def test_is_a_poller(dovecot: Dovecot) -> None:
    assert isinstance(mailbox(dovecot), Poller)


async def test_first_poll_starts_from_now_and_the_cursor_round_trips(dovecot: Dovecot) -> None:
    channel = mailbox(dovecot)
    await dovecot.append(citizen_mail("old mail, before civicdesk", message_id="<old@example.cn>"))
    first = await channel.poll(None)
    assert first.messages == []
    assert first.cursor is not None
    assert json.loads(first.cursor)["uid"] == 1

    quiet = await channel.poll(first.cursor)
    assert quiet.messages == [] and quiet.cursor is None  # nothing new: keep the cursor

    await dovecot.append(citizen_mail("如何缴纳诉讼费？", message_id="<q1@example.cn>"))
    await dovecot.append(citizen_mail("Where can I pay?", message_id="<q2@example.cn>"))
    second = await channel.poll(first.cursor)
    assert [m.platform_id for m in second.messages] == ["<q1@example.cn>", "<q2@example.cn>"]
    assert [m.text for m in second.messages] == ["如何缴纳诉讼费？", "Where can I pay?"]
    assert second.cursor is not None
    assert json.loads(second.cursor) == {
        "uidvalidity": json.loads(first.cursor)["uidvalidity"],
        "uid": 3,
    }

    again = await channel.poll(second.cursor)
    assert again.messages == []
    # The same cursor again (a crash before it was saved) fetches the same mail: the inbox
    # deduplicates on the Message-ID.
    repeat = await channel.poll(first.cursor)
    assert [m.platform_id for m in repeat.messages] == ["<q1@example.cn>", "<q2@example.cn>"]


async def test_polling_leaves_mail_unread(dovecot: Dovecot) -> None:
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    await dovecot.append(citizen_mail("question"))
    assert len((await channel.poll(start.cursor)).messages) == 1
    assert await dovecot.unseen() == 1  # staff still see it as new in their mail client


async def test_auto_replies_bounces_and_own_mail_are_skipped(dovecot: Dovecot) -> None:
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    await dovecot.append(citizen_mail("away", headers={"Auto-Submitted": "auto-replied"}))
    await dovecot.append(citizen_mail("undeliverable", sender="MAILER-DAEMON@mx.example.cn"))
    await dovecot.append(citizen_mail("newsletter", headers={"Precedence": "bulk"}))
    await dovecot.append(citizen_mail("our own answer", sender=f"Desk <{dovecot.user}>"))
    await dovecot.append(citizen_mail("a real question", message_id="<real@example.cn>"))
    result = await channel.poll(start.cursor)
    assert [m.platform_id for m in result.messages] == ["<real@example.cn>"]
    assert result.cursor is not None and json.loads(result.cursor)["uid"] == 5


async def test_mail_without_message_id_is_keyed_on_uidvalidity_and_uid(dovecot: Dovecot) -> None:
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    await dovecot.append(b"From: a@example.cn\r\nSubject: q\r\n\r\nquestion\r\n")
    (message,) = (await channel.poll(start.cursor)).messages
    assert start.cursor is not None
    assert message.platform_id == f"{json.loads(start.cursor)['uidvalidity']}:1"


async def test_changed_uidvalidity_starts_over_without_replaying(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    assert start.cursor is not None
    await dovecot.append(citizen_mail("question one"))
    await dovecot.append(citizen_mail("question two"))
    validity = json.loads(start.cursor)["uidvalidity"]
    stale = json.dumps({"uidvalidity": validity - 1, "uid": 0})
    result = await channel.poll(stale)
    assert result.messages == []
    assert result.cursor is not None
    assert json.loads(result.cursor) == {"uidvalidity": validity, "uid": 2}
    assert "UIDVALIDITY" in caplog.text


async def test_a_large_backlog_comes_in_batches(dovecot: Dovecot) -> None:
    channel = mailbox(dovecot)
    start = await channel.poll(None)
    for number in range(BATCH + 3):
        await dovecot.append(citizen_mail(f"question {number}", message_id=f"<b{number}@x.cn>"))
    first = await channel.poll(start.cursor)
    second = await channel.poll(first.cursor)
    assert len(first.messages) == BATCH
    assert [m.text for m in second.messages] == [f"question {n}" for n in range(BATCH, BATCH + 3)]


async def test_wrong_password_fails_the_poll_with_a_hint(dovecot: Dovecot) -> None:
    with pytest.raises(PollFailed, match="IMAP_PASSWORD"):
        await mailbox(dovecot, password="wrong").poll(None)


async def test_unreachable_server_fails_the_poll(dovecot: Dovecot) -> None:
    with pytest.raises(PollFailed, match="cannot reach"):
        await mailbox(dovecot, port=free_port()).poll(None)
