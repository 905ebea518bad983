"""Prometheus metrics in the text exposition format, without a client library.

A few counters and histograms kept in memory per process, and gauges read at scrape time (queue
depths from the database). Labels are channel names and decisions: a small, configured set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Matching takes milliseconds; a delivery is a network round trip.
MATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


@dataclass
class Counter:
    name: str
    help: str
    label_names: tuple[str, ...]
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class _Series:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    name: str
    help: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    series: dict[tuple[str, ...], _Series] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = _Series([0] * len(self.buckets))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                series.counts[index] += 1
        series.total += value
        series.count += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, series in sorted(self.series.items()):
            for bound, count in zip(self.buckets, series.counts, strict=True):
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {count}"
            inf = _labels(self.label_names, labels, 'le="+Inf"')
            yield f"{self.name}_bucket{inf} {series.count}"
            plain = _labels(self.label_names, labels)
            yield f"{self.name}_sum{plain} {_number(series.total)}"
            yield f"{self.name}_count{plain} {series.count}"


def _gauge(name: str, help_: str, label: str, values: Mapping[str, float]) -> Iterable[str]:
    yield f"# HELP {name} {help_}"
    yield f"# TYPE {name} gauge"
    for key, value in sorted(values.items()):
        yield f"{name}{_labels((label,), (key,)) if label else ''} {_number(value)}"


class Metrics:
    """The metrics of one process."""

    def __init__(self) -> None:
        self.started = time.time()
        self.messages_in = Counter(
            "civicdesk_messages_in_total",
            "Messages received and stored, by channel; result new or duplicate (a redelivery).",
            ("channel", "result"),
        )
        self.rejected = Counter(
            "civicdesk_requests_rejected_total",
            "Webhook requests refused, by channel and HTTP status (nothing of them stored).",
            ("channel", "status"),
        )
        self.decisions = Counter(
            "civicdesk_decisions_total",
            "Questions answered by the desk, by channel and decision.",
            ("channel", "decision"),
        )
        self.messages_out = Counter(
            "civicdesk_messages_out_total",
            "Delivery attempts of replies, by channel; result sent, retry or dead (given up).",
            ("channel", "result"),
        )
        self.match_seconds = Histogram(
            "civicdesk_match_seconds",
            "Time to answer one message: match, decide, compose, and store the replies.",
            ("channel",),
            MATCH_BUCKETS,
        )
        self.delivery_seconds = Histogram(
            "civicdesk_delivery_seconds",
            "Time of one delivery attempt through the channel's adapter.",
            ("channel",),
            DELIVERY_BUCKETS,
        )
        self.polls = Counter(
            "civicdesk_polls_total",
            "Polls of platforms without push, by channel; result ok or failed.",
            ("channel", "result"),
        )
        self.knowledge_reloads = Counter(
            "civicdesk_knowledge_reloads_total",
            "Reloads of the knowledge base; result ok or failed (the last good one kept).",
            ("result",),
        )

    # The workers' observer (bot.gateway.worker.WorkerEvents): they report, these methods count.

    def received(self, channel: str, fresh: Sequence[bool]) -> None:
        """Inbound messages accepted by the store: True per new one, False per redelivery."""
        for new in fresh:
            self.messages_in.inc(channel, "new" if new else "duplicate")

    def polled(self, channel: str, ok: bool) -> None:
        self.polls.inc(channel, "ok" if ok else "failed")

    def handled(self, channel: str, decision: str, seconds: float) -> None:
        self.decisions.inc(channel, decision)
        self.match_seconds.observe(seconds, channel)

    def delivered(self, channel: str, outcome: str, seconds: float) -> None:
        self.messages_out.inc(channel, outcome)
        self.delivery_seconds.observe(seconds, channel)

    def render(self, queue_depths: Mapping[str, int] | None = None) -> str:
        """The exposition text; `queue_depths` comes from the store at scrape time."""
        lines: list[str] = []
        for metric in (
            self.messages_in,
            self.polls,
            self.rejected,
            self.decisions,
            self.messages_out,
            self.knowledge_reloads,
        ):
            lines.extend(metric.render())
        lines.extend(self.match_seconds.render())
        lines.extend(self.delivery_seconds.render())
        depths = dict(queue_depths or {})
        open_tickets = {
            key: depths.pop(key) for key in list(depths) if key.startswith("escalation")
        }
        lines.extend(
            _gauge(
                "civicdesk_queue_depth",
                "Rows waiting per queue and status (inbox and outbox), from the database.",
                "queue",
                depths,
            )
        )
        if open_tickets:
            lines.extend(
                _gauge(
                    "civicdesk_escalations_open",
                    "Escalations waiting for a human's answer.",
                    "",
                    {"": sum(open_tickets.values())},
                )
            )
        lines.extend(
            _gauge(
                "civicdesk_process_start_time_seconds",
                "Start time of the process (unix seconds).",
                "",
                {"": self.started},
            )
        )
        return "\n".join(lines) + "\n"
