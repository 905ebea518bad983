"""Messages that are not questions get a short polite reply instead of a ticket for staff, and
questions that merely start politely are still treated as questions."""

from __future__ import annotations

import pytest

from bot.answering.smalltalk import SmallTalk, classify_smalltalk


@pytest.mark.parametrize(
    "text",
    [
        "你好",
        "您好！",
        "你好你好",
        "在吗？",
        "有人吗",
        "早上好",
        "Hi",
        "hello!",
        "Hello there",
        "Good morning.",
    ],
)
def test_greetings(text: str) -> None:
    assert classify_smalltalk(text) is SmallTalk.GREETING


@pytest.mark.parametrize(
    "text",
    [
        "谢谢",
        "谢谢！！",
        "谢谢谢谢",
        "谢谢。",
        "非常感谢！",
        "好的，谢谢",
        "收到",
        "Thank you.",
        "thanks!",
        "Thanks a lot!!",
        "THANK YOU VERY MUCH",
        "ok thanks",
        "ｔｈａｎｋｓ",
        "謝謝",
    ],
)
def test_thanks(text: str) -> None:
    assert classify_smalltalk(text) is SmallTalk.THANKS


@pytest.mark.parametrize(
    "text", ["再见", "再见！", "拜拜拜拜", "Bye!", "bye bye", "Goodbye.", "see you"]
)
def test_goodbyes(text: str) -> None:
    assert classify_smalltalk(text) is SmallTalk.GOODBYE


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "？？？", "...", "😀👍", "@示例中院"])
def test_nothing_to_answer_is_empty(text: str) -> None:
    assert classify_smalltalk(text) is SmallTalk.EMPTY


def test_decorations_around_thanks_do_not_matter() -> None:
    assert classify_smalltalk("@示例中院 谢谢！[微笑]") is SmallTalk.THANKS


@pytest.mark.parametrize(
    "text",
    [
        "谢谢，诉讼费怎么交",
        "你好，请问诉讼费怎么交？",
        "您好 法院几点上班",
        "hello, how do I appeal",
        "Hi, where is the court?",
        "thanks, but how do I pay the fee?",
        "goodbye to my money? how do I get a refund",
        "谢谢法官",  # a message to a person, not a closing "thanks" to the desk
        "诉讼费",
        "1",
    ],
)
def test_real_questions_that_contain_polite_words_are_not_small_talk(text: str) -> None:
    assert classify_smalltalk(text) is None


def test_a_repeated_phrase_must_repeat_whole() -> None:
    assert classify_smalltalk("谢谢谢") is None
    assert classify_smalltalk("hellohell") is None


# --- combinations of phrases, fillers and intensifiers ---------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("你好，在吗？", SmallTalk.GREETING),
        ("你好呀~", SmallTalk.GREETING),
        ("在吗在吗", SmallTalk.GREETING),
        ("hi there, anyone there?", SmallTalk.GREETING),
        ("谢谢啦", SmallTalk.THANKS),
        ("好的，谢谢啦~", SmallTalk.THANKS),
        ("太感谢了！", SmallTalk.THANKS),
        ("非常感谢您", SmallTalk.THANKS),
        ("thank you so much", SmallTalk.THANKS),
        ("Thanks so much!", SmallTalk.THANKS),
        ("thanks a lot, thank you very much", SmallTalk.THANKS),
        ("thankyou", SmallTalk.THANKS),
        ("你好，谢谢", SmallTalk.THANKS),
        ("谢谢，再见", SmallTalk.GOODBYE),
        ("ok thanks, bye", SmallTalk.GOODBYE),
        ("byebye", SmallTalk.GOODBYE),
    ],
)
def test_a_message_made_only_of_small_talk_phrases_is_small_talk(
    text: str, kind: SmallTalk
) -> None:
    assert classify_smalltalk(text) is kind


@pytest.mark.parametrize(
    "text",
    [
        "谢谢啦，诉讼费怎么交",
        "你好呀，在吗，我想问立案",
        "thank you so much, where do I pay?",
        "so much",  # an intensifier alone thanks no one
        "hello there, my case",
    ],
)
def test_one_other_word_makes_a_possible_question(text: str) -> None:
    assert classify_smalltalk(text) is None


def test_a_long_message_of_small_talk_is_classified_quickly() -> None:
    assert classify_smalltalk("好的谢谢" * 5000 + "诉讼费") is None
    assert classify_smalltalk("好的谢谢" * 5000) is SmallTalk.THANKS
