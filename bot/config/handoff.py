"""The staff side of the settings: which channels take tickets, and the e-mail fallback, as one
`Handoff` (the only place it is built from settings: `civicdesk serve`, /admin and
`civicdesk tickets` all use it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from bot.config.settings import ChannelConfig, ConfigError, Settings, channel_prefix
from bot.tickets.conversation import ConversationRules
from bot.tickets.handoff import REPLY_WINDOWS, Handoff, StaffChannel


def reply_windows(adapters: Mapping[str, str]) -> dict[str, timedelta]:
    """The platforms' reply windows, and each channel's by the adapter that serves it (channel
    name → adapter name): a channel "citizens-wa" served by the whatsapp adapter has WhatsApp's
    24 hours, which its name alone would not tell."""
    windows = dict(REPLY_WINDOWS)
    for name, adapter in adapters.items():
        window = REPLY_WINDOWS.get(adapter)
        if window is not None:
            windows.setdefault(name, window)
    return windows


def adapters_in(environ: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """Channel name → adapter name, as CIVICDESK_<NAME>_ADAPTER says (default: the name), for
    commands that need no more of a channel than which platform it is on."""
    return {
        name: environ.get(f"{channel_prefix(name)}ADAPTER", "").strip() or name for name in names
    }


def handoff_config(settings: Settings, channels: Sequence[ChannelConfig]) -> Handoff:
    by_name = {channel.name: channel for channel in channels}
    staff = []
    for name in settings.escalate_to:
        channel = by_name[name]
        if not channel.staff_room and channel.adapter != "webhook":
            raise ConfigError(
                f"{channel.var('STAFF_ROOM')} is missing: {name} is a staff channel "
                "(CIVICDESK_ESCALATE_TO), so say where its tickets go (a Slack channel id, a "
                "Matrix room id, a Telegram group chat id, an e-mail address)"
            )
        staff.append(StaffChannel(name, channel.staff_room or "staff"))
    fallback = settings.answer_by_email
    if fallback is not None and by_name[fallback].adapter != "email":
        raise ConfigError(
            f"CIVICDESK_ANSWER_BY_EMAIL names {fallback}, whose adapter is "
            f"{by_name[fallback].adapter}: name a channel with the email adapter"
        )
    return Handoff(
        staff=tuple(staff),
        lang=settings.default_lang,
        calendar=settings.calendar,
        email_fallback=fallback,
        reply_windows=reply_windows({c.name: c.adapter for c in channels}),
        conversation=ConversationRules(
            media_replies={c.name: c.media_reply for c in channels if c.media_reply}
        ),
    )
