"""How tickets read to operators: the rows of `civicdesk tickets list --format json|csv`
and of `show --json`."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from bot.storage.models import Ticket

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


def as_record(ticket: Ticket) -> dict[str, Any]:
    """One escalation as JSON-ready data, in the order of EXPORT_FIELDS."""
    return {
        "reference": ticket.reference,
        "status": ticket.status,
        "created_at": _iso(ticket.created_at),
        "channel": ticket.channel,
        "conversation": ticket.conversation,
        "sender": ticket.sender,
        "sender_name": ticket.sender_name,
        "public": ticket.public,
        "question": ticket.question,
        "reason": ticket.reason,
        "candidates": list(ticket.candidates or []),
        "assigned_to": ticket.assigned_to,
        "answer": ticket.answer,
        "answered_by": ticket.answered_by,
        "answered_at": _iso(ticket.answered_at),
        "close_reason": ticket.close_reason,
        "closed_at": _iso(ticket.closed_at),
        "due_at": _iso(ticket.due_at),
        "reply_deadline": _iso(ticket.reply_deadline),
    }


def write_json(tickets: Sequence[Ticket], out: TextIO) -> None:
    json.dump([as_record(e) for e in tickets], out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_csv(tickets: Sequence[Ticket], out: TextIO) -> None:
    """CSV for spreadsheets: candidates as "entry-id (0.71); other-id (0.55)"."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for ticket in tickets:
        record = as_record(ticket)
        record["candidates"] = "; ".join(
            f"{c.get('entry_id')} ({c.get('score')})" for c in record["candidates"]
        )
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
