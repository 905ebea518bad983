"""Messages that are not questions get a short polite reply instead of a ticket for staff, and
questions that merely start politely are still treated as questions."""

from __future__ import annotations

import pytest

from bot.smalltalk import SmallTalk, classify_smalltalk


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
