"""The knowledge commands for a deployment of many institutions: `civicdesk kb check` (one line
per institution) and `civicdesk ask --institution NAME`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import TextIO

import numpy as np

from bot.answering.kb_check import run_kb_check
from bot.answering.knowledge import KnowledgeBase, KnowledgeError
from bot.answering.knowledge_shared import Merged, check_institution, load_institution_knowledge
from bot.config.institutions import Institution, Institutions, load_institutions
from bot.config.settings import Settings
from bot.reports.institutions import RENDER, InstitutionReport, build_institution_report
from bot.storage.engine import StoreUnavailable
from bot.storage.store import Store


def knowledge_institutions(settings: Settings, environ: Mapping[str, str]) -> Institutions:
    """The institutions, without checking channels (no channel is needed to read the FAQ)."""
    return load_institutions(settings, environ, check_channels=False)


def kb_check_all(
    settings: Settings,
    environ: Mapping[str, str],
    out: TextIO,
    today: date | None = None,
    *,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> int:
    """Every institution: its errors (file:line), then one line each: entries served, overrides,
    collisions between its own and shared entries. 0 when no institution has an error."""
    institutions = knowledge_institutions(settings, environ)
    if not institutions.configured:
        return run_kb_check(settings.knowledge_path, out, today, embed=embed)
    failed = 0
    shared_reported = False
    for item in institutions.items:
        reports, merged = check_institution(institutions.shared, item.knowledge)
        for index, report in enumerate(reports):
            shared_report = institutions.shared is not None and index == 0
            if shared_report and shared_reported:
                continue  # the shared folder's mistakes once, not once per institution
            shared_reported = shared_reported or shared_report
            for error in report.errors:
                print(f"{error.location}: {error.message}", file=out)
        print(institution_line(item, merged, reports[-1].errors), file=out)
        failed += merged is None
    return 1 if failed else 0


def institution_line(item: Institution, merged: Merged | None, errors: Sequence[object]) -> str:
    if merged is None:
        return f"{item.name}: has errors ({len(errors)} in {item.knowledge}); nothing served"
    served = len(merged.knowledge.entries)
    shared = served - merged.own - len(merged.overrides)
    overrides = ", ".join(merged.overrides) or "none"
    collisions = (
        "; ".join(
            f"{c.own} and shared {c.shared} both ask '{c.phrasing}'" for c in merged.collisions
        )
        or "none"
    )
    return (
        f"{item.name} ({item.prefix or 'no prefix'}): {served} entries served ({shared} shared, "
        f"{merged.own} own, {len(merged.overrides)} overrides: {overrides}); "
        f"collisions: {collisions}"
    )


def institution_knowledge(
    settings: Settings, environ: Mapping[str, str], name: str
) -> tuple[Institution, KnowledgeBase, frozenset[str]]:
    """The named institution, what it answers, and the ids it overrides. KnowledgeError, or
    ConfigError for an unknown name."""
    institutions = knowledge_institutions(settings, environ)
    item = institutions.named(name)
    try:
        merged = load_institution_knowledge(institutions.shared, item.knowledge)
    except KnowledgeError:
        raise
    return item, merged.knowledge, frozenset(merged.overrides)


def report_by_institution(
    settings: Settings, form: str, since: datetime, until: datetime, out: TextIO
) -> int:
    """`civicdesk report --by-institution`: 0, or 1 when the database is unavailable."""
    institutions = knowledge_institutions(settings, os.environ)
    knowledge: dict[str, KnowledgeBase] = {}
    for item in institutions.items:
        try:
            knowledge[item.name] = load_institution_knowledge(
                institutions.shared, item.knowledge
            ).knowledge
        except KnowledgeError:
            print(
                f"civicdesk: {item.name}'s knowledge has errors: its topics are not named",
                file=sys.stderr,
            )
    try:
        report = asyncio.run(
            _institution_report(settings.database_url, institutions, knowledge, since, until)
        )
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
        return 1
    out.write(RENDER[form](report))
    return 0


async def _institution_report(
    url: str,
    institutions: Institutions,
    knowledge: dict[str, KnowledgeBase],
    since: datetime,
    until: datetime,
) -> InstitutionReport:
    store = await Store.open(url, upgrade=False)
    try:
        return await build_institution_report(
            store, institutions, knowledge, since=since, until=until
        )
    finally:
        await store.close()
