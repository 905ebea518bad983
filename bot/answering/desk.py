"""The answering desk: one question in, one reply out, ready for the channel it goes to.

It ties the pure pieces together (small talk, matcher, policy, composer) and keeps the one bit of
conversation state the core needs: which options a clarifying question offered, so that the
citizen's "1" or "the second one" picks an entry.

That state lives in a `ClarifyMemory` (one process: the CLI, tests) unless the caller keeps it
itself: `respond(..., pending=...)` takes the question pending in the conversation and the reply
says what to keep next (`Reply.pending_clarify`), which the service stores in its database.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum
from typing import Literal

from bot.answering.composer import compose, compose_clarify
from bot.answering.knowledge import Entry, KnowledgeBase
from bot.answering.matcher import Candidate, MatchDoc, Matcher
from bot.answering.policy import (
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
from bot.answering.replies import INVITE_PRIVATE, SMALLTALK_REPLIES, TICKET_ACK, pick
from bot.answering.semantic import HybridMatcher, QueryVectors, SemanticModel, build_hybrid
from bot.answering.smalltalk import classify_smalltalk
from bot.answering.text import detect_lang, fold, fold_keeping_decorations
from bot.platform.adapter import TextRules, rules_for

CLARIFY_TTL_SECONDS = 30 * 60  # a "1" an hour later is not an answer to the question we asked
CLARIFY_MAX_PENDING = 10_000  # conversations waiting for a pick; beyond it the oldest is dropped


def _ordinals() -> dict[str, int]:
    """Each way of naming an option ("1", "二", "第2个", "the third one", ...) → its index."""
    table: dict[str, int] = {}
    for index, (digit, han, word) in enumerate(
        [("1", "一", "first"), ("2", "二", "second"), ("3", "三", "third")]
    ):
        for key in (digit, han, f"第{digit}", f"第{han}", f"第{digit}个", f"第{han}个"):
            table[key] = index
        for key in (word, f"the {word}", f"the {word} one", f"{word} one", f"no {digit}"):
            table[key] = index
    return table


_ORDINALS = _ordinals()
_KEYCAP = re.compile(r"([0-9])\ufe0f?\u20e3")  # "2️⃣": a digit, a variation selector, a keycap
_PICK_NOISE = re.compile(
    r"[\s()（）\[\]【】.。,，!！?？、:：#~～]+|^(?:选择|选|option|number|nr)(?![a-z])\s*"
)


@dataclass(frozen=True)
class PendingClarify:
    options: tuple[str, ...]  # entry ids, in the order offered
    lang: str
    # Seconds on the keeper's clock: time.monotonic() in a ClarifyMemory; Unix time (the desk's
    # `wall_clock`) when the caller keeps the state, as the database does.
    expires_at: float


class _Keeper(Enum):
    MEMORY = "memory"


USE_MEMORY: Literal[_Keeper.MEMORY] = _Keeper.MEMORY
"""`respond(pending=USE_MEMORY)` (the default): the desk's own ClarifyMemory keeps the state."""


