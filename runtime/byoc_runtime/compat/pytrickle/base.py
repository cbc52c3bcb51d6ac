"""``pytrickle.base`` stand-in: ``ComponentState``, ``TrickleComponent`` and ``ErrorCallback`` (v0.1.8 ``base.py``),
the state tracking pytrickle's transport components share."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ErrorCallback = Callable[[str, Exception | None], Coroutine[Any, Any, None]]


class ComponentState(enum.Enum):
    INIT = "INIT"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    SHUTDOWN = "SHUTDOWN"


class TrickleComponent:
    def __init__(self, error_callback: ErrorCallback | None = None, component_name: str = "unknown") -> None:
        self.error_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.error_callback = error_callback
        self.component_name = component_name
        self.component_state = ComponentState.INIT
        self.last_error: str | None = None
        self.last_activity: float | None = time.time()

    def _should_stop(self) -> bool:
        return self.error_event.is_set() or self.shutdown_event.is_set()

    def _update_state(self, state: ComponentState) -> None:
        self.component_state = state
        self.last_activity = time.time()

    async def _notify_error(self, error_type: str, exception: Exception | None = None) -> None:
        """Enter ERROR and tell ``error_callback`` (whose own failure is only logged)."""
        self.error_event.set()
        self._update_state(ComponentState.ERROR)
        self.last_error = f"{error_type}: {exception if exception is not None else 'Unknown error'}"
        log.error("component %s error: %s", self.component_name, self.last_error)
        if self.error_callback is not None:
            try:
                await self.error_callback(error_type, exception)
            except Exception:
                log.exception("error callback of %s failed", self.component_name)

    def get_component_health(self) -> dict[str, Any]:
        return {
            "component": self.component_name,
            "state": self.component_state.value,
            "error": self.error_event.is_set(),
            "last_error": self.last_error,
            "last_activity": self.last_activity,
            "should_stop": self._should_stop(),
        }

    async def shutdown(self) -> None:
        self._update_state(ComponentState.SHUTDOWN)
        self.shutdown_event.set()


__all__ = ["ComponentState", "ErrorCallback", "TrickleComponent"]
