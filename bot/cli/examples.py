"""An example for the `--help` of every command, in one table so that none is forgotten.

`add_examples(parser)` walks the command tree and puts each command's examples in its help's
epilog; a command without one is an error at once (the tests build the parser). Each example is
a real command line: the tests parse every one of them with the parser itself.
"""

from __future__ import annotations

import argparse

EXAMPLES: dict[tuple[str, ...], tuple[str, ...]] = {
    (): (
        "civicdesk serve",
        "civicdesk ask 'How do I pay the court fee?'",
        "civicdesk tickets list",
    ),
    ("ask",): (
        "civicdesk ask '诉讼费怎么交'",
        "civicdesk ask 'How do I pay the court fee?' --channel weibo --public --json",
    ),
    ("kb",): ("civicdesk kb check",),
    ("kb", "check"): ("civicdesk kb check", "civicdesk kb check ~/faq"),
    ("eval",): ("civicdesk eval ../shared/eval/court.jsonl --baselines",),
    ("serve",): (
        "civicdesk serve",
        "civicdesk serve --host 0.0.0.0 --port 8080 --wait-for-db 30",
        "civicdesk serve --no-workers",
    ),
    ("work",): ("civicdesk work", "civicdesk work --port 9100 --wait-for-db 30"),
    ("tickets",): ("civicdesk tickets list", "civicdesk tickets show Q7K2M9"),
    ("tickets", "list"): ("civicdesk tickets list", "civicdesk tickets list --json"),
    ("tickets", "show"): ("civicdesk tickets show Q7K2M9",),
    ("tickets", "export"): ("civicdesk tickets export --format csv > tickets.csv",),
    ("tickets", "answer"): ("civicdesk tickets answer Q7K2M9 'The fee can be paid online at ...'",),
    ("tickets", "claim"): ("civicdesk tickets claim Q7K2M9 --by wang",),
    ("tickets", "close"): ("civicdesk tickets close Q7K2M9 'Answered by phone.'",),
    ("tickets", "note"): ("civicdesk tickets note Q7K2M9 'Called back, no answer.'",),
    ("tickets", "suggest-faq"): (
        "civicdesk tickets suggest-faq Q7K2M9",
        "civicdesk tickets suggest-faq --since 30d",
    ),
    ("deliveries",): ("civicdesk deliveries list-dead",),
    ("deliveries", "list-dead"): ("civicdesk deliveries list-dead --json",),
    ("deliveries", "retry"): ("civicdesk deliveries retry 17 18",),
    ("db",): ("civicdesk db upgrade",),
    ("db", "upgrade"): ("DATABASE_URL=postgresql://desk@db/civicdesk civicdesk db upgrade",),
    ("users",): ("civicdesk users add wang",),
    ("users", "add"): ("civicdesk users add wang",),
    ("users", "list"): ("civicdesk users list",),
    ("users", "remove"): ("civicdesk users remove wang",),
    ("report",): (
        "civicdesk report",
        "civicdesk report --since 30d --format html > report.html",
    ),
    ("purge",): ("civicdesk purge --dry-run", "civicdesk purge --older-than 90d"),
    ("publish",): (
        "civicdesk publish announcements/filing-hours.yaml --dry-run",
        "civicdesk publish announcements/filing-hours.yaml --dry-run --json",
        "civicdesk publish announcements/filing-hours.yaml --at 2026-12-09T09:00",
    ),
}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of the tree under `parser` with its path (aliases left out)."""
    found = [(path, parser)]
    for action in parser._actions:  # argparse keeps the subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:
                    seen.add(id(child))
                    found.extend(commands(child, (*path, name)))
    return found


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put each command's examples into its epilog; KeyError names a command without any."""
    for path, command in commands(parser):
        if path not in EXAMPLES:
            raise KeyError(f"`civicdesk {' '.join(path)}` has no example in bot.cli.examples")
        lines = "\n".join(f"  {example}" for example in EXAMPLES[path])
        command.epilog = f"example{'s' if len(EXAMPLES[path]) > 1 else ''}:\n{lines}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter
