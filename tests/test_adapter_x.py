"""X: the webhook's CRC and signatures against the recorded vectors (../shared/fixtures/x), OAuth
1.0a against X's documented example, the Account Activity payloads (tests/fixtures/x), replies,
direct messages, posts with and without an image, and polled mentions, all against a fake of X's
API on port 0 that checks every call's OAuth signature."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_x import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    ACCOUNT_ID,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    FakeX,
    fake_x,
)

from adapters.oauth1 import OAuth1Keys, signature
from adapters.x import XAdapter, XPollingAdapter
from bot.config.settings import Secret, read_channels
from bot.platform.adapter import (
    TEXT_RULES,
    BadRequest,
    Poller,
    PollFailed,
    RawRequest,
    Unauthorized,
)
from bot.platform.messages import OutboundMessage, Publication

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "x"
LOCAL = ROOT / "tests" / "fixtures" / "x"
VECTORS = json.loads((SHARED / "webhook_crypto_vectors.json").read_text())
NOW = 1_796_696_000.0


def keys(consumer_secret: str = CONSUMER_SECRET) -> OAuth1Keys:
    return OAuth1Keys(
        CONSUMER_KEY, Secret(consumer_secret), ACCESS_TOKEN, Secret(ACCESS_TOKEN_SECRET)
    )


def adapter(api_base: str = "http://127.0.0.1:9", **kw: Any) -> XAdapter:
    return XAdapter(
        "x",
        keys(kw.pop("consumer_secret", CONSUMER_SECRET)),
        api_base=api_base,
        timeout=2.0,
        clock=lambda: NOW,
        **kw,
    )


def raw(body: bytes = b"", signature_header: str | None = None, **query: str) -> RawRequest:
    headers = {"x-twitter-webhooks-signature": signature_header} if signature_header else {}
    return RawRequest("GET" if query else "POST", "/webhooks/x", query, headers, body)


# --- Webhook: CRC, signatures, payloads ----------------------------------------------------------


def test_the_crc_challenge_is_answered_as_the_recorded_vector() -> None:
    crc = VECTORS["crc_vector"]
    reply = adapter(consumer_secret=crc["consumer_secret"]).handshake(
        raw(crc_token=crc["crc_token"])
    )
    assert reply is not None and reply.status == 200
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == crc["expected_response"]
    assert adapter().handshake(raw(b"{}")) is None  # a delivery is no challenge


def test_the_recorded_signatures_verify_and_a_changed_byte_fails() -> None:
    for vector in VECTORS["signature_vectors"]:
        hook = adapter(consumer_secret=vector["consumer_secret"])
        body = vector["body"].encode()
        hook.verify(raw(body, vector["x-twitter-webhooks-signature"]))
        changed = body[:-1] + bytes([body[-1] ^ 1])
        with pytest.raises(Unauthorized):
            hook.verify(raw(changed, vector["x-twitter-webhooks-signature"]))
        with pytest.raises(Unauthorized, match="missing"):
            hook.verify(raw(body))


def test_oauth_signatures_match_xs_documented_example() -> None:
    # developer.x.com, "Creating a signature": the worked example of POST statuses/update.
    params = {
        "status": "Hello Ladies + Gentlemen, a signed OAuth request!",
        "include_entities": "true",
        "oauth_consumer_key": "xvz1evFS4wEEPTGEFPHBog",
        "oauth_nonce": "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": "1318622958",
        "oauth_token": "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        "oauth_version": "1.0",
    }
    assert (
        signature(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            params,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        )
        == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    )


def test_the_weighted_length_follows_the_recorded_twitter_text_config() -> None:
    config = json.loads((SHARED / "twitter_text_config_v3.json").read_text())
    rules = TEXT_RULES["x"]
    assert rules.limit == config["maxWeightedTweetLength"]
    assert rules.count("a" * 10) == 10 and rules.count("法" * 10) == 20  # CJK weighs 200/100
    assert rules.count("see https://court.example.gov/a/very/long/path/to/fees") == 4 + 23


def test_a_mention_is_a_public_question_without_the_leading_handles() -> None:
    [message] = adapter().parse(raw((LOCAL / "aaa_mention.json").read_bytes()))  # no repost
    assert message.platform_id == message.conversation == "1865000000000000001"
    assert message.text == "How do I pay the court fee?"
    assert message.public and message.mention == "@liwei_citizen"
    assert (message.sender, message.sender_name) == ("6253282", "Li Wei")
    assert message.reply_to == "1864999999999999999" and message.lang_hint == "en"
    assert message.received_at.timestamp() == 1796695800


def test_a_direct_message_is_private_and_its_photo_is_media() -> None:
    [message] = adapter().parse(raw((LOCAL / "aaa_direct_message.json").read_bytes()))
    assert message.platform_id == "dm-1865000000000000101"  # the account's own DM is skipped
    assert (message.conversation, message.sender) == ("6253282", "6253282")
    assert message.text == "这是我的传票" and message.media == "image"  # the t.co link dropped
    assert not message.public and message.sender_name == "Li Wei"


def test_likes_follows_and_other_accounts_deliveries_carry_no_question() -> None:
    assert adapter().parse(raw((LOCAL / "aaa_other_events.json").read_bytes())) == []
    other = adapter(user_id="999")
    assert other.parse(raw((LOCAL / "aaa_mention.json").read_bytes())) == []
    with pytest.raises(BadRequest, match="for_user_id"):
        adapter().parse(raw(b'{"tweet_create_events": []}'))


def test_polling_is_only_configured_with_an_interval() -> None:
    environ = {
        "CIVICDESK_X_CONSUMER_KEY": CONSUMER_KEY,
        "CIVICDESK_X_CONSUMER_SECRET": CONSUMER_SECRET,
        "CIVICDESK_X_ACCESS_TOKEN": ACCESS_TOKEN,
        "CIVICDESK_X_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET,
    }
    from adapters import ADAPTERS  # noqa: PLC0415

    [webhook] = read_channels(environ, ["x"], ADAPTERS)
    [polled] = read_channels({**environ, "CIVICDESK_X_POLL_INTERVAL": "60"}, ["x"], ADAPTERS)
    assert not isinstance(ADAPTERS["x"].build(webhook), Poller)
    built = ADAPTERS["x"].build(polled)
    assert isinstance(built, Poller) and built.poll_interval == 60


# --- Out: replies, direct messages, posts ------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeX, str]]:
    async with fake_x() as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def connected(url: str, session: aiohttp.ClientSession, **kw: Any) -> XAdapter:
    hook = adapter(url, **kw)
    hook.attach_session(session)
    return hook


async def test_a_mention_is_answered_in_its_thread_and_a_dm_by_dm(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = connected(url, session)
    [mention] = hook.parse(raw((LOCAL / "aaa_mention.json").read_bytes()))
    [dm] = hook.parse(raw((LOCAL / "aaa_direct_message.json").read_bytes()))

    public = await hook.send(
        OutboundMessage(
            1,
            "x",
            mention.conversation,
            "@liwei_citizen Pay online.",
            True,
            recipient=mention.sender,
            reply_context=mention.reply_context,
        )
    )
    private = await hook.send(
        OutboundMessage(2, "x", dm.conversation, "已收到。", False, recipient=dm.sender)
    )

    assert public.ok and public.platform_id == "1865000000000000901"
    assert private.ok and private.platform_id == "dm-92"
    post, message = fake.calls
    assert (post.method, post.path) == ("POST", "/2/tweets")
    assert post.body == {
        "text": "@liwei_citizen Pay online.",
        "reply": {"in_reply_to_tweet_id": "1865000000000000001"},
    }
    assert (message.method, message.path) == ("POST", "/2/dm_conversations/with/6253282/messages")
    assert message.body == {"text": "已收到。"}


async def test_wrong_keys_and_refusals_are_not_retried_and_rate_limits_wait_for_the_reset(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    wrong = connected(url, session, consumer_secret="not the secret")
    reply = OutboundMessage(3, "x", "1865000000000000001", "Pay online.", True)
    refused = await wrong.send(reply)
    assert not refused.ok and not refused.retryable and "CONSUMER_KEY" in (refused.error or "")
    assert "not the secret" not in (refused.error or "")

    hook = connected(url, session)
    duplicate = {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    fake.answers["/2/tweets"] = [
        web.json_response(duplicate, status=403),
        web.json_response(
            {"title": "Too Many Requests", "status": 429},
            status=429,
            headers={"x-rate-limit-reset": str(int(NOW) + 120)},
        ),
    ]
    twice, limited = await hook.send(reply), await hook.send(reply)
    assert not twice.retryable and "duplicate" in (twice.error or "")
    assert limited.retryable and limited.retry_after == 120


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_an_announcement_is_posted_with_its_image_and_its_link_returned(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = connected(url, session)
    text = "立案时间调整：自12月15日起 https://court.example.gov/n/1"
    publication = Publication(7, "x", text, image=PNG, image_type="image/png")

    result = await hook.publish(publication)

    upload, post = fake.calls
    assert (upload.method, upload.path) == ("POST", "/2/media/upload")
    assert fake.uploads == [("image/png", PNG, "tweet_image")]
    assert post.body == {"text": text, "media": {"media_ids": ["1880028106020515840"]}}
    assert result.ok and result.platform_id == "1865000000000000902"
    assert result.url == "https://x.com/i/web/status/1865000000000000902"


async def test_an_image_x_refuses_leaves_the_text_to_go_out_alone(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = connected(url, session)
    fake.answers["/2/media/upload"] = [
        web.json_response({"title": "Forbidden", "detail": "not permitted"}, status=403)
    ]
    result = await hook.publish(Publication(8, "x", "Notice", image=PNG, image_type="image/png"))
    assert result.ok
    assert [c.path for c in fake.calls] == ["/2/media/upload", "/2/tweets"]
    assert fake.calls[1].body == {"text": "Notice"}

    fake.answers["/2/media/upload"] = [web.json_response({"title": "down"}, status=503)]
    later = await hook.publish(Publication(9, "x", "Notice 2", image=PNG))
    assert not later.ok and later.retryable  # retried whole: the image may go through then
    assert fake.calls[-1].path == "/2/media/upload"


# --- Polled mentions ---------------------------------------------------------------------------


def poller(url: str, session: aiohttp.ClientSession, **kw: Any) -> XPollingAdapter:
    hook = XPollingAdapter(
        "x", keys(), poll_interval=60, api_base=url, timeout=2.0, clock=lambda: NOW, **kw
    )
    hook.attach_session(session)
    return hook


async def test_polling_starts_from_now_then_brings_new_mentions_oldest_first(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = poller(url, session)
    fake.mentions = [
        {
            "data": [
                {"id": "1865000000000000300", "author_id": "6253282", "text": "@CourtDesk old"}
            ],
            "meta": {"newest_id": "1865000000000000300", "result_count": 1},
        },
        json.loads((LOCAL / "v2_mentions_page.json").read_text()),
    ]

    first = await hook.poll(None)
    assert first.messages == [] and first.cursor == '{"since_id":"1865000000000000300"}'
    second = await hook.poll(first.cursor)

    me, start, page = fake.calls
    assert me.path == "/2/users/me"  # no USER_ID: asked once
    assert start.path == page.path == f"/2/users/{ACCOUNT_ID}/mentions"
    assert page.query["since_id"] == "1865000000000000300"
    assert page.query["expansions"] == "author_id"
    assert [m.text for m in second.messages] == [
        "立案需要什么材料？",
        "How do I pay the court fee?",
    ]
    assert [m.mention for m in second.messages] == ["@zhangsan", "@liwei_citizen"]
    assert all(m.public for m in second.messages)
    assert second.messages[1].reply_to == "1864999999999999999"
    assert second.cursor == '{"since_id":"1865000000000000302"}'


async def test_an_account_never_mentioned_starts_from_the_time_polling_began(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = poller(url, session, user_id=ACCOUNT_ID)
    first = await hook.poll(None)
    assert first.cursor == '{"start_time":"2026-12-08T02:13:20Z"}'
    await hook.poll(first.cursor)
    assert fake.calls[-1].query["start_time"] == "2026-12-08T02:13:20Z"


async def test_a_rate_limited_poll_waits_for_the_reset(
    api: tuple[FakeX, str], session: aiohttp.ClientSession
) -> None:
    fake, url = api
    hook = poller(url, session, user_id=ACCOUNT_ID)
    fake.answers[f"/2/users/{ACCOUNT_ID}/mentions"] = [
        web.json_response(
            {"title": "Too Many Requests"},
            status=429,
            headers={"x-rate-limit-reset": str(int(NOW) + 300)},
        )
    ]
    with pytest.raises(PollFailed) as failed:
        await hook.poll('{"since_id":"1"}')
    assert failed.value.retry_after == 300
