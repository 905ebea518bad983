"""FAQ drafts from answered escalations: the draft must pass `kb check` once pasted.

Each round trip copies the sample knowledge base (`knowledge/`) into tmp_path, pastes the draft
where it says it goes, and runs the real checker on the result.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.answering.desk import match_docs
from bot.answering.knowledge import CheckReport, Entry, KnowledgeBase, check_knowledge
from bot.answering.knowledge_schema import SHORT_LIMIT
from bot.answering.matcher import Matcher
from bot.platform.lengths import weibo_length
from bot.tickets.faq_draft import (
    FaqDraft,
    Group,
    draft_entry,
    render_draft,
    render_groups,
    similar_groups,
    ticket_hint,
)
from bot.tickets.reference import candidate_records

SAMPLE = Path(__file__).resolve().parents[1] / "knowledge"
TODAY = date(2026, 1, 15)

LONG_ZH = (
    "可以。诉讼服务中心一楼收费窗口支持银联信用卡刷卡缴纳诉讼费，但不收取现金。"
    "刷卡时请携带《交纳诉讼费用通知书》和本人身份证件；代他人缴纳的，还须提供当事人的授权委托书。"
    "信用卡缴费不收取手续费，缴费成功后系统会生成财政电子票据并以短信发送下载链接。"
    "如刷卡失败，可改用扫描通知书上的二维码在线缴纳，或到银行柜台转账至法院诉讼费专户，"
    "转账时请在附言中注明案号和缴费码，以便核对。"
)
LONG_EN = (
    "Yes. The cashier window on the ground floor of the Litigation Service Centre takes cash "
    "from 9:00 to 16:30 on working days. Bring the payment notice and your ID card; if you pay "
    "for someone else, also bring their signed authorisation. Please bring the exact amount if "
    "you can, as the window keeps little change. You get a receipt at once, and the official "
    "e-receipt is sent by text message within one working day."
)


@pytest.fixture(scope="module")
def sample() -> KnowledgeBase:
    report = check_knowledge(SAMPLE, today=TODAY)
    assert report.knowledge is not None, report.errors
    return report.knowledge


@pytest.fixture(scope="module")
def sample_matcher(sample: KnowledgeBase) -> Matcher:
    return Matcher(match_docs(sample), sample.synonyms)


@pytest.fixture
def kb_copy(tmp_path: Path) -> tuple[Path, KnowledgeBase]:
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE, folder)
    report = check_knowledge(folder, today=TODAY)
    assert report.knowledge is not None and not report.warnings
    return folder, report.knowledge


def ticket_candidates(matcher: Matcher, question: str) -> list[dict[str, Any]]:
    """The candidates as the desk stores them on an escalation."""
    return candidate_records(matcher.rank(question, limit=5))


def paste(draft: FaqDraft) -> None:
    """What staff do: append the entry to the file's entries, or create the new file."""
    path = Path(draft.topic_file)
    if draft.new_file:
        assert not path.exists()
        path.write_text(draft.file_text, encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + "\n\n" + draft.yaml, encoding="utf-8")


def pasted(draft: FaqDraft) -> tuple[Entry, CheckReport]:
    """Paste the draft and check the folder: no error, and the entry reads back as drafted."""
    paste(draft)
    folder = Path(draft.topic_file).parent
    report = check_knowledge(folder, today=TODAY)
    assert report.errors == [], "\n".join(map(str, report.errors)) + "\n" + draft.yaml
    assert report.knowledge is not None
    for warning in report.warnings:  # acceptable, but shown with -rA / on failure
        print(f"kb check warning: {warning}")
    assert all("too close for the matcher" in w.message for w in report.warnings)
    entry = report.knowledge.get(draft.entry_id)
    assert entry is not None
    assert entry.file == draft.topic_file
    return entry, report


def draft_for(
    kb: KnowledgeBase,
    question: str,
    answer: str,
    *,
    candidates: Sequence[Mapping[str, Any]] | None = None,
    follow_ups: Sequence[str] = (),
) -> FaqDraft:
    if candidates is None:
        matcher = Matcher(match_docs(kb), kb.synonyms)
        candidates = ticket_candidates(matcher, question)
    return draft_entry(
        question,
        answer,
        follow_ups=follow_ups,
        candidates=candidates,
        knowledge=kb,
        today=TODAY,
    )


