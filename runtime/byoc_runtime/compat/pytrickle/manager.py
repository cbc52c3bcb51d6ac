"""``pytrickle.manager`` stand-in: ``StreamHandler``, ``BaseStreamManager``, ``TrickleStreamManager``
(v0.1.8 ``manager.py``): a table of named streams, each run by a handler, kept in step with a ``StreamState``."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .state import StreamState

log = logging.getLogger(__name__)


class StreamHandler:
    """A stream with a resolution; subclasses implement ``running``, ``start`` and ``stop``."""

    def __init__(self, width: int = 512, height: int = 512, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # cooperative with mixins
        self.width = width
        self.height = height

    @property
    def running(self) -> bool:
        raise NotImplementedError("subclasses implement 'running'")

    async def start(self) -> bool:
        raise NotImplementedError("subclasses implement start()")

    async def stop(self, *, called_by_manager: bool = False) -> bool:
        raise NotImplementedError("subclasses implement stop()")

    def update_resolution(self, width: int, height: int) -> bool:
        """Set the resolution; True if it changed."""
        changed = (self.width, self.height) != (width, height)
        self.width, self.height = width, height
        return changed


class BaseStreamManager(abc.ABC):
    def __init__(self, stream_state: StreamState | None = None) -> None:
        self.handlers: dict[str, StreamHandler] = {}
        self.lock = asyncio.Lock()
        self.stream_state = stream_state

    @abc.abstractmethod
    async def create_stream_handler(self, request_id: str, **kwargs: Any) -> StreamHandler | None: ...

    async def create_stream(self, request_id: str, **kwargs: Any) -> bool:
        """Create and start a stream; False if it exists already or did not start."""
        async with self.lock:
            if request_id in self.handlers:
                log.warning("stream %s already exists", request_id)
                return False
            if self.stream_state is not None and self.stream_state.is_error() and not self.handlers:
                self.stream_state.clear_error()
            try:
                handler = await self.create_stream_handler(request_id, **kwargs)
                if handler is None or not await handler.start():
                    log.error("stream %s did not start", request_id)
                    return False
            except Exception as exc:
                log.exception("creating stream %s failed", request_id)
                if self.stream_state is not None:
                    self.stream_state.set_error(f"Error creating stream: {exc}")
                return False
            self.handlers[request_id] = handler
            self._update_stream_state()
            return True

    async def stop_stream(self, request_id: str) -> bool:
        """Stop and forget a stream (forgotten even if its stop fails)."""
        async with self.lock:
            handler = self.handlers.pop(request_id, None)
            if handler is None:
                log.warning("stream %s not found", request_id)
                return False
            try:
                return await handler.stop(called_by_manager=True)
            except Exception:
                log.exception("stopping stream %s failed", request_id)
                return False
            finally:
                self._update_stream_state()

    def _update_stream_state(self) -> None:
        if self.stream_state is not None:
            self.stream_state.update_active_streams(len(self.handlers))
            if not self.handlers and self.stream_state.is_error():
                self.stream_state.clear_error()

    def build_stream_status(self, request_id: str, handler: StreamHandler) -> dict[str, Any]:
        return {"request_id": request_id, "running": handler.running, "width": handler.width, "height": handler.height}

    async def get_stream_status(self, request_id: str) -> dict[str, Any] | None:
        async with self.lock:
            handler = self.handlers.get(request_id)
        if handler is None:
            return None
        try:
            return self.build_stream_status(request_id, handler)
        except Exception:
            return None  # a handler stopping meanwhile reads as gone

    async def list_streams(self) -> dict[str, dict[str, Any]]:
        async with self.lock:
            items = list(self.handlers.items())
        streams: dict[str, dict[str, Any]] = {}
        for request_id, handler in items:
            with contextlib.suppress(Exception):
                streams[request_id] = self.build_stream_status(request_id, handler)
        return streams

    async def cleanup_all(self) -> None:
        """Stop every stream (8 s each, 15 s in all) and forget them."""
        async with self.lock:
            if not self.handlers:
                return
            stops = [asyncio.wait_for(h.stop(called_by_manager=True), 8.0) for h in self.handlers.values()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*stops, return_exceptions=True), 15.0)
            self.handlers.clear()
            self._update_stream_state()


class TrickleStreamManager(BaseStreamManager):
    """Handlers come from ``set_stream_handler_factory(factory)``, called as
    ``await factory(request_id, **kwargs, app_context=...)``."""

    def __init__(self, app_context: dict[str, Any] | None = None, stream_state: StreamState | None = None) -> None:
        if app_context and stream_state is None:
            stream_state = app_context.get("stream_state")
        super().__init__(stream_state)
        self.app_context = app_context or {}
        self.stream_handler_factory: Callable[..., Awaitable[StreamHandler | None]] | None = None

    def set_stream_handler_factory(self, factory: Callable[..., Awaitable[StreamHandler | None]]) -> None:
        self.stream_handler_factory = factory

    async def create_stream_handler(self, request_id: str, **kwargs: Any) -> StreamHandler | None:
        if self.stream_handler_factory is None:
            log.error("no stream handler factory set")
            return None
        try:
            return await self.stream_handler_factory(request_id, **kwargs, app_context=self.app_context)
        except Exception:
            log.exception("stream handler factory failed for %s", request_id)
            return None


__all__ = ["BaseStreamManager", "StreamHandler", "TrickleStreamManager"]
