"""A session's events channel: the messages it publishes (``..events``) queued and posted in order.

Error events are rate-limited per kind (``error_event_interval``): a processor failing on every frame must not
flood the gateway. The last error is kept for the status either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from .. import events, trickle
from ..metrics import Metrics
from ..queues import CLOSED, DropQueue

log = logging.getLogger(__name__)

Event = dict[str, Any]


class EventsOut:
    def __init__(self, stream_id: str, metrics: Metrics, error_interval: float) -> None:
        self._stream_id = stream_id
        self._metrics = metrics
        self._error_interval = error_interval
        self._queue: DropQueue[Event] = DropQueue(64)
        self._last_error_at: dict[str, float] = {}
        self.last_error: str | None = None

    def put(self, event: Event) -> None:
        self._queue.put(event)

    def error(self, message: str, kind: str) -> None:
        """Something went wrong and the stream goes on: counted, kept as the last error, reported (rate-limited)."""
        self.last_error = message
        self._metrics.errors.labels(kind).inc()
        now = time.monotonic()
        if now - self._last_error_at.get(kind, -1e9) < self._error_interval:
            return
        self._last_error_at[kind] = now
        log.warning("session %s: %s", self._stream_id, message)
        self.put(events.error(message, kind))

    def failure(self, message: str, kind: str) -> None:
        """The stream ends because of ``message``: always reported."""
        self.last_error = message
        self._metrics.errors.labels(kind).inc()
        self.put(events.error(message, kind))
        log.warning("session %s failed: %s", self._stream_id, message)

    def close(self) -> None:
        """No more events: the writer ends once it has posted what is queued."""
        self._queue.close()

    async def write(self, url: str, http: aiohttp.ClientSession, on_closed: Callable[[str], None]) -> None:
        """Post the queued events until ``close()``; ``on_closed`` hears that the orchestrator closed the channel."""
        publisher = trickle.JsonPublisher(url, session=http)
        try:
            while (event := await self._queue.get()) is not CLOSED:
                try:
                    await publisher.send(event)
                except trickle.ChannelClosed as exc:  # ChannelNotFound included
                    on_closed(f"events channel closed by the orchestrator: {exc}")
                except trickle.TrickleError as exc:
                    self._metrics.errors.labels("events").inc()
                    log.info("session %s: event not delivered: %s", self._stream_id, exc)
        finally:
            await publisher.close(delete=False)

    async def heartbeat(self, interval: float, beat: Callable[[], Event]) -> None:
        """Queue ``beat()`` every ``interval`` seconds: the gateway ends a stream that is silent for 30 s."""
        while True:
            self.put(beat())
            await asyncio.sleep(interval)
