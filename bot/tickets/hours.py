"""Working time of the office: when it is open, when an escalated question is due, what to promise.

Everything here is pure except `load_calendar`, which reads the YAML file named in
CIVICDESK_CALENDAR. All settings can be given as environment variables:

    CIVICDESK_TIMEZONE=Asia/Shanghai                      (IANA name; default Asia/Shanghai)
    CIVICDESK_BUSINESS_HOURS=mon-fri 09:00-12:00,13:30-17:30   (the default)
    CIVICDESK_HOLIDAYS=2025-10-01..2025-10-08,2026-01-01  (closed dates; default none)
    CIVICDESK_WORKDAYS=2025-09-28,2025-10-11              (调休: make-up working days; default none)
    CIVICDESK_ANSWER_TARGET=2d                            (working time; default 2d)

or, the same content, in a YAML file named by CIVICDESK_CALENDAR (see `calendar_from_yaml`). A
setting given both in the file and in the environment is an error rather than one silently winning.

Times are computed on real elapsed time between instants: each opening interval is a local wall-
clock interval of a date, turned into two UTC instants, and only UTC instants are ever added,
subtracted or compared. (Python adds a timedelta to an aware datetime on its wall clock, and
subtracts or compares two datetimes sharing a tzinfo on the wall clock too: wrong across a DST
change.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.answering.knowledge_yaml import (
    Issues,
    compose,
    describe,
    is_null,
    line_of,
    mapping_items,
    unknown_key,
)

ENV_TIMEZONE = "CIVICDESK_TIMEZONE"
ENV_BUSINESS_HOURS = "CIVICDESK_BUSINESS_HOURS"
ENV_HOLIDAYS = "CIVICDESK_HOLIDAYS"
ENV_WORKDAYS = "CIVICDESK_WORKDAYS"
ENV_ANSWER_TARGET = "CIVICDESK_ANSWER_TARGET"
ENV_CALENDAR = "CIVICDESK_CALENDAR"

DEFAULT_TIMEZONE = "Asia/Shanghai"
# A lunch break is normal in Chinese public offices: two periods a day, 7 h in all.
DEFAULT_BUSINESS_HOURS = "mon-fri 09:00-12:00,13:30-17:30"
DEFAULT_ANSWER_TARGET = "2d"

# The YAML file's keys, and the variable each one stands for.
YAML_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "timezone": ENV_TIMEZONE,
        "hours": ENV_BUSINESS_HOURS,
        "holidays": ENV_HOLIDAYS,
        "workdays": ENV_WORKDAYS,
        "answer_target": ENV_ANSWER_TARGET,
    }
)

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
# A range this long is a typo (2062 for 2026), and would fill memory with dates.
_LONGEST_HOLIDAY_RANGE = 366

Interval = tuple[int, int]  # minutes since local midnight: [start, end), end 1440 means 24:00
DayHours = tuple[Interval, ...]  # sorted, neither overlapping nor touching
Week = tuple[DayHours, ...]  # seven days, Monday first

_T = TypeVar("_T")

# Chinese keyboards type full-width punctuation; accepting it spares a confusing error.
_FULL_WIDTH = str.maketrans({"：": ":", "，": ",", "；": ";", "－": "-", "–": "-", "—": "-"})


class CalendarError(ValueError):
    """Malformed working-time settings: every problem, each with where it is and what to write.

    `problems` holds (location, message) pairs; a location is a variable name such as
    CIVICDESK_HOLIDAYS, or 'file:line' for the YAML file.
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{where}: {message}" for where, message in self.problems))


# --- parsing single values (ValueError says what is wrong and what to write) -----------------


def parse_timezone(text: str) -> ZoneInfo:
    """An IANA time zone name: 'Asia/Shanghai', 'Europe/Berlin', 'UTC'."""
    name = text.strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: an absolute or '..' path; OSError: a folder such as 'Asia'.
        raise ValueError(
            f"unknown time zone {name!r}: write an IANA name such as Asia/Shanghai "
            "(all of China) or Europe/Berlin"
        ) from None


