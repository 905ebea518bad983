"""The coordinator's report (`civicdesk report --by-institution`) as a page: every institution
side by side. Only a coordinator sees it; an institution's operator is refused."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.admin.render import problem
from bot.admin.report_page import CSP
from bot.admin.scope import scope_of
from bot.admin.state import state_of
from bot.answering.knowledge import KnowledgeBase, KnowledgeError
from bot.answering.knowledge_shared import load_institution_knowledge
from bot.config.institutions import Institutions, single_institution
from bot.reports.concerns import DEFAULT_SINCE, parse_since
from bot.reports.institutions import build_institution_report, render_html


def _knowledge(institutions: Institutions) -> dict[str, KnowledgeBase]:
    """What each institution serves, for the topics' names (one with errors is left out)."""
    found = {}
    for item in institutions.items:
        try:
            found[item.name] = load_institution_knowledge(
                institutions.shared, item.knowledge
            ).knowledge
        except KnowledgeError:
            continue
    return found


async def institutions_report(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    if (await scope_of(request)).institution is not None:
        return problem(request, 403, "The report of every institution is a coordinator's.")
    institutions = state.institutions or single_institution(state.settings)
    now = state.store.now()
    since_text = request.query.get("since", "").strip() or DEFAULT_SINCE
    try:
        since = parse_since(since_text, now, state.settings.calendar.hours.zone)
    except ValueError as exc:
        return problem(request, 400, str(exc))
    knowledge = await asyncio.to_thread(_knowledge, institutions)
    built = await build_institution_report(
        state.store, institutions, knowledge, since=since, until=now
    )
    # render_html escapes every value it writes; the page has no script.
    response = web.Response(text=render_html(built), content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response
