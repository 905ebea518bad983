"""Check the shape of a topic file node by node, so that each mistake has a line.

The result is a draft per entry, filled as far as the file allows: checks that span files (ids used
twice, phrasings too close to tell apart) still run when an entry has a mistake of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.answering.knowledge_yaml import (
    BOOL_TAG,
    Issues,
    closest,
    describe,
    is_null,
    language_items,
    line_of,
    mapping_items,
    text_of,
    unknown_key,
)
from bot.platform.lengths import weibo_length

FILE_KEYS: tuple[str, ...] = ("topic", "entries")
ENTRY_KEYS: tuple[str, ...] = (
    "id",
    "questions",
    "answer",
    "short",
    "link",
    "public",
    "escalate",
    "valid_until",
    "owner",
    "source",
)
SHORT_LIMIT = 140  # Weibo's limit, the tightest of the 140-character channels
ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Draft:
    """An entry as far as it could be read; fields stay at their defaults where it could not."""

    line: int
    id: str | None = None
    id_line: int = 0
    # language -> [(phrasing, line)]
    questions: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    answer: dict[str, str] = field(default_factory=dict)
    short: dict[str, str] = field(default_factory=dict)
    link: str | None = None
    public: bool = True
    escalate: bool = False
    valid_until: date | None = None
    owner: str | None = None
    source: str | None = None


@dataclass
class TopicFile:
    topic: str = ""
    entries: list[Draft] = field(default_factory=list)
    issues: Issues = field(default_factory=Issues)


def parse_topic(root: Node | None) -> TopicFile:
    result = TopicFile()
    issues = result.issues
    if root is None:
        issues.error(0, "the file is empty: a topic file needs 'topic:' and 'entries:'")
        return result
    if not isinstance(root, MappingNode):
        issues.error(
            root,
            "a topic file must start with 'topic: <name>' and then 'entries:' with the list of "
            f"entries, but this file holds {describe(root)}",
        )
        return result
    values = {
        key: value for key, (_, value) in _known(root, FILE_KEYS, "this file", issues).items()
    }
    if "topic" not in values:
        issues.error(root, "missing topic: add 'topic: <name of the topic>' as the first line")
    else:
        result.topic = text_of(values["topic"], issues, "topic") or ""
    entries = values.get("entries")
    if entries is None:
        issues.error(root, "missing entries: add 'entries:' followed by the list of entries")
    elif isinstance(entries, SequenceNode):
        if not entries.value:
            issues.warn(entries, "this file has no entries yet")
        for entry in entries.value:
            draft = _parse_entry(entry, issues)
            if draft is not None:
                result.entries.append(draft)
    else:
        issues.error(
            entries,
            f"entries must be a list, but it is {describe(entries)}: "
            "start each entry with '- id:' (a dash, a space, then id)",
        )
    return result


def _parse_entry(node: Node, issues: Issues) -> Draft | None:
    if not isinstance(node, MappingNode):
        issues.error(
            node,
            f"an entry must be a group of 'key: value' lines starting with '- id:', "
            f"but this one is {describe(node)}",
        )
        return None
    draft = Draft(line=line_of(node))
    values = {
        key: found
        for key, found in _known(node, ENTRY_KEYS, "this entry", issues).items()
        # An optional key left empty counts as not given.
        if not is_null(found[1]) or key in ("id", "questions", "answer")
    }
    _parse_id(draft, values.get("id"), issues)
    _parse_texts(draft, values, issues)
    _parse_flags(draft, values, issues)
    return draft


def _known(
    node: MappingNode, allowed: tuple[str, ...], where: str, issues: Issues
) -> dict[str, tuple[Node, Node]]:
    """The allowed keys of a mapping, each with (key node, value node); unknown keys are errors.

    A misspelt key ('anwser') stands in for the key it resembles, once its error is reported:
    the staff member sees "did you mean 'answer'?" rather than also "missing answer", and what is
    written under it is still checked.
    """
    found: dict[str, tuple[Node, Node]] = {}
    misspelt: dict[str, tuple[Node, Node]] = {}
    for key, key_node, value in mapping_items(node, issues, where):
        if key in allowed:
            found[key] = (key_node, value)
            continue
        issues.error(key_node, unknown_key(key, allowed, "key"))
        close = closest(key, allowed)
        if close is not None:
            misspelt.setdefault(close, (key_node, value))
    return misspelt | found


def _parse_id(draft: Draft, found: tuple[Node, Node] | None, issues: Issues) -> None:
    example = "lowercase words joined by hyphens, e.g. 'id: pay-court-fee'"
    if found is None:
        issues.error(draft.line, f"missing id: add a unique id to this entry, {example}")
        return
    value = text_of(found[1], issues, "id")
    if value is None:
        return
    draft.id_line = line_of(found[1])
    if not ID_PATTERN.fullmatch(value):
        fixed = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
        hint = f": try '{fixed}'" if ID_PATTERN.fullmatch(fixed) else ""
        issues.error(found[1], f"id '{value}' must be {example}{hint}")
        return
    draft.id = value


def _parse_texts(draft: Draft, values: dict[str, tuple[Node, Node]], issues: Issues) -> None:
    if "questions" not in values or is_null(values["questions"][1]):
        where = values["questions"][0] if "questions" in values else draft.line
        issues.error(where, "missing questions: add 'questions:' with 'zh:' or 'en:' and a list")
    else:
        draft.questions = _parse_questions(values["questions"][1], issues)
    if "answer" not in values or is_null(values["answer"][1]):
        where = values["answer"][0] if "answer" in values else draft.line
        languages = ", ".join(draft.questions) or "zh"
        issues.error(where, f"missing answer: add 'answer:' with the answer in {languages}")
        answered = None
    else:
        draft.answer = _parse_language_texts(values["answer"][1], "answer", issues)
        # When answer is not per language at all, that one error says it all.
        answered = values["answer"][1] if isinstance(values["answer"][1], MappingNode) else None
    question_lines = _language_lines(values["questions"][1]) if "questions" in values else {}
    for language in draft.questions:
        if answered is not None and language not in draft.answer:
            issues.error(
                question_lines.get(language, draft.line),
                f"there are questions in {language} but no answer in {language}: "
                f"add 'answer: {language}: ...'",
            )
    if "short" in values:
        draft.short = _parse_language_texts(values["short"][1], "short", issues)
        _check_short(draft, values["short"][1], issues)
    for key in ("owner", "source"):
        if key in values:
            setattr(draft, key, text_of(values[key][1], issues, key))
    if "link" in values:
        draft.link = _parse_link(values["link"][1], issues)


def _language_lines(node: Node) -> dict[str, int]:
    """The line of each 'zh:'/'en:' key under questions/answer/short."""
    if not isinstance(node, MappingNode):
        return {}
    return {str(key.value): line_of(key) for key, _ in node.value}


def _check_short(draft: Draft, node: Node, issues: Issues) -> None:
    lines = _language_lines(node)
    for language, text in draft.short.items():
        length = weibo_length(text)
        if length > SHORT_LIMIT:
            issues.error(
                lines.get(language, line_of(node)),
                f"the short answer in {language} is {length} characters as Weibo counts them "
                f"(Chinese counts 1, English letters 1/2): cut it to {SHORT_LIMIT} or fewer",
            )
        if draft.answer and language not in draft.answer:
            issues.error(
                lines.get(language, line_of(node)),
                f"there is a short answer in {language} but no full answer in {language}: "
                f"add 'answer: {language}: ...'",
            )


def _parse_language_texts(node: Node, what: str, issues: Issues) -> dict[str, str]:
    texts: dict[str, str] = {}
    for language, value in language_items(node, what, issues, ENTRY_KEYS):
        text = text_of(value, issues, f"the {what} in {language}")
        if text is not None:
            texts[language] = text
    return texts


def _parse_questions(node: Node, issues: Issues) -> dict[str, list[tuple[str, int]]]:
    questions: dict[str, list[tuple[str, int]]] = {}
    for language, value in language_items(node, "questions", issues, ENTRY_KEYS):
        if not isinstance(value, SequenceNode):
            issues.error(
                value,
                f"the questions in {language} must be a list: write {language}: [first phrasing, "
                "other phrasing] or put each phrasing on its own line starting with '- '",
            )
            continue
        if not value.value:
            issues.error(value, f"there are no questions in {language}: add one or remove it")
            continue
        phrasings: list[tuple[str, int]] = []
        for item in value.value:
            if isinstance(item, ScalarNode) and (is_null(item) or not str(item.value).strip()):
                issues.error(
                    item, f"empty question in the {language} list: remove it or fill it in"
                )
                continue
            text = text_of(item, issues, f"a question in {language}")
            if text is not None:
                phrasings.append((text, line_of(item)))
        if phrasings:
            questions[language] = phrasings
    return questions


def _parse_link(node: Node, issues: Issues) -> str | None:
    link = text_of(node, issues, "link")
    if link is None:
        return None
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in link):
        issues.error(
            node,
            f"link '{link}' is not a web address: write it in full, starting with https://",
        )
        return None
    return link


def _parse_flags(draft: Draft, values: dict[str, tuple[Node, Node]], issues: Issues) -> None:
    for key in ("public", "escalate"):
        if key not in values:
            continue
        node = values[key][1]
        if isinstance(node, ScalarNode) and node.tag == BOOL_TAG:
            setattr(draft, key, SafeConstructor.bool_values[str(node.value).lower()])
        else:
            issues.error(node, f"{key} must be true or false (no quotes), not {describe(node)}")
    if "valid_until" in values:
        draft.valid_until = _parse_date(values["valid_until"][1], issues)


def _parse_date(node: Node, issues: Issues) -> date | None:
    # PyYAML would turn 2027-06-30 into a date and choke on 2027-02-30; reading the text as
    # written handles quoted and unquoted dates alike.
    text = str(node.value).strip() if isinstance(node, ScalarNode) else ""
    if not _DATE_PATTERN.fullmatch(text):
        issues.error(
            node,
            f"valid_until must be a date written YYYY-MM-DD, e.g. 2027-06-30, not {describe(node)}",
        )
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        issues.error(
            node, f"valid_until {text} is not a real date: check the month and the day (YYYY-MM-DD)"
        )
        return None
