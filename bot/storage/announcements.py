"""The announcement half of `bot.storage.store.Store`: queueing an announcement's posts in the
outbox, recording what each platform made of them, and reading them back (the /admin page, the
report).

An announcement's post on one channel is an outbox row of kind "announcement": it is claimed,
leased, retried and dead-lettered like any reply, and its id is the idempotency key the adapter
gives the platform. A mixin only to keep files small: `Store` is the one class callers see.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from bot.platform.messages import OUTBOX_PENDING
from bot.publishing.announcement import Announcement
from bot.publishing.fitting import Fitted
from bot.storage.models import (
    ANNOUNCEMENT,
    ANNOUNCEMENT_POST,
    INBOX,
    OUTBOX,
    OUTBOX_KIND_ANNOUNCEMENT,
)
from bot.storage.runner import Runner

log = logging.getLogger("bot.storage.store")


@dataclass(frozen=True)
class QueuedPost:
    channel: str
    outbox_id: int


@dataclass(frozen=True)
class PostState:
    """One channel's post of an announcement, as the outbox and the platform left it."""

    channel: str
    outbox_id: int
    text: str
    count: int
    limit: int
    status: str  # the outbox row's: pending, sending, sent, dead
    attempts: int
    last_error: str | None
    platform_id: str | None
    url: str | None
    posted_at: datetime | None


@dataclass(frozen=True)
class AnnouncementState:
    id: int
    title: str
    link: str
    publish_at: datetime
    created_at: datetime
    created_by: str | None
    posts: tuple[PostState, ...]
    questions: int = 0  # replies under its posts that reached the desk (in the period asked)
    examples: tuple[str, ...] = ()  # the latest of them, unmasked: mask before showing


def announcement_context(announcement_id: int, link: str) -> str:
    """The reply_context of an announcement's outbox row: what `publish` needs besides text."""
    return json.dumps({"announcement": announcement_id, "link": link}, separators=(",", ":"))


def read_announcement_context(context: str | None) -> tuple[int | None, str | None]:
    try:
        data = json.loads(context or "{}")
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    number, link = data.get("announcement"), data.get("link")
    return (
        number if isinstance(number, int) else None,
        link if isinstance(link, str) else None,
    )


def _queue(
    connection: Connection,
    *,
    announcement: Announcement,
    fitted: Sequence[Fitted],
    created_by: str | None,
    now: datetime,
) -> tuple[int, list[QueuedPost]]:
    publish_at = announcement.at or now
    image = announcement.image
    announcement_id = connection.execute(
        insert(ANNOUNCEMENT)
        .values(
            title=announcement.title,
            bodies=[list(pair) for pair in announcement.bodies],
            link=announcement.link,
            image=image.data if image else None,
            image_type=image.content_type if image else None,
            publish_at=publish_at,
            created_at=now,
            created_by=created_by,
        )
        .returning(ANNOUNCEMENT.c.id)
    ).scalar_one()
    context = announcement_context(announcement_id, announcement.link)
    queued = []
    for post in fitted:
        outbox_id = connection.execute(
            insert(OUTBOX)
            .values(
                channel=post.channel,
                conversation=f"announcement:{announcement_id}",
                text=post.text,
                public=True,
                kind=OUTBOX_KIND_ANNOUNCEMENT,
                reply_context=context,
                status=OUTBOX_PENDING,
                attempts=0,
                next_attempt_at=publish_at,
                created_at=now,
            )
            .returning(OUTBOX.c.id)
        ).scalar_one()
        connection.execute(
            insert(ANNOUNCEMENT_POST).values(
                announcement_id=announcement_id,
                channel=post.channel,
                outbox_id=outbox_id,
                text=post.text,
                text_count=post.count,
                text_limit=post.limit,
            )
        )
        queued.append(QueuedPost(post.channel, outbox_id))
    return announcement_id, queued


_POSTS = (
    select(
        ANNOUNCEMENT_POST.c.announcement_id,
        ANNOUNCEMENT_POST.c.channel,
        ANNOUNCEMENT_POST.c.outbox_id,
        ANNOUNCEMENT_POST.c.text,
        ANNOUNCEMENT_POST.c.text_count,
        ANNOUNCEMENT_POST.c.text_limit,
        OUTBOX.c.status,
        OUTBOX.c.attempts,
        OUTBOX.c.last_error,
        func.coalesce(ANNOUNCEMENT_POST.c.platform_id, OUTBOX.c.platform_message_id).label(
            "platform_id"
        ),
        ANNOUNCEMENT_POST.c.url,
        func.coalesce(ANNOUNCEMENT_POST.c.posted_at, OUTBOX.c.sent_at).label("posted_at"),
    )
    .join(OUTBOX, OUTBOX.c.id == ANNOUNCEMENT_POST.c.outbox_id)
    .order_by(ANNOUNCEMENT_POST.c.id)
)


