"""A real Matrix homeserver for tests: Synapse from `.ci/.synapse-venv` (made by
`bash .ci/synapse install`), started as a separate process on a free loopback port in a temporary
folder, with SQLite, no federation, rate limits raised, and registration only through the shared
secret. Synapse is AGPL: it runs beside civicdesk and is never imported by it."""

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SYNAPSE_VENV = ROOT / ".ci" / ".synapse-venv"
SYNAPSE_PYTHON = SYNAPSE_VENV / "bin" / "python"
SERVER_NAME = "localhost"
START_TIMEOUT = 120.0
MISSING = (
    f"Synapse is not installed ({SYNAPSE_VENV.relative_to(ROOT)} is missing): run "
    "`bash .ci/synapse install` (CI does)"
)

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
def running_synapse(folder: Path) -> Iterator[Synapse]:
    """Synapse started in `folder`, stopped afterwards (also when the test fails)."""
    synapse = Synapse(folder, free_port(), secrets.token_hex(16))
    try:
        synapse.start()
        yield synapse
    finally:
        synapse.stop()
