"""``FrameProcessor``: the base class processors subclass, compatible with pytrickle ``frame_processor.py``.

pytrickle (v0.1.6) declares ``load_model``, ``process_video_async``, ``process_audio_async`` and
``update_params`` abstract and offers ``on_stream_start(params)`` / ``on_stream_stop()`` hooks. Here nothing
is abstract: a missing method means "pass through" / "nothing to do", and ``load_model`` falls back to an
``initialize()`` method, which is what the Livepeer BYOC guide's example defines instead. ``start()`` (also
from the guide) just loads the model.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..frames import AudioFrame, VideoFrame

log = logging.getLogger(__name__)

DataSink = Callable[[Any], None]
EventSink = Callable[[dict[str, Any], str], None]
InputSink = Callable[[VideoFrame | AudioFrame], None]


class FrameProcessor:
    """Subclass and override ``process_video_async`` (and optionally the other hooks)."""

    def __init__(self, error_callback: Callable[..., Awaitable[None]] | None = None, **init_kwargs: Any) -> None:
        self.error_callback = error_callback
        self.state: Any = None
        self._model_loaded = False
        self._model_load_lock: asyncio.Lock | None = None
        self._data_sink: DataSink | None = None
        self._event_sink: EventSink | None = None
        self._input_sink: InputSink | None = None

    def attach_state(self, state: Any) -> None:
        self.state = state

    async def ensure_model_loaded(self, **kwargs: Any) -> None:
        """Load the model exactly once, however many times this is called."""
        if self._model_load_lock is None:
            self._model_load_lock = asyncio.Lock()
        async with self._model_load_lock:
            if not self._model_loaded:
                await self.load_model(**kwargs)
                self._model_loaded = True

    async def start(self) -> None:
        await self.ensure_model_loaded()

    async def load_model(self, **kwargs: Any) -> None:
        initialize = getattr(self, "initialize", None)
        if callable(initialize):
            result = initialize()
            if inspect.isawaitable(result):
                await result

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame | None:
        return frame

    async def process_audio_async(self, frame: AudioFrame) -> list[AudioFrame] | None:
        return [frame]

    async def update_params(self, params: dict[str, Any]) -> None:
        pass

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        pass

    async def on_stream_stop(self) -> None:
        pass

    # -- runtime extensions ------------------------------------------------------------------------------

    def attach_data_sink(self, sink: DataSink | None) -> None:
        """Set by the runtime while the processor serves a session; ``send_data`` goes there."""
        self._data_sink = sink

    def attach_event_sink(self, sink: EventSink | None) -> None:
        """Set by the runtime while the processor serves a session; ``send_monitoring_event`` goes there."""
        self._event_sink = sink

    def attach_input_sink(self, sink: InputSink | None) -> None:
        """Set by the runtime while the processor serves a session; ``send_input_frame`` goes there."""
        self._input_sink = sink

    async def send_input_frame(self, frame: VideoFrame | AudioFrame) -> bool:
        """Put a frame into the session's input as if it had been decoded from the stream (pytrickle
        ``StreamProcessor.send_input_frame``): it is processed and published like the others."""
        return _hand_to(getattr(self, "_input_sink", None), "send_input_frame", frame)

    async def send_monitoring_event(self, event: dict[str, Any], queue_event_type: str = "stream_events") -> bool:
        """Publish a monitoring event on the session's events channel (pytrickle ``emit_monitoring_event``)."""
        return _hand_to(getattr(self, "_event_sink", None), "send_monitoring_event", event, queue_event_type)

    async def send_data(self, data: Any) -> bool:
        """Publish ``data`` (any JSON-serialisable value) on the session's data channel, if it has one."""
        return _hand_to(getattr(self, "_data_sink", None), "send_data", data)


def _hand_to(sink: Callable[..., None] | None, what: str, *args: Any) -> bool:
    """Give an item to the sink the running session attached; False (dropped) when none is attached. ``getattr``
    at the call sites: subclasses that skip ``__init__`` (pytrickle's examples do) have no sinks at all."""
    if sink is None:
        log.debug("%s with no stream attached; dropped", what)
        return False
    sink(*args)
    return True
