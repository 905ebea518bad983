"""Answering for many institutions in one server: each channel's messages are answered with its
institution's knowledge and handed to its institution's staff, under its reference prefix.

One `KnowledgeHolder` per institution (its folder over the shared one, reloaded on its own);
the first institution's holder is the one the gateway's pages show, so a deployment of one
institution is exactly what it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.answering.desk import ClarifyMemory, Desk
from bot.answering.knowledge import KnowledgeBase, load_knowledge
from bot.answering.knowledge_shared import merge_knowledge
from bot.config.institutions import Institution, Institutions
from bot.config.settings import Settings
from bot.gateway.pipeline import Handled, StaffNames, handle_batch
from bot.gateway.reload import POLL_SECONDS, Fingerprint, KnowledgeHolder, fingerprint
from bot.platform.adapter import TextRules
from bot.runtime.metrics import Metrics
from bot.storage.models import InboxRow
from bot.storage.store import Store
from bot.tickets.handoff import Handoff

Route = Callable[[str], tuple[Desk, Handoff]]  # channel -> its institution's desk and staff


def institution_handoff(base: Handoff, institution: Institution) -> Handoff:
    """The deployment's handoff narrowed to one institution: its staff channels, its calendar,
    its reference prefix."""
    return replace(
        base,
        staff=tuple(s for s in base.staff if s.name in institution.staff),
        calendar=institution.calendar,
        reference_prefix=institution.prefix,
    )


def deployment_handoff(base: Handoff, institutions: Institutions) -> Handoff:
    """The handoff of the whole deployment (reminders of overdue tickets, answers given in
    /admin), where each citizen channel's tickets reach only its own institution's staff."""
    if not institutions.configured:
        return base
    staff_of = {
        channel: frozenset(item.staff) for item in institutions.items for channel in item.channels
    }
    return replace(base, staff_of=staff_of)


def _loader(shared: Path | None) -> Callable[[Path], KnowledgeBase]:
    """Loads an institution's folder over the shared one. The shared folder is read and checked
    once while its files are unchanged, not once per institution (50 institutions: 50 times
    fewer checks of the largest folder at start)."""
    if shared is None:
        return load_knowledge
    cache: dict[str, tuple[Fingerprint, KnowledgeBase]] = {}

    def load(own: Path) -> KnowledgeBase:
        seen = fingerprint(shared)
        kept = cache.get("shared")
        if kept is None or kept[0] != seen:
            kept = cache["shared"] = (seen, load_knowledge(shared))
        return merge_knowledge(kept[1], load_knowledge(own)).knowledge

    return load


@dataclass
class InstitutionDesks:
    """Every institution's knowledge holder and handoff."""

    institutions: Institutions
    holders: dict[str, KnowledgeHolder]
    handoffs: dict[str, Handoff]

    @classmethod
    def build(
        cls,
        settings: Settings,
        institutions: Institutions,
        handoff: Handoff,
        *,
        metrics: Metrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> InstitutionDesks:
        """Loads every institution's knowledge; KnowledgeError names the first that fails."""
        holders: dict[str, KnowledgeHolder] = {}
        handoffs: dict[str, Handoff] = {}
        load = _loader(institutions.shared)
        watched = (institutions.shared,) if institutions.shared is not None else ()
        for item in institutions.items:
            memory = ClarifyMemory()  # kept across reloads, one per institution

            def build(knowledge: KnowledgeBase, memory: ClarifyMemory = memory) -> Desk:
                return Desk(
                    knowledge, settings.policy, default_lang=settings.default_lang, memory=memory
                )

            holders[item.name] = KnowledgeHolder(
                item.knowledge,
                build,
                poll_seconds=poll_seconds,
                metrics=metrics,
                load=load,
                also_watch=watched,
            )
            handoffs[item.name] = (
                institution_handoff(handoff, item) if institutions.configured else handoff
            )
        return cls(institutions, holders, handoffs)

    @property
    def primary(self) -> KnowledgeHolder:
        """The first institution's: shown by /readyz and /admin/knowledge."""
        return self.holders[self.institutions.items[0].name]

    @property
    def others(self) -> list[KnowledgeHolder]:
        return list(self.holders.values())[1:]

    def route(self, channel: str) -> tuple[Desk, Handoff]:
        name = self.institutions.of_channel(channel).name
        return self.holders[name].get_desk(), self.handoffs[name]

    def request_reload(self) -> None:
        """SIGHUP: every institution reloads (each keeps its last good version on a mistake)."""
        for holder in self.holders.values():
            holder.request_reload()

    async def watch_others(self, _app: object) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the gateway watches the primary holder; this the rest."""
        for holder in self.others:
            holder.start()
        try:
            yield
        finally:
            for holder in self.others:
                with contextlib.suppress(asyncio.CancelledError):
                    await holder.stop()


async def handle_routed(
    rows: Sequence[InboxRow],
    route: Route,
    rules_for: Callable[[str], TextRules],
    store: Store,
    *,
    staff_names: StaffNames | None = None,
) -> list[Handled | Exception]:
    """`handle_batch` per institution: the rows of each institution (in arrival order) with its
    desk and handoff; the results in the rows' order."""
    groups: dict[int, tuple[Desk, Handoff, list[int]]] = {}
    for index, row in enumerate(rows):
        desk, handoff = route(row.channel)
        key = id(handoff)  # one handoff object per institution
        groups.setdefault(key, (desk, handoff, []))[2].append(index)
    results: list[Handled | Exception | None] = [None] * len(rows)
    for desk, handoff, indexes in groups.values():
        handled = await handle_batch(
            [rows[i] for i in indexes],
            desk,
            rules_for,
            store,
            handoff=handoff,
            staff_names=staff_names,
        )
        for index, result in zip(indexes, handled, strict=True):
            results[index] = result
    return [r for r in results if r is not None]
