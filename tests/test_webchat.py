"""The web chat's mailbox and adapter on their own: replies wait for the page, a long poll wakes
as soon as one arrives, memory stays bounded, and a stopping server releases every poll."""

from __future__ import annotations

import asyncio
import json

import pytest

from adapters.webchat import Mailbox, WebchatAdapter
from bot.adapter import BadRequest, RawRequest
from bot.messages import OutboundMessage

JSON = {"Content-Type": "application/json; charset=utf-8"}


def raw(data: object, headers: dict[str, str] = JSON) -> RawRequest:
    return RawRequest("POST", "/webhooks/webchat", {}, headers, json.dumps(data).encode())


def reply(conversation: str, text: str, outbox_id: int = 1) -> OutboundMessage:
    return OutboundMessage(outbox_id, "webchat", conversation, text, public=False)


async def test_a_reply_sent_before_the_poll_is_kept_for_it() -> None:
    chat = WebchatAdapter()

    result = await chat.send(reply("conv-0001", "可网上缴纳。"))
    (got,) = await chat.replies("conv-0001", after=0, timeout=0)

    assert result.ok
    assert got["text"] == "可网上缴纳。"
    assert await chat.replies("conv-0001", after=got["seq"], timeout=0) == []


async def test_a_waiting_poll_wakes_when_the_reply_arrives() -> None:
    chat = WebchatAdapter()
    poll = asyncio.create_task(chat.replies("conv-0001", after=0, timeout=30))
    await asyncio.sleep(0.01)

    await chat.send(reply("conv-0001", "answer"))
    replies = await asyncio.wait_for(poll, 1)

    assert [r["text"] for r in replies] == ["answer"]


async def test_conversations_do_not_see_each_other() -> None:
    chat = WebchatAdapter()
    await chat.send(reply("conv-aaaa", "for a"))

    assert await chat.replies("conv-bbbb", after=0, timeout=0.01) == []


async def test_a_poll_with_nothing_to_say_returns_empty_after_its_timeout() -> None:
    assert await WebchatAdapter().replies("conv-0001", after=0, timeout=0.05) == []


async def test_stopping_releases_every_waiting_poll() -> None:
    chat = WebchatAdapter()
    polls = [asyncio.create_task(chat.replies(f"conv-000{i}", 0, 60)) for i in range(3)]
    await asyncio.sleep(0.01)

    chat.stop_waiting()

    assert await asyncio.wait_for(asyncio.gather(*polls), 1) == [[], [], []]
    assert await asyncio.wait_for(chat.replies("conv-0009", 0, 60), 1) == []


async def test_the_mailbox_is_bounded() -> None:
    now = [0.0]
    mailbox = Mailbox(keep=2, ttl=100, max_conversations=3, clock=lambda: now[0])
    for number in range(5):
        mailbox.put("conv-0001", f"reply {number}")
    assert [r.text for r in await mailbox.wait("conv-0001", 0, 0)] == ["reply 3", "reply 4"]

    for name in ("conv-0002", "conv-0003", "conv-0004"):
        mailbox.put(name, "x")
    assert len(mailbox) == 3  # the least recently used went first

    now[0] = 1000.0
    mailbox.put("conv-0005", "y")
    assert len(mailbox) == 1  # the others expired


def test_parse_reads_the_page_s_question() -> None:
    chat = WebchatAdapter("webchat")

    (message,) = chat.parse(raw({"id": "msg-0001", "conversation": "conv-0001", "text": "你好"}))

    assert (message.channel, message.platform_id) == ("webchat", "msg-0001")
    assert message.conversation == message.sender == "conv-0001"
    assert message.text == "你好"
    assert message.public is False


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (raw({"id": "msg-0001", "conversation": "conv-0001", "text": "hi"}, {}), "Content-Type"),
        (RawRequest("POST", "/", {}, JSON, b"{"), "not valid JSON"),
        (raw(["hi"]), "JSON object"),
        (raw({"id": "short", "conversation": "conv-0001", "text": "hi"}), '"id"'),
        (raw({"id": "msg-0001", "conversation": "<script>", "text": "hi"}), '"conversation"'),
        (raw({"id": "msg-0001", "conversation": "conv-0001", "text": ""}), '"text"'),
        (raw({"id": "msg-0001", "conversation": "conv-0001", "text": "x" * 2001}), "at most 2000"),
    ],
)
def test_malformed_questions_are_refused_with_the_reason(request_: RawRequest, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        WebchatAdapter().parse(request_)


async def test_a_malformed_conversation_id_is_refused_when_polling() -> None:
    with pytest.raises(BadRequest, match="conversation"):
        await WebchatAdapter().replies("../etc", 0, 0)
