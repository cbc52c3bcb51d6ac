"""``pytrickle.protocol`` stand-in: ``TrickleProtocol`` (v0.1.8 ``protocol.py``), one stream's channels and
settings.

On this runtime the session that ``TrickleClient`` runs does the protocol's I/O (subscribe, publish, control,
heartbeats, events, data); this object describes the stream and forwards what code calls on it
(``emit_monitoring_event``, ``publish_data``) to the running client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .base import ErrorCallback, TrickleComponent
from .fps_meter import FPSMeter

if TYPE_CHECKING:
    from .client import FrameGate

log = logging.getLogger(__name__)


class TrickleProtocol(TrickleComponent):
    def __init__(
        self,
        subscribe_url: str,
        publish_url: str,
        control_url: str = "",
        events_url: str = "",
        data_url: str | None = None,
        width: int | None = None,
        height: int | None = None,
        max_framerate: int | None = None,
        heartbeat_interval: float = 10.0,
        publisher_timeout: float | None = None,
        subscriber_timeout: float | None = None,
        error_callback: ErrorCallback | None = None,
        detect_out_resolution: bool = True,
    ) -> None:
        super().__init__(error_callback, component_name="protocol")
        self.subscribe_url = subscribe_url
        self.publish_url = publish_url
        self.control_url = control_url
        self.events_url = events_url
        self.data_url = data_url
        self.width = width
        self.height = height
        self.max_framerate = max_framerate
        self.heartbeat_interval = heartbeat_interval
        self.publisher_timeout = publisher_timeout
        self.subscriber_timeout = subscriber_timeout
        self.detect_out_resolution = detect_out_resolution
        self.fps_meter = FPSMeter()
        self._gate: FrameGate | None = None

    def bind(self, gate: FrameGate) -> None:
        """Called by the ``TrickleClient`` that runs this stream."""
        self._gate = gate

    async def update_params(self, params: dict[str, Any]) -> None:
        try:
            fps = int(params["max_framerate"]) if "max_framerate" in params else 0
        except (TypeError, ValueError):
            log.warning("invalid max_framerate: not an integer")  # params are not logged: they may be secrets
            return
        if fps > 0:
            self.max_framerate = fps

    async def emit_monitoring_event(self, event: dict[str, Any], queue_event_type: str = "ai_stream_events") -> None:
        if self._gate is not None and self.events_url:
            await self._gate.send_monitoring_event(event, queue_event_type)

    async def publish_data(self, data: Any) -> None:
        if self._gate is not None:
            await self._gate.send_data(data)


__all__ = ["TrickleProtocol"]
