"""Varied, realistic questions for load runs that exercise the semantic matcher.

The desk remembers the vectors of questions it has embedded (by exact text), so a run that sends
the same dozen questions over and over measures the cache, not the model. This stream mixes, in
Chinese and English alike:

- the sample FAQ's own phrasings, verbatim (the lexical match is often certain: no embedding);
- paraphrases written for this benchmark, in words the FAQ does not use;
- either of those wrapped the way people write to a desk ("您好，…谢谢", "Hi, … Thanks."), which
  makes most texts new to the desk's question cache;
- a small set of popular questions asked again and again, bare (the cache's hits).

Seeded, so two servers measured in the same run get the same sequence.
"""

from __future__ import annotations

import random
from pathlib import Path

from bot.answering.knowledge import load_knowledge

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "where do I send money for the case charges",
        "is there a way to settle the litigation bill from my phone",
        "what will the court charge me if I sue my landlord",
        "I can't afford the fees for my lawsuit, what are my options",
        "what time can I come in to the court building",
        "is the service centre open on saturday",
        "how do I find the courthouse, which road is it on",
        "can I leave my car near the court",
        "I want a lawyer but have no money",
        "who helps poor people with a court case for free",
        "how do I start a lawsuit against my employer",
        "what papers should I bring to open a case",
        "I lost my case and want a higher court to look at it",
        "how many days do I have to challenge the ruling",
        "when is my hearing going to be scheduled",
        "can I find out online how far my case has got",
        "the judge was rude to me, who do I report this to",
        "how do I get a certified copy of the judgment",
        "the other side won't pay what the court ordered",
        "how do I make the debtor comply with the ruling",
        "I was picked for jury duty, what do I need to do",
        "can we settle our dispute without a trial",
        "how long does it take to reach an agreement through mediation",
        "may I sit in on a public trial",
        "can I bring my phone into the courtroom",
    ),
    "zh": (
        "打官司的钱在哪里付",
        "能不能用手机把案件费用交了",
        "告房东大概要花多少钱",
        "家里困难诉讼费实在拿不出来怎么办",
        "法院周末上班吗",
        "诉讼服务中心几点关门",
        "去法院坐几路公交",
        "开车去法院停哪里",
        "没钱请律师能找谁帮忙",
        "法律援助怎么申请，要什么条件",
        "想起诉公司拖欠工资怎么立案",
        "立案要准备哪些东西",
        "对判决不服想上诉",
        "上诉期限是几天",
        "我的案子排到什么时候开庭了",
        "网上能查到案件进度吗",
        "法官态度很差我要投诉",
        "判决书丢了怎么补一份",
        "对方不履行判决怎么办",
        "怎么申请强制执行",
        "被选为人民陪审员要做什么",
        "不想打官司能调解吗",
        "调解一般要多长时间",
        "可以去旁听庭审吗",
        "进法院能带手机吗",
    ),
}

OPENERS: dict[str, tuple[str, ...]] = {
    "en": ("Hi, ", "Hello, ", "Good morning. ", "Excuse me, ", "Quick question: ", "Sorry, "),
    "zh": ("你好，", "您好，", "请问", "麻烦问一下，", "打扰了，", "法院你好，"),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "en": (" Thanks.", " Thank you!", " Please help.", " Thanks in advance", "?"),
    "zh": ("谢谢", "，谢谢！", "？急", "，麻烦告知", "？？"),
}

POPULAR_SHARE = 0.2  # asked bare, again and again: the question cache's hits
WRAPPED_SHARE = 0.65  # of the rest: with a greeting or a thanks (new to the cache, mostly)
PARAPHRASE_SHARE = 0.4  # of the rest: a paraphrase rather than the FAQ's own words
POPULAR_COUNT = 12


class QuestionStream:
    """Questions in a fixed, seeded order; counts what it handed out."""

    def __init__(self, knowledge: Path, seed: int = 0) -> None:
        phrasings: dict[str, list[str]] = {"zh": [], "en": []}
        for entry in load_knowledge(knowledge).entries:
            for lang, texts in entry.questions.items():
                phrasings.setdefault(lang, []).extend(texts)
        self._faq = {lang: tuple(texts) for lang, texts in phrasings.items() if texts}
        self._seed = seed
        self.restart()

    def restart(self) -> None:
        """The same sequence again from its start (one per server measured)."""
        self._random = random.Random(self._seed)
        popular = random.Random(self._seed + 1)
        self._popular = tuple(
            popular.choice(self._faq[lang] + PARAPHRASES[lang])
            for lang in ("zh", "en")
            for _ in range(POPULAR_COUNT // 2)
        )
        self.sent = 0
        self.seen: set[str] = set()
        self.repeats = 0  # texts handed out before in this sequence

    def next(self) -> str:
        text = self._draw()
        self.sent += 1
        if text in self.seen:
            self.repeats += 1
        self.seen.add(text)
        return text

    def _draw(self) -> str:
        r = self._random
        if r.random() < POPULAR_SHARE:
            return r.choice(self._popular)
        lang = r.choice(("zh", "en"))
        pool = PARAPHRASES[lang] if r.random() < PARAPHRASE_SHARE else self._faq[lang]
        text = r.choice(pool)
        if r.random() < WRAPPED_SHARE:
            text = f"{r.choice(OPENERS[lang])}{text}{r.choice(CLOSERS[lang])}"
        return text

    def sample_shares(self) -> str:
        return (
            f"{POPULAR_SHARE:.0%} from {POPULAR_COUNT} popular questions; the rest half zh half "
            f"en, {PARAPHRASE_SHARE:.0%} paraphrases / {1 - PARAPHRASE_SHARE:.0%} FAQ phrasings "
            f"({sum(len(t) for t in self._faq.values())}), {WRAPPED_SHARE:.0%} of them with a "
            "greeting and a closing"
        )