def parse_clock(text: str) -> int:
    """'09:00' or '9:00' → minutes since midnight; '24:00' is the end of the day."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip().translate(_FULL_WIDTH))
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if (hour < 24 and minute < 60) or (hour, minute) == (24, 0):
            return hour * 60 + minute
    raise ValueError(f"{text.strip()!r} is not a time of day: write HH:MM, e.g. 09:00 or 17:30")


def parse_intervals(text: str) -> DayHours:
    """'09:00-12:00,13:30-17:30': the opening periods of one day, in any order.

    Touching periods are merged (09:00-12:00,12:00-13:00 is 09:00-13:00) so that every period
    end is a real closing time.
    """
    periods: list[Interval] = []
    for part in text.translate(_FULL_WIDTH).split(","):
        piece = part.strip()
        start_text, dash, end_text = piece.partition("-")
        if not dash:
            raise ValueError(
                f"{piece!r} is not an opening period: write start-end, e.g. 09:00-12:00 "
                "(a period across midnight is two: 22:00-24:00 and 00:00-06:00)"
            )
        start, end = parse_clock(start_text), parse_clock(end_text)
        if start >= end:
            raise ValueError(
                f"{piece!r} ends before it starts: write the earlier time first "
                "(a period across midnight is two: 22:00-24:00 and 00:00-06:00)"
            )
        periods.append((start, end))
    periods.sort()
    merged: list[Interval] = []
    for start, end in periods:
        if merged and start < merged[-1][1]:
            raise ValueError(
                f"{_clock_range(merged[-1])} and {_clock_range((start, end))} overlap: "
                "write each period once"
            )
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def parse_days(text: str) -> tuple[int, ...]:
    """'mon-fri', 'sat', 'mon-wed,fri' → weekday numbers (Monday 0), in week order."""
    days: set[int] = set()
    for part in text.translate(_FULL_WIDTH).split(","):
        first_text, dash, last_text = part.strip().partition("-")
        first = _day(first_text)
        last = _day(last_text) if dash else first
        if last < first:
            raise ValueError(
                f"{part.strip()!r} runs backwards: write days in week order, e.g. mon-fri "
                "(the week starts on mon)"
            )
        days.update(range(first, last + 1))
    return tuple(sorted(days))


def _day(text: str) -> int:
    name = text.strip().casefold()
    if name in DAY_NAMES:
        return DAY_NAMES.index(name)
    if name in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(name)
    raise ValueError(
        f"unknown day {text.strip()!r}: write mon, tue, wed, thu, fri, sat or sun, "
        "or a range such as mon-fri"
    )


def parse_week(text: str) -> Week:
    """Opening hours of the week: groups of 'days periods' separated by ';'.

    'mon-fri 09:00-12:00,13:30-17:30' (the default), or with a short Friday and a Saturday
    morning: 'mon-thu 09:00-12:00,13:30-17:30; fri 09:00-12:00; sat 09:00-11:30'. A day not
    named is closed; a day may be named only once.
    """
    week: dict[int, DayHours] = {}
    for group in text.translate(_FULL_WIDTH).split(";"):
        if group.strip():
            days_text, _, periods_text = group.strip().partition(" ")
            _add_group(week, days_text, periods_text)
    return _finish_week(week)


def _add_group(week: dict[int, DayHours], days_text: str, periods_text: str) -> None:
    if not periods_text.strip():
        raise ValueError(
            f"{days_text.strip()!r} needs days then opening periods, e.g. "
            f"'{DEFAULT_BUSINESS_HOURS}'"
        )
    periods = parse_intervals(periods_text)
    for day in parse_days(days_text):
        if day in week:
            raise ValueError(f"{DAY_NAMES[day]} is given twice: name each day once")
        week[day] = periods


def _finish_week(week: Mapping[int, DayHours]) -> Week:
    if not any(week.values()):
        raise ValueError(f"no day has opening hours: write e.g. '{DEFAULT_BUSINESS_HOURS}'")
    return tuple(week.get(day, ()) for day in range(7))


def parse_date(text: str) -> date:
    """'2025-10-01' (always four-digit year, two-digit month and day)."""
    piece = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", piece):
        try:
            return date.fromisoformat(piece)
        except ValueError:
            pass  # 2025-02-30: the same advice as for any other non-date
    raise ValueError(f"{piece!r} is not a date: write YYYY-MM-DD, e.g. 2025-10-01")


def parse_date_range(text: str) -> tuple[date, ...]:
    """'2025-10-01' or an inclusive range '2025-10-01..2025-10-08'."""
    first_text, dots, last_text = text.partition("..")
    first = parse_date(first_text)
    last = parse_date(last_text) if dots else first
    if last < first:
        raise ValueError(f"{text.strip()!r} ends before it starts: write the earlier date first")
    days = (last - first).days + 1
    if days > _LONGEST_HOLIDAY_RANGE:
        raise ValueError(f"{text.strip()!r} is {days} days long: check the years")
    return tuple(first + timedelta(days=n) for n in range(days))


def parse_holidays(text: str) -> frozenset[date]:
    """Closed dates, comma-separated, each a date or an inclusive range:
    '2025-10-01..2025-10-08,2026-01-01'."""
    return frozenset(day for item in _items(text) for day in parse_date_range(item))


def parse_workday(text: str) -> tuple[date, int | None]:
    """'2025-10-11' (the usual day's hours) or '2025-10-11=fri' (Friday's hours that day)."""
    date_text, equals, day_text = text.partition("=")
    return parse_date(date_text), (_day(day_text) if equals else None)


def parse_workdays(text: str) -> dict[date, int | None]:
    """Make-up working days (调休), comma-separated: '2025-09-28,2025-10-11=fri'.

    China moves working days around public holidays: a Saturday or Sunday may be a working day.
    It keeps the usual day's hours (see `BusinessHours.usual_hours`) unless '=day' names the
    weekday whose hours apply.
    """
    return dict(parse_workday(item) for item in _items(text))


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.translate(_FULL_WIDTH).split(",") if item.strip()]


@dataclass(frozen=True)
class Target:
    """An answer target as written: 'Nh' hours or 'Nm' minutes of open time, or 'Nd' working
    days, a working day being the open time of the usual day (7 h with the default hours)."""

    amount: float
    unit: str  # "m", "h" or "d"

    def resolve(self, working_day: timedelta) -> timedelta:
        """The target as open time, to whole seconds."""
        unit = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": working_day}[self.unit]
        return timedelta(seconds=round(unit.total_seconds() * self.amount))

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


def parse_target(text: str) -> Target:
    """'16h' (16 hours of open time), '2d' (two working days), '1.5h', '90m'."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhd])", text.strip().casefold())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"{text.strip()!r} is not an answer target: write a number of working hours or "
            "working days above 0, e.g. 16h or 2d"
        )
    return Target(float(match.group(1)), match.group(2))


