"""``pytrickle.server.StreamServer`` stand-in: serves one processor instance with this runtime.

Accepts pytrickle's constructor arguments (v0.1.6 ``server.py``); the ones about pytrickle internals (frame
skipping, overlays, CORS, custom routes) are accepted and ignored. Settings not given here come from the
``BYOC_*`` environment, as for ``byoc-runtime``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from byoc_runtime.api.server import create_app
from byoc_runtime.config import load_config
from byoc_runtime.processors.pool import ProcessorPool
from byoc_runtime.worker import Worker

log = logging.getLogger(__name__)


class StreamServer:
    def __init__(
        self,
        frame_processor: Any,
        port: int = 8000,
        pipeline: str = "",
        capability_name: str = "",
        version: str = "0.0.1",
        host: str = "0.0.0.0",
        **ignored: Any,
    ) -> None:
        if ignored:
            log.info("StreamServer: ignoring pytrickle-only options %s", sorted(ignored))
        base = load_config([])
        update: dict[str, Any] = {"port": port, "host": host}
        if pipeline:
            update["pipeline"] = pipeline
        if capability_name:
            update["capability_name"] = capability_name
        self.config = base.model_copy(update=update)
        self.frame_processor = frame_processor
        self.version = version
        self.port = port
        self.host = host
        self.worker = Worker(self.config, ProcessorPool(None, 1, self.config.params, instance=frame_processor))
        self.app = create_app(self.worker)
        self._runner: web.AppRunner | None = None

    def get_app(self) -> web.Application:
        return self.app

    async def start_server(self) -> web.AppRunner:
        runner = web.AppRunner(self.app)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self._runner = runner
        log.info("serving on %s:%d", self.host, self.port)
        return runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run_forever(self) -> None:
        await self.start_server()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
