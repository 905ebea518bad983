"""Pages from the Jinja2 templates in bot/templates/admin, autoescaped: every value put into a
page is escaped, citizen text included; no template marks anything safe (a test checks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

import bot.admin.csrf as csrf
from bot.admin.state import OPERATOR, SESSION, state_of

# Like the chat page's: nothing from elsewhere, no script at all, never in a frame, not cached.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def environment(zone: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates/admin"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def when(moment: datetime | None) -> str:
        """A time as the office reads it: in its time zone."""
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"

    env.filters["when"] = when
    return env


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    session = request.get(SESSION)
    text = (
        state_of(request)
        .templates.get_template(template)
        .render(
            operator=request.get(OPERATOR),
            csrf_field=csrf.FIELD,
            csrf_token=session.csrf if session is not None else "",
            **context,
        )
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def problem(request: web.Request, status: int, message: str) -> web.Response:
    """An error as a page (a form's user reads it) with what to do next."""
    return page(request, "error.html", status=status, status_code=status, message=message)


def see_other(location: str) -> web.Response:
    """303 See Other: after a form is handled, the browser GETs the page that shows the result."""
    return web.Response(status=303, headers={"Location": location})
