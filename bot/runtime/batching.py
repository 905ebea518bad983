"""Group calls that arrive together into one flush: the group-commit idea, for any store call.

Callers `await batcher.submit(item)` one item each, as if alone. One background task takes every
item queued while the previous flush ran and flushes them together, so under load a transaction
serves many callers, and a lone caller waits for nobody: there is no timer to tune.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# A flush answers each item in order: its result, or the exception meant for that caller alone.
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


class BatcherClosed(Exception):
    """The batcher was closed: nothing more is taken."""


@dataclass
class _Item(Generic[T, R]):
    value: T
    done: asyncio.Future[R] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, name: str, max_batch: int = 200) -> None:
        self._flush = flush
        self._name = name
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item[T, R] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, value: T) -> R:
        if self._closed:
            raise BatcherClosed(f"{self._name}: closed")
        item: _Item[T, R] = _Item(value)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"civicdesk-{self._name}")
        self._queue.put_nowait(item)
        return await item.done

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._flush_batch(batch)
            if stop:
                return

    async def _flush_batch(self, batch: list[_Item[T, R]]) -> None:
        try:
            results = await self._flush([item.value for item in batch])
        except Exception as exc:  # the whole flush failed: every caller hears of it
            for item in batch:
                _settle(item.done, exc)
            return
        if len(results) != len(batch):  # a bug in the flush: fail loudly, never hang callers
            error = RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            log.error("%s", error)
            results = [error] * len(batch)
        for item, result in zip(batch, results, strict=True):
            _settle(item.done, result)


def _settle(future: asyncio.Future[R], result: R | Exception) -> None:
    if future.done():  # the caller went away; the work was done all the same
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
