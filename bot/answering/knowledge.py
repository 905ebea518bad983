"""Load and validate the FAQ that staff keep as YAML in `knowledge/`.

Staff are not programmers: every mistake becomes a `Problem` naming the file, the line and what to
do about it. Loading never half-succeeds: `load_knowledge` returns a complete `KnowledgeBase` or
raises `KnowledgeError` carrying every problem found, so a running service can keep its last good
knowledge base.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from yaml.nodes import Node

from bot.answering.knowledge_schema import Draft, parse_topic
from bot.answering.knowledge_similar import similar_pairs
from bot.answering.knowledge_synonyms import parse_synonyms
from bot.answering.knowledge_yaml import LANGUAGES, Issue, compose

__all__ = [
    "KNOWLEDGE_ENV",
    "LANGUAGES",
    "SYNONYMS_FILE",
    "CheckReport",
    "Entry",
    "KnowledgeBase",
    "KnowledgeError",
    "Problem",
    "check_knowledge",
    "load_knowledge",
]

KNOWLEDGE_ENV = "CIVICDESK_KNOWLEDGE"
SYNONYMS_FILE = "_synonyms.yaml"


@dataclass(frozen=True)
class Entry:
    """One FAQ entry: phrasings per language, the answer per language, and its serving rules."""

    id: str
    topic: str
    questions: Mapping[str, tuple[str, ...]]  # language -> phrasings; the first is canonical
    answer: Mapping[str, str]
    short: Mapping[str, str] = field(default_factory=dict)
    link: str | None = None
    public: bool = True
    escalate: bool = False
    valid_until: date | None = None
    owner: str | None = None
    source: str | None = None
    file: str = ""
    line: int = 0

    def expired(self, today: date) -> bool:
        return self.valid_until is not None and self.valid_until < today


@dataclass(frozen=True)
class Problem:
    """A mistake (or a warning) in a knowledge file, located for the person who must fix it."""

    file: str
    line: int
    message: str
    severity: str = "error"  # "error" stops loading; "warning" does not

    @property
    def location(self) -> str:
        """'file:line', or just the file (or folder) when the problem is about all of it."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base has errors; `problems` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class KnowledgeBase:
    """An immutable, validated knowledge base."""

    entries: tuple[Entry, ...]
    # language -> variant -> canonical term (variants already normalised by bot.answering.text.fold)
    synonyms: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()
    path: str = ""
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass: the index is set once here, for O(1) lookups on every message.
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)


@dataclass(frozen=True)
class CheckReport:
    """Everything `kb check` shows; `knowledge` is None when there is any error."""

    knowledge: KnowledgeBase | None
    errors: list[Problem]
    warnings: list[Problem]
    expired: list[Entry]
    files: list[str] = field(default_factory=list)  # the topic files read


def load_knowledge(path: Path | str) -> KnowledgeBase:
    """The validated knowledge base in `path`; `KnowledgeError` lists every error if any."""
    report = check_knowledge(path)
    if report.knowledge is None:
        raise KnowledgeError(report.errors)
    return report.knowledge


def check_knowledge(path: Path | str, today: date | None = None) -> CheckReport:
    """Read and check every topic file in `path`, reporting all problems rather than the first."""
    folder = Path(path)
    today = today or date.today()
    problems: list[Problem] = []
    files, synonyms_file = _discover(folder, problems)
    drafts: list[tuple[str, str, Draft]] = []  # (file, topic, draft)
    for name in files:
        readable, root = _read_yaml(name, problems)
        if readable:
            parsed = parse_topic(root)
            _add_issues(name, parsed.issues.items, problems)
            drafts.extend((name, parsed.topic, draft) for draft in parsed.entries)
    synonyms: dict[str, dict[str, str]] = {}
    if synonyms_file is not None:
        readable, root = _read_yaml(synonyms_file, problems)
        if readable:
            parsed_synonyms = parse_synonyms(root)
            _add_issues(synonyms_file, parsed_synonyms.issues.items, problems)
            synonyms = {
                language: {variant: canonical for variant, (canonical, _) in table.items()}
                for language, table in parsed_synonyms.synonyms.items()
            }
    if files and not drafts and not any(p.severity == "error" for p in problems):
        problems.append(Problem(str(folder), 0, "there are no entries in any topic file"))
    problems.extend(_duplicate_ids(drafts))
    problems.extend(_near_duplicates(drafts))
    errors = _sorted(p for p in problems if p.severity == "error")
    warnings = _sorted(p for p in problems if p.severity != "error")
    entries = [_entry(name, topic, draft) for name, topic, draft in drafts]
    expired = [entry for entry in entries if entry.id and entry.expired(today)]
    knowledge = None
    if not errors:
        knowledge = KnowledgeBase(tuple(entries), synonyms, tuple(warnings), str(folder))
    return CheckReport(knowledge, errors, warnings, expired, files)


