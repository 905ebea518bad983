"""The report of public concerns (`civicdesk report`, bot.reports.concerns): its figures against
counts
computed here in plain Python over seeded data, on SQLite and PostgreSQL; escaping and masking
of citizen text; what "rising" means; an empty database; office days across a DST change."""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, insert

from bot.answering.knowledge import load_knowledge
from bot.cli.main import main
from bot.config.settings import SETTINGS
from bot.reports.concerns import (
    RISE_MIN_COUNT,
    build_report,
    make_report,
    parse_since,
    render_html,
    render_json,
    render_text,
    rising,
)
from bot.storage.models import INBOX, TICKET
from bot.storage.report_data import ReportData, TicketFigures, offset_spans
from bot.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE_PATH = ROOT / "knowledge"
KNOWLEDGE = load_knowledge(KNOWLEDGE_PATH)
ARTIFACTS = Path(__file__).parent / "artifacts"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The end of the reported period: 2026-11-01 12:00 in Shanghai. "30d" is then 2026-10-03 00:00
# to it, and the previous period the same length before.
UNTIL = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
SINCE = datetime(2026, 10, 2, 16, 0, tzinfo=UTC)
PREVIOUS = SINCE - (UNTIL - SINCE)

PHONE, RESIDENT_ID = "13812345678", "11010519491231002X"
EMAIL, CARD = "zhang.san@example.com", "6222 0212 3456 7890 128"  # a valid card (Luhn)
HOSTILE = '<script>alert(1)</script> " onmouseover="alert(2)" {{ 7*7 }}'


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No civicdesk setting from outside (nor a .env); the sample FAQ; Shanghai's days."""
    for setting in SETTINGS:
        monkeypatch.setenv(setting.name, "")
        monkeypatch.delenv(setting.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(KNOWLEDGE_PATH))
    return tmp_path


def cli(url: str, *argv: str) -> tuple[int, str]:
    os.environ["DATABASE_URL"] = url  # clean_environment's monkeypatch restores it
    out = io.StringIO()
    status = main(["report", *argv], out)
    return status, out.getvalue()


# --- seeded data ---------------------------------------------------------------------------------

CHANNELS = {"webchat": 40, "wechat": 25, "weibo": 15, "email": 12, "telegram": 8}
DECISIONS = {
    "answer": 55, "clarify": 12, "escalate": 15, "smalltalk": 8, "private": 3,
    "follow-up": 4, None: 3,
}  # fmt: skip
ENTRY_IDS = [entry.id for entry in KNOWLEDGE.entries]
CANTEEN = ["法院食堂对外开放吗", "法院的食堂对外开放吗", "法院食堂对外人开放吗"]
CASE = ["我的案子判了没有", "我的案子到底判了没有", "我的案子判了没有啊"]
DOG = ["can I bring my dog to the court", "can I bring my dog into the court", "bring my dog court"]
TAILS = ["", "？", "？谢谢", f" 电话{PHONE}", f" 身份证{RESIDENT_ID}", f" {EMAIL}", f" 卡号{CARD}"]


@dataclass
class Seed:
    messages: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = rng.uniform(0, (end - start).total_seconds())
    return start + timedelta(seconds=seconds)


def _escalated_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        text = rng.choice(CANTEEN)
    elif roll < 0.60:
        text = rng.choice(CASE)
    elif roll < 0.75:
        text = rng.choice(DOG)
    else:  # unlike anything else: never grouped with another
        return "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(8))
    tail = rng.choice(TAILS)
    if rng.random() < 0.05:
        tail += " " + HOSTILE
    return text + tail


