"""Replies fitted to each channel: what a citizen would read, and that it is never too long."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answering.composer import ELLIPSIS, compose, compose_clarify, fits
from bot.platform.adapter import DEFAULT_TEXT_RULES, TEXT_RULES, TextRules, rules_for
from bot.platform.lengths import mastodon_length, weibo_length, x_length

LINK = "https://court.example.gov/fees"
WEIBO = TEXT_RULES["weibo"]
X = TEXT_RULES["x"]

FEE_ANSWER_ZH = (
    "可通过法院诉讼服务网在线缴纳诉讼费，支持银行卡和移动支付。"
    "也可以携带缴费通知书到诉讼服务中心窗口缴纳，窗口办公时间为工作日上午九点至下午五点。"
    "缴费后请妥善保管票据，如需退费，请在判决生效后凭票据和身份证件到窗口申请办理。"
    "对缴费金额有异议的，可在收到通知之日起七日内向本院提出书面复核申请，本院将在十个工作日内答复。"
)
FEE_SHORT_ZH = "诉讼费可网上缴纳或到诉讼服务中心窗口缴纳，详见链接。"
FEE_ANSWER_EN = (
    "You can pay the court fee online through the litigation service portal with a bank card "
    "or a mobile wallet. You can also pay at the counter of the litigation service centre on "
    "working days between 9 am and 5 pm. Keep the receipt: you need it for a refund."
)


# --- compose: examples -------------------------------------------------------------------


def test_full_answer_that_fits_comes_back_whole_with_mention_and_link() -> None:
    reply = compose("请携带身份证原件。", WEIBO, link=LINK, mention="zhangsan")
    assert reply == f"@zhangsan 请携带身份证原件。 {LINK}"


def test_mention_is_written_once_whatever_the_caller_passes() -> None:
    assert compose("Yes.", X, mention="@alice") == "@alice Yes."
    assert compose("Yes.", X, mention=None) == "Yes."


def test_long_chinese_answer_on_weibo_falls_back_to_the_short_answer_with_link() -> None:
    assert weibo_length(FEE_ANSWER_ZH) > 140
    reply = compose(FEE_ANSWER_ZH, WEIBO, short=FEE_SHORT_ZH, link=LINK, mention="zhangsan")
    assert reply == f"@zhangsan {FEE_SHORT_ZH} {LINK}"


def test_short_answer_without_link_when_both_do_not_fit() -> None:
    short = "诉讼费可以网上缴纳，也可以到窗口缴纳。" * 6  # 114 汉字: no room for a 10-汉字 link
    rules = replace(WEIBO, limit=125)
    reply = compose(FEE_ANSWER_ZH, rules, short=short, link=LINK, mention="zhangsan")
    assert reply == f"@zhangsan {short}"


def test_chinese_answer_is_cut_after_a_full_stop_and_keeps_the_link() -> None:
    reply = compose(FEE_ANSWER_ZH, WEIBO, link=LINK, mention="zhangsan")
    assert weibo_length(reply) <= 140
    assert reply.startswith("@zhangsan 可通过法院诉讼服务网在线缴纳诉讼费")
    assert reply.endswith(f"。{ELLIPSIS} {LINK}")
    text = reply.removeprefix("@zhangsan ").removesuffix(f"{ELLIPSIS} {LINK}")
    assert FEE_ANSWER_ZH.startswith(text)


def test_english_answer_is_cut_after_a_sentence_when_one_fits() -> None:
    reply = compose(FEE_ANSWER_EN, X, link=LINK, mention="alice")
    assert x_length(reply) <= 280
    assert reply.endswith(f"5 pm.{ELLIPSIS} {LINK}")


def test_english_answer_is_cut_between_words_when_no_sentence_fits() -> None:
    rules = TextRules(70)
    reply = compose(FEE_ANSWER_EN, rules, link=LINK, mention="alice")
    assert len(reply) <= 70
    assert reply.endswith(f"{ELLIPSIS} {LINK}")
    text = reply.removeprefix("@alice ").removesuffix(f"{ELLIPSIS} {LINK}")
    assert FEE_ANSWER_EN.startswith(text)
    assert FEE_ANSWER_EN[len(text)] == " "  # the next character starts a new word


def test_chinese_answer_without_any_fitting_sentence_is_cut_between_characters() -> None:
    reply = compose(FEE_ANSWER_ZH, replace(WEIBO, limit=30), link=LINK, mention="zhangsan")
    assert weibo_length(reply) <= 30
    assert reply.startswith("@zhangsan 可通过")
    assert reply.endswith(f"{ELLIPSIS} {LINK}")


def test_the_link_is_kept_rather_than_the_tail_of_the_text() -> None:
    answer = "Pay online. " + "It is quick and safe. " * 4
    rules = TextRules(len(answer))  # the whole answer, but not also the link
    reply = compose(answer, rules, link=LINK)
    assert reply.endswith(LINK)


def test_tiny_limits_drop_the_link_then_the_mention() -> None:
    with_mention = compose(FEE_ANSWER_EN, TextRules(30), link=LINK, mention="alice")
    assert with_mention == f"@alice You can pay the court{ELLIPSIS}"
    without_mention = compose(FEE_ANSWER_EN, TextRules(8), link=LINK, mention="alice")
    assert without_mention == f"You can{ELLIPSIS}"


@pytest.mark.parametrize("channel", sorted(TEXT_RULES))
@pytest.mark.parametrize("answer", [FEE_ANSWER_EN, "Pay online."])
def test_a_limit_of_two_still_says_something(channel: str, answer: str) -> None:
    rules = replace(TEXT_RULES[channel], limit=2)
    reply = compose(answer, rules, link=LINK, mention="alice")
    assert reply
    assert fits(reply, rules)


def test_mastodon_counts_the_mention_without_its_domain() -> None:
    rules = TEXT_RULES["mastodon"]
    answer = "a" * (500 - len("@alice "))
    reply = compose(answer, rules, mention="alice@example.social")
    assert reply == f"@alice@example.social {answer}"
    assert mastodon_length(reply) == 500


def test_wechat_counts_bytes() -> None:
    rules = rules_for("wechat")
    reply = compose("诉" * 1000, rules)
    assert len(reply.encode("utf-8")) <= 2048 < len(("诉" * 1000).encode("utf-8"))


# --- compose_clarify ---------------------------------------------------------------------


def test_clarify_in_english_lists_the_options() -> None:
    text = compose_clarify(
        ["How do I pay the court fee?", "Where can I pay litigation costs?"], X, "en"
    )
    assert text == (
        "Did you mean: 1) How do I pay the court fee 2) Where can I pay litigation costs? "
        "Reply with the number."
    )


def test_clarify_in_chinese_with_mention() -> None:
    text = compose_clarify(["如何缴纳诉讼费？", "诉讼费在哪里交"], WEIBO, "zh", mention="zhangsan")
    assert text == "@zhangsan 您是想问：1) 如何缴纳诉讼费 2) 诉讼费在哪里交？请回复序号。"


def test_clarify_shortens_every_option_to_fit() -> None:
    options = [
        "How do I pay the court fee online with a bank card?",
        "Where can I pay litigation costs in person?",
    ]
    rules = TextRules(100)
    text = compose_clarify(options, rules, "en", mention="alice")
    assert len(text) <= 100
    assert text.startswith("@alice Did you mean: 1) How do I pay")
    assert f"{ELLIPSIS} 2) Where can I" in text
    assert text.endswith(f"{ELLIPSIS}? Reply with the number.")


def test_clarify_shows_fewer_options_rather_than_stubs() -> None:
    options = ["如何缴纳诉讼费？", "诉讼费在哪里交", "网上能交诉讼费吗"]
    text = compose_clarify(options, replace(WEIBO, limit=30), "zh", mention="zhangsan")
    assert text == "@zhangsan 您是想问：1) 如何缴纳诉讼费？请回复序号。"


def test_clarify_needs_options() -> None:
    with pytest.raises(ValueError, match="at least one option"):
        compose_clarify([], X, "en")


# --- channel rules -----------------------------------------------------------------------


def test_rules_for_known_suffixed_and_unknown_channels() -> None:
    assert rules_for("weibo") is WEIBO
    assert rules_for("Telegram-Staff") is TEXT_RULES["telegram"]
    assert rules_for("slack_ops") is TEXT_RULES["slack"]
    assert rules_for("carrier-pigeon") is DEFAULT_TEXT_RULES
    assert DEFAULT_TEXT_RULES.limit >= 2000


def test_fits() -> None:
    assert fits("汉" * 140, WEIBO)
    assert not fits("汉" * 141, WEIBO)


# --- properties --------------------------------------------------------------------------

FRAGMENTS = [
    "请携带身份证件到诉讼服务中心办理。",
    "诉讼费",
    "可以网上缴纳",
    "，",
    "。",
    "！",
    "？",
    "；",
    "\n",
    " ",
    "Pay online",
    " at the counter",
    " of the court",
    ". ",
    "! ",
    "e.g. ",
    "3.5",
    "don't",
    LINK,
    "http://例子.中国/路径",
    "https://example.com/a_(b)?x=1#y",
    "https://" + "a" * 70 + ".com",
    "😀",
    "\u200d".join("👨👩👧👦"),
    "🇪🇪",
    "✊🏿",
    "e\u0301",
    "@alice@example.social",
    "@张三",
    "#话题#",
    "…",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map(
    "".join
)
short_texts = st.lists(st.sampled_from(FRAGMENTS), max_size=4).map("".join)
channel_rules = st.sampled_from([TEXT_RULES[name] for name in sorted(TEXT_RULES)])
any_rules = st.one_of(
    channel_rules,
    st.builds(
        lambda rules, limit: replace(rules, limit=limit), channel_rules, st.integers(10, 200)
    ),
)
mentions = st.none() | st.sampled_from(["zhangsan", "alice@example.social", "@bob", "张三"])
links = st.none() | st.sampled_from([LINK, "https://example.org/a/long/path?with=query#and"])


def full_reply(answer: str, link: str | None, mention: str | None) -> str:
    prefix = f"@{mention.lstrip('@')} " if mention else ""
    return prefix + answer.strip() + (f" {link}" if link else "")


@settings(max_examples=300, deadline=None)
@given(
    answer=texts,
    short=st.none() | texts,
    link=links,
    mention=mentions,
    rules=any_rules,
)
def test_compose_never_exceeds_the_limit(
    answer: str, short: str | None, link: str | None, mention: str | None, rules: TextRules
) -> None:
    reply = compose(answer, rules, short=short, link=link, mention=mention)
    assert rules.count(reply) <= rules.limit
    if answer.strip():
        assert reply
    full = full_reply(answer, link, mention)
    if answer.strip() and fits(full, rules):
        assert reply == full


@settings(max_examples=300, deadline=None)
@given(answer=short_texts, link=links, mention=mentions, rules=any_rules)
def test_compose_returns_a_fitting_answer_unchanged(
    answer: str, link: str | None, mention: str | None, rules: TextRules
) -> None:
    reply = compose(answer, rules, short="Short.", link=link, mention=mention)
    full = full_reply(answer, link, mention)
    if answer.strip() and fits(full, rules):
        assert reply == full
    assert rules.count(reply) <= rules.limit


@settings(max_examples=300, deadline=None)
@given(
    options=st.lists(texts, min_size=1, max_size=5),
    rules=any_rules,
    lang=st.sampled_from(["en", "zh", "zh-Hant", "mixed"]),
    mention=mentions,
)
def test_clarify_never_exceeds_the_limit(
    options: list[str], rules: TextRules, lang: str, mention: str | None
) -> None:
    text = compose_clarify(options, rules, lang, mention=mention)
    assert text
    assert rules.count(text) <= rules.limit
