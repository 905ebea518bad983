"""Escalation tickets: reference codes, the acknowledgement a citizen gets, and how tickets read
to operators (export rows). The SQL is in `bot.storage.ticket_sql`; the commands in
`bot.cli.tickets`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from bot.answering.composer import compose
from bot.answering.matcher import Candidate
from bot.answering.replies import TICKET_ACK_WITH_REF, TICKET_EMAIL_INVITE, pick
from bot.platform.adapter import TextRules

# No 0/O or 1/I: a code read out over the phone or copied from a screenshot survives.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 6  # 32**6 ≈ 1.07e9 codes: a collision is rare, and retried when it happens


class TicketNotFound(Exception):
    """No escalation has this reference code."""


class TicketClosed(Exception):
    """The ticket was already answered or closed: a second answer is not sent. `first`: who
    answered (or claimed) it first, where known; str() is the reference code."""

    def __init__(self, reference: str, first: str | None = None) -> None:
        super().__init__(reference)
        self.reference = reference
        self.first = first

    def __str__(self) -> str:
        return self.reference


class ReferenceTaken(Exception):
    """The reference code drawn is already in use; draw another (rare: ~1e-9 per open ticket)."""


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalise_reference(text: str) -> str:
    """What an operator typed ("q7k2m9", " Q7K2M9 ") as stored: upper case, no blanks."""
    return "".join(text.split()).upper()


def acknowledgement(
    reference: str,
    lang: str,
    rules: TextRules,
    *,
    promise: str,
    mention: str | None,
    invite_email: bool = False,
) -> str:
    """The citizen's acknowledgement: the reference code and when to expect an answer
    (`promise`, from the office's working hours: bot.tickets.hours.answer_promise); with
    `invite_email`, and where it fits whole, the offer to answer by e-mail."""
    text = pick(TICKET_ACK_WITH_REF, lang).format(ref=reference, promise=promise)
    if invite_email:
        invite = pick(TICKET_EMAIL_INVITE, lang)
        longer = compose(f"{text}{'' if lang == 'zh' else ' '}{invite}", rules, mention=mention)
        if longer.endswith(invite):  # whole, or not at all: the code and the time come first
            return longer
    return compose(text, rules, mention=mention)


def candidate_records(candidates: Iterable[Candidate]) -> list[dict[str, Any]]:
    return [
        {"entry_id": c.entry_id, "score": round(c.score, 4), "phrasing": c.phrasing}
        for c in candidates
    ]
