"""A session's use of the processor instance it borrowed from the pool.

Calls run on the instance's own thread (``processors.host``) with ``processor_timeout``. One rule for a call
that does not return in time, whichever it is: the instance may be stuck, so the session calls it no more, the
pool rebuilds it instead of lending it again, and the stream fails with kind ``processor_timeout``.

The processor may also push items from its own thread at any time (data, monitoring events, input frames);
the sinks hand them to the session's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from .. import events
from ..frames import AudioFrame, VideoFrame
from ..processors.host import ProcessorHost, ProcessorTimeout
from .items import DecodedAudio, DecodedVideo
from .settings import SessionFailure

log = logging.getLogger(__name__)

_SINKS = ("attach_data_sink", "attach_event_sink", "attach_input_sink")


class ProcessorLink:
    def __init__(self, host: ProcessorHost, limit_s: float) -> None:
        self.host = host
        self.limit_s = limit_s
        self.healthy = True  # no call timed out: the instance can serve another session

    @property
    def instance(self) -> Any:
        return self.host.instance

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the processor's thread; ``SessionFailure`` if it takes over ``limit_s``."""
        try:
            return await self.host.call(fn, *args, limit_s=self.limit_s)
        except ProcessorTimeout as exc:
            self.healthy = False
            raise SessionFailure(str(exc), "processor_timeout") from exc

    async def call_hook(self, name: str, *args: Any) -> Any:
        """An optional method of the instance (a missing one is a no-op), as ``call``."""
        method = getattr(self.instance, name, None)
        return None if method is None else await self.call(method, *args)

    async def stream_stopped(self, stream_id: str) -> None:
        """``on_stream_stop``, unless the instance is stuck; a failure is only logged: the stream is over."""
        if not self.healthy:
            return
        try:
            await self.call_hook("on_stream_stop")
        except SessionFailure:
            pass  # timed out: marked unhealthy
        except Exception as exc:
            log.warning("session %s: on_stream_stop failed: %r", stream_id, exc)

    def attach(self, sinks: ProcessorSinks | None) -> None:
        """Route the processor's ``send_data`` / ``send_monitoring_event`` / ``send_input_frame`` to ``sinks``
        (None: detach them again, so a later session's processor does not write into this one)."""
        targets = (None, None, None) if sinks is None else (sinks.data, sinks.event, sinks.input_frame)
        for name, target in zip(_SINKS, targets, strict=True):
            method = getattr(self.instance, name, None)
            if method is not None:
                method(target)


class ProcessorSinks:
    """Items the processor pushes from its thread, each handed to the session's loop (dropped once it is gone)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        data: Callable[[Any], None],
        event: Callable[[dict[str, Any]], None],
        video: Callable[[DecodedVideo], None],
        audio: Callable[[DecodedAudio], None],
    ) -> None:
        self._loop = loop
        self._data = data
        self._event = event
        self._video = video
        self._audio = audio

    def data(self, item: Any) -> None:
        self._on_loop(self._data, item)

    def event(self, event: dict[str, Any], queue_event_type: str) -> None:
        self._on_loop(self._event, events.envelope(event, queue_event_type))

    def input_frame(self, frame: VideoFrame | AudioFrame) -> None:
        """A frame the processor made, into the input queues as if decoded (no jitter buffer: it is due now)."""
        decoded_at = time.monotonic()
        if isinstance(frame, VideoFrame):
            av_frame = frame.to_av_frame()
            av_frame.pts, av_frame.time_base = frame.timestamp, frame.time_base
            self._on_loop(self._video, DecodedVideo(av_frame, decoded_at))
        elif isinstance(frame, AudioFrame):
            self._on_loop(self._audio, DecodedAudio(frame.to_av_frame(), decoded_at))
        else:
            raise TypeError(f"send_input_frame takes a VideoFrame or an AudioFrame, not {type(frame).__name__}")

    def _on_loop(self, put: Callable[[Any], None], item: Any) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(put, item)
