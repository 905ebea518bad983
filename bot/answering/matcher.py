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
from rapidfuzz import fuzz, process
from scipy import sparse

from bot.answering.text import (
    chinese_runs,
    compile_synonyms,
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
    # A feature in more phrasings than both of these is left out of the phrasing pass.
    common_postings_floor: int = 5000
    common_postings_share: float = 0.05
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

    def __init__(self, matrix: sparse.csr_matrix) -> None:
        by_feature = sparse.csr_matrix(matrix.T)
        by_feature.sort_indices()
        self.indptr = by_feature.indptr.astype(np.int64)
        self.indices = by_feature.indices.astype(np.int64)
        self.data = by_feature.data.astype(np.float32)
        self.size = matrix.shape[0]

    def gather(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the query features' postings, and how many each feature has."""
        starts = self.indptr[cols]
        lengths = self.indptr[cols + 1] - starts
        shift = starts - (np.cumsum(lengths) - lengths)
        return np.arange(int(lengths.sum())) + np.repeat(shift, lengths), lengths

    def dot(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """matrix @ query for a sparse query given as (cols, weights)."""
        picks, lengths = self.gather(cols)
        contributions = self.data[picks] * np.repeat(weights, lengths)
        return np.bincount(self.indices[picks], contributions, minlength=self.size)


def _centroids_by_query_lang(
    phrasings: sparse.csr_matrix, entry_of: np.ndarray, langs: Sequence[str], n_entries: int
) -> dict[str, _Postings]:
    """For each query language, one matrix of entry centroids: the centroid of an entry's
    phrasings in that language, or in another language where the entry has none."""
    per_lang: dict[str, sparse.csr_matrix] = {}
    has: dict[str, np.ndarray] = {}
    for lang in sorted(set(langs)):
        mask = np.array([pl == lang for pl in langs])
        member = sparse.csr_matrix(
            (np.ones(int(mask.sum()), dtype=np.float32), (entry_of[mask], np.nonzero(mask)[0])),
            shape=(n_entries, phrasings.shape[0]),
        )
        per_lang[lang] = _normalise_rows(member @ phrasings)
        has[lang] = np.asarray(member.sum(axis=1)).ravel() > 0
    fused: dict[str, _Postings] = {}
    for lang in per_lang:
        filled = np.zeros(n_entries, dtype=bool)
        total = sparse.csr_matrix((n_entries, phrasings.shape[1]), dtype=np.float32)
        for other in [lang, *(o for o in per_lang if o != lang)]:
            take = has[other] & ~filled
            total = total + sparse.diags(take.astype(np.float32)) @ per_lang[other]
            filled |= take
        fused[lang] = _Postings(sparse.csr_matrix(total))
    return fused


@dataclass(frozen=True)
class LexicalScores:
    """One question's lexical scores: `everything` per entry (index order of `entry_ids`), and
    the re-scored best entries with their closest phrasing."""

    everything: np.ndarray
    top: np.ndarray  # entry indices
    top_scores: list[float]
    closest: list[int]  # phrasing position per top entry

    def candidate(self, matcher: Matcher, i: int) -> Candidate:
        return Candidate(
            entry_id=matcher.entry_ids[int(self.top[i])],
            score=self.top_scores[i],
            phrasing=matcher.phrasing_text(self.closest[i]),
            lang=matcher.phrasing_lang(self.closest[i]),
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
        self._rewrites = {lang: compile_synonyms(table) for lang, table in self.synonyms.items()}
        self.entry_ids = [doc.entry_id for doc in docs]
        self._texts: list[str] = []  # folded phrasing, for the fuzzy re-score
        self._originals: list[str] = []
        self._phrasing_lang: list[str] = []
        phrasing_entry: list[int] = []
        rows: list[dict[str, float]] = []
        answer_rows: list[dict[str, float]] = []
        for entry_index, doc in enumerate(docs):
            for lang, phrasings in doc.phrasings.items():
                for phrasing in phrasings:
                    folded = self._with_synonyms(fold(phrasing), lang)
                    self._texts.append(folded)
                    self._originals.append(phrasing)
                    phrasing_entry.append(entry_index)
                    self._phrasing_lang.append(lang)
                    rows.append(features(folded, self.weights))
            answer = fold(" ".join(doc.answers.values()))
            answer_rows.append(
                features(self._with_synonyms(answer, detect_lang(answer)), self.weights)
            )

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
        self._idf_unknown = float(self._idf.max()) if len(self._idf) else 1.0
        self._vocab = vocab
        entry_of = np.array(phrasing_entry, dtype=np.int32)
        sizes = np.bincount(entry_of, minlength=len(docs))
        self._entry_sizes = sizes
        self._entry_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).clip(
            max=max(len(rows) - 1, 0)
        )
        self._entry_nonempty = (sizes > 0).astype(np.float32)
        phrasings = _tfidf_rows(rows, vocab, self._idf)
        del rows  # the feature dicts are the bulk of the build's memory
        self._phrasings = _Postings(phrasings)
        self._postings_count = np.diff(self._phrasings.indptr)
        self._max_postings = max(
            self.weights.common_postings_floor,
            int(self.weights.common_postings_share * len(self._texts)),
        )
        self._centroids = _centroids_by_query_lang(
            phrasings, entry_of, self._phrasing_lang, len(docs)
        )
        self._answers = _Postings(_tfidf_rows(answer_rows, vocab, self._idf))

    def phrasing_text(self, position: int) -> str:
        return self._originals[position]

    def phrasing_lang(self, position: int) -> str:
        return self._phrasing_lang[position]

    def phrasings(self) -> list[tuple[int, str, str]]:
        """(entry index, language, phrasing as written) for every phrasing, in index order."""
        entry_of = np.repeat(np.arange(len(self.entry_ids)), self._entry_sizes).tolist()
        return list(zip(entry_of, self._phrasing_lang, self._originals, strict=True))

    def _with_synonyms(self, folded: str, lang: str) -> str:
        for syn_lang in (lang, *(other for other in LANGS if other != lang)):
            rewrite = self._rewrites.get(syn_lang)
            if rewrite is not None:
                folded = rewrite(folded)
        return folded

    def _query_weights(self, folded: str) -> tuple[np.ndarray, np.ndarray, float]:
        """The query's known feature columns, their TF-IDF weights, and the total weight of
        all its features (unknown words count against every entry alike)."""
        feats = features(folded, self.weights)
        known = [k for k in feats if k in self._vocab]
        cols = np.array([self._vocab[k] for k in known], dtype=np.int64)
        vals = np.array([feats[k] for k in known], dtype=np.float32) * self._idf[cols]
        unknown = sum(v for k, v in feats.items() if k not in self._vocab) * self._idf_unknown
        return cols, vals, float(vals.sum()) + unknown

    def rank(self, text: str, limit: int = 5) -> list[Candidate]:
        """The best `limit` entries for `text`, best first; empty when nothing overlaps."""
        scored = self.score_entries(text)
        if scored is None:
            return []
        order = sorted(range(len(scored.top)), key=lambda i: -scored.top_scores[i])[:limit]
        return [scored.candidate(self, i) for i in order]

    def score_entries(self, text: str) -> LexicalScores | None:
        """Every entry's lexical score for `text` (None when nothing overlaps): the blend with
        rapidfuzz for the best `rerank_depth` entries, the TF-IDF part alone for the rest."""
        folded = fold(text)
        lang = detect_lang(folded)
        query = self._with_synonyms(folded, lang if lang in LANGS else "en")
        cols, vals, total = self._query_weights(query)
        if not len(cols) or not self.entry_ids:
            return None
        w = self.weights
        unit = vals / (float(np.linalg.norm(vals)) or 1.0)
        # One pass over the postings gives each phrasing its cosine and its coverage of the
        # question at once (both read the same postings). Features found in a large share of
        # all phrasings ("my", "的") would cost most of the reading for little evidence, so
        # they speak only through the centroids, the answers and the rapidfuzz re-score.
        selective = self._postings_count[cols] <= self._max_postings
        s_cols, s_vals, s_unit = cols[selective], vals[selective], unit[selective]
        s_total = total - float(vals[~selective].sum())
        picks, lengths = self._phrasings.gather(s_cols)
        per_posting = self._phrasings.data[picks] * np.repeat((1 - w.coverage) * s_unit, lengths)
        per_posting += np.repeat((w.coverage / (s_total or 1.0)) * s_vals, lengths)
        phrasing_scores = np.bincount(
            self._phrasings.indices[picks], per_posting, minlength=self._phrasings.size
        )
        best = np.maximum.reduceat(phrasing_scores, self._entry_starts) * self._entry_nonempty
        centroids = self._centroids.get(lang) or next(iter(self._centroids.values()))
        lexical = w.best_phrasing * best + (1 - w.best_phrasing) * centroids.dot(cols, unit)
        lexical = (1 - w.answer) * lexical + w.answer * self._answers.dot(cols, unit)
        depth = min(w.rerank_depth, len(self.entry_ids))
        top = np.argpartition(-lexical, depth - 1)[:depth]
        top = top[lexical[top] > 0]
        if not len(top):
            return None
        top_scores, closest = self._rescore(query, top, lexical, phrasing_scores)
        everything = np.minimum((1 - w.fuzzy) * lexical, 1.0)
        everything[top] = top_scores
        return LexicalScores(everything, top, top_scores, closest)

    def _rescore(
        self,
        query: str,
        top: np.ndarray,
        lexical: np.ndarray,
        phrasing_scores: np.ndarray,
    ) -> tuple[list[float], list[int]]:
        """Blend the lexical score with rapidfuzz against each entry's closest phrasings: the
        top entries' scores, and the position of each one's closest phrasing."""
        w = self.weights
        # Each entry's `fuzzy_phrasings` best phrasings, for all top entries at once: sort the
        # entries' phrasing positions by (entry, -score) and keep the first few of each entry.
        starts = self._entry_starts[top]
        sizes = self._entry_sizes[top]
        owner_all = np.repeat(np.arange(len(top)), sizes)
        positions = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        phrasing = np.repeat(starts, sizes) + positions
        order = np.lexsort((-phrasing_scores[phrasing], owner_all))
        phrasing, owner_all = phrasing[order], owner_all[order]
        rank_in_entry = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        keep = rank_in_entry < w.fuzzy_phrasings
        flat, owner = phrasing[keep], owner_all[keep]
        first = np.cumsum(np.minimum(sizes, w.fuzzy_phrasings)) - np.minimum(
            sizes, w.fuzzy_phrasings
        )
        ratios = process.cdist(
            [query],
            [self._texts[i] for i in flat.tolist()],
            scorer=fuzz.token_sort_ratio,
            workers=1,
        )[0]
        fuzzy = np.zeros(len(top))
        np.maximum.at(fuzzy, owner, ratios / 100.0)
        scores = [
            round(min(float(score), 1.0), 4)
            for score in ((1 - w.fuzzy) * lexical[top] + w.fuzzy * fuzzy).tolist()
        ]
        return scores, [int(flat[i]) for i in first.tolist()]
