"""What a signed-in operator may see: a coordinator (an account without an institution, or the
office's shared password) sees every institution, and may narrow the lists to one with
`?institution=NAME`; an institution's operator sees only its channels' tickets and deliveries,
and a ticket of another institution is "not found" (its existence is not told)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.admin.state import operator_of, state_of
from bot.config.institutions import Institutions


@dataclass(frozen=True)
class Scope:
    institution: str | None  # None: a coordinator
    channels: frozenset[str] | None  # None: every channel

    def allows(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


EVERYTHING = Scope(None, None)


async def scope_of(request: web.Request) -> Scope:
    """The signed-in operator's scope (one query: their account's institution)."""
    state = state_of(request)
    institutions = state.institutions
    if institutions is None or not institutions.configured:
        return EVERYTHING
    name = await state.admin_store.operator_institution(operator_of(request))
    if name is not None:
        return Scope(name, _channels(institutions, name))
    chosen = request.query.get("institution", "").strip()
    if chosen and chosen in institutions.names:
        return Scope(None, _channels(institutions, chosen))
    return EVERYTHING


def _channels(institutions: Institutions, name: str) -> frozenset[str]:
    """The institution's citizen and staff channels; none for a name no longer declared."""
    if name not in institutions.names:
        return frozenset()
    item = institutions.named(name)
    return frozenset((*item.channels, *item.staff))
