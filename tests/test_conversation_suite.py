"""The conversation suite: scripted multi-turn conversations (citizen says → expected decision
and reply kind) played through the real app, as `civicdesk serve` builds it, on four citizen
channels: the web chat (its own page API), Telegram, LINE and Slack (direct messages), each
against a fake of the platform's API on port 0. Payloads are the real ones recorded by other
projects in ../shared/fixtures (see its SOURCES.md), with the text and ids changed per turn.

Staff act as operators do, on the same database (`Store.staff_command`: the command line and
/admin use it). "The clock moves" shifts the conversation's stored times back, so that the
quiet period and the acknowledgement interval pass without a timed test.

Every turn checks that the citizen saw a reply on the platform, or that the script states why
not (a follow-up acknowledged a moment ago while a person has the ticket).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram_slack import Answer as ApiAnswer
from fake_telegram_slack import Call, FakeApi, fake_api, settled, slack_ok, telegram_ok
from sqlalchemy import select, update
from test_adapter_slack import slack_signature
from web_support import SAMPLE_KB, served_app

from bot.platform.messages import InboundMessage
from bot.storage.models import TICKET
from bot.storage.store import Store
from bot.tickets.conversation import (
    ACKNOWLEDGE_EVERY,
    ADDED_TO_TICKET,
    ONLY_TEXT,
    PERSON_ANSWERED,
    PERSON_ON_IT,
    PROMPT_FOR_QUESTION,
    QUIET_AFTER_ANSWER,
    STILL_WITH_STAFF,
)
from bot.tickets.handoff import Answer, Claim, Close, Handoff

Client = TestClient[web.Request, web.Application]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
TELEGRAM_TOKEN = "123456789:AAE-fake_token_for_tests_only"
TELEGRAM_SECRET = "s3cret-token_for-setWebhook"
SLACK_SECRET = "slack-signing-secret"
LINE_SECRET = "line-channel-secret"


# --- the scripts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Says:
    """The citizen writes `text` (with `media`: a photo, sticker... as the adapter reports it)."""

    text: str
    decision: str  # the inbox row's decision
    reply: str  # faq, ticket, added, on-it, answered-by, prompt, only-text, silent
    why_silent: str | None = None  # required when reply == "silent"
    media: str | None = None


@dataclass(frozen=True)
class Staff:
    """A staff member acts on the conversation's ticket; `reaches_citizen`: a message goes out."""

    command: Claim | Answer | Close
    who: str = "Li Wei"
    reaches_citizen: bool = False


@dataclass(frozen=True)
class ClockMoves:
    by: timedelta


Turn = Says | Staff | ClockMoves
LATER = ClockMoves(max(QUIET_AFTER_ANSWER, ACKNOWLEDGE_EVERY) + timedelta(seconds=1))

CONVERSATIONS: dict[str, list[Turn]] = {
    # Issue 12 finding 1, as a citizen lived it: a ticket opened, then silence.
    "faq-while-ticket-open": [
        Says("Hello", "smalltalk", "faq"),
        Says("can I bring my dog to the hearing?", "escalate", "ticket"),
        Says("court fee", "clarify", "faq"),  # the FAQ still answers: a clarifying question
        Says("how do I pay the court fee", "answer", "faq"),
        Says("still waiting...", "prompt", "still-with-staff"),  # no question: a reminder
        Says("And may my dog wait in the lobby while I am in the hearing?", "follow-up", "added"),
    ],
    # Non-questions never open a ticket; the citizen's real question is answered after them.
    "non-questions-en": [
        Says("Hello, world", "prompt", "prompt"),
        Says("@All Good Morning!!", "smalltalk", "faq"),
        Says("test", "prompt", "prompt"),
        Says("baba", "prompt", "prompt"),
        Says("testing 123", "prompt", "prompt"),
        Says("ok cool", "prompt", "prompt"),
        Says("😂", "smalltalk", "faq"),
        Says("I need help", "prompt", "prompt"),
        Says("how do I pay the court fee", "answer", "faq"),
    ],
    "non-questions-zh": [
        Says("Лол кек 😂", "prompt", "prompt"),
        Says("【收到不支持的消息类型，暂无法显示】", "prompt", "prompt"),
        Says("[表情]", "smalltalk", "faq"),  # the desk reads it as empty: "please type…"
        Says("测试一下", "prompt", "prompt"),
        Says("哈哈哈", "prompt", "prompt"),
        Says("你好，我想咨询一下", "prompt", "prompt"),
        Says("诉讼费怎么交", "answer", "faq"),
    ],
    # Media: without text only text can be read; a caption is the question.
    "media": [
        Says("", "media", "only-text", media="sticker"),
        Says("", "media", "only-text", media="image"),
        Says("诉讼费怎么交", "answer", "faq", media="image"),
        Says(
            "my landlord kept the whole deposit after I moved out",
            "escalate",
            "ticket",
            media="file",
        ),
    ],
    # The ticket's life: open → claimed → answered → (quiet) → closed → the bot answers again.
    "life-cycle": [
        Says("My landlord kept the whole deposit after I moved out", "escalate", "ticket"),
        Says("He also kept my keys, what can I do?", "follow-up", "added"),
        Staff(Claim()),
        Says("how do I pay the court fee", "follow-up", "on-it"),  # the bot steps aside
        Says("hello?", "follow-up", "silent", why_silent="acknowledged a moment ago"),
        LATER,
        Says("any news?", "follow-up", "on-it"),
        Staff(Answer("Ask the registry for form B-12; it covers both."), reaches_citizen=True),
        Says("thanks!", "follow-up", "answered-by"),  # quiet period: it goes to Li
        LATER,
        Says("how do I pay the court fee", "answer", "faq"),  # the bot's again
        Says("can I bring my dog to the hearing?", "escalate", "ticket"),  # a new ticket
    ],
    # Closed without an answer: no quiet period, the bot answers at once.
    "closed-by-staff": [
        Says("can I bring my dog to the hearing?", "escalate", "ticket"),
        Staff(Close("Please ask the usher on the day."), reaches_citizen=True),
        Says("how do I pay the court fee", "answer", "faq"),
    ],
}


