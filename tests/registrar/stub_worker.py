"""A worker stand-in whose answers a test sets directly: ``/health``, ``/hardware/info``, ``/version`` and,
optionally, ``/drain`` (our runtime has it; other images do not)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


class StubWorker:
    def __init__(self) -> None:
        self.status = "IDLE"
        self.active_streams = 0
        self.capacity = 3
        self.has_drain = True
        self.draining = False
        self.gpu_info: dict[str, Any] = {
            "0": {"id": "GPU-1234", "name": "NVIDIA L40S", "memory_total": 46068 << 20, "memory_free": 1 << 30}
        }
        self.health_calls = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls) -> AsyncIterator[StubWorker]:
        worker = cls()
        app = web.Application()
        app.router.add_get("/health", worker.health)
        app.router.add_get("/hardware/info", worker.hardware)
        app.router.add_get("/version", worker.version)
        app.router.add_post("/drain", worker.drain)
        worker._runner = web.AppRunner(app, access_log=None)
        await worker._runner.setup()
        site = web.TCPSite(worker._runner, "127.0.0.1", 0)
        await site.start()
        worker.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        try:
            yield worker
        finally:
            await worker._runner.cleanup()

    async def health(self, request: web.Request) -> web.Response:
        self.health_calls += 1
        return web.json_response(
            {"status": self.status, "active_streams": self.active_streams, "capacity": self.capacity}
        )

    async def hardware(self, request: web.Request) -> web.Response:
        return web.json_response({"pipeline": "byoc", "model_id": "stub", "gpu_info": self.gpu_info})

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"pipeline": "byoc", "model_id": "stub", "version": "9.9.9"})

    async def drain(self, request: web.Request) -> web.Response:
        if not self.has_drain:
            raise web.HTTPNotFound()
        self.draining = True
        return web.json_response({"status": "success", "draining": True})
