"""A valid sample knowledge folder that tests copy and then break, one mistake at a time."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

BASE = Path(__file__).parent / "fixtures" / "kb" / "base"
TODAY = date(2026, 1, 15)


def copy_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid knowledge folder at ./knowledge, so messages read 'knowledge/fees.yaml:…'."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(BASE, tmp_path / "knowledge")
    return Path("knowledge")


def edit(kb: Path, name: str, old: str, new: str) -> None:
    path = kb / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {name}"
    path.write_text(text.replace(old, new), encoding="utf-8")
