"""The human handoff across real platform adapters, through the real app configured by environment
variables as a deployer sets them: a citizen on Telegram with the staff on Slack, and a citizen on
WeChat with the staff on e-mail. The platforms are fakes of their APIs on port 0 (Telegram,
Slack, WeChat) and real mail servers (aiosmtpd receives what civicdesk sends, dovecot holds the
mailbox it polls). tests/test_handoff.py runs the same loop with the generic webhook channel.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_apis import serve
from fake_telegram_slack import Call, FakeApi, fake_api, settled, slack_ok
from fake_telegram_slack import telegram_ok as telegram_answer
from mail_support import (
    Dovecot,
    SmtpSink,
    citizen_mail,
    dovecot_missing,
    running_dovecot,
    smtp_sink,
)
from test_adapter_slack import slack_signature
from test_adapter_wechat_app import APP_ID, TOKEN, FakeWeChat, query, text_message
from test_handoff import CASE_QUESTION, cli_json
from web_support import SMALL_KB, served_app

from bot.gateway.web import GATEWAY

Client = TestClient[web.Request, web.Application]

TELEGRAM_TOKEN = "123456789:AAE-fake_token_for_tests_only"
TELEGRAM_SECRET = "s3cret-token_for-setWebhook"
SLACK_SECRET = "slack-signing-secret-of-the-staff-app"
SLACK_TOKEN = "xoxb-1111-2222-staffAppToken"
STAFF_CHANNEL = "C0STAFF"
CITIZEN_CHAT = 639348
ANSWER = "Your case was filed on 20 November; the hearing is on 3 December."
FEE_QUESTION = "诉讼费在哪里交"  # the FAQ answers this one


def database_url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


# --- a citizen on Telegram, the staff on Slack --------------------------------------------------


@dataclass
class TelegramSlack:
    client: Client
    telegram: FakeApi
    slack: FakeApi
    database: Path

    async def citizen_says(self, message_id: int, text: str) -> None:
        update = {
            "update_id": 639974000 + message_id,
            "message": {
                "message_id": message_id,
                "from": {"id": CITIZEN_CHAT, "is_bot": False, "first_name": "Fabio"},
                "chat": {"id": CITIZEN_CHAT, "first_name": "Fabio", "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        response = await self.client.post("/webhooks/telegram", json=update, headers=headers)
        assert response.status == 200, await response.text()

    async def staff_says(self, text: str, thread_ts: str | None, ts: str) -> None:
        """Li writes in the staff channel (in a thread, or at the top): the event Slack posts."""
        event = {
            "type": "event_callback",
            "team_id": "T111",
            "api_app_id": "A111",
            "event_id": f"Ev{ts.replace('.', '')}",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": STAFF_CHANNEL,
                "channel_type": "channel",
                "user": "U0LI",
                "text": text,
                "ts": ts,
                "event_ts": ts,
                **({"thread_ts": thread_ts} if thread_ts else {}),
            },
            "authorizations": [{"team_id": "T111", "user_id": "U0APP", "is_bot": True}],
        }
        body = json.dumps(event).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(SLACK_SECRET, timestamp, body),
        }
        response = await self.client.post("/webhooks/slack", data=body, headers=headers)
        assert response.status == 200, await response.text()

    async def open_ticket(self) -> tuple[Call, str, str]:
        """The citizen asks what goes to a person: the ticket post, its ts, its reference."""
        await self.citizen_says(1301, CASE_QUESTION)
        (ticket,) = await self.slack.wait_for(1)
        await settled(self.database)  # the ticket post's ts is stored: threads can find it
        ts = slack_ok(ticket, 1).body["ts"]  # what the fake answered to the first post
        return ticket, ts, ticket.body["text"].split()[3]  # "[civicdesk] New ticket <REF> ..."


@pytest.fixture
async def telegram_slack(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[TelegramSlack]:
    database = tmp_path / "handoff.db"
    async with fake_api(telegram_answer) as telegram, fake_api(slack_ok, "/api") as slack:
        environ = {
            "CIVICDESK_CHANNELS": "telegram,slack",
            "CIVICDESK_ESCALATE_TO": "slack",
            "CIVICDESK_DEFAULT_LANGUAGE": "en",
            "CIVICDESK_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "CIVICDESK_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
            "CIVICDESK_TELEGRAM_BOT_USERNAME": "civicdesk_bot",
            "CIVICDESK_TELEGRAM_API_BASE": telegram.url,
            "CIVICDESK_SLACK_SIGNING_SECRET": SLACK_SECRET,
            "CIVICDESK_SLACK_BOT_TOKEN": SLACK_TOKEN,
            "CIVICDESK_SLACK_STAFF_ROOM": STAFF_CHANNEL,
            "CIVICDESK_SLACK_API_BASE": slack.url,
            "DATABASE_URL": database_url(database),
        }
        app, _, _ = await served_app(environ, SMALL_KB)
        yield TelegramSlack(await aiohttp_client(app), telegram, slack, database)


async def test_a_telegram_question_is_answered_from_a_slack_thread(
    telegram_slack: TelegramSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = telegram_slack
    ticket, ticket_ts, reference = await scene.open_ticket()

    (ack,) = await scene.telegram.wait_for(1)
    assert ack.body["chat_id"] == CITIZEN_CHAT and reference in ack.body["text"]
    assert ticket.path == "/api/chat.postMessage"
    assert ticket.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert ticket.body["channel"] == STAFF_CHANNEL and "thread_ts" not in ticket.body
    assert CASE_QUESTION in ticket.body["text"]
    assert "telegram (private) · Fabio" in ticket.body["text"]

    # Li replies in the ticket's thread, with no mention of the app.
    await scene.staff_says(ANSWER, thread_ts=ticket_ts, ts="1700000100.000100")

    _, answer = await scene.telegram.wait_for(2)
    assert answer.body["chat_id"] == CITIZEN_CHAT
    assert answer.body["text"] == ANSWER
    assert answer.body["reply_parameters"]["message_id"] == 1301  # it quotes the question
    # The event names Li by member id only: civicdesk asks Slack who that is.
    _, lookup, update = await scene.slack.wait_for(3)
    assert (lookup.path, lookup.body) == ("/api/users.info", {"user": "U0LI"})
    assert lookup.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert update.body["channel"] == STAFF_CHANNEL and update.body["thread_ts"] == ticket_ts
    assert update.body["text"].startswith(f"[{reference}] answered; the answer is on its way")
    assert " · Li Wei · " in update.body["text"]

    await settled(scene.database)
    record = await cli_json(
        scene.database, "escalations", "show", reference, monkeypatch=monkeypatch
    )
    assert (record["status"], record["answered_by"]) == ("closed", "Li Wei")
    assert [e["kind"] for e in record["history"]] == ["opened", "answered"]
    assert (len(scene.telegram.calls), len(scene.slack.calls)) == (2, 3)


async def test_a_follow_up_goes_to_the_slack_thread_and_the_bot_still_answers_the_faq(
    telegram_slack: TelegramSlack,
) -> None:
    scene = telegram_slack
    _, ticket_ts, reference = await scene.open_ticket()

    # Asked again, unanswerable: it joins the ticket's Slack thread, one line to the citizen.
    await scene.citizen_says(1303, "我的案子到底进展到哪一步了")
    _, follow_up = await scene.slack.wait_for(2)
    assert follow_up.body["thread_ts"] == ticket_ts
    assert follow_up.body["text"].startswith(f"[{reference}] the citizen adds")
    assert follow_up.body["text"].endswith("\n我的案子到底进展到哪一步了")
    _, line = await scene.telegram.wait_for(2)
    assert reference in line.body["text"]

    # Nobody has claimed the ticket: what the FAQ answers, the bot answers.
    await scene.citizen_says(1302, FEE_QUESTION)
    await scene.telegram.wait_for(3)
    await settled(scene.database)
    assert len(scene.slack.calls) == 2  # the answered question stays out of the thread

    # Talk at the top of the staff channel is no answer to anyone.
    await scene.staff_says("lunch at noon?", thread_ts=None, ts="1700000200.000200")
    await settled(scene.database)
    assert (len(scene.telegram.calls), len(scene.slack.calls)) == (3, 2)


# --- a citizen on WeChat, the staff on e-mail -----------------------------------------------


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with smtp_sink() as server:
        yield server


@pytest.fixture
async def wechat_api() -> AsyncIterator[tuple[FakeWeChat, str]]:
    fake = FakeWeChat()
    routes = [
        ("POST", "/cgi-bin/stable_token", fake.stable_token),
        ("POST", "/cgi-bin/message/custom/send", fake.custom_send),
    ]
    async with serve(routes) as url:
        yield fake, url


@pytest.mark.skipif(dovecot_missing() is not None, reason=dovecot_missing() or "")
async def test_a_wechat_question_is_answered_by_a_staff_members_reply_mail(
    aiohttp_client: Any,
    tmp_path: Path,
    dovecot: Dovecot,
    sink: SmtpSink,
    wechat_api: tuple[FakeWeChat, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wechat, wechat_url = wechat_api
    database = tmp_path / "handoff.db"
    environ = {
        "CIVICDESK_CHANNELS": "wechat,email",
        "CIVICDESK_ESCALATE_TO": "email",
        "CIVICDESK_DEFAULT_LANGUAGE": "en",
        "CIVICDESK_WECHAT_APP_ID": APP_ID,
        "CIVICDESK_WECHAT_APP_SECRET": "app-secret",
        "CIVICDESK_WECHAT_TOKEN": TOKEN,
        "CIVICDESK_WECHAT_API_BASE": wechat_url,
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
        "CIVICDESK_EMAIL_STAFF_ROOM": "Duty desk <duty@example.gov>",
        "DATABASE_URL": database_url(database),
    }
    app, adapters, _ = await served_app(environ, SMALL_KB)
    # Where the app's first poll would start ("now"), saved before it runs, so that the reply
    # appended below is new mail whenever the runner's first poll happens.
    start = await adapters["email"].poll(None)  # type: ignore[attr-defined]
    await app[GATEWAY].store.save_cursor("email", start.cursor)
    client: Client = await aiohttp_client(app)

    body = text_message(CASE_QUESTION, "6100000000000000101", "oCitizen7")
    response = await client.post("/webhooks/wechat", params=query("h1"), data=body)
    assert response.status == 200 and await response.text() == "success"

    (ack,) = await wechat.wait_for(1)
    (ticket,) = await sink.wait_for(1)
    reference = str(ticket.message["Subject"]).split()[3]
    assert ack["touser"] == "oCitizen7" and reference in ack["text"]["content"]
    assert ticket.recipients == ["duty@example.gov"]
    assert str(ticket.message["Subject"]).startswith(f"[civicdesk] New ticket {reference} ·")
    assert CASE_QUESTION in ticket.message.get_content()
    ticket_id = str(ticket.message["Message-ID"])
    await settled(database)  # the ticket's Message-ID is stored: replies can find it

    # Li answers from a mail client: a reply to the ticket, quoting it, with a signature.
    reply = (
        f"{ANSWER}\n\n-- \nLi Wei, litigation service centre\n\n"
        f"On 26 Nov 2026, Court Desk <{dovecot.user}> wrote:\n> {ticket.message['Subject']}\n"
    )
    await dovecot.append(
        citizen_mail(
            reply,
            subject=f"Re: {ticket.message['Subject']}",
            sender="Li Wei <li.wei@example.gov>",
            to=dovecot.user,
            headers={"In-Reply-To": ticket_id, "References": ticket_id},
        )
    )

    _, answer = await wechat.wait_for(2)
    assert answer["touser"] == "oCitizen7" and answer["msgtype"] == "text"
    assert answer["text"]["content"] == ANSWER
    _, update = await sink.wait_for(2)
    assert update.recipients == ["duty@example.gov"]
    assert update.message["In-Reply-To"] == ticket_id
    assert str(update.message["Subject"]).startswith(f"Re: [civicdesk] [{reference}] answered")

    await settled(database)
    record = await cli_json(database, "escalations", "show", reference, monkeypatch=monkeypatch)
    assert (record["status"], record["answered_by"]) == ("closed", "Li Wei")
    assert (len(wechat.messages), len(sink.mails)) == (2, 2)
