"""The report of public concerns (`bot.reports.concerns`, as `civicdesk report` builds it) as a
page."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from bot.admin.render import HEADERS, page, problem
from bot.admin.scope import scope_of
from bot.admin.state import state_of
from bot.reports.concerns import DEFAULT_SINCE, build_report, parse_since, render_html

# The report's charts carry their own <style> and style attributes: allowed on this page only.
# Still no script, and every value in the report is escaped by `render_html` itself.
CSP = HEADERS["Content-Security-Policy"].replace(
    "default-src 'self';", "default-src 'self'; style-src 'self' 'unsafe-inline';"
)


async def report(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    if (await scope_of(request)).institution is not None:
        # The report counts every channel: a coordinator's (civicdesk report --by-institution).
        return problem(request, 403, "The report covers every institution: ask a coordinator.")
    zone = state.settings.calendar.hours.zone
    now = state.store.now()
    since_text = request.query.get("since", "").strip() or DEFAULT_SINCE
    try:
        since = parse_since(since_text, now, zone)
    except ValueError as exc:
        return page(request, "report.html", status=400, since=since_text, error=str(exc), body="")
    desk = state.knowledge.desk
    built = await build_report(
        state.store, since, now, zone=zone, knowledge=desk.knowledge, matcher=desk.matcher
    )
    # render_html escapes every value it writes (citizen text included): its output is HTML.
    body = Markup(render_html(built, page=False))  # noqa: S704
    response = page(request, "report.html", since=since_text, error="", body=body)
    response.headers["Content-Security-Policy"] = CSP
    return response
