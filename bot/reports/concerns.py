"""The report of public concerns: what citizens asked about, computed and rendered.

    report = await build_report(store, since, now, zone=..., knowledge=...)
    render_text(report) / render_json(report) / render_html(report)

`build_report` reads the counts (`bot.storage.report_data`: aggregates computed in the database) and
hands them to `make_report`, which is pure: it adds the topics of the FAQ entries, what rose
against the previous period of the same length, and the unanswered questions grouped by
similarity (`bot.tickets.faq_draft.similar_groups`) with the nearest FAQ entry of each group.

Every citizen text in a report has been through `bot.runtime.privacy.mask` (phone numbers,
resident ID
numbers, e-mail addresses, bank cards) before anything renders it; `render_html` escapes every
value it writes, so a question containing `<script>` or `{{ }}` shows as text.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import bot.runtime.privacy as privacy
from bot.answering.desk import match_docs
from bot.answering.knowledge import KnowledgeBase
from bot.answering.matcher import Matcher
from bot.platform.params import BadParameter, whole_number
from bot.storage.report_data import ReportData, TicketFigures, read_report_data
from bot.tickets.faq_draft import CLOSE_TOPIC_SCORE, similar_groups

if TYPE_CHECKING:
    from bot.storage.store import Store

__all__ = [
    "DEFAULT_SINCE",
    "RISE_MIN_COUNT",
    "Cluster",
    "Count",
    "Nearest",
    "Report",
    "Rise",
    "build_report",
    "make_report",
    "parse_since",
    "render_html",
    "render_json",
    "render_text",
    "report_json",
    "rising",
]

DEFAULT_SINCE = "7d"
# What a period may be (the page takes it from the query string): a date in a year a datetime
# can move across time zones, an age no longer than ten years (a chart has a column per day).
MAX_SINCE_LENGTH = 64
MAX_DAYS = 3_660
MIN_YEAR, MAX_YEAR = 1970, 9998
TOP_ENTRIES = 10
TOP_TOPICS = 10
# "What rose most" lists only what was asked at least this often in the period: 1 -> 2 is +100%
# but says nothing.
RISE_MIN_COUNT = 5
RISE_LIMIT = 5
CLUSTER_LIMIT = 10  # groups of unanswered questions shown
UNANSWERED_LIMIT = 5000  # escalated questions grouped at most (the latest)
NEAREST_MIN_SCORE = CLOSE_TOPIC_SCORE  # what the desk would offer in "did you mean"
EXAMPLE_WIDTH = 160

# inbox.decision -> the report's category; any other decision (private, follow-up, a message
# not handled yet) is "other".
DECISION_CATEGORIES = {
    "answer": "answered",
    "clarify": "clarified",
    "escalate": "escalated",
    "smalltalk": "small talk",
}
CATEGORIES = (*DECISION_CATEGORIES.values(), "other")
NOT_HANDLED = "not handled yet"  # decisions_detail key of messages without a decision
UNKNOWN_TOPIC = "(entry no longer in the FAQ)"

_AGE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # terminal escapes in citizen text


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """Messages about one FAQ entry or topic, in the period and in the one before."""

    name: str
    count: int
    previous: int
    topic: str | None = None  # for an entry: its topic


@dataclass(frozen=True)
class Rise:
    """An entry or topic asked more often than in the previous period."""

    name: str
    count: int
    previous: int
    increase: int  # count - previous
    relative: float | None  # increase / previous; None when it was not asked before
    topic: str | None = None


@dataclass(frozen=True)
class Nearest:
    """The FAQ entry closest to a group of unanswered questions."""

    entry_id: str
    topic: str
    question: str  # the entry's first phrasing
    score: float


@dataclass(frozen=True)
class Cluster:
    """Unanswered questions asked in similar words."""

    size: int
    examples: tuple[str, ...]  # up to three, masked, on one line
    nearest: Nearest | None


@dataclass(frozen=True)
class Report:
    since: datetime  # the period is [since, until), aware UTC
    until: datetime
    previous_since: datetime  # the previous period: [previous_since, since)
    timezone: str  # the office's zone: days are its days
    days: tuple[date, ...]
    volume: Mapping[str, tuple[int, ...]]  # channel -> messages per day, busiest channel first
    total: int
    previous_total: int
    decisions: Mapping[str, int]  # CATEGORIES -> messages
    decisions_detail: Mapping[str, int]  # the decisions counted as "other"
    top_entries: tuple[Count, ...]
    top_topics: tuple[Count, ...]
    rising_entries: tuple[Rise, ...]
    rising_topics: tuple[Rise, ...]
    unanswered: int  # escalated in the period
    grouped_from: int  # of those, how many were grouped (the latest UNANSWERED_LIMIT)
    in_clusters: int  # of those, how many are in a group of two or more
    clusters: tuple[Cluster, ...]  # the largest groups first, at most CLUSTER_LIMIT
    cluster_count: int  # groups found (also those not shown)
    tickets: TicketFigures
    notes: tuple[str, ...] = field(default=())

    @property
    def per_day(self) -> tuple[int, ...]:
        return tuple(sum(day) for day in zip(*self.volume.values(), strict=True)) or tuple(
            0 for _ in self.days
        )

    @property
    def per_channel(self) -> dict[str, int]:
        return {channel: sum(counts) for channel, counts in self.volume.items()}


# --- the period ----------------------------------------------------------------------------------


def parse_since(text: str, until: datetime, zone: ZoneInfo) -> datetime:
    """The start of the period ending at `until`: "7d" (today and the 6 days before, in the
    office's days), "12h", a date ("2026-10-01": from its midnight in the office's zone) or a
    date and time (in the office's zone unless it names one). ValueError if it is no such thing
    or not before `until`."""
    if len(text) > MAX_SINCE_LENGTH:
        raise ValueError(f"the period is longer than {MAX_SINCE_LENGTH} characters")
    age = _AGE.match(text)
    if age is not None:
        unit = age.group(2).lower()
        longest = MAX_DAYS if unit == "d" else MAX_DAYS * 24
        try:
            number = whole_number(age.group(1), name="the period", low=0, high=longest)
        except BadParameter:
            raise ValueError(f"{text!r}: the period is at most {longest}{unit}") from None
        if number < 1:
            raise ValueError(f"{text!r}: the period must be at least 1{unit}")
        if unit == "h":
            since = until - timedelta(hours=number)
        else:
            last_day = (until - timedelta(microseconds=1)).astimezone(zone).date()
            since = _midnight(last_day - timedelta(days=number - 1), zone)
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{text!r}: write a number of days or hours (7d, 30d, 12h) or a date (2026-10-01)"
            ) from None
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValueError(f"{text!r}: write a date between {MIN_YEAR} and {MAX_YEAR}")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        since = moment.astimezone(UTC)
    if since >= until:
        raise ValueError(f"{text!r}: the period must start before {until.isoformat()}")
    return since.astimezone(UTC)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _days(since: datetime, until: datetime, zone: ZoneInfo) -> tuple[date, ...]:
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


# --- building it ---------------------------------------------------------------------------------


async def build_report(
    store: Store,
    since: datetime,
    now: datetime,
    *,
    zone: ZoneInfo,
    knowledge: KnowledgeBase | None = None,
    matcher: Matcher | None = None,
) -> Report:
    """The report of [since, now): counts read in one database read, the rest computed in a
    thread (grouping the questions and ranking them against the FAQ take CPU: the event loop
    of /admin keeps serving meanwhile). `matcher`: the running desk's, to avoid building one."""
    reading = partial(
        read_report_data, since=since, until=now, zone=zone, unanswered_limit=UNANSWERED_LIMIT
    )
    data = await store._db.read(reading)
    making = partial(
        make_report, data, since=since, until=now, zone=zone, knowledge=knowledge, matcher=matcher
    )
    return await asyncio.to_thread(making)


def make_report(
    data: ReportData,
    *,
    since: datetime,
    until: datetime,
    zone: ZoneInfo,
    knowledge: KnowledgeBase | None,
    matcher: Matcher | None = None,
    mask: Callable[[str], str] | None = None,
) -> Report:
    """The report from the database's counts (pure; `mask` defaults to
    `bot.runtime.privacy.mask`)."""
    mask = mask or privacy.mask
    notes: list[str] = []
    days = _days(since, until, zone)
    index = {day: n for n, day in enumerate(days)}
    volume: dict[str, list[int]] = {}
    for channel, day, count in data.volume:
        if day in index:
            volume.setdefault(channel, [0] * len(days))[index[day]] += count
    ordered = sorted(volume.items(), key=lambda item: (-sum(item[1]), item[0]))

    current: Counter[str] = Counter()
    previous_total = 0
    detail: Counter[str] = Counter()
    for (in_period, decision), count in data.decisions.items():
        if not in_period:
            previous_total += count
            continue
        category = DECISION_CATEGORIES.get(decision or "", "other")
        current[category] += count
        if category == "other":
            detail[decision or NOT_HANDLED] += count
    decisions = {category: current[category] for category in CATEGORIES}

    entries_now = {entry: n for (now, entry), n in data.entries.items() if now}
    entries_before = {entry: n for (now, entry), n in data.entries.items() if not now}
    topic_of = _topics(knowledge, {*entries_now, *entries_before})
    if knowledge is None:
        notes.append("the FAQ could not be read: no topics and no nearest entries")
    topics_now = _by_topic(entries_now, topic_of)
    topics_before = _by_topic(entries_before, topic_of)

    clusters, cluster_count, in_clusters = _clusters(data.unanswered, knowledge, matcher, mask)
    unanswered = current["escalated"]
    if len(data.unanswered) < unanswered:
        notes.append(
            f"only the latest {len(data.unanswered)} of {unanswered} unanswered questions "
            "were grouped"
        )
    return Report(
        since=since.astimezone(UTC),
        until=until.astimezone(UTC),
        previous_since=(since - (until - since)).astimezone(UTC),
        timezone=zone.key,
        days=days,
        volume={channel: tuple(counts) for channel, counts in ordered},
        total=sum(current.values()),
        previous_total=previous_total,
        decisions=decisions,
        decisions_detail=dict(sorted(detail.items(), key=lambda item: (-item[1], item[0]))),
        top_entries=_top(entries_now, entries_before, TOP_ENTRIES, topic_of),
        top_topics=_top(topics_now, topics_before, TOP_TOPICS),
        rising_entries=tuple(rising(entries_now, entries_before, topic_of=topic_of)),
        rising_topics=tuple(rising(topics_now, topics_before)),
        unanswered=unanswered,
        grouped_from=len(data.unanswered),
        in_clusters=in_clusters,
        clusters=clusters,
        cluster_count=cluster_count,
        tickets=data.tickets,
        notes=tuple(notes),
    )


def _topics(knowledge: KnowledgeBase | None, entry_ids: set[str]) -> dict[str, str]:
    if knowledge is None:
        return {}
    topics = {}
    for entry_id in entry_ids:
        entry = knowledge.get(entry_id)
        topics[entry_id] = entry.topic if entry is not None else UNKNOWN_TOPIC
    return topics


def _by_topic(counts: Mapping[str, int], topic_of: Mapping[str, str]) -> dict[str, int]:
    topics: Counter[str] = Counter()
    for entry_id, count in counts.items():
        if entry_id in topic_of:
            topics[topic_of[entry_id]] += count
    return dict(topics)


def _top(
    now: Mapping[str, int],
    before: Mapping[str, int],
    limit: int,
    topic_of: Mapping[str, str] | None = None,
) -> tuple[Count, ...]:
    ranked = sorted(now.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return tuple(
        Count(name, count, before.get(name, 0), (topic_of or {}).get(name))
        for name, count in ranked
    )


def rising(
    now: Mapping[str, int],
    before: Mapping[str, int],
    *,
    min_count: int = RISE_MIN_COUNT,
    limit: int = RISE_LIMIT,
    topic_of: Mapping[str, str] | None = None,
) -> list[Rise]:
    """What was asked more often than in the previous period, the largest relative rise first
    (something new counts as rising from 1), then the largest increase; only what was asked at
    least `min_count` times in the period."""
    rises = [
        Rise(name, count, before.get(name, 0), count - before.get(name, 0),
             (count - before[name]) / before[name] if before.get(name) else None,
             (topic_of or {}).get(name))
        for name, count in now.items()
        if count >= min_count and count > before.get(name, 0)
    ]  # fmt: skip
    rises.sort(key=lambda r: (-r.increase / max(r.previous, 1), -r.increase, r.name))
    return rises[:limit]


def _clusters(
    unanswered: Sequence[tuple[int, str]],
    knowledge: KnowledgeBase | None,
    matcher: Matcher | None,
    mask: Callable[[str], str],
) -> tuple[tuple[Cluster, ...], int, int]:
    """(the largest groups, how many groups, how many questions are in one)."""
    questions = [(str(inbox_id), mask(text)) for inbox_id, text in unanswered]
    groups = similar_groups(questions)
    shown = groups[:CLUSTER_LIMIT]
    if shown and knowledge is not None and knowledge.entries and matcher is None:
        matcher = Matcher(match_docs(knowledge), knowledge.synonyms)
    clusters = tuple(
        Cluster(
            size=group.size,
            examples=tuple(_one_line(example) for example in group.examples),
            nearest=_nearest(group.examples, knowledge, matcher),
        )
        for group in shown
    )
    return clusters, len(groups), sum(group.size for group in groups)


def _nearest(
    examples: Sequence[str], knowledge: KnowledgeBase | None, matcher: Matcher | None
) -> Nearest | None:
    """The entry scoring best for any of the examples, if it scores NEAREST_MIN_SCORE."""
    if knowledge is None or matcher is None:
        return None
    best = max(
        (candidate for text in examples for candidate in matcher.rank(text, 1)),
        key=lambda candidate: candidate.score,
        default=None,
    )
    entry = knowledge.get(best.entry_id) if best is not None else None
    if best is None or entry is None or best.score < NEAREST_MIN_SCORE:
        return None
    phrasings = entry.questions.get(best.lang) or next(iter(entry.questions.values()), ())
    return Nearest(entry.id, entry.topic, phrasings[0] if phrasings else "", round(best.score, 3))


def _one_line(text: str, width: int = EXAMPLE_WIDTH) -> str:
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# --- JSON ----------------------------------------------------------------------------------------


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON values (times in ISO 8601, UTC; days in the office's zone)."""
    e = report.tickets
    return {
        "period": {
            "since": report.since.isoformat(),
            "until": report.until.isoformat(),
            "previous_since": report.previous_since.isoformat(),
            "timezone": report.timezone,
            "days": len(report.days),
        },
        "messages": {"total": report.total, "previous_total": report.previous_total},
        "volume": {
            "days": [day.isoformat() for day in report.days],
            "per_day": list(report.per_day),
            "per_channel": report.per_channel,
            "channels": {channel: list(counts) for channel, counts in report.volume.items()},
        },
        "decisions": dict(report.decisions),
        "decisions_detail": dict(report.decisions_detail),
        "top_entries": [_count_json(c, "entry_id") for c in report.top_entries],
        "top_topics": [_count_json(c, "topic") for c in report.top_topics],
        "rising_entries": [_rise_json(r, "entry_id") for r in report.rising_entries],
        "rising_topics": [_rise_json(r, "topic") for r in report.rising_topics],
        "rise_min_count": RISE_MIN_COUNT,
        "unanswered": {
            "total": report.unanswered,
            "grouped_from": report.grouped_from,
            "in_clusters": report.in_clusters,
            "cluster_count": report.cluster_count,
            "clusters": [
                {
                    "size": c.size,
                    "examples": list(c.examples),
                    "nearest": asdict(c.nearest) if c.nearest else None,
                }
                for c in report.clusters
            ],
        },
        "escalations": {
            "opened": e.opened,
            "answered": e.answered,
            "undeliverable": e.undeliverable,
            "answer_median_seconds": _seconds(e.answer_median_seconds),
            "answer_p90_seconds": _seconds(e.answer_p90_seconds),
            "open_now": e.open_now,
            "overdue_now": e.overdue_now,
            "undeliverable_now": e.undeliverable_now,
        },
        "notes": list(report.notes),
    }


def _count_json(count: Count, key: str) -> dict[str, Any]:
    record: dict[str, Any] = {key: count.name, "count": count.count, "previous": count.previous}
    if key == "entry_id":
        record["topic"] = count.topic
    return record


def _rise_json(rise: Rise, key: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        key: rise.name,
        "count": rise.count,
        "previous": rise.previous,
        "increase": rise.increase,
        "relative": None if rise.relative is None else round(rise.relative, 4),
    }
    if key == "entry_id":
        record["topic"] = rise.topic
    return record


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n"


# --- text ----------------------------------------------------------------------------------------

_BAR = "█"
_BAR_WIDTH = 30


def render_text(report: Report) -> str:
    """The report for a terminal or an e-mail: figures with bars of block characters."""
    zone = ZoneInfo(report.timezone)
    lines = [
        f"Report of public concerns: {_span(report.since, report.until, zone)} "
        f"({report.timezone}, {len(report.days)} days)",
        f"compared with the previous period: {_span(report.previous_since, report.since, zone)}",
        "",
        f"Messages: {report.total} (previous period {report.previous_total}, "
        f"{_change(report.total, report.previous_total)})",
    ]
    if report.total:
        lines += ["", "Per channel:"]
        lines += _text_bars(report.per_channel)
        lines += ["", "Decisions:"]
        lines += _text_bars(report.decisions, share_of=report.total)
        if report.decisions_detail:
            other = ", ".join(f"{k} {v}" for k, v in report.decisions_detail.items())
            lines.append(f"  (other: {other})")
        lines += ["", "Per day:"]
        per_day = zip(report.days, report.per_day, strict=True)
        lines += _text_bars({day.isoformat(): n for day, n in per_day})
    lines += ["", "Most asked FAQ entries:"]
    lines += [
        f"  {c.count:>6}  {c.name}" + (f"  [{c.topic}]" if c.topic else "")
        for c in report.top_entries
    ] or ["  none"]
    lines += ["", "Most asked topics:"]
    lines += [f"  {c.count:>6}  {c.name}" for c in report.top_topics] or ["  none"]
    for title, rises in (("entries", report.rising_entries), ("topics", report.rising_topics)):
        lines += ["", f"Rising {title} (asked at least {RISE_MIN_COUNT} times):"]
        lines += [
            f"  {r.previous:>6} -> {r.count:<6} {_rise_words(r):<18} {r.name}" for r in rises
        ] or ["  none"]
    lines += ["", _unanswered_heading(report)]
    for number, cluster in enumerate(report.clusters, 1):
        lines.append(f"  {number}. {cluster.size} questions")
        lines += [f"     - {example}" for example in cluster.examples]
        near = cluster.nearest
        lines.append(
            f"     nearest entry: {near.entry_id} ({near.score:.2f}, {near.topic})"
            if near
            else "     nearest entry: none: a new entry is needed"
        )
    e = report.tickets
    lines += [
        "",
        "Escalations:",
        f"  opened in the period:      {e.opened}",
        f"  answered by staff:         {e.answered}",
        f"  time to a human answer:    median {_duration(e.answer_median_seconds)}, "
        f"90% within {_duration(e.answer_p90_seconds)}",
        f"  undeliverable (period):    {e.undeliverable}",
        f"  open now:                  {e.open_now}",
        f"  overdue now:               {e.overdue_now}",
        f"  undeliverable now:         {e.undeliverable_now}",
    ]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _text_bars(counts: Mapping[str, int], *, share_of: int | None = None) -> list[str]:
    largest = max(counts.values(), default=0) or 1
    width = max((len(label) for label in counts), default=0)
    lines = []
    for label, count in counts.items():
        bar = _BAR * round(_BAR_WIDTH * count / largest)
        share = f" {100 * count / share_of:5.1f}%" if share_of else ""
        lines.append(f"  {_one_line(label):<{width}} {count:>6}{share}  {bar}")
    return lines


def _unanswered_heading(report: Report) -> str:
    if not report.unanswered:
        return "Unanswered questions: none"
    return (
        f"Unanswered questions: {report.unanswered}; {report.in_clusters} of them in "
        f"{report.cluster_count} groups asked in similar words"
        + (f" (the largest {len(report.clusters)} below)" if report.clusters else "")
    )


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    fmt = "%Y-%m-%d %H:%M"
    return f"{start.astimezone(zone).strftime(fmt)} to {end.astimezone(zone).strftime(fmt)}"


def _change(now: int, before: int) -> str:
    if before == 0:
        return "new" if now else "no change"
    return f"{100 * (now - before) / before:+.0f}%"


def _rise_words(rise: Rise) -> str:
    if rise.relative is None:
        return f"+{rise.increase} (new)"
    return f"+{rise.increase} ({100 * rise.relative:+.0f}%)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


# --- HTML ----------------------------------------------------------------------------------------

_INK, _MUTED, _GRID, _FILL = "#1a1a1a", "#555555", "#d0d0d0", "#1f4e79"
# Lines of the daily chart: colour and dash, so that they stay apart printed in black and white.
_LINE_STYLES = (
    ("#1f4e79", ""),
    ("#b35900", "6 3"),
    ("#2e7d32", "2 3"),
    ("#6a1b9a", "8 3 2 3"),
    ("#c62828", "4 2"),
    ("#00838f", "1 2"),
)
_LINE_CHANNELS = len(_LINE_STYLES) - 1  # the total line takes the first style
_FONT = "font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif"

_STYLE = f"""
.civicdesk-report {{ {_FONT}; color: {_INK}; max-width: 60rem; line-height: 1.45; }}
.civicdesk-report h1 {{ font-size: 1.5rem; margin: 0 0 .25rem; }}
.civicdesk-report h2 {{ font-size: 1.15rem; margin: 1.6rem 0 .5rem;
  border-bottom: 1px solid {_GRID}; }}
.civicdesk-report .muted {{ color: {_MUTED}; }}
.civicdesk-report table {{ border-collapse: collapse; margin: .25rem 0 .75rem; }}
.civicdesk-report th, .civicdesk-report td {{ text-align: left; padding: .2rem .6rem;
  border-bottom: 1px solid {_GRID}; vertical-align: top; }}
.civicdesk-report td.n, .civicdesk-report th.n {{ text-align: right;
  font-variant-numeric: tabular-nums; }}
.civicdesk-report svg {{ display: block; max-width: 100%; height: auto; margin: .5rem 0; }}
.civicdesk-report .figures {{ display: flex; flex-wrap: wrap; gap: .75rem; }}
.civicdesk-report .figure {{ border: 1px solid {_GRID}; padding: .4rem .8rem; min-width: 9rem; }}
.civicdesk-report .figure b {{ display: block; font-size: 1.4rem; }}
.civicdesk-report ol.clusters li {{ margin-bottom: .8rem; }}
.civicdesk-report q {{ quotes: "“" "”"; }}
@media print {{
  .civicdesk-report {{ max-width: none; }}
  .civicdesk-report section {{ break-inside: avoid; }}
  .civicdesk-report * {{ print-color-adjust: exact; -webkit-print-color-adjust: exact; }}
}}
"""


def _e(value: object) -> str:
    """Any value as HTML text: escaped, quotes included, and braces as character references so
    that not even a template engine reading the page again finds `{{ }}` in it."""
    return html.escape(str(value), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def render_html(report: Report, *, page: bool = True) -> str:
    """The report as HTML with inline SVG charts: no script, no external file, every value
    escaped. `page=False`: the <section> alone (with its <style>), to place in another page."""
    zone = ZoneInfo(report.timezone)
    parts = [
        f"<style>{_STYLE}</style>",
        '<section class="civicdesk-report">',
        "<h1>Report of public concerns</h1>",
        f'<p class="muted">{_e(_span(report.since, report.until, zone))} '
        f"({_e(report.timezone)}, {len(report.days)} days); compared with "
        f"{_e(_span(report.previous_since, report.since, zone))}</p>",
        _html_figures(report),
    ]
    if report.total:
        parts += [
            "<section><h2>Messages per channel</h2>",
            _svg_bars(report.per_channel, "Messages per channel"),
            "</section><section><h2>Decisions</h2>",
            _svg_bars(report.decisions, "Decisions", share_of=report.total),
            _html_detail(report.decisions_detail),
            "</section><section><h2>Messages per day</h2>",
            _svg_line(report),
            _html_daily_table(report),
            "</section>",
        ]
    else:
        parts.append("<p>No messages in this period.</p>")
    parts += [
        "<section><h2>Most asked FAQ entries</h2>",
        _html_counts(report.top_entries, "Entry", with_topic=True),
        "</section><section><h2>Most asked topics</h2>",
        _html_counts(report.top_topics, "Topic"),
        f"</section><section><h2>Rising (asked at least {RISE_MIN_COUNT} times)</h2>",
        _html_rises(report.rising_entries, "Entry"),
        _html_rises(report.rising_topics, "Topic"),
        "</section><section><h2>Unanswered questions</h2>",
        f"<p>{_e(_unanswered_heading(report))}</p>",
        _html_clusters(report.clusters),
        "</section><section><h2>Escalations</h2>",
        _html_tickets(report.tickets),
        "</section>",
    ]
    parts += [f'<p class="muted">Note: {_e(note)}</p>' for note in report.notes]
    parts.append("</section>")
    body = "\n".join(parts)
    if not page:
        return body
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Report of public concerns, {_e(report.days[0] if report.days else '')}"
        f" to {_e(report.days[-1] if report.days else '')}</title></head>\n<body>\n"
        f"{body}\n</body></html>\n"
    )


def _html_figures(report: Report) -> str:
    e = report.tickets
    figures = [
        ("Messages", report.total, f"previous period {report.previous_total}"),
        ("Answered", report.decisions.get("answered", 0), _share(report, "answered")),
        ("Escalated", report.decisions.get("escalated", 0), _share(report, "escalated")),
        ("Median answer time", _duration(e.answer_median_seconds), "by staff"),
        ("Overdue now", e.overdue_now, f"{e.open_now} open"),
        ("Undeliverable now", e.undeliverable_now, "answers that did not reach"),
    ]
    cells = "".join(
        f'<div class="figure">{_e(label)}<b>{_e(value)}</b>'
        f'<span class="muted">{_e(note)}</span></div>'
        for label, value, note in figures
    )
    return f'<div class="figures">{cells}</div>'


def _share(report: Report, category: str) -> str:
    if not report.total:
        return "-"
    return f"{100 * report.decisions.get(category, 0) / report.total:.1f}% of messages"


def _html_detail(detail: Mapping[str, int]) -> str:
    if not detail:
        return ""
    items = ", ".join(f"{_e(name)} {_e(count)}" for name, count in detail.items())
    return f'<p class="muted">Other: {items}</p>'


def _html_counts(counts: Sequence[Count], label: str, *, with_topic: bool = False) -> str:
    if not counts:
        return '<p class="muted">None in this period.</p>'
    head = f"<th>{_e(label)}</th>" + ("<th>Topic</th>" if with_topic else "")
    rows = "".join(
        f"<tr><td>{_e(c.name)}</td>"
        + (f"<td>{_e(c.topic or '')}</td>" if with_topic else "")
        + f'<td class="n">{c.count}</td><td class="n">{c.previous}</td>'
        f'<td class="n">{_e(_change(c.count, c.previous))}</td></tr>'
        for c in counts
    )
    return (
        f'<table><thead><tr>{head}<th class="n">Messages</th><th class="n">Previous</th>'
        f'<th class="n">Change</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _html_rises(rises: Sequence[Rise], label: str) -> str:
    if not rises:
        return f'<p class="muted">{_e(label)}: nothing rose.</p>'
    rows = "".join(
        f'<tr><td>{_e(r.name)}</td><td class="n">{r.previous}</td><td class="n">{r.count}</td>'
        f'<td class="n">+{r.increase}</td>'
        f'<td class="n">{_e("new" if r.relative is None else f"{100 * r.relative:+.0f}%")}</td>'
        "</tr>"
        for r in rises
    )
    return (
        f'<table><thead><tr><th>{_e(label)}</th><th class="n">Previous</th>'
        '<th class="n">Now</th><th class="n">Increase</th><th class="n">Relative</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _html_clusters(clusters: Sequence[Cluster]) -> str:
    if not clusters:
        return ""
    items = []
    for cluster in clusters:
        examples = "".join(f"<li><q>{_e(example)}</q></li>" for example in cluster.examples)
        near = cluster.nearest
        nearest = (
            f"nearest FAQ entry: <b>{_e(near.entry_id)}</b> ({_e(near.topic)}, score "
            f"{near.score:.2f}): <q>{_e(near.question)}</q>"
            if near
            else "no FAQ entry is near: a new entry is needed"
        )
        items.append(
            f"<li><b>{cluster.size} questions</b><ul>{examples}</ul>"
            f'<span class="muted">{nearest}</span></li>'
        )
    return f'<ol class="clusters">{"".join(items)}</ol>'


def _html_tickets(e: TicketFigures) -> str:
    rows = (
        ("Opened in the period", e.opened),
        ("Answered by staff", e.answered),
        ("Time to a human answer, median", _duration(e.answer_median_seconds)),
        ("Time to a human answer, 90th percentile", _duration(e.answer_p90_seconds)),
        ("Undeliverable (opened in the period)", e.undeliverable),
        ("Open now", e.open_now),
        ("Overdue now", e.overdue_now),
        ("Undeliverable now", e.undeliverable_now),
    )
    body = "".join(f'<tr><th>{_e(k)}</th><td class="n">{_e(v)}</td></tr>' for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _html_daily_table(report: Report) -> str:
    channels = list(report.volume)
    head = "".join(f'<th class="n">{_e(c)}</th>' for c in channels)
    rows = "".join(
        f"<tr><td>{_e(day.isoformat())}</td>"
        + "".join(f'<td class="n">{report.volume[c][n]}</td>' for c in channels)
        + f'<td class="n"><b>{report.per_day[n]}</b></td></tr>'
        for n, day in enumerate(report.days)
    )
    return (
        "<details><summary>Messages per day and channel (table)</summary>"
        f'<table><thead><tr><th>Day</th>{head}<th class="n">Total</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


# --- SVG -----------------------------------------------------------------------------------------


def _svg_bars(counts: Mapping[str, int], title: str, *, share_of: int | None = None) -> str:
    """Horizontal bars, one row per label, the value written after each bar."""
    label_width, bar_width, row, top = 170, 400, 30, 8
    width = label_width + bar_width + 130
    height = top * 2 + row * max(len(counts), 1)
    largest = max(counts.values(), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}" '
        f'style="{_FONT};font-size:14px">',
        f"<title>{_e(title)}</title>",
    ]
    for n, (label, count) in enumerate(counts.items()):
        y = top + n * row
        length = bar_width * count / largest
        share = f" ({100 * count / share_of:.1f}%)" if share_of else ""
        parts += [
            f'<text x="{label_width - 8}" y="{y + 20}" text-anchor="end" fill="{_INK}">'
            f"{_e(_clip(label, 22))}</text>",
            f'<rect x="{label_width}" y="{y + 5}" width="{length:.1f}" height="{row - 10}" '
            f'fill="{_FILL}"><title>{_e(label)}: {count}{_e(share)}</title></rect>',
            f'<text x="{label_width + length + 6:.1f}" y="{y + 20}" fill="{_INK}">'
            f"{count}{_e(share)}</text>",
        ]
    parts.append("</svg>")
    return "".join(parts)


def _svg_line(report: Report) -> str:
    """Messages per day: the total, and the busiest channels, with axes, a legend and a value
    in each point's tooltip."""
    days = report.days
    series = [("all channels", report.per_day)]
    series += list(report.volume.items())[:_LINE_CHANNELS]
    width, height = 760, 300
    left, right, top, bottom = 56, 20, 16, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    ceiling, ticks = _nice_ticks(max(report.per_day, default=0))
    step = plot_w / max(len(days) - 1, 1)

    def x(n: int) -> float:
        return left + (n * step if len(days) > 1 else plot_w / 2)

    def y(value: int) -> float:
        return top + plot_h - plot_h * value / ceiling

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="Messages per day" '
        f'style="{_FONT};font-size:13px">',
        "<title>Messages per day</title>",
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{_MUTED}">'
            f"{tick}</text>"
        )
    every = max(1, math.ceil(len(days) / 12))
    for n, day in enumerate(days):
        if n % every == 0 or n == len(days) - 1:
            parts.append(
                f'<text x="{x(n):.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
                f'fill="{_MUTED}">{_e(day.strftime("%m-%d"))}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{_INK}" stroke-width="1"/>'
    )
    for (name, counts), (colour, dash) in zip(reversed(series), _styles(len(series)), strict=True):
        bold = name == "all channels"
        points = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in enumerate(counts))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="{3 if bold else 1.6}"{dashed}/>'
        )
        if bold:
            parts += [
                f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{_e(day.isoformat())}: {v}</title></circle>"
                for n, (day, v) in enumerate(zip(days, counts, strict=True))
            ]
    legend_y = height - 14
    legend_x = left
    for (name, _), (colour, dash) in zip(series, _LINE_STYLES, strict=False):
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 26}" y1="{legend_y - 4}" '
            f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2.5"{dashed}/>'
            f'<text x="{legend_x + 32}" y="{legend_y}" fill="{_INK}">{_e(_clip(name, 18))}</text>'
        )
        legend_x += 44 + 8 * min(len(name), 18)
    parts.append("</svg>")
    return "".join(parts)


def _styles(count: int) -> list[tuple[str, str]]:
    """The styles of `count` series drawn last-first (the total on top)."""
    return list(reversed(_LINE_STYLES[:count]))


def _nice_ticks(largest: int) -> tuple[int, list[int]]:
    """A round ceiling for the y axis and 3-6 ticks from 0 to it."""
    if largest <= 0:
        return 1, [0, 1]
    raw = largest / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    ceiling = step * math.ceil(largest / step)
    return ceiling, list(range(0, ceiling + 1, step))


def _clip(text: str, width: int) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= width else flat[: width - 1] + "…"
