"""Escalations: the list (filters, text search, paging), a ticket with its whole history, and
the forms that answer, claim, note and close it (`Store.staff_command`, as the command line and
the staff channels' threads do: the same log, the same thread updates)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

from bot.admin.render import page, problem, see_other
from bot.admin.state import operator_of, state_of
from bot.storage.admin_queries import TicketFilter
from bot.storage.models import (
    TICKET_ANSWERED,
    TICKET_CLOSED,
    TICKET_OPEN,
    TICKET_UNDELIVERABLE,
)
from bot.tickets.handoff import Answer, Claim, Close, Note, StaffCommand
from bot.tickets.reference import TicketClosed, TicketNotFound, normalise_reference

PAGE_SIZE = 25
STATUSES = (TICKET_OPEN, TICKET_ANSWERED, TICKET_CLOSED, TICKET_UNDELIVERABLE)
FILTERS = ("status", "channel", "staff", "overdue", "q")
DONE = {  # what the ticket page says after an action (never text from the request)
    "answered": "Answer sent: it is on its way to the citizen, and the ticket is closed.",
    "undeliverable": (
        "NOT sent: the platform's reply window has closed. The answer is kept and the ticket "
        "marked undeliverable: it goes out by itself if the citizen writes again; if you reach "
        "them another way, close the ticket."
    ),
    "claimed": "You claimed this ticket.",
    "note": "Note added to the log (not sent to the citizen).",
    "closed": "Ticket closed.",
}


def _page_number(query: Mapping[str, str]) -> int:
    text = query.get("page", "1")
    return max(int(text), 1) if text.isdigit() and len(text) < 7 else 1


async def ticket_list(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    query = request.query
    now = state.store.now()
    chosen = {name: query.get(name, "").strip() for name in FILTERS}
    where = TicketFilter(
        status=chosen["status"] if chosen["status"] in STATUSES else None,
        channel=chosen["channel"] or None,
        staff=chosen["staff"] or None,
        overdue_at=now if chosen["overdue"] else None,
        text=chosen["q"] or None,
    )
    number = _page_number(query)
    found, total = await state.admin_store.search_tickets(
        where, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(math.ceil(total / PAGE_SIZE), 1)
    kept = {name: value for name, value in chosen.items() if value}

    def link(to: int) -> str | None:
        return f"?{urlencode({**kept, 'page': to})}" if 1 <= to <= pages and to != number else None

    return page(
        request,
        "tickets.html",
        tickets=found,
        now=now,
        total=total,
        page_number=number,
        pages=pages,
        previous=link(number - 1),
        following=link(number + 1),
        chosen=chosen,
        statuses=STATUSES,
        channels=state.settings.channels,
    )


async def ticket(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    reference = normalise_reference(request.match_info["ref"])
    ticket = await state.store.get_ticket(reference)
    if ticket is None or ticket.id is None:
        return problem(request, 404, f"No escalation has the reference {reference}.")
    return page(
        request,
        "ticket.html",
        e=ticket,
        history=await state.store.ticket_events(reference),
        messages=await state.admin_store.ticket_messages(ticket.id),
        announcement=await state.store.announcement_of_message(ticket.inbox_id),
        done=DONE.get(request.query.get("done", "")),
        is_open=ticket.status == TICKET_OPEN,
        is_undeliverable=ticket.status == TICKET_UNDELIVERABLE,
    )


def _command(action: str, text: str) -> StaffCommand | str:
    """The command of a ticket form, or what is missing."""
    if action == "claim":
        return Claim()
    if action == "close":
        return Close(text)
    if not text:
        return "Write the answer first." if action == "answer" else "Write the note first."
    return Answer(text) if action == "answer" else Note(text)


async def act(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    reference = normalise_reference(request.match_info["ref"])
    form = await request.post()
    command = _command(request.match_info["action"], str(form.get("text", "")).strip())
    if isinstance(command, str):
        return problem(request, 400, command)
    try:
        outcome = await state.store.staff_command(
            reference, command, actor=operator_of(request), handoff=state.handoff, channel="admin"
        )
    except TicketNotFound:
        return problem(request, 404, f"No escalation has the reference {reference}.")
    except TicketClosed as exc:
        who = f"{exc.first} answered it first" if exc.first else "someone else may have answered it"
        return problem(request, 409, f"{reference} is already closed ({who}); nothing was sent.")
    return see_other(f"/admin/tickets/{reference}?{urlencode({'done': outcome.kind})}")
