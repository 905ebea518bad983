"""Find phrasings of different entries so close that the matcher cannot tell the entries apart.

All phrasings of a language are compared with all others of a length that could reach the
threshold (rapidfuzz `cdist`, in blocks of rows so 10,000 phrasings need megabytes, not a
100-million-cell matrix at once).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from bot.answering.knowledge_schema import Draft
from bot.answering.knowledge_yaml import LANGUAGES
from bot.answering.text import fold

ENGLISH_NEAR_DUPLICATE = 92  # fuzz.token_sort_ratio of folded phrasings
CHINESE_NEAR_DUPLICATE = 90  # fuzz.ratio of folded phrasings
_BLOCK_ROWS = 1000


def _sort_tokens(folded: str) -> str:
    # fuzz.token_sort_ratio(a, b) == fuzz.ratio(sorted tokens of a, sorted tokens of b); sorting
    # once per phrasing instead of once per pair makes the comparison several times faster.
    return " ".join(sorted(folded.split()))


# language -> (how folded phrasings are prepared, threshold for fuzz.ratio on the prepared text)
_RULES: dict[str, tuple[Callable[[str], str], int]] = {
    "en": (_sort_tokens, ENGLISH_NEAR_DUPLICATE),
    "zh": (lambda folded: folded, CHINESE_NEAR_DUPLICATE),
}


@dataclass(frozen=True)
class SimilarPair:
    """The closest pair of phrasings of two entries in one language; `second` comes later."""

    language: str
    first: tuple[int, str, int]  # (entry index, phrasing, line)
    second: tuple[int, str, int]
    score: float
    others: int  # further pairs of phrasings of the same two entries that are as close


def similar_pairs(drafts: Sequence[Draft]) -> list[SimilarPair]:
    pairs: list[SimilarPair] = []
    for language in LANGUAGES:
        prepare, threshold = _RULES[language]
        phrasings = [
            (index, text, line, prepare(fold(text)))
            for index, draft in enumerate(drafts)
            for text, line in draft.questions.get(language, [])
        ]
        phrasings = [item for item in phrasings if item[3]]
        pairs.extend(_close_pairs(language, phrasings, threshold))
    return pairs


def _close_pairs(
    language: str, phrasings: list[tuple[int, str, int, str]], threshold: int
) -> list[SimilarPair]:
    best: dict[tuple[int, int], tuple[float, int, int, int]] = {}  # -> (score, a, b, count)
    for a, b in _candidate_pairs([item[3] for item in phrasings], threshold):
        if phrasings[a][0] == phrasings[b][0]:
            continue  # two phrasings of one entry may be as close as they like
        first, second = (a, b) if a < b else (b, a)
        key = (phrasings[first][0], phrasings[second][0])
        score = float(fuzz.ratio(phrasings[first][3], phrasings[second][3]))
        previous = best.get(key)
        if previous is None:
            best[key] = (score, first, second, 1)
        elif score > previous[0]:
            best[key] = (score, first, second, previous[3] + 1)
        else:
            best[key] = (*previous[:3], previous[3] + 1)
    result = []
    for score, first, second, count in best.values():
        (entry, text, line, _), (other, other_text, other_line, _) = (
            phrasings[first],
            phrasings[second],
        )
        pair = SimilarPair(
            language, (entry, text, line), (other, other_text, other_line), score, count - 1
        )
        result.append(pair)
    return result


def _candidate_pairs(prepared: list[str], threshold: int) -> list[tuple[int, int]]:
    """Every pair of indexes (each pair once) whose fuzz.ratio reaches `threshold`.

    fuzz.ratio of a shorter text of length s and a longer one of length l is at most
    200 * s / (s + l), so with the texts sorted by length a block of rows only needs the columns
    up to length s * (200 - threshold) / threshold: most of the matrix is never computed.
    """
    order = sorted(range(len(prepared)), key=lambda k: len(prepared[k]))
    texts = [prepared[k] for k in order]
    lengths = [len(text) for text in texts]
    reach = (200 - threshold) / threshold
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(texts), _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, len(texts))
        end = bisect.bisect_right(lengths, lengths[stop - 1] * reach + 1e-9)
        scores = process.cdist(
            texts[start:stop],
            texts[start:end],
            scorer=fuzz.ratio,
            score_cutoff=threshold,
            dtype=np.uint8,
            workers=-1,
        )
        rows, columns = np.nonzero(scores)
        rows, columns = rows + start, columns + start
        keep = rows < columns
        pairs.extend(
            (order[i], order[j])
            for i, j in zip(rows[keep].tolist(), columns[keep].tolist(), strict=True)
        )
    return pairs
