"""Operator commands on the database: escalations, dead letters, and the schema.

    civicdesk tickets list [--status S] [--channel C] [--since 7d] [--until DATE]
                               [--staff NAME] [--overdue] [--json]
    civicdesk tickets show REF [--json]          (with its whole history)
    civicdesk tickets export [--format csv|json] (and the filters of list)
    civicdesk tickets answer REF "text" [--by NAME]
    civicdesk tickets claim REF [--by NAME]
    civicdesk tickets close REF ["reason the citizen is told"] [--by NAME]
    civicdesk tickets note REF "text" [--by NAME]
    civicdesk tickets suggest-faq REF            (a draft FAQ entry from the answer)
    civicdesk tickets suggest-faq --since 30d    (questions asked often in similar words)
    civicdesk deliveries list-dead [--json]
    civicdesk deliveries retry ID [ID ...]
    civicdesk db upgrade

`bot.cli.main` adds these with `add_parsers(subparsers)` and runs them with `run(args, settings,
out)`
when `args.command in COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from bot.answering.knowledge import load_knowledge
from bot.cli.ticket_export import as_record, write_csv, write_json
from bot.cli.wiring import handoff_from_environment
from bot.config.settings import Settings
from bot.storage.engine import StoreUnavailable, upgrade_database
from bot.storage.models import (
    TICKET_ANSWERED,
    TICKET_CLOSED,
    TICKET_OPEN,
    TICKET_UNDELIVERABLE,
    OutboxRow,
    Ticket,
    TicketEvent,
)
from bot.storage.store import Store
from bot.tickets.faq_draft import draft_entry, render_draft, render_groups, similar_groups
from bot.tickets.handoff import Answer, Claim, Close, Note, StaffCommand
from bot.tickets.reference import TicketClosed, TicketNotFound, normalise_reference

COMMANDS = frozenset({"tickets", "escalations", "deliveries", "db"})
EXIT_OK, EXIT_FAILED = 0, 1
_STATUSES = (TICKET_OPEN, TICKET_ANSWERED, TICKET_CLOSED, TICKET_UNDELIVERABLE)
_QUESTION_WIDTH = 48


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tickets = commands.add_parser(
        "tickets", aliases=["escalations"], help="questions handed to staff (alias: escalations)"
    )
    esc = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = esc.add_parser("list", help="list tickets, oldest first")
    _add_filters(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    show = esc.add_parser("show", help="one ticket with its context")
    show.add_argument("ref", help="the reference code, e.g. Q7K2M9")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    export = esc.add_parser("export", help="all tickets, for a spreadsheet or an archive")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_filters(export)
    answer = esc.add_parser("answer", help="send a staff answer to the citizen and close it")
    answer.add_argument("ref", help="the reference code")
    answer.add_argument("text", help="the answer, as the citizen should read it")
    claim = esc.add_parser("claim", help="take an open ticket (it shows as yours)")
    claim.add_argument("ref", help="the reference code")
    close = esc.add_parser("close", help="close without an answer; the reason goes to the citizen")
    close.add_argument("ref", help="the reference code")
    close.add_argument("text", nargs="?", default="", help="the reason, as the citizen reads it")
    note = esc.add_parser("note", help="a note for colleagues in the ticket's log (not sent)")
    note.add_argument("ref", help="the reference code")
    note.add_argument("text", help="the note")
    for action in (answer, claim, close, note):
        action.add_argument("--by", default=None, help="who acts (default: the login name)")
    suggest = esc.add_parser(
        "suggest-faq", help="a draft FAQ entry from an answered ticket, or recurring questions"
    )
    suggest.add_argument("ref", nargs="?", help="an answered ticket's reference code")
    suggest.add_argument(
        "--since", type=_moment, help="instead: group the questions escalated since (30d)"
    )

    deliveries = commands.add_parser("deliveries", help="replies that could not be delivered")
    dlv = deliveries.add_subparsers(dest="deliveries_command", required=True, metavar="ACTION")
    dead = dlv.add_parser("list-dead", help="dead-lettered replies with their last error")
    dead.add_argument("--json", action="store_true", help="print one JSON array")
    retry = dlv.add_parser("retry", help="queue dead-lettered replies again")
    retry.add_argument("ids", nargs="+", type=int, metavar="ID", help="outbox ids (list-dead)")

    db = commands.add_parser("db", help="the database")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="create or migrate the tables (DATABASE_URL)")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=_STATUSES, help="only those in this state")
    parser.add_argument("--channel", help="only those asked on this channel")
    parser.add_argument("--since", type=_moment, help="created since: 7d, 12h or 2026-11-01")
    parser.add_argument("--until", type=_moment, help="created before: 1d or 2026-11-30")
    parser.add_argument("--staff", help="claimed, answered or noted by this staff member")
    parser.add_argument(
        "--overdue", action="store_true", help="only open ones past their promised answer time"
    )


def _moment(text: str) -> datetime:
    """An age ("7d", "12h", "30m") back from now, or a date or date-time (UTC)."""
    value = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write an age such as 7d, 12h or 30m, or a date such as 2026-11-01"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Run one of COMMANDS; errors become a message on stderr and exit status 1."""
    try:
        return asyncio.run(_run(args, settings, out))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
    except TicketNotFound as exc:
        print(f"civicdesk: no escalation has the reference {exc}", file=sys.stderr)
    except TicketClosed as exc:
        first = f" ({exc.first} answered it first)" if exc.first else ""
        print(
            f"civicdesk: escalation {exc} is already closed{first}; nothing sent", file=sys.stderr
        )
    return EXIT_FAILED


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    url = settings.database_url
    if args.command == "db":
        await upgrade_database(url)
        print("database schema is up to date", file=out)
        return EXIT_OK
    store = await Store.open(url, upgrade=False)
    try:
        if args.command in ("tickets", "escalations"):
            return await _tickets(args, store, settings, out)
        return await _deliveries(args, store, out)
    finally:
        await store.close()


