"""Issue 12, finding 1, as citizens met it, through the real app (the generic signed webhook
channel, its receiver on port 0): silence after a ticket opened, and non-questions that opened a
ticket and muted the bot. Uses only what the app had before the conversation rules, so that it
shows the difference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_support import (
    SAMPLE_KB,
    Receiver,
    count_rows,
    environment,
    event,
    served_app,
    signed_post,
    start_receiver,
)

Client = TestClient[web.Request, web.Application]
FEE_ANSWER = "court.example.gov/fee"  # in the sample FAQ's answer to 诉讼费怎么交, either language


@pytest.fixture
async def served(
    tmp_path: Path, aiohttp_client: object
) -> AsyncIterator[tuple[Client, Receiver, Path]]:
    receiver, server = await start_receiver()
    database = tmp_path / "findings.db"
    app, _, _ = await served_app(environment(database, str(server.make_url("/replies"))), SAMPLE_KB)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client, receiver, database
    await client.close()
    await server.close()


async def says(client: Client, event_id: str, text: str, conversation: str) -> None:
    body = event(event_id, text, conversation)
    response = await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
    assert response.status == 200, await response.text()


async def test_the_bot_still_answers_after_a_question_went_to_staff(
    served: tuple[Client, Receiver, Path],
) -> None:
    client, receiver, database = served
    await says(client, "message-0001", "can I bring my dog to the hearing?", "case-dog")
    [ack] = await receiver.wait_for(1)
    assert "ref." in ack["text"]
    await says(client, "message-0002", "court fee", "case-dog")
    replies = await receiver.wait_for(2)  # before: no reply ever
    assert "court fee" in replies[1]["text"]  # the FAQ's clarifying question
    await says(client, "message-0003", "诉讼费怎么交", "case-dog")
    replies = await receiver.wait_for(3)
    assert FEE_ANSWER in replies[2]["text"]
    assert count_rows(database, "escalation") == 1


@pytest.mark.parametrize(
    "first",
    ["Hello, world", "Лол кек 😂", "baba", "【收到不支持的消息类型，暂无法显示】", "test"],
)
async def test_a_message_that_is_no_question_opens_no_ticket_and_mutes_nothing(
    served: tuple[Client, Receiver, Path], first: str
) -> None:
    client, receiver, database = served
    await says(client, "message-0001", first, "case-hello")
    [prompt] = await receiver.wait_for(1)
    assert "ref." not in prompt["text"] and "编号" not in prompt["text"]
    assert count_rows(database, "escalation") == 0  # before: a ticket, and the bot muted
    await says(client, "message-0002", "诉讼费怎么交", "case-hello")
    replies = await receiver.wait_for(2)
    assert FEE_ANSWER in replies[1]["text"]
