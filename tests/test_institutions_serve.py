"""Two institutions on one server, assembled as `civicdesk serve` does with CIVICDESK_INSTITUTIONS:
each channel's question is answered from its institution's knowledge (with its overrides of the
shared entries), handed to its institution's staff room only, under its reference prefix."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_weibo import APP_SECRET, OWN_UID, TOKEN, FakeWeibo, fake_weibo, push_query, text_push
from web_support import SECRET, SMALL_KB, Receiver, event, served_app, signed_post

Client = TestClient[web.Request, web.Application]

A_FEE_ANSWER = "Institution A: pay the court fee at window 3 of our service hall."
B_ONLY_QUESTION = "How do I file a small claim in the district?"
B_ONLY_ANSWER = "Small claims are filed at the district court's counter 1."
UNKNOWN = "My neighbour's parrot sings all night, what can the zoo do about it?"


def _topic(entry_id: str, question: str, answer: str) -> str:
    return (
        "topic: Own\nentries:\n"
        f"  - id: {entry_id}\n    questions:\n      en: [{json.dumps(question)}]\n"
        f"    answer:\n      en: {json.dumps(answer)}\n"
    )


def _folders(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shutil.copytree(SMALL_KB, shared)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "fees.yaml").write_text(
        _topic("pay-court-fee", "How do I pay the court fee?", A_FEE_ANSWER), encoding="utf-8"
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "claims.yaml").write_text(
        _topic("small-claims", B_ONLY_QUESTION, B_ONLY_ANSWER), encoding="utf-8"
    )
    path = tmp_path / "institutions.yaml"
    path.write_text(
        """
shared: shared
institutions:
  - name: court-a
    display: {zh: 甲法院, en: Court A}
    knowledge: a
    prefix: AA
    channels: [weibo-a]
    staff: [staff-a]
  - name: court-b
    display: {zh: 乙法院, en: Court B}
    knowledge: b
    prefix: BB
    channels: [webhook]
    staff: [staff-b]
    answer_target: 4h
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def weibo() -> AsyncIterator[tuple[FakeWeibo, str]]:
    async with fake_weibo() as served:
        yield served


@pytest.fixture
async def rooms() -> AsyncIterator[tuple[Receiver, Receiver, Receiver, TestServer]]:
    """The two staff rooms and court B's citizen-side receiver, on one server on port 0."""
    room_a, room_b, citizens_b = Receiver(), Receiver(), Receiver()
    app = web.Application()
    app.router.add_post("/room-a", room_a.handle)
    app.router.add_post("/room-b", room_b.handle)
    app.router.add_post("/citizens-b", citizens_b.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield room_a, room_b, citizens_b, server
    await server.close()


@pytest.fixture
async def client(
    aiohttp_client: Any,
    tmp_path: Path,
    weibo: tuple[FakeWeibo, str],
    rooms: tuple[Receiver, Receiver, Receiver, TestServer],
) -> Client:
    server = rooms[3]
    environ = {
        "CIVICDESK_CHANNELS": "weibo-a,webhook,staff-a,staff-b",
        "CIVICDESK_ESCALATE_TO": "staff-a,staff-b",
        "CIVICDESK_INSTITUTIONS": str(_folders(tmp_path)),
        "CIVICDESK_WEIBO_A_ADAPTER": "weibo",
        "CIVICDESK_WEIBO_A_ACCESS_TOKEN": TOKEN,
        "CIVICDESK_WEIBO_A_APP_SECRET": APP_SECRET,
        "CIVICDESK_WEIBO_A_USER_ID": OWN_UID,
        "CIVICDESK_WEIBO_A_API_BASE": weibo[1],
        "CIVICDESK_WEIBO_A_MESSAGES_API_BASE": weibo[1],
        "CIVICDESK_WEIBO_A_POLL_INTERVAL": "3600",
        "CIVICDESK_WEBHOOK_SECRET": SECRET,
        "CIVICDESK_WEBHOOK_OUTBOUND_URL": str(server.make_url("/citizens-b")),
        "CIVICDESK_STAFF_A_ADAPTER": "webhook",
        "CIVICDESK_STAFF_A_SECRET": SECRET,
        "CIVICDESK_STAFF_A_OUTBOUND_URL": str(server.make_url("/room-a")),
        "CIVICDESK_STAFF_B_ADAPTER": "webhook",
        "CIVICDESK_STAFF_B_SECRET": SECRET,
        "CIVICDESK_STAFF_B_OUTBOUND_URL": str(server.make_url("/room-b")),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
    }
    app, _, _ = await served_app(environ, tmp_path / "unused")
    result: Client = await aiohttp_client(app)
    return result


def _now_ms() -> str:
    return str(int(time.time() * 1000))


async def _weibo_reply(client: Client, api: FakeWeibo, text: str, count: int) -> str:
    response = await client.post(
        "/webhooks/weibo-a", params=push_query(_now_ms()), data=text_push(text)
    )
    assert response.status == 200
    posts = [p for p in await api.wait_posts(count) if "messages" in p[0]]
    return str(json.loads(posts[count - 1][2]["data"])["text"])


async def test_a_question_on_a_weibo_is_answered_from_a_faq_with_its_override(
    client: Client, weibo: tuple[FakeWeibo, str]
) -> None:
    api, _ = weibo
    assert (await _weibo_reply(client, api, "How do I pay the court fee?", 1)).startswith(
        A_FEE_ANSWER
    )
    # A shared entry A does not override is A's too; B's own entry is not.
    assert "refund" in (await _weibo_reply(client, api, "Can I get my court fee back?", 2))
    assert B_ONLY_ANSWER not in await _weibo_reply(client, api, B_ONLY_QUESTION, 3)


async def test_an_escalation_goes_to_its_own_staff_room_under_its_prefix(
    client: Client,
    weibo: tuple[FakeWeibo, str],
    rooms: tuple[Receiver, Receiver, Receiver, TestServer],
) -> None:
    api, _ = weibo
    room_a, room_b, citizens_b, _ = rooms
    acknowledgement = await _weibo_reply(client, api, UNKNOWN, 1)
    [code_a] = re.findall(r"AA-[0-9A-Z]{6}", acknowledgement)
    [post_a] = await room_a.wait_for(1)
    assert code_a in post_a["text"]

    body = event("b-1", UNKNOWN, conversation="case-b")
    response = await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
    assert response.status == 200
    [post_b] = await room_b.wait_for(1)
    [code_b] = re.findall(r"BB-[0-9A-Z]{6}", post_b["text"])
    [ack_b] = await citizens_b.wait_for(1)
    assert code_b in ack_b["text"]
    # Each room saw its own institution's ticket only.
    assert len(room_a.replies) == 1 and code_b not in json.dumps(room_a.replies)
    assert code_a not in json.dumps(room_b.replies)


async def test_b_answers_its_own_entry_and_the_shared_one_without_a_override(
    client: Client, rooms: tuple[Receiver, Receiver, Receiver, TestServer]
) -> None:
    citizens_b = rooms[2]
    for number, text in enumerate((B_ONLY_QUESTION, "How do I pay the court fee?")):
        body = event(f"b-{number}", text, conversation=f"case-{number}")
        response = await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
        assert response.status == 200
    replies = [r["text"] for r in await citizens_b.wait_for(2)]
    assert any(r.startswith(B_ONLY_ANSWER) for r in replies)
    assert any(r.startswith("Pay online or at the litigation service centre.") for r in replies)
    assert not any(A_FEE_ANSWER in r for r in replies)
