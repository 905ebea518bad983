"""Ingest throughput of the webhook channel (stored before acknowledged) against bare aiohttp.

Run from the project root:

    .venv/bin/python benchmarks/ingest.py [--duration 10] [--connections 64] [--threads 1]
                                          [--generator auto|wrk|python] [--quick] [--json]

Three phases, one after the other, each with only its own server running:

1. **bare, before**: a bare aiohttp handler in its own process (`POST /webhooks/{channel}` reads
   the body and answers `200 {"ok":true}`: no signature check, no parsing, no storage, no access
   log), driven for `--duration` seconds after a short warm-up.
2. **civicdesk**: the real server, `civicdesk serve` as a subprocess on a new SQLite file in a
   temporary directory, with the webhook channel (every request signed, verified, parsed, stored
   with group commit; 200 only after the commit) and its workers answering the stored messages
   at the same time; replies go to a bare local sink (another process), at the channel's default
   rate limit (20 replies/s), as a deployment would have it.
3. **bare, after**: phase 1 again. The baseline is the mean of the two bare phases; their spread
   shows how much the machine changed under the run (other people's tests run here too).

The load generator is `wrk` (Debian's package: `apt-get install -y wrk`), in its own process so
that it never shares an event loop with a server. A bare aiohttp server answers 5,000-7,600
requests per second on one core here; a Python client spends about as much CPU per request as
the server it drives, so on two cores a Python generator would saturate before the baseline does
and squeeze the ratio towards 1. wrk spends about 0.05 ms of CPU per request, most of it the
kernel's TCP work. Every request is signed as the README says (HMAC-SHA256 of
"<timestamp>.<body>", unique `id` per request): the Lua script calls OpenSSL's `HMAC()` through
LuaJIT's FFI (wrk links libcrypto), so nothing is precomputed and the run length is not bounded
by a pool of prepared requests. Without wrk the script falls back to a Python generator (raw
asyncio HTTP/1.1 over keep-alive connections, one process) and says so: the generator holds the
baseline back more than civicdesk, so that ratio flatters civicdesk; use it as a smoke run only.

Durability check: after phase 2 the server is stopped (SIGTERM, graceful) and the SQLite file is
read with `sqlite3`. Every request the generator got a 200 for must be in the inbox. wrk stops
at the deadline without reading the answers of the requests then in flight (their platform would
retry them), so the check is exact with those counted: acknowledged <= stored <= acknowledged +
unanswered, and every stored id is one the generator sent (per wrk thread, a prefix of its id
sequence). The Python generator drains before it stops and compares the sets of ids exactly.

Acceptance (issue 3): civicdesk >= 0.6x the requests/s of the bare handler in the same run.
The verdict lines say PASS or FAIL. Speed does not decide the exit status: it is 0 unless the
durability check failed (1) or the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
CHANNEL = "webhook"
PATH = f"/webhooks/{CHANNEL}"
RATIO_TARGET = 0.6
DEFAULT_DURATION = 10.0
QUICK_DURATION = 3.0
DEFAULT_WARMUP = 2.0
QUICK_WARMUP = 1.0
DEFAULT_CONNECTIONS = 64
WRK_TIMEOUT = "10s"  # wrk's default (2 s) would count slow answers under load as errors
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
RESULT_MARK = "CIVICDESK-BENCH "

# What citizens ask (zh and en), so the workers do their real work on what was stored.
QUESTIONS = (
    "诉讼费怎么交",
    "How do I pay the court fee?",
    "诉讼费要多少钱",
    "法院几点开门",
    "我的案子什么时候开庭",
    "How do I file a case at the court?",
    "交不起诉讼费怎么办？",
    "Where can I park at the court?",
    "怎么申请法律援助",
    "Can I appeal the judgment?",
    "立案需要带什么材料",
    "court fee",
    "谢谢",
    "How long does mediation take?",
)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**settings: str) -> dict[str, str]:
    """This environment without any civicdesk setting of the caller, plus `settings`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CIVICDESK_") and key not in ("DATABASE_URL", "PORT")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def civicdesk_command(*arguments: str) -> list[str]:
    """`civicdesk serve` (or another command) of this virtualenv (the console script beside
    the interpreter)."""
    script = Path(sys.executable).with_name("civicdesk")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    return command + list(arguments or ["serve"])


