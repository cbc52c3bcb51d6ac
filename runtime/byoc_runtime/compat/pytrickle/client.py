"""``pytrickle.client`` stand-in: ``TrickleClient`` (v0.1.8 ``client.py``) and ``FrameGate``, the per-stream
work pytrickle's client does around a processor.

``FrameGate`` wraps a processor for one stream at a time, as pytrickle's ``_process_video_frames`` does: each
video frame first passes the adaptive frame skipper (``frame_skipper.py``), then, unless a manual loading state
is set, the processor, then the loading overlay (``frame_overlay.py``). Audio, params and lifecycle hooks go
straight to the processor. It is what the runtime's session calls, so skipping and overlays work on this
runtime's pipeline. It also carries what a processor hands back to the stream: ``send_data`` (the runtime's
data sink) and ``send_monitoring_event`` (an event sink, ``attach_event_sink``).

``TrickleClient`` runs one stream described by a ``TrickleProtocol`` on this runtime's ``Session`` (trickle
I/O, decode, encode, control, events, data) with the processor behind a ``FrameGate``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from byoc_edge.schema import StreamParams, StreamStartRequest

from byoc_runtime.frames import AudioFrame, VideoFrame
from byoc_runtime.metrics import Metrics
from byoc_runtime.processors.base import FrameProcessor
from byoc_runtime.processors.host import ProcessorHost
from byoc_runtime.session import Session, SessionSettings, SessionState, normalize_video_result

from .base import ErrorCallback
from .fps_meter import FPSMeter
from .frame_overlay import OverlayConfig, OverlayController
from .frame_skipper import AdaptiveFrameSkipper, FrameProcessingResult, FrameSkipConfig

if TYPE_CHECKING:
    from .protocol import TrickleProtocol

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any], str], None]


def _accepted(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The part of ``kwargs`` that ``fn`` takes (all of it if it has ``**kwargs``)."""
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in {p.name for p in parameters}}


