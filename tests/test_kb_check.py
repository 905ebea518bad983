"""`civicdesk kb check`: the exact text a staff editor reads, and the exit status."""

from __future__ import annotations

import io
from pathlib import Path

from bot.answering.kb_check import run_kb_check
from tests.kb_support import TODAY, edit


def kb_check(kb: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_kb_check(kb, out, today=TODAY)
    return status, out.getvalue().splitlines()


def test_valid_knowledge_prints_one_summary_line_and_succeeds(kb: Path) -> None:
    assert kb_check(kb) == (0, ["knowledge OK: 3 entries in 2 files, 0 warnings, 0 expired"])


def test_errors_are_listed_with_file_and_line_and_the_check_fails(kb: Path) -> None:
    edit(kb, "fees.yaml", "    answer:\n      zh: 案件结案", "    anwser:\n      zh: 案件结案")
    edit(kb, "hearings.yaml", "id: case-status", "id: pay-court-fee")

    assert kb_check(kb) == (
        1,
        [
            "knowledge/fees.yaml:24: unknown key 'anwser': did you mean 'answer'?",
            "knowledge/hearings.yaml:3: id 'pay-court-fee' is already used at "
            "knowledge/fees.yaml:3: give this entry a new id (an id is never reused)",
            "knowledge has 2 errors, 0 warnings",
        ],
    )


def test_warnings_and_expired_entries_are_listed_but_the_check_succeeds(kb: Path) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", "valid_until: 2025-12-31")
    edit(
        kb,
        "hearings.yaml",
        "[我的案件进展到哪一步了]",
        "[我的案件进展到哪一步了, 诉讼费在哪里交呢]",
    )

    status, lines = kb_check(kb)

    assert status == 0
    assert len(lines) == 3
    assert lines[0].startswith(
        "knowledge/hearings.yaml:5: warning: entries 'pay-court-fee' and 'case-status' have zh "
        "phrasings too close for the matcher to tell apart"
    )
    assert lines[1:] == [
        "expired: pay-court-fee (valid until 2025-12-31) knowledge/fees.yaml:3",
        "knowledge OK: 3 entries in 2 files, 1 warning, 1 expired",
    ]


def test_missing_folder_says_which_setting_to_change(tmp_path: Path) -> None:
    status, lines = kb_check(tmp_path / "nowhere")

    assert status == 1
    assert lines == [
        f"{tmp_path / 'nowhere'}: knowledge folder not found: set CIVICDESK_KNOWLEDGE to the "
        "folder that holds the FAQ .yaml files",
        "knowledge has 1 error, 0 warnings",
    ]