def _seed(rng: random.Random) -> Seed:
    """10,000 citizen messages in the 30 days reported, 3,000 in the 30 days before (where a few
    entries are asked less), staff chatter, a few messages outside both periods, and tickets."""
    seed = Seed()
    popular_now = rng.sample(ENTRY_IDS, 3)  # asked far more often in the period: they rise
    spans = [(SINCE, UNTIL, 10_000), (PREVIOUS, SINCE, 3_000)]
    spans += [(PREVIOUS - timedelta(days=5), PREVIOUS, 40), (UNTIL, UNTIL + timedelta(days=2), 40)]
    for start, end, count in spans:
        current = start == SINCE
        for _ in range(count):
            decision = rng.choices(list(DECISIONS), weights=list(DECISIONS.values()))[0]
            entry_id = None
            if decision in ("answer", "private") or (decision == "escalate" and rng.random() < 0.2):
                weights = [
                    (12 if current and e in popular_now else 1) * (1 + (i % 7)) for i, e in
                    enumerate(ENTRY_IDS)
                ]  # fmt: skip
                entry_id = rng.choices(ENTRY_IDS, weights=weights)[0]
            text = _escalated_text(rng) if decision == "escalate" else "诉讼费怎么交"
            seed.messages.append({
                "channel": rng.choices(list(CHANNELS), weights=list(CHANNELS.values()))[0],
                "received_at": _moment(rng, start, end),
                "decision": decision, "entry_id": entry_id, "text": text,
                "status": "new" if decision is None else "done",
            })  # fmt: skip
    for _ in range(200):  # staff talking in their room: not citizens' concerns
        seed.messages.append({
            "channel": "staffroom", "received_at": _moment(rng, SINCE, UNTIL), "decision": "staff",
            "entry_id": None, "text": "ok, I take Q7K2M9", "status": "done",
        })  # fmt: skip
    escalated = [m for m in seed.messages if m["decision"] == "escalate"]
    escalated += [{"received_at": _moment(rng, PREVIOUS - timedelta(days=90), PREVIOUS)}] * 30
    for message in escalated:
        created = message["received_at"]
        status = rng.choices(["open", "answered", "closed", "undeliverable"], [30, 50, 12, 8])[0]
        answered_at = None
        if status in ("answered", "undeliverable") or (status == "closed" and rng.random() < 0.5):
            answered_at = created + timedelta(minutes=rng.expovariate(1 / 600))
        seed.tickets.append({
            "status": status, "created_at": created, "answered_at": answered_at,
            "due_at": created + timedelta(hours=rng.uniform(2, 72)),
        })  # fmt: skip
    return seed


SEED = _seed(random.Random(20261101))


def _insert(connection: Connection, seed: Seed) -> None:
    if not seed.messages:
        return
    connection.execute(
        insert(INBOX),
        [
            {
                **m, "platform_id": f"p{n}", "conversation": f"c{n % 997}",
                "sender": f"u{n % 1999}", "public": False, "attempts": 1,
            }
            for n, m in enumerate(seed.messages)
        ],
    )  # fmt: skip
    if seed.tickets:
        connection.execute(
            insert(TICKET),
            [
                {
                    **t, "reference": f"R{n:07d}", "channel": "webchat", "conversation": f"c{n}",
                    "sender": f"u{n}", "public": False, "question": "?", "reason": "seeded",
                    "candidates": [],
                }
                for n, t in enumerate(seed.tickets)
            ],
        )  # fmt: skip


def seed_database(url: str, seed: Seed) -> None:
    async def seeding() -> None:
        store = await Store.open(url)
        try:
            await store._db.write(lambda connection: _insert(connection, seed))
        finally:
            await store.close()

    asyncio.run(seeding())


# --- the figures, computed here ------------------------------------------------------------------


def expected(seed: Seed, since: datetime, until: datetime, zone: ZoneInfo) -> dict[str, Any]:
    before = since - (until - since)
    citizens = [m for m in seed.messages if m["decision"] != "staff"]
    now = [m for m in citizens if since <= m["received_at"] < until]
    then = [m for m in citizens if before <= m["received_at"] < since]
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    per_channel_day: dict[str, Counter[date]] = defaultdict(Counter)
    for m in now:
        per_channel_day[m["channel"]][m["received_at"].astimezone(zone).date()] += 1
    names = {"answer": "answered", "clarify": "clarified", "escalate": "escalated"}
    names["smalltalk"] = "small talk"
    decisions = Counter(names.get(m["decision"], "other") for m in now)
    entries_now = Counter(m["entry_id"] for m in now if m["entry_id"])
    entries_then = Counter(m["entry_id"] for m in then if m["entry_id"])
    topic = {e.id: e.topic for e in KNOWLEDGE.entries}
    topics_now: Counter[str] = Counter()
    for entry_id, n in entries_now.items():
        topics_now[topic[entry_id]] += n
    opened = [t for t in seed.tickets if since <= t["created_at"] < until]
    waits = sorted(
        (t["answered_at"] - t["created_at"]).total_seconds() for t in opened if t["answered_at"]
    )
    return {
        "days": [d.isoformat() for d in days],
        "channels": {c: [per_channel_day[c][d] for d in days] for c in per_channel_day},
        "total": len(now),
        "previous_total": len(then),
        "decisions": {k: decisions[k] for k in ("answered", "clarified", "escalated")}
        | {"small talk": decisions["small talk"], "other": decisions["other"]},
        "entries_now": entries_now,
        "entries_then": entries_then,
        "topics_now": topics_now,
        "escalations": {
            "opened": len(opened),
            "answered": len(waits),
            "undeliverable": sum(t["status"] == "undeliverable" for t in opened),
            "open_now": sum(t["status"] == "open" for t in seed.tickets),
            "overdue_now": sum(t["status"] == "open" and t["due_at"] < until for t in seed.tickets),
            "undeliverable_now": sum(t["status"] == "undeliverable" for t in seed.tickets),
        },
        "median": statistics.median(waits),
        "p90": statistics.quantiles(waits, n=10, method="inclusive")[8],
    }


