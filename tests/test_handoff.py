"""The human handoff through the real app: a citizen's question the FAQ cannot answer becomes a
ticket in the staff channel, a staff member's reply in its thread reaches the citizen, and the
bot steps aside while the ticket is open.

Both ends are the generic signed webhook channel, each with its own receiver on port 0: the
citizen's system (`webhook`) and the staff's (`staff`), so every message civicdesk sends is
seen as it leaves. Platform-specific staff channels (Slack, Matrix, e-mail) have their own tests.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from mail_support import smtp_sink
from web_support import SMALL_KB, Receiver, served_app, signed_post

from adapters.email import EmailAdapter
from adapters.email_imap import ImapAccount
from bot.answering.desk import Desk
from bot.answering.knowledge import check_knowledge, load_knowledge
from bot.cli.main import main as cli
from bot.config.settings import Secret
from bot.gateway.delivery import Delivery, DeliveryConfig
from bot.gateway.pipeline import Handled, handle_batch
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.store import Store
from bot.storage.ticket_sql import Outcome
from bot.tickets.handoff import Answer, Close, Handoff, StaffChannel
from bot.tickets.hours import BusinessHours, OfficeCalendar, parse_week

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
CASE_QUESTION = "我的案件进展到哪一步了"  # an entry that always goes to a person
STAFF_SECRET = "staff-side-secret"


@pytest.fixture
async def ends() -> AsyncIterator[tuple[Receiver, Receiver, str, str]]:
    citizen, staff = Receiver(), Receiver(secret=STAFF_SECRET)
    app = web.Application()
    app.router.add_post("/citizen", citizen.handle)
    app.router.add_post("/staff", staff.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield citizen, staff, str(server.make_url("/citizen")), str(server.make_url("/staff"))
    await server.close()


def environment(database: Path, citizen_url: str, staff_url: str) -> dict[str, str]:
    return {
        "CIVICDESK_CHANNELS": "webhook,staff",
        "CIVICDESK_WEBHOOK_SECRET": "receiver-and-sender-share-this",
        "CIVICDESK_WEBHOOK_OUTBOUND_URL": citizen_url,
        "CIVICDESK_STAFF_ADAPTER": "webhook",
        "CIVICDESK_STAFF_SECRET": STAFF_SECRET,
        "CIVICDESK_STAFF_OUTBOUND_URL": staff_url,
        "CIVICDESK_STAFF_STAFF_ROOM": "duty-desk",
        "CIVICDESK_ESCALATE_TO": "staff",
        "CIVICDESK_DEFAULT_LANGUAGE": "en",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }


async def post(client: Client, channel: str, data: dict[str, Any], secret: str) -> None:
    body = json.dumps(data, ensure_ascii=False).encode()
    response = await client.post(
        f"/webhooks/{channel}", data=body, headers=signed_post(body, secret=secret)
    )
    assert response.status == 200, await response.text()


async def citizen_says(client: Client, event_id: str, text: str) -> None:
    await post(
        client,
        "webhook",
        {
            "id": event_id,
            "conversation": "case-7",
            "sender": "u-7",
            "sender_name": "Wang",
            "text": text,
        },
        "receiver-and-sender-share-this",
    )


async def staff_says(client: Client, event_id: str, text: str, reply_to: str, who: str) -> None:
    await post(
        client,
        "staff",
        {
            "id": event_id,
            "conversation": "duty-desk",
            "sender": who,
            "sender_name": who,
            "text": text,
            "reply_to": reply_to,
        },
        STAFF_SECRET,
    )


async def cli_json(database: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What an operator sees: the command line, in a thread (it runs an event loop of its own)."""
    out = StringIO()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    assert await asyncio.to_thread(cli, [*args, "--json"], out) == 0
    return json.loads(out.getvalue())


