"""Publishing for real: `civicdesk serve` with five channels pointed at fake platforms (port 0,
their documented APIs), an announcement queued with `civicdesk publish`, replies under the posts,
`civicdesk report`; and `kill -9` in the middle of publishing, then a restart.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_publishing import (
    CHANNEL_USERNAME,
    LINK_IN_SAMPLE,
    MATRIX_ROOM,
    Fakes,
    channel_environment,
    fake_platforms,
    mastodon_reply,
    weibo_comment_on,
)
from serve_support import ServeProcess, civicdesk, free_port, serve_environment, sqlite_rows

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).parent / "fixtures" / "announcements" / "filing-hours.yaml"
CHANNELS = ["weibo", "mastodon", "telegram", "matrix", "email"]
# The smallest PNG: a 1x1 transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
TITLE = "关于调整立案窗口服务时间的公告"


def announcement_file(folder: Path, *, image: bool = True) -> Path:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["channels"] = CHANNELS
    if image:
        (folder / "hours.png").write_bytes(PNG)
        data["image"] = "hours.png"
    path = folder / "announcement.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def environment(fakes: Fakes, database: Path, **settings: str) -> dict[str, str]:
    environ = serve_environment(f"sqlite+aiosqlite:///{database}", "http://127.0.0.1:9")
    for key in [k for k in environ if k.startswith("CIVICDESK_WEBHOOK_")]:
        del environ[key]
    return {
        **environ,
        **channel_environment(fakes, imap_port=free_port()),
        "CIVICDESK_POLL_INTERVAL": "0.3",
        **settings,
    }


async def publish(environ: dict[str, str], folder: Path, path: Path) -> dict[str, Any]:
    status, out, err = await civicdesk(environ, folder, "publish", str(path), "--json")
    assert status == 0, err
    queued: dict[str, Any] = json.loads(out)
    return queued


def posts_of(database: Path) -> dict[str, tuple[Any, ...]]:
    rows = sqlite_rows(
        database,
        "SELECT p.channel, o.status, p.platform_id, p.url, o.last_error, o.attempts"
        " FROM announcement_post p JOIN outbox o ON o.id = p.outbox_id",
    )
    return {row[0]: row[1:] for row in rows}


async def test_an_announcement_reaches_five_platforms_and_its_replies_are_answered_and_counted(
    tmp_path: Path,
) -> None:
    database = tmp_path / "civicdesk.db"
    async with fake_platforms() as fakes:
        environ = environment(fakes, database)
        server = ServeProcess(environ, tmp_path)
        try:
            await server.start()
            queued = await publish(environ, tmp_path, announcement_file(tmp_path))
            assert [post["channel"] for post in queued["posts"]] == CHANNELS
            await fakes.wait(lambda: all(fakes.count(c) for c in CHANNELS), "five posts")
            await asyncio.sleep(1.0)  # a second post, if any, would come now

            async def recorded() -> bool:
                return all(row[2] for row in posts_of(database).values())

            for _ in range(50):
                if await recorded():
                    break
                await asyncio.sleep(0.2)
            posts = posts_of(database)
            assert {c: row[0] for c, row in posts.items()} == dict.fromkeys(CHANNELS, "sent")
            assert {c: fakes.count(c) for c in CHANNELS} == dict.fromkeys(CHANNELS, 1)
            check_documented_requests(fakes, posts)

            # Replies under the posts: a Mastodon reply (a mention with in_reply_to_id) and a
            # Weibo comment that does not @ the account.
            our_status = posts["mastodon"][1]
            our_weibo = posts["weibo"][1]
            fakes.mastodon_mentions.append(
                mastodon_reply(900, our_status, "周六可以去立案吗？需要预约吗？")
            )
            fakes.weibo_comments_to_me.append(
                weibo_comment_on("5300000000000001", our_weibo, "周六立案需要提前预约吗？")
            )
            await fakes.wait(
                lambda: fakes.replies.get("mastodon") and fakes.replies.get("weibo"),
                "the answers in both threads",
            )
            [mastodon_answer] = fakes.replies["mastodon"]
            assert mastodon_answer["in_reply_to_id"] == str(117_000_000_000_000_000 + 900)
            [weibo_answer] = fakes.replies["weibo"]
            assert weibo_answer["path"] == "/2/comments/reply.json"
            assert weibo_answer["cid"] == "5300000000000001"
            assert weibo_answer["id"] == our_weibo

            status, out, err = await civicdesk(environ, tmp_path, "report", "--format", "json")
            assert status == 0, err
            [reach] = json.loads(out)["announcements"]
            assert reach["title"] == TITLE and reach["questions"] == 2
            assert sorted(reach["examples"]) == sorted(
                ["周六可以去立案吗？需要预约吗？", "周六立案需要提前预约吗？"]
            )
            assert sorted(reach["published_on"]) == sorted(CHANNELS)
            urls = {post["channel"]: post["url"] for post in reach["posts"]}
            assert urls["mastodon"] == f"https://social.example/@court/{our_status}"
            assert urls["weibo"] == f"https://m.weibo.cn/status/{our_weibo}"
            assert urls["telegram"].startswith(f"https://t.me/{CHANNEL_USERNAME}/")
            assert urls["matrix"].startswith(f"https://matrix.to/#/{MATRIX_ROOM}/$event")
            status, text, _ = await civicdesk(environ, tmp_path, "report")
            assert f"     2  #{reach['id']} {TITLE}" in text
        finally:
            await server.stop()


def check_documented_requests(fakes: Fakes, posts: dict[str, tuple[Any, ...]]) -> None:
    """Each platform got the request its API documents for a post with a picture."""
    by_path = {(r.platform, r.path): r for r in fakes.requests}
    share = by_path[("weibo", "/2/statuses/share.json")]
    assert LINK_IN_SAMPLE in share.fields["status"] and share.fields["rip"] == "203.0.113.7"
    assert share.files["pic"] == ("image/png", PNG)
    media = by_path[("mastodon", "/api/v2/media")]
    assert media.files["file"] == ("image/png", PNG)
    status = next(r for r in fakes.requests if r.path == "/api/v1/statuses")
    assert status.fields["visibility"] == "public"
    assert LINK_IN_SAMPLE in status.fields["status"]
    # The picture was processed (206, then 200) before the status named it.
    [media_id] = status.fields["media_ids"]
    checks = [r for r in fakes.requests if r.path == f"/api/v1/media/{media_id}"]
    assert len(checks) == 2
    assert fakes.requests.index(checks[-1]) < fakes.requests.index(status)
    assert status.headers["Idempotency-Key"].startswith("civicdesk-mastodon-")
    photo = next(r for r in fakes.requests if r.path.endswith("/sendPhoto"))
    assert photo.fields["chat_id"] == f"@{CHANNEL_USERNAME}" and photo.files["photo"][1] == PNG
    assert len(photo.fields["caption"]) <= 1024 and LINK_IN_SAMPLE in photo.fields["caption"]
    upload = by_path[("matrix", "/_matrix/media/v3/upload")]
    assert upload.files["body"] == ("image/png", PNG)
    [event] = fakes.posts["matrix"]
    assert event["room"] == MATRIX_ROOM and event["msgtype"] == "m.image"
    assert event["url"].startswith("mxc://") and LINK_IN_SAMPLE in event["body"]
    [mail] = fakes.mail
    assert mail["To"] == "news@lists.court.example.gov.cn" and mail["Subject"] == TITLE
    assert LINK_IN_SAMPLE in mail.get_content()
    assert posts["email"][1] == mail["Message-ID"]


async def test_kill_9_mid_publish_then_restart_posts_each_channel_once(tmp_path: Path) -> None:
    database = tmp_path / "civicdesk.db"
    async with fake_platforms() as fakes:
        fakes.hold = asyncio.Event()  # every post arrives, none is answered: all in flight
        fakes.mail_hold = threading.Event()
        environ = environment(fakes, database, CIVICDESK_LEASE_SECONDS="21")
        server = ServeProcess(environ, tmp_path)
        try:
            await server.start()
            await publish(environ, tmp_path, announcement_file(tmp_path))
            await fakes.wait(lambda: all(fakes.count(c) for c in CHANNELS), "five posts")
            in_flight = {c: row[0] for c, row in posts_of(database).items()}
            server.kill()
            assert await server.wait() == -9
            assert in_flight == dict.fromkeys(CHANNELS, "sending")
            fakes.hold.set()
            fakes.mail_hold.set()

            await server.start()  # the same database; the killed claims expire after 21 s

            async def finished() -> bool:
                return all(row[0] in ("sent", "dead") for row in posts_of(database).values())

            for _ in range(300):
                if await finished():
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # a second post, if any, would come now
            posts = posts_of(database)
        finally:
            await server.stop()
    # Each platform has the announcement exactly once.
    assert {c: fakes.count(c) for c in CHANNELS} == dict.fromkeys(CHANNELS, 1)
    # Mastodon and Matrix were sent again under the same key and gave back the first post;
    # Weibo found its post in the account's timeline; Telegram and e-mail keep no key, so the
    # doubtful post is a dead letter for staff to check rather than a second post.
    status = {c: row[0] for c, row in posts.items()}
    assert status == {
        "weibo": "sent",
        "mastodon": "sent",
        "matrix": "sent",
        "telegram": "dead",
        "email": "dead",
    }
    assert posts["mastodon"][1] == fakes.posts["mastodon"][0]["id"]
    assert posts["weibo"][1] == fakes.posts["weibo"][0]["id"]
    assert all(row[4] == 2 for row in posts.values())
    assert "cannot say whether it was posted" in posts["telegram"][3]
    print(
        f"\nkill -9 mid-publish: posts per platform {[fakes.count(c) for c in CHANNELS]}, "
        f"outbox {status}"
    )