class ClarifyMemory:
    """Pending clarifying questions per (channel, conversation), in memory (one process).

    Conversation ids are only unique within a channel: chat 42 on Telegram is not chat 42 on
    Mastodon. Expired questions are dropped as new ones are remembered, and at most `max_pending`
    are kept (the oldest go first), so the memory does not grow with every conversation ever held.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_pending: int = CLARIFY_MAX_PENDING,
    ) -> None:
        # Oldest first, which is also the order of expiry: each expires CLARIFY_TTL_SECONDS after it
        # was remembered (a monotonic clock), so the expired ones are always at the front.
        self._pending: OrderedDict[tuple[str, str], PendingClarify] = OrderedDict()
        self._clock = clock
        self._max = max_pending

    def __len__(self) -> int:
        return len(self._pending)

    def remember(
        self, channel: str, conversation: str, options: tuple[str, ...], lang: str
    ) -> None:
        now = self._clock()
        while self._pending and next(iter(self._pending.values())).expires_at < now:
            self._pending.popitem(last=False)
        key = (channel, conversation)
        self._pending.pop(key, None)  # asked again: it becomes the newest
        while len(self._pending) >= self._max:
            self._pending.popitem(last=False)
        self._pending[key] = PendingClarify(options, lang, now + CLARIFY_TTL_SECONDS)

    def take(self, channel: str, conversation: str) -> PendingClarify | None:
        pending = self._pending.pop((channel, conversation), None)
        if pending is None or pending.expires_at < self._clock():
            return None
        return pending


@dataclass(frozen=True)
class Reply:
    decision: Decision
    text: str
    lang: str
    candidates: tuple[Candidate, ...]
    # What the conversation should remember after this reply: the options just offered, or None
    # (forget any pending question: whatever the citizen said, it was their answer to it).
    pending_clarify: PendingClarify | None = None

    @property
    def entry_id(self) -> str | None:
        entry = getattr(self.decision, "entry", None)
        return entry.id if isinstance(entry, Entry) else None


def match_docs(knowledge: KnowledgeBase) -> list[MatchDoc]:
    return [MatchDoc(e.id, e.questions, e.answer) for e in knowledge.entries]


def parse_pick(text: str, options: int) -> int | None:
    """The option a reply like "1", "（2）", "2️⃣", "#2", "第2个" or "the second one" picks, if any.

    Read from the text with its emoji, #hashtags and [brackets] kept (`fold` would remove "#2",
    "[2]" and the keycap of "2️⃣"), then from the folded text ("2 👍").
    """
    for folded in (fold_keeping_decorations(text), fold(text)):
        key = _PICK_NOISE.sub(" ", _KEYCAP.sub(r"\1", folded)).strip()
        index = _ORDINALS.get(key)
        if index is None:
            index = _ORDINALS.get(key.replace(" ", ""))
        if index is not None:
            return index if index < options else None
    return None


class Desk:
    def __init__(
        self,
        knowledge: KnowledgeBase,
        config: PolicyConfig | None = None,
        *,
        default_lang: str = "zh",
        memory: ClarifyMemory | None = None,
        today: Callable[[], date] = date.today,
        wall_clock: Callable[[], float] = time.time,
        semantic: SemanticModel | None = None,
        questions: QueryVectors | None = None,
    ) -> None:
        """`semantic`: rank with the hybrid matcher and its own policy (`config` then applies
        to the lexical matcher only, which the desk falls back to without a model);
        `questions`: the question vectors to share with other versions of the desk."""
        self.knowledge = knowledge
        self.matcher = Matcher(match_docs(knowledge), knowledge.synonyms)  # lexical, always
        # What questions are ranked with: the hybrid matcher when there is a model.
        self.ranker: Matcher | HybridMatcher = self.matcher
        self.config = config or PolicyConfig()
        if semantic is not None:
            self.ranker = build_hybrid(self.matcher, semantic, questions)
            self.config = semantic.policy
        self.default_lang = default_lang
        self.memory = memory if memory is not None else ClarifyMemory()
        self._today = today
        self._wall_clock = wall_clock

    def respond(
        self,
        text: str,
        *,
        channel: str = "webchat",
        public: bool = False,
        conversation: str | None = None,
        mention: str | None = None,
        rules: TextRules | None = None,
        pending: PendingClarify | Literal[_Keeper.MEMORY] | None = USE_MEMORY,
    ) -> Reply:
        """The reply to `text`.

        `pending`: the clarifying question this conversation is waiting on, when the caller keeps
        that state (expiry in Unix time); the desk then neither reads nor writes its memory, and
        the caller stores `Reply.pending_clarify`. By default the desk's memory keeps it.
        """
        rules = rules or rules_for(channel)
        lang = self._reply_lang(text)
        context = Context(public=public, today=self._today(), lang=lang)
        mention = mention if public else None

        keep_in_memory = pending is USE_MEMORY
        if pending is USE_MEMORY:
            pending = self.memory.take(channel, conversation) if conversation else None
        elif pending is not None and pending.expires_at < self._wall_clock():
            pending = None
        if pending is not None:
            picked = self._picked(text, pending)
            if picked is not None:
                decision = serve_entry(picked, 1.0, context, f"picked '{picked.id}' from options")
                return self._render(decision, pending.lang, (), rules, mention)

        kind = classify_smalltalk(text)
        if kind is not None:
            return self._render(Chat(kind, f"small talk: {kind}"), lang, (), rules, mention)

        candidates = tuple(self.ranker.rank(text, limit=5))
        if lang not in ("zh", "en"):
            lang = candidates[0].lang if candidates else self.default_lang
        decision = decide(candidates, self.knowledge, context, self.config)
        reply = self._render(decision, lang, candidates, rules, mention)
        if isinstance(decision, Clarify) and conversation:
            options = tuple(e.id for e in decision.options)
            if keep_in_memory:
                self.memory.remember(channel, conversation, options, lang)
            expires = self._wall_clock() + CLARIFY_TTL_SECONDS
            reply = replace(reply, pending_clarify=PendingClarify(options, lang, expires))
        return reply

    @property
    def matcher_name(self) -> str:
        """ "hybrid" (lexical fused with the embedding model) or "lexical"."""
        return "hybrid" if isinstance(self.ranker, HybridMatcher) else "lexical"

    def embed_waiting(self, texts: list[str]) -> int:
        """Embed the questions about to be answered in one batch (blocking: call it in a
        thread); `respond` then finds their vectors cached. 0 without a model."""
        if isinstance(self.ranker, HybridMatcher):
            return self.ranker.embed_waiting(texts)
        return 0

    def _reply_lang(self, text: str) -> str:
        lang = detect_lang(fold(text))
        return lang if lang in ("zh", "en") else "und"

    def _picked(self, text: str, pending: PendingClarify) -> Entry | None:
        index = parse_pick(text, len(pending.options))
        if index is not None:
            return self.knowledge.get(pending.options[index])
        # The citizen may answer with words instead: accept one of the offered entries if it is
        # clearly the best of them for what they wrote.
        ranked = [c for c in self.ranker.rank(text, limit=10) if c.entry_id in pending.options]
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
                text = compose(pick(TICKET_ACK, lang), rules, mention=mention)
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
