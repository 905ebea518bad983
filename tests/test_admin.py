"""/admin through aiohttp's test client: the gate (sign-in, sessions, CSRF, the limit on wrong
passwords), the pages and their forms, escaping of citizen text, and `civicdesk users`."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from admin_support import (
    CASE_QUESTION,
    DEAD_ERROR,
    MARKUP,
    MARKUP_NAME,
    OPERATOR,
    OPERATOR_PASSWORD,
    SHARED_PASSWORD,
    Client,
    Seeded,
    csrf_token,
    form_token,
    seed,
    sign_in,
)
from aiohttp import web
from markupsafe import escape
from web_support import SAMPLE_KB, environment, served_app

from bot.admin.ratelimit import FailureLimiter
from bot.admin.sessions import SessionSigner
from bot.answering.knowledge import load_knowledge
from bot.cli.main import main as cli
from bot.config.settings import ConfigError, Settings
from bot.gateway.reload import KnowledgeHolder

MakeClient = Callable[[web.Application], Awaitable[Client]]
TEMPLATES = Path(__file__).resolve().parents[1] / "bot" / "templates" / "admin"
EXTRA = 30  # tickets beyond the five named ones: two pages of 25


@dataclass
class Admin:
    client: Client
    seeded: Seeded
    database: Path
    app: web.Application
    knowledge: KnowledgeHolder

    def ref(self, conversation: str) -> str:
        return self.seeded.references[conversation]

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as connection:
            return list(connection.execute(sql, args))


async def make_admin(
    tmp_path: Path, aiohttp_client: MakeClient, knowledge: Path = SAMPLE_KB, **env: str
) -> Admin:
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "admin.db"
    seeded = await seed(database, knowledge, extra_tickets=EXTRA)
    settings = {"CIVICDESK_ADMIN_PASSWORD": SHARED_PASSWORD, **env}
    app, _, holder = await served_app(
        environment(database, "http://127.0.0.1:9/replies", **settings), knowledge, workers=False
    )
    return Admin(await aiohttp_client(app), seeded, database, app, holder)


@pytest.fixture
async def admin(tmp_path: Path, aiohttp_client: MakeClient) -> AsyncIterator[Admin]:
    yield await make_admin(tmp_path, aiohttp_client)


@pytest.fixture
async def signed_in(admin: Admin) -> Admin:
    response = await sign_in(admin.client)
    assert response.status == 303, await response.text()
    return admin


def admin_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every /admin route of the app, placeholders filled in."""
    routes = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if not path.startswith("/admin") or "{unknown" in path:
            continue
        path = re.sub(r"\{ref\}", "Q7K2M9", path)
        path = re.sub(r"\{action[^}]*\}", "answer", path)
        path = re.sub(r"\{id[^}]*\}", "1", path)
        path = re.sub(r"\{name[^}]*\}", "admin.css", path)
        routes.append((route.method, path))
    return routes


# --- the gate ------------------------------------------------------------------------------


async def test_without_a_session_every_admin_url_redirects_to_sign_in_or_answers_401(
    admin: Admin,
) -> None:
    routes = admin_routes(admin.app)
    assert ("GET", "/admin/tickets") in routes and (
        "POST",
        "/admin/deliveries/1/retry",
    ) in routes
    public = {"/admin/signin", "/admin/admin.css", "/admin/icon.svg"}
    checked = 0
    for method, path in [*routes, ("GET", "/admin"), ("GET", "/admin/no-such-page")]:
        if path in public or method == "HEAD":
            continue
        response = await admin.client.request(method, path, allow_redirects=False)
        if method == "GET":
            assert response.status == 303, path
            location = urlsplit(response.headers["Location"])
            assert location.path == "/admin/signin", path
            assert parse_qs(location.query)["next"] == [path], path
        else:
            assert response.status == 401, (method, path)
            assert "Sign in first" in await response.text()
        checked += 1
    assert checked >= 12
    as_json = await admin.client.post(
        "/admin/escalations/X/claim", headers={"Accept": "application/json"}
    )
    assert as_json.status == 401 and "error" in await as_json.json()
    assert admin.rows("SELECT count(*) FROM escalation_event WHERE kind = 'claimed'") == [(0,)]


