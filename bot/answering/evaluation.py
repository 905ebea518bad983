"""Measure answer quality on labelled questions (format and metrics: shared/eval/README.md).

Each evaluation file becomes a knowledge base of its own; every query is ranked, and the metrics
are computed from the ranked candidates and from the policy's real decision.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process, utils

from bot.answering.knowledge import Entry, KnowledgeBase
from bot.answering.matcher import Candidate, MatchDoc, Matcher
from bot.answering.policy import Answer, Clarify, Context, PolicyConfig, confidence, decide
from bot.answering.semantic import QueryVectors, SemanticModel, build_hybrid
from bot.answering.text import detect_lang, fold

# Some data sets carry a placeholder where they have no answer text; it must not be indexed.
_PLACEHOLDER_MARK = "dataset has no answer text"


class EvalFileError(Exception):
    """An evaluation file that cannot be read or is not in the documented format."""


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    right: frozenset[str]  # empty: out of scope


@dataclass(frozen=True)
class EvalSet:
    name: str
    docs: tuple[MatchDoc, ...]
    queries: tuple[LabelledQuery, ...]


def load_eval_file(path: Path) -> EvalSet:
    """The evaluation set in `path`; `EvalFileError` names the file and the offending item."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _parse_eval(data, path.stem)
    except (OSError, ValueError) as exc:  # _ShapeError is a ValueError
        raise EvalFileError(
            f"{path}: not an evaluation file in the format of shared/eval/README.md ({exc})"
        ) from exc


class _ShapeError(ValueError):
    """A value of the wrong kind at a named place in the file, e.g. "queries[3].text"."""


def _parse_eval(data: Any, default_name: str) -> EvalSet:
    top = _object(data, "the file")
    meta = _object(top.get("meta", {}), "meta")
    name = _optional_text(meta.get("name"), "meta.name") or default_name
    docs = []
    for i, item in enumerate(_list(top.get("faqs"), "faqs")):
        where = f"faqs[{i}]"
        faq = _object(item, where)
        lang = _optional_text(faq.get("lang"), f"{where}.lang") or "en"
        alternatives = _list(faq.get("alt_questions") or [], f"{where}.alt_questions")
        phrasings = [
            _text(faq.get("question"), f"{where}.question"),
            *(_text(alt, f"{where}.alt_questions[{j}]") for j, alt in enumerate(alternatives)),
        ]
        answer = _optional_text(faq.get("answer"), f"{where}.answer")
        answers = {lang: answer} if answer and _PLACEHOLDER_MARK not in answer else {}
        docs.append(MatchDoc(_id(faq.get("id"), f"{where}.id"), {lang: phrasings}, answers))
    queries = []
    for i, item in enumerate(_list(top.get("queries"), "queries")):
        where = f"queries[{i}]"
        query = _object(item, where)
        text = _text(query.get("text"), f"{where}.text")
        if query.get("faq_ids"):
            labels = _list(query["faq_ids"], f"{where}.faq_ids")
            ids = [_id(label, f"{where}.faq_ids[{j}]") for j, label in enumerate(labels)]
        elif query.get("faq_id") not in (None, ""):
            ids = [_id(query["faq_id"], f"{where}.faq_id")]
        else:
            ids = []  # out of scope
        queries.append(LabelledQuery(text, frozenset(ids)))
    return EvalSet(name, tuple(docs), tuple(queries))


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _ShapeError(f"{where} must be an object, not {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _ShapeError(f"{where} must be a list, not {_kind(value)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _ShapeError(f"{where} must be text, not {_kind(value)}")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _ShapeError(f"{where} must be a text or number id, not {_kind(value)}")
    return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


Ranker = Callable[[str], list[Candidate]]


@dataclass
class RankedRun:
    """Every query's top candidates and the time each ranking took."""

    queries: Sequence[LabelledQuery]
    ranked: list[list[Candidate]] = field(default_factory=list)
    millis: list[float] = field(default_factory=list)


def run_ranker(queries: Sequence[LabelledQuery], ranker: Ranker) -> RankedRun:
    run = RankedRun(queries)
    for query in queries:
        start = time.perf_counter()
        run.ranked.append(ranker(query.text))
        run.millis.append((time.perf_counter() - start) * 1000)
    return run


def top1(run: RankedRun) -> float:
    in_scope = [(q, r) for q, r in zip(run.queries, run.ranked, strict=True) if q.right]
    right = sum(1 for q, r in in_scope if r and r[0].entry_id in q.right)
    return right / len(in_scope) if in_scope else 0.0


def coverage_at_precision(run: RankedRun, target: float, margin_weight: float = 0.0) -> float:
    """Sweep the answer threshold over every distinct top score (definition: eval README); with
    a `margin_weight`, over the margin-aware confidence the policy compares instead."""
    n_in_scope = sum(1 for q in run.queries if q.right)
    weight = PolicyConfig(margin_weight=margin_weight)
    scored = sorted(
        (
            (
                confidence(r[0].score, r[1].score if len(r) > 1 else 0.0, weight),
                bool(q.right) and r[0].entry_id in q.right,
            )
            for q, r in zip(run.queries, run.ranked, strict=True)
            if r
        ),
        key=lambda pair: -pair[0],
    )
    best = 0.0
    answered = right = 0
    i = 0
    while i < len(scored):
        threshold = scored[i][0]
        while i < len(scored) and scored[i][0] == threshold:
            answered += 1
            right += scored[i][1]
            i += 1
        if right / answered >= target and n_in_scope:
            best = max(best, right / n_in_scope)
    return best


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latency_summary(run: RankedRun) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(run.millis), 3) if run.millis else 0.0,
        "p99_ms": round(percentile(run.millis, 99), 3),
    }


