"""Turn answered escalations into FAQ drafts, and find the questions asked most often.

    civicdesk tickets suggest-faq REF     -> `draft_entry` + `render_draft`
    civicdesk tickets suggest-faq --since 30d -> `similar_groups` + `render_groups`

`draft_entry` writes a ticket's question and its staff answer as a YAML entry for the topic file
the question most likely belongs to, ready to paste under that file's `entries:`; `kb check`
accepts it once pasted. `similar_groups` groups recent escalations asked in similar words, the
candidates for new entries. Pure functions: the caller reads the tickets and the knowledge base.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.answering.composer import compose
from bot.answering.desk import match_docs
from bot.answering.knowledge import Entry, KnowledgeBase
from bot.answering.knowledge_schema import ID_PATTERN, SHORT_LIMIT, Draft
from bot.answering.knowledge_similar import _candidate_pairs, similar_pairs
from bot.answering.matcher import Matcher
from bot.answering.policy import PolicyConfig
from bot.answering.text import ENGLISH_STOP_WORDS, chinese_runs, detect_lang, english_words, fold
from bot.platform.adapter import TextRules
from bot.platform.lengths import weibo_length
from bot.tickets.reference import normalise_reference

__all__ = [
    "AGREEING_TOPIC_SCORE",
    "CLOSE_TOPIC_SCORE",
    "GROUP_THRESHOLD",
    "FaqDraft",
    "Group",
    "draft_entry",
    "render_draft",
    "render_groups",
    "similar_groups",
    "ticket_hint",
]

# --- choosing the topic file ---------------------------------------------------------------------

# A candidate the desk would offer in "did you mean" is close enough on its own...
CLOSE_TOPIC_SCORE = PolicyConfig().clarify_threshold
# ...a weaker best candidate only when another of the best three is in the same file: unrelated
# questions ("what is the weather") score up to about 0.45 in English, scattered over the files.
AGREEING_TOPIC_SCORE = 0.25
_TOPIC_AGREEMENT_DEPTH = 3
_RANK_LIMIT = 10
_ALTERNATIVES = 3
NEW_FILE_STEM = "new-topic"
NEW_TOPIC_NAME = "New topic (rename me)"

# --- the entry id --------------------------------------------------------------------------------

_ID_WORDS = 5
_ID_MAX_LENGTH = 48
# Question words are not stop words to the matcher ("where" tells apart two questions), but they
# make poor ids: "renew-passport" rather than "how-renew-passport".
_ID_SKIP_WORDS = ENGLISH_STOP_WORDS | {"how", "when", "where", "why", "whether"}
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_NOT_ID = re.compile(r"[^a-z0-9]+")

# --- the text ------------------------------------------------------------------------------------

# "@court_bot how do I…", "@示例法院：诉讼费…": whom a message was addressed to is no phrasing. Only
# mentions at the start are dropped: one later in the text may be an e-mail address.
_LEADING_MENTIONS = re.compile(r"^(?:@[^\s@:：]+(?:[:：]\s*|\s+))+")
_WEIBO = TextRules(SHORT_LIMIT, weibo_length, "weibo")  # what `kb check` holds `short` to
_LANGUAGES = ("zh", "en")
_FALLBACK_LANG = "zh"
_LONG_PHRASING = 120  # characters: the existing phrasings are a few words each

# --- grouping ------------------------------------------------------------------------------------

# fuzz.ratio of two sorted token strings whose tokens are one character each is the Dice
# coefficient of their token sets: 70 means 7 tokens in 10 shared ({pay court fee cash} and
# {pay court fee} score 86; {bring dog court} and {bring food court} 67).
GROUP_THRESHOLD = 70
_EXAMPLES = 3
_FIRST_TOKEN = 0x10000  # tokens become code points beyond the BMP: no surrogates, no collisions
_SHOWN_REFERENCES = 10
_SHOWN_QUESTION = 90
_NON_WORD = re.compile(r"\W+")  # examples that differ only in punctuation are one example


@dataclass(frozen=True)
class FaqDraft:
    """A ticket as an FAQ entry, and where it goes."""

    topic_file: str  # the topic file to paste into; with new_file, the file to create
    topic: str  # that file's topic (a placeholder for a new file)
    new_file: bool
    entry_id: str
    lang: str  # the language of the questions and the answer: "zh" or "en"
    yaml: str  # the entry, indented to paste under `entries:` (ends with a newline)
    reason: str  # why this file
    alternatives: tuple[str, ...] = ()  # other topic files the candidates point to
    notes: tuple[str, ...] = ()  # what to check before pasting

    @property
    def file_text(self) -> str:
        """What to write: the whole new file, or the entry to append to the existing one."""
        if not self.new_file:
            return self.yaml
        return _dump({"topic": self.topic}) + "entries:\n" + self.yaml


@dataclass(frozen=True)
class Group:
    """Escalations asked in similar words."""

    size: int
    examples: tuple[str, ...]  # up to three different questions, the most typical first
    references: tuple[str, ...]  # every escalation of the group, in the order given


# --- draft_entry ---------------------------------------------------------------------------------


def draft_entry(
    question: str,
    answer: str,
    *,
    follow_ups: Sequence[str] = (),
    candidates: Sequence[Mapping[str, Any]],
    knowledge: KnowledgeBase,
    today: date,
    matcher: Matcher | None = None,
    reserved_ids: Collection[str] = (),
) -> FaqDraft:
    """The ticket's question (and follow-ups) with the staff answer, as an entry of the most
    likely topic file.

    `candidates` are the ticket's, best first ({"entry_id", "score", "phrasing"}). `matcher`
    (built from `knowledge` if not given) ranks the question again when they do not settle the
    topic. `reserved_ids`: ids to avoid besides the knowledge base's, e.g. drafts not pasted yet.
    Raises ValueError when the question or the answer is empty.
    """
    primary = _phrasing(question)
    text = _answer_text(answer)
    if not primary:
        raise ValueError("the ticket has no question to draft an entry from")
    if not text:
        raise ValueError("the ticket has no answer yet: answer it before drafting an FAQ entry")
    lang = _entry_lang(primary, text)
    notes: list[str] = []
    answer_lang = detect_lang(fold(text))
    if answer_lang in _LANGUAGES and answer_lang != lang:
        notes.append(
            f"the question is in {lang} but the answer looks like {answer_lang}: the answer is "
            f"filed under {lang}; translate it or move both"
        )
    phrasings = _phrasings(primary, follow_ups, lang, notes)
    notes.extend(
        f"the phrasing '{_one_line(p, _SHOWN_QUESTION)}' is long: keep the words a citizen "
        "would type, as short as the other phrasings"
        for p in phrasings
        if len(p) > _LONG_PHRASING
    )

    chosen, reason, alternatives = _choose_topic(primary, candidates, knowledge, matcher)
    known_files = {entry.file for entry in knowledge.entries}
    if chosen is None:
        topic_file = _new_file(knowledge.path, known_files)
        topic, new_file = NEW_TOPIC_NAME, True
        notes.append(f"a new topic file: name its topic and the file ({topic_file})")
    else:
        topic_file, topic, new_file = chosen.file, chosen.topic, False
    taken = {entry.id for entry in knowledge.entries} | set(reserved_ids)
    entry_id = _entry_id(primary, lang, "" if new_file else Path(topic_file).stem, today, taken)

    entry: dict[str, Any] = {
        "id": entry_id,
        "questions": {lang: phrasings},
        "answer": {lang: text},
    }
    if weibo_length(text) > SHORT_LIMIT:
        entry["short"] = {lang: compose(text, _WEIBO)}
        notes.append(
            f"the answer is longer than {SHORT_LIMIT} on Weibo: 'short' is the answer cut to fit; "
            "rewrite it as a complete short answer"
        )
    notes.extend(_near_duplicates(entry_id, lang, phrasings, knowledge))
    return FaqDraft(
        topic_file=topic_file,
        topic=topic,
        new_file=new_file,
        entry_id=entry_id,
        lang=lang,
        yaml=_dump({"entries": [entry]}).split("\n", 1)[1],
        reason=reason,
        alternatives=alternatives,
        notes=tuple(notes),
    )


def _phrasing(text: str) -> str:
    """A citizen's message as one phrasing: one line, without the mentions it starts with."""
    flat = " ".join(text.split())
    return _LEADING_MENTIONS.sub("", flat).strip() or flat


