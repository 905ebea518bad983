"""`civicdesk purge [--older-than 90d] [--dry-run]`: remove the texts and identities of messages
older than CIVICDESK_RETENTION_DAYS (or --older-than), keeping the rows and so the report's
counts (`bot.storage.purge`). `civicdesk serve` and `civicdesk work` do the same once a day.

`bot.cli.main` adds it with `add_parser(subparsers)` and runs it with `run(args, settings, out)`
when
`args.command == COMMAND`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from typing import Any, TextIO

from bot.config.settings import Settings
from bot.storage.engine import StoreUnavailable
from bot.storage.purge import PurgeCounts, purge
from bot.storage.store import Store

COMMAND = "purge"
EXIT_OK, EXIT_FAILED = 0, 1
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1)}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND, help="remove message texts and sender identities past the retention period"
    )
    parser.add_argument(
        "--older-than",
        type=age,
        metavar="AGE",
        help="what is older than this: 90d or 12h (default: CIVICDESK_RETENTION_DAYS days)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only count what would be purged; change nothing"
    )
    return parser


def age(text: str) -> timedelta:
    """An age: 90d, 12h or a plain number of days, above 0."""
    value = text.strip().lower()
    unit = _UNITS["d"]
    if value[-1:] in _UNITS:
        value, unit = value[:-1], _UNITS[value[-1]]
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: write an age such as 90d or 12h")
    return int(value) * unit


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    older_than: timedelta | None = args.older_than
    if older_than is None:
        if settings.retention_days == 0:
            print(
                "CIVICDESK_RETENTION_DAYS is 0: texts and identities are kept; nothing purged "
                "(give --older-than to purge all the same)",
                file=out,
            )
            return EXIT_OK
        older_than = timedelta(days=settings.retention_days)
    try:
        counts = asyncio.run(_purge(settings.database_url, older_than, args.dry_run))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(render(counts, older_than, dry_run=args.dry_run), file=out)
    return EXIT_OK


async def _purge(url: str, older_than: timedelta, dry_run: bool) -> PurgeCounts:
    store = await Store.open(url, upgrade=False)
    try:
        return await purge(store, older_than, dry_run=dry_run)
    finally:
        await store.close()


def render(counts: PurgeCounts, older_than: timedelta, *, dry_run: bool) -> str:
    verb = "would be purged" if dry_run else "purged"
    lines = [f"older than {_shown(older_than)}: rows {verb}"]
    lines += [f"  {table:<20}{count:>10}" for table, count in counts.as_dict().items()]
    if dry_run:
        lines.append("nothing was changed (--dry-run)")
    return "\n".join(lines)


def _shown(older_than: timedelta) -> str:
    if older_than % timedelta(days=1):
        return f"{older_than // timedelta(hours=1)} hours"
    return f"{older_than.days} days"
