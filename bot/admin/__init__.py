"""/admin: the operators' pages, server-rendered (Jinja2, autoescaped), usable without
JavaScript: escalations (list, ticket, answer/claim/note/close), dead-lettered deliveries
(retry, discard), the knowledge base's state, and the report of public concerns.

Sign-in with an operator account (`civicdesk users add`) or the office's shared password
(CIVICDESK_ADMIN_PASSWORD); a signed session cookie (`bot.admin.sessions`); a CSRF token on every
form and a limit on wrong passwords (`bot.admin.guard`, `bot.admin.signin`).
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from bot.admin.accounts import Accounts
from bot.admin.ratelimit import FailureLimiter
from bot.admin.render import environment
from bot.admin.routes import add_admin_routes
from bot.admin.sessions import SessionSigner
from bot.admin.state import AdminState
from bot.handoff import Handoff
from bot.store import Store
from bot.store_admin import AdminStore
from bot.web import GATEWAY

log = logging.getLogger("civicdesk.admin")

__all__ = ["mount_admin"]


def mount_admin(app: web.Application, *, handoff: Handoff | None = None) -> None:
    """Serve /admin from `app` (after its GATEWAY is set). `handoff`: the staff channels the
    workers post tickets to; None: read from the environment, as `civicdesk serve` does."""
    gateway = app[GATEWAY]
    if not isinstance(gateway.store, Store):
        log.debug("no /admin: the app's store is not civicdesk's database store")
        return
    settings = gateway.settings
    if settings.session_secret is not None:
        secret = settings.session_secret.reveal().encode()
    else:
        secret = secrets.token_bytes(32)
        log.warning(
            "CIVICDESK_SESSION_SECRET is not set: /admin sign-ins last until this process "
            "restarts (set it to keep them, and to share them between web processes)"
        )
    signer = SessionSigner(secret)
    store = AdminStore(gateway.store)
    state = AdminState(
        settings=settings,
        store=gateway.store,
        admin_store=store,
        knowledge=gateway.knowledge,
        accounts=Accounts(store, settings.admin_password, signer),
        signer=signer,
        limiter=FailureLimiter(),
        templates=environment(settings.calendar.hours.zone),
        given_handoff=handoff,
    )
    add_admin_routes(app, state)