WORKER_MODES = ("in-process", "separate", "none")


def start_civicdesk(workdir: Path, env: Mapping[str, str], port: int, *, workers: str) -> Server:
    """civicdesk on `port`, its workers by `workers`: "in-process" (`civicdesk serve`, the
    try-it default), "separate" (the Procfile's two process types: `civicdesk serve
    --no-workers` and `civicdesk work` beside it, measured and stopped as one server) or
    "none" (`civicdesk serve --no-workers` alone: the web process's ingest and nothing else)."""
    if workers not in WORKER_MODES:
        raise ValueError(f"workers must be one of {WORKER_MODES}")
    arguments = ("serve",) if workers == "in-process" else ("serve", "--no-workers")
    web = start_server(
        "civicdesk", civicdesk_command(*arguments), port=port, workdir=workdir, env=env,
        ready_path="/readyz",
    )  # fmt: skip
    if workers != "separate":
        return web
    # The web process first: it creates the SQLite file's tables, which the worker then finds.
    worker_port = free_port()
    try:
        worker = start_server(
            "civicdesk-work", civicdesk_command("work", "--port", str(worker_port)),
            port=worker_port, workdir=workdir, env=env, ready_path="/readyz",
        )  # fmt: skip
    except BaseException:
        web.stop()
        raise
    web.partners.append(worker)
    return web


@dataclass
class Server:
    """A server subprocess whose output goes to a log file (a pipe could fill up and stall it)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    partners: list[Server] = field(default_factory=list)  # processes measured and stopped with it

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        own = process_cpu_seconds(self.process.pid)
        return own + sum(partner.cpu_seconds() for partner in self.partners)

    def stop(self) -> int | None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in time; partners after.
        The first non-zero exit code, else this process's."""
        codes = [self._stop_own()] + [partner.stop() for partner in self.partners]
        return next((code for code in codes if code not in (0, None)), codes[0])

    def _stop_own(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        tail = "\n".join(text.splitlines()[-lines:])
        return "\n".join([tail, *(partner.log_tail(lines) for partner in self.partners)])


def start_server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/healthz",
) -> Server:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=workdir,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, log_path, port)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode} at start:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.base + ready_path, timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} not ready after {START_TIMEOUT:g} s:\n{server.log_tail()}")
        time.sleep(0.1)


