"""/admin/announcements: write an announcement, preview each channel's text with its count and
limit, publish it (queued in the outbox, one post per channel), behind the same sign-in and
CSRF guard as every /admin page."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path

from admin_support import SHARED_PASSWORD, Client, csrf_token, sign_in
from aiohttp import web
from web_support import SAMPLE_KB, environment, served_app

MakeClient = Callable[[web.Application], Awaitable[Client]]
LINK = "https://court.example.gov.cn/notice/2026/filing-hours"
BODY = "自十二月十五日起，立案窗口周六上午增设预约立案服务。" * 12


async def admin_client(tmp_path: Path, aiohttp_client: MakeClient) -> tuple[Client, Path]:
    database = tmp_path / "admin.db"
    environ = environment(
        database,
        "http://127.0.0.1:9/replies",
        CIVICDESK_CHANNELS="webhook,weibo,mastodon",
        CIVICDESK_WEIBO_ACCESS_TOKEN="weibo-token",
        CIVICDESK_WEIBO_API_BASE="http://127.0.0.1:9",
        CIVICDESK_MASTODON_ACCESS_TOKEN="mastodon-token",
        CIVICDESK_MASTODON_API_BASE="http://127.0.0.1:9",
        CIVICDESK_ADMIN_PASSWORD=SHARED_PASSWORD,
    )
    app, _, _ = await served_app(environ, SAMPLE_KB, workers=False)
    client = await aiohttp_client(app)
    signed = await sign_in(client, "zhang", SHARED_PASSWORD)
    assert signed.status == 303, await signed.text()
    return client, database


def form(token: str, **extra: str) -> list[tuple[str, str]]:
    fields = {
        "csrf": token,
        "title": "关于调整立案窗口服务时间的公告",
        "zh": BODY,
        "en": "",
        "link": LINK,
        "at": "",
        **extra,
    }
    return [*fields.items(), ("channel", "weibo"), ("channel", "mastodon")]


async def test_preview_shows_each_channels_text_count_and_limit_then_publish_queues_it(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client, database = await admin_client(tmp_path, aiohttp_client)
    page = await client.get("/admin/announcements")
    assert page.status == 200
    listing = await page.text()
    # Only the channels that can post are offered: not the webhook.
    assert 'value="weibo"' in listing and 'value="mastodon"' in listing
    assert 'value="webhook"' not in listing

    preview = await client.post("/admin/announcements/preview", data=form(csrf_token(listing)))
    assert preview.status == 200, await preview.text()
    shown = await preview.text()
    counts = dict(re.findall(r"<td>(\w+) \(\w+\)</td><td class=\"num\">(\d+ / \d+)</td>", shown))
    weibo_count, weibo_limit = map(int, counts["weibo"].split(" / "))
    mastodon_count, mastodon_limit = map(int, counts["mastodon"].split(" / "))
    assert weibo_limit == 140 and weibo_count <= 140
    assert mastodon_limit == 500 and mastodon_count <= 500
    texts = [unescape(t) for t in re.findall(r"<pre>(.*?)</pre>", shown, re.DOTALL)]
    assert len(texts) == 2 and all(text.endswith(LINK) for text in texts)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM announcement").fetchone() == (0,)

    published = await client.post(
        "/admin/announcements", data=form(csrf_token(shown)), allow_redirects=False
    )
    assert published.status == 303
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT p.channel, p.text_count, p.text_limit, o.kind, o.status, a.created_by"
            " FROM announcement_post p JOIN outbox o ON o.id = p.outbox_id"
            " JOIN announcement a ON a.id = p.announcement_id ORDER BY p.id"
        ).fetchall()
    assert rows == [
        ("weibo", weibo_count, 140, "announcement", "pending", "zhang"),
        ("mastodon", mastodon_count, 500, "announcement", "pending", "zhang"),
    ]
    listed = await (await client.get("/admin/announcements?done=queued")).text()
    assert "关于调整立案窗口服务时间的公告" in listed and "Queued" in listed


async def test_a_wrong_announcement_is_shown_again_with_the_reason_and_nothing_queued(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client, database = await admin_client(tmp_path, aiohttp_client)
    token = csrf_token(await (await client.get("/admin/announcements")).text())
    answer = await client.post("/admin/announcements", data=form(token, link="not a link"))
    assert answer.status == 400
    assert "link" in await answer.text()
    forged = await client.post("/admin/announcements", data=form("not-the-token"))
    assert forged.status == 403
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
