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
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

import bot.runtime.privacy as privacy
from bot.answering.desk import match_docs
from bot.answering.knowledge import KnowledgeBase
from bot.answering.matcher import Matcher
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
class PostReach:
    channel: str
    status: str  # the outbox row's: pending, sending, sent, dead
    url: str | None


@dataclass(frozen=True)
class AnnouncementReach:
    id: int
    title: str
    link: str
    publish_at: datetime
    posts: tuple[PostReach, ...]
    questions: int  # replies under its posts received in the period
    examples: tuple[str, ...] = ()  # the latest of them, masked, on one line

    @property
    def published_on(self) -> tuple[str, ...]:
        return tuple(post.channel for post in self.posts if post.status == "sent")


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
    # Announcements published in the period or answered in it: where, and how many questions
    # their posts drew (replies under a post reach the desk like mentions).
    announcements: tuple[AnnouncementReach, ...] = field(default=())

    @property
    def per_day(self) -> tuple[int, ...]:
        return tuple(sum(day) for day in zip(*self.volume.values(), strict=True)) or tuple(
            0 for _ in self.days
        )

    @property
    def per_channel(self) -> dict[str, int]:
        return {channel: sum(counts) for channel, counts in self.volume.items()}


ANNOUNCEMENT_LIMIT = 50  # the newest announcements looked at for a report

# --- the period ----------------------------------------------------------------------------------


def parse_since(text: str, until: datetime, zone: ZoneInfo) -> datetime:
    """The start of the period ending at `until`: "7d" (today and the 6 days before, in the
    office's days), "12h", a date ("2026-10-01": from its midnight in the office's zone) or a
    date and time (in the office's zone unless it names one). ValueError if it is no such thing
    or not before `until`."""
    age = _AGE.match(text)
    if age is not None:
        number, unit = int(age.group(1)), age.group(2).lower()
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
    report = await asyncio.to_thread(making)
    announced = await store.list_announcements(limit=ANNOUNCEMENT_LIMIT, since=since, until=now)
    reach = tuple(
        AnnouncementReach(
            id=item.id,
            title=item.title,
            link=item.link,
            publish_at=item.publish_at,
            posts=tuple(PostReach(post.channel, post.status, post.url) for post in item.posts),
            questions=item.questions,
            examples=tuple(_one_line(privacy.mask(text)) for text in item.examples),
        )
        for item in announced
        if item.publish_at < now and (item.publish_at >= since or item.questions)
    )
    return replace(report, announcements=reach)


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
        "announcements": [
            {
                "id": a.id,
                "title": a.title,
                "link": a.link,
                "publish_at": a.publish_at.isoformat(),
                "published_on": list(a.published_on),
                "posts": [asdict(post) for post in a.posts],
                "questions": a.questions,
                "examples": list(a.examples),
            }
            for a in report.announcements
        ],
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
    lines += ["", "Announcements (questions = replies under their posts in the period):"]
    for a in report.announcements:
        lines.append(f"  {a.questions:>6}  #{a.id} {_one_line(a.title)}  ({a.link})")
        lines += [f"          {post.channel}: {post.url or post.status}" for post in a.posts]
    if not report.announcements:
        lines.append("  none")
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
# The page and its SVG charts are Jinja2 templates (bot/templates/reports/, autoescaped); the
# functions here only work out what they show: the figures, and each chart's geometry.

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
# Constants of this module, not input: printed as they are (the font names have quotes).
_COLOURS = {
    name: Markup(value)  # noqa: S704
    for name, value in (
        {"ink": _INK, "muted": _MUTED, "grid": _GRID, "fill": _FILL, "font": _FONT}
    ).items()
}


def _e(value: object) -> str:
    """Any value as HTML text: escaped, quotes included, and braces as character references so
    that not even a template engine reading the page again finds `{{ }}` in it."""
    return html.escape(str(value), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _escaped(value: object) -> object:
    """The templates' finalize: every value they print goes through `_e` (Markup, made by the
    templates' own macros, is already HTML)."""
    return value if isinstance(value, Markup) else Markup(_e(value))  # noqa: S704


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bot", "templates/reports"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_escaped,
)


def render_html(report: Report, *, page: bool = True) -> str:
    """The report as HTML with inline SVG charts: no script, no external file, every value
    escaped. `page=False`: the <section> alone (with its <style>), to place in another page."""
    zone = ZoneInfo(report.timezone)
    return _TEMPLATES.get_template("concerns.html").render(
        page=page,
        report=report,
        colours=_COLOURS,
        first_day=report.days[0] if report.days else "",
        last_day=report.days[-1] if report.days else "",
        span=_span(report.since, report.until, zone),
        previous_span=_span(report.previous_since, report.since, zone),
        figures=_figures(report),
        channel_bars=_bars(report.per_channel, "Messages per channel"),
        decision_bars=_bars(report.decisions, "Decisions", share_of=report.total),
        daily=_daily_chart(report) if report.total else None,
        rise_min_count=RISE_MIN_COUNT,
        unanswered_heading=_unanswered_heading(report),
        top_entries=[_count_row(c) for c in report.top_entries],
        top_topics=[_count_row(c) for c in report.top_topics],
        rising_entries=[_rise_row(r) for r in report.rising_entries],
        rising_topics=[_rise_row(r) for r in report.rising_topics],
        ticket_rows=_ticket_rows(report.tickets),
        announcements=report.announcements,
    )


