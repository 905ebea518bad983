"""The store: every read and write of civicdesk's tables goes through `Store`.

The SQL itself is here and in `bot.storage.claims` (claims, settling), `bot.storage.finish`
(finishing inbox rows), `bot.storage.outbox` (the outbox half of this class) and
`bot.storage.ticket_sql` (tickets); `bot.storage.ingest` holds the group commit of inbound messages.

A transaction costs the better part of a millisecond of CPU here, so the hot paths go in
batches: inbound messages by group commit, inbox rows claimed together are finished together
(`finish_many`, `load_context`), and delivery results recorded close together share one
transaction (`bot.runtime.batching`). The one-row calls (`finish_inbox`, `load_pending`) remain for
everything else. Writes that belong together (a row finished with its replies, ticket and
conversation state) are one transaction. Each transaction is a plain function of a Connection,
run by `bot.storage.runner` (on SQLite: one writer thread for this process; other processes on the
same file are kept apart by SQLite's own lock, BEGIN IMMEDIATE with busy_timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Engine, bindparam, func, literal, select, text, tuple_, union_all
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.storage.claims as claims
import bot.storage.ticket_sql as handoff_sql
from bot.platform.adapter import TextRules, rules_for
from bot.platform.messages import (
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    InboundMessage,
)
from bot.runtime.batching import Batcher
from bot.storage.announcements import AnnouncementMethods
from bot.storage.engine import (
    StoreUnavailable,
    create_engine,
    has_schema,
    insert_ignoring_duplicates,
    is_sqlite,
)
from bot.storage.engine import upgrade as upgrade_schema
from bot.storage.finish import Handover, finish_batch, prune_expired_state
from bot.storage.ingest import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_SIZE, GroupCommitter
from bot.storage.models import (
    CONVERSATION_STATE,
    INBOX,
    INBOX_CLAIMED,
    INBOX_FAILED,
    INBOX_NEW,
    OUTBOX,
    POLL_CURSOR,
    TICKET,
    TICKET_OPEN,
    InboxRow,
    OutboxRow,
    Ticket,
    TicketEvent,
)
from bot.storage.outbox import OutboxMethods
from bot.storage.runner import Runner, make_runner
from bot.tickets.actions import not_sent_line
from bot.tickets.drafts import Finish, OutboxDraft, PendingClarify, TicketDraft
from bot.tickets.handoff import Handoff, StaffCommand
from bot.tickets.reference import ReferenceTaken, TicketClosed

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ReplyTaker(Protocol):
    """The delivery of this process, as `Store.hand_over_replies` sees it."""

    def reserve(self, wanted: int) -> int:
        """Hold up to `wanted` free delivery slots; how many were held."""
        ...

    def take(self, rows: Sequence[OutboxRow], reserved: int) -> None:
        """Send `rows` (claimed as they were written) in the `reserved` slots; the slots not
        used are free again, and replies queued instead are claimed from the database."""
        ...


ConversationKey = tuple[str, str]  # (channel, conversation)

_PENDING = select(CONVERSATION_STATE).where(
    tuple_(CONVERSATION_STATE.c.channel, CONVERSATION_STATE.c.conversation).in_(
        bindparam("b_keys", expanding=True)
    ),
    CONVERSATION_STATE.c.expires_at
    > bindparam("b_now", type_=CONVERSATION_STATE.c.expires_at.type),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store(OutboxMethods, AnnouncementMethods):
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
        self._outbox_settles: Batcher[claims.Settlement, bool] = Batcher(
            self._settle_outbox_batch, name="settle-outbox"
        )
        # Claims this Store made and still holds: row id -> fencing token (bot.storage.claims).
        self._inbox_tokens: dict[int, claims.Token] = {}
        self._outbox_tokens: dict[int, claims.Token] = {}
        self._handover: tuple[str, float, ReplyTaker] | None = None

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
        await self._outbox_settles.close()
        await self._db.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers and takes writes (a full disk
        answers reads while every write fails)."""
        problem = self._db.health.problem()
        if problem is not None:
            raise StoreUnavailable(f"writes fail: {problem}")
        await self._db.read(lambda connection: connection.execute(text("SELECT 1")).scalar())

    # --- inbound ---------------------------------------------------------------------------------

    async def accept(self, messages: Sequence[InboundMessage]) -> list[bool]:
        """Store inbound messages durably (group commit); True per new message, False per
        duplicate. Raises StoreUnavailable when nothing could be stored (answer 503)."""
        return await self._committer.accept(messages)

    async def load_cursor(self, channel: str) -> str | None:
        """A polling channel's saved cursor (None: it never polled)."""
        statement = select(POLL_CURSOR.c.cursor).where(POLL_CURSOR.c.channel == channel)
        cursor: str | None = await self._db.read(
            lambda connection: connection.execute(statement).scalar()
        )
        return cursor

    async def save_cursor(self, channel: str, cursor: str) -> None:
        """Record where `channel`'s next poll starts. Call only after the messages the poll
        brought are accepted, so that a crash in between repeats them (the inbox drops the
        duplicates) instead of skipping them."""
        row = {"channel": channel, "cursor": cursor, "updated_at": self._clock()}

        def save(connection: Connection) -> None:
            upsert = insert_ignoring_duplicates(connection.dialect.name, POLL_CURSOR).values(row)
            connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=["channel"],
                    set_={
                        "cursor": upsert.excluded.cursor,
                        "updated_at": upsert.excluded.updated_at,
                    },
                )
            )

        await self._db.write(save)

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

        # One statement, so one snapshot: on PostgreSQL each statement of a read-committed
        # transaction sees its own, and counts taken apart could show a reply queued while the
        # message it answers still looks claimed.
        counted = union_all(
            *(
                select(literal(prefix).label("prefix"), table.c.status, func.count())
                .where(table.c.status.in_(statuses))
                .group_by(table.c.status)
                for prefix, table, statuses in (
                    ("inbox", INBOX, (INBOX_NEW, INBOX_CLAIMED, INBOX_FAILED)),
                    ("outbox", OUTBOX, (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DEAD)),
                    ("escalations", TICKET, (TICKET_OPEN,)),
                )
            )
        )

        def count(connection: Connection) -> None:
            for prefix, status, number in connection.execute(counted):
                depths[f"{prefix}_{status}"] = int(number)

        await self._db.read(count)
        return depths

    # --- inbox work ------------------------------------------------------------------------------

    async def claim_inbox(self, worker_id: str, limit: int, lease_seconds: float) -> list[InboxRow]:
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
        return [InboxRow(**row._asdict()) for row in rows]

    async def finish_inbox(
        self,
        inbox_id: int,
        *,
        decision: str,
        entry_id: str | None,
        replies: Sequence[OutboxDraft],
        ticket: TicketDraft | None,
        pending_clarify: PendingClarify | Literal["clear"] | None,
    ) -> bool:
        """Record what became of a claimed message, all in one transaction: the message done,
        its replies queued, its ticket opened, its conversation's pending question stored
        (PendingClarify), deleted ("clear") or left alone (None).

        Returns False, writing nothing, when the claim is no longer ours (its lease ran out and
        another worker took it): that worker answers instead, so the citizen hears once.
        Raises ReferenceTaken, writing nothing, when the ticket's code is in use: retry with
        another code."""
        finish = Finish(inbox_id, decision, entry_id, replies, ticket, pending_clarify)
        [outcome] = await self.finish_many([finish])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def hand_over_replies(self, worker_id: str, lease_seconds: float, taker: ReplyTaker) -> None:
        """From now on, replies written by `finish_many` are claimed by `worker_id` as they are
        written and given to `taker` (the delivery of this process), as many as it has free
        slots, instead of waiting to be claimed in another transaction."""
        self._handover = (worker_id, lease_seconds, taker)

    async def finish_many(self, finishes: Sequence[Finish]) -> list[bool | Exception]:
        """`finish_inbox` for many rows in one transaction; per row True, False (claim lost) or
        ReferenceTaken (that row was not written; the others were)."""
        results: list[bool | Exception] = [False] * len(finishes)
        ours = [
            (index, (f, self._inbox_tokens[f.inbox_id]))
            for index, f in enumerate(finishes)
            if f.inbox_id in self._inbox_tokens
        ]
        if ours:
            items = [item for _, item in ours]
            now = self._clock()
            handover, reserved = None, 0
            if self._handover is not None:
                worker_id, lease_seconds, taker = self._handover
                drafts = sum(
                    len(f.replies) + (len(f.ticket.staff_posts) if f.ticket else 0)
                    for f, _ in items
                )
                reserved = taker.reserve(drafts) if drafts else 0
                lease_until = now + timedelta(seconds=lease_seconds)
                handover = Handover(worker_id, lease_until, reserved)
            replies: list[Any] = []
            try:
                written, replies = await self._db.write(
                    partial(finish_batch, items, now, handover=handover)
                )
            except ReferenceTaken as taken:
                # A code was taken by another process after it was checked (the whole
                # transaction rolled back): every row is retried, the tickets with new codes.
                written = [taken] * len(items)
            finally:
                handed = [OutboxRow(**row._asdict()) for row in replies]
                for row in handed:
                    self._outbox_tokens[row.id] = (row.claimed_by or "", row.attempts)
                if self._handover is not None and (handed or reserved):
                    self._handover[2].take(handed, reserved)
            for (index, (finish, _)), outcome in zip(ours, written, strict=True):
                results[index] = outcome
                if not isinstance(outcome, ReferenceTaken):
                    self._inbox_tokens.pop(finish.inbox_id, None)
        for finish, outcome in zip(finishes, results, strict=True):
            if outcome is False:
                log.warning(
                    "inbox %d: claim lost before finishing; left to its new worker",
                    finish.inbox_id,
                )
        return results

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

    async def prune_expired_state(self) -> int:
        """Delete clarifying questions that expired unanswered (they are ignored already; this
        keeps the table small). Returns how many were deleted."""
        return await self._db.write(partial(prune_expired_state, self._clock()))

    async def load_pending(self, channel: str, conversation: str) -> PendingClarify | None:
        """The clarifying question this conversation still owes an answer to, if any."""
        key = (channel, conversation)
        found = await self._db.read(partial(self._pending, [key], self._clock()))
        return found.get(key)

    async def load_context(
        self, keys: Sequence[handoff_sql.TicketKey], *, quiet: timedelta | None = None
    ) -> tuple[dict[Any, Ticket], dict[ConversationKey, PendingClarify]]:
        """What answering the messages of these (channel, conversation, sender) needs, in one
        read: their open tickets (and, with `quiet`, those a person answered within it), and
        their conversations' pending clarifying questions."""
        if not keys:
            return {}, {}
        conversations = list({(channel, conversation) for channel, conversation, _ in keys})
        now = self._clock()
        answered = now - quiet if quiet is not None else None

        def read(connection: Connection) -> tuple[dict[Any, Ticket], dict[Any, Any]]:
            tickets = handoff_sql.open_tickets(list(keys), connection, answered_since=answered)
            return tickets, self._pending(conversations, now, connection)

        return await self._db.read(read)

    @staticmethod
    def _pending(
        keys: list[ConversationKey], now: datetime, connection: Connection
    ) -> dict[ConversationKey, PendingClarify]:
        rows = connection.execute(_PENDING, {"b_keys": keys, "b_now": now})
        return {
            (row.channel, row.conversation): PendingClarify(
                tuple(row.pending_options), row.pending_lang or "zh", row.expires_at.timestamp()
            )
            for row in rows
            if row.pending_options
        }

    # --- escalations -----------------------------------------------------------------------------

    async def list_tickets(self, status: str | None = None) -> list[Ticket]:
        return await self.find_tickets(status=status)

    async def get_ticket(self, ref: str) -> Ticket | None:
        return await self._db.read(partial(handoff_sql.get_ticket, ref))

    # --- the human handoff (bot.storage.ticket_sql)
    # ---------------------------------------------------

    async def staff_command(
        self,
        reference: str,
        command: StaffCommand,
        *,
        actor: str,
        handoff: Handoff,
        channel: str | None = None,
        rules: Callable[[str], TextRules] = rules_for,
    ) -> handoff_sql.Outcome:
        """A staff member's claim, note, close or answer from the command line (or the admin
        pages). EscalationNotFound / EscalationClosed."""
        apply = partial(
            handoff_sql.apply_staff_command,
            command=command,
            reference=reference,
            actor=actor,
            channel=channel,
            now=self._clock(),
            handoff=handoff,
            rules_for=rules,
        )
        outcome: handoff_sql.Outcome = await self._db.write(apply)
        log.info("escalation %s: %s by %s", reference, outcome.kind, actor)
        return outcome

    async def handle_staff_reply(
        self,
        row: InboxRow,
        command: StaffCommand | None,
        *,
        handoff: Handoff,
        rules: Callable[[str], TextRules] = rules_for,
    ) -> str | None:
        """A message in a staff channel (claimed by this store): when it replies in a ticket's
        thread, carry out `command` (what it says, parsed by the caller; None: no command, the
        row is marked done all the same). The event kind it made, None when it was not about a
        ticket (staff talking among themselves) or the claim was lost."""
        token = self._inbox_tokens.get(row.id)
        if token is None:
            return None
        now = self._clock()
        made: list[str] = []

        def action(connection: Connection) -> None:
            ticket = (
                handoff_sql.ticket_by_post(row.channel, row.reply_to, connection)
                if row.reply_to
                else None
            )
            if ticket is None or command is None:
                return
            actor = row.sender_name or row.sender
            try:
                outcome = handoff_sql.apply_staff_command(
                    connection, command, reference=ticket.reference, actor=actor,
                    channel=row.channel, now=now, handoff=handoff, rules_for=rules,
                )  # fmt: skip
            except TicketClosed:
                # Another staff member acted first (perhaps at this very moment, on another
                # connection): tell this one who, in the thread, and send nothing.
                first = handoff_sql.get_ticket(ticket.reference, connection) or ticket
                line = not_sent_line(first, actor=actor, now=now, handoff=handoff)
                handoff_sql.post_line(connection, handoff, first, line, at=now)
                made.append("not-sent")
                return
            made.append(outcome.kind)

        done = partial(
            handoff_sql.finish_row, inbox_id=row.id, token=token, decision="staff", now=now,
            action=action,
        )  # fmt: skip
        if await self._db.write(done):
            self._inbox_tokens.pop(row.id, None)
        return made[0] if made else None

    async def add_follow_up(
        self,
        row: InboxRow,
        ticket: Ticket,
        *,
        handoff: Handoff,
        rules: Callable[[str], TextRules] = rules_for,
        reply: OutboxDraft | None = None,
        acknowledge: bool = False,
        acknowledged_before: datetime | None = None,
    ) -> tuple[bool, bool]:
        """The citizen wrote again while `ticket` is open (or undeliverable, or lately answered):
        add it to the ticket (the claimed row is marked done with the decision "follow-up");
        an undeliverable ticket's kept answer is sent now; `reply` goes to the citizen (with
        `acknowledge`, only if no acknowledgement went out since `acknowledged_before`).
        (row written, reply queued)."""
        token = self._inbox_tokens.get(row.id)
        if token is None:
            return False, False
        now = self._clock()
        queued: list[bool] = []

        def action(connection: Connection) -> None:
            queued.append(
                handoff_sql.follow_up(
                    connection,
                    ticket,
                    text=row.text,
                    now=now,
                    handoff=handoff,
                    rules_for=rules,
                    reply=reply,
                    inbox_id=row.id,
                    acknowledge=acknowledge,
                    acknowledged_before=acknowledged_before,
                )
            )

        adding = partial(
            handoff_sql.finish_row, inbox_id=row.id, token=token, decision="follow-up", now=now,
            action=action,
        )  # fmt: skip
        written: bool = await self._db.write(adding)
        if written:
            self._inbox_tokens.pop(row.id, None)
        return written, bool(queued and queued[0])

    async def remind_overdue(self, *, every: float, handoff: Handoff) -> int:
        """Remind staff of open tickets past their promised answer time (at most once per
        `every` seconds each); how many."""
        remind = partial(handoff_sql.remind_overdue, now=self._clock(), every=every,
                         handoff=handoff)  # fmt: skip
        count: int = await self._db.write(remind)
        return count

    async def ticket_events(self, reference: str) -> list[TicketEvent]:
        return await self._db.read(partial(handoff_sql.events, reference))

    async def find_tickets(self, **filters: Any) -> list[Ticket]:
        """Tickets by status, channel, since/until, staff and overdue_at
        (bot.storage.ticket_sql)."""
        return await self._db.read(lambda c: handoff_sql.list_filtered(c, **filters))
