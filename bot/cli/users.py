"""Operator accounts for the /admin pages.

    civicdesk users add NAME      (asks for the password twice; never on the command line)
    civicdesk users list
    civicdesk users remove NAME   (their sessions end at their next request)

`bot.cli.main` adds these with `add_parser(subparsers)` and runs them with `run(args, settings,
out)`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from bot.admin.accounts import name_problem
from bot.admin.passwords import hash_password, password_problem
from bot.config.institutions import load_institutions
from bot.config.settings import Settings
from bot.storage.admin_queries import AdminStore, OperatorExists
from bot.storage.engine import StoreUnavailable
from bot.storage.store import Store

COMMAND = "users"
EXIT_OK, EXIT_FAILED = 0, 1
Prompt = Callable[[str], str]


def add_parser(commands: Any) -> None:
    users = commands.add_parser("users", help="operator accounts of the /admin pages")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an operator (asks for the password twice)")
    add.add_argument("name", help="the name the operator signs in with")
    add.add_argument(
        "--institution",
        help="the institution whose tickets they see (CIVICDESK_INSTITUTIONS); "
        "without it: a coordinator, who sees every institution",
    )
    actions.add_parser("list", help="list the operators")
    remove = actions.add_parser("remove", help="remove an operator; their sessions end")
    remove.add_argument("name")


def run(
    args: argparse.Namespace, settings: Settings, out: TextIO, prompt: Prompt | None = None
) -> int:
    try:
        return asyncio.run(_run(args, settings, out, prompt or getpass.getpass))
    except StoreUnavailable as exc:
        print(f"civicdesk: the database is unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _ask_password(prompt: Prompt) -> str | None:
    """The new password, typed twice; None (after saying why) when it cannot be used."""
    password = prompt("Password: ")
    problem = password_problem(password)
    if problem is not None:
        print(f"civicdesk: {problem}", file=sys.stderr)
        return None
    if prompt("Password again: ") != password:
        print("civicdesk: the two passwords differ; nothing was changed", file=sys.stderr)
        return None
    return password


async def _run(args: argparse.Namespace, settings: Settings, out: TextIO, prompt: Prompt) -> int:
    action = args.users_command
    if action == "add":
        problem = name_problem(args.name)
        if problem is not None:
            print(f"civicdesk: {problem}", file=sys.stderr)
            return EXIT_FAILED
        if args.institution is not None:
            # An unknown name is a ConfigError naming the institutions there are.
            load_institutions(settings, os.environ, check_channels=False).named(args.institution)
        password = _ask_password(prompt)
        if password is None:
            return EXIT_FAILED
        hashed = hash_password(password)  # before opening the store: asking took a while
    url = settings.database_url
    # As `civicdesk serve` does: a SQLite file is brought up to date here.
    store = await Store.open(url, upgrade=url.startswith("sqlite"))
    try:
        accounts = AdminStore(store)
        if action == "add":
            try:
                await accounts.add_operator(args.name, hashed, args.institution)
            except OperatorExists:
                print(
                    f"civicdesk: {args.name} already has an account (users remove it first "
                    "to set a new password)",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            role = f" (an operator of {args.institution})" if args.institution else ""
            print(f"{args.name}: added{role}; they can sign in at /admin", file=out)
        elif action == "remove":
            if not await accounts.remove_operator(args.name):
                print(f"civicdesk: no operator is called {args.name}", file=sys.stderr)
                return EXIT_FAILED
            print(f"{args.name}: removed; their sessions end at their next request", file=out)
        else:
            operators = await accounts.list_operators()
            for operator in operators:
                role = f"\t{operator.institution}" if operator.institution else ""
                print(
                    f"{operator.name}\tadded {operator.created_at:%Y-%m-%d %H:%M} UTC{role}",
                    file=out,
                )
            if not operators:
                print("no operators (civicdesk users add NAME)", file=out)
        return EXIT_OK
    finally:
        await store.close()
