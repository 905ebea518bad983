"""Every adapter fed what a stranger (or a compromised platform) could send: only BadRequest or
Unauthorized may come out of verify, handshake and parse, and every message returned is bounded
to what the inbox stores. Pollers' converters (Mastodon, Weibo mentions, Matrix events, e-mail)
must not raise at all: an exception there would fail the same poll again and again.

Examples per adapter: CIVICDESK_FUZZ_EXAMPLES (200 by default; the full run is
`CIVICDESK_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest -q -p no:cacheprovider
tests/test_fuzz_adapters.py`, see docs/fuzzing.md). Each exception the fuzzing found is kept as
an @example, so it is tried first on every run."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from fuzz_support import (
    FUZZ,
    REFUSALS,
    check_message,
    deep_json,
    fixture_bytes,
    fixture_json,
    headers,
    json_bodies,
    json_values,
    mails,
    mutated,
    queries,
    wechat_xml,
)
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.email import EmailAdapter
from adapters.email_imap import ImapAccount
from adapters.http import sha1_sorted
from adapters.line import LineAdapter
from adapters.mastodon_text import mention_message as mastodon_mention
from adapters.matrix_appservice import MatrixAppServiceAdapter
from adapters.matrix_events import (
    DisplayNames,
    Identity,
    OwnEvents,
    message_from,
    staff_message_from,
)
from adapters.slack import SlackAdapter
from adapters.slack import sign as slack_sign
from adapters.telegram import SECRET_HEADER, TelegramAdapter
from adapters.webchat import WebchatAdapter
from adapters.webhook import WebhookAdapter, signed_headers
from adapters.wechat import WeChatAdapter
from adapters.wechat_crypto import WeChatCrypto
from adapters.weibo import WeiboAdapter
from adapters.weibo_api import mention_message as weibo_mention
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, HttpReply, RawRequest, RetryLater, Unauthorized

NOW = 1_700_000_000.0
SECRET = "fuzz-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx0123456789abcdef"
BOT = Identity("@civicdesk:example.org", "Civic Desk")


def refused_or_messages(call: Callable[[], Any], refusals: Any = REFUSALS) -> Any:
    """The call's result, or None when it refused with one of `refusals`."""
    try:
        return call()
    except refusals:
        return None


def exercise(adapter: Any, raw: RawRequest) -> None:
    """As the web layer does (bot.gateway.web.webhook): handshake and verify may refuse with
    Unauthorized only, parse (of a verified request) with BadRequest, or RetryLater (a 503: a
    Matrix room whose membership is not known yet) only; each test also sends correctly signed
    requests, so the parsers are reached."""
    try:
        reply = adapter.handshake(raw)
        if reply is not None:
            assert isinstance(reply, HttpReply)
            return
        adapter.verify(raw)
    except Unauthorized:
        return
    messages = refused_or_messages(lambda: adapter.parse(raw), (BadRequest, RetryLater))
    for message in messages or []:
        check_message(message)


def request(body: bytes, head: dict[str, str], query: dict[str, str] | None = None) -> RawRequest:
    return RawRequest("POST", "/webhooks/x", query or {}, head, body)


# --- Web chat and the generic webhook -------------------------------------------------------

WEBCHAT_SEEDS = [{"id": "m-12345678", "conversation": "c-12345678", "text": "hi", "lang": "en"}]


@FUZZ
@given(json_bodies(WEBCHAT_SEEDS), headers(("Content-Type",)))
@example(deep_json(100_000), {"Content-Type": "application/json"})  # RecursionError
@example(b"1" * 5000, {"Content-Type": "application/json"})  # ValueError: over 4300 digits
def test_webchat(body: bytes, head: dict[str, str]) -> None:
    head = {"Content-Type": "application/json", **head} if len(head) % 2 else head
    exercise(WebchatAdapter("webchat"), request(body, head))


WEBHOOK_SEEDS = [
    {
        "id": "1",
        "conversation": "case-1",
        "sender": "s",
        "sender_name": "n",
        "text": "hi",
        "public": False,
        "lang": "en",
        "reply_to": "0",
    }
]


@FUZZ
@given(json_bodies(WEBHOOK_SEEDS), headers(("X-Civicdesk-Timestamp", "X-Civicdesk-Signature")))
@example(b"{}", {"X-Civicdesk-Timestamp": "9" * 400, "X-Civicdesk-Signature": "sha256=0"})
@example(b"{}", {"X-Civicdesk-Timestamp": "١٧٠٠٠٠٠٠٠٠", "X-Civicdesk-Signature": "sha256=0"})
@example(b"{}", {"X-Civicdesk-Timestamp": "1700000000", "X-Civicdesk-Signature": "sha256=\ud800"})
def test_webhook(body: bytes, head: dict[str, str]) -> None:
    adapter = WebhookAdapter("webhook", Secret(SECRET), "http://127.0.0.1:1", clock=lambda: NOW)
    exercise(adapter, request(body, head))
    exercise(adapter, request(body, {**head, **signed_headers(SECRET, body, NOW)}))


