"""Knowledge reload in a running server: an edit is served without a restart; a bad edit keeps the
last good version serving and /readyz says why; fixing it serves the new content."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from web_support import (
    SMALL_KB,
    count_rows,
    environment,
    event,
    served_app,
    signed_post,
    start_receiver,
)

from bot.cli.serve import install_sighup
from bot.config.settings import Settings
from bot.gateway.reload import KnowledgeHolder
from bot.runtime.memory import freeze_long_lived
from bot.runtime.metrics import Metrics

Client = TestClient[web.Request, web.Application]
OLD = "Pay online or at the litigation service centre."
NEW = "Pay online at court.example.gov or at window 3."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(SMALL_KB, target)
    return target


OLD_LINE = f"en: {OLD}"
NEW_LINE = f"en: {NEW}"
GOOD_KEY = "    answer:\n      zh: 可通过网上缴费"
TYPO_KEY = "    anwser:\n      zh: 可通过网上缴费"


def edit(folder: Path, *changes: tuple[str, str]) -> None:
    """Apply the changes to fees.yaml in one write, as an editor saves a file."""
    path = folder / "fees.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    # Make sure the change is visible even on a file system with coarse timestamps.
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def holder(folder: Path) -> KnowledgeHolder:
    settings = Settings.from_env({"CIVICDESK_KNOWLEDGE": str(folder)})
    return KnowledgeHolder.from_settings(settings, metrics=Metrics(), poll_seconds=0.05)


def answer(knowledge: KnowledgeHolder) -> str:
    return knowledge.desk.respond("How do I pay the court fee?").text


def test_an_edit_is_served_after_a_reload(folder: Path) -> None:
    knowledge = holder(folder)
    assert answer(knowledge).startswith(OLD)

    edit(folder, (OLD_LINE, NEW_LINE))

    assert knowledge.changed()
    assert knowledge.reload_now()
    assert answer(knowledge).startswith(NEW)
    assert not knowledge.changed()


def test_a_reload_frees_the_version_it_replaces(folder: Path) -> None:
    # Nothing may keep the old knowledge base (a cache, a frozen generation: bot.runtime.memory), or
    # every FAQ edit would leak a copy of it in a server that runs for months.
    knowledge = holder(folder)
    freeze_long_lived()
    old = weakref.ref(knowledge.desk.knowledge)
    edit(folder, (OLD_LINE, NEW_LINE))

    assert knowledge.reload_now()
    assert old() is None
    assert gc.get_freeze_count() > 0  # the new version is frozen in its turn
    gc.unfreeze()


def test_a_bad_edit_keeps_the_last_good_version_and_says_where(folder: Path) -> None:
    knowledge = holder(folder)
    edit(folder, (GOOD_KEY, TYPO_KEY))

    assert not knowledge.reload_now()

    assert answer(knowledge).startswith(OLD)
    assert knowledge.error is not None
    assert "fees.yaml:" in knowledge.error
    assert "did you mean 'answer'" in knowledge.error
    assert knowledge.status()["ok"] is False

    edit(folder, (TYPO_KEY, GOOD_KEY), (OLD_LINE, NEW_LINE))
    assert knowledge.reload_now()
    assert knowledge.error is None
    assert answer(knowledge).startswith(NEW)


def test_a_broken_knowledge_base_at_start_is_refused(folder: Path) -> None:
    (folder / "fees.yaml").write_text("topic: [unclosed\n", encoding="utf-8")

    with pytest.raises(Exception, match=r"fees\.yaml"):
        holder(folder)


async def test_sighup_reloads(folder: Path) -> None:
    knowledge = holder(folder)
    install_sighup(knowledge)
    try:
        edit(folder, (OLD_LINE, NEW_LINE))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if answer(knowledge).startswith(NEW):
                break
        assert answer(knowledge).startswith(NEW)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await knowledge.stop()


async def test_a_bad_edit_while_serving(aiohttp_client: Any, folder: Path, tmp_path: Path) -> None:
    """The issue's acceptance: old answers still served and /readyz says why; then fixed."""
    receiver, server = await start_receiver()
    database = tmp_path / "civicdesk.db"
    app, _, knowledge = await served_app(
        environment(database, str(server.make_url("/replies"))), folder
    )
    knowledge.poll_seconds = 0.05
    client: Client = await aiohttp_client(app)

    async def ask(number: int) -> str:
        body = event(f"evt-{number}", "How do I pay the court fee?", conversation=f"c-{number}")
        assert (
            await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
        ).status == 200
        replies = await receiver.wait_for(number)
        return str(replies[number - 1]["text"])

    async def readiness() -> dict[str, Any]:
        response = await client.get("/readyz")
        assert response.status == 200  # still serving: a typo must not take the service down
        return dict(await response.json())

    async def until(condition: Any) -> None:
        for _ in range(200):
            if await condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the watcher did not pick up the edit")

    try:
        assert (await ask(1)).startswith(OLD)

        edit(folder, (GOOD_KEY, TYPO_KEY))
        await until(lambda: _has_error(readiness))
        detail = (await readiness())["knowledge"]
        assert detail["ok"] is False
        assert "fees.yaml:" in detail["reload_error"]
        assert (await ask(2)).startswith(OLD)

        edit(folder, (TYPO_KEY, GOOD_KEY), (OLD_LINE, NEW_LINE))  # one save fixes both
        await until(lambda: _is_fixed(readiness))
        assert (await ask(3)).startswith(NEW)
        assert count_rows(database, "inbox") == 3
    finally:
        await server.close()


async def _has_error(readiness: Any) -> bool:
    return (await readiness())["knowledge"]["reload_error"] is not None


async def _is_fixed(readiness: Any) -> bool:
    return (await readiness())["knowledge"]["reload_error"] is None
