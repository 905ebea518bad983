"""Matrix: a bot account reading `/sync`, or an application service the homeserver pushes to.

`MODE=sync` (the default) needs only a bot account and its access token: civicdesk long-polls
`/sync` (`adapters.matrix_sync`). `MODE=appservice` registers civicdesk with the homeserver,
which PUTs transactions to the channel's webhook URL (`adapters.matrix_appservice`). Either way
the bot joins the rooms it is invited to and replies in the room, quoting the question (in its
thread when it was asked in one), with `PUT /rooms/{roomId}/send/m.room.message/{txnId}`.

Public or private: a room where the bot and one other member (joined or invited) are alone is a
private conversation, and every message there is answered; in a larger room only messages that
mention the bot or reply to it. The adapter learns room sizes without a call per message: from
/sync's room summaries (`m.joined_member_count`, `m.invited_member_count`), from the `is_direct`
flag of the invitation, and, for a room it has not heard of since the process started, from one
`joined_members` call. Encrypted rooms are not supported (no end-to-end encryption).

Staff channel (`CIVICDESK_<NAME>_STAFF_ROOM` = a room id): the channel's bot serves that room
only, with its own account (a citizen-facing channel's bot must not read staff talk): tickets are
posted at the top level, updates in each ticket's thread, and what staff write in a thread or as
a reply answers, claims, notes or closes the ticket. See `adapters.matrix_client`.
"""

from __future__ import annotations

import re

from adapters.matrix_appservice import MatrixAppServiceAdapter
from adapters.matrix_events import Identity
from adapters.matrix_sync import MatrixSyncAdapter
from bot.config.settings import AdapterSpec, ChannelConfig, ChannelSetting, ConfigError, seconds

API_BASE = "https://matrix-client.matrix.org"
MODES = ("sync", "appservice")
_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.:\[\]-]+$")


def _user_id(value: str) -> str:
    if not _USER_ID.match(value.strip()):
        raise ValueError("must be the bot's full user id, like @civicdesk:example.org")
    return value.strip()


def _room_id(value: str) -> str:
    if not re.fullmatch(r"![^:\s]+:\S+", value.strip()):
        raise ValueError("must be a room id like !AbCdEf:example.org, not a #alias")
    return value.strip()


def _mode(value: str) -> str:
    if value.strip().lower() not in MODES:
        raise ValueError("must be sync or appservice")
    return value.strip().lower()


SETTINGS = (
    ChannelSetting(
        "MODE",
        "How messages arrive: sync (the bot account long-polls /sync) or appservice (the "
        "homeserver pushes transactions to the channel's webhook URL).",
        default="sync",
        parse=_mode,
    ),
    ChannelSetting(
        "USER_ID",
        "The bot's full user id, like @civicdesk:example.org (appservice: the registration's "
        "sender_localpart on the homeserver).",
        required=True,
        parse=_user_id,
    ),
    ChannelSetting(
        "ACCESS_TOKEN",
        "Secret (MODE=sync): the bot account's access token.",
        secret=True,
    ),
    ChannelSetting(
        "AS_TOKEN",
        "Secret (MODE=appservice): the registration's as_token, civicdesk's key to the homeserver.",
        secret=True,
    ),
    ChannelSetting(
        "HS_TOKEN",
        "Secret (MODE=appservice): the registration's hs_token, the homeserver's key to civicdesk.",
        secret=True,
    ),
    ChannelSetting(
        "PUBLISH_ROOM",
        "The room id (!...:server) where announcements are posted; the bot must be allowed to "
        "post there.",
        parse=_room_id,
    ),
    ChannelSetting(
        "DISPLAY_NAME",
        "The bot's display name, also taken as a mention from clients that do not send m.mentions.",
    ),
    ChannelSetting(
        "SYNC_TIMEOUT",
        "Seconds a /sync long poll waits in the homeserver for news (MODE=sync).",
        default="20",
        parse=seconds,
    ),
    ChannelSetting(
        "TIMEOUT",
        "Seconds to wait for the homeserver's answer to a reply.",
        default="10",
        parse=seconds,
    ),
)


def build(config: ChannelConfig) -> MatrixSyncAdapter | MatrixAppServiceAdapter:
    me = Identity(config.get("USER_ID"), config.get("DISPLAY_NAME") or None)
    staff_room = config.staff_room_id(
        r"!\S+",
        "is not a room id: give the staff room's id, like !AbCdEf:example.org (Element: Room "
        "settings, Advanced, Internal room ID), not its #alias",
    )
    api_base = config.api_base or API_BASE
    adapter = _build(config, me, staff_room, api_base)
    adapter.publish_room = config.get("PUBLISH_ROOM")
    return adapter


def _build(
    config: ChannelConfig, me: Identity, staff_room: str | None, api_base: str
) -> MatrixSyncAdapter | MatrixAppServiceAdapter:
    values = config.values
    if config.get("MODE") == "appservice":
        missing = [key for key in ("AS_TOKEN", "HS_TOKEN") if values.get(key) is None]
        if missing:
            raise ConfigError(
                f"{config.var(missing[0])} is missing: MODE=appservice needs the registration's "
                "as_token and hs_token"
            )
        return MatrixAppServiceAdapter(
            config.name,
            api_base,
            config.secret("AS_TOKEN"),
            config.secret("HS_TOKEN"),
            me,
            timeout=config.get("TIMEOUT"),
            staff_room=staff_room,
        )
    if values.get("ACCESS_TOKEN") is None:
        raise ConfigError(
            f"{config.var('ACCESS_TOKEN')} is missing: MODE=sync needs the bot account's access "
            "token (log in as the bot and copy it, or use the login API)"
        )
    return MatrixSyncAdapter(
        config.name,
        api_base,
        config.secret("ACCESS_TOKEN"),
        me,
        sync_timeout=config.get("SYNC_TIMEOUT"),
        timeout=config.get("TIMEOUT"),
        staff_room=staff_room,
    )


SPEC = AdapterSpec(
    name="matrix",
    summary="Matrix rooms: a bot account reading /sync, or an application service.",
    settings=SETTINGS,
    build=build,
    api_base=API_BASE,
)
