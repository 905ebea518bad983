"""`civicdesk report`: the report of public concerns (`bot.reports.concerns`) on the command line.

    civicdesk report [--since 7d|30d|12h|2026-10-01] [--until 2026-11-01] [--format text|json|html]

Days are the office's (CIVICDESK_TIMEZONE). `bot.cli.main` adds the command with `add_parser` and
runs
it with `run(args, settings, out)`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.answering.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from bot.config.settings import Settings
from bot.reports.concerns import (
    DEFAULT_SINCE,
    Report,
    build_report,
    parse_since,
    render_html,
    render_json,
    render_text,
)
from bot.storage.engine import StoreUnavailable
from bot.storage.store import Store

COMMAND = "report"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_RENDER = {"text": render_text, "json": render_json, "html": render_html}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        COMMAND, help="what citizens asked about: volumes, topics, unanswered questions"
    )
    report.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help="start of the period: 7d (today and the 6 days before), 30d, 12h, or a date "
        f"such as 2026-10-01 (default {DEFAULT_SINCE})",
    )
    report.add_argument(
        "--until",
        default=None,
        help="end of the period, and the moment 'overdue' is measured at (default: now)",
    )
    report.add_argument(
        "--format",
        choices=(*_RENDER, "csv"),
        default="text",
        help="text, json or html; csv with --by-institution",
    )
    report.add_argument(
        "--by-institution",
        action="store_true",
        help="the coordinator's report: each institution's figures, topics rising across all",
    )


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    zone = settings.calendar.hours.zone
    try:
        until = _until(args.until, zone) if args.until else datetime.now(UTC)
        since = parse_since(args.since, until, zone)
    except ValueError as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "csv" and not args.by_institution:
        print("civicdesk: --format csv goes with --by-institution", file=sys.stderr)
        return EXIT_USAGE
    if args.by_institution:
        from bot.cli.institutions import report_by_institution  # noqa: PLC0415

        return report_by_institution(settings, args.format, since, until, out)
    knowledge: KnowledgeBase | None
    try:
        knowledge = load_knowledge(settings.knowledge_path)
    except KnowledgeError as exc:
        # The counts do not need the FAQ: report without topics rather than not at all.
        print(
            f"civicdesk: the knowledge base has errors (run `civicdesk kb check`); reporting "
            f"without topics:\n{exc}",
            file=sys.stderr,
        )
        knowledge = None
    try:
        report = asyncio.run(_build(settings.database_url, since, until, zone, knowledge))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    out.write(_RENDER[args.format](report))
    return EXIT_OK


def _until(text: str, zone: ZoneInfo) -> datetime:
    """A date (its midnight) or a date and time, in the office's zone unless it names one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--until {text!r}: write a date such as 2026-11-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


async def _build(
    url: str, since: datetime, until: datetime, zone: ZoneInfo, knowledge: KnowledgeBase | None
) -> Report:
    store = await Store.open(url, upgrade=False)
    try:
        return await build_report(store, since, until, zone=zone, knowledge=knowledge)
    finally:
        await store.close()
