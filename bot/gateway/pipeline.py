"""Answer claimed inbox rows: ask the desk, then record the outcomes in one transaction.

Orchestration only: what to say is decided by `bot.answering.desk` (and `bot.answering.policy`);
where it is kept is
`bot.storage.store`'s business. The one thing added here is the escalation ticket: its reference
code and
the acknowledgement that carries it, which the desk cannot know.

`handle` takes one row; `handle_batch` takes the rows of one claim, reads their conversations'
state in one query and records them in one transaction, which is what keeps a busy desk's
database work per message small.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from bot.answering.desk import Desk, PendingClarify, Reply
from bot.answering.policy import Escalate
from bot.platform.adapter import TextRules
from bot.storage.engine import StoreUnavailable
from bot.storage.models import TICKET_UNDELIVERABLE, InboxRow, Ticket
from bot.storage.store import Store
from bot.tickets.conversation import (
    DeskView,
    Incoming,
    Step,
    TicketView,
    Turn,
    decide_turn,
    needs_desk,
)
from bot.tickets.drafts import KIND_ACK, KIND_REPLY, Finish, OutboxDraft, TicketDraft
from bot.tickets.handoff import NO_HANDOFF, Handoff, parse_staff_reply, ticket_post
from bot.tickets.reference import (
    ReferenceTaken,
    acknowledgement,
    candidate_records,
    new_reference,
    prefixed,
)

log = logging.getLogger(__name__)

REFERENCE_TRIES = 5  # a collision among ~1e9 codes is rare; five in a row means something is wrong


@dataclass(frozen=True)
class Handled:
    """What became of a row: for the worker's wake-ups, metrics and logs."""

    finished: bool  # False: the claim was lost to another worker, which answers instead
    decision: str
    replies: int
    reference: str | None = None
    seconds: float = 0.0  # the desk's time for this message


@dataclass(frozen=True)
class Prepared:
    """A row's answer, ready to record; `redrawn()` when its ticket code turned out taken."""

    row: InboxRow
    reply: Reply
    rules: TextRules
    pending_clarify: PendingClarify | Literal["clear"] | None
    reference: str | None  # set when the decision is to escalate
    seconds: float = 0.0
    handoff: Handoff = NO_HANDOFF
    # Set by the conversation rules when they say otherwise than the desk (a prompt for the
    # question, the only-text reply): the text and the decision recorded.
    said: str | None = None
    decision: str | None = None

    def as_turn(self, turn: Turn) -> Prepared:
        """This answer as the conversation rules decided it: the desk's reply, a new ticket,
        or their own text with no ticket."""
        if turn.step in (Step.ANSWER, Step.OPEN_TICKET):
            return self
        return replace(self, said=turn.text or "", decision=turn.decision, reference=None)

    @property
    def mention(self) -> str | None:
        return self.row.mention if self.row.public else None

    def finish(self) -> Finish:
        row, reply = self.row, self.reply
        ticket = None
        text = reply.text if self.said is None else self.said
        if self.reference is not None and isinstance(reply.decision, Escalate):
            ticket = _ticket(row, reply, reply.decision, self.reference, self.handoff)
            text = acknowledgement(
                self.reference,
                reply.lang,
                self.rules,
                promise=self.handoff.promise(row.received_at, reply.lang),
                mention=self.mention,
                invite_email=self.handoff.invites_email(row.channel, row.public, row.text),
            )
        replies = [_reply(row, text, KIND_ACK if ticket else KIND_REPLY)] if text else []
        return Finish(
            inbox_id=row.id,
            decision=self.decision or reply.decision.decision,
            entry_id=reply.entry_id if self.decision is None else None,
            replies=replies,
            ticket=ticket,
            pending_clarify=self.pending_clarify,
        )

    def redrawn(self) -> Prepared:
        return replace(self, reference=prefixed(self.handoff.reference_prefix, new_reference()))


