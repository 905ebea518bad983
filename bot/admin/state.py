"""What the /admin handlers share, kept on the admin sub-application under `ADMIN`, and what the
guard learnt about each request (its session, who is signed in)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from bot.admin.accounts import Accounts
from bot.admin.ratelimit import FailureLimiter
from bot.admin.sessions import Session, SessionSigner
from bot.config import Settings, read_channels
from bot.handoff import Handoff
from bot.reload import KnowledgeHolder
from bot.store import Store
from bot.store_admin import AdminStore


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
    given_handoff: Handoff | None = None
    _handoff: Handoff | None = field(default=None, init=False)

    @property
    def handoff(self) -> Handoff:
        """The staff channels, so that what operators do here shows in the tickets' threads.
        Given by `create_app`; otherwise built from the environment as `civicdesk serve` does."""
        if self._handoff is None:
            self._handoff = self.given_handoff or handoff_from_environment(self.settings)
        return self._handoff


def handoff_from_environment(settings: Settings) -> Handoff:
    if not settings.escalate_to:
        return Handoff(lang=settings.default_lang, calendar=settings.calendar)
    from adapters import ADAPTERS  # noqa: PLC0415 (only the configured ones are imported)
    from bot.cli_serve import handoff_config  # noqa: PLC0415 (cli_serve imports the app)

    return handoff_config(settings, read_channels(os.environ, settings.channels, ADAPTERS))


ADMIN = web.AppKey("admin", AdminState)
SESSION = web.RequestKey("admin_session", Session)
OPERATOR = web.RequestKey("admin_operator", str)


def state_of(request: web.Request) -> AdminState:
    return request.app[ADMIN]


def operator_of(request: web.Request) -> str:
    """Who is signed in (the guard let the request through, so someone is)."""
    return request[OPERATOR]
