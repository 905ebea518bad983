"""Faults and abuse against real `civicdesk serve` processes, with figures: one table row each.

Run from the project root:

    .venv/bin/python benchmarks/faults.py [--quick] [--only NAME[,NAME...]]

Everything is on 127.0.0.1 and bounded in time and count. The scenarios:

- `kill9_sqlite`: a burst of signed webhook events; `kill -9` of the server a third of the way
  in, started again on the same SQLite file; the platform re-sends what got no answer.
- `pg_restart_2proc`: two server processes on one PostgreSQL database, the events spread over
  both; PostgreSQL restarted (`pg_ctl restart -m fast`) mid-burst.
- `pg_down_10s`: the database stopped for 10 s mid-burst, then started again.
- `receiver_hangs`: the webhook channel's receiver accepts and never answers for a while, then
  recovers; meanwhile a web chat visitor asks questions, and their p99 latency (question posted
  to answer shown by the long poll) is printed beside the row (target < 1 s).
- `disk_full`: the SQLite file on a small tmpfs, filled up mid-burst, then freed (needs `mount`;
  without it the row says so).
- `slow_clients`: hundreds of connections sending a request head a byte at a time, the server
  limited to 1,024 file descriptors, while a platform sends its events.
- `poison`: signed events with an unsigned web chat message holding a lone surrogate after every
  ten; the valid ones refused must be 0.

The PostgreSQL scenarios run their own cluster in a temporary folder (initdb and pg_ctl from
/usr/lib/postgresql/*/bin, as the postgres user when run as root): the machine's shared
PostgreSQL is never restarted.

Columns: sent (distinct events), acknowledged (200 in the end, the platform retrying 5xx and
network errors as platforms do), answered (a reply accepted by the receiver), lost (acknowledged
and never answered), duplicated (messages whose reply arrived under two different keys: a
message handled twice), recovery (seconds from the end of the fault to the first request served
again, or for `receiver_hangs` to the last reply delivered). Exit status 1 when a row has lost
or duplicated messages, or a valid message was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_support import (  # noqa: E402
    Receiver,
    ServeProcess,
    burst,
    civicdesk,
    serve_environment,
)
from web_support import event, signed_post  # noqa: E402

HEADER = ("scenario", "sent", "acked", "answered", "lost", "dup", "recovery_s", "notes")


@dataclass
class Row:
    scenario: str
    sent: int = 0
    acknowledged: int = 0
    answered: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery: float | None = None
    notes: str = ""
    failed: bool = False  # a correctness failure (lost, duplicated, valid refused)

    def cells(self) -> list[str]:
        recovery = "-" if self.recovery is None else f"{self.recovery:.1f}"
        return [
            self.scenario,
            str(self.sent),
            str(self.acknowledged),
            str(self.answered),
            str(self.lost),
            str(self.duplicated),
            recovery,
            self.notes,
        ]


# --- the platform: sends events, retrying what got no 200 ----------------------------------------


@dataclass
class Sender:
    """A platform: each event is sent until a 200 (network errors, 5xx and 429 are retried, as
    platforms retry them); any other status is a refusal and ends it."""

    concurrency: int = 20
    retry_pause: float = 0.2
    give_up_after: float = 90.0
    accepted: dict[str, float] = field(default_factory=dict)  # event id -> time of its 200
    refused: dict[str, int] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    network_errors: int = 0
    on_accepted: Callable[[int], None] = lambda count: None

    async def send(
        self,
        targets: Sequence[str],
        events: Sequence[tuple[str, bytes]],
        *,
        path: str = "/webhooks/webhook",
        headers: Callable[[bytes], dict[str, str]] = signed_post,
        pace: float = 0.0,
    ) -> None:
        queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue()
        for number, (event_id, body) in enumerate(events):
            queue.put_nowait((number, event_id, body))
        timeout = aiohttp.ClientTimeout(total=15)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def worker() -> None:
                while not queue.empty():
                    number, event_id, body = queue.get_nowait()
                    url = f"{targets[number % len(targets)]}{path}"
                    await self._deliver(session, url, event_id, body, headers)
                    if pace:
                        await asyncio.sleep(pace)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        url: str,
        event_id: str,
        body: bytes,
        headers: Callable[[bytes], dict[str, str]],
    ) -> None:
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            try:
                async with session.post(url, data=body, headers=headers(body)) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                self.network_errors += 1
                await asyncio.sleep(self.retry_pause)
                continue
            self.statuses[status] += 1
            if status == 200:
                self.accepted[event_id] = time.monotonic()
                self.on_accepted(len(self.accepted))
                return
            if status >= 500 or status == 429:
                await asyncio.sleep(self.retry_pause)
                continue
            self.refused[event_id] = status
            return


def tally(row: Row, sender: Sender, receiver: Receiver, events: Sequence[tuple[str, bytes]]) -> Row:
    """Fill the counts of `row` from what the platform and the receiver saw."""
    ours = {event_id for event_id, _ in events}
    accepted = set(sender.accepted) & ours
    answered = receiver.answered_messages() & ours
    keys: dict[str, set[str]] = defaultdict(set)
    for delivery in receiver.accepted():
        if delivery.reply_to in ours:
            keys[delivery.reply_to].add(delivery.key)
    row.sent = len(events)
    row.acknowledged = len(accepted)
    row.answered = len(accepted & answered)
    row.lost = len(accepted - answered)
    row.duplicated = sum(1 for k in keys.values() if len(k) > 1)
    if row.lost or row.duplicated:
        row.failed = True
    return row


async def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def first_served(url: str, timeout: float, path: str = "/readyz") -> float | None:
    """Seconds until `url + path` answers 200, or None."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() - started < timeout:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with session.get(url + path) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.05)
    return None


