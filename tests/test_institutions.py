"""Institutions: the file's mistakes one line each, zero configuration as one institution, the
sample's two courts through `kb check` and `ask --institution`, and reference codes that
cannot collide between institutions."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

import bot.tickets.reference as reference
from bot.cli.main import main
from bot.cli.wiring import handoff_from_environment
from bot.config.institutions import load_institutions, parse_institutions
from bot.config.settings import ConfigError, Settings
from bot.gateway.institutions import InstitutionDesks, institution_handoff
from bot.tickets.handoff import Handoff, StaffChannel

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "institutions.yaml"


def _settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "CIVICDESK_CHANNELS": "webchat,weibo,weibo-district,staff-slack,staff-district",
            "CIVICDESK_ESCALATE_TO": "staff-slack,staff-district",
            **env,
        }
    )


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out)
    return status, out.getvalue()


def test_no_file_is_one_institution_with_every_channel_and_plain_codes() -> None:
    settings = _settings()
    institutions = load_institutions(settings, {})
    assert not institutions.configured
    [only] = institutions.items
    assert only.channels == ("webchat", "weibo", "weibo-district")
    assert only.staff == ("staff-slack", "staff-district")
    assert only.prefix == "" and institutions.of_channel("anything") is only


def test_the_sample_file_declares_two_courts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    institutions = load_institutions(_settings(), {"CIVICDESK_INSTITUTIONS": str(SAMPLE)})
    assert institutions.names == ("intermediate", "district")
    assert institutions.of_channel("weibo-district").name == "district"
    assert institutions.of_channel("staff-slack").name == "intermediate"
    district = institutions.named("district")
    assert district.title("zh") == "示例市滨江区人民法院" and district.prefix == "BJ"
    assert district.calendar.target != institutions.named("intermediate").calendar.target


def test_every_mistake_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    root = {
        "institutions": [
            {"name": "a", "knowledge": "a", "prefix": "AA", "channels": ["webchat", "nope"]},
            {"name": "b", "knowledge": "missing", "prefix": "AA", "channels": ["webchat"]},
            {"name": "c", "knowledge": "a", "prefix": "A0", "channels": ["weibo"]},
            {"name": "d", "knowledge": "a", "prefix": "DD", "channels": [], "staff": ["weibo"]},
        ]
    }
    settings = _settings(
        CIVICDESK_CHANNELS="webchat,weibo,weibo-district", CIVICDESK_ESCALATE_TO=""
    )
    with pytest.raises(ConfigError) as raised:
        parse_institutions(root, settings, base=tmp_path, where="f.yaml")
    lines = str(raised.value).splitlines()
    expected = [
        "f.yaml: a: channel nope is not in CIVICDESK_CHANNELS",
        f"f.yaml: b: knowledge: folder {tmp_path / 'missing'} not found",
        "f.yaml: c: prefix 'A0' must be 1 to 4 of",
        "f.yaml: d: staff channel weibo is not in CIVICDESK_ESCALATE_TO",
        "f.yaml: channel weibo-district (CIVICDESK_CHANNELS) belongs to no institution",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, (start, lines)
    assert len(lines) == len(expected) + 1  # and weibo in two institutions (c and d)
    assert any("channel weibo is in two institutions (c and d)" in line for line in lines)


def test_a_duplicate_prefix_is_named(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    root = {
        "institutions": [
            {"name": "a", "knowledge": "k", "prefix": "ZJ", "channels": ["webchat"]},
            {"name": "b", "knowledge": "k", "prefix": "ZJ", "channels": ["weibo"]},
        ]
    }
    settings = _settings(CIVICDESK_CHANNELS="webchat,weibo", CIVICDESK_ESCALATE_TO="")
    with pytest.raises(ConfigError, match="prefix ZJ is used by a and b"):
        parse_institutions(root, settings, base=tmp_path)


def test_kb_check_prints_one_line_per_institution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CIVICDESK_INSTITUTIONS", str(SAMPLE))
    status, out = _run("kb", "check")
    assert status == 0
    lines = out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["intermediate", "district"]
    assert "1 overrides: court-address" in lines[1] and "0 overrides" in lines[0]
    shared = sum(1 for p in (ROOT / "knowledge").glob("*.yaml") if not p.name.startswith("_"))
    assert shared == 13  # the shared folder's files, whose entries both courts serve


def test_ask_answers_as_each_court(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CIVICDESK_INSTITUTIONS", str(SAMPLE))
    answers = {}
    for name in ("intermediate", "district"):
        status, out = _run("ask", "--institution", name, "--json", "法院地址在哪里")
        assert status == 0
        answers[name] = json.loads(out)
    assert answers["district"]["override"] is True and "滨江区" in answers["district"]["reply"]
    assert answers["intermediate"]["override"] is False
    assert "人民路100号" in answers["intermediate"]["reply"]
    _, own = _run("ask", "--institution", "district", "--json", "小额诉讼怎么起诉")
    _, other = _run("ask", "--institution", "intermediate", "--json", "小额诉讼怎么起诉")
    assert json.loads(own)["entry_id"] == "district-small-claims"
    assert json.loads(other)["entry_id"] != "district-small-claims"
    assert _run("ask", "--institution", "nowhere", "x")[0] == 2


def test_ten_thousand_codes_of_two_institutions_never_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings()
    institutions = load_institutions(
        settings, {"CIVICDESK_INSTITUTIONS": str(SAMPLE)}, check_channels=False
    )
    base = Handoff(staff=(StaffChannel("staff-slack", "s"), StaffChannel("staff-district", "d")))
    handoffs = [institution_handoff(base, item) for item in institutions.items]
    assert [[s.name for s in h.staff] for h in handoffs] == [["staff-slack"], ["staff-district"]]
    # One-character random parts: the two institutions draw the same ones all the time, and
    # their codes still differ.
    monkeypatch.setattr(reference, "REFERENCE_LENGTH", 1)
    codes = [
        [reference.prefixed(h.reference_prefix, reference.new_reference()) for _ in range(5000)]
        for h in handoffs
    ]
    assert set(codes[0]).isdisjoint(codes[1])
    assert all(re.fullmatch(r"ZJ-[2-9A-Z]", c) for c in codes[0])
    assert all(re.fullmatch(r"BJ-[2-9A-Z]", c) for c in codes[1])
    assert {c[-1] for c in codes[0]} & {c[-1] for c in codes[1]}  # the random parts did meet


def _own_entry(answer: str) -> str:
    return (
        "topic: Own\nentries:\n  - id: office\n    questions:\n"
        f"      en: [where is the office]\n    answer:\n      en: {answer}\n"
    )


def test_each_institution_reloads_on_its_own(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shutil.copytree(ROOT / "tests" / "fixtures" / "kb" / "base", shared)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "own.yaml").write_text(_own_entry(f"Office {name}."), "utf-8")
    root = {
        "shared": "shared",
        "institutions": [
            {"name": "a", "knowledge": "a", "prefix": "AA", "channels": ["webchat"]},
            {"name": "b", "knowledge": "b", "prefix": "BB", "channels": ["weibo"]},
        ],
    }
    settings = _settings(CIVICDESK_CHANNELS="webchat,weibo", CIVICDESK_ESCALATE_TO="")
    desks = InstitutionDesks.build(
        settings, parse_institutions(root, settings, base=tmp_path), Handoff()
    )

    def answer(channel: str) -> str:
        return desks.route(channel)[0].respond("where is the office").text

    assert answer("webchat").startswith("Office a.") and answer("weibo").startswith("Office b.")
    (tmp_path / "a" / "own.yaml").write_text(_own_entry("Office a, moved."), "utf-8")
    assert desks.holders["a"].changed() and not desks.holders["b"].changed()
    assert desks.holders["a"].reload_now()
    assert answer("webchat").startswith("Office a, moved.")
    # A mistake in b's file keeps b's last good version serving, and a untouched.
    (tmp_path / "b" / "own.yaml").write_text("entries: [", "utf-8")
    assert not desks.holders["b"].reload_now()
    assert answer("weibo").startswith("Office b.") and desks.holders["b"].error
    # An edit of the shared folder is seen by every institution.
    (shared / "fees.yaml").write_text((shared / "fees.yaml").read_text("utf-8") + "\n", "utf-8")
    assert desks.holders["a"].changed() and desks.holders["b"].changed()


def test_the_ticket_commands_update_only_the_tickets_own_staff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`civicdesk tickets answer/close` post the ticket's update to its institution's staff."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "own.yaml").write_text(_own_entry(name), "utf-8")
    (tmp_path / "institutions.yaml").write_text(
        "institutions:\n"
        "  - {name: a, knowledge: a, prefix: AA, channels: [webchat], staff: [staff-a]}\n"
        "  - {name: b, knowledge: b, prefix: BB, channels: [weibo], staff: [staff-b]}\n",
        "utf-8",
    )
    environ = {
        "CIVICDESK_CHANNELS": "webchat,weibo,staff-a,staff-b",
        "CIVICDESK_ESCALATE_TO": "staff-a,staff-b",
        "CIVICDESK_INSTITUTIONS": str(tmp_path / "institutions.yaml"),
        "CIVICDESK_WEIBO_ACCESS_TOKEN": "t",
        "CIVICDESK_WEIBO_APP_SECRET": "s",
        "CIVICDESK_WEIBO_USER_ID": "1",
    }
    for staff in ("STAFF_A", "STAFF_B"):
        environ |= {
            f"CIVICDESK_{staff}_ADAPTER": "webhook",
            f"CIVICDESK_{staff}_SECRET": "x",
            f"CIVICDESK_{staff}_OUTBOUND_URL": "http://127.0.0.1:9/",
        }
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    handoff = handoff_from_environment(Settings.from_env(environ))
    assert [s.name for s in handoff.staff_for("webchat")] == ["staff-a"]
    assert [s.name for s in handoff.staff_for("weibo")] == ["staff-b"]
