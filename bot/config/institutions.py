"""The institutions one deployment serves (CIVICDESK_INSTITUTIONS names a YAML file).

Each institution has its own channels, staff channels, knowledge folder (answered on top of
the shared folder, overriding shared entries by id), working hours and reference-code prefix.
With no file, the deployment is one institution made of the global settings, exactly as
before. Every mistake in the file is collected and reported at start, one line each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bot.config.settings import ConfigError, Settings
from bot.tickets.hours import (
    ENV_ANSWER_TARGET,
    ENV_BUSINESS_HOURS,
    ENV_HOLIDAYS,
    ENV_TIMEZONE,
    ENV_WORKDAYS,
    CalendarError,
    OfficeCalendar,
    calendar_from_env,
)
from bot.tickets.reference import REFERENCE_ALPHABET

ENV_INSTITUTIONS = "CIVICDESK_INSTITUTIONS"
DEFAULT_NAME = "default"
MAX_INSTITUTIONS = 1000  # a file is written by people; more than this is a mistake
MAX_FILE_BYTES = 1 << 20
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PREFIX = re.compile(rf"^[{REFERENCE_ALPHABET}]{{1,4}}$")
# The institution's keys that become the calendar's (bot.tickets.hours reads them by these names).
_CALENDAR_KEYS = {
    "timezone": ENV_TIMEZONE,
    "business_hours": ENV_BUSINESS_HOURS,
    "holidays": ENV_HOLIDAYS,
    "workdays": ENV_WORKDAYS,
    "answer_target": ENV_ANSWER_TARGET,
}
_KEYS = {"name", "display", "knowledge", "channels", "staff", "prefix", *_CALENDAR_KEYS}


@dataclass(frozen=True)
class Institution:
    """One office served by the deployment."""

    name: str
    display: Mapping[str, str]  # language -> the name shown to people
    knowledge: Path  # its own entries (and overrides of shared ones)
    channels: tuple[str, ...]  # the citizen channels it answers
    staff: tuple[str, ...]  # its staff channels (a subset of CIVICDESK_ESCALATE_TO)
    calendar: OfficeCalendar
    prefix: str = ""  # reference codes are "<prefix>-XXXXXX"; empty: "XXXXXX" (one institution)

    def title(self, lang: str) -> str:
        return self.display.get(lang) or self.display.get("en") or self.name


@dataclass(frozen=True)
class Institutions:
    """All institutions; `shared` is the folder every one of them answers (None: none)."""

    items: tuple[Institution, ...]
    shared: Path | None = None
    configured: bool = False  # False: the single institution made of the global settings
    _by_channel: dict[str, Institution] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_channel = {c: i for i in self.items for c in (*i.channels, *i.staff)}
        object.__setattr__(self, "_by_channel", by_channel)

    def of_channel(self, channel: str) -> Institution:
        """The institution a channel belongs to (the first one for an unknown channel: a
        single-institution deployment answers on every channel)."""
        return self._by_channel.get(channel, self.items[0])

    def named(self, name: str) -> Institution:
        for item in self.items:
            if item.name == name:
                return item
        names = ", ".join(i.name for i in self.items)
        raise ConfigError(f"no institution is named {name!r}: the institutions are {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)


def single_institution(settings: Settings) -> Institutions:
    """No file: one institution, the global settings as they are."""
    only = Institution(
        name=DEFAULT_NAME,
        display={},
        knowledge=settings.knowledge_path,
        channels=tuple(c for c in settings.channels if c not in settings.escalate_to),
        staff=settings.escalate_to,
        calendar=settings.calendar,
    )
    return Institutions((only,))


def load_institutions(
    settings: Settings, environ: Mapping[str, str], *, check_channels: bool = True
) -> Institutions:
    """The institutions of this deployment; ConfigError with one line per mistake.
    `check_channels=False`: the knowledge commands, which need no channel configured."""
    text = environ.get(ENV_INSTITUTIONS, "").strip()
    if not text:
        return single_institution(settings)
    path = Path(text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{ENV_INSTITUTIONS}: cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        root = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_institutions(
        root, settings, base=path.parent, where=str(path), check_channels=check_channels
    )


def parse_institutions(
    root: Any,
    settings: Settings,
    *,
    base: Path,
    where: str = "institutions",
    check_channels: bool = True,
) -> Institutions:
    """Check the file's content against the settings (pure but for checking folders exist)."""
    problems: list[str] = []
    if not isinstance(root, dict) or not isinstance(root.get("institutions"), list):
        raise ConfigError(f"{where}: expected a mapping with a list under 'institutions'")
    shared = None
    if root.get("shared") is not None:
        shared = _folder(root["shared"], base, f"{where}: shared", problems)
    for key in sorted(set(root) - {"shared", "institutions"}, key=str):
        problems.append(f"{where}: unknown key {key!r} (expected shared, institutions)")
    raw = root["institutions"]
    if not raw:
        problems.append(f"{where}: 'institutions' is empty: declare at least one")
    if len(raw) > MAX_INSTITUTIONS:
        raise ConfigError(f"{where}: more than {MAX_INSTITUTIONS} institutions")
    items = [
        item
        for number, entry in enumerate(raw, 1)
        if (
            item := _institution(
                entry, number, settings=settings, base=base, where=where, problems=problems
            )
        )
        is not None
    ]
    if not check_channels:
        settings = replace(
            settings,
            channels=tuple({c: None for i in items for c in (*i.channels, *i.staff)}),
            escalate_to=tuple(c for i in items for c in i.staff),
        )
        problems = [p for p in problems if "CIVICDESK_" not in p]
    problems.extend(_cross_checks(items, settings, where))
    if problems:
        raise ConfigError("\n".join(problems))
    return Institutions(tuple(items), shared, configured=True)


