"""Hybrid ranking: the lexical matcher's score fused with sentence-embedding cosines.

Pure: the vectors come from outside (bot.runtime.embedding, through the disk cache). For every
entry (not only the lexical top few, which would miss the paraphrases the model exists for):

    dense  = best · rescale(cos of the closest phrasing) + (1 − best) · rescale(cos of the centroid)
    fused  = lexical_weight · lexical + (1 − lexical_weight) · dense

`rescale` maps the model's useful cosine range [floor, ceiling] to [0, 1] (e5 puts unrelated
sentences near 0.7, so raw cosines would crush the lexical part). The centroid is the normalised
mean of all of an entry's phrasings, in every language: a multilingual model puts "开庭时间" near
"when is my hearing", so an entry written in one language answers a question in the other.
The weights were chosen on the development files (docs/semantic.md); the matcher ranks, the
policy decides.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.answering.matcher import Candidate, LexicalScores, Matcher
from bot.answering.policy import PolicyConfig
from bot.answering.text import detect_lang, fold

MAX_QUERY_CHARS = 1000  # the model reads at most 512 tokens; a longer question costs time only
QUERY_CACHE_SIZE = 10_000  # repeated questions ("opening hours?") are embedded once

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class FusionWeights:
    lexical: float = 0.15
    best_phrasing: float = 0.4  # the rest of the dense part comes from the entry centroid
    cosine_floor: float = 0.8
    cosine_ceiling: float = 1.0
    # A question and a phrasing in different languages score lower for the same meaning
    # ("开庭时间" / "hearing times"): their cosines are read on a scale shifted down by this.
    cross_language_shift: float = 0.1
    # The lexical score alone counts as certain above this, with this lead: the embedding is
    # skipped (see docs/semantic.md for what that saves and costs).
    certain_score: float = 0.9
    certain_margin: float = 0.3


# Chosen on the development files with benchmarks/tune_fusion.py and the sweep in
# docs/semantic.md: precision >= 0.90 on every file of the language where reachable.
HYBRID_POLICY = PolicyConfig(
    answer_threshold=0.6,
    answer_margin=0.02,
    clarify_threshold=0.5,
    clarify_band=0.03,
    margin_weight=0.5,
    lang_thresholds=(("en", 0.66), ("zh", 0.95)),
)


@dataclass(frozen=True)
class SemanticModel:
    """What the desk needs of an embedding model: its name, a function for the phrasings
    (usually through the disk cache), one for questions, and the policy tuned for it."""

    name: str
    embed_phrasings: Embed
    embed_questions: Embed
    weights: FusionWeights = field(default_factory=FusionWeights)
    policy: PolicyConfig = HYBRID_POLICY


class QueryVectors:
    """Question vectors remembered by text, least recently used dropped first; thread-safe."""

    def __init__(self, embed: Embed, size: int = QUERY_CACHE_SIZE) -> None:
        self._embed = embed
        self._size = size
        self._known: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def known(self, text: str) -> bool:
        with self._lock:
            return text[:MAX_QUERY_CHARS] in self._known

    def get(self, text: str) -> np.ndarray:
        return self.get_many([text])[0]

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The vectors of `texts`, embedding the unknown ones in one batch."""
        keys = [t[:MAX_QUERY_CHARS] for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._known.get(key)
                if vector is not None:
                    self._known.move_to_end(key)
                    found[key] = vector
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self._embed(missing)
            with self._lock:
                for key, vector in zip(missing, fresh, strict=True):
                    found[key] = vector
                    self._known[key] = vector
                while len(self._known) > self._size:
                    self._known.popitem(last=False)
        return [found[k] for k in keys]


def rescale(
    cosines: np.ndarray, weights: FusionWeights, shift: np.ndarray | float = 0.0
) -> np.ndarray:
    span = weights.cosine_ceiling - weights.cosine_floor
    return np.clip((cosines - (weights.cosine_floor - shift)) / span, 0.0, 1.0)


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray = rows / norms
    return normalised


class SemanticIndex:
    """The phrasing vectors of a matcher's knowledge base and their per-entry centroids."""

    def __init__(self, matcher: Matcher, vectors: np.ndarray) -> None:
        phrasings = matcher.phrasings()
        if len(vectors) != len(phrasings):
            raise ValueError(f"{len(vectors)} vectors for {len(phrasings)} phrasings")
        n_entries = len(matcher.entry_ids)
        self.vectors = _normalise(np.asarray(vectors, dtype=np.float32))
        self.entry_of = np.array([entry for entry, _, _ in phrasings], dtype=np.int64)
        self.langs = [lang for _, lang, _ in phrasings]
        self.texts = [text for _, _, text in phrasings]
        self.lang_array = np.array(self.langs)
        self.entry_has = {
            lang: np.bincount(self.entry_of[self.lang_array == lang], minlength=n_entries).astype(
                bool
            )
            for lang in set(self.langs)
        }
        sizes = np.bincount(self.entry_of, minlength=n_entries)
        self.sizes = sizes
        self.nonempty = sizes > 0
        # Phrasings are stored entry by entry (the matcher's index order).
        self.starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).clip(
            max=max(len(phrasings) - 1, 0)
        )
        sums = np.zeros((n_entries, self.vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, self.entry_of, self.vectors)
        self.centroids = _normalise(sums)
        # Per language, the centroid of an entry's phrasings in it (the all-language one where
        # the entry has none): a Chinese question is compared with the Chinese phrasings' centre,
        # which translations in the other language would pull away.
        self.lang_centroids: dict[str, np.ndarray] = {}
        for lang in set(self.langs):
            mask = self.lang_array == lang
            in_lang = np.zeros_like(sums)
            np.add.at(in_lang, self.entry_of[mask], self.vectors[mask])
            has = self.entry_has[lang] if lang in self.entry_has else np.zeros(n_entries, bool)
            self.lang_centroids[lang] = np.where(has[:, None], _normalise(in_lang), self.centroids)

    def cosines(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per entry: the closest phrasing's cosine and the centroid's; per phrasing: cosines."""
        per_phrasing = self.vectors @ query
        if not len(per_phrasing):
            empty = np.zeros(len(self.nonempty), dtype=np.float32)
            return empty, empty, per_phrasing
        best = np.maximum.reduceat(per_phrasing, self.starts)
        best = np.where(self.nonempty, best, -1.0)
        return best, self.centroids @ query, per_phrasing


def dense_scores(
    index: SemanticIndex, query: np.ndarray, weights: FusionWeights, lang: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Each entry's dense score in [0, 1], and the phrasing cosines (for the closest one).
    For a question in `lang`, phrasings (and entries without any phrasing) in another language
    are read on the cross-language scale."""
    _, centroid, per_phrasing = index.cosines(query)
    if lang in index.lang_centroids:
        centroid = index.lang_centroids[lang] @ query
    if not len(per_phrasing):
        return centroid, per_phrasing
    shift = weights.cross_language_shift
    entry_shift: np.ndarray | float
    if lang in index.entry_has:
        phrasing_shift = np.where(index.lang_array == lang, 0.0, shift)
        entry_shift = np.where(index.entry_has[lang], 0.0, shift)
    elif lang in ("zh", "en"):  # no phrasing at all in the question's language
        phrasing_shift, entry_shift = np.full(len(per_phrasing), shift), shift
    else:
        phrasing_shift, entry_shift = np.zeros(len(per_phrasing)), 0.0
    scaled = rescale(per_phrasing, weights, phrasing_shift)
    best = np.maximum.reduceat(scaled, index.starts) * index.nonempty
    dense = weights.best_phrasing * best
    dense += (1 - weights.best_phrasing) * rescale(centroid, weights, entry_shift)
    return dense, per_phrasing


def lexically_certain(lexical: LexicalScores | None, weights: FusionWeights) -> bool:
    if lexical is None or not lexical.top_scores:
        return False
    ordered = sorted(lexical.top_scores, reverse=True)
    second = ordered[1] if len(ordered) > 1 else 0.0
    return ordered[0] >= weights.certain_score and ordered[0] - second >= weights.certain_margin


class HybridMatcher:
    """The lexical matcher and a semantic index over the same entries, fused; `rank` is safe to
    call concurrently (the embedding function serialises itself)."""

    name = "hybrid"

    def __init__(
        self,
        matcher: Matcher,
        index: SemanticIndex,
        questions: QueryVectors,
        weights: FusionWeights | None = None,
        *,
        dense_only: bool = False,
        skip_when_certain: bool = True,
    ) -> None:
        self.lexical = matcher
        self.index = index
        self.questions = questions
        self.weights = weights or FusionWeights()
        self.dense_only = dense_only
        self.skip_when_certain = skip_when_certain and not dense_only
        self.entry_ids = matcher.entry_ids
        self.skipped = 0  # queries answered by the lexical score alone (it was certain)

    def rank(self, text: str, limit: int = 5) -> list[Candidate]:
        lexical = None if self.dense_only else self.lexical.score_entries(text)
        if self.skip_when_certain and lexically_certain(lexical, self.weights):
            self.skipped += 1
            # Certain means lexical is not None; its scores stand in for the fused ones (a
            # score this high clears every threshold of the hybrid policy anyway).
            assert lexical is not None
            return _lexical_top(self.lexical, lexical, limit)
        return self.rank_with(text, self.questions.get(text), lexical, limit)

    def needs_vector(self, text: str) -> bool:
        """Whether ranking `text` would call the model (not certain lexically, not cached)."""
        if self.questions.known(text):
            return False
        if not self.skip_when_certain:
            return True
        return not lexically_certain(self.lexical.score_entries(text), self.weights)

    def embed_waiting(self, texts: Sequence[str]) -> int:
        """Embed, in one batch, the questions about to be ranked that will need a vector (call
        it off the event loop); `rank` then finds them cached. Returns how many were embedded."""
        todo = list(dict.fromkeys(t for t in texts if self.needs_vector(t)))
        if todo:
            self.questions.get_many(todo)
        return len(todo)

    def rank_with(
        self,
        text: str,
        query: np.ndarray,
        lexical: LexicalScores | None,
        limit: int = 5,
    ) -> list[Candidate]:
        """The fused ranking for a question whose vector is already known."""
        w = self.weights
        dense, per_phrasing = dense_scores(self.index, query, w, detect_lang(fold(text)))
        if self.dense_only:
            fused = dense
        else:
            lex = lexical.everything if lexical is not None else np.zeros_like(dense)
            fused = w.lexical * lex + (1 - w.lexical) * dense
        if not len(fused):
            return []
        limit = min(limit, len(fused))
        top = np.argpartition(-fused, limit - 1)[:limit]
        top = top[np.argsort(-fused[top], kind="stable")]
        candidates = []
        for entry in top.tolist():
            if fused[entry] <= 0 or not self.index.nonempty[entry]:
                continue
            closest = self._closest(entry, per_phrasing)
            candidates.append(
                Candidate(
                    entry_id=self.entry_ids[entry],
                    score=round(min(float(fused[entry]), 1.0), 4),
                    phrasing=self.index.texts[closest],
                    lang=self.index.langs[closest],
                )
            )
        return candidates

    def _closest(self, entry: int, per_phrasing: np.ndarray) -> int:
        start, size = int(self.index.starts[entry]), int(self.index.sizes[entry])
        return start + int(np.argmax(per_phrasing[start : start + size]))


def _lexical_top(matcher: Matcher, lexical: LexicalScores, limit: int) -> list[Candidate]:
    order = sorted(range(len(lexical.top)), key=lambda i: -lexical.top_scores[i])[:limit]
    return [lexical.candidate(matcher, i) for i in order]


def build_hybrid(
    matcher: Matcher,
    model: SemanticModel,
    questions: QueryVectors | None = None,
    *,
    dense_only: bool = False,
    skip_when_certain: bool = True,
) -> HybridMatcher:
    """A hybrid matcher over `matcher`'s phrasings; `questions` may be shared across reloads."""
    texts = [text for _, _, text in matcher.phrasings()]
    index = SemanticIndex(matcher, model.embed_phrasings(texts))
    return HybridMatcher(
        matcher,
        index,
        questions or QueryVectors(model.embed_questions),
        model.weights,
        dense_only=dense_only,
        skip_when_certain=skip_when_certain,
    )
