"""Announcements: write one, preview each channel's text with its count and limit (as that
platform counts), then queue it in the outbox; the list shows where each was posted, with the
post links, and how many questions its posts drew.

The same rules as `civicdesk publish` (`bot.publishing`); a picture is added from the command
line (`image:` in the YAML file)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.admin.render import page, see_other
from bot.admin.state import AdminState, operator_of, state_of
from bot.publishing.announcement import Announcement, AnnouncementError, parse_announcement
from bot.publishing.fitting import Fitted, fit_for_channel

LIST_LIMIT = 30


def _form_values(form: Any) -> dict[str, Any]:
    """The announcement's fields as the form gave them (to show them again)."""
    return {
        "title": str(form.get("title", "")),
        "zh": str(form.get("zh", "")),
        "en": str(form.get("en", "")),
        "link": str(form.get("link", "")),
        "at": str(form.get("at", "")),
        "channels": [str(c) for c in form.getall("channel", [])],
    }


def _announcement(state: AdminState, values: dict[str, Any]) -> Announcement:
    body = {lang: values[lang] for lang in ("zh", "en") if values[lang].strip()}
    unknown = [name for name in values["channels"] if name not in state.publishers]
    if unknown:
        raise AnnouncementError(f"channels: {', '.join(unknown)} cannot post announcements")
    data = {
        "title": values["title"],
        "body": body or None,
        "link": values["link"],
        "channels": values["channels"],
        "at": values["at"] or None,
    }
    return parse_announcement(data, state.settings.calendar.hours.zone)


def _fitted(state: AdminState, announcement: Announcement) -> list[Fitted]:
    return [
        fit_for_channel(announcement, name, state.publishers[name])
        for name in announcement.channels
    ]


async def _list_page(
    request: web.Request,
    *,
    values: dict[str, Any] | None = None,
    previews: list[Fitted] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.StreamResponse:
    state = state_of(request)
    return page(
        request,
        "announcements.html",
        status=status,
        publishers=state.publishers,
        values=values
        or {
            **dict.fromkeys(("title", "zh", "en", "link", "at"), ""),
            "channels": list(state.publishers),
        },
        previews=previews,
        error=error,
        announcements=await state.store.list_announcements(limit=LIST_LIMIT),
        done=request.query.get("done") == "queued",
    )


async def announcement_list(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


async def preview(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    values = _form_values(await request.post())
    try:
        previews = _fitted(state, _announcement(state, values))
    except AnnouncementError as exc:
        return await _list_page(request, values=values, error=str(exc), status=400)
    return await _list_page(request, values=values, previews=previews)


async def publish(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    values = _form_values(await request.post())
    try:
        announcement = _announcement(state, values)
        fitted = _fitted(state, announcement)
    except AnnouncementError as exc:
        return await _list_page(request, values=values, error=str(exc), status=400)
    # The delivery claims due posts at its next poll (CIVICDESK_POLL_INTERVAL).
    await state.store.queue_announcement(announcement, fitted, created_by=operator_of(request))
    return see_other("/admin/announcements?done=queued")
