"""How the parsers' cost grows with hostile input: each shape timed at size n and 4n.

A linear parser takes about 4 times as long at 4n (ratio ~4); a quadratic one about 16 times.
Every shape here was super-linear before issue 11's fixes (e-mail RFC 2231 parameters, HTML
with unclosed tags, the quote stripper's header patterns, Telegram's handle removal, Slack's
mention pattern) or before the own-mention removal read links through the linear HTML reader
(Mastodon's own mention links, Matrix's pills); a refused input costs almost nothing, whatever
its size. Matrix reads at most 10,000 characters of a formatted body: its ratio stays ~1 past
n = 2,500.

    .venv/bin/python benchmarks/parsers.py           # n = 20,000 characters
    .venv/bin/python benchmarks/parsers.py --quick   # n = 5,000 (CI smoke)
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

from adapters.email_parse import html_to_text, read_mail
from adapters.email_quotes import strip_reply
from adapters.mastodon_text import html_to_text as status_text
from adapters.mastodon_text import question_text as status_question
from adapters.matrix_events import Identity, pill_names
from adapters.slack import _plain as slack_text
from adapters.telegram import without_handle
from bot.platform.adapter import BadRequest


def mail_with_parameters(size: int) -> bytes:
    continued = "".join(f";\r\n t*{n}*=a" for n in range(size // 10))
    return f"From: a@b.c\r\nContent-Type: text/plain{continued}\r\n\r\nhi".encode()


OWN_URL = "https://gov.social/@civicdesk"
BOT = Identity("@civicdesk:example.org", "Civic Desk")


def read(data: bytes) -> None:
    with contextlib.suppress(BadRequest):  # refused before the costly parsers: the fix
        read_mail(data, own_address="desk@example.gov")


SHAPES: dict[str, Callable[[int], Callable[[], object]]] = {
    "e-mail: RFC 2231 parameters": lambda n: lambda: read(mail_with_parameters(n)),
    "e-mail: HTML of unclosed tags": lambda n: lambda: html_to_text("<a " * (n // 3)),
    "e-mail: quoted header line": lambda n: lambda: strip_reply("from" + " " * n),
    "e-mail: HTML of unclosed attributes": lambda n: (
        lambda: html_to_text('<div id="x" class=\'q style="a>' * (n // 30))
    ),
    # Lines within MAX_PATTERN_LINE, so that the header patterns do run on them.
    "e-mail: sender header lines": lambda n: (
        lambda: strip_reply(("sent by" + " " * 900 + "\n") * (n // 908))
    ),
    "Mastodon: HTML of unclosed tags": lambda n: lambda: status_text("<a " * (n // 3)),
    "Mastodon: unclosed own mentions": lambda n: (
        lambda: status_question('<span class="h-card"><a href="' * (n // 30), own_urls=[OWN_URL])
    ),
    "Matrix: unclosed pills": lambda n: (
        lambda: pill_names({"formatted_body": '<a href="x">y' * (n // 13)}, BOT)
    ),
    "Telegram: spaces, no handle": lambda n: lambda: without_handle(" " * n, "civicdesk_bot"),
    "Slack: unclosed mentions": lambda n: lambda: slack_text("<@A|" * (n // 4), frozenset()),
}


def seconds(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 5,000 (CI smoke)")
    parser.add_argument("--size", type=int, default=20_000, help="n in characters")
    options = parser.parse_args()
    size = 5_000 if options.quick else options.size
    print(f"{'shape':34} {'n (ms)':>10} {'4n (ms)':>10} {'ratio':>6}")
    worst = 0.0
    for name, shape in SHAPES.items():
        small, large = seconds(shape(size)), seconds(shape(4 * size))
        ratio = large / small if small > 0 else 0.0
        worst = max(worst, ratio)
        print(f"{name:34} {small * 1000:10.2f} {large * 1000:10.2f} {ratio:6.1f}")
    verdict = "PASS" if worst < 8 else "FAIL"
    print(f"acceptance (every ratio below 8: linear is ~4, quadratic ~16): {verdict}")


if __name__ == "__main__":
    main()