def _institution(
    entry: Any,
    number: int,
    *,
    settings: Settings,
    base: Path,
    where: str,
    problems: list[str],
) -> Institution | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: institution #{number} is not a mapping")
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(
            f"{where}: institution #{number}: name {name!r} must be lower-case letters, digits, "
            "'-' and '_'"
        )
        return None
    at = f"{where}: {name}"
    for key in sorted(set(entry) - _KEYS, key=str):
        problems.append(f"{at}: unknown key {key!r} (expected {', '.join(sorted(_KEYS))})")
    display = entry.get("display") or {}
    if not isinstance(display, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 200 for k, v in display.items()
    ):
        problems.append(f"{at}: display must map languages (zh, en) to names")
        display = {}
    knowledge = _folder(entry.get("knowledge"), base, f"{at}: knowledge", problems)
    channels = _names(entry.get("channels"), f"{at}: channels", problems)
    staff = _names(entry.get("staff") or [], f"{at}: staff", problems)
    for channel in channels:
        if channel not in settings.channels:
            problems.append(f"{at}: channel {channel} is not in CIVICDESK_CHANNELS")
        elif channel in settings.escalate_to:
            problems.append(f"{at}: channel {channel} is a staff channel: list it under staff")
    for channel in staff:
        if channel not in settings.escalate_to:
            problems.append(f"{at}: staff channel {channel} is not in CIVICDESK_ESCALATE_TO")
    prefix = entry.get("prefix")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        problems.append(
            f"{at}: prefix {prefix!r} must be 1 to 4 of {REFERENCE_ALPHABET} (no 0, O, 1, I)"
        )
        prefix = ""
    environ = {
        env: str(entry[key]) for key, env in _CALENDAR_KEYS.items() if entry.get(key) is not None
    }
    try:
        # What an institution leaves out takes civicdesk's defaults, not another's hours.
        calendar = calendar_from_env(environ)
    except CalendarError as exc:
        problems.extend(f"{at}: {line}" for line in str(exc).splitlines())
        calendar = settings.calendar
    if knowledge is None:
        return None
    return Institution(
        name, dict(display), knowledge, tuple(channels), tuple(staff), calendar, prefix
    )


def _cross_checks(items: Sequence[Institution], settings: Settings, where: str) -> list[str]:
    problems: list[str] = []
    seen_names: set[str] = set()
    owner: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for item in items:
        if item.name in seen_names:
            problems.append(f"{where}: two institutions are named {item.name}")
        seen_names.add(item.name)
        for channel in (*item.channels, *item.staff):
            if channel in owner and owner[channel] != item.name:
                problems.append(
                    f"{where}: channel {channel} is in two institutions ({owner[channel]} and "
                    f"{item.name}): a channel belongs to exactly one"
                )
            owner.setdefault(channel, item.name)
        if item.prefix and item.prefix in prefixes:
            problems.append(
                f"{where}: prefix {item.prefix} is used by {prefixes[item.prefix]} and "
                f"{item.name}: reference codes would collide"
            )
        prefixes.setdefault(item.prefix, item.name)
    for channel in settings.channels:
        if channel not in owner:
            problems.append(
                f"{where}: channel {channel} (CIVICDESK_CHANNELS) belongs to no institution"
            )
    return problems


def _folder(value: Any, base: Path, at: str, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{at}: give the folder of its FAQ files")
        return None
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        folder = base / folder
    if not folder.is_dir():
        problems.append(f"{at}: folder {folder} not found")
        return None
    return folder


def _names(value: Any, at: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{at}: expected a list of channel names")
        return []
    return list(value)
