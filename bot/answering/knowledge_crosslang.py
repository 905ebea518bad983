"""Entries that collide across languages: a Chinese phrasing of one entry that means what an
English phrasing of another says. The lexical check (knowledge_similar) cannot see these; with
the semantic layer on, a question in either language may then get either entry's answer.

Pure: the phrasing vectors come from outside (the embedding model through its disk cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.answering.knowledge import KnowledgeBase

# Cosine of e5 vectors above which a zh and an en phrasing say the same thing. Across languages
# cosines run lower than within one: measured here, translations of one question 0.81-0.88,
# unrelated zh/en questions 0.76-0.79, related but different ones up to 0.86.
CROSS_LANGUAGE_COLLISION = 0.87


@dataclass(frozen=True)
class CrossLanguageCollision:
    first: tuple[str, str, str]  # (entry id, language, phrasing)
    second: tuple[str, str, str]
    cosine: float


def cross_language_collisions(
    knowledge: KnowledgeBase,
    embed: Callable[[Sequence[str]], np.ndarray],
    threshold: float = CROSS_LANGUAGE_COLLISION,
) -> list[CrossLanguageCollision]:
    """The closest zh/en pair of phrasings of each two different entries above `threshold`."""
    items = [
        (entry.id, lang, text)
        for entry in knowledge.entries
        for lang, texts in entry.questions.items()
        for text in texts
    ]
    zh = [i for i, item in enumerate(items) if item[1] == "zh"]
    en = [i for i, item in enumerate(items) if item[1] == "en"]
    if not zh or not en:
        return []
    vectors = np.asarray(embed([item[2] for item in items]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosines = vectors[zh] @ vectors[en].T
    best: dict[tuple[str, str], CrossLanguageCollision] = {}
    for row, column in zip(*np.nonzero(cosines >= threshold), strict=True):
        first, second = items[zh[int(row)]], items[en[int(column)]]
        if first[0] == second[0]:
            continue
        key = (min(first[0], second[0]), max(first[0], second[0]))
        cosine = float(cosines[row, column])
        if key not in best or cosine > best[key].cosine:
            best[key] = CrossLanguageCollision(first, second, round(cosine, 3))
    return sorted(best.values(), key=lambda c: -c.cosine)
