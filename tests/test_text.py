"""Text normalisation: two ways of writing the same question must look the same to the matcher,
and what a platform adds around a question must not count as part of it."""

from __future__ import annotations

import pytest

from bot.answering.text import (
    apply_synonyms,
    chinese_runs,
    detect_lang,
    english_words,
    fold,
    strip_decorations,
)

# --- fold ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "plain"),
    [
        ("ｈｏｗ ｄｏ Ｉ ｐａｙ", "how do i pay"),  # full-width letters and capitals
        ("１２３６８", "12368"),  # full-width digits
        ("诉讼费？\u3000怎么交", "诉讼费? 怎么交"),  # ideographic space, full-width "？"
        ("訴訟費怎麼交", "诉讼费怎么交"),  # Traditional to Simplified
        ("開庭時間", "开庭时间"),
        ("HOW DO I PAY THE COURT FEE", "how do i pay the court fee"),
        ("Straße", "strasse"),  # casefold, not just lower
    ],
)
def test_fold_makes_variants_of_a_question_identical(written: str, plain: str) -> None:
    assert fold(written) == plain


def test_fold_of_traditional_and_simplified_questions_is_the_same() -> None:
    assert fold("法院幾點上班？") == fold("法院几点上班？")


def test_fold_removes_decorations_too() -> None:
    assert fold("@示例中院 訴訟費怎麼交 #诉讼# http://t.cn/abc 😀") == "诉讼费怎么交"


def test_fold_leaves_english_alone_apart_from_case() -> None:
    # Simplification must not touch Latin text (no OpenCC surprises on English words).
    assert fold("Where can I Park?") == "where can i park?"


# --- strip_decorations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("@court_bot how do I pay", "how do I pay"),
        ("@示例市中级法院 诉讼费怎么交", "诉讼费怎么交"),
        ("how do I pay @court.bot please", "how do I pay please"),
        ("@alice@mastodon.social where is the court", "where is the court"),
        ("回复@张三:诉讼费怎么交", "诉讼费怎么交"),
    ],
    ids=["ascii-mention", "chinese-mention", "mention-mid", "fediverse-handle", "reply-prefix"],
)
def test_mentions_are_removed(text: str, question: str) -> None:
    assert strip_decorations(text) == question


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("诉讼费怎么交 http://t.cn/A6abcDE", "诉讼费怎么交"),
        ("see https://court.example.gov/fees?x=1&y=2 how to pay", "see how to pay"),
        ("www.example.gov/fees how to pay", "how to pay"),
    ],
)
def test_urls_are_removed(text: str, question: str) -> None:
    assert strip_decorations(text) == question


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("#诉讼服务# 诉讼费怎么交", "诉讼费怎么交"),
        ("诉讼费怎么交 #诉讼服务#", "诉讼费怎么交"),
        ("how do I pay the court fee #help", "how do I pay the court fee"),
        ("#courts how do I appeal", "how do I appeal"),
    ],
    ids=["weibo-topic-first", "weibo-topic-last", "hashtag-last", "hashtag-first"],
)
def test_topics_and_hashtags_are_removed(text: str, question: str) -> None:
    assert strip_decorations(text) == question


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("[微笑]诉讼费怎么交[可怜]", "诉讼费怎么交"),
        ("诉讼费😀怎么交👍🏽", "诉讼费 怎么交"),
        ("诉讼费❤️怎么交", "诉讼费 怎么交"),
        ("诉讼费怎么交👨‍👩‍👧", "诉讼费怎么交"),
        ("诉讼费怎么交🇨🇳", "诉讼费怎么交"),
    ],
    ids=["weibo-emoticons", "emoji-with-skin-tone", "emoji-with-selector", "zwj", "flag"],
)
def test_emoticons_and_emoji_are_removed(text: str, question: str) -> None:
    assert strip_decorations(text) == question


def test_a_weibo_repost_chain_is_removed_and_the_question_kept() -> None:
    text = "诉讼费怎么交？//@路人甲: 同问 //@路人乙：我也想知道停车场在哪"

    assert strip_decorations(text) == "诉讼费怎么交？"


def test_plain_questions_pass_through_unchanged() -> None:
    for question in ("诉讼费怎么交？", "How do I pay the court fee?", "案号（2024）示01民终88号"):
        assert strip_decorations(question) == question


def test_a_message_of_decorations_only_becomes_empty() -> None:
    assert strip_decorations("@示例中院 #诉讼# http://t.cn/abc 😀 [微笑]") == ""


