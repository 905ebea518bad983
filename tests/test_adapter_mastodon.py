"""The Mastodon adapter on its own: recorded mention notifications as messages, polling with a
cursor against a fake instance, rate limits, replies with their visibility, and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fake_mastodon import (
    FIXTURES,
    TOKEN,
    FakeMastodon,
    fake_mastodon,
    mention,
    recorded_mention,
    sse_notifications,
)

from adapters import ADAPTERS
from adapters.mastodon import MastodonAdapter
from adapters.mastodon_text import addressed, html_to_text, mention_message, rate_limit_wait
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import TEXT_RULES, Poller, PollFailed, RawRequest, Unauthorized
from bot.platform.lengths import mastodon_length
from bot.platform.messages import OutboundMessage

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z; the fake's X-RateLimit-Reset is 300 s later
Api = tuple[FakeMastodon, str, aiohttp.ClientSession]


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with fake_mastodon() as fake, aiohttp.ClientSession() as session:
        yield fake, fake.base, session


def connected(api: Api, token: str = TOKEN, **options: Any) -> MastodonAdapter:
    _, url, session = api
    adapter = MastodonAdapter("mastodon", Secret(token), url, clock=lambda: NOW, **options)
    adapter.attach_session(session)
    return adapter


# --- parsing --------------------------------------------------------------------------------


def test_the_recorded_mention_is_a_public_question() -> None:
    message = mention_message("mastodon", recorded_mention())
    assert message is not None
    assert message.text == "hello!"
    assert message.public is True
    assert (message.platform_id, message.conversation) == ("117020577157693549",) * 2
    assert (message.sender, message.sender_name) == ("117020565693913441", "admin")
    assert message.mention == "@admin"  # the public answer starts with it
    assert message.reply_to is None and message.lang_hint == "en"
    assert json.loads(message.reply_context or "") == {"visibility": "public", "acct": "admin"}


def test_the_streamed_mentions_public_and_direct() -> None:
    public, direct = (mention_message("mastodon", n) for n in sse_notifications())
    assert public is not None and direct is not None
    assert public.text == "beep beep I'm a jeep" and public.public is True
    assert direct.text == "pssssst!" and direct.public is False
    assert direct.reply_to == "117024236559579118"
    assert json.loads(direct.reply_context or "")["visibility"] == "direct"
    # The core addresses public answers only; a direct answer is addressed by the adapter.
    assert (public.mention, direct.mention) == ("@admin", None)


def test_a_display_name_is_for_staff_and_the_mention_is_the_full_handle() -> None:
    notification = mention(5, "<p>@<span>desk</span> 诉讼费？</p>", acct="citizen@other.example")
    notification["status"]["account"]["display_name"] = "王小明"
    message = mention_message("mastodon", notification)
    assert message is not None
    assert (message.sender_name, message.mention) == ("王小明", "@citizen@other.example")


def test_html_becomes_text_with_line_breaks_and_entities() -> None:
    html = (
        '<p><span class="h-card"><a href="https://x.example/@desk" class="u-url mention">'
        "@<span>desk</span></a></span> Fees &amp; refunds?<br>Case 12</p><p>See "
        '<a href="https://court.example.gov/fees"><span class="invisible">https://</span>'
        '<span class="">court.example.gov/fees</span></a> &lt;ok&gt;</p>'
    )
    assert html_to_text(html) == (
        "@desk Fees & refunds?\nCase 12\n\nSee https://court.example.gov/fees <ok>"
    )
    notification = mention(5, "<p>@<span>desk</span> @<span>clerk@gov.example</span> 诉讼费？</p>")
    assert (message := mention_message("mastodon", notification)) and message.text == "诉讼费？"


def test_other_notifications_and_bots_are_skipped() -> None:
    follow = {**recorded_mention(), "type": "follow", "status": None}
    bot = mention(6, "<p>hi</p>")
    bot["status"]["account"]["bot"] = True
    assert mention_message("mastodon", follow) is None
    assert mention_message("mastodon", bot) is None


def test_webhook_requests_are_refused_because_the_channel_polls() -> None:
    adapter = MastodonAdapter("mastodon", Secret(TOKEN), "https://x.example")
    raw = RawRequest("POST", "/webhooks/mastodon", {}, {}, b"{}")
    assert adapter.handshake(raw) is None
    with pytest.raises(Unauthorized, match="polls"):
        adapter.verify(raw)


def test_the_instance_address_is_required() -> None:
    base = {"CIVICDESK_CHANNELS": "mastodon", "CIVICDESK_MASTODON_ACCESS_TOKEN": TOKEN}
    with pytest.raises(ConfigError, match="CIVICDESK_MASTODON_API_BASE is missing"):
        read_channels(base, ["mastodon"], ADAPTERS)
    wrong = {**base, "CIVICDESK_MASTODON_API_BASE": "mastodon.social"}
    (config,) = read_channels(wrong, ["mastodon"], ADAPTERS)
    with pytest.raises(ConfigError, match=r"CIVICDESK_MASTODON_API_BASE='mastodon\.social'"):
        ADAPTERS["mastodon"].build(config)
    environ = {**base, "CIVICDESK_MASTODON_API_BASE": "https://social.example/"}
    (config,) = read_channels(environ, ["mastodon"], ADAPTERS)
    adapter = ADAPTERS["mastodon"].build(config)
    assert isinstance(adapter, MastodonAdapter) and adapter.api_base == "https://social.example"


# --- polling --------------------------------------------------------------------------------


async def test_the_first_poll_starts_from_now_and_the_cursor_round_trips(api: Api) -> None:
    fake, _, _ = api
    fake.notifications.append(mention(21, "<p>old question</p>"))
    adapter = connected(api)
    assert isinstance(adapter, Poller)

    first = await adapter.poll(None)
    assert (first.messages, first.cursor) == ([], "21")

    fake.notifications += [mention(22, "<p>first?</p>"), mention(23, "<p>second?</p>", "direct")]
    second = await adapter.poll(first.cursor)
    assert [m.text for m in second.messages] == ["first?", "second?"]
    assert [m.public for m in second.messages] == [True, False]
    assert second.cursor == "23" and second.retry_after is None
    assert fake.gets[-1]["min_id"] == "21"
    assert (await adapter.poll(second.cursor)).messages == []


async def test_many_new_mentions_are_paged_oldest_first(api: Api) -> None:
    fake, _, _ = api
    fake.notifications += [mention(n, f"<p>q{n}</p>") for n in range(100, 190)]
    result = await connected(api).poll("99")
    assert [m.text for m in result.messages] == [f"q{n}" for n in range(100, 190)]
    assert [q["min_id"] for q in fake.gets] == ["99", "139", "179"]
    assert result.cursor == "189"


async def test_a_spent_rate_limit_waits_until_the_reset(api: Api) -> None:
    fake, _, _ = api
    fake.remaining = "0"
    fake.notifications.append(mention(30, "<p>q</p>"))
    result = await connected(api).poll("29")
    assert len(result.messages) == 1 and result.retry_after == 300.0
    assert rate_limit_wait({"X-RateLimit-Remaining": "12"}) is None


async def test_a_refused_token_fails_the_poll_with_what_to_fix(api: Api) -> None:
    with pytest.raises(PollFailed, match="read:notifications"):
        await connected(api, token="wrong").poll("1")


async def test_an_unreachable_instance_fails_the_poll() -> None:
    async with aiohttp.ClientSession() as session:
        adapter = MastodonAdapter("mastodon", Secret(TOKEN), "http://127.0.0.1:1", timeout=2)
        adapter.attach_session(session)
        with pytest.raises(PollFailed):
            await adapter.poll("1")


# --- replies --------------------------------------------------------------------------------


def reply(text: str, visibility: str, public: bool, acct: str = "citizen@other.example") -> Any:
    return OutboundMessage(
        id=42,
        channel="mastodon",
        conversation="117024236559579118",
        text=text,
        public=public,
        recipient="9",
        reply_to="117024236559579118",
        reply_context=json.dumps({"visibility": visibility, "acct": acct}),
    )


@pytest.mark.parametrize(
    ("asked", "public", "setting", "answered"),
    [
        ("public", True, "unlisted", "unlisted"),
        ("public", True, "public", "public"),
        ("unlisted", True, "public", "unlisted"),
        ("private", False, "unlisted", "direct"),
        ("direct", False, "public", "direct"),
    ],
)
async def test_the_answer_follows_the_question_s_visibility(
    api: Api, asked: str, public: bool, setting: str, answered: str
) -> None:
    fake, _, _ = api
    adapter = connected(api, public_visibility=setting)
    text = "@citizen@other.example Pay online." if public else "Pay online."
    result = await adapter.send(reply(text, asked, public))
    assert result.ok and result.platform_id == "117024236635443611"
    ((headers, body),) = fake.posts
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Idempotency-Key"] == "civicdesk-mastodon-42"
    assert body == {
        "status": "@citizen@other.example Pay online.",
        "visibility": answered,
        "in_reply_to_id": "117024236559579118",
    }


def test_the_recorded_direct_reply_has_the_same_shape() -> None:
    recorded = json.loads((FIXTURES / "status_post_direct_reply.json").read_text("utf-8"))
    form = dict(part.split("=") for part in recorded["request"]["body_form_urlencoded"].split("&"))
    assert set(form) == {"status", "in_reply_to_id", "visibility"}
    assert form["status"].startswith("%40mastodonpy_test+")


def test_an_added_handle_never_takes_a_reply_over_the_limit() -> None:
    rules = TEXT_RULES["mastodon"]
    text = "诉" * 495
    fitted = addressed(text, "someone@far.example", rules)
    assert fitted.startswith("@someone@far.example ") and fitted.endswith("…")
    assert mastodon_length(fitted) <= 500
    assert addressed("short", "someone@far.example", rules) == "@someone@far.example short"
    assert addressed("@someone@far.example hi", "someone@far.example", rules).count("@") == 2


def test_mastodon_counts_links_as_23_and_remote_handles_locally() -> None:
    text = "@citizen@other.example 诉讼费 fees 👍🏽 https://court.example.gov/fees/very/long/path"
    assert mastodon_length(text) == len("@citizen 诉讼费 fees 👍🏽 ") - 1 + 23


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after", "says"),
    [
        (429, {"Retry-After": "30"}, True, 30.0, "429"),
        (429, {"X-RateLimit-Reset": "2023-11-14T22:18:20Z"}, True, 300.0, "429"),
        (503, {}, True, None, "503"),
        (422, {}, False, None, "Validation failed"),
        (404, {}, False, None, "deleted"),
        (403, {}, False, None, "write:statuses"),
    ],
)
async def test_errors_are_classified(
    api: Api,
    status: int,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
    says: str,
) -> None:
    fake, _, _ = api
    fake.answer = (status, {"error": "Validation failed: Text is too long"}, headers)
    result = await connected(api).send(reply("@citizen hi", "public", True, "citizen"))
    assert (result.ok, result.retryable, result.retry_after) == (False, retryable, retry_after)
    assert says in (result.error or "") and TOKEN not in (result.error or "")


# --- Issue 12: the account's mention links anywhere, media ------------------------------------

OWN = '<span class="h-card" translate="no"><a href="http://localhost:3000/@mastodonpy_test" class="u-url mention">@<span>mastodonpy_test</span></a></span>'  # noqa: E501 - the recorded link
CLERK = '<span class="h-card"><a href="https://gov.example/@clerk" class="u-url mention">@<span>clerk</span></a></span>'  # noqa: E501


def with_content(html: str, *, clerk: bool = False, **status: Any) -> dict[str, Any]:
    """The recorded Mastodon.py mention with another content (and the clerk mentioned too)."""
    notification = recorded_mention()
    notification["status"]["content"] = html
    if clerk:
        notification["status"]["mentions"].append(
            {"id": "42", "username": "clerk", "url": "https://gov.example/@clerk", "acct": "clerk"}
        )
    notification["status"].update(status)
    return notification


def test_the_accounts_mention_in_the_middle_is_taken_out() -> None:
    message = mention_message("mastodon", with_content(f"<p>请问 {OWN} 诉讼费怎么交</p>"))
    assert message is not None and message.text == "请问 诉讼费怎么交"


def test_with_several_mentions_only_the_accounts_own_is_taken_out() -> None:
    html = f"<p>Can {CLERK} or {OWN} tell me the fee?</p>"
    own_id = recorded_mention()["status"]["mentions"][0]["id"]
    message = mention_message("mastodon", with_content(html, clerk=True), own_id)
    assert message is not None and message.text == "Can @clerk or tell me the fee?"


def test_a_mention_with_only_a_picture_is_a_message_with_its_kind() -> None:
    picture = {"id": "1", "type": "image", "url": "https://files.example/1.png"}
    message = mention_message(
        "mastodon", with_content(f"<p>{OWN}</p>", media_attachments=[picture])
    )
    assert message is not None and (message.text, message.media) == ("", "image")


async def test_the_account_is_learnt_from_the_mentions_every_notification_carries(
    api: Api,
) -> None:
    # The first mention names the clerk too; the second only the account: from then on the
    # account's id is known and only its own link is taken out of a status naming both.
    fake, _, _ = api
    adapter = connected(api)
    cursor = (await adapter.poll(None)).cursor
    both = mention(40, f"<p>Can {CLERK} or {OWN} help?</p>")
    both["status"]["mentions"].append(
        {"id": "42", "username": "clerk", "url": "https://gov.example/@clerk", "acct": "clerk"}
    )
    alone = mention(41, f"<p>{OWN} hello</p>")
    again = mention(42, f"<p>Can {CLERK} or {OWN} tell me the fee?</p>")
    again["status"]["mentions"] = both["status"]["mentions"]
    fake.notifications += [both, alone, again]
    texts = [m.text for m in (await adapter.poll(cursor)).messages]
    assert texts[1:] == ["hello", "Can @clerk or tell me the fee?"]