# --- Telegram, Slack, LINE ------------------------------------------------------------------


@FUZZ
@given(json_bodies(fixture_json("telegram"), ("text", "entities", "from", "chat")), st.booleans())
def test_telegram(body: bytes, staff: bool) -> None:
    adapter = TelegramAdapter(
        "telegram",
        Secret("123:abc"),
        Secret(SECRET),
        username="civicdesk_bot",
        staff_room="-100123" if staff else None,
    )
    exercise(adapter, request(body, {SECRET_HEADER: SECRET}))


def slack_signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(NOW))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_sign(SECRET, timestamp, body),
    }


SLACK_SEEDS = [seed for seed in fixture_json("slack") if "type" in seed]


@FUZZ
@given(
    json_bodies(SLACK_SEEDS, ("challenge", "event", "authorizations", "user_profile")),
    headers(("X-Slack-Request-Timestamp", "X-Slack-Signature")),
    st.booleans(),
)
@example(b'{"type":"url_verification","c":' + deep_json(100_000) + b"}", {}, False)
@example(  # TypeError: "authorizations" that is not a list
    b'{"type":"event_callback","event_id":"E1","event":{},"authorizations":1}', {}, False
)
@example(  # ids and timestamps longer than the inbox's columns
    json.dumps(
        {
            "type": "event_callback",
            "event_id": "x" * 256,
            "authed_users": ["W111"],
            "event": {"type": "app_mention", "text": "<@W111> Hi", "user": "W222", "ts": "1.2"},
        }
    ).encode(),
    {},
    False,
)
@example(
    json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev1",
            "event": {
                "type": "message",
                "text": "hi",
                "user": "U" * 300,
                "channel": "C0123ABCD",
                "ts": "1.2",
                "thread_ts": "9" * 300,
                "channel_type": "im",
            },
        }
    ).encode(),
    {},
    True,
)
def test_slack(body: bytes, head: dict[str, str], staff: bool) -> None:
    adapter = SlackAdapter(
        "slack",
        Secret(SECRET),
        Secret("xoxb-1"),
        staff_room="C0123ABCD" if staff else None,
        clock=lambda: NOW,
    )
    exercise(adapter, request(body, head))
    exercise(adapter, request(body, slack_signed(body)))


def line_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {"X-Line-Signature": base64.b64encode(digest).decode()}


LINE_SEEDS = [seed for seed in fixture_json("line") if "events" in seed]


@FUZZ
@given(
    json_bodies(LINE_SEEDS, ("mention", "quoteToken", "quotedMessageId", "mode")),
    st.sampled_from(["mentions", "all"]),
)
@example(  # TypeError: a "source" whose "type" is a list (unhashable)
    b'{"events":[{"type":"message","message":{"type":"text","text":"a"},"source":{"type":[]}}]}',
    "all",
)
def test_line(body: bytes, mode: str) -> None:
    adapter = LineAdapter("line", Secret(SECRET), Secret("t"), group_messages=mode)
    exercise(adapter, request(body, line_signed(body)))
    exercise(adapter, request(body, {"X-Line-Signature": "x"}))


# --- WeChat (XML, plaintext and safe mode) ---------------------------------------------------

WECHAT_SEEDS = fixture_bytes("wechat", "*.xml")
WECHAT_QUERY = ("signature", "timestamp", "nonce", "echostr", "encrypt_type", "msg_signature")


@FUZZ
@given(wechat_xml(WECHAT_SEEDS), queries(WECHAT_QUERY), st.sampled_from(["GET", "POST"]))
@example(  # UnicodeEncodeError: a lone surrogate in the query of the server-address check
    b"", {"signature": "", "timestamp": "", "nonce": "\ud800", "echostr": ""}, "GET"
)
@example(  # ValueError from expat: "multi-byte encodings are not supported"
    b'<?xml version="1.0" encoding="gb18030"?><xml><MsgType>text</MsgType></xml>', {}, "POST"
)
def test_wechat_plaintext(body: bytes, query: dict[str, str], method: str) -> None:
    adapter = WeChatAdapter("wechat", APP_ID, Secret("s"), Secret(SECRET), clock=lambda: NOW)
    exercise(adapter, RawRequest(method, "/webhooks/wechat", query, {}, body))
    signed = {"timestamp": str(int(NOW)), "nonce": "n", "signature": ""}
    signed["signature"] = sha1_sorted(SECRET, signed["timestamp"], "n")
    exercise(adapter, RawRequest("POST", "/webhooks/wechat", signed, {}, body))


