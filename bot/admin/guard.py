"""The one gate of /admin, run around every /admin handler:

- no valid session: GET and HEAD are redirected to the sign-in page, everything else gets 401;
- every POST must carry the session's CSRF token (403 otherwise), the sign-in form's included;
- every answer gets the security headers, and a database outage becomes a 503 page.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

import bot.admin.csrf as csrf
from bot.admin.render import HEADERS, problem
from bot.admin.sessions import COOKIE
from bot.admin.state import OPERATOR, SESSION, state_of
from bot.gateway.web import json_response
from bot.storage.engine import StoreUnavailable

log = logging.getLogger("civicdesk.admin")

SIGNIN = "/admin/signin"
PUBLIC = frozenset({SIGNIN, "/admin/admin.css", "/admin/icon.svg"})  # reachable without a session


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await _checked(request, handler)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    except StoreUnavailable as exc:
        log.error("admin %s: the database does not answer: %s", request.path, exc)
        response = problem(request, 503, "The database does not answer: try again in a minute.")
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)  # a page may have set its own CSP
    return response


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = state_of(request)
    session = state.signer.load(request.cookies.get(COOKIE))
    if session is not None:
        request[SESSION] = session
        if session.operator is not None and await state.accounts.still_valid(session):
            request[OPERATOR] = session.operator
    if OPERATOR not in request and request.path not in PUBLIC:
        return _sign_in_first(request)
    if request.method == "POST":
        form = await _form(request)
        if session is None or not csrf.token_matches(session.csrf, form.get(csrf.FIELD)):
            log.warning("admin: %s %s refused: no valid CSRF token", request.method, request.path)
            return problem(request, 403, csrf.REFUSED)
    if request.path == "/admin":
        raise web.HTTPFound("/admin/")
    return await handler(request)


async def _form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The posted form; a body that is no form (malformed multipart, a bad charset) is 400."""
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except (ValueError, LookupError, AssertionError, UnicodeError, RuntimeError) as exc:
        log.warning("admin: %s %s refused: the form cannot be read (%s)", request.method,
                    request.path, type(exc).__name__)  # fmt: skip
        raise web.HTTPBadRequest(
            text="The form cannot be read: send it again from the page."
        ) from None


def _sign_in_first(request: web.Request) -> web.StreamResponse:
    if request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(f"{SIGNIN}?{urlencode({'next': request.path_qs})}")
    message = "Sign in first: this session is missing or has ended."
    if "application/json" in request.headers.get("Accept", ""):
        return json_response(401, {"error": f"{message} ({SIGNIN})"})
    return problem(request, 401, message)
