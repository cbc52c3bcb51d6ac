"""The jitter buffer between the decoder and the processor, and when it lets frames go early.

Decoded video is held until its release time (``queues.Pacer``: the pace of the timestamps, adapted to the
input's jitter), so a segment that arrives in one burst does not flood the processor's drop-oldest queue.
Catch-up: when the processor is waiting for a frame while more than ``catch_up_s`` of input is held (input
ahead of real time: a backlog of whole segments), the oldest held frame goes now: back-pressure instead of
pacing. Only one frame goes at a time, so the drop-oldest queue never drops because of it; a processor slower
than the input still lets held frames fall due and drop there, which keeps latency bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..queues import Pacer
from .items import DecodedVideo, presentation_time


@dataclass(frozen=True, slots=True)
class _Held:
    due: float  # loop time
    item: DecodedVideo


class JitterBuffer:
    """``push`` on the session's loop; frames come out through ``release``, in decode order."""

    def __init__(self, release: Callable[[DecodedVideo], None], wanted: Callable[[], bool], catch_up_s: float) -> None:
        self._release = release
        self._wanted = wanted  # the processor waits for a frame (and the encoder is not the slower stage)
        self._catch_up_s = catch_up_s
        self._pacer = Pacer()
        self._held: deque[_Held] = deque()  # due order
        self._last_due = 0.0  # loop time the last frame pushed is due

    def push(self, item: DecodedVideo) -> None:
        loop = asyncio.get_running_loop()
        due = self._pacer.release_at(presentation_time(item.frame), item.decoded_at)
        self._last_due = max(self._last_due, due)
        if due <= loop.time() and not self._held:
            self._release(item)
            return
        self._held.append(_Held(due, item))
        loop.call_at(due, self.release_due)
        self.catch_up()

    def release_due(self) -> None:
        """Hand on the held frames whose release time has come (a timer calls this)."""
        now = asyncio.get_running_loop().time()
        while self._held and self._held[0].due <= now:
            self._release(self._held.popleft().item)

    def catch_up(self) -> None:
        """Called whenever the processor or the encoder may have become free."""
        if not self._held or not self._wanted():
            return
        if self._held[-1].due - asyncio.get_running_loop().time() <= self._catch_up_s:
            return
        self._release(self._held.popleft().item)

    async def flush(self) -> None:
        """The input ended: the frames still held are due shortly; let them through."""
        await asyncio.sleep(max(0.0, self._last_due - asyncio.get_running_loop().time()) + 0.01)
        self.release_due()