def _announcements(
    connection: Connection,
    *,
    limit: int,
    announcement_id: int | None = None,
    created_since: datetime | None = None,
    questions_since: datetime | None = None,
    questions_until: datetime | None = None,
) -> list[AnnouncementState]:
    query = select(ANNOUNCEMENT).order_by(ANNOUNCEMENT.c.id.desc()).limit(limit)
    if announcement_id is not None:
        query = query.where(ANNOUNCEMENT.c.id == announcement_id)
    if created_since is not None:
        query = query.where(ANNOUNCEMENT.c.publish_at >= created_since)
    heads = list(connection.execute(query))
    if not heads:
        return []
    ids = [head.id for head in heads]
    posts: dict[int, list[PostState]] = {number: [] for number in ids}
    for row in connection.execute(_POSTS.where(ANNOUNCEMENT_POST.c.announcement_id.in_(ids))):
        posts[row.announcement_id].append(
            PostState(
                channel=row.channel,
                outbox_id=row.outbox_id,
                text=row.text,
                count=row.text_count,
                limit=row.text_limit,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error,
                platform_id=row.platform_id,
                url=row.url,
                posted_at=row.posted_at,
            )
        )
    questions, examples = _questions(connection, ids, questions_since, questions_until)
    return [
        AnnouncementState(
            id=head.id,
            title=head.title,
            link=head.link,
            publish_at=head.publish_at,
            created_at=head.created_at,
            created_by=head.created_by,
            posts=tuple(posts[head.id]),
            questions=questions.get(head.id, 0),
            examples=tuple(examples.get(head.id, ())),
        )
        for head in heads
    ]


def replies_under_posts() -> Any:
    """Inbox rows that answer a published post: a reply naming the post (Mastodon's
    in_reply_to_id, a Weibo comment's reply to the status) or in the post's thread."""
    post = ANNOUNCEMENT_POST
    return and_(
        INBOX.c.channel == post.c.channel,
        post.c.platform_id.is_not(None),
        or_(INBOX.c.reply_to == post.c.platform_id, INBOX.c.conversation == post.c.platform_id),
    )


EXAMPLES = 3  # questions shown per announcement


def _questions(
    connection: Connection,
    ids: Sequence[int],
    since: datetime | None,
    until: datetime | None,
) -> tuple[dict[int, int], dict[int, list[str]]]:
    """Per announcement: how many questions its posts drew, and the latest few."""
    post = ANNOUNCEMENT_POST
    window: list[ColumnElement[bool]] = [post.c.announcement_id.in_(ids)]
    if since is not None:
        window.append(INBOX.c.received_at >= since)
    if until is not None:
        window.append(INBOX.c.received_at < until)
    joined = post.join(INBOX, replies_under_posts())
    counts = (
        select(post.c.announcement_id, func.count(func.distinct(INBOX.c.id)))
        .select_from(joined)
        .where(*window)
        .group_by(post.c.announcement_id)
    )
    counted = {number: count for number, count in connection.execute(counts)}
    examples: dict[int, list[str]] = {}
    for number in counted:
        latest = (
            select(INBOX.c.text)
            .select_from(joined)
            .where(*window, post.c.announcement_id == number, INBOX.c.text != "")
            .order_by(INBOX.c.id.desc())
            .limit(EXAMPLES)
        )
        examples[number] = [text for (text,) in connection.execute(latest)]
    return counted, examples


class AnnouncementMethods:
    _db: Runner

    def now(self) -> datetime:
        raise NotImplementedError

    async def queue_announcement(
        self, announcement: Announcement, fitted: Sequence[Fitted], *, created_by: str | None
    ) -> tuple[int, list[QueuedPost]]:
        """Store the announcement and queue one outbox row per fitted channel, due at its
        publish time: all in one transaction, so it is queued everywhere or nowhere."""
        queued = await self._db.write(
            partial(
                _queue,
                announcement=announcement,
                fitted=fitted,
                created_by=created_by,
                now=self.now(),
            )
        )
        log.info("announcement %d queued on %d channel(s)", queued[0], len(queued[1]))
        return queued

    async def announcement_image(self, announcement_id: int) -> tuple[bytes, str] | None:
        """The announcement's picture and its content type; None when it has none."""

        def read(connection: Connection) -> tuple[bytes, str] | None:
            row = connection.execute(
                select(ANNOUNCEMENT.c.image, ANNOUNCEMENT.c.image_type).where(
                    ANNOUNCEMENT.c.id == announcement_id
                )
            ).first()
            if row is None or row.image is None:
                return None
            return bytes(row.image), row.image_type or "application/octet-stream"

        return await self._db.read(read)

    async def record_post(self, outbox_id: int, platform_id: str | None, url: str | None) -> None:
        """What the platform called the post, and where it can be seen."""

        def write(connection: Connection) -> None:
            connection.execute(
                update(ANNOUNCEMENT_POST)
                .where(ANNOUNCEMENT_POST.c.outbox_id == outbox_id)
                .values(platform_id=platform_id, url=url, posted_at=self.now())
            )

        await self._db.write(write)

    async def list_announcements(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AnnouncementState]:
        """The newest announcements with their posts; `questions` counts the replies under
        their posts received in [since, until)."""
        return await self._db.read(
            partial(
                _announcements,
                limit=limit,
                questions_since=since,
                questions_until=until,
            )
        )

    async def announcement_of_message(self, inbox_id: int | None) -> tuple[int, str, str] | None:
        """(id, title, link) of the announcement whose post the inbox message replies to: the
        context staff need to answer "is it open on Saturdays?" under a notice."""
        if inbox_id is None:
            return None

        def read(connection: Connection) -> tuple[int, str, str] | None:
            row = connection.execute(
                select(ANNOUNCEMENT.c.id, ANNOUNCEMENT.c.title, ANNOUNCEMENT.c.link)
                .select_from(
                    INBOX.join(ANNOUNCEMENT_POST, replies_under_posts()).join(
                        ANNOUNCEMENT, ANNOUNCEMENT.c.id == ANNOUNCEMENT_POST.c.announcement_id
                    )
                )
                .where(INBOX.c.id == inbox_id)
                .limit(1)
            ).first()
            return (row.id, row.title, row.link) if row is not None else None

        return await self._db.read(read)
