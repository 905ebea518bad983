"""Settings as an operator meets them: safe defaults, values from the environment, a clear error
naming the variable, and every setting documented in docs/settings.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answering.policy import PolicyConfig
from bot.config.settings import SETTINGS, ConfigError, Settings

SETTINGS_DOC = Path(__file__).parents[1] / "docs" / "settings.md"


def test_defaults_without_any_environment() -> None:
    settings = Settings.from_env({})

    assert settings.knowledge_path == Path("knowledge")
    assert settings.default_lang == "zh"
    assert settings.policy == PolicyConfig()


def test_blank_values_fall_back_to_the_defaults() -> None:
    blank = {setting.name: "  " for setting in SETTINGS}

    assert Settings.from_env(blank) == Settings.from_env({})


def test_every_documented_default_is_itself_valid() -> None:
    for setting in SETTINGS:
        Settings.from_env({setting.name: setting.default})


def test_values_from_the_environment_are_used() -> None:
    settings = Settings.from_env(
        {
            "CIVICDESK_KNOWLEDGE": "/srv/faq",
            "CIVICDESK_DEFAULT_LANGUAGE": "en",
            "CIVICDESK_ANSWER_THRESHOLD": "0.7",
            "CIVICDESK_ANSWER_MARGIN": " 0.1 ",
            "CIVICDESK_CLARIFY_THRESHOLD": "0.4",
            "CIVICDESK_CLARIFY_BAND": "0",
        }
    )

    assert settings.knowledge_path == Path("/srv/faq")
    assert settings.default_lang == "en"
    assert settings.policy.answer_threshold == 0.7
    assert settings.policy.answer_margin == 0.1
    assert settings.policy.clarify_threshold == 0.4
    assert settings.policy.clarify_band == 0.0


def test_unrelated_environment_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "ANSWER_THRESHOLD": "abc"}) == Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CIVICDESK_ANSWER_THRESHOLD", "abc"),
        ("CIVICDESK_ANSWER_THRESHOLD", "1.5"),
        ("CIVICDESK_ANSWER_THRESHOLD", "62%"),
        ("CIVICDESK_ANSWER_MARGIN", "-0.1"),
        ("CIVICDESK_CLARIFY_THRESHOLD", "nan"),
        ("CIVICDESK_CLARIFY_BAND", "inf"),
        ("CIVICDESK_DEFAULT_LANGUAGE", "fr"),
        ("CIVICDESK_DEFAULT_LANGUAGE", "chinese"),
    ],
)
def test_an_invalid_value_is_an_error_naming_the_variable_and_the_value(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})

    message = str(error.value)
    assert name in message
    assert value in message


def test_the_error_says_what_the_setting_should_hold() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Settings.from_env({"CIVICDESK_ANSWER_THRESHOLD": "2"})
    with pytest.raises(ConfigError, match="zh or en"):
        Settings.from_env({"CIVICDESK_DEFAULT_LANGUAGE": "de"})


# Names that hosting platforms and tools already agree on keep their usual spelling.
CONVENTIONAL_NAMES = {"DATABASE_URL", "PORT"}


def test_every_setting_has_a_name_in_the_project_namespace_and_help() -> None:
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.name.startswith("CIVICDESK_") or setting.name in CONVENTIONAL_NAMES
        assert setting.help.strip()


def test_every_setting_is_in_the_settings_reference() -> None:
    assert SETTINGS_DOC.is_file(), "docs/settings.md is missing: it must document every setting"
    table_rows = [
        line
        for line in SETTINGS_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("|")
    ]
    undocumented = [
        setting.name
        for setting in SETTINGS
        if not any(re.search(rf"(?<![A-Z_]){setting.name}(?![A-Z_])", row) for row in table_rows)
    ]
    assert undocumented == [], (
        f"settings missing from docs/settings.md's configuration table: {undocumented}"
    )


def test_a_knowledge_folder_under_the_home_directory_can_be_written_with_a_tilde() -> None:
    settings = Settings.from_env({"CIVICDESK_KNOWLEDGE": "~/faq"})

    assert settings.knowledge_path == Path.home() / "faq"
