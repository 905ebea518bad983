"""X (formerly Twitter): mentions and direct messages in, replies and the account's posts out.

Inbound, two ways:
- The Account Activity webhook (paid access tiers): X checks the URL with a CRC challenge,
  `GET /webhooks/<name>?crc_token=T` answered `{"response_token": "sha256=<base64 HMAC-SHA256
  of T with the consumer secret>"}`, on registration and again from time to time; every delivery
  is signed the same way over its raw body in `x-twitter-webhooks-signature`. A delivery is
  answered 200 at once (X wants it within seconds); its questions are in `adapters.x_events`.
- Polling `GET /2/users/:id/mentions` (POLL_INTERVAL > 0), for access without the webhook. The
  cursor is the newest mention's id; a first run starts from now and answers nothing older.

Replies: a mention gets a reply post (`POST /2/tweets` with `reply.in_reply_to_tweet_id`), a
direct message a direct message (`POST /2/dm_conversations/with/:id/messages`). Posts count by
X's weighted length (`bot.platform.lengths.x_length`: CJK 2, URLs 23, limit 280). `publish`
posts an announcement, with its image uploaded first (`POST /2/media/upload`) where there is
one; an image X will not take leaves the text alone to go out. Every call is signed with
OAuth 1.0a as the account (`adapters.oauth1`).

Rate limits: X answers 429 with `x-rate-limit-reset` (epoch seconds), no Retry-After.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from adapters.http import (
    MAX_RETRY_AFTER,
    JsonReply,
    SessionSlot,
    classify_reply,
    exchange,
    hmac_sha256_base64,
    request_json,
    same,
)
from adapters.oauth1 import OAuth1Keys, authorization
from adapters.payload import json_object, string_values
from adapters.x_events import (
    DM_PREFIX,
    SETTINGS,
    activity_messages,
    dump_cursor,
    load_cursor,
    mention_message,
)
from bot.config.settings import AdapterSpec, ChannelConfig, channel_prefix
from bot.platform.adapter import (
    TEXT_RULES,
    HttpReply,
    PollFailed,
    PollResult,
    RawRequest,
    Unauthorized,
)
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger("civicdesk.x")

API_BASE = "https://api.x.com"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
MAX_CRC_TOKEN = 1000
POST_URL = "https://x.com/i/web/status/{}"
PAGE_SIZE = 100  # the most max_results the mentions timeline takes
MAX_PAGES = 5
RATE_LIMIT_PAUSE = 900.0  # X counts in 15-minute windows
DUPLICATE = "duplicate content"


class XAdapter:
    """One X account, its mentions and direct messages through the Account Activity webhook."""

    text_rules = TEXT_RULES["x"]

    def __init__(
        self,
        name: str,
        keys: OAuth1Keys,
        *,
        user_id: str | None = None,
        api_base: str = API_BASE,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._keys = keys
        self._own_id = user_id.strip() if user_id else None
        self._fixed_id = self._own_id is not None
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self._prefix = channel_prefix(name)
        self._http = SessionSlot()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> XAdapter:
        keys = OAuth1Keys(
            config.get("CONSUMER_KEY").strip(),
            config.secret("CONSUMER_SECRET"),
            config.secret("ACCESS_TOKEN").reveal(),
            config.secret("ACCESS_TOKEN_SECRET"),
        )
        common: dict[str, Any] = {
            "user_id": config.get("USER_ID") or None,
            "api_base": config.api_base or API_BASE,
            "timeout": config.get("TIMEOUT"),
        }
        interval = config.get("POLL_INTERVAL")
        if interval > 0:
            return XPollingAdapter(config.name, keys, poll_interval=interval, **common)
        return cls(config.name, keys, **common)

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    # --- Account Activity webhook ------------------------------------------------------------

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        if raw.method != "GET" or "crc_token" not in raw.query:
            return None
        token = raw.query["crc_token"]
        if not token or len(token) > MAX_CRC_TOKEN:
            raise Unauthorized(f"crc_token must be 1 to {MAX_CRC_TOKEN} characters", status=400)
        answer = {"response_token": self._sign(token.encode())}
        return HttpReply(200, json.dumps(answer).encode(), "application/json")

    def _sign(self, message: bytes) -> str:
        return "sha256=" + hmac_sha256_base64(self._keys.consumer_secret.reveal(), message)

    def verify(self, raw: RawRequest) -> None:
        signature = raw.header(SIGNATURE_HEADER)
        if not signature:
            raise Unauthorized(f"missing {SIGNATURE_HEADER} header: only X may post here")
        if not same(signature.strip(), self._sign(raw.body)):
            raise Unauthorized(
                f"{SIGNATURE_HEADER} does not match: check that {self._prefix}CONSUMER_SECRET is "
                "the API Key Secret of the app that registered this webhook"
            )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, 'an Account Activity event: {"for_user_id": ..., ...}')
        for_user, messages = activity_messages(self.name, data, self._own_id)
        if self._own_id is None and for_user is not None:
            self._own_id = for_user  # a webhook serves one account per channel
        return messages

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"")

    # --- Replies -------------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        if msg.public:
            post = string_values(msg.reply_context).get("post") or msg.conversation
            payload: dict[str, Any] = {"text": msg.text, "reply": {"in_reply_to_tweet_id": post}}
            reply = await self._call("POST", "/2/tweets", payload)
            return self._result(reply, _post_id)
        recipient = msg.recipient or msg.conversation
        path = f"/2/dm_conversations/with/{recipient}/messages"
        reply = await self._call("POST", path, {"text": msg.text})
        return self._result(reply, _dm_event_id)

    async def publish(self, publication: Publication) -> SendResult:
        """A new post of the account: the announcement's text, with its image where X takes it."""
        payload: dict[str, Any] = {"text": publication.text}
        if publication.image:
            media = await self._upload(publication.image, publication.image_type or "image/png")
            if isinstance(media, SendResult):
                if media.retryable:
                    return media
                log.warning(
                    "channel=%s publication=%s image refused (%s): posting the text alone",
                    self.name,
                    publication.id,
                    media.error,
                )
            else:
                payload["media"] = {"media_ids": [media]}
        result = self._result(await self._call("POST", "/2/tweets", payload), _post_id)
        if result.ok and result.platform_id:
            return SendResult.sent(result.platform_id, url=POST_URL.format(result.platform_id))
        return result

    async def _upload(self, image: bytes, content_type: str) -> str | SendResult:
        """The media id of an uploaded image (`POST /2/media/upload`, multipart)."""
        boundary = uuid.uuid4().hex
        body = _multipart(
            boundary,
            {"media_category": "tweet_image", "media_type": content_type},
            ("media", "image", content_type, image),
        )
        url = self.api_base + "/2/media/upload"
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": authorization("POST", url, self._keys),
        }
        reply = await exchange(
            self._http.session,
            "POST",
            url,
            body,
            headers,
            timeout=self.timeout,
            secrets=self._keys.secrets(),
        )
        if not isinstance(reply, JsonReply):
            return reply
        data = reply.fields.get("data")
        media_id = data.get("id") if isinstance(data, dict) else None
        if 200 <= reply.status < 300 and isinstance(media_id, str):
            return media_id
        return self._failure(reply)

    async def _call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> JsonReply | SendResult:
        url = self.api_base + path
        auth = authorization(method, url, self._keys, query=params)
        return await request_json(
            self._http.session,
            method,
            url,
            payload,
            params=params,
            headers={"Authorization": auth},
            timeout=self.timeout,
            secrets=self._keys.secrets(),
        )

    def _result(
        self, reply: JsonReply | SendResult, sent_id: Callable[[Any], str | None]
    ) -> SendResult:
        if isinstance(reply, SendResult):
            return reply
        if 200 <= reply.status < 300:
            return SendResult.sent(sent_id(reply.data))
        return self._failure(reply)

    def _failure(self, reply: JsonReply) -> SendResult:
        detail = _error_detail(reply.data) or reply.text[:300]
        if reply.status == 429:
            return SendResult.failed(
                f"HTTP 429: rate limited ({detail})",
                retryable=True,
                retry_after=self._reset_in(reply.headers),
            )
        if reply.status == 401:
            return SendResult.failed(
                f"HTTP 401 ({detail}): X refused the keys; check {self._prefix}CONSUMER_KEY, "
                f"CONSUMER_SECRET, ACCESS_TOKEN and ACCESS_TOKEN_SECRET",
                retryable=False,
            )
        if reply.status == 403 and DUPLICATE in detail.lower():
            return SendResult.failed(
                f"HTTP 403 ({detail}): X refuses the same text twice; an earlier attempt may "
                "have posted it",
                retryable=False,
            )
        if reply.status == 403:
            return SendResult.failed(
                f"HTTP 403 ({detail}): X does not allow this (the citizen limited who may "
                "reply or send messages, or the app lacks the permission)",
                retryable=False,
            )
        return classify_reply(reply, self._keys.secrets())

    def _reset_in(self, headers: Mapping[str, str]) -> float:
        """Seconds until `x-rate-limit-reset` (epoch seconds), capped; X sends no Retry-After."""
        try:
            reset = float(headers.get("x-rate-limit-reset", ""))
        except ValueError:
            return RATE_LIMIT_PAUSE
        return min(max(reset - self._clock(), 1.0), MAX_RETRY_AFTER)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


class XPollingAdapter(XAdapter):
    """An X account whose mentions are polled (a Poller); its webhook still works if set up."""

    def __init__(self, name: str, keys: OAuth1Keys, *, poll_interval: float, **kwargs: Any):
        super().__init__(name, keys, **kwargs)
        self.poll_interval = poll_interval

    async def poll(self, cursor: str | None) -> PollResult:
        own_id = await self._account_id()
        state = load_cursor(cursor)
        path = f"/2/users/{own_id}/mentions"
        if state is None:
            page = await self._get(path, {"max_results": "5"})
            newest = _newest_id(page)
            start = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            begun = {"since_id": newest} if newest else {"start_time": start}
            log.info("channel=%s polling mentions from now on (%s)", self.name, begun)
            return PollResult([], dump_cursor(begun))
        params = {
            **state,
            "max_results": str(PAGE_SIZE),
            "tweet.fields": "author_id,created_at,lang,referenced_tweets,attachments",
            "expansions": "author_id",
            "user.fields": "username,name",
        }
        posts: dict[int, Mapping[str, Any]] = {}
        users: dict[str, Any] = {}
        for _ in range(MAX_PAGES):
            page = await self._get(path, params)
            for post in _list(page.get("data")):
                if isinstance(post.get("id"), str) and post["id"].isdigit():
                    posts[int(post["id"])] = post
            includes = page.get("includes")
            for user in _list(includes.get("users") if isinstance(includes, dict) else None):
                if isinstance(user.get("id"), str):
                    users[user["id"]] = user
            meta = page.get("meta")
            token = meta.get("next_token") if isinstance(meta, dict) else None
            if not isinstance(token, str) or not token:
                break
            params = {**params, "pagination_token": token}
        messages = [
            message
            for key in sorted(posts)
            if (message := mention_message(self.name, posts[key], own_id, users)) is not None
        ]
        if not posts:
            return PollResult([])
        return PollResult(messages, dump_cursor({"since_id": str(max(posts))}))

    async def _account_id(self) -> str:
        if self._own_id is None:
            data = (await self._get("/2/users/me", {})).get("data")
            found = data.get("id") if isinstance(data, dict) else None
            if not isinstance(found, str) or not found.isdigit():
                raise PollFailed(f"/2/users/me gave no id; set {self._prefix}USER_ID")
            self._own_id = found
        return self._own_id

    async def _get(self, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        reply = await self._call("GET", path, params=params)
        if not isinstance(reply, JsonReply):
            raise PollFailed(reply.error or "the request failed")
        if reply.status == 429:
            raise PollFailed(f"{path}: rate limited", retry_after=self._reset_in(reply.headers))
        if not 200 <= reply.status < 300:
            raise PollFailed(f"{path}: {self._failure(reply).error}")
        return reply.fields


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _newest_id(page: Mapping[str, Any]) -> str | None:
    meta = page.get("meta")
    newest = meta.get("newest_id") if isinstance(meta, dict) else None
    return newest if isinstance(newest, str) and newest.isdigit() else None


def _post_id(data: Any) -> str | None:
    found = data.get("data") if isinstance(data, dict) else None
    value = found.get("id") if isinstance(found, dict) else None
    return value if isinstance(value, str) else None


def _dm_event_id(data: Any) -> str | None:
    found = data.get("data") if isinstance(data, dict) else None
    value = found.get("dm_event_id") if isinstance(found, dict) else None
    return DM_PREFIX + value if isinstance(value, str) else None


def _error_detail(data: Any) -> str:
    """X's v2 problem (`{"title", "detail"}`) or v1.1 errors (`{"errors": [{"message"}]}`)."""
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("detail"), str):
        return str(data["detail"])[:300]
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or errors[0].get("detail") or "")[:300]
    return str(data.get("title") or "")[:300]


def _multipart(
    boundary: str, fields: Mapping[str, str], file: tuple[str, str, str, bytes]
) -> bytes:
    """A multipart/form-data body (RFC 7578): `fields`, then one file part."""
    lines: list[bytes] = []
    for key, value in fields.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{key}"'.encode(),
            b"",
            value.encode(),
        ]
    name, filename, content_type, content = file
    lines += [
        f"--{boundary}".encode(),
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'.encode(),
        f"Content-Type: {content_type}".encode(),
        b"",
        content,
        f"--{boundary}--".encode(),
        b"",
    ]
    return b"\r\n".join(lines)


SPEC = AdapterSpec(
    name="x",
    summary="X: mentions and direct messages by the Account Activity webhook (or polled "
    "mentions), replies, direct messages and posts out.",
    settings=SETTINGS,
    build=XAdapter.from_config,
    api_base=API_BASE,
)
