"""The Weibo adapter on its own: the fans-service signature and handshake, the push of private
messages, polling mentions against a fake API, replies and Weibo's error codes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_weibo import (
    APP_SECRET,
    OWN_UID,
    TOKEN,
    FakeWeibo,
    comment,
    fake_weibo,
    push_query,
    status,
    text_push,
)

from adapters.weibo import WeiboAdapter
from adapters.weibo_api import mention_message, question_text
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, Poller, PollFailed, RawRequest, Unauthorized
from bot.platform.lengths import weibo_length
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "weibo"
NOW_MS = 1_700_000_000_000
BIG = "9007199254740993"  # 2^53 + 1: a float would make it ...992


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def adapter(url: str = "http://127.0.0.1:1", **options: Any) -> WeiboAdapter:
    options.setdefault("app_secret", Secret(APP_SECRET))
    return WeiboAdapter(
        "weibo",
        Secret(TOKEN),
        api_base=url,
        messages_api_base=url,
        clock=lambda: NOW_MS / 1000,
        timeout=5.0,
        **options,
    )


def request(method: str, query: dict[str, str], body: bytes = b"") -> RawRequest:
    return RawRequest(method, "/webhooks/weibo", query, {}, body)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeWeibo, str, aiohttp.ClientSession]]:
    async with fake_weibo() as (fake, url), aiohttp.ClientSession() as session:
        yield fake, url, session


def connected(api: tuple[FakeWeibo, str, aiohttp.ClientSession], **options: Any) -> WeiboAdapter:
    _, url, session = api
    weibo = adapter(url, **options)
    weibo.attach_session(session)
    return weibo


# --- signature and handshake ---------------------------------------------------------------


@pytest.mark.parametrize("vector", load("signature_vectors.json")["vectors"])
def test_the_documented_signature_vectors_verify(vector: dict[str, str]) -> None:
    weibo = adapter(app_secret=Secret(vector["app_secret"]))
    query = {k: vector[k] for k in ("signature", "timestamp", "nonce")}
    weibo._check_signature(request("POST", query))
    changed = {**query, "nonce": vector["nonce"][:-1] + "0"}
    with pytest.raises(Unauthorized, match="signature does not match"):
        weibo._check_signature(request("POST", changed))


def test_the_handshake_echoes_echostr_verbatim() -> None:
    vector = load("signature_vectors.json")["vectors"][1]
    weibo = adapter(app_secret=Secret(vector["app_secret"]))
    query = dict(
        part.split("=") for part in vector["verification_request"].split("?")[1].split("&")
    )
    reply = weibo.handshake(request("GET", query))
    assert reply is not None
    assert (reply.status, reply.body) == (200, vector["expected_response_body"].encode())


def test_a_forged_handshake_is_refused_and_a_post_is_no_handshake() -> None:
    query = {**push_query("1639017506000"), "echostr": "abc", "signature": "0" * 40}
    with pytest.raises(Unauthorized, match="signature does not match"):
        adapter().handshake(request("GET", query))
    assert adapter().handshake(request("POST", push_query(str(NOW_MS)))) is None
    assert adapter().handshake(request("GET", {})) is None


def test_a_fresh_signed_push_verifies_and_a_stale_or_unsigned_one_does_not() -> None:
    adapter().verify(request("POST", push_query(str(NOW_MS)), text_push("你好")))
    adapter().verify(request("POST", push_query(str(NOW_MS // 1000))))  # seconds work too
    with pytest.raises(Unauthorized, match="away from the server's clock"):
        adapter().verify(request("POST", push_query(str(NOW_MS - 3_600_000))))
    with pytest.raises(Unauthorized, match="required"):
        adapter().verify(request("POST", {}))
    with pytest.raises(Unauthorized, match="APP_SECRET"):
        adapter(app_secret=None).verify(request("POST", push_query(str(NOW_MS))))


# --- push -----------------------------------------------------------------------------------


def test_a_private_text_push_is_a_private_message() -> None:
    (message,) = adapter().parse(request("POST", {}, text_push("诉讼费怎么交？")))
    assert message.public is False
    assert message.text == "诉讼费怎么交？"
    assert (message.sender, message.conversation) == ("2489518277", "2489518277")
    assert message.platform_id.startswith("pm:2489518277:1342433360:")
    assert json.loads(message.reply_context or "") == {"kind": "message"}


def test_a_retried_push_has_the_same_id_and_another_message_another() -> None:
    first = adapter().parse(request("POST", {}, text_push("诉讼费怎么交？")))[0]
    again = adapter().parse(request("POST", {}, text_push("诉讼费怎么交？")))[0]
    other = adapter().parse(request("POST", {}, text_push("怎样申请退费？")))[0]
    assert first.platform_id == again.platform_id != other.platform_id


@pytest.mark.parametrize("name", ["push_event_follow.json", "push_event_subscribe.json"])
def test_events_are_skipped_silently(name: str) -> None:
    assert adapter().parse(request("POST", {}, (FIXTURES / name).read_bytes())) == []


def test_echoes_and_unknown_types_are_skipped_and_garbage_is_a_bad_request() -> None:
    weibo = adapter(user_id=OWN_UID)
    assert weibo.parse(request("POST", {}, text_push("echo", sender=int(OWN_UID)))) == []
    # A mention push (its shape is undocumented: mentions are polled); pictures are messages.
    mention = json.dumps({"type": "mention", "sender_id": 1, "receiver_id": 2}).encode()
    assert weibo.parse(request("POST", {}, mention)) == []
    with pytest.raises(BadRequest):
        weibo.parse(request("POST", {}, b"<xml/>"))
    assert weibo.acknowledge(request("POST", {})).body == b""


# --- polling --------------------------------------------------------------------------------


async def test_the_first_poll_starts_from_now_and_the_cursor_round_trips(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    fake, _, _ = api
    old = status("4199674862603248", "@法院 旧问题")
    fake.statuses.append(old)
    fake.comments.append(comment("4199674862603300", "@法院 旧评论", old))
    weibo = connected(api)
    assert isinstance(weibo, Poller)

    first = await weibo.poll(None)
    assert first.messages == []
    assert json.loads(first.cursor or "") == {
        "statuses": "4199674862603248",
        "comments": "4199674862603300",
    }

    fake.statuses.append(status(BIG, "@法院 诉讼费怎么交？"))
    on = status("4199674862603250", "今天开庭")
    fake.comments.append(comment("4199674862603400", "回复@法院:怎样申请退费", on))
    fake.statuses.append(status("4199674862603260", "@法院 自己发的", uid=OWN_UID))
    second = await weibo.poll(first.cursor)
    mention, reply = second.messages
    assert (mention.platform_id, mention.conversation, mention.text) == (BIG, BIG, "诉讼费怎么交？")
    assert mention.public is True and mention.sender_name == "市民小王"
    assert mention.mention == "@市民小王"  # the comment starts with it: Weibo notifies the asker
    assert json.loads(mention.reply_context or "") == {"kind": "status", "id": BIG}
    assert (reply.platform_id, reply.conversation, reply.reply_to) == (
        "4199674862603400",
        "4199674862603250",
        "4199674862603250",
    )
    assert reply.text == "怎样申请退费"
    assert json.loads(reply.reply_context or "") == {
        "kind": "comment",
        "cid": "4199674862603400",
        "id": "4199674862603250",
    }
    assert json.loads(second.cursor or "") == {"statuses": BIG, "comments": "4199674862603400"}
    assert all(query["access_token"] == TOKEN for _, query in fake.gets)
    assert (await weibo.poll(second.cursor)).messages == []


async def test_more_than_a_page_is_fetched_oldest_first(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    fake, _, _ = api
    fake.statuses.extend(
        status(str(5_000_000_000_000_000 + n), f"@法院 问题{n}") for n in range(450)
    )
    result = await connected(api, user_id=OWN_UID).poll('{"statuses":"0","comments":"0"}')
    assert [m.text for m in result.messages] == [f"问题{n}" for n in range(450)]
    paged = [q for path, q in fake.gets if "statuses" in path]
    assert len(paged) == 3 and "max_id" in paged[1]


async def test_a_poll_refused_for_the_token_says_to_renew_it(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    weibo = WeiboAdapter("weibo", Secret("stale"), api_base=url, user_id=OWN_UID)
    weibo.attach_session(session)
    with pytest.raises(PollFailed, match="CIVICDESK_WEIBO_ACCESS_TOKEN"):
        await weibo.poll(None)


# --- replies --------------------------------------------------------------------------------


def outbound(public: bool, context: dict[str, str], text: str = "@市民小王 可网上缴纳。") -> Any:
    return OutboundMessage(
        id=7,
        channel="weibo",
        conversation=context.get("id", "2489518277"),
        text=text,
        public=public,
        recipient="2489518277",
        reply_context=json.dumps(context),
    )


async def test_a_mention_in_a_status_gets_a_comment(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    fake, _, _ = api
    result = await connected(api, client_ip="211.156.0.1").send(
        outbound(True, {"kind": "status", "id": BIG})
    )
    assert result.ok and result.platform_id == "5315630371706462"
    ((path, _, form),) = fake.posts
    documented = load("comments_create_request.json")["form"]
    assert path == "/2/comments/create.json"
    assert set(documented) <= set(form)
    assert form["id"] == BIG and form["comment"] == "@市民小王 可网上缴纳。"
    assert form["access_token"] == TOKEN and form["rip"] == "211.156.0.1"


async def test_a_mention_in_a_comment_gets_a_reply_to_that_comment(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    fake, _, _ = api
    context = {"kind": "comment", "cid": "4199674862603400", "id": "4199674862603250"}
    assert (await connected(api).send(outbound(True, context))).ok
    ((path, _, form),) = fake.posts
    assert path == "/2/comments/reply.json"
    assert (form["cid"], form["id"]) == ("4199674862603400", "4199674862603250")
    assert form["without_mention"] == "1"  # the text starts with the @mention already


async def test_a_private_message_gets_a_private_reply(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
) -> None:
    fake, _, _ = api
    assert (await connected(api).send(outbound(False, {"kind": "message"}, "纯文本回复"))).ok
    ((path, query, form),) = fake.posts
    documented = load("messages_reply_request.json")["form"]
    assert path == "/2/messages/reply.json" and query == {"access_token": TOKEN}
    assert set(form) == set(documented)
    assert (form["receiver_id"], form["type"]) == ("2489518277", "text")
    assert json.loads(form["data"]) == json.loads(documented["data"])


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "says"),
    [
        ((403, {"error_code": 10023, "error": "User requests out of rate limit!"}), True, 600, ""),
        ((400, {"error_code": 20016, "error": "out of limit"}), True, 60, "too often"),
        ((400, {"error_code": 20019, "error": "repeat content"}), False, None, "same text"),
        ((401, {"error_code": 21327, "error": "expired_token"}), False, None, "ACCESS_TOKEN"),
        ((400, {"error_code": 20101, "error": "target weibo does not exist"}), False, None, ""),
        ((503, {"error_code": 10002, "error": "service unavailable"}), True, None, ""),
        ((502, {}), True, None, "HTTP 502"),
        ((400, {}), False, None, "HTTP 400"),
    ],
)
async def test_errors_are_classified(
    api: tuple[FakeWeibo, str, aiohttp.ClientSession],
    answer: tuple[int, dict[str, Any]],
    retryable: bool,
    retry_after: float | None,
    says: str,
) -> None:
    fake, _, _ = api
    fake.answer = answer
    result = await connected(api).send(outbound(True, {"kind": "status", "id": BIG}))
    assert (result.ok, result.retryable, result.retry_after) == (False, retryable, retry_after)
    assert says in (result.error or "") and TOKEN not in (result.error or "")


async def test_an_unreachable_api_is_retryable() -> None:
    async with aiohttp.ClientSession() as session:
        weibo = adapter("http://127.0.0.1:1")
        weibo.attach_session(session)
        result = await weibo.send(outbound(True, {"kind": "status", "id": BIG}))
    assert not result.ok and result.retryable


# --- text -----------------------------------------------------------------------------------


def test_leading_mentions_are_dropped_from_the_question() -> None:
    assert question_text("@某市法院 @张三 诉讼费怎么交") == "诉讼费怎么交"
    assert question_text("回复@某市法院:谢谢，那退费呢？") == "谢谢，那退费呢？"
    assert question_text("请问 @某市法院 在哪") == "请问 @某市法院 在哪"


def test_weibo_length_counts_ascii_as_half_and_links_as_a_short_link() -> None:
    assert weibo_length("诉讼费怎么交") == 6
    assert weibo_length("court fee") == 5  # 9 ASCII characters: 4.5, rounded up
    assert weibo_length("详见 https://court.example.gov/fees/2024/refund-of-litigation-costs") == 13
    assert weibo_length("@市民小王 ok👍") == 7
    assert weibo_length("汉" * 140) == 140 and weibo_length("汉" * 140 + "a") == 141


# --- Issue 12: the account's @name anywhere, media in private messages ----------------------


def test_the_accounts_name_in_the_middle_is_taken_out() -> None:
    status = {"idstr": "5001", "text": "请问 @政务助手 诉讼费怎么交", "user": {"idstr": "77"}}
    message = mention_message("weibo", "statuses", status, OWN_UID)
    assert message is not None and message.text == "请问 诉讼费怎么交"
    status = {"idstr": "5002", "text": "@李四 和 @政务助手 诉讼费怎么交", "user": {"idstr": "77"}}
    message = mention_message("weibo", "statuses", status, OWN_UID, "政务助手")
    assert message is not None and message.text == "和 诉讼费怎么交"


@pytest.mark.parametrize(
    ("kind", "media"), [("image", "image"), ("voice", "audio"), ("position", "location")]
)
def test_a_picture_voice_or_position_push_is_a_message_with_its_kind(kind: str, media: str) -> None:
    # The push shape of the fans-service docs: {"type", "receiver_id", "sender_id",
    # "created_at", "text", "data": {...}} (PLATFORMS.md, Weibo inbound B).
    push = {
        "type": kind,
        "receiver_id": 2,
        "sender_id": 1,
        "created_at": "Mon Jul 16 18:09:20 +0800 2012",
        "text": "",
        "data": {"vfid": 821804459, "tovfid": 821804469},
    }
    (message,) = adapter(user_id=OWN_UID).parse(request("POST", {}, json.dumps(push).encode()))
    assert (message.text, message.media, message.public) == ("", media, False)
