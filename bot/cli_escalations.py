"""Operator commands on the database: escalations, dead letters, and the schema.

    civicdesk escalations list [--status open] [--json]
    civicdesk escalations show REF [--json]
    civicdesk escalations export [--format csv|json] [--status S]
    civicdesk escalations answer REF "text" [--by NAME]
    civicdesk deliveries list-dead [--json]
    civicdesk deliveries retry ID [ID ...]
    civicdesk db upgrade

`bot.cli` adds these with `add_parsers(subparsers)` and runs them with `run(args, settings, out)`
when `args.command in COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.db import StoreUnavailable, create_engine, upgrade
from bot.escalation import (
    EscalationClosed,
    EscalationNotFound,
    as_record,
    normalise_reference,
    write_csv,
    write_json,
)
from bot.models import (
    ESCALATION_ANSWERED,
    ESCALATION_CLOSED,
    ESCALATION_OPEN,
    Escalation,
    OutboxRow,
)
from bot.store import Store

COMMANDS = frozenset({"escalations", "deliveries", "db"})
EXIT_OK, EXIT_FAILED = 0, 1
_STATUSES = (ESCALATION_OPEN, ESCALATION_ANSWERED, ESCALATION_CLOSED)
_QUESTION_WIDTH = 48


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    escalations = commands.add_parser("escalations", help="questions handed to staff")
    esc = escalations.add_subparsers(dest="escalations_command", required=True, metavar="ACTION")
    listing = esc.add_parser("list", help="list escalations, oldest first")
    listing.add_argument("--status", choices=_STATUSES, help="only those in this state")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    show = esc.add_parser("show", help="one escalation with its context")
    show.add_argument("ref", help="the reference code, e.g. Q7K2M9")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    export = esc.add_parser("export", help="all escalations, for a spreadsheet or an archive")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--status", choices=_STATUSES, help="only those in this state")
    answer = esc.add_parser("answer", help="send a staff answer to the citizen and close it")
    answer.add_argument("ref", help="the reference code")
    answer.add_argument("text", help="the answer, as the citizen should read it")
    answer.add_argument("--by", default=None, help="who answers (default: the login name)")

    deliveries = commands.add_parser("deliveries", help="replies that could not be delivered")
    dlv = deliveries.add_subparsers(dest="deliveries_command", required=True, metavar="ACTION")
    dead = dlv.add_parser("list-dead", help="dead-lettered replies with their last error")
    dead.add_argument("--json", action="store_true", help="print one JSON array")
    retry = dlv.add_parser("retry", help="queue dead-lettered replies again")
    retry.add_argument("ids", nargs="+", type=int, metavar="ID", help="outbox ids (list-dead)")

    db = commands.add_parser("db", help="the database")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="create or migrate the tables (DATABASE_URL)")


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Run one of COMMANDS; errors become a message on stderr and exit status 1."""
    try:
        return asyncio.run(_run(args, settings.database_url, out))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
    except EscalationNotFound as exc:
        print(f"civicdesk: no escalation has the reference {exc}", file=sys.stderr)
    except EscalationClosed as exc:
        print(f"civicdesk: escalation {exc} is already closed; nothing sent", file=sys.stderr)
    return EXIT_FAILED


async def _run(args: argparse.Namespace, url: str, out: TextIO) -> int:
    if args.command == "db":
        engine = create_engine(url)
        try:
            await upgrade(engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        finally:
            await engine.dispose()
        print("database schema is up to date", file=out)
        return EXIT_OK
    store = await Store.open(url, upgrade=False)
    try:
        if args.command == "escalations":
            return await _escalations(args, store, out)
        return await _deliveries(args, store, out)
    finally:
        await store.close()


async def _escalations(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    action = args.escalations_command
    if action == "list":
        found = await store.list_escalations(args.status)
        if args.json:
            write_json(found, out)
        else:
            _print_list(found, out)
        return EXIT_OK
    if action == "export":
        found = await store.list_escalations(args.status)
        (write_csv if args.format == "csv" else write_json)(found, out)
        return EXIT_OK
    reference = normalise_reference(args.ref)
    if action == "show":
        escalation = await store.get_escalation(reference)
        if escalation is None:
            raise EscalationNotFound(reference)
        if args.json:
            print(json.dumps(as_record(escalation), ensure_ascii=False, indent=2), file=out)
        else:
            _print_one(escalation, out)
        return EXIT_OK
    by = args.by or getpass.getuser()
    escalation = await store.answer_escalation(reference, args.text, by)
    print(
        f"{escalation.reference}: answer queued to {escalation.channel} "
        f"(conversation {escalation.conversation}); escalation closed",
        file=out,
    )
    return EXIT_OK


async def _deliveries(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    if args.deliveries_command == "list-dead":
        dead = await store.list_dead()
        if args.json:
            print(json.dumps([_dead_record(m) for m in dead], ensure_ascii=False), file=out)
        else:
            _print_dead(dead, out)
        return EXIT_OK
    status = EXIT_OK
    for outbox_id in args.ids:
        if await store.retry_dead(outbox_id):
            print(f"{outbox_id}: queued again", file=out)
        else:
            print(f"civicdesk: outbox {outbox_id} is not a dead letter", file=sys.stderr)
            status = EXIT_FAILED
    return status


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_list(escalations: Sequence[Escalation], out: TextIO) -> None:
    if not escalations:
        print("no escalations", file=out)
        return
    print(f"{'REF':<8} {'STATUS':<8} {'CREATED (UTC)':<16} {'CHANNEL':<12} QUESTION", file=out)
    for e in escalations:
        created = e.created_at.strftime("%Y-%m-%d %H:%M")
        question = _one_line(e.question, _QUESTION_WIDTH)
        print(f"{e.reference:<8} {e.status:<8} {created:<16} {e.channel:<12} {question}", file=out)


def _print_one(e: Escalation, out: TextIO) -> None:
    where = "public" if e.public else "private"
    lines = [
        f"reference:    {e.reference}",
        f"status:       {e.status}",
        f"created:      {e.created_at.isoformat()}",
        f"channel:      {e.channel} ({where}), conversation {e.conversation}",
        f"from:         {e.sender}" + (f" ({e.sender_name})" if e.sender_name else ""),
        f"question:     {e.question}",
        f"why escalated: {e.reason}",
    ]
    candidates: list[dict[str, Any]] = list(e.candidates or [])
    if candidates:
        lines.append("candidates:")
        for c in candidates:
            score = c.get("score")
            shown = f"{score:.3f}" if isinstance(score, int | float) else "  -  "
            lines.append(f"  {shown}  {c.get('entry_id')}")
    if e.answer is not None:
        answered = e.answered_at.isoformat() if e.answered_at else "?"
        lines.append(f"answer:       {e.answer}")
        lines.append(f"answered by:  {e.answered_by} at {answered}")
    print("\n".join(lines), file=out)


def _dead_record(m: OutboxRow) -> dict[str, Any]:
    return {
        "id": m.id,
        "channel": m.channel,
        "conversation": m.conversation,
        "kind": m.kind,
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created_at": m.created_at.isoformat(),
        "text": m.text,
    }


def _print_dead(dead: Sequence[OutboxRow], out: TextIO) -> None:
    if not dead:
        print("no dead letters", file=out)
        return
    print(f"{'ID':>6} {'CHANNEL':<12} {'ATTEMPTS':>8}  LAST ERROR", file=out)
    for m in dead:
        error = _one_line(m.last_error or "", 70)
        print(f"{m.id:>6} {m.channel:<12} {m.attempts:>8}  {error}", file=out)
    print("\nqueue one again with: civicdesk deliveries retry ID", file=out)