@dataclass
class Scene:
    """The served app with a citizen's end and a staff end, and the database behind it."""

    client: Client
    citizen: Receiver
    staff: Receiver
    database: Path

    async def open_ticket(self, text: str = CASE_QUESTION) -> tuple[dict[str, Any], str]:
        """A citizen asks what goes to a person: the ticket as posted, and its reference."""
        await citizen_says(self.client, "q-1", text)
        [ticket] = await self.staff.wait_for(1)
        return ticket, ticket["text"].split()[3]  # "[civicdesk] New ticket <REF> · ..."


async def make_scene(
    tmp_path: Path, aiohttp_client: MakeClient, ends: tuple[Receiver, Receiver, str, str],
    knowledge: Path = SMALL_KB,
) -> Scene:  # fmt: skip
    citizen, staff, citizen_url, staff_url = ends
    database = tmp_path / "handoff.db"
    app, _, _ = await served_app(environment(database, citizen_url, staff_url), knowledge)
    return Scene(await aiohttp_client(app), citizen, staff, database)


async def test_a_staff_reply_in_the_tickets_thread_reaches_the_citizen(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    ends: tuple[Receiver, Receiver, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scene = await make_scene(tmp_path, aiohttp_client, ends)
    client, citizen, staff, database = scene.client, scene.citizen, scene.staff, scene.database
    ticket, reference = await scene.open_ticket()
    [ack] = await citizen.wait_for(1)
    assert reference in ack["text"]  # the citizen was given the same code
    assert ticket["conversation"] == "duty-desk"
    assert CASE_QUESTION in ticket["text"] and "webhook (private) · Wang" in ticket["text"]
    assert "case-status" in ticket["text"]  # the FAQ candidate the staff member can build on

    await staff_says(client, "s-1", "Your case was filed on 20 November.", str(ticket["id"]), "li")
    replies = await citizen.wait_for(2)
    assert replies[1]["text"] == "Your case was filed on 20 November."
    assert replies[1]["reply_to"] == "q-1"  # in the thread of the question
    updates = await staff.wait_for(2)
    assert updates[1]["text"].startswith(f"[{reference}] answered; the answer is on its way")
    assert "li" in updates[1]["text"] and updates[1]["reply_to"] == str(ticket["id"])

    record = await cli_json(database, "escalations", "show", reference, monkeypatch=monkeypatch)
    assert (record["status"], record["answered_by"]) == ("closed", "li")
    assert [e["kind"] for e in record["history"]] == ["opened", "answered"]
    assert record["history"][1]["channel"] == "staff"


async def test_follow_ups_go_to_the_open_ticket_and_the_bot_answers_again_after_it_closes(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    ends: tuple[Receiver, Receiver, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scene = await make_scene(tmp_path, aiohttp_client, ends)
    client, citizen, staff, database = scene.client, scene.citizen, scene.staff, scene.database
    ticket, reference = await scene.open_ticket()
    await citizen.wait_for(1)

    await citizen_says(client, "q-2", CASE_QUESTION)  # asked again: no second ticket
    updates = await staff.wait_for(2)
    assert updates[1]["text"].startswith(f"[{reference}] the citizen adds")
    assert updates[1]["text"].split("\n", 1)[1] == CASE_QUESTION
    replies = await citizen.wait_for(2)  # one line: it joined the open ticket, under its code
    assert reference in replies[1]["text"]
    # Nobody has claimed it yet: what the FAQ answers, the bot still answers.
    await citizen_says(client, "q-3", "诉讼费在哪里交")
    replies = await citizen.wait_for(3)
    assert "诉讼服务中心窗口缴纳" in replies[2]["text"]
    await asyncio.sleep(0.3)
    assert len(staff.replies) == 2  # an answered question is not added to the ticket

    await staff_says(client, "s-1", "claim", str(ticket["id"]), "li")
    await staff_says(client, "s-2", "note called the registry", str(ticket["id"]), "li")
    await staff_says(client, "s-3", "close Please ask the registry office in person.",
                     str(ticket["id"]), "li")  # fmt: skip
    replies = await citizen.wait_for(4)
    assert replies[3]["text"] == "Please ask the registry office in person."

    await citizen_says(client, "q-4", "诉讼费在哪里交")
    replies = await citizen.wait_for(5)
    assert "诉讼服务中心窗口缴纳" in replies[4]["text"]  # the bot answers again, from the FAQ

    record = await cli_json(database, "escalations", "show", reference, monkeypatch=monkeypatch)
    assert record["status"] == "closed" and record["assigned_to"] == "li"
    kinds = [e["kind"] for e in record["history"]]
    assert kinds == ["opened", "follow-up", "claimed", "note", "closed"]
    assert (
        await cli_json(database, "escalations", "list", "--status", "open", monkeypatch=monkeypatch)
        == []
    )
    tickets = await cli_json(
        database, "escalations", "list", "--staff", "li", monkeypatch=monkeypatch
    )
    assert [t["reference"] for t in tickets] == [reference]


async def test_staff_talk_outside_a_ticket_thread_is_ignored(
    tmp_path: Path, aiohttp_client: MakeClient, ends: tuple[Receiver, Receiver, str, str]
) -> None:
    scene = await make_scene(tmp_path, aiohttp_client, ends)
    citizen, staff = scene.citizen, scene.staff
    await staff_says(scene.client, "s-1", "lunch at noon?", "nothing-we-sent", "li")
    await asyncio.sleep(0.3)
    assert citizen.replies == [] and staff.replies == []


# --- time: reply windows and promised answer times (the store, with its clock moved) --------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def clocked_store(sqlite_url: str, clock: Clock) -> AsyncIterator[Store]:
    """A store whose clock the test moves."""
    store = await Store.open(sqlite_url, clock=clock)
    yield store
    await store.close()


STAFF = Handoff(staff=(StaffChannel("staff", "duty"),), lang="en")


async def _escalated(store: Store, handoff: Handoff, clock: Clock) -> str:
    """A private question that goes to a person, answered by the pipeline as workers would."""
    message = InboundMessage("wechat", "m-1", "openid-1", "openid-1", CASE_QUESTION, False,
                             received_at=clock.now)  # fmt: skip
    await store.accept([message])
    rows = await store.claim_inbox("w", 10, 30)
    [handled] = await handle_batch(rows, Desk(load_knowledge(SMALL_KB)), rules_for, store,
                                   handoff=handoff)  # fmt: skip
    assert not isinstance(handled, Exception) and handled.reference
    return handled.reference


async def _citizen_writes(
    store: Store, handoff: Handoff, clock: Clock, event_id: str, text: str
) -> Handled:
    """The same WeChat citizen writes again, handled by the pipeline as workers would."""
    await store.accept([InboundMessage("wechat", event_id, "openid-1", "openid-1", text, False,
                                       received_at=clock.now)])  # fmt: skip
    rows = await store.claim_inbox("w", 10, 30)
    [handled] = await handle_batch(rows, Desk(load_knowledge(SMALL_KB)), rules_for, store,
                                   handoff=handoff)  # fmt: skip
    assert not isinstance(handled, Exception)
    return handled


async def _answered_too_late(store: Store, handoff: Handoff, clock: Clock) -> tuple[str, Outcome]:
    """A private WeChat question escalated, then answered 49 hours later: past its window."""
    reference = await _escalated(store, handoff, clock)
    await outbox_kinds(store)  # the acknowledgement and the ticket post leave
    clock.now += timedelta(hours=49)
    outcome = await store.staff_command(reference, Answer("It is filed."), actor="li",
                                        handoff=handoff)  # fmt: skip
    return reference, outcome


async def outbox_kinds(store: Store) -> list[tuple[str, str, str]]:
    """Replies queued since the last look (each marked sent, as the delivery would)."""
    rows = await store.claim_outbox("reader", 100, 30)
    for row in rows:
        await store.mark_sent(row.id, None)
    return [(r.kind, r.channel, r.text) for r in rows]


async def test_an_answer_after_the_reply_window_is_kept_and_shown_as_undeliverable(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    asked_at = clock.now
    reference, outcome = await _answered_too_late(store, STAFF, clock)
    ticket = await store.get_ticket(reference)
    assert ticket is not None and ticket.reply_deadline == asked_at + timedelta(hours=48)
    assert outcome.kind == "undeliverable"
    assert outcome.ticket.status == "undeliverable" and outcome.ticket.answer
    [(kind, channel, text)] = await outbox_kinds(store)  # nothing to the citizen
    assert (kind, channel) == ("ticket-update", "staff") and "NOT delivered" in text
    listed = await store.find_tickets(status="undeliverable")
    assert [e.reference for e in listed] == [reference]


async def test_a_kept_answer_is_sent_when_the_citizen_writes_again_and_reopens_the_window(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    handoff = STAFF
    reference, outcome = await _answered_too_late(store, handoff, clock)
    assert outcome.kind == "undeliverable"
    await outbox_kinds(store)

    clock.now += timedelta(days=3)  # the citizen comes back: WeChat takes replies again
    handled = await _citizen_writes(store, handoff, clock, "m-2", "还在吗？")
    assert handled.decision == "follow-up"
    sent = await outbox_kinds(store)
    assert ("answer", "wechat", "It is filed.") in sent
    updates = [text for kind, channel, text in sent if channel == "staff"]
    assert any("还在吗？" in text for text in updates)  # what the citizen wrote, as a follow-up
    assert any("reopened the platform's reply window" in text for text in updates)
    ticket = await store.get_ticket(reference)
    assert ticket is not None and ticket.status == "closed" and ticket.answered_by == "li"
    kinds = [event.kind for event in await store.ticket_events(reference)]
    assert kinds[-3:] == ["undeliverable", "follow-up", "answered"]

    # The conversation is the bot's again, once the quiet period after a person's answer is
    # over (bot.tickets.conversation: until then a message goes to the person who answered).
    clock.now += handoff.conversation.quiet_after_answer
    handled = await _citizen_writes(store, handoff, clock, "m-3", "如何缴纳诉讼费？")
    assert handled.decision == "answer"


async def test_an_undeliverable_ticket_closed_by_staff_sends_nothing_then_or_later(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    handoff = STAFF
    reference, _ = await _answered_too_late(store, handoff, clock)
    await outbox_kinds(store)

    # Li phoned the citizen instead.
    outcome = await store.staff_command(reference, Close("reached by phone"), actor="li",
                                        handoff=handoff)  # fmt: skip
    assert outcome.ticket.status == "closed"
    assert [channel for _, channel, _ in await outbox_kinds(store)] == ["staff"]
    handled = await _citizen_writes(store, handoff, clock, "m-2", "如何缴纳诉讼费？")
    assert handled.decision == "answer"  # the bot again; the kept answer stays kept
    sent = await outbox_kinds(store)
    assert [kind for kind, _, _ in sent] == ["reply"] and "It is filed." not in sent[0][2]


async def test_an_answer_after_the_reply_window_goes_by_email_to_the_address_the_citizen_gave(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    handoff = Handoff(staff=(StaffChannel("staff", "duty"),), lang="en", email_fallback="mail")
    reference = await _escalated(store, handoff, clock)
    [ack] = [text for kind, _, text in await outbox_kinds(store) if kind == "ack"]
    assert reference in ack and "可留下电子邮箱" in ack  # the citizen is offered the way
    clock.now += timedelta(hours=1)
    said = "如果微信联系不上，请发邮件到 wang.li@example.cn 谢谢"
    assert (await _citizen_writes(store, handoff, clock, "m-2", said)).decision == "follow-up"
    await outbox_kinds(store)  # the follow-up posted in the ticket's thread

    clock.now += timedelta(hours=49)  # past the 48 hours after the citizen's last message
    outcome = await store.staff_command(reference, Answer("立案材料已收到，正在审查。"),
                                        actor="li", handoff=handoff)  # fmt: skip
    assert outcome.kind == "answered" and outcome.ticket.status == "closed"

    # The staff thread says where the answer went, the address masked.
    rows = await store.claim_outbox("reader", 100, 30)
    [update] = [r for r in rows if r.channel == "staff"]
    assert "by e-mail to w***@example.cn" in update.text
    assert "wang.li" not in update.text
    # Nothing goes to WeChat, which would refuse it; one e-mail goes to the address given.
    assert [r.channel for r in rows if r.kind == "answer"] == ["mail"]
    for r in rows:
        if r.channel == "staff":
            await store.mark_sent(r.id, None)
        else:
            await store.release_outbox(r.id)

    async with smtp_sink() as sink:
        imap = ImapAccount("127.0.0.1", 1, "desk@example.gov", Secret("pw"), tls="none")
        mail = EmailAdapter(
            "mail", imap, from_address="Court Desk <desk@example.gov>", smtp_host="127.0.0.1",
            smtp_port=sink.port, smtp_tls="none",
        )  # fmt: skip
        delivery = Delivery(store, {"mail": mail}, DeliveryConfig(poll_interval=0.05), "d")
        running = asyncio.create_task(delivery.run())
        try:
            [sent] = await sink.wait_for(1)
        finally:
            await delivery.stop(1.0)
            running.cancel()
    assert sent.recipients == ["wang.li@example.cn"]
    message = sent.message
    assert message["Subject"] == f"您的咨询 {reference} 的答复"  # the question was in Chinese
    body = message.get_content()
    assert "立案材料已收到，正在审查。" in body and f"> {CASE_QUESTION}" in body
    events = await store.ticket_events(reference)
    assert events[-1].kind == "answered" and events[-1].actor == "li"


async def test_a_follow_up_moves_the_reply_window_and_an_answer_in_it_is_sent(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    handoff = STAFF
    reference = await _escalated(store, handoff, clock)
    await outbox_kinds(store)
    clock.now += timedelta(hours=47)
    assert (await _citizen_writes(store, handoff, clock, "m-2", "any news?")).decision == (
        "follow-up"
    )
    clock.now += timedelta(hours=2)  # 49 h after the question, 2 h after the follow-up
    outcome = await store.staff_command(reference, Answer("It is filed."), actor="li",
                                        handoff=handoff)  # fmt: skip
    assert outcome.kind == "answered"
    kinds = [(kind, channel) for kind, channel, _ in await outbox_kinds(store)]
    assert ("answer", "wechat") in kinds


async def test_an_overdue_ticket_is_posted_again_as_a_reminder_once_per_interval(
    clocked_store: Store, clock: Clock
) -> None:
    store = clocked_store
    always_open = BusinessHours(week=parse_week("mon-sun 00:00-24:00"))
    handoff = Handoff(
        staff=(StaffChannel("staff", "duty"),),
        lang="en",
        calendar=OfficeCalendar(always_open, timedelta(hours=8)),
    )
    reference = await _escalated(store, handoff, clock)
    await outbox_kinds(store)
    assert await store.remind_overdue(every=3600, handoff=handoff) == 0  # not due yet
    clock.now += timedelta(hours=9)
    assert await store.remind_overdue(every=3600, handoff=handoff) == 1
    [(kind, _, text)] = await outbox_kinds(store)
    assert kind == "ticket-update" and text.startswith(f"[{reference}] overdue")
    clock.now += timedelta(minutes=30)
    assert await store.remind_overdue(every=3600, handoff=handoff) == 0  # not again so soon
    overdue = await store.find_tickets(overdue_at=clock.now)
    assert [e.reference for e in overdue] == [reference]


async def test_suggest_faq_turns_an_answered_ticket_into_an_entry_kb_check_accepts(
    tmp_path: Path,
    aiohttp_client: MakeClient,
    ends: tuple[Receiver, Receiver, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(SMALL_KB, knowledge)
    scene = await make_scene(tmp_path, aiohttp_client, ends, knowledge)
    client, staff, database = scene.client, scene.staff, scene.database
    ticket, reference = await scene.open_ticket("法院有没有无障碍通道？")
    answer = "有。诉讼服务中心东门设有无障碍坡道和电梯，需要帮助可拨打导诉台电话。"
    await staff_says(client, "s-1", answer, str(ticket["id"]), "li")
    updates = await staff.wait_for(2)
    assert f"civicdesk tickets suggest-faq {reference}" in updates[1]["text"]

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(knowledge))
    out = StringIO()
    assert await asyncio.to_thread(cli, ["escalations", "suggest-faq", reference], out) == 0
    draft = out.getvalue()
    assert "法院有没有无障碍通道" in draft and "无障碍坡道" in draft
    # The draft's first comment lines say where it goes: paste into a file, or save as a new one.
    where = next(line for line in draft.splitlines() if line.startswith(("# paste", "# save")))
    path = Path(where.split(" of " if "paste" in where else "save as ", 1)[1].split()[0])
    path = path if path.is_absolute() else knowledge / path.name
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(before + draft, encoding="utf-8")
    report = check_knowledge(knowledge)
    assert report.errors == [], report.errors
    assert report.knowledge is not None and len(report.knowledge.entries) == 4


async def test_outside_working_hours_the_acknowledgement_names_the_next_working_period(
    clocked_store: Store, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai
    store = clocked_store
    reference = await _escalated(store, Handoff(), clock)
    [(_, _, text)] = [k for k in await outbox_kinds(store) if k[0] == "ack"]
    assert reference in text
    assert "11月30日（周一）09:00" in text  # the office opens again on Monday morning
    ticket = await store.get_ticket(reference)
    # Two working days of seven hours (09:00-12:00, 13:30-17:30) from Monday 09:00.
    assert ticket is not None and ticket.due_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


async def test_a_restart_between_receiving_and_handling_loses_no_answer_or_follow_up(
    tmp_path: Path, ends: tuple[Receiver, Receiver, str, str]
) -> None:
    """The staff member's answer and the citizen's follow-up are acknowledged by a server that
    stops before handling them; the next server hands both on."""
    citizen, staff, citizen_url, staff_url = ends
    environ = environment(tmp_path / "handoff.db", citizen_url, staff_url)

    async def serving(workers: bool) -> TestClient[web.Request, web.Application]:
        app, _, _ = await served_app(environ, SMALL_KB, workers=workers)
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        return client

    first = await serving(workers=True)
    await citizen_says(first, "q-1", CASE_QUESTION)
    [ticket] = await staff.wait_for(1)
    await first.close()

    second = await serving(workers=False)  # receives and stores, then stops before handling
    await citizen_says(second, "q-2", "还有一个问题：需要带什么材料？")
    await staff_says(second, "s-1", "Your case was filed on 20 November.", str(ticket["id"]), "li")
    await second.close()
    assert len(citizen.replies) == 1 and len(staff.replies) == 1  # nothing handled yet

    third = await serving(workers=True)
    try:
        updates = await staff.wait_for(3)
        # The answer, and the line telling the citizen their follow-up joined the ticket.
        replies = await citizen.wait_for(3)
    finally:
        await third.close()
    assert "Your case was filed on 20 November." in [r["text"] for r in replies[1:]]
    texts = [u["text"] for u in updates[1:]]
    assert any("还有一个问题" in t for t in texts)  # the follow-up reached the ticket's thread
    assert any("answered" in t for t in texts)
