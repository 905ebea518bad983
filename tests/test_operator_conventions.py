"""What operators expect of a server program: `--version`, `--help` with examples, one clear line
and exit status 2 for a database URL, a port or a database it cannot use, `--wait-for-db`, JSON
log lines, and a channel whose optional extra is not installed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from serve_support import ServeProcess, civicdesk, free_port, serve_environment

import adapters
from bot.cli.examples import EXAMPLES, commands
from bot.cli.main import _parser, main
from bot.config.settings import SETTINGS, Settings
from bot.runtime.logs import configure_logging

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "tests" / "fixtures" / "kb" / "base"


@pytest.fixture
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder (no .env), no civicdesk setting inherited, the small knowledge base."""
    for setting in SETTINGS:
        monkeypatch.setenv(setting.name, "")
        monkeypatch.delenv(setting.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(KNOWLEDGE))
    return tmp_path


def run(*argv: str) -> int:
    return main(list(argv), out=io.StringIO())


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- --version and --help ---------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run("--version")

    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"civicdesk {version('civicdesk')}"


def test_every_command_has_help_with_examples_that_the_parser_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = _parser()
    tree = commands(parser)
    assert len(tree) >= 25  # serve, work, tickets and their actions, users, report, ...

    for path, _command in tree:
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args([*path, "--help"])
        assert stopped.value.code == 0
        shown = capsys.readouterr().out
        assert "example" in shown, path
        for example in EXAMPLES[path]:
            assert example in shown
            words = shlex.split(example.split(" > ")[0])
            words = words[words.index("civicdesk") + 1 :]  # after VAR=value assignments
            parsed = parser.parse_args(words)
            assert isinstance(parsed, argparse.Namespace)


# --- database URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://desk:s3cret-pw@db.internal/civicdesk",
        "civicdesk.db",
        "sqlite://",
        "postgresql+psycopg2://desk:s3cret-pw@db.internal/civicdesk",
        "https://db.internal/civicdesk",
        "postgres://",
    ],
)
def test_an_unusable_database_url_is_one_line_naming_the_accepted_forms(
    url: str,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    status = run("serve")

    assert status == 2
    (line,) = error_lines(capsys)
    assert line.startswith("civicdesk: configuration error: DATABASE_URL=")
    assert "sqlite:///civicdesk.db" in line and "postgresql://user:password@host" in line
    assert "s3cret-pw" not in line
    assert not (clean_environment / "civicdesk.db").exists()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://desk:pw@db.internal:5433/civicdesk",
            "postgresql+asyncpg://desk:pw@db.internal:5433/civicdesk",
        ),
        (
            "postgresql://desk:pw@db.internal/civicdesk",
            "postgresql+asyncpg://desk:pw@db.internal/civicdesk",
        ),
        (
            "postgresql+asyncpg://desk@db.internal/civicdesk",
            "postgresql+asyncpg://desk@db.internal/civicdesk",
        ),
        (
            "postgres://desk@db.internal/civicdesk?sslmode=require",
            "postgresql+asyncpg://desk@db.internal/civicdesk?ssl=require",
        ),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////srv/civicdesk/x.db", "sqlite+aiosqlite:////srv/civicdesk/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_urls_as_hosting_platforms_give_them_are_mapped_to_the_async_drivers(
    given: str, used: str
) -> None:
    assert Settings.from_env({"DATABASE_URL": given}).database_url == used


# --- ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "work"])
@pytest.mark.parametrize("port", ["70000", "-1", "http", "80.5"])
def test_a_bad_port_is_one_line_and_exit_status_2(
    command: str, port: str, clean_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(command, "--port", port)

    assert stopped.value.code == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"civicdesk {command}: argument --port: ")
    assert port in line and "0 to 65535" in line


# --- the database at start ----------------------------------------------------------------------


async def test_an_unreachable_database_stops_serve_at_once_with_one_line(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    environ = serve_environment(
        f"postgresql://desk:s3cret-pw@127.0.0.1:{closed}/civicdesk", "http://127.0.0.1:9/"
    )
    environ["CIVICDESK_KNOWLEDGE"] = str(KNOWLEDGE)

    status, _, err = await civicdesk(environ, tmp_path, "serve", "--port", str(free_port()))

    assert status == 2, err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("civicdesk:")]
    assert f"the database postgresql+asyncpg://desk:***@127.0.0.1:{closed}/civicdesk" in line
    assert "does not answer" in line and "--wait-for-db" in line
    assert "s3cret-pw" not in err


async def test_work_also_stops_when_the_database_is_unreachable(tmp_path: Path) -> None:
    environ = serve_environment(
        f"postgres://desk@127.0.0.1:{free_port()}/civicdesk", "http://127.0.0.1:9/"
    )
    environ["CIVICDESK_KNOWLEDGE"] = str(KNOWLEDGE)

    status, _, err = await civicdesk(environ, tmp_path, "work", "--wait-for-db", "1")

    assert status == 2, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].endswith("still no answer after --wait-for-db 1")


