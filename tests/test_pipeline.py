"""One inbox row through the pipeline: the desk's decision recorded with its replies, tickets and
conversation state, in a real database."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from bot.answering.composer import compose
from bot.answering.desk import Desk
from bot.answering.knowledge import Entry, KnowledgeBase, load_knowledge
from bot.answering.policy import PolicyConfig
from bot.gateway.pipeline import handle, handle_batch
from bot.platform.adapter import TEXT_RULES, TextRules
from bot.platform.lengths import weibo_length
from bot.platform.messages import InboundMessage
from bot.storage.models import InboxRow, OutboxRow
from bot.storage.store import Store
from bot.tickets.handoff import NO_HANDOFF
from bot.tickets.reference import REFERENCE_ALPHABET

KNOWLEDGE = Path(__file__).parents[1] / "knowledge"
TODAY = date(2026, 1, 15)
WEBHOOK = TEXT_RULES["webhook"]


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="module")
def desk(knowledge: KnowledgeBase) -> Desk:
    """One desk for the module (indexing takes ~0.4 s): the pipeline keeps no state in it."""
    return Desk(knowledge, today=lambda: TODAY)


_counter = iter(range(1, 1_000_000))


async def arrive(
    store: Store,
    text: str,
    *,
    channel: str = "webhook",
    conversation: str = "c1",
    public: bool = False,
    sender_name: str | None = None,
    mention: str | None = None,
) -> InboxRow:
    """A citizen's message, stored and claimed as a worker would."""
    n = next(_counter)
    msg = InboundMessage(
        channel,
        f"evt-{n}",
        conversation,
        "u1",
        text,
        public,
        sender_name=sender_name,
        mention=mention,
    )
    assert await store.accept([msg]) == [True]
    [row] = await store.claim_inbox("w", 1, 30)
    return row


async def outbox(store: Store) -> list[OutboxRow]:
    return await store.claim_outbox("reader", 100, 30)


async def test_an_answered_question_queues_one_reply_fitted_to_the_channel(
    store: Store, desk: Desk, knowledge: KnowledgeBase
) -> None:
    row = await arrive(store, "诉讼费怎么交")

    handled = await handle(row, desk, WEBHOOK, store)

    assert handled.finished and handled.decision == "answer" and handled.replies == 1
    [reply] = await outbox(store)
    entry = knowledge.get("pay-court-fee")
    assert entry is not None
    assert reply.text == compose(entry.answer["zh"], WEBHOOK, link=entry.link)
    assert (reply.channel, reply.conversation, reply.recipient) == ("webhook", "c1", "u1")
    assert reply.reply_to == row.platform_id
    assert reply.kind == "reply"
    assert await store.list_tickets() == []


async def test_a_public_weibo_answer_mentions_the_asker_within_140(
    store: Store, desk: Desk
) -> None:
    row = await arrive(store, "诉讼费怎么交", channel="weibo", public=True, mention="@zhang")

    await handle(row, desk, TEXT_RULES["weibo"], store)

    [reply] = await outbox(store)
    assert reply.text.startswith("@zhang ")
    assert weibo_length(reply.text) <= 140
    assert reply.public is True


@pytest.mark.parametrize(
    ("mention", "start"),
    [("<@U024BE7LH>", "<@U024BE7LH> "), ("@alice@example.social", "@alice@example.social ")],
)
async def test_a_public_answer_addresses_the_asker_as_the_platform_writes_a_mention(
    store: Store, desk: Desk, mention: str, start: str
) -> None:
    row = await arrive(store, "How do I pay the court fee?", public=True, mention=mention)
    await handle(row, desk, TEXT_RULES["slack"], store)
    [reply] = await outbox(store)
    assert reply.text.startswith(start) and not reply.text.startswith(start + start)


async def test_a_public_answer_without_a_mention_addresses_nobody(store: Store, desk: Desk) -> None:
    """Telegram quotes the question instead: a reply starting "@<display name>" would name
    someone else, or no one."""
    row = await arrive(store, "How do I pay the court fee?", public=True, sender_name="Fabio R")
    await handle(row, desk, TEXT_RULES["telegram"], store)
    [reply] = await outbox(store)
    assert not reply.text.startswith("@") and "Fabio" not in reply.text