class BruteForce:
    """The baseline: rapidfuzz over every phrasing, an entry scored by its best phrasing."""

    def __init__(self, docs: Sequence[MatchDoc], scorer: Any) -> None:
        self.scorer = scorer
        self.choices: list[str] = []
        self.owners: list[str] = []
        for doc in docs:
            for phrasings in doc.phrasings.values():
                for phrasing in phrasings:
                    self.choices.append(utils.default_process(phrasing))
                    self.owners.append(doc.entry_id)

    def rank(self, text: str) -> list[Candidate]:
        """One query the way a bot without an index would do it (timed per query)."""
        hits = process.extract(
            utils.default_process(text), self.choices, scorer=self.scorer, limit=50, processor=None
        )
        return self._entries((choice, score, i) for choice, score, i in hits)

    def _entries(self, hits: Iterable[tuple[str, float, int]]) -> list[Candidate]:
        seen: dict[str, Candidate] = {}
        for choice, score, index in hits:
            entry_id = self.owners[index]
            if entry_id not in seen:
                seen[entry_id] = Candidate(entry_id, score / 100.0, choice, "")
        return list(seen.values())[:5]

    def run(self, queries: Sequence[LabelledQuery], timed: int = 100) -> RankedRun:
        """All queries scored in bulk on every core (the quality figures), and the first
        `timed` one at a time (the latency figures, as a bot would see them)."""
        run = RankedRun(queries)
        texts = [utils.default_process(q.text) for q in queries]
        for start in range(0, len(texts), 256):
            scores = process.cdist(
                texts[start : start + 256], self.choices, scorer=self.scorer, workers=-1
            )
            for row in scores:
                order = np.argsort(-row, kind="stable")[:50]
                run.ranked.append(
                    self._entries((self.choices[i], float(row[i]), int(i)) for i in order)
                )
        for query in queries[:timed]:
            started = time.perf_counter()
            self.rank(query.text)
            run.millis.append((time.perf_counter() - started) * 1000)
        return run


BASELINES: dict[str, Any] = {"WRatio": fuzz.WRatio, "token_sort_ratio": fuzz.token_sort_ratio}


def _eval_knowledge(docs: Sequence[MatchDoc]) -> KnowledgeBase:
    entries = tuple(
        Entry(
            id=doc.entry_id,
            topic="evaluation",
            questions={lang: tuple(p) for lang, p in doc.phrasings.items()},
            answer=dict(doc.answers),
        )
        for doc in docs
    )
    return KnowledgeBase(entries)