def prepare(
    row: InboxRow,
    desk: Desk,
    rules: TextRules,
    pending: PendingClarify | None,
    *,
    handoff: Handoff = NO_HANDOFF,
) -> Prepared:
    """Ask the desk about one row (CPU only: no I/O)."""
    mention = row.mention if row.public else None
    started = time.perf_counter()
    reply = desk.respond(
        row.text,
        channel=row.channel,
        public=row.public,
        conversation=row.conversation,
        mention=mention,
        rules=rules,
        pending=pending,
    )
    keep: PendingClarify | Literal["clear"] | None = reply.pending_clarify
    if keep is None and pending is not None:
        keep = "clear"  # whatever the citizen said next was their answer to the question
    reference = (
        prefixed(handoff.reference_prefix, new_reference())
        if isinstance(reply.decision, Escalate)
        else None
    )
    seconds = time.perf_counter() - started
    return Prepared(row, reply, rules, keep, reference, seconds, handoff)


async def handle(
    row: InboxRow,
    desk: Desk,
    adapter_rules: TextRules,
    store: Store,
    *,
    handoff: Handoff = NO_HANDOFF,
) -> Handled:
    """Answer one row (claimed by this store) and record the result."""
    [handled] = await handle_batch([row], desk, lambda _: adapter_rules, store, handoff=handoff)
    if isinstance(handled, Exception):
        raise handled
    return handled


async def handle_batch(
    rows: Sequence[InboxRow],
    desk: Desk,
    rules_for: Callable[[str], TextRules],
    store: Store,
    *,
    handoff: Handoff = NO_HANDOFF,
    staff_names: StaffNames | None = None,
) -> list[Handled | Exception]:
    """Answer rows claimed together: one read of their state, one transaction for the results.

    Messages in staff channels are staff acting on tickets; a citizen's message is answered,
    added to their open ticket or opens one as the conversation rules decide
    (bot.tickets.conversation: the bot steps aside once a person has the ticket). A row the desk
    fails on gets its exception in the result (the others go on). A database failure raises
    StoreUnavailable for the whole batch: nothing of it was written.
    """
    results: dict[int, Handled | Exception] = {}
    for segment in _segments(rows, handoff.staff_names):
        if rows[segment[0]].channel in handoff.staff_names:
            [index] = segment
            row = await _named(rows[index], staff_names)
            results[index] = await _staff_reply(store, row, handoff, rules_for)
        else:
            answered = await _answer_citizens(
                store, rows, segment, desk=desk, rules_for=rules_for, handoff=handoff
            )
            results.update(answered)
    return [results[i] for i in range(len(rows))]


# (channel, user id) -> the name the platform shows, or None (bot.platform.adapter.StaffDirectory)
StaffNames = Callable[[str, str], Awaitable[str | None]]


async def _named(row: InboxRow, staff_names: StaffNames | None) -> InboxRow:
    """A staff message with its author's name, where the event gave only an id: the ticket
    and its log say who answered by name."""
    if row.sender_name or staff_names is None:
        return row
    name = await staff_names(row.channel, row.sender)
    return replace(row, sender_name=name) if name else row


def _segments(rows: Sequence[InboxRow], staff: frozenset[str]) -> list[list[int]]:
    """The rows in arrival order, cut where order matters: each staff message alone (it may
    close a ticket that a citizen's next message must no longer find open), and a citizen's
    second message in a new segment (their first may open the ticket the second belongs to)."""
    segments: list[list[int]] = []
    current: list[int] = []
    asking: set[tuple[str, str, str]] = set()
    for index, row in enumerate(rows):
        key = (row.channel, row.conversation, row.sender)
        if row.channel in staff or key in asking:
            if current:
                segments.append(current)
            current, asking = [], set()
        if row.channel in staff:
            segments.append([index])
            continue
        current.append(index)
        asking.add(key)
    if current:
        segments.append(current)
    return segments