def _answer_text(text: str) -> str:
    """The staff answer with its line breaks, without trailing blanks (so YAML can keep it as a
    literal block) and with every kind of line break written "\\n"."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines()).strip()


def _entry_lang(question: str, answer: str) -> str:
    for text in (question, answer):
        lang = detect_lang(fold(text))
        if lang in _LANGUAGES:
            return lang
    return _FALLBACK_LANG  # mixed: mostly Chinese with a few Latin words ("微信支付WeChat Pay")


def _phrasings(primary: str, follow_ups: Sequence[str], lang: str, notes: list[str]) -> list[str]:
    """The question and the follow-ups in the entry's language, each once."""
    phrasings: list[str] = []
    seen: set[str] = set()
    for text in (primary, *(_phrasing(f) for f in follow_ups)):
        key = fold(text)
        if not text or key in seen:
            continue
        seen.add(key)
        other = detect_lang(key)
        if text is not primary and other in _LANGUAGES and other != lang:
            notes.append(
                f"left out the {other} phrasing '{text}': the entry has no answer in {other}"
            )
            continue
        phrasings.append(text)
    return phrasings


def _choose_topic(
    question: str,
    candidates: Sequence[Mapping[str, Any]],
    knowledge: KnowledgeBase,
    matcher: Matcher | None,
) -> tuple[Entry | None, str, tuple[str, ...]]:
    """(the entry whose file the draft goes to or None for a new file, why, other files)."""
    stored = _known_candidates(candidates, knowledge)
    chosen = _topic_of(stored)
    if chosen is not None:
        entry, score = chosen
        why = f"the ticket's best candidate '{entry.id}' ({score:.2f}) is in {entry.file}"
        return entry, why, _other_files(stored, entry.file)
    if matcher is None:
        matcher = Matcher(match_docs(knowledge), knowledge.synonyms)
    ranked = _known_candidates(
        [{"entry_id": c.entry_id, "score": c.score} for c in matcher.rank(question, _RANK_LIMIT)],
        knowledge,
    )
    chosen = _topic_of(ranked)
    if chosen is not None:
        entry, score = chosen
        why = f"the closest entry now is '{entry.id}' ({score:.2f}), in {entry.file}"
        return entry, why, _other_files(ranked, entry.file)
    best = ranked[0] if ranked else (stored[0] if stored else None)
    why = "no entry is close to the question"
    if best is not None:
        why += f" (the closest, '{best[0].id}', scores {best[1]:.2f})"
    return None, why, _other_files(ranked or stored, "")


