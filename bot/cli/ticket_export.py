"""How tickets read to operators: the rows of `civicdesk escalations list --format json|csv`
and of `show --json`."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from bot.storage.models import Escalation

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
