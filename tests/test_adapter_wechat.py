"""The WeChat Official Account channel on its own: the URL check, query signatures and the replay
window, safe mode (AES) against wechatpy's published vectors, the XML messages, and replies
through a fake of WeChat's API that answers as its documentation says."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.wechat import SPEC, WeChatAdapter
from adapters.wechat_crypto import CryptoError, WeChatCrypto
from bot.config.settings import ConfigError, Secret, read_channels
from bot.platform.adapter import TEXT_RULES, BadRequest, RawRequest, Unauthorized
from bot.platform.messages import OutboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
VECTORS = json.loads((FIXTURES / "crypto_vectors.json").read_text(encoding="utf-8"))
AES = VECTORS["aes"]
TOKEN = "civic-token"
APP_ID = "wx0123456789abcdef"
APP_SECRET = "app-secret-never-shown"
NOW = 1_700_000_000


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """Written from WeChat's description, not with the adapter's helper."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def adapter(
    *, now: float = NOW, aes_key: str | None = None, app_id: str = APP_ID, **kw: Any
) -> Any:
    token = AES["token"] if aes_key else TOKEN
    return WeChatAdapter(
        "wechat",
        app_id,
        Secret(APP_SECRET),
        Secret(token),
        Secret(aes_key) if aes_key else None,
        clock=lambda: now,
        **kw,
    )


def post(body: bytes, **query: str) -> RawRequest:
    return RawRequest("POST", "/webhooks/wechat", query, {"Content-Type": "text/xml"}, body)


def signed_post(body: bytes, at: int = NOW, nonce: str = "n1", token: str = TOKEN) -> RawRequest:
    ts = str(at)
    query = {"signature": plain_signature(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    return post(body, openid="fromUser", **query)


# --- The URL check (GET) -----------------------------------------------------------------------


def test_the_url_check_echoes_echostr_when_the_published_signature_holds() -> None:
    vector = VECTORS["plain_url_signature"]
    query = {
        "signature": vector["expected_signature"],
        "timestamp": vector["timestamp"],
        "nonce": vector["nonce"],
        "echostr": "5927782489442352469",
    }
    hook = WeChatAdapter("wechat", APP_ID, Secret("x"), Secret(vector["token"]))

    reply = hook.handshake(RawRequest("GET", "/webhooks/wechat", query, {}, b""))

    assert reply is not None
    assert (reply.status, reply.body, reply.content_type) == (
        200,
        b"5927782489442352469",
        "text/plain",
    )


def test_the_url_check_with_another_token_is_refused() -> None:
    query = {"signature": plain_signature("other", "1", "2"), "timestamp": "1", "nonce": "2"}
    with pytest.raises(Unauthorized, match="signature does not match") as refused:
        adapter().handshake(RawRequest("GET", "/", {**query, "echostr": "abc"}, {}, b""))

    assert refused.value.status == 401
    assert "abc" not in str(refused.value)


def test_requests_without_echostr_are_no_handshake() -> None:
    assert adapter().handshake(RawRequest("GET", "/", {}, {}, b"")) is None
    assert adapter().handshake(signed_post(b"<xml/>")) is None


# --- Plaintext mode: the query signature and the replay window ------------------------------------


def test_a_signed_plaintext_message_is_a_private_question() -> None:
    body = (FIXTURES / "text_message.xml").read_bytes()
    raw = signed_post(body)
    hook = adapter()

    hook.verify(raw)
    (message,) = hook.parse(raw)

    assert message.channel == "wechat"
    assert message.platform_id == "1234567890123456"
    assert message.conversation == message.sender == "fromUser"
    assert message.text == "this is a test"
    assert message.public is False
    assert message.reply_to is None
    assert message.received_at.timestamp() == NOW


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"signature": "0" * 40}, "signature does not match"),
        ({"nonce": "n2"}, "signature does not match"),
        ({"signature": ""}, "signature does not match"),
        ({"timestamp": ""}, "timestamp and nonce are missing"),
        ({"timestamp": "soon"}, "whole seconds"),
        ({"encrypt_type": "aes"}, "ENCODING_AES_KEY"),
    ],
)
def test_forged_or_incomplete_queries_are_unauthorized(change: dict[str, str], reason: str) -> None:
    raw = signed_post(b"<xml/>")
    forged = post(raw.body, **{**raw.query, **change})

    with pytest.raises(Unauthorized, match=reason):
        adapter().verify(forged)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_a_request_outside_the_replay_window_is_refused(age: int) -> None:
    """The body is not signed in plaintext mode: a captured query must not work later."""
    with pytest.raises(Unauthorized, match="at most 300 s"):
        adapter().verify(signed_post(b"<xml/>", at=NOW - age))