# --- the channels -------------------------------------------------------------------------------


def fixture(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / path).read_text(encoding="utf-8"))
    return data


CONVERSATION_IDS = {
    "webchat": "conversation-0001",
    "telegram": "639348",
    "line": "U206d25c2ea6bd87c17655609a1c37cb8",
    "slack": "D111",
}


@dataclass
class Scene:
    client: Client
    database: Path
    telegram: FakeApi
    slack: FakeApi
    line: FakeApi
    store: Store
    channel: str
    counter: int = 0
    web_seen: list[str] = field(default_factory=list)
    web_after: int = 0

    @property
    def conversation(self) -> str:
        """The conversation id each channel's payloads carry (from the fixtures)."""
        return CONVERSATION_IDS[self.channel]

    async def say(self, text: str, media: str | None) -> str:
        """Send what the citizen wrote as the platform would; the platform id of the message."""
        self.counter += 1
        n = self.counter
        if media is not None:
            # An adapter reports a photo or sticker as InboundMessage.media (the adapters' part
            # of issue 12); the store takes it as the web handler would.
            platform_id = f"media-{n}"
            # The sender as each adapter sets it in a private chat (Slack: the user, W222).
            sender = "W222" if self.channel == "slack" else self.conversation
            message = InboundMessage(self.channel, platform_id, self.conversation, sender, text,
                                     False, media=media)  # fmt: skip
            assert await self.store.accept([message]) == [True]
            return platform_id
        if self.channel == "webchat":
            body = {"id": f"web-message-{n:04d}", "conversation": self.conversation, "text": text}
            response = await self.client.post("/webhooks/webchat", json=body)
            assert response.status == 200, await response.text()
            return f"web-message-{n:04d}"
        if self.channel == "telegram":
            update = fixture("telegram/update_message_private_reply_to.json")
            update["update_id"] += n
            update["message"].pop("reply_to_message")
            update["message"].update(message_id=5000 + n, text=text, date=int(time.time()))
            headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
            response = await self.client.post("/webhooks/telegram", json=update, headers=headers)
            assert response.status == 200, await response.text()
            return f"{self.conversation}:{5000 + n}"
        if self.channel == "line":
            delivery = fixture("line/webhook_single_text_message_user.json")
            event = delivery["events"][0]
            event["webhookEventId"] = f"01EVENT{n:04d}"
            event["replyToken"] = f"token-{n}"
            event["timestamp"] = int(time.time() * 1000)
            event["message"].update(id=str(325708 + n), text=text)
            raw = json.dumps(delivery).encode()
            digest = hmac.new(LINE_SECRET.encode(), raw, hashlib.sha256).digest()
            headers = {"Content-Type": "application/json",
                       "X-Line-Signature": base64.b64encode(digest).decode()}  # fmt: skip
            response = await self.client.post("/webhooks/line", data=raw, headers=headers)
            assert response.status == 200, await response.text()
            return f"01EVENT{n:04d}"
        callback = fixture("slack/event_callback_message_im_thread_reply.json")
        ts = f"{int(time.time())}.{n:06d}"
        callback["event_id"] = f"Ev{n:06d}"
        callback["event_time"] = int(time.time())
        callback["event"].pop("thread_ts")
        callback["event"].pop("parent_user_id")
        callback["event"].update(text=text, ts=ts, event_ts=ts)
        raw = json.dumps(callback).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": slack_signature(SLACK_SECRET, stamp, raw)}  # fmt: skip
        response = await self.client.post("/webhooks/slack", data=raw, headers=headers)
        assert response.status == 200, await response.text()
        return f"Ev{n:06d}"

    def platform_texts(self) -> list[str]:
        """What reached the citizen on the platform, in order."""
        if self.channel == "telegram":
            return [c.body["text"] for c in self.telegram.calls]
        if self.channel == "line":
            return [m["text"] for c in self.line.calls for m in c.body.get("messages", [])]
        if self.channel == "slack":
            return [c.body["text"] for c in self.slack.calls if c.path.endswith("postMessage")]
        return list(self.web_seen)

    async def read_web_chat(self) -> None:
        """The web chat page's poll: the replies shown after the last one it saw."""
        query = {"conversation": self.conversation, "after": str(self.web_after), "wait": "0"}
        response = await self.client.get("/chat/api/replies", params=query)
        assert response.status == 200
        for reply in (await response.json())["replies"]:
            self.web_after = max(self.web_after, reply["seq"])
            self.web_seen.append(reply["text"])


