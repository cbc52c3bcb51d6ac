"""A session's data channel: what the processor hands over, batched and published as pytrickle does
(``..data_channel``): every ``data_interval`` one segment of JSON-array lines, ``[]`` after ``data_keepalive``
seconds of silence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from .. import data_channel, trickle
from ..metrics import Metrics
from ..queues import Closed, DropQueue
from .events_out import EventsOut

log = logging.getLogger(__name__)


class DataOut:
    def __init__(self, stream_id: str, metrics: Metrics, events: EventsOut) -> None:
        self._stream_id = stream_id
        self._metrics = metrics
        self._events = events
        self._queue: DropQueue[Any] = DropQueue(1000)
        self._closing = asyncio.Event()  # the stream is over: send what is queued, then stop

    def close(self) -> None:
        self._closing.set()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    async def _take_all(self) -> list[Any]:
        items = []
        while len(self._queue):
            item = await self._queue.get()
            if not isinstance(item, Closed):
                items.append(item)
        return items

    async def write(
        self,
        url: str,
        http: aiohttp.ClientSession,
        interval: float,
        keepalive: float,
        on_closed: Callable[[str], None],
    ) -> None:
        """Publish until cancelled, or until the orchestrator closes the channel (``on_closed`` hears of it)."""
        publisher = trickle.Publisher(url, mime_type="application/jsonl", session=http)
        last_sent = time.monotonic()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), interval)
                closing = self._closing.is_set()
                items = await self._take_all()
                if not items and (closing or time.monotonic() - last_sent < keepalive):
                    if closing:
                        return
                    continue
                out = data_channel.batch(items)
                if out.too_long:
                    self._events.error(
                        f"{out.too_long} data item(s) dropped: over {data_channel.MAX_LINE_BYTES} bytes as JSON, "
                        "longer than the gateway reads a line",
                        "data",
                    )
                try:
                    async with publisher.segment() as writer:
                        await writer.write(out.payload if items else data_channel.KEEPALIVE)
                    last_sent = time.monotonic()
                except trickle.ChannelClosed as exc:  # ChannelNotFound included
                    if not closing:  # (while closing, the stream is ending anyway)
                        on_closed(f"data channel closed by the orchestrator: {exc}")
                    return
                except trickle.TrickleError as exc:
                    self._metrics.errors.labels("data").inc()
                    log.info("session %s: data not delivered: %s", self._stream_id, exc)
                if closing:
                    return
        finally:
            await publisher.close(delete=False)
