"""Deliveries: replies dead-lettered after every attempt failed, with the last error; an
operator queues one again (a full set of attempts) or discards it (kept, never sent)."""

from __future__ import annotations

from aiohttp import web

from bot.admin.render import page, problem, see_other
from bot.admin.scope import scope_of
from bot.admin.state import operator_of, state_of

DONE = {
    "retried": "Queued again: it will be sent with a new set of attempts.",
    "discarded": "Discarded: it will not be sent (it stays in the database, marked discarded).",
}


async def dead_letters(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    scope = await scope_of(request)
    return page(
        request,
        "deliveries.html",
        dead=[row for row in await state.store.list_dead() if scope.allows(row.channel)],
        done=DONE.get(request.query.get("done", "")),
    )


async def _visible(request: web.Request, outbox_id: int) -> bool:
    """A dead letter this operator may act on (always, for a coordinator)."""
    scope = await scope_of(request)
    if scope.channels is None:
        return True
    return any(
        row.id == outbox_id and scope.allows(row.channel)
        for row in await state_of(request).store.list_dead()
    )


async def retry(request: web.Request) -> web.StreamResponse:
    outbox_id = int(request.match_info["id"])
    if not await _visible(request, outbox_id) or not await state_of(request).store.retry_dead(
        outbox_id
    ):
        return problem(request, 409, f"Reply {outbox_id} is not a dead letter (any more).")
    return see_other("/admin/deliveries?done=retried")


async def discard(request: web.Request) -> web.StreamResponse:
    outbox_id = int(request.match_info["id"])
    if not await _visible(request, outbox_id) or not await state_of(
        request
    ).admin_store.discard_dead(outbox_id, by=operator_of(request)):
        return problem(request, 409, f"Reply {outbox_id} is not a dead letter (any more).")
    return see_other("/admin/deliveries?done=discarded")
