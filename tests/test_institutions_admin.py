"""/admin with two institutions: an institution's operator sees only its tickets and dead
letters (another's are "not found", acting on them is refused, nothing of them in lists or
counts) and not the report across channels; a coordinator sees all, narrowed by
?institution=NAME; without a session nothing is shown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from admin_support import CASE_QUESTION, csrf_token, sign_in
from aiohttp import web
from aiohttp.test_utils import TestClient
from web_support import SECRET, SMALL_KB, served_app

from bot.admin.passwords import hash_password
from bot.config.institutions import load_institutions
from bot.config.settings import Settings
from bot.gateway.institutions import InstitutionDesks, handle_routed
from bot.platform.adapter import rules_for
from bot.platform.messages import InboundMessage
from bot.storage.admin_queries import AdminStore
from bot.storage.store import Store
from bot.tickets.handoff import Handoff

Client = TestClient[web.Request, web.Application]
PASSWORD = "a-password-long-enough"


@dataclass(frozen=True)
class Seeded:
    refs: dict[str, list[str]]  # institution -> its tickets' references
    dead: dict[str, int]  # institution -> a dead-lettered reply's id


def _environ(tmp_path: Path) -> dict[str, str]:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "own.yaml").write_text(
            f"topic: Own\nentries:\n  - id: {name}-only\n    questions:\n"
            f"      en: [where is office {name}]\n    answer:\n      en: Here.\n",
            encoding="utf-8",
        )
    (tmp_path / "institutions.yaml").write_text(
        f"shared: {SMALL_KB}\ninstitutions:\n"
        "  - {name: a, knowledge: a, prefix: AA, channels: [webhook]}\n"
        "  - {name: b, knowledge: b, prefix: BB, channels: [hook-b]}\n",
        encoding="utf-8",
    )
    return {
        "CIVICDESK_CHANNELS": "webhook,hook-b",
        "CIVICDESK_INSTITUTIONS": str(tmp_path / "institutions.yaml"),
        "CIVICDESK_WEBHOOK_SECRET": SECRET,
        "CIVICDESK_WEBHOOK_OUTBOUND_URL": "http://127.0.0.1:9/a",
        "CIVICDESK_HOOK_B_ADAPTER": "webhook",
        "CIVICDESK_HOOK_B_SECRET": SECRET,
        "CIVICDESK_HOOK_B_OUTBOUND_URL": "http://127.0.0.1:9/b",
        "CIVICDESK_ADMIN_PASSWORD": "the-shared-password-of-the-office",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}",
    }


async def _seed(environ: dict[str, str]) -> Seeded:
    """Two escalated questions per institution, answered by the pipeline as workers would; the
    first acknowledgement of each dead-lettered; three operators."""
    settings = Settings.from_env({"CIVICDESK_KNOWLEDGE": str(SMALL_KB), **environ})
    institutions = load_institutions(settings, environ)
    desks = InstitutionDesks.build(settings, institutions, Handoff())
    store = await Store.open(settings.database_url)
    try:
        await store.accept([
            InboundMessage(channel, f"{channel}-{n}", f"{channel}-c{n}", f"u{n}",
                           CASE_QUESTION, False)
            for channel in ("webhook", "hook-b") for n in range(2)
        ])  # fmt: skip
        await handle_routed(await store.claim_inbox("seed", 100, 30), desks.route, rules_for, store)
        refs: dict[str, list[str]] = {"a": [], "b": []}
        for ticket in await store.find_tickets():
            refs["a" if ticket.channel == "webhook" else "b"].append(ticket.reference)
        dead: dict[str, int] = {}
        for row in await store.claim_outbox("seed", 100, 30):
            name = "a" if row.channel == "webhook" else "b"
            if name not in dead:
                await store.mark_dead(row.id, "HTTP 503")
                dead[name] = row.id
            else:
                await store.mark_sent(row.id, None)
        admins = AdminStore(store)
        await admins.add_operator("a-op", hash_password(PASSWORD), "a")
        await admins.add_operator("b-op", hash_password(PASSWORD), "b")
        await admins.add_operator("boss", hash_password(PASSWORD))
    finally:
        await store.close()
    assert all(r.startswith("AA-") for r in refs["a"]) and len(refs["a"]) == 2
    assert all(r.startswith("BB-") for r in refs["b"]) and len(refs["b"]) == 2
    return Seeded(refs, dead)


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> tuple[Client, Seeded]:
    environ = _environ(tmp_path)
    seeded = await _seed(environ)
    app, _, _ = await served_app(environ, SMALL_KB, workers=False)
    return await aiohttp_client(app), seeded


async def _as(client: Client, name: str) -> None:
    client.session.cookie_jar.clear()
    response = await sign_in(client, name, PASSWORD)
    assert response.status == 303, await response.text()


def _found(page: str) -> int:
    match = re.search(r"(\d+) found", page)
    assert match, page
    return int(match.group(1))


async def test_an_institutions_operator_sees_only_its_own(served: tuple[Client, Seeded]) -> None:
    client, seeded = served
    for own, other in (("a", "b"), ("b", "a")):
        await _as(client, f"{own}-op")
        for query in (
            "",
            f"?institution={other}",
            "?q=-",
            f"?channel={'hook-b' if own == 'a' else 'webhook'}",
        ):
            page = await (await client.get(f"/admin/tickets{query}")).text()
            assert not any(ref in page for ref in seeded.refs[other]), query
            assert _found(page) == (0 if "channel=" in query else 2), query
        page = await (await client.get("/admin/tickets")).text()
        assert all(ref in page for ref in seeded.refs[own])
        assert 'name="institution"' not in page  # an institution's operator has no such filter
        # Another's ticket: not found, and acting on it is refused and changes nothing.
        ref = seeded.refs[other][0]
        assert (await client.get(f"/admin/tickets/{ref}")).status == 404
        token = csrf_token(await (await client.get(f"/admin/tickets/{seeded.refs[own][0]}")).text())
        acted = await client.post(
            f"/admin/tickets/{ref}/close", data={"csrf": token, "text": "x"}, allow_redirects=False
        )
        assert acted.status == 404
        deliveries = await (await client.get("/admin/deliveries")).text()
        assert f"#{seeded.dead[own]}" in deliveries and f"#{seeded.dead[other]}" not in deliveries
        retried = await client.post(
            f"/admin/deliveries/{seeded.dead[other]}/retry",
            data={"csrf": token},
            allow_redirects=False,
        )
        assert retried.status == 409
        assert (await client.get("/admin/report")).status == 403
        assert (await client.get("/admin/institutions")).status == 403
    # Nothing B's operator tried was done: A's ticket is still open, its dead letter still dead.
    await _as(client, "a-op")
    page = await (await client.get(f"/admin/tickets/{seeded.refs['a'][0]}")).text()
    assert "closed" not in page.split("<h1", 1)[1].split("</h1>", 1)[0].lower()
    assert f"#{seeded.dead['a']}" in await (await client.get("/admin/deliveries")).text()


async def test_a_coordinator_sees_all_and_filters_by_institution(
    served: tuple[Client, Seeded],
) -> None:
    client, seeded = served
    await _as(client, "boss")
    page = await (await client.get("/admin/tickets")).text()
    assert _found(page) == 4 and all(r in page for refs in seeded.refs.values() for r in refs)
    assert '<option value="b">b</option>' in page  # the institution filter is offered
    narrowed = await (await client.get("/admin/tickets?institution=b")).text()
    assert _found(narrowed) == 2 and not any(r in narrowed for r in seeded.refs["a"])
    assert (await client.get(f"/admin/tickets/{seeded.refs['b'][0]}")).status == 200
    assert (await client.get("/admin/report")).status == 200
    report = await client.get("/admin/institutions")
    assert report.status == 200
    cells = re.findall(r"<tr><td>([ab])</td><td class=n>(\d+)</td>", await report.text())
    assert cells == [("a", "2"), ("b", "2")]  # two questions each, today


async def test_without_a_session_nothing_is_shown(served: tuple[Client, Seeded]) -> None:
    client, seeded = served
    paths = ("/admin/tickets", f"/admin/tickets/{seeded.refs['a'][0]}", "/admin/institutions")
    for path in (*paths, "/admin/deliveries"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and "/admin/signin" in response.headers["Location"]
        assert seeded.refs["a"][0] not in await response.text()
