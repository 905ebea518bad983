"""The civicdesk command line: the composition root, where settings meet the core.

Errors raised anywhere below become one clear message and an exit code here, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

from dotenv import load_dotenv

import bot.cli.publish as cli_publish
import bot.cli.purge as cli_purge
import bot.cli.report as cli_report
import bot.cli.serve as cli_serve
import bot.cli.tickets as cli_tickets
import bot.cli.users as cli_users
from bot.answering.desk import Desk, Reply
from bot.answering.evaluation import EvalFileError, evaluate, load_eval_file
from bot.answering.kb_check import run_kb_check
from bot.answering.knowledge import KnowledgeError, load_knowledge
from bot.cli.examples import add_examples
from bot.cli.institutions import institution_knowledge, kb_check_all
from bot.config.semantic import semantic_model
from bot.config.settings import ConfigError, Settings
from bot.platform.adapter import TEXT_RULES
from bot.runtime.embedding import SemanticUnavailable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to read more) and exit
    status 2, rather than the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (usage: `{self.prog} --help`)\n")


def civicdesk_version() -> str:
    try:
        return version("civicdesk")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: pip install -e .)"


def _parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="civicdesk", description="An inquiry desk for public institutions."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {civicdesk_version()}")
    # Typed as argparse's own: the command modules take that; the parsers made are ours.
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )

    ask = commands.add_parser("ask", help="answer one question as the bot would")
    ask.add_argument("text", help="the question, as a citizen would write it")
    ask.add_argument("--channel", default="webchat", help=f"one of {', '.join(TEXT_RULES)}")
    ask.add_argument("--public", action="store_true", help="as a public mention or comment")
    ask.add_argument("--mention", default="citizen", help="the asker's handle in public replies")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument(
        "--institution", help="answer as this institution would (CIVICDESK_INSTITUTIONS)"
    )

    kb = commands.add_parser("kb", help="the knowledge base")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    check = kb_commands.add_parser("check", help="validate the FAQ files")
    check.add_argument("path", nargs="?", type=Path, help="folder (default CIVICDESK_KNOWLEDGE)")

    ev = commands.add_parser("eval", help="measure answer quality on labelled questions")
    ev.add_argument("files", nargs="+", type=Path, help="files in the shared/eval format")
    ev.add_argument(
        "--baselines",
        action="store_true",
        help="also run rapidfuzz brute force and, with the model, lexical and dense-only rankings",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    cli_serve.add_parser(commands)
    cli_tickets.add_parsers(commands)
    cli_users.add_parser(commands)
    cli_report.add_parser(commands)
    cli_purge.add_parser(commands)
    cli_publish.add_parser(commands)
    add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        status = _run(argv, out)
        out.flush()  # inside the try: a reader that went away is noticed here, not at exit
    except BrokenPipeError:
        # `civicdesk ask ... | head`: the reader stopped reading. As the Python docs advise (signal
        # module, "Note on SIGPIPE"), point stdout at devnull so that the interpreter's last flush
        # does not fail again with a traceback, and exit with a failure status.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return status


def _run(argv: Sequence[str] | None, out: TextIO) -> int:
    load_dotenv(Path.cwd() / ".env")
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        if args.command == "ask":
            return _ask(args, settings, out)
        if args.command == "kb":
            semantic = semantic_model(settings)
            embed = semantic.embed_phrasings if semantic else None
            if args.path is None:
                return kb_check_all(settings, os.environ, out, embed=embed)
            return run_kb_check(args.path, out, embed=embed)
        if args.command == "serve":
            return cli_serve.run(args, settings)
        if args.command == "work":
            return cli_serve.run_worker(args, settings)
        if args.command == cli_report.COMMAND:
            return cli_report.run(args, settings, out)
        if args.command == cli_publish.COMMAND:
            return cli_publish.run(args, settings, out)
        if args.command == cli_purge.COMMAND:
            return cli_purge.run(args, settings, out)
        if args.command == cli_users.COMMAND:
            return cli_users.run(args, settings, out)
        if args.command in cli_tickets.COMMANDS:
            return cli_tickets.run(args, settings, out)
        return _eval(args, settings, out)
    except ConfigError as exc:
        print(f"civicdesk: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SemanticUnavailable as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KnowledgeError as exc:
        print(
            f"civicdesk: the knowledge base has errors (run `civicdesk kb check`):\n{exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except EvalFileError as exc:
        print(f"civicdesk: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.channel not in TEXT_RULES:
        raise ConfigError(
            f"--channel {args.channel!r} is unknown: use one of {', '.join(TEXT_RULES)}"
        )
    knowledge, institution, overrides = None, None, frozenset[str]()
    if args.institution:
        item, knowledge, overrides = institution_knowledge(settings, os.environ, args.institution)
        institution = item.name
    else:
        knowledge = load_knowledge(settings.knowledge_path)
    desk = Desk(
        knowledge,
        settings.policy,
        default_lang=settings.default_lang,
        semantic=semantic_model(settings),
    )
    reply = desk.respond(args.text, channel=args.channel, public=args.public, mention=args.mention)
    if args.json:
        found = reply_json(reply, desk.matcher_name)
        if institution is not None:
            found["institution"] = institution
            found["override"] = reply.entry_id in overrides
        print(json.dumps(found, ensure_ascii=False), file=out)
    else:
        _print_reply(reply, args.channel, out)
        print(f"matcher:  {desk.matcher_name}", file=out)
    return EXIT_OK


def reply_json(reply: Reply, matcher: str | None = None) -> dict[str, Any]:
    return {
        **({"matcher": matcher} if matcher else {}),
        "decision": reply.decision.decision,
        "entry_id": reply.entry_id,
        "reply": reply.text,
        "lang": reply.lang,
        "candidates": [{"id": c.entry_id, "score": c.score} for c in reply.candidates],
        "reason": reply.decision.reason,
    }


def _print_reply(reply: Reply, channel: str, out: TextIO) -> None:
    rules = TEXT_RULES[channel]
    print(f"decision: {reply.decision.decision}  ({reply.decision.reason})", file=out)
    if reply.entry_id:
        print(f"entry:    {reply.entry_id}", file=out)
    print(f"reply ({channel}, {rules.count(reply.text)}/{rules.limit} {rules.name}):", file=out)
    print(reply.text, file=out)
    if reply.candidates:
        print("candidates:", file=out)
        for c in reply.candidates:
            print(f"  {c.score:.3f}  {c.entry_id:<36} {c.phrasing}", file=out)


def _eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    results = []
    semantic = semantic_model(settings)
    for path in args.files:
        result = evaluate(
            load_eval_file(path), settings.policy, baselines=args.baselines, semantic=semantic
        )
        results.append(result)
        if not args.json:
            _print_eval(result, out)
    if args.json:
        print(json.dumps({"policy": vars(settings.policy), "files": results}, indent=2), file=out)
    return EXIT_OK


_EVAL_COLUMNS = (
    "top1",
    "cov@P90",
    "cov@P95",
    "precision",
    "coverage",
    "oos_answered",
    "clarify_rate",
    "median_ms",
    "p99_ms",
)


def _print_eval(result: dict[str, Any], out: TextIO) -> None:
    print(
        f"\n{result['file']}: {result['queries']} queries, {result['out_of_scope']} out of "
        f"scope; index built in {result['build_s']} s",
        file=out,
    )
    print(f"  {'matcher':<28}" + "".join(f"{c:>13}" for c in _EVAL_COLUMNS), file=out)
    for name, metrics in result.items():
        if isinstance(metrics, dict):
            cells = "".join(
                f"{metrics[c]:>13.3f}" if c in metrics else f"{'-':>13}" for c in _EVAL_COLUMNS
            )
            print(f"  {name:<28}{cells}", file=out)
