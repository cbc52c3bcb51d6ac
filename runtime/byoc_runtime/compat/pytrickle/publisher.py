"""``pytrickle.publisher`` stand-in: ``TricklePublisher`` (v0.1.8 ``publisher.py``) on this runtime's trickle
``Publisher``.

``await publisher.next()`` opens the channel's next segment and returns its ``SegmentWriter``: ``write(data)``
streams into it and ``close()`` ends it (or ``async with``; an exception in the block drops the segment).
``close()`` stops publishing without deleting the channel, as upstream.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any

from byoc_runtime import trickle

from .base import ComponentState, ErrorCallback, TrickleComponent


class SegmentWriter:
    def __init__(self, context: Any, writer: trickle.SegmentWriter) -> None:
        self._context = context
        self._writer = writer
        self._closed = False

    async def write(self, data: bytes) -> None:
        await self._writer.write(data)

    async def close(self, exc: BaseException | None = None) -> None:
        if not self._closed:
            self._closed = True
            await self._context.__aexit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)

    async def __aenter__(self) -> SegmentWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close(exc)


class TricklePublisher(TrickleComponent):
    def __init__(
        self,
        url: str,
        mime_type: str = "video/mp4",
        error_callback: ErrorCallback | None = None,
        component_name: str | None = "publisher",
    ) -> None:
        super().__init__(error_callback, component_name or "publisher")
        self.url = url
        self.mime_type = mime_type
        self._publisher: trickle.Publisher | None = None

    async def start(self) -> None:
        if self._publisher is None:
            self._publisher = trickle.Publisher(self.url, mime_type=self.mime_type)
        self._update_state(ComponentState.RUNNING)

    def stream_idx(self) -> str:
        """The URL of the segment ``next()`` opens."""
        return f"{self.url}/{self._publisher.seq if self._publisher else 0}"

    async def next(self) -> SegmentWriter:
        await self.start()
        assert self._publisher is not None
        context = self._publisher.segment()
        try:
            writer = await context.__aenter__()
        except trickle.TrickleError as exc:
            await self._notify_error("publisher_segment_failed", exc)
            raise
        return SegmentWriter(context, writer)

    async def close(self) -> None:
        self.shutdown_event.set()
        if self._publisher is not None:
            with contextlib.suppress(trickle.TrickleError):
                await self._publisher.close(delete=False)
            self._publisher = None
        self._update_state(ComponentState.STOPPED)

    async def __aenter__(self) -> TricklePublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["SegmentWriter", "TricklePublisher"]
