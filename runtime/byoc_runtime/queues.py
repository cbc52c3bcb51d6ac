"""Bounded queues between pipeline stages that drop instead of blocking the producer.

When a stage downstream is slower than its input (a heavy model, a loaded CPU), waiting would make latency
grow without bound; dropping the oldest droppable item keeps the newest frames flowing and memory fixed.
"""

from __future__ import annotations

import asyncio
import time
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
    """A bounded FIFO for one event loop. ``put`` never blocks: when full it evicts the oldest item (or,
    with ``droppable``, the oldest item that it accepts) and reports what it evicted. With ``droppable``,
    only droppable items count against ``maxsize``: the others (bounded upstream) are never evicted, so a
    burst of them cannot push the droppable ones out.

    With ``max_wait`` (seconds), an item is also evicted when a newer one comes in while it has waited longer than
    that: the consumer is behind. A burst that the consumer takes at once (several frames decoded together) loses
    nothing, which a small ``maxsize`` alone would not allow."""

    def __init__(
        self, maxsize: int, droppable: Callable[[T], bool] | None = None, max_wait: float | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.max_wait = max_wait
        self._droppable = droppable
        self._items: deque[T] = deque()
        self._since: deque[float] = deque()  # when each item was put (monotonic), in step with _items
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._counted = 0  # items counting against maxsize
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, now: float | None = None) -> int:
        """Add ``item``; returns how many older items had to go. Items put after ``close()`` are ignored."""
        if self._closed:
            return 0
        now = time.monotonic() if now is None else now
        evicted = 0
        if self.max_wait is not None:
            while self._items and now - self._since[0] > self.max_wait and self._evict_oldest_droppable():
                evicted += 1
        counts = self._counts(item)
        if counts and self._counted >= self.maxsize and self._evict_oldest_droppable():
            evicted += 1
        self._items.append(item)
        self._since.append(now)
        self._counted += counts
        self._wake()
        return evicted

    def _counts(self, item: T) -> bool:
        return self._droppable is None or self._droppable(item)

    def _evict_oldest_droppable(self) -> bool:
        for index, candidate in enumerate(self._items):
            if self._counts(candidate):
                del self._items[index]
                del self._since[index]
                self.dropped += 1
                self._counted -= 1
                return True
        return False

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
        item = self._items.popleft()
        self._since.popleft()
        self._counted -= self._counts(item)
        return item

    def take_ready(self) -> list[T]:
        """Everything queued now, oldest first, without waiting (a consumer working in batches)."""
        items = list(self._items)
        self.clear()
        return items

    def count(self, predicate: Callable[[T], bool]) -> int:
        """How many queued items ``predicate`` accepts."""
        return sum(1 for item in self._items if predicate(item))

    def clear(self) -> None:
        self._items.clear()
        self._since.clear()
        self._counted = 0


class Pacer:
    """A jitter buffer: when to hand a frame on, so that frames arriving in bursts are released at the pace
    of their timestamps instead of all at once.

    Input that arrives paced (a gateway streaming each segment's bytes as they are produced) passes with no
    added delay. Input delivered a whole segment at a time would otherwise reach the drop-oldest video queue
    in one burst and lose most of the segment; here the release time is ``pts + offset`` with ``offset`` the
    largest arrival lag (arrival - pts) seen over the last ``window`` seconds, i.e. the playout delay adapts
    to the input's jitter. A lag that moves by more than ``max_hold`` seconds at once (a timestamp jump or a
    long stall) re-anchors instead of holding frames for that long.

    Input that arrives paced is not held at all: when the arrival lags of the window differ by at most
    ``paced_spread`` seconds (decode and scheduling jitter, not segment-sized bursts), a frame is due when it
    arrives. Holding it for the window's worst lag would only add that jitter to every frame's latency. That
    needs ``paced_after`` seconds of arrivals as evidence; until then (and after a re-anchor) frames are held.

    Release times never go back: a frame is never due before one released or scheduled earlier (after a
    re-anchor, or when the largest lag leaves the window), so frames keep their decode order and the encoder
    does not mistake a reordering for an input discontinuity.
    """

    def __init__(
        self, window: float = 5.0, max_hold: float = 2.0, paced_spread: float = 0.15, paced_after: float = 0.5
    ) -> None:
        self.window = window
        self.max_hold = max_hold
        self.paced_spread = paced_spread
        self.paced_after = paced_after
        self._since = float("inf")  # arrival of the first frame since the last re-anchor
        self._lags: deque[tuple[float, float]] = deque()  # (arrival, lag), lags decreasing
        self._low: deque[tuple[float, float]] = deque()  # (arrival, lag), lags increasing: the window's minimum
        self._last_due = float("-inf")

    def release_at(self, pts: float, arrival: float) -> float:
        """Wall-clock (same clock as ``arrival``) at which the frame with timestamp ``pts`` (seconds) is due."""
        lag = arrival - pts
        lags = self._lags
        if lags and abs(lag - lags[0][1]) > self.max_hold:
            lags.clear()  # timestamps jumped or input stalled: start over from this frame
            self._low.clear()
        if not lags:
            self._since = arrival
        while lags and lags[-1][1] <= lag:
            lags.pop()  # keep a monotonic deque for the sliding-window maximum
        lags.append((arrival, lag))
        while lags[0][0] < arrival - self.window:
            lags.popleft()
        low = self._low
        while low and low[-1][1] >= lag:
            low.pop()
        low.append((arrival, lag))
        while low[0][0] < arrival - self.window:
            low.popleft()
        paced = arrival - self._since >= self.paced_after and lags[0][1] - low[0][1] <= self.paced_spread
        offset = lag if paced else lags[0][1]
        due = max(pts + offset, self._last_due)
        self._last_due = due
        return due
