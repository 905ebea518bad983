"""The client-server API calls both Matrix modes make: send a reply, join a room, count a room's
members. The mode-specific inbound halves are `adapters.matrix_sync` and
`adapters.matrix_appservice`; settings and the SPEC are in `adapters.matrix`.

A staff channel (`staff_room` set) serves that one room: tickets are posted there at the top
level, updates in the ticket's thread, and what staff write in a thread or as a reply comes in
(`adapters.matrix_events.staff_message_from`); invitations to other rooms are declined.

Announcements (`publish`) go to PUBLISH_ROOM as `m.text`; with a picture, the picture is uploaded
to the media repository (`POST /_matrix/media/v3/upload`) and posted as one `m.image` whose body
is the text (a caption, Matrix 1.10: `filename` set and different from `body`). The event's
transaction id is made from the outbox row id, so a retried publication is dropped by the
homeserver as a repeat."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.http import (
    JsonReply,
    SessionSlot,
    exchange,
    is_retryable_status,
    parse_retry_after,
    request_json,
)
from adapters.matrix_events import (
    DisplayNames,
    Identity,
    OwnEvents,
    ReplyContext,
    is_private,
    staff_message_from,
)
from bot.config.settings import Secret
from bot.platform.adapter import TEXT_RULES, HttpReply, RawRequest
from bot.platform.messages import InboundMessage, OutboundMessage, Publication, SendResult

log = logging.getLogger("civicdesk.matrix")

CLIENT_API = "/_matrix/client/v3"
MEDIA_UPLOAD = "/_matrix/media/v3/upload"
MAX_RETRY_AFTER_MS = 3_600_000


class RoomBook:
    """What the adapter knows of each room's size, from /sync summaries, invites and one
    `joined_members` lookup per room it did not hear about since the process started."""

    def __init__(self) -> None:
        self._joined: dict[str, int] = {}
        self._invited: dict[str, int] = {}
        self._direct_hint: dict[str, bool] = {}

    def private(self, room_id: str) -> bool | None:
        if room_id in self._joined:
            return is_private(self._joined[room_id], self._invited.get(room_id, 0))
        return self._direct_hint.get(room_id)

    def count(self, room_id: str, joined: Any = None, invited: Any = None) -> None:
        if isinstance(joined, int) and not isinstance(joined, bool):
            self._joined[room_id] = joined
        if isinstance(invited, int) and not isinstance(invited, bool):
            self._invited[room_id] = invited

    def hint(self, room_id: str, direct: bool) -> None:
        self._direct_hint[room_id] = direct

    def forget(self, room_id: str) -> None:
        self._joined.pop(room_id, None)
        self._invited.pop(room_id, None)


def transaction_id(msg: OutboundMessage) -> str:
    """The client transaction id of a reply: the same for every attempt of one outbox row (the
    homeserver drops a repeat), different for another database's row with the same id."""
    salt = hashlib.sha256(f"{msg.conversation}\n{msg.reply_to or ''}".encode()).hexdigest()[:12]
    return f"civicdesk-{msg.id}-{salt}"


def reply_content(msg: OutboundMessage) -> dict[str, Any]:
    """An `m.notice` (what bots send: other bots do not answer it) replying to the question
    (`m.in_reply_to`: clients show the question above the answer), in the question's thread when
    it was asked in one. In a group room it mentions the asker through `m.mentions` only (the
    spec's intentional mentions: it notifies them); the body starts with no "@alice:server", which
    clients would show as raw text without an HTML pill."""
    content: dict[str, Any] = {"msgtype": "m.notice", "body": msg.text}
    context = ReplyContext.loads(msg.reply_context)
    if context is None and msg.reply_to:
        context = ReplyContext(msg.reply_to)
    if context is not None:
        reply = {"m.in_reply_to": {"event_id": context.event_id}}
        if context.thread_root:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": context.thread_root,
                "is_falling_back": False,
                **reply,
            }
        else:
            content["m.relates_to"] = reply
    users = [msg.recipient] if msg.public and msg.recipient else []
    content["m.mentions"] = {"user_ids": users}
    return content


