"""Two staff members answering one ticket at the same moment (issue 12, finding 6): on PostgreSQL
both answers used to reach the citizen (the ticket was read without a lock and updated by id
only). Now the update is conditional (`WHERE status = 'open'`): exactly one answer goes out, and
the other staff member is told who answered first: in the ticket's thread when they answered
there, in the error when they used the command line or /admin.

Each staff member has a store of their own (two worker processes, two connection pools), and the
two answers run at once on both; SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from web_support import SMALL_KB

from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.gateway.pipeline import handle_batch
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.store import Store
from bot.tickets.handoff import Answer, Claim, Handoff, StaffChannel
from bot.tickets.reference import TicketClosed

STAFF = Handoff(staff=(StaffChannel("staff", "duty"),), lang="en")
CASE_QUESTION = "我的案件进展到哪一步了"  # an entry that always goes to a person
DESK = Desk(load_knowledge(SMALL_KB))


@pytest.fixture
async def two_stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first = await Store.open(database_url)
    second = await Store.open(database_url, upgrade=False)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def open_ticket(store: Store, round_: int) -> tuple[str, str]:
    """A citizen's question that goes to a person; its reference and the ticket post's id."""
    message = InboundMessage("webhook", f"q-{round_}", f"case-{round_}", f"u-{round_}",
                             CASE_QUESTION, False)  # fmt: skip
    await store.accept([message])
    rows = await store.claim_inbox("asker", 10, 30)
    [handled] = await handle_batch(rows, DESK, rules_for, store, handoff=STAFF)
    assert not isinstance(handled, Exception) and handled.reference
    post_id = f"post-{round_}"
    for row in await store.claim_outbox("delivery", 100, 30):  # the ack and the ticket post
        await store.mark_sent(row.id, post_id if row.kind == "ticket" else None)
    return handled.reference, post_id


async def staff_answers_in_thread(store: Store, round_: int, who: str, post_id: str) -> None:
    """`who` replies in the ticket's thread; this store's worker handles it."""
    said = InboundMessage("staff", f"s-{round_}-{who}", "duty", who, f"It is filed ({who}).",
                          False, sender_name=who, reply_to=post_id)  # fmt: skip
    await store.accept([said])
    rows = await store.claim_inbox(f"worker-{who}", 10, 30)
    results = await handle_batch(rows, DESK, rules_for, store, handoff=STAFF)
    assert not any(isinstance(r, Exception) for r in results), results


async def sent_for(store: Store, reference: str, round_: int) -> tuple[list[str], list[str]]:
    """The answers queued to the citizen, and the lines posted in the ticket's thread."""
    to_citizen = await store.conversation_replies("webhook", f"case-{round_}", 0)
    in_thread = await store.conversation_replies("staff", "duty", 0, limit=10_000)
    answers = [r.text for r in to_citizen if "It is filed" in r.text]
    lines = [r.text for r in in_thread if r.text.startswith(f"[{reference}]")]
    return answers, lines


async def test_of_two_staff_answering_in_the_thread_at_once_one_reaches_the_citizen(
    two_stores: tuple[Store, Store], database_url: str
) -> None:
    rounds = 50 if database_url.startswith("postgresql") else 10
    first, second = two_stores
    winners: dict[str, int] = {"li": 0, "wang": 0}
    for round_ in range(rounds):
        reference, post_id = await open_ticket(first, round_)
        await asyncio.gather(
            staff_answers_in_thread(first, round_, "li", post_id),
            staff_answers_in_thread(second, round_, "wang", post_id),
        )
        answers, lines = await sent_for(first, reference, round_)
        assert len(answers) == 1, f"round {round_}: {answers}"  # exactly one answer sent
        winner = "li" if "(li)" in answers[0] else "wang"
        loser = "wang" if winner == "li" else "li"
        winners[winner] += 1
        ticket = await first.get_ticket(reference)
        assert ticket is not None and ticket.answered_by == winner
        # The other one is told, in the thread, that their answer was not sent and who won.
        told = [line for line in lines if f"{loser}: not sent" in line]
        assert len(told) == 1 and f"{winner} answered first" in told[0], lines
    kind = database_url.split(":", maxsplit=1)[0]
    print(f"\n{kind}: {rounds} rounds, one answer each; wins {winners}")


async def test_of_two_staff_answering_from_the_command_line_at_once_one_is_refused_by_name(
    two_stores: tuple[Store, Store],
) -> None:
    first, second = two_stores
    for round_ in range(10):
        reference, _ = await open_ticket(first, round_)
        results = await asyncio.gather(
            first.staff_command(reference, Answer("It is filed (li)."), actor="li", handoff=STAFF),
            second.staff_command(reference, Answer("It is filed (wang)."), actor="wang",
                                 handoff=STAFF),
            return_exceptions=True,
        )  # fmt: skip
        refused = [r for r in results if isinstance(r, TicketClosed)]
        done = [r for r in results if not isinstance(r, BaseException)]
        assert len(refused) == 1 and len(done) == 1, results
        assert refused[0].first == done[0].ticket.answered_by  # who answered first
        answers, _ = await sent_for(first, reference, round_)
        assert len(answers) == 1


async def test_two_workers_acknowledge_a_burst_of_follow_ups_once(
    two_stores: tuple[Store, Store],
) -> None:
    """A person has the ticket; the citizen sends two messages at once, handled by two workers
    (two stores) at the same moment: both join the ticket, one "a colleague is on it" is sent."""
    first, second = two_stores
    reference, _ = await open_ticket(first, 0)
    await first.staff_command(reference, Claim(), actor="li", handoff=STAFF)
    for n in (1, 2):
        message = InboundMessage("webhook", f"again-{n}", "case-0", "u-0", f"any news? ({n})",
                                 False)  # fmt: skip
        await first.accept([message])
    rows_first = await first.claim_inbox("worker-1", 1, 30)
    rows_second = await second.claim_inbox("worker-2", 1, 30)
    assert len(rows_first) == len(rows_second) == 1
    results = await asyncio.gather(
        handle_batch(rows_first, DESK, rules_for, first, handoff=STAFF),
        handle_batch(rows_second, DESK, rules_for, second, handoff=STAFF),
    )
    assert [r.decision for [r] in results if not isinstance(r, Exception)] == ["follow-up"] * 2
    told = [r.text for r in await first.conversation_replies("webhook", "case-0", 0)
            if "is on it" in r.text]  # fmt: skip
    assert len(told) == 1 and reference in told[0] and "li" in told[0]
    kinds = [event.kind for event in await first.ticket_events(reference)]
    assert kinds.count("follow-up") == 2  # both messages reached the ticket
