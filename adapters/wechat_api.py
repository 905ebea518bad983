"""WeChat's server API for replies: the access token and customer-service messages.

The access token comes from `cgi-bin/stable_token` (normal mode): unlike `cgi-bin/token`, asking
again while it is valid returns the same token, so several civicdesk processes (or another system
of the same account) do not invalidate each other's. It is cached until a little before it
expires and fetched anew when WeChat refuses it (40001, 40014, 42001). WeChat reports errors as
`errcode` inside a 200 answer; each known code is retryable or not. Neither the token nor the
AppSecret ever appears in an error text or a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.http import JsonReply, SessionSlot, call_json, classify_reply, redact
from bot.config.settings import Secret
from bot.platform.messages import SendResult

log = logging.getLogger("civicdesk.wechat")

TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105 - a path, not a password
SEND_PATH = "/cgi-bin/message/custom/send"
TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid or expired access token: fetch anew

# errcode -> (retryable, what it means for the operator)
ERRORS: dict[int, tuple[bool, str]] = {
    -1: (True, "WeChat is busy"),
    45009: (True, "the account's daily API quota is used up"),
    45011: (True, "API calls too frequent"),
    45047: (
        True,
        "the 5 customer-service messages allowed after a user's message are used up; "
        "the user's next message allows more",
    ),
    45015: (
        False,
        "the 48-hour reply window has closed (or the user unfollowed): customer-service "
        "messages may only answer a user who wrote within the last 48 hours",
    ),
    43004: (False, "the user does not follow the account (any more)"),
    40003: (False, "the openid is not a follower of this account"),
    45002: (False, "the text is too long for WeChat"),
    48001: (False, "the account may not use the customer-service API (it must be verified)"),
    40164: (False, "this server's IP address is not in the account's IP whitelist"),
    40013: (False, "the AppID is wrong: check the channel's APP_ID"),
    40125: (False, "the AppSecret is wrong: check the channel's APP_SECRET"),
}


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # our clock: fetch a new one from then on


class WeChatApi:
    """The API calls of one account, over the app's shared session."""

    def __init__(
        self,
        channel: str,
        app_id: str,
        app_secret: Secret,
        api_base: str,
        *,
        timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.channel = channel
        self.app_id = app_id
        self._app_secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self.http = SessionSlot()
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    def attach(self, session: aiohttp.ClientSession) -> None:
        self.http.attach(session)

    async def send_text(self, openid: str, text: str) -> SendResult:
        payload = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        stale: str | None = None
        while True:
            token = await self._access_token(stale)
            if isinstance(token, SendResult):
                return token
            url = f"{self.api_base}{SEND_PATH}?access_token={quote(token, safe='')}"
            answer = await call_json(
                self.http.session, url, payload, timeout=self.timeout, secrets=[token]
            )
            if isinstance(answer, SendResult):
                return answer
            errcode, errmsg = _errcode(answer)
            if errcode not in TOKEN_ERRORS:
                return _result(answer, errcode, errmsg, [token])
            if stale is not None:  # a freshly fetched token refused as well: later
                return SendResult.failed(f"WeChat refused a fresh access token (errcode {errcode})")
            log.info(
                "channel=%s access token refused (errcode %s): fetching anew", self.channel, errcode
            )
            stale = token

    async def _access_token(self, stale: str | None) -> str | SendResult:
        """The cached access token; fetched when missing, due, or refused (`stale`)."""
        async with self._lock:  # one fetch at a time: the others wait and take its token
            current = self._token
            if (
                current is not None
                and current.value != stale
                and self._clock() < current.refresh_at
            ):
                return current.value
            secret = self._app_secret.reveal()
            payload = {"grant_type": "client_credential", "appid": self.app_id, "secret": secret}
            answer = await call_json(
                self.http.session,
                f"{self.api_base}{TOKEN_PATH}",
                payload,
                timeout=self.timeout,
                secrets=[secret],
            )
            if isinstance(answer, SendResult):
                return answer
            errcode, errmsg = _errcode(answer)
            data = answer.fields
            value, lifetime = data.get("access_token"), data.get("expires_in")
            if errcode or not isinstance(value, str) or not isinstance(lifetime, int | float):
                failed = _result(answer, errcode or -1, errmsg or "no access_token", [secret])
                return SendResult.failed(
                    f"no access token: {failed.error}",
                    retryable=failed.retryable,
                    retry_after=failed.retry_after,
                )
            # Fetch again a little before it expires (WeChat renews it 5 minutes early).
            self._token = _Token(value, self._clock() + lifetime - min(300.0, lifetime / 4))
            log.info("channel=%s access token fetched, valid %d s", self.channel, lifetime)
            return value


def _errcode(answer: JsonReply) -> tuple[int, str]:
    code, message = answer.fields.get("errcode", 0), answer.fields.get("errmsg", "")
    return (code if isinstance(code, int) else -1), (message if isinstance(message, str) else "")


def _result(answer: JsonReply, errcode: int, errmsg: str, secrets: Sequence[str]) -> SendResult:
    if answer.status != 200:
        return classify_reply(answer, secrets)
    if errcode == 0:
        return SendResult.sent(_msgid(answer.data))
    retryable, meaning = ERRORS.get(errcode, (False, "WeChat refused it"))
    detail = f"errcode {errcode}: {meaning} ({errmsg[:200]})"
    return SendResult.failed(redact(detail, secrets), retryable=retryable)


def _msgid(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("msgid") is not None:
        return str(data["msgid"])
    return None
