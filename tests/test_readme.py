"""The README and the settings reference are documentation people rely on: check them against
the code and the CI script.

- The configuration table of docs/settings.md lists exactly the settings of
  `bot.config.settings.SETTINGS`, with their defaults.
- The test command in "Test it" is the one `.ci/run` runs.
- `.env.example` lists every setting with its default.
- Every key every channel has, every adapter of `adapters.ADAPTERS` and every key of each adapter
  are in the tables under "Channels" of docs/settings.md, with their defaults and whether they
  are required.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from adapters import ADAPTERS
from bot.config.settings import CHANNEL_SETTINGS, SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SETTINGS_DOC = ROOT / "docs" / "settings.md"
CI_RUN = ROOT / ".ci" / "run"
ENV_EXAMPLE = ROOT / ".env.example"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def section(markdown: str, heading: str, document: str = "README.md") -> str:
    """The text under `## heading`, up to the next heading of level 2 or above."""
    lines = markdown.splitlines()
    start = None
    for number, line in enumerate(lines):
        if start is None:
            if line.strip() == f"## {heading}":
                start = number + 1
        elif re.match(r"#{1,2} ", line):
            return "\n".join(lines[start:number])
    if start is None:
        pytest.fail(f"{document} has no section '## {heading}'")
    return "\n".join(lines[start:])


def table_rows(text: str, header: list[str]) -> list[list[str]]:
    """The body rows of the first markdown table in `text` whose header is `header`."""
    lines = [line.strip() for line in text.splitlines()]
    for number, line in enumerate(lines):
        if line.startswith("|") and _cells(line) == header:
            rows = []
            for row in lines[number + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    pytest.fail(f"no table with the header {' | '.join(header)}")


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


NONE = "(none)"  # how the README writes an empty default


def _unquote(cell: str) -> str:
    text = cell.strip().strip("`").strip()
    return "" if text == NONE else text


def readme_settings() -> dict[str, str]:
    text = section(SETTINGS_DOC.read_text(encoding="utf-8"), "Configuration", "docs/settings.md")
    rows = table_rows(text, ["Variable", "Default", "Meaning"])
    names = [_unquote(row[0]) for row in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"documented more than once in docs/settings.md: {duplicates}"
    return {_unquote(row[0]): _unquote(row[1]) for row in rows}


def test_every_setting_is_documented_with_its_default() -> None:
    documented = readme_settings()
    for setting in SETTINGS:
        assert setting.name in documented, (
            f"{setting.name} is missing from the configuration table in docs/settings.md"
        )
        assert documented[setting.name] == setting.default, (
            f"docs/settings.md gives {setting.name} the default {documented[setting.name]!r}, "
            f"the code {setting.default!r}"
        )


def test_no_setting_is_documented_that_does_not_exist() -> None:
    unknown = set(readme_settings()) - {setting.name for setting in SETTINGS}
    assert not unknown, (
        f"docs/settings.md documents settings that bot/config/settings.py does not have: {unknown}"
    )


def ci_test_command() -> list[str]:
    script = CI_RUN.read_text(encoding="utf-8")
    found = re.findall(r"^TEST_COMMAND=\((.*)\)\s*$", script, re.MULTILINE)
    assert len(found) == 1, ".ci/run must define TEST_COMMAND=(...) exactly once"
    assert '"${TEST_COMMAND[@]}"' in script, ".ci/run defines TEST_COMMAND but does not run it"
    return shlex.split(found[0])


def readme_commands(heading: str) -> list[str]:
    """Every command in a section: the lines of its fenced blocks and its inline code spans."""
    text = section(README.read_text(encoding="utf-8"), heading)
    commands = [
        line.strip()
        for block in _FENCE.findall(text)
        for line in block.splitlines()
        if line.strip()
    ]
    return commands + _CODE_SPAN.findall(_FENCE.sub("", text))


def test_readme_test_command_is_the_ci_script() -> None:
    first_block = _FENCE.search(section(README.read_text(encoding="utf-8"), "Test it"))
    assert first_block is not None, "'Test it' in README.md has no command block"
    assert first_block.group(1).strip() == "bash .ci/run"
    assert CI_RUN.is_file()


def test_readme_and_ci_run_the_same_tests() -> None:
    expected = ci_test_command()
    assert "pytest" in expected
    mentioned = [shlex.split(c) for c in readme_commands("Test it") if "pytest" in c]
    assert mentioned, "'Test it' in README.md does not say which test command runs"
    for command in mentioned:
        assert command == expected, (
            f"README.md says {shlex.join(command)!r}, .ci/run runs {shlex.join(expected)!r}"
        )


def test_env_example_lists_every_setting_with_its_default() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert values == {setting.name: setting.default for setting in SETTINGS}


def test_every_channel_key_is_documented() -> None:
    rows = table_rows(
        section(SETTINGS_DOC.read_text(encoding="utf-8"), "Configuration", "docs/settings.md"),
        ["Key", "Default", "Meaning"],
    )
    documented = [_unquote(row[0]) for row in rows]
    assert documented == [setting.key for setting in CHANNEL_SETTINGS]


def test_every_adapter_and_its_keys_are_documented() -> None:
    rows = table_rows(
        section(SETTINGS_DOC.read_text(encoding="utf-8"), "Configuration", "docs/settings.md"),
        ["Adapter", "Key", "Required", "Default", "Meaning"],
    )
    documented_adapters = {_unquote(row[0]) for row in rows}
    missing = set(ADAPTERS) - documented_adapters
    assert not missing, f"adapters missing from docs/settings.md's adapter table: {sorted(missing)}"
    unknown = documented_adapters - set(ADAPTERS)
    assert not unknown, (
        f"docs/settings.md documents adapters that adapters.ADAPTERS lacks: {unknown}"
    )

    documented = {
        (_unquote(row[0]), _unquote(row[1])): (row[2].strip(), _unquote(row[3]), row[4])
        for row in rows
        if _unquote(row[1])
    }
    expected = {(name, s.key): s for name, spec in ADAPTERS.items() for s in spec.settings}
    assert set(documented) == set(expected), (
        f"README.md's adapter table and the adapters' settings differ: "
        f"undocumented {sorted(set(expected) - set(documented))}, "
        f"unknown {sorted(set(documented) - set(expected))}"
    )
    for key, setting in expected.items():
        required, default, meaning = documented[key]
        assert required == ("yes" if setting.required else "no"), f"{key}: Required column"
        assert default == setting.default, f"{key}: README default {default!r}"
        if setting.secret:
            assert meaning.strip().startswith("Secret"), f"{key} is secret: say so in README.md"
