"""The conversation rules as pure functions (bot.tickets.conversation, bot.answering.message_form):
state + message + the desk's view + time → what to store and what to say. The scripted
conversations through the real app are in tests/test_conversation_suite.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.answering.message_form import Form, question_form, script_lang
from bot.platform.adapter import rules_for
from bot.tickets.conversation import (
    ACKNOWLEDGE_EVERY,
    ONLY_TEXT,
    PROMPT_FOR_QUESTION,
    QUIET_AFTER_ANSWER,
    STILL_WITH_STAFF,
    ConversationRules,
    DeskView,
    Incoming,
    Step,
    TicketView,
    decide_turn,
    needs_desk,
)

NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
RULES = ConversationRules()
WEB = rules_for("webchat")
ESCALATE_EN = DeskView("escalate", "Your question has been passed to our staff.", "en")
ESCALATE_ZH = DeskView("escalate", "您的问题已转交工作人员处理。", "zh")


def turn(
    text: str,
    desk: DeskView | None = ESCALATE_EN,
    ticket: TicketView | None = None,
    *,
    media: str | None = None,
    now: datetime = NOW,
    rules: ConversationRules = RULES,
) -> tuple[Step, str | None, str]:
    incoming = Incoming(text, "webchat", media)
    wanted = needs_desk(ticket, incoming, now, rules)
    decided = decide_turn(ticket, incoming, desk if wanted else None, now=now, rules=rules,
                          text_rules=WEB, default_lang="zh")  # fmt: skip
    return decided.step, decided.text, decided.decision


# Wordings other than the examples, in both languages the desk speaks.
NOT_QUESTIONS = [
    "Hi there!!!", "hey team", "Good night everyone", "testing testing", "ping", "lol", "hmm",
    "ok thanks a lot", "👍👍", "🙏", "...", "???", "12345", "[Photo]", "<Media omitted>",
    "@everyone hello", "Привет", "yo", "Hello? Anyone?", "I have a question",
    "在吗在吗", "哈哈哈哈", "嗯嗯", "早安", "晚安各位", "测试", "试一下", "你好呀😊", "[语音]",
    "【图片】", "有人吗？", "我想咨询一下", "好的好的", "。。。", "呵呵",
]  # fmt: skip
QUESTIONS = [
    "My landlord kept my deposit", "Can I appeal a small claims decision?",
    "where do I park for the hearing", "who decides on legal aid", "How do I file for divorce",
    "房东不退押金怎么办", "我要离婚", "立案需要什么材料", "判决书什么时候能拿到？",
    "对判决不服可以上诉吗",
]  # fmt: skip


@pytest.mark.parametrize("text", NOT_QUESTIONS)
def test_a_message_without_question_content_is_not_a_question(text: str) -> None:
    assert question_form(text) is not Form.QUESTION


@pytest.mark.parametrize("text", QUESTIONS)
def test_a_question_is_a_question_however_short(text: str) -> None:
    assert question_form(text) is Form.QUESTION


@pytest.mark.parametrize(("text", "lang"), [("Hello, world", "en"), ("哈哈哈", "zh"),
                                            ("Лол кек 😂", "en")])  # fmt: skip
def test_the_prompt_is_in_the_citizens_language(text: str, lang: str) -> None:
    step, said, decision = turn(text)
    assert (step, decision) == (Step.PROMPT, "prompt")
    assert said == PROMPT_FOR_QUESTION[lang] and script_lang(text, "zh") == lang


def test_a_question_the_faq_cannot_answer_opens_a_ticket() -> None:
    step, said, _ = turn("My landlord kept my deposit")
    assert step is Step.OPEN_TICKET and said == ESCALATE_EN.text


def test_what_the_faq_answers_is_answered_while_a_ticket_is_open_and_unclaimed() -> None:
    open_ = TicketView("ABC123", "open")
    answer = DeskView("answer", "Pay at the counter.", "en")
    assert turn("court fee", answer, open_)[:2] == (Step.ANSWER, "Pay at the counter.")
    step, said, decision = turn("and my landlord kept the keys too", ticket=open_)
    assert (step, decision) == (Step.ADD_TO_TICKET, "follow-up")
    assert said is not None and "ABC123" in said  # one line with the code: no second ticket
    # A "hello?" while waiting is no question: it joins nothing, the citizen is reminded.
    step, said, decision = turn("hello?", ticket=open_)
    assert (step, decision) == (Step.PROMPT, "prompt")
    assert said == STILL_WITH_STAFF["en"].format(ref="ABC123")


def test_once_a_person_claimed_the_bot_steps_aside_and_acknowledges_once_per_interval() -> None:
    claimed = TicketView("ABC123", "open", assigned_to="Li Wei")
    answer = DeskView("answer", "Pay at the counter.", "en")
    incoming = Incoming("court fee", "webchat")
    assert not needs_desk(claimed, incoming, NOW, RULES)  # not even the FAQ
    step, said, _ = turn("court fee", answer, claimed)
    assert step is Step.STEP_ASIDE
    assert said == "Added to your question ABC123; a colleague (Li Wei) is on it."
    told = TicketView("ABC123", "open", assigned_to="Li Wei", acknowledged_at=NOW)
    soon = turn("hello?", ticket=told, now=NOW + ACKNOWLEDGE_EVERY / 2)
    assert soon[:2] == (Step.STEP_ASIDE, None)  # a reason instead: told a moment ago
    later = turn("hello?", ticket=told, now=NOW + ACKNOWLEDGE_EVERY)
    assert later[1] is not None and "ABC123" in later[1]


def test_after_a_staff_answer_the_quiet_period_then_the_bot_again() -> None:
    answered = TicketView("ABC123", "closed", answered_by="Li Wei", answered_at=NOW,
                          closed_at=NOW, acknowledged_at=NOW - timedelta(seconds=5))  # fmt: skip
    answer = DeskView("answer", "Pay at the counter.", "en")
    step, said, _ = turn("thanks, and the fee?", answer, answered, now=NOW + timedelta(minutes=1))
    # The person's answer starts the acknowledgement interval afresh.
    assert step is Step.STEP_ASIDE and said is not None and "Li Wei" in said
    after = turn("court fee", answer, answered, now=NOW + QUIET_AFTER_ANSWER)
    assert after[:2] == (Step.ANSWER, "Pay at the counter.")


def test_closed_without_an_answer_has_no_quiet_period() -> None:
    closed = TicketView("ABC123", "closed", answered_by="Li Wei", answered_at=NOW,
                        closed_at=NOW, close_reason="reached by phone")  # fmt: skip
    answer = DeskView("answer", "Pay at the counter.", "en")
    assert turn("court fee", answer, closed)[0] is Step.ANSWER


def test_an_undeliverable_answer_is_what_the_citizen_gets_when_they_write_again() -> None:
    kept = TicketView("ABC123", "undeliverable", answered_by="Li Wei", answered_at=NOW)
    step, said, decision = turn("还在吗？", ticket=kept)
    assert (step, said, decision) == (Step.STEP_ASIDE, None, "follow-up")  # the kept answer goes


def test_media_without_text_gets_the_only_text_reply_of_its_channel() -> None:
    assert turn("", None, media="sticker")[:2] == (Step.MEDIA_ONLY, ONLY_TEXT["zh"])
    own = ConversationRules(media_replies={"webchat": "Photos cannot be read here."})
    assert turn("", None, media="image", rules=own)[1] == "Photos cannot be read here."
    # With a person on the ticket too: the citizen must know the photo was not seen.
    claimed = TicketView("ABC123", "open", assigned_to="Li Wei")
    assert turn("", None, claimed, media="image")[0] is Step.MEDIA_ONLY


def test_a_caption_is_the_question() -> None:
    assert turn("房东不退押金怎么办", ESCALATE_ZH, media="image")[0] is Step.OPEN_TICKET
