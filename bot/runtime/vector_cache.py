"""Sentence embeddings kept on disk, keyed by model and text, so a restart or a knowledge reload
embeds only the phrasings that changed (embedding one costs ~20 ms: a 15,000-phrasing FAQ would
take minutes).

Layout: one folder per model, holding `keys` (one SHA-256 of the text per line) and `vectors`
(float32 rows, in the same order). Both files are only ever appended to, under an exclusive lock,
so two processes may share the folder; a row whose key line is missing (a crash between the two
writes) is simply ignored and embedded again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_CHUNK = 256  # texts embedded and stored at a time: an interrupted build keeps what it did
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_folder() -> Path:
    """$XDG_CACHE_HOME/civicdesk/embeddings (~/.cache/...): outside any working tree."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "civicdesk" / "embeddings"


class VectorCache:
    """The vectors of one model in `folder`; `embed_all` fills the gaps with `embed`."""

    def __init__(self, folder: Path, model_id: str, dim: int) -> None:
        self.folder = folder / _SAFE_NAME.sub("_", model_id)
        self.dim = dim
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._read_size = 0  # key lines already read
        self.embedded = 0  # texts this cache had to embed (a warm start embeds none)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _refresh(self, *, locked: bool = False) -> None:
        """Read what this or another process appended since the last read; a torn tail (more
        keys than vectors: a crash between the writes) is repaired only under the lock."""
        keys_path, vectors_path = self.folder / "keys", self.folder / "vectors"
        if not keys_path.exists() or not vectors_path.exists():
            return
        keys = keys_path.read_text(encoding="ascii").splitlines()
        raw = np.fromfile(vectors_path, dtype=np.float32)
        rows = len(raw) // self.dim
        usable = min(len(keys), rows)
        if usable <= self._read_size and len(self._vectors) == usable:
            return
        self._vectors = raw[: usable * self.dim].reshape(usable, self.dim).copy()
        self._rows = {key: i for i, key in enumerate(keys[:usable])}
        self._read_size = usable
        if locked and len(keys) > rows:  # (fewer keys than rows: a writer between its writes)
            log.warning(
                "embedding cache %s: %d keys for %d vectors; the tail is embedded again",
                self.folder,
                len(keys),
                rows,
            )
            self._rewrite()

    def _rewrite(self) -> None:
        (self.folder / "vectors").write_bytes(self._vectors.tobytes())
        (self.folder / "keys").write_text(
            "".join(f"{key}\n" for key in self._rows), encoding="ascii"
        )

    def _append(self, keys: list[str], vectors: np.ndarray) -> None:
        fresh = np.asarray(vectors, dtype=np.float32).reshape(len(keys), self.dim)
        with open(self.folder / "vectors", "ab") as vectors_file:
            vectors_file.write(fresh.tobytes())
        with open(self.folder / "keys", "a", encoding="ascii") as keys_file:
            keys_file.write("".join(f"{k}\n" for k in keys))
        start = len(self._vectors)
        self._vectors = np.vstack([self._vectors, fresh])
        for i, key in enumerate(keys):
            self._rows[key] = start + i
        self._read_size = len(self._vectors)
        self.embedded += len(keys)

    def embed_all(
        self, texts: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray]
    ) -> np.ndarray:
        """The vectors of `texts` (rows in order), embedding and storing only unknown ones."""
        keys = [text_key(t) for t in texts]
        if any(key not in self._rows for key in keys):
            # Appends are whole rows, keys after vectors: reading without the lock is safe, and
            # does not wait for another process that is embedding a large knowledge base.
            self._refresh()
        if any(key not in self._rows for key in keys):
            with self._locked():
                self._refresh(locked=True)
                missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
                text_of = dict(zip(keys, texts, strict=True))
                for start in range(0, len(missing), _CHUNK):
                    chunk = missing[start : start + _CHUNK]
                    self._append(chunk, embed([text_of[k] for k in chunk]))
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._vectors[[self._rows[k] for k in keys]]
