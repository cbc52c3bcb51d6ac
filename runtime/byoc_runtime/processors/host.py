"""Runs a processor instance on an event loop of its own, in its own thread.

PyTrickle processors do their tensor work inline in ``async`` methods, which in pytrickle blocks the loop that
also serves HTTP and trickle I/O. Hosting each instance on a private loop keeps the runtime's loop free while
a processor computes, lets decode/process/encode overlap, and lets a call that never returns be timed out
without freezing anything else. Everything the instance does (construction, ``load_model``, hooks, frames)
happens on that one loop, so asyncio objects it creates stay valid.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class HostState(enum.StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class ProcessorTimeout(TimeoutError):
    """A processor call did not finish in time; the instance may be stuck and should not be reused."""


def _accepted_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``fn`` accepts (all of them if it takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return kwargs
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in kwargs.items() if k in names}


class ProcessorHost:
    """One processor instance plus the thread and loop it runs on."""

    def __init__(
        self, factory: Callable[[], Any] | None = None, *, instance: Any = None, name: str = "processor"
    ) -> None:
        if (factory is None) == (instance is None):
            raise ValueError("give exactly one of factory or instance")
        self._factory = factory
        self.instance: Any = instance
        self.name = name
        self.state = HostState.LOADING
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def replaceable(self) -> bool:
        return self._factory is not None

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def start(self, load_kwargs: dict[str, Any] | None = None) -> None:
        """Start the thread, build the instance there and load its model. Sets ``state``; never raises."""
        self._thread = threading.Thread(target=self._run_loop, name=f"proc-{self.name}", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        try:
            if self.instance is None:
                assert self._factory is not None
                self.instance = await self.call(self._factory)
            kwargs = load_kwargs or {}
            loader = getattr(self.instance, "ensure_model_loaded", None) or getattr(self.instance, "load_model", None)
            if loader is not None:
                await self.call(loader, **_accepted_kwargs(getattr(self.instance, "load_model", loader), kwargs))
            self.state = HostState.READY
        except Exception as exc:
            log.exception("processor %s failed to load", self.name)
            self.state = HostState.FAILED
            self.error = f"{type(exc).__name__}: {exc}"

    async def call(self, fn: Callable[..., Any], *args: Any, limit_s: float | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the host loop (awaiting it if it returns an awaitable)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError(f"processor host {self.name} is not running")

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        future = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(invoke(), loop))
        if limit_s is None:
            return await future
        try:
            # Not wait_for: on Python 3.11 it swallows a cancel arriving as the call completes, so a session
            # stopped during on_stream_start would run on, holding its slot, with nothing left to stop it.
            async with asyncio.timeout(limit_s):
                return await future
        except TimeoutError as exc:
            raise ProcessorTimeout(f"processor call {getattr(fn, '__name__', fn)} took over {limit_s:.1f}s") from exc

    async def call_hook(self, name: str, *args: Any, limit_s: float | None = None) -> Any:
        """Call an optional method of the instance; missing hooks are a no-op."""
        method = getattr(self.instance, name, None)
        if method is None:
            return None
        return await self.call(method, *args, limit_s=limit_s)

    async def close(self) -> None:
        loop = self._loop
        self.state = HostState.CLOSED
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            # A processor stuck in synchronous code cannot be interrupted; do not wait for it forever.
            await asyncio.to_thread(self._thread.join, 5.0)
