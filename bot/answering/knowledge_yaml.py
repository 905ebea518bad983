"""Read one YAML document as PyYAML nodes, and explain what went wrong to a non-programmer.

The knowledge files are checked on nodes rather than on `yaml.safe_load` output because only the
nodes remember where each key and value came from: every problem can then name its line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

LANGUAGES: tuple[str, ...] = ("zh", "en")
# Names staff reach for that difflib cannot connect to a two-letter code.
_LANGUAGE_ALIASES = {
    "cn": "zh",
    "zh-cn": "zh",
    "zh_cn": "zh",
    "zh-hans": "zh",
    "chinese": "zh",
    "中文": "zh",
    "english": "en",
    "en-us": "en",
    "en-gb": "en",
    "英文": "en",
}

NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"


@dataclass(frozen=True)
class Issue:
    """A problem inside one file; the caller adds the file name."""

    line: int  # 1-based; 0 when the problem is about the whole file
    message: str
    warning: bool = False


class Issues:
    """Collects the issues of one file, so validation can go on after the first mistake."""

    def __init__(self) -> None:
        self.items: list[Issue] = []

    def error(self, where: Node | int, message: str) -> None:
        self.items.append(Issue(_line(where), message))

    def warn(self, where: Node | int, message: str) -> None:
        self.items.append(Issue(_line(where), message, warning=True))


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _line(where: Node | int) -> int:
    return where if isinstance(where, int) else line_of(where)


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def describe(node: Node) -> str:
    """What a node looks like to the person who wrote it."""
    if isinstance(node, MappingNode):
        return "a group of 'key: value' lines"
    if isinstance(node, SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing"
    return f"'{node.value}'"


# libyaml is fast (10,000 phrasings parse in well under a second instead of several) and, unlike
# PyYAML's own scanner, accepts an unquoted '?' inside [ ], as in [How do I pay?, Where?].
# Without it (PyYAML built from source without libyaml) such a list is an error with a hint.
LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def compose(text: str) -> tuple[Node | None, list[Issue]]:
    """Parse one YAML document into nodes; a syntax error becomes an Issue with a hint."""
    try:
        return yaml.compose(text, Loader=LOADER), []
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_issue(exc, text)]
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not accept
        position = getattr(exc, "position", 0)
        line = text.count("\n", 0, position) + 1
        return None, [Issue(line, "this line has a character YAML does not accept: delete it")]


def _syntax_issue(exc: yaml.MarkedYAMLError, text: str) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    if "end of stream" in (exc.problem or "") and exc.context_mark is not None:
        # The scanner only notices an unclosed quote or bracket at the end of the file.
        mark = exc.context_mark
    if mark is None:
        return Issue(0, f"this is not valid YAML: {exc}")
    line, column = int(mark.line), int(mark.column)
    lines = text.splitlines()
    source = lines[line] if line < len(lines) else ""
    char = source[column] if column < len(source) else ""
    hint = _syntax_hint(exc.problem or "", exc.context or "", source, char)
    opened = exc.context_mark
    if "flow" in (exc.context or "") and opened is not None and int(opened.line) != line:
        hint += f" (the list starts on line {int(opened.line) + 1})"
    return Issue(line + 1, f"this is not valid YAML: {hint}")


def _syntax_hint(problem: str, context: str, source: str, char: str) -> str:
    """What is probably wrong, from the error of either parser and the offending line."""
    value = source.split(":", 1)[1].strip() if ":" in source else source.strip()
    if char == "\t" or "'\\t'" in problem:
        return "there is a tab here; indent with spaces only"
    if "quoted scalar" in context:
        return "a quote (\" or ') is opened but not closed; add the closing quote"
    if "flow" in context and "'?'" in problem:
        return (
            "inside [ ], a question with '?' must be in quotes: write "
            '["How do I pay?", "Where do I pay?"], or put each question on its own line '
            "starting with '- '"
        )
    if "flow" in context:
        return (
            "a list in [ ] or { } is broken; put each phrasing that contains a comma, colon or "
            "bracket in quotes, and check the list ends with ]"
        )
    if "mapping values are not allowed" in problem:
        if ":" in value:
            return "the text contains a colon (:); put the text in quotes"
        return "this line is indented too far; line it up with the lines above it"
    if "cannot start any token" in problem or "alias" in context or "anchor" in context:
        return f"a text starting with {value[:1] or char} must be put in quotes"
    if "single document" in context:
        return "the file holds two documents separated by '---'; keep one per file"
    if "could not find expected ':'" in problem:
        return "a line has no ':' after its key, or a text runs onto the next line; quote the text"
    if value[:1] in ('"', "'", "[", "{") and ("<scalar>" in problem or "expected key" in problem):
        return (
            "text goes on after a closing quote or bracket; put the whole text in quotes "
            "(use ' outside if the text contains \")"
        )
    if "block end" in problem or "expected key" in problem or "indicator" in problem:
        return "this line is not lined up with the lines above it; check the spaces at its start"
    return f"{problem or context}; check the indentation and the quotes"


def closest(key: str, allowed: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(key.casefold(), list(allowed), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key(key: str, allowed: Iterable[str], what: str) -> str:
    """'unknown key …: did you mean …?', or the list of what is allowed when nothing is close."""
    allowed = list(allowed)
    close = closest(key, allowed)
    if close:
        return f"unknown {what} '{key}': did you mean '{close}'?"
    return f"unknown {what} '{key}': use one of {', '.join(allowed)}"


def mapping_items(node: MappingNode, issues: Issues, where: str) -> list[tuple[str, Node, Node]]:
    """The (key, key node, value node) of a mapping; a key written twice is an error.

    PyYAML would silently keep the last of two equal keys, so a staff member would never learn
    which of their two answers is served.
    """
    seen: dict[str, int] = {}
    items: list[tuple[str, Node, Node]] = []
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else describe(key_node)
        if key in seen:
            issues.error(
                key_node,
                f"'{key}' appears twice in {where} (first at line {seen[key]}): keep only one",
            )
            continue
        seen[key] = line_of(key_node)
        items.append((key, key_node, value_node))
    return items


def text_of(node: Node, issues: Issues, what: str) -> str | None:
    """A single text; an error (and None) for a list, a 'key: value' or nothing."""
    if isinstance(node, MappingNode):
        issues.error(
            node, f"{what} contains ': ' so YAML reads it as a key; put the text in quotes"
        )
        return None
    if isinstance(node, SequenceNode):
        issues.error(node, f"{what} must be one text, not a list")
        return None
    text = str(node.value).strip()
    if is_null(node) or not text:
        issues.error(node, f"{what} is empty: write the text or remove the line")
        return None
    return text


def language_items(
    node: Node, what: str, issues: Issues, misplaced: Iterable[str] = ()
) -> list[tuple[str, Node]]:
    """The (language, value) pairs under questions/answer/short or in the synonyms file.

    A key in `misplaced` is one that belongs a level up: the hint says to unindent it. A misspelt
    language ('cn') stands in for the one it resembles once reported, so the rest still gets
    checked without a second error for the same slip.
    """
    if not isinstance(node, MappingNode):
        issues.error(
            node,
            f"{what} must be given per language, but it is {describe(node)}: "
            f"write '{what}:' and under it, indented, 'zh: ...' or 'en: ...'",
        )
        return []
    found: dict[str, Node] = {}
    misspelt: dict[str, Node] = {}
    for key, key_node, value in mapping_items(node, issues, what):
        if key in LANGUAGES:
            found[key] = value
            continue
        close = _LANGUAGE_ALIASES.get(key.casefold()) or closest(key, LANGUAGES)
        if close is not None:
            message = f"unknown language '{key}' under {what}: did you mean '{close}'?"
            misspelt.setdefault(close, value)
        else:
            message = f"unknown language '{key}' under {what}: use one of {', '.join(LANGUAGES)}"
            if key in misplaced:
                message += f"; if '{key}' belongs to the entry, line it up with '{what}'"
        issues.error(key_node, message)
    for language, value in misspelt.items():
        found.setdefault(language, value)
    return list(found.items())
