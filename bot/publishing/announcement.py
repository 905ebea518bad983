"""An announcement as an office writes it: a YAML file with a title, a body in Chinese and/or
English, a link, an optional image, the channels to publish on and an optional time.

    title: 立案时间调整 / New filing hours
    body:
      zh: 自十二月起……
      en: From December ...
    link: https://court.example.gov.cn/notice/42
    image: filing-hours.png        # optional, relative to this file
    channels: [weibo, mastodon, telegram-news]
    at: 2026-12-09T09:00:00+08:00  # optional; without an offset, the office's time zone

Everything is bounded before use: an announcement file is written by staff, but a wrong one must
give a clear message, not a post of 3 MB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from bot.platform.lengths import url_spans

MAX_FILE_BYTES = 256 * 1024
MAX_TITLE = 200
MAX_BODY = 20_000
MAX_LINK = 2_000
MAX_CHANNELS = 32
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Mastodon's and Weibo's upload limits for a picture
LANGUAGES = ("zh", "en")
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_KEYS = frozenset({"title", "body", "link", "image", "channels", "at"})


class AnnouncementError(ValueError):
    """The announcement is not valid: the message says which field and why."""


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    name: str


@dataclass(frozen=True)
class Announcement:
    title: str
    bodies: tuple[tuple[str, str], ...]  # (language, text), in the order written
    link: str
    channels: tuple[str, ...]
    image: Image | None = None
    at: datetime | None = None  # None: as soon as it is queued


def load_announcement(path: Path, zone: tzinfo) -> Announcement:
    """The announcement in the YAML file at `path`; AnnouncementError for anything wrong."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AnnouncementError(
                f"{path}: {size} bytes; an announcement file has at most {MAX_FILE_BYTES}"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnnouncementError(f"{path}: cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise AnnouncementError(f"{path}: not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnnouncementError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, Mapping):
        raise AnnouncementError(f"{path}: must be a mapping with title, body, link, channels")
    image = _image(data.get("image"), path.parent)
    return parse_announcement(data, zone, image=image)


def parse_announcement(
    data: Mapping[str, Any], zone: tzinfo, *, image: Image | None = None
) -> Announcement:
    """The announcement from already-parsed values (a YAML file, the /admin form)."""
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise AnnouncementError(
            f"unknown field(s) {', '.join(unknown)}: the fields are {', '.join(sorted(_KEYS))}"
        )
    title = _text(data.get("title"), "title", MAX_TITLE)
    if "\n" in title:
        raise AnnouncementError("title: one line only")
    return Announcement(
        title=title,
        bodies=_bodies(data.get("body")),
        link=parse_link(data.get("link")),
        channels=parse_channels(data.get("channels")),
        image=image,
        at=parse_time(data.get("at"), zone),
    )


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AnnouncementError(f"{field}: required, a non-empty text")
    text: str = value.strip()
    if len(text) > limit:
        raise AnnouncementError(f"{field}: {len(text)} characters, at most {limit}")
    return text


def _bodies(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        return (("", _text(value, "body", MAX_BODY)),)
    if not isinstance(value, Mapping) or not value:
        raise AnnouncementError("body: a text, or a mapping of zh and/or en to texts")
    bodies = []
    for language, text in value.items():
        if language not in LANGUAGES:
            raise AnnouncementError(f"body: language {language!r}; write zh and/or en")
        bodies.append((str(language), _text(text, f"body.{language}", MAX_BODY)))
    return tuple(bodies)


def parse_link(value: Any) -> str:
    link = _text(value, "link", MAX_LINK)
    # The platforms count a link by a fixed weight only when they see it as one link: the same
    # pattern `bot.platform.lengths` counts with must take the whole of it.
    if url_spans(link) != [(0, len(link))]:
        raise AnnouncementError(
            f"link: {link!r} is not one http(s) address the platforms recognise as a link"
        )
    return link


def parse_channels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, Sequence) or not value:
        raise AnnouncementError("channels: a list of channel names from CIVICDESK_CHANNELS")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
            raise AnnouncementError(f"channels: {name!r} is not a channel name")
        if name.strip() not in names:
            names.append(name.strip())
    if len(names) > MAX_CHANNELS:
        raise AnnouncementError(f"channels: {len(names)}, at most {MAX_CHANNELS}")
    return tuple(names)


def parse_time(value: Any, zone: tzinfo) -> datetime | None:
    """A publish time: ISO 8601 text or a YAML timestamp; without an offset, in `zone`."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise AnnouncementError(
                f"at: {value!r} is no time; write e.g. 2026-12-09T09:00:00+08:00"
            ) from exc
    else:
        raise AnnouncementError("at: a time such as 2026-12-09T09:00:00+08:00")
    return when.replace(tzinfo=zone) if when.tzinfo is None else when


def _image(value: Any, folder: Path) -> Image | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise AnnouncementError("image: the path of a picture file, relative to the announcement")
    path = (folder / value.strip()).resolve()
    return read_image(path)


def read_image(path: Path) -> Image:
    content_type = IMAGE_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise AnnouncementError(
            f"image: {path.name}: a picture must be one of {', '.join(sorted(IMAGE_TYPES))}"
        )
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise AnnouncementError(
                f"image: {path.name} has {size} bytes, at most {MAX_IMAGE_BYTES}"
            )
        return Image(path.read_bytes(), content_type, path.name)
    except OSError as exc:
        raise AnnouncementError(f"image: {path} cannot be read ({exc.strerror})") from exc
