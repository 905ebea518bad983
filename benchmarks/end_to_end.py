"""Sustained load through the webhook channel, from the POST to the reply, against a bare relay.

Run from the project root:

    .venv/bin/python benchmarks/end_to_end.py [--rate 300] [--duration 30] [--grace 10]
                                              [--quick] [--json]
    .venv/bin/python benchmarks/end_to_end.py --compare-semantic [--search-start 10]
                       [--search-max 640] [--search-budget 150] [--step-duration 4] [--json]

`--compare-semantic` is a capacity search instead of one fixed rate: one `civicdesk serve` with
CIVICDESK_SEMANTIC=off, then one with =on (the semantic extra installed), each driven in short
open-loop steps at rates doubling from --search-start until a step fails (p99 POST-to-reply
above 100 ms, or a message lost or answered twice), then bisected to within 10 %, the best rate
run once more; each step sends for --step-duration seconds and at least 100 messages, a failed
step's backlog is drained before the next, and each search stops after --search-budget seconds.
The questions come from benchmarks/citizen_questions.py (zh and en, FAQ phrasings and
paraphrases, mostly new texts, some repeated), the same sequence for both servers. It prints
each step, the highest passing rate of each setting and their ratio. No bare relay in this mode.

What runs where:

- **civicdesk**: `civicdesk serve` as a subprocess on a new SQLite file in a temporary directory,
  webhook channel only, its workers answering from the sample FAQ (`knowledge/`), its
  `CIVICDESK_WEBHOOK_OUTBOUND_URL` pointing at the receiver below. The channel's rate limit is
  lifted (`CIVICDESK_WEBHOOK_RATE=0`): the default of 20 replies per second per channel protects
  a platform's API quota and would by itself hold replies to 20/s, which is not what this
  measures.
- **this process**: the load generator and the receiver, one asyncio loop. The generator is
  open-loop: message i is sent at start + i/rate whatever became of the earlier ones (each POST
  is its own task over a pool of keep-alive connections), so a slow server meets the full rate
  instead of slowing the sender; how late each send started against its schedule is recorded
  (schedule lag). Every message is signed as the README says and has its own `id` and
  conversation. The receiver checks each reply's signature and records when it came, keyed by
  `reply_to` (the id of the message answered) and `Idempotency-Key`.
- **the baseline, a bare relay** (its own process, run in the same invocation before civicdesk,
  with the same rate, duration, generator and receiver): an aiohttp handler that parses the
  JSON, answers `200 {"ok":true}` and then POSTs a signed reply to the receiver over one shared
  client session. No signature check, no storage, no matching. Its latency is what this machine
  and this generator cost for "HTTP in, 200, HTTP out", so the ratio civicdesk / relay is what
  durability, the workers and answering add on top, on the same machine at the same moment.

Per phase it prints sent, accepted (200), received, lost (accepted, no reply by the end of the
grace period), duplicated (a message answered more than once, or a reply delivered twice), the
latency from the POST to the reply received (p50/p99/max), the latency of the acknowledgement
(POST to 200) for comparison, and the schedule lag. Latencies are measured from the moment the
POST started; when the schedule lag is small they equal those measured from the schedule.

A message without a reply by the end of the grace period counts as lost; after the server's
graceful stop the script reads the SQLite file to say where each one is: still queued (late:
the server fell behind) or not stored at all (gone: a 200 that a durable inbox must never give).

Acceptance (issue 3), at 300 messages/s for 30 s on SQLite: 0 lost, 0 duplicated, p99 <= 100 ms
from POST to reply received; the verdict line says PASS or FAIL for each. Speed does not decide
the exit status: it is 0 unless a message was answered twice or acknowledged and never stored
(1), or the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import math
import os
import platform
import resource
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from citizen_questions import QuestionStream

# The process helpers are shared with the ingest benchmark, beside this file (a script's own
# folder is on sys.path when it runs).
from ingest import (
    CHANNEL,
    KNOWLEDGE,
    PATH,
    QUESTIONS,
    Server,
    clean_environment,
    code_version,
    free_port,
    load_average,
    machine_cpu_seconds,
    percentile,
    sign,
    start_civicdesk,
    start_server,
)

DEFAULT_RATE = 300.0
DEFAULT_DURATION = 30.0
QUICK_RATE = 50.0
QUICK_DURATION = 5.0
DEFAULT_GRACE = 10.0
WARMUP_MESSAGES = 30
P99_LIMIT_MS = 100.0
POST_TIMEOUT = 30.0
CLIENT_CONNECTIONS = 1000  # the pool never makes an open-loop send wait for a connection
LAG_WARNING_MS = 10.0


# --------------------------------------------------------------------------- the bare relay

RELAY_SESSION = web.AppKey("relay_session", aiohttp.ClientSession)


def relay_app(outbound: str, secret: str) -> web.Application:
    """Parse, answer 200, then POST a signed reply: the least a relay with a reply can do."""
    app = web.Application()
    sending: set[asyncio.Task[None]] = set()
    reply_ids = iter(range(1, 1 << 62))

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        app[RELAY_SESSION] = session
        yield
        await asyncio.gather(*sending, return_exceptions=True)
        await session.close()

    async def deliver(data: dict[str, Any]) -> None:
        reply_id = next(reply_ids)
        payload = {
            "id": reply_id,
            "channel": CHANNEL,
            "conversation": data.get("conversation"),
            "recipient": data.get("sender") or data.get("conversation"),
            "text": "bare relay",
            "reply_to": data.get("id"),
            "public": False,
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Civicdesk-Timestamp": timestamp,
            "X-Civicdesk-Signature": sign(secret, timestamp, body),
            "Idempotency-Key": str(reply_id),
        }
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with app[RELAY_SESSION].post(outbound, data=body, headers=headers) as response:
                await response.read()

    async def accept(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        task = asyncio.create_task(deliver(data))
        sending.add(task)
        task.add_done_callback(sending.discard)
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/webhooks/{channel}", accept)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(session_ctx)
    return app


# --------------------------------------------------------------------------- receiver


@dataclass
class Receiver:
    """The other end of the webhook channel: checks signatures, records arrivals."""

    secret: str
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # reply_to -> loop times
    keys: Counter[str] = field(default_factory=Counter)  # Idempotency-Key -> deliveries
    bad_signatures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        arrived = asyncio.get_running_loop().time()
        body = await request.read()
        timestamp = request.headers.get("X-Civicdesk-Timestamp", "")
        given = request.headers.get("X-Civicdesk-Signature", "")
        if not hmac.compare_digest(given, sign(self.secret, timestamp, body)):
            self.bad_signatures += 1
            return web.Response(status=401)
        data = json.loads(body)
        self.arrivals.setdefault(str(data.get("reply_to")), []).append(arrived)
        self.keys[request.headers.get("Idempotency-Key", "")] += 1
        self.changed.set()
        return web.Response(status=200)


# --------------------------------------------------------------------------- generator


@dataclass
class Sent:
    due: float
    started: float = math.nan
    acked: float = math.nan
    status: int | None = None
    error: str | None = None


def fixed_question(n: int) -> str:
    """The default modes' questions: the ingest benchmark's fourteen, in turn."""
    return QUESTIONS[n % len(QUESTIONS)]


def body_for(key: str, n: int, text: str) -> bytes:
    data = {"id": key, "conversation": f"c-{key}", "sender": f"u-{n % 997}", "text": text}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


async def post_one(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    key: str,
    n: int,
    text: str,
    record: Sent,
) -> None:
    loop = asyncio.get_running_loop()
    body = body_for(key, n, text)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Civicdesk-Timestamp": timestamp,
        "X-Civicdesk-Signature": sign(secret, timestamp, body),
    }
    record.started = loop.time()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            record.status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        record.error = type(exc).__name__
    record.acked = loop.time()


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    *,
    prefix: str,
    rate: float,
    count: int,
    question: Callable[[int], str] = fixed_question,
) -> dict[str, Sent]:
    """Send `count` messages at `rate` per second on a fixed schedule; wait for every answer."""
    loop = asyncio.get_running_loop()
    sent: dict[str, Sent] = {}
    tasks = []
    start = loop.time() + 0.05
    for n in range(count):
        due = start + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        key = f"{prefix}{n}"
        sent[key] = record = Sent(due)
        text = question(n)
        tasks.append(asyncio.create_task(post_one(session, url, secret, key, n, text, record)))
    await asyncio.gather(*tasks)
    return sent


async def wait_for_replies(receiver: Receiver, wanted: set[str], grace: float) -> float:
    """Until every id in `wanted` has a reply or `grace` seconds passed; returns seconds waited."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + grace
    while not wanted <= receiver.arrivals.keys():
        left = deadline - loop.time()
        if left <= 0:
            break
        receiver.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.changed.wait(), min(left, 0.25))
    return loop.time() - started


