"""The answering desk: one question in, one reply out, ready for the channel it goes to.

It ties the pure pieces together (small talk, matcher, policy, composer) and keeps the one bit of
conversation state the core needs: which options a clarifying question offered, so that the
citizen's "1" or "the second one" picks an entry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from bot.adapter import TextRules, rules_for
from bot.composer import compose, compose_clarify
from bot.knowledge import Entry, KnowledgeBase
from bot.matcher import Candidate, MatchDoc, Matcher
from bot.policy import (
    Answer,
    Chat,
    Clarify,
    Context,
    Decision,
    Escalate,
    InvitePrivate,
    PolicyConfig,
    decide,
    serve_entry,
)
from bot.replies import ESCALATION_ACK, INVITE_PRIVATE, SMALLTALK_REPLIES, pick
from bot.smalltalk import classify_smalltalk
from bot.text import detect_lang, fold

CLARIFY_TTL_SECONDS = 30 * 60  # a "1" an hour later is not an answer to the question we asked

_ORDINALS = {
    "1": 0,
    "2": 1,
    "3": 2,
    "一": 0,
    "二": 1,
    "三": 2,
    "第一": 0,
    "第二": 1,
    "第三": 2,
    "第一个": 0,
    "第二个": 1,
    "第三个": 2,
    "first": 0,
    "second": 1,
    "third": 2,
    "the first": 0,
    "the second": 1,
    "the third": 2,
    "the first one": 0,
    "the second one": 1,
    "the third one": 2,
    "no 1": 0,
    "no 2": 1,
    "no 3": 2,
}
_PICK_NOISE = re.compile(r"[\s()（）.。,，!！?？、:：#]+|^(?:选|option|number)\s*")


@dataclass(frozen=True)
class PendingClarify:
    options: tuple[str, ...]  # entry ids, in the order offered
    lang: str
    expires_at: float


class ClarifyMemory:
    """Per-conversation pending clarifying questions, in memory (one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pending: dict[str, PendingClarify] = {}
        self._clock = clock

    def remember(self, conversation: str, options: tuple[str, ...], lang: str) -> None:
        expires = self._clock() + CLARIFY_TTL_SECONDS
        self._pending[conversation] = PendingClarify(options, lang, expires)

    def take(self, conversation: str) -> PendingClarify | None:
        pending = self._pending.pop(conversation, None)
        if pending is None or pending.expires_at < self._clock():
            return None
        return pending


@dataclass(frozen=True)
class Reply:
    decision: Decision
    text: str
    lang: str
    candidates: tuple[Candidate, ...]

    @property
    def entry_id(self) -> str | None:
        entry = getattr(self.decision, "entry", None)
        return entry.id if isinstance(entry, Entry) else None


def match_docs(knowledge: KnowledgeBase) -> list[MatchDoc]:
    return [MatchDoc(e.id, e.questions, e.answer) for e in knowledge.entries]


def parse_pick(text: str, options: int) -> int | None:
    """The option a reply like "1", "（2）" or "the second one" picks, if any."""
    key = _PICK_NOISE.sub(" ", fold(text)).strip()
    index = _ORDINALS.get(key)
    if index is None:
        index = _ORDINALS.get(key.replace(" ", ""))
    return index if index is not None and index < options else None


class Desk:
    def __init__(
        self,
        knowledge: KnowledgeBase,
        config: PolicyConfig | None = None,
        *,
        default_lang: str = "zh",
        memory: ClarifyMemory | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.knowledge = knowledge
        self.matcher = Matcher(match_docs(knowledge), knowledge.synonyms)
        self.config = config or PolicyConfig()
        self.default_lang = default_lang
        self.memory = memory or ClarifyMemory()
        self._today = today

    def respond(
        self,
        text: str,
        *,
        channel: str = "webchat",
        public: bool = False,
        conversation: str | None = None,
        mention: str | None = None,
        rules: TextRules | None = None,
    ) -> Reply:
        rules = rules or rules_for(channel)
        context = Context(public=public, today=self._today())
        lang = self._reply_lang(text)
        mention = mention if public else None

        pending = self.memory.take(conversation) if conversation else None
        if pending is not None:
            picked = self._picked(text, pending)
            if picked is not None:
                decision = serve_entry(picked, 1.0, context, f"picked '{picked.id}' from options")
                return self._render(decision, pending.lang, (), rules, mention)

        kind = classify_smalltalk(text)
        if kind is not None:
            return self._render(Chat(kind, f"small talk: {kind}"), lang, (), rules, mention)

        candidates = tuple(self.matcher.rank(text, limit=5))
        if lang not in ("zh", "en"):
            lang = candidates[0].lang if candidates else self.default_lang
        decision = decide(candidates, self.knowledge, context, self.config)
        if isinstance(decision, Clarify) and conversation:
            self.memory.remember(conversation, tuple(e.id for e in decision.options), lang)
        return self._render(decision, lang, candidates, rules, mention)

    def _reply_lang(self, text: str) -> str:
        lang = detect_lang(fold(text))
        return lang if lang in ("zh", "en") else "und"

    def _picked(self, text: str, pending: PendingClarify) -> Entry | None:
        index = parse_pick(text, len(pending.options))
        if index is not None:
            return self.knowledge.get(pending.options[index])
        # The citizen may answer with words instead: accept one of the offered entries if it is
        # clearly the best of them for what they wrote.
        ranked = [c for c in self.matcher.rank(text, limit=10) if c.entry_id in pending.options]
        if (
            ranked
            and ranked[0].score >= self.config.clarify_threshold
            and (len(ranked) == 1 or ranked[0].score - ranked[1].score >= self.config.answer_margin)
        ):
            return self.knowledge.get(ranked[0].entry_id)
        return None

    def _render(
        self,
        decision: Decision,
        lang: str,
        candidates: tuple[Candidate, ...],
        rules: TextRules,
        mention: str | None,
    ) -> Reply:
        lang = lang if lang in ("zh", "en") else self.default_lang
        match decision:
            case Answer(entry=entry):
                text = compose(
                    _in_lang(entry.answer, lang),
                    rules,
                    short=_in_lang(entry.short, lang) or None,
                    link=entry.link,
                    mention=mention,
                )
            case Clarify(options=options):
                questions = [_in_lang_first(e.questions, lang) for e in options]
                text = compose_clarify(questions, rules, lang, mention=mention)
            case InvitePrivate():
                text = compose(pick(INVITE_PRIVATE, lang), rules, mention=mention)
            case Escalate():
                text = compose(pick(ESCALATION_ACK, lang), rules, mention=mention)
            case Chat(kind=kind):
                text = compose(pick(SMALLTALK_REPLIES[kind], lang), rules, mention=mention)
        return Reply(decision, text, lang, candidates)


def _in_lang(texts: Mapping[str, str], lang: str) -> str:
    """The text in `lang`, else in any language the entry has."""
    return texts.get(lang) or next(iter(texts.values()), "")


def _in_lang_first(questions: Mapping[str, tuple[str, ...]], lang: str) -> str:
    """The canonical question in `lang`, else in any language the entry has."""
    phrasings = questions.get(lang) or next(iter(questions.values()), ())
    return phrasings[0] if phrasings else ""
