"""The adapters' `publish` against the fake platforms, attempt by attempt: what a retry after a
crash (a publication in doubt) does on each platform, and Weibo's comments on its own posts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fake_publishing import (
    LINK_IN_SAMPLE,
    MASTODON_TOKEN,
    TELEGRAM_TOKEN,
    WEIBO_TOKEN,
    WEIBO_UID,
    Fakes,
    fake_platforms,
    weibo_comment_on,
)

from adapters.mastodon import MastodonAdapter
from adapters.telegram import TelegramAdapter
from adapters.weibo import WeiboAdapter
from bot.config.settings import Secret
from bot.platform.messages import Publication

TEXT = (
    f"关于调整立案窗口服务时间的公告\n\n自十二月十五日起调整立案窗口服务时间。…\n\n{LINK_IN_SAMPLE}"
)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[Fakes, aiohttp.ClientSession]]:
    async with fake_platforms() as platforms, aiohttp.ClientSession() as session:
        yield platforms, session


def weibo(fakes: Fakes, session: aiohttp.ClientSession) -> WeiboAdapter:
    adapter = WeiboAdapter(
        "weibo", Secret(WEIBO_TOKEN), api_base=fakes.bases["weibo"], user_id=WEIBO_UID
    )
    adapter.attach_session(session)
    return adapter


def publication(number: int, *, in_doubt: bool = False) -> Publication:
    return Publication(
        id=number,
        channel="x",
        text=TEXT,
        link=LINK_IN_SAMPLE,
        attempt=2 if in_doubt else 1,
        in_doubt=in_doubt,
    )


async def test_weibo_in_doubt_finds_its_post_in_its_timeline_instead_of_posting_again(
    fakes: tuple[Fakes, aiohttp.ClientSession],
) -> None:
    platforms, session = fakes
    adapter = weibo(platforms, session)
    first = await adapter.publish(publication(7))
    assert first.ok and first.url == f"https://m.weibo.cn/status/{first.platform_id}"
    # Weibo shows the link as a t.cn link; the text is still recognised.
    assert "t.cn" in platforms.weibo_own[0]["text"]
    again = await adapter.publish(publication(7, in_doubt=True))
    assert (again.ok, again.platform_id) == (True, first.platform_id)
    assert platforms.count("weibo") == 1
    # Another text, not in the timeline: posted. (Weibo itself refuses the same text twice in a
    # row, so a text is what identifies a post there.)
    other = await adapter.publish(
        Publication(id=8, channel="weibo", text=TEXT.replace("十五", "十六"), in_doubt=True)
    )
    assert other.ok and other.platform_id != first.platform_id and platforms.count("weibo") == 2


async def test_telegram_in_doubt_is_a_dead_letter_not_a_second_post(
    fakes: tuple[Fakes, aiohttp.ClientSession],
) -> None:
    platforms, session = fakes
    adapter = TelegramAdapter(
        "news",
        Secret(TELEGRAM_TOKEN),
        Secret("s"),
        api_base=platforms.bases["telegram"],
        publish_to="@court_news",
    )
    adapter.attach_session(session)
    posted = await adapter.publish(publication(3))
    assert posted.ok and posted.url == "https://t.me/court_news/1"
    doubtful = await adapter.publish(publication(3, in_doubt=True))
    assert not doubtful.ok and not doubtful.retryable
    assert "cannot say whether it was posted" in (doubtful.error or "")
    assert platforms.count("telegram") == 1
    [call] = [r for r in platforms.requests if r.platform == "telegram"]
    assert call.path.endswith("/sendMessage") and call.fields["chat_id"] == "@court_news"


async def test_mastodon_sends_again_under_the_same_key_and_gets_the_first_status(
    fakes: tuple[Fakes, aiohttp.ClientSession],
) -> None:
    platforms, session = fakes
    adapter = MastodonAdapter("mastodon", Secret(MASTODON_TOKEN), platforms.bases["mastodon"])
    adapter.attach_session(session)
    first = await adapter.publish(publication(11))
    again = await adapter.publish(publication(11, in_doubt=True))
    assert first.ok and (again.platform_id, again.url) == (first.platform_id, first.url)
    assert platforms.count("mastodon") == 1
    keys = {r.headers["Idempotency-Key"] for r in platforms.requests if r.path.endswith("statuses")}
    assert keys == {"civicdesk-mastodon-11"}


async def test_weibo_polls_comments_on_its_own_posts_and_an_old_cursor_goes_on_from_comments(
    fakes: tuple[Fakes, aiohttp.ClientSession],
) -> None:
    platforms, session = fakes
    adapter = weibo(platforms, session)
    platforms.weibo_comments_to_me += [
        weibo_comment_on("4000", "3000", "旧评论"),  # before the cursor: already seen
        weibo_comment_on("6000", "3000", "周六可以立案吗？"),
    ]
    old_cursor = json.dumps({"statuses": "1", "comments": "5000"})  # saved before to_me
    result = await adapter.poll(old_cursor)
    [message] = result.messages
    assert (message.platform_id, message.conversation, message.reply_to) == ("6000", "3000", "3000")
    assert message.public and message.text == "周六可以立案吗？"
    assert json.loads(result.cursor or "") == {"statuses": "1", "comments": "5000", "to_me": "6000"}
    again = await adapter.poll(result.cursor)
    assert again.messages == []
