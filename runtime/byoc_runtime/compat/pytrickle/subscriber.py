"""``pytrickle.subscriber`` stand-in: ``TrickleSubscriber`` (v0.1.8 ``subscriber.py``) on this runtime's trickle
``Subscriber``.

``await subscriber.next()`` is the next ``Segment`` or None at the end of the channel (this runtime's
subscriber ends there instead of handing out an end-of-stream segment, so ``eos()`` is always False on the
segments it returns); ``await segment.read()`` returns the body chunk by chunk, then None.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from byoc_runtime import trickle

from .base import ComponentState, ErrorCallback, TrickleComponent

CONNECT_TIMEOUT_SECONDS = 30
MAX_RETRIES = 5


class Segment:
    def __init__(self, segment: trickle.Segment) -> None:
        self._segment = segment
        self._chunks: AsyncIterator[bytes] | None = None

    def seq(self) -> int:
        return self._segment.seq

    def eos(self) -> bool:
        return False

    async def read(self, chunk_size: int = 32 * 1024) -> bytes | None:
        if self._chunks is None:
            self._chunks = self._segment.iter_chunks(chunk_size)
        return await anext(self._chunks, None)

    async def close(self) -> None:
        self._segment.close()


class TrickleSubscriber(TrickleComponent):
    def __init__(
        self,
        url: str,
        start_seq: int = -2,
        max_retries: int = MAX_RETRIES,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        error_callback: ErrorCallback | None = None,
        component_name: str | None = "subscriber",
    ) -> None:
        super().__init__(error_callback, component_name or "subscriber")
        self.url = url
        self.start_seq = start_seq
        self.max_retries = max_retries
        self.connect_timeout_seconds = connect_timeout_seconds
        self._subscriber: trickle.Subscriber | None = None

    async def start(self) -> None:
        if self._subscriber is None:
            self._subscriber = trickle.Subscriber(
                self.url,
                start_seq=self.start_seq,
                retry=trickle.RetryPolicy(attempts=max(1, self.max_retries)),
                connect_timeout=self.connect_timeout_seconds,
            )
        self._update_state(ComponentState.RUNNING)

    async def next(self) -> Segment | None:
        await self.start()
        assert self._subscriber is not None
        try:
            segment = await self._subscriber.next()
        except trickle.TrickleError as exc:
            await self._notify_error("subscriber_failed", exc)
            return None
        return Segment(segment) if segment is not None else None

    async def close(self) -> None:
        self.shutdown_event.set()
        if self._subscriber is not None:
            with contextlib.suppress(trickle.TrickleError):
                await self._subscriber.close()
            self._subscriber = None
        self._update_state(ComponentState.STOPPED)

    async def __aenter__(self) -> TrickleSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["Segment", "TrickleSubscriber"]
