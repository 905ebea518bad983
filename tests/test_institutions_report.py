"""`civicdesk report --by-institution`: a generated month of traffic across 5 institutions, the
JSON figures against counts computed here, and the HTML page in Chromium (screenshot kept in
tests/artifacts/institutions-report.png)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy
import pytest
from playwright.async_api import async_playwright
from sqlalchemy import Connection, insert

from bot.answering.knowledge import load_knowledge
from bot.cli.main import main
from bot.config.settings import SETTINGS
from bot.storage.models import INBOX, TICKET
from bot.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "fixtures" / "kb" / "base"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# October 2026 in Shanghai, and September before it as the previous period.
SINCE = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
UNTIL = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
PREVIOUS = SINCE - (UNTIL - SINCE)
NAMES = ["north", "south", "east", "west", "centre"]
CHANNELS = {name: [f"{name}-weibo", f"{name}-web"] for name in NAMES}
DECISIONS = {"answer": 60, "clarify": 12, "escalate": 18, "smalltalk": 6, None: 4}
ENTRIES = [e.id for e in load_knowledge(SHARED).entries]


def _write_institutions(folder: Path) -> Path:
    lines = [f"shared: {SHARED}", "institutions:"]
    for n, name in enumerate(NAMES):
        own = folder / name
        own.mkdir()
        (own / "own.yaml").write_text(
            f"topic: {name} office\nentries:\n  - id: {name}-office\n    questions:\n"
            f"      en: [where is the {name} office]\n    answer:\n      en: Room {n}.\n",
            encoding="utf-8",
        )
        lines += [
            f"  - name: {name}",
            f"    display: {{en: {name.title()} District Court, zh: 第{n + 1}法院}}",
            f"    knowledge: {own}",
            f"    prefix: {'ABCDE'[n]}{'ABCDE'[n]}",
            f"    channels: [{', '.join(CHANNELS[name])}]",
        ]
    path = folder / "institutions.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _seed(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    rising = ENTRIES[0]
    for start, end, count in ((SINCE, UNTIL, 6000), (PREVIOUS, SINCE, 2000)):
        for _ in range(count):
            name = rng.choice(NAMES)
            decision = rng.choices(list(DECISIONS), list(DECISIONS.values()))[0]
            entry = None
            if decision == "answer":
                own = f"{name}-office"
                weights = [8 if start == SINCE and e == rising else 1 for e in ENTRIES] + [1]
                entry = rng.choices([*ENTRIES, own], weights)[0]
            at = start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
            messages.append({
                "channel": rng.choice(CHANNELS[name]), "received_at": at, "decision": decision,
                "entry_id": entry, "status": "new" if decision is None else "done",
            })  # fmt: skip
    for _ in range(300):  # staff chatter in a staff room: not a citizen's message
        messages.append({
            "channel": "north-web", "received_at": SINCE + timedelta(days=3),
            "decision": "staff", "entry_id": None, "status": "done",
        })  # fmt: skip
    for message in messages:
        if message["decision"] != "escalate":
            continue
        created = message["received_at"]
        status = rng.choices(["open", "answered", "closed", "undeliverable"], [30, 50, 10, 10])[0]
        answered = None
        if status in ("answered", "undeliverable") or (status == "closed" and rng.random() < 0.5):
            answered = created + timedelta(minutes=rng.expovariate(1 / 300))
        tickets.append({
            "channel": message["channel"], "status": status, "created_at": created,
            "answered_at": answered, "due_at": created + timedelta(hours=rng.uniform(1, 400)),
        })  # fmt: skip
    return messages, tickets


def _insert(connection: Connection, messages: list[dict[str, Any]], tickets: list[Any]) -> None:
    connection.execute(
        insert(INBOX),
        [
            {**m, "platform_id": f"p{n}", "conversation": f"c{n}", "sender": f"u{n}",
             "public": False, "attempts": 1, "text": "?"}
            for n, m in enumerate(messages)
        ],
    )  # fmt: skip
    connection.execute(
        insert(TICKET),
        [
            {**t, "reference": f"R{n:07d}", "conversation": f"c{n}", "sender": f"u{n}",
             "public": False, "question": "?", "reason": "seeded", "candidates": []}
            for n, t in enumerate(tickets)
        ],
    )  # fmt: skip


def _expected(messages: list[dict[str, Any]], tickets: list[dict[str, Any]]) -> dict[str, Any]:
    owner = {channel: name for name, channels in CHANNELS.items() for channel in channels}
    figures = {}
    for name in NAMES:
        mine = [
            m
            for m in messages
            if owner[m["channel"]] == name
            and m["decision"] != "staff"
            and SINCE <= m["received_at"] < UNTIL
        ]
        decided = Counter(m["decision"] for m in mine)
        own_tickets = [t for t in tickets if owner[t["channel"]] == name]
        waits = [
            (t["answered_at"] - t["created_at"]).total_seconds()
            for t in own_tickets
            if t["answered_at"] and SINCE <= t["created_at"] < UNTIL
        ]
        figures[name] = {
            "messages": len(mine),
            "answered": decided["answer"],
            "clarified": decided["clarify"],
            "escalated": decided["escalate"],
            "answer_median_seconds": float(numpy.percentile(waits, 50)),
            "answer_p90_seconds": float(numpy.percentile(waits, 90)),
            "overdue_now": sum(t["status"] == "open" and t["due_at"] < UNTIL for t in own_tickets),
            "undeliverable_now": sum(t["status"] == "undeliverable" for t in own_tickets),
        }
    return figures


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CIVICDESK_INSTITUTIONS", str(_write_institutions(tmp_path)))
    messages, tickets = _seed(random.Random(20261031))

    async def seeding() -> None:
        store = await Store.open(url)
        try:
            await store._db.write(lambda connection: _insert(connection, messages, tickets))
        finally:
            await store.close()

    asyncio.run(seeding())
    return messages, tickets


def _report(fmt: str) -> str:
    out = io.StringIO()
    argv = ["report", "--by-institution", "--since", "2026-10-01", "--until", "2026-11-01"]
    assert main([*argv, "--format", fmt], out) == 0
    return out.getvalue()


def test_the_json_figures_equal_counts_computed_here(seeded: tuple[Any, Any]) -> None:
    want = _expected(*seeded)
    got = json.loads(_report("json"))
    rows = {row["name"]: row for row in got["institutions"]}
    assert list(rows) == NAMES
    for name in NAMES:
        row = rows[name]
        for key in ("messages", "answered", "clarified", "escalated"):
            assert row[key] == want[name][key], (name, key)
        for key in ("overdue_now", "undeliverable_now"):
            assert row[key] == want[name][key], (name, key)
        for key in ("answer_median_seconds", "answer_p90_seconds"):
            assert row[key] == pytest.approx(want[name][key], abs=0.01), (name, key)
    # The fee topic was asked eight times as often this month, in every institution.
    assert got["rising_topics"][0]["name"] == "Fees and payment"
    assert sum(r["messages"] for r in rows.values()) == sum(w["messages"] for w in want.values())


def test_the_text_report_has_a_line_per_institution(seeded: tuple[Any, Any]) -> None:
    want = _expected(*seeded)
    lines = _report("text").splitlines()
    for name in NAMES:
        [line] = [line for line in lines if line.startswith(name + " ")]
        assert line.split()[1] == str(want[name]["messages"])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_html_page_shows_every_institution_in_chromium(
    seeded: tuple[Any, Any], tmp_path: Path
) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(_report("html"), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)

    async def look() -> tuple[list[str], int]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 900, "height": 700})
                await page.goto(page_file.as_uri())
                cells = await page.locator("tbody tr td:first-child").all_inner_texts()
                bars = await page.locator("svg rect").count()
                await page.screenshot(
                    path=str(ARTIFACTS / "institutions-report.png"), full_page=True
                )
                return cells, bars
            finally:
                await browser.close()

    cells, bars = asyncio.run(look())
    assert cells == [f"{name.title()} District Court" for name in NAMES]
    assert bars == 5 * 3 + 3  # three stacked parts per institution, and the legend


def test_the_csv_export_has_the_json_figures(seeded: tuple[Any, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(_report("csv"))))
    figures = {row["name"]: row for row in json.loads(_report("json"))["institutions"]}
    assert [row["name"] for row in rows] == NAMES
    for row in rows:
        want = figures[row["name"]]
        assert int(row["messages"]) == want["messages"]
        assert int(row["overdue_now"]) == want["overdue_now"]
        assert float(row["answer_p90_seconds"]) == pytest.approx(
            want["answer_p90_seconds"], abs=1e-3
        )
