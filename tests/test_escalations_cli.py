"""The operator commands against a real database: escalations, dead letters, the schema."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge
from bot.cli.tickets import COMMANDS, add_parsers, run
from bot.config.settings import Settings
from bot.gateway.pipeline import handle
from bot.platform.adapter import TEXT_RULES
from bot.platform.lengths import weibo_length
from bot.platform.messages import InboundMessage
from bot.storage.engine import create_engine, has_schema
from bot.storage.store import Store

KNOWLEDGE = load_knowledge(Path(__file__).parents[1] / "knowledge")
DESK = Desk(KNOWLEDGE)  # built once (~0.4 s); the pipeline keeps no state in it
CASE_QUESTION = "我的案子现在到哪一步了？"


def cli(url: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="civicdesk")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parsers(commands)
    args = parser.parse_args(argv)
    assert args.command in COMMANDS
    out = io.StringIO()
    status = run(args, Settings.from_env({"DATABASE_URL": url}), out)
    return status, out.getvalue()


async def _escalate(url: str, messages: list[InboundMessage]) -> list[str]:
    store = await Store.open(url)
    try:
        await store.accept(messages)
        references = []
        for row in await store.claim_inbox("seed", len(messages), 30):
            rules = TEXT_RULES.get(row.channel, TEXT_RULES["webhook"])
            handled = await handle(row, DESK, rules, store)
            assert handled.reference is not None
            references.append(handled.reference)
        # The acknowledgements are delivered: what follows starts from a quiet outbox.
        for out in await store.claim_outbox("seed", 100, 30):
            assert out.id is not None
            await store.mark_sent(out.id, None)
        return references
    finally:
        await store.close()


def escalate(url: str, *messages: InboundMessage) -> list[str]:
    return asyncio.run(_escalate(url, list(messages)))


def private(n: int, text: str = CASE_QUESTION) -> InboundMessage:
    return InboundMessage("webhook", f"evt-{n}", f"conv-{n}", f"user-{n}", text, False)


async def _queued(url: str) -> list[tuple[str, str, str]]:
    store = await Store.open(url)
    try:
        return [(m.kind, m.channel, m.text) for m in await store.claim_outbox("reader", 100, 30)]
    finally:
        await store.close()


def queued(url: str) -> list[tuple[str, str, str]]:
    return asyncio.run(_queued(url))


def test_list_shows_each_ticket_with_its_reference(database_url: str) -> None:
    first, second = escalate(
        database_url, private(1), private(2, "What is happening with my case?")
    )

    status, out = cli(database_url, "escalations", "list")

    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["REF", "STATUS"]
    assert lines[1].startswith(first) and "open" in lines[1] and CASE_QUESTION in lines[1]
    assert lines[2].startswith(second)


def test_list_filters_by_status_and_prints_json(database_url: str) -> None:
    first, second = escalate(database_url, private(1), private(2))
    assert cli(database_url, "escalations", "answer", first, "Done.", "--by", "li")[0] == 0

    status, out = cli(database_url, "escalations", "list", "--status", "open", "--json")

    assert status == 0
    [only] = json.loads(out)
    assert only["reference"] == second and only["status"] == "open"
    assert only["candidates"] and "entry_id" in only["candidates"][0]


def test_an_empty_list_says_so(database_url: str) -> None:
    assert cli(database_url, "escalations", "list") == (0, "no escalations\n")


def test_show_gives_the_question_the_reason_and_the_candidates(database_url: str) -> None:
    [reference] = escalate(database_url, private(1))

    status, out = cli(database_url, "escalations", "show", reference.lower())  # as typed

    assert status == 0
    assert f"reference:    {reference}" in out
    assert CASE_QUESTION in out
    assert "why escalated:" in out
    assert "candidates:" in out and "my-case-status" in out


def test_show_of_an_unknown_reference_fails_with_a_message(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(database_url, "escalations", "show", "ZZZZZZ")[0] == 1
    assert "no escalation has the reference ZZZZZZ" in capsys.readouterr().err


def test_export_csv_has_a_row_per_ticket_for_spreadsheets(database_url: str) -> None:
    references = escalate(database_url, private(1), private(2), private(3))

    status, out = cli(database_url, "escalations", "export", "--format", "csv")

    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["reference"] for r in rows] == references
    assert rows[0]["question"] == CASE_QUESTION
    assert "my-case-status (" in rows[0]["candidates"]
    assert rows[0]["answer"] == ""


def test_export_json_keeps_everything(database_url: str) -> None:
    [reference] = escalate(database_url, private(1))
    status, out = cli(database_url, "escalations", "export", "--format", "json")
    assert status == 0
    [record] = json.loads(out)
    assert record["reference"] == reference
    assert record["created_at"].endswith("+00:00")


def test_answer_queues_the_reply_to_the_citizen_and_closes_the_ticket(database_url: str) -> None:
    [reference] = escalate(database_url, private(1))

    status, out = cli(
        database_url,
        "escalations",
        "answer",
        reference,
        "Your hearing is on 3 March.",
        "--by",
        "li",
    )

    assert status == 0 and reference in out
    assert queued(database_url) == [("answer", "webhook", "Your hearing is on 3 March.")]
    _, shown = cli(database_url, "escalations", "show", reference, "--json")
    record = json.loads(shown)
    assert record["status"] == "closed"
    assert record["answer"] == "Your hearing is on 3 March."
    assert record["answered_by"] == "li"


def test_a_public_weibo_answer_is_fitted_to_140_with_the_mention(database_url: str) -> None:
    mention = InboundMessage(
        "weibo", "status-9", "status-9", "u9", CASE_QUESTION, True, mention="@zhang"
    )
    [reference] = escalate(database_url, mention)

    status, _ = cli(database_url, "escalations", "answer", reference, "您好，" * 200)

    assert status == 0
    [(kind, channel, text)] = queued(database_url)
    assert (kind, channel) == ("answer", "weibo")
    assert text.startswith("@zhang ")
    assert weibo_length(text) <= 140


def test_a_second_answer_is_refused_and_nothing_more_is_sent(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [reference] = escalate(database_url, private(1))
    assert cli(database_url, "escalations", "answer", reference, "First.")[0] == 0
    assert cli(database_url, "escalations", "answer", reference, "Second.")[0] == 1
    assert "already closed" in capsys.readouterr().err
    assert [text for _, _, text in queued(database_url)] == ["First."]


# --- dead letters and the schema -----------------------------------------------------------------


async def _dead_letter(url: str) -> int:
    store = await Store.open(url)
    try:
        await store.accept([private(1, "诉讼费怎么交")])
        [row] = await store.claim_inbox("w", 1, 30)
        await handle(row, DESK, TEXT_RULES["webhook"], store)
        [out] = await store.claim_outbox("w", 1, 30)
        assert out.id is not None
        await store.mark_dead(out.id, "HTTP 404: no such chat")
        return out.id
    finally:
        await store.close()


def test_dead_letters_are_listed_and_queued_again(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox_id = asyncio.run(_dead_letter(database_url))

    status, out = cli(database_url, "deliveries", "list-dead")
    assert status == 0
    assert str(outbox_id) in out and "HTTP 404: no such chat" in out
    _, as_json = cli(database_url, "deliveries", "list-dead", "--json")
    assert json.loads(as_json)[0]["last_error"] == "HTTP 404: no such chat"

    assert cli(database_url, "deliveries", "retry", str(outbox_id)) == (
        0,
        f"{outbox_id}: queued again\n",
    )
    assert cli(database_url, "deliveries", "list-dead")[1] == "no dead letters\n"
    assert len(queued(database_url)) == 1
    assert cli(database_url, "deliveries", "retry", str(outbox_id))[0] == 1
    assert "is not a dead letter" in capsys.readouterr().err


def test_db_upgrade_creates_the_tables_of_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert cli(url, "db", "upgrade") == (0, "database schema is up to date\n")
    assert cli(url, "db", "upgrade")[0] == 0  # again: nothing to do

    async def tables_exist() -> bool:
        engine = create_engine(url)
        try:
            return await has_schema(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(tables_exist())


@pytest.mark.parametrize("command", [("escalations", "list"), ("db", "upgrade")])
def test_an_unreachable_database_is_reported_not_raised(
    command: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = cli("postgresql+asyncpg://postgres@127.0.0.1:1/nothing", *command)
    assert status == 1
    assert "the database is unavailable" in capsys.readouterr().err
