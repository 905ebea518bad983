"""Matrix as an application service: the homeserver PUTs transactions to civicdesk.

The registration's `url` is the channel's webhook URL (`https://<host>/webhooks/<channel>`), so
the homeserver's calls arrive at `/webhooks/<channel>/_matrix/app/v1/...`. Every call carries the
registration's `hs_token` (`Authorization: Bearer`, or `?access_token=` from older homeservers;
both must match when both come). Transactions are acknowledged with `{}` once stored; a repeated
transaction id is acknowledged without being read again (its events would be deduplicated on
their event ids all the same). The bot acts as the registration's `sender_localpart` user with
the `as_token`, joins the rooms it is invited to and answers there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from typing import Any

from adapters.http import same
from adapters.matrix_client import MatrixClient
from adapters.matrix_events import Identity, membership_of, message_from
from adapters.payload import json_object, read_json
from bot.config.settings import Secret
from bot.platform.adapter import BadRequest, HttpReply, RawRequest, RetryLater, Unauthorized
from bot.platform.messages import InboundMessage

log = logging.getLogger("civicdesk.matrix")

APP_API = "/_matrix/app/v1/"
TRANSACTIONS_KEPT = 1000
# Rooms looked up per transaction: the rest are refused (RetryLater) and looked up meanwhile.
MAX_LOOKUPS = 10


def _tail(path: str) -> str | None:
    """The part after /_matrix/app/v1/ of the request's path, None for another path."""
    _, found, tail = path.partition(APP_API)
    return tail if found else None


def _may_be_a_message(event: Mapping[str, Any], me: Identity) -> bool:
    """Whether `event` may be a citizen's message, whose room's size decides if it is answered."""
    return (
        event.get("type") in ("m.room.message", "m.sticker", "m.room.encrypted")
        and "state_key" not in event
        and event.get("sender") != me.user_id
    )


def _matrix_error(status: int, code: str, message: str) -> HttpReply:
    body = json.dumps({"errcode": code, "error": message}).encode()
    return HttpReply(status, body, "application/json")


