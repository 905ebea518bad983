"""The server as platforms and operators meet it, through aiohttp's test server: the real app,
the real Store on a SQLite file, real workers, and a receiving system on port 0."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from web_support import (
    SMALL_KB,
    Receiver,
    count_rows,
    environment,
    event,
    served_app,
    signed_post,
    start_receiver,
)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake, server = await start_receiver()
    yield fake, str(server.make_url("/replies"))
    await server.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "civicdesk.db"


@pytest.fixture
async def client(aiohttp_client: Any, receiver: tuple[Receiver, str], database: Path) -> Client:
    app, _, _ = await served_app(
        environment(database, receiver[1], CIVICDESK_MAX_BODY_BYTES="65536"), SMALL_KB
    )
    result: Client = await aiohttp_client(app)
    return result


async def post(client: Client, body: bytes, headers: dict[str, str], channel: str = "webhook"):  # type: ignore[no-untyped-def]
    return await client.post(f"/webhooks/{channel}", data=body, headers=headers)


async def test_a_signed_message_is_stored_answered_and_the_reply_posted_signed(
    client: Client, receiver: tuple[Receiver, str], database: Path
) -> None:
    fake, _ = receiver
    body = event("evt-1", "How do I pay the court fee?", conversation="case-7")

    response = await post(client, body, signed_post(body))

    assert response.status == 200, await response.text()
    assert await response.json() == {"ok": True}
    (reply,) = await fake.wait_for(1)
    assert reply["conversation"] == "case-7"
    assert reply["recipient"] == "u-1"
    assert reply["reply_to"] == "evt-1"
    assert reply["public"] is False
    assert reply["text"].startswith("Pay online or at the litigation service centre.")
    assert fake.headers[0]["Idempotency-Key"] == str(reply["id"])
    assert fake.bad_signatures == 0
    assert count_rows(database, "inbox") == 1


async def test_a_redelivered_event_is_stored_and_answered_once(
    client: Client, receiver: tuple[Receiver, str], database: Path
) -> None:
    fake, _ = receiver
    body = event("evt-2", "How do I pay the court fee?")

    # The platform retries before it saw our 200, and again after.
    first, second = await asyncio.gather(
        post(client, body, signed_post(body)), post(client, body, signed_post(body))
    )
    third = await post(client, body, signed_post(body))

    assert [first.status, second.status, third.status] == [200, 200, 200]
    await fake.wait_for(1)
    await _settled(database)
    assert len(fake.replies) == 1
    assert count_rows(database, "inbox") == 1


async def test_an_escalated_question_gets_an_acknowledgement_with_a_reference(
    client: Client, receiver: tuple[Receiver, str], database: Path
) -> None:
    fake, _ = receiver
    body = event("evt-3", "我的案子什么时候开庭，法官是谁")

    assert (await post(client, body, signed_post(body))).status == 200

    (reply,) = await fake.wait_for(1)
    with sqlite3.connect(database) as connection:
        (reference,) = connection.execute("SELECT reference FROM escalation").fetchone()
    assert reference in reply["text"]


async def _settled(database: Path, timeout: float = 5.0) -> None:
    """Wait until nothing is left to answer or deliver."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            (busy,) = connection.execute(
                "SELECT (SELECT count(*) FROM inbox WHERE status IN ('new','claimed'))"
                " + (SELECT count(*) FROM outbox WHERE status IN ('pending','sending'))"
            ).fetchone()
        if busy == 0:
            await asyncio.sleep(0.2)  # a duplicate, if any, would be on its way now
            return
        await asyncio.sleep(0.05)
    raise AssertionError("work still pending")


def _forged(body: bytes) -> dict[str, str]:
    return {**signed_post(body), "X-Civicdesk-Signature": "sha256=" + "0" * 64}


def _unsigned(body: bytes) -> dict[str, str]:
    headers = signed_post(body)
    del headers["X-Civicdesk-Signature"]
    return headers


def _stale(body: bytes) -> dict[str, str]:
    # Correctly signed, but an hour ago: only the replay window refuses it.
    return signed_post(body, at=time.time() - 3600)


def _other_secret(body: bytes) -> dict[str, str]:
    return signed_post(body, secret="not-the-channel-secret")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (_forged, "does not match"),
        (_other_secret, "does not match"),
        (_unsigned, "missing X-Civicdesk-Signature"),
        (_stale, "away from the server's clock"),
    ],
)
async def test_forged_and_stale_requests_get_401_and_nothing_is_stored(
    client: Client, database: Path, headers: Callable[[bytes], dict[str, str]], reason: str
) -> None:
    body = event("evt-4", "How do I pay the court fee?")

    response = await post(client, body, headers(body))

    assert response.status == 401
    assert reason in (await response.json())["error"]
    assert count_rows(database, "inbox") == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": "x", "conversation": ', "not valid JSON"),
        (b'{"id": 7, "conversation": "c", "text": "hi"}', '"id" must be a string'),
        (b'{"id": "7", "text": "hi"}', '"conversation" is missing'),
    ],
)
async def test_malformed_json_gets_400_saying_why_and_nothing_is_stored(
    client: Client, database: Path, body: bytes, reason: str
) -> None:
    response = await post(client, body, signed_post(body))

    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_an_oversized_body_gets_413_and_nothing_is_stored(
    client: Client, database: Path
) -> None:
    body = event("evt-5", "诉" * 40_000)  # 120 KB of UTF-8, over the 64 KiB configured

    declared = await post(client, body, signed_post(body))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = await client.post("/webhooks/webhook", data=chunks(), headers=signed_post(body))

    assert declared.status == 413
    assert "larger than 65536 bytes" in (await declared.json())["error"]
    assert streamed.status == 413
    assert count_rows(database, "inbox") == 0


