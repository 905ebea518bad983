"""Decide what to do with a question: answer, clarify, escalate, or redirect to a private chat.

Pure functions of the ranked candidates, the entries' serving rules and the conversation's
context. Every decision carries the reason an operator will read in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.answering.knowledge import Entry, KnowledgeBase
from bot.answering.matcher import Candidate
from bot.answering.smalltalk import SmallTalk


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds on the matcher's scores; the defaults were chosen on the development data
    (README, "How the thresholds were chosen")."""

    answer_threshold: float = 0.55  # below this the best entry is not trusted on its own
    answer_margin: float = 0.15  # the best entry must lead the next one by this much
    clarify_threshold: float = 0.5  # candidates worth offering in "did you mean"
    clarify_band: float = 0.08  # offered candidates lie within this of the best one
    clarify_max: int = 3
    # Margin-aware confidence `top + margin_weight · (top − second)` is what the threshold is
    # compared with (0: the score alone, as the lexical defaults were chosen).
    margin_weight: float = 0.0
    # Per question language, a threshold replacing `answer_threshold` (thresholds do not carry
    # across languages: docs/semantic.md).
    lang_thresholds: tuple[tuple[str, float], ...] = ()

    def threshold_for(self, lang: str) -> float:
        return dict(self.lang_thresholds).get(lang, self.answer_threshold)


@dataclass(frozen=True)
class Context:
    public: bool
    today: date
    lang: str = ""  # the question's language ("zh", "en"; "" when unknown)


def confidence(score: float, runner_up: float, config: PolicyConfig) -> float:
    """How sure the best entry is: its score, raised by its lead over the next entry."""
    return score + config.margin_weight * (score - runner_up)


@dataclass(frozen=True)
class Answer:
    entry: Entry
    score: float
    reason: str
    decision: str = "answer"


@dataclass(frozen=True)
class InvitePrivate:
    """The entry may only be answered in private: invite the citizen to a private message."""

    entry: Entry
    score: float
    reason: str
    decision: str = "private"


@dataclass(frozen=True)
class Clarify:
    options: tuple[Entry, ...]
    reason: str
    decision: str = "clarify"


@dataclass(frozen=True)
class Escalate:
    reason: str
    entry: Entry | None = None  # the matched entry, when it asks to be handed to a human
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    decision: str = "escalate"


@dataclass(frozen=True)
class Chat:
    kind: SmallTalk
    reason: str
    decision: str = "smalltalk"


Decision = Answer | InvitePrivate | Clarify | Escalate | Chat

# Scores are floats: 0.70 - 0.64 is 0.0599999..., which must count as the 0.06 margin it is.
_TOLERANCE = 1e-9


def serve_entry(entry: Entry, score: float, context: Context, why: str) -> Decision:
    """Apply an entry's own serving rules once it has been chosen."""
    if entry.expired(context.today):
        return Escalate(f"{why}, but '{entry.id}' expired on {entry.valid_until}", entry)
    if entry.escalate:
        return Escalate(f"{why}; '{entry.id}' is marked for a human (escalate: true)", entry)
    if context.public and not entry.public:
        return InvitePrivate(entry, score, f"{why}; '{entry.id}' is not answered in public")
    return Answer(entry, score, why)


def decide(
    candidates: Sequence[Candidate],
    knowledge: KnowledgeBase,
    context: Context,
    config: PolicyConfig,
) -> Decision:
    """Candidates (best first) → a decision with its reason."""
    known = [(c, e) for c in candidates if (e := knowledge.get(c.entry_id)) is not None]
    if not known:
        return Escalate("no FAQ entry shares words with the question", candidates=tuple(candidates))
    best, best_entry = known[0]
    # Only an entry that can still be served competes with the best one: an expired notice
    # that scores close behind can never be the answer, so it must not block one. (An expired
    # best entry still goes through serve_entry, which escalates and says it expired.)
    servable = [(c, e) for c, e in known if not e.expired(context.today)]
    runner_up = next((c.score for c, e in servable if e is not best_entry), 0.0)
    margin = best.score - runner_up
    sure = confidence(best.score, runner_up, config)
    strong = sure >= config.threshold_for(context.lang)
    if strong and margin >= config.answer_margin - _TOLERANCE:
        why = f"best match '{best.entry_id}' scored {best.score:.2f}, {margin:.2f} ahead"
        return serve_entry(best_entry, best.score, context, why)
    # A strong match that merely lacks a lead is a choice between the entries sharing the lead:
    # ask. A weaker one is offered only with entries that score almost the same.
    band = config.answer_margin if strong else config.clarify_band
    close = [
        entry
        for c, entry in servable[: config.clarify_max]
        if c.score >= config.clarify_threshold and best.score - c.score <= band + _TOLERANCE
    ]
    if len(close) >= 2:
        ids = ", ".join(e.id for e in close)
        return Clarify(tuple(close), f"{len(close)} entries are too close to tell apart: {ids}")
    if strong:
        reason = f"best match '{best.entry_id}' leads by only {margin:.2f}"
    else:
        reason = f"best match '{best.entry_id}' scored {best.score:.2f}, below the threshold"
    if best_entry.expired(context.today):
        reason += f", and it expired on {best_entry.valid_until}"
    return Escalate(reason, candidates=tuple(candidates))
