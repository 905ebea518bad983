"""Mounting /admin on the app: the pages, their state and the session signer."""

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
from bot.gateway.web import GATEWAY
from bot.platform.adapter import Publisher
from bot.storage.admin_queries import AdminStore
from bot.storage.store import Store
from bot.tickets.handoff import Handoff

log = logging.getLogger("civicdesk.admin")

__all__ = ["mount_admin"]


def mount_admin(app: web.Application, *, handoff: Handoff) -> None:
    """Serve /admin from `app` (after its GATEWAY is set). `handoff`: the staff channels the
    workers post tickets to, so that what operators do here shows in the tickets' threads."""
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
        handoff=handoff,
        publishers={
            name: adapter.text_rules.name
            for name, adapter in gateway.adapters.items()
            if isinstance(adapter, Publisher)
        },
    )
    add_admin_routes(app, state)
