"""Prometheus metrics of one process, through `prometheus_client`.

A few counters and histograms kept in memory, gauges read at scrape time (queue depths from the
database), and what the client library measures for free: the process (CPU seconds, memory, open
files, start time) and Python's garbage collector. Labels are channel names and decisions: a
small, configured set.

Each `Metrics` has its own `CollectorRegistry` rather than the library's global one, so that
several apps in one process (the tests build many) count apart and never clash on a name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, GCCollector, ProcessCollector
from prometheus_client import Counter as _ClientCounter
from prometheus_client import Histogram as _ClientHistogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

# The text format 0.0.4, which every Prometheus reads (`generate_latest` writes it); the
# library's CONTENT_TYPE_LATEST names a newer version that older scrapers refuse.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Matching takes milliseconds; a delivery is a network round trip.
MATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Counter:
    """A labelled counter. The library's `labels()` takes a lock and checks its arguments on
    every call; every webhook request counts something, so each label set's child is looked up
    once and kept here."""

    def __init__(
        self, name: str, help_: str, label_names: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self._registry = registry
        self._label_names = tuple(label_names)
        self._metric = _ClientCounter(name, help_, self._label_names, registry=registry)
        self._children: dict[tuple[str, ...], Any] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        child.inc(amount)

    def get(self, *labels: str) -> float:
        """The count so far for one label set (0 when never counted)."""
        value = self._registry.get_sample_value(
            self.name, dict(zip(self._label_names, labels, strict=True))
        )
        return value or 0.0


class Histogram:
    """A labelled histogram, its children kept as `Counter` keeps them."""

    def __init__(
        self,
        name: str,
        help_: str,
        label_names: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self._metric = _ClientHistogram(
            name, help_, tuple(label_names), buckets=tuple(buckets), registry=registry
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def observe(self, value: float, *labels: str) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        child.observe(value)


class _QueueDepths:
    """Gauges from the database, handed over by the scrape that reads them (`Metrics.render`)."""

    def __init__(self) -> None:
        self.depths: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        depths = dict(self.depths)
        open_tickets = {
            key: depths.pop(key) for key in list(depths) if key.startswith("escalation")
        }
        queue = GaugeMetricFamily(
            "civicdesk_queue_depth",
            "Rows waiting per queue and status (inbox and outbox), from the database.",
            labels=("queue",),
        )
        for key, value in sorted(depths.items()):
            queue.add_metric((key,), value)
        yield queue
        if open_tickets:
            yield GaugeMetricFamily(
                "civicdesk_escalations_open",
                "Tickets (escalated questions) waiting for a human's answer.",
                value=sum(open_tickets.values()),
            )


class Metrics:
    """The metrics of one process."""

    def __init__(self) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, memory, open files
        GCCollector(registry=registry)  # python_gc_*: collections per generation
        self.messages_in = Counter(
            "civicdesk_messages_in_total",
            "Messages received and stored, by channel; result new or duplicate (a redelivery).",
            ("channel", "result"),
            registry,
        )
        self.polls = Counter(
            "civicdesk_polls_total",
            "Polls of platforms without push, by channel; result ok or failed.",
            ("channel", "result"),
            registry,
        )
        self.rejected = Counter(
            "civicdesk_requests_rejected_total",
            "Webhook requests refused, by channel and HTTP status (nothing of them stored).",
            ("channel", "status"),
            registry,
        )
        self.decisions = Counter(
            "civicdesk_decisions_total",
            "Questions answered by the desk, by channel and decision.",
            ("channel", "decision"),
            registry,
        )
        self.messages_out = Counter(
            "civicdesk_messages_out_total",
            "Delivery attempts of replies, by channel; result sent, retry or dead (given up).",
            ("channel", "result"),
            registry,
        )
        self.knowledge_reloads = Counter(
            "civicdesk_knowledge_reloads_total",
            "Reloads of the knowledge base; result ok or failed (the last good one kept).",
            ("result",),
            registry,
        )
        # What the worker times around Desk.respond (bot.gateway.pipeline): the answering only.
        self.match_seconds = Histogram(
            "civicdesk_match_seconds",
            "Time the desk takes to answer one message: match, decide and compose the reply "
            "(not storing it, not delivering it).",
            ("channel",),
            MATCH_BUCKETS,
            registry,
        )
        self.delivery_seconds = Histogram(
            "civicdesk_delivery_seconds",
            "Time of one delivery attempt through the channel's adapter.",
            ("channel",),
            DELIVERY_BUCKETS,
            registry,
        )
        self._queue_depths = _QueueDepths()
        registry.register(self._queue_depths)
        Gauge(
            "civicdesk_process_start_time_seconds",
            "Start time of the process (unix seconds).",
            registry=registry,
        ).set(self.started)

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
        self._queue_depths.depths = dict(queue_depths or {})
        return generate_latest(self.registry).decode()