# --- the calendar ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    """When the office works. Every method takes and returns time-zone-aware datetimes (any zone
    in, the office's zone out); a naive datetime is a ValueError, since guessing its zone would
    shift promises by hours.

    An opening or closing time that does not exist, or occurs twice, on a DST change night is
    read with fold=0 (the offset before the change); offices are not open at those hours.
    """

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    week: Week = field(default_factory=lambda: parse_week(DEFAULT_BUSINESS_HOURS))
    holidays: frozenset[date] = frozenset()
    # date → the weekday whose hours apply that day, None for the usual hours.
    workdays: Mapping[date, int | None] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Without an open day, the search for the next opening would never end.
        if len(self.week) != 7 or not any(self.week):
            raise ValueError("the week must have seven days and at least one of them open")
        if both := sorted(self.holidays & set(self.workdays)):
            raise ValueError(f"{both[0]} is both a holiday and a make-up working day")
        for day, weekday in self.workdays.items():
            if weekday is not None and not self.week[weekday]:
                raise ValueError(f"{day} works as {DAY_NAMES[weekday]}, which has no hours")
        object.__setattr__(self, "workdays", MappingProxyType(dict(self.workdays)))

    @property
    def usual_hours(self) -> DayHours:
        """The periods most working weekdays share (the longest on a tie): make-up days' hours
        and the length of a working day."""
        open_days = [hours for hours in self.week if hours]
        return max(open_days, key=lambda hours: (open_days.count(hours), _length(hours)))

    @property
    def working_day(self) -> timedelta:
        """The open time of a usual day: what 'Nd' in an answer target counts."""
        return timedelta(minutes=_length(self.usual_hours))

    def hours_on(self, day: date) -> DayHours:
        """The opening periods of a local date, holidays and make-up days considered."""
        if day in self.holidays:
            return ()
        if day in self.workdays:
            weekday = self.workdays[day]
            return self.usual_hours if weekday is None else self.week[weekday]
        return self.week[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        """Whether `at` falls in an opening period (open at 09:00, closed again at 12:00)."""
        start, _ = next(self._periods_from(at))
        return start == at.astimezone(UTC)

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when open, else the start of the next opening period."""
        start, _ = next(self._periods_from(at))
        return start.astimezone(self.zone)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """When `duration` of open time counted from `start` has passed: the due time.

        It may be a closing time (work ending at 17:30 is due at 17:30, not at the next opening);
        a zero duration gives `next_opening(start)`.
        """
        if duration < timedelta(0):
            raise ValueError(f"the duration must not be negative, got {duration}")
        remaining = duration
        for begin, end in self._periods_from(start):
            if remaining <= end - begin:
                return (begin + remaining).astimezone(self.zone)
            remaining -= end - begin
        raise AssertionError("unreachable: _periods_from never ends")  # pragma: no cover

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time from `a` to `b`; negative when `b` is before `a`."""
        # Compared in UTC: two datetimes sharing a zone compare on the wall clock, so the two
        # 02:30s of an autumn night would look equal.
        a_utc, b_utc = _aware(a, "a").astimezone(UTC), _aware(b, "b").astimezone(UTC)
        if b_utc < a_utc:
            return -self.working_time_between(b_utc, a_utc)
        total = timedelta(0)
        for begin, end in self._periods_from(a_utc):
            if begin >= b_utc:
                break
            total += min(end, b_utc) - begin
        return total

    def is_overdue(self, created_at: datetime, now: datetime, target: timedelta) -> bool:
        """Whether the promised time has passed: `now` is after the due time.

        After the due time, not 'more open time than the target': a ticket due Friday 17:30 is
        overdue on Saturday, as the citizen was told.
        """
        due = self.add_working_time(created_at, target)
        return _aware(now, "now").astimezone(UTC) > due.astimezone(UTC)  # UTC: see above

    def answer_promise(self, created_at: datetime, target: timedelta, lang: str) -> str:
        """The realistic answer time for the acknowledgement, in 'zh' or 'en' (others: zh).

        Open: '预计于11月27日（周五）17:30前答复' / 'we expect to answer by Fri 27 Nov, 17:30'.
        Closed, naming the next opening: '我们将于11月30日（周一）09:00开始办理，预计于12月1日
        （周二）17:30前答复' / 'we will start on Mon 30 Nov at 09:00 and expect to answer by Tue
        1 Dec, 17:30'. A lower-case clause without a final stop, for the caller's sentence; at
        most 45 characters in Chinese and 80 in English, as it must fit a Weibo post.
        """
        due_day, due_clock = self._due_label(self.add_working_time(created_at, target), target)
        en = lang == "en"
        due = _en_date(due_day) + ", " + due_clock if en else _zh_date(due_day) + due_clock
        if self.is_open(created_at):
            return f"we expect to answer by {due}" if en else f"预计于{due}前答复"
        start = self.next_opening(created_at)
        start_clock = f"{start:%H:%M}"
        if start.date() == due_day:
            due = due_clock  # the same day: the date once is enough
        if en:
            start_day = _en_date(start.date())
            return f"we will start on {start_day} at {start_clock} and expect to answer by {due}"
        return f"我们将于{_zh_date(start.date())}{start_clock}开始办理，预计于{due}前答复"

    def _due_label(self, due: datetime, target: timedelta) -> tuple[date, str]:
        local = due.astimezone(self.zone)
        if local.second or local.microsecond:
            # Rounded up, so the promise is never earlier than the due time itself.
            local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if (local.hour, local.minute) == (0, 0) and target > timedelta(0):
            # Work done at midnight finished at the end of the day before: '24:00' reads right.
            return local.date() - timedelta(days=1), "24:00"
        return local.date(), f"{local:%H:%M}"

    def _periods_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods from `at` on, as UTC instants, the first one clipped to `at`."""
        at_utc = _aware(at, "the time").astimezone(UTC)
        # A period never crosses local midnight, so none before `at`'s local date matters.
        day = at_utc.astimezone(self.zone).date()
        while True:  # ends: the week has an open day, and holidays are finitely many
            for begin, end in self._periods_on(day):
                if end > at_utc:
                    yield max(begin, at_utc), end
            day += timedelta(days=1)

    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        periods: list[tuple[datetime, datetime]] = []
        for start, end in self.hours_on(day):
            begin, finish = self._instant(day, start), self._instant(day, end)
            if periods:
                # In a spring-forward gap a later wall time can map to an earlier instant: clip,
                # so no open time is counted twice.
                begin = max(begin, periods[-1][1])
            if finish > begin:
                periods.append((begin, finish))
        return periods

    def _instant(self, day: date, minutes: int) -> datetime:
        day += timedelta(days=minutes // MINUTES_PER_DAY)  # 24:00 is the next day's 00:00
        hour, minute = divmod(minutes % MINUTES_PER_DAY, 60)
        wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
        return wall.astimezone(UTC)


@dataclass(frozen=True)
class OfficeCalendar:
    """The working-time settings: the hours and the answer target as open time."""

    hours: BusinessHours = field(default_factory=BusinessHours)
    target: timedelta = timedelta(hours=14)  # DEFAULT_ANSWER_TARGET with the default hours


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} ({moment}) has no time zone: pass an aware datetime")
    return moment


