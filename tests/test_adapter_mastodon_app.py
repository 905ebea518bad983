"""Mastodon through the real app: mentions polled from the instance are stored once and
answered in their thread, a direct question directly; webhook requests store nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_mastodon import TOKEN, FakeMastodon, fake_mastodon, mention
from web_support import SMALL_KB, count_rows, served_app

Client = TestClient[web.Request, web.Application]
QUESTION = "<p>@<span>desk</span> How do I pay the court fee?</p>"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with fake_mastodon() as api:
        api.notifications.append(mention(1, "<p>before civicdesk started</p>"))  # not answered
        yield api


@pytest.fixture
async def client(aiohttp_client: Any, fake: FakeMastodon, tmp_path: Path) -> Client:
    environ = {
        "CIVICDESK_CHANNELS": "mastodon",
        "CIVICDESK_MASTODON_ACCESS_TOKEN": TOKEN,
        "CIVICDESK_MASTODON_API_BASE": fake.base,
        "CIVICDESK_MASTODON_POLL_INTERVAL": "0.05",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
    }
    app, _, _ = await served_app(environ, SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


async def first_poll(fake: FakeMastodon) -> None:
    """The runner's first poll only notes where "now" is; mentions after it are answered."""
    await asyncio.wait_for(fake.polled.wait(), 10)


async def test_polled_mentions_are_answered_in_their_threads(
    client: Client, fake: FakeMastodon, tmp_path: Path
) -> None:
    await first_poll(fake)
    fake.notifications += [
        mention(2, QUESTION, "public", acct="citizen@other.example"),
        mention(3, QUESTION, "direct", acct="neighbour"),
    ]

    posts = await fake.wait_posts(2)
    bodies = sorted((body for _, body in posts), key=lambda b: b["in_reply_to_id"])
    public, direct = bodies
    assert public["visibility"] == "unlisted"
    assert public["in_reply_to_id"] == "117000000000000002"
    assert public["status"].startswith("@citizen@other.example Pay online or at the litigation")
    assert direct["visibility"] == "direct"
    assert direct["status"].startswith("@neighbour Pay online or at the litigation")
    assert {headers["Idempotency-Key"] for headers, _ in posts} == {
        "civicdesk-mastodon-1",
        "civicdesk-mastodon-2",
    }
    assert count_rows(tmp_path / "d.db", "inbox") == 2  # not the one from before


async def test_a_webhook_request_to_a_polling_channel_stores_nothing(
    client: Client, tmp_path: Path
) -> None:
    response = await client.post("/webhooks/mastodon", json={"text": "hi"})
    assert response.status == 401
    assert count_rows(tmp_path / "d.db", "inbox") == 0
