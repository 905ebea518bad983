"""Whether a message has the form of a question at all, judged by its shape, not by a list of
examples: what is left once mentions, links, emoji, punctuation and social words (greetings,
thanks, tests, laughter) are taken away, and whether anything asks.

Used only for messages the FAQ cannot answer, to choose between opening a ticket (a person
reads it) and asking the citizen to type their question: "Hello, world", "@All Good Morning!!",
"Лол кек 😂", "baba", "测试一下", a lone emoji or sticker, or a platform's placeholder for a
message it cannot show ("【收到不支持的消息类型，暂无法显示】") carry nothing a person could answer.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from bot.answering.text import ENGLISH_STOP_WORDS, fold


class Form(StrEnum):
    QUESTION = "question"  # something a person could answer
    EMPTY = "empty"  # nothing but emoji, punctuation, mentions or links
    PLACEHOLDER = "placeholder"  # the whole message is a bracketed platform notice: "[Sticker]"
    NO_CONTENT = "no-content"  # too few words that carry meaning, and nothing that asks


# A platform's stand-in for content it cannot pass on is one bracketed phrase: "[图片]",
# "[Sticker]", "【收到不支持的消息类型，暂无法显示】", "<Media omitted>".
_PLACEHOLDER = re.compile(r"^\s*[\[【<〔(（]\s*[^\[\]【】<>〔〕()（）]{1,40}\s*[\]】>〕)）]\s*$")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # letters of any script, no digits
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ASKS_MARK = re.compile(r"[?？]")

# Words that greet, thank, test, laugh or address a crowd: social, never the subject of a
# question. Latin and Cyrillic words, compared after folding (lower case).
_SOCIAL_WORDS = frozenset(
    """hi hello hey hiya yo howdy greetings morning afternoon evening night good day
    thanks thank thx ty cheers ok okay okey fine great cool nice yes yeah yep no nope sure
    bye goodbye see later welcome please pls sorry excuse
    test testing tested tests ping check checking world everyone everybody all guys folks
    there anyone somebody someone dear sir madam team bot desk help question ask need want
    lol lmao rofl haha hahaha hehe hmm hm um uh ah oh wow omg
    лол кек привет спасибо пока тест ок да нет хорошо""".split()
)
# Chinese: greetings, thanks, tests, laughter, assent and particles; removed before counting.
_SOCIAL_HAN = tuple(
    sorted(
        """你好 您好 你们好 大家好 早上好 上午好 中午好 下午好 晚上好 早安 午安 晚安 早 哈喽 嗨
        谢谢 感谢 多谢 辛苦 麻烦 打扰 收到 好的 好 行 可以 嗯 哦 噢 喔 哈 呵 嘿 嘻 啊 呀 啦 吧 嘛 了
        测试 试试 试一下 一下 在吗 在不在 有人 再见 拜拜 各位 全体 大家 朋友 同志 老师 请问 你 您 我
        的 们 是 在 吗 呢 么 么么 哒 亲 想 要问 咨询 问题 问 有个 一个 个 帮忙 帮助""".split(),
        key=len,
        reverse=True,
    )
)
# What asks: interrogative words. A question mark counts too.
_ASKS_WORDS = frozenset(
    """what how when where who whom whose why which can could may might should shall will would
    is are am do does did was were""".split()
)
_ASKS_HAN = ("什么", "怎么", "怎样", "如何", "哪", "几", "多少", "多久", "是否", "能否", "可否",
             "为什么", "为何", "吗", "呢", "请问", "咨询", "想问", "怎么办")  # fmt: skip

# Enough content to be about something: three meaningful words ("landlord kept deposit"), or
# three Chinese characters besides social ones ("我要离婚" keeps 要离婚); with something that
# asks, fewer will do.
MIN_WORDS, MIN_WORDS_ASKING = 3, 1
MIN_HAN, MIN_HAN_ASKING = 3, 2
MIN_LETTERS = 3  # "ok", "?", "a": too short to be about anything


def question_form(text: str) -> Form:
    """The form of `text`: QUESTION when it has enough content to be answered by a person."""
    raw = unicodedata.normalize("NFKC", text)
    if _PLACEHOLDER.match(text) or _PLACEHOLDER.match(raw):
        return Form.PLACEHOLDER
    folded = fold(raw)
    letters = sum(1 for char in folded if char.isalpha())
    if letters == 0:
        return Form.EMPTY
    asks = bool(_ASKS_MARK.search(raw))
    han = "".join(_HAN.findall(folded))
    if any(marker in han for marker in _ASKS_HAN):
        asks = True
    for social in _SOCIAL_HAN:
        han = han.replace(social, "")
    words = [w for w in _WORD.findall(_HAN.sub(" ", folded)) if len(w) > 1]
    if any(w in _ASKS_WORDS for w in words):
        asks = True
    content = [w for w in words if w not in _SOCIAL_WORDS and w not in ENGLISH_STOP_WORDS]
    if letters < MIN_LETTERS and not han:
        return Form.NO_CONTENT
    enough_words = len(content) >= (MIN_WORDS_ASKING if asks else MIN_WORDS)
    enough_han = len(han) >= (MIN_HAN_ASKING if asks else MIN_HAN)
    return Form.QUESTION if enough_words or enough_han else Form.NO_CONTENT


def script_lang(text: str, default: str) -> str:
    """'zh' when the text has Chinese characters, 'en' when it has other letters, else
    `default`: the language to ask a citizen in when their message had no question to go by."""
    folded = fold(text)
    if _HAN.search(folded):
        return "zh"
    if any(char.isalpha() for char in folded):
        return "en"
    return default
