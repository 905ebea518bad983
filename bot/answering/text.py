"""Normalisation and tokens for Chinese and English text.

`fold` makes two ways of writing the same question look the same (width, case, script, platform
decorations); `detect_lang` tells Chinese from English; `tokens` turns folded text into the
features the matcher indexes. All functions are pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

import opencc
import snowballstemmer

# Platform decorations that carry no question: Weibo repost chains and reply prefixes,
# @mentions (ASCII and Chinese names), URLs, Weibo topics (#topic#), hashtags, [emoticons].
_REPOST_CHAIN = re.compile(r"//\s*@[^:：\s]+[:：].*$", re.DOTALL)
_REPLY_PREFIX = re.compile(r"^\s*(?:回复|reply to)\s*@[^:：\s]+\s*[:：]", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.\-]+(?:@[\w.\-]+)?", re.UNICODE)
# A link is made of ASCII URL characters only and ends at the first other one (Chinese text,
# whitespace, full-width punctuation, quotes, brackets): Weibo short links are often glued to the
# question ("http://t.cn/A6abcDE诉讼费怎么交"). Punctuation ending a sentence is not part of it.
_URL = re.compile(
    r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&*+,;=%]*[A-Za-z0-9\-_~/#@$&*+=%]", re.IGNORECASE
)
# A Weibo topic is "#诉讼服务#": short and without spaces, so "#help how do I pay #courts" is two
# hashtags around a question, not one topic.
_WEIBO_TOPIC = re.compile(r"#[^#\s]{1,30}#")
_HASHTAG = re.compile(r"#\w+", re.UNICODE)
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")
_SPACES = re.compile(r"\s+")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

ENGLISH_STOP_WORDS = frozenset(
    """a an the and or but if of at by for with about to from in on into onto off over under
    is are was were be been being am do does did doing have has had having i me my we our you your
    he him his she her it its they them their this that these those there here what which who whom
    whose can could would should will shall may might must please pls plz just so than then too very
    s t don't can't won't i'm it's let's get got tell know want need like also any some""".split()
)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def _is_decoration(char: str) -> bool:
    """Emoji, pictographs, variation selectors and joiners: nothing a question depends on."""
    category = unicodedata.category(char)
    return category in ("So", "Sk", "Cs", "Co", "Cn", "Cf") or 0xFE00 <= ord(char) <= 0xFE0F


class _DecorationTable(dict[int, str | int]):
    """`str.translate` table: decorations become spaces, everything else stays. Filled as
    characters are first seen, so each character's category is looked up once, not per use
    (the per-character loop was a fifth of the time to answer a question)."""

    LIMIT = 1 << 16  # distinct characters remembered: hostile text must not grow it forever

    def __missing__(self, codepoint: int) -> str | int:
        value: str | int = " " if _is_decoration(chr(codepoint)) else codepoint
        if len(self) < self.LIMIT:
            self[codepoint] = value
        return value


_DECORATIONS = _DecorationTable()


def strip_addressing(text: str) -> str:
    """Remove whom a message is addressed to: repost chains, reply prefixes and @mentions."""
    text = _REPOST_CHAIN.sub(" ", text)
    text = _REPLY_PREFIX.sub(" ", text)
    return _SPACES.sub(" ", _MENTION.sub(" ", text)).strip()


def strip_decorations(text: str) -> str:
    """Remove what a platform adds around a question: mentions, links, topics, emoji."""
    text = _REPOST_CHAIN.sub(" ", text)
    text = _REPLY_PREFIX.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _WEIBO_TOPIC.sub(" ", text)
    text = _HASHTAG.sub(" ", text)
    text = _EMOTICON.sub(" ", text)
    text = text.translate(_DECORATIONS)
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Fold width, case and script: full-width to half-width, Traditional to Simplified."""
    return _fold_case_and_script(strip_decorations(unicodedata.normalize("NFKC", text)))


def fold_keeping_decorations(text: str) -> str:
    """`fold` that keeps emoji, #hashtags and [brackets]: for short replies such as "#2", "[2]"
    or "2️⃣", where the decoration is the message. Only whom it is addressed to is removed."""
    return _fold_case_and_script(strip_addressing(unicodedata.normalize("NFKC", text)))


def _fold_case_and_script(text: str) -> str:
    text = text.casefold()
    if _CJK.search(text):
        text = _t2s().convert(text)
    return text


def detect_lang(text: str) -> str:
    """'zh', 'en', 'mixed' or 'und' (nothing to go by), from the share of Chinese characters."""
    cjk = len(_CJK.findall(text))
    latin = sum(len(w) for w in _LATIN_WORD.findall(text.casefold()))
    # A Chinese character carries about as much as a short English word: weigh it so.
    cjk_weight, latin_weight = cjk * 3, latin
    total = cjk_weight + latin_weight
    if total == 0:
        return "und"
    share = cjk_weight / total
    if share >= 0.8:
        return "zh"
    if share <= 0.2:
        return "en"
    return "mixed"


SynonymRewrite = Callable[[str], str]


def compile_synonyms(synonyms: Mapping[str, str]) -> SynonymRewrite:
    """A function that replaces every variant with its canonical term, longest variant first.

    Compiled once per knowledge base: sorting the variants and building their patterns on every
    question cost more than matching it on a small FAQ."""
    steps: list[tuple[str, str, re.Pattern[str] | None]] = []
    for variant in sorted(synonyms, key=len, reverse=True):
        pattern = None
        if not _CJK.search(variant):
            pattern = re.compile(rf"(?<![a-z0-9]){re.escape(variant)}(?![a-z0-9])")
        steps.append((variant, synonyms[variant], pattern))

    def rewrite(folded: str) -> str:
        for variant, canonical, pattern in steps:
            if variant not in folded:  # neither form can match without the substring
                continue
            folded = (
                folded.replace(variant, canonical)
                if pattern is None
                else pattern.sub(canonical, folded)
            )
        return folded

    return rewrite


def apply_synonyms(folded: str, synonyms: Mapping[str, str]) -> str:
    """Replace every variant with its canonical term, longest variant first."""
    return compile_synonyms(synonyms)(folded) if synonyms else folded


def english_words(folded: str) -> list[str]:
    """Stemmed English content words, stop words left out."""
    words = [w for w in _LATIN_WORD.findall(folded) if w not in ENGLISH_STOP_WORDS]
    return list(_stemmer().stemWords(words))


def english_stop_words(folded: str) -> list[str]:
    """The stop words of the text: weak evidence alone, but "who" and "you" tell
    "who made you" from "how to make chicken"."""
    return [w for w in _LATIN_WORD.findall(folded) if w in ENGLISH_STOP_WORDS]


def chinese_runs(folded: str) -> list[str]:
    """The runs of Chinese characters, in order."""
    return _CJK_RUN.findall(folded)
