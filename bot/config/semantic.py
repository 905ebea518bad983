"""Settings → the semantic model the desk ranks with (or None: the lexical matcher alone).

CIVICDESK_SEMANTIC=auto uses the model when `pip install 'civicdesk[semantic]'` installed it;
=on refuses to start without it (SemanticUnavailable, naming the pip command); =off never loads
it. The phrasings' vectors go through the disk cache (CIVICDESK_EMBEDDING_CACHE), so a restart or
a reload embeds only what changed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np

from bot.answering.semantic import SemanticModel
from bot.config.settings import Settings
from bot.runtime.embedding import Embedder, load_embedder
from bot.runtime.vector_cache import VectorCache, default_cache_folder

log = logging.getLogger(__name__)


def semantic_model(settings: Settings) -> SemanticModel | None:
    embedder = load_embedder(settings.semantic, settings.semantic_threads)
    if embedder is None:
        return None
    folder = settings.embedding_cache or default_cache_folder()
    return model_with_cache(embedder, VectorCache(folder, embedder.model_id, embedder.dim))


def model_with_cache(embedder: Embedder, cache: VectorCache) -> SemanticModel:
    return SemanticModel(
        name=embedder.model_id,
        embed_phrasings=functools.partial(_cached, cache, embedder),
        embed_questions=embedder.embed,
    )


def _cached(cache: VectorCache, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    try:
        return cache.embed_all(texts, embedder.embed)
    except OSError as exc:  # a read-only or full disk costs time, never the answers
        log.warning("embedding cache %s unusable (%s): embedding without it", cache.folder, exc)
        return embedder.embed(texts)