@FUZZ
@given(wechat_xml(WECHAT_SEEDS), st.booleans())
@example("é".encode(), True)  # ValueError: base64 of a non-ASCII Encrypt
@example(b'<?xml version="1.0" encoding="gb18030"?><xml/>', False)  # ValueError from expat
def test_wechat_safe_mode(plain: bytes, envelope_only: bool) -> None:
    """The XML inside an encrypted, correctly signed envelope reaches the same parser."""
    adapter = WeChatAdapter(
        "wechat", APP_ID, Secret("s"), Secret(SECRET), Secret(AES_KEY), clock=lambda: NOW
    )
    crypto = WeChatCrypto(SECRET, AES_KEY, APP_ID)
    sealed = plain.decode("latin-1") if envelope_only else crypto.encrypt(plain)
    timestamp, nonce = str(int(NOW)), "n"
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{sealed}]]></Encrypt></xml>"
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": crypto.signature(timestamp, nonce, sealed),
    }
    raw = RawRequest("POST", "/webhooks/wechat", query, {}, body.encode("utf-8", "surrogatepass"))
    exercise(adapter, raw)


# --- Weibo (push and polled mentions) --------------------------------------------------------

WEIBO_PUSH = [
    {
        "type": "text",
        "sender_id": "123",
        "receiver_id": "456",
        "text": "hi",
        "created_at": "Mon Nov 13 22:13:20 +0800 2023",
    },
    *fixture_json("weibo"),
]
WEIBO_NOW = str(int(NOW * 1000))  # Weibo signs milliseconds
WEIBO_ITEM = {
    "id": 1,
    "idstr": "1",
    "text": "@civicdesk hi",
    "user": {"id": 2, "idstr": "2", "screen_name": "alice"},
    "status": {"id": 3, "idstr": "3"},
    "reply_comment": {"id": 4, "idstr": "4"},
}


@FUZZ
@given(
    json_bodies(WEIBO_PUSH),
    queries(("signature", "timestamp", "nonce", "echostr")),
    mutated(WEIBO_ITEM, ("deleted", "screen_name", "idstr")),
    st.sampled_from(["statuses", "comments"]),
)
@example(  # UnicodeEncodeError: a lone surrogate in the text of a push (its dedup key)
    b'{"type":"text","sender_id":"1","text":"\\ud800"}',
    {
        "timestamp": str(int(NOW * 1000)),
        "nonce": "n",
        "signature": sha1_sorted(SECRET, str(int(NOW * 1000)), "n"),
    },
    WEIBO_ITEM,
    "statuses",
)
@example(  # an id of 256 digits: longer than the inbox's column
    b"{}", {}, {**WEIBO_ITEM, "idstr": "1" * 256}, "statuses"
)
@example(b"{}", {}, {**WEIBO_ITEM, "user": {"idstr": "2", "screen_name": "x" * 300}}, "comments")
def test_weibo(body: bytes, query: dict[str, str], item: dict[str, Any], kind: str) -> None:
    adapter = WeiboAdapter(
        "weibo", Secret("t"), app_secret=Secret(SECRET), user_id="456", clock=lambda: NOW
    )
    exercise(adapter, RawRequest("POST", "/webhooks/weibo", query, {}, body))
    exercise(adapter, RawRequest("GET", "/webhooks/weibo", query, {}, body))
    timestamp = str(int(NOW * 1000))
    signed = {
        "timestamp": timestamp,
        "nonce": "n",
        "signature": sha1_sorted(SECRET, timestamp, "n"),
    }
    exercise(adapter, RawRequest("POST", "/webhooks/weibo", signed, {}, body))
    found = weibo_mention("weibo", kind, item, "456")  # polled: must not raise at all
    if found is not None:
        check_message(found)


# --- Mastodon (polled notifications) ---------------------------------------------------------

MASTODON_SEEDS = [
    notification
    for seed in fixture_json("mastodon")
    if isinstance(seed, list)
    for notification in seed
    if isinstance(notification, dict)
]


@FUZZ
@given(
    st.one_of(
        st.sampled_from(MASTODON_SEEDS).flatmap(
            lambda seed: mutated(seed, ("content", "display_name", "language", "acct", "bot"))
        ),
        json_values,
    )
)
@example(  # ids, names and languages longer than the inbox's columns
    {
        "type": "mention",
        "status": {"id": "1" * 300, "language": "x" * 17, "in_reply_to_id": "2" * 300},
        "account": {"id": "3", "acct": "a" * 255, "display_name": "n" * 300},
    }
)
def test_mastodon(notification: Any) -> None:
    if not isinstance(notification, dict):
        notification = {"type": "mention", "status": notification}
    found = mastodon_mention("mastodon", notification)  # polled: must not raise at all
    if found is not None:
        check_message(found)


