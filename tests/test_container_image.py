"""The Dockerfile, built and run with the machine's container tool (podman, or docker with its
daemon): the image serves the web chat as a non-root user, answers from a mounted knowledge
folder, shows /metrics and stops cleanly on SIGTERM.

Slow (the build installs every dependency, about two minutes). It never pulls: the base image
must be there already (CIVICDESK_TEST_PYTHON_IMAGE, default python:3.11-slim-bookworm), or the
test skips saying so. Machines whose runtime needs options say so in
CIVICDESK_TEST_CONTAINER_BUILD_OPTIONS / CIVICDESK_TEST_CONTAINER_RUN_OPTIONS (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "tests" / "fixtures" / "kb" / "base"
BASE_IMAGE = os.environ.get("CIVICDESK_TEST_PYTHON_IMAGE", "python:3.11-slim-bookworm")
IMAGE = "localhost/civicdesk:image-test"


def container_tool() -> str:
    """podman (no daemon), else docker when its daemon answers; skips otherwise."""
    if shutil.which("podman"):
        return "podman"
    if shutil.which("docker"):
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
        if info.returncode == 0:
            return "docker"
        pytest.skip("docker is installed but its daemon does not answer (docker info failed)")
    pytest.skip("no container tool: apt-get install podman (needs no daemon)")


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 15) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    tool = container_tool()
    present = run(tool, "image", "inspect", BASE_IMAGE)
    if present.returncode != 0:
        pytest.skip(
            f"the base image {BASE_IMAGE} is not on this machine and the tests do not pull "
            "(set CIVICDESK_TEST_PYTHON_IMAGE to a local Python 3.11 image)"
        )
    options = shlex.split(os.environ.get("CIVICDESK_TEST_CONTAINER_BUILD_OPTIONS", ""))
    if tool == "podman":
        options.append("--format=docker")  # keeps HEALTHCHECK, which the OCI format drops
    built = run(
        tool,
        "build",
        *options,
        "--build-arg",
        f"PYTHON_IMAGE={BASE_IMAGE}",
        "-t",
        IMAGE,
        str(ROOT),
        timeout=1200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield tool
    run(tool, "rmi", "-f", IMAGE)


def test_the_image_is_configured_as_an_operator_expects(image: str) -> None:
    inspected = run(image, "image", "inspect", IMAGE)
    assert inspected.returncode == 0, inspected.stderr
    (config,) = json.loads(inspected.stdout)
    settings = config["Config"]
    assert settings["Cmd"] == ["civicdesk", "serve"]
    assert settings["User"] == "civicdesk"
    assert "/srv/civicdesk/knowledge" in settings["Volumes"]
    assert "/srv/civicdesk/data" in settings["Volumes"]
    assert "8080/tcp" in settings["ExposedPorts"]
    health = settings.get("Healthcheck") or config.get("Healthcheck")  # docker's or podman's
    assert health["Test"][:2] == ["CMD", "python"]
    assert "/healthz" in health["Test"][-1]


def test_the_image_answers_as_non_root_and_stops_cleanly(image: str, tmp_path: Path) -> None:
    port = free_port()
    name = f"civicdesk-image-test-{port}"
    options = shlex.split(os.environ.get("CIVICDESK_TEST_CONTAINER_RUN_OPTIONS", ""))
    started = run(
        image,
        "run",
        "--detach",
        "--name",
        name,
        *options,
        "--network",
        "host",
        "--env",
        "CIVICDESK_HOST=127.0.0.1",
        "--env",
        f"CIVICDESK_PORT={port}",
        "--env",
        "CIVICDESK_LOG_FORMAT=json",
        "--volume",
        f"{KNOWLEDGE}:/srv/civicdesk/knowledge:ro",
        IMAGE,
    )
    assert started.returncode == 0, started.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http(f"{url}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, run(image, "logs", name).stderr[-3000:]
            time.sleep(0.5)

        who = run(image, "exec", name, "id", "-u")
        question = {
            "id": "msg-0001",
            "conversation": "conv-0001",
            "text": "How do I pay the court fee?",
        }
        sent, _ = http(f"{url}/webhooks/webchat", question)
        status, replies = http(f"{url}/chat/api/replies?conversation=conv-0001&after=0&wait=10")
        _, metrics = http(f"{url}/metrics")
        stopped = run(image, "stop", "--time", "20", name, timeout=60)
        waited = run(image, "wait", name)
        logs = run(image, "logs", name)
    finally:
        run(image, "rm", "-f", name)

    assert who.stdout.strip() == "10001"
    assert sent == 200 and status == 200
    (reply,) = json.loads(replies)["replies"]
    assert reply["text"].startswith("Pay online")
    assert "process_cpu_seconds_total" in metrics
    assert 'civicdesk_messages_in_total{channel="webchat",result="new"} 1.0' in metrics
    assert stopped.returncode == 0, stopped.stderr
    assert waited.stdout.strip() == "0"  # SIGTERM: a graceful stop, exit status 0
    records = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines() if line]
    assert any(r["message"].startswith("serving channels webchat") for r in records)
