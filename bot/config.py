"""Settings, read once from the environment (and `.env`), validated, and documented.

`SETTINGS` is the single table of every setting: the README's configuration table is checked
against it by a test, so a setting cannot exist without being documented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.policy import PolicyConfig


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and what it should hold."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _folder(value: str) -> Path:
    """A folder, "~" standing for the home directory as in a shell: CIVICDESK_KNOWLEDGE=~/faq."""
    return Path(value).expanduser()


def _language(value: str) -> str:
    if value not in ("zh", "en"):
        raise ValueError("must be zh or en")
    return value


_POLICY = PolicyConfig()

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CIVICDESK_KNOWLEDGE",
        "knowledge",
        "Folder of the FAQ YAML files (~ stands for the home directory).",
        _folder,
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
)


@dataclass(frozen=True)
class Settings:
    knowledge_path: Path
    default_lang: str
    policy: PolicyConfig

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values = {s.name: _read(s, environ) for s in SETTINGS}
        return cls(
            knowledge_path=values["CIVICDESK_KNOWLEDGE"],
            default_lang=values["CIVICDESK_DEFAULT_LANGUAGE"],
            policy=PolicyConfig(
                answer_threshold=values["CIVICDESK_ANSWER_THRESHOLD"],
                answer_margin=values["CIVICDESK_ANSWER_MARGIN"],
                clarify_threshold=values["CIVICDESK_CLARIFY_THRESHOLD"],
                clarify_band=values["CIVICDESK_CLARIFY_BAND"],
            ),
        )


def _read(setting: Setting, environ: Mapping[str, str]) -> Any:
    raw = environ.get(setting.name, "").strip() or setting.default
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.name}={raw!r} is not valid ({exc}): {setting.help}") from exc
