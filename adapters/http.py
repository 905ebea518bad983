"""What every HTTP-speaking adapter needs: signatures, one shared client session, and the
classification of a platform's answer into sent / retry later / give up.

Adapters never open a session of their own: the app opens one `aiohttp.ClientSession` at start-up
and hands it to every adapter through `attach_session` (connection pooling, one place to close).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from adapters.payload import MAX_API_JSON_BYTES, MAX_API_JSON_DEPTH, read_json
from bot.platform.adapter import BadRequest, Unauthorized
from bot.platform.messages import SendResult
from bot.platform.params import BadParameter, whole_number

MAX_RETRY_AFTER = 3600.0  # a platform asking for more than an hour is capped: the worker decides
ERROR_TEXT_LIMIT = 300  # how much of an error response body is kept for the operator


def hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, message, hashlib.sha256)  # one C call: a third of hmac.new's cost


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    return hmac_sha256(secret, message).hex()


def hmac_sha256_base64(secret: str | bytes, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode("ascii")


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison, so that response times do not leak how much of a guess is right."""
    # surrogatepass: a header or query may carry a lone surrogate, which strict UTF-8 refuses.
    a = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else given
    b = expected.encode("utf-8", "surrogatepass") if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


MILLISECONDS = 10**11  # a unix time above this is in milliseconds (year 5138 in seconds)
MAX_TIMESTAMP = 10**14  # milliseconds in the year 5138: anything larger is no clock's reading


def check_fresh(
    timestamp: str,
    now: float,
    window: float,
    *,
    name: str,
    fix: str,
    milliseconds: bool = False,
) -> None:
    """Unauthorized unless `timestamp` (unix seconds as text; with `milliseconds`, unix
    milliseconds are taken too) is within `window` seconds of `now`: a signature that covers a
    timestamp is then no use for replaying the request later. `name` is where the timestamp
    came from (a header), `fix` what to do about a stale one."""
    try:
        # ASCII digits only: int() takes "٣" too, and the signed text is then no longer ASCII.
        sent_at = float(whole_number(timestamp, name=name, low=0, high=MAX_TIMESTAMP))
    except BadParameter:
        unit = "(milli)seconds" if milliseconds else "whole seconds"
        raise Unauthorized(f"{name} must be the unix time in {unit}, in ASCII digits") from None
    if milliseconds and sent_at > MILLISECONDS:
        sent_at /= 1000
    skew = abs(now - sent_at)
    if skew > window:
        raise Unauthorized(
            f"{name} is {skew:.0f} s away from the server's clock (at most {window:g} s): {fix}"
        )


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        delay = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = when.timestamp() - now()
    if not math.isfinite(delay):
        return None
    return min(max(delay, 0.0), MAX_RETRY_AFTER)


def is_retryable_status(status: int) -> bool:
    """429 and 5xx may succeed later; any other 4xx will fail the same way again."""
    return status == 429 or status >= 500 or status in (408, 425)


def classify(status: int, headers: Mapping[str, str], body: str = "") -> SendResult:
    """A SendResult from the platform's HTTP status (and Retry-After)."""
    if 200 <= status < 300:
        return SendResult.sent()
    detail = f"HTTP {status}" + (f": {body[:ERROR_TEXT_LIMIT]}" if body.strip() else "")
    if is_retryable_status(status):
        return SendResult.failed(
            detail, retryable=True, retry_after=parse_retry_after(headers.get("Retry-After"))
        )
    return SendResult.failed(detail, retryable=False)


