"""Slack apps through the Events API: @mentions in channels answered in a thread, direct
messages answered in the DM.

Every request is signed: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret,
"v0:<X-Slack-Request-Timestamp>:<raw body>")>`, refused more than 300 s from the server's clock.
The `url_verification` handshake is a signed POST too, and its challenge is echoed only once the
signature checks out: the handshake runs before `verify` in the web layer, so it verifies itself
(an unsigned one raises Unauthorized: 401, counted and logged as a refusal).

A mention in a channel arrives twice, as `app_mention` and (with `message.channels`) as a channel
`message`; only the `app_mention` is taken. The dedup key is the `event_id`, which Slack keeps on
its retries (`X-Slack-Retry-Num`), so a retried event is stored once.

Staff mode (the channel has a STAFF_ROOM, a channel id): tickets are posted at the top level of
that channel and their updates in the ticket's thread; what people write in a thread there is
staff acting on the ticket (`reply_to` = "<channel>:<thread_ts>", the id the ticket post was sent
under), without a mention. Such a message may arrive as `message` and as `app_mention` (two
event ids), so its dedup key is "<channel>:<ts>", the message's own identity.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from adapters.http import (
    SessionSlot,
    call_json,
    check_fresh,
    hmac_sha256_hex,
    is_retryable_status,
    parse_retry_after,
    same,
)
from adapters.payload import compact, json_object, load_object, read_json
from adapters.slack_users import SlackDirectory, profile_name
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, Secret
from bot.platform.adapter import TEXT_RULES, BadRequest, HttpReply, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, OutboundMessage, SendResult

log = logging.getLogger("civicdesk.slack")

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SCHEME = "v0="
REPLAY_WINDOW = 300.0  # what Slack's own SDKs allow
API_BASE = "https://slack.com/api"
TIMEOUT = 10.0
MAX_ID = 120
"""The longest event id, user id, channel id or timestamp read (Slack's have 9 to 20
characters): "<channel>:<ts>" then fits the inbox's 255-character columns."""
# User messages that carry a subtype: a thread reply also sent to the channel, a file with text.
USER_SUBTYPES = ("thread_broadcast", "file_share")
# ok:false errors that may pass on their own; every other error needs someone to act.
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
HINTS = {
    "not_in_channel": "invite the app to the channel (/invite @app)",
    "channel_not_found": "the channel was deleted, or the app cannot see it",
    "is_archived": "the channel is archived",
    "invalid_auth": "the BOT_TOKEN is wrong",
    "not_authed": "no BOT_TOKEN was sent",
    "token_revoked": "the app was uninstalled or its token revoked: reinstall it",
    "account_inactive": "the app was uninstalled or its token revoked: reinstall it",
    "missing_scope": "add the chat:write scope and reinstall the app",
    "msg_too_long": "the reply is too long",
}
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature value of a body sent at `timestamp` (unix seconds, as text)."""
    return SCHEME + hmac_sha256_hex(secret, b"v0:" + timestamp.encode("ascii") + b":" + body)


def _bot_token(value: str) -> str:
    if not value.strip().startswith("xox"):
        raise ValueError("must be the Bot User OAuth Token (xoxb-...) of the installed app")
    return value.strip()


SETTINGS = (
    ChannelSetting(
        "SIGNING_SECRET",
        "The app's Signing Secret (Basic Information → App Credentials).",
        required=True,
        secret=True,
    ),
    ChannelSetting(
        "BOT_TOKEN",
        "The Bot User OAuth Token (xoxb-...) from OAuth & Permissions.",
        required=True,
        secret=True,
        parse=_bot_token,
    ),
)


class SlackAdapter:
    """One Slack app installed in one workspace."""

    text_rules = TEXT_RULES["slack"]

    def __init__(
        self,
        name: str,
        signing_secret: Secret,
        bot_token: Secret,
        *,
        api_base: str = API_BASE,
        staff_room: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.staff_room = staff_room
        self._signing_secret = signing_secret
        self._bot_token = bot_token
        self.api_base = api_base.rstrip("/")
        self._clock = clock
        self._http = SessionSlot()
        self._directory = SlackDirectory(self._http, self.api_base, bot_token)
        # The app's bot user ids, learnt from envelopes' authorizations and auth.test.
        self._own: set[str] = set()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> SlackAdapter:
        return cls(
            config.name,
            config.secret("SIGNING_SECRET"),
            config.secret("BOT_TOKEN"),
            api_base=config.api_base or API_BASE,
            staff_room=config.staff_room_id(
                r"[CG][A-Z0-9]{2,}",
                "must be the staff channel's id (C0123ABCD: the channel's details in Slack, at "
                "the bottom of About), not its name",
            ),
        )

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    async def staff_name(self, user: str) -> str | None:
        """bot.platform.adapter.StaffDirectory: the name of the member who wrote in a ticket's
        thread."""
        return await self._directory.name(user)

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        """Echo the challenge of a signed `url_verification`; refuse an unsigned one."""
        if raw.method != "POST" or b"url_verification" not in raw.body:
            return None
        try:
            data = read_json(raw.body, "a Slack url_verification")
        except BadRequest:
            return None  # parse() says what is wrong with it
        if not isinstance(data, dict) or data.get("type") != "url_verification":
            return None
        self.verify(raw)  # Unauthorized: the web layer answers 401 and counts the refusal
        challenge = data.get("challenge")
        if not isinstance(challenge, str):
            return _json_reply(400, {"error": '"challenge" must be a string'})
        return _json_reply(200, {"challenge": challenge})

    def verify(self, raw: RawRequest) -> None:
        timestamp = (raw.header(TIMESTAMP_HEADER) or "").strip()
        if not timestamp:
            raise Unauthorized(f"missing {TIMESTAMP_HEADER} header: is this request from Slack?")
        check_fresh(
            timestamp,
            self._clock(),
            REPLAY_WINDOW,
            name=TIMESTAMP_HEADER,
            fix="check the server's clock (NTP)",
        )
        signature = (raw.header(SIGNATURE_HEADER) or "").strip()
        if not signature.startswith(SCHEME):
            raise Unauthorized(f"missing {SIGNATURE_HEADER} header: send {SCHEME}<hex HMAC-SHA256>")
        if not same(signature.lower(), sign(self._signing_secret.reveal(), timestamp, raw.body)):
            raise Unauthorized(
                f"{SIGNATURE_HEADER} does not match: SIGNING_SECRET must be the app's Signing "
                "Secret (Basic Information → App Credentials)"
            )

    async def prepare(self, raw: RawRequest) -> None:
        """Learn the app's bot user id (`auth.test`, once) when the envelope does not name it
        (an `app_mention` without `authorizations`), so that its mention is taken out of the
        question."""
        if self._own:
            return
        try:
            data = read_json(raw.body, "a Slack event envelope")
        except BadRequest:
            return  # parse() says what is wrong with it
        if isinstance(data, dict) and data.get("type") == "event_callback" and not _own_users(data):
            user = await self._directory.bot_user()
            if user:
                self._own.add(user)

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        data = json_object(raw.body, "a Slack event envelope")
        kind = data.get("type")
        if kind == "app_rate_limited":
            log.warning("channel=%s Slack is dropping events: over 30 000 an hour", self.name)
            return []
        if kind != "event_callback":
            return []
        event_id, event = data.get("event_id"), data.get("event")
        if not isinstance(event_id, str) or not event_id or not isinstance(event, dict):
            raise BadRequest('an event_callback needs "event_id" (a string) and "event"')
        if len(event_id) > MAX_ID:
            raise BadRequest(f'"event_id" is {len(event_id)} characters long: at most {MAX_ID}')
        self._own.update(_bot_authorizations(data))  # kept: later envelopes may lack them
        own = _own_users(data) | self._own
        if self.staff_room is not None:
            inbound = self._staff_inbound(event, own)
        else:
            inbound = self._inbound(event_id, event, own)
        return [] if inbound is None else [inbound]

    def _inbound(
        self, event_id: str, event: dict[str, Any], own: frozenset[str]
    ) -> InboundMessage | None:
        if not _by_a_person(event, own):
            return None  # bots (this app too), edits, deletions, joins, topic changes...
        kind, user, channel = event["type"], event["user"], event["channel"]
        text, ts = event["text"], event["ts"]
        thread_ts = _short_id(event.get("thread_ts"))
        if kind == "app_mention":
            public, reply_thread = True, thread_ts or ts  # answered in the thread
        elif kind == "message" and event.get("channel_type") == "im":
            public, reply_thread = False, thread_ts  # answered in the DM, in its thread if any
        else:
            return None  # channel messages: a mention comes as app_mention as well
        return InboundMessage(
            channel=self.name,
            platform_id=event_id,
            conversation=channel,
            sender=user,
            text=_question(text, own),
            public=public,
            media=_media(event),
            # A real mention: Slack shows the asker's name and notifies them.
            mention=f"<@{user}>" if public else None,
            reply_to=f"{channel}:{thread_ts}" if thread_ts and thread_ts != ts else None,
            reply_context=compact({"thread_ts": reply_thread}) if reply_thread else None,
            raw=event,
        )

    def _staff_inbound(self, event: dict[str, Any], own: frozenset[str]) -> InboundMessage | None:
        """A person writing in a thread of the staff channel: acting on the ticket posted there."""
        if not _by_a_person(event, own) or event["type"] not in ("message", "app_mention"):
            return None
        channel, ts, thread_ts = event["channel"], event["ts"], _short_id(event.get("thread_ts"))
        if channel != self.staff_room or thread_ts is None or thread_ts == ts:
            return None  # other channels, and talk at the top level of the staff channel
        return InboundMessage(
            channel=self.name,
            platform_id=f"{channel}:{ts}",
            conversation=channel,
            sender=event["user"],
            sender_name=profile_name(event.get("user_profile")),
            text=_plain(event["text"], own),
            public=False,
            reply_to=f"{channel}:{thread_ts}",
            raw=event,
        )

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"", "text/plain")

    async def send(self, msg: OutboundMessage) -> SendResult:
        payload: dict[str, Any] = {"channel": msg.conversation, "text": _slack_text(msg)}
        thread_ts = load_object(msg.reply_context).get("thread_ts")
        if not thread_ts and msg.reply_to and msg.reply_to.startswith(msg.conversation + ":"):
            # A post in a thread we started (a ticket's update): reply_to is "<channel>:<ts>".
            thread_ts = msg.reply_to.partition(":")[2]
        if isinstance(thread_ts, str) and thread_ts:
            payload["thread_ts"] = thread_ts
        token = self._bot_token.reveal()
        reply = await call_json(
            self._http.session,
            f"{self.api_base}/chat.postMessage",
            payload,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "civicdesk"},
            timeout=TIMEOUT,
            secrets=(token,),
        )
        if isinstance(reply, SendResult):
            return reply
        data = reply.fields
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        if reply.status == 200 and data.get("ok") is True:
            ts = data.get("ts")
            channel = data.get("channel") or msg.conversation
            return SendResult.sent(f"{channel}:{ts}" if isinstance(ts, str) else None)
        error = data.get("error")
        if not isinstance(error, str):
            detail = f"HTTP {reply.status}: {reply.text.strip()[:300]}"
            retryable = is_retryable_status(reply.status) or reply.status == 200
            return SendResult.failed(
                detail, retryable=retryable, retry_after=retry_after if retryable else None
            )
        detail = f"HTTP {reply.status}: {error}" + (f" ({HINTS[error]})" if error in HINTS else "")
        if error in RETRYABLE_ERRORS or is_retryable_status(reply.status):
            return SendResult.failed(detail, retryable=True, retry_after=retry_after)
        return SendResult.failed(detail, retryable=False)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""


def _by_a_person(event: dict[str, Any], own: frozenset[str]) -> bool:
    """A message a person wrote (not a bot, not this app, not an edit or a join)."""
    user = event.get("user")
    return (
        not event.get("bot_id")
        and event.get("subtype") in (None, *USER_SUBTYPES)
        and _short_id(user) is not None
        and user not in own
        and all(isinstance(event.get(key), str) for key in ("type", "text"))
        and all(_short_id(event.get(key)) is not None for key in ("channel", "ts"))
    )


def _short_id(value: Any) -> str | None:
    """`value` when it is a string that can be a Slack id or timestamp (at most MAX_ID)."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def _bot_authorizations(data: dict[str, Any]) -> set[str]:
    """The bot users the envelope's `authorizations` name."""
    entries = data.get("authorizations")
    return {
        entry["user_id"]
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict) and entry.get("is_bot") and isinstance(entry.get("user_id"), str)
    }


