"""WhatsApp Cloud API: the recorded payloads (../shared/fixtures/whatsapp, from pywa's tests),
the subscription check, X-Hub-Signature-256 against the recorded vector, media, and replies
through a fake of the Graph API on port 0."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fake_apis import serve

from adapters.whatsapp import WhatsAppAdapter
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, RawRequest, Unauthorized
from bot.platform.messages import MEDIA_KINDS, OutboundMessage

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"
VECTOR = json.loads((FIXTURES / "signature_vector.json").read_text())
PHONE_ID = "1122334455667"  # the recorded payloads' metadata.phone_number_id
TOKEN = "wa-access-token"


def adapter(api_base: str = "http://127.0.0.1:9", phone: str = PHONE_ID) -> WhatsAppAdapter:
    return WhatsAppAdapter(
        "whatsapp",
        verify_token=Secret("verify-me"),
        app_secret=Secret(VECTOR["app_secret"]),
        access_token=Secret(TOKEN),
        phone_number_id=phone,
        api_base=api_base,
        timeout=2.0,
    )


def raw(body: bytes, signature: str | None = None, **query: str) -> RawRequest:
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    method = "GET" if query else "POST"
    return RawRequest(method, "/webhooks/whatsapp", query, headers, body)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_the_recorded_signature_verifies_and_a_changed_byte_fails() -> None:
    body = fixture(VECTOR["body_file"])
    adapter().verify(raw(body, VECTOR["x_hub_signature_256"]))

    changed = body.replace(b"Body Text", b"Body Test")
    with pytest.raises(Unauthorized):
        adapter().verify(raw(changed, VECTOR["x_hub_signature_256"]))
    with pytest.raises(Unauthorized, match="missing"):
        adapter().verify(raw(body))
    digest = VECTOR["x_hub_signature_256"].split("=", 1)[1]
    with pytest.raises(Unauthorized):  # the right digest under another scheme is no signature
        adapter().verify(raw(body, f"sha1={digest}"))


def test_the_subscription_check_echoes_the_challenge_only_for_the_verify_token() -> None:
    example = VECTOR["verification_handshake_example"]
    query = {**example["query"], "hub.verify_token": "verify-me"}
    reply = adapter().handshake(raw(b"", **query))
    assert reply is not None
    assert (reply.status, reply.body) == (200, example["expected_response"]["body"].encode())

    with pytest.raises(Unauthorized) as refused:
        adapter().handshake(raw(b"", **{**query, "hub.verify_token": "guess"}))
    assert refused.value.status == 403
    assert adapter().handshake(raw(b"{}")) is None  # a delivery is no handshake


def test_a_text_message_becomes_a_private_question_from_the_sender() -> None:
    [message] = adapter().parse(raw(fixture("message_text.json")))
    assert message.platform_id == "wamid.xyzxyz"
    assert (message.conversation, message.sender) == ("972987654321", "972987654321")
    assert message.text == "Body Text" and message.media is None
    assert message.public is False and message.sender_name == "Test Name"
    assert message.received_at.timestamp() == 1697043223


def test_a_reply_keeps_the_message_it_answers() -> None:
    [message] = adapter().parse(raw(fixture("message_reply_context.json")))
    assert message.text == "replied text" and message.reply_to == "wamid.xyzxyz=="


def test_delivery_statuses_and_other_numbers_are_no_questions() -> None:
    assert adapter().parse(raw(fixture("status_sent.json"))) == []
    assert adapter(phone="999").parse(raw(fixture("message_text.json"))) == []


def with_message(**message: Any) -> bytes:
    data = json.loads(fixture("message_text.json"))
    value = data["entry"][0]["changes"][0]["value"]
    value["messages"] = [
        {"from": "972987654321", "id": "wamid.m", "timestamp": "1697043223", **message}
    ]
    return json.dumps(data).encode()


def test_media_without_text_is_stored_with_its_kind_and_a_caption_is_the_text() -> None:
    cases = {
        "image": ({"image": {"id": "1", "mime_type": "image/jpeg"}}, "image", ""),
        "audio": ({"audio": {"id": "2", "voice": True}}, "audio", ""),
        "document": ({"document": {"id": "3", "caption": "my form"}}, "file", "my form"),
        "sticker": ({"sticker": {"id": "4", "animated": False}}, "sticker", ""),
        "location": ({"location": {"latitude": 1.0, "longitude": 2.0}}, "location", ""),
        "contacts": ({"contacts": [{"name": {"formatted_name": "A"}}]}, "contact", ""),
        "unsupported": ({"errors": [{"code": 131051}]}, "unsupported", ""),
    }
    for kind, (part, media, text) in cases.items():
        [message] = adapter().parse(raw(with_message(type=kind, **part)))
        assert (message.media, message.text) == (media, text), kind
        assert message.media in MEDIA_KINDS
    reaction = with_message(type="reaction", reaction={"message_id": "wamid.x", "emoji": "👍"})
    assert adapter().parse(raw(reaction)) == []
    button = with_message(
        type="interactive",
        interactive={"type": "button_reply", "button_reply": {"id": "b", "title": "Opening hours"}},
    )
    [pressed] = adapter().parse(raw(button))
    assert (pressed.text, pressed.media) == ("Opening hours", None)


def test_a_body_of_another_object_or_shape_is_a_bad_request() -> None:
    for body in (
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b"[]",
    ):
        with pytest.raises(BadRequest):
            adapter().parse(raw(body))
    broken = copy.deepcopy(json.loads(fixture("message_text.json")))
    del broken["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    with pytest.raises(BadRequest, match='"id"'):
        adapter().parse(raw(json.dumps(broken).encode()))


# --- Replies through a fake Graph API -----------------------------------------------------------


class FakeGraph:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.answers: list[web.Response] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((request.method, request.path, request.headers["Authorization"], body))
        if self.answers:
            return self.answers.pop(0)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": "wamid.sent1"}],
            }
        )


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraph, str]]:
    fake = FakeGraph()
    async with serve([("POST", f"/v23.0/{PHONE_ID}/messages", fake.handle)]) as url:
        yield fake, url + "/v23.0"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def reply(**kw: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "id": 5,
        "channel": "whatsapp",
        "conversation": "972987654321",
        "text": "Pay online.",
        "public": False,
        "recipient": "972987654321",
        "reply_to": "wamid.xyzxyz",
    }
    return OutboundMessage(**{**base, **kw})


async def test_a_reply_is_a_text_message_quoting_the_question(
    graph: tuple[FakeGraph, str], session: aiohttp.ClientSession
) -> None:
    fake, url = graph
    hook = adapter(url)
    hook.attach_session(session)

    result = await hook.send(reply())

    assert result.ok and result.platform_id == "wamid.sent1"
    [(method, path, auth, body)] = fake.calls
    assert (method, path, auth) == ("POST", f"/v23.0/{PHONE_ID}/messages", f"Bearer {TOKEN}")
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "972987654321",
        "type": "text",
        "text": {"preview_url": False, "body": "Pay online."},
        "context": {"message_id": "wamid.xyzxyz"},
    }


def graph_error(status: int, code: int, message: str) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A"}
    return web.json_response({"error": error}, status=status)


async def test_errors_are_classified_a_closed_window_is_not_retried(
    graph: tuple[FakeGraph, str], session: aiohttp.ClientSession
) -> None:
    fake, url = graph
    hook = adapter(url)
    hook.attach_session(session)
    fake.answers = [
        graph_error(400, 131047, "Re-engagement message"),
        graph_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit"),
        graph_error(401, 190, "Invalid OAuth access token"),
        graph_error(500, 1, "An unknown error occurred"),
    ]
    closed, paired, token, unknown = [await hook.send(reply()) for _ in range(4)]

    assert not closed.ok and not closed.retryable and "24-hour" in (closed.error or "")
    assert paired.retryable and paired.retry_after == 6.0
    assert not token.retryable and "CIVICDESK_WHATSAPP_ACCESS_TOKEN" in (token.error or "")
    assert unknown.retryable
    assert TOKEN not in "".join(r.error or "" for r in (closed, paired, token, unknown))


async def test_a_quote_whatsapp_refuses_is_dropped_and_the_answer_still_goes(
    graph: tuple[FakeGraph, str], session: aiohttp.ClientSession
) -> None:
    fake, url = graph
    hook = adapter(url)
    hook.attach_session(session)
    fake.answers = [graph_error(400, 131009, "Parameter value is not valid")]

    result = await hook.send(reply(reply_to="wamid.gone"))

    assert result.ok
    quoted, plain = (body for _, _, _, body in fake.calls)
    assert quoted["context"] == {"message_id": "wamid.gone"} and "context" not in plain
    assert plain["text"]["body"] == "Pay online."