class SessionSlot:
    """Holds the shared ClientSession once the app has attached it."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def attach(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession | None:
        if self._session is None or self._session.closed:
            return None
        return self._session


async def post_json(
    session: aiohttp.ClientSession | None,
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Callable[[bytes], Mapping[str, str]] | None = None,
    timeout: float = 10.0,
) -> SendResult:
    """POST `payload` as JSON; `headers(body)` adds headers computed over the exact body bytes
    (signatures). Network failures and timeouts are retryable; the status decides the rest."""
    body = _json_bytes(payload)
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    if headers is not None:
        all_headers.update(headers(body))
    reply = await exchange(session, "POST", url, body, all_headers, timeout=timeout)
    if isinstance(reply, SendResult):
        return reply
    return classify(reply.status, reply.headers, reply.text)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


# --- JSON APIs that answer with a JSON body (Telegram, Slack, ...) ------------------------------


class JsonReply:
    """A platform's HTTP answer to a JSON call: the status, the headers, the body as text and as
    parsed JSON (`data` is None when the body is not JSON)."""

    __slots__ = ("data", "headers", "status", "text")

    def __init__(self, status: int, headers: Mapping[str, str], text: str, data: Any) -> None:
        self.status = status
        self.headers = headers
        self.text = text
        self.data = data

    @property
    def fields(self) -> dict[str, Any]:
        """The body when it is a JSON object, else {}: for reading `ok`, `error`, ids."""
        return self.data if isinstance(self.data, dict) else {}


def classify_reply(reply: JsonReply, secrets: Sequence[str] = ()) -> SendResult:
    """`classify` of a JsonReply, the error text cleared of `secrets` (a body may echo them)."""
    result = classify(reply.status, reply.headers, reply.text)
    if result.ok:
        return result
    return SendResult.failed(
        redact(result.error or "", secrets),
        retryable=result.retryable,
        retry_after=result.retry_after,
    )


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every non-empty secret replaced by ***: for error texts built from URLs that
    carry a token (Telegram's /bot<token>/ path)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


async def call_json(
    session: aiohttp.ClientSession | None,
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    secrets: Sequence[str] = (),
) -> JsonReply | SendResult:
    """POST `payload` as JSON and read the answer, for platforms whose answer body matters (an
    id to keep, an error code inside a 200, a retry delay in the JSON). A network failure or a
    time-out is a retryable SendResult, its text cleared of `secrets`; any HTTP answer is a
    JsonReply for the adapter to classify."""
    return await request_json(
        session, "POST", url, payload, headers=headers, timeout=timeout, secrets=secrets
    )


async def exchange(
    session: aiohttp.ClientSession | None,
    method: str,
    url: str,
    body: bytes | aiohttp.FormData | None,
    headers: Mapping[str, str],
    *,
    params: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    secrets: Sequence[str] = (),
) -> JsonReply | SendResult:
    """One HTTP request of any kind, redirects not followed (a redirect would re-send a signed
    body or a token to another host). A network failure or a time-out is a retryable
    SendResult, its text cleared of `secrets`; any HTTP answer is a JsonReply."""
    if session is None:
        return SendResult.failed("no HTTP session: the server is starting or stopping")
    try:
        async with session.request(
            method,
            url,
            data=body,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            text = await response.text(errors="replace")
            status, response_headers = response.status, response.headers
    except TimeoutError:
        return SendResult.failed(f"no answer from {_host(url)} within {timeout:g} s")
    except aiohttp.ClientError as exc:
        detail = f"{type(exc).__name__} talking to {_host(url)}: {exc}"
        return SendResult.failed(redact(detail, secrets))
    try:
        data = (
            read_json(
                text, "a JSON answer", max_bytes=MAX_API_JSON_BYTES, max_depth=MAX_API_JSON_DEPTH
            )
            if text.strip()
            else None
        )
    except BadRequest:
        data = None
    return JsonReply(status, response_headers, text, data)


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- Query signatures -------------------------------------------------------------------------


def sha1_sorted(*parts: str) -> str:
    """Hex SHA1 of the parts sorted and joined: the WeChat and Weibo query signature."""
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")  # a query may carry anything
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - their scheme


# --- JSON calls with any method (Matrix: PUT to send, GET /sync) -------------------------------


async def request_json(
    session: aiohttp.ClientSession | None,
    method: str,
    url: str,
    payload: Mapping[str, Any] | None = None,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    secrets: Sequence[str] = (),
) -> JsonReply | SendResult:
    """`call_json` for any method: GET (no payload), PUT, POST, DELETE, with query `params`.
    A network failure or a time-out is a retryable SendResult, its text cleared of `secrets`;
    any HTTP answer is a JsonReply for the adapter to classify."""
    all_headers = dict(headers or {})
    body: bytes | None = None
    if payload is not None:
        body = _json_bytes(payload)
        all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
    return await exchange(
        session, method, url, body, all_headers, params=params, timeout=timeout, secrets=secrets
    )


# --- Form posts (Weibo: comments/create, comments/reply, messages/reply) ------------------------


async def post_form(
    session: aiohttp.ClientSession | None,
    url: str,
    form: Mapping[str, str],
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    secrets: Sequence[str] = (),
) -> JsonReply | SendResult:
    """`request_json` for APIs that take application/x-www-form-urlencoded (UTF-8) bodies.
    A network failure or a time-out is a retryable SendResult, its text cleared of `secrets`;
    any HTTP answer is a JsonReply for the adapter to classify."""
    body = urlencode(dict(form)).encode("ascii")
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return await exchange(
        session, "POST", url, body, all_headers, params=params, timeout=timeout, secrets=secrets
    )


# --- Multipart uploads (pictures: Mastodon media, Telegram sendPhoto, Weibo statuses/share) -----


@dataclass(frozen=True)
class Upload:
    """A file in a multipart/form-data request."""

    field: str
    data: bytes
    content_type: str
    filename: str


async def post_multipart(
    session: aiohttp.ClientSession | None,
    url: str,
    fields: Mapping[str, str],
    upload: Upload,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    secrets: Sequence[str] = (),
) -> JsonReply | SendResult:
    """POST `fields` and one file as multipart/form-data (RFC 7578). A network failure or a
    time-out is a retryable SendResult, its text cleared of `secrets`; any HTTP answer is a
    JsonReply for the adapter to classify."""
    form = aiohttp.FormData(charset="utf-8")
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field(
        upload.field, upload.data, content_type=upload.content_type, filename=upload.filename
    )
    return await exchange(
        session,
        "POST",
        url,
        form,
        dict(headers or {}),
        params=params,
        timeout=timeout,
        secrets=secrets,
    )


def http_url(value: str) -> str:
    """A setting that must be a full http:// or https:// address (API bases, receivers)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be a full http:// or https:// address")
    return value.strip().rstrip("/")
