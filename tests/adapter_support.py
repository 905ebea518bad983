"""A base for test adapters that only deliver: the inbound half of the contract does nothing."""

from __future__ import annotations

from bot.platform.adapter import HttpReply, RawRequest
from bot.platform.messages import InboundMessage


class SendOnlyAdapter:
    """Subclasses set `name` and `text_rules` and implement `send`."""

    def verify(self, raw: RawRequest) -> None:
        return None

    def handshake(self, raw: RawRequest) -> HttpReply | None:
        return None

    def parse(self, raw: RawRequest) -> list[InboundMessage]:
        return []

    def acknowledge(self, raw: RawRequest) -> HttpReply:
        return HttpReply()

    async def close(self) -> None:
        return None