def _own_users(data: dict[str, Any]) -> frozenset[str]:
    """The app's own bot user in this workspace: from `authorizations`, else `authed_users`."""
    own = _bot_authorizations(data)
    authed_users = data.get("authed_users")
    if not own and isinstance(authed_users, list):
        own = {u for u in authed_users if isinstance(u, str)}
    return frozenset(own)


# "[^<>]*", not "[^>]*": a label never holds "<", and each "<@U|" without its ">" would scan
# the rest of the text (quadratic: 80 KB of "<@A|" took 25 s).
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^<>]*)?>")


def _plain(text: str, own: frozenset[str]) -> str:
    """The question as the citizen typed it: without the mention of this app, and with Slack's
    three escaped characters (&amp; &lt; &gt;) restored."""
    stripped = _MENTION.sub(lambda m: "" if m.group(1) in own else m.group(0), text)
    for entity, char in _ENTITIES.items():
        stripped = stripped.replace(entity, char)
    return stripped.strip()


# The spaces before the first mention only: later ones are the separators' ("[\s:,，：]*"), so
# no run of spaces can be split between two quantifiers; "[^<>]*" as in _MENTION.
_LEADING_MENTIONS = re.compile(r"\A\s*(?:<@[UW][A-Z0-9]+(?:\|[^<>]*)?>[\s:,，：]*)+")