def _known_candidates(
    candidates: Sequence[Mapping[str, Any]], knowledge: KnowledgeBase
) -> list[tuple[Entry, float]]:
    """The candidates still in the knowledge base with a score, best first."""
    known: list[tuple[Entry, float]] = []
    for candidate in candidates:
        entry_id, score = candidate.get("entry_id"), candidate.get("score")
        if not isinstance(entry_id, str) or isinstance(score, bool):
            continue
        entry = knowledge.get(entry_id)
        if entry is not None and isinstance(score, int | float):
            known.append((entry, float(score)))
    return sorted(known, key=lambda pair: -pair[1])  # stable: ties keep the ticket's order


def _topic_of(ranked: Sequence[tuple[Entry, float]]) -> tuple[Entry, float] | None:
    """The best entry when it settles the topic: close on its own, or backed by another of the
    best few in the same file."""
    if not ranked:
        return None
    best, score = ranked[0]
    if score >= CLOSE_TOPIC_SCORE:
        return best, score
    same_file = sum(1 for e, _ in ranked[:_TOPIC_AGREEMENT_DEPTH] if e.file == best.file)
    return (best, score) if score >= AGREEING_TOPIC_SCORE and same_file >= 2 else None


def _other_files(ranked: Sequence[tuple[Entry, float]], chosen: str) -> tuple[str, ...]:
    files = dict.fromkeys(e.file for e, _ in ranked if e.file != chosen)
    return tuple(files)[:_ALTERNATIVES]


def _new_file(folder: str, known_files: Collection[str]) -> str:
    number = 1
    while True:
        name = NEW_FILE_STEM + (f"-{number}" if number > 1 else "") + ".yaml"
        path = str(Path(folder) / name) if folder else name
        if path not in known_files:
            return path
        number += 1