# --- Matrix (application service transactions; /sync events) --------------------------------

MATRIX_FIXTURES = fixture_json("matrix")
MATRIX_TRANSACTIONS = [
    seed["body"] for seed in MATRIX_FIXTURES if isinstance(seed.get("body"), dict)
]
MATRIX_EVENTS = [
    event
    for seed in MATRIX_FIXTURES
    for event in [
        *seed.get("body", {}).get("events", []),
        *(value for value in seed.values() if isinstance(value, dict) and "type" in value),
    ]
    if isinstance(event, dict) and "type" in event
]
EVENT_KEYS = ("content", "body", "m.relates_to", "sender", "event_id", "room_id", "formatted_body")


@FUZZ
@given(
    json_bodies(MATRIX_TRANSACTIONS, EVENT_KEYS),
    st.sampled_from(MATRIX_EVENTS).flatmap(lambda seed: mutated(seed, EVENT_KEYS)),
    st.sampled_from([True, False, None]),
    headers(("Authorization",)),
)
@example(  # ids longer than the inbox's columns (and the spec's 255): no Matrix event
    b"",
    {
        "type": "m.room.message",
        "event_id": "x" * 256,
        "sender": "@bob:example.org",
        "content": {"m.relates_to": {"rel_type": "m.thread", "event_id": None}, "body": "hi"},
    },
    True,
    {},
)
@example(  # a thread root, a replied-to event and a room id over 255 characters
    b"",
    {
        "type": "m.room.message",
        "event_id": "$e:example.org",
        "room_id": "!" + "r" * 300,
        "sender": "@bob:example.org",
        "content": {"msgtype": "m.text", "body": "hi"},
    },
    True,
    {},
)
@example(
    b"",
    {
        "type": "m.room.message",
        "event_id": "$e:example.org",
        "sender": "@bob:example.org",
        "content": {
            "msgtype": "m.text",
            "body": "hi",
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": "$" + "t" * 300,
                "m.in_reply_to": {"event_id": "$" + "r" * 300},
            },
        },
    },
    True,
    {},
)
def test_matrix(
    body: bytes, event: dict[str, Any], direct: bool | None, head: dict[str, str]
) -> None:
    adapter = MatrixAppServiceAdapter(
        "matrix", "http://127.0.0.1:1", Secret("as"), Secret(SECRET), BOT
    )
    path = "/webhooks/matrix/_matrix/app/v1/transactions/1"
    exercise(adapter, RawRequest("PUT", path, {}, {"Authorization": f"Bearer {SECRET}"}, body))
    exercise(adapter, RawRequest("GET", "/webhooks/matrix/_matrix/app/v1/users/x", {}, head, body))
    room = event.get("room_id") if isinstance(event.get("room_id"), str) else "!r:example.org"
    # /sync: must not raise at all
    for found in (
        message_from("matrix", event, room, BOT, direct=direct, own=OwnEvents()),
        staff_message_from("matrix", event, room, BOT, names=DisplayNames()),
    ):
        if found is not None:
            check_message(found)


# --- E-mail (IMAP: every fetched mail goes through `inbound`) ----------------------------------

MAIL_SEEDS = fixture_bytes("email", "*.eml")


def mailbox(staff: bool) -> EmailAdapter:
    imap = ImapAccount("127.0.0.1", 1, "desk@example.gov", Secret("p"), tls="none")
    return EmailAdapter(
        "email",
        imap,
        from_address="desk@example.gov",
        smtp_host="127.0.0.1",
        smtp_tls="none",
        staff_room="staff@example.gov" if staff else None,
    )


@FUZZ
@given(mails(MAIL_SEEDS), st.booleans())
@example(  # RecursionError in email.utils.getaddresses: nested comments
    b"From: " + b"(" * 30_000 + b"a@b.c" + b")" * 30_000 + b"\r\n\r\nhi", False
)
@example(  # RecursionError in the Content-Type parser, during the feed parser's split
    b"From: a@b.c\r\nContent-Type: text/plain (" + b"(" * 30_000 + b"\r\n\r\nhi", False
)
@example(  # RecursionError in the feed parser: 3,000 nested message/rfc822 parts
    b"From: a@b.c\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 3000, False
)
def test_email(data: bytes, staff: bool) -> None:
    found = refused_or_messages(lambda: mailbox(staff).inbound(1, 1, data))
    if found is not None:
        check_message(found)
    # The JSON the answer needs must stay readable.
    if found is not None and found.reply_context:
        assert isinstance(json.loads(found.reply_context), dict)
