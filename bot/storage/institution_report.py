"""The SQL of the coordinator's report (`bot.reports.institutions`): figures per channel, which
the report adds up per institution (a channel belongs to exactly one).

Counts are GROUP BYs over channel and decision; the times to a human answer are read one per
answered ticket of the period (a month of a city's courts is thousands, not millions), so that
each institution's median and 90th percentile are computed over its own tickets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, or_, select

from bot.storage.models import INBOX, TICKET, TICKET_OPEN, TICKET_UNDELIVERABLE
from bot.storage.report_data import DECISION_STAFF


@dataclass
class ChannelFigures:
    """One channel's figures for the period [since, until), and its tickets' state at `until`."""

    messages: int = 0
    decisions: dict[str, int] = field(default_factory=dict)  # decision -> messages
    answer_seconds: list[float] = field(default_factory=list)  # tickets opened and answered
    overdue_now: int = 0
    undeliverable_now: int = 0


@dataclass(frozen=True)
class InstitutionData:
    channels: dict[str, ChannelFigures]
    # (in the period?, entry id) -> messages, every channel together (the topics rising)
    entries: dict[tuple[bool, str], int]


def read_institution_data(
    connection: Connection, *, since: datetime, until: datetime
) -> InstitutionData:
    citizens = or_(INBOX.c.decision.is_(None), INBOX.c.decision != DECISION_STAFF)
    in_period = and_(INBOX.c.received_at >= since, INBOX.c.received_at < until)
    channels: dict[str, ChannelFigures] = {}

    def of(channel: str) -> ChannelFigures:
        return channels.setdefault(channel, ChannelFigures())

    for channel, decision, count in connection.execute(
        select(INBOX.c.channel, INBOX.c.decision, func.count())
        .where(in_period, citizens)
        .group_by(INBOX.c.channel, INBOX.c.decision)
    ):
        figures = of(channel)
        figures.messages += int(count)
        figures.decisions[decision or ""] = int(count)

    t = TICKET.c
    opened = and_(t.created_at >= since, t.created_at < until)
    for channel, created, answered in connection.execute(
        select(t.channel, t.created_at, t.answered_at).where(opened, t.answered_at.is_not(None))
    ):
        of(channel).answer_seconds.append((answered - created).total_seconds())
    for channel, overdue, undeliverable in connection.execute(
        select(
            t.channel,
            func.sum(case((and_(t.status == TICKET_OPEN, t.due_at < until), 1), else_=0)),
            func.sum(case((t.status == TICKET_UNDELIVERABLE, 1), else_=0)),
        ).group_by(t.channel)
    ):
        of(channel).overdue_now = int(overdue or 0)
        of(channel).undeliverable_now = int(undeliverable or 0)

    previous = since - (until - since)
    current = case((INBOX.c.received_at >= since, 1), else_=0)
    matched = (
        select(current.label("current"), INBOX.c.entry_id.label("entry_id"))
        .where(
            INBOX.c.received_at >= previous,
            INBOX.c.received_at < until,
            citizens,
            INBOX.c.entry_id.is_not(None),
        )
        .subquery()
    )
    entries = {
        (bool(now), str(entry_id)): int(count)
        for now, entry_id, count in connection.execute(
            select(matched.c.current, matched.c.entry_id, func.count()).group_by(
                matched.c.current, matched.c.entry_id
            )
        )
    }
    return InstitutionData(channels, entries)
