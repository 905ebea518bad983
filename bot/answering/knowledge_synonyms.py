"""Read `_synonyms.yaml`: per language, a canonical term and the variants that mean the same.

```yaml
zh: {诉讼费: [诉讼费用, 案件受理费]}
en: {court fee: [litigation cost, filing fee]}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, SequenceNode

from bot.answering.knowledge_yaml import (
    Issues,
    describe,
    is_null,
    language_items,
    line_of,
    mapping_items,
    text_of,
)
from bot.answering.text import fold


@dataclass
class SynonymsFile:
    # language -> folded variant -> (folded canonical, line)
    synonyms: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    issues: Issues = field(default_factory=Issues)


def parse_synonyms(root: Node | None) -> SynonymsFile:
    result = SynonymsFile()
    if root is None:
        return result
    example = "zh: {诉讼费: [诉讼费用, 案件受理费]}"
    if not isinstance(root, MappingNode):
        result.issues.error(
            root,
            f"the synonyms file must have one line per language, e.g. {example}, "
            f"but it holds {describe(root)}",
        )
        return result
    for language, table in language_items(root, "synonyms", result.issues):
        if not isinstance(table, MappingNode):
            result.issues.error(
                table,
                f"the synonyms in {language} must be 'term: [variant, variant]' lines, "
                f"e.g. {example}",
            )
            continue
        result.synonyms[language] = _parse_synonym_table(table, language, result.issues)
    return result


def _parse_synonym_table(
    table: MappingNode, language: str, issues: Issues
) -> dict[str, tuple[str, int]]:
    variants: dict[str, tuple[str, int]] = {}
    canonicals: dict[str, int] = {}
    for term, term_node, value in mapping_items(table, issues, f"the {language} synonyms"):
        canonical = fold(term)
        canonicals[canonical] = line_of(term_node)
        if not isinstance(value, SequenceNode) or not value.value:
            issues.error(
                value if not is_null(value) else term_node,
                f"the variants of '{term}' must be a list: write {term}: [variant, variant]",
            )
            continue
        for item in value.value:
            text = text_of(item, issues, f"a variant of '{term}'")
            variant = fold(text) if text else ""
            if not variant or variant == canonical:
                continue
            if variant in variants and variants[variant][0] != canonical:
                first_canonical, first_line = variants[variant]
                issues.error(
                    item,
                    f"'{text}' is already a variant of '{first_canonical}' (line {first_line}): "
                    "a variant can stand for only one term; remove one of them",
                )
                continue
            variants[variant] = (canonical, line_of(item))
    for variant, (canonical, line) in variants.items():
        if variant in canonicals:
            issues.error(
                line,
                f"'{variant}' is a term of its own (line {canonicals[variant]}) and also a variant "
                f"of '{canonical}': move its variants under '{canonical}' and remove it",
            )
    return variants
