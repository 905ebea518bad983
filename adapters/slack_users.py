"""Who a Slack member is: `users.info`, for staff replies whose event names the author by member
id only (Slack's message events often carry no `user_profile`). Needs the `users:read` scope;
without it the member id stands for the staff member, and the log says what to add once.

Names are kept for an hour: a staff member answering ten tickets costs one call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.http import SessionSlot, request_json
from bot.config.settings import Secret
from bot.platform.messages import SendResult

log = logging.getLogger("civicdesk.slack")

KEEP_NAMES = 3600.0  # seconds a looked-up name is kept
TIMEOUT = 5.0
# auth.test runs inside Slack's 3 s delivery window (once an hour at most): keep it short.
AUTH_TEST_TIMEOUT = 2.0


class SlackDirectory:
    def __init__(
        self,
        http: SessionSlot,
        api_base: str,
        bot_token: Secret,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._api_base = api_base
        self._bot_token = bot_token
        self._clock = clock
        self._names: dict[str, tuple[str, float]] = {}
        self._warned = False
        self._bot_user: str | None = None
        self._bot_user_retry = float("-inf")

    async def name(self, user: str) -> str | None:
        kept = self._names.get(user)
        now = self._clock()
        if kept is not None and kept[1] > now:
            return kept[0]
        token = self._bot_token.reveal()
        reply = await request_json(
            self._http.session,
            "GET",
            f"{self._api_base}/users.info",
            params={"user": user},
            headers={"Authorization": f"Bearer {token}", "User-Agent": "civicdesk"},
            timeout=TIMEOUT,
            secrets=(token,),
        )
        if isinstance(reply, SendResult):  # no answer: network, time-out
            self._warn(user, reply.error)
            return None
        data = reply.data
        if not isinstance(data, Mapping) or data.get("ok") is not True:
            self._warn(user, data.get("error") if isinstance(data, Mapping) else reply.status)
            return None
        found = member_name(data.get("user"))
        if found is not None:
            self._names[user] = (found, now + KEEP_NAMES)
        return found

    async def bot_user(self) -> str | None:
        """The app's own bot user id (`auth.test`), asked once; None when Slack does not say
        (asked again after KEEP_NAMES seconds, not on every event)."""
        now = self._clock()
        if self._bot_user is not None or now < self._bot_user_retry:
            return self._bot_user
        self._bot_user_retry = now + KEEP_NAMES
        token = self._bot_token.reveal()
        reply = await request_json(
            self._http.session,
            "POST",
            f"{self._api_base}/auth.test",
            {},
            headers={"Authorization": f"Bearer {token}", "User-Agent": "civicdesk"},
            timeout=AUTH_TEST_TIMEOUT,
            secrets=(token,),
        )
        data = reply.data if not isinstance(reply, SendResult) else None
        if isinstance(data, Mapping) and data.get("ok") is True:
            user = data.get("user_id")
            if isinstance(user, str) and user:
                self._bot_user = user
                return user
        log.warning("auth.test did not name the app's bot user: its mentions may stay in the text")
        return None

    def _warn(self, user: str, error: Any) -> None:
        hint = (
            " (add the users:read scope and reinstall the app)" if error == "missing_scope" else ""
        )
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(
            level,
            "users.info for %s failed: %s%s; the member id stands for them",
            user,
            error,
            hint,
        )


def member_name(member: Any) -> str | None:
    """The name Slack shows for a `users.info` member: from the profile, else the member's."""
    if not isinstance(member, Mapping):
        return None
    return profile_name(member.get("profile")) or profile_name(member)


def profile_name(profile: Any) -> str | None:
    """The display name, else the full name, else the user name; None when there is none (an
    event's `user_profile` is often absent or empty)."""
    if not isinstance(profile, Mapping):
        return None
    for key in ("display_name", "real_name", "name"):
        value = profile.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:255]
    return None
