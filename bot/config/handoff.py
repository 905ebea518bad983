"""The staff side of the settings: which channels take tickets, and the e-mail fallback, as one
`Handoff` (the only place it is built from settings: `civicdesk serve`, /admin and
`civicdesk tickets` all use it)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.config.settings import ChannelConfig, ConfigError, Settings
from bot.tickets.conversation import ConversationRules
from bot.tickets.handoff import Handoff, StaffChannel


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
        conversation=ConversationRules(
            media_replies={c.name: c.media_reply for c in channels if c.media_reply}
        ),
    )
