"""``pytrickle.stream_handler`` stand-in: ``TrickleStreamHandler`` (v0.1.8 ``stream_handler.py``), a
``StreamHandler`` that runs its stream with a ``TrickleClient``.

Subclasses implement ``create_frame_processor()`` and ``handle_control_message(params)``; control messages
from the stream's control channel go to the latter (keepalives skipped). A ``stream_started`` event is sent
when the stream starts and a ``stream_stats`` one every 20 s while it runs (queue ``stream_trace`` /
``stream_stats``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from typing import Any

from byoc_runtime import trickle

from .base import ErrorCallback
from .client import TrickleClient
from .manager import StreamHandler
from .protocol import TrickleProtocol

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 20.0


class TrickleStreamHandler(StreamHandler):
    def __init__(
        self,
        subscribe_url: str,
        publish_url: str,
        control_url: str = "",
        events_url: str = "",
        data_url: str = "",
        width: int = 512,
        height: int = 512,
        error_callback: ErrorCallback | None = None,
        app_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(width=width, height=height, **kwargs)
        self.subscribe_url = subscribe_url
        self.publish_url = publish_url
        self.control_url = control_url
        self.events_url = events_url
        self.data_url = data_url
        self.app_context = app_context or {}
        self.running_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.error_event = asyncio.Event()
        self._error_callback = error_callback
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop_lock = asyncio.Lock()
        self.protocol: TrickleProtocol | None = None
        self.client: TrickleClient | None = None

    @property
    def running(self) -> bool:
        return self.running_event.is_set() and not self.shutdown_event.is_set() and not self.error_event.is_set()

    @abc.abstractmethod
    async def create_frame_processor(self) -> Any: ...

    @abc.abstractmethod
    async def handle_control_message(self, params: dict[str, Any]) -> None: ...

    async def _on_error(self, error_type: str, exception: Exception | None = None) -> None:
        if self.shutdown_event.is_set():
            return
        log.error("stream failed: %s: %s", error_type, exception)
        self.error_event.set()
        if self._error_callback is not None:
            await self._error_callback(error_type, exception)

    async def _get_monitoring_stats(self) -> dict[str, Any] | None:
        """The periodic ``stream_stats`` event (None: skip this interval); override to add to it."""
        return {
            "type": "stream_stats",
            "timestamp": time.time(),
            "stream": {"running": self.running, "width": self.width, "height": self.height},
        }

    async def _run_client(self, client: TrickleClient) -> None:
        try:
            await client.start()
        finally:
            self.shutdown_event.set()

    async def _control_loop(self) -> None:
        async with trickle.JsonSubscriber(self.control_url) as control:
            async for message in control:
                if isinstance(message, dict) and not trickle.is_keepalive(message):
                    try:
                        await self.handle_control_message(message)
                    except Exception:
                        log.exception("handle_control_message failed")

    async def _monitoring_loop(self, protocol: TrickleProtocol) -> None:
        while self.running:
            stats = await self._get_monitoring_stats()
            if stats:
                await protocol.emit_monitoring_event(stats, "stream_stats")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.shutdown_event.wait(), STATS_INTERVAL_S)

    async def start(self) -> bool:
        if self.running:
            return False
        frame_processor = await self.create_frame_processor()
        if frame_processor is None:
            log.error("create_frame_processor returned nothing")
            return False
        self.protocol = TrickleProtocol(
            subscribe_url=self.subscribe_url,
            publish_url=self.publish_url,
            control_url=self.control_url,
            events_url=self.events_url,
            data_url=self.data_url,
            width=self.width,
            height=self.height,
            error_callback=self._on_error,
        )
        # Control messages reach handle_control_message only (not the processor's update_params).
        self.client = TrickleClient(
            self.protocol, frame_processor, control_handler=lambda _: None, error_callback=self._on_error
        )
        self.running_event.set()
        self._tasks = [asyncio.create_task(self._run_client(self.client))]
        if self.control_url.strip():
            self._tasks.append(asyncio.create_task(self._control_loop()))
        self._tasks.append(asyncio.create_task(self._monitoring_loop(self.protocol)))
        await self.protocol.emit_monitoring_event({"type": "stream_started"}, "stream_trace")
        return True

    async def stop(self, *, called_by_manager: bool = False) -> bool:
        async with self._stop_lock:
            self.shutdown_event.set()
            if self.client is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.client.stop(), 5.0)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            if not called_by_manager:
                stream_state = self.app_context.get("stream_state")
                if stream_state is not None:
                    stream_state.clear_error()
            self.running_event.clear()
            return True


__all__ = ["TrickleStreamHandler"]