def _entry_id(question: str, lang: str, stem: str, today: date, taken: Collection[str]) -> str:
    """A readable id from the English words of the question, else "faq-<file>-<date>-<n>"
    ("faq-<date>-<n>" for a new file, whose name is not settled yet)."""
    words = _id_words(question) if lang == "en" else []
    if words:
        base = words[0]
        for word in words[1:]:
            if len(base) + 1 + len(word) > _ID_MAX_LENGTH:
                break
            base += "-" + word
        if base not in taken:
            return base
        return _first_free(base + "-{}", taken, start=2)
    topic = _NOT_ID.sub("-", stem.lower()).strip("-")
    prefix = "-".join(part for part in ("faq", topic, today.strftime("%Y%m%d")) if part)
    return _first_free(prefix + "-{}", taken, start=1)


def _id_words(text: str) -> list[str]:
    # "Café" -> "cafe": accents off, so that the id stays within [a-z0-9-].
    ascii_text = unicodedata.normalize("NFKD", fold(text)).encode("ascii", "ignore").decode()
    words = [w for w in _ASCII_WORD.findall(ascii_text) if w not in _ID_SKIP_WORDS]
    return list(dict.fromkeys(words))[:_ID_WORDS]


def _first_free(template: str, taken: Collection[str], *, start: int) -> str:
    number = start
    while (candidate := template.format(number)) in taken:
        number += 1
    assert ID_PATTERN.fullmatch(candidate), candidate
    return candidate


def _near_duplicates(
    entry_id: str, lang: str, phrasings: Sequence[str], knowledge: KnowledgeBase
) -> list[str]:
    """What `kb check` will warn about: phrasings too close to those of an existing entry."""
    drafts = [
        Draft(
            line=entry.line,
            id=entry.id,
            questions={k: [(text, 0) for text in texts] for k, texts in entry.questions.items()},
        )
        for entry in knowledge.entries
    ]
    drafts.append(Draft(line=0, id=entry_id, questions={lang: [(p, 0) for p in phrasings]}))
    new = len(drafts) - 1
    notes = []
    for pair in similar_pairs(drafts):
        if new not in (pair.first[0], pair.second[0]):
            continue
        ours, theirs = (
            (pair.first, pair.second) if pair.first[0] == new else (pair.second, pair.first)
        )
        other = knowledge.entries[theirs[0]]
        notes.append(
            f"'{ours[1]}' is nearly the phrasing '{theirs[1]}' of '{other.id}' ({other.file}): "
            "kb check will warn; add the answer to that entry or reword"
        )
    return notes