def test_a_request_at_the_edge_of_the_window_passes() -> None:
    adapter().verify(signed_post(b"<xml/>", at=NOW - 300))
    adapter(replay_window=30).verify(signed_post(b"<xml/>", at=NOW + 30))


def test_the_subscribe_event_and_other_events_are_skipped() -> None:
    subscribe = (FIXTURES / "event_subscribe.xml").read_bytes()
    location_report = (
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]>"
        b"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]>"
        b"</MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude>"
        b"<Longitude>113.352425</Longitude><Precision>119.385040</Precision></xml>"
    )
    for body in (subscribe, location_report):
        assert adapter().parse(signed_post(body)) == []


def wechat_message(kind: str, inner: str, msg_id: str = "1234567890123456") -> bytes:
    """Shaped as the official account guide's examples of ordinary messages."""
    return (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]>"
        f"</FromUserName><CreateTime>1357290913</CreateTime><MsgType><![CDATA[{kind}]]>"
        f"</MsgType>{inner}" + (f"<MsgId>{msg_id}</MsgId>" if msg_id else "") + "</xml>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (
            wechat_message(
                "image",
                "<PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId>",
            ),
            "image",
        ),
        (
            wechat_message(
                "voice", "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format>"
            ),
            "audio",
        ),
        (
            wechat_message(
                "video",
                "<MediaId><![CDATA[media_id]]></MediaId>"
                "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>",
            ),
            "video",
        ),
        (
            wechat_message(
                "shortvideo",
                "<MediaId><![CDATA[media_id]]></MediaId>"
                "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>",
            ),
            "video",
        ),
        (
            wechat_message(
                "location",
                "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
                "<Scale>20</Scale><Label><![CDATA[位置信息]]></Label>",
            ),
            "location",
        ),
        (
            wechat_message(
                "link",
                "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]>"
                "</Description><Url><![CDATA[url]]></Url>",
            ),
            "file",
        ),
        (
            wechat_message(
                "text", "<Content><![CDATA[【收到不支持的消息类型，暂无法显示】]]></Content>"
            ),
            "unsupported",
        ),
        (
            wechat_message("miniprogrampage", "<Title><![CDATA[x]]></Title>", msg_id=""),
            "unsupported",
        ),
    ],
)
def test_media_and_the_unsupported_placeholder_are_messages_without_text(
    body: bytes, media: str
) -> None:
    (message,) = adapter().parse(signed_post(body))
    assert (message.text, message.media, message.public) == ("", media, False)
    assert message.conversation == "fromUser"


def test_a_voice_message_with_speech_recognition_has_its_words_as_text() -> None:
    body = wechat_message(
        "voice",
        "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format>"
        "<Recognition><![CDATA[诉讼费怎么交]]></Recognition>",
    )
    (message,) = adapter().parse(signed_post(body))
    assert (message.text, message.media) == ("诉讼费怎么交", "audio")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not xml", "not valid XML"),
        (b"<html><MsgType>text</MsgType></html>", "must be <xml>"),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><MsgType>text</MsgType><Content>&a;</Content>'
            b"</xml>",
            "DTD",
        ),
        (
            b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>hi</Content>"
            b"</xml>",
            "<MsgId> is missing",
        ),
        (b"<xml><MsgType>text</MsgType><MsgId>1</MsgId><Content>hi</Content></xml>", "FromUser"),
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        adapter().parse(signed_post(body))


