"""Recognise messages that are not questions: greetings, thanks, goodbyes, empty messages.

These get a short polite reply; escalating "谢谢" to a human wastes staff time.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.answering.text import fold


class SmallTalk(StrEnum):
    EMPTY = "empty"
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"


_PHRASES: dict[SmallTalk, tuple[str, ...]] = {
    SmallTalk.GREETING: (
        "你好",
        "您好",
        "你们好",
        "大家好",
        "在吗",
        "在不在",
        "有人吗",
        "早上好",
        "上午好",
        "下午好",
        "晚上好",
        "哈喽",
        "嗨",
        "hi",
        "hello",
        "hey",
        "hi there",
        "hello there",
        "good morning",
        "good afternoon",
        "good evening",
        "anyone there",
        "is anyone there",
    ),
    SmallTalk.THANKS: (
        "谢谢",
        "谢谢你",
        "谢谢您",
        "谢谢你们",
        "感谢您",
        "多谢",
        "感谢",
        "非常感谢",
        "谢啦",
        "谢了",
        "好的谢谢",
        "好的",
        "好",
        "明白了",
        "知道了",
        "收到",
        "辛苦了",
        "thanks",
        "thank you",
        "thx",
        "ty",
        "many thanks",
        "thanks a lot",
        "thank you very much",
        "ok",
        "okay",
        "ok thanks",
        "got it",
        "great",
        "cheers",
    ),
    SmallTalk.GOODBYE: ("再见", "拜拜", "bye", "goodbye", "see you"),
}
# Words that only soften or strengthen a phrase: "谢谢啦", "你好呀~", "太感谢了", "thanks so much".
_FILLERS = (*"啦 呀 哈 哦 呢 了 啊 吧 嘛 非常 太".split(), "so much", "very much", "a lot")

# Compared without spaces, so that "thankyou" is "thank you" and "bye bye" is "byebye".
_LOOKUP = {
    phrase.replace(" ", ""): kind for kind, phrases in _PHRASES.items() for phrase in phrases
}
_TOKENS = frozenset(_LOOKUP) | {filler.replace(" ", "") for filler in _FILLERS}
_LONGEST = max(len(token) for token in _TOKENS)
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)
# When a message mixes kinds, the reply answers the one that matters most: "谢谢，再见" is a
# goodbye, "你好，谢谢" a thanks.
_PRECEDENCE = (SmallTalk.GOODBYE, SmallTalk.THANKS, SmallTalk.GREETING)


def classify_smalltalk(text: str) -> SmallTalk | None:
    """The kind of small talk `text` is, or None when it may be a question.

    Small talk is a message made only of known phrases and fillers, in any combination and
    repetition ("你好，在吗？", "好的谢谢啦", "thank you so much", "bye bye"). One other word
    ("谢谢，诉讼费怎么交", "谢谢法官") makes it a possible question.
    """
    squeezed = _PUNCTUATION.sub("", fold(text))
    if not squeezed:
        return SmallTalk.EMPTY
    tokens = _split_into_tokens(squeezed)
    kinds = {_LOOKUP[token] for token in tokens or () if token in _LOOKUP}
    return next((kind for kind in _PRECEDENCE if kind in kinds), None)


def _split_into_tokens(text: str) -> list[str] | None:
    """`text` as a sequence of known phrases and fillers, or None when it is not one.

    Dynamic programming, linear in the length of the text: `begins[end]` is where a token ending
    at `end` begins in a split that covers everything before it (-1: there is no such split).
    """
    begins = [0] + [-1] * len(text)
    for end in range(1, len(text) + 1):
        for begin in range(max(0, end - _LONGEST), end):
            if begins[begin] >= 0 and text[begin:end] in _TOKENS:
                begins[end] = begin
                break
    if begins[-1] < 0:
        return None
    tokens: list[str] = []
    end = len(text)
    while end:
        tokens.append(text[begins[end] : end])
        end = begins[end]
    return tokens[::-1]
