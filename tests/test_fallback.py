"""Answers past a platform's reply window, by e-mail: which address, and what the citizen reads."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.platform.adapter import TextRules, rules_for
from bot.tickets.fallback import citizen_address, email_answer, staff_note
from bot.tickets.reference import acknowledgement

ASKED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_the_address_given_last_wins_and_no_address_means_no_email() -> None:
    said = ["我的案件进展如何", "邮箱 wang@example.cn", "写错了，是 wang.li@example.cn"]
    assert citizen_address(said) == "wang.li@example.cn"
    assert citizen_address(["请尽快答复", "电话 13812345678"]) is None


def test_an_english_question_gets_an_english_email_with_the_reference_and_the_question() -> None:
    mail = email_answer(
        address="jo@example.org",
        reference="Q7K2M9",
        question="Where is my case?\nIt was filed in May.",
        asked_at=ASKED,
        answer="It is with the judge.",
        channel="wechat",
        default_lang="zh",
    )
    assert mail.subject == "Answer to your question Q7K2M9"
    assert "> Where is my case?\n> It was filed in May." in mail.body
    assert "It is with the judge." in mail.body and "2026-11-20" in mail.body
    assert '"new":true' in mail.reply_context and '"to":"jo@example.org"' in mail.reply_context


def test_staff_see_where_the_answer_went_without_the_full_address() -> None:
    mail = email_answer(address="wang.li@example.cn", reference="Q7K2M9", question="进展？",
                        asked_at=ASKED, answer="已受理。", channel="weibo",
                        default_lang="en")  # fmt: skip
    assert mail.subject == "您的咨询 Q7K2M9 的答复"
    assert staff_note(mail, "zh") == "平台回复期限已过：答复改由邮件发送至 w***@example.cn"


def test_the_offer_to_answer_by_email_is_added_only_where_it_fits_whole() -> None:
    promise = "预计于12月1日（周二）17:30前答复"
    wechat = acknowledgement("Q7K2M9", "zh", rules_for("wechat"), promise=promise, mention=None,
                             invite_email=True)  # fmt: skip
    assert wechat.startswith("您的问题已转交工作人员（编号 Q7K2M9）") and wechat.endswith(
        "邮件答复。"
    )
    short = TextRules(60)
    tight = acknowledgement("Q7K2M9", "zh", short, promise=promise, mention=None,
                            invite_email=True)  # fmt: skip
    assert tight == acknowledgement("Q7K2M9", "zh", short, promise=promise, mention=None)
    assert "Q7K2M9" in tight and "邮箱" not in tight
