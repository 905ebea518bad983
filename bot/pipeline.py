"""Answer claimed inbox rows: ask the desk, then record the outcomes in one transaction.

Orchestration only: what to say is decided by `bot.desk` (and `bot.policy`); where it is kept is
`bot.store`'s business. The one thing added here is the escalation ticket: its reference code and
the acknowledgement that carries it, which the desk cannot know.

`handle` takes one row; `handle_batch` takes the rows of one claim, reads their conversations'
state in one query and records them in one transaction, which is what keeps a busy desk's
database work per message small.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from bot.adapter import TextRules
from bot.desk import Desk, PendingClarify, Reply
from bot.drafts import KIND_ACK, KIND_REPLY, EscalationDraft, Finish, OutboxDraft
from bot.escalation import (
    DEFAULT_ETA,
    ReferenceTaken,
    acknowledgement,
    candidate_records,
    new_reference,
)
from bot.models import InboxRow
from bot.policy import Escalate
from bot.store import Store

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
    eta: Mapping[str, str]
    pending_clarify: PendingClarify | Literal["clear"] | None
    reference: str | None  # set when the decision is to escalate
    seconds: float = 0.0

    @property
    def mention(self) -> str | None:
        return (self.row.sender_name or self.row.sender) if self.row.public else None

    def finish(self) -> Finish:
        row, reply = self.row, self.reply
        escalation = None
        text = reply.text
        if self.reference is not None and isinstance(reply.decision, Escalate):
            escalation = _ticket(row, reply, reply.decision, self.reference)
            text = acknowledgement(
                self.reference, reply.lang, self.rules, eta=self.eta, mention=self.mention
            )
        replies = [_reply(row, text, KIND_ACK if escalation else KIND_REPLY)] if text else []
        return Finish(
            inbox_id=row.id,
            decision=reply.decision.decision,
            entry_id=reply.entry_id,
            replies=replies,
            escalation=escalation,
            pending_clarify=self.pending_clarify,
        )

    def redrawn(self) -> Prepared:
        return replace(self, reference=new_reference())


def prepare(
    row: InboxRow,
    desk: Desk,
    rules: TextRules,
    pending: PendingClarify | None,
    *,
    eta: Mapping[str, str] = DEFAULT_ETA,
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
    reference = new_reference() if isinstance(reply.decision, Escalate) else None
    return Prepared(row, reply, rules, eta, keep, reference, time.perf_counter() - started)


async def handle(
    row: InboxRow,
    desk: Desk,
    adapter_rules: TextRules,
    store: Store,
    *,
    eta: Mapping[str, str] = DEFAULT_ETA,
) -> Handled:
    """Answer one row (claimed by this store) and record the result."""
    [handled] = await handle_batch([row], desk, lambda _: adapter_rules, store, eta=eta)
    if isinstance(handled, Exception):
        raise handled
    return handled


async def handle_batch(
    rows: Sequence[InboxRow],
    desk: Desk,
    rules_for: Callable[[str], TextRules],
    store: Store,
    *,
    eta: Mapping[str, str] = DEFAULT_ETA,
) -> list[Handled | Exception]:
    """Answer rows claimed together: one read of their state, one transaction for the results.

    A row the desk fails on gets its exception in the result (the others go on). A database
    failure raises StoreUnavailable for the whole batch: nothing of it was written.
    """
    pending = await store.load_pending_many([(r.channel, r.conversation) for r in rows])
    failed: dict[int, Exception] = {}
    prepared: dict[int, Prepared] = {}
    for index, row in enumerate(rows):
        if index:
            await asyncio.sleep(0)  # let the web handlers in between two answers
        try:
            state = pending.get((row.channel, row.conversation))
            prepared[index] = prepare(row, desk, rules_for(row.channel), state, eta=eta)
        except Exception as exc:  # a bug or bad data in one row must not sink the others
            failed[index] = exc
    recorded = await _record(store, prepared)
    return [failed[i] if i in failed else recorded[i] for i in range(len(rows))]


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
    decision = p.reply.decision.decision
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


def _ticket(row: InboxRow, reply: Reply, decision: Escalate, reference: str) -> EscalationDraft:
    # The desk's ranking, or (an entry marked for a human) the entry that asked for one.
    candidates = candidate_records(reply.candidates or decision.candidates)
    entry = decision.entry
    if entry is not None and not any(c["entry_id"] == entry.id for c in candidates):
        candidates.insert(0, {"entry_id": entry.id, "score": None, "phrasing": None})
    return EscalationDraft(
        reference=reference,
        channel=row.channel,
        conversation=row.conversation,
        sender=row.sender,
        sender_name=row.sender_name,
        public=row.public,
        question=row.text,
        reason=decision.reason,
        candidates=candidates,
    )