async def _maybe_await(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class FrameGate(FrameProcessor):
    """``processor`` as pytrickle's client runs it: frame skipping, loading overlay, stream sinks."""

    def __init__(
        self,
        processor: Any,
        frame_skip_config: FrameSkipConfig | None = None,
        overlay_config: OverlayConfig | None = None,
        *,
        fps_meter: FPSMeter | None = None,
        control_handler: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.processor = processor
        self.fps_meter = fps_meter or FPSMeter()
        self.frame_skipper = AdaptiveFrameSkipper(frame_skip_config or FrameSkipConfig(), self.fps_meter)
        self.loading_controller = OverlayController(overlay_config)
        self.control_handler = control_handler
        self.streaming = False
        self._event_sink: EventSink | None = None

    # -- the processor interface the session calls --------------------------------------------------------

    async def load_model(self, **kwargs: Any) -> None:
        loader = getattr(self.processor, "ensure_model_loaded", None) or getattr(self.processor, "load_model", None)
        if loader is not None:
            await _maybe_await(loader(**_accepted(getattr(self.processor, "load_model", loader), kwargs)))

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame | None:
        self.fps_meter.record_ingress_video_frame()
        if self.frame_skipper.admit(frame) is FrameProcessingResult.SKIPPED:
            return None
        processed = None
        if not self.loading_controller.should_skip_processing():
            result = await self.processor.process_video_async(frame)
            # A frame built by a real pytrickle install passes for ours (duck-typed, as pytrickle's encoder reads it).
            processed = cast("VideoFrame | None", normalize_video_result(result, frame))
        output = self.loading_controller.update_and_apply(frame, processed)
        if output is not None:
            self.fps_meter.record_egress_video_frame()
        return output

    async def process_audio_async(self, frame: AudioFrame) -> list[AudioFrame] | None:
        self.fps_meter.record_ingress_audio_frame()
        return await self.processor.process_audio_async(frame)

    async def update_params(self, params: dict[str, Any]) -> None:
        if self.control_handler is not None:
            await _maybe_await(self.control_handler(params))
        else:
            await _maybe_await(self.processor.update_params(params))

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        self.fps_meter.reset()
        self.frame_skipper.reset()
        self.loading_controller.reset()
        self.streaming = True
        await _maybe_await(self.processor.on_stream_start(params))

    async def on_stream_stop(self) -> None:
        try:
            await _maybe_await(self.processor.on_stream_stop())
        finally:
            self.streaming = False
            self.loading_controller.reset()

    def attach_data_sink(self, sink: Callable[[Any], None] | None) -> None:
        super().attach_data_sink(sink)
        if hasattr(self.processor, "attach_data_sink"):
            self.processor.attach_data_sink(sink)

    def attach_event_sink(self, sink: EventSink | None) -> None:
        """Set by the runtime while a stream runs: ``sink(event, queue_event_type)`` puts the event, wrapped in
        pytrickle's envelope, on the stream's events channel."""
        self._event_sink = sink

    # -- what processors call -----------------------------------------------------------------------------

    async def send_monitoring_event(self, event: dict[str, Any], event_type: str = "custom_monitoring_event") -> bool:
        """Publish ``{"event": event, "queue_event_type": event_type}`` on the stream's events channel."""
        sink = self._event_sink
        if sink is None:
            log.warning("no stream with an events channel: monitoring event dropped")
            return False
        sink(event, event_type)
        return True

    def set_manual_loading(self, active: bool) -> bool:
        """Turn the manual loading overlay on or off for the running stream; False when none runs."""
        if not self.streaming:
            return False
        self.loading_controller.set_manual_loading(active)
        return True

    def set_target_fps(self, target_fps: float | None) -> None:
        self.frame_skipper.set_target_fps(target_fps)


class TrickleClient:
    """Runs one stream (``protocol``'s channels) with ``frame_processor`` until its input ends or ``stop()``."""

    def __init__(
        self,
        protocol: TrickleProtocol,
        frame_processor: Any,
        control_handler: Callable[[dict[str, Any]], Any] | None = None,
        send_data_interval: float | None = 0.333,
        error_callback: ErrorCallback | None = None,
        max_queue_size: int = 300,
        frame_skip_config: FrameSkipConfig | None = None,
        overlay_config: OverlayConfig | None = None,
    ) -> None:
        self.protocol = protocol
        self.frame_processor = frame_processor
        self.control_handler = control_handler
        self.send_data_interval = send_data_interval
        self.error_callback = error_callback or getattr(frame_processor, "error_callback", None)
        self.max_queue_size = max_queue_size
        self.frame_skip_config = frame_skip_config or FrameSkipConfig()
        self.gate = FrameGate(
            frame_processor,
            self.frame_skip_config,
            overlay_config,
            fps_meter=protocol.fps_meter,
            control_handler=control_handler,
        )
        self.loading_controller = self.gate.loading_controller
        self.frame_skipper = self.gate.frame_skipper
        protocol.bind(self.gate)
        self.running = False
        self.request_id = "default"
        self.stop_event = asyncio.Event()
        self.error_event = asyncio.Event()
        self._session: Session | None = None

    def _request(self, request_id: str, params: dict[str, Any] | None) -> StreamStartRequest:
        p = self.protocol
        stream_params: dict[str, Any] = dict(params or {})
        if p.width and p.height:
            stream_params.setdefault("width", p.width)
            stream_params.setdefault("height", p.height)
        if p.max_framerate:
            stream_params.setdefault("max_framerate", p.max_framerate)
        return StreamStartRequest(
            gateway_request_id=request_id,
            subscribe_url=p.subscribe_url or None,
            publish_url=p.publish_url or None,
            control_url=p.control_url or None,
            events_url=p.events_url or None,
            data_url=p.data_url or None,
            params=StreamParams.model_validate(stream_params),
        )

    async def start(self, request_id: str = "default", params: dict[str, Any] | None = None) -> None:
        """Run the stream to its end (``params`` go to ``on_stream_start``)."""
        if self.running:
            raise RuntimeError("Client is already running")
        self.request_id = request_id
        self.stop_event.clear()
        self.error_event.clear()
        request = self._request(request_id, params)
        host = ProcessorHost(instance=self.gate, name=f"client-{request_id[:16]}")
        self.running = True
        try:
            await host.start()
            if host.error is not None:
                raise RuntimeError(f"processor failed to load: {host.error}")
            settings = SessionSettings(heartbeat_interval=self.protocol.heartbeat_interval)
            if self.send_data_interval:
                settings = dataclasses.replace(settings, data_interval=self.send_data_interval)
            session = Session(request, request_id, host, settings, Metrics())
            self._session = session
            session.start()
            await session.wait()
        finally:
            self.running = False
            self._session = None
            await host.close()
        if session.state is SessionState.FAILED:
            self.error_event.set()
            if self.error_callback is not None:
                await self.error_callback("session_failed", RuntimeError(session.last_error))
        self.stop_event.set()

    async def stop(self) -> None:
        self.stop_event.set()
        if self._session is not None:
            await self._session.stop("client stopped")

    async def publish_data(self, data: Any) -> None:
        await self.gate.send_data(data)

    def set_target_fps(self, target_fps: float | None) -> None:
        self.gate.set_target_fps(target_fps)


__all__ = ["FrameGate", "TrickleClient"]
