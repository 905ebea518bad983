"""The outbox half of `bot.storage.store.Store`: claiming due replies and recording what came of
each.

A mixin only to keep files small: `Store` is the one class callers see.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, select

import bot.storage.claims as claims
from bot.platform.messages import (
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
)
from bot.runtime.batching import Batcher, BatcherClosed
from bot.storage.engine import StoreUnavailable
from bot.storage.models import (
    OUTBOX,
    OutboxRow,
)
from bot.storage.runner import Runner

log = logging.getLogger("bot.storage.store")

_CONVERSATION_REPLIES = (
    select(OUTBOX.c.id, OUTBOX.c.text, OUTBOX.c.reply_to, OUTBOX.c.status, OUTBOX.c.sent_at)
    .where(
        OUTBOX.c.channel == bindparam("b_channel"),
        OUTBOX.c.conversation == bindparam("b_conversation"),
        OUTBOX.c.id > bindparam("b_after"),
    )
    .order_by(OUTBOX.c.id)
    .limit(bindparam("b_limit"))
)


class OutboxMethods:
    _db: Runner
    _outbox_tokens: dict[int, claims.Token]
    _outbox_settles: Batcher[claims.Settlement, bool]

    def now(self) -> datetime:
        raise NotImplementedError

    async def claim_outbox(
        self,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        channel_filter: Collection[str] | None = None,
    ) -> list[OutboxRow]:
        """Up to `limit` replies due now (oldest due first), held for `lease_seconds`;
        `channel_filter` restricts the claim to those channels."""
        now = self.now()
        statement = (
            claims.CLAIM_OUTBOX if channel_filter is None else claims.CLAIM_OUTBOX_OF_CHANNELS
        )
        claiming = partial(
            claims.claim,
            statement=statement,
            worker_id=worker_id,
            limit=limit,
            now=now,
            lease_until=now + timedelta(seconds=lease_seconds),
            channels=channel_filter,
        )
        rows = await self._db.write(claiming)
        for row in rows:
            self._outbox_tokens[row.id] = (worker_id, row.attempts)
        return [OutboxRow(**row._asdict()) for row in rows]

    async def _settle_outbox(self, outbox_id: int, values: dict[str, Any]) -> bool:
        token = self._outbox_tokens.pop(outbox_id, None)
        if token is None:
            return False
        settlement = claims.Settlement(outbox_id, token, values)
        try:
            settled = await self._outbox_settles.submit(settlement)
        except BatcherClosed as exc:
            raise StoreUnavailable("the store is closed") from exc
        if not settled:
            log.warning("outbox %d: lease lost before the result was recorded", outbox_id)
        return settled

    async def _settle_outbox_batch(
        self, items: Sequence[claims.Settlement]
    ) -> list[bool | Exception]:
        settled = await self._db.write(
            partial(claims.settle, table=OUTBOX, claimed_status=OUTBOX_SENDING, items=items)
        )
        return [*settled]

    async def mark_sent(self, outbox_id: int, platform_id: str | None) -> bool:
        values = {
            "status": OUTBOX_SENT,
            "sent_at": self.now(),
            "platform_message_id": platform_id,
            "lease_until": None,
            "last_error": None,
        }
        return await self._settle_outbox(outbox_id, values)

    async def mark_retry(self, outbox_id: int, error: str, next_attempt_at: datetime) -> bool:
        values = {
            "status": OUTBOX_PENDING,
            "next_attempt_at": next_attempt_at,
            "last_error": error,
            "lease_until": None,
        }
        return await self._settle_outbox(outbox_id, values)

    async def mark_dead(self, outbox_id: int, error: str) -> bool:
        values = {"status": OUTBOX_DEAD, "last_error": error, "lease_until": None}
        return await self._settle_outbox(outbox_id, values)

    async def release_outbox(self, outbox_id: int) -> bool:
        """Hand a claimed reply back unsent (shutting down): the claim used no attempt."""
        token = self._outbox_tokens.get(outbox_id)
        values: dict[str, Any] = {"status": OUTBOX_PENDING, "lease_until": None}
        if token is not None:
            values["attempts"] = token[1] - 1
        return await self._settle_outbox(outbox_id, values)

    async def retry_dead(self, outbox_id: int) -> bool:
        """Queue a dead letter again with a full set of attempts; False if it is not dead."""
        revived = await self._db.write(partial(claims.revive_dead, self.now(), outbox_id))
        if revived:
            log.info("outbox %d: dead letter queued again", outbox_id)
        return revived

    async def conversation_replies(
        self, channel: str, conversation: str, after: int, limit: int = 50
    ) -> list[Any]:
        """The replies queued in a conversation after outbox id `after`, oldest first, whatever
        their state (the web chat shows what was delivered; adapters.webchat). Each row: id,
        text, reply_to, status, sent_at."""
        values = {"b_channel": channel, "b_conversation": conversation, "b_after": after,
                  "b_limit": limit}  # fmt: skip
        rows: list[Any] = await self._db.read(
            lambda connection: list(connection.execute(_CONVERSATION_REPLIES, values))
        )
        return rows

    async def list_dead(self) -> list[OutboxRow]:
        rows = await self._db.read(claims.dead_letters)
        return [OutboxRow(**row._asdict()) for row in rows]