def _length(hours: DayHours) -> int:
    return sum(end - start for start, end in hours)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _clock_range(interval: Interval) -> str:
    return f"{_clock(interval[0])}-{_clock(interval[1])}"


_ZH_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Spelt out rather than strftime('%a %b'), which follows the process locale.
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _zh_date(day: date) -> str:
    return f"{day.month}月{day.day}日（{_ZH_WEEKDAYS[day.weekday()]}）"


def _en_date(day: date) -> str:
    return f"{_EN_WEEKDAYS[day.weekday()]} {day.day} {_EN_MONTHS[day.month - 1]}"


# --- loading the settings ----------------------------------------------------------------------


@dataclass
class _Parts:
    """Parsed settings, each with where it came from, before they are checked together."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    zone: ZoneInfo | None = None
    week: Week | None = None
    holidays: set[date] = field(default_factory=set)
    workdays: list[tuple[date, int | None, str]] = field(default_factory=list)
    target: Target | None = None
    target_where: str = ENV_ANSWER_TARGET


def calendar_from_env(environ: Mapping[str, str]) -> OfficeCalendar:
    """The calendar from the environment alone (an empty variable is an unset one)."""
    parts = _Parts()
    _env_parts(environ, parts, set())
    return _assemble(parts)


def _env_parts(environ: Mapping[str, str], parts: _Parts, in_file: set[str]) -> None:
    """Reads the variables not already set by the file, and their defaults."""

    def value(name: str, default: str) -> str | None:
        if name in in_file:
            return None
        return environ.get(name, "").strip() or default

    def attempt(name: str, text: str, parse: Callable[[str], _T]) -> _T | None:
        try:
            return parse(text)
        except ValueError as exc:
            parts.problems.append((name, str(exc)))
            return None

    if (text := value(ENV_TIMEZONE, DEFAULT_TIMEZONE)) is not None:
        parts.zone = attempt(ENV_TIMEZONE, text, parse_timezone)
    if (text := value(ENV_BUSINESS_HOURS, DEFAULT_BUSINESS_HOURS)) is not None:
        parts.week = attempt(ENV_BUSINESS_HOURS, text, parse_week)
    if text := value(ENV_HOLIDAYS, ""):
        for item in _items(text):
            parts.holidays.update(attempt(ENV_HOLIDAYS, item, parse_date_range) or ())
    if text := value(ENV_WORKDAYS, ""):
        for item in _items(text):
            if workday := attempt(ENV_WORKDAYS, item, parse_workday):
                parts.workdays.append((*workday, ENV_WORKDAYS))
    if (text := value(ENV_ANSWER_TARGET, DEFAULT_ANSWER_TARGET)) is not None:
        parts.target = attempt(ENV_ANSWER_TARGET, text, parse_target)


def calendar_from_yaml(
    text: str, name: str, environ: Mapping[str, str] | None = None
) -> OfficeCalendar:
    """The calendar from a YAML file's text (`name` is used in messages), the environment
    supplying what the file leaves out. For example:

        timezone: Asia/Shanghai
        hours:
          mon-fri: 09:00-12:00, 13:30-17:30    # or one line: mon-fri 09:00-12:00,13:30-17:30
        holidays:                              # dates or ranges, one per line
          - 2025-10-01..2025-10-08             # National Day and Mid-Autumn
          - 2026-01-01
        workdays:                              # 调休: make-up working days
          - 2025-09-28
          - 2025-10-11
        answer_target: 2d

    Every key is optional; `holidays` and `workdays` may also be one comma-separated line, as in
    the environment variables.
    """
    environ = environ or {}
    parts = _Parts()
    root, issues = compose(text)
    found = Issues()
    found.items.extend(issues)
    if root is None and not issues:
        found.error(0, "the file is empty: write at least 'hours: " + DEFAULT_BUSINESS_HOURS + "'")
    elif isinstance(root, MappingNode):
        for key, key_node, value in mapping_items(root, found, "the calendar"):
            if key not in YAML_KEYS:
                found.error(key_node, unknown_key(key, YAML_KEYS, "key"))
            elif environ.get(YAML_KEYS[key], "").strip():
                where = f"{name}:{line_of(key_node)}"
                message = f"set both here and as '{key}' in {where}: keep one of the two"
                parts.problems.append((YAML_KEYS[key], message))
            else:
                _yaml_value(key, value, name, parts, found)
    elif root is not None:
        found.error(
            root,
            f"the calendar is {describe(root)}: write 'key: value' lines with the keys "
            + ", ".join(YAML_KEYS),
        )
    for issue in found.items:
        parts.problems.append((f"{name}:{issue.line}" if issue.line else name, issue.message))
    in_file = {YAML_KEYS[key] for key, _, _ in _keys(root)}
    _env_parts(environ, parts, in_file)
    return _assemble(parts)


def _keys(root: Node | None) -> list[tuple[str, Node, Node]]:
    if not isinstance(root, MappingNode):
        return []
    return [
        (str(k.value), k, v)
        for k, v in root.value
        if isinstance(k, ScalarNode) and str(k.value) in YAML_KEYS
    ]


def _yaml_value(key: str, node: Node, name: str, parts: _Parts, issues: Issues) -> None:
    """Parses one top-level key of the file; a problem is reported on its own line."""

    def attempt(where: Node, text: str, parse: Callable[[str], _T]) -> _T | None:
        try:
            return parse(text)
        except ValueError as exc:
            issues.error(where, f"{key}: {exc}")
            return None

    if key == "hours":
        parts.week = _yaml_week(node, issues)
    elif key in ("holidays", "workdays"):
        for item, text in _yaml_items(key, node, issues):
            if key == "holidays":
                parts.holidays.update(attempt(item, text, parse_date_range) or ())
            elif workday := attempt(item, text, parse_workday):
                parts.workdays.append((*workday, f"{name}:{line_of(item)}"))
    elif (value := _yaml_text(key, node, issues)) is not None:
        if key == "timezone":
            parts.zone = attempt(node, value, parse_timezone)
        else:
            parts.target = attempt(node, value, parse_target)
            parts.target_where = f"{name}:{line_of(node)}"


def _yaml_text(key: str, node: Node, issues: Issues) -> str | None:
    if isinstance(node, ScalarNode) and not is_null(node) and str(node.value).strip():
        return str(node.value)
    issues.error(node, f"{key} must be one text, but it is {describe(node)}")
    return None


def _yaml_items(key: str, node: Node, issues: Issues) -> list[tuple[Node, str]]:
    """The items of a list, or of one comma-separated line; nothing for an empty value."""
    if is_null(node):
        return []
    if isinstance(node, ScalarNode):
        return [(node, item) for item in _items(str(node.value))]
    if isinstance(node, SequenceNode):
        items: list[tuple[Node, str]] = []
        for item in node.value:
            if isinstance(item, MappingNode):
                # '- 2025-10-01: National Day' reads as a key and value.
                issues.error(
                    item,
                    f"{key}: write one date per line; put a name in a comment: "
                    "- 2025-10-01  # National Day",
                )
            elif (text := _yaml_text(key, item, issues)) is not None:
                items.extend((item, piece) for piece in _items(text))
        return items
    issues.error(node, f"{key} must be a list of dates, one per line starting with '- '")
    return []


def _yaml_week(node: Node, issues: Issues) -> Week | None:
    """'hours: mon-fri 09:00-12:00,13:30-17:30' or, per group of days, 'mon-fri: 09:00-12:00'."""
    if isinstance(node, ScalarNode) and not is_null(node):
        try:
            return parse_week(str(node.value))
        except ValueError as exc:
            issues.error(node, f"hours: {exc}")
            return None
    if not isinstance(node, MappingNode):
        issues.error(
            node,
            f"hours is {describe(node)}: write 'hours: {DEFAULT_BUSINESS_HOURS}', or under "
            "'hours:' one line per group of days such as 'mon-fri: 09:00-12:00, 13:30-17:30'",
        )
        return None
    week: dict[int, DayHours] = {}
    for days, key_node, value in mapping_items(node, issues, "hours"):
        periods = value.value if isinstance(value, SequenceNode) else [value]
        texts = [_yaml_text(f"hours of {days}", period, issues) for period in periods]
        if None in texts or not texts:
            continue
        try:
            _add_group(week, days, ",".join(text for text in texts if text is not None))
        except ValueError as exc:
            issues.error(key_node, f"hours: {exc}")
    try:
        return _finish_week(week)
    except ValueError as exc:
        issues.error(node, f"hours: {exc}")
        return None


def load_calendar(environ: Mapping[str, str]) -> OfficeCalendar:
    """The working-time settings: from the environment, and from the YAML file named in
    CIVICDESK_CALENDAR when it is set ('~' standing for the home directory). The only I/O here.

    Raises CalendarError listing every problem.
    """
    path_text = environ.get(ENV_CALENDAR, "").strip()
    if not path_text:
        return calendar_from_env(environ)
    path = Path(path_text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalendarError(
            [(ENV_CALENDAR, f"cannot read {path}: {exc.strerror or exc}; check the path")]
        ) from exc
    try:
        text = data.decode("utf-8-sig")  # editors on Windows may add a byte-order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CalendarError(
            [(f"{path}:{line}", "this file is not saved as UTF-8: save it again as UTF-8")]
        ) from exc
    return calendar_from_yaml(text, str(path), environ)


def _by_place(problem: tuple[str, str]) -> tuple[str, int]:
    """Variables first, then the file's problems in line order (not in the order found)."""
    where = problem[0]
    name, colon, line = where.rpartition(":")
    return (name, int(line)) if colon and line.isdigit() else ("", 0)


def _assemble(parts: _Parts) -> OfficeCalendar:
    """Checks the settings together (make-up days against holidays and the week)."""
    problems = parts.problems
    workdays: dict[date, int | None] = {}
    for day, weekday, where in parts.workdays:
        if day in parts.holidays:
            problems.append(
                (
                    where,
                    f"{day} is both a holiday and a make-up working day: remove it from one list",
                )
            )
        elif parts.week is not None and weekday is not None and not parts.week[weekday]:
            name = DAY_NAMES[weekday]
            message = (
                f"{day}={name}: {name} has no opening hours; name a day that has some, "
                "or write the date alone for the usual hours"
            )
            problems.append((where, message))
        else:
            workdays[day] = weekday
    if problems or parts.zone is None or parts.week is None or parts.target is None:
        raise CalendarError(sorted(problems, key=_by_place))
    hours = BusinessHours(parts.zone, parts.week, frozenset(parts.holidays), workdays)
    return OfficeCalendar(hours, parts.target.resolve(hours.working_day))