def helper_command(role: str, port: int, *extra: str) -> list[str]:
    """This script in a helper role (a bare server or sink) in a process of its own."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        role,
        "--port",
        str(port),
        *extra,
    ]


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- machine


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process and all its threads, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds spent by everything on the machine (all cores), from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def code_version() -> dict[str, str | None]:
    """Which code was measured: bot/ changes often, so numbers need the code they came from."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot", "adapters"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, changed = None, ""
    digest = hashlib.sha1()
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/*.py")]):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "git_head": head,
        "uncommitted_changes_in_bot_adapters": "yes" if changed else "no",
        # bot/ changes under uncommitted work too: this names the exact code that was measured.
        "bot_adapters_sha1": digest.hexdigest()[:12],
    }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the same definition as bot.answering.evaluation.percentile)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- helper servers


def bare_app() -> web.Application:
    """The baseline: aiohttp at its barest. It reads the body (a platform sends one) and answers
    what civicdesk answers; it also takes replies as the webhook's outbound sink."""
    body = b'{"ok":true}'

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhooks/{channel}", accept)
    app.router.add_post("/sink", accept)
    app.router.add_get("/healthz", healthz)
    return app


def run_helper(role: str, port: int) -> int:
    if role not in ("bare", "sink"):
        raise SystemExit(f"unknown role {role!r}")
    web.run_app(bare_app(), host="127.0.0.1", port=port, access_log=None, print=None)
    return 0


# --------------------------------------------------------------------------- wrk

_LUA = r"""
-- Generated by benchmarks/ingest.py: one signed webhook request per call of request().
local ffi = require("ffi")
ffi.cdef[[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *out, unsigned int *out_len);
]]
local ok_c, C = pcall(function() local _ = ffi.C.HMAC; return ffi.C end)
if not ok_c then C = ffi.load("libcrypto.so.3") end

local SECRET = @SECRET@
local PREFIX = @PREFIX@
local HOST = @HOST@
local PATH = @PATH@
local TEXTS = {@TEXTS@}

local threads = {}
local next_id = 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local md, out, out_len, hex
function init(args)
  md = C.EVP_sha256()
  out = ffi.new("unsigned char[32]")
  out_len = ffi.new("unsigned int[1]")
  hex = {}
  for i = 0, 255 do hex[i] = string.format("%02x", i) end
  sent, responses, ok = 0, 0, 0
  statuses = {}
end

local digits = {}
function request()
  sent = sent + 1
  local key = PREFIX .. tid .. "-" .. sent
  local body = '{"id":"' .. key .. '","conversation":"c-' .. key .. '","sender":"u-'
    .. (sent % 997) .. '","text":' .. TEXTS[(sent % #TEXTS) + 1] .. '}'
  local ts = tostring(os.time())
  local signed = ts .. "." .. body
  C.HMAC(md, SECRET, #SECRET, signed, #signed, out, out_len)
  for i = 0, 31 do digits[i + 1] = hex[out[i]] end
  return "POST " .. PATH .. " HTTP/1.1\r\nHost: " .. HOST
    .. "\r\nContent-Type: application/json\r\nX-Civicdesk-Timestamp: " .. ts
    .. "\r\nX-Civicdesk-Signature: sha256=" .. table.concat(digits)
    .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
  responses = responses + 1
  if status == 200 then
    ok = ok + 1
  else
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
  end
end

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    local st = {}
    for k, v in pairs(t:get("statuses") or {}) do
      table.insert(st, string.format('"%s":%d', k, v))
    end
    table.insert(parts, string.format(
      '{"tid":%d,"sent":%d,"responses":%d,"ok":%d,"statuses":{%s}}',
      t:get("tid"), t:get("sent"), t:get("responses"), t:get("ok"), table.concat(st, ",")))
  end
  local e = summary.errors
  io.write(string.format(
    '@MARK@{"duration_us":%d,"requests":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"max_us":%d,"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d},"threads":[%s]}\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ",")))
end
"""


def lua_string(text: str) -> str:
    """A Lua string literal of `text` (UTF-8 bytes as decimal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '\\"' else f"\\{byte}")
    return '"' + "".join(out) + '"'


def wrk_script(path: Path, *, secret: str, prefix: str, port: int) -> Path:
    texts = ", ".join(lua_string(json.dumps(q, ensure_ascii=False)) for q in QUESTIONS)
    script = (
        _LUA.replace("@SECRET@", lua_string(secret))
        .replace("@PREFIX@", lua_string(prefix))
        .replace("@HOST@", lua_string(f"127.0.0.1:{port}"))
        .replace("@PATH@", lua_string(PATH))
        .replace("@TEXTS@", texts)
        .replace("@MARK@", RESULT_MARK)
    )
    path.write_text(script)
    return path


@dataclass
class LoadResult:
    """One run of the load generator against one server."""

    generator: str
    prefix: str
    duration_s: float
    responses: int
    ok: int
    statuses: dict[str, int]
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sent: int  # requests made (wrk: request() calls, some maybe never written at the deadline)
    per_thread_sent: dict[int, int] = field(default_factory=dict)
    acked_ids: set[str] | None = None  # the Python generator knows them exactly
    generator_cpu_s: float = math.nan

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def unanswered(self) -> int:
        return max(0, self.sent - self.responses)

    def summary(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "duration_s": round(self.duration_s, 3),
            "requests_per_s": round(self.rps, 1),
            "ok_200": self.ok,
            "responses": self.responses,
            "sent": self.sent,
            "unanswered_at_cutoff": self.unanswered,
            "other_statuses": self.statuses,
            "errors": self.errors,
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "generator_cpu_s": round(self.generator_cpu_s, 2),
        }


def run_wrk(
    workdir: Path,
    *,
    port: int,
    secret: str,
    prefix: str,
    duration: float,
    connections: int,
    threads: int,
) -> LoadResult:
    script = wrk_script(workdir / f"wrk-{prefix}.lua", secret=secret, prefix=prefix, port=port)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    cpu_before = children_cpu_seconds()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu = children_cpu_seconds() - cpu_before
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith(RESULT_MARK)), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    data = json.loads(line[len(RESULT_MARK) :])
    statuses: dict[str, int] = {}
    for thread in data["threads"]:
        for status, count in thread["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    errors = {k: v for k, v in data["errors"].items() if k != "status"}
    return LoadResult(
        generator="wrk",
        prefix=prefix,
        duration_s=data["duration_us"] / 1e6,
        responses=sum(t["responses"] for t in data["threads"]),
        ok=sum(t["ok"] for t in data["threads"]),
        statuses=statuses,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        sent=sum(t["sent"] for t in data["threads"]),
        per_thread_sent={t["tid"]: t["sent"] for t in data["threads"]},
        generator_cpu_s=cpu,
    )


# --------------------------------------------------------------------------- Python generator


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The README's scheme, written here rather than imported from the adapter under test."""
    text = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def signed_request(port: int, secret: str, key: str, n: int) -> bytes:
    text = QUESTIONS[n % len(QUESTIONS)]
    body = json.dumps(
        {"id": key, "conversation": f"c-{key}", "sender": f"u-{n % 997}", "text": text},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-Civicdesk-Timestamp: {timestamp}\r\n"
        f"X-Civicdesk-Signature: {sign(secret, timestamp, body)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})")
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


async def _one_connection(
    port: int,
    secret: str,
    prefix: str,
    worker: int,
    deadline: float,
    out: dict[str, Any],
) -> None:
    """Requests one after another on one keep-alive connection until `deadline`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            key = f"{prefix}{worker}-{n}"
            request = signed_request(port, secret, key, n)
            out["sent"] += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            status = _STATUS.match(head)
            if length is None or status is None:
                raise ConnectionError("an answer without a status line or Content-Length")
            await reader.readexactly(int(length.group(1)))
            out["latencies"].append(time.perf_counter() - started)
            out["responses"] += 1
            code = status.group(1).decode()
            if code == "200":
                out["acked"].append(key)
            else:
                out["statuses"][code] = out["statuses"].get(code, 0) + 1
    except (OSError, asyncio.IncompleteReadError, ConnectionError):
        out["errors"]["read"] += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def python_load(
    port: int, secret: str, prefix: str, duration: float, connections: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sent": 0,
        "responses": 0,
        "acked": [],
        "statuses": {},
        "errors": {"connect": 0, "read": 0},
        "latencies": [],
    }
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(
        *(_one_connection(port, secret, prefix, w, deadline, out) for w in range(connections))
    )
    elapsed = time.monotonic() - started  # each connection finishes its last request: a drain
    lat = out.pop("latencies")
    return {
        **out,
        "duration_s": elapsed,
        "p50_ms": statistics.median(lat) * 1000 if lat else math.nan,
        "p90_ms": percentile(lat, 90) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else math.nan,
    }


def run_python_generator(
    workdir: Path, *, port: int, secret: str, prefix: str, duration: float, connections: int
) -> LoadResult:
    """The fallback generator, in a process of its own (never on a server's event loop)."""
    result_path = workdir / f"python-{prefix}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        "generate",
        "--port",
        str(port),
        "--generate-args",
        json.dumps(
            {
                "secret": secret,
                "prefix": prefix,
                "duration": duration,
                "connections": connections,
                "out": str(result_path),
            }
        ),
    ]
    cpu_before = children_cpu_seconds()
    subprocess.run(command, check=True)
    cpu = children_cpu_seconds() - cpu_before
    data = json.loads(result_path.read_text())
    return LoadResult(
        generator="python",
        prefix=prefix,
        duration_s=data["duration_s"],
        responses=data["responses"],
        ok=len(data["acked"]),
        statuses=data["statuses"],
        errors=data["errors"],
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        sent=data["sent"],
        acked_ids=set(data["acked"]),
        generator_cpu_s=cpu,
    )


def run_generate_role(port: int, raw: str) -> int:
    options = json.loads(raw)
    result = asyncio.run(
        python_load(
            port, options["secret"], options["prefix"], options["duration"], options["connections"]
        )
    )
    Path(options["out"]).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- phases


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    threads: int
    generator: str  # "wrk" or "python"
    workers: str = "in-process"  # see start_civicdesk


def _load(options: Options, workdir: Path, **kwargs: Any) -> LoadResult:
    if options.generator == "wrk":
        return run_wrk(workdir, connections=options.connections, threads=options.threads, **kwargs)
    return run_python_generator(workdir, connections=options.connections, **kwargs)


def measured(
    server: Server,
    options: Options,
    workdir: Path,
    secret: str,
    prefix: str,
    helpers: Sequence[Server] = (),
) -> dict[str, Any]:
    if options.warmup > 0:
        _load(
            options,
            workdir,
            port=server.port,
            secret=secret,
            prefix=f"w{prefix}",
            duration=options.warmup,
        )
    server_cpu = server.cpu_seconds()
    helper_cpu = sum(h.cpu_seconds() for h in helpers)
    machine_cpu = machine_cpu_seconds()
    wall = time.monotonic()
    load = _load(
        options, workdir, port=server.port, secret=secret, prefix=prefix, duration=options.duration
    )
    wall = time.monotonic() - wall
    server_cpu = server.cpu_seconds() - server_cpu
    helper_cpu = sum(h.cpu_seconds() for h in helpers) - helper_cpu
    machine_cpu = machine_cpu_seconds() - machine_cpu
    others = machine_cpu - server_cpu - helper_cpu - load.generator_cpu_s
    return {
        "load": load,
        "cpu": {
            "wall_s": round(wall, 2),
            "server_cpu_s": round(server_cpu, 3),
            "server_cores": round(server_cpu / wall, 2),
            "generator_cores": round(load.generator_cpu_s / wall, 2),
            "sink_cores": round(helper_cpu / wall, 2),
            "everything_else_cores": round(max(0.0, others) / wall, 2),
        },
    }


def bare_phase(
    name: str, options: Options, workdir: Path, secret: str, prefix: str
) -> dict[str, Any]:
    port = free_port()
    with running(start_server(name, helper_command("bare", port), port=port, workdir=workdir)) as s:
        return measured(s, options, workdir, secret, prefix)


def civicdesk_phase(options: Options, workdir: Path, secret: str) -> dict[str, Any]:
    sink_port = free_port()
    sink = start_server("sink", helper_command("sink", sink_port), port=sink_port, workdir=workdir)
    database = workdir / "ingest.db"
    port = free_port()
    env = clean_environment(
        CIVICDESK_KNOWLEDGE=str(KNOWLEDGE),
        CIVICDESK_CHANNELS=CHANNEL,
        CIVICDESK_WEBHOOK_SECRET=secret,
        CIVICDESK_WEBHOOK_OUTBOUND_URL=f"{sink.base}/sink",
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        CIVICDESK_HOST="127.0.0.1",
        CIVICDESK_PORT=str(port),
        # The lexical matcher, as in every earlier measurement: with the semantic extra
        # installed, `auto` would spend ~24 ms of this process's CPU on each answer, which the
        # per-CPU ratio would then count as ingest cost (benchmarks/end_to_end.py measures that).
        CIVICDESK_SEMANTIC="off",
    )
    try:
        server = start_civicdesk(workdir, env, port, workers=options.workers)
        try:
            result = measured(server, options, workdir, secret, "m", helpers=[sink])
            # What the workers got through while ingest ran (read before the graceful stop).
            result["inbox_at_end"] = inbox_states(database)
        finally:
            exit_code = server.stop()
        result["server_exit_code"] = exit_code
        result["server_log"] = str(server.log_path)
        result["durability"] = durability(database, result["load"])
    finally:
        sink.stop()
    return result


def inbox_states(database: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        rows = db.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall()
    return {status: int(count) for status, count in rows}


def durability(database: Path, load: LoadResult) -> dict[str, Any]:
    """Every 200-acknowledged request of the measured run is in the inbox (read after the
    server stopped), and nothing is stored that the generator did not send."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        ids = [
            row[0]
            for row in db.execute(
                "SELECT platform_id FROM inbox WHERE channel = ? AND platform_id LIKE ?",
                (CHANNEL, f"{load.prefix}%"),
            )
        ]
    stored = set(ids)
    report: dict[str, Any] = {
        "acknowledged_200": load.ok,
        "stored": len(stored),
        "duplicate_rows": len(ids) - len(stored),
        "unanswered_at_cutoff": load.unanswered,
    }
    if load.acked_ids is not None:  # the Python generator: the exact sets
        missing = load.acked_ids - stored
        extra = stored - load.acked_ids
        report.update(
            exact_ids=True,
            acknowledged_but_missing=len(missing),
            stored_not_acknowledged=len(extra),
            ok=not missing and len(extra) <= load.unanswered and len(ids) == len(stored),
        )
        return report
    # wrk: ids are <prefix><thread>-<n>, n = 1.. per thread; stored ones must be among those sent.
    outside = 0
    for key in stored:
        match = re.fullmatch(rf"{re.escape(load.prefix)}(\d+)-(\d+)", key)
        if match is None or int(match.group(2)) > load.per_thread_sent.get(int(match.group(1)), 0):
            outside += 1
    ok = load.ok <= len(stored) <= load.ok + load.unanswered and outside == 0
    report.update(
        exact_ids=False,
        stored_not_acknowledged=len(stored) - load.ok,
        stored_but_never_sent=outside,
        ok=ok and len(ids) == len(stored),
    )
    return report


# --------------------------------------------------------------------------- report


def print_report(report: dict[str, Any]) -> None:
    meta = report["meta"]
    print(
        f"generator: {meta['generator']}, {meta['connections']} connections"
        + (f", {meta['threads']} thread(s)" if meta["generator"] == "wrk" else "")
        + f"; {meta['duration_s']:g} s measured per phase after {meta['warmup_s']:g} s warm-up"
    )
    if meta["generator"] != "wrk":
        print(
            "           (the Python generator competes with the servers for the two cores and "
            "holds the baseline back: a smoke result only; wrk: apt-get install -y wrk)"
        )
    print(f"machine:   {meta['platform']}, python {meta['python']}, {meta['cpus']} CPUs")
    load = meta["load_average_1min"]
    print(
        f"load:      1-min load average {load['start']:.2f} at start, {load['end']:.2f} at end "
        "(other people's tests run on this machine too; see 'others' below)"
    )
    code = meta["code"]
    print(
        f"code:      git {code['git_head']}, uncommitted changes in bot/ or adapters/: "
        f"{code['uncommitted_changes_in_bot_adapters']}, sha1 of their .py files "
        f"{code['bot_adapters_sha1']}"
    )
    workers = {
        "in-process": "civicdesk serve, workers on",
        "separate": "civicdesk serve --no-workers + civicdesk work",
        "none": "civicdesk serve --no-workers (ingest alone)",
    }[report["meta"]["workers"]]
    print(
        f"server:    {workers}, on SQLite (WAL, synchronous=NORMAL), webhook channel, "
        "replies to a local sink"
    )
    print()
    header = (
        f"{'phase':<14}{'req/s':>9}{'200s':>9}{'non-200':>9}{'errors':>8}{'p50_ms':>9}"
        f"{'p99_ms':>9}{'max_ms':>9}{'dur_s':>7}{'server':>8}{'gen':>6}{'others':>8}"
    )
    print(header)
    for name in ("bare_before", "civicdesk", "bare_after"):
        phase = report["phases"][name]
        s, cpu = phase["load"], phase["cpu"]
        print(
            f"{name:<14}{s['requests_per_s']:>9.0f}{s['ok_200']:>9}"
            f"{sum(s['other_statuses'].values()):>9}{sum(s['errors'].values()):>8}"
            f"{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.1f}{s['duration_s']:>7.1f}"
            f"{cpu['server_cores']:>8.2f}{cpu['generator_cores']:>6.2f}"
            f"{cpu['everything_else_cores']:>8.2f}"
        )
    print("(server, gen, others: CPU cores busy during the measured run, from /proc)")
    civic = report["phases"]["civicdesk"]
    for name in ("bare_before", "civicdesk", "bare_after"):
        s = report["phases"][name]["load"]
        if s["other_statuses"] or any(s["errors"].values()):
            print(f"  {name}: statuses {s['other_statuses']}, errors {s['errors']}")
    print()
    ratio = report["ratio"]
    print(
        f"baseline:  bare aiohttp {ratio['baseline_rps']:.0f} req/s (mean of before "
        f"{ratio['bare_before_rps']:.0f} and after {ratio['bare_after_rps']:.0f}; "
        f"they differ by {ratio['bare_spread']:.0%})"
    )
    print(
        f"per CPU:   {ratio['civicdesk_per_cpu_s']:.0f} against {ratio['bare_per_cpu_s']:.0f} "
        f"requests per CPU-second of the server process: {ratio['per_cpu_ratio']:.2f}x "
        "(less sensitive to other work on the machine; the target is on req/s)"
    )
    print(
        f"ratio:     civicdesk / bare = {ratio['ratio']:.2f}x "
        f"(target >= {RATIO_TARGET}x: {'PASS' if ratio['ok'] else 'FAIL'}); "
        f"p99 {civic['load']['p99_ms']:.1f} ms against {ratio['bare_p99_ms']:.1f} ms"
    )
    d = civic["durability"]
    if d["exact_ids"]:
        detail = (
            f"{d['acknowledged_200']} acknowledged, {d['stored']} stored, "
            f"{d['acknowledged_but_missing']} acknowledged but missing"
        )
    else:
        detail = (
            f"{d['acknowledged_200']} acknowledged (200) <= {d['stored']} stored <= "
            f"{d['acknowledged_200']} + {d['unanswered_at_cutoff']} unanswered at wrk's cut-off; "
            f"{d['stored_but_never_sent']} stored ids never sent, {d['duplicate_rows']} duplicates"
        )
    print(f"durable:   {detail}: {'PASS' if d['ok'] else 'FAIL'}")
    inbox = civic.get("inbox_at_end", {})
    print(
        f"workers:   at the end of the run the inbox held {inbox.get('done', 0)} answered, "
        f"{inbox.get('new', 0)} waiting, {inbox.get('claimed', 0)} in hand "
        f"(server exit code {civic['server_exit_code']})"
    )
    print(f"total run time: {meta['total_s']:.1f} s")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, help=f"seconds per phase ({DEFAULT_DURATION:g})")
    parser.add_argument("--warmup", type=float, help=f"warm-up seconds ({DEFAULT_WARMUP:g})")
    parser.add_argument(
        "--connections", type=int, default=DEFAULT_CONNECTIONS, help="concurrent connections"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1 leaves a core)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--quick", action="store_true", help="3 s phases, 1 s warm-up (CI smoke)")
    parser.add_argument(
        "--workers",
        choices=WORKER_MODES,
        default="in-process",
        help="where civicdesk's workers run while ingest is measured (default in-process)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--generate-args", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION if args.quick else DEFAULT_DURATION
    if args.warmup is None:
        args.warmup = QUICK_WARMUP if args.quick else DEFAULT_WARMUP
    if args.duration < 1 or args.connections < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--duration >= 1, --connections >= 1, --threads >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "generate":
        return run_generate_role(args.port, args.generate_args)
    if args.role:
        return run_helper(args.role, args.port)
    started = time.monotonic()
    load_start = load_average()
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        print("wrk is not on PATH: apt-get install -y wrk (or --generator python)", file=sys.stderr)
        return 2
    options = Options(
        args.duration, args.warmup, args.connections, args.threads, generator, args.workers
    )
    secret = secrets.token_hex(32)

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    phases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="civicdesk-ingest-") as tmp:
        workdir = Path(tmp)
        progress(f"bare aiohttp (before), {generator}")
        phases["bare_before"] = bare_phase("bare-before", options, workdir, secret, "b")
        progress(f"  {phases['bare_before']['load'].rps:.0f} req/s; civicdesk serve on SQLite")
        phases["civicdesk"] = civicdesk_phase(options, workdir, secret)
        progress(f"  {phases['civicdesk']['load'].rps:.0f} req/s; bare aiohttp (after)")
        phases["bare_after"] = bare_phase("bare-after", options, workdir, secret, "a")
        progress(f"  {phases['bare_after']['load'].rps:.0f} req/s")
        if phases["civicdesk"]["server_exit_code"] not in (0, None):
            print(Path(phases["civicdesk"]["server_log"]).read_text()[-3000:], file=sys.stderr)
    before = phases["bare_before"]["load"]
    after = phases["bare_after"]["load"]
    civic = phases["civicdesk"]["load"]
    baseline = (before.rps + after.rps) / 2
    ratio = civic.rps / baseline if baseline else 0.0

    def per_cpu(name: str) -> float:
        """200s per CPU-second the server process spent in the measured run."""
        phase = phases[name]
        seconds = phase["cpu"]["server_cpu_s"]
        return phase["load"].ok / seconds if seconds > 0 else math.nan

    bare_per_cpu = (per_cpu("bare_before") + per_cpu("bare_after")) / 2
    civic_per_cpu = per_cpu("civicdesk")
    for phase in phases.values():
        phase["load"] = phase["load"].summary()
        phase.pop("server_log", None)
    report = {
        "meta": {
            "generator": generator,
            "workers": options.workers,
            "connections": options.connections,
            "threads": options.threads,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "code": code_version(),
            "load_average_1min": {"start": load_start, "end": load_average()},
            "baseline": "bare aiohttp handler in its own process: reads the body, answers 200 "
            '{"ok":true}; no verification, parsing or storage; no access log',
        },
        "phases": phases,
        "ratio": {
            "bare_before_rps": before.rps,
            "bare_after_rps": after.rps,
            "bare_spread": abs(before.rps - after.rps) / baseline if baseline else 0.0,
            "baseline_rps": baseline,
            "civicdesk_rps": civic.rps,
            "ratio": ratio,
            "target": RATIO_TARGET,
            "ok": ratio >= RATIO_TARGET,
            "bare_p99_ms": (before.p99_ms + after.p99_ms) / 2,
            "bare_per_cpu_s": bare_per_cpu,
            "civicdesk_per_cpu_s": civic_per_cpu,
            "per_cpu_ratio": civic_per_cpu / bare_per_cpu if bare_per_cpu else math.nan,
        },
    }
    report["meta"]["total_s"] = time.monotonic() - started
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print_report(report)
    # Speed never fails the run; a 200 for a message that was not stored does.
    return 0 if phases["civicdesk"]["durability"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
