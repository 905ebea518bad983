"""What WhatsApp's Cloud API and Messenger share, both being Meta's Graph API: the settings, the
webhook subscription check, the `X-Hub-Signature-256` of every delivery, the Graph API's errors.

- Subscription check: `GET ?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C` is answered
  with C (as text) when V is the channel's VERIFY_TOKEN, with 403 otherwise.
- Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`;
  a delivery without it, or with another, is refused (401) and nothing of it is stored.
- Errors: `{"error": {"code", "error_subcode", "message", "type", "fbtrace_id"}}`, classified
  here into sent / retry later / give up; each platform adds the codes only it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.http import (
    JsonReply,
    SessionSlot,
    classify_reply,
    hmac_sha256_hex,
    parse_retry_after,
    same,
)
from adapters.payload import optional_string
from bot.config.settings import ChannelSetting, Secret, channel_prefix, seconds
from bot.platform.adapter import BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import SendResult

GRAPH_API_BASE = "https://graph.facebook.com/v23.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_CHALLENGE = 256  # Meta's challenges are short numbers; anything long is not Meta's
MAX_ID = 128
MAX_TEXT = 10_000  # longer than either platform lets a citizen send
MAX_ITEMS = 1000  # entries, changes or events in one delivery (Meta batches, but not so many)

# Graph API error codes both platforms answer with (developers.facebook.com, "Graph API error
# handling" and the Messenger/WhatsApp error code pages).
TOKEN_REFUSED = frozenset({190, 102})  # the access token is invalid, expired or revoked
TRANSIENT = frozenset({1, 2, 1200})  # unknown / temporary: "retry your request later"
RATE_LIMITED = frozenset({4, 17, 32, 613, 80007})  # app, user, page, call and WABA limits
RATE_LIMIT_PAUSE = 60.0  # Graph answers rate limits without a Retry-After


def meta_settings(*extra: ChannelSetting) -> tuple[ChannelSetting, ...]:
    """The keys both Meta channels have, with `extra` (WhatsApp's PHONE_NUMBER_ID) after the
    access token."""
    return (
        ChannelSetting(
            "VERIFY_TOKEN",
            "The verify token you type in the app's webhook settings (any random string, e.g. "
            "openssl rand -hex 32); Meta's subscription check must present it.",
            required=True,
            secret=True,
        ),
        ChannelSetting(
            "APP_SECRET",
            "The app secret (App settings → Basic); Meta signs every delivery with it "
            "(X-Hub-Signature-256).",
            required=True,
            secret=True,
        ),
        ChannelSetting(
            "ACCESS_TOKEN",
            "The access token replies are sent with (a system user's token, or a Page token).",
            required=True,
            secret=True,
        ),
        *extra,
        ChannelSetting(
            "TIMEOUT", "Seconds to wait for the Graph API.", default="10", parse=seconds
        ),
    )


def subscription_check(raw: RawRequest, verify_token: Secret, variable: str) -> HttpReply | None:
    """The answer to Meta's subscription check; None when the request is none (a delivery).
    Unauthorized (403, as Meta expects) for a wrong token or an unknown mode."""
    if raw.method != "GET" or not any(key.startswith("hub.") for key in raw.query):
        return None
    mode = raw.query.get("hub.mode", "")
    token = raw.query.get("hub.verify_token", "")
    challenge = raw.query.get("hub.challenge", "")
    if mode != "subscribe" or not challenge or len(challenge) > MAX_CHALLENGE:
        raise Unauthorized("hub.mode=subscribe and a hub.challenge are required", status=403)
    if not same(token, verify_token.reveal()):
        raise Unauthorized(
            f"hub.verify_token is not the verify token: set the one in {variable} in the app's "
            "webhook settings",
            status=403,
        )
    return HttpReply(200, challenge.encode(), "text/plain; charset=utf-8")


def check_signature(raw: RawRequest, app_secret: Secret, variable: str) -> None:
    """Unauthorized unless X-Hub-Signature-256 is the HMAC-SHA256 of the raw body."""
    given = raw.header(SIGNATURE_HEADER)
    if not given:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header: only Meta may post here")
    scheme, _, digest = given.strip().partition("=")
    expected = hmac_sha256_hex(app_secret.reveal(), raw.body)
    if scheme.lower() != "sha256" or not same(digest.lower(), expected):
        raise Unauthorized(
            f"{SIGNATURE_HEADER} does not match: check that {variable} is the secret of the app "
            "whose webhook this is (App settings → Basic)"
        )


def items(data: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    """`data[key]` as a list of JSON objects ([] when absent); BadRequest for anything else."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f'"{key}" must be a list of {what} (JSON objects)')
    if len(value) > MAX_ITEMS:
        raise BadRequest(f'"{key}" has {len(value)} items: at most {MAX_ITEMS}')
    return value


def id_string(data: Mapping[str, Any], key: str) -> str | None:
    """An id Meta may send as a string or (older payloads) as a number; None when absent."""
    value = data.get(key)
    if isinstance(value, bool):
        raise BadRequest(f'"{key}" must be an id')
    if isinstance(value, int):
        return str(value)
    return optional_string(data, key, limit=MAX_ID)


@dataclass(frozen=True)
class GraphError:
    code: int
    subcode: int | None
    message: str


def graph_error(data: Any) -> GraphError | None:
    """The error in a Graph API answer; None when there is none."""
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = error.get("message")
    return GraphError(
        code if isinstance(code, int) else 0,
        subcode if isinstance(subcode, int) else None,
        str(message)[:300] if message is not None else "",
    )


def graph_result(
    reply: JsonReply,
    *,
    sent_id: str | None,
    closed_window: GraphError | None,
    token_variable: str,
    secrets: list[str],
) -> SendResult:
    """A SendResult from a Graph API answer. `closed_window` is the error (if any) that the
    platform gives for a reply past its customer-service window, which no retry can help."""
    if 200 <= reply.status < 300 and graph_error(reply.data) is None:
        return SendResult.sent(sent_id)
    error = graph_error(reply.data)
    if error is None:
        return classify_reply(reply, secrets)
    detail = f"Graph API error {error.code}" + (
        f"/{error.subcode}" if error.subcode is not None else ""
    )
    detail += f" ({error.message})" if error.message else ""
    if closed_window is not None:
        return SendResult.failed(
            f"{detail}: the 24-hour customer-service window is closed; only approved templates "
            "may be sent until the citizen writes again",
            retryable=False,
        )
    if error.code in TOKEN_REFUSED:
        return SendResult.failed(
            f"{detail}: the access token is refused; set a valid one in {token_variable}",
            retryable=False,
        )
    if error.code in RATE_LIMITED or reply.status == 429:
        wait = parse_retry_after(reply.headers.get("Retry-After")) or RATE_LIMIT_PAUSE
        return SendResult.failed(f"{detail}: rate limited", retryable=True, retry_after=wait)
    if error.code in TRANSIENT or reply.status >= 500:
        return SendResult.failed(detail, retryable=True)
    return SendResult.failed(detail, retryable=False)


class MetaWebhook:
    """What a WhatsApp number and a Messenger Page share: Meta's subscription check, the
    X-Hub-Signature-256 of every delivery, the access token and the Graph API session."""

    def __init__(
        self,
        name: str,
        *,
        verify_token: Secret,
        app_secret: Secret,
        access_token: Secret,
        api_base: str = GRAPH_API_BASE,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self._verify_token = verify_token
        self._app_secret = app_secret
        self._access_token = access_token
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._prefix = channel_prefix(name)
        self._http = SessionSlot()

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return subscription_check(raw, self._verify_token, f"{self._prefix}VERIFY_TOKEN")

    def verify(self, raw: RawRequest) -> None:
        check_signature(raw, self._app_secret, f"{self._prefix}APP_SECRET")