def _question(text: str, own: frozenset[str]) -> str:
    """A citizen's question: `_plain`, and without the mentions it starts with, which address
    the app (an app_mention names the app first; in a DM nobody else is there to address)."""
    return re.sub(r"[ \t]{2,}", " ", _plain(_LEADING_MENTIONS.sub("", text, count=1), own))


def _media(event: dict[str, Any]) -> str | None:
    """The kind of the first file a message shares (a screenshot, a PDF), from its mimetype."""
    files = event.get("files")
    first = files[0] if isinstance(files, list) and files else None
    if not isinstance(first, dict):
        return None
    mimetype = str(first.get("mimetype") or "")
    for prefix, kind in (("image/", "image"), ("audio/", "audio"), ("video/", "video")):
        if mimetype.startswith(prefix):
            return kind
    return "file"


def _escape(text: str) -> str:
    """Slack reads <...> as links and mentions: escape the three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(msg: OutboundMessage) -> str:
    """The reply in Slack's markup, escaped, except for the mention of the asker that starts a
    public reply (the `mention` of the question, <@U…>), which must stay markup to notify them."""
    mention = f"<@{msg.recipient}>" if msg.public and msg.recipient else None
    if mention and (msg.text == mention or msg.text.startswith(mention + " ")):
        return mention + _escape(msg.text[len(mention) :])
    return _escape(msg.text)


def _json_reply(status: int, data: dict[str, Any]) -> HttpReply:
    return HttpReply(status, json.dumps(data).encode(), "application/json")


SPEC = AdapterSpec(
    name="slack",
    summary="Slack app through the Events API (v0 request signatures).",
    settings=SETTINGS,
    build=SlackAdapter.from_config,
    api_base=API_BASE,
)
