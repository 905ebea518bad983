"""What a staff editor sees when the FAQ files are right, and when they make one mistake.

Each test copies the valid base in tests/fixtures/kb/base/ into ./knowledge, makes one edit a
person could make, and checks the file, the line and the hint they would be shown.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.answering import knowledge_yaml
from bot.answering.knowledge import (
    CheckReport,
    KnowledgeError,
    Problem,
    check_knowledge,
    load_knowledge,
)
from tests.kb_support import TODAY, edit


def check(kb: Path) -> CheckReport:
    return check_knowledge(kb, today=TODAY)


def only_error(kb: Path) -> Problem:
    report = check(kb)
    assert report.knowledge is None
    assert len(report.errors) == 1, "\n".join(str(p) for p in report.errors)
    return report.errors[0]


def error_at(kb: Path, location: str) -> str:
    """The message of the only error, which must be at `location` ('file:line')."""
    error = only_error(kb)
    assert error.location == location, str(error)
    assert error.severity == "error"
    return error.message


# --- a valid base -------------------------------------------------------------------------------


def test_valid_base_loads_entries_questions_and_flags(kb: Path) -> None:
    knowledge = load_knowledge(kb)

    assert [e.id for e in knowledge.entries] == ["pay-court-fee", "refund-court-fee", "case-status"]
    assert knowledge.warnings == ()
    fee = knowledge.get("pay-court-fee")
    assert fee is not None
    assert fee.topic == "Fees and payment"
    assert fee.questions == {
        "zh": ("如何缴纳诉讼费？", "诉讼费在哪里交"),
        "en": ("How do I pay the court fee?", "Where can I pay litigation costs?"),
    }
    assert fee.answer["en"] == "Pay online or at the litigation service centre."
    assert fee.short == {"zh": "诉讼费可网上缴纳或到诉讼服务中心窗口缴纳，详见链接。"}
    assert fee.link == "https://court.example.gov/fees"
    assert (fee.public, fee.escalate) == (True, False)
    assert fee.valid_until == date(2099, 6, 30)
    assert fee.owner == "litigation-service-centre"
    assert fee.source == "Measures on the Payment of Litigation Costs, art. 20"
    assert (fee.file, fee.line) == ("knowledge/fees.yaml", 3)

    refund = knowledge.get("refund-court-fee")
    assert refund is not None
    assert refund.questions["en"] == ("Can I get my court fee back?",)
    assert (refund.public, refund.escalate, refund.link, refund.short) == (True, False, None, {})

    status = knowledge.get("case-status")
    assert status is not None
    assert (status.topic, status.public, status.escalate) == (
        "Hearings and case status",
        False,
        True,
    )
    assert (status.file, status.line) == ("knowledge/hearings.yaml", 3)
    assert knowledge.get("no-such-entry") is None


def test_synonyms_are_stored_folded_variant_to_canonical(kb: Path) -> None:
    (kb / "_synonyms.yaml").write_text(
        "zh:\n  诉讼费: [訴訟費用, 案件受理费]\n"
        "en:\n  Court Fee: [Litigation Cost, ＦＩＬＩＮＧ ＦＥＥ]\n",
        encoding="utf-8",
    )

    knowledge = load_knowledge(kb)

    assert knowledge.synonyms == {
        "zh": {"诉讼费用": "诉讼费", "案件受理费": "诉讼费"},
        "en": {"litigation cost": "court fee", "filing fee": "court fee"},
    }


# --- the folder ---------------------------------------------------------------------------------


def test_missing_folder_tells_to_set_civicdesk_knowledge(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(tmp_path / "nowhere")

    [problem] = raised.value.problems
    assert problem.location == str(tmp_path / "nowhere")
    assert "not found" in problem.message
    assert "CIVICDESK_KNOWLEDGE" in problem.message


def test_folder_without_topic_files_tells_to_set_civicdesk_knowledge(kb: Path) -> None:
    (kb / "fees.yaml").unlink()
    (kb / "hearings.yaml").unlink()

    message = error_at(kb, "knowledge")

    assert "no .yaml topic files" in message
    assert "CIVICDESK_KNOWLEDGE" in message


def test_underscore_and_yml_files_are_not_read_and_say_so(kb: Path) -> None:
    (kb / "_draft.yaml").write_text("this: [is not, read\n", encoding="utf-8")
    (kb / "extra.yml").write_text("topic: Extra\n", encoding="utf-8")

    report = check(kb)

    assert report.knowledge is not None
    assert [(w.location, w.severity) for w in report.warnings] == [
        ("knowledge/_draft.yaml", "warning"),
        ("knowledge/extra.yml", "warning"),
    ]
    assert "remove the '_'" in report.warnings[0].message
    assert "rename it extra.yaml" in report.warnings[1].message


def test_every_error_in_every_file_is_reported_at_once(kb: Path) -> None:
    edit(kb, "fees.yaml", "  en: Pay online or", "  en: Note: pay online or")
    edit(kb, "hearings.yaml", "    escalate: true", "    escalte: true")

    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(kb)

    problems = raised.value.problems
    assert [p.location for p in problems] == [
        "knowledge/fees.yaml:11",
        "knowledge/hearings.yaml:11",
    ]
    assert "knowledge/fees.yaml:11: error: this is not valid YAML" in str(raised.value)
    assert "did you mean 'escalate'?" in problems[1].message


def test_a_file_not_saved_as_utf8_is_named(kb: Path) -> None:
    (kb / "gbk.yaml").write_bytes("topic: 费用\nentries: []\n".encode("gbk"))

    message = error_at(kb, "knowledge/gbk.yaml:1")

    assert "save it again as UTF-8" in message


# --- YAML syntax --------------------------------------------------------------------------------


def test_colon_inside_unquoted_text_says_put_it_in_quotes(kb: Path) -> None:
    edit(kb, "fees.yaml", "  en: Pay online or", "  en: Note: pay online or")

    message = error_at(kb, "knowledge/fees.yaml:11")

    assert "colon" in message
    assert "put the text in quotes" in message


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML is built without libyaml")
def test_question_mark_inside_a_bracket_list_loads_with_libyaml(kb: Path) -> None:
    edit(
        kb,
        "fees.yaml",
        '["Can I get my court fee back?"]',
        "[Can I get my court fee back?, Refund?]",
    )

    entry = load_knowledge(kb).get("refund-court-fee")

    assert entry is not None
    assert entry.questions["en"] == ("Can I get my court fee back?", "Refund?")


def test_question_mark_inside_a_bracket_list_without_libyaml_says_put_it_in_quotes(
    kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML's own scanner ends an unquoted text at '?' inside [ ].
    monkeypatch.setattr(knowledge_yaml, "LOADER", yaml.SafeLoader)
    edit(kb, "fees.yaml", '["Can I get my court fee back?"]', "[Can I get my court fee back?]")

    message = error_at(kb, "knowledge/fees.yaml:23")

    assert "must be in quotes" in message
    assert "on its own line starting with '- '" in message


def test_unclosed_bracket_names_the_line_where_the_list_starts(kb: Path) -> None:
    edit(kb, "fees.yaml", "[怎样申请退还诉讼费]", "[怎样申请退还诉讼费")

    message = error_at(kb, "knowledge/fees.yaml:23")

    assert "a list in [ ] or { } is broken" in message
    assert "(the list starts on line 22)" in message


def test_unclosed_quote_points_at_where_the_quote_opens(kb: Path) -> None:
    edit(kb, "fees.yaml", '["Can I get my court fee back?"]', '["Can I get my court fee back?]')

    message = error_at(kb, "knowledge/fees.yaml:23")

    assert "not closed" in message


def test_tab_in_indentation_says_use_spaces(kb: Path) -> None:
    edit(kb, "fees.yaml", "    link: https", "\tlink: https")

    message = error_at(kb, "knowledge/fees.yaml:14")

    assert "tab" in message
    assert "spaces" in message


# --- the shape of a file ------------------------------------------------------------------------


def test_top_level_must_be_topic_and_entries(kb: Path) -> None:
    (kb / "misc.yaml").write_text("- id: lost-entry\n", encoding="utf-8")

    message = error_at(kb, "knowledge/misc.yaml:1")

    assert "must start with 'topic: <name>'" in message


def test_empty_file_is_an_error(kb: Path) -> None:
    (kb / "misc.yaml").write_text("# to do\n", encoding="utf-8")

    message = error_at(kb, "knowledge/misc.yaml")

    assert "the file is empty" in message


def test_missing_topic(kb: Path) -> None:
    edit(kb, "hearings.yaml", "topic: Hearings and case status\n", "")

    message = error_at(kb, "knowledge/hearings.yaml:1")

    assert "missing topic" in message


def test_entries_not_a_list_says_start_each_entry_with_a_dash(kb: Path) -> None:
    (kb / "misc.yaml").write_text(
        "topic: Misc\nentries:\n  id: lost-entry\n  questions:\n    en: [Where]\n",
        encoding="utf-8",
    )

    message = error_at(kb, "knowledge/misc.yaml:3")

    assert "entries must be a list" in message
    assert "'- id:'" in message


def test_misspelt_file_key_suggests_the_right_one(kb: Path) -> None:
    edit(kb, "hearings.yaml", "entries:", "entires:")

    message = error_at(kb, "knowledge/hearings.yaml:2")

    assert message == "unknown key 'entires': did you mean 'entries'?"


# --- keys and languages in an entry -------------------------------------------------------------


def test_misspelt_entry_key_suggests_the_right_one_and_nothing_else(kb: Path) -> None:
    edit(kb, "fees.yaml", "    answer:\n      zh: 案件结案", "    anwser:\n      zh: 案件结案")

    message = error_at(kb, "knowledge/fees.yaml:24")

    assert message == "unknown key 'anwser': did you mean 'answer'?"


def test_unknown_entry_key_without_a_close_match_lists_the_allowed_keys(kb: Path) -> None:
    edit(kb, "hearings.yaml", "    public: false", "    colour: red\n    public: false")

    message = error_at(kb, "knowledge/hearings.yaml:10")

    assert "unknown key 'colour'" in message
    assert "id, questions, answer, short, link" in message


def test_unknown_language_under_questions_suggests_zh(kb: Path) -> None:
    edit(kb, "hearings.yaml", "      zh: [我的案件", "      cn: [我的案件")

    message = error_at(kb, "knowledge/hearings.yaml:5")

    assert message == "unknown language 'cn' under questions: did you mean 'zh'?"


def test_unknown_language_under_answer_suggests_en(kb: Path) -> None:
    edit(kb, "hearings.yaml", "      en: A member", "      eng: A member")

    message = error_at(kb, "knowledge/hearings.yaml:9")

    assert message == "unknown language 'eng' under answer: did you mean 'en'?"


def test_entry_key_indented_into_short_says_line_it_up(kb: Path) -> None:
    edit(kb, "fees.yaml", "    link: https", "      link: https")

    message = error_at(kb, "knowledge/fees.yaml:14")

    assert "unknown language 'link' under short" in message
    assert "line it up with 'short'" in message


def test_key_written_twice_names_the_first(kb: Path) -> None:
    edit(kb, "fees.yaml", "    public: true\n", "    public: true\n    public: false\n")

    message = error_at(kb, "knowledge/fees.yaml:16")

    assert message == "'public' appears twice in this entry (first at line 15): keep only one"


# --- ids ----------------------------------------------------------------------------------------


def test_missing_id(kb: Path) -> None:
    edit(kb, "hearings.yaml", "  - id: case-status\n    questions:", "  - questions:")

    message = error_at(kb, "knowledge/hearings.yaml:3")

    assert "missing id" in message
    assert "pay-court-fee" in message  # the example of what an id looks like


def test_id_not_kebab_case_suggests_a_fixed_id(kb: Path) -> None:
    edit(kb, "hearings.yaml", "id: case-status", "id: Case_Status")

    message = error_at(kb, "knowledge/hearings.yaml:3")

    assert "lowercase words joined by hyphens" in message
    assert "try 'case-status'" in message


def test_duplicate_id_across_files_names_both_places(kb: Path) -> None:
    edit(kb, "hearings.yaml", "id: case-status", "id: pay-court-fee")

    message = error_at(kb, "knowledge/hearings.yaml:3")

    assert "id 'pay-court-fee' is already used at knowledge/fees.yaml:3" in message
    assert "new id" in message


# --- questions and answers ----------------------------------------------------------------------


def test_missing_questions(kb: Path) -> None:
    edit(
        kb,
        "hearings.yaml",
        "    questions:\n      zh: [我的案件进展到哪一步了]\n"
        "      en: [What is the status of my case]\n",
        "",
    )

    message = error_at(kb, "knowledge/hearings.yaml:3")

    assert "missing questions" in message


def test_questions_in_a_language_without_answer_in_it(kb: Path) -> None:
    edit(
        kb,
        "hearings.yaml",
        "      en: A member of staff will look up your case; please message us privately.\n",
        "",
    )

    message = error_at(kb, "knowledge/hearings.yaml:6")

    assert message == ("there are questions in en but no answer in en: add 'answer: en: ...'")


def test_empty_question_in_a_dash_list(kb: Path) -> None:
    edit(kb, "fees.yaml", "        - Where can I pay litigation costs?", "        -")

    message = error_at(kb, "knowledge/fees.yaml:8")

    assert "empty question in the en list" in message


def test_empty_question_in_a_bracket_list(kb: Path) -> None:
    edit(kb, "hearings.yaml", "[我的案件进展到哪一步了]", "[我的案件进展到哪一步了, '']")

    message = error_at(kb, "knowledge/hearings.yaml:5")

    assert "empty question in the zh list" in message


def test_questions_not_a_list(kb: Path) -> None:
    edit(
        kb,
        "hearings.yaml",
        "en: [What is the status of my case]",
        "en: What is the status of my case",
    )

    message = error_at(kb, "knowledge/hearings.yaml:6")

    assert "the questions in en must be a list" in message


def test_questions_not_grouped_by_language(kb: Path) -> None:
    edit(
        kb,
        "fees.yaml",
        "    questions:\n      zh: [怎样申请退还诉讼费]\n"
        '      en: ["Can I get my court fee back?"]',
        "    questions: [怎样申请退还诉讼费]",
    )

    message = error_at(kb, "knowledge/fees.yaml:21")

    assert "questions must be given per language" in message


# --- dates, lengths, flags, links ---------------------------------------------------------------


@pytest.mark.parametrize("written", ["30/06/2099", "2099-6-30", "next year"])
def test_valid_until_not_a_date(kb: Path, written: str) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", f"valid_until: {written}")

    message = error_at(kb, "knowledge/fees.yaml:17")

    assert "YYYY-MM-DD" in message


@pytest.mark.parametrize("written", ["2099-02-30", '"2099-02-30"'])
def test_valid_until_impossible_date(kb: Path, written: str) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", f"valid_until: {written}")

    message = error_at(kb, "knowledge/fees.yaml:17")

    assert message.startswith("valid_until 2099-02-30 is not a real date")


def test_valid_until_in_quotes_is_read_as_a_date(kb: Path) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", 'valid_until: "2099-06-30"')

    entry = load_knowledge(kb).get("pay-court-fee")

    assert entry is not None and entry.valid_until == date(2099, 6, 30)


def test_short_answer_over_140_chinese_characters(kb: Path) -> None:
    edit(
        kb,
        "fees.yaml",
        "      zh: 诉讼费可网上缴纳或到诉讼服务中心窗口缴纳，详见链接。",
        "      zh: " + "费" * 141,
    )

    message = error_at(kb, "knowledge/fees.yaml:13")

    assert "141 characters as Weibo counts them" in message
    assert "140 or fewer" in message


def test_short_answer_of_281_ascii_characters_counts_141(kb: Path) -> None:
    edit(kb, "fees.yaml", "    link:", "      en: " + "a" * 281 + "\n    link:")

    message = error_at(kb, "knowledge/fees.yaml:14")

    assert "the short answer in en is 141 characters" in message


def test_short_answers_that_just_fit_load(kb: Path) -> None:
    edit(
        kb,
        "fees.yaml",
        "      zh: 诉讼费可网上缴纳或到诉讼服务中心窗口缴纳，详见链接。",
        "      zh: " + "费" * 140,
    )
    edit(kb, "fees.yaml", "    link:", "      en: " + "a" * 280 + "\n    link:")

    assert check(kb).errors == []


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("public: true", "public: maybe", 15),
        ("escalate: false", 'escalate: "false"', 16),
        ("escalate: false", "escalate: 0", 16),
    ],
)
def test_flags_must_be_true_or_false(kb: Path, old: str, new: str, line: int) -> None:
    edit(kb, "fees.yaml", old, new)

    message = error_at(kb, f"knowledge/fees.yaml:{line}")

    assert "must be true or false" in message


@pytest.mark.parametrize("link", ["court.example.gov/fees", "ftp://court.example.gov/fees"])
def test_link_must_be_a_web_address(kb: Path, link: str) -> None:
    edit(kb, "fees.yaml", "link: https://court.example.gov/fees", f"link: {link}")

    message = error_at(kb, "knowledge/fees.yaml:14")

    assert "starting with https://" in message


# --- near duplicates, expiry --------------------------------------------------------------------


def test_near_duplicate_english_phrasings_warn_with_both_entries(kb: Path) -> None:
    edit(
        kb,
        "hearings.yaml",
        "en: [What is the status of my case]",
        "en: [What is the status of my case, how do I pay the court fees]",
    )

    knowledge = load_knowledge(kb)  # a warning does not stop loading

    [warning] = knowledge.warnings
    assert warning.location == "knowledge/hearings.yaml:6"
    assert warning.severity == "warning"
    for part in (
        "'pay-court-fee'",
        "'case-status'",
        "'How do I pay the court fee?' (knowledge/fees.yaml:7)",
        "'how do I pay the court fees' (knowledge/hearings.yaml:6)",
    ):
        assert part in warning.message


def test_word_order_does_not_hide_a_near_duplicate(kb: Path) -> None:
    edit(kb, "hearings.yaml", "[What is the status of my case]", "[the court fee how do I pay]")

    [warning] = check(kb).warnings

    assert "'pay-court-fee' and 'case-status'" in warning.message


def test_near_duplicate_chinese_phrasings_warn(kb: Path) -> None:
    edit(
        kb,
        "hearings.yaml",
        "[我的案件进展到哪一步了]",
        "[我的案件进展到哪一步了, 诉讼费在哪里交呢]",
    )

    [warning] = check(kb).warnings

    assert warning.location == "knowledge/hearings.yaml:5"
    assert "'诉讼费在哪里交' (knowledge/fees.yaml:5)" in warning.message
    assert "'诉讼费在哪里交呢' (knowledge/hearings.yaml:5)" in warning.message


def test_close_phrasings_within_one_entry_are_fine(kb: Path) -> None:
    edit(kb, "fees.yaml", "- Where can I pay litigation costs?", "- How do I pay the court fees?")

    assert check(kb).warnings == []


def test_near_duplicates_found_among_many_phrasings(kb: Path) -> None:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = ["topic: Many", "entries:"]
    for number in range(600):
        word = "".join(rng.choice(letters) for _ in range(24))
        lines += [
            f"  - id: many-{number}",
            f"    questions: {{en: [what about {word}]}}",
            "    answer: {en: Something.}",
        ]
    lines[-2] = "    questions: {en: [Where can I pay litigation costs]}"
    (kb / "many.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    warnings = check(kb).warnings

    assert len(warnings) == 1
    assert "'pay-court-fee' and 'many-599'" in warnings[0].message


def test_expired_entries_load_and_are_listed(kb: Path) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", "valid_until: 2026-01-14")

    report = check(kb)

    assert report.knowledge is not None
    assert [e.id for e in report.expired] == ["pay-court-fee"]
    assert report.knowledge.get("pay-court-fee") is not None


def test_entry_valid_until_today_is_not_expired(kb: Path) -> None:
    edit(kb, "fees.yaml", "valid_until: 2099-06-30", "valid_until: 2026-01-15")

    assert check(kb).expired == []


# --- synonyms -----------------------------------------------------------------------------------


def test_variant_under_two_terms_names_both_lines(kb: Path) -> None:
    (kb / "_synonyms.yaml").write_text(
        "zh:\n  诉讼费: [诉讼费用, 案件受理费]\n  受理费: [案件受理费]\n", encoding="utf-8"
    )

    message = error_at(kb, "knowledge/_synonyms.yaml:3")

    assert "'案件受理费' is already a variant of '诉讼费' (line 2)" in message


def test_synonyms_not_term_to_variants(kb: Path) -> None:
    (kb / "_synonyms.yaml").write_text(
        "zh:\n  诉讼费: [诉讼费用]\nen: [court fee, filing fee]\n", encoding="utf-8"
    )

    message = error_at(kb, "knowledge/_synonyms.yaml:3")

    assert "the synonyms in en must be 'term: [variant, variant]' lines" in message


def test_synonym_variants_not_a_list(kb: Path) -> None:
    (kb / "_synonyms.yaml").write_text("en:\n  court fee: filing fee\n", encoding="utf-8")

    message = error_at(kb, "knowledge/_synonyms.yaml:2")

    assert "the variants of 'court fee' must be a list" in message


def test_synonyms_unknown_language(kb: Path) -> None:
    (kb / "_synonyms.yaml").write_text("english:\n  court fee: [filing fee]\n", encoding="utf-8")

    message = error_at(kb, "knowledge/_synonyms.yaml:1")

    assert "did you mean 'en'?" in message