def quick_env(**extra: str) -> dict[str, str]:
    return {
        "CIVICDESK_POLL_INTERVAL": "0.2",
        "CIVICDESK_RATE_PER_SECOND": "0",
        "CIVICDESK_BACKOFF_BASE": "0.2",
        "CIVICDESK_BACKOFF_CAP": "1",
        "CIVICDESK_MAX_ATTEMPTS": "50",
        **extra,
    }


# --- kill -9 ---------------------------------------------------------------------------------


async def kill9_sqlite(work: Path, count: int) -> Row:
    receiver = Receiver(delay=(0.02, 0.1))
    outbound = await receiver.start()
    environ = serve_environment(
        f"sqlite+aiosqlite:///{work / 'kill.db'}",
        outbound,
        **quick_env(CIVICDESK_LEASE_SECONDS="25"),
    )
    server = ServeProcess(environ, work, name="kill9")
    killed_at: list[float] = []

    def kill(acknowledged: int) -> None:
        if acknowledged >= count // 3 and not killed_at:
            server.kill()
            killed_at.append(time.monotonic())

    sender = Sender(on_accepted=kill)
    events = burst(count, "kill")
    row = Row("kill9_sqlite")
    try:
        await server.start()
        sending = asyncio.create_task(sender.send([server.url], events))
        await wait_for(lambda: bool(killed_at), 60)
        await server.wait()
        await server.start()
        row.recovery = time.monotonic() - killed_at[0]
        await sending
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(sender.accepted), 60, "replies"
        )
        row.notes = (
            f"killed after {count // 3} acks; recovery = kill to serving again; every reply out "
            f"{time.monotonic() - killed_at[0]:.1f} s after the kill"
        )
        await asyncio.sleep(0.5)
    except AssertionError as exc:
        row.notes = f"incomplete: {exc}"
    finally:
        await server.stop()
        await receiver.close()
    return tally(row, sender, receiver, events)


