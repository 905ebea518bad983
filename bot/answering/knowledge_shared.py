"""One institution's knowledge: the shared entries every institution answers, with its own on top.

An own entry whose id is a shared entry's id overrides it (the institution's fee office, its
address); an own entry with a new id is added. Two entries collide when an own entry that is
not an override asks a question a shared entry asks too (the same phrasing once folded): the
matcher could answer either, so `kb check` names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.answering.knowledge import CheckReport, KnowledgeBase, KnowledgeError, check_knowledge
from bot.answering.text import fold


@dataclass(frozen=True)
class Collision:
    own: str  # the institution's entry id
    shared: str  # the shared entry's id
    phrasing: str


@dataclass(frozen=True)
class Merged:
    """What an institution serves, and how it came about."""

    knowledge: KnowledgeBase
    own: int  # own entries that are not overrides
    overrides: tuple[str, ...]  # shared entry ids replaced by the institution's
    collisions: tuple[Collision, ...]


def merge_knowledge(shared: KnowledgeBase | None, own: KnowledgeBase) -> Merged:
    """Pure: the shared entries (less the overridden ones) followed by the institution's."""
    if shared is None:
        return Merged(own, len(own.entries), (), ())
    own_ids = {entry.id for entry in own.entries}
    shared_ids = {entry.id for entry in shared.entries}
    overrides = tuple(sorted(own_ids & shared_ids))
    kept = tuple(e for e in shared.entries if e.id not in own_ids)
    asked: dict[str, str] = {}
    for entry in kept:
        for phrasings in entry.questions.values():
            for phrasing in phrasings:
                asked.setdefault(fold(phrasing), entry.id)
    collisions = []
    for entry in own.entries:
        if entry.id in shared_ids:
            continue
        for phrasings in entry.questions.values():
            for phrasing in phrasings:
                other = asked.get(fold(phrasing))
                if other is not None:
                    collisions.append(Collision(entry.id, other, phrasing))
    synonyms: dict[str, dict[str, str]] = {k: dict(v) for k, v in shared.synonyms.items()}
    for language, table in own.synonyms.items():
        synonyms.setdefault(language, {}).update(table)
    knowledge = KnowledgeBase(
        entries=kept + own.entries,
        synonyms=synonyms,
        warnings=shared.warnings + own.warnings,
        path=own.path,
    )
    return Merged(knowledge, len(own_ids - shared_ids), overrides, tuple(collisions))


def check_institution(shared: Path | None, own: Path) -> tuple[list[CheckReport], Merged | None]:
    """The check reports of both folders, and the merged knowledge when neither has an error."""
    reports = [check_knowledge(folder) for folder in (shared, own) if folder is not None]
    bases = [r.knowledge for r in reports]
    if bases[-1] is None or (shared is not None and bases[0] is None):
        return reports, None
    own_base = bases[-1]
    return reports, merge_knowledge(bases[0] if shared is not None else None, own_base)


def load_institution_knowledge(shared: Path | None, own: Path) -> Merged:
    """As `load_knowledge`, for an institution: KnowledgeError lists every error of both."""
    reports, merged = check_institution(shared, own)
    if merged is None:
        raise KnowledgeError([p for r in reports for p in r.errors])
    return merged