@pytest.mark.parametrize(
    ("question", "lang"),
    [("我的案子现在到哪一步了？", "zh"), ("What is happening with my case?", "en")],
)
async def test_an_escalated_question_gets_a_ticket_and_an_acknowledgement_with_its_code(
    store: Store, desk: Desk, question: str, lang: str
) -> None:
    row = await arrive(store, question)

    handled = await handle(row, desk, WEBHOOK, store)

    assert handled.decision == "escalate" and handled.reference is not None
    reference = handled.reference
    assert re.fullmatch(f"[{REFERENCE_ALPHABET}]{{6}}", reference)
    [ticket] = await store.list_tickets()
    assert ticket.reference == reference
    assert ticket.status == "open"
    assert (ticket.channel, ticket.conversation, ticket.sender) == ("webhook", "c1", "u1")
    assert ticket.question == question
    assert ticket.reason
    assert ticket.candidates and {"entry_id", "score"} <= set(ticket.candidates[0])
    [ack] = await outbox(store)
    assert ack.kind == "ack" and ack.escalation_id == ticket.id
    assert reference in ack.text
    # When to expect an answer, from the office's working hours (bot.tickets.hours).
    assert NO_HANDOFF.promise(row.received_at, lang) in ack.text


async def test_a_weibo_acknowledgement_keeps_its_code_within_140(store: Store, desk: Desk) -> None:
    row = await arrive(
        store, "我的案子现在到哪一步了？", channel="weibo", public=True, mention="@" + "李" * 30
    )
    handled = await handle(row, desk, TEXT_RULES["weibo"], store)
    [ack] = await outbox(store)
    assert handled.reference and handled.reference in ack.text
    assert weibo_length(ack.text) <= 140


