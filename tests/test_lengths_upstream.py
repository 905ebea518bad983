"""Length counters against ground truth copied from the upstream projects into this repository.

Unlike the ../shared/fixtures tests in test_lengths.py, these never skip: the cases live in
tests/fixtures/lengths (see SOURCES.md there for where each one comes from and its licence).
- Mastodon: Mastodon.py's tests/test_status_length.py (MIT), checked against a live server.
- X: twitter-text's conformance validate.yml (Apache-2.0), the weighted-length sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import regex
import yaml

from bot.platform.lengths import mastodon_length, x_length

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lengths"
MASTODON_FILE = FIXTURES / "mastodon_status_length_cases.json"
TWITTER_FILE = FIXTURES / "twitter_text_validate_weighted_v3.yml"

MASTODON = json.loads(MASTODON_FILE.read_text(encoding="utf-8"))
TWITTER = yaml.safe_load(TWITTER_FILE.read_text(encoding="utf-8"))

# The sections kept from validate.yml and the twitter-text config each was written for. X uses
# v3; the v2 section keeps only cases without emoji, where v2 and v3 agree (checked below).
X_SECTIONS = {
    "WeightedTweetsWithDiscountedEmojiCounterTest": "v3",
    "UnicodeDirectionalMarkerCounterTest": "v3",
    "WeightedTweetsCounterTest": "v2",
}
_PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")


def _x_cases() -> list[Any]:
    return [
        pytest.param(case, id=f"{section}: {case['description']}")
        for section in X_SECTIONS
        for case in TWITTER["tests"][section]
    ]


def _mastodon_cases() -> list[Any]:
    return [
        pytest.param(case, id=f"{number:02d}: {case['text'][:40]!r}")
        for number, case in enumerate(MASTODON["cases"])
    ]


# --- the fixture files themselves ---------------------------------------------------------


def test_fixtures_name_their_upstream_and_licence() -> None:
    meta = MASTODON["meta"]
    assert meta["upstream_repository"] == "https://github.com/halcy/Mastodon.py"
    assert meta["upstream_path"] == "tests/test_status_length.py"
    assert meta["license"] == "MIT"
    meta = TWITTER["meta"]
    assert meta["upstream_repository"] == "https://github.com/twitter/twitter-text"
    assert meta["upstream_path"].endswith("validate.yml")
    assert meta["license"] == "Apache-2.0"
    assert meta["config"] == X_SECTIONS
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    assert MASTODON_FILE.name in sources and TWITTER_FILE.name in sources


def test_fixtures_hold_every_case_kept_from_upstream() -> None:
    # A truncated or half-merged fixture fails here instead of quietly testing less.
    assert len(MASTODON["cases"]) == 31
    counts = {section: len(TWITTER["tests"][section]) for section in X_SECTIONS}
    assert counts == {
        "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
        "UnicodeDirectionalMarkerCounterTest": 2,
        "WeightedTweetsCounterTest": 3,
    }


@pytest.mark.parametrize("case", _x_cases())
def test_twitter_text_case_transcribed_intact(case: dict[str, Any]) -> None:
    # Upstream's display range covers the whole text in UTF-16 code units, so a lost ZWJ, tag
    # character or combining mark changes the length and shows up here.
    utf16_units = len(case["text"].encode("utf-16-le")) // 2
    assert utf16_units == case["expected"]["displayRangeEnd"] + 1


def test_v2_cases_kept_have_no_emoji() -> None:
    # v2 counts emoji per code point, X (v3) per sequence: only emoji-free v2 cases apply to X.
    for case in TWITTER["tests"]["WeightedTweetsCounterTest"]:
        assert not _PICTOGRAPH.search(case["text"]), case["description"]


# --- the counters against upstream --------------------------------------------------------


@pytest.mark.parametrize("case", _x_cases())
def test_x_length_matches_twitter_text(case: dict[str, Any]) -> None:
    assert x_length(case["text"]) == case["expected"]["weightedLength"]


@pytest.mark.parametrize("case", _mastodon_cases())
def test_mastodon_length_matches_mastodon_py(case: dict[str, Any]) -> None:
    assert mastodon_length(case["text"]) == case["expected"]


@pytest.mark.parametrize("case", _mastodon_cases())
def test_mastodon_content_warning_adds_its_length(case: dict[str, Any]) -> None:
    check = MASTODON["meta"]["spoiler_text_check"]
    spoiler, adds = check["spoiler_text"], check["adds"]
    assert mastodon_length(case["text"], spoiler_text=spoiler) == case["expected"] + adds