async def _answer_citizens(
    store: Store,
    rows: Sequence[InboxRow],
    segment: Sequence[int],
    *,
    desk: Desk,
    rules_for: Callable[[str], TextRules],
    handoff: Handoff,
) -> dict[int, Handled | Exception]:
    """Citizens' messages, at most one per citizen: one read of their tickets and pending
    questions, one transaction for the answers. What each message does is decided by the
    conversation rules (bot.tickets.conversation)."""
    results: dict[int, Handled | Exception] = {}
    citizens = [(index, rows[index]) for index in segment]
    keys = [(r.channel, r.conversation, r.sender) for _, r in citizens]
    conversation = handoff.conversation
    tickets, pending = await store.load_context(keys, quiet=conversation.quiet_after_answer)
    now = store.now()
    prepared: dict[int, Prepared] = {}
    if desk.matcher_name == "hybrid" and citizens:
        # The model's ~20 ms a question runs in a thread, for all waiting questions in one
        # batch; answering below then finds the vectors cached and stays on the event loop.
        await asyncio.to_thread(desk.embed_waiting, [row.text for _, row in citizens])
    for count, (index, row) in enumerate(citizens):
        if count:
            await asyncio.sleep(0)  # let the web handlers in between two answers
        ticket = tickets.get((row.channel, row.conversation, row.sender))
        try:
            view = ticket_view(ticket) if ticket is not None else None
            mention = row.mention if row.public else None
            incoming = Incoming(row.text, row.channel, row.media, mention)
            rules = rules_for(row.channel)
            p: Prepared | None = None
            desk_view = None
            if needs_desk(view, incoming, now, conversation):
                state = pending.get((row.channel, row.conversation))
                p = prepare(row, desk, rules, state, handoff=handoff)
                desk_view = DeskView(p.reply.decision.decision, p.reply.text, p.reply.lang)
            turn = decide_turn(view, incoming, desk_view, now=now, rules=conversation,
                               text_rules=rules, default_lang=handoff.lang)  # fmt: skip
            if turn.follow_up and ticket is not None:
                results[index] = await _follow_up(
                    store, row, ticket, turn, handoff=handoff, rules_for=rules_for
                )
                continue
            if p is None:  # media alone: the desk was not asked, its record is still needed
                p = prepare(row, desk, rules, pending.get((row.channel, row.conversation)),
                            handoff=handoff)  # fmt: skip
            prepared[index] = p.as_turn(turn)
        except StoreUnavailable:
            raise
        except Exception as exc:  # a bug or bad data in one row must not sink the others
            results[index] = exc
    results.update(await _record(store, prepared))
    return results


def ticket_view(ticket: Ticket) -> TicketView:
    return TicketView(
        reference=ticket.reference,
        status=ticket.status,
        assigned_to=ticket.assigned_to,
        answered_by=ticket.answered_by,
        answered_at=ticket.answered_at,
        closed_at=ticket.closed_at,
        close_reason=ticket.close_reason,
        acknowledged_at=ticket.acknowledged_at,
    )


async def _follow_up(
    store: Store,
    row: InboxRow,
    ticket: Ticket,
    turn: Turn,
    *,
    handoff: Handoff,
    rules_for: Callable[[str], TextRules],
) -> Handled:
    """The message joins `ticket`; the citizen is told so (or, for a burst of follow-ups to a
    ticket a person has, was told a moment ago: `turn.silent_because`)."""
    reply = _reply(row, turn.text, KIND_ACK) if turn.text else None
    added, told = await store.add_follow_up(
        row,
        ticket,
        handoff=handoff,
        rules=rules_for,
        reply=reply,
        acknowledge=turn.acknowledge,
        acknowledged_before=turn.acknowledged_before,
    )
    if added and not told:
        log.debug("inbox %d: %s; no reply: %s", row.id, turn.step,
                  turn.silent_because or "acknowledged by another worker just now")  # fmt: skip
    # Replies: the lines in the ticket's threads, a kept answer sent now, the line to the citizen.
    kept = int(ticket.status == TICKET_UNDELIVERABLE)
    replies = (1 + kept) * len(handoff.staff) + kept + int(told)
    return Handled(added, turn.decision, replies, ticket.reference)