async def _tickets(args: argparse.Namespace, store: Store, settings: Settings, out: TextIO) -> int:
    action = args.tickets_command
    if action in ("list", "export"):
        found = await store.find_tickets(
            status=args.status,
            channel=args.channel,
            since=args.since,
            until=args.until,
            staff=args.staff,
            overdue_at=datetime.now(UTC) if args.overdue else None,
        )
        if action == "export":
            (write_csv if args.format == "csv" else write_json)(found, out)
        elif args.json:
            write_json(found, out)
        else:
            _print_list(found, out)
        return EXIT_OK
    if action == "suggest-faq":
        return await _suggest_faq(args, store, settings, out)
    reference = normalise_reference(args.ref)
    if action == "show":
        ticket = await store.get_ticket(reference)
        if ticket is None:
            raise TicketNotFound(reference)
        history = await store.ticket_events(reference)
        if args.json:
            record = {**as_record(ticket), "history": [_event_record(e) for e in history]}
            print(json.dumps(record, ensure_ascii=False, indent=2), file=out)
        else:
            _print_one(ticket, history, out)
        return EXIT_OK
    command: StaffCommand
    if action == "claim":
        command = Claim()
    elif action == "close":
        command = Close(args.text)
    elif action == "note":
        command = Note(args.text)
    else:
        command = Answer(args.text)
    outcome = await store.staff_command(
        reference,
        command,
        actor=args.by or getpass.getuser(),
        handoff=handoff_from_environment(settings),
        channel="cli",
    )
    e = outcome.ticket
    told = {
        "answered": f"answer queued to {e.channel} (conversation {e.conversation}); closed",
        "undeliverable": (
            f"NOT sent: {e.channel}'s reply window closed at "
            f"{e.reply_deadline.isoformat() if e.reply_deadline else '?'}; the answer is kept "
            "and the ticket marked undeliverable: reach the citizen another way"
        ),
        "claimed": f"claimed by {e.assigned_to}",
        "closed": "closed" + (" (the reason was queued to the citizen)" if args.text else ""),
        "note": "note added to the log",
    }[outcome.kind]
    print(f"{e.reference}: {told}", file=out)
    return EXIT_FAILED if outcome.kind == "undeliverable" else EXIT_OK


async def _suggest_faq(
    args: argparse.Namespace, store: Store, settings: Settings, out: TextIO
) -> int:
    if args.since is not None:
        found = await store.find_tickets(since=args.since)
        groups = similar_groups([(e.reference, e.question) for e in found])
        print(render_groups(groups) if groups else "no question was asked twice", file=out)
        return EXIT_OK
    if not args.ref:
        print("civicdesk: give a reference code, or --since 30d", file=sys.stderr)
        return EXIT_FAILED
    reference = normalise_reference(args.ref)
    ticket = await store.get_ticket(reference)
    if ticket is None:
        raise TicketNotFound(reference)
    if not ticket.answer:
        print(f"civicdesk: {reference} has no answer yet to turn into an entry", file=sys.stderr)
        return EXIT_FAILED
    history = await store.ticket_events(reference)
    draft = draft_entry(
        ticket.question,
        ticket.answer,
        follow_ups=[e.detail for e in history if e.kind == "follow-up" and e.detail],
        candidates=list(ticket.candidates or []),
        knowledge=load_knowledge(settings.knowledge_path),
        today=datetime.now(UTC).date(),
    )
    print(render_draft(draft, reference), file=out, end="")
    return EXIT_OK


def _event_record(event: TicketEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "channel": event.channel,
        "detail": event.detail,
    }


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


def _print_list(tickets: Sequence[Ticket], out: TextIO) -> None:
    if not tickets:
        print("no escalations", file=out)
        return
    print(f"{'REF':<8} {'STATUS':<8} {'CREATED (UTC)':<16} {'CHANNEL':<12} QUESTION", file=out)
    for e in tickets:
        created = e.created_at.strftime("%Y-%m-%d %H:%M")
        question = _one_line(e.question, _QUESTION_WIDTH)
        print(f"{e.reference:<8} {e.status:<8} {created:<16} {e.channel:<12} {question}", file=out)


def _print_one(e: Ticket, history: Sequence[TicketEvent], out: TextIO) -> None:
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
    if e.assigned_to:
        lines.append(f"claimed by:   {e.assigned_to}")
    if e.due_at is not None:
        lines.append(f"answer due:   {e.due_at.isoformat()}")
    if e.reply_deadline is not None:
        lines.append(f"reply window: until {e.reply_deadline.isoformat()}")
    if history:
        lines.append("history:")
        for event in history:
            who = f" by {event.actor}" if event.actor else ""
            where = f" ({event.channel})" if event.channel else ""
            said = f": {_one_line(event.detail, 60)}" if event.detail else ""
            lines.append(f"  {event.at.strftime('%Y-%m-%d %H:%M')} {event.kind}{who}{where}{said}")
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
