"""How the parsers' cost grows with hostile input: each shape timed at size n and 4n.

A linear parser takes about 4 times as long at 4n (ratio ~4); a quadratic one about 16 times.
Every shape here was super-linear before issue 11's fixes (e-mail RFC 2231 parameters, HTML
with unclosed tags, the quote stripper's header patterns, Telegram's handle removal, Slack's
mention pattern); a refused input costs almost nothing, whatever its size.

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
from adapters.slack import _plain as slack_text
from adapters.telegram import without_handle
from bot.platform.adapter import BadRequest


def mail_with_parameters(size: int) -> bytes:
    continued = "".join(f";\r\n t*{n}*=a" for n in range(size // 10))
    return f"From: a@b.c\r\nContent-Type: text/plain{continued}\r\n\r\nhi".encode()


def read(data: bytes) -> None:
    with contextlib.suppress(BadRequest):  # refused before the costly parsers: the fix
        read_mail(data, own_address="desk@example.gov")


SHAPES: dict[str, Callable[[int], Callable[[], object]]] = {
    "e-mail: RFC 2231 parameters": lambda n: lambda: read(mail_with_parameters(n)),
    "e-mail: HTML of unclosed tags": lambda n: lambda: html_to_text("<a " * (n // 3)),
    "e-mail: quoted header line": lambda n: lambda: strip_reply("from" + " " * n),
    "Mastodon: HTML of unclosed tags": lambda n: lambda: status_text("<a " * (n // 3)),
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
