"""A fixed set of processor instances, one per session slot.

pytrickle serves one stream with one processor instance. To serve N sessions without letting one session's
``update_params`` leak into another's, the runtime builds N instances up front (so a stream start does not
wait for a model load) and lends one to each session. An instance that timed out is thrown away and rebuilt.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import Any

from .host import HostState, ProcessorHost

log = logging.getLogger(__name__)


class PoolState(enum.StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    ERROR = "ERROR"


class ProcessorPool:
    def __init__(
        self,
        factory: Callable[[], Any] | None,
        size: int,
        load_kwargs: dict[str, Any] | None = None,
        *,
        instance: Any = None,
        name: str = "processor",
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        if instance is not None and size != 1:
            raise ValueError("a single given processor instance can serve only one session")
        self._factory = factory
        self._load_kwargs = dict(load_kwargs or {})
        self.name = name
        self.size = size
        if instance is not None:
            self._hosts = [ProcessorHost(instance=instance, name=f"{name}-0")]
        else:
            assert factory is not None
            self._hosts = [ProcessorHost(factory, name=f"{name}-{i}") for i in range(size)]
        self._free: list[ProcessorHost] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = asyncio.Event()

    @property
    def state(self) -> PoolState:
        if any(h.state is HostState.FAILED for h in self._hosts):
            return PoolState.ERROR
        if not self._loaded.is_set() or any(h.state is HostState.LOADING for h in self._hosts):
            return PoolState.LOADING
        return PoolState.READY

    @property
    def error(self) -> str | None:
        return next((h.error for h in self._hosts if h.error), None)

    @property
    def free(self) -> int:
        return len(self._free)

    async def start(self) -> None:
        await asyncio.gather(*(self._start_host(h) for h in self._hosts))
        self._loaded.set()

    async def wait_loaded(self, limit_s: float) -> bool:
        try:
            await asyncio.wait_for(self._loaded.wait(), limit_s)
        except TimeoutError:
            return False
        return True

    async def _start_host(self, host: ProcessorHost) -> None:
        await host.start(self._load_kwargs)
        if host.state is HostState.READY:
            self._free.append(host)

    def acquire(self) -> ProcessorHost | None:
        return self._free.pop() if self._free else None

    def release(self, host: ProcessorHost, healthy: bool = True) -> None:
        if host not in self._hosts:
            return
        if healthy and host.state is HostState.READY:
            self._free.append(host)
            return
        if not host.replaceable:
            host.state = HostState.FAILED
            host.error = host.error or "processor instance became unusable"
            return
        self._hosts.remove(host)
        replacement = ProcessorHost(self._factory, name=f"{host.name}r")
        self._hosts.append(replacement)
        self._spawn(self._start_host(replacement))
        self._spawn(host.close())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self._hosts), *self._tasks, return_exceptions=True)
        self._free.clear()