def inbox_row(database: Path, platform_id: str) -> tuple[int, str | None, str]:
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT id, decision, status FROM inbox WHERE platform_id = ?", (platform_id,)
        ).fetchone()
    assert row is not None, f"message {platform_id} was not stored"
    return int(row[0]), row[1], str(row[2])


def citizen_replies(database: Path, inbox_id: int) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT text FROM outbox WHERE inbox_id = ? AND kind IN ('reply', 'ack', 'answer')"
            " ORDER BY id",
            (inbox_id,),
        ).fetchall()
    return [str(text) for (text,) in rows]


def open_reference(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        (reference,) = connection.execute(
            "SELECT reference FROM escalation ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return str(reference)


def move_clock(store: Store, by: timedelta) -> None:
    """Time passes for the conversation: its ticket's stored times move back by `by`."""
    columns = ("answered_at", "closed_at", "acknowledged_at", "created_at")
    with store.write_engine.begin() as connection:
        for row in connection.execute(select(TICKET)).all():
            moved = {c: getattr(row, c) - by for c in columns if getattr(row, c) is not None}
            connection.execute(update(TICKET).where(TICKET.c.id == row.id).values(**moved))


async def done(database: Path, platform_id: str) -> tuple[int, str | None]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            row_id, decision, status = inbox_row(database, platform_id)
        except AssertionError:
            row_id, decision, status = 0, None, "missing"
        if status == "done":
            await settled(database)
            return row_id, decision
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {platform_id} was not handled")


@pytest.fixture
async def scene_factory(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    stores: list[Store] = []
    async with (
        fake_api(telegram_ok) as telegram,
        fake_api(slack_ok, "/api") as slack,
        fake_api(line_ok) as line,
    ):

        async def make(channel: str) -> Scene:
            database = tmp_path / f"{channel}.db"
            environ = {
                "CIVICDESK_CHANNELS": "webchat,telegram,line,slack",
                "CIVICDESK_DEFAULT_LANGUAGE": "en",
                "CIVICDESK_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
                "CIVICDESK_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
                "CIVICDESK_TELEGRAM_BOT_USERNAME": "civicdesk_bot",
                "CIVICDESK_TELEGRAM_API_BASE": telegram.url,
                "CIVICDESK_LINE_CHANNEL_SECRET": LINE_SECRET,
                "CIVICDESK_LINE_CHANNEL_ACCESS_TOKEN": "line-access-token",
                "CIVICDESK_LINE_API_BASE": line.url,
                "CIVICDESK_SLACK_SIGNING_SECRET": SLACK_SECRET,
                "CIVICDESK_SLACK_BOT_TOKEN": "xoxb-1111-2222-token",
                "CIVICDESK_SLACK_API_BASE": slack.url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            }
            app, _, _ = await served_app(environ, SAMPLE_KB)
            client: Client = await aiohttp_client(app)
            store = await Store.open(environ["DATABASE_URL"], upgrade=False)
            stores.append(store)
            return Scene(client, database, telegram, slack, line, store, channel)

        yield make
    for store in stores:
        await store.close()


def line_ok(call: Call, number: int) -> ApiAnswer:
    return ApiAnswer(200, {"sentMessages": [{"id": f"m{number}", "quoteToken": "q"}]})


def expected_fragment(kind: str, lang: str) -> str | None:
    """A piece of text the reply of `kind` must contain."""
    texts = {
        "added": ADDED_TO_TICKET[lang].split("{ref}")[0],
        "on-it": PERSON_ON_IT[lang].split("{ref}")[0],
        "answered-by": PERSON_ANSWERED[lang].split("{who}")[0],
        "prompt": PROMPT_FOR_QUESTION[lang],
        "still-with-staff": STILL_WITH_STAFF[lang].split("{ref}")[0],
        "only-text": ONLY_TEXT[lang],
    }
    return texts.get(kind)


CHANNELS = ["webchat", "telegram", "line", "slack"]
PLAYED: list[tuple[str, str, int, str]] = []  # (conversation, channel, turns, outcome)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("name", list(CONVERSATIONS))
async def test_a_scripted_conversation(
    name: str, channel: str, scene_factory: Callable[[str], Any]
) -> None:
    scene: Scene = await scene_factory(channel)
    handoff = Handoff()
    for number, turn in enumerate(CONVERSATIONS[name], 1):
        where = f"{name} turn {number} on {channel}"
        seen_before = len(await _platform(scene))
        if isinstance(turn, ClockMoves):
            move_clock(scene.store, turn.by)
            continue
        if isinstance(turn, Staff):
            reference = open_reference(scene.database)
            await scene.store.staff_command(reference, turn.command, actor=turn.who,
                                            handoff=handoff)  # fmt: skip
            await settled(scene.database)
            seen = await _platform(scene)
            assert len(seen) - seen_before == int(turn.reaches_citizen), where
            continue
        platform_id = await scene.say(turn.text, turn.media)
        row_id, decision = await done(scene.database, platform_id)
        assert decision == turn.decision, f"{where}: {turn.text!r} → {decision}"
        queued = citizen_replies(scene.database, row_id)
        seen = await _platform(scene)
        if turn.reply == "silent":
            assert turn.why_silent, f"{where}: a silent turn must say why"
            assert queued == [] and len(seen) == seen_before, where
            continue
        # A visible response: queued for this message and shown on the platform.
        assert len(queued) == 1, f"{where}: {turn.text!r} got {queued}"
        assert len(seen) == seen_before + 1, f"{where}: nothing reached the platform"
        reply = seen[-1]
        lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in turn.text) else "en"
        fragment = expected_fragment(turn.reply, lang)
        if fragment is not None:
            assert fragment in reply, f"{where}: {reply!r} is not a {turn.reply} reply"
        if turn.reply in ("ticket", "added", "on-it", "answered-by", "still-with-staff"):
            assert open_reference(scene.database) in reply, where
        if turn.reply in ("on-it", "answered-by"):
            assert "Li Wei" in reply, where  # the staff member's name, where known
        if turn.reply == "faq":
            assert open_reference_or_none(scene.database) not in reply, where
    PLAYED.append((name, channel, len(CONVERSATIONS[name]), "passed"))


def open_reference_or_none(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT reference FROM escalation ORDER BY id DESC").fetchone()
    return str(row[0]) if row else "\0no ticket\0"


async def _platform(scene: Scene) -> list[str]:
    if scene.channel == "webchat":
        await scene.read_web_chat()
    return scene.platform_texts()


def test_the_suite_covers_every_rule() -> None:
    """Each rule of docs/conversations.md has at least one turn that shows it."""
    kinds = {t.reply for turns in CONVERSATIONS.values() for t in turns if isinstance(t, Says)}
    assert kinds >= {"faq", "ticket", "added", "on-it", "answered-by", "prompt", "only-text",
                     "silent", "still-with-staff"}  # fmt: skip
    says = [t for turns in CONVERSATIONS.values() for t in turns if isinstance(t, Says)]
    print(f"\nconversation suite: {len(CONVERSATIONS)} conversations, {len(says)} citizen turns,"
          f" {sum(len(t) for t in CONVERSATIONS.values())} turns in all, on {len(CHANNELS)}"
          " channels")  # fmt: skip
