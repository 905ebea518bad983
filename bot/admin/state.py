"""What the /admin handlers share, kept on the admin sub-application under `ADMIN`, and what the
guard learnt about each request (its session, who is signed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from bot.admin.accounts import Accounts
from bot.admin.ratelimit import FailureLimiter
from bot.admin.sessions import Session, SessionSigner
from bot.config.settings import Settings
from bot.gateway.reload import KnowledgeHolder
from bot.storage.admin_queries import AdminStore
from bot.storage.store import Store
from bot.tickets.handoff import Handoff


@dataclass
class AdminState:
    settings: Settings
    store: Store
    admin_store: AdminStore
    knowledge: KnowledgeHolder
    accounts: Accounts
    signer: SessionSigner
    limiter: FailureLimiter
    templates: jinja2.Environment
    handoff: Handoff
    # The channels that can post announcements, and the platform each counts text as.
    publishers: Mapping[str, str] = field(default_factory=dict)


ADMIN = web.AppKey("admin", AdminState)
SESSION = web.RequestKey("admin_session", Session)
OPERATOR = web.RequestKey("admin_operator", str)


def state_of(request: web.Request) -> AdminState:
    return request.app[ADMIN]


def operator_of(request: web.Request) -> str:
    """Who is signed in (the guard let the request through, so someone is)."""
    return request[OPERATOR]
