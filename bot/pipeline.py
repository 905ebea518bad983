"""Handle one claimed inbox row: ask the desk, then record the outcome in one transaction.

Orchestration only: what to say is decided by `bot.desk` (and `bot.policy`); where it is kept is
`bot.store`'s business. The one thing added here is the escalation ticket: its reference code and
the acknowledgement that carries it, which the desk cannot know.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bot.adapter import TextRules
from bot.desk import Desk, PendingClarify, Reply
from bot.drafts import KIND_ACK, KIND_REPLY, EscalationDraft, OutboxDraft
from bot.escalation import (
    DEFAULT_ETA,
    ReferenceTaken,
    acknowledgement,
    candidate_records,
    new_reference,
)
from bot.models import InboxMessage
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


async def handle(
    row: InboxMessage,
    desk: Desk,
    adapter_rules: TextRules,
    store: Store,
    *,
    eta: Mapping[str, str] = DEFAULT_ETA,
) -> Handled:
    """Answer `row` (claimed by this store) and record the result with `store.finish_inbox`."""
    if row.id is None:
        raise ValueError("handle() needs a stored inbox row (with an id)")
    pending = await store.load_pending(row.channel, row.conversation)
    mention = (row.sender_name or row.sender) if row.public else None
    reply = desk.respond(
        row.text,
        channel=row.channel,
        public=row.public,
        conversation=row.conversation,
        mention=mention,
        rules=adapter_rules,
        pending=pending,
    )
    keep: PendingClarify | Literal["clear"] | None = reply.pending_clarify
    if keep is None and pending is not None:
        keep = "clear"  # whatever the citizen said next was their answer to the question

    for _ in range(REFERENCE_TRIES):
        escalation: EscalationDraft | None = None
        text = reply.text
        if isinstance(reply.decision, Escalate):
            escalation = _ticket(row, reply, reply.decision, new_reference())
            text = acknowledgement(
                escalation.reference, reply.lang, adapter_rules, eta=eta, mention=mention
            )
        replies = [_reply(row, text, KIND_ACK if escalation else KIND_REPLY)] if text else []
        try:
            finished = await store.finish_inbox(
                row.id,
                decision=reply.decision.decision,
                entry_id=reply.entry_id,
                replies=replies,
                escalation=escalation,
                pending_clarify=keep,
            )
        except ReferenceTaken as taken:
            log.warning("inbox %d: reference %s already in use, drawing another", row.id, taken)
            continue
        reference = escalation.reference if escalation else None
        if finished:
            log.info(
                "inbox %d (%s): %s%s%s",
                row.id,
                row.channel,
                reply.decision.decision,
                f" entry={reply.entry_id}" if reply.entry_id else "",
                f" ref={reference}" if reference else "",
            )
        return Handled(
            finished, reply.decision.decision, len(replies) if finished else 0, reference
        )
    raise ReferenceTaken(f"no free reference code after {REFERENCE_TRIES} tries")


def _reply(row: InboxMessage, text: str, kind: str) -> OutboxDraft:
    return OutboxDraft(
        channel=row.channel,
        conversation=row.conversation,
        text=text,
        public=row.public,
        recipient=row.sender,
        reply_to=row.platform_id,
        kind=kind,
    )


def _ticket(row: InboxMessage, reply: Reply, decision: Escalate, reference: str) -> EscalationDraft:
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