# --- PostgreSQL in a folder of its own -------------------------------------------------------


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1, in a temporary folder."""

    def __init__(self, folder: Path, port: int) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not versions:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb")
        self.bin = Path(versions[-1]).parent
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.log = folder / "postgres.log"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/civicdesk"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "civicdesk")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                  options, "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                  options, "-m", "fast", "-w", "restart")  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


async def _postgres_burst(
    name: str,
    servers: Sequence[ServeProcess],
    receiver: Receiver,
    count: int,
    fault: Callable[[], Awaitable[None]],
) -> Row:
    """A burst spread over `servers`, `fault()` a third of the way in."""
    third = asyncio.Event()
    sender = Sender(on_accepted=lambda n: third.set() if n >= count // 3 else None)
    events = burst(count, name)
    row = Row(name)
    try:
        sending = asyncio.create_task(sender.send([s.url for s in servers], events))
        await third.wait()
        await fault()
        ended = time.monotonic()
        # From the end of the fault until both processes are ready again.
        served = await asyncio.gather(*(first_served(s.url, 60) for s in servers))
        if all(s is not None for s in served):
            row.recovery = max(s for s in served if s is not None)
        await sending
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(sender.accepted), 90, "replies"
        )
        row.notes = (
            f"2 processes; 503s answered meanwhile: {sender.statuses.get(503, 0)}; every reply "
            f"out {time.monotonic() - ended:.1f} s after the fault (claims cut by it wait for "
            "their lease)"
        )
    except AssertionError as exc:
        row.notes = f"incomplete: {exc}"
    return tally(row, sender, receiver, events)


async def postgres_rows(work: Path, count: int, down_seconds: float) -> list[Row]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="civicdesk-faults-pg-")), _free_port())
    receiver = Receiver(delay=(0.0, 0.02))
    outbound = await receiver.start()
    servers: list[ServeProcess] = []
    try:
        await asyncio.to_thread(cluster.init)
        environ = serve_environment(
            cluster.url, outbound, **quick_env(CIVICDESK_LEASE_SECONDS="21")
        )
        status, _, err = await civicdesk(environ, work, "db", "upgrade")
        if status != 0:
            raise RuntimeError(f"civicdesk db upgrade failed: {err.strip()[-300:]}")
        servers = [ServeProcess(environ, work, name=f"pg-{n}") for n in range(2)]
        await asyncio.gather(*(server.start() for server in servers))

        async def restart() -> None:
            await asyncio.to_thread(cluster.restart)

        async def down() -> None:
            await asyncio.to_thread(cluster.stop)
            await asyncio.sleep(down_seconds)
            await asyncio.to_thread(cluster.start)

        restarted = await _postgres_burst("pg_restart_2proc", servers, receiver, count, restart)
        stopped = await _postgres_burst(
            f"pg_down_{down_seconds:g}s", servers, receiver, count, down
        )
        return [restarted, stopped]
    finally:
        for server in servers:
            await server.stop()
        await receiver.close()
        await asyncio.to_thread(cluster.destroy)


def _free_port() -> int:
    from serve_support import free_port  # noqa: PLC0415

    return free_port()


# --- a receiver that hangs, and the web chat meanwhile -----------------------------------------


class HangingReceiver(Receiver):
    """Accepts deliveries and answers none while `hanging` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def _handle(self, request: Any) -> Any:
        await self.gate.wait()
        return await super()._handle(request)


async def ask_web_chat(session: aiohttp.ClientSession, url: str, n: int) -> float:
    """Post a question to the web chat, long-poll its answer; seconds from post to answer."""
    conversation = f"visitor-{secrets.token_hex(6)}"
    message = f"m-{n:06d}-{secrets.token_hex(4)}"
    body = json.dumps({"id": message, "conversation": conversation, "text": "诉讼费怎么交"})
    started = time.monotonic()
    async with session.post(
        f"{url}/webhooks/webchat", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"web chat post answered {response.status}")
    after = 0
    while time.monotonic() - started < 30:
        query = f"conversation={conversation}&after={after}&wait=10"
        async with session.get(f"{url}/chat/api/replies?{query}") as response:
            replies = (await response.json())["replies"]
        if any(reply.get("reply_to") == message for reply in replies):
            return time.monotonic() - started
        if replies:
            after = replies[-1]["seq"]
    raise RuntimeError("no web chat answer within 30 s")


