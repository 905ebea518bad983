"""`civicdesk publish FILE.yaml [--at TIME] [--dry-run] [--json]`: an announcement, fitted to
each of its channels and queued in the outbox (the serving process posts it when it is due).

`--dry-run` shows every channel's text with its count (as that platform counts) and the limit,
and sends nothing: it needs only the channel names (CIVICDESK_CHANNELS and each channel's
CIVICDESK_<NAME>_ADAPTER), no credentials and no database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.config.settings import Settings, channel_adapter
from bot.publishing.announcement import Announcement, AnnouncementError, load_announcement
from bot.publishing.announcement import parse_time as parse_publish_time
from bot.publishing.fitting import Fitted, NotPublishable, fit_for_channel
from bot.storage.announcements import QueuedPost
from bot.storage.engine import StoreUnavailable
from bot.storage.store import Store

COMMAND = "publish"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = commands.add_parser(
        COMMAND, help="publish an announcement on its channels, each in the form it allows"
    )
    publish.add_argument(
        "file",
        type=Path,
        help="the announcement (YAML: title, body, link, channels, optional image and at)",
    )
    publish.add_argument(
        "--at",
        default=None,
        help="publish time (ISO 8601; without an offset, "
        "the office's time zone); overrides the file's `at`",
    )
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="show each channel's text, count and limit; send nothing",
    )
    publish.add_argument("--json", action="store_true", help="print JSON")


def fitted_channels(
    announcement: Announcement, settings: Settings, environ: Mapping[str, str]
) -> list[Fitted]:
    """Each channel's text; AnnouncementError for a channel that is not configured or cannot
    post."""
    fitted = []
    for name in announcement.channels:
        if name not in settings.channels:
            raise AnnouncementError(
                f"channels: {name!r} is not in CIVICDESK_CHANNELS ({', '.join(settings.channels)})"
            )
        try:
            fitted.append(fit_for_channel(announcement, name, channel_adapter(environ, name)))
        except NotPublishable as exc:
            raise AnnouncementError(f"channels: {name}: {exc}") from exc
    return fitted


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    zone = settings.calendar.hours.zone
    try:
        announcement = load_announcement(args.file, zone)
        if args.at:
            announcement = replace(announcement, at=parse_publish_time(args.at, zone))
        fitted = fitted_channels(announcement, settings, os.environ)
    except AnnouncementError as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        _print_fitted(fitted, args.json, out)
        return EXIT_OK
    try:
        number, queued = asyncio.run(_queue(settings.database_url, announcement, fitted))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    when = announcement.at.isoformat() if announcement.at else "now"
    if args.json:
        posts = [{"channel": post.channel, "outbox_id": post.outbox_id} for post in queued]
        json.dump({"announcement": number, "at": when, "posts": posts}, out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(f"announcement {number} queued on {len(queued)} channel(s), due {when}:\n")
        for post in queued:
            out.write(f"  {post.channel}: outbox {post.outbox_id}\n")
        out.write("The serving process posts it; /admin/announcements shows each post's link.\n")
    return EXIT_OK


def _print_fitted(fitted: list[Fitted], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump([post.as_json() for post in fitted], out, ensure_ascii=False, indent=2)
        out.write("\n")
        return
    for post in fitted:
        out.write(
            f"== {post.channel} ({post.platform}): {post.count}/{post.limit}, "
            f"{post.form}\n{post.text}\n\n"
        )


async def _queue(
    url: str, announcement: Announcement, fitted: list[Fitted]
) -> tuple[int, list[QueuedPost]]:
    store = await Store.open(url)
    try:
        number, queued = await store.queue_announcement(announcement, fitted, created_by="cli")
        return number, queued
    finally:
        await store.close()
