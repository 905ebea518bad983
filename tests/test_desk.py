"""The answering desk as a citizen meets it: a question in, one reply out, fitted to the channel.

Most tests run against the real sample knowledge base in knowledge/; the clarifying-question
flow uses a tiny knowledge base of its own so that it does not depend on matcher tuning.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.answering.desk import (
    CLARIFY_MAX_PENDING,
    CLARIFY_TTL_SECONDS,
    ClarifyMemory,
    Desk,
    parse_pick,
)
from bot.answering.knowledge import Entry, KnowledgeBase, load_knowledge
from bot.answering.policy import Answer, Clarify, PolicyConfig
from bot.answering.replies import INVITE_PRIVATE, TICKET_ACK
from bot.platform.lengths import weibo_length

KNOWLEDGE = Path(__file__).parents[1] / "knowledge"
TODAY = date(2026, 1, 15)
EXPIRED_ID = "filing-hall-temporary-relocation"  # valid_until: 2025-12-31
PRIVATE_ID = "get-judgment-copy-with-id"  # public: false


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="module")
def desk(knowledge: KnowledgeBase) -> Desk:
    return Desk(knowledge, today=lambda: TODAY)


def sample(knowledge: KnowledgeBase, entry_id: str) -> Entry:
    entry = knowledge.get(entry_id)
    assert entry is not None, f"the sample knowledge base has no entry {entry_id!r}"
    return entry


def test_the_sample_entries_these_tests_rely_on_have_the_rules_they_assume(
    knowledge: KnowledgeBase,
) -> None:
    assert sample(knowledge, EXPIRED_ID).valid_until == date(2025, 12, 31)
    assert sample(knowledge, PRIVATE_ID).public is False
    assert sample(knowledge, "my-case-status").escalate is True


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "lang"),
    [("诉讼费怎么交", "zh"), ("how do I pay the court fee", "en")],
)
def test_fee_question_is_answered_in_the_language_it_was_asked(
    desk: Desk, knowledge: KnowledgeBase, question: str, lang: str
) -> None:
    reply = desk.respond(question)

    assert reply.decision.decision == "answer"
    assert reply.entry_id == "pay-court-fee"
    assert reply.lang == lang
    entry = sample(knowledge, "pay-court-fee")
    assert entry.answer[lang] in reply.text
    assert entry.link is not None and entry.link in reply.text


@pytest.mark.parametrize(
    "question",
    ["訴訟費怎麼交", "ｈｏｗ ｄｏ Ｉ ｐａｙ ｔｈｅ ｃｏｕｒｔ ｆｅｅ"],
    ids=["traditional", "full-width"],
)
def test_other_ways_of_writing_the_fee_question_get_the_same_answer(
    desk: Desk, question: str
) -> None:
    reply = desk.respond(question)

    assert reply.candidates[0].entry_id == "pay-court-fee"
    assert reply.decision.decision == "answer"
    assert reply.entry_id == "pay-court-fee"


def test_a_typo_still_finds_the_fee_entry_first(desk: Desk) -> None:
    reply = desk.respond("how do i pay the cuort fee")

    assert reply.candidates
    assert reply.candidates[0].entry_id == "pay-court-fee"


def test_platform_decorations_around_the_question_do_not_matter(desk: Desk) -> None:
    reply = desk.respond("@示例中院 诉讼费怎么交 #诉讼# http://t.cn/abc 😀")

    assert reply.decision.decision == "answer"
    assert reply.entry_id == "pay-court-fee"
    assert reply.lang == "zh"


def test_weibo_repost_chain_is_ignored(desk: Desk) -> None:
    reply = desk.respond("诉讼费怎么交//@路人甲: 同问 //@路人乙: 法院的停车场在哪")

    assert reply.entry_id == "pay-court-fee"


# --- public replies on Weibo -----------------------------------------------------------------


def test_public_weibo_reply_mentions_the_asker_and_fits_140(desk: Desk) -> None:
    reply = desk.respond("诉讼费怎么交", channel="weibo", public=True, mention="市民张三")

    assert reply.decision.decision == "answer"
    assert reply.text.startswith("@市民张三 ")
    assert weibo_length(reply.text) <= 140


def test_private_reply_carries_no_mention(desk: Desk) -> None:
    reply = desk.respond("诉讼费怎么交", channel="weibo", public=False, mention="市民张三")

    assert "@市民张三" not in reply.text
    assert weibo_length(reply.text) <= 140


def test_every_sample_question_gets_a_public_weibo_reply_within_140(
    desk: Desk, knowledge: KnowledgeBase
) -> None:
    too_long = []
    asked = 0
    for entry in knowledge.entries:
        for lang in ("zh", "en"):
            phrasings = entry.questions.get(lang)
            if not phrasings:
                continue
            asked += 1
            reply = desk.respond(
                phrasings[0], channel="weibo", public=True, mention="一位很关心此事的热心市民"
            )
            length = weibo_length(reply.text)
            if length > 140 or not reply.text.startswith("@一位很关心此事的热心市民 "):
                too_long.append((entry.id, lang, length, reply.text))
    assert asked >= 2 * 50
    assert too_long == []


# --- hand-offs, private matters, expired entries ----------------------------------------------


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("我的案子现在到哪一步了？", "zh"),
        ("What is happening with my case?", "en"),
        ("法院说执行到位了，钱什么时候打给我", "zh"),
    ],
)
def test_a_question_about_ones_own_case_goes_to_staff_with_an_acknowledgement(
    desk: Desk, knowledge: KnowledgeBase, question: str, lang: str
) -> None:
    reply = desk.respond(question)

    assert reply.decision.decision == "escalate"
    assert reply.text == TICKET_ACK[lang]
    for entry in knowledge.entries:
        for text in (*entry.answer.values(), *entry.short.values()):
            assert text not in reply.text


def test_private_entry_asked_in_public_invites_a_private_message(
    desk: Desk, knowledge: KnowledgeBase
) -> None:
    entry = sample(knowledge, PRIVATE_ID)

    reply = desk.respond(entry.questions["zh"][1], channel="weibo", public=True, mention="zhang")

    assert reply.decision.decision == "private"
    assert reply.text == f"@zhang {INVITE_PRIVATE['zh']}"
    assert entry.answer["zh"] not in reply.text
    assert entry.short["zh"] not in reply.text


def test_private_entry_asked_in_a_private_message_is_answered(
    desk: Desk, knowledge: KnowledgeBase
) -> None:
    entry = sample(knowledge, PRIVATE_ID)

    reply = desk.respond(entry.questions["zh"][1], channel="wechat", public=False)

    assert reply.decision.decision == "answer"
    assert reply.entry_id == PRIVATE_ID
    assert entry.answer["zh"] in reply.text


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_an_expired_entry_is_never_given_as_the_answer(
    desk: Desk, knowledge: KnowledgeBase, lang: str, which: int
) -> None:
    entry = sample(knowledge, EXPIRED_ID)

    reply = desk.respond(entry.questions[lang][which])

    assert not (isinstance(reply.decision, Answer) and reply.entry_id == EXPIRED_ID)
    assert entry.answer[lang] not in reply.text
    assert entry.short[lang] not in reply.text


def test_the_expired_entry_is_served_while_it_was_still_valid(knowledge: KnowledgeBase) -> None:
    entry = sample(knowledge, EXPIRED_ID)
    desk = Desk(knowledge, today=lambda: date(2025, 11, 1))

    reply = desk.respond(entry.questions["zh"][0])

    assert reply.decision.decision == "answer"
    assert reply.entry_id == EXPIRED_ID


# --- small talk and empty messages -----------------------------------------------------------


def test_thanks_gets_a_polite_reply_not_a_ticket(desk: Desk) -> None:
    reply = desk.respond("谢谢")

    assert reply.decision.decision == "smalltalk"
    assert "不客气" in reply.text
    assert reply.candidates == ()


def test_english_thanks_gets_an_english_reply(desk: Desk) -> None:
    reply = desk.respond("thanks!")

    assert reply.decision.decision == "smalltalk"
    assert "welcome" in reply.text


def test_greeting_gets_a_greeting(desk: Desk) -> None:
    reply = desk.respond("你好")

    assert reply.decision.decision == "smalltalk"
    assert "您好" in reply.text


@pytest.mark.parametrize("text", ["", "   ", "😀", "@示例中院"])
def test_empty_message_asks_for_the_question(desk: Desk, text: str) -> None:
    reply = desk.respond(text)

    assert reply.decision.decision == "smalltalk"
    assert reply.decision.reason == "small talk: empty"
    assert reply.text == "您好，请直接输入您想咨询的问题。"


def test_public_small_talk_on_weibo_still_mentions_the_asker(desk: Desk) -> None:
    reply = desk.respond("谢谢！", channel="weibo", public=True, mention="zhang")

    assert reply.text.startswith("@zhang ")
    assert weibo_length(reply.text) <= 140


def test_thanks_followed_by_a_real_question_is_answered(desk: Desk) -> None:
    reply = desk.respond("谢谢，诉讼费怎么交")

    assert reply.decision.decision == "answer"
    assert reply.entry_id == "pay-court-fee"


# --- out of scope ----------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["what is the weather on mars tomorrow", "怎么做红烧肉"])
def test_a_question_outside_the_faq_is_not_answered(desk: Desk, question: str) -> None:
    reply = desk.respond(question)

    assert reply.decision.decision in ("escalate", "clarify")
    assert reply.entry_id is None


# --- clarifying questions --------------------------------------------------------------------

FEE = Entry(
    id="court-fee",
    topic="Fees",
    questions={"en": ("How do I pay the court fee?",), "zh": ("诉讼费怎么交？",)},
    answer={"en": "Pay the court fee online or at the cashier.", "zh": "诉讼费可网上缴纳。"},
)
APPEAL_FEE = Entry(
    id="appeal-fee",
    topic="Fees",
    questions={"en": ("How do I pay the appeal fee?",), "zh": ("上诉费怎么交？",)},
    answer={"en": "Pay the appeal fee to the court that decided.", "zh": "上诉费向原审法院预交。"},
)
TWO_FEES = KnowledgeBase((FEE, APPEAL_FEE))
# Nothing is trusted outright, every candidate is worth offering: each question clarifies.
ALWAYS_CLARIFY = PolicyConfig(
    answer_threshold=1.01, answer_margin=0.05, clarify_threshold=0.0, clarify_band=1.0
)
VAGUE = "how do I pay the fee"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fees_desk(clock: Clock) -> Desk:
    return Desk(
        TWO_FEES,
        ALWAYS_CLARIFY,
        default_lang="en",
        memory=ClarifyMemory(clock=clock),
        today=lambda: TODAY,
    )


def ask_vague(desk: Desk, conversation: str = "c1", **kwargs: object) -> Clarify:
    reply = desk.respond(VAGUE, conversation=conversation, **kwargs)  # type: ignore[arg-type]
    assert isinstance(reply.decision, Clarify)
    return reply.decision


def test_an_ambiguous_question_lists_the_options_by_number(fees_desk: Desk) -> None:
    reply = fees_desk.respond(VAGUE, conversation="c1")

    assert reply.decision.decision == "clarify"
    assert isinstance(reply.decision, Clarify)
    first, second = (e.questions["en"][0].rstrip("?") for e in reply.decision.options)
    assert f"1) {first}" in reply.text
    assert f"2) {second}" in reply.text
    assert reply.text.index("1) ") < reply.text.index("2) ")
    assert reply.entry_id is None


def test_replying_with_a_number_answers_that_option(fees_desk: Desk) -> None:
    options = ask_vague(fees_desk).options

    reply = fees_desk.respond("2", conversation="c1")

    assert isinstance(reply.decision, Answer)
    assert reply.entry_id == options[1].id
    assert options[1].answer["en"] in reply.text


@pytest.mark.parametrize("pick", ["1", "（1）", "first", "the first one", "第一个", "选1", "1."])
def test_the_ways_of_picking_the_first_option(fees_desk: Desk, pick: str) -> None:
    options = ask_vague(fees_desk).options

    reply = fees_desk.respond(pick, conversation="c1")

    assert reply.decision.decision == "answer"
    assert reply.entry_id == options[0].id


def test_a_number_in_another_conversation_is_not_a_pick(fees_desk: Desk) -> None:
    options = ask_vague(fees_desk, "c1").options

    elsewhere = fees_desk.respond("1", conversation="c2")
    assert elsewhere.decision.decision != "answer"

    # The question asked in c1 is still waiting for its answer.
    reply = fees_desk.respond("2", conversation="c1")
    assert reply.entry_id == options[1].id
    assert reply.decision.decision == "answer"


def test_a_number_without_a_conversation_is_not_a_pick(fees_desk: Desk) -> None:
    ask_vague(fees_desk, "c1")

    reply = fees_desk.respond("1")

    assert reply.decision.decision != "answer"


def test_after_the_pick_a_number_is_no_longer_a_pick(fees_desk: Desk) -> None:
    ask_vague(fees_desk)
    assert fees_desk.respond("2", conversation="c1").decision.decision == "answer"

    again = fees_desk.respond("1", conversation="c1")

    assert again.decision.decision != "answer"


def test_a_new_question_instead_of_a_pick_drops_the_pending_options(fees_desk: Desk) -> None:
    ask_vague(fees_desk)
    fees_desk.respond("谢谢", conversation="c1")

    reply = fees_desk.respond("1", conversation="c1")

    assert reply.decision.decision != "answer"


def test_a_number_beyond_the_options_is_not_a_pick(fees_desk: Desk) -> None:
    ask_vague(fees_desk)

    reply = fees_desk.respond("3", conversation="c1")

    assert reply.decision.decision != "answer"


def test_picking_by_words_answers_the_option_described(fees_desk: Desk) -> None:
    ask_vague(fees_desk)

    reply = fees_desk.respond("the appeal one", conversation="c1")

    assert reply.decision.decision == "answer"
    assert reply.entry_id == "appeal-fee"


def test_the_pick_is_answered_in_the_language_of_the_question(fees_desk: Desk) -> None:
    reply = fees_desk.respond("费用怎么交", conversation="zh-chat")
    assert isinstance(reply.decision, Clarify)
    assert reply.text.startswith("您是想问：1) ")
    options = reply.decision.options

    picked = fees_desk.respond("2", conversation="zh-chat")

    assert picked.entry_id == options[1].id
    assert picked.text == options[1].answer["zh"]


def test_public_clarifying_question_on_weibo_mentions_the_asker_and_fits(
    fees_desk: Desk,
) -> None:
    reply = fees_desk.respond(
        VAGUE, conversation="w1", channel="weibo", public=True, mention="zhang"
    )

    assert reply.decision.decision == "clarify"
    assert reply.text.startswith("@zhang ")
    assert weibo_length(reply.text) <= 140


def test_a_pick_just_before_the_time_limit_still_counts(fees_desk: Desk, clock: Clock) -> None:
    options = ask_vague(fees_desk).options
    clock.now += CLARIFY_TTL_SECONDS - 1

    reply = fees_desk.respond("1", conversation="c1")

    assert reply.entry_id == options[0].id
    assert reply.decision.decision == "answer"


def test_a_pick_after_the_time_limit_is_not_an_answer_to_the_old_question(
    fees_desk: Desk, clock: Clock
) -> None:
    ask_vague(fees_desk)
    clock.now += CLARIFY_TTL_SECONDS + 1

    reply = fees_desk.respond("1", conversation="c1")

    assert reply.decision.decision != "answer"


def test_clarify_memory_forgets_after_its_time_limit() -> None:
    clock = Clock()
    memory = ClarifyMemory(clock=clock)
    memory.remember("telegram", "c1", ("a", "b"), "en")
    memory.remember("telegram", "c2", ("c", "d"), "zh")

    clock.now += CLARIFY_TTL_SECONDS + 1
    assert memory.take("telegram", "c1") is None

    fresh = ClarifyMemory(clock=clock)
    fresh.remember("telegram", "c3", ("a", "b"), "en")
    clock.now += 10
    pending = fresh.take("telegram", "c3")
    assert pending is not None
    assert pending.options == ("a", "b")
    assert fresh.take("telegram", "c3") is None  # taken once


def test_clarify_memory_keeps_conversations_of_different_channels_apart() -> None:
    memory = ClarifyMemory(clock=Clock())
    memory.remember("telegram", "42", ("a", "b"), "en")
    memory.remember("mastodon", "42", ("c", "d"), "zh")

    mastodon = memory.take("mastodon", "42")
    telegram = memory.take("telegram", "42")

    assert mastodon is not None and mastodon.options == ("c", "d")
    assert telegram is not None and telegram.options == ("a", "b")


def test_clarify_memory_drops_expired_questions_when_remembering_new_ones() -> None:
    clock = Clock()
    memory = ClarifyMemory(clock=clock)
    for n in range(100):
        memory.remember("webchat", f"old-{n}", ("a", "b"), "en")
    clock.now += CLARIFY_TTL_SECONDS / 2
    memory.remember("webchat", "recent", ("a", "b"), "en")
    assert len(memory) == 101

    clock.now += CLARIFY_TTL_SECONDS / 2 + 1  # the old ones have expired, "recent" has not
    memory.remember("webchat", "new", ("c", "d"), "en")

    assert len(memory) == 2
    assert memory.take("webchat", "recent") is not None
    assert memory.take("webchat", "new") is not None


def test_clarify_memory_keeps_at_most_max_pending_conversations_dropping_the_oldest() -> None:
    clock = Clock()
    memory = ClarifyMemory(clock=clock, max_pending=3)
    for conversation in ("c1", "c2", "c3"):
        memory.remember("webchat", conversation, ("a", "b"), "en")
        clock.now += 1
    memory.remember("webchat", "c1", ("a", "b"), "en")  # asked again: now the newest

    memory.remember("webchat", "c4", ("a", "b"), "en")

    assert len(memory) == 3
    assert memory.take("webchat", "c2") is None  # the oldest, dropped
    for conversation in ("c1", "c3", "c4"):
        assert memory.take("webchat", conversation) is not None


def test_the_default_memory_is_bounded() -> None:
    clock = Clock()
    memory = ClarifyMemory(clock=clock)
    for n in range(CLARIFY_MAX_PENDING + 50):
        memory.remember("webchat", str(n), ("a", "b"), "en")

    assert len(memory) == CLARIFY_MAX_PENDING
    assert memory.take("webchat", "0") is None
    assert memory.take("webchat", str(CLARIFY_MAX_PENDING + 49)) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ("2", 1),
        ("（2）", 1),
        ("the second one", 1),
        ("第二个", 1),
        ("no. 3", 2),
        ("1️⃣", 0),
        ("2️⃣", 1),
        ("3️⃣", 2),
        ("2⃣", 1),
        ("第2个", 1),
        ("第2", 1),
        ("第二個", 1),
        ("#2", 1),
        ("[2]", 1),
        ("【2】", 1),
        ("(2)", 1),
        ("②", 1),
        ("option 2", 1),
        ("Option 2", 1),
        ("no. 2", 1),
        ("No.2", 1),
        ("选2", 1),
        ("2 👍", 1),
        ("回复@示例中院:2", 1),
        ("@court_bot #2", 1),
    ],
)
def test_parse_pick_reads_the_usual_ways_of_choosing(text: str, expected: int) -> None:
    assert parse_pick(text, 3) == expected


@pytest.mark.parametrize(
    "text",
    ["4", "fourth", "how much is it", "12", "4️⃣", "第4个", "#4", "[4]", "#help", "no", "2 or 3"],
)
def test_parse_pick_refuses_what_is_not_one_of_the_options(text: str) -> None:
    assert parse_pick(text, 3) is None


# --- picks across channels and platforms ---------------------------------------------------


def test_a_number_in_a_same_named_conversation_on_another_channel_is_not_a_pick(
    fees_desk: Desk,
) -> None:
    ask_vague(fees_desk, "42", channel="telegram")

    reply = fees_desk.respond("1", conversation="42", channel="mastodon")

    assert reply.decision.decision != "answer"


def test_the_pick_counts_in_the_same_conversation_on_the_same_channel(fees_desk: Desk) -> None:
    options = ask_vague(fees_desk, "42", channel="telegram").options
    fees_desk.respond("1", conversation="42", channel="mastodon")

    reply = fees_desk.respond("2", conversation="42", channel="telegram")

    assert reply.decision.decision == "answer"
    assert reply.entry_id == options[1].id


def test_a_weibo_reply_comment_picks_an_option(fees_desk: Desk) -> None:
    options = ask_vague(fees_desk, "w1", channel="weibo", public=True, mention="zhang").options

    reply = fees_desk.respond(
        "回复@示例中院:2️⃣", conversation="w1", channel="weibo", public=True, mention="zhang"
    )

    assert reply.entry_id == options[1].id


@pytest.mark.parametrize("text", ["2️⃣", "第2个", "#2", "[2]", "(2)", "option 2", "no. 2"])
def test_common_mobile_ways_of_picking_the_second_option(fees_desk: Desk, text: str) -> None:
    options = ask_vague(fees_desk).options

    reply = fees_desk.respond(text, conversation="c1")

    assert reply.entry_id == options[1].id


# --- decorations glued to the question, and everyday small talk ------------------------------


def test_a_question_glued_to_a_weibo_short_link_is_still_answered(desk: Desk) -> None:
    reply = desk.respond("http://t.cn/A6abc诉讼费怎么交")

    assert reply.entry_id == "pay-court-fee"


def test_a_question_between_two_hashtags_is_still_answered(desk: Desk) -> None:
    # Read as one Weibo topic "#help How ... #", the question was dropped and "parking" was left.
    reply = desk.respond("#help How do I pay the court fee? #parking")

    assert reply.entry_id == "pay-court-fee"


@pytest.mark.parametrize("text", ["你好，在吗？", "谢谢啦", "thank you so much"])
def test_everyday_small_talk_is_not_escalated_to_staff(desk: Desk, text: str) -> None:
    reply = desk.respond(text)

    assert reply.decision.decision == "smalltalk"