async def test_a_reference_already_in_use_is_drawn_again(
    store: Store, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = iter(["AAAAAA", "AAAAAA", "BBBBBB"])
    monkeypatch.setattr("bot.gateway.pipeline.new_reference", lambda: next(codes))
    first = await handle(await arrive(store, "我的案子现在到哪一步了？"), desk, WEBHOOK, store)
    other = await arrive(store, "我的案子现在到哪一步了？", conversation="c2")
    second = await handle(other, desk, WEBHOOK, store)
    assert (first.reference, second.reference) == ("AAAAAA", "BBBBBB")
    assert len(await outbox(store)) == 2


async def test_a_row_whose_claim_was_lost_is_left_to_its_new_worker(
    database_url: str, desk: Desk
) -> None:
    slow, fast = await Store.open(database_url), await Store.open(database_url)
    try:
        await slow.accept([InboundMessage("webhook", "e1", "c1", "u1", "诉讼费怎么交", False)])
        [row] = await slow.claim_inbox("slow", 1, lease_seconds=0.0)
        [taken] = await fast.claim_inbox("fast", 1, 30)
        assert taken.id == row.id

        late = await handle(row, desk, WEBHOOK, slow)
        on_time = await handle(taken, desk, WEBHOOK, fast)

        assert (late.finished, late.replies) == (False, 0)
        assert on_time.finished
        assert len(await fast.claim_outbox("reader", 10, 30)) == 1  # answered once
    finally:
        await slow.close()
        await fast.close()


# --- clarifying questions kept in the database ---------------------------------------------------

FEE = Entry(
    id="court-fee",
    topic="Fees",
    questions={"en": ("How do I pay the court fee?",)},
    answer={"en": "Pay the court fee online or at the cashier."},
)
APPEAL_FEE = Entry(
    id="appeal-fee",
    topic="Fees",
    questions={"en": ("How do I pay the appeal fee?",)},
    answer={"en": "Pay the appeal fee to the court that decided."},
)
ALWAYS_CLARIFY = PolicyConfig(
    answer_threshold=1.01, answer_margin=0.05, clarify_threshold=0.0, clarify_band=1.0
)


def fees_desk() -> Desk:
    """A new desk each time: nothing can survive in its memory, only in the database."""
    return Desk(KnowledgeBase((FEE, APPEAL_FEE)), ALWAYS_CLARIFY, default_lang="en")


async def test_a_clarifying_question_survives_a_restart_and_the_number_picks(
    database_url: str,
) -> None:
    rules = TextRules(4000)
    store = await Store.open(database_url)
    try:
        asked = await handle(await arrive(store, "how do I pay the fee"), fees_desk(), rules, store)
        assert asked.decision == "clarify"
        [question] = await outbox(store)
        assert "1) " in question.text and "2) " in question.text
    finally:
        await store.close()

    store = await Store.open(database_url)  # as after a restart of the process
    try:
        pending = await store.load_pending("webhook", "c1")
        assert pending is not None and len(pending.options) == 2
        picked = await handle(await arrive(store, "2"), fees_desk(), rules, store)
        assert picked.decision == "answer"
        [answer] = await outbox(store)
        second = KnowledgeBase((FEE, APPEAL_FEE)).get(pending.options[1])
        assert second is not None and second.answer["en"] in answer.text
        assert await store.load_pending("webhook", "c1") is None  # the question is answered

        again = await handle(await arrive(store, "2"), fees_desk(), rules, store)
        assert again.decision != "answer"  # a second "2" is no longer a pick
    finally:
        await store.close()


async def test_a_pick_in_another_conversation_is_not_a_pick(store: Store) -> None:
    rules = TextRules(4000)
    await handle(await arrive(store, "how do I pay the fee"), fees_desk(), rules, store)
    other = await handle(await arrive(store, "2", conversation="c2"), fees_desk(), rules, store)
    assert other.decision != "answer"
    assert await store.load_pending("webhook", "c1") is not None


# --- the desk with its clarify state kept by the caller -------------------------------------------


def test_a_desk_given_the_pending_question_neither_reads_nor_writes_its_memory() -> None:
    desk = fees_desk()
    asked = desk.respond("how do I pay the fee", conversation="c1", pending=None)
    assert asked.decision.decision == "clarify"
    assert asked.pending_clarify is not None and len(asked.pending_clarify.options) == 2
    assert len(desk.memory) == 0  # the caller keeps it

    picked = desk.respond("1", conversation="c1", pending=asked.pending_clarify)
    assert picked.decision.decision == "answer"
    assert picked.entry_id == asked.pending_clarify.options[0]
    assert picked.pending_clarify is None  # nothing left to remember


def test_an_expired_pending_question_given_to_the_desk_is_not_an_answer() -> None:
    desk = fees_desk()
    asked = desk.respond("how do I pay the fee", conversation="c1", pending=None)
    assert asked.pending_clarify is not None
    stale = replace(asked.pending_clarify, expires_at=0.0)
    assert desk.respond("1", conversation="c1", pending=stale).decision.decision != "answer"


def test_the_desk_still_remembers_by_itself_when_not_given_the_state() -> None:
    desk = fees_desk()
    desk.respond("how do I pay the fee", conversation="c1")
    assert len(desk.memory) == 1
    assert desk.respond("2", conversation="c1").decision.decision == "answer"


async def test_a_citizens_second_message_in_the_same_batch_joins_the_ticket_the_first_opened(
    store: Store, desk: Desk
) -> None:
    """Two messages claimed together: the first goes to a person, the second (asked again
    before the first was handled) joins its ticket instead of opening another."""
    for n in (1, 2):
        await store.accept(
            [InboundMessage("webhook", f"twice-{n}", "c9", "u9", "我的案子现在到哪一步了？", False)]
        )
    rows = await store.claim_inbox("w", 10, 30)
    results = await handle_batch(rows, desk, lambda _: WEBHOOK, store)
    decisions = [r.decision for r in results if not isinstance(r, Exception)]
    assert decisions == ["escalate", "follow-up"]
    assert len(await store.list_tickets()) == 1
