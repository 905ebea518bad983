"""The /admin routes, each behind `bot.admin.guard`."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web
from aiohttp.typedefs import Handler

import bot.admin.announcements as announcements
import bot.admin.deliveries as deliveries
import bot.admin.knowledge as knowledge
import bot.admin.report_page as report_page
import bot.admin.signin as signin
import bot.admin.tickets as tickets
from bot.admin.guard import guard
from bot.admin.render import see_other
from bot.admin.state import ADMIN, AdminState


async def home(request: web.Request) -> web.StreamResponse:
    return see_other("/admin/tickets")


ASSETS = {"admin.css": "text/css", "icon.svg": "image/svg+xml"}  # from bot/static


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    body = files("bot").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def add_admin_routes(app: web.Application, state: AdminState) -> None:
    """The /admin routes on the main application, each behind the guard.

    Not a sub-application: aiohttp runs every request of an application with sub-applications
    through an extra middleware, which cost the webhooks about 7 % of their CPU."""
    app[ADMIN] = state

    def route(method: str, path: str, handler: Handler) -> None:
        async def guarded(request: web.Request) -> web.StreamResponse:
            return await guard(request, handler)

        app.router.add_route(method, "/admin" + path, guarded)

    route("GET", "", home)
    route("GET", "/", home)
    route("GET", r"/{name:admin\.css|icon\.svg}", asset)
    route("GET", "/signin", signin.signin_page)
    route("POST", "/signin", signin.signin)
    route("POST", "/signout", signin.signout)
    for prefix in ("/tickets", "/escalations"):  # /escalations: the pages' first address
        route("GET", prefix, tickets.ticket_list)
        route("GET", prefix + "/{ref}", tickets.ticket)
        route("POST", prefix + "/{ref}/{action:answer|claim|note|close}", tickets.act)
    route("GET", "/deliveries", deliveries.dead_letters)
    route("POST", r"/deliveries/{id:\d{1,18}}/retry", deliveries.retry)
    route("POST", r"/deliveries/{id:\d{1,18}}/discard", deliveries.discard)
    route("GET", "/announcements", announcements.announcement_list)
    route("POST", "/announcements/preview", announcements.preview)
    route("POST", "/announcements", announcements.publish)
    route("GET", "/knowledge", knowledge.knowledge)
    route("GET", "/report", report_page.report)
    # Anything else under /admin is also behind the guard: without a session it is sent to
    # sign in like every page, so the answers do not tell which pages exist.
    for method in ("GET", "POST"):
        route(method, "/{unknown:.*}", not_found)


async def not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()