def decision_metrics(
    run: RankedRun, knowledge: KnowledgeBase, config: PolicyConfig, today: date
) -> dict[str, float]:
    """precision, coverage, oos_answered and clarify rate of the policy's real decisions
    (small talk is not in play: every evaluation query is a question)."""
    answered = right = oos_answered = clarified = 0
    n_in_scope = sum(1 for q in run.queries if q.right)
    n_oos = len(run.queries) - n_in_scope
    for query, ranked in zip(run.queries, run.ranked, strict=True):
        context = Context(public=False, today=today, lang=detect_lang(fold(query.text)))
        decision = decide(ranked, knowledge, context, config)
        if isinstance(decision, Answer):
            answered += 1
            right += decision.entry.id in query.right
            oos_answered += not query.right
        elif isinstance(decision, Clarify):
            clarified += 1
    return {
        "precision": round(right / answered, 4) if answered else 0.0,
        "coverage": round(right / n_in_scope, 4) if n_in_scope else 0.0,
        "oos_answered": round(oos_answered / n_oos, 4) if n_oos else 0.0,
        "clarify_rate": round(clarified / len(run.queries), 4) if run.queries else 0.0,
    }


def ranking_metrics(run: RankedRun, margin_weight: float = 0.0) -> dict[str, float]:
    return {
        "top1": round(top1(run), 4),
        "cov@P90": round(coverage_at_precision(run, 0.90, margin_weight), 4),
        "cov@P95": round(coverage_at_precision(run, 0.95, margin_weight), 4),
        **latency_summary(run),
    }


def evaluate(
    eval_set: EvalSet,
    config: PolicyConfig,
    *,
    baselines: bool = False,
    today: date | None = None,
    semantic: SemanticModel | None = None,
) -> dict[str, Any]:
    """Every metric of the README for one evaluation set, with the baselines if asked.

    With a semantic model, "civicdesk" is the hybrid matcher under the model's policy; the
    baselines then add the lexical matcher under `config` and the model's dense-only ranking
    (its cov@ figures sweep the same margin-aware confidence as the hybrid's)."""
    started = time.perf_counter()
    lexical = Matcher(eval_set.docs)
    hybrid = None
    if semantic is not None:
        # The questions' vectors through the phrasings' disk cache: a second run embeds nothing.
        hybrid = build_hybrid(lexical, semantic, QueryVectors(semantic.embed_phrasings))
        # All questions at once: the model's batch call, not one call per question.
        hybrid.questions.get_many([q.text for q in eval_set.queries])
    build_seconds = time.perf_counter() - started
    knowledge = _eval_knowledge(eval_set.docs)
    day = today or date.today()
    ranker = hybrid or lexical
    run = run_ranker(eval_set.queries, lambda text: ranker.rank(text, limit=5))
    used = semantic.policy if semantic is not None else config
    result: dict[str, Any] = {
        "file": eval_set.name,
        "queries": len(eval_set.queries),
        "out_of_scope": sum(1 for q in eval_set.queries if not q.right),
        "build_s": round(build_seconds, 3),
        "matcher": "hybrid" if hybrid else "lexical",
        "civicdesk": {
            **ranking_metrics(run, used.margin_weight),
            **decision_metrics(run, knowledge, used, day),
        },
    }
    if baselines and hybrid is not None and semantic is not None:
        lexical_run = run_ranker(eval_set.queries, lambda text: lexical.rank(text, limit=5))
        result["lexical"] = {
            **ranking_metrics(lexical_run, config.margin_weight),
            **decision_metrics(lexical_run, knowledge, config, day),
        }
        dense = build_hybrid(lexical, semantic, hybrid.questions, dense_only=True)
        dense_run = run_ranker(eval_set.queries, lambda text: dense.rank(text, limit=5))
        result["dense only"] = ranking_metrics(dense_run, semantic.policy.margin_weight)
    if baselines:
        for name, scorer in BASELINES.items():
            baseline_run = BruteForce(eval_set.docs, scorer).run(eval_set.queries)
            result[f"rapidfuzz {name}"] = ranking_metrics(baseline_run)
    return result
