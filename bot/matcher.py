"""Rank FAQ entries for a question.

Design: every phrasing (and, with a lower weight, every answer) becomes a sparse TF-IDF vector of
lexical features: stemmed words, word pairs and character trigrams for English (trigrams survive
typos), character unigrams and bigrams for Chinese. The transposed matrix is an inverted index,
so a query touches only the postings of its own features instead of every phrasing (brute-force
rapidfuzz grows linearly with the knowledge base). An entry's score blends its best phrasing with
the centroid of all its phrasings in the query's language, falling back to the other languages;
the best few entries are then re-scored with rapidfuzz against their closest phrasing, which
rewards near-verbatim questions and word order. The matcher ranks; it never decides.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from rapidfuzz import fuzz
from scipy import sparse

from bot.text import (
    apply_synonyms,
    chinese_runs,
    detect_lang,
    english_stop_words,
    english_words,
    fold,
)

LANGS = ("zh", "en")


@dataclass(frozen=True)
class MatchDoc:
    """What the matcher indexes for one FAQ entry."""

    entry_id: str
    phrasings: Mapping[str, Sequence[str]]  # language -> phrasings
    answers: Mapping[str, str] = field(default_factory=dict)  # language -> answer text


@dataclass(frozen=True)
class Candidate:
    """One ranked entry: its score in [0, 1] and the phrasing that matched best."""

    entry_id: str
    score: float
    phrasing: str
    lang: str


@dataclass(frozen=True)
class MatcherWeights:
    """Tuned on the development data (see README: "How the matcher was tuned")."""

    word: float = 1.0
    word_pair: float = 0.3
    stop_word: float = 2.0
    char_trigram: float = 1.5
    trigram_damping: float = 0.75
    zh_char: float = 1.2
    zh_bigram: float = 1.0
    zh_trigram: float = 0.0
    best_phrasing: float = 0.55  # the rest of the lexical score comes from the centroid
    answer: float = 0.15
    coverage: float = 0.7  # share of a phrasing's score from how much of the question it covers
    fuzzy: float = 0.25  # share of the final score taken by the rapidfuzz re-score
    rerank_depth: int = 20
    fuzzy_phrasings: int = 10  # an entry's closest phrasings that rapidfuzz compares


def features(folded: str, weights: MatcherWeights) -> dict[str, float]:
    """Weighted lexical features of folded text (term frequencies, before IDF)."""
    counts: Counter[str] = Counter()
    group: dict[str, float] = {}
    words = english_words(folded)
    for word in words:
        counts["w:" + word] += 1
        group["w:" + word] = weights.word
        padded = f" {word} "
        # A long word has many trigrams: share one word's weight among them so that long
        # words do not outweigh the rest of the question.
        trigram_weight = weights.char_trigram / (len(padded) - 2) ** weights.trigram_damping
        for i in range(len(padded) - 2):
            key = "c:" + padded[i : i + 3]
            counts[key] += 1
            group[key] = trigram_weight
    if weights.stop_word:
        for word in english_stop_words(folded):
            counts["s:" + word] += 1
            group["s:" + word] = weights.stop_word
    for first, second in pairwise(words):
        key = f"p:{first}_{second}"
        counts[key] += 1
        group[key] = weights.word_pair
    for run in chinese_runs(folded):
        for i, char in enumerate(run):
            counts["z:" + char] += 1
            group["z:" + char] = weights.zh_char
            if i + 1 < len(run):
                key = "y:" + run[i : i + 2]
                counts[key] += 1
                group[key] = weights.zh_bigram
            if weights.zh_trigram and i + 2 < len(run):
                key = "x:" + run[i : i + 3]
                counts[key] += 1
                group[key] = weights.zh_trigram
    return {key: group[key] * (1.0 + math.log(n)) for key, n in counts.items()}


class _Vocabulary:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, keys: Sequence[str]) -> None:
        for key in keys:
            if key not in self.index:
                self.index[key] = len(self.index)


def _tfidf_rows(
    rows: Sequence[dict[str, float]], vocab: dict[str, int], idf: np.ndarray
) -> sparse.csr_matrix:
    indptr, indices, data = [0], [], []
    for row in rows:
        cols = [vocab[k] for k in row if k in vocab]
        vals = np.array([row[k] for k in row if k in vocab], dtype=np.float32)
        if cols:
            vals = vals * idf[cols]
            norm = float(np.linalg.norm(vals))
            if norm > 0:
                vals /= norm
        indices.extend(cols)
        data.extend(vals.tolist())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int32), indptr),
        shape=(len(rows), len(vocab)),
    )


def _normalise_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


class _Postings:
    """A feature-major sparse matrix used as an inverted index: a query reads only the
    postings of its own features."""

    def __init__(self, matrix: sparse.csr_matrix, *, presence: bool = False) -> None:
        by_feature = sparse.csr_matrix(matrix.T)
        by_feature.sort_indices()
        self.indptr = by_feature.indptr.astype(np.int64)
        self.indices = by_feature.indices.astype(np.int64)
        self.data = np.ones_like(by_feature.data) if presence else by_feature.data
        self.size = matrix.shape[0]

    def dot(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """matrix @ query for a sparse query given as (cols, weights)."""
        starts, ends = self.indptr[cols], self.indptr[cols + 1]
        lengths = ends - starts
        if not lengths.sum():
            return np.zeros(self.size, dtype=np.float32)
        picks = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        contributions = self.data[picks] * np.repeat(weights, lengths)
        return np.bincount(self.indices[picks], contributions, minlength=self.size).astype(
            np.float32
        )


class Matcher:
    """An immutable index over a knowledge base's phrasings; `rank` is safe to call concurrently."""

    def __init__(
        self,
        docs: Sequence[MatchDoc],
        synonyms: Mapping[str, Mapping[str, str]] | None = None,
        weights: MatcherWeights | None = None,
    ) -> None:
        self.weights = weights or MatcherWeights()
        self.synonyms = synonyms or {}
        self.entry_ids = [doc.entry_id for doc in docs]
        self._texts: list[str] = []  # folded phrasing, for the fuzzy re-score
        self._originals: list[str] = []
        self._phrasing_entry: list[int] = []
        self._phrasing_lang: list[str] = []
        rows: list[dict[str, float]] = []
        answer_rows: list[dict[str, float]] = []
        for entry_index, doc in enumerate(docs):
            for lang, phrasings in doc.phrasings.items():
                for phrasing in phrasings:
                    folded = self._prepare(phrasing, lang)
                    self._texts.append(folded)
                    self._originals.append(phrasing)
                    self._phrasing_entry.append(entry_index)
                    self._phrasing_lang.append(lang)
                    rows.append(features(folded, self.weights))
            answer = " ".join(doc.answers.values())
            answer_rows.append(features(self._prepare(answer, detect_lang(answer)), self.weights))

        # Document frequencies over answers too: a word in every answer is no evidence even if
        # only one phrasing happens to use it.
        df: Counter[str] = Counter()
        for row in (*rows, *answer_rows):
            df.update(row.keys())
        vocab = {key: i for i, key in enumerate(df)}
        n = max(len(rows) + len(answer_rows), 1)
        self._idf = np.array(
            [math.log((n + 1) / (df[k] + 1)) + 1.0 for k in vocab], dtype=np.float32
        )
        self._vocab = vocab
        self._entry_of = np.array(self._phrasing_entry, dtype=np.int32)
        sizes = np.bincount(self._entry_of, minlength=len(docs))
        self._entry_sizes = sizes
        self._entry_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).clip(
            max=max(len(rows) - 1, 0)
        )
        self._entry_nonempty = (sizes > 0).astype(np.float32)
        phrasings = _tfidf_rows(rows, vocab, self._idf)
        self._phrasings = _Postings(phrasings)
        # The same postings as 0/1: how much of a question's weight a phrasing covers at all.
        self._presence = _Postings(phrasings, presence=True)
        # Centroids per (entry, language): the mean of an entry's phrasing vectors.
        self._lang_centroids: dict[str, _Postings] = {}
        self._lang_has: dict[str, np.ndarray] = {}
        n_entries = len(docs)
        for lang in {*self._phrasing_lang}:
            mask = np.array([pl == lang for pl in self._phrasing_lang])
            member = sparse.csr_matrix(
                (
                    np.ones(int(mask.sum()), dtype=np.float32),
                    (self._entry_of[mask], np.nonzero(mask)[0]),
                ),
                shape=(n_entries, len(rows)),
            )
            self._lang_centroids[lang] = _Postings(_normalise_rows(member @ phrasings))
            self._lang_has[lang] = np.asarray(member.sum(axis=1)).ravel() > 0
        self._answers = _Postings(_tfidf_rows(answer_rows, vocab, self._idf))

    @property
    def phrasing_count(self) -> int:
        return len(self._texts)

    def _prepare(self, text: str, lang: str) -> str:
        folded = fold(text)
        for syn_lang in (lang, *LANGS):
            if syn_lang in self.synonyms:
                folded = apply_synonyms(folded, self.synonyms[syn_lang])
        return folded

    def _query_weights(self, folded: str) -> tuple[np.ndarray, np.ndarray, float]:
        """The query's known feature columns, their TF-IDF weights, and the total weight of
        all its features (unknown words count against every entry alike)."""
        feats = features(folded, self.weights)
        idf_unknown = float(self._idf.max()) if len(self._idf) else 1.0
        cols = np.array([self._vocab[k] for k in feats if k in self._vocab], dtype=np.int64)
        vals = np.array([feats[k] for k in feats if k in self._vocab], dtype=np.float32)
        vals = vals * self._idf[cols] if len(cols) else vals
        unknown = sum(v for k, v in feats.items() if k not in self._vocab) * idf_unknown
        return cols, vals, float(vals.sum()) + unknown

    def rank(self, text: str, limit: int = 5) -> list[Candidate]:
        """The best `limit` entries for `text`, best first; empty when nothing overlaps."""
        lang = detect_lang(fold(text))
        query = self._prepare(text, lang if lang in LANGS else "en")
        cols, vals, total = self._query_weights(query)
        if not len(cols) or not self.entry_ids:
            return []
        w = self.weights
        unit = vals / (float(np.linalg.norm(vals)) or 1.0)
        cosines = self._phrasings.dot(cols, unit)
        covered = self._presence.dot(cols, vals / total)
        phrasing_scores = (1 - w.coverage) * cosines + w.coverage * covered
        best = np.maximum.reduceat(phrasing_scores, self._entry_starts) * self._entry_nonempty
        lexical = w.best_phrasing * best + (1 - w.best_phrasing) * self._centroid_scores(
            cols, unit, lang
        )
        lexical = (1 - w.answer) * lexical + w.answer * self._answers.dot(cols, unit)
        depth = min(w.rerank_depth, len(self.entry_ids))
        top = np.argpartition(-lexical, depth - 1)[:depth]
        rescored = (self._rescore(query, int(e), lexical, phrasing_scores) for e in top)
        candidates = sorted((c for c in rescored if c is not None), key=lambda c: -c.score)
        return candidates[:limit]

    def _rescore(
        self, query: str, entry_index: int, lexical: np.ndarray, phrasing_scores: np.ndarray
    ) -> Candidate | None:
        """Blend the lexical score with rapidfuzz against the entry's closest phrasings."""
        if lexical[entry_index] <= 0:
            return None
        start = int(self._entry_starts[entry_index])
        end = start + int(self._entry_sizes[entry_index])
        local = phrasing_scores[start:end]
        closest = start + np.argsort(-local)[: self.weights.fuzzy_phrasings]
        fuzzy = max(fuzz.token_sort_ratio(query, self._texts[i]) for i in closest) / 100.0
        score = (1 - self.weights.fuzzy) * float(lexical[entry_index]) + self.weights.fuzzy * fuzzy
        best_i = int(closest[0])
        return Candidate(
            entry_id=self.entry_ids[entry_index],
            score=round(min(score, 1.0), 4),
            phrasing=self._originals[best_i],
            lang=self._phrasing_lang[best_i],
        )

    def _centroid_scores(self, cols: np.ndarray, unit: np.ndarray, lang: str) -> np.ndarray:
        """Centroid similarity in the query's language, other languages where it has none."""
        n_entries = len(self.entry_ids)
        scores = np.zeros(n_entries, dtype=np.float32)
        filled = np.zeros(n_entries, dtype=bool)
        order = [lang] if lang in self._lang_centroids else []
        order += [other for other in self._lang_centroids if other not in order]
        for other in order:
            these = self._lang_centroids[other].dot(cols, unit)
            take = self._lang_has[other] & ~filled
            scores[take] = these[take]
            filled |= take
        return scores
