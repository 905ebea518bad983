"""The store: every read and write of civicdesk's tables goes through `Store`.

The SQL itself is here and in `bot.store_claims` (claims, settling), `bot.store_finish`
(finishing inbox rows) and `bot.store_escalations` (tickets); `bot.ingest` holds the group
commit of inbound messages.

Callers work one row at a time (`finish_inbox`, `mark_sent`, `load_pending`, ...), but calls
that arrive together are grouped (`bot.batching`) into one transaction or query, as inbound
messages are: a transaction costs about a millisecond here, and a busy desk makes several per
message. Writes that belong together (a row finished with its replies, ticket and conversation
state) are one transaction. Each transaction is a plain function of a Connection, run by
`bot.db_runner` (on SQLite: one writer thread for this process; other processes on the same file
are kept apart by SQLite's own lock, BEGIN IMMEDIATE with busy_timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, select, text, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import store_claims as claims
from bot import store_escalations as tickets
from bot.adapter import TextRules, rules_for
from bot.batching import Batcher, BatcherClosed
from bot.db import StoreUnavailable, create_engine, has_schema, is_sqlite
from bot.db import upgrade as upgrade_schema
from bot.db_runner import Runner, make_runner
from bot.desk import PendingClarify
from bot.drafts import EscalationDraft, Finish, OutboxDraft
from bot.ingest import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_SIZE, GroupCommitter
from bot.messages import InboundMessage
from bot.models import (
    CONVERSATION_STATE,
    ESCALATION,
    ESCALATION_OPEN,
    INBOX,
    INBOX_CLAIMED,
    INBOX_FAILED,
    INBOX_NEW,
    OUTBOX,
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    Escalation,
    InboxMessage,
    OutboxMessage,
)
from bot.store_finish import finish_batch

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ConversationKey = tuple[str, str]  # (channel, conversation)
T = TypeVar("T")
R = TypeVar("R")

_PENDING = select(CONVERSATION_STATE).where(
    tuple_(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation).in_(
        bindparam("b_keys", expanding=True)
    ),
    CONVERSATION_STATE.c.expires_at
    > bindparam("b_now", type_=CONVERSATION_STATE.c.expires_at.type),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Open with `await Store.open(url)`; close with `await store.close()`."""

    def __init__(
        self,
        engine: AsyncEngine,
        runner: Runner | None = None,
        *,
        clock: Clock = utcnow,
        max_batch: int = DEFAULT_MAX_BATCH,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.engine = engine  # async engine of the database: migrations, ad-hoc reads
        self._db = runner or make_runner(engine.url.render_as_string(hide_password=False), engine)
        self._clock = clock
        self._committer = GroupCommitter(self._db, max_batch=max_batch, queue_size=queue_size)
        self._finishes: Batcher[tuple[Finish, claims.Token], bool] = Batcher(
            self._finish_batch, name="finish-inbox"
        )
        self._outbox_settles: Batcher[claims.Settlement, bool] = Batcher(
            self._settle_outbox_batch, name="settle-outbox"
        )
        self._pending_reads: Batcher[ConversationKey, PendingClarify | None] = Batcher(
            self._load_pending_batch, name="load-pending"
        )
        # Claims this Store made and still holds: row id -> fencing token (bot.store_claims).
        self._inbox_tokens: dict[int, claims.Token] = {}
        self._outbox_tokens: dict[int, claims.Token] = {}

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        upgrade: bool = True,
        clock: Clock = utcnow,
        max_batch: int = DEFAULT_MAX_BATCH,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> Store:
        """Connect to `url`. The schema is migrated when `upgrade` is set, and always for an
        empty SQLite file (a new office's first start needs no separate step)."""
        engine = create_engine(url)
        shown = make_url(url).render_as_string(hide_password=True)
        try:
            if upgrade or (is_sqlite(engine) and not await has_schema(engine)):
                await upgrade_schema(engine)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"cannot open the database {shown}: {exc}") from exc
        log.info("store open: %s", shown)
        runner = make_runner(url, engine)
        return cls(engine, runner, clock=clock, max_batch=max_batch, queue_size=queue_size)

    @property
    def write_engine(self) -> Engine:
        """The engine write transactions commit on (for event listeners: metrics, tests)."""
        return self._db.write_engine

    def now(self) -> datetime:
        """The store's clock (aware UTC): leases and due times are all measured on it."""
        return self._clock()

    async def close(self) -> None:
        """Write what is still queued, then release the connections."""
        await self._committer.close()
        await self._finishes.close()
        await self._outbox_settles.close()
        await self._pending_reads.close()
        await self._db.close()
        await self.engine.dispose()

    async def _batched(self, batcher: Batcher[T, R], item: T) -> R:
        try:
            return await batcher.submit(item)
        except BatcherClosed as exc:
            raise StoreUnavailable("the store is closed") from exc

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        await self._db.read(lambda connection: connection.execute(text("SELECT 1")).scalar())

    # --- inbound ---------------------------------------------------------------------------------

    async def accept(self, messages: Sequence[InboundMessage]) -> list[bool]:
        """Store inbound messages durably (group commit); True per new message, False per
        duplicate. Raises StoreUnavailable when nothing could be stored (answer 503)."""
        return await self._committer.accept(messages)

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (synchronously, keep it quick) after new inbound rows are committed."""
        self._committer.on_commit(callback)

    @property
    def commits(self) -> int:
        """Group commits of inbound messages so far (for metrics)."""
        return self._committer.commits

    async def queue_depths(self) -> dict[str, int]:
        """Rows per state, for /metrics: inbox_new, inbox_claimed, inbox_failed, outbox_pending,
        outbox_sending, outbox_dead, escalations_open."""
        depths = dict.fromkeys(
            (
                "inbox_new",
                "inbox_claimed",
                "inbox_failed",
                "outbox_pending",
                "outbox_sending",
                "outbox_dead",
                "escalations_open",
            ),
            0,
        )

        def count(connection: Connection) -> None:
            for prefix, table, statuses in (
                ("inbox", INBOX, (INBOX_NEW, INBOX_CLAIMED, INBOX_FAILED)),
                ("outbox", OUTBOX, (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DEAD)),
                ("escalations", ESCALATION, (ESCALATION_OPEN,)),
            ):
                counted = (
                    select(table.c.status, func.count())
                    .where(table.c.status.in_(statuses))
                    .group_by(table.c.status)
                )
                for status, number in connection.execute(counted):
                    depths[f"{prefix}_{status}"] = int(number)

        await self._db.read(count)
        return depths

    # --- inbox work ------------------------------------------------------------------------------

    async def claim_inbox(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> list[InboxMessage]:
        """Up to `limit` of the oldest unhandled messages, held for `lease_seconds`; messages
        whose previous lease ran out are handed out again (the worker crashed)."""
        now = self._clock()
        claiming = partial(
            claims.claim,
            statement=claims.CLAIM_INBOX,
            worker_id=worker_id,
            limit=limit,
            now=now,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        rows = await self._db.write(claiming)
        for row in rows:
            self._inbox_tokens[row.id] = (worker_id, row.attempts)
        return [InboxMessage(**row._asdict()) for row in rows]

    async def finish_inbox(
        self,
        inbox_id: int,
        *,
        decision: str,
        entry_id: str | None,
        replies: Sequence[OutboxDraft],
        escalation: EscalationDraft | None,
        pending_clarify: PendingClarify | Literal["clear"] | None,
    ) -> bool:
        """Record what became of a claimed message, all in one transaction: the message done,
        its replies queued, its ticket opened, its conversation's pending question stored
        (PendingClarify), deleted ("clear") or left alone (None).

        Returns False, writing nothing, when the claim is no longer ours (its lease ran out and
        another worker took it): that worker answers instead, so the citizen hears once.
        Raises ReferenceTaken, writing nothing, when the ticket's code is in use: retry with
        another code."""
        token = self._inbox_tokens.get(inbox_id)
        if token is None:
            log.warning("inbox %d: finish without a claim held by this store", inbox_id)
            return False
        finish = Finish(inbox_id, decision, entry_id, replies, escalation, pending_clarify)
        finished = await self._batched(self._finishes, (finish, token))
        self._inbox_tokens.pop(inbox_id, None)
        if not finished:
            log.warning("inbox %d: lease lost before finishing; left to its new worker", inbox_id)
        return finished

    async def _finish_batch(
        self, items: Sequence[tuple[Finish, claims.Token]]
    ) -> list[bool | Exception]:
        return await self._db.write(partial(finish_batch, items, self._clock()))

    async def release_inbox(self, inbox_id: int, *, give_up: bool = False) -> bool:
        """Hand a claimed message back unhandled: to be claimed again, or with `give_up` marked
        failed (the pipeline raised on it every time) for an operator to look at."""
        token = self._inbox_tokens.pop(inbox_id, None)
        if token is None:
            return False
        values: dict[str, Any] = {"lease_until": None}
        if give_up:
            values.update(status=INBOX_FAILED, processed_at=self._clock())
        else:
            # Back to new; the attempt stays counted, so a message that always fails is given
            # up on after a few claims.
            values.update(status=INBOX_NEW, claimed_by=None)
        settlement = claims.Settlement(inbox_id, token, values)
        [released] = await self._db.write(
            partial(claims.settle, table=INBOX, claimed_status=INBOX_CLAIMED, items=[settlement])
        )
        return released

    async def load_pending(self, channel: str, conversation: str) -> PendingClarify | None:
        """The clarifying question this conversation still owes an answer to, if any."""
        return await self._batched(self._pending_reads, (channel, conversation))

    async def _load_pending_batch(
        self, keys: Sequence[ConversationKey]
    ) -> list[PendingClarify | Exception | None]:
        params = {"b_keys": list(set(keys)), "b_now": self._clock()}
        rows = await self._db.read(lambda connection: list(connection.execute(_PENDING, params)))
        found = {
            (row.channel, row.conversation): PendingClarify(
                tuple(row.pending_options),
                row.pending_lang or "zh",
                row.expires_at.timestamp(),
            )
            for row in rows
            if row.pending_options
        }
        return [found.get(key) for key in keys]

    # --- outbox work -----------------------------------------------------------------------------

    async def claim_outbox(
        self,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        channel_filter: Collection[str] | None = None,
    ) -> list[OutboxMessage]:
        """Up to `limit` replies due now (oldest due first), held for `lease_seconds`;
        `channel_filter` restricts the claim to those channels."""
        now = self._clock()
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
        return [OutboxMessage(**row._asdict()) for row in rows]

    async def _settle_outbox(self, outbox_id: int, values: dict[str, Any]) -> bool:
        token = self._outbox_tokens.pop(outbox_id, None)
        if token is None:
            return False
        settlement = claims.Settlement(outbox_id, token, values)
        settled = await self._batched(self._outbox_settles, settlement)
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
            "sent_at": self._clock(),
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
        revived = await self._db.write(partial(claims.revive_dead, self._clock(), outbox_id))
        if revived:
            log.info("outbox %d: dead letter queued again", outbox_id)
        return revived

    async def list_dead(self) -> list[OutboxMessage]:
        rows = await self._db.read(claims.dead_letters)
        return [OutboxMessage(**row._asdict()) for row in rows]

    # --- escalations -----------------------------------------------------------------------------

    async def list_escalations(self, status: str | None = None) -> list[Escalation]:
        return await self._db.read(partial(tickets.list_escalations, status))

    async def get_escalation(self, ref: str) -> Escalation | None:
        return await self._db.read(partial(tickets.get_escalation, ref))

    async def answer_escalation(
        self,
        ref: str,
        text: str,
        by: str,
        *,
        rules: Callable[[str], TextRules] = rules_for,
    ) -> Escalation:
        """Close the ticket `ref` with a human's answer and queue that answer to the citizen,
        fitted to their channel (`rules(channel)`). EscalationNotFound / EscalationClosed."""
        answering = partial(
            tickets.answer_escalation,
            reference=ref,
            text=text,
            by=by,
            now=self._clock(),
            rules_for=rules,
        )
        escalation = await self._db.write(answering)
        log.info("escalation %s answered by %s; answer queued", ref, by)
        return escalation
