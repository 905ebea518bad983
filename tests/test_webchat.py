"""The web chat's mailbox and adapter on their own: replies wait for the page, a long poll wakes
as soon as one arrives, memory stays bounded, and a stopping server releases every poll."""

from __future__ import annotations

import asyncio
import json
from functools import partial

import pytest

from adapters.webchat import ChatReply, Mailbox, WebchatAdapter
from bot.platform.adapter import BadRequest, RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage
from bot.storage.store import Store
from bot.tickets.drafts import OutboxDraft

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
    for number in range(1, 6):
        mailbox.put("conv-0001", ChatReply(number, f"reply {number}", None, ""))
    assert [r.text for r in mailbox.delivered("conv-0001", 0).values()] == ["reply 4", "reply 5"]

    for number, name in enumerate(("conv-0002", "conv-0003", "conv-0004"), start=6):
        mailbox.put(name, ChatReply(number, "x", None, ""))
    assert len(mailbox) == 3  # the least recently used went first

    now[0] = 1000.0
    mailbox.put("conv-0005", ChatReply(9, "y", None, ""))
    assert len(mailbox) == 1  # the others expired


# --- replies read from the outbox: delivered by whichever process --------------------------


async def queue_replies(store: Store, conversation: str, *texts: str) -> list[int]:
    """A question on the web chat answered with `texts`, as a worker would: their outbox ids."""
    await store.accept([InboundMessage("webchat", f"q-{conversation}", conversation, conversation,
                                       "问题", False)])  # fmt: skip
    [row] = await store.claim_inbox("answering", 1, 30)
    drafts = [OutboxDraft("webchat", conversation, text) for text in texts]
    assert await store.finish_inbox(row.id, decision="answer", entry_id=None, replies=drafts,
                                    ticket=None, pending_clarify=None)  # fmt: skip
    claimed = await store.claim_outbox("another-process", 10, 30)
    return [r.id for r in claimed]


async def test_a_reply_delivered_by_another_process_reaches_this_processs_page(
    store: Store,
) -> None:
    chat = WebchatAdapter()  # this process: it delivers nothing itself
    chat.read_outbox(partial(store.conversation_replies, "webchat"))
    poll = asyncio.create_task(chat.replies("conv-split", after=0, timeout=30))
    [reply_id] = await queue_replies(store, "conv-split", "可网上缴纳。")
    await asyncio.sleep(0.1)
    assert not poll.done()  # queued and being sent is not delivered

    assert await store.mark_sent(reply_id, f"webchat-{reply_id}")  # by the other process
    [got] = await asyncio.wait_for(poll, 5)
    assert (got["seq"], got["text"]) == (reply_id, "可网上缴纳。")
    assert await chat.replies("conv-split", after=got["seq"], timeout=0) == []


async def test_replies_reach_the_page_in_order_and_dead_letters_do_not_hold_them_back(
    store: Store,
) -> None:
    chat = WebchatAdapter()
    chat.read_outbox(partial(store.conversation_replies, "webchat"))
    first, second, third = await queue_replies(store, "conv-order", "one", "two", "three")

    await store.mark_sent(second, None)
    assert await chat.replies("conv-order", 0, 0) == []  # "one" is still on its way
    await chat.send(reply("conv-order", "one", first))  # this process delivers it
    assert [r["text"] for r in await chat.replies("conv-order", 0, 0)] == ["one", "two"]
    await store.mark_dead(third, "refused")
    assert [r["text"] for r in await chat.replies("conv-order", second, 0)] == []


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