def _discover(folder: Path, problems: list[Problem]) -> tuple[list[str], str | None]:
    """The topic files and the synonyms file in `folder`, as paths relative to how it was given."""
    where = f"set {KNOWLEDGE_ENV} to the folder that holds the FAQ .yaml files"
    if not folder.is_dir():
        problems.append(Problem(str(folder), 0, f"knowledge folder not found: {where}"))
        return [], None
    files: list[str] = []
    synonyms: str | None = None
    for file in sorted(folder.iterdir()):
        name = str(folder / file.name)
        if not file.is_file() or file.name.startswith("."):
            continue
        if file.name == SYNONYMS_FILE:
            synonyms = name
        elif file.suffix.lower() in (".yaml", ".yml") and file.suffix != ".yaml":
            message = f"not read: only files ending in .yaml are read; rename it {file.stem}.yaml"
            problems.append(Problem(name, 0, message, "warning"))
        elif file.suffix == ".yaml" and file.name.startswith("_"):
            message = (
                "not read: files starting with '_' are skipped (only _synonyms.yaml is special); "
                "remove the '_' if this file should be served"
            )
            problems.append(Problem(name, 0, message, "warning"))
        elif file.suffix == ".yaml":
            files.append(name)
    if not files:
        problems.append(Problem(str(folder), 0, f"no .yaml topic files in this folder: {where}"))
    return files, synonyms


def _read_yaml(name: str, problems: list[Problem]) -> tuple[bool, Node | None]:
    """(False, None) when the file cannot be read or parsed; the reason is in `problems`."""
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        problems.append(Problem(name, 0, f"cannot read this file: {exc.strerror}"))
        return False, None
    try:
        text = data.decode("utf-8-sig")  # editors on Windows may add a byte-order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = "this file is not saved as UTF-8: open it and save it again as UTF-8"
        problems.append(Problem(name, line, message))
        return False, None
    root, issues = compose(text)
    _add_issues(name, issues, problems)
    return not issues, root


def _add_issues(name: str, issues: Iterable[Issue], problems: list[Problem]) -> None:
    for issue in issues:
        severity = "warning" if issue.warning else "error"
        problems.append(Problem(name, issue.line, issue.message, severity))


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line))


def _duplicate_ids(drafts: list[tuple[str, str, Draft]]) -> list[Problem]:
    first: dict[str, str] = {}
    problems: list[Problem] = []
    for name, _, draft in drafts:
        if draft.id is None:
            continue
        here = f"{name}:{draft.id_line}"
        if draft.id in first:
            message = (
                f"id '{draft.id}' is already used at {first[draft.id]}: "
                "give this entry a new id (an id is never reused)"
            )
            problems.append(Problem(name, draft.id_line, message))
        else:
            first[draft.id] = here
    return problems


def _near_duplicates(drafts: list[tuple[str, str, Draft]]) -> list[Problem]:
    problems: list[Problem] = []
    for pair in similar_pairs([draft for _, _, draft in drafts]):
        first, first_text, first_line = pair.first
        second, second_text, second_line = pair.second
        first_name, second_name = drafts[first][0], drafts[second][0]
        others = (
            f" ({pair.others} more pairs of their phrasings are too close as well)"
            if pair.others
            else ""
        )
        message = (
            f"entries {_label(drafts[first])} and {_label(drafts[second])} have {pair.language} "
            f"phrasings too close for the matcher to tell apart: '{first_text}' "
            f"({first_name}:{first_line}) and '{second_text}' ({second_name}:{second_line})"
            f"{others}; reword one of them or merge the two entries"
        )
        problems.append(Problem(second_name, second_line, message, "warning"))
    return problems


def _label(located: tuple[str, str, Draft]) -> str:
    name, _, draft = located
    return f"'{draft.id}'" if draft.id else f"(entry without id at {name}:{draft.line})"


def _entry(name: str, topic: str, draft: Draft) -> Entry:
    return Entry(
        id=draft.id or "",
        topic=topic,
        questions={
            lang: tuple(text for text, _ in items) for lang, items in draft.questions.items()
        },
        answer=dict(draft.answer),
        short=dict(draft.short),
        link=draft.link,
        public=draft.public,
        escalate=draft.escalate,
        valid_until=draft.valid_until,
        owner=draft.owner,
        source=draft.source,
        file=name,
        line=draft.line,
    )
