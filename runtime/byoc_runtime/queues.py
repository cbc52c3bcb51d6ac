"""Bounded queues between pipeline stages that drop instead of blocking the producer.

When a stage downstream is slower than its input (a heavy model, a loaded CPU), waiting would make latency
grow without bound; dropping the oldest droppable item keeps the newest frames flowing and memory fixed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed:
    """Returned by ``DropQueue.get`` once the queue is closed and drained."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSED"


CLOSED = Closed()


class DropQueue(Generic[T]):
    """A bounded FIFO for one event loop. ``put`` never blocks: when full it evicts the oldest item that
    ``droppable`` accepts (or the oldest item, if none does) and reports what it evicted."""

    def __init__(self, maxsize: int, droppable: Callable[[T], bool] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._droppable = droppable
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> T | None:
        """Add ``item``; returns the evicted item, if one had to go. Items put after ``close()`` are ignored."""
        if self._closed:
            return None
        evicted: T | None = None
        if len(self._items) >= self.maxsize:
            evicted = self._evict()
        self._items.append(item)
        self._wake()
        return evicted

    def _evict(self) -> T:
        if self._droppable is not None:
            for index, candidate in enumerate(self._items):
                if self._droppable(candidate):
                    del self._items[index]
                    self.dropped += 1
                    return candidate
        self.dropped += 1
        return self._items.popleft()

    def close(self) -> None:
        """No more items will come; ``get`` returns ``CLOSED`` once the rest are consumed."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> T | Closed:
        while not self._items:
            if self._closed:
                return CLOSED
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()