def ms_stats(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {"p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan, "mean_ms": math.nan}
    millis = [s * 1000 for s in seconds]
    return {
        "p50_ms": statistics.median(millis),
        "p99_ms": percentile(millis, 99),
        "max_ms": max(millis),
        "mean_ms": statistics.fmean(millis),
    }


def evaluate(sent: dict[str, Sent], receiver: Receiver, duration: float) -> dict[str, Any]:
    accepted = {k for k, s in sent.items() if s.status == 200}
    statuses = Counter(str(s.status) for s in sent.values() if s.status not in (200, None))
    errors = Counter(s.error for s in sent.values() if s.error)
    received = {k for k in receiver.arrivals if k in sent}
    lost = accepted - received
    answered_twice = sum(len(receiver.arrivals[k]) - 1 for k in received)
    delivered_twice = sum(c - 1 for c in receiver.keys.values() if c > 1)
    latency = [receiver.arrivals[k][0] - sent[k].started for k in accepted & received]
    from_schedule = [receiver.arrivals[k][0] - sent[k].due for k in accepted & received]
    ack = [s.acked - s.started for s in sent.values() if s.status == 200]
    lag = [s.started - s.due for s in sent.values()]
    first = min(s.started for s in sent.values())
    last = max(s.started for s in sent.values())
    return {
        "_lost_ids": lost,  # taken out before the report; for the database's account of them
        "sent": len(sent),
        "accepted": len(accepted),
        "received": len(received),
        "lost": len(lost),
        "lost_examples": sorted(lost)[:5],
        "duplicated": answered_twice + delivered_twice,
        "answered_twice": answered_twice,
        "delivered_twice": delivered_twice,
        "received_without_a_sent_message": len(set(receiver.arrivals) - set(sent)),
        "bad_signatures": receiver.bad_signatures,
        "non_200": dict(statuses),
        "errors": dict(errors),
        "offered_rate": len(sent) / max(last - first, 1e-9) if len(sent) > 1 else math.nan,
        "duration_s": duration,
        "reply_latency": ms_stats(latency),
        "reply_latency_from_schedule": ms_stats(from_schedule),
        "ack_latency": ms_stats(ack),
        "schedule_lag": ms_stats(lag),
    }


async def run_phase(
    server: Server,
    receiver: Receiver,
    *,
    secret: str,
    prefix: str,
    rate: float,
    duration: float,
    grace: float,
    warmup: int = WARMUP_MESSAGES,
    question: Callable[[int], str] = fixed_question,
) -> dict[str, Any]:
    url = f"{server.base}{PATH}"
    receiver.keys.clear()  # reply ids are per server: the relay's and civicdesk's overlap
    connector = aiohttp.TCPConnector(limit=CLIENT_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm-up: a few messages through the whole path (connections, caches, first queries).
        warm = await open_loop(
            session,
            url,
            secret,
            prefix=f"w{prefix}",
            rate=min(rate, 50),
            count=warmup,
            question=question,
        )
        await wait_for_replies(receiver, {k for k, s in warm.items() if s.status == 200}, grace)
        server_cpu, machine_cpu = server.cpu_seconds(), machine_cpu_seconds()
        own_cpu = own_cpu_seconds()
        started = time.monotonic()
        sent = await open_loop(
            session,
            url,
            secret,
            prefix=prefix,
            rate=rate,
            count=round(rate * duration),
            question=question,
        )
        sending = time.monotonic() - started
        accepted = {k for k, s in sent.items() if s.status == 200}
        waited = await wait_for_replies(receiver, accepted, grace)
        wall = time.monotonic() - started
        server_cpu = server.cpu_seconds() - server_cpu
        machine_cpu = machine_cpu_seconds() - machine_cpu
        own_cpu = own_cpu_seconds() - own_cpu
    result = evaluate(sent, receiver, sending)
    result["waited_after_last_send_s"] = round(waited, 2)
    others = machine_cpu - server_cpu - own_cpu
    result["cpu"] = {
        "wall_s": round(wall, 2),
        "server_cores": round(server_cpu / wall, 2),
        "generator_and_receiver_cores": round(own_cpu / wall, 2),
        "everything_else_cores": round(max(0.0, others) / wall, 2),
    }
    return result


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def db_states(database: Path) -> dict[str, dict[str, int]]:
    states: dict[str, dict[str, int]] = {}
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        for table in ("inbox", "outbox"):
            rows = db.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall()
            states[table] = {status: int(count) for status, count in rows}
    return states


def account_for_lost(database: Path, lost: set[str], receiver: Receiver) -> dict[str, int]:
    """Where the messages without a reply are, read after the graceful stop: late ones are
    still queued (inbox, or a reply in the outbox) or arrived after the count (the stop lets
    deliveries in flight finish); gone ones were acknowledged but never stored, which a durable
    inbox must never do."""
    where: Counter[str] = Counter()
    if not lost:
        return {}
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        rows = db.execute(
            "SELECT i.platform_id, i.status, o.status FROM inbox i "
            "LEFT JOIN outbox o ON o.inbox_id = i.id WHERE i.channel = ?",
            (CHANNEL,),
        ).fetchall()
    state = {key: (inbox, outbox) for key, inbox, outbox in rows if key in lost}
    for key in lost:
        if key not in state:
            where["gone (acknowledged, not in the inbox)"] += 1
        elif key in receiver.arrivals:
            where["late: reply arrived after the grace period"] += 1
        elif state[key][1] is None:
            where[f"late: inbox {state[key][0]}"] += 1
        else:
            where[f"late: reply {state[key][1]} in the outbox, never received"] += 1
    return dict(where)


async def benchmark(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/replies", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    outbound = f"http://127.0.0.1:{receiver_port}/replies"
    phases: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    try:
        relay_port = free_port()
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--role",
            "relay",
            "--port",
            str(relay_port),
            "--outbound",
            outbound,
        ]
        relay = await loop.run_in_executor(
            None,
            lambda: start_server(
                "relay",
                command,
                port=relay_port,
                workdir=workdir,
                env={**os.environ, "BENCH_RELAY_SECRET": secret},
            ),
        )
        try:
            phases["bare_relay"] = await run_phase(
                relay,
                receiver,
                secret=secret,
                prefix="r",
                rate=args.rate,
                duration=args.duration,
                grace=args.grace,
            )
        finally:
            await loop.run_in_executor(None, relay.stop)
        progress(args, "civicdesk serve on SQLite")
        database = workdir / "end_to_end.db"
        port = free_port()
        env = clean_environment(
            CIVICDESK_KNOWLEDGE=str(KNOWLEDGE),
            CIVICDESK_CHANNELS=CHANNEL,
            CIVICDESK_WEBHOOK_SECRET=secret,
            CIVICDESK_WEBHOOK_OUTBOUND_URL=outbound,
            CIVICDESK_WEBHOOK_RATE="0",
            DATABASE_URL=f"sqlite+aiosqlite:///{database}",
            CIVICDESK_HOST="127.0.0.1",
            CIVICDESK_PORT=str(port),
            CIVICDESK_SEMANTIC="off",  # the lexical matcher; --compare-semantic measures both
        )
        server = await loop.run_in_executor(
            None, lambda: start_civicdesk(workdir, env, port, workers=args.workers)
        )
        try:
            phases["civicdesk"] = await run_phase(
                server,
                receiver,
                secret=secret,
                prefix="m",
                rate=args.rate,
                duration=args.duration,
                grace=args.grace,
            )
        finally:
            exit_code = await loop.run_in_executor(None, server.stop)
        civic = phases["civicdesk"]
        civic["server_exit_code"] = exit_code
        civic["database_after_stop"] = db_states(database)
        civic["lost_where"] = account_for_lost(database, civic["_lost_ids"], receiver)
        if exit_code not in (0, None):
            print(server.log_tail(40), file=sys.stderr)
    finally:
        await runner.cleanup()
    for phase in phases.values():
        phase.pop("_lost_ids", None)
    return phases


# ------------------------------------------------------------- capacity, semantic off and on

SEARCH_START_RATE = 10.0
SEARCH_MAX_RATE = 640.0
SEARCH_STEP_S = 4.0  # messages sent per step: rate x this, and at least SEARCH_STEP_MESSAGES
SEARCH_STEP_MESSAGES = 100  # so that a p99 is not simply the maximum of a few dozen
SEARCH_GRACE_S = 2.0  # a reply later than this fails the step's p99 anyway
SEARCH_DRAIN_S = 30.0  # after a failed step, the backlog must clear before the next one
SEARCH_BUDGET_S = 150.0  # per configuration, start-up excluded
SEARCH_PRECISION = 1.1  # bisect until the failing rate is within 10 % of the passing one
SEMANTIC_SETTINGS = ("off", "on")


def step_passed(result: dict[str, Any]) -> bool:
    return bool(
        result["lost"] == 0
        and result["accepted"] == result["sent"]
        and result["duplicated"] == 0
        and result["reply_latency"]["p99_ms"] <= P99_LIMIT_MS
    )


def next_rate(passed: float | None, failed: float | None, maximum: float) -> float | None:
    """Double while every step passes, then bisect between the best pass and the lowest
    failure; None when the search is done."""
    if failed is None:
        assert passed is not None
        return None if passed >= maximum else min(passed * 2, maximum)
    if passed is None:
        low = failed / 2
        return None if low < 1 else low
    if failed / passed <= SEARCH_PRECISION:
        return None
    middle = float(round((passed + failed) / 2))
    return None if middle in (passed, failed) else middle


def matcher_of(server: Server) -> str:
    with urllib.request.urlopen(server.base + "/readyz", timeout=5) as answer:
        ready = json.loads(answer.read())
    return str(ready.get("knowledge", {}).get("matcher", "?"))


async def search_capacity(
    args: argparse.Namespace,
    workdir: Path,
    *,
    semantic: str,
    receiver: Receiver,
    secret: str,
    outbound: str,
    stream: QuestionStream,
) -> dict[str, Any]:
    """The highest rate at which one `civicdesk serve` with CIVICDESK_SEMANTIC=`semantic`
    answers every message with p99 <= 100 ms: a doubling, then bisecting, search of short
    open-loop steps against the same server, within a time budget."""
    loop = asyncio.get_running_loop()
    database = workdir / f"capacity-{semantic}.db"
    port = free_port()
    env = clean_environment(
        CIVICDESK_KNOWLEDGE=str(KNOWLEDGE),
        CIVICDESK_CHANNELS=CHANNEL,
        CIVICDESK_WEBHOOK_SECRET=secret,
        CIVICDESK_WEBHOOK_OUTBOUND_URL=outbound,
        CIVICDESK_WEBHOOK_RATE="0",
        CIVICDESK_SEMANTIC=semantic,
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        CIVICDESK_HOST="127.0.0.1",
        CIVICDESK_PORT=str(port),
    )
    started = time.monotonic()
    server = await loop.run_in_executor(
        None, lambda: start_civicdesk(workdir, env, port, workers=args.workers)
    )
    startup = time.monotonic() - started
    stream.restart()
    steps: list[dict[str, Any]] = []
    passed: float | None = None
    failed: float | None = None
    stopped = "search converged"
    matcher = "?"
    passes: set[float] = set()
    confirming = False
    confirmed: bool | None = None
    try:
        matcher = await loop.run_in_executor(None, matcher_of, server)
        progress(args, f"CIVICDESK_SEMANTIC={semantic}: {matcher}, ready in {startup:.1f} s")
        rate: float | None = args.search_start
        deadline = time.monotonic() + args.search_budget
        while rate is not None:
            if time.monotonic() > deadline:
                stopped = f"time budget ({args.search_budget:g} s) spent"
                break
            result = await run_phase(
                server,
                receiver,
                secret=secret,
                prefix=f"{semantic}{len(steps)}-",
                rate=rate,
                duration=max(args.step_duration, SEARCH_STEP_MESSAGES / rate),
                grace=SEARCH_GRACE_S,
                warmup=WARMUP_MESSAGES if not steps else 0,
                question=lambda _n: stream.next(),
            )
            ok = step_passed(result)
            late = result.pop("_lost_ids")
            result["rate"] = rate
            result["passed"] = ok
            steps.append(result)
            progress(
                args,
                f"  {rate:g}/s: p99 {result['reply_latency']['p99_ms']:.1f} ms, lost "
                f"{result['lost']} -> {'pass' if ok else 'fail'}",
            )
            if confirming:
                result["confirmation"] = True
                confirmed = True if ok else None  # a failure: the best rate is another one
            if ok:
                passes.add(rate)
            else:
                # A failed repeat of the best rate makes it a failure: search below it again.
                passes.discard(rate)
                failed = rate if failed is None else min(failed, rate)
            passed = max(passes, default=None)
            if not ok:
                # The next step must not inherit this one's queue.
                await wait_for_replies(receiver, late, SEARCH_DRAIN_S)
                if not late <= receiver.arrivals.keys():
                    stopped = f"backlog not cleared {SEARCH_DRAIN_S:g} s after a failed step"
                    break
            if confirming and ok:
                break
            confirming = False
            rate = next_rate(passed, failed, args.search_max)
            if rate is None and passed is not None:
                # One more step at the best rate: a pass that holds twice, not a lucky one.
                confirming, rate = True, passed
        if failed is None and passed is not None and passed >= args.search_max:
            stopped = f"reached the highest rate tried ({args.search_max:g}/s)"
    finally:
        exit_code = await loop.run_in_executor(None, server.stop)
    if exit_code not in (0, None):
        print(server.log_tail(40), file=sys.stderr)
    return {
        "semantic": semantic,
        "matcher": matcher,
        "startup_s": round(startup, 1),
        "highest_passing_rate": passed,
        "lowest_failing_rate": failed,
        "confirmed": confirmed,
        "stopped": stopped,
        "steps": steps,
        "questions": {
            "sent": stream.sent,
            "distinct": len(stream.seen),
            "repeated_share": stream.repeats / max(stream.sent, 1),
        },
        "server_exit_code": exit_code,
        "database_after_stop": db_states(database),
    }


async def compare_semantic(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/replies", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    outbound = f"http://127.0.0.1:{receiver_port}/replies"
    stream = QuestionStream(KNOWLEDGE, seed=args.seed)
    searches: dict[str, Any] = {}
    try:
        for semantic in SEMANTIC_SETTINGS:
            searches[semantic] = await search_capacity(
                args,
                workdir,
                semantic=semantic,
                receiver=receiver,
                secret=secret,
                outbound=outbound,
                stream=stream,
            )
            if "load_between" not in searches:
                searches["load_between"] = load_average()
    finally:
        await runner.cleanup()
    searches["question_mix"] = stream.sample_shares()
    return searches


def print_capacity(report: dict[str, Any]) -> None:
    meta = report["meta"]
    load = meta["load_average_1min"]
    code = meta["code"]
    print(
        f"search:    highest rate with p99 POST-to-reply <= {P99_LIMIT_MS:g} ms and 0 lost; "
        f"from {meta['search_start']:g}/s doubling (max {meta['search_max']:g}/s), then "
        f"bisecting; {meta['step_duration_s']:g} s a step, {SEARCH_GRACE_S:g} s grace; one "
        "civicdesk serve per setting, SQLite, sample FAQ, CIVICDESK_WEBHOOK_RATE=0"
    )
    print(f"machine:   {meta['platform']}, python {meta['python']}, {meta['cpus']} CPUs")
    print(
        f"load avg:  1-min load average {load['start']:.2f} at start, {load['middle']:.2f} "
        f"between the two searches, {load['end']:.2f} at end"
    )
    print(
        f"code:      git {code['git_head']}, uncommitted changes in bot/ or adapters/: "
        f"{code['uncommitted_changes_in_bot_adapters']}"
    )
    print(f"questions: {report['question_mix']}")
    print()
    print(
        f"{'semantic':<10}{'rate':>6}{'sent':>6}{'lost':>6}{'dup':>5}{'p50_ms':>8}"
        f"{'p99_ms':>8}{'max_ms':>8}{'lag_p99':>9}{'server':>8}{'gen':>6}{'others':>8}  result"
    )
    for semantic in SEMANTIC_SETTINGS:
        for step in report[semantic]["steps"]:
            r, lag, cpu = step["reply_latency"], step["schedule_lag"], step["cpu"]
            print(
                f"{semantic:<10}{step['rate']:>6g}{step['sent']:>6}{step['lost']:>6}"
                f"{step['duplicated']:>5}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.1f}"
                f"{lag['p99_ms']:>9.1f}{cpu['server_cores']:>8.2f}"
                f"{cpu['generator_and_receiver_cores']:>6.2f}{cpu['everything_else_cores']:>8.2f}"
                f"  {'pass' if step['passed'] else 'FAIL'}"
                f"{' (the best rate again)' if step.get('confirmation') else ''}"
            )
    print(
        "(rate: messages/s offered; p50/p99/max: POST started -> reply received; lag: send "
        "start behind schedule; CPU cores busy: server, gen = generator and receiver, others)"
    )
    print()
    print(f"{'CIVICDESK_SEMANTIC':<20}{'matcher':<9}{'highest passing':>16}{'again':>7}"
          f"{'lowest failing':>16}{'questions (distinct)':>22}  search ended")  # fmt: skip
    again = {True: "pass", False: "FAIL", None: "-"}
    for semantic in SEMANTIC_SETTINGS:
        s = report[semantic]
        best = s["highest_passing_rate"]
        worst = s["lowest_failing_rate"]
        questions = f"{s['questions']['sent']} ({s['questions']['distinct']})"
        print(
            f"{semantic:<20}{s['matcher']:<9}{(f'{best:g}/s' if best else 'none'):>16}"
            f"{again[s['confirmed']]:>7}{(f'{worst:g}/s' if worst else '-'):>16}"
            f"{questions:>22}  {s['stopped']}"
        )
    ratio = report["ratio_on_to_off"]
    print(
        "ratio:     semantic on / off = "
        + (f"{ratio:.2f}" if ratio is not None else "n/a (a search found no passing rate)")
    )
    for semantic in SEMANTIC_SETTINGS:
        s = report[semantic]
        print(
            f"database:  {semantic}: inbox {s['database_after_stop'].get('inbox', {})}, outbox "
            f"{s['database_after_stop'].get('outbox', {})} (server exit code "
            f"{s['server_exit_code']}, ready {s['startup_s']:g} s after start)"
        )
    print(f"total run time: {meta['total_s']:.1f} s")


def run_compare_semantic(args: argparse.Namespace) -> int:
    args.started = time.monotonic()
    load_start = load_average()
    progress(args, "capacity search, CIVICDESK_SEMANTIC off then on")
    with tempfile.TemporaryDirectory(prefix="civicdesk-e2e-") as tmp:
        searches = asyncio.run(compare_semantic(args, Path(tmp)))
    off, on = searches["off"], searches["on"]
    best_off, best_on = off["highest_passing_rate"], on["highest_passing_rate"]
    report = {
        "meta": {
            "search_start": args.search_start,
            "search_max": args.search_max,
            "search_budget_s": args.search_budget,
            "step_duration_s": args.step_duration,
            "grace_s": SEARCH_GRACE_S,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "code": code_version(),
            "load_average_1min": {
                "start": load_start,
                "middle": searches.pop("load_between", None),
                "end": load_average(),
            },
            "total_s": time.monotonic() - args.started,
        },
        **searches,
        "ratio_on_to_off": best_on / best_off if best_off and best_on else None,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print_capacity(report)
    dup = off["steps"] + on["steps"]
    return 1 if any(step["duplicated"] for step in dup) else 0


# --------------------------------------------------------------------------- report


def progress(args: argparse.Namespace, message: str) -> None:
    print(f"[{time.monotonic() - args.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def verdict(civic: dict[str, Any]) -> dict[str, Any]:
    p99 = civic["reply_latency"]["p99_ms"]
    gone = sum(n for where, n in civic.get("lost_where", {}).items() if where.startswith("gone"))
    return {
        "lost_ok": civic["lost"] == 0 and civic["accepted"] == civic["sent"],
        "duplicated_ok": civic["duplicated"] == 0,
        "p99_ok": p99 <= P99_LIMIT_MS,
        "p99_limit_ms": P99_LIMIT_MS,
        # Not a matter of speed: a reply twice, or a 200 for a message not stored, is a bug.
        "acknowledged_but_gone": gone,
        "correct": civic["duplicated"] == 0 and gone == 0,
    }


def print_report(report: dict[str, Any]) -> None:
    meta = report["meta"]
    print(
        f"load:      {meta['rate']:g} messages/s for {meta['duration_s']:g} s per phase, "
        f"open loop, {meta['grace_s']:g} s grace for the last replies"
    )
    print(f"machine:   {meta['platform']}, python {meta['python']}, {meta['cpus']} CPUs")
    load = meta["load_average_1min"]
    print(
        f"load avg:  1-min load average {load['start']:.2f} at start, {load['end']:.2f} at end "
        "(other people's tests run on this machine too; see 'others' below)"
    )
    code = meta["code"]
    print(
        f"code:      git {code['git_head']}, uncommitted changes in bot/ or adapters/: "
        f"{code['uncommitted_changes_in_bot_adapters']}, sha1 of their .py files "
        f"{code['bot_adapters_sha1']}"
    )
    processes = (
        "civicdesk serve"
        if meta["workers"] == "in-process"
        else "civicdesk serve --no-workers + civicdesk work"
    )
    print(
        f"civicdesk: {processes}, SQLite, webhook channel, CIVICDESK_WEBHOOK_RATE=0, sample "
        "FAQ; receiver and generator in this process"
    )
    print()
    print(
        f"{'phase':<11}{'sent':>7}{'200':>7}{'recvd':>7}{'lost':>6}{'dup':>5}"
        f"{'p50_ms':>8}{'p99_ms':>8}{'max_ms':>8}{'ack_p50':>9}{'ack_p99':>9}"
        f"{'lag_p99':>9}{'rate':>7}{'server':>8}{'gen':>6}{'others':>8}"
    )
    for name in ("bare_relay", "civicdesk"):
        p = report["phases"][name]
        r, a, lag = p["reply_latency"], p["ack_latency"], p["schedule_lag"]
        print(
            f"{name:<11}{p['sent']:>7}{p['accepted']:>7}{p['received']:>7}{p['lost']:>6}"
            f"{p['duplicated']:>5}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.1f}"
            f"{a['p50_ms']:>9.1f}{a['p99_ms']:>9.1f}{lag['p99_ms']:>9.1f}"
            f"{p['offered_rate']:>7.0f}{p['cpu']['server_cores']:>8.2f}"
            f"{p['cpu']['generator_and_receiver_cores']:>6.2f}"
            f"{p['cpu']['everything_else_cores']:>8.2f}"
        )
    print(
        "(p50/p99/max: POST started -> reply received; ack: POST -> 200; lag: send start "
        "behind schedule; rate: messages/s offered; CPU cores busy: server, gen = generator and "
        "receiver, others = the rest of the machine)"
    )
    for name in ("bare_relay", "civicdesk"):
        p = report["phases"][name]
        if p["non_200"] or p["errors"] or p["bad_signatures"] or p["lost"]:
            print(
                f"  {name}: non-200 {p['non_200']}, errors {p['errors']}, bad signatures "
                f"{p['bad_signatures']}, lost e.g. {p['lost_examples']}"
            )
        if p["schedule_lag"]["p99_ms"] > LAG_WARNING_MS:
            print(
                f"  {name}: the generator fell behind its schedule (lag p99 "
                f"{p['schedule_lag']['p99_ms']:.1f} ms): the machine is too busy for this rate"
            )
    civic = report["phases"]["civicdesk"]
    ratio = report["ratio"]
    print()
    print(
        f"baseline:  bare relay p50 {ratio['relay_p50_ms']:.1f} ms, p99 "
        f"{ratio['relay_p99_ms']:.1f} ms (same rate, generator and receiver, this run)"
    )
    print(
        f"ratio:     civicdesk / bare relay = {ratio['p50_ratio']:.1f}x at p50, "
        f"{ratio['p99_ratio']:.1f}x at p99 (+{ratio['p99_added_ms']:.1f} ms)"
    )
    db = civic.get("database_after_stop", {})
    print(
        f"database:  after the graceful stop, inbox {db.get('inbox', {})}, outbox "
        f"{db.get('outbox', {})} (server exit code {civic.get('server_exit_code')})"
    )
    if civic.get("lost_where"):
        print(f"lost:      where they are: {civic['lost_where']}")
    v = report["verdict"]
    print(
        f"verdict:   lost {civic['lost']} ({'PASS' if v['lost_ok'] else 'FAIL'}), duplicated "
        f"{civic['duplicated']} ({'PASS' if v['duplicated_ok'] else 'FAIL'}), p99 "
        f"{civic['reply_latency']['p99_ms']:.1f} ms <= {P99_LIMIT_MS:g} ms "
        f"({'PASS' if v['p99_ok'] else 'FAIL'})"
    )
    print(f"total run time: {meta['total_s']:.1f} s")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, help=f"messages per second ({DEFAULT_RATE:g})")
    parser.add_argument("--duration", type=float, help=f"seconds per phase ({DEFAULT_DURATION:g})")
    parser.add_argument(
        "--grace", type=float, default=DEFAULT_GRACE, help="seconds to wait for the last replies"
    )
    parser.add_argument("--quick", action="store_true", help="50 messages/s for 5 s (CI smoke)")
    parser.add_argument(
        "--workers",
        choices=("in-process", "separate"),
        default="in-process",
        help="civicdesk serve with its workers, or the Procfile's serve --no-workers + work",
    )
    parser.add_argument(
        "--compare-semantic",
        action="store_true",
        help="capacity search: the highest rate with p99 <= 100 ms and 0 lost, for "
        "CIVICDESK_SEMANTIC=off and =on in one run, and their ratio",
    )
    parser.add_argument(
        "--search-start",
        type=float,
        default=SEARCH_START_RATE,
        help=f"first rate of the search ({SEARCH_START_RATE:g}/s)",
    )
    parser.add_argument(
        "--search-max",
        type=float,
        default=SEARCH_MAX_RATE,
        help=f"highest rate tried ({SEARCH_MAX_RATE:g}/s)",
    )
    parser.add_argument(
        "--search-budget",
        type=float,
        default=SEARCH_BUDGET_S,
        help=f"seconds of search per setting, start-up excluded ({SEARCH_BUDGET_S:g})",
    )
    parser.add_argument(
        "--step-duration",
        type=float,
        default=SEARCH_STEP_S,
        help=f"seconds of sending per search step ({SEARCH_STEP_S:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="question order of the search (0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--outbound", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate is None:
        args.rate = QUICK_RATE if args.quick else DEFAULT_RATE
    if args.duration is None:
        args.duration = QUICK_DURATION if args.quick else DEFAULT_DURATION
    if args.rate <= 0 or args.duration <= 0 or args.grace < 0:
        parser.error("--rate and --duration must be above 0, --grace at least 0")
    if args.compare_semantic and args.quick:
        parser.error("--compare-semantic searches for a rate; --quick is the fixed-rate smoke")
    if not 1 <= args.search_start <= args.search_max or args.step_duration <= 0:
        parser.error("--search-start from 1 to --search-max, --step-duration above 0")
    if not 0 < args.search_budget <= 3600:
        parser.error("--search-budget from 0 to 3600 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "relay":
        secret = os.environ["BENCH_RELAY_SECRET"]
        app = relay_app(args.outbound, secret)
        web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)
        return 0
    if args.compare_semantic:
        return run_compare_semantic(args)
    args.started = time.monotonic()
    load_start = load_average()
    progress(args, f"bare relay, {args.rate:g} messages/s for {args.duration:g} s")
    with tempfile.TemporaryDirectory(prefix="civicdesk-e2e-") as tmp:
        phases = asyncio.run(benchmark(args, Path(tmp)))
    relay, civic = phases["bare_relay"], phases["civicdesk"]
    relay_lat, civic_lat = relay["reply_latency"], civic["reply_latency"]
    report = {
        "meta": {
            "rate": args.rate,
            "workers": args.workers,
            "duration_s": args.duration,
            "grace_s": args.grace,
            "warmup_messages": WARMUP_MESSAGES,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "code": code_version(),
            "load_average_1min": {"start": load_start, "end": load_average()},
            "baseline": "bare relay in its own process: parse JSON, answer 200, POST a signed "
            "reply over one shared ClientSession; no verification, storage or matching",
        },
        "phases": phases,
        "ratio": {
            "relay_p50_ms": relay_lat["p50_ms"],
            "relay_p99_ms": relay_lat["p99_ms"],
            "p50_ratio": civic_lat["p50_ms"] / relay_lat["p50_ms"],
            "p99_ratio": civic_lat["p99_ms"] / relay_lat["p99_ms"],
            "p99_added_ms": civic_lat["p99_ms"] - relay_lat["p99_ms"],
        },
        "verdict": verdict(civic),
    }
    report["meta"]["total_s"] = time.monotonic() - args.started
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print_report(report)
    return 0 if report["verdict"]["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
