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
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bot.messages import SendResult

MAX_RETRY_AFTER = 3600.0  # a platform asking for more than an hour is capped: the worker decides
ERROR_TEXT_LIMIT = 300  # how much of an error response body is kept for the operator


def hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    return hmac_sha256(secret, message).hex()


def hmac_sha256_base64(secret: str | bytes, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode("ascii")


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison, so that response times do not leak how much of a guess is right."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


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
    if session is None:
        return SendResult.failed("no HTTP session: the server is starting or stopping")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    if headers is not None:
        all_headers.update(headers(body))
    try:
        async with session.post(
            url,
            data=body,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,  # a redirect would re-send a signed body to another host
        ) as response:
            text = await response.text(errors="replace")
            return classify(response.status, response.headers, text)
    except TimeoutError:
        return SendResult.failed(f"no answer from {_host(url)} within {timeout:g} s")
    except aiohttp.ClientError as exc:
        return SendResult.failed(f"{type(exc).__name__} talking to {_host(url)}: {exc}")


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
