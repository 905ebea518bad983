"""One coroutine run as a task from `start()` to `stop()`: the watchers that wake workers."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundTask:
    """Subclasses give `_run` (it runs until cancelled) and a task `name` for debugging."""

    name = "civicdesk-background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError
