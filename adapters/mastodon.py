"""Mastodon: @-mentions by polling the account's notifications, replies as statuses.

Inbound: `GET /api/v1/notifications?types[]=mention&min_id=<cursor>` with the account's token.
`min_id` pages forward from the cursor (oldest new page first), so a poll that stops after a
few pages (or at a rate limit) loses nothing: the next poll goes on from where it stopped. The
cursor is the newest notification id seen; a first run only records the newest one.

Replies: `POST /api/v1/statuses` with `in_reply_to_id` and the status starting `@acct ` (the
question's `mention`, put by the core before a public answer; added here to a direct answer,
because a direct status reaches only the accounts it mentions). Visibility follows the question:
a public question gets an unlisted answer by default (in the thread, on the account's profile,
not pushed into the public timelines: what instance rules ask of automated accounts), an
unlisted one an unlisted one; a direct or followers-only question gets a direct answer, because
a followers-only status of the office would show the answer to all of the office's followers.
`Idempotency-Key`
makes a retried POST return the first status instead of posting twice.

Announcements (`publish`): the picture first (`POST /api/v2/media`, multipart `file`), then a
public status with its `media_ids`, under the same Idempotency-Key scheme (the outbox row id), so
a publication retried after a crash returns the status already posted. The post's link is the
status's `url`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from adapters.http import (
    JsonReply,
    SessionSlot,
    classify,
    http_url,
    post_multipart,
    request_json,
)
from adapters.mastodon_text import (
    PUBLIC_VISIBILITIES,
    addressed,
    error_text,
    id_order,
    ids,
    mention_message,
    mentioned_accounts,
    notifications,
    rate_limit_wait,
    retry_after,
)
from adapters.payload import string_values
from adapters.publishing import picture
from bot.config.settings import (
    AdapterSpec,
    ChannelConfig,
    ChannelSetting,
    ConfigError,
    Secret,
    seconds,
)
from bot.config.settings import channel_prefix as prefix_of
from bot.platform.adapter import (
    TEXT_RULES,
    HttpReply,
    PollFailed,
    PollResult,
    RawRequest,
    Unauthorized,
)
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger(__name__)

MEDIA_CHECKS = 8  # a picture is processed in a second or two; the send's budget is 20 s
MEDIA_CHECK_SECONDS = 1.0
PAGE_SIZE = 40  # Mastodon's default page of notifications (80 at most)
MAX_PAGES = 5  # per poll; the rest waits for the next poll (min_id loses nothing)


def _public_visibility(value: str) -> str:
    value = value.strip().lower()
    if value not in PUBLIC_VISIBILITIES:
        raise ValueError("must be unlisted or public")
    return value


SETTINGS = (
    ChannelSetting(
        "ACCESS_TOKEN",
        "Access token of the office's account, with the scopes read:notifications and "
        "write:statuses. The instance's address goes in API_BASE.",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "PUBLIC_VISIBILITY",
        "Visibility of answers to public questions: unlisted (in the thread and on the profile, "
        "not in public timelines) or public.",
        default="unlisted",
        parse=_public_visibility,
    ),
    ChannelSetting(
        "POLL_INTERVAL",
        "Seconds between two polls of the notifications (the API allows 300 requests per "
        "5 minutes).",
        default="30",
        parse=seconds,
    ),
    ChannelSetting("TIMEOUT", "Seconds to wait for the instance.", default="10", parse=seconds),
)


class MastodonAdapter:
    """One Mastodon account, polled for mentions."""

    text_rules = TEXT_RULES["mastodon"]

    def __init__(
        self,
        name: str,
        access_token: Secret,
        api_base: str,
        *,
        public_visibility: str = "unlisted",
        poll_interval: float = 30.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.api_base = api_base.rstrip("/")
        self.public_visibility = public_visibility
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._token = access_token
        self._clock = clock
        self._http = SessionSlot()
        # The ids every mention notification's status mentions: the account's own id is in all
        # of them, so their intersection narrows down to it (no API call needed).
        self._always_mentioned: set[str] | None = None

    def _learn_own_id(self, notification: Mapping[str, Any]) -> None:
        status = notification.get("status")
        if notification.get("type") != "mention" or not isinstance(status, Mapping):
            return
        ids_here = set(mentioned_accounts(status))
        if not ids_here:
            return
        if self._always_mentioned is None:
            self._always_mentioned = ids_here
        elif self._always_mentioned & ids_here:
            self._always_mentioned &= ids_here

    def _own_id(self) -> str | None:
        known = self._always_mentioned
        return next(iter(known)) if known is not None and len(known) == 1 else None

    @classmethod
    def from_config(cls, config: ChannelConfig) -> MastodonAdapter:
        # bot.config.settings refuses a channel without API_BASE (api_base_required); it must be a
        # URL.
        try:
            api_base = http_url(config.api_base or "")
        except ValueError as exc:
            raise ConfigError(
                f"{config.var('API_BASE')}={config.api_base!r} is not valid ({exc}): the "
                "address of the Mastodon instance the account is on, e.g. https://mastodon.social"
            ) from None
        return cls(
            config.name,
            config.secret("ACCESS_TOKEN"),
            api_base,
            public_visibility=config.get("PUBLIC_VISIBILITY"),
            poll_interval=config.get("POLL_INTERVAL"),
            timeout=config.get("TIMEOUT"),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    # --- no push: the webhook route has nothing to take ---------------------------------------

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None

    def verify(self, raw: RawRequest) -> None:
        raise Unauthorized(
            f"channel {self.name} polls its Mastodon notifications and takes no webhooks"
        )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        return []

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(204)

    # --- polling --------------------------------------------------------------------------------

    async def poll(self, cursor: str | None) -> PollResult:
        if not cursor:
            reply = await self._notifications({"limit": "1"})
            seen = ids(reply.data)
            newest = max(seen, key=id_order) if seen else "0"
            log.info("channel=%s polling mentions after notification %s", self.name, newest)
            return PollResult([], newest)
        messages: list[InboundMessage] = []
        wait: float | None = None
        for _ in range(MAX_PAGES):
            try:
                reply = await self._notifications({"min_id": cursor, "limit": str(PAGE_SIZE)})
            except PollFailed as exc:
                if not messages:
                    raise
                log.warning("channel=%s poll stopped after some pages: %s", self.name, exc)
                return PollResult(messages, cursor, retry_after=exc.retry_after)
            page = sorted(notifications(reply.data), key=lambda n: id_order(n["id"]))
            for notification in page:
                self._learn_own_id(notification)
            for notification in page:
                message = mention_message(self.name, notification, self._own_id())
                if message is not None:
                    messages.append(message)
            if page:
                cursor = page[-1]["id"]
            wait = rate_limit_wait(reply.headers, self._clock)
            if len(page) < PAGE_SIZE or wait is not None:
                break
        return PollResult(messages, cursor, retry_after=wait)

    async def _notifications(self, params: Mapping[str, str]) -> JsonReply:
        token = self._token.reveal()
        reply = await request_json(
            self._http.session,
            "GET",
            f"{self.api_base}/api/v1/notifications",
            params={"types[]": "mention", **params},
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            raise PollFailed(reply.error or "the request failed")
        if reply.status == 429:
            raise PollFailed(
                "rate limited (HTTP 429)", retry_after=retry_after(reply.headers, self._clock)
            )
        if reply.status in (401, 403):
            raise PollFailed(
                f"HTTP {reply.status}: the instance refused the token; it needs the scope "
                f"read:notifications ({prefix_of(self.name)}ACCESS_TOKEN)"
            )
        if not 200 <= reply.status < 300 or not isinstance(reply.data, list):
            raise PollFailed(f"notifications: HTTP {reply.status} {reply.text[:200]}")
        return reply

    # --- replies --------------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        token = self._token.reveal()
        context = string_values(msg.reply_context)
        asked = context.get("visibility", "public" if msg.public else "direct")
        if not msg.public or asked not in PUBLIC_VISIBILITIES:
            visibility = "direct"
        else:
            visibility = "unlisted" if asked == "unlisted" else self.public_visibility
        payload: dict[str, Any] = {
            # A public answer starts with the question's mention already (the core puts it).
            "status": (
                addressed(msg.text, context.get("acct"), self.text_rules)
                if visibility == "direct"
                else msg.text
            ),
            "visibility": visibility,
        }
        in_reply_to = msg.reply_to or msg.conversation
        if in_reply_to:
            payload["in_reply_to_id"] = in_reply_to
        headers = {
            "Authorization": f"Bearer {token}",
            # Kept an hour by Mastodon, per account: the channel keeps two desks sharing an
            # account apart.
            "Idempotency-Key": f"civicdesk-{self.name}-{msg.id}",
        }
        reply = await request_json(
            self._http.session,
            "POST",
            f"{self.api_base}/api/v1/statuses",
            payload,
            headers=headers,
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            return reply
        return self._result(reply)

    async def publish(self, publication: Publication) -> SendResult:
        token = self._token.reveal()
        headers = {"Authorization": f"Bearer {token}"}
        payload: dict[str, Any] = {"status": publication.text, "visibility": "public"}
        upload = picture(publication, "file")
        if upload is not None:
            reply = await post_multipart(
                self._http.session,
                f"{self.api_base}/api/v2/media",
                {"description": publication.text.split("\n", 1)[0][:1500]},
                upload,
                headers=headers,
                timeout=max(self.timeout, 30.0),
                secrets=[token],
            )
            if not isinstance(reply, JsonReply):
                return reply
            media_id = reply.fields.get("id")
            if not 200 <= reply.status < 300 or not isinstance(media_id, str):
                return self._result(reply)
            if reply.status == 202:  # processed in the background: a status cannot name it yet
                waited = await self._media_ready(media_id, headers, token)
                if waited is not None:
                    return waited
            payload["media_ids"] = [media_id]
        reply = await request_json(
            self._http.session,
            "POST",
            f"{self.api_base}/api/v1/statuses",
            payload,
            headers={**headers, "Idempotency-Key": f"civicdesk-{self.name}-{publication.id}"},
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            return reply
        return self._result(reply)

    async def _media_ready(
        self, media_id: str, headers: Mapping[str, str], token: str
    ) -> SendResult | None:
        """Wait for an uploaded picture to be processed (`GET /api/v1/media/:id`: 206 while it
        is, 200 once done); None when ready, else why not (tried again later)."""
        for _ in range(MEDIA_CHECKS):
            await asyncio.sleep(MEDIA_CHECK_SECONDS)
            reply = await request_json(
                self._http.session,
                "GET",
                f"{self.api_base}/api/v1/media/{media_id}",
                headers=headers,
                timeout=self.timeout,
                secrets=[token],
            )
            if not isinstance(reply, JsonReply):
                return reply
            if reply.status == 200:
                return None
            if reply.status != 206:
                return self._result(reply)
        return SendResult.failed("the picture is still being processed by the instance")

    def _result(self, reply: JsonReply) -> SendResult:
        if 200 <= reply.status < 300:
            status_id = reply.fields.get("id")
            url = reply.fields.get("url")
            return SendResult.sent(
                status_id if isinstance(status_id, str) else None,
                url=url if isinstance(url, str) else None,
            )
        if reply.status == 429:
            return SendResult.failed(
                "rate limited (HTTP 429)",
                retryable=True,
                retry_after=retry_after(reply.headers, self._clock),
            )
        said = error_text(reply)
        if reply.status in (401, 403):
            return SendResult.failed(
                f"HTTP {reply.status}{said}: the token needs the scope write:statuses "
                f"({prefix_of(self.name)}ACCESS_TOKEN)",
                retryable=False,
            )
        if reply.status == 404:
            return SendResult.failed(
                f"HTTP 404{said}: the question was deleted or cannot be seen", retryable=False
            )
        if reply.status == 422:
            return SendResult.failed(f"HTTP 422{said}: the instance refused it", retryable=False)
        return classify(reply.status, reply.headers, reply.text)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


SPEC = AdapterSpec(
    name="mastodon",
    summary="Mastodon: polls the account's mention notifications, answers in the thread "
    "(direct questions directly).",
    settings=SETTINGS,
    build=MastodonAdapter.from_config,
    # No default instance: every channel's API_BASE names its own (bot.config.settings checks it
    # is set).
    api_base=None,
    api_base_required=True,
)
