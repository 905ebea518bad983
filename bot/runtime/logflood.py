"""Keeping one failing resource from flooding the log.

When a process is out of file descriptors every accept, connect and open fails at once, and
asyncio logs each failed accept with its traceback: 228,000 of them (101 MB) in 40 s were seen.
`FloodFilter` lets one such record through every `every` seconds and counts the others, saying
how many were left out in the next one it lets through. Other records pass untouched.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable

EVERY = 10.0
_OUT_OF = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_WORDS = ("Too many open files", "out of system resource")


def is_exhaustion(record: logging.LogRecord) -> bool:
    """Whether `record` is about the process or system running out of descriptors/memory."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, OSError) and error.errno in _OUT_OF:
        return True
    message = record.msg if isinstance(record.msg, str) else ""
    return any(word in message for word in _WORDS)


class FloodFilter(logging.Filter):
    def __init__(self, every: float = EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self._clock = clock
        self._passed_at: float | None = None
        self.dropped = 0  # left out since the last one let through

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_exhaustion(record):
            return True
        now = self._clock()
        if self._passed_at is not None and now - self._passed_at < self.every:
            self.dropped += 1
            return False
        if self.dropped and self._passed_at is not None:
            since = now - self._passed_at
            record.msg = (
                f"{record.getMessage()} ({self.dropped} more like it in the last {since:.0f} s "
                "were left out of the log)"
            )
            record.args = None
        self._passed_at, self.dropped = now, 0
        return True


def install_flood_filter(logger: logging.Logger | None = None) -> int:
    """Put a FloodFilter on each handler of `logger` (default: the root logger) without one."""
    target = logger if logger is not None else logging.getLogger()
    installed = 0
    for handler in target.handlers:
        if not any(isinstance(f, FloodFilter) for f in handler.filters):
            handler.addFilter(FloodFilter())
            installed += 1
    return installed