async def _staff_reply(
    store: Store, row: InboxRow, handoff: Handoff, rules_for: Callable[[str], TextRules]
) -> Handled | Exception:
    try:
        command = parse_staff_reply(row.text)
        kind = await store.handle_staff_reply(row, command, handoff=handoff, rules=rules_for)
    except StoreUnavailable:
        raise
    except Exception as exc:
        return exc
    if kind is not None:
        log.info("inbox %d (%s): staff %s", row.id, row.channel, kind)
    # Replies: the answer to the citizen and the lines in the ticket's threads (wake delivery).
    return Handled(
        True, f"staff-{kind}" if kind else "staff", 1 + len(handoff.staff) if kind else 0
    )


async def _record(store: Store, prepared: dict[int, Prepared]) -> dict[int, Handled | Exception]:
    """Finish the prepared rows in one transaction; rows whose ticket code was taken are
    finished again with a new one."""
    recorded: dict[int, Handled | Exception] = {}
    for _ in range(REFERENCE_TRIES):
        if not prepared:
            break
        finishes = {index: p.finish() for index, p in prepared.items()}
        outcomes = await store.finish_many(list(finishes.values()))
        again: dict[int, Prepared] = {}
        for (index, finish), outcome in zip(finishes.items(), outcomes, strict=True):
            p = prepared[index]
            if isinstance(outcome, ReferenceTaken):
                log.warning("inbox %d: reference %s in use, drawing another", p.row.id, outcome)
                again[index] = p.redrawn()
            elif isinstance(outcome, Exception):
                recorded[index] = outcome
            else:
                recorded[index] = _done(p, finish, finished=outcome)
        prepared = again
    for index in prepared:
        recorded[index] = ReferenceTaken(f"no free reference code after {REFERENCE_TRIES} tries")
    return recorded


def _done(p: Prepared, finish: Finish, *, finished: bool) -> Handled:
    decision = finish.decision
    if not finished:
        return Handled(False, decision, 0, seconds=p.seconds)
    # Tickets are worth a line each; routine answers only at DEBUG (they are counted in
    # /metrics and kept in the inbox), as a line per message cost ~5 % of a worker's CPU.
    log.log(
        logging.INFO if p.reference else logging.DEBUG,
        "inbox %d (%s): %s%s%s",
        finish.inbox_id,
        p.row.channel,
        decision,
        f" entry={finish.entry_id}" if finish.entry_id else "",
        f" ref={p.reference}" if p.reference else "",
    )
    return Handled(True, decision, len(finish.replies), p.reference, p.seconds)


def _reply(row: InboxRow, text: str, kind: str) -> OutboxDraft:
    return OutboxDraft(
        channel=row.channel,
        conversation=row.conversation,
        text=text,
        public=row.public,
        recipient=row.sender,
        reply_to=row.platform_id,
        reply_context=row.reply_context,
        kind=kind,
    )


def _ticket(
    row: InboxRow, reply: Reply, decision: Escalate, reference: str, handoff: Handoff
) -> TicketDraft:
    # The desk's ranking, or (an entry marked for a human) the entry that asked for one.
    candidates = candidate_records(reply.candidates or decision.candidates)
    entry = decision.entry
    if entry is not None and not any(c["entry_id"] == entry.id for c in candidates):
        candidates.insert(0, {"entry_id": entry.id, "score": None, "phrasing": None})
    window = None if row.public else handoff.reply_window(row.channel)
    deadline = row.received_at + window if window is not None else None
    due = handoff.due(row.received_at)
    posts = tuple(
        ticket_post(
            staff,
            handoff,
            reference=reference,
            question=row.text,
            channel=row.channel,
            public=row.public,
            sender_name=row.sender_name,
            candidates=candidates,
            due_at=due,
            reply_deadline=deadline,
        )
        for staff in handoff.staff
    )
    return TicketDraft(
        reference=reference,
        channel=row.channel,
        conversation=row.conversation,
        sender=row.sender,
        sender_name=row.sender_name,
        public=row.public,
        question=row.text,
        reason=decision.reason,
        candidates=candidates,
        due_at=due,
        reply_deadline=deadline,
        staff_posts=posts,
    )