async def test_an_unknown_channel_gets_404_and_nothing_is_stored(
    client: Client, database: Path
) -> None:
    body = event("evt-6", "How do I pay the court fee?")

    response = await post(client, body, signed_post(body), channel="telegram")

    assert response.status == 404
    assert "CIVICDESK_CHANNELS" in (await response.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_a_get_on_a_channel_without_a_handshake_is_405(client: Client) -> None:
    response = await client.get("/webhooks/webhook")

    assert response.status == 405
    assert response.headers["Allow"] == "POST"


async def test_a_database_error_gets_503_so_the_platform_retries(
    aiohttp_client: Any, receiver: tuple[Receiver, str], database: Path
) -> None:
    # No workers: nothing else writes while the table is taken away under the running store.
    app, _, _ = await served_app(environment(database, receiver[1]), SMALL_KB, workers=False)
    client: Client = await aiohttp_client(app)
    with sqlite3.connect(database, timeout=10) as connection:
        connection.execute("ALTER TABLE inbox RENAME TO inbox_elsewhere")
    body = event("evt-7", "How do I pay the court fee?")

    response = await post(client, body, signed_post(body))

    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert "retry later" in (await response.json())["error"]


async def test_health_and_readiness(client: Client) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert health.status == 200
    assert ready.status == 200
    detail = await ready.json()
    assert detail["ready"] is True
    assert detail["database"] == {"ok": True}
    assert detail["knowledge"]["ok"] is True
    assert detail["knowledge"]["entries"] == 3
    assert detail["knowledge"]["reload_error"] is None


async def test_metrics_are_valid_prometheus_text(
    client: Client, receiver: tuple[Receiver, str]
) -> None:
    body = event("evt-8", "How do I pay the court fee?")
    await post(client, body, signed_post(body))
    await post(client, body, signed_post(body))
    bad = event("evt-9", "x")
    await post(client, bad, {**signed_post(bad), "X-Civicdesk-Signature": "sha256=00"})
    await receiver[0].wait_for(1)
    await asyncio.sleep(0.1)

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
    assert (
        samples[("civicdesk_messages_in_total", (("channel", "webhook"), ("result", "new")))] == 1
    )
    duplicate = (("channel", "webhook"), ("result", "duplicate"))
    assert samples[("civicdesk_messages_in_total", duplicate)] == 1
    rejected = (("channel", "webhook"), ("status", "401"))
    assert samples[("civicdesk_requests_rejected_total", rejected)] == 1
    decided = (("channel", "webhook"), ("decision", "answer"))
    assert samples[("civicdesk_decisions_total", decided)] == 1
    sent = (("channel", "webhook"), ("result", "sent"))
    assert samples[("civicdesk_messages_out_total", sent)] == 1
    assert samples[("civicdesk_match_seconds_count", (("channel", "webhook"),))] == 1
    assert samples[("civicdesk_delivery_seconds_count", (("channel", "webhook"),))] == 1
    assert samples[("civicdesk_queue_depth", (("queue", "outbox_dead"),))] == 0
    assert samples[("civicdesk_escalations_open", ())] == 0


async def test_the_web_chat_round_trip(client: Client) -> None:
    question = {
        "id": "msg-0001",
        "conversation": "conv-0001",
        "text": "How do I pay the court fee?",
    }

    sent = await client.post("/webhooks/webchat", json=question)
    polled = await client.get(
        "/chat/api/replies", params={"conversation": "conv-0001", "after": "0", "wait": "10"}
    )

    assert sent.status == 200
    assert polled.status == 200
    (reply,) = (await polled.json())["replies"]
    assert reply["text"].startswith("Pay online")
    assert reply["reply_to"] == "msg-0001"
    later = await client.get(
        "/chat/api/replies",
        params={"conversation": "conv-0001", "after": str(reply["seq"]), "wait": "0.1"},
    )
    assert (await later.json())["replies"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (
            json.dumps({"id": "msg-0002", "conversation": "conv-0002", "text": "hi"}),
            "text/plain",
            "Content-Type",
        ),
        (
            json.dumps({"id": "m", "conversation": "conv-0002", "text": "hi"}),
            "application/json",
            '"id"',
        ),
        (
            json.dumps({"id": "msg-0002", "conversation": "conv-0002", "text": " "}),
            "application/json",
            '"text"',
        ),
        (
            json.dumps({"id": "msg-0002", "conversation": "c/../x", "text": "hi"}),
            "application/json",
            '"conversation"',
        ),
    ],
)
async def test_the_web_chat_refuses_malformed_questions(
    client: Client, database: Path, body: str, content_type: str, reason: str
) -> None:
    response = await client.post(
        "/webhooks/webchat", data=body, headers={"Content-Type": content_type}
    )

    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert count_rows(database, "inbox") == 0


async def test_the_chat_page_is_served_with_a_strict_policy(client: Client) -> None:
    page = await client.get("/chat")
    script = await client.get("/chat/chat.js")
    missing = await client.get("/chat/secrets.txt")

    assert page.status == 200
    html = await page.text()
    assert 'data-channel="webchat"' in html
    assert '<label for="question">' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert script.status == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "innerHTML" not in await script.text()
    assert missing.status == 404


async def test_the_chat_page_is_off_without_the_webchat_channel(
    aiohttp_client: Any, receiver: tuple[Receiver, str], database: Path
) -> None:
    environ = environment(database, receiver[1], CIVICDESK_CHANNELS="webhook")
    app, _, _ = await served_app(environ, SMALL_KB, workers=False)
    client: Client = await aiohttp_client(app)

    response = await client.get("/chat")

    assert response.status == 404
    assert "add webchat to CIVICDESK_CHANNELS" in (await response.json())["error"]