def test_report_json_on_10000_messages_matches_counts_computed_here(database_url: str) -> None:
    seed_database(database_url, SEED)
    want = expected(SEED, SINCE, UNTIL, SHANGHAI)

    started = time.perf_counter()
    status, out = cli(
        database_url, "--format", "json", "--since", "30d", "--until", "2026-11-01T12:00"
    )
    seconds = time.perf_counter() - started

    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"report_time_{dialect}.txt").write_text(f"{seconds:.3f}\n")
    print(
        f"\ncivicdesk report --format json --since 30d, 10,000 messages, {dialect}: {seconds:.3f} s"
    )
    assert status == 0
    got = json.loads(out)
    assert want["total"] == 10_000
    assert got["period"]["since"] == SINCE.isoformat()
    assert got["period"]["previous_since"] == PREVIOUS.isoformat()
    assert got["volume"]["days"] == want["days"] and len(want["days"]) == 30
    assert got["volume"]["channels"] == want["channels"]
    assert "staffroom" not in got["volume"]["channels"]
    assert got["messages"] == {"total": want["total"], "previous_total": want["previous_total"]}
    assert got["decisions"] == want["decisions"]
    assert sum(got["volume"]["per_day"]) == want["total"]

    ranked = sorted(want["entries_now"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(e["entry_id"], e["count"]) for e in got["top_entries"]] == ranked
    assert all(e["previous"] == want["entries_then"][e["entry_id"]] for e in got["top_entries"])
    topics = sorted(want["topics_now"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(t["topic"], t["count"]) for t in got["top_topics"]] == topics
    assert got["rising_entries"], "three entries were seeded twelve times as often"
    for rise in got["rising_entries"]:
        before = want["entries_then"][rise["entry_id"]]
        assert (rise["count"], rise["previous"]) == (want["entries_now"][rise["entry_id"]], before)
        assert rise["count"] >= RISE_MIN_COUNT and rise["count"] > before

    figures = got["escalations"]
    assert {k: figures[k] for k in want["escalations"]} == want["escalations"]
    assert figures["answer_median_seconds"] == pytest.approx(want["median"], abs=0.2)
    assert figures["answer_p90_seconds"] == pytest.approx(want["p90"], abs=0.2)

    unanswered = got["unanswered"]
    assert unanswered["total"] == want["decisions"]["escalated"] == unanswered["grouped_from"]
    clusters = unanswered["clusters"]
    assert clusters and [c["size"] for c in clusters] == sorted(
        (c["size"] for c in clusters), reverse=True
    )
    assert "食堂" in clusters[0]["examples"][0]  # the question asked most (35%)
    case = next(c for c in clusters if "案子" in c["examples"][0])
    assert case["nearest"]["entry_id"] == "my-case-status"
    assert all(1 <= len(c["examples"]) <= 3 for c in clusters)
    for secret in (PHONE, RESIDENT_ID, EMAIL, CARD):
        assert secret not in out
    assert unanswered["in_clusters"] < unanswered["total"]  # a quarter were asked only once


# --- escaping and masking ------------------------------------------------------------------------


class _Page(HTMLParser):
    """What a browser would build: the elements with their attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hostile_report() -> str:
    texts = [f"法院食堂对外开放吗 {HOSTILE}", f"法院食堂对外开放吗？{HOSTILE}", HOSTILE + " 食堂"]
    data = ReportData(
        volume=[("web<b>chat", date(2026, 10, 31), 3)],
        decisions={(True, "escalate"): 3},
        entries={},
        unanswered=list(enumerate(texts)),
        tickets=TicketFigures(),
    )
    report = make_report(data, since=SINCE, until=UNTIL, zone=SHANGHAI, knowledge=KNOWLEDGE)
    return render_html(report)


def test_hostile_citizen_text_shows_as_text_in_the_html_and_runs_nothing() -> None:
    page = _hostile_report()
    parsed = _Page()
    parsed.feed(page)

    assert [tag for tag, _ in parsed.tags if tag == "script"] == []
    attributes = [name for _, attrs in parsed.tags for name, _ in attrs]
    assert not [name for name in attributes if name.startswith("on")]
    assert "{{" not in page and "}}" not in page  # not even for a template engine reading it
    shown = "".join(parsed.text)
    assert HOSTILE in shown  # as text, exactly as the citizen wrote it
    assert "web<b>chat" in shown  # a channel name too
    assert "&lt;script&gt;" in page


def test_the_html_fragment_and_the_text_carry_no_markup_or_terminal_escapes() -> None:
    data = ReportData(
        volume=[("webchat", date(2026, 10, 31), 2)],
        decisions={(True, "escalate"): 2},
        entries={},
        unanswered=[(1, "\x1b]0;pwned\x07法院食堂开放吗\x1b[31m"), (2, "法院食堂开放吗")],
        tickets=TicketFigures(),
    )
    report = make_report(data, since=SINCE, until=UNTIL, zone=SHANGHAI, knowledge=KNOWLEDGE)

    text = render_text(report)
    fragment = render_html(report, page=False)

    assert "\x1b" not in text and "\x07" not in text and "法院食堂开放吗" in text
    assert fragment.startswith("<style>") and "<html" not in fragment
    assert fragment.rstrip().endswith("</section>")


def _report_with_secrets() -> Any:
    texts = [
        f"我的电话{PHONE}，法院食堂对外开放吗",
        f"身份证{RESIDENT_ID}，法院食堂对外开放吗",
        f"邮箱{EMAIL} 法院食堂对外开放吗",
        f"卡号{CARD} 法院食堂对外开放吗？",
    ]
    data = ReportData(
        volume=[("webchat", date(2026, 10, 31), 4)],
        decisions={(True, "escalate"): 4},
        entries={},
        unanswered=list(enumerate(texts)),
        tickets=TicketFigures(),
    )
    return make_report(data, since=SINCE, until=UNTIL, zone=SHANGHAI, knowledge=KNOWLEDGE)


@pytest.mark.parametrize("render", [render_text, render_json, render_html])
def test_personal_data_is_masked_in_every_format(render: Any) -> None:
    report = _report_with_secrets()
    shown = render(report)
    readable = html.unescape(shown) if render is render_html else shown
    if render is render_json:
        readable = json.dumps(json.loads(shown), ensure_ascii=False)
    assert report.clusters and "食堂" in readable
    for secret in (PHONE, RESIDENT_ID, EMAIL, CARD, CARD.replace(" ", "")):
        assert secret not in readable


# --- rising --------------------------------------------------------------------------------------


def test_rising_needs_the_minimum_count_and_ranks_the_relative_rise_first() -> None:
    now = {"one-to-two": 2, "new": 6, "tripled": 30, "steady": 100, "big": 160, "fell": 9}
    before = {"one-to-two": 1, "tripled": 10, "steady": 100, "big": 120, "fell": 20}

    rises = rising(now, before)

    assert [r.name for r in rises] == ["new", "tripled", "big"]
    new, tripled, big = rises
    assert (new.increase, new.relative) == (6, None)
    assert (tripled.increase, tripled.relative) == (20, 2.0)
    assert (big.previous, big.count, big.increase) == (120, 160, 40)
    assert big.relative == pytest.approx(1 / 3)
    assert rising({"a": RISE_MIN_COUNT - 1}, {}) == []
    assert [r.name for r in rising({"a": 50, "b": 50}, {"a": 10, "b": 10})] == ["a", "b"]


# --- an empty database, the period, office days --------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_an_empty_database_gives_an_empty_report(sqlite_url: str, fmt: str) -> None:
    seed_database(sqlite_url, Seed())

    status, out = cli(sqlite_url, "--format", fmt, "--since", "7d", "--until", "2026-11-01")

    assert status == 0
    if fmt == "json":
        got = json.loads(out)
        assert got["messages"] == {"total": 0, "previous_total": 0}
        assert got["volume"]["days"][0] == "2026-10-25" and len(got["volume"]["days"]) == 7
        assert got["volume"]["per_day"] == [0] * 7 and got["volume"]["channels"] == {}
        assert got["unanswered"]["clusters"] == [] and got["top_entries"] == []
        assert got["escalations"]["answer_median_seconds"] is None
    elif fmt == "text":
        assert "Messages: 0" in out and "Unanswered questions: none" in out
    else:
        assert out.startswith("<!DOCTYPE html>") and "No messages in this period." in out


def test_the_period_in_words_and_dates() -> None:
    until = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    assert parse_since("1d", until, SHANGHAI) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert parse_since("30d", until, SHANGHAI) == SINCE
    assert parse_since("12h", until, SHANGHAI) == until - timedelta(hours=12)
    assert parse_since("2026-10-01", until, SHANGHAI) == datetime(2026, 9, 30, 16, tzinfo=UTC)
    for wrong in ("0d", "soon", "2026-11-02"):
        with pytest.raises(ValueError):
            parse_since(wrong, until, SHANGHAI)


def test_a_wrong_period_is_a_usage_error(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(sqlite_url, "--since", "last week")[0] == 2
    assert "7d, 30d, 12h" in capsys.readouterr().err


BERLIN = ZoneInfo("Europe/Berlin")


def test_office_days_follow_the_zone_across_a_daylight_saving_change(database_url: str) -> None:
    # Berlin leaves summer time on 2026-10-25 at 01:00 UTC (03:00 -> 02:00 local).
    since = datetime(2026, 10, 23, 22, 0, tzinfo=UTC)  # 24 Oct 00:00 local (UTC+2)
    until = datetime(2026, 10, 26, 23, 0, tzinfo=UTC)  # 27 Oct 00:00 local (UTC+1)
    moments = [
        datetime(2026, 10, 24, 21, 59, tzinfo=UTC),  # 24 Oct 23:59 (+2)
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 25 Oct 00:00 (+2)
        datetime(2026, 10, 25, 0, 59, tzinfo=UTC),  # 25 Oct 02:59 (+2)
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # 25 Oct 02:00 (+1)
        datetime(2026, 10, 25, 22, 59, tzinfo=UTC),  # 25 Oct 23:59 (+1)
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # 26 Oct 00:00 (+1)
    ]
    seed = Seed(
        messages=[
            {"channel": "webchat", "received_at": m, "decision": "answer", "entry_id": None,
             "text": "x", "status": "done"}
            for m in moments
        ]
    )  # fmt: skip
    seed_database(database_url, seed)
    assert [offset for _, offset in offset_spans(BERLIN, since, until)] == [7200, 3600]

    async def building() -> Any:
        store = await Store.open(database_url)
        try:
            return await build_report(store, since, until, zone=BERLIN, knowledge=KNOWLEDGE)
        finally:
            await store.close()

    report = asyncio.run(building())

    assert [d.isoformat() for d in report.days] == ["2026-10-24", "2026-10-25", "2026-10-26"]
    by_day = Counter(m.astimezone(BERLIN).date() for m in moments)
    assert report.volume["webchat"] == tuple(by_day[d] for d in report.days) == (1, 4, 1)


def test_the_text_and_html_reports_show_the_figures(sqlite_url: str) -> None:
    seed = _seed(random.Random(7))
    seed.messages = seed.messages[::5]
    seed_database(sqlite_url, seed)

    status, text = cli(sqlite_url, "--since", "30d", "--until", "2026-11-01T12:00")
    assert status == 0
    assert "Report of public concerns: 2026-10-03 00:00 to 2026-11-01 12:00" in text
    assert "Per channel:" in text and "webchat" in text and "█" in text
    assert "Unanswered questions:" in text and "nearest entry:" in text

    status, page = cli(sqlite_url, "--format", "html", "--since", "30d", "--until", "2026-11-01")
    assert status == 0
    parsed = _Page()
    parsed.feed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert tags.count("svg") == 3 and "polyline" in tags and "rect" in tags
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.html").write_text(page, encoding="utf-8")
