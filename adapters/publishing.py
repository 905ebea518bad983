"""What the adapters that post announcements (`Publisher.publish`) share: the picture as an
upload, and the answer to a publication whose earlier attempt ended in doubt on a platform that
cannot tell whether it was posted."""

from __future__ import annotations

import mimetypes

from adapters.http import Upload
from bot.platform.messages import Publication, SendResult


def picture(publication: Publication, field: str) -> Upload | None:
    """The publication's picture as the `field` of a multipart upload; None without one."""
    if not publication.image:
        return None
    content_type = publication.image_type or "application/octet-stream"
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return Upload(
        field, publication.image, content_type, f"announcement-{publication.id}{extension}"
    )


def not_again(platform: str, publication: Publication) -> SendResult:
    """A dead letter rather than a second post: the platform keeps no idempotency key, and the
    earlier attempt may have posted it (the process stopped between sending and recording)."""
    return SendResult.failed(
        f"announcement post {publication.id}: an earlier attempt ended without an answer (the "
        f"process stopped mid-send) and {platform} cannot say whether it was posted; it is not "
        "posted again: look at the channel and, if the post is missing, retry this dead letter",
        retryable=False,
    )