class MatrixAppServiceAdapter(MatrixClient):
    """A Matrix channel served as an application service."""

    def __init__(
        self,
        name: str,
        api_base: str,
        as_token: Secret,
        hs_token: Secret,
        me: Identity,
        *,
        timeout: float = 10.0,
        staff_room: str | None = None,
    ) -> None:
        super().__init__(
            name, api_base, as_token, me, timeout=timeout, act_as_user=True, staff_room=staff_room
        )
        self._hs_token = hs_token
        self._done: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    def verify(self, raw: RawRequest) -> None:
        """Unauthorized unless the request carries the registration's hs_token: 401 when it
        carries none, 403 when it carries another (the application service spec's statuses; the
        homeserver reads only the status, so civicdesk's JSON error serves as the body)."""
        header = raw.header("Authorization") or ""
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
        legacy = raw.query.get("access_token")
        given = [token for token in (bearer, legacy) if token is not None]
        if not given:
            raise Unauthorized("no hs_token: send Authorization: Bearer <hs_token>")
        expected = self._hs_token.reveal()
        # Each given token is compared (constant time) whatever the other's outcome.
        results = [same(token, expected) for token in given]
        if not all(results):
            raise Unauthorized(
                "the hs_token does not match: the registration's hs_token must equal the "
                "channel's HS_TOKEN",
                status=403,
            )

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        """Everything but transactions: the ping, and the homeserver's user and room queries
        (civicdesk creates no users or rooms on demand: 404). Each is checked like a
        transaction first."""
        tail = _tail(raw.path)
        if tail is None or tail.startswith("transactions/"):
            return None
        self.verify(raw)
        if tail == "ping" and raw.method == "POST":
            return HttpReply(200, b"{}", "application/json")
        if tail.startswith(("users/", "rooms/", "thirdparty/")) and raw.method == "GET":
            return _matrix_error(404, "M_NOT_FOUND", "civicdesk provides no such user or room")
        return _matrix_error(404, "M_UNRECOGNIZED", "unknown application service endpoint")

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        txn = self._transaction_id(raw)
        if txn in self._done:
            return []  # a retry of a transaction already stored
        data = json_object(raw.body, 'a transaction: {"events": [...]}')
        events = data.get("events")
        if not isinstance(events, list):
            raise BadRequest('the transaction has no "events" list')
        messages = []
        for event in events:
            if not isinstance(event, Mapping) or not isinstance(event.get("room_id"), str):
                continue
            room_id = event["room_id"]
            if event.get("type") == "m.room.member":
                self._membership(room_id, event)
            if self.staff_room is not None:
                messages.extend(self.staff_messages(room_id, [event]))
                continue
            if event.get("type") == "m.room.member":
                continue
            direct = self.rooms.private(room_id)
            if direct is None and _may_be_a_message(event, self.me):
                # prepare() could not find out (the homeserver did not answer): refuse the
                # transaction rather than acknowledge a direct message as group chatter.
                self._spawn(self.is_private(room_id))
                raise RetryLater(
                    f"the membership of room {room_id} is not known yet: send the transaction again"
                )
            found = message_from(self.name, event, room_id, self.me, direct=direct, own=self.own)
            if found is not None:
                messages.append(found)
        return messages

    async def prepare(self, raw: RawRequest) -> None:
        """Before `parse`: learn the size of each room a message of the transaction comes from
        and the adapter has not heard of since it started (a first direct message after a
        restart), with one `joined_members` call per room, in the request, so that the message
        is classified rather than taken for group chatter. Invitations in the same transaction
        say it themselves (`is_direct`)."""
        if self.staff_room is not None or _tail(raw.path) in self._done:
            return
        try:
            data = read_json(raw.body, "an application service transaction")
        except BadRequest:
            return  # parse() says what is wrong
        events = data.get("events") if isinstance(data, dict) else None
        unknown: list[str] = []
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, Mapping) or not isinstance(event.get("room_id"), str):
                continue
            room_id = event["room_id"]
            if membership_of(event, self.me.user_id) == "invite":
                content = event.get("content")
                if isinstance(content, Mapping) and content.get("is_direct") is True:
                    self.rooms.hint(room_id, True)
            if (
                _may_be_a_message(event, self.me)
                and self.rooms.private(room_id) is None
                and room_id not in unknown
            ):
                unknown.append(room_id)
        for room_id in unknown[:MAX_LOOKUPS]:
            await self.count_members(room_id)

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        """Called once the transaction's messages are stored: from now on it is a repeat."""
        txn = _tail(raw.path)
        if txn is not None and txn.startswith("transactions/"):
            self._done[txn] = None
            while len(self._done) > TRANSACTIONS_KEPT:
                self._done.popitem(last=False)
        return HttpReply(200, b"{}", "application/json")

    def _transaction_id(self, raw: RawRequest) -> str:
        tail = _tail(raw.path)
        if raw.method != "PUT" or tail is None or not tail.startswith("transactions/"):
            raise BadRequest(
                "an application service takes PUT /_matrix/app/v1/transactions/{txnId}: set "
                "the registration's url to https://<host>/webhooks/<channel>"
            )
        return tail

    def _membership(self, room_id: str, event: Mapping[str, Any]) -> None:
        mine = membership_of(event, self.me.user_id)
        if mine == "invite" and not self.welcomes(room_id):
            self._spawn(self.decline(room_id))
        elif mine == "invite":
            content = event.get("content")
            if isinstance(content, Mapping) and content.get("is_direct") is True:
                self.rooms.hint(room_id, True)
            self._spawn(self._join_and_count(room_id))
        elif mine in ("leave", "ban"):
            self.left(room_id)
        elif mine is None and self.staff_room is None:
            # Someone came or went: count again (one call per membership change).
            self._spawn(self.count_members(room_id))

    async def _join_and_count(self, room_id: str) -> None:
        if await self.join(room_id):
            await self.count_members(room_id)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop: parse() called outside the server (tests, tools)
            work.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the joins and member counts started so far (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
