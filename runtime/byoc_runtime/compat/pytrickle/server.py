"""``pytrickle.server`` stand-in: ``StreamServer`` (v0.1.8 ``server.py``) serving one processor with this runtime.

It takes pytrickle's constructor arguments. The processor runs behind a ``FrameGate`` (``client.py``), so
``frame_skip_config`` and ``overlay_config`` apply as in pytrickle (None: the defaults, which skip nothing and
show the loading overlay after 1.5 s without output). ``custom_routes``, ``static_routes``, ``middleware``,
``app_context``, ``on_startup`` and ``on_shutdown`` are added to the runtime's app. The runtime's routes are
always served, at the root and under ``/api``, so ``enable_default_routes=False`` and other ``route_prefix``
values are not honoured (logged); ``cors_config`` (aiohttp-cors), ``app_kwargs`` and the trickle timeouts
are accepted and unused. Settings not given here come from the ``BYOC_*`` environment, as for
``byoc-runtime``.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from byoc_runtime.api.server import create_app
from byoc_runtime.config import load_config
from byoc_runtime.processors.pool import ProcessorPool
from byoc_runtime.worker import Worker

from .client import FrameGate
from .frame_overlay import OverlayConfig
from .frame_skipper import FrameSkipConfig

log = logging.getLogger(__name__)


@dataclass
class RouteConfig:
    method: str
    path: str
    handler: Callable[..., Any]
    kwargs: dict[str, Any] | None = None


class StreamServer:
    def __init__(
        self,
        frame_processor: Any,
        port: int = 8000,
        pipeline: str = "",
        capability_name: str = "",
        version: str = "0.0.1",
        custom_routes: list[RouteConfig | dict[str, Any]] | None = None,
        middleware: list[Callable[..., Any]] | None = None,
        cors_config: dict[str, Any] | None = None,
        static_routes: list[dict[str, Any]] | None = None,
        app_context: dict[str, Any] | None = None,
        health_check_interval: float = 5.0,
        enable_default_routes: bool = True,
        route_prefix: str = "/",
        host: str = "0.0.0.0",
        on_startup: list[Callable[..., Any]] | None = None,
        on_shutdown: list[Callable[..., Any]] | None = None,
        publisher_timeout: float | None = None,
        subscriber_timeout: float | None = None,
        app_kwargs: dict[str, Any] | None = None,
        frame_skip_config: FrameSkipConfig | None = None,
        overlay_config: OverlayConfig | None = None,
    ) -> None:
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
        self.route_prefix = route_prefix
        self.health_check_interval = health_check_interval
        self.publisher_timeout = publisher_timeout
        self.subscriber_timeout = subscriber_timeout
        self.frame_skip_config = frame_skip_config
        self.overlay_config = overlay_config
        self.gate = FrameGate(frame_processor, frame_skip_config, overlay_config)
        self.worker = Worker(self.config, ProcessorPool(None, 1, self.config.params, instance=self.gate))
        self.app = create_app(self.worker)
        unused = {
            "cors_config": cors_config,
            "app_kwargs": app_kwargs,
            "enable_default_routes": not enable_default_routes,
            "route_prefix": route_prefix not in ("/", "", "/api"),
        }
        if any(unused.values()):
            log.info("StreamServer: not honoured on this runtime: %s", sorted(k for k, v in unused.items() if v))
        self.app.middlewares.extend(middleware or [])
        with warnings.catch_warnings():  # pytrickle's app_context keys are strings
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            for key, value in (app_context or {}).items():
                self.app[key] = value
        self.app.on_startup.extend(on_startup or [])
        self.app.on_shutdown.extend(on_shutdown or [])
        for route in custom_routes or []:
            spec = route if isinstance(route, RouteConfig) else RouteConfig(**route)
            self.app.router.add_route(spec.method, spec.path, spec.handler, **(spec.kwargs or {}))
        for static in static_routes or []:
            options = dict(static)
            self.app.router.add_static(options.pop("prefix"), options.pop("path"), **options)
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


__all__ = ["RouteConfig", "StreamServer"]