def _figures(report: Report) -> list[tuple[str, object, str]]:
    e = report.tickets
    return [
        ("Messages", report.total, f"previous period {report.previous_total}"),
        ("Answered", report.decisions.get("answered", 0), _share(report, "answered")),
        ("Escalated", report.decisions.get("escalated", 0), _share(report, "escalated")),
        ("Median answer time", _duration(e.answer_median_seconds), "by staff"),
        ("Overdue now", e.overdue_now, f"{e.open_now} open"),
        ("Undeliverable now", e.undeliverable_now, "answers that did not reach"),
    ]


def _share(report: Report, category: str) -> str:
    if not report.total:
        return "-"
    return f"{100 * report.decisions.get(category, 0) / report.total:.1f}% of messages"


def _count_row(count: Count) -> dict[str, object]:
    return {
        "name": count.name,
        "topic": count.topic or "",
        "count": count.count,
        "previous": count.previous,
        "change": _change(count.count, count.previous),
    }


def _rise_row(rise: Rise) -> dict[str, object]:
    relative = "new" if rise.relative is None else f"{100 * rise.relative:+.0f}%"
    return {
        "name": rise.name,
        "previous": rise.previous,
        "count": rise.count,
        "increase": rise.increase,
        "relative": relative,
    }


def _ticket_rows(e: TicketFigures) -> tuple[tuple[str, object], ...]:
    return (
        ("Opened in the period", e.opened),
        ("Answered by staff", e.answered),
        ("Time to a human answer, median", _duration(e.answer_median_seconds)),
        ("Time to a human answer, 90th percentile", _duration(e.answer_p90_seconds)),
        ("Undeliverable (opened in the period)", e.undeliverable),
        ("Open now", e.open_now),
        ("Overdue now", e.overdue_now),
        ("Undeliverable now", e.undeliverable_now),
    )


# --- SVG geometry --------------------------------------------------------------------------------


def _bars(
    counts: Mapping[str, int], title: str, *, share_of: int | None = None
) -> dict[str, object]:
    """Horizontal bars, one row per label, the value written after each bar."""
    label_width, bar_width, row, top = 170, 400, 30, 8
    largest = max(counts.values(), default=0) or 1
    rows = []
    for n, (label, count) in enumerate(counts.items()):
        length = bar_width * count / largest
        rows.append(
            {
                "label": label,
                "short": _clip(label, 22),
                "count": count,
                "share": f" ({100 * count / share_of:.1f}%)" if share_of else "",
                "y": top + n * row,
                "length": f"{length:.1f}",
                "value_x": f"{label_width + length + 6:.1f}",
            }
        )
    return {
        "title": title,
        "width": label_width + bar_width + 130,
        "height": top * 2 + row * max(len(counts), 1),
        "label_width": label_width,
        "bar_height": row - 10,
        "rows": rows,
    }


def _daily_chart(report: Report) -> dict[str, object]:
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

    every = max(1, math.ceil(len(days) / 12))
    lines = []
    for (name, counts), (colour, dash) in zip(reversed(series), _styles(len(series)), strict=True):
        bold = name == "all channels"
        points = [
            {"x": f"{x(n):.1f}", "y": f"{y(v):.1f}", "day": day.isoformat(), "value": v}
            for n, (day, v) in enumerate(zip(days, counts, strict=True))
        ]
        lines.append(
            {
                "points": " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in enumerate(counts)),
                "colour": colour,
                "dash": dash,
                "stroke_width": 3 if bold else 1.6,
                "dots": points if bold else [],
            }
        )
    legend = []
    legend_x = left
    for (name, _), (colour, dash) in zip(series, _LINE_STYLES, strict=False):
        legend.append({"x": legend_x, "colour": colour, "dash": dash, "name": _clip(name, 18)})
        legend_x += 44 + 8 * min(len(name), 18)
    return {
        "width": width,
        "height": height,
        "left": left,
        "right_edge": width - right,
        "axis_y": top + plot_h,
        "ticks": [{"value": t, "y": f"{y(t):.1f}", "label_y": f"{y(t) + 4:.1f}"} for t in ticks],
        "day_labels": [
            {"x": f"{x(n):.1f}", "text": day.strftime("%m-%d")}
            for n, day in enumerate(days)
            if n % every == 0 or n == len(days) - 1
        ],
        "lines": lines,
        "legend_y": height - 14,
        "legend": legend,
    }


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
