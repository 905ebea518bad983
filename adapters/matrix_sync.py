"""Matrix as an ordinary bot account: long-poll `/sync` (a `Poller`), join rooms on invite.

The cursor is /sync's `next_batch`. The first poll (no cursor) asks with `timeout=0` for the
current `next_batch` only, so the bot does not answer the account's history. A room the bot has
just joined comes with its recent timeline: only what was said from the bot's invitation on (or,
when the invitation is out of view, from its join) is taken, so a citizen who invites the bot and
asks at once is answered, and the old talk of a group room is not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.http import JsonReply
from adapters.matrix_client import MatrixClient, error_of
from adapters.matrix_events import Identity, membership_of, message_from
from bot.config.settings import Secret
from bot.platform.adapter import HttpReply, PollFailed, PollResult, RawRequest, Unauthorized
from bot.platform.messages import InboundMessage, SendResult

log = logging.getLogger("civicdesk.matrix")

TIMELINE_LIMIT = 50
HTTP_MARGIN = 15.0  # the HTTP time-out exceeds the long poll's by this much
FAILURE_PAUSE = 5.0  # after a network error or 5xx, so that a down homeserver is not hammered


def sync_filter(*, staff: bool = False) -> str:
    """The /sync filter: messages and memberships only. A staff channel also gets the member
    event of every sender in each response (`include_redundant_members`), so that staff are
    named by their display names after a restart too."""
    state: dict[str, Any] = {"lazy_load_members": True, "types": ["m.room.member"]}
    if staff:
        state["include_redundant_members"] = True
    data = {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "timeline": {
                "limit": TIMELINE_LIMIT,
                "types": ["m.room.message", "m.sticker", "m.room.encrypted", "m.room.member"],
            },
            # Lazy-loading members makes the homeserver send each room's member counts.
            "state": state,
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
    }
    return json.dumps(data, separators=(",", ":"))


SYNC_FILTER = sync_filter()
STAFF_SYNC_FILTER = sync_filter(staff=True)


class MatrixSyncAdapter(MatrixClient):
    """A Matrix channel whose bot is an ordinary user reading `/sync`."""

    poll_interval = 0.5  # between long polls: the wait happens in the homeserver

    def __init__(
        self,
        name: str,
        api_base: str,
        token: Secret,
        me: Identity,
        *,
        sync_timeout: float = 20.0,
        timeout: float = 10.0,
        staff_room: str | None = None,
    ) -> None:
        super().__init__(name, api_base, token, me, timeout=timeout, staff_room=staff_room)
        self.sync_timeout = sync_timeout
        self._filter = SYNC_FILTER if staff_room is None else STAFF_SYNC_FILTER

    # The webhook URL has nothing to serve in this mode.
    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None

    def verify(self, raw: RawRequest) -> None:
        raise Unauthorized(
            f"channel {self.name!r} reads /sync and takes no deliveries: for an application "
            "service set its MODE to appservice"
        )

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        return []

    async def poll(self, cursor: str | None) -> PollResult:
        params = {"filter": self._filter, "timeout": "0"}
        if cursor is not None:
            params.update(since=cursor, timeout=str(int(self.sync_timeout * 1000)))
        reply = await self.call(
            "GET", "sync", params=params, timeout=self.sync_timeout + HTTP_MARGIN
        )
        data = _sync_data(reply)
        rooms = data.get("rooms")
        rooms = rooms if isinstance(rooms, Mapping) else {}
        await self._accept_invites(_section(rooms, "invite"))
        for room_id in _section(rooms, "leave"):
            self.left(room_id)
        joined = _section(rooms, "join")
        for room_id, room in joined.items():
            summary = room.get("summary")
            if isinstance(summary, Mapping):
                self.rooms.count(
                    room_id,
                    joined=summary.get("m.joined_member_count"),
                    invited=summary.get("m.invited_member_count"),
                )
        messages: list[InboundMessage] = []
        if cursor is not None:  # the first poll only finds where "now" is
            for room_id, room in joined.items():
                messages.extend(await self._room_messages(room_id, room))
        return PollResult(messages, str(data["next_batch"]))

    async def _accept_invites(self, invites: Mapping[str, Mapping[str, Any]]) -> None:
        for room_id, room in invites.items():
            if not self.welcomes(room_id):
                await self.decline(room_id)
                continue
            state = room.get("invite_state")
            events = state.get("events") if isinstance(state, Mapping) else None
            for event in events if isinstance(events, list) else []:
                if isinstance(event, Mapping) and membership_of(event, self.me.user_id):
                    content = event.get("content")
                    if isinstance(content, Mapping) and content.get("is_direct") is True:
                        self.rooms.hint(room_id, True)
            await self.join(room_id)

    async def _room_messages(self, room_id: str, room: Mapping[str, Any]) -> list[InboundMessage]:
        timeline = room.get("timeline")
        events = timeline.get("events") if isinstance(timeline, Mapping) else None
        if not isinstance(events, list):
            return []
        events = [e for e in events if isinstance(e, Mapping)]
        seen = events[_first_after_joining(events, self.me.user_id) :]
        if self.staff_room is not None:
            # Names from every member event the response carries; messages from the bot's
            # arrival on.
            return self.staff_messages(room_id, seen, [*_events(room.get("state")), *events])
        events = seen
        if not any(e.get("type") in MESSAGE_TYPES for e in events):
            return []
        direct = await self.is_private(room_id)
        if direct is None:
            # Not known and not learnt: poll again (the cursor stays) rather than take a direct
            # message for group chatter and move past it.
            raise PollFailed(
                f"the membership of room {room_id} could not be read", retry_after=FAILURE_PAUSE
            )
        found = (
            message_from(self.name, e, room_id, self.me, direct=direct, own=self.own)
            for e in events
        )
        return [m for m in found if m is not None]


MESSAGE_TYPES = ("m.room.message", "m.sticker", "m.room.encrypted")


def _first_after_joining(events: Sequence[Mapping[str, Any]], user_id: str) -> int:
    """Where the bot's view of a room it has just joined starts: its invitation, else its join;
    0 for a room it was already in."""
    join = None
    for index, event in enumerate(events):
        if membership_of(event, user_id) == "join":
            unsigned = event.get("unsigned")
            before = unsigned.get("prev_content") if isinstance(unsigned, Mapping) else None
            was = before.get("membership") if isinstance(before, Mapping) else None
            if was != "join":
                join = index
    if join is None:
        return 0
    invites = [i for i in range(join) if membership_of(events[i], user_id) == "invite"]
    return invites[-1] if invites else join


def _events(section: Any) -> list[Mapping[str, Any]]:
    events = section.get("events") if isinstance(section, Mapping) else None
    return [e for e in events if isinstance(e, Mapping)] if isinstance(events, list) else []


def _section(rooms: Mapping[str, Any], name: str) -> dict[str, Mapping[str, Any]]:
    section = rooms.get(name)
    if not isinstance(section, Mapping):
        return {}
    return {k: v for k, v in section.items() if isinstance(k, str) and isinstance(v, Mapping)}


def _sync_data(reply: JsonReply | SendResult) -> Mapping[str, Any]:
    if isinstance(reply, SendResult):
        raise PollFailed(f"/sync failed: {reply.error}", retry_after=FAILURE_PAUSE)
    if reply.status != 200:
        result = error_of(reply)
        pause = result.retry_after if result.retry_after is not None else FAILURE_PAUSE
        raise PollFailed(f"/sync failed: {result.error}", retry_after=pause)
    data = reply.data
    if not isinstance(data, Mapping) or not isinstance(data.get("next_batch"), str):
        raise PollFailed("/sync answered without next_batch", retry_after=FAILURE_PAUSE)
    return data