# --- detect_lang ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("诉讼费怎么交", "zh"),
        ("诉讼费怎么交?", "zh"),
        ("我的案号是2024民终88号", "zh"),
        ("how do i pay the court fee", "en"),
        ("where is the court located", "en"),
        ("how to pay 诉讼费", "mixed"),
        ("诉讼费 court fee", "mixed"),
        ("", "und"),
        ("？！。", "und"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_a_few_chinese_words_in_an_english_sentence_do_not_make_it_chinese() -> None:
    assert detect_lang("where can i pay the fee for my case at the court, 法院") != "zh"


# --- english_words -------------------------------------------------------------------------


def test_english_words_are_stemmed_and_stop_words_dropped() -> None:
    words = english_words(fold("Could you tell me about paying the court fees?"))

    assert words == ["pay", "court", "fee"]


def test_question_words_that_tell_questions_apart_are_kept() -> None:
    assert english_words("how do i pay") == ["how", "pay"]
    assert english_words("where do i pay") == ["where", "pay"]


def test_inflections_of_a_word_become_the_same_token() -> None:
    assert english_words("paying") == english_words("pays") == english_words("pay")
    assert english_words("appeals") == english_words("appealing") == english_words("appeal")


def test_english_words_ignores_chinese() -> None:
    assert english_words("诉讼费 fee") == ["fee"]


def test_a_question_of_stop_words_only_has_no_words() -> None:
    assert english_words("can you tell me what it is") == []


def test_chinese_runs_are_split_at_non_chinese() -> None:
    assert chinese_runs("诉讼费 怎么交? 2024年") == ["诉讼费", "怎么交", "年"]


# --- apply_synonyms ------------------------------------------------------------------------


def test_chinese_variants_become_the_canonical_term_even_inside_words() -> None:
    synonyms = {"诉讼费用": "诉讼费", "案子": "案件"}

    assert apply_synonyms("我的案子的诉讼费用怎么交", synonyms) == "我的案件的诉讼费怎么交"


def test_english_variants_become_the_canonical_term() -> None:
    synonyms = {"filing fee": "court fee", "litigation costs": "court fee"}

    assert apply_synonyms("where do i pay the filing fee", synonyms) == (
        "where do i pay the court fee"
    )
    assert apply_synonyms("litigation costs online", synonyms) == "court fee online"


def test_english_variants_only_match_whole_words() -> None:
    synonyms = {"fee": "charge"}

    assert apply_synonyms("the feedback about the fee", synonyms) == (
        "the feedback about the charge"
    )
    assert apply_synonyms("coffee fees", synonyms) == "coffee fees"


def test_the_longest_variant_wins() -> None:
    synonyms = {"court fees": "court fee", "fees": "charges"}

    assert apply_synonyms("court fees and fees", synonyms) == "court fee and charges"


def test_no_synonyms_leaves_the_text_alone() -> None:
    assert apply_synonyms("诉讼费用 fees", {}) == "诉讼费用 fees"


# --- links and hashtags glued to the question ---------------------------------------------


def test_a_question_glued_after_a_link_is_kept() -> None:
    assert strip_decorations("http://t.cn/A6abcDE诉讼费怎么交") == "诉讼费怎么交"


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("http://t.cn/A6abcDE，诉讼费怎么交", "，诉讼费怎么交"),
        ("诉讼费怎么交（http://t.cn/A6abcDE）", "诉讼费怎么交（ ）"),
        ("see (https://court.example.gov/fees) to pay", "see ( ) to pay"),
        ("the page 'https://court.example.gov/fees' says", "the page ' ' says"),
        ("read https://court.example.gov/fees.", "read ."),
        ("read https://court.example.gov/fees, then pay", "read , then pay"),
        ("http://t.cn/A6abcDE[微笑]诉讼费怎么交", "诉讼费怎么交"),
        ("https://court.example.gov/a_b/c-d?q=1#top 怎么交", "怎么交"),
    ],
    ids=[
        "full-width-comma",
        "full-width-brackets",
        "brackets",
        "quotes",
        "full-stop",
        "comma",
        "weibo-emoticon",
        "ascii-url-characters",
    ],
)
def test_a_link_ends_at_the_first_character_that_is_not_part_of_a_url(
    text: str, question: str
) -> None:
    assert strip_decorations(text) == question


def test_fold_keeps_a_question_glued_after_a_link() -> None:
    assert fold("http://t.cn/A6abcDE訴訟費怎麼交") == "诉讼费怎么交"


def test_the_words_between_two_hashtags_are_kept() -> None:
    assert strip_decorations("#help how do I pay the court fee #courts") == (
        "how do I pay the court fee"
    )


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("#诉讼服务#诉讼费怎么交", "诉讼费怎么交"),
        ("#诉讼服务# 诉讼费怎么交 #法院#", "诉讼费怎么交"),
        ("#诉讼 诉讼费怎么交 #法院", "诉讼费怎么交"),
        ("#help #courts how do I appeal", "how do I appeal"),
        ("how do I appeal #courts #help", "how do I appeal"),
    ],
)
def test_topics_and_hashtags_take_only_their_own_words(text: str, question: str) -> None:
    assert strip_decorations(text) == question
