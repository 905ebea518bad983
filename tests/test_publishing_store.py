"""Announcements in the database (SQLite and PostgreSQL): queued as outbox rows of kind
"announcement", due at their time; the post's id and link recorded; replies under a post tied
to its announcement (counted per period, found for a ticket's page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.platform.messages import InboundMessage
from bot.publishing.announcement import parse_announcement
from bot.publishing.fitting import fit_for_channel
from bot.storage.store import Store

LINK = "https://court.example.gov.cn/notice/42"


async def test_queued_posts_are_due_at_their_time_and_replies_count_for_their_announcement(
    store: Store,
) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    announcement = parse_announcement(
        {
            "title": "立案时间调整",
            "body": "周六上午增设预约立案。",
            "link": LINK,
            "channels": ["mastodon", "weibo"],
            "at": at.isoformat(),
        },
        ZoneInfo("Asia/Shanghai"),
    )
    fitted = [fit_for_channel(announcement, c, c) for c in announcement.channels]
    number, queued = await store.queue_announcement(announcement, fitted, created_by="cli")
    assert [post.channel for post in queued] == ["mastodon", "weibo"]
    assert await store.claim_outbox("w", 10, 30) == [], "not due before its time"

    mastodon_post = queued[0].outbox_id
    await store.record_post(mastodon_post, "111", "https://social.example/@court/111")
    await store.accept(
        [
            InboundMessage("mastodon", "201", "201", "u1", "周六几点开门？", True, reply_to="111"),
            InboundMessage("mastodon", "202", "202", "u2", "别的问题", True, reply_to="999"),
            # The same id on another channel is another post.
            InboundMessage("weibo", "203", "111", "u3", "评论", True, reply_to="111"),
        ]
    )
    [state] = await store.list_announcements()
    assert (state.id, state.title, state.questions) == (number, "立案时间调整", 1)
    assert state.examples == ("周六几点开门？",)
    posts = {post.channel: post for post in state.posts}
    assert posts["mastodon"].url == "https://social.example/@court/111"
    assert posts["weibo"].status == "pending" and posts["weibo"].url is None
    later = await store.list_announcements(since=datetime.now(UTC) + timedelta(days=1))
    assert later[0].questions == 0, "counted in the period the question came"

    inbox = await store.claim_inbox("w", 10, 30)
    by_id = {row.platform_id: row.id for row in inbox}
    assert await store.announcement_of_message(by_id["201"]) == (number, "立案时间调整", LINK)
    assert await store.announcement_of_message(by_id["202"]) is None
    assert await store.announcement_of_message(by_id["203"]) is None
