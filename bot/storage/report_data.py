"""The SQL of the report of public concerns (`bot.reports.concerns`): aggregates counted in the
database.

Every figure is a GROUP BY or an aggregate, so the cost grows with the number of groups (channels
x days, entries, decisions) and not with the number of messages; the only rows read one by one
are the texts of the escalated questions, which are grouped by similarity in Python
(`bot.tickets.faq_draft.similar_groups`), at most `unanswered_limit` of them, the latest first.

Days are the office's days: a message's day is its `received_at` shifted by the zone's UTC
offset, and since that offset changes at daylight-saving transitions the shift is a CASE over
the spans of constant offset in the window (`offset_spans`; one span for Asia/Shanghai).

`read_report_data` runs every query in one `Store._db.read`; `bot.reports.concerns.build_report`
calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    case,
    extract,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from bot.storage.models import INBOX, TICKET, TICKET_OPEN, TICKET_UNDELIVERABLE

DECISION_ESCALATE = "escalate"
DECISION_STAFF = "staff"  # messages in staff channels: staff talking, not citizens asking
_EPOCH = date(1970, 1, 1)
_DAY_SECONDS = 86400
_SCAN_STEP = timedelta(hours=1)
_FINE_STEP = timedelta(minutes=15)  # every UTC offset in use is a multiple of 15 minutes


@dataclass(frozen=True)
class TicketFigures:
    """Escalations: those opened in the period, and the state of all of them at `until`."""

    opened: int = 0  # created in the period
    answered: int = 0  # of those, answered by a human (answered_at set)
    undeliverable: int = 0  # of those, answered but the answer could not reach the citizen
    answer_median_seconds: float | None = None  # answered_at - created_at, of `answered`
    answer_p90_seconds: float | None = None
    open_now: int = 0  # all tickets, whenever opened
    overdue_now: int = 0  # open and past due_at
    undeliverable_now: int = 0


@dataclass(frozen=True)
class ReportData:
    """What the database counted for one period and the one before it."""

    volume: list[tuple[str, date, int]]  # (channel, office day, messages) in the period
    decisions: dict[tuple[bool, str | None], int]  # (in the period?, decision) -> messages
    entries: dict[tuple[bool, str], int]  # (in the period?, entry id) -> messages
    unanswered: list[tuple[int, str]]  # (inbox id, text) of escalated messages, latest first
    tickets: TicketFigures


def offset_spans(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) over [start, end): (first moment, offset) per span of
    constant offset, in order; the first span starts at `start`."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    spans = [(start, _offset(zone, start))]
    moment = start
    while moment < end:
        step = min(moment + _SCAN_STEP, end)
        if _offset(zone, step) != spans[-1][1]:
            fine = moment
            while _offset(zone, fine + _FINE_STEP) == spans[-1][1]:
                fine += _FINE_STEP
            changed = fine + _FINE_STEP
            spans.append((changed, _offset(zone, changed)))
        moment = step
    return spans


def _offset(zone: ZoneInfo, moment: datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def office_day(number: int) -> date:
    """The date of a day number as `_local_day` counts them (days since 1970-01-01)."""
    return _EPOCH + timedelta(days=int(number))


def read_report_data(
    connection: Connection,
    *,
    since: datetime,
    until: datetime,
    zone: ZoneInfo,
    unanswered_limit: int,
) -> ReportData:
    """Count the period [since, until) and the one of the same length before it."""
    previous = since - (until - since)
    dialect = connection.dialect.name
    citizens = or_(INBOX.c.decision.is_(None), INBOX.c.decision != DECISION_STAFF)
    in_period = and_(INBOX.c.received_at >= since, INBOX.c.received_at < until)
    in_both = and_(INBOX.c.received_at >= previous, INBOX.c.received_at < until)
    current = case((INBOX.c.received_at >= since, 1), else_=0)

    # Expressions with bound values are computed in a subquery and grouped outside it:
    # PostgreSQL sees `$1` in SELECT and `$3` in GROUP BY as different expressions.
    day = _local_day(INBOX.c.received_at, offset_spans(zone, since, until), dialect)
    days = (
        select(INBOX.c.channel.label("channel"), day.label("day"))
        .where(in_period, citizens)
        .subquery()
    )
    volume = [
        (channel, office_day(day), int(count))
        for channel, day, count in connection.execute(
            select(days.c.channel, days.c.day, func.count())
            .group_by(days.c.channel, days.c.day)
            .order_by(days.c.channel, days.c.day)
        )
    ]

    decided = (
        select(current.label("current"), INBOX.c.decision.label("decision"))
        .where(in_both, citizens)
        .subquery()
    )
    decisions = {
        (bool(now), decision): int(count)
        for now, decision, count in connection.execute(
            select(decided.c.current, decided.c.decision, func.count()).group_by(
                decided.c.current, decided.c.decision
            )
        )
    }

    matched = (
        select(current.label("current"), INBOX.c.entry_id.label("entry_id"))
        .where(in_both, citizens, INBOX.c.entry_id.is_not(None))
        .subquery()
    )
    entries = {
        (bool(now), entry_id): int(count)
        for now, entry_id, count in connection.execute(
            select(matched.c.current, matched.c.entry_id, func.count()).group_by(
                matched.c.current, matched.c.entry_id
            )
        )
    }

    unanswered = [
        (int(row.id), str(row.text))
        for row in connection.execute(
            select(INBOX.c.id, INBOX.c.text)
            # Purged questions (text blanked past the retention) still count, but have no words.
            .where(in_period, INBOX.c.decision == DECISION_ESCALATE, INBOX.c.text != "")
            .order_by(INBOX.c.received_at.desc(), INBOX.c.id.desc())
            .limit(unanswered_limit)
        )
    ]
    tickets = _ticket_figures(connection, since=since, until=until, dialect=dialect)
    return ReportData(volume, decisions, entries, unanswered, tickets)


def _local_day(
    column: Any, spans: Sequence[tuple[datetime, int]], dialect: str
) -> ColumnElement[Any]:
    """The office day of `column` as a number of days since 1970-01-01."""
    last = len(spans) - 1
    if last == 0:
        shift: ColumnElement[Any] = literal_column(str(int(spans[0][1])))
    else:
        shift = case(
            *((column < spans[i + 1][0], int(spans[i][1])) for i in range(last)),
            else_=int(spans[last][1]),
        )
    seconds = extract("epoch", column) + shift
    if dialect == "sqlite":
        # An integer there (CAST(strftime('%s') AS INTEGER)): `/` divides whole numbers.
        return type_coerce(seconds / literal_column(str(_DAY_SECONDS)), Integer)
    return type_coerce(func.floor(seconds / _DAY_SECONDS), Integer)


def _ticket_figures(
    connection: Connection, *, since: datetime, until: datetime, dialect: str
) -> TicketFigures:
    e = TICKET.c
    opened = and_(e.created_at >= since, e.created_at < until)
    answered = and_(opened, e.answered_at.is_not(None))

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = connection.execute(
        select(
            count_if(opened),
            count_if(answered),
            count_if(and_(opened, e.status == TICKET_UNDELIVERABLE)),
            count_if(e.status == TICKET_OPEN),
            count_if(and_(e.status == TICKET_OPEN, e.due_at < until)),
            count_if(e.status == TICKET_UNDELIVERABLE),
        )
    ).one()
    n_opened, n_answered, undeliverable, open_now, overdue_now, undeliverable_now = (
        int(value) for value in row
    )
    if dialect == "sqlite":
        waited: ColumnElement[Any] = (
            func.julianday(e.answered_at) - func.julianday(e.created_at)
        ) * float(_DAY_SECONDS)
    else:
        waited = extract("epoch", e.answered_at - e.created_at)

    def percentile(fraction: float) -> float | None:
        """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont):
        only the two values around the rank are read."""
        if n_answered == 0:
            return None
        rank = fraction * (n_answered - 1)
        low = int(rank)
        values = [
            float(value)
            for value in connection.execute(
                select(waited).where(answered).order_by(waited).offset(low).limit(2)
            ).scalars()
        ]
        if len(values) == 1:
            return values[0]
        return values[0] + (values[1] - values[0]) * (rank - low)

    return TicketFigures(
        opened=n_opened,
        answered=n_answered,
        undeliverable=undeliverable,
        answer_median_seconds=percentile(0.5),
        answer_p90_seconds=percentile(0.9),
        open_now=open_now,
        overdue_now=overdue_now,
        undeliverable_now=undeliverable_now,
    )