class _Dumper(yaml.SafeDumper):
    """safe_dump, with lists indented under their key as in the knowledge files, and texts of
    several lines as literal blocks ('|') that staff can edit."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself where a block cannot hold the text.
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Mapping[str, Any]) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        indent=2,
        width=float("inf"),  # one text, one line: as the files are written
    )


def render_draft(draft: FaqDraft, reference: str | None = None) -> str:
    """The CLI output: comments saying where the entry goes, then the YAML.

    The comments are YAML comments, so the whole output may be pasted as it is.
    """
    where = (
        f"# save as {draft.topic_file} (a new topic file)"
        if draft.new_file
        else f"# paste at the end of {draft.topic_file} (topic: {_one_line(draft.topic)}), "
        "under 'entries:'"
    )
    lines = [f"# FAQ draft from escalation {reference}" if reference else "# FAQ draft", where]
    lines.append(f"# why this file: {_one_line(draft.reason)}")
    if draft.alternatives:
        lines.append(f"# other possible files: {', '.join(draft.alternatives)}")
    lines.extend(f"# check: {_one_line(note)}" for note in draft.notes)
    return "\n".join(lines) + "\n" + draft.file_text


# --- similar_groups ------------------------------------------------------------------------------


def similar_groups(questions: Sequence[tuple[str, str]], *, min_size: int = 2) -> list[Group]:
    """Escalations asked in similar words, largest group first (ties: the earliest first).

    `questions` are (reference, question) pairs. Each question becomes the set of its folded
    tokens: stemmed English content words and Chinese characters (a question without any, such
    as "???", is never grouped). Two questions are similar when the Dice coefficient of their
    sets reaches GROUP_THRESHOLD (rapidfuzz, blocked and pruned by length). Groups are formed
    around the question with the most similar ones, which takes every similar question still
    free, then the next (Butina's leader clustering): a group never chains from one topic to
    another through a question in between.
    """
    keys = _token_keys([question for _, question in questions])
    members: dict[str, list[int]] = {}  # a token set -> the questions with exactly that set
    for index, key in enumerate(keys):
        if key:  # no words to go by ("???"): never grouped
            members.setdefault(key, []).append(index)
    unique = list(members)
    weight = [len(members[key]) for key in unique]
    neighbours: list[list[int]] = [[] for _ in unique]
    for a, b in _candidate_pairs(unique, GROUP_THRESHOLD):
        neighbours[a].append(b)
        neighbours[b].append(a)
    reach = [weight[i] + sum(weight[j] for j in neighbours[i]) for i in range(len(unique))]
    first_seen = [members[key][0] for key in unique]
    order = sorted(range(len(unique)), key=lambda i: (-reach[i], first_seen[i]))
    free = [True] * len(unique)
    groups: list[tuple[int, Group]] = []
    for leader in order:
        if not free[leader]:
            continue
        taken = [leader, *(j for j in neighbours[leader] if free[j])]
        for j in taken:
            free[j] = False
        indexes = sorted(i for j in taken for i in members[unique[j]])
        if len(indexes) < min_size:
            continue
        others = sorted(taken[1:], key=lambda j: (-weight[j], first_seen[j]))
        examples = _examples(questions, [members[unique[j]] for j in [leader, *others]])
        references = tuple(questions[i][0] for i in indexes)
        groups.append((indexes[0], Group(len(indexes), examples, references)))
    return [group for _, group in sorted(groups, key=lambda g: (-g[1].size, g[0]))]


def _examples(questions: Sequence[tuple[str, str]], keys: Sequence[list[int]]) -> tuple[str, ...]:
    """Up to three different questions: one of each token set first, then the others' wording."""
    order = [indexes[0] for indexes in keys] + [i for indexes in keys for i in indexes[1:]]
    examples: dict[str, str] = {}
    for index in order:
        text = " ".join(questions[index][1].split())
        examples.setdefault(" ".join(_NON_WORD.split(fold(text))).strip(), text)
        if len(examples) == _EXAMPLES:
            break
    return tuple(examples.values())


def _token_keys(texts: Sequence[str]) -> list[str]:
    """Each text's token set as a string of one code point per token, sorted."""
    vocabulary: dict[str, int] = {}
    keys = []
    for text in texts:
        folded = fold(text)
        tokens = set(english_words(folded))
        tokens.update(char for run in chinese_runs(folded) for char in run)
        codes = sorted(vocabulary.setdefault(token, len(vocabulary)) for token in tokens)
        keys.append("".join(chr(_FIRST_TOKEN + code) for code in codes))
    return keys


def render_groups(groups: Sequence[Group]) -> str:
    """The CLI text for `--since`: each group with its size, examples and references."""
    if not groups:
        return "no escalations were asked in similar words\n"
    count = len(groups)
    lines = [
        f"{count} group{'s' if count != 1 else ''} of escalations asked in similar words "
        "(candidates for new FAQ entries):"
    ]
    for number, group in enumerate(groups, 1):
        shown = ", ".join(group.references[:_SHOWN_REFERENCES])
        more = len(group.references) - _SHOWN_REFERENCES
        if more > 0:
            shown += f" and {more} more"
        lines.append("")
        lines.append(f"{number}. {group.size} escalations: {shown}")
        lines.extend(f"   - {_one_line(example, _SHOWN_QUESTION)}" for example in group.examples)
        lines.append(f"   draft an entry: civicdesk tickets suggest-faq {group.references[0]}")
    return "\n".join(lines) + "\n"


def ticket_hint(reference: str) -> str:
    """The line for a ticket: how to turn its answer into an FAQ entry."""
    return (
        "To add this answer to the FAQ: civicdesk tickets suggest-faq "
        f"{normalise_reference(reference)}"
    )


def _one_line(text: str, width: int | None = None) -> str:
    flat = " ".join(text.split())
    if width is None or len(flat) <= width:
        return flat
    return flat[: width - 1] + "…"