async def receiver_hangs(work: Path, count: int, hang_seconds: float) -> Row:
    receiver = HangingReceiver()
    outbound = await receiver.start()
    environ = serve_environment(
        f"sqlite+aiosqlite:///{work / 'hang.db'}",
        outbound,
        **quick_env(CIVICDESK_CHANNELS="webhook,webchat", CIVICDESK_LEASE_SECONDS="40"),
    )
    server = ServeProcess(environ, work, name="hang")
    sender = Sender()
    events = burst(count, "hang")
    row = Row("receiver_hangs")
    latencies: list[float] = []
    try:
        await server.start()
        receiver.gate.clear()  # from now on the receiver accepts and does not answer
        hang_started = time.monotonic()
        sending = asyncio.create_task(sender.send([server.url], events))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as session:
            await asyncio.sleep(1.0)  # the hanging channel takes every slot it can
            n = 0
            while time.monotonic() - hang_started < hang_seconds:
                latencies.append(await ask_web_chat(session, server.url, n))
                n += 1
                await asyncio.sleep(0.1)
        receiver.gate.set()
        recovered_at = time.monotonic()
        await sending
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(sender.accepted), 60, "replies"
        )
        row.recovery = time.monotonic() - recovered_at
        await asyncio.sleep(0.5)
    except (AssertionError, RuntimeError) as exc:
        row.notes = f"incomplete: {exc}; "
    finally:
        receiver.gate.set()
        await server.stop()
        await receiver.close()
    if latencies:
        p99 = _percentile(latencies, 99)
        row.notes += (
            f"hung {hang_seconds:g} s; web chat meanwhile: {len(latencies)} questions, p50 "
            f"{statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target < 1 s)"
        )
        if p99 >= 1.0:
            row.failed = True
    return tally(row, sender, receiver, events)


def _percentile(values: Sequence[float], percent: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- a full disk -----------------------------------------------------------------------------


async def disk_full(work: Path, count: int) -> Row:
    row = Row("disk_full")
    mount_point = Path(tempfile.mkdtemp(prefix="civicdesk-faults-disk-"))
    # Room for every message several times over: only the filler fills it.
    megabytes = 8 + count // 10
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount_point)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        shutil.rmtree(mount_point, ignore_errors=True)
        row.notes = f"not run: mount is not permitted here ({mounted.stderr.strip()[:80]})"
        return row
    try:
        return await _on_small_disk(row, work, mount_point, count, megabytes)
    finally:  # whatever happened, the mount goes
        subprocess.run(["umount", str(mount_point)], check=False)
        shutil.rmtree(mount_point, ignore_errors=True)


