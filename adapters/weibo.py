"""Weibo (新浪微博): public @-mentions by polling, private messages by the fans-service push.

Inbound, two ways that can run together:
- Polling (any app with an OAuth2 token): `GET /2/statuses/mentions.json` (statuses that @ the
  account) and `GET /2/comments/mentions.json` (comments that @ it), `since_id` per list. The
  cursor is `{"statuses": since_id, "comments": since_id}`; a first run records the newest ids
  and answers nothing from before.
- The fans-service ("消息服务") push of verified accounts: a GET with `echostr` to verify the
  URL, then JSON POSTs. Both carry `signature = sha1(sorted([app_secret, timestamp, nonce]))`
  in the query; the body is NOT signed, so the timestamp's freshness is checked too.

Replies: a mention in a status gets a comment on it (`comments/create`), a mention in a comment
a reply to that comment (`comments/reply`, with the status id kept in `reply_context`); a private
message gets a private reply (`messages/reply` on m.api.weibo.com, allowed for 48 h after the
citizen's message). Weibo reports errors as JSON `error_code`, classified in `weibo_api`.

Announcements (`publish`): `POST /2/statuses/share.json` (its text must carry a link of the app's
safe domain, which an announcement's link is; with a picture as multipart `pic`). Weibo keeps no
idempotency key: a publication whose earlier attempt ended in doubt first looks for itself in the
account's own timeline (`statuses/user_timeline.json`, links compared without their t.cn form)
and posts only when it is not there. Comments under the account's posts that do not @ it (replies
to an announcement) come from `comments/to_me.json`, polled with the mentions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from adapters.http import (
    JsonReply,
    SessionSlot,
    check_fresh,
    classify,
    parse_retry_after,
    post_form,
    post_multipart,
    request_json,
    same,
    sha1_sorted,
)
from adapters.payload import compact, json_object, string_values
from adapters.publishing import not_again, picture
from adapters.weibo_api import (
    MESSAGES_API_BASE,
    SETTINGS,
    dump_cursor,
    idstr,
    load_cursor,
    mention_items,
    mention_message,
    mentioned_names,
    push_message,
    weibo_error,
)
from bot.config.settings import AdapterSpec, ChannelConfig, Secret, channel_prefix
from bot.platform.adapter import (
    TEXT_RULES,
    HttpReply,
    PollFailed,
    PollResult,
    RawRequest,
    Unauthorized,
)
from bot.platform.lengths import URL_RE
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger(__name__)

API_BASE = "https://api.weibo.com"
MENTION_LISTS = (
    ("statuses", "/2/statuses/mentions.json"),
    ("comments", "/2/comments/mentions.json"),
    # Comments on the account's own posts (replies to an announcement), @ or not; one that also
    # @s the account is in both lists with the same id, and the inbox keeps it once.
    ("to_me", "/2/comments/to_me.json"),
)
PAGE_SIZE = 200  # the largest `count` both lists take
MAX_PAGES = 5  # per list and poll: 1000 new mentions between two polls is far beyond a city desk


class WeiboAdapter:
    """One Weibo account: a Poller of its mentions and the receiver of its fans-service push."""

    text_rules = TEXT_RULES["weibo"]

    def __init__(
        self,
        name: str,
        access_token: Secret,
        *,
        api_base: str = API_BASE,
        messages_api_base: str = MESSAGES_API_BASE,
        app_secret: Secret | None = None,
        user_id: str | None = None,
        client_ip: str | None = None,
        poll_interval: float = 180.0,
        replay_window: float = 300.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self._token = access_token
        self._app_secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.messages_api_base = messages_api_base.rstrip("/")
        self._own_id = user_id.strip() if user_id else None
        self._client_ip = client_ip
        self.replay_window = replay_window
        self.timeout = timeout
        self._clock = clock
        self._prefix = channel_prefix(name)
        self._http = SessionSlot()
        self._always_named: set[str] | None = None  # the @names every mention carried

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WeiboAdapter:
        secret = config.get("APP_SECRET")
        return cls(
            config.name,
            config.secret("ACCESS_TOKEN"),
            api_base=config.api_base or API_BASE,
            messages_api_base=config.get("MESSAGES_API_BASE"),
            app_secret=secret if isinstance(secret, Secret) else None,
            user_id=config.get("USER_ID"),
            client_ip=config.get("CLIENT_IP"),
            poll_interval=config.get("POLL_INTERVAL"),
            replay_window=config.get("REPLAY_WINDOW"),
            timeout=config.get("TIMEOUT"),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    # --- fans-service push ---------------------------------------------------------------------

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        if raw.method != "GET" or "echostr" not in raw.query:
            return None
        self._check_signature(raw)  # Unauthorized: the web layer answers 401 and counts it
        return HttpReply(200, raw.query["echostr"].encode(), "text/plain; charset=utf-8")

    def verify(self, raw: RawRequest) -> None:
        check_fresh(
            self._check_signature(raw),
            self._clock(),
            self.replay_window,
            name="timestamp",
            fix="a replayed push, or a wrong clock here",
            milliseconds=True,  # Weibo's examples use milliseconds
        )

    def _check_signature(self, raw: RawRequest) -> str:
        if self._app_secret is None:
            raise Unauthorized(
                f"this channel takes no push: set {self._prefix}APP_SECRET to the AppSecret "
                "entered in the fans service's developer mode"
            )
        signature = raw.query.get("signature", "")
        timestamp = raw.query.get("timestamp", "").strip()
        nonce = raw.query.get("nonce", "")
        if not (signature and timestamp and nonce):
            raise Unauthorized("signature, timestamp and nonce are required in the query")
        expected = sha1_sorted(self._app_secret.reveal(), timestamp, nonce)
        if not same(signature.strip().lower(), expected):
            raise Unauthorized(
                "signature does not match: it is sha1 of the AppSecret, timestamp and nonce "
                f"sorted and joined; check {self._prefix}APP_SECRET"
            )
        return timestamp

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, "a push in JSON (set the push format to JSON)")
        return push_message(self.name, data, self._own_id)

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"")  # an empty body: stored, no passive reply, no retries

    # --- polling --------------------------------------------------------------------------------

    async def poll(self, cursor: str | None) -> PollResult:
        own_id = await self._account_id()
        state = load_cursor(cursor)
        if state is None:
            newest = {kind: await self._newest(path) for kind, path in MENTION_LISTS}
            log.info("channel=%s polling mentions from now on (%s)", self.name, newest)
            return PollResult([], dump_cursor(newest))
        messages: list[InboundMessage] = []
        moved = dict(state)
        for kind, path in MENTION_LISTS:
            items = await self._since(kind, path, state[kind])
            for item in items:
                self._learn_own_name(item)
                shape = "statuses" if kind == "statuses" else "comments"
                message = mention_message(self.name, shape, item, own_id, self._own_name())
                if message is not None:
                    messages.append(message)
            if items:
                moved[kind] = idstr(items[-1]) or moved[kind]
        return PollResult(messages, dump_cursor(moved))

    def _learn_own_name(self, item: Mapping[str, Any]) -> None:
        """The account's @name is in the text of everything that mentions it: the names common
        to all mentions narrow down to it (no API call)."""
        names = mentioned_names(str(item.get("text") or ""))
        if not names:
            return
        if self._always_named is None:
            self._always_named = names
        elif self._always_named & names:
            self._always_named &= names

    def _own_name(self) -> str | None:
        known = self._always_named
        return next(iter(known)) if known is not None and len(known) == 1 else None

    async def _account_id(self) -> str:
        if self._own_id is None:
            data = await self._get("/2/account/get_uid.json", {})
            uid = data.get("uid")
            if not isinstance(uid, int | str) or not str(uid).isdigit():
                raise PollFailed(f"account/get_uid.json gave no uid; set {self._prefix}USER_ID")
            self._own_id = str(uid)
        return self._own_id

    async def _newest(self, path: str) -> str:
        data = await self._get(path, {"count": "1"})
        items = mention_items(data)
        ids = [int(i) for i in (idstr(item) for item in items) if i is not None]
        return str(max(ids)) if ids else "0"

    async def _since(self, kind: str, path: str, since_id: str) -> list[Mapping[str, Any]]:
        """Everything after `since_id`, oldest first, paging back with max_id."""
        found: dict[int, Mapping[str, Any]] = {}
        params = {"since_id": since_id, "count": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            page = mention_items(await self._get(path, params))
            new = {int(i): item for item in page if (i := idstr(item)) and int(i) > int(since_id)}
            found.update(new)
            if len(page) < PAGE_SIZE or not new:
                break
            params = {**params, "max_id": str(min(new) - 1)}  # max_id is inclusive
        else:
            log.warning(
                "channel=%s over %d new %s since the last poll: the oldest are skipped",
                self.name,
                MAX_PAGES * PAGE_SIZE,
                kind,
            )
        return [found[key] for key in sorted(found)]

    async def _get(self, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        token = self._token.reveal()
        reply = await request_json(
            self._http.session,
            "GET",
            self.api_base + path,
            params={**params, "access_token": token},
            timeout=self.timeout,
            secrets=[token],
        )
        if not isinstance(reply, JsonReply):
            raise PollFailed(reply.error or "the request failed")
        error = weibo_error(reply.data, f"{self._prefix}ACCESS_TOKEN")
        if error is not None:
            raise PollFailed(f"{path}: {error.message}", retry_after=error.retry_after)
        if not 200 <= reply.status < 300 or not isinstance(reply.data, dict):
            raise PollFailed(
                f"{path}: HTTP {reply.status} {reply.text[:200]}",
                retry_after=parse_retry_after(reply.headers.get("Retry-After")),
            )
        return reply.data

    # --- replies --------------------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> SendResult:
        token = self._token.reveal()
        context = string_values(msg.reply_context)
        if not msg.public:
            receiver = msg.recipient or msg.conversation
            url = self.messages_api_base + "/2/messages/reply.json"
            data = compact({"text": msg.text})
            form = {"receiver_id": receiver, "type": "text", "data": data, "save_sender_box": "1"}
            params: dict[str, str] = {"access_token": token}
        else:
            params = {}
            status_id = context.get("id") or msg.conversation
            form = {"access_token": token, "id": status_id, "comment": msg.text}
            if context.get("kind") == "comment" and context.get("cid"):
                url = self.api_base + "/2/comments/reply.json"
                form["cid"] = context["cid"]
                # The composer already starts with @name: Weibo's own "回复@name:" would double it.
                form["without_mention"] = "1" if msg.text.startswith("@") else "0"
            else:
                url = self.api_base + "/2/comments/create.json"
            form["comment_ori"] = "0"
            if self._client_ip:
                form["rip"] = self._client_ip
        reply = await post_form(
            self._http.session, url, form, params=params, timeout=self.timeout, secrets=[token]
        )
        return self._result(reply)

    # --- announcements ----------------------------------------------------------------------

    async def publish(self, publication: Publication) -> SendResult:
        token = self._token.reveal()
        if publication.in_doubt:
            try:
                found = await self._find_own_post(publication.text)
            except PollFailed as exc:
                log.warning("channel=%s own timeline unreadable: %s", self.name, exc)
                return not_again("Weibo", publication)
            if found is not None:
                log.info(
                    "channel=%s publication %d was posted before the restart as %s",
                    self.name,
                    publication.id,
                    found,
                )
                return SendResult.sent(found, url=status_url(found))
        url = self.api_base + "/2/statuses/share.json"
        form = {"access_token": token, "status": publication.text}
        if self._client_ip:
            form["rip"] = self._client_ip
        upload = picture(publication, "pic")
        if upload is None:
            reply = await post_form(
                self._http.session, url, form, timeout=self.timeout, secrets=[token]
            )
        else:
            reply = await post_multipart(
                self._http.session,
                url,
                form,
                upload,
                timeout=max(self.timeout, 30.0),
                secrets=[token],
            )
        result = self._result(reply)
        if result.ok and result.platform_id:
            return SendResult.sent(result.platform_id, url=status_url(result.platform_id))
        return result

    async def _find_own_post(self, text: str) -> str | None:
        """The id of the account's recent status with this text (links aside), if any."""
        data = await self._get("/2/statuses/user_timeline.json", {"count": "50"})
        wanted = _without_links(text)
        for item in mention_items(data):
            if _without_links(str(item.get("text") or "")) == wanted:
                return idstr(item)
        return None

    def _result(self, reply: JsonReply | SendResult) -> SendResult:
        if not isinstance(reply, JsonReply):
            return reply
        error = weibo_error(reply.data, f"{self._prefix}ACCESS_TOKEN")
        if error is not None:
            return SendResult.failed(
                error.message, retryable=error.retryable, retry_after=error.retry_after
            )
        if not 200 <= reply.status < 300:
            return classify(reply.status, reply.headers, reply.text)
        data = reply.fields
        if data.get("result") is False:
            return SendResult.failed(
                f"Weibo refused the reply: {reply.text[:200]}", retryable=False
            )
        return SendResult.sent(idstr(data))

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


def status_url(status_id: str) -> str:
    """A status's public page (the mobile site takes the numeric id)."""
    return f"https://m.weibo.cn/status/{status_id}"


def _without_links(text: str) -> str:
    """The text as Weibo may give it back: links become t.cn links, blanks may change."""
    return "".join(URL_RE.sub("", text).split())


SPEC = AdapterSpec(
    name="weibo",
    summary="Weibo: polls @-mentions (statuses and comments), takes the fans-service push of "
    "private messages, replies with comments or private messages.",
    settings=SETTINGS,
    build=WeiboAdapter.from_config,
    api_base=API_BASE,
)
