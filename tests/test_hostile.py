"""What a hostile tester found (issue 11), each case as it was sent, and the defences that cover
its whole class: one validated parser for query parameters and headers, the group commit's
per-row fallback, readiness on a full disk, escaped log lines, the /admin sign-in's limits,
per-channel delivery slots, the time limits on a request's head and body, and the cut of long
texts at ingest."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import OPERATOR, OPERATOR_PASSWORD, SHARED_PASSWORD, Client, csrf_token
from aiohttp import web
from test_adapter_slack import adapter as slack
from test_adapter_slack import fixture as slack_fixture
from test_adapter_slack import signed
from test_adapter_telegram import adapter as telegram
from test_adapter_telegram import delivery
from test_adapter_telegram import fixture as telegram_fixture
from test_admin import Admin, make_admin
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

import bot.storage.runner as runner_module
from adapters.http import check_fresh
from bot.gateway.pipeline import handle_batch
from bot.gateway.worker import WorkerConfig
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized, rules_for
from bot.platform.messages import InboundMessage
from bot.runtime.privacy import MaskingFilter
from bot.storage.engine import StoreUnavailable
from bot.storage.store import Store
from tests.test_worker import DESK, ScriptedAdapter, eventually, inbound, make_workers

MakeClient = Callable[[web.Application], Awaitable[Client]]
# The helpers of the defences are imported in the tests that use them, so that each finding's
# test runs (and fails) against the code from before them.


def arabic_indic_now() -> str:
    """The current unix time in Arabic-Indic digits (which Python's int() takes)."""
    return "".join(chr(0x0660 + int(d)) for d in str(int(time.time())))


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake, server = await start_receiver()
    yield fake, str(server.make_url("/replies"))
    await server.close()


@pytest.fixture
async def client(aiohttp_client: Any, receiver: tuple[Receiver, str], tmp_path: Path) -> Client:
    app, _, _ = await served_app(environment(tmp_path / "civicdesk.db", receiver[1]), SMALL_KB)
    result: Client = await aiohttp_client(app)
    return result


def chat_question(message_id: str, conversation: str, text: str) -> bytes:
    return json.dumps({"id": message_id, "conversation": conversation, "text": text}).encode()


# --- 1. the web chat's query parameters -----------------------------------------------------


async def test_non_finite_and_non_ascii_numbers_in_the_chat_api_get_400_and_polls_still_work(
    client: Client,
) -> None:
    hostile = [
        "wait=nan",
        "wait=inf",
        "wait=-inf",
        "wait=1e23",
        "after=1e23",
        "after=" + "9" * 30,
        "after=-1",
        "after=\u0663",  # Arabic-Indic three: int() would take it
        "after=1_0",
        "wait=" + " " * 10_000 + "1",
    ]
    for query in hostile * 2:  # twenty requests: ten NaN-like waits broke the timers before
        response = await client.get(f"/chat/api/replies?conversation=page-0000001&{query}")
        assert response.status == 400, (query, await response.text())
    long_conversation = await client.get("/chat/api/replies?conversation=" + "a" * 100_000)
    assert long_conversation.status == 400

    # The event loop's timers still work: a question is answered and the long poll returns it.
    posted = await client.post(
        "/webhooks/webchat",
        data=chat_question("m-00000001", "page-0000001", "诉讼费怎么交"),
        headers={"Content-Type": "application/json"},
    )
    assert posted.status == 200
    poll = await client.get("/chat/api/replies?conversation=page-0000001&after=0&wait=10")
    assert poll.status == 200
    assert (await poll.json())["replies"], "the long poll returned no reply"
    assert (await client.get("/readyz")).status == 200


def test_the_one_parser_takes_ascii_digits_in_range_only() -> None:
    from bot.platform.params import BadParameter, bounded_text, decimal, whole_number  # noqa: PLC0415

    assert whole_number(" 42 ", name="n", low=0, high=100) == 42
    assert whole_number(None, name="n", low=0, high=100, default=7) == 7
    assert decimal("2.5", name="w", low=0, high=25) == 2.5
    for bad in ("nan", "inf", "1e3", "٣", "３", "1_0", "0x10", "+-1", "9" * 40):
        with pytest.raises(BadParameter):
            decimal(bad, name="w", low=0, high=10**20)
        with pytest.raises(BadParameter):
            whole_number(bad, name="n", low=0, high=10**18)
    with pytest.raises(BadParameter):
        whole_number("101", name="n", low=0, high=100)
    with pytest.raises(BadParameter):
        bounded_text("a\r\nb", name="t", limit=10)
    assert isinstance(BadParameter("x"), BadRequest)  # the web layer answers 400


# --- 2. a poison message in the group commit ---------------------------------------------------


async def test_a_lone_surrogate_is_refused_alone_and_its_batch_neighbours_are_stored(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.storage.engine import DataRefused  # noqa: PLC0415

    neighbours = [
        InboundMessage("webhook", f"good-{n}", f"c-{n}", "u", f"my phone 1381234{n:04d}", False)
        for n in range(10)
    ]
    poison = InboundMessage("webhook", "poison", "c-p", "u", "bad \ud800 text", False)
    caplog.set_level(logging.DEBUG)
    # All at once, so that they share a group commit.
    results = await asyncio.gather(
        *(store.accept([m]) for m in neighbours[:5]),
        store.accept([poison]),
        *(store.accept([m]) for m in neighbours[5:]),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], DataRefused)
    assert [r for r in results if not isinstance(r, Exception)] == [[True]] * 10
    depths = await store.queue_depths()
    assert depths["inbox_new"] == 10  # the neighbours, and not the poison
    # No citizen's text in any log line (the drivers quote the SQL parameters).
    assert "1381234" not in caplog.text and "bad " not in caplog.text


async def test_a_poison_message_to_the_unsigned_web_chat_gets_400_and_nothing_is_stored(
    client: Client, tmp_path: Path
) -> None:
    body = b'{"id": "m-poison-1", "conversation": "page-0000002", "text": "hi \\ud800"}'
    response = await client.post(
        "/webhooks/webchat", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert count_rows(tmp_path / "civicdesk.db", "inbox") == 0
    good = await client.post(
        "/webhooks/webchat",
        data=chat_question("m-good-0001", "page-0000002", "诉讼费怎么交"),
        headers={"Content-Type": "application/json"},
    )
    assert good.status == 200


# --- 5. non-ASCII digits, malformed forms, report periods ---------------------------------------


def test_timestamp_headers_in_arabic_indic_digits_are_unauthorized_not_a_crash() -> None:
    for timestamp in (
        arabic_indic_now(),
        "１７００００００００",
        "1_700_000_000",
        "9" * 5000,
        "nan",
    ):
        with pytest.raises(Unauthorized):
            check_fresh(timestamp, time.time(), 300, name="X-Slack-Request-Timestamp", fix="-")


async def test_a_signed_looking_request_with_arabic_indic_digits_gets_401(client: Client) -> None:
    body = event("evt-arabic", "诉讼费怎么交")
    headers = signed_post(body)
    headers["X-Civicdesk-Timestamp"] = arabic_indic_now()
    response = await client.post("/webhooks/webhook", data=body, headers=headers)
    assert response.status == 401


def test_slacks_signature_check_refuses_non_ascii_digits() -> None:

    request = signed({"type": "event_callback"})
    headers = {**request.headers, "X-Slack-Request-Timestamp": arabic_indic_now()}
    with pytest.raises(Unauthorized):
        slack(now=time.time()).verify(
            RawRequest(request.method, request.path, {}, headers, request.body)
        )


@pytest.fixture
async def admin(tmp_path: Path, aiohttp_client: MakeClient) -> Admin:
    return await make_admin(tmp_path, aiohttp_client, CIVICDESK_TRUST_PROXY="yes")


async def test_malformed_multipart_and_absurd_report_periods_get_400(admin: Admin) -> None:
    client = admin.client
    await client.get("/admin/signin")
    broken = (
        b'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nx\r\n--b\r\n'
        b"Content-Disposition: form-data; name*=bogus''%ZZ\r\nContent-Type: text/plain; "
        b"charset=no-such-charset\r\n\r\n\xff\xfe\r\n--b"
    )
    response = await client.post(
        "/admin/signin",
        data=broken,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status in (400, 403), await response.text()
    assert (await _sign_in(client, OPERATOR, OPERATOR_PASSWORD)).status == 303
    for since in ("99999999999d", "99999999999h", "0001-01-01", "9999-12-31", "٣d", "x" * 5000):
        report = await client.get("/admin/report", params={"since": since})
        assert report.status == 400, since
    for number in ("\u00b2", "\u0663", "9" * 40, "-1", "nan"):  # "²".isdigit() is true
        listing = await client.get("/admin/tickets", params={"page": number, "q": "x" * 5000})
        assert listing.status == 200, number  # the first page


# --- 6. the /admin sign-in ------------------------------------------------------------------------


async def _sign_in(
    client: Client, name: str, password: str, address: str = "10.0.0.1"
) -> web.StreamResponse:
    headers = {"X-Forwarded-For": address}
    page = await client.get("/admin/signin", headers=headers)
    return await client.post(
        "/admin/signin",
        data={"csrf": csrf_token(await page.text()), "name": name, "password": password},
        headers=headers,
        allow_redirects=False,
    )


async def test_parallel_guesses_are_counted_before_the_password_check(admin: Admin) -> None:
    client = admin.client
    page = await client.get("/admin/signin", headers={"X-Forwarded-For": "10.0.0.66"})
    token = csrf_token(await page.text())

    async def guess(n: int) -> int:
        response = await client.post(
            "/admin/signin",
            data={"csrf": token, "name": OPERATOR, "password": f"guess-{n}"},
            headers={"X-Forwarded-For": "10.0.0.66"},
            allow_redirects=False,
        )
        return response.status

    statuses = await asyncio.gather(*(guess(n) for n in range(30)))
    assert statuses.count(401) == 5  # five were checked, the other 25 never reached scrypt
    assert statuses.count(429) == 25


async def test_signing_out_revokes_the_session_a_copied_cookie_no_longer_works(
    admin: Admin,
) -> None:
    client = admin.client
    assert (await _sign_in(client, OPERATOR, OPERATOR_PASSWORD)).status == 303
    copied = client.session.cookie_jar.filter_cookies(client.make_url("/admin/"))["civicdesk_admin"]
    token = csrf_token(await (await client.get("/admin/tickets")).text())
    assert (await client.post("/admin/signout", data={"csrf": token})).status == 200
    client.session.cookie_jar.clear()  # only the copy is sent
    again = await client.get(
        "/admin/tickets",
        allow_redirects=False,
        headers={"Cookie": f"civicdesk_admin={copied.value}"},
    )
    assert again.status == 303 and again.headers["Location"].startswith("/admin/signin")


async def test_wrong_passwords_from_one_address_do_not_lock_the_operator_elsewhere(
    admin: Admin,
) -> None:
    client = admin.client
    for _ in range(5):
        assert (await _sign_in(client, OPERATOR, "wrong", "10.0.0.7")).status == 401
    assert (await _sign_in(client, OPERATOR, OPERATOR_PASSWORD, "10.0.0.7")).status == 429
    client.session.cookie_jar.clear()
    assert (await _sign_in(client, OPERATOR, OPERATOR_PASSWORD, "10.0.0.8")).status == 303


async def test_a_look_alike_name_cannot_pass_as_an_existing_operator(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.admin.accounts import normalise_name  # noqa: PLC0415

    caplog.set_level(logging.INFO)
    for n, name in enumerate((f"{OPERATOR}\u200b", "l\u0456", "\uff4c\uff49", f"\u2060{OPERATOR}")):
        admin.client.session.cookie_jar.clear()
        response = await _sign_in(admin.client, name, SHARED_PASSWORD, f"10.0.1.{n}")
        assert response.status == 401, name  # it is li's name, and li has a password of its own
    assert normalise_name("l\u0456") == OPERATOR
    assert normalise_name("Иван") == "Иван" and normalise_name("王小明") == "王小明"
    admin.client.session.cookie_jar.clear()
    assert (await _sign_in(admin.client, "wang", SHARED_PASSWORD, "10.0.2.1")).status == 303


async def test_a_failed_sign_in_never_logs_the_name_as_typed(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    typed = "hunter2-Secret-typed-in-the-name-field"
    assert (await _sign_in(admin.client, typed, "x")).status == 401
    assert typed not in caplog.text
    assert "wrong name or password" in caplog.text


# --- 7. one slow platform and the others ----------------------------------------------------------


async def test_a_hanging_channel_cannot_take_the_delivery_slots_of_another(store: Store) -> None:
    hanging = ScriptedAdapter("webhook")
    hanging.block = asyncio.Event()  # accepts and never answers, until the end of the test
    chat = ScriptedAdapter("webchat")
    config = WorkerConfig(poll_interval=0.05, rate_per_second=0, send_timeout=25, lease_seconds=60)
    workers = make_workers(store, hanging, chat, config=config)
    await workers.start()
    try:
        await store.accept([inbound(n) for n in range(100)])  # more than all 64 slots
        await eventually(lambda: len(hanging.attempts) >= 40)
        await asyncio.sleep(0.3)  # the hanging channel has taken all it can
        await store.accept([inbound(1000, channel="webchat")])
        await eventually(lambda: len(chat.delivered) == 1)
        assert not hanging.delivered  # still hanging: the web chat did not wait for it
        assert len(hanging.attempts) <= 48  # its share: all slots but a quarter
    finally:
        hanging.block.set()
        await workers.stop()


# --- 8. a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """SQLite connections of the store with a page limit: past it, "database or disk is full",
    as on a full file system."""
    limit = {"pages": 1_000_000}
    original = runner_module.sqlite_pragmas

    def pragmas(connection: Any, record: Any) -> None:
        original(connection, record)
        connection.execute(f"PRAGMA max_page_count={limit['pages']}")

    monkeypatch.setattr(runner_module, "sqlite_pragmas", pragmas)
    yield limit


async def test_a_full_disk_gives_503_and_readyz_not_ready(
    small_disk: dict[str, int], aiohttp_client: Any, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    database = tmp_path / "civicdesk.db"
    app, _, _ = await served_app(environment(database, receiver[1]), SMALL_KB, workers=False)
    with sqlite3.connect(database) as connection:
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
    small_disk["pages"] = pages + 1
    client = await aiohttp_client(app)
    statuses = []
    for n in range(20):
        body = event(f"evt-full-{n}", "窗户坏了谁来修" * 600)
        statuses.append(
            (await client.post("/webhooks/webhook", data=body, headers=signed_post(body))).status
        )
    assert 503 in statuses and 500 not in statuses, statuses
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert "/" not in json.dumps(await ready.json())  # no path of the server's files


def test_cannot_rollback_after_a_failed_commit_is_still_store_unavailable(tmp_path: Path) -> None:
    database = tmp_path / "r.db"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()
    runner = runner_module.SqliteRunner(f"sqlite+aiosqlite:///{database}")

    def commit_fails(connection: sqlite3.Connection) -> None:
        # What SQLite does when COMMIT finds the disk full: it rolls back by itself, so the
        # ROLLBACK after it fails with "cannot rollback - no transaction is active".
        connection.execute("INSERT INTO t VALUES (1)")
        connection.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StoreUnavailable):
        runner.try_write_inline(commit_fails)
    assert runner.health.problem() is not None
    asyncio.run(runner.close())


# --- 9. slow clients and connection counts --------------------------------------------------------


async def test_at_the_connection_cap_slow_heads_give_way_and_are_cut_off() -> None:
    from bot.gateway.connections import ConnectionGuard, GuardedSite  # noqa: PLC0415

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    guard = ConnectionGuard(max_connections=5, head_timeout=2.0)
    site = GuardedSite(runner, "127.0.0.1", 0, guard)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    opened = []
    try:
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /heal")  # a head that never ends
            opened.append((reader, writer))
        await eventually(lambda: guard.evicted == 3 and guard.open == 5)
        # Every place is held by a slow client: a probe still gets in, in the oldest one's place.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert guard.evicted == 4 and guard.refused == 0
        # The slow ones left are cut off when their head is overdue.
        await eventually(lambda: guard.timed_out == 4 and guard.open == 0)
        for reader, _ in opened:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    finally:
        for _, writer in opened:
            writer.close()
        await runner.cleanup()


def test_running_out_of_descriptors_logs_one_line_per_period_not_one_per_accept() -> None:
    from bot.runtime.logflood import FloodFilter  # noqa: PLC0415

    now = [0.0]
    flood = FloodFilter(every=10, clock=lambda: now[0])
    error = OSError(24, "Too many open files")
    records = []
    for n in range(1000):
        now[0] = n * 0.01
        record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of "
                                   "system resource", None, (OSError, error, None))  # fmt: skip
        if flood.filter(record):
            records.append(record)
    now[0] = 10.5
    later = logging.LogRecord(
        "asyncio", logging.ERROR, __file__, 1, "Too many open files", None, None
    )
    assert flood.filter(later)
    assert len(records) == 1 and "999 more like it" in later.getMessage()
    other = logging.LogRecord("civicdesk", logging.ERROR, __file__, 1, "other", None, None)
    assert flood.filter(other)


# --- 10. log forging and /readyz ------------------------------------------------------------------


def test_a_line_break_in_a_logged_value_cannot_forge_a_log_line() -> None:
    from bot.runtime.privacy import escape_controls  # noqa: PLC0415

    record = logging.LogRecord(
        "civicdesk.web", logging.INFO, __file__, 1, '%s "%s %s"', ("1.2.3.4", "GET",
        "/x\r\n2026-01-01 INFO civicdesk: admin li signed in 13812345678"), None)  # fmt: skip
    assert MaskingFilter().filter(record)
    shown = record.getMessage()
    assert "\n" not in shown and "\r" not in shown and "\\r\\n" in shown
    assert "13812345678" not in shown  # masked as well
    assert escape_controls("a\x1b[2Jb\u2028") == "a\\x1b[2Jb\\u2028"


async def test_a_crlf_in_a_webhook_id_stays_on_one_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    masking = MaskingFilter()  # as `civicdesk serve` installs it on its log handlers
    caplog.handler.addFilter(masking)
    body = event("evt-1\r\nFORGED civicdesk: admin signed in", "诉讼费怎么交")
    try:
        for _ in range(2):  # the second one is logged as a duplicate, with its id
            response = await client.post("/webhooks/webhook", data=body, headers=signed_post(body))
            assert response.status == 200
    finally:
        caplog.handler.removeFilter(masking)
    formatted = [caplog.handler.format(r) for r in caplog.records]
    assert not any(line.startswith("FORGED") for text in formatted for line in text.splitlines())


async def test_readyz_shows_no_paths_or_file_contents_of_a_failed_reload(
    aiohttp_client: Any, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    import shutil  # noqa: PLC0415

    knowledge = tmp_path / "kb"
    shutil.copytree(SMALL_KB, knowledge)
    app, _, holder = await served_app(environment(tmp_path / "c.db", receiver[1]), knowledge)
    client = await aiohttp_client(app)
    secret_line = "internal: the-staff-only-phone-is-here"
    broken = next(knowledge.glob("*.yaml"))
    broken.write_text(f"{secret_line}\n  - [unclosed\n", encoding="utf-8")
    assert holder.reload_now() is False
    detail = json.dumps(await (await client.get("/readyz")).json())
    assert broken.name in detail  # where to look
    assert str(tmp_path) not in detail and secret_line not in detail


# --- 11. long texts ----------------------------------------------------------------------------


async def test_long_slack_and_telegram_texts_are_cut_with_a_marker_stored_and_answered(
    store: Store,
) -> None:

    from bot.platform.messages import MAX_INBOUND_TEXT  # noqa: PLC0415

    mention = slack_fixture("event_callback_app_mention.json")
    mention["event"]["text"] = mention["event"]["text"] + " 诉讼费怎么交" + "啊" * 500_000
    update = telegram_fixture("update_message_private_reply_to.json")
    update["message"]["text"] = "诉讼费怎么交" + "啊" * 100_000
    parsed = [
        *slack(now=time.time()).parse(signed(mention, at=time.time())),
        *telegram().parse(delivery(update)),
    ]
    assert len(parsed) == 2
    assert await store.accept(parsed) == [True, True]
    rows = await store.claim_inbox("test", 10, 30)
    assert len(rows) == 2
    for row in rows:
        assert len(row.text) <= MAX_INBOUND_TEXT
        assert "cut:" in row.text and "characters sent" in row.text

    await handle_batch(rows, DESK, rules_for, store)
    replies = await store.claim_outbox("test", 10, 30)
    assert {r.channel for r in replies} == {parsed[0].channel, parsed[1].channel}


def test_cut_text_keeps_short_texts_and_marks_long_ones() -> None:
    from bot.platform.messages import MAX_INBOUND_TEXT, cut_text  # noqa: PLC0415

    assert cut_text("short") == "short"
    cut = cut_text("x" * 50_000)
    assert len(cut) <= MAX_INBOUND_TEXT and cut.endswith("kept]") and "50000" in cut


async def test_a_body_sent_slower_than_the_limit_gets_408_and_nothing_is_stored(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.gateway.web as web_module  # noqa: PLC0415

    monkeypatch.setattr(web_module, "BODY_TIMEOUT", 0.5)
    body = event("evt-slow-body", "诉讼费怎么交")
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_post(body).items())
    reader, writer = await asyncio.open_connection(client.host, client.port)
    request_line = "POST /webhooks/webhook HTTP/1.1\r\nHost: x\r\n"
    length = f"Content-Length: {len(body)}\r\n"
    writer.write(f"{request_line}{length}{head}\r\n".encode() + body[:10])  # the rest never
    answer = await asyncio.wait_for(reader.read(200), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert count_rows(tmp_path / "civicdesk.db", "inbox") == 0
