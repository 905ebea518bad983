"""`match_latency.py --semantic`: the hybrid matcher's cost, on one core.

For the sample FAQ (knowledge/) and for 10,000 phrasings from ../shared/eval/clinc150.json:
p50/p99 of the full hybrid query (lexical scores, one uncached query embedding, the fused ranking
over every entry) against the lexical matcher alone in the same run; the index build with a cold
embedding cache (a new folder) and with a warm one (a restart: nothing embedded); peak RSS.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.answering.desk import match_docs
from bot.answering.evaluation import load_eval_file, percentile
from bot.answering.knowledge import load_knowledge
from bot.answering.matcher import Matcher
from bot.answering.semantic import QueryVectors, build_hybrid
from bot.config.semantic import model_with_cache
from bot.runtime.embedding import E5Small
from bot.runtime.vector_cache import VectorCache, default_cache_folder

ROOT = Path(__file__).resolve().parents[1]


def _time(rank: Any, questions: list[str]) -> dict[str, float]:
    millis = []
    for text in questions:
        started = time.perf_counter()
        rank(text)
        millis.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(millis, 50), 2), "p99_ms": round(percentile(millis, 99), 2)}


def _measure(
    name: str, docs: list[Any], questions: list[str], model: E5Small, cold: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "set": name,
        "phrasings": sum(len(p) for d in docs for p in d.phrasings.values()),
    }
    matcher = Matcher(docs)
    if cold:
        with tempfile.TemporaryDirectory() as folder:
            cache = VectorCache(Path(folder), model.model_id, model.dim)
            started = time.perf_counter()
            build_hybrid(matcher, model_with_cache(model, cache))
            result["build_cold_s"] = round(time.perf_counter() - started, 2)
            result["embedded_cold"] = cache.embedded
    cache = VectorCache(default_cache_folder(), model.model_id, model.dim)
    semantic = model_with_cache(model, cache)
    build_hybrid(matcher, semantic)  # fill the shared cache if needed
    restarted = VectorCache(default_cache_folder(), model.model_id, model.dim)
    started = time.perf_counter()
    hybrid = build_hybrid(Matcher(docs), model_with_cache(model, restarted))
    result["build_warm_s"] = round(time.perf_counter() - started, 2)
    result["embedded_warm"] = restarted.embedded
    hybrid.skip_when_certain = False  # time the full hybrid query every time
    hybrid.questions = QueryVectors(model.embed, size=0)  # every question embedded afresh
    result["hybrid"] = _time(lambda t: hybrid.rank(t, 5), questions)
    result["lexical"] = _time(lambda t: matcher.rank(t, 5), questions)
    return result


def run_semantic(eval_dir: Path, queries: int = 200) -> dict[str, Any]:
    model = E5Small(threads=1)
    kb = load_knowledge(ROOT / "knowledge")
    sample_questions = [q for e in kb.entries for qs in e.questions.values() for q in qs]
    results = [_measure("sample FAQ", match_docs(kb), sample_questions[:queries], model, cold=True)]
    clinc = eval_dir / "clinc150.json"
    if clinc.exists():
        ev = load_eval_file(clinc)
        docs, total = [], 0
        for doc in ev.docs:
            if total >= 10_000:
                break
            docs.append(doc)
            total += sum(len(p) for p in doc.phrasings.values())
        results.append(
            _measure(
                "clinc150 10,000 phrasings",
                docs,
                [q.text for q in ev.queries][:queries],
                model,
                cold=False,
            )
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"semantic": results, "peak_rss_mb": round(peak_mb, 1)}


if __name__ == "__main__":
    print(json.dumps(run_semantic(ROOT.parent / "shared" / "eval"), indent=2))
