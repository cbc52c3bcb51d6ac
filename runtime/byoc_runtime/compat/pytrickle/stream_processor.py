"""``pytrickle.stream_processor`` stand-in: ``StreamProcessor`` (v0.1.8 ``stream_processor.py``), a processor
built from async callbacks or decorated handlers and served by this runtime.

As upstream, every callback must be async (``ValueError`` otherwise); ``validate_signature`` only warns about
odd parameter lists. ``frame_skip_config`` / ``overlay_config`` and other keyword arguments go to the
``StreamServer``. While a stream runs, ``send_data`` puts an item on its data channel,
``send_monitoring_event`` an event on its events channel, and ``set_loading_overlay`` turns the manual
loading overlay on or off; with no stream they return False.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from byoc_runtime.frames import AudioFrame, VideoFrame
from byoc_runtime.processors.handlers import CallbackProcessor, VideoProcessingResult, discover_handlers

from .frame_overlay import OverlayConfig
from .frame_skipper import FrameSkipConfig
from .server import StreamServer

log = logging.getLogger(__name__)

Callback = Callable[..., Any]


def _check_signature(label: str, fn: Callback) -> None:
    """Warn (only) when a callback's parameters do not fit what it will be called with."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    takes_argument = any(p.kind is not p.VAR_KEYWORD for p in params)
    if label in ("video_processor", "audio_processor", "param_updater", "on_stream_start") and not takes_argument:
        log.warning("%s %s takes no argument; it will be called with one", label, getattr(fn, "__name__", fn))
    if label == "on_stream_stop" and any(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params):
        log.warning("on_stream_stop %s expects arguments; it is called with none", getattr(fn, "__name__", fn))


class StreamProcessor:
    @classmethod
    def from_handlers(
        cls,
        handler_instance: Any,
        *,
        send_data_interval: float | None = 0.333,
        name: str = "stream-processor",
        port: int = 8000,
        frame_skip_config: FrameSkipConfig | None = None,
        overlay_config: OverlayConfig | None = None,
        validate_signature: bool = True,
        **server_kwargs: Any,
    ) -> StreamProcessor:
        """A processor from the ``@video_handler``, ``@model_loader``, ... methods of ``handler_instance``."""
        found = discover_handlers(handler_instance)
        return cls(
            video_processor=found.get("video"),
            audio_processor=found.get("audio"),
            model_loader=found.get("model_loader"),
            param_updater=found.get("param_updater"),
            on_stream_start=found.get("stream_start"),
            on_stream_stop=found.get("stream_stop"),
            send_data_interval=send_data_interval,
            name=name,
            port=port,
            frame_skip_config=frame_skip_config,
            overlay_config=overlay_config,
            validate_signature=validate_signature,
            **server_kwargs,
        )

    def __init__(
        self,
        video_processor: Callback | None = None,
        audio_processor: Callback | None = None,
        model_loader: Callback | None = None,
        param_updater: Callback | None = None,
        on_stream_start: Callback | None = None,
        on_stream_stop: Callback | None = None,
        send_data_interval: float | None = 0.333,
        name: str = "stream-processor",
        port: int = 8000,
        frame_skip_config: FrameSkipConfig | None = None,
        overlay_config: OverlayConfig | None = None,
        validate_signature: bool = True,
        **server_kwargs: Any,
    ) -> None:
        callbacks = {
            "video_processor": video_processor,
            "audio_processor": audio_processor,
            "model_loader": model_loader,
            "param_updater": param_updater,
            "on_stream_start": on_stream_start,
            "on_stream_stop": on_stream_stop,
        }
        for label, fn in callbacks.items():
            if fn is None:
                continue
            if not inspect.iscoroutinefunction(inspect.unwrap(getattr(fn, "__func__", fn))):
                raise ValueError(f"{label} must be an async function")
            if validate_signature:
                _check_signature(label, fn)
        self.video_processor = video_processor
        self.audio_processor = audio_processor
        self.model_loader = model_loader
        self.param_updater = param_updater
        self.on_stream_start = on_stream_start
        self.on_stream_stop = on_stream_stop
        self.send_data_interval = send_data_interval  # unused, as upstream: the stream's data goes every 333 ms
        self.name = name
        self.port = port
        self.frame_skip_config = frame_skip_config
        self.overlay_config = overlay_config
        self.server_kwargs = server_kwargs
        self._frame_processor = CallbackProcessor(**callbacks, name=name)
        self.server = StreamServer(
            frame_processor=self._frame_processor,
            port=port,
            frame_skip_config=frame_skip_config,
            overlay_config=overlay_config,
            **server_kwargs,
        )

    async def send_data(self, data: Any) -> bool:
        return await self.server.gate.send_data(data)

    async def send_monitoring_event(self, event: dict[str, Any], event_type: str = "custom_monitoring_event") -> bool:
        return await self.server.gate.send_monitoring_event(event, event_type)

    async def send_input_frame(self, frame: VideoFrame | AudioFrame) -> bool:
        return await self.server.gate.send_input_frame(frame)

    def set_loading_overlay(self, active: bool) -> bool:
        return self.server.gate.set_manual_loading(active)

    async def run_forever(self) -> None:
        await self.server.run_forever()

    def run(self) -> None:
        asyncio.run(self.run_forever())


__all__ = ["StreamProcessor", "VideoProcessingResult"]
