"""Retention (bot.storage.purge, `civicdesk purge`, the daily purge of serve and work): texts and
identities older than the retention are blanked, the rows and so every count of the report stay,
and nothing in progress is touched. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, insert, select
from web_support import SMALL_KB, environment, served_app

from bot.cli.main import main as cli
from bot.config.settings import ConfigError, Settings
from bot.storage import purge as store_purge
from bot.storage.models import (
    CONVERSATION_STATE,
    INBOX,
    OUTBOX,
    TICKET,
    TICKET_EVENT,
)
from bot.storage.purge import PurgeCounts, purge, purge_every_day
from bot.storage.store import Store

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
DAYS = 200
CHANNELS = ("webchat", "webhook", "telegram")
DECISIONS = ("answer", "clarify", "escalate", "smalltalk")


# --- Seeding: 200 days of traffic, with rows still in progress among the old ones ---------------


def _seed(connection: Connection, now: datetime = NOW, days: int = DAYS) -> None:
    inbox: list[dict[str, Any]] = []
    for day in range(days):
        for n, channel in enumerate(CHANNELS):
            for k in range(1 + (day + n) % 3):
                decision = DECISIONS[(day + n + k) % 4]
                inbox.append(
                    _message(
                        len(inbox) + 1,
                        channel,
                        now - timedelta(days=day, hours=k * 5 + n),
                        decision=decision,
                        status="failed" if (day + k) % 17 == 0 else "done",
                    )
                )
    # In progress, however old: not yet handled, or handled right now.
    inbox.append(_message(len(inbox) + 1, "webhook", now - timedelta(days=150), status="new"))
    inbox.append(_message(len(inbox) + 1, "webhook", now - timedelta(days=120), status="claimed"))
    connection.execute(insert(INBOX), inbox)

    outbox: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for row in inbox:
        status = "dead" if row["id"] % 11 == 0 else "sent"
        outbox.append(_reply(len(outbox) + 1, row, status=status))
        if row["decision"] == "escalate":
            ticket = _ticket(len(tickets) + 1, row)
            tickets.append(ticket)
            events += _events(len(events) + 1, ticket)
    # An old ticket still open, with its question's row, its post to staff and its log.
    asked = _message(len(inbox) + 1, "webhook", now - timedelta(days=160), decision="escalate")
    connection.execute(insert(INBOX), [asked])
    still_open = _ticket(len(tickets) + 1, asked, status="open")
    tickets.append(still_open)
    events += _events(len(events) + 1, still_open)
    connection.execute(insert(TICKET), tickets)
    post = _reply(len(outbox) + 1, asked, status="sent", kind="ticket")
    outbox.append({**post, "escalation_id": still_open["id"]})
    # Replies still waiting to leave, or leaving, however old.
    outbox.append(_reply(len(outbox) + 1, inbox[5], status="pending"))
    outbox.append(_reply(len(outbox) + 1, inbox[6], status="sending"))
    connection.execute(insert(OUTBOX), outbox)
    connection.execute(insert(TICKET_EVENT), events)
    connection.execute(
        insert(CONVERSATION_STATE),
        [
            _state("webchat", "expired-long-ago", now - timedelta(days=100)),
            _state("webchat", "expired-just-now", now - timedelta(minutes=1)),
            _state("webchat", "still-asking", now + timedelta(minutes=5)),
        ],
    )


def _message(
    number: int, channel: str, at: datetime, *, decision: str = "answer", status: str = "done"
) -> dict[str, Any]:
    handled = status in ("done", "failed")
    return {
        "id": number,
        "channel": channel,
        "platform_id": f"evt-{number}",
        "conversation": f"conv-{number % 37}",
        "sender": f"user-{number % 41}",
        "sender_name": f"张三 {number}" if number % 2 else None,
        "mention": f"@zhang{number}" if number % 3 else None,
        "text": f"我的电话是13812345678，问题{number}",
        "public": number % 5 == 0,
        "lang_hint": None,
        "reply_to": None,
        "reply_context": '{"token": "t"}' if number % 4 else None,
        "received_at": at,
        "status": status,
        "claimed_by": "w" if status == "claimed" else None,
        "lease_until": None,
        "attempts": 1,
        "decision": decision if handled else None,
        "entry_id": f"entry-{number % 9}" if handled and decision == "answer" else None,
        "processed_at": at + timedelta(seconds=2) if handled else None,
    }


def _reply(number: int, row: dict[str, Any], *, status: str, kind: str = "reply") -> dict[str, Any]:
    at = row["received_at"] + timedelta(seconds=2)
    return {
        "id": number,
        "inbox_id": row["id"],
        "escalation_id": None,
        "channel": row["channel"],
        "conversation": row["conversation"],
        "recipient": row["sender"],
        "reply_to": row["platform_id"],
        "reply_context": row["reply_context"],
        "public": row["public"],
        "text": f"您好，关于问题{row['id']}的回复",
        "kind": kind,
        "status": status,
        "attempts": 1,
        "next_attempt_at": at,
        "claimed_by": None,
        "lease_until": None,
        "last_error": "HTTP 400: user-1 blocked the bot" if status == "dead" else None,
        "platform_message_id": f"m-{number}" if status == "sent" else None,
        "created_at": at,
        "sent_at": at if status == "sent" else None,
    }


def _ticket(number: int, row: dict[str, Any], *, status: str | None = None) -> dict[str, Any]:
    created = row["received_at"] + timedelta(seconds=2)
    status = status or ("answered", "closed", "undeliverable")[number % 3]
    answered = created + timedelta(hours=number % 30) if status != "closed" else None
    return {
        "id": number,
        "reference": f"Q{number:05d}",
        "status": status,
        "inbox_id": row["id"],
        "channel": row["channel"],
        "conversation": row["conversation"],
        "sender": row["sender"],
        "sender_name": row["sender_name"],
        "public": row["public"],
        "question": row["text"],
        "reason": "no entry matched",
        "candidates": [{"entry_id": "fees", "score": 0.41, "phrasing": "诉讼费怎么交"}],
        "answer": "请带身份证原件来窗口办理" if answered else None,
        "answered_by": "staff-li" if answered else None,
        "assigned_to": "staff-li",
        "close_reason": "已电话联系" if status == "closed" else None,
        "created_at": created,
        "answered_at": answered,
        "closed_at": answered or (created + timedelta(days=1) if status == "closed" else None),
        "due_at": created + timedelta(days=2),
        "reply_deadline": None,
        "reminded_at": None,
    }


def _events(first: int, ticket: dict[str, Any]) -> list[dict[str, Any]]:
    at = ticket["created_at"]
    return [
        {"id": first, "escalation_id": ticket["id"], "at": at, "kind": "opened",
         "actor": "civicdesk", "channel": ticket["channel"], "detail": "no entry matched"},
        {"id": first + 1, "escalation_id": ticket["id"], "at": at + timedelta(minutes=5),
         "kind": "follow-up", "actor": "citizen", "channel": ticket["channel"],
         "detail": "补充：我的身份证号110101199003074514"},
        {"id": first + 2, "escalation_id": ticket["id"], "at": at + timedelta(minutes=9),
         "kind": "note", "actor": "staff-li", "channel": None, "detail": None},
    ]  # fmt: skip


def _state(channel: str, conversation: str, expires: datetime) -> dict[str, Any]:
    return {
        "channel": channel,
        "conversation": conversation,
        "pending_options": ["fees", "hours"],
        "pending_lang": "zh",
        "expires_at": expires,
    }


# --- What the report counts, computed independently ---------------------------------------------


def _figures(connection: Connection) -> dict[str, Any]:
    """Counts per channel, day and decision (and entry, status), of replies, and of tickets with
    their times: everything but the personal columns."""
    day = func.date(INBOX.c.received_at)
    per_day = select(
        INBOX.c.channel, day, INBOX.c.decision, INBOX.c.entry_id, INBOX.c.status, func.count()
    ).group_by(INBOX.c.channel, day, INBOX.c.decision, INBOX.c.entry_id, INBOX.c.status)
    replies = select(OUTBOX.c.channel, OUTBOX.c.kind, OUTBOX.c.status, func.count()).group_by(
        OUTBOX.c.channel, OUTBOX.c.kind, OUTBOX.c.status
    )
    ticket_columns = [
        c for c in TICKET.c if c.name not in _PERSONAL["escalation"] and c.name != "candidates"
    ]
    events = select(TICKET_EVENT.c.escalation_id, TICKET_EVENT.c.kind, func.count())
    return {
        "per_day": sorted(map(tuple, connection.execute(per_day)), key=repr),
        "replies": sorted(map(tuple, connection.execute(replies)), key=repr),
        "tickets": [
            tuple(row) for row in connection.execute(select(*ticket_columns).order_by(TICKET.c.id))
        ],
        "candidates": [
            row.candidates
            for row in connection.execute(select(TICKET.c.candidates).order_by(TICKET.c.id))
        ],
        "events": sorted(
            map(
                tuple,
                connection.execute(
                    events.group_by(TICKET_EVENT.c.escalation_id, TICKET_EVENT.c.kind)
                ),
            ),
            key=repr,
        ),
        "rows": {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (INBOX, OUTBOX, TICKET, TICKET_EVENT)
        },
    }


_PERSONAL = {
    "inbox": ("text", "sender", "conversation", "sender_name", "mention", "reply_context"),
    "outbox": ("text", "conversation", "recipient", "reply_context", "last_error"),
    "escalation": ("question", "sender", "conversation", "sender_name", "answer", "close_reason"),
    "escalation_event": ("detail",),
}
_TABLES = {
    "inbox": INBOX,
    "outbox": OUTBOX,
    "escalation": TICKET,
    "escalation_event": TICKET_EVENT,
}


def _rows(connection: Connection) -> dict[str, dict[int, dict[str, Any]]]:
    return {
        name: {row.id: row._asdict() for row in connection.execute(select(table))}
        for name, table in _TABLES.items()
    }


def _blank(row: dict[str, Any], table: str) -> bool:
    return all(row[column] in ("", None) for column in _PERSONAL[table])


def _kept(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return before == after  # every column as it was


@pytest.fixture
async def seeded(database_url: str) -> Any:
    store = await Store.open(database_url, clock=lambda: NOW)
    await store._db.write(_seed)
    try:
        yield store
    finally:
        await store.close()


# --- Acceptance: 200 days, purged at 90 ---------------------------------------------------------


async def test_purge_blanks_old_texts_and_identities_and_keeps_every_count(
    seeded: Store,
) -> None:
    store = seeded
    figures_before = await store._db.read(_figures)
    before = await store._db.read(_rows)
    commits: list[int] = []
    event.listen(store.write_engine, "commit", lambda _: commits.append(1))

    would = await purge(store, timedelta(days=90), dry_run=True)
    assert commits == []  # a dry run writes nothing
    counts = await purge(store, timedelta(days=90), batch_rows=50)

    after = await store._db.read(_rows)
    assert await store._db.read(_figures) == figures_before
    assert counts == would
    cutoff = NOW - timedelta(days=90)
    tickets = before["escalation"]
    open_ids = {i for i, t in tickets.items() if t["status"] == "open"}
    expected = {"inbox": 0, "outbox": 0, "escalation": 0, "escalation_event": 0}

    for i, row in before["inbox"].items():
        asked_open = any(tickets[t]["inbox_id"] == i for t in open_ids)
        due = row["received_at"] < cutoff and row["status"] in ("done", "failed")
        if due and not asked_open:
            expected["inbox"] += 1
            assert _blank(after["inbox"][i], "inbox"), row
            assert after["inbox"][i]["sender_name"] is None or row["sender_name"] is not None
            assert {k: v for k, v in after["inbox"][i].items() if k not in _PERSONAL["inbox"]} == {
                k: v for k, v in row.items() if k not in _PERSONAL["inbox"]
            }
        else:
            assert _kept(row, after["inbox"][i]), row
    for i, row in before["outbox"].items():
        due = row["created_at"] < cutoff and row["status"] in ("sent", "dead")
        if due and row["escalation_id"] not in open_ids:
            expected["outbox"] += 1
            assert _blank(after["outbox"][i], "outbox"), row
        else:
            assert _kept(row, after["outbox"][i]), row
    purged_tickets = set()
    for i, row in tickets.items():
        last = row["closed_at"] or row["answered_at"] or row["created_at"]
        if row["status"] != "open" and last < cutoff:
            purged_tickets.add(i)
            expected["escalation"] += 1
            assert _blank(after["escalation"][i], "escalation"), row
            # "Had an answer" still shows: NULL stays NULL, a text becomes ''.
            assert (after["escalation"][i]["answer"] is None) == (row["answer"] is None)
        else:
            assert _kept(row, after["escalation"][i]), row
    for i, row in before["escalation_event"].items():
        if row["escalation_id"] in purged_tickets and row["detail"] is not None:
            expected["escalation_event"] += 1
            assert after["escalation_event"][i]["detail"] == ""
        else:
            assert _kept(row, after["escalation_event"][i]), row
    assert counts == PurgeCounts(**expected, conversation_state=2)
    assert min(expected.values()) > 0  # every table had old rows
    assert any(_kept(row, after["inbox"][i]) for i, row in before["inbox"].items())
    # Both in-progress rows, the open ticket and its post were among the old rows.
    assert {r["status"] for r in after["inbox"].values() if r["text"]} >= {"new", "claimed"}
    assert {r["status"] for r in after["outbox"].values() if r["text"]} >= {"pending", "sending"}
    assert {after["escalation"][i]["question"] for i in open_ids} != {""}
    # One short transaction per batch of at most 50 rows.
    assert len(commits) >= sum(counts.as_dict().values()) / 50
    states = await store._db.read(
        lambda c: list(c.execute(select(CONVERSATION_STATE.c.conversation)).scalars())
    )
    assert states == ["still-asking"]

    # Again: nothing left to purge, nothing changes.
    assert await purge(store, timedelta(days=90)) == PurgeCounts()
    assert await store._db.read(_rows) == after


async def test_a_shorter_retention_later_purges_more_and_keeps_the_counts(seeded: Store) -> None:
    store = seeded
    figures = await store._db.read(_figures)

    first = await purge(store, timedelta(days=150))
    second = await purge(store, timedelta(days=30))

    assert 0 < first.inbox < second.inbox + first.inbox
    assert await store._db.read(_figures) == figures
    rows = await store._db.read(_rows)
    cutoff = NOW - timedelta(days=30)
    for row in rows["inbox"].values():
        if row["received_at"] >= cutoff:
            assert row["text"].startswith("我的电话"), row


# --- The command ---------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    url = f"sqlite+aiosqlite:///{tmp_path / 'civicdesk.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    yield url


async def _seeded_file(url: str, days: int) -> None:
    store = await Store.open(url)
    try:
        await store._db.write(lambda c: _seed(c, now=store.now(), days=days))
    finally:
        await store.close()


async def _texts(url: str) -> list[str]:
    store = await Store.open(url, upgrade=False)
    try:
        return await store._db.read(
            lambda c: list(c.execute(select(INBOX.c.text).order_by(INBOX.c.id)).scalars())
        )
    finally:
        await store.close()


def test_the_command_purges_past_the_setting_and_dry_run_changes_nothing(
    in_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_seeded_file(in_tmp, days=20))
    monkeypatch.setenv("CIVICDESK_RETENTION_DAYS", "10")
    before = asyncio.run(_texts(in_tmp))

    dry = io.StringIO()
    assert cli(["purge", "--dry-run"], out=dry) == 0
    assert asyncio.run(_texts(in_tmp)) == before
    out = io.StringIO()
    assert cli(["purge"], out=out) == 0
    again = io.StringIO()
    assert cli(["purge", "--older-than", "5d"], out=again) == 0

    lines = dry.getvalue().splitlines()
    assert lines[0] == "older than 10 days: rows would be purged"
    assert lines[-1] == "nothing was changed (--dry-run)"
    assert out.getvalue().splitlines()[0] == "older than 10 days: rows purged"
    assert dry.getvalue().split("\n")[1:6] == out.getvalue().split("\n")[1:6]
    purged = int(out.getvalue().split("\n")[1].split()[-1])
    assert purged == sum(1 for text in asyncio.run(_texts(in_tmp)) if text == "") - int(
        again.getvalue().split("\n")[1].split()[-1]
    )
    assert purged > 0
    assert "older than 5 days: rows purged" in again.getvalue()


def test_with_retention_zero_the_command_purges_only_when_told_how_old(
    in_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_seeded_file(in_tmp, days=5))
    monkeypatch.setenv("CIVICDESK_RETENTION_DAYS", "0")
    out = io.StringIO()

    assert cli(["purge"], out=out) == 0

    assert "nothing purged" in out.getvalue()
    assert "" not in asyncio.run(_texts(in_tmp))
    assert cli(["purge", "--older-than", "48h"], out=io.StringIO()) == 0
    assert "" in asyncio.run(_texts(in_tmp))


@pytest.mark.parametrize("value", ["0d", "-3d", "90x", "soon", ""])
def test_a_wrong_age_is_refused_by_the_command_line(
    in_tmp: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli(["purge", f"--older-than={value}"], out=io.StringIO())
    assert stopped.value.code == 2
    assert "write an age such as 90d or 12h" in capsys.readouterr().err


def test_the_retention_setting() -> None:
    assert Settings.from_env({}).retention_days == 180
    assert Settings.from_env({"CIVICDESK_RETENTION_DAYS": "0"}).retention_days == 0
    with pytest.raises(ConfigError, match="CIVICDESK_RETENTION_DAYS"):
        Settings.from_env({"CIVICDESK_RETENTION_DAYS": "-1"})


# --- The daily purge ------------------------------------------------------------------------------


async def test_the_daily_run_purges_once_a_day_and_retries_when_the_database_fails(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[timedelta] = []
    answers: list[PurgeCounts | Exception] = [
        PurgeCounts(inbox=3),
        store_purge.StoreUnavailable("down"),
        PurgeCounts(),
    ]

    async def fake_purge(store: Any, older_than: timedelta, **_: Any) -> PurgeCounts:
        calls.append(older_than)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if not answers:
            raise asyncio.CancelledError

    monkeypatch.setattr(store_purge, "purge", fake_purge)
    with pytest.raises(asyncio.CancelledError):
        await purge_every_day(Any, 30, first_delay=5, every=100, retry=7, sleep=sleep)  # type: ignore[arg-type]

    assert calls == [timedelta(days=30)] * 3
    assert waits == [5, 100, 7, 100]


async def test_serve_purges_daily_with_its_workers(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "civicdesk.db"
    url = f"sqlite+aiosqlite:///{database}"
    await _seeded_file(url, days=200)
    monkeypatch.setattr(store_purge, "FIRST_DELAY", 0.01)
    env = environment(database, "http://127.0.0.1:9/replies", CIVICDESK_RETENTION_DAYS="90")
    app, _, _ = await served_app(env, SMALL_KB)

    client = await aiohttp_client(app)
    try:
        for _ in range(200):
            if "" in await _texts(url):
                break
            await asyncio.sleep(0.02)
    finally:
        await client.close()

    texts = await _texts(url)
    assert "" in texts and any(texts)


async def test_a_web_process_without_workers_does_not_purge(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "civicdesk.db"
    url = f"sqlite+aiosqlite:///{database}"
    await _seeded_file(url, days=200)
    started: list[object] = []
    monkeypatch.setattr(store_purge, "FIRST_DELAY", 0.0)
    monkeypatch.setattr(store_purge, "purge_every_day", lambda *a, **k: started.append(a))
    app, _, _ = await served_app(
        environment(database, "http://127.0.0.1:9/replies"), SMALL_KB, workers=False
    )

    client = await aiohttp_client(app)
    with contextlib.suppress(Exception):
        await client.close()

    assert started == []
    assert "" not in await _texts(url)