def staff_content(msg: OutboundMessage) -> dict[str, Any]:
    """A post in the staff room: a ticket at the top level, an update (`reply_to` = the ticket
    post) in the ticket's thread, with the reply fallback for clients without threads. `m.text`,
    not `m.notice`: the default push rule `.m.rule.suppress_notices` would keep staff from being
    notified of new tickets, follow-ups and reminders. It mentions no one."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": msg.text, "m.mentions": {}}
    if msg.reply_to:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": msg.reply_to,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": msg.reply_to},
        }
    return content


def error_of(reply: JsonReply) -> SendResult:
    """Matrix errors: 429 / M_LIMIT_EXCEEDED and 5xx may succeed later (Retry-After, else the
    deprecated `retry_after_ms`); other 4xx (M_FORBIDDEN: not in the room, M_UNKNOWN_TOKEN,
    M_TOO_LARGE) will fail the same way again."""
    data = reply.fields
    code = str(data.get("errcode") or "")
    detail = f"HTTP {reply.status} {code}: {str(data.get('error') or reply.text)[:300]}".strip()
    if reply.status == 429 or code == "M_LIMIT_EXCEEDED" or is_retryable_status(reply.status):
        wait = parse_retry_after(reply.headers.get("Retry-After"))
        millis = data.get("retry_after_ms")
        if wait is None and isinstance(millis, int | float) and millis >= 0:
            wait = min(float(millis), MAX_RETRY_AFTER_MS) / 1000
        return SendResult.failed(detail, retryable=True, retry_after=wait)
    return SendResult.failed(detail, retryable=False)


class MatrixClient:
    """One Matrix channel's calls to its homeserver, as the bot's user."""

    text_rules = TEXT_RULES["matrix"]

    def __init__(
        self,
        name: str,
        api_base: str,
        token: Secret,
        me: Identity,
        *,
        timeout: float = 10.0,
        act_as_user: bool = False,
        staff_room: str | None = None,
    ) -> None:
        self.name = name
        self.staff_room = staff_room
        self.publish_room: str | None = None  # where announcements go (PUBLISH_ROOM)
        self.api_base = api_base.rstrip("/")
        self._token = token
        self.me = me
        self.timeout = timeout
        # An application service names the user it acts as in every call (?user_id=).
        self._as_user = {"user_id": me.user_id} if act_as_user else {}
        self._http = SessionSlot()
        self.own = OwnEvents()
        self.rooms = RoomBook()
        self.names = DisplayNames()

    def attach_session(self, session: aiohttp.ClientSession) -> None:
        self._http.attach(session)

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply(200, b"{}", "application/json")

    async def call(
        self,
        method: str,
        *path: str,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> JsonReply | SendResult:
        url = self.api_base + CLIENT_API + "".join("/" + quote(part, safe="") for part in path)
        return await request_json(
            self._http.session,
            method,
            url,
            payload,
            params={**self._as_user, **(params or {})},
            headers={"Authorization": f"Bearer {self._token.reveal()}"},
            timeout=self.timeout if timeout is None else timeout,
            secrets=(self._token.reveal(),),
        )

    async def send(self, msg: OutboundMessage) -> SendResult:
        path = ("rooms", msg.conversation, "send", "m.room.message", transaction_id(msg))
        staff = self.staff_room is not None and msg.conversation == self.staff_room
        content = staff_content(msg) if staff else reply_content(msg)
        reply = await self.call("PUT", *path, payload=content)
        if isinstance(reply, SendResult):
            return reply
        if 200 <= reply.status < 300:
            event_id = reply.fields.get("event_id")
            if isinstance(event_id, str):
                self.own.add(event_id)
                return SendResult.sent(event_id)
            return SendResult.sent()
        result = error_of(reply)
        log.warning(
            "channel=%s room=%s reply %d not sent: %s",
            self.name,
            msg.conversation,
            msg.id,
            result.error,
        )
        return result

    async def publish(self, publication: Publication) -> SendResult:
        room = self.publish_room
        if room is None:
            return SendResult.failed(
                f"channel {self.name} has no PUBLISH_ROOM: set it to the room to post in",
                retryable=False,
            )
        content: dict[str, Any] = {"msgtype": "m.text", "body": publication.text, "m.mentions": {}}
        if publication.image:
            uploaded = await self._upload(publication)
            if isinstance(uploaded, SendResult):
                return uploaded
            content = {
                "msgtype": "m.image",
                "body": publication.text,  # the caption (Matrix 1.10)
                "filename": f"announcement-{publication.id}",
                "url": uploaded,
                "info": {"mimetype": publication.image_type, "size": len(publication.image)},
                "m.mentions": {},
            }
        salt = hashlib.sha256(f"{room}\n{publication.text}".encode()).hexdigest()[:12]
        txn = f"civicdesk-{publication.id}-{salt}"
        reply = await self.call(
            "PUT", "rooms", room, "send", "m.room.message", txn, payload=content
        )
        if isinstance(reply, SendResult):
            return reply
        event_id = reply.fields.get("event_id")
        if 200 <= reply.status < 300 and isinstance(event_id, str):
            self.own.add(event_id)
            return SendResult.sent(event_id, url=f"https://matrix.to/#/{room}/{event_id}")
        return error_of(reply)

    async def _upload(self, publication: Publication) -> str | SendResult:
        """The picture's mxc:// URI in the homeserver's media repository."""
        reply = await exchange(
            self._http.session,
            "POST",
            self.api_base + MEDIA_UPLOAD,
            publication.image,
            {
                "Authorization": f"Bearer {self._token.reveal()}",
                "Content-Type": publication.image_type or "application/octet-stream",
            },
            params={**self._as_user, "filename": f"announcement-{publication.id}"},
            timeout=max(self.timeout, 30.0),
            secrets=(self._token.reveal(),),
        )
        if isinstance(reply, SendResult):
            return reply
        uri = reply.fields.get("content_uri")
        if 200 <= reply.status < 300 and isinstance(uri, str) and uri.startswith("mxc://"):
            return uri
        return error_of(reply)

    def welcomes(self, room_id: str) -> bool:
        """Whether the bot goes where it is invited: anywhere (citizens bring it), but a staff
        channel's bot only to its staff room."""
        return self.staff_room is None or room_id == self.staff_room

    def left(self, room_id: str) -> None:
        """The bot is out of a room (left, kicked, banned)."""
        self.rooms.forget(room_id)
        if room_id == self.staff_room:
            log.warning(
                "channel=%s is no longer in its staff room %s: invite the bot again, or tickets "
                "cannot be posted",
                self.name,
                room_id,
            )

    def staff_messages(
        self,
        room_id: str,
        events: Sequence[Mapping[str, Any]],
        state: Sequence[Mapping[str, Any]] = (),
    ) -> list[InboundMessage]:
        """What staff wrote in the staff room's `events`, named from the member events among
        them and in `state`; nothing from any other room."""
        if room_id != self.staff_room:
            return []
        for event in (*state, *events):
            self.names.learn(event)
        found = (
            staff_message_from(self.name, e, room_id, self.me, names=self.names) for e in events
        )
        return [m for m in found if m is not None]

    async def decline(self, room_id: str) -> None:
        """Refuse an invitation (leave the room): a staff channel's bot serves its staff room."""
        reply = await self.call("POST", "rooms", room_id, "leave", payload={})
        ok = isinstance(reply, JsonReply) and 200 <= reply.status < 300
        log.info(
            "channel=%s declined the invitation to room %s (staff channel of %s)%s",
            self.name,
            room_id,
            self.staff_room,
            "" if ok else ": the homeserver refused",
        )

    async def join(self, room_id: str) -> bool:
        """Accept an invitation: the bot answers wherever a citizen brings it."""
        reply = await self.call("POST", "join", room_id, payload={})
        if isinstance(reply, JsonReply) and 200 <= reply.status < 300:
            log.info("channel=%s joined room %s", self.name, room_id)
            return True
        error = reply.error if isinstance(reply, SendResult) else error_of(reply).error
        log.warning("channel=%s could not join room %s: %s", self.name, room_id, error)
        return False

    async def is_private(self, room_id: str) -> bool | None:
        """Private (True) or group room (False), asking the homeserver once per room the adapter
        knows nothing of (after a restart); None when even that fails."""
        known = self.rooms.private(room_id)
        if known is not None:
            return known
        await self.count_members(room_id)
        return self.rooms.private(room_id)

    async def count_members(self, room_id: str) -> None:
        """Ask the homeserver how many members the room has (`joined_members`). A refusal
        (the bot is not in the room: 403, or no such room: 404) is an answer too: the room is
        not a private conversation with the bot. An outage leaves the room unknown."""
        reply = await self.call("GET", "rooms", room_id, "joined_members")
        if isinstance(reply, JsonReply) and reply.status == 200 and isinstance(reply.data, dict):
            joined = reply.data.get("joined")
            if isinstance(joined, Mapping):
                self.rooms.count(room_id, joined=len(joined), invited=0)
                return
        if isinstance(reply, JsonReply) and reply.status in (403, 404):
            self.rooms.hint(room_id, False)
            return
        log.warning("channel=%s could not count the members of room %s", self.name, room_id)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is the app's."""
