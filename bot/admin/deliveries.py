"""Deliveries: replies dead-lettered after every attempt failed, with the last error; an
operator queues one again (a full set of attempts) or discards it (kept, never sent)."""

from __future__ import annotations

from aiohttp import web

from bot.admin.render import page, problem, see_other
from bot.admin.state import operator_of, state_of

DONE = {
    "retried": "Queued again: it will be sent with a new set of attempts.",
    "discarded": "Discarded: it will not be sent (it stays in the database, marked discarded).",
}


async def dead_letters(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    return page(
        request,
        "deliveries.html",
        dead=await state.store.list_dead(),
        done=DONE.get(request.query.get("done", "")),
    )


async def retry(request: web.Request) -> web.StreamResponse:
    outbox_id = int(request.match_info["id"])
    if not await state_of(request).store.retry_dead(outbox_id):
        return problem(request, 409, f"Reply {outbox_id} is not a dead letter (any more).")
    return see_other("/admin/deliveries?done=retried")


async def discard(request: web.Request) -> web.StreamResponse:
    outbox_id = int(request.match_info["id"])
    if not await state_of(request).admin_store.discard_dead(outbox_id, by=operator_of(request)):
        return problem(request, 409, f"Reply {outbox_id} is not a dead letter (any more).")
    return see_other("/admin/deliveries?done=discarded")