async def _on_small_disk(row: Row, work: Path, mount_point: Path, count: int, size: int) -> Row:
    receiver = Receiver()
    outbound = await receiver.start()
    environ = serve_environment(
        f"sqlite+aiosqlite:///{mount_point / 'full.db'}", outbound, **quick_env()
    )
    server = ServeProcess(environ, work, name="disk")
    sender = Sender(concurrency=5, retry_pause=0.3, give_up_after=60)
    # Long texts (6 KB), so that commits need new blocks of the file system.
    events = [
        (f"disk-{n:05d}", event(f"disk-{n:05d}", "窗户坏了谁来修" * 300, conversation=f"c-{n}"))
        for n in range(count)
    ]
    filler = mount_point / "filler"
    not_ready = False
    try:
        await server.start()
        await sender.send([server.url], events[: count // 3])  # before: all stored
        with contextlib.suppress(OSError), filler.open("wb", buffering=0) as sink:
            while True:  # until "No space left on device"
                sink.write(b"\0" * 65536)
        # The rest arrives on a full disk: 503, and the platform retries.
        sending = asyncio.create_task(sender.send([server.url], events[count // 3 :]))
        await wait_for(lambda: sender.statuses.get(503, 0) > 0, 10)
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/readyz") as r:
            not_ready = r.status == 503
        await asyncio.sleep(2)
        filler.unlink()
        row.recovery = await first_served(server.url, 30)  # from freeing the space
        await sending
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(sender.accepted), 60, "replies"
        )
    except AssertionError as exc:
        row.notes = f"incomplete: {exc}; "
    finally:
        await server.stop()
        await receiver.close()
    row.notes += (
        f"{size} MiB tmpfs filled: {sender.statuses.get(503, 0)} x 503, "
        f"{sender.statuses.get(500, 0)} x 500, /readyz {'503' if not_ready else 'still 200'}"
    )
    if sender.statuses.get(500, 0) or not not_ready:
        row.failed = True
    return tally(row, sender, receiver, events)


# --- slow clients ------------------------------------------------------------------------------


async def slow_clients(work: Path, count: int, connections: int) -> Row:
    receiver = Receiver()
    outbound = await receiver.start()
    environ = serve_environment(f"sqlite+aiosqlite:///{work / 'slow.db'}", outbound, **quick_env())
    server = ServeProcess(environ, work, name="slow")
    sender = Sender(concurrency=10)
    events = burst(count, "slow")
    row = Row("slow_clients")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    probes: list[float] = []
    closed: list[float] = []  # when the server closed each slow connection
    failed_probes = 0
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the server's
        try:
            await server.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        for _ in range(connections):
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"POST /webhooks/webhook HTTP/1.1\r\nHost: x\r\n")
                opened.append((reader, writer))
        started = time.monotonic()

        async def until_closed(reader: asyncio.StreamReader) -> None:
            with contextlib.suppress(Exception):
                await reader.read()
            closed.append(time.monotonic())

        watchers = [asyncio.create_task(until_closed(reader)) for reader, _ in opened]
        sending = asyncio.create_task(sender.send([server.url], events, pace=0.05))

        async def drip() -> None:  # one more header byte each second, never the end
            while len(closed) < len(opened):
                for _, writer in opened:
                    with contextlib.suppress(OSError, RuntimeError):
                        writer.write(b"X")
                await asyncio.sleep(1.0)

        dripping = asyncio.create_task(drip())
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() - started < 30 and (
                not sending.done() or len(closed) < len(opened)
            ):
                probe = time.monotonic()
                failed_probes += 1
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    async with session.get(f"{server.url}/healthz") as response:
                        if response.status == 200:
                            probes.append(time.monotonic() - probe)
                            failed_probes -= 1
                await asyncio.sleep(0.2)
        await sending
        dripping.cancel()
        for watcher in watchers:
            watcher.cancel()
        if closed and len(closed) == len(opened):
            row.recovery = max(closed) - started
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(sender.accepted), 60, "replies"
        )
        await asyncio.sleep(0.5)
    except AssertionError as exc:
        row.notes = f"incomplete: {exc}; "
    finally:
        for _, writer in opened:
            writer.close()
        await server.stop()
        await receiver.close()
    log = server.log_text()
    flood = log.count("Too many open files")
    probe_note = (
        f"/healthz max {max(probes) * 1000:.0f} ms over {len(probes)} probes, "
        f"{failed_probes} failed"
        if probes
        else "no probe answered"
    )
    row.notes += (
        f"{len(opened)} slow connections at 1024 fds, {len(closed)} closed by the server; "
        f"{probe_note}; log {len(log) // 1024} KiB, {flood} 'Too many open files' lines; "
        "recovery = until every slow connection was cut"
    )
    if not probes or failed_probes or len(closed) < len(opened):
        row.failed = True
    return tally(row, sender, receiver, events)


# --- a poison message among valid ones ----------------------------------------------------------


async def poison(work: Path, count: int) -> Row:
    receiver = Receiver()
    outbound = await receiver.start()
    environ = serve_environment(
        f"sqlite+aiosqlite:///{work / 'poison.db'}",
        outbound,
        **quick_env(CIVICDESK_CHANNELS="webhook,webchat"),
    )
    server = ServeProcess(environ, work, name="poison")
    valid = Sender(concurrency=20)
    bad = Sender(concurrency=4)
    events = burst(count, "valid")
    poisons = [
        (
            f"p-{n:06d}",
            # A lone surrogate, written as JSON escapes it: Python's json.loads takes it.
            json.dumps({"id": f"poison-{n:06d}", "conversation": f"page-{n:08d}"})[:-1].encode()
            + b', "text": "a \\ud800 b"}',
        )
        for n in range(max(1, count // 10))
    ]
    row = Row("poison")
    try:
        await server.start()
        await asyncio.gather(
            valid.send([server.url], events),
            bad.send(
                [server.url],
                poisons,
                path="/webhooks/webchat",
                headers=lambda body: {"Content-Type": "application/json"},
                pace=0.05,
            ),
        )
        await receiver.wait_until(
            lambda: receiver.answered_messages() >= set(valid.accepted), 60, "replies"
        )
        await asyncio.sleep(0.5)
    except AssertionError as exc:
        row.notes = f"incomplete: {exc}; "
    finally:
        await server.stop()
        await receiver.close()
    row.notes += (
        f"{len(poisons)} poison messages: {Counter(bad.refused.values())} refused, "
        f"{len(bad.accepted)} accepted; valid refused: {len(valid.refused)} (must be 0)"
    )
    if valid.refused or bad.accepted:
        row.failed = True
    return tally(row, valid, receiver, events)


# --- the table ------------------------------------------------------------------------------------


def render(rows: Sequence[Row]) -> str:
    table = [list(HEADER), *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER) - 1)]
    lines = []
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        lines.append("  ".join([*cells, line[-1]]))
    return "\n".join(lines)


SCENARIOS = ("kill9", "postgres", "hang", "disk", "slow", "poison")


async def main(args: argparse.Namespace) -> int:
    quick = args.quick
    chosen = set(args.only.split(",")) if args.only else set(SCENARIOS)
    rows: list[Row] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="civicdesk-faults-") as folder:
        work = Path(folder)
        steps: dict[str, Callable[[], Awaitable[Row | list[Row]]]] = {
            "kill9": lambda: kill9_sqlite(work, 90 if quick else 600),
            "postgres": lambda: postgres_rows(work, 60 if quick else 400, 10.0),
            "hang": lambda: receiver_hangs(work, 80 if quick else 200, 6.0 if quick else 15.0),
            "disk": lambda: disk_full(work, 60 if quick else 300),
            "slow": lambda: slow_clients(work, 40 if quick else 200, 300 if quick else 1100),
            "poison": lambda: poison(work, 100 if quick else 600),
        }
        # Quick: three lanes at once (most of the kill and database scenarios is waiting for
        # leases to run out); full: one scenario at a time.
        lanes = [["kill9"], ["postgres"], ["hang", "disk", "slow", "poison"]]
        if not quick:
            lanes = [[name for lane in lanes for name in lane]]

        async def lane(names: list[str]) -> list[Row]:
            done: list[Row] = []
            for name in names:
                if name not in chosen:
                    continue
                started = time.monotonic()
                try:
                    result = await steps[name]()
                except Exception as exc:  # a scenario that cannot run says why in its row
                    note = f"failed to run: {type(exc).__name__}: {exc}"[:200]
                    result = Row(name, notes=note, failed=True)
                for row in result if isinstance(result, list) else [result]:
                    done.append(row)
                    print(f"[{time.monotonic() - started:5.1f} s] {row.scenario} done", flush=True)
            return done

        for done in await asyncio.gather(*(lane(names) for names in lanes)):
            rows.extend(done)
    print()
    print(render(rows))
    print(f"\ntotal run time: {time.monotonic() - began:.1f} s ({'quick' if quick else 'full'})")
    bad = [row.scenario for row in rows if row.failed]
    print(
        "verdict: "
        + ("FAIL in " + ", ".join(bad) if bad else "PASS (lost 0, duplicated 0 everywhere)")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller bursts and shorter faults")
    parser.add_argument("--only", help=f"comma-separated scenarios of {', '.join(SCENARIOS)}")
    sys.exit(asyncio.run(main(parser.parse_args())))