def test_the_acknowledgement_is_success_in_plain_text() -> None:
    reply = adapter().acknowledge(signed_post(b"<xml/>"))

    assert (reply.status, reply.body, reply.content_type) == (200, b"success", "text/plain")


# --- Safe mode (AES) against wechatpy's vectors --------------------------------------------------


def crypto() -> WeChatCrypto:
    return WeChatCrypto(AES["token"], AES["encoding_aes_key"], AES["app_id"])


def encrypted_request(body: bytes | None = None, **change: str) -> RawRequest:
    query = {**VECTORS["decrypt_message"]["query"], "encrypt_type": "aes", **change}
    query["signature"] = plain_signature(AES["token"], query["timestamp"], query["nonce"])
    return post(body or (FIXTURES / "encrypted_message.xml").read_bytes(), **query)


def safe_adapter(app_id: str = AES["app_id"]) -> Any:
    return adapter(now=1411525903, aes_key=AES["encoding_aes_key"], app_id=app_id)


def test_the_published_encrypted_message_verifies_and_parses() -> None:
    raw = encrypted_request()
    hook = safe_adapter()

    hook.verify(raw)
    (message,) = hook.parse(raw)

    assert message.platform_id == "4363689963896700987"
    assert message.conversation == "messense"
    assert message.text == "test"
    assert message.public is False


def test_decrypting_gives_the_recorded_plaintext() -> None:
    sealed = re.search(
        r"<Encrypt><!\[CDATA\[(.*?)\]\]>", (FIXTURES / "encrypted_message.xml").read_text()
    )
    assert sealed is not None

    plain = crypto().decrypt(sealed[1])

    assert plain == (FIXTURES / "encrypted_message.decrypted.xml").read_bytes()


def test_the_encrypted_echostr_vector_decrypts() -> None:
    vector = VECTORS["encrypted_echostr"]
    query = vector["query"]

    assert crypto().check_signature(
        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
    )
    assert crypto().decrypt(query["echostr"]).decode() == vector["expected_decrypted_echostr"]


def test_an_encrypted_reply_matches_the_published_one_byte_for_byte() -> None:
    vector = VECTORS["encrypt_reply"]
    plain = (FIXTURES / "encrypted_reply.plain.xml").read_text(encoding="utf-8")

    sealed = crypto().encrypted_reply(
        plain, vector["nonce"], vector["timestamp"], vector["random_prefix"].encode()
    )

    assert sealed == (FIXTURES / "encrypted_reply.expected.xml").read_text(encoding="utf-8")


def test_sealing_and_opening_round_trip_with_chinese_text() -> None:
    message = "<xml><Content><![CDATA[诉讼费怎么交？😀]]></Content></xml>".encode()

    assert crypto().decrypt(crypto().encrypt(message)) == message


def test_a_changed_byte_in_the_ciphertext_or_signature_is_unauthorized() -> None:
    body = (FIXTURES / "encrypted_message.xml").read_bytes()
    start = body.index(b"<![CDATA[", body.index(b"<Encrypt>")) + len(b"<![CDATA[")
    flipped = body[:start] + (b"S" if body[start : start + 1] != b"S" else b"T") + body[start + 1 :]
    signature = VECTORS["decrypt_message"]["query"]["msg_signature"]

    with pytest.raises(Unauthorized, match="msg_signature does not match"):
        safe_adapter().verify(encrypted_request(flipped))
    with pytest.raises(Unauthorized, match="msg_signature does not match"):
        safe_adapter().verify(encrypted_request(msg_signature=signature[:-1] + "0"))


def test_a_message_sealed_for_another_account_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="AppID"):
        safe_adapter(app_id="wx-someone-else").verify(encrypted_request())


def test_a_safe_mode_channel_refuses_plaintext_requests() -> None:
    body = (FIXTURES / "text_message.xml").read_bytes()
    with pytest.raises(Unauthorized, match="safe mode"):
        safe_adapter().verify(signed_post(body, at=1411525903, token=AES["token"]))


def test_a_wrong_key_cannot_open_the_message() -> None:
    other = WeChatCrypto(AES["token"], "A" * 43, AES["app_id"])
    with pytest.raises(CryptoError):
        other.decrypt(crypto().encrypt(b"<xml/>", random=b"0123456789abcdef"))


