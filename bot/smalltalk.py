"""Recognise messages that are not questions: greetings, thanks, goodbyes, empty messages.

These get a short polite reply; escalating "谢谢" to a human wastes staff time.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.text import fold


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
_LOOKUP = {phrase: kind for kind, phrases in _PHRASES.items() for phrase in phrases}
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


def classify_smalltalk(text: str) -> SmallTalk | None:
    """The kind of small talk `text` is, or None when it may be a question."""
    bare = _PUNCTUATION.sub(" ", fold(text)).strip()
    if not bare:
        return SmallTalk.EMPTY
    if bare in _LOOKUP:
        return _LOOKUP[bare]
    squeezed = bare.replace(" ", "")
    # "你好你好", "谢谢谢谢": the same phrase repeated is still small talk.
    for phrase, kind in _LOOKUP.items():
        flat = phrase.replace(" ", "")
        if flat and squeezed == flat * (len(squeezed) // len(flat)) and len(squeezed) >= len(flat):
            return kind
    return None
