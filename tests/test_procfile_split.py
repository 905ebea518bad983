"""The Procfile's two process types, as a deployer runs them: `civicdesk serve --no-workers`
takes the messages in, `civicdesk work` answers them. The worker must learn of new messages at
once, not at its next poll (set to 30 s here): on SQLite by watching the file's commits
(`bot.storage.commit_watch`), on PostgreSQL by LISTEN/NOTIFY (`bot.storage.pg_wake`).
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from serve_support import Platform, Receiver, ServeProcess, burst, civicdesk, serve_environment
from web_support import SAMPLE_KB

from bot.answering.desk import Desk
from bot.answering.knowledge import load_knowledge

pytestmark = pytest.mark.slow

MESSAGES = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def split_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'civicdesk.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


async def test_the_worker_process_answers_what_the_web_process_stored_without_waiting_to_poll(
    tmp_path: Path, split_database: str
) -> None:
    receiver = Receiver()
    outbound = await receiver.start()
    environ = serve_environment(
        split_database, outbound, CIVICDESK_POLL_INTERVAL="30", CIVICDESK_RATE_PER_SECOND="0"
    )
    web = ServeProcess(environ, tmp_path, name="web", command=("serve", "--no-workers"))
    worker = ServeProcess(environ, tmp_path, name="worker", command=("work",))
    platform = Platform(concurrency=5)
    try:
        if split_database.startswith("postgresql"):
            code, _, errors = await civicdesk(environ, tmp_path, "db", "upgrade")
            assert code == 0, errors
        await web.start()  # first: on SQLite it creates the file's tables
        await worker.start()
        started = time.monotonic()
        await platform.send([web.url], burst(MESSAGES, "split"))
        accepted = set(platform.accepted)
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= accepted, timeout=20, what="every reply"
        )
        took = time.monotonic() - started
    finally:
        await worker.stop()
        await web.stop()
        await receiver.close()
    assert len(accepted) == MESSAGES
    assert took < 10, f"{took:.1f} s: the worker waited for its poll"


async def test_the_web_chat_page_gets_its_answer_from_the_worker_process(
    tmp_path: Path, split_database: str
) -> None:
    receiver = Receiver()
    outbound = await receiver.start()
    environ = serve_environment(split_database, outbound, CIVICDESK_CHANNELS="webhook,webchat")
    web = ServeProcess(environ, tmp_path, name="web", command=("serve", "--no-workers"))
    worker = ServeProcess(environ, tmp_path, name="worker", command=("work",))
    question = {"id": "msg-00000001", "conversation": "page-0000001", "text": "诉讼费怎么交"}
    try:
        if split_database.startswith("postgresql"):
            code, _, errors = await civicdesk(environ, tmp_path, "db", "upgrade")
            assert code == 0, errors
        await web.start()
        await worker.start()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{web.url}/webhooks/webchat", json=question) as response:
                assert response.status == 200
            poll = f"{web.url}/chat/api/replies?conversation=page-0000001&after=0&wait=20"
            async with session.get(poll) as response:
                replies = (await response.json())["replies"]
    finally:
        await worker.stop()
        await web.stop()
        await receiver.close()
    [answer] = replies
    expected = Desk(load_knowledge(SAMPLE_KB)).respond(question["text"]).text
    assert answer["text"] == expected  # the FAQ's answer, as the worker composed it
    assert answer["reply_to"] == "msg-00000001"