async def test_the_sign_in_page_and_the_stylesheet_need_no_session(admin: Admin) -> None:
    page = await admin.client.get("/admin/signin")
    assert page.status == 200 and 'name="password"' in await page.text()
    css = await admin.client.get("/admin/admin.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_pages_carry_the_security_headers_and_the_cookie_is_locked_down(
    admin: Admin,
) -> None:
    response = await sign_in(admin.client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http here
    for path in ("/admin/signin", "/admin/tickets", "/admin/report"):
        page = await admin.client.get(path)
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'none'" in csp
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    untrusted = await make_admin(tmp_path / "a", aiohttp_client)
    response = await untrusted.client.get("/admin/signin", headers=https)
    assert "Secure" not in response.headers["Set-Cookie"]
    trusted = await make_admin(tmp_path / "b", aiohttp_client, CIVICDESK_TRUST_PROXY="yes")
    response = await trusted.client.get("/admin/signin", headers=https)
    assert "Secure" in response.headers["Set-Cookie"]
    # (This test client speaks plain http, so it rightly keeps a Secure cookie to itself.)


async def test_an_account_or_the_shared_password_signs_in(admin: Admin) -> None:
    assert (await sign_in(admin.client, "zhang", "wrong-password")).status == 401
    response = await sign_in(admin.client, "zhang", SHARED_PASSWORD)
    assert response.status == 303 and response.headers["Location"] == "/admin/tickets"
    page = await admin.client.get("/admin/tickets")
    assert page.status == 200 and "zhang" in await page.text()
    # An account's name signs in with its own password only.
    admin.client.session.cookie_jar.clear()
    assert (await sign_in(admin.client, OPERATOR, SHARED_PASSWORD)).status == 401
    assert (await sign_in(admin.client, OPERATOR, OPERATOR_PASSWORD)).status == 303


async def test_sign_in_goes_back_to_the_page_asked_for_but_never_elsewhere(admin: Admin) -> None:
    for target, landing in [
        ("/admin/deliveries", "/admin/deliveries"),
        ("https://evil.example/admin/", "/admin/tickets"),
        ("//evil.example/admin/", "/admin/tickets"),
    ]:
        admin.client.session.cookie_jar.clear()
        page = await admin.client.get("/admin/signin", params={"next": target})
        response = await admin.client.post(
            "/admin/signin",
            data={
                "csrf": csrf_token(await page.text()),
                "name": OPERATOR,
                "password": OPERATOR_PASSWORD,
                "next": target,
            },
            allow_redirects=False,
        )
        assert response.headers["Location"] == landing


async def test_signing_out_and_removing_the_account_end_the_session(signed_in: Admin) -> None:
    client = signed_in.client
    token = await form_token(client, "/admin/tickets")
    response = await client.post("/admin/signout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    assert (await client.get("/admin/tickets", allow_redirects=False)).status == 303

    assert (await sign_in(client)).status == 303
    assert (await client.get("/admin/tickets", allow_redirects=False)).status == 200
    signed_in.rows("DELETE FROM operator WHERE name = ?", OPERATOR)
    assert (await client.get("/admin/tickets", allow_redirects=False)).status == 303


async def test_a_forged_cookie_is_no_session(admin: Admin) -> None:
    response = await sign_in(admin.client)
    value = response.cookies["civicdesk_admin"].value
    body, mac = value.split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    admin.client.session.cookie_jar.clear()
    admin.client.session.cookie_jar.update_cookies({"civicdesk_admin": forged})
    assert (await admin.client.get("/admin/tickets", allow_redirects=False)).status == 303


def test_a_session_expires() -> None:
    now = [1_000_000.0]
    signer = SessionSigner(b"k" * 32, clock=lambda: now[0])
    cookie = signer.dump(signer.signed_in("li", signer.fingerprint("x")))
    assert signer.load(cookie) is not None
    now[0] += 11 * 3600
    assert signer.load(cookie) is None
    assert SessionSigner(b"j" * 32, clock=lambda: now[0]).load(cookie) is None


async def test_a_form_without_the_csrf_token_is_refused(signed_in: Admin) -> None:
    client, reference = signed_in.client, signed_in.ref("case-1")
    for data in ({"text": "Filed on 20 November."}, {"text": "x", "csrf": "not-the-token"}):
        response = await client.post(f"/admin/escalations/{reference}/answer", data=data)
        assert response.status == 403
        assert "security token" in await response.text()
    retry = await client.post(f"/admin/deliveries/{signed_in.seeded.dead_id}/retry", data={})
    assert retry.status == 403
    assert signed_in.rows("SELECT status FROM escalation WHERE reference = ?", reference) == [
        ("open",)
    ]
    assert signed_in.rows("SELECT count(*) FROM outbox WHERE kind = 'answer'") == [(0,)]
    assert signed_in.rows("SELECT status FROM outbox WHERE id = ?", signed_in.seeded.dead_id) == [
        ("dead",)
    ]
    # The sign-in form is a form too.
    signed_out = await client.post("/admin/signin", data={"name": "li", "password": "x"})
    assert signed_out.status == 403


async def test_the_sixth_wrong_password_in_a_minute_is_refused(admin: Admin) -> None:
    for _ in range(5):
        assert (await sign_in(admin.client, OPERATOR, "wrong-password")).status == 401
    sixth = await sign_in(admin.client, OPERATOR, "wrong-password")
    assert sixth.status == 429
    assert 0 < int(sixth.headers["Retry-After"]) <= 60
    assert "Too many wrong passwords" in await sixth.text()
    # Even the right password waits now: guessing cannot go on.
    assert (await sign_in(admin.client, OPERATOR, OPERATOR_PASSWORD)).status == 429


async def test_wrong_passwords_are_counted_per_account_across_addresses(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    admin = await make_admin(tmp_path, aiohttp_client, CIVICDESK_TRUST_PROXY="yes")
    for n in range(5):
        response = await sign_in(
            admin.client, OPERATOR, "wrong", **{"X-Forwarded-For": f"10.0.0.{n}"}
        )
        assert response.status == 401
    response = await sign_in(admin.client, OPERATOR, "wrong", **{"X-Forwarded-For": "10.0.0.9"})
    assert response.status == 429
    other = await sign_in(admin.client, "wang", SHARED_PASSWORD, **{"X-Forwarded-For": "10.0.0.9"})
    assert other.status == 303  # another name from a fresh address is not held up


def test_failures_age_out_of_the_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=5, window=60, clock=lambda: now[0])
    for _ in range(5):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == 60
    now[0] = 59.5
    assert limiter.retry_after("a") == pytest.approx(0.5)
    now[0] = 60.0
    assert limiter.retry_after("a") is None


# --- escaping ------------------------------------------------------------------------------


def assert_shown_as_text(page: str) -> None:
    assert "<script>" not in page and "<b onmouseover" not in page
    assert '"onmouseover=' not in page
    assert "&lt;script&gt;alert(" in page
    assert "{{ 7*7 }}" in page  # shown as written, never evaluated
    assert "&#34;onmouseover=&#34;alert(1)&#34;" in page or "&quot;onmouseover=" in page


async def test_citizen_markup_shows_as_text_on_the_list_the_ticket_and_the_report(
    signed_in: Admin,
) -> None:
    client = signed_in.client
    listing = await (await client.get("/admin/tickets", params={"q": "<script>"})).text()
    assert sorted(references_in(listing)) == sorted(
        [signed_in.ref("case-2"), signed_in.ref("case-3")]
    )
    assert_shown_as_text(listing)
    assert escape(MARKUP_NAME) in listing
    ticket = await (await client.get(f"/admin/escalations/{signed_in.ref('case-2')}")).text()
    assert_shown_as_text(ticket)
    assert escape(MARKUP) in ticket
    report = await client.get("/admin/report", params={"since": "7d"})
    assert report.status == 200
    text = await report.text()
    assert "<script>" not in text and '"onmouseover=' not in text
    assert "&lt;script&gt;alert(" in text and "7*7" in text


def test_no_template_marks_anything_safe_or_turns_escaping_off() -> None:
    templates = sorted(TEMPLATES.glob("*.html"))
    assert templates
    for template in templates:
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b", source), template.name
        assert "autoescape" not in source, template.name
        assert "Markup" not in source, template.name


# --- the pages -----------------------------------------------------------------------------


def references_in(page: str) -> list[str]:
    return re.findall(r'href="/admin/tickets/([A-Z0-9]+)"', page)


async def test_the_list_filters_searches_and_pages(signed_in: Admin) -> None:
    client = signed_in.client
    first = await (await client.get("/admin/tickets")).text()
    assert f"{EXTRA + 4} found" in first and "page 1 of 2" in first
    assert len(references_in(first)) == 25
    second = await (await client.get("/admin/tickets", params={"page": "2"})).text()
    assert len(references_in(second)) == EXTRA + 4 - 25
    assert not set(references_in(first)) & set(references_in(second))

    search = await (await client.get("/admin/tickets", params={"q": "案件进展"})).text()
    assert references_in(search) == [signed_in.ref("case-1")]
    overdue = await (await client.get("/admin/tickets", params={"overdue": "1"})).text()
    assert references_in(overdue) == [signed_in.ref("case-4")]
    wrong_channel = await client.get("/admin/tickets", params={"channel": "webchat"})
    assert "0 found" in await wrong_channel.text()

    reference = signed_in.ref("case-3")
    token = await form_token(client, f"/admin/escalations/{reference}")
    await client.post(f"/admin/escalations/{reference}/claim", data={"csrf": token})
    by_staff = await client.get("/admin/tickets", params={"staff": OPERATOR})
    assert references_in(await by_staff.text()) == [reference]
    claimed_open = await client.get(
        "/admin/tickets", params={"staff": OPERATOR, "status": "closed"}
    )
    assert references_in(await claimed_open.text()) == []


async def test_a_ticket_is_claimed_noted_and_answered_from_its_page(signed_in: Admin) -> None:
    client, reference = signed_in.client, signed_in.ref("case-1")
    url = f"/admin/escalations/{reference}"
    page = await (await client.get(url)).text()
    assert CASE_QUESTION in page and "opened" in page
    token = csrf_token(page)

    claimed = await client.post(f"{url}/claim", data={"csrf": token})
    assert "You claimed this ticket" in await claimed.text()
    noted = await client.post(f"{url}/note", data={"csrf": token, "text": "called the registry"})
    assert "called the registry" in await noted.text()
    empty = await client.post(f"{url}/answer", data={"csrf": token, "text": "  "})
    assert empty.status == 400
    answered = await client.post(f"{url}/answer", data={"csrf": token, "text": "Filed on 20 Nov."})
    text = await answered.text()
    assert answered.status == 200 and "Answer sent" in text and "Filed on 20 Nov." in text
    again = await client.post(f"{url}/answer", data={"csrf": token, "text": "twice?"})
    assert again.status == 409

    events = signed_in.rows(
        "SELECT kind, actor, e.channel FROM escalation_event e JOIN escalation t "
        "ON t.id = e.escalation_id WHERE t.reference = ? ORDER BY e.id",
        reference,
    )
    assert events[1:] == [
        ("claimed", OPERATOR, "admin"),
        ("note", OPERATOR, "admin"),
        ("answered", OPERATOR, "admin"),
    ]
    assert signed_in.rows(
        "SELECT channel, conversation, text, status FROM outbox WHERE kind = 'answer'"
    ) == [("webhook", "case-1", "Filed on 20 Nov.", "pending")]


async def test_a_ticket_is_closed_with_a_reason_and_an_unknown_one_is_404(
    signed_in: Admin,
) -> None:
    client, reference = signed_in.client, signed_in.ref("case-4")
    token = await form_token(client, f"/admin/escalations/{reference}")
    closed = await client.post(
        f"/admin/escalations/{reference}/close", data={"csrf": token, "text": "Ask at the desk."}
    )
    assert "Ticket closed" in await closed.text()
    assert signed_in.rows("SELECT status, close_reason FROM escalation WHERE reference = ?",
                          reference) == [("closed", "Ask at the desk.")]  # fmt: skip
    assert (await client.get("/admin/escalations/NOSUCH")).status == 404


async def test_dead_letters_are_listed_retried_and_discarded(signed_in: Admin) -> None:
    client, dead_id = signed_in.client, signed_in.seeded.dead_id
    page = await (await client.get("/admin/deliveries")).text()
    assert DEAD_ERROR in page and f"Retry #{dead_id}" in page
    token = csrf_token(page)
    retried = await client.post(f"/admin/deliveries/{dead_id}/retry", data={"csrf": token})
    assert "Queued again" in await retried.text()
    assert signed_in.rows("SELECT status, attempts FROM outbox WHERE id = ?", dead_id) == [
        ("pending", 0)
    ]
    again = await client.post(f"/admin/deliveries/{dead_id}/retry", data={"csrf": token})
    assert again.status == 409

    signed_in.rows("UPDATE outbox SET status = 'dead' WHERE id = ?", dead_id)
    discarded = await client.post(f"/admin/deliveries/{dead_id}/discard", data={"csrf": token})
    text = await discarded.text()
    assert "Discarded" in text and f"Retry #{dead_id}" not in text
    [(status, error)] = signed_in.rows(
        "SELECT status, last_error FROM outbox WHERE id = ?", dead_id
    )
    assert status == "discarded" and f"discarded by {OPERATOR}" in error


async def test_the_knowledge_page_shows_the_state_of_the_faq(signed_in: Admin) -> None:
    page = await (await signed_in.client.get("/admin/knowledge")).text()
    entries = len(load_knowledge(SAMPLE_KB).entries)
    assert (
        f"<dt>Entries serving</dt><dd>{entries}</dd>" in page
        and "Last reload" in page
        and "ok" in page
    )
    # The sample FAQ keeps one entry past its valid_until date, for this.
    assert "Expired entries (1)" in page and "filing-hall-temporary-relocation" in page
    assert "Never matched in the last 30 days" in page
    unused = re.search(r"Never matched in the last 30 days \((\d+)\)", page)
    assert unused is not None
    # case-5 was answered from pay-court-fee: it is not among the unused entries.
    section = page.split("Never matched in the last 30 days")[1]
    assert "<td>pay-court-fee</td>" not in section
    assert "<td>book-appointment-visit</td>" in section


async def test_the_knowledge_page_says_when_a_reload_failed_and_why(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KB, knowledge)
    admin = await make_admin(tmp_path, aiohttp_client, knowledge)
    assert (await sign_in(admin.client)).status == 303
    broken = knowledge / "fees.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "\n  - id: [unclosed\n", "utf-8")
    assert not await admin.knowledge.reload()
    page = await (await admin.client.get("/admin/knowledge")).text()
    assert "failed</span> at" in page and "still serving the version loaded at" in page
    assert "fees.yaml" in page and re.search(r"The files now: [1-9]\d* errors", page)


async def test_the_report_page_shows_the_report_and_refuses_a_bad_period(
    signed_in: Admin,
) -> None:
    page = await signed_in.client.get("/admin/report", params={"since": "7d"})
    text = await page.text()
    assert page.status == 200 and "Report of public concerns" in text and "<svg" in text
    assert "style-src 'self' 'unsafe-inline'" in page.headers["Content-Security-Policy"]
    bad = await signed_in.client.get("/admin/report", params={"since": "<b>soon</b>"})
    assert bad.status == 400 and "&lt;b&gt;soon" in await bad.text()


# --- settings and the command line -------------------------------------------------------


def test_a_short_session_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"CIVICDESK_SESSION_SECRET": "hunter2-hunter2"})
    assert "hunter2" not in str(error.value) and "at least 32" in str(error.value)
    settings = Settings.from_env({"CIVICDESK_ADMIN_PASSWORD": "pw", "CIVICDESK_TRUST_PROXY": "yes"})
    assert "pw" not in repr(settings) and settings.trust_proxy


def test_users_are_added_listed_and_removed_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'users.db'}")
    monkeypatch.chdir(tmp_path)
    typed = iter(["a-long-password", "a-long-password", "a-long-password", "another-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))

    def run(*args: str) -> tuple[int, str]:
        out = StringIO()
        return cli(["users", *args], out), out.getvalue()

    assert run("add", "wang") == (0, "wang: added; they can sign in at /admin\n")
    assert run("add", "zhao")[0] == 1  # the two passwords differ
    status, listed = run("list")
    assert status == 0 and listed.startswith("wang\tadded ")
    with sqlite3.connect(tmp_path / "users.db") as connection:
        [(stored,)] = connection.execute("SELECT password_hash FROM operator").fetchall()
    assert stored.startswith("scrypt$") and "a-long-password" not in stored
    assert run("remove", "wang")[0] == 0
    assert run("remove", "wang")[0] == 1
    assert run("list") == (0, "no operators (civicdesk users add NAME)\n")
