"""/metrics as a Prometheus server scrapes it: the text format, the civicdesk counters, and the
process and garbage-collector metrics that the client library adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from web_support import SMALL_KB, environment, event, served_app, signed_post


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Any, **labels: str) -> float:
    for sample in family.samples:
        if sample.labels == labels and not sample.name.endswith(("_created", "_bucket")):
            return float(sample.value)
    raise AssertionError(f"no sample {labels} in {family.name}")


async def test_metrics_include_the_process_and_gc_and_count_each_app_apart(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    outbound = "http://127.0.0.1:9/replies"  # never reached: no message is answered here
    first_app, _, _ = await served_app(
        environment(tmp_path / "a.db", outbound), SMALL_KB, workers=False
    )
    second_app, _, _ = await served_app(
        environment(tmp_path / "b.db", outbound), SMALL_KB, workers=False
    )
    first, second = await aiohttp_client(first_app), await aiohttp_client(second_app)
    body = event("evt-1", "How do I pay the court fee?")
    assert (await first.post("/webhooks/webhook", data=body, headers=signed_post(body))).ok
    unsigned = await second.post("/webhooks/webhook", data=body)
    assert unsigned.status == 401

    scraped_first = await first.get("/metrics")
    text_first = await scraped_first.text()
    text_second = await (await second.get("/metrics")).text()

    assert scraped_first.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    one, two = families(text_first), families(text_second)
    assert value(one["process_cpu_seconds"]) > 0
    assert value(one["process_resident_memory_bytes"]) > 0
    assert "python_gc_objects_collected" in one
    assert value(one["civicdesk_process_start_time_seconds"]) > 0
    # Two apps in one process: each counts only what it received.
    assert value(one["civicdesk_messages_in"], channel="webhook", result="new") == 1
    assert "webhook" not in {s.labels.get("channel") for s in two["civicdesk_messages_in"].samples}
    assert value(two["civicdesk_requests_rejected"], channel="webhook", status="401") == 1
    assert not [s for s in one["civicdesk_requests_rejected"].samples if s.labels]
    # The match histogram says what it times: the desk, not the storing or the delivery.
    assert "desk" in one["civicdesk_match_seconds"].documentation
    assert "process_cpu_seconds_total" in text_first
