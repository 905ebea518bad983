"""`civicdesk kb check [PATH]`: tell a staff editor everything that is wrong with the FAQ files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TextIO

import numpy as np

from bot.answering.knowledge import check_knowledge
from bot.answering.knowledge_crosslang import cross_language_collisions


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"


def run_kb_check(
    path: Path,
    out: TextIO,
    today: date | None = None,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> int:
    """Print errors, warnings, expired entries and a summary; 0 when there is no error, else 1.
    With `embed` (the semantic model), also warn of entries that collide across languages."""
    report = check_knowledge(path, today=today)
    for error in report.errors:
        print(f"{error.location}: {error.message}", file=out)
    for warning in report.warnings:
        print(f"{warning.location}: warning: {warning.message}", file=out)
    collisions = (
        cross_language_collisions(report.knowledge, embed)
        if embed is not None and report.knowledge is not None and not report.errors
        else []
    )
    for c in collisions:
        print(
            f"warning: '{c.first[0]}' ({c.first[1]}) \"{c.first[2]}\" and '{c.second[0]}' "
            f'({c.second[1]}) "{c.second[2]}" mean the same across languages (cosine '
            f"{c.cosine}): a question in either language may get either entry's answer",
            file=out,
        )
    count = len(report.warnings) + len(collisions)
    for entry in report.expired:
        print(
            f"expired: {entry.id} (valid until {entry.valid_until}) {entry.file}:{entry.line}",
            file=out,
        )
    warnings = _count(count, "warning")
    if report.errors:
        print(f"knowledge has {_count(len(report.errors), 'error')}, {warnings}", file=out)
        return 1
    entries = len(report.knowledge.entries) if report.knowledge else 0
    print(
        f"knowledge OK: {_count(entries, 'entry', 'entries')} in "
        f"{_count(len(report.files), 'file')}, {warnings}, {len(report.expired)} expired",
        file=out,
    )
    return 0
