"""Signing in and out of /admin, the session cookie, and the limit on wrong passwords."""

from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from aiohttp import web

from bot.admin.accounts import name_problem, normalise_name
from bot.admin.ratelimit import Attempt, Counted
from bot.admin.render import page, problem, see_other
from bot.admin.sessions import COOKIE, PATH, Session
from bot.admin.state import OPERATOR, SESSION, state_of

log = logging.getLogger("civicdesk.admin")

HOME = "/admin/tickets"


def client_address(request: web.Request, trust_proxy: bool) -> str:
    """The client's address; behind a trusted proxy, the one the proxy appended last."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if trust_proxy and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.remote or "-"


def is_tls(request: web.Request, trust_proxy: bool) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "")
    return trust_proxy and proto.split(",")[0].strip().lower() == "https"


def _set_cookie(response: web.StreamResponse, request: web.Request, session: Session) -> None:
    state = state_of(request)
    response.set_cookie(
        COOKIE,
        state.signer.dump(session),
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=is_tls(request, state.settings.trust_proxy),
    )


def _next(target: object) -> str:
    """Where to go after signing in: only a page of /admin (never another site)."""
    if not isinstance(target, str):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not target.startswith("/admin/"):
        return HOME
    return target


def _form(
    request: web.Request, next_page: str, *, status: int = 200, error: str = ""
) -> web.Response:
    return page(request, "signin.html", status=status, next_page=next_page, error=error)


async def signin_page(request: web.Request) -> web.StreamResponse:
    if OPERATOR in request:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    fresh = SESSION not in request
    if fresh:
        request[SESSION] = state_of(request).signer.anonymous()
    response = _form(request, _next(request.query.get("next")))
    if fresh:
        _set_cookie(response, request, request[SESSION])
    return response


async def signin(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await request.post()
    typed, password = str(form.get("name", "")), str(form.get("password", ""))
    # The name as an operator is known by: a look-alike or an invisible character appended
    # cannot make another name that shows like an existing one.
    name = normalise_name(typed)
    next_page = _next(form.get("next"))
    address = client_address(request, state.settings.trust_proxy)
    folded = name.casefold()
    counted = (
        Counted(f"address:{address}"),
        Counted(f"pair:{folded}\0{address}"),
        Counted(f"name:{folded}", source=address),
    )
    # Counted before the slow password check: parallel guesses are each counted, in turn.
    attempt = state.limiter.attempt(counted)
    if not isinstance(attempt, Attempt):
        wait = math.ceil(attempt) if attempt is not None else 1
        log.warning("admin: sign-in refused from %s: too many wrong passwords", address)
        response = problem(
            request,
            429,
            "Too many wrong passwords in the last minute, from this address or for this name. "
            f"Wait {wait} seconds and try again.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    credential = None if name_problem(name) else await state.accounts.authenticate(name, password)
    if credential is None:
        # Never the name field as typed: a password typed there by mistake would be logged.
        known = name_problem(name) is None and await state.accounts.is_operator(name)
        who = f"the account {name}" if known else "a name without an account"
        log.warning("admin: wrong name or password for %s from %s", who, address)
        return _form(request, next_page, status=401, error="Wrong name or password.")
    state.limiter.succeeded(attempt)
    log.info("admin: %s signed in from %s", name, address)
    response = see_other(next_page)
    _set_cookie(response, request, state.signer.signed_in(name, credential))
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    log.info("admin: %s signed out", request[OPERATOR])
    if SESSION in request:  # the cookie copied elsewhere stops working too
        state_of(request).signer.revoke(request[SESSION])
    response = see_other("/admin/signin")
    response.del_cookie(COOKIE, path=PATH)
    return response
