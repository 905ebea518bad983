"""A real Matrix homeserver for tests: Synapse from `.ci/.synapse-venv` (made by
`bash .ci/synapse install`), started as a separate process on a free loopback port in a temporary
folder, with SQLite, no federation, rate limits raised, and registration only through the shared
secret; and `Person`, someone with a Matrix client (aiohttp) who makes rooms, talks and reads.
Synapse is AGPL: it runs beside civicdesk and is never imported by it.

`NEEDS_SYNAPSE` skips a test module when Synapse is not installed, except in CI (CI=true), where
`.ci/run` installs it: there a missing Synapse fails the tests instead of skipping them."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SYNAPSE_VENV = ROOT / ".ci" / ".synapse-venv"
SYNAPSE_PYTHON = SYNAPSE_VENV / "bin" / "python"
SERVER_NAME = "localhost"
START_TIMEOUT = 120.0
MISSING = (
    f"Synapse is not installed ({SYNAPSE_VENV.relative_to(ROOT)} is missing): run "
    "`bash .ci/synapse install` (CI does)"
)

NEEDS_SYNAPSE = pytest.mark.skipif(
    not SYNAPSE_PYTHON.exists() and os.environ.get("CI") != "true", reason=MISSING
)
WAIT = 60.0  # seconds for an expected event to arrive: generous, it takes about one

_LOOSE = {"per_second": 1000, "burst_count": 1000}
_LOG_CONFIG = """\
version: 1
formatters:
  plain: {format: '%(asctime)s %(levelname)s %(name)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, filename: LOGFILE, formatter: plain}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class MatrixUser:
    user_id: str
    access_token: str


@dataclass
class Synapse:
    """A running homeserver: its base URL and how to register users on it."""

    folder: Path
    port: int
    shared_secret: str
    process: subprocess.Popen[bytes] | None = None
    # Application service registrations (YAML files) the homeserver pushes transactions to.
    app_services: tuple[Path, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "homeserver.log"

    def config(self) -> dict[str, Any]:
        folder = self.folder
        return {
            "server_name": SERVER_NAME,
            "pid_file": str(folder / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
            "log_config": str(folder / "log.config"),
            "media_store_path": str(folder / "media"),
            "signing_key_path": str(folder / "signing.key"),
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "report_stats": False,
            "enable_registration": False,
            "enable_metrics": False,
            "federation_domain_whitelist": [],  # no federation: talk to no other server
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "rc_message": _LOOSE,
            "rc_registration": _LOOSE,
            "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
            "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
            "rc_joins_per_room": _LOOSE,
            "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
            "rc_room_creation": _LOOSE,
            "rc_admin_redaction": _LOOSE,
            "app_service_config_files": [str(path) for path in self.app_services],
        }

    def start(self) -> None:
        (self.folder / "log.config").write_text(_LOG_CONFIG.replace("LOGFILE", str(self.log)))
        config = self.folder / "homeserver.yaml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps(self.config(), indent=2))
        python = str(SYNAPSE_PYTHON)
        module = "synapse.app.homeserver"
        subprocess.run(
            [python, "-m", module, "-c", str(config), "--generate-keys"],
            check=True,
            capture_output=True,
            cwd=self.folder,
            timeout=START_TIMEOUT,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
        self.process = subprocess.Popen(
            [python, "-m", module, "-c", str(config)],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "stderr.log").open("wb"),
            env=env,
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.process.returncode}:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Synapse did not answer /health in {START_TIMEOUT:g} s:\n{self.tail()}")

    def tail(self) -> str:
        parts = []
        for name in ("stderr.log", "homeserver.log"):
            path = self.folder / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def register(self, localpart: str, password: str | None = None) -> MatrixUser:
        """A new user through the shared-secret admin API (/_synapse/admin/v1/register)."""
        password = password or secrets.token_urlsafe(12)
        nonce = call(f"{self.url}/_synapse/admin/v1/register")["nonce"]
        text = "\0".join([nonce, localpart, password, "notadmin"]).encode()
        mac = hmac.new(self.shared_secret.encode(), text, hashlib.sha1).hexdigest()
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": False,
            "mac": mac,
        }
        data = call(f"{self.url}/_synapse/admin/v1/register", "POST", body)
        return MatrixUser(data["user_id"], data["access_token"])


def call(
    url: str,
    method: str = "GET",
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A blocking JSON call (for set-up only; tests talk to the homeserver with aiohttp)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: HTTP {exc.code} {exc.read()[:500]!r}") from None


@contextlib.contextmanager
def running_synapse(folder: Path, app_services: tuple[Path, ...] = ()) -> Iterator[Synapse]:
    """Synapse started in `folder`, stopped afterwards (also when the test fails)."""
    if not SYNAPSE_PYTHON.exists():
        raise RuntimeError(MISSING)
    synapse = Synapse(folder, free_port(), secrets.token_hex(16), app_services=app_services)
    try:
        synapse.start()
        yield synapse
    finally:
        synapse.stop()


Event = dict[str, Any]


def relation(event: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = event.get("content", {}).get("m.relates_to", {})
    return found


def replied_to(event: Mapping[str, Any]) -> str | None:
    """The event id `event` replies to (m.in_reply_to), if it does."""
    found: str | None = relation(event).get("m.in_reply_to", {}).get("event_id")
    return found


class Person:
    """Someone with a Matrix client: makes rooms, invites, talks, and reads what arrives. Every
    event /sync brings is kept, so a wait finds what came in during an earlier one."""

    def __init__(self, http: aiohttp.ClientSession, base: str, user: MatrixUser) -> None:
        self.http, self.base, self.user = http, base, user
        self.since: str | None = None
        self.seen: dict[str, list[Event]] = {}

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.user.access_token}"}
        url = f"{self.base}/_matrix/client/v3{path}"
        async with self.http.request(
            method, url, json=body, params=params, headers=headers
        ) as response:
            data = await response.json()
            assert response.status == 200, (method, path, response.status, data)
            return data

    async def set_name(self, name: str) -> None:
        await self.call("PUT", f"/profile/{quote(self.user.user_id)}/displayname",
                        {"displayname": name})  # fmt: skip

    async def room(self, *invite: str, direct: bool = False) -> str:
        body = {"preset": "private_chat", "invite": list(invite), "is_direct": direct}
        room_id: str = (await self.call("POST", "/createRoom", body))["room_id"]
        return room_id

    async def say(
        self,
        room_id: str,
        text: str,
        *,
        mention: str | None = None,
        relates: Mapping[str, Any] | None = None,
    ) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text, "m.mentions": {}}
        if mention:
            content["body"] = f"{mention}: {text}"
            content["m.mentions"] = {"user_ids": [mention]}
        if relates is not None:
            content["m.relates_to"] = dict(relates)
        txn = secrets.token_hex(8)
        path = f"/rooms/{quote(room_id)}/send/m.room.message/{txn}"
        event_id: str = (await self.call("PUT", path, content))["event_id"]
        return event_id

    async def wait_for(
        self, room_id: str, match: Callable[[Event], bool], what: str, timeout: float = WAIT
    ) -> Event:
        """The first event in the room that `match`es, syncing (long polls) until it comes."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.seen.get(room_id, []):
                if match(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.user.user_id} saw no {what} within {timeout:g} s")
            params = {"timeout": "5000"}
            if self.since:
                params["since"] = self.since
            data = await self.call("GET", "/sync", **params)
            self.since = data["next_batch"]
            for joined_room, room in data.get("rooms", {}).get("join", {}).items():
                events = room.get("timeline", {}).get("events", [])
                self.seen.setdefault(joined_room, []).extend(events)

    async def reply_to(self, room_id: str, event_id: str, sender: str) -> Event:
        """The first message of `sender` in the room that replies to `event_id`."""
        return await self.wait_for(
            room_id,
            lambda e: e["sender"] == sender and replied_to(e) == event_id,
            f"reply from {sender} to {event_id}",
        )