# --- the key acceptance: the draft passes kb check once pasted ----------------------------------


def test_chinese_ticket_goes_to_the_topic_of_its_best_candidate(
    kb_copy: tuple[Path, KnowledgeBase],
) -> None:
    folder, kb = kb_copy
    draft = draft_for(kb, "可以用信用卡交诉讼费吗？", "可以，一楼收费窗口支持信用卡刷卡缴纳。")
    assert draft.topic_file == str(folder / "fees.yaml")
    assert draft.topic == "Fees and payment"
    assert not draft.new_file
    assert draft.lang == "zh"
    assert draft.entry_id == "faq-fees-20260115-1"
    assert "'pay-court-fee'" in draft.reason
    entry, _ = pasted(draft)
    assert entry.questions == {"zh": ("可以用信用卡交诉讼费吗？",)}
    assert entry.answer == {"zh": "可以，一楼收费窗口支持信用卡刷卡缴纳。"}
    assert entry.short == {}
    assert entry.owner is None and entry.source is None  # the schema does not require them


def test_english_ticket_gets_an_id_from_its_words(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    folder, kb = kb_copy
    draft = draft_for(
        kb,
        "Can I pay the court fee in cash?",
        "Yes, the cashier window on the ground floor takes cash.",
        follow_ups=["can i pay court fees with cash", "Can I pay the court fee in cash?"],
    )
    assert draft.topic_file == str(folder / "fees.yaml")
    assert draft.entry_id == "pay-court-fee-cash"
    assert draft.lang == "en"
    entry, _ = pasted(draft)
    # The follow-up is a second phrasing; the repeated question is not written twice.
    assert entry.questions == {
        "en": ("Can I pay the court fee in cash?", "can i pay court fees with cash")
    }


def test_the_entry_is_indented_as_in_the_topic_files(sample: KnowledgeBase) -> None:
    draft = draft_for(sample, "Can I pay the court fee in cash?", "Yes.")
    assert draft.yaml == (
        "  - id: pay-court-fee-cash\n"
        "    questions:\n"
        "      en:\n"
        "        - Can I pay the court fee in cash?\n"
        "    answer:\n"
        "      en: Yes.\n"
    )


NASTY_QUESTIONS = [
    "- key: value # not a comment",
    "@court_bot: 'single' and \"double\" quotes {braces} [brackets] & *star !tag %pct `tick`",
    "what about: this? # and this\nand a second line\twith a tab",
    "? is this a key",
    "yes",
    "null",
    "2026-01-15",
    "| looks like a block",
    "> looks folded",
    "诉讼费：怎么交？#急#",
]
NASTY_ANSWER = (
    "- First: bring the notice.\r\n"
    "# Then: pay at window 3 {or online}.   \r\n"
    "\r\n"
    "Questions? Write to info@court.example.gov, 'quoted' \"text\" & more: 100% sure.\n"
    "  indented line: stays"
)


@pytest.mark.parametrize("question", NASTY_QUESTIONS)
def test_yaml_special_characters_survive_the_round_trip(
    kb_copy: tuple[Path, KnowledgeBase], question: str
) -> None:
    _, kb = kb_copy
    draft = draft_for(kb, question, NASTY_ANSWER)
    entry, _ = pasted(draft)
    expected = " ".join(question.split())
    if expected.startswith("@court_bot: "):  # whom the message was addressed to is dropped
        expected = expected.removeprefix("@court_bot: ")
    (phrasings,) = entry.questions.values()
    assert phrasings == (expected,)
    (answer,) = entry.answer.values()
    assert answer == (
        "- First: bring the notice.\n"
        "# Then: pay at window 3 {or online}.\n"
        "\n"
        "Questions? Write to info@court.example.gov, 'quoted' \"text\" & more: 100% sure.\n"
        "  indented line: stays"
    )
    # And it reads back as the very same data with plain PyYAML.
    data = yaml.safe_load("entries:\n" + draft.yaml)
    assert data["entries"][0]["id"] == draft.entry_id


def test_unusual_unicode_round_trips(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    _, kb = kb_copy
    question = "诉讼费\u200b能用数字人民币🇨🇳交吗\u00a0？"
    answer = "可以\u2028（见通知书）😀 \x85 结束"
    entry, _ = pasted(draft_for(kb, question, answer))
    assert entry.questions["zh"] == (" ".join(question.split()),)
    assert entry.answer["zh"] == "可以\n（见通知书）😀\n 结束"


def test_long_answer_gets_a_short_version_for_weibo(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    _, kb = kb_copy
    assert weibo_length(LONG_ZH) > SHORT_LIMIT
    draft = draft_for(kb, "诉讼费可以刷信用卡吗", LONG_ZH)
    assert any("short" in note for note in draft.notes)
    entry, _ = pasted(draft)
    assert entry.answer["zh"] == LONG_ZH
    assert 0 < weibo_length(entry.short["zh"]) <= SHORT_LIMIT
    assert LONG_ZH.startswith(entry.short["zh"].removesuffix("…"))


def test_long_english_answer_gets_a_short_version(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    _, kb = kb_copy
    assert weibo_length(LONG_EN) > SHORT_LIMIT
    draft = draft_for(kb, "Can I pay the court fee in cash at the window?", LONG_EN)
    entry, _ = pasted(draft)
    assert 0 < weibo_length(entry.short["en"]) <= SHORT_LIMIT
    # Cut at a sentence: the composer's own rule.
    assert entry.short["en"].endswith(".…") or entry.short["en"].endswith(".")


def test_a_short_answer_gets_no_short_version(sample: KnowledgeBase) -> None:
    draft = draft_for(sample, "诉讼费可以刷信用卡吗", "可以。" * 40)  # exactly 120 on Weibo
    assert "short:" not in draft.yaml


def test_unrelated_question_suggests_a_new_topic_file(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    folder, kb = kb_copy
    draft = draft_for(kb, "法院食堂对外开放吗？", "食堂仅供工作人员使用，不对外开放。")
    assert draft.new_file
    assert draft.topic_file == str(folder / "new-topic.yaml")
    assert draft.entry_id == "faq-20260115-1"
    assert draft.file_text.startswith("topic: New topic (rename me)\nentries:\n  - id: ")
    assert "no entry is close" in draft.reason
    entry, report = pasted(draft)
    assert entry.topic == "New topic (rename me)"
    assert str(folder / "new-topic.yaml") in report.files


def test_unrelated_english_question_is_not_forced_into_a_topic(sample: KnowledgeBase) -> None:
    # The matcher gives this 0.43 in address.yaml: English stop words and trigrams overlap a bit
    # with everything, but no two of the best entries agree on a file.
    draft = draft_for(sample, "What is the weather tomorrow", "We cannot tell; ask the weather.")
    assert draft.new_file
    assert draft.entry_id == "weather-tomorrow"


def test_close_english_question_without_candidates_uses_the_matcher(
    sample: KnowledgeBase,
) -> None:
    draft = draft_for(
        sample, "Where do I park my car when visiting the court?", "Car park B.", candidates=[]
    )
    assert draft.topic_file.endswith("address.yaml")
    assert "'parking-at-court'" in draft.reason


def test_stale_or_malformed_candidates_fall_back_to_the_matcher(sample: KnowledgeBase) -> None:
    candidates: list[dict[str, Any]] = [
        {"entry_id": "removed-last-month", "score": 0.9, "phrasing": "x"},
        {"entry_id": "opening-hours", "score": None},
        {"entry_id": 42, "score": 0.8},
        {"score": 0.8},
    ]
    draft = draft_for(sample, "陪审员有补贴吗", "有，按天发放。", candidates=candidates)
    assert draft.topic_file.endswith("jurors.yaml")
    assert "closest entry now" in draft.reason


def test_a_strong_ticket_candidate_decides_the_file(sample: KnowledgeBase) -> None:
    # An entry marked `escalate: true` matched well: the ticket's candidate says where it belongs
    # even if the matcher, asked again, would rank another file first.
    candidates = [{"entry_id": "opening-hours", "score": 0.8, "phrasing": "几点上班"}]
    draft = draft_for(sample, "诉讼费可以刷信用卡吗", "可以。", candidates=candidates)
    assert draft.topic_file.endswith("visiting.yaml")
    assert "ticket's best candidate 'opening-hours' (0.80)" in draft.reason


def test_a_weak_ticket_candidate_alone_does_not_decide(sample: KnowledgeBase) -> None:
    candidates = [{"entry_id": "opening-hours", "score": 0.3, "phrasing": "几点上班"}]
    draft = draft_for(sample, "陪审员有补贴吗", "有。", candidates=candidates)
    assert draft.topic_file.endswith("jurors.yaml")


def test_a_near_duplicate_is_reported_and_only_warned_about(
    kb_copy: tuple[Path, KnowledgeBase],
) -> None:
    _, kb = kb_copy
    draft = draft_for(kb, "How do I pay the court fee", "Online or at the cashier window.")
    assert draft.entry_id == "pay-court-fee-2"  # 'pay-court-fee' is taken
    assert any("'pay-court-fee'" in note and "kb check will warn" in note for note in draft.notes)
    _, report = pasted(draft)
    assert len(report.warnings) == 1
    assert "'pay-court-fee'" in report.warnings[0].message


def test_rendered_draft_with_its_comments_can_be_pasted_whole(
    kb_copy: tuple[Path, KnowledgeBase],
) -> None:
    folder, kb = kb_copy
    draft = draft_for(kb, "诉讼费可以刷信用卡吗？#急", LONG_ZH)
    text = render_draft(draft, "Q7K2M9")
    assert text.startswith("# FAQ draft from escalation Q7K2M9\n")
    assert f"# paste at the end of {folder / 'fees.yaml'} (topic: Fees and payment)" in text
    assert text.endswith(draft.yaml)
    path = folder / "fees.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
    report = check_knowledge(folder, today=TODAY)
    assert report.errors == []
    assert report.knowledge is not None and report.knowledge.get(draft.entry_id) is not None


def test_rendered_new_file_can_be_saved_whole(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    folder, kb = kb_copy
    draft = draft_for(kb, "how to adopt a cat", "Ask the animal shelter.\nNot the court.")
    assert draft.new_file
    text = render_draft(draft)
    assert "# save as " in text
    Path(draft.topic_file).write_text(text, encoding="utf-8")
    report = check_knowledge(folder, today=TODAY)
    assert report.errors == []
    entry = report.knowledge.get(draft.entry_id) if report.knowledge else None
    assert entry is not None and entry.answer == {"en": "Ask the animal shelter.\nNot the court."}


def test_several_drafts_pasted_together_stay_valid(kb_copy: tuple[Path, KnowledgeBase]) -> None:
    """Drafts written one after the other, before any is pasted, must not share an id."""
    folder, kb = kb_copy
    matcher = Matcher(match_docs(kb), kb.synonyms)
    reserved: list[str] = []
    drafts = []
    for question in ("诉讼费可以刷信用卡吗", "诉讼费能用数字人民币交吗", "法院食堂对外开放吗"):
        draft = draft_entry(
            question,
            "可以。",
            candidates=ticket_candidates(matcher, question),
            knowledge=kb,
            today=TODAY,
            matcher=matcher,
            reserved_ids=reserved,
        )
        reserved.append(draft.entry_id)
        drafts.append(draft)
    assert [d.entry_id for d in drafts] == [
        "faq-fees-20260115-1",
        "faq-fees-20260115-2",
        "faq-20260115-1",
    ]
    for draft in drafts:
        paste(draft)
    report = check_knowledge(folder, today=TODAY)
    assert report.errors == []


# --- the details -------------------------------------------------------------------------------


def test_english_ids_avoid_every_taken_id(sample: KnowledgeBase) -> None:
    draft = draft_entry(
        "Can I pay the court fee in cash?",
        "Yes.",
        candidates=[],
        knowledge=sample,
        today=TODAY,
        reserved_ids={"pay-court-fee-cash", "pay-court-fee-cash-2"},
    )
    assert draft.entry_id == "pay-court-fee-cash-3"


def test_english_id_is_short_and_plain(sample: KnowledgeBase) -> None:
    draft = draft_for(
        sample,
        "How can I get a certified copy of the judgment for my café's insurance claim?",
        "At the documents window.",
        candidates=[],
    )
    assert draft.entry_id == "certified-copy-judgment-cafe-insurance"


def test_english_question_of_stop_words_only_gets_a_dated_id(sample: KnowledgeBase) -> None:
    draft = draft_for(sample, "What is it?", "It is the court.", candidates=[])
    assert draft.entry_id.startswith("faq-") and draft.entry_id.endswith("20260115-1")


def test_follow_up_in_another_language_is_left_out_with_a_note(
    kb_copy: tuple[Path, KnowledgeBase],
) -> None:
    _, kb = kb_copy
    draft = draft_for(
        kb,
        "诉讼费可以刷信用卡吗",
        "可以。",
        follow_ups=[
            "信用卡交诉讼费可以吗",
            "Can I pay by credit card?",
            "  ",
            "诉讼费可以刷信用卡吗",
        ],
    )
    entry, _ = pasted(draft)
    assert entry.questions == {"zh": ("诉讼费可以刷信用卡吗", "信用卡交诉讼费可以吗")}
    assert any("Can I pay by credit card?" in note for note in draft.notes)


def test_an_answer_in_the_other_language_is_noted(sample: KnowledgeBase) -> None:
    draft = draft_for(sample, "诉讼费可以刷信用卡吗", "Yes, at the cashier window.")
    assert draft.lang == "zh"
    assert any("looks like en" in note for note in draft.notes)


def test_question_without_language_takes_the_answers(sample: KnowledgeBase) -> None:
    draft = draft_for(sample, "???", "Please tell us what you would like to know.", candidates=[])
    assert draft.lang == "en"
    assert draft.entry_id.startswith("faq-")


@pytest.mark.parametrize(("question", "answer"), [("", "answer"), ("  \n", "x"), ("q?", " \n ")])
def test_empty_question_or_answer_is_refused(
    sample: KnowledgeBase, question: str, answer: str
) -> None:
    with pytest.raises(ValueError, match=r"no (question|answer)"):
        draft_entry(question, answer, candidates=[], knowledge=sample, today=TODAY)


def test_the_draft_does_not_touch_the_disk(tmp_path: Path) -> None:
    kb = KnowledgeBase((), path=str(tmp_path / "kb"))
    draft = draft_entry("Is there wifi?", "No.", candidates=[], knowledge=kb, today=TODAY)
    assert draft.new_file
    assert draft.topic_file == str(tmp_path / "kb" / "new-topic.yaml")
    assert not (tmp_path / "kb").exists()


# --- similar_groups ---------------------------------------------------------------------------

PARAPHRASES = {
    "CASH": [
        "Can I pay the court fee in cash?",
        "can i pay court fees with cash",
        "Is it possible to pay the court fee in cash at the court?",
        "pay court fee cash??",
        "Can I pay my court fees in cash",
    ],
    "CARD": [
        "诉讼费可以刷信用卡吗",
        "能用信用卡交诉讼费吗",
        "信用卡可以交诉讼费吗？",
        "诉讼费能刷信用卡吗？",
    ],
    "CANT": ["法院食堂对外开放吗", "法院的食堂对外开放吗？", "法院食堂對外開放嗎"],
    "WIFI": ["诉讼服务中心有wifi吗", "诉讼服务中心有没有WiFi？"],
    "DOG": ["Can I bring my dog into the court?", "can i bring my dog into court"],
}
UNRELATED = [
    "How do I appeal?",
    "court fee refund",
    "When is my hearing?",
    "What are your opening hours?",
    "诉讼费怎么退",
    "离婚怎么起诉",
    "开庭时间怎么查",
    "我的案子谁是法官",
    "欠钱不还怎么办",
    "法院在哪里",
    "how long does an appeal take",
    "How much is the court fee?",
    "诉讼费多少钱",
    "can I bring food into the court",
    "???",
    "what is it",
]


def tickets() -> list[tuple[str, str]]:
    pairs = [
        (f"{prefix}{number}", question)
        for prefix, questions in PARAPHRASES.items()
        for number, question in enumerate(questions, 1)
    ]
    pairs += [(f"U{number}", question) for number, question in enumerate(UNRELATED, 1)]
    random.Random(7).shuffle(pairs)
    return pairs


def test_paraphrases_group_and_unrelated_questions_do_not() -> None:
    groups = similar_groups(tickets())
    found = {frozenset(group.references) for group in groups}
    expected = {
        frozenset(f"{prefix}{n}" for n in range(1, len(questions) + 1))
        for prefix, questions in PARAPHRASES.items()
    }
    assert found == expected
    assert [group.size for group in groups] == [5, 4, 3, 2, 2]
    for group in groups:
        assert group.size == len(group.references)
        assert 1 <= len(group.examples) <= 3
        assert len({" ".join(e.casefold().split()) for e in group.examples}) == len(group.examples)


def test_group_examples_and_order() -> None:
    questions = [
        ("A1", "诉讼费怎么退"),
        ("B1", "Can I pay the court fee in cash?"),
        ("B2", "can i pay court fees with cash"),
        ("B3", "Can I pay the court fee in cash?"),
        ("B4", "pay court fee   cash??"),
        ("A2", "诉讼费怎么退？"),
    ]
    groups = similar_groups(questions)
    assert groups == [
        Group(
            4,
            (
                "Can I pay the court fee in cash?",
                "can i pay court fees with cash",
                "pay court fee cash??",
            ),
            ("B1", "B2", "B3", "B4"),
        ),
        Group(2, ("诉讼费怎么退",), ("A1", "A2")),
    ]
    assert similar_groups(questions, min_size=3) == groups[:1]
    assert similar_groups(questions, min_size=1)[-1].size == 2
    assert similar_groups([]) == []


def test_groups_do_not_chain_across_topics() -> None:
    # Each neighbour shares most words with the next one, but the ends share almost none.
    chain = [
        ("C1", "pay court fee cash window"),
        ("C2", "pay court fee cash card"),
        ("C3", "pay court fee card online"),
        ("C4", "pay court fine card online"),
        ("C5", "appeal court fine card online"),
    ]
    groups = similar_groups(chain)
    assert all(group.size <= 3 for group in groups)
    assert not any({"C1", "C5"} <= set(group.references) for group in groups)


def test_grouping_a_few_thousand_questions_is_fast() -> None:
    rng = random.Random(3)
    words = (
        "fee court pay refund appeal hearing judge lawyer parking visitor dog cash card online "
        "form copy judgment deadline divorce debt mediation juror legal aid address document"
    ).split()
    chars = (
        "诉讼费交退上诉开庭法官律师停车访客现金卡网上表格复印判决书期限离婚欠款调解陪审员援助地址"
    )
    questions = [
        (
            f"R{k}",
            " ".join(rng.sample(words, rng.randint(3, 7)))
            if k % 2
            else "".join(rng.sample(chars, rng.randint(5, 14))),
        )
        for k in range(4000)
    ]
    questions += [(f"D{k}", "诉讼费怎么交") for k in range(500)]  # the same question, 500 times
    started = time.perf_counter()
    groups = similar_groups(questions)
    assert time.perf_counter() - started < 5
    assert groups[0].size >= 500
    assert groups[0].examples[0] == "诉讼费怎么交"


# --- rendering ------------------------------------------------------------------------------


def test_render_groups() -> None:
    groups = [
        Group(
            12, ("诉讼费可以刷信用卡吗", "能用信用卡交诉讼费吗"), tuple(f"R{n}" for n in range(12))
        ),
        Group(2, ("x" * 200,), ("A1", "A2")),
    ]
    text = render_groups(groups)
    assert text.startswith("2 groups of escalations asked in similar words")
    assert "1. 12 escalations: R0, R1, R2, R3, R4, R5, R6, R7, R8, R9 and 2 more\n" in text
    assert "   - 诉讼费可以刷信用卡吗\n   - 能用信用卡交诉讼费吗\n" in text
    assert "   draft an entry: civicdesk tickets suggest-faq R0\n" in text
    assert "   - " + "x" * 89 + "…\n" in text
    assert render_groups([]) == "no escalations were asked in similar words\n"


def test_ticket_hint() -> None:
    assert ticket_hint(" q7k2m9 ") == (
        "To add this answer to the FAQ: civicdesk tickets suggest-faq Q7K2M9"
    )
