"""The coordinator's report: every institution's figures side by side, and the topics rising
across all of them (what the public asks this period that it asked less in the one before).

`build_institution_report` reads the database (`bot.storage.institution_report`), the rest is
pure: `make_institution_report` adds the channels' figures up per institution.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bot.answering.knowledge import KnowledgeBase
from bot.config.institutions import Institutions
from bot.reports.concerns import UNKNOWN_TOPIC, Rise, rising
from bot.storage.institution_report import InstitutionData, read_institution_data
from bot.storage.store import Store


@dataclass(frozen=True)
class InstitutionFigures:
    name: str
    title: str
    messages: int
    answered: int
    clarified: int
    escalated: int
    answer_median_seconds: float | None  # time to a human answer, tickets of the period
    answer_p90_seconds: float | None
    overdue_now: int
    undeliverable_now: int


@dataclass(frozen=True)
class InstitutionReport:
    since: datetime
    until: datetime
    institutions: tuple[InstitutionFigures, ...]
    rising_topics: tuple[Rise, ...]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (as PostgreSQL's percentile_cont and the
    single-institution report)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def make_institution_report(
    data: InstitutionData,
    institutions: Institutions,
    knowledge: Mapping[str, KnowledgeBase],
    *,
    since: datetime,
    until: datetime,
) -> InstitutionReport:
    """Pure: the channels' figures added up per institution (`knowledge`: name -> what it
    serves, for the entries' topics)."""
    rows = []
    for item in institutions.items:
        mine = [
            f
            for channel, f in data.channels.items()
            if institutions.of_channel(channel).name == item.name
        ]
        waits = [s for f in mine for s in f.answer_seconds]

        def decided(decision: str, mine: list[Any] = mine) -> int:
            return sum(f.decisions.get(decision, 0) for f in mine)

        rows.append(
            InstitutionFigures(
                name=item.name,
                title=item.title("en"),
                messages=sum(f.messages for f in mine),
                answered=decided("answer"),
                clarified=decided("clarify"),
                escalated=decided("escalate"),
                answer_median_seconds=percentile(waits, 0.5),
                answer_p90_seconds=percentile(waits, 0.9),
                overdue_now=sum(f.overdue_now for f in mine),
                undeliverable_now=sum(f.undeliverable_now for f in mine),
            )
        )
    topic_of: dict[str, str] = {}
    for base in knowledge.values():
        for entry in base.entries:
            topic_of.setdefault(entry.id, entry.topic)
    now: dict[str, int] = {}
    before: dict[str, int] = {}
    for (current, entry_id), count in data.entries.items():
        topic = topic_of.get(entry_id, UNKNOWN_TOPIC)
        target = now if current else before
        target[topic] = target.get(topic, 0) + count
    return InstitutionReport(
        since.astimezone(UTC), until.astimezone(UTC), tuple(rows), tuple(rising(now, before))
    )


async def build_institution_report(
    store: Store,
    institutions: Institutions,
    knowledge: Mapping[str, KnowledgeBase],
    *,
    since: datetime,
    until: datetime,
) -> InstitutionReport:
    data = await store._db.read(partial(read_institution_data, since=since, until=until))
    return make_institution_report(data, institutions, knowledge, since=since, until=until)


# --- rendering -----------------------------------------------------------------------------------


def report_dict(report: InstitutionReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "institutions": [asdict(row) for row in report.institutions],
        "rising_topics": [asdict(rise) for rise in report.rising_topics],
    }


def render_json(report: InstitutionReport) -> str:
    return json.dumps(report_dict(report), ensure_ascii=False, indent=2) + "\n"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


_COLUMNS = (
    "institution",
    "messages",
    "answered",
    "clarified",
    "escalated",
    "median",
    "p90",
    "overdue",
    "undeliverable",
)


def _cells(row: InstitutionFigures) -> list[str]:
    return [
        row.name,
        str(row.messages),
        str(row.answered),
        str(row.clarified),
        str(row.escalated),
        _hours(row.answer_median_seconds),
        _hours(row.answer_p90_seconds),
        str(row.overdue_now),
        str(row.undeliverable_now),
    ]


def render_text(report: InstitutionReport) -> str:
    lines = [
        f"Institutions, {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC",
        "(median and p90: time to a human answer; overdue and undeliverable: now)",
        "",
    ]
    table = [list(_COLUMNS), *(_cells(row) for row in report.institutions)]
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
    for cells in table:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    lines += ["", "Topics rising across all institutions:"]
    if not report.rising_topics:
        lines.append("  none")
    for rise in report.rising_topics:
        lines.append(f"  {rise.name}: {rise.count} (previous period {rise.previous})")
    return "\n".join(lines) + "\n"


_BAR_COLOURS = (("answered", "#2e7d32"), ("clarified", "#f9a825"), ("escalated", "#c62828"))


def _chart(report: InstitutionReport) -> str:
    """A stacked bar per institution (answered, clarified, escalated): inline SVG, no script."""
    rows = report.institutions
    largest = max((r.messages for r in rows), default=0) or 1
    height, label, width = 22, 180, 420
    parts = [
        f'<svg role="img" aria-label="Messages per institution" width="{label + width + 60}" '
        f'height="{height * len(rows) + 30}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for n, row in enumerate(rows):
        y = n * height + 4
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(row.title)}</text>')
        x = float(label)
        for key, colour in _BAR_COLOURS:
            w = width * getattr(row, key) / largest
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{height - 6}" '
                f'fill="{colour}"><title>{key}: {getattr(row, key)}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="12">{row.messages}</text>')
    legend_y = height * len(rows) + 22
    for n, (key, colour) in enumerate(_BAR_COLOURS):
        parts.append(
            f'<rect x="{label + n * 110}" y="{legend_y - 10}" width="10" height="10" '
            f'fill="{colour}"/><text x="{label + n * 110 + 14}" y="{legend_y}" '
            f'font-size="12">{key}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: InstitutionReport) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in _COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(row.title)}</td>" if i == 0 else f"<td class=n>{e(c)}</td>"
            for i, c in enumerate(_cells(row))
        )
        + "</tr>"
        for row in report.institutions
    )
    rises = (
        "".join(
            f"<li>{e(r.name)}: {r.count} (previous period {r.previous})</li>"
            for r in report.rising_topics
        )
        or "<li>none</li>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>civicdesk: institutions</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px}td.n{text-align:right;white-space:nowrap}"
        "</style></head><body>"
        f"<h1>Institutions</h1><p>{report.since:%Y-%m-%d %H:%M} to "
        f"{report.until:%Y-%m-%d %H:%M} UTC. Median and p90: time to a human answer; "
        "overdue and undeliverable: now.</p>"
        f"<figure>{_chart(report)}</figure>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<h2>Topics rising across all institutions</h2><ul>{rises}</ul>"
        "</body></html>\n"
    )


def render_csv(report: InstitutionReport) -> str:
    """One row per institution (times in seconds, empty when no ticket was answered), for a
    spreadsheet; names starting with = + - @ are quoted with ' so no cell is a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    fields = [f.name for f in dataclasses.fields(InstitutionFigures)]
    writer.writerow(fields)
    for row in report.institutions:
        values = [getattr(row, name) for name in fields]
        writer.writerow(["" if v is None else _cell(v) for v in values])
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    if isinstance(value, float):
        return round(value, 3)
    return value


RENDER = {"json": render_json, "text": render_text, "html": render_html, "csv": render_csv}
