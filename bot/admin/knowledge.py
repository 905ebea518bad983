"""Knowledge: the entries serving now, the last reload and its result, what is wrong with the
files on disk (errors and warnings, as `civicdesk kb check` shows them), expired entries, and
entries no question was matched to in the last 30 days."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web

from bot.admin.render import page
from bot.admin.state import state_of
from bot.answering.knowledge import check_knowledge

UNUSED_DAYS = 30


async def knowledge(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    holder = state.knowledge
    entries = holder.desk.knowledge.entries
    now = state.store.now()
    today = now.astimezone(state.settings.calendar.hours.zone).date()
    on_disk = await asyncio.to_thread(check_knowledge, holder.folder, today)
    matched = await state.admin_store.matched_entries(now - timedelta(days=UNUSED_DAYS))
    return page(
        request,
        "knowledge.html",
        loaded=holder.status(),
        loaded_at=holder.loaded_at,
        failed_at=holder.failed_at,
        folder=str(holder.folder),
        entries=len(entries),
        on_disk=on_disk,
        expired=[entry for entry in entries if entry.expired(today)],
        unused=[entry for entry in entries if entry.id not in matched],
        unused_days=UNUSED_DAYS,
    )