def test_a_malformed_encoding_aes_key_is_a_configuration_error() -> None:
    environ = {
        "CIVICDESK_WECHAT_APP_ID": APP_ID,
        "CIVICDESK_WECHAT_APP_SECRET": APP_SECRET,
        "CIVICDESK_WECHAT_TOKEN": TOKEN,
        "CIVICDESK_WECHAT_ENCODING_AES_KEY": "too-short",
    }
    with pytest.raises(ConfigError, match=r"ENCODING_AES_KEY=\(secret\).*43 characters"):
        read_channels(environ, ["wechat"], {"wechat": SPEC})


def test_wechat_counts_reply_length_in_utf8_bytes() -> None:
    rules = TEXT_RULES["wechat"]
    text = "诉讼费 fee 😀 @张三 https://court.example.gov/fees"

    # 3 汉字 × 3 + emoji 4 + 2 汉字 × 3 + 33 ASCII (the link counts as it is, not shortened)
    assert rules.count(text) == 9 + 4 + 6 + 38 == 57
    assert rules.count("汉" * 682) == 2046 <= rules.limit < rules.count("汉" * 683)


# --- Replies through a fake of WeChat's API ---------------------------------------------------


class FakeWeChat:
    """WeChat's token and customer-service endpoints, answering as documented."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, Any]] = []
        self.sends: list[tuple[str, bytes]] = []  # (access_token, raw body)
        self.send_answers: list[web.Response] = []
        self.token_answers: list[web.Response] = []
        self.issued = 0

    async def stable_token(self, request: web.Request) -> web.Response:
        self.token_requests.append(await request.json())
        if self.token_answers:
            return self.token_answers.pop(0)
        self.issued += 1
        return web.json_response({"access_token": f"ACCESS_{self.issued}", "expires_in": 7200})

    async def custom_send(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        self.sends.append((request.query.get("access_token", ""), await request.read()))
        if self.send_answers:
            return self.send_answers.pop(0)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWeChat, str]]:
    api = FakeWeChat()
    routes = [
        ("POST", "/cgi-bin/stable_token", api.stable_token),
        ("POST", "/cgi-bin/message/custom/send", api.custom_send),
    ]
    async with serve(routes) as url:
        yield api, url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def connected(url: str, session: aiohttp.ClientSession, clock: Clock | None = None) -> Any:
    hook = WeChatAdapter(
        "wechat",
        APP_ID,
        Secret(APP_SECRET),
        Secret(TOKEN),
        api_base=url,
        timeout=2.0,
        clock=clock or Clock(),
    )
    hook.attach_session(session)
    return hook


REPLY = OutboundMessage(
    id=7,
    channel="wechat",
    conversation="oUser1",
    text="可网上缴纳。",
    public=False,
    recipient="oUser1",
)


def errcode(code: int, message: str = "") -> web.Response:
    return web.json_response({"errcode": code, "errmsg": message or f"error {code}"})


async def test_a_reply_is_a_customer_service_text_message(
    fake: tuple[FakeWeChat, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake

    result = await connected(url, session).send(REPLY)

    assert result.ok, result.error
    assert api.token_requests == [
        {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    ]
    ((token, body),) = api.sends
    assert token == "ACCESS_1"
    assert json.loads(body) == {
        "touser": "oUser1",
        "msgtype": "text",
        "text": {"content": "可网上缴纳。"},
    }
    assert "可网上缴纳".encode() in body  # WeChat refuses \uXXXX escapes (errcode 40033)


async def test_the_access_token_is_cached_and_fetched_once_for_concurrent_sends(
    fake: tuple[FakeWeChat, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    hook = connected(url, session)

    results = await asyncio.gather(*(hook.send(REPLY) for _ in range(3)))
    await hook.send(REPLY)

    assert all(result.ok for result in results)
    assert len(api.token_requests) == 1
    assert [token for token, _ in api.sends] == ["ACCESS_1"] * 4


async def test_the_access_token_is_fetched_again_before_it_expires(
    fake: tuple[FakeWeChat, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    clock = Clock()
    hook = connected(url, session, clock)

    await hook.send(REPLY)
    clock.now += 7200 - 299  # inside the last 5 minutes: WeChat already renews it
    await hook.send(REPLY)

    assert [token for token, _ in api.sends] == ["ACCESS_1", "ACCESS_2"]


@pytest.mark.parametrize("code", [40001, 42001, 40014])
async def test_a_refused_access_token_is_fetched_anew_and_the_reply_sent(
    fake: tuple[FakeWeChat, str], session: aiohttp.ClientSession, code: int
) -> None:
    api, url = fake
    api.send_answers.append(errcode(code, "access_token expired"))

    result = await connected(url, session).send(REPLY)

    assert result.ok, result.error
    assert [token for token, _ in api.sends] == ["ACCESS_1", "ACCESS_2"]


async def test_a_fresh_token_refused_again_is_retried_later(
    fake: tuple[FakeWeChat, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    api.send_answers += [errcode(40001), errcode(40001)]

    result = await connected(url, session).send(REPLY)

    assert not result.ok and result.retryable
    assert len(api.sends) == 2


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "reason"),
    [
        (errcode(45015, "response out of time limit"), False, None, "48-hour"),
        (errcode(43004, "require subscribe"), False, None, "follow"),
        (errcode(48001, "api unauthorized"), False, None, "verified"),
        (errcode(45047, "out of response count limit"), True, None, "5 customer-service"),
        (errcode(-1, "system error"), True, None, "busy"),
        (errcode(40033, "invalid charset"), False, None, "errcode 40033"),
        (web.Response(status=503, headers={"Retry-After": "7"}), True, 7.0, "HTTP 503"),
        (web.Response(status=429, headers={"Retry-After": "2"}), True, 2.0, "HTTP 429"),
        (web.Response(status=404, text="no such path"), False, None, "HTTP 404"),
    ],
)
async def test_failures_are_classified(
    fake: tuple[FakeWeChat, str],
    session: aiohttp.ClientSession,
    answer: web.Response,
    retryable: bool,
    retry_after: float | None,
    reason: str,
) -> None:
    api, url = fake
    api.send_answers.append(answer)

    result = await connected(url, session).send(REPLY)

    assert not result.ok
    assert (result.retryable, result.retry_after) == (retryable, retry_after)
    assert reason in (result.error or "")


@pytest.mark.parametrize(
    ("code", "retryable", "reason"),
    [(40164, False, "IP whitelist"), (40125, False, "APP_SECRET"), (-1, True, "busy")],
)
async def test_a_failed_token_fetch_fails_the_send_without_showing_the_secret(
    fake: tuple[FakeWeChat, str],
    session: aiohttp.ClientSession,
    code: int,
    retryable: bool,
    reason: str,
) -> None:
    api, url = fake
    api.token_answers.append(errcode(code, f"invalid ip, secret {APP_SECRET}"))

    result = await connected(url, session).send(REPLY)

    assert not result.ok and result.retryable is retryable
    assert reason in (result.error or "")
    assert APP_SECRET not in (result.error or "")
    assert api.sends == []


async def test_neither_token_nor_secret_appears_in_errors_or_logs(
    fake: tuple[FakeWeChat, str],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, url = fake
    api.send_answers += [errcode(40001), web.Response(status=500, text="ACCESS_2 broke")]
    caplog.set_level(logging.DEBUG)

    result = await connected(url, session).send(REPLY)

    assert not result.ok and result.retryable
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("civicdesk"))
    assert "access token refused" in ours  # (the fake server's access log is WeChat's side)
    for text in (result.error or "", ours):
        assert "ACCESS_1" not in text and "ACCESS_2" not in text and APP_SECRET not in text


async def test_an_unreachable_api_is_retryable(session: aiohttp.ClientSession) -> None:
    result = await connected("http://127.0.0.1:9", session).send(REPLY)

    assert not result.ok and result.retryable


async def test_without_a_session_a_send_is_retried_later() -> None:
    result = await adapter().send(REPLY)

    assert not result.ok and result.retryable
