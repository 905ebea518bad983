"""The composition root's helpers: the one place that joins the settings, the concrete adapters
(`adapters.ADAPTERS`), storage and the gateway. Used by `civicdesk serve`/`work` and by the
commands that act on tickets, so that each builds its parts the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial

from aiohttp import web

from bot.admin.mount import mount_admin
from bot.config.handoff import adapters_in, handoff_config, reply_windows
from bot.config.settings import Settings, read_channels
from bot.gateway.app import create_app
from bot.gateway.reload import KnowledgeHolder
from bot.gateway.web import InboxStore, Runnable
from bot.platform.adapter import Adapter
from bot.runtime.metrics import Metrics
from bot.tickets.handoff import Handoff


def handoff_from_environment(settings: Settings) -> Handoff:
    """The staff channels and the office calendar, as the settings in the environment give them."""
    if not settings.escalate_to:
        windows = reply_windows(adapters_in(os.environ, settings.channels))
        return Handoff(
            lang=settings.default_lang, calendar=settings.calendar, reply_windows=windows
        )
    from adapters import ADAPTERS  # noqa: PLC0415 (only the configured ones are imported)

    return handoff_config(settings, read_channels(os.environ, settings.channels, ADAPTERS))


def assemble_app(
    settings: Settings,
    adapters: Mapping[str, Adapter],
    *,
    store: InboxStore,
    desk_holder: KnowledgeHolder,
    handoff: Handoff,
    workers: Runnable | None = None,
    metrics: Metrics | None = None,
    polling: bool = True,
) -> web.Application:
    """The gateway's app with the operators' pages (/admin) mounted on it."""
    return create_app(
        settings,
        adapters,
        store=store,
        desk_holder=desk_holder,
        workers=workers,
        metrics=metrics,
        polling=polling,
        extensions=(partial(mount_admin, handoff=handoff),),
    )