@contextlib.asynccontextmanager
async def tcp_forwarder(port: int, target: tuple[str, int]) -> AsyncIterator[None]:
    """Listens on `port` and relays each connection to `target`: a database that "comes up"."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        await asyncio.gather(relay(reader, upstream_writer), relay(upstream_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


@pytest.mark.slow
async def test_wait_for_db_starts_serve_once_the_database_comes_up(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    real = urlsplit(empty_postgres_url)
    port = free_port()
    # As a hosting platform writes it, on a port where the database is not (yet) listening.
    late = f"postgres://{real.username}@127.0.0.1:{port}{real.path}"
    environ = serve_environment(empty_postgres_url, "http://127.0.0.1:9/")
    environ["CIVICDESK_KNOWLEDGE"] = str(KNOWLEDGE)
    upgraded, _, err = await civicdesk(environ, tmp_path, "db", "upgrade")
    assert upgraded == 0, err
    server = ServeProcess(
        {**environ, "DATABASE_URL": late},
        tmp_path,
        command=("serve", "--wait-for-db", "60"),
    )
    starting = asyncio.create_task(server.start())
    try:
        # serve is up to the database and waiting for it: nothing listens on its port yet.
        deadline = asyncio.get_running_loop().time() + 60
        while "waiting for the database" not in (server.log_text() if server.logs else ""):
            assert not starting.done(), server.log_tail()
            assert asyncio.get_running_loop().time() < deadline, server.log_tail()
            await asyncio.sleep(0.1)
        async with tcp_forwarder(port, (real.hostname or "127.0.0.1", real.port or 5432)):
            await asyncio.wait_for(starting, 60)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{server.url}/readyz") as response,
            ):
                assert response.status == 200, await response.text()
            await server.stop()
    finally:
        starting.cancel()
        await server.stop()
    assert server.process is not None and server.process.returncode == 0


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def without_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root logger as a fresh process has it (pytest adds its handler around each test)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


@pytest.mark.usefixtures("root_level")
def test_json_logs_are_one_masked_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    without_handlers(monkeypatch)
    stream = io.StringIO()
    assert configure_logging("DEBUG", "json", stream)
    log = logging.getLogger("civicdesk.test")

    log.info(
        "call %s back", "13812345678", extra={"channel": "webchat", "sender": "zhang@example.com"}
    )
    try:
        raise ValueError("no id 110101199003074514\nsecond line")
    except ValueError:
        log.exception("failed for %s", "ticket Q7K2M9")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "civicdesk.test"
    assert first["message"] == "call 138****5678 back"
    assert first["channel"] == "webchat"
    assert first["sender"] == "z***@example.com"
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and second["message"] == "failed for ticket Q7K2M9"
    assert "ValueError" in second["exception"]
    assert "110101199003074514" not in stream.getvalue()


@pytest.mark.usefixtures("root_level")
def test_the_log_level_leaves_out_less_severe_records(monkeypatch: pytest.MonkeyPatch) -> None:
    without_handlers(monkeypatch)
    stream = io.StringIO()
    configure_logging("WARNING", "text", stream)

    logging.getLogger("civicdesk.test").info("started")
    logging.getLogger("civicdesk.test").warning("slow")

    assert (
        stream.getvalue().count("\n") == 1 and "WARNING civicdesk.test: slow" in stream.getvalue()
    )


def test_a_bad_log_format_is_a_configuration_error(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICDESK_LOG_FORMAT", "xml")

    assert run("serve") == 2
    (line,) = error_lines(capsys)
    assert "CIVICDESK_LOG_FORMAT='xml'" in line and "text, json" in line


async def test_serve_with_json_logs_writes_only_json_lines(tmp_path: Path) -> None:
    environ = serve_environment(f"sqlite:///{tmp_path / 'd.db'}", "http://127.0.0.1:9/")
    environ.update(CIVICDESK_KNOWLEDGE=str(KNOWLEDGE), CIVICDESK_LOG_FORMAT="json")
    server = ServeProcess(environ, tmp_path)
    await server.start()
    await server.stop()

    records = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"].startswith("serving channels webhook") for r in records)


# --- optional extras ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "missing", "extra"),
    [("wechat", "cryptography", "wechat"), ("email", "aiosmtplib", "email")],
)
def test_a_channel_without_its_extra_stops_start_up_naming_the_pip_command(
    channel: str,
    missing: str,
    extra: str,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The package of the extra is not installed: importing it fails as it would then.
    for name in [m for m in sys.modules if m == missing or m.startswith(f"{missing}.")]:
        monkeypatch.setitem(sys.modules, name, None)  # also what earlier tests imported
    monkeypatch.setitem(sys.modules, missing, None)
    for name in list(sys.modules):
        if name.startswith(f"adapters.{channel}"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(adapters.ADAPTERS, "_loaded", {})
    monkeypatch.setenv("CIVICDESK_CHANNELS", f"webchat,{channel}")

    status = run("serve")

    assert status == 2
    (line,) = error_lines(capsys)
    assert line == (
        f"civicdesk: configuration error: the {channel} adapter needs {missing}, which is not "
        f"installed: pip install 'civicdesk[{extra}]'"
    )


# --- the container files ------------------------------------------------------------------------


def test_compose_runs_postgresql_migrate_web_and_worker_with_valid_commands() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    parser = _parser()

    assert set(services) == {"postgres", "migrate", "web", "worker"}
    web, worker, migrate = (
        parser.parse_args(services[s]["command"][1:]) for s in ("web", "worker", "migrate")
    )
    assert (web.command, web.workers, web.wait_for_db) == ("serve", False, 60)
    assert (worker.command, worker.wait_for_db) == ("work", 60)
    assert (migrate.command, migrate.db_command) == ("db", "upgrade")
    for name in ("web", "worker", "migrate"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / "Procfile").read_text().split()[:3] == ["web:", "civicdesk", "serve"]


def test_the_dockerfile_runs_civicdesk_serve_as_a_user_with_the_knowledge_as_a_volume() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    last: dict[str, str] = {}  # instruction -> its argument, the last one (the run stage's)
    for line in lines:
        if line and not line[0].isspace() and not line.startswith("#"):
            word, _, argument = line.partition(" ")
            last[word] = argument

    assert json.loads(last["CMD"]) == ["civicdesk", "serve"]
    assert last["USER"] == "civicdesk"
    assert "/srv/civicdesk/knowledge" in json.loads(last["VOLUME"])
    assert "slim" in next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".git", ".venv", "tests"} <= set(ignored)
