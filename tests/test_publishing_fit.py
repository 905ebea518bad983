"""Announcements fitted to each platform: `civicdesk publish --dry-run` and the fitting rules.

The counts are checked against independent implementations of the platforms' published rules
written here (not `bot.platform.lengths`): X's twitter-text v3 configuration (weights 100 and 200
per code point range, scale 100, every link 23) and Weibo's rule (a Chinese character counts 1,
an ASCII character ½, rounded up; a link counts as its t.cn short link of 20 ASCII characters).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cli.main import main
from bot.platform.adapter import TEXT_RULES
from bot.publishing.announcement import AnnouncementError, Image, parse_announcement
from bot.publishing.fitting import fit, fit_for_channel

SAMPLE = Path(__file__).parent / "fixtures" / "announcements" / "filing-hours.yaml"
LINK = "https://court.example.gov.cn/notice/2026/filing-hours"
CHANNELS = "weibo,x,mastodon,telegram,matrix,email"
_URL = re.compile(r"https?://[A-Za-z0-9./_\-?=&%#]+")
_SENTENCE_END = "。！？!?.\n"


# --- the platforms' published rules, written independently --------------------------------------

# twitter-text v3 (config/v3.json): {"defaultWeight": 200, "ranges": [{0-4351: 100},
# {8192-8205: 100}, {8208-8223: 100}, {8242-8247: 100}], "scale": 100,
# "transformedURLLength": 23, "maxWeightedTweetLength": 280}
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def x_published_count(text: str) -> int:
    weight = 0
    position = 0
    for match in _URL.finditer(text):
        weight += sum(_x_weight(c) for c in text[position : match.start()]) + 2300
        position = match.end()
    weight += sum(_x_weight(c) for c in text[position:])
    return weight // 100


def _x_weight(char: str) -> int:
    return 100 if any(low <= ord(char) <= high for low, high in _X_LIGHT) else 200


def weibo_published_count(text: str) -> int:
    halves = 0
    position = 0
    for match in _URL.finditer(text):
        halves += sum(1 if c.isascii() else 2 for c in text[position : match.start()]) + 20
        position = match.end()
    halves += sum(1 if c.isascii() else 2 for c in text[position:])
    return -(-halves // 2)


# --- the command ------------------------------------------------------------------------------


def dry_run(
    monkeypatch: pytest.MonkeyPatch, path: Path, channels: str = CHANNELS, **environ: str
) -> tuple[int, str]:
    for key in [k for k in os.environ if k.startswith("CIVICDESK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CIVICDESK_CHANNELS", channels)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(path.parent)
    out = io.StringIO()
    status = main(["publish", str(path), "--dry-run", "--json"], out)
    return status, out.getvalue()


def test_the_sample_has_600_chinese_characters_and_a_link() -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    assert len(re.findall(r"[\u4e00-\u9fff]", data["body"]["zh"])) >= 600
    assert data["link"] == LINK


def test_dry_run_fits_every_channel_as_that_platform_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "untouched.db"
    status, out = dry_run(monkeypatch, SAMPLE, DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    assert status == 0
    posts = json.loads(out)
    assert [post["channel"] for post in posts] == CHANNELS.split(",")
    assert all(set(post) == {"channel", "text", "count", "limit"} for post in posts)
    body = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["body"]["zh"]
    by_channel = {post["channel"]: post for post in posts}
    for post in posts:
        text = post["text"]
        assert post["count"] <= post["limit"], post
        assert text.endswith("\n\n" + LINK), f"{post['channel']}: the link is kept whole"
        assert text.startswith("关于调整立案窗口服务时间的公告\n\n")
        shown = text[len("关于调整立案窗口服务时间的公告\n\n") : -len("\n\n" + LINK)]
        if shown != body:  # cut: after a whole sentence of the body, marked with "…"
            assert shown.endswith("…"), post["channel"]
            head = shown[:-1]
            assert body.startswith(head) and head[-1] in _SENTENCE_END, post["channel"]
    assert by_channel["weibo"]["limit"] == 140
    assert by_channel["weibo"]["count"] == weibo_published_count(by_channel["weibo"]["text"])
    assert by_channel["x"]["limit"] == 280
    assert by_channel["x"]["count"] == x_published_count(by_channel["x"]["text"])
    assert by_channel["mastodon"]["limit"] == 500
    # The whole 600 characters go where they fit; the short forms are really shorter.
    assert body in by_channel["telegram"]["text"] and body in by_channel["email"]["text"]
    assert len(by_channel["weibo"]["text"]) < len(by_channel["mastodon"]["text"]) < len(body)
    assert not database.exists(), "a dry run opens no database"
    print("\n" + "\n".join(f"{p['channel']}: {p['count']}/{p['limit']}" for p in posts))


def test_dry_run_needs_only_channel_names_and_adapters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    announcement = tmp_path / "a.yaml"
    announcement.write_text(
        yaml.safe_dump(
            {
                "title": "New filing hours",
                "body": "Open on Saturdays.",
                "link": LINK,
                "channels": ["news", "weibo-main"],
            }
        ),
        encoding="utf-8",
    )
    status, out = dry_run(
        monkeypatch,
        announcement,
        "news,weibo-main",
        CIVICDESK_NEWS_ADAPTER="telegram",
        CIVICDESK_WEIBO_MAIN_ADAPTER="weibo",
    )
    assert status == 0, out
    limits = {post["channel"]: post["limit"] for post in json.loads(out)}
    assert limits == {"news": 4096, "weibo-main": 140}


@pytest.mark.parametrize(
    ("channels", "channel_list", "message"),
    [
        ("weibo", ["mastodon"], "not in CIVICDESK_CHANNELS"),
        ("webhook", ["webhook"], "cannot post announcements"),
    ],
)
def test_a_channel_that_cannot_publish_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    channels: str,
    channel_list: list[str],
    message: str,
) -> None:
    announcement = tmp_path / "a.yaml"
    announcement.write_text(
        yaml.safe_dump({"title": "T", "body": "B.", "link": LINK, "channels": channel_list}),
        "utf-8",
    )
    status, out = dry_run(monkeypatch, announcement, channels)
    assert status == 2 and out == ""
    assert message in capsys.readouterr().err


def _parse(**fields: Any) -> Any:
    data = {"title": "T", "body": "B.", "link": LINK, "channels": ["weibo"], **fields}
    return parse_announcement(data, ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"link": "court.example.gov.cn/x"}, "link"),
        ({"link": "https://court.example.gov.cn/x 2"}, "link"),
        ({"title": ""}, "title"),
        ({"body": {"fr": "Bonjour"}}, "language"),
        ({"body": "x" * 20_001}, "at most"),
        ({"at": "next tuesday"}, "at:"),
        ({"channels": []}, "channels"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_a_wrong_announcement_says_which_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(AnnouncementError, match=message):
        _parse(**fields)


def test_a_time_without_offset_is_the_offices() -> None:
    announcement = _parse(at="2026-12-09T09:00:00")
    assert announcement.at.isoformat() == "2026-12-09T09:00:00+08:00"


# --- the rules --------------------------------------------------------------------------------


def test_english_is_cut_between_words_when_no_sentence_fits() -> None:
    body = (
        "From Monday the filing office opens earlier and closes later on every working day "
        "including the days before public holidays"
    ) * 3
    text, form = fit("New hours", [body], LINK, TEXT_RULES["x"])
    assert form == "cut" and x_published_count(text) <= 280
    head = text.split("\n\n")[1].removesuffix("…")
    assert body.startswith(head) and body[len(head)] == " ", "the cut falls between words"


def test_chinese_is_cut_at_punctuation_never_between_two_characters() -> None:
    clause = "当事人可以通过人民法院在线服务平台办理网上立案和预约立案，"
    body = clause * 12 + "特此公告"  # one long sentence: only clause ends to cut at
    text, form = fit("公告", [body], LINK, TEXT_RULES["weibo"])
    head = text.split("\n\n")[1].removesuffix("…")
    assert form == "cut" and weibo_published_count(text) <= 140
    assert head.endswith("立案") and body.startswith(head)


def test_without_any_boundary_the_title_and_link_remain() -> None:
    body = "当事人可以通过人民法院在线服务平台办理网上立案" * 10  # no punctuation at all
    text, form = fit("关于立案时间的公告", [body], LINK, TEXT_RULES["weibo"])
    assert (text, form) == (f"关于立案时间的公告\n\n{LINK}", "title")


def test_two_languages_where_they_fit_one_where_they_do_not() -> None:
    bodies = ["自周一起立案窗口提前开放。", "From Monday the filing office opens earlier."]
    both, form = fit("公告 / Notice", bodies, LINK, TEXT_RULES["mastodon"])
    assert form == "full" and all(body in both for body in bodies)
    bodies[1] = bodies[1] * 12
    one, form = fit("公告 / Notice", bodies, LINK, TEXT_RULES["weibo"])
    assert form == "one language" and bodies[0] in one and "Monday" not in one


def test_a_telegram_post_with_a_picture_is_fitted_to_a_caption() -> None:
    announcement = _parse(body="立案窗口调整。" * 300, channels=["news"])
    plain = fit_for_channel(announcement, "news", "telegram")
    pictured = fit_for_channel(
        announcement.__class__(
            **{**announcement.__dict__, "image": Image(b"x", "image/png", "a.png")}
        ),
        "news",
        "telegram",
    )
    assert plain.limit == 4096 and pictured.limit == 1024
    assert pictured.count <= 1024 < plain.count
