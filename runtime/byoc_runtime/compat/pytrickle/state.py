"""``pytrickle.state`` stand-in: ``PipelineState`` and ``StreamState`` (v0.1.8 ``state.py``).

A processor may be handed a ``StreamState`` (``FrameProcessor.attach_state``) and read or set it; the status
it derives is LOADING until startup completes, IDLE when ready, OK with a stream, ERROR after ``set_error``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

log = logging.getLogger(__name__)


class PipelineState(enum.Enum):
    LOADING = "LOADING"
    IDLE = "IDLE"
    OK = "OK"
    ERROR = "ERROR"


class StreamState:
    def __init__(self) -> None:
        self._state = PipelineState.LOADING
        self.running_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.error_event = asyncio.Event()
        self.active_client = False
        self.active_streams = 0
        self.startup_complete = False

    @property
    def state(self) -> PipelineState:
        return self._state

    @property
    def running(self) -> bool:
        return self.running_event.is_set() and not self.shutdown_event.is_set() and not self.error_event.is_set()

    @property
    def pipeline_ready(self) -> bool:
        return self._state in (PipelineState.IDLE, PipelineState.OK)

    def set_active_client(self, active: bool) -> None:
        self.active_client = active

    def update_component_health(self, component_name: str, health_data: dict[str, Any]) -> None:
        """Transport errors are routine; they are logged, never turned into an ERROR state."""
        if health_data.get("error"):
            log.debug("component %s reported an error: %s", component_name, health_data.get("error"))

    def _status(self) -> str:
        if self.error_event.is_set():
            return "ERROR"
        if self.active_streams > 0 or self.active_client:
            return "OK"
        return "IDLE" if self.startup_complete and self.pipeline_ready else "LOADING"

    def get_state(self) -> dict[str, Any]:
        return {
            "status": self._status(),
            "pipeline_ready": self.pipeline_ready,
            "shutdown_initiated": self.shutdown_event.is_set(),
            "error": self.error_event.is_set(),
        }

    def set_state(self, state: PipelineState) -> None:
        if state is PipelineState.ERROR:
            log.error("stream state: %s -> ERROR", self._state.name)
            self.shutdown_event.set()
            self.error_event.set()
        else:
            self.running_event.set()
        self._state = state

    def set_startup_complete(self) -> None:
        self.startup_complete = True
        if self._state is PipelineState.LOADING:
            self.set_state(PipelineState.IDLE)

    def update_active_streams(self, count: int) -> None:
        self.active_streams = max(0, int(count))

    def is_error(self) -> bool:
        return self.error_event.is_set()

    def set_error(self, message: str) -> None:
        log.error("stream state: ERROR - %s", message)
        self.set_state(PipelineState.ERROR)

    def clear_error(self) -> None:
        """Leave ERROR for LOADING (as upstream: startup has to complete again to be IDLE)."""
        if self.is_error():
            self.error_event.clear()
            self.shutdown_event.clear()
            self.set_state(PipelineState.LOADING)

    def get_pipeline_state(self) -> dict[str, Any]:
        """The ``/health`` payload pytrickle builds from this state."""
        status = self._status()
        return {
            "status": status,
            "state": status,
            "error_message": None,
            "pipeline_ready": self.pipeline_ready,
            "active_streams": self.active_streams,
            "startup_complete": self.startup_complete,
            "pipeline_state": self._state.name,
            "additional_info": {},
        }


__all__ = ["PipelineState", "StreamState"]
