"""Escalation tickets: reference codes, the acknowledgement a citizen gets, and how tickets read
to operators (export rows). The SQL is in `bot.store_handoff`; the commands in
`bot.cli_escalations`.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from bot.adapter import TextRules
from bot.composer import compose
from bot.matcher import Candidate
from bot.models import Escalation
from bot.replies import ESCALATION_ACK_WITH_REF, ESCALATION_EMAIL_INVITE, pick

# No 0/O or 1/I: a code read out over the phone or copied from a screenshot survives.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 6  # 32**6 ≈ 1.07e9 codes: a collision is rare, and retried when it happens


class EscalationNotFound(Exception):
    """No escalation has this reference code."""


class EscalationClosed(Exception):
    """The escalation was already answered and closed: a second answer is not sent."""


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
    (`promise`, from the office's working hours: bot.hours.answer_promise); with
    `invite_email`, and where it fits whole, the offer to answer by e-mail."""
    text = pick(ESCALATION_ACK_WITH_REF, lang).format(ref=reference, promise=promise)
    if invite_email:
        invite = pick(ESCALATION_EMAIL_INVITE, lang)
        longer = compose(f"{text}{'' if lang == 'zh' else ' '}{invite}", rules, mention=mention)
        if longer.endswith(invite):  # whole, or not at all: the code and the time come first
            return longer
    return compose(text, rules, mention=mention)


def candidate_records(candidates: Iterable[Candidate]) -> list[dict[str, Any]]:
    return [
        {"entry_id": c.entry_id, "score": round(c.score, 4), "phrasing": c.phrasing}
        for c in candidates
    ]


# --- how tickets read to operators -------------------------------------------------------------

EXPORT_FIELDS = (
    "reference",
    "status",
    "created_at",
    "channel",
    "conversation",
    "sender",
    "sender_name",
    "public",
    "question",
    "reason",
    "candidates",
    "assigned_to",
    "answer",
    "answered_by",
    "answered_at",
    "close_reason",
    "closed_at",
    "due_at",
    "reply_deadline",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def as_record(escalation: Escalation) -> dict[str, Any]:
    """One escalation as JSON-ready data, in the order of EXPORT_FIELDS."""
    return {
        "reference": escalation.reference,
        "status": escalation.status,
        "created_at": _iso(escalation.created_at),
        "channel": escalation.channel,
        "conversation": escalation.conversation,
        "sender": escalation.sender,
        "sender_name": escalation.sender_name,
        "public": escalation.public,
        "question": escalation.question,
        "reason": escalation.reason,
        "candidates": list(escalation.candidates or []),
        "assigned_to": escalation.assigned_to,
        "answer": escalation.answer,
        "answered_by": escalation.answered_by,
        "answered_at": _iso(escalation.answered_at),
        "close_reason": escalation.close_reason,
        "closed_at": _iso(escalation.closed_at),
        "due_at": _iso(escalation.due_at),
        "reply_deadline": _iso(escalation.reply_deadline),
    }


def write_json(escalations: Sequence[Escalation], out: TextIO) -> None:
    json.dump([as_record(e) for e in escalations], out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_csv(escalations: Sequence[Escalation], out: TextIO) -> None:
    """CSV for spreadsheets: candidates as "entry-id (0.71); other-id (0.55)"."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for escalation in escalations:
        record = as_record(escalation)
        record["candidates"] = "; ".join(
            f"{c.get('entry_id')} ({c.get('score')})" for c in record["candidates"]
        )
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
