"""Length counters against the platforms' rules and, where they exist, their ground truth.

The ground-truth files (twitter-text's conformance suite, counts recorded from a Mastodon server)
live in ../shared/fixtures and are held back from some checkouts: those tests skip then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import regex
import yaml

from bot.platform.lengths import (
    mastodon_length,
    plain_length,
    url_spans,
    utf8_bytes_length,
    utf16_length,
    weibo_length,
    x_length,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
X_CONFORMANCE = FIXTURES / "x" / "twitter_text_conformance_validate.yml"
MASTODON_CASES = FIXTURES / "mastodon" / "status_length_cases.json"

ZWJ = "\u200d"
FAMILY = ZWJ.join("👨👩👧👦")
LINK = "https://court.example.gov/fees"


def links(text: str) -> list[str]:
    return [text[start:end] for start, end in url_spans(text)]


# --- the shared link pattern -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://court.example.gov/fees.", ["https://court.example.gov/fees"]),
        ("(see https://example.com/a_(b) now)", ["https://example.com/a_(b)"]),
        ("请访问https://court.example.gov/fees了解", ["https://court.example.gov/fees"]),
        ("https://example.com/path?q=1&r=2#top, then", ["https://example.com/path?q=1&r=2#top"]),
        ("HTTPS://EXAMPLE.COM/Index", ["HTTPS://EXAMPLE.COM/Index"]),
        ("http://例子.中国/", ["http://例子.中国/"]),
        ("https://x.рф/путь?кто=я", ["https://x.рф/путь"]),
        ("court.example.gov/fees", []),  # no scheme: not counted as a link by Mastodon or here
        ("ftp://files.example.net/x", []),
        ("http://127.0.0.1:8080/health", []),
        ("http://user:pass@example.com/", []),
        ("foohttp://example.com", []),
    ],
)
def test_url_pattern_finds_what_platforms_shorten(text: str, expected: list[str]) -> None:
    assert links(text) == expected


def test_a_host_label_longer_than_63_is_no_link() -> None:
    assert links("https://" + "a" * 64 + ".com") == []
    assert links("https://" + "a" * 63 + ".com") == ["https://" + "a" * 63 + ".com"]


# --- plain and bytes ---------------------------------------------------------------------


def test_plain_length_counts_code_points() -> None:
    assert plain_length("") == 0
    assert plain_length("诉讼费 fee") == 7
    assert plain_length(FAMILY) == 7


def test_utf8_bytes_length() -> None:
    assert utf8_bytes_length("abc") == 3
    assert utf8_bytes_length("诉讼费") == 9
    assert utf8_bytes_length("😀") == 4


def test_utf16_length_counts_code_units_as_line_does() -> None:
    # LINE's text-character-count rule: characters outside the BMP (emoji) count 2.
    assert utf16_length("") == 0
    assert utf16_length("诉讼费 fee") == 7
    assert utf16_length("🍎") == 2
    assert utf16_length("诉讼费 fee 🍎 @张三 https://court.example.gov/fees") == 45
    assert utf16_length(FAMILY) == 11  # four emoji of 2 units and three joiners of 1


# --- Weibo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("诉讼费", 3),
        ("ab", 1),
        ("abc", 2),  # half characters round up
        ("，。！", 3),  # full-width punctuation is a whole character
        ("诉讼费 fee", 5),  # 3 + 4 × ½
        (LINK, 10),  # as its t.cn short link: 20 ASCII characters
        (f"详见{LINK}。", 13),
        ("汉" * 140, 140),
    ],
)
def test_weibo_length(text: str, expected: int) -> None:
    assert weibo_length(text) == expected


# --- X -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Pay the fee.", 12),
        ("诉讼费", 6),
        ("。", 2),  # CJK punctuation weighs 2
        ("…", 2),  # U+2026 lies between the light ranges
        ("‘quoted’ – ok", 13),  # U+2018/2019/2013 are in the light range 8208–8223
        (LINK, 23),
        (f"Fees: {LINK} and {LINK}.", 6 + 23 + 5 + 23 + 1),
        ("A\u0301", 1),  # NFC first: one Á
        ("😀", 2),
        (FAMILY, 2),  # a ZWJ sequence is one emoji
        ("🇪🇪", 2),
        ("✊🏿", 2),
        ("汉" * 140, 280),
    ],
)
def test_x_length(text: str, expected: int) -> None:
    assert x_length(text) == expected


# --- Mastodon ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("诉讼费 fee", 7),
        (LINK, 23),
        (f"{LINK}.", 24),
        ("@alice", 6),
        ("@alice@example.social", 6),  # counts as @alice
        ("hi @alice@example.social!", 10),
        ("mail alice@example.social", 25),  # not a mention: no concession
        (f"{FAMILY} 🇪🇪 ✊🏿 e\u0301", 7),  # grapheme clusters
        ("http://192.168.0.1/", 19),
        ("ftp://files.example.net/x", 25),
    ],
)
def test_mastodon_length(text: str, expected: int) -> None:
    assert mastodon_length(text) == expected


def test_mastodon_content_warning_counts_as_written() -> None:
    assert mastodon_length("hello", spoiler_text=f"CW {LINK}") == 5 + 3 + len(LINK)


# --- ground truth from ../shared/fixtures ------------------------------------------------

# Sections of twitter-text's validate.yml that this counter is checked against:
# - WeightedTweetsWithDiscountedEmojiCounterTest and UnicodeDirectionalMarkerCounterTest: the v3
#   rules (emoji sequences weigh 2), which X uses.
# - WeightedTweetsCounterTest: the v2 rules, which differ from v3 only for emoji, so its cases
#   without emoji apply.
# Not used: tweets, usernames, lists, hashtags, urls, urls_without_protocol (validity, not
# length) and lengths (the v1 count). Not implemented, so a case needing it would be skipped by
# description: links without a scheme ("example.com") counting 23; none of the v3 cases does.
_X_SECTIONS = {
    "WeightedTweetsWithDiscountedEmojiCounterTest": "v3",
    "UnicodeDirectionalMarkerCounterTest": "v3",
    "WeightedTweetsCounterTest": "v2",
}
_X_SKIPPED: dict[str, str] = {}
_PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def _x_cases() -> list[Any]:
    if not X_CONFORMANCE.is_file():
        reason = f"{X_CONFORMANCE} is absent (held back from this checkout)"
        return [pytest.param("", 0, marks=pytest.mark.skip(reason=reason), id="absent")]
    tests = yaml.safe_load(X_CONFORMANCE.read_text(encoding="utf-8"))["tests"]
    cases = []
    for section, rules in _X_SECTIONS.items():
        for case in tests.get(section) or []:
            text, description = case["text"], case["description"]
            marks = []
            if rules == "v2" and _PICTOGRAPH.search(text):
                marks.append(pytest.mark.skip(reason="v2 counts emoji per code point"))
            if description in _X_SKIPPED:
                marks.append(pytest.mark.skip(reason=_X_SKIPPED[description]))
            expected = case["expected"]["weightedLength"]
            cases.append(pytest.param(text, expected, marks=marks, id=f"{section}: {description}"))
    if not cases:
        sections = ", ".join(tests)
        return [pytest.param("", -1, id=f"no weighted-length section among: {sections}")]
    return cases


@pytest.mark.parametrize(("text", "expected"), _x_cases())
def test_x_length_matches_twitter_text_conformance(text: str, expected: int) -> None:
    assert x_length(text) == expected


_TEXT_KEYS = ("text", "status", "input")
_LENGTH_KEYS = ("length", "expected", "expected_length", "count", "characters")
_SPOILER_KEYS = ("spoiler_text", "spoiler", "cw")


def _first(case: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((case[key] for key in keys if key in case), None)


def _mastodon_cases() -> list[Any]:
    if not MASTODON_CASES.is_file():
        reason = f"{MASTODON_CASES} is absent (held back from this checkout)"
        return [pytest.param("", "", 0, marks=pytest.mark.skip(reason=reason), id="absent")]
    data = json.loads(MASTODON_CASES.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = next((value for value in data.values() if isinstance(value, list)), [])
    cases = []
    for number, case in enumerate(data):
        if isinstance(case, list) and len(case) == 2:
            text, spoiler, expected = case[0], "", case[1]
        elif isinstance(case, dict):
            text, expected = _first(case, _TEXT_KEYS), _first(case, _LENGTH_KEYS)
            spoiler = _first(case, _SPOILER_KEYS) or ""
        else:
            text = expected = None
        if not isinstance(text, str) or not isinstance(expected, int):
            # A format this loader does not know must fail, not pass vacuously.
            return [pytest.param("", "", -1, id=f"unreadable case {number}: {case!r:.60}")]
        cases.append(pytest.param(text, spoiler, expected, id=f"{number}: {text[:40]!r}"))
    return cases or [pytest.param("", "", -1, id="no cases found")]


@pytest.mark.parametrize(("text", "spoiler", "expected"), _mastodon_cases())
def test_mastodon_length_matches_recorded_server_counts(
    text: str, spoiler: str, expected: int
) -> None:
    assert mastodon_length(text, spoiler_text=spoiler) == expected
